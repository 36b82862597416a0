# SPDX-License-Identifier: MIT
"""imapd extensions of issue 5: MULTIAPPEND (RFC 3502) with UIDPLUS,
OLDNAME in the untagged LIST of CREATE/RENAME (RFC 9051), and
case-insensitive SEARCH of non-ASCII text (Unicode simple case folding
after RFC 2047 and MIME decoding). THREAD is in test_imapd_thread.py.

Exact response syntax is checked on raw sockets (test_imapd.Raw);
imaplib is used where it can say the command itself.
"""

import base64
import imaplib
import re

from test_imapd import (HOST, PASSWORD, USER, Raw, connect, imap,  # noqa: F401
                        msg, raw_login)


def lit(data, plus=False):
    """A literal as it goes on the wire: {n}/{n+} CRLF data."""
    if isinstance(data, str):
        data = data.encode()
    return b"{%d%s}\r\n" % (len(data), b"+" if plus else b"") + data


def send_sync(r, tag, parts):
    """Send a command made of byte pieces; wait for '+' after every
    synchronizing literal announcement. parts[i] ends with '{n}\\r\\n'
    before a literal. Returns (untagged, tagged)."""
    for i, p in enumerate(parts):
        r.send(p)
        if re.search(rb"\{\d+\}\r\n$", p):
            ln = r.line()
            if not ln.startswith(b"+ "):
                # the server refused the literal: the command is over
                return [], ln
    return r.until(tag)


def bcmd(r, tag, data):
    """Send 'tag data' (bytes, literals included): (untagged, tagged)."""
    r.send(tag.encode() + b" " + data + b"\r\n")
    return r.until(tag)


def uidvalidity(r, box="INBOX"):
    u, _ = r.cmd("uv", f"STATUS {box} (UIDVALIDITY)")
    return int(re.search(rb"UIDVALIDITY (\d+)", u[0]).group(1))


def count(r, box="INBOX"):
    u, _ = r.cmd("ct", f"STATUS {box} (MESSAGES UIDNEXT)")
    m = re.search(rb"MESSAGES (\d+) UIDNEXT (\d+)", u[0])
    return int(m.group(1)), int(m.group(2))


# ------------------------------------------------------------ MULTIAPPEND

def test_multiappend_advertised_and_atomic_success(imap):
    r = raw_login(imap)
    u, t = r.cmd("c", "CAPABILITY")
    caps = u[0].split()
    assert b"MULTIAPPEND" in caps and b"UIDPLUS" in caps, u
    assert any(c.startswith(b"APPENDLIMIT=") for c in caps)
    uv = uidvalidity(r)
    m1, m2, m3 = msg("multi one"), msg("multi two"), msg("multi three")
    # sync literal, then flags + date-time + sync literal, then LITERAL+
    parts = [b"a APPEND INBOX " + b"{%d}\r\n" % len(m1),
             m1 + b' (\\Seen $Work) "01-Feb-2020 10:11:12 +0100" '
             + b"{%d}\r\n" % len(m2),
             m2 + b" " + lit(m3, plus=True) + b"\r\n"]
    u, t = send_sync(r, "a", parts)
    assert t == b"a OK [APPENDUID %d 1:3] Append completed.\r\n" % uv, t
    assert count(r) == (3, 4)
    u, t = r.cmd("s", "SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in u
    u, t = r.cmd("f", "FETCH 1:3 (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    text = b"".join(u)
    assert b"* 2 FETCH (UID 2 FLAGS (\\Seen $Work) " \
           b'INTERNALDATE "01-Feb-2020 10:11:12 +0100"' in text, text
    for i, s in enumerate((b"multi one", b"multi two", b"multi three")):
        assert b"Subject: " + s + b"\r\n" in u[i], u[i]
    # a single APPEND still answers with one UID
    _, t = r.cmd("b", "APPEND INBOX " + lit(msg("single")).decode())
    assert t == b"b OK [APPENDUID %d 4] Append completed.\r\n" % uv, t
    r.close()


def test_multiappend_with_imaplib_and_other_mailbox(imap):
    m = connect(imap)
    m.create("Archive")
    one, two = msg("imaplib one"), msg("imaplib two")
    # imaplib has no MULTIAPPEND verb: the whole command as literals
    m.literal = None
    typ, data = m._simple_command(
        "APPEND", "Archive", "(\\Flagged)", '{%d+}\r\n' % len(one)
        + one.decode() + " {%d+}\r\n" % len(two) + two.decode())
    assert typ == "OK", data
    assert re.fullmatch(rb"\[APPENDUID \d+ 1:2\] Append completed\.",
                        data[0]), data
    m.select("Archive")
    typ, data = m.fetch("1:2", "(FLAGS)")
    assert data == [b"1 (FLAGS (\\Flagged))", b"2 (FLAGS ())"], data
    m.logout()


def test_multiappend_all_or_none(imap):
    """A failure in any message leaves the mailbox as it was."""
    r = raw_login(imap)
    r.cmd("p", "APPEND INBOX " + lit(msg("before")).decode())
    assert count(r) == (1, 2)
    good = msg("good")
    # 1. a NUL in the second message (not literal8): NO, nothing stored
    bad = b"Subject: nul\r\n\r\na\x00b\r\n"
    _, t = bcmd(r, "a", b"APPEND INBOX " + lit(good, True) + b" "
                + lit(bad, True))
    assert t.startswith(b"a NO "), t
    assert count(r) == (1, 2)
    # 2. a syntax error after the first message: BAD, nothing stored
    _, t = r.cmd("b", "APPEND INBOX " + lit(good, True).decode() + " (\\Seen")
    assert t.startswith(b"b BAD "), t
    assert count(r) == (1, 2)
    # 3. the second literal is over APPENDLIMIT: refused from its size
    #    before the client sends it; the first one is not stored either
    u, t = send_sync(r, "c", [b"c APPEND INBOX {%d}\r\n" % len(good),
                              good + b" {60000000}\r\n"])
    assert t == b"c NO [TOOBIG] Literal too big\r\n", t
    assert count(r) == (1, 2)
    # 4. a missing mailbox
    _, t = r.cmd("d", "APPEND Nowhere " + lit(good, True).decode() + " "
                 + lit(good, True).decode())
    assert t.startswith(b"d NO [TRYCREATE]"), t
    # 5. too many keywords only in total (the store allows 64): the store
    #    fails on the second message, after the first was written
    kw1 = " ".join(f"k{i}" for i in range(40))
    kw2 = " ".join(f"j{i}" for i in range(40))
    _, t = r.cmd("e", f"APPEND INBOX ({kw1}) " + lit(good, True).decode()
                 + f" ({kw2}) " + lit(good, True).decode())
    assert t.startswith(b"e NO [LIMIT]"), t
    assert count(r) == (1, 2)
    # the UIDs were not used up: the next message gets UID 2
    _, t = r.cmd("f", "APPEND INBOX " + lit(good, True).decode() + " "
                 + lit(msg("after"), True).decode())
    assert re.match(rb"f OK \[APPENDUID \d+ 2:3\] Append completed\.\r\n", t), t
    r.close()


def test_multiappend_quota_counts_all_messages(imap):
    imap.postern("user", "quota", USER, "20000")
    r = raw_login(imap)
    big = msg("big", body="x" * 12000)
    _, t = r.cmd("a", "APPEND INBOX " + lit(big, True).decode() + " "
                 + lit(big, True).decode())
    assert t.startswith(b"a NO [OVERQUOTA]"), t
    assert count(r) == (0, 1)
    _, t = r.cmd("b", "APPEND INBOX " + lit(big, True).decode())
    assert re.match(rb"b OK \[APPENDUID \d+ 1\] ", t), t
    r.close()


def test_multiappend_seen_by_idle_session_as_one_exists(imap):
    watcher = raw_login(imap)
    watcher.cmd("s", "SELECT INBOX")
    r = raw_login(imap)
    _, t = r.cmd("a", "APPEND INBOX " + " ".join(
        lit(msg(f"batch {i}"), True).decode() for i in range(5)))
    assert re.match(rb"a OK \[APPENDUID \d+ 1:5\] ", t), t
    u, t = watcher.cmd("n", "NOOP")
    assert u == [b"* 5 EXISTS\r\n"], u
    watcher.close()
    r.close()


def test_copy_keeps_distinct_new_keywords(imap):
    """Keywords new to the destination, different per message, in one
    COPY (and one MULTIAPPEND) keep their names (one commit adds them
    all)."""
    r = raw_login(imap)
    r.cmd("c", "CREATE Dest")
    _, t = bcmd(r, "a", b"APPEND INBOX (alpha) " + lit(msg("k1"), True)
                + b" (beta gamma) " + lit(msg("k2"), True))
    assert t.startswith(b"a OK"), t
    r.cmd("s", "SELECT INBOX")
    _, t = r.cmd("cp", "COPY 1:2 Dest")
    assert t.startswith(b"cp OK [COPYUID "), t
    r.cmd("s2", "SELECT Dest")
    u, _ = r.cmd("f", "FETCH 1:2 FLAGS")
    assert u == [b"* 1 FETCH (FLAGS (alpha))\r\n",
                 b"* 2 FETCH (FLAGS (beta gamma))\r\n"], u
    r.close()


# ------------------------------------------------------------ OLDNAME

def test_rename_and_create_oldname(imap):
    r = raw_login(imap)
    _, t = r.cmd("e", "ENABLE IMAP4rev2")
    r.cmd("c", "CREATE Projects")
    r.cmd("c2", "CREATE Projects/2024")
    u, t = r.cmd("r", "RENAME Projects Work")
    assert u == [b'* LIST () "/" "Work" ("OLDNAME" ("Projects"))\r\n'], u
    assert t == b"r OK Rename completed.\r\n"
    u, _ = r.cmd("l", 'LIST "" "*"')
    names = b"".join(u)
    assert b'"Work/2024"' in names and b"Projects" not in names
    # a name the server normalizes: the supplied form is OLDNAME
    u, t = r.cmd("c3", 'CREATE "inbox/Sub/"')
    assert u == [b'* LIST () "/" "INBOX/Sub" ("OLDNAME" ("inbox/Sub/"))\r\n'], u
    assert t.startswith(b"c3 OK")
    u, t = r.cmd("c4", "CREATE Plain")
    assert u == [] and t.startswith(b"c4 OK"), u
    u, t = r.cmd("r2", 'RENAME "inbox/Sub" "Other"')
    assert u == [b'* LIST () "/" "Other" ("OLDNAME" ("inbox/Sub"))\r\n'], u
    # a failed RENAME sends no LIST
    u, t = r.cmd("r3", "RENAME Nosuch Other2")
    assert u == [] and t.startswith(b"r3 NO [NONEXISTENT]"), (u, t)
    r.close()


def test_rename_rev1_sends_no_list(imap):
    r = raw_login(imap)
    r.cmd("c", "CREATE Old")
    u, t = r.cmd("r", "RENAME Old New")
    assert u == [] and t == b"r OK Rename completed.\r\n", u
    r.close()
    # imaplib (IMAP4rev1) is undisturbed
    m = connect(imap)
    assert m.rename("New", "Newer")[0] == "OK"
    assert any(b'"Newer"' in x for x in m.list()[1])
    m.logout()


# ------------------------------------------------------------ SEARCH

def b64(s):
    return base64.b64encode(s.encode()).decode()


def mime_msg(subject_hdr, body, cte="8bit", charset="utf-8", from_hdr=None):
    fr = from_hdr or "Sender <sender@example.org>"
    return (f"From: {fr}\r\nTo: alice@example.com\r\nSubject: {subject_hdr}\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body


def search(r, tag, key, value):
    """SEARCH CHARSET UTF-8 <key> <literal value>; the matching seqs."""
    u, t = bcmd(r, tag, b"SEARCH CHARSET UTF-8 %s %s" % (key.encode(),
                                                          lit(value, True)))
    assert t.startswith(tag.encode() + b" OK"), t
    hits = [x for x in u if x.startswith(b"* SEARCH")]
    assert len(hits) == 1, u
    return [int(n) for n in hits[0].split()[2:]]


def test_search_non_ascii_case_insensitive(imap):
    r = raw_login(imap)
    msgs = [
        # 1: RFC 2047 Q subject (äpfel), quoted-printable Latin-1 body
        mime_msg("=?UTF-8?Q?Rote_=C3=A4pfel?=",
                 b"Wir essen gro=DFe =C4PFEL und Birnen.\r\n",
                 cte="quoted-printable", charset="iso-8859-1"),
        # 2: RFC 2047 B subject in Greek capitals, base64 UTF-8 body
        mime_msg("=?UTF-8?B?" + b64("ΣΟΦΊΑ ΚΑΙ ΓΝΏΣΗ") + "?=",
                 (b64("Η σοφία είναι δύναμη. ПРИВЕТ") + "\r\n").encode(),
                 cte="base64"),
        # 3: raw UTF-8 Cyrillic, sender name encoded
        mime_msg("Привет мир", "Большой ПРИВЕТ из Москвы\r\n".encode(),
                 from_hdr="=?UTF-8?B?" + b64("Иван Петров") + "?= <ivan@example.ru>"),
        # 4: nothing of the above, ASCII
        mime_msg("Plain apples", b"APFEL without umlaut\r\n"),
    ]
    for i, m in enumerate(msgs):
        _, t = bcmd(r, f"a{i}", b"APPEND INBOX " + lit(m, True))
        assert t.startswith(b"a%d OK" % i), t
    r.cmd("s", "SELECT INBOX")
    assert search(r, "k1", "SUBJECT", "ÄPFEL") == [1]
    assert search(r, "k2", "SUBJECT", "äpfel") == [1]
    assert search(r, "k3", "BODY", "äpfel") == [1]      # QP Latin-1 "ÄPFEL"
    assert search(r, "k4", "SUBJECT", "σοφία") == [2]   # ΣΟΦΊΑ with tonos
    assert search(r, "k5", "BODY", "ΣΟΦΊΑ") == [2]      # base64 body
    assert search(r, "k6", "TEXT", "привет") == [2, 3]  # Cyrillic in 2 and 3
    assert search(r, "k7", "SUBJECT", "ПРИВЕТ МИР") == [3]
    assert search(r, "k8", "FROM", "ИВАН") == [3]
    assert search(r, "k9", "BODY", "москвы") == [3]
    assert search(r, "ka", "BODY", "apfel") == [4]      # no umlaut folding
    assert search(r, "kb", "TEXT", "GROßE") == [1]      # ß stays ß
    assert search(r, "kc", "SUBJECT", "ΓΝΏΣΗ") == [2]
    assert search(r, "kd", "HEADER SUBJECT", "rote ÄPFEL") == [1]
    # ESEARCH form and UID SEARCH take the same path
    u, t = bcmd(r, "ke", b"UID SEARCH RETURN (COUNT) CHARSET UTF-8 OR SUBJECT "
                + lit("ÄPFEL", True) + b" FROM ivan")
    assert u == [b'* ESEARCH (TAG "ke") UID COUNT 2\r\n'], u
    r.close()


def test_search_non_ascii_with_imaplib(imap):
    m = connect(imap)
    m.append("INBOX", None, None, mime_msg(
        "=?UTF-8?Q?=C3=9Cbung_macht_den_Meister?=", "Über alles\r\n".encode()))
    m.append("INBOX", None, None, mime_msg("other", b"nothing\r\n"))
    m.select("INBOX")
    m.literal = "ÜBUNG".encode()
    typ, data = m.search("UTF-8", "SUBJECT")
    assert typ == "OK" and data == [b"1"], data
    m.literal = "über".encode()
    typ, data = m.search("UTF-8", "BODY")
    assert typ == "OK" and data == [b"1"], data
    m.logout()
