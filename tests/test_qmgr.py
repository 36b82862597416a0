# SPDX-License-Identifier: MIT
"""qmgr and the smtp/lmtp delivery agent, on a real instance.

Mail goes in through cleanup (tests/progs/inject, on lib/cleanup_client),
qmgr resolves and schedules it, the lmtp agent (smtp -n lmtp) delivers it
to tests/lmtp_sink.py, a real LMTP server that stores what it gets; the
tests check the stored bytes, the queue, the log and the DSNs (parsed
with Python's email package).
"""

import email
import re
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, PROGS, _children, free_port, pid_alive
from lmtp_sink import LmtpSink

INJECT = PROGS / "inject"

SERVICES = [
    "cleanup unix n - n - 0 cleanup",
    "qmgr fifo n - n 300 1 qmgr",
    "lmtp unix - - n - - smtp",
    "smtp unix - - n - - smtp",
]


def refusing_port():
    """A socket bound to a loopback port and not listening: connections
    to the port are refused for as long as the socket is held, and no
    other test can take the port meanwhile (a free_port() can be)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def has_service(inst, name, kind):
    text = (inst.dir / "master.conf").read_text()
    return any(line.split()[:2] == [name, kind] for line in text.splitlines()
               if line.strip() and not line.startswith("#"))


class Queue:
    """An instance with cleanup, qmgr and the agents, plus an LMTP sink."""

    def __init__(self, inst, sink):
        self.inst = inst
        self.sink = sink
        self.spool = inst.dir / "spool"

    def inject(self, rcpts, data, sender="sender@example.org", args=(),
               check=True):
        cmd = [str(INJECT), "-s", str(self.spool / "public" / "cleanup"),
               "-f", sender] + list(args) + list(rcpts)
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r.stdout.decode().strip()

    def ids(self, queue):
        d = self.spool / queue
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def wait_removed(self, qid, timeout=20):
        self.inst.wait_for_log(rf"{qid}: removed", timeout=timeout)

    def wait_empty(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self.ids(q) for q in ("active", "deferred", "incoming")):
                return
            time.sleep(0.05)
        raise AssertionError(f"queue not empty: active={self.ids('active')} "
                             f"deferred={self.ids('deferred')}")

    def postern(self, *args, check=True):
        return self.inst.postern(*args, check=check)

    def qmgr_pid(self):
        master = self.inst.master_pid()
        if master is None:
            return None
        for pid in _children(master):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "qmgr" and pid_alive(pid):
                return pid
        return None


def make_queue(instance_factory, config=None, users=("bob", "alice"),
               start=True):
    inst = instance_factory()
    # daemons run as mail_owner in a root-made instance: let them reach
    # data/ (the user database) inside the 0700 temporary directory
    os.chmod(inst.dir, 0o711)
    for line in SERVICES:
        name, kind = line.split()[:2]
        if not has_service(inst, name, kind):
            inst.add_service(line)
    sink = LmtpSink(inst.dir / "sink", port=free_port()).start()
    settings = {
        "local_transport": f"lmtp:{sink.nexthop}",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
        "service_throttle_time": "1s",
        "mydestination": "localhost, example.net",
    }
    settings.update(config or {})
    for k, v in settings.items():
        inst.set_config(k, v)
    for u in users:
        inst.postern("user", "add", u, "--password", "pw")
    q = Queue(inst, sink)
    if start:
        start_queue(q)
    return q


def start_queue(q):
    q.inst.start()
    deadline = time.monotonic() + 10
    for p in ("public/cleanup", "public/qmgr"):
        while not (q.spool / p).exists():
            assert time.monotonic() < deadline, f"{p} never appeared"
            time.sleep(0.05)


@pytest.fixture
def queue(instance_factory):
    q = make_queue(instance_factory)
    yield q
    q.sink.stop()


MSG = (b"From: sender@example.org\r\n"
       b"To: bob@localhost\r\n"
       b"Subject: test\r\n"
       b"Message-ID: <t1@example.org>\r\n"
       b"Date: Fri, 27 Nov 2026 02:00:00 +0000\r\n"
       b"\r\n"
       b"Hello.\r\n"
       b".leading dot\r\n"
       b"..two dots\r\n"
       b".\r\n"
       b"end\r\n")


def parse_dsn(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def dsn_fields(msg):
    """(per-message fields, [per-recipient fields]) of a multipart/report."""
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1
    groups = status[0].get_payload()
    return dict(groups[0].items()), [dict(g.items()) for g in groups[1:]]


# ------------------------------------------------------------------ tests

def test_local_delivery_byte_exact(queue):
    qid = queue.inject(["bob@localhost"], MSG)
    queue.wait_removed(qid)
    got = queue.sink.delivered_to("bob@localhost")
    assert len(got) == 1
    assert got[0]["sender"] == "sender@example.org"
    assert got[0]["token"] == f"{qid}/0"
    # cleanup may add trace headers above; the rest is exact
    assert got[0]["data"].endswith(MSG)
    log = queue.inst.log_text()
    assert f"{qid}: from=<sender@example.org>" in log
    assert f"{qid}: to=<bob@localhost>, relay=" in log
    assert "status=sent (250 2.0.0" in log
    assert queue.ids("active") == [] and queue.ids("deferred") == []


def wait_dsn(sink, rcpt, n=1, timeout=20):
    sink.wait_for(lambda: len(sink.delivered_to(rcpt)) >= n, timeout=timeout,
                  what=f"{n} message(s) to {rcpt}")
    return [parse_dsn(d["data"]) for d in sink.delivered_to(rcpt)]


def test_unknown_user_bounces_with_dsn(queue):
    qid = queue.inject(["nosuchuser@localhost", "bob@localhost"], MSG,
                       sender="alice@localhost",
                       args=["-O", "rfc822;orig-nosuch@example.com",
                             "-E", "env-1234"])
    queue.wait_removed(qid)
    assert len(queue.sink.delivered_to("bob@localhost")) == 1
    (dsn,) = wait_dsn(queue.sink, "alice@localhost")
    d = queue.sink.delivered_to("alice@localhost")[0]
    assert d["sender"] == ""                        # null sender
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    assert dsn["Auto-Submitted"] == "auto-replied"
    per_msg, per_rcpt = dsn_fields(dsn)
    assert per_msg["Reporting-MTA"].startswith("dns; ")
    assert per_msg["Original-Envelope-Id"] == "env-1234"
    assert "Arrival-Date" in per_msg
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; nosuchuser@localhost"
    assert r["Original-Recipient"] == "rfc822; orig-nosuch@example.com"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert "unknown user" in r["Diagnostic-Code"]
    # RET not given: the whole message comes back
    parts = dsn.get_payload()
    assert parts[2].get_content_type() == "message/rfc822"
    assert b"leading dot" in d["data"]
    assert re.search(rf"{qid}: to=<nosuchuser@localhost>, relay=none, .*"
                     r"dsn=5\.1\.1, status=bounced", queue.inst.log_text())


def test_ret_hdrs_returns_headers_only(queue):
    qid = queue.inject(["nosuchuser@localhost"], MSG, sender="alice@localhost",
                       args=["-R", "HDRS"])
    queue.wait_removed(qid)
    (dsn,) = wait_dsn(queue.sink, "alice@localhost")
    parts = dsn.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    d = queue.sink.delivered_to("alice@localhost")[0]["data"]
    assert b"Subject: test" in d and b"leading dot" not in d


def test_notify_never_no_bounce(queue):
    qid = queue.inject(["nosuchuser@localhost"], MSG, sender="alice@localhost",
                       args=["-N", "NEVER"])
    queue.wait_removed(qid)
    time.sleep(1)
    assert queue.sink.delivered_to("alice@localhost") == []


def test_success_dsn(queue):
    qid = queue.inject(["bob@localhost"], MSG, sender="alice@localhost",
                       args=["-N", "SUCCESS,FAILURE"])
    queue.wait_removed(qid)
    (dsn,) = wait_dsn(queue.sink, "alice@localhost")
    assert dsn["Subject"] == "Successful Mail Delivery Report"
    _, per_rcpt = dsn_fields(dsn)
    assert per_rcpt[0]["Action"] == "delivered"
    assert per_rcpt[0]["Status"] == "2.0.0"
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; bob@localhost"
    # success DSNs return headers only
    assert dsn.get_payload()[2].get_content_type() == "text/rfc822-headers"


def test_null_sender_bounce_not_bounced(queue):
    """A bounce that bounces goes to postmaster (a double bounce), never
    back to <>; a double bounce that bounces is only logged."""
    queue.inst.postern("user", "add", "postmaster", "--password", "pw")
    qid = queue.inject(["nosuchuser@localhost"], MSG, sender="")
    queue.wait_removed(qid)
    (dsn,) = wait_dsn(queue.sink, "postmaster@localhost")
    _, per_rcpt = dsn_fields(dsn)
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; nosuchuser@localhost"
    # no postmaster user: the double bounce itself fails -> only logged
    queue.inst.postern("user", "delete", "postmaster")
    queue.inst.set_config("2bounce_notice_recipient", "nobody-here@localhost")
    queue.inst.reload()
    time.sleep(0.5)
    qid2 = queue.inject(["nosuchuser@localhost"], MSG, sender="")
    queue.wait_removed(qid2)
    m = queue.inst.wait_for_log(rf"{qid2}: sender non-delivery notification: (\w+)")
    queue.inst.wait_for_log(rf"{m.group(1)}: undeliverable double bounce discarded")
    queue.wait_empty()


def test_temporary_failure_then_success(queue):
    queue.sink.rcpt_replies["bob@localhost"] = [
        "451 4.3.0 mailbox busy", "250 2.1.5 Ok"]
    qid = queue.inject(["bob@localhost", "alice@localhost"], MSG)
    queue.inst.wait_for_log(rf"{qid}: to=<bob@localhost>, relay=.*"
                            r"dsn=4\.3\.0, status=deferred \(host .* said: "
                            r"451 4\.3\.0 mailbox busy \(in reply to RCPT TO")
    assert len(queue.sink.delivered_to("alice@localhost")) == 1
    queue.wait_removed(qid, timeout=30)
    assert len(queue.sink.delivered_to("bob@localhost")) == 1
    assert len(queue.sink.delivered_to("alice@localhost")) == 1  # not again
    assert queue.sink.dedupes == 0


def test_permanent_failure_after_data(queue):
    queue.sink.data_replies["bob@localhost"] = "552 5.2.2 mailbox full"
    qid = queue.inject(["bob@localhost"], MSG, sender="alice@localhost")
    queue.wait_removed(qid)
    (dsn,) = wait_dsn(queue.sink, "alice@localhost")
    _, per_rcpt = dsn_fields(dsn)
    assert per_rcpt[0]["Status"] == "5.2.2"
    assert per_rcpt[0]["Diagnostic-Code"].startswith("smtp; 552 5.2.2 mailbox full")


def test_remote_recipient_deferred_with_reason(instance_factory):
    """An unreachable next hop defers remote mail with the reason."""
    held, port = refusing_port()
    q = make_queue(instance_factory, config={"relayhost": f"[127.0.0.1]:{port}"})
    try:
        qid = q.inject(["someone@remote.example"], MSG)
        q.inst.wait_for_log(
            rf"{qid}: to=<someone@remote.example>, relay=.*status=deferred "
            rf"\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:{port}: "
            r"Connection refused\)")
        deadline = time.monotonic() + 10
        while qid not in q.ids("deferred"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        q.sink.stop()
        held.close()


def test_remote_via_relayhost_smtp(instance_factory):
    """With a relayhost the smtp agent speaks plain SMTP to it."""
    relay = LmtpSink(Path("/tmp") / f"relay-{os.getpid()}", port=free_port(),
                     smtp=True).start()
    q = make_queue(instance_factory,
                   config={"relayhost": f"127.0.0.1:{relay.port}"})
    try:
        qid = q.inject(["someone@remote.example"], MSG)
        q.wait_removed(qid)
        got = relay.delivered_to("someone@remote.example")
        assert len(got) == 1 and got[0]["data"].endswith(MSG)
        assert any(c.startswith("EHLO ") for c in relay.commands)
    finally:
        relay.stop()
        q.sink.stop()


def test_aliases_and_include(instance_factory, tmp_path):
    inc = Path("/tmp") / f"postern-inc-{os.getpid()}"
    inc.write_text("# included\nalice\n")
    os.chmod(inc, 0o644)
    q = make_queue(instance_factory, config={}, start=False,
                   users=("bob", "alice", "carol"))
    aliases = q.inst.dir / "aliases"
    aliases.write_text(
        "team: bob, alice@localhost\n"
        "single: bob\n"
        f"incl: :include:{inc}\n"
        "pipe: |/bin/cat\n"
        "file: /tmp/x\n"
        "mixed: bob, |/bin/cat\n"
        "carol: carol, alice\n")
    os.chmod(aliases, 0o644)
    q.inst.set_config("alias_maps", f"file:{aliases}")
    start_queue(q)
    try:
        # one target: delivered in place under the original's token
        qid = q.inject(["single@localhost"], MSG)
        q.wait_removed(qid)
        assert len(q.sink.delivered_to("bob@localhost")) == 1
        # several: re-injected as a new message, each delivered once
        qid = q.inject(["team@localhost"], MSG)
        q.wait_removed(qid)
        q.sink.wait_for(lambda: len(q.sink.delivered_to("alice@localhost")) == 1)
        q.sink.wait_for(lambda: len(q.sink.delivered_to("bob@localhost")) == 2)
        assert re.search(rf"{qid}: to=<team@localhost>, relay=local, .*"
                         r"status=sent \(alias expanded to 2 recipients",
                         q.inst.log_text())
        # :include:
        qid = q.inject(["incl@localhost"], MSG)
        q.wait_removed(qid)
        q.sink.wait_for(lambda: len(q.sink.delivered_to("alice@localhost")) == 2)
        # self-reference: carol -> carol, alice (carol not expanded again)
        qid = q.inject(["carol@localhost"], MSG)
        q.wait_removed(qid)
        q.sink.wait_for(lambda: len(q.sink.delivered_to("carol@localhost")) == 1)
        q.sink.wait_for(lambda: len(q.sink.delivered_to("alice@localhost")) == 3)
        # command and file targets are refused with a bounce reason
        for name, what in (("pipe", "command"), ("file", "file")):
            qid = q.inject([f"{name}@localhost"], MSG, sender="")
            q.inst.wait_for_log(rf"{qid}: to=<{name}@localhost>, relay=none, "
                                rf".*dsn=5\.7\.1, status=bounced \(mail to "
                                rf"{what} .* is not allowed")
        # mixed: bob gets it, the alias bounces for the command
        qid = q.inject(["mixed@localhost"], MSG, sender="")
        q.inst.wait_for_log(rf"{qid}: to=<mixed@localhost>, relay=none, "
                            r".*dsn=5\.7\.1, status=bounced \(mail to command")
        q.sink.wait_for(lambda: len(q.sink.delivered_to("bob@localhost")) == 3)
        q.wait_empty()
        time.sleep(0.5)
        assert len(q.sink.delivered_to("bob@localhost")) == 3
        assert len(q.sink.delivered_to("carol@localhost")) == 1
    finally:
        q.sink.stop()
        inc.unlink()


def test_virtual_aliases(instance_factory):
    q = make_queue(instance_factory, start=False)
    virt = q.inst.dir / "virtual"
    virt.write_text("info@virt.example bob@localhost\n"
                    "@catch.example alice@localhost\n")
    os.chmod(virt, 0o644)
    q.inst.set_config("virtual_alias_maps", f"file:{virt}")
    q.inst.set_config("virtual_alias_domains", "virt.example")
    start_queue(q)
    try:
        qid = q.inject(["info@virt.example", "x@catch.example"], MSG)
        q.wait_removed(qid)
        assert len(q.sink.delivered_to("bob@localhost")) == 1
        assert len(q.sink.delivered_to("alice@localhost")) == 1
        qid = q.inject(["nobody@virt.example"], MSG, sender="")
        q.inst.wait_for_log(rf"{qid}: to=<nobody@virt.example>, .*dsn=5\.1\.1, "
                            r"status=bounced \(<nobody@virt.example>: unknown "
                            r"user in virtual alias table")
    finally:
        q.sink.stop()


def test_recipient_delimiter(queue):
    qid = queue.inject(["bob+folder@localhost"], MSG)
    queue.wait_removed(qid)
    assert len(queue.sink.delivered_to("bob+folder@localhost")) == 1


def test_queue_lifetime_expiry_bounces(instance_factory):
    q = make_queue(instance_factory, config={"maximal_queue_lifetime": "3s"})
    try:
        q.sink.rcpt_replies["bob@localhost"] = "451 4.3.0 try again later"
        qid = q.inject(["bob@localhost"], MSG, sender="alice@localhost")
        q.inst.wait_for_log(rf"{qid}: to=<bob@localhost>, .*status=expired, "
                            r"returned to sender", timeout=30)
        q.wait_removed(qid)
        (dsn,) = wait_dsn(q.sink, "alice@localhost")
        _, per_rcpt = dsn_fields(dsn)
        assert per_rcpt[0]["Action"] == "failed"
        assert per_rcpt[0]["Status"] == "4.3.0"
        assert "expired" in per_rcpt[0]["Diagnostic-Code"]
    finally:
        q.sink.stop()


def test_delay_warning(instance_factory):
    q = make_queue(instance_factory, config={"delay_warning_time": "2s"})
    try:
        q.sink.rcpt_replies["bob@localhost"] = "451 4.3.0 try again later"
        q.inject(["bob@localhost"], MSG, sender="alice@localhost")
        (dsn,) = wait_dsn(q.sink, "alice@localhost", timeout=30)
        assert dsn["Subject"] == "Delayed Mail (still being retried)"
        _, per_rcpt = dsn_fields(dsn)
        assert per_rcpt[0]["Action"] == "delayed"
        assert "Will-Retry-Until" in per_rcpt[0]
        time.sleep(3)
        assert len(q.sink.delivered_to("alice@localhost")) == 1   # once
    finally:
        q.sink.stop()


def test_kill_qmgr_during_delivery_exactly_once(queue):
    """kill -9 qmgr while the LMTP server holds the replies: after the
    restart every recipient is delivered exactly once (the retried
    hand-offs carry the same tokens and the server dedupes them)."""
    queue.inst.expect_crash = True
    rcpts = [f"bob+{i}@localhost" for i in range(5)] + ["alice@localhost"]
    queue.sink.stall_after_data = 3
    qid = queue.inject(rcpts, MSG)
    queue.sink.wait_for(lambda: len(queue.sink.deliveries) == len(rcpts),
                        what="first hand-off")
    pid = queue.qmgr_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    queue.sink.stall_after_data = 0
    # master restarts qmgr (its wakeup or a new trigger)
    deadline = time.monotonic() + 30
    while queue.qmgr_pid() in (None, pid):
        assert time.monotonic() < deadline, "qmgr was not restarted"
        subprocess.run([str(INJECT), "-s", str(queue.spool / "public" / "cleanup"),
                        "-f", "", "bob@localhost"], input=MSG,
                       capture_output=True, timeout=30)
        time.sleep(0.5)
    queue.wait_removed(qid, timeout=30)
    for r in rcpts:
        got = [d for d in queue.sink.delivered_to(r) if d["token"].startswith(qid)]
        assert len(got) == 1, (r, got)
    assert queue.sink.dedupes >= 1


def test_destination_concurrency_limit(instance_factory):
    # the sink counts connections: without cached idle sessions (smtp(8)
    # connection caching) they are the deliveries the limit is about
    q = make_queue(instance_factory, config={
        "lmtp_destination_concurrency_limit": "1",
        "default_destination_recipient_limit": "1",
        "smtp_connection_cache_time": "0"})
    try:
        q.sink.stall_after_data = 0.3
        rcpts = [f"bob+{i}@localhost" for i in range(4)]
        qid = q.inject(rcpts, MSG)
        q.wait_removed(qid)
        assert len(q.sink.deliveries) == 4
        assert q.sink.max_sessions == 1
    finally:
        q.sink.stop()


def test_parallel_deliveries_within_limit(instance_factory):
    q = make_queue(instance_factory, config={
        "lmtp_destination_concurrency_limit": "3",
        "default_destination_recipient_limit": "1",
        "smtp_connection_cache_time": "0"})  # see above
    try:
        q.sink.stall_after_data = 0.5
        rcpts = [f"bob+{i}@localhost" for i in range(6)]
        qid = q.inject(rcpts, MSG)
        q.wait_removed(qid)
        assert len(q.sink.deliveries) == 6
        assert 2 <= q.sink.max_sessions <= 3
    finally:
        q.sink.stop()


def test_no_pipelining_and_bdat_binarymime(queue):
    queue.sink.pipelining = False
    binary = (b"Subject: bin\r\nMIME-Version: 1.0\r\n\r\n"
              b"\x00\x01\x02 bare\nLF .dot\r\n.\r\n")
    qid = queue.inject(["bob@localhost"], binary, args=["-b", "BINARYMIME"])
    queue.wait_removed(qid)
    (got,) = queue.sink.delivered_to("bob@localhost")
    assert got["data"].endswith(binary)
    assert any(c.startswith("BDAT ") and c.endswith(" LAST")
               for c in queue.sink.commands)
    assert any("BODY=BINARYMIME" in c for c in queue.sink.commands)


def test_active_limit_bounds_memory(instance_factory):
    q = make_queue(instance_factory, config={"qmgr_message_active_limit": "1"})
    try:
        ids = [q.inject(["bob@localhost"], MSG) for _ in range(5)]
        for qid in ids:
            q.wait_removed(qid)
        assert len(q.sink.delivered_to("bob@localhost")) == 5
    finally:
        q.sink.stop()


def test_incoming_recovery(instance_factory):
    """A complete file a dead writer left in incoming/ is committed and
    delivered; an incomplete old one is removed."""
    q = make_queue(instance_factory)
    try:
        qid = q.inject(["bob@localhost"], MSG, args=["-H"])
        junk = q.inject(["bob@localhost"], MSG, args=["-H"])
        q.inst.stop()
        old = time.time() - 2 * 3600
        src = q.spool / "hold" / qid
        dst = q.spool / "incoming" / qid
        os.rename(src, dst)
        os.utime(dst, (old, old))
        jsrc = q.spool / "hold" / junk
        jdst = q.spool / "incoming" / junk
        data = jsrc.read_bytes()
        jdst.write_bytes(data[:len(data) // 2])
        jsrc.unlink()
        shutil.chown(jdst, user=os.stat(dst).st_uid, group=os.stat(dst).st_gid)
        os.utime(jdst, (old, old))
        start_queue(q)
        q.wait_removed(qid)
        assert len(q.sink.delivered_to("bob@localhost")) == 1
        q.inst.wait_for_log(rf"{junk}: removing incomplete queue file")
        assert q.ids("incoming") == []
    finally:
        q.sink.stop()


def test_missing_alias_table_defers(instance_factory):
    """A configured alias table that cannot be opened defers local mail
    (bouncing it as unknown could be wrong); once it exists, it is used."""
    q = make_queue(instance_factory, start=False)
    aliases = q.inst.dir / "aliases"
    q.inst.set_config("alias_maps", f"file:{aliases}")
    start_queue(q)
    try:
        qid = q.inject(["team@localhost"], MSG)
        q.inst.wait_for_log(rf"{qid}: to=<team@localhost>, relay=none, .*"
                            r"dsn=4\.3\.0, status=deferred \(table file:")
        aliases.write_text("team: bob\n")
        os.chmod(aliases, 0o644)
        q.wait_removed(qid, timeout=30)
        assert len(q.sink.delivered_to("bob@localhost")) == 1
    finally:
        q.sink.stop()


def test_qmgr_stays_when_idle(instance_factory):
    """qmgr holds the retry schedule: it does not exit after $max_idle."""
    q = make_queue(instance_factory, config={"max_idle": "1s"})
    try:
        deadline = time.monotonic() + 10
        while (pid := q.qmgr_pid()) is None:
            assert time.monotonic() < deadline, "qmgr did not start"
            time.sleep(0.05)
        time.sleep(3)
        assert q.qmgr_pid() == pid
        qid = q.inject(["bob@localhost"], MSG)
        q.wait_removed(qid)
    finally:
        q.sink.stop()
