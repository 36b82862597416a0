/* SPDX-License-Identifier: MIT */
/*
 * header - RFC 5322 header blocks: find the end, split fields, unfold, look up
 *
 * DESCRIPTION
 *	See header.h. Everything works in place on (pointer, length) with
 *	memchr() to find line ends, so a header costs one pass and no
 *	allocation. A line is the bytes up to and including the next LF (or
 *	up to the end of the input); its "content" drops the LF and one CR
 *	before it. An empty line is one whose content is empty.
 *
 * SEE ALSO
 *	RFC 5322 section 2.2 (header fields) and 3.2.2 (folding).
 */
#include <string.h>

#include "header.h"
#include "str.h"

/* header_line_end - offset just past the line that starts at pos */
static size_t
header_line_end(const char *p, size_t n, size_t pos)
{
	const char *lf = memchr(p + pos, '\n', n - pos);

	return lf == NULL ? n : (size_t)(lf - p) + 1;
}

/* header_line_empty - whether the line [pos, end) has empty content */
static bool
header_line_empty(const char *p, size_t pos, size_t end)
{
	size_t len = end - pos;

	if (len == 0 || p[end - 1] != '\n')
		return false;
	len--;
	if (len > 0 && p[pos + len - 1] == '\r')
		len--;
	return len == 0;
}

/* header_block_size - size of the header block including its empty line */
size_t
header_block_size(const char *p, size_t n)
{
	size_t pos = 0, end;

	while (pos < n) {
		end = header_line_end(p, n, pos);
		if (header_line_empty(p, pos, end))
			return end;
		pos = end;
	}
	return n;
}

/* header_iter_init - start iterating the fields of p/n */
void
header_iter_init(struct header_iter *it, const char *p, size_t n)
{
	it->p = p;
	it->n = n;
	it->pos = 0;
}

/* header_iter_next - the next field, false at the end */
bool
header_iter_next(struct header_iter *it, struct header_field *f)
{
	const char *p = it->p, *colon;
	size_t n = it->n, start = it->pos, end, first_end, content_end, i;

	if (start >= n)
		return false;
	first_end = header_line_end(p, n, start);
	if (header_line_empty(p, start, first_end)) {
		it->pos = n;
		return false;
	}
	/* Take in the continuation lines. */
	end = first_end;
	while (end < n && (p[end] == ' ' || p[end] == '\t'))
		end = header_line_end(p, n, end);
	it->pos = end;

	/* The field's content without its final EOL. */
	content_end = end;
	if (content_end > start && p[content_end - 1] == '\n') {
		content_end--;
		if (content_end > start && p[content_end - 1] == '\r')
			content_end--;
	}

	f->offset = start;
	f->size = end - start;
	f->name = p + start;
	colon = memchr(p + start, ':', first_end - start);
	if (colon == NULL) {
		i = first_end;
		if (i > start && p[i - 1] == '\n')
			i--;
		if (i > start && p[i - 1] == '\r')
			i--;
		f->name_len = i - start;
		f->value = p + content_end;
		f->value_len = 0;
		f->no_colon = true;
		return true;
	}
	i = (size_t)(colon - p);
	f->value = colon + 1;
	f->value_len = content_end - (i + 1);
	while (i > start && (p[i - 1] == ' ' || p[i - 1] == '\t'))
		i--;
	f->name_len = i - start;
	f->no_colon = false;
	return true;
}

/* header_name_is - case-insensitive name comparison */
bool
header_name_is(const struct header_field *f, const char *name)
{
	size_t len = strlen(name);

	return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

/* header_find - the first field with this name */
bool
header_find(const char *p, size_t n, const char *name, struct header_field *f)
{
	struct header_iter it;

	header_iter_init(&it, p, n);
	while (header_iter_next(&it, f)) {
		if (!f->no_colon && header_name_is(f, name))
			return true;
	}
	return false;
}

/* header_trim - drop leading and trailing white space and line ends */
void
header_trim(const char **pp, size_t *np)
{
	const char *p = *pp;
	size_t n = *np;

	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
	    p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	*pp = p;
	*np = n;
}

/* header_unfold - append p/n without fold line ends, trimmed */
int
header_unfold(const char *p, size_t n, struct str *out)
{
	size_t i, run;

	header_trim(&p, &n);
	for (i = 0; i < n; i += run) {
		if (p[i] == '\r' || p[i] == '\n') {
			run = 1;
			continue;
		}
		for (run = 1; i + run < n && p[i + run] != '\r' &&
		    p[i + run] != '\n'; run++)
			;
		if (str_append(out, p + i, run) < 0)
			return -1;
	}
	return 0;
}
