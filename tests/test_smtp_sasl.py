# SPDX-License-Identifier: MIT
"""The smtp agent's SASL client (smtp_sasl_auth_enable) against real
servers.

Instance A relays through a transport map to instance B's submission
port, which insists on STARTTLS and then AUTH (as `postern instance init`
writes it); the credentials come from A's smtp_sasl_password_maps. A
wrong password defers the mail with B's 535 reply in `postern queue
list`; once the table is right, the retry lands in B's user's mailbox,
read over IMAP. Postfix's smtp-sink, which offers AUTH PLAIN LOGIN on a
plaintext connection, shows that the default smtp_sasl_security_options
(noplaintext) never sends a password there, and that a transport which
allows it does.
"""

import base64
import imaplib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOST
from pipeline import make_pipeline
from test_qmgr import free_port

SMTP_SINK = "/usr/sbin/smtp-sink"
RIGHT = "c0rrect horse:battery"     # a ':' in a password is kept
WRONG = "not-the-password"
MSG = (b"From: alice@localhost\r\n"
       b"To: carol@remote.test\r\n"
       b"Subject: relayed with SASL\r\n"
       b"\r\n"
       b"Through the submission port.\r\n")


def write_table(path, text):
    """Replace a file: map atomically (the map notices and reloads), as
    mail_owner (nobody) may read it after the privilege drop."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.chown(tmp, 65534, -1)
    os.replace(tmp, path)


def pipeline_instance(instance_factory, **kw):
    return make_pipeline(lambda: instance_factory(pipeline=True), **kw)


def imap_messages(inst, user, password):
    imap = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    try:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[])")
            out.append(parts[0][1])
        return out
    finally:
        imap.logout()


def wait_imap(inst, user, password, n, timeout=40):
    deadline = time.monotonic() + timeout
    while True:
        msgs = imap_messages(inst, user, password)
        if len(msgs) >= n:
            return msgs
        assert time.monotonic() < deadline, \
            f"{user} has {len(msgs)} messages; B's log:\n" + \
            "\n".join(inst.log_text().splitlines()[-20:])
        time.sleep(0.3)


def test_relay_to_submission_with_sasl(instance_factory):
    b = pipeline_instance(instance_factory, users=(),
                          config={"mydestination": "localhost, remote.test"})
    b.inst.postern("user", "add", "carol", "--password", RIGHT)
    sub = b.inst.port("SUBMISSION")

    a = pipeline_instance(instance_factory, users=("alice",), start=False)
    tm = a.inst.dir / "transport"
    tm.write_text(f"remote.test smtp:[{HOST}]:{sub}\n")
    os.chmod(tm, 0o644)
    pw = a.inst.dir / "sasl_passwd"
    write_table(pw, f"[{HOST}]:{sub} carol:{WRONG}\n")
    for k, v in {"transport_maps": f"file:{tm}",
                 "smtp_sasl_auth_enable": "yes",
                 "smtp_sasl_password_maps": f"file:{pw}",
                 "smtp_tls_security_level": "encrypt"}.items():
        a.inst.set_config(k, v)
    from pipeline import start_pipeline
    start_pipeline(a)

    # a wrong password: deferred with the server's 535, password unlogged
    a.send("alice@localhost", ["carol@remote.test"], MSG)
    a.inst.wait_for_log(
        r"to=<carol@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
        rf"{sub}, .*dsn=4\.7\.8, status=deferred \(SASL authentication "
        r"failed; server 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ said: 535 5\.7\.8 ",
        timeout=30)
    deadline = time.monotonic() + 15
    while True:
        out = a.queue_list()
        if "535 5.7.8" in out:
            break
        assert time.monotonic() < deadline, out
        time.sleep(0.2)
    assert "carol@remote.test" in out and "SASL authentication failed" in out
    assert imap_messages(b.inst, "carol", RIGHT) == []
    # B saw STARTTLS first, then a failed AUTH
    assert re.search(r"sasl.*carol|authentication failed|AUTH",
                     b.inst.log_text(), re.I), b.inst.log_text()[-2000:]

    # the right password: the retry authenticates and delivers once
    write_table(pw, f"[{HOST}]:{sub} carol:{RIGHT}\n")
    a.inst.postern("queue", "flush")
    msgs = wait_imap(b.inst, "carol", RIGHT, 1)
    a.wait_queue_empty(timeout=30)
    assert len(msgs) == 1
    assert b"\r\nSubject: relayed with SASL\r\n" in msgs[0]
    assert msgs[0].endswith(b"\r\n\r\nThrough the submission port.\r\n")
    assert len(imap_messages(b.inst, "carol", RIGHT)) == 1
    a.inst.wait_for_log(r"to=<carol@remote\.test>, .*status=sent")
    log_b = b.inst.log_text()
    assert re.search(r"sasl_method=(PLAIN|LOGIN), sasl_username=carol", log_b)
    # TLS came first: B's submission refuses AUTH in the clear
    a_log = a.inst.log_text()
    assert re.search(r"TLS connection established to 127\.0\.0\.1", a_log)
    for secret in (RIGHT, WRONG, base64.b64encode(
            f"\0carol\0{RIGHT}".encode()).decode()):
        assert secret not in a_log and secret not in log_b


@pytest.mark.skipif(not os.path.exists(SMTP_SINK), reason="no smtp-sink")
def test_noplaintext_outside_tls(instance_factory):
    """smtp-sink offers AUTH PLAIN LOGIN without STARTTLS: by default no
    password goes out (deferred, no mechanism); a transport whose
    smtp_sasl_security_options allow plaintext sends AUTH PLAIN."""
    port = free_port()
    sink = subprocess.Popen([SMTP_SINK, "-v", "-u", "nobody",
                             f"{HOST}:{port}", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    q = pipeline_instance(instance_factory, users=("alice",), start=False)
    try:
        tm = q.inst.dir / "transport"
        tm.write_text(f"plain.test smtp:[{HOST}]:{port}\n"
                      f"allowed.test smtpplain:[{HOST}]:{port}\n")
        os.chmod(tm, 0o644)
        pw = q.inst.dir / "sasl_passwd"
        write_table(pw, f"[{HOST}]:{port} relayuser:{RIGHT}\n")
        for k, v in {"transport_maps": f"file:{tm}",
                     "smtp_sasl_auth_enable": "yes",
                     "smtp_sasl_password_maps": f"file:{pw}",
                     "smtp_sasl_mechanism_filter": "plain, login"}.items():
            q.inst.set_config(k, v)
        q.inst.add_service("smtpplain unix - - n - - smtp -o "
                           "smtp_sasl_security_options=noanonymous")
        from pipeline import start_pipeline
        start_pipeline(q)

        q.send("alice@localhost", ["x@plain.test"], MSG)
        q.inst.wait_for_log(
            r"to=<x@plain\.test>, .*dsn=4\.7\.0, status=deferred \(SASL "
            r"authentication failed; cannot authenticate to server "
            r"127\.0\.0\.1\[127\.0\.0\.1\]:\d+: no mechanism available",
            timeout=30)
        q.send("alice@localhost", ["y@allowed.test"], MSG)
        q.inst.wait_for_log(r"to=<y@allowed\.test>, .*status=sent",
                            timeout=30)
    finally:
        sink.send_signal(signal.SIGTERM)
        out = sink.communicate(timeout=10)[0].decode(errors="replace")
    auths = re.findall(r"smtp-sink: (AUTH .*)", out)
    # exactly one AUTH: the allowed transport's, PLAIN with our secret
    assert len(auths) == 1, out
    mech, ir = auths[0].split()[1:3]
    assert mech == "PLAIN"
    authz, user, secret = base64.b64decode(ir).split(b"\0")
    assert user == b"relayuser" and secret == RIGHT.encode()
    assert authz in (b"", b"relayuser")
    assert len(re.findall(r"smtp-sink: (?i:mail from)", out)) == 1, out
    assert RIGHT not in q.inst.log_text()
