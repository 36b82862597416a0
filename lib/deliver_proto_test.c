/* SPDX-License-Identifier: MIT */
/*
 * deliver_proto_test - unit tests for the qmgr <-> agent protocol
 *
 * Round trips of requests and responses, decoding fed through the
 * incremental splitter in small pieces, and every error path of the
 * strict decoder (truncation, bad types, lengths, order, NULs, ranges).
 */
#include <string.h>

#include "deliver_proto.h"
#include "smtp_proto.h"
#include "str.h"
#include "test.h"

#define ID "0123456789ABCDEFGH"

static void
make_request(struct str *out)
{
	struct deliver_rcpt rcpts[2] = {
		{ 0, "a@example.org", NULL, NULL, 0, ID "/0" },
		{ 7, "b@example.org", "rfc822", "orig@example.org",
		    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, "" },
	};
	struct deliver_request req = {
		.queue_id = ID, .queue = QUEUE_ACTIVE,
		.nexthop = "unix:/tmp/lmtp", .sender = "s@example.org",
		.rcpts = rcpts, .nrcpts = 2,
	};
	const char *error = NULL;

	TEST_ASSERT(deliver_request_encode(&req, out, &error) == 0);
}

static void
test_request_round_trip(void)
{
	struct str *buf = str_new(0, 0);
	struct deliver_request *req;
	const char *error = NULL;
	size_t used = 0;

	test_begin("request round trip");
	make_request(buf);
	TEST_ASSERT(deliver_proto_complete(str_c(buf), str_len(buf), &used,
	    &error) == 1 && used == str_len(buf));
	req = deliver_request_decode(str_c(buf), str_len(buf), &error);
	TEST_ASSERT(req != NULL);
	if (req != NULL) {
		TEST_ASSERT_STR(req->queue_id, ID);
		TEST_ASSERT(req->queue == QUEUE_ACTIVE);
		TEST_ASSERT_STR(req->nexthop, "unix:/tmp/lmtp");
		TEST_ASSERT_STR(req->sender, "s@example.org");
		TEST_ASSERT(req->nrcpts == 2);
		TEST_ASSERT(req->rcpts[0].index == 0);
		TEST_ASSERT(req->rcpts[0].orcpt == NULL);
		TEST_ASSERT_STR(req->rcpts[0].token, ID "/0");
		TEST_ASSERT(req->rcpts[1].index == 7);
		TEST_ASSERT_STR(req->rcpts[1].orcpt_type, "rfc822");
		TEST_ASSERT_STR(req->rcpts[1].orcpt, "orig@example.org");
		TEST_ASSERT(req->rcpts[1].notify ==
		    (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE));
		TEST_ASSERT_STR(req->rcpts[1].token, "");
	}
	deliver_request_free(&req);
	deliver_request_free(&req);	/* NULL is fine */
	str_free(&buf);
	test_end();
}

static void
test_response_round_trip(void)
{
	struct deliver_result results[3] = {
		{ 0, DELIVER_STATUS_DELIVERED, DELIVER_RES_F_REMOTE, "2.0.0",
		    "250 2.0.0 ok", NULL },
		{ 7, DELIVER_STATUS_DEFERRED, 0, "4.4.1", "connection refused", NULL },
		{ 9, DELIVER_STATUS_BOUNCED, DELIVER_RES_F_REMOTE, "5.1.1",
		    "550 5.1.1 no such user", "mx1.example.net" },
	};
	struct deliver_response res = {
		.relay = "127.0.0.1[127.0.0.1]:24", .results = results,
		.nresults = 3,
	};
	struct deliver_response *got;
	struct str *buf = str_new(0, 0);
	const char *error = NULL;

	test_begin("response round trip");
	TEST_ASSERT(deliver_response_encode(&res, buf, &error) == 0);
	got = deliver_response_decode(str_c(buf), str_len(buf), &error);
	TEST_ASSERT(got != NULL);
	if (got != NULL) {
		TEST_ASSERT_STR(got->relay, "127.0.0.1[127.0.0.1]:24");
		TEST_ASSERT(got->nresults == 3);
		TEST_ASSERT(got->results[1].status == DELIVER_STATUS_DEFERRED);
		TEST_ASSERT_STR(got->results[2].dsn, "5.1.1");
		TEST_ASSERT_STR(got->results[2].text, "550 5.1.1 no such user");
		TEST_ASSERT(got->results[0].flags == DELIVER_RES_F_REMOTE);
		/* remote_mta is optional: absent, and present */
		TEST_ASSERT(got->results[0].remote_mta == NULL);
		TEST_ASSERT(got->results[2].remote_mta != NULL &&
		    strcmp(got->results[2].remote_mta, "mx1.example.net") == 0);
	}
	deliver_response_free(&got);

	/* an empty response (no relay, no results) is valid */
	res.relay = NULL;
	res.nresults = 0;
	str_clear(buf);
	TEST_ASSERT(deliver_response_encode(&res, buf, &error) == 0);
	got = deliver_response_decode(str_c(buf), str_len(buf), &error);
	TEST_ASSERT(got != NULL && got->nresults == 0 &&
	    strcmp(got->relay, "") == 0);
	deliver_response_free(&got);

	/* a bad dsn is refused by the encoder */
	results[0].dsn = "2.0";
	res.nresults = 1;
	TEST_ASSERT(deliver_response_encode(&res, buf, &error) < 0);
	str_free(&buf);
	test_end();
}

static void
test_split_pieces(void)
{
	struct str *buf = str_new(0, 0);
	const char *error = NULL;
	size_t n, used;

	test_begin("incomplete input needs more, byte by byte");
	make_request(buf);
	for (n = 0; n < str_len(buf); n++)
		TEST_ASSERT(deliver_proto_complete(str_c(buf), n, &used,
		    &error) == 0);
	TEST_ASSERT(deliver_proto_complete(str_c(buf), n, &used, &error) == 1);
	for (n = 0; n < str_len(buf); n++)
		TEST_ASSERT(deliver_request_decode(str_c(buf), n, &error) ==
		    NULL);
	str_free(&buf);
	test_end();
}

static void
test_errors(void)
{
	struct str *buf = str_new(0, 0), *bad = str_new(0, 0);
	struct deliver_rcpt rcpt = { 0, "a@b", NULL, NULL, 0, "" };
	struct deliver_request req = {
		.queue_id = "bad id", .queue = QUEUE_ACTIVE, .nexthop = "x",
		.sender = "", .rcpts = &rcpt, .nrcpts = 1,
	};
	const char *error = NULL;
	char *p;

	test_begin("encoder and decoder errors");
	TEST_ASSERT(deliver_request_encode(&req, buf, &error) < 0 &&
	    str_len(buf) == 0);
	req.queue_id = ID;
	req.nrcpts = 0;
	TEST_ASSERT(deliver_request_encode(&req, buf, &error) < 0);
	req.nrcpts = 1;
	rcpt.orcpt = "x";
	TEST_ASSERT(deliver_request_encode(&req, buf, &error) < 0);
	rcpt.orcpt = NULL;
	TEST_ASSERT(deliver_request_encode(&req, buf, &error) == 0);

	/* data after the end record */
	str_set(bad, str_c(buf), str_len(buf));
	str_append_c(bad, 'x');
	TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
	    &error) == NULL);
	/* unknown record type */
	str_set(bad, str_c(buf), str_len(buf));
	str_data(bad)[0] = 'Z';
	TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
	    &error) == NULL);
	TEST_ASSERT_STR(error, "unknown record type");
	/* a length over the maximum */
	str_set(bad, str_c(buf), str_len(buf));
	str_data(bad)[1] = 0x7f;
	TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
	    &error) == NULL);
	/* a NUL terminator replaced: the queue ID string */
	str_set(bad, str_c(buf), str_len(buf));
	p = str_data(bad) + 5 + 4 + 18;
	TEST_ASSERT(*p == '\0');
	*p = 'x';
	TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
	    &error) == NULL);
	/* a bad queue number */
	str_set(bad, str_c(buf), str_len(buf));
	str_data(bad)[5 + 4 + 19] = (char)QUEUE_COUNT;
	TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
	    &error) == NULL);
	TEST_ASSERT_STR(error, "bad queue name");
	/* a response is not a request */
	{
		struct deliver_response res = { .relay = "r", .nresults = 0 };

		str_clear(bad);
		TEST_ASSERT(deliver_response_encode(&res, bad, &error) == 0);
		TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
		    &error) == NULL);
		/* and a request is not a response */
		TEST_ASSERT(deliver_response_decode(str_c(buf), str_len(buf),
		    &error) == NULL);
	}
	/* recipient before header: drop the 'Q' record */
	{
		size_t qlen = 5 + ((size_t)(unsigned char)str_c(buf)[3] << 8 |
		    (unsigned char)str_c(buf)[4]);

		str_set(bad, str_c(buf) + qlen, str_len(buf) - qlen);
		TEST_ASSERT(deliver_request_decode(str_c(bad), str_len(bad),
		    &error) == NULL);
	}
	TEST_ASSERT(deliver_dsn_ok("2.0.0") && deliver_dsn_ok("5.7.123"));
	TEST_ASSERT(!deliver_dsn_ok("3.0.0") && !deliver_dsn_ok("2.0") &&
	    !deliver_dsn_ok("2.0.0 ") && !deliver_dsn_ok("2.1234.0") &&
	    !deliver_dsn_ok(""));
	TEST_ASSERT_STR(deliver_status_str(DELIVER_STATUS_BOUNCED), "bounced");
	str_free(&bad);
	str_free(&buf);
	test_end();
}

int
main(void)
{
	test_request_round_trip();
	test_response_round_trip();
	test_split_pieces();
	test_errors();
	return test_done();
}
