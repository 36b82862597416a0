/* SPDX-License-Identifier: MIT */
/*
 * map_fuzz - libFuzzer target for map_parse_text()
 *
 * The first byte picks the flags; the rest is source text. Each entry
 * the callback gets is checked against the parser's promises: a non-empty
 * key of at most 1024 bytes without blanks, folded to lower case unless
 * MAP_CASE_SENSITIVE, a non-empty value without LF or NUL and without
 * blanks at either end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_cb - check one entry */
static int
fuzz_cb(void *ctx, const char *key, const char *value)
{
	const int *flags = ctx;
	size_t klen = strlen(key), vlen = strlen(value), i;

	if (klen == 0 || klen > 1024 || vlen == 0)
		abort();
	for (i = 0; i < klen; i++) {
		if (key[i] == ' ' || key[i] == '\t' || key[i] == '\n')
			abort();
		if ((*flags & MAP_CASE_SENSITIVE) == 0 &&
		    key[i] >= 'A' && key[i] <= 'Z')
			abort();
	}
	if (strchr(value, '\n') != NULL || value[0] == ' ' ||
	    value[0] == '\t' || value[vlen - 1] == ' ' ||
	    value[vlen - 1] == '\t')
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *errors;
	int flags;

	if (size < 1)
		return 0;
	flags = (data[0] & 1) ? MAP_CASE_SENSITIVE : 0;
	errors = str_new(0, 0);
	/* Parse from (pointer, length): no NUL terminator is assumed. */
	(void)map_parse_text((const char *)data + 1, size - 1, "fuzz", flags,
	    fuzz_cb, &flags, errors);
	str_free(&errors);
	return 0;
}
