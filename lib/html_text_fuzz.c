/* SPDX-License-Identifier: MIT */
/*
 * html_text_fuzz - libFuzzer target for the HTML text extractor
 *
 * Checks: the output never grows beyond what the input can give (each
 * input byte yields at most one byte, a space, or for a reference at
 * most 4 bytes for its at least 3), well-formed UTF-8 input gives
 * well-formed output, and a bounded output string fails cleanly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "html_text.h"
#include "rfc2047.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct str *s = str_new(0, 0), *small = str_new(0, 16);

	if (html_text_convert(p, size, s) != 0 || str_len(s) > 2 * size)
		abort();
	if (rfc2047_utf8_valid(p, size) &&
	    !rfc2047_utf8_valid(str_c(s), str_len(s)))
		abort();
	if (html_text_convert(p, size, small) != 0 &&
	    (errno != E2BIG || str_len(s) <= 16))
		abort();
	str_free(&s);
	str_free(&small);
	return 0;
}
