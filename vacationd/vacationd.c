/* SPDX-License-Identifier: MIT */
/*
 * vacationd - the Postern vacation responder (RFC 3834, RFC 5230)
 *
 * DESCRIPTION
 *	lmtpd hands every vacation request to vacationd by LMTP on a
 *	UNIX socket ($vacation_service, master.conf:
 *
 *	    vacationd  unix  n  postern-vacation  n  -  -  vacationd
 *
 *	): a Sieve vacation action of the user's script, or the user's
 *	vacation setting (postern vacation set) while it is active. Each
 *	RCPT carries the request's parameters (lib/vacation.h, the wire
 *	form in vacationd_session.c and vacationd(8)). vacationd owns the
 *	rules (when not to answer), the "already answered" databases
 *	(vacationd_db.c) and the reply, which it injects through cleanup
 *	like every other program (vacationd_reply.c).
 *
 *	Test hook: with POSTERN_TEST_HOOKS=1 in the environment (kept
 *	through the environment cleaning), POSTERN_TEST_NOW sets the clock
 *	vacationd uses for periods and Date: (lib/vacation.h
 *	vacation_now).
 *
 * SECURITY
 *	vacationd runs as its own user (master.conf user column, e.g.
 *	postern-vacation), never root. It reads postern.conf and the user
 *	database (read-only: departmental aliases), reads and writes
 *	$vacation_directory/replied/, and connects to cleanup. Its clients
 *	are lmtpd and local tests: the socket is public, because lmtpd runs
 *	as the store owner, so every connection's SO_PEERCRED uid must be
 *	the store owner's, vacationd's own or root's. It trusts
 *	nothing in a request: lines are bounded before they are read, the
 *	parameter record is decoded strictly, user names are allow-listed
 *	before they become paths, only the bounded header block of the
 *	message is kept, and header text is parsed, never executed. A
 *	reply goes only to the envelope sender of the message, with the
 *	null sender, at most once per sender and period.
 *
 * DIAGNOSTICS
 *	"ID: user=U, from=<S>: vacation reply sent as QUEUEID", "ID:
 *	user=U, from=<S>: no vacation reply: WHY", errors for the database
 *	and cleanup.
 *
 * SEE ALSO
 *	vacationd(8), lmtpd(8), postern(8) vacation, RFC 3834, RFC 5230.
 */
#include <sys/socket.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "str.h"

#include "vacationd.h"

struct vacationd_settings vacationd_settings;

/* the store owner's uid: lmtpd's (see SECURITY); (uid_t)-1 = unknown */
static uid_t vacationd_client_uid = (uid_t)-1;

/* vacationd_pre_jail - the settings */
static void
vacationd_pre_jail(void)
{
	struct config *cf = conf();
	struct vacationd_settings *s = &vacationd_settings;

	s->myhostname = config_str(cf, "myhostname");
	s->directory = config_str(cf, "vacation_directory");
	s->cleanup = config_str(cf, "vacationd_cleanup_service");
	s->user_database = config_str(cf, "user_database");
	s->delimiter = config_str(cf, "recipient_delimiter");
	s->mydestination = config_list(cf, "mydestination",
	    &s->n_mydestination);
	s->timeout = config_time(cf, "vacationd_timeout");
	{
		struct passwd *pw = getpwnam(config_str(cf, "store_owner"));

		if (pw != NULL)
			vacationd_client_uid = pw->pw_uid;
	}
	if (*s->directory == '\0' || *s->cleanup == '\0')
		log_fatal(NULL, "vacation_directory and "
		    "vacationd_cleanup_service must be set");
}

/* vacationd_serve - one client connection */
static void
vacationd_serve(const struct server_conn *conn)
{
	struct str *peer = str_new(0, 0);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	/*
	 * The socket is public (lmtpd runs as the store owner and cannot
	 * reach private/): admit only the store owner, ourselves and root.
	 */
	if (getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    cred.uid != 0 && cred.uid != getuid() &&
	    cred.uid != vacationd_client_uid) {
		log_warn(NULL, "connection from uid %lu refused",
		    (unsigned long)cred.uid);
		str_free(&peer);
		return;
	}
	if (strcmp(conn->peer_addr, "local") == 0)
		str_append_cstr(peer, "local");
	else
		str_printf(peer, "[%s]:%u", conn->peer_addr, conn->peer_port);
	vacationd_session_run(conn->fd, str_c(peer));
	str_free(&peer);
}

/* vacationd_pre_exit - release what the process holds */
static void
vacationd_pre_exit(void)
{
	vacationd_reply_deinit();
}

int
main(int argc, char **argv)
{
	static const char *const keep_env[] = {
		"POSTERN_TEST_HOOKS", "POSTERN_TEST_NOW", NULL
	};
	static const struct server_ops ops = {
		.pre_jail = vacationd_pre_jail,
		.serve = vacationd_serve,
		.pre_exit = vacationd_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
