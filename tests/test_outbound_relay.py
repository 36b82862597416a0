# SPDX-License-Identifier: MIT
"""Postern to Postern: instance A relays by transport map
(smtp:[127.0.0.1]:PORT) to instance B's smtpd, and the mail lands in
B's users' mailboxes, read over IMAP.

B takes at most two recipients per transaction (smtpd_recipient_limit =
2: a third RCPT gets 452 4.5.3), so a message to three of its users is a
partial success: two are delivered at once, the third stays queued on A
alone and goes out on the retry, and nobody gets a second copy.
"""

import imaplib
import os
import time

from conftest import HOST
from pipeline import make_pipeline, start_pipeline

USERS = ("carol", "dave", "erin")
MSG = (b"From: alice@localhost\r\n"
       b"To: carol@remote.test, dave@remote.test, erin@remote.test\r\n"
       b"Subject: from A to B\r\n"
       b"\r\n"
       b"Relayed between two instances.\r\n")


def imap_count(inst, user):
    imap = imaplib.IMAP4(HOST, inst.port("IMAP"), timeout=30)
    try:
        imap.login(user, "pw")
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        n = int(data[0])
        if n:
            _, parts = imap.fetch(b"1", "(BODY.PEEK[])")
            body = parts[0][1]
            assert b"Subject: from A to B" in body
            assert body.endswith(b"\r\n\r\nRelayed between two instances.\r\n")
        return n
    finally:
        imap.logout()


def test_relay_partial_success_between_instances(instance_factory):
    b = make_pipeline(lambda: instance_factory(pipeline=True), users=USERS,
                      config={"mydestination": "localhost, remote.test",
                              "smtpd_recipient_limit": "2"})
    a = make_pipeline(lambda: instance_factory(pipeline=True),
                      users=("alice",), start=False,
                      config={"minimal_backoff_time": "3s",
                              "maximal_backoff_time": "3s"})
    tm = a.inst.dir / "transport"
    tm.write_text(f"remote.test smtp:[{HOST}]:{b.inst.port('SMTP')}\n")
    os.chmod(tm, 0o644)
    a.inst.set_config("transport_maps", f"file:{tm}")
    start_pipeline(a)

    rcpts = [f"{u}@remote.test" for u in USERS]
    a.send("alice@localhost", rcpts, MSG)
    m = a.inst.wait_for_log(
        r"(\w+): to=<erin@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
        r":\d+, .*dsn=4\.5\.3, status=deferred \(host 127\.0\.0\.1\[127\.0\.0"
        r"\.1\]:\d+ said: 452 4\.5\.3 Error: too many recipients \(in reply "
        r"to RCPT TO command\)", timeout=30)
    qid = m.group(1)
    for u in ("carol", "dave"):
        a.inst.wait_for_log(rf"{qid}: to=<{u}@remote\.test>, .*status=sent")
    # only erin waits on A (looked at before the 3s retry comes due)
    out = a.queue_list()
    assert qid in out and "erin@remote.test" in out, out
    assert "carol@remote.test" not in out and "dave@remote.test" not in out
    deadline = time.monotonic() + 20
    while not (imap_count(b.inst, "carol") and imap_count(b.inst, "dave")):
        assert time.monotonic() < deadline, b.inst.log_text()[-3000:]
        time.sleep(0.2)

    # the retry delivers erin's copy; nobody gets a second one
    deadline = time.monotonic() + 30
    while not imap_count(b.inst, "erin"):
        assert time.monotonic() < deadline, a.inst.log_text()[-3000:]
        time.sleep(0.3)
    a.wait_queue_empty(timeout=30)
    assert [imap_count(b.inst, u) for u in USERS] == [1, 1, 1]
    log_a = a.inst.log_text()
    for u in USERS:
        assert log_a.count(f"{qid}: to=<{u}@remote.test>, relay=127.0.0.1"
                           "[127.0.0.1]") == (2 if u == "erin" else 1)
