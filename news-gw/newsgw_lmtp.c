/* SPDX-License-Identifier: MIT */
/*
 * newsgw_lmtp - news-gw's LMTP server: mail to news
 *
 * DESCRIPTION
 *	The conversation is lib/lmtp_server (RFC 2033: LHLO, MAIL, RCPT,
 *	DATA, RSET, NOOP, QUIT; PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME,
 *	SMTPUTF8, SIZE), as list-mgr's, with a different delivery step. The
 *	content is dot-unstuffed in memory up to $news_gw_message_size_limit
 *	(over it: 552 for every recipient). A recipient is accepted at RCPT
 *	only when $newsgroups_maps has it ("local@domain", else "local"),
 *	so qmgr bounces mail for an unknown gateway address at once.
 *
 *	After DATA the groups of all accepted recipients (deduplicated, in
 *	order) make one article, crossposted, and every recipient gets the
 *	same reply:
 *	    250 posted, or the server already had it (435 / 441 435),
 *	        or the mail came from news (our marker, or its Message-ID
 *	        is in the history as gatewayed from news): not posted;
 *	    451 the NNTP server cannot be reached or answered with a
 *	        temporary failure (the queue retries);
 *	    554 the mail cannot be an article, or the server refused it
 *	        (437/441/440): the bounce carries the server's text.
 *	A posted Message-ID goes into the history as 'm', so the article
 *	never comes back as mail through the feed or the puller.
 *
 *	Nothing here exits; a broken connection ends the session.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "lmtp_server.h"
#include "log.h"
#include "map.h"
#include "str.h"

#include "newsgw.h"

#define NEWSGW_GROUPS_MAX	2048

/* the transaction's state beyond lib/lmtp_server's */
struct newsgw_lmtp {
	struct str *groups;	/* "a,b,c": the union of the recipients' groups */
};

/* newsgw_lmtp_reset - forget the transaction's groups */
static void
newsgw_lmtp_reset(void *context)
{
	struct newsgw_lmtp *sess = context;

	str_clear(sess->groups);
}

/* newsgw_group_ok - a newsgroup name: RFC 5536 3.1.4 wildmat-free chars */
static bool
newsgw_group_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 250 || p[0] == '.' || p[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 32 || (unsigned char)p[i] >= 127 ||
		    strchr(",*?[]\\!:<>\"", p[i]) != NULL)
			return false;
	return true;
}

/*
 * newsgw_add_groups - add the groups of a map value ("a.b, c.d" or
 * "a.b c.d") to sess->groups without duplicates; false if a name is bad.
 */
static bool
newsgw_add_groups(struct newsgw_lmtp *sess, const char *v)
{
	const char *p = v, *start, *q, *cur;
	size_t n;
	bool dup;

	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		n = (size_t)(p - start);
		if (!newsgw_group_ok(start, n))
			return false;
		dup = false;
		for (cur = str_c(sess->groups); *cur != '\0';) {
			q = strchr(cur, ',');
			if (q == NULL)
				q = cur + strlen(cur);
			if ((size_t)(q - cur) == n && strncmp(cur, start, n) == 0)
				dup = true;
			cur = *q == ',' ? q + 1 : q;
		}
		if (dup)
			continue;
		if (str_len(sess->groups) + n + 1 > NEWSGW_GROUPS_MAX)
			return false;
		if (str_len(sess->groups) > 0)
			str_append_c(sess->groups, ',');
		str_append(sess->groups, start, n);
	}
	return true;
}

/* newsgw_rcpt_groups - the map value for a recipient; 1, 0 none, -1 error */
static int
newsgw_rcpt_groups(const struct address *a, struct str *value,
    struct log_ctx *log)
{
	struct str *key = str_new(0, 0);
	int rc;

	str_printf(key, "%s@%s", str_c(a->local), str_c(a->domain));
	rc = newsgw_maps_lookup(newsgw_settings.newsgroups_maps,
	    newsgw_settings.nnewsgroups_maps, str_c(key), value, log);
	if (rc == 0)
		rc = newsgw_maps_lookup(newsgw_settings.newsgroups_maps,
		    newsgw_settings.nnewsgroups_maps, str_c(a->local), value,
		    log);
	str_free(&key);
	return rc;
}

/*
 * newsgw_lmtp_deliver - post msg; the reply (without CRLF) for every
 * recipient into reply
 */
static void
newsgw_lmtp_deliver(struct newsgw_lmtp *sess, const struct lmtp_server_tx *tx,
    const char *msg, size_t len, struct str *reply)
{
	struct newsgw_m2n opt;
	struct newsgw_nntp *n;
	struct str *art = str_new(len + 512, 0), *msgid = str_new(0, 0),
	    *why = str_new(0, 0), *srv = str_new(0, 0);
	const char *reason = NULL;
	bool ihave = strcasecmp(newsgw_settings.post_method, "ihave") == 0;
	char dir = 0;
	int seen;

	memset(&opt, 0, sizeof(opt));
	opt.groups = str_c(sess->groups);
	opt.identity = newsgw_settings.path_identity;
	opt.envelope_sender = tx->sender;
	opt.qid = tx->id;
	opt.now = time(NULL);
	opt.for_ihave = ihave;
	switch (newsgw_mail_to_article(msg, len, &opt, art, msgid, &reason)) {
	case NEWSGW_CONV_LOOP:
		log_info(tx->log, "groups=%s, status=dropped (%s)",
		    opt.groups, reason);
		str_set_cstr(reply, "250 2.0.0 Ok: not posted: the message "
		    "came from news through this gateway");
		goto out;
	case NEWSGW_CONV_REJECT:
		log_info(tx->log, "groups=%s, status=bounced (%s)",
		    opt.groups, reason);
		str_printf(reply, "554 5.6.0 Cannot gateway to news: %s",
		    reason);
		goto out;
	case NEWSGW_CONV_OK:
		break;
	}
	if (str_len(art) > newsgw_settings.size_limit) {
		str_set_cstr(reply, "552 5.3.4 Message too big for news");
		goto out;
	}
	seen = newsgw_history_seen(str_c(msgid), &dir, tx->log);
	if (seen < 0) {
		str_set_cstr(reply, "451 4.3.0 Gateway history unavailable");
		goto out;
	}
	if (seen == 1 && dir == 'n') {
		log_info(tx->log, "message-id=%s, groups=%s, status=dropped "
		    "(gatewayed from news before)", str_c(msgid), opt.groups);
		str_set_cstr(reply, "250 2.0.0 Ok: not posted: this article "
		    "came from news through this gateway");
		goto out;
	}
	n = newsgw_nntp_open(newsgw_settings.server, !ihave, why, tx->log);
	if (n == NULL) {
		log_warn(tx->log, "message-id=%s, groups=%s, status=deferred "
		    "(%s)", str_c(msgid), opt.groups, str_c(why));
		str_printf(reply, "451 4.4.1 News server unavailable: %s",
		    str_c(why));
		goto out;
	}
	switch (newsgw_nntp_post(n, str_c(art), str_len(art), str_c(msgid),
	    ihave, srv)) {
	case NEWSGW_POST_OK:
	case NEWSGW_POST_DUP:
		if (newsgw_history_add(str_c(msgid), 'm', tx->log) < 0) {
			/* posted, but a loop guard is missing: the marker and
			 * Path entry still stop it coming back */
			log_warn(tx->log, "message-id=%s not recorded in "
			    "the history", str_c(msgid));
		}
		log_info(tx->log, "message-id=%s, groups=%s, server=%s, "
		    "status=sent (%s)", str_c(msgid), opt.groups,
		    newsgw_settings.server, str_c(srv));
		str_printf(reply, "250 2.0.0 Ok: posted to %s as %s",
		    opt.groups, str_c(msgid));
		break;
	case NEWSGW_POST_TEMP:
		log_warn(tx->log, "message-id=%s, groups=%s, status=deferred "
		    "(server said: %s)", str_c(msgid), opt.groups, str_c(srv));
		str_printf(reply, "451 4.4.2 News server said: %s", str_c(srv));
		break;
	case NEWSGW_POST_REJECT:
		log_info(tx->log, "message-id=%s, groups=%s, status=bounced "
		    "(server said: %s)", str_c(msgid), opt.groups, str_c(srv));
		str_printf(reply, "554 5.6.0 News server refused the article: "
		    "%s", str_c(srv));
		break;
	}
	newsgw_nntp_close(&n);
out:
	str_free(&art);
	str_free(&msgid);
	str_free(&why);
	str_free(&srv);
}

/* newsgw_lmtp_rcpt - a gateway address with good groups, else refused */
static bool
newsgw_lmtp_rcpt(void *context, const struct lmtp_server_tx *tx,
    const struct address *addr, const char *param, struct str *reply)
{
	struct newsgw_lmtp *sess = context;
	struct str *t = str_new(0, 0);
	int rc;

	(void)param;
	rc = newsgw_rcpt_groups(addr, t, tx->log);
	if (rc < 0)
		str_set_cstr(reply, "451 4.3.0 Error: newsgroups map "
		    "unavailable");
	else if (rc == 0)
		str_set_cstr(reply, "550 5.1.1 No such gateway address");
	else if (!newsgw_add_groups(sess, str_c(t)))
		str_set_cstr(reply, "550 5.3.5 Bad newsgroups for this "
		    "gateway address");
	str_free(&t);
	return str_len(reply) == 0;
}

/* newsgw_lmtp_data - post once; the same reply for every recipient */
static void
newsgw_lmtp_data(void *context, const struct lmtp_server_tx *tx,
    const char *msg, size_t len, struct str *const *replies)
{
	size_t i;

	newsgw_lmtp_deliver(context, tx, msg, len, replies[0]);
	for (i = 1; i < tx->nrcpt; i++)
		str_set(replies[i], str_c(replies[0]), str_len(replies[0]));
}

/* newsgw_lmtp_run - see newsgw.h */
void
newsgw_lmtp_run(int fd, const char *peer)
{
	struct lmtp_server_settings set;
	struct newsgw_lmtp sess;

	sess.groups = str_new(0, 0);
	memset(&set, 0, sizeof(set));
	set.hostname = newsgw_settings.myhostname;
	set.banner = "LMTP Postern news-gw";
	set.timeout = newsgw_settings.timeout;
	set.size_limit = newsgw_settings.size_limit;
	set.on_rcpt = newsgw_lmtp_rcpt;
	set.on_data = newsgw_lmtp_data;
	set.on_reset = newsgw_lmtp_reset;
	set.context = &sess;
	lmtp_server_run(fd, peer, &set);
	str_free(&sess.groups);
}
