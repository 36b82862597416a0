# SPDX-License-Identifier: MIT
"""RFC 8058 one-click unsubscribe: list-mgr's HTTP role (list_role=http)
as an inet service in master.conf, driven with curl as RFC 8058 describes
(`curl -d List-Unsubscribe=One-Click URL`), plus raw sockets for the
request parser's limits and error answers.

The list's http_unsubscribe_url names the site's https front end; the
test plays that front end by sending the URL's path and query to the
service on loopback.
"""

import re
import socket
import subprocess
import time
import urllib.parse

from conftest import HOST, free_port_base, port_is_free
from test_list import DOMAIN, count_subject, lst, msg, setup_lists, wait_msgs

FRONT = "https://lists.example.test/unsubscribe"


def http_port():
    for _ in range(100):
        port = free_port_base() + 80
        if port_is_free(port):
            return port
    raise RuntimeError("no free port")


def start_http(p, extra=""):
    port = http_port()
    p.inst.add_service(f"{HOST}:{port} inet n - n - - list-mgr "
                       f"-o list_role=http {extra}")
    p.inst.reload()
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return port
        except OSError:
            assert time.monotonic() < deadline, "list-mgr http not listening"
            time.sleep(0.05)


def curl(url, *args):
    """(status, body) of one curl request."""
    r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
                        "--max-time", "20", *args, url],
                       capture_output=True, check=True)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), body.decode(errors="replace")


def raw(port, data, timeout=10):
    """Send raw bytes; the status code of the answer (0 if none)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except socket.timeout:
            pass
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return int(m.group(1)) if m else 0


def unsub_url(m):
    """The https URL out of a List-Unsubscribe field."""
    urls = re.findall(r"<([^>]+)>", " ".join(m["List-Unsubscribe"].split()))
    assert urls[0] == f"mailto:team-leave@{DOMAIN}"
    assert urls[1].startswith(FRONT + "?")
    return urls[1]


def local(port, url):
    """The front end's URL as the service on loopback sees it."""
    u = urllib.parse.urlsplit(url)
    return f"http://{HOST}:{port}{u.path}?{u.query}"


def members(p):
    return lst(p, "members", "team").stdout


def test_one_click_unsubscribe(instance_factory):
    p = setup_lists(instance_factory)
    port = start_http(p, "-o list_http_timeout=2s")
    lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open", f"http_unsubscribe_url={FRONT}")
    lst(p, "members", "team", "add", "alice@localhost", "bob@localhost",
        "carol@localhost")

    p.send("alice@localhost", [f"team@{DOMAIN}"],
           msg("alice@localhost", f"team@{DOMAIN}", "one-click post"))
    mb, _ = wait_msgs(p, "bob", lambda m: "one-click post" in (m["Subject"] or ""))
    mc, _ = wait_msgs(p, "carol", lambda m: "one-click post" in (m["Subject"] or ""))
    assert mb["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    bob_url, carol_url = unsub_url(mb), unsub_url(mc)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(bob_url).query)
    assert q["list"] == ["team"] and q["member"] == ["bob@localhost"]
    assert re.fullmatch(r"[0-9a-f]{32}", q["token"][0])
    assert bob_url != carol_url
    # the archive has no member's token
    arch = list((p.inst.dir / "data/lists/team/archive").glob("*.mbox"))
    text = arch[0].read_text()
    assert "one-click post" in text and "token=" not in text
    assert "List-Unsubscribe-Post" not in text

    url = local(port, bob_url)
    # GET: a page with a form, nothing changes (link scanners)
    code, body = curl(url)
    assert code == 200
    assert 'method="post"' in body and 'value="One-Click"' in body
    assert "bob@localhost" in body
    code, _ = curl(url, "-I")
    assert code == 200
    assert "bob@localhost" in members(p)

    # forged tokens: 403, the member stays
    forged = url.replace(q["token"][0], "0" * 32)
    code, _ = curl(forged, "-d", "List-Unsubscribe=One-Click")
    assert code == 403
    carol_token = urllib.parse.parse_qs(
        urllib.parse.urlsplit(carol_url).query)["token"][0]
    code, _ = curl(url.replace(q["token"][0], carol_token),
                   "-d", "List-Unsubscribe=One-Click")
    assert code == 403
    code, _ = curl(url.replace("list=team", "list=nosuch"),
                   "-d", "List-Unsubscribe=One-Click")
    assert code == 404
    assert "bad token for <bob@localhost>" in p.inst.log_text()

    # wrong method, path, body, size
    code, _ = curl(url, "-X", "PUT", "-d", "x")
    assert code == 405
    code, _ = curl(url.replace("/unsubscribe?", "/other?"),
                   "-d", "List-Unsubscribe=One-Click")
    assert code == 404
    code, _ = curl(url, "-d", "List-Unsubscribe=Yes")
    assert code == 400
    code, _ = curl(url, "-d", "x" * 5000)
    assert code == 413
    code, _ = curl(url.replace("member=", "member=x&member="),
                   "-d", "List-Unsubscribe=One-Click")
    assert code == 400
    assert "bob@localhost" in members(p)

    # the request parser's limits, by hand
    path = url.split(str(port), 1)[1]
    assert raw(port, b"GARBAGE\r\n\r\n") == 400
    assert raw(port, f"GET {path} HTTP/1.1\r\n\r\n".encode()) == 400  # no Host
    assert raw(port, f"GET {path} HTTP/2.0\r\nHost: x\r\n\r\n".encode()) == 505
    assert raw(port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n") == 414
    assert raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nX: ".encode()
               + b"a" * 5000 + b"\r\n\r\n") == 431
    many = "".join(f"X-{i}: y\r\n" for i in range(300))
    assert raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()) == 431
    assert raw(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:"
               f" chunked\r\n\r\n".encode()) == 501
    assert raw(port, f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 411
    assert raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"
               .encode()) == 400
    assert raw(port, f"GET {path} HTTP/1.1\nHost: x\n\n".encode()) == 400
    # a slow client: 408 after list_http_timeout (2s here)
    t0 = time.monotonic()
    assert raw(port, f"GET {path} HTTP/1.1\r\nHost:".encode(), timeout=15) == 408
    assert time.monotonic() - t0 < 10
    assert "bob@localhost" in members(p)

    # the real one-click POST (RFC 8058 3.2): 200, bob is out and told
    code, _ = curl(url, "-d", "List-Unsubscribe=One-Click")
    assert code == 200
    assert "bob@localhost" not in members(p)
    assert "alice@localhost" in members(p) and "carol@localhost" in members(p)
    wait_msgs(p, "bob", lambda m: "You have left the team list" in (m["Subject"] or ""))
    # repeated: still 200, nothing else changes
    code, _ = curl(url, "-d", "List-Unsubscribe=One-Click")
    assert code == 200
    assert "carol@localhost" in members(p)

    p.send("alice@localhost", [f"team@{DOMAIN}"],
           msg("alice@localhost", f"team@{DOMAIN}", "after leaving"))
    wait_msgs(p, "carol", lambda m: "after leaving" in (m["Subject"] or ""))
    p.wait_queue_empty()
    time.sleep(0.3)
    assert count_subject(p, "bob", "after leaving") == 0


def test_no_url_no_one_click(instance_factory):
    """Without http_unsubscribe_url: mailto only, and the endpoint knows
    nothing of the list (404) even with a well-formed request."""
    p = setup_lists(instance_factory)
    port = start_http(p)
    lst(p, "create", f"plain@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open")
    lst(p, "members", "plain", "add", "bob@localhost")
    p.send("alice@localhost", [f"plain@{DOMAIN}"],
           msg("alice@localhost", f"plain@{DOMAIN}", "no url"))
    m, _ = wait_msgs(p, "bob", lambda m: "no url" in (m["Subject"] or ""))
    assert m["List-Unsubscribe"] == f"<mailto:plain-leave@{DOMAIN}>"
    assert m["List-Unsubscribe-Post"] is None
    code, _ = curl(f"http://{HOST}:{port}/unsubscribe?list=plain&member="
                   f"bob%40localhost&token={'a' * 32}",
                   "-d", "List-Unsubscribe=One-Click")
    assert code == 404
    assert "bob@localhost" in lst(p, "members", "plain").stdout
