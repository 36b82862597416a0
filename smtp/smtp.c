/* SPDX-License-Identifier: MIT */
/*
 * smtp - the SMTP and LMTP delivery agent
 *
 * DESCRIPTION
 *	qmgr connects to this agent's UNIX socket (master.conf services
 *	"smtp" and "lmtp", both running this program) and sends one
 *	delivery request (lib/deliver_proto.h): queue ID and queue, the
 *	next hop, the sender and up to $default_destination_recipient_limit
 *	recipients with their queue file indexes, ORCPT, NOTIFY and delivery
 *	tokens. The agent opens the queue file read-only itself, delivers
 *	the content to the next hop (smtp_session.c) and answers with one
 *	status per recipient: delivered, deferred or bounced, with the
 *	enhanced status code and the reply text. It never writes the queue
 *	file: qmgr records each outcome durably before acknowledging
 *	anything.
 *
 *	The protocol is LMTP when the service name starts with "lmtp" (as
 *	in Postfix, where the same binary serves both), SMTP otherwise.
 *	Single mode: one request per process at a time; master runs as many
 *	processes as qmgr's concurrency asks for, up to the service's
 *	maxproc. Between requests the process keeps the sessions of its
 *	last deliveries open for $smtp_connection_cache_time and reuses
 *	one for the next request to the same destination
 *	(smtp_cache.c); the skeleton's idle hook closes expired ones.
 *
 *	A request that cannot be read or decoded is logged and the
 *	connection closed (qmgr then defers those recipients); a queue
 *	file that cannot be opened defers every recipient.
 *
 * SECURITY
 *	Runs as $mail_owner (unprivileged), possibly chrooted into
 *	$queue_directory. Before the jail it reads /etc/resolv.conf
 *	(res_ninit), $smtp_tls_CAfile, $smtp_sasl_password_maps (which
 *	may therefore be readable by root alone) and libsasl2's plugins.
 *	Reads queue files and the requests of qmgr (which
 *	it distrusts: every field is checked by the strict decoder, every
 *	recipient index against the queue file). Writes nothing to disk.
 *	Talks to the next hop named in the request (and keeps idle
 *	sessions with it for the cache time); server replies are
 *	bounded (line and total length) before they are parsed, and are
 *	escaped before they are logged or passed on.
 *
 * DIAGNOSTICS
 *	Problems with the request or the queue file are logged with the
 *	queue ID; delivery outcomes are logged by qmgr.
 *
 * SEE ALSO
 *	smtp(8), qmgr(8), lib/deliver_proto.h, RFC 5321, RFC 2033
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "deliver_proto.h"
#include "log.h"
#include "map.h"
#include "server.h"
#include "stream.h"
#include "tls.h"
#include "tls_dane.h"
#include "smtp.h"

#define SMTP_REQUEST_TIMEOUT	60	/* seconds to read qmgr's request */

struct smtp_settings smtp_settings;

/* smtp_set_status - see smtp.h */
void
smtp_set_status(struct smtp_delivery *d, size_t i, enum deliver_status status,
    unsigned flags, const char *dsn, const char *text)
{
	struct smtp_rcpt_state *r = &d->rcpts[i];

	if (r->done)
		return;
	r->done = true;
	r->status = status;
	r->flags = flags;
	str_set_cstr(r->dsn, dsn);
	str_clear(r->text);
	/* keep it within the protocol's string limit */
	str_append(r->text, text, MIN(strlen(text), DELIVER_PROTO_TEXT_MAX));
	/* the DSN's Remote-MTA (RFC 3464 2.3.5): who said it */
	if ((flags & DELIVER_RES_F_REMOTE) != 0 && d->host != NULL &&
	    strlen(d->host) <= DELIVER_PROTO_TEXT_MAX)
		r->remote_mta = xstrdup(d->host);
}

/* smtp_set_all - see smtp.h */
void
smtp_set_all(struct smtp_delivery *d, enum deliver_status status,
    const char *dsn, const char *text)
{
	size_t i;

	for (i = 0; i < d->nrcpts; i++)
		smtp_set_status(d, i, status, 0, dsn, text);
}

/* smtp_respond - encode and send the response */
static void
smtp_respond(struct smtp_delivery *d, struct stream *s)
{
	struct deliver_result *results;
	struct deliver_response res;
	struct str *out = str_new(1024, 0);
	const char *error = NULL;
	size_t i;

	results = xcalloc(d->nrcpts + 1, sizeof(*results));
	for (i = 0; i < d->nrcpts; i++) {
		results[i].index = d->rcpts[i].rcpt->index;
		results[i].status = d->rcpts[i].status;
		results[i].flags = d->rcpts[i].flags;
		results[i].dsn = str_c(d->rcpts[i].dsn);
		results[i].text = str_c(d->rcpts[i].text);
		results[i].remote_mta = d->rcpts[i].remote_mta;
		if (!deliver_dsn_ok(results[i].dsn)) {
			log_warn(&d->log, "bad status code \"%s\"; using 4.0.0",
			    results[i].dsn);
			results[i].status = DELIVER_STATUS_DEFERRED;
			results[i].dsn = "4.0.0";
		}
	}
	memset(&res, 0, sizeof(res));
	res.relay = str_c(d->relay);
	res.results = results;
	res.nresults = d->nrcpts;
	if (deliver_response_encode(&res, out, &error) < 0) {
		log_error(&d->log, "cannot encode the response: %s", error);
	} else {
		stream_set_timeout(s, SMTP_REQUEST_TIMEOUT);
		if (stream_write(s, str_c(out), str_len(out)) < 0 ||
		    stream_flush(s) < 0)
			log_warn(&d->log, "cannot send the response to qmgr: %m");
	}
	free(results);
	str_free(&out);
}

/* smtp_tls_level_parse - "none" ... "dane-only", or -1 */
static int
smtp_tls_level_parse(const char *s)
{
	static const char *const names[] = { "none", "may", "encrypt",
	    "verify", "dane", "dane-only" };
	size_t i;

	s += strspn(s, " \t");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncasecmp(s, names[i], strlen(names[i])) == 0 &&
		    (s[strlen(names[i])] == '\0' ||
		    strchr(" \t", s[strlen(names[i])]) != NULL))
			return (int)i;
	return -1;
}

/*
 * smtp_tls_policy - the TLS level for a next hop: $smtp_tls_policy_maps
 * by the whole next hop ("[host]:port"), then by its host or domain,
 * else $smtp_tls_security_level
 */
static int
smtp_tls_policy(struct smtp_delivery *d, const char *nexthop,
    const char *host)
{
	struct str *v = str_new(64, 0);
	const char *keys[2] = { nexthop, host };
	int level = smtp_settings.tls_level;
	size_t i, k;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < smtp_settings.ntls_policy; i++) {
			const char *error = NULL;
			int r;

			if (smtp_settings.tls_policy[i] == NULL &&
			    (smtp_settings.tls_policy[i] = map_open(
			    smtp_settings.tls_policy_specs[i], 0, &error)) ==
			    NULL) {
				log_warn(&d->log, "TLS policy table %s: %s",
				    smtp_settings.tls_policy_specs[i], error);
				continue;
			}
			r = map_lookup(smtp_settings.tls_policy[i], keys[k], v,
			    &error);
			if (r > 0) {
				int l = smtp_tls_level_parse(str_c(v));

				if (l < 0)
					log_warn(&d->log, "TLS policy for %s: "
					    "unknown level \"%s\"; using "
					    "encrypt", keys[k], str_c(v));
				level = l < 0 ? SMTP_TLS_ENCRYPT : l;
				goto out;
			}
		}
	}
out:
	str_free(&v);
	return level;
}

/*
 * smtp_deliver_inet - a TCP next hop: "[host]:port" and "inet:host:port"
 * directly, a bare domain (or "domain:port") by MX lookup; each server
 * address in turn until one takes the mail or refuses it for good
 */
static void
smtp_deliver_inet(struct smtp_delivery *d, const char *nexthop)
{
	struct smtp_addrs addrs;
	struct str *why = str_new(128, 0), *key = str_new(128, 0);
	enum smtp_dns_result dr;
	bool direct, *was_done = NULL, connected = false, next_ok;
	struct in_addr a4;
	struct in6_addr a6;
	char *host = NULL, addr[NI_MAXHOST];
	unsigned port;
	size_t i, limit;
	int policy;

	memset(&addrs, 0, sizeof(addrs));
	direct = smtp_settings.lmtp || *nexthop == '[';
	if (strncmp(nexthop, "inet:", 5) == 0) {
		nexthop += 5;
		direct = true;
	}
	d->nexthop = nexthop;		/* SASL password lookup key */
	if (smtp_split_hostport(nexthop, smtp_settings.lmtp ? 24 :
	    smtp_settings.mx_port, &host, &port) < 0) {
		str_printf(why, "malformed next hop \"%s\"", nexthop);
		str_set_cstr(d->relay, nexthop);
		smtp_set_all(d, DELIVER_STATUS_BOUNCED, "5.4.4", str_c(why));
		goto out;
	}
	if (inet_pton(AF_INET, host, &a4) == 1 ||
	    inet_pton(AF_INET6, host, &a6) == 1)
		direct = true;
	d->tls_level = smtp_settings.lmtp ? SMTP_TLS_NONE :
	    smtp_tls_policy(d, nexthop, host);
	dr = smtp_dns_resolve(host, !direct, port, &addrs, why);
	if (dr != SMTP_DNS_OK) {
		str_set_cstr(d->relay, host);
		if (dr == SMTP_DNS_NULLMX)
			smtp_set_all(d, DELIVER_STATUS_BOUNCED, "5.1.10",
			    str_c(why));
		else if (dr == SMTP_DNS_TEMP)
			smtp_set_all(d, DELIVER_STATUS_DEFERRED, "4.4.3",
			    str_c(why));
		else
			smtp_set_all(d, DELIVER_STATUS_BOUNCED, "5.4.4",
			    str_c(why));
		goto out;
	}
	was_done = xcalloc(d->nrcpts + 1, sizeof(*was_done));
	for (i = 0; i < d->nrcpts; i++)
		was_done[i] = d->rcpts[i].done;
	limit = addrs.n;
	if (smtp_settings.mx_address_limit > 0 &&
	    limit > smtp_settings.mx_address_limit)
		limit = smtp_settings.mx_address_limit;
	policy = d->tls_level;
	for (i = 0; i < limit; i++) {
		const struct smtp_addr *a = &addrs.a[i];
		int fd;
		size_t k;

		if (getnameinfo((const struct sockaddr *)&a->ss, a->len, addr,
		    sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0)
			(void)snprintf(addr, sizeof(addr), "?");
		str_clear(d->relay);
		str_printf(d->relay, "%s[%s]:%u", a->host, addr, port);
		/* DANE (RFC 7672): this server's TLSA records decide */
		tls_dane_free(&d->dane);
		d->tls_level = policy < SMTP_TLS_DANE ? policy :
		    smtp_dns_dane(a, port, policy, &d->dane, why);
		if (d->tls_level < 0) {
			log_info(&d->log, "%s: %s", str_c(d->relay), str_c(why));
			continue;
		}
		/* the destination of a cached session: see smtp_cache.c */
		str_clear(key);
		str_printf(key, "%s %s %d", nexthop, str_c(d->relay),
		    d->tls_level);
		d->host = a->host;
		d->cache_key = str_c(key);
		if (smtp_session_cached(d, str_c(key), &next_ok)) {
			connected = true;
		} else {
			smtp_cache_close_all();	/* see smtp_cache.c */
			if ((fd = smtp_connect_addr(a)) < 0) {
				str_clear(why);
				str_printf(why, "connect to %s: %m",
				    str_c(d->relay));
				log_info(&d->log, "%s", str_c(why));
				continue;
			}
			connected = true;
			next_ok = smtp_session(d, fd, str_c(key));
		}
		if (!next_ok || i + 1 == limit)
			break;
		/* nothing committed: forget this server's verdicts, next */
		for (k = 0; k < d->nrcpts; k++)
			if (!was_done[k])
				d->rcpts[k].done = false;
		connected = false;
	}
	if (!connected)
		smtp_set_all(d, DELIVER_STATUS_DEFERRED, "4.4.1", str_c(why));
out:
	d->host = NULL;
	d->nexthop = NULL;
	d->cache_key = NULL;
	free(was_done);
	smtp_addrs_free(&addrs);
	tls_dane_free(&d->dane);
	free(host);
	str_free(&key);
	str_free(&why);
}

/* smtp_deliver - one request */
static void
smtp_deliver(struct smtp_delivery *d)
{
	const struct deliver_request *req = d->req;
	struct str *why = str_new(128, 0);
	const char *error = NULL;
	size_t i;
	bool perm, next_ok;
	int fd;

	d->qf = queue_file_open(".", req->queue, req->queue_id, 0, &error);
	if (d->qf == NULL) {
		str_printf(why, "cannot open the queue file: %s (%m)",
		    error != NULL ? error : "error");
		log_warn(&d->log, "%s", str_c(why));
		smtp_set_all(d, DELIVER_STATUS_DEFERRED, "4.3.0", str_c(why));
		goto out;
	}
	for (i = 0; i < d->nrcpts; i++) {
		if (d->rcpts[i].rcpt->index >= queue_file_rcpt_count(d->qf)) {
			log_warn(&d->log, "request names recipient %u of %zu",
			    (unsigned)d->rcpts[i].rcpt->index,
			    queue_file_rcpt_count(d->qf));
			smtp_set_status(d, i, DELIVER_STATUS_DEFERRED, 0,
			    "4.3.0", "bad recipient index in the request");
		}
	}
	if (strncmp(req->nexthop, "unix:", 5) != 0 && req->nexthop[0] != '/') {
		smtp_deliver_inet(d, req->nexthop);
		goto out;
	}
	str_set_cstr(d->relay, req->nexthop + (req->nexthop[0] == '/' ? 0 : 5));
	if (smtp_session_cached(d, req->nexthop, &next_ok))
		goto out;
	smtp_cache_close_all();		/* see smtp_cache.c */
	fd = smtp_connect(req->nexthop, smtp_settings.lmtp ? 24 : 25,
	    d->relay, why, &perm);
	if (fd < 0) {
		if (str_len(d->relay) == 0)
			str_set_cstr(d->relay, req->nexthop);
		smtp_set_all(d, perm ? DELIVER_STATUS_BOUNCED :
		    DELIVER_STATUS_DEFERRED, perm ? "5.4.4" : "4.4.1",
		    str_c(why));
		goto out;
	}
	(void)smtp_session(d, fd, req->nexthop);
out:
	str_free(&why);
}

/* smtp_serve - one connection from qmgr */
static void
smtp_serve(const struct server_conn *conn)
{
	struct smtp_delivery d;
	struct stream *s = stream_new(conn->fd, SMTP_REQUEST_TIMEOUT,
	    STREAM_NO_CLOSE);
	struct str *buf = str_new(4096, 0);
	struct deliver_request *req = NULL;
	const char *error = NULL;
	size_t i;

	memset(&d, 0, sizeof(d));
	if (deliver_proto_read(s, buf, &error) < 0) {
		log_warn(NULL, "reading the delivery request: %s", error);
		goto out;
	}
	req = deliver_request_decode(str_c(buf), str_len(buf), &error);
	if (req == NULL) {
		log_warn(NULL, "bad delivery request: %s", error);
		goto out;
	}
	d.log.id = req->queue_id;
	d.req = req;
	d.nrcpts = req->nrcpts;
	d.rcpts = xcalloc(d.nrcpts, sizeof(*d.rcpts));
	d.relay = str_new(64, 0);
	for (i = 0; i < d.nrcpts; i++) {
		d.rcpts[i].rcpt = &req->rcpts[i];
		d.rcpts[i].dsn = str_new(12, 0);
		d.rcpts[i].text = str_new(128, 0);
	}
	smtp_deliver(&d);
	smtp_respond(&d, s);
	for (i = 0; i < d.nrcpts; i++) {
		str_free(&d.rcpts[i].dsn);
		str_free(&d.rcpts[i].text);
		free(d.rcpts[i].remote_mta);
	}
	free(d.rcpts);
	str_free(&d.relay);
	queue_file_close(&d.qf);
out:
	deliver_request_free(&req);
	str_free(&buf);
	stream_free(&s);
}

/*
 * smtp_pre_jail - the resolver and the TLS context read files in /etc;
 * libsasl2 loads its plugins and the SASL password tables are opened
 */
static void
smtp_pre_jail(void)
{
	const struct config *cfg = conf();
	struct str *err = str_new(128, 0);
	struct tls_params tp;
	bool dnssec;

	dnssec = strcasecmp(config_str(cfg, "smtp_dns_support_level"),
	    "dnssec") == 0;
	if (!dnssec && strcasecmp(config_str(cfg, "smtp_dns_support_level"),
	    "enabled") != 0)
		log_fatal(NULL, "smtp_dns_support_level: unknown level \"%s\" "
		    "(enabled, dnssec)", config_str(cfg,
		    "smtp_dns_support_level"));
	if (smtp_dns_init(config_str(cfg, "smtp_dns_server"), dnssec,
	    err) < 0)
		log_fatal(NULL, "%s", str_c(err));
	smtp_settings.tls_level = smtp_tls_level_parse(config_str(cfg,
	    "smtp_tls_security_level"));
	if (smtp_settings.tls_level < 0)
		log_fatal(NULL, "smtp_tls_security_level: unknown level \"%s\" "
		    "(none, may, encrypt, verify, dane, dane-only)",
		    config_str(cfg, "smtp_tls_security_level"));
	if (smtp_settings.tls_level >= SMTP_TLS_DANE && !smtp_dns_dnssec())
		log_warn(NULL, "smtp_tls_security_level = %s needs "
		    "smtp_dns_support_level = dnssec and a trusted resolver: "
		    "%s", config_str(cfg, "smtp_tls_security_level"),
		    smtp_settings.tls_level == SMTP_TLS_DANE ? "using may" :
		    "mail will be deferred");
	if (strncmp(server_service_name(), "lmtp", 4) != 0) {
		memset(&tp, 0, sizeof(tp));
		tp.ca_file = config_str(cfg, "smtp_tls_CAfile");
		tp.protocols = config_str(cfg, "tls_protocols");
		smtp_settings.tls_ctx = tls_context_new_client(&tp, err);
		if (smtp_settings.tls_ctx != NULL && tls_dane_context_enable(
		    smtp_settings.tls_ctx, err) < 0)
			log_warn(NULL, "no DANE: %s", str_c(err));
		if (smtp_settings.tls_ctx == NULL)
			log_warn(NULL, "no outbound TLS: %s", str_c(err));
		str_clear(err);
		if (smtp_sasl_init(err) < 0)
			log_fatal(NULL, "%s", str_c(err));
	}
	str_free(&err);
}

/* smtp_post_jail - settings, once */
static void
smtp_post_jail(void)
{
	const struct config *cfg = conf();

	smtp_settings.lmtp = strncmp(server_service_name(), "lmtp", 4) == 0;
	smtp_settings.connect_timeout = config_time(cfg, "smtp_connect_timeout");
	smtp_settings.helo_timeout = config_time(cfg, "smtp_helo_timeout");
	smtp_settings.mail_timeout = config_time(cfg, "smtp_mail_timeout");
	smtp_settings.rcpt_timeout = config_time(cfg, "smtp_rcpt_timeout");
	smtp_settings.data_init_timeout = config_time(cfg,
	    "smtp_data_init_timeout");
	smtp_settings.data_xfer_timeout = config_time(cfg,
	    "smtp_data_xfer_timeout");
	smtp_settings.data_done_timeout = config_time(cfg,
	    "smtp_data_done_timeout");
	smtp_settings.helo_name = config_str(cfg, "smtp_helo_name");
	smtp_settings.mx_port = (unsigned)config_int(cfg, "smtp_mx_port");
	if (smtp_settings.mx_port == 0 || smtp_settings.mx_port > 65535)
		smtp_settings.mx_port = 25;
	smtp_settings.mx_address_limit = (unsigned)config_int(cfg,
	    "smtp_mx_address_limit");
	smtp_settings.downgrade_8bit = config_bool(cfg,
	    "smtp_8bitmime_downgrade");
	smtp_settings.tls_policy_specs = config_list(cfg,
	    "smtp_tls_policy_maps", &smtp_settings.ntls_policy);
	smtp_settings.tls_policy = xcalloc(smtp_settings.ntls_policy + 1,
	    sizeof(*smtp_settings.tls_policy));
	smtp_cache_init(config_time(cfg, "smtp_connection_cache_time"),
	    config_time(cfg, "smtp_tls_session_cache_timeout"));
}

/* smtp_idle - between requests: close cached sessions that expired */
static unsigned
smtp_idle(void)
{
	return smtp_cache_expire();
}

/* smtp_pre_exit - QUIT the cached sessions */
static void
smtp_pre_exit(void)
{
	smtp_cache_close_all();
	smtp_sasl_deinit();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = smtp_pre_jail,
		.post_jail = smtp_post_jail,
		.serve = smtp_serve,
		.idle = smtp_idle,
		.pre_exit = smtp_pre_exit,
	};

	return server_main(argc, argv, &ops);
}
