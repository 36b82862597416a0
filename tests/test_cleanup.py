# SPDX-License-Identifier: MIT
"""cleanup against a real instance: limits, canonical maps, crashes, and
its wire protocol spoken directly (lib/cleanup_proto.h).

Crash tests use the test hook POSTERN_TEST_HOOKS=1 +
POSTERN_CLEANUP_KILLPOINT (cleanup(8)) or a real kill -9, and check the
one promise that matters: the client's answer matches what is on disk.
"""

import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from injecttest import (EX_DATAERR, EX_OK, EX_TEMPFAIL, SENDMAIL,
                        ensure_cleanup, header_and_body, header_fields,
                        queue_ids, qfcat, sendmail, spool, start_with_cleanup,
                        the_only)


# ------------------------------------------------------------ helpers

def cleanup_pids(inst):
    """Pids of this instance's cleanup processes."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if comm == "cleanup" and any(str(inst.dir).encode() in a for a in args):
            pids.append(int(entry))
    return pids


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def all_queues_empty(inst):
    return all(queue_ids(inst, q) == [] for q in ("incoming", "active", "hold"))


# The wire format (lib/cleanup_proto.h).
def rec(rtype, payload=b""):
    return rtype + struct.pack(">I", len(payload)) + payload


def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b + b"\0"


def popt(s):
    return b"\0" if s is None else b"\1" + pstr(s)


def envelope(sender, attrs=(), protocol="ESMTP"):
    p = struct.pack(">Q", int(time.time() * 1e6)) + pstr(sender) + popt(None)
    p += bytes([0, 0, 0])
    p += popt("client.example") + popt("192.0.2.1") + popt("helo.example")
    p += popt(protocol) + popt(None)
    p += struct.pack(">I", len(attrs))
    for k, v in attrs:
        p += pstr(k) + pstr(v)
    return rec(b"E", p)


def rcpt(addr):
    return rec(b"r", pstr(addr) + popt(None) + popt(None)
               + struct.pack(">I", 0) + popt(None))


def connect(inst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(spool(inst) / "public" / "cleanup"))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return buf
        buf += chunk
    return buf


def read_record(s):
    hdr = recv_exact(s, 5)
    if len(hdr) < 5:
        return None, None
    n = struct.unpack(">I", hdr[1:])[0]
    return hdr[:1], recv_exact(s, n)


def read_id(s):
    t, p = read_record(s)
    assert t == b"I", (t, p)
    return p.decode()


def read_status(s):
    t, p = read_record(s)
    assert t == b"Z", (t, p)
    status, n = struct.unpack(">II", p[:8])
    return status, p[8:8 + n].decode()


# ------------------------------------------------------------ limits

@pytest.fixture
def inst(instance_factory):
    return start_with_cleanup(instance_factory)


def test_header_too_big_rejected(inst):
    big = b"X-Filler: " + b"a" * 900 + b"\n"
    msg = b"Subject: big header\n" + big * 120 + b"\nbody\n"   # > 102400
    r = sendmail(inst, ["bob@example.com"], msg)
    assert r.returncode == EX_DATAERR, r.stderr
    assert b"5.3.4" in r.stderr and b"header" in r.stderr
    assert all_queues_empty(inst)
    inst.wait_for_log(r": reject: 5\.3\.4 message header size exceeds limit")


def test_header_without_end_too_big_rejected(inst):
    # No empty line at all: the header never ends, the bound still holds.
    msg = b"X-Long: " + b"b" * 200000 + b"\n"
    r = sendmail(inst, ["bob@example.com"], msg)
    assert r.returncode == EX_DATAERR
    assert all_queues_empty(inst)


def test_header_just_under_limit_accepted(inst):
    field = b"X-Filler: " + b"a" * 88 + b"\r\n"       # 100 octets
    msg = field * 1000 + b"\r\nbody\r\n"             # header 100000 < 102400
    r = sendmail(inst, ["-i", "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert header_and_body(qf["content"])[1] == b"body\r\n"


def test_header_count_and_hop_limits(instance_factory):
    inst = start_with_cleanup(instance_factory,
                              config={"header_count_limit": "20",
                                      "hopcount_limit": "5"})
    r = sendmail(inst, ["bob@example.com"], b"X-A: 1\n" * 21 + b"\nbody\n")
    assert r.returncode == EX_DATAERR
    assert b"too many fields" in r.stderr
    r = sendmail(inst, ["bob@example.com"],
                 b"Received: from x by y\n" * 6 + b"\nbody\n")
    assert r.returncode == EX_DATAERR
    assert b"5.4.6" in r.stderr
    assert all_queues_empty(inst)


def test_message_size_limit(instance_factory):
    inst = start_with_cleanup(instance_factory,
                              config={"message_size_limit": "10k"})
    r = sendmail(inst, ["-i", "bob@example.com"],
                 b"Subject: s\n\n" + b"y" * 20000 + b"\n")
    assert r.returncode == EX_DATAERR
    assert b"5.3.4" in r.stderr
    assert all_queues_empty(inst)


def test_body_without_empty_line(inst):
    # The first line that is not a header field starts the body.
    r = sendmail(inst, ["bob@example.com"], b"Subject: s\nthis is body text\nmore\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    head, body = header_and_body(qf["content"])
    assert body == b"this is body text\r\nmore\r\n"
    assert b"Subject: s\r\n" in head and b"Message-ID:" in head


def test_no_header_at_all(inst):
    r = sendmail(inst, ["bob@example.com"], b"just text\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    fields = header_fields(qf["content"])
    assert {"message-id", "date", "from"} <= set(fields)
    assert header_and_body(qf["content"])[1] == b"just text\r\n"


# ------------------------------------------------------------ canonical maps

def test_canonical_maps(instance_factory):
    inst = instance_factory()
    maps = inst.dir / "maps"
    maps.mkdir()
    (maps / "sender").write_text("root@localhost  postmaster@example.org\n"
                                 "@old.example  @new.example\n")
    (maps / "rcpt").write_text("bob@example.com  robert@example.net\n")
    (maps / "common").write_text("@example.net  @example.org\n")
    # cleanup runs as mail_owner, which may not be us: let it read them.
    for p in [inst.dir, maps] + list(maps.iterdir()):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    ensure_cleanup(inst)
    inst.set_config("sender_canonical_maps", f"file:{maps}/sender")
    inst.set_config("recipient_canonical_maps", f"file:{maps}/rcpt")
    inst.set_config("canonical_maps", f"file:{maps}/common")
    inst.start()
    msg = (b"From: Someone <someone@old.example>\n"
           b"To: Bob <bob@example.com>, carol@example.com\n"
           b"Cc: x@example.net\nSubject: maps\n\nbody\n")
    r = sendmail(inst, ["-f", "root@localhost", "bob@example.com",
                        "carol@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["sender"] == "postmaster@example.org"
    rcpts = {x["rcpt"]: x for x in qf["rcpts"]}
    # recipient_canonical, then canonical (@example.net -> @example.org)
    assert set(rcpts) == {"robert@example.org", "carol@example.com"}
    assert rcpts["robert@example.org"]["original"] == "bob@example.com"
    assert "original" not in rcpts["carol@example.com"]
    fields = header_fields(qf["content"])
    assert fields["from"] == [b"Someone <someone@new.example>"]
    assert fields["subject"] == [b"maps"]
    assert fields["to"] == [b"Bob <robert@example.org>, carol@example.com"]
    assert fields["cc"] == [b"x@example.org"]


# ------------------------------------------------------------ crashes

def test_kill_9_mid_stream(inst):
    inst.expect_crash = True
    p = subprocess.Popen([str(SENDMAIL), "-C", str(inst.dir), "-i",
                          "bob@example.com"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"Subject: doomed\n\n" + b"z" * 200000 + b"\n")
        p.stdin.flush()
        wait_for(lambda: queue_ids(inst, "incoming") != [], what="incoming/ file")
        pids = cleanup_pids(inst)
        assert pids, "no cleanup process found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        try:
            p.stdin.write(b"more\n" * 100000)
            p.stdin.close()
        except BrokenPipeError:
            pass
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == EX_TEMPFAIL, p.stderr.read()
    assert queue_ids(inst, "active") == []
    # The client removed the incomplete file (it may reach the queue).
    assert queue_ids(inst, "incoming") == []


@pytest.mark.parametrize("point,queued", [
    ("before-commit", False),   # end record never written: 4xx, nothing kept
    ("before-rename", True),    # complete in incoming/: client finishes the commit
    ("after-commit", True),     # committed, verdict lost: client answers from disk
])
def test_crash_during_commit_answered_from_disk(instance_factory, monkeypatch,
                                                point, queued):
    inst = start_with_cleanup(instance_factory, monkeypatch=monkeypatch,
                              env={"POSTERN_TEST_HOOKS": "1",
                                   "POSTERN_CLEANUP_KILLPOINT": point})
    inst.expect_crash = True
    r = sendmail(inst, ["bob@example.com"], b"Subject: crash\n\nbody\n")
    if queued:
        assert r.returncode == EX_OK, r.stderr
        qid, qf = the_only(inst)
        assert [x["rcpt"] for x in qf["rcpts"]] == ["bob@example.com"]
        assert header_and_body(qf["content"])[1] == b"body\r\n"
        assert b"connection to cleanup lost" in r.stderr
    else:
        assert r.returncode == EX_TEMPFAIL, r.stderr
        assert b"4.3.0" in r.stderr
        assert all_queues_empty(inst)
    assert queue_ids(inst, "incoming") == []


def test_hook_ignored_without_test_flag(instance_factory, monkeypatch):
    inst = start_with_cleanup(instance_factory, monkeypatch=monkeypatch,
                              env={"POSTERN_CLEANUP_KILLPOINT": "after-commit"})
    monkeypatch.delenv("POSTERN_TEST_HOOKS", raising=False)
    r = sendmail(inst, ["bob@example.com"], b"Subject: x\n\nbody\n")
    assert r.returncode == EX_OK
    assert b"connection to cleanup lost" not in r.stderr


# ------------------------------------------------------------ wire protocol

def test_protocol_full_message(inst):
    s = connect(inst)
    qid = read_id(s)
    s.sendall(rec(b"F", struct.pack(">I", 0))
              + envelope("alice@example.org", [("x-test", "1")])
              + rcpt("bob@example.com")
              + rec(b"D", b"Received: by test\r\nSubject: p\r\n")
              + rec(b"D", b"\r\nbody\r\n")
              + rcpt("carol@example.com")
              + rec(b"."))
    assert read_status(s) == (0, "")
    s.close()
    assert queue_ids(inst, "active") == [qid]
    qf = qfcat(inst, "active", qid)
    assert qf["sender"] == "alice@example.org"
    assert qf["protocol"] == "ESMTP"
    assert qf["client_addr"] == "192.0.2.1"
    assert qf["attrs"] == {"x-test": "1"}
    assert [x["rcpt"] for x in qf["rcpts"]] == ["bob@example.com",
                                               "carol@example.com"]
    # No CLEANUP_FLAG_SUBMISSION: nothing added.
    assert qf["content"] == b"Received: by test\r\nSubject: p\r\n\r\nbody\r\n"


def test_protocol_hold_flag(inst):
    s = connect(inst)
    qid = read_id(s)
    s.sendall(rec(b"F", struct.pack(">I", 0x04)) + envelope("a@example.org")
              + rcpt("b@example.com") + rec(b"D", b"Subject: h\r\n\r\nx\r\n")
              + rec(b"."))
    assert read_status(s) == (0, "")
    assert queue_ids(inst, "hold") == [qid]
    assert queue_ids(inst, "active") == []


@pytest.mark.parametrize("garbage", [
    rec(b"?", b"x"),                                   # unknown type
    b"D" + struct.pack(">I", 0x7fffffff),              # too long: no allocation
    rec(b"E", b"\0" * 7),                              # truncated envelope
    rec(b"F", struct.pack(">I", 0)) + rcpt("b@example.com"),   # out of order
    rec(b"F", struct.pack(">I", 0)) + rec(b"E", b"\xff" * 100),
    rec(b"F", b"\0\0"),                                # short flags
])
def test_protocol_errors_leave_nothing(inst, garbage):
    s = connect(inst)
    read_id(s)
    s.sendall(garbage)
    s.shutdown(socket.SHUT_WR)
    t, _ = read_record(s)
    assert t is None          # closed without a verdict
    s.close()
    wait_for(lambda: all_queues_empty(inst), what="empty queues")
    inst.wait_for_log(r"protocol error")
    # cleanup lives on (or master replaced it): the next message works.
    r = sendmail(inst, ["bob@example.com"], b"Subject: after\n\nx\n")
    assert r.returncode == EX_OK


def test_client_goes_away_before_end(inst):
    s = connect(inst)
    read_id(s)
    s.sendall(rec(b"F", struct.pack(">I", 0)) + envelope("a@example.org")
              + rcpt("b@example.com") + rec(b"D", b"Subject: gone\r\n"))
    time.sleep(0.1)
    s.close()
    wait_for(lambda: all_queues_empty(inst), what="empty queues")
    inst.wait_for_log(r"client went away before the end of the message")


def test_bad_recipient_rejected_after_end(inst):
    s = connect(inst)
    read_id(s)
    s.sendall(rec(b"F", struct.pack(">I", 0)) + envelope("a@example.org")
              + rcpt("not an address") + rec(b"D", b"Subject: x\r\n\r\nx\r\n")
              + rec(b"."))
    status, reason = read_status(s)
    assert status == 2 and reason.startswith("5.1.3")
    assert all_queues_empty(inst)


def test_qmgr_fifo_woken(instance_factory):
    inst = instance_factory()
    ensure_cleanup(inst)
    inst.start()
    wait_for(lambda: (spool(inst) / "public" / "cleanup").exists())
    fifo = spool(inst) / "public" / "qmgr"
    if fifo.exists():
        pytest.skip("a qmgr fifo already exists here")
    os.mkfifo(fifo)
    os.chmod(fifo, 0o622)       # cleanup may run as another user
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = sendmail(inst, ["bob@example.com"], b"Subject: w\n\nx\n")
        assert r.returncode == EX_OK
        deadline = time.monotonic() + 5
        got = b""
        while not got and time.monotonic() < deadline:
            try:
                got = os.read(fd, 16)   # b"" while no writer has it open
            except BlockingIOError:
                pass
            if not got:
                time.sleep(0.02)
        assert got == b"A"
    finally:
        os.close(fd)
        os.unlink(fifo)
