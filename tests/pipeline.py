# SPDX-License-Identifier: MIT
"""The whole mail path on one instance, for test_pipeline.py and
test_durability.py:

    SMTP client -> smtpd -> cleanup -> queue -> qmgr -> lmtp agent (smtp)
                -> lmtpd (LMTP_PORT) -> mail store

    p = make_pipeline(instance_factory, users=("alice", "bob"))
    p.send("sender@example.org", ["alice@localhost"], msg)   # smtplib
    p.wait_delivered("alice", 1)
    assert p.cat("alice", 1) == expected_bytes                # storecat
    p.wait_queue_empty()                                      # postern queue list

add_pipeline_services() appends exactly the service lines master.conf
lacks, so these tests keep working once `postern instance init` writes
the pipeline itself. Whatever init writes, local mail goes to lmtpd on
LMTP_PORT (local_transport = lmtp:inet:127.0.0.1:LMTP_PORT).
"""

import os
import re
import smtplib
import socket
import subprocess
import time

from conftest import BIN, HOST, PROGS, _children, pid_alive

STORECAT = PROGS / "storecat"
SENDMAIL = BIN / "sendmail"

# (kind, key, rest of the line): for inet, key is the port name and the
# line starts 127.0.0.1:PORT; for unix and fifo, key is the service name.
PIPELINE_SERVICES = [
    ("inet", "SMTP", "inet n - n - - smtpd"),
    ("unix", "cleanup", "unix n - n - 0 cleanup"),
    ("fifo", "qmgr", "fifo n - n 300 1 qmgr"),
    ("unix", "lmtp", "unix - - n - - smtp"),
    ("inet", "LMTP", "inet n - n - - lmtpd"),
]

# The daemons of the path, as their process names.
DAEMONS = ("smtpd", "cleanup", "qmgr", "smtp", "lmtpd")


def service_lines(inst):
    """master.conf's service lines (comments dropped, continuations
    joined), each split into fields."""
    lines = []
    for raw in (inst.dir / "master.conf").read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and lines:
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw.strip())
    return [l.split() for l in lines]


def has_service(inst, kind, key):
    for fields in service_lines(inst):
        if len(fields) < 2:
            continue
        if kind == "inet":
            port = str(inst.port(key))
            if fields[1] == "inet" and (fields[0] == port
                                        or fields[0].endswith(":" + port)):
                return True
        elif fields[0] == key and fields[1] == kind:
            return True
    return False


def add_pipeline_services(inst):
    """Append the pipeline's service lines that master.conf lacks;
    returns the lines added."""
    added = []
    for kind, key, rest in PIPELINE_SERVICES:
        if has_service(inst, kind, key):
            continue
        head = f"{HOST}:{inst.port(key)}" if kind == "inet" else key
        line = f"{head} {rest}"
        inst.add_service(line)
        added.append(line)
    return added


DEFAULT_CONFIG = {
    "smtpd_peername_lookup": "no",
    "mydestination": "localhost",
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "1s",
    "service_throttle_time": "1s",
}


class Pipeline:
    """An instance running the whole path, and ways to look into it."""

    def __init__(self, inst):
        self.inst = inst
        self.spool = inst.dir / "spool"
        self.store = inst.dir / "store"

    # ------------------------------------------------------------ input
    def smtp(self, timeout=30):
        """A connected smtplib.SMTP client after EHLO."""
        s = smtplib.SMTP(HOST, self.inst.port("SMTP"), timeout=timeout)
        s.ehlo("client.example")
        return s

    def send(self, sender, rcpts, msg, mail_options=(), rcpt_options=()):
        """One message by smtplib (DATA); returns the refused recipients
        ({} when all were accepted). Raises on a failed transaction."""
        with self.smtp() as s:
            return s.sendmail(sender, rcpts, msg, list(mail_options),
                              list(rcpt_options))

    def sendmail(self, args, data, env=None):
        """The sendmail command (as the test's user) with this instance."""
        full = dict(os.environ, POSTERN_CONFIG_DIR=str(self.inst.dir))
        full.update(env or {})
        return subprocess.run([str(SENDMAIL), "-C", str(self.inst.dir)]
                              + list(args), input=data, capture_output=True,
                              timeout=60, env=full)

    # ------------------------------------------------------------ store
    def storecat(self, user, *args, check=True):
        r = subprocess.run([str(STORECAT), str(self.store), user]
                           + [str(a) for a in args], capture_output=True,
                           timeout=120)
        if check:
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r

    def ls(self, user, mailbox="INBOX"):
        """[(uid, flags, size)] of a mailbox; [] if it does not exist."""
        r = self.storecat(user, "ls", mailbox, check=False)
        if r.returncode != 0 and (b"no such" in r.stderr.lower()
                                  or b"not found" in r.stderr.lower()):
            return []
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        rows = []
        for line in r.stdout.decode().splitlines():
            uid, flags, size, _kw = line.split("\t")
            rows.append((int(uid), int(flags, 16), int(size)))
        return rows

    def cat(self, user, uid, mailbox="INBOX"):
        return self.storecat(user, "cat", mailbox, uid).stdout

    def messages(self, user, mailbox="INBOX"):
        """Every message of a mailbox, in UID order, as bytes."""
        return [self.cat(user, uid, mailbox) for uid, _, _ in self.ls(user, mailbox)]

    def wait_delivered(self, user, count, timeout=30, mailbox="INBOX"):
        """Wait until user's mailbox holds at least count messages;
        returns its rows."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.ls(user, mailbox)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{user}/{mailbox} has {len(rows)} messages, not {count}, "
                    f"after {timeout}s; queue:\n{self.queue_list()}\nlog tail:\n"
                    + "\n".join(self.inst.log_text().splitlines()[-30:]))
            time.sleep(0.1)

    # ------------------------------------------------------------ queue
    def queue_list(self):
        return self.inst.postern("queue", "list").stdout

    def queue_ids(self, name):
        d = self.spool / name
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def queue_empty(self):
        return self.queue_list().strip() == "Mail queue is empty"

    def wait_queue_empty(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            out = self.queue_list()
            if out.strip() == "Mail queue is empty":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"queue not empty after {timeout}s:\n{out}")
            time.sleep(0.2)

    # ------------------------------------------------------------ processes
    def worker_pids(self, names=DAEMONS):
        """{pid: name} of master's workers whose process name is in names."""
        master = self.inst.master_pid()
        if master is None:
            return {}
        found = {}
        for pid in _children(master):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in names and pid_alive(pid):
                found[pid] = comm
        return found


def wait_port(port, timeout=15):
    """Wait until a server on port greets with 220."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(100).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing greets on port {port}")
        time.sleep(0.05)


def make_pipeline(instance_factory, users=("alice", "bob"), config=None,
                  start=True):
    """An instance with the whole path configured, users added and
    (unless start=False) started, with smtpd and lmtpd answering."""
    inst = instance_factory()
    # daemons run as mail_owner/store_owner when root made the instance:
    # let them reach data/ and store/ in the 0700 temporary directory
    os.chmod(inst.dir, 0o755)
    add_pipeline_services(inst)
    settings = dict(DEFAULT_CONFIG)
    settings["local_transport"] = f"lmtp:inet:{HOST}:{inst.port('LMTP')}"
    settings.update(config or {})
    for key, value in settings.items():
        inst.set_config(key, value)
    for user in users:
        inst.postern("user", "add", user, "--password", "pw")
    p = Pipeline(inst)
    if start:
        start_pipeline(p)
    return p


def start_pipeline(p):
    p.inst.start()
    wait_port(p.inst.port("SMTP"))
    wait_port(p.inst.port("LMTP"))
    deadline = time.monotonic() + 15
    for name in ("public/cleanup", "public/qmgr"):
        while not (p.spool / name).exists():
            assert time.monotonic() < deadline, f"{name} never appeared"
            time.sleep(0.05)


def log_ids(text, qid):
    """The program names of log lines that carry qid as their ID."""
    progs = set()
    for m in re.finditer(rf"(?m)\b([a-z0-9_-]+)\[\d+\]: {re.escape(qid)}: ", text):
        progs.add(m.group(1))
    return progs
