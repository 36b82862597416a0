# SPDX-License-Identifier: MIT
"""DANE for the smtp agent (RFC 7672) against real servers: a signed zone
served by one unbound and validated by a second (tests/dnssec_server.py,
keys and signatures by ldns-keygen/ldns-signzone), a Postern instance
whose smtpd offers STARTTLS with a certificate made here as the
destination, and tests/lmtp_sink.py (SMTP, no STARTTLS) for a server
without TLS.

Every MX host is a 127.0.0.x address; smtp_mx_port makes the receiving
instance's SMTP port the port of every server, and the TLSA records are
at _PORT._tcp.<mx host>. The sender runs smtp_tls_security_level = dane
with smtp_dns_support_level = dnssec and the validator as
smtp_dns_server.
"""

import hashlib
import os
import re
import subprocess
import time

import pytest

from dns_server import UNBOUND
from dnssec_server import LDNS_SIGNZONE, DnssecWorld
from inn_fixture import make_cert
from lmtp_sink import LmtpSink
from pipeline import make_pipeline, start_pipeline
from test_outbound_tls_cache import RESUMED, one_delivery_per_agent, set_maxproc
from test_qmgr import make_queue, start_queue

pytestmark = pytest.mark.skipif(
    not (os.path.exists(UNBOUND) and os.path.exists(LDNS_SIGNZONE)),
    reason="unbound or ldnsutils is not installed")


def spki_sha256(cert):
    """The TLSA 3 1 1 digest of a PEM certificate (SHA-256 of its SPKI)."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout",
                          "-pubkey"], check=True, capture_output=True,
                         timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, capture_output=True,
                         timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def msg(subject):
    return (f"From: sender@example.org\r\nTo: alice\r\n"
            f"Subject: {subject}\r\n\r\nbody of {subject}\r\n").encode()


def wait_log(inst, regex, timeout=30):
    return inst.wait_for_log(regex, timeout=timeout)


def subjects(p):
    out = []
    for uid, _flags, _size in p.ls("alice"):
        for line in p.cat("alice", uid).split(b"\r\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
    return sorted(out)


@pytest.fixture
def dane_world(instance_factory, tmp_path):
    # the destination: Postern's smtpd with STARTTLS and our certificate
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    make_cert(cert, key, cn="mx.dane.test", san="DNS:mx.dane.test")
    os.chmod(tmp_path, 0o755)
    os.chmod(cert.parent, 0o755)
    rcv = make_pipeline(instance_factory, users=("alice",), config={
        "mydestination": "localhost, dane.test, bad.dane.test, "
                         "unusable.dane.test, bogus.dane.test, plain.test",
        "tls_cert_file": str(cert), "tls_key_file": str(key),
        "smtpd_tls_security_level": "may"}, start=False)
    port = rcv.inst.port("SMTP")
    # one smtpd process: every connection can resume a session it made
    set_maxproc(rcv.inst, "smtpd", port, 1)
    start_pipeline(rcv)
    good = spki_sha256(cert)
    wrong = hashlib.sha256(b"not the key").hexdigest()
    tlsa = f"_{port}._tcp"
    signed = [
        # (a) TLSA 3 1 1 of the server's key
        "dane.test. MX 10 mx.dane.test.",
        "mx.dane.test. A 127.0.0.1",
        f"{tlsa}.mx.dane.test. TLSA 3 1 1 {good}",
        # (b) a TLSA record that matches nothing
        "bad.dane.test. MX 10 mx.bad.dane.test.",
        "mx.bad.dane.test. A 127.0.0.1",
        f"{tlsa}.mx.bad.dane.test. TLSA 3 1 1 {wrong}",
        # (d) a server without STARTTLS, with a matching TLSA record
        "nostarttls.dane.test. MX 10 mx.nostarttls.dane.test.",
        "mx.nostarttls.dane.test. A 127.0.0.2",
        f"{tlsa}.mx.nostarttls.dane.test. TLSA 3 1 1 {good}",
        # only PKIX-EE(1): unusable for SMTP -> encrypt, no authentication
        "unusable.dane.test. MX 10 mx.unusable.dane.test.",
        "mx.unusable.dane.test. A 127.0.0.1",
        f"{tlsa}.mx.unusable.dane.test. TLSA 1 1 1 {wrong}",
        # a TLSA RRset with a broken signature: bogus, the validator
        # answers SERVFAIL
        "bogus.dane.test. MX 10 mx.bogus.dane.test.",
        "mx.bogus.dane.test. A 127.0.0.1",
        f"{tlsa}.mx.bogus.dane.test. TLSA 3 1 1 {good}",
    ]
    unsigned = {"plain.test.": [
        # (c) an unsigned zone: its TLSA record does not count
        "plain.test. MX 10 mx.plain.test.",
        "mx.plain.test. A 127.0.0.1",
        f"{tlsa}.mx.plain.test. TLSA 3 1 1 {wrong}",
    ]}
    dns = DnssecWorld(tmp_path / "dns", {"dane.test.": signed}, unsigned,
                      bogus={"dane.test.": [f"{tlsa}.mx.bogus.dane.test."]}
                      ).start()
    nostarttls = LmtpSink(tmp_path / "sink2", host="127.0.0.2", port=port,
                          smtp=True).start()
    senders = []

    def sender(config, before_start=None):
        snd = make_queue(instance_factory, start=False)
        senders.append(snd)
        if before_start is not None:
            before_start(snd.inst)
        settings = {"smtp_dns_server": dns.address,
                    "smtp_mx_port": str(port), "smtp_connect_timeout": "5s",
                    "smtp_dns_support_level": "dnssec"}
        settings.update(config)
        for k, v in settings.items():
            snd.inst.set_config(k, v)
        start_queue(snd)
        return snd

    try:
        yield rcv, sender, nostarttls, port
    finally:
        for snd in senders:
            snd.sink.stop()
        nostarttls.stop()
        dns.stop()


def test_dane(dane_world):
    rcv, sender, nostarttls, port = dane_world
    snd = sender({"smtp_tls_security_level": "dane"})
    log = snd.inst

    # (a) secure MX, A and TLSA 3 1 1 matching: verified and delivered
    qid = snd.inject(["alice@dane.test"], msg("verified"))
    wait_log(log, rf"Verified TLS connection established to mx\.dane\.test"
             rf"\[127\.0\.0\.1\]:{port}: TLSv1\.3")
    wait_log(log, rf"mx\.dane\.test\[127\.0\.0\.1\]:{port}: DANE TLSA 3 1 1 "
             r"\(DANE-EE\) matched the end entity public key at depth 0")
    wait_log(log, rf"{qid}: to=<alice@dane\.test>, relay=mx\.dane\.test"
             rf"\[127\.0\.0\.1\]:{port}, .*status=sent")
    rcv.wait_delivered("alice", 1)

    # (b) secure TLSA that does not match: deferred, never in plaintext
    qid = snd.inject(["alice@bad.dane.test"], msg("mismatch"))
    wait_log(log, rf"Untrusted TLS connection established to mx\.bad\.dane"
             rf"\.test\[127\.0\.0\.1\]:{port}")
    wait_log(log, rf"{qid}: to=<alice@bad\.dane\.test>, .*dsn=4\.7\.5, "
             r"status=deferred \(Server certificate not trusted: no TLSA "
             r"record of mx\.bad\.dane\.test matched")

    # (c) an unsigned zone: its TLSA record is ignored, opportunistic TLS
    qid = snd.inject(["alice@plain.test"], msg("opportunistic"))
    wait_log(log, rf"{qid}: to=<alice@plain\.test>, relay=mx\.plain\.test"
             rf"\[127\.0\.0\.1\]:{port}, .*status=sent")
    assert re.search(rf"Untrusted TLS connection established to mx\.plain"
                     rf"\.test\[127\.0\.0\.1\]:{port}", log.log_text())

    # (d) secure matching TLSA, but the server has no STARTTLS: deferred
    qid = snd.inject(["alice@nostarttls.dane.test"], msg("no starttls"))
    wait_log(log, rf"{qid}: to=<alice@nostarttls\.dane\.test>, .*dsn=4\.7\.4,"
             r" status=deferred \(TLS is required, but was not offered by "
             r"host mx\.nostarttls\.dane\.test")
    assert not any(c.upper().startswith("MAIL") for c in nostarttls.commands)

    # only unusable (PKIX-EE) records: TLS required, no authentication
    qid = snd.inject(["alice@unusable.dane.test"], msg("unusable"))
    wait_log(log, rf"{qid}: to=<alice@unusable\.dane\.test>, .*status=sent")
    # a bogus TLSA RRset (SERVFAIL from the validator): deferred
    qid = snd.inject(["alice@bogus.dane.test"], msg("bogus"))
    wait_log(log, rf"{qid}: to=<alice@bogus\.dane\.test>, .*status=deferred "
             rf"\(TLSA lookup error for _{port}\._tcp\.mx\.bogus\.dane\.test")

    rcv.wait_delivered("alice", 3)
    time.sleep(2)       # a retry of the deferred ones would show up now
    assert subjects(rcv) == ["opportunistic", "unusable", "verified"]


def test_dane_policy_map(dane_world):
    """dane and dane-only per destination (smtp_tls_policy_maps), with
    may as the default level"""
    rcv, sender, nostarttls, port = dane_world
    pol = rcv.inst.dir.parent / "dane_policy"
    pol.write_text("dane.test dane\nplain.test dane-only\n"
                   "unusable.dane.test dane-only\n")
    os.chmod(pol, 0o644)
    snd = sender({"smtp_tls_security_level": "may",
                  "smtp_tls_policy_maps": f"file:{pol}"})
    log = snd.inst
    qid = snd.inject(["alice@dane.test"], msg("by policy"))
    wait_log(log, rf"Verified TLS connection established to mx\.dane\.test"
             rf"\[127\.0\.0\.1\]:{port}")
    wait_log(log, rf"{qid}: to=<alice@dane\.test>, .*status=sent")
    # dane-only: an unsigned zone is not good enough
    qid = snd.inject(["alice@plain.test"], msg("dane-only insecure"))
    wait_log(log, rf"{qid}: to=<alice@plain\.test>, .*status=deferred "
             r"\(TLS is required, but no DNSSEC-validated address records "
             r"of host mx\.plain\.test \(dane-only\)")
    # dane-only: secure but unusable TLSA records
    qid = snd.inject(["alice@unusable.dane.test"], msg("dane-only unusable"))
    wait_log(log, rf"{qid}: to=<alice@unusable\.dane\.test>, .*status="
             r"deferred \(TLS is required, but none of the TLSA records of "
             r"host mx\.unusable\.dane\.test is usable \(dane-only\)")
    rcv.wait_delivered("alice", 1)
    time.sleep(2)
    assert subjects(rcv) == ["by policy"]


def test_dane_session_resumed(dane_world):
    """A DANE-verified TLS session is resumed by another agent process
    (through scache) and still counts as verified, with the server's
    own word that it resumed; it is never offered to a server name with
    other TLSA records, even at the same address and port."""
    rcv, sender, nostarttls, port = dane_world
    snd = sender({"smtp_tls_security_level": "dane",
                  "smtp_connection_cache_time": "0"},
                 before_start=one_delivery_per_agent)
    log = snd.inst
    pids = []
    for n in range(2):
        qid = snd.inject(["alice@dane.test"], msg(f"resume {n}"))
        m = wait_log(log, rf"\[(\d+)\]: {qid}: Verified TLS connection "
                     rf"established to mx\.dane\.test\[127\.0\.0\.1\]:"
                     rf"{port}: (.*)")
        pids.append(m.group(1))
        wait_log(log, rf"{qid}: to=<alice@dane\.test>, .*status=sent")
        if n == 0:
            assert not m.group(2).endswith(RESUMED)
        else:
            assert m.group(2).endswith(RESUMED), m.group(2)
            wait_log(log, rf"\[{pids[1]}\]: {qid}: mx\.dane\.test"
                     rf"\[127\.0\.0\.1\]:{port}: DANE resumed a session "
                     r"whose server chain matched these TLSA records")
    assert pids[0] != pids[1]
    assert sum(1 for line in rcv.inst.log_text().splitlines()
               if "TLS connection established from" in line
               and line.endswith(RESUMED)) == 1
    # the same server under another name, whose TLSA record matches
    # nothing: a full handshake (no session offered), and deferred
    qid = snd.inject(["alice@bad.dane.test"], msg("other records"))
    m = wait_log(log, rf"{qid}: Untrusted TLS connection established to "
                 rf"mx\.bad\.dane\.test\[127\.0\.0\.1\]:{port}: (.*)")
    assert not m.group(1).endswith(RESUMED)
    wait_log(log, rf"{qid}: to=<alice@bad\.dane\.test>, .*status=deferred")
    rcv.wait_delivered("alice", 2)
