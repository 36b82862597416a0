# SPDX-License-Identifier: MIT
"""The sendmail command against a real instance: what lands in the queue.

Every test injects with build/bin/sendmail through the public cleanup
socket and reads the queue file back with tests/progs/qfcat.
"""

import re

import pytest

from conftest import BIN

from injecttest import (EX_DATAERR, EX_OK, EX_TEMPFAIL, EX_USAGE,
                        ensure_cleanup, header_and_body, header_fields,
                        local_user, open_up, queue_ids, remove_cleanup,
                        sendmail, start_with_cleanup, the_only)


@pytest.fixture
def inst(instance_factory):
    return start_with_cleanup(instance_factory)


def test_queued_with_missing_headers_added(inst):
    r = sendmail(inst, ["-v", "bob@example.com"],
                 b"Subject: hello\n\nfirst line\nsecond line\n")
    assert r.returncode == EX_OK, r.stderr
    qid, qf = the_only(inst)
    assert f"queued as {qid}".encode() in r.stdout
    assert qf["protocol"] == "local"
    assert [x["rcpt"] for x in qf["rcpts"]] == ["bob@example.com"]
    fields = header_fields(qf["content"])
    assert fields["message-id"] == [f"<{qid}@localhost>".encode()]
    assert re.match(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                    rb"\d\d:\d\d:\d\d [+-]\d{4}", fields["date"][0])
    assert qf["sender"].encode() in fields["from"][0]
    assert fields["subject"] == [b"hello"]
    _, body = header_and_body(qf["content"])
    assert body == b"first line\r\nsecond line\r\n"
    inst.wait_for_log(rf"cleanup\[\d+\]: {qid}: message-id=<{qid}@localhost>")
    inst.wait_for_log(rf"{qid}: from=<{re.escape(qf['sender'])}>, size=\d+, "
                      r"nrcpt=1 \(queue active\)")


def test_existing_headers_kept(inst):
    msg = (b"From: Alice <alice@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <mine@example.org>\nTo: bob@example.com\n\nbody\n")
    r = sendmail(inst, ["bob@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    qid, qf = the_only(inst)
    fields = header_fields(qf["content"])
    assert fields["message-id"] == [b"<mine@example.org>"]
    assert fields["from"] == [b"Alice <alice@example.org>"]
    assert len(fields["date"]) == 1
    inst.wait_for_log(rf"{qid}: message-id=<mine@example.org>")


def test_lf_to_crlf_byte_exact(inst):
    msg = (b"Subject: crlf\n\nlf line\ncrlf line\r\nbare\rcr in line\n"
           b"\n\ntrailing spaces  \nno final newline")
    r = sendmail(inst, ["-i", "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    _, body = header_and_body(qf["content"])
    assert body == (b"lf line\r\ncrlf line\r\nbare\rcr in line\r\n"
                    b"\r\n\r\ntrailing spaces  \r\nno final newline\r\n")


def test_dot_ends_input_without_i(inst):
    msg = b"Subject: dot\n\nbefore\n..stuffed stays\n.\nafter the dot\n"
    r = sendmail(inst, ["bob@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    _, body = header_and_body(qf["content"])
    assert body == b"before\r\n..stuffed stays\r\n"


def test_dot_crlf_ends_input(inst):
    r = sendmail(inst, ["bob@example.com"], b"Subject: d\r\n\r\nx\r\n.\r\ny\r\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert header_and_body(qf["content"])[1] == b"x\r\n"


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_dot_kept_with_i(inst, flag):
    msg = b"Subject: dot\n\nbefore\n.\n.x\nafter\n."
    r = sendmail(inst, [flag, "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    _, body = header_and_body(qf["content"])
    assert body == b"before\r\n.\r\n.x\r\nafter\r\n.\r\n"


def test_8bit_and_nul_body(inst):
    body = bytes(range(128, 256)) + b"\x00nul\x00\n" + "grüße\n".encode()
    r = sendmail(inst, ["-i", "bob@example.com"], b"Subject: 8bit\n\n" + body)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    _, got = header_and_body(qf["content"])
    assert got == body.replace(b"\n", b"\r\n")


def test_large_message_streams(inst):
    line = b"x" * 998 + b"\n"
    body = line * 3000          # ~3 MB, many 64 KiB chunks
    r = sendmail(inst, ["-i", "bob@example.com"], b"Subject: big\n\n" + body)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert header_and_body(qf["content"])[1] == body.replace(b"\n", b"\r\n")


def test_extract_recipients_and_remove_bcc(inst):
    msg = (b"To: Bob <bob@example.com>, carol@example.com\n"
           b"Cc: dave@example.com,\n\tBob <bob@example.com>\n"
           b"Bcc: secret@example.com\nSubject: -t\n\nbody\n")
    r = sendmail(inst, ["-t", "extra@example.com"], msg)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    rcpts = sorted(x["rcpt"] for x in qf["rcpts"])
    assert rcpts == ["bob@example.com", "carol@example.com",
                     "dave@example.com", "extra@example.com",
                     "secret@example.com"]
    fields = header_fields(qf["content"])
    assert "bcc" not in fields
    assert b"secret" not in qf["content"]
    assert fields["to"] == [b"Bob <bob@example.com>, carol@example.com"]


def test_extract_without_recipients_fails(inst):
    r = sendmail(inst, ["-t"], b"Subject: nobody\n\nbody\n")
    assert r.returncode == EX_DATAERR
    assert b"no recipients" in r.stderr
    assert queue_ids(inst, "active") == []
    assert queue_ids(inst, "incoming") == []


def test_bcc_removed_without_t(inst):
    r = sendmail(inst, ["bob@example.com"],
                 b"Bcc: hidden@example.com\nSubject: s\n\nbody\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert [x["rcpt"] for x in qf["rcpts"]] == ["bob@example.com"]
    assert b"hidden" not in qf["content"]


def test_usage_errors(inst):
    r = sendmail(inst, [], b"Subject: x\n\n")
    assert r.returncode == EX_USAGE
    assert b"recipients must be given" in r.stderr
    r = sendmail(inst, ["-Q"], b"")
    assert r.returncode == EX_USAGE
    r = sendmail(inst, ["-f"], b"")
    assert r.returncode == EX_USAGE


def test_bad_addresses(inst):
    r = sendmail(inst, ["bob@@example.com"], b"x\n")
    assert r.returncode == EX_DATAERR
    assert b"bad recipient address" in r.stderr
    r = sendmail(inst, ["-f", "a b@c", "bob@example.com"], b"x\n")
    assert r.returncode == EX_DATAERR
    assert queue_ids(inst, "active") == []


def test_recipient_list_argument_and_qualification(inst):
    r = sendmail(inst, ["Bob <bob@example.com>, carol", "dave"], b"Subject: q\n\nx\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert sorted(x["rcpt"] for x in qf["rcpts"]) == [
        "bob@example.com", "carol@localhost", "dave@localhost"]


def test_sender_f_trusted(inst):
    # The test runs as root or as the instance's own user: both trusted.
    r = sendmail(inst, ["-f", "<alice@example.org>", "-F", "Alice Liddell",
                        "bob@example.com"], b"Subject: f\n\nbody\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["sender"] == "alice@example.org"
    assert header_fields(qf["content"])["from"] == [
        b"Alice Liddell <alice@example.org>"]


def test_null_sender_trusted(inst):
    r = sendmail(inst, ["-f", "<>", "bob@example.com"], b"Subject: n\n\nbody\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["sender"] == ""


def test_dsn_options(inst):
    r = sendmail(inst, ["-N", "success,failure", "-R", "hdrs", "-V", "env-1",
                        "bob@example.com"], b"Subject: dsn\n\nbody\n")
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["envid"] == "env-1"
    assert qf["ret"] == "2"
    assert qf["rcpts"][0]["notify"] == "6"


def test_untrusted_user_cannot_forge_sender(inst):
    user = local_user(inst)
    open_up(inst)
    r = sendmail(inst, ["-f", "ceo@example.org", "bob@example.com"],
                 b"Subject: forged\n\nbody\n", user=user)
    assert r.returncode == EX_OK, r.stderr
    qid, qf = the_only(inst)
    own = f"{user.pw_name}@localhost"
    assert qf["sender"] == own
    assert qf["protocol"] == "local"
    assert qf["attrs"]["uid"] == str(user.pw_uid)
    assert qf["attrs"]["login"] == user.pw_name
    assert own.encode() in header_fields(qf["content"])["from"][0]
    inst.wait_for_log(rf"{qid}: uid={user.pw_uid} (\({user.pw_name}\) may not "
                      rf"send as <ceo@example.org>|from=<{own}>)")
    # The sender header cleanup added must not be the forged one either.
    assert b"ceo@example.org" not in qf["content"]


def test_untrusted_user_may_use_own_address(inst):
    user = local_user(inst)
    open_up(inst)
    own = f"{user.pw_name}@localhost"
    r = sendmail(inst, ["-f", own, "bob@example.com"], b"Subject: own\n\nx\n",
                 user=user)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["sender"] == own


def test_trusted_users_parameter(instance_factory):
    inst = instance_factory()
    user = local_user(inst)
    ensure_cleanup(inst)
    inst.set_config("trusted_users", f"root, {user.pw_name}")
    inst.start()
    open_up(inst)
    r = sendmail(inst, ["-f", "list-bounces@example.org", "bob@example.com"],
                 b"Subject: t\n\nx\n", user=user)
    assert r.returncode == EX_OK, r.stderr
    _, qf = the_only(inst)
    assert qf["sender"] == "list-bounces@example.org"
    assert qf["attrs"]["uid"] == str(user.pw_uid)


def test_cleanup_not_running(instance_factory):
    inst = instance_factory()
    remove_cleanup(inst)
    inst.start()
    r = sendmail(inst, ["bob@example.com"], b"Subject: x\n\nbody\n")
    assert r.returncode == EX_TEMPFAIL
    assert b"cleanup" in r.stderr


def test_bp_lists_the_queue(inst):
    r = sendmail(inst, ["bob@example.com"], b"Subject: q\n\nx\n")
    assert r.returncode == EX_OK
    qid, _ = the_only(inst)
    r = sendmail(inst, ["-bp"], b"")
    if r.returncode != 0 and b"queue" not in r.stdout:
        pytest.skip(f"postern queue list is not available: {r.stderr!r}")
    assert r.returncode == 0, r.stderr
    assert qid.encode() in r.stdout
    assert b"bob@example.com" in r.stdout


def test_bs_speaks_smtp_through_smtpd(inst):
    if not (BIN / "smtpd").exists():
        pytest.skip("smtpd is not built")
    session = (b"EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.com>\r\nDATA\r\n"
               b"Subject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n")
    r = sendmail(inst, ["-bs"], session)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"220 ")
    m = re.search(rb"250 [0-9.]+ Ok: queued as ([0-9A-Z]+)", r.stdout)
    assert m, r.stdout
    qid, qf = the_only(inst)
    assert qid == m.group(1).decode()
    assert qf["sender"] == "alice@example.org"
    assert header_and_body(qf["content"])[1] == b"via -bs\r\n"
