/* SPDX-License-Identifier: MIT */
/*
 * sieve_validate - check a parsed script and lower it into run-time nodes
 *
 * DESCRIPTION
 *	Walks the syntax tree of sieve_parse.c: every command and test must
 *	be known and its extension required (RFC 5228 3.2: "require" first,
 *	unknown capabilities are errors), tags must belong to it and appear
 *	once per kind (one comparator, one match type, one address part),
 *	positional arguments must have the right count and types. The
 *	result is a tree of struct sv_node with everything decided that can
 *	be decided before a message arrives: ids instead of names, constant
 *	strings checked (redirect addresses, date parts, zones, relational
 *	operators, variable names, header field names), encoded-character
 *	sequences decoded (RFC 5228 2.4.2.4). Included scripts are loaded
 *	through the caller's loader and compiled into units of the same
 *	script, bounded by max_include_depth and max_includes.
 *
 *	Errors are reported with line and column and validation goes on
 *	with the next command, so one run reports as much as it can.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "alloc.h"
#include "rfc2047.h"
#include "str.h"

#include "sieve/sieve_private.h"

const char *const sv_ext_names[SV_EXT_COUNT] = {
	[SV_EXT_FILEINTO] = "fileinto",
	[SV_EXT_REJECT] = "reject",
	[SV_EXT_EREJECT] = "ereject",
	[SV_EXT_ENVELOPE] = "envelope",
	[SV_EXT_ENCODED] = "encoded-character",
	[SV_EXT_VARIABLES] = "variables",
	[SV_EXT_RELATIONAL] = "relational",
	[SV_EXT_NUMERIC] = "comparator-i;ascii-numeric",
	[SV_EXT_SUBADDRESS] = "subaddress",
	[SV_EXT_COPY] = "copy",
	[SV_EXT_BODY] = "body",
	[SV_EXT_IMAP4FLAGS] = "imap4flags",
	[SV_EXT_VACATION] = "vacation",
	[SV_EXT_VACATION_SECONDS] = "vacation-seconds",
	[SV_EXT_DATE] = "date",
	[SV_EXT_INDEX] = "index",
	[SV_EXT_INCLUDE] = "include",
	[SV_EXT_MAILBOX] = "mailbox",
	[SV_EXT_SPAMTEST] = "spamtest",
	[SV_EXT_SPAMTESTPLUS] = "spamtestplus",
	[SV_EXT_VIRUSTEST] = "virustest",
	[SV_EXT_ENVIRONMENT] = "environment",
	[SV_EXT_DUPLICATE] = "duplicate",
	[SV_EXT_EDITHEADER] = "editheader",
	[SV_EXT_REGEX] = "regex",
	[SV_EXT_IHAVE] = "ihave",
	[SV_EXT_ENOTIFY] = "enotify",
	[SV_EXT_FOREVERYPART] = "foreverypart",
	[SV_EXT_MIME] = "mime",
	[SV_EXT_EXTRACTTEXT] = "extracttext",
};

/* sv_ext_lookup - extension index for a capability name, or -1 */
int
sv_ext_lookup(const char *name, size_t len)
{
	int i;

	for (i = 0; i < SV_EXT_COUNT; i++)
		if (strlen(sv_ext_names[i]) == len &&
		    memcmp(sv_ext_names[i], name, len) == 0)
			return i;
	/* Comparators are required as "comparator-NAME". */
	if (len == 24 && memcmp(name, "comparator-i;ascii-casemap", 24) == 0)
		return -2;
	if (len == 26 && memcmp(name, "comparator-i;ascii-casemap", 26) == 0)
		return -2;
	if (len == 18 && memcmp(name, "comparator-i;octet", 18) == 0)
		return -2;
	return -1;
}

/* sieve_extensions - see sieve.h */
const char *
sieve_extensions(void)
{
	return "fileinto reject ereject envelope encoded-character variables "
	    "relational comparator-i;ascii-numeric subaddress copy body "
	    "imap4flags vacation vacation-seconds date index include mailbox "
	    "spamtest spamtestplus virustest environment duplicate editheader "
	    "regex ihave enotify foreverypart mime extracttext";
}

struct vctx {
	struct sieve_script *s;
	struct sv_unit *u;
	uint32_t unit;
	struct sv_diag d;
	const struct sieve_loader *loader;
	unsigned depth;		/* include depth */
	struct sieve_errors *errs;
	bool seen_cmd;		/* a command other than require was seen */
	bool reported[SV_ID_COUNT + 1];
	/* enclosing foreverypart loops, innermost last: :name or NULL */
	const struct sv_str *loops[SV_MAX_LOOP_DEPTH];
	unsigned nloops;
};

#define HAS(v, e) (((v)->u->ext >> (e)) & 1)

static void
verr(struct vctx *v, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
verr(struct vctx *v, unsigned line, unsigned col, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sv_diag(&v->d, false, line, col, "%s", buf);
}

static void
vwarn(struct vctx *v, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
vwarn(struct vctx *v, unsigned line, unsigned col, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sv_diag(&v->d, true, line, col, "%s", buf);
}

/* ------------------------------------------------------------ strings */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
utf8_put(struct str *out, unsigned long cp)
{
	char b[4];

	if (cp < 0x80) {
		b[0] = (char)cp;
		str_append(out, b, 1);
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		str_append(out, b, 2);
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		str_append(out, b, 3);
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		str_append(out, b, 4);
	}
}

/*
 * encoded_one - try to decode "${hex:..}" / "${unicode:..}" at p (which
 * starts with "${"); returns the length consumed or 0 if not one.
 * *bad is set for a syntactically valid but forbidden code point.
 */
static size_t
encoded_one(const char *p, size_t n, struct str *out, bool *bad)
{
	size_t i, start;
	bool uni;

	if (n > 6 && strncasecmp(p + 2, "hex:", 4) == 0) {
		uni = false;
		i = 6;
	} else if (n > 10 && strncasecmp(p + 2, "unicode:", 8) == 0) {
		uni = true;
		i = 10;
	} else
		return 0;
	start = str_len(out);
	for (;;) {
		size_t d = 0;
		unsigned long cp = 0;

		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
		    p[i] == '\n'))
			i++;
		if (i < n && p[i] == '}')
			return i + 1;
		while (i < n && hexval((unsigned char)p[i]) >= 0) {
			if (cp > 0xfffffff) {
				str_truncate(out, start);
				return 0;
			}
			cp = cp * 16 + (unsigned long)hexval((unsigned char)p[i]);
			i++;
			d++;
		}
		if (d == 0 || (!uni && d > 2) || i >= n ||
		    (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n' && p[i] != '}')) {
			str_truncate(out, start);
			return 0;
		}
		if (uni) {
			if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				*bad = true;
				cp = 0xfffd;
			}
			utf8_put(out, cp);
		} else {
			char ch = (char)cp;

			str_append(out, &ch, 1);
		}
	}
}

/* decode_encoded - RFC 5228 2.4.2.4 on one string, in place (arena copy) */
static void
decode_encoded(struct vctx *v, struct sv_str *s, unsigned line, unsigned col)
{
	struct str *out;
	size_t i = 0;
	bool bad = false, changed = false;

	if (s->len < 4 || memmem(s->p, s->len, "${", 2) == NULL)
		return;
	out = str_new(s->len, 0);
	while (i < s->len) {
		if (s->p[i] == '$' && i + 1 < s->len && s->p[i + 1] == '{') {
			size_t k = encoded_one(s->p + i, s->len - i, out, &bad);

			if (k > 0) {
				i += k;
				changed = true;
				continue;
			}
		}
		str_append(out, s->p + i, 1);
		i++;
	}
	if (bad)
		verr(v, line, col, "invalid Unicode code point in "
		    "encoded-character sequence");
	if (changed) {
		s->len = (uint32_t)str_len(out);
		s->p = sv_memdup(&v->s->arena, str_c(out), s->len);
		s->var = memchr(s->p, '$', s->len) != NULL;
	}
	str_free(&out);
}

/* ------------------------------------------------------------ args */

struct targs {
	struct sv_cmd *c;
	struct sv_arg *pos[8];
	unsigned npos;
	bool has_cmp, has_mt, has_part, has_body;
	bool bad;
};

static struct sv_slist *
arg_list(struct vctx *v, struct sv_arg *a)
{
	struct sv_slist *l = sv_alloc(&v->s->arena, sizeof(*l));

	*l = a->list;
	l->pre = NULL;
	return l;
}

/* need - the next argument after a tag, of the given type */
static struct sv_arg *
need(struct vctx *v, struct sv_cmd *c, uint32_t *i, enum sv_arg_type t,
    const char *tag)
{
	struct sv_arg *a;

	if (*i + 1 >= c->nargs) {
		verr(v, c->args[*i].line, c->args[*i].col,
		    "the :%s tag of %s needs an argument", tag, c->name);
		return NULL;
	}
	a = &c->args[++*i];
	if (t == SV_ARG_LIST && (a->type == SV_ARG_STR || a->type == SV_ARG_LIST))
		return a;
	if (a->type != t) {
		verr(v, a->line, a->col, "the :%s tag of %s needs a %s "
		    "argument", tag, c->name, t == SV_ARG_NUM ? "number" :
		    t == SV_ARG_STR ? "string" : "string list");
		return NULL;
	}
	return a;
}

static bool
const_str(const struct sv_arg *a, const char **p_r, size_t *n_r)
{
	*p_r = "";
	*n_r = 0;
	if (a->type != SV_ARG_STR)
		return false;
	*p_r = a->list.v[0].p;
	*n_r = a->list.v[0].len;
	return true;
}

/*
 * common_tag - handle comparator / match type / address part / index
 * tags shared by several tests. Returns 1 if handled, 0 if not one of
 * them, -1 on error (reported).
 */
static int
common_tag(struct vctx *v, struct sv_node *nd, struct targs *ta, uint32_t *i,
    bool want_cmp, bool want_mt, bool want_part, bool want_index)
{
	struct sv_cmd *c = ta->c;
	struct sv_arg *a = &c->args[*i];
	const char *t = a->tag;

	if (want_cmp && strcasecmp(t, "comparator") == 0) {
		struct sv_arg *b = need(v, c, i, SV_ARG_STR, t);
		const char *p;
		size_t n;

		if (b == NULL)
			return -1;
		if (ta->has_cmp) {
			verr(v, a->line, a->col, "more than one comparator");
			return -1;
		}
		ta->has_cmp = true;
		const_str(b, &p, &n);
		if (n == 7 && memcmp(p, "i;octet", 7) == 0)
			nd->cmp = SV_CMP_OCTET;
		else if (n == 15 && memcmp(p, "i;ascii-casemap", 15) == 0)
			nd->cmp = SV_CMP_CASEMAP;
		else if (n == 15 && memcmp(p, "i;ascii-numeric", 15) == 0 &&
		    HAS(v, SV_EXT_NUMERIC))
			nd->cmp = SV_CMP_NUMERIC;
		else {
			verr(v, b->line, b->col, "unknown comparator '%.*s'",
			    (int)MIN(n, 64), p);
			return -1;
		}
		return 1;
	}
	if (want_mt) {
		int mt = -1;

		if (strcasecmp(t, "is") == 0)
			mt = SV_MT_IS;
		else if (strcasecmp(t, "contains") == 0)
			mt = SV_MT_CONTAINS;
		else if (strcasecmp(t, "matches") == 0)
			mt = SV_MT_MATCHES;
		else if (strcasecmp(t, "regex") == 0 && HAS(v, SV_EXT_REGEX))
			mt = SV_MT_REGEX;
		else if (strcasecmp(t, "count") == 0 && HAS(v, SV_EXT_RELATIONAL))
			mt = SV_MT_COUNT;
		else if (strcasecmp(t, "value") == 0 && HAS(v, SV_EXT_RELATIONAL))
			mt = SV_MT_VALUE;
		if (mt >= 0) {
			if (ta->has_mt) {
				verr(v, a->line, a->col,
				    "more than one match type");
				return -1;
			}
			ta->has_mt = true;
			nd->mt = (uint8_t)mt;
			if (mt == SV_MT_COUNT || mt == SV_MT_VALUE) {
				struct sv_arg *b = need(v, c, i, SV_ARG_STR, t);
				static const char *const ops[] = { "gt", "ge",
				    "lt", "le", "eq", "ne" };
				const char *p;
				size_t n, k;

				if (b == NULL)
					return -1;
				const_str(b, &p, &n);
				for (k = 0; k < N_ELEMENTS(ops); k++)
					if (n == 2 && strncasecmp(p, ops[k], 2) == 0)
						break;
				if (k == N_ELEMENTS(ops)) {
					verr(v, b->line, b->col, "invalid "
					    "relational match '%.*s'",
					    (int)MIN(n, 64), p);
					return -1;
				}
				nd->rel = (uint8_t)k;
			}
			return 1;
		}
	}
	if (want_part) {
		int part = -1;

		if (strcasecmp(t, "all") == 0)
			part = SV_PART_ALL;
		else if (strcasecmp(t, "localpart") == 0)
			part = SV_PART_LOCAL;
		else if (strcasecmp(t, "domain") == 0)
			part = SV_PART_DOMAIN;
		else if (strcasecmp(t, "user") == 0 && HAS(v, SV_EXT_SUBADDRESS))
			part = SV_PART_USER;
		else if (strcasecmp(t, "detail") == 0 && HAS(v, SV_EXT_SUBADDRESS))
			part = SV_PART_DETAIL;
		if (part >= 0) {
			if (ta->has_part) {
				verr(v, a->line, a->col,
				    "more than one address part");
				return -1;
			}
			ta->has_part = true;
			nd->part = (uint8_t)part;
			return 1;
		}
	}
	if (want_index && HAS(v, SV_EXT_INDEX)) {
		if (strcasecmp(t, "index") == 0) {
			struct sv_arg *b = need(v, c, i, SV_ARG_NUM, t);

			if (b == NULL)
				return -1;
			if (b->num == 0 || b->num > INT32_MAX) {
				verr(v, b->line, b->col,
				    "the :index value must be at least 1");
				return -1;
			}
			nd->num = (int64_t)b->num;
			nd->flags |= SV_F_HAS_INDEX;
			return 1;
		}
		if (strcasecmp(t, "last") == 0) {
			nd->flags |= SV_F_LAST;
			return 1;
		}
	}
	return 0;
}

static void
unknown_tag(struct vctx *v, struct sv_cmd *c, struct sv_arg *a)
{
	verr(v, a->line, a->col, "unknown tagged argument ':%s' for the %s %s",
	    a->tag, c->name, c->has_block || c->tests == NULL ? "command" :
	    "test");
}

/* positional - collect the non-tag args after tags were consumed */
static void
positional(struct targs *ta, struct sv_arg *a)
{
	if (ta->npos < N_ELEMENTS(ta->pos))
		ta->pos[ta->npos] = a;
	ta->npos++;
}

/* want_pos - check positional count and types ("s" string, "l" list, "n" number) */
static bool
want_pos(struct vctx *v, struct targs *ta, const char *spec, unsigned optional)
{
	size_t need_n = strlen(spec), i;
	struct sv_cmd *c = ta->c;

	if (ta->npos > need_n || ta->npos + optional < need_n) {
		verr(v, c->line, c->col, "the %s %s expects %zu positional "
		    "argument%s but %u were given", c->name,
		    c->tests != NULL || c->has_block ? "command" : "command or test",
		    need_n, need_n == 1 ? "" : "s", ta->npos);
		return false;
	}
	/* With optional leading args missing, align from the right. */
	for (i = 0; i < ta->npos; i++) {
		struct sv_arg *a = ta->pos[i];
		char want = spec[i + (need_n - ta->npos)];

		if (want == 'n' && a->type != SV_ARG_NUM) {
			verr(v, a->line, a->col, "%s: argument %zu must be a "
			    "number", c->name, i + 1);
			return false;
		}
		if (want == 's' && a->type != SV_ARG_STR) {
			verr(v, a->line, a->col, "%s: argument %zu must be a "
			    "string", c->name, i + 1);
			return false;
		}
		if (want == 'l' && a->type != SV_ARG_STR &&
		    a->type != SV_ARG_LIST) {
			verr(v, a->line, a->col, "%s: argument %zu must be a "
			    "string list", c->name, i + 1);
			return false;
		}
	}
	return true;
}

static bool
valid_header_name(const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 32 || (unsigned char)p[i] >= 127 ||
		    p[i] == ':')
			return false;
	return true;
}

static bool
valid_identifier(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_'))
			return false;
	return true;
}

static bool
valid_zone(const char *p, size_t n)
{
	return n == 5 && (p[0] == '+' || p[0] == '-') &&
	    isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
	    isdigit((unsigned char)p[3]) && isdigit((unsigned char)p[4]) &&
	    p[3] <= '5';
}

static const char *const date_parts[] = { "year", "month", "day", "date",
    "julian", "hour", "minute", "second", "time", "iso8601", "std11",
    "zone", "weekday" };

/* check_match - comparator/match type combinations that cannot work */
static bool
check_match(struct vctx *v, struct sv_node *nd, struct sv_cmd *c)
{
	if (nd->cmp == SV_CMP_NUMERIC &&
	    (nd->mt == SV_MT_CONTAINS || nd->mt == SV_MT_MATCHES ||
	    nd->mt == SV_MT_REGEX)) {
		verr(v, c->line, c->col, "the i;ascii-numeric comparator "
		    "does not support the %s match type",
		    nd->mt == SV_MT_CONTAINS ? ":contains" :
		    nd->mt == SV_MT_MATCHES ? ":matches" : ":regex");
		return false;
	}
	return true;
}

/* check_keys - constant regexes must compile */
static bool
check_keys(struct vctx *v, struct sv_node *nd, struct sv_slist *keys,
    unsigned line, unsigned col)
{
	uint32_t i;

	if (nd->mt != SV_MT_REGEX || keys == NULL)
		return true;
	for (i = 0; i < keys->n; i++) {
		const char *error;
		regex_t *re;

		if (keys->v[i].var)
			continue;
		re = sv_regex_compile(keys->v[i].p, keys->v[i].len,
		    nd->cmp == SV_CMP_CASEMAP, v->s->limits.max_regex_size,
		    &error);
		if (re == NULL) {
			verr(v, line, col, "invalid regular expression '%.*s': %s",
			    (int)MIN(keys->v[i].len, 64), keys->v[i].p, error);
			return false;
		}
		regfree(re);
		free(re);
	}
	return true;
}

static bool
valid_utf8_list(struct vctx *v, struct sv_slist *l, unsigned line,
    unsigned col, const char *what)
{
	uint32_t i;

	for (i = 0; i < l->n; i++)
		if (!rfc2047_utf8_valid(l->v[i].p, l->v[i].len)) {
			verr(v, line, col, "%s is not valid UTF-8", what);
			return false;
		}
	return true;
}

static bool
valid_flags(struct vctx *v, struct sv_slist *l, unsigned line, unsigned col)
{
	(void)v; (void)line; (void)col;
	return l != NULL;
}

/* ------------------------------------------------------------ tests/commands */

static int validate_test(struct vctx *v, struct sv_cmd *c, struct sv_node *nd,
    unsigned depth);
static int validate_block(struct vctx *v, struct sv_cmd *cmds, uint32_t n,
    struct sv_node **out, uint32_t *nout, unsigned depth, bool top);

struct cmdinfo {
	const char *name;
	enum sv_id id;
	int ext;		/* -1: core */
	bool test;
};

static const struct cmdinfo cmdinfo[] = {
	{ "if", SV_C_IF, -1, false },
	{ "elsif", SV_C_ELSIF, -1, false },
	{ "else", SV_C_ELSE, -1, false },
	{ "stop", SV_C_STOP, -1, false },
	{ "require", SV_C_REQUIRE, -1, false },
	{ "keep", SV_C_KEEP, -1, false },
	{ "discard", SV_C_DISCARD, -1, false },
	{ "redirect", SV_C_REDIRECT, -1, false },
	{ "fileinto", SV_C_FILEINTO, SV_EXT_FILEINTO, false },
	{ "reject", SV_C_REJECT, SV_EXT_REJECT, false },
	{ "ereject", SV_C_EREJECT, SV_EXT_EREJECT, false },
	{ "vacation", SV_C_VACATION, SV_EXT_VACATION, false },
	{ "set", SV_C_SET, SV_EXT_VARIABLES, false },
	{ "setflag", SV_C_SETFLAG, SV_EXT_IMAP4FLAGS, false },
	{ "addflag", SV_C_ADDFLAG, SV_EXT_IMAP4FLAGS, false },
	{ "removeflag", SV_C_REMOVEFLAG, SV_EXT_IMAP4FLAGS, false },
	{ "addheader", SV_C_ADDHEADER, SV_EXT_EDITHEADER, false },
	{ "deleteheader", SV_C_DELETEHEADER, SV_EXT_EDITHEADER, false },
	{ "include", SV_C_INCLUDE, SV_EXT_INCLUDE, false },
	{ "return", SV_C_RETURN, SV_EXT_INCLUDE, false },
	{ "global", SV_C_GLOBAL, SV_EXT_INCLUDE, false },
	{ "notify", SV_C_NOTIFY, SV_EXT_ENOTIFY, false },
	{ "foreverypart", SV_C_FOREVERYPART, SV_EXT_FOREVERYPART, false },
	{ "break", SV_C_BREAK, SV_EXT_FOREVERYPART, false },
	{ "extracttext", SV_C_EXTRACTTEXT, SV_EXT_EXTRACTTEXT, false },
	{ "address", SV_T_ADDRESS, -1, true },
	{ "allof", SV_T_ALLOF, -1, true },
	{ "anyof", SV_T_ANYOF, -1, true },
	{ "envelope", SV_T_ENVELOPE, SV_EXT_ENVELOPE, true },
	{ "exists", SV_T_EXISTS, -1, true },
	{ "false", SV_T_FALSE, -1, true },
	{ "header", SV_T_HEADER, -1, true },
	{ "not", SV_T_NOT, -1, true },
	{ "size", SV_T_SIZE, -1, true },
	{ "true", SV_T_TRUE, -1, true },
	{ "body", SV_T_BODY, SV_EXT_BODY, true },
	{ "string", SV_T_STRING, SV_EXT_VARIABLES, true },
	{ "hasflag", SV_T_HASFLAG, SV_EXT_IMAP4FLAGS, true },
	{ "date", SV_T_DATE, SV_EXT_DATE, true },
	{ "currentdate", SV_T_CURRENTDATE, SV_EXT_DATE, true },
	{ "mailboxexists", SV_T_MAILBOXEXISTS, SV_EXT_MAILBOX, true },
	{ "spamtest", SV_T_SPAMTEST, SV_EXT_SPAMTEST, true },
	{ "virustest", SV_T_VIRUSTEST, SV_EXT_VIRUSTEST, true },
	{ "environment", SV_T_ENVIRONMENT, SV_EXT_ENVIRONMENT, true },
	{ "duplicate", SV_T_DUPLICATE, SV_EXT_DUPLICATE, true },
	{ "ihave", SV_T_IHAVE, SV_EXT_IHAVE, true },
	{ "valid_notify_method", SV_T_VALID_NOTIFY_METHOD, SV_EXT_ENOTIFY, true },
	{ "notify_method_capability", SV_T_NOTIFY_METHOD_CAPABILITY,
	    SV_EXT_ENOTIFY, true },
};

static const struct cmdinfo *
lookup_cmd(struct vctx *v, const char *name)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(cmdinfo); i++) {
		if (strcasecmp(cmdinfo[i].name, name) != 0)
			continue;
		if (cmdinfo[i].ext < 0 || HAS(v, cmdinfo[i].ext))
			return &cmdinfo[i];
		/* spamtestplus brings spamtest */
		if (cmdinfo[i].id == SV_T_SPAMTEST && HAS(v, SV_EXT_SPAMTESTPLUS))
			return &cmdinfo[i];
		if (cmdinfo[i].id == SV_C_VACATION &&
		    HAS(v, SV_EXT_VACATION_SECONDS))
			return &cmdinfo[i];
		return NULL;
	}
	return NULL;
}

/* finish_strings - per string: encoded-character, and no variables unless required */
static void
finish_list(struct vctx *v, struct sv_slist *l, unsigned line, unsigned col)
{
	uint32_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++) {
		if (HAS(v, SV_EXT_ENCODED))
			decode_encoded(v, &l->v[i], line, col);
		if (!HAS(v, SV_EXT_VARIABLES))
			l->v[i].var = false;
		else
			l->v[i].var = memmem(l->v[i].p, l->v[i].len, "${", 2) != NULL;
	}
}

static void
finish_node(struct vctx *v, struct sv_node *nd)
{
	int i;

	for (i = 0; i < SV_NSLOTS; i++)
		finish_list(v, nd->s[i], nd->line, nd->col);
}

/*
 * mime_tag - RFC 5703 section 4: :mime and :anychild on header,
 * address and exists; :type, :subtype, :contenttype and :param on
 * header only. Returns 1 if handled, 0 if not one of them, -1 on error.
 */
static int
mime_tag(struct vctx *v, struct sv_node *nd, struct sv_cmd *c, uint32_t *i)
{
	struct sv_arg *a = &c->args[*i];
	const char *t = a->tag;
	static const struct { const char *n; uint8_t opt; } opts[] = {
		{ "type", SV_MIMEOPT_TYPE },
		{ "subtype", SV_MIMEOPT_SUBTYPE },
		{ "contenttype", SV_MIMEOPT_CONTENTTYPE },
		{ "param", SV_MIMEOPT_PARAM },
	};
	size_t k;

	if (!HAS(v, SV_EXT_MIME))
		return 0;
	if (strcasecmp(t, "mime") == 0) {
		nd->flags |= SV_F_MIME;
		return 1;
	}
	if (strcasecmp(t, "anychild") == 0) {
		nd->flags |= SV_F_ANYCHILD;
		return 1;
	}
	if (nd->id != SV_T_HEADER)
		return 0;
	for (k = 0; k < N_ELEMENTS(opts); k++)
		if (strcasecmp(t, opts[k].n) == 0)
			break;
	if (k == N_ELEMENTS(opts))
		return 0;
	if (nd->mimeopt != SV_MIMEOPT_NONE) {
		verr(v, a->line, a->col, "the :type, :subtype, :contenttype, "
		    "and :param arguments for the header test are mutually "
		    "exclusive, but more than one was specified");
		return -1;
	}
	nd->mimeopt = opts[k].opt;
	if (nd->mimeopt == SV_MIMEOPT_PARAM) {
		struct sv_arg *b = need(v, c, i, SV_ARG_LIST, t);

		if (b == NULL)
			return -1;
		nd->s[SV_S_C] = arg_list(v, b);
	}
	return 1;
}

static int
validate_tests_args(struct vctx *v, struct sv_cmd *c, struct sv_node *nd,
    struct targs *ta)
{
	uint32_t i;
	int rc;

	memset(ta, 0, sizeof(*ta));
	ta->c = c;
	nd->cmp = SV_CMP_CASEMAP;
	nd->mt = SV_MT_IS;
	nd->part = SV_PART_ALL;
	for (i = 0; i < c->nargs; i++) {
		struct sv_arg *a = &c->args[i];

		if (a->type != SV_ARG_TAG) {
			positional(ta, a);
			continue;
		}
		rc = 0;
		switch (nd->id) {
		case SV_T_ADDRESS:
			rc = common_tag(v, nd, ta, &i, true, true, true, true);
			if (rc == 0)
				rc = mime_tag(v, nd, c, &i);
			break;
		case SV_T_ENVELOPE:
			rc = common_tag(v, nd, ta, &i, true, true, true, false);
			break;
		case SV_T_HEADER:
			rc = common_tag(v, nd, ta, &i, true, true, false, true);
			if (rc == 0)
				rc = mime_tag(v, nd, c, &i);
			break;
		case SV_T_EXISTS:
			rc = mime_tag(v, nd, c, &i);
			break;
		case SV_T_STRING: case SV_T_HASFLAG: case SV_T_ENVIRONMENT:
		case SV_T_VIRUSTEST: case SV_T_NOTIFY_METHOD_CAPABILITY:
			rc = common_tag(v, nd, ta, &i, true, true, false, false);
			break;
		case SV_T_SPAMTEST:
			rc = common_tag(v, nd, ta, &i, true, true, false, false);
			if (rc == 0 && strcasecmp(a->tag, "percent") == 0 &&
			    HAS(v, SV_EXT_SPAMTESTPLUS)) {
				nd->flags |= SV_F_PERCENT;
				rc = 1;
			}
			break;
		case SV_T_DATE: case SV_T_CURRENTDATE:
			rc = common_tag(v, nd, ta, &i, true, true, false,
			    nd->id == SV_T_DATE);
			if (rc == 0 && strcasecmp(a->tag, "zone") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_STR,
				    a->tag);
				const char *p;
				size_t n;

				if (b == NULL)
					return -1;
				const_str(b, &p, &n);
				/* Pigeonhole warns and uses the default zone */
				if (!valid_zone(p, n) &&
				    memmem(p, n, "${", 2) == NULL)
					vwarn(v, b->line, b->col, "invalid time "
					    "zone '%.*s' (ignored)",
					    (int)MIN(n, 32), p);
				nd->s[SV_S_FROM] = arg_list(v, b);
				nd->flags |= SV_F_HAS_ZONE;
				rc = 1;
			} else if (rc == 0 && nd->id == SV_T_DATE &&
			    strcasecmp(a->tag, "originalzone") == 0) {
				nd->flags |= SV_F_ORIGZONE;
				rc = 1;
			}
			break;
		case SV_T_BODY:
			rc = common_tag(v, nd, ta, &i, true, true, false, false);
			if (rc == 0) {
				if (strcasecmp(a->tag, "raw") == 0 ||
				    strcasecmp(a->tag, "text") == 0 ||
				    strcasecmp(a->tag, "content") == 0) {
					if (ta->has_body) {
						verr(v, a->line, a->col, "more "
						    "than one body transform");
						return -1;
					}
					ta->has_body = true;
					rc = 1;
					if (strcasecmp(a->tag, "raw") == 0)
						nd->body = SV_BODY_RAW;
					else if (strcasecmp(a->tag, "text") == 0)
						nd->body = SV_BODY_TEXT;
					else {
						struct sv_arg *b = need(v, c, &i,
						    SV_ARG_LIST, a->tag);

						if (b == NULL)
							return -1;
						nd->body = SV_BODY_CONTENT;
						nd->s[SV_S_SUBJECT] = arg_list(v, b);
					}
				}
			}
			break;
		case SV_T_SIZE:
			if (strcasecmp(a->tag, "over") == 0 ||
			    strcasecmp(a->tag, "under") == 0) {
				if (ta->has_mt) {
					verr(v, a->line, a->col, "size: "
					    "only one of :over and :under");
					return -1;
				}
				ta->has_mt = true;
				if (strcasecmp(a->tag, "over") == 0)
					nd->flags |= SV_F_OVER;
				rc = 1;
			}
			break;
		case SV_T_DUPLICATE:
			if (strcasecmp(a->tag, "handle") == 0 ||
			    strcasecmp(a->tag, "header") == 0 ||
			    strcasecmp(a->tag, "uniqueid") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_STR,
				    a->tag);
				int slot = strcasecmp(a->tag, "handle") == 0 ?
				    SV_S_SUBJECT : SV_S_FROM;

				if (b == NULL)
					return -1;
				if (nd->s[slot] != NULL) {
					verr(v, a->line, a->col, "duplicate: "
					    "only one of :header and :uniqueid");
					return -1;
				}
				nd->s[slot] = arg_list(v, b);
				if (strcasecmp(a->tag, "header") == 0)
					nd->flags |= SV_F_UNIQUE_HDR;
				rc = 1;
			} else if (strcasecmp(a->tag, "seconds") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_NUM,
				    a->tag);

				if (b == NULL)
					return -1;
				nd->num = (int64_t)b->num;
				nd->flags |= SV_F_HAS_PERIOD;
				rc = 1;
			} else if (strcasecmp(a->tag, "last") == 0) {
				nd->flags |= SV_F_LAST;
				rc = 1;
			}
			break;
		default:
			break;
		}
		if (rc < 0)
			return -1;
		if (rc == 0) {
			unknown_tag(v, c, a);
			return -1;
		}
	}
	return 0;
}

static int
validate_test(struct vctx *v, struct sv_cmd *c, struct sv_node *nd,
    unsigned depth)
{
	const struct cmdinfo *ci = lookup_cmd(v, c->name);
	struct targs ta;
	uint32_t i;

	nd->line = c->line;
	nd->col = c->col;
	if (ci == NULL) {
		verr(v, c->line, c->col, "unknown test '%s'", c->name);
		return -1;
	}
	if (!ci->test) {
		verr(v, c->line, c->col, "'%s' is a command, not a test",
		    c->name);
		return -1;
	}
	nd->id = (uint16_t)ci->id;
	if (validate_tests_args(v, c, nd, &ta) < 0)
		return -1;
	if (nd->id != SV_T_ALLOF && nd->id != SV_T_ANYOF &&
	    nd->id != SV_T_NOT && c->ntests > 0) {
		verr(v, c->line, c->col, "the %s test takes no tests", c->name);
		return -1;
	}
	switch (nd->id) {
	case SV_T_TRUE: case SV_T_FALSE:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		break;
	case SV_T_NOT:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		if (c->ntests != 1 || c->test_list) {
			verr(v, c->line, c->col, "the not test needs exactly "
			    "one test (not a test list)");
			return -1;
		}
		/* FALLTHROUGH */
	case SV_T_ALLOF: case SV_T_ANYOF:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		if (nd->id != SV_T_NOT && (!c->test_list || c->ntests == 0)) {
			verr(v, c->line, c->col, "the %s test needs a test "
			    "list", c->name);
			return -1;
		}
		nd->nkids = c->ntests;
		nd->kids = sv_alloc(&v->s->arena, c->ntests * sizeof(*nd->kids));
		for (i = 0; i < c->ntests; i++)
			if (validate_test(v, &c->tests[i], &nd->kids[i],
			    depth + 1) < 0)
				return -1;
		break;
	case SV_T_ADDRESS: case SV_T_HEADER: case SV_T_STRING:
	case SV_T_ENVELOPE: case SV_T_ENVIRONMENT:
		if (!want_pos(v, &ta, nd->id == SV_T_ENVIRONMENT ? "sl" : "ll", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		if (nd->id == SV_T_HEADER || nd->id == SV_T_ADDRESS) {
			for (i = 0; i < nd->s[SV_S_A]->n; i++) {
				struct sv_str *h = &nd->s[SV_S_A]->v[i];

				if (!h->var && !valid_header_name(h->p, h->len)) {
					verr(v, ta.pos[0]->line, ta.pos[0]->col,
					    "invalid header name '%.*s'",
					    (int)MIN(h->len, 64), h->p);
					return -1;
				}
			}
		}
		if (nd->id == SV_T_ENVELOPE) {
			for (i = 0; i < nd->s[SV_S_A]->n; i++) {
				struct sv_str *h = &nd->s[SV_S_A]->v[i];

				if (!h->var && strcasecmp(h->p, "from") != 0 &&
				    strcasecmp(h->p, "to") != 0 &&
				    strcasecmp(h->p, "auth") != 0) {
					verr(v, ta.pos[0]->line, ta.pos[0]->col,
					    "unknown envelope part '%.*s'",
					    (int)MIN(h->len, 64), h->p);
					return -1;
				}
			}
		}
		if (!check_match(v, nd, c) ||
		    !check_keys(v, nd, nd->s[SV_S_B], ta.pos[1]->line,
		    ta.pos[1]->col))
			return -1;
		break;
	case SV_T_EXISTS:
		if (!want_pos(v, &ta, "l", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		break;
	case SV_T_MAILBOXEXISTS:
		if (!want_pos(v, &ta, "l", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		break;
	case SV_T_SIZE:
		if (!ta.has_mt) {
			verr(v, c->line, c->col, "the size test needs :over "
			    "or :under");
			return -1;
		}
		if (!want_pos(v, &ta, "n", 0))
			return -1;
		nd->num = (int64_t)ta.pos[0]->num;
		break;
	case SV_T_BODY:
		if (!want_pos(v, &ta, "l", 0))
			return -1;
		nd->s[SV_S_B] = arg_list(v, ta.pos[0]);
		if (!check_match(v, nd, c) ||
		    !check_keys(v, nd, nd->s[SV_S_B], ta.pos[0]->line,
		    ta.pos[0]->col))
			return -1;
		break;
	case SV_T_HASFLAG:
		if (!want_pos(v, &ta, "ll", 1))
			return -1;
		if (ta.npos == 2) {
			nd->s[SV_S_FLAGS] = arg_list(v, ta.pos[0]);
			nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		} else
			nd->s[SV_S_B] = arg_list(v, ta.pos[0]);
		if (!check_match(v, nd, c))
			return -1;
		break;
	case SV_T_DATE: case SV_T_CURRENTDATE: {
		const char *p;
		size_t n, k;
		struct sv_arg *dp;

		if (!want_pos(v, &ta, nd->id == SV_T_DATE ? "ssl" : "sl", 0))
			return -1;
		if (nd->id == SV_T_DATE) {
			nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
			dp = ta.pos[1];
			nd->s[SV_S_B] = arg_list(v, ta.pos[2]);
		} else {
			dp = ta.pos[0];
			nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		}
		nd->s[SV_S_C] = arg_list(v, dp);
		const_str(dp, &p, &n);
		for (k = 0; k < N_ELEMENTS(date_parts); k++)
			if (strlen(date_parts[k]) == n &&
			    strncasecmp(date_parts[k], p, n) == 0)
				break;
		/* RFC 5260 4.2: an unknown part only never matches */
		if (k == N_ELEMENTS(date_parts) && memmem(p, n, "${", 2) == NULL)
			vwarn(v, dp->line, dp->col, "unknown date part '%.*s'",
			    (int)MIN(n, 32), p);
		if (!check_match(v, nd, c))
			return -1;
		break;
	}
	case SV_T_SPAMTEST: case SV_T_VIRUSTEST:
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_B] = arg_list(v, ta.pos[0]);
		if (!check_match(v, nd, c))
			return -1;
		break;
	case SV_T_DUPLICATE:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		break;
	case SV_T_IHAVE: case SV_T_VALID_NOTIFY_METHOD:
		if (!want_pos(v, &ta, "l", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		break;
	case SV_T_NOTIFY_METHOD_CAPABILITY:
		if (!want_pos(v, &ta, "ssl", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		nd->s[SV_S_C] = arg_list(v, ta.pos[1]);
		nd->s[SV_S_B] = arg_list(v, ta.pos[2]);
		if (!check_match(v, nd, c) ||
		    !check_keys(v, nd, nd->s[SV_S_B], ta.pos[2]->line,
		    ta.pos[2]->col))
			return -1;
		break;
	}
	if (((nd->flags & SV_F_ANYCHILD) || nd->mimeopt != SV_MIMEOPT_NONE) &&
	    !(nd->flags & SV_F_MIME)) {
		verr(v, c->line, c->col, "the :%s tag for the %s test cannot "
		    "be specified without the :mime tag",
		    (nd->flags & SV_F_ANYCHILD) ? "anychild" :
		    nd->mimeopt == SV_MIMEOPT_TYPE ? "type" :
		    nd->mimeopt == SV_MIMEOPT_SUBTYPE ? "subtype" :
		    nd->mimeopt == SV_MIMEOPT_CONTENTTYPE ? "contenttype" :
		    "param", c->name);
		return -1;
	}
	if ((ta.has_part || nd->part != SV_PART_ALL) && nd->id != SV_T_ADDRESS &&
	    nd->id != SV_T_ENVELOPE) {
		verr(v, c->line, c->col, "address part for a non-address test");
		return -1;
	}
	finish_node(v, nd);
	(void)depth;
	return 0;
}

static bool
check_redirect(struct vctx *v, const struct sv_str *s, unsigned line,
    unsigned col)
{
	struct address *addr;
	enum address_error e;

	if (s->var)
		return true;
	addr = address_new();
	e = address_parse_mailbox(s->p, s->len, ADDRESS_SMTPUTF8, addr);
	if (e != ADDRESS_OK) {
		/* Accept a display-name form too, as Pigeonhole does. */
		struct address_list *l = address_list_new();
		const char *error;

		if (address_list_parse(s->p, s->len, ADDRESS_LIST_UTF8, 2, l,
		    &error) == 0 && l->count == 1 &&
		    str_len(l->items[0].addr->domain) > 0)
			e = ADDRESS_OK;
		address_list_free(&l);
	}
	address_free(&addr);
	if (e != ADDRESS_OK) {
		verr(v, line, col, "invalid redirect address '%.*s': %s",
		    (int)MIN(s->len, 128), s->p, address_error_str(e));
		return false;
	}
	return true;
}

/*
 * set_modifier - a modifier tag of set (RFC 5229 4.1) or extracttext
 * (RFC 5703 7, the same modifiers). Returns 1 if handled, 0 if not a
 * modifier, -1 on error (reported).
 */
static int
set_modifier(struct vctx *v, struct sv_node *nd, const struct sv_arg *a)
{
	static const struct { const char *n; uint8_t m; } mods[] = {
		{ "lower", SV_MOD_LOWER },
		{ "upper", SV_MOD_UPPER },
		{ "lowerfirst", SV_MOD_LOWERFIRST },
		{ "upperfirst", SV_MOD_UPPERFIRST },
		{ "quotewildcard", SV_MOD_QUOTEWILDCARD },
		{ "length", SV_MOD_LENGTH },
	};
	const char *t = a->tag;
	size_t k;

	for (k = 0; k < N_ELEMENTS(mods); k++)
		if (strcasecmp(t, mods[k].n) == 0) {
			uint8_t m = mods[k].m;

			/* one of each precedence group */
			if (((m & (SV_MOD_LOWER | SV_MOD_UPPER)) &&
			    (nd->mods & (SV_MOD_LOWER | SV_MOD_UPPER))) ||
			    ((m & (SV_MOD_LOWERFIRST | SV_MOD_UPPERFIRST)) &&
			    (nd->mods & (SV_MOD_LOWERFIRST | SV_MOD_UPPERFIRST)))) {
				verr(v, a->line, a->col, "%s: conflicting "
				    "modifiers", nd->id == SV_C_SET ? "set" :
				    "extracttext");
				return -1;
			}
			nd->mods |= m;
			return 1;
		}
	if (strcasecmp(t, "quoteregex") == 0 && HAS(v, SV_EXT_REGEX)) {
		nd->mods |= SV_MOD_QUOTEREGEX;
		return 1;
	}
	if (strcasecmp(t, "encodeurl") == 0 && HAS(v, SV_EXT_ENOTIFY)) {
		nd->mods |= SV_MOD_ENCODEURL;
		return 1;
	}
	return 0;
}

/*
 * var_name - check and lower-case the variable name of set or
 * extracttext ("name" or "global.name"); false after reporting.
 */
static bool
var_name(struct vctx *v, struct sv_str *name, const struct sv_arg *a)
{
	if (!valid_identifier(name->p, name->len) &&
	    !(name->len > 7 && strncasecmp(name->p, "global.", 7) == 0 &&
	    valid_identifier(name->p + 7, name->len - 7))) {
		verr(v, a->line, a->col, "invalid variable name '%.*s'",
		    (int)MIN(name->len, 64), name->p);
		return false;
	}
	/* the name is never expanded */
	sv_lower_ascii(name->p, name->len);
	name->var = false;
	return true;
}

static int
validate_command(struct vctx *v, struct sv_cmd *c, struct sv_node *nd,
    unsigned depth)
{
	const struct cmdinfo *ci = lookup_cmd(v, c->name);
	struct targs ta;
	uint32_t i;

	memset(&ta, 0, sizeof(ta));
	ta.c = c;
	nd->line = c->line;
	nd->col = c->col;
	if (ci == NULL) {
		verr(v, c->line, c->col, "unknown command '%s'", c->name);
		return -1;
	}
	if (ci->test) {
		verr(v, c->line, c->col, "'%s' is a test, not a command",
		    c->name);
		return -1;
	}
	nd->id = (uint16_t)ci->id;
	if (nd->id != SV_C_IF && nd->id != SV_C_ELSIF && c->ntests > 0) {
		verr(v, c->line, c->col, "the %s command takes no test",
		    c->name);
		return -1;
	}
	if (nd->id != SV_C_IF && nd->id != SV_C_ELSIF && nd->id != SV_C_ELSE &&
	    nd->id != SV_C_FOREVERYPART && c->has_block) {
		verr(v, c->line, c->col, "the %s command takes no block",
		    c->name);
		return -1;
	}
	/* tags */
	for (i = 0; i < c->nargs; i++) {
		struct sv_arg *a = &c->args[i];
		const char *t = a->tag;
		bool ok = false;
		int rc;

		if (a->type != SV_ARG_TAG) {
			positional(&ta, a);
			continue;
		}
		switch (nd->id) {
		case SV_C_KEEP: case SV_C_FILEINTO:
			if (strcasecmp(t, "flags") == 0 &&
			    HAS(v, SV_EXT_IMAP4FLAGS)) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_LIST, t);

				if (b == NULL)
					return -1;
				nd->s[SV_S_FLAGS] = arg_list(v, b);
				nd->flags |= SV_F_HAS_FLAGS;
				ok = true;
			} else if (nd->id == SV_C_FILEINTO &&
			    strcasecmp(t, "copy") == 0 && HAS(v, SV_EXT_COPY)) {
				nd->flags |= SV_F_COPY;
				ok = true;
			} else if (nd->id == SV_C_FILEINTO &&
			    strcasecmp(t, "create") == 0 &&
			    HAS(v, SV_EXT_MAILBOX)) {
				nd->flags |= SV_F_CREATE;
				ok = true;
			}
			break;
		case SV_C_REDIRECT:
			if (strcasecmp(t, "copy") == 0 && HAS(v, SV_EXT_COPY)) {
				nd->flags |= SV_F_COPY;
				ok = true;
			}
			break;
		case SV_C_VACATION:
			if ((strcasecmp(t, "days") == 0 &&
			    HAS(v, SV_EXT_VACATION)) ||
			    (strcasecmp(t, "seconds") == 0 &&
			    HAS(v, SV_EXT_VACATION_SECONDS))) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_NUM, t);

				if (b == NULL)
					return -1;
				if (nd->flags & SV_F_HAS_PERIOD) {
					verr(v, a->line, a->col, "vacation: "
					    "only one of :days and :seconds");
					return -1;
				}
				nd->flags |= SV_F_HAS_PERIOD;
				if (strcasecmp(t, "seconds") == 0)
					nd->flags |= SV_F_SECONDS;
				nd->num = b->num > INT32_MAX ? INT32_MAX :
				    (int64_t)b->num;
				ok = true;
			} else if (strcasecmp(t, "subject") == 0 ||
			    strcasecmp(t, "from") == 0 ||
			    strcasecmp(t, "handle") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_STR, t);
				int slot = t[0] == 's' || t[0] == 'S' ?
				    SV_S_SUBJECT : t[0] == 'f' || t[0] == 'F' ?
				    SV_S_FROM : SV_S_HANDLE;

				if (b == NULL)
					return -1;
				nd->s[slot] = arg_list(v, b);
				ok = true;
			} else if (strcasecmp(t, "addresses") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_LIST, t);

				if (b == NULL)
					return -1;
				nd->s[SV_S_ADDRS] = arg_list(v, b);
				ok = true;
			} else if (strcasecmp(t, "mime") == 0) {
				nd->flags |= SV_F_MIME;
				ok = true;
			}
			break;
		case SV_C_SET:
			rc = set_modifier(v, nd, a);
			if (rc < 0)
				return -1;
			ok = rc > 0;
			break;
		case SV_C_EXTRACTTEXT:
			if (strcasecmp(t, "first") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_NUM, t);

				if (b == NULL)
					return -1;
				nd->num = b->num > INT32_MAX ? INT32_MAX :
				    (int64_t)b->num;
				nd->flags |= SV_F_HAS_FIRST;
				ok = true;
				break;
			}
			rc = set_modifier(v, nd, a);
			if (rc < 0)
				return -1;
			ok = rc > 0;
			break;
		case SV_C_FOREVERYPART: case SV_C_BREAK:
			if (strcasecmp(t, "name") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_STR, t);

				if (b == NULL)
					return -1;
				if (nd->s[SV_S_A] != NULL) {
					verr(v, a->line, a->col, "%s: :name "
					    "given twice", c->name);
					return -1;
				}
				nd->s[SV_S_A] = arg_list(v, b);
				/* a loop name is a label, never expanded */
				nd->s[SV_S_A]->v[0].var = false;
				ok = true;
			}
			break;
		case SV_C_ADDHEADER:
			if (strcasecmp(t, "last") == 0) {
				nd->flags |= SV_F_LAST;
				ok = true;
			}
			break;
		case SV_C_DELETEHEADER: {
			if (nd->cmp == 0 && !ta.has_cmp)
				nd->cmp = SV_CMP_CASEMAP;
			/* index is part of editheader itself */
			if (strcasecmp(t, "index") == 0) {
				struct sv_arg *b = need(v, c, &i, SV_ARG_NUM, t);

				if (b == NULL)
					return -1;
				if (b->num == 0 || b->num > INT32_MAX) {
					verr(v, b->line, b->col, "the :index "
					    "value must be at least 1");
					return -1;
				}
				nd->num = (int64_t)b->num;
				nd->flags |= SV_F_HAS_INDEX;
				ok = true;
				break;
			}
			if (strcasecmp(t, "last") == 0) {
				nd->flags |= SV_F_LAST;
				ok = true;
				break;
			}
			rc = common_tag(v, nd, &ta, &i, true, true, false, false);
			if (rc < 0)
				return -1;
			ok = rc > 0;
			break;
		}
		case SV_C_NOTIFY: {
			static const struct { const char *n; int slot; char type; }
			    ntags[] = {
				{ "from", SV_S_FROM, 's' },
				{ "importance", SV_S_HANDLE, 's' },
				{ "options", SV_S_ADDRS, 'l' },
				{ "message", SV_S_SUBJECT, 's' },
			};
			size_t k;

			for (k = 0; k < N_ELEMENTS(ntags); k++) {
				struct sv_arg *b;

				if (strcasecmp(t, ntags[k].n) != 0)
					continue;
				b = need(v, c, &i, ntags[k].type == 's' ?
				    SV_ARG_STR : SV_ARG_LIST, t);
				if (b == NULL)
					return -1;
				if (nd->s[ntags[k].slot] != NULL) {
					verr(v, a->line, a->col, "notify: "
					    ":%s given twice", ntags[k].n);
					return -1;
				}
				nd->s[ntags[k].slot] = arg_list(v, b);
				ok = true;
			}
			break;
		}
		case SV_C_INCLUDE:
			if (strcasecmp(t, "personal") == 0 ||
			    strcasecmp(t, "global") == 0) {
				if (ta.has_part) {
					verr(v, a->line, a->col, "include: "
					    "only one location");
					return -1;
				}
				ta.has_part = true;
				if (strcasecmp(t, "global") == 0)
					nd->flags |= SV_F_GLOBAL;
				ok = true;
			} else if (strcasecmp(t, "once") == 0) {
				nd->flags |= SV_F_ONCE;
				ok = true;
			} else if (strcasecmp(t, "optional") == 0) {
				nd->flags |= SV_F_OPTIONAL;
				ok = true;
			}
			break;
		default:
			break;
		}
		if (!ok) {
			unknown_tag(v, c, a);
			return -1;
		}
	}
	switch (nd->id) {
	case SV_C_IF: case SV_C_ELSIF:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		if (c->ntests != 1 || c->test_list) {
			verr(v, c->line, c->col, "the %s command needs exactly "
			    "one test", c->name);
			return -1;
		}
		if (!c->has_block) {
			verr(v, c->line, c->col, "the %s command needs a block",
			    c->name);
			return -1;
		}
		nd->nkids = 1;
		nd->kids = sv_alloc(&v->s->arena, sizeof(*nd->kids));
		if (validate_test(v, &c->tests[0], nd->kids, depth + 1) < 0)
			return -1;
		return validate_block(v, c->block, c->nblock, &nd->block,
		    &nd->nblock, depth + 1, false);
	case SV_C_ELSE:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		if (!c->has_block) {
			verr(v, c->line, c->col, "else needs a block");
			return -1;
		}
		return validate_block(v, c->block, c->nblock, &nd->block,
		    &nd->nblock, depth + 1, false);
	case SV_C_STOP: case SV_C_KEEP: case SV_C_DISCARD: case SV_C_RETURN:
		if (!want_pos(v, &ta, "", 0))
			return -1;
		break;
	case SV_C_REDIRECT:
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		finish_node(v, nd);
		if (!check_redirect(v, &nd->s[SV_S_A]->v[0], ta.pos[0]->line,
		    ta.pos[0]->col))
			return -1;
		return 0;
	case SV_C_FILEINTO:
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		finish_node(v, nd);
		if (!valid_utf8_list(v, nd->s[SV_S_A], ta.pos[0]->line,
		    ta.pos[0]->col, "the mailbox name"))
			return -1;
		if (!nd->s[SV_S_A]->v[0].var && nd->s[SV_S_A]->v[0].len == 0) {
			verr(v, ta.pos[0]->line, ta.pos[0]->col,
			    "fileinto: the mailbox name is empty");
			return -1;
		}
		return 0;
	case SV_C_REJECT: case SV_C_EREJECT:
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		break;
	case SV_C_VACATION:
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		finish_node(v, nd);
		if (nd->s[SV_S_FROM] != NULL && !nd->s[SV_S_FROM]->v[0].var &&
		    !check_redirect(v, &nd->s[SV_S_FROM]->v[0], c->line, c->col))
			return -1;
		if (nd->s[SV_S_ADDRS] != NULL)
			for (i = 0; i < nd->s[SV_S_ADDRS]->n; i++)
				if (!check_redirect(v, &nd->s[SV_S_ADDRS]->v[i],
				    c->line, c->col))
					return -1;
		if ((nd->flags & SV_F_HAS_PERIOD) && !(nd->flags & SV_F_SECONDS)) {
			if (nd->num * 86400 < v->s->limits.vacation_min_period)
				vwarn(v, c->line, c->col, "specified :days value "
				    "'%lld' is under the minimum",
				    (long long)nd->num);
		}
		return 0;
	case SV_C_SET:
		if (!want_pos(v, &ta, "ss", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		if (!var_name(v, &nd->s[SV_S_A]->v[0], ta.pos[0]))
			return -1;
		finish_list(v, nd->s[SV_S_B], nd->line, nd->col);
		return 0;
	case SV_C_FOREVERYPART: {
		int rc;

		if (!want_pos(v, &ta, "", 0))
			return -1;
		if (!c->has_block) {
			verr(v, c->line, c->col, "foreverypart needs a block");
			return -1;
		}
		if (v->nloops >= SV_MAX_LOOP_DEPTH) {
			verr(v, c->line, c->col, "the nested foreverypart loop "
			    "exceeds the nesting limit (<= %d levels)",
			    SV_MAX_LOOP_DEPTH);
			return -1;
		}
		v->loops[v->nloops++] = nd->s[SV_S_A] != NULL ?
		    &nd->s[SV_S_A]->v[0] : NULL;
		rc = validate_block(v, c->block, c->nblock, &nd->block,
		    &nd->nblock, depth + 1, false);
		v->nloops--;
		return rc;
	}
	case SV_C_BREAK: {
		const struct sv_str *name = nd->s[SV_S_A] != NULL ?
		    &nd->s[SV_S_A]->v[0] : NULL;
		unsigned k;

		if (!want_pos(v, &ta, "", 0))
			return -1;
		/* num: how many loops to leave, the innermost counting 1 */
		for (k = v->nloops; k > 0; k--) {
			const struct sv_str *l = v->loops[k - 1];

			if (name == NULL || (l != NULL && l->len == name->len &&
			    memcmp(l->p, name->p, name->len) == 0))
				break;
		}
		if (k == 0) {
			if (name == NULL)
				verr(v, c->line, c->col, "the break command is "
				    "not placed inside a foreverypart loop");
			else
				verr(v, c->line, c->col, "the break command is "
				    "not placed inside a foreverypart loop "
				    "named '%.*s'", (int)MIN(name->len, 64),
				    name->p);
			return -1;
		}
		nd->num = (int64_t)(v->nloops - k + 1);
		return 0;
	}
	case SV_C_EXTRACTTEXT:
		if (!HAS(v, SV_EXT_VARIABLES)) {
			verr(v, c->line, c->col, "the extracttext extension "
			    "cannot be used without the variables extension");
			return -1;
		}
		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		if (!var_name(v, &nd->s[SV_S_A]->v[0], ta.pos[0]))
			return -1;
		if (v->nloops == 0) {
			verr(v, c->line, c->col, "the extracttext command is "
			    "not placed inside a foreverypart loop");
			return -1;
		}
		return 0;
	case SV_C_SETFLAG: case SV_C_ADDFLAG: case SV_C_REMOVEFLAG:
		if (!want_pos(v, &ta, "ll", 1))
			return -1;
		if (ta.npos == 2) {
			struct sv_str *name;

			if (ta.pos[0]->type != SV_ARG_STR) {
				verr(v, ta.pos[0]->line, ta.pos[0]->col,
				    "%s: the variable name must be a string",
				    c->name);
				return -1;
			}
			nd->s[SV_S_FLAGS] = arg_list(v, ta.pos[0]);
			nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
			name = &nd->s[SV_S_FLAGS]->v[0];
			if (!valid_identifier(name->p, name->len)) {
				verr(v, ta.pos[0]->line, ta.pos[0]->col,
				    "invalid variable name '%.*s'",
				    (int)MIN(name->len, 64), name->p);
				return -1;
			}
			sv_lower_ascii(name->p, name->len);
			finish_list(v, nd->s[SV_S_B], nd->line, nd->col);
			return 0;
		}
		nd->s[SV_S_B] = arg_list(v, ta.pos[0]);
		if (!valid_flags(v, nd->s[SV_S_B], c->line, c->col))
			return -1;
		break;
	case SV_C_ADDHEADER:
		if (!want_pos(v, &ta, "ss", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		finish_node(v, nd);
		if (!nd->s[SV_S_A]->v[0].var &&
		    !valid_header_name(nd->s[SV_S_A]->v[0].p,
		    nd->s[SV_S_A]->v[0].len)) {
			verr(v, ta.pos[0]->line, ta.pos[0]->col,
			    "addheader: invalid header field name '%.*s'",
			    (int)MIN(nd->s[SV_S_A]->v[0].len, 64),
			    nd->s[SV_S_A]->v[0].p);
			return -1;
		}
		if (!valid_utf8_list(v, nd->s[SV_S_B], ta.pos[1]->line,
		    ta.pos[1]->col, "the header value"))
			return -1;
		return 0;
	case SV_C_NOTIFY: {
		const struct sv_str *s;
		const char *why;

		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		finish_node(v, nd);
		s = &nd->s[SV_S_A]->v[0];
		if (!s->var && !sieve_notify_method_ok(s->p, s->len, &why)) {
			verr(v, ta.pos[0]->line, ta.pos[0]->col, "notify: "
			    "invalid method '%.*s': %s", (int)MIN(s->len, 128),
			    s->p, why);
			return -1;
		}
		s = nd->s[SV_S_HANDLE] != NULL ? &nd->s[SV_S_HANDLE]->v[0] : NULL;
		if (s != NULL && !s->var && (s->len != 1 || s->p[0] < '1' ||
		    s->p[0] > '3')) {
			verr(v, c->line, c->col, "notify: the :importance "
			    "must be \"1\", \"2\" or \"3\"");
			return -1;
		}
		s = nd->s[SV_S_FROM] != NULL ? &nd->s[SV_S_FROM]->v[0] : NULL;
		if (s != NULL && !check_redirect(v, s, c->line, c->col))
			return -1;
		if (nd->s[SV_S_SUBJECT] != NULL &&
		    !valid_utf8_list(v, nd->s[SV_S_SUBJECT], c->line, c->col,
		    "the message"))
			return -1;
		for (i = 0; nd->s[SV_S_ADDRS] != NULL &&
		    i < nd->s[SV_S_ADDRS]->n; i++) {
			s = &nd->s[SV_S_ADDRS]->v[i];
			if (!s->var && !sieve_notify_option_ok(s->p, s->len)) {
				verr(v, c->line, c->col, "notify: invalid "
				    "option '%.*s' (NAME=VALUE)",
				    (int)MIN(s->len, 64), s->p);
				return -1;
			}
		}
		return 0;
	}
	case SV_C_DELETEHEADER:
		if ((nd->flags & SV_F_LAST) && !(nd->flags & SV_F_HAS_INDEX)) {
			verr(v, c->line, c->col, "deleteheader: :last needs "
			    ":index");
			return -1;
		}
		if (!want_pos(v, &ta, "sl", 1))
			return -1;
		if (ta.npos == 0 || ta.pos[0]->type != SV_ARG_STR) {
			verr(v, c->line, c->col, "deleteheader: the field "
			    "name must be a string");
			return -1;
		}
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		if (ta.npos == 2)
			nd->s[SV_S_B] = arg_list(v, ta.pos[1]);
		finish_node(v, nd);
		if (!nd->s[SV_S_A]->v[0].var &&
		    !valid_header_name(nd->s[SV_S_A]->v[0].p,
		    nd->s[SV_S_A]->v[0].len)) {
			verr(v, ta.pos[0]->line, ta.pos[0]->col,
			    "deleteheader: invalid header field name '%.*s'",
			    (int)MIN(nd->s[SV_S_A]->v[0].len, 64),
			    nd->s[SV_S_A]->v[0].p);
			return -1;
		}
		if (!check_match(v, nd, c) ||
		    !check_keys(v, nd, nd->s[SV_S_B], c->line, c->col))
			return -1;
		return 0;
	case SV_C_GLOBAL:
		if (!want_pos(v, &ta, "l", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		for (i = 0; i < nd->s[SV_S_A]->n; i++) {
			struct sv_str *name = &nd->s[SV_S_A]->v[i];

			if (!valid_identifier(name->p, name->len)) {
				verr(v, ta.pos[0]->line, ta.pos[0]->col,
				    "invalid variable name '%.*s'",
				    (int)MIN(name->len, 64), name->p);
				return -1;
			}
			sv_lower_ascii(name->p, name->len);
		}
		if (!HAS(v, SV_EXT_VARIABLES)) {
			verr(v, c->line, c->col, "the global command needs "
			    "the variables extension");
			return -1;
		}
		return 0;
	case SV_C_INCLUDE: {
		struct sv_str *name;
		size_t k;

		if (!want_pos(v, &ta, "s", 0))
			return -1;
		nd->s[SV_S_A] = arg_list(v, ta.pos[0]);
		name = &nd->s[SV_S_A]->v[0];
		if (name->len == 0 || name->len > 255 ||
		    memchr(name->p, '/', name->len) != NULL ||
		    !rfc2047_utf8_valid(name->p, name->len)) {
			verr(v, ta.pos[0]->line, ta.pos[0]->col,
			    "include: invalid script name '%.*s'",
			    (int)MIN(name->len, 64), name->p);
			return -1;
		}
		for (k = 0; k < name->len; k++)
			if ((unsigned char)name->p[k] < 32 || name->p[k] == 127) {
				verr(v, ta.pos[0]->line, ta.pos[0]->col,
				    "include: invalid script name");
				return -1;
			}
		name->var = false;
		{
			uint8_t loc = (nd->flags & SV_F_GLOBAL) ? SIEVE_GLOBAL :
			    SIEVE_PERSONAL;
			uint32_t u;
			struct sieve_script *s = v->s;
			struct str *src;
			const char *error = "not found";
			int rc;

			/* already loaded? */
			for (u = 0; u < s->nunits; u++)
				if (s->units[u].loc == loc && u != 0 &&
				    strcmp(s->units[u].name, name->p) == 0)
					break;
			if (u < s->nunits) {
				nd->include = (int32_t)u;
				return 0;
			}
			if (v->depth + 1 > s->limits.max_include_depth) {
				verr(v, c->line, c->col, "include: too deeply "
				    "nested (see sieve_max_include_depth)");
				return -1;
			}
			if (s->nunits >= s->limits.max_includes + 1) {
				verr(v, c->line, c->col, "include: too many "
				    "included scripts (see sieve_max_includes)");
				return -1;
			}
			src = str_new(1024, s->limits.max_script_size);
			rc = v->loader != NULL && v->loader->load != NULL ?
			    v->loader->load(v->loader->ctx, loc, name->p, src,
			    &error) : 1;
			if (rc != 0) {
				str_free(&src);
				if (rc > 0 && (nd->flags & SV_F_OPTIONAL)) {
					nd->include = -1;
					return 0;
				}
				verr(v, c->line, c->col, "include: cannot "
				    "include %s script '%s': %s",
				    loc == SIEVE_GLOBAL ? "global" : "personal",
				    name->p, rc > 0 ? "not found" : error);
				return -1;
			}
			s->units = xreallocarray(s->units, s->nunits + 1,
			    sizeof(*s->units));
			u = s->nunits++;
			memset(&s->units[u], 0, sizeof(s->units[u]));
			s->units[u].name = sv_memdup(&s->arena, name->p, name->len);
			s->units[u].loc = loc;
			nd->include = (int32_t)u;
			rc = sv_compile_unit(s, u, str_c(src), str_len(src),
			    v->loader, v->depth + 1, v->errs);
			str_free(&src);
			if (rc < 0) {
				verr(v, c->line, c->col, "include: script "
				    "'%s' has errors", name->p);
				return -1;
			}
			/* sv_compile_unit may have moved s->units */
			v->u = &s->units[v->unit];
		}
		return 0;
	}
	case SV_C_REQUIRE:
		break;
	}
	finish_node(v, nd);
	return 0;
}

static int
do_require(struct vctx *v, struct sv_cmd *c)
{
	uint32_t i;

	if (v->seen_cmd) {
		verr(v, c->line, c->col, "require must come before any "
		    "other command");
		return -1;
	}
	if (c->nargs != 1 || (c->args[0].type != SV_ARG_STR &&
	    c->args[0].type != SV_ARG_LIST) || c->ntests > 0 || c->has_block) {
		verr(v, c->line, c->col, "require needs one string list");
		return -1;
	}
	for (i = 0; i < c->args[0].list.n; i++) {
		struct sv_str *e = &c->args[0].list.v[i];
		int x = sv_ext_lookup(e->p, e->len);

		if (x == -2)
			continue;
		if (x < 0) {
			verr(v, c->args[0].line, c->args[0].col,
			    "require: unknown Sieve capability '%.*s'",
			    (int)MIN(e->len, 64), e->p);
			continue;
		}
		v->u->ext |= UINT64_C(1) << x;
		if (x == SV_EXT_VACATION_SECONDS)
			v->u->ext |= UINT64_C(1) << SV_EXT_VACATION;
		if (x == SV_EXT_SPAMTESTPLUS)
			v->u->ext |= UINT64_C(1) << SV_EXT_SPAMTEST;
	}
	return 0;
}

static int
validate_block(struct vctx *v, struct sv_cmd *cmds, uint32_t n,
    struct sv_node **out, uint32_t *nout, unsigned depth, bool top)
{
	uint32_t i, k = 0;
	int rc = 0;
	enum sv_id prev = SV_C_NONE;

	*out = sv_alloc(&v->s->arena, (n ? n : 1) * sizeof(**out));
	for (i = 0; i < n; i++) {
		struct sv_cmd *c = &cmds[i];

		if (strcasecmp(c->name, "require") == 0) {
			if (!top) {
				verr(v, c->line, c->col, "require must be at "
				    "the top level");
				rc = -1;
			} else if (do_require(v, c) < 0)
				rc = -1;
			prev = SV_C_REQUIRE;
			continue;
		}
		v->seen_cmd = true;
		if (validate_command(v, c, &(*out)[k], depth) < 0) {
			rc = -1;
			prev = SV_C_NONE;
			continue;
		}
		if (((*out)[k].id == SV_C_ELSIF || (*out)[k].id == SV_C_ELSE) &&
		    prev != SV_C_IF && prev != SV_C_ELSIF) {
			verr(v, c->line, c->col, "%s without a preceding if",
			    c->name);
			rc = -1;
		}
		prev = (*out)[k].id;
		k++;
	}
	*nout = k;
	return rc;
}

/* sv_compile_unit - see sieve_private.h */
int
sv_compile_unit(struct sieve_script *s, uint32_t unit, const char *p,
    size_t n, const struct sieve_loader *loader, unsigned depth,
    struct sieve_errors *errs)
{
	struct vctx v;
	struct sv_cmd *cmds;
	uint32_t ncmds;
	struct sv_arena tmp;
	int rc;

	memset(&v, 0, sizeof(v));
	memset(&tmp, 0, sizeof(tmp));
	v.s = s;
	v.unit = unit;
	v.u = &s->units[unit];
	v.u->hash = sv_hash(p, n);
	v.u->size = (uint32_t)n;
	v.d.errs = errs;
	v.d.script = s->units[unit].name;
	v.loader = loader;
	v.depth = depth;
	v.errs = errs;
	/* The syntax tree is temporary; the strings move to the nodes. */
	if (sv_parse(&s->arena, p, n, &s->limits, &v.d, &cmds, &ncmds) < 0)
		return -1;
	{
		struct sv_node *out;
		uint32_t nout;

		rc = validate_block(&v, cmds, ncmds, &out, &nout, 0, true);
		v.u = &s->units[unit];
		v.u->cmds = out;
		v.u->ncmds = nout;
	}
	sv_arena_free(&tmp);
	if (rc < 0 || v.d.nerrors > 0) {
		if (v.d.nerrors == 0)
			sv_diag(&v.d, false, 0, 0, "validation failed");
		return -1;
	}
	return 0;
}
