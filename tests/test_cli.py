# SPDX-License-Identifier: MIT
"""The postern CLI: start/stop/reload/status, config, map, user, help."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import POSTERN, PROGS, run_postern

# ----------------------------------------------------------------- help


def test_help_lists_every_verb():
    r = run_postern("help")
    assert r.returncode == 0
    for verb in ("start", "stop", "reload", "status", "config", "map build",
                 "map query", "user add", "user passwd", "user delete",
                 "user list", "user verify", "instance init",
                 "instance info", "help", "-c DIR", "-v"):
        assert verb in r.stdout, verb
    assert run_postern("--help").stdout == r.stdout
    assert run_postern("-h").stdout == r.stdout


def test_no_arguments_prints_usage_and_fails():
    r = run_postern()
    assert r.returncode == 2
    assert "usage: postern" in r.stderr


def test_unknown_command_and_option():
    r = run_postern("frobnicate")
    assert r.returncode == 2
    assert 'unknown command "frobnicate"' in r.stderr
    assert "postern help" in r.stderr
    r = run_postern("-q", "status")
    assert r.returncode == 2 and "unknown option -q" in r.stderr
    r = run_postern("-c")
    assert r.returncode == 2 and "-c needs a value" in r.stderr


def test_missing_config_says_what_to_do(tmp_path):
    missing = tmp_path / "nowhere"
    for verb in (["config"], ["status"], ["start"], ["stop"],
                 ["user", "list"]):
        r = run_postern("-c", missing, *verb)
        assert r.returncode == 1, verb
        assert (f"postern: cannot read {missing}/postern.conf: No such file "
                f"or directory (use -c DIR or set POSTERN_CONFIG_DIR)"
                in r.stderr), (verb, r.stderr)


def test_config_dir_from_environment(instance_factory):
    inst = instance_factory()
    r = run_postern("config", "-h", "queue_directory",
                    env={"POSTERN_CONFIG_DIR": str(inst.dir)})
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{inst.config_dir}/spool\n"
    # -c wins over the environment
    r = run_postern("-c", inst.dir, "config", "-h", "queue_directory",
                    env={"POSTERN_CONFIG_DIR": "/nonexistent"})
    assert r.stdout == f"{inst.config_dir}/spool\n"

# ----------------------------------------------------------------- control


def configured_services(inst):
    """Names of the services in the instance's master.conf."""
    names = []
    for line in (inst.dir / "master.conf").read_text().splitlines():
        if line.strip() and not line.startswith(("#", " ", "\t")):
            names.append(line.split()[0])
    return names



def test_start_status_reload_stop_round_trip(instance_factory):
    inst = instance_factory()
    pid_file = inst.dir / "spool/pid/master.pid"

    r = inst.status()
    assert r.returncode == 1
    assert "postern: master is not running (no pid file" in r.stderr
    assert r.stdout == ""
    r = inst.postern("status", "-k", check=False)
    assert r.returncode == 1 and r.stdout == ""

    r = inst.start()
    assert re.search(r"master started \(pid \d+\)", r.stdout), r.stdout
    pid = inst.master_pid()
    assert pid is not None
    assert pid_file.exists()

    r = inst.status()
    assert r.returncode == 0, r.stderr
    assert f"pid {pid}" in r.stdout
    assert "running" in r.stdout

    r = inst.postern("status", "-k")
    lines = r.stdout.splitlines()
    assert lines, r.stderr
    first = lines[0].split()
    assert first[0] == "master"
    fields = dict(f.split("=", 1) for f in first[1:])
    assert fields["pid"] == str(pid)
    assert int(fields["uptime"]) >= 0
    assert fields["config"] == str(inst.config_dir)
    assert fields["services"] == str(len(configured_services(inst)))
    for line in lines[1:]:
        assert line.startswith("service "), line
    assert ({dict(f.split("=", 1) for f in line.split()[1:])["name"]
             for line in lines[1:]} == set(configured_services(inst)))

    # start twice refuses
    r = inst.postern("start", check=False)
    assert r.returncode == 1
    assert f"already running (pid {pid})" in r.stderr
    assert inst.master_pid() == pid

    mark = inst.log_mark()
    r = inst.reload()
    assert f"pid {pid}" in r.stdout
    inst.wait_for_log(r"reload", start=mark)
    assert inst.master_pid() == pid
    assert inst.status().returncode == 0

    r = inst.stop()
    assert "master stopped" in r.stdout
    assert inst.master_pid() is None
    r = inst.status()
    assert r.returncode == 1
    assert "master is not running" in r.stderr

    r = inst.postern("stop", check=False)
    assert r.returncode == 1
    assert "master is not running" in r.stderr
    r = inst.postern("reload", check=False)
    assert r.returncode == 1
    assert "master is not running" in r.stderr

    # and it starts again
    inst.start()
    assert inst.status().returncode == 0


def test_status_table_lists_services(instance_factory):
    if not (PROGS / "testsvc").exists():
        pytest.skip(f"{PROGS}/testsvc is not built")
    inst = instance_factory()
    inst.use_test_programs()
    smtp = inst.port("SMTP")
    inst.add_service(f"127.0.0.1:{smtp} inet n - n - 3 testsvc")
    inst.add_service("tsvc unix n - n - - testsvc")
    count = len(configured_services(inst))
    inst.start()
    with socket.create_connection(("127.0.0.1", smtp), timeout=10) as s:
        assert s.recv(100).startswith(b"hello ")
        r = inst.postern("status", "-k")
        records = [line.split() for line in r.stdout.splitlines()]
        assert records[0][0] == "master"
        assert (dict(f.split("=", 1) for f in records[0][1:])["services"]
                == str(count))
        services = {}
        for rec in records[1:]:
            assert rec[0] == "service"
            fields = dict(f.split("=", 1) for f in rec[1:])
            services[fields["name"]] = fields
        tcp = services[f"127.0.0.1:{smtp}"]
        assert tcp["type"] == "inet"
        assert tcp["listen"] == f"127.0.0.1:{smtp}"
        assert tcp["maxproc"] == "3"
        assert int(tcp["procs"]) >= 1
        assert tcp["throttled"] == "no"
        assert services["tsvc"]["type"] == "unix"

        r = inst.postern("status")
        lines = r.stdout.splitlines()
        assert lines[0].startswith("master: running, pid ")
        assert f"config {inst.config_dir}, {count} services" in lines[0]
        header = next(line for line in lines if line.startswith("SERVICE"))
        assert header.split() == ["SERVICE", "TYPE", "LISTEN", "USER",
                                  "MAXPROC", "PROCS", "AVAIL", "THROTTLED",
                                  "PIDS"]
        rows = {line.split()[0]: line.split() for line in lines
                if line.startswith(("127.0.0.1:", "tsvc"))}
        assert rows[f"127.0.0.1:{smtp}"][1:3] == ["inet", f"127.0.0.1:{smtp}"]
        assert rows["tsvc"][1] == "unix"


def test_status_table_without_services(instance_factory):
    inst = instance_factory()
    conf = inst.dir / "master.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(True)
                            if line.startswith("#") or not line.strip()))
    inst.start()
    r = inst.postern("status")
    assert r.stdout.startswith("master: running, pid ")
    assert f"config {inst.config_dir}, 0 services" in r.stdout
    assert "no services" in r.stdout


def test_status_takes_no_arguments(instance_factory):
    inst = instance_factory()
    assert inst.postern("status", "extra", check=False).returncode == 2
    assert inst.postern("status", "-z", check=False).returncode == 2
    assert inst.postern("stop", "now", check=False).returncode == 2


def test_reload_refuses_a_broken_master_conf(instance):
    pid = instance.master_pid()
    instance.add_service("this line is not a service")
    r = instance.postern("reload", check=False)
    assert r.returncode == 1
    assert "master.conf:" in r.stderr
    assert "not reloading" in r.stderr
    assert instance.master_pid() == pid
    # Put it right again so that teardown sees a clean master.
    conf = instance.dir / "master.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(True)
                            if not line.startswith("this line")))
    instance.reload()


def test_init_force_refused_while_running(instance):
    r = run_postern("instance", "init", instance.dir, "--force")
    assert r.returncode == 1
    assert "running" in r.stderr and "stop" in r.stderr


def test_start_fails_cleanly_without_master(instance_factory, tmp_path):
    inst = instance_factory()
    inst.set_config("daemon_directory", str(tmp_path))
    r = inst.postern("start", check=False)
    assert r.returncode == 1
    assert f"cannot run {tmp_path}/master" in r.stderr
    assert "daemon_directory" in r.stderr
    assert inst.master_pid() is None


def test_start_with_broken_config_fails(instance_factory):
    inst = instance_factory()
    with open(inst.dir / "postern.conf", "a") as f:
        f.write("default_process_limit = lots\n")
    r = inst.postern("start", check=False)
    assert r.returncode == 1
    assert "postern.conf:" in r.stderr
    assert inst.master_pid() is None

# ----------------------------------------------------------------- config


def conf_lines(text):
    return dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
                for line in text.splitlines())


def test_config_lists_non_default_settings_as_written(instance_factory):
    inst = instance_factory()
    r = inst.postern("config")
    lines = r.stdout.splitlines()
    names = [line.split(" = ")[0] for line in lines]
    assert names == sorted(names)
    assert set(names) == {
        "command_directory", "daemon_directory", "data_directory",
        "inet_interfaces", "mail_owner", "maillog_file", "myhostname",
        "queue_directory", "store_directory", "store_owner",
        "tls_cert_file", "tls_key_file"}
    assert inst.postern("config", "-n").stdout == r.stdout
    # raw vs expanded
    inst.set_config("myorigin", "$myhostname")
    assert "myorigin = $myhostname" in inst.postern("config").stdout
    assert "myorigin = localhost" in inst.postern("config", "-x").stdout
    assert "localhost\n" in inst.postern("config", "-h", "-x").stdout
    assert " = " not in inst.postern("config", "-h").stdout


def test_config_defaults():
    r = run_postern("-c", "/nonexistent", "config", "-d")
    assert r.returncode == 0, r.stderr
    d = conf_lines(r.stdout)
    assert d["queue_directory"] == "/var/spool/postern"
    assert d["user_database"] == "$data_directory/users.db"
    assert d["master_stop_timeout"] == "10s"
    names = [line.split(" = ")[0].rstrip(" =") for line in r.stdout.splitlines()]
    assert names == sorted(names)
    r = run_postern("-c", "/nonexistent", "config", "-d", "user_database")
    assert r.stdout == "user_database = $data_directory/users.db\n"
    r = run_postern("-c", "/nonexistent", "config", "-d", "-x", "-h",
                    "user_database")
    assert r.stdout == "/var/lib/postern/users.db\n"
    r = run_postern("-c", "/nonexistent", "config", "-dh", "max_use")
    assert r.stdout == "100\n"
    r = run_postern("-c", "/nonexistent", "config", "-d", "nope")
    assert r.returncode == 1 and 'unknown parameter "nope"' in r.stderr


def test_config_keys_are_expanded(instance_factory):
    inst = instance_factory()
    r = inst.postern("config", "user_database", "max_use", "myhostname")
    assert r.stdout == (f"user_database = {inst.config_dir}/data/users.db\n"
                        "max_use = 100\n"
                        "myhostname = localhost\n")
    r = inst.postern("config", "-h", "user_database", "max_use")
    assert r.stdout == f"{inst.config_dir}/data/users.db\n100\n"


def test_config_unknown_key(instance_factory):
    inst = instance_factory()
    r = inst.postern("config", "max_use", "no_such_thing", "max_idle",
                     check=False)
    assert r.returncode == 1
    assert 'unknown parameter "no_such_thing"' in r.stderr
    assert r.stdout == "max_use = 100\nmax_idle = 100s\n"


def test_config_option_errors(instance_factory):
    inst = instance_factory()
    assert inst.postern("config", "-q", check=False).returncode == 2
    assert inst.postern("config", "-n", "max_use", check=False).returncode == 2
    assert inst.postern("config", "-e", check=False).returncode == 2
    assert inst.postern("config", "-e", "-x", "a=b", check=False).returncode == 2


def test_config_edit_keeps_comments_and_order(instance_factory):
    inst = instance_factory()
    path = inst.dir / "postern.conf"
    path.write_text(path.read_text() +
                    "# about max_use\n"
                    "max_use = 5\n"
                    "# a comment between\n"
                    "max_idle = 10s\n"
                    "mydestination = a,\n"
                    "    b,\n"
                    "    # comment inside a continuation\n"
                    "    c\n"
                    "message_size_limit = 1m\n")
    before = path.read_text()
    os.chmod(path, 0o640)
    inst.postern("config", "-e", "max_use=42", "mydestination = x, y",
                 "max_connections=7")
    after = path.read_text()
    assert "# about max_use\nmax_use = 42\n# a comment between\n" in after
    assert ("mydestination = x, y\n"
            "    # comment inside a continuation\n"
            "message_size_limit = 1m\n") in after
    assert after.endswith("max_connections = 7\n")
    assert "    b,\n" not in after
    # Everything else is as it was.
    assert after.startswith(before.split("# about max_use")[0])
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)
    r = inst.postern("config", "-h", "max_use", "mydestination",
                     "max_connections")
    assert r.stdout == "42\nx, y\n7\n"
    # no temporary files left behind
    assert sorted(p.name for p in inst.dir.iterdir()
                  if p.name.startswith("postern.conf")) == ["postern.conf"]


def test_config_edit_duplicates_and_last_wins(instance_factory):
    inst = instance_factory()
    path = inst.dir / "postern.conf"
    path.write_text(path.read_text() + "max_use = 1\nmax_use = 2\n")
    inst.postern("config", "-e", "max_use=3", "max_use=4")
    text = path.read_text()
    assert text.count("max_use") == 1
    assert "max_use = 4\n" in text


def test_config_edit_validation(instance_factory):
    inst = instance_factory()
    path = inst.dir / "postern.conf"
    before = path.read_text()
    cases = [
        (["default_process_limit=abc"], "bad value for default_process_limit"),
        (["max_idle=forever"], "bad value for max_idle"),
        (["debug=maybe"], "bad value for debug"),
        (["no_such_param=1"], 'unknown parameter "no_such_param"'),
        (["max_use"], "is not KEY=VALUE"),
        (["max_use=1", "max_idle=x"], "bad value for max_idle"),
        (["myorigin=$nonexistent_name"], "myorigin"),
    ]
    for args, message in cases:
        r = inst.postern("config", "-e", *args, check=False)
        assert r.returncode == 1, args
        assert message in r.stderr, (args, r.stderr)
        assert "not changed" in r.stderr, (args, r.stderr)
        assert path.read_text() == before, args
    # A $name loop is found when the whole file is checked.
    inst.set_config("myorigin", "$mydomain")
    before = path.read_text()
    r = inst.postern("config", "-e", "mydomain=$myorigin", check=False)
    assert r.returncode == 1
    assert "loop" in r.stderr and "not changed" in r.stderr
    assert path.read_text() == before


def test_config_edit_needs_an_existing_file(tmp_path):
    r = run_postern("-c", tmp_path, "config", "-e", "max_use=1")
    assert r.returncode == 1
    assert "cannot read" in r.stderr
    assert not (tmp_path / "postern.conf").exists()


def test_broken_config_reports_file_and_line(instance_factory):
    inst = instance_factory()
    path = inst.dir / "postern.conf"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines) + "\nmax_use = many\n")
    bad_line = len(lines) + 1
    for args in (["config"], ["config", "max_use"], ["status"],
                 ["user", "list"]):
        r = inst.postern(*args, check=False)
        assert r.returncode == 1, args
        assert f"{inst.config_dir}/postern.conf:{bad_line}:" in r.stderr, \
            (args, r.stderr)
        assert r.stderr.startswith("postern: "), r.stderr
        assert r.stdout == ""
    # Unknown names are warnings, not errors.
    path.write_text("\n".join(lines) + "\nfrobnication = 1\n")
    r = inst.postern("config", "max_use")
    assert r.stdout == "max_use = 100\n"
    assert "frobnication" in r.stderr
    # -e still works on a broken file (that is how one fixes it).
    path.write_text("\n".join(lines) + "\nmax_use = many\n")
    r = inst.postern("config", "-e", "max_use=9")
    assert inst.postern("config", "-h", "max_use").stdout == "9\n"

# ----------------------------------------------------------------- map


@pytest.mark.parametrize("kind", ["db", "file"])
def test_map_build_and_query(tmp_path, kind):
    src = tmp_path / "aliases"
    src.write_text("# aliases\n"
                   "postmaster: root\n"
                   "Alice@Example.ORG   alice\n"
                   "list  a@example.org,\n"
                   "      b@example.org\n")
    r = run_postern("map", "build", f"{kind}:{src}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    if kind == "db":
        assert (tmp_path / "aliases.db").exists()
        # A spec without a type is db:
        assert run_postern("map", "build", src).returncode == 0
    spec = f"{kind}:{src}"
    for key, value in (("postmaster", "root"), ("alice@example.org", "alice"),
                       ("ALICE@example.org", "alice"),
                       ("list", "a@example.org, b@example.org")):
        r = run_postern("map", "query", spec, key)
        assert r.returncode == 0, (key, r.stderr)
        assert r.stdout == value + "\n"
    r = run_postern("map", "query", spec, "nobody")
    assert r.returncode == 1
    assert r.stdout == "" and r.stderr == ""


def test_map_build_errors_name_file_and_line(tmp_path):
    src = tmp_path / "access"
    src.write_text("good ok\nlonely\nfine yes\n")
    for spec in (str(src), f"file:{src}"):
        r = run_postern("map", "build", spec)
        assert r.returncode == 1
        assert f"postern: {src}:2:" in r.stderr
        assert "not built" in r.stderr
    assert not (tmp_path / "access.db").exists()
    # A failed rebuild leaves the old table in place.
    src.write_text("good ok\n")
    assert run_postern("map", "build", src).returncode == 0
    src.write_text("good changed\nlonely\n")
    assert run_postern("map", "build", src).returncode == 1
    assert run_postern("map", "query", src, "good").stdout == "ok\n"


def test_map_duplicate_key_warns_but_builds(tmp_path):
    src = tmp_path / "t"
    src.write_text("a 1\na 2\n")
    r = run_postern("map", "build", src)
    assert r.returncode == 0
    assert f"{src}:2:" in r.stderr and "warning" in r.stderr
    assert run_postern("map", "query", src, "a").stdout == "1\n"


def test_map_errors(tmp_path):
    r = run_postern("map", "query", tmp_path / "missing", "k")
    assert r.returncode == 1
    assert "missing" in r.stderr and "postern map build" in r.stderr
    r = run_postern("map", "query", f"bogus:{tmp_path}/x", "k")
    assert r.returncode == 1 and "bogus" in r.stderr
    r = run_postern("map", "build", tmp_path / "missing")
    assert r.returncode == 1 and "missing" in r.stderr
    assert run_postern("map").returncode == 2
    assert run_postern("map", "build").returncode == 2
    assert run_postern("map", "query", "x").returncode == 2
    assert run_postern("map", "frob").returncode == 2


def test_map_rebuild_while_another_process_reads(tmp_path):
    """Readers never see a half-built table: every query during many
    rebuilds answers from the old or the new version, never fails."""
    src = tmp_path / "big"
    versions = []
    for v in range(2):
        lines = [f"key{i} v{v}-{i}" for i in range(3000)]
        versions.append("\n".join(lines) + "\n")
    src.write_text(versions[0])
    assert run_postern("map", "build", src).returncode == 0

    stop = threading.Event()
    results = []

    def reader():
        while not stop.is_set():
            r = subprocess.run([str(POSTERN), "map", "query", str(src),
                                "key2999"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL)
            results.append((r.returncode, r.stdout, r.stderr))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(20):
            src.write_text(versions[n % 2])
            r = run_postern("map", "build", src)
            assert r.returncode == 0, r.stderr
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert len(results) > 5
    for rc, out, err in results:
        assert rc == 0, err
        assert out in ("v0-2999\n", "v1-2999\n")

# ----------------------------------------------------------------- user


def test_user_add_verify_list_passwd_delete(instance_factory):
    inst = instance_factory()
    assert inst.postern("user", "list").stdout == ""
    r = inst.postern("user", "add", "alice", "--password-stdin",
                     input="Secret one\n")
    assert r.stdout == "" and "Secret" not in r.stderr
    inst.postern("user", "add", "bob", "--password", "pw-bob")
    inst.postern("user", "add", "carol.x_y-z", "--password=pw3")
    assert inst.postern("user", "list").stdout == "alice\nbob\ncarol.x_y-z\n"

    assert inst.postern("user", "verify", "alice",
                        input="Secret one\n").returncode == 0
    r = inst.postern("user", "verify", "alice", input="secret one\n",
                     check=False)
    assert r.returncode == 1 and "wrong password" in r.stderr
    assert inst.postern("user", "verify", "bob", input="pw-bob").returncode == 0
    assert inst.postern("user", "verify", "alice", "--password", "Secret one"
                        ).returncode == 0
    r = inst.postern("user", "verify", "nobody", input="x\n", check=False)
    assert r.returncode == 1 and "no user nobody" in r.stderr

    r = inst.postern("user", "add", "alice", "--password", "x", check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert inst.postern("user", "verify", "alice",
                        input="Secret one\n").returncode == 0

    inst.postern("user", "passwd", "alice", "--password-stdin",
                 input="Two\r\n")
    assert inst.postern("user", "verify", "alice", input="Two\n").returncode == 0
    assert inst.postern("user", "verify", "alice", input="Secret one\n",
                        check=False).returncode == 1
    r = inst.postern("user", "passwd", "nobody", "--password", "x", check=False)
    assert r.returncode == 1 and "nobody" in r.stderr

    inst.postern("user", "delete", "bob")
    assert inst.postern("user", "list").stdout == "alice\ncarol.x_y-z\n"
    assert inst.postern("user", "verify", "bob", input="pw-bob\n",
                        check=False).returncode == 1
    r = inst.postern("user", "delete", "bob", check=False)
    assert r.returncode == 1 and "bob" in r.stderr


@pytest.mark.parametrize("name", ["Alice", ".hidden", "-dash", "a/b", "a b",
                                  "x" * 65, "a@b", "ä"])
def test_user_invalid_names_rejected(instance_factory, name):
    inst = instance_factory()
    for verb in ("add", "passwd", "delete", "verify"):
        args = ["user", verb]
        if verb in ("add", "passwd"):
            args += ["--password", "pw"]
        args += ["--", name]
        r = inst.postern(*args, check=False, input="pw\n")
        assert r.returncode == 1, verb
        assert "invalid user name" in r.stderr
    assert inst.postern("user", "list").stdout == ""
    if name.startswith("-"):
        # Without "--" it is an unknown option.
        r = inst.postern("user", "add", name, "--password", "pw", check=False)
        assert r.returncode == 2


def test_user_name_limits(instance_factory):
    inst = instance_factory()
    inst.postern("user", "add", "x" * 64, "--password", "pw")
    inst.postern("user", "add", "a", "--password", "pw")
    assert inst.postern("user", "list").stdout == "a\n" + "x" * 64 + "\n"


def test_user_empty_or_missing_password_refused(instance_factory):
    inst = instance_factory()
    for args, stdin in ((["--password", ""], None),
                        (["--password-stdin"], "\n"),
                        (["--password-stdin"], "")):
        r = inst.postern("user", "add", "dave", *args, input=stdin,
                         check=False)
        assert r.returncode == 1, args
        assert "password" in r.stderr
    # No option and stdin not a terminal: refuse rather than guess.
    r = inst.postern("user", "add", "dave", check=False)
    assert r.returncode == 1
    assert "--password-stdin" in r.stderr
    assert inst.postern("user", "list").stdout == ""
    inst.postern("user", "add", "dave", "--password", "ok")
    r = inst.postern("user", "passwd", "dave", "--password-stdin", input="\n",
                     check=False)
    assert r.returncode == 1 and "empty" in r.stderr
    assert inst.postern("user", "verify", "dave", input="ok\n").returncode == 0


def test_user_usage_errors(instance_factory):
    inst = instance_factory()
    for args in (["user"], ["user", "frob"], ["user", "add"],
                 ["user", "add", "a", "b", "--password", "x"],
                 ["user", "add", "a", "--password"],
                 ["user", "add", "a", "--bogus"],
                 ["user", "list", "extra"], ["user", "delete"]):
        r = inst.postern(*args, check=False)
        assert r.returncode == 2, args
        assert "usage:" in r.stderr, args


def test_user_password_never_echoed(instance_factory):
    inst = instance_factory()
    pw = "Very-Secret-Password-42"
    outputs = []
    outputs.append(inst.postern("-v", "user", "add", "erin", "--password-stdin",
                                input=pw + "\n"))
    outputs.append(inst.postern("-v", "user", "verify", "erin", input=pw + "\n"))
    outputs.append(inst.postern("user", "verify", "erin", input="x" + pw,
                                check=False))
    for r in outputs:
        assert pw not in r.stdout and pw not in r.stderr
    assert pw.encode() not in (inst.dir / "data/users.db").read_bytes()


def test_user_list_without_database(instance_factory):
    inst = instance_factory()
    (inst.dir / "data/users.db").unlink()
    r = inst.postern("user", "list")
    assert r.stdout == ""
    r = inst.postern("user", "verify", "a", input="x\n", check=False)
    assert r.returncode == 1 and "user database" in r.stderr
    inst.postern("user", "add", "first", "--password", "pw")
    assert inst.postern("user", "list").stdout == "first\n"


def test_user_quota_set_show_and_errors(instance_factory):
    inst = instance_factory()
    inst.postern("user", "add", "qa", "--password", "pw-qa")
    out = inst.postern("user", "quota", "qa").stdout
    assert out.startswith("qa: ") and "quota_storage_limit" in out
    assert inst.postern("user", "quota", "qa", "5m").stdout == \
        "qa: 5242880 (user database)\n"
    assert inst.postern("user", "quota", "qa").stdout == \
        "qa: 5242880 (user database)\n"
    # the password survives a quota change
    assert inst.postern("user", "verify", "qa", input="pw-qa\n").returncode == 0
    # 0 returns to the default
    out = inst.postern("user", "quota", "qa", "0").stdout
    assert "quota_storage_limit" in out
    r = inst.postern("user", "quota", "qa", "5x", check=False)
    assert r.returncode == 2 and "bad size" in r.stderr
    r = inst.postern("user", "quota", "ghost", "1k", check=False)
    assert r.returncode == 1 and "no such user" in r.stderr
