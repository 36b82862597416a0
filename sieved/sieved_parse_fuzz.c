/* SPDX-License-Identifier: MIT */
/*
 * sieved_parse_fuzz - libFuzzer target for the ManageSieve command parser
 *
 * DESCRIPTION
 *	The input is treated as what a client sends: it is cut into
 *	commands the way the session reads them (a line, and when
 *	sieved_literal_announce() says the line ends in {N} or {N+}, N
 *	more octets and the next line), bounded like the session bounds
 *	them, and each whole command goes through sieved_parse_command().
 *	Checks: a success has a known command, at most SIEVED_ARGS_MAX
 *	arguments lying inside the buffer; a failure has a reason;
 *	unquoting never grows a string; sieved_append_string() output
 *	parses back to the same octets. Each command is copied into a
 *	buffer of exactly its size, so ASan catches any read past it.
 *
 *	The fuzz build links only this object and libpostern, so the
 *	parser source is included here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieved_parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LITERAL_MAX	(64 * 1024)

static void
fuzz_command(const char *data, size_t n)
{
	struct sieved_cmd cmd;
	struct sieved_arg back;
	struct str *u = str_new(0, 0), *q = str_new(0, 0);
	const char *err;
	char *buf = malloc(n > 0 ? n : 1);
	unsigned i;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	if (sieved_parse_command(buf, n, &cmd)) {
		if (cmd.id == SIEVED_CMD_NONE || cmd.error != NULL ||
		    cmd.nargs > SIEVED_ARGS_MAX ||
		    strcmp(sieved_cmd_name(cmd.id), "?") == 0)
			abort();
		for (i = 0; i < cmd.nargs; i++) {
			if (cmd.args[i].number)
				continue;
			if (cmd.args[i].p < buf ||
			    cmd.args[i].p + cmd.args[i].n > buf + n)
				abort();
			sieved_unquote(&cmd.args[i], u);
			if (str_len(u) > cmd.args[i].n)
				abort();
			/* what we would send back parses to the same octets */
			str_clear(q);
			sieved_append_string(q, str_c(u), str_len(u));
			if (sieved_parse_args(str_c(q), str_len(q), &back, 1,
			    &err) != 1)
				abort();
			sieved_unquote(&back, q);
			if (str_len(q) != str_len(u) ||
			    memcmp(str_c(q), str_c(u), str_len(u)) != 0)
				abort();
		}
	} else if (cmd.id != SIEVED_CMD_NONE || cmd.error == NULL)
		abort();
	str_free(&u);
	str_free(&q);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t pos = 0, start, eol, end;
	uint64_t lit;
	int a;

	while (pos < size) {
		start = pos;
		for (;;) {
			for (eol = pos; eol < size && p[eol] != '\n'; eol++)
				;
			end = eol;
			if (end > pos && p[end - 1] == '\r')
				end--;
			if (end - pos > SIEVED_LINE_MAX)
				return 0;	/* the session says BYE */
			a = sieved_literal_announce(p + pos, end - pos, &lit);
			if (a <= 0 || lit > FUZZ_LITERAL_MAX || eol >= size) {
				/* the command ends at this line */
				fuzz_command(p + start, end - start);
				pos = eol + 1;
				break;
			}
			pos = eol + 1;
			if (lit > size - pos)
				return 0;	/* the client never finished */
			pos += (size_t)lit;
		}
	}
	return 0;
}
