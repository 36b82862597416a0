# SPDX-License-Identifier: MIT
"""RFC 8058 one-click unsubscribe: list-mgr's HTTP role (list_role=http)
as an inet service in master.conf, driven with curl as RFC 8058 describes
(`curl -d List-Unsubscribe=One-Click URL`), plus raw sockets for the
request parser's limits and error answers.

The list's http_unsubscribe_url names the site's https front end; the
plain-HTTP tests play that front end by sending the URL's path and query
to the service on loopback. The https tests run the endpoint with its own
TLS (list_http_tls_security_level=encrypt, the instance's certificate)
and talk to it with curl --cacert and Python's http.client over ssl:
partial reads, plaintext and silent clients on the TLS port, timeouts,
session resumption, and a renewed certificate after `postern reload`.
"""

import http.client
import os
import re
import socket
import ssl
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


# ------------------------------------------------------------------ https

TLS_ON = "-o list_http_tls_security_level=encrypt"


def https(port, url):
    """The member's URL as the https endpoint on loopback serves it."""
    u = urllib.parse.urlsplit(url)
    return f"https://{HOST}:{port}{u.path}?{u.query}"


def target(url):
    u = urllib.parse.urlsplit(url)
    return f"{u.path}?{u.query}"


def tls_ctx(cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def read_all(sock, timeout):
    """Everything sock sends until it closes; (data, closed) where
    closed is False when the timeout ran out first."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                return got, True
            got += b
    except socket.timeout:
        return got, False
    except (ConnectionResetError, ssl.SSLError):
        # a reset or an unexpected EOF under TLS is a close too
        return got, True


def wait_https(port, cafile):
    """Until the endpoint answers over TLS (any HTTP status)."""
    deadline = time.monotonic() + 15
    while True:
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                            "%{http_code}", "--max-time", "5", "--cacert",
                            str(cafile), f"https://{HOST}:{port}/unsubscribe"],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout == "400":
            return
        assert time.monotonic() < deadline, r.stderr
        time.sleep(0.1)


def test_one_click_over_https(instance_factory):
    p = setup_lists(instance_factory)
    cert = p.inst.dir / "tls/cert.pem"
    port = start_http(p, f"{TLS_ON} -o list_http_timeout=3s")
    wait_https(port, cert)
    lst(p, "create", f"team@{DOMAIN}", "--owner", "alice@localhost",
        "posting=open", f"http_unsubscribe_url={FRONT}")
    lst(p, "members", "team", "add", "alice@localhost", "bob@localhost",
        "carol@localhost", "dave@localhost")
    p.send("alice@localhost", [f"team@{DOMAIN}"],
           msg("alice@localhost", f"team@{DOMAIN}", "tls post"))
    urls = {}
    for who in ("bob", "carol", "dave"):
        m, _ = wait_msgs(p, who, lambda m: "tls post" in (m["Subject"] or ""))
        urls[who] = unsub_url(m)

    # curl as RFC 8058 3.2 has it, verifying the instance's certificate
    url = https(port, urls["bob"])
    code, body = curl(url, "--cacert", str(cert))
    assert code == 200 and 'value="One-Click"' in body
    assert "bob@localhost" in body
    code, _ = curl(url.replace("member=bob", "member=carol"), "--cacert",
                   str(cert), "-X", "POST", "-d", "List-Unsubscribe=One-Click")
    assert code == 403
    code, _ = curl(url, "--cacert", str(cert), "-d", "x" * 5000)
    assert code == 413
    assert "bob@localhost" in members(p)
    code, body = curl(url, "--cacert", str(cert), "-X", "POST",
                      "-d", "List-Unsubscribe=One-Click")
    assert code == 200 and "is no longer a member" in body
    assert "bob@localhost" not in members(p)
    p.inst.wait_for_log(r"list-mgr\[\d+\]: \S+: Anonymous TLS connection "
                        r"established from \[127\.0\.0\.1\]:\d+: TLSv1\.3 "
                        r"with cipher \S+ \(\d+/\d+ bits\)")

    # Python's http.client over ssl
    conn = http.client.HTTPSConnection(HOST, port, context=tls_ctx(cert),
                                       timeout=10)
    conn.request("POST", target(urls["carol"]),
                 body="List-Unsubscribe=One-Click",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Connection") == "close"
    assert b"carol@localhost</b> is no longer a member" in r.read()
    conn.close()
    assert "carol@localhost" not in members(p)

    # a request in many small TLS records, the body in its own: the
    # stream over TLS reads it as one (partial reads)
    body = b"List-Unsubscribe=One-Click"
    req = (f"POST {target(urls['dave'])} HTTP/1.1\r\nHost: {HOST}\r\n"
           f"Content-Type: application/x-www-form-urlencoded\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((HOST, port), timeout=10) as raw_sock:
        with tls_ctx(cert).wrap_socket(raw_sock,
                                       server_hostname=HOST) as s:
            for i in range(0, len(req), 9):
                s.sendall(req[i:i + 9])
                time.sleep(0.005)
            time.sleep(0.2)
            s.sendall(body[:5])
            time.sleep(0.2)
            s.sendall(body[5:])
            got, closed = read_all(s, 10)
    assert closed and got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:200]
    assert "dave@localhost" not in members(p)
    assert "alice@localhost" in members(p)

    # plaintext HTTP on the TLS port: no HTTP answer, the connection
    # closes, and the service goes on serving the next client
    mark = p.inst.log_mark()
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(f"POST {target(urls['bob'])} HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        got, closed = read_all(s, 10)
    assert closed and b"HTTP/" not in got, got
    p.inst.wait_for_log(r"list-mgr\[\d+\]: \S+: TLS handshake from "
                        r"\[127\.0\.0\.1\]:\d+ failed: ", start=mark)
    r = subprocess.run(["curl", "-sS", "--max-time", "10",
                        url.replace("https://", "http://")],
                       capture_output=True)
    assert r.returncode != 0 and b"HTTP/" not in r.stdout
    code, _ = curl(url, "--cacert", str(cert))
    assert code == 200

    # a client that never starts the handshake, and one that stops in
    # the middle of its request: dropped after list_http_timeout (3s),
    # with nothing in plaintext
    t0 = time.monotonic()
    with socket.create_connection((HOST, port), timeout=10) as s:
        got, closed = read_all(s, 15)
    assert closed and got == b"" and time.monotonic() - t0 < 10
    t0 = time.monotonic()
    with socket.create_connection((HOST, port), timeout=10) as raw_sock:
        with tls_ctx(cert).wrap_socket(raw_sock, server_hostname=HOST) as s:
            s.sendall(f"GET {target(urls['bob'])} HTTP/1.1\r\nHost:".encode())
            got, closed = read_all(s, 15)
    assert closed and b"HTTP/" not in got and time.monotonic() - t0 < 10
    code, _ = curl(url, "--cacert", str(cert))
    assert code == 200

    # TLS 1.3 session resumption (the instance's shared ticket keys: any
    # worker resumes it)
    ctx = tls_ctx(cert)
    sess = None
    for attempt in range(2):
        with socket.create_connection((HOST, port), timeout=10) as raw_sock:
            with ctx.wrap_socket(raw_sock, server_hostname=HOST,
                                 session=sess) as s:
                s.sendall(f"HEAD {target(urls['bob'])} HTTP/1.1\r\n"
                          f"Host: {HOST}\r\n\r\n".encode())
                got, closed = read_all(s, 10)
                assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
                assert s.session_reused == (attempt == 1)
                sess = s.session


def openssl_cert(d, name, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / f"{name}.key"),
                    "-out", str(d / f"{name}.pem")],
                   check=True, capture_output=True, timeout=60)
    return d / f"{name}.pem", d / f"{name}.key"


def peer_der(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((HOST, port), timeout=10) as raw_sock:
        with ctx.wrap_socket(raw_sock) as s:
            return s.getpeercert(binary_form=True)


def test_https_reload_uses_renewed_certificate(instance_factory, tmp_path):
    """Renewed certificate files (moved into place as certbot does) and
    `postern reload`: new connections get the new certificate."""
    p = setup_lists(instance_factory)
    tls = p.inst.dir / "tls"
    port = start_http(p, TLS_ON)
    wait_https(port, tls / "cert.pem")
    old = ssl.PEM_cert_to_DER_cert((tls / "cert.pem").read_text())
    assert peer_der(port) == old

    new_cert, new_key = openssl_cert(tmp_path, "renewed", "renewed.localhost")
    for src, name, mode in ((new_cert, "cert.pem", 0o644),
                            (new_key, "key.pem", 0o600)):
        tmp = tls / (name + ".new")
        tmp.write_bytes(src.read_bytes())
        os.chmod(tmp, mode)
        os.replace(tmp, tls / name)
    mark = p.inst.log_mark()
    p.inst.reload()
    p.inst.wait_for_log(r"reload: \d+ services", start=mark)
    assert peer_der(port) == ssl.PEM_cert_to_DER_cert(new_cert.read_text())
    code, _ = curl(f"https://{HOST}:{port}/unsubscribe?list=nosuch&member="
                   f"bob%40localhost&token={'a' * 32}", "--cacert",
                   str(new_cert), "-d", "List-Unsubscribe=One-Click")
    assert code == 404
    # the old certificate's trust anchor no longer verifies (curl 60)
    (tmp_path / "old.pem").write_text(ssl.DER_cert_to_PEM_cert(old))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert",
                        str(tmp_path / "old.pem"),
                        f"https://{HOST}:{port}/unsubscribe"],
                       capture_output=True)
    assert r.returncode == 60, r.stderr
    assert not re.search(r"list-mgr.*(killed by signal|exit status)",
                         p.inst.log_text()[mark:])


def test_https_misconfigured_serves_nothing(instance_factory):
    """An unknown level, or encrypt without a certificate: list-mgr stops
    with a fatal log line and nothing is served in plaintext."""
    p = setup_lists(instance_factory)
    port_may = start_http(p, "-o list_http_tls_security_level=may")
    port_nocert = start_http(p, f"{TLS_ON} -o tls_cert_file=")
    for port in (port_may, port_nocert):
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(f"GET /unsubscribe HTTP/1.1\r\nHost: x\r\n\r\n"
                      .encode())
            got, _ = read_all(s, 3)
        assert b"HTTP/" not in got, got
    p.inst.wait_for_log(r"list_http_tls_security_level = may: not none or "
                        r"encrypt")
    p.inst.wait_for_log(r"list_http_tls_security_level = encrypt needs "
                        r"tls_cert_file")
