/* SPDX-License-Identifier: MIT */
/*
 * smtp_proto_fuzz - libFuzzer target for smtp_proto.c
 *
 * The first two octets choose the advertised extensions and the flags;
 * the rest is split at LF into command lines, each parsed as a command
 * and fed to the reply parser. Checks beyond "no crash, no leak": a parsed
 * MAIL/RCPT path has a canonical form, and xtext encode/decode round-trip
 * every line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "macros.h"
#include "smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd *cmd;
	struct smtp_reply *reply;
	struct str *enc, *dec;
	const char *p, *end, *error;
	unsigned ext, flags;
	uint64_t size_max;
	bool reply_open = true;

	if (size < 2)
		return 0;
	ext = (unsigned)data[0] | ((unsigned)(data[1] & 0x03) << 8);
	flags = (data[1] >> 2) & SMTP_PROTO_STRICT;
	p = (const char *)data + 2;
	end = (const char *)data + size;
	cmd = smtp_cmd_new();
	reply = smtp_reply_new();
	enc = str_new(0, 0);
	dec = str_new(0, 0);
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		enum smtp_proto_error err;
		enum smtp_reply_result rr;

		err = smtp_cmd_parse(cmd, p, len, ext, (data[1] & 0x80) != 0,
		    flags);
		if (err == SMTP_PROTO_OK && (cmd->verb == SMTP_VERB_MAIL ||
		    cmd->verb == SMTP_VERB_RCPT)) {
			str_clear(enc);
			ASSERT(address_canonical(cmd->addr, enc) == 0);
		}
		{
			int code;
			const char *enh;

			smtp_proto_error_reply(err, &code, &enh);
			ASSERT(code >= 250 && code <= 555 && enh != NULL);
		}
		if (!reply_open)
			smtp_reply_clear(reply);
		rr = smtp_reply_add_line(reply, p, len, &error);
		reply_open = rr == SMTP_REPLY_MORE;
		if (rr == SMTP_REPLY_DONE)
			(void)smtp_reply_ehlo(reply, &size_max);

		str_clear(enc);
		str_clear(dec);
		ASSERT(smtp_proto_xtext_encode(p, len, enc) == 0);
		ASSERT(smtp_proto_xtext_decode(str_c(enc), str_len(enc),
		    dec) == 0);
		ASSERT(str_len(dec) == len && memcmp(str_c(dec), p, len) == 0);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	str_free(&enc);
	str_free(&dec);
	smtp_reply_free(&reply);
	smtp_cmd_free(&cmd);
	return 0;
}
