/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_vacation - hand vacation requests to vacationd
 *
 * DESCRIPTION
 *	Both ways of asking for an out-of-office reply take one path:
 *	lmtpd_vacation_sieve() for a Sieve vacation action (called by
 *	lmtpd_sieve.c) and lmtpd_vacation_setting() for the user's vacation
 *	setting while it is active (the user's LDAP entry through
 *	$vacation_setting_maps, else postern vacation set: lib/vacation.h
 *	vacation_setting_lookup; called by lmtpd_plan.c for every delivery
 *	that is not refused). Each sends
 *	the original message with the request's parameters to vacationd
 *	($vacation_service) with vacation_client_send(); vacationd decides
 *	whether a reply is due and sends it. When the user's Sieve script
 *	took a vacation action for this recipient in this transaction, the
 *	setting is not used as well (one reply, the script's).
 *
 *	A failed setting lookup (the directory is down, a malformed entry)
 *	or hand-off is logged and never fails the delivery: the mail is
 *	stored all the same, and a missing auto-reply is preferred to a
 *	delivery retried for its sake (and to a reply from a settings.db
 *	setting that the directory might have switched off).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "sieve/sieve.h"
#include "str.h"
#include "vacation.h"

#include "lmtpd.h"

/* the recipient of the last Sieve vacation request ("TXID\nADDRESS") */
static char *lmtpd_vacation_last;

/* send - one request; logged */
static void
send_request(struct lmtpd_session *sess, const struct lmtpd_rcpt *rcpt,
    const struct vacation_params *p, const char *what)
{
	struct config *cf = conf();
	const char *service = config_str(cf, "vacation_service");
	struct str *result = str_new(0, 0);

	if (*service == '\0') {
		log_info(&sess->log, "to=<%s>, %s: vacation_service is empty, "
		    "no vacation reply", rcpt->address, what);
		str_free(&result);
		return;
	}
	if (vacation_client_send(service, config_time(cf, "vacationd_timeout"),
	    config_str(cf, "myhostname"), str_c(sess->sender), rcpt->address,
	    p, sess->msg.data, (size_t)sess->msg.size, result) < 0)
		log_warn(&sess->log, "to=<%s>, %s: vacation request not "
		    "handed to vacationd: %s", rcpt->address, what,
		    str_c(result));
	else
		log_info(&sess->log, "to=<%s>, %s: vacationd: %s",
		    rcpt->address, what, str_c(result));
	str_free(&result);
}

/* lmtpd_vacation_sieve - see lmtpd.h */
void
lmtpd_vacation_sieve(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt, const struct sieve_action *a)
{
	struct vacation_params p;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.user = xstrdup(rcpt->user);
	p.period = a->period;
	p.subject = a->subject != NULL ? xstrdup(a->subject) : NULL;
	p.from = a->from != NULL ? xstrdup(a->from) : NULL;
	for (i = 0; a->addresses != NULL && a->addresses[i] != NULL &&
	    i < VACATION_ADDRESSES_MAX; i++)
		vacation_params_add_address(&p, a->addresses[i]);
	p.mime = a->mime;
	p.handle = xstrdup(a->handle != NULL ? a->handle : "");
	p.reason = xstrdup(a->text != NULL ? a->text : "");
	p.source = VACATION_SOURCE_SIEVE;
	send_request(sess, rcpt, &p, "sieve");
	vacation_params_clear(&p);
	free(lmtpd_vacation_last);
	lmtpd_vacation_last = xasprintf("%s\n%s", sess->tx_id, rcpt->address);
}

/* lmtpd_vacation_setting - see lmtpd.h */
void
lmtpd_vacation_setting(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt)
{
	struct config *cf = conf();
	struct vacation_sources src;
	struct vacation_setting s;
	const char *err = NULL;
	char *me;
	int r;

	me = xasprintf("%s\n%s", sess->tx_id, rcpt->address);
	if (lmtpd_vacation_last != NULL &&
	    strcmp(lmtpd_vacation_last, me) == 0) {
		free(me);	/* the Sieve script's vacation action ran */
		return;
	}
	free(me);
	memset(&src, 0, sizeof(src));
	src.maps = config_list(cf, "vacation_setting_maps", &src.nmaps);
	src.dir = config_str(cf, "vacation_directory");
	src.default_period = config_time(cf, "vacation_default_period");
	r = vacation_setting_lookup(&src, rcpt->user, &s, &err);
	if (r < 0) {
		/* the mail is delivered all the same; no reply this time */
		log_warn(&sess->log, "to=<%s>, vacation setting lookup failed, "
		    "no vacation reply: %s", rcpt->address, err);
		return;
	}
	if (r == 0)
		return;
	if (vacation_setting_active(&s, vacation_now()))
		send_request(sess, rcpt, &s.params,
		    s.params.source == VACATION_SOURCE_LDAP ?
		    "vacation setting (directory)" : "vacation setting");
	vacation_setting_clear(&s);
}
