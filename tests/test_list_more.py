# SPDX-License-Identifier: MIT
"""More of list-mgr against real servers: an LDAP posixGroup (memberUid)
on slapd, bounce state cleared when a disabled member subscribes again,
the RFC 1153 plain-text digest's layout, and DMARC From: rewriting from
a live _dmarc TXT lookup served by unbound (tests/dns_server.py)."""

import re
import time

import pytest

from dns_server import UNBOUND, DnsServer
from ldap_fixture import MAIL_DN, MAIL_PW, SCHEMA_DIR, SUFFIX, Directory, have_slapd
from test_list import (DOMAIN, DSN, count_subject, lmtp, lst, msg, parse,
                       setup_lists, wait_msgs)


@pytest.mark.skipif(not have_slapd(), reason="slapd not installed")
def test_ldap_posix_group_memberuid(instance_factory, tmp_path):
    d = Directory(tmp_path / "slapd")
    # posixGroup and memberUid are in nis.schema (RFC 2307)
    conf = d.conf.read_text()
    if "nis.schema" not in conf:
        anchor = conf.index("include", conf.index("inetorgperson.schema"))
        d.conf.write_text(conf[:anchor] + f"include {SCHEMA_DIR}/nis.schema\n"
                          + conf[anchor:])
    people = "".join(d.user_ldif(u, mail=f"{u}@localhost") for u in ("bob", "carol"))
    d.load(people + f"""\
dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: cn=unix,ou=groups,{SUFFIX}
objectClass: posixGroup
cn: unix
gidNumber: 4242
memberUid: bob
memberUid: carol
memberUid: nobody-here
memberUid: *)(uid=*
""")
    d.start()
    try:
        p = setup_lists(instance_factory)
        lst(p, "create", f"unix@{DOMAIN}", "--owner", "alice@localhost",
            "membership=ldap", f"ldap_group=cn=unix,ou=groups,{SUFFIX}",
            f"ldap_uri={d.uri}", f"ldap_bind_dn={MAIL_DN}",
            f"ldap_bind_password={MAIL_PW}", f"ldap_base=ou=people,{SUFFIX}",
            "nonmember_action=reject")
        # bob is in the group by memberUid: may post, and he and carol get it
        p.send("bob@localhost", [f"unix@{DOMAIN}"],
               msg("bob@localhost", f"unix@{DOMAIN}", "posix post"))
        wait_msgs(p, "bob", lambda m: "posix post" in (m["Subject"] or ""))
        wait_msgs(p, "carol", lambda m: "posix post" in (m["Subject"] or ""))
        # alice is not in the group: rejected
        p.send("alice@localhost", [f"unix@{DOMAIN}"],
               msg("alice@localhost", f"unix@{DOMAIN}", "outsider"))
        p.inst.wait_for_log(r"status=rejected \(non-member\)", timeout=30)
        p.wait_queue_empty()
        time.sleep(0.3)
        assert count_subject(p, "alice", "posix post") == 0
        assert count_subject(p, "bob", "outsider") == 0
        assert count_subject(p, "bob", "posix post") == 1
        assert count_subject(p, "carol", "posix post") == 1
    finally:
        d.stop()


def test_resubscribe_clears_bounce_state(instance_factory):
    p = setup_lists(instance_factory)
    lst(p, "create", f"course@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open", "bounce_threshold=20", "bounce_once_per_day=no",
        "subscribe_policy=open")
    lst(p, "members", "course", "add", "alice@localhost", "bob@localhost")
    bounce_to = f"course-bounces+bob=localhost@{DOMAIN}"
    assert lmtp(p, "", bounce_to, DSN).startswith("250")
    assert lmtp(p, "", bounce_to, DSN).startswith("250")
    assert "bob@localhost\tbouncing\t2.0" in lst(p, "members", "course").stdout
    wait_msgs(p, "bob", lambda m: "disabled" in (m["Subject"] or ""))

    p.send("alice@localhost", [f"course@{DOMAIN}"],
           msg("alice@localhost", f"course@{DOMAIN}", "while disabled"))
    wait_msgs(p, "alice", lambda m: "while disabled" in (m["Subject"] or ""))

    # bob subscribes again: the bounce state goes, delivery resumes
    p.send("bob@localhost", [f"course-request@{DOMAIN}"],
           msg("bob@localhost", f"course-request@{DOMAIN}", "", "subscribe\r\n"))
    m, _ = wait_msgs(p, "bob", lambda m: "Results" in (m["Subject"] or ""))
    assert "bounce state cleared" in m.get_payload()
    out = lst(p, "members", "course").stdout
    assert re.search(r"^bob@localhost\t-\t0\.0", out, re.M), out
    assert "re-enabled (bounce state cleared)" in p.inst.log_text()

    p.send("alice@localhost", [f"course@{DOMAIN}"],
           msg("alice@localhost", f"course@{DOMAIN}", "after resubscribe"))
    wait_msgs(p, "bob", lambda m: "after resubscribe" in (m["Subject"] or ""))
    p.wait_queue_empty()
    assert count_subject(p, "bob", "while disabled") == 0
    # one bounce now scores from zero again: not disabled
    assert lmtp(p, "", bounce_to, DSN).startswith("250")
    assert "bob@localhost\t-\t1.0" in lst(p, "members", "course").stdout


def test_rfc1153_plain_digest(instance_factory):
    p = setup_lists(instance_factory)
    lst(p, "create", f"course@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open", "digest_size=1")
    lst(p, "members", "course", "add", "alice@localhost")
    lst(p, "members", "course", "add", "dave@localhost", "--options", "digest,plain")
    p.send("alice@localhost", [f"course@{DOMAIN}"],
           msg("Alice <alice@localhost>", f"course@{DOMAIN}", "digest item",
               "first line\r\nsecond line\r\n",
               extra="Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"))
    m, raw = wait_msgs(p, "dave", lambda m: "Digest" in (m["Subject"] or ""))
    # RFC 1153: a plain text message, "NAME Digest V1 #N" subject
    assert m.get_content_maintype() == "text" and not m.is_multipart()
    assert re.fullmatch(r"course Digest V1 #\d+", m["Subject"]), m["Subject"]
    issue = m["Subject"].split("#")[1]
    assert m["List-Id"] == f"<course.{DOMAIN}>"
    body = raw.split(b"\r\n\r\n", 1)[1].decode()
    lines = body.split("\r\n")
    # the preamble: title, topics, a line of 70 hyphens
    assert lines[0].startswith("course Digest") and lines[0].endswith(f"Issue {issue}")
    assert "Today's Topics:" in lines
    assert "   1. digest item" in lines
    sep70 = lines.index("-" * 70)
    assert sep70 > lines.index("   1. digest item")
    # each message: Date/From/Subject, a blank line, the body, 30 hyphens
    msg_lines = lines[sep70 + 2:]
    hdr = msg_lines[:msg_lines.index("")]
    assert [h.split(":")[0] for h in hdr] == ["Date", "From", "Subject"]
    assert "Subject: digest item" in hdr and "From: Alice <alice@localhost>" in hdr
    rest = msg_lines[len(hdr) + 1:]
    assert rest[:2] == ["first line", "second line"]
    assert "-" * 30 in rest
    # the trailer: "End of NAME Digest V1 Issue #N" and a line of stars
    end = f"End of course Digest V1 Issue #{issue}"
    i = lines.index(end)
    assert re.fullmatch(r"\*{30,}", lines[i + 1])
    assert lines[i - 2] == "-" * 30
    # no posts of the list arrive for dave besides the digest
    p.wait_queue_empty()
    assert count_subject(p, "dave", "digest item") == 0
    assert count_subject(p, "alice", "digest item") == 1


@pytest.mark.skipif(not UNBOUND or not __import__("os").path.exists(UNBOUND),
                    reason="unbound not installed")
def test_dmarc_from_live_dns(instance_factory, tmp_path):
    dns = DnsServer(tmp_path / "dns", [
        "_dmarc.strict.test. TXT v=DMARC1\\;p=reject",
        "_dmarc.quar.test. TXT v=DMARC1\\;p=quarantine\\;pct=100",
        "_dmarc.relaxed.test. TXT v=DMARC1\\;p=none",
        "_dmarc.other.test. TXT v=spf1 -all",
    ], zones=["strict.test.", "quar.test.", "relaxed.test.", "other.test.",
              "none.test."]).start()
    try:
        p = setup_lists(instance_factory, config={
            "list_dns_server": dns.address, "list_dmarc_lookup": "yes"})
        lst(p, "create", f"course@{DOMAIN}", "--owner", "alice@localhost",
            "posting=open")
        lst(p, "members", "course", "add", "alice@localhost")
        cases = {"strict": True, "quar": True, "relaxed": False,
                 "other": False, "none": False}
        for dom in cases:
            p.send(f"x@{dom}.test", [f"course@{DOMAIN}"],
                   msg(f"Xavier <x@{dom}.test>", f"course@{DOMAIN}",
                       f"dmarc {dom}"))
        for dom, rewritten in cases.items():
            m, _ = wait_msgs(p, "alice", lambda m, d=dom: (m["Subject"] or "")
                             == f"dmarc {d}")
            if rewritten:
                assert m["From"] == f'"Xavier via course" <course@{DOMAIN}>'
                assert m["Reply-To"] == f"<x@{dom}.test>"
                assert m["X-Original-From"].strip() == f"Xavier <x@{dom}.test>"
            else:
                assert m["From"] == f"Xavier <x@{dom}.test>", dom
                assert m["Reply-To"] is None
        # the DNS server down: no rewrite, a warning, the post still goes
        dns.stop()
        p.send("x@strict.test", [f"course@{DOMAIN}"],
               msg("Xavier <x@strict.test>", f"course@{DOMAIN}", "dns down"))
        m, _ = wait_msgs(p, "alice", lambda m: (m["Subject"] or "") == "dns down")
        assert m["From"] == "Xavier <x@strict.test>"
        assert "temporary DNS failure" in p.inst.log_text()
    finally:
        dns.stop()
