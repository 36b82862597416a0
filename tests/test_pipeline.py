# SPDX-License-Identifier: MIT
"""The whole path through the real daemons, end to end:

    smtplib / swaks / raw BDAT / sendmail -> smtpd -> cleanup -> queue
        -> qmgr -> lmtp agent (smtp) -> lmtpd (LMTP_PORT) -> mail store

What was delivered is read back from the store with tests/progs/storecat
and compared byte for byte with what the client sent (smtpd puts one
Received: field first; nothing else may change). Every test ends with
`postern queue list` empty. See tests/pipeline.py for the set-up.
"""

import email
import email.policy
import re
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import HOST
from pipeline import log_ids, make_pipeline

SWAKS = shutil.which("swaks")


# ------------------------------------------------------------------ helpers

def strip_received(stored):
    """stored without its first header field, which must be smtpd's
    Received: (folded over several lines); returns (received, rest)."""
    assert stored.startswith(b"Received: from "), stored[:200]
    end = 0
    while True:
        nl = stored.index(b"\r\n", end) + 2
        end = nl
        if stored[end:end + 1] not in (b" ", b"\t"):
            return stored[:end], stored[end:]


def qid_of(received):
    m = re.search(rb"\bid ([0-9A-Z]+)\b", received)
    assert m, received
    return m.group(1).decode()


def only_message(p, user):
    rows = p.wait_delivered(user, 1)
    assert len(rows) == 1, rows
    return p.cat(user, rows[0][0])


class Raw:
    """A raw SMTP client: exact bytes out, whole replies back."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.f = self.sock.makefile("rb")
        assert self.reply()[0] == 220

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("connection closed")
            lines.append(line[4:].rstrip(b"\r\n").decode(errors="replace"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.fixture
def pipe(instance_factory):
    p = make_pipeline(instance_factory, users=("alice", "bob", "carol"))
    yield p
    p.wait_queue_empty()


# ------------------------------------------------------------------ content

def test_smtplib_dot_stuffing_and_8bit_exact(pipe):
    body = ("Grüße, naïve café – ½\r\n".encode() + bytes(range(0x80, 0x100))
            + b"\r\n.leading dot\r\n..two dots\r\n.\r\n. space\r\n"
            b"bare\rCR in a line\r\ntrailing blanks  \t\r\n\r\n\r\nlast\r\n")
    msg = (b"From: Sender <sender@example.org>\r\nTo: alice@localhost\r\n"
           b"Subject: eight bit\r\nMessage-ID: <8bit@example.org>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)
    with pipe.smtp() as s:
        assert s.has_extn("8bitmime")
        refused = s.sendmail("sender@example.org", ["alice@localhost", "bob@localhost"],
                             msg, ["BODY=8BITMIME"])
    assert refused == {}
    ids = set()
    for user in ("alice", "bob"):
        received, rest = strip_received(only_message(pipe, user))
        assert rest == msg
        ids.add(qid_of(received))
    assert len(ids) == 1            # one queue file, two deliveries


def test_message_without_final_crlf_and_long_lines(pipe):
    # smtplib adds the CRLF before the final dot; the stored message has it
    long_line = b"x" * 990
    msg = (b"Subject: long\r\n\r\n" + long_line + b"\r\n" + b"y" * 500
           + b"\r\n" + b"no final line end")
    pipe.send("s@example.org", ["carol@localhost"], msg)
    _, rest = strip_received(only_message(pipe, "carol"))
    assert rest == msg + b"\r\n"


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_pipelining_exact(pipe, tmp_path):
    data = (b"From: swaks@example.org\r\nTo: bob@localhost\r\nSubject: swaks\r\n"
            b"Message-ID: <swaks-1@example.org>\r\n\r\nline\r\n.\r\n..dots\r\n"
            b". dot space\r\nend\r\n")
    f = tmp_path / "msg.eml"
    # swaks always sends CRLF . CRLF after the data: give it the
    # message without its last line end
    f.write_bytes(data[:-2])
    r = subprocess.run([SWAKS, "--server", HOST, "--port", str(pipe.inst.port("SMTP")),
                        "--from", "swaks@example.org", "--to", "bob@localhost,alice@localhost",
                        "--helo", "swaks.test", "--pipeline", "--data", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"250 2\.0\.0 Ok: queued as (\S+)", r.stdout)
    assert m, r.stdout
    for user in ("bob", "alice"):
        received, rest = strip_received(only_message(pipe, user))
        assert qid_of(received) == m.group(1)
        assert rest == data


def test_bdat_binarymime_exact(pipe):
    mbin = (b"From: bin@example.org\r\nTo: alice@localhost\r\nSubject: binary\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) * 16
            + b"\n.\n\r\n.\r\n..\r\nbare\nLF and bare\rCR\x00NUL\r\nend")
    c = Raw(pipe.inst.port("SMTP"))
    code, ext = c.cmd("EHLO bdat.test")
    assert code == 250
    assert "CHUNKING" in ext and "BINARYMIME" in ext, ext
    assert c.cmd("MAIL FROM:<bin@example.org> BODY=BINARYMIME")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    third = len(mbin) // 3
    chunks = [mbin[:third], mbin[third:2 * third], mbin[2 * third:]]
    for i, chunk in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        c.sock.sendall(f"BDAT {len(chunk)}{last}\r\n".encode() + chunk)
        code, text = c.reply()
        assert code == 250, text
    assert "queued as" in text[0], text
    assert c.cmd("QUIT")[0] == 221
    c.close()
    received, rest = strip_received(only_message(pipe, "alice"))
    assert rest == mbin
    # the agent passed it on with BDAT (lmtpd kept it binary-exact)
    qid = qid_of(received)
    pipe.inst.wait_for_log(rf"qmgr\[\d+\]: {qid}: to=<alice@localhost>.*status=sent")


def test_sendmail_same_path(pipe):
    # LF line ends, a dot-line that -i keeps, a missing Message-ID/Date
    data = b"From: Root <root@localhost>\nSubject: by sendmail\n\nline one\n.\n..two\nend\n"
    r = pipe.sendmail(["-v", "-i", "-f", "root@localhost", "bob@localhost"], data)
    assert r.returncode == 0, r.stderr
    qid = re.search(rb"queued as (\S+)", r.stdout).group(1).decode()
    rest = only_message(pipe, "bob")
    # (cleanup adds no Received: for local submissions, unlike Postfix's
    # pickup; the stored message is the submitted one with CRLF)
    msg = email.message_from_bytes(rest, policy=email.policy.default)
    assert msg["Subject"] == "by sendmail"
    assert msg["Message-ID"] and msg["Date"]
    assert msg["Message-ID"] == f"<{qid}@localhost>"
    assert rest.startswith(b"From: Root <root@localhost>\r\nSubject: by sendmail\r\n")
    assert rest.endswith(b"\r\n\r\nline one\r\n.\r\n..two\r\nend\r\n")
    pipe.inst.wait_for_log(rf"{qid}: removed")
    progs = log_ids(pipe.inst.log_text(), qid)
    assert {"cleanup", "qmgr", "lmtpd"} <= progs, progs


# ------------------------------------------------------------------ recipients

def fill(p, user, size):
    """Deliver one message of about size bytes to user (to fill a quota)."""
    p.send("filler@example.org", [f"{user}@localhost"],
           b"Subject: fill\r\n\r\n" + (b"f" * 76 + b"\r\n") * (size // 78))
    p.wait_delivered(user, 1)


def dsn_parts(stored):
    msg = email.message_from_bytes(stored, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = {part.get_content_type(): part for part in msg.iter_parts()}
    assert "message/delivery-status" in parts, list(parts)
    status = parts["message/delivery-status"]
    # per-recipient groups: header blocks after the per-message one
    groups = [dict((k.lower(), str(v)) for k, v in g.items())
              for g in status.get_payload()]
    return msg, parts, groups


def test_unknown_rejected_over_quota_bounced_dsn_to_sender(instance_factory):
    p = make_pipeline(instance_factory, users=("alice", "bob", "dave"),
                      config={"quota_storage_limit": "8000",
                              "quota_full_tempfail": "no"})
    fill(p, "dave", 7000)
    msg = (b"From: Alice <alice@localhost>\r\nTo: bob@localhost, dave@localhost\r\n"
           b"Subject: to three\r\nMessage-ID: <three@localhost>\r\n\r\n"
           + b"z" * 70 + b"\r\n" * 1 + (b"q" * 78 + b"\r\n") * 25)
    with p.smtp() as s:
        assert s.mail("alice@localhost")[0] == 250
        assert s.rcpt("bob@localhost")[0] == 250
        code, text = s.rcpt("nobody@localhost")
        assert code == 550 and text.startswith(b"5.1.1"), text
        assert s.rcpt("dave@localhost")[0] == 250
        code, text = s.data(msg)
        assert code == 250, text
    qid = re.search(rb"queued as (\S+)", text).group(1).decode()

    # bob has it exactly; dave still has only the filler
    _, rest = strip_received(only_message(p, "bob"))
    assert rest == msg
    p.inst.wait_for_log(rf"{qid}: to=<dave@localhost>.*status=bounced")
    assert len(p.ls("dave")) == 1

    # the DSN arrives in alice's INBOX, from the null sender, through the
    # same path (cleanup, qmgr, lmtp agent, lmtpd)
    m = p.inst.wait_for_log(rf"{qid}: sender non-delivery notification: (\S+)",
                            timeout=20)
    bounce_id = m.group(1)
    stored = only_message(p, "alice")
    dsn, parts, groups = dsn_parts(stored)
    assert "MAILER-DAEMON" in dsn["From"].upper() or "postmaster" in dsn["From"].lower()
    assert dsn["To"] and "alice@localhost" in dsn["To"]
    rcpt = [g for g in groups if "final-recipient" in g]
    assert len(rcpt) == 1, groups
    assert rcpt[0]["final-recipient"].lower().endswith("dave@localhost")
    assert rcpt[0]["action"] == "failed"
    assert rcpt[0]["status"].startswith("5.2.2"), rcpt[0]
    assert b"Message-ID: <three@localhost>" in stored
    p.wait_queue_empty()
    p.inst.wait_for_log(rf"{bounce_id}: removed")
    assert {"cleanup", "qmgr", "lmtpd"} <= log_ids(p.inst.log_text(), bounce_id)


def test_over_quota_deferred_then_delivered(instance_factory):
    import imaplib
    p = make_pipeline(instance_factory, users=("alice", "dave"),
                      config={"quota_storage_limit": "8000",
                              "quota_full_tempfail": "yes"})
    fill(p, "dave", 7000)
    msg = b"Subject: later\r\n\r\n" + (b"w" * 78 + b"\r\n") * 30
    p.send("sender@example.org", ["alice@localhost", "dave@localhost"], msg)
    rows = p.wait_delivered("alice", 1)
    assert len(rows) == 1
    received, _ = strip_received(p.cat("alice", rows[0][0]))
    qid = qid_of(received)
    p.inst.wait_for_log(rf"{qid}: to=<dave@localhost>.*dsn=4\.2\.2.*status=deferred")
    deadline = time.monotonic() + 20
    while qid not in p.queue_ids("deferred") and time.monotonic() < deadline:
        time.sleep(0.1)
    out = p.queue_list()
    assert qid in out and "dave@localhost" in out, out
    assert "alice@localhost" not in out, out        # delivered: not listed
    assert len(p.ls("dave")) == 1
    assert len(p.ls("alice")) == 1                  # and not again

    # dave makes room over IMAP; the next retry delivers
    imap = imaplib.IMAP4(HOST, p.inst.port("IMAP"), timeout=30)
    try:
        imap.login("dave", "pw")
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "\\Deleted")
        imap.expunge()
        imap.logout()
    except imaplib.IMAP4.error as e:  # pragma: no cover - depends on imapd
        pytest.fail(f"IMAP: {e}")
    p.inst.postern("queue", "flush")
    p.wait_queue_empty(timeout=30)
    rows = p.wait_delivered("dave", 1)
    assert len(rows) == 1
    _, rest = strip_received(p.cat("dave", rows[0][0]))
    assert rest == msg
    assert len(p.ls("alice")) == 1


# ------------------------------------------------------------------ logs

def test_one_queue_id_across_the_daemons(pipe):
    with pipe.smtp() as s:
        assert s.mail("sender@example.org")[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, text = s.data(b"Subject: trace\r\nMessage-ID: <trace@example.org>\r\n\r\nhi\r\n")
    assert code == 250, text
    qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    received, _ = strip_received(only_message(pipe, "alice"))
    assert qid_of(received) == qid
    pipe.inst.wait_for_log(rf"qmgr\[\d+\]: {qid}: removed")
    log = pipe.inst.log_text()
    progs = log_ids(log, qid)
    # the smtp/lmtp agent logs only trouble (qmgr logs each result, see
    # qmgr(8) LOGGING); the others each log the message under its ID
    assert {"smtpd", "cleanup", "qmgr", "lmtpd"} <= progs, (progs, log)
    for pat in (rf"smtpd\[\d+\]: {qid}: client=",
                rf"smtpd\[\d+\]: {qid}: from=<sender@example.org>.*\(queued\)",
                rf"cleanup\[\d+\]: {qid}: message-id=<trace@example.org>",
                rf"cleanup\[\d+\]: {qid}: from=<sender@example.org>.*\(queue active\)",
                rf"qmgr\[\d+\]: {qid}: from=<sender@example.org>",
                rf"lmtpd\[\d+\]: {qid}: to=<alice@localhost>, mailbox=INBOX, uid=1",
                rf"qmgr\[\d+\]: {qid}: to=<alice@localhost>, relay=127\.0\.0\.1.*"
                rf":{pipe.inst.port('LMTP')}, .*status=sent"):
        assert re.search(pat, log), (pat, log)
    # an agent line, when there is one, carries the ID too
    for line in log.splitlines():
        if re.search(r"/smtp\[\d+\]: ", line) and qid in line:
            assert f": {qid}: " in line, line
