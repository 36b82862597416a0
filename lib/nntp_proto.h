/* SPDX-License-Identifier: MIT */
/*
 * nntp_proto - NNTP pieces shared by news-gw's server and client sides
 *
 * Commands (RFC 3977 3.1, RFC 4644, RFC 4642, RFC 4643): nntp_cmd_parse()
 * splits one command line (its CRLF already removed) into a verb and
 * its arguments, pointing into the caller's line. Lines are bounded by
 * the caller (NNTP_LINE_MAX, CRLF included); NUL, CR and LF inside a
 * line, an empty line, a keyword or argument that is too long, and too
 * many arguments are errors, never truncation.
 *
 * Replies: nntp_reply_parse() reads the three-digit status code of a
 * server reply line and points at its text.
 *
 * Multi-line blocks (articles, RFC 3977 3.1.1): nntp_block_line() feeds
 * one received line at a time into a block, undoing dot-stuffing, until
 * the terminating "." line; the block is bounded (size, line length,
 * header lines) and an over-limit block keeps being read to its end and
 * is then reported, so the session stays in step. nntp_dot_encode()
 * does the reverse for sending.
 *
 * Message-IDs: nntp_msgid_ok() checks RFC 5536 3.1.3 syntax (the
 * "msg-id-core" form with the RFC 3977 limit of 250 octets).
 *
 * Nothing here allocates except into the caller's struct str, and
 * nothing exits on any input.
 */
#ifndef POSTERN_NNTP_PROTO_H
#define POSTERN_NNTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define NNTP_LINE_MAX	512	/* command line incl. CRLF (RFC 3977 3.1) */
#define NNTP_MSGID_MAX	250	/* RFC 3977 3.6 */
#define NNTP_ARG_MAX	4	/* most arguments of any command we know */

enum nntp_verb {
	NNTP_VERB_UNKNOWN = 0,
	NNTP_VERB_CAPABILITIES,
	NNTP_VERB_MODE_STREAM,
	NNTP_VERB_MODE_READER,
	NNTP_VERB_MODE_OTHER,	/* MODE with another argument */
	NNTP_VERB_CHECK,
	NNTP_VERB_TAKETHIS,
	NNTP_VERB_IHAVE,
	NNTP_VERB_QUIT,
	NNTP_VERB_HELP,
	NNTP_VERB_DATE,
	NNTP_VERB_STARTTLS,
	NNTP_VERB_AUTHINFO,
	NNTP_VERB_POST,
	NNTP_VERB_ARTICLE,
	NNTP_VERB_STAT,
	NNTP_VERB_GROUP,
};

enum nntp_proto_error {
	NNTP_PROTO_OK,
	NNTP_PROTO_EMPTY,	/* empty line: 500 */
	NNTP_PROTO_BAD_CHAR,	/* NUL, CR or LF inside: 501 */
	NNTP_PROTO_TOO_LONG,	/* line, keyword or argument too long: 501 */
	NNTP_PROTO_UNKNOWN,	/* unknown keyword: 500 */
	NNTP_PROTO_SYNTAX,	/* wrong number or form of arguments: 501 */
};

struct nntp_arg {
	const char *p;		/* into the parsed line, not NUL-terminated */
	size_t len;
};

struct nntp_cmd {
	enum nntp_verb verb;
	struct nntp_arg args[NNTP_ARG_MAX];	/* the arguments after the keyword */
	size_t nargs;
};

/*
 * nntp_cmd_parse - parse line/len (without CRLF) into *cmd. The
 * argument counts of the commands news-gw serves are checked here:
 * CHECK, TAKETHIS and IHAVE take exactly one message-ID (syntax checked
 * by the caller with nntp_msgid_ok, since a bad ID has its own reply);
 * MODE one; CAPABILITIES, QUIT, HELP, DATE, STARTTLS, POST none or (for
 * CAPABILITIES) one; AUTHINFO one to three, where for AUTHINFO USER and
 * AUTHINFO PASS args[1] is the rest of the line after the white space
 * that follows USER/PASS (spaces and all, possibly trailing ones).
 * Unknown keywords give NNTP_PROTO_UNKNOWN.
 */
enum nntp_proto_error nntp_cmd_parse(struct nntp_cmd *cmd, const char *line,
    size_t len);
/* nntp_proto_error_code - the reply code for an error (500 or 501) */
int nntp_proto_error_code(enum nntp_proto_error err);
/* nntp_proto_error_str - a short static text for an error */
const char *nntp_proto_error_str(enum nntp_proto_error err);

/* nntp_msgid_ok - whether p/n is a valid message-ID, brackets included */
bool nntp_msgid_ok(const char *p, size_t n);

/*
 * nntp_reply_parse - the status code (100..599) of a reply line p/n
 * (CRLF allowed at its end), or -1 when the line does not start with
 * three digits followed by the end or a space. *text_r / *text_len_r
 * get the text after the code (without CRLF); either may be NULL.
 */
int nntp_reply_parse(const char *p, size_t n, const char **text_r,
    size_t *text_len_r);

/* A multi-line block being received. */
struct nntp_block {
	struct str *data;	/* borrowed: lines with CRLF, unstuffed */
	size_t max_size;	/* most bytes kept in data (0: no limit) */
	bool in_body;		/* an empty line was seen */
	bool too_big;		/* over max_size: data no longer grows */
	bool bad;		/* a NUL or bare CR in the header */
	bool done;		/* the "." line was seen */
};

/* nntp_block_init - start a block into data (cleared); max_size as above */
void nntp_block_init(struct nntp_block *b, struct str *data, size_t max_size);
/*
 * nntp_block_line - one received line p/n (with or without its CRLF /
 * LF). Returns true when it was the terminating "." line (b->done).
 * Stuffed dots are removed; lines are stored with CRLF.
 */
bool nntp_block_line(struct nntp_block *b, const char *p, size_t n);

/*
 * nntp_dot_encode - append data p/n (CRLF lines; a last line without
 * its line end gets CRLF; bare LF becomes CRLF) dot-stuffed, and the
 * terminating ".\r\n", to out. Returns 0, or -1 if out hit its maximum.
 */
int nntp_dot_encode(const char *p, size_t n, struct str *out);

#endif
