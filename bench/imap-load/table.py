#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""table.py RESDIR "CONNS" RUNS - the side-by-side table of run.sh: the
median over runs of each figure, Postern, Dovecot and their ratio."""
import json
import os
import statistics
import sys

res, conns, runs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])


def load(srv, n):
    out = []
    for r in range(1, runs + 1):
        p = f"{res}/{srv}-{n}-{r}.json"
        if os.path.exists(p):
            out.append(json.load(open(p)))
    return out


def med(rs, f):
    v = [f(r) for r in rs]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def row(name, p, d, unit, better_low):
    if p is None or d is None:
        print(f"  {name:28s} {p!s:>10} {d!s:>10}")
        return
    ratio = p / d if d else float("inf")
    note = "" if (ratio <= 1.0) == better_low or ratio == 1.0 else "  <-"
    print(f"  {name:28s} {p:10.2f} {d:10.2f} {unit:6s} {ratio:6.2f}{note}")


print(f"\n{'':30s}{'postern':>10s} {'dovecot':>10s} {'':6s} {'P/D':>6s}")
for n in conns:
    P, D = load("postern", n), load("dovecot", n)
    print(f"{n} connections (median of {len(P)}/{len(D)} runs)")
    row("ops/s", med(P, lambda r: r["ops_s"]), med(D, lambda r: r["ops_s"]),
        "", False)
    row("PSS per idle connection", med(P, lambda r: r["pss_kb_per_conn"]),
        med(D, lambda r: r["pss_kb_per_conn"]), "kB", True)
    cmds = sorted(set().union(*[r["p50_ms"].keys() for r in P + D]))
    for c in cmds:
        for q in ("p50", "p99"):
            row(f"{c} {q}", med(P, lambda r: r[q + "_ms"].get(c)),
                med(D, lambda r: r[q + "_ms"].get(c)), "ms", True)
    errs = sum(r["errors"] for r in P + D)
    if errs:
        print(f"  errors: {errs}")
bp, bd = f"{res}/big-postern.json", f"{res}/big-dovecot.json"
if os.path.exists(bp) and os.path.exists(bd):
    P, D = json.load(open(bp)), json.load(open(bd))
    print("large mailbox")
    for k in P["warm_ms"]:
        row(f"{k} cold", P["cold_ms"][k], D["cold_ms"][k], "ms", True)
        row(f"{k} warm", P["warm_ms"][k], D["warm_ms"][k], "ms", True)
