# SPDX-License-Identifier: MIT
"""lib/auth backends with the real servers: Heimdal KDC and OpenLDAP slapd.

One KDC (realm POSTERN.TEST, user kuser, service keys imap/, pop/, smtp/
localhost in a keytab), one "forged" KDC (the same realm name, a user
kuser with the attacker's password, but none of our service keys) and
one slapd (user luser with a password and Postern attributes; a second
entry with the same uid under another ou to test ambiguity) are started
once for the module. Each test runs its own instance with
auth_backends = userdb, kerberos, ldap and talks IMAPS, POP3S and
submission+STARTTLS to it, as a mail client would.
"""

import imaplib
import os
import shutil
import poplib
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HOST, POSTERN
from kdc_fixture import KDC, have_heimdal_kdc
from ldap_fixture import MAIL_DN, MAIL_PW, SUFFIX, Directory, have_slapd

pytestmark = pytest.mark.skipif(not (have_heimdal_kdc() and have_slapd()),
                                reason="needs heimdal-kdc and slapd")

REALM = "POSTERN.TEST"
SERVICES = ["imap/localhost", "pop/localhost", "smtp/localhost"]
KPW = "kerberos pass 1"
LPW = "ldap pass 1"
UPW = "userdb pass 1"


@pytest.fixture(scope="module")
def servers():
    # Not under pytest's 0700 tmp: the daemons run as another user and
    # read krb5.conf, the keytab and the bind password from here.
    base = Path(tempfile.mkdtemp(prefix="pst-authsrv-"))
    os.chmod(base, 0o755)
    kdc = KDC(base / "kdc", REALM)
    kdc.add_user("kuser", KPW)
    kdc.add_user("kuser2", KPW)
    for s in SERVICES:
        kdc.add_service(s)
    keytab = kdc.keytab(SERVICES)
    forged = KDC(base / "forged", REALM)
    forged.add_user("kuser", "forged password")
    for s in SERVICES:
        forged.add_service(s)   # keys the real server does not have
    ldap = Directory(base / "ldap")
    ldap.load(f"dn: ou=staff,{SUFFIX}\nobjectClass: organizationalUnit\n"
              "ou: staff\n\n"
              + ldap.user_ldif("luser", LPW, mail="luser@localhost",
                               posternMailHost="backend1.postern.test",
                               posternForwardingAddress=[
                                   "luser@elsewhere.example",
                                   "luser2@elsewhere.example"],
                               posternVacationActive="TRUE")
              + ldap.user_ldif("nopw")
              + ldap.user_ldif("twice", LPW)
              + ldap.user_ldif("twice", LPW).replace("ou=people", "ou=staff"))
    pwfile = base / "ldap" / "bind.pw"
    pwfile.write_text(MAIL_PW + "\n")
    os.chmod(pwfile, 0o644)   # test only; 0640 group postern in real life
    kdc.start()
    forged.start()
    ldap.start()
    yield {"kdc": kdc, "forged": forged, "ldap": ldap, "keytab": keytab,
           "pwfile": pwfile}
    ldap.stop()
    forged.stop()
    kdc.stop()
    shutil.rmtree(base, ignore_errors=True)


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


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


def service_lines(inst):
    return [l for l in (inst.dir / "master.conf").read_text().splitlines()
            if l.strip() and not l.lstrip().startswith("#")]


def start(factory, srv, kdc=None, **config):
    inst = factory()
    os.chmod(inst.dir, 0o755)
    kdc = kdc or srv["kdc"]
    settings = {
        "auth_backends": "userdb, kerberos, ldap",
        "auth_krb5_config": str(kdc.conf),
        "auth_krb5_keytab": f"FILE:{srv['keytab']}",
        "auth_krb5_realm": REALM,
        "auth_krb5_service": f"imap/localhost@{REALM}",
        "ldap_uri": srv["ldap"].uri,
        "ldap_base": SUFFIX,
        "ldap_bind_dn": MAIL_DN,
        "ldap_bind_pw_file": str(srv["pwfile"]),
        "ldap_timeout": "5s",
        "smtpd_peername_lookup": "no",
        # many failures in a row here; test_auth_delay.py tests delays
        "auth_failure_delay_ms": "0",
    }
    settings.update(config)
    for k, v in settings.items():
        inst.set_config(k, v)
    have = " ".join(service_lines(inst))
    if not any(l.split()[0] == "cleanup" for l in service_lines(inst)):
        inst.add_service("cleanup unix n - n - 0 cleanup")
    for key, args in (("SMTP", "smtpd"),
                      ("SUBMISSION", "smtpd -o smtpd_sasl_auth_enable=yes"
                       " -o smtpd_tls_security_level=encrypt")):
        port = inst.port(key)
        if f":{port} " not in have:
            inst.add_service(f"{HOST}:{port} inet n - n - - {args}")
    inst.postern("user", "add", "alice", "--password-stdin",
                 input=UPW + "\n")
    inst.start()
    for key in ("IMAPS", "POP3S", "SUBMISSION", "SMTP"):
        wait_port(inst.port(key))
    return inst


def imap_login(inst, user, pw):
    m = imaplib.IMAP4_SSL(HOST, inst.port("IMAPS"), ssl_context=tls_ctx(),
                          timeout=30)
    try:
        m.login(user, pw)
        ok = m.select("INBOX")[0] == "OK"
        m.logout()
        return ok
    except imaplib.IMAP4.error as e:
        return str(e)


def pop_login(inst, user, pw):
    p = poplib.POP3_SSL(HOST, inst.port("POP3S"), context=tls_ctx(),
                        timeout=30)
    try:
        p.user(user)
        p.pass_(pw)
        p.stat()
        p.quit()
        return True
    except poplib.error_proto as e:
        return str(e)


def smtp_auth(inst, user, pw):
    with smtplib.SMTP(HOST, inst.port("SUBMISSION"), timeout=30) as s:
        s.ehlo("client.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.test")
        try:
            s.login(user, pw)   # AUTH PLAIN
            return True
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code


def all_protocols(inst, user, pw):
    return [imap_login(inst, user, pw), pop_login(inst, user, pw),
            smtp_auth(inst, user, pw)]


def test_kerberos_ldap_and_userdb_users_log_in(instance_factory, servers):
    inst = start(instance_factory, servers)
    assert all_protocols(inst, "kuser", KPW) == [True, True, True]
    assert all_protocols(inst, "luser", LPW) == [True, True, True]
    assert all_protocols(inst, "alice", UPW) == [True, True, True]
    # Wrong passwords, one per backend, and a user nobody knows: the
    # same refusal for all (no user enumeration).
    # (imapd and pop3d sleep a second after each failure: POP3 gets two.)
    for user, pw in (("kuser", "wrong"), ("luser", "wrong"),
                     ("alice", "wrong"), ("nosuchuser", KPW),
                     ("kuser", LPW), ("luser", KPW)):
        r = imap_login(inst, user, pw)
        assert r is not True and "AUTHENTICATIONFAILED" in r, (user, r)
        assert smtp_auth(inst, user, pw) == 535, user
    for user, pw in (("kuser", "wrong"), ("nosuchuser", LPW)):
        assert pop_login(inst, user, pw) is not True
    # A Kerberos password change is seen at once.
    servers["kdc"].set_password("kuser2", "changed pw 2")
    assert imap_login(inst, "kuser2", KPW) is not True
    assert imap_login(inst, "kuser2", "changed pw 2") is True


def test_ldap_edge_cases(instance_factory, servers):
    inst = start(instance_factory, servers, auth_backends="ldap")
    # No userPassword, an empty password (an unauthenticated bind would
    # succeed), two entries for one uid, and filter syntax in the name.
    assert imap_login(inst, "nopw", "") is not True
    assert imap_login(inst, "nopw", "x") is not True
    assert imap_login(inst, "luser", "") is not True
    assert imap_login(inst, "twice", LPW) is not True
    assert imap_login(inst, "*", LPW) is not True
    assert imap_login(inst, "luser)(uid=*", LPW) is not True
    # Only ldap: the userdb user is unknown here.
    assert imap_login(inst, "alice", UPW) is not True
    assert imap_login(inst, "LUser", LPW) is True


def test_forged_kdc_cannot_log_anyone_in(instance_factory, servers):
    """The instance talks to an impostor KDC that accepts the attacker's
    password: the ticket does not verify with our keytab, so no login."""
    forged = servers["forged"]
    ccache = forged.dir / "cc"
    assert forged.kinit(f"kuser@{REALM}", "forged password", ccache)
    inst = start(instance_factory, servers, kdc=forged,
                 auth_backends="kerberos")
    mark = inst.log_mark()
    r = imap_login(inst, "kuser", "forged password")
    assert r is not True and "AUTHENTICATIONFAILED" in r
    assert smtp_auth(inst, "kuser", "forged password") == 535
    assert pop_login(inst, "kuser", "forged password") is not True
    inst.wait_for_log(r"user kuser: kerberos: ticket not verified with the "
                      r"keytab", start=mark)
    # And the real password is no use at the impostor either.
    assert smtp_auth(inst, "kuser", KPW) == 535


def test_stale_keytab_refuses(instance_factory, servers):
    """A keytab whose key the KDC no longer has (rekeyed service): the
    right password still must not log in without a verified ticket."""
    kdc = servers["kdc"]
    kdc.add_service("imap/stale.test")
    stale = kdc.keytab(["imap/stale.test"], name="stale.keytab")
    kdc.randomize("imap/stale.test")
    inst = start(instance_factory, servers, auth_backends="kerberos",
                 auth_krb5_keytab=f"FILE:{stale}",
                 auth_krb5_service=f"imap/stale.test@{REALM}")
    mark = inst.log_mark()
    assert smtp_auth(inst, "kuser", KPW) == 535
    inst.wait_for_log(r"not verified with the keytab", start=mark)


def test_kdc_down_is_temporary(instance_factory, servers):
    """A KDC nobody answers for: a temporary failure, not 'wrong password'."""
    dead = KDC(servers["kdc"].dir.parent / "dead", REALM)   # never started
    inst = start(instance_factory, servers, kdc=dead,
                 auth_backends="kerberos")
    assert smtp_auth(inst, "kuser", KPW) == 454


def test_rcpt_validation_from_ldap(instance_factory, servers):
    ldap = servers["ldap"]
    inst = start(instance_factory, servers, auth_backends="userdb, ldap")
    with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=30) as s:
        s.ehlo("mx.test")
        assert s.mail("x@example.org")[0] == 250
        assert s.rcpt("luser@localhost")[0] == 250      # in LDAP only
        assert s.rcpt("alice@localhost")[0] == 250      # in userdb only
        assert s.rcpt("nobody@localhost")[0] == 550
        assert s.rcpt("twice@localhost")[0] == 550      # ambiguous
        # slapd restarts under a live session: one reconnect, no error.
        ldap.restart()
        assert s.rcpt("luser@localhost")[0] == 250
        assert s.rcpt("nobody@localhost")[0] == 550
        # slapd down: a temporary failure, never "no such user"
        ldap.stop()
        try:
            assert s.rcpt("luser@localhost")[0] == 450 or \
                s.rcpt("luser@localhost")[0] // 100 == 4
        finally:
            ldap.start()


def test_ldap_map(servers, tmp_path):
    """ldap: maps through `postern map query`: forwarding, mail host,
    several values, not found, failover to the second URI, bad config."""
    ldap = servers["ldap"]
    cf = tmp_path / "forward.cf"
    cf.write_text(
        "# Postfix ldap_table style\n"
        "server_host = ldap://127.0.0.1:1/\n"
        f"    {ldap.uri}\n"
        f"search_base = {SUFFIX}\n"
        "query_filter = (&(objectClass=posternUser)(mail=%s))\n"
        "result_attribute = posternForwardingAddress\n"
        f"bind_dn = {MAIL_DN}\n"
        f"bind_pw_file = {servers['pwfile']}\n"
        "timeout = 5\n")

    def query(spec, key):
        r = subprocess.run([str(POSTERN), "map", "query", spec, key],
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout.strip(), r.stderr

    rc, out, err = query(f"ldap:{cf}", "LUSER@localhost")
    assert rc == 0, err
    assert out == "luser@elsewhere.example, luser2@elsewhere.example"
    assert query(f"ldap:{cf}", "nobody@localhost")[0] == 1
    assert query(f"ldap:{cf}", "*")[0] == 1
    host = tmp_path / "host.cf"
    host.write_text(cf.read_text().replace(
        "posternForwardingAddress", "posternMailHost").replace(
        "(mail=%s)", "(uid=%u)"))
    assert query(f"ldap:{host}", "luser@localhost")[1] == "backend1.postern.test"
    # No bind: anonymous reads are refused by this directory -> error.
    anon = tmp_path / "anon.cf"
    anon.write_text(cf.read_text() + "bind = no\n")
    rc, out, err = query(f"ldap:{anon}", "luser@localhost")
    assert rc not in (0, 1) or out == ""
    bad = tmp_path / "bad.cf"
    bad.write_text("server_host = ldap://x/\nbogus = 1\n")
    rc, out, err = query(f"ldap:{bad}", "x")
    assert rc != 0 and "bad.cf:2" in err
