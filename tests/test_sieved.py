# SPDX-License-Identifier: MIT
"""sieved: ManageSieve (RFC 5804).

Every test runs a real instance: sieved on SIEVE_PORT (login role) and
the private sieve-mail service (mail role, as the store owner) from
`postern instance init`'s master.conf. Clients: sieve-connect (Debian's
package, driven non-interactively with --passwordfd) and a raw socket
client where the exact bytes matter. Scripts land in
$store_directory/USER/sieve/ (sieved(8) LAYOUT), which the tests read.
"""

import base64
import os
import re
import socket
import ssl
import shutil
import subprocess
import time

import pytest

from conftest import HOST


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


def sieve_instance(factory, users=("alice", "bob"), **config):
    """An instance with sieved's services, started, with users."""
    inst = factory()
    os.chmod(inst.dir, 0o755)
    for key, value in config.items():
        inst.set_config(key, value)
    conf = (inst.dir / "master.conf").read_text()
    live = [l for l in conf.splitlines() if l.strip() and not l.startswith("#")]
    assert any(f":{inst.port('SIEVE')} " in l and "sieved" in l for l in live)
    assert any(l.split()[0] == "sieve-mail" for l in live)
    for user in users:
        inst.postern("user", "add", user, "--password-stdin", input="pw\n")
    inst.start()
    wait_port(inst.port("SIEVE"))
    return inst


@pytest.fixture
def sv(instance_factory):
    return sieve_instance(instance_factory)


def script_dir(inst, user):
    return inst.dir / "store" / user / "sieve"


class Raw:
    """A raw ManageSieve client: send bytes, read responses."""

    def __init__(self, inst, tls=False):
        self.sock = socket.create_connection((HOST, inst.port("SIEVE")), timeout=20)
        self.buf = b""
        self.greeting = self.response()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

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

    def read_n(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """Lines up to and including OK/NO/BYE; literals are inlined.
        Returns (lines before, final line)."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                data = self.read_n(int(m.group(1)))
                line = line[:m.start()] + b"{" + data + b"}"
                rest = self.line()
                line += rest
            if re.match(rb"(OK|NO|BYE)\b", line):
                return lines, line
            lines.append(line)

    def cmd(self, data):
        self.send(data if data.endswith("\r\n") else data + "\r\n")
        return self.response()

    def starttls(self):
        lines, final = self.cmd("STARTTLS")
        assert final.startswith(b"OK"), final
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""
        return self.response()

    def login(self, user="alice", pw="pw"):
        ir = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
        lines, final = self.cmd(f'AUTHENTICATE "PLAIN" "{ir}"')
        assert final.startswith(b"OK"), final
        return final

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def put(raw, name, text, plus=True):
    data = text.encode() if isinstance(text, str) else text
    mark = "+" if plus else ""
    raw.send(f'PUTSCRIPT "{name}" {{{len(data)}{mark}}}\r\n'.encode() + data + b"\r\n")
    return raw.response()


GOOD = 'require ["fileinto"];\r\nif header :contains "subject" "x" {\r\n  fileinto "X";\r\n}\r\n'
BAD = 'require ["fileinto"];\r\nif header :contains "subject" "x" {\r\n  frobnicate "X";\r\n}\r\n'


# ------------------------------------------------------------------ capabilities, states
def test_greeting_capabilities(sv):
    r = Raw(sv)
    lines, final = r.greeting
    assert final.startswith(b"OK")
    caps = {l.split(b" ")[0].strip(b'"'): l for l in lines}
    assert caps[b"IMPLEMENTATION"] == b'"IMPLEMENTATION" "Postern"'
    assert b"fileinto" in caps[b"SIEVE"] and b"vacation" in caps[b"SIEVE"]
    # RFC 5703, from the engine's list
    assert all(x in caps[b"SIEVE"].split(b'"')[3].split()
               for x in (b"foreverypart", b"mime", b"extracttext")), caps
    # the default sasl_mechanisms, through libsasl2
    assert caps[b"SASL"] == b'"SASL" "PLAIN LOGIN"'
    assert b"STARTTLS" in caps
    assert caps[b"VERSION"] == b'"VERSION" "1.0"'
    assert caps[b"MAXREDIRECTS"] == b'"MAXREDIRECTS" "4"'
    # not authenticated: script commands are refused, the session goes on
    for c in ("LISTSCRIPTS", 'GETSCRIPT "a"', 'DELETESCRIPT "a"',
              'SETACTIVE "a"', "UNAUTHENTICATE", 'HAVESPACE "a" 10'):
        assert r.cmd(c)[1].startswith(b"NO"), c
    assert r.cmd("NOOP")[1].startswith(b"OK")
    assert r.cmd('NOOP "tag1"')[1] == b'OK (TAG "tag1") "Done"'
    assert r.cmd("LOGOUT")[1].startswith(b"OK")
    r.close()


def test_starttls_then_login_and_capabilities(sv):
    r = Raw(sv)
    lines, final = r.starttls()
    assert final.startswith(b"OK")
    assert not any(l.startswith(b'"STARTTLS"') for l in lines)
    assert any(l.startswith(b'"SASL"') for l in lines)
    r.login()
    lines, final = r.cmd("CAPABILITY")
    assert final.startswith(b"OK")
    assert b'"OWNER" "alice"' in lines
    assert r.cmd("STARTTLS")[1].startswith(b"NO")
    assert r.cmd('AUTHENTICATE "PLAIN" "AGFsaWNlAHB3"')[1].startswith(b"NO")
    assert put(r, "tls", GOOD)[1].startswith(b"OK")
    lines, final = r.cmd("LISTSCRIPTS")
    assert lines == [b'"tls"']
    r.close()
    sv.wait_for_log(r"login: user=alice, method=PLAIN, tls=TLSv1")


def test_authenticate_continuation_and_failures(sv):
    r = Raw(sv)
    # without an initial response: the server sends "" and reads a string
    r.send('AUTHENTICATE "PLAIN"\r\n')
    assert r.line() == b'""'
    ir = base64.b64encode(b"\0alice\0wrong")
    lines, final = r.cmd(b'"' + ir + b'"' + b"\r\n" if False else '"%s"' % ir.decode())
    assert final.startswith(b"NO")
    r.send('AUTHENTICATE "PLAIN"\r\n')
    assert r.line() == b'""'
    assert r.cmd('"*"')[1].startswith(b"NO")
    assert r.cmd('AUTHENTICATE "GSSAPI"')[1].startswith(b"NO")
    assert r.cmd('AUTHENTICATE "PLAIN" "!!notbase64"')[1].startswith(b"NO")
    # literal form of the response
    r.send('AUTHENTICATE "PLAIN"\r\n')
    assert r.line() == b'""'
    ir = base64.b64encode(b"\0alice\0pw")
    r.send(b"{%d+}\r\n" % len(ir) + ir + b"\r\n")
    assert r.response()[1].startswith(b"OK")
    assert r.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    r.close()


def test_unauthenticate(sv):
    r = Raw(sv)
    r.login("alice")
    assert put(r, "mine", GOOD)[1].startswith(b"OK")
    assert r.cmd("UNAUTHENTICATE")[1].startswith(b"OK")
    assert r.cmd("LISTSCRIPTS")[1].startswith(b"NO")
    r.login("bob")
    lines, final = r.cmd("LISTSCRIPTS")
    assert final.startswith(b"OK") and lines == []
    r.close()


# ------------------------------------------------------------------ scripts
def test_script_lifecycle(sv):
    r = Raw(sv)
    r.login()
    assert put(r, "one", GOOD)[1].startswith(b"OK")
    assert put(r, "two", GOOD, plus=False)[1].startswith(b"OK")   # {n} too
    lines, final = r.cmd("LISTSCRIPTS")
    assert sorted(lines) == [b'"one"', b'"two"']
    assert r.cmd('SETACTIVE "one"')[1].startswith(b"OK")
    lines, _ = r.cmd("LISTSCRIPTS")
    assert b'"one" ACTIVE' in lines
    d = script_dir(sv, "alice")
    assert os.readlink(d / "active") == "one.sieve"
    assert (d / "one.sieve").read_bytes() == GOOD.encode()
    # GETSCRIPT returns a literal with the exact bytes
    r.send('GETSCRIPT "one"\r\n')
    head = r.line()
    assert head == b"{%d}" % len(GOOD)
    assert r.read_n(len(GOOD)) == GOOD.encode()
    assert r.line() == b""
    assert r.response()[1].startswith(b"OK")
    # the active script cannot be deleted
    assert r.cmd('DELETESCRIPT "one"')[1].startswith(b"NO (ACTIVE)")
    assert r.cmd('DELETESCRIPT "nope"')[1].startswith(b"NO (NONEXISTENT)")
    assert r.cmd('GETSCRIPT "nope"')[1].startswith(b"NO (NONEXISTENT)")
    assert r.cmd('SETACTIVE "nope"')[1].startswith(b"NO (NONEXISTENT)")
    # rename: the active link follows; an existing target is refused
    assert r.cmd('RENAMESCRIPT "one" "two"')[1].startswith(b"NO (ALREADYEXISTS)")
    assert r.cmd('RENAMESCRIPT "one" "uno"')[1].startswith(b"OK")
    assert os.readlink(d / "active") == "uno.sieve"
    lines, _ = r.cmd("LISTSCRIPTS")
    assert sorted(lines) == [b'"two"', b'"uno" ACTIVE']
    assert r.cmd('DELETESCRIPT "two"')[1].startswith(b"OK")
    assert not (d / "two.sieve").exists()
    # deactivate
    assert r.cmd('SETACTIVE ""')[1].startswith(b"OK")
    assert not os.path.lexists(d / "active")
    assert r.cmd('DELETESCRIPT "uno"')[1].startswith(b"OK")
    assert r.cmd("LISTSCRIPTS")[0] == []
    r.close()


def test_putscript_errors_have_text_and_line(sv):
    r = Raw(sv)
    r.login()
    lines, final = put(r, "bad", BAD)
    assert final.startswith(b"NO"), final
    assert b"bad:3:" in final and b"frobnicate" in final
    assert not (script_dir(sv, "alice") / "bad.sieve").exists()
    lines, final = r.cmd('CHECKSCRIPT {%d+}\r\n%s\r\n' % (len(BAD), BAD))
    assert final.startswith(b"NO") and b":3:" in final
    lines, final = r.cmd('CHECKSCRIPT {%d+}\r\n%s\r\n' % (len(GOOD), GOOD))
    assert final.startswith(b"OK")
    r.close()


def test_bad_names(sv):
    r = Raw(sv)
    r.login()
    for name in ("../x", "a/b", ".hidden", "", "x" * 200):
        assert put(r, name, GOOD)[1].startswith(b"NO"), name
    assert put(r, "ok name \u00e9t\u00e9", GOOD)[1].startswith(b"OK")
    lines, _ = r.cmd("LISTSCRIPTS")
    assert lines == ['"ok name \u00e9t\u00e9"'.encode()]
    assert not list((sv.dir / "store" / "alice").glob("x.sieve"))
    r.close()


def test_quota(instance_factory):
    inst = sieve_instance(instance_factory, sieve_quota_max_scripts="2",
                          sieve_quota_max_storage="300",
                          sieve_max_script_size="200")
    r = Raw(inst)
    r.login()
    assert r.cmd('HAVESPACE "a" 100')[1].startswith(b"OK")
    assert r.cmd('HAVESPACE "a" 250')[1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert put(r, "a", GOOD)[1].startswith(b"OK")
    assert put(r, "b", GOOD)[1].startswith(b"OK")
    assert put(r, "c", GOOD)[1].startswith(b"NO (QUOTA/MAXSCRIPTS)")
    assert r.cmd('HAVESPACE "c" 1')[1].startswith(b"NO (QUOTA/MAXSCRIPTS)")
    # replacing a script does not count it twice
    assert put(r, "a", GOOD + "# more\r\n")[1].startswith(b"OK")
    big = GOOD + "#" * 150 + "\r\n"
    assert put(r, "b", big)[1].startswith(b"NO (QUOTA/MAXSIZE)")
    r.close()


# ------------------------------------------------------------------ bad input
def test_long_line_and_huge_literal(sv):
    r = Raw(sv)
    r.send(b"NOOP " + b"x" * 20000 + b"\r\n")
    lines, final = r.response()
    assert final.startswith(b"BYE")
    r.close()
    r = Raw(sv)
    r.send(b'AUTHENTICATE "PLAIN" {99999999+}\r\n')
    assert r.response()[1].startswith(b"BYE")
    r.close()
    r = Raw(sv)
    r.send(b'AUTHENTICATE "PLAIN" {99999999999999999999+}\r\n')
    assert r.response()[1].startswith(b"BYE")
    r.close()
    r = Raw(sv)
    r.login()
    r.send(b'PUTSCRIPT "a" {4294967295+}\r\n')
    assert r.response()[1].startswith(b"BYE")
    r.close()
    # still serving
    r = Raw(sv)
    r.login()
    assert r.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    r.close()


def test_garbage_commands(sv):
    r = Raw(sv)
    for c in ("FROB", '"quoted"', "PUTSCRIPT", 'LOGOUT "x"', "NOOP  ",
              'NOOP "unterminated', 'NOOP "bad\\escape"', "NOOP {3}x",
              "HAVESPACE 1 2", "\x00\x01\x02"):
        lines, final = r.cmd(c)
        assert final.startswith(b"NO") or final.startswith(b"BYE"), (c, final)
        if final.startswith(b"BYE"):
            break
    r.close()
    # too many errors end the session before login
    r = Raw(sv)
    final = b""
    for _ in range(12):
        try:
            lines, final = r.cmd("FROB")
        except (EOFError, OSError):
            break
        if final.startswith(b"BYE"):
            break
    assert final.startswith(b"BYE")
    r.close()
    r = Raw(sv)
    r.login()
    assert r.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    r.close()


def test_pipelined_after_login(sv):
    """Commands sent with the AUTHENTICATE reach the mail role."""
    r = Raw(sv)
    ir = base64.b64encode(b"\0alice\0pw").decode()
    data = GOOD.encode()
    r.send(f'AUTHENTICATE "PLAIN" "{ir}"\r\n'.encode()
           + b'PUTSCRIPT "p" {%d+}\r\n' % len(data) + data + b"\r\nLISTSCRIPTS\r\n")
    assert r.response()[1].startswith(b"OK")
    assert r.response()[1].startswith(b"OK")
    lines, final = r.response()
    assert lines == [b'"p"'] and final.startswith(b"OK")
    r.close()


def test_plaintext_refused_without_tls(instance_factory):
    inst = sieve_instance(instance_factory, managesieve_loopback_secure="no")
    r = Raw(inst)
    lines, _ = r.greeting
    assert b'"SASL" ""' in lines
    assert r.cmd('AUTHENTICATE "PLAIN" "AGFsaWNlAHB3"')[1].startswith(b"NO (ENCRYPT-NEEDED)")
    lines, _ = r.starttls()
    assert b'"SASL" "PLAIN LOGIN"' in lines
    r.login()
    assert r.cmd("LISTSCRIPTS")[1].startswith(b"OK")
    r.close()


# ------------------------------------------------------------------ sieve-connect
def sieve_connect(inst, *args, user="alice", pw="pw"):
    rfd, wfd = os.pipe()
    os.write(wfd, pw.encode() + b"\n")
    os.close(wfd)
    try:
        p = subprocess.run(
            ["sieve-connect", "--server", HOST, "--port", str(inst.port("SIEVE")),
             "--user", user, "--passwordfd", str(rfd), "--notlsverify",
             "--authmech", "PLAIN", *args],
            pass_fds=(rfd,), capture_output=True, text=True, timeout=60)
    finally:
        os.close(rfd)
    return p


@pytest.mark.skipif(shutil.which("sieve-connect") is None,
                    reason="sieve-connect is not installed")
def test_sieve_connect(sv, tmp_path):
    local = tmp_path / "vac.sieve"
    local.write_text(GOOD)
    p = sieve_connect(sv, "--localsieve", str(local), "--remotesieve", "vac",
                      "--upload")
    assert p.returncode == 0, p.stderr + p.stdout
    p = sieve_connect(sv, "--remotesieve", "vac", "--activate")
    assert p.returncode == 0, p.stderr + p.stdout
    p = sieve_connect(sv, "--list")
    assert p.returncode == 0, p.stderr
    assert re.search(r"\"?vac\"? ACTIVE", p.stdout), p.stdout
    out = tmp_path / "back.sieve"
    p = sieve_connect(sv, "--remotesieve", "vac", "--localsieve", str(out),
                      "--download")
    assert p.returncode == 0, p.stderr
    assert out.read_bytes().replace(b"\r\n", b"\n") == GOOD.encode().replace(b"\r\n", b"\n")
    bad = tmp_path / "bad.sieve"
    bad.write_text(BAD)
    p = sieve_connect(sv, "--localsieve", str(bad), "--remotesieve", "bad",
                      "--upload")
    assert p.returncode != 0
    assert "frobnicate" in (p.stderr + p.stdout)
    assert os.readlink(script_dir(sv, "alice") / "active") == "vac.sieve"
    sv.wait_for_log(r"login: user=alice, method=PLAIN, tls=TLSv1")


def test_input_in_small_pieces(sv):
    """A command split into single octets (literal included) is the same
    command."""
    r = Raw(sv)
    r.login()
    data = GOOD.encode()
    cmd = b'PUTSCRIPT "bytes" {%d+}\r\n' % len(data) + data + b"\r\n"
    for i in range(len(cmd)):
        r.send(cmd[i:i + 1])
        if i % 16 == 0:
            time.sleep(0.001)
    assert r.response()[1].startswith(b"OK")
    assert (script_dir(sv, "alice") / "bytes.sieve").read_bytes() == data
    r.close()
