/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_plan - what a delivery does: the one place that decides it
 *
 * DESCRIPTION
 *	lmtpd_delivery_plan() turns (recipient, message) into a list of
 *	actions: append to mailbox M with flags F. lmtpd_deliver.c carries
 *	the plan out and never decides anything itself, so the Sieve
 *	engine (fileinto, keep, discard, addflag) replaces this function
 *	and nothing else.
 *
 *	With lmtp_sieve (the default) the user's Sieve scripts decide
 *	(lmtpd_sieve.c). Without: one action. With lmtp_save_to_detail_mailbox = yes and an
 *	address detail ("user+lists" with recipient_delimiter "+"), the
 *	mailbox named by the detail when it exists and the name is valid,
 *	else the INBOX (as Dovecot's lmtp_save_to_detail_mailbox);
 *	otherwise the INBOX. No flags.
 *
 *	Spam (lmtp_spam_header = "Name: value", default off): when no
 *	Sieve script ran and the message has that header field with that
 *	value (case-insensitive), the one action goes to the Junk mailbox
 *	(store_ensure_defaults creates it with \Junk; INBOX if it is gone)
 *	unless the first of spam_optout_maps that has the user says yes
 *	(yes/true: opted out, no/false: not). A user's Sieve script decides
 *	for itself (it sees the header). An opt-out lookup that fails
 *	leaves the message in the INBOX with a warning.
 *
 *	Unless the delivery is refused, the user's vacation setting, when
 *	active, goes to vacationd (lmtpd_vacation.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "config.h"
#include "header.h"
#include "log.h"
#include "map.h"
#include "store/store.h"

#include "lmtpd.h"

/* lmtpd_plan_clear - free the actions */
void
lmtpd_plan_clear(struct lmtpd_plan *plan)
{
	size_t i, k;

	for (i = 0; i < plan->count; i++) {
		free(plan->actions[i].mailbox);
		for (k = 0; plan->actions[i].keywords != NULL &&
		    plan->actions[i].keywords[k] != NULL; k++)
			free(plan->actions[i].keywords[k]);
		free(plan->actions[i].keywords);
		str_free(&plan->actions[i].header);
	}
	free(plan->reject_text);
	memset(plan, 0, sizeof(*plan));
}

/* spam_marked - the message has the lmtp_spam_header field and value */
static bool
spam_marked(struct lmtpd_session *sess, const char *test)
{
	const char *colon = strchr(test, ':'), *v;
	struct header_field f;
	struct str *name, *value;
	size_t hlen = header_block_size(sess->msg.data, (size_t)sess->msg.size);
	bool hit = false;

	if (colon == NULL || colon == test)
		return false;
	name = str_new(0, 0);
	str_append(name, test, (size_t)(colon - test));
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	if (header_find(sess->msg.data, hlen, str_c(name), &f)) {
		value = str_new(0, 4096);
		if (header_unfold(f.value, f.value_len, value) == 0)
			hit = strcasecmp(str_c(value), v) == 0;
		str_free(&value);
	}
	str_free(&name);
	return hit;
}

/*
 * spam_optout - 1 if user opted out in spam_optout_maps, 0 if not, -1
 * with *error_r on a lookup failure; *source_r names the map
 */
static int
spam_optout(const char *user, const char **source_r, const char **error_r)
{
	static struct map **maps;
	static size_t n;
	static struct str *value;
	const char *const *specs;
	size_t i;
	int r;

	specs = config_list(conf(), "spam_optout_maps", &n);
	if (maps == NULL) {
		maps = xcalloc(n + 1, sizeof(*maps));
		value = str_new(0, 0);
	}
	for (i = 0; i < n; i++) {
		*source_r = specs[i];
		if (maps[i] == NULL &&
		    (maps[i] = map_open(specs[i], 0, error_r)) == NULL)
			return -1;
		if ((r = map_lookup(maps[i], user, value, error_r)) < 0)
			return -1;
		if (r == 0)
			continue;
		if (strcasecmp(str_c(value), "yes") == 0 ||
		    strcasecmp(str_c(value), "true") == 0)
			return 1;
		if (strcasecmp(str_c(value), "no") == 0 ||
		    strcasecmp(str_c(value), "false") == 0)
			return 0;
		*error_r = "value is not yes, no, TRUE or FALSE";
		return -1;
	}
	return 0;
}

/* spam_file - the default plan's action a: Junk for marked spam */
static void
spam_file(struct lmtpd_session *sess, const struct lmtpd_rcpt *rcpt,
    struct lmtpd_action *a)
{
	const char *test = config_str(conf(), "lmtp_spam_header");
	const char *source = NULL, *err = NULL;
	int r;

	if (*test == '\0' || !spam_marked(sess, test))
		return;
	r = spam_optout(rcpt->user, &source, &err);
	if (r < 0) {
		log_warn(&sess->log, "to=<%s>, spam (%s): opt-out lookup %s: "
		    "%s: kept in %s", rcpt->address, test, source, err,
		    a->mailbox);
		return;
	}
	if (r > 0) {
		log_info(&sess->log, "to=<%s>, spam (%s): kept in %s "
		    "(opted out in %s)", rcpt->address, test, a->mailbox, source);
		return;
	}
	log_info(&sess->log, "to=<%s>, spam (%s): filed into Junk",
	    rcpt->address, test);
	free(a->mailbox);
	a->mailbox = xstrdup("Junk");
	a->fallback_inbox = true;
}

/* lmtpd_delivery_plan - see lmtpd.h */
int
lmtpd_delivery_plan(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt, struct lmtpd_plan *plan,
    const char **error_r)
{
	struct lmtpd_action *a;
	int ret;

	if (lmtpd_sieve_enabled() &&
	    (ret = lmtpd_sieve_plan(sess, rcpt, plan, error_r)) != 1) {
		if (ret == 0 && plan->reject_text == NULL)
			lmtpd_vacation_setting(sess, rcpt);
		return ret;
	}
	memset(plan, 0, sizeof(*plan));
	a = &plan->actions[plan->count++];
	if (lmtpd_settings.save_to_detail && rcpt->detail != NULL &&
	    store_mailbox_name_ok(rcpt->detail, NULL)) {
		a->mailbox = xstrdup(rcpt->detail);
		a->fallback_inbox = true;
	} else {
		a->mailbox = xstrdup("INBOX");
	}
	spam_file(sess, rcpt, a);
	lmtpd_vacation_setting(sess, rcpt);
	return 0;
}
