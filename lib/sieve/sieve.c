/* SPDX-License-Identifier: MIT */
/*
 * sieve - compile entry points, the binary cache format, result output
 *
 * DESCRIPTION
 *	sieve_compile() runs parser and validator (sieve_parse.c,
 *	sieve_validate.c) and prepares the run-time helpers (constant
 *	regexes compiled once). sieve_script_save()/load() write and read
 *	the compiled node tree:
 *
 *	  magic "PSVBIN\r\n", u32 version, u32 unit count, then per unit:
 *	  u8 location, string name, u64 source hash, u32 source size,
 *	  u64 extensions, u32 command count, nodes.
 *	  node: u16 id, u16 flags, u8 cmp mt rel part body mods, u32 line,
 *	  u32 col, i64 num, i32 include, u16 slot mask, per slot u32 count
 *	  and strings (u32 length, u8 var, octets), u32 test count, tests,
 *	  u32 block count, commands.
 *
 *	All integers are little-endian. The loader trusts nothing: every
 *	length is checked against what remains, ids and enums against their
 *	ranges, the slots each id needs must be present, recursion is
 *	bounded, and the whole input must be consumed. A version or source
 *	hash mismatch is "stale" (recompile), not an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "str.h"

#include "sieve/sieve_private.h"

/* sieve_limits_default - see sieve.h */
void
sieve_limits_default(struct sieve_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->max_script_size = 1024 * 1024;
	l->max_string_size = 256 * 1024;
	l->max_nesting = 32;
	l->max_actions = 32;
	l->max_redirects = 4;
	l->max_notifications = 4;
	l->max_include_depth = 10;
	l->max_includes = 64;
	l->max_regex_size = 1024;
	l->max_variables = 255;
	l->max_variable_size = 4096;
	l->max_match_steps = 10000000;
	l->max_body_size = 1024 * 1024;
	l->vacation_min_period = 86400;
	l->vacation_max_period = 0;	/* none, as Pigeonhole */
	l->vacation_default_period = 7 * 86400;
	l->duplicate_default_period = 12 * 3600;
	l->duplicate_max_period = 2 * 86400;
}

/* sieve_errors_clear - see sieve.h */
void
sieve_errors_clear(struct sieve_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->count; i++) {
		free(errs->items[i].script);
		free(errs->items[i].text);
	}
	free(errs->items);
	memset(errs, 0, sizeof(*errs));
}

/* sieve_errors_format - see sieve.h */
void
sieve_errors_format(const struct sieve_errors *errs, struct str *out)
{
	size_t i;

	for (i = 0; i < errs->count; i++) {
		const struct sieve_error *e = &errs->items[i];

		if (e->line > 0)
			str_printf(out, "%s:%u:%u: %s: %s\n", e->script, e->line,
			    e->column, e->warning ? "warning" : "error", e->text);
		else
			str_printf(out, "%s: %s: %s\n", e->script,
			    e->warning ? "warning" : "error", e->text);
	}
}

/* ------------------------------------------------------------ prepare */

static void
prep_nodes(struct sv_node *nd, uint32_t n, bool undo, int *rc,
    const char **error_r, size_t max_regex)
{
	uint32_t i, k;

	for (i = 0; i < n; i++) {
		struct sv_node *x = &nd[i];
		struct sv_slist *l = x->s[SV_S_B];

		if (x->mt == SV_MT_REGEX && l != NULL) {
			regex_t **pre = l->pre;

			if (undo) {
				for (k = 0; pre != NULL && k < l->n; k++)
					if (pre[k] != NULL) {
						regfree(pre[k]);
						free(pre[k]);
					}
				free(pre);
				l->pre = NULL;
			} else if (pre == NULL) {
				pre = xcalloc(l->n, sizeof(*pre));
				for (k = 0; k < l->n; k++) {
					const char *error;

					if (l->v[k].var)
						continue;
					pre[k] = sv_regex_compile(l->v[k].p,
					    l->v[k].len, x->cmp == SV_CMP_CASEMAP,
					    max_regex, &error);
					if (pre[k] == NULL) {
						*rc = -1;
						*error_r = error;
					}
				}
				l->pre = pre;
			}
		}
		prep_nodes(x->kids, x->nkids, undo, rc, error_r, max_regex);
		prep_nodes(x->block, x->nblock, undo, rc, error_r, max_regex);
	}
}

/* sv_prepare - compile constant regexes once per script */
int
sv_prepare(struct sieve_script *s, const char **error_r)
{
	uint32_t u;
	int rc = 0;

	for (u = 0; u < s->nunits; u++)
		prep_nodes(s->units[u].cmds, s->units[u].ncmds, false, &rc,
		    error_r, s->limits.max_regex_size);
	return rc;
}

/* sv_unprepare - free what sv_prepare made */
void
sv_unprepare(struct sieve_script *s)
{
	uint32_t u;
	int rc = 0;
	const char *e;

	for (u = 0; u < s->nunits; u++)
		prep_nodes(s->units[u].cmds, s->units[u].ncmds, true, &rc, &e,
		    0);
}

/* ------------------------------------------------------------ compile */

static struct sieve_script *
script_new(const char *name, const struct sieve_limits *limits)
{
	struct sieve_script *s = xcalloc(1, sizeof(*s));

	if (limits != NULL)
		s->limits = *limits;
	else
		sieve_limits_default(&s->limits);
	s->name = xstrdup(name != NULL ? name : "script");
	s->units = xcalloc(1, sizeof(*s->units));
	s->nunits = 1;
	s->units[0].name = sv_memdup(&s->arena, s->name, strlen(s->name));
	return s;
}

/* sieve_compile - see sieve.h */
struct sieve_script *
sieve_compile(const char *name, const char *p, size_t n,
    const struct sieve_limits *limits, const struct sieve_loader *loader,
    struct sieve_errors *errs)
{
	struct sieve_script *s = script_new(name, limits);
	const char *error;

	if (sv_compile_unit(s, 0, p, n, loader, 0, errs) < 0) {
		sieve_script_free(&s);
		return NULL;
	}
	if (sv_prepare(s, &error) < 0) {
		struct sv_diag d = { errs, s->name, 0 };

		sv_diag(&d, false, 0, 0, "invalid regular expression: %s",
		    error);
		sieve_script_free(&s);
		return NULL;
	}
	return s;
}

/* sieve_script_free - see sieve.h */
void
sieve_script_free(struct sieve_script **sp)
{
	struct sieve_script *s = *sp;

	if (s == NULL)
		return;
	sv_unprepare(s);
	sv_arena_free(&s->arena);
	free(s->units);
	free(s->name);
	free(s);
	*sp = NULL;
}

/* sieve_script_name - see sieve.h */
const char *
sieve_script_name(const struct sieve_script *s)
{
	return s->name;
}

/* ------------------------------------------------------------ dump */

static const char *const id_names[SV_ID_COUNT] = {
	[SV_C_NONE] = "?", [SV_C_IF] = "if", [SV_C_ELSIF] = "elsif",
	[SV_C_ELSE] = "else", [SV_C_STOP] = "stop",
	[SV_C_REQUIRE] = "require", [SV_C_KEEP] = "keep",
	[SV_C_DISCARD] = "discard", [SV_C_REDIRECT] = "redirect",
	[SV_C_FILEINTO] = "fileinto", [SV_C_REJECT] = "reject",
	[SV_C_EREJECT] = "ereject", [SV_C_VACATION] = "vacation",
	[SV_C_SET] = "set", [SV_C_SETFLAG] = "setflag",
	[SV_C_ADDFLAG] = "addflag", [SV_C_REMOVEFLAG] = "removeflag",
	[SV_C_ADDHEADER] = "addheader", [SV_C_DELETEHEADER] = "deleteheader",
	[SV_C_INCLUDE] = "include", [SV_C_RETURN] = "return",
	[SV_C_GLOBAL] = "global", [SV_C_NOTIFY] = "notify",
	[SV_C_FOREVERYPART] = "foreverypart", [SV_C_BREAK] = "break",
	[SV_C_EXTRACTTEXT] = "extracttext",
	[SV_T_ADDRESS] = "address",
	[SV_T_ALLOF] = "allof", [SV_T_ANYOF] = "anyof",
	[SV_T_ENVELOPE] = "envelope", [SV_T_EXISTS] = "exists",
	[SV_T_FALSE] = "false", [SV_T_HEADER] = "header", [SV_T_NOT] = "not",
	[SV_T_SIZE] = "size", [SV_T_TRUE] = "true", [SV_T_BODY] = "body",
	[SV_T_STRING] = "string", [SV_T_HASFLAG] = "hasflag",
	[SV_T_DATE] = "date", [SV_T_CURRENTDATE] = "currentdate",
	[SV_T_MAILBOXEXISTS] = "mailboxexists", [SV_T_SPAMTEST] = "spamtest",
	[SV_T_VIRUSTEST] = "virustest", [SV_T_ENVIRONMENT] = "environment",
	[SV_T_DUPLICATE] = "duplicate", [SV_T_IHAVE] = "ihave",
	[SV_T_VALID_NOTIFY_METHOD] = "valid_notify_method",
	[SV_T_NOTIFY_METHOD_CAPABILITY] = "notify_method_capability",
};

static void
quote(struct str *out, const char *p, size_t n)
{
	size_t i;

	str_append_c(out, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\') {
			str_append_c(out, '\\');
			str_append_c(out, (char)c);
		} else if (c == '\r')
			str_append(out, "\\r", 2);
		else if (c == '\n')
			str_append(out, "\\n", 2);
		else if (c == '\t')
			str_append(out, "\\t", 2);
		else if (c < 32 || c == 127)
			str_printf(out, "\\x%02x", c);
		else
			str_append_c(out, (char)c);
	}
	str_append_c(out, '"');
}

static void
dump_nodes(const struct sv_node *nd, uint32_t n, unsigned indent,
    struct str *out)
{
	uint32_t i, k, j;

	for (i = 0; i < n; i++) {
		const struct sv_node *x = &nd[i];

		for (k = 0; k < indent; k++)
			str_append(out, "  ", 2);
		str_printf(out, "%u: %s", x->line, x->id < SV_ID_COUNT ?
		    id_names[x->id] : "?");
		if (x->flags)
			str_printf(out, " flags=0x%x", x->flags);
		if (x->id >= SV_T_ADDRESS)
			str_printf(out, " cmp=%u mt=%u", x->cmp, x->mt);
		if (x->num)
			str_printf(out, " num=%lld", (long long)x->num);
		if (x->mimeopt)
			str_printf(out, " mimeopt=%u", x->mimeopt);
		for (k = 0; k < SV_NSLOTS; k++) {
			if (x->s[k] == NULL)
				continue;
			str_printf(out, " s%u=[", k);
			for (j = 0; j < x->s[k]->n; j++) {
				if (j > 0)
					str_append_c(out, ',');
				quote(out, x->s[k]->v[j].p,
				    MIN(x->s[k]->v[j].len, 80));
			}
			str_append_c(out, ']');
		}
		str_append_c(out, '\n');
		dump_nodes(x->kids, x->nkids, indent + 2, out);
		dump_nodes(x->block, x->nblock, indent + 1, out);
	}
}

/* sieve_script_dump - see sieve.h */
void
sieve_script_dump(const struct sieve_script *s, struct str *out)
{
	uint32_t u;

	for (u = 0; u < s->nunits; u++) {
		str_printf(out, "unit %u %s%s:\n", u,
		    s->units[u].loc == SIEVE_GLOBAL ? ":global " : "",
		    s->units[u].name);
		dump_nodes(s->units[u].cmds, s->units[u].ncmds, 1, out);
	}
}

/* ------------------------------------------------------------ save */

static void
put_u8(struct str *o, unsigned v)
{
	str_append_c(o, (char)v);
}

static void
put_u16(struct str *o, unsigned v)
{
	unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };

	str_append(o, b, 2);
}

static void
put_u32(struct str *o, uint32_t v)
{
	unsigned char b[4];
	int i;

	for (i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	str_append(o, b, 4);
}

static void
put_u64(struct str *o, uint64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	str_append(o, b, 8);
}

static void
save_nodes(const struct sv_node *nd, uint32_t n, struct str *o)
{
	uint32_t i, k, j;

	put_u32(o, n);
	for (i = 0; i < n; i++) {
		const struct sv_node *x = &nd[i];
		unsigned mask = 0;

		put_u16(o, x->id);
		put_u16(o, x->flags);
		put_u8(o, x->cmp);
		put_u8(o, x->mt);
		put_u8(o, x->rel);
		put_u8(o, x->part);
		put_u8(o, x->body);
		put_u8(o, x->mods);
		put_u8(o, x->mimeopt);
		put_u32(o, x->line);
		put_u32(o, x->col);
		put_u64(o, (uint64_t)x->num);
		put_u32(o, (uint32_t)x->include);
		for (k = 0; k < SV_NSLOTS; k++)
			if (x->s[k] != NULL)
				mask |= 1u << k;
		put_u16(o, mask);
		for (k = 0; k < SV_NSLOTS; k++) {
			if (x->s[k] == NULL)
				continue;
			put_u32(o, x->s[k]->n);
			for (j = 0; j < x->s[k]->n; j++) {
				put_u32(o, x->s[k]->v[j].len);
				put_u8(o, x->s[k]->v[j].var);
				str_append(o, x->s[k]->v[j].p, x->s[k]->v[j].len);
			}
		}
		save_nodes(x->kids, x->nkids, o);
		save_nodes(x->block, x->nblock, o);
	}
}

/* sieve_script_save - see sieve.h */
void
sieve_script_save(const struct sieve_script *s, struct str *o)
{
	uint32_t u;

	str_append(o, SIEVE_BINARY_MAGIC, 8);
	put_u32(o, SIEVE_BINARY_VERSION);
	put_u32(o, s->nunits);
	for (u = 0; u < s->nunits; u++) {
		const struct sv_unit *x = &s->units[u];

		put_u8(o, x->loc);
		put_u32(o, (uint32_t)strlen(x->name));
		str_append_cstr(o, x->name);
		put_u64(o, x->hash);
		put_u32(o, x->size);
		put_u64(o, x->ext);
		save_nodes(x->cmds, x->ncmds, o);
	}
}

/* ------------------------------------------------------------ load */

struct rd {
	const unsigned char *p;
	size_t n, pos;
	bool bad;
	struct sieve_script *s;
	unsigned depth;
};

static bool
rd_need(struct rd *r, size_t k)
{
	if (r->bad || r->n - r->pos < k) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint64_t
rd_uint(struct rd *r, int bytes)
{
	uint64_t v = 0;
	int i;

	if (!rd_need(r, (size_t)bytes))
		return 0;
	for (i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
	r->pos += (size_t)bytes;
	return v;
}

/* slots each id needs (bit k = slot k), checked on load */
static unsigned
needed_slots(unsigned id)
{
	switch (id) {
	case SV_T_ADDRESS: case SV_T_HEADER: case SV_T_STRING:
	case SV_T_ENVELOPE: case SV_T_ENVIRONMENT:
	case SV_C_SET: case SV_C_ADDHEADER:
		return 1u << SV_S_A | 1u << SV_S_B;
	case SV_T_EXISTS: case SV_T_MAILBOXEXISTS: case SV_T_IHAVE:
	case SV_C_REDIRECT: case SV_C_FILEINTO: case SV_C_REJECT:
	case SV_C_EREJECT: case SV_C_VACATION: case SV_C_DELETEHEADER:
	case SV_C_GLOBAL: case SV_C_INCLUDE: case SV_C_NOTIFY:
	case SV_T_VALID_NOTIFY_METHOD: case SV_C_EXTRACTTEXT:
		return 1u << SV_S_A;
	case SV_T_NOTIFY_METHOD_CAPABILITY:
		return 1u << SV_S_A | 1u << SV_S_B | 1u << SV_S_C;
	case SV_T_BODY: case SV_T_HASFLAG: case SV_T_SPAMTEST:
	case SV_T_VIRUSTEST: case SV_C_SETFLAG: case SV_C_ADDFLAG:
	case SV_C_REMOVEFLAG:
		return 1u << SV_S_B;
	case SV_T_DATE:
		return 1u << SV_S_A | 1u << SV_S_B | 1u << SV_S_C;
	case SV_T_CURRENTDATE:
		return 1u << SV_S_B | 1u << SV_S_C;
	}
	return 0;
}

static struct sv_node *
load_nodes(struct rd *r, uint32_t *n_r, bool tests)
{
	uint32_t n = (uint32_t)rd_uint(r, 4), i, k, j;
	struct sv_node *nd;

	*n_r = 0;
	if (r->bad)
		return NULL;
	/* each node takes at least 40 bytes: bound the count first */
	if (n > (r->n - r->pos) / 40 || ++r->depth > 2 * r->s->limits.max_nesting + 4) {
		r->bad = true;
		return NULL;
	}
	nd = sv_alloc(&r->s->arena, (n ? n : 1) * sizeof(*nd));
	for (i = 0; i < n && !r->bad; i++) {
		struct sv_node *x = &nd[i];
		unsigned mask;

		x->id = (uint16_t)rd_uint(r, 2);
		x->flags = (uint16_t)rd_uint(r, 2);
		x->cmp = (uint8_t)rd_uint(r, 1);
		x->mt = (uint8_t)rd_uint(r, 1);
		x->rel = (uint8_t)rd_uint(r, 1);
		x->part = (uint8_t)rd_uint(r, 1);
		x->body = (uint8_t)rd_uint(r, 1);
		x->mods = (uint8_t)rd_uint(r, 1);
		x->mimeopt = (uint8_t)rd_uint(r, 1);
		x->line = (uint32_t)rd_uint(r, 4);
		x->col = (uint32_t)rd_uint(r, 4);
		x->num = (int64_t)rd_uint(r, 8);
		x->include = (int32_t)(uint32_t)rd_uint(r, 4);
		mask = (unsigned)rd_uint(r, 2);
		if (x->id == SV_C_NONE || x->id >= SV_ID_COUNT ||
		    x->id == SV_C_REQUIRE ||
		    (tests != (x->id >= SV_T_ADDRESS)) ||
		    x->cmp > SV_CMP_NUMERIC || x->mt > SV_MT_VALUE ||
		    x->rel > SV_REL_NE || x->part > SV_PART_DETAIL ||
		    x->body > SV_BODY_CONTENT || x->num < 0 ||
		    x->mimeopt > SV_MIMEOPT_PARAM ||
		    ((x->mimeopt == SV_MIMEOPT_PARAM) != ((mask & 1u << SV_S_C) &&
		    x->id == SV_T_HEADER)) ||
		    (x->id == SV_C_BREAK && (x->num < 1 ||
		    x->num > SV_MAX_LOOP_DEPTH)) ||
		    (mask >> SV_NSLOTS) != 0 ||
		    (mask & needed_slots(x->id)) != needed_slots(x->id) ||
		    (x->id == SV_C_INCLUDE && (x->include < -1 ||
		    x->include >= (int32_t)r->s->nunits)) ||
		    ((x->flags & SV_F_HAS_FLAGS) && !(mask & 1u << SV_S_FLAGS)) ||
		    ((x->flags & SV_F_HAS_ZONE) && !(mask & 1u << SV_S_FROM)) ||
		    (x->body == SV_BODY_CONTENT && !(mask & 1u << SV_S_SUBJECT))) {
			r->bad = true;
			break;
		}
		for (k = 0; k < SV_NSLOTS && !r->bad; k++) {
			struct sv_slist *l;

			if (!(mask & (1u << k)))
				continue;
			l = x->s[k] = sv_alloc(&r->s->arena, sizeof(*l));
			l->n = (uint32_t)rd_uint(r, 4);
			if (l->n == 0 || l->n > (r->n - r->pos) / 5) {
				r->bad = true;
				break;
			}
			l->v = sv_alloc(&r->s->arena, l->n * sizeof(*l->v));
			for (j = 0; j < l->n && !r->bad; j++) {
				uint32_t len = (uint32_t)rd_uint(r, 4);
				unsigned var = (unsigned)rd_uint(r, 1);

				if (var > 1 || !rd_need(r, len)) {
					r->bad = true;
					break;
				}
				l->v[j].len = len;
				l->v[j].var = var != 0;
				l->v[j].p = sv_memdup(&r->s->arena, r->p + r->pos,
				    len);
				r->pos += len;
			}
		}
		x->kids = load_nodes(r, &x->nkids, true);
		x->block = load_nodes(r, &x->nblock, false);
		if (r->bad)
			break;
		if (((x->id == SV_C_IF || x->id == SV_C_ELSIF ||
		    x->id == SV_T_NOT) && x->nkids != 1) ||
		    ((x->id == SV_T_ALLOF || x->id == SV_T_ANYOF) &&
		    x->nkids == 0) ||
		    (tests && x->nblock != 0) ||
		    (!tests && x->id != SV_C_IF && x->id != SV_C_ELSIF &&
		    x->nkids != 0) ||
		    (x->nblock != 0 && x->id != SV_C_IF && x->id != SV_C_ELSIF &&
		    x->id != SV_C_ELSE && x->id != SV_C_FOREVERYPART) ||
		    (x->nkids != 0 && x->id != SV_C_IF && x->id != SV_C_ELSIF &&
		    x->id != SV_T_NOT && x->id != SV_T_ALLOF &&
		    x->id != SV_T_ANYOF)) {
			r->bad = true;
			break;
		}
	}
	r->depth--;
	*n_r = r->bad ? 0 : n;
	return r->bad ? NULL : nd;
}

/* sieve_script_load - see sieve.h */
int
sieve_script_load(const char *p, size_t n, const char *source,
    size_t source_len, const struct sieve_limits *limits,
    const struct sieve_loader *loader, struct sieve_script **script_r,
    const char **error_r)
{
	struct rd r;
	struct sieve_script *s;
	uint32_t nunits, u;
	const char *error;

	*script_r = NULL;
	if (n < 16 || memcmp(p, SIEVE_BINARY_MAGIC, 8) != 0) {
		*error_r = "not a compiled Sieve script";
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.p = (const unsigned char *)p;
	r.n = n;
	r.pos = 8;
	if (rd_uint(&r, 4) != SIEVE_BINARY_VERSION)
		return 1;
	nunits = (uint32_t)rd_uint(&r, 4);
	s = script_new("script", limits);
	if (nunits == 0 || nunits > s->limits.max_includes + 1 ||
	    nunits > (n - r.pos) / 29) {
		sieve_script_free(&s);
		*error_r = "bad unit count";
		return -1;
	}
	r.s = s;
	free(s->units);
	s->units = xcalloc(nunits, sizeof(*s->units));
	s->nunits = nunits;
	for (u = 0; u < nunits && !r.bad; u++) {
		struct sv_unit *x = &s->units[u];
		uint32_t len;

		x->loc = (uint8_t)rd_uint(&r, 1);
		len = (uint32_t)rd_uint(&r, 4);
		if (x->loc > SIEVE_GLOBAL || len > 1024 || !rd_need(&r, len)) {
			r.bad = true;
			break;
		}
		x->name = sv_memdup(&s->arena, r.p + r.pos, len);
		r.pos += len;
		x->hash = rd_uint(&r, 8);
		x->size = (uint32_t)rd_uint(&r, 4);
		x->ext = rd_uint(&r, 8);
		x->cmds = load_nodes(&r, &x->ncmds, false);
	}
	if (r.bad || r.pos != r.n) {
		sieve_script_free(&s);
		*error_r = "damaged compiled script";
		return -1;
	}
	free(s->name);
	s->name = xstrdup(s->units[0].name);
	/* stale? */
	if (s->units[0].hash != sv_hash(source, source_len)) {
		sieve_script_free(&s);
		return 1;
	}
	for (u = 1; u < nunits; u++) {
		struct str *src = str_new(1024, s->limits.max_script_size);
		int rc = loader != NULL && loader->load != NULL ?
		    loader->load(loader->ctx, s->units[u].loc, s->units[u].name,
		    src, &error) : 1;
		bool same = rc == 0 &&
		    sv_hash(str_c(src), str_len(src)) == s->units[u].hash;

		str_free(&src);
		if (!same) {
			sieve_script_free(&s);
			return 1;
		}
	}
	if (sv_prepare(s, &error) < 0) {
		sieve_script_free(&s);
		*error_r = "bad regular expression in compiled script";
		return -1;
	}
	*script_r = s;
	return 0;
}

/* ------------------------------------------------------------ output */

static void
flags_out(struct str *out, char **flags, size_t n)
{
	struct str *all = str_new(64, 0);
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			str_append_c(all, ' ');
		str_append_cstr(all, flags[i]);
	}
	str_append(out, " :flags ", 8);
	quote(out, str_c(all), str_len(all));
	str_free(&all);
}

/* notify_out - the notify line of sieve_result_format */
static void
notify_out(struct str *out, const struct sieve_action *a)
{
	struct sieve_mailto m;
	struct str *all = str_new(64, 0);
	const char *err;
	size_t k;

	str_append_cstr(out, "notify ");
	quote(out, a->method, strlen(a->method));
	str_printf(out, " :importance %u", a->importance);
	if (a->from != NULL) {
		str_append_cstr(out, " :from ");
		quote(out, a->from, strlen(a->from));
	}
	if (a->text != NULL) {
		str_append_cstr(out, " :message ");
		quote(out, a->text, strlen(a->text));
	}
	if (a->options != NULL) {
		for (k = 0; a->options[k] != NULL; k++) {
			if (k > 0)
				str_append_c(all, ' ');
			str_append_cstr(all, a->options[k]);
		}
		str_append_cstr(out, " :options ");
		quote(out, str_c(all), str_len(all));
	}
	/* the engine only keeps methods that parse */
	if (sieve_mailto_parse(a->method, strlen(a->method), &m, &err) == 0) {
		str_clear(all);
		for (k = 0; k < m.nrcpts; k++) {
			if (k > 0)
				str_append_c(all, ' ');
			str_append_cstr(all, m.rcpts[k]);
		}
		str_append_cstr(out, " :to ");
		quote(out, str_c(all), str_len(all));
		if (a->text != NULL || m.subject != NULL) {
			str_append_cstr(out, " :subject ");
			if (a->text != NULL)
				quote(out, a->text, strlen(a->text));
			else
				quote(out, str_c(m.subject), str_len(m.subject));
		}
		if (m.body != NULL) {
			str_append_cstr(out, " :body ");
			quote(out, str_c(m.body), str_len(m.body));
		}
		sieve_mailto_clear(&m);
	}
	str_free(&all);
}

/* sieve_result_format - see sieve.h */
void
sieve_result_format(const struct sieve_result *res, struct str *out)
{
	size_t i, k;

	for (i = 0; i < res->count; i++) {
		const struct sieve_action *a = &res->actions[i];

		switch (a->type) {
		case SIEVE_ACT_KEEP:
		case SIEVE_ACT_FILEINTO:
			if (a->type == SIEVE_ACT_KEEP &&
			    strcmp(a->mailbox, "INBOX") == 0)
				str_append_cstr(out, "keep");
			else {
				str_append_cstr(out, "fileinto ");
				quote(out, a->mailbox, strlen(a->mailbox));
			}
			if (a->copy)
				str_append_cstr(out, " :copy");
			if (a->create)
				str_append_cstr(out, " :create");
			if (a->flag_count > 0)
				flags_out(out, a->flags, a->flag_count);
			break;
		case SIEVE_ACT_REDIRECT:
			str_append_cstr(out, "redirect ");
			quote(out, a->address, strlen(a->address));
			if (a->copy)
				str_append_cstr(out, " :copy");
			break;
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			str_append_cstr(out, a->type == SIEVE_ACT_REJECT ?
			    "reject " : "ereject ");
			quote(out, a->text, strlen(a->text));
			break;
		case SIEVE_ACT_DISCARD:
			str_append_cstr(out, "discard");
			break;
		case SIEVE_ACT_VACATION:
			str_printf(out, "vacation :seconds %u", a->period);
			if (a->subject != NULL) {
				str_append_cstr(out, " :subject ");
				quote(out, a->subject, strlen(a->subject));
			}
			if (a->from != NULL) {
				str_append_cstr(out, " :from ");
				quote(out, a->from, strlen(a->from));
			}
			if (a->addresses != NULL) {
				struct str *all = str_new(64, 0);

				for (k = 0; a->addresses[k] != NULL; k++) {
					if (k > 0)
						str_append_c(all, ' ');
					str_append_cstr(all, a->addresses[k]);
				}
				str_append_cstr(out, " :addresses ");
				quote(out, str_c(all), str_len(all));
				str_free(&all);
			}
			if (a->mime)
				str_append_cstr(out, " :mime");
			str_append_cstr(out, " :handle ");
			quote(out, a->handle, strlen(a->handle));
			str_append_c(out, ' ');
			quote(out, a->text, strlen(a->text));
			break;
		case SIEVE_ACT_NOTIFY:
			notify_out(out, a);
			break;
		}
		str_append_c(out, '\n');
	}
	if (res->implicit_keep) {
		str_append_cstr(out, "implicit-keep");
		if (res->keep_flag_count > 0)
			flags_out(out, res->keep_flags, res->keep_flag_count);
		str_append_c(out, '\n');
	}
	if (res->failed) {
		str_append_cstr(out, "error ");
		quote(out, res->error != NULL ? res->error : "?",
		    strlen(res->error != NULL ? res->error : "?"));
		str_append_c(out, '\n');
	}
}
