/* SPDX-License-Identifier: MIT */
/*
 * news-gw - the Postern news gateway: mail to Usenet and Usenet to mail
 *
 * DESCRIPTION
 *	One program, three roles, chosen per connection by
 *	$news_gw_role (set with -o in master.conf) or, with "auto", by
 *	the kind of connection:
 *
 *	    news-gw    unix  n - n -  - news-gw            LMTP: mail -> news
 *	    127.0.0.1:NNTP inet n - n - - news-gw          NNTP feed: news -> mail
 *	    news-pull  unix  n - n 60 1 news-gw -o news_gw_role=pull
 *
 *	LMTP (newsgw_lmtp.c): qmgr routes gateway addresses here
 *	(transport_maps: "news.example.org lmtp:unix:$queue_directory/
 *	private/news-gw"); $newsgroups_maps names each address's groups;
 *	the article is posted to $news_gw_server with POST or IHAVE
 *	(newsgw_client.c). Feed (newsgw_feed.c): peers in $news_gw_peers,
 *	or that log in with AUTHINFO as an account of $news_gw_peer_maps
 *	(newsgw_feed_auth.c), send IHAVE or MODE STREAM CHECK/TAKETHIS;
 *	articles for groups in
 *	$news_to_mail_maps are mailed through cleanup. Pull
 *	(newsgw_pull.c): on master's wakeup, new articles of
 *	$news_gw_pull_groups are fetched and mailed the same way.
 *	Conversions are newsgw_article.c; loops and duplicates are
 *	stopped by the gateway marker, the Path entry and the Message-ID
 *	history (newsgw_history.c).
 *
 *	An inet connection in "auto" role is a feed; a unix one LMTP; a
 *	wakeup always pulls (nothing to do without pull groups).
 *
 * SECURITY
 *	news-gw runs as its master.conf user (postern-news or
 *	$mail_owner), never root. It reads postern.conf and its maps,
 *	reads and writes $news_gw_history (and its .lock), connects to
 *	cleanup's socket and to the configured NNTP servers. Everything
 *	from the network and in mail is untrusted: command lines are
 *	bounded (512 octets), articles and messages by
 *	$news_gw_message_size_limit and a per-line limit, header fields
 *	are checked before use, Message-IDs are syntax-checked, and no
 *	input becomes a path. Feeding is limited to $news_gw_peers by
 *	address or network, and to the accounts of $news_gw_peer_maps
 *	(from the addresses listed there) after AUTHINFO USER/PASS or
 *	SASL, whose passwords lib/auth checks (with its failed-login
 *	delay) and which go only inside TLS unless
 *	$news_gw_feed_tls_auth_only = no; libsasl2's plugins load in
 *	pre_jail. TLS on the feed (STARTTLS, or implicit with
 *	$news_gw_feed_tls_wrappermode) adds privacy, not authorisation,
 *	and its context (tls_cert_file, tls_key_file) is loaded in
 *	pre_jail, before the privilege drop. $news_gw_password is sent only to
 *	$news_gw_server (inside TLS with $news_gw_starttls); with
 *	$news_gw_starttls, TLS is required (fail closed) and, with
 *	$news_gw_tls_ca_file, the server's certificate must verify and
 *	name the server.
 *
 * DIAGNOSTICS
 *	"ID: message-id=<id>, groups=g, server=h:p, status=sent (240 ...)",
 *	"status=deferred (...)", "status=bounced (...)", "status=dropped
 *	(...)"; on the feed side "message-id=<id> from [addr]:port ...
 *	status=sent (mailed)", "not wanted (...)", "rejected: ...", and
 *	"refused NNTP feed from ...: not in news_gw_peers"; "AUTHINFO from
 *	[addr]:port: peer=NAME, method=M", "AUTHINFO from ... failed:
 *	user=NAME, method=M", "AUTHINFO from ... refused: user=NAME ...:
 *	not a feeding peer ..." (right password, not authorised); after
 *	AUTHINFO the feed lines name the peer as "[addr]:port (peer=NAME)".
 *
 * SEE ALSO
 *	news-gw(8), RFC 3977, RFC 4644, RFC 4643, RFC 4642, RFC 5536,
 *	RFC 5537, RFC 2033.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "sasl_client.h"
#include "sasl_server.h"
#include "server.h"
#include "str.h"
#include "tls.h"

#include "newsgw.h"

struct newsgw_settings newsgw_settings;

/* newsgw_open_maps - open every map of a list parameter */
static struct map **
newsgw_open_maps(const char *param, size_t *n_r)
{
	const char *const *specs;
	const char *error;
	struct map **maps;
	size_t i, n;

	specs = config_list(conf(), param, &n);
	maps = xcalloc(n + 1, sizeof(*maps));
	for (i = 0; i < n; i++)
		if ((maps[i] = map_open(specs[i], 0, &error)) == NULL)
			log_fatal(NULL, "%s: %s: %s", param, specs[i], error);
	*n_r = n;
	return maps;
}

/* newsgw_maps_lookup - see newsgw.h */
int
newsgw_maps_lookup(struct map **maps, size_t n, const char *key,
    struct str *value, struct log_ctx *log)
{
	const char *error;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = map_lookup(maps[i], key, value, &error);
		if (rc < 0) {
			log_error(log, "%s: %s", map_spec(maps[i]), error);
			return -1;
		}
		if (rc == 1)
			return 1;
	}
	return 0;
}

/*
 * newsgw_feed_tls_setup - the feed server's TLS settings and context,
 * made here while still root (the key may be root-only). Only services
 * that can be a feed need it. A missing or broken certificate leaves
 * STARTTLS unoffered (logged); with implicit TLS or the encrypt level
 * a feed then cannot be taken at all (newsgw_feed_run drops it), as
 * imapd and smtpd do.
 */
static void
newsgw_feed_tls_setup(struct config *cfg)
{
	struct newsgw_settings *s = &newsgw_settings;
	struct tls_params tp;
	struct str *err;
	const char *v;

	v = config_str(cfg, "news_gw_feed_tls_security_level");
	if (strcmp(v, "none") == 0)
		s->feed_tls_level = NEWSGW_FEED_TLS_NONE;
	else if (strcmp(v, "may") == 0 || *v == '\0')
		s->feed_tls_level = NEWSGW_FEED_TLS_MAY;
	else if (strcmp(v, "encrypt") == 0)
		s->feed_tls_level = NEWSGW_FEED_TLS_ENCRYPT;
	else
		log_fatal(NULL, "news_gw_feed_tls_security_level = %s: not "
		    "none, may or encrypt", v);
	s->feed_wrappermode = config_bool(cfg, "news_gw_feed_tls_wrappermode");
	if (strcmp(s->role, "feed") != 0 && strcmp(s->role, "auto") != 0)
		return;
	if (s->feed_tls_level == NEWSGW_FEED_TLS_NONE && !s->feed_wrappermode)
		return;
	memset(&tp, 0, sizeof(tp));
	tp.cert_file = config_str(cfg, "tls_cert_file");
	tp.key_file = config_str(cfg, "tls_key_file");
	tp.protocols = config_str(cfg, "tls_protocols");
	tp.ciphers = config_str(cfg, "tls_ciphers");
	if (*tp.cert_file == '\0') {
		if (s->feed_wrappermode ||
		    s->feed_tls_level == NEWSGW_FEED_TLS_ENCRYPT)
			log_warn(NULL, "news-gw feed TLS is required but "
			    "tls_cert_file is not set");
		return;
	}
	err = str_new(0, 0);
	s->feed_tls_ctx = tls_context_new_server(&tp, err);
	if (s->feed_tls_ctx == NULL)
		log_error(NULL, "news-gw feed TLS disabled: %s", str_c(err));
	else if (tls_context_ticket_keys_config(s->feed_tls_ctx, cfg, err) < 0)
		log_warn(NULL, "TLS session tickets not shared between "
		    "processes: %s", str_c(err));
	str_free(&err);
}

/* newsgw_pre_jail - the settings and maps */
static void
newsgw_pre_jail(void)
{
	struct config *cfg = conf();
	struct newsgw_settings *s = &newsgw_settings;
	struct tls_params tp;
	struct str *err;
	const char *why = NULL;
	size_t i;

	s->role = config_str(cfg, "news_gw_role");
	if (strcmp(s->role, "auto") != 0 && strcmp(s->role, "lmtp") != 0 &&
	    strcmp(s->role, "feed") != 0 && strcmp(s->role, "pull") != 0)
		log_fatal(NULL, "news_gw_role = %s: not auto, lmtp, feed or "
		    "pull", s->role);
	s->myhostname = config_str(cfg, "myhostname");
	s->path_identity = config_str(cfg, "news_gw_path_identity");
	if (s->path_identity[0] == '\0' || strpbrk(s->path_identity,
	    "! \t;<>@") != NULL)
		log_fatal(NULL, "news_gw_path_identity = %s: must be a host "
		    "name", s->path_identity);
	s->server = config_str(cfg, "news_gw_server");
	s->post_method = config_str(cfg, "news_gw_post_method");
	if (strcasecmp(s->post_method, "post") != 0 &&
	    strcasecmp(s->post_method, "ihave") != 0)
		log_fatal(NULL, "news_gw_post_method = %s: not post or ihave",
		    s->post_method);
	s->username = config_str(cfg, "news_gw_username");
	s->password = config_str(cfg, "news_gw_password");
	if (s->username[0] != '\0' && strcmp(s->role, "feed") != 0) {
		/* libsasl2's client plugins load here, before any chroot */
		err = str_new(0, 0);
		if (sasl_client_setup(err) < 0)
			log_warn(NULL, "AUTHINFO SASL disabled (AUTHINFO USER "
			    "only): %s", str_c(err));
		str_free(&err);
	}
	s->starttls = config_bool(cfg, "news_gw_starttls");
	s->tls_ca_file = config_str(cfg, "news_gw_tls_ca_file");
	if (s->starttls) {
		/* TLS is required then: no context, no news-gw */
		memset(&tp, 0, sizeof(tp));
		tp.ca_file = s->tls_ca_file;
		tp.protocols = config_str(cfg, "tls_protocols");
		err = str_new(0, 0);
		s->tls_ctx = tls_context_new_client(&tp, err);
		if (s->tls_ctx == NULL)
			log_fatal(NULL, "news_gw_starttls = yes: %s",
			    str_c(err));
		str_free(&err);
	}
	newsgw_feed_tls_setup(cfg);
	s->peers = config_list(cfg, "news_gw_peers", &s->npeers);
	for (i = 0; i < s->npeers; i++)
		if (!newsgw_peer_spec_ok(s->peers[i]))
			log_fatal(NULL, "news_gw_peers: \"%s\" is not an "
			    "address or a network (a.b.c.d/n, x::y/n)",
			    s->peers[i]);
	s->peer_maps = newsgw_open_maps("news_gw_peer_maps", &s->npeer_maps);
	s->feed_tls_auth_only = config_bool(cfg, "news_gw_feed_tls_auth_only");
	if (s->npeer_maps > 0 && (strcmp(s->role, "feed") == 0 ||
	    strcmp(s->role, "auto") == 0) &&
	    sasl_server_setup("postern", &why) < 0)
		/* libsasl2's server plugins load here, before any chroot */
		log_error(NULL, "news-gw feed: AUTHINFO SASL disabled "
		    "(AUTHINFO USER only): %s", why);
	s->history = config_str(cfg, "news_gw_history");
	s->history_lifetime = config_time(cfg, "news_gw_history_lifetime");
	s->size_limit = config_size(cfg, "news_gw_message_size_limit");
	if (s->size_limit == 0)
		s->size_limit = (uint64_t)1 << 30;
	s->timeout = config_time(cfg, "news_gw_timeout");
	s->cleanup_socket = config_str(cfg, "news_gw_cleanup_service");
	s->envelope_sender = config_str(cfg, "news_gw_envelope_sender");
	s->pull_groups = config_list(cfg, "news_gw_pull_groups",
	    &s->npull_groups);
	s->pull_server = config_str(cfg, "news_gw_pull_server");
	s->pull_backlog = (unsigned)config_int(cfg, "news_gw_pull_backlog");
	s->newsgroups_maps = newsgw_open_maps("newsgroups_maps",
	    &s->nnewsgroups_maps);
	s->news_to_mail_maps = newsgw_open_maps("news_to_mail_maps",
	    &s->nnews_to_mail_maps);
}

/* newsgw_serve - one connection, in the role of the service */
static void
newsgw_serve(const struct server_conn *conn)
{
	struct str *peer = str_new(0, 0);
	const char *role = newsgw_settings.role;
	bool local = strcmp(conn->peer_addr, "local") == 0;

	if (local)
		str_append_cstr(peer, "local");
	else
		str_printf(peer, "[%s]:%u", conn->peer_addr, conn->peer_port);
	if (strcmp(role, "auto") == 0)
		role = local ? "lmtp" : "feed";
	if (strcmp(role, "lmtp") == 0)
		newsgw_lmtp_run(conn->fd, str_c(peer));
	else if (strcmp(role, "feed") == 0)
		newsgw_feed_run(conn->fd, conn->peer_addr, str_c(peer));
	else
		log_warn(NULL, "connection from %s to the puller: closed",
		    str_c(peer));
	str_free(&peer);
}

/* newsgw_pre_exit - close the maps */
static void
newsgw_pre_exit(void)
{
	size_t i;

	for (i = 0; i < newsgw_settings.nnewsgroups_maps; i++)
		map_close(&newsgw_settings.newsgroups_maps[i]);
	for (i = 0; i < newsgw_settings.nnews_to_mail_maps; i++)
		map_close(&newsgw_settings.news_to_mail_maps[i]);
	for (i = 0; i < newsgw_settings.npeer_maps; i++)
		map_close(&newsgw_settings.peer_maps[i]);
	free(newsgw_settings.newsgroups_maps);
	free(newsgw_settings.news_to_mail_maps);
	free(newsgw_settings.peer_maps);
	newsgw_settings.peer_maps = NULL;
	tls_context_free(&newsgw_settings.tls_ctx);
	tls_context_free(&newsgw_settings.feed_tls_ctx);
	newsgw_settings.newsgroups_maps = NULL;
	newsgw_settings.news_to_mail_maps = NULL;
}

int
main(int argc, char **argv)
{
	static const char *const keep_env[] = { SASL_SERVER_KEEP_ENV, NULL };
	static const struct server_ops ops = {
		.pre_jail = newsgw_pre_jail,
		.serve = newsgw_serve,
		.wakeup = newsgw_pull,
		.pre_exit = newsgw_pre_exit,
		.keep_env = keep_env,
	};

	return server_main(argc, argv, &ops);
}
