#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/sieve-deliver/run.sh - LMTP delivery with a 50-rule Sieve script:
# Postern lmtpd vs Dovecot LMTP + Pigeonhole, side by side in one run.
#
#   bash bench/sieve-deliver/run.sh                  # 5,000 messages, 3 runs
#   MESSAGES=1000 RUNS=1 bash bench/sieve-deliver/run.sh
#
# Environment: MESSAGES (5000), USERS (50), CONNS (4), SIZE (4096), RUNS
# (3), POSTERN_BUILD (absolute build dir; default: make, then ./build),
# PORT_BASE (41000), KEEP=1 keeps the temp directory.
#
# Both servers get the same script (rules.py: list filing, sender and
# subject rules with flags, spam score, envelope domains, regex) as every
# user's active script, the same message mix, the same number of LMTP
# connections, and start each run with empty mail stores (so mailboxes
# are created by fileinto :create on the way, in both). Both fsync
# (Dovecot's mail_fsync = optimized, its default). Installs dovecot-lmtpd
# and dovecot-sieve with apt-get when missing (root); they are not build
# dependencies.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MESSAGES=${MESSAGES:-5000}
USERS=${USERS:-50}
CONNS=${CONNS:-4}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
PORT_BASE=${PORT_BASE:-41000}
PY=${PYTHON:-/usr/bin/python3}

if [ -z "${POSTERN_BUILD:-}" ]; then
	make -C "$ROOT" -s build/bin/postern build/bin/master build/bin/lmtpd >/dev/null
	POSTERN_BUILD=$ROOT/build
fi
B=$POSTERN_BUILD

if [ ! -x /usr/lib/dovecot/lmtp ] || [ ! -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ]; then
	echo "== installing dovecot-lmtpd dovecot-sieve (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 dovecot-core dovecot-lmtpd dovecot-sieve >/dev/null
fi

T=$(mktemp -d /tmp/sieve-bench.XXXXXX)
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
"$PY" -c "import sys; sys.path.insert(0, '$HERE'); import rules; sys.stdout.write(rules.script())" > "$T/bench.sieve"
echo "== script: $(grep -c '^if' "$T/bench.sieve") rules, $(wc -c < "$T/bench.sieve") octets"

# ---------------------------------------------------------------- Postern
"$B/bin/postern" instance init "$T/postern" --port-base "$PORT_BASE" >/dev/null
chmod 755 "$T/postern"
sed -i -E "s/^(127.0.0.1:$PPORT +inet n [^ ]+ n) - -/\1 - $CONNS/" "$T/postern/master.conf"
grep -q "^127.0.0.1:$PPORT " "$T/postern/master.conf" ||
	echo "127.0.0.1:$PPORT inet n - n - $CONNS lmtpd" >> "$T/postern/master.conf"
for i in $(seq 0 $((USERS - 1))); do
	printf 'pw\n' | "$B/bin/postern" -c "$T/postern" user add "$(printf 'user%04d' "$i")" \
	    --password-stdin >/dev/null
done
chown --reference="$T/postern/store" "$T/postern/data/users.db"
postern_scripts() {
	local u d
	for i in $(seq 0 $((USERS - 1))); do
		u=$(printf 'user%04d' "$i")
		d=$T/postern/store/$u/sieve
		mkdir -p "$d"
		cp "$T/bench.sieve" "$d/bench.sieve"
		ln -sfn bench.sieve "$d/active"
	done
	chown -R --reference="$T/postern/store" "$T/postern/store"
}

# ---------------------------------------------------------------- Dovecot
mkdir -p "$T/dovecot/run" "$T/dovecot/state" "$T/dovecot/mail"
if [ "$(id -u)" = 0 ]; then
	MU=nobody MG=$(id -gn nobody)
else
	MU=$(id -un) MG=$(id -gn)
fi
dovecot_conf() {	# dovecot_conf FILE PLUGINS
cat > "$1" <<EOC
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
instance_name = sieve-bench-$$
log_path = $T/dovecot/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
mail_fsync = optimized
default_internal_user = $MU
default_login_user = $MU
default_internal_group = $MG
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=$MU gid=$MG home=$T/dovecot/mail/%n
}
protocol lmtp {
  mail_plugins = $2
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
service lmtp {
  process_limit = $CONNS
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
EOC
}
dovecot_conf "$T/dovecot/dovecot.conf" sieve
dovecot_conf "$T/dovecot/plain.conf" ""
dovecot_scripts() {
	local u h
	for i in $(seq 0 $((USERS - 1))); do
		u=$(printf 'user%04d' "$i")
		h=$T/dovecot/mail/$u
		mkdir -p "$h/sieve"
		cp "$T/bench.sieve" "$h/sieve/bench.sieve"
		ln -sfn sieve/bench.sieve "$h/.dovecot.sieve"
	done
	chown -R "$MU:$MG" "$T/dovecot/mail"
}

wait_port() {
	for _ in $(seq 100); do
		"$PY" -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 not listening" >&2
	return 1
}

postern_fresh() {	# postern_fresh yes|no (lmtp_sieve)
	"$B/bin/postern" -c "$T/postern" stop >/dev/null 2>&1 || true
	sed -i '/^lmtp_sieve/d' "$T/postern/postern.conf"
	echo "lmtp_sieve = $1" >> "$T/postern/postern.conf"
	find "$T/postern/store" -mindepth 1 -delete
	postern_scripts
	"$B/bin/postern" -c "$T/postern" start >/dev/null
	wait_port "$PPORT"
}

dovecot_fresh() {	# dovecot_fresh CONF
	doveadm -c "$T/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
	doveadm -c "$T/dovecot/plain.conf" stop >/dev/null 2>&1 || true
	sleep 0.3
	find "$T/dovecot/mail" -mindepth 1 -delete
	dovecot_scripts
	dovecot -c "$1"
	wait_port "$DPORT"
}

run_one() {	# run_one postern|dovecot sieve|plain
	case $1-$2 in
	postern-sieve) postern_fresh yes; port=$PPORT ;;
	postern-plain) postern_fresh no; port=$PPORT ;;
	dovecot-sieve) dovecot_fresh "$T/dovecot/dovecot.conf"; port=$DPORT ;;
	dovecot-plain) dovecot_fresh "$T/dovecot/plain.conf"; port=$DPORT ;;
	esac
	"$PY" "$HERE/driver.py" --port "$port" --messages "$MESSAGES" --users "$USERS" \
	    --connections "$CONNS" --size "$SIZE" | sed 's/.*rate=//'
}

median() {
	sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}

echo "== $MESSAGES messages of ~$SIZE octets to $USERS users over $CONNS LMTP connections, $RUNS runs (msgs/s)"
echo "   (sieve: every user's active script is the 50-rule one; plain: no Sieve at all, for the cost of Sieve itself)"
PS=() DS=() PP=() DP=()
for r in $(seq "$RUNS"); do
	ps=$(run_one postern sieve)
	ds=$(run_one dovecot sieve)
	pp=$(run_one postern plain)
	dp=$(run_one dovecot plain)
	echo "run $r: sieve: postern $ps dovecot $ds | plain: postern $pp dovecot $dp"
	PS+=("$ps") DS+=("$ds") PP+=("$pp") DP+=("$dp")
done
ps=$(printf '%s\n' "${PS[@]}" | median)
ds=$(printf '%s\n' "${DS[@]}" | median)
pp=$(printf '%s\n' "${PP[@]}" | median)
dp=$(printf '%s\n' "${DP[@]}" | median)
printf "median with Sieve:    postern %s msgs/s, dovecot+pigeonhole %s msgs/s, ratio %.2f\n" \
    "$ps" "$ds" "$(echo "$ps / $ds" | bc -l)"
printf "median without Sieve: postern %s msgs/s, dovecot %s msgs/s, ratio %.2f\n" \
    "$pp" "$dp" "$(echo "$pp / $dp" | bc -l)"
printf "cost of Sieve per message: postern %.2f ms, dovecot %.2f ms (x %d connections)\n" \
    "$(echo "1000 / $ps - 1000 / $pp" | bc -l)" "$(echo "1000 / $ds - 1000 / $dp" | bc -l)" "$CONNS"
