/* SPDX-License-Identifier: MIT */
/*
 * utf8 - UTF-8 decoding, encoding and Unicode simple case folding
 *
 * DESCRIPTION
 *	The folding table is a sorted array of runs (first code point,
 *	count, stride, delta): a run of stride 1 covers a block of capitals
 *	(A-Z, Cyrillic А-Я), stride 2 the alternating upper/lower pairs of
 *	Latin Extended and Cyrillic supplements. 202 runs cover the 1454
 *	mappings of Unicode 14, looked up by binary search; ASCII takes a
 *	fast path. Runs never interleave (the generator checks it), so the
 *	last run starting at or before a code point is the only candidate.
 *
 * SEE ALSO
 *	RFC 3629 (UTF-8), Unicode CaseFolding.txt, RFC 5051
 *	(i;unicode-casemap), scripts/gen-utf8-fold.py.
 */
#include <string.h>

#include "str.h"
#include "utf8.h"

struct utf8_fold_run {
	uint32_t first;
	uint16_t count;
	uint8_t stride;
	int32_t delta;
};

#include "utf8_fold_table.h"

/* utf8_decode - see utf8.h */
uint32_t
utf8_decode(const char *p, size_t n, size_t *len_r)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t cp, min;
	size_t len, i;

	*len_r = 1;
	if (n == 0)
		return UTF8_INVALID;
	if (u[0] < 0x80)
		return u[0];
	if (u[0] >= 0xc2 && u[0] <= 0xdf) {
		len = 2;
		cp = u[0] & 0x1f;
		min = 0x80;
	} else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		len = 3;
		cp = u[0] & 0x0f;
		min = 0x800;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		len = 4;
		cp = u[0] & 0x07;
		min = 0x10000;
	} else
		return UTF8_INVALID;
	if (n < len)
		return UTF8_INVALID;
	for (i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return UTF8_INVALID;
		cp = (cp << 6) | (u[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return UTF8_INVALID;
	*len_r = len;
	return cp;
}

/* utf8_encode - see utf8.h */
size_t
utf8_encode(uint32_t cp, char buf[4])
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xc0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	buf[0] = (char)(0xf0 | (cp >> 18));
	buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	buf[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* utf8_fold_char - see utf8.h */
uint32_t
utf8_fold_char(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(utf8_fold_runs) / sizeof(utf8_fold_runs[0]);
	const struct utf8_fold_run *r;

	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	/* the last run with first <= cp */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (utf8_fold_runs[mid].first <= cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return cp;
	r = &utf8_fold_runs[lo - 1];
	if ((cp - r->first) % r->stride != 0 ||
	    (cp - r->first) / r->stride >= r->count)
		return cp;
	return (uint32_t)((int64_t)cp + r->delta);
}

/* utf8_casefold - see utf8.h */
int
utf8_casefold(const char *p, size_t n, struct str *out)
{
	size_t i = 0, len, start = str_len(out);
	char buf[4];
	uint32_t cp;

	while (i < n) {
		/* copy ASCII without capitals, and bad bytes, in one piece */
		size_t j = i;

		while (j < n && (((unsigned char)p[j] < 0x80 &&
		    (p[j] < 'A' || p[j] > 'Z'))))
			j++;
		if (j > i && str_append(out, p + i, j - i) < 0)
			goto fail;
		if ((i = j) == n)
			break;
		cp = utf8_decode(p + i, n - i, &len);
		if (cp == UTF8_INVALID) {
			if (str_append_c(out, p[i]) < 0)
				goto fail;
		} else if (str_append(out, buf, utf8_encode(utf8_fold_char(cp),
		    buf)) < 0)
			goto fail;
		i += len;
	}
	return 0;
fail:
	str_truncate(out, start);
	return -1;
}

/* utf8_casefold_find - see utf8.h */
bool
utf8_casefold_find(const char *hay, size_t hn, const char *needle, size_t nn,
    struct str *scratch)
{
	if (nn == 0)
		return true;
	str_clear(scratch);
	if (utf8_casefold(hay, hn, scratch) < 0)
		return false;
	return memmem(str_c(scratch), str_len(scratch), needle, nn) != NULL;
}
