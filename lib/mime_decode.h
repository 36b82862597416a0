/* SPDX-License-Identifier: MIT */
/*
 * mime_decode - Content-Transfer-Encoding decoders (base64, quoted-printable)
 *
 * For IMAP BINARY fetch, body SEARCH and Sieve body tests. The decoders
 * are lenient, as mail readers are: base64 skips bytes outside its
 * alphabet and stops at '='; quoted-printable keeps a '=' that does not
 * start a valid escape or soft line break, and drops trailing white space
 * before line ends (RFC 2045 6.7 rule 3). They report damage but always
 * decode what they can.
 *
 * The calls append to out and return 0 for clean input, 1 when the input
 * was damaged (the output is the best effort), -1 with errno E2BIG when
 * out reached its maximum. They never end the process except on
 * allocation failure.
 */
#ifndef POSTERN_MIME_DECODE_H
#define POSTERN_MIME_DECODE_H

#include <stddef.h>

struct str;
struct mime_message;
struct mime_part;

enum mime_decode_encoding {
	MIME_DECODE_IDENTITY,	/* 7bit, 8bit, binary, absent */
	MIME_DECODE_BASE64,
	MIME_DECODE_QP,
	MIME_DECODE_UNKNOWN,	/* x-uuencode and the like: RFC 3516 UNKNOWN-CTE */
};

/* mime_decode_encoding - classify a Content-Transfer-Encoding token (NULL ok) */
enum mime_decode_encoding mime_decode_encoding(const char *cte);

int mime_decode_base64(const char *p, size_t n, struct str *out);
int mime_decode_qp(const char *p, size_t n, struct str *out);

/*
 * mime_decode_part - append the decoded body of a leaf part. Multipart
 * and message parts, and unknown encodings, are copied as they are and
 * return 1 for an unknown encoding.
 */
int mime_decode_part(const struct mime_message *msg,
    const struct mime_part *part, struct str *out);

#endif
