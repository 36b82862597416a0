/* SPDX-License-Identifier: MIT */
/*
 * rfc2047 - header text to UTF-8: encoded-words (RFC 2047) and charsets
 *
 * rfc2047_decode() is what Sieve header tests, IMAP SEARCH and display
 * code use to read Subject:, display names and the like. Output is always
 * valid UTF-8: text in a charset iconv(3) does not know, and raw 8-bit
 * bytes that are not UTF-8, have each bad byte replaced by U+FFFD.
 *
 * Charset converters are cached per process (a few iconv_t kept open,
 * most recently used first) because iconv_open() costs far more than a
 * header; rfc2047_deinit() closes them. US-ASCII, UTF-8 and ISO-8859-1
 * never touch iconv. The cache makes these calls unsafe to share between
 * threads; Postern daemons are single-threaded.
 *
 * The calls never fail on bad input. They return 0, or -1 with errno
 * E2BIG when out reached its maximum (out then holds a prefix).
 */
#ifndef POSTERN_RFC2047_H
#define POSTERN_RFC2047_H

#include <stdbool.h>
#include <stddef.h>

struct str;

/*
 * rfc2047_decode - append the header value p/n decoded to UTF-8 to out.
 * Folds are unfolded and leading/trailing WSP trimmed. Encoded-words
 * ("=?charset?Q|B?text?=", with an optional "*language" after the charset,
 * RFC 2231 section 5) are decoded wherever they appear as a separate
 * whitespace-delimited token, and, as Dovecot and most mail readers do,
 * also when glued to other text. Linear white space between two adjacent
 * encoded-words is dropped (RFC 2047 section 6.2). An encoded-word with
 * bad base64 or an unknown encoding letter is kept literally. An unknown
 * charset decodes the bytes and repairs them to UTF-8.
 */
int rfc2047_decode(const char *p, size_t n, struct str *out);

/*
 * rfc2047_charset_to_utf8 - append p/n, in the named charset (name given
 * as charset/charset_len, case-insensitive), converted to UTF-8. Returns
 * 0 if the charset was known, 1 if not (the bytes were appended with
 * invalid UTF-8 repaired), -1 on E2BIG.
 */
int rfc2047_charset_to_utf8(const char *charset, size_t charset_len,
    const char *p, size_t n, struct str *out);

/*
 * rfc2047_utf8_repair - append p/n with every byte that is not part of
 * a valid UTF-8 sequence replaced by U+FFFD. 0 or -1 (E2BIG).
 */
int rfc2047_utf8_repair(const char *p, size_t n, struct str *out);

/* rfc2047_utf8_valid - whether p/n is valid UTF-8 (no overlongs, surrogates) */
bool rfc2047_utf8_valid(const char *p, size_t n);

/*
 * rfc2047_encode - append the UTF-8 text p/n to out as header field
 * text: unchanged when it is all ASCII, else as "B" encoded-words
 * ("=?utf-8?B?...?=", RFC 2047 section 4.1) of at most 45 octets of
 * text each (75 characters: within the RFC's limit), never splitting a
 * UTF-8 character, separated by single spaces (the caller folds there).
 * Invalid UTF-8 is encoded as it is. Cannot fail.
 */
void rfc2047_encode(const char *p, size_t n, struct str *out);

/* rfc2047_deinit - close the cached charset converters */
void rfc2047_deinit(void);

#endif
