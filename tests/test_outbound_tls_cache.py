# SPDX-License-Identifier: MIT
"""TLS client sessions shared between smtp agent processes (through
scache(8), as Postfix's smtp_tls_session_cache through tlsmgr).

The destination is a second Postern instance whose smtpd offers STARTTLS
with a certificate made here (for 127.0.0.1). Its smtpd runs one process
(maxproc 1), so every connection meets the same ticket keys and session
cache, and it logs ", session resumed" on the "TLS connection
established" line of a resumed handshake: the server's own evidence.

The sender runs each smtp agent for one delivery only (max_use=1) and
with connection caching off, so every message is a new process, a new
connection and a new handshake: a session can only be resumed through
the shared cache. The TLS level of the destination comes from a policy
table the test rewrites between messages (each new agent reads it
afresh), and a session made under one level is never offered under
another. kill -9 of scache loses nothing but the cache.
"""

import os
import re
import signal
import time

from inn_fixture import make_cert
from pipeline import make_pipeline, start_pipeline
from test_outbound_scache import processes
from test_qmgr import make_queue, start_queue

RESUMED = ", session resumed"


def msg(n):
    return (f"From: sender@example.org\r\nTo: alice@rcv.test\r\n"
            f"Subject: message {n}\r\n\r\nbody {n}\r\n").encode()


def set_maxproc(inst, command, port, maxproc):
    """Set maxproc of the inet service of command on port."""
    path = inst.dir / "master.conf"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if len(f) >= 8 and f[1] == "inet" and \
                f[0].endswith(f":{port}") and f[7] == command:
            f[6] = str(maxproc)
            lines[i] = " ".join(f)
            break
    else:
        raise AssertionError(f"no {command} service on port {port}")
    path.write_text("\n".join(lines) + "\n")


def one_delivery_per_agent(inst):
    """The smtp service's agents exit after one delivery."""
    path = inst.dir / "master.conf"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if f[:2] == ["smtp", "unix"] and len(f) >= 8 and f[7] == "smtp":
            lines[i] = line + " -o max_use=1"
            break
    else:
        raise AssertionError("no smtp service")
    path.write_text("\n".join(lines) + "\n")


class World:
    def __init__(self, instance_factory, tmp_path, sender_config=None):
        cert = tmp_path / "tls" / "cert.pem"
        key = tmp_path / "tls" / "key.pem"
        make_cert(cert, key, cn="rcv.test", san="IP:127.0.0.1,DNS:rcv.test")
        os.chmod(tmp_path, 0o755)
        os.chmod(cert.parent, 0o755)
        self.rcv = make_pipeline(instance_factory, users=("alice",), config={
            "mydestination": "localhost, rcv.test",
            "tls_cert_file": str(cert), "tls_key_file": str(key),
            "smtpd_tls_security_level": "may"}, start=False)
        self.port = self.rcv.inst.port("SMTP")
        set_maxproc(self.rcv.inst, "smtpd", self.port, 1)
        start_pipeline(self.rcv)

        self.snd = make_queue(instance_factory, start=False)
        inst = self.snd.inst
        self.policy = inst.dir / "tls_policy"
        self.set_level("encrypt")
        tm = inst.dir / "transport"
        tm.write_text(f"rcv.test smtp:[127.0.0.1]:{self.port}\n")
        os.chmod(tm, 0o644)
        config = {
            "transport_maps": f"file:{tm}",
            "smtp_tls_policy_maps": f"file:{self.policy}",
            "smtp_tls_CAfile": str(cert),
            "smtp_connection_cache_time": "0",
            "smtp_connect_timeout": "5s",
        }
        config.update(sender_config or {})
        for k, v in config.items():
            inst.set_config(k, v)
        one_delivery_per_agent(inst)
        start_queue(self.snd)
        self.sent = 0

    def set_level(self, level):
        self.policy.write_text(f"[127.0.0.1]:{self.port} {level}\n")
        os.chmod(self.policy, 0o644)

    def send(self):
        """One message; the sending agent's pid, its TLS line (trust
        word and the text after "established to ..."), and the number
        of resumed handshakes the receiving smtpd has logged so far."""
        self.sent += 1
        qid = self.snd.inject(["alice@rcv.test"], msg(self.sent))
        self.snd.wait_removed(qid, timeout=30)
        self.rcv.wait_delivered("alice", self.sent)
        m = self.snd.inst.wait_for_log(
            rf"\[(\d+)\]: {qid}: (\w+) TLS connection established to "
            rf"127\.0\.0\.1\[127\.0\.0\.1\]:{self.port}: (.*)", timeout=10)
        self.snd.inst.wait_for_log(rf"{qid}: to=<alice@rcv\.test>, "
                                   r".*status=sent", timeout=10)
        return int(m.group(1)), m.group(2), m.group(3), self.resumed_at_rcv()

    def resumed_at_rcv(self):
        return sum(1 for line in self.rcv.inst.log_text().splitlines()
                   if "TLS connection established from" in line
                   and line.endswith(RESUMED))

    def stop(self):
        self.snd.sink.stop()


def test_sessions_resumed_across_agents_per_policy(instance_factory,
                                                   tmp_path):
    w = World(instance_factory, tmp_path)
    try:
        # encrypt: a full handshake, then another agent process resumes it
        pid1, _, tls1, rcv1 = w.send()
        assert not tls1.endswith(RESUMED) and rcv1 == 0
        pid2, _, tls2, rcv2 = w.send()
        assert pid2 != pid1, "one agent process made both deliveries"
        assert tls2.endswith(RESUMED), tls2
        assert rcv2 == 1

        # verify is stricter: the encrypt session is not offered; a
        # verified session is made, and then resumed, still verified
        # (the resumed session carries the verification result)
        w.set_level("verify")
        pid3, trust3, tls3, rcv3 = w.send()
        assert trust3 == "Trusted"
        assert not tls3.endswith(RESUMED) and rcv3 == 1
        pid4, trust4, tls4, rcv4 = w.send()
        assert trust4 == "Trusted" and tls4.endswith(RESUMED)
        assert rcv4 == 2
        assert len({pid1, pid2, pid3, pid4}) == 4

        # each policy has its own session: encrypt's is still there
        w.set_level("encrypt")
        _, _, tls5, rcv5 = w.send()
        assert tls5.endswith(RESUMED) and rcv5 == 3

        # scache killed: the cache is gone, the mail is not
        w.snd.inst.expect_crash = True
        pids = processes(w.snd, "scache")
        assert pids, "no scache process"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for _ in range(2):
            w.send()
        # master starts a new scache; sessions are shared again
        for _ in range(4):
            _, _, tls, _ = w.send()
            if tls.endswith(RESUMED):
                break
        else:
            raise AssertionError("no resumption after scache came back")
        assert "status=deferred" not in w.snd.inst.log_text()
    finally:
        w.stop()


def test_no_session_cache(instance_factory, tmp_path):
    """smtp_tls_session_cache_timeout = 0: no agent stores or offers a
    session, so every handshake is a full one (each agent runs once)"""
    w = World(instance_factory, tmp_path,
              {"smtp_tls_session_cache_timeout": "0"})
    try:
        for _ in range(3):
            _, _, tls, rcv = w.send()
            assert not tls.endswith(RESUMED) and rcv == 0
    finally:
        w.stop()
