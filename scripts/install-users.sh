#!/usr/bin/env bash
# install-users.sh - create Postern's service accounts and folders (root).
#
# Accounts (system, no login shell): postern (the queue: smtpd, cleanup,
# qmgr), postern-mail (owns the mail store: lmtpd, imapd/pop3d after login,
# sieved), postern-vacation, postern-list, postern-news. Folders get the
# owners ARCHITECTURE.md gives them. Safe to run again.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-users: must run as root" >&2; exit 1; }

SPOOL=${QUEUE_DIRECTORY:-/var/spool/postern}
DATA=${DATA_DIRECTORY:-/var/lib/postern}
STORE=${STORE_DIRECTORY:-/var/mail/postern}

for u in postern postern-mail postern-vacation postern-list postern-news; do
	if ! getent passwd "$u" >/dev/null; then
		useradd --system --user-group --no-create-home \
		    --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
		echo "install-users: created user $u"
	fi
done
getent group postdrop >/dev/null || groupadd --system postdrop

install -d -o postern -g postern -m 0755 "$SPOOL"
for d in maildrop incoming active deferred hold corrupt; do
	install -d -o postern -g postern -m 0700 "$SPOOL/$d"
done
install -d -o postern -g postdrop -m 0730 "$SPOOL/maildrop"
install -d -o postern -g postern -m 0700 "$SPOOL/private"
install -d -o postern -g postdrop -m 0710 "$SPOOL/public"
install -d -o root -g root -m 0755 "$SPOOL/pid"
install -d -o postern -g postern -m 0750 "$DATA"
install -d -o postern-mail -g postern-mail -m 0700 "$STORE"
echo "install-users: accounts and folders are in place"
