# SPDX-License-Identifier: MIT
"""AUTHINFO (RFC 4643) on news-gw's NNTP feed server.

No peer is admitted by address here (news_gw_peers is empty): peers
log in as accounts of the instance's user database that
news_gw_peer_maps lists, "feedpeer" from anywhere and "farpeer" only
from 192.0.2.0/24 (address and password both needed; tests connect
from 127.0.0.1). alice has a password but is no feeding peer.

A real INN's innfeed, configured with username/password in its
innfeed.conf peer block, logs in with AUTHINFO USER/PASS and feeds an
article posted to INN; the mail reaches alice (IMAP). innfeed has no
TLS, so it feeds a second feed service with
news_gw_feed_tls_auth_only=no. Python's nntplib logs in after STARTTLS
on the default service; raw sockets check the refusals: 480 before
login, 483 for passwords outside TLS, 482 for PASS before USER, 481 for
a wrong password (after lib/auth's failed-login delay), for a
non-peer and for a peer from the wrong address, 502 after login, and
AUTHINFO SASL PLAIN (libsasl2) inside TLS.
"""

import base64
import time
import warnings

import pytest

from conftest import HOST
import inn_fixture
from inn_fixture import Inn

from test_newsgw import (article_lines, imap_fetch, needs_inn, nntp_cmd,
                         nntp_session, setup_gw)
from test_newsgw_tls import article, caps, tls_ctx, wait_listening

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

USERS = ("alice", "bob", "carol", "feedpeer", "farpeer")
DELAY = 0.4     # auth_failure_delay_ms / 1000


def setup_auth_gw(instance_factory, inst=None, plain_port=None):
    """The gateway with AUTHINFO peers; plain_port: a feed service that
    allows passwords without TLS (for innfeed)."""
    inst = inst or instance_factory()
    d = inst.dir
    (d / "feedpeers").write_text("feedpeer 0.0.0.0/0, ::/0\n"
                                 "farpeer 192.0.2.0/24\n")
    services = ()
    if plain_port is not None:
        services = (f"{HOST}:{plain_port} inet n - n - - news-gw "
                    "-o news_gw_role=feed -o news_gw_feed_tls_auth_only=no",)
    p = setup_gw(lambda: inst, users=USERS, services=services, config={
        "news_gw_peers": "",
        "news_gw_peer_maps": f"file:{d}/feedpeers",
        "auth_failure_delay_ms": str(int(DELAY * 1000)),
        "auth_failure_delay_max_ms": str(int(DELAY * 2000)),
    })
    if plain_port is not None:
        wait_listening(plain_port)
    return p


def readline(f):
    line = f.readline()
    assert line, "connection closed"
    return line


@needs_inn
def test_innfeed_authinfo_feeds(instance_factory):
    """INN's innfeed logs in as feedpeer and feeds an article: mailed."""
    inst = instance_factory()
    plain_port = inn_fixture.free_port()
    inn = Inn(feed_port=plain_port, feed_groups="test.*",
              feed_auth=("feedpeer", "pw"))
    try:
        p = setup_auth_gw(instance_factory, inst=inst, plain_port=plain_port)
        mark = p.inst.log_mark()
        inn.start()
        amid = f"<{time.time_ns()}.innfeed-auth@example.net>"
        inn.post(article_lines("Poster <poster@example.net>", "test.two",
                               "fed after AUTHINFO", amid))
        got = imap_fetch(p, "alice", ("HEADER", "Message-ID", amid),
                         timeout=60)
        assert len(got) == 1 and b"Subject: fed after AUTHINFO" in got[0]
        # the Received: field names the peer account
        assert b"(peer=feedpeer) by " in got[0]
        p.inst.wait_for_log(r"AUTHINFO from \[127\.0\.0\.1\]:\d+: "
                            r"peer=feedpeer, method=USER", start=mark)
        p.inst.wait_for_log(
            rf"message-id={amid} from \[127\.0\.0\.1\]:\d+ \(peer=feedpeer\)"
            r".*status=sent \(mailed\)", start=mark)
    finally:
        inn.cleanup()


def test_feed_authinfo_refusals(instance_factory):
    """Raw NNTP: the RFC 4643 codes for every refusal."""
    p = setup_auth_gw(instance_factory, plain_port=inn_fixture.free_port())
    port = p.inst.port("NNTP")
    mark = p.inst.log_mark()

    # ---- the default service: not admitted by address, passwords
    # only inside TLS
    s, f = nntp_session(port)
    assert readline(f).startswith(b"200")
    c = caps(s, f)
    assert b"STARTTLS" in c
    assert not any(l.startswith(b"AUTHINFO") for l in c), c
    mid = f"<{time.time_ns()}.unauth@example.net>"
    assert nntp_cmd(s, f, f"IHAVE {mid}").startswith(b"480")
    assert nntp_cmd(s, f, "MODE STREAM").startswith(b"480")
    assert nntp_cmd(s, f, f"CHECK {mid}").startswith(b"480")
    s.sendall(f"TAKETHIS {mid}\r\n".encode() +
              b"\r\n".join(article(mid)) + b"\r\n.\r\n")
    assert readline(f).startswith(b"480")      # the article was read
    assert nntp_cmd(s, f, "AUTHINFO USER feedpeer").startswith(b"483")
    assert nntp_cmd(s, f, "AUTHINFO PASS pw").startswith(b"483")
    ir = base64.b64encode(b"\0feedpeer\0pw").decode()
    assert nntp_cmd(s, f, f"AUTHINFO SASL PLAIN {ir}").startswith(b"483")
    assert nntp_cmd(s, f, "AUTHINFO FOO").startswith(b"501")
    assert nntp_cmd(s, f, "DATE").startswith(b"111")
    assert nntp_cmd(s, f, "QUIT").startswith(b"205")
    s.close()

    # ---- inside TLS: AUTHINFO USER and SASL are offered
    s, f = nntp_session(port)
    assert readline(f).startswith(b"200")
    assert nntp_cmd(s, f, "STARTTLS").startswith(b"382")
    t = tls_ctx().wrap_socket(s)
    tf = t.makefile("rwb", buffering=0)
    c = caps(t, tf)
    authinfo = [l for l in c if l.startswith(b"AUTHINFO")]
    assert authinfo and b"USER" in authinfo[0].split(), c
    if b"SASL" in authinfo[0].split():
        sasl = [l for l in c if l.startswith(b"SASL ")]
        assert sasl and b"PLAIN" in sasl[0].split(), c
    # PASS before USER: out of sequence
    assert nntp_cmd(t, tf, "AUTHINFO PASS pw").startswith(b"482")
    # a wrong password: 481, after the failed-login delay
    assert nntp_cmd(t, tf, "AUTHINFO USER feedpeer").startswith(b"381")
    t0 = time.monotonic()
    assert nntp_cmd(t, tf, "AUTHINFO PASS wrong").startswith(b"481")
    assert time.monotonic() - t0 >= DELAY * 0.9
    # the password is not remembered after a failure: PASS alone is 482
    assert nntp_cmd(t, tf, "AUTHINFO PASS pw").startswith(b"482")
    # right password, but alice is not a feeding peer
    assert nntp_cmd(t, tf, "AUTHINFO USER alice").startswith(b"381")
    assert nntp_cmd(t, tf, "AUTHINFO PASS pw").startswith(b"481")
    # right password, but farpeer may feed only from 192.0.2.0/24
    assert nntp_cmd(t, tf, "AUTHINFO USER farpeer").startswith(b"381")
    assert nntp_cmd(t, tf, "AUTHINFO PASS pw").startswith(b"481")
    assert nntp_cmd(t, tf, f"IHAVE {mid}").startswith(b"480")
    # feedpeer (the user name in any case, as lib/auth folds it)
    assert nntp_cmd(t, tf, "AUTHINFO USER FeedPeer").startswith(b"381")
    assert nntp_cmd(t, tf, "AUTHINFO PASS pw").startswith(b"281")
    assert nntp_cmd(t, tf, "AUTHINFO USER feedpeer").startswith(b"502")
    assert nntp_cmd(t, tf, "AUTHINFO SASL PLAIN").startswith(b"502")
    c = caps(t, tf)
    assert not any(l.startswith((b"AUTHINFO", b"SASL ")) for l in c), c
    assert b"IHAVE" in c and b"STREAMING" in c
    assert nntp_cmd(t, tf, f"IHAVE {mid}").startswith(b"335")
    t.sendall(b"\r\n".join(article(mid, subject="after authinfo")) +
              b"\r\n.\r\n")
    assert readline(tf).startswith(b"235")
    assert nntp_cmd(t, tf, "QUIT").startswith(b"205")
    t.close()
    got = imap_fetch(p, "alice", ("HEADER", "Message-ID", mid))
    assert b"Subject: after authinfo" in got[0]

    text = p.inst.log_text()[mark:]
    assert "AUTHINFO from [127.0.0.1]" in text
    for pattern in (r"AUTHINFO from \[127\.0\.0\.1\]:\d+ failed: "
                    r"user=feedpeer, method=USER",
                    r"AUTHINFO from \[127\.0\.0\.1\]:\d+ refused: "
                    r"user=alice, method=USER: not a feeding peer",
                    r"AUTHINFO from \[127\.0\.0\.1\]:\d+ refused: "
                    r"user=farpeer, method=USER: not allowed from this "
                    r"address",
                    r"AUTHINFO from \[127\.0\.0\.1\]:\d+: peer=feedpeer, "
                    r"method=USER, tls",
                    r"connect from \[127\.0\.0\.1\]:\d+ \(not in "
                    r"news_gw_peers: AUTHINFO required\)"):
        p.inst.wait_for_log(pattern, start=mark)


def test_feed_authinfo_nntplib_and_sasl(instance_factory):
    """nntplib: STARTTLS then login (AUTHINFO USER/PASS), then IHAVE;
    AUTHINFO SASL PLAIN inside TLS (libsasl2), a cancelled exchange,
    an unknown mechanism; passwords without TLS where allowed; too
    many failures end the connection."""
    plain_port = inn_fixture.free_port()
    p = setup_auth_gw(instance_factory, plain_port=plain_port)
    port = p.inst.port("NNTP")
    mark = p.inst.log_mark()

    n = nntplib.NNTP(HOST, port, timeout=30)
    n.starttls(tls_ctx())
    n.login("feedpeer", "pw", usenetrc=False)
    mid = f"<{time.time_ns()}.nntplib-auth@example.net>"
    assert n.ihave(mid, article(mid, subject="nntplib login")).startswith(
        "235")
    n.quit()
    imap_fetch(p, "alice", ("HEADER", "Message-ID", mid))

    # AUTHINFO SASL inside TLS
    s, f = nntp_session(port)
    assert readline(f).startswith(b"200")
    assert nntp_cmd(s, f, "STARTTLS").startswith(b"382")
    t = tls_ctx().wrap_socket(s)
    tf = t.makefile("rwb", buffering=0)
    c = caps(t, tf)
    if not any(l.startswith(b"SASL ") and b"PLAIN" in l.split() for l in c):
        pytest.fail(f"no SASL PLAIN inside TLS (libsasl2 set-up?): {c}")
    assert nntp_cmd(t, tf, "AUTHINFO SASL X-UNKNOWN").startswith(b"503")
    # no initial response: an empty challenge, then "*" cancels
    assert nntp_cmd(t, tf, "AUTHINFO SASL PLAIN").startswith(b"383")
    assert nntp_cmd(t, tf, "*").startswith(b"481")
    assert nntp_cmd(t, tf, "AUTHINFO SASL PLAIN !!!!").startswith(b"504")
    bad = base64.b64encode(b"\0feedpeer\0nope").decode()
    assert nntp_cmd(t, tf, f"AUTHINFO SASL PLAIN {bad}").startswith(b"481")
    # the response after an empty 383
    assert nntp_cmd(t, tf, "AUTHINFO SASL PLAIN").startswith(b"383")
    good = base64.b64encode(b"\0feedpeer\0pw").decode()
    assert nntp_cmd(t, tf, good).startswith(b"281")
    mid2 = f"<{time.time_ns()}.sasl-auth@example.net>"
    assert nntp_cmd(t, tf, "MODE STREAM").startswith(b"203")
    assert nntp_cmd(t, tf, f"CHECK {mid2}").startswith(b"238")
    t.sendall(f"TAKETHIS {mid2}\r\n".encode() +
              b"\r\n".join(article(mid2, subject="sasl plain")) +
              b"\r\n.\r\n")
    assert readline(tf).startswith(b"239")
    assert nntp_cmd(t, tf, "QUIT").startswith(b"205")
    t.close()
    imap_fetch(p, "alice", ("HEADER", "Message-ID", mid2))
    p.inst.wait_for_log(r"AUTHINFO from \[127\.0\.0\.1\]:\d+: "
                        r"peer=feedpeer, method=PLAIN, tls", start=mark)

    # the service that allows passwords outside TLS
    s, f = nntp_session(plain_port)
    assert readline(f).startswith(b"200")
    c = caps(s, f)
    assert any(l.startswith(b"AUTHINFO") and b"USER" in l.split()
               for l in c), c
    assert nntp_cmd(s, f, "AUTHINFO USER feedpeer").startswith(b"381")
    assert nntp_cmd(s, f, "AUTHINFO PASS pw").startswith(b"281")
    # no STARTTLS after AUTHINFO (RFC 4642 2.2.2)
    c = caps(s, f)
    assert not any(l.startswith((b"AUTHINFO", b"STARTTLS")) for l in c), c
    assert nntp_cmd(s, f, "STARTTLS").startswith(b"502")
    assert nntp_cmd(s, f, "MODE STREAM").startswith(b"203")
    assert nntp_cmd(s, f, "QUIT").startswith(b"205")
    s.close()
    p.inst.wait_for_log(r"(?m)AUTHINFO from \[127\.0\.0\.1\]:\d+: "
                        r"peer=feedpeer, method=USER$", start=mark)

    s, f = nntp_session(plain_port)
    assert readline(f).startswith(b"200")
    # too many failures: the connection ends (400)
    for _ in range(5):
        assert nntp_cmd(s, f, "AUTHINFO USER nobody").startswith(b"381")
        assert nntp_cmd(s, f, "AUTHINFO PASS x").startswith(b"481")
    assert readline(f).startswith(b"400")
    assert f.readline() == b""
    s.close()
    p.inst.wait_for_log(r"too many AUTHINFO failures", start=mark)
