/* SPDX-License-Identifier: MIT */
/*
 * vacation_test - parameter record round trip and strictness, xtext,
 * settings database, the lookup over sources, GeneralizedTime, the test
 * clock (directory settings: tests/test_vacation_ldap.py, real slapd)
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
test_lookup(void)
{
	static const char *const bad_type[] = { "db:/etc/postern/vac" };
	static const char *const missing[] = { "ldap:/nonexistent/vac.cf" };
	struct vacation_sources src;
	struct vacation_setting s, t;
	const char *err = NULL;
	char dir[512], cf[512];
	FILE *fp;

	test_begin("vacation setting lookup");
	snprintf(dir, sizeof(dir), "%s/lookup", test_tmpdir());
	memset(&src, 0, sizeof(src));
	src.dir = dir;
	src.default_period = 86400;
	TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) == 0);
	memset(&s, 0, sizeof(s));
	s.start = 100;
	s.end = 200;
	s.params.period = 7;
	s.params.reason = strdup("away");
	TEST_ASSERT(vacation_setting_put(dir, "alice", &s, &err) == 0);
	vacation_setting_clear(&s);
	TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) == 1);
	TEST_ASSERT(t.params.source == VACATION_SOURCE_SETTING);
	TEST_ASSERT_STR(t.params.user, "alice");
	TEST_ASSERT_STR(t.params.handle, "setting/100");
	TEST_ASSERT(t.origin != NULL && strstr(t.origin, "settings.db") != NULL);
	vacation_setting_clear(&t);
	/* a source that cannot be used is an error, not a fall-through */
	src.maps = bad_type;
	src.nmaps = 1;
	TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) == -1);
	TEST_ASSERT(strstr(err, "ldap:FILE") != NULL);
	src.maps = missing;
	TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) == -1);
	TEST_ASSERT(strstr(err, "/nonexistent/vac.cf") != NULL);
	/* a bad configuration file names the line */
	snprintf(cf, sizeof(cf), "%s/vac.cf", test_tmpdir());
	fp = fopen(cf, "w");
	fprintf(fp, "server_host = ldap://127.0.0.1:1/\nnonsense = 1\n");
	fclose(fp);
	{
		char spec[600];
		const char *one[1];

		snprintf(spec, sizeof(spec), "ldap:%s", cf);
		one[0] = spec;
		src.maps = one;
		TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) ==
		    -1);
		TEST_ASSERT(strstr(err, "vac.cf:2") != NULL);
		/* fixed, the file is read again; nothing listens: an error */
		fp = fopen(cf, "w");
		fprintf(fp, "server_host = ldap://127.0.0.1:1/\n"
		    "query_filter = (uid=%%u)\ntimeout = 2\n");
		fclose(fp);
		TEST_ASSERT(vacation_setting_lookup(&src, "alice", &t, &err) ==
		    -1);
		TEST_ASSERT(strstr(err, "127.0.0.1:1") != NULL);
	}
	vacation_setting_lookup_deinit();
	test_end();
}

static void
test_ldap_time(void)
{
	static const struct {
		const char *in;
		int64_t want;	/* INT64_MIN: malformed */
	} cases[] = {
		{ "19700101000000Z", 0 },
		{ "20261127120000Z", 1795780800 },
		{ "2026112712Z", 1795780800 },
		{ "202611271200Z", 1795780800 },
		{ "20261127120000.5Z", 1795780800 },
		{ "2026112712.5Z", 1795782600 },
		{ "20261127130000+0100", 1795780800 },
		{ "20261127110000-01", 1795780800 },
		{ "20240229000000Z", 1709164800 },
		{ "20230229000000Z", INT64_MIN },
		{ "20261127120000", INT64_MIN },
		{ "20261327120000Z", INT64_MIN },
		{ "20261127240000Z", INT64_MIN },
		{ "20261127126000Z", INT64_MIN },
		{ "20261127120000.Z", INT64_MIN },
		{ "20261127120000+1", INT64_MIN },
		{ "20261127120000+0160", INT64_MIN },
		{ "20261127120000ZZ", INT64_MIN },
		{ "2026112712000Z", INT64_MIN },
		{ "", INT64_MIN },
		{ "Z", INT64_MIN },
	};
	size_t i;
	int64_t t;
	bool ok;

	test_begin("vacation GeneralizedTime");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ok = vacation_ldap_time(cases[i].in, strlen(cases[i].in), &t);
		if (cases[i].want == INT64_MIN)
			TEST_ASSERT(!ok);
		else
			TEST_ASSERT(ok && t == cases[i].want);
	}
	/* parsed from (pointer, length): what follows does not count */
	TEST_ASSERT(vacation_ldap_time("19700101000000Zjunk", 15, &t) && t == 0);
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
	test_lookup();
	test_ldap_time();
	test_clock();
	return test_done();
}
