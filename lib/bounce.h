/* SPDX-License-Identifier: MIT */
/*
 * bounce - delivery status notifications (RFC 3464 multipart/report)
 *
 * bounce_build() writes one whole DSN message (header and body, CRLF
 * line ends, ready for cleanup_client_content()) about some recipients of
 * one original message: a human-readable part, a message/delivery-status
 * part (Reporting-MTA, Original-Envelope-Id, Arrival-Date; per recipient
 * Original-Recipient from ORCPT, Final-Recipient, Action, Status,
 * Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and
 * the original message (message/rfc822) or only its header
 * (text/rfc822-headers): the full message for failures unless RET=HDRS or
 * it is larger than the size limit or binary; headers only for delays
 * and successes (RFC 3461 4.3).
 *
 * The caller decides who gets the DSN and which recipients it reports
 * (NOTIFY), and injects it with a null sender (CLEANUP_FLAG_BOUNCE).
 * The original content is read through a callback so that this module
 * needs no queue file (and can be tested alone).
 *
 * Nothing here exits except on memory exhaustion; -1 with a static
 * *error_r when the content cannot be read.
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include "smtp_proto.h"
#include "str.h"

enum bounce_action {
	BOUNCE_FAILED,
	BOUNCE_DELAYED,
	BOUNCE_DELIVERED,
	BOUNCE_RELAYED,
	BOUNCE_EXPANDED,
};

/* bounce_action_str - "failed", "delayed", ... (the Action: value) */
const char *bounce_action_str(enum bounce_action a);

/* One reported recipient; strings borrowed for the call. */
struct bounce_rcpt {
	const char *address;		/* Final-Recipient (canonical) */
	const char *orcpt_type;		/* ORCPT addr-type, or NULL */
	const char *orcpt;		/* ORCPT decoded address, or NULL */
	enum bounce_action action;
	const char *status;		/* "5.1.1" */
	const char *diag;		/* reason text (may be a server reply) */
	bool diag_smtp;			/* diag is an SMTP reply ("smtp;") */
	const char *remote_mta;		/* host name, or NULL */
	time_t last_attempt;		/* 0 = none */
	time_t will_retry_until;	/* for DELAYED; 0 = none */
};

/* The original message and the report's frame; strings borrowed. */
struct bounce_info {
	const char *queue_id;		/* of the original */
	const char *reporting_mta;	/* $myhostname */
	const char *from;		/* "MAILER-DAEMON@host" */
	const char *to;			/* the DSN's recipient (header) */
	const char *message_id;		/* for the DSN, without <> */
	struct timeval arrival;
	time_t now;
	const char *envid;		/* or NULL */
	enum smtp_ret ret;
	enum smtp_body body;		/* of the original */
	const char *orig_sender;	/* for the human text */
	/* the original content */
	ssize_t (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	void *read_ctx;
	uint64_t content_length;
	uint64_t size_limit;		/* $bounce_size_limit */
};

/*
 * bounce_build - append the whole DSN to out. *body_r tells the BODY the
 * DSN needs (8BITMIME when it carries an 8-bit original). The recipients
 * should share one kind (all failed, all delayed, or all
 * delivered/relayed/expanded): it picks the Subject and the text.
 */
int bounce_build(const struct bounce_info *info,
    const struct bounce_rcpt *rcpts, size_t n, struct str *out,
    enum smtp_body *body_r, const char **error_r);

/* bounce_date - RFC 5322 date-time of t (local time) into out (appended) */
void bounce_date(time_t t, struct str *out);

#endif
