# SPDX-License-Identifier: MIT
"""pop3d: POP3 (RFC 1939, CAPA 2449, STLS 2595, AUTH 5034).

Every test runs a real instance: pop3d on POP3_PORT / POP3S_PORT (login
role) and the private pop3-mail service (mail role) from `postern
instance init`'s master.conf, lmtpd on the LMTP port for delivering test
mail, and imapd for the mixed IMAP tests. Clients: Python's poplib, a
raw socket where the exact bytes matter, fetchmail and curl. What the
store holds is read back with tests/progs/storecat.
"""

import base64
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, PROGS

STORECAT = PROGS / "storecat"


# ------------------------------------------------------------------ helpers
def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def pop_instance(factory, users=("alice", "bob"), **config):
    """An instance with its pop3d services, lmtpd on LMTP_PORT, started."""
    inst = factory()
    # As root the daemons (nobody) must reach store/ and data/ in the
    # fixture's 0700 temporary directory (as in test_lmtpd).
    os.chmod(inst.dir, 0o755)
    for key, value in config.items():
        inst.set_config(key, value)
    conf = (inst.dir / "master.conf").read_text()
    live = [l for l in conf.splitlines() if l.strip() and not l.startswith("#")]
    assert any(f":{inst.port('POP3')} " in l and "pop3d" in l for l in live)
    assert any(l.split()[0] == "pop3-mail" for l in live)
    if not any(f":{inst.port('LMTP')} " in l for l in live):
        inst.add_service(f"{HOST}:{inst.port('LMTP')} inet n - n - - lmtpd")
    for user in users:
        inst.postern("user", "add", user, "--password-stdin", input="pw\n")
    inst.start()
    wait_port(inst.port("LMTP"))
    wait_port(inst.port("POP3"))
    return inst


def deliver(inst, user, content):
    """Deliver content (bytes, CRLF) to user through lmtpd."""
    if isinstance(content, str):
        content = content.encode()
    with smtplib.LMTP(HOST, inst.port("LMTP"), timeout=30) as l:
        l.sendmail("sender@example.org", [user], content)


def message(i, extra=b""):
    return (b"From: sender@example.org\r\nTo: alice@localhost\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n"
            b"line one of %d\r\n.leading dot\r\n..two dots\r\n.\r\n"
            b"last line\r\n" % (i, i, i) + extra)


def storecat(inst, *args):
    r = subprocess.run([str(STORECAT), str(inst.dir / "store"), *args],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def store_ls(inst, user="alice"):
    """[(uid, flags)] of the user's INBOX."""
    out = storecat(inst, user, "ls", "INBOX").decode()
    return [(int(l.split("\t")[0]), int(l.split("\t")[1], 16))
            for l in out.splitlines()]


def login(inst, user="alice", password="pw"):
    p = poplib.POP3(HOST, inst.port("POP3"), timeout=30)
    p.user(user)
    p.pass_(password)
    return p


class Raw:
    """A raw POP3 client: exact bytes out, exact lines back."""

    def __init__(self, port, timeout=20):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        l = self.f.readline()
        if not l:
            raise ConnectionError("connection closed")
        assert l.endswith(b"\r\n"), l
        return l[:-2]

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.line()

    def multi(self):
        """The lines of a multi-line body up to the lone '.', raw (still
        dot-stuffed), each with its CRLF."""
        out = []
        while True:
            l = self.f.readline()
            assert l.endswith(b"\r\n"), l
            if l == b".\r\n":
                return b"".join(out)
            out.append(l)

    def closed(self):
        try:
            return self.f.readline() == b""
        except OSError:
            return True


def unstuff(data):
    return b"".join(l[1:] if l.startswith(b".") else l
                    for l in data.splitlines(True))


@pytest.fixture
def pop(instance_factory):
    inst = pop_instance(instance_factory)
    for i in range(1, 4):
        deliver(inst, "alice", message(i))
    return inst


# ------------------------------------------------------------------ RFC 1939
def test_greeting_capa_and_quit(pop):
    p = poplib.POP3(HOST, pop.port("POP3"), timeout=30)
    assert p.getwelcome() == b"+OK Postern ready."
    caps = p.capa()
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "USER", "STLS", "CAPA"):
        assert cap in caps, caps
    # the default sasl_mechanisms, through libsasl2
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    assert caps["EXPIRE"] == ["NEVER"]
    assert caps["LOGIN-DELAY"] == ["0"]
    assert caps["IMPLEMENTATION"] == ["Postern"]
    assert p.quit() == b"+OK Logging out."
    # After login CAPA no longer offers STLS or login mechanisms.
    p = login(pop)
    caps = p.capa()
    assert "STLS" not in caps and "USER" not in caps and "TOP" in caps
    p.quit()
    pop.wait_for_log(r"disconnect: user=alice top=0 retr=0/0 del=0/3")


def test_stat_list_uidl_retr_noop(pop):
    p = login(pop)
    sizes = [len(message(i)) for i in range(1, 4)]
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert resp == b"+OK 3 messages (%d octets)" % sum(sizes)
    assert lines == [b"%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
    assert p.list(2) == b"+OK 2 %d" % sizes[1]
    resp, uidls, _ = p.uidl()
    assert resp == b"+OK"
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    assert all(re.fullmatch(rb"[0-9A-F]{16}", u.split()[1]) for u in uidls)
    assert p.uidl(3) == b"+OK " + uidls[2]
    assert p.noop() == b"+OK"
    for i in range(1, 4):
        resp, lines, octets = p.retr(i)
        assert resp == b"+OK %d octets" % sizes[i - 1]
        assert b"\r\n".join(lines) + b"\r\n" == message(i)
    p.quit()


def test_retr_is_byte_exact_and_dot_stuffed(pop):
    """On the wire: every line starting with '.' gets one more; the body
    unstuffed is the stored message byte for byte."""
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n...x\r\n. space\r\n"
            b"no dot\r\n" + b"x" * 70000 + b"\r\n.after a long line\r\n"
            b"\xff\x00binary\r\nend")
    deliver(pop, "alice", body)
    stored = storecat(pop, "alice", "cat", "INBOX", "4")
    r = Raw(pop.port("POP3"))
    assert r.cmd("USER alice") == b"+OK"
    assert r.cmd("PASS pw").startswith(b"+OK")
    assert r.cmd("RETR 4") == b"+OK %d octets" % len(stored)
    wire = r.multi()
    assert b"\r\n..\r\n...\r\n....x\r\n.. space\r\n" in wire
    assert b"\r\n..after a long line\r\n" in wire
    assert unstuff(wire) == stored if stored.endswith(b"\r\n") else \
        unstuff(wire) == stored + b"\r\n"
    assert r.cmd("QUIT") == b"+OK Logging out."
    r.close()


def test_top(pop):
    p = login(pop)
    resp, lines, _ = p.top(1, 0)
    assert resp == b"+OK"
    assert lines == message(1).split(b"\r\n\r\n")[0].split(b"\r\n") + [b""]
    resp, lines, _ = p.top(1, 2)
    assert lines[-3:] == [b"", b"line one of 1", b".leading dot"]
    resp, lines, _ = p.top(1, 1000)
    assert b"\r\n".join(lines) + b"\r\n" == message(1)
    with pytest.raises(poplib.error_proto, match="no message"):
        p.top(9, 1)
    p.quit()
    # TOP does not count as retrieval: no \Seen
    assert all(flags & 1 == 0 for _, flags in store_ls(pop))


def test_dele_rset_and_quit_update(pop):
    p = login(pop)
    assert p.dele(1) == b"+OK Marked to be deleted."
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.dele(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.retr(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.list(1)
    assert p.stat()[0] == 2
    assert [l.split()[0] for l in p.list()[1]] == [b"2", b"3"]
    assert p.rset().startswith(b"+OK 3 messages")
    assert p.stat()[0] == 3
    p.dele(2)
    p.retr(3)
    # nothing happens before QUIT
    assert [u for u, _ in store_ls(pop)] == [1, 2, 3]
    assert p.quit() == b"+OK Logging out."
    ls = store_ls(pop)
    assert [u for u, _ in ls] == [1, 3]
    # RETR'd messages get \Seen at QUIT, others do not
    assert dict(ls) == {1: 0, 3: 1}
    p = login(pop)
    assert p.stat()[0] == 2
    p.quit()


def test_dropped_connection_deletes_nothing(pop):
    r = Raw(pop.port("POP3"))
    r.cmd("USER alice")
    r.cmd("PASS pw")
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.cmd("DELE 2").startswith(b"+OK")
    r.close()
    pop.wait_for_log(r"disconnect: user=alice .*no QUIT: nothing deleted")
    assert [u for u, _ in store_ls(pop)] == [1, 2, 3]


def test_uidl_stable_and_from_imap_uid(pop):
    p = login(pop)
    first = p.uidl()[1]
    p.dele(1)
    p.quit()
    deliver(pop, "alice", message(4))
    p = login(pop)
    second = p.uidl()[1]
    p.quit()
    # the surviving messages keep their UIDL; the new one has a new one
    assert [u.split()[1] for u in second][:2] == [u.split()[1] for u in first][1:]
    assert second[2].split()[1] not in [u.split()[1] for u in first]
    # UIDL = %08X of the IMAP UID then %08X of UIDVALIDITY
    uidvalidity = int(storecat(pop, "alice", "mailboxes").decode()
                      .splitlines()[0].split("\t")[2])
    uids = [u for u, _ in store_ls(pop)]
    assert [u.split()[1] for u in second] == [
        b"%08X%08X" % (uid, uidvalidity) for uid in uids]


# ------------------------------------------------------------------ snapshot, IMAP, locking
def test_snapshot_at_login(pop):
    p = login(pop)
    deliver(pop, "alice", message(4))
    assert p.stat()[0] == 3
    with pytest.raises(poplib.error_proto):
        p.retr(4)
    p.quit()
    p = login(pop)
    assert p.stat()[0] == 4
    p.quit()


def imap_login(inst):
    wait_port(inst.port("IMAP"))
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    m.login("alice", "pw")
    return m


def test_imap_expunge_during_session_and_flags(pop_nolock):
    inst = pop_nolock
    p = login(inst)
    m = imap_login(inst)
    m.select("INBOX")
    uidvalidity = int(m.response("UIDVALIDITY")[1][0])
    assert m.store("2", "+FLAGS", "(\\Deleted)")[0] == "OK"
    m.expunge()
    m.store("1", "+FLAGS", "(\\Flagged)")
    # the POP3 snapshot still lists message 2, but cannot retrieve it
    assert p.stat()[0] == 3
    with pytest.raises(poplib.error_proto, match="expunged"):
        p.retr(2)
    resp, lines, _ = p.retr(1)
    assert resp.startswith(b"+OK")
    p.dele(3)
    # UIDL of message 1 is its IMAP UID and UIDVALIDITY
    typ, data = m.uid("FETCH", "1:*", "(UID)")
    assert p.uidl(1).split()[2] == b"%08X%08X" % (1, uidvalidity)
    assert p.quit() == b"+OK Logging out."
    # message 1 kept \Flagged and gained \Seen; 3 went; IMAP sees it
    assert store_ls(inst) == [(1, 0x05)]
    m.noop()
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    data = [d for d in data if d and b"UID" in d]
    assert len(data) == 1 and b"UID 1 " in data[0]
    assert b"\\Flagged" in data[0] and b"\\Seen" in data[0]
    m.logout()


@pytest.fixture
def pop_nolock(instance_factory):
    inst = pop_instance(instance_factory, pop3_lock_session="no")
    for i in range(1, 4):
        deliver(inst, "alice", message(i))
    return inst


def test_in_use_lock_while_imap_and_delivery_go_on(pop):
    p = login(pop)
    q = poplib.POP3(HOST, pop.port("POP3"), timeout=30)
    q.user("alice")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
        q.pass_("pw")
    q.close()
    # IMAP and deliveries are not blocked by the POP3 session
    m = imap_login(pop)
    assert m.select("INBOX")[0] == "OK"
    deliver(pop, "alice", message(4))
    m.logout()
    # another user is not affected
    deliver(pop, "bob", message(1))
    b = login(pop, "bob")
    assert b.stat()[0] == 1
    b.quit()
    p.quit()
    # the lock is gone with the session
    p = login(pop)
    assert p.stat()[0] == 4
    p.quit()


def test_no_lock_when_not_exclusive(pop_nolock):
    p = login(pop_nolock)
    q = login(pop_nolock)
    assert p.stat() == q.stat()
    p.quit()
    q.quit()


# ------------------------------------------------------------------ authentication, TLS
def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_plaintext_refused_before_stls(instance_factory):
    inst = pop_instance(instance_factory, pop3_loopback_secure="no")
    deliver(inst, "alice", message(1))
    p = poplib.POP3(HOST, inst.port("POP3"), timeout=30)
    caps = p.capa()
    assert "USER" not in caps and "SASL" not in caps and "STLS" in caps
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Plaintext"):
        p.user("alice")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Plaintext"):
        p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0pw").decode())
    assert p.stls(client_tls()).startswith(b"+OK")
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps
    with pytest.raises(poplib.error_proto, match="already"):
        p._shortcmd("STLS")
    p.user("alice")
    assert p.pass_("pw").startswith(b"+OK")
    assert p.retr(1)[0].startswith(b"+OK")
    p.quit()
    inst.wait_for_log(r"login: user=alice, method=USER, tls=TLSv1")


def test_plaintext_allowed_when_configured(instance_factory):
    inst = pop_instance(instance_factory, pop3_loopback_secure="no",
                        disable_plaintext_auth="no")
    p = login(inst)
    assert p.stat() == (0, 0)
    p.quit()


def test_auth_plain(pop):
    r = Raw(pop.port("POP3"))
    assert r.cmd("AUTH") == b"+OK"
    assert r.multi() == b"PLAIN\r\nLOGIN\r\n"
    assert r.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("*") == b"-ERR [AUTH] Authentication aborted"
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("not base64!") == b"-ERR [AUTH] Invalid base64 data"
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    assert r.cmd("AUTH PLAIN " + bad) == b"-ERR [AUTH] Authentication failed."
    other = base64.b64encode(b"bob\0alice\0pw").decode()
    assert r.cmd("AUTH PLAIN " + other).startswith(b"-ERR [AUTH] Authorization")
    assert r.cmd("AUTH PLAIN") == b"+ "
    good = base64.b64encode(b"\0alice\0pw").decode()
    assert r.cmd(good).startswith(b"+OK Logged in")
    assert r.cmd("STAT").startswith(b"+OK 3 ")
    assert r.cmd("QUIT") == b"+OK Logging out."
    r.close()
    # with an initial response, and an authorization identity = self
    # (libsasl2 compares it with the authentication identity as given)
    r = Raw(pop.port("POP3"))
    ok = base64.b64encode(b"alice\0alice\0pw").decode()
    assert r.cmd("AUTH PLAIN " + ok).startswith(b"+OK Logged in")
    r.cmd("QUIT")
    r.close()
    pop.wait_for_log(r"login: user=alice, method=PLAIN")


def test_user_pass_errors(pop):
    r = Raw(pop.port("POP3"))
    assert r.cmd("PASS pw") == b"-ERR No username given."
    assert r.cmd("USER alice") == b"+OK"
    assert r.cmd("PASS wrong") == b"-ERR [AUTH] Authentication failed."
    # the USER is forgotten after a failed PASS
    assert r.cmd("PASS pw") == b"-ERR No username given."
    assert r.cmd("USER nosuchuser") == b"+OK"
    assert r.cmd("PASS pw") == b"-ERR [AUTH] Authentication failed."
    assert r.cmd("APOP alice 0123456789abcdef0123456789abcdef") == \
        b"-ERR APOP is not supported."
    assert r.cmd("QUIT") == b"+OK Logging out."
    assert r.closed()
    r.close()


def test_pop3s_implicit_tls(pop):
    wait_port(pop.port("POP3S"))
    p = poplib.POP3_SSL(HOST, pop.port("POP3S"), context=client_tls(),
                        timeout=30)
    assert p.getwelcome() == b"+OK Postern ready."
    assert "STLS" not in p.capa()
    p.user("alice")
    p.pass_("pw")
    resp, lines, _ = p.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == message(2)
    p.dele(2)
    assert p.quit() == b"+OK Logging out."
    assert [u for u, _ in store_ls(pop)] == [1, 3]


def test_stls_session_large_message(pop):
    """A message bigger than any buffer through STLS + the relay."""
    big = b"Subject: big\r\n\r\n" + b"".join(
        b"%06d .......................................................\r\n" % i
        for i in range(40000))
    deliver(pop, "alice", big)
    p = poplib.POP3(HOST, pop.port("POP3"), timeout=30)
    p.stls(client_tls())
    p.user("alice")
    p.pass_("pw")
    resp, lines, _ = p.retr(4)
    assert b"\r\n".join(lines) + b"\r\n" == big
    p.quit()


# ------------------------------------------------------------------ bad input
def test_bad_input_is_answered_with_err(pop):
    # commands out of state and malformed ones before login; after ten
    # errors the connection ends
    bad = ["", "FOO", "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET",
           "TOP 1 1", "UIDL", "USER", "USER a b", "CAPA x", "QUIT now"]
    r = Raw(pop.port("POP3"))
    for line in bad[:9]:
        assert r.cmd(line).startswith(b"-ERR"), line
    assert r.cmd("CAPA").startswith(b"+OK")
    r.multi()
    assert r.cmd(bad[9]).startswith(b"-ERR")
    assert r.line() == b"-ERR Too many errors, closing."
    assert r.closed()
    r.close()
    r = Raw(pop.port("POP3"))
    for line in bad[9:]:
        assert r.cmd(line).startswith(b"-ERR"), line
    r.close()

    r = Raw(pop.port("POP3"))
    assert r.cmd(b"X" * 5000).startswith(b"-ERR Line too long")
    assert r.cmd(b"US\0ER alice").startswith(b"-ERR")
    assert r.cmd("USER alice") == b"+OK"
    assert r.cmd("PASS pw").startswith(b"+OK")
    for bad in ("RETR", "RETR 0", "RETR 4", "RETR 99999999999", "RETR -1",
                "RETR +1", "RETR 1 2", "TOP 1", "TOP 1 x", "TOP 0 1",
                "LIST 0", "LIST 1 2", "UIDL x", "DELE", "DELE 4",
                "STAT 1", "USER alice", "PASS pw", "STLS", "AUTH PLAIN",
                "APOP a b", "NOOP x", "RETR  1", "\x01\x02\x03",
                "RETR 1\rRETR 2", "retr 4294967296"):
        assert r.cmd(bad).startswith(b"-ERR"), bad
    assert r.cmd(b"Y" * 100000).startswith(b"-ERR Line too long")
    # still fine afterwards; lower case and trailing space are accepted
    assert r.cmd("stat ").startswith(b"+OK 3 ")
    assert r.cmd("QUIT") == b"+OK Logging out."
    r.close()
    assert [u for u, _ in store_ls(pop)] == [1, 2, 3]


def test_too_many_errors_after_login(pop):
    r = Raw(pop.port("POP3"))
    r.cmd("USER alice")
    r.cmd("PASS pw")
    lines = [r.cmd("BOGUS") for _ in range(50)]
    assert all(l.startswith(b"-ERR") for l in lines)
    assert r.line() == b"-ERR Too many errors, closing."
    assert r.closed()
    r.close()


def test_garbage_does_not_crash(pop):
    import random
    rnd = random.Random(1939)
    for _ in range(5):
        r = Raw(pop.port("POP3"))
        r.send(bytes(rnd.randrange(256) for _ in range(3000)) + b"\r\n")
        r.send(b"QUIT\r\n")
        try:
            while r.f.readline():
                pass
        except OSError:
            pass
        r.close()
    p = login(pop)
    assert p.stat()[0] == 3
    p.quit()


def test_pipelining_across_the_login_handoff(pop):
    """Commands pipelined with PASS reach the post-login process."""
    r = Raw(pop.port("POP3"))
    r.send("USER alice\r\nPASS pw\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\n"
           "UIDL 2\r\nQUIT\r\n")
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK Logged in")
    assert r.line().startswith(b"+OK 3 ")
    assert r.line().startswith(b"+OK 3 messages")
    assert r.multi().count(b"\r\n") == 3
    assert r.line().startswith(b"+OK")
    assert unstuff(r.multi()) == message(1)
    assert r.line() == b"+OK Marked to be deleted."
    assert r.line().startswith(b"+OK 2 ")
    assert r.line() == b"+OK Logging out."
    r.close()
    assert [u for u, _ in store_ls(pop)] == [2, 3]


def test_timeout_before_login(instance_factory):
    inst = pop_instance(instance_factory, pop3_login_timeout="1s")
    r = Raw(inst.port("POP3"))
    time.sleep(2.5)
    assert r.line() == b"-ERR Disconnected for inactivity."
    assert r.closed()
    r.close()


# ------------------------------------------------------------------ real clients
def fetchmail(inst, tmp_path, keep):
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail is not installed")
    out = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 protocol POP3 port {inst.port("POP3")}'
        f' user "alice" there with password "pw" is "root" here'
        f' options {"keep" if keep else "nokeep"} fetchall sslproto ""'
        f' mda "cat >> {out}"\n')
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach",
                        "--idfile", str(tmp_path / "fetchids"), "-v"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return out.read_bytes() if out.exists() else b"", r


def test_fetchmail_keep_and_delete(pop, tmp_path):
    got, r = fetchmail(pop, tmp_path, keep=True)
    for i in range(1, 4):
        assert b"Subject: message %d" % i in got, r.stdout + r.stderr
    assert b"\n.leading dot\n" in got.replace(b"\r\n", b"\n")
    assert [u for u, _ in store_ls(pop)] == [1, 2, 3]
    (tmp_path / "mbox").unlink()
    got, r = fetchmail(pop, tmp_path, keep=False)
    assert got.count(b"Subject: message") == 3, r.stdout + r.stderr
    assert store_ls(pop) == []
    pop.wait_for_log(r"disconnect: user=alice top=0 retr=3/\d+ del=3/3")


def test_curl(pop):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    url = f"pop3://127.0.0.1:{pop.port('POP3')}/"
    r = subprocess.run(["curl", "-s", "-u", "alice:pw", url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [b"%d %d" % (i, len(message(i)))
                                     for i in range(1, 4)]
    r = subprocess.run(["curl", "-s", "-u", "alice:pw", url + "2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == message(2)
    r = subprocess.run(["curl", "-s", "-u", "alice:pw", "--ssl-reqd", "-k",
                        url + "3"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == message(3)
    r = subprocess.run(["curl", "-s", "-u", "alice:pw", "-X", "DELE", url + "1",
                        "-I"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [u for u, _ in store_ls(pop)] == [2, 3]
    r = subprocess.run(["curl", "-s", "-u", "alice:wrong", url],
                       capture_output=True, timeout=60)
    assert r.returncode != 0


# ------------------------------------------------------------------ limits, concurrency
def test_user_connection_limit(instance_factory):
    inst = pop_instance(instance_factory, pop3_lock_session="no",
                        pop3_user_connection_limit="1")
    p = login(inst)
    q = poplib.POP3(HOST, inst.port("POP3"), timeout=30)
    q.user("alice")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\] Too many"):
        q.pass_("pw")
    q.close()
    p.quit()
    p = login(inst)
    p.quit()


def test_concurrent_users(instance_factory):
    import threading
    users = [f"user{i}" for i in range(8)]
    inst = pop_instance(instance_factory, users=users)
    for u in users:
        for i in range(1, 6):
            deliver(inst, u, message(i, extra=u.encode() + b"\r\n"))
    errors = []

    def fetch(u):
        try:
            p = login(inst, u)
            for i in range(1, 6):
                lines = p.retr(i)[1]
                assert b"\r\n".join(lines) + b"\r\n" == \
                    message(i, extra=u.encode() + b"\r\n")
                p.dele(i)
            p.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{u}: {e!r}")

    threads = [threading.Thread(target=fetch, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    for u in users:
        assert store_ls(inst, u) == []
