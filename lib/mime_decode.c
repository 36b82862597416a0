/* SPDX-License-Identifier: MIT */
/*
 * mime_decode - Content-Transfer-Encoding decoders (base64, quoted-printable)
 *
 * DESCRIPTION
 *	See mime_decode.h. Both decoders reserve room for the worst case
 *	(the decoded form is never longer than the input) once and write
 *	straight into it, so decoding costs one pass and at most one
 *	reallocation.
 *
 * SEE ALSO
 *	RFC 2045 section 6.7 (quoted-printable) and 6.8 (base64).
 */
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "mime_decode.h"
#include "str.h"

/* mime_decode_encoding - classify a Content-Transfer-Encoding */
enum mime_decode_encoding
mime_decode_encoding(const char *cte)
{
	if (cte == NULL || strcasecmp(cte, "7bit") == 0 ||
	    strcasecmp(cte, "8bit") == 0 || strcasecmp(cte, "binary") == 0)
		return MIME_DECODE_IDENTITY;
	if (strcasecmp(cte, "base64") == 0)
		return MIME_DECODE_BASE64;
	if (strcasecmp(cte, "quoted-printable") == 0)
		return MIME_DECODE_QP;
	return MIME_DECODE_UNKNOWN;
}

static const signed char mime_decode_b64[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26,
	['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
	['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46,
	['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51,
	['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['+'] = 63, ['/'] = 64,
};	/* value + 1; 0 = not in the alphabet */

/* mime_decode_base64 - lenient base64 */
int
mime_decode_base64(const char *p, size_t n, struct str *out)
{
	unsigned int acc = 0, bits = 0;
	size_t i;
	char *w, *start;
	int damaged = 0;

	if ((start = w = str_reserve(out, n / 4 * 3 + 3)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		int v = mime_decode_b64[c];

		if (v == 0) {
			if (c == '=')
				break;
			if (c != '\r' && c != '\n' && c != ' ' && c != '\t')
				damaged = 1;
			continue;
		}
		acc = (acc << 6) | (unsigned int)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*w++ = (char)((acc >> bits) & 0xFF);
		}
	}
	/* After '=': only padding and white space. */
	for (; i < n; i++) {
		char c = p[i];

		if (c != '=' && c != '\r' && c != '\n' && c != ' ' &&
		    c != '\t')
			damaged = 1;
	}
	if (bits >= 6)
		damaged = 1;	/* a lone sextet: truncated input */
	str_commit(out, (size_t)(w - start));
	return damaged;
}

/* mime_decode_hex - the value of an upper- or lower-case hex digit, or -1 */
static int
mime_decode_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* mime_decode_qp - lenient quoted-printable */
int
mime_decode_qp(const char *p, size_t n, struct str *out)
{
	size_t i = 0, line_end, content_end, j;
	char *w, *start;
	int damaged = 0, hi, lo;

	if ((start = w = str_reserve(out, n)) == NULL)
		return -1;
	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);

		line_end = lf == NULL ? n : (size_t)(lf - p);
		/* Drop trailing white space (and the CR) of the line. */
		content_end = line_end;
		if (content_end > i && p[content_end - 1] == '\r')
			content_end--;
		while (content_end > i && (p[content_end - 1] == ' ' ||
		    p[content_end - 1] == '\t'))
			content_end--;
		for (j = i; j < content_end; j++) {
			if (p[j] != '=') {
				*w++ = p[j];
				continue;
			}
			if (j + 1 == content_end) {
				/* Soft line break: no line end. */
				goto soft;
			}
			if (j + 2 < content_end &&
			    (hi = mime_decode_hex(p[j + 1])) >= 0 &&
			    (lo = mime_decode_hex(p[j + 2])) >= 0) {
				*w++ = (char)(hi * 16 + lo);
				j += 2;
				continue;
			}
			damaged = 1;
			*w++ = '=';
		}
		/* A hard line break is kept as it was written. */
		if (line_end < n) {
			if (line_end > i && p[line_end - 1] == '\r')
				*w++ = '\r';
			*w++ = '\n';
		}
soft:
		i = line_end < n ? line_end + 1 : n;
	}
	str_commit(out, (size_t)(w - start));
	return damaged;
}

/* mime_decode_part - the decoded body of a part */
int
mime_decode_part(const struct mime_message *msg, const struct mime_part *part,
    struct str *out)
{
	const char *data;
	size_t size;
	const char *body;

	data = mime_message_data(msg, &size);
	body = data + part->body_offset;
	if ((part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0)
		return str_append(out, body, part->body_size);
	switch (mime_decode_encoding(part->encoding)) {
	case MIME_DECODE_BASE64:
		return mime_decode_base64(body, part->body_size, out);
	case MIME_DECODE_QP:
		return mime_decode_qp(body, part->body_size, out);
	case MIME_DECODE_UNKNOWN:
		return str_append(out, body, part->body_size) < 0 ? -1 : 1;
	case MIME_DECODE_IDENTITY:
	default:
		return str_append(out, body, part->body_size);
	}
}
