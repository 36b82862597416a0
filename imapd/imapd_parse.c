/* SPDX-License-Identifier: MIT */
/*
 * imapd_parse - reading IMAP commands and parsing their arguments
 *
 * DESCRIPTION
 *	imapd_read_command() assembles one command from the wire: its
 *	lines and literals, bounded before anything is read or allocated
 *	(a literal announced beyond the limit is refused from its size
 *	alone: NO [TOOBIG] for APPEND, BAD otherwise, and a
 *	non-synchronizing one, whose bytes the client sends anyway, ends
 *	the connection with BYE). Literals stay in the buffer in their wire
 *	form "{n}\r\n" + n bytes, so the argument parser below sees exactly
 *	the grammar of RFC 3501 section 9 and never a copy.
 *
 *	The argument parser works on (pointer, length) and fails with a
 *	static reason in ip->error; nothing here writes to the client
 *	except the continuation and limit replies of the reader.
 *
 * SEE ALSO
 *	RFC 3501 section 9, RFC 7888 (LITERAL+), RFC 3516 (literal8).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "imap_utf7.h"
#include "stream.h"
#include "str.h"

#include "imapd.h"

/* is_atom_char - ATOM-CHAR (RFC 3501 9) */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* read_first_words - tag and command name of the first line */
static void
read_first_words(const char *p, size_t n, struct str *tag, bool *append_r)
{
	size_t i = 0, j;

	while (i < n && p[i] != ' ')
		i++;
	str_set(tag, p, i);
	for (j = 0; j < i; j++)
		if (!is_atom_char((unsigned char)p[j]) || p[j] == '+') {
			str_set_cstr(tag, "*");
			break;
		}
	if (i == 0)
		str_set_cstr(tag, "*");
	if (i < n)
		i++;
	j = i;
	while (j < n && p[j] != ' ')
		j++;
	*append_r = j - i == 6 && strncasecmp(p + i, "APPEND", 6) == 0;
}

/* read_literal_size - "{n}" / "{n+}" / "~{n}" at the end of p/n */
static bool
read_literal_size(const char *p, size_t n, uint64_t *size_r, bool *nonsync_r,
    size_t *start_r)
{
	size_t i, d;
	uint64_t v = 0;

	if (n < 3 || p[n - 1] != '}')
		return false;
	i = n - 1;
	*nonsync_r = false;
	if (p[i - 1] == '+') {
		*nonsync_r = true;
		i--;
	}
	d = i;
	while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
		i--;
	if (i == d || i == 0 || p[i - 1] != '{' || d - i > 19)
		return false;
	for (; i < d; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	*size_r = v;
	*start_r = d;
	return true;
}

/* imapd_read_command - see imapd.h */
enum imapd_read
imapd_read_command(struct stream *s, struct str *cmd, size_t max,
    uint64_t append_max, struct str *tag)
{
	struct str *line = str_new(256, 0);
	enum imapd_read ret = IMAPD_READ_OK;
	enum stream_result r;
	bool first = true, is_append = false, nonsync;
	uint64_t size, allowed;
	size_t lmax, start;

	str_clear(cmd);
	str_set_cstr(tag, "*");
	for (;;) {
		lmax = max > str_len(cmd) ? max - str_len(cmd) + 2 : 2;
		if (lmax < 64)
			lmax = 64;
		r = stream_read_line(s, line, lmax);
		if (r == STREAM_TOO_LONG) {
			stream_printf(s, "%s BAD Command line too long\r\n",
			    str_c(tag));
			stream_flush(s);
			ret = IMAPD_READ_TOO_LONG;
			break;
		}
		if (r != STREAM_OK) {
			ret = IMAPD_READ_EOF;
			break;
		}
		str_chomp(line);
		if (first) {
			read_first_words(str_c(line), str_len(line), tag,
			    &is_append);
			first = false;
		}
		if (!read_literal_size(str_c(line), str_len(line), &size,
		    &nonsync, &start)) {
			str_append_str(cmd, line);
			break;
		}
		/* drop the '+' so the parser sees one literal syntax */
		str_append(cmd, str_c(line), start);
		str_append_c(cmd, '}');
		/*
		 * APPEND: every message is checked against append_max
		 * (APPENDLIMIT) by the command; all of a MULTIAPPEND are
		 * held in memory until the commit, so together they get
		 * append_max too.
		 */
		allowed = is_append ? (append_max + max > str_len(cmd) ?
		    append_max + max - str_len(cmd) : 0) :
		    (max > str_len(cmd) ? max - str_len(cmd) : 0);
		if (size > allowed) {
			if (nonsync) {
				stream_printf(s, "* BYE [TOOBIG] Literal too "
				    "big\r\n");
				stream_flush(s);
				ret = IMAPD_READ_FATAL;
			} else {
				stream_printf(s, "%s %s Literal too big\r\n",
				    str_c(tag), is_append ? "NO [TOOBIG]" :
				    "BAD [TOOBIG]");
				stream_flush(s);
				ret = IMAPD_READ_TOO_LONG;
			}
			break;
		}
		if (!nonsync) {
			stream_puts(s, "+ OK\r\n");
			if (stream_flush(s) < 0) {
				ret = IMAPD_READ_EOF;
				break;
			}
		}
		str_append(cmd, "\r\n", 2);
		if (size > 0 && stream_read_n(s, cmd, (size_t)size) != STREAM_OK) {
			ret = IMAPD_READ_EOF;
			break;
		}
	}
	str_free(&line);
	return ret;
}

/* ---------------------------------------------------------------- parser */

void
imap_parser_init(struct imap_parser *ip, const char *p, size_t n)
{
	ip->p = p;
	ip->n = n;
	ip->pos = 0;
	ip->error = NULL;
}

static bool
parse_fail(struct imap_parser *ip, const char *why)
{
	if (ip->error == NULL)
		ip->error = why;
	return false;
}

bool
imap_parse_end(struct imap_parser *ip)
{
	if (ip->pos != ip->n)
		return parse_fail(ip, "Unexpected extra arguments");
	return true;
}

bool
imap_parse_peek(const struct imap_parser *ip, char c)
{
	return ip->pos < ip->n && ip->p[ip->pos] == c;
}

bool
imap_parse_char(struct imap_parser *ip, char c)
{
	if (!imap_parse_peek(ip, c))
		return parse_fail(ip, "Syntax error");
	ip->pos++;
	return true;
}

bool
imap_parse_sp(struct imap_parser *ip)
{
	if (!imap_parse_peek(ip, ' '))
		return parse_fail(ip, "Missing argument");
	ip->pos++;
	return true;
}

bool
imap_parse_atom(struct imap_parser *ip, struct str *out, bool bracket)
{
	size_t start = ip->pos;

	while (ip->pos < ip->n && (is_atom_char((unsigned char)ip->p[ip->pos]) ||
	    (bracket && ip->p[ip->pos] == ']')))
		ip->pos++;
	if (ip->pos == start)
		return parse_fail(ip, "Missing or invalid argument");
	str_set(out, ip->p + start, ip->pos - start);
	return true;
}

bool
imap_parse_tag(struct imap_parser *ip, struct str *out)
{
	size_t start = ip->pos;

	while (ip->pos < ip->n && (is_atom_char((unsigned char)ip->p[ip->pos]) ||
	    ip->p[ip->pos] == ']') && ip->p[ip->pos] != '+')
		ip->pos++;
	if (ip->pos == start)
		return parse_fail(ip, "Invalid tag");
	str_set(out, ip->p + start, ip->pos - start);
	return true;
}

/* parse_literal - "{n}\r\n" + n bytes (validated by the reader, checked again) */
static bool
parse_literal(struct imap_parser *ip, struct str *out)
{
	unsigned long long v = 0;
	size_t i = ip->pos + 1, d = 0;

	while (i < ip->n && ip->p[i] >= '0' && ip->p[i] <= '9' && d < 19) {
		v = v * 10 + (unsigned)(ip->p[i] - '0');
		i++;
		d++;
	}
	if (d == 0 || i + 3 > ip->n || ip->p[i] != '}' || ip->p[i + 1] != '\r' ||
	    ip->p[i + 2] != '\n')
		return parse_fail(ip, "Bad literal");
	i += 3;
	if (v > ip->n - i)
		return parse_fail(ip, "Bad literal");
	str_set(out, ip->p + i, (size_t)v);
	ip->pos = i + (size_t)v;
	return true;
}

/* parse_quoted - a quoted string */
static bool
parse_quoted(struct imap_parser *ip, struct str *out)
{
	size_t i = ip->pos + 1;
	unsigned char c;

	str_clear(out);
	for (; i < ip->n; i++) {
		c = (unsigned char)ip->p[i];
		if (c == '"') {
			ip->pos = i + 1;
			return true;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			break;
		if (c == '\\') {
			if (i + 1 >= ip->n || (ip->p[i + 1] != '"' &&
			    ip->p[i + 1] != '\\'))
				break;
			c = (unsigned char)ip->p[++i];
		}
		str_append_c(out, (char)c);
	}
	return parse_fail(ip, "Bad quoted string");
}

bool
imap_parse_string(struct imap_parser *ip, struct str *out)
{
	if (imap_parse_peek(ip, '"'))
		return parse_quoted(ip, out);
	if (imap_parse_peek(ip, '{'))
		return parse_literal(ip, out);
	return parse_fail(ip, "Missing string argument");
}

bool
imap_parse_literal_any(struct imap_parser *ip, struct str *out, bool *binary_r)
{
	*binary_r = false;
	if (imap_parse_peek(ip, '~')) {
		ip->pos++;
		if (!imap_parse_peek(ip, '{'))
			return parse_fail(ip, "Bad literal8");
		*binary_r = true;
		return parse_literal(ip, out);
	}
	return imap_parse_string(ip, out);
}

bool
imap_parse_astring(struct imap_parser *ip, struct str *out)
{
	if (imap_parse_peek(ip, '"') || imap_parse_peek(ip, '{'))
		return imap_parse_string(ip, out);
	return imap_parse_atom(ip, out, true);
}

bool
imap_parse_nstring(struct imap_parser *ip, struct str *out, bool *nil_r)
{
	*nil_r = false;
	if (ip->n - ip->pos >= 3 && strncasecmp(ip->p + ip->pos, "NIL", 3) == 0 &&
	    (ip->n - ip->pos == 3 || !is_atom_char((unsigned char)ip->p[ip->pos + 3]))) {
		ip->pos += 3;
		*nil_r = true;
		str_clear(out);
		return true;
	}
	return imap_parse_string(ip, out);
}

bool
imap_parse_number64(struct imap_parser *ip, uint64_t *v)
{
	size_t start = ip->pos;
	uint64_t x = 0;

	while (ip->pos < ip->n && ip->p[ip->pos] >= '0' && ip->p[ip->pos] <= '9') {
		unsigned d = (unsigned)(ip->p[ip->pos] - '0');

		if (x > (UINT64_MAX / 2 - d) / 10)	/* mod-sequence-value: 63 bits */
			return parse_fail(ip, "Number too big");
		x = x * 10 + d;
		ip->pos++;
	}
	if (ip->pos == start)
		return parse_fail(ip, "Number expected");
	*v = x;
	return true;
}

bool
imap_parse_number(struct imap_parser *ip, uint32_t *v, bool nz)
{
	uint64_t x;

	if (!imap_parse_number64(ip, &x))
		return false;
	if (x > UINT32_MAX || (nz && x == 0))
		return parse_fail(ip, "Invalid number");
	*v = (uint32_t)x;
	return true;
}

bool
imap_parse_flag(struct imap_parser *ip, struct str *out)
{
	size_t start = ip->pos;

	if (imap_parse_peek(ip, '\\'))
		ip->pos++;
	while (ip->pos < ip->n && is_atom_char((unsigned char)ip->p[ip->pos]))
		ip->pos++;
	if (ip->pos == start || (ip->pos == start + 1 && ip->p[start] == '\\'))
		return parse_fail(ip, "Invalid flag");
	str_set(out, ip->p + start, ip->pos - start);
	return true;
}

/* ---------------------------------------------------------------- sequence sets */

void
imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 8;
		set->r = xreallocarray(set->r, set->cap, sizeof(*set->r));
	}
	set->r[set->n].lo = MIN(lo, hi);
	set->r[set->n].hi = MAX(lo, hi);
	set->n++;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	XFREE(set->r);
	set->n = set->cap = 0;
	set->saved = false;
}

/* parse_seq_number - nz-number or '*' */
static bool
parse_seq_number(struct imap_parser *ip, uint32_t *v)
{
	if (imap_parse_peek(ip, '*')) {
		ip->pos++;
		*v = UINT32_MAX;
		return true;
	}
	if (!imap_parse_number(ip, v, true))
		return parse_fail(ip, "Invalid sequence set");
	return true;
}

bool
imap_parse_seqset(struct imap_parser *ip, struct imap_seqset *set)
{
	uint32_t lo, hi;

	set->n = 0;
	set->saved = false;
	if (imap_parse_peek(ip, '$')) {
		ip->pos++;
		set->saved = true;
		return true;
	}
	for (;;) {
		if (!parse_seq_number(ip, &lo))
			return false;
		hi = lo;
		if (imap_parse_peek(ip, ':')) {
			ip->pos++;
			if (!parse_seq_number(ip, &hi))
				return false;
		}
		if (set->n > 100000)
			return parse_fail(ip, "Sequence set too long");
		imap_seqset_add(set, lo, hi);
		if (!imap_parse_peek(ip, ','))
			break;
		ip->pos++;
	}
	if (ip->pos < ip->n && ip->p[ip->pos] != ' ' && ip->p[ip->pos] != ')')
		return parse_fail(ip, "Invalid sequence set");
	return true;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t v, uint32_t star)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		uint32_t lo = set->r[i].lo == UINT32_MAX ? star : set->r[i].lo;
		uint32_t hi = set->r[i].hi == UINT32_MAX ? star : set->r[i].hi;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (v >= lo && v <= hi)
			return true;
	}
	return false;
}

void
imap_seqset_write(struct str *out, const uint32_t *v, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			str_append_c(out, ',');
		if (j == i)
			str_printf(out, "%u", v[i]);
		else
			str_printf(out, "%u:%u", v[i], v[j]);
		i = j + 1;
	}
}

/* ---------------------------------------------------------------- output */

void
imap_write_string(struct str *out, const char *p, size_t n)
{
	size_t i;
	bool quote = n < 1024;

	for (i = 0; quote && i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			quote = false;
	}
	if (!quote) {
		str_printf(out, "{%zu}\r\n", n);
		str_append(out, p, n);
		return;
	}
	str_append_c(out, '"');
	for (i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			str_append_c(out, '\\');
		str_append_c(out, p[i]);
	}
	str_append_c(out, '"');
}

void
imap_write_mailbox(struct str *out, const char *name, char sep, bool utf8)
{
	struct str *t = str_new(64, 0), *u = str_new(64, 0);
	const char *p;

	/* the store uses '/'; show the configured separator */
	for (p = name; *p != '\0'; p++)
		str_append_c(t, *p == '/' ? sep : *p);
	if (utf8 || imap_utf7_is_ascii(str_c(t), str_len(t)) ||
	    imap_utf8_to_utf7(str_c(t), str_len(t), u) < 0)
		imap_write_string(out, str_c(t), str_len(t));
	else
		imap_write_string(out, str_c(u), str_len(u));
	str_free(&t);
	str_free(&u);
}
