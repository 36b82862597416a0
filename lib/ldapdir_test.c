/* SPDX-License-Identifier: MIT */
/*
 * ldapdir_test - filter expansion and escaping, ldap_table file parsing
 */
#include <string.h>

#include "ldapdir.h"
#include "str.h"
#include "test.h"

/* expand - template for key, or "(none)" */
static const char *
expand(struct str *out, const char *template, const char *key)
{
	return ldapdir_filter_expand(template, key, out) ? str_c(out) :
	    "(none)";
}

static void
test_expand(void)
{
	struct str *out = str_new(0, 0);

	test_begin("ldapdir_filter_expand");
	TEST_ASSERT_STR(expand(out, "(uid=%s)", "alice"), "(uid=alice)");
	TEST_ASSERT_STR(expand(out, "(&(uid=%u)(dc=%d))", "bob@example.org"),
	    "(&(uid=bob)(dc=example.org))");
	TEST_ASSERT_STR(expand(out, "(mail=%s)", "a@b@c"), "(mail=a@b@c)");
	TEST_ASSERT_STR(expand(out, "(uid=%u)", "a@b@c"), "(uid=a@b)");
	/* No domain: %d cannot match anything. */
	TEST_ASSERT_STR(expand(out, "(dc=%d)", "alice"), "(none)");
	TEST_ASSERT_STR(expand(out, "(dc=%d)", "alice@"), "(none)");
	TEST_ASSERT_STR(expand(out, "100%% %s", "x"), "100% x");
	TEST_ASSERT_STR(expand(out, "(uid=%s)%", "x"), "(uid=x)%");
	/* RFC 4515: a key cannot change the filter's structure. */
	TEST_ASSERT_STR(expand(out, "(uid=%s)", "*"), "(uid=\\2a)");
	TEST_ASSERT_STR(expand(out, "(uid=%s)", "x)(uid=*"),
	    "(uid=x\\29\\28uid=\\2a)");
	TEST_ASSERT_STR(expand(out, "(uid=%s)", "a\\b"), "(uid=a\\5cb)");
	test_end();
	str_free(&out);
}

static void
test_from_text(void)
{
	struct str *errors = str_new(0, 0);
	struct ldapdir *ld;
	const char *good =
	    "# aliases from the directory\n"
	    "server_host = ldap://127.0.0.1:3890/\n"
	    "    ldap://127.0.0.2:3890/\n"
	    "search_base = ou=people,dc=example,dc=org\n"
	    "\n"
	    "query_filter = (mail=%s)\n"
	    "result_attribute = posternForwardingAddress, mail\n"
	    "scope = one\n"
	    "bind_dn = cn=mail,dc=example,dc=org\n"
	    "bind_pw = secret\n"
	    "timeout = 5\n";

	test_begin("ldapdir_from_text");
	ld = ldapdir_from_text(good, strlen(good), "t.cf", errors);
	TEST_ASSERT(ld != NULL);
	TEST_ASSERT_STR(str_c(errors), "");
	ldapdir_free(&ld);
	TEST_ASSERT(ld == NULL);

	ld = ldapdir_from_text("bogus = 1\nscope = wide\n", 22, "t.cf",
	    errors);
	TEST_ASSERT(ld == NULL);
	TEST_ASSERT(strstr(str_c(errors), "t.cf:1: unknown") != NULL);
	TEST_ASSERT(strstr(str_c(errors), "scope") != NULL);
	str_clear(errors);
	ld = ldapdir_from_text("timeout = 0\n", 12, "t.cf", errors);
	TEST_ASSERT(ld == NULL);
	str_clear(errors);
	ld = ldapdir_from_text("no equals sign\n", 15, "t.cf", errors);
	TEST_ASSERT(ld == NULL);
	/* An empty file is all defaults. */
	str_clear(errors);
	ld = ldapdir_from_text("", 0, "t.cf", errors);
	TEST_ASSERT(ld != NULL);
	ldapdir_free(&ld);
	test_end();
	str_free(&errors);
}

static void
test_tls_settings(void)
{
	struct str *errors = str_new(0, 0), *value = str_new(0, 0);
	struct ldapdir *ld;
	const char *err = NULL;
	const char *tls =
	    "server_host = ldap://127.0.0.1:1/\n"
	    "start_tls = yes\n"
	    "tls_ca_cert_file = /nonexistent/ca.pem\n"
	    "tls_require_cert = yes\n"
	    "timeout = 2\n";
	const char *ldaps =
	    "server_host = ldaps://127.0.0.1:1/\n"
	    "tls_ca_cert_file = /nonexistent/ca.pem\n";

	test_begin("ldapdir TLS settings fail closed");
	ld = ldapdir_from_text(tls, strlen(tls), "t.cf", errors);
	TEST_ASSERT(ld != NULL);
	TEST_ASSERT_STR(str_c(errors), "");
	/* the CA file cannot be read: an error, not a plaintext search */
	if (ld != NULL) {
		TEST_ASSERT(ldapdir_search(ld, "x", value, NULL, &err) == -1);
		TEST_ASSERT(err != NULL && strstr(err, "TLS") != NULL);
		TEST_ASSERT(ldapdir_check_password(ld, "uid=x", "pw", &err) ==
		    -1);
		ldapdir_free(&ld);
	}
	ld = ldapdir_from_text(ldaps, strlen(ldaps), "t.cf", errors);
	TEST_ASSERT(ld != NULL);
	if (ld != NULL) {
		TEST_ASSERT(ldapdir_search(ld, "x", value, NULL, &err) == -1);
		TEST_ASSERT(err != NULL && strstr(err, "TLS") != NULL);
		ldapdir_free(&ld);
	}
	/* StartTLS with nobody listening: a connect error */
	ld = ldapdir_from_text(tls, strlen(tls) - strlen(
	    "tls_ca_cert_file = /nonexistent/ca.pem\ntls_require_cert = yes\n"
	    "timeout = 2\n"), "t.cf", errors);
	TEST_ASSERT(ld != NULL);
	if (ld != NULL) {
		TEST_ASSERT(ldapdir_search(ld, "x", value, NULL, &err) == -1);
		TEST_ASSERT(err != NULL && strstr(err, "connect") != NULL);
		ldapdir_free(&ld);
	}
	ld = ldapdir_from_text("start_tls = maybe\ntls_require_cert = 1\n",
	    37, "t.cf", errors);
	TEST_ASSERT(ld == NULL);
	TEST_ASSERT(strstr(str_c(errors), "start_tls: yes or no") != NULL);
	TEST_ASSERT(strstr(str_c(errors), "tls_require_cert: yes or no") !=
	    NULL);
	test_end();
	str_free(&errors);
	str_free(&value);
}

int
main(void)
{
	test_expand();
	test_from_text();
	test_tls_settings();
	return test_done();
}
