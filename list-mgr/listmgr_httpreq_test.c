/* SPDX-License-Identifier: MIT */
/*
 * listmgr_httpreq_test - unit tests of the HTTP request head and form
 * parsing of list-mgr's one-click unsubscribe endpoint
 */
#include <string.h>

#include "str.h"
#include "test.h"

#include "listmgr.h"

/* list-mgr.c (main: not linked into unit tests) defines these */
struct listmgr_settings listmgr_settings;
struct __res_state listmgr_res;

bool
listmgr_rcpt_ok(const char *local, const char *domain)
{
	(void)local;
	(void)domain;
	return false;
}

int
listmgr_deliver(const struct listmgr_msg *msg, const char *local,
    const char *domain, struct str *reply)
{
	(void)msg;
	(void)local;
	(void)domain;
	str_set_cstr(reply, "550 5.1.1 test");
	return 550;
}

static const struct {
	const char *head;
	int code;
} heads[] = {
	{ "GET /unsubscribe?list=a HTTP/1.1\r\nHost: x\r\n\r\n", 0 },
	{ "GET /u HTTP/1.0\r\n\r\n", 0 },		/* 1.0: no Host needed */
	{ "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n"
	    "Content-Length: 26\r\n\r\n", 0 },	/* equal duplicates */
	{ "GET /u HTTP/1.1\r\n\r\n", 400 },		/* no Host */
	{ "GET /u HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	{ "GET /u HTTP/1.1\r\nHost: x\r\n", 400 },	/* no empty line */
	{ "GET /u HTTP/1.1\r\nHost: x\r\n\r\nextra", 400 },
	{ "GET /u HTTP/1.1\nHost: x\n\n", 400 },	/* bare LF */
	{ "GET /u HTTP/1.1\r\nHost: x\r\r\n\r\n", 400 },	/* bare CR */
	{ "GET /u HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400 },
	{ "GET /u HTTP/1.1\r\nHost : x\r\n\r\n", 400 },	/* space before : */
	{ "GET /u HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", 400 },
	{ "GET /u HTTP/1.1\r\nHost: x\x01\r\n\r\n", 400 },
	{ "GET  /u HTTP/1.1\r\nHost: x\r\n\r\n", 400 },	/* two spaces */
	{ "GET u HTTP/1.1\r\nHost: x\r\n\r\n", 400 },	/* not origin-form */
	{ "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "G(T /u HTTP/1.1\r\nHost: x\r\n\r\n", 400 },	/* not a token */
	{ "GET /u HTTP/1.1 \r\nHost: x\r\n\r\n", 400 },
	{ "GET /u HTTP/11\r\nHost: x\r\n\r\n", 400 },
	{ "GET /u HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n", 413 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\n", 400 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999"
	    "\r\n\r\n", 400 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	    501 },
	{ "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", 400 },	/* smuggling shape */
	{ "\r\n", 400 },
	{ "", 400 },
};

static void
test_heads(void)
{
	size_t i;

	test_begin("request heads");
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		struct listmgr_http_req req;
		int rc;

		listmgr_http_req_init(&req);
		rc = listmgr_http_parse_head(heads[i].head,
		    strlen(heads[i].head), &req);
		if (!TEST_ASSERT(rc == heads[i].code))
			test_assert_strfail(heads[i].head, "(this head)",
			    __FILE__, __LINE__);
		listmgr_http_req_free(&req);
	}
	test_end();
}

static void
test_fields(void)
{
	struct listmgr_http_req req;
	struct str *h = str_new(0, 0);
	static const char ok[] = "POST /lists/unsubscribe?list=team&member="
	    "bob%40x HTTP/1.1\r\nhOsT:   lists.example  \r\nContent-Type: "
	    "application/x-www-form-urlencoded\r\nContent-Length:26\r\n\r\n";
	int i;

	test_begin("request fields");
	listmgr_http_req_init(&req);
	TEST_ASSERT(listmgr_http_parse_head(ok, sizeof(ok) - 1, &req) == 0);
	TEST_ASSERT_STR(str_c(req.method), "POST");
	TEST_ASSERT_STR(str_c(req.path), "/lists/unsubscribe");
	TEST_ASSERT_STR(str_c(req.query), "list=team&member=bob%40x");
	TEST_ASSERT_STR(str_c(req.content_type),
	    "application/x-www-form-urlencoded");
	TEST_ASSERT(req.http11 && req.have_host && req.have_length &&
	    req.content_length == 26);
	listmgr_http_req_free(&req);

	/* LISTMGR_HTTP_FIELDS_MAX fields pass, one more is 431 */
	str_append_cstr(h, "GET /u HTTP/1.1\r\nHost: x\r\n");
	for (i = 1; i < LISTMGR_HTTP_FIELDS_MAX; i++)
		str_printf(h, "X-%d: y\r\n", i);
	listmgr_http_req_init(&req);
	str_append_cstr(h, "\r\n");
	TEST_ASSERT(listmgr_http_parse_head(str_c(h), str_len(h), &req) == 0);
	listmgr_http_req_free(&req);
	str_truncate(h, str_len(h) - 2);
	str_append_cstr(h, "X-last: y\r\n\r\n");
	listmgr_http_req_init(&req);
	TEST_ASSERT(listmgr_http_parse_head(str_c(h), str_len(h), &req) == 431);
	listmgr_http_req_free(&req);
	str_free(&h);
	test_end();
}

static void
test_params(void)
{
	struct str *v = str_new(0, 0);
	const char *q;

	test_begin("form parameters");
	q = "list=team&member=b%40x.org&token=ab";
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "member", v) == 1);
	TEST_ASSERT_STR(str_c(v), "b@x.org");
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "token", v) == 1);
	TEST_ASSERT_STR(str_c(v), "ab");
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "nope", v) == 0);
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "lis", v) == 0);
	q = "List-Unsubscribe=One-Click";
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "List-Unsubscribe", v) == 1);
	TEST_ASSERT_STR(str_c(v), "One-Click");
	q = "&&a=1+2&&";
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == 1);
	TEST_ASSERT_STR(str_c(v), "1 2");
	q = "a&b=";
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == 1);
	TEST_ASSERT_STR(str_c(v), "");
	q = "a=1&a=1";			/* twice: ambiguous */
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	TEST_ASSERT(str_len(v) == 0);
	q = "a=%4";			/* cut escape */
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	q = "a=%zz";
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	q = "a=x%00y";			/* a NUL */
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	q = "a=x%0Ay";			/* a line break */
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	q = "b=%ZZ&a=1";		/* malformed elsewhere: all malformed */
	TEST_ASSERT(listmgr_http_param(q, strlen(q), "a", v) == -1);
	q = "a=1";			/* not NUL-terminated at len */
	TEST_ASSERT(listmgr_http_param(q, 2, "a", v) == 1);
	TEST_ASSERT_STR(str_c(v), "");
	TEST_ASSERT(listmgr_http_param("", 0, "a", v) == 0);
	str_free(&v);
	test_end();
}

int
main(void)
{
	test_heads();
	test_fields();
	test_params();
	return test_done();
}
