/* SPDX-License-Identifier: MIT */
/*
 * sieve_test - unit tests of the Sieve engine: parsing, errors with line
 * and column, running, the binary cache, limits and hostile input
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "rfc2047.h"
#include "str.h"
#include "test.h"

#include "sieve/sieve.h"

static const char msg_text[] =
    "From: \"Alice\" <alice+news@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello [acme] world\r\n"
    "Date: Tue, 10 Dec 2019 12:34:56 +0100\r\n"
    "X-Priority: 3\r\n"
    "\r\n"
    "Body with banana.\r\n";

/* run_script - compile and run; result lines into out; returns sieve_run rc or -2 */
static int
run_script(const char *script, struct str *out)
{
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	struct sieve_env env;
	struct sieve_result res;
	int rc;

	str_clear(out);
	s = sieve_compile("t", script, strlen(script), NULL, NULL, &errs);
	if (s == NULL) {
		sieve_errors_format(&errs, out);
		sieve_errors_clear(&errs);
		return -2;
	}
	sieve_errors_clear(&errs);
	memset(&env, 0, sizeof(env));
	env.msg = msg_text;
	env.msg_size = sizeof(msg_text) - 1;
	env.env_from = "alice@example.org";
	env.env_to = "bob@example.net";
	env.zone_minutes = 0;
	memset(&res, 0, sizeof(res));
	rc = sieve_run(s, &env, NULL, &res);
	sieve_result_format(&res, out);
	sieve_result_clear(&res);
	sieve_script_free(&s);
	return rc;
}

/* run_edit - run script; the final edited header (or "") into out */
static int
run_edit(const char *script, struct str *out)
{
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	struct sieve_env env;
	struct sieve_result res;
	int rc;

	str_clear(out);
	s = sieve_compile("t", script, strlen(script), NULL, NULL, &errs);
	sieve_errors_clear(&errs);
	if (s == NULL)
		return -2;
	memset(&env, 0, sizeof(env));
	env.msg = msg_text;
	env.msg_size = sizeof(msg_text) - 1;
	memset(&res, 0, sizeof(res));
	rc = sieve_run(s, &env, NULL, &res);
	if (res.edited_header != NULL)
		str_append_str(out, res.edited_header);
	sieve_result_clear(&res);
	sieve_script_free(&s);
	return rc;
}

static void
test_editheader(void)
{
	struct str *out = str_new(256, 0);

	test_begin("sieve: addheader folds long values, encodes 8-bit ones");
	TEST_ASSERT(run_edit("require \"editheader\"; addheader :last "
	    "\"X-L\" \"aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee "
	    "fffffffff ggggggggg hhhhhhhhh\"; addheader \"X-U\" \"\xc3\xa9t\xc3\xa9\";"
	    "addheader \"X-N\" \"two\nlines\";", out) == 0);
	TEST_ASSERT_STR(str_c(out),
	    "X-N: two\r\n\tlines\r\n"
	    "X-U: =?utf-8?B?w6l0w6k=?=\r\n"
	    "From: \"Alice\" <alice+news@example.org>\r\n"
	    "To: bob@example.net\r\n"
	    "Subject: Hello [acme] world\r\n"
	    "Date: Tue, 10 Dec 2019 12:34:56 +0100\r\n"
	    "X-Priority: 3\r\n"
	    "X-L: aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff "
	    "ggggggggg\r\n hhhhhhhhh\r\n\r\n");
	test_end();

	test_begin("sieve: addheader/deleteheader errors and protection");
	TEST_ASSERT(run_edit("require [\"editheader\",\"variables\"]; "
	    "set \"n\" \"Bad Name\"; addheader \"${n}\" \"v\";", out) == -1);
	TEST_ASSERT(run_edit("require [\"editheader\",\"encoded-character\"]; "
	    "addheader \"X-A\" \"a${hex:01}b\";", out) == -1);
	TEST_ASSERT(run_edit("require \"editheader\"; deleteheader "
	    "\"received\"; deleteheader \"Auto-Submitted\";", out) == 0);
	TEST_ASSERT_STR(str_c(out), "");
	test_end();
	str_free(&out);
}

static void
test_enotify(void)
{
	struct sieve_mailto m;
	struct str *out = str_new(256, 0);
	const char *err, *uri;
	static const char *const bad[] = {
		"mailto:", "mailto:a b@example.org", "mailto:a@example.org?"
		"subject=%Z1", "mailto:x", "http://a@example.org",
		"mailto:a@example.org?subject=%FF", "mailto:a@example.org?=x",
		"mailto:a@example.org?subject", "mailto:a@example.org%",
		"mailto:1@a.org,2@a.org,3@a.org,4@a.org,5@a.org,6@a.org,"
		"7@a.org,8@a.org,9@a.org",
	};
	size_t i;

	test_begin("sieve: mailto URIs parse into recipients and fields");
	uri = "mailto:a@example.org,B@Example.ORG?cc=c@example.org&"
	    "bcc=d@example.org&subject=S%20T&body=x&to=a@example.org&X-Other=y";
	TEST_ASSERT(sieve_mailto_parse(uri, strlen(uri), &m, &err) == 0);
	TEST_ASSERT(m.nrcpts == 3);
	TEST_ASSERT_STR(m.rcpts[0], "a@example.org");
	TEST_ASSERT_STR(m.rcpts[1], "B@example.org");
	TEST_ASSERT_STR(m.rcpts[2], "c@example.org");
	TEST_ASSERT(!m.cc[0] && !m.cc[1] && m.cc[2]);
	TEST_ASSERT_STR(str_c(m.subject), "S T");
	TEST_ASSERT_STR(str_c(m.body), "x");
	sieve_mailto_clear(&m);
	for (i = 0; i < N_ELEMENTS(bad); i++) {
		TEST_ASSERT(sieve_mailto_parse(bad[i], strlen(bad[i]), &m,
		    &err) == -1);
		TEST_ASSERT(m.nrcpts == 0 && m.rcpts == NULL);
		TEST_ASSERT(!sieve_notify_method_ok(bad[i], strlen(bad[i]),
		    &err));
	}
	TEST_ASSERT(sieve_notify_option_ok("a=b", 3));
	TEST_ASSERT(!sieve_notify_option_ok("ab", 2));
	TEST_ASSERT(!sieve_notify_option_ok("=b", 2));
	TEST_ASSERT(!sieve_notify_option_ok("a=\n", 3));
	test_end();

	test_begin("sieve: notify, its tests and :encodeurl");
	TEST_ASSERT(run_script("require [\"enotify\",\"variables\"]; "
	    "set :encodeurl \"s\" \"a b&\xc3\xa9\"; "
	    "if valid_notify_method \"mailto:x@example.org\" { "
	    "if notify_method_capability \"mailto:x@example.org\" \"online\" "
	    "\"maybe\" { notify :importance \"3\" \"mailto:x@example.org?"
	    "subject=${s}\"; } }", out) == 0);
	TEST_ASSERT_STR(str_c(out), "notify \"mailto:x@example.org?subject="
	    "a%20b%26%C3%A9\" :importance 3 :to \"x@example.org\" :subject "
	    "\"a b&\xc3\xa9\"\nimplicit-keep\n");
	TEST_ASSERT(run_script("require [\"enotify\",\"variables\"]; "
	    "set \"m\" \"mailto:\"; notify \"${m}\";", out) == -1);
	/* no header can be smuggled in through a computed :from */
	TEST_ASSERT(run_script("require [\"enotify\",\"variables\","
	    "\"encoded-character\"]; set \"f\" \"a@b.org${hex:0d 0a}Bcc: "
	    "x@y.org\"; notify :from \"${f}\" \"mailto:c@d.org\";", out) == -1);
	TEST_ASSERT(strstr(str_c(out), "invalid :from") != NULL);
	TEST_ASSERT(run_script("require \"enotify\"; notify \"mailto:a@b.org\"; "
	    "notify \"mailto:c@b.org\"; notify \"mailto:d@b.org\"; "
	    "notify \"mailto:e@b.org\"; notify \"mailto:f@b.org\";", out) == -1);
	TEST_ASSERT(strstr(str_c(out), "too many notifications") != NULL);
	test_end();

	test_begin("rfc2047: encode splits words at characters");
	str_clear(out);
	rfc2047_encode("plain text", 10, out);
	TEST_ASSERT_STR(str_c(out), "plain text");
	str_clear(out);
	for (i = 0; i < 40; i++)
		str_append_cstr(out, "\xc3\xa9");
	{
		struct str *enc = str_new(256, 0), *dec = str_new(256, 0);

		rfc2047_encode(str_c(out), str_len(out), enc);
		TEST_ASSERT(strncmp(str_c(enc), "=?utf-8?B?", 10) == 0);
		TEST_ASSERT(strchr(str_c(enc), ' ') != NULL);
		(void)rfc2047_decode(str_c(enc), str_len(enc), dec);
		TEST_ASSERT_STR(str_c(dec), str_c(out));
		str_free(&enc);
		str_free(&dec);
	}
	test_end();
	str_free(&out);
}

static void
test_basic(void)
{
	struct str *out = str_new(256, 0);

	test_begin("sieve: implicit keep, keep, discard, fileinto");
	TEST_ASSERT(run_script("", out) == 0);
	TEST_ASSERT_STR(str_c(out), "implicit-keep\n");
	TEST_ASSERT(run_script("discard;", out) == 0);
	TEST_ASSERT_STR(str_c(out), "discard\n");
	TEST_ASSERT(run_script("require \"fileinto\"; if header :contains "
	    "\"subject\" \"ACME\" { fileinto \"Lists\"; }", out) == 0);
	TEST_ASSERT_STR(str_c(out), "fileinto \"Lists\"\n");
	test_end();

	test_begin("sieve: variables and :matches groups");
	TEST_ASSERT(run_script("require [\"fileinto\",\"variables\"];"
	    "if header :matches \"subject\" \"* [*] *\" "
	    "{ fileinto \"${2}.${1}\"; }", out) == 0);
	TEST_ASSERT_STR(str_c(out), "fileinto \"acme.Hello\"\n");
	test_end();

	test_begin("sieve: address parts and subaddress");
	TEST_ASSERT(run_script("require \"subaddress\"; if address :detail "
	    ":is \"from\" \"news\" { discard; }", out) == 0);
	TEST_ASSERT_STR(str_c(out), "discard\n");
	test_end();

	test_begin("sieve: runtime error falls back to implicit keep");
	TEST_ASSERT(run_script("require [\"reject\",\"fileinto\"]; "
	    "fileinto \"x\"; reject \"no\";", out) == -1);
	TEST_ASSERT(strncmp(str_c(out), "implicit-keep\nerror ", 20) == 0);
	test_end();
	str_free(&out);
}

static void
test_errors(void)
{
	struct str *out = str_new(256, 0);

	test_begin("sieve: errors carry line and column");
	TEST_ASSERT(run_script("keep;\n  frob;\n", out) == -2);
	TEST_ASSERT(strstr(str_c(out), "t:2:3: error: unknown command") != NULL);
	TEST_ASSERT(run_script("if true {\n keep;\n", out) == -2);
	TEST_ASSERT(strstr(str_c(out), ":3:1: error:") != NULL);
	TEST_ASSERT(run_script("require \"fileinto\";\nfileinto \"x\" \"y\";",
	    out) == -2);
	TEST_ASSERT(run_script("keep;\nrequire \"fileinto\";", out) == -2);
	TEST_ASSERT(strstr(str_c(out), "t:2:1:") != NULL);
	test_end();

	test_begin("sieve: every lexical error");
	TEST_ASSERT(run_script("\"unterminated", out) == -2);
	TEST_ASSERT(run_script("/* unterminated", out) == -2);
	TEST_ASSERT(run_script("keep;\r", out) == -2);
	TEST_ASSERT(run_script("if size :over 99999999999999999999 {}", out) == -2);
	TEST_ASSERT(run_script("if size :over 9G {keep;}", out) == 0);
	TEST_ASSERT(run_script("if size :over 10Q {keep;}", out) == -2);
	TEST_ASSERT(run_script("keep; @", out) == -2);
	TEST_ASSERT(run_script("require \"reject\"; reject text:\nabc\n", out) == -2);
	TEST_ASSERT(run_script(": keep;", out) == -2);
	{
		static const char nul[] = "keep; # \0 x";

		struct sieve_errors errs = { 0 };
		struct sieve_script *s = sieve_compile("t", nul, sizeof(nul) - 1,
		    NULL, NULL, &errs);

		TEST_ASSERT(s == NULL && errs.errors > 0);
		sieve_errors_clear(&errs);
	}
	test_end();
	str_free(&out);
}

static void
test_hostile(void)
{
	struct str *script = str_new(1024, 0), *out = str_new(256, 0);
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	size_t i;

	test_begin("sieve: 10,000 nested blocks are refused, not a crash");
	for (i = 0; i < 10000; i++)
		str_append_cstr(script, "if true {");
	for (i = 0; i < 10000; i++)
		str_append_cstr(script, "}");
	TEST_ASSERT(run_script(str_c(script), out) == -2);
	TEST_ASSERT(strstr(str_c(out), "nested too deeply") != NULL);
	str_clear(script);
	for (i = 0; i < 10000; i++)
		str_append_cstr(script, "not ");
	str_append_cstr(script, "true");
	str_set_cstr(out, "if ");
	str_append_str(out, script);
	str_append_cstr(out, " { keep; }");
	str_set(script, str_c(out), str_len(out));
	TEST_ASSERT(run_script(str_c(script), out) == -2);
	test_end();

	test_begin("sieve: huge strings and scripts are refused");
	str_set_cstr(script, "require \"fileinto\"; fileinto \"");
	for (i = 0; i < 300 * 1024; i++)
		str_append_c(script, 'a');
	str_append_cstr(script, "\";");
	TEST_ASSERT(run_script(str_c(script), out) == -2);
	TEST_ASSERT(strstr(str_c(out), "too long") != NULL);
	{
		struct sieve_limits lim;

		sieve_limits_default(&lim);
		lim.max_script_size = 100;
		s = sieve_compile("t", str_c(script), str_len(script), &lim, NULL,
		    &errs);
		TEST_ASSERT(s == NULL);
		sieve_errors_clear(&errs);
	}
	test_end();

	test_begin("sieve: invalid UTF-8 in a mailbox name is an error");
	TEST_ASSERT(run_script("require \"fileinto\"; fileinto \"a\xff\";",
	    out) == -2);
	test_end();

	test_begin("sieve: regex bombs are refused");
	TEST_ASSERT(run_script("require \"regex\"; if header :regex "
	    "\"subject\" \"(a*)*\\\\1\" { keep; }", out) == -2);
	TEST_ASSERT(run_script("require \"regex\"; if header :regex "
	    "\"subject\" \"((a{1,100}){1,100}){1,100}\" { keep; }", out) == -2);
	test_end();

	test_begin("sieve: a :matches bomb ends within the step budget");
	str_set_cstr(script, "require \"variables\"; set \"a\" \"");
	for (i = 0; i < 4000; i++)
		str_append_c(script, 'a');
	str_append_cstr(script, "\"; if string :matches \"${a}\" \"");
	for (i = 0; i < 200; i++)
		str_append_cstr(script, "*a");
	str_append_cstr(script, "b\" { keep; }");
	{
		clock_t t0 = clock();
		int rc = run_script(str_c(script), out);

		TEST_ASSERT(rc == 0 || rc == -1);
		TEST_ASSERT((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
	}
	test_end();

	test_begin("sieve: too many actions and redirects");
	str_set_cstr(script, "require \"fileinto\";");
	for (i = 0; i < 40; i++)
		str_printf(script, "fileinto \"b%zu\";", i);
	TEST_ASSERT(run_script(str_c(script), out) == -1);
	TEST_ASSERT(strstr(str_c(out), "too many actions") != NULL);
	test_end();
	str_free(&script);
	str_free(&out);
}

static int
test_loader(void *ctx, enum sieve_location loc, const char *name,
    struct str *out, const char **error_r)
{
	(void)ctx;
	(void)error_r;
	if (loc == SIEVE_PERSONAL && strcmp(name, "sub") == 0) {
		str_append_cstr(out, "require \"fileinto\"; fileinto \"Sub\";");
		return 0;
	}
	if (strcmp(name, "loop") == 0) {
		str_append_cstr(out, "require \"include\"; include \"loop\";");
		return 0;
	}
	return 1;
}

static void
test_binary(void)
{
	const char *src = "require [\"include\", \"regex\", \"variables\", "
	    "\"foreverypart\", \"mime\", \"extracttext\"];\n"
	    "include \"sub\";\n"
	    "foreverypart :name \"l\" { foreverypart {\n"
	    "  if header :mime :anychild :param \"charset\" \"content-type\" "
	    "\"x\" { break :name \"l\"; }\n"
	    "  extracttext :upper :first 3 \"t\"; } }\n"
	    "if header :regex \"subject\" \"^Hel+o\" { set \"x\" \"1\"; }\n"
	    "if anyof (exists \"x-priority\", not size :over 1M) { keep; }\n";
	struct sieve_loader loader = { test_loader, NULL };
	struct sieve_errors errs = { 0 };
	struct sieve_script *s, *s2 = NULL;
	struct str *bin = str_new(1024, 0), *d1 = str_new(1024, 0),
	    *d2 = str_new(1024, 0);
	const char *error = NULL;
	size_t i;
	int rc;

	test_begin("sieve: binary round trip");
	s = sieve_compile("main", src, strlen(src), NULL, &loader, &errs);
	TEST_ASSERT(s != NULL);
	sieve_script_save(s, bin);
	rc = sieve_script_load(str_c(bin), str_len(bin), src, strlen(src),
	    NULL, &loader, &s2, &error);
	TEST_ASSERT(rc == 0 && s2 != NULL);
	if (s2 != NULL) {
		sieve_script_dump(s, d1);
		sieve_script_dump(s2, d2);
		TEST_ASSERT_STR(str_c(d2), str_c(d1));
	}
	sieve_script_free(&s2);
	test_end();

	test_begin("sieve: binary is stale when the source changes");
	rc = sieve_script_load(str_c(bin), str_len(bin), "keep;", 5, NULL,
	    &loader, &s2, &error);
	TEST_ASSERT(rc == 1 && s2 == NULL);
	test_end();

	test_begin("sieve: damaged binaries are refused, never trusted");
	for (i = 8; i < str_len(bin); i++) {
		char saved = str_data(bin)[i];

		str_data(bin)[i] = (char)(saved ^ 0x5a);
		rc = sieve_script_load(str_c(bin), str_len(bin), src,
		    strlen(src), NULL, &loader, &s2, &error);
		if (rc == 0) {
			/* a flip in a string or line number may still load */
			struct sieve_env env;
			struct sieve_result res;

			memset(&env, 0, sizeof(env));
			env.msg = msg_text;
			env.msg_size = sizeof(msg_text) - 1;
			memset(&res, 0, sizeof(res));
			(void)sieve_run(s2, &env, NULL, &res);
			sieve_result_clear(&res);
			sieve_script_free(&s2);
		}
		str_data(bin)[i] = saved;
	}
	for (i = 0; i < str_len(bin); i++) {
		rc = sieve_script_load(str_c(bin), i, src, strlen(src), NULL,
		    &loader, &s2, &error);
		TEST_ASSERT(rc != 0 && s2 == NULL);
	}
	test_end();

	test_begin("sieve: include loops are bounded");
	sieve_errors_clear(&errs);
	s2 = sieve_compile("main", "require \"include\"; include \"loop\";",
	    35, NULL, &loader, &errs);
	/* compiled once (the unit is shared) and bounded when run */
	if (s2 != NULL) {
		struct sieve_env env;
		struct sieve_result res;

		memset(&env, 0, sizeof(env));
		env.msg = msg_text;
		env.msg_size = sizeof(msg_text) - 1;
		memset(&res, 0, sizeof(res));
		TEST_ASSERT(sieve_run(s2, &env, NULL, &res) == -1);
		sieve_result_clear(&res);
	}
	sieve_script_free(&s2);
	test_end();
	sieve_errors_clear(&errs);
	sieve_script_free(&s);
	str_free(&bin);
	str_free(&d1);
	str_free(&d2);
}

static void
test_speed(void)
{
	struct str *src = str_new(8192, 0);
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	struct sieve_env env;
	struct sieve_result res;
	struct timespec t0, t1;
	double us;
	int i, n = 2000, failed = 0;

	/* The time is reported, never asserted (a loaded machine or a
	 * sanitizer build is many times slower): bench/sieve-deliver
	 * measures speed. What is asserted is that every run succeeds. */
	test_begin("sieve: a 50-rule script, 2000 runs (time reported)");
	str_append_cstr(src, "require [\"fileinto\", \"envelope\"];\n");
	for (i = 0; i < 50; i++)
		str_printf(src, "if anyof (header :contains \"subject\" "
		    "\"word%d\", address :is \"from\" \"u%d@example.org\", "
		    "envelope :domain :is \"from\" \"d%d.example\") "
		    "{ fileinto \"box%d\"; stop; }\n", i, i, i, i);
	s = sieve_compile("perf", str_c(src), str_len(src), NULL, NULL, &errs);
	TEST_ASSERT(s != NULL);
	memset(&env, 0, sizeof(env));
	env.msg = msg_text;
	env.msg_size = sizeof(msg_text) - 1;
	env.env_from = "alice@example.org";
	memset(&res, 0, sizeof(res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n && s != NULL; i++) {
		sieve_result_clear(&res);
		if (sieve_run(s, &env, NULL, &res) < 0)
			failed++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
	printf("# 50-rule script: %.1f us per message\n", us);
	TEST_ASSERT(failed == 0);
	sieve_result_clear(&res);
	sieve_script_free(&s);
	sieve_errors_clear(&errs);
	str_free(&src);
	test_end();
}

/* run_msg - compile script and run it on msg; result lines into out */
static int
run_msg(const char *script, const char *msg, size_t msg_size,
    const struct sieve_limits *lim, struct str *out)
{
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	struct sieve_env env;
	struct sieve_result res;
	int rc;

	str_clear(out);
	s = sieve_compile("t", script, strlen(script), lim, NULL, &errs);
	if (s == NULL) {
		sieve_errors_format(&errs, out);
		sieve_errors_clear(&errs);
		return -2;
	}
	sieve_errors_clear(&errs);
	memset(&env, 0, sizeof(env));
	env.msg = msg;
	env.msg_size = msg_size;
	memset(&res, 0, sizeof(res));
	rc = sieve_run(s, &env, lim, &res);
	sieve_result_format(&res, out);
	sieve_result_clear(&res);
	sieve_script_free(&s);
	return rc;
}

static void
test_mime(void)
{
	static const char msg[] =
	    "Subject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "=E9t=E9 caf=E9\r\n"
	    "--b\r\nContent-Type: text/html\r\n\r\n<p>Hi&amp;bye</p>\r\n"
	    "--b--\r\n";
	const char *req = "require [\"foreverypart\", \"mime\", "
	    "\"extracttext\", \"variables\", \"fileinto\"];\n";
	struct str *out = str_new(256, 0), *script = str_new(256, 0);
	struct str *big = str_new(1 << 16, 0);
	struct sieve_limits lim;
	int i, rc;

	test_begin("sieve: extracttext decodes, converts and counts characters");
	str_printf(script, "%sforeverypart { extracttext :first 4 \"t\";\n"
	    "if string :is \"${t}\" [\"\xc3\xa9t\xc3\xa9 \", \"Hi&b\"] "
	    "{ fileinto \"[${t}]\"; } }", req);
	rc = run_msg(str_c(script), msg, sizeof(msg) - 1, NULL, out);
	TEST_ASSERT(rc == 0);
	TEST_ASSERT(strstr(str_c(out), "[\xc3\xa9t\xc3\xa9 ]") != NULL);
	TEST_ASSERT(strstr(str_c(out), "[Hi&b]") != NULL);
	test_end();

	test_begin("sieve: break leaves the named loop");
	str_clear(script);
	str_printf(script, "%sforeverypart :name \"a\" { foreverypart {\n"
	    "fileinto \"in\"; break :name \"a\"; } fileinto \"never\"; }\n"
	    "fileinto \"after\";", req);
	rc = run_msg(str_c(script), msg, sizeof(msg) - 1, NULL, out);
	TEST_ASSERT(rc == 0);
	TEST_ASSERT(strstr(str_c(out), "\"in\"") != NULL);
	TEST_ASSERT(strstr(str_c(out), "never") == NULL);
	TEST_ASSERT(strstr(str_c(out), "\"after\"") != NULL);
	test_end();

	test_begin("sieve: four nested loops over 1000 parts stay bounded");
	str_append_cstr(big, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (i = 0; i < 1000; i++)
		str_append_cstr(big, "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
	str_append_cstr(big, "--b--\r\n");
	str_clear(script);
	str_printf(script, "%sforeverypart { foreverypart { foreverypart {\n"
	    "foreverypart { if header :mime :anychild \"x-no\" \"y\" "
	    "{ keep; } } } } }", req);
	sieve_limits_default(&lim);
	lim.max_match_steps = 200000;
	rc = run_msg(str_c(script), str_c(big), str_len(big), &lim, out);
	/* flat parts: the inner loops find nothing below a leaf */
	TEST_ASSERT(rc == 0);
	TEST_ASSERT(strstr(str_c(out), "implicit") != NULL);
	/* each part visited is charged: a small budget runs out */
	lim.max_match_steps = 1500;
	rc = run_msg(str_c(script), str_c(big), str_len(big), &lim, out);
	TEST_ASSERT(rc == -1);
	TEST_ASSERT(strstr(str_c(out), "too much CPU") != NULL);
	/* deep nesting: the MIME parser's depth limit bounds the loops */
	str_clear(big);
	for (i = 0; i < 200; i++)
		str_printf(big, "Content-Type: multipart/mixed; boundary=%d\r\n"
		    "\r\n--%d\r\n", i, i);
	str_append_cstr(big, "\r\nleaf\r\n");
	lim.max_match_steps = 10000000;
	rc = run_msg(str_c(script), str_c(big), str_len(big), &lim, out);
	TEST_ASSERT(rc == 0);
	test_end();

	test_begin("sieve: foreverypart errors are compile errors");
	str_clear(script);
	str_printf(script, "%sextracttext \"x\";", req);
	TEST_ASSERT(run_msg(str_c(script), msg, sizeof(msg) - 1, NULL,
	    out) == -2);
	TEST_ASSERT(strstr(str_c(out), "not placed inside a foreverypart") !=
	    NULL);
	str_clear(script);
	str_printf(script, "%sforeverypart { foreverypart { foreverypart {\n"
	    "foreverypart { foreverypart { keep; } } } } }", req);
	TEST_ASSERT(run_msg(str_c(script), msg, sizeof(msg) - 1, NULL,
	    out) == -2);
	TEST_ASSERT(strstr(str_c(out), "nesting limit") != NULL);
	test_end();

	str_free(&big);
	str_free(&script);
	str_free(&out);
}

int
main(void)
{
	test_basic();
	test_editheader();
	test_enotify();
	test_errors();
	test_hostile();
	test_binary();
	test_mime();
	test_speed();
	return test_done();
}
