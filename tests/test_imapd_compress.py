# SPDX-License-Identifier: MIT
"""COMPRESS=DEFLATE (RFC 4978) end to end: raw deflate both ways after
the tagged OK, over plain IMAP and over IMAPS (where the login process
relays TLS and the mail role inflates what the client compressed inside
it)."""

import os
import random
import re
import socket
import zlib

import pytest

from conftest import HOST
from test_imapd import PASSWORD, USER, imap, msg, tls_ctx  # noqa: F401


class ZConn:
    """An IMAP connection that switches to raw deflate on request."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection((HOST, port), timeout=15)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""
        self.z_out = self.z_in = None
        self.wire_in = 0
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.z_out is not None:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.wire_in += len(chunk)
        if self.z_in is not None:
            chunk = self.z_in.decompress(chunk)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln + b"\r\n"

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if m:
                ln += self.read(int(m.group(1)))
                ln += self.line()
            if ln.startswith(tag.encode() + b" "):
                return lines, ln
            lines.append(ln)

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def compress(self):
        _, t = self.cmd("Z", "COMPRESS DEFLATE")
        assert t.startswith(b"Z OK"), t
        assert self.buf == b""
        self.z_out = zlib.compressobj(wbits=-15)
        self.z_in = zlib.decompressobj(wbits=-15)

    def close(self):
        self.sock.close()


def session(inst, tls):
    z = ZConn(inst.port("IMAPS" if tls else "IMAP"), tls=tls)
    _, t = z.cmd("c0", "CAPABILITY")
    assert b"COMPRESS" not in b"".join(_), "advertised before login"
    _, t = z.cmd("L", f"LOGIN {USER} {PASSWORD}")
    assert t.startswith(b"L OK") and b"COMPRESS=DEFLATE" in t, t
    z.compress()
    return z


@pytest.mark.parametrize("tls", [False, True])
def test_compress_deflate(imap, tls):  # noqa: F811
    z = session(imap, tls)
    u, t = z.cmd("a", "CAPABILITY")
    assert t.startswith(b"a OK") and b"COMPRESS=DEFLATE" in u[0]
    _, t = z.cmd("b", "COMPRESS DEFLATE")
    assert t.startswith(b"b NO [COMPRESSIONACTIVE]"), t

    # a big, poorly compressible message both ways: several deflate blocks
    rnd = random.Random(4978)
    body = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ")
                   for _ in range(300000))
    body = "\r\n".join(body[i:i + 76] for i in range(0, len(body), 76))
    m = msg("compressed big", body=body + "\r\n")
    z.send(f"c APPEND INBOX {{{len(m)}}}\r\n")
    assert z.line().startswith(b"+")
    z.send(m + b"\r\n")
    _, t = z.until("c")
    assert t.startswith(b"c OK"), t
    for i in range(20):
        small = msg(f"small {i}")
        z.send(f"d{i} APPEND INBOX {{{len(small)}+}}\r\n".encode() + small + b"\r\n")
    for i in range(20):
        _, t = z.until(f"d{i}")
        assert t.startswith(f"d{i} OK".encode()), t

    u, t = z.cmd("e", "SELECT INBOX")
    assert t.startswith(b"e OK") and b"* 21 EXISTS\r\n" in u
    before = z.wire_in
    u, t = z.cmd("f", "FETCH 1 BODY.PEEK[]")
    assert t.startswith(b"f OK"), t
    assert m in u[0]
    assert z.wire_in - before < len(m), "reply was not compressed"
    u, t = z.cmd("g", "UID SEARCH SUBJECT small")
    assert u[0].split()[2:] == [str(i).encode() for i in range(2, 22)]
    u, t = z.cmd("h", "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)")
    assert t.startswith(b"h OK") and len(u) == 21

    # IDLE: the continuation, an update from another session, DONE
    z.send("i IDLE\r\n")
    assert z.line().startswith(b"+")
    other = session(imap, False)
    small = msg("while idling")
    other.send(f"x APPEND INBOX {{{len(small)}+}}\r\n".encode() + small + b"\r\n")
    assert other.until("x")[1].startswith(b"x OK")
    other.close()
    assert z.line() == b"* 22 EXISTS\r\n"
    z.send("DONE\r\n")
    _, t = z.until("i")
    assert t.startswith(b"i OK"), t

    u, t = z.cmd("j", "LOGOUT")
    assert u[0].startswith(b"* BYE") and t.startswith(b"j OK")
    z.close()


def test_compress_refusals(imap):  # noqa: F811
    z = ZConn(imap.port("IMAP"))
    _, t = z.cmd("a", "COMPRESS DEFLATE")
    assert not t.startswith(b"a OK"), t     # not before login
    _, t = z.cmd("L", f"LOGIN {USER} {PASSWORD}")
    assert t.startswith(b"L OK")
    _, t = z.cmd("b", "COMPRESS GZIP")
    assert t.startswith(b"b BAD"), t
    _, t = z.cmd("c", "COMPRESS")
    assert t.startswith(b"c BAD"), t
    # garbage instead of deflate ends the session, not the server
    z.compress()
    z.sock.sendall(os.urandom(64) + b"\xff" * 64)
    z.sock.settimeout(10)
    try:
        while z.sock.recv(4096):
            pass
    except (ConnectionError, socket.timeout):
        pass
    z.close()
    z = session(imap, False)
    _, t = z.cmd("d", "NOOP")
    assert t.startswith(b"d OK"), t
    z.close()
