/* SPDX-License-Identifier: MIT */
/*
 * imap_utf7 - IMAP modified UTF-7 mailbox names (RFC 3501 5.1.3)
 *
 * DESCRIPTION
 *	Modified UTF-7: printable US-ASCII (0x20-0x7e) stands for itself,
 *	except '&', which is written "&-". Anything else is UTF-16, base64
 *	encoded with ',' for '/', no padding, between '&' and '-'. The
 *	decoder is strict (see imap_utf7.h) so that a name has exactly one
 *	wire form: a client cannot create two mailboxes that look alike.
 *
 * SEE ALSO
 *	RFC 3501 5.1.3, RFC 2152.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "imap_utf7.h"
#include "rfc2047.h"
#include "str.h"

static const char utf7_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* utf7_b64_value - the 6-bit value of c, or -1 */
static int
utf7_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/* utf7_put_utf8 - append code point cp as UTF-8 */
static int
utf7_put_utf8(struct str *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return str_append(out, b, n);
}

/* imap_utf7_is_ascii - see imap_utf7.h */
bool
imap_utf7_is_ascii(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e ||
		    p[i] == '&')
			return false;
	return true;
}

/* utf7_decode_run - decode the base64 run p/n (between '&' and '-') */
static int
utf7_decode_run(const unsigned char *p, size_t n, struct str *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t i, units = 0;
	int v;

	for (i = 0; i < n; i++) {
		if ((v = utf7_b64_value(p[i])) < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		{
			uint32_t u = (bits >> nbits) & 0xffff;

			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				if (utf7_put_utf8(out, 0x10000 +
				    ((high - 0xd800) << 10) + (u - 0xdc00)) < 0)
					return -1;
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return -1;
			} else {
				/* printable ASCII must not be encoded */
				if (u >= 0x20 && u <= 0x7e)
					return -1;
				if (utf7_put_utf8(out, u) < 0)
					return -1;
			}
		}
	}
	/* leftover bits must be zero padding shorter than one base64 digit */
	if (high != 0 || units == 0 || nbits >= 6 ||
	    (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

/* imap_utf7_to_utf8 - see imap_utf7.h */
int
imap_utf7_to_utf8(const char *p, size_t n, struct str *out)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t start = str_len(out), i = 0, j;

	while (i < n) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			goto fail;
		if (s[i] != '&') {
			if (str_append_c(out, (char)s[i]) < 0)
				goto fail;
			i++;
			continue;
		}
		for (j = i + 1; j < n && s[j] != '-'; j++)
			;
		if (j == n)
			goto fail;
		if (j == i + 1) {
			if (str_append_c(out, '&') < 0)
				goto fail;
		} else if (utf7_decode_run(s + i + 1, j - i - 1, out) < 0)
			goto fail;
		i = j + 1;
	}
	return 0;
fail:
	str_truncate(out, start);
	errno = EINVAL;
	return -1;
}

/* utf7_put_unit - add one UTF-16 unit to the base64 run in progress */
static int
utf7_put_unit(struct str *out, uint32_t *bits, unsigned *nbits, uint16_t u)
{
	*bits = (*bits << 16) | u;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		if (str_append_c(out, utf7_b64[(*bits >> *nbits) & 0x3f]) < 0)
			return -1;
	}
	*bits &= (1u << *nbits) - 1;
	return 0;
}

/* utf7_next_cp - decode one UTF-8 sequence of a validated string */
static uint32_t
utf7_next_cp(const unsigned char *s, size_t *i)
{
	uint32_t cp = s[*i];

	if (cp < 0x80) {
		*i += 1;
	} else if (cp < 0xe0) {
		cp = ((cp & 0x1f) << 6) | (s[*i + 1] & 0x3f);
		*i += 2;
	} else if (cp < 0xf0) {
		cp = ((cp & 0x0f) << 12) | ((s[*i + 1] & 0x3fu) << 6) |
		    (s[*i + 2] & 0x3f);
		*i += 3;
	} else {
		cp = ((cp & 0x07) << 18) | ((s[*i + 1] & 0x3fu) << 12) |
		    ((s[*i + 2] & 0x3fu) << 6) | (s[*i + 3] & 0x3f);
		*i += 4;
	}
	return cp;
}

/* imap_utf8_to_utf7 - see imap_utf7.h */
int
imap_utf8_to_utf7(const char *p, size_t n, struct str *out)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t start = str_len(out), i = 0;
	uint32_t cp, bits;
	unsigned nbits;

	if (!rfc2047_utf8_valid(p, n)) {
		errno = EINVAL;
		return -1;
	}
	while (i < n) {
		if (s[i] >= 0x20 && s[i] <= 0x7e) {
			if (str_append_c(out, (char)s[i]) < 0 ||
			    (s[i] == '&' && str_append_c(out, '-') < 0))
				goto fail;
			i++;
			continue;
		}
		if (str_append_c(out, '&') < 0)
			goto fail;
		bits = 0;
		nbits = 0;
		while (i < n && (s[i] < 0x20 || s[i] > 0x7e)) {
			cp = utf7_next_cp(s, &i);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				if (utf7_put_unit(out, &bits, &nbits,
				    (uint16_t)(0xd800 + (cp >> 10))) < 0 ||
				    utf7_put_unit(out, &bits, &nbits,
				    (uint16_t)(0xdc00 + (cp & 0x3ff))) < 0)
					goto fail;
			} else if (utf7_put_unit(out, &bits, &nbits,
			    (uint16_t)cp) < 0)
				goto fail;
		}
		if (nbits > 0 && str_append_c(out,
		    utf7_b64[(bits << (6 - nbits)) & 0x3f]) < 0)
			goto fail;
		if (str_append_c(out, '-') < 0)
			goto fail;
	}
	return 0;
fail:
	str_truncate(out, start);
	return -1;
}
