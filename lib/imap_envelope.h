/* SPDX-License-Identifier: MIT */
/*
 * imap_envelope - IMAP ENVELOPE, BODY and BODYSTRUCTURE strings
 *
 * Produces the exact text of the FETCH items ENVELOPE, BODY and
 * BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) from a parsed message
 * (mime.h), for the store to compute once at delivery and cache, and for
 * imapd to send as it is. The output is what follows the item name, e.g.
 * "(NIL \"hi\" ((...)) ...)", and may contain literals ("{n}\r\n" and n
 * bytes) for values that cannot be quoted strings.
 *
 * Conventions (compared with Dovecot 2.3; differences are listed in
 * imap_envelope.c): type, subtype, parameter names and values appear as
 * in the message; the defaults for a part without (a valid) Content-Type
 * are "TEXT" "PLAIN" ("CHARSET" "US-ASCII"), and "7BIT" without
 * Content-Transfer-Encoding; sizes are octets as stored; line counts
 * (text and message/rfc822 parts) are LF counts; Sender and Reply-To default
 * to From; subjects and display names are unfolded with runs of white
 * space made one SP; encoded-words are not decoded.
 *
 * The calls append to out and return 0, or -1 with errno E2BIG when out
 * reached its maximum (out is then as it was before the call). Nothing here
 * ends the process except allocation failure.
 */
#ifndef POSTERN_IMAP_ENVELOPE_H
#define POSTERN_IMAP_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

struct str;
struct mime_message;
struct mime_part;
struct mime_limits;

/*
 * imap_envelope_write - append the ENVELOPE of the header block p/n
 * (a message header, e.g. BODY[HEADER] of the root or of an enclosed
 * message/rfc822).
 */
int imap_envelope_write(struct str *out, const char *p, size_t n);

/*
 * imap_envelope_bodystructure - append the BODYSTRUCTURE (extended) or
 * BODY (!extended) of part (the message root for FETCH).
 */
int imap_envelope_bodystructure(struct str *out,
    const struct mime_message *msg, const struct mime_part *part,
    bool extended);

/*
 * imap_envelope_message - everything the store caches, in one call: parse
 * p/n with limits (NULL = defaults) and append ENVELOPE, BODY and
 * BODYSTRUCTURE to the three strings (any may be NULL to skip it).
 * Returns 0 or -1 (E2BIG on one of the outputs).
 */
int imap_envelope_message(const char *p, size_t n,
    const struct mime_limits *limits, struct str *envelope,
    struct str *body, struct str *bodystructure);

/*
 * imap_envelope_string - append p/n as an IMAP string: a quoted string
 * when every byte is 7-bit, not NUL, CR or LF and the escapes are few,
 * else a literal "{n}\r\n" followed by the bytes (NULs become 0x80, as
 * RFC 3501 literals may not hold NUL). imap_envelope_nstring() appends
 * NIL for a NULL p.
 */
int imap_envelope_string(struct str *out, const char *p, size_t n);
int imap_envelope_nstring(struct str *out, const char *p);

#endif
