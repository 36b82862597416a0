/* SPDX-License-Identifier: MIT */
/*
 * listmgr_bounce - VERP bounce processing
 *
 * DESCRIPTION
 *	Copies of posts leave with the envelope sender
 *	NAME-bounces+local=domain@listdomain, so a bounce names the member
 *	in its address: the text after '+' with its last '=' turned back
 *	into '@'. The bounce itself is read by lib/dsn_parse: a failure
 *	adds bounce_score_hard (permanent) or bounce_score_soft (delayed,
 *	or 4xx) tenths to the member's score; a delivery report adds
 *	nothing; a message that is no bounce (an auto-reply) is ignored. At
 *	most one bounce per member per day counts (as Mailman). Reaching
 *	bounce_threshold disables the member (flag bouncing: no more
 *	posts) and tells them so; listmgr_periodic() removes members
 *	disabled longer than bounce_remove_after. Every bounce is answered
 *	250: the queue has nothing to retry.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn_parse.h"
#include "list_store.h"
#include "log.h"
#include "str.h"

#include "listmgr.h"

/* listmgr_bounce - see listmgr.h */
int
listmgr_bounce(struct list *l, const struct listmgr_msg *msg,
    const char *verp, struct str *reply)
{
	static struct dsn_parse_result res;
	struct str *member = str_new(0, 0), *req = str_new(0, 0),
	    *body = str_new(0, 0);
	struct list_members *mp = NULL;
	struct list_member m;
	const char *eq, *error;
	bool hard = false, failed = false;
	time_t now = time(NULL);
	size_t i;
	int r;

	memset(&m, 0, sizeof(m));
	str_set_cstr(reply, "250 2.0.0 Ok");
	eq = strrchr(verp, '=');
	if (eq == NULL || eq == verp || eq[1] == '\0') {
		log_info(msg->log, "list=%s: bounce without a member address "
		    "ignored", l->name);
		goto out;
	}
	str_append(member, verp, (size_t)(eq - verp));
	str_append_c(member, '@');
	str_append_cstr(member, eq + 1);
	{
		struct str *k = str_new(0, 0);

		list_address_key(str_c(member), k);
		str_set_cstr(member, str_c(k));
		str_free(&k);
	}

	dsn_parse(msg->data, msg->len, &res);
	for (i = 0; i < res.count; i++)
		if (res.rcpts[i].action == DSN_ACTION_FAILED ||
		    res.rcpts[i].action == DSN_ACTION_DELAYED) {
			failed = true;
			hard |= res.rcpts[i].hard;
		}
	if (!res.is_bounce || !failed) {
		log_info(msg->log, "list=%s: message to the bounce address for "
		    "<%s> is no failure report; ignored", l->name,
		    str_c(member));
		goto out;
	}
	if ((mp = list_members_open(l, true, &error)) == NULL) {
		str_set_cstr(reply, "451 4.3.0 List member database unavailable");
		goto out;
	}
	r = list_member_get(mp, str_c(member), &m, &error);
	if (r <= 0) {
		if (r < 0)
			str_set_cstr(reply, "451 4.3.0 List member database error");
		else
			log_info(msg->log, "list=%s: bounce for non-member <%s> "
			    "ignored", l->name, str_c(member));
		goto out;
	}
	if (m.flags & LIST_MEMBER_BOUNCING)
		goto out;
	/* one bounce a day counts, as Mailman's bounce_info does */
	if (list_get_bool(l, "bounce_once_per_day") &&
	    m.last_bounce != 0 && now - m.last_bounce < 86400 &&
	    m.last_bounce / 86400 == now / 86400) {
		log_info(msg->log, "list=%s: bounce member=<%s> (already counted "
		    "today) score=%.1f", l->name, m.address, m.score);
		goto out;
	}
	m.score += (double)list_get_int(l, hard ? "bounce_score_hard" :
	    "bounce_score_soft") / 10.0;
	m.last_bounce = now;
	log_info(msg->log, "list=%s: bounce member=<%s> %s score=%.1f", l->name,
	    m.address, hard ? "hard" : "soft", m.score);
	if (m.score * 10.0 + 0.001 >= (double)list_get_int(l, "bounce_threshold")) {
		m.flags |= LIST_MEMBER_BOUNCING;
		m.disabled = now;
		log_info(msg->log, "list=%s: member <%s> disabled (bounces)",
		    l->name, m.address);
		list_address(l, "request", req);
		str_printf(body, "Your membership of %s@%s is disabled because "
		    "mail to you\n(%s) bounced too often. You will be removed "
		    "after a while unless\nyou send \"subscribe\" to %s.\n",
		    l->name, list_get(l, "domain"), m.address, str_c(req));
		(void)listmgr_notice(l, str_c(req), m.address,
		    "Your list membership is disabled", NULL, str_c(body),
		    msg->log);
	}
	if (list_member_put(mp, &m, &error) < 0)
		str_set_cstr(reply, "451 4.3.0 List member database error");
out:
	list_member_clear(&m);
	list_members_close(&mp);
	str_free(&member);
	str_free(&req);
	str_free(&body);
	return atoi(str_c(reply));
}
