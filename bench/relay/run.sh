#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/relay/run.sh - relaying to smtp-sink, Postern side by side with Postfix
#
# MSGS messages of SIZE bytes go in by SMTP (smtp-source, Debian's postfix
# package) and out by SMTP (each system's smtp agent) to one smtp-sink, for
# a private Postfix instance and a Postern instance, both on this machine
# in this run. Two loads:
#   1 destination    every message is for to@d1.bench
#   20 destinations  message i is for to@dK.bench, K = 1..20
# Both systems route dK.bench by a transport map to smtp:[127.0.0.K]:PORT:
# one smtp-sink listening on 0.0.0.0:PORT (so every 127.0.0.K reaches it)
# and 20 different next hops, which are 20 destinations for the queue
# managers (per-destination concurrency, 20 by default in both) and for the
# connection caches. Injection is the same for both loads: 20 smtp-source
# processes in parallel, one session each, MSGS/20 messages each.
#
# Measured per run: msgs/s from the start of injection until the queue is
# empty (every message handed to the sink), and the sink's count of
# connections (one smtp-sink per run, its -c counters).
# Each configuration runs REPEAT times (in alternation); the table shows
# medians and the Postern/Postfix ratio (> 1: Postern faster).
#
# Fairness: default process and concurrency limits in both; both fsync
# their queue files; Postfix keeps its default connection cache
# (smtp_connection_cache_on_demand), Postern its smtp_connection_cache_time
# (2s); no TLS (smtp-sink offers none; Postern's "may" finds none), no
# reverse lookups of the client, no DNS (the next hops are literals).
#
# Usage: bench/relay/run.sh          (as root; installs postfix if missing)
#        MSGS=2000 REPEAT=1 DESTS="1 20" bench/relay/run.sh
# Environment: MSGS (10000), SIZE (4096), REPEAT (3), DESTS ("1 20"),
# POSTERN_BUILD (./build), KEEP=1 keeps the work directory, DRAIN_TIMEOUT
# (900 s). Note: the sink listens on all addresses (0.0.0.0) for the run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${POSTERN_BUILD:-$ROOT/build}
POSTERN=$BUILD/bin/postern
MSGS=${MSGS:-10000}
SIZE=${SIZE:-4096}
REPEAT=${REPEAT:-3}
DESTS=${DESTS:-"1 20"}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
SOURCES=20

die() { echo "run.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }

[ -x "$POSTERN" ] || die "$POSTERN is not built (make all)"

# ------------------------------------------------------------ postfix
if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
	[ "$(id -u)" = 0 ] || die "postfix is not installed and we are not root"
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"

WORK=$(mktemp -d /tmp/pst-relay.XXXXXX)
chmod 755 "$WORK"
SINK_PID=
PF_DIR=$WORK/postfix
PT_DIR=$WORK/postern
cleanup() {
	set +e
	[ -f "$PF_DIR/main.cf" ] && postfix -c "$PF_DIR" stop >/dev/null 2>&1
	[ -f "$PT_DIR/postern.conf" ] && "$POSTERN" -c "$PT_DIR" stop >/dev/null 2>&1
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'
}

SINK_PORT=$(free_port)
# the transport maps: dK.bench -> smtp:[127.0.0.K]:SINK_PORT
: >"$WORK/transport"
for k in $(seq 20); do
	echo "d$k.bench smtp:[127.0.0.$k]:$SINK_PORT" >>"$WORK/transport"
done

# ------------------------------------------------------------ Postfix
PF_PORT=$(free_port)
mkdir -p "$PF_DIR" "$WORK/pf-queue" "$WORK/pf-data"
chown postfix "$WORK/pf-data"
cp /usr/share/postfix/master.cf.dist "$PF_DIR/master.cf"
cp "$WORK/transport" "$PF_DIR/transport"
cat >"$PF_DIR/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/pf-queue
data_directory = $WORK/pf-data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydestination = localhost
mynetworks = 127.0.0.0/8
relay_domains =
transport_maps = texthash:$PF_DIR/transport
local_recipient_maps =
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtp_tls_security_level = none
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
biff = no
EOF
postconf -c "$PF_DIR" -M# smtp/inet >/dev/null
postconf -c "$PF_DIR" -M "127.0.0.1:$PF_PORT/inet=127.0.0.1:$PF_PORT inet n - n - - smtpd"
postconf -c "$PF_DIR" -F '*/*/chroot = n'
postconf -c "$PF_DIR" -M "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"
postfix -c "$PF_DIR" check >/dev/null 2>&1 ||
    die "postfix check failed: $(script -qc "postfix -c $PF_DIR check" /dev/null | tail -3)"
postfix -c "$PF_DIR" start >/dev/null 2>&1 || die "postfix did not start (see $WORK)"
PF_QUEUE=$WORK/pf-queue

# ------------------------------------------------------------ Postern
PT_BASE=$(python3 - <<'PY'
import random, socket
offs = (25, 587, 465, 143, 993, 110, 995, 190, 24, 119)
for _ in range(500):
    base = random.randint(20000, 60000)
    ok = True
    for off in offs:
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
PY
)
"$POSTERN" instance init "$PT_DIR" --port-base "$PT_BASE" >"$WORK/postern.env"
PT_PORT=$(sed -n 's/^SMTP_PORT=//p' "$WORK/postern.env")
chmod 755 "$PT_DIR"
have_service() {	# have_service NAME TYPE
	grep -Ev '^[[:space:]]*(#|$)' "$PT_DIR/master.conf" |
	    awk -v n="$1" -v t="$2" '$1 == n && $2 == t { f = 1 } END { exit !f }'
}
have_service cleanup unix || echo "cleanup unix n - n - 0 cleanup" >>"$PT_DIR/master.conf"
have_service qmgr fifo || echo "qmgr fifo n - n 300 1 qmgr" >>"$PT_DIR/master.conf"
have_service smtp unix || echo "smtp unix - - n - - smtp" >>"$PT_DIR/master.conf"
grep -Eq "^127\.0\.0\.1:$PT_PORT[[:space:]]+inet" "$PT_DIR/master.conf" ||
    echo "127.0.0.1:$PT_PORT inet n - n - - smtpd" >>"$PT_DIR/master.conf"
cp "$WORK/transport" "$PT_DIR/transport"
for kv in "smtpd_peername_lookup=no" "mydestination=localhost" \
    "transport_maps=file:$PT_DIR/transport" "smtp_tls_security_level=none"; do
	"$POSTERN" -c "$PT_DIR" config -e "$kv" >/dev/null
done
"$POSTERN" -c "$PT_DIR" start >/dev/null
PT_QUEUE=$PT_DIR/spool

wait_port() {
	local i
	for i in $(seq 100); do
		if (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "nothing listens on port $1"
}
wait_port "$PF_PORT"
wait_port "$PT_PORT"

# ------------------------------------------------------------ one run
queued() {	# number of queue files of a system
	case $1 in
	postfix) find "$PF_QUEUE"/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l ;;
	postern) find "$PT_QUEUE"/{incoming,active,deferred,hold} -type f 2>/dev/null | wc -l ;;
	esac
}

start_sink() {	# a fresh sink per run, for its connection count
	smtp-sink -c -u nobody -h sink.bench 0.0.0.0:$SINK_PORT 1024 \
	    >"$WORK/sink.out" 2>&1 &
	SINK_PID=$!
	wait_port "$SINK_PORT"
}
stop_sink() {	# prints the sink's connection count
	# both caches close idle sessions after 2s; then every session ended
	sleep 3
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=
	# smtp-sink -c: "sess=N quit=N mesg=N" after each event, the last wins
	tr '\r' '\n' <"$WORK/sink.out" |
	    sed -n 's/^sess=\([0-9]*\) .*/\1/p' | tail -1 | awk '{ print $1 + 0 }'
}

RESULTS=$WORK/results	# system dests rep msgs/s connections
: >"$RESULTS"
one_run() {	# one_run SYSTEM DESTS REP
	local sys=$1 n=$2 rep=$3 port t0 t1 rate conns k pids=()
	case $sys in postfix) port=$PF_PORT ;; postern) port=$PT_PORT ;; esac
	[ "$(queued "$sys")" = 0 ] || die "$sys queue not empty before a run"
	start_sink
	t0=$(now)
	for k in $(seq "$SOURCES"); do
		smtp-source -s 1 -m $((MSGS / SOURCES)) -l "$SIZE" -d \
		    -M bench.localhost -f from@bench.localhost \
		    -t "to@d$(( (k - 1) % n + 1 )).bench" 127.0.0.1:"$port" \
		    >"$WORK/source.$sys.$n.$rep.$k" 2>&1 &
		pids+=($!)
	done
	for k in "${pids[@]}"; do
		wait "$k" || die "smtp-source failed against $sys (see $WORK)"
	done
	while [ "$(queued "$sys")" != 0 ]; do
		sleep 0.05
		if [ "$(echo "$(now) - $t0 > $DRAIN_TIMEOUT" | bc)" = 1 ]; then
			die "$sys did not drain in ${DRAIN_TIMEOUT}s ($(queued "$sys") left; see $WORK)"
		fi
	done
	t1=$(now)
	conns=$(stop_sink)
	rate=$(echo "scale=1; $((MSGS / SOURCES * SOURCES)) / ($t1 - $t0)" | bc)
	echo "$sys $n $rep $rate $conns" >>"$RESULTS"
	printf '  load %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '  %-8s dests=%-2s run %s: %7s msg/s  %6s connections at the sink\n' \
	    "$sys" "$n" "$rep" "$rate" "$conns"
}

echo "relay: $((MSGS / SOURCES * SOURCES)) messages of $SIZE bytes, destinations: $DESTS, $REPEAT runs each"
echo "  Postfix $(postconf -d -h mail_version) port $PF_PORT, Postern $BUILD port $PT_PORT, sink (smtp-sink) port $SINK_PORT"
echo "  $(nproc) CPUs; $(uname -r)"
for rep in $(seq "$REPEAT"); do
	for n in $DESTS; do
		one_run postfix "$n" "$rep"
		one_run postern "$n" "$rep"
	done
done

# ------------------------------------------------------------ the table
python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(sys_, n, col):
    v = [float(r[col]) for r in rows if r[0] == sys_ and r[1] == n]
    return statistics.median(v) if v else float("nan")
print()
print(f"{'dests':>5} {'metric':<18} {'Postfix':>10} {'Postern':>10} {'Postern/Postfix':>16}")
for n in sorted({r[1] for r in rows}, key=int):
    for name, col in (("relay msg/s", 3), ("sink connections", 4)):
        a, b = med("postfix", n, col), med("postern", n, col)
        ratio = b / a if a else float("nan")
        print(f"{n:>5} {name:<18} {a:>10.1f} {b:>10.1f} {ratio:>16.2f}")
EOF
