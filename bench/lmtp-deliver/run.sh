#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/lmtp-deliver/run.sh - LMTP delivery throughput, Postern lmtpd vs
# Dovecot LMTP into Maildir, side by side in one run. See README.md.
#
#   bash bench/lmtp-deliver/run.sh            # 10,000 messages, 3 runs
#   MESSAGES=2000 RUNS=5 bash bench/lmtp-deliver/run.sh
#
# Environment: MESSAGES (10000), SIZE (4096), RUNS (3), USERS (1000),
# POSTERN_BUILD (an absolute build directory; default: make, then ./build),
# PORT_BASE (free loopback ports from here: 39000), KEEP=1 keeps the temp
# directory, PERF_N (100000) the mailbox size of the index-only timings.
# Needs root to install dovecot-lmtpd (apt-get) when it is missing; the
# benchmark installs its own packages, they are not build dependencies.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
USERS=${USERS:-1000}
PORT_BASE=${PORT_BASE:-39000}
PERF_N=${PERF_N:-100000}
PY=${PYTHON:-/usr/bin/python3}

if [ -z "${POSTERN_BUILD:-}" ]; then
	make -C "$ROOT" -s build/bin/postern build/bin/master build/bin/lmtpd \
	    build/libpostern.a >/dev/null
	POSTERN_BUILD=$ROOT/build
fi
B=$POSTERN_BUILD

if [ ! -x /usr/lib/dovecot/lmtp ]; then
	echo "== installing dovecot-lmtpd (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 dovecot-core dovecot-lmtpd >/dev/null
fi

T=$(mktemp -d /tmp/lmtp-bench.XXXXXX)
chmod 755 "$T"
cleanup() {
	"$B/bin/postern" -c "$T/postern" stop >/dev/null 2>&1 || true
	doveadm -c "$T/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PPORT=$((PORT_BASE + 24))
DPORT=$((PORT_BASE + 124))

# ---------------------------------------------------------------- Postern
echo "== Postern instance in $T/postern"
"$B/bin/postern" instance init "$T/postern" --port-base "$PORT_BASE" >/dev/null
chmod 755 "$T/postern"
grep -q "^127.0.0.1:$PPORT " "$T/postern/master.conf" ||
	echo "127.0.0.1:$PPORT inet n - n - 8 lmtpd" >> "$T/postern/master.conf"
gcc -O2 -I"$ROOT/lib" -o "$T/mkusers" "$HERE/mkusers.c" "$B/libpostern.a" -ldb -lcrypt
echo "== $USERS users"
"$T/mkusers" "$T/postern/data/users.db" "user%04d" "$USERS"
# the daemons run as the store's owner (the invoking user, or nobody as root)
chown --reference="$T/postern/store" "$T/postern/data/users.db"

# ---------------------------------------------------------------- Dovecot
mkdir -p "$T/dovecot/run" "$T/dovecot/state" "$T/dovecot/mail"
if [ "$(id -u)" = 0 ]; then
	MU=nobody MG=$(id -gn nobody)
	chown "$MU:$MG" "$T/dovecot/mail"
else
	MU=$(id -un) MG=$(id -gn)
fi
cat > "$T/dovecot/dovecot.conf" <<EOF
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
instance_name = lmtp-bench-$$
log_path = $T/dovecot/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:$T/dovecot/mail/%n/Maildir
mail_fsync = optimized
default_internal_user = $MU
default_login_user = $MU
default_internal_group = $MG
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=$MU gid=$MG home=$T/dovecot/mail/%n
}
service lmtp {
  process_limit = 8
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DPORT
  }
  unix_listener lmtp {
    mode = 0600
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

postern_fresh() {
	"$B/bin/postern" -c "$T/postern" stop >/dev/null 2>&1 || true
	find "$T/postern/store" -mindepth 1 -delete
	"$B/bin/postern" -c "$T/postern" start >/dev/null
	wait_port "$PPORT"
}

dovecot_fresh() {
	doveadm -c "$T/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
	sleep 0.3
	find "$T/dovecot/mail" -mindepth 1 -delete
	dovecot -c "$T/dovecot/dovecot.conf"
	wait_port "$DPORT"
}

# run_one SERVER PORT USERS CONNS [--tokens] - prints the rate
run_one() {
	local server=$1 port=$2 users=$3 conns=$4
	shift 4
	if [ "$server" = dovecot ]; then dovecot_fresh; else postern_fresh; fi
	"$PY" "$HERE/driver.py" --port "$port" --messages "$MESSAGES" --size "$SIZE" \
	    --connections "$conns" --users "$users" "$@" | sed 's/.*rate=//'
}

median() {
	sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}

echo "== $MESSAGES messages of $SIZE bytes, median of $RUNS runs (msgs/s)"
printf "%-28s %10s %14s %10s %8s %8s\n" scenario postern postern+token dovecot ratio ratio+tk
for scen in "1 1" "1 8" "$USERS 1" "$USERS 8"; do
	set -- $scen
	users=$1 conns=$2
	p=() pt=() d=()
	for r in $(seq "$RUNS"); do
		p+=("$(run_one postern "$PPORT" "$users" "$conns")")
		pt+=("$(run_one postern "$PPORT" "$users" "$conns" --tokens --run-id "$r")")
		d+=("$(run_one dovecot "$DPORT" "$users" "$conns")")
	done
	pm=$(printf "%s\n" "${p[@]}" | median)
	ptm=$(printf "%s\n" "${pt[@]}" | median)
	dm=$(printf "%s\n" "${d[@]}" | median)
	label="$users mailbox(es), $conns conn"
	printf "%-28s %10s %14s %10s %8s %8s\n" "$label" "$pm" "$ptm" "$dm" \
	    "$(awk -v a="$pm" -v b="$dm" 'BEGIN{printf "%.2f", a/b}')" \
	    "$(awk -v a="$ptm" -v b="$dm" 'BEGIN{printf "%.2f", a/b}')"
	echo "   runs: postern ${p[*]} | postern+token ${pt[*]} | dovecot ${d[*]}"
done

# ---------------------------------------------------------------- index-only
PERF=$B/test/lib/store/store_perf_test
if [ -x "$PERF" ]; then
	echo "== index-only operations on a $PERF_N-message mailbox (store_perf_test)"
	(cd "$T" && POSTERN_STORE_PERF_N=$PERF_N "$PERF" 2>&1 | grep '^#' || true)
else
	echo "== (no $PERF: make $B/test/lib/store/store_perf_test for index-only timings)"
fi
