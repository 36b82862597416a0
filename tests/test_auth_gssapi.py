# SPDX-License-Identifier: MIT
"""SASL GSSAPI (RFC 4752) logins against a real Heimdal KDC.

The client is python3-gssapi (MIT) driving the SASL exchange by hand, as a
mail client would: the initial context token as the initial response, the
server's tokens stepped until the context is complete, then the server's
wrapped security-layer offer unwrapped and answered with "no layer" and
the authorization identity. The server is Postern's login daemon with
sasl_mechanisms including GSSAPI, the Heimdal plugin of libsasl2 and the
service keys in auth_krb5_keytab.

One KDC (realm POSTERN.TEST: kuser, kuser/admin, service keys imap/,
smtp/, pop/, sieve/localhost) and one forged KDC (the same realm and
names, other keys) are started once for the module.
"""

import base64
import os
import smtplib
import socket
import ssl
import time

import pytest

from conftest import HOST
from kdc_fixture import (REALM, Creds, gssapi, have_gssapi_tests, kdc_pair,
                         sasl_gssapi)

pytestmark = pytest.mark.skipif(not have_gssapi_tests(),
                                reason="needs heimdal-kdc and python3-gssapi")


@pytest.fixture(scope="module")
def kdcs():
    yield from kdc_pair("pst-gssapi-")


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


@pytest.fixture
def inst(instance_factory, kdcs):
    i = instance_factory()
    os.chmod(i.dir, 0o755)
    kdc = kdcs["kdc"]
    for k, v in {
        "auth_backends": "userdb, kerberos",
        "auth_krb5_config": str(kdc.conf),
        "auth_krb5_keytab": f"FILE:{kdcs['keytab']}",
        "auth_krb5_realm": REALM,
        "auth_krb5_service": f"imap/localhost@{REALM}",
        "sasl_mechanisms": "PLAIN, LOGIN, GSSAPI",
        "sasl_hostname": "localhost",
        "smtpd_peername_lookup": "no",
    }.items():
        i.set_config(k, v)
    have = (i.dir / "master.conf").read_text()
    lines = [l.split() for l in have.splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    if not any(l[0] == "cleanup" for l in lines):
        i.add_service("cleanup unix n - n - 0 cleanup")
    port = i.port("SUBMISSION")
    if f":{port} " not in have:
        i.add_service(f"{HOST}:{port} inet n - n - - smtpd"
                      " -o smtpd_sasl_auth_enable=yes"
                      " -o smtpd_tls_security_level=encrypt")
    i.postern("user", "add", "alice", "--password-stdin",
              input="alice pw\n")
    i.start()
    wait_port(i.port("IMAP"))
    wait_port(port)
    return i


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Imap:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()
        self.last = None

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def line(self):
        return self.f.readline()

    def cmd(self, tag, text):
        self.send(f"{tag} {text}")
        while True:
            l = self.line()
            if l.startswith(tag.encode() + b" ") or not l:
                return l

    def gssapi(self, ctx, tag="a", authz=b""):
        tok = ctx.step()
        self.send(f"{tag} AUTHENTICATE GSSAPI "
                  + base64.b64encode(tok).decode())

        def recv():
            l = self.line()
            if l.startswith(b"+ "):
                return base64.b64decode(l[2:].strip())
            if l.startswith(b"+"):
                return b""
            self.last = l
            return None

        def send(b):
            self.send(base64.b64encode(b).decode())

        sasl_gssapi(ctx, send, recv, authz)
        return self.last


def test_imap_gssapi_login(inst, kdcs, tmp_path):
    r = Imap(inst.port("IMAP"))
    assert b"AUTH=GSSAPI" in r.greeting and b"AUTH=PLAIN" in r.greeting
    c = Creds(kdcs["kdc"], "kuser", tmp_path)
    t = r.gssapi(c.context("imap"))
    assert t.startswith(b"a OK"), t
    assert r.cmd("b", "SELECT INBOX").startswith(b"b OK")
    assert r.cmd("c", "LOGOUT").startswith(b"c OK")
    assert "login: user=kuser, method=GSSAPI" in inst.log_text()
    # authorization identity = the user: fine, with or without realm
    for authz in (b"kuser", b"kuser@" + REALM.encode()):
        r = Imap(inst.port("IMAP"))
        t = r.gssapi(Creds(kdcs["kdc"], "kuser", tmp_path).context("imap"),
                     authz=authz)
        assert t.startswith(b"a OK"), (authz, t)
    # PLAIN still works next to it
    r = Imap(inst.port("IMAP"))
    cred = base64.b64encode(b"\0alice\0alice pw").decode()
    assert r.cmd("p", f"AUTHENTICATE PLAIN {cred}").startswith(b"p OK")
    # a wrong password through libsasl2's PLAIN is an ordinary failure
    r = Imap(inst.port("IMAP"))
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    assert r.cmd("q", f"AUTHENTICATE PLAIN {bad}").startswith(
        b"q NO [AUTHENTICATIONFAILED]")
    assert "unknown password verifier" not in inst.log_text()


def test_imap_gssapi_refused(inst, kdcs, tmp_path):
    # A ticket from a KDC that does not know our service key.
    r = Imap(inst.port("IMAP"))
    c = Creds(kdcs["forged"], "kuser", tmp_path, "forged")
    try:
        t = r.gssapi(c.context("imap"))
    except gssapi.exceptions.GSSError:
        t = r.last
    assert t is not None and t.startswith(b"a NO"), t
    # The same connection can still log in with a good ticket.
    t = r.gssapi(Creds(kdcs["kdc"], "kuser", tmp_path).context("imap"), "b")
    assert t.startswith(b"b OK"), t
    # A principal with an instance is no local user.
    r = Imap(inst.port("IMAP"))
    t = r.gssapi(Creds(kdcs["kdc"], "kuser/admin", tmp_path, "adm")
                 .context("imap"))
    assert t.startswith(b"a NO [AUTHENTICATIONFAILED]"), t
    # Logging in as someone else is refused.
    r = Imap(inst.port("IMAP"))
    t = r.gssapi(Creds(kdcs["kdc"], "kuser", tmp_path).context("imap"),
                 authz=b"alice")
    assert t.startswith(b"a NO [AUTHORIZATIONFAILED]"), t
    # Cancel.
    r = Imap(inst.port("IMAP"))
    r.send("c AUTHENTICATE GSSAPI")
    assert r.line().startswith(b"+")
    r.send("*")
    assert r.line().startswith(b"c BAD")
    log = inst.log_text()
    assert log.count("login: user=") == 1   # the good ticket only
    assert "identity kuser/admin" in log


def smtp_gssapi(inst, ctx, authz=b""):
    """AUTH GSSAPI on submission after STARTTLS: the final (code, text)."""
    s = smtplib.SMTP(HOST, inst.port("SUBMISSION"), timeout=30)
    s.ehlo("client.test")
    s.starttls(context=tls_ctx())
    s.ehlo("client.test")
    mechs = s.esmtp_features.get("auth", "").split()
    assert "GSSAPI" in mechs and "PLAIN" in mechs, mechs
    last = {}
    code, text = s.docmd("AUTH", "GSSAPI "
                         + base64.b64encode(ctx.step()).decode())
    state = {"code": code, "text": text}

    def recv():
        if state["code"] != 334:
            last["r"] = (state["code"], state["text"])
            return None
        return base64.b64decode(state["text"].strip())

    def send(b):
        c, m = s.docmd(base64.b64encode(b).decode())
        state["code"], state["text"] = c, m

    sasl_gssapi(ctx, send, recv, authz)
    if last["r"][0] == 235:
        s.mail("kuser@localhost")
        s.rset()
    s.quit()
    return last["r"]


def test_smtp_gssapi(inst, kdcs, tmp_path):
    c = Creds(kdcs["kdc"], "kuser", tmp_path)
    code, text = smtp_gssapi(inst, c.context("smtp"))
    assert code == 235, text
    code, text = smtp_gssapi(inst, Creds(kdcs["kdc"], "kuser", tmp_path)
                             .context("smtp"), authz=b"alice")
    assert code == 535, text
    f = Creds(kdcs["forged"], "kuser", tmp_path, "forged")
    code, text = smtp_gssapi(inst, f.context("smtp"))
    assert code == 535, text
    log = inst.log_text()
    assert "sasl_method=GSSAPI, sasl_username=kuser" in log
    # PLAIN and LOGIN through libsasl2 and lib/auth
    with smtplib.SMTP(HOST, inst.port("SUBMISSION"), timeout=30) as s:
        s.ehlo("client.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.test")
        s.login("alice", "alice pw")
    with smtplib.SMTP(HOST, inst.port("SUBMISSION"), timeout=30) as s:
        s.ehlo("client.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("alice", "wrong")
