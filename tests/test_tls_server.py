# SPDX-License-Identifier: MIT
"""TLS on the server side of smtpd, imapd, pop3d and sieved, with
`openssl s_client` as the client: the certificate chosen by SNI
(tls_server_sni_maps), client certificates asked for and required
(tls_ask_client_cert, tls_require_client_cert, tls_ca_file), renewed
certificates in use after `postern reload` while an established session
goes on, and session resumption with one worker and across a reload
(across live workers: test_tls_resume.py).

The certificates are made here with `openssl req` / `openssl x509`."""

import imaplib
import os
import poplib
import re
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import HOST
from test_smtpd import qfdump, queued_id

USER, PASSWORD = "alice", "secret"

# Each protocol's s_client run: the -starttls name, the command that
# ends the session, and what the server says only over a working TLS
# session (unanchored: s_client's stdout interleaves its session report
# with the server's data).
PROTOCOLS = {
    "SMTP": ("smtp", b"QUIT\r\n", rb"221 2\.0\.0"),
    "SMTPS": (None, b"QUIT\r\n", rb"221 2\.0\.0"),
    "IMAP": ("imap", b"a LOGOUT\r\n", rb"\* BYE"),
    "IMAPS": (None, b"a LOGOUT\r\n", rb"\* BYE"),
    "POP3": ("pop3", b"QUIT\r\n", rb"\+OK"),
    "POP3S": (None, b"QUIT\r\n", rb"\+OK"),
    "SIEVE": ("sieve", b"LOGOUT\r\n", rb'"IMPLEMENTATION"'),
}


# ------------------------------------------------------------------ certificates

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def self_signed(d, name, cn, san):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)
    os.chmod(d / f"{name}.key", 0o600)
    return d / f"{name}.pem", d / f"{name}.key"


def signed(d, name, cn, ca="ca"):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
            "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.pem", cwd=d)
    os.chmod(d / f"{name}.key", 0o600)
    return d / f"{name}.pem", d / f"{name}.key"


def fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout",
                          "-fingerprint", "-sha256"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return "SHA256:" + out.strip().split("=", 1)[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a client it signed, a client nobody signed, and server
    certificates for SNI. Keys are root's alone (0600): daemons must read
    them before they drop privileges."""
    d = tmp_path_factory.mktemp("pki")
    os.chmod(d, 0o755)
    c = {}
    c["ca"] = self_signed(d, "ca", "Test CA", "DNS:ca.invalid")
    c["alice"] = signed(d, "alice", "alice client")
    c["mallory"] = self_signed(d, "mallory", "mallory", "DNS:mallory.invalid")
    c["mail"] = self_signed(d, "mail", "mail.example.org", "DNS:mail.example.org")
    c["wild"] = self_signed(d, "wild", "wild.example.net", "DNS:*.example.net")
    c["renewed"] = self_signed(d, "renewed", "renewed.localhost", "DNS:localhost")
    c["dir"] = d
    return c


# ------------------------------------------------------------------ clients

def s_client(port, key, servername=None, cert=None, sess_out=None,
             sess_in=None):
    """Run openssl s_client against a service; (returncode, output)."""
    starttls, quit_cmd, _ = PROTOCOLS[key]
    cmd = ["openssl", "s_client", "-connect", f"{HOST}:{port}", "-ign_eof"]
    if starttls:
        cmd += ["-starttls", starttls]
    if servername is None:
        cmd += ["-noservername"]
    else:
        cmd += ["-servername", servername]
    if cert is not None:
        cmd += ["-cert", str(cert[0]), "-key", str(cert[1])]
    if sess_out is not None:
        cmd += ["-sess_out", str(sess_out)]
    if sess_in is not None:
        cmd += ["-sess_in", str(sess_in)]
    r = subprocess.run(cmd, input=quit_cmd, capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def subject(out):
    """The CN of the server certificate s_client printed."""
    m = re.search(r"(?m)^subject=.*?CN = ([^,\n]+)", out)
    assert m, out
    return m.group(1).strip()


def session_works(key, out):
    return re.search(PROTOCOLS[key][2], out.encode()) is not None


# ------------------------------------------------------------------ instances

def smtpd_lines(inst, extra=""):
    """SMTP (STARTTLS) and SMTPS (implicit TLS) services, with extra args."""
    inst.add_service(f"{HOST}:{inst.port('SMTP')} inet n - n - - smtpd {extra}")
    inst.add_service(f"{HOST}:{inst.port('SMTPS')} inet n - n - - smtpd "
                     f"-o smtpd_tls_wrappermode=yes {extra}")


def edit_service(inst, port, extra):
    """Append -o options to the master.conf line of the service on port."""
    path = inst.dir / "master.conf"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{HOST}:{port} "):
            lines[i] = line + " " + extra
            break
    else:
        raise AssertionError(f"no service on port {port}")
    path.write_text("\n".join(lines) + "\n")


def make_instance(instance_factory, settings=(), smtpd_extra=""):
    inst = instance_factory()
    os.chmod(inst.dir, 0o711)
    inst.set_config("smtpd_peername_lookup", "no")
    for k, v in settings:
        inst.set_config(k, v)
    smtpd_lines(inst, smtpd_extra)
    inst.postern("user", "add", USER, "--password", PASSWORD)
    return inst


def wait_tls_ready(inst, key):
    deadline = time.monotonic() + 15
    while True:
        rc, out = s_client(inst.port(key), key)
        if session_works(key, out):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{key} does not answer over TLS:\n{out}")
        time.sleep(0.2)


# ------------------------------------------------------------------ SNI

def test_sni_selects_certificate(instance_factory, pki):
    d = pki["dir"]
    table = d / "sni"
    table.write_text(
        "# name -> certificate [key]\n"
        f"mail.example.org {pki['mail'][0]} {pki['mail'][1]}\n"
        f".example.net {pki['wild'][0]},{pki['wild'][1]}\n")
    inst = make_instance(instance_factory,
                         [("tls_server_sni_maps", f"file:{table}")])
    inst.start()
    for key in ("SMTP", "SMTPS", "IMAP", "IMAPS", "POP3", "POP3S", "SIEVE"):
        wait_tls_ready(inst, key)
        port = inst.port(key)
        for name, want in (("mail.example.org", "mail.example.org"),
                           ("MAIL.Example.Org", "mail.example.org"),
                           ("x.example.net", "wild.example.net"),
                           ("a.b.example.net", "wild.example.net"),
                           ("example.net", "localhost"),
                           ("other.example.com", "localhost"),
                           (None, "localhost")):
            rc, out = s_client(port, key, servername=name)
            assert session_works(key, out), f"{key} {name}:\n{out}"
            assert subject(out) == want, f"{key} {name}:\n{out}"


def test_sni_table_errors_leave_tls_off(instance_factory, pki):
    """A table naming a file that does not load: the daemon logs why and
    offers no TLS (it never serves a half-configured set)."""
    table = pki["dir"] / "sni-bad"
    table.write_text("mail.example.org /nonexistent/cert.pem\n")
    inst = make_instance(instance_factory,
                         [("tls_server_sni_maps", f"file:{table}")])
    inst.start()
    with imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=15) as m:
        assert "STARTTLS" not in m.capabilities
    inst.wait_for_log(r"imapd\[\d+\]: error: TLS disabled: cannot load the "
                      r"certificate file.*/nonexistent/cert\.pem.*"
                      r"SNI name mail\.example\.org")


# ------------------------------------------------------------------ client certificates

def test_client_certificate_required(instance_factory, pki):
    ca = pki["ca"][0]
    inst = make_instance(instance_factory, [("tls_ca_file", str(ca))],
                         smtpd_extra="-o tls_require_client_cert=yes")
    edit_service(inst, inst.port("IMAPS"), "-o tls_require_client_cert=yes")
    inst.start()
    for key in ("SMTPS", "SMTP", "IMAPS"):
        port = inst.port(key)
        deadline = time.monotonic() + 15
        while True:
            rc, out = s_client(port, key, cert=pki["alice"])
            if session_works(key, out) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert session_works(key, out), f"{key} with a trusted cert:\n{out}"
        # Without a certificate, and with one the CA did not sign: the
        # handshake fails (the TLS 1.3 alert comes after the client's
        # Finished, so s_client reports it on its first read).
        for cert in (None, pki["mallory"]):
            rc, out = s_client(port, key, cert=cert)
            assert not session_works(key, out), f"{key} {cert}:\n{out}"
            assert rc != 0, out
            assert re.search(r"alert (certificate required|unknown ca)"
                             r"|alert number (116|48)", out), out
    # Other services are not affected by a per-service setting.
    rc, out = s_client(inst.port("POP3S"), "POP3S")
    assert session_works("POP3S", out), out
    log = inst.log_text()
    assert re.search(r"smtpd\[\d+\]: warning: TLS handshake failed with "
                     r"\S+: .*peer did not return a certificate", log), log
    fp = fingerprint(pki["alice"][0])
    assert re.search(r"smtpd\[\d+\]: Trusted TLS connection established from "
                     r"\S+: TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\), client "
                     r"certificate subject=CN=alice client fingerprint="
                     + re.escape(fp), log), log


def test_client_certificate_asked_received_header(instance_factory, pki):
    """Asked for, not required: a trusted certificate, an untrusted one and
    none all get in; smtpd says which in its log and Received: header."""
    ca = pki["ca"][0]
    inst = make_instance(instance_factory, [("tls_ca_file", str(ca))],
                         smtpd_extra="-o tls_ask_client_cert=yes")
    # Accepted mail stays in the queue for qfdump.
    inst.start()
    wait_tls_ready(inst, "SMTP")
    want = {
        "alice": (b'(Client CN "alice client", Issuer "Test CA" (verified OK))',
                  "Trusted"),
        "mallory": (b'(Client CN "mallory", Issuer "mallory" (not verified))',
                    "Untrusted"),
        None: (b"(Client did not present a certificate)", "Anonymous"),
    }
    for who, (comment, trust) in want.items():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if who is not None:
            ctx.load_cert_chain(*pki[who])
        mark = inst.log_mark()
        with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=15) as s:
            s.ehlo("client.example.org")
            s.starttls(context=ctx)
            s.ehlo("client.example.org")
            s.mail("bob@example.org")
            s.rcpt(f"{USER}@localhost")
            code, reply = s.data(b"Subject: hi\r\n\r\nhello\r\n")
            assert code == 250, reply
        _, _, content = qfdump(inst, queued_id(reply))
        head = content.split(b"\tby ")[0]
        assert b"\t(using TLSv1.3 with cipher " in head, head
        assert b"\t" + comment + b"\r\n" in head, head
        m = inst.wait_for_log(rf"smtpd\[\d+\]: {trust} TLS connection "
                              r"established from \S+: TLSv1\.3 [^\n]*",
                              start=mark)
        if who is not None:
            assert "fingerprint=" + fingerprint(pki[who][0]) in m.group(0)
        else:
            assert "client certificate" not in m.group(0)


def test_client_certificate_not_asked_by_default(instance_factory, pki):
    inst = make_instance(instance_factory)
    inst.start()
    wait_tls_ready(inst, "SMTPS")
    rc, out = s_client(inst.port("SMTPS"), "SMTPS", cert=pki["alice"])
    assert session_works("SMTPS", out)
    assert "No client certificate CA names sent" in out or \
        "Acceptable client certificate CA names" not in out, out
    inst.wait_for_log(r"smtpd\[\d+\]: Anonymous TLS connection established "
                      r"from \S+: TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)\n")


# ------------------------------------------------------------------ reload

def replace_cert(inst, cert, key):
    """Renew the instance's default certificate the way certbot does:
    new files moved into place."""
    tls = inst.dir / "tls"
    for src, name, mode in ((cert, "cert.pem", 0o644), (key, "key.pem", 0o600)):
        tmp = tls / (name + ".new")
        tmp.write_bytes(src.read_bytes())
        os.chmod(tmp, mode)
        os.replace(tmp, tls / name)


def test_reload_uses_renewed_certificate(instance_factory, pki):
    """Renewed certificate files + `postern reload`: every new connection
    gets the new certificate, an established session goes on with the
    old one."""
    inst = make_instance(instance_factory)
    inst.start()
    keys = ("SMTP", "SMTPS", "IMAP", "IMAPS", "POP3", "POP3S", "SIEVE")
    for key in keys:
        wait_tls_ready(inst, key)
    # An established session, held across the reload.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    held = poplib.POP3_SSL(HOST, inst.port("POP3S"), context=ctx, timeout=15)
    held.user(USER)
    held.pass_(PASSWORD)
    assert held.stat() == (0, 0)
    old_der = held.sock.getpeercert(binary_form=True)
    # Idle workers loaded the old certificate, and keep it on their own.
    for key in keys:
        rc, out = s_client(inst.port(key), key)
        assert subject(out) == "localhost", out

    replace_cert(inst, *pki["renewed"])
    rc, out = s_client(inst.port("POP3S"), "POP3S")
    assert subject(out) == "localhost", "an idle worker rereads by itself?"
    mark = inst.log_mark()
    inst.reload()
    inst.wait_for_log(r"reload: \d+ services", start=mark)
    for key in keys:
        rc, out = s_client(inst.port(key), key)
        assert session_works(key, out), out
        assert subject(out) == "renewed.localhost", f"{key}:\n{out}"
    # The held session goes on with the certificate it started with.
    assert held.noop().startswith(b"+OK")
    assert held.stat() == (0, 0)
    assert held.sock.getpeercert(binary_form=True) == old_der
    assert held.quit().startswith(b"+OK")
    # The old workers went away without being taken for failures.
    assert not re.search(r"exited at once without doing any work|killed by "
                         r"signal|exit status", inst.log_text()[mark:])


# ------------------------------------------------------------------ resumption

@pytest.mark.parametrize("lifetime", ["12h", "0"])
def test_session_resumption_same_worker(instance_factory, tmp_path, lifetime):
    """A TLS 1.3 ticket resumes with the worker that issued it. After a
    reload (a new worker) it resumes too with the instance's shared
    ticket keys (tls_session_ticket_key_lifetime, the default); with
    per-process keys (0) it does not. Across workers without a reload:
    tests/test_tls_resume.py."""
    inst = make_instance(instance_factory, settings=[
        ("tls_session_ticket_key_lifetime", lifetime)])
    # One worker, so the second connection meets the first one's worker.
    path = inst.dir / "master.conf"
    text = path.read_text()
    port = inst.port("POP3S")
    text = re.sub(rf"(?m)^({HOST}:{port}\s+inet\s+n\s+-\s+n\s+-\s+)-",
                  r"\g<1>1", text)
    path.write_text(text)
    inst.start()
    wait_tls_ready(inst, "POP3S")
    sess = tmp_path / "sess.pem"
    rc, out = s_client(port, "POP3S", sess_out=sess)
    assert session_works("POP3S", out) and sess.exists(), out
    assert re.search(r"(?m)^New, TLSv1\.3", out), out
    rc, out = s_client(port, "POP3S", sess_in=sess)
    assert session_works("POP3S", out), out
    assert re.search(r"(?m)^Reused, TLSv1\.3", out), out
    mark = inst.log_mark()
    inst.reload()
    inst.wait_for_log(r"reload: \d+ services", start=mark)
    rc, out = s_client(port, "POP3S", sess_in=sess)
    assert session_works("POP3S", out), out
    want = "New" if lifetime == "0" else "Reused"
    assert re.search(rf"(?m)^{want}, TLSv1\.3", out), out
