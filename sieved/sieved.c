/* SPDX-License-Identifier: MIT */
/*
 * sieved - the Postern ManageSieve server (RFC 5804)
 *
 * DESCRIPTION
 *	One program, two roles, chosen with managesieve_role (master.conf
 *	-o), as imapd(8) and pop3d(8):
 *
 *	    127.0.0.1:4190 inet n - n - - sieved
 *	    sieve-mail     unix y $store_owner n - 0 sieved -o managesieve_role=mail
 *
 *	The login role greets with the capabilities, offers STARTTLS and
 *	runs the non-authenticated state (sieved_session.c): CAPABILITY,
 *	STARTTLS, AUTHENTICATE (the mechanisms of $sasl_mechanisms through
 *	lib/sasl_server: libsasl2, GSSAPI with the sieve/ key), NOOP,
 *	LOGOUT. On success it hands
 *	the connection to the mail role through $managesieve_mail_service
 *	(lib/login_proxy.h) and, under TLS, relays TLS <-> plaintext until
 *	the session ends. The mail role answers the AUTHENTICATE with OK
 *	and serves the authenticated state on the user's scripts
 *	(lib/sieve/sieve_user.h: $store_directory/USER/sieve). The
 *	standalone role does both in one process (tests, sieved -S).
 *
 * SECURITY
 *	The login role runs as $mail_owner: it reads postern.conf, the TLS
 *	key and the SASL plugins (pre_jail, as root), the user database
 *	(password checks) and $auth_krb5_keytab (GSSAPI); it cannot read
 *	the store. Everything it reads from the network is
 *	bounded (managesieve_login_timeout, SIEVED_LINE_MAX per line,
 *	SIEVED_PRELOGIN_LITERAL_MAX per literal, SIEVED_LOGIN_ERRORS). It
 *	writes only the hand-off socket and its connection-slot files under
 *	$data_directory/sieve-conn/.
 *	The mail role runs as $store_owner (master.conf user column) and
 *	accepts connections only on a private unix socket (mode 0600 in
 *	$queue_directory/private/), so only a login process can name the
 *	user it serves. It reads and writes only that user's script
 *	directory; script names are allow-listed (sieve_user_name_ok) and
 *	never form paths outside it. Scripts are compiled (never run) with
 *	the engine's limits (sieve_max_script_size ...).
 *
 * DIAGNOSTICS
 *	"connect from ADDR", "login: user=NAME, method=MECH, tls=...",
 *	"login failed: ...", "putscript: user=U, name=N, size=S",
 *	"setactive: ...", "deletescript: ...", "disconnect: user=U, put=N,
 *	get=N", through lib/log with the session ID.
 *
 * SEE ALSO
 *	sieved(8), postern-sieve(8), lmtpd(8), login_proxy.h, sieve_user.h,
 *	RFC 5804.
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
#include "store/store.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "sieved.h"

struct sieved_settings sieved_settings;
static struct tls_context *sieved_tls_ctx;

/* sieved_settings_load - read the parameters once */
static void
sieved_settings_load(void)
{
	struct config *cf = conf();
	const char *role = config_str(cf, "managesieve_role");

	if (strcmp(role, "login") == 0)
		sieved_settings.role = SIEVED_ROLE_LOGIN;
	else if (strcmp(role, "mail") == 0)
		sieved_settings.role = SIEVED_ROLE_MAIL;
	else if (strcmp(role, "standalone") == 0)
		sieved_settings.role = SIEVED_ROLE_STANDALONE;
	else
		log_fatal(NULL, "managesieve_role: unknown role \"%s\" (login, "
		    "mail or standalone)", role);
	sieved_settings.implementation =
	    config_str(cf, "managesieve_implementation_string");
	sieved_settings.login_timeout =
	    config_time(cf, "managesieve_login_timeout");
	sieved_settings.timeout = config_time(cf, "managesieve_timeout");
	sieved_settings.disable_plaintext_auth =
	    config_bool(cf, "disable_plaintext_auth");
	sieved_settings.loopback_secure =
	    config_bool(cf, "managesieve_loopback_secure");
	sieved_settings.mail_service = config_str(cf, "managesieve_mail_service");
	sieved_settings.ip_conn_limit =
	    (unsigned)config_int(cf, "managesieve_client_connection_limit");
	sieved_settings.store_dir = config_str(cf, "store_directory");
	sieved_settings.data_dir = config_str(cf, "data_directory");
	sieved_settings.global_dir = config_str(cf, "sieve_global_dir");
	sieve_user_limits(cf, &sieved_settings.limits);
	sieve_user_quota_config(cf, &sieved_settings.quota);
}

/* sieved_pre_jail - settings, and the TLS context while still root */
static void
sieved_pre_jail(void)
{
	struct str *err;
	const char *why;

	sieved_settings_load();
	/*
	 * SASL plugins load here, as root and before any chroot; the mail
	 * role too, which authenticates again after UNAUTHENTICATE
	 */
	if (sasl_server_setup("postern", &why) < 0)
		log_error(NULL, "SASL disabled (AUTHENTICATE PLAIN only): %s",
		    why);
	if (sieved_settings.role == SIEVED_ROLE_MAIL)
		return;
	if (*config_str(conf(), "tls_cert_file") == '\0')
		return;
	err = str_new(0, 0);
	sieved_tls_ctx = tls_context_new_server_config(conf(), err);
	if (sieved_tls_ctx == NULL)
		log_error(NULL, "TLS disabled: %s", str_c(err));
	str_free(&err);
}

/* sieved_serve_login - a network connection (login or standalone role) */
static void
sieved_serve_login(const struct server_conn *conn)
{
	struct login_conn c;

	if (!login_conn_accept(&c, conn, sieved_settings.login_timeout,
	    sieved_settings.data_dir, "sieve-conn",
	    sieved_settings.ip_conn_limit)) {
		stream_puts(c.s, "BYE (TRYLATER) \"Too many connections from "
		    "your address\"\r\n");
		stream_flush(c.s);
		goto out;
	}
	c.secured = sieved_settings.loopback_secure &&
	    login_addr_is_loopback(c.peer_addr);
	if (sieved_settings.role == SIEVED_ROLE_STANDALONE)
		stream_set_timeout(c.s, sieved_settings.timeout);
	sieved_session_run(&c, sieved_tls_ctx, NULL);
out:
	tls_session_free(&c.tls_sess);
	login_conn_clear(&c);
}

/* sieved_serve_mail - a hand-off from a login process (mail role) */
static void
sieved_serve_mail(const struct server_conn *conn)
{
	struct login_handoff h;
	struct login_conn c;
	const char *err;

	if (login_conn_handoff(&c, conn->fd, sieved_settings.timeout, &h,
	    &err) < 0) {
		log_error(NULL, "hand-off from a login process failed: %s: %m",
		    err);
		return;
	}
	if (!store_user_ok(h.user))
		log_error(&c.log, "hand-off for an invalid user name");
	else
		sieved_session_run(&c, NULL, h.user);
	login_handoff_clear(&h);
	login_conn_clear(&c);
}

static void
sieved_serve(const struct server_conn *conn)
{
	if (sieved_settings.role == SIEVED_ROLE_MAIL)
		sieved_serve_mail(conn);
	else
		sieved_serve_login(conn);
}

static void
sieved_pre_exit(void)
{
	tls_context_free(&sieved_tls_ctx);
	/* no sasl_server_deinit(): see imapd_pre_exit() in imapd/imapd.c */
}

int
main(int argc, char **argv)
{
	static const char *const keep_env[] = { SASL_SERVER_KEEP_ENV, NULL };
	static const struct server_ops ops = {
		.pre_jail = sieved_pre_jail,
		.serve = sieved_serve,
		.pre_exit = sieved_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
