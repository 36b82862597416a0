# SPDX-License-Identifier: MIT
"""Vacation replies end to end: settings made with `postern vacation set`
and Sieve scripts uploaded over ManageSieve (sieved, raw client); mail by
SMTP through the whole path (smtpd -> cleanup -> qmgr -> lmtp -> lmtpd
-> vacationd -> cleanup -> ... -> the sender's mailbox); the RFC 3834 /
RFC 5230 rules seen in vacationd's log; the reply read back from the
store (storecat) and checked byte by byte; the :days window crossed with
vacationd's test clock (POSTERN_TEST_HOOKS=1, POSTERN_TEST_NOW=file).
"""

import os
import shutil
import tempfile
from pathlib import Path
import re
import smtplib
import subprocess
import time

import pytest

from conftest import HOST, PROGS
from test_sieved import Raw, put

STORECAT = PROGS / "storecat"

PATH_SERVICES = [
    ("inet", "SMTP", "inet n - n - - smtpd"),
    ("unix", "cleanup", "unix n - n - 0 cleanup"),
    ("fifo", "qmgr", "fifo n - n 300 1 qmgr"),
    ("unix", "lmtp", "unix - - n - - smtp"),
    ("inet", "LMTP", "inet n - n - - lmtpd"),
    ("unix", "vacationd", "unix n - n - - vacationd"),
]


def _has_service(inst, kind, key):
    for raw in (inst.dir / "master.conf").read_text().splitlines():
        f = raw.split()
        if not f or raw.lstrip().startswith("#") or raw[0].isspace() or len(f) < 2:
            continue
        if kind == "inet":
            port = str(inst.port(key))
            if f[1] == "inet" and (f[0] == port or f[0].endswith(":" + port)):
                return True
        elif f[0] == key and f[1] == kind:
            return True
    return False


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            import socket
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(100)[:1] in (b"2", b"O", b"*", b'"'):
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing answers on {port}"
        time.sleep(0.05)


class Vac:
    """An instance with the mail path, vacationd and a settable clock."""

    def __init__(self, inst, clock):
        self.inst = inst
        self.clock = clock

    def now(self):
        return int(self.clock.read_text())

    def set_now(self, t):
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(f"{t}\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.clock)

    def send(self, sender, rcpts, data):
        with smtplib.SMTP(HOST, self.inst.port("SMTP"), timeout=30) as s:
            s.ehlo("client.example")
            return s.sendmail(sender, rcpts, data)

    def messages(self, user):
        r = subprocess.run([str(STORECAT), str(self.inst.dir / "store"), user,
                            "ls", "INBOX"], capture_output=True, timeout=60)
        if r.returncode != 0:
            return []
        out = []
        for line in r.stdout.decode().splitlines():
            uid = line.split("\t")[0]
            c = subprocess.run([str(STORECAT), str(self.inst.dir / "store"),
                                user, "cat", "INBOX", uid],
                               capture_output=True, timeout=60, check=True)
            out.append(c.stdout)
        return out

    def wait_messages(self, user, count, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(user)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{user}: {len(got)} of {count} messages; log tail:\n"
                    + "\n".join(self.inst.log_text().splitlines()[-30:]))
            time.sleep(0.1)

    def wait_log(self, regex, start):
        return self.inst.wait_for_log(regex, timeout=30, start=start)


def make_vac(instance_factory, request, monkeypatch, config=None,
             users=("alice", "bob", "carol")):
    """An instance with the mail path and vacationd (config: more
    postern.conf settings; users: added to the user database)."""
    # daemons may run as other users (root made the instance): the
    # clock must be readable by vacationd
    clock_dir = Path(tempfile.mkdtemp(prefix="pst-vac-clock-"))
    os.chmod(clock_dir, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(clock_dir, ignore_errors=True))
    clock = clock_dir / "clock"
    clock.write_text(f"{int(time.time())}\n")
    os.chmod(clock, 0o644)
    monkeypatch.setenv("POSTERN_TEST_HOOKS", "1")
    monkeypatch.setenv("POSTERN_TEST_NOW", str(clock))
    inst = instance_factory()
    os.chmod(inst.dir, 0o755)
    for kind, key, rest in PATH_SERVICES:
        if not _has_service(inst, kind, key):
            head = f"{HOST}:{inst.port(key)}" if kind == "inet" else key
            inst.add_service(f"{head} {rest}")
    settings = {
        "smtpd_peername_lookup": "no",
        "mydestination": "localhost",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
        "service_throttle_time": "1s",
        "local_transport": f"lmtp:inet:{HOST}:{inst.port('LMTP')}",
    }
    settings.update(config or {})
    for k, v in settings.items():
        inst.set_config(k, v)
    for u in users:
        inst.postern("user", "add", u, "--password-stdin", input="pw\n")
    inst.start()
    for p in ("SMTP", "LMTP", "SIEVE"):
        wait_port(inst.port(p))
    deadline = time.monotonic() + 15
    while not (inst.dir / "spool" / "public" / "vacationd").exists():
        assert time.monotonic() < deadline, "vacationd never started"
        time.sleep(0.05)
    return Vac(inst, clock)


@pytest.fixture
def vac(instance_factory, request, monkeypatch):
    return make_vac(instance_factory, request, monkeypatch)


def msg(subject, frm, to, msgid, extra="", refs=None):
    r = f"References: {refs}\r\n" if refs else ""
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\n{r}Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
            f"{extra}\r\nbody of {subject}\r\n").encode()


def date_of(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime(t))


def reply_header_re(frm, to, subject, t, in_reply_to, references, ctype, body):
    """The exact bytes vacationd writes (Message-ID's digits aside),
    as a regex over the stored message."""
    parts = [
        re.escape(f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
                  f"Date: {date_of(t)}\r\n"),
        rf"Message-ID: <{t}\.\d+\.\d+\.vacation@[^>\r\n]+>\r\n",
        re.escape(f"In-Reply-To: {in_reply_to}\r\nReferences: {references}\r\n"
                  "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                  f"{ctype}\r\n{body}"),
    ]
    return re.compile("".join(parts).encode() + rb"\Z")


def test_setting_cli_rules_and_window(vac, tmp_path):
    inst = vac.inst
    text = tmp_path / "away.txt"
    text.write_text("I am away until December.\nYour mail will be read later.\n")
    t0 = vac.now()
    inst.postern("vacation", "set", "alice", "--from", f"@{t0 - 3600}",
                 "--until", f"@{t0 + 30 * 86400}", "--subject", "Out of office",
                 "--message-file", text, "--addresses", "alice@dept.example",
                 "--days", "7")
    show = inst.postern("vacation", "show", "alice").stdout
    assert "vacation: active" in show
    assert "subject: Out of office" in show
    assert "addresses: alice@dept.example" in show
    assert "days: 7" in show
    assert "I am away until December." in show

    # 1. bob writes to alice: one reply, exactly these bytes
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("plans", "Bob <bob@localhost>", "Alice <alice@localhost>",
                 "<m1@example.org>", refs="<m0@example.org>"))
    got = vac.wait_messages("bob", 1)
    vac.wait_log(r"vacationd\[\d+\]: \S+: user=alice, from=<bob@localhost>: "
                 r"vacation reply sent as", mark)
    rx = reply_header_re(
        "<alice@localhost>", "<bob@localhost>", "Out of office", t0,
        "<m1@example.org>", "<m0@example.org>\r\n <m1@example.org>",
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n",
        "I am away until December.\r\nYour mail will be read later.\r\n")
    assert rx.search(got[0]), got[0]
    assert re.search(rb"(?m)^Return-Path: <>\r$", got[0]) or \
        b"Return-Path" not in got[0], got[0]
    assert len(vac.wait_messages("alice", 1)) == 1

    # 2. bob again: alice gets it, bob gets no second reply
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("plans 2", "bob@localhost", "alice@localhost", "<m2@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: no vacation reply: already answered",
                 mark)

    # 3. the rules: each message delivered, none answered
    cases = [
        ("List-Id: <l.example.org>\r\n", "mailing list message"),
        ("List-Unsubscribe: <mailto:x@example.org>\r\n", "mailing list message"),
        ("Precedence: bulk\r\n", "Precedence bulk, list or junk"),
        ("Auto-Submitted: auto-generated\r\n", "Auto-Submitted message"),
        ("X-Spam-Flag: YES\r\n", "marked as spam"),
    ]
    for i, (extra, why) in enumerate(cases):
        mark = inst.log_mark()
        vac.send("carol@localhost", ["alice@localhost"],
                 msg(f"rule {i}", "carol@localhost", "alice@localhost",
                     f"<r{i}@example.org>", extra=extra))
        vac.wait_log(r"from=<carol@localhost>: no vacation reply: "
                     + re.escape(why), mark)
    # Auto-Submitted: no is an ordinary message, but carol is answered
    # only once, so check it last (below)
    # a Bcc recipient: alice in the envelope only
    mark = inst.log_mark()
    vac.send("carol@localhost", ["alice@localhost", "bob@localhost"],
             msg("bcc", "carol@localhost", "bob@localhost", "<b1@example.org>"))
    vac.wait_log(r"from=<carol@localhost>: no vacation reply: not addressed",
                 mark)
    # the null sender and a -request sender
    mark = inst.log_mark()
    vac.send("", ["alice@localhost"],
             msg("null", "x@example.org", "alice@localhost", "<n1@example.org>"))
    vac.wait_log(r"from=<>: no vacation reply: null sender", mark)
    mark = inst.log_mark()
    vac.send("list-request@localhost", ["alice@localhost"],
             msg("req", "list-request@localhost", "alice@localhost",
                 "<q1@example.org>"))
    vac.wait_log(r"no vacation reply: sender is a mailer or list address", mark)
    # To: an extra address (--addresses), Auto-Submitted: no: answered
    mark = inst.log_mark()
    vac.send("carol@localhost", ["alice@localhost"],
             msg("dept", "carol@localhost", "Team <alice@dept.example>",
                 "<d1@example.org>", extra="Auto-Submitted: no\r\n"))
    vac.wait_log(r"from=<carol@localhost>: vacation reply sent", mark)
    assert len(vac.wait_messages("carol", 1)) == 1
    assert len(vac.messages("bob")) == 2    # the reply + the bcc copy

    # 4. eight days later (the test clock): bob is answered again
    t1 = t0 + 8 * 86400
    vac.set_now(t1)
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("plans 3", "bob@localhost", "alice@localhost", "<m3@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: vacation reply sent", mark)
    got = vac.wait_messages("bob", 3)
    assert any(re.search(rb"(?m)^Date: " + re.escape(date_of(t1).encode()), m)
               and b"In-Reply-To: <m3@example.org>" in m for m in got), got

    # 5. off: no more requests
    inst.postern("vacation", "off", "alice")
    assert "vacation: off" in inst.postern("vacation", "show", "alice").stdout
    vac.set_now(t1 + 30 * 86400)
    mark = inst.log_mark()
    vac.send("carol@localhost", ["alice@localhost"],
             msg("after", "carol@localhost", "alice@localhost", "<o1@example.org>"))
    vac.wait_messages("alice", 13)
    time.sleep(1)
    assert "vacation" not in inst.log_text()[mark:].replace("vacation_", "")


def test_cli_errors(vac, tmp_path):
    inst = vac.inst
    text = tmp_path / "t"
    text.write_text("x\n")
    r = inst.postern("vacation", "set", "nosuch", "--from", "now", "--until",
                     "2099-01-01", "--message-file", text, check=False)
    assert r.returncode == 1 and "no such user" in r.stderr
    r = inst.postern("vacation", "set", "alice", "--from", "2030-01-02",
                     "--until", "2030-01-01", "--message-file", text, check=False)
    assert r.returncode == 2
    r = inst.postern("vacation", "set", "alice", "--from", "yesterday",
                     "--until", "2030-01-01", "--message-file", text, check=False)
    assert r.returncode == 2
    inst.postern("vacation", "set", "alice", "--from", "2030-01-01",
                 "--until", "2030-01-31", "--message-file", text)
    show = inst.postern("vacation", "show", "alice").stdout
    assert "set, not active now" in show and "from: 2030-01-01 00:00:00" in show
    assert "until: 2030-02-01 00:00:00" in show


def upload(inst, user, script, name="main"):
    r = Raw(inst)
    r.login(user)
    lines, final = put(r, name, script)
    assert final.startswith(b"OK"), final
    assert r.cmd(f'SETACTIVE "{name}"')[1].startswith(b"OK")
    r.cmd("LOGOUT")
    r.close()


def test_sieve_vacation_by_managesieve(vac):
    inst = vac.inst
    upload(inst, "alice",
           'require ["vacation", "fileinto"];\r\n'
           'vacation :days 2 :from "Alice A <alice@localhost>"\r\n'
           '  :addresses ["alice@dept.example"] :handle "h1"\r\n'
           '  "Back on Monday.";\r\n')
    t0 = vac.now()
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("=?utf-8?q?caf=C3=A9?=", "bob@localhost", "alice@dept.example",
                 "<s1@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: vacation reply sent", mark)
    got = vac.wait_messages("bob", 1)
    rx = reply_header_re(
        "Alice A <alice@localhost>", "<bob@localhost>",
        "Auto: =?utf-8?q?caf=C3=A9?=", t0, "<s1@example.org>",
        "<s1@example.org>",
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n", "Back on Monday.\r\n")
    assert rx.search(got[0]), got[0]
    # twice: one reply; a day later still none; three days later again
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("again", "bob@localhost", "alice@localhost", "<s2@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: no vacation reply: already answered",
                 mark)
    vac.set_now(t0 + 86400)
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("again", "bob@localhost", "alice@localhost", "<s3@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: no vacation reply: already answered",
                 mark)
    vac.set_now(t0 + 3 * 86400)
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("again", "bob@localhost", "alice@localhost", "<s4@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: vacation reply sent", mark)
    assert len(vac.wait_messages("bob", 2)) == 2
    assert len(vac.wait_messages("alice", 4)) == 4


def test_sieve_vacation_mime_and_utf8_subject(vac):
    inst = vac.inst
    upload(inst, "alice",
           'require ["vacation"];\r\n'
           'vacation :mime :subject "Absent \xc3\xa9t\xc3\xa9" text:\r\n'
           'Content-Type: text/plain; charset=utf-8\r\n'
           'Content-Transfer-Encoding: 8bit\r\n'
           '\r\n'
           'Je suis absente cet \xc3\xa9t\xc3\xa9.\r\n'
           '.\r\n;\r\n'.encode("latin-1").decode("utf-8"))
    t0 = vac.now()
    mark = inst.log_mark()
    vac.send("bob@localhost", ["alice@localhost"],
             msg("hi", "bob@localhost", "alice@localhost", "<u1@example.org>"))
    vac.wait_log(r"from=<bob@localhost>: vacation reply sent", mark)
    got = vac.wait_messages("bob", 1)
    subject = "=?utf-8?B?" + __import__("base64").b64encode(
        "Absent été".encode()).decode() + "?="
    rx = reply_header_re(
        "<alice@localhost>", "<bob@localhost>", subject, t0,
        "<u1@example.org>", "<u1@example.org>",
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n",
        "Je suis absente cet été.\r\n")
    assert rx.search(got[0]), got[0]
