# SPDX-License-Identifier: MIT
"""IMAP NOTIFY (RFC 5465) in imapd's mail role: the NOTIFY command's
syntax and errors (BADEVENT, NOTIFICATIONOVERFLOW), untagged STATUS for
other mailboxes, LIST for MailboxName and SubscriptionChange, the
selected mailbox's events with the MessageNew fetch-att list, SELECTED
against SELECTED-DELAYED, delivery both in IDLE and between commands
(no command sent: read straight off the socket), and the bound on
tracked mailboxes.

Changes come from a second IMAP connection (imaplib) or from an LMTP
delivery through the instance's lmtpd.
"""

import re
import select
import smtplib
import socket
import time

import pytest

from test_imapd import HOST, PASSWORD, USER, connect, imap, msg  # noqa: F401


class Conn:
    """A raw IMAP connection that can wait for unasked lines with a
    deadline (its own buffer: no file object to break on a timeout)."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=15)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(self.buf)
        ready, _, _ = select.select([self.sock], [], [], left)
        if not ready:
            raise TimeoutError(self.buf)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(self.buf)
        self.buf += data

    def line(self, timeout=15.0):
        """One response line, with any literals it announces."""
        deadline = time.monotonic() + timeout
        end = 0
        while True:
            i = self.buf.find(b"\r\n", end)
            if i < 0:
                self._fill(deadline)
                continue
            m = re.search(rb"\{(\d+)\}$", self.buf[:i])
            if m is None:
                ln, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return ln
            need = i + 2 + int(m.group(1))
            while len(self.buf) < need:
                self._fill(deadline)
            end = need

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                return lines, ln
            lines.append(ln)


def raw_login(inst):
    r = Conn(inst.port("IMAP"))
    _, t = r.cmd("L", f"LOGIN {USER} {PASSWORD}")
    assert t.startswith(b"L OK"), t
    return r


def unsolicited(r, want, timeout=5.0):
    """Lines the server sends on its own until one matches want (a regex
    on bytes); fails after timeout. Returns all lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    pattern = re.compile(want)
    while True:
        try:
            ln = r.line(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"no {want!r} in {lines!r}")
        lines.append(ln)
        if pattern.search(ln):
            return lines


def quiet(r, secs=0.7):
    """Nothing arrives unasked within secs."""
    try:
        ln = r.line(secs)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {ln!r}")


def lmtp_deliver(inst, subject):
    conf = (inst.dir / "master.conf").read_text()
    assert f":{inst.port('LMTP')} " in conf, "instance has no LMTP listener"
    with smtplib.LMTP(HOST, inst.port("LMTP")) as l:
        l.sendmail("x@example.org", [f"{USER}@localhost"], msg(subject))


# ------------------------------------------------------------------ syntax

def test_capability_and_syntax_errors(imap):
    r = raw_login(imap)
    u, t = r.cmd("c", "CAPABILITY")
    assert b" NOTIFY " in u[0]
    assert r.cmd("n", "NOTIFY NONE")[1] == b"n OK NOTIFY completed.\r\n"
    for bad in ("NOTIFY", "NOTIFY BOGUS", "NOTIFY SET",
                "NOTIFY SET (personal)",
                "NOTIFY SET (nowhere (MessageNew MessageExpunge))",
                "NOTIFY SET (personal (MessageNew))",
                "NOTIFY SET (personal (FlagChange))",
                "NOTIFY SET (personal (MessageNew MessageExpunge)",
                "NOTIFY SET (selected NONE) (selected-delayed NONE)",
                "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
                "NOTIFY SET (selected (MessageNew (BOGUS) MessageExpunge))",
                "NOTIFY SET (mailboxes (MessageNew MessageExpunge))",
                "NOTIFY SET STATUS",
                "NOTIFY NONE extra"):
        _, t = r.cmd("b", bad)
        assert t.startswith(b"b BAD "), (bad, t)
    for ev in ("AnnotationChange", "MailboxMetadataChange", "Whatever"):
        _, t = r.cmd("e", f"NOTIFY SET (personal (MessageNew MessageExpunge "
                          f"{ev}))")
        assert t == (b"e NO [BADEVENT (MessageNew MessageExpunge FlagChange "
                     b"MailboxName SubscriptionChange)] Unsupported NOTIFY "
                     b"event\r\n"), t
    # a refused NOTIFY leaves none in force: nothing comes unasked
    m = connect(imap)
    m.create("Work")
    m.append("Work", None, None, msg("ignored"))
    quiet(r)
    u, t = r.cmd("ok", "NOTIFY SET (selected (MessageNew (UID FLAGS "
                       "BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge "
                       "FlagChange)) (subtree (INBOX \"Work\") (MessageNew "
                       "MessageExpunge)) (subscribed NONE)")
    assert t == b"ok OK NOTIFY completed.\r\n" and u == []


# ------------------------------------------------------------------ STATUS

def test_set_status_then_status_between_commands(imap):
    m = connect(imap)
    m.create("Work")
    m.append("Work", None, None, msg("one"))
    r = raw_login(imap)
    r.cmd("s", "SELECT INBOX")
    u, t = r.cmd("n", "NOTIFY SET STATUS (personal (MessageNew "
                      "MessageExpunge FlagChange))")
    assert t == b"n OK NOTIFY completed.\r\n"
    st = {re.match(rb'\* STATUS "([^"]+)" ', x).group(1): x for x in u}
    # every mailbox but the selected one
    assert b"INBOX" not in st and b"Drafts" in st and b"Trash" in st
    assert re.match(rb'\* STATUS "Work" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY '
                    rb"\d+ UNSEEN 1\)\r\n$", st[b"Work"]), st[b"Work"]
    # no command sent: the STATUS arrives while imapd waits for one
    t0 = time.monotonic()
    m.append("Work", None, None, msg("two"))
    lines = unsolicited(r, rb'^\* STATUS "Work" ')
    assert time.monotonic() - t0 < 2.0
    assert re.match(rb'\* STATUS "Work" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY '
                    rb"\d+ UNSEEN 2\)\r\n$", lines[-1]), lines
    # FlagChange: UNSEEN moves
    m.select("Work")
    m.store("1", "+FLAGS", "\\Seen")
    lines = unsolicited(r, rb'^\* STATUS "Work" ')
    assert b"MESSAGES 2 " in lines[-1] and b"UNSEEN 1)" in lines[-1], lines
    # MessageExpunge
    m.store("2", "+FLAGS", "\\Deleted")
    m.expunge()
    lines = unsolicited(r, rb'^\* STATUS "Work" \(MESSAGES 1 ')
    # the selected mailbox gets no STATUS, and commands still work
    m.append("INBOX", None, None, msg("to inbox"))
    u, t = r.cmd("x", "NOOP")
    assert t == b"x OK NOOP completed.\r\n"
    assert b"* 1 EXISTS\r\n" in u and not any(b'STATUS "INBOX"' in x for x in u)
    # CONDSTORE adds HIGHESTMODSEQ
    r.cmd("e", "ENABLE CONDSTORE")
    m.store("1", "+FLAGS", "\\Flagged")
    lines = unsolicited(r, rb'^\* STATUS "Work" ')
    assert re.search(rb"HIGHESTMODSEQ \d+\)\r\n$", lines[-1]), lines
    # NOTIFY NONE: silence again
    assert r.cmd("z", "NOTIFY NONE")[1] == b"z OK NOTIFY completed.\r\n"
    m.append("Work", None, None, msg("three"))
    quiet(r)


def test_filters_mailboxes_subtree_inboxes(imap):
    m = connect(imap)
    for box in ("Work", "Other", "Proj", "Proj/a", "Projector"):
        m.create(box)
    r = raw_login(imap)
    _, t = r.cmd("n", "NOTIFY SET (mailboxes \"Work\" (MessageNew "
                      "MessageExpunge)) (subtree Proj (MessageNew "
                      "MessageExpunge))")
    assert t == b"n OK NOTIFY completed.\r\n"
    m.append("Other", None, None, msg("not watched"))
    m.append("Projector", None, None, msg("not below Proj"))
    quiet(r)
    m.append("Proj/a", None, None, msg("below"))
    lines = unsolicited(r, rb'^\* STATUS "Proj/a" \(MESSAGES 1 ')
    assert len(lines) == 1, lines
    # a mailbox made inside the subtree is tracked from its creation
    m.create("Proj/b")
    m.append("Proj/b", None, None, msg("at once"))
    unsolicited(r, rb'^\* STATUS "Proj/b" \(MESSAGES 1 ')
    m.append("Work", None, None, msg("named"))
    unsolicited(r, rb'^\* STATUS "Work" \(MESSAGES 1 ')
    # flags are not asked for here
    m.select("Work")
    m.store("1", "+FLAGS", "\\Seen")
    quiet(r)
    # INBOXES: every personal mailbox, as Dovecot (Sieve files anywhere)
    _, t = r.cmd("i", "NOTIFY SET (inboxes (MessageNew MessageExpunge))")
    assert t == b"i OK NOTIFY completed.\r\n"
    m.append("Other", None, None, msg("other"))
    unsolicited(r, rb'^\* STATUS "Other" \(MESSAGES 2 ')


# ------------------------------------------------------------------ selected

def test_selected_events_in_idle_with_fetch_atts_and_lmtp(imap):
    m = connect(imap)
    m.create("Work")
    r = raw_login(imap)
    r.cmd("s", "SELECT INBOX")
    _, t = r.cmd("n", "NOTIFY SET (selected (MessageNew (UID "
                      "BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge "
                      "FlagChange)) (personal (MessageNew MessageExpunge))")
    assert t == b"n OK NOTIFY completed.\r\n"
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling\r\n"
    lmtp_deliver(imap, "hello notify")
    lines = unsolicited(r, rb"^\* 1 FETCH ")
    assert lines[0] == b"* 1 EXISTS\r\n", lines
    assert re.match(rb"\* 1 FETCH \(UID 1 BODY\[HEADER\.FIELDS \(Subject\)\] "
                    rb"\{\d+\}\r\nSubject: hello notify\r\n\r\n\)\r\n$",
                    lines[-1]), lines
    # another mailbox, during the same IDLE
    m.append("Work", None, None, msg("work"))
    unsolicited(r, rb'^\* STATUS "Work" \(MESSAGES 1 ')
    # flag change of the selected mailbox
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Flagged")
    unsolicited(r, rb"^\* 1 FETCH \(FLAGS \(\\Flagged\)\)")
    r.send("DONE\r\n")
    _, t = r.until("i")
    assert t == b"i OK Idle completed.\r\n"
    # the notification peeked: \Seen was not set
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    # between commands too: EXISTS + FETCH with no command sent
    m.append("INBOX", None, None, msg("second"))
    lines = unsolicited(r, rb"^\* 2 FETCH ")
    assert b"* 2 EXISTS\r\n" in lines and b"Subject: second" in lines[-1]


def test_selected_expunges_now_delayed_later(imap):
    m = connect(imap)
    for i in range(3):
        m.append("INBOX", None, None, msg(f"m{i}"))
    r = raw_login(imap)
    r.cmd("s", "SELECT INBOX")
    _, t = r.cmd("n", "NOTIFY SET (selected (MessageNew MessageExpunge))")
    assert t == b"n OK NOTIFY completed.\r\n"
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    lines = unsolicited(r, rb"^\* 1 EXPUNGE\r\n")
    # no FlagChange: the \Deleted flag is not announced
    assert lines == [b"* 1 EXPUNGE\r\n"], lines
    # SELECTED-DELAYED: new mail at once, the expunge only with a command
    _, t = r.cmd("d", "NOTIFY SET (selected-delayed (MessageNew "
                      "MessageExpunge))")
    assert t == b"d OK NOTIFY completed.\r\n"
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    m.append("INBOX", None, None, msg("new"))
    lines = unsolicited(r, rb"^\* \d+ EXISTS\r\n")
    assert not any(b"EXPUNGE" in x for x in lines), lines
    quiet(r)
    u, t = r.cmd("x", "NOOP")
    assert b"* 1 EXPUNGE\r\n" in u, u
    # a SELECTED group without FlagChange: no flag FETCH, not even
    # after a command (as Dovecot)
    m.store("1", "+FLAGS", "\\Flagged")
    quiet(r)
    u, t = r.cmd("f", "NOOP")
    assert t == b"f OK NOOP completed.\r\n" and u == [], u
    # without a SELECTED group nothing about the selected mailbox comes
    # unasked (RFC 3501 updates after commands only), as in Dovecot
    _, t = r.cmd("p", "NOTIFY SET (personal (MessageNew MessageExpunge))")
    m.append("INBOX", None, None, msg("quiet"))
    quiet(r)
    u, t = r.cmd("y", "NOOP")
    assert any(x.endswith(b" EXISTS\r\n") for x in u), u


# ------------------------------------------------------------------ names

def test_mailbox_name_and_subscription_change(imap):
    m = connect(imap)
    r = raw_login(imap)
    _, t = r.cmd("n", "NOTIFY SET (personal (MailboxName "
                      "SubscriptionChange))")
    assert t == b"n OK NOTIFY completed.\r\n"
    m.create("Fresh")
    unsolicited(r, rb'^\* LIST \(\) "/" "Fresh"\r\n$')
    m.rename("Fresh", "Renamed")
    unsolicited(r, rb'^\* LIST \(\) "/" "Renamed" \("OLDNAME" \("Fresh"\)\)\r\n$')
    m.subscribe("Renamed")
    unsolicited(r, rb'^\* LIST \(\\Subscribed\) "/" "Renamed"\r\n$')
    m.unsubscribe("Renamed")
    unsolicited(r, rb'^\* LIST \(\) "/" "Renamed"\r\n$')
    m.delete("Renamed")
    unsolicited(r, rb'^\* LIST \(\\NonExistent\) "/" "Renamed"\r\n$')
    # MailboxName only for the names a group covers
    _, t = r.cmd("s", "NOTIFY SET (subtree Top (MailboxName))")
    m.create("Elsewhere")
    quiet(r)
    m.create("Top/Child")
    lines = unsolicited(r, rb'^\* LIST \(\) "/" "Top/Child"\r\n$')
    assert not any(b"Elsewhere" in x for x in lines)


# ------------------------------------------------------------------ bounds

@pytest.fixture
def imap_small(imap):
    # INBOX Drafts Sent Trash Junk Archive exist: room for two more
    imap.set_config("imap_notify_mailbox_limit", "8")
    imap.reload()
    time.sleep(0.5)
    return imap


def test_notificationoverflow(imap_small):
    imap = imap_small
    m = connect(imap)
    r = raw_login(imap)
    names = " ".join(f"n{i}" for i in range(9))
    _, t = r.cmd("a", f"NOTIFY SET (mailboxes ({names}) (MessageNew "
                      "MessageExpunge))")
    assert t.startswith(b"a NO [NOTIFICATIONOVERFLOW] "), t
    _, t = r.cmd("b", "NOTIFY SET (personal (MessageNew MessageExpunge "
                      "MailboxName))")
    assert t == b"b OK NOTIFY completed.\r\n"
    m.create("One")
    unsolicited(r, rb'^\* LIST \(\) "/" "One"\r\n$')
    m.create("Two")
    m.create("Three")
    lines = unsolicited(r, rb"^\* OK \[NOTIFICATIONOVERFLOW\]")
    # then as after NOTIFY NONE
    m.append("One", None, None, msg("after overflow"))
    quiet(r)
    _, t = r.cmd("c", "NOTIFY SET (personal (MessageNew MessageExpunge))")
    assert t.startswith(b"c NO [NOTIFICATIONOVERFLOW] "), t
    # IDLE without NOTIFY still works
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling\r\n"
    m.append("INBOX", None, None, msg("idle"))
    assert r.line() == b"* 1 EXISTS\r\n"
    r.send("DONE\r\n")
    assert r.until("i")[1] == b"i OK Idle completed.\r\n"
    assert "NOTIFY: more mailboxes than imap_notify_mailbox_limit" in \
        imap.log_text()
