/* SPDX-License-Identifier: MIT */
/*
 * header_address - RFC 5322 address lists, as IMAP ENVELOPE sees them
 *
 * DESCRIPTION
 *	See header_address.h. A small lexer turns the value into atoms
 *	(which, as in obs-phrase and obs-local-part, may contain dots),
 *	quoted strings, domain literals and single special characters,
 *	skipping white space and comments (it remembers the last comment,
 *	for "addr (Name)"). The parser on top is a loop that consumes at
 *	least one token per round, so any input ends in linear time.
 *
 *	Each address is one allocation: the struct followed by its strings.
 *	The strings are built in scratch buffers that live for one call.
 *
 * SEE ALSO
 *	RFC 5322 section 3.4, RFC 3501 section 7.4.2 (ENVELOPE addresses).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "header_address.h"
#include "str.h"

enum header_address_tok {
	HA_END,
	HA_ATOM,
	HA_QSTR,		/* text without the quotes, escapes kept */
	HA_DLIT,		/* "[...]" as is */
	HA_SPECIAL,
};

struct header_address_lex {
	const char *p;
	size_t n;
	size_t pos;
	const char *comment;	/* the last comment seen, or NULL */
	size_t comment_len;
};

struct header_address_ctx {
	struct header_address_lex lx;
	struct header_address *head;
	struct header_address **tailp;
	unsigned int count;
	unsigned int max;
	struct str *name, *route, *mailbox, *domain;
};

/* RFC 5322 specials, less '.' (kept in atoms), and NUL */
static const bool header_address_specials[256] = {
	['('] = true, [')'] = true, ['<'] = true, ['>'] = true,
	['['] = true, [']'] = true, [':'] = true, [';'] = true,
	['@'] = true, ['\\'] = true, [','] = true, ['"'] = true,
};

/* header_address_special - whether c is a special */
static inline bool
header_address_special(char c)
{
	return header_address_specials[(unsigned char)c];
}

/* header_address_ws - white space, including line ends of folds */
static inline bool
header_address_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* header_address_skip_cfws - skip white space and (nested) comments */
static void
header_address_skip_cfws(struct header_address_lex *lx)
{
	unsigned int depth;
	size_t start;

	while (lx->pos < lx->n) {
		if (header_address_ws(lx->p[lx->pos])) {
			lx->pos++;
			continue;
		}
		if (lx->p[lx->pos] != '(')
			return;
		depth = 0;
		start = lx->pos + 1;
		for (; lx->pos < lx->n; lx->pos++) {
			char c = lx->p[lx->pos];

			if (c == '\\' && lx->pos + 1 < lx->n) {
				lx->pos++;
			} else if (c == '(') {
				depth++;
			} else if (c == ')' && --depth == 0) {
				break;
			}
		}
		lx->comment = lx->p + start;
		lx->comment_len = (lx->pos < lx->n ? lx->pos : lx->n) - start;
		if (lx->pos < lx->n)
			lx->pos++;
	}
}

/* header_address_next - the next token */
static enum header_address_tok
header_address_next(struct header_address_lex *lx, const char **tp,
    size_t *tlen)
{
	size_t start;
	char c;

	header_address_skip_cfws(lx);
	if (lx->pos >= lx->n)
		return HA_END;
	start = lx->pos;
	c = lx->p[start];
	if (c == '"') {
		for (lx->pos++; lx->pos < lx->n && lx->p[lx->pos] != '"';
		    lx->pos++) {
			if (lx->p[lx->pos] == '\\' && lx->pos + 1 < lx->n)
				lx->pos++;
		}
		*tp = lx->p + start + 1;
		*tlen = lx->pos - start - 1;
		if (lx->pos < lx->n)
			lx->pos++;
		return HA_QSTR;
	}
	if (c == '[') {
		for (lx->pos++; lx->pos < lx->n && lx->p[lx->pos] != ']';
		    lx->pos++) {
			if (lx->p[lx->pos] == '\\' && lx->pos + 1 < lx->n)
				lx->pos++;
		}
		if (lx->pos < lx->n)
			lx->pos++;
		*tp = lx->p + start;
		*tlen = lx->pos - start;
		return HA_DLIT;
	}
	if (header_address_special(c)) {
		lx->pos++;
		*tp = lx->p + start;
		*tlen = 1;
		return HA_SPECIAL;
	}
	while (lx->pos < lx->n && !header_address_ws(lx->p[lx->pos]) &&
	    !header_address_special(lx->p[lx->pos]))
		lx->pos++;
	*tp = lx->p + start;
	*tlen = lx->pos - start;
	return HA_ATOM;
}

/* header_address_peek - the next token's type and first byte, not consumed */
static enum header_address_tok
header_address_peek(struct header_address_lex *lx, char *c_r)
{
	struct header_address_lex save = *lx;
	enum header_address_tok t;
	const char *tp;
	size_t tlen;

	t = header_address_next(lx, &tp, &tlen);
	*c_r = t == HA_END ? '\0' : *tp;
	*lx = save;
	return t;
}

/* header_address_unquote - append quoted-string content without escapes */
static void
header_address_unquote(struct str *s, const char *p, size_t n)
{
	size_t i;
	char *start, *w;

	if ((start = w = str_reserve(s, n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		if (p[i] != '\r' && p[i] != '\n')
			*w++ = p[i];
	}
	str_commit(s, (size_t)(w - start));
}

/* header_address_add_word - append a phrase word, space-separated */
static void
header_address_add_word(struct str *s, enum header_address_tok t,
    const char *tp, size_t tlen)
{
	if (str_len(s) > 0)
		(void)str_append_c(s, ' ');
	if (t == HA_QSTR)
		header_address_unquote(s, tp, tlen);
	else
		(void)str_append(s, tp, tlen);
}

/* header_address_copy - copy s into *w, NUL-terminated; NULL if absent */
static char *
header_address_copy(char **w, const struct str *s, bool present)
{
	char *r = *w;

	if (!present)
		return NULL;
	memcpy(r, str_c(s), str_len(s));
	r[str_len(s)] = '\0';
	*w += str_len(s) + 1;
	return r;
}

/* header_address_emit - append one address built from the scratch strings */
static void
header_address_emit(struct header_address_ctx *ctx, bool has_name,
    bool has_route, bool has_mailbox, bool has_domain, bool start, bool end)
{
	struct header_address *a;
	size_t size;
	char *w;

	/* A group's end marker may exceed the limit: keep groups closed. */
	if (ctx->max != 0 && ctx->count >= ctx->max && !end)
		return;
	size = sizeof(*a) + str_len(ctx->name) + str_len(ctx->route) +
	    str_len(ctx->mailbox) + str_len(ctx->domain) + 4;
	a = xmalloc(size);
	w = (char *)(a + 1);
	a->name = header_address_copy(&w, ctx->name, has_name);
	a->route = header_address_copy(&w, ctx->route, has_route);
	a->mailbox = header_address_copy(&w, ctx->mailbox, has_mailbox);
	a->domain = header_address_copy(&w, ctx->domain, has_domain);
	a->group_start = start;
	a->group_end = end;
	*ctx->tailp = a;
	ctx->tailp = &a->next;
	ctx->count++;
}

/* header_address_domain - append domain tokens up to a non-domain token */
static void
header_address_domain(struct header_address_ctx *ctx)
{
	struct header_address_lex save;
	enum header_address_tok t;
	const char *tp;
	size_t tlen;

	for (;;) {
		save = ctx->lx;
		t = header_address_next(&ctx->lx, &tp, &tlen);
		if (t == HA_ATOM || t == HA_DLIT) {
			(void)str_append(ctx->domain, tp, tlen);
			continue;
		}
		ctx->lx = save;
		return;
	}
}

/* header_address_finish - emit a mailbox from the scratch strings */
static void
header_address_finish(struct header_address_ctx *ctx, bool has_route)
{
	if (str_len(ctx->mailbox) == 0)
		(void)str_set_cstr(ctx->mailbox,
		    HEADER_ADDRESS_MISSING_MAILBOX);
	if (str_len(ctx->domain) == 0)
		(void)str_set_cstr(ctx->domain, HEADER_ADDRESS_MISSING_DOMAIN);
	header_address_emit(ctx, str_len(ctx->name) > 0, has_route, true,
	    true, false, false);
}

/* header_address_angle - after '<': [route ':'] addr-spec ['>'] */
static void
header_address_angle(struct header_address_ctx *ctx)
{
	enum header_address_tok t;
	const char *tp;
	size_t tlen;
	bool has_route = false;
	char c;

	t = header_address_peek(&ctx->lx, &c);
	if (t == HA_SPECIAL && c == '@') {
		/* A source route: "@a,@b:" */
		while ((t = header_address_next(&ctx->lx, &tp, &tlen)) !=
		    HA_END) {
			if (t == HA_SPECIAL && (*tp == ':' || *tp == '>'))
				break;
			(void)str_append(ctx->route, tp, tlen);
		}
		has_route = true;
		if (t != HA_SPECIAL || *tp != ':') {
			/* "<@a>": no addr-spec after all. */
			str_clear(ctx->route);
			has_route = false;
			header_address_finish(ctx, false);
			return;
		}
	}
	while ((t = header_address_next(&ctx->lx, &tp, &tlen)) != HA_END) {
		if (t == HA_ATOM)
			(void)str_append(ctx->mailbox, tp, tlen);
		else if (t == HA_QSTR)
			header_address_unquote(ctx->mailbox, tp, tlen);
		else if (t == HA_SPECIAL && *tp == '@')
			header_address_domain(ctx);
		else if (t == HA_SPECIAL && (*tp == '>' || *tp == ',' ||
		    *tp == ';'))
			break;
	}
	if (t == HA_SPECIAL && (*tp == ',' || *tp == ';'))
		ctx->lx.pos--;	/* leave the list separator for the caller */
	header_address_finish(ctx, has_route);
}

/*
 * header_address_mailbox - one mailbox, or a group when in_group is false
 * and a ':' follows the phrase. Leaves ',' and ';' unconsumed.
 */
static void
header_address_mailbox(struct header_address_ctx *ctx, bool in_group)
{
	struct header_address_lex save;
	enum header_address_tok t;
	const char *tp;
	size_t tlen;
	char c;

	str_clear(ctx->name);
	str_clear(ctx->route);
	str_clear(ctx->mailbox);
	str_clear(ctx->domain);
	ctx->lx.comment = NULL;
	for (;;) {
		save = ctx->lx;
		t = header_address_next(&ctx->lx, &tp, &tlen);
		if (t == HA_ATOM || t == HA_QSTR) {
			header_address_add_word(ctx->name, t, tp, tlen);
			if (t == HA_QSTR)
				header_address_unquote(ctx->mailbox, tp, tlen);
			else
				(void)str_append(ctx->mailbox, tp, tlen);
			continue;
		}
		if (t == HA_SPECIAL && *tp == '<') {
			str_clear(ctx->mailbox);
			header_address_angle(ctx);
			return;
		}
		if (t == HA_SPECIAL && *tp == '@') {
			/* addr-spec: the words were the local part. */
			str_clear(ctx->name);
			ctx->lx.comment = NULL;
			header_address_domain(ctx);
			/* The comment after the domain may name it. */
			header_address_skip_cfws(&ctx->lx);
			if (ctx->lx.comment != NULL) {
				const char *cp = ctx->lx.comment;
				size_t cn = ctx->lx.comment_len;

				while (cn > 0 && header_address_ws(*cp)) {
					cp++;
					cn--;
				}
				while (cn > 0 && header_address_ws(cp[cn - 1]))
					cn--;
				header_address_unquote(ctx->name, cp, cn);
			}
			/* Skip anything else up to the separator. */
			while (header_address_peek(&ctx->lx, &c) != HA_END &&
			    !(c == ',' || c == ';'))
				(void)header_address_next(&ctx->lx, &tp, &tlen);
			header_address_finish(ctx, false);
			return;
		}
		if (t == HA_SPECIAL && *tp == ':' && !in_group) {
			(void)str_set(ctx->mailbox, str_c(ctx->name),
			    str_len(ctx->name));
			str_clear(ctx->name);
			header_address_emit(ctx, false, false, true, false,
			    true, false);
			for (;;) {
				t = header_address_peek(&ctx->lx, &c);
				if (t == HA_END)
					break;
				if (t == HA_SPECIAL && (c == ',' || c == ';')) {
					(void)header_address_next(&ctx->lx,
					    &tp, &tlen);
					if (c == ';')
						break;
					continue;
				}
				header_address_mailbox(ctx, true);
			}
			header_address_emit(ctx, false, false, false, false,
			    false, true);
			return;
		}
		if (t == HA_END || (t == HA_SPECIAL && (*tp == ',' ||
		    *tp == ';'))) {
			ctx->lx = save;
			/* A bare word: a local part without a domain. */
			if (str_len(ctx->mailbox) > 0) {
				str_clear(ctx->name);
				header_address_finish(ctx, false);
			}
			return;
		}
		/* Stray specials and domain literals: skip them. */
	}
}

/* header_address_parse - parse an address list */
struct header_address *
header_address_parse(const char *p, size_t n, unsigned int max_addresses)
{
	struct header_address_ctx ctx;
	enum header_address_tok t;
	const char *tp;
	size_t tlen, before;
	char c;

	memset(&ctx, 0, sizeof(ctx));
	ctx.lx.p = p;
	ctx.lx.n = n;
	ctx.tailp = &ctx.head;
	ctx.max = max_addresses;
	ctx.name = str_new(64, 0);
	ctx.route = str_new(16, 0);
	ctx.mailbox = str_new(64, 0);
	ctx.domain = str_new(64, 0);
	for (;;) {
		if (ctx.max != 0 && ctx.count >= ctx.max)
			break;
		t = header_address_peek(&ctx.lx, &c);
		if (t == HA_END)
			break;
		if (t == HA_SPECIAL && (c == ',' || c == ';')) {
			(void)header_address_next(&ctx.lx, &tp, &tlen);
			continue;
		}
		before = ctx.lx.pos;
		header_address_mailbox(&ctx, false);
		if (ctx.lx.pos == before)	/* cannot happen; be sure */
			(void)header_address_next(&ctx.lx, &tp, &tlen);
	}
	str_free(&ctx.name);
	str_free(&ctx.route);
	str_free(&ctx.mailbox);
	str_free(&ctx.domain);
	return ctx.head;
}

/* header_address_free - free a list */
void
header_address_free(struct header_address **ap)
{
	struct header_address *a = *ap, *next;

	for (; a != NULL; a = next) {
		next = a->next;
		free(a);
	}
	*ap = NULL;
}
