# SPDX-License-Identifier: MIT
"""postern instance init / info: the instance interface (postern(8))."""

import os
import pwd
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import (BIN, ENV_KEYS, PORT_OFFSETS, Instance, free_port_base,
                      new_instance_dir, parse_env, run_postern)


def init(directory, *extra):
    return run_postern("instance", "init", directory, *extra)


def test_init_prints_exactly_the_keys_in_order(tmp_path):
    d = tmp_path / "inst"
    r = init(d, "--port-base", "23000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ENV_KEYS
    env = parse_env(r.stdout)
    real = str(d.resolve())
    assert env["INSTANCE_DIR"] == real
    assert env["CONFIG_DIR"] == real
    assert env["HOST"] == "127.0.0.1"
    assert env["PORT_BASE"] == "23000"
    expected = {"SMTP_PORT": 23025, "SUBMISSION_PORT": 23587,
                "SMTPS_PORT": 23465, "IMAP_PORT": 23143,
                "IMAPS_PORT": 23993, "POP3_PORT": 23110,
                "POP3S_PORT": 23995, "SIEVE_PORT": 23190,
                "LMTP_PORT": 23024, "NNTP_PORT": 23119}
    for key, port in expected.items():
        assert env[key] == str(port), key
    for name, off in PORT_OFFSETS.items():
        assert int(env[f"{name}_PORT"]) == 23000 + off
    assert env["LOG_FILE"] == f"{real}/log/postern.log"
    assert r.stderr == ""


def test_instance_env_and_info_equal_the_output(tmp_path):
    d = tmp_path / "inst"
    r = init(d, "--port-base", "31000")
    assert r.returncode == 0, r.stderr
    assert (d / "instance.env").read_text() == r.stdout
    info = run_postern("-c", d, "instance", "info")
    assert info.returncode == 0, info.stderr
    assert info.stdout == r.stdout
    # POSTERN_CONFIG_DIR instead of -c
    info = run_postern("instance", "info", env={"POSTERN_CONFIG_DIR": str(d)})
    assert info.stdout == r.stdout


def test_default_port_base_is_10000(tmp_path):
    r = init(tmp_path / "inst")
    assert r.returncode == 0, r.stderr
    env = parse_env(r.stdout)
    assert env["PORT_BASE"] == "10000"
    assert env["SMTP_PORT"] == "10025"
    assert env["POP3S_PORT"] == "10995"


@pytest.mark.parametrize("base", ["1", "64540"])
def test_port_base_limits_accepted(tmp_path, base):
    r = init(tmp_path / "inst", "--port-base", base)
    assert r.returncode == 0, r.stderr
    env = parse_env(r.stdout)
    assert int(env["POP3S_PORT"]) == int(base) + 995 <= 65535


@pytest.mark.parametrize("base", ["0", "-1", "64541", "65535", "70000",
                                  "abc", "", "10000x", " 10000", "+5",
                                  "99999999999999999999999"])
def test_bad_port_base_rejected(tmp_path, base):
    d = tmp_path / "inst"
    r = init(d, "--port-base", base)
    assert r.returncode == 2
    assert "bad --port-base" in r.stderr
    assert "1 to 64540" in r.stderr
    assert r.stdout == ""
    assert not d.exists()


def test_port_base_equals_form(tmp_path):
    r = init(tmp_path / "inst", "--port-base=40000")
    assert r.returncode == 0, r.stderr
    assert parse_env(r.stdout)["SMTP_PORT"] == "40025"


def test_missing_dir_and_bad_options(tmp_path):
    r = run_postern("instance", "init")
    assert r.returncode == 2 and "needs a DIR" in r.stderr
    r = run_postern("instance", "init", tmp_path / "a", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = run_postern("instance", "init", tmp_path / "a", tmp_path / "b")
    assert r.returncode == 2
    r = run_postern("instance", "init", tmp_path / "a", "--port-base")
    assert r.returncode == 2
    r = run_postern("instance", "frob")
    assert r.returncode == 2 and "frob" in r.stderr
    r = run_postern("instance")
    assert r.returncode == 2


def test_refuses_non_empty_directory(tmp_path):
    d = tmp_path / "full"
    d.mkdir()
    (d / "something").write_text("x")
    r = init(d)
    assert r.returncode == 1
    assert "not empty" in r.stderr and str(d) in r.stderr
    assert sorted(os.listdir(d)) == ["something"]


def test_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = init(f)
    assert r.returncode == 1
    assert r.stderr.startswith("postern: ")


def test_refuses_paths_postern_conf_cannot_hold(tmp_path):
    r = init(tmp_path / "a b")
    assert r.returncode == 1
    assert "white space" in r.stderr
    assert not (tmp_path / "a b").exists()


def test_refuses_dollar_in_path(tmp_path):
    r = init(tmp_path / "cost$5")
    assert r.returncode == 1
    assert "'$'" in r.stderr
    assert not (tmp_path / "cost$5").exists()


def test_empty_existing_directory_is_fine(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    r = init(d, "--port-base", "30000")
    assert r.returncode == 0, r.stderr


def test_relative_and_nested_dir(tmp_path):
    r = run_postern("instance", "init", "a/b/c", "--port-base", "30000",
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    env = parse_env(r.stdout)
    assert env["INSTANCE_DIR"] == str((tmp_path / "a/b/c").resolve())
    assert (tmp_path / "a/b/c/postern.conf").exists()


def test_existing_instance_refused_unless_force(tmp_path):
    d = tmp_path / "inst"
    assert init(d, "--port-base", "30000").returncode == 0
    r = run_postern("-c", d, "user", "add", "keep", "--password", "pw1")
    assert r.returncode == 0, r.stderr
    r = init(d, "--port-base", "30000")
    assert r.returncode == 1
    assert "already a postern instance" in r.stderr
    assert "--force" in r.stderr
    r = init(d, "--port-base", "32000", "--force")
    assert r.returncode == 0, r.stderr
    assert parse_env(r.stdout)["PORT_BASE"] == "32000"
    assert (d / "instance.env").read_text() == r.stdout
    # The users survive a forced re-init.
    r = run_postern("-c", d, "user", "verify", "keep", input="pw1\n")
    assert r.returncode == 0, r.stderr


def test_force_keeps_certificate(tmp_path):
    d = tmp_path / "inst"
    assert init(d).returncode == 0
    cert = (d / "tls/cert.pem").read_bytes()
    assert init(d, "--force").returncode == 0
    assert (d / "tls/cert.pem").read_bytes() == cert


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_layout_and_modes(tmp_path):
    d = tmp_path / "inst"
    assert init(d).returncode == 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold",
                "corrupt", "public", "private", "pid"):
        assert (d / "spool" / sub).is_dir(), sub
    for sub in ("data", "store", "log", "tls"):
        assert (d / sub).is_dir(), sub
    for private in ("spool/incoming", "spool/active", "spool/deferred",
                    "spool/hold", "spool/corrupt", "spool/private",
                    "spool/maildrop", "store", "tls"):
        assert mode(d / private) & 0o077 == 0, private
    # data/: the daemons' group may read the user database
    assert mode(d / "data") == 0o750
    assert mode(d / "tls/key.pem") == 0o600
    assert (d / "data/users.db").exists()
    r = run_postern("-c", d, "user", "list")
    assert r.returncode == 0 and r.stdout == ""


def test_postern_conf_settings(tmp_path):
    d = tmp_path / "inst"
    assert init(d).returncode == 0
    real = str(d.resolve())
    user = store_user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        # master never runs daemons as root: system accounts, else nobody
        user = store_user = "nobody"
        try:
            pwd.getpwnam("postern")
            user = store_user = "postern"
            pwd.getpwnam("postern-mail")
            store_user = "postern-mail"
        except KeyError:
            pass
    want = {
        "queue_directory": f"{real}/spool",
        "data_directory": f"{real}/data",
        "store_directory": f"{real}/store",
        "daemon_directory": str(BIN),
        "command_directory": str(BIN),
        "maillog_file": f"{real}/log/postern.log",
        "mail_owner": user,
        "store_owner": store_user,
        "myhostname": "localhost",
        "inet_interfaces": "127.0.0.1",
        "tls_cert_file": f"{real}/tls/cert.pem",
        "tls_key_file": f"{real}/tls/key.pem",
        "user_database": f"{real}/data/users.db",
    }
    r = run_postern("-c", d, "config", *want)
    assert r.returncode == 0, r.stderr
    got = dict(line.split(" = ", 1) for line in r.stdout.splitlines())
    assert got == want


def test_owners_when_made_by_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = tmp_path / "inst"
    assert init(d).returncode == 0
    owner = run_postern("-c", d, "config", "-h", "mail_owner").stdout.strip()
    store = run_postern("-c", d, "config", "-h", "store_owner").stdout.strip()
    uid = pwd.getpwnam(owner).pw_uid
    assert uid != 0
    for sub in ("spool/incoming", "spool/private", "spool/public", "data",
                "log"):
        assert os.stat(d / sub).st_uid == uid, sub
    assert os.stat(d / "store").st_uid == pwd.getpwnam(store).pw_uid
    for sub in ("spool", "spool/pid", "tls"):
        assert os.stat(d / sub).st_uid == 0, sub


def test_master_conf_services(tmp_path):
    """master.conf holds the services of the daemons built so far: each
    well-formed, inet ones on 127.0.0.1 at a port of the plan, each
    program one of this build's; plus the column header and the plan."""
    d = tmp_path / "inst"
    assert init(d, "--port-base", "30000").returncode == 0
    text = (d / "master.conf").read_text()
    plan = {30000 + off for off in PORT_OFFSETS.values()}
    names = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split()
        assert len(cols) >= 8, line
        name, kind, command = cols[0], cols[1], cols[7]
        assert name not in names, f"service {name} twice"
        names.append(name)
        assert kind in ("inet", "unix", "fifo"), line
        if kind == "inet":
            host, _, port = name.rpartition(":")
            assert host == "127.0.0.1", line
            assert int(port) in plan, line
        else:
            assert "/" not in name and ":" not in name, line
        assert "/" not in command, line
        # master starts only if every program is there (make all)
        assert (BIN / command).exists(), line
    # The column header and the port plan are there.
    assert "# service" in text and "maxproc" in text
    assert "30025" in text and "30993" in text


def test_certificate_serves_tls_for_localhost(tmp_path):
    """The generated key and certificate work for a TLS server, and a
    client that trusts the certificate verifies it for localhost and
    127.0.0.1."""
    d = tmp_path / "inst"
    assert init(d).returncode == 0
    cert, key = d / "tls/cert.pem", d / "tls/key.pem"
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            conn, _addr = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello\n")
            except ssl.SSLError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        for name in ("localhost", "127.0.0.1"):
            client_ctx = ssl.create_default_context(cafile=str(cert))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with client_ctx.wrap_socket(s, server_hostname=name) as tls:
                    assert tls.recv(6) == b"hello\n"
    finally:
        t.join(timeout=10)
        listener.close()
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout",
                          "-subject", "-ext", "subjectAltName"],
                         capture_output=True, text=True)
    if out.returncode == 0:
        assert "CN = localhost" in out.stdout
        assert "DNS:localhost" in out.stdout


def test_info_on_a_non_instance(tmp_path):
    r = run_postern("-c", tmp_path, "instance", "info")
    assert r.returncode == 1
    assert "not an instance" in r.stderr
    r = run_postern("-c", tmp_path, "instance", "info", "extra")
    assert r.returncode == 2


def test_fixture_instance_factory(instance_factory):
    """The conftest interface itself: ports, paths, commands."""
    inst = instance_factory()
    assert isinstance(inst, Instance)
    assert inst.port("SMTP") == inst.port_base + 25
    assert inst.port("imaps") == inst.port_base + 993
    assert inst.port("SIEVE_PORT") == inst.port_base + 190
    assert inst.host == "127.0.0.1"
    assert inst.config_dir == inst.dir.resolve()
    assert inst.log_text() == ""
    assert inst.postern("instance", "info").stdout == \
        (inst.dir / "instance.env").read_text()
    inst.set_config("max_use", "7")
    assert inst.postern("config", "-h", "max_use").stdout == "7\n"
    inst.add_service("# a comment line from the test")
    assert (inst.dir / "master.conf").read_text().endswith(
        "# a comment line from the test\n")
    assert not inst.running()


def test_free_port_base():
    a, b = free_port_base(), free_port_base()
    assert 20000 <= a <= 60000 and 20000 <= b <= 60000
    ports_a = {a + o for o in PORT_OFFSETS.values()}
    ports_b = {b + o for o in PORT_OFFSETS.values()}
    assert not ports_a & ports_b


def test_new_instance_dir_is_short():
    d = new_instance_dir()
    try:
        # Room for spool/private/<name> under the 108-byte sun_path.
        assert len(str(d)) < 40
        assert os.listdir(d) == []
    finally:
        d.rmdir()
