# SPDX-License-Identifier: MIT
"""pop3d AUTH (RFC 5034) and sieved AUTHENTICATE (RFC 5804) through libsasl2.

A real Heimdal KDC (realm POSTERN.TEST: kuser, kuser/admin, the service
keys imap/, smtp/, pop/ and sieve/localhost in the daemons' keytab) and a
forged KDC (same realm and names, other keys) are started once for the
module. The instance runs with sasl_mechanisms PLAIN, LOGIN, GSSAPI and
auth_backends userdb, kerberos, and counts loopback connections as
insecure, so PLAIN and LOGIN appear only after STLS / STARTTLS.

Clients: curl (POP3 AUTH GSSAPI with its own GSS-API library) and
sieve-connect (AUTHENTICATE GSSAPI with Perl's GSSAPI module; PLAIN with
a Kerberos password), and python3-gssapi driving the exchange by hand
on raw sockets where the exact replies matter (as tests/test_auth_gssapi.py
does for imapd and smtpd).
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, Instance, new_instance_dir
from kdc_fixture import (KPW, REALM, Creds, gssapi, have_gssapi_tests,
                         kdc_pair, sasl_gssapi)

pytestmark = pytest.mark.skipif(not have_gssapi_tests(),
                                reason="needs heimdal-kdc and python3-gssapi")


@pytest.fixture(scope="module")
def kdcs():
    yield from kdc_pair("pst-saslpop-")


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def inst(kdcs):
    # One instance for the module (starting one costs seconds), made and
    # checked as conftest's function-scoped instance_factory does.
    i = Instance.create(new_instance_dir())
    i.remove_services(("smtpd", "qmgr", "smtp"))
    os.chmod(i.dir, 0o755)
    kdc = kdcs["kdc"]
    try:
        for k, v in {
            "auth_backends": "userdb, kerberos",
            "auth_krb5_config": str(kdc.conf),
            "auth_krb5_keytab": f"FILE:{kdcs['keytab']}",
            "auth_krb5_realm": REALM,
            "auth_krb5_service": f"pop/localhost@{REALM}",
            "sasl_mechanisms": "PLAIN, LOGIN, GSSAPI",
            "sasl_hostname": "localhost",
            "pop3_loopback_secure": "no",
            "managesieve_loopback_secure": "no",
        }.items():
            i.set_config(k, v)
        i.postern("user", "add", "alice", "--password-stdin",
                  input="alice pw\n")
        # kuser exists locally (lmtpd delivers to known users only) with
        # another password: logins with KPW go on to the kerberos backend
        i.postern("user", "add", "kuser", "--password-stdin",
                  input="not the kerberos one\n")
        conf = (i.dir / "master.conf").read_text()
        if f":{i.port('LMTP')} " not in conf:
            i.add_service(f"{HOST}:{i.port('LMTP')} inet n - n - - lmtpd")
        i.start()
        wait_port(i.port("LMTP"))
        wait_port(i.port("POP3"))
        wait_port(i.port("SIEVE"))
        yield i
        problems = i.shutdown() + i.problems()
        assert not problems, f"instance {i.dir}:\n" + "\n".join(problems)
        shutil.rmtree(i.dir, ignore_errors=True)
    finally:
        i.kill()


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(b):
    return base64.b64encode(b).decode()


# ------------------------------------------------------------------ POP3
class Pop:
    """A raw POP3 client: exact lines out and back."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()
        self.last = None

    def send(self, line):
        self.sock.sendall((line.encode() if isinstance(line, str) else line)
                          + b"\r\n")

    def line(self):
        l = self.f.readline()
        if not l:
            raise ConnectionError("connection closed")
        assert l.endswith(b"\r\n"), l
        return l[:-2]

    def cmd(self, line):
        self.send(line)
        return self.line()

    def multi(self):
        out = []
        while True:
            l = self.line()
            if l == b".":
                return out
            out.append(l)

    def capa(self):
        assert self.cmd("CAPA").startswith(b"+OK")
        return {l.split(b" ")[0].decode(): l.decode().split(" ")[1:]
                for l in self.multi()}

    def stls(self):
        assert self.cmd("STLS").startswith(b"+OK")
        self.sock = tls_ctx().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")

    def gssapi(self, ctx, authz=b""):
        self.send("AUTH GSSAPI " + b64(ctx.step()))

        def recv():
            l = self.line()
            if l.startswith(b"+ "):
                return base64.b64decode(l[2:])
            if l == b"+":
                return b""
            self.last = l
            return None

        sasl_gssapi(ctx, lambda b: self.send(b64(b)), recv, authz)
        return self.last

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def test_pop3_mechanisms_follow_tls(inst):
    p = Pop(inst.port("POP3"))
    caps = p.capa()
    # loopback counts as insecure here: no password mechanisms yet
    assert caps["SASL"] == ["GSSAPI"], caps
    assert "USER" not in caps and "STLS" in caps
    assert p.cmd("AUTH") == b"+OK"
    assert p.multi() == [b"GSSAPI"]
    assert p.cmd("AUTH PLAIN " + b64(b"\0alice\0alice pw")).startswith(
        b"-ERR [AUTH] Plaintext authentication disallowed")
    assert p.cmd("AUTH LOGIN").startswith(b"-ERR [AUTH] Plaintext")
    assert p.cmd("AUTH CRAM-MD5") == \
        b"-ERR Unsupported authentication mechanism."
    p.stls()
    caps = p.capa()
    assert caps["SASL"] == ["PLAIN", "LOGIN", "GSSAPI"], caps
    assert "USER" in caps and "STLS" not in caps
    assert p.cmd("AUTH") == b"+OK"
    assert p.multi() == [b"PLAIN", b"LOGIN", b"GSSAPI"]
    # LOGIN: two challenges, the user's password checked by lib/auth
    assert p.cmd("AUTH LOGIN") == b"+ " + b64(b"Username:").encode()
    assert p.cmd(b64(b"alice")) == b"+ " + b64(b"Password:").encode()
    assert p.cmd(b64(b"alice pw")).startswith(b"+OK Logged in")
    assert p.cmd("STAT").startswith(b"+OK 0 ")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    inst.wait_for_log(r"login: user=alice, method=LOGIN, tls=TLSv1")


def test_pop3_gssapi_curl(inst, kdcs, tmp_path):
    c = Creds(kdcs["kdc"], "kuser", tmp_path)
    port = inst.port("POP3")
    with smtplib.LMTP(HOST, inst.port("LMTP"), timeout=30) as l:
        l.sendmail("sender@example.org", ["kuser"],
                   b"From: sender@example.org\r\nSubject: for kuser\r\n"
                   b"\r\nkerberos body\r\n")
    # curl offers GSSAPI only for a user name with a realm; the token goes
    # in a continuation (it is longer than RFC 2449's 255 octets)
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "30",
         "--resolve", f"localhost:{port}:{HOST}",
         "--login-options", "AUTH=GSSAPI", "-u", f"kuser@{REALM}:",
         f"pop3://localhost:{port}/1"],
        env=c.env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Subject: for kuser" in r.stdout and "kerberos body" in r.stdout
    inst.wait_for_log(r"login: user=kuser, method=GSSAPI")


def test_pop3_gssapi_raw(inst, kdcs, tmp_path):
    good = Creds(kdcs["kdc"], "kuser", tmp_path)
    # without TLS: GSSAPI needs no encryption of its own to be safe
    p = Pop(inst.port("POP3"))
    t = p.gssapi(good.context("pop"))
    assert t.startswith(b"+OK Logged in"), t
    assert re.match(rb"\+OK \d+ \d+$", p.cmd("STAT"))
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    # a ticket the server cannot read; the same connection goes on
    p = Pop(inst.port("POP3"))
    f = Creds(kdcs["forged"], "kuser", tmp_path, "forged")
    try:
        t = p.gssapi(f.context("pop"))
    except gssapi.exceptions.GSSError:
        t = p.last
    assert t is not None and t.startswith(b"-ERR [AUTH]"), t
    # as someone else: refused
    t = p.gssapi(good.context("pop"), authz=b"alice")
    assert t == b"-ERR [AUTH] Authorization as another user is not allowed"
    # an authorization identity naming oneself is fine
    t = p.gssapi(good.context("pop"), authz=b"kuser@" + REALM.encode())
    assert t.startswith(b"+OK Logged in"), t
    p.cmd("QUIT")
    p.close()
    # a principal with an instance is no local user
    p = Pop(inst.port("POP3"))
    t = p.gssapi(Creds(kdcs["kdc"], "kuser/admin", tmp_path, "adm")
                 .context("pop"))
    assert t == b"-ERR [AUTH] Authentication failed.", t
    p.close()
    log = inst.log_text()
    assert "identity kuser/admin" in log


def test_pop3_bad_sasl_input(inst):
    p = Pop(inst.port("POP3"))
    p.stls()
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd("not base64!") == b"-ERR [AUTH] Invalid base64 data"
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd("*") == b"-ERR [AUTH] Authentication aborted"
    assert p.cmd("AUTH PLAIN *") == b"-ERR [AUTH] Authentication aborted"
    assert p.cmd("AUTH GSSAPI") == b"+ "
    assert p.cmd("*") == b"-ERR [AUTH] Authentication aborted"
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd("A" * 9000) == b"-ERR [AUTH] Response too long"
    assert p.cmd("AUTH PLAIN " + "A" * 9000) == b"-ERR Line too long"
    assert p.cmd("USER " + "a" * 2000) == b"-ERR Line too long"
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd(b64(b"\0alice\0alice pw")).startswith(b"+OK Logged in")
    p.close()
    # (ten errors end a connection: a fresh one for the rest)
    p = Pop(inst.port("POP3"))
    p.stls()
    # an initial response longer than a command line is still read
    assert p.cmd("AUTH PLAIN " + b64(b"\0alice\0" + b"x" * 1500)) == \
        b"-ERR [AUTH] Authentication failed."
    assert p.cmd("AUTH PLAIN " + b64(b"\0alice\0wrong")) == \
        b"-ERR [AUTH] Authentication failed."
    assert p.cmd("AUTH PLAIN " + b64(b"bob\0alice\0alice pw")) == \
        b"-ERR [AUTH] Authorization as another user is not allowed"
    # the session is still usable
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd(b64(b"\0alice\0alice pw")).startswith(b"+OK Logged in")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    assert "unknown password verifier" not in inst.log_text()


def test_pop3_user_pass_through_kerberos(inst):
    p = Pop(inst.port("POP3"))
    p.stls()
    assert p.cmd("USER kuser") == b"+OK"
    assert p.cmd("PASS " + KPW).startswith(b"+OK Logged in")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    p = Pop(inst.port("POP3"))
    p.stls()
    assert p.cmd("AUTH PLAIN " + b64(b"\0kuser\0" + KPW.encode())) \
        .startswith(b"+OK Logged in")
    p.cmd("QUIT")
    p.close()
    inst.wait_for_log(r"login: user=kuser, method=USER, tls=")
    inst.wait_for_log(r"login: user=kuser, method=PLAIN, tls=")


# ------------------------------------------------------------------ ManageSieve
class Sieve:
    """A raw ManageSieve client."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.buf = b""
        self.greeting = self.response()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def response(self):
        lines = []
        while True:
            line = self.line()
            if re.match(rb"(OK|NO|BYE)\b", line):
                return lines, line
            lines.append(line)

    def cmd(self, data):
        self.send(data + "\r\n")
        return self.response()

    def sasl(self, caps):
        return [l for l in caps if l.startswith(b'"SASL"')][0]

    def starttls(self):
        assert self.cmd("STARTTLS")[1].startswith(b"OK")
        self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""
        return self.response()

    def gssapi(self, ctx, authz=b""):
        self.send(f'AUTHENTICATE "GSSAPI" "{b64(ctx.step())}"\r\n')
        state = {}

        def recv():
            l = self.line()
            m = re.fullmatch(rb'"([A-Za-z0-9+/=]*)"', l)
            if m:
                return base64.b64decode(m.group(1))
            m = re.fullmatch(rb"\{(\d+)\}", l)
            if m:
                n = int(m.group(1))
                while len(self.buf) < n + 2:
                    self._fill()
                data, self.buf = self.buf[:n], self.buf[n + 2:]
                return base64.b64decode(data)
            state["final"] = l
            return None

        sasl_gssapi(ctx, lambda b: self.send(f'"{b64(b)}"\r\n'), recv,
                    authz)
        return state["final"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def test_sieve_mechanisms_follow_tls(inst):
    s = Sieve(inst.port("SIEVE"))
    lines, final = s.greeting
    assert final.startswith(b"OK")
    assert s.sasl(lines) == b'"SASL" "GSSAPI"'
    assert s.cmd('AUTHENTICATE "PLAIN" "' + b64(b"\0alice\0alice pw")
                 + '"')[1].startswith(b"NO (ENCRYPT-NEEDED)")
    assert s.cmd('AUTHENTICATE "CRAM-MD5"')[1] == \
        b'NO "Unsupported authentication mechanism"'
    lines, final = s.starttls()
    assert s.sasl(lines) == b'"SASL" "PLAIN LOGIN GSSAPI"'
    lines, final = s.cmd("CAPABILITY")
    assert s.sasl(lines) == b'"SASL" "PLAIN LOGIN GSSAPI"'
    # LOGIN, the challenges as strings
    s.send('AUTHENTICATE "LOGIN"\r\n')
    assert s.line() == b'"' + b64(b"Username:").encode() + b'"'
    s.send(f'"{b64(b"alice")}"\r\n')
    assert s.line() == b'"' + b64(b"Password:").encode() + b'"'
    s.send(f'"{b64(b"alice pw")}"\r\n')
    assert s.response()[1].startswith(b"OK")
    assert s.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    # UNAUTHENTICATE: the mail role offers its mechanisms again
    assert s.cmd("UNAUTHENTICATE")[1].startswith(b"OK")
    lines, _ = s.cmd("CAPABILITY")
    assert s.sasl(lines) == b'"SASL" "PLAIN LOGIN GSSAPI"'
    assert s.cmd('AUTHENTICATE "PLAIN" "' + b64(b"\0alice\0alice pw")
                 + '"')[1].startswith(b"OK")
    s.close()
    inst.wait_for_log(r"login: user=alice, method=LOGIN, tls=TLSv1")


def test_sieve_gssapi_raw(inst, kdcs, tmp_path):
    good = Creds(kdcs["kdc"], "kuser", tmp_path)
    s = Sieve(inst.port("SIEVE"))
    f = Creds(kdcs["forged"], "kuser", tmp_path, "forged")
    try:
        t = s.gssapi(f.context("sieve"))
    except gssapi.exceptions.GSSError:
        t = s.line()
    assert t.startswith(b"NO"), t
    t = s.gssapi(good.context("sieve"), authz=b"alice")
    assert t == b'NO "Authorization as another user is not allowed"', t
    t = s.gssapi(good.context("sieve"))
    assert t.startswith(b"OK"), t
    lines, final = s.cmd("CAPABILITY")
    assert b'"OWNER" "kuser"' in lines
    assert s.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    s.close()
    inst.wait_for_log(r"login: user=kuser, method=GSSAPI")


def sieve_connect(inst, creds, *args, mech="GSSAPI", user="kuser", pw=None):
    rfd, wfd = os.pipe()
    os.write(wfd, (pw or "").encode() + b"\n")
    os.close(wfd)
    try:
        p = subprocess.run(
            ["sieve-connect", "--server", "localhost",
             "--port", str(inst.port("SIEVE")), "--user", user,
             "--passwordfd", str(rfd), "--notlsverify",
             "--authmech", mech, *args],
            pass_fds=(rfd,), capture_output=True, text=True, timeout=60,
            env=creds.env() if creds is not None else None)
    finally:
        os.close(rfd)
    return p


@pytest.mark.skipif(shutil.which("sieve-connect") is None,
                    reason="sieve-connect is not installed")
def test_sieve_connect_gssapi_and_kerberos_password(inst, kdcs, tmp_path):
    c = Creds(kdcs["kdc"], "kuser", tmp_path)
    script = tmp_path / "k.sieve"
    script.write_text('require ["fileinto"];\r\nfileinto "K";\r\n')
    p = sieve_connect(inst, c, "--localsieve", str(script),
                      "--remotesieve", "k", "--upload")
    assert p.returncode == 0, p.stderr + p.stdout
    inst.wait_for_log(r"login: user=kuser, method=GSSAPI, tls=TLSv1")
    # PLAIN with the Kerberos password (auth_backends ... kerberos)
    p = sieve_connect(inst, None, "--list", mech="PLAIN", pw=KPW)
    assert p.returncode == 0, p.stderr + p.stdout
    assert re.search(r'"?k"?', p.stdout), p.stdout
    inst.wait_for_log(r"login: user=kuser, method=PLAIN, tls=TLSv1")


def test_sieve_bad_sasl_input(inst):
    s = Sieve(inst.port("SIEVE"))
    s.starttls()
    assert s.cmd('AUTHENTICATE "PLAIN" "!!notbase64"')[1] == \
        b'NO "Invalid base64 data"'
    s.send('AUTHENTICATE "PLAIN"\r\n')
    assert s.line() == b'""'
    assert s.cmd('"*"')[1] == b'NO "Authentication aborted"'
    s.send('AUTHENTICATE "GSSAPI"\r\n')
    assert s.line() == b'""'
    assert s.cmd('"*"')[1] == b'NO "Authentication aborted"'
    s.send('AUTHENTICATE "PLAIN"\r\n')
    assert s.line() == b'""'
    assert s.cmd("NOOP")[1] == b'NO "Invalid SASL response"'
    # a quoted string over 1024 octets: NO, and the session goes on
    s.send('AUTHENTICATE "PLAIN"\r\n')
    assert s.line() == b'""'
    assert s.cmd('"' + "A" * 2000 + '"')[1].startswith(b"NO")
    assert s.cmd('AUTHENTICATE "PLAIN" "' + b64(b"\0alice\0wrong")
                 + '"')[1] == b'NO "Authentication failed."'
    assert s.cmd('AUTHENTICATE "PLAIN" "' + b64(b"bob\0alice\0alice pw")
                 + '"')[1] == \
        b'NO "Authorization as another user is not allowed"'
    # the session is still usable; the answer as a literal
    s.send('AUTHENTICATE "PLAIN"\r\n')
    assert s.line() == b'""'
    cred = b64(b"\0alice\0alice pw").encode()
    s.send(b"{%d+}\r\n" % len(cred) + cred + b"\r\n")
    assert s.response()[1].startswith(b"OK")
    s.close()
    # a literal over the pre-login budget: the client is already sending
    # it, so the server says BYE (sieved(8) LIMITS)
    s = Sieve(inst.port("SIEVE"))
    s.starttls()
    s.send('AUTHENTICATE "PLAIN"\r\n')
    assert s.line() == b'""'
    s.send(b"{99999+}\r\n")
    assert s.response()[1].startswith(b"BYE")
    s.close()
    assert "unknown password verifier" not in inst.log_text()
