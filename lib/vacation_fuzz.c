/* SPDX-License-Identifier: MIT */
/*
 * vacation_fuzz - libFuzzer target for vacation_params_decode(),
 * vacation_xtext_decode() and vacation_ldap_time()
 *
 * The input is tried as a parameter record and as xtext. A record that
 * decodes must encode to a record that decodes to the same encoding
 * (one canonical form per set of fields); decoded xtext must encode to
 * xtext that decodes to the same octets. A GeneralizedTime that parses
 * parses the same with anything appended outside its length, and from
 * a copy of exactly its length (no read past the end).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "vacation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const void *data, size_t size)
{
	struct vacation_params p, q;
	struct str *a, *b;
	const char *err;

	if (vacation_params_decode(data, size, &p, &err) < 0) {
		if (p.user != NULL || p.reason != NULL || p.naddresses != 0)
			abort();
		return;
	}
	a = str_new(0, 0);
	b = str_new(0, 0);
	vacation_params_encode(&p, a);
	if (vacation_params_decode(str_c(a), str_len(a), &q, &err) < 0)
		abort();
	vacation_params_encode(&q, b);
	if (str_len(a) != str_len(b) ||
	    memcmp(str_c(a), str_c(b), str_len(a)) != 0)
		abort();
	vacation_params_clear(&p);
	vacation_params_clear(&q);
	str_free(&a);
	str_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *d = str_new(0, 0), *x = str_new(0, 0), *e = str_new(0, 0);

	check_record(data, size);
	{
		char *copy = malloc(size > 0 ? size : 1);
		int64_t t1, t2;
		bool ok;

		if (size > 0)
			memcpy(copy, data, size);
		ok = vacation_ldap_time(copy, size, &t1);
		if (ok && (size < 11 || !vacation_ldap_time((const char *)data,
		    size, &t2) || t1 != t2))
			abort();
		free(copy);
	}
	if (vacation_xtext_decode((const char *)data, size, d) == 0) {
		vacation_xtext_encode(str_c(d), str_len(d), x);
		if (vacation_xtext_decode(str_c(x), str_len(x), e) < 0 ||
		    str_len(e) != str_len(d) ||
		    memcmp(str_c(e), str_c(d), str_len(d)) != 0)
			abort();
		check_record(str_c(d), str_len(d));
	}
	str_free(&d);
	str_free(&x);
	str_free(&e);
	return 0;
}
