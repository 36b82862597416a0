/* SPDX-License-Identifier: MIT */
/*
 * cleanup_proto_test - the cleanup wire codec: round trips, input in
 * small pieces, and every decoder error path
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_proto.h"
#include "str.h"
#include "test.h"

static struct queue_attr test_attrs[] = {
	{ "fullname", "Alice Liddell" },
	{ "uid", "1000" },
};

static void
fill_envelope(struct queue_envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->arrival.tv_sec = 1700000000;
	env->arrival.tv_usec = 123456;
	env->sender = "alice@example.org";
	env->envid = "env-1";
	env->ret = SMTP_RET_HDRS;
	env->body = SMTP_BODY_8BITMIME;
	env->smtputf8 = true;
	env->client_name = "client.example";
	env->client_addr = "192.0.2.1";
	env->helo = NULL;
	env->protocol = "ESMTPSA";
	env->auth_user = "alice";
	env->attrs = test_attrs;
	env->nattrs = N_ELEMENTS(test_attrs);
}

static bool
same_opt(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
test_envelope_round_trip(void)
{
	struct queue_envelope env;
	struct cleanup_proto_envelope *got;
	struct str *out = str_new(64, 0);
	const char *error;
	const void *payload;
	size_t len, used;
	int type;

	test_begin("envelope round trip");
	fill_envelope(&env);
	TEST_ASSERT(cleanup_proto_put_envelope(out, &env, &error) == 0);
	TEST_ASSERT(cleanup_proto_split(str_c(out), str_len(out), &type,
	    &payload, &len, &used, &error) == 1);
	TEST_ASSERT(type == CLEANUP_REC_ENVELOPE);
	TEST_ASSERT(used == str_len(out));
	TEST_ASSERT(cleanup_proto_get_envelope(payload, len, &got, &error) == 0);
	if (got != NULL) {
		TEST_ASSERT(got->env.arrival.tv_sec == 1700000000);
		TEST_ASSERT(got->env.arrival.tv_usec == 123456);
		TEST_ASSERT_STR(got->env.sender, "alice@example.org");
		TEST_ASSERT(same_opt(got->env.envid, "env-1"));
		TEST_ASSERT(got->env.ret == SMTP_RET_HDRS);
		TEST_ASSERT(got->env.body == SMTP_BODY_8BITMIME);
		TEST_ASSERT(got->env.smtputf8);
		TEST_ASSERT(same_opt(got->env.client_name, "client.example"));
		TEST_ASSERT(same_opt(got->env.client_addr, "192.0.2.1"));
		TEST_ASSERT(got->env.helo == NULL);
		TEST_ASSERT(same_opt(got->env.protocol, "ESMTPSA"));
		TEST_ASSERT(same_opt(got->env.auth_user, "alice"));
		TEST_ASSERT(got->env.nattrs == 2);
		TEST_ASSERT_STR(got->env.attrs[0].name, "fullname");
		TEST_ASSERT_STR(got->env.attrs[0].value, "Alice Liddell");
		TEST_ASSERT_STR(got->env.attrs[1].value, "1000");
	}
	cleanup_proto_envelope_free(&got);
	cleanup_proto_envelope_free(&got);	/* NULL is fine */
	str_free(&out);
	test_end();
}

static void
test_envelope_encode_errors(void)
{
	struct queue_envelope env;
	struct str *out = str_new(64, 0);
	struct str *big = str_new(QUEUE_FILE_TEXT_MAX + 2, 0);
	const char *error;
	size_t i;

	test_begin("envelope encoder refuses bad fields, output unchanged");
	fill_envelope(&env);
	(void)str_append_c(out, 'x');
	env.sender = NULL;
	TEST_ASSERT(cleanup_proto_put_envelope(out, &env, &error) < 0);
	fill_envelope(&env);
	env.ret = (enum smtp_ret)7;
	TEST_ASSERT(cleanup_proto_put_envelope(out, &env, &error) < 0);
	fill_envelope(&env);
	for (i = 0; i <= QUEUE_FILE_TEXT_MAX; i++)
		(void)str_append_c(big, 'a');
	env.helo = str_c(big);
	TEST_ASSERT(cleanup_proto_put_envelope(out, &env, &error) < 0 &&
	    errno == E2BIG);
	fill_envelope(&env);
	env.nattrs = QUEUE_FILE_ATTR_MAX + 1;
	TEST_ASSERT(cleanup_proto_put_envelope(out, &env, &error) < 0);
	TEST_ASSERT(str_len(out) == 1);
	str_free(&big);
	str_free(&out);
	test_end();
}

static void
test_rcpt_and_status(void)
{
	struct queue_rcpt r, got;
	struct str *out = str_new(64, 0), *storage = str_new(64, 0);
	struct str *reason = str_new(64, 0);
	const char *error;
	const void *payload;
	size_t len, used;
	unsigned status;
	uint32_t v;
	int type;

	test_begin("recipient, status, flags round trips");
	memset(&r, 0, sizeof(r));
	r.address = "bob@example.com";
	r.orcpt_type = "rfc822";
	r.orcpt = "Bob@Example.COM";
	r.notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
	TEST_ASSERT(cleanup_proto_put_rcpt(out, &r, &error) == 0);
	TEST_ASSERT(cleanup_proto_split(str_c(out), str_len(out), &type,
	    &payload, &len, &used, &error) == 1 && type == CLEANUP_REC_RCPT);
	TEST_ASSERT(cleanup_proto_get_rcpt(payload, len, storage, &got,
	    &error) == 0);
	TEST_ASSERT_STR(got.address, "bob@example.com");
	TEST_ASSERT(same_opt(got.orcpt_type, "rfc822"));
	TEST_ASSERT(same_opt(got.orcpt, "Bob@Example.COM"));
	TEST_ASSERT(got.original == NULL);
	TEST_ASSERT(got.notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE));

	str_clear(out);
	TEST_ASSERT(cleanup_proto_put_status(out, 2, "5.3.4 too big") == 0);
	TEST_ASSERT(cleanup_proto_split(str_c(out), str_len(out), &type,
	    &payload, &len, &used, &error) == 1 && type == CLEANUP_REC_STATUS);
	TEST_ASSERT(cleanup_proto_get_status(payload, len, &status, reason,
	    &error) == 0);
	TEST_ASSERT(status == 2);
	TEST_ASSERT_STR(str_c(reason), "5.3.4 too big");

	str_clear(out);
	TEST_ASSERT(cleanup_proto_put_u32(out, CLEANUP_REC_FLAGS, 0x05) == 0);
	TEST_ASSERT(cleanup_proto_split(str_c(out), str_len(out), &type,
	    &payload, &len, &used, &error) == 1 && type == CLEANUP_REC_FLAGS);
	TEST_ASSERT(cleanup_proto_get_u32(payload, len, &v, &error) == 0 &&
	    v == 5);
	TEST_ASSERT(cleanup_proto_get_u32(payload, 3, &v, &error) < 0);
	str_free(&out);
	str_free(&storage);
	str_free(&reason);
	test_end();
}

static void
test_split_in_pieces(void)
{
	struct queue_envelope env;
	struct queue_rcpt r;
	struct str *stream = str_new(64, 0), *in = str_new(64, 0);
	const char *error;
	const void *payload;
	size_t len, used, i, records = 0;
	int type, types[8];
	bool ok = true;

	test_begin("records fed one octet at a time");
	fill_envelope(&env);
	memset(&r, 0, sizeof(r));
	r.address = "bob@example.com";
	(void)cleanup_proto_put_u32(stream, CLEANUP_REC_FLAGS, 1);
	(void)cleanup_proto_put_envelope(stream, &env, &error);
	(void)cleanup_proto_put_rcpt(stream, &r, &error);
	(void)cleanup_proto_put(stream, CLEANUP_REC_DATA, "Subject: x\r\n\r\n", 14);
	(void)cleanup_proto_put(stream, CLEANUP_REC_END, NULL, 0);
	for (i = 0; i < str_len(stream); i++) {
		(void)str_append_c(in, str_c(stream)[i]);
		for (;;) {
			int rc = cleanup_proto_split(str_c(in), str_len(in),
			    &type, &payload, &len, &used, &error);

			if (rc < 0)
				ok = false;
			if (rc != 1)
				break;
			if (records < N_ELEMENTS(types))
				types[records] = type;
			records++;
			str_delete_head(in, used);
		}
	}
	TEST_ASSERT(ok);
	TEST_ASSERT(records == 5);
	TEST_ASSERT(str_len(in) == 0);
	TEST_ASSERT(types[0] == 'F' && types[1] == 'E' && types[2] == 'r' &&
	    types[3] == 'D' && types[4] == '.');
	str_free(&stream);
	str_free(&in);
	test_end();
}

static void
test_header_errors(void)
{
	unsigned char hdr[5];
	const char *error;
	size_t len, max;
	int type;

	test_begin("header checks: unknown type, too long for the type");
	memcpy(hdr, "?\0\0\0\1", 5);
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) < 0);
	memcpy(hdr, "D\0\1\0\1", 5);	/* 65537 > 64 KiB */
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) < 0);
	memcpy(hdr, "D\0\1\0\0", 5);	/* exactly 64 KiB */
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) == 0 &&
	    len == 65536);
	memcpy(hdr, ".\0\0\0\1", 5);
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) < 0);
	memcpy(hdr, "I\0\0\0\x13", 5);	/* QUEUE_ID_LEN + 1 */
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) < 0);
	memcpy(hdr, "E\xff\xff\xff\xff", 5);
	TEST_ASSERT(cleanup_proto_header(hdr, &type, &len, &error) < 0);
	TEST_ASSERT(!cleanup_proto_max('x', &max));
	test_end();
}

/* encode an envelope payload, then damage it in one way */
static void
test_envelope_decode_errors(void)
{
	struct queue_envelope env;
	struct cleanup_proto_envelope *got = NULL;
	struct str *out = str_new(64, 0), *bad = str_new(64, 0);
	const char *error;
	const char *p;
	size_t n, i;
	bool all_failed = true;

	test_begin("envelope decoder: truncation, NUL, enums, trailing octets");
	fill_envelope(&env);
	(void)cleanup_proto_put_envelope(out, &env, &error);
	p = str_c(out) + CLEANUP_PROTO_HDR_SIZE;
	n = str_len(out) - CLEANUP_PROTO_HDR_SIZE;
	/* Every proper prefix is malformed. */
	for (i = 0; i < n; i++) {
		if (cleanup_proto_get_envelope(p, i, &got, &error) == 0) {
			all_failed = false;
			cleanup_proto_envelope_free(&got);
		}
	}
	TEST_ASSERT(all_failed);
	TEST_ASSERT(got == NULL);
	/* A trailing octet. */
	str_set(bad, p, n);
	(void)str_append_c(bad, 0);
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	/* The NUL after the sender replaced: offset 8 (time) + 4 + 17. */
	str_set(bad, p, n);
	str_data(bad)[8 + 4 + 17] = 'x';
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	/* A NUL inside the sender. */
	str_set(bad, p, n);
	str_data(bad)[8 + 4 + 3] = '\0';
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	/* A sender length beyond the payload. */
	str_set(bad, p, n);
	str_data(bad)[8] = '\x7f';
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	/* ret out of range: after time, sender, opt envid (1+4+5+1). */
	str_set(bad, p, n);
	str_data(bad)[8 + 4 + 18 + 11] = 9;
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	/* An "opt" marker that is neither 0 nor 1. */
	str_set(bad, p, n);
	str_data(bad)[8 + 4 + 18] = 2;
	TEST_ASSERT(cleanup_proto_get_envelope(str_c(bad), str_len(bad), &got,
	    &error) < 0);
	TEST_ASSERT(got == NULL);
	str_free(&out);
	str_free(&bad);
	test_end();
}

static void
test_status_decode_errors(void)
{
	struct str *reason = str_new(16, 0);
	unsigned status;
	const char *error;

	test_begin("status decoder errors");
	TEST_ASSERT(cleanup_proto_get_status("\0\0\0\3\0\0\0\0\0", 9, &status,
	    reason, &error) < 0);		/* status 3 */
	TEST_ASSERT(cleanup_proto_get_status("\0\0\0\0\0\0\0\1x", 9, &status,
	    reason, &error) < 0);		/* no NUL */
	TEST_ASSERT(cleanup_proto_get_status("\0\0\0\0\0\0\0\0\0", 9, &status,
	    reason, &error) == 0 && status == 0 && str_len(reason) == 0);
	TEST_ASSERT(cleanup_proto_get_status("\0\0\0\0\0\0\0\0\0\0", 10,
	    &status, reason, &error) < 0);	/* trailing */
	str_free(&reason);
	test_end();
}

int
main(void)
{
	test_envelope_round_trip();
	test_envelope_encode_errors();
	test_rcpt_and_status();
	test_split_in_pieces();
	test_header_errors();
	test_envelope_decode_errors();
	test_status_decode_errors();
	return test_done();
}
