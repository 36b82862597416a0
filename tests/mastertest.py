# SPDX-License-Identifier: MIT
"""Helpers for master's integration tests (tests/test_master.py).

Independent of the CLI's fixtures in conftest.py: a MasterInstance writes
postern.conf and master.conf by hand into a short temporary directory (UNIX
socket paths must stay under 108 bytes), runs $POSTERN_BUILD/bin/master -c
DIR (daemonized) and stops it with SIGTERM through the pid file. Workers
are $POSTERN_BUILD/test/progs/testsvc (see tests/progs/testsvc.c).

As root the workers run as $mail_owner, which the tests set to an account
that exists on every Debian system ("daemon", or "postern" if it exists);
as another user privilege separation is off.
"""

import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("POSTERN_BUILD") or ROOT / "build").resolve()
MASTER = BUILD / "bin" / "master"
PROGS = BUILD / "test" / "progs"
TESTSVC = PROGS / "testsvc"

# Log lines that fail a test unless it expects them.
PANIC = re.compile(r"panic:|AddressSanitizer|LeakSanitizer|runtime error:")
KILLED = re.compile(r"killed by signal")


def is_root():
    return os.geteuid() == 0


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def default_mail_owner():
    """The account workers run as when the tests run as root."""
    if not is_root():
        return pwd.getpwuid(os.getuid()).pw_name
    for name in ("postern", "daemon"):
        if user_exists(name):
            return name
    raise RuntimeError("no unprivileged account (postern, daemon) to run workers as")


def have_ipv6_loopback():
    """True if this host can bind ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port():
    """A TCP port free on 127.0.0.1 (and on ::1 where there is IPv6)."""
    return conftest.free_port(ipv6=have_ipv6_loopback())


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def children_of(pid):
    """Direct children of pid (live ones), from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return sorted(kids)


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Client:
    """A line-oriented connection to a testsvc worker."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.file = sock.makefile("rb")

    def readline(self):
        line = self.file.readline()
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def hello(self):
        """Read the greeting; return its key=value fields as a dict."""
        line = self.readline()
        assert line.startswith("hello "), f"no greeting: {line!r}"
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def cmd(self, line):
        self.send(line)
        return self.readline()

    def has_data(self, timeout):
        """True if something (or EOF) arrives within timeout seconds (use
        before anything was read: data buffered in self.file is not seen)."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()


class MasterInstance:
    """One master with a hand-written configuration in a temp directory."""

    def __init__(self, **params):
        self.dir = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
        # Workers (an unprivileged account when root) write sanitizer
        # reports into san/: it and its parents must be reachable.
        os.chmod(self.dir, 0o755)
        self.conf_dir = self.dir / "conf"
        self.conf_dir.mkdir()
        self.queue = self.dir / "queue"
        self.logfile = self.dir / "maillog"
        self.san = self.dir / "san"
        self.san.mkdir()
        os.chmod(self.san, 0o1777)
        self.params = {
            "queue_directory": str(self.queue),
            "data_directory": str(self.dir / "data"),
            "daemon_directory": str(PROGS),
            "maillog_file": str(self.logfile),
            "mail_owner": default_mail_owner(),
            "inet_interfaces": "loopback-only",
            "service_throttle_time": "2s",
            "max_idle": "60s",
            "max_use": "100",
            "master_stop_timeout": "5s",
        }
        self.params.update(params)
        self.services = []
        self.expect_killed = False
        self.pid = None
        self.started_clients = []

    # ------------------------------------------------------------ config
    def add_service(self, line):
        self.services.append(line)

    def write_config(self, master_conf=None):
        with open(self.conf_dir / "postern.conf", "w") as f:
            for k, v in self.params.items():
                f.write(f"{k} = {v}\n")
        text = master_conf if master_conf is not None else "".join(
            s + "\n" for s in self.services)
        (self.conf_dir / "master.conf").write_text(text)

    @property
    def pid_file(self):
        return self.queue / "pid" / "master.pid"

    @property
    def status_socket(self):
        return self.queue / "pid" / "master.status"

    def socket_path(self, name, private=True):
        return self.queue / ("private" if private else "public") / name

    # ------------------------------------------------------------ running
    def env(self):
        env = dict(os.environ)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            opts = [o for o in env.get(var, "").split(":") if o]
            if not any(o.startswith("log_path=") for o in opts):
                opts.append(f"log_path={self.san}/report")
            if var == "UBSAN_OPTIONS":
                opts.append("print_stacktrace=1")
            env[var] = ":".join(opts)
        return env

    def run_master(self, *args, timeout=30):
        return subprocess.run([str(MASTER), "-c", str(self.conf_dir), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env=self.env(), stdin=subprocess.DEVNULL)

    def start(self):
        self.write_config()
        r = self.run_master()
        assert r.returncode == 0, f"master failed to start: {r.stderr}"
        self.pid = int(self.pid_file.read_text().strip())
        assert pid_alive(self.pid)
        return r

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def reload(self, master_conf=None, expect_ok=True):
        """Rewrite the config, SIGHUP, and wait until master has acted."""
        before = len(self.reload_lines())
        self.write_config(master_conf)
        self.send_signal(signal.SIGHUP)
        lines = wait_for(lambda: self.reload_lines()[before:], what="reload")
        if expect_ok:
            assert "keeping the old" not in lines[0], lines[0]
        return lines[0]

    def reload_lines(self):
        return [line for line in self.log().splitlines()
                if re.search(r"reload: \d+ services|keeping the old configuration",
                             line)]

    def stop(self, timeout=15):
        if self.pid is None or not pid_alive(self.pid):
            return
        self.send_signal(signal.SIGTERM)
        wait_for(lambda: not pid_alive(self.pid), timeout=timeout,
                 what="master to stop")

    def workers(self):
        return children_of(self.pid)

    def kill_everything(self):
        """Last resort: kill master and its workers by pid."""
        if self.pid is None:
            return
        for p in children_of(self.pid) + [self.pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------ looking
    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        rx = re.compile(pattern)
        return wait_for(lambda: len(rx.findall(self.log())) >= count and
                        rx.findall(self.log()), timeout=timeout,
                        what=f"log line /{pattern}/ x{count}")

    def status_text(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.status_socket))
            chunks = []
            while True:
                b = s.recv(4096)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode()

    def status(self):
        """(master fields, {service name: fields}) from the status socket."""
        master, services = None, {}
        for line in self.status_text().splitlines():
            word, _, rest = line.partition(" ")
            fields = dict(kv.split("=", 1) for kv in rest.split())
            if word == "master":
                master = fields
            elif word == "service":
                services[fields["name"]] = fields
        return master, services

    def sanitizer_reports(self):
        return sorted(self.san.iterdir())

    # ------------------------------------------------------------ clients
    def connect(self, where, family=None, timeout=10.0):
        """where: a port on 127.0.0.1, an (addr, port) pair, or a socket path."""
        if isinstance(where, int):
            where = ("127.0.0.1", where)
        if isinstance(where, (str, Path)):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(str(where))
        else:
            fam = family or (socket.AF_INET6 if ":" in where[0] else socket.AF_INET)
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(where)
        c = Client(s, timeout)
        self.started_clients.append(c)
        return c

    # ------------------------------------------------------------ teardown
    def finish(self, failed):
        """Stop master, check the log, remove the directory if all is well."""
        problems = []
        try:
            for c in self.started_clients:
                try:
                    c.close()
                except OSError:
                    pass
            if self.pid is not None and pid_alive(self.pid):
                try:
                    self.stop()
                except AssertionError as e:
                    problems.append(str(e))
                    self.kill_everything()
            log = self.log()
            for line in log.splitlines():
                if PANIC.search(line):
                    problems.append(f"log: {line}")
                if KILLED.search(line) and not self.expect_killed:
                    problems.append(f"unexpected: {line}")
            for report in self.sanitizer_reports():
                problems.append(f"sanitizer report {report}:\n"
                                + report.read_text(errors="replace")[:4000])
        finally:
            if failed or problems:
                print(f"master test directory kept: {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        return problems
