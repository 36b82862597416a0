# SPDX-License-Identifier: MIT
"""A list gatewayed to a newsgroup through news-gw, against a real INN
(tests/inn_fixture.py): `postern list set L newsgroup=G` makes list-mgr
queue each accepted post once more, to G@$list_news_gateway_domain,
which qmgr routes to news-gw (LMTP), which posts it to INN. The group is
also gatewayed back to the list (news_to_mail_maps, pulled): an article
from a news reader reaches the members once and does not go back to
news, and the list's own post does not come back to the members
(news-gw's history, and list-mgr's own X-Loop check when the article is
fed back to it directly)."""

import time

import pytest

import inn_fixture
from conftest import HOST
from inn_fixture import Inn
from pipeline import make_pipeline, start_pipeline
from test_list import (DOMAIN, count_subject, lmtp, lst, msg, parse,
                       wait_msgs)

NEWS = "news.example.test"
GROUP = "local.test"

_skip = inn_fixture.skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")


@pytest.fixture
def inn():
    i = Inn(groups=(GROUP,))
    i.start()
    yield i
    i.cleanup()


def setup_news(instance_factory, inn):
    p = make_pipeline(instance_factory, users=("alice", "bob", "carol"),
                      start=False)
    inst, d = p.inst, p.inst.dir
    (d / "transport").write_text(
        f"{DOMAIN} lmtp:unix:{d}/spool/private/list-mgr\n"
        f"{NEWS} lmtp:unix:{d}/spool/private/news-gw\n")
    (d / "newsgroups").write_text(f"{GROUP}@{NEWS} {GROUP}\n")
    (d / "news2mail").write_text(f"{GROUP} team@{DOMAIN}\n")
    for k, v in {"transport_maps": f"file:{d}/transport",
                 "list_dmarc_lookup": "no",
                 "list_news_gateway_domain": NEWS,
                 "newsgroups_maps": f"file:{d}/newsgroups",
                 "news_to_mail_maps": f"file:{d}/news2mail",
                 "news_gw_server": f"{HOST}:{inn.port}",
                 "news_gw_pull_server": f"{HOST}:{inn.port}",
                 "news_gw_pull_groups": GROUP,
                 "news_gw_path_identity": "gw.test",
                 "news_gw_timeout": "20s"}.items():
        inst.set_config(k, v)
    inst.remove_services(("news-gw",))
    inst.add_service("news-gw unix y - n - - news-gw")
    inst.add_service("news-pull unix y - n 1 1 news-gw -o news_gw_role=pull")
    start_pipeline(p)
    deadline = time.monotonic() + 15
    while not ((d / "spool/private/list-mgr").exists()
               and (d / "spool/private/news-gw").exists()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return p


def test_list_to_newsgroup_and_back(instance_factory, inn):
    p = setup_news(instance_factory, inn)
    lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open")
    lst(p, "set", "team", f"newsgroup={GROUP}")
    assert f"newsgroup = {GROUP}" in lst(p, "show", "team").stdout
    r = lst(p, "set", "team", "newsgroup=../bad", check=False)
    assert r.returncode != 0
    lst(p, "members", "team", "add", "bob@localhost", "carol@localhost")

    # a post: to the members and, once, to the group on INN
    mid = f"<{time.time_ns()}.list@example.org>"
    post = msg("Alice <alice@example.org>", f"team@{DOMAIN}", "gatewayed post").replace(
        b"Message-ID: <", b"X-Old-ID: <", 1)
    post = f"Message-ID: {mid}\r\n".encode() + post
    p.send("alice@localhost", [f"team@{DOMAIN}"], post)
    wait_msgs(p, "bob", lambda m: "gatewayed post" in (m["Subject"] or ""))
    lines = inn.wait_article(mid, timeout=40)
    text = b"\n".join(lines).decode(errors="replace")
    assert f"Newsgroups: {GROUP}" in text
    assert "Subject: gatewayed post" in text
    assert f"X-Loop: team@{DOMAIN}" in text
    assert "List-Unsubscribe-Post" not in text
    assert inn.group_count(GROUP) == 1
    assert f"gatewayed to {GROUP}" in p.inst.log_text()

    # the puller sees the article: news-gw's history knows it came from
    # mail, so it does not go back to the list
    time.sleep(4)
    p.wait_queue_empty()
    assert count_subject(p, "bob", "gatewayed post") == 1
    assert count_subject(p, "carol", "gatewayed post") == 1

    # list-mgr's own guard: the article as news-gw would mail it (if its
    # history were lost) is dropped as a loop
    article = b"\r\n".join(lines) + b"\r\n"
    article = article.replace(b"Path:", b"X-Old-Path:", 1)
    mark = p.inst.log_mark()
    r = lmtp(p, "", f"team@{DOMAIN}", article)
    assert r.startswith("250") and "loop" in r
    p.inst.wait_for_log(r"mail loop: post discarded", start=mark, timeout=10)

    # an article from a news reader comes to the members once (pulled),
    # and is not posted back to the group
    nmid = f"<{time.time_ns()}.reader@example.net>"
    inn.post([b"From: Reader <reader@example.net>",
              f"Newsgroups: {GROUP}".encode(), b"Subject: from the news side",
              f"Message-ID: {nmid}".encode(), b"", b"hello list"])
    m, _ = wait_msgs(p, "bob", lambda m: "from the news side" in (m["Subject"] or ""),
                     timeout=40)
    assert m["List-Id"] == f"<team.{DOMAIN}>"
    p.wait_queue_empty()
    time.sleep(3)
    p.wait_queue_empty()
    assert count_subject(p, "bob", "from the news side") == 1
    assert count_subject(p, "carol", "from the news side") == 1
    assert inn.group_count(GROUP) == 2   # the list's post and the reader's
    assert count_subject(p, "bob", "gatewayed post") == 1
