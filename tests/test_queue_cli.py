# SPDX-License-Identifier: MIT
"""`postern queue` (list/show/flush/hold/release/delete/requeue) and mailq,
on a real instance with cleanup, qmgr and the lmtp agent."""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import POSTERN
from test_qmgr import MSG, make_queue


@pytest.fixture
def q(instance_factory):
    # long backoff: deferred mail stays deferred unless flushed. Remote
    # mail goes to a relay that refuses connections (port 1), so it is
    # deferred whatever DNS says about the test domains.
    queue = make_queue(instance_factory, config={
        "minimal_backoff_time": "1h", "maximal_backoff_time": "2h",
        "queue_run_delay": "1h", "relayhost": "[127.0.0.1]:1"})
    yield queue
    queue.sink.stop()


def wait_in(q, queue_name, qid, timeout=15):
    deadline = time.monotonic() + timeout
    while qid not in q.ids(queue_name):
        assert time.monotonic() < deadline, \
            f"{qid} not in {queue_name}/ (active={q.ids('active')}, " \
            f"deferred={q.ids('deferred')}, hold={q.ids('hold')})"
        time.sleep(0.05)


def test_list_empty_and_mailq(q):
    r = q.postern("queue", "list")
    assert r.stdout.strip() == "Mail queue is empty"
    r = q.postern("mailq")
    assert r.stdout.strip() == "Mail queue is empty"
    # invoked as "mailq"
    link = q.inst.dir / "mailq"
    link.symlink_to(POSTERN)
    r = subprocess.run([str(link)], capture_output=True, text=True,
                       env=dict(os.environ, POSTERN_CONFIG_DIR=str(q.inst.dir)))
    assert r.returncode == 0 and "Mail queue is empty" in r.stdout


def test_list_show_json_deferred(q):
    qid = q.inject(["someone@remote.example", "bob@localhost"], MSG)
    wait_in(q, "deferred", qid)
    r = q.postern("queue", "list")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert lines[1].startswith(qid + " ")
    assert "sender@example.org" in lines[1]
    # the deferral reason is the relay's refusal, in mailq's (...) form
    assert re.search(r"\(4\.\d\.\d [^)]*Connection refused\)", r.stdout)
    assert "someone@remote.example" in r.stdout
    assert "bob@localhost" not in r.stdout          # delivered: not listed
    assert re.search(r"-- \d+ Kbytes in 1 Request\.", r.stdout)

    r = q.postern("queue", "list", "--json")
    (obj,) = [json.loads(l) for l in r.stdout.splitlines()]
    assert obj["queue_name"] == "deferred" and obj["queue_id"] == qid
    assert obj["sender"] == "sender@example.org"
    assert obj["message_size"] == len(MSG) or obj["message_size"] > 0
    assert [x["address"] for x in obj["recipients"]] == ["someone@remote.example"]
    assert obj["recipients"][0]["state"] == "deferred"
    assert "Connection refused" in obj["recipients"][0]["delay_reason"]

    r = q.postern("queue", "show", qid)
    assert qid in r.stdout
    assert "sender@example.org" in r.stdout
    assert "someone@remote.example" in r.stdout
    assert "header:" in r.stdout and "Subject: test" in r.stdout
    assert "Hello." not in r.stdout
    r = q.postern("queue", "show", qid, "--body")
    assert "Hello." in r.stdout


def test_unknown_ids(q):
    for verb in ("show", "hold", "release", "delete", "requeue"):
        r = q.postern("queue", verb, "0123456789ABCDEFGH", check=False)
        assert r.returncode == 1, verb
        assert "postern: queue ID 0123456789ABCDEFGH not found" in r.stderr
    r = q.postern("queue", "show", "../../etc/passwd", check=False)
    assert r.returncode == 1 and "not found" in r.stderr
    r = q.postern("queue", "frobnicate", check=False)
    assert r.returncode == 2


def test_hold_release(q):
    qid = q.inject(["bob@localhost"], MSG, args=["-H"])
    wait_in(q, "hold", qid)
    r = q.postern("queue", "list")
    assert f"{qid}!" in r.stdout
    time.sleep(0.5)
    assert q.sink.delivered_to("bob@localhost") == []
    q.postern("queue", "release", qid)
    q.wait_removed(qid)
    assert len(q.sink.delivered_to("bob@localhost")) == 1


def test_hold_deferred_then_release_and_delete(q):
    qid = q.inject(["someone@remote.example"], MSG)
    wait_in(q, "deferred", qid)
    q.postern("queue", "hold", qid)
    assert q.ids("hold") == [qid] and q.ids("deferred") == []
    # holding again is harmless
    r = q.postern("queue", "hold", qid)
    assert "already held" in r.stderr
    # flush does not touch held mail
    q.postern("queue", "flush")
    assert q.ids("hold") == [qid]
    q.postern("queue", "release", "ALL")
    wait_in(q, "deferred", qid)
    q.postern("queue", "delete", qid)
    assert qid not in q.ids("deferred")
    r = q.postern("queue", "show", qid, check=False)
    assert r.returncode == 1


def test_delete_all(q):
    ids = [q.inject(["someone@remote.example"], MSG) for _ in range(3)]
    ids.append(q.inject(["bob@localhost"], MSG, args=["-H"]))
    for qid in ids[:3]:
        wait_in(q, "deferred", qid)
    r = q.postern("queue", "delete", "ALL")
    assert "4 messages deleted" in r.stderr
    assert q.ids("deferred") == [] and q.ids("hold") == []


def test_flush_retries_deferred_now(q):
    q.sink.rcpt_replies["bob@localhost"] = ["451 4.3.0 not now", "250 2.1.5 Ok"]
    qid = q.inject(["bob@localhost"], MSG)
    wait_in(q, "deferred", qid)
    time.sleep(0.5)
    assert q.sink.delivered_to("bob@localhost") == []
    q.postern("queue", "flush")
    q.wait_removed(qid)
    assert len(q.sink.delivered_to("bob@localhost")) == 1


def test_requeue(q):
    qid = q.inject(["someone@remote.example"], MSG)
    wait_in(q, "deferred", qid)
    r = q.postern("queue", "requeue", qid)
    m = re.search(rf"{qid}: requeued as ([0-9A-Z]+)", r.stdout)
    assert m, r.stdout
    new = m.group(1)
    assert qid not in q.ids("deferred")
    wait_in(q, "deferred", new)
    r = q.postern("queue", "list", "--json")
    (obj,) = [json.loads(l) for l in r.stdout.splitlines()]
    assert obj["queue_id"] == new
    assert [x["address"] for x in obj["recipients"]] == ["someone@remote.example"]
