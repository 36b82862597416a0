# SPDX-License-Identifier: MIT
"""news-gw end to end with a real INN (tests/inn_fixture.py).

Mail to news: SMTP client -> smtpd -> cleanup -> qmgr -> (transport_maps)
lmtp agent -> news-gw (LMTP) -> INN (POST or IHAVE), read back with
nntplib. News to mail: nntplib POST -> INN -> innfeed -> news-gw's feed
server (NNTP_PORT) -> cleanup -> qmgr -> lmtpd -> store, read by IMAP;
and the puller (GROUP/OVER/ARTICLE) on master's wakeup. STARTTLS and
AUTHINFO against INN's nnrpd. Loops,
duplicates, INN down, and bad input on both sides.
"""

import email
import email.policy
import imaplib
import socket
import time

import pytest

from conftest import HOST
from pipeline import make_pipeline, start_pipeline

import inn_fixture
from inn_fixture import Inn

DOMAIN = "news.example.test"
IDENTITY = "gw.test"

_skip = inn_fixture.skip_reason()
needs_inn = pytest.mark.skipif(_skip is not None, reason=_skip or "")


def setup_gw(instance_factory, inn=None, config=None, pull=False,
             users=("alice", "bob", "carol"), services=()):
    """The pipeline plus news-gw's LMTP and feed services, maps for
    test.one (both ways: carol), test.two (news -> alice), test.three
    (pulled -> bob)."""
    p = make_pipeline(instance_factory, users=users, start=False)
    inst = p.inst
    d = inst.dir
    (d / "transport").write_text(
        f"{DOMAIN} lmtp:unix:{d}/spool/private/news-gw\n")
    (d / "newsgroups").write_text(
        f"test-one@{DOMAIN} test.one\n"
        f"test-both@{DOMAIN} test.one, test.two\n"
        f"test-two@{DOMAIN} test.two\n"
        f"bad-group@{DOMAIN} test.nonexistent\n")
    (d / "news2mail").write_text(
        "test.one carol@localhost\n"
        "test.two alice@localhost\n"
        "test.three bob@localhost\n")
    settings = {
        "transport_maps": f"file:{d}/transport",
        "newsgroups_maps": f"file:{d}/newsgroups",
        "news_to_mail_maps": f"file:{d}/news2mail",
        "news_gw_peers": HOST,
        "news_gw_path_identity": IDENTITY,
        "news_gw_timeout": "20s",
        "news_gw_server": f"{HOST}:{inn.port if inn else 9}",
    }
    settings.update(config or {})
    for k, v in settings.items():
        inst.set_config(k, v)
    # whatever `postern instance init` wrote for news-gw, use these
    nntp = f"{HOST}:{inst.port('NNTP')}"
    conf = d / "master.conf"
    kept = [l for l in conf.read_text().splitlines()
            if not l.split()[:1] or l.split()[0] not in
            ("news-gw", "news-pull", nntp)]
    conf.write_text("\n".join(kept) + "\n")
    inst.add_service("news-gw unix y - n - - news-gw")
    inst.add_service(f"{nntp} inet n - n - - news-gw -o news_gw_role=feed")
    if pull:
        inst.add_service("news-pull unix y - n 1 1 news-gw "
                         "-o news_gw_role=pull")
    for line in services:
        inst.add_service(line)
    start_pipeline(p)
    deadline = time.monotonic() + 15
    while not (d / "spool/private/news-gw").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return p


def mail(frm, to, subject, body="hello\r\n", extra="", msgid=None):
    msgid = msgid or f"<{time.time_ns()}.m2n@example.org>"
    return (f"From: {frm}\r\nTo: {to}\r\nCc: other@example.org\r\n"
            f"Subject: {subject}\r\nMessage-ID: {msgid}\r\n"
            f"Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
            f"Delivered-To: somebody@example.org\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n{extra}\r\n{body}"
            ).encode(), msgid


def article_lines(frm, group, subject, msgid, body=(b"article body",)):
    date = email.utils.formatdate(usegmt=True)
    return [f"From: {frm}".encode(), f"Newsgroups: {group}".encode(),
            f"Subject: {subject}".encode(), f"Message-ID: {msgid}".encode(),
            f"Date: {date}".encode(), b""] + list(body)


def headers_of(lines):
    """Header fields of an article (list of bytes lines) as {lower: [values]}."""
    h = {}
    for line in lines:
        if line == b"":
            break
        if line[:1] in (b" ", b"\t"):
            continue
        name, _, value = line.partition(b":")
        h.setdefault(name.decode().lower(), []).append(value.strip().decode(
            errors="replace"))
    return h


def imap_fetch(p, user, search=("ALL",), timeout=40):
    """Raw messages of user's INBOX matching the IMAP SEARCH, waiting
    until there is at least one."""
    deadline = time.monotonic() + timeout
    while True:
        im = imaplib.IMAP4(HOST, p.inst.port("IMAP"))
        try:
            im.login(user, "pw")
            im.select("INBOX")
            typ, data = im.search(None, *search)
            assert typ == "OK"
            nums = data[0].split()
            out = []
            for n in nums:
                typ, d = im.fetch(n, "(BODY.PEEK[])")
                out.append(d[0][1])
            if out:
                return out
        finally:
            try:
                im.logout()
            except Exception:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing for {user} matching {search} "
                                 f"after {timeout}s\n" + "\n".join(
                                     p.inst.log_text().splitlines()[-40:]))
        time.sleep(0.3)


def nntp_session(port, source=None, timeout=10):
    s = socket.create_connection((HOST, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    f = s.makefile("rwb", buffering=0)
    return s, f


def nntp_cmd(s, f, line):
    s.sendall(line if isinstance(line, bytes) else line.encode() + b"\r\n")
    return f.readline()


@pytest.fixture
def inn_factory():
    made = []

    def make(**kw):
        inn = Inn(**kw)
        made.append(inn)
        return inn.start()

    yield make
    for inn in made:
        inn.cleanup()


# ------------------------------------------------------------------ tests

@needs_inn
def test_mail_to_news_news_to_mail_loops(instance_factory, inn_factory):
    """POST: mail becomes an article on INN; INN's innfeed feeds the test
    groups back to news-gw: our own article is refused (history/loop),
    an article posted to INN becomes mail (IMAP); a resent Message-ID
    is not wanted; a refused post bounces with INN's text."""
    # the instance's NNTP port must be known before INN is configured
    p = None
    inst_holder = {}

    def factory():
        inst = instance_factory()
        inst_holder["inst"] = inst
        return inst

    # make the instance first (not started) to learn its NNTP port
    inst = instance_factory()
    nntp_port = inst.port("NNTP")
    inn = inn_factory(feed_port=nntp_port, feed_groups="test.*")

    def reuse():
        return inst

    p = setup_gw(reuse, inn=inn)

    # ---- mail to news (POST), 8-bit body kept
    body = "Grüße aus dem Gateway\r\n.leading dot line\r\nend\r\n"
    raw, msgid = mail("Alice <alice@example.org>", f"test-one@{DOMAIN}",
                      "gateway test one", body=body)
    p.send("alice@localhost", [f"test-one@{DOMAIN}"], raw)
    lines = inn.wait_article(msgid, timeout=40)
    h = headers_of(lines)
    assert h["newsgroups"] == ["test.one"]
    assert h["message-id"] == [msgid]
    assert h["subject"] == ["gateway test one"]
    assert h["from"] == ["Alice <alice@example.org>"]
    assert "to" not in h and "cc" not in h
    assert h["x-original-to"] == [f"test-one@{DOMAIN}"]
    assert h["x-original-cc"] == ["other@example.org"]
    assert "received" not in h and "delivered-to" not in h
    assert h["x-postern-gateway"] == [f"mail-to-news; {IDENTITY}"]
    assert IDENTITY in h["path"][0].split("!")
    bl = lines[lines.index(b"") + 1:]
    assert bl == [b for b in body.encode().split(b"\r\n")[:-1]]
    p.wait_queue_empty()

    # ---- INN feeds our own article back: refused, carol gets nothing
    p.inst.wait_for_log(rf"{msgid}.*not wanted|438 {msgid}|{msgid}.*came from mail",
                        timeout=40)

    # ---- news to mail through innfeed
    amid = f"<{time.time_ns()}.n2m@example.net>"
    inn.post(article_lines("Poster <poster@example.net>", "test.two",
                           "from usenet", amid,
                           body=[b"line one", b"..dotted", b"caf\xc3\xa9"]))
    got = imap_fetch(p, "alice", ("HEADER", "Message-ID", amid), timeout=60)
    assert len(got) == 1
    m = email.message_from_bytes(got[0], policy=email.policy.compat32)
    assert m["Message-ID"] == amid
    assert m["X-Newsgroups"] == "test.two"
    assert m["List-Id"] == f"<test.two.{IDENTITY}>"
    assert m["X-Postern-Gateway"] == f"news-to-mail; {IDENTITY}"
    assert m["Subject"] == "from usenet"
    assert m["Path"] is None and m["Xref"] is None
    assert got[0].split(b"\r\n\r\n", 1)[1].startswith(
        b"line one\r\n..dotted\r\ncaf\xc3\xa9")

    # ---- a duplicate offer of the gatewayed article: not wanted
    s, f = nntp_session(p.inst.port("NNTP"))
    assert f.readline().startswith(b"200")
    assert nntp_cmd(s, f, f"IHAVE {amid}").startswith(b"435")
    assert nntp_cmd(s, f, "MODE STREAM").startswith(b"203")
    assert nntp_cmd(s, f, f"CHECK {msgid}").startswith(b"438")
    assert nntp_cmd(s, f, "QUIT").startswith(b"205")
    s.close()

    # ---- the mail copy of a gatewayed article is not posted again
    # (its Message-ID is in the history as from news)
    raw2 = got[0]
    mark = p.inst.log_mark()
    p.send("alice@localhost", [f"test-two@{DOMAIN}"], raw2)
    p.inst.wait_for_log(r"status=dropped", start=mark, timeout=30)

    # ---- a refused post bounces with INN's text
    raw3, _ = mail("alice@example.org", f"bad-group@{DOMAIN}", "to nowhere")
    p.send("alice@localhost", [f"bad-group@{DOMAIN}"], raw3)
    bounce = imap_fetch(p, "alice", ("SUBJECT", "Undelivered"), timeout=60)
    assert b"441" in bounce[0]
    p.wait_queue_empty()
    assert len(imap_fetch(p, "alice", ("ALL",))) == 2  # the article + bounce
    assert not any(msgid.encode() in m for m in
                   _maybe_fetch(p, "carol"))


def _maybe_fetch(p, user):
    im = imaplib.IMAP4(HOST, p.inst.port("IMAP"))
    try:
        im.login(user, "pw")
        im.select("INBOX")
        typ, data = im.search(None, "ALL")
        out = []
        for n in data[0].split():
            typ, d = im.fetch(n, "(BODY.PEEK[])")
            out.append(d[0][1])
        return out
    finally:
        im.logout()


@needs_inn
def test_ihave_inn_down_deferred_then_delivered(instance_factory, inn_factory):
    """IHAVE as a peer; with INN stopped the mail is deferred (4xx, the
    queue keeps it) and is posted once INN is back on the same port."""
    inn = inn_factory()
    p = setup_gw(instance_factory, inn=inn,
                 config={"news_gw_post_method": "ihave"})
    raw, msgid = mail("bob@example.org", f"test-both@{DOMAIN}", "ihave one")
    p.send("bob@localhost", [f"test-both@{DOMAIN}"], raw)
    lines = inn.wait_article(msgid, timeout=40)
    h = headers_of(lines)
    assert h["newsgroups"] == ["test.one,test.two"]
    assert IDENTITY in h["path"][0].split("!")
    p.wait_queue_empty()

    inn.stop()
    mark = p.inst.log_mark()
    raw, msgid2 = mail("bob@example.org", f"test-one@{DOMAIN}", "while down")
    p.send("bob@localhost", [f"test-one@{DOMAIN}"], raw)
    p.inst.wait_for_log(r"status=deferred", start=mark, timeout=30)
    assert not p.queue_empty()
    inn.start()
    inn.wait_article(msgid2, timeout=60)
    p.wait_queue_empty(timeout=30)


@needs_inn
def test_pull(instance_factory, inn_factory):
    """The puller fetches new articles of test.three (GROUP/OVER/ARTICLE)
    and mails them once; the high-water mark keeps them from coming again."""
    inn = inn_factory()
    p = setup_gw(instance_factory, inn=inn, pull=True,
                 config={"news_gw_pull_groups": "test.three",
                         "news_gw_pull_server": f"{HOST}:{inn.port}"})
    # test.three exists only if INN has it: it is made with test.one/two
    mids = []
    for i in range(2):
        mid = f"<{time.time_ns()}.pull{i}@example.net>"
        mids.append(mid)
        inn.post(article_lines("Puller <p@example.net>", "test.three",
                               f"pulled {i}", mid))
    for mid in mids:
        got = imap_fetch(p, "bob", ("HEADER", "Message-ID", mid), timeout=40)
        m = email.message_from_bytes(got[0], policy=email.policy.compat32)
        assert m["List-Id"] == f"<test.three.{IDENTITY}>"
    time.sleep(3)  # more wakeups: nothing comes twice
    p.wait_queue_empty()
    assert len(_maybe_fetch(p, "bob")) == 2
    log = p.inst.log_text()
    assert "pull test.three: 1 article(s) handled" in log or \
        "pull test.three: 2 article(s) handled" in log
    assert "using STAT" not in log   # INN has OVER


def test_feed_bad_input(instance_factory):
    """The feed server refuses what it must with the right codes and
    never crashes (conftest fails the test on a crash in the log).
    Peers by network: 127.0.0.0/31 lets 127.0.0.1 in, not 127.0.0.2."""
    p = setup_gw(instance_factory,
                 config={"news_gw_peers": "127.0.0.0/31 ::1/128"})
    port = p.inst.port("NNTP")

    # an unauthorised peer (127.0.0.2 is loopback too)
    s, f = nntp_session(port, source="127.0.0.2")
    assert f.readline().startswith(b"502")
    s.close()

    s, f = nntp_session(port)
    assert f.readline().startswith(b"200")
    caps = nntp_cmd(s, f, "CAPABILITIES")
    assert caps.startswith(b"101")
    lines = []
    while True:
        line = f.readline()
        if line == b".\r\n":
            break
        lines.append(line.strip())
    assert b"STREAMING" in lines and b"IHAVE" in lines
    assert nntp_cmd(s, f, "FOO bar").startswith(b"500")
    assert nntp_cmd(s, f, b"X" * 600 + b"\r\n").startswith(b"501")
    assert nntp_cmd(s, f, b"IHAVE <a\x00b@x>\r\n").startswith(b"501")
    assert nntp_cmd(s, f, "IHAVE").startswith(b"501")
    assert nntp_cmd(s, f, "IHAVE not-a-message-id").startswith(b"435")
    assert nntp_cmd(s, f, "MODE READER").startswith(b"502")
    assert nntp_cmd(s, f, "DATE").startswith(b"111")

    def ihave(msgid, article):
        r = nntp_cmd(s, f, f"IHAVE {msgid}")
        assert r.startswith(b"335"), r
        s.sendall(article + b".\r\n")
        return f.readline()

    date = email.utils.formatdate(usegmt=True).encode()
    mid = f"<{time.time_ns()}.bad@example.net>"
    # no Message-ID header
    assert ihave(mid, b"From: a@b\r\nNewsgroups: test.two\r\nPath: x\r\n"
                 b"\r\nbody\r\n").startswith(b"437")
    # header Message-ID differs from the offered one
    assert ihave(mid, b"From: a@b\r\nNewsgroups: test.two\r\nPath: x\r\n"
                 b"Message-ID: <other@x>\r\n\r\nbody\r\n").startswith(b"437")
    # over-long header line
    assert ihave(mid, b"From: a@b\r\nNewsgroups: test.two\r\nPath: x\r\n"
                 b"Message-ID: " + mid.encode() + b"\r\nSubject: "
                 + b"y" * 2000 + b"\r\n\r\nbody\r\n").startswith(b"437")
    # a malformed header line (no colon) and a NUL in the header
    assert ihave(mid, b"From: a@b\r\nbroken line\r\nNewsgroups: test.two\r\n"
                 b"Path: x\r\nMessage-ID: " + mid.encode()
                 + b"\r\n\r\nbody\r\n").startswith(b"437")
    assert ihave(mid, b"From: a@b\x00\r\nNewsgroups: test.two\r\n"
                 b"Path: x\r\nMessage-ID: " + mid.encode()
                 + b"\r\n\r\nbody\r\n").startswith(b"437")
    # our own Path entry: a loop
    assert ihave(mid, b"From: a@b\r\nNewsgroups: test.two\r\nPath: x!"
                 + IDENTITY.encode() + b"!y\r\nMessage-ID: " + mid.encode()
                 + b"\r\nDate: " + date + b"\r\n\r\nbody\r\n").startswith(b"437")
    # an over-size article (limit 1m): read to its end, then refused
    big = b"x" * 999 + b"\r\n"
    assert ihave(mid, b"From: a@b\r\nNewsgroups: test.two\r\nPath: x\r\n"
                 b"Message-ID: " + mid.encode() + b"\r\n\r\n"
                 + big * 1100).startswith(b"437")
    # streaming: TAKETHIS of garbage is 439, and the session stays in step
    assert nntp_cmd(s, f, "MODE STREAM").startswith(b"203")
    assert nntp_cmd(s, f, "CHECK <bad").startswith(b"438")
    s.sendall(b"TAKETHIS <x@y>\r\nno header here\r\n\r\n.\r\n")
    assert f.readline().startswith(b"439")
    s.sendall(b"TAKETHIS invalid\r\nFrom: a@b\r\n\r\n.\r\n")
    assert f.readline().startswith(b"439")
    # a good one, streamed, for a group that is not gatewayed: accepted
    ok = f"<{time.time_ns()}.ok@example.net>"
    s.sendall(b"TAKETHIS " + ok.encode() + b"\r\nFrom: a@b\r\n"
              b"Newsgroups: misc.test\r\nPath: peer!x\r\nSubject: s\r\n"
              b"Message-ID: " + ok.encode() + b"\r\nDate: " + date
              + b"\r\n\r\n.body\r\n.\r\n")
    assert f.readline().startswith(b"239")
    assert nntp_cmd(s, f, "QUIT").startswith(b"205")
    s.close()

    # a good one for test.two by IHAVE: mailed to alice
    s, f = nntp_session(port)
    f.readline()
    good = f"<{time.time_ns()}.good@example.net>"
    art = (b"From: Someone <s@example.net>\r\nNewsgroups: test.two\r\n"
           b"Path: peer!not-for-mail\r\nSubject: direct\r\nMessage-ID: "
           + good.encode() + b"\r\nDate: " + date
           + b"\r\n\r\n..stuffed\r\nline\r\n")
    assert ihave(good, art).startswith(b"235")
    assert nntp_cmd(s, f, f"IHAVE {good}").startswith(b"435")
    s.close()
    got = imap_fetch(p, "alice", ("HEADER", "Message-ID", good))
    assert got[0].split(b"\r\n\r\n", 1)[1] == b".stuffed\r\nline\r\n"

    # garbage and an abrupt close in the middle of an article
    s, f = nntp_session(port)
    f.readline()
    s.sendall(b"\xff\xfe\x00garbage\r\n")
    assert f.readline()[:1] == b"5"
    s.sendall(b"IHAVE <abrupt@x>\r\n")
    assert f.readline().startswith(b"335")
    s.sendall(b"From: a@b\r\n")
    s.close()
    time.sleep(0.3)
    s, f = nntp_session(port)
    assert f.readline().startswith(b"200")
    s.close()


def lmtp(p, service="news-gw"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    path = p.inst.dir / "spool/private" / service
    deadline = time.monotonic() + 15
    while not path.exists():
        assert time.monotonic() < deadline, path
        time.sleep(0.05)
    s.connect(str(path))
    f = s.makefile("rwb", buffering=0)
    assert f.readline().startswith(b"220")
    return s, f


def lmtp_cmd(s, f, line):
    s.sendall(line.encode() + b"\r\n")
    out = []
    while True:
        r = f.readline()
        out.append(r)
        if r[3:4] != b"-":
            return b"".join(out)


def test_lmtp_bad_input(instance_factory):
    """The LMTP role: unknown gateway address 550, mail that cannot be an
    article 554, an unreachable news server 451."""
    p = setup_gw(instance_factory, config={"news_gw_server": f"{HOST}:9"})
    s, f = lmtp(p)
    assert lmtp_cmd(s, f, "LHLO x").startswith(b"250")
    assert lmtp_cmd(s, f, "MAIL FROM:<>").startswith(b"250")
    assert lmtp_cmd(s, f, f"RCPT TO:<nobody@{DOMAIN}>").startswith(b"550")
    assert lmtp_cmd(s, f, f"RCPT TO:<test-one@{DOMAIN}>").startswith(b"250")
    assert lmtp_cmd(s, f, "DATA").startswith(b"354")
    # no From: and a null sender
    s.sendall(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert f.readline().startswith(b"554")
    assert lmtp_cmd(s, f, "MAIL FROM:<a@b>").startswith(b"250")
    assert lmtp_cmd(s, f, f"RCPT TO:<test-one@{DOMAIN}>").startswith(b"250")
    assert lmtp_cmd(s, f, "DATA").startswith(b"354")
    s.sendall(b"From: a@b\r\nbroken header\r\n\r\nbody\r\n.\r\n")
    assert f.readline().startswith(b"554")
    assert lmtp_cmd(s, f, "MAIL FROM:<a@b>").startswith(b"250")
    assert lmtp_cmd(s, f, f"RCPT TO:<test-one@{DOMAIN}>").startswith(b"250")
    assert lmtp_cmd(s, f, "DATA").startswith(b"354")
    s.sendall(b"From: a@b\r\nSubject: " + b"s" * 1200 + b"\r\n\r\nb\r\n.\r\n")
    assert f.readline().startswith(b"554")
    assert lmtp_cmd(s, f, "MAIL FROM:<a@b>").startswith(b"250")
    assert lmtp_cmd(s, f, f"RCPT TO:<test-one@{DOMAIN}>").startswith(b"250")
    assert lmtp_cmd(s, f, "DATA").startswith(b"354")
    s.sendall(b"From: a@b\r\nMessage-ID: invalid id\r\n\r\nbody\r\n.\r\n")
    r = f.readline()
    assert r.startswith(b"451 4.4.1"), r   # valid article, server down
    assert lmtp_cmd(s, f, "QUIT").startswith(b"221")
    s.close()


def lmtp_one(p, service, rcpt, raw):
    """One LMTP transaction on a news-gw service; the DATA reply."""
    s, f = lmtp(p, service)
    try:
        assert lmtp_cmd(s, f, "LHLO x").startswith(b"250")
        assert lmtp_cmd(s, f, "MAIL FROM:<a@example.org>").startswith(b"250")
        assert lmtp_cmd(s, f, f"RCPT TO:<{rcpt}>").startswith(b"250")
        assert lmtp_cmd(s, f, "DATA").startswith(b"354")
        s.sendall(raw + b".\r\n")
        return f.readline()
    finally:
        s.close()


@needs_inn
def test_starttls_authinfo(instance_factory, inn_factory, tmp_path):
    """RFC 4642 STARTTLS and RFC 4643 AUTHINFO USER/PASS against INN
    (nnrpd with a self-signed certificate, readers.conf auth with
    ckpasswd -f): the mail is posted inside a verified TLS session by an
    authenticated user. Fail closed: a certificate the CA file does not
    trust, a server without STARTTLS (innd as a peer, IHAVE) and a wrong
    password are temporary failures (451), nothing posted."""
    inn = inn_factory(tls=True, users={"gwuser": "s3cret pass"})
    # without AUTHINFO this INN does not let us post
    with inn.reader(login=False) as n:
        with pytest.raises((inn_fixture.nntplib.NNTPTemporaryError,
                            inn_fixture.nntplib.NNTPPermanentError)):
            n.post([b"From: a@b", b"Newsgroups: test.one", b"Subject: x",
                    b"", b"x"])
    other_cert = tmp_path / "other.pem"
    inn_fixture.make_cert(other_cert, tmp_path / "other.key")
    os_chmod_all(tmp_path)
    p = setup_gw(instance_factory, inn=inn, config={
        "news_gw_starttls": "yes",
        "news_gw_tls_ca_file": str(inn.tls_cert),
        "news_gw_username": "gwuser",
        "news_gw_password": "s3cret pass",
    }, services=(
        f"news-gw-badca unix y - n - - news-gw -o news_gw_role=lmtp "
        f"-o news_gw_tls_ca_file={other_cert}",
        "news-gw-ihave unix y - n - - news-gw -o news_gw_role=lmtp "
        "-o news_gw_post_method=ihave",
        "news-gw-badpw unix y - n - - news-gw -o news_gw_role=lmtp "
        "-o news_gw_password=wrong",
    ))
    mark = p.inst.log_mark()
    raw, msgid = mail("Alice <alice@example.org>", f"test-one@{DOMAIN}",
                      "over tls")
    p.send("alice@localhost", [f"test-one@{DOMAIN}"], raw)
    h = headers_of(inn.wait_article(msgid, timeout=40))
    assert h["message-id"] == [msgid]
    p.inst.wait_for_log(r"Trusted TLS connection established to "
                        rf"{HOST}:{inn.port}: TLSv1\.[23]", start=mark,
                        timeout=20)
    p.wait_queue_empty()

    for service, why in (("news-gw-badca", b"not trusted"),
                         ("news-gw-ihave", b"refused STARTTLS"),
                         ("news-gw-badpw", b"authentication failed")):
        raw, msgid = mail("a@example.org", f"test-one@{DOMAIN}", service)
        r = lmtp_one(p, service, f"test-one@{DOMAIN}", raw)
        assert r.startswith(b"451") and why in r, (service, r)
        assert inn.article(msgid) is None


def os_chmod_all(path):
    import os
    os.chmod(path, 0o755)
    for child in path.iterdir():
        os.chmod(child, 0o644)
