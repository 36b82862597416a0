# SPDX-License-Identifier: MIT
"""qmgr and the smtp/lmtp delivery agent, on a real instance.

Mail goes in through cleanup (tests/progs/inject, on lib/cleanup_client),
qmgr resolves and schedules it, the lmtp agent (smtp -n lmtp) delivers it
to tests/lmtp_sink.py, a real LMTP server that stores what it gets; the
tests check the stored bytes, the queue, the log and the DSNs (parsed
with Python's email package).
"""

import email
import email.policy
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, PROGS, pid_alive
from lmtp_sink import LmtpSink

INJECT = PROGS / "inject"

SERVICES = [
    "cleanup unix n - n - 0 cleanup",
    "qmgr fifo n - n 300 1 qmgr",
    "lmtp unix - - n - - smtp",
    "smtp unix - - n - - smtp",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"/qmgr") and \
                    any(str(self.inst.dir).encode() in a for a in args):
                if pid_alive(int(entry)):
                    return int(entry)
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
