/* SPDX-License-Identifier: MIT */
/*
 * nntp_proto - NNTP command, reply, block and message-ID syntax
 *
 * DESCRIPTION
 *	See nntp_proto.h. Keywords are matched case-insensitively (RFC
 *	3977 3.1); arguments are separated by one or more SP or HTAB,
 *	except that the argument of AUTHINFO USER and AUTHINFO PASS is
 *	the rest of the line (RFC 4643 2.3: INN's nnrpd and innfeed
 *	accept and send names and passwords with spaces).
 *	Every check runs on (pointer, length); the line may hold any byte.
 *
 * SEE ALSO
 *	RFC 3977, RFC 4642, RFC 4643, RFC 4644, RFC 5536.
 */
#include <string.h>
#include <strings.h>

#include "nntp_proto.h"

#define NNTP_KEYWORD_MAX 32

static const struct {
	const char *name;
	enum nntp_verb verb;
	size_t min_args, max_args;
} nntp_verbs[] = {
	{ "CAPABILITIES", NNTP_VERB_CAPABILITIES, 0, 1 },
	{ "MODE", NNTP_VERB_MODE_OTHER, 1, 1 },
	{ "CHECK", NNTP_VERB_CHECK, 1, 1 },
	{ "TAKETHIS", NNTP_VERB_TAKETHIS, 1, 1 },
	{ "IHAVE", NNTP_VERB_IHAVE, 1, 1 },
	{ "QUIT", NNTP_VERB_QUIT, 0, 0 },
	{ "HELP", NNTP_VERB_HELP, 0, 0 },
	{ "DATE", NNTP_VERB_DATE, 0, 0 },
	{ "STARTTLS", NNTP_VERB_STARTTLS, 0, 0 },
	{ "AUTHINFO", NNTP_VERB_AUTHINFO, 1, 3 },
	{ "POST", NNTP_VERB_POST, 0, 0 },
	{ "ARTICLE", NNTP_VERB_ARTICLE, 0, 1 },
	{ "STAT", NNTP_VERB_STAT, 0, 1 },
	{ "GROUP", NNTP_VERB_GROUP, 1, 1 },
};

/* nntp_arg_is - whether an argument is word (case-insensitive) */
static bool
nntp_arg_is(const struct nntp_arg *a, const char *word)
{
	return strlen(word) == a->len && strncasecmp(a->p, word, a->len) == 0;
}

/* nntp_cmd_parse - see nntp_proto.h */
enum nntp_proto_error
nntp_cmd_parse(struct nntp_cmd *cmd, const char *line, size_t len)
{
	struct nntp_arg words[NNTP_ARG_MAX + 1];
	size_t nwords = 0, i, start;

	memset(cmd, 0, sizeof(*cmd));
	if (len + 2 > NNTP_LINE_MAX)
		return NNTP_PROTO_TOO_LONG;
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return NNTP_PROTO_BAD_CHAR;
	i = 0;
	for (;;) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		if (nwords == 2 && nntp_arg_is(&words[0], "AUTHINFO") &&
		    (nntp_arg_is(&words[1], "USER") ||
		    nntp_arg_is(&words[1], "PASS"))) {
			/* a user name or password may hold spaces: the rest */
			words[2].p = line + i;
			words[2].len = len - i;
			nwords = 3;
			break;
		}
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (nwords == NNTP_ARG_MAX + 1)
			return NNTP_PROTO_SYNTAX;
		words[nwords].p = line + start;
		words[nwords].len = i - start;
		nwords++;
	}
	if (nwords == 0)
		return NNTP_PROTO_EMPTY;
	if (words[0].len > NNTP_KEYWORD_MAX)
		return NNTP_PROTO_UNKNOWN;
	for (i = 0; i < sizeof(nntp_verbs) / sizeof(nntp_verbs[0]); i++)
		if (nntp_arg_is(&words[0], nntp_verbs[i].name))
			break;
	if (i == sizeof(nntp_verbs) / sizeof(nntp_verbs[0]))
		return NNTP_PROTO_UNKNOWN;
	cmd->verb = nntp_verbs[i].verb;
	cmd->nargs = nwords - 1;
	memcpy(cmd->args, words + 1, cmd->nargs * sizeof(words[0]));
	if (cmd->nargs < nntp_verbs[i].min_args ||
	    cmd->nargs > nntp_verbs[i].max_args) {
		cmd->verb = NNTP_VERB_UNKNOWN;
		cmd->nargs = 0;
		return NNTP_PROTO_SYNTAX;
	}
	if (cmd->verb == NNTP_VERB_MODE_OTHER) {
		if (nntp_arg_is(&cmd->args[0], "STREAM"))
			cmd->verb = NNTP_VERB_MODE_STREAM;
		else if (nntp_arg_is(&cmd->args[0], "READER"))
			cmd->verb = NNTP_VERB_MODE_READER;
	}
	return NNTP_PROTO_OK;
}

/* nntp_proto_error_code - see nntp_proto.h */
int
nntp_proto_error_code(enum nntp_proto_error err)
{
	return err == NNTP_PROTO_EMPTY || err == NNTP_PROTO_UNKNOWN ? 500 : 501;
}

/* nntp_proto_error_str - see nntp_proto.h */
const char *
nntp_proto_error_str(enum nntp_proto_error err)
{
	switch (err) {
	case NNTP_PROTO_OK:
		return "ok";
	case NNTP_PROTO_EMPTY:
		return "Empty command";
	case NNTP_PROTO_BAD_CHAR:
		return "Invalid character in command";
	case NNTP_PROTO_TOO_LONG:
		return "Command line too long";
	case NNTP_PROTO_UNKNOWN:
		return "Unknown command";
	case NNTP_PROTO_SYNTAX:
		return "Syntax error in arguments";
	}
	return "error";
}

/* nntp_atext - RFC 5322 atext */
static bool
nntp_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* nntp_dot_atom_ok - RFC 5322 dot-atom-text */
static bool
nntp_dot_atom_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || p[0] == '.' || p[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] == '.') {
			if (p[i - 1] == '.')
				return false;
		} else if (!nntp_atext((unsigned char)p[i]))
			return false;
	}
	return true;
}

/* nntp_msgid_ok - see nntp_proto.h */
bool
nntp_msgid_ok(const char *p, size_t n)
{
	const char *at;
	size_t i, left;

	if (n < 5 || n > NNTP_MSGID_MAX || p[0] != '<' || p[n - 1] != '>')
		return false;
	p++;
	n -= 2;
	/* id-left "@" id-right: id-left has no '@', so split at the first */
	at = memchr(p, '@', n);
	if (at == NULL)
		return false;
	left = (size_t)(at - p);
	if (!nntp_dot_atom_ok(p, left))
		return false;
	p = at + 1;
	n -= left + 1;
	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		/* no-fold-literal: mdtext is printable but [ ] \ (and not >) */
		for (i = 1; i + 1 < n; i++)
			if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126 ||
			    p[i] == '[' || p[i] == ']' || p[i] == '\\' ||
			    p[i] == '>')
				return false;
		return true;
	}
	return nntp_dot_atom_ok(p, n);
}

/* nntp_reply_parse - see nntp_proto.h */
int
nntp_reply_parse(const char *p, size_t n, const char **text_r,
    size_t *text_len_r)
{
	int code;
	size_t start;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n < 3 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (n > 3 && p[3] != ' '))
		return -1;
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	start = n > 3 ? 4 : 3;
	if (text_r != NULL)
		*text_r = p + start;
	if (text_len_r != NULL)
		*text_len_r = n - start;
	return code;
}

/* nntp_block_init - see nntp_proto.h */
void
nntp_block_init(struct nntp_block *b, struct str *data, size_t max_size)
{
	memset(b, 0, sizeof(*b));
	b->data = data;
	b->max_size = max_size;
	str_clear(data);
}

/* nntp_block_line - see nntp_proto.h */
bool
nntp_block_line(struct nntp_block *b, const char *p, size_t n)
{
	size_t i;

	if (b->done)
		return true;
	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 1 && p[0] == '.') {
		b->done = true;
		return true;
	}
	if (n > 0 && p[0] == '.') {
		p++;
		n--;
	}
	if (!b->in_body) {
		if (n == 0)
			b->in_body = true;
		for (i = 0; i < n; i++)
			if (p[i] == '\0' || p[i] == '\r')
				b->bad = true;
	}
	if (b->too_big)
		return false;
	if (b->max_size != 0 && str_len(b->data) + n + 2 > b->max_size) {
		b->too_big = true;
		return false;
	}
	if (str_append(b->data, p, n) < 0 || str_append(b->data, "\r\n", 2) < 0)
		b->too_big = true;
	return false;
}

/* nntp_dot_encode - see nntp_proto.h */
int
nntp_dot_encode(const char *p, size_t n, struct str *out)
{
	size_t i = 0, end, len;

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);

		end = lf != NULL ? (size_t)(lf - p) : n;
		len = end - i;
		if (len > 0 && p[i + len - 1] == '\r')
			len--;
		if (len > 0 && p[i] == '.' && str_append_c(out, '.') < 0)
			return -1;
		if (str_append(out, p + i, len) < 0 ||
		    str_append(out, "\r\n", 2) < 0)
			return -1;
		i = lf != NULL ? end + 1 : n;
	}
	return str_append(out, ".\r\n", 3);
}
