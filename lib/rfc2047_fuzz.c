/* SPDX-License-Identifier: MIT */
/*
 * rfc2047_fuzz - libFuzzer target for the header-level parsers
 *
 * Feeds the input to rfc2047_decode() (checking the output is valid
 * UTF-8), header_address_parse(), the header block iterator and
 * unfolding, and the base64 and quoted-printable decoders.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "header.h"
#include "header_address.h"
#include "mime_decode.h"
#include "rfc2047.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = xmemdup(data, size);
	struct str *s = str_new(0, 0);
	struct header_address *list, *a;
	struct header_iter it;
	struct header_field f;
	size_t hs;

	if (rfc2047_decode(p, size, s) != 0 ||
	    !rfc2047_utf8_valid(str_c(s), str_len(s)))
		abort();
	list = header_address_parse(p, size, 100);
	for (a = list; a != NULL; a = a->next) {
		if (a->group_end && (a->mailbox != NULL || a->domain != NULL))
			abort();
	}
	header_address_free(&list);
	hs = header_block_size(p, size);
	if (hs > size)
		abort();
	header_iter_init(&it, p, hs);
	while (header_iter_next(&it, &f)) {
		if (f.offset + f.size > hs ||
		    (size_t)(f.value - p) + f.value_len > hs)
			abort();
		str_clear(s);
		(void)header_unfold(f.value, f.value_len, s);
	}
	str_clear(s);
	(void)mime_decode_base64(p, size, s);
	if (str_len(s) > size)
		abort();
	str_clear(s);
	(void)mime_decode_qp(p, size, s);
	if (str_len(s) > size)
		abort();
	str_free(&s);
	free(p);
	return 0;
}
