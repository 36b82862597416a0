# SPDX-License-Identifier: MIT
"""Shared fixtures for Postern's integration tests.

Every integration test runs a real instance: `postern instance init` in a
fresh temporary directory on free loopback ports, master started with
`postern start`, clients speaking to the ports printed by init.

    def test_something(instance):            # initialized and started
        instance.add_service(f"127.0.0.1:{instance.port('SMTP')} inet n - n - - smtpd")
        instance.reload()
        ...

    def test_two(instance_factory):          # initialized, not started
        a = instance_factory()
        a.set_config("max_use", "1")
        a.use_test_programs()                # daemon_directory with tests/progs
        a.add_service("tsvc unix n - n - - testsvc")
        a.start()
        mark = a.log_mark()
        a.reload()
        a.wait_for_log(r"reload", start=mark)

The build to test is $POSTERN_BUILD (an absolute build directory with
bin/ and test/progs/; `make integration-check` sets it), else ./build.

At teardown every instance is stopped and the test fails if the log (or a
sanitizer report) shows "panic:", "AddressSanitizer", "runtime error:"
(UBSan) or "killed by signal" -- unless the test set instance.expect_crash.
No process outlives the test: if `postern stop` fails, master and its
children are killed by pid. A failed test's instance directory is kept
for inspection (its path is printed); a passed test's is removed.
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("POSTERN_BUILD") or ROOT / "build").resolve()
BIN = BUILD / "bin"
PROGS = BUILD / "test" / "progs"
POSTERN = BIN / "postern"

# The instance interface (postern(8)): keys of `instance init` in order,
# and the port offsets from the port base.
PORT_OFFSETS = {
    "SMTP": 25,
    "SUBMISSION": 587,
    "SMTPS": 465,
    "IMAP": 143,
    "IMAPS": 993,
    "POP3": 110,
    "POP3S": 995,
    "SIEVE": 190,
    "LMTP": 24,
    "NNTP": 119,
}
ENV_KEYS = (["INSTANCE_DIR", "CONFIG_DIR", "HOST", "PORT_BASE"]
            + [f"{name}_PORT" for name in PORT_OFFSETS] + ["LOG_FILE"])
HOST = "127.0.0.1"

# Lines in a log that fail the test that produced them.
BAD_LOG = re.compile(r"panic:|AddressSanitizer|LeakSanitizer|runtime error:|"
                     r"killed by signal")



def _port_base_range():
    """The port bases this test process may draw from. They stay below
    the kernel's ephemeral ports, since any outgoing connection may hold
    one of those at any moment; under pytest-xdist each worker draws from
    a stripe of its own (with room for base + 995 inside it), so that
    tests running in parallel never pick the same ports."""
    low, top = 10000, 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            top = min(top, int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        pass
    top -= 1000                         # base + 995 stays below it
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    span = (top - low) // max(count, 1)
    first = low + index * span
    return first, first + span - 1000


PORT_BASE_MIN, PORT_BASE_MAX = _port_base_range()

_ports_handed_out = set()


def port_is_free(port, host=HOST):
    """True if nothing listens on host:port (bound as master would bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_base(tries=500):
    """A random port base N in PORT_BASE_MIN..PORT_BASE_MAX whose every service port is
    free on 127.0.0.1 and not handed out before in this test session."""
    for _ in range(tries):
        base = random.randint(PORT_BASE_MIN, PORT_BASE_MAX)
        ports = {base + off for off in PORT_OFFSETS.values()}
        if ports & _ports_handed_out:
            continue
        if all(port_is_free(p) for p in ports):
            _ports_handed_out.update(ports)
            return base
    raise RuntimeError(f"no free port base found in {PORT_BASE_MIN}..{PORT_BASE_MAX}")


def free_port(udp=False, ipv6=False):
    """One port for a test's own server (a sink, slapd, a KDC ...): free
    on 127.0.0.1 (and for UDP too, and on ::1, if asked), from this test
    process's stripe below the ephemeral ports, never handed out before
    in this session. A port the kernel picks (bind to port 0) comes from
    the ephemeral range, where an outgoing connection of a parallel test
    can take it before the server binds it."""
    for _ in range(1000):
        port = random.randint(PORT_BASE_MIN, PORT_BASE_MAX + 995)
        if port in _ports_handed_out or not port_is_free(port):
            continue
        try:
            if udp:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((HOST, port))
            if ipv6:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind(("::1", port))
        except OSError:
            continue
        _ports_handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {PORT_BASE_MIN}..{PORT_BASE_MAX + 995}")


def parse_env(text):
    """KEY=value lines (instance init / info / instance.env) into a dict."""
    env = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a KEY=value line: {line!r}"
        env[key] = value
    return env


def sanitizer_env(log_dir):
    """Environment that sends ASan/UBSan reports to files in log_dir (a
    daemon's stderr goes nowhere a test can see); merged with any options
    the caller already set. Whether the daemons keep these variables is
    up to master's environment cleaning."""
    env = dict(os.environ)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        opts = [o for o in env.get(var, "").split(":") if o]
        if not any(o.startswith("log_path=") for o in opts):
            opts.append(f"log_path={log_dir}/sanitizer")
        if var == "UBSAN_OPTIONS" and not any(o.startswith("print_stacktrace=") for o in opts):
            opts.append("print_stacktrace=1")
        env[var] = ":".join(opts)
    return env


def _children(pid):
    """Pids of pid's descendants, from /proc."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parens.
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found.extend(kids)
        frontier.extend(kids)
    return found


def _processes_naming(directory):
    """Pids of live processes of the build under test (their executable
    is in BUILD) with an argument inside directory. Other programs that
    merely name the directory (a tail -f, an rm) are left alone."""
    prefix = str(directory)
    build = str(BUILD) + "/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if not os.readlink(f"/proc/{entry}/exe").startswith(build):
                continue
        except OSError:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.decode(errors="replace") == prefix
               or a.decode(errors="replace").startswith(prefix + "/")
               for a in args if a):
            if pid_alive(int(entry)):
                found.append(int(entry))
    return found


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


class Instance:
    """One Postern instance in its own directory."""

    def __init__(self, directory, env):
        self.dir = Path(directory)
        self.env = env
        self.expect_crash = False
        self.started = False
        self._master_pid = None

    # ---------------------------------------------------------- creation
    @classmethod
    def create(cls, directory, port_base=None):
        """`postern instance init DIR --port-base N`; returns the instance."""
        if port_base is None:
            port_base = free_port_base()
        r = subprocess.run([str(POSTERN), "instance", "init", str(directory),
                            "--port-base", str(port_base)],
                           capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"postern instance init failed ({r.returncode}):\n"
                                 f"{r.stdout}{r.stderr}")
        return cls(directory, parse_env(r.stdout))

    # ---------------------------------------------------------- endpoints
    @property
    def host(self):
        return self.env["HOST"]

    def port(self, name):
        """The port of a service: port('SMTP') -> int(env['SMTP_PORT'])."""
        key = name.upper()
        if not key.endswith("_PORT"):
            key += "_PORT"
        return int(self.env[key])

    @property
    def port_base(self):
        return int(self.env["PORT_BASE"])

    @property
    def config_dir(self):
        return Path(self.env["CONFIG_DIR"])

    @property
    def log_path(self):
        return Path(self.env["LOG_FILE"])

    @property
    def pid_file(self):
        return self.dir / "spool" / "pid" / "master.pid"

    # ---------------------------------------------------------- commands
    @property
    def sanitizer_dir(self):
        return self.dir / "sanitizer"

    def postern(self, *args, check=True, input=None, timeout=120):
        """Run `postern -c DIR ARGS...`; a CompletedProcess with text
        stdout/stderr. check=True fails the test on a non-zero exit.
        For start, sanitizer reports of master and the daemons go to
        files in DIR/sanitizer/ (their stderr is not ours to see); it is
        writable by all, since daemons may run as other users."""
        cmd = [str(POSTERN), "-c", str(self.dir)] + [str(a) for a in args]
        env = None
        if args and args[0] == "start":
            self.sanitizer_dir.mkdir(exist_ok=True)
            os.chmod(self.sanitizer_dir, 0o1777)
            env = sanitizer_env(self.sanitizer_dir)
        r = subprocess.run(cmd, capture_output=True, text=True, input=input,
                           timeout=timeout, env=env,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {r.returncode}\n"
                f"--- stdout\n{r.stdout}--- stderr\n{r.stderr}")
        return r

    def start(self):
        r = self.postern("start")
        self.started = True
        self._master_pid = self.master_pid()
        return r

    def stop(self, check=True):
        r = self.postern("stop", check=check)
        return r

    def reload(self):
        return self.postern("reload")

    def status(self, *args):
        return self.postern("status", *args, check=False)

    def running(self):
        return self.status().returncode == 0

    def master_pid(self):
        """The pid in master.pid if that process lives, else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    # ---------------------------------------------------------- files
    def remove_services(self, commands):
        """Drop the master.conf service lines whose program is one of
        commands. `instance init` writes the whole mail path (smtpd, qmgr,
        the smtp/lmtp agent); most tests want a quieter instance in which
        mail stays where it was injected, and add what they need (see
        tests/pipeline.py); instance_factory(pipeline=True) keeps it all."""
        path = self.dir / "master.conf"
        keep = []
        for raw in path.read_text().splitlines():
            fields = raw.split()
            if (raw and not raw[0].isspace() and not raw.startswith("#")
                    and len(fields) >= 8 and fields[7] in commands):
                continue
            keep.append(raw)
        path.write_text("\n".join(keep) + "\n")

    def add_service(self, line):
        """Append a service line to master.conf (then reload or start)."""
        path = self.dir / "master.conf"
        with open(path, "a") as f:
            f.write(line.rstrip("\n") + "\n")

    def use_test_programs(self):
        """Point daemon_directory at DIR/libexec, holding links to every
        built program and every test program (tests/progs), so that
        master.conf may name test workers such as testsvc."""
        libexec = self.dir / "libexec"
        libexec.mkdir(exist_ok=True)
        for src in (BIN, PROGS):
            if not src.is_dir():
                continue
            for prog in src.iterdir():
                link = libexec / prog.name
                if prog.is_file() and os.access(prog, os.X_OK) and not link.exists():
                    link.symlink_to(prog)
        self.set_config("daemon_directory", str(libexec))
        return libexec

    def set_config(self, key, value):
        """`postern config -e key=value` (validated like any edit)."""
        return self.postern("config", "-e", f"{key}={value}")

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """The current end of the log, for wait_for_log(start=...)."""
        return len(self.log_text())

    def wait_for_log(self, regex, timeout=10.0, start=0):
        """Wait until the log (from offset start, see log_mark()) matches
        regex; returns the match, fails the test with the log tail on
        timeout."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()[start:]
            m = pattern.search(text)
            if m:
                return m
            if time.monotonic() >= deadline:
                tail = "\n".join(text.splitlines()[-30:])
                pytest.fail(f"log has no match for {regex!r} after {timeout}s;"
                            f" last lines:\n{tail}")
            time.sleep(0.05)

    def sanitizer_reports(self):
        out = []
        for p in sorted(self.sanitizer_dir.glob("sanitizer*")):
            out.append(f"== {p}\n{p.read_text(errors='replace')}")
        return out

    def problems(self):
        """Log lines and sanitizer reports that fail a test."""
        bad = [line for line in self.log_text().splitlines()
               if BAD_LOG.search(line)]
        return bad + self.sanitizer_reports()

    # ---------------------------------------------------------- teardown
    def _leftover_pids(self):
        """Master, its descendants, and any process whose command line
        names this instance's directory."""
        pids = []
        for pid in {self.master_pid(), self._master_pid}:
            if pid is not None and pid_alive(pid):
                pids.append(pid)
                pids.extend(_children(pid))
        pids.extend(p for p in _processes_naming(self.dir)
                    if p not in pids and p != os.getpid())
        return pids

    def kill(self):
        """Last resort: SIGKILL every _leftover_pids() process, by pid."""
        pids = self._leftover_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pids

    def shutdown(self):
        """Stop if running; returns a list of problems (empty = clean)."""
        problems = []
        if self.master_pid() is not None:
            r = self.postern("stop", check=False, timeout=120)
            if r.returncode != 0:
                problems.append(f"postern stop failed ({r.returncode}): "
                                f"{r.stdout}{r.stderr}")
        # Children that outlived master (or a master that never wrote
        # its pid file) are a bug too, but must not outlive the test.
        leftovers = [(pid, _cmdline(pid)) for pid in self._leftover_pids()]
        self.kill()
        if leftovers:
            problems.append(f"processes left after stop, killed: {leftovers}")
        return problems


def _finish(request, instances):
    """Stop every instance; fail on crashes; remove dirs of passed tests."""
    failures = []
    for inst in instances:
        problems = inst.shutdown()
        if not inst.expect_crash:
            problems += inst.problems()
        if problems:
            failures.append(f"instance {inst.dir}:\n  " + "\n  ".join(problems))
    rep = getattr(request.node, "rep_call", None)
    passed = rep is not None and rep.passed and not failures
    for inst in instances:
        if passed:
            shutil.rmtree(inst.dir, ignore_errors=True)
        else:
            print(f"\nkept instance directory {inst.dir}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def new_instance_dir():
    """A new empty directory with a short path: UNIX socket paths must fit
    in 108 bytes, which pytest's tmp_path does not promise."""
    return Path(tempfile.mkdtemp(prefix="pst-", dir="/tmp"))


@pytest.fixture
def instance_factory(request):
    """make(port_base=None) -> an initialized, not started Instance."""
    made = []

    def make(port_base=None, pipeline=False):
        inst = Instance.create(new_instance_dir(), port_base)
        made.append(inst)
        if not pipeline:
            inst.remove_services(("smtpd", "qmgr", "smtp"))
        return inst

    yield make
    try:
        _finish(request, made)
    finally:
        for inst in made:
            inst.kill()


@pytest.fixture
def instance(instance_factory):
    """An initialized and started Instance, stopped at teardown."""
    inst = instance_factory()
    inst.start()
    return inst


@pytest.fixture
def postern_bin():
    """The postern binary under test."""
    assert POSTERN.exists(), f"{POSTERN} is not built (POSTERN_BUILD={BUILD})"
    return POSTERN


def run_postern(*args, input=None, env=None, check=False, cwd=None):
    """Run the postern binary without -c (tests of the CLI itself)."""
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run([str(POSTERN)] + [str(a) for a in args],
                       capture_output=True, text=True, input=input,
                       env=full, cwd=cwd, timeout=120,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"postern {' '.join(map(str, args))} exited "
                             f"{r.returncode}\n{r.stdout}{r.stderr}")
    return r
