# SPDX-License-Identifier: MIT
"""lmtpd: LMTP (RFC 2033) delivery into the mail store.

Every test runs a real instance with lmtpd on its LMTP port (and, where
said, on the private UNIX socket) and speaks to it with Python's
smtplib.LMTP, swaks --protocol LMTP, or a raw socket when the exact
replies matter (one per recipient after DATA). What was stored is read
back with tests/progs/storecat, which reads the store through
lib/store/store.h.
"""

import os
import signal
import socket
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import HOST, PROGS, pid_alive

STORECAT = PROGS / "storecat"


# ------------------------------------------------------------------ helpers
class Lmtp:
    """A raw LMTP client: exact bytes out, every reply line back."""

    def __init__(self, port=None, path=None, timeout=20):
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(path))
        else:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One (possibly multi-line) reply: (code, [text lines])."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("connection closed")
            assert line.endswith(b"\r\n"), line
            code, sep, text = int(line[:3]), line[3:4], line[4:-2]
            lines.append(text.decode(errors="replace"))
            if sep != b"-":
                return code, lines

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def lhlo(self):
        code, lines = self.cmd("LHLO test.example")
        assert code == 250, lines
        return lines

    def data(self, content, nrcpt):
        """DATA with dot-stuffing; returns the nrcpt replies."""
        code, lines = self.cmd("DATA")
        assert code == 354, lines
        self.send(stuff(content) + b".\r\n")
        return [self.reply() for _ in range(nrcpt)]


def stuff(content):
    """content (CRLF lines) dot-stuffed and ending in CRLF."""
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    out = []
    for line in content.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n"


def message(subject="test", body=b"Hello.\r\n", msgid=None, extra=b""):
    hdr = (f"From: sender@example.org\r\nTo: alice@localhost\r\n"
           f"Subject: {subject}\r\n").encode()
    if msgid:
        hdr += f"Message-ID: <{msgid}>\r\n".encode()
    return hdr + extra + b"\r\n" + body


def storecat(inst, user, *args, check=True):
    r = subprocess.run([str(STORECAT), str(inst.dir / "store"), user]
                       + [str(a) for a in args], capture_output=True,
                       timeout=60)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


def ls(inst, user, mailbox="INBOX"):
    """[(uid, flags, size)] of a mailbox ([] if it does not exist)."""
    r = storecat(inst, user, "ls", mailbox, check=False)
    if r.returncode != 0 and b"no such mailbox" in r.stderr:
        return []
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    rows = []
    for line in out.splitlines():
        uid, flags, size, _kw = line.split("\t")
        rows.append((int(uid), int(flags, 16), int(size)))
    return rows


def cat(inst, user, uid, mailbox="INBOX"):
    return storecat(inst, user, "cat", mailbox, uid).stdout


def mailboxes(inst, user):
    out = storecat(inst, user, "mailboxes").stdout.decode()
    return {line.split("\t")[0]: int(line.split("\t")[1], 16)
            for line in out.splitlines()}


def lmtp_instance(factory, users=("alice", "bob"), unix=False, **config):
    """An instance with lmtpd on LMTP_PORT (and private/lmtpd), started."""
    inst = factory()
    # XXX the fixture's directory is mkdtemp's 0700: as root, the daemons
    # (nobody or postern-mail) could not reach store/ and data/ in it.
    os.chmod(inst.dir, 0o755)
    for key, value in config.items():
        inst.set_config(key, value)
    conf = (inst.dir / "master.conf").read_text()
    live = [l for l in conf.splitlines() if l.strip() and not l.startswith("#")]
    if not any(f":{inst.port('LMTP')} " in l for l in live):
        inst.add_service(f"{HOST}:{inst.port('LMTP')} inet n - n - - lmtpd")
    if unix and not any(l.split()[0] == "lmtpd" for l in live):
        inst.add_service("lmtpd unix - - n - - lmtpd")
    for user in users:
        inst.postern("user", "add", user, "--password-stdin", input="pw\n")
    inst.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((HOST, inst.port("LMTP")), timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return inst


def deliver(inst, rcpts, content, sender="sender@example.org", tokens=None):
    """One transaction; returns (rcpt replies, data replies)."""
    c = Lmtp(inst.port("LMTP"))
    try:
        c.lhlo()
        assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
        rr = []
        for i, r in enumerate(rcpts):
            tok = f" XTOKEN={tokens[i]}" if tokens else ""
            rr.append(c.cmd(f"RCPT TO:<{r}>{tok}"))
        ok = sum(1 for code, _ in rr if code == 250)
        dr = c.data(content, ok) if ok else []
        c.cmd("QUIT")
        return rr, dr
    finally:
        c.close()


def lmtpd_pids(inst):
    """Pids of the instance's lmtpd workers (children of master)."""
    master = inst.master_pid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid == master and argv0.endswith(b"lmtpd"):
            pids.append(int(entry))
    return pids


# ------------------------------------------------------------------ tests
def test_lhlo_and_smtplib(instance_factory):
    inst = lmtp_instance(instance_factory)
    with smtplib.LMTP(HOST, inst.port("LMTP"), timeout=20) as s:
        code, _ = s.ehlo()  # smtplib.LMTP sends LHLO
        assert code == 250
        for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "size",
                    "chunking", "xpostern-token"):
            assert s.has_extn(ext), ext
        msg = message("smtplib")
        refused = s.sendmail("sender@example.org", ["alice@localhost"], msg)
        assert refused == {}
    rows = ls(inst, "alice")
    assert len(rows) == 1
    assert cat(inst, "alice", rows[0][0]) == msg
    env = storecat(inst, "alice", "cached", "INBOX", rows[0][0], "envelope").stdout
    assert b'"smtplib"' in env
    bs = storecat(inst, "alice", "cached", "INBOX", rows[0][0], "bodystructure").stdout
    assert bs.startswith(b'("text" "plain"') or bs.upper().startswith(b'("TEXT" "PLAIN"')


def test_helo_refused_and_lhlo_required(instance_factory):
    inst = lmtp_instance(instance_factory)
    c = Lmtp(inst.port("LMTP"))
    assert c.greeting[0] == 220
    assert c.cmd("EHLO x")[0] == 500
    assert c.cmd("HELO x")[0] == 500
    code, lines = c.cmd("MAIL FROM:<a@b.c>")
    assert code == 503 and lines[0].startswith("5.5.1")
    c.lhlo()
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_per_recipient_replies(instance_factory):
    # bob fills his quota first; then one transaction: alice ok, carol
    # unknown, a remote domain, bob over quota (noticed at the append).
    inst = lmtp_instance(instance_factory, quota_storage_limit="6000")
    big = message("fill", body=b"x" * 4000 + b"\r\n")
    _, dr = deliver(inst, ["bob@localhost"], big)
    assert dr[0][0] == 250
    msg = message("mixed", body=b"y" * 2500 + b"\r\n")
    rr, dr = deliver(inst, ["alice@localhost", "carol@localhost",
                            "alice@example.net", "bob"], msg)
    assert rr[0][0] == 250
    assert rr[1][0] == 550 and rr[1][1][0].startswith("5.1.1")
    assert rr[2][0] == 550 and rr[2][1][0].startswith("5.1.2")
    assert rr[3][0] == 250  # no SIZE=: the quota is checked at the append
    assert len(dr) == 2
    assert dr[0][0] == 250 and dr[0][1][0].startswith("2.0.0 <alice@localhost>")
    assert dr[1][0] == 452 and dr[1][1][0].startswith("4.2.2 <bob>")
    assert len(ls(inst, "alice")) == 1
    assert len(ls(inst, "bob")) == 1


def test_quota_at_rcpt_with_size(instance_factory):
    inst = lmtp_instance(instance_factory, quota_storage_limit="6000",
                         quota_full_tempfail="no")
    _, dr = deliver(inst, ["bob@localhost"], message(body=b"x" * 4000 + b"\r\n"))
    assert dr[0][0] == 250
    c = Lmtp(inst.port("LMTP"))
    c.lhlo()
    assert c.cmd("MAIL FROM:<s@example.org> SIZE=2500")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    code, lines = c.cmd("RCPT TO:<bob@localhost>")
    assert code == 552 and lines[0].startswith("5.2.2"), lines
    assert c.cmd("RSET")[0] == 250
    c.close()


def test_binary_and_8bit_exact(instance_factory):
    inst = lmtp_instance(instance_factory)
    # 8-bit text by DATA (dot-stuffing undone exactly, bare CR kept)
    body8 = ("Grüße, naïve café – ½\r\n".encode() + bytes(range(0x80, 0x100))
             + b"\r\n.leading dot\r\n..two dots\r\n.\r\nbare\rCR\r\n")
    m8 = message("8bit", body=body8, extra=b"Content-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Transfer-Encoding: 8bit\r\n")
    c = Lmtp(inst.port("LMTP"))
    c.lhlo()
    assert c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.data(m8, 1)[0][0] == 250
    # every byte value, by BDAT BINARYMIME in two chunks
    mbin = (b"Subject: binary\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) * 8
            + b"\n.\n\r\n.\r\nend")
    assert c.cmd("MAIL FROM:<s@example.org> BODY=BINARYMIME")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    half = len(mbin) // 2
    c.send(f"BDAT {half}\r\n".encode() + mbin[:half])
    assert c.reply()[0] == 250
    c.send(f"BDAT {len(mbin) - half} LAST\r\n".encode() + mbin[half:])
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    rows = ls(inst, "alice")
    assert [r[0] for r in rows] == [1, 2]
    assert cat(inst, "alice", 1) == m8
    assert cat(inst, "alice", 2) == mbin
    assert rows[1][2] == len(mbin)


def test_dot_stuffing_and_smuggling(instance_factory):
    inst = lmtp_instance(instance_factory)
    c = Lmtp(inst.port("LMTP"))
    c.lhlo()
    # "\n.\n" and "\r\n.\n" are not the end; the bare LFs fail the message
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<bob@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\n"
           b"RCPT TO:<alice@localhost>\r\n.\r\n")
    r1, r2 = c.reply(), c.reply()
    assert r1[0] == 550 and r1[1][0].startswith("5.5.2")
    assert r2[0] == 550
    # the session is in step: a clean message goes through
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    m = message("dots", body=b".\r\n..\r\n...x\r\n. \r\n")
    assert c.data(m, 1)[0][0] == 250
    c.close()
    rows = ls(inst, "alice")
    assert len(rows) == 1
    assert cat(inst, "alice", rows[0][0]) == m


def test_pipelining(instance_factory):
    inst = lmtp_instance(instance_factory)
    c = Lmtp(inst.port("LMTP"))
    m = message("pipelined")
    c.send(b"LHLO x\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
           b"RCPT TO:<nobody@localhost>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(6)]
    assert codes == [250, 250, 250, 550, 250, 354]
    c.send(stuff(m) + b".\r\nQUIT\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 221]
    c.close()
    assert len(ls(inst, "alice")) == 1 and len(ls(inst, "bob")) == 1


def test_swaks(instance_factory):
    inst = lmtp_instance(instance_factory)
    r = subprocess.run(["swaks", "--protocol", "LMTP", "--server",
                        f"{HOST}:{inst.port('LMTP')}", "--to",
                        "alice@localhost,bob@localhost,zed@localhost",
                        "--from", "s@example.org", "--header",
                        "Subject: via swaks"],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert "550 5.1.1 <zed@localhost>" in out, out
    assert "250 2.0.0 <alice@localhost>" in out, out
    assert "250 2.0.0 <bob@localhost>" in out, out
    assert len(ls(inst, "alice")) == 1 and len(ls(inst, "bob")) == 1


def test_unix_socket(instance_factory):
    inst = lmtp_instance(instance_factory, unix=True)
    path = inst.dir / "spool" / "private" / "lmtpd"
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    c = Lmtp(path=path)
    c.lhlo()
    assert c.cmd("MAIL FROM:<>")[0] == 250
    assert c.cmd("RCPT TO:<alice>")[0] == 250
    assert c.data(message("unix"), 1)[0][0] == 250
    c.close()
    assert len(ls(inst, "alice")) == 1


def test_special_use_created(instance_factory):
    inst = lmtp_instance(instance_factory)
    _, dr = deliver(inst, ["alice@localhost"], message())
    assert dr[0][0] == 250
    boxes = mailboxes(inst, "alice")
    # RFC 6154 attributes, as STORE_MBOX_* bits (store.h), subscribed
    assert boxes["INBOX"] & 0x100
    assert boxes["Drafts"] & 0x1 and boxes["Sent"] & 0x2
    assert boxes["Trash"] & 0x4 and boxes["Junk"] & 0x8
    assert boxes["Archive"] & 0x10


def test_detail(instance_factory):
    inst = lmtp_instance(instance_factory)
    _, dr = deliver(inst, ["alice+lists@localhost"], message("d1"))
    assert dr[0][0] == 250
    storecat(inst, "alice", "create", "lists")
    _, dr = deliver(inst, ["alice+lists@localhost"], message("d2"))
    assert dr[0][0] == 250
    # lmtp_save_to_detail_mailbox = no (default): both in INBOX
    assert len(ls(inst, "alice")) == 2
    assert ls(inst, "alice", "lists") == []
    inst.stop()
    inst.set_config("lmtp_save_to_detail_mailbox", "yes")
    inst.start()
    time.sleep(0.3)
    _, dr = deliver(inst, ["Alice+lists@localhost", "alice+nosuch@localhost",
                           "alice+@localhost"], message("d3"))
    assert [d[0] for d in dr] == [250, 250, 250]
    assert len(ls(inst, "alice", "lists")) == 1
    assert len(ls(inst, "alice")) == 4
    assert b"d3" in cat(inst, "alice", 1, "lists")


def test_xtoken_dedupe(instance_factory):
    inst = lmtp_instance(instance_factory)
    m = message("token")
    tok = "1J0000000000000000/0"
    rr, dr = deliver(inst, ["alice@localhost", "bob@localhost"], m,
                     tokens=[tok, "1J0000000000000000/1"])
    assert [d[0] for d in dr] == [250, 250]
    # the retry of the same hand-off: acknowledged, not stored again
    rr, dr = deliver(inst, ["alice@localhost", "bob@localhost"], m,
                     tokens=[tok, "1J0000000000000000/1"])
    assert [r[0] for r in rr] == [250, 250]
    assert [d[0] for d in dr] == [250, 250]
    assert "already" in dr[0][1][0]
    assert len(ls(inst, "alice")) == 1 and len(ls(inst, "bob")) == 1
    # xtext-encoded token; a new token is a new message
    rr, dr = deliver(inst, ["alice@localhost"], m, tokens=["1J0000000000000001/2+2B"])
    assert dr[0][0] == 250
    assert len(ls(inst, "alice")) == 2
    log = inst.log_text()
    assert "1J0000000000000000: to=<alice@localhost>" in log


def test_xtoken_bad(instance_factory):
    inst = lmtp_instance(instance_factory)
    c = Lmtp(inst.port("LMTP"))
    c.lhlo()
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    for bad in ("XTOKEN=", "XTOKEN=a+zz", "XTOKEN=a XTOKEN=b",
                "XTOKEN=" + "a" * 200, "XTOKEN=a+20b"):
        code, lines = c.cmd(f"RCPT TO:<alice@localhost> {bad}")
        assert code == 501, (bad, lines)
    code, lines = c.cmd("RCPT TO:<alice@localhost> NOTIFY=NEVER")
    assert code == 555, lines  # DSN is not offered
    # a quoted local part holding " XTOKEN=" is not a parameter
    code, lines = c.cmd('RCPT TO:<"a XTOKEN=b"@localhost>')
    assert code == 550 and lines[0].startswith("5.1.1"), lines
    c.close()


def test_duplicate_suppression(instance_factory):
    inst = lmtp_instance(instance_factory, lmtp_duplicate_window="1h")
    m = message("dup", msgid="abc.123@example.org")
    _, dr = deliver(inst, ["alice@localhost"], m)
    assert dr[0][0] == 250
    _, dr = deliver(inst, ["alice@localhost", "bob@localhost"], m)
    assert dr[0][0] == 250 and "duplicate" in dr[0][1][0]
    assert dr[1][0] == 250 and "duplicate" not in dr[1][1][0]
    assert len(ls(inst, "alice")) == 1 and len(ls(inst, "bob")) == 1
    _, dr = deliver(inst, ["alice@localhost"], message("other", msgid="x@y"))
    assert len(ls(inst, "alice")) == 2


def test_no_duplicate_suppression_by_default(instance_factory):
    inst = lmtp_instance(instance_factory)
    m = message("dup", msgid="abc.123@example.org")
    deliver(inst, ["alice@localhost"], m)
    deliver(inst, ["alice@localhost"], m)
    assert len(ls(inst, "alice")) == 2


def test_concurrent_deliveries(instance_factory):
    inst = lmtp_instance(instance_factory)
    nthreads, per = 8, 15
    errors = []

    def worker(t):
        try:
            c = Lmtp(inst.port("LMTP"))
            c.lhlo()
            for i in range(per):
                assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
                assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
                r = c.data(message(f"t{t}-{i}", extra=f"X-Seq: {t}-{i}\r\n".encode()), 1)
                assert r[0][0] == 250, r
            c.cmd("QUIT")
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    rows = ls(inst, "alice")
    uids = [r[0] for r in rows]
    assert len(uids) == nthreads * per
    assert uids == sorted(set(uids))
    assert uids == list(range(1, nthreads * per + 1))
    seen = set()
    for uid in uids:
        data = cat(inst, "alice", uid)
        seq = data.split(b"X-Seq: ")[1].split(b"\r\n")[0]
        assert seq not in seen
        seen.add(seq)


def test_kill9_with_tokens(instance_factory):
    """kill -9 lmtpd while deliveries run; each message is retried with its
    token until acknowledged. At the end every message is in the store
    exactly once: no loss (acknowledged means durable) and no duplicate
    (the token makes a retried hand-off harmless)."""
    # master throttles a service whose worker died; keep that short
    inst = lmtp_instance(instance_factory, service_throttle_time="1s")
    inst.expect_crash = True
    n = 40
    done = threading.Event()
    attempts = [0]
    # failed attempts of the message in hand: after three the killer lets
    # it through, so a slow machine (sanitizers, load) where a delivery
    # outlasts the kill interval still makes progress
    failing = [0]

    def killer():
        while not done.is_set():
            time.sleep(0.05 + 0.1 * (attempts[0] % 4) / 4)
            if failing[0] >= 3:
                continue
            for pid in lmtpd_pids(inst):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    k = threading.Thread(target=killer)
    k.start()
    acked = set()
    try:
        for i in range(n):
            tok = f"1J00000000000000AB/{i}"
            m = message(f"k{i}", extra=f"X-Seq: {i}\r\n".encode(),
                        body=b"z" * 3000 + b"\r\n")
            deadline = time.monotonic() + 60
            failing[0] = 0
            while True:
                attempts[0] += 1
                try:
                    c = Lmtp(inst.port("LMTP"), timeout=10)
                    c.lhlo()
                    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
                    code, _ = c.cmd(f"RCPT TO:<alice@localhost> XTOKEN={tok}")
                    assert code == 250
                    (code, lines), = c.data(m, 1)
                    c.close()
                    if code == 250:
                        acked.add(i)
                        break
                except (OSError, ConnectionError, AssertionError):
                    pass
                failing[0] += 1
                assert time.monotonic() < deadline, f"message {i} never acknowledged"
                time.sleep(0.01)
    finally:
        done.set()
        k.join()
    assert acked == set(range(n))
    assert attempts[0] > n, "no delivery was interrupted: the test proved nothing"
    counts = {}
    for uid, _flags, _size in ls(inst, "alice"):
        seq = int(cat(inst, "alice", uid).split(b"X-Seq: ")[1].split(b"\r\n")[0])
        counts[seq] = counts.get(seq, 0) + 1
    assert counts == {i: 1 for i in range(n)}, counts
    # lmtpd comes back after the kills
    _, dr = deliver(inst, ["bob@localhost"], message("after"))
    assert dr[0][0] == 250


def test_bad_input(instance_factory):
    inst = lmtp_instance(instance_factory)
    c = Lmtp(inst.port("LMTP"))
    code, lines = c.cmd("X" * 5000)
    assert code == 500 and lines[0].startswith("5.5.2")
    code, lines = c.cmd(b"NOOP a\0b")
    assert code == 500, lines
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 503
    c.lhlo()
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 503
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 503
    assert c.cmd("DATA")[0] == 503  # no recipient yet
    assert c.cmd("BDAT x")[0] == 501
    assert c.cmd("BDAT 1 LAST extra")[0] == 501
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.cmd("MAIL FROM:<bad address>")[0] in (501, 503)
    assert c.cmd("STARTTLS")[0] == 502
    assert c.cmd("FOO")[0] == 500
    assert c.cmd("RSET")[0] == 250
    # BDAT whose announced size does not match what follows: the chunk
    # takes the next bytes, the rest is read as commands (500), the
    # session stays usable
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    c.send(b"BDAT 10\r\nhello\r\nRSET\r\n")
    code, _ = c.reply()
    assert code == 250  # "hello\r\nRSE" was the chunk
    assert c.reply()[0] == 500  # "T"
    assert c.cmd("RSET")[0] == 250
    # a DATA line over lmtpd_line_length_limit fails the message
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: long\r\n\r\n" + b"a" * (1024 * 1024 + 10) + b"\r\n.\r\n")
    code, lines = c.reply()
    assert code == 552 and lines[0].startswith("5.3.4"), lines
    c.cmd("QUIT")
    c.close()
    # still up, and nothing was stored by any of that
    _, dr = deliver(inst, ["alice@localhost"], message("after bad input"))
    assert dr[0][0] == 250
    assert len(ls(inst, "alice")) == 1


def test_size_limit(instance_factory):
    inst = lmtp_instance(instance_factory, lmtpd_message_size_limit="2k")
    c = Lmtp(inst.port("LMTP"))
    lines = c.lhlo()
    assert "SIZE 2048" in lines
    code, lines = c.cmd("MAIL FROM:<s@example.org> SIZE=5000")
    assert code == 552 and lines[0].startswith("5.3.4")
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    assert c.cmd("RCPT TO:<bob@localhost>")[0] == 250
    replies = c.data(message(body=b"q" * 3000 + b"\r\n"), 2)
    assert [r[0] for r in replies] == [552, 552]
    # BDAT over the limit: the chunk is read, then 552 at LAST
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
    c.send(b"BDAT 3000 LAST\r\n" + b"b" * 3000)
    assert c.reply()[0] == 552
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert ls(inst, "alice") == []


def test_large_message_spooled(instance_factory):
    inst = lmtp_instance(instance_factory)
    body = b"".join(b"line %06d " % i + b"x" * 60 + b"\r\n" for i in range(20000))
    m = message("large", body=body)
    _, dr = deliver(inst, ["alice@localhost", "bob@localhost"], m)
    assert [d[0] for d in dr] == [250, 250]
    assert cat(inst, "alice", 1) == m and cat(inst, "bob", 1) == m


def test_user_cli_store_side(instance_factory):
    """postern user show / quota / del [--keep-mail] on the store."""
    inst = lmtp_instance(instance_factory)
    m = message("cli", body=b"c" * 1000 + b"\r\n")
    _, dr = deliver(inst, ["alice@localhost"], m)
    assert dr[0][0] == 250
    out = inst.postern("user", "show", "alice").stdout
    assert "user: alice" in out
    assert "quota: 1073741824 bytes (quota_storage_limit)" in out
    assert f"usage: {len(m)} bytes, 1 messages" in out
    assert f"INBOX\tmessages=1 unseen=1 size={len(m)}" in out
    assert "Sent\tmessages=0" in out and "\\Sent" in out
    out = inst.postern("user", "show", "bob").stdout
    assert "no mail yet" in out
    assert not (inst.dir / "store" / "bob").exists()  # show created nothing
    assert inst.postern("user", "quota", "alice").stdout.strip() == \
        "alice: 1073741824 (quota_storage_limit)"
    assert inst.postern("user", "quota", "alice", "2g").stdout.strip() == \
        "alice: 2147483648 (user database)"
    assert "quota: 2147483648 bytes (user database)" in \
        inst.postern("user", "show", "alice").stdout
    # --keep-mail: the user goes, the mail stays
    inst.postern("user", "del", "alice", "--keep-mail")
    assert (inst.dir / "store" / "alice").is_dir()
    rr, _ = deliver(inst, ["alice@localhost"], m)
    assert rr[0][0] == 550
    inst.postern("user", "add", "alice", "--password-stdin", input="pw\n")
    assert len(ls(inst, "alice")) == 1
    # del: the mail goes too
    inst.postern("user", "del", "alice")
    assert not (inst.dir / "store" / "alice").exists()
    assert list((inst.dir / "store").iterdir()) == []
    assert inst.postern("user", "show", "alice", check=False).returncode == 1
