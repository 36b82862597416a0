/* SPDX-License-Identifier: MIT */
/*
 * address - RFC 5321 envelope paths and RFC 5322 header address lists
 *
 * DESCRIPTION
 *	See address.h for the contract and the canonical form.
 *
 *	The RFC 5321 parser is a hand-written scanner over (pointer,
 *	length) that follows the RFC 5321 4.1.2 ABNF production by
 *	production; RFC 6531 adds UTF8-non-ascii to atext, qtextSMTP and
 *	sub-domain. Non-ASCII is parsed as if allowed and refused at the
 *	end, so that an otherwise valid UTF-8 address gets the specific
 *	ADDRESS_ERR_NEED_SMTPUTF8 (553 5.6.7) instead of a syntax error.
 *
 *	The RFC 5322 list parser first splits the header body into tokens
 *	(atoms, quoted strings, domain literals, specials), dropping
 *	comments and folding whitespace and remembering where whitespace
 *	was (for display names), then runs a recursive-descent parser over
 *	the tokens, as Postfix tok822 does. Each mailbox it finds is
 *	re-validated with the RFC 5321 domain and length rules, so every
 *	item in a list has a canonical form that address_parse_mailbox()
 *	accepts. Comment nesting is bounded (ADDRESS_COMMENT_DEPTH).
 *
 *	Nothing here logs or exits; errors are return values.
 *
 * SEE ALSO
 *	RFC 5321 4.1.2 and 4.5.3.1, RFC 5322 3.4 and 4.4, RFC 6531 3.3,
 *	RFC 6532 3.2, Postfix src/global/tok822_parse.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"

#define ADDRESS_COMMENT_DEPTH	32

/* address_new - the null path */
struct address *
address_new(void)
{
	struct address *addr = xmalloc(sizeof(*addr));

	addr->local = str_new(32, 0);
	addr->domain = str_new(32, 0);
	addr->null = true;
	return addr;
}

/* address_free - release */
void
address_free(struct address **addrp)
{
	struct address *addr = *addrp;

	if (addr == NULL)
		return;
	str_free(&addr->local);
	str_free(&addr->domain);
	free(addr);
	*addrp = NULL;
}

/* address_clear - back to the null path */
void
address_clear(struct address *addr)
{
	str_clear(addr->local);
	str_clear(addr->domain);
	addr->null = true;
	addr->utf8 = false;
}

/* address_copy - deep copy */
void
address_copy(struct address *dst, const struct address *src)
{
	(void)str_set(dst->local, str_c(src->local), str_len(src->local));
	(void)str_set(dst->domain, str_c(src->domain), str_len(src->domain));
	dst->null = src->null;
	dst->utf8 = src->utf8;
}

/* address_error_str - for logs */
const char *
address_error_str(enum address_error err)
{
	switch (err) {
	case ADDRESS_OK:
		return "ok";
	case ADDRESS_ERR_SYNTAX:
		return "bad address syntax";
	case ADDRESS_ERR_BRACKETS:
		return "path not enclosed in <>";
	case ADDRESS_ERR_ROUTE:
		return "bad source route";
	case ADDRESS_ERR_LOCAL:
		return "bad local part";
	case ADDRESS_ERR_NO_DOMAIN:
		return "domain missing";
	case ADDRESS_ERR_DOMAIN:
		return "bad domain";
	case ADDRESS_ERR_LITERAL:
		return "bad or unsupported address literal";
	case ADDRESS_ERR_NULL:
		return "null address not allowed here";
	case ADDRESS_ERR_LOCAL_TOO_LONG:
		return "local part too long";
	case ADDRESS_ERR_DOMAIN_TOO_LONG:
		return "domain too long";
	case ADDRESS_ERR_PATH_TOO_LONG:
		return "path too long";
	case ADDRESS_ERR_NEED_SMTPUTF8:
		return "non-ASCII address without SMTPUTF8";
	case ADDRESS_ERR_BAD_UTF8:
		return "malformed UTF-8 in address";
	}
	return "unknown address error";
}

/* address_utf8_len - length of one well-formed UTF-8 sequence, or 0 */
size_t
address_utf8_len(const unsigned char *p, size_t len)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned long cp;

	if (c < 0x80)
		return len > 0 ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* is_atext - RFC 5322 atext (ASCII part) */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* is_qtext_smtp - RFC 5321 qtextSMTP (ASCII part) */
static bool
is_qtext_smtp(unsigned char c)
{
	return c == 32 || c == 33 || (c >= 35 && c <= 91) ||
	    (c >= 93 && c <= 126);
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* address_domain_lower - ASCII lower-casing in place */
void
address_domain_lower(char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] - 'A' + 'a');
}

/* parse_ipv4 - Snum 3("." Snum), each 1-3 digits <= 255 */
static bool
parse_ipv4(const char *p, size_t len)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || p[i] != '.')
				return false;
			i++;
		}
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == len;
}

/* parse_literal - "[" IPv4 "]" or "[IPv6:" addr "]" */
static enum address_error
parse_literal(const char *p, size_t len, struct str *out)
{
	char buf[64];
	unsigned char bin[16];
	size_t start;

	if (len < 3 || p[0] != '[' || p[len - 1] != ']')
		return ADDRESS_ERR_LITERAL;
	p++;
	len -= 2;
	if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		if (len - 5 >= sizeof(buf))
			return ADDRESS_ERR_LITERAL;
		memcpy(buf, p + 5, len - 5);
		buf[len - 5] = '\0';
		/* inet_pton stops at NUL: an embedded NUL must not pass */
		if (strlen(buf) != len - 5 ||
		    inet_pton(AF_INET6, buf, bin) != 1)
			return ADDRESS_ERR_LITERAL;
		if (out != NULL) {
			start = str_len(out);
			if (str_append_cstr(out, "[IPv6:") < 0 ||
			    str_append(out, buf, len - 5) < 0 ||
			    str_append_c(out, ']') < 0) {
				str_truncate(out, start);
				return ADDRESS_ERR_DOMAIN_TOO_LONG;
			}
			address_domain_lower(str_data(out) + start + 6, len - 5);
		}
		return ADDRESS_OK;
	}
	if (!parse_ipv4(p, len))
		return ADDRESS_ERR_LITERAL;
	if (out != NULL) {
		start = str_len(out);
		if (str_append_c(out, '[') < 0 || str_append(out, p, len) < 0 ||
		    str_append_c(out, ']') < 0) {
			str_truncate(out, start);
			return ADDRESS_ERR_DOMAIN_TOO_LONG;
		}
	}
	return ADDRESS_OK;
}

/*
 * parse_domain - RFC 5321 Domain / address-literal; *utf8_r set if a
 * U-label was seen (the caller decides whether that is allowed).
 */
static enum address_error
parse_domain(const char *p, size_t len, bool *utf8_r, struct str *out)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, label_start, start;

	if (len == 0)
		return ADDRESS_ERR_DOMAIN;
	if (p[0] == '[')
		return parse_literal(p, len, out);
	while (i < len) {
		bool last_hyphen = false;

		label_start = i;
		while (i < len && p[i] != '.') {
			if (u[i] >= 0x80) {
				size_t n = address_utf8_len(u + i, len - i);

				if (n == 0)
					return ADDRESS_ERR_BAD_UTF8;
				*utf8_r = true;
				i += n;
				last_hyphen = false;
			} else if (is_alnum(u[i])) {
				i++;
				last_hyphen = false;
			} else if (p[i] == '-' && i > label_start) {
				i++;
				last_hyphen = true;
			} else
				return ADDRESS_ERR_DOMAIN;
		}
		if (i == label_start || last_hyphen)
			return ADDRESS_ERR_DOMAIN;
		if (i - label_start > ADDRESS_LABEL_MAX)
			return ADDRESS_ERR_DOMAIN_TOO_LONG;
		if (i < len) {
			i++;			/* the dot */
			if (i == len)		/* trailing dot */
				return ADDRESS_ERR_DOMAIN;
		}
	}
	if (len > ADDRESS_DOMAIN_MAX)
		return ADDRESS_ERR_DOMAIN_TOO_LONG;
	if (out != NULL) {
		start = str_len(out);
		if (str_append(out, p, len) < 0)
			return ADDRESS_ERR_DOMAIN_TOO_LONG;
		address_domain_lower(str_data(out) + start, len);
	}
	return ADDRESS_OK;
}

/* address_parse_domain - public wrapper */
enum address_error
address_parse_domain(const char *p, size_t len, unsigned flags,
    struct str *out)
{
	bool utf8 = false;
	size_t start = out != NULL ? str_len(out) : 0;
	enum address_error err;

	if (len > 0 && p[0] != '[' && len > ADDRESS_DOMAIN_MAX)
		return ADDRESS_ERR_DOMAIN_TOO_LONG;
	err = parse_domain(p, len, &utf8, out);
	if (err == ADDRESS_OK && utf8 && (flags & ADDRESS_SMTPUTF8) == 0)
		err = ADDRESS_ERR_NEED_SMTPUTF8;
	if (err != ADDRESS_OK && out != NULL)
		str_truncate(out, start);
	return err;
}

/*
 * parse_local - RFC 5321 Local-part at p[0..len); stops at the '@' (or
 * the end) and returns the octets consumed in *used_r.
 */
static enum address_error
parse_local(const char *p, size_t len, bool *utf8_r, struct str *out,
    size_t *used_r)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;

	if (len > 0 && p[0] == '"') {
		i = 1;
		for (;;) {
			if (i >= len)
				return ADDRESS_ERR_LOCAL;	/* unterminated */
			if (p[i] == '"')
				break;
			if (p[i] == '\\') {
				if (i + 1 >= len || u[i + 1] < 32 || u[i + 1] > 126)
					return ADDRESS_ERR_LOCAL;
				(void)str_append_c(out, p[i + 1]);
				i += 2;
			} else if (u[i] >= 0x80) {
				size_t n = address_utf8_len(u + i, len - i);

				if (n == 0)
					return ADDRESS_ERR_BAD_UTF8;
				*utf8_r = true;
				(void)str_append(out, p + i, n);
				i += n;
			} else if (is_qtext_smtp(u[i])) {
				(void)str_append_c(out, p[i]);
				i++;
			} else
				return ADDRESS_ERR_LOCAL;
		}
		*used_r = i + 1;
		return ADDRESS_OK;
	}
	/* Dot-string = Atom *("." Atom) */
	for (;;) {
		size_t atom_start = i;

		while (i < len) {
			if (u[i] >= 0x80) {
				size_t n = address_utf8_len(u + i, len - i);

				if (n == 0)
					return ADDRESS_ERR_BAD_UTF8;
				*utf8_r = true;
				i += n;
			} else if (is_atext(u[i]))
				i++;
			else
				break;
		}
		if (i == atom_start)
			return ADDRESS_ERR_LOCAL;
		if (i < len && p[i] == '.') {
			i++;
			continue;
		}
		break;
	}
	(void)str_append(out, p, i);
	*used_r = i;
	return ADDRESS_OK;
}

/* is_postmaster - "postmaster", any case */
static bool
is_postmaster(const char *p, size_t len)
{
	return len == 10 && strncasecmp(p, "postmaster", 10) == 0;
}

/* parse_mailbox - Mailbox at p[0..len); addr already cleared */
static enum address_error
parse_mailbox(const char *p, size_t len, unsigned flags, struct address *addr)
{
	enum address_error err;
	bool utf8 = false;
	size_t used = 0;

	if (len == 0) {
		if ((flags & ADDRESS_ALLOW_NULL) != 0)
			return ADDRESS_OK;
		return ADDRESS_ERR_NULL;
	}
	addr->null = false;
	err = parse_local(p, len, &utf8, addr->local, &used);
	if (err != ADDRESS_OK)
		return err;
	if (used > ADDRESS_LOCAL_MAX)
		return ADDRESS_ERR_LOCAL_TOO_LONG;
	if (used == len) {
		if ((flags & ADDRESS_ALLOW_NO_DOMAIN) == 0 &&
		    !((flags & ADDRESS_ALLOW_POSTMASTER) != 0 &&
		    is_postmaster(p, len)))
			return ADDRESS_ERR_NO_DOMAIN;
	} else {
		if (p[used] != '@')
			return ADDRESS_ERR_LOCAL;
		used++;
		if (used == len)
			return ADDRESS_ERR_NO_DOMAIN;
		if (p[used] != '[' && len - used > ADDRESS_DOMAIN_MAX)
			return ADDRESS_ERR_DOMAIN_TOO_LONG;
		err = parse_domain(p + used, len - used, &utf8, addr->domain);
		if (err != ADDRESS_OK)
			return err;
	}
	addr->utf8 = utf8;
	if (utf8 && (flags & ADDRESS_SMTPUTF8) == 0)
		return ADDRESS_ERR_NEED_SMTPUTF8;
	return ADDRESS_OK;
}

/* address_parse_mailbox - bare mailbox or canonical form */
enum address_error
address_parse_mailbox(const char *p, size_t len, unsigned flags,
    struct address *addr)
{
	enum address_error err;

	address_clear(addr);
	if (len > ADDRESS_PATH_MAX - 2)
		return ADDRESS_ERR_PATH_TOO_LONG;
	err = parse_mailbox(p, len, flags, addr);
	if (err != ADDRESS_OK)
		address_clear(addr);
	return err;
}

/* skip_route - A-d-l ":" at the start of p; returns octets used or 0 */
static size_t
skip_route(const char *p, size_t len, enum address_error *err_r)
{
	size_t i = 0, start;
	bool utf8 = false;

	for (;;) {
		if (i >= len || p[i] != '@')
			goto bad;
		start = ++i;
		while (i < len && p[i] != ',' && p[i] != ':')
			i++;
		if (i >= len || parse_domain(p + start, i - start, &utf8,
		    NULL) != ADDRESS_OK)
			goto bad;
		if (p[i++] == ':')
			return i;
	}
bad:
	*err_r = ADDRESS_ERR_ROUTE;
	return 0;
}

/* address_parse_path - "<" [A-d-l ":"] Mailbox ">" or "<>" */
enum address_error
address_parse_path(const char *p, size_t len, unsigned flags,
    struct address *addr)
{
	enum address_error err = ADDRESS_OK;
	size_t used = 0;

	address_clear(addr);
	if (len > ADDRESS_PATH_MAX)
		return ADDRESS_ERR_PATH_TOO_LONG;
	if (len < 2 || p[0] != '<' || p[len - 1] != '>')
		return ADDRESS_ERR_BRACKETS;
	p++;
	len -= 2;
	if (len == 0)
		return (flags & ADDRESS_ALLOW_NULL) != 0 ?
		    ADDRESS_OK : ADDRESS_ERR_NULL;
	if (p[0] == '@') {
		used = skip_route(p, len, &err);
		if (used == 0)
			return err;
		if (used == len)
			return ADDRESS_ERR_ROUTE;
	}
	/* The null path is only "<>", never "<@route:>". */
	err = parse_mailbox(p + used, len - used,
	    flags & ~(unsigned)ADDRESS_ALLOW_NULL, addr);
	if (err != ADDRESS_OK)
		address_clear(addr);
	return err;
}

/* is_dot_string - p[0..len) is an RFC 5321 Dot-string (UTF-8 allowed) */
static bool
is_dot_string(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i;
	bool atom_empty = true;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] == '.') {
			if (atom_empty)
				return false;
			atom_empty = true;
		} else if (u[i] >= 0x80 || is_atext(u[i]))
			atom_empty = false;
		else
			return false;
	}
	return !atom_empty;
}

/* address_quote_local - Dot-string or Quoted-string */
int
address_quote_local(const char *p, size_t len, struct str *out)
{
	size_t start = str_len(out), i;

	if (is_dot_string(p, len))
		return str_append(out, p, len);
	if (str_append_c(out, '"') < 0)
		return -1;
	for (i = 0; i < len; i++) {
		if ((p[i] == '"' || p[i] == '\\') && str_append_c(out, '\\') < 0)
			goto full;
		if (str_append_c(out, p[i]) < 0)
			goto full;
	}
	if (str_append_c(out, '"') < 0)
		goto full;
	return 0;
full:
	str_truncate(out, start);
	errno = E2BIG;
	return -1;
}

/* address_canonical - local@domain */
int
address_canonical(const struct address *addr, struct str *out)
{
	size_t start = str_len(out);

	if (addr->null)
		return 0;
	if (address_quote_local(str_c(addr->local), str_len(addr->local),
	    out) < 0)
		return -1;
	if (str_len(addr->domain) > 0 &&
	    (str_append_c(out, '@') < 0 ||
	    str_append_str(out, addr->domain) < 0)) {
		str_truncate(out, start);
		errno = E2BIG;
		return -1;
	}
	return 0;
}

/* address_equal - exact local part, case-insensitive domain */
bool
address_equal(const struct address *a, const struct address *b)
{
	if (a->null || b->null)
		return a->null == b->null;
	return str_len(a->local) == str_len(b->local) &&
	    memcmp(str_c(a->local), str_c(b->local), str_len(a->local)) == 0 &&
	    str_len(a->domain) == str_len(b->domain) &&
	    strncasecmp(str_c(a->domain), str_c(b->domain),
	    str_len(a->domain)) == 0;
}

/* address_split_detail - user+detail */
bool
address_split_detail(const char *p, size_t len, const char *delimiters,
    size_t *user_len_r, const char **detail_r, size_t *detail_len_r)
{
	size_t i;

	*user_len_r = len;
	*detail_r = p + len;
	*detail_len_r = 0;
	if (delimiters == NULL || delimiters[0] == '\0')
		return false;
	for (i = 0; i < len; i++) {
		if (p[i] != '\0' && strchr(delimiters, p[i]) != NULL) {
			if (i == 0)
				return false;
			*user_len_r = i;
			*detail_r = p + i + 1;
			*detail_len_r = len - i - 1;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ RFC 5322 */

enum tok_type {
	TOK_ATOM,		/* atext run (8-bit octets included) */
	TOK_QSTRING,		/* quoted string; raw text without the quotes */
	TOK_DLITERAL,		/* domain literal; raw text with brackets */
	TOK_SPECIAL,		/* one of < > @ , : ; . and any other special */
};

struct tok {
	enum tok_type type;
	const char *p;
	size_t len;
	bool space_before;	/* whitespace or a comment came before it */
	const char *cmt;	/* raw text of the first comment after it */
	size_t cmt_len;
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static void
toks_add(struct toks *t, enum tok_type type, const char *p, size_t len,
    bool space)
{
	struct tok *tk;

	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 32 : t->cap * 2;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	tk = &t->v[t->n++];
	tk->type = type;
	tk->p = p;
	tk->len = len;
	tk->space_before = space;
	tk->cmt = NULL;
	tk->cmt_len = 0;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * tokenize - split p[0..len) into tokens; false with *error_r on an
 * unterminated quoted string, comment or literal, a NUL or a control
 * octet, or comments nested too deeply.
 */
static bool
tokenize(const char *p, size_t len, struct toks *t, const char **error_r)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, start;
	bool space = false;

	while (i < len) {
		if (is_wsp(p[i])) {
			space = true;
			i++;
		} else if (p[i] == '(') {
			int depth = 1;

			start = ++i;
			while (i < len && depth > 0) {
				if (p[i] == '\\' && i + 1 < len)
					i++;
				else if (p[i] == '(') {
					if (++depth > ADDRESS_COMMENT_DEPTH) {
						*error_r = "comments nested too deeply";
						return false;
					}
				} else if (p[i] == ')')
					depth--;
				else if (p[i] == '\0') {
					*error_r = "NUL in address header";
					return false;
				}
				i++;
			}
			if (depth > 0) {
				*error_r = "unterminated comment";
				return false;
			}
			/* kept for "user@host (Full Name)" */
			if (t->n > 0 && t->v[t->n - 1].cmt == NULL) {
				t->v[t->n - 1].cmt = p + start;
				t->v[t->n - 1].cmt_len = i - 1 - start;
			}
			space = true;
		} else if (p[i] == '"') {
			start = ++i;
			while (i < len && p[i] != '"') {
				if (p[i] == '\\' && i + 1 < len)
					i++;
				if (p[i] == '\0') {
					*error_r = "NUL in address header";
					return false;
				}
				i++;
			}
			if (i >= len) {
				*error_r = "unterminated quoted string";
				return false;
			}
			toks_add(t, TOK_QSTRING, p + start, i - start, space);
			space = false;
			i++;
		} else if (p[i] == '[') {
			start = i;
			while (i < len && p[i] != ']') {
				if (p[i] == '[' && i > start) {
					*error_r = "bad domain literal";
					return false;
				}
				if (p[i] == '\\' || p[i] == '\0') {
					*error_r = "bad domain literal";
					return false;
				}
				i++;
			}
			if (i >= len) {
				*error_r = "unterminated domain literal";
				return false;
			}
			i++;
			toks_add(t, TOK_DLITERAL, p + start, i - start, space);
			space = false;
		} else if (u[i] >= 0x80 || is_atext(u[i])) {
			start = i;
			while (i < len && (u[i] >= 0x80 || is_atext(u[i])))
				i++;
			toks_add(t, TOK_ATOM, p + start, i - start, space);
			space = false;
		} else if (u[i] < 32 || u[i] == 127) {
			*error_r = "control character in address header";
			return false;
		} else {
			toks_add(t, TOK_SPECIAL, p + i, 1, space);
			space = false;
			i++;
		}
	}
	return true;
}

/* tok_is - token k is the special character c */
static bool
tok_is(const struct toks *t, size_t k, char c)
{
	return k < t->n && t->v[k].type == TOK_SPECIAL && t->v[k].p[0] == c;
}

/* is_word - atom or quoted string */
static bool
is_word(const struct toks *t, size_t k)
{
	return k < t->n &&
	    (t->v[k].type == TOK_ATOM || t->v[k].type == TOK_QSTRING);
}

/* append_qstring - decode the raw quoted-string text (quoted pairs, folding) */
static void
append_qstring(struct str *out, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len) {
			i++;
			(void)str_append_c(out, p[i]);
		} else if (p[i] == '\r' || p[i] == '\n')
			continue;	/* unfold */
		else
			(void)str_append_c(out, p[i]);
	}
}

/* append_word - the decoded text of a word token */
static void
append_word(struct str *out, const struct tok *tk)
{
	if (tk->type == TOK_QSTRING)
		append_qstring(out, tk->p, tk->len);
	else
		(void)str_append(out, tk->p, tk->len);
}

struct list_parser {
	const struct toks *t;
	size_t k;
	unsigned flags;
	size_t max_items;
	struct address_list *list;
	struct str *group;
	struct str *display;
	struct str *scratch;
	const char *error;
	bool full;		/* max_items reached: stop even when skipping */
};

/* list_add - append a mailbox item */
static struct address_list_item *
list_add(struct list_parser *lp)
{
	struct address_list *list = lp->list;
	struct address_list_item *item;

	if (list->count == list->cap) {
		list->cap = list->cap == 0 ? 8 : list->cap * 2;
		list->items = xreallocarray(list->items, list->cap,
		    sizeof(*list->items));
	}
	item = &list->items[list->count];
	item->addr = address_new();
	item->display = str_new(0, 0);
	item->group = str_new(0, 0);
	return item;
}

/*
 * check_local_chars - the decoded local part has only octets a canonical
 * form can carry (32..126 and well-formed UTF-8); returns false with
 * lp->error otherwise; *utf8_r if non-ASCII.
 */
static bool
check_local_chars(struct list_parser *lp, const struct str *local,
    bool *utf8_r)
{
	const unsigned char *u = (const unsigned char *)str_c(local);
	size_t i = 0, len = str_len(local);

	while (i < len) {
		if (u[i] >= 0x80) {
			size_t n = address_utf8_len(u + i, len - i);

			if (n == 0) {
				lp->error = "malformed UTF-8 in address";
				return false;
			}
			*utf8_r = true;
			i += n;
		} else if (u[i] < 32 || u[i] > 126) {
			lp->error = "control character in local part";
			return false;
		} else
			i++;
	}
	return true;
}

/* has_8bit - any octet >= 0x80 */
static bool
has_8bit(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/*
 * parse_addr_spec - local-part ["@" domain] at lp->k into addr; stops
 * before the first token that cannot continue it.
 */
static bool
parse_addr_spec(struct list_parser *lp, struct address *addr)
{
	const struct toks *t = lp->t;
	struct str *domain = lp->scratch;
	bool utf8 = false;
	enum address_error err;
	size_t canon_len;

	address_clear(addr);
	addr->null = false;
	if (!is_word(t, lp->k)) {
		lp->error = "local part expected";
		return false;
	}
	/* obs-local-part: word *("." word), CFWS around the dots */
	append_word(addr->local, &t->v[lp->k++]);
	while (tok_is(t, lp->k, '.')) {
		if (!is_word(t, lp->k + 1)) {
			lp->error = "bad local part";
			return false;
		}
		(void)str_append_c(addr->local, '.');
		append_word(addr->local, &t->v[lp->k + 1]);
		lp->k += 2;
	}
	if (!check_local_chars(lp, addr->local, &utf8))
		return false;
	str_clear(lp->scratch);
	if (address_quote_local(str_c(addr->local), str_len(addr->local),
	    lp->scratch) < 0)
		return false;
	canon_len = str_len(lp->scratch);
	if (canon_len > ADDRESS_LOCAL_MAX) {
		lp->error = "local part too long";
		return false;
	}
	if (tok_is(t, lp->k, '@')) {
		lp->k++;
		str_clear(domain);
		if (lp->k < t->n && t->v[lp->k].type == TOK_DLITERAL) {
			const struct tok *tk = &t->v[lp->k++];
			size_t i;

			/* drop FWS inside the literal */
			for (i = 0; i < tk->len; i++)
				if (!is_wsp(tk->p[i]))
					(void)str_append_c(domain, tk->p[i]);
		} else {
			if (lp->k >= t->n || t->v[lp->k].type != TOK_ATOM) {
				lp->error = "domain expected";
				return false;
			}
			(void)str_append(domain, t->v[lp->k].p, t->v[lp->k].len);
			lp->k++;
			while (tok_is(t, lp->k, '.') && lp->k + 1 < t->n &&
			    t->v[lp->k + 1].type == TOK_ATOM) {
				(void)str_append_c(domain, '.');
				(void)str_append(domain, t->v[lp->k + 1].p,
				    t->v[lp->k + 1].len);
				lp->k += 2;
			}
		}
		err = address_parse_domain(str_c(domain), str_len(domain),
		    ADDRESS_SMTPUTF8, addr->domain);
		if (err != ADDRESS_OK) {
			lp->error = address_error_str(err);
			return false;
		}
		if (has_8bit(str_c(addr->domain), str_len(addr->domain)))
			utf8 = true;
	}
	if (canon_len + 1 + str_len(addr->domain) > ADDRESS_PATH_MAX - 2) {
		lp->error = "address too long";
		return false;
	}
	if (utf8 && (lp->flags & ADDRESS_LIST_UTF8) == 0) {
		lp->error = "non-ASCII address";
		return false;
	}
	addr->utf8 = utf8;
	return true;
}

/* parse_phrase - words and (obs-phrase) dots, into lp->display */
static void
parse_phrase(struct list_parser *lp)
{
	const struct toks *t = lp->t;
	bool first = true;

	str_clear(lp->display);
	while (is_word(t, lp->k) || tok_is(t, lp->k, '.')) {
		const struct tok *tk = &t->v[lp->k++];

		if (!first && tk->space_before)
			(void)str_append_c(lp->display, ' ');
		if (tk->type == TOK_SPECIAL)
			(void)str_append_c(lp->display, '.');
		else
			append_word(lp->display, tk);
		first = false;
	}
}

/* commit_item - add a parsed address with the current display and group */
static bool
commit_item(struct list_parser *lp, struct address *addr,
    const struct str *display)
{
	struct address_list_item *item;

	if (lp->list->count >= lp->max_items) {
		lp->error = "too many addresses";
		lp->full = true;
		return false;
	}
	item = list_add(lp);
	address_copy(item->addr, addr);
	if (display != NULL)
		(void)str_append_str(item->display, display);
	(void)str_append_str(item->group, lp->group);
	lp->list->count++;
	return true;
}

/*
 * parse_mailbox_5322 - name-addr or addr-spec at lp->k. Returns false
 * with lp->error set on a malformed mailbox or a full list.
 */
static bool
parse_mailbox_5322(struct list_parser *lp, struct address *addr)
{
	const struct toks *t = lp->t;
	size_t save = lp->k, end;

	/* Look ahead: a '<' before the next ',' ';' means name-addr. */
	for (end = lp->k; end < t->n; end++)
		if (tok_is(t, end, '<') || tok_is(t, end, ',') ||
		    tok_is(t, end, ';') || tok_is(t, end, '@') ||
		    tok_is(t, end, ':'))
			break;
	if (tok_is(t, end, '<')) {
		parse_phrase(lp);
		if (!tok_is(t, lp->k, '<')) {
			lp->error = "bad display name";
			return false;
		}
		lp->k++;
		if (tok_is(t, lp->k, '@')) {
			/* obs-route: skip "@a,@b:" */
			while (lp->k < t->n && !tok_is(t, lp->k, ':') &&
			    !tok_is(t, lp->k, '>'))
				lp->k++;
			if (!tok_is(t, lp->k, ':')) {
				lp->error = "bad route";
				return false;
			}
			lp->k++;
		}
		if (tok_is(t, lp->k, '>')) {
			lp->error = "empty angle address";
			return false;
		}
		if (!parse_addr_spec(lp, addr))
			return false;
		if (!tok_is(t, lp->k, '>')) {
			lp->error = "'>' expected";
			return false;
		}
		lp->k++;
		return commit_item(lp, addr, lp->display);
	}
	lp->k = save;
	if (!parse_addr_spec(lp, addr))
		return false;
	str_clear(lp->display);
	/* old style "user@host (Full Name)": take the comment */
	if (t->v[lp->k - 1].cmt != NULL) {
		size_t i, clen = t->v[lp->k - 1].cmt_len;
		const char *c = t->v[lp->k - 1].cmt;

		for (i = 0; i < clen; i++) {
			if (c[i] == '\\' && i + 1 < clen)
				i++;
			else if (c[i] == '\r' || c[i] == '\n')
				continue;
			(void)str_append_c(lp->display, c[i]);
		}
	}
	return commit_item(lp, addr, lp->display);
}

/* skip_bad - on error: skip to the next ',' (or the group's ';') */
static void
skip_bad(struct list_parser *lp, bool in_group)
{
	while (lp->k < lp->t->n && !tok_is(lp->t, lp->k, ',') &&
	    !(in_group && tok_is(lp->t, lp->k, ';')))
		lp->k++;
	lp->list->bad++;
}

/* element_has_group_colon - phrase ":" ahead (before '<' '@' ',' ';') */
static bool
element_is_group(const struct list_parser *lp)
{
	size_t k;

	for (k = lp->k; k < lp->t->n; k++) {
		if (tok_is(lp->t, k, ':'))
			return k > lp->k;
		if (!is_word(lp->t, k) && !tok_is(lp->t, k, '.'))
			return false;
	}
	return false;
}

/* address_list_parse - the top level: elements separated by commas */
int
address_list_parse(const char *p, size_t len, unsigned flags,
    size_t max_items, struct address_list *list, const char **error_r)
{
	struct toks t;
	struct list_parser lp;
	struct address *addr = address_new();
	bool in_group = false, skip = (flags & ADDRESS_LIST_SKIP_BAD) != 0;
	int ret = -1;

	memset(&t, 0, sizeof(t));
	memset(&lp, 0, sizeof(lp));
	lp.t = &t;
	lp.flags = flags;
	lp.max_items = max_items != 0 ? max_items : 1000;
	lp.list = list;
	lp.group = str_new(0, 0);
	lp.display = str_new(0, 0);
	lp.scratch = str_new(0, 0);
	*error_r = NULL;

	if (!tokenize(p, len, &t, error_r))
		goto out;
	while (lp.k < t.n) {
		const char *why = NULL;

		if (tok_is(&t, lp.k, ',')) {		/* empty element */
			lp.k++;
			continue;
		}
		if (in_group && tok_is(&t, lp.k, ';')) {
			in_group = false;
			str_clear(lp.group);
			lp.k++;
			continue;
		}
		if (!in_group && element_is_group(&lp)) {
			parse_phrase(&lp);
			(void)str_set(lp.group, str_c(lp.display),
			    str_len(lp.display));
			lp.k++;				/* the ':' */
			in_group = true;
			continue;
		}
		lp.error = NULL;
		if (!parse_mailbox_5322(&lp, addr))
			why = lp.error != NULL ? lp.error : "bad address";
		else if (lp.k < t.n && !tok_is(&t, lp.k, ',') &&
		    !(in_group && tok_is(&t, lp.k, ';'))) {
			/* Something after the mailbox: drop what we added. */
			struct address_list_item *item =
			    &list->items[--list->count];

			address_free(&item->addr);
			str_free(&item->display);
			str_free(&item->group);
			why = "junk after address";
		}
		if (why != NULL) {
			if (!skip || lp.full) {
				*error_r = why;
				goto out;
			}
			skip_bad(&lp, in_group);
		}
	}
	/* A group left open at the end is tolerated (obsolete syntax). */
	ret = 0;
out:
	address_free(&addr);
	str_free(&lp.group);
	str_free(&lp.display);
	str_free(&lp.scratch);
	free(t.v);
	if (ret < 0)
		errno = EINVAL;
	return ret;
}

/* address_list_new - empty list */
struct address_list *
address_list_new(void)
{
	return xmalloc(sizeof(struct address_list));
}

/* address_list_clear - drop all items */
void
address_list_clear(struct address_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++) {
		address_free(&list->items[i].addr);
		str_free(&list->items[i].display);
		str_free(&list->items[i].group);
	}
	list->count = 0;
	list->bad = 0;
}

/* address_list_free - release */
void
address_list_free(struct address_list **listp)
{
	if (*listp == NULL)
		return;
	address_list_clear(*listp);
	free((*listp)->items);
	free(*listp);
	*listp = NULL;
}

/* address_list_item_format - "display" <canonical> */
int
address_list_item_format(const struct address_list_item *item,
    struct str *out)
{
	size_t start = str_len(out), i;
	const char *d = str_c(item->display);

	if (str_len(item->display) == 0)
		return address_canonical(item->addr, out);
	if (str_append_c(out, '"') < 0)
		goto full;
	for (i = 0; i < str_len(item->display); i++) {
		if ((d[i] == '"' || d[i] == '\\') && str_append_c(out, '\\') < 0)
			goto full;
		if (str_append_c(out, d[i]) < 0)
			goto full;
	}
	if (str_append_cstr(out, "\" <") < 0 ||
	    address_canonical(item->addr, out) < 0 ||
	    str_append_c(out, '>') < 0)
		goto full;
	return 0;
full:
	str_truncate(out, start);
	errno = E2BIG;
	return -1;
}
