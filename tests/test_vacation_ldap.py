# SPDX-License-Identifier: MIT
"""Vacation settings from the directory: a real slapd (Debian slapd,
conf/postern.schema) holds the users' posternVacation* attributes and
lmtpd reads them through vacation_setting_maps = ldap:FILE (the ldap:
map file format) at each delivery. Mail goes by SMTP through the whole
path (smtpd -> cleanup -> qmgr -> lmtpd -> vacationd -> cleanup -> ...
-> the sender's mailbox) and the replies are read back from the store.

    alice  posternVacationActive TRUE, subject, text, days: replied to
    dave   start and end dates in the past: no reply
    erin   posternVacationActive FALSE, and an active settings.db
           setting (postern vacation set): the directory wins, no reply
    frank  an entry without vacation attributes, and an active
           settings.db setting: that setting answers
    hank   active without a text: an error (postern vacation show)

and with slapd stopped the mail is delivered (the lookup failure is
logged, no reply), and once slapd is back the reply comes again.
"""

import base64
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from ldap_fixture import MAIL_DN, MAIL_PW, SUFFIX, Directory, have_slapd
from test_vacation import make_vac, msg

pytestmark = pytest.mark.skipif(not have_slapd(), reason="needs slapd")

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
ALICE_TEXT = "I am away (directory).\nBack in December.\n"


@pytest.fixture(scope="module")
def ldap():
    # Not under pytest's 0700 tmp: the daemons may run as other users
    # and read the ldap: file from here.
    base = Path(tempfile.mkdtemp(prefix="pst-vacldap-"))
    os.chmod(base, 0o755)
    d = Directory(base / "ldap")
    # the text has line ends: base64 in LDIF
    d.load(d.user_ldif("alice", mail="alice@localhost",
                       posternVacationActive="TRUE",
                       posternVacationSubject="Away (directory)",
                       posternVacationDays="7",
                       posternVacationAddress="alice@dept.example")
           .rstrip("\n") + "\nposternVacationText:: "
           + base64.b64encode(ALICE_TEXT.encode()).decode() + "\n\n"
           + d.user_ldif("dave", mail="dave@localhost",
                         posternVacationStart="20200101000000Z",
                         posternVacationEnd="20200201000000Z",
                         posternVacationSubject="Old news",
                         posternVacationText="gone in 2020")
           + d.user_ldif("erin", posternVacationActive="FALSE",
                         posternVacationText="not now")
           + d.user_ldif("frank", mail="frank@localhost")
           + d.user_ldif("hank", posternVacationActive="TRUE",
                         posternVacationSubject="no text"))
    cf = base / "vacation.cf"
    cf.write_text(f"""\
# the ldap: map file format (ldapdir_from_text)
server_host = {d.uri}
search_base = {SUFFIX}
query_filter = (&(objectClass=posternUser)(uid=%u))
bind_dn = {MAIL_DN}
bind_pw = {MAIL_PW}
timeout = 5
""")
    os.chmod(cf, 0o644)   # test only; 0640 group of mail_owner in real life
    d.start()
    yield d, cf
    d.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def lvac(ldap, instance_factory, request, monkeypatch):
    d, cf = ldap
    if d.pid is None:
        d.start()
    return make_vac(instance_factory, request, monkeypatch,
                    config={"vacation_setting_maps": f"ldap:{cf}"},
                    users=USERS)


def header(m, name):
    got = re.search(rb"(?mi)^" + name.encode() + rb": (.*)\r$", m)
    return got.group(1).decode() if got else None


def vacationd_lines(text, user):
    return [l for l in text.splitlines()
            if "vacationd[" in l and f"user={user}," in l]


def test_directory_settings(lvac, ldap, tmp_path):
    inst = lvac.inst
    _, cf = ldap
    show = inst.postern("vacation", "show", "alice").stdout
    assert f"source: directory ldap:{cf} (uid=alice,ou=people,{SUFFIX})" in show
    assert "vacation: active" in show
    assert "subject: Away (directory)" in show
    assert "days: 7" in show
    assert "addresses: alice@localhost,alice@dept.example" in show \
        or "addresses: alice@dept.example,alice@localhost" in show
    assert "I am away (directory)." in show

    # 1. bob writes to alice: exactly one reply, as the directory says
    mark = inst.log_mark()
    lvac.send("bob@localhost", ["alice@localhost"],
              msg("plans", "Bob <bob@localhost>", "Alice <alice@localhost>",
                  "<l1@example.org>"))
    inst.wait_for_log(r"lmtpd\[\d+\]: \S+: to=<alice@localhost>, vacation "
                      r"setting \(directory\): vacationd: 2\.0\.0 vacation reply sent",
                      timeout=30, start=mark)
    got = lvac.wait_messages("bob", 1)
    assert len(got) == 1
    reply = got[0]
    assert header(reply, "Auto-Submitted") == "auto-replied", reply
    assert header(reply, "Subject") == "Away (directory)", reply
    assert header(reply, "In-Reply-To") == "<l1@example.org>", reply
    assert header(reply, "From") == "<alice@localhost>", reply
    assert header(reply, "To") == "<bob@localhost>", reply
    assert reply.endswith(b"\r\n\r\nI am away (directory).\r\n"
                          b"Back in December.\r\n"), reply
    assert len(lvac.wait_messages("alice", 1)) == 1

    # 2. bob again: delivered, not answered a second time
    mark = inst.log_mark()
    lvac.send("bob@localhost", ["alice@localhost"],
              msg("plans 2", "bob@localhost", "alice@localhost",
                  "<l2@example.org>"))
    lvac.wait_log(r"user=alice, from=<bob@localhost>: no vacation reply: "
                  r"already answered", mark)
    assert len(lvac.wait_messages("alice", 2)) == 2
    # to the departmental address of the directory entry: carol is
    # answered (posternVacationAddress reaches vacationd)
    mark = inst.log_mark()
    lvac.send("carol@localhost", ["alice@localhost"],
              msg("dept", "carol@localhost", "Team <alice@dept.example>",
                  "<l3@example.org>"))
    lvac.wait_log(r"user=alice, from=<carol@localhost>: vacation reply sent",
                  mark)
    assert len(lvac.wait_messages("carol", 1)) == 1

    # 3. dave's dates are in the past: delivered, no request at all
    show = inst.postern("vacation", "show", "dave").stdout
    assert "source: directory" in show and "set, not active now" in show
    assert "from: 2020-01-01" in show or "from: 2019-12-31" in show
    # a malformed entry (active, no text) is an error, not a guess
    r = inst.postern("vacation", "show", "hank", check=False)
    assert r.returncode == 1, r
    assert (f"vacation setting of hank: ldap:{cf}: uid=hank,ou=people,"
            f"{SUFFIX}: a vacation setting without posternVacationText"
            in r.stderr), r.stderr
    # 4. erin: the directory's FALSE overrides an active settings.db
    # setting (and postern vacation set says so)
    text = tmp_path / "away.txt"
    text.write_text("Erin is out.\n")
    r = inst.postern("vacation", "set", "erin", "--from", "2000-01-01",
                     "--until", "2099-01-01", "--subject", "Erin is out",
                     "--message-file", text)
    assert "takes precedence over settings.db" in r.stderr, r.stderr
    show = inst.postern("vacation", "show", "erin").stdout
    assert "source: directory" in show
    assert "vacation: off (posternVacationActive FALSE)" in show
    # 5. frank: no vacation attributes in the directory, the
    # settings.db setting applies
    text.write_text("Frank is out.\n")
    r = inst.postern("vacation", "set", "frank", "--from", "2000-01-01",
                     "--until", "2099-01-01", "--subject", "Frank is out",
                     "--message-file", text)
    assert "precedence" not in r.stderr, r.stderr
    show = inst.postern("vacation", "show", "frank").stdout
    assert "source: settings" in show and "vacation: active" in show

    mark = inst.log_mark()
    for user, mid in (("dave", "<d1@example.org>"), ("erin", "<e1@example.org>"),
                      ("frank", "<f1@example.org>")):
        lvac.send("bob@localhost", [f"{user}@localhost"],
                  msg(f"to {user}", "bob@localhost", f"{user}@localhost", mid))
    lvac.wait_log(r"user=frank, from=<bob@localhost>: vacation reply sent",
                  mark)
    for user in ("dave", "erin", "frank"):
        assert len(lvac.wait_messages(user, 1)) == 1
    got = lvac.wait_messages("bob", 2)
    assert len(got) == 2
    assert header(got[1], "Subject") == "Frank is out", got[1]
    assert header(got[1], "In-Reply-To") == "<f1@example.org>", got[1]
    time.sleep(1)   # a late request would show up in the log by now
    text_log = inst.log_text()[mark:]
    assert vacationd_lines(text_log, "dave") == [], text_log
    assert vacationd_lines(text_log, "erin") == [], text_log
    assert "vacation setting lookup failed" not in inst.log_text()
    assert len(lvac.messages("bob")) == 2


def test_directory_down_delivers(lvac, ldap):
    inst = lvac.inst
    d, _ = ldap
    d.stop()
    try:
        mark = inst.log_mark()
        lvac.send("carol@localhost", ["alice@localhost"],
                  msg("while down", "carol@localhost", "alice@localhost",
                      "<x1@example.org>"))
        assert len(lvac.wait_messages("alice", 1)) == 1
        lvac.wait_log(r"to=<alice@localhost>, vacation setting lookup "
                      r"failed, no vacation reply: ldap:\S+: .*"
                      r"127\.0\.0\.1.*Can't contact LDAP server", mark)
        r = inst.postern("vacation", "show", "alice", check=False)
        assert r.returncode == 1 and "vacation setting of alice" in r.stderr
        # the message was not retried (one copy), and nobody answered
        time.sleep(1)
        assert len(lvac.messages("alice")) == 1
        assert lvac.messages("carol") == []
        assert vacationd_lines(inst.log_text()[mark:], "alice") == []
    finally:
        d.start()
    # back: the next delivery reconnects and the reply is sent
    mark = inst.log_mark()
    lvac.send("carol@localhost", ["alice@localhost"],
              msg("back", "carol@localhost", "alice@localhost",
                  "<x2@example.org>"))
    lvac.wait_log(r"user=alice, from=<carol@localhost>: vacation reply sent",
                  mark)
    got = lvac.wait_messages("carol", 1)
    assert header(got[0], "Subject") == "Away (directory)"
    assert header(got[0], "In-Reply-To") == "<x2@example.org>"
