/* SPDX-License-Identifier: MIT */
/*
 * smtpd - the Postern SMTP server (MTA port, submission, SMTPS)
 *
 * DESCRIPTION
 *	One program serves all three SMTP services; master.conf selects
 *	the behaviour per service with -o overrides, Postfix-style:
 *
 *	    smtp       inet  n  -  n  -  -  smtpd
 *	    submission inet  n  -  n  -  -  smtpd -o smtpd_sasl_auth_enable=yes
 *	        -o smtpd_tls_security_level=encrypt
 *	        -o smtpd_client_restrictions=permit_sasl_authenticated,reject
 *	    smtps      inet  n  -  n  -  -  smtpd -o smtpd_tls_wrappermode=yes
 *	        -o smtpd_sasl_auth_enable=yes
 *	        -o smtpd_client_restrictions=permit_sasl_authenticated,reject
 *
 *	The server skeleton (lib/server) accepts connections and calls
 *	smtpd_serve() for each, one at a time per process. The
 *	conversation itself is smtpd_session.c; content is smtpd_data.c;
 *	policy smtpd_check.c; AUTH smtpd_sasl.c. Mail goes into the queue
 *	only through cleanup (lib/cleanup_client.h), and a 250 after the
 *	content means cleanup reported the queue file durably committed.
 *
 *	The TLS context is made once per process in pre_jail (the key may
 *	be readable only by root); a certificate that does not load is
 *	logged and TLS is then off (STARTTLS not offered; SMTPS
 *	connections are dropped). New certificates take effect when master
 *	restarts the workers (postern reload).
 *
 * SECURITY
 *	smtpd talks to the network and is not trusted by anything else. It
 *	runs as $mail_owner (never root; optionally chrooted into
 *	$queue_directory). It reads postern.conf (before the privilege
 *	drop), the TLS key, the shared TLS ticket keys and the SRS secret
 *	(in pre_jail), the user
 *	database and alias maps (read-only, for recipient checks and AUTH),
 *	and writes only through
 *	the cleanup socket $queue_directory/public/cleanup and its own
 *	connection-count lock files in $data_directory/smtpd-conn/. It
 *	cannot read mailboxes (owned by $store_owner). Every input line is
 *	bounded before it is read; every parser error is a reply.
 *
 * DIAGNOSTICS
 *	Through lib/log, with the queue ID as context from MAIL FROM on:
 *	"connect from name[addr]", "ID: client=name[addr]", "ID:
 *	from=<sender>, size=N, nrcpt=N (queued)", "NOQUEUE: reject: RCPT
 *	from ...", "disconnect from name[addr] ehlo=1 mail=1 ... commands=N".
 *
 * SEE ALSO
 *	smtpd(8), master(8), cleanup(8), RFC 5321.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "sasl_server.h"
#include "server.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "smtpd.h"

static struct tls_context *smtpd_tls_ctx;

/* smtpd_pre_jail - settings and the TLS context (the key may be root's) */
static void
smtpd_pre_jail(void)
{
	struct str *err;
	const char *why;

	if (!smtpd_settings_load())
		log_fatal(NULL, "bad smtpd configuration");
	smtpd_check_pre_jail();
	/* SASL plugins load here, as root and before any chroot */
	if (smtpd_settings.sasl_enable && sasl_server_setup("postern", &why) < 0)
		log_error(NULL, "SASL disabled (AUTH PLAIN LOGIN only): %s", why);
	if (smtpd_settings.tls_level == SMTPD_TLS_NONE && !smtpd_settings.wrappermode)
		return;
	if (*config_str(conf(), "tls_cert_file") == '\0') {
		if (smtpd_settings.wrappermode ||
		    smtpd_settings.tls_level == SMTPD_TLS_ENCRYPT)
			log_warn(NULL, "TLS is required but tls_cert_file is not set");
		return;
	}
	err = str_new(0, 0);
	smtpd_tls_ctx = tls_context_new_server_config(conf(), err);
	if (smtpd_tls_ctx == NULL)
		log_error(NULL, "TLS disabled: %s", str_c(err));
	str_free(&err);
}

/* smtpd_serve - one client connection */
static void
smtpd_serve(const struct server_conn *conn)
{
	struct smtpd_client client;
	struct str *name = str_new(0, 0);
	struct stream *s;

	smtpd_peer_name(conn->peer_addr, name);
	memset(&client, 0, sizeof(client));
	client.addr = conn->peer_addr;
	client.port = conn->peer_port;
	client.name = str_c(name);
	client.service = conn->service;
	/* The skeleton closes conn->fd after we return. */
	s = stream_new(conn->fd, smtpd_settings.timeout, STREAM_NO_CLOSE);
	smtpd_session_run(s, &client, smtpd_tls_ctx);
	smtpd_sasl_end();
	stream_free(&s);
	smtpd_conn_release();
	str_free(&name);
}

/* smtpd_pre_exit - release what the process holds */
static void
smtpd_pre_exit(void)
{
	size_t i;

	tls_context_free(&smtpd_tls_ctx);
	/*
	 * No sasl_server_deinit(): sasl_server_done unloads the plugins,
	 * and LeakSanitizer then reports the memory they still point at
	 * (every normal exit: max_use, max_idle, reload). The process is
	 * ending anyway.
	 */
	for (i = 0; i < smtpd_settings.n_alias_maps; i++)
		map_close(&smtpd_settings.alias_maps[i]);
	free(smtpd_settings.alias_maps);
	free(smtpd_settings.mynetworks);
}

int
main(int argc, char **argv)
{
	/* the GSSAPI plugin finds the keytab and krb5.conf through these */
	static const char *const keep_env[] = { SASL_SERVER_KEEP_ENV, NULL };
	static const struct server_ops ops = {
		.pre_jail = smtpd_pre_jail,
		.serve = smtpd_serve,
		.pre_exit = smtpd_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
