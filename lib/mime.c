/* SPDX-License-Identifier: MIT */
/*
 * mime - RFC 2045/2046 structure of a stored message, in one pass
 *
 * DESCRIPTION
 *	See mime.h. The parse is one pass, as Dovecot's: a part starts at a
 *	known offset and runs to the first line that opens any active
 *	boundary (the chain of boundaries of the enclosing multiparts,
 *	checked innermost first) or to the end of the message. Its header
 *	is scanned line by line (a boundary line also ends a header that
 *	lacks its empty line); only the Content-* fields are parsed. A leaf
 *	body is scanned for the next boundary line with memchr(), counting
 *	lines on the way; a multipart pushes its boundary and parses its
 *	children one after another; a message/rfc822 part parses its
 *	enclosed message with the same chain. Every byte is looked at a
 *	bounded number of times whatever the nesting (line counts of
 *	multipart and message bodies take one more memchr() pass).
 *
 *	Recursion depth is bounded by max_depth, itself capped at
 *	MIME_DEPTH_CAP whatever the caller asks for, so hostile nesting
 *	cannot exhaust the stack.
 *
 *	All parts and strings come from an arena of 4 KB blocks (larger
 *	for large requests) owned by the message: a typical message costs
 *	a couple of allocations.
 *
 *	Content-Type parameters follow RFC 2045 5.1 with RFC 2231
 *	continuations and charsets; a Content-Type without a valid
 *	type "/" subtype falls back to the default (RFC 2045 5.2) and its
 *	parameters are ignored.
 *
 * SEE ALSO
 *	RFC 2045, RFC 2046 (5.1.1 boundaries), RFC 2231, RFC 3501 6.4.5.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "header.h"
#include "mime.h"
#include "rfc2047.h"
#include "str.h"

#define MIME_ARENA_BLOCK	4096
#define MIME_DEPTH_CAP		500
#define MIME_BOUNDARY_MAX	200	/* RFC 2046: 70; be generous */
#define MIME_LANGUAGES_MAX	32

struct mime_arena_block {
	struct mime_arena_block *next;
	size_t used;
	size_t size;
	/* data follows, aligned to max_align_t */
};

struct mime_message {
	const char *data;
	size_t size;
	struct mime_part *root;
	unsigned int part_count;
	bool overflow;
	struct mime_limits limits;
	struct mime_arena_block *arena;
	struct str *scratch;		/* for decoding parameters */
	struct str *scratch2;
};

/* One parameter as written, before RFC 2231 joining. */
struct mime_raw_param {
	const char *name;		/* arena copy, without "*N*" */
	size_t name_len;
	int section;			/* -1 = no "*N" */
	bool star;			/* this segment is %-encoded */
	const char *value;		/* arena copy, unquoted */
	size_t value_len;
	bool used;
};

/* ------------------------------------------------------------ arena */

/* mime_alloc - zeroed, aligned memory from the message's arena */
static void *
mime_alloc(struct mime_message *msg, size_t size)
{
	struct mime_arena_block *b = msg->arena;
	const size_t align = sizeof(max_align_t) > 16 ? 16 : sizeof(max_align_t);
	size_t hdr = (sizeof(*b) + align - 1) & ~(align - 1), bsize;
	void *r;

	size = (size + align - 1) & ~(align - 1);
	if (size == 0)
		size = align;
	if (b == NULL || b->size - b->used < size) {
		bsize = size > MIME_ARENA_BLOCK / 2 ? size : MIME_ARENA_BLOCK;
		b = xmalloc(hdr + bsize);	/* xmalloc checks, zeroes */
		b->size = bsize;
		if (size > MIME_ARENA_BLOCK / 2 && msg->arena != NULL) {
			/* A big one-off: keep the current block current. */
			b->next = msg->arena->next;
			msg->arena->next = b;
		} else {
			b->next = msg->arena;
			msg->arena = b;
		}
	}
	r = (char *)b + hdr + b->used;
	b->used += size;
	return r;
}

/* mime_strdup - arena copy of p/n, NUL-terminated, NULs dropped */
static char *
mime_strdup(struct mime_message *msg, const char *p, size_t n)
{
	char *r, *w;
	size_t i;

	if (n >= SIZE_MAX - 1)
		n = SIZE_MAX - 2;	/* not reachable with real memory */
	r = w = mime_alloc(msg, n + 1);
	for (i = 0; i < n; i++) {
		if (p[i] != '\0')
			*w++ = p[i];
	}
	*w = '\0';
	return r;
}

/* mime_unfold_dup - arena copy of a header value, unfolded and trimmed */
static const char *
mime_unfold_dup(struct mime_message *msg, const char *p, size_t n)
{
	struct str *s = msg->scratch;

	str_clear(s);
	if (header_unfold(p, n, s) < 0)
		str_clear(s);
	return mime_strdup(msg, str_c(s), str_len(s));
}

/* ------------------------------------------------------------ tokens */

/* Bytes that may be part of an RFC 2045 token: no CTL, SP, tspecials */
static bool mime_token_chars[256];
static bool mime_token_chars_ready;

/* mime_token_init - fill in mime_token_chars once */
static void
mime_token_init(void)
{
	unsigned int c;

	for (c = 0x21; c < 0x7F; c++)
		mime_token_chars[c] = strchr("()<>@,;:\\\"/[]?=", (int)c) == NULL;
	mime_token_chars_ready = true;
}

/* mime_token_char - a byte that can be part of an RFC 2045 token */
static inline bool
mime_token_char(char c)
{
	return mime_token_chars[(unsigned char)c];
}

/* mime_skip_cfws - skip white space, line ends and (nested) comments */
static size_t
mime_skip_cfws(const char *p, size_t n, size_t i)
{
	unsigned int depth;

	while (i < n) {
		char c = p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c != '(')
			break;
		depth = 0;
		for (; i < n; i++) {
			if (p[i] == '\\' && i + 1 < n)
				i++;
			else if (p[i] == '(')
				depth++;
			else if (p[i] == ')' && --depth == 0)
				break;
		}
		if (i < n)
			i++;
	}
	return i;
}

/* mime_token - the length of the token at p[i..n) (0 = none) */
static size_t
mime_token(const char *p, size_t n, size_t i)
{
	size_t j = i;

	while (j < n && mime_token_char(p[j]))
		j++;
	return j - i;
}

/*
 * mime_value - a parameter value at p[*ip..n): a token or a quoted
 * string (unquoted into scratch). Lenient: a value with bytes that are
 * not token bytes runs to the next ';' or white space.
 */
static bool
mime_value(struct mime_message *msg, const char *p, size_t n, size_t *ip,
    const char **v_r, size_t *vlen_r)
{
	size_t i = *ip, j;
	struct str *s = msg->scratch;

	str_clear(s);
	if (i < n && p[i] == '"') {
		char *start, *w;

		if ((start = w = str_reserve(s, n - i)) == NULL)
			return false;
		for (i++; i < n && p[i] != '"'; i++) {
			if (p[i] == '\\' && i + 1 < n)
				i++;
			if (p[i] == '\r' || p[i] == '\n')
				continue;
			*w++ = p[i];
		}
		str_commit(s, (size_t)(w - start));
		if (i < n)
			i++;
	} else {
		for (j = i; j < n && p[j] != ';' && p[j] != ' ' &&
		    p[j] != '\t' && p[j] != '\r' && p[j] != '\n' &&
		    p[j] != '('; j++)
			;
		(void)str_append(s, p + i, j - i);
		i = j;
	}
	*ip = i;
	*v_r = mime_strdup(msg, str_c(s), str_len(s));
	*vlen_r = strlen(*v_r);
	return true;
}

/* ------------------------------------------------------------ params */

/* mime_hex - the value of a hex digit, or -1 */
static int
mime_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* mime_pct_decode - append the RFC 2231 %-decoding of p/n to s */
static void
mime_pct_decode(struct str *s, const char *p, size_t n)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (p[i] == '%' && i + 2 < n &&
		    (hi = mime_hex(p[i + 1])) >= 0 &&
		    (lo = mime_hex(p[i + 2])) >= 0) {
			(void)str_append_c(s, (char)(hi * 16 + lo));
			i += 2;
			continue;
		}
		(void)str_append_c(s, p[i]);
	}
}

/*
 * mime_params_parse - parse ";" name "=" value pairs from p[i..n) into
 * raw params (at most MIME_MAX_PARAMS). Returns the count.
 */
static unsigned int
mime_params_parse(struct mime_message *msg, const char *p, size_t n,
    size_t i, struct mime_raw_param *raw)
{
	unsigned int count = 0;
	size_t nlen, j;
	const char *name;

	for (;;) {
		i = mime_skip_cfws(p, n, i);
		if (i >= n)
			break;
		if (p[i] == ';') {
			i++;
			continue;
		}
		nlen = mime_token(p, n, i);
		name = p + i;
		i = mime_skip_cfws(p, n, i + nlen);
		if (nlen == 0 || i >= n || p[i] != '=') {
			/* Not name=value: skip to the next ';'. */
			while (i < n && p[i] != ';') {
				if (p[i] == '"') {
					for (i++; i < n && p[i] != '"'; i++) {
						if (p[i] == '\\' && i + 1 < n)
							i++;
					}
				}
				if (i < n)
					i++;
			}
			continue;
		}
		i = mime_skip_cfws(p, n, i + 1);
		if (count == MIME_MAX_PARAMS) {
			const char *v;
			size_t vl;

			(void)mime_value(msg, p, n, &i, &v, &vl);
			continue;
		}
		memset(&raw[count], 0, sizeof(raw[count]));
		raw[count].section = -1;
		/* RFC 2231: name*, name*N, name*N* */
		j = 0;
		while (j < nlen && name[j] != '*')
			j++;
		raw[count].name_len = j;
		if (j < nlen) {
			size_t k = j + 1, d = 0;
			unsigned long sec = 0;

			while (k < nlen && name[k] >= '0' && name[k] <= '9' &&
			    d < 4) {
				sec = sec * 10 + (unsigned long)(name[k] - '0');
				k++;
				d++;
			}
			if (d > 0)
				raw[count].section = (int)sec;
			if (k < nlen && name[k] == '*')
				k++, raw[count].star = true;
			else if (d == 0)
				raw[count].star = true;
			if (k != nlen) {
				/* Not a 2231 form after all: keep it whole. */
				raw[count].name_len = nlen;
				raw[count].section = -1;
				raw[count].star = false;
			}
		}
		raw[count].name = mime_strdup(msg, name, raw[count].name_len);
		(void)mime_value(msg, p, n, &i, &raw[count].value,
		    &raw[count].value_len);
		count++;
	}
	return count;
}

/* mime_plain - whether p/n is ASCII without "=?" (decodes to itself) */
static bool
mime_plain(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80 ||
		    (p[i] == '=' && i + 1 < n && p[i + 1] == '?'))
			return false;
	}
	return true;
}

/*
 * mime_params_join - join RFC 2231 segments and decode values; returns
 * the final array (arena) and its count.
 */
static const struct mime_param *
mime_params_join(struct mime_message *msg, struct mime_raw_param *raw,
    unsigned int nraw, unsigned int *count_r)
{
	struct mime_param *params;
	struct str *s = msg->scratch, *bytes;
	unsigned int i, j, count = 0;
	int want;

	*count_r = 0;
	if (nraw == 0)
		return NULL;
	params = mime_alloc(msg, nraw * sizeof(*params));
	bytes = msg->scratch2;
	for (i = 0; i < nraw; i++) {
		struct mime_param *pm;
		struct mime_raw_param *first = &raw[i];
		bool extended;

		if (first->used)
			continue;
		first->used = true;
		pm = &params[count++];
		pm->name = first->name;
		if (first->section < 0 && !first->star) {
			pm->value = first->value;
			if (mime_plain(first->value, first->value_len)) {
				pm->decoded = first->value;
				continue;
			}
			str_clear(s);
			if (rfc2047_decode(first->value, first->value_len,
			    s) < 0)
				str_clear(s);
			pm->decoded = mime_strdup(msg, str_c(s), str_len(s));
			continue;
		}
		/* Collect segments 0, 1, 2, ... (or the single "name*"). */
		str_clear(s);
		str_clear(bytes);
		extended = first->star;
		if (first->section < 0) {
			(void)str_append(s, first->value, first->value_len);
		} else {
			for (want = 0; want < 10000; want++) {
				struct mime_raw_param *seg = NULL;

				for (j = i; j < nraw; j++) {
					if (raw[j].section == want &&
					    raw[j].name_len ==
					    first->name_len &&
					    strcasecmp(raw[j].name,
					    first->name) == 0) {
						seg = &raw[j];
						break;
					}
				}
				if (seg == NULL)
					break;
				seg->used = true;
				if (want == 0)
					extended = seg->star;
				(void)str_append(s, seg->value,
				    seg->value_len);
			}
		}
		pm->extended = extended;
		pm->value = mime_strdup(msg, str_c(s), str_len(s));
		if (!extended) {
			str_clear(s);
			if (rfc2047_decode(pm->value, strlen(pm->value), s) < 0)
				str_clear(s);
			pm->decoded = mime_strdup(msg, str_c(s), str_len(s));
			continue;
		}
		/* charset'language'%xx */
		{
			const char *v = pm->value, *q1, *q2;
			size_t vl = strlen(v);

			q1 = memchr(v, '\'', vl);
			q2 = q1 == NULL ? NULL :
			    memchr(q1 + 1, '\'', vl - (size_t)(q1 + 1 - v));
			if (q2 == NULL) {
				mime_pct_decode(bytes, v, vl);
				str_clear(s);
				(void)rfc2047_utf8_repair(str_c(bytes),
				    str_len(bytes), s);
			} else {
				mime_pct_decode(bytes, q2 + 1,
				    vl - (size_t)(q2 + 1 - v));
				str_clear(s);
				if (q1 == v)
					(void)rfc2047_utf8_repair(str_c(bytes),
					    str_len(bytes), s);
				else if (rfc2047_charset_to_utf8(v,
				    (size_t)(q1 - v), str_c(bytes),
				    str_len(bytes), s) < 0)
					str_clear(s);
			}
			pm->decoded = mime_strdup(msg, str_c(s), str_len(s));
		}
	}
	*count_r = count;
	return params;
}

/* ------------------------------------------------------------ fields */

/* mime_parse_content_type - Content-Type: type "/" subtype *(";" param) */
static void
mime_parse_content_type(struct mime_message *msg, struct mime_part *part,
    const char *p, size_t n, struct mime_raw_param *raw)
{
	size_t i, tlen, slen;
	const char *t, *st;
	unsigned int nraw;

	i = mime_skip_cfws(p, n, 0);
	t = p + i;
	tlen = mime_token(p, n, i);
	i = mime_skip_cfws(p, n, i + tlen);
	if (tlen == 0 || i >= n || p[i] != '/')
		return;
	i = mime_skip_cfws(p, n, i + 1);
	st = p + i;
	slen = mime_token(p, n, i);
	if (slen == 0)
		return;
	i = mime_skip_cfws(p, n, i + slen);
	if (i < n && p[i] != ';')
		return;		/* junk after the subtype */
	part->type = mime_strdup(msg, t, tlen);
	part->subtype = mime_strdup(msg, st, slen);
	nraw = mime_params_parse(msg, p, n, i, raw);
	part->params = mime_params_join(msg, raw, nraw, &part->param_count);
}

/* mime_parse_disposition - Content-Disposition: type *(";" param) */
static void
mime_parse_disposition(struct mime_message *msg, struct mime_part *part,
    const char *p, size_t n, struct mime_raw_param *raw)
{
	size_t i, tlen;
	unsigned int nraw;

	i = mime_skip_cfws(p, n, 0);
	tlen = mime_token(p, n, i);
	if (tlen == 0)
		return;
	part->disposition = mime_strdup(msg, p + i, tlen);
	nraw = mime_params_parse(msg, p, n, i + tlen, raw);
	part->disposition_params = mime_params_join(msg, raw, nraw,
	    &part->disposition_param_count);
}

/* mime_parse_token_field - a field whose value is one token (CTE) */
static const char *
mime_parse_token_field(struct mime_message *msg, const char *p, size_t n)
{
	size_t i, tlen;

	i = mime_skip_cfws(p, n, 0);
	tlen = mime_token(p, n, i);
	if (tlen == 0)
		return NULL;
	return mime_strdup(msg, p + i, tlen);
}

/* mime_parse_languages - Content-Language: token *("," token) */
static void
mime_parse_languages(struct mime_message *msg, struct mime_part *part,
    const char *p, size_t n)
{
	const char *langs[MIME_LANGUAGES_MAX];
	const char **arr;
	unsigned int count = 0;
	size_t i = 0, tlen;

	for (;;) {
		i = mime_skip_cfws(p, n, i);
		if (i >= n)
			break;
		if (p[i] == ',') {
			i++;
			continue;
		}
		tlen = mime_token(p, n, i);
		if (tlen == 0) {
			i++;	/* skip a stray byte */
			continue;
		}
		if (count < MIME_LANGUAGES_MAX)
			langs[count++] = mime_strdup(msg, p + i, tlen);
		i += tlen;
	}
	if (count == 0)
		return;
	arr = mime_alloc(msg, count * sizeof(*arr));
	memcpy(arr, langs, count * sizeof(*arr));
	part->languages = arr;
	part->language_count = count;
}

/* mime_parse_header - read the Content-* fields of the part's header */
static void
mime_parse_header(struct mime_message *msg, struct mime_part *part)
{
	struct mime_raw_param raw[MIME_MAX_PARAMS];
	struct header_iter it;
	struct header_field f;
	size_t n = part->hdr_size;
	bool seen_type = false;

	if (n > msg->limits.max_header_size)
		n = msg->limits.max_header_size;
	header_iter_init(&it, msg->data + part->hdr_offset, n);
	while (header_iter_next(&it, &f)) {
		if (f.no_colon || f.name_len < 8 ||
		    strncasecmp(f.name, "content-", 8) != 0)
			continue;
		if (header_name_is(&f, "content-type")) {
			if (!seen_type)
				mime_parse_content_type(msg, part, f.value,
				    f.value_len, raw);
			seen_type = true;
		} else if (header_name_is(&f, "content-transfer-encoding")) {
			if (part->encoding == NULL)
				part->encoding = mime_parse_token_field(msg,
				    f.value, f.value_len);
		} else if (header_name_is(&f, "content-id")) {
			if (part->id == NULL)
				part->id = mime_unfold_dup(msg, f.value,
				    f.value_len);
		} else if (header_name_is(&f, "content-description")) {
			if (part->description == NULL)
				part->description = mime_unfold_dup(msg,
				    f.value, f.value_len);
		} else if (header_name_is(&f, "content-md5")) {
			if (part->md5 == NULL)
				part->md5 = mime_unfold_dup(msg, f.value,
				    f.value_len);
		} else if (header_name_is(&f, "content-disposition")) {
			if (part->disposition == NULL)
				mime_parse_disposition(msg, part, f.value,
				    f.value_len, raw);
		} else if (header_name_is(&f, "content-language")) {
			if (part->languages == NULL)
				mime_parse_languages(msg, part, f.value,
				    f.value_len);
		} else if (header_name_is(&f, "content-location")) {
			if (part->location == NULL)
				part->location = mime_unfold_dup(msg, f.value,
				    f.value_len);
		}
	}
}

/* ------------------------------------------------------------ structure */

/* An active boundary; the chain runs from the innermost outwards. */
struct mime_bnd {
	const char *b;
	size_t len;
	const struct mime_bnd *outer;
};

/* Where a scan stopped: at a boundary line, or at the limit (bnd NULL). */
struct mime_hit {
	const struct mime_bnd *bnd;
	bool close;		/* "--boundary--" */
	size_t line_start;	/* of the boundary line */
	size_t line_end;	/* just past it */
	size_t part_end;	/* line_start less the EOL before it */
	size_t lf_count;	/* LFs from the scan start to part_end */
};

/* mime_count_lf - the number of LF bytes in p/n */
static size_t
mime_count_lf(const char *p, size_t n)
{
	const char *end = p + n, *lf;
	size_t count = 0;

	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		count++;
		p = lf + 1;
	}
	return count;
}

/*
 * mime_boundary_line - the boundary, innermost first, that the line
 * [ls, le) opens ("--" boundary, anything after it), or NULL.
 */
static const struct mime_bnd *
mime_boundary_line(const char *d, size_t ls, size_t le,
    const struct mime_bnd *bnd, bool *close_r)
{
	size_t len = le - ls;

	if (len < 3 || d[ls] != '-' || d[ls + 1] != '-')
		return NULL;
	for (; bnd != NULL; bnd = bnd->outer) {
		if (len - 2 >= bnd->len &&
		    memcmp(d + ls + 2, bnd->b, bnd->len) == 0) {
			*close_r = len - 2 - bnd->len >= 2 &&
			    d[ls + 2 + bnd->len] == '-' &&
			    d[ls + 3 + bnd->len] == '-';
			return bnd;
		}
	}
	return NULL;
}

/* mime_hit_at - record a boundary line at ls found by a scan from pos */
static void
mime_hit_at(const char *d, size_t pos, size_t ls, size_t le, size_t lfs,
    struct mime_hit *hit)
{
	hit->line_start = ls;
	hit->line_end = le;
	hit->part_end = ls;
	/* The EOL before a boundary belongs to the boundary. */
	if (ls > pos && d[ls - 1] == '\n') {
		hit->part_end--;
		lfs--;
		if (hit->part_end > pos && d[hit->part_end - 1] == '\r')
			hit->part_end--;
	}
	hit->lf_count = lfs;
}

/* mime_hit_limit - record that a scan from pos reached limit */
static void
mime_hit_limit(struct mime_hit *hit, size_t limit, size_t lfs)
{
	hit->bnd = NULL;
	hit->close = false;
	hit->line_start = hit->line_end = hit->part_end = limit;
	hit->lf_count = lfs;
}

/*
 * mime_find_boundary - scan the lines from pos (a line start) to limit
 * for a boundary line of the chain bnd.
 */
static void
mime_find_boundary(const struct mime_message *msg,
    const struct mime_bnd *bnd, size_t pos, size_t limit,
    struct mime_hit *hit)
{
	const char *d = msg->data, *lf;
	size_t ls = pos, le, lfs = 0;

	if (bnd == NULL) {
		mime_hit_limit(hit, limit, mime_count_lf(d + pos, limit - pos));
		return;
	}
	while (ls < limit) {
		lf = memchr(d + ls, '\n', limit - ls);
		le = lf == NULL ? limit : (size_t)(lf - d) + 1;
		if ((hit->bnd = mime_boundary_line(d, ls, le, bnd,
		    &hit->close)) != NULL) {
			mime_hit_at(d, pos, ls, le, lfs, hit);
			return;
		}
		if (lf != NULL)
			lfs++;
		ls = le;
	}
	mime_hit_limit(hit, limit, lfs);
}

/*
 * mime_scan_header - the size of the header block at start: up to and
 * including the empty line, or up to a boundary line of bnd (then hit
 * says where the part ends), or up to limit.
 */
static size_t
mime_scan_header(const struct mime_message *msg, const struct mime_bnd *bnd,
    size_t start, size_t limit, struct mime_hit *hit)
{
	const char *d = msg->data, *lf;
	size_t ls = start, le, content;

	hit->bnd = NULL;
	while (ls < limit) {
		lf = memchr(d + ls, '\n', limit - ls);
		le = lf == NULL ? limit : (size_t)(lf - d) + 1;
		if (lf != NULL) {
			content = le - 1 - ls;
			if (content > 0 && d[le - 2] == '\r')
				content--;
			if (content == 0)
				return le - start;
		}
		if (bnd != NULL && (hit->bnd = mime_boundary_line(d, ls, le,
		    bnd, &hit->close)) != NULL) {
			mime_hit_at(d, start, ls, le, 0, hit);
			return hit->part_end - start;
		}
		ls = le;
	}
	return limit - start;
}

/*
 * mime_new_part - a zeroed part appended after prev (or as the first
 * child of parent); NULL at the part limit.
 */
static struct mime_part *
mime_new_part(struct mime_message *msg, struct mime_part *parent,
    struct mime_part *prev)
{
	struct mime_part *part;

	if (msg->part_count >= msg->limits.max_parts) {
		msg->overflow = true;
		return NULL;
	}
	part = mime_alloc(msg, sizeof(*part));
	msg->part_count++;
	part->parent = parent;
	if (parent != NULL) {
		part->depth = parent->depth + 1;
		if (prev != NULL)
			prev->next = part;
		else
			parent->children = part;
		parent->child_count++;
	}
	return part;
}

static void mime_parse_part(struct mime_message *, struct mime_part *,
    size_t, size_t, const struct mime_bnd *, bool, struct mime_hit *);

/*
 * mime_parse_multipart - parse the body parts of part, which lie between
 * lines of its boundary; hit gets where the multipart ends.
 */
static void
mime_parse_multipart(struct mime_message *msg, struct mime_part *part,
    const struct mime_bnd *bnd, const char *boundary, size_t limit,
    struct mime_hit *hit)
{
	struct mime_bnd own = { boundary, strlen(boundary), bnd };
	struct mime_part *child, *prev = NULL;
	bool is_digest;

	is_digest = strcasecmp(part->subtype, "digest") == 0;
	/* The preamble. */
	mime_find_boundary(msg, &own, part->body_offset, limit, hit);
	while (hit->bnd == &own && !hit->close) {
		child = mime_new_part(msg, part, prev);
		if (child == NULL) {
			/* Too many parts: the rest is opaque. */
			part->flags |= MIME_PART_OVERFLOW;
			mime_find_boundary(msg, bnd, hit->line_end, limit, hit);
			return;
		}
		prev = child;
		mime_parse_part(msg, child, hit->line_end, limit, &own,
		    is_digest, hit);
	}
	if (hit->bnd == &own) {
		/* The epilogue runs to an outer boundary. */
		mime_find_boundary(msg, bnd, hit->line_end, limit, hit);
	} else {
		part->flags |= MIME_PART_NO_END;
	}
}

/*
 * mime_parse_part - parse the part that starts at start and ends at the
 * first boundary line of bnd or at limit: header, Content-* fields, then
 * its children. digest_default: a missing type means message/rfc822 (a
 * body part of multipart/digest). hit gets where the part ended.
 */
static void
mime_parse_part(struct mime_message *msg, struct mime_part *part,
    size_t start, size_t limit, const struct mime_bnd *bnd,
    bool digest_default, struct mime_hit *hit)
{
	const char *boundary = NULL;
	struct mime_part *child;
	bool can_nest, cut, opaque = true;

	part->hdr_offset = start;
	part->hdr_size = mime_scan_header(msg, bnd, start, limit, hit);
	part->body_offset = start + part->hdr_size;
	cut = hit->bnd != NULL;
	mime_parse_header(msg, part);

	if (part->type == NULL && digest_default) {
		part->type = "message";
		part->subtype = "rfc822";
	}
	can_nest = part->depth < msg->limits.max_depth;
	if (part->type == NULL || strcasecmp(part->type, "text") == 0) {
		part->flags |= MIME_PART_TEXT;
	} else if (strcasecmp(part->type, "multipart") == 0) {
		part->flags |= MIME_PART_MULTIPART;
		boundary = mime_part_param(part, "boundary", false);
		if (boundary != NULL && (*boundary == '\0' ||
		    strlen(boundary) > MIME_BOUNDARY_MAX))
			boundary = NULL;
		if (boundary != NULL && !cut) {
			if (can_nest) {
				mime_parse_multipart(msg, part, bnd, boundary,
				    limit, hit);
				opaque = false;
			} else {
				part->flags |= MIME_PART_OVERFLOW;
				msg->overflow = true;
			}
		}
	} else if (strcasecmp(part->type, "message") == 0 &&
	    strcasecmp(part->subtype, "rfc822") == 0 && !cut &&
	    (part->encoding == NULL ||
	    strcasecmp(part->encoding, "7bit") == 0 ||
	    strcasecmp(part->encoding, "8bit") == 0 ||
	    strcasecmp(part->encoding, "binary") == 0)) {
		/* An encoded message is opaque (as in Dovecot). */
		if (!can_nest) {
			part->flags |= MIME_PART_OVERFLOW;
			msg->overflow = true;
		} else if ((child = mime_new_part(msg, part, NULL)) == NULL) {
			part->flags |= MIME_PART_OVERFLOW;
		} else {
			part->flags |= MIME_PART_MESSAGE;
			mime_parse_part(msg, child, part->body_offset, limit,
			    bnd, false, hit);
			opaque = false;
		}
	}
	if (cut) {
		/* A boundary ended the header: there is no body. */
		part->body_size = 0;
		part->body_lines = 0;
		return;
	}
	if (opaque) {
		mime_find_boundary(msg, bnd, part->body_offset, limit, hit);
		part->body_size = hit->part_end - part->body_offset;
		part->body_lines = hit->lf_count;
		return;
	}
	part->body_size = hit->part_end - part->body_offset;
	part->body_lines = mime_count_lf(msg->data + part->body_offset,
	    part->body_size);
}

/* ------------------------------------------------------------ API */

/* mime_limits_default - the default limits */
void
mime_limits_default(struct mime_limits *limits)
{
	limits->max_depth = MIME_DEFAULT_MAX_DEPTH;
	limits->max_parts = MIME_DEFAULT_MAX_PARTS;
	limits->max_header_size = MIME_DEFAULT_MAX_HEADER_SIZE;
}

/* mime_parse - parse a whole message */
struct mime_message *
mime_parse(const char *p, size_t n, const struct mime_limits *limits)
{
	struct mime_message *msg = xmalloc(sizeof(*msg));
	struct mime_hit hit;

	if (!mime_token_chars_ready)
		mime_token_init();

	msg->data = p;
	msg->size = n;
	if (limits != NULL)
		msg->limits = *limits;
	else
		mime_limits_default(&msg->limits);
	if (msg->limits.max_depth > MIME_DEPTH_CAP)
		msg->limits.max_depth = MIME_DEPTH_CAP;
	if (msg->limits.max_parts == 0)
		msg->limits.max_parts = 1;	/* the root always exists */
	msg->scratch = str_new(256, 0);
	msg->scratch2 = str_new(64, 0);
	msg->root = mime_new_part(msg, NULL, NULL);
	mime_parse_part(msg, msg->root, 0, n, NULL, false, &hit);
	str_free(&msg->scratch);
	str_free(&msg->scratch2);
	return msg;
}

/* mime_field_parse - see mime.h */
struct mime_message *
mime_field_parse(const char *p, size_t n, bool content_type)
{
	struct mime_message *msg = xmalloc(sizeof(*msg));
	struct mime_raw_param raw[MIME_MAX_PARAMS];

	if (!mime_token_chars_ready)
		mime_token_init();
	/* The value is copied into the arena: keep no pointer to it. */
	msg->data = "";
	msg->size = 0;
	mime_limits_default(&msg->limits);
	msg->scratch = str_new(256, 0);
	msg->scratch2 = str_new(64, 0);
	msg->root = mime_new_part(msg, NULL, NULL);
	if (content_type)
		mime_parse_content_type(msg, msg->root, p, n, raw);
	else
		mime_parse_disposition(msg, msg->root, p, n, raw);
	str_free(&msg->scratch);
	str_free(&msg->scratch2);
	return msg;
}

/* mime_message_free - free the message and its arena */
void
mime_message_free(struct mime_message **msgp)
{
	struct mime_message *msg = *msgp;
	struct mime_arena_block *b, *next;

	if (msg == NULL)
		return;
	for (b = msg->arena; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(msg);
	*msgp = NULL;
}

/* mime_message_root - the root part */
const struct mime_part *
mime_message_root(const struct mime_message *msg)
{
	return msg->root;
}

/* mime_message_data - the borrowed input and its size */
const char *
mime_message_data(const struct mime_message *msg, size_t *size_r)
{
	*size_r = msg->size;
	return msg->data;
}

/* mime_message_part_count - parts in the tree */
unsigned int
mime_message_part_count(const struct mime_message *msg)
{
	return msg->part_count;
}

/* mime_message_overflow - whether a limit stopped part of the parse */
bool
mime_message_overflow(const struct mime_message *msg)
{
	return msg->overflow;
}

/* mime_param_lookup - a parameter's value in a list, or NULL */
static const char *
mime_param_lookup(const struct mime_param *params, unsigned int count,
    const char *name, bool decoded)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		if (strcasecmp(params[i].name, name) == 0)
			return decoded ? params[i].decoded : params[i].value;
	}
	return NULL;
}

/* mime_part_param - a Content-Type parameter */
const char *
mime_part_param(const struct mime_part *part, const char *name, bool decoded)
{
	return mime_param_lookup(part->params, part->param_count, name,
	    decoded);
}

/* mime_part_disposition_param - a Content-Disposition parameter */
const char *
mime_part_disposition_param(const struct mime_part *part, const char *name,
    bool decoded)
{
	return mime_param_lookup(part->disposition_params,
	    part->disposition_param_count, name, decoded);
}

/* mime_part_is - compare type and subtype, with the text/plain default */
bool
mime_part_is(const struct mime_part *part, const char *type,
    const char *subtype)
{
	const char *t = part->type != NULL ? part->type : "text";
	const char *st = part->subtype != NULL ? part->subtype : "plain";

	return strcasecmp(t, type) == 0 &&
	    (subtype == NULL || strcasecmp(st, subtype) == 0);
}

/* mime_part_child - the n-th (1-based) child, or NULL */
static const struct mime_part *
mime_part_child(const struct mime_part *part, unsigned long n)
{
	const struct mime_part *c = part->children;

	for (; c != NULL && n > 1; n--)
		c = c->next;
	return n == 1 ? c : NULL;
}

/*
 * mime_part_walk - follow the dotted numbers at p[*ip..n) from the root.
 * Stops after the last number that names a part; *ip is then at the end,
 * or at the '.' before a keyword or a number that names nothing.
 */
static const struct mime_part *
mime_part_walk(const struct mime_message *msg, const char *p, size_t n,
    size_t *ip)
{
	const struct mime_part *ctx = msg->root, *cur = NULL;
	size_t i = *ip, j;
	unsigned long num;
	bool fresh = true;	/* ctx is a message: "1" may name its body */

	for (;;) {
		for (j = i; j < n && p[j] >= '0' && p[j] <= '9'; j++)
			;
		if (!str_to_ulong(p + i, j - i, 1000000, &num) || num == 0)
			return NULL;
		if ((ctx->flags & MIME_PART_MULTIPART) != 0)
			cur = mime_part_child(ctx, num);
		else if (fresh && num == 1)
			cur = ctx;
		else
			cur = NULL;
		if (cur == NULL)
			return NULL;
		i = j;
		if (i + 1 >= n || p[i] != '.' || p[i + 1] < '0' ||
		    p[i + 1] > '9')
			break;
		/* Another number: it names a part inside cur. */
		if ((cur->flags & MIME_PART_MESSAGE) != 0) {
			ctx = cur->children;
			fresh = true;
		} else if ((cur->flags & MIME_PART_MULTIPART) != 0) {
			ctx = cur;
			fresh = false;
		} else {
			return NULL;
		}
		i++;
	}
	*ip = i;
	return cur;
}

/* mime_part_find - the part for a dotted number */
const struct mime_part *
mime_part_find(const struct mime_message *msg, const char *p, size_t n)
{
	const struct mime_part *part;
	size_t i = 0;

	if (n == 0 || p[n - 1] == '.')
		return NULL;
	part = mime_part_walk(msg, p, n, &i);
	return i == n ? part : NULL;
}

/* mime_section_keyword - whether p/n is kw, case-insensitively */
static bool
mime_section_keyword(const char *p, size_t n, const char *kw)
{
	return n == strlen(kw) && strncasecmp(p, kw, n) == 0;
}

/* mime_section_find - resolve an IMAP section spec */
int
mime_section_find(const struct mime_message *msg, const char *p, size_t n,
    struct mime_section *sec, const char **error_r)
{
	const struct mime_part *part = msg->root, *target;
	size_t i = 0;
	bool numbered;

	memset(sec, 0, sizeof(*sec));
	numbered = n > 0 && p[0] >= '0' && p[0] <= '9';
	if (numbered) {
		/* Part numbers, then maybe ".KEYWORD". */
		if (p[n - 1] == '.') {
			*error_r = "Invalid section";
			return -1;
		}
		part = mime_part_walk(msg, p, n, &i);
		if (part == NULL) {
			*error_r = "No such part";
			return -1;
		}
		if (i < n) {
			if (p[i] != '.' || i + 1 == n) {
				*error_r = "Invalid section";
				return -1;
			}
			i++;
		}
	}
	sec->part = part;
	if (i == n) {
		if (!numbered) {
			sec->text = MIME_SECTION_BODY;
			sec->offset = 0;
			sec->size = msg->size;
			return 0;
		}
		sec->text = MIME_SECTION_BODY;
		sec->offset = part->body_offset;
		sec->size = part->body_size;
		return 0;
	}
	p += i;
	n -= i;
	if (numbered && mime_section_keyword(p, n, "MIME")) {
		sec->text = MIME_SECTION_MIME;
		sec->offset = part->hdr_offset;
		sec->size = part->hdr_size;
		return 0;
	}
	target = part;
	if (numbered) {
		if ((part->flags & MIME_PART_MESSAGE) == 0) {
			*error_r = "Part is not a message/rfc822";
			return -1;
		}
		target = part->children;
	}
	if (mime_section_keyword(p, n, "TEXT")) {
		sec->part = target;
		sec->text = MIME_SECTION_TEXT;
		sec->offset = target->body_offset;
		sec->size = target->body_size;
		return 0;
	}
	if (mime_section_keyword(p, n, "HEADER") ||
	    mime_section_keyword(p, n, "HEADER.FIELDS") ||
	    mime_section_keyword(p, n, "HEADER.FIELDS.NOT")) {
		sec->part = target;
		sec->text = MIME_SECTION_HEADER;
		sec->offset = target->hdr_offset;
		sec->size = target->hdr_size;
		return 0;
	}
	*error_r = "Invalid section";
	return -1;
}
