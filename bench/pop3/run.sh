#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/pop3/run.sh - POP3 retrieval throughput, Postern pop3d vs Dovecot
# pop3d, side by side in one run. See README.md.
#
#   bash bench/pop3/run.sh                 # 20 users x 1,000 messages, 5 runs
#   USERS=10 MESSAGES=500 RUNS=3 bash bench/pop3/run.sh
#
# Every user's INBOX holds the same MESSAGES messages on both servers
# (made once, from the same files); each run has USERS concurrent
# clients (pop3_load.c) that log in, then RETR every message, pipelined,
# and QUIT. Nothing is deleted, so every run sees the same mailboxes.
# One untimed warm-up run per server first (Dovecot builds its index
# there; Postern sets \Seen once). Prints the median msgs/s of RUNS runs
# and the ratio Postern/Dovecot.
#
# Environment: USERS (20), MESSAGES (1000), RUNS (5), POSTERN_BUILD (an
# absolute build directory; default: make, then ./build), PORT_BASE
# (default: the first of 39500, 40500, ... with every port free), KEEP=1
# keeps the temp directory. Needs root to install
# dovecot-pop3d (apt-get) when it is missing: the benchmark installs its
# own packages, they are not build dependencies.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
USERS=${USERS:-20}
MESSAGES=${MESSAGES:-1000}
RUNS=${RUNS:-5}

PY=${PYTHON:-/usr/bin/python3}
PASS=benchpw

if [ -z "${POSTERN_BUILD:-}" ]; then
	make -C "$ROOT" -s build/bin/postern build/bin/master build/bin/pop3d \
	    build/libpostern.a >/dev/null
	POSTERN_BUILD=$ROOT/build
fi
B=$POSTERN_BUILD

if [ ! -x /usr/lib/dovecot/pop3 ]; then
	echo "== installing dovecot-pop3d (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 dovecot-core dovecot-pop3d >/dev/null
fi

T=$(mktemp -d /tmp/pop3-bench.XXXXXX)
chmod 755 "$T"
cleanup() {
	"$B/bin/postern" -c "$T/postern" stop >/dev/null 2>&1 || true
	doveadm -c "$T/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

if [ -z "${PORT_BASE:-}" ]; then
	PORT_BASE=$("$PY" -c '
import socket
for base in range(39500, 60000, 1000):
    ok = True
    for off in (24, 25, 110, 119, 143, 190, 210, 465, 587, 993, 995):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", base + off))
            except OSError:
                ok = False
                break
    if ok:
        print(base)
        break
')
fi
PPORT=$((PORT_BASE + 110))
DPORT=$((PORT_BASE + 210))

gcc -O2 -o "$T/pop3_load" "$HERE/pop3_load.c"
gcc -O2 -I"$ROOT/lib" -o "$T/pop3_fill" "$HERE/pop3_fill.c" "$B/libpostern.a" \
    -ldb -lcrypt

# ---------------------------------------------------------------- messages
echo "== $MESSAGES messages"
mkdir -p "$T/msgs"
"$PY" - "$T/msgs" "$MESSAGES" <<'EOF'
import random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(110)
words = ("the of and to in is that for it as was with be by on not he this "
         "are or his from at which but have an they you were her she there "
         "mail post office protocol message retrieve").split()
for i in range(n):
    head = (f"Return-Path: <sender{i % 37}@example.org>\r\n"
            f"Received: from mx.example.org by localhost; 1 Jan 2026 00:00:00 +0000\r\n"
            f"From: Sender {i % 37} <sender{i % 37}@example.org>\r\n"
            f"To: user@localhost\r\nSubject: benchmark message {i}\r\n"
            f"Date: Thu, 1 Jan 2026 00:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{i}.bench@example.org>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    # sizes from 1 KB to about 24 KB, mostly small, as real mailboxes
    target = int(rnd.lognormvariate(8.2, 0.8))
    target = max(1024, min(target, 24 * 1024))
    body, size = [], len(head)
    while size < target:
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(4, 12)))
        if rnd.random() < 0.02:
            line = "." + line          # a line that needs dot-stuffing
        body.append(line)
        size += len(line) + 2
    open(f"{d}/{i:04d}", "wb").write((head + "\r\n".join(body) + "\r\n").encode())
EOF
du -sh "$T/msgs" | awk '{print "   " $1 " in total"}'

# ---------------------------------------------------------------- Postern
echo "== Postern instance in $T/postern"
"$B/bin/postern" instance init "$T/postern" --port-base "$PORT_BASE" >/dev/null
chmod 755 "$T/postern"
for u in $(seq 0 $((USERS - 1))); do
	name=$(printf "user%02d" "$u")
	echo "$PASS" | "$B/bin/postern" -c "$T/postern" user add "$name" \
	    --password-stdin >/dev/null
	"$T/pop3_fill" "$T/postern/store" "$name" "$T/msgs" "$MESSAGES"
done
chown --reference="$T/postern/store" "$T/postern/data/users.db" 2>/dev/null || true

# ---------------------------------------------------------------- Dovecot
mkdir -p "$T/dovecot/run" "$T/dovecot/state" "$T/dovecot/mail"
if [ "$(id -u)" = 0 ]; then
	MU=nobody MG=$(id -gn nobody)
else
	MU=$(id -un) MG=$(id -gn)
fi
: > "$T/dovecot/passwd"
for u in $(seq 0 $((USERS - 1))); do
	name=$(printf "user%02d" "$u")
	echo "$name:{PLAIN}$PASS" >> "$T/dovecot/passwd"
	md=$T/dovecot/mail/$name/Maildir
	mkdir -p "$md/cur" "$md/new" "$md/tmp"
	# Maildir files as Dovecot's LDA writes them: LF line ends, S= size
	"$PY" - "$T/msgs" "$MESSAGES" "$md/cur" <<'EOF'
import sys
src, n, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    data = open(f"{src}/{i:04d}", "rb").read().replace(b"\r\n", b"\n")
    open(f"{dst}/{1767225600 + i}.M{i}P1.bench,S={len(data)}:2,", "wb").write(data)
EOF
done
chown -R "$MU:$MG" "$T/dovecot/mail"
cat > "$T/dovecot/dovecot.conf" <<EOF
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
instance_name = pop3-bench-$$
log_path = $T/dovecot/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$T/dovecot/mail/%n/Maildir
default_internal_user = $MU
default_login_user = $MU
default_internal_group = $MG
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN $T/dovecot/passwd
}
userdb {
  driver = static
  args = uid=$MU gid=$MG home=$T/dovecot/mail/%n
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DPORT
  }
  inet_listener pop3s {
    port = 0
  }
}
service anvil {
  chroot =
}
EOF

wait_port() {
	for _ in $(seq 100); do
		"$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1).close()" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 not listening" >&2
	return 1
}

"$B/bin/postern" -c "$T/postern" start >/dev/null
dovecot -c "$T/dovecot/dovecot.conf"
wait_port "$PPORT"
wait_port "$DPORT"

# run_one PORT - prints the rate
run_one() {
	"$T/pop3_load" 127.0.0.1 "$1" "user%02d" "$USERS" "$PASS" "$MESSAGES" |
	    tee -a "$T/runs.log" | sed 's/.*rate=//'
}

median() {
	sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'
}

echo "== warm-up (untimed)"
run_one "$PPORT" >/dev/null
run_one "$DPORT" >/dev/null
echo "== $USERS users x RETR of $MESSAGES messages, median of $RUNS runs"
p=() d=()
for r in $(seq "$RUNS"); do
	p+=("$(run_one "$PPORT")")
	d+=("$(run_one "$DPORT")")
done
pm=$(printf "%s\n" "${p[@]}" | median)
dm=$(printf "%s\n" "${d[@]}" | median)
printf "%-10s %12s %12s %8s\n" "" "postern" "dovecot" "ratio"
printf "%-10s %12s %12s %8s\n" "msgs/s" "$pm" "$dm" \
    "$(awk -v a="$pm" -v b="$dm" 'BEGIN{printf "%.2f", a/b}')"
echo "   runs: postern ${p[*]} | dovecot ${d[*]}"
echo "   dovecot $(dovecot --version | cut -d' ' -f1), $(nproc) CPUs"
