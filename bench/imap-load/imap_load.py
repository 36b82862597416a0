#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""imap-load - a fixed, seeded IMAP workload against any server.

    imap_load.py --host 127.0.0.1 --port 10143 --user alice --password pw \
        --conns 50 --seconds 20 [--seed 1] [--rss-pattern imapd-mail]

Each connection: LOGIN, SELECT INBOX, FETCH 1:* (FLAGS UID RFC822.SIZE
ENVELOPE), then a seeded mix of UID FETCH BODY.PEEK[] of random messages,
STORE +FLAGS, SEARCH, APPEND, NOOP, and an IDLE woken by another
connection's APPEND; LOGOUT at the end. Prints ops/s and p50/p99 latency
per command, and, with --rss-pattern, the RSS of the processes whose
command line contains the pattern while all connections sit idle
(divided by the connection count: memory per idle connection).

Run it against Postern and Dovecot (Maildir) on the same machine, same
mailbox contents, in one session; compare the ratios.
"""
import argparse
import imaplib
import json
import os
import random
import re
import statistics
import threading
import time
from collections import defaultdict

MSG = (b"From: bench <bench@example.org>\r\nTo: u@example.com\r\n"
       b"Subject: load %d\r\nMessage-ID: <%d.bench@example.org>\r\n\r\n" +
       b"line of text for the body\r\n" * 40)


def rss_of(pattern):
    total = 0
    for pid in os.listdir("/proc"):
        # not ourselves: our command line holds the pattern too
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            if pattern.encode() not in cmd:
                continue
            # PSS: shared library pages divided among the sharers
            m = re.search(r"^Pss:\s+(\d+) kB", open(f"/proc/{pid}/smaps_rollup").read(), re.M)
        except OSError:
            continue
        if m:
            total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prefill", type=int, default=200)
    ap.add_argument("--rss-pattern", default=None)
    ap.add_argument("--json", default=None,
                    help="also write the figures to this file as JSON")
    ap.add_argument("--big", action="store_true",
                    help="time SELECT, FETCH 1:* (UID FLAGS), UID SEARCH and "
                    "FETCH of the last message on a large INBOX instead")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if a.big:
        return big(a)

    m = imaplib.IMAP4(a.host, a.port)
    m.login(a.user, a.password)
    typ, d = m.select("INBOX")
    have = int(d[0])
    for i in range(have, a.prefill):
        m.append("INBOX", None, None, MSG % (i, i))
    m.logout()

    lat = defaultdict(list)
    lock = threading.Lock()
    stop = [0.0]    # set when every connection is logged in and idle
    idle_ready = threading.Barrier(a.conns + 1)
    release = threading.Event()
    errors = []

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        r = fn(*args)
        dt = time.perf_counter() - t0
        with lock:
            lat[name].append(dt)
        return r

    def worker(n):
        rnd = random.Random(a.seed * 1000 + n)
        try:
            c = imaplib.IMAP4(a.host, a.port)
            timed("LOGIN", c.login, a.user, a.password)
            timed("SELECT", c.select, "INBOX")
            timed("FETCH_ALL", c.fetch, "1:*", "(FLAGS UID RFC822.SIZE ENVELOPE)")
            idle_ready.wait()
            release.wait()
            while time.monotonic() < stop[0]:
                op = rnd.random()
                if op < 0.45:
                    uid = rnd.randint(1, a.prefill)
                    timed("UID_FETCH_BODY", c.uid, "FETCH", str(uid), "(BODY.PEEK[])")
                elif op < 0.65:
                    seq = rnd.randint(1, a.prefill)
                    timed("STORE", c.store, str(seq), "+FLAGS", "(\\Seen)")
                elif op < 0.80:
                    timed("SEARCH", c.search, None, "UNSEEN", "SUBJECT", "load")
                elif op < 0.85:
                    i = rnd.randint(0, 10**9)
                    timed("APPEND", c.append, "INBOX", None, None, MSG % (i, i))
                elif op < 0.90 and n % 10 == 0:
                    # IDLE until another connection's APPEND wakes us
                    t0 = time.perf_counter()
                    tag = c._new_tag()
                    c.send(tag + b" IDLE\r\n")
                    while not c.readline().startswith(b"+"):
                        pass
                    w = imaplib.IMAP4(a.host, a.port)
                    w.login(a.user, a.password)
                    w.append("INBOX", None, None, MSG % (0, n))
                    line = c.readline()
                    c.send(b"DONE\r\n")
                    while not c.readline().startswith(tag):
                        pass
                    w.logout()
                    with lock:
                        lat["IDLE_WAKEUP"].append(time.perf_counter() - t0)
                    assert b"EXISTS" in line or b"FETCH" in line, line
                else:
                    timed("NOOP", c.noop)
            timed("LOGOUT", c.logout)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            try:
                idle_ready.abort()
            except Exception:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.conns)]
    for t in threads:
        t.start()
    try:
        idle_ready.wait()
    except threading.BrokenBarrierError:
        release.set()
        for t in threads:
            t.join()
        raise SystemExit(f"a connection failed: {errors[:3]}")
    time.sleep(0.5)
    rss = None
    if a.rss_pattern:
        rss = rss_of(a.rss_pattern)
        print(f"PSS of '{a.rss_pattern}' processes with {a.conns} idle "
              f"authenticated connections: {rss} kB = {rss / a.conns:.0f} kB/conn")
    t0 = time.monotonic()
    stop[0] = t0 + a.seconds
    release.set()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    total = sum(len(v) for k, v in lat.items() if k not in ("LOGIN", "SELECT", "FETCH_ALL"))
    print(f"conns={a.conns} seconds={wall:.1f} ops={total} ops/s={total / wall:.0f} errors={len(errors)}")
    for k in sorted(lat):
        v = sorted(lat[k])
        p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
        print(f"  {k:16s} n={len(v):6d} p50={statistics.median(v) * 1000:8.2f} ms "
              f"p99={p99 * 1000:8.2f} ms")
    if errors:
        print("errors:", errors[:3])
    if a.json:
        res = {"conns": a.conns, "ops_s": total / wall, "errors": len(errors),
               "pss_kb_per_conn": rss / a.conns if rss is not None else None,
               "p50_ms": {k: statistics.median(v) * 1000 for k, v in lat.items()},
               "p99_ms": {k: sorted(v)[min(len(v) - 1, int(len(v) * 0.99))] * 1000
                          for k, v in lat.items()}}
        with open(a.json, "w") as f:
            json.dump(res, f)


def raw_select_fetch(a):
    """SELECT and FETCH 1:* (UID FLAGS) timed on the wire: from sending the
    command until its tagged OK has been read, reading lines only (no
    imaplib parsing, which costs far more than either server for 100,000
    responses). Both servers send the same ~3.5 MB."""
    import socket
    s = socket.create_connection((a.host, a.port))
    f = s.makefile("rb")
    f.readline()

    def cmd(tag, c):
        s.sendall(f"{tag} {c}\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line.startswith(tag.encode() + b" "):
                assert line.split()[1] == b"OK", line
                return

    cmd("a", f"LOGIN {a.user} {a.password}")
    out = {}
    t0 = time.perf_counter()
    cmd("b", "SELECT INBOX")
    out["RAW_SELECT"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cmd("c", "FETCH 1:* (UID FLAGS)")
    out["RAW_FETCH_UID_FLAGS"] = time.perf_counter() - t0
    out["RAW_SELECT_FETCH"] = out["RAW_SELECT"] + out["RAW_FETCH_UID_FLAGS"]
    cmd("d", "LOGOUT")
    s.close()
    return out


def big(a):
    """The large-mailbox figures: the first (cold) round and the median of
    the next a.repeat rounds, each on a fresh connection."""
    rounds = []
    for r in range(a.repeat + 1):
        c = imaplib.IMAP4(a.host, a.port)
        c.login(a.user, a.password)
        t = {}
        t0 = time.perf_counter()
        typ, d = c.select("INBOX")
        t["SELECT"] = time.perf_counter() - t0
        n = int(d[0])
        t0 = time.perf_counter()
        typ, d = c.fetch("1:*", "(UID FLAGS)")
        t["FETCH_UID_FLAGS"] = time.perf_counter() - t0
        assert typ == "OK" and len(d) == n, (typ, len(d), n)
        t0 = time.perf_counter()
        typ, d = c.uid("SEARCH", None, "UNSEEN", "LARGER", "2000")
        t["UID_SEARCH"] = time.perf_counter() - t0
        assert typ == "OK"
        t0 = time.perf_counter()
        typ, d = c.fetch(str(n), "(BODY.PEEK[])")
        t["FETCH_LAST"] = time.perf_counter() - t0
        assert typ == "OK" and len(d[0][1]) > 100
        c.logout()
        t.update(raw_select_fetch(a))
        rounds.append(t)
        print(f"round {r}: n={n} " + " ".join(f"{k}={v * 1000:.1f}ms"
                                              for k, v in t.items()))
    res = {"cold_ms": {k: v * 1000 for k, v in rounds[0].items()},
           "warm_ms": {k: statistics.median(x[k] for x in rounds[1:]) * 1000
                       for k in rounds[0]}}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()
