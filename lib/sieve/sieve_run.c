/* SPDX-License-Identifier: MIT */
/*
 * sieve_run - execute a compiled script against one message
 *
 * DESCRIPTION
 *	The interpreter walks the node tree of sieve_validate.c. The
 *	message header is split into an array of fields once per run
 *	(editheader changes that array, so later tests see the edits, RFC
 *	5293 section 7); decoded values (unfolded, RFC 2047 encoded-words
 *	decoded to UTF-8, RFC 5228 2.7.2) are computed on first use and
 *	kept. The MIME tree is parsed only when a body test, a :mime
 *	test or foreverypart needs it.
 *
 *	foreverypart (RFC 5703 3) walks the MIME tree in order, the
 *	message itself first; a loop inside a loop walks the parts below
 *	the outer loop's current part. Tests with :mime read the header
 *	fields of the current part as they are in the message (editheader
 *	changes only the top-level header; outside a loop and without
 *	:anychild, :mime tests see that edited header, as Pigeonhole does).
 *
 *	Actions go into struct sieve_result with the RFC 5228 section 4 and
 *	4.x rules: a second fileinto/keep to the same mailbox or redirect to
 *	the same address is merged into the first; reject and ereject
 *	conflict with keep, fileinto, redirect and vacation; a second
 *	vacation or reject is an error. Any runtime error (conflict, a
 *	limit, a failed callback) stops the script; the result then holds
 *	only the implicit keep and the reason (RFC 5228 2.10.6).
 *
 *	Work is bounded: every comparison is charged to max_match_steps,
 *	actions to max_actions and max_redirects, variables to
 *	max_variables and max_variable_size, and body text to
 *	max_body_size.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "alloc.h"
#include "header.h"
#include "html_text.h"
#include "mime.h"
#include "mime_decode.h"
#include "rfc2047.h"
#include "str.h"

#include "sieve/sieve_private.h"

#define SV_MAX_HEADERS	10000
#define SV_MAX_ADDED_VALUE	2048	/* addheader (Pigeonhole's default) */
#define SV_FLAGS_VAR	"\001flags"	/* imap4flags internal variable */

struct rhdr {
	const char *name;
	size_t nlen;
	const char *raw;
	size_t rlen;
	char *owned;		/* storage of an added header */
	struct str *dec;	/* decoded value, lazily */
	struct address_list *addrs;	/* parsed addresses, lazily */
	bool deleted;
};

struct rvar {
	char *name;
	struct str *val;
};

struct rvars {
	struct rvar *v;
	size_t n, cap;
};

struct rframe {
	const struct sv_unit *u;
	struct rvars locals;
	char **globals;		/* names declared global in this frame */
	size_t nglobals;
};

struct sv_run {
	const struct sieve_script *s;
	const struct sieve_env *env;
	const struct sieve_limits *lim;
	struct sieve_result *res;

	struct rhdr *h;
	size_t nh, hcap;
	bool edited;
	bool hdr_truncated;	/* more than SV_MAX_HEADERS fields */
	const char *body;
	size_t body_len;
	struct mime_message *mime;

	struct rframe *frame;
	struct rvars globals;
	struct str *match[10];
	unsigned nmatch;

	uint64_t steps;
	bool stop, ret, failed;
	bool keep_cancelled;
	unsigned redirects;
	bool *included_once;
	unsigned include_depth;
	time_t now;
	struct str *tmp;
	struct str *keep_flags_var;	/* the main script's flags at its end */
	struct str *name;		/* scratch: header name of a test */
	struct address *env_addr[3];	/* parsed envelope from/to/auth, lazily */
	/* foreverypart (RFC 5703 3): the part each enclosing loop is at */
	const struct mime_part *loop[SV_MAX_LOOP_DEPTH];
	unsigned nloops;
	unsigned brk;		/* loops a break still has to leave */
};

/* ------------------------------------------------------------ errors */

static void
run_fail(struct sv_run *r, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
run_fail(struct sv_run *r, unsigned line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (r->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->failed = true;
	r->stop = true;
	free(r->res->error);
	{
		struct str *s = str_new(128, 0);

		str_printf(s, "line %u: ", line);
		mem_printable(s, buf, strlen(buf), 512);
		r->res->error = str_steal(&s);
	}
}

static bool
charge(struct sv_run *r, unsigned line, uint64_t n)
{
	r->steps += n;
	if (r->steps > r->lim->max_match_steps) {
		run_fail(r, line, "the script used too much CPU "
		    "(see sieve_max_match_steps)");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ header */

static void
hdr_index(struct sv_run *r)
{
	struct header_iter it;
	struct header_field f;
	size_t hsize = header_block_size(r->env->msg, r->env->msg_size);

	header_iter_init(&it, r->env->msg, hsize);
	while (header_iter_next(&it, &f)) {
		if (f.no_colon)
			continue;
		if (r->nh >= SV_MAX_HEADERS) {
			/* tests see the first ones; edits would lose the rest */
			r->hdr_truncated = true;
			break;
		}
		if (r->nh == r->hcap) {
			r->hcap = r->hcap == 0 ? 32 : r->hcap * 2;
			r->h = xreallocarray(r->h, r->hcap, sizeof(*r->h));
		}
		memset(&r->h[r->nh], 0, sizeof(r->h[0]));
		r->h[r->nh].name = f.name;
		r->h[r->nh].nlen = f.name_len;
		r->h[r->nh].raw = f.value;
		r->h[r->nh].rlen = f.value_len;
		r->nh++;
	}
	r->body = r->env->msg + hsize;
	r->body_len = r->env->msg_size - hsize;
}

static bool
hdr_is(const struct rhdr *h, const char *name, size_t n)
{
	return !h->deleted && h->nlen == n && strncasecmp(h->name, name, n) == 0;
}

/* hdr_value - the decoded (unfolded, RFC 2047) value */
static const struct str *
hdr_value(struct rhdr *h)
{
	if (h->dec == NULL) {
		h->dec = str_new(h->rlen + 1, 0);
		(void)rfc2047_decode(h->raw, h->rlen, h->dec);
	}
	return h->dec;
}

/* hdr_unfolded - the raw value, unfolded and trimmed, into out */
static void
hdr_unfolded(const struct rhdr *h, struct str *out)
{
	str_clear(out);
	(void)header_unfold(h->raw, h->rlen, out);
}

/* hdr_build - append the current header block to out */
static void
hdr_build(struct sv_run *r, struct str *out)
{
	size_t i;

	for (i = 0; i < r->nh; i++) {
		struct rhdr *h = &r->h[i];

		if (h->deleted)
			continue;
		str_append(out, h->name, h->nlen);
		str_append_c(out, ':');
		str_append(out, h->raw, h->rlen);
		str_append(out, "\r\n", 2);
	}
	str_append(out, "\r\n", 2);
}

/* ------------------------------------------------------------ variables */

static struct str *
var_find(struct rvars *vs, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < vs->n; i++)
		if (strlen(vs->v[i].name) == n &&
		    strncasecmp(vs->v[i].name, name, n) == 0)
			return vs->v[i].val;
	return NULL;
}

static bool
frame_is_global(const struct rframe *f, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < f->nglobals; i++)
		if (strlen(f->globals[i]) == n &&
		    strncasecmp(f->globals[i], name, n) == 0)
			return true;
	return false;
}

static struct rvars *
var_table(struct sv_run *r, const char **name, size_t *n)
{
	if (*n > 7 && strncasecmp(*name, "global.", 7) == 0) {
		*name += 7;
		*n -= 7;
		return &r->globals;
	}
	if (frame_is_global(r->frame, *name, *n))
		return &r->globals;
	return &r->frame->locals;
}

static struct str *
var_get(struct sv_run *r, const char *name, size_t n)
{
	struct rvars *vs = var_table(r, &name, &n);

	return var_find(vs, name, n);
}

/* var_set - returns false (and fails the run) past max_variables */
static bool
var_set(struct sv_run *r, unsigned line, const char *name, size_t n,
    const char *val, size_t vlen)
{
	struct rvars *vs = var_table(r, &name, &n);
	struct str *s = var_find(vs, name, n);

	if (s == NULL) {
		if (vs->n >= r->lim->max_variables) {
			run_fail(r, line, "too many variables "
			    "(see sieve_max_variables)");
			return false;
		}
		if (vs->n == vs->cap) {
			vs->cap = vs->cap == 0 ? 8 : vs->cap * 2;
			vs->v = xreallocarray(vs->v, vs->cap, sizeof(*vs->v));
		}
		vs->v[vs->n].name = xstrndup(name, n);
		s = vs->v[vs->n].val = str_new(vlen, 0);
		vs->n++;
	}
	/* Too long: cut at a character boundary (RFC 5229 3: MAY truncate) */
	if (vlen > r->lim->max_variable_size) {
		vlen = r->lim->max_variable_size;
		while (vlen > 0 && ((unsigned char)val[vlen] & 0xc0) == 0x80)
			vlen--;
	}
	str_set(s, val, vlen);
	return true;
}

static void
vars_free(struct rvars *vs)
{
	size_t i;

	for (i = 0; i < vs->n; i++) {
		free(vs->v[i].name);
		str_free(&vs->v[i].val);
	}
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

static bool
unit_has(const struct sv_run *r, int ext)
{
	return (r->frame->u->ext >> ext) & 1;
}

/*
 * expand - the value of string s with ${...} references substituted,
 * into out (RFC 5229 3). Unknown variables are empty; references that
 * are not well-formed stay as they are.
 */
static void
expand(struct sv_run *r, const struct sv_str *s, struct str *out)
{
	size_t i = 0;

	str_clear(out);
	if (!s->var) {
		str_append(out, s->p, s->len);
		return;
	}
	while (i < s->len) {
		size_t k, start;
		bool ok = true, digits = true;

		if (!(s->p[i] == '$' && i + 1 < s->len && s->p[i + 1] == '{')) {
			str_append(out, s->p + i, 1);
			i++;
			continue;
		}
		start = i + 2;
		for (k = start; k < s->len && s->p[k] != '}'; k++) {
			char c = s->p[k];

			if (!(isalnum((unsigned char)c) || c == '_' || c == '.'))
				ok = false;
			if (!isdigit((unsigned char)c))
				digits = false;
		}
		if (k >= s->len || k == start || !ok) {
			str_append(out, s->p + i, 1);
			i++;
			continue;
		}
		if (digits) {
			unsigned long idx = 0;
			size_t d;

			for (d = start; d < k && idx < 100; d++)
				idx = idx * 10 + (unsigned long)(s->p[d] - '0');
			if (idx < r->nmatch && r->match[idx] != NULL)
				str_append_str(out, r->match[idx]);
		} else {
			const char *name = s->p + start;
			size_t n = k - start;
			bool valid = isalpha((unsigned char)name[0]) ||
			    name[0] == '_';

			if (!valid) {
				str_append(out, s->p + i, 1);
				i++;
				continue;
			}
			/* Only "global." is a known namespace. */
			if (memchr(name, '.', n) != NULL &&
			    !(n > 7 && strncasecmp(name, "global.", 7) == 0 &&
			    memchr(name + 7, '.', n - 7) == NULL)) {
				str_append(out, s->p + i, k + 1 - i);
				i = k + 1;
				continue;
			}
			{
				struct str *val = var_get(r, name, n);

				if (val != NULL)
					str_append_str(out, val);
			}
		}
		i = k + 1;
	}
}

/* ------------------------------------------------------------ matching */

struct mkey {
	const char *p;
	size_t n;
	struct str *own;
	regex_t *re;
	bool re_own;
};

struct mstate {
	struct sv_run *r;
	const struct sv_node *nd;
	struct mkey small[4];
	struct mkey *keys;
	size_t nkeys;
	uint64_t count;
	bool matched;
	bool set_vars;
};

static void
mstate_init(struct mstate *m, struct sv_run *r, const struct sv_node *nd,
    const struct sv_slist *keys)
{
	uint32_t i;

	memset(m, 0, sizeof(*m));
	m->r = r;
	m->nd = nd;
	m->set_vars = unit_has(r, SV_EXT_VARIABLES) &&
	    (nd->mt == SV_MT_MATCHES || nd->mt == SV_MT_REGEX);
	if (keys == NULL)
		return;
	m->nkeys = keys->n;
	m->keys = keys->n <= N_ELEMENTS(m->small) ? m->small :
	    xcalloc(keys->n, sizeof(*m->keys));
	for (i = 0; i < keys->n; i++) {
		struct mkey *k = &m->keys[i];

		if (keys->v[i].var) {
			k->own = str_new(keys->v[i].len + 16, 0);
			expand(r, &keys->v[i], k->own);
			k->p = str_c(k->own);
			k->n = str_len(k->own);
		} else {
			k->p = keys->v[i].p;
			k->n = keys->v[i].len;
		}
		if (nd->mt == SV_MT_REGEX) {
			regex_t **pre = keys->pre;

			if (!keys->v[i].var && pre != NULL && pre[i] != NULL)
				k->re = pre[i];
			else {
				const char *error;

				k->re = sv_regex_compile(k->p, k->n,
				    nd->cmp == SV_CMP_CASEMAP,
				    r->lim->max_regex_size, &error);
				k->re_own = true;
				if (k->re == NULL)
					run_fail(r, nd->line, "invalid regular "
					    "expression: %s", error);
			}
		}
	}
}

static void
mstate_free(struct mstate *m)
{
	size_t i;

	for (i = 0; i < m->nkeys; i++) {
		str_free(&m->keys[i].own);
		if (m->keys[i].re_own && m->keys[i].re != NULL) {
			regfree(m->keys[i].re);
			free(m->keys[i].re);
		}
	}
	if (m->keys != m->small)
		free(m->keys);
}

static void
set_match_vars(struct sv_run *r, const char *val, const size_t off[10],
    const size_t len[10], unsigned n)
{
	unsigned i;

	for (i = 0; i < 10; i++) {
		if (r->match[i] == NULL)
			r->match[i] = str_new(32, 0);
		str_clear(r->match[i]);
		if (i < n) {
			size_t l = MIN(len[i], r->lim->max_variable_size);

			str_append(r->match[i], val + off[i], l);
		}
	}
	r->nmatch = n;
}

/* m_value - offer one value; true when the test is decided (matched) */
static bool
m_value(struct mstate *m, const char *p, size_t n)
{
	const struct sv_node *nd = m->nd;
	struct sv_run *r = m->r;
	size_t i;

	if (m->matched || r->failed)
		return true;
	if (nd->mt == SV_MT_COUNT) {
		m->count++;
		return false;
	}
	if (!charge(r, nd->line, 1 + m->nkeys))
		return true;
	for (i = 0; i < m->nkeys; i++) {
		struct mkey *k = &m->keys[i];
		bool ok = false;

		switch (nd->mt) {
		case SV_MT_IS:
			ok = sv_equal(nd->cmp, p, n, k->p, k->n);
			r->steps += n;
			break;
		case SV_MT_CONTAINS:
			ok = sv_contains(nd->cmp, p, n, k->p, k->n, &r->steps);
			break;
		case SV_MT_VALUE:
			ok = sv_rel_ok(nd->rel, sv_cmp_values(nd->cmp, p, n,
			    k->p, k->n));
			break;
		case SV_MT_MATCHES: {
			size_t off[10], len[10];
			unsigned nc = 0;

			ok = sv_glob(k->p, k->n, p, n, nd->cmp == SV_CMP_CASEMAP,
			    &r->steps, r->lim->max_match_steps,
			    m->set_vars ? off : NULL, m->set_vars ? len : NULL,
			    m->set_vars ? &nc : NULL);
			if (!charge(r, nd->line, 0))
				return true;
			if (ok && m->set_vars)
				set_match_vars(r, p, off, len, nc);
			break;
		}
		case SV_MT_REGEX: {
			regmatch_t pm[10];
			size_t off[10], len[10];
			unsigned j, nc = 0;

			if (k->re == NULL)
				return true;
			if (memchr(p, '\0', n) != NULL)
				break;	/* glibc regexec reads up to a NUL */
			pm[0].rm_so = 0;
			pm[0].rm_eo = (regoff_t)n;
			r->steps += n * 4;
			if (!charge(r, nd->line, 0))
				return true;
			ok = regexec(k->re, p, 10, pm, REG_STARTEND) == 0;
			if (ok && m->set_vars) {
				for (j = 0; j < 10; j++) {
					if (pm[j].rm_so < 0) {
						off[j] = 0;
						len[j] = 0;
					} else {
						off[j] = (size_t)pm[j].rm_so;
						len[j] = (size_t)(pm[j].rm_eo -
						    pm[j].rm_so);
					}
					nc = j + 1;
				}
				set_match_vars(r, p, off, len, nc);
			}
			break;
		}
		}
		if (ok) {
			m->matched = true;
			return true;
		}
	}
	return false;
}

/* m_finish - the test result (for :count, compare the count now) */
static bool
m_finish(struct mstate *m)
{
	size_t i;

	if (m->r->failed)
		return false;
	if (m->nd->mt == SV_MT_COUNT) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%llu",
		    (unsigned long long)m->count);

		for (i = 0; i < m->nkeys; i++)
			if (sv_rel_ok(m->nd->rel, sv_cmp_values(m->nd->cmp, buf,
			    (size_t)n, m->keys[i].p, m->keys[i].n)))
				return true;
		return false;
	}
	return m->matched;
}

/* ------------------------------------------------------------ addresses */

static void
address_part(struct mstate *m, int part, const char *local, size_t llen,
    const char *domain, size_t dlen, bool null)
{
	struct sv_run *r = m->r;
	const char *delim = r->env->delimiters != NULL &&
	    r->env->delimiters[0] != '\0' ? r->env->delimiters : "+";
	size_t ulen, detlen;
	const char *det;

	switch (part) {
	case SV_PART_ALL:
		str_clear(r->tmp);
		if (!null) {
			str_append(r->tmp, local, llen);
			if (dlen > 0) {
				str_append_c(r->tmp, '@');
				str_append(r->tmp, domain, dlen);
			}
		}
		m_value(m, str_c(r->tmp), str_len(r->tmp));
		break;
	case SV_PART_LOCAL:
		m_value(m, local, llen);
		break;
	case SV_PART_DOMAIN:
		m_value(m, domain, dlen);
		break;
	case SV_PART_USER:
		if (null)
			break;
		address_split_detail(local, llen, delim, &ulen, &det, &detlen);
		m_value(m, local, ulen);
		break;
	case SV_PART_DETAIL:
		if (null)
			break;
		if (address_split_detail(local, llen, delim, &ulen, &det,
		    &detlen))
			m_value(m, det, detlen);
		break;
	}
}

/* index_pick - does occurrence k (0-based) of total count pass :index? */
static bool
index_pick(const struct sv_node *nd, size_t k, size_t total)
{
	size_t want;

	if (!(nd->flags & SV_F_HAS_INDEX))
		return true;
	if ((uint64_t)nd->num > total)
		return false;
	want = (nd->flags & SV_F_LAST) ? total - (size_t)nd->num :
	    (size_t)nd->num - 1;
	return k == want;
}

static size_t
hdr_count(struct sv_run *r, const char *name, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < r->nh; i++)
		if (hdr_is(&r->h[i], name, n))
			c++;
	return c;
}

/* ------------------------------------------------------------ mime */

/* mime_root - the message's MIME tree, parsed on first use */
static const struct mime_part *
mime_root(struct sv_run *r)
{
	if (r->mime == NULL)
		r->mime = mime_parse(r->env->msg, r->env->msg_size, NULL);
	return mime_message_root(r->mime);
}

/* part_next - the part after p in a walk of the subtree at root, or NULL */
static const struct mime_part *
part_next(const struct mime_part *p, const struct mime_part *root)
{
	if (p->children != NULL)
		return p->children;
	for (; p != root && p != NULL; p = p->parent)
		if (p->next != NULL)
			return p->next;
	return NULL;
}

/*
 * mime_scope - whether a test with :mime reads MIME part headers (in
 * a loop, or :anychild), and then the first part it reads. More parts
 * follow with part_next(p, first) when :anychild is given.
 */
static const struct mime_part *
mime_scope(struct sv_run *r, const struct sv_node *nd)
{
	if (!(nd->flags & SV_F_MIME))
		return NULL;
	if (r->nloops > 0)
		return r->loop[r->nloops - 1];
	if (nd->flags & SV_F_ANYCHILD)
		return mime_root(r);
	return NULL;
}

/*
 * mime_fields - call fn for each field called name/n in the headers a
 * :mime test reads, starting at part first, until fn returns true.
 * Each part costs a step; each field's bytes are charged.
 */
static void
mime_fields(struct sv_run *r, const struct sv_node *nd,
    const struct mime_part *first, const char *name, size_t n,
    bool (*fn)(struct sv_run *, void *, const char *, size_t), void *ctx)
{
	const struct mime_part *p;

	for (p = first; p != NULL && !r->failed; p = (nd->flags &
	    SV_F_ANYCHILD) ? part_next(p, first) : NULL) {
		struct header_iter it;
		struct header_field f;

		if (!charge(r, nd->line, 1))
			return;
		header_iter_init(&it, r->env->msg + p->hdr_offset, p->hdr_size);
		while (header_iter_next(&it, &f)) {
			if (f.no_colon || f.name_len != n ||
			    strncasecmp(f.name, name, n) != 0)
				continue;
			if (!charge(r, nd->line, f.value_len) ||
			    fn(r, ctx, f.value, f.value_len))
				return;
		}
	}
}

/*
 * mime_option_value - offer the header value v/n to m, or with :type,
 * :subtype, :contenttype or :param (RFC 5703 4.2) the piece of it the
 * option names. Those read Content-Type and Content-Disposition only;
 * any other field gives the empty string, as does a value that does not
 * parse, or :param when no parameter of those names is present.
 */
static void
mime_option_value(struct mstate *m, const char *hname, const char *v,
    size_t n)
{
	const struct sv_node *nd = m->nd;
	struct sv_run *r = m->r;
	struct mime_message *fm;
	const struct mime_part *p;
	bool ctype;
	uint32_t i, k;
	bool offered = false;

	if (nd->mimeopt == SV_MIMEOPT_NONE) {
		m_value(m, v, n);
		return;
	}
	ctype = strcasecmp(hname, "content-type") == 0;
	if (!ctype && strcasecmp(hname, "content-disposition") != 0) {
		m_value(m, "", 0);
		return;
	}
	fm = mime_field_parse(v, n, ctype);
	p = mime_message_root(fm);
	str_clear(r->tmp);
	switch (nd->mimeopt) {
	case SV_MIMEOPT_TYPE:
		if (ctype ? p->type != NULL : p->disposition != NULL)
			str_append_cstr(r->tmp, ctype ? p->type :
			    p->disposition);
		break;
	case SV_MIMEOPT_SUBTYPE:
		if (ctype && p->subtype != NULL)
			str_append_cstr(r->tmp, p->subtype);
		break;
	case SV_MIMEOPT_CONTENTTYPE:
		if (ctype && p->type != NULL)
			str_printf(r->tmp, "%s/%s", p->type, p->subtype);
		else if (!ctype && p->disposition != NULL)
			str_append_cstr(r->tmp, p->disposition);
		break;
	case SV_MIMEOPT_PARAM: {
		const struct mime_param *pp = ctype ? p->params :
		    p->disposition_params;
		unsigned np = ctype ? p->param_count :
		    p->disposition_param_count;
		struct str *want = str_new(32, 0);

		for (k = 0; k < np && !m->matched; k++)
			for (i = 0; i < nd->s[SV_S_C]->n; i++) {
				expand(r, &nd->s[SV_S_C]->v[i], want);
				if (strcasecmp(str_c(want), pp[k].name) != 0)
					continue;
				m_value(m, pp[k].decoded, strlen(pp[k].decoded));
				offered = true;
				break;
			}
		str_free(&want);
		mime_message_free(&fm);
		if (!offered)
			m_value(m, "", 0);
		return;
	}
	}
	mime_message_free(&fm);
	m_value(m, str_c(r->tmp), str_len(r->tmp));
}

struct mime_hdr_ctx {
	struct mstate *m;
	const char *name;
	struct str *dec;
};

/* mime_header_field - header :mime: one field of a MIME part */
static bool
mime_header_field(struct sv_run *r, void *ctx, const char *v, size_t n)
{
	struct mime_hdr_ctx *c = ctx;

	(void)r;
	str_clear(c->dec);
	(void)rfc2047_decode(v, n, c->dec);
	mime_option_value(c->m, c->name, str_c(c->dec), str_len(c->dec));
	return c->m->matched;
}

static void address_part(struct mstate *m, int part, const char *local,
    size_t llen, const char *domain, size_t dlen, bool null);

/* mime_address_field - address :mime: one field of a MIME part */
static bool
mime_address_field(struct sv_run *r, void *ctx, const char *v, size_t n)
{
	struct mime_hdr_ctx *c = ctx;
	struct address_list *al = address_list_new();
	const char *error;
	size_t a;

	(void)r;
	(void)address_list_parse(v, n, ADDRESS_LIST_SKIP_BAD |
	    ADDRESS_LIST_UTF8, 1000, al, &error);
	for (a = 0; a < al->count && !c->m->matched; a++) {
		struct address *ad = al->items[a].addr;

		address_part(c->m, c->m->nd->part, str_c(ad->local),
		    str_len(ad->local), str_c(ad->domain),
		    str_len(ad->domain), false);
	}
	address_list_free(&al);
	return c->m->matched;
}

/* mime_exists_field - exists :mime: any field is enough */
static bool
mime_exists_field(struct sv_run *r, void *ctx, const char *v, size_t n)
{
	(void)r; (void)v; (void)n;
	*(bool *)ctx = true;
	return true;
}

static bool
test_address(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *name = r->name;
	const struct address_list *al;
	uint32_t i;
	size_t j;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	for (i = 0; i < nd->s[SV_S_A]->n && !m.matched && !r->failed; i++) {
		size_t total, k = 0;

		expand(r, &nd->s[SV_S_A]->v[i], name);
		if (mime_scope(r, nd) != NULL) {
			struct mime_hdr_ctx c = { &m, str_c(name), NULL };

			mime_fields(r, nd, mime_scope(r, nd), str_c(name),
			    str_len(name), mime_address_field, &c);
			continue;
		}
		total = hdr_count(r, str_c(name), str_len(name));
		for (j = 0; j < r->nh && !m.matched; j++) {
			struct rhdr *h = &r->h[j];
			const char *error;
			size_t a;

			if (!hdr_is(h, str_c(name), str_len(name)))
				continue;
			if (!index_pick(nd, k++, total))
				continue;
			if (h->addrs == NULL) {
				/* parsed once per run, however many tests look */
				h->addrs = address_list_new();
				(void)address_list_parse(h->raw, h->rlen,
				    ADDRESS_LIST_SKIP_BAD | ADDRESS_LIST_UTF8,
				    1000, h->addrs, &error);
				if (!charge(r, nd->line, h->rlen))
					break;
			}
			al = h->addrs;
			for (a = 0; a < al->count && !m.matched; a++) {
				struct address *ad = al->items[a].addr;

				address_part(&m, nd->part, str_c(ad->local),
				    str_len(ad->local), str_c(ad->domain),
				    str_len(ad->domain), false);
			}
		}
	}
	{
		bool ok = m_finish(&m);

		mstate_free(&m);
		return ok;
	}
}

static bool
test_envelope(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *part = str_new(16, 0);
	struct address *ad = address_new();
	uint32_t i;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	for (i = 0; i < nd->s[SV_S_A]->n && !m.matched && !r->failed; i++) {
		const char *val = NULL;

		expand(r, &nd->s[SV_S_A]->v[i], part);
		if (strcasecmp(str_c(part), "from") == 0)
			val = r->env->env_from;
		else if (strcasecmp(str_c(part), "to") == 0)
			val = r->env->env_orig_to != NULL ?
			    r->env->env_orig_to : r->env->env_to;
		else if (strcasecmp(str_c(part), "auth") == 0)
			val = r->env->env_auth;
		if (val == NULL)
			continue;
		if (val[0] == '\0' || strcmp(val, "<>") == 0) {
			address_part(&m, nd->part, "", 0, "", 0, true);
			continue;
		}
		if (val[0] == '<' ? address_parse_path(val, strlen(val),
		    ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NULL |
		    ADDRESS_ALLOW_POSTMASTER, ad) != ADDRESS_OK :
		    address_parse_mailbox(val, strlen(val), ADDRESS_SMTPUTF8 |
		    ADDRESS_ALLOW_NO_DOMAIN, ad) != ADDRESS_OK) {
			/* not an address: only :all sees it, as given */
			if (nd->part == SV_PART_ALL)
				m_value(&m, val, strlen(val));
			continue;
		}
		address_part(&m, nd->part, str_c(ad->local), str_len(ad->local),
		    str_c(ad->domain), str_len(ad->domain), ad->null);
	}
	address_free(&ad);
	str_free(&part);
	{
		bool ok = m_finish(&m);

		mstate_free(&m);
		return ok;
	}
}

static bool
test_header(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *name = r->name;
	uint32_t i;
	size_t j;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	for (i = 0; i < nd->s[SV_S_A]->n && !m.matched && !r->failed; i++) {
		size_t total, k = 0;

		expand(r, &nd->s[SV_S_A]->v[i], name);
		if (mime_scope(r, nd) != NULL) {
			struct mime_hdr_ctx c = { &m, str_c(name),
			    str_new(128, 0) };

			mime_fields(r, nd, mime_scope(r, nd), str_c(name),
			    str_len(name), mime_header_field, &c);
			str_free(&c.dec);
			continue;
		}
		total = hdr_count(r, str_c(name), str_len(name));
		for (j = 0; j < r->nh && !m.matched; j++) {
			const struct str *v;

			if (!hdr_is(&r->h[j], str_c(name), str_len(name)))
				continue;
			if (!index_pick(nd, k++, total))
				continue;
			v = hdr_value(&r->h[j]);
			mime_option_value(&m, str_c(name), str_c(v), str_len(v));
		}
	}
	{
		bool ok = m_finish(&m);

		mstate_free(&m);
		return ok;
	}
}

static bool
test_exists(struct sv_run *r, const struct sv_node *nd)
{
	struct str *name = str_new(64, 0);
	uint32_t i;
	bool ok = true;

	for (i = 0; i < nd->s[SV_S_A]->n && ok && !r->failed; i++) {
		expand(r, &nd->s[SV_S_A]->v[i], name);
		if (mime_scope(r, nd) != NULL) {
			bool seen = false;

			mime_fields(r, nd, mime_scope(r, nd), str_c(name),
			    str_len(name), mime_exists_field, &seen);
			ok = seen;
		} else if (hdr_count(r, str_c(name), str_len(name)) == 0)
			ok = false;
	}
	str_free(&name);
	return ok;
}

static bool
test_string(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *v = str_new(64, 0);
	uint32_t i;
	bool ok;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	for (i = 0; i < nd->s[SV_S_A]->n && !m.matched; i++) {
		expand(r, &nd->s[SV_S_A]->v[i], v);
		/* RFC 5229 5: for :count, empty strings are not counted */
		if (nd->mt == SV_MT_COUNT && str_len(v) == 0)
			continue;
		m_value(&m, str_c(v), str_len(v));
	}
	str_free(&v);
	ok = m_finish(&m);
	mstate_free(&m);
	return ok;
}

/* ------------------------------------------------------------ enotify */

/* test_valid_notify_method - RFC 5435 section 5: every URI valid */
static bool
test_valid_notify_method(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v = str_new(64, 0);
	const char *why;
	uint32_t i;
	bool ok = true;

	for (i = 0; i < nd->s[SV_S_A]->n && ok; i++) {
		expand(r, &nd->s[SV_S_A]->v[i], v);
		ok = sieve_notify_method_ok(str_c(v), str_len(v), &why);
	}
	str_free(&v);
	return ok;
}

/*
 * test_notify_method_capability - RFC 5435 section 6. mailto (RFC 5436
 * section 2.2) knows one capability, "online", and its answer is
 * "maybe": mail cannot tell whether the recipient is reading it now.
 * An invalid URI or unknown capability makes the test false.
 */
static bool
test_notify_method_capability(struct sv_run *r, const struct sv_node *nd)
{
	struct str *uri = str_new(64, 0), *cap = str_new(16, 0);
	struct mstate m;
	const char *why;
	bool ok = false;

	expand(r, &nd->s[SV_S_A]->v[0], uri);
	expand(r, &nd->s[SV_S_C]->v[0], cap);
	if (sieve_notify_method_ok(str_c(uri), str_len(uri), &why) &&
	    strcasecmp(str_c(cap), "online") == 0) {
		mstate_init(&m, r, nd, nd->s[SV_S_B]);
		m_value(&m, "maybe", 5);
		ok = m_finish(&m);
		mstate_free(&m);
	}
	str_free(&uri);
	str_free(&cap);
	return ok;
}

/* ------------------------------------------------------------ body */

static bool
type_matches(const struct mime_part *p, const char *want, size_t n)
{
	const char *type = p->type != NULL ? p->type : "text";
	const char *sub = p->subtype != NULL ? p->subtype : "plain";
	const char *slash;

	if (n == 0)
		return true;
	slash = memchr(want, '/', n);
	if (slash == NULL)
		return strlen(type) == n && strncasecmp(type, want, n) == 0;
	return strlen(type) == (size_t)(slash - want) &&
	    strncasecmp(type, want, (size_t)(slash - want)) == 0 &&
	    strlen(sub) == n - (size_t)(slash - want) - 1 &&
	    strncasecmp(sub, slash + 1, n - (size_t)(slash - want) - 1) == 0;
}

static void
body_part_text(struct sv_run *r, const struct mime_part *p, struct str *out)
{
	struct str *dec = str_new(p->body_size + 1, r->lim->max_body_size);
	const char *charset;

	str_clear(out);
	(void)mime_decode_part(r->mime, p, dec);
	charset = mime_part_param(p, "charset", false);
	if ((p->flags & MIME_PART_TEXT) && charset != NULL)
		(void)rfc2047_charset_to_utf8(charset, strlen(charset),
		    str_c(dec), str_len(dec), out);
	else
		str_append_str(out, dec);
	str_free(&dec);
}

static bool
test_body(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	bool ok;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	if (nd->body == SV_BODY_RAW) {
		size_t n = MIN(r->body_len, r->lim->max_body_size);

		charge(r, nd->line, n);
		m_value(&m, r->body, n);
	} else {
		const struct mime_part *stack[64];
		const struct mime_part *p;
		struct str *text = str_new(1024, 0);
		struct str *want = str_new(32, 0);
		unsigned sp = 0;

		stack[sp++] = mime_root(r);
		while (sp > 0 && !m.matched && !r->failed) {
			const struct mime_part *c;
			bool take = false;
			uint32_t i;

			p = stack[--sp];
			/* push children in reverse so they come in order */
			{
				const struct mime_part *kids[64];
				unsigned nk = 0;

				for (c = p->children; c != NULL && nk < 64;
				    c = c->next)
					kids[nk++] = c;
				while (nk > 0 && sp < N_ELEMENTS(stack))
					stack[sp++] = kids[--nk];
			}
			if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
				continue;
			if (nd->body == SV_BODY_TEXT)
				take = (p->flags & MIME_PART_TEXT) ||
				    p->type == NULL;
			else
				for (i = 0; i < nd->s[SV_S_SUBJECT]->n && !take;
				    i++) {
					expand(r, &nd->s[SV_S_SUBJECT]->v[i], want);
					take = type_matches(p, str_c(want),
					    str_len(want));
				}
			if (!take)
				continue;
			if (!charge(r, nd->line, p->body_size))
				break;
			body_part_text(r, p, text);
			m_value(&m, str_c(text), str_len(text));
		}
		str_free(&text);
		str_free(&want);
	}
	ok = m_finish(&m);
	mstate_free(&m);
	return ok;
}

/* ------------------------------------------------------------ flags */

/* flags_add - add the space-separated flags in p/n to list (no dups) */
static void
flags_add(struct str *list, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;
		const char *q;
		bool dup = false;

		while (i < n && p[i] == ' ')
			i++;
		s = i;
		while (i < n && p[i] != ' ')
			i++;
		e = i;
		if (e == s)
			continue;
		/* already present? */
		for (q = str_c(list); *q != '\0';) {
			const char *qe = strchr(q, ' ');
			size_t ql = qe != NULL ? (size_t)(qe - q) : strlen(q);

			if (ql == e - s && strncasecmp(q, p + s, ql) == 0) {
				dup = true;
				break;
			}
			q += ql;
			while (*q == ' ')
				q++;
		}
		if (dup)
			continue;
		if (str_len(list) > 0)
			str_append_c(list, ' ');
		str_append(list, p + s, e - s);
	}
}

static void
flags_remove(struct str *list, const char *p, size_t n)
{
	struct str *out = str_new(str_len(list) + 1, 0);
	const char *q = str_c(list);

	while (*q != '\0') {
		const char *qe = strchr(q, ' ');
		size_t ql = qe != NULL ? (size_t)(qe - q) : strlen(q);
		size_t i = 0;
		bool drop = false;

		while (i < n && !drop) {
			size_t s, e;

			while (i < n && p[i] == ' ')
				i++;
			s = i;
			while (i < n && p[i] != ' ')
				i++;
			e = i;
			if (e > s && e - s == ql && strncasecmp(q, p + s, ql) == 0)
				drop = true;
		}
		if (!drop && ql > 0) {
			if (str_len(out) > 0)
				str_append_c(out, ' ');
			str_append(out, q, ql);
		}
		q += ql;
		while (*q == ' ')
			q++;
	}
	str_set(list, str_c(out), str_len(out));
	str_free(&out);
}

static struct str *
flag_var(struct sv_run *r, unsigned line, const struct sv_node *nd,
    uint32_t i)
{
	const char *name = SV_FLAGS_VAR;
	size_t n = strlen(SV_FLAGS_VAR);
	struct str *v;

	if (nd->s[SV_S_FLAGS] != NULL && !(nd->flags & SV_F_HAS_FLAGS)) {
		name = nd->s[SV_S_FLAGS]->v[i].p;
		n = nd->s[SV_S_FLAGS]->v[i].len;
	}
	v = var_get(r, name, n);
	if (v == NULL && var_set(r, line, name, n, "", 0))
		v = var_get(r, name, n);
	return v;
}

static void
cmd_flags(struct sv_run *r, const struct sv_node *nd)
{
	struct str *list = str_new(64, 0), *v = str_new(64, 0);
	struct str *var = flag_var(r, nd->line, nd, 0);
	uint32_t i;

	if (var == NULL) {
		str_free(&list);
		str_free(&v);
		return;
	}
	for (i = 0; i < nd->s[SV_S_B]->n; i++) {
		expand(r, &nd->s[SV_S_B]->v[i], v);
		flags_add(list, str_c(v), str_len(v));
	}
	switch (nd->id) {
	case SV_C_SETFLAG:
		str_clear(var);
		flags_add(var, str_c(list), str_len(list));
		break;
	case SV_C_ADDFLAG:
		flags_add(var, str_c(list), str_len(list));
		break;
	case SV_C_REMOVEFLAG:
		flags_remove(var, str_c(list), str_len(list));
		break;
	}
	if (str_len(var) > r->lim->max_variable_size)
		str_truncate(var, r->lim->max_variable_size);
	str_free(&list);
	str_free(&v);
}

static bool
test_hasflag(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	uint32_t i, nvars = nd->s[SV_S_FLAGS] != NULL ? nd->s[SV_S_FLAGS]->n : 1;
	bool ok;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	for (i = 0; i < nvars && !m.matched; i++) {
		struct str *var;
		const char *q;

		if (nd->s[SV_S_FLAGS] != NULL)
			var = var_get(r, nd->s[SV_S_FLAGS]->v[i].p,
			    nd->s[SV_S_FLAGS]->v[i].len);
		else
			var = var_get(r, SV_FLAGS_VAR, strlen(SV_FLAGS_VAR));
		if (var == NULL)
			continue;
		for (q = str_c(var); *q != '\0' && !m.matched;) {
			const char *qe = strchr(q, ' ');
			size_t ql = qe != NULL ? (size_t)(qe - q) : strlen(q);

			if (ql > 0)
				m_value(&m, q, ql);
			q += ql;
			while (*q == ' ')
				q++;
		}
	}
	ok = m_finish(&m);
	mstate_free(&m);
	return ok;
}

/* action_flags - the flags of keep/fileinto: :flags or the internal var */
static void
action_flags(struct sv_run *r, const struct sv_node *nd, struct str *out)
{
	struct str *v = str_new(64, 0);
	uint32_t i;

	str_clear(out);
	if (nd->flags & SV_F_HAS_FLAGS) {
		for (i = 0; i < nd->s[SV_S_FLAGS]->n; i++) {
			expand(r, &nd->s[SV_S_FLAGS]->v[i], v);
			flags_add(out, str_c(v), str_len(v));
		}
	} else if (unit_has(r, SV_EXT_IMAP4FLAGS) ||
	    var_find(&r->globals, SV_FLAGS_VAR, strlen(SV_FLAGS_VAR)) != NULL) {
		struct str *var = var_get(r, SV_FLAGS_VAR, strlen(SV_FLAGS_VAR));

		if (var != NULL)
			flags_add(out, str_c(var), str_len(var));
	}
	str_free(&v);
}

static char **
flags_split(const struct str *list, size_t *n_r)
{
	char **v = xcalloc(str_len(list) / 2 + 2, sizeof(*v));
	const char *q = str_c(list);
	size_t n = 0;

	while (*q != '\0') {
		const char *qe = strchr(q, ' ');
		size_t ql = qe != NULL ? (size_t)(qe - q) : strlen(q);

		if (ql > 0)
			v[n++] = xstrndup(q, ql);
		q += ql;
		while (*q == ' ')
			q++;
	}
	*n_r = n;
	if (n == 0) {
		free(v);
		return NULL;
	}
	return v;
}

/* ------------------------------------------------------------ date */

static int
month_num(const char *p)
{
	static const char *const m[] = { "jan", "feb", "mar", "apr", "may",
	    "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (strncasecmp(p, m[i], 3) == 0)
			return i;
	return -1;
}

/* days_from_civil - days since 1970-01-01 (proleptic Gregorian) */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * parse_date - RFC 5322 date-time (with the obsolete forms: two-digit
 * years, named zones) into seconds since the epoch and the zone in
 * minutes. false if it is not a date.
 */
static bool
parse_date(const char *p, size_t n, int64_t *t_r, int *zone_r)
{
	char buf[128];
	char *s, *e;
	long day, year, hh, mm, ss = 0;
	int mon, zone = 0;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	s = buf;
	/* strip comments at the end like "(UTC)" */
	if ((e = strchr(s, '(')) != NULL)
		*e = '\0';
	while (isspace((unsigned char)*s))
		s++;
	if (isalpha((unsigned char)*s)) {
		while (isalpha((unsigned char)*s))
			s++;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == ',')
			s++;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	day = strtol(s, &e, 10);
	if (e == s || day < 1 || day > 31)
		return false;
	s = e;
	while (isspace((unsigned char)*s))
		s++;
	if ((mon = month_num(s)) < 0)
		return false;
	while (isalpha((unsigned char)*s))
		s++;
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	year = strtol(s, &e, 10);
	if (e - s == 2)
		year += year < 50 ? 2000 : 1900;
	else if (e - s == 3)
		year += 1900;
	else if (e - s != 4)
		return false;
	s = e;
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	hh = strtol(s, &e, 10);
	if (e == s || *e != ':' || hh > 23)
		return false;
	s = e + 1;
	mm = strtol(s, &e, 10);
	if (e == s || mm > 59)
		return false;
	s = e;
	if (*s == ':') {
		s++;
		ss = strtol(s, &e, 10);
		if (e == s || ss > 60)
			return false;
		s = e;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;
		int k;

		for (k = 1; k <= 4; k++)
			if (!isdigit((unsigned char)s[k]))
				return false;
		zone = sign * (((s[1] - '0') * 10 + (s[2] - '0')) * 60 +
		    (s[3] - '0') * 10 + (s[4] - '0'));
	} else if (*s != '\0') {
		static const struct { const char *n; int z; } zones[] = {
			{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 },
			{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
			{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
			{ "PST", -480 }, { "PDT", -420 },
		};
		size_t k, zl = 0;

		while (isalpha((unsigned char)s[zl]))
			zl++;
		for (k = 0; k < N_ELEMENTS(zones); k++)
			if (strlen(zones[k].n) == zl &&
			    strncasecmp(zones[k].n, s, zl) == 0)
				break;
		zone = k < N_ELEMENTS(zones) ? zones[k].z : 0;
	}
	*t_r = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 +
	    hh * 3600 + mm * 60 + ss - (int64_t)zone * 60;
	*zone_r = zone;
	return true;
}

static int
local_zone(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

/* date_part - append date part `part` of time t shown in zone (minutes) */
static bool
date_part(int64_t t, int zone, const char *part, struct str *out)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const mn[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t lt = (time_t)(t + (int64_t)zone * 60);
	struct tm tm;
	int az = zone < 0 ? -zone : zone;
	char zs[16];

	if (gmtime_r(&lt, &tm) == NULL)
		return false;
	snprintf(zs, sizeof(zs), "%c%02d%02d", zone < 0 ? '-' : '+', az / 60,
	    az % 60);
	str_clear(out);
	if (strcasecmp(part, "year") == 0)
		str_printf(out, "%04d", tm.tm_year + 1900);
	else if (strcasecmp(part, "month") == 0)
		str_printf(out, "%02d", tm.tm_mon + 1);
	else if (strcasecmp(part, "day") == 0)
		str_printf(out, "%02d", tm.tm_mday);
	else if (strcasecmp(part, "date") == 0)
		str_printf(out, "%04d-%02d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
	else if (strcasecmp(part, "julian") == 0) {
		int64_t days = days_from_civil(tm.tm_year + 1900,
		    (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);

		str_printf(out, "%lld", (long long)(days + 40587));
	} else if (strcasecmp(part, "hour") == 0)
		str_printf(out, "%02d", tm.tm_hour);
	else if (strcasecmp(part, "minute") == 0)
		str_printf(out, "%02d", tm.tm_min);
	else if (strcasecmp(part, "second") == 0)
		str_printf(out, "%02d", tm.tm_sec);
	else if (strcasecmp(part, "time") == 0)
		str_printf(out, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
	else if (strcasecmp(part, "iso8601") == 0) {
		str_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		if (zone == 0)
			str_append_c(out, 'Z');
		else
			str_printf(out, "%c%02d:%02d", zone < 0 ? '-' : '+',
			    az / 60, az % 60);
	}
	else if (strcasecmp(part, "std11") == 0)
		str_printf(out, "%s, %d %s %04d %02d:%02d:%02d %s",
		    wd[tm.tm_wday], tm.tm_mday, mn[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zs);
	else if (strcasecmp(part, "zone") == 0)
		str_append_cstr(out, zs);
	else if (strcasecmp(part, "weekday") == 0)
		str_printf(out, "%d", tm.tm_wday);
	else
		return false;
	return true;
}

static bool
parse_zone(const char *p, int *zone_r)
{
	if (strlen(p) != 5 || (p[0] != '+' && p[0] != '-'))
		return false;
	if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
	    !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]))
		return false;
	*zone_r = (p[0] == '-' ? -1 : 1) * (((p[1] - '0') * 10 + (p[2] - '0')) *
	    60 + (p[3] - '0') * 10 + (p[4] - '0'));
	return true;
}

static bool
test_date(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *name = str_new(64, 0), *part = str_new(16, 0);
	struct str *val = str_new(64, 0), *zs = str_new(8, 0);
	int zone = r->env->zone_minutes == INT32_MIN ? local_zone(r->now) :
	    r->env->zone_minutes;
	bool have_zone = false, ok;

	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	expand(r, &nd->s[SV_S_C]->v[0], part);
	if (nd->flags & SV_F_HAS_ZONE) {
		expand(r, &nd->s[SV_S_FROM]->v[0], zs);
		if (parse_zone(str_c(zs), &zone))
			have_zone = true;
		else
			zone = 0;
	}
	(void)have_zone;
	if (nd->id == SV_T_CURRENTDATE) {
		if (date_part(r->now, zone, str_c(part), val))
			m_value(&m, str_c(val), str_len(val));
	} else {
		size_t j, total, k = 0;

		expand(r, &nd->s[SV_S_A]->v[0], name);
		total = hdr_count(r, str_c(name), str_len(name));
		for (j = 0; j < r->nh && !m.matched; j++) {
			int64_t t;
			int hz;
			const struct str *v;

			if (!hdr_is(&r->h[j], str_c(name), str_len(name)))
				continue;
			if (!index_pick(nd, k++, total))
				continue;
			v = hdr_value(&r->h[j]);
			/* Received: the date is after the last ';' */
			{
				const char *dp = str_c(v);
				size_t dn = str_len(v);
				const char *semi = memrchr(dp, ';', dn);

				if (semi != NULL) {
					dn -= (size_t)(semi + 1 - dp);
					dp = semi + 1;
				}
				if (!parse_date(dp, dn, &t, &hz))
					continue;
			}
			if (date_part(t, (nd->flags & SV_F_ORIGZONE) ? hz : zone,
			    str_c(part), val))
				m_value(&m, str_c(val), str_len(val));
		}
	}
	ok = m_finish(&m);
	mstate_free(&m);
	str_free(&name);
	str_free(&part);
	str_free(&val);
	str_free(&zs);
	return ok;
}

/* ------------------------------------------------------------ misc tests */

/* sv_round - round half away from zero (no libm in every program) */
static long
sv_round(double d)
{
	if (d > 1e15 || d < -1e15)
		return d < 0 ? -1000000000000000L : 1000000000000000L;
	return d < 0 ? -(long)(-d + 0.5) : (long)(d + 0.5);
}

static bool
test_spam(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	const char *hname = nd->id == SV_T_SPAMTEST ? r->env->spam_header :
	    r->env->virus_header;
	char buf[32];
	size_t j;
	bool ok;

	snprintf(buf, sizeof(buf), "0");
	if (hname != NULL) {
		for (j = 0; j < r->nh; j++)
			if (hdr_is(&r->h[j], hname, strlen(hname)))
				break;
		if (j < r->nh) {
			const struct str *v = hdr_value(&r->h[j]);
			char *e;
			double d = strtod(str_c(v), &e);

			if (e != str_c(v) && isfinite(d)) {
				if (nd->id == SV_T_VIRUSTEST) {
					long x = sv_round(d);

					snprintf(buf, sizeof(buf), "%ld",
					    x < 1 ? 1 : x > 5 ? 5 : x);
				} else {
					double max = r->env->spam_max > 0 ?
					    r->env->spam_max : 10;
					double f = d / max;

					if (f < 0)
						f = 0;
					if (f > 1)
						f = 1;
					if (nd->flags & SV_F_PERCENT)
						snprintf(buf, sizeof(buf), "%ld",
						    sv_round(f * 100));
					else
						snprintf(buf, sizeof(buf), "%ld",
						    1 + sv_round(f * 9));
				}
			}
		}
	}
	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	m_value(&m, buf, strlen(buf));
	ok = m_finish(&m);
	mstate_free(&m);
	return ok;
}

static const char *
env_item(struct sv_run *r, const char *name)
{
	const struct sieve_env *e = r->env;

	if (strcasecmp(name, "domain") == 0)
		return e->domain;
	if (strcasecmp(name, "host") == 0)
		return e->host;
	if (strcasecmp(name, "location") == 0)
		return e->location != NULL ? e->location : "MDA";
	if (strcasecmp(name, "name") == 0)
		return "Postern";
	if (strcasecmp(name, "phase") == 0)
		return e->phase != NULL ? e->phase : "during";
	if (strcasecmp(name, "version") == 0)
		return "1.0";
	if (strcasecmp(name, "remote-host") == 0)
		return e->remote_host;
	if (strcasecmp(name, "remote-ip") == 0)
		return e->remote_ip;
	return NULL;
}

static bool
test_environment(struct sv_run *r, const struct sv_node *nd)
{
	struct mstate m;
	struct str *name = str_new(32, 0);
	const char *v;
	bool ok;

	expand(r, &nd->s[SV_S_A]->v[0], name);
	v = env_item(r, str_c(name));
	mstate_init(&m, r, nd, nd->s[SV_S_B]);
	if (v != NULL)
		m_value(&m, v, strlen(v));
	ok = m_finish(&m);
	mstate_free(&m);
	str_free(&name);
	return ok;
}

static bool
test_mailboxexists(struct sv_run *r, const struct sv_node *nd)
{
	struct str *name = str_new(64, 0);
	uint32_t i;
	bool ok = true;

	for (i = 0; i < nd->s[SV_S_A]->n && ok; i++) {
		int rc;

		expand(r, &nd->s[SV_S_A]->v[i], name);
		if (r->env->mailbox_exists != NULL)
			rc = r->env->mailbox_exists(r->env->ctx, str_c(name));
		else
			rc = strcasecmp(str_c(name), "INBOX") == 0;
		if (rc < 0) {
			run_fail(r, nd->line, "mailboxexists: cannot check "
			    "the mailbox");
			ok = false;
		} else if (rc == 0)
			ok = false;
	}
	str_free(&name);
	return ok;
}

static void
dup_id(const char *p, size_t n, unsigned char out[32])
{
	unsigned k;

	/*
	 * XXX four FNV-1a hashes with different seeds, not a cryptographic
	 * hash: the key of a per-user tracking record, where a collision
	 * only suppresses one action; keeps the engine free of libcrypto.
	 */
	for (k = 0; k < 4; k++) {
		uint64_t h = UINT64_C(14695981039346656037) ^ (k * UINT64_C(0x9e3779b97f4a7c15));
		size_t i;

		for (i = 0; i < n; i++) {
			h ^= (unsigned char)p[i];
			h *= UINT64_C(1099511628211);
		}
		memcpy(out + k * 8, &h, 8);
	}
}

static bool
test_duplicate(struct sv_run *r, const struct sv_node *nd)
{
	struct str *key = str_new(128, 0), *v = str_new(64, 0);
	unsigned period = r->lim->duplicate_default_period;
	struct sieve_result *res = r->res;
	unsigned char id[32];
	bool found = true, dup = false;
	int rc = 0;

	str_append_cstr(key, "handle:");
	if (nd->s[SV_S_SUBJECT] != NULL) {
		expand(r, &nd->s[SV_S_SUBJECT]->v[0], v);
		str_append_str(key, v);
	}
	str_append_cstr(key, "\nid:");
	if (nd->s[SV_S_FROM] != NULL && !(nd->flags & SV_F_UNIQUE_HDR)) {
		expand(r, &nd->s[SV_S_FROM]->v[0], v);
		str_append_str(key, v);
	} else {
		const char *hn = "message-id";
		size_t j;

		if (nd->s[SV_S_FROM] != NULL) {
			expand(r, &nd->s[SV_S_FROM]->v[0], v);
			hn = str_c(v);
		}
		for (j = 0; j < r->nh; j++)
			if (hdr_is(&r->h[j], hn, strlen(hn)))
				break;
		if (j == r->nh)
			found = false;
		else {
			struct str *u = str_new(64, 0);

			hdr_unfolded(&r->h[j], u);
			str_append_str(key, u);
			str_free(&u);
		}
	}
	if (nd->flags & SV_F_HAS_PERIOD)
		period = (unsigned)MIN((uint64_t)nd->num,
		    (uint64_t)r->lim->duplicate_max_period);
	if (found) {
		dup_id(str_c(key), str_len(key), id);
		if (r->env->duplicate_check != NULL)
			rc = r->env->duplicate_check(r->env->ctx, id,
			    sizeof(id), period);
		if (rc < 0)
			rc = 0;		/* RFC 7352 3: on failure, not a dup */
		dup = rc > 0;
		/* the same id tested twice in one run is not yet a dup */
		if (!dup || (nd->flags & SV_F_LAST)) {
			size_t k;

			for (k = 0; k < res->dup_count; k++)
				if (memcmp(res->dups[k].id, id, 32) == 0)
					break;
			if (k == res->dup_count && res->dup_count < 64) {
				res->dups = xreallocarray(res->dups,
				    res->dup_count + 1, sizeof(*res->dups));
				memcpy(res->dups[k].id, id, 32);
				res->dups[k].idlen = 32;
				res->dups[k].period = period;
				res->dup_count++;
			}
		}
	}
	str_free(&key);
	str_free(&v);
	return dup;
}

/* ------------------------------------------------------------ tests */

static bool
eval_test(struct sv_run *r, const struct sv_node *nd)
{
	uint32_t i;

	if (r->failed)
		return false;
	switch (nd->id) {
	case SV_T_TRUE:
		return true;
	case SV_T_FALSE:
		return false;
	case SV_T_NOT:
		return !eval_test(r, &nd->kids[0]);
	case SV_T_ALLOF:
		for (i = 0; i < nd->nkids; i++)
			if (!eval_test(r, &nd->kids[i]))
				return false;
		return true;
	case SV_T_ANYOF:
		for (i = 0; i < nd->nkids; i++)
			if (eval_test(r, &nd->kids[i]))
				return true;
		return false;
	case SV_T_ADDRESS:
		return test_address(r, nd);
	case SV_T_ENVELOPE:
		return test_envelope(r, nd);
	case SV_T_HEADER:
		return test_header(r, nd);
	case SV_T_EXISTS:
		return test_exists(r, nd);
	case SV_T_SIZE:
		return (nd->flags & SV_F_OVER) ?
		    r->env->msg_size > (uint64_t)nd->num :
		    r->env->msg_size < (uint64_t)nd->num;
	case SV_T_BODY:
		return test_body(r, nd);
	case SV_T_STRING:
		return test_string(r, nd);
	case SV_T_HASFLAG:
		return test_hasflag(r, nd);
	case SV_T_DATE: case SV_T_CURRENTDATE:
		return test_date(r, nd);
	case SV_T_MAILBOXEXISTS:
		return test_mailboxexists(r, nd);
	case SV_T_SPAMTEST: case SV_T_VIRUSTEST:
		return test_spam(r, nd);
	case SV_T_ENVIRONMENT:
		return test_environment(r, nd);
	case SV_T_DUPLICATE:
		return test_duplicate(r, nd);
	case SV_T_VALID_NOTIFY_METHOD:
		return test_valid_notify_method(r, nd);
	case SV_T_NOTIFY_METHOD_CAPABILITY:
		return test_notify_method_capability(r, nd);
	case SV_T_IHAVE: {
		for (i = 0; i < nd->s[SV_S_A]->n; i++)
			if (sv_ext_lookup(nd->s[SV_S_A]->v[i].p,
			    nd->s[SV_S_A]->v[i].len) == -1)
				return false;
		return true;
	}
	}
	return false;
}

/* ------------------------------------------------------------ actions */

static struct sieve_action *
act_new(struct sv_run *r, const struct sv_node *nd, enum sieve_action_type t)
{
	struct sieve_result *res = r->res;
	struct sieve_action *a;

	if (res->count >= r->lim->max_actions) {
		run_fail(r, nd->line, "too many actions (see "
		    "sieve_max_actions)");
		return NULL;
	}
	if (res->count == res->cap) {
		res->cap = res->cap == 0 ? 8 : res->cap * 2;
		res->actions = xreallocarray(res->actions, res->cap,
		    sizeof(*res->actions));
	}
	a = &res->actions[res->count++];
	memset(a, 0, sizeof(*a));
	a->type = t;
	a->line = nd->line;
	return a;
}

static bool
has_action(struct sv_run *r, enum sieve_action_type t)
{
	size_t i;

	for (i = 0; i < r->res->count; i++)
		if (r->res->actions[i].type == t)
			return true;
	return false;
}

static bool
reject_conflict(struct sv_run *r, const struct sv_node *nd, bool is_reject)
{
	size_t i;

	for (i = 0; i < r->res->count; i++) {
		enum sieve_action_type t = r->res->actions[i].type;

		if (is_reject ? (t == SIEVE_ACT_KEEP || t == SIEVE_ACT_FILEINTO ||
		    t == SIEVE_ACT_REDIRECT || t == SIEVE_ACT_VACATION ||
		    t == SIEVE_ACT_REJECT || t == SIEVE_ACT_EREJECT) :
		    (t == SIEVE_ACT_REJECT || t == SIEVE_ACT_EREJECT)) {
			run_fail(r, nd->line, "%s conflicts with an earlier "
			    "%s action", is_reject ? "reject" : "this action",
			    t == SIEVE_ACT_REJECT ? "reject" :
			    t == SIEVE_ACT_EREJECT ? "ereject" :
			    t == SIEVE_ACT_VACATION ? "vacation" :
			    t == SIEVE_ACT_REDIRECT ? "redirect" : "store");
			return true;
		}
	}
	return false;
}

static void
snapshot_header(struct sv_run *r, struct sieve_action *a)
{
	if (!r->edited)
		return;
	a->edited_header = str_new(1024, 0);
	hdr_build(r, a->edited_header);
}

static void
do_store(struct sv_run *r, const struct sv_node *nd, const char *mailbox,
    bool is_keep)
{
	struct str *flags = str_new(64, 0);
	struct sieve_action *a;
	size_t i;

	if (reject_conflict(r, nd, false)) {
		str_free(&flags);
		return;
	}
	action_flags(r, nd, flags);
	if (!(nd->flags & SV_F_COPY))
		r->keep_cancelled = true;
	for (i = 0; i < r->res->count; i++) {
		a = &r->res->actions[i];
		if ((a->type == SIEVE_ACT_KEEP || a->type == SIEVE_ACT_FILEINTO) &&
		    strcmp(a->mailbox, mailbox) == 0) {
			/* merged: flags accumulate; :copy is lost if either lacks it */
			struct str *all = str_new(64, 0);
			size_t k;

			for (k = 0; k < a->flag_count; k++) {
				flags_add(all, a->flags[k], strlen(a->flags[k]));
				free(a->flags[k]);
			}
			free(a->flags);
			flags_add(all, str_c(flags), str_len(flags));
			a->flags = flags_split(all, &a->flag_count);
			a->copy = a->copy && (nd->flags & SV_F_COPY);
			a->create = a->create || (nd->flags & SV_F_CREATE);
			if (is_keep)
				a->type = SIEVE_ACT_KEEP;
			str_free(&all);
			str_free(&flags);
			return;
		}
	}
	a = act_new(r, nd, is_keep ? SIEVE_ACT_KEEP : SIEVE_ACT_FILEINTO);
	if (a == NULL) {
		str_free(&flags);
		return;
	}
	a->mailbox = xstrdup(mailbox);
	a->copy = (nd->flags & SV_F_COPY) != 0;
	a->create = (nd->flags & SV_F_CREATE) != 0;
	a->flags = flags_split(flags, &a->flag_count);
	snapshot_header(r, a);
	str_free(&flags);
}

static void
cmd_redirect(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v = str_new(128, 0);
	struct address *ad = address_new();
	struct str *canon = str_new(128, 0);
	struct sieve_action *a;
	size_t i;

	expand(r, &nd->s[SV_S_A]->v[0], v);
	if (address_parse_mailbox(str_c(v), str_len(v), ADDRESS_SMTPUTF8,
	    ad) != ADDRESS_OK) {
		struct address_list *l = address_list_new();
		const char *error;

		if (address_list_parse(str_c(v), str_len(v), ADDRESS_LIST_UTF8,
		    2, l, &error) == 0 && l->count == 1 &&
		    str_len(l->items[0].addr->domain) > 0)
			address_copy(ad, l->items[0].addr);
		else
			run_fail(r, nd->line, "redirect: invalid address");
		address_list_free(&l);
	}
	if (!r->failed)
		(void)address_canonical(ad, canon);
	address_free(&ad);
	str_free(&v);
	if (r->failed || reject_conflict(r, nd, false)) {
		str_free(&canon);
		return;
	}
	if (!(nd->flags & SV_F_COPY))
		r->keep_cancelled = true;
	for (i = 0; i < r->res->count; i++) {
		a = &r->res->actions[i];
		if (a->type == SIEVE_ACT_REDIRECT &&
		    strcasecmp(a->address, str_c(canon)) == 0) {
			a->copy = a->copy && (nd->flags & SV_F_COPY);
			str_free(&canon);
			return;
		}
	}
	if (r->redirects >= r->lim->max_redirects) {
		run_fail(r, nd->line, "too many redirects (see "
		    "sieve_max_redirects)");
		str_free(&canon);
		return;
	}
	r->redirects++;
	a = act_new(r, nd, SIEVE_ACT_REDIRECT);
	if (a != NULL) {
		a->address = str_steal(&canon);
		a->copy = (nd->flags & SV_F_COPY) != 0;
		snapshot_header(r, a);
	} else
		str_free(&canon);
}

static void
cmd_reject(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v = str_new(128, 0);
	struct sieve_action *a;

	expand(r, &nd->s[SV_S_A]->v[0], v);
	if (reject_conflict(r, nd, true)) {
		str_free(&v);
		return;
	}
	r->keep_cancelled = true;
	a = act_new(r, nd, nd->id == SV_C_REJECT ? SIEVE_ACT_REJECT :
	    SIEVE_ACT_EREJECT);
	if (a != NULL)
		a->text = str_steal(&v);
	else
		str_free(&v);
}

static void
cmd_vacation(struct sv_run *r, const struct sv_node *nd)
{
	const struct sieve_limits *lim = r->lim;
	struct str *v = str_new(128, 0);
	struct str *handle = str_new(128, 0);
	struct sieve_action *a;
	uint64_t period;

	if (has_action(r, SIEVE_ACT_VACATION)) {
		run_fail(r, nd->line, "only one vacation action is allowed");
		str_free(&v);
		str_free(&handle);
		return;
	}
	if (reject_conflict(r, nd, false)) {
		str_free(&v);
		str_free(&handle);
		return;
	}
	a = act_new(r, nd, SIEVE_ACT_VACATION);
	if (a == NULL) {
		str_free(&v);
		str_free(&handle);
		return;
	}
	if (!(nd->flags & SV_F_HAS_PERIOD))
		period = lim->vacation_default_period;
	else if (nd->flags & SV_F_SECONDS)
		period = (uint64_t)nd->num;
	else
		period = (uint64_t)nd->num * 86400;
	if (period < lim->vacation_min_period &&
	    !((nd->flags & SV_F_SECONDS) && period == 0))
		period = lim->vacation_min_period;
	if (lim->vacation_max_period > 0 && period > lim->vacation_max_period)
		period = lim->vacation_max_period;
	if (period > UINT32_MAX)
		period = UINT32_MAX;
	a->period = (unsigned)period;
	/*
	 * The default handle is built from the arguments as written, before
	 * variable expansion, as Pigeonhole does (RFC 5230 4.2 leaves it to
	 * the implementation), so it stays stable while ${...} values vary.
	 */
	expand(r, &nd->s[SV_S_A]->v[0], v);
	a->text = xstrdup(str_c(v));
	str_append(handle, nd->s[SV_S_A]->v[0].p, nd->s[SV_S_A]->v[0].len);
	if (nd->s[SV_S_SUBJECT] != NULL) {
		expand(r, &nd->s[SV_S_SUBJECT]->v[0], v);
		a->subject = xstrdup(str_c(v));
		str_append(handle, nd->s[SV_S_SUBJECT]->v[0].p,
		    nd->s[SV_S_SUBJECT]->v[0].len);
	} else
		str_append_cstr(handle, "<default-subject>");
	if (nd->s[SV_S_FROM] != NULL) {
		expand(r, &nd->s[SV_S_FROM]->v[0], v);
		a->from = xstrdup(str_c(v));
		str_append(handle, nd->s[SV_S_FROM]->v[0].p,
		    nd->s[SV_S_FROM]->v[0].len);
	} else
		str_append_cstr(handle, "<default-from>");
	a->mime = (nd->flags & SV_F_MIME) != 0;
	str_append_cstr(handle, a->mime ? "<MIME>" : "<NO-MIME>");
	if (nd->s[SV_S_HANDLE] != NULL) {
		expand(r, &nd->s[SV_S_HANDLE]->v[0], v);
		a->handle = xstrdup(str_c(v));
	} else
		a->handle = xstrdup(str_c(handle));
	if (nd->s[SV_S_ADDRS] != NULL) {
		uint32_t i;

		a->addresses = xcalloc(nd->s[SV_S_ADDRS]->n + 1,
		    sizeof(*a->addresses));
		for (i = 0; i < nd->s[SV_S_ADDRS]->n; i++) {
			expand(r, &nd->s[SV_S_ADDRS]->v[i], v);
			a->addresses[i] = xstrdup(str_c(v));
		}
	}
	str_free(&v);
	str_free(&handle);
}

/*
 * from_ok - is p/n one address ("a@b" or "Name <a@b>"), as the
 * validator's check for a constant :from? (No line breaks can hide in
 * it: the notification's From: is built from it.)
 */
static bool
from_ok(const char *p, size_t n)
{
	struct address *ad = address_new();
	struct address_list *l;
	const char *error;
	bool ok;

	ok = address_parse_mailbox(p, n, ADDRESS_SMTPUTF8, ad) == ADDRESS_OK &&
	    str_len(ad->domain) > 0;
	address_free(&ad);
	if (ok || memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL)
		return ok;
	l = address_list_new();
	ok = address_list_parse(p, n, ADDRESS_LIST_UTF8, 2, l, &error) == 0 &&
	    l->count == 1 && str_len(l->items[0].addr->domain) > 0;
	address_list_free(&l);
	return ok;
}

/*
 * cmd_notify - RFC 5435 section 3. A notify to a method URI already in
 * the result is the same notification and is dropped (section 3.9:
 * duplicates SHOULD NOT be sent). The count is bounded by
 * max_notifications, like redirects.
 */
static void
cmd_notify(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v = str_new(128, 0);
	struct sieve_action *a;
	const char *why;
	unsigned importance = 2;
	size_t i, n = 0;

	expand(r, &nd->s[SV_S_A]->v[0], v);
	if (!sieve_notify_method_ok(str_c(v), str_len(v), &why)) {
		run_fail(r, nd->line, "notify: invalid method: %s", why);
		goto out;
	}
	for (i = 0; i < r->res->count; i++) {
		a = &r->res->actions[i];
		if (a->type != SIEVE_ACT_NOTIFY)
			continue;
		if (strcmp(a->method, str_c(v)) == 0)
			goto out;
		n++;
	}
	if (n >= r->lim->max_notifications) {
		run_fail(r, nd->line, "too many notifications (see "
		    "sieve_max_notifications)");
		goto out;
	}
	if (nd->s[SV_S_HANDLE] != NULL) {
		struct str *imp = str_new(8, 0);

		expand(r, &nd->s[SV_S_HANDLE]->v[0], imp);
		if (str_len(imp) != 1 || str_c(imp)[0] < '1' ||
		    str_c(imp)[0] > '3')
			run_fail(r, nd->line, "notify: invalid :importance");
		else
			importance = (unsigned)(str_c(imp)[0] - '0');
		str_free(&imp);
		if (r->failed)
			goto out;
	}
	a = act_new(r, nd, SIEVE_ACT_NOTIFY);
	if (a == NULL)
		goto out;
	a->method = xstrdup(str_c(v));
	a->importance = importance;
	if (nd->s[SV_S_FROM] != NULL) {
		expand(r, &nd->s[SV_S_FROM]->v[0], v);
		if (!from_ok(str_c(v), str_len(v))) {
			run_fail(r, nd->line, "notify: invalid :from address");
			goto out;
		}
		a->from = xstrdup(str_c(v));
	}
	if (nd->s[SV_S_SUBJECT] != NULL) {
		expand(r, &nd->s[SV_S_SUBJECT]->v[0], v);
		a->text = xstrdup(str_c(v));
	}
	if (nd->s[SV_S_ADDRS] != NULL) {
		a->options = xcalloc(nd->s[SV_S_ADDRS]->n + 1,
		    sizeof(*a->options));
		for (i = 0, n = 0; i < nd->s[SV_S_ADDRS]->n; i++) {
			expand(r, &nd->s[SV_S_ADDRS]->v[i], v);
			/* a computed option that is not NAME=VALUE: dropped */
			if (sieve_notify_option_ok(str_c(v), str_len(v)))
				a->options[n++] = xstrdup(str_c(v));
		}
	}
out:
	str_free(&v);
}

/* apply_modifiers - the modifiers of set or extracttext, on v in place */
static void
apply_modifiers(const struct sv_node *nd, struct str *v)
{
	size_t i;

	if (nd->mods & (SV_MOD_LOWER | SV_MOD_UPPER)) {
		char *p = str_data(v);

		for (i = 0; i < str_len(v); i++)
			p[i] = (nd->mods & SV_MOD_LOWER) ?
			    (char)tolower((unsigned char)p[i]) :
			    (char)toupper((unsigned char)p[i]);
	}
	if ((nd->mods & (SV_MOD_LOWERFIRST | SV_MOD_UPPERFIRST)) &&
	    str_len(v) > 0) {
		char *p = str_data(v);

		p[0] = (nd->mods & SV_MOD_LOWERFIRST) ?
		    (char)tolower((unsigned char)p[0]) :
		    (char)toupper((unsigned char)p[0]);
	}
	if (nd->mods & (SV_MOD_QUOTEWILDCARD | SV_MOD_QUOTEREGEX)) {
		struct str *q = str_new(str_len(v) * 2 + 1, 0);
		const char *special = (nd->mods & SV_MOD_QUOTEREGEX) ?
		    "\\.+*?()[]{}|^$" : "*?\\";

		for (i = 0; i < str_len(v); i++) {
			if (strchr(special, str_c(v)[i]) != NULL &&
			    str_c(v)[i] != '\0')
				str_append_c(q, '\\');
			str_append_c(q, str_c(v)[i]);
		}
		str_set(v, str_c(q), str_len(q));
		str_free(&q);
	}
	if (nd->mods & SV_MOD_ENCODEURL) {
		/* RFC 5435 7: percent-encode all but RFC 3986 unreserved */
		struct str *q = str_new(str_len(v) * 3 + 1, 0);

		for (i = 0; i < str_len(v); i++) {
			unsigned char c = (unsigned char)str_c(v)[i];

			if (isalnum(c) && c < 0x80)
				str_append_c(q, (char)c);
			else if (c != '\0' && strchr("-._~", c) != NULL)
				str_append_c(q, (char)c);
			else
				str_printf(q, "%%%02X", c);
		}
		str_set(v, str_c(q), str_len(q));
		str_free(&q);
	}
	if (nd->mods & SV_MOD_LENGTH) {
		size_t chars = 0;

		for (i = 0; i < str_len(v); i++)
			if (((unsigned char)str_c(v)[i] & 0xc0) != 0x80)
				chars++;
		str_clear(v);
		str_printf(v, "%zu", chars);
	}
}

static void
cmd_set(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v = str_new(128, 0);
	const struct sv_str *name = &nd->s[SV_S_A]->v[0];

	expand(r, &nd->s[SV_S_B]->v[0], v);
	apply_modifiers(nd, v);
	(void)var_set(r, nd->line, name->p, name->len, str_c(v), str_len(v));
	str_free(&v);
}

/* ------------------------------------------------------------ foreverypart */

static void run_block(struct sv_run *r, const struct sv_node *cmds, uint32_t n);

/*
 * cmd_foreverypart - run the block once for each part: the whole
 * message and every part in it, or in a nested loop every part below
 * the outer loop's current part (RFC 5703 3). The MIME parser's limits
 * bound the parts; each one visited costs a step.
 */
static void
cmd_foreverypart(struct sv_run *r, const struct sv_node *nd)
{
	const struct mime_part *root, *p;

	if (r->nloops >= SV_MAX_LOOP_DEPTH) {
		/* only a damaged binary gets here; the validator stops it */
		run_fail(r, nd->line, "foreverypart: nested too deeply");
		return;
	}
	if (r->nloops == 0)
		root = p = mime_root(r);
	else {
		root = r->loop[r->nloops - 1];
		p = part_next(root, root);
	}
	for (; p != NULL && !r->stop && !r->ret; p = part_next(p, root)) {
		if (!charge(r, nd->line, 1))
			return;
		r->loop[r->nloops++] = p;
		run_block(r, nd->block, nd->nblock);
		r->nloops--;
		if (r->brk > 0) {
			r->brk--;
			break;
		}
	}
}

/*
 * cmd_extracttext - RFC 5703 7: the current part's content, transfer
 * encoding removed and text converted from its charset to UTF-8, into
 * a variable; multipart and message/rfc822 parts give the empty string.
 * text/html becomes its text (html_text.h), as in Pigeonhole. :first
 * keeps that many characters (Pigeonhole counts octets and can cut a
 * character in two: tests/sieve/DIFFERENCES.md). var_set caps the value
 * at max_variable_size.
 */
static void
cmd_extracttext(struct sv_run *r, const struct sv_node *nd)
{
	const struct sv_str *name = &nd->s[SV_S_A]->v[0];
	const struct mime_part *p;
	struct str *v = str_new(256, 0);

	if (r->nloops == 0) {
		/* only a damaged binary gets here; the validator stops it */
		run_fail(r, nd->line, "extracttext outside foreverypart");
		str_free(&v);
		return;
	}
	p = r->loop[r->nloops - 1];
	if (!(p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))) {
		if (!charge(r, nd->line, p->body_size)) {
			str_free(&v);
			return;
		}
		body_part_text(r, p, v);
		if (mime_part_is(p, "text", "html")) {
			/* as Pigeonhole: the text of HTML, not its markup */
			struct str *h = str_new(str_len(v) + 1,
			    r->lim->max_body_size);

			(void)html_text_convert(str_c(v), str_len(v), h);
			str_set(v, str_c(h), str_len(h));
			str_free(&h);
		}
	}
	if (nd->flags & SV_F_HAS_FIRST) {
		/* :first counts characters; a UTF-8 sequence stays whole */
		size_t len = 0, chars = 0;

		while (len < str_len(v) && chars < (uint64_t)nd->num) {
			len++;
			while (len < str_len(v) &&
			    ((unsigned char)str_c(v)[len] & 0xc0) == 0x80)
				len++;
			chars++;
		}
		str_truncate(v, len);
	}
	apply_modifiers(nd, v);
	(void)var_set(r, nd->line, name->p, name->len, str_c(v), str_len(v));
	str_free(&v);
}

/*
 * protected_header - fields no script may delete (RFC 5293 section 9;
 * Pigeonhole's fixed list): the trace (Received) and the loop guard of
 * automatic replies (Auto-Submitted). Adding them is allowed, as in
 * Pigeonhole: a script can only make its own message look more
 * travelled or more automatic, which stops no loop detection.
 */
static bool
protected_header(const char *name)
{
	return strcasecmp(name, "received") == 0 ||
	    strcasecmp(name, "auto-submitted") == 0;
}

/* protected_warn - say that an edit of a protected field was ignored */
static void
protected_warn(struct sv_run *r, const struct sv_node *nd, const char *cmd,
    const struct str *name)
{
	struct sv_diag d;

	d.errs = &r->res->warnings;
	d.script = r->frame->u->name;
	d.nerrors = 0;
	sv_diag(&d, true, nd->line, nd->col, "%s: the %.*s header field is "
	    "protected: not changed", cmd, (int)MIN(str_len(name), 64),
	    str_c(name));
}

/*
 * fold_value - the raw value (what follows the colon) of a new field
 * called NAME (nlen octets) with the text v/n: " " + the text, folded
 * with CRLF before white space so that lines stay within 78 characters
 * where the words allow it (RFC 5322 2.1.1), and a line break in the
 * text kept as a fold (RFC 5293 section 4 lets the value span lines).
 */
static void
fold_value(size_t nlen, const char *v, size_t n, struct str *out)
{
	size_t i = 0, s, line = nlen + 2;
	bool content = false;

	str_append_c(out, ' ');
	while (i < n) {
		if (v[i] == '\r' || v[i] == '\n') {
			while (i < n && (v[i] == '\r' || v[i] == '\n'))
				i++;
			if (i == n || !content)
				continue;
			str_append(out, "\r\n", 2);
			line = 0;
			if (v[i] != ' ' && v[i] != '\t') {
				str_append_c(out, '\t');
				line = 1;
			}
			continue;
		}
		s = i;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		while (i < n && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' &&
		    v[i] != '\n')
			i++;
		if (content && line + (i - s) > 78 && (v[s] == ' ' ||
		    v[s] == '\t')) {
			str_append(out, "\r\n", 2);
			line = 0;
		}
		str_append(out, v + s, i - s);
		line += i - s;
		content = true;
	}
}

static void
cmd_addheader(struct sv_run *r, const struct sv_node *nd)
{
	struct str *name = str_new(64, 0), *val = str_new(128, 0);
	struct str *enc = NULL, *st;
	struct rhdr *h;
	size_t i;

	expand(r, &nd->s[SV_S_A]->v[0], name);
	expand(r, &nd->s[SV_S_B]->v[0], val);
	for (i = 0; i < str_len(name); i++)
		if ((unsigned char)str_c(name)[i] <= 32 ||
		    (unsigned char)str_c(name)[i] >= 127 || str_c(name)[i] == ':')
			break;
	if (i < str_len(name) || str_len(name) == 0) {
		run_fail(r, nd->line, "addheader: invalid field name");
		goto out;
	}
	/* RFC 5293 4: UTF-8 text; no controls but HTAB and line breaks */
	for (i = 0; i < str_len(val); i++) {
		unsigned char c = (unsigned char)str_c(val)[i];

		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			break;
	}
	if (i < str_len(val) ||
	    !rfc2047_utf8_valid(str_c(val), str_len(val))) {
		run_fail(r, nd->line, "addheader: invalid field value");
		goto out;
	}
	if (str_len(val) > SV_MAX_ADDED_VALUE) {
		run_fail(r, nd->line, "addheader: the value is longer than "
		    "%u octets", SV_MAX_ADDED_VALUE);
		goto out;
	}
	if (r->nh >= SV_MAX_HEADERS || r->hdr_truncated) {
		run_fail(r, nd->line, "addheader: too many header fields");
		goto out;
	}
	if (r->nh == r->hcap) {
		r->hcap = r->hcap == 0 ? 32 : r->hcap * 2;
		r->h = xreallocarray(r->h, r->hcap, sizeof(*r->h));
	}
	if (nd->flags & SV_F_LAST)
		i = r->nh;
	else {
		memmove(&r->h[1], &r->h[0], r->nh * sizeof(r->h[0]));
		i = 0;
	}
	r->nh++;
	h = &r->h[i];
	memset(h, 0, sizeof(*h));
	/* 8-bit text goes out as encoded-words (RFC 5293 section 4) */
	for (i = 0; i < str_len(val); i++)
		if ((unsigned char)str_c(val)[i] >= 0x80)
			break;
	if (i < str_len(val)) {
		enc = str_new(str_len(val) * 2 + 16, 0);
		for (i = 0; i < str_len(val); i++)
			if (str_c(val)[i] == '\r' || str_c(val)[i] == '\n')
				str_data(val)[i] = ' ';
		rfc2047_encode(str_c(val), str_len(val), enc);
	}
	/* storage: "name\0 value" (raw values start after the colon) */
	st = str_new(str_len(name) + str_len(val) + 16, 0);
	str_append_str(st, name);
	str_append_c(st, '\0');
	fold_value(str_len(name), str_c(enc != NULL ? enc : val),
	    str_len(enc != NULL ? enc : val), st);
	h->nlen = str_len(name);
	h->rlen = str_len(st) - h->nlen - 1;
	h->owned = str_steal(&st);
	h->name = h->owned;
	h->raw = h->owned + h->nlen + 1;
	r->edited = true;
out:
	str_free(&enc);
	str_free(&name);
	str_free(&val);
}

static void
cmd_deleteheader(struct sv_run *r, const struct sv_node *nd)
{
	struct str *name = str_new(64, 0);
	size_t j, total, k = 0;

	expand(r, &nd->s[SV_S_A]->v[0], name);
	if (protected_header(str_c(name))) {
		protected_warn(r, nd, "deleteheader", name);
		str_free(&name);
		return;
	}
	if (r->hdr_truncated) {
		run_fail(r, nd->line, "deleteheader: the message has too many "
		    "header fields to edit");
		str_free(&name);
		return;
	}
	total = hdr_count(r, str_c(name), str_len(name));
	for (j = 0; j < r->nh && !r->failed; j++) {
		struct rhdr *h = &r->h[j];

		if (!hdr_is(h, str_c(name), str_len(name)))
			continue;
		if (!index_pick(nd, k++, total))
			continue;
		if (nd->s[SV_S_B] != NULL) {
			struct mstate m;
			const struct str *v = hdr_value(h);
			bool ok;

			mstate_init(&m, r, nd, nd->s[SV_S_B]);
			m_value(&m, str_c(v), str_len(v));
			ok = m_finish(&m);
			mstate_free(&m);
			if (!ok)
				continue;
		}
		h->deleted = true;
		r->edited = true;
	}
	str_free(&name);
}

static void
run_unit(struct sv_run *r, uint32_t unit)
{
	struct rframe f, *saved = r->frame;
	const struct sv_unit *u = &r->s->units[unit];

	memset(&f, 0, sizeof(f));
	f.u = u;
	r->frame = &f;
	run_block(r, u->cmds, u->ncmds);
	r->ret = false;
	if (saved == NULL) {
		struct str *fl = var_find(&f.locals, SV_FLAGS_VAR,
		    strlen(SV_FLAGS_VAR));

		if (fl != NULL) {
			r->keep_flags_var = str_new(str_len(fl) + 1, 0);
			str_append_str(r->keep_flags_var, fl);
		}
	}
	r->frame = saved;
	vars_free(&f.locals);
	free(f.globals);
}

static void
cmd_include(struct sv_run *r, const struct sv_node *nd)
{
	if (nd->include < 0)
		return;		/* :optional and missing */
	if ((nd->flags & SV_F_ONCE) && r->included_once[nd->include])
		return;
	r->included_once[nd->include] = true;
	if (r->include_depth >= r->lim->max_include_depth) {
		run_fail(r, nd->line, "include: nested too deeply "
		    "(a loop?)");
		return;
	}
	r->include_depth++;
	run_unit(r, (uint32_t)nd->include);
	r->include_depth--;
}

static void
exec_cmd(struct sv_run *r, const struct sv_node *nd)
{
	struct str *v;

	switch (nd->id) {
	case SV_C_STOP:
		r->stop = true;
		return;
	case SV_C_RETURN:
		r->ret = true;
		return;
	case SV_C_KEEP:
		do_store(r, nd, "INBOX", true);
		return;
	case SV_C_DISCARD:
		r->keep_cancelled = true;
		if (!has_action(r, SIEVE_ACT_DISCARD))
			(void)act_new(r, nd, SIEVE_ACT_DISCARD);
		return;
	case SV_C_FILEINTO:
		v = str_new(64, 0);
		expand(r, &nd->s[SV_S_A]->v[0], v);
		if (!rfc2047_utf8_valid(str_c(v), str_len(v)) || str_len(v) == 0)
			run_fail(r, nd->line, "fileinto: invalid mailbox name");
		else
			do_store(r, nd, str_c(v), false);
		str_free(&v);
		return;
	case SV_C_REDIRECT:
		cmd_redirect(r, nd);
		return;
	case SV_C_REJECT: case SV_C_EREJECT:
		cmd_reject(r, nd);
		return;
	case SV_C_VACATION:
		cmd_vacation(r, nd);
		return;
	case SV_C_SET:
		cmd_set(r, nd);
		return;
	case SV_C_SETFLAG: case SV_C_ADDFLAG: case SV_C_REMOVEFLAG:
		cmd_flags(r, nd);
		return;
	case SV_C_ADDHEADER:
		cmd_addheader(r, nd);
		return;
	case SV_C_DELETEHEADER:
		cmd_deleteheader(r, nd);
		return;
	case SV_C_INCLUDE:
		cmd_include(r, nd);
		return;
	case SV_C_NOTIFY:
		cmd_notify(r, nd);
		return;
	case SV_C_FOREVERYPART:
		cmd_foreverypart(r, nd);
		return;
	case SV_C_BREAK:
		/* leave nd->num loops; a damaged binary may break outside */
		r->brk = (unsigned)MIN((uint64_t)nd->num, r->nloops);
		return;
	case SV_C_EXTRACTTEXT:
		cmd_extracttext(r, nd);
		return;
	case SV_C_GLOBAL: {
		uint32_t i;
		struct rframe *f = r->frame;

		for (i = 0; i < nd->s[SV_S_A]->n; i++) {
			f->globals = xreallocarray(f->globals, f->nglobals + 1,
			    sizeof(*f->globals));
			f->globals[f->nglobals++] = nd->s[SV_S_A]->v[i].p;
		}
		return;
	}
	}
}

static void
run_block(struct sv_run *r, const struct sv_node *cmds, uint32_t n)
{
	uint32_t i;
	bool taken = false;

	for (i = 0; i < n && !r->stop && !r->ret && r->brk == 0; i++) {
		const struct sv_node *nd = &cmds[i];

		if (!charge(r, nd->line, 1))
			return;
		switch (nd->id) {
		case SV_C_IF:
			taken = eval_test(r, &nd->kids[0]);
			if (taken && !r->failed)
				run_block(r, nd->block, nd->nblock);
			break;
		case SV_C_ELSIF:
			if (taken)
				break;
			taken = eval_test(r, &nd->kids[0]);
			if (taken && !r->failed)
				run_block(r, nd->block, nd->nblock);
			break;
		case SV_C_ELSE:
			if (!taken)
				run_block(r, nd->block, nd->nblock);
			taken = true;
			break;
		default:
			exec_cmd(r, nd);
			break;
		}
	}
}

/* sieve_result_clear - see sieve.h */
void
sieve_result_clear(struct sieve_result *res)
{
	size_t i, k;

	for (i = 0; i < res->count; i++) {
		struct sieve_action *a = &res->actions[i];

		free(a->mailbox);
		free(a->address);
		free(a->text);
		free(a->special_use);
		for (k = 0; k < a->flag_count; k++)
			free(a->flags[k]);
		free(a->flags);
		str_free(&a->edited_header);
		free(a->subject);
		free(a->from);
		for (k = 0; a->addresses != NULL && a->addresses[k] != NULL; k++)
			free(a->addresses[k]);
		free(a->addresses);
		free(a->handle);
		free(a->method);
		for (k = 0; a->options != NULL && a->options[k] != NULL; k++)
			free(a->options[k]);
		free(a->options);
	}
	free(res->actions);
	for (k = 0; k < res->keep_flag_count; k++)
		free(res->keep_flags[k]);
	free(res->keep_flags);
	str_free(&res->edited_header);
	free(res->dups);
	free(res->error);
	sieve_errors_clear(&res->warnings);
	memset(res, 0, sizeof(*res));
}

/* sieve_run - see sieve.h */
int
sieve_run(const struct sieve_script *script, const struct sieve_env *env,
    const struct sieve_limits *limits, struct sieve_result *res)
{
	struct sv_run r;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.s = script;
	r.env = env;
	r.lim = limits != NULL ? limits : &script->limits;
	r.res = res;
	r.now = env->now != 0 ? env->now : time(NULL);
	r.tmp = str_new(256, 0);
	r.name = str_new(64, 0);
	r.included_once = xcalloc(script->nunits, sizeof(bool));
	hdr_index(&r);
	run_unit(&r, 0);

	if (r.failed) {
		/* RFC 5228 2.10.6: on error, only the implicit keep */
		char *error = res->error;

		res->error = NULL;
		sieve_result_clear(res);
		res->error = error;
		res->failed = true;
		res->implicit_keep = true;
	} else {
		struct str *flags;

		res->implicit_keep = !r.keep_cancelled;
		/* the implicit keep gets the final internal flags */
		flags = r.keep_flags_var;
		if (res->implicit_keep && flags != NULL)
			res->keep_flags = flags_split(flags,
			    &res->keep_flag_count);
		if (r.edited) {
			res->edited_header = str_new(1024, 0);
			hdr_build(&r, res->edited_header);
		}
	}
	for (i = 0; i < r.nh; i++) {
		free(r.h[i].owned);
		str_free(&r.h[i].dec);
		address_list_free(&r.h[i].addrs);
	}
	str_free(&r.name);
	free(r.h);
	for (i = 0; i < 10; i++)
		str_free(&r.match[i]);
	vars_free(&r.globals);
	str_free(&r.keep_flags_var);
	mime_message_free(&r.mime);
	free(r.included_once);
	str_free(&r.tmp);
	return r.failed ? -1 : 0;
}
