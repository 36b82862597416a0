/* SPDX-License-Identifier: MIT */
/*
 * sieve_parse - lexer and parser for the RFC 5228 grammar
 *
 * DESCRIPTION
 *	Reads a script from (pointer, length) into the generic syntax tree
 *	of sieve_private.h: commands with arguments (string, string list,
 *	number, tag), tests and blocks. Nothing here knows what a command
 *	means; sieve_validate.c does. Every token carries its line and
 *	column (1-based, columns in octets) for error messages.
 *
 *	Lexical rules (RFC 5228 2.2-2.4, 8.1): identifiers, ":tag",
 *	numbers with K/M/G quantifiers (overflow past 2^63 is an error),
 *	quoted strings (only \" and \\ are escapes; any other "\x" is "x"),
 *	"text:" multi-line strings ending with a line holding only "."
 *	(a leading ".." loses one dot), "#" and bracketed comments. Line
 *	ends may be CRLF or LF. A NUL anywhere, a bare CR, an unterminated
 *	string or comment is an error.
 *
 *	Limits: string literals are bounded by max_string_size and block
 *	and test nesting by max_nesting, so neither a huge literal nor
 *	10,000 nested blocks can exhaust memory or the stack. Parsing stops
 *	at the first error (the grammar gives no reliable point to resume).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "str.h"

#include "sieve/sieve_private.h"

enum sv_tok {
	T_EOF, T_IDENT, T_TAG, T_NUM, T_STR, T_LBRACK, T_RBRACK, T_LPAREN,
	T_RPAREN, T_LBRACE, T_RBRACE, T_COMMA, T_SEMI, T_ERR
};

struct sv_lexer {
	const char *p;
	size_t n, pos;
	unsigned line, col;
	/* current token */
	enum sv_tok tok;
	unsigned tline, tcol;
	const char *tp;		/* identifier/tag text */
	size_t tlen;
	uint64_t num;
	struct str *sbuf;	/* string value */
	struct sv_arena *arena;
	const struct sieve_limits *lim;
	struct sv_diag *d;
	unsigned depth;
};

/* sv_diag - record an error or warning */
void
sv_diag(struct sv_diag *d, bool warning, unsigned line, unsigned col,
    const char *fmt, ...)
{
	struct sieve_errors *e = d->errs;
	struct sieve_error *it;
	va_list ap;
	char *text;

	if (!warning)
		d->nerrors++;
	if (e == NULL)
		return;
	/* Bound the list: a hostile script must not grow it without end. */
	if (e->count >= 100)
		return;
	if (e->count == e->cap) {
		e->cap = e->cap == 0 ? 8 : e->cap * 2;
		e->items = xreallocarray(e->items, e->cap, sizeof(*e->items));
	}
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	it = &e->items[e->count++];
	memset(it, 0, sizeof(*it));
	it->script = xstrdup(d->script != NULL ? d->script : "script");
	it->line = line;
	it->column = col;
	it->warning = warning;
	if (text == NULL)
		it->text = xstrdup("(out of memory)");
	else {
		struct str *s = str_new(strlen(text), 0);

		mem_printable(s, text, strlen(text), 512);
		it->text = str_steal(&s);
		free(text);
	}
	if (!warning)
		e->errors++;
}

static int
lex_err(struct sv_lexer *lx, unsigned line, unsigned col, const char *what)
{
	sv_diag(lx->d, false, line, col, "%s", what);
	lx->tok = T_ERR;
	return -1;
}

static inline int
lex_peekc(const struct sv_lexer *lx, size_t off)
{
	return lx->pos + off < lx->n ? (unsigned char)lx->p[lx->pos + off] : -1;
}

static inline void
lex_adv(struct sv_lexer *lx)
{
	if (lx->p[lx->pos] == '\n') {
		lx->line++;
		lx->col = 1;
	} else
		lx->col++;
	lx->pos++;
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* lex_eol - at a line end (CRLF or LF)? returns its length or 0 */
static size_t
lex_eol(const struct sv_lexer *lx)
{
	if (lex_peekc(lx, 0) == '\n')
		return 1;
	if (lex_peekc(lx, 0) == '\r' && lex_peekc(lx, 1) == '\n')
		return 2;
	return 0;
}

static int
lex_str_add(struct sv_lexer *lx, const char *p, size_t n)
{
	if (str_append(lx->sbuf, p, n) < 0)
		return lex_err(lx, lx->tline, lx->tcol,
		    "string too long (see sieve_max_string_size)");
	return 0;
}

static int
lex_multiline(struct sv_lexer *lx)
{
	int c;
	size_t eol;

	/* "text:" *(SP / HTAB) (hash-comment / CRLF) */
	while ((c = lex_peekc(lx, 0)) == ' ' || c == '\t')
		lex_adv(lx);
	if (c == '#') {
		while ((c = lex_peekc(lx, 0)) >= 0 && c != '\n') {
			if (c == '\0')
				return lex_err(lx, lx->line, lx->col, "NUL in script");
			lex_adv(lx);
		}
	}
	if ((eol = lex_eol(lx)) == 0)
		return lex_err(lx, lx->line, lx->col,
		    "expected a line end after 'text:'");
	while (eol-- > 0)
		lex_adv(lx);
	for (;;) {
		size_t start = lx->pos, end, len;

		if (lx->pos >= lx->n)
			return lex_err(lx, lx->tline, lx->tcol,
			    "unterminated multi-line string (missing '.' line)");
		while (lx->pos < lx->n && lx->p[lx->pos] != '\n') {
			if (lx->p[lx->pos] == '\0')
				return lex_err(lx, lx->line, lx->col,
				    "NUL in script");
			lex_adv(lx);
		}
		end = lx->pos;
		len = end - start;
		if (len > 0 && lx->p[end - 1] == '\r')
			len--;
		if (lx->pos < lx->n)
			lex_adv(lx);	/* the LF */
		if (len == 1 && lx->p[start] == '.')
			return 0;
		if (lx->pos >= lx->n && end == lx->n)
			return lex_err(lx, lx->tline, lx->tcol,
			    "unterminated multi-line string (missing '.' line)");
		if (len > 0 && lx->p[start] == '.') {
			start++;	/* dot-unstuffing */
			len--;
		}
		if (lex_str_add(lx, lx->p + start, len) < 0 ||
		    lex_str_add(lx, "\r\n", 2) < 0)
			return -1;
	}
}

static int
lex_quoted(struct sv_lexer *lx)
{
	int c;

	lex_adv(lx);	/* '"' */
	for (;;) {
		size_t start = lx->pos;

		while ((c = lex_peekc(lx, 0)) >= 0 && c != '"' && c != '\\' &&
		    c != '\0' && c != '\r' && c != '\n')
			lex_adv(lx);
		if (lx->pos > start && lex_str_add(lx, lx->p + start,
		    lx->pos - start) < 0)
			return -1;
		if (c < 0)
			return lex_err(lx, lx->tline, lx->tcol,
			    "unterminated string");
		if (c == '\0')
			return lex_err(lx, lx->line, lx->col, "NUL in script");
		if (c == '"') {
			lex_adv(lx);
			return 0;
		}
		if (c == '\r' || c == '\n') {
			/* Line ends inside a quoted string stay, as CRLF. */
			size_t eol = lex_eol(lx);

			if (eol == 0)
				return lex_err(lx, lx->line, lx->col,
				    "bare CR in string");
			while (eol-- > 0)
				lex_adv(lx);
			if (lex_str_add(lx, "\r\n", 2) < 0)
				return -1;
			continue;
		}
		/* backslash: the next character stands for itself */
		lex_adv(lx);
		c = lex_peekc(lx, 0);
		if (c < 0)
			return lex_err(lx, lx->tline, lx->tcol,
			    "unterminated string");
		if (c == '\0')
			return lex_err(lx, lx->line, lx->col, "NUL in script");
		if (c == '\r' || c == '\n')
			continue;	/* handled above on the next turn */
		{
			char ch = (char)c;

			if (lex_str_add(lx, &ch, 1) < 0)
				return -1;
		}
		lex_adv(lx);
	}
}

/* lex_next - read the next token into lx */
static int
lex_next(struct sv_lexer *lx)
{
	int c;

	if (lx->tok == T_ERR)
		return -1;
	/* white space and comments */
	for (;;) {
		c = lex_peekc(lx, 0);
		if (c == ' ' || c == '\t' || c == '\n') {
			lex_adv(lx);
		} else if (c == '\r') {
			if (lex_peekc(lx, 1) != '\n')
				return lex_err(lx, lx->line, lx->col,
				    "bare CR in script");
			lex_adv(lx);
		} else if (c == '#') {
			while ((c = lex_peekc(lx, 0)) >= 0 && c != '\n') {
				if (c == '\0')
					return lex_err(lx, lx->line, lx->col,
					    "NUL in script");
				lex_adv(lx);
			}
		} else if (c == '/' && lex_peekc(lx, 1) == '*') {
			unsigned l = lx->line, co = lx->col;

			lex_adv(lx);
			lex_adv(lx);
			for (;;) {
				c = lex_peekc(lx, 0);
				if (c < 0)
					return lex_err(lx, l, co,
					    "unterminated comment");
				if (c == '\0')
					return lex_err(lx, lx->line, lx->col,
					    "NUL in script");
				if (c == '*' && lex_peekc(lx, 1) == '/') {
					lex_adv(lx);
					lex_adv(lx);
					break;
				}
				lex_adv(lx);
			}
		} else
			break;
	}
	lx->tline = lx->line;
	lx->tcol = lx->col;
	if (c < 0) {
		lx->tok = T_EOF;
		return 0;
	}
	switch (c) {
	case '[': lx->tok = T_LBRACK; lex_adv(lx); return 0;
	case ']': lx->tok = T_RBRACK; lex_adv(lx); return 0;
	case '(': lx->tok = T_LPAREN; lex_adv(lx); return 0;
	case ')': lx->tok = T_RPAREN; lex_adv(lx); return 0;
	case '{': lx->tok = T_LBRACE; lex_adv(lx); return 0;
	case '}': lx->tok = T_RBRACE; lex_adv(lx); return 0;
	case ',': lx->tok = T_COMMA; lex_adv(lx); return 0;
	case ';': lx->tok = T_SEMI; lex_adv(lx); return 0;
	case '"':
		str_clear(lx->sbuf);
		if (lex_quoted(lx) < 0)
			return -1;
		lx->tok = T_STR;
		return 0;
	case '\0':
		return lex_err(lx, lx->line, lx->col, "NUL in script");
	}
	if (c == ':') {
		lex_adv(lx);
		if (!is_alpha(lex_peekc(lx, 0)))
			return lex_err(lx, lx->tline, lx->tcol,
			    "expected a tag name after ':'");
		lx->tp = lx->p + lx->pos;
		while (is_alpha(c = lex_peekc(lx, 0)) || is_digit(c))
			lex_adv(lx);
		lx->tlen = (size_t)(lx->p + lx->pos - lx->tp);
		lx->tok = T_TAG;
		return 0;
	}
	if (is_digit(c)) {
		uint64_t v = 0;
		unsigned shift = 0;

		while (is_digit(c = lex_peekc(lx, 0))) {
			if (v > (UINT64_C(1) << 62) / 10)
				return lex_err(lx, lx->tline, lx->tcol,
				    "number too large");
			v = v * 10 + (uint64_t)(c - '0');
			lex_adv(lx);
		}
		switch (c) {
		case 'K': case 'k': shift = 10; lex_adv(lx); break;
		case 'M': case 'm': shift = 20; lex_adv(lx); break;
		case 'G': case 'g': shift = 30; lex_adv(lx); break;
		}
		if (v > (UINT64_C(1) << 62) >> shift)
			return lex_err(lx, lx->tline, lx->tcol,
			    "number too large");
		v <<= shift;
		if (is_alpha(lex_peekc(lx, 0)))
			return lex_err(lx, lx->tline, lx->tcol,
			    "bad number (unknown quantifier)");
		lx->num = v;
		lx->tok = T_NUM;
		return 0;
	}
	if (is_alpha(c)) {
		lx->tp = lx->p + lx->pos;
		while (is_alpha(c = lex_peekc(lx, 0)) || is_digit(c))
			lex_adv(lx);
		lx->tlen = (size_t)(lx->p + lx->pos - lx->tp);
		if (lx->tlen == 4 && strncasecmp(lx->tp, "text", 4) == 0 &&
		    lex_peekc(lx, 0) == ':') {
			lex_adv(lx);
			str_clear(lx->sbuf);
			if (lex_multiline(lx) < 0)
				return -1;
			lx->tok = T_STR;
			return 0;
		}
		lx->tok = T_IDENT;
		return 0;
	}
	{
		char msg[64];

		if (c >= 0x21 && c < 0x7f)
			snprintf(msg, sizeof(msg), "unexpected character '%c'", c);
		else
			snprintf(msg, sizeof(msg),
			    "unexpected character 0x%02x", (unsigned)c);
		return lex_err(lx, lx->tline, lx->tcol, msg);
	}
}

static const char *
tok_name(enum sv_tok t)
{
	switch (t) {
	case T_EOF: return "end of script";
	case T_IDENT: return "identifier";
	case T_TAG: return "tag";
	case T_NUM: return "number";
	case T_STR: return "string";
	case T_LBRACK: return "'['";
	case T_RBRACK: return "']'";
	case T_LPAREN: return "'('";
	case T_RPAREN: return "')'";
	case T_LBRACE: return "'{'";
	case T_RBRACE: return "'}'";
	case T_COMMA: return "','";
	case T_SEMI: return "';'";
	case T_ERR: return "error";
	}
	return "?";
}

static int
parse_err(struct sv_lexer *lx, const char *want)
{
	char msg[128];

	if (lx->tok == T_ERR)
		return -1;
	snprintf(msg, sizeof(msg), "syntax error: expected %s but found %s",
	    want, tok_name(lx->tok));
	return lex_err(lx, lx->tline, lx->tcol, msg);
}

static struct sv_str
cur_string(struct sv_lexer *lx)
{
	struct sv_str s;

	s.len = (uint32_t)str_len(lx->sbuf);
	s.p = sv_memdup(lx->arena, str_c(lx->sbuf), s.len);
	s.var = memchr(s.p, '$', s.len) != NULL;
	return s;
}

/* Growable arrays in the arena: doubled, the old copy abandoned (small). */
static void *
grow(struct sv_arena *a, void *old, uint32_t n, uint32_t *cap, size_t size)
{
	void *nw;

	if (n < *cap)
		return old;
	*cap = *cap == 0 ? 4 : *cap * 2;
	nw = sv_alloc(a, (size_t)*cap * size);
	if (old != NULL)
		memcpy(nw, old, (size_t)n * size);
	return nw;
}

static int parse_test(struct sv_lexer *lx, struct sv_cmd *t);

/* parse_arguments - *argument [test / test-list] into c */
static int
parse_arguments(struct sv_lexer *lx, struct sv_cmd *c, bool is_test)
{
	uint32_t cap = 0, tcap = 0;

	for (;;) {
		struct sv_arg *a;

		if (lx->tok != T_STR && lx->tok != T_NUM && lx->tok != T_TAG &&
		    lx->tok != T_LBRACK)
			break;
		c->args = grow(lx->arena, c->args, c->nargs, &cap,
		    sizeof(*c->args));
		if (c->nargs >= 256)
			return lex_err(lx, lx->tline, lx->tcol,
			    "too many arguments");
		a = &c->args[c->nargs++];
		a->line = lx->tline;
		a->col = lx->tcol;
		if (lx->tok == T_STR) {
			a->type = SV_ARG_STR;
			a->list.n = 1;
			a->list.v = sv_alloc(lx->arena, sizeof(struct sv_str));
			a->list.v[0] = cur_string(lx);
		} else if (lx->tok == T_NUM) {
			a->type = SV_ARG_NUM;
			a->num = lx->num;
		} else if (lx->tok == T_TAG) {
			a->type = SV_ARG_TAG;
			a->tag = sv_memdup(lx->arena, lx->tp, lx->tlen);
		} else {
			uint32_t lcap = 0;

			a->type = SV_ARG_LIST;
			if (lex_next(lx) < 0)
				return -1;
			for (;;) {
				if (lx->tok != T_STR)
					return parse_err(lx, "a string");
				a->list.v = grow(lx->arena, a->list.v,
				    a->list.n, &lcap, sizeof(struct sv_str));
				if (a->list.n >= 65536)
					return lex_err(lx, lx->tline, lx->tcol,
					    "string list too long");
				a->list.v[a->list.n++] = cur_string(lx);
				if (lex_next(lx) < 0)
					return -1;
				if (lx->tok == T_RBRACK)
					break;
				if (lx->tok != T_COMMA)
					return parse_err(lx, "',' or ']'");
				if (lex_next(lx) < 0)
					return -1;
			}
		}
		if (lex_next(lx) < 0)
			return -1;
	}
	if (lx->tok == T_IDENT) {
		c->tests = sv_alloc(lx->arena, sizeof(*c->tests));
		c->ntests = 1;
		return parse_test(lx, &c->tests[0]);
	}
	if (lx->tok == T_LPAREN) {
		unsigned l = lx->tline, co = lx->tcol;

		c->test_list = true;
		if (++lx->depth > lx->lim->max_nesting)
			return lex_err(lx, l, co, "tests nested too deeply "
			    "(see sieve_max_nesting)");
		if (lex_next(lx) < 0)
			return -1;
		for (;;) {
			if (lx->tok != T_IDENT)
				return parse_err(lx, "a test");
			c->tests = grow(lx->arena, c->tests, c->ntests, &tcap,
			    sizeof(*c->tests));
			if (c->ntests >= 65536)
				return lex_err(lx, lx->tline, lx->tcol,
				    "too many tests");
			if (parse_test(lx, &c->tests[c->ntests++]) < 0)
				return -1;
			if (lx->tok == T_RPAREN)
				break;
			if (lx->tok != T_COMMA)
				return parse_err(lx, "',' or ')'");
			if (lex_next(lx) < 0)
				return -1;
		}
		lx->depth--;
		return lex_next(lx);
	}
	(void)is_test;
	return 0;
}

static int
parse_test(struct sv_lexer *lx, struct sv_cmd *t)
{
	if (++lx->depth > lx->lim->max_nesting)
		return lex_err(lx, lx->tline, lx->tcol,
		    "tests nested too deeply (see sieve_max_nesting)");
	t->name = sv_memdup(lx->arena, lx->tp, lx->tlen);
	t->line = lx->tline;
	t->col = lx->tcol;
	if (lex_next(lx) < 0 || parse_arguments(lx, t, true) < 0)
		return -1;
	lx->depth--;
	return 0;
}

static int parse_commands(struct sv_lexer *lx, struct sv_cmd **cmds_r,
    uint32_t *n_r, bool in_block);

static int
parse_command(struct sv_lexer *lx, struct sv_cmd *c)
{
	c->name = sv_memdup(lx->arena, lx->tp, lx->tlen);
	c->line = lx->tline;
	c->col = lx->tcol;
	if (lex_next(lx) < 0 || parse_arguments(lx, c, false) < 0)
		return -1;
	if (lx->tok == T_SEMI)
		return lex_next(lx);
	if (lx->tok == T_LBRACE) {
		unsigned l = lx->tline, co = lx->tcol;

		if (++lx->depth > lx->lim->max_nesting)
			return lex_err(lx, l, co, "blocks nested too deeply "
			    "(see sieve_max_nesting)");
		c->has_block = true;
		if (lex_next(lx) < 0 ||
		    parse_commands(lx, &c->block, &c->nblock, true) < 0)
			return -1;
		if (lx->tok != T_RBRACE)
			return parse_err(lx, "'}'");
		lx->depth--;
		return lex_next(lx);
	}
	return parse_err(lx, "';' or '{'");
}

static int
parse_commands(struct sv_lexer *lx, struct sv_cmd **cmds_r, uint32_t *n_r,
    bool in_block)
{
	uint32_t cap = 0;

	*cmds_r = NULL;
	*n_r = 0;
	for (;;) {
		if (lx->tok == T_EOF && !in_block)
			return 0;
		if (lx->tok == T_RBRACE && in_block)
			return 0;
		if (lx->tok != T_IDENT)
			return parse_err(lx, in_block ? "a command or '}'" :
			    "a command");
		*cmds_r = grow(lx->arena, *cmds_r, *n_r, &cap, sizeof(**cmds_r));
		if (*n_r >= 100000)
			return lex_err(lx, lx->tline, lx->tcol,
			    "too many commands");
		if (parse_command(lx, &(*cmds_r)[(*n_r)++]) < 0)
			return -1;
	}
}

/* sv_parse - see sieve_private.h */
int
sv_parse(struct sv_arena *a, const char *p, size_t n,
    const struct sieve_limits *lim, struct sv_diag *d,
    struct sv_cmd **cmds_r, uint32_t *ncmds_r)
{
	struct sv_lexer lx;
	int rc;

	memset(&lx, 0, sizeof(lx));
	lx.p = p;
	lx.n = n;
	lx.line = lx.col = 1;
	lx.arena = a;
	lx.lim = lim;
	lx.d = d;
	lx.sbuf = str_new(256, lim->max_string_size);
	*cmds_r = NULL;
	*ncmds_r = 0;
	if (n > lim->max_script_size) {
		sv_diag(d, false, 0, 0, "script too large (%zu octets; "
		    "sieve_max_script_size is %zu)", n, lim->max_script_size);
		str_free(&lx.sbuf);
		return -1;
	}
	rc = lex_next(&lx);
	if (rc == 0)
		rc = parse_commands(&lx, cmds_r, ncmds_r, false);
	str_free(&lx.sbuf);
	return rc;
}
