# SPDX-License-Identifier: MIT
"""TLS on news-gw's NNTP feed server (RFC 4642), with real clients.

Python's nntplib (STARTTLS, then IHAVE inside TLS; NNTP_SSL for
implicit TLS) and openssl s_client -starttls nntp against the feed
services of one instance: the default one (STARTTLS offered, the
instance's certificate), an implicit-TLS one
(news_gw_feed_tls_wrappermode), one that requires TLS
(news_gw_feed_tls_security_level=encrypt) and one without TLS (none).
The pipelining rule: a command sent after STARTTLS, before the
handshake, is discarded, never executed.
"""

import email.utils
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from conftest import HOST
import inn_fixture

from test_newsgw import IDENTITY, imap_fetch, nntp_cmd, nntp_session, setup_gw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def article(msgid, group="test.two", subject="over tls"):
    date = email.utils.formatdate(usegmt=True)
    return [b"From: Someone <s@example.net>",
            f"Newsgroups: {group}".encode(), b"Path: peer!not-for-mail",
            f"Subject: {subject}".encode(), f"Message-ID: {msgid}".encode(),
            f"Date: {date}".encode(), b"", b"body line", b".dotted"]


def caps(s, f):
    assert nntp_cmd(s, f, "CAPABILITIES").startswith(b"101")
    out = []
    while True:
        line = f.readline()
        assert line, "connection closed in the capability list"
        if line == b".\r\n":
            return out
        out.append(line.strip())


def wait_listening(port, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing on port {port}"
            time.sleep(0.1)


def gw_with_tls_services(instance_factory):
    ports = {k: inn_fixture.free_port() for k in ("nntps", "encrypt", "none")}
    feed = "news-gw -o news_gw_role=feed"
    p = setup_gw(instance_factory, services=(
        f"{HOST}:{ports['nntps']} inet n - n - - {feed} "
        "-o news_gw_feed_tls_wrappermode=yes",
        f"{HOST}:{ports['encrypt']} inet n - n - - {feed} "
        "-o news_gw_feed_tls_security_level=encrypt",
        f"{HOST}:{ports['none']} inet n - n - - {feed} "
        "-o news_gw_feed_tls_security_level=none",
    ))
    for port in ports.values():
        wait_listening(port)
    return p, ports


def test_feed_starttls_implicit_tls_and_levels(instance_factory):
    p, ports = gw_with_tls_services(instance_factory)
    port = p.inst.port("NNTP")
    mark = p.inst.log_mark()

    # nntplib: STARTTLS listed before TLS only; IHAVE inside TLS is mailed
    n = nntplib.NNTP(HOST, port, timeout=20)
    assert "STARTTLS" in n.getcapabilities()
    n.starttls(tls_ctx())
    assert n.sock.version() in ("TLSv1.2", "TLSv1.3")
    c = n.getcapabilities()          # asked again after STARTTLS
    assert "STARTTLS" not in c and "IHAVE" in c and "STREAMING" in c
    mid = f"<{time.time_ns()}.starttls@example.net>"
    assert n.ihave(mid, article(mid)).startswith("235")
    with pytest.raises(nntplib.NNTPTemporaryError) as e:
        n.ihave(mid, article(mid))   # now in the history: not wanted
    assert str(e.value).startswith("435")
    n.quit()
    got = imap_fetch(p, "alice", ("HEADER", "Message-ID", mid))
    assert b"Subject: over tls" in got[0]
    assert got[0].split(b"\r\n\r\n", 1)[1] == b"body line\r\n.dotted\r\n"
    p.inst.wait_for_log(r"STARTTLS from \[127\.0\.0\.1\]:\d+: TLSv1\.[23] "
                        r"with cipher", start=mark)

    # implicit TLS (NNTPS): the greeting comes inside TLS, no STARTTLS
    n = nntplib.NNTP_SSL(HOST, ports["nntps"], ssl_context=tls_ctx(),
                         timeout=20)
    assert n.getwelcome().startswith("200 " + IDENTITY)
    c = n.getcapabilities()
    assert "STARTTLS" not in c and "IHAVE" in c
    mid2 = f"<{time.time_ns()}.nntps@example.net>"
    assert n.ihave(mid2, article(mid2, subject="nntps")).startswith("235")
    n.quit()
    imap_fetch(p, "alice", ("HEADER", "Message-ID", mid2))
    # a plaintext client on the NNTPS port gets no greeting
    s, f = nntp_session(ports["nntps"])
    s.sendall(b"CAPABILITIES\r\n")
    try:
        first = f.readline()     # an alert, or nothing
    except ConnectionResetError:
        first = b""
    assert not first.startswith(b"200")
    s.close()
    p.inst.wait_for_log(r"implicit TLS from \[127\.0\.0\.1\]:\d+ failed",
                        start=mark)

    # encrypt: no feeding outside TLS (483), STARTTLS then IHAVE
    s, f = nntp_session(ports["encrypt"])
    assert f.readline().startswith(b"200")
    c = caps(s, f)
    assert b"STARTTLS" in c and b"IHAVE" not in c
    assert nntp_cmd(s, f, "IHAVE <x@y>").startswith(b"483")
    assert nntp_cmd(s, f, "MODE STREAM").startswith(b"483")
    assert nntp_cmd(s, f, "CHECK <x@y>").startswith(b"483")
    assert nntp_cmd(s, f, "STARTTLS").startswith(b"382")
    t = tls_ctx().wrap_socket(s)
    tf = t.makefile("rwb", buffering=0)
    c = caps(t, tf)
    assert b"IHAVE" in c and b"STARTTLS" not in c
    assert nntp_cmd(t, tf, "STARTTLS").startswith(b"502")
    assert nntp_cmd(t, tf, "MODE STREAM").startswith(b"203")
    mid3 = f"<{time.time_ns()}.encrypt@example.net>"
    assert nntp_cmd(t, tf, f"CHECK {mid3}").startswith(b"238")
    t.sendall(f"TAKETHIS {mid3}\r\n".encode() +
              b"\r\n".join(article(mid3, group="misc.test")) + b"\r\n.\r\n")
    assert tf.readline().startswith(b"239 " + mid3.encode())
    assert nntp_cmd(t, tf, "QUIT").startswith(b"205")
    t.close()

    # none: no STARTTLS at all
    s, f = nntp_session(ports["none"])
    assert f.readline().startswith(b"200")
    c = caps(s, f)
    assert b"STARTTLS" not in c and b"IHAVE" in c
    assert nntp_cmd(s, f, "STARTTLS").startswith(b"580")
    assert nntp_cmd(s, f, "STARTTLS now").startswith(b"501")
    assert nntp_cmd(s, f, "QUIT").startswith(b"205")
    s.close()


def test_feed_starttls_discards_pipelined_commands(instance_factory):
    """A command pipelined after STARTTLS (before the handshake) is
    dropped: the first reply inside TLS answers the first command sent
    inside TLS, and the pipelined IHAVE never reached the history."""
    p = setup_gw(instance_factory)
    port = p.inst.port("NNTP")
    mark = p.inst.log_mark()
    injected = f"<{time.time_ns()}.injected@example.net>"
    s, f = nntp_session(port)
    assert f.readline().startswith(b"200")
    s.sendall(f"STARTTLS\r\nIHAVE {injected}\r\nQUIT\r\n".encode())
    assert f.readline().startswith(b"382")
    t = tls_ctx().wrap_socket(s)
    tf = t.makefile("rwb", buffering=0)
    assert nntp_cmd(t, tf, "DATE").startswith(b"111")
    # had the IHAVE run, the ID would be offered (335), not refused
    assert nntp_cmd(t, tf, f"IHAVE {injected}").startswith(b"335")
    t.sendall(b"\r\n".join(article(injected, group="misc.test")) +
              b"\r\n.\r\n")
    assert tf.readline().startswith(b"235")
    assert nntp_cmd(t, tf, "QUIT").startswith(b"205")
    t.close()
    p.inst.wait_for_log(r"disconnect from .*accepted=1 ", start=mark)
    text = p.inst.log_text()[mark:]
    assert text.count(f"message-id={injected}") == 1


def test_feed_openssl_s_client_starttls(instance_factory):
    """openssl s_client -starttls nntp: it reads the greeting, finds
    STARTTLS in CAPABILITIES, gets 382, handshakes; then our commands
    run inside TLS and CAPABILITIES no longer lists STARTTLS."""
    p = setup_gw(instance_factory)
    port = p.inst.port("NNTP")
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{port}",
         "-starttls", "nntp", "-crlf", "-quiet", "-verify_quiet"],
        input=b"CAPABILITIES\nDATE\nQUIT\n", capture_output=True,
        timeout=60)
    out = r.stdout.decode(errors="replace")
    assert "101 Capability list" in out, (out, r.stderr)
    inside = out[out.index("101 Capability list"):]
    assert "STARTTLS" not in inside.split("\r\n.\r\n")[0]
    assert "\r\nIHAVE\r\n" in inside
    assert "\r\n111 " in inside and "\r\n205 Bye" in inside
    p.inst.wait_for_log(r"STARTTLS from \[127\.0\.0\.1\]:\d+: TLSv1\.3")
