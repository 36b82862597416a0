# SPDX-License-Identifier: MIT
"""Integration tests for imapd: real instances, Python imaplib and raw
sockets against the login role (IMAP, IMAPS) and the mail role behind it.

The instance's master.conf (postern instance init) already has the three
imapd services; every test adds a user and talks to IMAP_PORT/IMAPS_PORT.
"""

import imaplib
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import HOST, ROOT

MIME_DIR = ROOT / "lib" / "testdata" / "mime"
USER, PASSWORD = "alice", "secret"


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.recv(1)
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} not answering")


@pytest.fixture
def imap(instance_factory):
    instance = instance_factory()
    # the daemons may run as another user (an instance made by root): they
    # must reach data/ and store/ inside the instance directory
    os.chmod(instance.dir, 0o711)
    instance.start()
    instance.postern("user", "add", USER, "--password", PASSWORD)
    instance.postern("user", "add", "bob", "--password", "bobpw")
    wait_port(instance.port("IMAP"))
    return instance


def connect(inst, login=True, user=USER, password=PASSWORD):
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=15)
    if login:
        m.login(user, password)
    return m


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A raw IMAP connection: exact bytes in, exact lines out."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection((HOST, port), timeout=15)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        return self.f.readline()

    def cmd(self, tag, text):
        """Send 'tag text', return (untagged lines, tagged line)."""
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if not ln:
                raise EOFError(b"".join(lines))
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if m:
                ln += self.f.read(int(m.group(1)))
                ln += self.line()
            if ln.startswith(tag.encode() + b" "):
                return lines, ln
            lines.append(ln)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_login(inst, tls=False):
    r = Raw(inst.port("IMAPS" if tls else "IMAP"), tls=tls)
    _, t = r.cmd("L", f"LOGIN {USER} {PASSWORD}")
    assert t.startswith(b"L OK"), t
    return r


def msg(subject, body="hello\r\n", extra=""):
    return (f"From: Sender <sender@example.org>\r\nTo: alice@example.com\r\n"
            f"Subject: {subject}\r\nDate: Tue, 1 Aug 2023 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n{extra}"
            f"\r\n{body}").encode()


# ------------------------------------------------------------------ login

def test_greeting_capability_and_logindisabled(imap):
    r = Raw(imap.port("IMAP"))
    assert r.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
    assert b"STARTTLS" in r.greeting
    # loopback counts as secure, so AUTH=PLAIN is offered
    assert b"AUTH=PLAIN" in r.greeting
    u, t = r.cmd("a", "CAPABILITY")
    assert t == b"a OK Capability completed.\r\n"
    assert u[0].startswith(b"* CAPABILITY IMAP4rev1 ")
    u, t = r.cmd("b", "NOOP")
    assert t.startswith(b"b OK")
    u, t = r.cmd("c", "SELECT INBOX")
    assert t.startswith(b"c BAD")
    u, t = r.cmd("d", "LOGOUT")
    assert u == [b"* BYE Logging out\r\n"] and t.startswith(b"d OK")


def test_logindisabled_without_tls(imap_nonlocal):
    inst = imap_nonlocal
    r = Raw(inst.port("IMAP"))
    assert b"LOGINDISABLED" in r.greeting and b"AUTH=PLAIN" not in r.greeting
    _, t = r.cmd("a", f"LOGIN {USER} {PASSWORD}")
    assert t.startswith(b"a NO [PRIVACYREQUIRED]")
    m = imaplib.IMAP4(HOST, inst.port("IMAP"))
    m.starttls(tls_ctx())
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    assert m.login(USER, PASSWORD)[0] == "OK"
    m.logout()


@pytest.fixture
def imap_nonlocal(instance_factory):
    inst = instance_factory()
    # loopback is normally "secure"; pretend it is not
    with open(inst.dir / "master.conf") as f:
        text = f.read()
    text = text.replace("inet n - n - - imapd\n",
                        "inet n - n - - imapd -o imap_loopback_secure=no\n")
    with open(inst.dir / "master.conf", "w") as f:
        f.write(text)
    os.chmod(inst.dir, 0o711)
    inst.start()
    inst.postern("user", "add", USER, "--password", PASSWORD)
    wait_port(inst.port("IMAP"))
    return inst


def test_login_failures(imap):
    r = Raw(imap.port("IMAP"))
    _, t = r.cmd("a", f"LOGIN {USER} wrong")
    assert t == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    _, t = r.cmd("b", "LOGIN nosuchuser x")
    assert t.startswith(b"b NO [AUTHENTICATIONFAILED]")
    _, t = r.cmd("c", "LOGIN onlyone")
    assert t.startswith(b"c BAD")
    r.send(f'd LOGIN "{USER}" {{6}}\r\n')
    assert r.line() == b"+ OK\r\n"
    r.send("secret\r\n")
    _, t = r.until("d")
    assert t.startswith(b"d OK"), t


def test_authenticate_plain_and_sasl_ir(imap):
    import base64
    cred = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    r = Raw(imap.port("IMAP"))
    _, t = r.cmd("a", f"AUTHENTICATE PLAIN {cred}")
    assert t.startswith(b"a OK [CAPABILITY IMAP4rev1"), t
    r.close()
    r = Raw(imap.port("IMAP"))
    r.send("b AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ \r\n"
    r.send(cred + "\r\n")
    _, t = r.until("b")
    assert t.startswith(b"b OK")
    r.close()
    r = Raw(imap.port("IMAP"))
    r.send("c AUTHENTICATE PLAIN\r\n")
    r.line()
    r.send("*\r\n")
    _, t = r.until("c")
    assert t.startswith(b"c BAD")
    _, t = r.cmd("d", "AUTHENTICATE GSSAPI")
    assert t.startswith(b"d NO")


def test_imaps_and_starttls(imap):
    m = imaplib.IMAP4_SSL(HOST, imap.port("IMAPS"), ssl_context=tls_ctx())
    m.login(USER, PASSWORD)
    assert m.select("INBOX")[0] == "OK"
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 2000
    assert m.append("INBOX", None, None, big)[0] == "OK"
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == big
    m.logout()
    m = imaplib.IMAP4(HOST, imap.port("IMAP"))
    m.starttls(tls_ctx())
    assert "STARTTLS" not in m.capabilities
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(RFC822.SIZE)")
    assert data == [b"1 (RFC822.SIZE %d)" % len(big)]
    m.logout()
    text = imap.log_text()
    assert "method=LOGIN, tls=TLSv1" in text


def test_starttls_discards_pipelined_plaintext(imap):
    r = Raw(imap.port("IMAP"))
    r.send("a STARTTLS\r\nb LOGIN alice secret\r\n")
    assert r.line().startswith(b"a OK")
    s = tls_ctx().wrap_socket(r.sock)
    f = s.makefile("rb")
    s.sendall(b"c NOOP\r\n")
    assert f.readline() == b"c OK NOOP completed.\r\n"


def test_pipelined_commands_after_login_survive_handoff(imap):
    r = Raw(imap.port("IMAP"))
    r.send(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\nc NOOP\r\n")
    _, t = r.until("a")
    assert t.startswith(b"a OK")
    _, t = r.until("b")
    assert t.startswith(b"b OK [READ-WRITE]")
    _, t = r.until("c")
    assert t.startswith(b"c OK")


# ------------------------------------------------------------------ mailboxes

def test_list_create_delete_rename_subscribe(imap):
    m = connect(imap)
    typ, data = m.list()
    names = [d.decode() for d in data]
    assert '(\\HasNoChildren) "/" "INBOX"' in names
    assert any("\\Sent" in n and n.endswith('"Sent"') for n in names)
    assert m.create("Work/Projects")[0] == "OK"
    assert m.create("Work/Projects")[0] == "NO"
    typ, data = m.list('""', "Work*")
    assert data == [b'(\\HasChildren) "/" "Work"',
                    b'(\\HasNoChildren) "/" "Work/Projects"']
    typ, data = m.list('""', "%")
    assert b'(\\HasChildren) "/" "Work"' in data
    assert not any(b"Projects" in d for d in data)
    typ, data = m.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    assert m.rename("Work", "Job")[0] == "OK"
    typ, data = m.list('""', "Job/*")
    assert data == [b'(\\HasNoChildren) "/" "Job/Projects"']
    assert m.subscribe("Job/Projects")[0] == "OK"
    typ, data = m.lsub('""', "Job*")
    assert data == [b'() "/" "Job/Projects"']
    assert m.delete("Job/Projects")[0] == "OK"
    typ, data = m.lsub('""', "Job*")
    assert data == [b'(\\Noselect) "/" "Job/Projects"']
    assert m.delete("INBOX")[0] == "NO"
    assert m.delete("nonexistent")[0] == "NO"
    # INBOX is case-insensitive
    assert m.select("inbox")[0] == "OK"
    m.logout()


def test_mutf7_names(imap):
    m = connect(imap)
    assert m.create("Entw&APw-rfe")[0] == "OK"
    typ, data = m.list('""', "Entw*")
    assert data == [b'(\\HasNoChildren) "/" "Entw&APw-rfe"']
    # invalid mUTF-7
    with pytest.raises(imaplib.IMAP4.error):
        m._simple_command("CREATE", '"bad&Jjo"')
    assert m.select("Entw&APw-rfe")[0] == "OK"
    m.logout()
    files = list((imap.dir / "store").rglob("mailboxes"))
    assert files and "Entwürfe".encode() in files[0].read_bytes()


def test_list_extended_and_status(imap):
    r = raw_login(imap)
    _, t = r.cmd("a", 'APPEND Sent (\\Seen) {14}\r\nSubject: x\r\n\r\n'.replace("{14}\r\n", "{14+}\r\n"))
    assert t.startswith(b"a OK [APPENDUID "), t
    u, t = r.cmd("b", 'LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
    assert t.startswith(b"b OK")
    text = b"".join(u).decode()
    assert '* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in text
    assert '* STATUS "Sent" (MESSAGES 1 UNSEEN 0)' in text
    assert '"INBOX"' not in text
    u, t = r.cmd("c", 'STATUS Sent (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED HIGHESTMODSEQ)')
    assert re.match(rb'\* STATUS "Sent" \(MESSAGES 1 RECENT 0 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 0 SIZE 14 DELETED 0 HIGHESTMODSEQ \d+\)', u[0]), u
    u, t = r.cmd("d", 'STATUS nosuch (MESSAGES)')
    assert t.startswith(b"d NO [NONEXISTENT]")
    u, t = r.cmd("e", 'LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
    assert b'\\Subscribed' in b"".join(u)
    u, t = r.cmd("f", 'CREATE Important (USE (\\Flagged))')
    assert t.startswith(b"f OK")
    u, t = r.cmd("g", 'LIST "" Important')
    assert u == [b'* LIST (\\HasNoChildren \\Flagged) "/" "Important"\r\n']


def test_namespace_enable_id_unselect(imap):
    r = raw_login(imap)
    u, t = r.cmd("a", "NAMESPACE")
    assert u == [b'* NAMESPACE (("" "/")) NIL (("Shared/" "/"))\r\n']
    u, t = r.cmd("b", "ENABLE CONDSTORE QRESYNC")
    assert u == [b"* ENABLED CONDSTORE QRESYNC\r\n"]
    u, t = r.cmd("c", 'ID ("name" "test")')
    assert u[0].startswith(b"* ID (")
    u, t = r.cmd("d", "UNSELECT")
    assert t.startswith(b"d BAD")
    r.cmd("e", "SELECT INBOX")
    u, t = r.cmd("f", "UNSELECT")
    assert t == b"f OK Unselect completed.\r\n"
    u, t = r.cmd("g", "FETCH 1 FLAGS")
    assert t.startswith(b"g BAD")


# ------------------------------------------------------------------ messages

def fill(m, n, box="INBOX"):
    for i in range(1, n + 1):
        assert m.append(box, None, None, msg(f"message {i}",
                                             f"body number {i}\r\n"))[0] == "OK"


def test_select_fetch_store_expunge(imap):
    m = connect(imap)
    fill(m, 5)
    typ, data = m.select("INBOX")
    assert data == [b"5"]
    u = m.untagged_responses
    assert b"[UIDVALIDITY" in b" ".join(u.get("OK", []))
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    assert len(data) == 5
    assert data[0].startswith(b"1 (UID 1 FLAGS () RFC822.SIZE ")
    typ, data = m.fetch("2", "(INTERNALDATE ENVELOPE)")
    assert re.search(rb'INTERNALDATE "\d\d-\w\w\w-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"', data[0])
    assert b'ENVELOPE ("Tue, 1 Aug 2023 10:00:00 +0000" "message 2" (("Sender" NIL "sender" "example.org"))' in data[0]
    typ, data = m.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: message 3\r\n\r\n"
    typ, data = m.fetch("3", "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE MESSAGE-ID)])")
    assert data[0][1] == b"From: Sender <sender@example.org>\r\nTo: alice@example.com\r\n\r\n"
    typ, data = m.fetch("3", "(BODY[TEXT])")
    assert data[0][1] == b"body number 3\r\n"
    assert b"\\Seen" in data[1] or b"\\Seen" in data[0][0]
    typ, data = m.fetch("3", "(BODY.PEEK[]<0.4>)")
    assert data[0][0].endswith(b"BODY[]<0> {4}") and data[0][1] == b"From"
    typ, data = m.fetch("4", "(BODY.PEEK[1])")
    assert data[0][1] == b"body number 4\r\n"
    typ, data = m.fetch("4", "(FLAGS)")
    assert data == [b"4 (FLAGS ())"]
    typ, data = m.fetch("4", "(RFC822.HEADER)")
    assert data[0][1].endswith(b"\r\n\r\n")
    typ, data = m.fetch("1", "FAST")
    assert b"FLAGS" in data[0] and b"INTERNALDATE" in data[0]
    typ, data = m.store("1:2", "+FLAGS", "(\\Deleted \\Flagged $Junk)")
    assert data == [b"1 (FLAGS (\\Flagged \\Deleted $Junk))",
                    b"2 (FLAGS (\\Flagged \\Deleted $Junk))"]
    typ, data = m.store("2", "-FLAGS.SILENT", "(\\Deleted)")
    assert data == [None]
    typ, data = m.uid("STORE", "5", "FLAGS", "(\\Answered)")
    assert data == [b"5 (UID 5 FLAGS (\\Answered))"]
    typ, data = m.expunge()
    assert data == [b"1"]
    typ, data = m.fetch("1:*", "(UID)")
    assert [d.decode() for d in data] == ["1 (UID 2)", "2 (UID 3)", "3 (UID 4)", "4 (UID 5)"]
    with pytest.raises(imaplib.IMAP4.error):
        m.fetch("9", "FLAGS")
    m.close()
    m.logout()


def test_bodystructure_corpus(imap):
    """ENVELOPE, BODY and BODYSTRUCTURE of the nasty MIME corpus match the
    golden files (checked against Dovecot, see lib/testdata/mime/README)."""
    r = raw_login(imap)
    names = sorted(p.stem for p in MIME_DIR.glob("*.eml"))
    assert len(names) >= 20
    for i, name in enumerate(names, 1):
        data = (MIME_DIR / f"{name}.eml").read_bytes()
        r.send(f"A{i} APPEND INBOX {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
        _, t = r.until(f"A{i}")
        assert t.startswith(f"A{i} OK".encode()), (name, t)
    r.cmd("s", "SELECT INBOX")
    for i, name in enumerate(names, 1):
        ref = (MIME_DIR / f"{name}.ref").read_bytes()
        env, rest = ref.split(b"\nBODY ", 1)
        body, bs = rest.split(b"\nBODYSTRUCTURE ", 1)
        want = env + b" BODY " + body + b" BODYSTRUCTURE " + bs.rstrip(b"\n")
        u, t = r.cmd(f"F{i}", f"FETCH {i} (ENVELOPE BODY BODYSTRUCTURE)")
        assert t.startswith(f"F{i} OK".encode())
        got = b"".join(u)
        assert got == f"* {i} FETCH (".encode() + want + b")\r\n", name


def test_binary_fetch(imap):
    m = connect(imap)
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--b--\r\n")
    m.append("INBOX", None, None, msg("bin", body,
             'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n'))
    m.select("INBOX")
    r = raw_login(imap)
    r.cmd("s", "SELECT INBOX")
    u, t = r.cmd("a", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
    assert u == [b"* 1 FETCH (BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04 BINARY.SIZE[2] 5)\r\n"]
    u, t = r.cmd("b", "FETCH 1 (BODY.PEEK[2.MIME])")
    assert b"Content-Transfer-Encoding: base64" in u[0]
    u, t = r.cmd("c", "FETCH 1 (BODY.PEEK[5])")
    assert t.startswith(b"c OK")


def test_search(imap):
    m = connect(imap)
    fill(m, 6)
    m.append("INBOX", None, None, msg("=?utf-8?q?caf=C3=A9?= menu", "Grüße\r\n",
                                      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"))
    m.select("INBOX")
    m.store("2,4", "+FLAGS", "(\\Seen)")
    m.store("3", "+FLAGS", "(\\Deleted)")
    assert m.search(None, "ALL")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "SEEN")[1] == [b"2 4"]
    assert m.search(None, "UNSEEN", "UNDELETED")[1] == [b"1 5 6 7"]
    assert m.search(None, "OR", "SEEN", "DELETED")[1] == [b"2 3 4"]
    assert m.search(None, "NOT", "(OR SEEN DELETED)")[1] == [b"1 5 6 7"]
    assert m.search(None, "SUBJECT", '"message 5"')[1] == [b"5"]
    assert m.search(None, "BODY", "number")[1] == [b"1 2 3 4 5 6"]
    assert m.search(None, "TEXT", "NUMBER 6")[1] == [b"6"]
    assert m.search(None, "FROM", "sender@example")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "HEADER", "Message-ID", "message.3@")[1] == [b"3"]
    m.literal = "café".encode()
    assert m.search("UTF-8", "SUBJECT")[1] == [b"7"]
    m.literal = "Grüße".encode()
    assert m.search("UTF-8", "BODY")[1] == [b"7"]
    assert m.search(None, "2:4")[1] == [b"2 3 4"]
    assert m.search(None, "UID", "5:*")[1] == [b"5 6 7"]
    assert m.search(None, "LARGER", "1", "SMALLER", "100000")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "SENTON", "1-Aug-2023")[1] == [b"1 2 3 4 5 6 7"]
    assert m.search(None, "SENTBEFORE", "1-Aug-2023")[1] == [b""]
    assert m.search(None, "SINCE", "1-Jan-2000")[1] == [b"1 2 3 4 5 6 7"]
    assert m.uid("SEARCH", "SEEN")[1] == [b"2 4"]
    typ, data = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO"
    typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UNSEEN")
    assert typ == "OK"
    assert m.untagged_responses["ESEARCH"][-1].endswith(b"MIN 1 MAX 7 ALL 1,3,5:7 COUNT 5")
    typ, data = m._simple_command("SEARCH", "RETURN", "(SAVE)", "SEEN")
    assert typ == "OK"
    typ, data = m.fetch("$", "(UID)")
    assert data == [b"2 (UID 2)", b"4 (UID 4)"]
    with pytest.raises(imaplib.IMAP4.error):
        m._simple_command("SEARCH", "(((((NOT")
    m.logout()


def test_sort_and_thread(imap):
    m = connect(imap)
    m.append("INBOX", None, None, msg("b topic", "x\r\n"))
    m.append("INBOX", None, None, msg("a topic", "xxxxxxxx\r\n"))
    m.append("INBOX", None, None, msg("Re: b topic", "x\r\n",
                                      "In-Reply-To: <b.topic@example.org>\r\n"))
    m.select("INBOX")
    typ, data = m.sort("(SUBJECT)", "UTF-8", "ALL")
    assert data == [b"2 1 3"]
    typ, data = m.sort("(REVERSE SIZE)", "UTF-8", "ALL")
    assert data[0].split() == [b"3", b"2", b"1"]
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data == [b"(1 3)(2)"]
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert data == [b"(1 3)(2)"]
    m.logout()


def test_copy_move_uidplus(imap):
    m = connect(imap)
    fill(m, 4)
    m.create("Archive/2023")
    m.select("INBOX")
    typ, data = m.copy("1:2", "Archive/2023")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0])
    typ, data = m.uid("MOVE", "3", "Archive/2023")
    assert typ == "OK"
    assert any(b"COPYUID" in x for x in m.untagged_responses.get("OK", []))
    typ, data = m.fetch("1:*", "(UID)")
    assert [d.decode() for d in data] == ["1 (UID 1)", "2 (UID 2)", "3 (UID 4)"]
    typ, data = m.copy("1", "NoSuchBox")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = m.uid("EXPUNGE", "2:4")
    assert typ == "OK" and data == [None]
    typ, data = m.uid("EXPUNGE", "1")
    assert typ == "OK"
    assert m.fetch("1:*", "(UID)")[1] == [b"1 (UID 2)", b"2 (UID 4)"]
    assert m.status("Archive/2023", "(MESSAGES)")[1] == [b'"Archive/2023" (MESSAGES 3)']
    m.logout()


def test_examine_is_readonly(imap):
    m = connect(imap)
    fill(m, 1)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK"
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    assert typ == "NO"
    typ, data = m.fetch("1", "(BODY[])")
    typ, data = m.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]
    m.logout()


# ------------------------------------------------------------------ concurrency

def test_two_sessions_see_each_others_changes(imap):
    a = raw_login(imap)
    b = raw_login(imap)
    m = connect(imap)
    fill(m, 2)
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    b.cmd("x", "STORE 1 +FLAGS (\\Flagged)")
    u, t = a.cmd("n", "NOOP")
    assert b"* 1 FETCH (FLAGS (\\Flagged))\r\n" in u
    m.append("INBOX", None, None, msg("third"))
    u, t = a.cmd("n2", "NOOP")
    assert b"* 3 EXISTS\r\n" in u
    b.cmd("d", "STORE 2 +FLAGS (\\Deleted)")
    b.cmd("e", "EXPUNGE")
    # no EXPUNGE during FETCH by sequence number
    u, t = a.cmd("f", "FETCH 1:* (UID)")
    assert not any(b"EXPUNGE" in x for x in u)
    u, t = a.cmd("n3", "NOOP")
    assert b"* 2 EXPUNGE\r\n" in u


def test_idle_woken_by_append(imap):
    a = raw_login(imap)
    a.cmd("s", "SELECT INBOX")
    a.send("i IDLE\r\n")
    assert a.line() == b"+ idling\r\n"
    m = connect(imap)
    t0 = time.monotonic()
    m.append("INBOX", None, None, msg("wake up"))
    line = a.line()
    assert line == b"* 1 EXISTS\r\n"
    # woken by the append (inotify), not by a timer: IDLE's only timer
    # is the session timeout, minutes away; the bound is loose for busy
    # machines and sanitizer builds
    assert time.monotonic() - t0 < 5.0
    m.store if False else None
    a.send("DONE\r\n")
    _, t = a.until("i")
    assert t == b"i OK Idle completed.\r\n"


def test_idle_woken_by_lmtp_delivery(imap):
    if f":{imap.port('LMTP')} " not in (imap.dir / "master.conf").read_text():
        pytest.skip("no LMTP port in this instance")
    a = raw_login(imap)
    a.cmd("s", "SELECT INBOX")
    a.send("i IDLE\r\n")
    assert a.line() == b"+ idling\r\n"
    import smtplib
    l = smtplib.LMTP(HOST, imap.port("LMTP"))
    l.sendmail("x@example.org", [f"{USER}@localhost"], msg("via lmtp"))
    l.quit()
    assert a.line() == b"* 1 EXISTS\r\n"
    a.send("DONE\r\n")
    a.until("i")


def test_condstore_qresync(imap):
    m = connect(imap)
    fill(m, 5)
    r = raw_login(imap)
    r.cmd("e", "ENABLE QRESYNC")
    u, t = r.cmd("s", "SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(u)).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
    u, t = r.cmd("f", "FETCH 1:* (MODSEQ)")
    assert len(u) == 5 and b"MODSEQ (" in u[0]
    u, t = r.cmd("st", "STORE 2 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert t.startswith(b"st OK [MODIFIED 2]")
    u, t = r.cmd("st2", f"STORE 2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Seen)")
    assert t.startswith(b"st2 OK") and b"MODSEQ" in u[0]
    r.cmd("d", "STORE 3:4 +FLAGS.SILENT (\\Deleted)")
    u, t = r.cmd("x", "EXPUNGE")
    assert u[0] == b"* VANISHED 3:4\r\n", u
    r.cmd("c", "CLOSE")
    u, t = r.cmd("q", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms} 1:5))")
    text = b"".join(u)
    assert b"* VANISHED (EARLIER) 3:4\r\n" in text
    assert re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", text)
    u, t = r.cmd("uf", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert b"* VANISHED (EARLIER) 3:4\r\n" in u


def test_uidvalidity_and_uids_stable_across_restart(imap):
    m = connect(imap)
    fill(m, 3)
    st1 = m.status("INBOX", "(UIDVALIDITY UIDNEXT)")[1]
    m.logout()
    imap.stop()
    imap.start()
    wait_port(imap.port("IMAP"))
    m = connect(imap)
    assert m.status("INBOX", "(UIDVALIDITY UIDNEXT)")[1] == st1
    m.select("INBOX")
    assert m.fetch("1:*", "(UID)")[1] == [b"1 (UID 1)", b"2 (UID 2)", b"3 (UID 3)"]
    m.logout()


def test_quota(imap):
    m = connect(imap)
    fill(m, 2)
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert any(b'STORAGE 1 ' in d for d in data[1]) or any(b"STORAGE" in d for d in data[1])


# ------------------------------------------------------------------ bad input

def test_bad_input_never_crashes(imap):
    r = raw_login(imap)
    r.cmd("s", "SELECT INBOX")
    for text in ["FETCH 1:* (FLAGS", "FETCH (((( FLAGS", "FETCH 0 FLAGS",
                 "FETCH 1:x FLAGS", "FETCH 4294967296 FLAGS", "STORE 1 FLAGS",
                 "SEARCH OR", "SEARCH (", "LIST", "SELECT", "APPEND",
                 "UID", "UID FOO", "NOTACOMMAND", "FETCH 1 BODY[1.MIME.TEXT]",
                 "FETCH 1 BODY[HEADER.FIELDS ()]", 'LOGIN "unterminated',
                 "STATUS INBOX (FOO)", "SEARCH SENTON 32-Foo-2020",
                 "COPY * \"\"", "CREATE \"a//b\"", "CREATE \"..\""]:
        r.send(f"t {text}\r\n")
        _, t = r.until("t")
        assert t.startswith(b"t BAD") or t.startswith(b"t NO"), (text, t)
    r.send(b"t \x00\xff\x01garbage\r\n")
    _, t = r.until("t")
    assert t.startswith(b"t BAD")
    r.send(b"* NOOP\r\n")
    assert r.line().startswith(b"* BAD")
    u, t = r.cmd("ok", "NOOP")
    assert t.startswith(b"ok OK")


def test_huge_line_and_literals(imap):
    r = raw_login(imap)
    r.send(b"a NOOP " + b"x" * (1024 * 1024) + b"\r\n")
    ln = r.line()
    assert b"BAD" in ln and b"too long" in ln
    u, t = r.cmd("b", "NOOP")
    assert t.startswith(b"b OK")
    # a 4 GB synchronizing literal: refused from its size, nothing read
    r.send("c APPEND INBOX {4294967296}\r\n")
    _, t = r.until("c")
    assert t.startswith(b"c NO [TOOBIG]")
    r.send("d LOGIN {99999999}\r\n")
    _, t = r.until("d")
    assert t.startswith(b"d BAD")
    u, t = r.cmd("e", "NOOP")
    assert t.startswith(b"e OK")
    # a non-synchronizing one: the client sends it anyway, so BYE
    r.send("f APPEND INBOX {4294967296+}\r\n")
    assert r.line().startswith(b"* BYE")
    # and before login
    p = Raw(imap.port("IMAP"))
    p.send(b"a LOGIN " + b"y" * 100000 + b"\r\n")
    assert b"BAD" in p.line()
    p.send("b LOGIN {100000}\r\n")
    _, t = p.until("b")
    assert t.startswith(b"b BAD")
    # the next client is served
    m = connect(imap)
    assert m.noop()[0] == "OK"
    m.logout()


def test_binary_garbage_before_login(imap):
    import random
    rnd = random.Random(7)
    for _ in range(5):
        s = socket.create_connection((HOST, imap.port("IMAP")), timeout=10)
        s.recv(1000)
        s.sendall(bytes(rnd.randrange(256) for _ in range(20000)))
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        s.close()
    m = connect(imap)
    assert m.noop()[0] == "OK"
    m.logout()


# ------------------------------------------------------------------ real clients

def test_curl_imap(imap):
    if not Path("/usr/bin/curl").exists():
        pytest.skip("curl not installed")
    m = connect(imap)
    fill(m, 2)
    m.logout()
    url = f"imap://{HOST}:{imap.port('IMAP')}/INBOX;UID=2"
    r = subprocess.run(["curl", "-s", "--user", f"{USER}:{PASSWORD}", url],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"body number 2" in r.stdout
    r = subprocess.run(["curl", "-s", "--user", f"{USER}:{PASSWORD}",
                        f"imap://{HOST}:{imap.port('IMAP')}/"],
                       capture_output=True, timeout=30)
    assert b"INBOX" in r.stdout


def test_fetchmail(imap, tmp_path):
    if not Path("/usr/bin/fetchmail").exists():
        pytest.skip("fetchmail not installed")
    m = connect(imap)
    fill(m, 3)
    m.logout()
    rc = tmp_path / "fetchmailrc"
    out = tmp_path / "mbox"
    rc.write_text(f"poll {HOST} service {imap.port('IMAP')} protocol IMAP "
                  f"user {USER} password {PASSWORD} keep "
                  f"mda \"cat >> {out}\" sslproto ''\n")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "-v"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes().count(b"body number") == 3


def test_mutt_batch(imap, tmp_path):
    if not Path("/usr/bin/mutt").exists():
        pytest.skip("mutt not installed")
    m = connect(imap)
    fill(m, 2)
    m.logout()
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(f"set imap_user={USER}\nset imap_pass={PASSWORD}\n"
                      "set ssl_starttls=no\nset ssl_force_tls=no\n"
                      f"set folder=imap://{HOST}:{imap.port('IMAP')}/\n"
                      "set header_cache=\nset message_cachedir=\n")
    env = dict(os.environ, HOME=str(tmp_path), TERM="vt100")
    url = f"imap://{USER}@{HOST}:{imap.port('IMAP')}/INBOX"
    out = tmp_path / "out"
    # mutt needs a terminal: run it under script(1), driven by push
    cmd = (f"mutt -n -F {muttrc} -f {url} -e \"push '<pipe-message>cat > {out}"
           f"<enter><exit>'\"")
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"],
                       capture_output=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    got = (tmp_path / "out").read_bytes() if (tmp_path / "out").exists() else b""
    assert b"body number" in got, (r.stdout, r.stderr)


def mail_role_pids(inst, pattern):
    """Pids of this instance's processes whose command line has pattern."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pattern in cmd and str(inst.dir).encode() in cmd:
            pids.append(pid)
    return pids


# What the login role needs and the mail role must not map (issue #5:
# every linked library's relocations cost private pages per session).
LOGIN_ONLY_LIBS = (b"libssl", b"libcrypto", b"libsasl2", b"libldap",
                   b"libkrb5", b"libgssapi", b"libgnutls")


def test_rss_per_idle_connection(imap):
    """Each authenticated session has a mail-role process of its own, the
    imapd-mail program, which maps none of the login side's TLS, SASL,
    LDAP or Kerberos libraries. The memory of an idle one is reported
    here and measured against Dovecot in bench/imap-load (a bound would
    be a benchmark, not a test, and means nothing under ASan)."""
    conns = [raw_login(imap) for _ in range(5)]
    for c in conns:
        c.cmd("s", "SELECT INBOX")
    time.sleep(0.3)
    rss = []
    pids = mail_role_pids(imap, b"imapd-mail")
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            maps = Path(f"/proc/{pid}/maps").read_bytes()
        except OSError:
            continue
        for lib in LOGIN_ONLY_LIBS:
            assert lib not in maps, (pid, lib)
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        if m:
            rss.append(int(m.group(1)))
    print(f"imapd-mail RSS per session (kB): {sorted(rss)}")
    assert len(rss) >= len(conns)
    for c in conns:
        _, t = c.cmd("n", "NOOP")
        assert t.startswith(b"n OK"), t
        c.close()


def test_mail_role_of_imapd_still_served(instance_factory):
    """A master.conf written before imapd-mail existed names the mail role
    as "imapd -o imap_role=mail": that keeps working."""
    inst = instance_factory()
    conf = inst.dir / "master.conf"
    text = conf.read_text()
    assert " imapd-mail\n" in text
    conf.write_text(text.replace(" imapd-mail\n",
                                 " imapd -o imap_role=mail\n"))
    os.chmod(inst.dir, 0o711)
    inst.start()
    inst.postern("user", "add", USER, "--password", PASSWORD)
    wait_port(inst.port("IMAP"))
    r = raw_login(inst)
    _, t = r.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    assert mail_role_pids(inst, b"imap_role=mail")
    assert not mail_role_pids(inst, b"imapd-mail")
    _, t = r.cmd("o", "LOGOUT")
    assert t.startswith(b"o OK"), t
    r.close()


def test_login_burst_all_handed_off(imap):
    """A burst of concurrent logins reaches the mail role, every one: the
    hand-off once failed with [UNAVAILABLE] at 200 connections (mail
    workers spawned one at a time, each start-up slowed by the hashing
    login processes, past the login side's 10s deadline)."""
    n = 150
    barrier = threading.Barrier(n)
    results = [None] * n
    conns = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
            m = imaplib.IMAP4(HOST, imap.port("IMAP"), timeout=60)
            conns[i] = m
            m.login(USER, PASSWORD)
            typ, _ = m.noop()
            results[i] = typ
        except Exception as e:          # noqa: BLE001 - reported below
            results[i] = repr(e)

    imap.set_config("imap_client_connection_limit", "0")
    imap.set_config("imap_user_connection_limit", "0")
    imap.reload()
    time.sleep(0.5)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    for m in conns:
        if m is not None:
            try:
                m.logout()
            except Exception:           # noqa: BLE001
                pass
    bad = [r for r in results if r != "OK"]
    print(f"{n} concurrent logins in {elapsed:.1f}s")
    assert not bad, f"{len(bad)} of {n} failed, e.g. {bad[:3]}"
    assert "hand-off" not in imap.log_text()


def test_imap4rev2_enable(imap):
    """RFC 9051 for a client that ENABLEs IMAP4rev2: advertised before and
    after login; SELECT without RECENT/UNSEEN but with a LIST response;
    SEARCH answers with ESEARCH (as RETURN (ALL)); STATUS SIZE and
    DELETED; \\NonExistent for a subscribed name that does not exist.
    IMAP4rev1 behaviour is unchanged without ENABLE."""
    m = connect(imap)
    fill(m, 3)
    m.select("INBOX")
    m.store("2", "+FLAGS", "\\Deleted")
    m.logout()
    r = Raw(imap.port("IMAP"))
    assert b"IMAP4rev2" in r.greeting
    _, t = r.cmd("L", f"LOGIN {USER} {PASSWORD}")
    assert b"IMAP4rev2" in t
    u, _ = r.cmd("c", "CAPABILITY")
    assert b" IMAP4rev2 " in u[0] and b" ENABLE " in u[0]
    # rev1 first
    u, t = r.cmd("a", "SELECT INBOX")
    assert b"* 0 RECENT\r\n" in u and t.startswith(b"a OK")
    u, t = r.cmd("b", "SEARCH ALL")
    assert u == [b"* SEARCH 1 2 3\r\n"], u
    r.cmd("b2", "UNSELECT")
    u, t = r.cmd("e", "ENABLE IMAP4rev2")
    assert u == [b"* ENABLED IMAP4rev2\r\n"] and t.startswith(b"e OK")
    u, t = r.cmd("e2", "ENABLE IMAP4rev2")
    assert u == [b"* ENABLED\r\n"]
    u, t = r.cmd("s", "SELECT INBOX")
    assert t.startswith(b"s OK"), t
    assert not any(b"RECENT" in x or b"[UNSEEN" in x for x in u), u
    assert b'* LIST () "/" "INBOX"\r\n' in u, u
    assert b"* 3 EXISTS\r\n" in u
    u, t = r.cmd("f", "SEARCH ALL")
    assert u == [b'* ESEARCH (TAG "f") ALL 1:3\r\n'], u
    u, t = r.cmd("g", "UID SEARCH DELETED")
    assert u == [b'* ESEARCH (TAG "g") UID ALL 2\r\n'], u
    u, t = r.cmd("h", "SEARCH SUBJECT nothing-like-this")
    assert u == [b'* ESEARCH (TAG "h")\r\n'], u
    u, t = r.cmd("i", "SEARCH RETURN (COUNT) ALL")
    assert u == [b'* ESEARCH (TAG "i") COUNT 3\r\n'], u
    u, t = r.cmd("j", "STATUS INBOX (MESSAGES SIZE DELETED UIDNEXT)")
    m_ = re.match(rb"\* STATUS \"INBOX\" \(MESSAGES 3 SIZE (\d+) DELETED 1 "
                  rb"UIDNEXT 4\)\r\n", u[0])
    assert m_ and int(m_.group(1)) > 100, u
    r.cmd("k", "SUBSCRIBE gone")
    u, t = r.cmd("l", 'LIST (SUBSCRIBED) "" "gone"')
    assert u == [b'* LIST (\\NonExistent \\Subscribed) "/" "gone"\r\n'], u
    u, t = r.cmd("m", "UNSELECT")
    assert t.startswith(b"m OK")
    u, t = r.cmd("n", "NAMESPACE")
    assert t.startswith(b"n OK")
    r.cmd("z", "LOGOUT")
    r.close()
