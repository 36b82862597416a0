/* SPDX-License-Identifier: MIT */
/*
 * pop3d_parse - the POP3 command parser (RFC 1939, 2449, 2595, 5034)
 *
 * DESCRIPTION
 *	pop3_parse_command() turns one command line into a struct
 *	pop3_cmd: a keyword (case-insensitive, 3 or 4 letters) and its
 *	arguments, each separated by exactly one space as RFC 1939 says
 *	(trailing spaces are tolerated, since some clients send them).
 *	It checks the arguments' shape and count for every command, so
 *	the protocol code only checks state and message numbers. Numbers
 *	are digits only (no sign, no space), at most UINT32_MAX.
 *
 *	It is pure: no I/O, no allocation, input from (pointer, length),
 *	never beyond it. The libFuzzer target pop3d_parse_fuzz.c and the
 *	unit test pop3d_parse_test.c exercise it.
 *
 *	PASS takes the rest of the line, spaces included (RFC 1939 7
 *	allows servers to accept passwords with spaces); APOP is parsed
 *	but refused by the session (the user database keeps hashes only).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mime_decode.h"
#include "str.h"

#include "pop3d.h"

static const struct {
	const char *name;
	enum pop3_cmd_id id;
} pop3_cmds[] = {
	{ "USER", POP3_CMD_USER }, { "PASS", POP3_CMD_PASS },
	{ "APOP", POP3_CMD_APOP }, { "AUTH", POP3_CMD_AUTH },
	{ "STLS", POP3_CMD_STLS }, { "CAPA", POP3_CMD_CAPA },
	{ "QUIT", POP3_CMD_QUIT }, { "STAT", POP3_CMD_STAT },
	{ "LIST", POP3_CMD_LIST }, { "RETR", POP3_CMD_RETR },
	{ "DELE", POP3_CMD_DELE }, { "NOOP", POP3_CMD_NOOP },
	{ "RSET", POP3_CMD_RSET }, { "TOP", POP3_CMD_TOP },
	{ "UIDL", POP3_CMD_UIDL },
};

/* pop3_cmd_name - see pop3d.h */
const char *
pop3_cmd_name(enum pop3_cmd_id id)
{
	size_t i;

	for (i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (pop3_cmds[i].id == id)
			return pop3_cmds[i].name;
	return "?";
}

/* Argument words: split on single spaces, at most max of them. */
struct pop3_words {
	const char *w[3];
	size_t len[3];
	unsigned n;
};

/* parse_words - split p/n into at most max words; false on too many or empty words */
static bool
parse_words(const char *p, size_t n, unsigned max, struct pop3_words *out)
{
	size_t i = 0, start;

	out->n = 0;
	/* tolerate trailing spaces */
	while (n > 0 && p[n - 1] == ' ')
		n--;
	while (i < n) {
		if (out->n == max)
			return false;
		start = i;
		while (i < n && p[i] != ' ')
			i++;
		if (i == start)
			return false;	/* two spaces in a row */
		out->w[out->n] = p + start;
		out->len[out->n] = i - start;
		out->n++;
		if (i < n)
			i++;		/* the one space */
	}
	return true;
}

/* parse_number - a message number or line count: digits, <= UINT32_MAX */
static bool
parse_number(const char *p, size_t n, uint32_t *v_r)
{
	unsigned long v;

	if (n == 0 || n > 10 || !str_to_ulong(p, n, UINT32_MAX, &v))
		return false;
	*v_r = (uint32_t)v;
	return true;
}

static bool
parse_fail(struct pop3_cmd *cmd, const char *why)
{
	cmd->id = POP3_CMD_NONE;
	cmd->error = why;
	return false;
}

/* pop3_parse_command - see pop3d.h */
bool
pop3_parse_command(const char *p, size_t n, struct pop3_cmd *cmd)
{
	struct pop3_words w;
	enum pop3_cmd_id id = POP3_CMD_NONE;
	size_t klen, i;
	const char *args;
	size_t nargs_len;

	memset(cmd, 0, sizeof(*cmd));
	if (memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL ||
	    memchr(p, '\n', n) != NULL)
		return parse_fail(cmd, "Invalid characters in the command");
	for (klen = 0; klen < n && p[klen] != ' '; klen++)
		;
	if (klen < 3 || klen > 4)
		return parse_fail(cmd, "Unknown command");
	for (i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (strlen(pop3_cmds[i].name) == klen &&
		    strncasecmp(pop3_cmds[i].name, p, klen) == 0) {
			id = pop3_cmds[i].id;
			break;
		}
	if (id == POP3_CMD_NONE)
		return parse_fail(cmd, "Unknown command");
	args = klen < n ? p + klen + 1 : p + n;
	nargs_len = klen < n ? n - klen - 1 : 0;

	if (id == POP3_CMD_PASS) {
		if (klen == n)
			return parse_fail(cmd, "PASS needs a password");
		cmd->id = id;
		cmd->nargs = 1;
		cmd->arg = args;
		cmd->arg_len = nargs_len;
		return true;
	}
	if (!parse_words(args, nargs_len, 3, &w))
		return parse_fail(cmd, "Invalid arguments");
	for (i = 0; i < w.n; i++)
		if (w.len[i] > (id == POP3_CMD_AUTH && i == 1 ?
		    POP3D_SASL_LINE_MAX : POP3D_ARG_MAX))
			return parse_fail(cmd, "Argument too long");
	switch (id) {
	case POP3_CMD_USER:
		if (w.n != 1)
			return parse_fail(cmd, "USER needs one argument");
		break;
	case POP3_CMD_APOP:
		if (w.n != 2)
			return parse_fail(cmd, "APOP needs two arguments");
		break;
	case POP3_CMD_AUTH:
		if (w.n > 2)
			return parse_fail(cmd, "Invalid AUTH arguments");
		break;
	case POP3_CMD_STLS:
	case POP3_CMD_CAPA:
	case POP3_CMD_QUIT:
	case POP3_CMD_STAT:
	case POP3_CMD_NOOP:
	case POP3_CMD_RSET:
		if (w.n != 0)
			return parse_fail(cmd, "No arguments allowed");
		break;
	case POP3_CMD_LIST:
	case POP3_CMD_UIDL:
		if (w.n > 1 || (w.n == 1 && !parse_number(w.w[0], w.len[0],
		    &cmd->num[0])))
			return parse_fail(cmd, "Invalid message number");
		break;
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
		if (w.n != 1 || !parse_number(w.w[0], w.len[0], &cmd->num[0]))
			return parse_fail(cmd, "Invalid message number");
		break;
	case POP3_CMD_TOP:
		if (w.n != 2 || !parse_number(w.w[0], w.len[0], &cmd->num[0]))
			return parse_fail(cmd, "Invalid message number");
		if (!parse_number(w.w[1], w.len[1], &cmd->num[1]))
			return parse_fail(cmd, "Invalid number of lines");
		break;
	case POP3_CMD_PASS:
	case POP3_CMD_NONE:
	default:
		return parse_fail(cmd, "Unknown command");
	}
	cmd->id = id;
	cmd->nargs = w.n;
	if (w.n >= 1) {
		cmd->arg = w.w[0];
		cmd->arg_len = w.len[0];
	}
	if (w.n >= 2) {
		cmd->arg2 = w.w[1];
		cmd->arg2_len = w.len[1];
	}
	return true;
}

/* pop3_sasl_plain - see pop3d.h */
bool
pop3_sasl_plain(const char *p, size_t n, const char **authz_r,
    size_t *authz_len_r, const char **authc_r, size_t *authc_len_r,
    const char **pass_r, size_t *pass_len_r)
{
	const char *z1, *z2;

	z1 = memchr(p, '\0', n);
	if (z1 == NULL)
		return false;
	z2 = memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - p));
	if (z2 == NULL ||
	    memchr(z2 + 1, '\0', n - (size_t)(z2 + 1 - p)) != NULL)
		return false;
	if (z2 == z1 + 1)
		return false;	/* empty authentication identity */
	*authz_r = p;
	*authz_len_r = (size_t)(z1 - p);
	*authc_r = z1 + 1;
	*authc_len_r = (size_t)(z2 - z1 - 1);
	*pass_r = z2 + 1;
	*pass_len_r = n - (size_t)(z2 + 1 - p);
	return true;
}

/* pop3_base64_strict - see pop3d.h */
bool
pop3_base64_strict(const char *p, size_t n, struct str *out)
{
	size_t i;

	str_clear(out);
	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
		    (ch == '=' && i >= n - 2 && (i == n - 1 || p[n - 1] == '='))))
			return false;
	}
	return mime_decode_base64(p, n, out) == 0;
}
