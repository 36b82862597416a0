#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/imap-load/run.sh - the IMAP workload against Postern imapd and
# Dovecot imapd side by side in one run. See README.md.
#
#   bash bench/imap-load/run.sh
#   CONNS="50 200" SECONDS_PER_RUN=15 RUNS=3 BIG=100000 bash bench/imap-load/run.sh
#
# Both servers get the same user and password with the SAME hash (one
# yescrypt string, libxcrypt's default cost, in Postern's user database
# and in Dovecot's passwd-file as {CRYPT}), the same PREFILL messages
# in INBOX (Postern: appended through lib/store with bench/pop3's
# pop3_fill; Dovecot: Maildir files), plain IMAP on loopback, default
# fsync behaviour on both. Before every run both mailboxes are removed
# and filled again (Dovecot's index goes with its Maildir), so every run
# starts from the same state; each (server, connection count) is run
# RUNS times, alternating servers, and the median is reported.
# imap_load.py measures ops/s, p50/p99 per command and PSS per idle
# authenticated connection (Postern: the mail-role processes, whose login
# process has exited; Dovecot: imap + imap-login processes).
# Then a BIG-message INBOX (0 skips it): SELECT, FETCH 1:* (UID FLAGS),
# UID SEARCH, FETCH of the last message; cold (first) and warm (median
# of 3).
#
# Environment: CONNS ("50 200"; "" for none), SECONDS_PER_RUN (15), RUNS (3), PREFILL
# (200), BIG (100000), POSTERN_BUILD (absolute; default: make, then
# ./build), PORT_BASE (default: a free one), KEEP=1 keeps the temp dir.
# Installs dovecot-imapd with apt-get when missing (root): a benchmark
# dependency, not a build one.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# unset: both counts; CONNS="" (empty): no load runs, only the BIG mailbox
CONNS=${CONNS-"50 200"}
SECS=${SECONDS_PER_RUN:-15}
RUNS=${RUNS:-3}
PREFILL=${PREFILL:-200}
BIG=${BIG:-100000}
PY=${PYTHON:-/usr/bin/python3}
USER_=bench
PASS=benchpw

if [ -z "${POSTERN_BUILD:-}" ]; then
	make -C "$ROOT" -s build/bin/postern build/bin/master build/bin/imapd \
	    build/bin/imapd-mail \
	    build/libpostern.a >/dev/null
	POSTERN_BUILD=$ROOT/build
fi
B=$POSTERN_BUILD

if [ ! -x /usr/lib/dovecot/imap ]; then
	echo "== installing dovecot-imapd (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=600 dovecot-core dovecot-imapd >/dev/null
fi

T=$(mktemp -d /tmp/imap-bench.XXXXXX)
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
for base in range(41500, 60000, 1000):
    ok = True
    for off in (24, 25, 110, 119, 143, 190, 220, 465, 587, 993, 995):
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
PPORT=$((PORT_BASE + 143))
DPORT=$((PORT_BASE + 220))

gcc -O2 -I"$ROOT/lib" -o "$T/fill" "$ROOT/bench/pop3/pop3_fill.c" \
    "$B/libpostern.a" -ldb -lcrypt

# ---------------------------------------------------------------- messages
# msgs/NNNNNN as imap_load.py's own APPEND would make them, and big/ for
# the large mailbox (1-3 KB each)
mkdir -p "$T/msgs" "$T/big"
"$PY" - "$T/msgs" "$PREFILL" "$T/big" "$BIG" <<'EOF'
import random, sys
d, n, bd, bn = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
MSG = (b"From: bench <bench@example.org>\r\nTo: u@example.com\r\n"
       b"Subject: load %d\r\nMessage-ID: <%d.bench@example.org>\r\n\r\n" +
       b"line of text for the body\r\n" * 40)
for i in range(n):
    open(f"{d}/{i:04d}", "wb").write(MSG % (i, i))
rnd = random.Random(100000)
words = "the of and to in is that for it as was with mail box index".split()
for i in range(bn):
    head = (f"From: Sender {i % 97} <s{i % 97}@example.org>\r\n"
            f"To: bench@localhost\r\nSubject: message {i}\r\n"
            f"Date: Thu, 1 Jan 2026 00:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{i}.big@example.org>\r\n\r\n")
    body = "\r\n".join(" ".join(rnd.choice(words) for _ in range(10))
                       for _ in range(rnd.randint(15, 60)))
    open(f"{bd}/{i:04d}", "wb").write((head + body + "\r\n").encode())
EOF

# libxcrypt's default (what Postern's userdb uses): crypt_gensalt(NULL, 0)
HASH=$("$PY" -c '
import ctypes, ctypes.util, sys
lc = ctypes.CDLL(ctypes.util.find_library("crypt"))
lc.crypt_gensalt.restype = ctypes.c_char_p
lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
lc.crypt.restype = ctypes.c_char_p
lc.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
print(lc.crypt(sys.argv[1].encode(), lc.crypt_gensalt(None, 0, None, 0)).decode())' "$PASS")
case $HASH in
\$y\$*) ;;
*) echo "no yescrypt hash: $HASH" >&2; exit 1 ;;
esac

# ---------------------------------------------------------------- Postern
"$B/bin/postern" instance init "$T/postern" --port-base "$PORT_BASE" >/dev/null
chmod 755 "$T/postern"
cat >> "$T/postern/postern.conf" <<EOF
imap_user_connection_limit = 0
imap_client_connection_limit = 0
EOF
echo "$PASS" | "$B/bin/postern" -c "$T/postern" user add "$USER_" \
    --password-stdin >/dev/null
echo "$PASS" | "$B/bin/postern" -c "$T/postern" user add big \
    --password-stdin >/dev/null
chown --reference="$T/postern/store" "$T/postern/data/users.db" 2>/dev/null || true

# ---------------------------------------------------------------- Dovecot
mkdir -p "$T/dovecot/run" "$T/dovecot/state" "$T/dovecot/mail"
if [ "$(id -u)" = 0 ]; then
	MU=nobody MG=$(id -gn nobody)
else
	MU=$(id -un) MG=$(id -gn)
fi
printf '%s:{CRYPT}%s\nbig:{CRYPT}%s\n' "$USER_" "$HASH" "$HASH" \
    > "$T/dovecot/passwd"
cat > "$T/dovecot/dovecot.conf" <<EOF
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
instance_name = imap-bench-$$
log_path = $T/dovecot/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$T/dovecot/mail/%n/Maildir
default_internal_user = $MU
default_login_user = $MU
default_internal_group = $MG
first_valid_uid = 1
default_process_limit = 1000
default_client_limit = 5000
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = $T/dovecot/passwd
}
userdb {
  driver = static
  args = uid=$MU gid=$MG home=$T/dovecot/mail/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DPORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
EOF

# maildir_fill SRC COUNT USER - Maildir files as Dovecot's LDA writes them
maildir_fill() {
	local md=$T/dovecot/mail/$3/Maildir
	rm -rf "$md"
	mkdir -p "$md/cur" "$md/new" "$md/tmp"
	"$PY" - "$1" "$2" "$md/cur" <<'EOF'
import os, sys
src, n, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = sorted(os.listdir(src), key=int)[:n]
for i, name in enumerate(names):
    data = open(f"{src}/{name}", "rb").read().replace(b"\r\n", b"\n")
    open(f"{dst}/{1767225600 + i}.M{i}P1.bench,S={len(data)}:2,", "wb").write(data)
EOF
	chown -R "$MU:$MG" "$T/dovecot/mail"
}

# postern_fill SRC COUNT USER - through lib/store (fsync off: a fixture)
postern_fill() {
	rm -rf "$T/postern/store/$3"	# store DESIGN.md: <store_dir>/<user>/
	"$T/fill" "$T/postern/store" "$3" "$1" "$2"
}

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

mkdir -p "$T/res"
for n in $CONNS; do
	for r in $(seq "$RUNS"); do
		for srv in postern dovecot; do
			if [ $srv = postern ]; then
				postern_fill "$T/msgs" "$PREFILL" "$USER_" >/dev/null
				port=$PPORT pat="imapd-mail"
			else
				maildir_fill "$T/msgs" "$PREFILL" "$USER_"
				port=$DPORT pat="dovecot-imap-bench-$$/imap"
			fi
			echo "== $srv, $n connections, run $r"
			"$PY" "$HERE/imap_load.py" --port "$port" --user "$USER_" \
			    --password "$PASS" --conns "$n" --seconds "$SECS" \
			    --prefill "$PREFILL" --seed "$r" --rss-pattern "$pat" \
			    --json "$T/res/$srv-$n-$r.json" > "$T/res/$srv-$n-$r.txt" 2>&1 ||
			    { cat "$T/res/$srv-$n-$r.txt"; exit 1; }
			grep "ops/s" "$T/res/$srv-$n-$r.txt"
			sleep 2
		done
	done
done

if [ "$BIG" -gt 0 ]; then
	echo "== $BIG-message INBOX"
	postern_fill "$T/big" "$BIG" big >/dev/null
	maildir_fill "$T/big" "$BIG" big
	"$PY" "$HERE/imap_load.py" --big --port "$PPORT" --user big \
	    --password "$PASS" --json "$T/res/big-postern.json"
	"$PY" "$HERE/imap_load.py" --big --port "$DPORT" --user big \
	    --password "$PASS" --json "$T/res/big-dovecot.json"
fi

"$PY" "$HERE/table.py" "$T/res" "$CONNS" "$RUNS"
echo "   dovecot $(dovecot --version | cut -d' ' -f1), $(nproc) CPUs," \
    "hash: yescrypt \$y\$j9T\$ in both"
