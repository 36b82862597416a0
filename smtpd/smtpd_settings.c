/* SPDX-License-Identifier: MIT */
/*
 * smtpd_settings - smtpd's postern.conf parameters, read once per process
 *
 * DESCRIPTION
 *	smtpd_settings_load() copies what the session needs from conf()
 *	into struct smtpd_settings (pointers into conf(), which lives as
 *	long as the process), parses mynetworks and opens alias_maps. A
 *	bad value is logged and makes it return false; smtpd treats that
 *	as fatal (master restarts it with backoff once the operator fixed
 *	the file). A missing alias table is such an error too: accepting
 *	mail for recipients we cannot check would be worse.
 *
 * SEE ALSO
 *	smtpd(8), postern.conf(5)
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "str.h"

#include "smtpd.h"

struct smtpd_settings smtpd_settings;

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
	st->cleanup_socket = "public/cleanup";
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
	for (i = 0; i < st->n_alias_maps; i++)
		map_close(&st->alias_maps[i]);
	free(st->alias_maps);
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
