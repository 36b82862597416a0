# SPDX-License-Identifier: MIT
"""Connection reuse in the smtp/lmtp agent (smtp_connection_cache_time).

The agent keeps a session open after a delivery and uses it for the
next request to the same destination (after an RSET probe). Counted at
the sink: every connection starts with one LHLO/EHLO. A sink that drops
idle connections still gets every message (the agent notices the closed
session and connects again).
"""

import os
import time
from pathlib import Path

from lmtp_sink import LmtpSink, _Handler
from test_qmgr import MSG, free_port, make_queue

N = 8


def greetings(sink, verb):
    with sink.lock:
        return sum(1 for c in sink.commands if c.upper().startswith(verb))


def send_sequentially(q, rcpt, n, pause=0.0):
    for i in range(n):
        qid = q.inject([rcpt], MSG)
        q.wait_removed(qid)
        if pause:
            time.sleep(pause)


def test_lmtp_session_reused(instance_factory):
    q = make_queue(instance_factory)
    try:
        send_sequentially(q, "bob@localhost", N)
        assert len(q.sink.deliveries) == N
        lhlo = greetings(q.sink, "LHLO")
        assert 1 <= lhlo < N, f"{lhlo} connections for {N} messages"
        assert greetings(q.sink, "RSET") >= N - lhlo
        # the cached session is closed once it has been idle long enough
        q.sink.wait_for(lambda: q.sink.sessions == 0, timeout=10,
                        what="idle sessions closed")
    finally:
        q.sink.stop()


def test_smtp_session_reused(instance_factory):
    relay = LmtpSink(Path("/tmp") / f"reuse-{os.getpid()}", port=free_port(),
                     smtp=True).start()
    q = make_queue(instance_factory,
                   config={"relayhost": f"[127.0.0.1]:{relay.port}",
                           "smtp_tls_security_level": "none"})
    try:
        send_sequentially(q, "someone@remote.example", N)
        got = relay.delivered_to("someone@remote.example")
        assert len(got) == N and all(g["data"].endswith(MSG) for g in got)
        ehlo = greetings(relay, "EHLO")
        assert 1 <= ehlo < N, f"{ehlo} connections for {N} messages"
    finally:
        relay.stop()
        q.sink.stop()


class _DroppingHandler(_Handler):
    # closes a connection idle for this long (socket timeout in readline)
    timeout = 0.3

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass


def test_dropped_idle_session_reconnects(instance_factory):
    q = make_queue(instance_factory,
                   config={"smtp_connection_cache_time": "5s"})
    q.sink.server.RequestHandlerClass = _DroppingHandler
    try:
        send_sequentially(q, "bob@localhost", 4, pause=0.8)
        assert len(q.sink.deliveries) == 4
        assert greetings(q.sink, "LHLO") == 4
        q.inst.wait_for_log(r"cached session with .* was closed; "
                            r"reconnecting")
        assert "status=deferred" not in q.inst.log_text()
    finally:
        q.sink.stop()


def test_cache_off(instance_factory):
    q = make_queue(instance_factory,
                   config={"smtp_connection_cache_time": "0"})
    try:
        send_sequentially(q, "bob@localhost", 3)
        assert greetings(q.sink, "LHLO") == 3
        assert greetings(q.sink, "QUIT") == 3
    finally:
        q.sink.stop()
