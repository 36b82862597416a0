# SPDX-License-Identifier: MIT
"""The connection cache shared between smtp agent processes (scache(8)).

Several smtp agent processes deliver to one destination (a Python SMTP
sink that counts connections: each one starts with one EHLO). A burst
of messages first makes master start several agents; then messages go
one at a time, and master hands each to whichever agent accepts first.
Without scache a session idles in the agent that opened it, so a
message that lands in another agent opens a new connection; with
scache every agent takes the parked session. kill -9 of scache loses
no mail: the agents connect themselves meanwhile.
"""

import os
import signal
import time
from pathlib import Path

from conftest import BUILD, _children
from lmtp_sink import LmtpSink
from test_qmgr import MSG, free_port, make_queue, start_queue

BURST = 8
SEQ = 16


def ehlos(sink):
    with sink.lock:
        return sum(1 for c in sink.commands if c.upper().startswith("EHLO"))


def agents(q):
    """Pids of the instance's smtp agent processes."""
    return processes(q, "smtp")


def processes(q, prog):
    exe = str(BUILD / "bin" / prog)
    found = []
    for pid in _children(q.inst.master_pid()):
        try:
            if os.readlink(f"/proc/{pid}/exe") == exe:
                found.append(pid)
        except OSError:
            pass
    return found


def run(instance_factory, service, kill_scache=False):
    """BURST messages at once to relay A, then SEQ one at a time to A
    and B in turn. Returns the connections (EHLOs at A and B) of the
    burst and of the sequence, the most agents seen, and the log."""
    q = make_queue(instance_factory, start=False, config={
        "smtp_tls_security_level": "none",
        "smtp_connection_cache_time": "20s",
        "smtp_connection_cache_service": service,
    })
    a = LmtpSink(q.inst.dir / "a", port=free_port(), smtp=True).start()
    b = LmtpSink(q.inst.dir / "b", port=free_port(), smtp=True).start()
    tm = q.inst.dir / "transport"
    tm.write_text(f"a.test smtp:[127.0.0.1]:{a.port}\n"
                  f"b.test smtp:[127.0.0.1]:{b.port}\n")
    os.chmod(tm, 0o644)
    q.inst.set_config("transport_maps", f"file:{tm}")
    start_queue(q)
    most = 0
    try:
        # A holds each burst message a while before it answers, so the
        # burst overlaps and master starts several agents even when the
        # injections come slowly (a loaded machine)
        a.stall_after_data = 0.5
        ids = [q.inject(["x@a.test"], MSG) for _ in range(BURST)]
        for qid in ids:
            q.wait_removed(qid)
        a.stall_after_data = 0
        most = len(agents(q))
        burst = ehlos(a) + ehlos(b)
        for i in range(SEQ):
            if kill_scache and i == SEQ // 2:
                q.inst.expect_crash = True
                pids = processes(q, "scache")
                assert pids, "no scache process"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
            qid = q.inject([f"x@{'ab'[i % 2]}.test"], MSG)
            q.wait_removed(qid)
            most = max(most, len(agents(q)))
        got = a.delivered_to("x@a.test") + b.delivered_to("x@b.test")
        assert len(got) == BURST + SEQ
        assert all(g["data"].endswith(MSG) for g in got)
        q.wait_empty()
        return burst, ehlos(a) + ehlos(b) - burst, most, q.inst.log_text()
    finally:
        a.stop()
        b.stop()
        q.sink.stop()


def test_sessions_shared_between_agents(instance_factory):
    burst, seq, most, log = run(instance_factory, "scache")
    assert most > 1, "only one smtp agent ran: nothing to share"
    # each sequential message finds a parked session (B's first opens one)
    assert seq <= 2, f"{seq} connections for {SEQ} sequential messages"
    assert burst + seq < (BURST + SEQ) // 2
    assert "connection cache service" not in log
    # without scache an agent keeps its own sessions, and closes them
    # before it connects elsewhere (the deadlock rule): many reconnects
    _, seq_alone, most_alone, _ = run(instance_factory, "")
    assert most_alone > 1
    assert seq < seq_alone, f"scache {seq}, per-process only {seq_alone}"


def test_scache_killed_loses_no_mail(instance_factory):
    burst, seq, _, log = run(instance_factory, "scache", kill_scache=True)
    # every message arrived (run() checks it), none was deferred; after
    # the kill the agents connect themselves, then share again
    assert "status=deferred" not in log
    assert seq < SEQ
