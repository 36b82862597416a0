/* SPDX-License-Identifier: MIT */
/*
 * smtp_proto - SMTP/LMTP command parser, ESMTP parameters, reply parser
 *
 * The server side (smtpd, lmtpd, and every LMTP target) reads one line
 * with stream_read_line(), strips the CRLF, and calls smtp_cmd_parse().
 * The result is the verb and its checked, decoded arguments, or a precise
 * enum smtp_proto_error. smtp_proto_error_reply() gives the reply code and
 * RFC 3463 enhanced status code for each error so that every daemon
 * answers the same; the reply TEXT lives with the daemons.
 *
 * Grammar (RFC 5321 4.1, RFC 2033, RFC 3030, RFC 1870, RFC 6152, RFC
 * 3461, RFC 4954, RFC 6531): verbs are case-insensitive; exactly what each
 * verb takes is checked (DATA, RSET, QUIT, STARTTLS take nothing; NOOP and
 * HELP take anything; EHLO/HELO/LHLO a domain or address literal; MAIL
 * FROM:<reverse-path> and RCPT TO:<forward-path> then SP-separated
 * esmtp-params; BDAT chunk-size [LAST]; AUTH mechanism [initial-response];
 * VRFY and EXPN a non-empty string). ESMTP parameter keywords are
 * case-insensitive; a keyword given twice is SMTP_PROTO_ERR_PARAM_DUPLICATE,
 * an unknown keyword or one of an extension not in the enabled mask is
 * SMTP_PROTO_ERR_PARAM_UNKNOWN (555 5.5.4, RFC 1869 6), a bad value
 * SMTP_PROTO_ERR_PARAM_VALUE (501 5.5.4).
 *
 * Tolerated unless SMTP_PROTO_STRICT: spaces after "FROM:"/"TO:", a path
 * without angle brackets (ends at the first space), several spaces between
 * parameters and trailing spaces (as Postfix with strict_rfc821_envelopes
 * = no), and in EHLO/HELO/LHLO names '_' in labels and a trailing dot
 * (what Windows hosts send). Never tolerated: NUL, CR, LF or other control
 * octets anywhere in the line (SMTP_PROTO_ERR_BAD_CHAR; TAB only inside
 * NOOP/HELP/VRFY/EXPN text), a line longer than SMTP_PROTO_LINE_MAX (the
 * caller's stream read enforces that first).
 *
 * The MAIL FROM path may be UTF-8 only if the same command carries
 * SMTPUTF8; RCPT TO paths only if the transaction's MAIL FROM did (the
 * mail_smtputf8 argument). Either way a non-ASCII path without it is
 * SMTP_PROTO_ERR_NEED_SMTPUTF8 (553 5.6.7, RFC 6531 3.5), unless the
 * flags have SMTP_PROTO_UTF8_PATHS.
 *
 * Nothing here ends the process except on memory exhaustion.
 */
#ifndef POSTERN_SMTP_PROTO_H
#define POSTERN_SMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "str.h"

/* RFC 5321 4.5.3.1.4 is 512 incl. CRLF; extensions (RFC 1869) add 2000. */
#define SMTP_PROTO_LINE_MAX	4096
#define SMTP_PROTO_ENVID_MAX	100	/* decoded octets, RFC 3461 4.4 */
#define SMTP_PROTO_ORCPT_MAX	500	/* decoded octets, RFC 3461 4.2 */
#define SMTP_PROTO_AUTH_MAX	500	/* decoded MAIL FROM AUTH= value */

enum smtp_verb {
	SMTP_VERB_NONE = 0,	/* nothing parsed (error) */
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_LHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* Extensions the server advertised: parameters of others are refused. */
#define SMTP_EXT_SIZE		0x001	/* RFC 1870 */
#define SMTP_EXT_8BITMIME	0x002	/* RFC 6152 */
#define SMTP_EXT_BINARYMIME	0x004	/* RFC 3030 (needs CHUNKING) */
#define SMTP_EXT_CHUNKING	0x008	/* RFC 3030 BDAT */
#define SMTP_EXT_SMTPUTF8	0x010	/* RFC 6531 */
#define SMTP_EXT_DSN		0x020	/* RFC 3461: RET ENVID NOTIFY ORCPT */
#define SMTP_EXT_AUTH		0x040	/* RFC 4954: MAIL FROM AUTH= */
#define SMTP_EXT_PIPELINING	0x080	/* RFC 2920 (no parameters) */
#define SMTP_EXT_STARTTLS	0x100	/* RFC 3207 (no parameters) */
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x200 /* RFC 2034 (no parameters) */
#define SMTP_EXT_ALL		0x3ff

/* Parser flags. */
#define SMTP_PROTO_STRICT	0x01	/* RFC 5321 exactly: no tolerated deviations */
#define SMTP_PROTO_UTF8_PATHS	0x02	/* UTF-8 MAIL/RCPT paths without SMTPUTF8
					 * (a local client that hands on an
					 * envelope as it got it: vacationd's) */

enum smtp_body {
	SMTP_BODY_NONE = 0,	/* not given (7BIT assumed) */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
	SMTP_RET_NONE = 0,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* NOTIFY= bits; NEVER excludes the others. */
#define SMTP_NOTIFY_NEVER	0x01
#define SMTP_NOTIFY_SUCCESS	0x02
#define SMTP_NOTIFY_FAILURE	0x04
#define SMTP_NOTIFY_DELAY	0x08

enum smtp_proto_error {
	SMTP_PROTO_OK = 0,
	SMTP_PROTO_ERR_EMPTY,		/* empty line				500 5.5.2 */
	SMTP_PROTO_ERR_BAD_CHAR,	/* NUL/CR/LF/control octet		500 5.5.2 */
	SMTP_PROTO_ERR_LINE_TOO_LONG,	/* longer than SMTP_PROTO_LINE_MAX	500 5.5.6 */
	SMTP_PROTO_ERR_UNKNOWN_VERB,	/* not a command we know		500 5.5.2 */
	SMTP_PROTO_ERR_SYNTAX,		/* bad argument syntax			501 5.5.4 */
	SMTP_PROTO_ERR_ARG_MISSING,	/* argument required			501 5.5.4 */
	SMTP_PROTO_ERR_ARG_UNEXPECTED,	/* verb takes no argument		501 5.5.4 */
	SMTP_PROTO_ERR_HELO_DOMAIN,	/* bad EHLO/HELO/LHLO argument		501 5.5.4 */
	SMTP_PROTO_ERR_SENDER,		/* bad reverse-path			501 5.1.7 */
	SMTP_PROTO_ERR_RECIPIENT,	/* bad forward-path			501 5.1.3 */
	SMTP_PROTO_ERR_PATH_TOO_LONG,	/* path > 256 octets			501 5.5.4 */
	SMTP_PROTO_ERR_NEED_SMTPUTF8,	/* non-ASCII path without SMTPUTF8	553 5.6.7 */
	SMTP_PROTO_ERR_PARAM_SYNTAX,	/* malformed esmtp-param		501 5.5.4 */
	SMTP_PROTO_ERR_PARAM_UNKNOWN,	/* unknown or not enabled keyword	555 5.5.4 */
	SMTP_PROTO_ERR_PARAM_DUPLICATE,	/* keyword given twice			501 5.5.4 */
	SMTP_PROTO_ERR_PARAM_VALUE,	/* bad value for a known keyword	501 5.5.4 */
	SMTP_PROTO_ERR_PARAM_CONFLICT,	/* e.g. BODY=BINARYMIME w/o CHUNKING	501 5.5.4 */
	SMTP_PROTO_ERR_BDAT_SIZE,	/* bad BDAT chunk size			501 5.5.4 */
};

/* MAIL FROM parameters. Strings owned by the smtp_cmd. */
struct smtp_mail_params {
	bool size_set;
	uint64_t size;			/* SIZE= */
	enum smtp_body body;		/* BODY= */
	bool smtputf8;			/* SMTPUTF8 */
	enum smtp_ret ret;		/* RET= */
	bool envid_set;
	struct str *envid;		/* ENVID=, xtext-decoded */
	bool auth_set;
	struct str *auth;		/* AUTH=, xtext-decoded; "<>" if unknown */
};

/* RCPT TO parameters. */
struct smtp_rcpt_params {
	unsigned notify;		/* SMTP_NOTIFY_*; 0 if not given */
	bool orcpt_set;
	struct str *orcpt_type;		/* addr-type as given ("rfc822") */
	struct str *orcpt;		/* xtext-decoded address */
};

/*
 * One parsed command. Allocate once per session with smtp_cmd_new() and
 * reuse: smtp_cmd_parse() resets it. All strings are owned by the cmd,
 * hold no NUL, and stay valid until the next parse or smtp_cmd_free().
 */
struct smtp_cmd {
	enum smtp_verb verb;
	struct str *arg;	/* HELO/EHLO/LHLO domain; VRFY/EXPN/NOOP/HELP text;
				 * AUTH mechanism (upper-cased) */
	struct str *arg2;	/* AUTH initial response (base64 or "=") */
	bool arg2_set;
	struct address *addr;	/* MAIL/RCPT path */
	struct smtp_mail_params mail;
	struct smtp_rcpt_params rcpt;
	uint64_t bdat_size;	/* BDAT chunk size */
	bool bdat_last;		/* BDAT ... LAST */
	const char *bad_param;	/* on PARAM errors: the keyword (static; NULL if
				 * unknown); for logging only */
	enum address_error addr_error; /* on SENDER/RECIPIENT errors: why */
};

struct smtp_cmd *smtp_cmd_new(void);
void smtp_cmd_free(struct smtp_cmd **cmdp);

/*
 * smtp_cmd_parse - parse one command line p[0..len) WITHOUT its CRLF.
 * ext: the SMTP_EXT_* the server advertised (parameters of others are
 * unknown). mail_smtputf8: this transaction's MAIL FROM had SMTPUTF8 (for
 * RCPT TO paths; MAIL FROM itself looks at its own SMTPUTF8 parameter).
 * flags: SMTP_PROTO_*. On error cmd->verb still tells which command was
 * meant (SMTP_VERB_NONE if not known), so the daemon can count errors.
 */
enum smtp_proto_error smtp_cmd_parse(struct smtp_cmd *cmd, const char *p,
    size_t len, unsigned ext, bool mail_smtputf8, unsigned flags);

/* smtp_verb_name - "MAIL" etc.; "" for SMTP_VERB_NONE */
const char *smtp_verb_name(enum smtp_verb verb);

/*
 * smtp_proto_error_reply - the reply code (500, 501, 553, 555) and the
 * enhanced status code ("5.5.4") for an error; smtp_proto_error_str - a
 * short English description for logs and default reply text.
 */
void smtp_proto_error_reply(enum smtp_proto_error err, int *code_r,
    const char **enhanced_r);
const char *smtp_proto_error_str(enum smtp_proto_error err);

/*
 * smtp_proto_helo_ok - p[0..len) is a valid EHLO/HELO/LHLO argument: a
 * domain or an address literal (RFC 5321 4.1.1.1).
 */
bool smtp_proto_helo_ok(const char *p, size_t len, bool utf8);

/*
 * xtext (RFC 3461 4): printable ASCII except '+' and '=' stands for
 * itself; any octet may be "+XX" (two UPPER-case hex digits).
 * smtp_proto_xtext_decode appends the decoded p[0..len) to out; -1 on
 * malformed xtext (lower-case hex, a bare '+', '=' or an octet outside
 * 33..126), or E2BIG at out's maximum; on -1 out is unchanged.
 * smtp_proto_xtext_encode appends the xtext of p[0..len) (same return as
 * str_append).
 */
int smtp_proto_xtext_decode(const char *p, size_t len, struct str *out);
int smtp_proto_xtext_encode(const char *p, size_t len, struct str *out);

/* ----------------------------------------------------- reply parsing */

/*
 * A (possibly multi-line) server reply, for the outbound SMTP/LMTP
 * client. Feed it line by line (without CRLF) with smtp_reply_add_line()
 * until it says SMTP_REPLY_DONE.
 */
struct smtp_reply {
	int code;		/* 200..599 */
	char enhanced[12];	/* "2.1.0", or "" when the reply has none */
	size_t nlines;
	struct str **lines;	/* text after "NNN-" / "NNN " (and after the
				 * enhanced code when present), owned */
	size_t cap;		/* private */
	size_t total;		/* private: octets so far */
};

enum smtp_reply_result {
	SMTP_REPLY_MORE,	/* a continuation line "NNN-"; feed the next */
	SMTP_REPLY_DONE,	/* the last line "NNN " or "NNN" */
	SMTP_REPLY_ERROR,	/* malformed: bad code, code changed, too long */
};

#define SMTP_REPLY_LINES_MAX	1000
#define SMTP_REPLY_TOTAL_MAX	(64 * 1024)

struct smtp_reply *smtp_reply_new(void);
void smtp_reply_free(struct smtp_reply **replyp);
/* smtp_reply_clear - ready for the next reply */
void smtp_reply_clear(struct smtp_reply *reply);
/*
 * smtp_reply_add_line - parse one line p[0..len) of a reply; *error_r
 * (static text) on SMTP_REPLY_ERROR. After DONE or ERROR, clear before
 * feeding the next reply.
 */
enum smtp_reply_result smtp_reply_add_line(struct smtp_reply *reply,
    const char *p, size_t len, const char **error_r);
/*
 * smtp_reply_ehlo - the SMTP_EXT_* announced in an EHLO/LHLO reply (from
 * its second line on) and the SIZE limit (0 if none or unlimited).
 */
unsigned smtp_reply_ehlo(const struct smtp_reply *reply, uint64_t *size_max_r);

#endif
