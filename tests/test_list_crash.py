# SPDX-License-Identifier: MIT
"""list-mgr exactly once across kill -9: the post's per-member copies are
queued one by one; list-mgr is killed half-way, qmgr retries the post with
the same delivery token, and the progress record makes the retry queue
only the members that had no copy yet. Members live at a domain routed to
an LMTP sink, which records every delivery."""

import os
import signal
import time

from lmtp_sink import LmtpSink
from test_list import DOMAIN, lst, msg, setup_lists

NMEMBERS = 150


def progress_done(p):
    n = 0
    for f in (p.inst.dir).rglob("lists/team/progress/*"):
        n += sum(1 for line in f.read_text().splitlines()
                 if line.startswith("d "))
    return n


def test_kill_during_distribution_no_duplicates_no_loss(instance_factory,
                                                        tmp_path):
    sink = LmtpSink(tmp_path / "sink", port=0)
    sink.start()
    try:
        p = setup_lists(instance_factory, users=("alice",),
                        config={"list_expansion_processes": "2"},
                        transport_extra=f"sink.test lmtp:{sink.nexthop}\n")
        lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
            "posting=open")
        members = [f"m{i:03d}@sink.test" for i in range(NMEMBERS)]
        lst(p, "members", "team", "add", *members)

        p.send("alice@localhost", [f"team@{DOMAIN}"],
               msg("alice@localhost", f"team@{DOMAIN}", "crash post"))
        deadline = time.monotonic() + 30
        while progress_done(p) < 20:
            assert time.monotonic() < deadline, "distribution never started"
            time.sleep(0.001)
        p.inst.expect_crash = True
        killed = p.worker_pids({"list-mgr"})
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        at_kill = progress_done(p)
        assert killed and at_kill < NMEMBERS, \
            f"list-mgr finished ({at_kill}) before it could be killed"

        sink.wait_for(lambda: len({d["rcpt"] for d in sink.deliveries})
                      >= NMEMBERS, timeout=60, what="every member")
        p.wait_queue_empty(timeout=60)
        time.sleep(1.0)
        got = [d["rcpt"].lower() for d in sink.deliveries]
        dups = sorted({r for r in got if got.count(r) > 1})
        assert not dups, f"second copies for {dups}"
        assert sorted(got) == members
        for d in sink.deliveries:     # every copy has its own VERP sender
            local = d["rcpt"].split("@")[0]
            assert d["sender"] == f"team-bounces+{local}=sink.test@{DOMAIN}"
        log = p.inst.log_text()
        assert "resuming:" in log and "already have their copy" in log
    finally:
        sink.stop()
