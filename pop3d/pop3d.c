/* SPDX-License-Identifier: MIT */
/*
 * pop3d - the Postern POP3 server (RFC 1939, 2449, 2595, 5034)
 *
 * DESCRIPTION
 *	One program, two roles, chosen with pop3_role (master.conf -o), as
 *	imapd(8):
 *
 *	    127.0.0.1:110 inet n - n - - pop3d
 *	    127.0.0.1:995 inet n - n - - pop3d -o pop3_tls_wrappermode=yes
 *	    pop3-mail     unix - postern-mail n - 0 pop3d -o pop3_role=mail
 *
 *	The login role (pop3d_login.c) greets, offers STLS (or runs
 *	implicit TLS), and runs the AUTHORIZATION state: CAPA, USER/PASS,
 *	AUTH (the mechanisms of $sasl_mechanisms through lib/sasl_server:
 *	libsasl2, GSSAPI with the pop/ key), STLS, QUIT. On success it hands the connection to the
 *	mail role through $pop3_mail_service (lib/login_proxy.h): the
 *	client socket itself, or under TLS one end of a socketpair, and
 *	then relays TLS <-> plaintext until the session ends. The mail
 *	role (pop3d_session.c) locks the maildrop, opens the user's INBOX
 *	as a snapshot and serves TRANSACTION and UPDATE. The standalone
 *	role does both in one process (tests, pop3d -S).
 *
 * SECURITY
 *	The login role runs as $mail_owner: it reads postern.conf, the TLS
 *	key and the SASL plugins (pre_jail, as root), the user database
 *	(password checks) and $auth_krb5_keytab (GSSAPI); it cannot read
 *	the store. Everything it reads from the network is
 *	bounded (pop3_login_timeout, POP3D_LINE_MAX per command,
 *	POP3D_LOGIN_ERRORS). It writes only the hand-off socket and its
 *	connection-slot files under $data_directory/pop3-conn/.
 *	The mail role runs as $store_owner (master.conf user column) and
 *	accepts connections only on a private unix socket (mode 0600 in
 *	$queue_directory/private/), so only a login process can name the
 *	user it serves. It reads that user's INBOX, expunges and sets
 *	\Seen in it at QUIT, and writes slot files under
 *	$store_directory/.pop3-conn/ and $store_directory/.pop3-lock/.
 *
 * DIAGNOSTICS
 *	"connect from ADDR", "login: user=NAME, method=MECH, tls=...",
 *	"login failed: ...", "disconnect: user=NAME top=N retr=N/BYTES
 *	del=N/M size=BYTES", through lib/log with the session ID.
 *
 * SEE ALSO
 *	pop3d(8), imapd(8), login_proxy.h, RFC 1939, RFC 2449, RFC 2595,
 *	RFC 5034.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

#include "pop3d.h"

struct pop3d_settings pop3d_settings;
static struct tls_context *pop3d_tls_ctx;

/* pop3d_settings_load - read the parameters once */
static void
pop3d_settings_load(void)
{
	struct config *cf = conf();
	const char *role = config_str(cf, "pop3_role");

	if (strcmp(role, "login") == 0)
		pop3d_settings.role = POP3D_ROLE_LOGIN;
	else if (strcmp(role, "mail") == 0)
		pop3d_settings.role = POP3D_ROLE_MAIL;
	else if (strcmp(role, "standalone") == 0)
		pop3d_settings.role = POP3D_ROLE_STANDALONE;
	else
		log_fatal(NULL, "pop3_role: unknown role \"%s\" (login, mail "
		    "or standalone)", role);
	pop3d_settings.banner = config_str(cf, "pop3_banner");
	pop3d_settings.login_timeout = config_time(cf, "pop3_login_timeout");
	pop3d_settings.timeout = config_time(cf, "pop3_timeout");
	pop3d_settings.disable_plaintext_auth =
	    config_bool(cf, "disable_plaintext_auth");
	pop3d_settings.loopback_secure = config_bool(cf, "pop3_loopback_secure");
	pop3d_settings.wrappermode = config_bool(cf, "pop3_tls_wrappermode");
	pop3d_settings.lock_session = config_bool(cf, "pop3_lock_session");
	pop3d_settings.mail_service = config_str(cf, "pop3_mail_service");
	pop3d_settings.ip_conn_limit =
	    (unsigned)config_int(cf, "pop3_client_connection_limit");
	pop3d_settings.user_conn_limit =
	    (unsigned)config_int(cf, "pop3_user_connection_limit");
	pop3d_settings.store_dir = config_str(cf, "store_directory");
	pop3d_settings.data_dir = config_str(cf, "data_directory");
}

/* pop3d_pre_jail - settings, and the TLS context while still root */
static void
pop3d_pre_jail(void)
{
	struct str *err;
	const char *why;

	pop3d_settings_load();
	if (pop3d_settings.role == POP3D_ROLE_MAIL)
		return;
	/* SASL plugins load here, as root and before any chroot */
	if (sasl_server_setup("postern", &why) < 0)
		log_error(NULL, "SASL disabled (AUTH PLAIN only): %s", why);
	if (*config_str(conf(), "tls_cert_file") == '\0') {
		if (pop3d_settings.wrappermode)
			log_warn(NULL, "pop3_tls_wrappermode is set but "
			    "tls_cert_file is not");
		return;
	}
	err = str_new(0, 0);
	pop3d_tls_ctx = tls_context_new_server_config(conf(), err);
	if (pop3d_tls_ctx == NULL)
		log_error(NULL, "TLS disabled: %s", str_c(err));
	str_free(&err);
}

/* pop3d_timeout_reply - see pop3d.h */
void
pop3d_timeout_reply(struct login_conn *c)
{
	static const char msg[] = "-ERR Disconnected for inactivity.\r\n";

	if (c->tls_sess != NULL)
		return;
	(void)send(stream_fd(c->s), msg, sizeof(msg) - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* pop3d_serve_login - a network connection (login or standalone role) */
static void
pop3d_serve_login(const struct server_conn *conn)
{
	struct login_conn c;
	struct str *err;

	if (!login_conn_accept(&c, conn, pop3d_settings.login_timeout,
	    pop3d_settings.data_dir, "pop3-conn",
	    pop3d_settings.ip_conn_limit)) {
		stream_puts(c.s, "-ERR [SYS/TEMP] Too many connections from "
		    "your address\r\n");
		stream_flush(c.s);
		goto out;
	}
	c.secured = pop3d_settings.loopback_secure &&
	    login_addr_is_loopback(c.peer_addr);
	if (pop3d_settings.wrappermode) {
		if (pop3d_tls_ctx == NULL) {
			log_error(&c.log, "implicit TLS without a certificate: "
			    "dropping the connection");
			goto out;
		}
		err = str_new(0, 0);
		c.tls_sess = tls_session_start(pop3d_tls_ctx, c.s, NULL,
		    pop3d_settings.login_timeout, err);
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
	pop3d_login_run(&c, pop3d_tls_ctx);
out:
	tls_session_free(&c.tls_sess);
	login_conn_clear(&c);
}

/* pop3d_serve_mail - a hand-off from a login process (mail role) */
static void
pop3d_serve_mail(const struct server_conn *conn)
{
	struct login_handoff h;
	struct login_conn c;
	const char *err;

	if (login_conn_handoff(&c, conn->fd, pop3d_settings.timeout, &h,
	    &err) < 0) {
		log_error(NULL, "hand-off from a login process failed: %s: %m",
		    err);
		return;
	}
	pop3d_session_run(&c, h.user);
	login_handoff_clear(&h);
	login_conn_clear(&c);
}

static void
pop3d_serve(const struct server_conn *conn)
{
	if (pop3d_settings.role == POP3D_ROLE_MAIL)
		pop3d_serve_mail(conn);
	else
		pop3d_serve_login(conn);
}

static void
pop3d_pre_exit(void)
{
	tls_context_free(&pop3d_tls_ctx);
	/* no sasl_server_deinit(): see imapd_pre_exit() in imapd/imapd.c */
}

int
main(int argc, char **argv)
{
	static const char *const keep_env[] = { SASL_SERVER_KEEP_ENV, NULL };
	static const struct server_ops ops = {
		.pre_jail = pop3d_pre_jail,
		.serve = pop3d_serve,
		.pre_exit = pop3d_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
