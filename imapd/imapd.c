/* SPDX-License-Identifier: MIT */
/*
 * imapd - the Postern IMAP server (IMAP4rev1 + IMAP4rev2)
 *
 * DESCRIPTION
 *	Two roles, chosen with imap_role (master.conf -o), the mail role
 *	normally run by its own program imapd-mail (imapd_mail.c):
 *
 *	    127.0.0.1:143 inet n - n - - imapd
 *	    127.0.0.1:993 inet n - n - - imapd -o imap_tls_wrappermode=yes
 *	    imap-mail     unix y postern-mail n - 0 imapd-mail
 *
 *	"imapd -o imap_role=mail" serves the mail role too (older
 *	master.conf files), with this program's TLS and SASL libraries
 *	mapped for nothing.
 *
 *	The login role (imapd_login.c) greets, offers STARTTLS (or runs
 *	implicit TLS), parses commands and authenticates, with a short
 *	autologout timer and small command limits. On success it hands
 *	the connection to the mail role through $imap_mail_service
 *	(lib/login_proxy.h): the client socket itself, or, under TLS, one
 *	end of a socketpair, and then relays TLS <-> plaintext until the
 *	session ends. The mail role (imapd_conn.c receives the hand-off,
 *	imapd_session.c) opens the user's store and serves the authenticated session: one process per
 *	session, which sleeps in poll(2) while idle. The standalone role
 *	does both in one process (tests, imapd -S).
 *
 * SECURITY
 *	The login role runs as $mail_owner: it reads postern.conf, the TLS
 *	key (pre_jail, as root), and the user database (password checks);
 *	at login, list configs and, for lists with an LDAP group and an
 *	IMAP archive, their bind password file and directory (membership,
 *	passed to the mail role in the hand-off record); it cannot read the
 *	store ($store_owner, mode 0700). Everything it
 *	reads from the network is bounded (imap_login_timeout, an 8 KB
 *	command limit before login, 10 errors). It writes only the
 *	hand-off socket and its connection-slot files under
 *	$data_directory/imap-conn/.
 *	The mail role runs as $store_owner (master.conf user column),
 *	accepts connections only on a private unix socket (mode 0600 in
 *	$queue_directory/private/, owned by $mail_owner), so only a login
 *	process can name the user it serves. It reads and writes that
 *	user's store only, and $store_directory/.imap-conn/ (per-user
 *	session slots). Literals are bounded before allocation
 *	(imap_line_length_limit, imap_max_append_size).
 *
 * DIAGNOSTICS
 *	"connect from ADDR", "login: user=NAME, method=PLAIN, tls=...",
 *	"login failed: ...", "disconnect: user=NAME in=N out=N", through
 *	lib/log with the session ID as context.
 *
 * SEE ALSO
 *	imapd(8), login_proxy.h, RFC 3501, RFC 9051.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "login_proxy.h"
#include "sasl_server.h"
#include "server.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "imapd.h"

static struct tls_context *imapd_tls_ctx;

/* imapd_pre_jail - settings, and the TLS context while still root */
static void
imapd_pre_jail(void)
{
	struct str *err;
	const char *why;

	imapd_settings_load();
	if (imapd_settings.role == IMAPD_ROLE_MAIL)
		return;
	/* SASL plugins load here, as root and before any chroot */
	if (sasl_server_setup("postern", &why) < 0)
		log_error(NULL, "SASL disabled (AUTHENTICATE PLAIN only): %s",
		    why);
	if (*config_str(conf(), "tls_cert_file") == '\0') {
		if (imapd_settings.wrappermode)
			log_warn(NULL, "imap_tls_wrappermode is set but "
			    "tls_cert_file is not");
		return;
	}
	err = str_new(0, 0);
	imapd_tls_ctx = tls_context_new_server_config(conf(), err);
	if (imapd_tls_ctx == NULL)
		log_error(NULL, "TLS disabled: %s", str_c(err));
	str_free(&err);
}

/* imapd_serve_login - a network connection (login or standalone role) */
static void
imapd_serve_login(const struct server_conn *conn)
{
	struct login_conn c;
	struct str *err;

	if (!login_conn_accept(&c, conn, imapd_settings.login_timeout,
	    imapd_settings.data_dir, "imap-conn",
	    imapd_settings.ip_conn_limit)) {
		stream_puts(c.s, "* BYE [UNAVAILABLE] Too many connections "
		    "from your address\r\n");
		stream_flush(c.s);
		goto out;
	}
	c.secured = imapd_settings.loopback_secure &&
	    login_addr_is_loopback(c.peer_addr);
	if (imapd_settings.wrappermode) {
		if (imapd_tls_ctx == NULL) {
			log_error(&c.log, "implicit TLS without a certificate: "
			    "dropping the connection");
			goto out;
		}
		err = str_new(0, 0);
		c.tls_sess = tls_session_start(imapd_tls_ctx, c.s, NULL,
		    imapd_settings.login_timeout, err);
		if (c.tls_sess == NULL) {
			log_info(&c.log, "TLS handshake failed: %s", str_c(err));
			str_free(&err);
			goto out;
		}
		str_clear(err);
		tls_session_describe(c.tls_sess, err);
		c.tls_desc = str_steal(&err);
		c.tls = c.secured = true;
	}
	imapd_login_run(&c, imapd_tls_ctx);
out:
	tls_session_free(&c.tls_sess);
	login_conn_clear(&c);
}

static void
imapd_serve(const struct server_conn *conn)
{
	if (imapd_settings.role == IMAPD_ROLE_MAIL)
		imapd_serve_mail(conn);
	else
		imapd_serve_login(conn);
}

static void
imapd_pre_exit(void)
{
	tls_context_free(&imapd_tls_ctx);
	/*
	 * No sasl_server_deinit(): sasl_server_done unloads the plugins,
	 * and LeakSanitizer then reports the memory they still point at
	 * (every normal exit: max_use, max_idle, reload). The process is
	 * ending anyway.
	 */
}

int
main(int argc, char **argv)
{
	/* the GSSAPI plugin finds the keytab and krb5.conf through these */
	static const char *const keep_env[] = { SASL_SERVER_KEEP_ENV, NULL };
	static const struct server_ops ops = {
		.pre_jail = imapd_pre_jail,
		.serve = imapd_serve,
		.pre_exit = imapd_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
