# SPDX-License-Identifier: MIT
"""TLS session resumption across worker processes: the session ticket
keys every TLS server of an instance shares (lib/tls_ticket.c, kept by
master in $queue_directory/pid/tls_ticket_keys).

A session made with one worker process resumes ("Reused") with a
different worker process of the same service, for TLS 1.3 and 1.2, on
smtpd SMTPS and STARTTLS and imapd IMAPS (Python's ssl module with
session=, the first connection held open so master must hand the second
one to another process; the pids come from the log). Keys rotate by the
clock without a restart: a ticket whose key stopped issuing is still
accepted for one more period, then refused (a full handshake that
works). The key file is mode 0600 and master's."""

import os
import re
import socket
import ssl
import stat
import struct
import subprocess
import time

import pytest

from conftest import HOST, pid_alive
from test_tls_server import (edit_service, make_instance, s_client,
                             session_works, wait_tls_ready)

KEY_FILE = ("spool", "pid", "tls_ticket_keys")
KEY_SIZE = 8 + 16 + 32 + 32

# kind -> (port name, program in the log)
KINDS = {
    "SMTPS": ("SMTPS", "smtpd"),
    "SMTP": ("SMTP", "smtpd"),
    "IMAPS": ("IMAPS", "imapd"),
}


# ------------------------------------------------------------------ clients

def client_ctx(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def expect(sock, regex, buf):
    """Read from sock until the data since buf[0] matches regex (bytes)."""
    pattern = re.compile(regex, re.M)
    while True:
        m = pattern.search(buf[0])
        if m:
            buf[0] = buf[0][m.end():]
            return m
        data = sock.recv(4096)
        if not data:
            raise AssertionError(f"connection closed waiting for {regex!r}: "
                                 f"{buf[0]!r}")
        buf[0] += data


class Conn:
    """One TLS connection to a service, its greeting read (so a TLS 1.3
    ticket has arrived), held open until quit()."""

    def __init__(self, inst, kind, ctx, session=None):
        self.kind = kind
        port = inst.port(KINDS[kind][0])
        raw = socket.create_connection((HOST, port), timeout=20)
        self.local_port = raw.getsockname()[1]
        buf = [b""]
        if kind == "SMTP":
            expect(raw, rb"^220 .*\r\n", buf)
            raw.sendall(b"EHLO client.example\r\n")
            expect(raw, rb"^250 .*\r\n", buf)
            raw.sendall(b"STARTTLS\r\n")
            expect(raw, rb"^220 .*\r\n", buf)
        self.sock = ctx.wrap_socket(raw, session=session)
        self.buf = [b""]
        if kind == "SMTP":
            self.sock.sendall(b"EHLO client.example\r\n")
            expect(self.sock, rb"^250 .*\r\n", self.buf)
        elif kind == "SMTPS":
            expect(self.sock, rb"^220 .*\r\n", self.buf)
        else:
            expect(self.sock, rb"^\* OK .*\r\n", self.buf)

    @property
    def reused(self):
        return self.sock.session_reused

    @property
    def session(self):
        return self.sock.session

    def quit(self):
        if self.kind == "IMAPS":
            self.sock.sendall(b"a LOGOUT\r\n")
            expect(self.sock, rb"^a OK .*\r\n", self.buf)
        else:
            self.sock.sendall(b"QUIT\r\n")
            expect(self.sock, rb"^221 .*\r\n", self.buf)
        self.sock.close()


def tls_pids(inst, kind, conns, mark):
    """The worker pid that served each of conns (from the log after mark)."""
    prog = KINDS[kind][1]
    if prog == "imapd":
        pids = []
        for c in conns:
            m = inst.wait_for_log(rf"\b{prog}\[(\d+)\]: .*connect from \S+ "
                                  rf"port {c.local_port}\b", start=mark)
            pids.append(int(m.group(1)))
        return pids
    # smtpd logs no client port: one "TLS connection established" line
    # per connection, in order, each with its process's pid.
    pattern = rf"\b{prog}\[(\d+)\]: .*TLS connection established from"
    deadline = time.monotonic() + 10
    while True:
        found = re.findall(pattern, inst.log_text()[mark:])
        if len(found) >= len(conns) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) == len(conns), inst.log_text()[mark:]
    return [int(p) for p in found]


def read_keys(inst):
    """[(not_before, name bytes)] of the key file."""
    data = inst.dir.joinpath(*KEY_FILE).read_bytes()
    assert data[:4] == b"PTK1", data[:8]
    (n,) = struct.unpack(">I", data[4:8])
    assert len(data) == 8 + n * KEY_SIZE
    keys = []
    for i in range(n):
        off = 8 + i * KEY_SIZE
        (nb,) = struct.unpack(">q", data[off:off + 8])
        keys.append((nb, data[off + 8:off + 24]))
    return keys


def ticket_key_name(sess_pem):
    """The key name (the ticket's first 16 bytes) of an s_client session."""
    out = subprocess.run(["openssl", "sess_id", "-in", str(sess_pem),
                          "-noout", "-text"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    m = re.search(r"TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)", out)
    assert m, out
    hexbytes = []
    for line in m.group(1).splitlines():
        dump = line.split(" - ", 1)[1][:48].replace("-", " ")
        hexbytes += dump.split()
    return bytes(int(h, 16) for h in hexbytes[:16])


def sleep_until(t):
    while time.time() < t:
        time.sleep(min(0.1, max(0.0, t - time.time())))


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3,
                                     ssl.TLSVersion.TLSv1_2],
                         ids=["TLSv1.3", "TLSv1.2"])
def test_resumed_by_another_worker(instance_factory, version):
    """A session from one worker resumes with another worker process,
    for SMTPS, SMTP STARTTLS and IMAPS; also after a reload (every
    worker new)."""
    inst = make_instance(instance_factory)
    inst.start()
    for kind in KINDS:
        wait_tls_ready(inst, kind)
    ctx = client_ctx(version)
    for kind in KINDS:
        mark = inst.log_mark()
        first = Conn(inst, kind, ctx)
        assert not first.reused
        sess = first.session
        assert sess is not None and sess.has_ticket, kind
        # first stays open: its worker is busy, so master must hand the
        # next connection to another process.
        second = Conn(inst, kind, ctx, session=sess)
        assert second.reused, f"{kind} {version}: not resumed"
        assert second.sock.version() == first.sock.version()
        second.quit()
        first.quit()
        pid1, pid2 = tls_pids(inst, kind, [first, second], mark)
        assert pid1 != pid2, f"{kind}: one worker served both"

    # A reload recycles every worker; the keys stay the instance's.
    mark = inst.log_mark()
    before = Conn(inst, "IMAPS", ctx)
    sess = before.session
    before.quit()
    (pid1,) = tls_pids(inst, "IMAPS", [before], mark)
    inst.reload()
    inst.wait_for_log(r"reload: \d+ services", start=mark)
    deadline = time.monotonic() + 15
    while pid_alive(pid1):
        assert time.monotonic() < deadline, "the old worker did not exit"
        time.sleep(0.05)
    after = Conn(inst, "IMAPS", ctx, session=sess)
    assert after.reused, "not resumed after a reload"
    after.quit()


def test_key_file(instance_factory):
    """The key file: created by master at start, 0600, owned by master's
    user (root under privilege separation), well formed; a reload does
    not replace keys that are still current."""
    inst = make_instance(instance_factory)
    inst.start()
    path = inst.dir.joinpath(*KEY_FILE)
    st = path.stat()
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.stat(inst.pid_file).st_uid == os.geteuid()
    keys = read_keys(inst)
    assert len(keys) == 2
    now = time.time()
    # The current key started at master's start; the next starts 12h later.
    assert keys[0][0] <= now < keys[0][0] + 12 * 3600
    assert keys[1][0] == keys[0][0] + 12 * 3600
    assert keys[0][1] != keys[1][1]
    mark = inst.log_mark()
    inst.reload()
    inst.wait_for_log(r"reload: \d+ services", start=mark)
    assert read_keys(inst) == keys
    assert path.stat().st_ino == st.st_ino
    # The servers use it: no "not shared" complaint from any of them.
    wait_tls_ready(inst, "IMAPS")
    wait_tls_ready(inst, "SMTPS")
    assert "not shared between processes" not in inst.log_text()


def test_unsafe_key_file_replaced(instance_factory):
    """A key file others may read is no secret any more: master replaces
    it with fresh keys, mode 0600, at its next check (here: a reload)
    before any new worker reads it. (That a server refuses such a file
    is in lib/tls_ticket_test.c.)"""
    inst = make_instance(instance_factory)
    inst.start()
    wait_tls_ready(inst, "IMAPS")
    path = inst.dir.joinpath(*KEY_FILE)
    keys = read_keys(inst)
    os.chmod(path, 0o644)
    mark = inst.log_mark()
    inst.reload()
    inst.wait_for_log(r"reload: \d+ services", start=mark)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    new = read_keys(inst)
    assert len(new) == 2
    assert not {name for nb, name in keys} & {name for nb, name in new}
    wait_tls_ready(inst, "IMAPS")
    assert "not shared between processes" not in inst.log_text()[mark:]


def test_rotation(instance_factory, tmp_path):
    """With a short key lifetime L: a ticket whose key no longer issues
    tickets still resumes (with another worker, and gets a ticket under
    the new key), until 2L after its key started; then it is refused and
    the handshake is a full one that works. No restart is involved."""
    life = 6
    inst = make_instance(instance_factory, settings=[
        ("tls_session_ticket_key_lifetime", f"{life}s")])
    # Every connection gets a new worker (and master checks the keys
    # before each spawn).
    edit_service(inst, inst.port("IMAPS"), "-o max_use=1")
    inst.start()
    master = inst.master_pid()
    port = inst.port("IMAPS")
    wait_tls_ready(inst, "IMAPS")
    sess1 = tmp_path / "sess1.pem"
    rc, out = s_client(port, "IMAPS", sess_out=sess1)
    assert session_works("IMAPS", out) and re.search(r"(?m)^New, TLSv1\.3",
                                                     out), out
    name1 = ticket_key_name(sess1)
    starts = {name: nb for nb, name in read_keys(inst)}
    assert name1 in starts, "the ticket's key is not in the key file"
    start1 = starts[name1]

    # Key 1 has stopped issuing tickets but still decrypts them.
    sleep_until(start1 + life + 0.2)
    sess2 = tmp_path / "sess2.pem"
    rc, out = s_client(port, "IMAPS", sess_in=sess1, sess_out=sess2)
    assert time.time() < start1 + 2 * life, "too slow to test the window"
    assert session_works("IMAPS", out), out
    assert re.search(r"(?m)^Reused, TLSv1\.3", out), out
    name2 = ticket_key_name(sess2)
    assert name2 != name1, "no new key after the lifetime"
    assert name2 in {name for nb, name in read_keys(inst)}

    # 2L after it started, key 1 is gone: a full handshake, which works.
    sleep_until(start1 + 2 * life + 0.2)
    rc, out = s_client(port, "IMAPS", sess_in=sess1)
    assert session_works("IMAPS", out), out
    assert re.search(r"(?m)^New, TLSv1\.3", out), out
    assert name1 not in {name for nb, name in read_keys(inst)}
    # The ticket under the newer key still resumes.
    rc, out = s_client(port, "IMAPS", sess_in=sess2)
    assert session_works("IMAPS", out), out
    assert re.search(r"(?m)^Reused, TLSv1\.3", out), out
    assert inst.master_pid() == master
    path = inst.dir.joinpath(*KEY_FILE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sharing_off(instance_factory):
    """tls_session_ticket_key_lifetime = 0: no key file, per-process
    keys: a ticket does not resume with another worker (full handshake,
    which works)."""
    inst = make_instance(instance_factory, settings=[
        ("tls_session_ticket_key_lifetime", "0")])
    inst.start()
    wait_tls_ready(inst, "IMAPS")
    assert not inst.dir.joinpath(*KEY_FILE).exists()
    ctx = client_ctx(ssl.TLSVersion.TLSv1_3)
    mark = inst.log_mark()
    first = Conn(inst, "IMAPS", ctx)
    second = Conn(inst, "IMAPS", ctx, session=first.session)
    assert not second.reused
    second.quit()
    first.quit()
    pid1, pid2 = tls_pids(inst, "IMAPS", [first, second], mark)
    assert pid1 != pid2
