/* SPDX-License-Identifier: MIT */
/* address_test - unit tests for address.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "str.h"
#include "test.h"

#define U ADDRESS_SMTPUTF8
#define N ADDRESS_ALLOW_NULL
#define P ADDRESS_ALLOW_POSTMASTER
#define D ADDRESS_ALLOW_NO_DOMAIN

struct path_case {
	const char *in;
	unsigned flags;
	enum address_error err;
	const char *canon;	/* expected canonical form when OK */
};

static const struct path_case path_cases[] = {
	/* plain */
	{ "<user@example.com>", 0, ADDRESS_OK, "user@example.com" },
	{ "<User.Name@Example.COM>", 0, ADDRESS_OK, "User.Name@example.com" },
	{ "<a@b>", 0, ADDRESS_OK, "a@b" },
	{ "<a-b_c+d=e/f!#$%&'*?^`{|}~@x-y.z9>", 0, ADDRESS_OK,
	    "a-b_c+d=e/f!#$%&'*?^`{|}~@x-y.z9" },
	{ "<1@2.3>", 0, ADDRESS_OK, "1@2.3" },
	/* null and postmaster */
	{ "<>", N, ADDRESS_OK, "" },
	{ "<>", 0, ADDRESS_ERR_NULL, NULL },
	{ "<Postmaster>", P, ADDRESS_OK, "Postmaster" },
	{ "<POSTMASTER>", P, ADDRESS_OK, "POSTMASTER" },
	{ "<postmaster>", 0, ADDRESS_ERR_NO_DOMAIN, NULL },
	{ "<postmasterx>", P, ADDRESS_ERR_NO_DOMAIN, NULL },
	{ "<\"postmaster\">", P, ADDRESS_ERR_NO_DOMAIN, NULL },
	{ "<user>", D, ADDRESS_OK, "user" },
	/* source routes are ignored */
	{ "<@relay.example:user@example.com>", 0, ADDRESS_OK, "user@example.com" },
	{ "<@a,@b.c,@[10.0.0.1]:u@d>", 0, ADDRESS_OK, "u@d" },
	{ "<@a:>", N, ADDRESS_ERR_ROUTE, NULL },
	{ "<@a>", 0, ADDRESS_ERR_ROUTE, NULL },
	{ "<@a,b:u@d>", 0, ADDRESS_ERR_ROUTE, NULL },
	{ "<@-a:u@d>", 0, ADDRESS_ERR_ROUTE, NULL },
	{ "<@:u@d>", 0, ADDRESS_ERR_ROUTE, NULL },
	{ "<@a,:u@d>", 0, ADDRESS_ERR_ROUTE, NULL },
	/* quoted local parts */
	{ "<\"john doe\"@example.com>", 0, ADDRESS_OK, "\"john doe\"@example.com" },
	{ "<\"john\"@example.com>", 0, ADDRESS_OK, "john@example.com" },
	{ "<\"a\\\"b\\\\c\"@x>", 0, ADDRESS_OK, "\"a\\\"b\\\\c\"@x" },
	{ "<\"\\a\"@x>", 0, ADDRESS_OK, "a@x" },
	{ "<\"\"@x>", 0, ADDRESS_OK, "\"\"@x" },
	{ "<\"a..b\"@x>", 0, ADDRESS_OK, "\"a..b\"@x" },
	{ "<\".a\"@x>", 0, ADDRESS_OK, "\".a\"@x" },
	{ "<\"a@b\"@x>", 0, ADDRESS_OK, "\"a@b\"@x" },
	{ "<\"a\"b@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<\"ab@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<\"a\tb\"@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<\"a\\\tb\"@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<\"a\\", 0, ADDRESS_ERR_BRACKETS, NULL },
	/* bad dot-strings */
	{ "<.a@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a.@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a..b@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a b@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a(b)@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a,b@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<@x>", 0, ADDRESS_ERR_ROUTE, NULL },
	{ "<a@@x>", 0, ADDRESS_ERR_DOMAIN, NULL },
	/* domains */
	{ "<a@>", 0, ADDRESS_ERR_NO_DOMAIN, NULL },
	{ "<a>", 0, ADDRESS_ERR_NO_DOMAIN, NULL },
	{ "<a@-x.com>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@x-.com>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@x..com>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@.x.com>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@x.com.>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@x_y.com>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@x y>", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<a@xn--bcher-kva.example>", 0, ADDRESS_OK, "a@xn--bcher-kva.example" },
	/* address literals */
	{ "<a@[192.0.2.1]>", 0, ADDRESS_OK, "a@[192.0.2.1]" },
	{ "<a@[0.0.0.0]>", 0, ADDRESS_OK, "a@[0.0.0.0]" },
	{ "<a@[255.255.255.255]>", 0, ADDRESS_OK, "a@[255.255.255.255]" },
	{ "<a@[256.1.1.1]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[1.2.3]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[1.2.3.4.5]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[1.2.3.1234]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[1..2.3]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[1.2.3.4>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[IPv6:2001:DB8::1]>", 0, ADDRESS_OK, "a@[IPv6:2001:db8::1]" },
	{ "<a@[ipv6:::1]>", 0, ADDRESS_OK, "a@[IPv6:::1]" },
	{ "<a@[IPv6:::ffff:192.0.2.1]>", 0, ADDRESS_OK, "a@[IPv6:::ffff:192.0.2.1]" },
	{ "<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[IPv6:zz::1]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[IPv6:]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[x400:foo]>", 0, ADDRESS_ERR_LITERAL, NULL },
	{ "<a@[192.0.2.1].com>", 0, ADDRESS_ERR_LITERAL, NULL },
	/* brackets */
	{ "user@example.com", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ "<user@example.com", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ "user@example.com>", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ "", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ "<", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ ">", 0, ADDRESS_ERR_BRACKETS, NULL },
	{ "< user@example.com>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<user@example.com >", 0, ADDRESS_ERR_DOMAIN, NULL },
	{ "<<a@b>>", 0, ADDRESS_ERR_LOCAL, NULL },
	/* UTF-8 (RFC 6531) */
	{ "<j\xc3\xb6rg@example.com>", U, ADDRESS_OK, "j\xc3\xb6rg@example.com" },
	{ "<j\xc3\xb6rg@example.com>", 0, ADDRESS_ERR_NEED_SMTPUTF8, NULL },
	{ "<a@b\xc3\xbc\x63her.example>", U, ADDRESS_OK, "a@b\xc3\xbc\x63her.example" },
	{ "<a@b\xc3\xbc\x63her.example>", 0, ADDRESS_ERR_NEED_SMTPUTF8, NULL },
	{ "<a@B\xc3\x9c\x43HER.example>", U, ADDRESS_OK, "a@b\xc3\x9c\x63her.example" },
	{ "<\"\xe7\x94\xa8 \xe6\x88\xb7\"@x>", U, ADDRESS_OK, "\"\xe7\x94\xa8 \xe6\x88\xb7\"@x" },
	{ "<\xf0\x9f\x98\x80@x>", U, ADDRESS_OK, "\xf0\x9f\x98\x80@x" },
	{ "<\xc3@x>", U, ADDRESS_ERR_BAD_UTF8, NULL },
	{ "<\xc0\xaf@x>", U, ADDRESS_ERR_BAD_UTF8, NULL },	/* overlong */
	{ "<\xed\xa0\x80@x>", U, ADDRESS_ERR_BAD_UTF8, NULL },	/* surrogate */
	{ "<\xf4\x90\x80\x80@x>", U, ADDRESS_ERR_BAD_UTF8, NULL }, /* > U+10FFFF */
	{ "<\xff@x>", U, ADDRESS_ERR_BAD_UTF8, NULL },
	{ "<\xc3@x>", 0, ADDRESS_ERR_BAD_UTF8, NULL },
	{ "<a@\x80>", U, ADDRESS_ERR_BAD_UTF8, NULL },
	{ "<\"\\\xc3\xb6\"@x>", U, ADDRESS_ERR_LOCAL, NULL },
	/* control octets */
	{ "<a\rb@x>", 0, ADDRESS_ERR_LOCAL, NULL },
	{ "<a@x\n>", 0, ADDRESS_ERR_DOMAIN, NULL },
};

/* A string of n (< 256) copies of c, from a ring of 8 static buffers. */
static char *
rep(char c, size_t n)
{
	static char ring[8][256];
	static unsigned next;
	char *s = ring[next++ % 8];

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
test_paths(void)
{
	struct address *a = address_new();
	struct str *out = str_new(0, 0);
	size_t i;

	test_begin("address_parse_path table");
	for (i = 0; i < N_ELEMENTS(path_cases); i++) {
		const struct path_case *c = &path_cases[i];
		enum address_error err;

		err = address_parse_path(c->in, strlen(c->in), c->flags, a);
		if (err != c->err) {
			printf("# case %zu <%s>: got %d (%s), want %d\n", i,
			    c->in, err, address_error_str(err), c->err);
			TEST_ASSERT(err == c->err);
			continue;
		}
		if (err != ADDRESS_OK) {
			TEST_ASSERT(a->null && str_len(a->local) == 0 &&
			    str_len(a->domain) == 0);
			continue;
		}
		str_clear(out);
		TEST_ASSERT(address_canonical(a, out) == 0);
		TEST_ASSERT_STR(str_c(out), c->canon);
	}
	str_free(&out);
	address_free(&a);
	address_free(&a);
	test_end();
}

/* Parse the canonical form back and compare (the round-trip contract). */
static void
test_round_trip(void)
{
	struct address *a = address_new(), *b = address_new();
	struct str *out = str_new(0, 0);
	size_t i;

	test_begin("canonical form parses back to the same address");
	for (i = 0; i < N_ELEMENTS(path_cases); i++) {
		const struct path_case *c = &path_cases[i];
		unsigned f = c->flags | N | D;

		if (c->err != ADDRESS_OK)
			continue;
		TEST_ASSERT(address_parse_path(c->in, strlen(c->in), c->flags,
		    a) == ADDRESS_OK);
		str_clear(out);
		TEST_ASSERT(address_canonical(a, out) == 0);
		TEST_ASSERT(address_parse_mailbox(str_c(out), str_len(out), f,
		    b) == ADDRESS_OK);
		TEST_ASSERT(address_equal(a, b));
		TEST_ASSERT(str_len(a->local) == str_len(b->local) &&
		    memcmp(str_c(a->local), str_c(b->local),
		    str_len(a->local)) == 0);
		TEST_ASSERT(a->null == b->null && a->utf8 == b->utf8);
	}
	str_free(&out);
	address_free(&a);
	address_free(&b);
	test_end();
}

static void
test_lengths(void)
{
	struct address *a = address_new();
	struct str *s = str_new(0, 0);
	char *l64 = rep('l', 64), *l65 = rep('l', 65), *lab63 = rep('d', 63),
	    *lab64 = rep('d', 64);
	int i;

	test_begin("length limits 64/63/255/256");
	str_printf(s, "<%s@x>", l64);
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) == ADDRESS_OK);
	TEST_ASSERT(str_len(a->local) == 64);
	str_clear(s);
	str_printf(s, "<%s@x>", l65);
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_LOCAL_TOO_LONG);
	/* the limit counts the quoted form as written */
	str_clear(s);
	str_printf(s, "<\"%s\"@x>", rep('q', 62));
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) == ADDRESS_OK);
	str_clear(s);
	str_printf(s, "<\"%s\"@x>", rep('q', 63));
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_LOCAL_TOO_LONG);
	/* label 63 ok, 64 not */
	str_clear(s);
	str_printf(s, "<a@%s.com>", lab63);
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) == ADDRESS_OK);
	str_clear(s);
	str_printf(s, "<a@%s.com>", lab64);
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_DOMAIN_TOO_LONG);
	/* domain of exactly 255: 4 x 63 labels = 255 with 3 dots */
	str_clear(s);
	str_printf(s, "%s.%s.%s.%s", lab63, lab63, lab63, lab63);
	TEST_ASSERT(str_len(s) == 255);
	TEST_ASSERT(address_parse_domain(str_c(s), str_len(s), 0, NULL) ==
	    ADDRESS_OK);
	str_append_cstr(s, "d");
	TEST_ASSERT(address_parse_domain(str_c(s), str_len(s), 0, NULL) ==
	    ADDRESS_ERR_DOMAIN_TOO_LONG);
	/* whole path: 256 with brackets is ok, 257 is too long */
	str_clear(s);
	str_printf(s, "<a@%s.%s.%s.%s>", lab63, lab63, rep('e', 62),
	    rep('f', 61));
	TEST_ASSERT(str_len(s) == 256);
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) == ADDRESS_OK);
	str_clear(s);
	str_printf(s, "<ab@%s.%s.%s.%s>", lab63, lab63, rep('e', 62),
	    rep('f', 61));
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_PATH_TOO_LONG);
	/* a long route counts against the path */
	str_clear(s);
	str_append_c(s, '<');
	for (i = 0; i < 30; i++)
		str_printf(s, "%s@relay%d.example", i ? "," : "", i);
	str_append_cstr(s, ":a@b>");
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_PATH_TOO_LONG);
	/* a huge input is refused before it is scanned */
	str_clear(s);
	str_append_c(s, '<');
	for (i = 0; i < 100000; i++)
		str_append_c(s, 'a');
	str_append_cstr(s, "@b>");
	TEST_ASSERT(address_parse_path(str_c(s), str_len(s), 0, a) ==
	    ADDRESS_ERR_PATH_TOO_LONG);
	TEST_ASSERT(address_parse_mailbox(str_c(s) + 1, str_len(s) - 2, 0, a) ==
	    ADDRESS_ERR_PATH_TOO_LONG);
	str_free(&s);
	address_free(&a);
	test_end();
}

static void
test_nul(void)
{
	struct address *a = address_new();
	static const char in1[] = "<a\0b@x>";
	static const char in2[] = "<ab@x\0y>";
	static const char in3[] = "<\"a\0b\"@x>";
	static const char in4[] = "<a@[1.2.3.4\0]>";
	static const char in5[] = "<a@[IPv6:::1\0]>";

	test_begin("NUL anywhere is refused (input is pointer+length)");
	TEST_ASSERT(address_parse_path(in1, sizeof(in1) - 1, 0, a) != ADDRESS_OK);
	TEST_ASSERT(address_parse_path(in2, sizeof(in2) - 1, 0, a) != ADDRESS_OK);
	TEST_ASSERT(address_parse_path(in3, sizeof(in3) - 1, 0, a) != ADDRESS_OK);
	TEST_ASSERT(address_parse_path(in4, sizeof(in4) - 1, 0, a) != ADDRESS_OK);
	TEST_ASSERT(address_parse_path(in5, sizeof(in5) - 1, 0, a) != ADDRESS_OK);
	/* not NUL-terminated input: parse only the first len octets */
	TEST_ASSERT(address_parse_path("<a@b>XXXX", 5, 0, a) == ADDRESS_OK);
	TEST_ASSERT_STR(str_c(a->domain), "b");
	address_free(&a);
	test_end();
}

static void
test_mailbox(void)
{
	struct address *a = address_new();
	struct str *out = str_new(0, 0);

	test_begin("address_parse_mailbox");
	TEST_ASSERT(address_parse_mailbox("", 0, 0, a) == ADDRESS_ERR_NULL);
	TEST_ASSERT(address_parse_mailbox("", 0, N, a) == ADDRESS_OK && a->null);
	TEST_ASSERT(address_parse_mailbox("u@D", 3, 0, a) == ADDRESS_OK &&
	    !a->null);
	TEST_ASSERT_STR(str_c(a->domain), "d");
	TEST_ASSERT(address_parse_mailbox("<u@d>", 5, 0, a) == ADDRESS_ERR_LOCAL);
	TEST_ASSERT(address_parse_mailbox("Postmaster", 10, P, a) == ADDRESS_OK);
	TEST_ASSERT(address_parse_mailbox("root", 4, 0, a) ==
	    ADDRESS_ERR_NO_DOMAIN);
	TEST_ASSERT(address_parse_mailbox("root", 4, D, a) == ADDRESS_OK);
	address_canonical(a, out);
	TEST_ASSERT_STR(str_c(out), "root");
	/* canonical output respects the str maximum */
	str_free(&out);
	out = str_new(0, 4);
	TEST_ASSERT(address_parse_mailbox("abcd@e", 6, 0, a) == ADDRESS_OK);
	TEST_ASSERT(address_canonical(a, out) == -1 && errno == E2BIG);
	TEST_ASSERT(str_len(out) == 0);
	TEST_ASSERT(address_parse_mailbox("\"a b\"", 5, D, a) == ADDRESS_OK);
	TEST_ASSERT(address_canonical(a, out) == -1 && str_len(out) == 0);
	str_free(&out);
	address_free(&a);
	test_end();
}

static void
test_misc(void)
{
	struct address *a = address_new(), *b = address_new();
	size_t ul, dl;
	const char *d;
	char dom[] = "ExAmPle.COM";
	struct str *out = str_new(0, 0);

	test_begin("split detail, lower-casing, equality, quoting");
	TEST_ASSERT(address_split_detail("user+box", 8, "+", &ul, &d, &dl));
	TEST_ASSERT(ul == 4 && dl == 3 && memcmp(d, "box", 3) == 0);
	TEST_ASSERT(address_split_detail("user+a+b", 8, "+", &ul, &d, &dl));
	TEST_ASSERT(ul == 4 && dl == 3 && memcmp(d, "a+b", 3) == 0);
	TEST_ASSERT(address_split_detail("user-box", 8, "+-", &ul, &d, &dl));
	TEST_ASSERT(ul == 4);
	TEST_ASSERT(address_split_detail("user+", 5, "+", &ul, &d, &dl));
	TEST_ASSERT(ul == 4 && dl == 0);
	TEST_ASSERT(!address_split_detail("user", 4, "+", &ul, &d, &dl));
	TEST_ASSERT(ul == 4 && dl == 0);
	TEST_ASSERT(!address_split_detail("+box", 4, "+", &ul, &d, &dl));
	TEST_ASSERT(ul == 4 && dl == 0);
	TEST_ASSERT(!address_split_detail("user+box", 8, "", &ul, &d, &dl));
	TEST_ASSERT(!address_split_detail("user+box", 8, NULL, &ul, &d, &dl));
	TEST_ASSERT(!address_split_detail("us\0+box", 3, "+", &ul, &d, &dl));

	address_domain_lower(dom, strlen(dom));
	TEST_ASSERT_STR(dom, "example.com");

	address_parse_path("<Joe@A.b>", 9, 0, a);
	address_parse_path("<Joe@a.B>", 9, 0, b);
	TEST_ASSERT(address_equal(a, b));
	address_parse_path("<joe@a.b>", 9, 0, b);
	TEST_ASSERT(!address_equal(a, b));
	address_parse_path("<>", 2, N, b);
	TEST_ASSERT(!address_equal(a, b));
	address_clear(a);
	TEST_ASSERT(address_equal(a, b));
	address_parse_path("<x@y>", 5, 0, a);
	address_copy(b, a);
	TEST_ASSERT(address_equal(a, b) && !b->null);

	TEST_ASSERT(address_quote_local("a.b", 3, out) == 0);
	TEST_ASSERT(address_quote_local("a b", 3, out) == 0);
	TEST_ASSERT(address_quote_local("", 0, out) == 0);
	TEST_ASSERT(address_quote_local("\"\\", 2, out) == 0);
	TEST_ASSERT_STR(str_c(out), "a.b\"a b\"\"\"\"\\\"\\\\\"");

	TEST_ASSERT(strcmp(address_error_str(ADDRESS_ERR_DOMAIN), "bad domain") == 0);
	TEST_ASSERT(strcmp(address_error_str((enum address_error)99),
	    "unknown address error") == 0);
	for (int e = ADDRESS_OK; e <= ADDRESS_ERR_BAD_UTF8; e++)
		TEST_ASSERT(strcmp(address_error_str((enum address_error)e),
		    "unknown address error") != 0);
	str_free(&out);
	address_free(&a);
	address_free(&b);
	test_end();
}

static void
test_utf8_len(void)
{
	test_begin("address_utf8_len");
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xc3\xa4", 2) == 2);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xc3\xa4", 1) == 0);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xe2\x82\xac", 3) == 3);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xe0\x80\x80", 3) == 0);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xf0\x80\x80\x80", 4) == 0);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xf4\x8f\xbf\xbf", 4) == 4);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xc3\x28", 2) == 0);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\x80", 1) == 0);
	TEST_ASSERT(address_utf8_len((const unsigned char *)"\xc1\x81", 2) == 0);
	test_end();
}

/* ------------------------------------------------------------ RFC 5322 */

struct list_case {
	const char *in;
	unsigned flags;
	int ret;
	/* expected items as "display|group|canonical" separated by "\n" */
	const char *items;
	size_t bad;
};

static const struct list_case list_cases[] = {
	{ "a@b.c", 0, 0, "||a@b.c", 0 },
	{ "  a@B.C  ", 0, 0, "||a@b.c", 0 },
	{ "a@b, c@d", 0, 0, "||a@b\n||c@d", 0 },
	{ "Joe Q. Public <john.q.public@example.com>", 0, 0,
	    "Joe Q. Public||john.q.public@example.com", 0 },
	{ "\"Joe Q. Public\" <john.q.public@example.com>", 0, 0,
	    "Joe Q. Public||john.q.public@example.com", 0 },
	{ "\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", 0, 0,
	    "Giant; \"Big\" Box||sysservices@example.net", 0 },
	{ "<a@b>", 0, 0, "||a@b", 0 },
	{ "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>", 0, 0,
	    "Mary Smith||mary@x.test\n||jdoe@example.org\nWho?||one@y.test", 0 },
	{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", 0, 0,
	    "Ed Jones|A Group|c@a.test\n|A Group|joe@where.test\nJohn|A Group|jdoe@one.test", 0 },
	{ "undisclosed-recipients:;", 0, 0, "", 0 },
	{ "Undisclosed recipients:;, x@y", 0, 0, "||x@y", 0 },
	{ "g: a@b; , h: c@d ;", 0, 0, "|g|a@b\n|h|c@d", 0 },
	{ "g: a@b", 0, 0, "|g|a@b", 0 },	/* unterminated group tolerated */
	{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 0, 0,
	    "Pete||pete@silly.test", 0 },
	{ "(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;", 0, 0,
	    "", 0 },
	{ "a@b (Joe Bloggs)", 0, 0, "Joe Bloggs||a@b", 0 },
	{ "a@b (Joe (nested) Bloggs)", 0, 0, "Joe (nested) Bloggs||a@b", 0 },
	{ "\"john doe\"@example.com", 0, 0, "||\"john doe\"@example.com", 0 },
	{ "\"john\"@example.com", 0, 0, "||john@example.com", 0 },
	/* obsolete forms */
	{ "john . doe @ example . com", 0, 0, "||john.doe@example.com", 0 },
	{ "john.\"q\".doe@example.com", 0, 0, "||john.q.doe@example.com", 0 },
	{ "Joe <@relay1,@relay2:joe@example.com>", 0, 0, "Joe||joe@example.com", 0 },
	{ ",,a@b,,,c@d,", 0, 0, "||a@b\n||c@d", 0 },
	{ "Joe Q. Public <a@b>", 0, 0, "Joe Q. Public||a@b", 0 },
	{ "root", 0, 0, "||root", 0 },
	{ "root, Admin <admin>", 0, 0, "||root\nAdmin||admin", 0 },
	{ "a@b,\r\n\tc@d", 0, 0, "||a@b\n||c@d", 0 },
	{ "\"folded\r\n name\" <a@b>", 0, 0, "folded name||a@b", 0 },
	{ "a@[192.0.2.1]", 0, 0, "||a@[192.0.2.1]", 0 },
	{ "a@[ 192.0.2.1 ]", 0, 0, "||a@[192.0.2.1]", 0 },
	{ "a@[IPv6:::1]", 0, 0, "||a@[IPv6:::1]", 0 },
	/* UTF-8 */
	{ "J\xc3\xb6rg <j\xc3\xb6rg@example.com>", ADDRESS_LIST_UTF8, 0,
	    "J\xc3\xb6rg||j\xc3\xb6rg@example.com", 0 },
	{ "J\xc3\xb6rg <jorg@example.com>", 0, 0, "J\xc3\xb6rg||jorg@example.com", 0 },
	{ "j\xc3\xb6rg@example.com", 0, -1, "", 0 },
	{ "j\xc3\xb6rg@example.com, a@b", ADDRESS_LIST_SKIP_BAD, 0, "||a@b", 1 },
	{ "a@b\xc3\xbc.de", ADDRESS_LIST_UTF8, 0, "||a@b\xc3\xbc.de", 0 },
	{ "\xc3@x", ADDRESS_LIST_UTF8, -1, "", 0 },
	/* errors */
	{ "a@b c@d", 0, -1, "", 0 },
	{ "a@b c@d, e@f", ADDRESS_LIST_SKIP_BAD, 0, "||e@f", 1 },
	{ "<a@b", 0, -1, "", 0 },
	{ "Joe <>", 0, -1, "", 0 },
	{ "Joe <a@b> junk", 0, -1, "", 0 },
	{ "\"unterminated <a@b>", 0, -1, "", 0 },
	{ "(unterminated a@b", 0, -1, "", 0 },
	{ "a@[unterminated", 0, -1, "", 0 },
	{ "a@[1.2.[3].4]", 0, -1, "", 0 },
	{ "a@[a\\]b]", 0, -1, "", 0 },
	{ "a@b_c.d", 0, -1, "", 0 },
	{ "a@b_c.d, x@y", ADDRESS_LIST_SKIP_BAD, 0, "||x@y", 1 },
	{ "a..b@c", 0, -1, "", 0 },
	{ "@b", 0, -1, "", 0 },
	{ "a@", 0, -1, "", 0 },
	{ "a@.b", 0, -1, "", 0 },
	{ "Joe <@r1,@r2 joe@x>", 0, -1, "", 0 },
	{ "g: bad bad; a@b", ADDRESS_LIST_SKIP_BAD, 0, "||a@b", 1 },
	{ "g: x@y, bad bad; a@b", ADDRESS_LIST_SKIP_BAD, 0, "|g|x@y\n||a@b", 1 },
	{ "a@b\001", 0, -1, "", 0 },
	{ "\"a\001b\"@c", 0, -1, "", 0 },
};

static void
format_items(const struct address_list *l, struct str *out)
{
	size_t i;

	str_clear(out);
	for (i = 0; i < l->count; i++) {
		if (i > 0)
			str_append_c(out, '\n');
		str_append_str(out, l->items[i].display);
		str_append_c(out, '|');
		str_append_str(out, l->items[i].group);
		str_append_c(out, '|');
		address_canonical(l->items[i].addr, out);
	}
}

static void
test_lists(void)
{
	struct address_list *l = address_list_new();
	struct str *out = str_new(0, 0);
	size_t i;

	test_begin("address_list_parse table");
	for (i = 0; i < N_ELEMENTS(list_cases); i++) {
		const struct list_case *c = &list_cases[i];
		const char *error = NULL;
		int ret;

		address_list_clear(l);
		ret = address_list_parse(c->in, strlen(c->in), c->flags, 0, l,
		    &error);
		if (ret != c->ret) {
			printf("# list case %zu [%s]: ret %d (%s)\n", i, c->in,
			    ret, error ? error : "");
			TEST_ASSERT(ret == c->ret);
			continue;
		}
		if (ret < 0) {
			TEST_ASSERT(error != NULL);
			continue;
		}
		format_items(l, out);
		if (strcmp(str_c(out), c->items) != 0)
			printf("# list case %zu [%s]\n", i, c->in);
		TEST_ASSERT_STR(str_c(out), c->items);
		TEST_ASSERT(l->bad == c->bad);
	}
	address_list_free(&l);
	address_list_free(&l);
	str_free(&out);
	test_end();
}

static void
test_list_limits(void)
{
	struct address_list *l = address_list_new();
	struct str *in = str_new(0, 0), *out = str_new(0, 0);
	const char *error, *fmt_in;
	int i;

	test_begin("address_list limits, append, format");
	for (i = 0; i < 5; i++)
		str_printf(in, "%su%d@x", i ? ", " : "", i);
	TEST_ASSERT(address_list_parse(str_c(in), str_len(in), 0, 3, l,
	    &error) == -1);
	TEST_ASSERT(l->count == 3 && strcmp(error, "too many addresses") == 0);
	/* SKIP_BAD does not skip past the limit */
	address_list_clear(l);
	TEST_ASSERT(address_list_parse(str_c(in), str_len(in),
	    ADDRESS_LIST_SKIP_BAD, 3, l, &error) == -1);
	/* appending */
	address_list_clear(l);
	TEST_ASSERT(address_list_parse("a@b", 3, 0, 0, l, &error) == 0);
	TEST_ASSERT(address_list_parse("c@d", 3, 0, 0, l, &error) == 0);
	TEST_ASSERT(l->count == 2);
	/* deep comments */
	str_clear(in);
	for (i = 0; i < 100; i++)
		str_append_c(in, '(');
	for (i = 0; i < 100; i++)
		str_append_c(in, ')');
	str_append_cstr(in, "a@b");
	TEST_ASSERT(address_list_parse(str_c(in), str_len(in), 0, 0, l,
	    &error) == -1);
	/* NUL */
	TEST_ASSERT(address_list_parse("a@b\0c", 5, 0, 0, l, &error) == -1);
	TEST_ASSERT(address_list_parse("\"a\0\"@b", 6, 0, 0, l, &error) == -1);
	TEST_ASSERT(address_list_parse("(a\0)a@b", 7, 0, 0, l, &error) == -1);
	/* local part too long after canonicalisation */
	str_clear(in);
	str_printf(in, "%s@x", rep('a', 65));
	TEST_ASSERT(address_list_parse(str_c(in), str_len(in), 0, 0, l,
	    &error) == -1);
	/* format */
	address_list_clear(l);
	fmt_in = "\"A \\\"B\\\"\" <a b@c>, \"x y\"@z";
	TEST_ASSERT(address_list_parse(fmt_in, strlen(fmt_in), 0, 0, l,
	    &error) == -1);
	fmt_in = "\"A \\\"B\\\"\" <a@c>, \"x y\"@z";
	TEST_ASSERT(address_list_parse(fmt_in, strlen(fmt_in), 0, 0, l,
	    &error) == 0);
	TEST_ASSERT(l->count == 2);
	address_list_item_format(&l->items[0], out);
	str_append_c(out, ',');
	address_list_item_format(&l->items[1], out);
	TEST_ASSERT_STR(str_c(out), "\"A \\\"B\\\"\" <a@c>,\"x y\"@z");
	str_free(&out);
	out = str_new(0, 5);
	TEST_ASSERT(address_list_item_format(&l->items[0], out) == -1);
	TEST_ASSERT(str_len(out) == 0);
	str_free(&out);
	str_free(&in);
	address_list_free(&l);
	test_end();
}

int
main(void)
{
	test_paths();
	test_round_trip();
	test_lengths();
	test_nul();
	test_mailbox();
	test_misc();
	test_utf8_len();
	test_lists();
	test_list_limits();
	return test_done();
}
