# SPDX-License-Identifier: MIT
"""THREAD=REFERENCES and THREAD=ORDEREDSUBJECT (RFC 5256) on crafted
mailboxes. Each expected answer is worked out by hand from the RFC's
steps; the comments say which step decides what."""

import pytest

from test_imapd import connect, imap, raw_login  # noqa: F401


def mk(subject, day, msgid, refs=None, irt=None):
    h = (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
         f"Date: Mon, {day:02d} Jan 2024 10:00:00 +0000\r\n"
         f"Message-ID: <{msgid}@example.org>\r\n")
    if refs:
        h += "References: " + " ".join(f"<{r}@example.org>" for r in refs) + "\r\n"
    if irt:
        h += f"In-Reply-To: <{irt}@example.org>\r\n"
    return (h + "\r\nbody\r\n").encode()


def fill(r, box, msgs):
    r.cmd("c", f"CREATE {box}")
    for i, m in enumerate(msgs):
        r.send(b"a%d APPEND %s {%d+}\r\n" % (i, box.encode(), len(m)) + m + b"\r\n")
        _, t = r.until(f"a{i}")
        assert t.startswith(b"a%d OK" % i), t
    _, t = r.cmd("s", f"SELECT {box}")
    assert t.startswith(b"s OK")


def thread(r, algo, criteria="ALL", uid=False):
    u, t = r.cmd("t", f"{'UID ' if uid else ''}THREAD {algo} UTF-8 {criteria}")
    assert t == b"t OK Thread completed.\r\n", t
    assert len(u) == 1 and u[0].startswith(b"* THREAD ") and u[0].endswith(b"\r\n"), u
    return u[0][len(b"* THREAD "):-2].decode()


def test_references_subject_merging(imap):
    r = raw_login(imap)
    fill(r, "T1", [
        mk("Topic", 1, "t1"),
        # parent missing: step 3 promotes it to the root, step 5 puts
        # the reply under the original of the same base subject
        mk("Re: Topic", 2, "t2", irt="gone"),
        # two originals of one subject: step 5 makes a dummy parent
        mk("Lunch", 3, "l3"),
        mk("Lunch", 4, "l4"),
        # a reply to that subject joins the dummy's children
        mk("Re: Lunch", 5, "l5"),
        # the reply is older than the original: the original takes the
        # subject table (5.B.v) and the reply goes under it
        mk("Re: Early", 6, "e6"),
        mk("Early", 7, "e7"),
    ])
    assert thread(r, "REFERENCES") == "(1 2)((3)(4)(5))(7 6)"
    # ORDEREDSUBJECT: by base subject, then date; threads by first date
    assert thread(r, "ORDEREDSUBJECT") == "(1 2)(3 (4)(5))(6 7)"
    # a search criterion restricts the set before threading
    assert thread(r, "REFERENCES", "NOT SUBJECT early") == "(1 2)((3)(4)(5))"
    r.close()


def test_references_links_prune_and_sort(imap):
    r = raw_login(imap)
    fill(r, "T2", [
        mk("Root", 1, "r1"),
        # References through a missing message: the dummy between is
        # pruned below the root (step 3.B), 2 becomes a child of 1
        mk("Re: Root", 4, "r2", refs=["r1", "gone2"]),
        mk("Re: Root", 3, "r3", irt="r1"),
        # r3's parent is not changed by a later References (step 1.A)
        mk("Side note", 2, "r4", refs=["r1", "r3"]),
        # two children of one missing parent: the dummy stays at the root
        mk("Alpha", 5, "a5", refs=["x1"]),
        mk("Beta", 6, "b6", refs=["x1"]),
        # a reference loop is not made (step 1.B)
        mk("Loop A", 7, "la", refs=["lb"]),
        mk("Loop B", 8, "lb", refs=["la"]),
    ])
    # step 6: siblings by sent date (3 is older than 2)
    assert thread(r, "REFERENCES") == "(1 (3 4)(2))((5)(6))(8 7)"
    r.close()


def test_base_subject_rules(imap):
    r = raw_login(imap)
    fill(r, "T3", [
        mk("Meeting", 1, "m1"),
        mk("Re: [team] meeting", 2, "m2"),
        mk("[team] Re: Re[2]: MEETING", 3, "m3"),
        mk("Fwd: Meeting (fwd)", 4, "m4"),
        mk("[Fwd: Meeting]", 5, "m5"),
        mk("re :  Meeting  ", 6, "m6"),
        # a blob that is the whole subject stays (step 4)
        mk("[team]", 7, "m7"),
        mk("Meeting notes", 8, "m8"),
        # RFC 2047 decoded and Unicode case-folded
        mk("=?UTF-8?Q?=C3=84pfel?=", 9, "p9"),
        mk("Re: =?UTF-8?Q?=C3=A4PFEL?=", 10, "p10"),
    ])
    assert thread(r, "ORDEREDSUBJECT") == "(1 (2)(3)(4)(5)(6))(7)(8)(9 10)"
    assert thread(r, "REFERENCES") == "(1 (2)(3)(4)(5)(6))(7)(8)(9 10)"
    # SORT (SUBJECT) uses the same base subject
    u, t = r.cmd("so", "SORT (SUBJECT) UTF-8 ALL")
    assert u == [b"* SORT 7 1 2 3 4 5 6 8 9 10\r\n"], u  # octet order
    r.close()


def test_uid_thread_and_ties(imap):
    r = raw_login(imap)
    fill(r, "T4", [
        mk("Gone", 1, "g1"),
        mk("Same day", 2, "s2"),
        mk("Re: Same day", 2, "s3", irt="s2"),
        mk("Re: Same day", 2, "s4", irt="s2"),
    ])
    r.cmd("d", "STORE 1 +FLAGS (\\Deleted)")
    r.cmd("e", "EXPUNGE")
    # equal dates: sequence order (RFC 5256 "sent date" ties)
    assert thread(r, "REFERENCES") == "(1 (2)(3))"
    assert thread(r, "REFERENCES", uid=True) == "(2 (3)(4))"
    assert thread(r, "ORDEREDSUBJECT", uid=True) == "(2 (3)(4))"
    u, t = r.cmd("x", "THREAD UNKNOWN UTF-8 ALL")
    assert t.startswith(b"x BAD"), t
    r.close()


@pytest.mark.parametrize("n", [1500])
def test_deep_reference_chain(imap, n):
    """A chain deeper than the thread depth limit, delivered newest
    first, neither crashes nor loses messages."""
    r = raw_login(imap)
    r.cmd("c", "CREATE Deep")
    for i in range(n, 0, -1):
        m = mk(f"Re: chain {i}", 1, f"c{i}", irt=f"c{i - 1}" if i > 1 else None)
        r.send(b"a APPEND Deep {%d+}\r\n" % len(m) + m + b"\r\n")
    for i in range(n):
        _, t = r.until("a")
        assert t.startswith(b"a OK"), t
    r.cmd("s", "SELECT Deep")
    out = thread(r, "REFERENCES")
    nums = sorted(int(x) for x in out.replace("(", " ").replace(")", " ").split())
    assert nums == list(range(1, n + 1))
    r.close()
