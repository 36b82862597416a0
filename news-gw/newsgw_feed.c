/* SPDX-License-Identifier: MIT */
/*
 * newsgw_feed - news-gw's NNTP feed server and the news-to-mail step
 *
 * DESCRIPTION
 *	A transit-only NNTP server (RFC 3977) for the peers (addresses or
 *	networks, newsgw_peer_match()) in $news_gw_peers and, when
 *	$news_gw_peer_maps is set, for peers that log in with AUTHINFO
 *	(newsgw_feed_auth.c; until then the feeding commands get 480).
 *	Without peer maps others get "502 Access denied" and the
 *	connection is closed. Commands: CAPABILITIES, MODE STREAM, CHECK
 *	and TAKETHIS (RFC 4644), IHAVE, DATE, HELP, QUIT, STARTTLS (RFC
 *	4642), AUTHINFO USER/PASS/SASL (RFC 4643); MODE
 *	READER and everything else a reader would send is 502/500. Command lines are bounded by
 *	NNTP_LINE_MAX (512 octets, RFC 3977 3.1), articles by
 *	$news_gw_message_size_limit and 64 KB per line: an article over a
 *	limit is read to its end and refused (437/439), so the stream of
 *	a streaming peer stays in step.
 *
 *	Replies (RFC 3977 6.3.2, RFC 4644 2.3-2.5):
 *	    IHAVE    335 send / 435 not wanted (history, bad ID) / 436 later
 *	             then 235 / 436 (temporary failure) / 437 rejected
 *	    CHECK    238 send / 438 not wanted / 431 later
 *	    TAKETHIS 239 / 439 (rejected, not wanted, or failed: 4644
 *	             has no "later" code after the article has been sent;
 *	             a temporary failure is 439 too, the sender's own
 *	             retry logic decides, and the history does not hold
 *	             the ID, so a resend is accepted)
 *	TLS: STARTTLS is offered (CAPABILITIES) while there is a server
 *	context and no TLS yet; 382, then lib/tls discards whatever the
 *	peer pipelined after the command (never executed: RFC 4642 2.2.2,
 *	the CVE-2011-0411 rule) and handshakes; a failed handshake ends
 *	the connection. The peer asks for the capabilities again: STARTTLS
 *	is no longer listed. With $news_gw_feed_tls_wrappermode the
 *	handshake comes first (NNTPS); with
 *	$news_gw_feed_tls_security_level = encrypt the feeding commands
 *	(IHAVE, CHECK, TAKETHIS, MODE STREAM) get 483 outside TLS, and a
 *	service without a usable certificate takes no feed at all.
 *	TLS adds privacy only: peers are authorised by address or
 *	AUTHINFO. No STARTTLS after AUTHINFO (502, RFC 4642 2.2.2).
 *
 *	An article is not wanted when its Message-ID is in the history
 *	(whichever direction), or carries our marker or Path entry (loop).
 *
 *	newsgw_receive() is the one news-to-mail step, shared with the
 *	puller: check, look the groups up in $news_to_mail_maps, convert,
 *	inject through cleanup ($news_gw_cleanup_service), then remember
 *	the Message-ID as 'n'.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "log.h"
#include "map.h"
#include "nntp_proto.h"
#include "queue_id.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "newsgw.h"

#define NEWSGW_ARTICLE_LINE_MAX	(64 * 1024)
#define NEWSGW_FEED_ERRORS_MAX	50
#define NEWSGW_FEED_AUTH_FAILURES_MAX 5
#define NEWSGW_MAIL_RCPT_MAX	1000

/* newsgw_inject - queue mail to rcpts; 0 when durably queued, -1 (logged) */
static int
newsgw_inject(const char *const *rcpts, size_t n, const char *data,
    size_t len, struct log_ctx *log)
{
	struct cleanup_client *c;
	struct queue_envelope env;
	struct queue_rcpt rcpt;
	struct str *reason;
	const char *error = NULL;
	size_t i;
	int rc = -1;

	c = cleanup_client_open(newsgw_settings.cleanup_socket, 0, &error);
	if (c == NULL) {
		log_error(log, "cannot connect to cleanup (%s): %s",
		    newsgw_settings.cleanup_socket, error);
		return -1;
	}
	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = newsgw_settings.envelope_sender;
	env.protocol = "NNTP";
	if (cleanup_client_envelope(c, &env, &error) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		memset(&rcpt, 0, sizeof(rcpt));
		rcpt.address = rcpts[i];
		if (cleanup_client_rcpt(c, &rcpt, &error) < 0)
			goto fail;
	}
	if (cleanup_client_content(c, data, len, &error) < 0)
		goto fail;
	log_info(log, "queued as %s", cleanup_client_id(c));
	reason = str_new(0, 0);
	if (cleanup_client_finish(&c, reason) == CLEANUP_OK)
		rc = 0;
	else
		log_error(log, "cleanup did not queue the message: %s",
		    str_c(reason));
	str_free(&reason);
	return rc;
fail:
	log_error(log, "injection failed: %s", error);
	cleanup_client_abort(&c);
	return -1;
}

/* newsgw_split - next item of a comma/space separated list, or false */
static bool
newsgw_split(const char **pp, const char **item_r, size_t *len_r)
{
	const char *p = *pp;

	while (*p == ',' || *p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return false;
	*item_r = p;
	while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
		p++;
	*len_r = (size_t)(p - *item_r);
	*pp = p;
	return true;
}

/* newsgw_receive - see newsgw.h */
int
newsgw_receive(const char *art, size_t len, const char *peer,
    const char **why, struct log_ctx *log)
{
	struct str *msgid = str_new(0, 0), *groups = str_new(0, 0),
	    *value = str_new(0, 0), *key = str_new(0, 0),
	    *mail = str_new(len + 512, 0), *list_group = str_new(0, 0);
	char **rcpts = NULL;
	size_t nrcpt = 0, i, ilen;
	const char *p, *q, *item;
	struct newsgw_n2m opt;
	char dir;
	int rc, seen;

	switch (newsgw_article_check(art, len, newsgw_settings.path_identity,
	    msgid, groups, why)) {
	case NEWSGW_CONV_LOOP:
		log_info(log, "message-id=%s from %s: not wanted (%s)",
		    str_c(msgid), peer, *why);
		rc = 1;
		goto out;
	case NEWSGW_CONV_REJECT:
		log_info(log, "article from %s rejected: %s", peer, *why);
		rc = 2;
		goto out;
	case NEWSGW_CONV_OK:
		break;
	}
	seen = newsgw_history_seen(str_c(msgid), &dir, log);
	if (seen < 0) {
		*why = "history unavailable";
		rc = -1;
		goto out;
	}
	if (seen == 1) {
		*why = dir == 'm' ? "came from mail through this gateway" :
		    "already gatewayed";
		log_info(log, "message-id=%s from %s: not wanted (%s)",
		    str_c(msgid), peer, *why);
		rc = 1;
		goto out;
	}
	for (p = str_c(groups); newsgw_split(&p, &item, &ilen);) {
		str_set(key, item, ilen);
		rc = newsgw_maps_lookup(newsgw_settings.news_to_mail_maps,
		    newsgw_settings.nnews_to_mail_maps, str_c(key), value, log);
		if (rc < 0) {
			*why = "news_to_mail_maps unavailable";
			rc = -1;
			goto out;
		}
		if (rc == 0)
			continue;
		if (str_len(list_group) == 0)
			str_set(list_group, item, ilen);
		for (q = str_c(value); newsgw_split(&q, &item, &ilen);) {
			bool dup = false;

			for (i = 0; i < nrcpt; i++)
				if (strlen(rcpts[i]) == ilen &&
				    strncasecmp(rcpts[i], item, ilen) == 0)
					dup = true;
			if (dup || nrcpt >= NEWSGW_MAIL_RCPT_MAX)
				continue;
			rcpts = xreallocarray(rcpts, nrcpt + 1, sizeof(*rcpts));
			rcpts[nrcpt++] = xstrndup(item, ilen);
		}
	}
	if (nrcpt == 0) {
		log_info(log, "message-id=%s from %s: accepted, no gatewayed "
		    "group in %s", str_c(msgid), peer, str_c(groups));
		rc = 0;
		goto out;
	}
	memset(&opt, 0, sizeof(opt));
	opt.identity = newsgw_settings.path_identity;
	opt.list_group = str_c(list_group);
	opt.peer = peer;
	opt.now = time(NULL);
	newsgw_article_to_mail(art, len, &opt, mail);
	if (newsgw_inject((const char *const *)rcpts, nrcpt, str_c(mail),
	    str_len(mail), log) < 0) {
		*why = "cannot queue the mail";
		rc = -1;
		goto out;
	}
	if (newsgw_history_add(str_c(msgid), 'n', log) < 0)
		log_warn(log, "message-id=%s not recorded in the history",
		    str_c(msgid));
	log_info(log, "message-id=%s from %s, groups=%s, nrcpt=%zu, "
	    "status=sent (mailed)", str_c(msgid), peer, str_c(groups), nrcpt);
	rc = 0;
out:
	for (i = 0; i < nrcpt; i++)
		free(rcpts[i]);
	free(rcpts);
	str_free(&msgid);
	str_free(&groups);
	str_free(&value);
	str_free(&key);
	str_free(&mail);
	str_free(&list_group);
	return rc;
}

struct newsgw_feed {
	struct stream *s;
	struct str *line;
	struct str *art;
	const char *peer;
	struct log_ctx log;
	struct tls_session *tls;	/* NULL until STARTTLS or implicit TLS */
	struct newsgw_auth *auth;	/* AUTHINFO state */
	struct str *peer_name;	/* peer, then with the account after AUTHINFO */
	bool by_address;	/* in $news_gw_peers: no AUTHINFO needed */
	char sess_id[QUEUE_ID_SIZE];
	unsigned errors;
	unsigned long accepted, refused, rejected;
};

static void newsgw_feed_reply(struct newsgw_feed *f, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

/* newsgw_feed_reply - one reply line (CRLF added, buffered) */
static void
newsgw_feed_reply(struct newsgw_feed *f, const char *fmt, ...)
{
	va_list ap;
	struct str *t = str_new(0, 0);

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	if (str_c(t)[0] == '5')
		f->errors++;
	(void)stream_printf(f->s, "%s\r\n", str_c(t));
	str_free(&t);
}

/*
 * newsgw_feed_article - read the article that follows (IHAVE after 335,
 * TAKETHIS at once); 0 read (*bad_r: over a limit or malformed), -1
 * connection lost
 */
static int
newsgw_feed_article(struct newsgw_feed *f, bool *bad_r)
{
	struct nntp_block b;
	enum stream_result r;

	nntp_block_init(&b, f->art, newsgw_settings.size_limit);
	if (stream_pending(f->s) == 0 && stream_flush(f->s) < 0)
		return -1;
	for (;;) {
		r = stream_read_line(f->s, f->line, NEWSGW_ARTICLE_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			b.too_big = true;
			continue;
		}
		if (r != STREAM_OK)
			return -1;
		if (nntp_block_line(&b, str_c(f->line), str_len(f->line)))
			break;
	}
	*bad_r = b.too_big || b.bad;
	return 0;
}

/*
 * newsgw_feed_offer - whether msgid (the command's argument) is wanted:
 * 0 yes, 1 not wanted, -1 try later
 */
static int
newsgw_feed_offer(struct newsgw_feed *f, const struct nntp_arg *id,
    struct str *msgid)
{
	char dir;
	int seen;

	str_set(msgid, id->p, id->len);
	if (!nntp_msgid_ok(id->p, id->len)) {
		f->refused++;
		return 1;
	}
	seen = newsgw_history_seen(str_c(msgid), &dir, &f->log);
	if (seen == 1) {
		f->refused++;
		log_info(&f->log, "message-id=%s from %s: not wanted (%s)",
		    str_c(msgid), f->peer, dir == 'm' ? "came from mail "
		    "through this gateway" : "already gatewayed");
	}
	return seen < 0 ? -1 : seen;
}

/*
 * newsgw_feed_take - an article has been read for msgid: 0 accepted,
 * 1 not wanted, 2 rejected, -1 temporary failure
 */
static int
newsgw_feed_take(struct newsgw_feed *f, const char *msgid, bool bad)
{
	struct str *hdr_id = str_new(0, 0);
	const char *why = NULL;
	int rc;

	if (bad) {
		log_info(&f->log, "message-id=%s from %s rejected: article "
		    "over a size or line limit, or NUL/CR in its header",
		    msgid, f->peer);
		rc = 2;
		goto out;
	}
	if (!nntp_msgid_ok(msgid, strlen(msgid))) {
		rc = 2;
		goto out;
	}
	if (newsgw_article_check(str_c(f->art), str_len(f->art),
	    newsgw_settings.path_identity, hdr_id, NULL, &why) !=
	    NEWSGW_CONV_REJECT && strcmp(str_c(hdr_id), msgid) != 0) {
		log_info(&f->log, "message-id=%s from %s rejected: header "
		    "Message-ID is %s", msgid, f->peer, str_c(hdr_id));
		rc = 2;
		goto out;
	}
	rc = newsgw_receive(str_c(f->art), str_len(f->art), f->peer, &why,
	    &f->log);
out:
	if (rc == 0)
		f->accepted++;
	else if (rc == 1)
		f->refused++;
	else
		f->rejected++;
	str_free(&hdr_id);
	return rc;
}

/*
 * newsgw_peer_parse - spec as address bytes (4 or 16) and prefix length;
 * false if malformed. An IPv4-mapped IPv6 address is made IPv4.
 */
static bool
newsgw_peer_parse(const char *spec, unsigned char addr[16], size_t *alen_r,
    unsigned *bits_r)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned long bits;
	size_t alen, len;

	slash = strchr(spec, '/');
	len = slash != NULL ? (size_t)(slash - spec) : strlen(spec);
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, spec, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		alen = 4;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		alen = 16;
	else
		return false;
	bits = alen * 8;
	if (slash != NULL && (slash[1] == '\0' ||
	    !str_to_ulong(slash + 1, strlen(slash + 1), alen * 8, &bits)))
		return false;
	if (alen == 16 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0 &&
	    (slash == NULL || bits >= 96)) {
		memmove(addr, addr + 12, 4);
		alen = 4;
		bits -= 96;
	}
	*alen_r = alen;
	*bits_r = (unsigned)bits;
	return true;
}

/* newsgw_peer_spec_ok - see newsgw.h */
bool
newsgw_peer_spec_ok(const char *spec)
{
	unsigned char a[16];
	size_t alen;
	unsigned bits;

	return newsgw_peer_parse(spec, a, &alen, &bits);
}

/* newsgw_peer_match - see newsgw.h */
bool
newsgw_peer_match(const char *const *specs, size_t n, const char *addr)
{
	unsigned char a[16], net[16];
	size_t alen, nlen, i, full;
	unsigned abits, bits, rest;

	if (strchr(addr, '/') != NULL ||
	    !newsgw_peer_parse(addr, a, &alen, &abits))
		return false;
	for (i = 0; i < n; i++) {
		if (!newsgw_peer_parse(specs[i], net, &nlen, &bits) ||
		    nlen != alen)
			continue;
		full = bits / 8;
		rest = bits % 8;
		if (memcmp(a, net, full) != 0)
			continue;
		if (rest != 0 && ((a[full] ^ net[full]) &
		    (unsigned char)(0xff << (8 - rest))) != 0)
			continue;
		return true;
	}
	return false;
}

/* newsgw_date_now - DATE reply value (yyyymmddhhmmss) */
static void
newsgw_date_now(char buf[32])
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	if (strftime(buf, 32, "%Y%m%d%H%M%S", &tm) == 0)
		buf[0] = '\0';
}

/* newsgw_feed_tls_offered - STARTTLS may be used now */
static bool
newsgw_feed_tls_offered(const struct newsgw_feed *f)
{
	return f->tls == NULL && newsgw_settings.feed_tls_ctx != NULL &&
	    newsgw_settings.feed_tls_level != NEWSGW_FEED_TLS_NONE;
}

/* newsgw_feed_tls_missing - a feeding command outside required TLS (483 sent) */
static bool
newsgw_feed_tls_missing(struct newsgw_feed *f)
{
	if (f->tls != NULL ||
	    newsgw_settings.feed_tls_level != NEWSGW_FEED_TLS_ENCRYPT)
		return false;
	newsgw_feed_reply(f, "483 Encryption required; use STARTTLS");
	return true;
}

/*
 * newsgw_feed_tls_start - the handshake on f->s (the 382 or nothing
 * before it is buffered; tls_session_start flushes it and drops any
 * pipelined input); false when the connection is unusable (logged)
 */
static bool
newsgw_feed_tls_start(struct newsgw_feed *f, const char *how)
{
	struct str *err = str_new(0, 0);

	f->tls = tls_session_start(newsgw_settings.feed_tls_ctx, f->s, NULL,
	    newsgw_settings.timeout, err);
	if (f->tls == NULL) {
		log_info(&f->log, "%s from %s failed: %s", how, f->peer,
		    str_c(err));
		str_free(&err);
		return false;
	}
	str_clear(err);
	tls_session_describe(f->tls, err);
	log_info(&f->log, "%s from %s: %s", how, f->peer, str_c(err));
	str_free(&err);
	return true;
}

/*
 * newsgw_feed_auth_missing - a feeding command from a peer admitted
 * neither by address nor by AUTHINFO (480 sent)
 */
static bool
newsgw_feed_auth_missing(struct newsgw_feed *f)
{
	if (f->by_address || newsgw_auth_user(f->auth) != NULL)
		return false;
	newsgw_feed_reply(f, "480 Authentication required");
	return true;
}

/* newsgw_feed_capabilities - the list for the session's state */
static void
newsgw_feed_capabilities(struct newsgw_feed *f)
{
	struct str *auth = str_new(0, 0);

	(void)stream_puts(f->s, "101 Capability list:\r\nVERSION 2\r\n"
	    "IMPLEMENTATION Postern news-gw\r\n");
	if (f->tls != NULL ||
	    newsgw_settings.feed_tls_level != NEWSGW_FEED_TLS_ENCRYPT)
		(void)stream_puts(f->s, "IHAVE\r\nSTREAMING\r\n");
	/* no STARTTLS after AUTHINFO (RFC 4642 2.2.2) */
	if (newsgw_feed_tls_offered(f) && newsgw_auth_user(f->auth) == NULL)
		(void)stream_puts(f->s, "STARTTLS\r\n");
	newsgw_auth_capabilities(f->auth, auth);
	(void)stream_puts(f->s, str_c(auth));
	(void)stream_puts(f->s, ".\r\n");
	str_free(&auth);
}

/* newsgw_feed_authinfo - AUTHINFO; false when the connection broke */
static bool
newsgw_feed_authinfo(struct newsgw_feed *f, const struct nntp_cmd *cmd)
{
	bool before = newsgw_auth_user(f->auth) != NULL;

	if (!newsgw_auth_command(f->auth, f->s, cmd))
		return false;
	if (!before && newsgw_auth_user(f->auth) != NULL) {
		str_printf(f->peer_name, " (peer=%s)",
		    newsgw_auth_user(f->auth));
		f->peer = str_c(f->peer_name);
	}
	return true;
}

/* newsgw_feed_command - one command; false to end the session */
static bool
newsgw_feed_command(struct newsgw_feed *f, const struct nntp_cmd *cmd)
{
	struct str *msgid = str_new(0, 0);
	bool bad, go_on = true;
	char date[32];
	int rc;

	switch (cmd->verb) {
	case NNTP_VERB_CAPABILITIES:
		newsgw_feed_capabilities(f);
		break;
	case NNTP_VERB_STARTTLS:
		if (f->tls != NULL) {
			newsgw_feed_reply(f, "502 Already using TLS");
			break;
		}
		if (newsgw_auth_user(f->auth) != NULL) {
			newsgw_feed_reply(f, "502 Already authenticated");
			break;
		}
		if (!newsgw_feed_tls_offered(f)) {
			newsgw_feed_reply(f, "580 Can not initiate TLS "
			    "negotiation");
			break;
		}
		newsgw_feed_reply(f, "382 Continue with TLS negotiation");
		go_on = newsgw_feed_tls_start(f, "STARTTLS");
		if (go_on)
			newsgw_auth_tls_started(f->auth);
		break;
	case NNTP_VERB_AUTHINFO:
		go_on = newsgw_feed_authinfo(f, cmd);
		break;
	case NNTP_VERB_MODE_STREAM:
		if (newsgw_feed_tls_missing(f) || newsgw_feed_auth_missing(f))
			break;
		newsgw_feed_reply(f, "203 Streaming permitted");
		break;
	case NNTP_VERB_MODE_READER:
		newsgw_feed_reply(f, "502 Transit service only");
		break;
	case NNTP_VERB_MODE_OTHER:
		newsgw_feed_reply(f, "501 Unknown MODE variant");
		break;
	case NNTP_VERB_CHECK:
		if (newsgw_feed_tls_missing(f) || newsgw_feed_auth_missing(f))
			break;
		rc = newsgw_feed_offer(f, &cmd->args[0], msgid);
		if (rc == 0)
			newsgw_feed_reply(f, "238 %s", str_c(msgid));
		else if (rc == 1)
			newsgw_feed_reply(f, "438 %s", str_c(msgid));
		else
			newsgw_feed_reply(f, "431 %s", str_c(msgid));
		break;
	case NNTP_VERB_TAKETHIS:
		str_set(msgid, cmd->args[0].p, cmd->args[0].len);
		if (newsgw_feed_article(f, &bad) < 0) {
			go_on = false;
			break;
		}
		/* the article is read either way: the stream stays in step */
		if (newsgw_feed_tls_missing(f) || newsgw_feed_auth_missing(f))
			break;
		rc = newsgw_feed_take(f, str_c(msgid), bad);
		newsgw_feed_reply(f, "%s %s", rc == 0 ? "239" : "439",
		    str_c(msgid));
		break;
	case NNTP_VERB_IHAVE:
		if (newsgw_feed_tls_missing(f) || newsgw_feed_auth_missing(f))
			break;
		rc = newsgw_feed_offer(f, &cmd->args[0], msgid);
		if (rc == 1) {
			newsgw_feed_reply(f, "435 Not wanted");
			break;
		}
		if (rc < 0) {
			newsgw_feed_reply(f, "436 Try again later");
			break;
		}
		newsgw_feed_reply(f, "335 Send it; end with <CR-LF>.<CR-LF>");
		if (newsgw_feed_article(f, &bad) < 0) {
			go_on = false;
			break;
		}
		rc = newsgw_feed_take(f, str_c(msgid), bad);
		if (rc == 0)
			newsgw_feed_reply(f, "235 Article transferred OK");
		else if (rc == 1)
			newsgw_feed_reply(f, "437 Not wanted (duplicate or "
			    "loop)");
		else if (rc == 2)
			newsgw_feed_reply(f, "437 Article rejected");
		else
			newsgw_feed_reply(f, "436 Transfer failed; try again "
			    "later");
		break;
	case NNTP_VERB_DATE:
		newsgw_date_now(date);
		newsgw_feed_reply(f, "111 %s", date);
		break;
	case NNTP_VERB_HELP:
		(void)stream_puts(f->s, "100 Help text follows\r\n");
		if (newsgw_auth_enabled())
			(void)stream_puts(f->s, "AUTHINFO USER name\r\n"
			    "AUTHINFO PASS password\r\n"
			    "AUTHINFO SASL mechanism [initial-response]\r\n");
		(void)stream_puts(f->s, "CAPABILITIES\r\nCHECK message-id\r\n"
		    "DATE\r\nHELP\r\nIHAVE message-id\r\nMODE STREAM\r\n"
		    "QUIT\r\nSTARTTLS\r\nTAKETHIS message-id\r\n.\r\n");
		break;
	case NNTP_VERB_QUIT:
		newsgw_feed_reply(f, "205 Bye");
		go_on = false;
		break;
	case NNTP_VERB_POST:
	case NNTP_VERB_ARTICLE:
	case NNTP_VERB_STAT:
	case NNTP_VERB_GROUP:
		newsgw_feed_reply(f, "502 Transit service only");
		break;
	default:
		newsgw_feed_reply(f, "500 Unknown command");
		break;
	}
	str_free(&msgid);
	return go_on;
}

/* newsgw_feed_run - see newsgw.h */
void
newsgw_feed_run(int fd, const char *peer_addr, const char *peer)
{
	struct newsgw_feed f;
	struct nntp_cmd cmd;
	enum nntp_proto_error perr;
	enum stream_result r;

	memset(&f, 0, sizeof(f));
	f.s = stream_new(fd, newsgw_settings.timeout, STREAM_NO_CLOSE);
	f.peer = peer;
	queue_id_new(f.sess_id);
	f.log.id = f.sess_id;
	f.by_address = newsgw_peer_match(newsgw_settings.peers,
	    newsgw_settings.npeers, peer_addr);
	if (!f.by_address && !newsgw_auth_enabled()) {
		log_warn(&f.log, "refused NNTP feed from %s: not in "
		    "news_gw_peers", peer);
		(void)stream_puts(f.s, "502 Access denied: not a feeding "
		    "peer\r\n");
		(void)stream_flush(f.s);
		stream_free(&f.s);
		return;
	}
	f.line = str_new(0, 0);
	f.art = str_new(64 * 1024, 0);
	f.peer_name = str_new_cstr(peer);
	f.auth = newsgw_auth_new(peer_addr, peer, &f.log);
	log_info(&f.log, "connect from %s%s", peer, f.by_address ? "" :
	    " (not in news_gw_peers: AUTHINFO required)");
	if ((newsgw_settings.feed_wrappermode || newsgw_settings.feed_tls_level
	    == NEWSGW_FEED_TLS_ENCRYPT) && newsgw_settings.feed_tls_ctx == NULL) {
		log_error(&f.log, "feed TLS required without a usable "
		    "certificate: dropping the connection from %s", peer);
		if (!newsgw_settings.feed_wrappermode) {
			(void)stream_puts(f.s, "400 TLS not available\r\n");
			(void)stream_flush(f.s);
		}
		goto out;
	}
	if (newsgw_settings.feed_wrappermode &&
	    !newsgw_feed_tls_start(&f, "implicit TLS"))
		goto out;
	if (f.tls != NULL)
		newsgw_auth_tls_started(f.auth);
	newsgw_feed_reply(&f, "200 %s Postern news-gw ready (transit)",
	    newsgw_settings.path_identity);
	for (;;) {
		if (f.errors >= NEWSGW_FEED_ERRORS_MAX) {
			newsgw_feed_reply(&f, "400 Too many errors");
			(void)stream_flush(f.s);
			break;
		}
		if (newsgw_auth_failures(f.auth) >=
		    NEWSGW_FEED_AUTH_FAILURES_MAX) {
			log_warn(&f.log, "%s: too many AUTHINFO failures",
			    peer);
			newsgw_feed_reply(&f, "400 Too many authentication "
			    "failures");
			(void)stream_flush(f.s);
			break;
		}
		if (stream_pending(f.s) == 0 && stream_flush(f.s) < 0)
			break;
		r = stream_read_line(f.s, f.line, NNTP_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			newsgw_feed_reply(&f, "501 Command line too long");
			continue;
		}
		if (r == STREAM_TIMEOUT) {
			newsgw_feed_reply(&f, "400 Timeout");
			(void)stream_flush(f.s);
			break;
		}
		if (r != STREAM_OK)
			break;
		str_chomp(f.line);
		perr = nntp_cmd_parse(&cmd, str_c(f.line), str_len(f.line));
		if (perr != NNTP_PROTO_OK) {
			newsgw_feed_reply(&f, "%d %s", nntp_proto_error_code(perr),
			    nntp_proto_error_str(perr));
			continue;
		}
		if (!newsgw_feed_command(&f, &cmd)) {
			(void)stream_flush(f.s);
			break;
		}
	}
	log_info(&f.log, "disconnect from %s accepted=%lu refused=%lu "
	    "rejected=%lu", f.peer, f.accepted, f.refused, f.rejected);
out:
	newsgw_auth_free(&f.auth);
	str_free(&f.peer_name);
	tls_session_free(&f.tls);
	str_free(&f.line);
	str_free(&f.art);
	stream_free(&f.s);
}
