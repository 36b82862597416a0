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
 *	Unless the delivery is refused, the user's vacation setting, when
 *	active, goes to vacationd (lmtpd_vacation.c).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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
	lmtpd_vacation_setting(sess, rcpt);
	return 0;
}
