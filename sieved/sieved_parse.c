/* SPDX-License-Identifier: MIT */
/*
 * sieved_parse - the ManageSieve command parser (RFC 5804 4)
 *
 * DESCRIPTION
 *	A command is an atom (the command name, case-insensitive) and
 *	arguments separated by single spaces, ending in CRLF. An argument
 *	is a quoted string ("..." with \" and \\ escapes, at most
 *	SIEVED_QUOTED_MAX octets, no CR, LF or NUL), a literal ("{N+}" or
 *	"{N}", CRLF, then exactly N octets: both forms are accepted, as
 *	Pigeonhole does, and neither gets a continuation) or a number
 *	(digits, below 2^32).
 *
 *	The session collects a command's lines and literal octets exactly
 *	as they came on the wire (sieved_literal_announce tells it whether
 *	a line goes on with a literal, before it reads the literal) and
 *	hands the whole buffer to sieved_parse_command(): a pure function
 *	over (pointer, length), so the fuzz target drives it directly.
 *
 *	Everything is parsed from (pointer, length); nothing reads past n.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_decode.h"
#include "str.h"

#include "sieved.h"

static const struct {
	const char *name;
	enum sieved_cmd_id id;
	unsigned min, max;		/* argument count */
	const char *types;		/* 's' string, 'n' number, per position */
} sieved_commands[] = {
	{ "AUTHENTICATE", SIEVED_CMD_AUTHENTICATE, 1, 2, "ss" },
	{ "STARTTLS", SIEVED_CMD_STARTTLS, 0, 0, "" },
	{ "LOGOUT", SIEVED_CMD_LOGOUT, 0, 0, "" },
	{ "CAPABILITY", SIEVED_CMD_CAPABILITY, 0, 0, "" },
	{ "HAVESPACE", SIEVED_CMD_HAVESPACE, 2, 2, "sn" },
	{ "PUTSCRIPT", SIEVED_CMD_PUTSCRIPT, 2, 2, "ss" },
	{ "CHECKSCRIPT", SIEVED_CMD_CHECKSCRIPT, 1, 1, "s" },
	{ "LISTSCRIPTS", SIEVED_CMD_LISTSCRIPTS, 0, 0, "" },
	{ "SETACTIVE", SIEVED_CMD_SETACTIVE, 1, 1, "s" },
	{ "GETSCRIPT", SIEVED_CMD_GETSCRIPT, 1, 1, "s" },
	{ "DELETESCRIPT", SIEVED_CMD_DELETESCRIPT, 1, 1, "s" },
	{ "RENAMESCRIPT", SIEVED_CMD_RENAMESCRIPT, 2, 2, "ss" },
	{ "NOOP", SIEVED_CMD_NOOP, 0, 1, "s" },
	{ "UNAUTHENTICATE", SIEVED_CMD_UNAUTHENTICATE, 0, 0, "" },
};

/* sieved_cmd_name - see sieved.h */
const char *
sieved_cmd_name(enum sieved_cmd_id id)
{
	size_t i;

	for (i = 0; i < sizeof(sieved_commands) / sizeof(sieved_commands[0]); i++)
		if (sieved_commands[i].id == id)
			return sieved_commands[i].name;
	return "?";
}

/* parse_number - digits p/n below 2^32 */
static bool
parse_number(const char *p, size_t n, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*v_r = v;
	return true;
}

/* sieved_literal_announce - see sieved.h */
int
sieved_literal_announce(const char *p, size_t n, uint64_t *size_r)
{
	size_t i, end, start;
	bool quoted = false;

	/* the announcement must be outside any quoted string */
	for (i = 0; i < n; i++) {
		if (quoted && p[i] == '\\' && i + 1 < n)
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
	}
	if (quoted || n < 3 || p[n - 1] != '}')
		return 0;
	end = n - 1;
	if (p[end - 1] == '+')
		end--;
	for (start = end; start > 0 && p[start - 1] >= '0' &&
	    p[start - 1] <= '9'; start--)
		;
	if (start == 0 || p[start - 1] != '{' || start == end)
		return 0;
	if (!parse_number(p + start, end - start, size_r))
		return -1;
	return 1;
}

/* sieved_parse_args - see sieved.h */
int
sieved_parse_args(const char *p, size_t n, struct sieved_arg *args,
    unsigned max, const char **error_r)
{
	size_t i = 0, j, k;
	uint64_t v;
	unsigned count = 0;

	while (i < n) {
		if (count == max) {
			*error_r = "Too many arguments";
			return -1;
		}
		memset(&args[count], 0, sizeof(args[count]));
		if (p[i] == '"') {
			for (j = i + 1; j < n && p[j] != '"'; j++) {
				if (p[j] == '\r' || p[j] == '\n' || p[j] == '\0') {
					*error_r = "Invalid character in quoted string";
					return -1;
				}
				if (p[j] == '\\') {
					if (j + 1 >= n || (p[j + 1] != '"' &&
					    p[j + 1] != '\\')) {
						*error_r = "Invalid escape in quoted string";
						return -1;
					}
					j++;
				}
			}
			if (j >= n) {
				*error_r = "Unterminated quoted string";
				return -1;
			}
			if (j - i - 1 > SIEVED_QUOTED_MAX) {
				*error_r = "Quoted string too long";
				return -1;
			}
			args[count].p = p + i + 1;
			args[count].n = j - i - 1;
			i = j + 1;
		} else if (p[i] == '{') {
			for (j = i + 1; j < n && p[j] >= '0' && p[j] <= '9'; j++)
				;
			if (!parse_number(p + i + 1, j - i - 1, &v)) {
				*error_r = "Invalid literal size";
				return -1;
			}
			k = j;
			if (k < n && p[k] == '+')
				k++;
			if (k + 3 > n || p[k] != '}' || p[k + 1] != '\r' ||
			    p[k + 2] != '\n') {
				*error_r = "Invalid literal";
				return -1;
			}
			k += 3;
			if (v > n - k) {
				*error_r = "Literal longer than the data";
				return -1;
			}
			args[count].p = p + k;
			args[count].n = (size_t)v;
			args[count].literal = true;
			i = k + (size_t)v;
		} else if (p[i] >= '0' && p[i] <= '9') {
			for (j = i; j < n && p[j] >= '0' && p[j] <= '9'; j++)
				;
			if (!parse_number(p + i, j - i, &v)) {
				*error_r = "Invalid number";
				return -1;
			}
			args[count].number = true;
			args[count].num = (uint32_t)v;
			i = j;
		} else {
			*error_r = "Invalid argument";
			return -1;
		}
		count++;
		if (i < n) {
			if (p[i] != ' ' || i + 1 == n) {
				*error_r = "Expected a space between arguments";
				return -1;
			}
			i++;
		}
	}
	return (int)count;
}

/* sieved_unquote - see sieved.h */
void
sieved_unquote(const struct sieved_arg *arg, struct str *out)
{
	size_t i;
	bool quoted = !arg->literal;

	str_clear(out);
	for (i = 0; i < arg->n; i++) {
		if (quoted && arg->p[i] == '\\' && i + 1 < arg->n)
			i++;
		str_append_c(out, arg->p[i]);
	}
}

/* sieved_parse_command - see sieved.h */
bool
sieved_parse_command(const char *p, size_t n, struct sieved_cmd *cmd)
{
	size_t i, k, len;
	int nargs;

	memset(cmd, 0, sizeof(*cmd));
	for (len = 0; len < n && ((p[len] >= 'A' && p[len] <= 'Z') ||
	    (p[len] >= 'a' && p[len] <= 'z')); len++)
		;
	if (len == 0 || (len < n && p[len] != ' ') || (len + 1 == n)) {
		cmd->error = "Invalid command";
		return false;
	}
	for (i = 0; i < sizeof(sieved_commands) / sizeof(sieved_commands[0]); i++)
		if (strlen(sieved_commands[i].name) == len &&
		    strncasecmp(sieved_commands[i].name, p, len) == 0)
			break;
	if (i == sizeof(sieved_commands) / sizeof(sieved_commands[0])) {
		cmd->error = "Unknown command";
		return false;
	}
	if (len < n)
		len++;
	nargs = sieved_parse_args(p + len, n - len, cmd->args, SIEVED_ARGS_MAX,
	    &cmd->error);
	if (nargs < 0)
		return false;
	if ((unsigned)nargs < sieved_commands[i].min ||
	    (unsigned)nargs > sieved_commands[i].max) {
		cmd->error = "Wrong number of arguments";
		return false;
	}
	for (k = 0; k < (size_t)nargs; k++)
		if (cmd->args[k].number != (sieved_commands[i].types[k] == 'n')) {
			cmd->error = cmd->args[k].number ? "Expected a string" :
			    "Expected a number";
			return false;
		}
	cmd->id = sieved_commands[i].id;
	cmd->nargs = (unsigned)nargs;
	return true;
}

/* sieved_append_string - see sieved.h */
void
sieved_append_string(struct str *out, const char *s, size_t n)
{
	size_t i;

	if (n <= SIEVED_QUOTED_MAX && memchr(s, '\r', n) == NULL &&
	    memchr(s, '\n', n) == NULL && memchr(s, '\0', n) == NULL) {
		str_append_c(out, '"');
		for (i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				str_append_c(out, '\\');
			str_append_c(out, s[i]);
		}
		str_append_c(out, '"');
		return;
	}
	str_printf(out, "{%zu}\r\n", n);
	str_append(out, s, n);
}

/* sieved_sasl_plain - see sieved.h */
bool
sieved_sasl_plain(const char *p, size_t n, const char **authz_r,
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

/* sieved_base64_strict - see sieved.h */
bool
sieved_base64_strict(const char *p, size_t n, struct str *out)
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
