/* SPDX-License-Identifier: MIT */
/*
 * dsn_parse - read delivery status notifications (see dsn_parse.h)
 *
 * DESCRIPTION
 *	Line-oriented and forgiving: the input is walked once per format
 *	with (pointer, length) lines, CR stripped; nothing is copied but
 *	the capped result fields. The RFC 3464 reader does not need a full
 *	MIME parse: the delivery-status part is found by its Content-Type
 *	line, its own header is skipped, and its field groups (separated by
 *	empty lines) are read until the next boundary line ("--..."). A
 *	folded field continues the previous one.
 *
 * SEE ALSO
 *	RFC 3464, RFC 3463, lib/bounce.c (the writer)
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dsn_parse.h"
#include "str.h"

struct dsn_line {
	const char *p;
	size_t n;
};

/* dsn_next_line - the line at *pos into *l (no CR LF); false at the end */
static bool
dsn_next_line(const char *msg, size_t len, size_t *pos, struct dsn_line *l)
{
	const char *nl;
	size_t start = *pos;

	if (start >= len)
		return false;
	nl = memchr(msg + start, '\n', len - start);
	l->p = msg + start;
	l->n = nl != NULL ? (size_t)(nl - l->p) : len - start;
	*pos = nl != NULL ? (size_t)(nl - msg) + 1 : len;
	if (l->n > 0 && l->p[l->n - 1] == '\r')
		l->n--;
	return true;
}

/* dsn_memcasemem - case-insensitive search of needle in p/n */
static const char *
dsn_memcasemem(const char *p, size_t n, const char *needle)
{
	size_t m = strlen(needle), i;

	if (m == 0 || m > n)
		return NULL;
	for (i = 0; i + m <= n; i++)
		if (strncasecmp(p + i, needle, m) == 0)
			return p + i;
	return NULL;
}

/* dsn_field - if l is "name: value", the trimmed value into *v */
static bool
dsn_field(const struct dsn_line *l, const char *name, struct dsn_line *v)
{
	size_t nl = strlen(name);
	const char *p, *e;

	if (l->n <= nl || strncasecmp(l->p, name, nl) != 0 || l->p[nl] != ':')
		return false;
	p = l->p + nl + 1;
	e = l->p + l->n;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	v->p = p;
	v->n = (size_t)(e - p);
	return true;
}

/* dsn_copy - printable copy of p/n into a fixed field */
static void
dsn_copy(char *dst, size_t size, const char *p, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 1 < size; i++) {
		unsigned char c = (unsigned char)p[i];

		dst[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[j] = '\0';
}

/* dsn_copy_addr - the address of "rfc822; addr" or "<addr>" into dst */
static void
dsn_copy_addr(char *dst, size_t size, const char *p, size_t n)
{
	const char *semi = memchr(p, ';', n), *e;

	if (semi != NULL) {
		n -= (size_t)(semi + 1 - p);
		p = semi + 1;
	}
	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '<')) {
		p++;
		n--;
	}
	e = p;
	while ((size_t)(e - p) < n && *e != '>' && *e != ' ' && *e != '\t')
		e++;
	dsn_copy(dst, size, p, (size_t)(e - p));
}

/* dsn_status_ok - "d.d{1,3}.d{1,3}" at the start of v */
static size_t
dsn_status_len(const char *p, size_t n)
{
	size_t i = 0, parts = 0, digits;

	for (;;) {
		digits = 0;
		while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (++parts == 3)
			return i;
		if (i >= n || p[i] != '.')
			return 0;
		i++;
	}
}

static enum dsn_action
dsn_action_parse(const struct dsn_line *v)
{
	static const struct {
		const char *name;
		enum dsn_action a;
	} map[] = {
		{ "failed", DSN_ACTION_FAILED }, { "delayed", DSN_ACTION_DELAYED },
		{ "delivered", DSN_ACTION_DELIVERED },
		{ "relayed", DSN_ACTION_DELIVERED },
		{ "expanded", DSN_ACTION_DELIVERED },
	};
	size_t i, n = v->n;

	/* "failed (bad address)": compare the first word */
	for (i = 0; i < v->n; i++)
		if (v->p[i] == ' ' || v->p[i] == '(' || v->p[i] == '\t') {
			n = i;
			break;
		}
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].name) == n &&
		    strncasecmp(map[i].name, v->p, n) == 0)
			return map[i].a;
	return DSN_ACTION_UNKNOWN;
}

/* dsn_finish_rcpt - derive hard and keep the recipient if it has content */
static void
dsn_finish_rcpt(struct dsn_parse_result *res, struct dsn_parse_rcpt *r,
    bool have)
{
	if (!have || res->count >= DSN_PARSE_MAX)
		return;
	r->hard = r->action == DSN_ACTION_FAILED &&
	    (r->status[0] == '\0' || r->status[0] == '5');
	res->rcpts[res->count++] = *r;
}

/* dsn_parse_report - RFC 3464; true if a delivery-status part was found */
static bool
dsn_parse_report(const char *msg, size_t len, struct dsn_parse_result *res)
{
	struct dsn_line l, v;
	struct dsn_parse_rcpt r;
	size_t pos = 0;
	bool found = false, in_hdr = false, have = false;
	char *last = NULL;
	size_t last_size = 0;

	while (dsn_next_line(msg, len, &pos, &l)) {
		if (!found) {
			if (dsn_field(&l, "Content-Type", &v) &&
			    dsn_memcasemem(v.p, v.n, "message/delivery-status") != NULL) {
				found = true;
				in_hdr = true;
			}
			continue;
		}
		if (in_hdr) {
			if (l.n == 0)
				in_hdr = false;
			continue;
		}
		if (l.n >= 2 && l.p[0] == '-' && l.p[1] == '-')
			break;
		if (l.n == 0) {
			dsn_finish_rcpt(res, &r, have);
			have = false;
			last = NULL;
			continue;
		}
		if (!have) {
			memset(&r, 0, sizeof(r));
			r.action = DSN_ACTION_UNKNOWN;
		}
		if ((l.p[0] == ' ' || l.p[0] == '\t') && last != NULL) {
			size_t used = strlen(last);

			if (used + 1 < last_size) {
				last[used] = ' ';
				dsn_copy(last + used + 1, last_size - used - 1,
				    l.p + 1, l.n - 1);
			}
			continue;
		}
		last = NULL;
		if (dsn_field(&l, "Final-Recipient", &v)) {
			dsn_copy_addr(r.recipient, sizeof(r.recipient), v.p, v.n);
			have = true;
		} else if (dsn_field(&l, "Original-Recipient", &v)) {
			if (r.recipient[0] == '\0')
				dsn_copy_addr(r.recipient, sizeof(r.recipient),
				    v.p, v.n);
			have = true;
		} else if (dsn_field(&l, "Action", &v)) {
			r.action = dsn_action_parse(&v);
			have = true;
		} else if (dsn_field(&l, "Status", &v)) {
			size_t sl = dsn_status_len(v.p, v.n);

			if (sl > 0 && sl < sizeof(r.status))
				dsn_copy(r.status, sizeof(r.status), v.p, sl);
		} else if (dsn_field(&l, "Diagnostic-Code", &v)) {
			dsn_copy(r.diagnostic, sizeof(r.diagnostic), v.p, v.n);
			last = r.diagnostic;
			last_size = sizeof(r.diagnostic);
		}
	}
	dsn_finish_rcpt(res, &r, found && have);
	return found;
}

/* dsn_scan_codes - note SMTP or enhanced codes of class 5 and 4 in p/n */
static char
dsn_scan_codes(const char *p, size_t n, bool *saw5, bool *saw4)
{
	size_t i, sl;

	for (i = 0; i + 3 <= n; i++) {
		bool boundary = i == 0 || p[i - 1] == ' ' || p[i - 1] == '(' ||
		    p[i - 1] == '\t' || p[i - 1] == '#' || p[i - 1] == ':';

		if (!boundary || (p[i] != '4' && p[i] != '5'))
			continue;
		sl = dsn_status_len(p + i, n - i);
		if (sl > 0 || (p[i + 1] >= '0' && p[i + 1] <= '9' &&
		    p[i + 2] >= '0' && p[i + 2] <= '9' &&
		    (i + 3 == n || p[i + 3] == ' ' || p[i + 3] == '-'))) {
			if (p[i] == '5')
				*saw5 = true;
			else
				*saw4 = true;
		}
	}
	return 0;
}

/* dsn_looks_addr - p/n is a bare "local@domain" (no spaces) */
static bool
dsn_looks_addr(const char *p, size_t n)
{
	const char *at = memchr(p, '@', n);
	size_t i;

	if (at == NULL || at == p || at == p + n - 1 || n > 300)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '<' || p[i] == '>' ||
		    p[i] == '"' || p[i] == ',' || p[i] == '(')
			return false;
	return memchr(at + 1, '.', n - (size_t)(at + 1 - p)) != NULL;
}

/* dsn_parse_text - the non-standard formats; true if one was recognised */
static bool
dsn_parse_text(const char *msg, size_t len, struct dsn_parse_result *res)
{
	static const char *const markers[] = {
		"This is the qmail-send program",
		"This message was created automatically by mail delivery software",
		"The following addresses had permanent fatal errors",
		"Delivery has failed to these recipients",
		"I'm afraid I wasn't able to deliver your message",
		"This is the mail system at host",
		"could not be delivered to one or more recipients",
		"Your message could not be delivered",
		"Delivery to the following recipient",
		"Undelivered Mail Returned to Sender",
		"Mail delivery failed",
		"Returned mail:",
	};
	static const char *const soft_words[] = {
		"will be retried", "still trying", "delayed",
		"has not yet been delivered", "temporary", "deferral",
		"Warning: message",
	};
	struct dsn_line l;
	size_t pos = 0, i, body_off = 0;
	bool found = false, saw5 = false, saw4 = false, soft = false;
	struct dsn_parse_rcpt r;

	/* The body starts after the first empty line. */
	while (dsn_next_line(msg, len, &pos, &l))
		if (l.n == 0) {
			body_off = pos;
			break;
		}
	for (i = 0; i < sizeof(markers) / sizeof(markers[0]) && !found; i++)
		if (dsn_memcasemem(msg, len, markers[i]) != NULL)
			found = true;
	if (!found)
		return false;
	for (i = 0; i < sizeof(soft_words) / sizeof(soft_words[0]); i++)
		if (dsn_memcasemem(msg + body_off, len - body_off,
		    soft_words[i]) != NULL)
			soft = true;
	pos = body_off;
	while (dsn_next_line(msg, len, &pos, &l)) {
		const char *p = l.p;
		size_t n = l.n;

		/* Stop at the returned original's header. */
		if (n >= 2 && p[0] == '-' && p[1] == '-' && res->count > 0)
			break;
		(void)dsn_scan_codes(p, n, &saw5, &saw4);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		/* "<addr>:" (qmail, Postfix), "addr" alone (Exim, indented) */
		if (n > 2 && p[0] == '<') {
			const char *gt = memchr(p, '>', n);

			if (gt == NULL || !dsn_looks_addr(p + 1,
			    (size_t)(gt - p - 1)))
				continue;
			n = (size_t)(gt - p - 1);
			p++;
		} else if (l.n > n && dsn_looks_addr(p, n)) {
			/* indented bare address */
		} else {
			continue;
		}
		if (res->count >= DSN_PARSE_MAX)
			break;
		memset(&r, 0, sizeof(r));
		dsn_copy(r.recipient, sizeof(r.recipient), p, n);
		res->rcpts[res->count++] = r;
	}
	if (res->count == 0) {
		memset(&r, 0, sizeof(r));
		res->rcpts[res->count++] = r;
	}
	for (i = 0; i < res->count; i++) {
		struct dsn_parse_rcpt *rc = &res->rcpts[i];

		if (soft || (saw4 && !saw5)) {
			rc->action = DSN_ACTION_DELAYED;
			rc->hard = false;
			pst_strlcpy(rc->status, "4.0.0", sizeof(rc->status));
		} else {
			rc->action = DSN_ACTION_FAILED;
			rc->hard = true;
			pst_strlcpy(rc->status, "5.0.0", sizeof(rc->status));
		}
	}
	return true;
}

/* dsn_parse - see dsn_parse.h */
void
dsn_parse(const char *msg, size_t len, struct dsn_parse_result *res)
{
	memset(res, 0, sizeof(*res));
	if (dsn_parse_report(msg, len, res)) {
		res->is_report = true;
		res->is_bounce = true;
		return;
	}
	res->count = 0;
	res->is_bounce = dsn_parse_text(msg, len, res);
}

/* dsn_action_name - see dsn_parse.h */
const char *
dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_UNKNOWN:
		break;
	}
	return "unknown";
}
