# SPDX-License-Identifier: MIT
"""LDAP over TLS (lib/ldapdir): StartTLS and ldaps:// for ldap: maps and
the ldap auth backend, against a real slapd with a test CA.

slapd here refuses every operation without TLS (security tls=1), so a
lookup that works went over TLS, and one that would fall back to
plaintext cannot succeed. A wrong CA file is a lookup error (postern map
query exits 1 with a message, where "not found" is silent; the IMAP
login says UNAVAILABLE), never a plaintext answer.
"""

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HOST, POSTERN
from ldap_fixture import MAIL_DN, MAIL_PW, SUFFIX, Directory, have_slapd

pytestmark = pytest.mark.skipif(not have_slapd(), reason="needs slapd")

LPW = "ldap tls pass"


@pytest.fixture(scope="module")
def ldap():
    base = Path(tempfile.mkdtemp(prefix="pst-ldaptls-"))
    os.chmod(base, 0o755)
    d = Directory(base / "ldap", tls=True, require_tls=True)
    d.load(d.user_ldif("tuser", LPW, mail="tuser@localhost",
                       posternForwardingAddress="tuser@elsewhere.example"))
    pwfile = base / "ldap" / "bind.pw"
    pwfile.write_text(MAIL_PW + "\n")
    os.chmod(pwfile, 0o644)
    d.pwfile = pwfile
    d.start()
    yield d
    d.stop()
    shutil.rmtree(base, ignore_errors=True)


def map_cf(d, path, uri, extra=""):
    path.write_text(
        f"server_host = {uri}\n"
        f"search_base = {SUFFIX}\n"
        "query_filter = (&(objectClass=posternUser)(mail=%s))\n"
        "result_attribute = posternForwardingAddress\n"
        f"bind_dn = {MAIL_DN}\n"
        f"bind_pw_file = {d.pwfile}\n"
        "timeout = 5\n" + extra)
    return f"ldap:{path}"


def query(spec, key):
    r = subprocess.run([str(POSTERN), "map", "query", spec, key],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout.strip(), r.stderr


def lookup_error(r, what):
    """(rc, out, err) is a failed lookup (not "not found") naming what."""
    rc, out, err = r
    assert rc == 1 and out == "", r
    assert "lookup of" in err and "failed" in err and what in err, r


def test_map_start_tls(ldap, tmp_path):
    spec = map_cf(ldap, tmp_path / "ok.cf", ldap.uri,
                  f"start_tls = yes\ntls_ca_cert_file = {ldap.ca_file}\n")
    rc, out, err = query(spec, "tuser@localhost")
    assert (rc, out) == (0, "tuser@elsewhere.example"), err
    assert query(spec, "nobody@localhost")[0] == 1


def test_map_start_tls_wrong_ca_fails_cleanly(ldap, tmp_path):
    spec = map_cf(ldap, tmp_path / "wrong.cf", ldap.uri,
                  f"start_tls = yes\ntls_ca_cert_file = {ldap.other_ca_file}\n")
    lookup_error(query(spec, "tuser@localhost"), "StartTLS")
    # a CA file that does not exist: an error too
    spec = map_cf(ldap, tmp_path / "missing.cf", ldap.uri,
                  "start_tls = yes\ntls_ca_cert_file = /nonexistent.pem\n")
    lookup_error(query(spec, "tuser@localhost"), "TLS settings")
    # not found stays silent
    spec = map_cf(ldap, tmp_path / "ok.cf", ldap.uri,
                  f"start_tls = yes\ntls_ca_cert_file = {ldap.ca_file}\n")
    assert query(spec, "nobody@localhost") == (1, "", "")


def test_map_without_tls_is_refused_not_downgraded(ldap, tmp_path):
    # This slapd wants TLS: without start_tls the lookup is an error.
    spec = map_cf(ldap, tmp_path / "plain.cf", ldap.uri)
    lookup_error(query(spec, "tuser@localhost"), "Confidentiality required")


def test_map_ldaps(ldap, tmp_path):
    spec = map_cf(ldap, tmp_path / "ldaps.cf", ldap.ldaps_uri,
                  f"tls_ca_cert_file = {ldap.ca_file}\n")
    rc, out, err = query(spec, "tuser@localhost")
    assert (rc, out) == (0, "tuser@elsewhere.example"), err
    # start_tls on an ldaps:// connection: TLS is already there
    spec = map_cf(ldap, tmp_path / "ldaps2.cf", ldap.ldaps_uri,
                  f"start_tls = yes\ntls_ca_cert_file = {ldap.ca_file}\n")
    rc, out, err = query(spec, "tuser@localhost")
    assert (rc, out) == (0, "tuser@elsewhere.example"), err
    spec = map_cf(ldap, tmp_path / "ldaps-wrong.cf", ldap.ldaps_uri,
                  f"tls_ca_cert_file = {ldap.other_ca_file}\n")
    lookup_error(query(spec, "tuser@localhost"), "TLS connect to ldaps://")


def test_map_tls_without_certificate_check(ldap, tmp_path):
    # tls_require_cert = no: encrypted, the certificate unchecked
    spec = map_cf(ldap, tmp_path / "nocheck.cf", ldap.uri,
                  f"start_tls = yes\ntls_ca_cert_file = {ldap.other_ca_file}\n"
                  "tls_require_cert = no\n")
    rc, out, err = query(spec, "tuser@localhost")
    assert (rc, out) == (0, "tuser@elsewhere.example"), err


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(factory, d, ca):
    inst = factory()
    os.chmod(inst.dir, 0o755)
    for k, v in {"auth_backends": "ldap", "ldap_uri": d.uri,
                 "ldap_base": SUFFIX, "ldap_bind_dn": MAIL_DN,
                 "ldap_bind_pw_file": str(d.pwfile), "ldap_timeout": "5s",
                 "ldap_start_tls": "yes", "ldap_tls_ca_file": str(ca),
                 "auth_failure_delay_ms": "0"}.items():
        inst.set_config(k, v)
    inst.start()
    wait_port(inst.port("IMAP"))
    return inst


def test_auth_backend_start_tls(instance_factory, ldap):
    inst = start(instance_factory, ldap, ldap.ca_file)
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    assert m.login("tuser", LPW)[0] == "OK"
    m.logout()
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login("tuser", "wrong")
    m.logout()


def test_auth_backend_wrong_ca_is_temporary(instance_factory, ldap):
    inst = start(instance_factory, ldap, ldap.other_ca_file)
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        m.login("tuser", LPW)
    m.logout()
    assert "StartTLS" in inst.log_text()
