/* SPDX-License-Identifier: MIT */
/*
 * smtp_proto - SMTP/LMTP command parser, ESMTP parameters, reply parser
 *
 * DESCRIPTION
 *	See smtp_proto.h. One command line is checked for forbidden octets
 *	first, then split into the verb and what follows; each verb has its
 *	own argument parser. Everything works on (pointer, length) inside
 *	the caller's line and copies out only checked, decoded values into
 *	the reusable struct smtp_cmd, whose strings all have a maximum, so
 *	a session's memory is bounded whatever the client sends.
 *
 *	MAIL FROM paths are parsed with UTF-8 allowed and the SMTPUTF8
 *	requirement is applied after the parameters are known (the
 *	parameter comes after the path). Errors are reported left to right
 *	except for that one.
 *
 *	Nothing here logs or exits.
 *
 * SEE ALSO
 *	RFC 5321 4.1, RFC 1869 6, RFC 1870, RFC 2033, RFC 2034, RFC 3030,
 *	RFC 3461 4, RFC 3463, RFC 4954 5, RFC 6152, RFC 6531 3.3.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "smtp_proto.h"

/* The verbs, in the order of enum smtp_verb. */
static const char *const smtp_verb_names[] = {
	"", "HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
	"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
};

/* smtp_verb_name - printable verb */
const char *
smtp_verb_name(enum smtp_verb verb)
{
	if ((size_t)verb >= N_ELEMENTS(smtp_verb_names))
		return "";
	return smtp_verb_names[verb];
}

/* smtp_cmd_new - a reusable command */
struct smtp_cmd *
smtp_cmd_new(void)
{
	struct smtp_cmd *cmd = xmalloc(sizeof(*cmd));

	cmd->arg = str_new(64, SMTP_PROTO_LINE_MAX);
	cmd->arg2 = str_new(64, SMTP_PROTO_LINE_MAX);
	cmd->addr = address_new();
	cmd->mail.envid = str_new(0, SMTP_PROTO_ENVID_MAX);
	cmd->mail.auth = str_new(0, SMTP_PROTO_AUTH_MAX);
	cmd->rcpt.orcpt_type = str_new(0, 64);
	cmd->rcpt.orcpt = str_new(0, SMTP_PROTO_ORCPT_MAX);
	return cmd;
}

/* smtp_cmd_free - release */
void
smtp_cmd_free(struct smtp_cmd **cmdp)
{
	struct smtp_cmd *cmd = *cmdp;

	if (cmd == NULL)
		return;
	str_free(&cmd->arg);
	str_free(&cmd->arg2);
	address_free(&cmd->addr);
	str_free(&cmd->mail.envid);
	str_free(&cmd->mail.auth);
	str_free(&cmd->rcpt.orcpt_type);
	str_free(&cmd->rcpt.orcpt);
	free(cmd);
	*cmdp = NULL;
}

/* smtp_cmd_reset - empty every field, keep the allocations */
static void
smtp_cmd_reset(struct smtp_cmd *cmd)
{
	struct str *envid = cmd->mail.envid, *auth = cmd->mail.auth;
	struct str *otype = cmd->rcpt.orcpt_type, *orcpt = cmd->rcpt.orcpt;

	cmd->verb = SMTP_VERB_NONE;
	str_clear(cmd->arg);
	str_clear(cmd->arg2);
	cmd->arg2_set = false;
	address_clear(cmd->addr);
	memset(&cmd->mail, 0, sizeof(cmd->mail));
	memset(&cmd->rcpt, 0, sizeof(cmd->rcpt));
	str_clear(envid);
	str_clear(auth);
	str_clear(otype);
	str_clear(orcpt);
	cmd->mail.envid = envid;
	cmd->mail.auth = auth;
	cmd->rcpt.orcpt_type = otype;
	cmd->rcpt.orcpt = orcpt;
	cmd->bdat_size = 0;
	cmd->bdat_last = false;
	cmd->bad_param = NULL;
	cmd->addr_error = ADDRESS_OK;
}

/* smtp_proto_error_str - for logs */
const char *
smtp_proto_error_str(enum smtp_proto_error err)
{
	switch (err) {
	case SMTP_PROTO_OK:
		return "ok";
	case SMTP_PROTO_ERR_EMPTY:
		return "empty command";
	case SMTP_PROTO_ERR_BAD_CHAR:
		return "invalid character in command";
	case SMTP_PROTO_ERR_LINE_TOO_LONG:
		return "line too long";
	case SMTP_PROTO_ERR_UNKNOWN_VERB:
		return "command unrecognized";
	case SMTP_PROTO_ERR_SYNTAX:
		return "syntax error in arguments";
	case SMTP_PROTO_ERR_ARG_MISSING:
		return "argument required";
	case SMTP_PROTO_ERR_ARG_UNEXPECTED:
		return "command takes no argument";
	case SMTP_PROTO_ERR_HELO_DOMAIN:
		return "invalid domain name or address literal";
	case SMTP_PROTO_ERR_SENDER:
		return "bad sender address syntax";
	case SMTP_PROTO_ERR_RECIPIENT:
		return "bad recipient address syntax";
	case SMTP_PROTO_ERR_PATH_TOO_LONG:
		return "path too long";
	case SMTP_PROTO_ERR_NEED_SMTPUTF8:
		return "non-ASCII address requires SMTPUTF8";
	case SMTP_PROTO_ERR_PARAM_SYNTAX:
		return "malformed parameter";
	case SMTP_PROTO_ERR_PARAM_UNKNOWN:
		return "parameter unrecognized or not enabled";
	case SMTP_PROTO_ERR_PARAM_DUPLICATE:
		return "parameter given twice";
	case SMTP_PROTO_ERR_PARAM_VALUE:
		return "invalid parameter value";
	case SMTP_PROTO_ERR_PARAM_CONFLICT:
		return "conflicting parameters";
	case SMTP_PROTO_ERR_BDAT_SIZE:
		return "invalid chunk size";
	}
	return "unknown error";
}

/* smtp_proto_error_reply - code and enhanced code for an error */
void
smtp_proto_error_reply(enum smtp_proto_error err, int *code_r,
    const char **enhanced_r)
{
	switch (err) {
	case SMTP_PROTO_OK:
		*code_r = 250;
		*enhanced_r = "2.0.0";
		return;
	case SMTP_PROTO_ERR_EMPTY:
	case SMTP_PROTO_ERR_BAD_CHAR:
	case SMTP_PROTO_ERR_UNKNOWN_VERB:
		*code_r = 500;
		*enhanced_r = "5.5.2";
		return;
	case SMTP_PROTO_ERR_LINE_TOO_LONG:
		*code_r = 500;
		*enhanced_r = "5.5.6";
		return;
	case SMTP_PROTO_ERR_SENDER:
		*code_r = 501;
		*enhanced_r = "5.1.7";
		return;
	case SMTP_PROTO_ERR_RECIPIENT:
		*code_r = 501;
		*enhanced_r = "5.1.3";
		return;
	case SMTP_PROTO_ERR_NEED_SMTPUTF8:
		*code_r = 553;
		*enhanced_r = "5.6.7";
		return;
	case SMTP_PROTO_ERR_PARAM_UNKNOWN:
		*code_r = 555;
		*enhanced_r = "5.5.4";
		return;
	case SMTP_PROTO_ERR_SYNTAX:
	case SMTP_PROTO_ERR_ARG_MISSING:
	case SMTP_PROTO_ERR_ARG_UNEXPECTED:
	case SMTP_PROTO_ERR_HELO_DOMAIN:
	case SMTP_PROTO_ERR_PATH_TOO_LONG:
	case SMTP_PROTO_ERR_PARAM_SYNTAX:
	case SMTP_PROTO_ERR_PARAM_DUPLICATE:
	case SMTP_PROTO_ERR_PARAM_VALUE:
	case SMTP_PROTO_ERR_PARAM_CONFLICT:
	case SMTP_PROTO_ERR_BDAT_SIZE:
		break;
	}
	*code_r = 501;
	*enhanced_r = "5.5.4";
}

/* ------------------------------------------------------------- xtext */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* smtp_proto_xtext_decode - RFC 3461 xtext */
int
smtp_proto_xtext_decode(const char *p, size_t len, struct str *out)
{
	size_t start = str_len(out), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			int hi, lo;

			if (i + 2 >= len)
				goto bad;
			hi = hexval(p[i + 1]);
			lo = hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			if (str_append_c(out, (char)(hi * 16 + lo)) < 0)
				goto full;
			i += 2;
		} else if (c >= 33 && c <= 126 && c != '=') {
			if (str_append_c(out, (char)c) < 0)
				goto full;
		} else
			goto bad;
	}
	return 0;
bad:
	str_truncate(out, start);
	errno = EINVAL;
	return -1;
full:
	str_truncate(out, start);
	errno = E2BIG;
	return -1;
}

/* smtp_proto_xtext_encode - RFC 3461 xtext */
int
smtp_proto_xtext_encode(const char *p, size_t len, struct str *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = str_len(out), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int r;

		if (c >= 33 && c <= 126 && c != '+' && c != '=')
			r = str_append_c(out, (char)c);
		else {
			char buf[3] = { '+', hex[c >> 4], hex[c & 15] };

			r = str_append(out, buf, 3);
		}
		if (r < 0) {
			str_truncate(out, start);
			errno = E2BIG;
			return -1;
		}
	}
	return 0;
}

/* ----------------------------------------------------------- helpers */

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* word_eq - p[0..len) equals the upper-case ASCII word w, any case */
static bool
word_eq(const char *p, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(p, w, len) == 0;
}

/* parse_u64 - 1*DIGIT into a uint64_t; false on overflow or non-digit */
static bool
parse_u64(const char *p, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (!is_digit(p[i]))
			return false;
		d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* has_ctl - a control octet (or DEL) in decoded text */
static bool
has_ctl(const struct str *s)
{
	const unsigned char *u = (const unsigned char *)str_c(s);
	size_t i;

	for (i = 0; i < str_len(s); i++)
		if (u[i] < 32 || u[i] == 127)
			return true;
	return false;
}

/* smtp_proto_helo_ok - domain or address literal */
bool
smtp_proto_helo_ok(const char *p, size_t len, bool utf8)
{
	return address_parse_domain(p, len, utf8 ? ADDRESS_SMTPUTF8 : 0,
	    NULL) == ADDRESS_OK;
}

/*
 * helo_ok_lax - also tolerate what real clients send: '_' in labels and
 * a trailing dot (Windows hosts, sloppy configurations).
 */
static bool
helo_ok_lax(const char *p, size_t len)
{
	char buf[ADDRESS_DOMAIN_MAX + 1];
	size_t i;

	if (smtp_proto_helo_ok(p, len, true))
		return true;
	if (len == 0 || len > ADDRESS_DOMAIN_MAX || p[0] == '[')
		return false;
	memcpy(buf, p, len);
	if (len > 1 && buf[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		if (buf[i] == '_')
			buf[i] = 'x';
	return smtp_proto_helo_ok(buf, len, true);
}

/* ------------------------------------------------------- parameters */

/* Keywords we know, and the extension that enables each. */
enum param_kw {
	PARAM_SIZE, PARAM_BODY, PARAM_SMTPUTF8, PARAM_RET, PARAM_ENVID,
	PARAM_AUTH, PARAM_NOTIFY, PARAM_ORCPT,
};

static const struct {
	const char *name;
	unsigned ext;
	bool mail;		/* MAIL FROM (else RCPT TO) */
} param_table[] = {
	[PARAM_SIZE] = { "SIZE", SMTP_EXT_SIZE, true },
	[PARAM_BODY] = { "BODY", SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, true },
	[PARAM_SMTPUTF8] = { "SMTPUTF8", SMTP_EXT_SMTPUTF8, true },
	[PARAM_RET] = { "RET", SMTP_EXT_DSN, true },
	[PARAM_ENVID] = { "ENVID", SMTP_EXT_DSN, true },
	[PARAM_AUTH] = { "AUTH", SMTP_EXT_AUTH, true },
	[PARAM_NOTIFY] = { "NOTIFY", SMTP_EXT_DSN, false },
	[PARAM_ORCPT] = { "ORCPT", SMTP_EXT_DSN, false },
};

/* parse_notify - "NEVER" or a list of SUCCESS, FAILURE, DELAY */
static bool
parse_notify(const char *p, size_t len, unsigned *notify_r)
{
	unsigned n = 0;
	size_t i = 0;

	while (i <= len) {
		size_t start = i;
		unsigned bit;

		while (i < len && p[i] != ',')
			i++;
		if (word_eq(p + start, i - start, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (word_eq(p + start, i - start, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (word_eq(p + start, i - start, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (word_eq(p + start, i - start, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return false;
		if ((n & bit) != 0)
			return false;
		n |= bit;
		i++;			/* past the ',' (or the end) */
	}
	if ((n & SMTP_NOTIFY_NEVER) != 0 && n != SMTP_NOTIFY_NEVER)
		return false;
	*notify_r = n;
	return true;
}

/* parse_orcpt - addr-type ";" xtext */
static enum smtp_proto_error
parse_orcpt(struct smtp_cmd *cmd, const char *p, size_t len)
{
	const char *semi = memchr(p, ';', len);
	size_t tlen, i;

	if (semi == NULL || semi == p || (size_t)(semi - p) + 1 == len)
		return SMTP_PROTO_ERR_PARAM_VALUE;
	tlen = (size_t)(semi - p);
	/* addr-type is an RFC 5322 atom; in practice rfc822 or utf-8 */
	for (i = 0; i < tlen; i++)
		if (!is_alpha(p[i]) && !is_digit(p[i]) && p[i] != '-')
			return SMTP_PROTO_ERR_PARAM_VALUE;
	if (str_set(cmd->rcpt.orcpt_type, p, tlen) < 0)
		return SMTP_PROTO_ERR_PARAM_VALUE;
	/*
	 * XXX utf-8 addr-type (RFC 6533) values use \x{..} escapes inside
	 * xtext; we keep them as they decode from xtext.
	 */
	if (smtp_proto_xtext_decode(semi + 1, len - tlen - 1,
	    cmd->rcpt.orcpt) < 0 || has_ctl(cmd->rcpt.orcpt))
		return SMTP_PROTO_ERR_PARAM_VALUE;
	cmd->rcpt.orcpt_set = true;
	return SMTP_PROTO_OK;
}

/* parse_param - one esmtp-param for MAIL (mail true) or RCPT */
static enum smtp_proto_error
parse_param(struct smtp_cmd *cmd, const char *p, size_t len, bool mail,
    unsigned ext, unsigned *seen)
{
	const char *eq = memchr(p, '=', len);
	size_t klen = eq != NULL ? (size_t)(eq - p) : len, vlen, i;
	const char *v = eq != NULL ? eq + 1 : NULL;
	size_t kw;

	vlen = eq != NULL ? len - klen - 1 : 0;
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (klen == 0 || !(is_alpha(p[0]) || is_digit(p[0])))
		return SMTP_PROTO_ERR_PARAM_SYNTAX;
	for (i = 1; i < klen; i++)
		if (!is_alpha(p[i]) && !is_digit(p[i]) && p[i] != '-')
			return SMTP_PROTO_ERR_PARAM_SYNTAX;
	/* esmtp-value = 1*(%d33-60 / %d62-126) (UTF-8 allowed, RFC 6531) */
	if (eq != NULL) {
		if (vlen == 0)
			return SMTP_PROTO_ERR_PARAM_SYNTAX;
		for (i = 0; i < vlen; i++)
			if (v[i] == '=' || (unsigned char)v[i] <= 32 ||
			    v[i] == 127)
				return SMTP_PROTO_ERR_PARAM_SYNTAX;
	}
	for (kw = 0; kw < N_ELEMENTS(param_table); kw++)
		if (param_table[kw].mail == mail &&
		    word_eq(p, klen, param_table[kw].name))
			break;
	if (kw == N_ELEMENTS(param_table) || (param_table[kw].ext & ext) == 0)
		return SMTP_PROTO_ERR_PARAM_UNKNOWN;
	cmd->bad_param = param_table[kw].name;
	if ((*seen & (1u << kw)) != 0)
		return SMTP_PROTO_ERR_PARAM_DUPLICATE;
	*seen |= 1u << kw;
	if (kw == PARAM_SMTPUTF8) {
		if (v != NULL)
			return SMTP_PROTO_ERR_PARAM_VALUE;
		cmd->mail.smtputf8 = true;
		return SMTP_PROTO_OK;
	}
	if (v == NULL)
		return SMTP_PROTO_ERR_PARAM_VALUE;
	switch ((enum param_kw)kw) {
	case PARAM_SIZE:
		if (!parse_u64(v, vlen, &cmd->mail.size))
			return SMTP_PROTO_ERR_PARAM_VALUE;
		cmd->mail.size_set = true;
		break;
	case PARAM_BODY:
		if (word_eq(v, vlen, "7BIT"))
			cmd->mail.body = SMTP_BODY_7BIT;
		else if (word_eq(v, vlen, "8BITMIME") &&
		    (ext & SMTP_EXT_8BITMIME) != 0)
			cmd->mail.body = SMTP_BODY_8BITMIME;
		else if (word_eq(v, vlen, "BINARYMIME") &&
		    (ext & SMTP_EXT_BINARYMIME) != 0) {
			/* RFC 3030 3: BINARYMIME only with CHUNKING */
			if ((ext & SMTP_EXT_CHUNKING) == 0)
				return SMTP_PROTO_ERR_PARAM_CONFLICT;
			cmd->mail.body = SMTP_BODY_BINARYMIME;
		} else
			return SMTP_PROTO_ERR_PARAM_VALUE;
		break;
	case PARAM_RET:
		if (word_eq(v, vlen, "FULL"))
			cmd->mail.ret = SMTP_RET_FULL;
		else if (word_eq(v, vlen, "HDRS"))
			cmd->mail.ret = SMTP_RET_HDRS;
		else
			return SMTP_PROTO_ERR_PARAM_VALUE;
		break;
	case PARAM_ENVID:
		/* RFC 3461 4.4: at most 100 characters, printable */
		if (vlen > SMTP_PROTO_ENVID_MAX ||
		    smtp_proto_xtext_decode(v, vlen, cmd->mail.envid) < 0 ||
		    has_ctl(cmd->mail.envid))
			return SMTP_PROTO_ERR_PARAM_VALUE;
		cmd->mail.envid_set = true;
		break;
	case PARAM_AUTH:
		if (smtp_proto_xtext_decode(v, vlen, cmd->mail.auth) < 0 ||
		    str_len(cmd->mail.auth) == 0 || has_ctl(cmd->mail.auth))
			return SMTP_PROTO_ERR_PARAM_VALUE;
		cmd->mail.auth_set = true;
		break;
	case PARAM_NOTIFY:
		if (!parse_notify(v, vlen, &cmd->rcpt.notify))
			return SMTP_PROTO_ERR_PARAM_VALUE;
		break;
	case PARAM_ORCPT:
		return parse_orcpt(cmd, v, vlen);
	case PARAM_SMTPUTF8:
		break;
	}
	return SMTP_PROTO_OK;
}

/* parse_params - SP-separated esmtp-params in p[0..len) */
static enum smtp_proto_error
parse_params(struct smtp_cmd *cmd, const char *p, size_t len, bool mail,
    unsigned ext, unsigned flags)
{
	bool strict = (flags & SMTP_PROTO_STRICT) != 0;
	unsigned seen = 0;
	size_t i = 0;

	while (i < len) {
		size_t start;
		enum smtp_proto_error err;

		/* the separating space(s) */
		if (p[i] != ' ')
			return SMTP_PROTO_ERR_PARAM_SYNTAX;
		i++;
		if (!strict)
			while (i < len && p[i] == ' ')
				i++;
		if (i == len) {
			if (strict)
				return SMTP_PROTO_ERR_PARAM_SYNTAX;
			break;		/* trailing spaces */
		}
		start = i;
		while (i < len && p[i] != ' ')
			i++;
		cmd->bad_param = NULL;
		err = parse_param(cmd, p + start, i - start, mail, ext, &seen);
		if (err != SMTP_PROTO_OK)
			return err;
	}
	cmd->bad_param = NULL;
	return SMTP_PROTO_OK;
}

/* ------------------------------------------------------------ verbs */

/*
 * path_end - the length of the path at p[0..len): up to and including
 * the '>' that closes it (quoted strings may hold '>' and spaces), or
 * without brackets up to the first space. 0 if there is no closing '>'.
 */
static size_t
path_end(const char *p, size_t len)
{
	size_t i;
	bool quoted = false;

	if (len == 0)
		return 0;
	if (p[0] != '<') {
		for (i = 0; i < len && p[i] != ' '; i++)
			;
		return i;
	}
	for (i = 1; i < len; i++) {
		if (quoted && p[i] == '\\' && i + 1 < len)
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
		else if (!quoted && p[i] == '>')
			return i + 1;
	}
	return 0;
}

/* map_address_error - address.h error to the command error */
static enum smtp_proto_error
map_address_error(struct smtp_cmd *cmd, enum address_error err, bool mail)
{
	cmd->addr_error = err;
	if (err == ADDRESS_ERR_PATH_TOO_LONG)
		return SMTP_PROTO_ERR_PATH_TOO_LONG;
	if (err == ADDRESS_ERR_NEED_SMTPUTF8)
		return SMTP_PROTO_ERR_NEED_SMTPUTF8;
	return mail ? SMTP_PROTO_ERR_SENDER : SMTP_PROTO_ERR_RECIPIENT;
}

/* parse_mail_rcpt - "FROM:" path params / "TO:" path params */
static enum smtp_proto_error
parse_mail_rcpt(struct smtp_cmd *cmd, const char *p, size_t len, bool mail,
    unsigned ext, bool mail_smtputf8, unsigned flags)
{
	const char *word = mail ? "FROM:" : "TO:";
	size_t wlen = strlen(word), i, plen;
	bool strict = (flags & SMTP_PROTO_STRICT) != 0;
	bool utf8 = (flags & SMTP_PROTO_UTF8_PATHS) != 0;
	unsigned aflags;
	enum address_error aerr;
	enum smtp_proto_error err;

	/* p starts after the verb: " FROM:<path>" */
	if (len == 0)
		return SMTP_PROTO_ERR_ARG_MISSING;
	if (p[0] != ' ' || len < 1 + wlen || strncasecmp(p + 1, word, wlen) != 0)
		return SMTP_PROTO_ERR_SYNTAX;
	i = 1 + wlen;
	if (!strict)
		while (i < len && p[i] == ' ')
			i++;
	if (i == len)
		return SMTP_PROTO_ERR_ARG_MISSING;
	plen = path_end(p + i, len - i);
	if (plen == 0) {
		/* an opening '<' without a closing one */
		return map_address_error(cmd, len - i > ADDRESS_PATH_MAX ?
		    ADDRESS_ERR_PATH_TOO_LONG : ADDRESS_ERR_BRACKETS, mail);
	}
	if (mail)
		aflags = ADDRESS_ALLOW_NULL | ADDRESS_SMTPUTF8;
	else
		aflags = ADDRESS_ALLOW_POSTMASTER |
		    (mail_smtputf8 || utf8 ? ADDRESS_SMTPUTF8 : 0);
	if (p[i] == '<')
		aerr = address_parse_path(p + i, plen, aflags, cmd->addr);
	else if (strict)
		aerr = ADDRESS_ERR_BRACKETS;
	else
		aerr = address_parse_mailbox(p + i, plen,
		    aflags & ~(unsigned)ADDRESS_ALLOW_NULL, cmd->addr);
	if (aerr != ADDRESS_OK)
		return map_address_error(cmd, aerr, mail);
	err = parse_params(cmd, p + i + plen, len - i - plen, mail, ext, flags);
	if (err != SMTP_PROTO_OK)
		return err;
	if (mail && cmd->addr->utf8 && !cmd->mail.smtputf8 && !utf8)
		return map_address_error(cmd, ADDRESS_ERR_NEED_SMTPUTF8, mail);
	return SMTP_PROTO_OK;
}

/* parse_bdat - " chunk-size [ SP LAST ]" */
static enum smtp_proto_error
parse_bdat(struct smtp_cmd *cmd, const char *p, size_t len)
{
	size_t i = 1, start;

	if (len <= 1)
		return SMTP_PROTO_ERR_ARG_MISSING;
	start = i;
	while (i < len && p[i] != ' ')
		i++;
	if (!parse_u64(p + start, i - start, &cmd->bdat_size))
		return SMTP_PROTO_ERR_BDAT_SIZE;
	if (i == len)
		return SMTP_PROTO_OK;
	if (word_eq(p + i + 1, len - i - 1, "LAST")) {
		cmd->bdat_last = true;
		return SMTP_PROTO_OK;
	}
	return SMTP_PROTO_ERR_SYNTAX;
}

/* parse_auth - " mechanism [ SP initial-response ]" */
static enum smtp_proto_error
parse_auth(struct smtp_cmd *cmd, const char *p, size_t len)
{
	size_t i = 1, start, n;

	if (len <= 1)
		return SMTP_PROTO_ERR_ARG_MISSING;
	/* sasl-mech = 1*20mech-char; mech-char = UPPER-ALPHA / DIGIT / "-" / "_" */
	while (i < len && p[i] != ' ') {
		if (!is_alpha(p[i]) && !is_digit(p[i]) && p[i] != '-' &&
		    p[i] != '_')
			return SMTP_PROTO_ERR_SYNTAX;
		i++;
	}
	if (i - 1 == 0 || i - 1 > 20)
		return SMTP_PROTO_ERR_SYNTAX;
	(void)str_set(cmd->arg, p + 1, i - 1);
	for (n = 0; n < str_len(cmd->arg); n++)
		if (str_data(cmd->arg)[n] >= 'a' && str_data(cmd->arg)[n] <= 'z')
			str_data(cmd->arg)[n] -= 'a' - 'A';
	if (i == len)
		return SMTP_PROTO_OK;
	/* initial-response = base64 / "=" */
	start = ++i;
	if (start == len)
		return SMTP_PROTO_ERR_SYNTAX;
	if (!(len - start == 1 && p[start] == '=')) {
		size_t pad = 0;

		for (; i < len; i++) {
			char c = p[i];

			if (c == '=') {
				pad++;
				continue;
			}
			if (pad > 0 || !(is_alpha(c) || is_digit(c) ||
			    c == '+' || c == '/'))
				return SMTP_PROTO_ERR_SYNTAX;
		}
		if (pad > 2 || (len - start) % 4 != 0)
			return SMTP_PROTO_ERR_SYNTAX;
	}
	(void)str_set(cmd->arg2, p + start, len - start);
	cmd->arg2_set = true;
	return SMTP_PROTO_OK;
}

/* smtp_cmd_parse - one command line */
enum smtp_proto_error
smtp_cmd_parse(struct smtp_cmd *cmd, const char *p, size_t len, unsigned ext,
    bool mail_smtputf8, unsigned flags)
{
	bool strict = (flags & SMTP_PROTO_STRICT) != 0;
	size_t i, vlen, v;

	smtp_cmd_reset(cmd);
	if (len == 0)
		return SMTP_PROTO_ERR_EMPTY;
	if (len > SMTP_PROTO_LINE_MAX)
		return SMTP_PROTO_ERR_LINE_TOO_LONG;
	for (vlen = 0; vlen < len && p[vlen] != ' '; vlen++)
		;
	for (v = 1; v < N_ELEMENTS(smtp_verb_names); v++)
		if (word_eq(p, vlen, smtp_verb_names[v]))
			break;
	if (v < N_ELEMENTS(smtp_verb_names))
		cmd->verb = (enum smtp_verb)v;
	/* TAB is allowed in free text only; other controls nowhere. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 32 && c != '\t') || c == 127)
			return SMTP_PROTO_ERR_BAD_CHAR;
		if (c == '\t' && cmd->verb != SMTP_VERB_NOOP &&
		    cmd->verb != SMTP_VERB_HELP && cmd->verb != SMTP_VERB_VRFY &&
		    cmd->verb != SMTP_VERB_EXPN)
			return SMTP_PROTO_ERR_BAD_CHAR;
	}
	if (cmd->verb == SMTP_VERB_NONE)
		return SMTP_PROTO_ERR_UNKNOWN_VERB;
	p += vlen;
	len -= vlen;
	/* tolerated: trailing spaces (not for the free-text verbs' text) */
	if (!strict && cmd->verb != SMTP_VERB_NOOP && cmd->verb != SMTP_VERB_HELP)
		while (len > 0 && p[len - 1] == ' ')
			len--;

	switch (cmd->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
	case SMTP_VERB_LHLO:
		if (len <= 1)
			return SMTP_PROTO_ERR_ARG_MISSING;
		p++;
		len--;
		if (!strict)
			while (len > 0 && p[0] == ' ') {
				p++;
				len--;
			}
		if (strict ? !smtp_proto_helo_ok(p, len, true) :
		    !helo_ok_lax(p, len))
			return SMTP_PROTO_ERR_HELO_DOMAIN;
		(void)str_set(cmd->arg, p, len);
		return SMTP_PROTO_OK;
	case SMTP_VERB_MAIL:
		return parse_mail_rcpt(cmd, p, len, true, ext, mail_smtputf8,
		    flags);
	case SMTP_VERB_RCPT:
		return parse_mail_rcpt(cmd, p, len, false, ext, mail_smtputf8,
		    flags);
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (len > 0)
			return SMTP_PROTO_ERR_ARG_UNEXPECTED;
		return SMTP_PROTO_OK;
	case SMTP_VERB_NOOP:
	case SMTP_VERB_HELP:
		if (len > 0) {
			if (p[0] != ' ')
				return SMTP_PROTO_ERR_SYNTAX;
			(void)str_set(cmd->arg, p + 1, len - 1);
		}
		return SMTP_PROTO_OK;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		if (len <= 1)
			return SMTP_PROTO_ERR_ARG_MISSING;
		(void)str_set(cmd->arg, p + 1, len - 1);
		return SMTP_PROTO_OK;
	case SMTP_VERB_BDAT:
		return parse_bdat(cmd, p, len);
	case SMTP_VERB_AUTH:
		return parse_auth(cmd, p, len);
	case SMTP_VERB_NONE:
		break;
	}
	return SMTP_PROTO_ERR_UNKNOWN_VERB;
}

/* ------------------------------------------------------------ replies */

/* smtp_reply_new - empty reply */
struct smtp_reply *
smtp_reply_new(void)
{
	return xmalloc(sizeof(struct smtp_reply));
}

/* smtp_reply_clear - forget the lines */
void
smtp_reply_clear(struct smtp_reply *reply)
{
	size_t i;

	for (i = 0; i < reply->nlines; i++)
		str_free(&reply->lines[i]);
	reply->nlines = 0;
	reply->code = 0;
	reply->enhanced[0] = '\0';
	reply->total = 0;
}

/* smtp_reply_free - release */
void
smtp_reply_free(struct smtp_reply **replyp)
{
	if (*replyp == NULL)
		return;
	smtp_reply_clear(*replyp);
	free((*replyp)->lines);
	free(*replyp);
	*replyp = NULL;
}

/*
 * enhanced_len - length of an RFC 3463 status code at p[0..len) whose
 * class is cls ("5.1.1"), followed by a space or the end; 0 if none.
 */
static size_t
enhanced_len(const char *p, size_t len, char cls)
{
	size_t i = 0, part, digits;

	if (len < 5 || p[0] != cls || p[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		digits = 0;
		while (i < len && is_digit(p[i]) && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (part == 0) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && p[i] != ' ')
		return 0;
	return i;
}

/* smtp_reply_add_line - one line of a reply */
enum smtp_reply_result
smtp_reply_add_line(struct smtp_reply *reply, const char *p, size_t len,
    const char **error_r)
{
	int code;
	bool last;
	size_t elen, off;

	if (len < 3 || p[0] < '2' || p[0] > '5' || !is_digit(p[1]) ||
	    p[1] > '5' || !is_digit(p[2])) {
		*error_r = "malformed reply code";
		return SMTP_REPLY_ERROR;
	}
	if (memchr(p, '\0', len) != NULL) {
		*error_r = "NUL in reply";
		return SMTP_REPLY_ERROR;
	}
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (len == 3 || p[3] == ' ')
		last = true;
	else if (p[3] == '-')
		last = false;
	else {
		*error_r = "malformed reply line";
		return SMTP_REPLY_ERROR;
	}
	if (reply->nlines > 0 && code != reply->code) {
		*error_r = "reply code changed within a multi-line reply";
		return SMTP_REPLY_ERROR;
	}
	if (reply->nlines >= SMTP_REPLY_LINES_MAX ||
	    len > SMTP_REPLY_TOTAL_MAX - reply->total) {
		*error_r = "reply too long";
		return SMTP_REPLY_ERROR;
	}
	reply->code = code;
	reply->total += len;
	off = len > 3 ? 4 : 3;
	elen = enhanced_len(p + off, len - off, p[0]);
	if (elen > 0) {
		if (reply->nlines == 0) {
			memcpy(reply->enhanced, p + off, elen);
			reply->enhanced[elen] = '\0';
		}
		off += elen;
		if (off < len)
			off++;		/* the space after the code */
	}
	if (reply->nlines == reply->cap) {
		reply->cap = reply->cap == 0 ? 4 : reply->cap * 2;
		reply->lines = xreallocarray(reply->lines, reply->cap,
		    sizeof(*reply->lines));
	}
	reply->lines[reply->nlines] = str_new(len - off, 0);
	(void)str_append(reply->lines[reply->nlines], p + off, len - off);
	reply->nlines++;
	return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

/* smtp_reply_ehlo - extensions from an EHLO reply */
unsigned
smtp_reply_ehlo(const struct smtp_reply *reply, uint64_t *size_max_r)
{
	static const struct {
		const char *kw;
		unsigned ext;
	} kws[] = {
		{ "SIZE", SMTP_EXT_SIZE }, { "8BITMIME", SMTP_EXT_8BITMIME },
		{ "BINARYMIME", SMTP_EXT_BINARYMIME },
		{ "CHUNKING", SMTP_EXT_CHUNKING },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 }, { "DSN", SMTP_EXT_DSN },
		{ "AUTH", SMTP_EXT_AUTH }, { "PIPELINING", SMTP_EXT_PIPELINING },
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
	};
	unsigned ext = 0;
	size_t i, k;

	*size_max_r = 0;
	for (i = 1; i < reply->nlines; i++) {
		const char *p = str_c(reply->lines[i]);
		size_t len = str_len(reply->lines[i]), wl;

		for (wl = 0; wl < len && p[wl] != ' '; wl++)
			;
		for (k = 0; k < N_ELEMENTS(kws); k++) {
			if (!word_eq(p, wl, kws[k].kw))
				continue;
			ext |= kws[k].ext;
			if (kws[k].ext == SMTP_EXT_SIZE && wl < len &&
			    !parse_u64(p + wl + 1, len - wl - 1, size_max_r))
				*size_max_r = 0;
		}
	}
	return ext;
}
