/* SPDX-License-Identifier: MIT */
/*
 * pop3d_parse_fuzz - libFuzzer target for the POP3 command parser
 *
 * DESCRIPTION
 *	The input is split at LF into command lines (a CR before the LF
 *	removed, as the session does) and each goes through
 *	pop3_parse_command(), then the SASL helpers on the same bytes.
 *	Checks: a success has a known command and pointers inside the
 *	line, a failure has a reason; the PLAIN splitter's pieces lie in
 *	its input. ASan catches any read outside the line (each line is
 *	copied into a buffer of exactly its size).
 *
 *	The fuzz build links only this object and libpostern, so the
 *	parser source is included here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d_parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_inside(const char *base, size_t n, const char *p, size_t len)
{
	if (p == NULL && len == 0)
		return;
	if (p < base || p + len > base + n)
		abort();
}

static void
fuzz_line(const uint8_t *data, size_t n)
{
	struct pop3_cmd cmd;
	struct str *out;
	const char *a, *b, *c;
	size_t al, bl, cl;
	char *line = malloc(n > 0 ? n : 1);

	if (line == NULL)
		abort();
	memcpy(line, data, n);
	if (pop3_parse_command(line, n, &cmd)) {
		if (cmd.id == POP3_CMD_NONE || cmd.error != NULL ||
		    strcmp(pop3_cmd_name(cmd.id), "?") == 0)
			abort();
		fuzz_inside(line, n, cmd.arg, cmd.arg_len);
		fuzz_inside(line, n, cmd.arg2, cmd.arg2_len);
		if (cmd.nargs > 3)
			abort();
	} else if (cmd.id != POP3_CMD_NONE || cmd.error == NULL)
		abort();
	if (pop3_sasl_plain(line, n, &a, &al, &b, &bl, &c, &cl)) {
		fuzz_inside(line, n, a, al);
		fuzz_inside(line, n, b, bl);
		fuzz_inside(line, n, c, cl);
		if (bl == 0)
			abort();
	}
	out = str_new(0, 0);
	(void)pop3_base64_strict(line, n, out);
	str_free(&out);
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t start = 0, i, end;

	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		end = i;
		if (end > start && data[end - 1] == '\r')
			end--;
		fuzz_line(data + start, end - start);
		start = i + 1;
	}
	return 0;
}
