/* SPDX-License-Identifier: MIT */
/*
 * nntp_proto_fuzz - libFuzzer target: NNTP commands, replies, message-IDs, blocks
 *
 * DESCRIPTION
 *	Each input line goes through nntp_cmd_parse (the argument of
 *	AUTHINFO USER/PASS must be the non-empty rest of the line),
 *	nntp_reply_parse and nntp_msgid_ok; the whole input is received as
 *	a dot-terminated block (byte 0 picks a size limit), and the
 *	block's data, dot-encoded and received again, must come back
 *	unchanged (round trip).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nntp_proto.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *lf;
	struct str *blk = str_new(0, 0), *enc = str_new(0, 0),
	    *again = str_new(0, 0);
	struct nntp_block b, b2;
	struct nntp_cmd cmd;
	const char *text;
	size_t n, text_len, i, max = size > 0 ? (size_t)data[0] * 16 : 0;

	nntp_block_init(&b, blk, max);
	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		n = lf != NULL ? (size_t)(lf - p) + 1 : (size_t)(end - p);
		if (nntp_cmd_parse(&cmd, p, n > 0 && lf != NULL ? n - 1 : n) ==
		    NNTP_PROTO_OK) {
			size_t ln = n > 0 && lf != NULL ? n - 1 : n;

			for (i = 0; i < cmd.nargs; i++)
				if (cmd.args[i].p < p || cmd.args[i].p +
				    cmd.args[i].len > p + n)
					abort();
			/* AUTHINFO USER/PASS: the argument runs to the end */
			if (cmd.verb == NNTP_VERB_AUTHINFO && cmd.nargs == 2 &&
			    cmd.args[0].len == 4 && (strncasecmp(cmd.args[0].p,
			    "USER", 4) == 0 || strncasecmp(cmd.args[0].p, "PASS",
			    4) == 0) && (cmd.args[1].len == 0 || cmd.args[1].p +
			    cmd.args[1].len != p + ln || cmd.args[1].p[0] == ' ' ||
			    cmd.args[1].p[0] == '\t'))
				abort();
		}
		if (nntp_reply_parse(p, n, &text, &text_len) >= 0 &&
		    text + text_len > p + n)
			abort();
		(void)nntp_msgid_ok(p, n > 0 && lf != NULL ? n - 1 : n);
		(void)nntp_block_line(&b, p, n);
		p += n;
	}
	if (!b.too_big && !b.bad) {
		/* round trip: encode what was received, receive it again */
		if (nntp_dot_encode(str_c(blk), str_len(blk), enc) < 0)
			abort();
		nntp_block_init(&b2, again, 0);
		p = str_c(enc);
		end = p + str_len(enc);
		while (p < end && !b2.done) {
			lf = memchr(p, '\n', (size_t)(end - p));
			if (lf == NULL)
				abort();
			(void)nntp_block_line(&b2, p, (size_t)(lf - p) + 1);
			p = lf + 1;
		}
		if (!b2.done || p != end || str_len(again) != str_len(blk) ||
		    memcmp(str_c(again), str_c(blk), str_len(blk)) != 0)
			abort();
	}
	str_free(&blk);
	str_free(&enc);
	str_free(&again);
	return 0;
}
