# SPDX-License-Identifier: MIT
"""The smtp agent outward: MX resolution against a real DNS server
(unbound on loopback, tests/dns_server.py), next-host fallback, null MX,
per-recipient results, STARTTLS policy and 8BITMIME downgrade against
real servers (tests/lmtp_sink.py in SMTP mode, Postfix's smtp-sink).

MX hosts of the test zone are 127.0.0.x addresses; every server listens
on the same port, which smtp_mx_port (a test option) makes the port of
every server found by MX or address lookup.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dns_server import DnsServer, UNBOUND
from lmtp_sink import LmtpSink
from test_qmgr import MSG, free_port, make_queue, start_queue

SMTP_SINK = "/usr/sbin/smtp-sink"

pytestmark = pytest.mark.skipif(not os.path.exists(UNBOUND),
                                reason="unbound is not installed")

ZONE = [
    # fallback: a (pref 10) refuses connections, b (pref 20) answers;
    # b has an AAAA (::1, nothing listening) tried before its A
    "mx.test. MX 10 a.mx.test.",
    "mx.test. MX 20 b.mx.test.",
    "a.mx.test. A 127.0.0.2",
    "b.mx.test. AAAA ::1",
    "b.mx.test. A 127.0.0.3",
    # preference order: lo (5) before hi (50), both up
    "pref.test. MX 50 hi.pref.test.",
    "pref.test. MX 5 lo.pref.test.",
    "lo.pref.test. A 127.0.0.4",
    "hi.pref.test. A 127.0.0.5",
    # no MX: the domain's own address (implicit MX)
    "nomx.test. A 127.0.0.6",
    # RFC 7505 null MX
    "null.test. MX 0 .",
    # STARTTLS required by policy, server without it
    "enc.test. MX 10 mx.enc.test.",
    "mx.enc.test. A 127.0.0.7",
    # smtp-sink without 8BITMIME
    "sink.test. MX 10 mx.sink.test.",
    "mx.sink.test. A 127.0.0.8",
]

MSG8 = (b"From: sender@example.org\r\n"
        b"To: x@sink.test\r\n"
        b"Subject: 8bit\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln = 100%\r\n"
        b".dot line \r\n")


def wait_file_text(path, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_bytes()
            if re.search(pattern, text):
                return text
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in {path}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outbound")
    dns = DnsServer(folder / "dns", ZONE).start()
    port = free_port()
    sinks = {ip: LmtpSink(folder / ip, host=ip, port=port, smtp=True).start()
             for ip in ("127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6",
                        "127.0.0.7")}
    yield dns, port, sinks, folder
    for s in sinks.values():
        s.stop()
    dns.stop()


def outbound_queue(instance_factory, world, extra=None):
    dns, port, sinks, folder = world
    q = make_queue(instance_factory, start=False)
    pol = q.inst.dir / "tls_policy"
    pol.write_text("enc.test encrypt\n")
    os.chmod(pol, 0o644)
    cfg = {"smtp_dns_server": dns.address, "smtp_mx_port": str(port),
           "smtp_connect_timeout": "5s",
           "smtp_tls_policy_maps": f"file:{pol}"}
    cfg.update(extra or {})
    for k, v in cfg.items():
        q.inst.set_config(k, v)
    start_queue(q)
    return q


def test_mx_routing(instance_factory, world):
    dns, port, sinks, folder = world
    q = outbound_queue(instance_factory, world)
    try:
        sinks["127.0.0.4"].rcpt_replies["later@pref.test"] = \
            ["450 4.2.0 try later", "250 2.1.5 ok now"]
        qid = q.inject(["r1@mx.test", "ok@pref.test", "later@pref.test",
                        "r3@nomx.test"], MSG)
        # next host: a.mx.test refuses, b.mx.test [::1] refuses, 127.0.0.3 takes it
        sinks["127.0.0.3"].wait_for(
            lambda: len(sinks["127.0.0.3"].delivered_to("r1@mx.test")) == 1)
        log = q.inst.log_text()
        assert f"connect to a.mx.test[127.0.0.2]:{port}" in log
        assert f"connect to b.mx.test[::1]:{port}" in log
        q.inst.wait_for_log(rf"{qid}: to=<r1@mx.test>, relay=b\.mx\.test"
                            rf"\[127\.0\.0\.3\]:{port}, .*status=sent")
        # preference order; per-recipient 250 and 450 in one transaction
        lo, hi = sinks["127.0.0.4"], sinks["127.0.0.5"]
        lo.wait_for(lambda: len(lo.delivered_to("ok@pref.test")) == 1)
        assert hi.delivered_to("ok@pref.test") == []
        q.inst.wait_for_log(rf"{qid}: to=<later@pref.test>, relay=lo\.pref"
                            r"\.test.*status=deferred \(host lo\.pref\.test"
                            r".* said: 450 4\.2\.0 try later \(in reply to "
                            r"RCPT TO command\)")
        # implicit MX
        s6 = sinks["127.0.0.6"]
        s6.wait_for(lambda: len(s6.delivered_to("r3@nomx.test")) == 1)
        # the deferred one goes on the retry
        q.wait_removed(qid, timeout=30)
        assert len(lo.delivered_to("later@pref.test")) == 1
        assert len(lo.delivered_to("ok@pref.test")) == 1
        # null MX and a domain that does not exist bounce at once
        qid = q.inject(["x@null.test", "y@nxdomain.test"], MSG, sender="")
        q.inst.wait_for_log(rf"{qid}: to=<x@null.test>, .*dsn=5\.1\.10, "
                            r"status=bounced \(Domain null\.test does not "
                            r"accept mail \(nullMX\)")
        q.inst.wait_for_log(rf"{qid}: to=<y@nxdomain.test>, .*dsn=5\.4\.4, "
                            r"status=bounced \(Host or domain name not found")
        # encrypt: a server without STARTTLS is refused, mail deferred
        qid = q.inject(["s@enc.test"], MSG)
        q.inst.wait_for_log(rf"{qid}: to=<s@enc.test>, .*dsn=4\.7\.4, "
                            r"status=deferred \(TLS is required, but was "
                            r"not offered by host mx\.enc\.test")
        assert sinks["127.0.0.7"].delivered_to("s@enc.test") == []
        assert not any(c.startswith("MAIL") for c in sinks["127.0.0.7"].commands)
    finally:
        q.sink.stop()


@pytest.mark.skipif(not os.path.exists(SMTP_SINK), reason="no smtp-sink")
def test_8bitmime_downgrade_to_smtp_sink(instance_factory, world):
    dns, port, sinks, folder = world
    # smtp-sink runs as nobody: a folder it can reach
    dump_dir = Path("/tmp") / f"postern-smtp-sink-{os.getpid()}"
    dump_dir.mkdir(exist_ok=True)
    os.chmod(dump_dir, 0o777)
    dump = dump_dir / "dump"
    sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-8", "-D", str(dump),
                             f"127.0.0.8:{port}", "10"])
    q = outbound_queue(instance_factory, world)
    try:
        time.sleep(0.3)
        qid = q.inject(["x@sink.test"], MSG8, args=["-b", "8BITMIME"])
        q.wait_removed(qid)
        text = wait_file_text(dump, rb"Content-Transfer-Encoding: "
                              rb"quoted-printable")
        text = text.replace(b"\r\n", b"\n")     # smtp-sink dumps with LF
        head, body = text.split(b"\n\n", 1)
        assert b"X-Mail-Args: <sender@example.org>\n" in head  # no BODY=
        assert b"Content-Transfer-Encoding: 8bit" not in head
        assert body.startswith(b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln =3D 100%\n"
                               b".dot line=20\n")
        assert not re.search(rb"[\x80-\xff]", text)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=5)
        q.sink.stop()
        shutil.rmtree(dump_dir, ignore_errors=True)
