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
 *	drop), the TLS key (in pre_jail), the user database and alias maps
 *	(read-only, for recipient checks and AUTH), and writes only through
 *	the cleanup socket $queue_directory/private/cleanup and its own
 *	connection-count lock files in $queue_directory/smtpd-conn/. It
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
#include "server.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "smtpd.h"

struct smtpd_settings smtpd_settings;

static struct tls_context *smtpd_tls_ctx;

/* smtpd_settings_load - see smtpd.h */
bool
smtpd_settings_load(void)
{
	struct smtpd_settings *st = &smtpd_settings;
	struct config *c = conf();
	const char *const *nets, *const *maps;
	const char *v, *err;
	size_t n, i;
	bool ok = true;

	st->myhostname = config_str(c, "myhostname");
	st->banner = config_str(c, "smtpd_banner");
	st->cleanup_socket = "private/cleanup";
	st->size_limit = config_size(c, "message_size_limit");
	st->line_limit = config_size(c, "smtpd_line_length_limit");
	if (st->line_limit < 1000)
		st->line_limit = 1000;	/* RFC 5321 4.5.3.1.6 */
	st->rcpt_limit = (unsigned)config_int(c, "smtpd_recipient_limit");
	st->hard_error_limit = (unsigned)config_int(c, "smtpd_hard_error_limit");
	st->timeout = config_time(c, "smtpd_timeout");
	st->data_timeout = config_time(c, "smtpd_data_timeout");
	st->greet_pause = config_time(c, "smtpd_greet_pause");
	st->conn_limit = (unsigned)config_int(c, "smtpd_client_connection_count_limit");
	st->helo_required = config_bool(c, "smtpd_helo_required");
	st->disable_vrfy = config_bool(c, "disable_vrfy_command");
	st->peername_lookup = config_bool(c, "smtpd_peername_lookup");
	st->sasl_enable = config_bool(c, "smtpd_sasl_auth_enable");
	st->sasl_header = config_bool(c, "smtpd_sasl_authenticated_header");
	st->tls_auth_only = config_bool(c, "smtpd_tls_auth_only");
	st->wrappermode = config_bool(c, "smtpd_tls_wrappermode");
	st->recipient_delimiter = config_str(c, "recipient_delimiter");

	v = config_str(c, "smtpd_tls_security_level");
	if (strcmp(v, "none") == 0)
		st->tls_level = SMTPD_TLS_NONE;
	else if (strcmp(v, "may") == 0 || *v == '\0')
		st->tls_level = SMTPD_TLS_MAY;
	else if (strcmp(v, "encrypt") == 0)
		st->tls_level = SMTPD_TLS_ENCRYPT;
	else {
		log_error(NULL, "smtpd_tls_security_level: \"%s\" is not none, may "
		    "or encrypt", v);
		ok = false;
	}
	v = config_str(c, "smtpd_forbid_bare_newline");
	if (strcmp(v, "reject") == 0 || strcmp(v, "yes") == 0)
		st->bare_newline = SMTPD_BARE_NL_REJECT;
	else if (strcmp(v, "normalize") == 0 || strcmp(v, "no") == 0)
		st->bare_newline = SMTPD_BARE_NL_NORMALIZE;
	else {
		log_error(NULL, "smtpd_forbid_bare_newline: \"%s\" is not reject "
		    "or normalize", v);
		ok = false;
	}
	st->mydestination = config_list(c, "mydestination", &st->n_mydestination);
	st->client_restrictions = config_list(c, "smtpd_client_restrictions",
	    &st->n_client_restrictions);

	nets = config_list(c, "mynetworks", &n);
	free(st->mynetworks);
	st->mynetworks = xcalloc(n + 1, sizeof(*st->mynetworks));
	st->n_mynetworks = 0;
	for (i = 0; i < n; i++) {
		if (smtpd_net_parse(nets[i], &st->mynetworks[st->n_mynetworks]))
			st->n_mynetworks++;
		else {
			log_error(NULL, "mynetworks: bad network \"%s\"", nets[i]);
			ok = false;
		}
	}

	maps = config_list(c, "alias_maps", &n);
	st->alias_maps = xcalloc(n + 1, sizeof(*st->alias_maps));
	st->n_alias_maps = 0;
	for (i = 0; i < n; i++) {
		struct map *m = map_open(maps[i], 0, &err);

		if (m == NULL) {
			/* Like Postfix: a missing table defers, never accepts. */
			log_error(NULL, "alias_maps: %s: %s", maps[i], err);
			ok = false;
			continue;
		}
		st->alias_maps[st->n_alias_maps++] = m;
	}
	return ok;
}

/* smtpd_pre_jail - settings and the TLS context (the key may be root's) */
static void
smtpd_pre_jail(void)
{
	struct tls_params p;
	struct str *err;

	if (!smtpd_settings_load())
		log_fatal(NULL, "bad smtpd configuration");
	if (smtpd_settings.tls_level == SMTPD_TLS_NONE && !smtpd_settings.wrappermode)
		return;
	memset(&p, 0, sizeof(p));
	p.cert_file = config_str(conf(), "tls_cert_file");
	p.key_file = config_str(conf(), "tls_key_file");
	p.protocols = config_str(conf(), "tls_protocols");
	p.ciphers = config_str(conf(), "tls_ciphers");
	if (*p.cert_file == '\0') {
		if (smtpd_settings.wrappermode ||
		    smtpd_settings.tls_level == SMTPD_TLS_ENCRYPT)
			log_warn(NULL, "TLS is required but tls_cert_file is not set");
		return;
	}
	err = str_new(0, 0);
	smtpd_tls_ctx = tls_context_new_server(&p, err);
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
	for (i = 0; i < smtpd_settings.n_alias_maps; i++)
		map_close(&smtpd_settings.alias_maps[i]);
	free(smtpd_settings.alias_maps);
	free(smtpd_settings.mynetworks);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = smtpd_pre_jail,
		.serve = smtpd_serve,
		.pre_exit = smtpd_pre_exit,
	};

	return server_main(argc, argv, &ops);
}
