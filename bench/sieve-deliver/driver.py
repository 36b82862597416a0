# SPDX-License-Identifier: MIT
"""LMTP load driver for bench/sieve-deliver: MESSAGES messages (rules.py
mix) to USERS users over CONNS parallel LMTP connections (one process
each), one recipient per transaction. Prints "rate=N" (msgs/s)."""

import argparse
import multiprocessing
import socket
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import rules  # noqa: E402


class Lmtp:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")
        self.reply()
        self.cmd(b"LHLO bench.example.org")

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            if line[3:4] != b"-":
                return line

    def cmd(self, c):
        self.s.sendall(c + b"\r\n")
        r = self.reply()
        if not r.startswith(b"2") and not r.startswith(b"3"):
            raise RuntimeError(f"{c!r}: {r!r}")
        return r

    def send(self, user, data):
        self.s.sendall(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<"
                       + user.encode() + b">\r\nDATA\r\n")
        for _ in range(3):
            r = self.reply()
            if r[:1] not in (b"2", b"3"):
                raise RuntimeError(r)
        body = data.replace(b"\r\n.", b"\r\n..")
        self.s.sendall(body + b".\r\n")
        r = self.reply()
        if not r.startswith(b"2"):
            raise RuntimeError(r)


def work(args):
    port, start, count, users, size = args
    c = Lmtp(port)
    for i in range(start, start + count):
        c.send(f"user{i % users:04d}", rules.message(i, size))
    c.s.sendall(b"QUIT\r\n")
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    per = a.messages // a.connections
    jobs = [(a.port, k * per, per, a.users, a.size) for k in range(a.connections)]
    t0 = time.monotonic()
    with multiprocessing.Pool(a.connections) as p:
        done = sum(p.map(work, jobs))
    dt = time.monotonic() - t0
    print(f"messages={done} seconds={dt:.2f} rate={done / dt:.1f}")


if __name__ == "__main__":
    main()
