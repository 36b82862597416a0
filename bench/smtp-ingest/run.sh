#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/smtp-ingest/run.sh - SMTP ingest, Postern side by side with Postfix
#
# smtp-source (Debian's postfix package) sends MSGS messages of SIZE bytes
# over 1 and over 20 sessions (-d: each session is one connection that
# sends message after message) to Postern and to a private Postfix
# instance, both on this machine in this run. Both deliver the same way:
# by LMTP to one smtp-sink -L on loopback (Postern: local_transport =
# lmtp:inet:...; Postfix: local_transport = lmtp:inet:...), so what is
# compared is SMTP reception + queue (with fsync) + scheduling + the LMTP
# client, not a mail store.
#
# Measured per run:
#   accept   msgs/s from smtp-source's start (first connect) until it
#            exits (every message got its 250)
#   deliver  msgs/s from the same start until the queue is empty (no
#            file left in incoming/active/deferred/hold[/maildrop])
#   busy rss/pss  KiB per SMTP session: during the run, the mean VmRSS
#            (and Pss, from smaps_rollup) of the instance's smtpd
#            processes, sampled every 0.2 s, mean over the samples in
#            which all sessions had a process
#   idle rss/pss  the same with S sessions held open after EHLO
#   (one smtpd process serves one session in both systems)
# Each configuration runs REPEAT times (in alternation); the table shows
# medians and the Postern/Postfix ratio (for msgs/s > 1 is better for
# Postern, for KiB < 1 is).
#
# Fairness notes: both keep their default process and concurrency limits
# (100 smtpd processes, 20 LMTP connections per destination) and fsync
# their queue files. Reverse lookups of the client are off on both
# (smtpd_peername_lookup = no), Postfix's local_recipient_maps is empty
# (Postern checks its user database), Postfix keeps its default
# in_flow_delay (1s) flow control, as a stock Postfix does.
#
# Usage: bench/smtp-ingest/run.sh      (as root; installs postfix if missing)
#        MSGS=2000 REPEAT=1 SESSIONS="1 20" bench/smtp-ingest/run.sh
# Environment: MSGS (10000), SIZE (4096), REPEAT (3), SESSIONS ("1 20"),
# POSTERN_BUILD (./build), KEEP=1 keeps the work directory, DRAIN_TIMEOUT
# (900 s).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${POSTERN_BUILD:-$ROOT/build}
POSTERN=$BUILD/bin/postern
MSGS=${MSGS:-10000}
SIZE=${SIZE:-4096}
REPEAT=${REPEAT:-3}
SESSIONS=${SESSIONS:-"1 20"}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}

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

WORK=$(mktemp -d /tmp/pst-bench.XXXXXX)
chmod 755 "$WORK"
PIDS_TO_KILL=()
PF_DIR=$WORK/postfix
PT_DIR=$WORK/postern
cleanup() {
	set +e
	[ -f "$PF_DIR/main.cf" ] && postfix -c "$PF_DIR" stop >/dev/null 2>&1
	[ -f "$PT_DIR/postern.conf" ] && "$POSTERN" -c "$PT_DIR" stop >/dev/null 2>&1
	for p in "${PIDS_TO_KILL[@]}"; do kill "$p" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ------------------------------------------------------------ the sink
SINK_PORT=$(free_port)
smtp-sink -L -u nobody -h sink.localhost 127.0.0.1:$SINK_PORT 512 \
    >"$WORK/sink.log" 2>&1 &
PIDS_TO_KILL+=($!)
sleep 0.3

# ------------------------------------------------------------ Postfix
PF_PORT=$(free_port)
mkdir -p "$PF_DIR" "$WORK/pf-queue" "$WORK/pf-data"
chown postfix "$WORK/pf-data"
cp /usr/share/postfix/master.cf.dist "$PF_DIR/master.cf"
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
local_recipient_maps =
alias_maps =
alias_database =
local_transport = lmtp:inet:127.0.0.1:$SINK_PORT
smtpd_peername_lookup = no
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
biff = no
EOF
# the smtpd line on our port, no chroot anywhere, and postlogd for the log
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
have_service lmtp unix || echo "lmtp unix - - n - - smtp" >>"$PT_DIR/master.conf"
grep -Eq "^127\.0\.0\.1:$PT_PORT[[:space:]]+inet" "$PT_DIR/master.conf" ||
    echo "127.0.0.1:$PT_PORT inet n - n - - smtpd" >>"$PT_DIR/master.conf"
for kv in "smtpd_peername_lookup=no" "mydestination=localhost" \
    "local_transport=lmtp:inet:127.0.0.1:$SINK_PORT"; do
	"$POSTERN" -c "$PT_DIR" config -e "$kv" >/dev/null
done
"$POSTERN" -c "$PT_DIR" user add to --password x >/dev/null
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
wait_port "$SINK_PORT"

# ------------------------------------------------------------ one run
queued() {	# number of queue files of a system
	case $1 in
	postfix) find "$PF_QUEUE"/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l ;;
	postern) find "$PT_QUEUE"/{incoming,active,deferred,hold} -type f 2>/dev/null | wc -l ;;
	esac
}
master_pid() {
	case $1 in
	postfix) awk '{print $1; exit}' "$PF_QUEUE/pid/master.pid" ;;
	postern) awk '{print $1; exit}' "$PT_QUEUE/pid/master.pid" ;;
	esac
}
sample_rss() {	# sample_rss SYSTEM OUTFILE: until killed, "nprocs rss pss" lines
	local master; master=$(master_pid "$1")
	while :; do
		local n=0 rss=0 pss=0 pid r s
		for pid in $(ps --ppid "$master" -o pid=,comm= | awk '$2 == "smtpd" {print $1}'); do
			r=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status 2>/dev/null) || continue
			s=$(awk '/^Pss:/ {print $2}' /proc/$pid/smaps_rollup 2>/dev/null) || continue
			[ -n "$r" ] && [ -n "$s" ] || continue
			n=$((n + 1)); rss=$((rss + r)); pss=$((pss + s))
		done
		[ $n -gt 0 ] && echo "$n $rss $pss"
		sleep 0.2
	done >"$2"
}

idle_rss() {	# idle_rss SYSTEM N: hold N sessions open after EHLO; "rss pss" per session
	python3 - "$1" "$2" "$(master_pid "$1")" "$3" <<'PY'
import socket, sys, time
system, n, master, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    while f.readline()[3:4] == b"-":
        pass
    s.sendall(b"EHLO bench.localhost\r\n")
    while f.readline()[3:4] == b"-":
        pass
    socks.append((s, f))
time.sleep(1.0)
import os
def kids():
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            st = open(f"/proc/{e}/stat").read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        comm = st[st.find("(") + 1:st.rfind(")")]
        if fields[1] == master and comm == "smtpd":
            out.append(e)
    return out
rss = pss = k = 0
for pid in kids():
    try:
        r = [int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")][0]
        p = [int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:")][0]
    except (OSError, IndexError):
        continue
    rss += r; pss += p; k += 1
# one smtpd process per session: the per-session figure is the mean over
# the smtpd processes (idle ones left from earlier runs are the same
# program, and there are at least n)
print(rss // k if k >= n else 0, pss // k if k >= n else 0, k)
for s, f in socks:
    try:
        s.sendall(b"QUIT\r\n")
    except OSError:
        pass
    s.close()
PY
}

RESULTS=$WORK/results	# system sessions rep accept deliver rss pss
: >"$RESULTS"
one_run() {	# one_run SYSTEM SESSIONS REP
	local sys=$1 s=$2 rep=$3 port samp t0 t1 t2 acc del rss pss
	case $sys in postfix) port=$PF_PORT ;; postern) port=$PT_PORT ;; esac
	[ "$(queued "$sys")" = 0 ] || die "$sys queue not empty before a run"
	samp=$WORK/rss.$sys.$s.$rep
	sample_rss "$sys" "$samp" &
	local sampler=$!
	t0=$(now)
	smtp-source -s "$s" -m "$MSGS" -l "$SIZE" -d -M bench.localhost \
	    -f from@bench.localhost -t to@localhost 127.0.0.1:"$port" \
	    >"$WORK/source.$sys.$s.$rep" 2>&1 || {
		kill $sampler; die "smtp-source failed against $sys: $(tail -3 "$WORK/source.$sys.$s.$rep")"; }
	t1=$(now)
	kill $sampler; wait $sampler 2>/dev/null || true
	while [ "$(queued "$sys")" != 0 ]; do
		sleep 0.1
		if [ "$(echo "$(now) - $t0 > $DRAIN_TIMEOUT" | bc)" = 1 ]; then
			die "$sys did not drain in ${DRAIN_TIMEOUT}s ($(queued "$sys") left; see $WORK)"
		fi
	done
	t2=$(now)
	acc=$(echo "scale=1; $MSGS / ($t1 - $t0)" | bc)
	del=$(echo "scale=1; $MSGS / ($t2 - $t0)" | bc)
	# per-session memory: mean over the samples with all sessions up
	read -r rss pss < <(awk -v want="$s" '$1 >= want { r += $2 / $1; p += $3 / $1; k++ }
	    END { if (k) printf "%d %d\n", r / k, p / k; else print "0 0" }' "$samp")
	local irss ipss iprocs
	read -r irss ipss iprocs < <(idle_rss "$sys" "$s" "$port")
	echo "$sys $s $rep $acc $del $rss $pss $irss $ipss" >>"$RESULTS"
	printf '  load %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '  %-8s sessions=%-2s run %s: accept %7s msg/s  deliver %7s msg/s  busy rss/pss %5s/%5s KiB  idle rss/pss %5s/%5s KiB (%s procs)\n' \
	    "$sys" "$s" "$rep" "$acc" "$del" "$rss" "$pss" "$irss" "$ipss" "$iprocs"
}

echo "smtp-ingest: $MSGS messages of $SIZE bytes, sessions: $SESSIONS, $REPEAT runs each"
echo "  Postfix $(postconf -d -h mail_version) port $PF_PORT, Postern $BUILD port $PT_PORT, sink (smtp-sink -L) port $SINK_PORT"
echo "  $(nproc) CPUs; $(uname -r)"
for rep in $(seq "$REPEAT"); do
	for s in $SESSIONS; do
		one_run postfix "$s" "$rep"
		one_run postern "$s" "$rep"
	done
done

# ------------------------------------------------------------ the table
python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(sys_, s, col):
    v = [float(r[col]) for r in rows if r[0] == sys_ and r[1] == s]
    return statistics.median(v) if v else float("nan")
print()
print(f"{'sessions':>8} {'metric':<18} {'Postfix':>10} {'Postern':>10} {'Postern/Postfix':>16}")
for s in sorted({r[1] for r in rows}, key=int):
    for name, col in (("accept msg/s", 3), ("deliver msg/s", 4),
                      ("busy RSS KiB/sess", 5), ("busy PSS KiB/sess", 6),
                      ("idle RSS KiB/sess", 7), ("idle PSS KiB/sess", 8)):
        a, b = med("postfix", s, col), med("postern", s, col)
        ratio = b / a if a else float("nan")
        print(f"{s:>8} {name:<18} {a:>10.1f} {b:>10.1f} {ratio:>16.2f}")
EOF
