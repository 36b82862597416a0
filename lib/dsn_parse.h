/* SPDX-License-Identifier: MIT */
/*
 * dsn_parse - read delivery status notifications (bounces) for list-mgr
 *
 * dsn_parse() looks at one whole message (header and body, CRLF or LF)
 * and reports, per recipient it names, what happened to the mail:
 *
 *   - RFC 3464 reports: a multipart/report whose message/delivery-status
 *     part gives, per recipient, Final-Recipient (or Original-Recipient),
 *     Action (failed, delayed, delivered, relayed, expanded) and Status
 *     (class.subject.detail); Diagnostic-Code is kept for logs.
 *   - Common non-standard formats: qmail ("Hi. This is the qmail-send
 *     program", then "<addr>:" paragraphs), old Postfix and Sendmail
 *     ("<addr>: ..." lines, "----- The following addresses had permanent
 *     fatal errors -----"), Exim ("This message was created
 *     automatically by mail delivery software", indented addresses),
 *     and Microsoft's ("Delivery has failed to these recipients"). For
 *     these, a failure is hard (permanent) unless the text says the
 *     delivery is only delayed or is being retried, or the only codes
 *     are 4xx.
 *
 * A message that is no bounce at all gives 0 results. Recipients whose
 * address cannot be found get recipient "" (list-mgr knows the member
 * from the VERP address anyway).
 *
 * Bounded: at most DSN_PARSE_MAX results, fields capped; never fails on
 * any input and never ends the process (but on memory exhaustion).
 */
#ifndef POSTERN_DSN_PARSE_H
#define POSTERN_DSN_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define DSN_PARSE_MAX		100

enum dsn_action {
	DSN_ACTION_FAILED,	/* permanent or given-up failure */
	DSN_ACTION_DELAYED,	/* still being retried */
	DSN_ACTION_DELIVERED,	/* delivered, relayed or expanded */
	DSN_ACTION_UNKNOWN,
};

struct dsn_parse_rcpt {
	char recipient[320];	/* address, "" if unknown */
	enum dsn_action action;
	char status[16];	/* "5.1.1", or "" */
	char diagnostic[256];	/* printable, may be "" */
	bool hard;		/* action failed and status class 5 (or no status) */
};

struct dsn_parse_result {
	bool is_report;		/* a multipart/report delivery-status */
	bool is_bounce;		/* any format recognised */
	size_t count;
	struct dsn_parse_rcpt rcpts[DSN_PARSE_MAX];
};

/* dsn_parse - parse msg (see above) into *res (cleared first) */
void dsn_parse(const char *msg, size_t len, struct dsn_parse_result *res);

/* dsn_action_name - "failed", "delayed", "delivered", "unknown" */
const char *dsn_action_name(enum dsn_action a);

#endif
