/* SPDX-License-Identifier: MIT */
/* srs_test - unit tests for srs.c (vector computed independently with Python's hmac) */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "srs.h"
#include "str.h"
#include "test.h"

#define NOW	((time_t)1700000000)
#define DAY	86400

static void
test_forward_reverse(void)
{
	struct srs *srs = srs_new("tops3cret", 9, "srs.test", 21);
	struct str *out = str_new(0, 0), *back = str_new(0, 0);
	const char *error = NULL;

	test_begin("srs forward and reverse");
	TEST_ASSERT(srs != NULL);
	TEST_ASSERT(srs_forward(srs, "Jane.Doe@Example.ORG", NOW, out,
	    &error) == 0);
	TEST_ASSERT_STR(str_c(out), "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test");
	TEST_ASSERT(srs_is_ours(srs, str_c(out)));
	TEST_ASSERT(srs_reverse(srs, str_c(out), NOW + 3 * DAY, back,
	    &error) == 1);
	TEST_ASSERT_STR(str_c(back), "Jane.Doe@Example.ORG");
	/* a lower-cased copy still verifies */
	TEST_ASSERT(srs_reverse(srs, "srs0=eosb=g3=example.org=jane.doe@SRS.test",
	    NOW, back, &error) == 1);
	TEST_ASSERT_STR(str_c(back), "jane.doe@example.org");
	/* a local part with '=' and '@' parts survives */
	TEST_ASSERT(srs_forward(srs, "a=b@x.test", NOW, out, &error) == 0);
	TEST_ASSERT(srs_reverse(srs, str_c(out), NOW, back, &error) == 1);
	TEST_ASSERT_STR(str_c(back), "a=b@x.test");
	/* ours already: kept */
	TEST_ASSERT(srs_forward(srs, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW, out, &error) == 0);
	TEST_ASSERT_STR(str_c(out), "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test");
	TEST_ASSERT(srs_forward(srs, "nodomain", NOW, out, &error) == -1);
	TEST_ASSERT(srs_forward(srs, "@x.test", NOW, out, &error) == -1);
	str_free(&out);
	str_free(&back);
	srs_free(&srs);
	TEST_ASSERT(srs == NULL);
	test_end();
}

static void
test_reverse_errors(void)
{
	struct srs *srs = srs_new("tops3cret", 9, "srs.test", 21);
	struct srs *other = srs_new("another", 7, "srs.test", 21);
	struct str *out = str_new(0, 0);
	const char *error = NULL;
	static const char *const malformed[] = {
		"SRS0=EOS=G3=Example.ORG=Jane.Doe@srs.test",
		"SRS0=EOSB=G=Example.ORG=Jane.Doe@srs.test",
		"SRS0=EOSB=G3==Jane.Doe@srs.test",
		"SRS0=EOSB=G3=Example.ORG=@srs.test",
		"SRS0=EOSB=G3=Example.ORG@srs.test",
		"SRS0=@srs.test",
	};
	size_t i;

	test_begin("srs reverse: not ours, malformed, bad hash, expired");
	TEST_ASSERT(srs_reverse(srs, "jane@srs.test", NOW, out, &error) == 0);
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@"
	    "elsewhere.test", NOW, out, &error) == 0);
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		error = NULL;
		TEST_ASSERT(srs_reverse(srs, malformed[i], NOW, out, &error) == -1);
		TEST_ASSERT(error != NULL);
	}
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSC=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW, out, &error) == -1 && strcmp(error, "bad SRS hash") == 0);
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSB=G3=Example.ORG=John.Doe@srs.test",
	    NOW, out, &error) == -1 && strcmp(error, "bad SRS hash") == 0);
	/* another secret does not verify ours */
	TEST_ASSERT(srs_reverse(other, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW, out, &error) == -1 && strcmp(error, "bad SRS hash") == 0);
	/* 21 days is fine, 22 is expired, the future is expired */
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW + 21 * DAY, out, &error) == 1);
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW + 22 * DAY, out, &error) == -1 &&
	    strcmp(error, "SRS address expired") == 0);
	TEST_ASSERT(srs_reverse(srs, "SRS0=EOSB=G3=Example.ORG=Jane.Doe@srs.test",
	    NOW - 2 * DAY, out, &error) == -1);
	/* bad construction */
	errno = 0;
	TEST_ASSERT(srs_new("", 0, "srs.test", 21) == NULL && errno == EINVAL);
	TEST_ASSERT(srs_new("k", 1, "bad domain", 21) == NULL);
	str_free(&out);
	srs_free(&srs);
	srs_free(&other);
	test_end();
}

int
main(void)
{
	test_forward_reverse();
	test_reverse_errors();
	return test_done();
}
