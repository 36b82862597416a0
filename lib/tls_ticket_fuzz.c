/* SPDX-License-Identifier: MIT */
/*
 * tls_ticket_fuzz - libFuzzer target for tls_ticket_keys_parse(): any
 * bytes either fail or give a key set that formats back to exactly the
 * same bytes, with keys in order and a count in range
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "tls_ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char back[TLS_TICKET_FILE_MAX];
	struct tls_ticket_keys keys;
	struct str *err = str_new(0, 0);
	size_t i, len;

	if (tls_ticket_keys_parse(data, size, &keys, err)) {
		if (keys.n == 0 || keys.n > TLS_TICKET_KEYS_MAX)
			abort();
		for (i = 1; i < keys.n; i++)
			if (keys.key[i].not_before <= keys.key[i - 1].not_before)
				abort();
		len = tls_ticket_keys_format(&keys, back);
		if (len != size || memcmp(back, data, size) != 0)
			abort();
	} else if (str_len(err) == 0)
		abort();
	str_free(&err);
	return 0;
}
