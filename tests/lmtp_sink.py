# SPDX-License-Identifier: MIT
"""A small, real, scriptable LMTP (and SMTP) server for the queue tests.

    sink = LmtpSink(folder, unix_path=None, port=None)   # one of the two
    sink.start()
    sink.rcpt_replies["bob@localhost"] = ["451 4.3.0 later", "250 2.1.5 ok"]
    ...
    sink.wait_for(lambda: len(sink.deliveries) == 2)
    sink.stop()

It speaks RFC 2033 LMTP over a UNIX or TCP socket (LHLO, MAIL, RCPT,
DATA with dot-unstuffing, BDAT, RSET, NOOP, QUIT; with smtp=True it is an
SMTP server: EHLO/HELO and one reply after DATA). Each recipient accepted
after DATA is one entry in sink.deliveries (a dict: rcpt, sender, token,
data as bytes exactly as received after unstuffing) and one file
NNNN.eml in folder.

Scripting:
  rcpt_replies[addr]  replies to RCPT TO for addr, one per attempt (the
                      last repeats); default "250 2.1.5 Ok"
  data_replies[addr]  the per-recipient reply after DATA, same rules;
                      default "250 2.0.0 Ok: delivered"
  stall_after_data    seconds to sleep after storing a message and
                      before replying (for crash tests)
  advertise_token     advertise XPOSTERN-TOKEN (default True): a
                      recipient whose XTOKEN was delivered before is
                      acknowledged without storing a second copy
                      (counted in sink.dedupes)
  extensions          extra LHLO/EHLO keywords (e.g. "DSN")
  pipelining          advertise PIPELINING (default True)
Every command line received is in sink.commands; sink.max_sessions is
the most connections it had open at once.
"""

import os
import socket
import socketserver
import threading
import time
from pathlib import Path


def xtext_decode(s):
    out = bytearray()
    i = 0
    b = s.encode()
    while i < len(b):
        if b[i] == ord("+") and i + 2 < len(b) + 0:
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode(errors="replace")


class _Handler(socketserver.StreamRequestHandler):
    timeout = 120

    def setup(self):
        super().setup()
        self.sink = self.server.sink

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.sink
        with sink.lock:
            sink.sessions += 1
            sink.max_sessions = max(sink.max_sessions, sink.sessions)
        self._counted = True
        try:
            self._session()
        finally:
            self._leave()

    def _leave(self):
        """The session no longer counts: at QUIT, before the 221 goes
        out (the client may open its next session the moment it reads
        it), or when the connection ends."""
        if self._counted:
            self._counted = False
            with self.sink.lock:
                self.sink.sessions -= 1

    def _session(self):
        sink = self.sink
        proto_lmtp = not sink.smtp
        self.reply("220 lmtp-sink ready")
        sender = None
        rcpts = []       # (addr, token)
        while True:
            raw = self.rfile.readline(8192)
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode(errors="replace")
            with sink.lock:
                sink.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("LHLO", "EHLO"):
                if (verb == "LHLO") != proto_lmtp:
                    self.reply("500 5.5.1 wrong greeting verb")
                    continue
                exts = ["ENHANCEDSTATUSCODES", "8BITMIME",
                        "CHUNKING", "BINARYMIME", "SIZE 0"]
                if sink.pipelining:
                    exts.insert(0, "PIPELINING")
                exts += sink.extensions
                if sink.advertise_token:
                    exts.append("XPOSTERN-TOKEN")
                self.wfile.write(b"250-lmtp-sink\r\n")
                for i, e in enumerate(exts):
                    sep = " " if i == len(exts) - 1 else "-"
                    self.wfile.write(f"250{sep}{e}\r\n".encode())
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 lmtp-sink")
            elif verb == "MAIL":
                arg = line[5:].strip()
                sender = arg[arg.index("<") + 1:arg.index(">")]
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                arg = line[5:].strip()
                addr = arg[arg.index("<") + 1:arg.index(">")]
                token = None
                for p in arg[arg.index(">") + 1:].split():
                    if p.upper().startswith("XTOKEN="):
                        token = xtext_decode(p[7:])
                r = sink._next(sink.rcpt_replies, addr, "250 2.1.5 Ok")
                if r.startswith("2"):
                    rcpts.append((addr, token))
                self.reply(r)
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                self._deliver(sender, rcpts, bytes(data), proto_lmtp)
                rcpts = []
            elif verb == "BDAT":
                parts = line.split()
                n = int(parts[1])
                data = self.rfile.read(n)
                if len(parts) > 2 and parts[2].upper() == "LAST":
                    self._deliver(sender, rcpts, data, proto_lmtp)
                    rcpts = []
                else:
                    self.reply("250 2.0.0 chunk ok")
            elif verb == "RSET":
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self._leave()
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 unknown command")

    def _deliver(self, sender, rcpts, data, per_rcpt):
        sink = self.sink
        replies = []
        for addr, token in rcpts:
            r = sink._next(sink.data_replies, addr, "250 2.0.0 Ok: delivered")
            if r.startswith("2"):
                with sink.lock:
                    if token is not None and token in sink.tokens:
                        sink.dedupes += 1
                        r = "250 2.0.0 Ok: already delivered (token %s)" % token
                    else:
                        if token is not None:
                            sink.tokens.add(token)
                        sink._store(addr, sender, token, data)
            replies.append(r)
        if sink.stall_after_data:
            time.sleep(sink.stall_after_data)
        if per_rcpt:
            for r in replies:
                self.reply(r)
        else:
            self.reply(replies[0] if replies else "554 5.5.1 no recipients")


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LmtpSink:
    def __init__(self, folder, unix_path=None, port=None, host="127.0.0.1",
                 smtp=False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.unix_path = str(unix_path) if unix_path else None
        self.port = port
        self.host = host
        self.smtp = smtp
        self.lock = threading.RLock()
        self.deliveries = []
        self.commands = []
        self.tokens = set()
        self.dedupes = 0
        self.rcpt_replies = {}
        self.data_replies = {}
        self.stall_after_data = 0
        self.advertise_token = True
        self.extensions = []
        self.pipelining = True
        self.sessions = 0
        self.max_sessions = 0
        self._attempts = {}
        self.server = None
        self.thread = None

    def _next(self, table, addr, default):
        key = addr.lower()
        seq = table.get(addr) or table.get(key)
        if seq is None:
            return default
        if isinstance(seq, str):
            return seq
        n = self._attempts.get((id(table), key), 0)
        self._attempts[(id(table), key)] = n + 1
        return seq[min(n, len(seq) - 1)]

    def _store(self, addr, sender, token, data):
        n = len(self.deliveries)
        path = self.folder / f"{n:04d}.eml"
        path.write_bytes(data)
        self.deliveries.append({"rcpt": addr, "sender": sender,
                                "token": token, "data": data, "path": path})

    def start(self):
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
            self.server = _UnixServer(self.unix_path, _Handler)
            os.chmod(self.unix_path, 0o666)
        else:
            self.server = _TcpServer((self.host, self.port or 0), _Handler)
            self.port = self.server.server_address[1]
        self.server.sink = self
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass

    @property
    def nexthop(self):
        if self.unix_path:
            return f"unix:{self.unix_path}"
        return f"inet:{self.host}:{self.port}"

    def delivered_to(self, addr):
        with self.lock:
            return [d for d in self.deliveries if d["rcpt"].lower() == addr.lower()]

    def wait_for(self, cond, timeout=20.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if cond():
                    return True
            time.sleep(0.05)
        raise AssertionError(f"lmtp sink: timed out waiting for {what}; "
                             f"deliveries={[d['rcpt'] for d in self.deliveries]}")
