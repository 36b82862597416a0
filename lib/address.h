/* SPDX-License-Identifier: MIT */
/*
 * address - RFC 5321 envelope paths and RFC 5322 header address lists
 *
 * Two parsers share one result type, struct address: a mailbox split
 * into its local part (decoded: quotes and backslash escapes removed,
 * case preserved) and its domain (ASCII letters lower-cased; an address
 * literal keeps its brackets, "[192.0.2.1]", "[IPv6:2001:db8::1]").
 *
 * The CANONICAL FORM is what Postern stores in queue files, maps keys on
 * and passes between programs: "local@domain", the local part written as
 * a Dot-string when it is one and otherwise as a Quoted-string with "\"
 * before each '"' and '\'; the null sender is the empty string; the
 * special RCPT TO:<Postmaster> is "Postmaster" (no '@'). For every
 * address a that either parser returns, address_parse_mailbox() of its
 * canonical form with ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NULL |
 * ADDRESS_ALLOW_NO_DOMAIN gives back a exactly (tested and fuzzed), and
 * the canonical form is at most ADDRESS_CANONICAL_MAX octets.
 *
 * RFC 5321 (address_parse_path, address_parse_mailbox): strict grammar.
 * A source route ("<@a,@b:user@c>") is accepted and ignored (RFC 5321
 * 4.1.1.3, C.). Local-part: Dot-string or Quoted-string (qtextSMTP and
 * quoted-pairSMTP, 32..126). Domain: LDH labels of at most 63 octets, or
 * an address literal [IPv4] or [IPv6:...] (checked with inet_pton);
 * General-address-literals are refused (we cannot route them). Non-ASCII
 * octets (well-formed UTF-8 only) are allowed in the local part and in
 * domain labels only with ADDRESS_SMTPUTF8 (RFC 6531); otherwise they are
 * ADDRESS_ERR_NEED_SMTPUTF8 (smtpd: 553 5.6.7). Lengths (RFC 5321
 * 4.5.3.1): local part 64 octets as written, domain 255, whole path 256
 * including the angle brackets and any route.
 *
 * RFC 5322 (address_list_parse): tolerant grammar for To/Cc/Bcc/From/
 * Reply-To/Sender headers as cleanup (sendmail -t, canonical rewriting),
 * Sieve address tests and vacation need them: name-addr, angle-addr,
 * addr-spec, groups ("list: a@b, c@d;"), comments (nested, dropped),
 * quoted strings, folding whitespace (CRLF or LF followed by WSP) and the
 * obsolete forms of RFC 5322 4.4 (CFWS around dots, obs-route in an
 * angle-addr, empty list elements, a mailbox without a domain). It does not
 * decode RFC 2047 encoded words in display names (the MIME module does).
 * Not for IMAP ENVELOPE: lib/mime parses its own.
 *
 * Nothing here ends the process except on memory exhaustion (alloc.h);
 * bad input is a return value. Every parser reads (pointer, length) and
 * never relies on a NUL; a NUL, CR or LF inside an RFC 5321 path is a
 * syntax error.
 */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define ADDRESS_LOCAL_MAX	64	/* octets, RFC 5321 4.5.3.1.1 */
#define ADDRESS_DOMAIN_MAX	255	/* octets, RFC 5321 4.5.3.1.2 */
#define ADDRESS_PATH_MAX	256	/* octets incl. <>, RFC 5321 4.5.3.1.3 */
#define ADDRESS_LABEL_MAX	63	/* octets per domain label (RFC 1035) */
/* the longest canonical form: every local octet escaped, plus quotes and @ */
#define ADDRESS_CANONICAL_MAX	(2 * ADDRESS_LOCAL_MAX + 3 + ADDRESS_DOMAIN_MAX)

/* Flags for the RFC 5321 parsers. */
#define ADDRESS_SMTPUTF8	0x01	/* UTF-8 allowed (MAIL FROM had SMTPUTF8) */
#define ADDRESS_ALLOW_NULL	0x02	/* "<>" accepted (reverse-path) */
#define ADDRESS_ALLOW_POSTMASTER 0x04	/* "<Postmaster>" without domain (forward-path) */
#define ADDRESS_ALLOW_NO_DOMAIN	0x08	/* mailbox without "@domain" (sendmail args) */

enum address_error {
	ADDRESS_OK = 0,
	ADDRESS_ERR_SYNTAX,		/* malformed in a way not listed below */
	ADDRESS_ERR_BRACKETS,		/* path not enclosed in "<" ">" */
	ADDRESS_ERR_ROUTE,		/* malformed source route */
	ADDRESS_ERR_LOCAL,		/* malformed local part */
	ADDRESS_ERR_NO_DOMAIN,		/* "@domain" missing */
	ADDRESS_ERR_DOMAIN,		/* malformed domain name */
	ADDRESS_ERR_LITERAL,		/* malformed or unsupported address literal */
	ADDRESS_ERR_NULL,		/* "<>" where it is not allowed */
	ADDRESS_ERR_LOCAL_TOO_LONG,	/* local part > 64 octets */
	ADDRESS_ERR_DOMAIN_TOO_LONG,	/* domain > 255 octets or label > 63 */
	ADDRESS_ERR_PATH_TOO_LONG,	/* path > 256 octets */
	ADDRESS_ERR_NEED_SMTPUTF8,	/* non-ASCII without ADDRESS_SMTPUTF8 */
	ADDRESS_ERR_BAD_UTF8,		/* non-ASCII that is not well-formed UTF-8 */
};

/*
 * A parsed mailbox. The strings are owned by the struct and hold no NUL
 * (str_c() is safe to use); they stay valid until the next parse into
 * this struct or address_free().
 */
struct address {
	struct str *local;	/* decoded local part, case preserved; "" for <> */
	struct str *domain;	/* lower-cased domain or "[literal]"; "" if none */
	bool null;		/* the null reverse-path "<>" */
	bool utf8;		/* local part or domain has non-ASCII octets */
};

/* address_new - an empty address (the null path); address_free accepts NULL */
struct address *address_new(void);
void address_free(struct address **addrp);
/* address_clear - make *addr the null path again, keeping allocations */
void address_clear(struct address *addr);
/* address_copy - make dst a copy of src */
void address_copy(struct address *dst, const struct address *src);

/*
 * address_parse_path - parse p[0..len) as an RFC 5321 Reverse-path or
 * Forward-path: "<" [A-d-l ":"] Mailbox ">", or "<>" with
 * ADDRESS_ALLOW_NULL, or "<Postmaster>" (any case) with
 * ADDRESS_ALLOW_POSTMASTER. The whole input must be consumed. On error
 * *addr is left cleared (the null path).
 */
enum address_error address_parse_path(const char *p, size_t len,
    unsigned flags, struct address *addr);

/*
 * address_parse_mailbox - parse p[0..len) as an RFC 5321 Mailbox without
 * brackets (also the canonical form). "" is the null address when
 * ADDRESS_ALLOW_NULL is given; "Postmaster" with ADDRESS_ALLOW_POSTMASTER
 * or any domainless local part with ADDRESS_ALLOW_NO_DOMAIN gives an empty
 * domain.
 */
enum address_error address_parse_mailbox(const char *p, size_t len,
    unsigned flags, struct address *addr);

/*
 * address_parse_domain - check p[0..len) as an RFC 5321 Domain or
 * address literal (ADDRESS_SMTPUTF8 allows U-labels) and, if out is not
 * NULL, append its canonical (lower-cased) form to out.
 */
enum address_error address_parse_domain(const char *p, size_t len,
    unsigned flags, struct str *out);

/*
 * address_utf8_len - the length of the well-formed UTF-8 sequence at
 * p[0..len) (p[0] >= 0x80), or 0 if it is malformed (overlong, surrogate,
 * beyond U+10FFFF, truncated).
 */
size_t address_utf8_len(const unsigned char *p, size_t len);

/* address_error_str - a short English description for logs ("bad domain") */
const char *address_error_str(enum address_error err);

/*
 * address_canonical - append the canonical form of addr to out (see
 * above). Returns 0, or -1 (E2BIG) if out's maximum is reached, in which
 * case out is unchanged.
 */
int address_canonical(const struct address *addr, struct str *out);

/*
 * address_quote_local - append local part p[0..len) to out as a Dot-string
 * if it is one, else as a Quoted-string. Same return as str_append.
 */
int address_quote_local(const char *p, size_t len, struct str *out);

/* address_equal - same local part (exactly) and same domain (ASCII case-insensitive) */
bool address_equal(const struct address *a, const struct address *b);

/* address_domain_lower - lower-case the ASCII letters of p[0..len) in place */
void address_domain_lower(char *p, size_t len);

/*
 * address_split_detail - split a local part at the first octet that is in
 * delimiters (Postfix recipient_delimiter, e.g. "+" or "+-"): "user+box"
 * gives user "user" and detail "box". Returns false, with *user_len_r =
 * len and an empty detail, when there is no delimiter, when delimiters is
 * NULL or empty, or when the user part would be empty ("+foo"). Pointers
 * returned point into p.
 */
bool address_split_detail(const char *p, size_t len, const char *delimiters,
    size_t *user_len_r, const char **detail_r, size_t *detail_len_r);

/* ----------------------------------------------------------- RFC 5322 */

/* One mailbox of an address list. Owned by the list. */
struct address_list_item {
	struct address *addr;	/* domain "" if the header gave none */
	struct str *display;	/* display name, unquoted, comments dropped, WSP runs
				 * as one space; "" if none */
	struct str *group;	/* name of the enclosing group, or "" */
};

struct address_list {
	struct address_list_item *items;	/* read-only for callers */
	size_t count;
	size_t cap;		/* private */
	size_t bad;		/* elements skipped with ADDRESS_LIST_SKIP_BAD */
};

/* Flags for address_list_parse. */
#define ADDRESS_LIST_SKIP_BAD	0x01	/* skip unparsable elements, count in ->bad */
#define ADDRESS_LIST_UTF8	0x02	/* allow UTF-8 (RFC 6532 headers) */

/* address_list_new/free/clear - an empty list; free accepts NULL */
struct address_list *address_list_new(void);
void address_list_free(struct address_list **listp);
void address_list_clear(struct address_list *list);

/*
 * address_list_parse - parse the body of an address header p[0..len)
 * (after "To:"; folding line breaks may be present) and APPEND its
 * mailboxes to list. Groups contribute their members (an empty group
 * such as "undisclosed-recipients:;" contributes nothing). At most
 * max_items mailboxes in total (0 = 1000) may be in the list.
 *
 * Returns 0, or -1 with *error_r a static reason when the input is
 * malformed (without ADDRESS_LIST_SKIP_BAD), too deeply nested, or makes
 * the list exceed max_items. On -1 the items appended before the error
 * remain in the list.
 */
int address_list_parse(const char *p, size_t len, unsigned flags,
    size_t max_items, struct address_list *list, const char **error_r);

/*
 * address_list_item_format - append the item as an RFC 5322 mailbox:
 * "display" <canonical> or just canonical when there is no display name.
 */
int address_list_item_format(const struct address_list_item *item,
    struct str *out);

#endif
