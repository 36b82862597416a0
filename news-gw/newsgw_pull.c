/* SPDX-License-Identifier: MIT */
/*
 * newsgw_pull - fetch new articles of $news_gw_pull_groups and mail them
 *
 * DESCRIPTION
 *	On each wakeup of its master.conf service the puller connects to
 *	$news_gw_pull_server as a reader (MODE READER), and for each group:
 *	GROUP gives the article numbers low..high; the history holds the
 *	group's high-water mark (the last number handled). A group seen
 *	for the first time starts $news_gw_pull_backlog articles before
 *	high.
 *
 *	The numbers after the mark are listed with OVER (RFC 3977 8.3) in
 *	ranges of NEWSGW_OVER_CHUNK: one command gives the number and
 *	Message-ID of every article in the range, and numbers it does not
 *	list are gone (cancelled, expired). A Message-ID already in the
 *	history (it came from mail through us, or we mailed it already) is
 *	skipped without being fetched; otherwise ARTICLE fetches it and
 *	newsgw_receive() mails it. A server without OVER (any reply but
 *	224), or an overview line we cannot read, makes the rest of the
 *	group go the old way: STAT for each number (223 gives the
 *	Message-ID, 423 says it is gone), then ARTICLE. NEWNEWS is not
 *	used: it is by date, not number, and servers often refuse it to
 *	readers; the number mark is exact.
 *
 *	The mark moves past an article once it is handled (mailed, not
 *	wanted, rejected, or gone: 423/430), and past a whole OVER range
 *	once each listed article in it is handled; a temporary failure
 *	stops the group, so that article is tried again at the next
 *	wakeup. RFC 3977 6.1.1, 6.2, 8.3.
 *
 *	Then it expires the history.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nntp_proto.h"
#include "queue_id.h"
#include "str.h"

#include "newsgw.h"

/* newsgw_number - the next decimal number of *pp (spaces skipped); false if none */
static bool
newsgw_number(const char **pp, unsigned long *v)
{
	const char *p = *pp, *start;

	while (*p == ' ')
		p++;
	start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == start || !str_to_ulong(start, (size_t)(p - start), ~0UL, v))
		return false;
	*pp = p;
	return true;
}

#define NEWSGW_OVER_CHUNK	500

enum newsgw_pull_step {
	NEWSGW_PULL_NEXT,	/* handled: the mark may pass it */
	NEWSGW_PULL_STOP,	/* stop the group here, try again later */
	NEWSGW_PULL_LOST,	/* the connection is gone */
};

struct newsgw_pull_ctx {
	struct newsgw_nntp *n;
	const char *group;
	struct log_ctx *log;
	struct str *cmd, *reply, *art;
	unsigned long mailed;
};

/* newsgw_pull_article - article a with Message-ID msgid: skip if known, else fetch and mail */
static enum newsgw_pull_step
newsgw_pull_article(struct newsgw_pull_ctx *c, unsigned long a,
    const char *msgid)
{
	const char *why;
	bool too_big;
	char dir;
	int code, rc;

	rc = newsgw_history_seen(msgid, &dir, c->log);
	if (rc < 0)
		return NEWSGW_PULL_STOP;
	if (rc == 1)
		return NEWSGW_PULL_NEXT;
	str_clear(c->cmd);
	str_printf(c->cmd, "ARTICLE %lu", a);
	code = newsgw_nntp_cmd(c->n, str_c(c->cmd), c->reply);
	if (code < 0)
		return NEWSGW_PULL_LOST;
	if (code == 423 || code == 430)
		return NEWSGW_PULL_NEXT;
	if (code != 220) {
		log_warn(c->log, "pull %s: ARTICLE %lu: %s", c->group, a,
		    str_c(c->reply));
		return NEWSGW_PULL_STOP;
	}
	if (newsgw_nntp_block(c->n, c->art, &too_big) < 0)
		return NEWSGW_PULL_LOST;
	if (too_big) {
		log_info(c->log, "pull %s: article %lu %s skipped: over a "
		    "size or line limit", c->group, a, msgid);
		return NEWSGW_PULL_NEXT;
	}
	rc = newsgw_receive(str_c(c->art), str_len(c->art), c->group, &why,
	    c->log);
	if (rc < 0) {
		log_warn(c->log, "pull %s: article %lu: %s; retry later",
		    c->group, a, why);
		return NEWSGW_PULL_STOP;
	}
	if (rc == 0)
		c->mailed++;
	return NEWSGW_PULL_NEXT;
}

/* newsgw_pull_stat - article a by STAT (no OVER) */
static enum newsgw_pull_step
newsgw_pull_stat(struct newsgw_pull_ctx *c, unsigned long a)
{
	struct str *msgid;
	enum newsgw_pull_step step;
	const char *p, *sp;
	unsigned long num;
	int code;

	str_clear(c->cmd);
	str_printf(c->cmd, "STAT %lu", a);
	code = newsgw_nntp_cmd(c->n, str_c(c->cmd), c->reply);
	if (code < 0)
		return NEWSGW_PULL_LOST;
	if (code == 423)
		return NEWSGW_PULL_NEXT;
	p = str_c(c->reply) + 3;
	if (code != 223 || !newsgw_number(&p, &num)) {
		log_warn(c->log, "pull %s: STAT %lu: %s", c->group, a,
		    str_c(c->reply));
		return NEWSGW_PULL_STOP;
	}
	while (*p == ' ')
		p++;
	sp = strchr(p, ' ');
	msgid = str_new(0, 0);
	str_set(msgid, p, sp != NULL ? (size_t)(sp - p) : strlen(p));
	step = newsgw_pull_article(c, a, str_c(msgid));
	str_free(&msgid);
	return step;
}

/*
 * newsgw_over_line - the number and Message-ID (field 5) of one overview
 * line p/len (CRLF stripped); false if malformed
 */
static bool
newsgw_over_line(const char *p, size_t len, unsigned long *num_r,
    const char **id_r, size_t *idlen_r)
{
	const char *end = p + len, *tab, *field = p;
	size_t i;

	tab = memchr(p, '\t', len);
	if (tab == NULL || !str_to_ulong(p, (size_t)(tab - p), ~0UL, num_r))
		return false;
	/* fields: number, subject, from, date, message-id */
	for (i = 0; i < 4; i++) {
		field = tab + 1;
		tab = memchr(field, '\t', (size_t)(end - field));
		if (tab == NULL)
			return false;
	}
	*id_r = field;
	*idlen_r = (size_t)(tab - field);
	return nntp_msgid_ok(field, *idlen_r);
}

/*
 * newsgw_pull_over - the articles from..to by OVER; the mark into
 * *hwm_r. 1: the range is done; 0: stopped; -1: lost; 2: no usable OVER
 * (the caller steps with STAT from *hwm_r + 1).
 */
static int
newsgw_pull_over(struct newsgw_pull_ctx *c, unsigned long from,
    unsigned long to, unsigned long *hwm_r)
{
	struct str *list = str_new(0, 0), *msgid = str_new(0, 0);
	const char *p, *end, *eol, *id;
	unsigned long num, last = from - 1;
	enum newsgw_pull_step step;
	bool too_big;
	size_t idlen;
	int code, rc = 1;

	str_clear(c->cmd);
	str_printf(c->cmd, "OVER %lu-%lu", from, to);
	code = newsgw_nntp_cmd(c->n, str_c(c->cmd), c->reply);
	if (code < 0) {
		rc = -1;
		goto out;
	}
	if (code == 423) {	/* nothing in the range: all gone */
		*hwm_r = to;
		goto out;
	}
	if (code != 224) {
		log_info(c->log, "pull %s: OVER: %s; using STAT", c->group,
		    str_c(c->reply));
		rc = 2;
		goto out;
	}
	if (newsgw_nntp_block(c->n, list, &too_big) < 0) {
		rc = -1;
		goto out;
	}
	if (too_big) {
		log_warn(c->log, "pull %s: OVER %lu-%lu: over a limit; using "
		    "STAT", c->group, from, to);
		rc = 2;
		goto out;
	}
	/* check every line before acting on any */
	end = str_c(list) + str_len(list);
	for (p = str_c(list); p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL || !newsgw_over_line(p, (size_t)(eol - p),
		    &num, &id, &idlen) || num <= last || num < from ||
		    num > to) {
			log_warn(c->log, "pull %s: OVER %lu-%lu: a bad overview "
			    "line; using STAT", c->group, from, to);
			rc = 2;
			goto out;
		}
		last = num;
	}
	for (p = str_c(list); p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		(void)newsgw_over_line(p, (size_t)(eol - p), &num, &id, &idlen);
		str_set(msgid, id, idlen);
		step = newsgw_pull_article(c, num, str_c(msgid));
		if (step != NEWSGW_PULL_NEXT) {
			rc = step == NEWSGW_PULL_LOST ? -1 : 0;
			goto out;
		}
		*hwm_r = num;
	}
	*hwm_r = to;
out:
	str_free(&list);
	str_free(&msgid);
	return rc;
}

/* newsgw_pull_group - one group; false when the connection is lost */
static bool
newsgw_pull_group(struct newsgw_nntp *n, const char *group,
    struct log_ctx *log)
{
	struct newsgw_pull_ctx c;
	unsigned long count, low, high, hwm, to;
	enum newsgw_pull_step step;
	const char *p;
	bool found, ok = true, over = true;
	int code, rc;

	memset(&c, 0, sizeof(c));
	c.n = n;
	c.group = group;
	c.log = log;
	c.cmd = str_new(0, 0);
	c.reply = str_new(0, 0);
	c.art = str_new(0, 0);
	str_printf(c.cmd, "GROUP %s", group);
	code = newsgw_nntp_cmd(n, str_c(c.cmd), c.reply);
	if (code < 0) {
		ok = false;
		goto out;
	}
	p = str_c(c.reply) + 3;
	if (code != 211 || !newsgw_number(&p, &count) ||
	    !newsgw_number(&p, &low) || !newsgw_number(&p, &high)) {
		log_warn(log, "pull %s: %s", group, str_c(c.reply));
		goto out;
	}
	if (newsgw_history_hwm(group, &hwm, &found, log) < 0)
		goto out;
	if (!found) {
		hwm = high > newsgw_settings.pull_backlog ?
		    high - newsgw_settings.pull_backlog : 0;
		if (low > 0 && hwm < low - 1)
			hwm = low - 1;
	}
	if (count == 0 || high < low)
		goto done;
	if (hwm + 1 < low)
		hwm = low - 1;
	while (hwm < high) {
		if (over) {
			to = high - hwm > NEWSGW_OVER_CHUNK ?
			    hwm + NEWSGW_OVER_CHUNK : high;
			rc = newsgw_pull_over(&c, hwm + 1, to, &hwm);
			if (rc == 1)
				continue;
			if (rc == 2) {
				over = false;
				continue;
			}
			ok = rc == 0;
			break;
		}
		step = newsgw_pull_stat(&c, hwm + 1);
		if (step != NEWSGW_PULL_NEXT) {
			ok = step != NEWSGW_PULL_LOST;
			break;
		}
		hwm++;
	}
done:
	if (newsgw_history_set_hwm(group, hwm, log) == 0 && c.mailed > 0)
		log_info(log, "pull %s: %lu article(s) handled, mark %lu",
		    group, c.mailed, hwm);
out:
	str_free(&c.cmd);
	str_free(&c.reply);
	str_free(&c.art);
	return ok;
}

/* newsgw_pull - see newsgw.h */
void
newsgw_pull(void)
{
	struct newsgw_nntp *n;
	struct str *why;
	struct log_ctx log;
	char id[QUEUE_ID_SIZE];
	size_t i;

	if (newsgw_settings.npull_groups == 0)
		return;
	queue_id_new(id);
	log.id = id;
	why = str_new(0, 0);
	n = newsgw_nntp_open(newsgw_settings.pull_server, true, why, &log);
	if (n == NULL) {
		log_warn(&log, "pull: %s", str_c(why));
		str_free(&why);
		return;
	}
	for (i = 0; i < newsgw_settings.npull_groups; i++)
		if (!newsgw_pull_group(n, newsgw_settings.pull_groups[i], &log)) {
			log_warn(&log, "pull: connection to %s lost",
			    newsgw_settings.pull_server);
			break;
		}
	newsgw_nntp_close(&n);
	(void)newsgw_history_expire(&log);
	str_free(&why);
}
