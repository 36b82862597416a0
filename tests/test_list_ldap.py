# SPDX-License-Identifier: MIT
"""list-mgr with membership from an LDAP group, against a real slapd
(tests/ldap_fixture.py): member and uniqueMember DNs resolved to mail,
the read-only account's password from a file, membership=ldap vs both,
posting=members checked against the group, and a 451 (retried) while
the directory is down; the RFC 2369 fields of directory lists, the
reply to -leave/unsubscribe, and the list archive over IMAP for group
members (decided by imapd's login role with the same lookup)."""

import re
import subprocess
import time

import pytest

from ldap_fixture import (ADMIN_DN, ADMIN_PW, MAIL_DN, MAIL_PW, SUFFIX,
                          Directory, have_slapd)
from test_list import DOMAIN, count_subject, lst, msg, setup_lists, wait_msgs
from test_list_imap import fetch_all, imap, listed

pytestmark = pytest.mark.skipif(not have_slapd(), reason="slapd not installed")


def test_ldap_group_membership(instance_factory, tmp_path):
    d = Directory(tmp_path / "slapd")
    people = "".join(d.user_ldif(u, mail=f"{u.capitalize()}@localhost")
                     for u in ("bob", "carol"))
    d.load(people + f"""\
dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: cn=team,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: team
member: uid=bob,ou=people,{SUFFIX}
member: uid=gone,ou=people,{SUFFIX}

dn: cn=staff,ou=groups,{SUFFIX}
objectClass: groupOfUniqueNames
cn: staff
uniqueMember: uid=carol,ou=people,{SUFFIX}#'0101'B
""")
    d.start()
    try:
        p = setup_lists(instance_factory)
        pwfile = p.inst.dir / "ldap.pw"
        pwfile.write_text(MAIL_PW + "\n")
        common = [f"ldap_uri={d.uri}", f"ldap_bind_dn={MAIL_DN}",
                  f"ldap_bind_password_file={pwfile}", f"ldap_base={SUFFIX}"]
        lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
            "membership=ldap", f"ldap_group=cn=team,ou=groups,{SUFFIX}",
            "nonmember_action=reject", *common)
        lst(p, "members", "team", "add", "dave@localhost")   # not in the group
        lst(p, "create", f"staff@{DOMAIN}", "--owner", "alice@localhost",
            "membership=both", f"ldap_group=cn=staff,ou=groups,{SUFFIX}",
            "posting=open", *common)
        lst(p, "members", "staff", "add", "dave@localhost")

        # membership=ldap: bob (group member) may post; he and only he gets it
        p.send("bob@localhost", [f"team@{DOMAIN}"],
               msg("bob@localhost", f"team@{DOMAIN}", "ldap post"))
        wait_msgs(p, "bob", lambda m: "ldap post" in (m["Subject"] or ""))
        # both: carol from the group, dave from the database
        p.send("alice@localhost", [f"staff@{DOMAIN}"],
               msg("alice@localhost", f"staff@{DOMAIN}", "both post"))
        wait_msgs(p, "carol", lambda m: "both post" in (m["Subject"] or ""))
        wait_msgs(p, "dave", lambda m: "both post" in (m["Subject"] or ""))
        # dave is in the database but not the group: not a member of team
        p.send("dave@localhost", [f"team@{DOMAIN}"],
               msg("dave@localhost", f"team@{DOMAIN}", "nonmember post"))
        p.wait_queue_empty()
        time.sleep(0.3)
        assert count_subject(p, "dave", "ldap post") == 0
        assert count_subject(p, "carol", "ldap post") == 0
        assert count_subject(p, "bob", "nonmember post") == 0
        assert count_subject(p, "bob", "both post") == 0
        log = p.inst.log_text()
        assert "status=rejected (non-member)" in log

        # directory down: the post waits in the queue (451), then goes out
        d.stop()
        p.send("bob@localhost", [f"team@{DOMAIN}"],
               msg("bob@localhost", f"team@{DOMAIN}", "while down"))
        deadline = time.monotonic() + 15
        while "LDAP group:" not in p.inst.log_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert count_subject(p, "bob", "while down") == 0
        d.start()
        wait_msgs(p, "bob", lambda m: "while down" in (m["Subject"] or ""))
        p.wait_queue_empty()

        # a wrong password is an error, never an anonymous read
        pwfile.write_text("wrong\n")
        p.send("alice@localhost", [f"staff@{DOMAIN}"],
               msg("alice@localhost", f"staff@{DOMAIN}", "bad pw"))
        deadline = time.monotonic() + 15
        while "Invalid credentials" not in p.inst.log_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert count_subject(p, "dave", "bad pw") == 0
    finally:
        d.stop()


def _group_modify(d, ldif):
    """ldapmodify as the directory's administrator (a live change)."""
    r = subprocess.run(["ldapmodify", "-x", "-H", d.uri, "-D", ADMIN_DN,
                        "-w", ADMIN_PW], input=ldif, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def _headers(raw):
    """The header block of a stored message, unfolded, as text."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    return re.sub(r"\n[ \t]+", " ", head.replace("\r\n", "\n"))


def test_ldap_list_headers_requests_and_imap_archive(instance_factory,
                                                     tmp_path):
    """Directory lists (list-mgr(8) DIRECTORY LISTS): RFC 2369 fields with
    an honest List-Unsubscribe (a mailto: -request that explains, no
    List-Unsubscribe-Post), the explanatory reply to -leave/unsubscribe,
    and the archive over IMAP decided by the same group lookup (imapd's
    login role at login; fail closed when the directory is down)."""
    d = Directory(tmp_path / "slapd")
    people = "".join(d.user_ldif(u, mail=f"{u}@localhost")
                     for u in ("bob", "carol", "filler"))
    d.load(people + f"""\
dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: cn=team,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: team
member: uid=bob,ou=people,{SUFFIX}
member: uid=filler,ou=people,{SUFFIX}

dn: cn=staff,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: staff
member: uid=carol,ou=people,{SUFFIX}
""")
    d.start()
    try:
        p = setup_lists(instance_factory)
        pwfile = p.inst.dir / "ldap.pw"
        pwfile.write_text(MAIL_PW + "\n")
        common = [f"ldap_uri={d.uri}", f"ldap_bind_dn={MAIL_DN}",
                  f"ldap_bind_password_file={pwfile}", f"ldap_base={SUFFIX}",
                  "archive_imap=yes", "archive=private", "posting=open",
                  "http_unsubscribe_url=https://lists.example.test/unsubscribe"]
        lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
            "membership=ldap", f"ldap_group=cn=team,ou=groups,{SUFFIX}",
            "ldap_contact=it-help@localhost", *common)
        lst(p, "members", "team", "add", "dave@localhost")  # not counted
        lst(p, "create", f"mixed@{DOMAIN}", "--owner", "alice@localhost",
            "membership=both", f"ldap_group=cn=staff,ou=groups,{SUFFIX}",
            "ldap_leave_text=Write to the staff office to leave.", *common)
        lst(p, "members", "mixed", "add", "dave@localhost")

        # --- (1) the header fields
        p.send("alice@localhost", [f"team@{DOMAIN}"],
               msg("alice@localhost", f"team@{DOMAIN}", "dir post"))
        _, raw = wait_msgs(p, "bob", lambda m: "dir post" in (m["Subject"] or ""))
        h = _headers(raw)
        assert f"\nList-Id: <team.{DOMAIN}>" in h
        assert f"\nList-Post: <mailto:team@{DOMAIN}>" in h
        assert f"\nList-Help: <mailto:team-request@{DOMAIN}?subject=help>" in h
        assert re.search(r"\nList-Archive: <imap://[^/>]+/Shared/team>", h), h
        assert f"\nList-Owner: <mailto:team-owner@{DOMAIN}>" in h
        unsub = re.findall(r"\nList-Unsubscribe: (.*)", h)
        assert unsub == [f"<mailto:team-request@{DOMAIN}?subject=unsubscribe>"]
        assert "List-Unsubscribe-Post" not in h
        assert "List-Subscribe" not in h
        p.wait_queue_empty()
        assert count_subject(p, "dave", "dir post") == 0

        # membership=both: the group member's copy gets the directory
        # form, the database member's the ordinary -leave (no one-click:
        # the HTTP endpoint refuses lists with a group)
        p.send("alice@localhost", [f"mixed@{DOMAIN}"],
               msg("alice@localhost", f"mixed@{DOMAIN}", "mixed post"))
        _, rc = wait_msgs(p, "carol", lambda m: "mixed post" in (m["Subject"] or ""))
        _, rd = wait_msgs(p, "dave", lambda m: "mixed post" in (m["Subject"] or ""))
        hc, hd = _headers(rc), _headers(rd)
        assert re.findall(r"\nList-Unsubscribe: (.*)", hc) == \
            [f"<mailto:mixed-request@{DOMAIN}?subject=unsubscribe>"]
        assert re.findall(r"\nList-Unsubscribe: (.*)", hd) == \
            [f"<mailto:mixed-leave@{DOMAIN}>"]
        for hx in (hc, hd):
            assert "List-Unsubscribe-Post" not in hx
            assert f"\nList-Subscribe: <mailto:mixed-join@{DOMAIN}>" in hx
            assert re.search(r"\nList-Archive: <imap://[^/>]+/Shared/mixed>", hx)
        p.wait_queue_empty()

        # --- (2) requests: an explanation, never a silent drop
        p.send("bob@localhost", [f"team-leave@{DOMAIN}"],
               msg("bob@localhost", f"team-leave@{DOMAIN}", "bye"))
        _, r1 = wait_msgs(p, "bob", lambda m: "Results of your request to "
                          "team-request" in (m["Subject"] or ""))
        body = r1.split(b"\r\n\r\n", 1)[1].decode()
        assert "group in the organisation's directory" in body, body
        assert "ask it-help@localhost to remove you from the group" in body
        p.send("bob@localhost", [f"team-request@{DOMAIN}"],
               msg("bob@localhost", f"team-request@{DOMAIN}", "unsubscribe"))
        deadline = time.monotonic() + 30
        while count_subject(p, "bob", "Results of your request to "
                            "team-request") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        p.send("carol@localhost", [f"mixed-leave@{DOMAIN}"],
               msg("carol@localhost", f"mixed-leave@{DOMAIN}", "bye"))
        _, r2 = wait_msgs(p, "carol", lambda m: "Results of your request to "
                          "mixed-request" in (m["Subject"] or ""))
        body = r2.split(b"\r\n\r\n", 1)[1].decode()
        assert "cannot remove anyone by mail" in body, body
        assert "Write to the staff office to leave." in body
        # a database member of the same list leaves the ordinary way
        p.send("dave@localhost", [f"mixed-leave@{DOMAIN}"],
               msg("dave@localhost", f"mixed-leave@{DOMAIN}", "bye"))
        _, r3 = wait_msgs(p, "dave", lambda m: "Results of your request to "
                          "mixed-request" in (m["Subject"] or ""))
        assert b"a confirmation request was sent" in r3
        log = p.inst.log_text()
        assert "list=team: unsubscribe <bob@localhost> refused: " \
            "membership comes from the directory" in log
        assert "list=mixed: unsubscribe <carol@localhost> refused" in log
        p.wait_queue_empty()

        # --- (3) the archive over IMAP, by the same group lookup
        im = imap(p, "bob")
        assert listed(im, "Shared/*") == ['(\\HasNoChildren) "/" Shared/team']
        typ, data = im.select("Shared/team", readonly=True)
        assert typ == "OK" and data == [b"1"], data
        arch = fetch_all(im, 1)[0]
        assert b"\r\nSubject: dir post\r\n" in arch and raw.endswith(arch)
        # bob's session stays open across his removal below
        im_old = im

        for user in ("dave", "alice"):   # database record / no record
            im = imap(p, user)
            assert "Shared/team" not in " ".join(listed(im, "*"))
            typ, data = im.select("Shared/team")
            assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
            typ, data = im.status("Shared/team", "(MESSAGES)")
            assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
            want = ['(\\HasNoChildren) "/" Shared/mixed'] \
                if user == "dave" else []
            assert listed(im, "Shared/*") == want
            im.logout()
        im = imap(p, "carol")      # group member of the both-list
        assert listed(im, "Shared/*") == ['(\\HasNoChildren) "/" Shared/mixed']
        typ, data = im.select("Shared/mixed", readonly=True)
        assert typ == "OK" and data == [b"1"], data
        assert b"\r\nSubject: mixed post\r\n" in fetch_all(im, 1)[0]
        im.logout()

        # removal from the group: effective at the next login; a session
        # that is already open keeps what it had at its login
        _group_modify(d, f"""\
dn: cn=team,ou=groups,{SUFFIX}
changetype: modify
delete: member
member: uid=bob,ou=people,{SUFFIX}
""")
        im = imap(p, "bob")
        assert listed(im, "Shared/*") == []
        typ, data = im.select("Shared/team")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
        im.logout()
        im_old.close()
        typ, data = im_old.select("Shared/team", readonly=True)
        assert typ == "OK", data
        im_old.logout()
        # and list-mgr agrees: bob gets no more posts
        p.send("alice@localhost", [f"team@{DOMAIN}"],
               msg("alice@localhost", f"team@{DOMAIN}", "after removal"))
        p.wait_queue_empty()
        time.sleep(0.3)
        assert count_subject(p, "bob", "after removal") == 0

        # directory down: group members see no archive (fail closed,
        # logged); database members of a both-list still do; login works
        d.stop()
        im = imap(p, "carol")
        assert listed(im, "Shared/*") == []
        typ, data = im.select("Shared/mixed")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
        im.logout()
        im = imap(p, "dave")
        assert listed(im, "Shared/*") == ['(\\HasNoChildren) "/" Shared/mixed']
        im.logout()
        assert re.search(r"list=mixed: LDAP group: .*\(its archive is not "
                         r"shown to carol in this session\)", p.inst.log_text())
    finally:
        d.stop()
