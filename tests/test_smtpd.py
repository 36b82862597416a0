# SPDX-License-Identifier: MIT
"""Integration tests of smtpd: a real instance (master, smtpd, cleanup),
driven with Python's smtplib, raw sockets and swaks.

Services: smtp at SMTP_PORT, submission at SUBMISSION_PORT (STARTTLS,
AUTH required), smtps at SMTPS_PORT (implicit TLS, AUTH required). If
`postern instance init` already wrote smtpd lines, they are used as
they are; otherwise this module adds them. qmgr is kept out of the
instances here, so accepted messages stay in active/ where the tests
read them back with tests/progs/qfdump.

After every test the smtp service must still accept a new client.
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, PROGS

USER = "alice"
PASSWORD = "s3cret pass"

SMTP_ARGS = "smtpd"
SUBMISSION_ARGS = ("smtpd -o smtpd_sasl_auth_enable=yes"
                   " -o smtpd_tls_security_level=encrypt"
                   " -o smtpd_client_restrictions=permit_sasl_authenticated,reject")
SMTPS_ARGS = ("smtpd -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes"
              " -o smtpd_client_restrictions=permit_sasl_authenticated,reject")


# ------------------------------------------------------------------ helpers

def service_lines(inst):
    """The non-comment lines of master.conf (continuations joined)."""
    lines = []
    for raw in (inst.dir / "master.conf").read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and lines:
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw.strip())
    return lines


def prepare(inst, conf=None, keep_qmgr=False):
    """Configure inst for these tests (before start): services, a user,
    an alias, quick settings."""
    # The fixture's directory is mkdtemp's 0700; daemons that run as
    # another user (an instance made by root) must reach data/ in it.
    os.chmod(inst.dir, 0o711)
    settings = {"smtpd_peername_lookup": "no"}
    settings.update(conf or {})
    for key, value in settings.items():
        inst.set_config(key, value)
    aliases = inst.dir / "data" / "aliases"
    aliases.write_text("info: alice\nsales@localhost: alice\n")
    os.chmod(aliases, 0o644)
    inst.set_config("alias_maps", f"file:{aliases}")

    path = inst.dir / "master.conf"
    text = path.read_text()
    if not keep_qmgr:
        # Keep accepted mail where the tests can read it.
        text = re.sub(r"(?m)^(qmgr\s.*(\n[ \t].*)*)", lambda m: "\n".join(
            "#" + l for l in m.group(1).split("\n")), text)
        path.write_text(text)
    lines = service_lines(inst)
    have = " ".join(lines)
    if not any(re.match(r"cleanup\s+unix\b", l) for l in lines):
        inst.add_service("cleanup unix n - n - 0 cleanup")
    for key, args in (("SMTP", SMTP_ARGS), ("SUBMISSION", SUBMISSION_ARGS),
                      ("SMTPS", SMTPS_ARGS)):
        port = inst.port(key)
        if f":{port} " not in have and not any(l.startswith(f"{port} ") for l in lines):
            inst.add_service(f"{HOST}:{port} inet n - n - - {args}")
    inst.postern("user", "add", USER, "--password", PASSWORD)


@pytest.fixture
def smtp(instance_factory):
    """A started instance with the three SMTP services."""
    inst = instance_factory()
    prepare(inst)
    inst.start()
    wait_port(inst.port("SMTP"))
    yield inst
    assert_alive(inst)


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(100).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answers on port {port}")
        time.sleep(0.1)


def assert_alive(inst):
    """The smtp service still serves a complete new session."""
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=10) as s:
        code, _ = s.ehlo("alive.test")
        assert code == 250
        assert s.noop()[0] == 250


def qfdump(inst, queue_id):
    """(envelope dict, recipients list, content bytes) of a queue file."""
    r = subprocess.run([str(PROGS / "qfdump"), str(inst.dir / "spool"), queue_id],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    head, _, content = r.stdout.partition(b"\n\n")
    env, rcpts = {}, []
    for line in head.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key == "rcpt":
            rcpts.append(value)
        else:
            env[key] = value
    assert int(env["content"]) == len(content)
    return env, rcpts, content


def queued_id(reply):
    if isinstance(reply, bytes):
        reply = reply.decode(errors="replace")
    m = re.search(r"queued as ([0-9A-Za-z]+)", reply)
    assert m, f"no queue ID in {reply!r}"
    return m.group(1)


def body_after_received(content):
    """The message after our Received: header (first header, folded)."""
    assert content.startswith(b"Received: from "), content[:200]
    lines = content.split(b"\r\n")
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


class Raw:
    """A raw SMTP client: send bytes, read whole replies."""

    def __init__(self, port, timeout=10, greet=True):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        if greet:
            self.greeting = self.reply()
            assert self.greeting.startswith(b"220 "), self.greeting

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; partial {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        """One complete (possibly multi-line) reply."""
        out = b""
        while True:
            line = self.line()
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return out

    def cmd(self, data):
        self.send(data + "\r\n" if isinstance(data, str) else data + b"\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closes the connection (all pending data read)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def tls_client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def files_in(inst, queue):
    d = inst.dir / "spool" / queue
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


# ------------------------------------------------------------------ sessions

def test_ehlo_and_full_transaction(smtp):
    msg = (b"From: Bob <bob@example.org>\r\nTo: alice@localhost\r\n"
           b"Subject: hello\r\n\r\nHello Alice.\r\n")
    with smtplib.SMTP(HOST, smtp.port("SMTP"), timeout=10) as s:
        code, banner = s.ehlo("client.example.org")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "dsn", "chunking", "binarymime", "smtputf8", "starttls"):
            assert s.has_extn(ext), ext
        assert "auth" not in s.esmtp_features
        assert s.esmtp_features["size"] == str(10 * 1024 * 1024)
        assert s.mail("bob@example.org") == (250, b"2.1.0 Ok")
        assert s.rcpt("alice@localhost") == (250, b"2.1.5 Ok")
        code, reply = s.data(msg)
        assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as ")
    qid = queued_id(reply)
    env, rcpts, content = qfdump(smtp, qid)
    assert env["sender"] == "bob@example.org"
    assert env["helo"] == "client.example.org"
    assert env["protocol"] == "ESMTP"
    assert env["client_addr"] == "127.0.0.1"
    assert rcpts == ["alice@localhost notify=0 orcpt=;"]
    assert body_after_received(content).endswith(msg)
    received = content.split(b"\r\n\t")[:4]
    assert received[0] == b"Received: from client.example.org (unknown [127.0.0.1])"
    assert b"by localhost (Postern) with ESMTP id " + qid.encode() in content
    assert b"\tfor <alice@localhost>; " in content
    log = smtp.log_text()
    assert re.search(r"smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]", log)
    assert re.search(rf"smtpd\[\d+\]: {qid}: client=unknown\[127\.0\.0\.1\]", log)
    smtp.wait_for_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 "
                      r"rcpt=1 data=1 quit=1 commands=5")


def test_dot_stuffing_round_trip_byte_exact(smtp):
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n...three\r\n"
            b"middle . dot\r\n\r\n.\r\nlast line\r\n")
    stuffed = re.sub(rb"(?m)^\.", b"..", body)
    r = Raw(smtp.port("SMTP"))
    assert r.cmd("EHLO c.test").startswith(b"250-")
    assert r.cmd("MAIL FROM:<d@example.org>").startswith(b"250 ")
    assert r.cmd("RCPT TO:<alice@localhost>").startswith(b"250 ")
    assert r.cmd("DATA").startswith(b"354 ")
    reply = r.cmd(stuffed + b".")
    assert reply.startswith(b"250 2.0.0 Ok: queued as"), reply
    r.cmd("QUIT")
    _, _, content = qfdump(smtp, queued_id(reply))
    assert body_after_received(content) == body


def test_pipelining_multi_recipient(smtp):
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO pipe.test")
    r.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
           "RCPT TO:<nobody@localhost>\r\nRCPT TO:<info@localhost>\r\n"
           "RCPT TO:<alice+box@localhost>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n")
    replies = [r.reply() for _ in range(7)]
    assert replies[0].startswith(b"250 2.1.0")
    assert replies[1].startswith(b"250 2.1.5")
    assert replies[2].startswith(b"550 5.1.1 <nobody@localhost>: Recipient address rejected")
    assert all(x.startswith(b"250 2.1.5") for x in replies[3:6]), replies
    assert replies[6].startswith(b"354")
    r.send("Subject: p\r\n\r\nx\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    done = r.reply()
    assert done.startswith(b"250 2.0.0 Ok: queued as")
    assert r.reply().startswith(b"250 2.0.0")
    assert r.reply().startswith(b"250 2.0.0")
    assert r.reply().startswith(b"221 2.0.0")
    env, rcpts, content = qfdump(smtp, queued_id(done))
    # (cleanup qualifies <Postmaster> with $myorigin)
    assert [x.split()[0] for x in rcpts] == ["alice@localhost", "info@localhost",
                                             "alice+box@localhost", "Postmaster@localhost"]
    assert b"\tfor <" not in content.split(b"\r\n\r\n")[0]


def test_size_limit(instance_factory):
    inst = instance_factory()
    prepare(inst, {"message_size_limit": "2k"})
    inst.start()
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=10) as s:
        s.ehlo("size.test")
        assert s.esmtp_features["size"] == "2048"
        code, msg = s.mail("a@example.org", ["SIZE=4096"])
        assert (code, msg[:5]) == (552, b"5.3.4")
        assert s.mail("a@example.org", ["SIZE=1000"])[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, msg = s.data(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40)
        assert code == 552 and msg.startswith(b"5.3.4"), (code, msg)
        # the session goes on, and a small message passes
        assert s.mail("a@example.org")[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        assert s.data(b"Subject: small\r\n\r\nok\r\n")[0] == 250
    assert files_in(inst, "incoming") == []
    assert_alive(inst)


def test_8bitmime_and_smtputf8(smtp):
    body = "Subject: caf\u00e9\r\n\r\nGr\u00fc\u00dfe, \u00e7a va?\r\n".encode("utf-8") + b"\xff\xfe raw\r\n"
    with smtplib.SMTP(HOST, smtp.port("SMTP"), timeout=10) as s:
        s.ehlo("eight.test")
        assert s.mail("e@example.org", ["BODY=8BITMIME"])[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, reply = s.data(body)
        assert code == 250
        env, _, content = qfdump(smtp, queued_id(reply))
        assert env["body"] == "2"
        assert body_after_received(content) == body
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO u.test")
    assert r.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8".encode()).startswith(b"250 ")
    assert r.cmd("MAIL FROM:<\xff@example.org>".encode("latin-1"))[:1] == b"5"
    r.cmd("RSET")
    assert r.cmd(b"MAIL FROM:<\xff@example.org> SMTPUTF8")[:1] == b"5"
    assert r.cmd("RCPT TO:<alice@localhost>")[:3] == b"503"
    r.cmd("QUIT")


def test_bdat_binary_chunks(smtp):
    chunk1 = b"Subject: chunked\r\n\r\nline with bare\nLF and .\r\n.\r\n"
    chunk2 = bytes(range(256)) + b"\r\n.\r\nend"
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO chunk.test")
    assert r.cmd("MAIL FROM:<c@example.org> BODY=BINARYMIME").startswith(b"250 ")
    assert r.cmd("RCPT TO:<alice@localhost>").startswith(b"250 ")
    r.send(b"BDAT %d\r\n" % len(chunk1) + chunk1)
    assert r.reply() == b"250 2.0.0 Ok: %d bytes\r\n" % len(chunk1)
    r.send(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
    reply = r.reply()
    assert reply.startswith(b"250 2.0.0 Ok: queued as"), reply
    # BDAT with a bad size, and with more octets than announced
    assert r.cmd("BDAT abc")[:3] == b"501"
    r.cmd("MAIL FROM:<c@example.org>")
    r.cmd("RCPT TO:<alice@localhost>")
    r.send(b"BDAT 5 LAST\r\n12345EXTRA\r\n")
    assert r.reply().startswith(b"250 2.0.0 Ok: queued as")
    assert r.reply()[:3] == b"500"      # "EXTRA" is taken as a command
    assert r.cmd("NOOP").startswith(b"250")
    r.cmd("QUIT")
    env, _, content = qfdump(smtp, queued_id(reply))
    assert env["body"] == "3"
    assert body_after_received(content) == chunk1 + chunk2


def test_dsn_parameters_in_queue_file(smtp):
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO dsn.test")
    assert r.cmd("MAIL FROM:<d@example.org> RET=HDRS ENVID=QQ+2B314").startswith(b"250")
    assert r.cmd("RCPT TO:<alice@localhost> NOTIFY=SUCCESS,DELAY "
                 "ORCPT=rfc822;Alice+40Example.org").startswith(b"250")
    assert r.cmd("RCPT TO:<info@localhost> NOTIFY=NEVER").startswith(b"250")
    assert r.cmd("RCPT TO:<alice@localhost> NOTIFY=BOGUS")[:3] == b"501"
    r.cmd("DATA")
    reply = r.cmd("Subject: dsn\r\n\r\nx\r\n.")
    r.cmd("QUIT")
    env, rcpts, _ = qfdump(smtp, queued_id(reply))
    assert env["envid"] == "QQ+314"
    assert env["ret"] == "2"
    assert rcpts == ["alice@localhost notify=10 orcpt=rfc822;Alice@Example.org",
                     "info@localhost notify=1 orcpt=;"]


def test_vrfy_help_noop_rset(smtp):
    r = Raw(smtp.port("SMTP"))
    assert r.cmd("VRFY alice")[:9] == b"252 2.0.0"
    assert r.cmd("HELP")[:3] == b"214"
    assert r.cmd("NOOP") == b"250 2.0.0 Ok\r\n"
    assert r.cmd("RSET") == b"250 2.0.0 Ok\r\n"
    assert r.cmd("EXPN staff")[:3] == b"502"
    assert r.cmd("QUIT")[:9] == b"221 2.0.0"
    assert r.closed()


def test_relay_refused_and_unknown_user(instance_factory):
    inst = instance_factory()
    prepare(inst, {"mynetworks": "192.0.2.0/24"})
    inst.start()
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=10) as s:
        s.ehlo("relay.test")
        assert s.mail("x@example.org")[0] == 250
        code, msg = s.rcpt("someone@elsewhere.example")
        assert code == 554 and msg.startswith(b"5.7.1") and b"Relay access denied" in msg
        code, msg = s.rcpt("nobody@localhost")
        assert code == 550 and msg.startswith(b"5.1.1")
        assert s.rcpt("ALICE@LOCALHOST")[0] == 250
        assert s.rcpt("sales@localhost")[0] == 250
    inst.wait_for_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1|"
                      r"\w+: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1")
    assert_alive(inst)


def test_submission_starttls_then_auth(smtp):
    port = smtp.port("SUBMISSION")
    with smtplib.SMTP(HOST, port, timeout=10) as s:
        s.ehlo("sub.test")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        # AUTH without TLS: refused, the password never read
        code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(
            f"\0{USER}\0{PASSWORD}".encode()).decode())
        assert code == 538 and msg.startswith(b"5.7.11")
        code, msg = s.docmd("MAIL FROM:<a@example.org>")
        assert code == 530
        s.starttls(context=tls_client_context())
        s.ehlo("sub.test")
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        assert not s.has_extn("starttls")
        code, msg = s.docmd("MAIL FROM:<a@example.org>")
        assert (code, msg[:5]) == (530, b"5.7.0")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(USER, "wrong password")
        assert e.value.smtp_code == 535
        s.login(USER, PASSWORD)
        assert s.mail("alice@localhost")[0] == 250
        assert s.rcpt("friend@remote.example")[0] == 250    # relay when authenticated
        code, reply = s.data(b"Subject: submitted\r\n\r\nhi\r\n")
        assert code == 250
    env, rcpts, content = qfdump(smtp, queued_id(reply))
    assert env["protocol"] == "ESMTPSA"
    assert env["auth_user"] == USER
    assert re.search(rb"\t\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)\r\n",
                     content), content[:400]
    assert b"with ESMTPSA id" in content
    log = smtp.log_text()
    assert re.search(r"Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: "
                     r"TLSv1\.[23] with cipher", log)
    assert f"sasl_method=PLAIN, sasl_username={USER}" in log \
        or f"sasl_method=LOGIN, sasl_username={USER}" in log


def test_auth_login_mechanism(smtp):
    r = Raw(smtp.port("SUBMISSION"))
    r.cmd("EHLO l.test")
    assert r.cmd("STARTTLS")[:3] == b"220"
    tls = tls_client_context().wrap_socket(r.sock)
    r.sock = tls
    r.cmd("EHLO l.test")
    assert r.cmd("AUTH LOGIN") == b"334 VXNlcm5hbWU6\r\n"
    assert r.cmd(base64.b64encode(USER.encode())) == b"334 UGFzc3dvcmQ6\r\n"
    assert r.cmd(base64.b64encode(PASSWORD.encode()))[:9] == b"235 2.7.0"
    assert r.cmd("AUTH PLAIN")[:3] == b"503"
    r.cmd("QUIT")


def test_smtps_implicit_tls(smtp):
    with smtplib.SMTP_SSL(HOST, smtp.port("SMTPS"), timeout=10,
                          context=tls_client_context()) as s:
        s.ehlo("smtps.test")
        assert "PLAIN" in s.esmtp_features["auth"]
        assert not s.has_extn("starttls")
        assert s.mail("x@example.org")[0] == 530
        s.login(USER, PASSWORD)
        assert s.mail("alice@localhost")[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, reply = s.data(b"Subject: smtps\r\n\r\nx\r\n")
        assert code == 250
    env, _, _ = qfdump(smtp, queued_id(reply))
    assert env["protocol"] == "ESMTPSA"
    # A plaintext client on the SMTPS port gets nothing and is dropped.
    r = Raw(smtp.port("SMTPS"), greet=False)
    r.send("EHLO plain.test\r\n")
    assert r.closed(10)
    assert b"220" not in r.buf     # at most a TLS alert


def test_starttls_discards_pipelined_plaintext(smtp):
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO inject.test")
    # Everything after STARTTLS in the same packet must be dropped.
    r.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@localhost>\r\n")
    assert r.reply()[:3] == b"220"
    assert r.buf == b""
    r.sock = tls_client_context().wrap_socket(r.sock)
    assert r.cmd("EHLO inject.test").startswith(b"250-")
    assert r.cmd("RCPT TO:<alice@localhost>")[:9] == b"503 5.5.1"
    assert r.cmd("STARTTLS")[:3] == b"554"
    assert r.cmd("QUIT")[:3] == b"221"


# ------------------------------------------------------------------ bad input

def test_megabyte_command_line(smtp):
    r = Raw(smtp.port("SMTP"))
    r.send(b"NOOP " + b"x" * (1024 * 1024) + b"\r\n")
    assert r.reply() == b"500 5.5.2 Error: line too long\r\n"
    assert r.cmd("NOOP") == b"250 2.0.0 Ok\r\n"
    assert r.cmd("QUIT")[:3] == b"221"


def test_nul_and_garbage(smtp):
    r = Raw(smtp.port("SMTP"))
    assert r.cmd(b"EHLO a\0b")[:1] == b"5"
    assert r.cmd(b"NOOP\0")[:1] == b"5"
    assert r.cmd(b"MAIL FROM:<a@b\0.example>")[:1] == b"5"
    assert r.cmd(b"\x80\x81\xfe")[:3] == b"500"
    assert r.cmd(b"")[:1] == b"5"
    assert r.cmd("NOOP") == b"250 2.0.0 Ok\r\n"
    r.cmd("QUIT")


def test_too_many_errors_disconnects(smtp):
    r = Raw(smtp.port("SMTP"))
    r.send("".join(f"BOGUS{i}\r\n" for i in range(100)))
    assert r.closed(10)
    text = r.buf.decode()
    assert text.count("500 5.5.2") == 20
    assert text.endswith("421 4.7.0 localhost Error: too many errors\r\n")
    smtp.wait_for_log(r"too many errors after unknown command from unknown\[127\.0\.0\.1\]")


def test_disconnect_in_data_leaves_no_queue_file(smtp):
    before = files_in(smtp, "active")
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO drop.test")
    r.cmd("MAIL FROM:<drop@example.org>")
    r.cmd("RCPT TO:<alice@localhost>")
    assert r.cmd("DATA")[:3] == b"354"
    r.send("Subject: never\r\n\r\n" + "partial line\r\n" * 100)
    r.close()
    smtp.wait_for_log(r"lost connection while receiving the message")
    deadline = time.monotonic() + 10
    while files_in(smtp, "incoming") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert files_in(smtp, "incoming") == []
    assert files_in(smtp, "active") == before


def test_smuggling_bare_lf_never_ends_data(smtp):
    r = Raw(smtp.port("SMTP"))
    r.cmd("EHLO smuggle.test")
    r.cmd("MAIL FROM:<s@example.org>")
    r.cmd("RCPT TO:<alice@localhost>")
    r.cmd("DATA")
    r.send("Subject: s\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n"
           "RCPT TO:<alice@localhost>\r\nDATA\r\n\r\nbody\r\n.\n\r\n.\r\n")
    assert r.reply() == b"550 5.5.2 Error: bare <LF> received\r\n"
    assert r.cmd("NOOP") == b"250 2.0.0 Ok\r\n"   # nothing else was executed
    r.cmd("QUIT")


def test_talking_before_greeting(instance_factory):
    inst = instance_factory()
    prepare(inst, {"smtpd_greet_pause": "1s"})
    inst.start()
    r = Raw(inst.port("SMTP"), greet=False)
    r.send("EHLO early.test\r\n")
    assert r.closed(10)
    assert r.buf == b"554 5.5.1 Error: talking before the greeting\r\n"
    inst.wait_for_log(r"reject: pre-greeting traffic from unknown\[127\.0\.0\.1\]")
    # a patient client is served
    r = Raw(inst.port("SMTP"))
    assert r.cmd("QUIT")[:3] == b"221"
    assert_alive(inst)


def test_connection_limit(instance_factory):
    inst = instance_factory()
    prepare(inst, {"smtpd_client_connection_count_limit": "2"})
    inst.start()
    a = Raw(inst.port("SMTP"))
    b = Raw(inst.port("SMTP"))
    c = Raw(inst.port("SMTP"), greet=False)
    assert c.reply().startswith(b"421 4.7.0")
    a.cmd("QUIT")
    a.closed()
    time.sleep(0.3)
    d = Raw(inst.port("SMTP"))
    d.cmd("QUIT")
    b.cmd("QUIT")


# ------------------------------------------------------------------ swaks

swaks = shutil.which("swaks")


@pytest.mark.skipif(swaks is None, reason="swaks not installed")
def test_swaks_plain_pipelining_and_tls_auth(smtp):
    r = subprocess.run([swaks, "--server", HOST, "--port", str(smtp.port("SMTP")),
                        "--from", "sw@example.org", "--to", "alice@localhost",
                        "--helo", "swaks.test", "--pipeline",
                        "--body", "line\n.\n..dots\nend"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"250 2\.0\.0 Ok: queued as (\S+)", r.stdout)
    assert m, r.stdout
    qid = m.group(1)
    _, _, content = qfdump(smtp, qid)
    assert b"\r\nline\r\n.\r\n..dots\r\nend\r\n" in content

    r = subprocess.run([swaks, "--server", HOST, "--port", str(smtp.port("SUBMISSION")),
                        "--from", "alice@localhost", "--to", "far@remote.example",
                        "--tls", "--auth", "LOGIN", "--auth-user", USER,
                        "--auth-password", PASSWORD],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout

    r = subprocess.run([swaks, "--server", HOST, "--port", str(smtp.port("SMTPS")),
                        "--from", "alice@localhost", "--to", "far@remote.example",
                        "--tlsc", "--auth", "PLAIN", "--auth-user", USER,
                        "--auth-password", PASSWORD],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    # bad password: swaks fails, the server goes on
    r = subprocess.run([swaks, "--server", HOST, "--port", str(smtp.port("SUBMISSION")),
                        "--from", "alice@localhost", "--to", "far@remote.example",
                        "--tls", "--auth", "PLAIN", "--auth-user", USER,
                        "--auth-password", "nope"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout


# ------------------------------------------------------------------ durability

@pytest.mark.parametrize("killpoint,queued", [("after-commit", True),
                                              ("before-rename", True),
                                              ("before-commit", False)])
def test_answer_from_disk_when_cleanup_dies(instance_factory, monkeypatch,
                                            killpoint, queued):
    """cleanup dies around its commit: smtpd says 250 exactly when the
    message is durably queued, else 4xx with nothing left behind."""
    monkeypatch.setenv("POSTERN_TEST_HOOKS", "1")
    monkeypatch.setenv("POSTERN_CLEANUP_KILLPOINT", killpoint)
    inst = instance_factory()
    prepare(inst)
    inst.start()
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=30) as s:
        s.ehlo("dur.test")
        assert s.mail("d@example.org")[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, reply = s.data(b"Subject: durable\r\n\r\nkeep me\r\n")
    if queued:
        assert code == 250, reply
        _, _, content = qfdump(inst, queued_id(reply))
        assert content.endswith(b"\r\n\r\nkeep me\r\n")
    else:
        assert 400 <= code < 500, (code, reply)
        assert files_in(inst, "active") == []
    assert_alive(inst)


def test_helo_and_timeout(instance_factory):
    inst = instance_factory()
    prepare(inst, {"smtpd_timeout": "1s", "smtpd_helo_required": "yes"})
    inst.start()
    r = Raw(inst.port("SMTP"))
    assert r.cmd("MAIL FROM:<a@example.org>")[:9] == b"503 5.5.1"
    assert r.cmd("HELO bad_name!")[:3] == b"501"
    assert r.cmd("HELO old.example") == b"250 localhost\r\n"
    # after HELO: no ESMTP parameters
    assert r.cmd("MAIL FROM:<a@example.org> SIZE=10")[:3] == b"555"
    assert r.cmd("MAIL FROM:<a@example.org>")[:3] == b"250"
    assert r.cmd("RCPT TO:<alice@localhost>")[:3] == b"250"
    r.cmd("DATA")
    reply = r.cmd("Subject: helo\r\n\r\nx\r\n.")
    env, _, content = qfdump(inst, queued_id(reply))
    assert env["protocol"] == "SMTP"
    assert b"by localhost (Postern) with SMTP id" in content
    time.sleep(1.5)
    assert r.closed(5)
    assert r.buf == b"421 4.4.2 localhost Error: timeout exceeded\r\n"
    inst.wait_for_log(r"timeout after DATA from unknown\[127\.0\.0\.1\]")
    assert_alive(inst)
