/* SPDX-License-Identifier: MIT */
/*
 * vacation_test - parameter record round trip and strictness, xtext,
 * settings database, the test clock
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "test.h"
#include "vacation.h"

static void
test_params(void)
{
	struct vacation_params p, q;
	struct str *rec = str_new(0, 0), *x = str_new(0, 0), *y = str_new(0, 0);
	const char *err = NULL;
	size_t i;

	test_begin("vacation params round trip, xtext");
	memset(&p, 0, sizeof(p));
	p.user = strdup("alice");
	p.period = 86400;
	p.subject = strdup("Away = gone +");
	p.from = strdup("Alice <alice@example.org>");
	vacation_params_add_address(&p, "a@example.org");
	vacation_params_add_address(&p, "b@example.org");
	p.mime = true;
	p.handle = strdup("h");
	p.reason = strdup("line 1\r\nline 2\xc3\xa9\r\n");
	p.source = VACATION_SOURCE_SIEVE;
	vacation_params_encode(&p, rec);
	vacation_xtext_encode(str_c(rec), str_len(rec), x);
	for (i = 0; i < str_len(x); i++)
		TEST_ASSERT(str_c(x)[i] > 32 && str_c(x)[i] < 127 &&
		    str_c(x)[i] != '=');
	TEST_ASSERT(vacation_xtext_decode(str_c(x), str_len(x), y) == 0);
	TEST_ASSERT(str_len(y) == str_len(rec) &&
	    memcmp(str_c(y), str_c(rec), str_len(y)) == 0);
	TEST_ASSERT(vacation_params_decode(str_c(y), str_len(y), &q, &err) == 0);
	TEST_ASSERT_STR(q.user, "alice");
	TEST_ASSERT(q.period == 86400 && q.mime && q.naddresses == 2);
	TEST_ASSERT_STR(q.subject, p.subject);
	TEST_ASSERT_STR(q.from, p.from);
	TEST_ASSERT_STR(q.addresses[1], "b@example.org");
	TEST_ASSERT_STR(q.reason, p.reason);
	TEST_ASSERT(q.source == VACATION_SOURCE_SIEVE);
	vacation_params_clear(&q);
	/* a truncation fails cleanly, or (cut after the last required
	 * item) decodes to a complete record */
	for (i = 0; i < str_len(rec); i++) {
		if (vacation_params_decode(str_c(rec), i, &q, &err) < 0)
			TEST_ASSERT(q.user == NULL && q.naddresses == 0);
		else
			TEST_ASSERT(q.user != NULL && q.reason != NULL);
		vacation_params_clear(&q);
	}
	TEST_ASSERT(vacation_params_decode("", 0, &q, &err) < 0);
	TEST_ASSERT(vacation_params_decode("\x63\0\0\0\0", 5, &q, &err) < 0);
	str_clear(y);
	TEST_ASSERT(vacation_xtext_decode("+4", 2, y) < 0);
	TEST_ASSERT(vacation_xtext_decode("a b", 3, y) < 0);
	TEST_ASSERT(vacation_xtext_decode("+4a", 3, y) < 0);
	vacation_params_clear(&p);
	str_free(&rec);
	str_free(&x);
	str_free(&y);
	test_end();
}

static void
test_settings(void)
{
	struct vacation_setting s, t;
	const char *err = NULL, *dir = test_tmpdir();

	test_begin("vacation settings database");
	TEST_ASSERT(vacation_setting_get(dir, "alice", &t, &err) == 0);
	memset(&s, 0, sizeof(s));
	s.start = 100;
	s.end = 200;
	s.params.period = 7;
	s.params.reason = strdup("away");
	s.params.source = VACATION_SOURCE_SETTING;
	TEST_ASSERT(vacation_setting_put(dir, "alice", &s, &err) == 0);
	TEST_ASSERT(vacation_setting_put(dir, "bob", &s, &err) == 0);
	TEST_ASSERT(vacation_setting_get(dir, "alice", &t, &err) == 1);
	TEST_ASSERT(t.start == 100 && t.end == 200 && t.params.period == 7);
	TEST_ASSERT_STR(t.params.reason, "away");
	TEST_ASSERT(!vacation_setting_active(&t, 99));
	TEST_ASSERT(vacation_setting_active(&t, 100));
	TEST_ASSERT(vacation_setting_active(&t, 199));
	TEST_ASSERT(!vacation_setting_active(&t, 200));
	vacation_setting_clear(&t);
	TEST_ASSERT(vacation_setting_put(dir, "alice", NULL, &err) == 0);
	TEST_ASSERT(vacation_setting_get(dir, "alice", &t, &err) == 0);
	TEST_ASSERT(vacation_setting_get(dir, "bob", &t, &err) == 1);
	vacation_setting_clear(&t);
	vacation_setting_clear(&s);
	test_end();
}

static void
test_clock(void)
{
	char path[512];
	FILE *fp;

	test_begin("vacation test clock");
	setenv("POSTERN_TEST_NOW", "12345", 1);
	unsetenv("POSTERN_TEST_HOOKS");
	TEST_ASSERT(vacation_now() != 12345);
	setenv("POSTERN_TEST_HOOKS", "1", 1);
	TEST_ASSERT(vacation_now() == 12345);
	snprintf(path, sizeof(path), "%s/clock", test_tmpdir());
	fp = fopen(path, "w");
	fprintf(fp, "1795750000\n");
	fclose(fp);
	setenv("POSTERN_TEST_NOW", path, 1);
	TEST_ASSERT(vacation_now() == 1795750000);
	unsetenv("POSTERN_TEST_HOOKS");
	unsetenv("POSTERN_TEST_NOW");
	test_end();
}

int
main(void)
{
	test_params();
	test_settings();
	test_clock();
	return test_done();
}
