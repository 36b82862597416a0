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
 *	high. For each number after the mark: STAT gives the Message-ID;
 *	one already in the history (it came from mail through us, or we
 *	mailed it already) is skipped without being fetched; otherwise
 *	ARTICLE fetches it and newsgw_receive() mails it. The mark moves
 *	past an article once it is handled (mailed, not wanted, rejected,
 *	or gone: 423); a temporary failure stops the group, so that
 *	article is tried again at the next wakeup. RFC 3977 6.1.1, 6.2.
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

/* newsgw_pull_group - one group; false when the connection is lost */
static bool
newsgw_pull_group(struct newsgw_nntp *n, const char *group,
    struct log_ctx *log)
{
	struct str *cmd = str_new(0, 0), *reply = str_new(0, 0),
	    *art = str_new(0, 0), *msgid = str_new(0, 0);
	unsigned long count, low, high, hwm, a, num, mailed = 0;
	const char *p, *why, *sp;
	bool found, too_big, ok = true;
	char dir;
	int code, rc;

	str_printf(cmd, "GROUP %s", group);
	code = newsgw_nntp_cmd(n, str_c(cmd), reply);
	if (code < 0) {
		ok = false;
		goto out;
	}
	p = str_c(reply) + 3;
	if (code != 211 || !newsgw_number(&p, &count) ||
	    !newsgw_number(&p, &low) || !newsgw_number(&p, &high)) {
		log_warn(log, "pull %s: %s", group, str_c(reply));
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
	for (a = hwm + 1; a <= high && a != 0; a++) {
		str_clear(cmd);
		str_printf(cmd, "STAT %lu", a);
		code = newsgw_nntp_cmd(n, str_c(cmd), reply);
		if (code < 0) {
			ok = false;
			break;
		}
		if (code == 423) {
			hwm = a;
			continue;
		}
		p = str_c(reply) + 3;
		if (code != 223 || !newsgw_number(&p, &num)) {
			log_warn(log, "pull %s: STAT %lu: %s", group, a,
			    str_c(reply));
			break;
		}
		while (*p == ' ')
			p++;
		sp = strchr(p, ' ');
		str_set(msgid, p, sp != NULL ? (size_t)(sp - p) : strlen(p));
		rc = newsgw_history_seen(str_c(msgid), &dir, log);
		if (rc < 0)
			break;
		if (rc == 1) {
			hwm = a;
			continue;
		}
		str_clear(cmd);
		str_printf(cmd, "ARTICLE %lu", a);
		code = newsgw_nntp_cmd(n, str_c(cmd), reply);
		if (code < 0) {
			ok = false;
			break;
		}
		if (code == 423 || code == 430) {
			hwm = a;
			continue;
		}
		if (code != 220) {
			log_warn(log, "pull %s: ARTICLE %lu: %s", group, a,
			    str_c(reply));
			break;
		}
		if (newsgw_nntp_block(n, art, &too_big) < 0) {
			ok = false;
			break;
		}
		if (too_big) {
			log_info(log, "pull %s: article %lu %s skipped: over "
			    "a size or line limit", group, a, str_c(msgid));
			hwm = a;
			continue;
		}
		rc = newsgw_receive(str_c(art), str_len(art), group, &why, log);
		if (rc < 0) {
			log_warn(log, "pull %s: article %lu: %s; retry later",
			    group, a, why);
			break;
		}
		if (rc == 0)
			mailed++;
		hwm = a;
	}
done:
	if (newsgw_history_set_hwm(group, hwm, log) == 0 && mailed > 0)
		log_info(log, "pull %s: %lu article(s) handled, mark %lu",
		    group, mailed, hwm);
out:
	str_free(&cmd);
	str_free(&reply);
	str_free(&art);
	str_free(&msgid);
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
