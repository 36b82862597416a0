# SPDX-License-Identifier: MIT
"""qmgr routing for outbound and non-default destinations: transport_maps.

transport(5) semantics as in Postfix: the full address (with, then
without the extension), the domain, ".parent" for each parent domain,
then "*"; "t:nexthop", "t:" (to the recipient domain), ":nexthop" (the
class's own transport), ":" (no change), and the error transport.
"""

import os
import time
from pathlib import Path

from lmtp_sink import LmtpSink
from test_qmgr import MSG, free_port, make_queue, start_queue


def test_transport_maps(instance_factory):
    q = make_queue(instance_factory, start=False)
    lists = LmtpSink(q.inst.dir / "lists", port=free_port()).start()
    usock = Path("/tmp") / f"postern-tm-{os.getpid()}.sock"
    sub = LmtpSink(q.inst.dir / "sub", unix_path=usock).start()
    relay = LmtpSink(q.inst.dir / "relay", port=free_port(), smtp=True).start()
    star = LmtpSink(q.inst.dir / "star", port=free_port(), smtp=True).start()
    tm = q.inst.dir / "transport"
    tm.write_text(
        f"lists.test        lmtp:inet:127.0.0.1:{lists.port}\n"
        f".sub.test         lmtp:unix:{usock}\n"
        f"vip@other.test    smtp:[127.0.0.1]:{relay.port}\n"
        f"gone.test         error:this domain is gone\n"
        f"*                 smtp:[127.0.0.1]:{star.port}\n")
    os.chmod(tm, 0o644)
    q.inst.set_config("transport_maps", f"file:{tm}")
    start_queue(q)
    try:
        qid = q.inject(["announce@lists.test", "x@a.sub.test",
                        "y@deep.b.sub.test", "vip+tag@other.test",
                        "joe@other.test", "z@sub.test"], MSG)
        q.wait_removed(qid)
        assert len(lists.delivered_to("announce@lists.test")) == 1
        assert any(c.startswith("LHLO") for c in lists.commands)
        assert len(sub.delivered_to("x@a.sub.test")) == 1
        assert len(sub.delivered_to("y@deep.b.sub.test")) == 1
        # user+ext@domain falls back to user@domain
        assert len(relay.delivered_to("vip+tag@other.test")) == 1
        assert any(c.startswith("EHLO") for c in relay.commands)
        # "*" catches the rest; ".sub.test" does not match sub.test itself
        assert len(star.delivered_to("joe@other.test")) == 1
        assert len(star.delivered_to("z@sub.test")) == 1
        # local domains follow the same table: "*" applies to them too
        # (Postfix semantics), so local mail is not tested with "*" here
        qid = q.inject(["who@gone.test"], MSG, sender="")
        q.inst.wait_for_log(rf"{qid}: to=<who@gone.test>, .*dsn=5\.0\.0, "
                            r"status=bounced \(this domain is gone")
    finally:
        for s in (lists, sub, relay, star, q.sink):
            s.stop()


def test_transport_maps_null_fields(instance_factory):
    """":nexthop" keeps the class transport; "lmtp:" for a local domain
    keeps local routing when the table also names the next hop."""
    q = make_queue(instance_factory, start=False)
    relay = LmtpSink(q.inst.dir / "relay", port=free_port(), smtp=True).start()
    tm = q.inst.dir / "transport"
    tm.write_text(f"relay.test   :[127.0.0.1]:{relay.port}\n"
                  f"localhost    :\n")
    os.chmod(tm, 0o644)
    q.inst.set_config("transport_maps", f"file:{tm}")
    start_queue(q)
    try:
        qid = q.inject(["r@relay.test", "bob@localhost"], MSG)
        q.wait_removed(qid)
        assert len(relay.delivered_to("r@relay.test")) == 1
        assert len(q.sink.delivered_to("bob@localhost")) == 1
    finally:
        relay.stop()
        q.sink.stop()
