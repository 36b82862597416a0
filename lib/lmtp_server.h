/* SPDX-License-Identifier: MIT */
/*
 * lmtp_server - one LMTP server session (RFC 2033) for delivery targets
 *
 * The conversation of list-mgr, news-gw and vacationd: LHLO, MAIL, RCPT,
 * DATA, RSET, NOOP, QUIT (HELP and VRFY answered generically; HELO/EHLO
 * refused),
 * commands parsed by lib/smtp_proto, replies buffered so that pipelined
 * commands are answered in one write (the output is flushed only when no
 * more input is buffered), the content read with a bounded line read,
 * dot-unstuffed into memory up to a size limit, and one reply per accepted
 * recipient after DATA. The daemon supplies what differs: which
 * recipients exist (on_rcpt) and what delivery does (on_data), and the
 * options below for what vacationd needs (UTF-8 paths from a client that
 * does not say SMTPUTF8, a parameter holding any octet, the header block
 * alone).
 *
 * Replies the session itself gives (each 4xx/5xx counts towards the error
 * limit; at the limit "421 4.7.0 Error: too many errors" ends it):
 *	220 <hostname> <banner>
 *	250 LHLO reply: PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8,
 *	    the extra keywords, SIZE <size_limit> (omitted when 0)
 *	500 5.5.1 HELO/EHLO ("this is LMTP: use LHLO")
 *	500 5.5.2 a command line longer than line_max
 *	5xx from smtp_proto_error_reply() on a command that does not parse
 *	501 5.5.4 a malformed private RCPT parameter
 *	503 5.5.1 MAIL before LHLO, nested MAIL, RCPT or DATA without MAIL
 *	552 5.3.4 MAIL SIZE= over the limit; after DATA, for every recipient,
 *	    a message over the limit or a content line over data_line_max
 *	554 5.5.1 DATA with no accepted recipient
 *	452 4.5.3 more than rcpt_max recipients
 * A read timeout closes the connection without a reply.
 *
 * Logs (with the transaction's queue-ID-style ID from MAIL on):
 * "connect from PEER", "client=PEER, from=<SENDER>", "from=<SENDER>,
 * size=N, nrcpt=N (done)", "disconnect from PEER".
 *
 * Nothing here exits; a broken connection or QUIT ends the session.
 */
#ifndef POSTERN_LMTP_SERVER_H
#define POSTERN_LMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "log.h"
#include "str.h"

/* One accepted recipient. Strings owned by the session: read only. */
struct lmtp_server_rcpt {
	char *local;
	char *domain;
	char *param;	/* the private RCPT parameter's decoded
				 * value; NULL when not given */
};

/*
 * The transaction, as the callbacks see it: borrowed, valid during the
 * callback only. rcpt[0..nrcpt) are the recipients accepted so far.
 */
struct lmtp_server_tx {
	const char *id;		/* the transaction's ID (for logs) */
	const char *sender;	/* canonical envelope sender, "" = null */
	const char *peer;
	struct log_ctx *log;	/* the session's log context (ID set) */
	size_t nrcpt;
	const struct lmtp_server_rcpt *rcpt;
	bool header_over;	/* on_data with header_max: the header block
				 * was longer (msg is then empty) */
};

struct lmtp_server_settings {
	const char *hostname;	/* in the greeting and the LHLO reply */
	const char *banner;	/* greeting text after the hostname */
	unsigned timeout;	/* seconds a read or write may take */
	uint64_t size_limit;	/* content octets (CRLF, unstuffed); 0: none */
	size_t line_max;	/* a command line; 0: SMTP_PROTO_LINE_MAX */
	size_t data_line_max;	/* a content line; 0: 1 MB */
	size_t rcpt_max;	/* recipients per transaction; 0: 100 */
	unsigned error_limit;	/* 4xx/5xx replies per session; 0: 50 */
	const char *const *lhlo_ext;	/* NULL-terminated extra LHLO
					 * keywords (before SIZE), or NULL */

	/*
	 * A private RCPT TO parameter "NAME=<xtext>" (e.g. "XTOKEN"), taken
	 * off the line before it is parsed and looked for only after the
	 * path. Its decoded value must be 1..rcpt_param_max octets in
	 * 0x21..0x7e; given twice or malformed: 501 5.5.4. NULL: none.
	 */
	const char *rcpt_param;
	size_t rcpt_param_max;

	/*
	 * rcpt_param_xtext: the parameter's decoded value may hold any
	 * octet (1..rcpt_param_max of them); on_rcpt and rcpt[].param get
	 * it xtext-encoded again (upper-case hex, smtp_proto_xtext_encode),
	 * a string the daemon decodes itself.
	 */
	bool rcpt_param_xtext;

	/*
	 * utf8_paths: accept UTF-8 MAIL FROM and RCPT TO paths although the
	 * client did not say SMTPUTF8 (a local client that hands on an
	 * envelope as it got it: lmtpd to vacationd).
	 */
	bool utf8_paths;

	/*
	 * header_max: nonzero: on_data gets only the content's header block
	 * (through the empty line that ends it; all of it if none does),
	 * and the body is read and dropped: a body line over data_line_max
	 * does not matter. A header block over header_max octets, or with
	 * a line over data_line_max, gives on_data an empty msg and
	 * tx->header_over; the daemon says what that means. size_limit
	 * still bounds the whole content.
	 */
	size_t header_max;

	/*
	 * on_rcpt - whether addr is a recipient here. true: accepted
	 * ("250 2.1.5 Ok" unless reply was set). false: reply holds the
	 * whole refusal line without CRLF ("550 5.1.1 No such list").
	 * param: the private parameter's value, NULL if none.
	 */
	bool (*on_rcpt)(void *context, const struct lmtp_server_tx *tx,
	    const struct address *addr, const char *param, struct str *reply);

	/*
	 * on_data - deliver msg[0..len) (CRLF lines, dot-unstuffed; a NUL
	 * follows it) to tx->rcpt[0..tx->nrcpt): set replies[i] to recipient
	 * i's reply line without CRLF. A reply left empty is sent as
	 * "451 4.3.0 Error: no delivery status". Not called when the content
	 * was over a limit.
	 */
	void (*on_data)(void *context, const struct lmtp_server_tx *tx,
	    const char *msg, size_t len, struct str *const *replies);

	/* on_reset - the transaction ended (RSET, LHLO, after DATA, end);
	 * may be NULL */
	void (*on_reset)(void *context);

	void *context;
};

/*
 * lmtp_server_path_end - the offset just past the path that starts at
 * p[i] (i <= len) in a MAIL/RCPT line p[0..len): a '<' path ends at its
 * unquoted '>' (quoted strings may hold '>' and spaces), a path without
 * brackets at the first space; len if it does not end.
 */
size_t lmtp_server_path_end(const char *p, size_t len, size_t i);

/*
 * lmtp_server_split_param - if line p[0..len) is "RCPT TO:" with the
 * parameter name=<xtext> after its path, copy the line without it into
 * out and the decoded value into value: 1. 0 if the line has none (out
 * is then the line unchanged); -1 for a malformed, empty or repeated one
 * (out and value are then undefined). The parameter is looked for only
 * after the path (a '<' path ends at its unquoted '>', one without
 * brackets at the first space), so a quoted local part cannot smuggle
 * one in. For sessions of their own (lmtpd) that take the same
 * parameter.
 */
int lmtp_server_split_param(const char *name, const char *p, size_t len,
    struct str *out, struct str *value);

/*
 * lmtp_server_run - speak LMTP on fd (not closed) with the peer named peer
 * until QUIT, EOF, a timeout, an I/O error or the error limit. settings
 * and peer are borrowed for the call.
 */
void lmtp_server_run(int fd, const char *peer,
    const struct lmtp_server_settings *settings);

#endif
