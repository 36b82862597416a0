/* SPDX-License-Identifier: MIT */
/*
 * newsgw_lmtp - news-gw's LMTP server: mail to news
 *
 * DESCRIPTION
 *	RFC 2033 with LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT (HELP and
 *	VRFY answered generically); PIPELINING, ENHANCEDSTATUSCODES,
 *	8BITMIME, SIZE. The session is list-mgr's (listmgr_session.c)
 *	with a different delivery step. A recipient is accepted at RCPT
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
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "alloc.h"
#include "log.h"
#include "map.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "stream.h"
#include "str.h"

#include "newsgw.h"

#define NEWSGW_LMTP_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | \
	SMTP_EXT_PIPELINING | SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_SMTPUTF8)
#define NEWSGW_RCPT_MAX		100
#define NEWSGW_ERROR_LIMIT	50
#define NEWSGW_DATA_LINE_MAX	(1024 * 1024)
#define NEWSGW_GROUPS_MAX	2048

struct newsgw_lmtp {
	struct stream *s;
	struct smtp_cmd *cmd;
	struct str *line;
	struct str *sender;
	struct str *groups;	/* "a,b,c": the union of the recipients' groups */
	size_t nrcpt;
	bool lhlo, in_mail, smtputf8;
	unsigned errors;
	char tx_id[QUEUE_ID_SIZE];
	struct log_ctx log;
	const char *peer;
};

static void newsgw_reply(struct newsgw_lmtp *sess, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

/* newsgw_reply - one reply line (CRLF added, buffered) */
static void
newsgw_reply(struct newsgw_lmtp *sess, const char *fmt, ...)
{
	va_list ap;
	struct str *t = str_new(0, 0);

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	if (str_c(t)[0] == '4' || str_c(t)[0] == '5')
		sess->errors++;
	(void)stream_printf(sess->s, "%s\r\n", str_c(t));
	str_free(&t);
}

/* newsgw_tx_reset - forget the transaction */
static void
newsgw_tx_reset(struct newsgw_lmtp *sess)
{
	sess->nrcpt = 0;
	sess->in_mail = false;
	sess->smtputf8 = false;
	str_clear(sess->sender);
	str_clear(sess->groups);
	sess->log.id = NULL;
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
newsgw_lmtp_deliver(struct newsgw_lmtp *sess, const char *msg, size_t len,
    struct str *reply)
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
	opt.envelope_sender = str_c(sess->sender);
	opt.qid = sess->tx_id;
	opt.now = time(NULL);
	opt.for_ihave = ihave;
	switch (newsgw_mail_to_article(msg, len, &opt, art, msgid, &reason)) {
	case NEWSGW_CONV_LOOP:
		log_info(&sess->log, "groups=%s, status=dropped (%s)",
		    opt.groups, reason);
		str_set_cstr(reply, "250 2.0.0 Ok: not posted: the message "
		    "came from news through this gateway");
		goto out;
	case NEWSGW_CONV_REJECT:
		log_info(&sess->log, "groups=%s, status=bounced (%s)",
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
	seen = newsgw_history_seen(str_c(msgid), &dir, &sess->log);
	if (seen < 0) {
		str_set_cstr(reply, "451 4.3.0 Gateway history unavailable");
		goto out;
	}
	if (seen == 1 && dir == 'n') {
		log_info(&sess->log, "message-id=%s, groups=%s, status=dropped "
		    "(gatewayed from news before)", str_c(msgid), opt.groups);
		str_set_cstr(reply, "250 2.0.0 Ok: not posted: this article "
		    "came from news through this gateway");
		goto out;
	}
	n = newsgw_nntp_open(newsgw_settings.server, !ihave, why, &sess->log);
	if (n == NULL) {
		log_warn(&sess->log, "message-id=%s, groups=%s, status=deferred "
		    "(%s)", str_c(msgid), opt.groups, str_c(why));
		str_printf(reply, "451 4.4.1 News server unavailable: %s",
		    str_c(why));
		goto out;
	}
	switch (newsgw_nntp_post(n, str_c(art), str_len(art), str_c(msgid),
	    ihave, srv)) {
	case NEWSGW_POST_OK:
	case NEWSGW_POST_DUP:
		if (newsgw_history_add(str_c(msgid), 'm', &sess->log) < 0) {
			/* posted, but a loop guard is missing: the marker and
			 * Path entry still stop it coming back */
			log_warn(&sess->log, "message-id=%s not recorded in "
			    "the history", str_c(msgid));
		}
		log_info(&sess->log, "message-id=%s, groups=%s, server=%s, "
		    "status=sent (%s)", str_c(msgid), opt.groups,
		    newsgw_settings.server, str_c(srv));
		str_printf(reply, "250 2.0.0 Ok: posted to %s as %s",
		    opt.groups, str_c(msgid));
		break;
	case NEWSGW_POST_TEMP:
		log_warn(&sess->log, "message-id=%s, groups=%s, status=deferred "
		    "(server said: %s)", str_c(msgid), opt.groups, str_c(srv));
		str_printf(reply, "451 4.4.2 News server said: %s", str_c(srv));
		break;
	case NEWSGW_POST_REJECT:
		log_info(&sess->log, "message-id=%s, groups=%s, status=bounced "
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

/* newsgw_data - read the content, then one reply per recipient */
static bool
newsgw_data(struct newsgw_lmtp *sess)
{
	struct str *msg = str_new(64 * 1024, 0), *reply = str_new(0, 0);
	enum stream_result r;
	bool too_big = false, bad_line = false;
	size_t i;

	if (!sess->in_mail || sess->nrcpt == 0) {
		newsgw_reply(sess, sess->in_mail ? "554 5.5.1 Error: no valid "
		    "recipients" : "503 5.5.1 Error: need MAIL command");
		str_free(&msg);
		str_free(&reply);
		return true;
	}
	newsgw_reply(sess, "354 End data with <CR><LF>.<CR><LF>");
	if (stream_flush(sess->s) < 0)
		goto lost;
	for (;;) {
		r = stream_read_line(sess->s, sess->line, NEWSGW_DATA_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			bad_line = true;
			continue;
		}
		if (r != STREAM_OK)
			goto lost;
		str_chomp(sess->line);
		if (str_len(sess->line) == 1 && str_c(sess->line)[0] == '.')
			break;
		if (too_big || bad_line)
			continue;
		i = str_len(sess->line) > 0 && str_c(sess->line)[0] == '.' ? 1 : 0;
		if (str_len(msg) + str_len(sess->line) + 2 >
		    newsgw_settings.size_limit) {
			too_big = true;
			continue;
		}
		str_append(msg, str_c(sess->line) + i, str_len(sess->line) - i);
		str_append(msg, "\r\n", 2);
	}
	if (too_big)
		str_set_cstr(reply, "552 5.3.4 Message size exceeds fixed "
		    "limit");
	else if (bad_line)
		str_set_cstr(reply, "552 5.3.4 Line too long");
	else
		newsgw_lmtp_deliver(sess, str_c(msg), str_len(msg), reply);
	for (i = 0; i < sess->nrcpt; i++)
		newsgw_reply(sess, "%s", str_c(reply));
	log_info(&sess->log, "from=<%s>, size=%zu, nrcpt=%zu (done)",
	    str_c(sess->sender), str_len(msg), sess->nrcpt);
	newsgw_tx_reset(sess);
	str_free(&msg);
	str_free(&reply);
	return true;
lost:
	str_free(&msg);
	str_free(&reply);
	return false;
}

/* newsgw_dispatch - one parsed command; false to end */
static bool
newsgw_dispatch(struct newsgw_lmtp *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct str *t;
	int rc;

	switch (cmd->verb) {
	case SMTP_VERB_LHLO:
		newsgw_tx_reset(sess);
		sess->lhlo = true;
		(void)stream_printf(sess->s, "250-%s\r\n250-PIPELINING\r\n"
		    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
		    "250-SMTPUTF8\r\n250 SIZE %llu\r\n",
		    newsgw_settings.myhostname,
		    (unsigned long long)newsgw_settings.size_limit);
		return true;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		newsgw_reply(sess, "500 5.5.1 Error: this is LMTP: use LHLO");
		return true;
	case SMTP_VERB_MAIL:
		if (!sess->lhlo)
			newsgw_reply(sess, "503 5.5.1 Error: send LHLO first");
		else if (sess->in_mail)
			newsgw_reply(sess, "503 5.5.1 Error: nested MAIL command");
		else if (cmd->mail.size_set &&
		    cmd->mail.size > newsgw_settings.size_limit)
			newsgw_reply(sess, "552 5.3.4 Message size exceeds "
			    "fixed limit");
		else if (address_canonical(cmd->addr, sess->sender) < 0)
			newsgw_reply(sess, "501 5.1.7 Bad sender address syntax");
		else {
			queue_id_new(sess->tx_id);
			sess->log.id = sess->tx_id;
			sess->in_mail = true;
			sess->smtputf8 = cmd->mail.smtputf8;
			t = str_new(0, 0);
			mem_printable(t, str_c(sess->sender),
			    str_len(sess->sender), 300);
			log_info(&sess->log, "client=%s, from=<%s>", sess->peer,
			    str_c(t));
			str_free(&t);
			newsgw_reply(sess, "250 2.1.0 Ok");
		}
		return true;
	case SMTP_VERB_RCPT:
		if (!sess->in_mail) {
			newsgw_reply(sess, "503 5.5.1 Error: need MAIL command");
			return true;
		}
		if (sess->nrcpt >= NEWSGW_RCPT_MAX) {
			newsgw_reply(sess, "452 4.5.3 Error: too many recipients");
			return true;
		}
		t = str_new(0, 0);
		rc = newsgw_rcpt_groups(cmd->addr, t, &sess->log);
		if (rc < 0)
			newsgw_reply(sess, "451 4.3.0 Error: newsgroups map "
			    "unavailable");
		else if (rc == 0)
			newsgw_reply(sess, "550 5.1.1 No such gateway address");
		else if (!newsgw_add_groups(sess, str_c(t)))
			newsgw_reply(sess, "550 5.3.5 Bad newsgroups for this "
			    "gateway address");
		else {
			sess->nrcpt++;
			newsgw_reply(sess, "250 2.1.5 Ok");
		}
		str_free(&t);
		return true;
	case SMTP_VERB_DATA:
		return newsgw_data(sess);
	case SMTP_VERB_RSET:
		newsgw_tx_reset(sess);
		newsgw_reply(sess, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_NOOP:
		newsgw_reply(sess, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_QUIT:
		newsgw_reply(sess, "221 2.0.0 Bye");
		return false;
	case SMTP_VERB_VRFY:
		newsgw_reply(sess, "252 2.0.0 Will attempt delivery");
		return true;
	case SMTP_VERB_HELP:
		newsgw_reply(sess, "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT");
		return true;
	default:
		newsgw_reply(sess, "502 5.5.1 Error: command not implemented");
		return true;
	}
}

/* newsgw_lmtp_run - see newsgw.h */
void
newsgw_lmtp_run(int fd, const char *peer)
{
	struct newsgw_lmtp sess;
	enum smtp_proto_error perr;
	enum stream_result r;
	const char *enh;
	int code;

	memset(&sess, 0, sizeof(sess));
	sess.s = stream_new(fd, newsgw_settings.timeout, STREAM_NO_CLOSE);
	sess.cmd = smtp_cmd_new();
	sess.line = str_new(0, 0);
	sess.sender = str_new(0, 0);
	sess.groups = str_new(0, 0);
	sess.peer = peer;
	log_info(NULL, "connect from %s", peer);
	(void)stream_printf(sess.s, "220 %s LMTP Postern news-gw\r\n",
	    newsgw_settings.myhostname);
	for (;;) {
		if (sess.errors >= NEWSGW_ERROR_LIMIT) {
			(void)stream_puts(sess.s, "421 4.7.0 Error: too many "
			    "errors\r\n");
			(void)stream_flush(sess.s);
			break;
		}
		if (stream_pending(sess.s) == 0 && stream_flush(sess.s) < 0)
			break;
		r = stream_read_line(sess.s, sess.line, SMTP_PROTO_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			newsgw_reply(&sess, "500 5.5.2 Error: line too long");
			continue;
		}
		if (r == STREAM_TIMEOUT) {
			(void)stream_puts(sess.s, "421 4.4.2 Error: timeout "
			    "exceeded\r\n");
			(void)stream_flush(sess.s);
			break;
		}
		if (r != STREAM_OK)
			break;
		str_chomp(sess.line);
		perr = smtp_cmd_parse(sess.cmd, str_c(sess.line),
		    str_len(sess.line), NEWSGW_LMTP_EXT,
		    sess.in_mail && sess.smtputf8, 0);
		if (perr != SMTP_PROTO_OK) {
			smtp_proto_error_reply(perr, &code, &enh);
			newsgw_reply(&sess, "%d %s Error: %s", code, enh,
			    smtp_proto_error_str(perr));
			continue;
		}
		if (!newsgw_dispatch(&sess)) {
			(void)stream_flush(sess.s);
			break;
		}
	}
	newsgw_tx_reset(&sess);
	log_info(NULL, "disconnect from %s", peer);
	str_free(&sess.line);
	str_free(&sess.sender);
	str_free(&sess.groups);
	smtp_cmd_free(&sess.cmd);
	stream_free(&sess.s);
}
