# SPDX-License-Identifier: MIT
"""Integration tests for master(8): spawning, limits, throttling, reload,
stop, status socket, wakeups and privileges, with tests/progs/testsvc as
the worker. See tests/mastertest.py for the helpers."""

import os
import pwd
import re
import socket
import stat
import subprocess
import time

import pytest

from mastertest import (MASTER, TESTSVC, MasterInstance, free_port,
                        have_ipv6_loopback, is_root, pid_alive, wait_for)

pytestmark = pytest.mark.skipif(
    not MASTER.exists() or not TESTSVC.exists(),
    reason=f"master or testsvc not built in {MASTER.parent.parent}")

STATUS_MASTER = re.compile(r"^master pid=\d+ uptime=\d+ config=\S+ services=\d+$")
STATUS_SERVICE = re.compile(
    r"^service name=\S+ type=(inet|unix|fifo) listen=\S+ user=\S+ "
    r"maxproc=\d+ procs=\d+ available=\d+ pids=(-|\d+(,\d+)*) "
    r"throttled=(yes|no)$")


@pytest.fixture
def mi(request):
    """make(**postern_conf_params) -> a MasterInstance, stopped and
    checked (log, sanitizer reports) at teardown."""
    made = []

    def make(**params):
        m = MasterInstance(**params)
        made.append(m)
        return m

    yield make
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    problems = []
    for m in made:
        problems += m.finish(failed)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def expected_uid():
    """The uid a worker of a '-' user service runs as."""
    if is_root():
        from mastertest import default_mail_owner
        return pwd.getpwnam(default_mail_owner()).pw_uid
    return os.getuid()


def test_start_hello_pid_file(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc")
    m.start()
    assert m.pid_file.exists()
    assert int(m.pid_file.read_text()) == m.pid
    c = m.connect(port)
    h = c.hello()
    assert h["service"] == f"127.0.0.1:{port}"
    assert int(h["uid"]) == expected_uid()
    assert int(h["euid"]) == expected_uid()
    assert h["cwd"] == str(m.queue)
    assert c.cmd("echo hello there") == "hello there"
    assert c.cmd("info").startswith("peer=127.0.0.1 ")
    assert c.cmd("quit") == "bye"
    assert "daemon started" in m.log()
    if not is_root():
        user = pwd.getpwuid(os.getuid()).pw_name
        assert f"privilege separation is off: running all services as {user}" in m.log()


def test_status_socket_format(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - 7 testsvc")
    m.add_service("tsock unix n - n - 0 testsvc")
    m.start()
    st = os.stat(m.status_socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    c = m.connect(port)
    pid = int(c.hello()["pid"])
    text = m.status_text()
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert STATUS_MASTER.match(lines[0]), lines[0]
    for line in lines[1:]:
        assert STATUS_SERVICE.match(line), line
    master, services = m.status()
    assert int(master["pid"]) == m.pid
    assert master["config"] == str(m.conf_dir.resolve())
    assert master["services"] == "2"
    inet = services[f"127.0.0.1:{port}"]
    assert inet["type"] == "inet"
    assert inet["listen"] == f"127.0.0.1:{port}"
    assert inet["maxproc"] == "7"
    assert inet["procs"] == "1" and inet["available"] == "0"
    assert inet["pids"] == str(pid)
    assert inet["throttled"] == "no"
    unix = services["tsock"]
    assert unix["type"] == "unix"
    assert unix["listen"] == str(m.socket_path("tsock", private=False))
    assert unix["maxproc"] == "0"
    assert unix["procs"] == "0" and unix["pids"] == "-"
    assert pwd.getpwnam(inet["user"]).pw_uid == expected_uid()


def test_maxproc_limits_concurrency(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - 2 testsvc")
    m.start()
    c1, c2 = m.connect(port), m.connect(port)
    p1, p2 = c1.hello()["pid"], c2.hello()["pid"]
    assert p1 != p2
    c3 = m.connect(port)   # queued in the backlog, nobody may take it
    assert not c3.has_data(1.5), "a third worker served despite maxproc 2"
    _, services = m.status()
    assert services[f"127.0.0.1:{port}"]["procs"] == "2"
    assert c1.cmd("quit") == "bye"
    h3 = c3.hello()            # the freed worker takes it
    assert h3["pid"] == p1
    assert len(m.workers()) == 2


def test_max_use(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - 1 testsvc -o max_use=2")
    m.start()
    pids = []
    for _ in range(3):
        c = m.connect(port)
        pids.append(int(c.hello()["pid"]))
        assert c.cmd("quit") == "bye"
        c.close()
        time.sleep(0.1)
    assert pids[0] == pids[1]
    assert pids[2] != pids[0]
    wait_for(lambda: not pid_alive(pids[0]), what="worker to exit after max_use")


def test_max_idle(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc -o max_idle=1s")
    m.start()
    c = m.connect(port)
    pid = int(c.hello()["pid"])
    assert c.cmd("quit") == "bye"
    c.close()
    wait_for(lambda: not pid_alive(pid), timeout=6, what="idle worker to exit")
    wait_for(lambda: m.status()[1][f"127.0.0.1:{port}"]["procs"] == "0",
             what="status procs=0")
    assert "exit status" not in m.log()
    # An idle exit is normal: a full second, never "at once", no throttle.
    assert "exited at once" not in m.log()
    assert "throttled" not in m.log()
    c = m.connect(port)                 # and a new one comes when needed
    assert int(c.hello()["pid"]) != pid


def test_crash_is_logged_and_throttled(mi):
    m = mi()
    m.expect_killed = True
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc")
    m.start()
    c = m.connect(port)
    pid = int(c.hello()["pid"])
    c.send("crash")
    assert c.readline() == ""           # connection gone with the worker
    m.wait_log(rf"process \S+testsvc pid {pid} killed by signal 6")
    m.wait_log(rf"warning: service 127\.0\.0\.1:{port} throttled for 2s "
               r"after worker failure")
    t0 = time.monotonic()
    assert m.status()[1][f"127.0.0.1:{port}"]["throttled"] == "yes"
    c2 = m.connect(port)
    h = c2.hello()                       # served once the throttle ends
    assert int(h["pid"]) != pid
    assert time.monotonic() - t0 > 1.0
    assert c2.cmd("echo back") == "back"


def test_no_fork_storm(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc -F")
    m.start()
    c = m.connect(port)
    time.sleep(5)
    failures = re.findall(r"process \S+testsvc pid \d+ exit status 1", m.log())
    # Throttled for 2s after each failure: about 3 starts in 5 seconds.
    assert 1 <= len(failures) <= 4, m.log()
    assert f"service 127.0.0.1:{port} throttled for 2s" in m.log()
    assert not c.has_data(0.1)
    c.close()


def test_reload_add_remove_change(mi):
    m = mi()
    pa, pb, pc, pd = (free_port() for _ in range(4))
    a = f"127.0.0.1:{pa} inet n - n - - testsvc"
    b = f"127.0.0.1:{pb} inet n - n - - testsvc"
    c_old = f"127.0.0.1:{pc} inet n - n - 5 testsvc"
    c_new = f"127.0.0.1:{pc} inet n - n - 3 testsvc"
    d = f"127.0.0.1:{pd} inet n - n - - testsvc"
    m.services = [a, b, c_old]
    m.start()
    ca = m.connect(pa)
    pid_a = int(ca.hello()["pid"])
    cb = m.connect(pb)
    pid_b = int(cb.hello()["pid"])
    cc = m.connect(pc)
    pid_c = int(cc.hello()["pid"])
    assert cc.cmd("quit") == "bye"      # an idle worker of the old c
    cc.close()

    m.services = [a, c_new, d]
    line = m.reload()
    assert "reload: 3 services (added 1, removed 1, changed 1)" in line

    # Established connections survive: to the removed b and the kept a.
    assert cb.cmd("echo still here") == "still here"
    assert ca.cmd("echo a too") == "a too"
    # The removed service takes no new connections.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pb), timeout=5)
    # The added one works.
    cd = m.connect(pd)
    assert cd.hello()["service"] == f"127.0.0.1:{pd}"
    # The changed one: the old idle worker goes, a new one serves.
    wait_for(lambda: not pid_alive(pid_c), what="old worker of c to exit")
    cc2 = m.connect(pc)
    assert int(cc2.hello()["pid"]) != pid_c
    _, services = m.status()
    assert sorted(services) == sorted([f"127.0.0.1:{p}" for p in (pa, pc, pd)])
    assert services[f"127.0.0.1:{pc}"]["maxproc"] == "3"
    assert str(pid_a) in services[f"127.0.0.1:{pa}"]["pids"].split(",")
    # The removed service's worker exits once its client is done.
    assert cb.cmd("quit") == "bye"
    wait_for(lambda: not pid_alive(pid_b), what="removed service's worker to exit")
    assert pid_alive(pid_a)


def test_reload_unix_service_change_keeps_socket(mi):
    m = mi()
    m.services = ["tsock unix y - n - - testsvc"]
    m.start()
    path = m.socket_path("tsock")
    c = m.connect(path)
    old = int(c.hello()["pid"])
    m.services = ["tsock unix y - n - 4 testsvc"]
    assert "changed 1" in m.reload()
    c2 = m.connect(path)
    assert int(c2.hello()["pid"]) != old
    assert c.cmd("echo old") == "old"
    m.services = []
    assert "removed 1" in m.reload()
    wait_for(lambda: not path.exists(), what="socket of a removed service to go")
    assert c2.cmd("echo still") == "still"


def test_reload_with_errors_keeps_old_config(mi):
    m = mi()
    pa, pd = free_port(), free_port()
    a = f"127.0.0.1:{pa} inet n - n - - testsvc"
    m.services = [a]
    m.start()
    broken = (f"{a}\n"
              f"127.0.0.1:{pd} inet n - n - - testsvc\n"
              "127.0.0.1:99999 inet n - n - - testsvc\n"
              "too few fields\n")
    line = m.reload(master_conf=broken, expect_ok=False)
    assert "keeping the old configuration" in line
    log = m.log()
    assert re.search(r"master\.conf:3: .*99999", log), log
    assert re.search(r"master\.conf:4: ", log), log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pd), timeout=5)
    assert m.connect(pa).hello()["service"] == f"127.0.0.1:{pa}"

    # A broken postern.conf on reload is refused the same way.
    m.params["max_use"] = "lots"
    line = m.reload(master_conf=f"{a}\n127.0.0.1:{pd} inet n - n - - testsvc\n",
                    expect_ok=False)
    assert "keeping the old configuration" in line
    assert re.search(r"postern\.conf:\d+: .*max_use", m.log()), m.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pd), timeout=5)
    assert pid_alive(m.pid)


def test_broken_config_refuses_to_start(mi):
    m = mi()
    port = free_port()
    m.write_config(f"127.0.0.1:{port} inet n - n - - testsvc\n"
                   "127.0.0.1:0 inet n - n - - testsvc\n"
                   "nowake 127.0.0.1:1 n - n - - testsvc\n")
    r = m.run_master()
    assert r.returncode != 0
    assert re.search(r"master\.conf:2: ", r.stderr), r.stderr
    assert re.search(r"master\.conf:3: ", r.stderr), r.stderr
    assert not m.pid_file.exists()
    assert re.search(r"master\.conf:2: ", m.log()), m.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)

    m.params["max_idle"] = "soon"
    m.write_config(f"127.0.0.1:{port} inet n - n - - testsvc\n")
    r = m.run_master()
    assert r.returncode != 0
    assert re.search(r"postern\.conf:\d+: .*max_idle", r.stderr), r.stderr
    assert re.search(r"postern\.conf:\d+: .*max_idle", m.log()), m.log()


def test_inet_wakeup_is_a_config_error(mi):
    m = mi()
    port = free_port()
    m.write_config(f"127.0.0.1:{port} inet n - n 10 - testsvc\n")
    r = m.run_master()
    assert r.returncode != 0
    assert "master.conf:1: " in r.stderr and "wakeup" in r.stderr


def test_bind_failure_fails_start(mi):
    m = mi()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        m.write_config(f"127.0.0.1:{port} inet n - n - - testsvc\n")
        r = m.run_master()
    assert r.returncode != 0
    assert "Address already in use" in r.stderr, r.stderr
    assert not m.pid_file.exists()


def test_second_master_refused(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc")
    m.start()
    r = m.run_master()
    assert r.returncode != 0
    assert "already running" in r.stderr, r.stderr
    assert str(m.pid) in r.stderr
    assert pid_alive(m.pid)
    assert int(m.pid_file.read_text()) == m.pid
    assert m.connect(port).hello()


def test_sigterm_stops_everything(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc")
    m.add_service("tsock unix n - n - - testsvc")
    m.add_service("tfifo fifo y - n - - testsvc")
    m.start()
    busy = m.connect(port)
    busy.hello()
    idle = m.connect(m.socket_path("tsock", private=False))
    idle.hello()
    assert idle.cmd("quit") == "bye"
    workers = m.workers()
    assert len(workers) == 2
    m.stop()
    for pid in workers:
        assert not pid_alive(pid)
    assert not m.pid_file.exists()
    assert not m.status_socket.exists()
    assert not m.socket_path("tsock", private=False).exists()
    assert not m.socket_path("tfifo").exists()
    assert busy.readline() == ""
    assert re.search(r"master\[\d+\]: stopped$", m.log(), re.M)


def test_sigterm_kills_workers_that_ignore_it(mi):
    m = mi(master_stop_timeout="1s")
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc")
    m.start()
    c = m.connect(port)
    pid = int(c.hello()["pid"])
    assert c.cmd("ignoreterm") == "ignoring"
    t0 = time.monotonic()
    m.stop(timeout=10)
    assert not pid_alive(pid)
    assert time.monotonic() - t0 >= 0.9
    assert "did not stop within 1s" in m.log()


def test_ipv6_listener(mi):
    if not have_ipv6_loopback():
        pytest.skip("this host cannot bind ::1 (no IPv6 loopback)")
    m = mi()
    p6, pboth = free_port(), free_port()
    m.add_service(f"[::1]:{p6} inet n - n - - testsvc")
    m.add_service(f"{pboth} inet n - n - - testsvc")   # loopback-only: both
    m.start()
    c = m.connect(("::1", p6))
    assert c.hello()["service"] == f"[::1]:{p6}"
    assert c.cmd("info") == f"peer=::1 peer_port={c.sock.getsockname()[1]} " \
                            f"local=::1 local_port={p6}"
    c6 = m.connect(("::1", pboth))
    assert c6.hello()["service"] == str(pboth)
    c4 = m.connect(("127.0.0.1", pboth))
    assert c4.hello()["service"] == str(pboth)
    _, services = m.status()
    assert services[f"[::1]:{p6}"]["listen"] == f"[::1]:{p6}"
    assert services[str(pboth)]["listen"] == f"127.0.0.1:{pboth},[::1]:{pboth}"


def test_wakeups(mi):
    m = mi()
    m.add_service("wku unix n - n 1 - testsvc -W -o syslog_name=wku")
    m.add_service("wkf fifo n - n 1 - testsvc -W -o syslog_name=wkf")
    m.add_service("wkq unix n - n 1? - testsvc -W -o syslog_name=wkq")
    m.add_service("wk60 fifo n - n 60 - testsvc -W -o syslog_name=wk60")
    m.start()
    # The first wakeup comes at once (it is what starts a qmgr).
    m.wait_log(r"wk60/testsvc\[\d+\]: wakeup", count=1, timeout=5)
    m.wait_log(r"wku/testsvc\[\d+\]: wakeup", count=2, timeout=8)
    m.wait_log(r"wkf/testsvc\[\d+\]: wakeup", count=2, timeout=8)
    # Clients of a service with wakeups are served normally.
    c = m.connect(m.socket_path("wku", private=False))
    assert c.hello()["service"] == "wku"
    assert c.cmd("echo client") == "client"
    # '?': no wakeups until the service was used.
    assert "wkq/testsvc" not in m.log()
    q = m.connect(m.socket_path("wkq", private=False))
    assert q.hello()["service"] == "wkq"
    assert q.cmd("quit") == "bye"
    m.wait_log(r"wkq/testsvc\[\d+\]: wakeup", count=1, timeout=8)


def test_multi_mode(mi):
    m = mi()
    port = free_port()
    m.add_service(f"127.0.0.1:{port} inet n - n - - testsvc -M "
                  "-o max_connections=2")
    m.start()
    c1, c2 = m.connect(port), m.connect(port)
    p1, p2 = c1.hello()["pid"], c2.hello()["pid"]
    assert p1 == p2                     # one process, two connections
    c3 = m.connect(port)
    p3 = c3.hello()["pid"]
    assert p3 != p1                     # the first is full
    assert c1.cmd("echo one") == "one" and c2.cmd("echo two") == "two"
    assert c3.cmd("echo three") == "three"
    assert c1.cmd("quit") == "bye"
    c1.close()
    time.sleep(0.2)
    c4 = m.connect(port)
    assert c4.hello()["pid"] in (p1, p3)   # no third process
    _, services = m.status()
    assert services[f"127.0.0.1:{port}"]["procs"] == "2"


def test_standalone_mode(mi):
    m = mi()
    m.write_config("")
    env = m.env()
    r = subprocess.run([str(TESTSVC), "-c", str(m.conf_dir), "-S", "-n", "alone"],
                       input=b"echo one\r\nquit\r\n", capture_output=True,
                       timeout=20, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\r\n")
    assert lines[0].startswith("hello service=alone ")
    assert lines[1:3] == ["one", "bye"]

    a, b = socket.socketpair()
    with a, b:
        p = subprocess.Popen([str(TESTSVC), "-c", str(m.conf_dir), "-S"],
                             stdin=b.fileno(), stdout=subprocess.DEVNULL, env=env)
        b.close()
        f = a.makefile("rb")
        assert f.readline().startswith(b"hello ")
        a.sendall(b"info\r\n")
        assert f.readline() == b"peer=local peer_port=0 local=local local_port=0\r\n"
        a.sendall(b"quit\r\n")
        assert f.readline() == b"bye\r\n"
        assert p.wait(timeout=10) == 0


def test_worker_refuses_to_run_without_master(mi):
    m = mi()
    m.write_config("")
    r = subprocess.run([str(TESTSVC), "-c", str(m.conf_dir)],
                       capture_output=True, text=True, timeout=20, env=m.env(),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "not started by master" in m.log() + r.stderr


@pytest.mark.skipif(not is_root(), reason="needs root: workers change uid "
                    "only when master runs as root")
def test_privileges_as_root(mi):
    m = mi()
    nobody = pwd.getpwnam("nobody")
    pn, pr, pd = free_port(), free_port(), free_port()
    m.add_service(f"127.0.0.1:{pn} inet n nobody n - - testsvc")
    m.add_service(f"127.0.0.1:{pr} inet n nobody y - - testsvc")
    m.add_service(f"127.0.0.1:{pd} inet n - n - - testsvc")
    m.start()
    h = m.connect(pn).hello()
    assert (int(h["uid"]), int(h["euid"])) == (nobody.pw_uid, nobody.pw_uid)
    assert (int(h["gid"]), int(h["egid"])) == (nobody.pw_gid, nobody.pw_gid)
    assert h["cwd"] == str(m.queue)
    h = m.connect(pr).hello()
    assert int(h["uid"]) == nobody.pw_uid
    assert h["cwd"] == "/"              # chroot into $queue_directory
    h = m.connect(pd).hello()
    assert int(h["uid"]) == pwd.getpwnam(m.params["mail_owner"]).pw_uid
    _, services = m.status()
    assert services[f"127.0.0.1:{pn}"]["user"] == "nobody"
    assert services[f"127.0.0.1:{pd}"]["user"] == m.params["mail_owner"]
    # Private sockets belong to $mail_owner, so its daemons can reach them.
    m.services.append("psock unix y - n - - testsvc")
    m.reload()
    st = os.stat(m.socket_path("psock"))
    assert st.st_uid == pwd.getpwnam(m.params["mail_owner"]).pw_uid
    assert stat.S_IMODE(st.st_mode) == 0o600


@pytest.mark.skipif(not is_root(), reason="needs root: users are checked only "
                    "when master can change to them")
def test_unknown_or_root_user_is_a_config_error(mi):
    m = mi()
    port = free_port()
    m.write_config(f"127.0.0.1:{port} inet n no-such-user-x n - - testsvc\n"
                   f"127.0.0.1:{port + 1} inet n root n - - testsvc\n")
    r = m.run_master()
    assert r.returncode != 0
    assert "master.conf:1: " in r.stderr and "no-such-user-x" in r.stderr
    assert "master.conf:2: " in r.stderr and "root" in r.stderr
