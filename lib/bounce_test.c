/* SPDX-License-Identifier: MIT */
/*
 * bounce_test - unit tests for the DSN generator
 *
 * Builds failure, delay and success reports over an in-memory original
 * and checks the frame (headers, multipart/report, boundaries), the
 * delivery-status fields, RET=HDRS / size limit / BINARYMIME (headers
 * only), folding of long diagnostics, and read errors.
 */
#include <string.h>

#include "bounce.h"
#include "str.h"
#include "test.h"

static const char original[] =
    "From: a@example.org\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "body line\r\n";

static ssize_t
mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const char *p = ctx;
	size_t n = strlen(p);

	if (off >= n)
		return 0;
	if (len > n - off)
		len = n - (size_t)off;
	memcpy(buf, p + off, len);
	return (ssize_t)len;
}

static ssize_t
bad_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	(void)buf;
	(void)len;
	(void)off;
	return -1;
}

static void
init_info(struct bounce_info *info)
{
	memset(info, 0, sizeof(*info));
	info->queue_id = "0123456789ABCDEFGH";
	info->reporting_mta = "mx.example.net";
	info->from = "MAILER-DAEMON@mx.example.net";
	info->to = "a@example.org";
	info->message_id = "x.dsn@mx.example.net";
	info->arrival.tv_sec = 1700000000;
	info->now = 1700000100;
	info->envid = "ENV1";
	info->read = mem_read;
	info->read_ctx = (void *)(uintptr_t)original;
	info->content_length = strlen(original);
	info->size_limit = 50000;
}

static bool
has(const struct str *s, const char *needle)
{
	return strstr(str_c(s), needle) != NULL;
}

static void
test_failure(void)
{
	struct bounce_info info;
	struct bounce_rcpt r[2];
	struct str *out = str_new(0, 0);
	enum smtp_body body;
	const char *error = NULL;

	test_begin("failure DSN with the full original");
	init_info(&info);
	memset(r, 0, sizeof(r));
	r[0].address = "bob@example.net";
	r[0].orcpt_type = "rfc822";
	r[0].orcpt = "Bob@Example.NET";
	r[0].action = BOUNCE_FAILED;
	r[0].status = "5.1.1";
	r[0].diag = "550 5.1.1 no such user";
	r[0].diag_smtp = true;
	r[0].remote_mta = "lmtp.example.net";
	r[1].address = "carol@example.net";
	r[1].action = BOUNCE_FAILED;
	r[1].status = "5.7.1";
	r[1].diag = "refused";
	TEST_ASSERT(bounce_build(&info, r, 2, out, &body, &error) == 0);
	TEST_ASSERT(body == SMTP_BODY_7BIT);
	TEST_ASSERT(has(out, "Subject: Undelivered Mail Returned to Sender\r\n"));
	TEST_ASSERT(has(out, "To: <a@example.org>\r\n"));
	TEST_ASSERT(has(out, "Auto-Submitted: auto-replied\r\n"));
	TEST_ASSERT(has(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;"));
	TEST_ASSERT(has(out, "Content-Type: message/delivery-status\r\n"));
	TEST_ASSERT(has(out, "Reporting-MTA: dns; mx.example.net\r\n"));
	TEST_ASSERT(has(out, "Original-Envelope-Id: ENV1\r\n"));
	TEST_ASSERT(has(out, "Arrival-Date: "));
	TEST_ASSERT(has(out, "Original-Recipient: rfc822; Bob@Example.NET\r\n"));
	TEST_ASSERT(has(out, "Final-Recipient: rfc822; bob@example.net\r\n"));
	TEST_ASSERT(has(out, "Action: failed\r\n"));
	TEST_ASSERT(has(out, "Status: 5.1.1\r\n"));
	TEST_ASSERT(has(out, "Remote-MTA: dns; lmtp.example.net\r\n"));
	TEST_ASSERT(has(out, "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
	TEST_ASSERT(has(out, "Diagnostic-Code: X-Postern; refused\r\n"));
	TEST_ASSERT(has(out, "Content-Type: message/rfc822\r\n"));
	TEST_ASSERT(has(out, "body line\r\n"));
	TEST_ASSERT(!has(out, "\n\n") && !has(out, "\r\r"));
	/* the closing boundary ends it */
	TEST_ASSERT(str_len(out) > 4 && memcmp(str_c(out) + str_len(out) - 4,
	    "--\r\n", 4) == 0);
	str_free(&out);
	test_end();
}

static void
test_headers_only(void)
{
	struct bounce_info info;
	struct bounce_rcpt r;
	struct str *out = str_new(0, 0);
	enum smtp_body body;
	const char *error = NULL;

	test_begin("RET=HDRS, size limit, binary, delay and success: headers only");
	init_info(&info);
	memset(&r, 0, sizeof(r));
	r.address = "bob@example.net";
	r.action = BOUNCE_FAILED;
	r.status = "5.0.0";
	r.diag = "x";
	info.ret = SMTP_RET_HDRS;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(has(out, "Content-Type: text/rfc822-headers\r\n"));
	TEST_ASSERT(has(out, "Subject: hi\r\n") && !has(out, "body line"));

	str_clear(out);
	info.ret = SMTP_RET_FULL;
	info.size_limit = 10;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(has(out, "text/rfc822-headers") && !has(out, "body line"));

	str_clear(out);
	info.size_limit = 50000;
	info.body = SMTP_BODY_BINARYMIME;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(has(out, "text/rfc822-headers"));

	str_clear(out);
	info.body = SMTP_BODY_8BITMIME;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(body == SMTP_BODY_8BITMIME && has(out, "message/rfc822"));

	str_clear(out);
	r.action = BOUNCE_DELAYED;
	r.status = "4.4.1";
	r.will_retry_until = 1700500000;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(has(out, "Subject: Delayed Mail (still being retried)\r\n"));
	TEST_ASSERT(has(out, "Action: delayed\r\n"));
	TEST_ASSERT(has(out, "Will-Retry-Until: "));
	TEST_ASSERT(has(out, "text/rfc822-headers") && !has(out, "body line"));

	str_clear(out);
	r.action = BOUNCE_DELIVERED;
	r.status = "2.0.0";
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	TEST_ASSERT(has(out, "Subject: Successful Mail Delivery Report\r\n"));
	TEST_ASSERT(has(out, "Action: delivered\r\n"));
	TEST_ASSERT(!has(out, "Will-Retry-Until"));
	str_free(&out);
	test_end();
}

static void
test_fold_and_errors(void)
{
	struct bounce_info info;
	struct bounce_rcpt r;
	struct str *out = str_new(0, 0), *diag = str_new(0, 0);
	enum smtp_body body;
	const char *error = NULL, *p, *line;
	int i;

	test_begin("long diagnostics fold; control octets are replaced; read errors");
	init_info(&info);
	for (i = 0; i < 150; i++)
		str_append_cstr(diag, "word ");
	str_append_cstr(diag, "\x01\r\nend");
	memset(&r, 0, sizeof(r));
	r.address = "bob@example.net";
	r.action = BOUNCE_FAILED;
	r.status = "5.0.0";
	r.diag = str_c(diag);
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) == 0);
	/* every line is short */
	for (line = p = str_c(out); *p != '\0'; p++) {
		if (*p == '\n') {
			TEST_ASSERT(p - line < 998);
			line = p + 1;
		}
	}
	TEST_ASSERT(has(out, "???end"));
	str_clear(out);
	info.read = bad_read;
	TEST_ASSERT(bounce_build(&info, &r, 1, out, &body, &error) < 0);
	TEST_ASSERT(str_len(out) == 0);
	TEST_ASSERT_STR(bounce_action_str(BOUNCE_EXPANDED), "expanded");
	str_free(&diag);
	str_free(&out);
	test_end();
}

int
main(void)
{
	test_failure();
	test_headers_only();
	test_fold_and_errors();
	return test_done();
}
