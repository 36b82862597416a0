# SPDX-License-Identifier: MIT
"""The smtp agent against Postfix's smtp-sink as the destination MTA,
configured to fail in the ways real servers do:

  -r rcpt   every RCPT gets 450: the recipient is retried, and the
            deferred queue file's next-attempt time (its mtime) grows
            with each attempt ($minimal_backoff_time doubling up to
            $maximal_backoff_time, small here)
  -f rcpt   every RCPT gets 550: a bounce DSN to the sender, with the
            server's reply as the Diagnostic-Code
  -W rcpt:N the server stalls: $smtp_rcpt_timeout defers the mail,
            which stays queued and goes out once the server behaves
  killed    the server dies while the message body is on the wire:
            deferred, and the next attempt delivers it exactly once

Mail goes in through cleanup (tests/progs/inject) and out by relayhost;
local mail (the DSNs) goes to tests/lmtp_sink.py (test_qmgr.make_queue).
smtp-sink -D appends each transaction it takes to a dump file.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOST
from pipeline import wait_port
from test_qmgr import MSG, dsn_fields, free_port, make_queue, wait_dsn

SMTP_SINK = "/usr/sbin/smtp-sink"

pytestmark = pytest.mark.skipif(not os.path.exists(SMTP_SINK),
                                reason="smtp-sink (postfix) is not installed")


class Sink:
    """One smtp-sink process on HOST:port (it runs as nobody, so its
    dump file and output live in a 0777 folder under /tmp)."""

    def __init__(self, folder, port, *opts):
        self.folder = folder
        self.port = port
        self.dump = folder / f"dump-{port}-{time.monotonic_ns()}"
        self.out_path = folder / f"out-{time.monotonic_ns()}"
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-v", "-u", "nobody", "-D", str(self.dump)]
            + list(opts) + [f"{HOST}:{port}", "10"],
            stdout=self.out, stderr=subprocess.STDOUT)
        wait_port(port)

    def output(self):
        return self.out_path.read_text(errors="replace")

    def messages(self):
        """The transactions in the dump file, each as bytes."""
        if not self.dump.exists():
            return []
        text = self.dump.read_bytes()
        return [b"X-Client-Addr: " + m for m in
                text.split(b"X-Client-Addr: ")[1:]]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.out.close()


@pytest.fixture
def folder():
    d = Path("/tmp") / f"postern-sink-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def relay_queue(instance_factory, port, extra=None):
    cfg = {"relayhost": f"[{HOST}]:{port}",
           "minimal_backoff_time": "1s", "maximal_backoff_time": "8s",
           "queue_run_delay": "1s", "smtp_connection_cache_time": "0s"}
    cfg.update(extra or {})
    return make_queue(instance_factory, config=cfg)


def wait_deferred(q, qid, timeout=20):
    deadline = time.monotonic() + timeout
    while qid not in q.ids("deferred"):
        assert time.monotonic() < deadline, \
            f"{qid} not deferred: {q.inst.log_text()[-2000:]}"
        time.sleep(0.05)


def test_4xx_retried_with_growing_backoff(instance_factory, folder):
    port = free_port()
    sink = Sink(folder, port, "-r", "rcpt", "-b", "450 4.2.1 Mailbox busy")
    q = relay_queue(instance_factory, port)
    try:
        qid = q.inject(["far@remote.test"], MSG)
        path = q.spool / "deferred" / qid
        deferrals = f"{qid}: to=<far@remote.test>, "

        def attempts_logged():
            return sum(1 for line in q.inst.log_text().splitlines()
                       if deferrals in line and "status=deferred" in line)

        # each attempt logs its deferral, then leaves the file in deferred/
        # with mtime = the next attempt. Pair each next-attempt time with
        # the attempt that set it (the deferrals logged so far: the file
        # must not move while we count, or the pair is not used), and note
        # how far ahead it is when seen. The first window (under a second:
        # the next attempt is a whole second, the clock is not) can pass
        # unseen on a loaded machine; from the second attempt on each
        # window is at least a second long.
        backoff = {1: 1, 2: 2, 3: 4, 4: 8}
        seen = {}
        deadline = time.monotonic() + 40
        while not all(n in seen for n in (2, 3, 4)):
            assert time.monotonic() < deadline, (seen, q.inst.log_text())
            try:
                mtime = path.stat().st_mtime
                now = time.time()
                n = attempts_logged()
                again = path.stat().st_mtime
            except FileNotFoundError:
                time.sleep(0.01)
                continue
            # an mtime not ahead is the file's own, seen between the move
            # and the retry time set
            if again == mtime and mtime > now and n not in seen:
                assert n in backoff, (n, seen)
                seen[n] = (mtime, mtime - now)
            time.sleep(0.01)
        # backoffs 1s, 2s, 4s, 8s: each next attempt is at most that far
        # ahead when seen (whole seconds: up to 1s less, and less again by
        # how late we look), and no earlier than that after the previous
        # one (the retry starts at or after it is due)
        for n, (mtime, ahead) in seen.items():
            assert 0 < ahead <= backoff[n] + 0.05, seen
            if n - 1 in seen:
                assert mtime - seen[n - 1][0] >= backoff[n], seen
        log = q.inst.log_text()
        assert log.count(f"{qid}: to=<far@remote.test>") >= 3
        q.inst.wait_for_log(
            rf"{qid}: to=<far@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1"
            rf"\]:{port}, .*dsn=4\.2\.1, status=deferred \(host 127\.0\.0\.1"
            r"\[127\.0\.0\.1\]:\d+ said: 450 4\.2\.1 Mailbox busy \(in reply "
            r"to RCPT TO command\)")
        assert sink.messages() == []
        out = q.postern("queue", "list").stdout
        assert qid in out and "450 4.2.1 Mailbox busy" in out, out

        # the server recovers: the next attempt delivers, once
        sink.stop()
        sink = Sink(folder, port)
        q.postern("queue", "flush")
        q.wait_removed(qid, timeout=30)
        (got,) = sink.messages()
        assert b"X-Rcpt-Args: <far@remote.test>" in got
        assert b"Subject: test" in got
        assert q.sink.delivered_to("sender@example.org") == []  # no DSN
    finally:
        sink.stop()
        q.sink.stop()


def test_5xx_bounces_with_dsn(instance_factory, folder):
    port = free_port()
    sink = Sink(folder, port, "-f", "rcpt", "-B",
                "550 5.1.1 Recipient address rejected: User unknown")
    q = relay_queue(instance_factory, port)
    try:
        qid = q.inject(["gone@remote.test"], MSG, sender="alice@localhost",
                       args=["-E", "env-42"])
        q.wait_removed(qid)
        (dsn,) = wait_dsn(q.sink, "alice@localhost")
        per_msg, per_rcpt = dsn_fields(dsn)
        assert per_msg["Original-Envelope-Id"] == "env-42"
        (r,) = per_rcpt
        assert r["Final-Recipient"] == "rfc822; gone@remote.test"
        assert r["Action"] == "failed"
        assert r["Status"] == "5.1.1"
        assert r["Diagnostic-Code"].startswith(
            "smtp; 550 5.1.1 Recipient address rejected: User unknown")
        # RFC 3464 2.3.5: the server that said it (the relayhost's name)
        assert r["Remote-MTA"] == f"dns; {HOST}"
        text = dsn.get_payload()[0].get_payload(decode=True).decode()
        assert "gone@remote.test" in text
        assert "550 5.1.1 Recipient address rejected: User unknown" in text
        assert "in reply to RCPT TO command" in text
        # the returned message (RET default: full) is the original
        returned = dsn.get_payload()[2]
        assert "Subject: test" in returned.as_string()
        assert sink.messages() == []
        q.wait_empty()
    finally:
        sink.stop()
        q.sink.stop()


def test_stalled_server_times_out_and_mail_waits(instance_factory, folder):
    port = free_port()
    # without PIPELINING: smtp-sink -W answers a pipelined DATA before
    # the RCPT it holds back
    sink = Sink(folder, port, "-p", "-W", "rcpt:60")
    q = relay_queue(instance_factory, port, {"smtp_rcpt_timeout": "2s"})
    try:
        qid = q.inject(["slow@remote.test"], MSG)
        q.inst.wait_for_log(
            rf"{qid}: to=<slow@remote\.test>, .*status=deferred \(conversation"
            r" with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ timed out while sending "
            r"RCPT TO\)", timeout=20)
        wait_deferred(q, qid)
        assert sink.messages() == []

        sink.stop(signal.SIGKILL)
        sink = Sink(folder, port)
        q.postern("queue", "flush")
        q.wait_removed(qid, timeout=30)
        (got,) = sink.messages()
        assert b"X-Rcpt-Args: <slow@remote.test>" in got
    finally:
        sink.stop()
        q.sink.stop()


def test_drop_mid_data_then_exactly_once(instance_factory, folder):
    port = free_port()
    # -H: no reading after DATA for a while, with a small TCP window, so
    # that the agent is still writing the body when the server dies
    sink = Sink(folder, port, "-H", "60", "-T", "4096")
    q = relay_queue(instance_factory, port)
    body = b"".join(b"line %07d of a large message\r\n" % i
                    for i in range(200000))
    msg = MSG + body
    try:
        qid = q.inject(["big@remote.test"], msg)
        deadline = time.monotonic() + 20
        while "smtp-sink: data" not in sink.output().lower():
            assert time.monotonic() < deadline, sink.output()
            time.sleep(0.05)
        time.sleep(1)
        sink.stop(signal.SIGKILL)
        q.inst.wait_for_log(
            rf"{qid}: to=<big@remote\.test>, .*status=deferred \(lost "
            r"connection with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ while sending "
            r"message body\)", timeout=30)
        wait_deferred(q, qid)

        sink = Sink(folder, port)
        q.postern("queue", "flush")
        q.wait_removed(qid, timeout=60)
        (got,) = sink.messages()           # exactly once
        assert b"X-Rcpt-Args: <big@remote.test>" in got
        # smtp-sink dumps with LF line ends
        assert body.replace(b"\r\n", b"\n") in got
        assert q.inst.log_text().count(
            f"{qid}: to=<big@remote.test>, relay=") == 2
        assert len([l for l in q.inst.log_text().splitlines()
                    if f"{qid}: to=<big@remote.test>" in l
                    and "status=sent" in l]) == 1
    finally:
        sink.stop()
        q.sink.stop()
