/* SPDX-License-Identifier: MIT */
/*
 * sasl_server_test - mechanism filtering and identity mapping
 */
#include <stddef.h>

#include "sasl_server.h"
#include "str.h"
#include "test.h"

static const char *
filter(const char *available, const char *const *allowed, size_t n,
    bool plaintext, struct str *out)
{
	str_clear(out);
	sasl_server_filter_mechs(available, allowed, n, plaintext, " AUTH=",
	    out);
	return str_c(out);
}

static void
test_filter(void)
{
	static const char *const all[] = { "PLAIN", "login", "GSSAPI" };
	static const char *const pw[] = { "PLAIN", "LOGIN" };
	static const char *const gss[] = { "gssapi" };
	struct str *out = str_new(0, 0);

	test_begin("sasl_server_filter_mechs");
	TEST_ASSERT_STR(filter("GSSAPI PLAIN LOGIN", all, 3, true, out),
	    " AUTH=GSSAPI AUTH=PLAIN AUTH=LOGIN");
	/* without TLS: no password mechanisms */
	TEST_ASSERT_STR(filter("GSSAPI PLAIN LOGIN", all, 3, false, out),
	    " AUTH=GSSAPI");
	/* only what is configured, whatever libsasl2 has */
	TEST_ASSERT_STR(filter("DIGEST-MD5 GSSAPI CRAM-MD5 PLAIN", pw, 2,
	    true, out), " AUTH=PLAIN");
	TEST_ASSERT_STR(filter("gssapi plain", gss, 1, true, out),
	    " AUTH=GSSAPI");
	/* configured but not loaded (no keytab): not offered */
	TEST_ASSERT_STR(filter("PLAIN LOGIN", gss, 1, true, out), "");
	TEST_ASSERT_STR(filter("", all, 3, true, out), "");
	TEST_ASSERT_STR(filter("  PLAIN   LOGIN ", all, 3, true, out),
	    " AUTH=PLAIN AUTH=LOGIN");
	TEST_ASSERT_STR(filter("ANONYMOUS", all, 3, true, out), "");
	TEST_ASSERT_STR(filter("PLAIN", NULL, 0, true, out), "");
	test_end();

	test_begin("sasl_server_mech_plaintext");
	TEST_ASSERT(sasl_server_mech_plaintext("PLAIN"));
	TEST_ASSERT(sasl_server_mech_plaintext("login"));
	TEST_ASSERT(!sasl_server_mech_plaintext("GSSAPI"));
	TEST_ASSERT(!sasl_server_mech_plaintext("PLAINX"));
	test_end();
	str_free(&out);
}

static const char *
map(const char *id, const char *realm, bool fold, struct str *out)
{
	return sasl_server_map_user(id, realm, fold, out) ? str_c(out) : "-";
}

static void
test_map(void)
{
	struct str *out = str_new(0, 0);

	test_begin("sasl_server_map_user");
	TEST_ASSERT_STR(map("kuser", "POSTERN.TEST", false, out), "kuser");
	TEST_ASSERT_STR(map("kuser@POSTERN.TEST", "POSTERN.TEST", false, out),
	    "kuser");
	/* another realm, a realm in other case, no realm configured */
	TEST_ASSERT_STR(map("kuser@OTHER.TEST", "POSTERN.TEST", false, out),
	    "-");
	TEST_ASSERT_STR(map("kuser@postern.test", "POSTERN.TEST", false, out),
	    "-");
	TEST_ASSERT_STR(map("kuser@POSTERN.TEST", "", false, out), "-");
	TEST_ASSERT_STR(map("kuser@POSTERN.TEST", NULL, false, out), "-");
	/* instances and principal syntax are not local users */
	TEST_ASSERT_STR(map("kuser/admin@POSTERN.TEST", "POSTERN.TEST", false,
	    out), "-");
	TEST_ASSERT_STR(map("a@b@POSTERN.TEST", "POSTERN.TEST", false, out),
	    "-");
	TEST_ASSERT_STR(map("@POSTERN.TEST", "POSTERN.TEST", false, out), "-");
	TEST_ASSERT_STR(map("", "POSTERN.TEST", false, out), "-");
	/* case: folded for typed names, refused for principals */
	TEST_ASSERT_STR(map("Alice", "", true, out), "alice");
	TEST_ASSERT_STR(map("KUser@POSTERN.TEST", "POSTERN.TEST", true, out),
	    "kuser");
	TEST_ASSERT_STR(map("KUser@POSTERN.TEST", "POSTERN.TEST", false, out),
	    "-");
	TEST_ASSERT_STR(str_c(out), "");
	TEST_ASSERT_STR(map("bad name", "", true, out), "-");
	TEST_ASSERT_STR(map("x\001y", "", true, out), "-");
	test_end();
	str_free(&out);
}

int
main(void)
{
	test_filter();
	test_map();
	return test_done();
}
