/* SPDX-License-Identifier: MIT */
/*
 * vacationd_session - the LMTP conversation of vacationd
 *
 * DESCRIPTION
 *	The conversation is lib/lmtp_server (RFC 2033: LHLO, MAIL, RCPT,
 *	DATA, RSET, NOOP, QUIT) with one private extension, offered in the
 *	LHLO reply as XPOSTERN-VACATION: each RCPT TO carries the
 *	parameter XPOSTERN-VACATION=<xtext>, the xtext (RFC 3461 4) of the
 *	typed parameter record of lib/vacation.h. A RCPT without it is
 *	refused (555 5.5.4), one whose record does not decode too (501
 *	5.5.4). Paths may be UTF-8 without SMTPUTF8: lmtpd hands on the
 *	envelope as it got it. After the content every accepted recipient
 *	gets its own reply: 250 (a reply was sent, or the rules said none
 *	is due: the text says which) or 451 (try again). Only the header
 *	block of the message is kept (at most VACATIOND_HEADER_MAX
 *	octets; a longer one is "250 no vacation reply: header too
 *	long"); the body is read and dropped.
 *
 *	Limits: a line of VACATIOND_LINE_MAX octets (the parameter record
 *	is at most 64 KiB decoded), VACATIOND_RCPT_MAX recipients per
 *	transaction, VACATIOND_ERROR_LIMIT errors per session.
 */
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "lmtp_server.h"
#include "log.h"
#include "macros.h"
#include "smtp_proto.h"
#include "str.h"
#include "vacation.h"

#include "vacationd.h"

/* One accepted recipient, in the order lmtp_server accepted them. */
struct vacationd_rcpt {
	char *address;		/* canonical */
	struct vacation_params params;
};

struct vacationd_session {
	struct vacationd_rcpt rcpt[VACATIOND_RCPT_MAX];
	size_t nrcpt;
};

/* vacationd_session_reset - forget the transaction's recipients */
static void
vacationd_session_reset(void *context)
{
	struct vacationd_session *vs = context;
	size_t i;

	for (i = 0; i < vs->nrcpt; i++) {
		free(vs->rcpt[i].address);
		vs->rcpt[i].address = NULL;
		vacation_params_clear(&vs->rcpt[i].params);
	}
	vs->nrcpt = 0;
}

/* vacationd_session_rcpt - a recipient with a parameter record that decodes */
static bool
vacationd_session_rcpt(void *context, const struct lmtp_server_tx *tx,
    const struct address *addr, const char *param, struct str *reply)
{
	struct vacationd_session *vs = context;
	struct vacationd_rcpt *r;
	struct str *rec, *canon;
	const char *err = "malformed xtext";

	if (param == NULL) {
		str_set_cstr(reply, "555 5.5.4 Error: " VACATION_EXT
		    " parameter required");
		return false;
	}
	/* lmtp_server refuses past rcpt_max before asking */
	ASSERT(vs->nrcpt < VACATIOND_RCPT_MAX && vs->nrcpt == tx->nrcpt);
	r = &vs->rcpt[vs->nrcpt];
	rec = str_new(0, VACATION_PARAMS_MAX);
	canon = str_new(0, 0);
	if (address_canonical(addr, canon) < 0) {
		str_set_cstr(reply, "501 5.1.3 Error: bad recipient address "
		    "syntax");
		str_free(&rec);
		str_free(&canon);
		return false;
	}
	if (smtp_proto_xtext_decode(param, strlen(param), rec) < 0 ||
	    vacation_params_decode(str_c(rec), str_len(rec), &r->params,
	    &err) < 0) {
		log_warn(tx->log, "bad " VACATION_EXT " parameter: %s", err);
		str_set_cstr(reply, "501 5.5.4 Error: bad " VACATION_EXT
		    " parameter");
		vacation_params_clear(&r->params);
		str_free(&rec);
		str_free(&canon);
		return false;
	}
	r->address = str_steal(&canon);
	vs->nrcpt++;
	str_free(&rec);
	return true;
}

/* vacationd_session_data - vacationd_reply() for each recipient */
static void
vacationd_session_data(void *context, const struct lmtp_server_tx *tx,
    const char *head, size_t hlen, struct str *const *replies)
{
	struct vacationd_session *vs = context;
	struct str *text = str_new(0, 0);
	size_t i;
	int code;

	ASSERT(tx->nrcpt == vs->nrcpt);
	for (i = 0; i < vs->nrcpt; i++) {
		if (tx->header_over) {
			log_info(tx->log, "user=%s: no vacation reply: header "
			    "too long", vs->rcpt[i].params.user);
			str_set_cstr(replies[i], "250 2.0.0 no vacation reply: "
			    "header too long");
			continue;
		}
		code = vacationd_reply(tx->log, tx->sender,
		    vs->rcpt[i].address, &vs->rcpt[i].params, head, hlen, text);
		str_printf(replies[i], "%d %s", code, str_c(text));
	}
	str_free(&text);
}

/* vacationd_session_run - see vacationd.h */
void
vacationd_session_run(int fd, const char *peer)
{
	static const char *const ext[] = { VACATION_EXT, NULL };
	struct lmtp_server_settings set;
	struct vacationd_session vs;

	memset(&vs, 0, sizeof(vs));
	memset(&set, 0, sizeof(set));
	set.hostname = vacationd_settings.myhostname;
	set.banner = "LMTP vacationd";
	set.timeout = vacationd_settings.timeout;
	set.line_max = VACATIOND_LINE_MAX;
	set.data_line_max = VACATIOND_LINE_MAX;
	set.rcpt_max = VACATIOND_RCPT_MAX;
	set.error_limit = VACATIOND_ERROR_LIMIT;
	set.lhlo_ext = ext;
	set.rcpt_param = VACATION_EXT;
	set.rcpt_param_max = VACATION_PARAMS_MAX;
	set.rcpt_param_xtext = true;
	set.utf8_paths = true;
	set.header_max = VACATIOND_HEADER_MAX;
	set.on_rcpt = vacationd_session_rcpt;
	set.on_data = vacationd_session_data;
	set.on_reset = vacationd_session_reset;
	set.context = &vs;
	lmtp_server_run(fd, peer, &set);
	vacationd_session_reset(&vs);
}
