# SPDX-License-Identifier: MIT
"""list-mgr end to end: SMTP client -> smtpd -> cleanup -> qmgr ->
(transport_maps) lmtp agent -> list-mgr -> cleanup (one queue entry per
member, VERP sender) -> qmgr -> lmtpd -> store, read back with storecat
and IMAP. Lists are made with `postern list`.
"""

import email
import email.policy
import imaplib
import re
import socket
import subprocess
import time

import pytest

from conftest import HOST
from pipeline import make_pipeline, wait_port

DOMAIN = "lists.example.test"


def setup_lists(instance_factory, users=("alice", "bob", "carol", "dave"),
                config=None, dmarc=None, transport_extra=""):
    p = make_pipeline(instance_factory, users=users, start=False)
    inst = p.inst
    if dmarc is not None:
        (inst.dir / "dmarc").write_text(dmarc)
        inst.set_config("list_dmarc_policy_maps", f"file:{inst.dir}/dmarc")
        inst.set_config("list_dmarc_lookup", "no")
    tmap = inst.dir / "transport"
    tmap.write_text(f"{DOMAIN} lmtp:unix:{inst.dir}/spool/private/list-mgr\n"
                    + transport_extra)
    inst.set_config("transport_maps", f"file:{tmap}")
    for k, v in (config or {}).items():
        inst.set_config(k, v)
    from pipeline import start_pipeline
    start_pipeline(p)
    deadline = time.monotonic() + 15
    while not (inst.dir / "spool/private/list-mgr").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return p


def lst(p, *args, check=True):
    return p.inst.postern("list", *args, check=check)


def msg(frm, to, subject, body="hello\r\n", extra=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}@example.org>\r\n{extra}\r\n{body}"
            ).encode()


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def wait_msgs(p, user, pred, timeout=30):
    """Wait until user's INBOX has a message for which pred(parsed) holds."""
    deadline = time.monotonic() + timeout
    while True:
        for raw in p.messages(user):
            m = parse(raw)
            if pred(m):
                return m, raw
        if time.monotonic() > deadline:
            subs = [parse(r).get("Subject") for r in p.messages(user)]
            pytest.fail(f"{user}: no matching message; have {subs}\n"
                        + "\n".join(p.inst.log_text().splitlines()[-30:]))
        time.sleep(0.1)


def count_subject(p, user, subject):
    return sum(1 for r in p.messages(user) if subject in (parse(r).get("Subject") or ""))


def lmtp(p, sender, rcpt, data):
    """Talk LMTP to list-mgr's socket directly; the reply after DATA."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(p.inst.dir / "spool/private/list-mgr"))
    f = s.makefile("rwb")

    def cmd(line):
        if line is not None:
            f.write(line.encode() + b"\r\n")
            f.flush()
        while True:
            r = f.readline().decode()
            if r[3:4] != "-":
                return r
    assert cmd(None).startswith("220")
    assert cmd("LHLO test").startswith("250")
    assert cmd(f"MAIL FROM:<{sender}>").startswith("250")
    r = cmd(f"RCPT TO:<{rcpt}>")
    if not r.startswith("250"):
        s.close()
        return r
    assert cmd("DATA").startswith("354")
    body = data.replace(b"\r\n.", b"\r\n..")
    f.write(body + b".\r\n")
    f.flush()
    r = cmd(None)
    cmd("QUIT")
    s.close()
    return r


def test_post_members_headers_imap_archive(instance_factory):
    p = setup_lists(instance_factory)
    lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
        "subject_prefix=[team]", "description=The team")
    lst(p, "members", "team", "add", "alice@localhost", "bob@localhost")
    lst(p, "members", "team", "add", "carol@localhost", "--options", "nomail")
    out = lst(p, "members", "team").stdout
    assert "alice@localhost" in out and "carol@localhost\tnomail" in out
    assert "members = 3" in lst(p, "show", "team").stdout

    p.send("alice@localhost", [f"team@{DOMAIN}"],
           msg("alice@localhost", f"team@{DOMAIN}", "first post",
               extra="Disposition-Notification-To: alice@localhost\r\n"
                     "Return-Receipt-To: alice@localhost\r\n"))
    for user in ("alice", "bob"):
        m, raw = wait_msgs(p, user, lambda m: "first post" in (m["Subject"] or ""))
        assert m["Subject"] == "[team] first post"
        assert m["List-Id"] == f"The team <team.{DOMAIN}>"
        assert m["List-Post"] == f"<mailto:team@{DOMAIN}>"
        assert m["List-Unsubscribe"] == f"<mailto:team-leave@{DOMAIN}>"
        assert m["List-Help"].startswith(f"<mailto:team-request@{DOMAIN}")
        assert m["Precedence"] == "list"
        assert m["Disposition-Notification-To"] is None
        assert m["Return-Receipt-To"] is None
    p.wait_queue_empty()
    time.sleep(0.5)
    # exactly once each; carol (nomail) gets nothing
    assert count_subject(p, "alice", "first post") == 1
    assert count_subject(p, "bob", "first post") == 1
    assert count_subject(p, "carol", "first post") == 0
    # VERP: one queue entry per member with its own envelope sender
    log = p.inst.log_text()
    assert re.search(r"from=<team-bounces\+bob=localhost@lists\.example\.test>", log)
    assert re.search(r"from=<team-bounces\+alice=localhost@lists\.example\.test>", log)

    # seen by IMAP
    deadline = time.monotonic() + 15
    while True:
        try:
            im = imaplib.IMAP4(HOST, p.inst.port("IMAP"))
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    im.login("bob", "pw")
    im.select("INBOX")
    typ, data = im.search(None, "HEADER", "List-Id", f"team.{DOMAIN}")
    assert typ == "OK" and len(data[0].split()) == 1
    im.logout()

    # archive: mbox per month, static HTML
    arch = list((p.inst.dir / "data/lists/team/archive").glob("*.mbox"))
    assert len(arch) == 1 and b"first post" in arch[0].read_bytes()
    lst(p, "archive", "rebuild", "team")
    html = (p.inst.dir / "data/lists/team/archive/html")
    assert "[team] first post" in (html / "date.html").read_text()
    assert "[team] first post" in (html / "thread.html").read_text()

    # loop: a list that is a member of itself
    lst(p, "members", "team", "add", f"team@{DOMAIN}")
    mark = p.inst.log_mark()
    p.send("bob@localhost", [f"team@{DOMAIN}"],
           msg("bob@localhost", f"team@{DOMAIN}", "loop test"))
    p.inst.wait_for_log(r"mail loop: post discarded", start=mark, timeout=30)
    p.wait_queue_empty()
    assert count_subject(p, "alice", "loop test") == 1


def test_subscribe_confirm_moderation(instance_factory):
    p = setup_lists(instance_factory)
    lst(p, "create", f"dept@{DOMAIN}", "--owner", "alice@localhost",
        "password=sekrit")
    lst(p, "members", "dept", "add", "alice@localhost")

    # subscribe by mail with confirmation
    p.send("carol@localhost", [f"dept-request@{DOMAIN}"],
           msg("carol@localhost", f"dept-request@{DOMAIN}", "", "subscribe\r\n"))
    conf, _ = wait_msgs(p, "carol", lambda m: (m["Subject"] or "").startswith("confirm "))
    token = conf["Subject"].split()[1]
    assert re.fullmatch(r"[0-9a-f]{24}", token)
    assert conf["Reply-To"] == f"dept-confirm+{token}@{DOMAIN}"
    assert "carol@localhost" not in lst(p, "members", "dept").stdout

    # forged and malformed confirmations change nothing, crash nothing
    p.send("carol@localhost", [f"dept-request@{DOMAIN}"],
           msg("carol@localhost", f"dept-request@{DOMAIN}", "confirm " + "0" * 24))
    p.send("carol@localhost", [f"dept-request@{DOMAIN}"],
           msg("carol@localhost", f"dept-request@{DOMAIN}", "x",
               "confirm ../../../etc/passwd\r\n\x01\x02garbage\r\n" + "A" * 5000 + "\r\n"))
    r = lmtp(p, "carol@localhost", f"dept-confirm+zzzz@{DOMAIN}",
             msg("carol@localhost", "x", "Re: confirm"))
    assert r.startswith("250")
    r = lmtp(p, "carol@localhost", f"nosuchlist@{DOMAIN}", msg("a@b", "x", "y"))
    assert r.startswith("550")
    wait_msgs(p, "carol", lambda m: "Results" in (m["Subject"] or "")
              and "unknown or already used" in m.get_payload())
    assert "carol@localhost" not in lst(p, "members", "dept").stdout

    # the real reply confirms
    p.send("carol@localhost", [f"dept-confirm+{token}@{DOMAIN}"],
           msg("carol@localhost", f"dept-confirm+{token}@{DOMAIN}", f"Re: confirm {token}"))
    wait_msgs(p, "carol", lambda m: "Welcome" in (m["Subject"] or ""))
    assert "carol@localhost" in lst(p, "members", "dept").stdout

    # non-member post: held, moderators told; approve by replying
    p.send("dave@localhost", [f"dept@{DOMAIN}"],
           msg("dave@localhost", f"dept@{DOMAIN}", "outsider post"))
    note, _ = wait_msgs(p, "alice", lambda m: "held post" in (m["Subject"] or ""))
    held_id = note["Subject"].split()[-1]
    assert held_id in lst(p, "held", "dept").stdout
    p.send("alice@localhost", [f"dept-request@{DOMAIN}"],
           msg("alice@localhost", f"dept-request@{DOMAIN}", "Re: " + note["Subject"],
               "Fine by me.\r\n> quoted notice\r\n"))
    wait_msgs(p, "carol", lambda m: "outsider post" in (m["Subject"] or ""))
    assert held_id not in lst(p, "held", "dept").stdout

    # held again, rejected with the CLI; Approved: header with password passes
    p.send("dave@localhost", [f"dept@{DOMAIN}"],
           msg("dave@localhost", f"dept@{DOMAIN}", "second outsider"))
    p.inst.wait_for_log(r"status=held \(post by non-member\) id=", timeout=30)
    deadline = time.monotonic() + 20
    while True:
        held = lst(p, "held", "dept").stdout.split()
        if held:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lst(p, "reject", "dept", held[0])
    wait_msgs(p, "dave", lambda m: "rejected" in (m["Subject"] or ""))
    p.send("dave@localhost", [f"dept@{DOMAIN}"],
           msg("dave@localhost", f"dept@{DOMAIN}", "approved post",
               extra="Approved: sekrit\r\n"))
    m, _ = wait_msgs(p, "carol", lambda m: "approved post" in (m["Subject"] or ""))
    assert m["Approved"] is None
    assert count_subject(p, "carol", "second outsider") == 0

    # unsubscribe by mail to -leave, with confirmation
    p.send("carol@localhost", [f"dept-leave@{DOMAIN}"],
           msg("carol@localhost", f"dept-leave@{DOMAIN}", "bye"))
    conf, _ = wait_msgs(p, "carol", lambda m: (m["Subject"] or "").startswith("confirm ")
                        and "unsubscribe" in m.get_payload())
    token = conf["Subject"].split()[1]
    p.send("carol@localhost", [f"dept-request@{DOMAIN}"],
           msg("carol@localhost", f"dept-request@{DOMAIN}", f"Re: confirm {token}"))
    wait_msgs(p, "carol", lambda m: "left" in (m["Subject"] or ""))
    assert "carol@localhost" not in lst(p, "members", "dept").stdout


DSN = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: x\r\n"
       b"Subject: Undelivered Mail Returned to Sender\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
       b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
       b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
       b"Reporting-MTA: dns; mx.example.org\r\n\r\n"
       b"Final-Recipient: rfc822; bob@localhost\r\nAction: failed\r\n"
       b"Status: 5.1.1\r\n\r\n--B--\r\n")


def test_bounces_digest_footer_signed_dmarc(instance_factory, tmp_path):
    p = setup_lists(instance_factory, dmarc="strict.example reject\n")
    lst(p, "create", f"course@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open", "bounce_threshold=20", "bounce_once_per_day=no",
        "digest_size=1", r"footer=Course list\nhttps://example.test/course")
    lst(p, "members", "course", "add", "alice@localhost", "bob@localhost")
    lst(p, "members", "course", "add", "dave@localhost", "--options", "digest")

    # bounces: two hard bounces (score 1.0 each, threshold 2.0) disable bob
    bounce_to = f"course-bounces+bob=localhost@{DOMAIN}"
    assert lmtp(p, "", bounce_to, DSN).startswith("250")
    assert "bouncing" not in lst(p, "members", "course").stdout
    # an auto-reply at the bounce address is no bounce
    assert lmtp(p, "", bounce_to, msg("bob@localhost", "x", "Out of office")).startswith("250")
    assert "bob@localhost\t-\t1.0" in lst(p, "members", "course").stdout
    assert lmtp(p, "", bounce_to, DSN).startswith("250")
    assert "bob@localhost\tbouncing" in lst(p, "members", "course").stdout
    wait_msgs(p, "bob", lambda m: "disabled" in (m["Subject"] or ""))

    # a signed message: footer goes into a new multipart/mixed, the
    # signed entity stays byte-identical and verifies
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-subj", "/CN=alice", "-days", "2"],
                   check=True, capture_output=True)
    inner = tmp_path / "inner.txt"
    inner.write_bytes(b"Content-Type: text/plain\r\n\r\nsigned text\r\n")
    signed = subprocess.run(["openssl", "smime", "-sign", "-in", inner, "-signer", cert,
                             "-inkey", key, "-crlfeol"],
                            check=True, capture_output=True).stdout
    signed = signed.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    hdr, _, body = signed.partition(b"\r\n\r\n")
    mime_hdr = b"\r\n".join(l for l in hdr.split(b"\r\n")
                            if l.lower().startswith((b"mime-version", b"content-type", b"\t", b" ")))
    post = (b"From: alice@localhost\r\nTo: course@" + DOMAIN.encode() +
            b"\r\nSubject: signed post\r\n" + mime_hdr + b"\r\n\r\n" + body)
    p.send("alice@localhost", [f"course@{DOMAIN}"], post)
    m, raw = wait_msgs(p, "alice", lambda m: "signed post" in (m["Subject"] or ""))
    assert m.get_content_type() == "multipart/mixed"
    parts = m.get_payload()
    assert parts[0].get_content_type() == "multipart/signed"
    assert "Course list" in parts[1].get_payload()
    assert body.rstrip(b"\r\n") in raw     # the signed body unchanged
    # cut the first part out of the delivered bytes and verify it
    outer_b = m.get_boundary().encode()
    first = raw.split(b"--" + outer_b + b"\r\n", 1)[1].split(b"\r\n--" + outer_b, 1)[0]
    ent = tmp_path / "ent.eml"
    ent.write_bytes(b"MIME-Version: 1.0\r\n" + first + b"\r\n")
    v = subprocess.run(["openssl", "smime", "-verify", "-in", ent, "-noverify",
                        "-out", "/dev/null"], capture_output=True)
    assert v.returncode == 0, v.stderr
    # bob is disabled: no copy
    p.wait_queue_empty()
    assert count_subject(p, "bob", "signed post") == 0

    # plain text post: footer appended after "-- "
    p.send("alice@localhost", [f"course@{DOMAIN}"],
           msg("alice@localhost", f"course@{DOMAIN}", "plain post", "line one\r\n"))
    m, raw = wait_msgs(p, "alice", lambda m: "plain post" in (m["Subject"] or ""))
    assert raw.endswith(b"line one\r\n-- \r\nCourse list\r\nhttps://example.test/course\r\n")

    # digest member: a MIME digest (digest_size=1 sends at each post)
    m, _ = wait_msgs(p, "dave", lambda m: "Digest" in (m["Subject"] or "")
                     and "plain post" in m.as_string())
    assert m.get_content_type() == "multipart/mixed"
    assert m.get_payload()[1].get_content_type() == "multipart/digest"
    assert count_subject(p, "dave", "plain post") == 0

    # DMARC mitigation: From: of a p=reject domain becomes the list's
    p.send("x@strict.example", [f"course@{DOMAIN}"],
           msg("Xavier <x@strict.example>", f"course@{DOMAIN}", "dmarc post"))
    m, _ = wait_msgs(p, "alice", lambda m: "dmarc post" in (m["Subject"] or ""))
    assert f"<course@{DOMAIN}>" in m["From"] and "via course" in m["From"]
    assert m["Reply-To"] == "<x@strict.example>"
