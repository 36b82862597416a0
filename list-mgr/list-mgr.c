/* SPDX-License-Identifier: MIT */
/*
 * list-mgr - the Postern mailing list manager, an LMTP server
 *
 * DESCRIPTION
 *	qmgr hands mail for a lists domain to list-mgr by LMTP
 *	(transport_maps: "lists.example.org  lmtp:unix:$queue_directory/
 *	private/list-mgr"). Each recipient names a list and a role:
 *
 *	    NAME@dom            a post: policy, moderation, distribution
 *	    NAME-request@dom    commands (subscribe, unsubscribe, help, who,
 *	                        confirm) and moderators' replies
 *	    NAME-join@dom       subscribe the sender (with confirmation)
 *	    NAME-leave@dom      unsubscribe the sender (with confirmation)
 *	    NAME-confirm+TOKEN@ confirmation replies
 *	    NAME-owner@dom      forwarded to the list's owners
 *	    NAME-bounces+MEMBER=DOMAIN@dom   VERP bounces (score per member)
 *
 *	A post accepted for distribution is archived, queued for digest
 *	members, and queued once per receiving member with the envelope
 *	sender NAME-bounces+local=domain@dom (VERP) through cleanup, the
 *	one injection path; the LMTP 250 comes only after every copy is
 *	queued (any failure: 451, and qmgr retries the whole post). See
 *	list-mgr(8) for why one queue entry per member.
 *
 *	With $list_role = http (an inet service the operator adds to
 *	master.conf) the same program is the RFC 8058 one-click
 *	unsubscribe endpoint instead (listmgr_http.c).
 *
 * SECURITY
 *	list-mgr runs as the master.conf user of its service (postern-list
 *	on a system install), never root. It reads postern.conf, reads and
 *	writes $list_directory only (plus a list's ldap_bind_password_file),
 *	connects to cleanup's socket and to LDAP lists' ldap_uri. All
 *	mail it reads is untrusted: header and command parsing is bounded,
 *	list names are allow-listed before they become paths, tokens must
 *	be 24 hex digits, and nothing in a message can make list-mgr write
 *	outside its list's directory.
 *	The http role takes requests from the network: read with
 *	bounded streams and an overall deadline, parsed strictly
 *	(listmgr_httpreq.c), and nothing changes without a POST carrying
 *	the member's HMAC token. As https (list_http_tls_security_level
 *	= encrypt) it reads the TLS certificate and key files in
 *	pre_jail, before the privilege drop (they may be root's). DMARC lookups send DNS queries for the
 *	authors' _dmarc names.
 *
 * DIAGNOSTICS
 *	"ID: list=NAME post from=<a> status=sent (N members)", "...
 *	status=held (reason)", "... status=rejected", "bounce member=<m>
 *	score=N", "member <m> disabled", "subscribe <m>" and so on.
 *
 * SEE ALSO
 *	list-mgr(8), postern(8) (postern list), RFC 2369, RFC 2919,
 *	RFC 8058, RFC 3464, RFC 1153.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "dns.h"
#include "list_store.h"
#include "log.h"
#include "server.h"
#include "str.h"

#include "listmgr.h"

struct listmgr_settings listmgr_settings;
struct __res_state listmgr_res;

/* listmgr_pre_jail - the settings */
static void
listmgr_pre_jail(void)
{
	struct config *cfg = conf();
	const char *role;

	listmgr_settings.myhostname = config_str(cfg, "myhostname");
	listmgr_settings.size_limit = config_size(cfg, "list_message_size_limit");
	if (listmgr_settings.size_limit == 0)
		listmgr_settings.size_limit = (uint64_t)1 << 40;
	listmgr_settings.timeout = config_time(cfg, "list_timeout");
	listmgr_settings.cleanup_socket = config_str(cfg, "list_cleanup_service");
	listmgr_settings.expansion_processes =
	    (unsigned)config_int(cfg, "list_expansion_processes");
	if (listmgr_settings.expansion_processes == 0)
		listmgr_settings.expansion_processes = 1;
	if (listmgr_settings.expansion_processes > 64)
		listmgr_settings.expansion_processes = 64;
	listmgr_settings.dmarc_lookup = config_bool(cfg, "list_dmarc_lookup");
	listmgr_settings.http_timeout = config_time(cfg, "list_http_timeout");
	role = config_str(cfg, "list_role");
	if (strcmp(role, "http") == 0)
		listmgr_settings.http = true;
	else if (strcmp(role, "lmtp") != 0)
		log_fatal(NULL, "list_role: \"%s\" is not lmtp or http", role);
	if (listmgr_settings.http)
		listmgr_http_setup(cfg);
	listmgr_settings.news_domain = config_str(cfg,
	    "list_news_gateway_domain");
	if (listmgr_settings.dmarc_lookup && !listmgr_settings.http) {
		struct str *why = str_new(0, 0);

		/* resolv.conf is read now, before any chroot */
		if (dns_resolver_init(&listmgr_res, config_str(cfg,
		    "list_dns_server"), why) < 0)
			log_fatal(NULL, "list_dns_server: %s", str_c(why));
		listmgr_settings.dns_ok = true;
		str_free(&why);
	}
}

/* listmgr_rcpt_ok - see listmgr.h */
bool
listmgr_rcpt_ok(const char *local, const char *domain)
{
	struct str *name = str_new(0, 0), *extra = str_new(0, 0);
	struct list *l = NULL;
	const char *role, *error;
	bool ok = false;

	role = list_split_address(local, name, extra);
	if (role != NULL && (l = list_store_open(str_c(name), &error)) != NULL)
		ok = strcasecmp(list_get(l, "domain"), domain) == 0 ||
		    domain[0] == '\0';
	list_store_free(&l);
	str_free(&name);
	str_free(&extra);
	return ok;
}

/* listmgr_deliver - see listmgr.h */
int
listmgr_deliver(const struct listmgr_msg *msg, const char *local,
    const char *domain, struct str *reply)
{
	struct str *name = str_new(0, 0), *extra = str_new(0, 0);
	struct list *l = NULL;
	const char *role, *error = NULL;
	int code;

	role = list_split_address(local, name, extra);
	if (role == NULL ||
	    (l = list_store_open(str_c(name), &error)) == NULL) {
		str_set_cstr(reply, "550 5.1.1 No such list");
		code = 550;
		goto out;
	}
	(void)domain;
	if (role[0] == '\0')
		code = listmgr_post(l, msg, false, reply);
	else if (strcmp(role, "bounces") == 0)
		code = listmgr_bounce(l, msg, str_c(extra), reply);
	else
		code = listmgr_request(l, msg, role, str_c(extra), reply);
out:
	list_store_free(&l);
	str_free(&name);
	str_free(&extra);
	return code;
}

/* listmgr_serve - one client connection */
static void
listmgr_serve(const struct server_conn *conn)
{
	struct str *peer = str_new(0, 0);

	if (strcmp(conn->peer_addr, "local") == 0)
		str_append_cstr(peer, "local");
	else
		str_printf(peer, "[%s]:%u", conn->peer_addr, conn->peer_port);
	if (listmgr_settings.http)
		listmgr_http_run(conn->fd, str_c(peer));
	else
		listmgr_session_run(conn->fd, str_c(peer));
	str_free(&peer);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = listmgr_pre_jail,
		.serve = listmgr_serve,
		.wakeup = listmgr_periodic,
		.pre_exit = listmgr_http_deinit,
	};

	return server_main(argc, argv, &ops);
}
