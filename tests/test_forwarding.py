# SPDX-License-Identifier: MIT
"""Departmental addresses, per-user forwarding with keep-a-copy, and SRS,
end to end on a real instance: `postern alias` / `postern forward` write
the user database, qmgr resolves alias@dept through its reverse index,
forwards off-site with an SRS0 envelope sender (checked by recomputing
the HMAC here), and a bounce of the forwarded copy comes back to the
original sender through the SRS address. Remote destinations are real
SMTP servers on loopback (tests/lmtp_sink.py in SMTP mode), reached
through transport_maps.
"""

import base64
import hashlib
import hmac
import os
import re
import time

from lmtp_sink import LmtpSink
from test_qmgr import MSG, free_port, make_queue, start_queue

SECRET = b"t0p-s3cret-for-tests"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def srs0(sender, now=None):
    local, domain = sender.rsplit("@", 1)
    day = int(now or time.time()) // 86400 % 1024
    ts = B32[day >> 5 & 31] + B32[day & 31]
    mac = hmac.new(SECRET, (ts + domain + local).lower().encode(),
                   hashlib.sha1).digest()
    h = base64.b64encode(mac).decode()[:4]
    return f"SRS0={h}={ts}={domain}={local}@srs.test"


def forwarding_queue(instance_factory):
    q = make_queue(instance_factory, start=False)
    remote = LmtpSink(q.inst.dir / "remote", port=free_port(), smtp=True).start()
    origin = LmtpSink(q.inst.dir / "origin", port=free_port(), smtp=True).start()
    tm = q.inst.dir / "transport"
    tm.write_text(f"remote.test smtp:[127.0.0.1]:{remote.port}\n"
                  f"origin.test smtp:[127.0.0.1]:{origin.port}\n")
    secret = q.inst.dir / "srs_secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(tm, 0o644)
    os.chmod(secret, 0o640)
    for k, v in {"transport_maps": f"file:{tm}",
                 "department_domains": "dept.test, chem.test",
                 "srs_enable": "yes", "srs_domain": "srs.test",
                 "srs_secret_file": str(secret)}.items():
        q.inst.set_config(k, v)
    return q, remote, origin


def test_alias_forward_cli(instance_factory):
    q = make_queue(instance_factory, start=False,
                   config={"department_domains": "dept.test"})
    p = q.inst.postern
    assert p("alias", "show", "bob").stdout.strip() == "(none)"
    p("alias", "set", "bob", "B.Smith@Dept.test")
    assert p("alias", "show", "bob").stdout.strip() == "b.smith@dept.test"
    r = p("alias", "set", "alice", "b.smith@dept.test", check=False)
    assert r.returncode == 1 and "belongs to another user" in r.stderr
    r = p("alias", "set", "alice", "a@other.test")
    assert "not in department_domains" in r.stderr
    assert p("forward", "show", "bob").stdout.strip() == "off"
    p("forward", "set", "bob", "bob@remote.test", "--keep-copy")
    assert p("forward", "show", "bob").stdout.strip() == \
        "bob@remote.test --keep-copy"
    p("forward", "off", "bob")
    assert p("forward", "show", "bob").stdout.strip() == "off"
    p("alias", "del", "bob")
    assert p("alias", "show", "bob").stdout.strip() == "(none)"
    assert p("forward", "set", "bob", "no-at", check=False).returncode == 1
    assert p("alias", "show", "nobody", check=False).returncode == 1
    assert p("forward", "bogus", "bob", check=False).returncode == 2
    # the user list does not show the reverse index entries
    assert "@" not in p("user", "list").stdout


def test_department_forward_srs_and_bounce(instance_factory):
    q, remote, origin = forwarding_queue(instance_factory)
    p = q.inst.postern
    p("alias", "set", "bob", "b.smith@dept.test")
    p("forward", "set", "bob", "bob@remote.test", "--keep-copy")
    p("alias", "set", "alice", "a.jones@chem.test")
    p("forward", "set", "alice", "gone@remote.test")
    remote.rcpt_replies["gone@remote.test"] = ["550 5.1.1 no such user here"]
    start_queue(q)
    try:
        # departmental address -> bob -> kept copy + forwarded with SRS
        qid = q.inject(["B.Smith+news@dept.test"], MSG,
                       sender="jane@origin.test")
        q.sink.wait_for(lambda: len(q.sink.delivered_to("bob@localhost")) == 1)
        remote.wait_for(lambda: len(remote.delivered_to("bob@remote.test")) == 1)
        local = q.sink.delivered_to("bob@localhost")[0]
        assert local["sender"] == "jane@origin.test"
        fwd = remote.delivered_to("bob@remote.test")[0]
        assert fwd["sender"] == srs0("jane@origin.test")
        assert b"Subject:" in fwd["data"]
        q.inst.wait_for_log(rf"{qid}: <B\.Smith\+news@dept\.test>: forwarded "
                            r"to 1 remote recipients with SRS sender "
                            r"<SRS0=")
        # a forward whose destination refuses: our DSN goes to the SRS
        # address, which qmgr reverses to the original sender
        qid = q.inject(["a.jones@chem.test"], MSG, sender="jane@origin.test")
        origin.wait_for(lambda: len(origin.delivered_to("jane@origin.test")) == 1,
                        timeout=30)
        dsn = origin.delivered_to("jane@origin.test")[0]
        assert dsn["sender"] == ""
        assert b"gone@remote.test" in dsn["data"]
        assert b"550 5.1.1 no such user here" in dsn["data"]
        assert q.sink.delivered_to("alice@localhost") == []
        # a bounce from outside to a good SRS address reaches the sender
        q.inject([srs0("jane@origin.test")], MSG, sender="")
        origin.wait_for(lambda: len(origin.delivered_to("jane@origin.test")) == 2)
        # forged hash and unknown departmental addresses bounce
        qid = q.inject(["SRS0=AAAA=AA=origin.test=jane@srs.test",
                        "nobody@dept.test"], MSG, sender="")
        q.inst.wait_for_log(rf"{qid}: to=<SRS0=AAAA=AA=origin\.test=jane@srs"
                            r"\.test>.*status=bounced \(.*(bad SRS hash|"
                            r"expired)")
        q.inst.wait_for_log(rf"{qid}: to=<nobody@dept\.test>.*dsn=5\.1\.1, "
                            r"status=bounced \(<nobody@dept\.test>: unknown "
                            r"departmental address")
        # local senders are not rewritten
        p("forward", "set", "bob", "bob2@remote.test")
        q.inject(["bob@example.net"], MSG, sender="alice@example.net")
        remote.wait_for(lambda: len(remote.delivered_to("bob2@remote.test")) == 1)
        assert remote.delivered_to("bob2@remote.test")[0]["sender"] == \
            "alice@example.net"
        assert len(q.sink.delivered_to("bob@localhost")) == 1
    finally:
        q.sink.stop()
        remote.stop()
        origin.stop()
