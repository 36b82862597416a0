/* SPDX-License-Identifier: MIT */
/*
 * lmtpd - the Postern LMTP server: local delivery into the mail store
 *
 * DESCRIPTION
 *	qmgr hands every message for a local user to lmtpd by LMTP (RFC
 *	2033), on a UNIX socket (local_transport =
 *	lmtp:unix:$queue_directory/private/lmtpd) or on TCP for tests and
 *	other clients:
 *
 *	    lmtpd           unix  -  postern-mail  n  -  -  lmtpd
 *	    127.0.0.1:24    inet  n  postern-mail  n  -  -  lmtpd
 *
 *	The server skeleton (lib/server) accepts connections and calls
 *	lmtpd_serve() for each, one at a time per process; master starts
 *	more processes as needed. The conversation is lmtpd_session.c, the
 *	content lmtpd_data.c, recipients and deliveries lmtpd_deliver.c,
 *	the choice of mailboxes lmtpd_plan.c, Message-ID duplicates
 *	lmtpd_dup.c. A recipient's 250 after the content means the store
 *	reported the message durably committed (store_append()).
 *
 * SECURITY
 *	lmtpd runs as $store_owner (master.conf user column), never root,
 *	and is, with imapd and pop3d, the only writer of the store. It
 *	reads postern.conf and the user database (read-only), reads and
 *	writes $store_directory (mailboxes, unlinked spool files) and
 *	$lmtp_duplicate_directory. Its clients are qmgr's delivery agent
 *	and local tests: the UNIX socket is private (mode 0700 directory).
 *	Every input line is bounded before it is read, the message size is
 *	bounded, every parser error is a reply; user names are allow-listed
 *	before they become paths.
 *
 * DIAGNOSTICS
 *	Through lib/log, with the queue ID of the first delivery token (else
 *	a transaction ID) as context: "connect from ...", "ID: client=...,
 *	from=<sender>", "ID: to=<rcpt>, mailbox=INBOX, uid=N, size=N,
 *	status=sent (delivered)", "ID: from=<sender>, size=N, nrcpt=N
 *	(done)", "disconnect from ... lhlo=1 mail=1 ... commands=N".
 *
 * SEE ALSO
 *	lmtpd(8), master(8), qmgr(8), RFC 2033, lib/store/DESIGN.md.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "stream.h"
#include "str.h"
#include "vacation.h"

#include "lmtpd.h"

/* lmtpd_pre_jail - the settings */
static void
lmtpd_pre_jail(void)
{
	if (!lmtpd_settings_load())
		log_fatal(NULL, "bad lmtpd configuration");
}

/* lmtpd_serve - one client connection */
static void
lmtpd_serve(const struct server_conn *conn)
{
	struct str *peer = str_new(0, 0);
	struct stream *s;

	if (strcmp(conn->peer_addr, "local") == 0)
		str_append_cstr(peer, "local");
	else
		str_printf(peer, "[%s]:%u", conn->peer_addr, conn->peer_port);
	/* The skeleton closes conn->fd after we return. */
	s = stream_new(conn->fd, lmtpd_settings.timeout, STREAM_NO_CLOSE);
	lmtpd_session_run(s, str_c(peer));
	stream_free(&s);
	str_free(&peer);
}

/* lmtpd_pre_exit - release what the process holds */
static void
lmtpd_pre_exit(void)
{
	lmtpd_deliver_deinit();
	vacation_setting_lookup_deinit();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = lmtpd_pre_jail,
		.serve = lmtpd_serve,
		.pre_exit = lmtpd_pre_exit,
	};

	return server_main(argc, argv, &ops);
}
