/* SPDX-License-Identifier: MIT */
/*
 * dsn_parse_test - RFC 3464 reports and non-standard bounces, fed whole
 * and cut at every length (no crash, no result past the input)
 */
#include <string.h>

#include "dsn_parse.h"
#include "test.h"

static const char report[] =
    "From: MAILER-DAEMON@mx.example.org\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: text/plain\r\n\r\nsorry\r\n"
    "--B\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.example.org\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.org\r\n"
    "Original-Recipient: rfc822;bob@example.org\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>:\r\n"
    "  user unknown\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@example.org\r\n"
    "Action: delayed\r\n"
    "Status: 4.4.1\r\n"
    "\r\n"
    "--B--\r\n";

static const char qmail[] =
    "From: MAILER-DAEMON@q.example.net\r\n"
    "Subject: failure notice\r\n\r\n"
    "Hi. This is the qmail-send program at q.example.net.\r\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
    "<dave@q.example.net>:\r\n"
    "Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
    "--- Below this line is a copy of the message.\r\n";

static const char exim[] =
    "From: Mail Delivery System <Mailer-Daemon@e.example.com>\n"
    "Subject: Mail delivery failed: returning message to sender\n\n"
    "This message was created automatically by mail delivery software.\n\n"
    "A message that you sent could not be delivered to one or more of its\n"
    "recipients. This is a permanent error. The following address(es) failed:\n\n"
    "  erin@e.example.com\n"
    "    SMTP error from remote mail server after RCPT TO:<erin@e.example.com>:\n"
    "    550 5.1.1 No such user\n";

static const char notbounce[] =
    "From: alice@example.org\r\nSubject: hello\r\n\r\nJust a note.\r\n";

int
main(void)
{
	static struct dsn_parse_result res;
	size_t i;

	test_begin("rfc 3464 report");
	dsn_parse(report, strlen(report), &res);
	TEST_ASSERT(res.is_report && res.is_bounce);
	TEST_ASSERT(res.count == 2);
	TEST_ASSERT_STR(res.rcpts[0].recipient, "bob@example.org");
	TEST_ASSERT(res.rcpts[0].action == DSN_ACTION_FAILED);
	TEST_ASSERT_STR(res.rcpts[0].status, "5.1.1");
	TEST_ASSERT(res.rcpts[0].hard);
	TEST_ASSERT(strstr(res.rcpts[0].diagnostic, "user unknown") != NULL);
	TEST_ASSERT_STR(res.rcpts[1].recipient, "carol@example.org");
	TEST_ASSERT(res.rcpts[1].action == DSN_ACTION_DELAYED);
	TEST_ASSERT(!res.rcpts[1].hard);
	test_end();

	test_begin("qmail");
	dsn_parse(qmail, strlen(qmail), &res);
	TEST_ASSERT(!res.is_report && res.is_bounce);
	TEST_ASSERT(res.count == 1);
	TEST_ASSERT_STR(res.rcpts[0].recipient, "dave@q.example.net");
	TEST_ASSERT(res.rcpts[0].hard);
	test_end();

	test_begin("exim");
	dsn_parse(exim, strlen(exim), &res);
	TEST_ASSERT(res.is_bounce && res.count >= 1);
	TEST_ASSERT_STR(res.rcpts[0].recipient, "erin@e.example.com");
	TEST_ASSERT(res.rcpts[0].hard);
	test_end();

	test_begin("not a bounce");
	dsn_parse(notbounce, strlen(notbounce), &res);
	TEST_ASSERT(!res.is_bounce && res.count == 0);
	test_end();

	test_begin("every prefix");
	for (i = 0; i <= strlen(report); i++) {
		dsn_parse(report, i, &res);
		TEST_ASSERT(res.count <= 2);
	}
	for (i = 0; i <= strlen(qmail); i++)
		dsn_parse(qmail, i, &res);
	test_end();
	return test_done();
}
