/* SPDX-License-Identifier: MIT */
/*
 * smtp_sasl_test - the smtp agent's SASL client without a server
 *
 * The mechanism filter; the password table lookup (key order, a value
 * without "user:", a table that cannot be opened); libsasl2's client
 * with our security options: no PLAIN outside TLS by default, PLAIN
 * inside it with the right initial response, LOGIN answering its two
 * challenges. The program's other objects are linked in (the unit rule
 * leaves out only main), so the globals of smtp.c are defined here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "config.h"
#include "log.h"
#include "str.h"
#include "test.h"

#include "smtp.h"

struct smtp_settings smtp_settings;

/* smtp.c's status setters, which the session code links against */
void
smtp_set_status(struct smtp_delivery *d, size_t i, enum deliver_status status,
    unsigned flags, const char *dsn, const char *text)
{
	(void)d; (void)i; (void)status; (void)flags; (void)dsn; (void)text;
}

void
smtp_set_all(struct smtp_delivery *d, enum deliver_status status,
    const char *dsn, const char *text)
{
	(void)d; (void)status; (void)dsn; (void)text;
}

static void
set(const char *name, const char *value)
{
	const char *err;

	ASSERT(config_set(conf(), name, value, &err) == 0);
}

/* b64 - the base64 of (p, n) */
static void
b64(const char *p, unsigned n, struct str *out)
{
	char buf[256];
	unsigned len = 0;

	ASSERT(sasl_encode64(p, n, buf, sizeof(buf), &len) == SASL_OK);
	str_set(out, buf, len);
}

static void
test_filter(void)
{
	static const char *const f[] = { "plain", "LOGIN" };
	struct str *out = str_new(0, 0);

	test_begin("mechanism filter");
	smtp_sasl_filter_mechs("CRAM-MD5 PLAIN  LOGIN GSSAPI", f, 2, out);
	TEST_ASSERT_STR(str_c(out), "PLAIN LOGIN");
	smtp_sasl_filter_mechs("PLAIN LOGIN", NULL, 0, out);
	TEST_ASSERT_STR(str_c(out), "PLAIN LOGIN");
	smtp_sasl_filter_mechs("GSSAPI", f, 2, out);
	TEST_ASSERT_STR(str_c(out), "");
	smtp_sasl_filter_mechs("", f, 2, out);
	TEST_ASSERT_STR(str_c(out), "");
	smtp_sasl_filter_mechs("PLAINX LOGI", f, 2, out);
	TEST_ASSERT_STR(str_c(out), "");
	test_end();
	str_free(&out);
}

static void
test_lookup(void)
{
	struct str *v = str_new(0, 0), *why = str_new(0, 0);
	const char *keys[3] = { "[relay.example]:587", "[relay.example]",
	    "mx.example" };

	test_begin("password table lookup");
	/* the first key that has an entry wins; the password keeps colons */
	TEST_ASSERT(smtp_sasl_passwd_lookup(NULL, keys, 3, v, why) == 1);
	TEST_ASSERT_STR(str_c(v), "bob:pa:ss");
	keys[0] = "[other]:25";
	TEST_ASSERT(smtp_sasl_passwd_lookup(NULL, keys, 3, v, why) == 1);
	TEST_ASSERT_STR(str_c(v), "hostuser:x");
	keys[1] = NULL;
	TEST_ASSERT(smtp_sasl_passwd_lookup(NULL, keys, 3, v, why) == 1);
	TEST_ASSERT_STR(str_c(v), "mxuser:y");
	keys[2] = "nothing.example";
	TEST_ASSERT(smtp_sasl_passwd_lookup(NULL, keys, 3, v, why) == 0);
	keys[2] = "broken.example";
	str_clear(why);
	TEST_ASSERT(smtp_sasl_passwd_lookup(NULL, keys, 3, v, why) == -1);
	TEST_ASSERT(strstr(str_c(why), "is not user:password") != NULL);
	TEST_ASSERT(str_len(v) == 0);
	test_end();
	str_free(&v);
	str_free(&why);
}

static void
test_client(void)
{
	static const char cred[] = "bob:pa:ss";
	struct str *out = str_new(0, 0), *why = str_new(0, 0);
	struct str *want = str_new(0, 0), *ch = str_new(0, 0);
	struct smtp_sasl *sa;
	const char *mech = NULL;
	bool ir = false;

	test_begin("no plaintext mechanism outside TLS");
	sa = smtp_sasl_start(NULL, "relay.example", "PLAIN LOGIN", false, cred,
	    strlen(cred), out, &ir, &mech, why);
	TEST_ASSERT(sa == NULL);
	TEST_ASSERT(strstr(str_c(why), "no mechanism available") != NULL);
	test_end();

	test_begin("PLAIN inside TLS: one initial response");
	str_clear(why);
	sa = smtp_sasl_start(NULL, "relay.example", "PLAIN", true, cred,
	    strlen(cred), out, &ir, &mech, why);
	TEST_ASSERT(sa != NULL);
	if (sa != NULL) {
		TEST_ASSERT_STR(mech, "PLAIN");
		TEST_ASSERT(ir);
		/* authzid (the same user, or empty) NUL authcid NUL password */
		b64("bob\0bob\0pa:ss", 13, want);
		if (strcmp(str_c(out), str_c(want)) != 0)
			b64("\0bob\0pa:ss", 10, want);
		TEST_ASSERT_STR(str_c(out), str_c(want));
	}
	smtp_sasl_free(&sa);
	TEST_ASSERT(sa == NULL);
	test_end();

	test_begin("LOGIN answers its challenges");
	str_clear(why);
	sa = smtp_sasl_start(NULL, "relay.example", "LOGIN", true, cred,
	    strlen(cred), out, &ir, &mech, why);
	TEST_ASSERT(sa != NULL);
	if (sa != NULL) {
		TEST_ASSERT_STR(mech, "LOGIN");
		b64("Username:", 9, ch);
		TEST_ASSERT(smtp_sasl_step(sa, str_c(ch), str_len(ch), out,
		    why) == 0);
		b64("bob", 3, want);
		TEST_ASSERT_STR(str_c(out), str_c(want));
		b64("Password:", 9, ch);
		TEST_ASSERT(smtp_sasl_step(sa, str_c(ch), str_len(ch), out,
		    why) == 0);
		b64("pa:ss", 5, want);
		TEST_ASSERT_STR(str_c(out), str_c(want));
	}
	smtp_sasl_free(&sa);
	test_end();

	test_begin("a challenge that is not base64");
	sa = smtp_sasl_start(NULL, "relay.example", "LOGIN", true, cred,
	    strlen(cred), out, &ir, &mech, why);
	TEST_ASSERT(sa != NULL);
	if (sa != NULL) {
		str_clear(why);
		TEST_ASSERT(smtp_sasl_step(sa, "%%%%", 4, out, why) == -1);
		TEST_ASSERT(strstr(str_c(why), "not base64") != NULL);
	}
	smtp_sasl_free(&sa);
	test_end();

	test_begin("the mechanism filter leaves nothing");
	set("smtp_sasl_mechanism_filter", "cram-md5");
	str_clear(why);
	/* the filter is read at init: reinitialise */
	smtp_sasl_deinit();
	ASSERT(smtp_sasl_init(why) == 0);
	sa = smtp_sasl_start(NULL, "relay.example", "PLAIN LOGIN", true, cred,
	    strlen(cred), out, &ir, &mech, why);
	TEST_ASSERT(sa == NULL);
	TEST_ASSERT(strstr(str_c(why), "smtp_sasl_mechanism_filter") != NULL);
	test_end();

	str_free(&out);
	str_free(&why);
	str_free(&want);
	str_free(&ch);
}

int
main(void)
{
	struct config *cfg = config_new(test_tmpdir());
	struct str *why = str_new(0, 0), *path = str_new(0, 0);
	FILE *f;

	config_set_global(cfg);
	str_printf(path, "%s/sasl_passwd", test_tmpdir());
	f = fopen(str_c(path), "w");
	ASSERT(f != NULL);
	fputs("[relay.example]:587 bob:pa:ss\n"
	    "[relay.example] hostuser:x\n"
	    "mx.example mxuser:y\n"
	    "broken.example nocolon\n", f);
	ASSERT(fclose(f) == 0);
	set("smtp_sasl_auth_enable", "yes");
	{
		struct str *spec = str_new(0, 0);

		str_printf(spec, "file:%s", str_c(path));
		set("smtp_sasl_password_maps", str_c(spec));
		str_free(&spec);
	}
	test_begin("init");
	TEST_ASSERT(smtp_sasl_init(why) == 0);
	TEST_ASSERT(smtp_sasl_enabled());
	test_end();

	test_begin("bad security option");
	smtp_sasl_deinit();
	set("smtp_sasl_security_options", "noplaintext, nosuchthing");
	TEST_ASSERT(smtp_sasl_init(why) == -1);
	TEST_ASSERT(!smtp_sasl_enabled());
	set("smtp_sasl_security_options", "noplaintext, noanonymous");
	TEST_ASSERT(smtp_sasl_init(why) == 0);
	test_end();

	test_filter();
	test_lookup();
	test_client();
	smtp_sasl_deinit();
	str_free(&why);
	str_free(&path);
	return test_done();
}
