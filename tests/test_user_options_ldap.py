# SPDX-License-Identifier: MIT
"""Per-user options from the directory (issue #8): quota and spam
opt-out. A real slapd (Debian
slapd, conf/postern.schema) holds posternQuota, and quota_maps =
ldap:FILE (result_attribute posternQuota) gives it to lmtpd (RCPT),
imapd (GETQUOTAROOT, through the login side's hand-off: imapd-mail links
no LDAP) and `postern user quota`.

    alice  posternQuota 2000: a bigger message is refused at RCPT
    bob    an entry without posternQuota: quota_storage_limit
    carol  posternQuota 2000 and her own user database quota 50000:
           the user database wins

With slapd stopped lmtpd answers 451 4.3.0 (the mail stays queued).

Spam (lmtp_spam_header = X-Spam-Flag: YES, spam_optout_maps = ldap:FILE
with result_attribute posternSpamOptOut): bob (no attribute) and erin
(FALSE) get marked mail in Junk, dave (TRUE) in the INBOX; unmarked mail
goes to the INBOX.
"""

import imaplib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ldap_fixture import MAIL_DN, MAIL_PW, SUFFIX, Directory, have_slapd
from test_lmtpd import HOST, Lmtp, deliver, lmtp_instance, message

pytestmark = pytest.mark.skipif(not have_slapd(), reason="needs slapd")


@pytest.fixture(scope="module")
def ldap():
    # Not under pytest's 0700 tmp: the daemons read the ldap: file here.
    base = Path(tempfile.mkdtemp(prefix="pst-quotaldap-"))
    os.chmod(base, 0o755)
    d = Directory(base / "ldap")
    d.load(d.user_ldif("alice", posternQuota="2000")
           + d.user_ldif("bob", mail="bob@localhost")
           + d.user_ldif("carol", posternQuota="2000")
           + d.user_ldif("dave", posternSpamOptOut="TRUE")
           + d.user_ldif("erin", posternSpamOptOut="FALSE"))
    cf = base / "ldap-quota.cf"
    cf.write_text(f"""\
server_host = {d.uri}
search_base = {SUFFIX}
query_filter = (&(objectClass=posternUser)(uid=%u))
result_attribute = posternQuota
bind_dn = {MAIL_DN}
bind_pw = {MAIL_PW}
timeout = 3
""")
    os.chmod(cf, 0o644)   # test only; 0640 group of mail_owner in real life
    spam = base / "ldap-spam.cf"
    spam.write_text(cf.read_text().replace("posternQuota",
                                           "posternSpamOptOut"))
    os.chmod(spam, 0o644)
    d.start()
    yield d, cf, spam
    d.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def inst(ldap, instance_factory):
    d, cf, spam = ldap
    if d.pid is None:
        d.start()
    i = lmtp_instance(instance_factory,
                      users=("alice", "bob", "carol", "dave", "erin"),
                      quota_storage_limit="1m", quota_full_tempfail="no",
                      quota_maps=f"ldap:{cf}",
                      lmtp_spam_header="X-Spam-Flag: YES",
                      spam_optout_maps=f"ldap:{spam}")
    i.postern("user", "quota", "carol", "50000")
    return i


def rcpt(inst, who, size):
    c = Lmtp(inst.port("LMTP"))
    try:
        c.lhlo()
        assert c.cmd(f"MAIL FROM:<s@example.org> SIZE={size}")[0] == 250
        return c.cmd(f"RCPT TO:<{who}@localhost>")
    finally:
        c.close()


def storage(inst, user):
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=15)
    try:
        m.login(user, "pw")
        typ, data = m.getquotaroot("INBOX")
        assert typ == "OK", data
        return b" ".join(d for d in data[1] if d)
    finally:
        m.logout()


def test_quota_from_directory(inst, ldap):
    _, cf, _ = ldap
    # postern user quota/show name the source
    out = inst.postern("user", "quota", "alice").stdout
    assert out.strip() == f"alice: 2000 (quota_maps ldap:{cf})", out
    out = inst.postern("user", "quota", "bob").stdout
    assert out.strip() == "bob: 1048576 (quota_storage_limit)", out
    out = inst.postern("user", "quota", "carol").stdout
    assert out.strip() == "carol: 50000 (user database)", out
    assert f"quota: 2000 bytes (quota_maps ldap:{cf})" in \
        inst.postern("user", "show", "alice").stdout

    # LMTP: alice's 2000 bytes refuse a 3000-byte message at RCPT (552
    # with quota_full_tempfail = no); bob and carol take it
    code, lines = rcpt(inst, "alice", 3000)
    assert code == 552 and lines[0].startswith("5.2.2"), lines
    assert rcpt(inst, "bob", 3000)[0] == 250
    assert rcpt(inst, "carol", 3000)[0] == 250
    # a small one fits alice; after it the next one no longer does
    _, dr = deliver(inst, ["alice@localhost"], message(body=b"x" * 1200))
    assert dr[0][0] == 250, dr
    # without SIZE the check is at the append: one reply per recipient
    _, dr = deliver(inst, ["alice@localhost", "bob@localhost"],
                    message(body=b"y" * 1500))
    assert dr[0][0] == 552 and dr[1][0] == 250, dr

    # IMAP GETQUOTAROOT shows the directory's quota (KiB, rounded down)
    assert b"STORAGE 1 1)" in storage(inst, "alice") or \
        b"STORAGE 2 1)" in storage(inst, "alice")
    assert b"STORAGE 1 1024)" in storage(inst, "bob") or \
        b"STORAGE 2 1024)" in storage(inst, "bob")
    assert b"STORAGE 0 48)" in storage(inst, "carol")


def test_directory_down_is_temporary(inst, ldap):
    d, _, _ = ldap
    d.stop()
    try:
        mark = inst.log_mark()
        code, lines = rcpt(inst, "alice", 100)
        assert code == 451 and lines[0].startswith("4.3.0"), lines
        inst.wait_for_log(r"lmtpd\[\d+\]: .*quota of alice: ldap:", start=mark)
        # the user database's own quota needs no directory
        assert rcpt(inst, "carol", 100)[0] == 250
        # imapd: the default, with a warning
        assert b"STORAGE 0 1024)" in storage(inst, "alice")
        inst.wait_for_log(r"imapd\[\d+\]: .*quota of alice: .*\(default\)",
                          start=mark)
        # postern user quota fails rather than show a wrong source
        r = inst.postern("user", "quota", "alice", check=False)
        assert r.returncode != 0 and "quota of alice" in r.stderr, r
    finally:
        d.start()
    assert rcpt(inst, "alice", 3000)[0] == 552


def counts(inst, user):
    m = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=15)
    try:
        m.login(user, "pw")
        got = {}
        for box in ("INBOX", "Junk"):
            typ, data = m.status(box, "(MESSAGES)")
            assert typ == "OK", data
            got[box] = int(data[0].split(b"MESSAGES ")[1].rstrip(b")"))
        return got
    finally:
        m.logout()


def test_spam_to_junk_unless_opted_out(inst, ldap):
    spam = message("cheap", extra=b"X-Spam-Flag: yes\r\n")
    mark = inst.log_mark()
    _, dr = deliver(inst, ["bob@localhost", "dave@localhost",
                           "erin@localhost"], spam)
    assert [c for c, _ in dr] == [250, 250, 250], dr
    _, dr = deliver(inst, ["bob@localhost"], message("ham"))
    assert dr[0][0] == 250, dr
    assert counts(inst, "bob") == {"INBOX": 1, "Junk": 1}
    assert counts(inst, "erin") == {"INBOX": 0, "Junk": 1}
    assert counts(inst, "dave") == {"INBOX": 1, "Junk": 0}
    inst.wait_for_log(r"to=<bob@localhost>, spam \(X-Spam-Flag: YES\): "
                      r"filed into Junk", start=mark)
    inst.wait_for_log(r"to=<dave@localhost>, spam \(X-Spam-Flag: YES\): "
                      r"kept in INBOX \(opted out in ldap:", start=mark)
