/* SPDX-License-Identifier: MIT */
/*
 * userdb_fuzz - libFuzzer target for userdb_record_decode()
 *
 * A record that decodes must encode again, and the encoding must decode
 * to the same fields (the format has one meaning per record).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "userdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct userdb_user u, v;
	struct str *out;

	if (userdb_record_decode(data, size, &u) < 0) {
		if (u.password_hash != NULL || u.name != NULL ||
		    u.quota_bytes != 0)
			abort();
		return 0;
	}
	out = str_new(0, 0);
	if (userdb_record_encode(&u, out) < 0)
		abort();
	if (userdb_record_decode(str_data(out), str_len(out), &v) < 0)
		abort();
	if (strcmp(u.password_hash, v.password_hash) != 0 ||
	    u.quota_bytes != v.quota_bytes)
		abort();
	userdb_user_clear(&u);
	userdb_user_clear(&v);
	str_free(&out);
	return 0;
}
