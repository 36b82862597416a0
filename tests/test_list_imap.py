# SPDX-License-Identifier: MIT
"""List archives over IMAP: a list with archive_imap = yes is the
read-only shared mailbox Shared/LIST for its members (imapd_shared.c).
Posts go the whole way (SMTP -> list-mgr -> archive mbox); imapd reads
them with imaplib as alice (member) and bob (not a member).
"""

import imaplib
import re
import shutil
import time

import pytest

from conftest import HOST
from test_list import DOMAIN, lst, msg, setup_lists, wait_msgs


def imap(p, user):
    deadline = time.monotonic() + 15
    while True:
        try:
            im = imaplib.IMAP4(HOST, p.inst.port("IMAP"))
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    im.login(user, "pw")
    return im


def listed(im, pattern):
    typ, data = im.list('""', pattern)
    assert typ == "OK"
    return [d.decode().replace('"Shared', 'Shared').rstrip('"')
            for d in data if d is not None]


def fetch_all(im, n):
    out = []
    for i in range(1, n + 1):
        typ, data = im.fetch(str(i), "(BODY.PEEK[])")
        assert typ == "OK"
        out.append(data[0][1])
    return out


def post(p, subject, body="hello list\r\n"):
    p.send("carol@localhost", [f"team@{DOMAIN}"],
           msg("carol@localhost", f"team@{DOMAIN}", subject, body=body))
    _, raw = wait_msgs(p, "alice", lambda m: subject in (m["Subject"] or ""))
    return raw


def test_list_archive_shared_mailbox(instance_factory):
    p = setup_lists(instance_factory, users=("alice", "bob", "carol"))
    lst(p, "create", f"team@{DOMAIN}", "--owner", "carol@localhost",
        "archive_imap=yes", "archive=private")
    lst(p, "members", "team", "add", "alice@localhost", "carol@localhost")
    # a list whose archive is not shown by IMAP
    lst(p, "create", f"quiet@{DOMAIN}", "--owner", "carol@localhost")
    lst(p, "members", "quiet", "add", "alice@localhost")
    assert "archive_imap = yes" in lst(p, "show", "team").stdout

    # a body line starting with "From " is quoted in the mbox, and must
    # come back unquoted
    raw1 = post(p, "first post", body="hello\r\nFrom here on\r\n>From x\r\n")
    p.wait_queue_empty()

    im = imap(p, "alice")
    typ, data = im.namespace()
    assert typ == "OK"
    assert data[0] == b'(("" "/")) NIL (("Shared/" "/"))'
    assert listed(im, "Shared/*") == ['(\\HasNoChildren) "/" Shared/team']
    assert listed(im, "%") == [x for x in listed(im, "%")
                               if "Shared/" not in x]
    assert '(\\Noselect \\HasChildren) "/" Shared' in listed(im, "%")
    assert any(x.endswith(" Shared/team") for x in listed(im, "*"))
    typ, data = im.status("Shared/team", "(MESSAGES UNSEEN)")
    assert typ == "OK" and b"MESSAGES 1 UNSEEN 1" in data[0], data

    # SELECT answers like EXAMINE
    # (imaplib raises when a SELECT is answered READ-ONLY; the mailbox
    # is selected all the same)
    with pytest.raises(imaplib.IMAP4.readonly):
        im.select("Shared/team")
    assert im.state == "SELECTED"
    assert im.untagged_responses.get("EXISTS") == [b"1"]
    im.untagged_responses.pop("READ-ONLY")
    arch = fetch_all(im, 1)[0]
    assert b"\r\nSubject: first post\r\n" in arch
    assert b"\r\nFrom here on\r\n>From x\r\n" in arch
    # what alice received is the archived post plus the delivery's own
    # trace fields at the top
    assert raw1.endswith(arch), (raw1, arch)
    extra = raw1[:len(raw1) - len(arch)]
    for line in extra.split(b"\r\n")[:-1]:
        assert re.match(rb"^(Return-Path|Delivered-To|Received|\s)", line), line
    # nothing can be changed, and \Seen is not kept (imaplib itself
    # refuses to send a change to a READ-ONLY mailbox: ask anyway)
    typ, data = im.store("1", "+FLAGS", "\\Seen")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = im.expunge()
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = im.fetch("1", "(BODY[] FLAGS)")
    assert typ == "OK" and b"\\Seen" not in data[-1]
    # COPY out into a personal mailbox copies the bytes (COPYUID)
    typ, data = im.copy("1", "Kept")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    assert im.create("Kept")[0] == "OK"
    typ, data = im.copy("1", "Kept")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1 1\]", data[0]), data
    typ, data = im.copy("1", "Shared/team")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    im.close()
    typ, data = im.select("Kept")
    assert typ == "OK" and data == [b"1"]
    assert fetch_all(im, 1)[0] == arch
    im.close()
    typ, data = im.append("Shared/team", None, None, b"Subject: x\r\n\r\nx\r\n")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = im.create("Shared/team/sub")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = im.rename("INBOX", "Shared/x")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = im.delete("Shared/team")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    # the list without archive_imap is no shared mailbox
    typ, data = im.select("Shared/quiet")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    im.logout()

    # bob is no member: he sees nothing and cannot tell the list exists
    im = imap(p, "bob")
    assert listed(im, "Shared/*") == []
    assert not any("Shared" in x for x in listed(im, "*"))
    for name in ("Shared/team", "Shared/nosuchlist"):
        typ, data = im.select(name)
        assert typ == "NO" and data[0] == \
            b"[NONEXISTENT] Mailbox doesn't exist", data
        typ, data = im.status(name, "(MESSAGES)")
        assert typ == "NO" and data[0] == \
            b"[NONEXISTENT] Mailbox doesn't exist", data
    im.logout()

    # a second post is added to what is there, in order
    raw2 = post(p, "second post")
    p.wait_queue_empty()
    im = imap(p, "alice")
    typ, data = im.select("Shared/team", readonly=True)
    assert typ == "OK" and data == [b"2"]
    got = fetch_all(im, 2)
    assert got[0] == arch and raw2.endswith(got[1])
    typ, data = im.uid("FETCH", "1:*", "(UID)")
    assert [int(re.search(rb"UID (\d+)", d).group(1)) for d in data] == [1, 2]
    im.close()
    # LIST-STATUS covers shared mailboxes
    typ, data = im.list('""', '("Shared/*") RETURN (STATUS (MESSAGES))')
    assert typ == "OK"
    assert any(b"STATUS" not in d and b"Shared/team" in d for d in data)
    assert re.search(rb'MESSAGES 2', im.untagged_responses.get("STATUS",
                                                                [b""])[0])
    # exactly once: the import counts what the store has, so forgetting
    # the size stamp (as after a crash) appends nothing twice
    stamps = list(p.inst.dir.glob("**/.lists/team.stamp"))
    assert len(stamps) == 1
    stamps[0].unlink()
    typ, data = im.select("Shared/team", readonly=True)
    assert typ == "OK" and data == [b"2"]
    im.close()
    # the list store can be thrown away: it is rebuilt from the archive
    # (the stamp holds the message count, so it does not hide the loss)
    shutil.rmtree(stamps[0].parent / "team")
    typ, data = im.select("Shared/team", readonly=True)
    assert typ == "OK" and data == [b"2"]
    assert fetch_all(im, 2)[0] == arch
    im.logout()

    # a removed member loses access
    lst(p, "members", "team", "remove", "alice@localhost")
    im = imap(p, "alice")
    assert listed(im, "Shared/*") == []
    typ, data = im.select("Shared/team")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    im.logout()
    # the list store lives apart from the users' stores
    assert (p.inst.dir / "store/.lists/team").is_dir() or \
        any(d.name == "team" for d in p.inst.dir.glob("**/.lists/*"))
