# SPDX-License-Identifier: MIT
"""Sieve at delivery, end to end: scripts uploaded over ManageSieve
(sieved, a raw client and sieve-connect), mail delivered by LMTP (lmtpd on
LMTP_PORT) and by SMTP through the whole path (smtpd -> cleanup -> qmgr
-> lmtp -> lmtpd), results read back over IMAP (imapd): fileinto, flags
and keywords, discard, ereject, reject notices received by the sender,
redirects received by the other user exactly once, loops, sieve_before /
sieve_after, keep on errors, vacation logged, the duplicate test.
"""

import imaplib
import os
import re
import smtplib
import socket
import time

import pytest

from conftest import HOST
from test_sieved import Raw, put, sieve_connect, wait_port

import shutil

# The whole mail path (as tests/pipeline.py builds it): service lines the
# instance's master.conf may lack.
PATH_SERVICES = [
    ("inet", "SMTP", "inet n - n - - smtpd"),
    ("unix", "cleanup", "unix n - n - 0 cleanup"),
    ("fifo", "qmgr", "fifo n - n 300 1 qmgr"),
    ("unix", "lmtp", "unix - - n - - smtp"),
    ("inet", "LMTP", "inet n - n - - lmtpd"),
]


def _has_service(inst, kind, key):
    for raw in (inst.dir / "master.conf").read_text().splitlines():
        f = raw.split()
        if not f or raw.lstrip().startswith("#") or raw[0].isspace() or len(f) < 2:
            continue
        if kind == "inet":
            port = str(inst.port(key))
            if f[1] == "inet" and (f[0] == port or f[0].endswith(":" + port)):
                return True
        elif f[0] == key and f[1] == kind:
            return True
    return False


def mail_instance(factory, users=("alice", "bob", "carol"), **config):
    inst = factory()
    os.chmod(inst.dir, 0o755)
    for kind, key, rest in PATH_SERVICES:
        if not _has_service(inst, kind, key):
            head = f"{HOST}:{inst.port(key)}" if kind == "inet" else key
            inst.add_service(f"{head} {rest}")
    settings = {
        "smtpd_peername_lookup": "no",
        "mydestination": "localhost",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
        "service_throttle_time": "1s",
        "local_transport": f"lmtp:inet:{HOST}:{inst.port('LMTP')}",
    }
    settings.update(config)
    for k, v in settings.items():
        inst.set_config(k, v)
    for u in users:
        inst.postern("user", "add", u, "--password-stdin", input="pw\n")
    inst.start()
    for p in ("SMTP", "LMTP", "IMAP", "SIEVE"):
        wait_port(inst.port(p))
    deadline = time.monotonic() + 15
    while not (inst.dir / "spool" / "public" / "qmgr").exists():
        assert time.monotonic() < deadline, "qmgr never started"
        time.sleep(0.05)
    return inst


@pytest.fixture
def mi(instance_factory):
    return mail_instance(instance_factory)


def upload(inst, user, script, name="main", activate=True):
    r = Raw(inst)
    r.login(user)
    lines, final = put(r, name, script)
    assert final.startswith(b"OK"), final
    if activate:
        assert r.cmd(f'SETACTIVE "{name}"')[1].startswith(b"OK")
    r.cmd("LOGOUT")
    r.close()


def msg(subject="hello", frm="sender@example.org", to="alice@localhost",
        msgid=None, extra=""):
    msgid = msgid or f"<{time.monotonic_ns()}@example.org>"
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            f"{extra}\r\nbody of {subject}\r\n").encode()


def lmtp(inst, rcpts, data, sender="sender@example.org"):
    """Deliver by LMTP; returns {rcpt: (code, text)} (LMTP replies per
    recipient)."""
    with smtplib.LMTP(HOST, inst.port("LMTP"), timeout=30) as l:
        l.ehlo_or_helo_if_needed()
        l.mail(sender)
        for r in rcpts:
            code, _ = l.rcpt(r)
            assert code == 250
        l.putcmd("data")
        code, _ = l.getreply()
        assert code == 354
        q = data.replace(b"\r\n.", b"\r\n..")
        if not q.endswith(b"\r\n"):
            q += b"\r\n"
        l.send(q + b".\r\n")
        out = {}
        for r in rcpts:
            out[r] = l.getreply()
        return out


def smtp(inst, sender, rcpts, data):
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=30) as s:
        s.ehlo("client.example")
        return s.sendmail(sender, rcpts, data)


def imap(inst, user):
    m = imaplib.IMAP4(HOST, inst.port("IMAP"))
    m.login(user, "pw")
    return m


def mailbox(inst, user, box="INBOX"):
    """[(flags, message bytes)] of box (empty when it does not exist)."""
    m = imap(inst, user)
    try:
        typ, data = m.select(f'"{box}"', readonly=True)
        if typ != "OK":
            return None
        n = int(data[0])
        out = []
        if n:
            typ, data = m.fetch(f"1:{n}", "(FLAGS BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                    out.append((set(flags.decode().split()), item[1]))
        return out
    finally:
        m.logout()


def wait_mailbox(inst, user, count, box="INBOX", timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        got = mailbox(inst, user, box) or []
        if len(got) >= count:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{user}/{box}: {len(got)} of {count} messages")
        time.sleep(0.2)


# ------------------------------------------------------------------ LMTP
def test_fileinto_flags_keywords(mi):
    upload(mi, "alice", 'require ["fileinto", "imap4flags", "mailbox"];\r\n'
           'if header :contains "subject" "work" {\r\n'
           '  addflag ["\\\\Flagged", "$work"];\r\n'
           '  fileinto :create "Work";\r\n  stop;\r\n}\r\n'
           'if header :contains "subject" "read" { setflag "\\\\Seen"; }\r\n')
    r = lmtp(mi, ["alice@localhost"], msg("about work"))
    assert r["alice@localhost"][0] == 250
    r = lmtp(mi, ["alice@localhost"], msg("please read"))
    assert r["alice@localhost"][0] == 250
    work = mailbox(mi, "alice", "Work")
    assert len(work) == 1
    assert {"\\Flagged", "$work"} <= work[0][0]
    assert b"Subject: about work" in work[0][1]
    inbox = mailbox(mi, "alice")
    assert len(inbox) == 1 and "\\Seen" in inbox[0][0]
    assert b"Subject: please read" in inbox[0][1]
    mi.wait_for_log(r"to=<alice@localhost>, mailbox=Work, uid=1")


def test_discard_and_keep_and_copy(mi):
    upload(mi, "alice", 'require ["fileinto", "copy"];\r\n'
           'if header :contains "subject" "junk" { discard; stop; }\r\n'
           'if header :contains "subject" "both" { fileinto :copy "Archive"; }\r\n')
    lmtp(mi, ["alice@localhost"], msg("junk mail"))
    lmtp(mi, ["alice@localhost"], msg("keep both"))
    inbox = mailbox(mi, "alice")
    assert [m[1].count(b"Subject: keep both") for m in inbox] == [1]
    archive = mailbox(mi, "alice", "Archive")     # a default mailbox
    assert len(archive) == 1 and b"keep both" in archive[0][1]
    mi.wait_for_log(r"sieve: discard")


def test_foreverypart_mime_extracttext(mi):
    """RFC 5703 at delivery: the script walks the parts, reads a part's
    MIME header with :mime and files by the decoded text of one part."""
    upload(mi, "alice",
           'require ["foreverypart", "mime", "extracttext", "variables",\r\n'
           '         "fileinto", "mailbox"];\r\n'
           'foreverypart {\r\n'
           '  if header :mime :param "filename" "content-disposition"\r\n'
           '      "invoice.txt" {\r\n'
           '    extracttext :lower :first 7 "t";\r\n'
           '    fileinto :create "Bills/${t}";\r\n'
           '    break;\r\n'
           '  }\r\n'
           '}\r\n')
    body = ("MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
            "Content-Disposition: attachment; filename=\"invoice.txt\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            "QUNNRSBDb3JwOiB0b3RhbCA0Mgo=\r\n--b--\r\n")
    data = msg("invoice", extra=body.split("\r\n\r\n", 1)[0] + "\r\n")
    data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + \
        body.split("\r\n\r\n", 1)[1].encode()
    r = lmtp(mi, ["alice@localhost"], data)
    assert r["alice@localhost"][0] == 250
    got = wait_mailbox(mi, "alice", 1, "Bills/acme co")
    assert b"QUNNRSBDb3JwOiB0b3RhbCA0Mgo=" in got[0][1]
    assert not mailbox(mi, "alice")


def test_fileinto_missing_mailbox(mi):
    upload(mi, "alice", 'require ["fileinto"];\r\nfileinto "Nowhere";\r\n')
    lmtp(mi, ["alice@localhost"], msg("lost"))
    assert mailbox(mi, "alice", "Nowhere") is None
    assert len(mailbox(mi, "alice")) == 1
    mi.wait_for_log(r"mailbox Nowhere does not exist: INBOX instead")


def test_fileinto_autocreate(instance_factory):
    inst = mail_instance(instance_factory, lmtp_mailbox_autocreate="yes")
    upload(inst, "alice", 'require ["fileinto"];\r\nfileinto "Auto/Sub";\r\n')
    lmtp(inst, ["alice@localhost"], msg("made"))
    assert len(mailbox(inst, "alice", "Auto/Sub")) == 1
    assert mailbox(inst, "alice") == []


def test_errors_keep(instance_factory):
    inst = mail_instance(instance_factory, sieve_max_actions="2")
    # a runtime error (too many actions): the implicit keep, logged
    upload(inst, "alice", 'require ["fileinto", "mailbox"];\r\n'
           'fileinto :create "A"; fileinto :create "B"; fileinto :create "C";\r\n')
    lmtp(inst, ["alice@localhost"], msg("overflow"))
    assert len(mailbox(inst, "alice")) == 1
    assert mailbox(inst, "alice", "A") is None
    inst.wait_for_log(r"sieve: runtime error in main\S* \(implicit keep\): .*too many actions")
    # a script that no longer compiles (changed behind sieved's back)
    d = inst.dir / "store" / "bob" / "sieve"
    upload(inst, "bob", "keep;\r\n")
    (d / "main.sieve").write_text("if frob { keep; }\r\n")
    lmtp(inst, ["bob@localhost"], msg("still here"))
    assert len(mailbox(inst, "bob")) == 1
    inst.wait_for_log(r"does not compile \(implicit keep\)")


def test_too_many_redirects_keep(instance_factory):
    inst = mail_instance(instance_factory, sieve_max_redirects="1")
    upload(inst, "alice", 'redirect "bob@localhost";\r\n'
           'redirect "carol@localhost";\r\n')
    lmtp(inst, ["alice@localhost"], msg("two ways"))
    assert len(mailbox(inst, "alice")) == 1
    inst.wait_for_log(r"sieve: runtime error in main\S* \(implicit keep\)")
    time.sleep(2)
    assert mailbox(inst, "bob") == [] and mailbox(inst, "carol") == []


def test_ereject_per_recipient(mi):
    upload(mi, "alice", 'require ["ereject"];\r\n'
           'if header :contains "subject" "spam" { ereject "No spam, thanks"; }\r\n')
    r = lmtp(mi, ["alice@localhost", "bob@localhost"], msg("spam offer"))
    assert r["alice@localhost"][0] == 550
    assert b"5.7.1" in r["alice@localhost"][1]
    assert b"No spam, thanks" in r["alice@localhost"][1]
    assert r["bob@localhost"][0] == 250
    assert mailbox(mi, "alice") == []
    assert len(mailbox(mi, "bob")) == 1


def test_vacation_handed_to_vacationd(mi):
    """The action goes to vacationd (tests/test_vacation.py checks the
    replies themselves); the message is kept."""
    upload(mi, "alice", 'require ["vacation"];\r\n'
           'vacation :days 1 "I am away";\r\n')
    lmtp(mi, ["alice@localhost"], msg("are you there"))
    assert len(mailbox(mi, "alice")) == 1
    mi.wait_for_log(r"to=<alice@localhost>, [^:]*: vacationd: ")


def test_duplicate_test(mi):
    upload(mi, "alice", 'require ["duplicate"];\r\n'
           'if duplicate { discard; stop; }\r\n')
    m = msg("twice", msgid="<same-id@example.org>")
    lmtp(mi, ["alice@localhost"], m)
    lmtp(mi, ["alice@localhost"], m)
    assert len(mailbox(mi, "alice")) == 1


def test_before_and_after(instance_factory):
    inst = instance_factory()
    # inside the instance: the daemons (nobody, as root) must read them
    before = inst.dir / "before.sieve"
    after = inst.dir / "after.sieve"
    before.write_text('require ["fileinto", "mailbox"];\r\n'
                      'if header :contains "subject" "[SPAM]" '
                      '{ fileinto :create "Spam"; stop; }\r\n')
    after.write_text('require ["fileinto", "mailbox"];\r\n'
                     'if header :contains "subject" "late" '
                     '{ fileinto :create "Late"; }\r\n')
    inst = mail_instance(lambda: inst, sieve_before=str(before),
                         sieve_after=str(after))
    upload(inst, "alice", 'require ["fileinto", "mailbox"];\r\n'
           'if header :contains "subject" "mine" '
           '{ fileinto :create "Mine"; }\r\n')
    lmtp(inst, ["alice@localhost"], msg("[SPAM] mine"))     # before decides
    lmtp(inst, ["alice@localhost"], msg("mine"))            # user decides
    lmtp(inst, ["alice@localhost"], msg("late"))            # after decides
    lmtp(inst, ["bob@localhost"], msg("[SPAM] for bob"))    # no user script
    assert len(mailbox(inst, "alice", "Spam")) == 1
    assert len(mailbox(inst, "alice", "Mine")) == 1
    assert len(mailbox(inst, "alice", "Late")) == 1
    assert mailbox(inst, "alice") == []
    assert len(mailbox(inst, "bob", "Spam")) == 1


# ------------------------------------------------------------------ SMTP path
def test_smtp_fileinto_via_sieve_connect(mi, tmp_path):
    if shutil.which("sieve-connect") is None:
        pytest.skip("sieve-connect is not installed")
    f = tmp_path / "s.sieve"
    f.write_text('require ["fileinto", "imap4flags", "mailbox"];\r\n'
                 'if address :is "from" "boss@example.org" '
                 '{ addflag "\\\\Flagged"; fileinto :create "Boss"; }\r\n')
    p = sieve_connect(mi, "--localsieve", str(f), "--remotesieve", "s", "--upload")
    assert p.returncode == 0, p.stderr + p.stdout
    p = sieve_connect(mi, "--remotesieve", "s", "--activate")
    assert p.returncode == 0, p.stderr + p.stdout
    smtp(mi, "boss@example.org", ["alice@localhost"], msg("meeting", frm="boss@example.org"))
    got = wait_mailbox(mi, "alice", 1, "Boss")
    assert "\\Flagged" in got[0][0]


def test_smtp_reject_notice_reaches_sender(mi):
    upload(mi, "alice", 'require ["reject"];\r\n'
           'if header :contains "subject" "sell" { reject "Not interested."; }\r\n')
    smtp(mi, "bob@localhost", ["alice@localhost"],
         msg("we sell things", frm="bob@localhost"))
    got = wait_mailbox(mi, "bob", 1)
    assert len(got) == 1
    notice = got[0][1]
    assert b"Subject: Rejected: we sell things" in notice
    assert b"Auto-Submitted: auto-replied" in notice
    assert b"disposition-notification" in notice
    assert b"Not interested." in notice
    assert mailbox(mi, "alice") == []
    mi.wait_for_log(r"sieve: rejected, notice to <bob@localhost>")
    # a null sender gets no notice
    smtp(mi, "", ["alice@localhost"], msg("sell more"))
    mi.wait_for_log(r"reject of a message with a null sender: discarded")


def test_smtp_redirect_exactly_once(mi):
    upload(mi, "alice", 'redirect "bob@localhost";\r\n')
    upload(mi, "carol", 'require ["copy"];\r\nredirect :copy "bob@localhost";\r\n')
    smtp(mi, "sender@example.org", ["alice@localhost"], msg("forward me"))
    got = wait_mailbox(mi, "bob", 1)
    assert b"Subject: forward me" in got[0][1]
    assert b"Delivered-To: alice@localhost" in got[0][1]
    smtp(mi, "sender@example.org", ["carol@localhost"], msg("copy me"))
    got = wait_mailbox(mi, "bob", 2)
    time.sleep(3)       # anything extra would have arrived by now
    got = mailbox(mi, "bob")
    assert [m[1].count(b"Subject: forward me") for m in got].count(1) == 1
    assert [m[1].count(b"Subject: copy me") for m in got].count(1) == 1
    assert len(got) == 2
    assert mailbox(mi, "alice") == []
    assert len(mailbox(mi, "carol")) == 1
    # a retried LMTP delivery does not send the redirect again
    m = msg("retry", msgid="<retry-1@example.org>")
    lmtp(mi, ["alice@localhost"], m)
    lmtp(mi, ["alice@localhost"], m)
    got = wait_mailbox(mi, "bob", 3)
    time.sleep(3)
    got = mailbox(mi, "bob")
    assert [m[1].count(b"Subject: retry") for m in got].count(1) == 1
    mi.wait_for_log(r"redirect to <bob@localhost> already sent")


def test_smtp_redirect_loop(mi):
    upload(mi, "alice", 'redirect "bob@localhost";\r\n')
    upload(mi, "bob", 'redirect "alice@localhost";\r\n')
    smtp(mi, "sender@example.org", ["alice@localhost"], msg("round and round"))
    # alice -> bob -> alice: the loop is seen at alice, who keeps it
    got = wait_mailbox(mi, "alice", 1)
    assert b"round and round" in got[0][1]
    time.sleep(3)
    assert len(mailbox(mi, "alice")) == 1
    assert mailbox(mi, "bob") == []
    mi.wait_for_log(r"skipped: mail loop")
