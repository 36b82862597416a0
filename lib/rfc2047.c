/* SPDX-License-Identifier: MIT */
/*
 * rfc2047 - header text to UTF-8: encoded-words (RFC 2047) and charsets
 *
 * DESCRIPTION
 *	See rfc2047.h. rfc2047_decode() walks the value once. Plain text
 *	is copied (repaired to UTF-8); an encoded-word is decoded into a
 *	pending buffer, and consecutive encoded-words in the same charset
 *	are joined there before conversion, so a multi-byte character split
 *	across two words (as some mailers split long subjects) comes out
 *	whole. The pending bytes are converted when the charset changes or
 *	plain text follows.
 *
 *	Charset names are allow-listed (letters, digits, "-_.:+()") and at
 *	most 63 bytes before they reach iconv_open(), so no name can carry
 *	iconv's "//TRANSLIT"-style suffixes. Conversion errors never stop
 *	the conversion: each bad input byte becomes U+FFFD.
 *
 * SEE ALSO
 *	RFC 2047 (encoded-words), RFC 2231 section 5 (language in words).
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "rfc2047.h"
#include "str.h"

#define RFC2047_CHARSET_MAX	63
#define RFC2047_CACHE_SIZE	4

struct rfc2047_cache_entry {
	char name[RFC2047_CHARSET_MAX + 1];	/* lower-cased */
	iconv_t cd;
	bool unknown;				/* iconv_open() failed */
};

static struct rfc2047_cache_entry rfc2047_cache[RFC2047_CACHE_SIZE];
static unsigned int rfc2047_cache_used;

static const char rfc2047_replacement[] = "\xEF\xBF\xBD";	/* U+FFFD */

/* rfc2047_utf8_seq - length of the valid UTF-8 sequence at p (0 = invalid) */
static size_t
rfc2047_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	/* Overlongs, surrogates, and code points past U+10FFFF. */
	if (c == 0xE0 && p[1] < 0xA0)
		return 0;
	if (c == 0xED && p[1] >= 0xA0)
		return 0;
	if (c == 0xF0 && p[1] < 0x90)
		return 0;
	if (c == 0xF4 && p[1] >= 0x90)
		return 0;
	return len;
}

/* rfc2047_utf8_valid - whether p/n is valid UTF-8 */
bool
rfc2047_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, len;

	while (i < n) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if ((len = rfc2047_utf8_seq(u + i, n - i)) == 0)
			return false;
		i += len;
	}
	return true;
}

/* rfc2047_utf8_repair - append p/n with invalid bytes made U+FFFD */
int
rfc2047_utf8_repair(const char *p, size_t n, struct str *out)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, start = 0, len;

	while (i < n) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if ((len = rfc2047_utf8_seq(u + i, n - i)) != 0) {
			i += len;
			continue;
		}
		if (str_append(out, p + start, i - start) < 0 ||
		    str_append(out, rfc2047_replacement, 3) < 0)
			return -1;
		start = ++i;
	}
	return str_append(out, p + start, n - start);
}

/* rfc2047_latin1 - append ISO-8859-1 p/n as UTF-8 */
static int
rfc2047_latin1(const char *p, size_t n, struct str *out)
{
	size_t i;
	char *w, *start;

	if ((start = w = str_reserve(out, n * 2)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x80) {
			*w++ = (char)c;
		} else {
			*w++ = (char)(0xC0 | (c >> 6));
			*w++ = (char)(0x80 | (c & 0x3F));
		}
	}
	str_commit(out, (size_t)(w - start));
	return 0;
}

/* rfc2047_charset_name - lower-case the allow-listed name into buf */
static bool
rfc2047_charset_name(const char *cs, size_t len, char *buf)
{
	size_t i;

	if (len == 0 || len > RFC2047_CHARSET_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = cs[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    strchr("-_.:+()", c) != NULL) || c == '\0')
			return false;
		buf[i] = c;
	}
	buf[len] = '\0';
	return true;
}

/* rfc2047_cache_get - the cached converter for name, opening it if needed */
static struct rfc2047_cache_entry *
rfc2047_cache_get(const char *name)
{
	struct rfc2047_cache_entry e;
	unsigned int i;

	for (i = 0; i < rfc2047_cache_used; i++) {
		if (strcmp(rfc2047_cache[i].name, name) == 0)
			break;
	}
	if (i < rfc2047_cache_used) {
		e = rfc2047_cache[i];
	} else {
		memset(&e, 0, sizeof(e));
		(void)pst_strlcpy(e.name, name, sizeof(e.name));
		e.cd = iconv_open("UTF-8", name);
		e.unknown = e.cd == (iconv_t)-1;
		if (rfc2047_cache_used < RFC2047_CACHE_SIZE) {
			i = rfc2047_cache_used++;
		} else {
			/* Evict the least recently used (the last). */
			i = RFC2047_CACHE_SIZE - 1;
			if (!rfc2047_cache[i].unknown)
				(void)iconv_close(rfc2047_cache[i].cd);
		}
	}
	/* Move to the front. */
	memmove(&rfc2047_cache[1], &rfc2047_cache[0], i * sizeof(e));
	rfc2047_cache[0] = e;
	return &rfc2047_cache[0];
}

/* rfc2047_iconv - convert p/n with cd, bad bytes becoming U+FFFD */
static int
rfc2047_iconv(iconv_t cd, const char *p, size_t n, struct str *out)
{
	char *in = (char *)(uintptr_t)p;	/* iconv(3) is not const-correct */
	size_t inleft = n, outleft, room, ret;
	char *w, *start;

	(void)iconv(cd, NULL, NULL, NULL, NULL);
	while (inleft > 0) {
		room = (inleft < 4096 ? inleft : 4096) * 4 + 16;
		if ((start = str_reserve(out, room)) == NULL)
			return -1;
		w = start;
		outleft = room;
		ret = iconv(cd, &in, &inleft, &w, &outleft);
		str_commit(out, (size_t)(w - start));
		if (ret != (size_t)-1)
			continue;
		if (errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL (cut short): replace one byte, go on. */
		if (str_append(out, rfc2047_replacement, 3) < 0)
			return -1;
		in++;
		inleft--;
		(void)iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* Flush any shift state. */
	if ((start = str_reserve(out, 16)) == NULL)
		return -1;
	w = start;
	outleft = 16;
	(void)iconv(cd, NULL, NULL, &w, &outleft);
	str_commit(out, (size_t)(w - start));
	return 0;
}

/* rfc2047_charset_to_utf8 - convert p/n from charset to UTF-8 */
int
rfc2047_charset_to_utf8(const char *charset, size_t charset_len,
    const char *p, size_t n, struct str *out)
{
	char name[RFC2047_CHARSET_MAX + 1];
	struct rfc2047_cache_entry *e;
	const char *star;

	/* RFC 2231 section 5: "charset*language". */
	if ((star = memchr(charset, '*', charset_len)) != NULL)
		charset_len = (size_t)(star - charset);
	if (!rfc2047_charset_name(charset, charset_len, name))
		return rfc2047_utf8_repair(p, n, out) < 0 ? -1 : 1;
	if (strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0 ||
	    strcmp(name, "us-ascii") == 0 || strcmp(name, "ascii") == 0)
		return rfc2047_utf8_repair(p, n, out);
	if (strcmp(name, "iso-8859-1") == 0 || strcmp(name, "latin1") == 0)
		return rfc2047_latin1(p, n, out);
	e = rfc2047_cache_get(name);
	if (e->unknown)
		return rfc2047_utf8_repair(p, n, out) < 0 ? -1 : 1;
	return rfc2047_iconv(e->cd, p, n, out);
}

/* rfc2047_deinit - close the cached converters */
void
rfc2047_deinit(void)
{
	unsigned int i;

	for (i = 0; i < rfc2047_cache_used; i++) {
		if (!rfc2047_cache[i].unknown)
			(void)iconv_close(rfc2047_cache[i].cd);
	}
	rfc2047_cache_used = 0;
}

/* rfc2047_encode - see rfc2047.h */
void
rfc2047_encode(const char *p, size_t n, struct str *out)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *u = (const unsigned char *)p;
	size_t i, k, j;
	unsigned int v;

	for (i = 0; i < n && u[i] < 0x80; i++)
		;
	if (i == n) {
		str_append(out, p, n);
		return;
	}
	for (i = 0; i < n; i += k) {
		k = n - i > 45 ? 45 : n - i;
		/* do not split a character (unless it is not UTF-8 at all) */
		while (i + k < n && k > 1 && (u[i + k] & 0xC0) == 0x80)
			k--;
		if (k == 1 && i + 1 < n && (u[i + 1] & 0xC0) == 0x80)
			k = n - i > 45 ? 45 : n - i;
		if (i > 0)
			str_append_c(out, ' ');
		str_append_cstr(out, "=?utf-8?B?");
		for (j = 0; j + 3 <= k; j += 3) {
			v = (unsigned)u[i + j] << 16 | (unsigned)u[i + j + 1] << 8 |
			    u[i + j + 2];
			str_append_c(out, b64[v >> 18]);
			str_append_c(out, b64[(v >> 12) & 63]);
			str_append_c(out, b64[(v >> 6) & 63]);
			str_append_c(out, b64[v & 63]);
		}
		if (k - j == 1) {
			v = (unsigned)u[i + j] << 16;
			str_append_c(out, b64[v >> 18]);
			str_append_c(out, b64[(v >> 12) & 63]);
			str_append_cstr(out, "==");
		} else if (k - j == 2) {
			v = (unsigned)u[i + j] << 16 | (unsigned)u[i + j + 1] << 8;
			str_append_c(out, b64[v >> 18]);
			str_append_c(out, b64[(v >> 12) & 63]);
			str_append_c(out, b64[(v >> 6) & 63]);
			str_append_c(out, '=');
		}
		str_append_cstr(out, "?=");
	}
}

/* rfc2047_hex - value of a hex digit, or -1 */
static int
rfc2047_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* rfc2047_b64 - value of a base64 digit, or -1 */
static int
rfc2047_b64(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * rfc2047_decode_text - append the Q or B decoded text p/n to out;
 * false (out unchanged in length) if it is not valid.
 */
static bool
rfc2047_decode_text(char enc, const char *p, size_t n, struct str *out)
{
	size_t i, start = str_len(out);
	unsigned int acc = 0, bits = 0;
	int v, hi, lo;

	if (enc == 'Q' || enc == 'q') {
		for (i = 0; i < n; i++) {
			char c = p[i];

			if (c == '_') {
				c = ' ';
			} else if (c == '=' && i + 2 < n &&
			    (hi = rfc2047_hex(p[i + 1])) >= 0 &&
			    (lo = rfc2047_hex(p[i + 2])) >= 0) {
				c = (char)(hi * 16 + lo);
				i += 2;
			}
			if (str_append_c(out, c) < 0)
				goto fail;
		}
		return true;
	}
	if (enc != 'B' && enc != 'b')
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] == '=')
			break;
		if ((v = rfc2047_b64(p[i])) < 0)
			goto fail;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (str_append_c(out, (char)((acc >> bits) & 0xFF)) < 0)
				goto fail;
		}
	}
	/* Only padding may follow the first '='. */
	for (; i < n; i++) {
		if (p[i] != '=')
			goto fail;
	}
	/* Six leftover bits cannot be a byte: a truncated word. */
	if (bits >= 6)
		goto fail;
	return true;
fail:
	str_truncate(out, start);
	return false;
}

/*
 * rfc2047_word - whether an encoded-word starts at p[0..n); on success
 * its parts and its total length.
 */
static bool
rfc2047_word(const char *p, size_t n, const char **cs_r, size_t *cs_len_r,
    char *enc_r, const char **text_r, size_t *text_len_r, size_t *len_r)
{
	size_t i, cs_end, text_start;

	if (n < 8 || p[0] != '=' || p[1] != '?')
		return false;
	for (i = 2; i < n && p[i] != '?'; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
		    p[i] == '\n')
			return false;
	}
	cs_end = i;
	if (cs_end == 2 || i + 2 >= n || p[i + 2] != '?')
		return false;
	*enc_r = p[i + 1];
	text_start = i + 3;
	for (i = text_start; i + 1 < n; i++) {
		if (p[i] == '?' && p[i + 1] == '=')
			break;
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
		    p[i] == '\n')
			return false;
	}
	if (i + 1 >= n)
		return false;
	*cs_r = p + 2;
	*cs_len_r = cs_end - 2;
	*text_r = p + text_start;
	*text_len_r = i - text_start;
	*len_r = i + 2;
	return true;
}

struct rfc2047_pending {
	struct str *buf;		/* decoded, not yet converted bytes */
	const char *cs;			/* their charset (into the input) */
	size_t cs_len;
};

/* rfc2047_flush - convert the pending encoded-word bytes into out */
static int
rfc2047_flush(struct rfc2047_pending *pend, struct str *out)
{
	int ret;

	if (pend->cs == NULL)
		return 0;
	ret = rfc2047_charset_to_utf8(pend->cs, pend->cs_len,
	    str_c(pend->buf), str_len(pend->buf), out);
	str_clear(pend->buf);
	pend->cs = NULL;
	return ret < 0 ? -1 : 0;
}

/* rfc2047_is_ws - folding white space, including the line ends of folds */
static inline bool
rfc2047_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* rfc2047_decode - append the header value p/n decoded to UTF-8 */
int
rfc2047_decode(const char *p, size_t n, struct str *out)
{
	struct rfc2047_pending pend = { NULL, NULL, 0 };
	const char *cs, *text, *ws = NULL;
	size_t i = 0, j, cs_len, text_len, len, ws_len = 0;
	bool last_word = false;
	char enc;
	int ret = -1;

	/* Trim, as header_unfold() does. */
	while (n > 0 && rfc2047_is_ws(*p)) {
		p++;
		n--;
	}
	while (n > 0 && rfc2047_is_ws(p[n - 1]))
		n--;

	while (i < n) {
		if (rfc2047_is_ws(p[i])) {
			ws = p + i;
			for (j = i; j < n && rfc2047_is_ws(p[j]); j++)
				;
			ws_len = j - i;
			i = j;
			continue;
		}
		if (p[i] == '=' && i + 1 < n && p[i + 1] == '?' &&
		    rfc2047_word(p + i, n - i, &cs, &cs_len, &enc, &text,
		    &text_len, &len)) {
			if (pend.buf == NULL)
				pend.buf = str_new(64, str_max(out));
			/* Words in another charset convert separately. */
			if (pend.cs != NULL && (pend.cs_len != cs_len ||
			    strncasecmp(pend.cs, cs, cs_len) != 0) &&
			    rfc2047_flush(&pend, out) < 0)
				goto out;
			/* Drop the white space between two words. */
			if (ws_len > 0 && !last_word) {
				if (rfc2047_flush(&pend, out) < 0)
					goto out;
				for (j = 0; j < ws_len; j++) {
					if (ws[j] != '\r' && ws[j] != '\n' &&
					    str_append_c(out, ws[j]) < 0)
						goto out;
				}
			}
			ws_len = 0;
			if (rfc2047_decode_text(enc, text, text_len,
			    pend.buf)) {
				if (pend.cs == NULL) {
					pend.cs = cs;
					pend.cs_len = cs_len;
				}
				last_word = true;
				i += len;
				continue;
			}
			/* Not decodable: it is plain text after all. */
			if (rfc2047_flush(&pend, out) < 0 ||
			    rfc2047_utf8_repair(p + i, len, out) < 0)
				goto out;
			last_word = false;
			i += len;
			continue;
		}
		/* Plain text up to white space or the next "=?". */
		if (rfc2047_flush(&pend, out) < 0)
			goto out;
		for (j = 0; j < ws_len; j++) {
			if (ws[j] != '\r' && ws[j] != '\n' &&
			    str_append_c(out, ws[j]) < 0)
				goto out;
		}
		ws_len = 0;
		for (j = i + 1; j < n && !rfc2047_is_ws(p[j]) &&
		    !(p[j] == '=' && j + 1 < n && p[j + 1] == '?'); j++)
			;
		if (rfc2047_utf8_repair(p + i, j - i, out) < 0)
			goto out;
		last_word = false;
		i = j;
	}
	if (rfc2047_flush(&pend, out) < 0)
		goto out;
	ret = 0;
out:
	str_free(&pend.buf);
	return ret;
}
