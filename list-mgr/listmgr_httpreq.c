/* SPDX-License-Identifier: MIT */
/*
 * listmgr_httpreq - HTTP/1.1 request head and form parsing (pure)
 *
 * DESCRIPTION
 *	The one-click unsubscribe endpoint (listmgr_http.c) reads a request
 *	head with a bounded stream and hands it here whole: no I/O, no
 *	settings, so the fuzz target (listmgr_http_fuzz.c) runs it as it is.
 *
 *	RFC 9112, strictly: the request line is METHOD SP origin-form SP
 *	HTTP/1.x CRLF (one space each, a token method, a target of visible
 *	ASCII starting with '/'); every line ends in CRLF and a bare CR or
 *	LF, a NUL or another control character is a 400; field names are
 *	tokens with the colon right after them (no white space before it,
 *	no obsolete line folding); HTTP/1.1 needs exactly one Host field;
 *	Content-Length is digits only and several must agree; any
 *	Transfer-Encoding is 501 (we take no chunked bodies); a declared
 *	body over LISTMGR_HTTP_BODY_MAX is 413. Another major version is 505.
 *
 *	Query strings and form bodies (application/x-www-form-urlencoded)
 *	are "name=value" pairs split at '&', '+' is a space and %XX an
 *	octet; a bad escape, a decoded NUL or control octet makes the whole
 *	string malformed.
 */
#include <string.h>
#include <strings.h>

#include "str.h"

#include "listmgr.h"

/* listmgr_http_tchar - RFC 9110 5.6.2 token character */
static bool
listmgr_http_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* listmgr_http_req_init - empty request; listmgr_http_req_free - free it */
void
listmgr_http_req_init(struct listmgr_http_req *req)
{
	memset(req, 0, sizeof(*req));
	req->method = str_new(0, 0);
	req->path = str_new(0, 0);
	req->query = str_new(0, 0);
	req->content_type = str_new(0, 0);
}

void
listmgr_http_req_free(struct listmgr_http_req *req)
{
	str_free(&req->method);
	str_free(&req->path);
	str_free(&req->query);
	str_free(&req->content_type);
}

/* listmgr_http_request_line - method, path and query of one line (no CRLF) */
static int
listmgr_http_request_line(const char *p, size_t n, struct listmgr_http_req *req)
{
	const char *sp1, *sp2, *q, *v;
	size_t i, vlen;

	sp1 = memchr(p, ' ', n);
	if (sp1 == NULL || sp1 == p)
		return 400;
	for (i = 0; p + i < sp1; i++)
		if (!listmgr_http_tchar((unsigned char)p[i]))
			return 400;
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p));
	if (sp2 == NULL || sp2 == sp1 + 1 || sp1[1] != '/')
		return 400;
	for (q = sp1 + 1; q < sp2; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return 400;
	v = sp2 + 1;
	vlen = n - (size_t)(v - p);
	if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	req->http11 = v[7] != '0';
	str_set(req->method, p, (size_t)(sp1 - p));
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	str_set(req->path, sp1 + 1, (size_t)((q != NULL ? q : sp2) - sp1 - 1));
	if (q != NULL)
		str_set(req->query, q + 1, (size_t)(sp2 - q - 1));
	return 0;
}

/* listmgr_http_field - one header field line (no CRLF) into req */
static int
listmgr_http_field(const char *p, size_t n, struct listmgr_http_req *req)
{
	const char *colon = memchr(p, ':', n), *v, *ve;
	size_t nlen, i;
	unsigned long cl;

	if (colon == NULL || colon == p)
		return 400;
	nlen = (size_t)(colon - p);
	for (i = 0; i < nlen; i++)
		if (!listmgr_http_tchar((unsigned char)p[i]))
			return 400;
	v = colon + 1;
	ve = p + n;
	for (i = 0; v + i < ve; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 400;
	}
	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	if (nlen == 4 && strncasecmp(p, "Host", 4) == 0) {
		if (req->have_host)
			return 400;
		req->have_host = true;
	} else if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
		if (!str_to_ulong(v, (size_t)(ve - v), 1UL << 40, &cl))
			return 400;
		if (req->have_length && cl != req->content_length)
			return 400;
		req->have_length = true;
		req->content_length = cl;
	} else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0)
		req->have_te = true;
	else if (nlen == 12 && strncasecmp(p, "Content-Type", 12) == 0)
		str_set(req->content_type, v, (size_t)(ve - v));
	return 0;
}

/* listmgr_http_parse_head - see listmgr.h */
int
listmgr_http_parse_head(const char *head, size_t len,
    struct listmgr_http_req *req)
{
	const char *p = head, *end = head + len, *eol;
	size_t nfields = 0, i;
	int rc;
	bool first = true;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)head[i];

		/* CR only before LF, LF only after CR, no NUL */
		if (c == '\0' || (c == '\r' && (i + 1 == len ||
		    head[i + 1] != '\n')) || (c == '\n' && (i == 0 ||
		    head[i - 1] != '\r')))
			return 400;
	}
	for (;;) {
		eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		if (eol == NULL)
			return 400;	/* no empty line: incomplete head */
		if (eol - 1 == p) {	/* the empty line */
			if (first || eol + 1 != end)
				return 400;
			break;
		}
		if (first) {
			if ((rc = listmgr_http_request_line(p,
			    (size_t)(eol - 1 - p), req)) != 0)
				return rc;
			first = false;
		} else {
			if (*p == ' ' || *p == '\t')
				return 400;	/* obs-fold */
			if (++nfields > LISTMGR_HTTP_FIELDS_MAX)
				return 431;
			if ((rc = listmgr_http_field(p, (size_t)(eol - 1 - p),
			    req)) != 0)
				return rc;
		}
		p = eol + 1;
	}
	if (req->http11 && !req->have_host)
		return 400;
	if (req->have_te)
		return req->have_length ? 400 : 501;
	if (req->have_length && req->content_length > LISTMGR_HTTP_BODY_MAX)
		return 413;
	return 0;
}

/* listmgr_http_hex - value of a hex digit, -1 if none */
static int
listmgr_http_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* listmgr_http_decode - form-decode p[0..n) into out; false if malformed */
static bool
listmgr_http_decode(const char *p, size_t n, struct str *out)
{
	size_t i;
	int hi, lo;
	unsigned char c;

	str_clear(out);
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= n)
				return false;
			hi = listmgr_http_hex(p[i + 1]);
			lo = listmgr_http_hex(p[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return false;
		if (str_append_c(out, (char)c) < 0)
			return false;
	}
	return true;
}

/* listmgr_http_param - see listmgr.h */
int
listmgr_http_param(const char *s, size_t len, const char *name,
    struct str *out)
{
	struct str *key = str_new(0, 256), *val = str_new(0, 0);
	const char *p = s, *end = s + len, *amp, *eq, *v;
	int r = 0;

	str_clear(out);
	while (p < end && r >= 0) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		v = eq == NULL ? amp : eq + 1;
		if (eq == NULL)
			eq = amp;
		if (amp == p)
			;	/* an empty pair ("a=1&&b=2") */
		else if (!listmgr_http_decode(p, (size_t)(eq - p), key) ||
		    !listmgr_http_decode(v, (size_t)(amp - v), val))
			r = -1;
		else if (str_len(key) == strlen(name) &&
		    strcmp(str_c(key), name) == 0) {
			/* twice is ambiguous: which one did the sender mean? */
			r = r == 1 ? -1 : 1;
			str_set(out, str_c(val), str_len(val));
		}
		if (amp == end)
			break;
		p = amp + 1;
	}
	if (r < 0)
		str_clear(out);
	str_free(&key);
	str_free(&val);
	return r;
}
