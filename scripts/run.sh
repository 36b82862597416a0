#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh BUILD_DIR RUN_DIR PORT_BASE - the demo instance of `make run`
#
# Makes RUN_DIR an instance (postern instance init) the first time, with a
# demo user "demo" whose random password is kept in RUN_DIR/demo-password
# (mode 0600); prints the endpoints and example client commands; then runs
# master in the foreground. Ctrl-C stops it cleanly (master handles SIGINT).
# An instance made by another build directory is re-pointed at this one
# (instance init --force keeps its mail, users and port base).
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 BUILD_DIR RUN_DIR PORT_BASE" >&2
	exit 2
fi
build=$1
run_dir=$2
port_base=$3
postern="$build/bin/postern"
master="$build/bin/master"

if [ ! -x "$postern" ]; then
	echo "run.sh: $postern is not built (run make first)" >&2
	exit 1
fi

if [ ! -e "$run_dir/instance.env" ]; then
	echo "run.sh: creating a demo instance in $run_dir (port base $port_base)"
	"$postern" instance init "$run_dir" --port-base "$port_base" >/dev/null
fi
run_dir=$(cd "$run_dir" && pwd -P)

# key VALUE from instance.env, without sourcing it
env_get() {
	local key val
	while IFS='=' read -r key val; do
		if [ "$key" = "$1" ]; then
			printf '%s\n' "$val"
			return 0
		fi
	done <"$run_dir/instance.env"
	echo "run.sh: $run_dir/instance.env has no $1" >&2
	exit 1
}

# Same build directory as the one that made the instance?
daemon_dir=$("$postern" -c "$run_dir" config -h daemon_directory)
build_bin=$(cd "$build/bin" && pwd -P)
if [ "$daemon_dir" != "$build_bin" ]; then
	echo "run.sh: pointing $run_dir at $build_bin (was $daemon_dir)"
	"$postern" instance init "$run_dir" --force \
	    --port-base "$(env_get PORT_BASE)" >/dev/null
fi

if [ ! -s "$run_dir/demo-password" ]; then
	password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
	if "$postern" -c "$run_dir" user list | grep -qx demo; then
		verb=passwd
	else
		verb=add
	fi
	printf '%s\n' "$password" |
	    "$postern" -c "$run_dir" user "$verb" demo --password-stdin
	# Written only once the user has it, so a failure is retried.
	(umask 077 && printf '%s\n' "$password" >"$run_dir/demo-password.tmp")
	chmod 600 "$run_dir/demo-password.tmp"
	mv "$run_dir/demo-password.tmp" "$run_dir/demo-password"
fi
password=$(head -n 1 "$run_dir/demo-password")

host=$(env_get HOST)
cert="$run_dir/tls/cert.pem"
smtp=$(env_get SMTP_PORT)
submission=$(env_get SUBMISSION_PORT)
smtps=$(env_get SMTPS_PORT)
imap=$(env_get IMAP_PORT)
imaps=$(env_get IMAPS_PORT)
pop3=$(env_get POP3_PORT)
pop3s=$(env_get POP3S_PORT)
sieve=$(env_get SIEVE_PORT)
lmtp=$(env_get LMTP_PORT)
nntp=$(env_get NNTP_PORT)

# built DAEMON PORT - a note when the endpoint cannot answer yet
built() {
	if [ ! -x "$build/bin/$1" ]; then
		echo "  ($1: not built yet)"
	elif ! grep -Eq "^[^#[:space:]]*:$2[[:space:]]" "$run_dir/master.conf"; then
		echo "  ($1: no service line in master.conf)"
	fi
}

cat <<EOF

Postern demo instance: $run_dir
  config   $run_dir/postern.conf, $run_dir/master.conf
  log      $(env_get LOG_FILE)
  user     demo, password $password  (in $run_dir/demo-password)
  TLS      self-signed for localhost: $cert

Endpoints (all on $host; also in $run_dir/instance.env):
  SMTP        $smtp$(built smtpd $smtp)
  submission  $submission (STARTTLS)$(built smtpd $submission)
  SMTPS       $smtps (implicit TLS)$(built smtpd $smtps)
  IMAP        $imap (STARTTLS)$(built imapd $imap)
  IMAPS       $imaps$(built imapd $imaps)
  POP3        $pop3 (STLS)$(built pop3d $pop3)
  POP3S       $pop3s$(built pop3d $pop3s)
  ManageSieve $sieve$(built sieved $sieve)
  LMTP        $lmtp$(built lmtpd $lmtp)
  NNTP        $nntp$(built news-gw $nntp)

Try:
  swaks --server $host:$smtp --to demo@localhost
  swaks --server $host:$submission --tls --tls-ca-path $cert \\
      --auth PLAIN --auth-user demo --auth-password '$password' --to demo@localhost
  swaks --server $host:$smtps --tls-on-connect --auth PLAIN \\
      --auth-user demo --auth-password '$password' --to demo@localhost
  curl --ssl-reqd --cacert $cert --user 'demo:$password' imap://localhost:$imap/INBOX
  curl --cacert $cert --user 'demo:$password' imaps://localhost:$imaps/INBOX
  openssl s_client -connect $host:$imaps -CAfile $cert
  curl --ssl-reqd --cacert $cert --user 'demo:$password' pop3://localhost:$pop3/
  openssl s_client -connect $host:$pop3s -CAfile $cert
  sieve-connect --server $host --port $sieve --user demo
  swaks --protocol LMTP --server $host:$lmtp --to demo@localhost
  python3 -c 'import nntplib; print(nntplib.NNTP("$host", $nntp).getwelcome())'

  $postern -c $run_dir status      (from another terminal)
  $postern -c $run_dir user add NAME --password-stdin

EOF

missing=()
for d in smtpd imapd pop3d sieved lmtpd news-gw; do
	[ -x "$build/bin/$d" ] || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
	list=$(printf '%s, ' "${missing[@]}")
	echo "Not built yet, so their ports do not answer:"
	echo "  (${list%, } arrive with later releases; see README status)"
	echo
fi

if [ ! -x "$master" ]; then
	echo "run.sh: $master is not built (run make first)" >&2
	exit 1
fi
if "$postern" -c "$run_dir" status >/dev/null 2>&1; then
	echo "run.sh: the instance in $run_dir is already running;" \
	    "stop it with: $postern -c $run_dir stop" >&2
	exit 1
fi
echo "Starting master in the foreground; Ctrl-C stops it."
exec "$master" -c "$run_dir" -f
