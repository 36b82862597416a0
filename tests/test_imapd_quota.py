# SPDX-License-Identifier: MIT
"""imapd takes the per-user quota from the user database (postern user
quota NAME SIZE), falling back to quota_storage_limit, as lmtpd does."""

from test_imapd import connect, imap, msg  # noqa: F401


def test_user_quota_from_userdb(imap):  # noqa: F811
    imap.postern("user", "quota", "alice", "20000")
    m = connect(imap)
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert any(b"STORAGE 0 19)" in d for d in data[1]), data
    typ, _ = m.append("INBOX", None, None, msg("fits", body="x" * 1000))
    assert typ == "OK"
    try:
        typ, d = m.append("INBOX", None, None, msg("too big", body="y" * 30000))
    except m.error as e:
        typ, d = "NO", [str(e).encode()]
    assert typ == "NO" and b"OVERQUOTA" in d[0], d
    m.logout()
    # bob keeps the default
    m = connect(imap, user="bob", password="bobpw")
    typ, data = m.getquotaroot("INBOX")
    assert any(b"STORAGE 0 1048576)" in d for d in data[1]), data
    m.logout()
