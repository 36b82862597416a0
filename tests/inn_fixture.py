# SPDX-License-Identifier: MIT
"""INN (Debian inn2) as a real NNTP peer for the news-gw tests.

    inn = Inn(groups=("test.one", "test.two"), feed_port=gw_port)
    inn.start()                      # innd on a free loopback port
    with inn.reader() as n:          # nntplib.NNTP after MODE READER
        ...
    inn.stop()                       # ctlinnd shutdown, then by pid

Everything lives in a temporary directory readable by user news: a
generated inn.conf (INNCONF) whose path* settings all point there, an
`active` with the test groups, an empty `history` indexed with
`makedbz -i -o`, storage.conf (tradspool), readers.conf (localhost may
read and post), incoming.conf (127.0.0.1 is a feeding peer: news-gw's
IHAVE), and, when feed_port is given, a newsfeeds entry that sends the
test groups to innfeed with an innfeed.conf peer at 127.0.0.1:feed_port
(news-gw's NNTP feed server). innd runs as user news (setpriv), in the
foreground (-f) so that its pid is ours. innd hands each article to
innfeed at once; do not `ctlinnd flush innfeed!`: that restarts innfeed
before it has sent anything.

tls=True makes a self-signed certificate for 127.0.0.1/localhost
(openssl req; `tls_cert` is also the CA file for clients) and sets
tlscertfile/tlskeyfile/tlscafile, so nnrpd (the reader, after MODE
READER) offers STARTTLS (RFC 4642); innd itself (feeds, IHAVE) has no
TLS. users={"name": "password"} makes localhost read-only for anybody
and read/post for those users, checked by `ckpasswd -f` against a
crypt(3) password file (AUTHINFO USER/PASS); reader() and post() then
log in as the first user. feed_auth=("name", "password") makes innfeed
log in to news-gw's feed server with AUTHINFO USER/PASS (the
innfeed.conf peer's username and password; innfeed has no TLS).

Facts: /work/shared/TEST-FIXTURES.md (INN). skip_reason() says why INN
cannot run here (not installed, no news user) so tests can skip with
that exact reason; a failure to start is an error, never a mock.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from conftest import HOST, free_port_base, port_is_free

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib  # noqa: E402  (gone in Python 3.13; /usr/bin/python3 is 3.11)

NEWSBIN = Path("/usr/lib/news/bin")
INND = NEWSBIN / "innd"
CTLINND = NEWSBIN / "ctlinnd"
MAKEDBZ = NEWSBIN / "makedbz"
INNFEED = NEWSBIN / "innfeed"


def skip_reason():
    """None if INN can run here, else why not (for pytest.skip)."""
    for prog in (INND, CTLINND, MAKEDBZ):
        if not os.access(prog, os.X_OK):
            return f"{prog} not installed (Debian package inn2; make deps)"
    try:
        pwd.getpwnam("news")
    except KeyError:
        return "no user 'news' (innd refuses to run as anyone else)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) not found: cannot run innd as news"
    if os.geteuid() != 0:
        return "innd must run as user news: the tests need root to switch"
    return None


def make_cert(cert, key, cn="localhost", san="IP:127.0.0.1,DNS:localhost"):
    """A self-signed EC certificate and key (PEM), readable by news only."""
    cert.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)


def crypt_password(password):
    """A SHA-512 crypt(3) hash for ckpasswd -f."""
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                          input=password, text=True, check=True,
                          capture_output=True, timeout=30).stdout.strip()


def free_port():
    for _ in range(200):
        base = free_port_base()
        port = base + 119
        if port_is_free(port):
            return port
    raise RuntimeError("no free port for innd")


class Inn:
    """One innd in a temporary directory."""

    def __init__(self, groups=("test.one", "test.two", "test.three"), feed_port=None,
                 feed_groups="test.*", pathhost="inn.test", port=None,
                 tls=False, users=None, feed_auth=None):
        self.groups = tuple(groups)
        self.feed_auth = feed_auth
        self.tls = tls
        self.users = dict(users or {})
        self.feed_port = feed_port
        self.feed_groups = feed_groups
        self.pathhost = pathhost
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="inn-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        pw = pwd.getpwnam("news")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.proc = None
        self._configure()

    # ------------------------------------------------------------ config
    def path(self, rel):
        return self.dir / rel

    def _configure(self):
        d = self.dir
        dirs = ["etc", "etc/filter", "db", "run", "log", "tmp", "http",
                "spool", "spool/articles", "spool/overview",
                "spool/incoming", "spool/incoming/tmp", "spool/outgoing",
                "spool/archive", "spool/innfeed"]
        for rel in dirs:
            (d / rel).mkdir(parents=True, exist_ok=True)
        conf = {
            "domain": "localdomain",
            "pathhost": self.pathhost,
            "server": HOST,
            "port": str(self.port),
            "bindaddress": HOST,
            "nnrpdpostport": str(self.port),
            "organization": '"Postern news-gw tests"',
            "mta": '"/bin/true %s"',
            "pathnews": "/usr/lib/news",
            "pathbin": str(NEWSBIN),
            "pathcontrol": str(NEWSBIN / "control"),
            "pathfilter": str(d / "etc/filter"),
            "pathetc": str(d / "etc"),
            "pathdb": str(d / "db"),
            "pathrun": str(d / "run"),
            "pathlog": str(d / "log"),
            "pathtmp": str(d / "tmp"),
            "pathhttp": str(d / "http"),
            "pathspool": str(d / "spool"),
            "patharticles": str(d / "spool/articles"),
            "pathoverview": str(d / "spool/overview"),
            "pathincoming": str(d / "spool/incoming"),
            "pathoutgoing": str(d / "spool/outgoing"),
            "patharchive": str(d / "spool/archive"),
            "ovmethod": "tradindexed",
            "hismethod": "hisv6",
            "enableoverview": "true",
            "wireformat": "true",
            "artcutoff": "10",
            "pgpverify": "false",
            "doinnwatch": "false",
            "docnfsstat": "false",
            "htmlstatus": "false",
            "logsitename": "true",
            "status": "0",
            "timer": "0",
            "maxartsize": "1000000",
            "localmaxartsize": "1000000",
            "checkincludedtext": "false",
            "nnrpdcheckart": "true",
            "readerswhenstopped": "false",
            "noreader": "false",
            "mergetogroups": "false",
            "xrefslave": "false",
            "allownewnews": "true",
            "addinjectionpostinghost": "false",
            "initialtimeout": "30",
            "nnrpdloadlimit": "0",  # busy CI machines: nnrpd would say 400
        }
        if self.tls:
            self.tls_cert = d / "etc/tls/cert.pem"
            self.tls_key = d / "etc/tls/key.pem"
            make_cert(self.tls_cert, self.tls_key)
            conf.update(tlscertfile=str(self.tls_cert),
                        tlskeyfile=str(self.tls_key),
                        tlscafile=str(self.tls_cert))
        (d / "etc/inn.conf").write_text(
            "".join(f"{k}: {v}\n" for k, v in conf.items()))
        (d / "etc/storage.conf").write_text(
            "method tradspool {\n    newsgroups: *\n    class: 0\n}\n")
        if self.users:
            pwfile = d / "etc/newsusers"
            pwfile.write_text("".join(
                f"{u}:{crypt_password(pw)}\n" for u, pw in self.users.items()))
            os.chmod(pwfile, 0o600)
            (d / "etc/readers.conf").write_text(
                'auth "localhost" {\n'
                '    hosts: "localhost, 127.0.0.1, ::1, stdin"\n'
                f'    auth: "ckpasswd -f {pwfile}"\n'
                '    default: "<localhost>"\n}\n'
                'access "localhost" {\n'
                '    users: "<localhost>"\n'
                '    newsgroups: "*"\n'
                '    access: R\n}\n'
                'access "users" {\n'
                f'    users: "{",".join(self.users)}"\n'
                '    newsgroups: "*"\n'
                '    access: RPA\n}\n')
        else:
            (d / "etc/readers.conf").write_text(
                'auth "localhost" {\n'
                '    hosts: "localhost, 127.0.0.1, ::1, stdin"\n'
                '    default: "<localhost>"\n}\n'
                'access "localhost" {\n'
                '    users: "<localhost>"\n'
                '    newsgroups: "*"\n'
                '    access: RPA\n}\n')
        (d / "etc/incoming.conf").write_text(
            'streaming: true\nmax-connections: 8\n'
            'peer ME {\n    hostname: "localhost, 127.0.0.1"\n}\n')
        feeds = "ME:*,!junk,!control*::\n"
        if self.feed_port is not None:
            feeds += (f"innfeed!:!*:Tc,Wnm*:{INNFEED}\n"
                      f"newsgw/newsgw.test:{self.feed_groups},!junk:"
                      "Tm:innfeed!\n")
        (d / "etc/newsfeeds").write_text(feeds)
        if self.feed_port is not None:
            (d / "etc/innfeed.conf").write_text(
                "news-spool: " + str(d / "spool/articles") + "\n"
                "backlog-directory: " + str(d / "spool/innfeed") + "\n"
                "pid-file: innfeed.pid\n"
                "debug-level: " + os.environ.get("INNFEED_DEBUG", "0") + "\n"
                "use-mmap: false\n"
                "log-file: innfeed.log\n"
                "stdio-fdmax: 0\n"
                "backlog-factor: 1.10\n"
                "connection-stats: 0\n"
                "host-queue-highwater: 200\n"
                "stats-period: 600\n"
                "stats-reset: 43200\n"
                "initial-reconnect-time: 1\n"
                "max-reconnect-time: 2\n"
                "article-timeout: 600\n"
                "response-timeout: 300\n"
                "initial-connections: 1\n"
                "max-connections: 2\n"
                "dynamic-method: 0\n"
                "no-check-high: 95.0\n"
                "no-check-low: 90.0\n"
                "no-check-filter: 50.0\n"
                "max-queue-size: 5\n"
                "streaming: true\n"
                "backlog-limit: 0\n"
                "close-period: 5\n"
                "port-number: 119\n"
                "\npeer newsgw {\n"
                f"    ip-name: {HOST}\n"
                f"    port-number: {self.feed_port}\n"
                + ("".join(f"    {k}: \"{v}\"\n" for k, v in
                           zip(("username", "password"), self.feed_auth))
                   if self.feed_auth else "")
                + "}\n")
        for name in ("expire.ctl", "moderators", "distributions",
                     "subscriptions", "localgroups", "passwd.nntp",
                     "control.ctl", "control.ctl.local", "distrib.pats",
                     "nocem.ctl", "innwatch.ctl"):
            src = Path("/etc/news") / name
            if src.exists() and name in ("control.ctl", "expire.ctl"):
                shutil.copy(src, d / "etc" / name)
            else:
                (d / "etc" / name).write_text("")
        active = ["control 0000000000 0000000001 n",
                  "control.cancel 0000000000 0000000001 n",
                  "junk 0000000000 0000000001 n"]
        active += [f"{g} 0000000000 0000000001 y" for g in self.groups]
        (d / "db/active").write_text("\n".join(active) + "\n")
        (d / "db/newsgroups").write_text(
            "".join(f"{g}\tTest group {g}\n" for g in self.groups))
        (d / "db/active.times").write_text("")
        (d / "db/history").write_text("")
        for root, dirnames, files in os.walk(d):
            for name in dirnames + files:
                os.chown(os.path.join(root, name), self.uid, self.gid)
        os.chown(d, self.uid, self.gid)
        self._as_news([str(MAKEDBZ), "-i", "-o"], cwd=d / "db")

    def env(self):
        return dict(os.environ, INNCONF=str(self.dir / "etc/inn.conf"),
                    HOME=str(self.dir))

    def _as_news(self, argv, check=True, timeout=60, cwd=None):
        cmd = ["setpriv", "--reuid", "news", "--regid", "news",
               "--init-groups"] + list(argv)
        r = subprocess.run(cmd, env=self.env(), capture_output=True,
                           text=True, timeout=timeout, cwd=cwd or self.dir,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n"
                                 f"{r.stdout}{r.stderr}\n{self.log_tail()}")
        return r

    # ------------------------------------------------------------ life
    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None
        cmd = ["setpriv", "--reuid", "news", "--regid", "news",
               "--init-groups", str(INND), "-f"]
        self._stderr = open(self.dir / "log/innd.stderr", "ab")
        self.proc = subprocess.Popen(cmd, env=self.env(), cwd=self.dir,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"innd exited {self.proc.returncode}:\n"
                                     + self.log_tail())
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(200)[:1] == b"2":
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("innd did not answer on port "
                                     f"{self.port}:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def ctlinnd(self, *args, check=True):
        return self._as_news([str(CTLINND), "-t", "20"] + list(args),
                             check=check)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """ctlinnd shutdown, then by pid; innfeed (innd's child) with it."""
        if not self.running():
            return
        self.ctlinnd("shutdown", "tests done", check=False)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._kill_innfeed()

    def _kill_innfeed(self):
        pidfile = self.dir / "run/innfeed.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"innfeed" not in f.read():
                    return
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        for _ in range(50):
            if not os.path.exists(f"/proc/{pid}"):
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=30):
        out = []
        for name in ("innd.stderr", "news.err", "news.notice", "errlog",
                     "innfeed.log"):
            p = self.dir / "log" / name
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(out)

    # ------------------------------------------------------------ clients
    def reader(self, timeout=30, login=True):
        user = password = None
        if login and self.users:
            user, password = next(iter(self.users.items()))
        return nntplib.NNTP(HOST, self.port, user=user, password=password,
                            readermode=True, usenetrc=False, timeout=timeout)

    def post(self, lines):
        """POST an article (a list of bytes lines, headers then body)."""
        with self.reader() as n:
            return n.post(lines)

    def article(self, message_id):
        """(headers dict lower-cased names -> str, body lines) or None."""
        with self.reader() as n:
            try:
                _resp, info = n.article(message_id)
            except nntplib.NNTPTemporaryError:
                return None
        return info.lines

    def wait_article(self, message_id, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            lines = self.article(message_id)
            if lines is not None:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} not on INN after "
                                     f"{timeout}s\n{self.log_tail()}")
            time.sleep(0.2)

    def group_count(self, group):
        with self.reader() as n:
            _resp, count, _first, _last, _name = n.group(group)
        return count
