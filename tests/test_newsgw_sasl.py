# SPDX-License-Identifier: MIT
"""AUTHINFO SASL (RFC 4643 2.4) from news-gw's client to a real INN.

INN 2.7's nnrpd is built with Cyrus SASL: after STARTTLS it lists
"AUTHINFO USER SASL" and "SASL <mechanisms>". Its libsasl2 reads
INN.conf from $SASL_CONF_PATH (innd hands its environment to nnrpd):
here a sasldb (saslpasswd2, Debian sasl2-bin) with the gateway's user,
and mech_list to choose what nnrpd offers. news-gw (lib/sasl_client)
must use SASL when a mechanism fits (SCRAM-SHA-256: challenges and
final server data), and fall back to AUTHINFO USER/PASS (ckpasswd)
after a refused SASL exchange or when nnrpd offers nothing it may use (GSSAPI only: news-gw has a password, no ticket).
"""

import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_newsgw import (DOMAIN, headers_of, inn_factory, lmtp_one, mail,
                         needs_inn, setup_gw)

USER = "gwuser@localhost"      # sasldb user gwuser in realm localhost
PASSWORD = "s3cret pass"

__all__ = ["inn_factory"]       # the fixture, imported for pytest


@pytest.fixture
def sasl_dir():
    """A directory user news can read (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="pst-sasl-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def sasl_conf(d, mech_list):
    """INN.conf and a sasldb with USER for nnrpd's libsasl2, in d."""
    if shutil.which("saslpasswd2") is None:
        pytest.fail("saslpasswd2 missing: scripts/deps.sh installs sasl2-bin")
    db = d / "sasldb2"
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u",
                    "localhost", "gwuser"], input=PASSWORD.encode(),
                   check=True, timeout=30)
    (d / "INN.conf").write_text(
        "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
        f"sasldb_path: {db}\nmech_list: {mech_list}\n")
    os.chmod(d / "INN.conf", 0o644)
    shutil.chown(db, "news", "news")
    os.chmod(db, 0o600)


@needs_inn
def test_authinfo_sasl_scram_and_failure(instance_factory, inn_factory,
                                         sasl_dir, monkeypatch):
    # GSSAPI first, as a stock nnrpd offers it: news-gw has no ticket
    sasl_conf(sasl_dir, "GSSAPI SCRAM-SHA-256 PLAIN")
    monkeypatch.setenv("SASL_CONF_PATH", str(sasl_dir))
    inn = inn_factory(tls=True, users={USER: "not the sasl password"})
    p = setup_gw(instance_factory, inn=inn, config={
        "news_gw_starttls": "yes",
        "news_gw_tls_ca_file": str(inn.tls_cert),
        "news_gw_username": USER,
        "news_gw_password": PASSWORD,
    }, services=(
        "news-gw-badpw unix y - n - - news-gw -o news_gw_role=lmtp "
        "-o news_gw_password=wrong",
    ))
    mark = p.inst.log_mark()
    raw, msgid = mail("Alice <alice@example.org>", f"test-one@{DOMAIN}",
                      "over sasl")
    p.send("alice@localhost", [f"test-one@{DOMAIN}"], raw)
    h = headers_of(inn.wait_article(msgid, timeout=40))
    assert h["message-id"] == [msgid]
    p.inst.wait_for_log(
        rf"authenticated to 127\.0\.0\.1:{inn.port} as {USER} with "
        r"AUTHINFO SASL SCRAM-SHA-256", start=mark, timeout=20)
    p.wait_queue_empty()
    assert "trying AUTHINFO USER" not in p.inst.log_text()[mark:]
    # a wrong password: SASL fails (481), then USER/PASS fails too
    raw, msgid = mail("a@example.org", f"test-one@{DOMAIN}", "bad pw")
    r = lmtp_one(p, "news-gw-badpw", f"test-one@{DOMAIN}", raw)
    assert r.startswith(b"451") and b"authentication failed" in r, r
    assert inn.article(msgid) is None
    p.inst.wait_for_log(r"AUTHINFO SASL SCRAM-SHA-256 failed: 48\d .*; "
                        r"trying AUTHINFO USER", start=mark)


@needs_inn
def test_authinfo_sasl_falls_back_to_user_pass(instance_factory, inn_factory,
                                               sasl_dir, monkeypatch):
    sasl_conf(sasl_dir, "GSSAPI")
    monkeypatch.setenv("SASL_CONF_PATH", str(sasl_dir))
    inn = inn_factory(tls=True, users={USER: PASSWORD})
    with inn.reader(login=False) as n:
        ctx = ssl.create_default_context(cafile=str(inn.tls_cert))
        ctx.check_hostname = False
        n.starttls(ctx)
        assert n.getcapabilities().get("SASL") == ["GSSAPI"]
    p = setup_gw(instance_factory, inn=inn, config={
        "news_gw_starttls": "yes",
        "news_gw_tls_ca_file": str(inn.tls_cert),
        "news_gw_username": USER,
        "news_gw_password": PASSWORD,
    })
    mark = p.inst.log_mark()
    raw, msgid = mail("Alice <alice@example.org>", f"test-one@{DOMAIN}",
                      "user pass")
    p.send("alice@localhost", [f"test-one@{DOMAIN}"], raw)
    assert headers_of(inn.wait_article(msgid, timeout=40))["message-id"] \
        == [msgid]
    p.inst.wait_for_log(r"AUTHINFO SASL: no password mechanism among "
                        r"GSSAPI; trying AUTHINFO USER", start=mark)
