# SPDX-License-Identifier: MIT
"""Sieve editheader (RFC 5293) and enotify/mailto (RFC 5435, RFC 5436) at
delivery, end to end: scripts uploaded over ManageSieve (sieved), mail
delivered by LMTP to lmtpd, what was stored read back over IMAP (imapd)
byte for byte; redirects and notifications travel the whole path
(lmtpd -> cleanup -> qmgr -> lmtp -> lmtpd) into the other user's INBOX.
"""

import email
import email.header
import re
import time

from test_sieve_delivery import (imap, lmtp, mail_instance, mailbox, upload,
                                 wait_mailbox)
from test_sieved import Raw

import pytest


@pytest.fixture
def mi(instance_factory):
    return mail_instance(instance_factory)


ORIG = (b"Received: from a.example by b.example; Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        b"Received: from c.example by a.example; Thu, 26 Nov 2026 09:59:00 +0000\r\n"
        b"From: Sender <sender@example.org>\r\n"
        b"To: alice@localhost\r\n"
        b"Subject: original subject\r\n"
        b"X-Tag: one\r\n"
        b"X-Tag: two\r\n"
        b"X-Tag: three\r\n"
        b"Message-ID: <edit-1@example.org>\r\n"
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        b"Auto-Submitted: no\r\n"
        b"\r\n")
BODY = b"first line\r\nsecond line\r\n"


def fetch(inst, user, box, items):
    """The raw FETCH responses of every message in box."""
    m = imap(inst, user)
    try:
        typ, data = m.select(f'"{box}"', readonly=True)
        assert typ == "OK", data
        n = int(data[0])
        if n == 0:
            return []
        typ, data = m.fetch(f"1:{n}", items)
        assert typ == "OK"
        return data
    finally:
        m.logout()


def header_of(inst, user, box="INBOX"):
    data = fetch(inst, user, box, "(RFC822.SIZE BODY.PEEK[HEADER])")
    out = []
    for item in data:
        if isinstance(item, tuple):
            size = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
            out.append((item[1], size))
    return out


def test_editheader_stored_byte_exact(mi):
    """Each stored copy carries the header as edited when its action ran
    (RFC 5293 section 7): fileinto :copy before the later edits, the
    implicit keep after all of them; later tests see the edits;
    protected fields (Received, Auto-Submitted) are never deleted (adding
    them is allowed, as in Pigeonhole)."""
    upload(mi, "alice", """require ["editheader", "fileinto", "copy", "mailbox",
    "imap4flags", "index", "variables"];
addheader "X-First" "added on top";
fileinto :copy :create "Early";
deleteheader :index 2 "X-Tag";
deleteheader :index 1 :last "X-Tag";
addheader :last "X-Last" "added at the end";
deleteheader "Received";
addheader "Received" "from nowhere";
deleteheader "auto-submitted";
addheader :last "Auto-Submitted" "auto-generated";
deleteheader "Subject";
addheader :last "Subject" "edited subject";
if header :is "subject" "edited subject" { addflag "\\\\Flagged"; }
if not exists "X-Tag" { addflag "$tagless"; }
if header :is "X-Tag" "one" { addflag "$one"; }
addheader "X-Long" "this value is long enough that it has to be folded somewhere before the seventy-eighth column ends";
addheader :last "X-Utf8" "caf\u00e9 cr\u00e8me";
""".replace("\n", "\r\n"))
    r = lmtp(mi, ["alice@localhost"], ORIG + BODY)
    assert r["alice@localhost"][0] == 250
    early = ORIG.replace(b"Received: from a.example",
                         b"X-First: added on top\r\nReceived: from a.example", 1)
    [(hdr, size)] = header_of(mi, "alice", "Early")
    assert hdr == early
    assert size == len(early) + len(BODY)
    want = (b"X-Long: this value is long enough that it has to be folded somewhere before\r\n"
            b" the seventy-eighth column ends\r\n"
            b"Received: from nowhere\r\n"
            b"X-First: added on top\r\n"
            b"Received: from a.example by b.example; Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            b"Received: from c.example by a.example; Thu, 26 Nov 2026 09:59:00 +0000\r\n"
            b"From: Sender <sender@example.org>\r\n"
            b"To: alice@localhost\r\n"
            b"X-Tag: one\r\n"
            b"Message-ID: <edit-1@example.org>\r\n"
            b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            b"Auto-Submitted: no\r\n"
            b"X-Last: added at the end\r\n"
            b"Auto-Submitted: auto-generated\r\n"
            b"Subject: edited subject\r\n"
            b"X-Utf8: =?utf-8?B?Y2Fmw6kgY3LDqG1l?=\r\n"
            b"\r\n")
    [(hdr, size)] = header_of(mi, "alice")
    assert hdr == want
    assert size == len(want) + len(BODY)
    # the whole message, the flags, and ENVELOPE built from the edited header
    data = fetch(mi, "alice", "INBOX", "(FLAGS ENVELOPE BODY.PEEK[])")
    assert data[0][1] == want + BODY
    meta = data[0][0]
    assert b"\\Flagged" in meta and b"$one" in meta and b"$tagless" not in meta
    assert b'"edited subject"' in meta and b"original subject" not in meta
    v = str(email.header.make_header(email.header.decode_header(
        email.message_from_bytes(want)["X-Utf8"])))
    assert v == "caf\u00e9 cr\u00e8me"
    mi.wait_for_log(r"to=<alice@localhost>, mailbox=INBOX, uid=1, size=%d"
                    % (len(want) + len(BODY)))


def test_editheader_error_keeps_original(mi):
    """A runtime error after edits: the implicit keep stores the original
    header (RFC 5293 section 7)."""
    upload(mi, "alice", 'require ["editheader", "variables"];\r\n'
           'addheader "X-Gone" "never stored";\r\n'
           'redirect "x@example.org"; redirect "y@example.org";\r\n'
           'redirect "z@example.org"; redirect "w@example.org";\r\n'
           'redirect "v@example.org";\r\n')
    lmtp(mi, ["alice@localhost"], ORIG + BODY)
    [(hdr, _)] = header_of(mi, "alice")
    assert hdr == ORIG
    mi.wait_for_log(r"sieve: runtime error in main\S* \(implicit keep\): "
                    r".*too many redirects")


def test_editheader_redirect_and_before(instance_factory):
    """A redirect sends the edited header; edits made by sieve_before are
    what the user's script sees and what is stored."""
    inst = instance_factory()
    before = inst.dir / "before.sieve"
    before.write_text('require ["editheader"];\r\n'
                      'addheader "X-Scanned" "by before";\r\n')
    inst = mail_instance(lambda: inst, sieve_before=str(before))
    upload(inst, "alice", 'require ["editheader", "copy", "imap4flags"];\r\n'
           'if header :is "X-Scanned" "by before" { addflag "$scanned"; }\r\n'
           'addheader "X-Forwarded-By" "alice";\r\n'
           'redirect :copy "bob@localhost";\r\n')
    lmtp(inst, ["alice@localhost"], ORIG + BODY)
    [(flags, kept)] = mailbox(inst, "alice")
    assert "$scanned" in flags
    assert kept.startswith(b"X-Forwarded-By: alice\r\nX-Scanned: by before\r\n"
                           b"Received: from a.example")
    got = wait_mailbox(inst, "bob", 1)
    fwd = got[0][1]
    head = fwd.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    assert (b"Delivered-To: alice@localhost\r\n"
            b"X-Forwarded-By: alice\r\nX-Scanned: by before\r\n"
            b"Received: from a.example") in head
    assert fwd.endswith(b"\r\n\r\n" + BODY)


# ------------------------------------------------------------------ enotify
def test_sieved_announces_notify(mi):
    r = Raw(mi)
    lines, final = r.greeting
    assert final.startswith(b"OK")
    caps = {l.split(b" ")[0].strip(b'"'): l for l in lines}
    assert caps[b"NOTIFY"] == b'"NOTIFY" "mailto"'
    assert b" enotify" in caps[b"SIEVE"] and b"editheader" in caps[b"SIEVE"]
    r.cmd("LOGOUT")
    r.close()


def test_notify_mailto_delivered(mi):
    upload(mi, "alice", """require ["enotify", "variables"];
if header :matches "subject" "*" { set "subj" "${1}"; }
if valid_notify_method "mailto:bob@localhost" {
  if notify_method_capability "mailto:bob@localhost" "online" "maybe" {
    notify :importance "1" :message "New: ${subj}"
      "mailto:bob@localhost?body=You%20have%20mail";
    notify "mailto:bob@localhost?body=You%20have%20mail";
  }
}
notify "mailto:carol@localhost";
""".replace("\n", "\r\n"))
    r = lmtp(mi, ["alice@localhost"],
             ORIG.replace(b"original subject", b"caf\xc3\xa9 news") + BODY)
    assert r["alice@localhost"][0] == 250
    assert len(mailbox(mi, "alice")) == 1          # the implicit keep
    got = wait_mailbox(mi, "bob", 1)
    n = email.message_from_bytes(got[0][1])
    assert n["Auto-Submitted"] == "auto-notified"
    assert n["X-Priority"] == "1 (Highest)"
    assert n["From"] == "alice@localhost"
    assert n["To"] == "<bob@localhost>"
    subj = str(email.header.make_header(email.header.decode_header(n["Subject"])))
    assert subj == "New: caf\u00e9 news"
    assert got[0][1].split(b"\r\n\r\n", 1)[1] == b"You have mail\r\n"
    got = wait_mailbox(mi, "carol", 1)
    c = email.message_from_bytes(got[0][1])
    assert c["Auto-Submitted"] == "auto-notified"
    assert c["X-Priority"] == "3 (Normal)"
    subj = str(email.header.make_header(email.header.decode_header(c["Subject"])))
    assert subj == "Notification: caf\u00e9 news"
    assert b"From: Sender <sender@example.org>" in got[0][1]
    time.sleep(2)
    assert len(mailbox(mi, "bob")) == 1            # the duplicate notify dropped
    mi.wait_for_log(r"sieve: notification to mailto:carol@localhost sent as")


def test_notify_never_for_automatic_mail(mi):
    upload(mi, "alice", 'require ["enotify"];\r\n'
           'notify "mailto:bob@localhost";\r\n')
    auto = ORIG.replace(b"Auto-Submitted: no", b"Auto-Submitted: auto-replied")
    lmtp(mi, ["alice@localhost"], auto + BODY)
    mi.wait_for_log(r"notify mailto:bob@localhost skipped: the message is "
                    r"Auto-Submitted")
    # a notification itself comes back to a script that notifies: no loop
    upload(mi, "bob", 'require ["enotify"];\r\n'
           'notify "mailto:alice@localhost";\r\n')
    lmtp(mi, ["alice@localhost"],
         ORIG.replace(b"<edit-1@", b"<edit-2@") + BODY)
    got = wait_mailbox(mi, "bob", 1)
    assert b"Auto-Submitted: auto-notified" in got[0][1]
    time.sleep(3)
    assert len(mailbox(mi, "alice")) == 2
    assert len(mailbox(mi, "bob")) == 1
    # a retried delivery does not notify twice
    lmtp(mi, ["alice@localhost"],
         ORIG.replace(b"<edit-1@", b"<edit-2@") + BODY)
    mi.wait_for_log(r"notify mailto:bob@localhost already sent")
    time.sleep(2)
    assert len(mailbox(mi, "bob")) == 1


def test_notify_limit(instance_factory):
    inst = mail_instance(instance_factory, sieve_max_notifications="1")
    upload(inst, "alice", 'require ["enotify", "fileinto"];\r\n'
           'fileinto "Trash";\r\n'
           'notify "mailto:bob@localhost";\r\n'
           'notify "mailto:carol@localhost";\r\n')
    lmtp(inst, ["alice@localhost"], ORIG + BODY)
    inst.wait_for_log(r"sieve: runtime error in main\S* \(implicit keep\): "
                      r".*too many notifications")
    assert len(mailbox(inst, "alice")) == 1
    time.sleep(3)
    assert mailbox(inst, "bob") == [] and mailbox(inst, "carol") == []
