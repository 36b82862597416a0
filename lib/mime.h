/* SPDX-License-Identifier: MIT */
/*
 * mime - RFC 2045/2046 structure of a stored message, in one pass
 *
 * mime_parse() reads a whole message (the exact stored bytes; CRLF line
 * ends, bare LF tolerated) and builds a tree of parts. Every part records
 * where its header and body lie in the message, so imapd can serve
 * BODY[1.2.MIME], BODY[1.2.HEADER], BODY[TEXT] and partial fetches by
 * offset without parsing again, and the store can cache the result.
 *
 * The tree:
 *   - the root is the message itself: its header is the message header,
 *     its body the message body;
 *   - a multipart part has one child per body part between its
 *     boundaries (the preamble and epilogue belong to no part);
 *   - a message/rfc822 part (not base64/quoted-printable encoded) has
 *     exactly one child, the enclosed message, whose header is the
 *     enclosed header and whose body is the enclosed body;
 *   - anything else is a leaf. A multipart may have no children (no
 *     boundary parameter, or the boundary never appears); BODYSTRUCTURE
 *     then shows one empty text/plain part, as Dovecot does.
 *
 * Damaged structure is parsed the way Dovecot parses it: a missing final
 * boundary ends the part at the end of its parent (or of the message); a
 * boundary line is "--" boundary at the start of a line, whatever follows
 * it, checked innermost first, so an outer boundary also ends inner
 * parts; the line end before a boundary belongs to the boundary; a
 * missing or unparsable
 * Content-Type means text/plain (message/rfc822 inside multipart/digest).
 *
 * Limits (struct mime_limits) bound the work: past max_depth nesting or
 * max_parts parts, the part where the limit hit is kept as a leaf that
 * spans all its bytes, flagged MIME_PART_OVERFLOW, and parsing goes on
 * with the rest. Header fields beyond max_header_size bytes of one header
 * block are not looked at (the offsets stay exact).
 *
 * Parsing never fails and never ends the process on any input; only
 * allocation failure does (alloc.h). The tree and every string in it live
 * in one arena owned by struct mime_message, freed by mime_message_free().
 * The message keeps a borrowed pointer to the input: the input must stay
 * unchanged and alive as long as the mime_message is used.
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DEFAULT_MAX_DEPTH		20
#define MIME_DEFAULT_MAX_PARTS		1000
#define MIME_DEFAULT_MAX_HEADER_SIZE	(1024 * 1024)
/* Parameters kept per Content-Type or Content-Disposition */
#define MIME_MAX_PARAMS			64

struct mime_limits {
	unsigned int max_depth;		/* nesting below the root */
	unsigned int max_parts;		/* parts in the whole tree */
	size_t max_header_size;		/* bytes of one header block examined */
};

/*
 * A Content-Type or Content-Disposition parameter. RFC 2231 continuations
 * (name*0, name*1*, ...) are joined. For an extended parameter (any
 * segment with a '*'), extended is set, value is the joined raw text
 * "charset'language'%xx..." (what IMAP BODYSTRUCTURE shows, under the
 * name with a '*' suffix, as Dovecot does) and decoded is the value
 * converted to UTF-8. Otherwise value is the unquoted value and decoded
 * the same text with encoded-words decoded (for broken mailers that put
 * RFC 2047 in filenames). name is as in the message, without any '*'.
 */
struct mime_param {
	const char *name;
	const char *value;
	const char *decoded;
	bool extended;
};

enum mime_part_flag {
	MIME_PART_MULTIPART = 0x01,	/* children are body parts */
	MIME_PART_MESSAGE = 0x02,	/* message/rfc822: one child */
	MIME_PART_TEXT = 0x04,		/* text/ any subtype, or the default */
	MIME_PART_OVERFLOW = 0x08,	/* a limit stopped the parse here */
	MIME_PART_NO_END = 0x10,	/* multipart without a final boundary */
};

struct mime_part {
	struct mime_part *parent;	/* NULL for the root */
	struct mime_part *children;	/* first child */
	struct mime_part *next;		/* next sibling */
	unsigned int child_count;
	unsigned int depth;		/* root 0 */
	unsigned int flags;		/* enum mime_part_flag */

	/* All offsets are from the start of the whole message. */
	size_t hdr_offset;
	size_t hdr_size;		/* including the empty line, if any */
	size_t body_offset;		/* = hdr_offset + hdr_size */
	size_t body_size;
	size_t body_lines;		/* LF count in the body (Dovecot's
					 * IMAP line count) */

	/*
	 * Parsed header values, NUL-terminated (NULs in the input are
	 * dropped), or NULL when absent. type/subtype are NULL when the
	 * Content-Type is missing or broken; then the defaults
	 * (text/plain; charset=us-ascii) apply, except in multipart/digest,
	 * where they are set to "message" "rfc822".
	 */
	const char *type;
	const char *subtype;
	const struct mime_param *params;
	unsigned int param_count;
	const char *encoding;		/* Content-Transfer-Encoding token */
	const char *id;			/* Content-ID, unfolded */
	const char *description;	/* raw (encoded-words kept), unfolded */
	const char *md5;		/* Content-MD5 */
	const char *disposition;	/* Content-Disposition type */
	const struct mime_param *disposition_params;
	unsigned int disposition_param_count;
	const char *const *languages;	/* Content-Language tokens */
	unsigned int language_count;
	const char *location;		/* Content-Location, unfolded */
};

struct mime_message;

/* mime_limits_default - fill in the MIME_DEFAULT_* limits */
void mime_limits_default(struct mime_limits *limits);

/*
 * mime_parse - parse the message p/n (limits NULL = defaults). Never
 * returns NULL. p must outlive the result (see above).
 */
struct mime_message *mime_parse(const char *p, size_t n,
    const struct mime_limits *limits);
/* mime_message_free - free *msgp and its whole tree (NULL allowed) */
void mime_message_free(struct mime_message **msgp);

/*
 * mime_field_parse - parse one Content-Type (content_type true) or
 * Content-Disposition field value p/n alone, as mime_parse() parses
 * them in a message. The root part of the result holds type, subtype
 * and params (NULL/0 when the value is not "type/subtype" with nothing
 * but parameters after it), or disposition and disposition_params.
 * Never returns NULL; free with mime_message_free(). p need not outlive
 * the result.
 */
struct mime_message *mime_field_parse(const char *p, size_t n,
    bool content_type);
/* mime_message_root - the root part (never NULL) */
const struct mime_part *mime_message_root(const struct mime_message *msg);
/* mime_message_data - the borrowed input, and its size */
const char *mime_message_data(const struct mime_message *msg, size_t *size_r);
/* mime_message_part_count - parts in the tree, the root included */
unsigned int mime_message_part_count(const struct mime_message *msg);
/* mime_message_overflow - whether a limit stopped part of the parse */
bool mime_message_overflow(const struct mime_message *msg);

/*
 * mime_part_param - the value of parameter name (case-insensitive) of
 * the part's Content-Type, or NULL. With decoded, the UTF-8 value.
 */
const char *mime_part_param(const struct mime_part *part, const char *name,
    bool decoded);
/* mime_part_disposition_param - the same for Content-Disposition */
const char *mime_part_disposition_param(const struct mime_part *part,
    const char *name, bool decoded);
/* mime_part_is - whether the part's type/subtype are these (subtype NULL = any) */
bool mime_part_is(const struct mime_part *part, const char *type,
    const char *subtype);

/*
 * IMAP sections (RFC 3501 6.4.5, RFC 9051 6.4.5). The numbering: the
 * children of a multipart are 1, 2, ...; a non-multipart part (the body
 * of a single-part message included) has only the part number 1, which
 * is the part itself; after a message/rfc822 part, numbering continues
 * in its enclosed message ("2.1" is the first part of the message that
 * is part 2).
 */
enum mime_section_text {
	MIME_SECTION_BODY,	/* "", "1.2": the part's body (""=whole message) */
	MIME_SECTION_MIME,	/* "1.2.MIME": the part's own header */
	MIME_SECTION_HEADER,	/* "HEADER", "1.2.HEADER[.FIELDS[.NOT]]" */
	MIME_SECTION_TEXT,	/* "TEXT", "1.2.TEXT" */
};

struct mime_section {
	const struct mime_part *part;	/* the part the range belongs to */
	enum mime_section_text text;
	size_t offset;			/* from the start of the message */
	size_t size;
};

/*
 * mime_section_find - resolve the section spec p/n (the text between
 * '[' and ']' up to any SP, e.g. "1.2.MIME", "HEADER.FIELDS", "TEXT").
 * Keywords are case-insensitive. For HEADER.FIELDS[.NOT] the range is the
 * whole header block; the caller picks the fields (header_iter). HEADER
 * and TEXT after a part number need a message/rfc822 part. Returns 0, or
 * -1 with *error_r (static text) for bad syntax or a part that does not
 * exist.
 */
int mime_section_find(const struct mime_message *msg, const char *p,
    size_t n, struct mime_section *sec, const char **error_r);

/* mime_part_find - the part for a dotted number p/n ("1.2.3"), or NULL */
const struct mime_part *mime_part_find(const struct mime_message *msg,
    const char *p, size_t n);

#endif
