/* SPDX-License-Identifier: MIT */
/*
 * sieve_notify - notification methods of enotify (RFC 5435): mailto
 *
 * DESCRIPTION
 *	The one method Postern supports is mailto (RFC 5436), whose URI
 *	(RFC 6068) is parsed here for the validator (constant methods are
 *	checked at compile time), the interpreter (valid_notify_method,
 *	notify_method_capability, notify with a computed method) and the
 *	deliverer (lmtpd builds the notification from the parsed form).
 *
 *	A mailto URI is "mailto:" [to] ["?" hfield *("&" hfield)], every
 *	part percent-encoded. The recipients are the comma-separated
 *	addresses of the to part and of the "to" and "cc" fields; each
 *	must be an RFC 5321 mailbox with a domain. "subject" and "body" are
 *	kept (valid UTF-8 required); every other field is ignored, as RFC
 *	5436 section 2.7 asks for fields a method does not trust (Received,
 *	Auto-Submitted, From ... must never come from a URI); "bcc" too, as
 *	Pigeonhole does. Recipients are de-duplicated and bounded.
 *
 *	Pure: no I/O; never ends the process on any input.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "macros.h"
#include "rfc2047.h"
#include "str.h"

#include "sieve/sieve.h"

#define MAILTO_MAX_URI		4096

/* hexval - value of a hex digit, or -1 */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * uri_char - may c appear literally in a mailto URI? (RFC 3986
 * unreserved, sub-delims, ":" "@" "/" "?" and "%" for escapes)
 */
static bool
uri_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("-._~!$&'()*+,;=:@/?%", c) != NULL);
}

/* pct_decode - append p/n percent-decoded to out; false on a bad escape */
static bool
pct_decode(const char *p, size_t n, struct str *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (p[i] != '%') {
			str_append_c(out, p[i]);
			continue;
		}
		if (i + 2 >= n || (hi = hexval(p[i + 1])) < 0 ||
		    (lo = hexval(p[i + 2])) < 0)
			return false;
		str_append_c(out, (char)(hi * 16 + lo));
		i += 2;
	}
	return true;
}

/* add_rcpts - the comma-separated addresses in the decoded list l */
static bool
add_rcpts(struct sieve_mailto *m, const struct str *l, bool cc,
    unsigned max, const char **error_r)
{
	const char *p = str_c(l), *end = p + str_len(l), *q;
	struct address *a = address_new();
	struct str *canon = str_new(64, 0);
	size_t i;
	bool ok = true;

	while (p < end && ok) {
		const char *s, *e;

		q = memchr(p, ',', (size_t)(end - p));
		if (q == NULL)
			q = end;
		s = p;
		e = q;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		p = q + 1;
		if (s == e)
			continue;	/* "a@b,,c@d" or a trailing comma */
		if (address_parse_mailbox(s, (size_t)(e - s), ADDRESS_SMTPUTF8,
		    a) != ADDRESS_OK || str_len(a->domain) == 0) {
			*error_r = "invalid recipient address";
			ok = false;
			break;
		}
		str_clear(canon);
		(void)address_canonical(a, canon);
		for (i = 0; i < m->nrcpts; i++)
			if (strcasecmp(m->rcpts[i], str_c(canon)) == 0)
				break;
		if (i < m->nrcpts) {
			m->cc[i] = m->cc[i] && cc;
			continue;
		}
		if (m->nrcpts >= max) {
			*error_r = "too many recipients";
			ok = false;
			break;
		}
		m->rcpts = xreallocarray(m->rcpts, m->nrcpts + 2,
		    sizeof(*m->rcpts));
		m->cc = xreallocarray(m->cc, m->nrcpts + 1, sizeof(*m->cc));
		m->cc[m->nrcpts] = cc;
		m->rcpts[m->nrcpts++] = xstrdup(str_c(canon));
		m->rcpts[m->nrcpts] = NULL;
	}
	address_free(&a);
	str_free(&canon);
	return ok;
}

/* sieve_mailto_parse - see sieve.h */
int
sieve_mailto_parse(const char *uri, size_t n, struct sieve_mailto *m,
    const char **error_r)
{
	struct str *v = str_new(128, 0);
	const char *p, *end, *q, *eq;
	size_t i;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	if (n < 7 || strncasecmp(uri, "mailto:", 7) != 0) {
		*error_r = "not a mailto URI";
		goto out;
	}
	if (n > MAILTO_MAX_URI) {
		*error_r = "the URI is too long";
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!uri_char((unsigned char)uri[i])) {
			*error_r = "invalid character in the URI";
			goto out;
		}
	p = uri + 7;
	end = uri + n;
	q = memchr(p, '?', (size_t)(end - p));
	if (q == NULL)
		q = end;
	if (!pct_decode(p, (size_t)(q - p), v)) {
		*error_r = "invalid %-escape";
		goto out;
	}
	if (!add_rcpts(m, v, false, SIEVE_MAILTO_MAX_RCPTS, error_r))
		goto out;
	p = q < end ? q + 1 : end;
	while (p < end) {
		struct str **slot = NULL;
		bool rcpt, cc;

		q = memchr(p, '&', (size_t)(end - p));
		if (q == NULL)
			q = end;
		eq = memchr(p, '=', (size_t)(q - p));
		if (eq == NULL || eq == p) {
			*error_r = "invalid header field in the URI";
			goto out;
		}
		str_clear(v);
		if (!pct_decode(eq + 1, (size_t)(q - eq - 1), v)) {
			*error_r = "invalid %-escape";
			goto out;
		}
#define HF_IS(s) ((size_t)(eq - p) == sizeof(s) - 1 && \
	    strncasecmp(p, s, sizeof(s) - 1) == 0)
		cc = HF_IS("cc");
		rcpt = HF_IS("to") || cc;
		if (HF_IS("subject"))
			slot = &m->subject;
		else if (HF_IS("body"))
			slot = &m->body;
#undef HF_IS
		if (rcpt && !add_rcpts(m, v, cc, SIEVE_MAILTO_MAX_RCPTS,
		    error_r))
			goto out;
		if (slot != NULL) {
			if (!rfc2047_utf8_valid(str_c(v), str_len(v)) ||
			    memchr(str_c(v), '\0', str_len(v)) != NULL) {
				*error_r = "a header field is not UTF-8 text";
				goto out;
			}
			if (*slot == NULL)
				*slot = str_new(str_len(v) + 1, 0);
			else	/* repeated: joined, as RFC 6068 5 suggests */
				str_append_cstr(*slot, slot == &m->body ?
				    "\r\n" : " ");
			str_append_str(*slot, v);
		}
		p = q < end ? q + 1 : end;
	}
	if (m->nrcpts == 0) {
		*error_r = "no recipient";
		goto out;
	}
	ret = 0;
out:
	str_free(&v);
	if (ret < 0)
		sieve_mailto_clear(m);
	return ret;
}

/* sieve_mailto_clear - see sieve.h */
void
sieve_mailto_clear(struct sieve_mailto *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->cc);
	str_free(&m->subject);
	str_free(&m->body);
	memset(m, 0, sizeof(*m));
}

/* sieve_notify_option_ok - see sieve.h */
bool
sieve_notify_option_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && (isalnum((unsigned char)p[i]) ||
	    p[i] == '-' || p[i] == '.' || p[i] == '_'); i++)
		if ((unsigned char)p[i] >= 0x80)
			return false;
	if (i == 0 || i == n || p[i] != '=')
		return false;
	for (i++; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

/* sieve_notify_method_ok - see sieve.h */
bool
sieve_notify_method_ok(const char *uri, size_t n, const char **error_r)
{
	struct sieve_mailto m;
	const char *colon = memchr(uri, ':', n);

	if (colon == NULL || colon == uri) {
		*error_r = "not a URI";
		return false;
	}
	if ((size_t)(colon - uri) != 6 || strncasecmp(uri, "mailto", 6) != 0) {
		*error_r = "unsupported notification method";
		return false;
	}
	if (sieve_mailto_parse(uri, n, &m, error_r) < 0)
		return false;
	sieve_mailto_clear(&m);
	return true;
}
