/* SPDX-License-Identifier: MIT */
/*
 * nntp_proto_test - unit tests for NNTP command, reply, message-ID and block syntax
 */
#include <string.h>

#include "nntp_proto.h"
#include "str.h"
#include "test.h"

static enum nntp_proto_error
parse(struct nntp_cmd *cmd, const char *line)
{
	return nntp_cmd_parse(cmd, line, strlen(line));
}

static void
test_commands(void)
{
	struct nntp_cmd cmd;
	char longline[600];

	test_begin("commands");
	TEST_ASSERT(parse(&cmd, "mode stream") == NNTP_PROTO_OK &&
	    cmd.verb == NNTP_VERB_MODE_STREAM);
	TEST_ASSERT(parse(&cmd, "MODE READER") == NNTP_PROTO_OK &&
	    cmd.verb == NNTP_VERB_MODE_READER);
	TEST_ASSERT(parse(&cmd, "MODE x") == NNTP_PROTO_OK &&
	    cmd.verb == NNTP_VERB_MODE_OTHER);
	TEST_ASSERT(parse(&cmd, "CHECK  \t<a@b>  ") == NNTP_PROTO_OK &&
	    cmd.verb == NNTP_VERB_CHECK && cmd.nargs == 1 &&
	    cmd.args[0].len == 5 && memcmp(cmd.args[0].p, "<a@b>", 5) == 0);
	TEST_ASSERT(parse(&cmd, "TAKETHIS") == NNTP_PROTO_SYNTAX);
	TEST_ASSERT(parse(&cmd, "IHAVE <a@b> extra") == NNTP_PROTO_SYNTAX);
	TEST_ASSERT(parse(&cmd, "QUIT now") == NNTP_PROTO_SYNTAX);
	TEST_ASSERT(parse(&cmd, "") == NNTP_PROTO_EMPTY);
	TEST_ASSERT(parse(&cmd, "   ") == NNTP_PROTO_EMPTY);
	TEST_ASSERT(parse(&cmd, "XYZZY") == NNTP_PROTO_UNKNOWN);
	TEST_ASSERT(parse(&cmd, "a b c d e f g") == NNTP_PROTO_SYNTAX);
	/* AUTHINFO USER/PASS: the rest of the line is one argument */
	TEST_ASSERT(parse(&cmd, "authinfo pass  a b  c d e f ") ==
	    NNTP_PROTO_OK && cmd.verb == NNTP_VERB_AUTHINFO &&
	    cmd.nargs == 2 && cmd.args[1].len == 13 &&
	    memcmp(cmd.args[1].p, "a b  c d e f ", 13) == 0);
	TEST_ASSERT(parse(&cmd, "AUTHINFO USER peer") == NNTP_PROTO_OK &&
	    cmd.nargs == 2 && cmd.args[1].len == 4);
	TEST_ASSERT(parse(&cmd, "AUTHINFO USER") == NNTP_PROTO_OK &&
	    cmd.nargs == 1);
	TEST_ASSERT(parse(&cmd, "AUTHINFO SASL PLAIN =") == NNTP_PROTO_OK &&
	    cmd.nargs == 3);
	TEST_ASSERT(parse(&cmd, "AUTHINFO SASL PLAIN a b") ==
	    NNTP_PROTO_SYNTAX);
	TEST_ASSERT(parse(&cmd, "AUTHINFO") == NNTP_PROTO_SYNTAX);
	TEST_ASSERT(parse(&cmd, "AUTHINFO PASS x\ty") == NNTP_PROTO_OK &&
	    cmd.args[1].len == 3);
	TEST_ASSERT(nntp_cmd_parse(&cmd, "QUIT\0x", 6) == NNTP_PROTO_BAD_CHAR);
	TEST_ASSERT(parse(&cmd, "QUIT\rx") == NNTP_PROTO_BAD_CHAR);
	memset(longline, 'A', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	TEST_ASSERT(parse(&cmd, longline) == NNTP_PROTO_TOO_LONG);
	TEST_ASSERT(nntp_proto_error_code(NNTP_PROTO_UNKNOWN) == 500);
	TEST_ASSERT(nntp_proto_error_code(NNTP_PROTO_SYNTAX) == 501);
	test_end();
}

static void
test_msgid(void)
{
	test_begin("message-ids");
	TEST_ASSERT(nntp_msgid_ok("<a@b>", 5));
	TEST_ASSERT(nntp_msgid_ok("<a.b+c@d.e>", 11));
	TEST_ASSERT(nntp_msgid_ok("<x@[1.2.3.4]>", 13));
	TEST_ASSERT(!nntp_msgid_ok("<a@b", 4));
	TEST_ASSERT(!nntp_msgid_ok("<ab>", 4));
	TEST_ASSERT(!nntp_msgid_ok("<a b@c>", 7));
	TEST_ASSERT(!nntp_msgid_ok("<.a@c>", 6));
	TEST_ASSERT(!nntp_msgid_ok("<a..b@c>", 8));
	TEST_ASSERT(!nntp_msgid_ok("<a@b>c>", 7));
	TEST_ASSERT(!nntp_msgid_ok("<a@[b]c]>", 9));
	TEST_ASSERT(!nntp_msgid_ok("<a@\x80>", 5));
	test_end();
}

static void
test_replies(void)
{
	const char *text;
	size_t len;

	test_begin("replies");
	TEST_ASSERT(nntp_reply_parse("240 ok\r\n", 8, &text, &len) == 240 &&
	    len == 2 && memcmp(text, "ok", 2) == 0);
	TEST_ASSERT(nntp_reply_parse("205", 3, &text, &len) == 205 && len == 0);
	TEST_ASSERT(nntp_reply_parse("24", 2, NULL, NULL) == -1);
	TEST_ASSERT(nntp_reply_parse("2400", 4, NULL, NULL) == -1);
	TEST_ASSERT(nntp_reply_parse("600 x", 5, NULL, NULL) == -1);
	test_end();
}

static void
test_block(void)
{
	struct str *data = str_new(0, 0), *enc = str_new(0, 0);
	struct nntp_block b;

	test_begin("blocks");
	nntp_block_init(&b, data, 0);
	TEST_ASSERT(!nntp_block_line(&b, "From: a\r\n", 9));
	TEST_ASSERT(!nntp_block_line(&b, "\r\n", 2));
	TEST_ASSERT(!nntp_block_line(&b, "..x\r\n", 5));
	TEST_ASSERT(nntp_block_line(&b, ".\r\n", 3) && b.done && !b.bad);
	TEST_ASSERT_STR(str_c(data), "From: a\r\n\r\n.x\r\n");
	/* limits and a NUL in the header */
	nntp_block_init(&b, data, 10);
	(void)nntp_block_line(&b, "A: b\0c\r\n", 8);
	(void)nntp_block_line(&b, "0123456789\r\n", 12);
	TEST_ASSERT(nntp_block_line(&b, ".\r\n", 3) && b.bad && b.too_big);
	/* encode */
	TEST_ASSERT(nntp_dot_encode(".a\r\nb\n.", 7, enc) == 0);
	TEST_ASSERT_STR(str_c(enc), "..a\r\nb\r\n..\r\n.\r\n");
	str_free(&data);
	str_free(&enc);
	test_end();
}

int
main(void)
{
	test_commands();
	test_msgid();
	test_replies();
	test_block();
	return test_done();
}
