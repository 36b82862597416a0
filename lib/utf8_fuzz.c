/* SPDX-License-Identifier: MIT */
/*
 * utf8_fuzz - libFuzzer target for the UTF-8 decoder and case folding
 *
 * Checks: utf8_decode() agrees with rfc2047_utf8_valid() on whether the
 * input is well formed and re-encodes every character it accepts to the
 * same bytes; folding is idempotent, keeps well-formed input well formed
 * and keeps the character count; a folded text finds itself, in any
 * case, with utf8_casefold_find().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rfc2047.h"
#include "str.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* count - characters (and bad bytes) in p/n; *ok_r: all well formed */
static size_t
count(const char *p, size_t n, bool *ok_r)
{
	size_t i = 0, len, chars = 0;
	char buf[4];
	uint32_t cp;

	*ok_r = true;
	while (i < n) {
		cp = utf8_decode(p + i, n - i, &len);
		if (cp == UTF8_INVALID) {
			if (len != 1)
				abort();
			*ok_r = false;
		} else if (utf8_encode(cp, buf) != len ||
		    memcmp(buf, p + i, len) != 0)
			abort();
		i += len;
		chars++;
	}
	return chars;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = xmemdup(data, size);
	struct str *f = str_new(0, 0), *ff = str_new(0, 0),
	    *scratch = str_new(0, 0);
	size_t chars;
	bool ok, fok;

	chars = count(p, size, &ok);
	if (ok != rfc2047_utf8_valid(p, size))
		abort();
	if (utf8_casefold(p, size, f) < 0 || utf8_casefold(str_c(f),
	    str_len(f), ff) < 0)
		abort();
	if (str_len(f) != str_len(ff) || memcmp(str_c(f), str_c(ff),
	    str_len(f)) != 0)
		abort();
	if (count(str_c(f), str_len(f), &fok) != chars || fok != ok)
		abort();
	if (!utf8_casefold_find(p, size, str_c(f), str_len(f), scratch))
		abort();
	str_free(&f);
	str_free(&ff);
	str_free(&scratch);
	free(p);
	return 0;
}
