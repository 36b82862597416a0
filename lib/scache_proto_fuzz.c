/* SPDX-License-Identifier: MIT */
/*
 * scache_proto_fuzz - libFuzzer target for scache_rec_decode
 *
 * Anything decoded must encode to the same octets (the format has one
 * spelling of each record), TLS session data included.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macros.h"
#include "scache_proto.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scache_rec r;
	const char *error = NULL;
	struct str *buf;

	if (scache_rec_decode(data, size, &r, &error) < 0)
		return 0;
	buf = str_new(0, 0);
	ASSERT(scache_rec_encode(&r, buf) == 0);
	ASSERT(str_len(buf) == size && memcmp(str_c(buf), data, size) == 0);
	ASSERT(r.data_len <= SCACHE_DATA_MAX && (r.data == NULL) ==
	    (r.data_len == 0));
	scache_rec_clear(&r);
	scache_rec_wipe(buf);
	str_free(&buf);
	return 0;
}
