#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""LMTP delivery load generator for bench/lmtp-deliver.

    driver.py --host 127.0.0.1 --port P --messages 10000 --size 4096 \
              --connections 8 --users 1000 [--user-format user%04d] \
              [--domain localhost] [--tokens]

Delivers --messages messages of --size bytes (a small header and a body
of printable lines) over --connections parallel LMTP connections (one
process each), message i to user (i mod --users). Each message is one
transaction: MAIL, RCPT and DATA pipelined (RFC 2920), then the content,
then the one per-recipient reply. Every reply must be 2xx/3xx or the run
fails. Prints one line: "messages=N seconds=S rate=R" (messages/s).
"""

import argparse
import multiprocessing
import socket
import sys
import time


def make_message(i, size):
    head = (f"From: bench@example.org\r\nTo: rcpt@localhost\r\n"
            f"Subject: bench message {i}\r\nMessage-ID: <{i}.{time.time()}@bench>\r\n"
            f"\r\n").encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+.\r\n"
    body = bytearray()
    while len(head) + len(body) < size:
        body += line
    return head + bytes(body[:max(0, size - len(head) - 2)]) + b"\r\n"


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.expect(2)

    def expect(self, cls):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line[3:4] != b"-":
                break
        if line[0:1] != str(cls).encode():
            raise RuntimeError(f"unexpected reply {line!r}")
        return line

    def send(self, data):
        self.s.sendall(data)


def worker(args, first, count, out):
    c = Conn(args.host, args.port)
    c.send(b"LHLO bench.example\r\n")
    c.expect(2)
    msg = make_message(first, args.size)
    for i in range(first, first + count):
        user = args.user_format % (i % args.users)
        rcpt = f"{user}@{args.domain}" if args.domain else user
        tok = f" XTOKEN=BENCH{args.run_id}/{i}" if args.tokens else ""
        c.send(f"MAIL FROM:<bench@example.org>\r\nRCPT TO:<{rcpt}>{tok}\r\nDATA\r\n".encode())
        c.expect(2)
        c.expect(2)
        c.expect(3)
        c.send(msg + b".\r\n")
        c.expect(2)
    c.send(b"QUIT\r\n")
    c.expect(2)
    out.put(count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--users", type=int, default=1)
    ap.add_argument("--user-format", default="user%04d")
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--tokens", action="store_true")
    ap.add_argument("--run-id", default=str(int(time.time())))
    args = ap.parse_args()

    q = multiprocessing.Queue()
    per = args.messages // args.connections
    procs = []
    t0 = time.monotonic()
    for k in range(args.connections):
        n = per if k < args.connections - 1 else args.messages - per * k
        p = multiprocessing.Process(target=worker, args=(args, k * per, n, q))
        p.start()
        procs.append(p)
    done = 0
    for p in procs:
        p.join()
        if p.exitcode != 0:
            print(f"worker failed (exit {p.exitcode})", file=sys.stderr)
            sys.exit(1)
    while not q.empty():
        done += q.get()
    dt = time.monotonic() - t0
    if done != args.messages:
        print(f"only {done} of {args.messages} delivered", file=sys.stderr)
        sys.exit(1)
    print(f"messages={done} seconds={dt:.3f} rate={done / dt:.1f}")


if __name__ == "__main__":
    main()
