# SPDX-License-Identifier: MIT
"""list-mgr with membership from an LDAP group, against a real slapd
(tests/ldap_fixture.py): member and uniqueMember DNs resolved to mail,
the read-only account's password from a file, membership=ldap vs both,
posting=members checked against the group, and a 451 (retried) while
the directory is down."""

import time

import pytest

from ldap_fixture import MAIL_DN, MAIL_PW, SUFFIX, Directory, have_slapd
from test_list import DOMAIN, count_subject, lst, msg, setup_lists, wait_msgs

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
