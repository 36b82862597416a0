/* SPDX-License-Identifier: MIT */
/*
 * str - length-tracked, binary-safe, growable strings with a hard maximum
 *
 * DESCRIPTION
 *	See str.h. The buffer always has cap + 1 bytes so that a NUL can
 *	follow the data. Growth doubles, clamped to the maximum, so appends
 *	are amortised O(1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "str.h"

/* str_new - make an empty string */
struct str *
str_new(size_t size, size_t max)
{
	struct str *s = xmalloc(sizeof(*s));

	if (size == 0)
		size = 16;
	if (max != 0 && size > max)
		size = max;
	s->data = xmalloc(size + 1);
	s->cap = size;
	s->max = max;
	return s;
}

/* str_new_cstr - make a string from a C string */
struct str *
str_new_cstr(const char *cs)
{
	size_t n = strlen(cs);
	struct str *s = str_new(n, 0);

	(void)str_append(s, cs, n);
	return s;
}

/* str_free - release */
void
str_free(struct str **sp)
{
	if (*sp == NULL)
		return;
	free((*sp)->data);
	free(*sp);
	*sp = NULL;
}

/* str_grow - ensure room for n more bytes; false (E2BIG) past the maximum */
static bool
str_grow(struct str *s, size_t n)
{
	size_t need, cap;

	if (n > SIZE_MAX - 1 - s->len) {
		errno = E2BIG;
		return false;
	}
	need = s->len + n;
	if (s->max != 0 && need > s->max) {
		errno = E2BIG;
		return false;
	}
	if (need <= s->cap)
		return true;
	cap = s->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 - 1 ? need : cap * 2;
	if (s->max != 0 && cap > s->max)
		cap = s->max;
	s->data = xrealloc(s->data, cap + 1);
	s->cap = cap;
	return true;
}

/* str_set_max - change the limit */
int
str_set_max(struct str *s, size_t max)
{
	if (max != 0 && s->len > max) {
		errno = E2BIG;
		return -1;
	}
	s->max = max;
	return 0;
}

/* str_append - append bytes */
int
str_append(struct str *s, const void *p, size_t n)
{
	if (!str_grow(s, n))
		return -1;
	if (n > 0)
		memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
	return 0;
}

int
str_append_cstr(struct str *s, const char *cs)
{
	return str_append(s, cs, strlen(cs));
}

int
str_append_c(struct str *s, char c)
{
	return str_append(s, &c, 1);
}

int
str_append_str(struct str *s, const struct str *t)
{
	return str_append(s, t->data, t->len);
}

/* str_vprintf - append formatted text */
int
str_vprintf(struct str *s, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room = s->cap - s->len;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(s->data + s->len, room + 1, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !str_grow(s, (size_t)n)) {
		s->data[s->len] = '\0';
		return -1;
	}
	if ((size_t)n > room) {
		va_copy(ap2, ap);
		(void)vsnprintf(s->data + s->len, s->cap - s->len + 1, fmt, ap2);
		va_end(ap2);
	}
	s->len += (size_t)n;
	return 0;
}

int
str_printf(struct str *s, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = str_vprintf(s, fmt, ap);
	va_end(ap);
	return ret;
}

/* str_set - replace contents */
int
str_set(struct str *s, const void *p, size_t n)
{
	if (s->max != 0 && n > s->max) {
		errno = E2BIG;
		return -1;
	}
	str_clear(s);
	return str_append(s, p, n);
}

int
str_set_cstr(struct str *s, const char *cs)
{
	return str_set(s, cs, strlen(cs));
}

/* str_reserve - room for a direct write */
char *
str_reserve(struct str *s, size_t n)
{
	if (!str_grow(s, n))
		return NULL;
	return s->data + s->len;
}

/* str_commit - count bytes written after str_reserve */
void
str_commit(struct str *s, size_t n)
{
	ASSERT(n <= s->cap - s->len);
	s->len += n;
	s->data[s->len] = '\0';
}

void
str_truncate(struct str *s, size_t len)
{
	if (len < s->len) {
		s->len = len;
		s->data[len] = '\0';
	}
}

void
str_clear(struct str *s)
{
	s->len = 0;
	s->data[0] = '\0';
}

/* str_delete_head - drop the first n bytes */
void
str_delete_head(struct str *s, size_t n)
{
	ASSERT(n <= s->len);
	memmove(s->data, s->data + n, s->len - n);
	s->len -= n;
	s->data[s->len] = '\0';
}

bool
str_equals_cstr(const struct str *s, const char *cs)
{
	size_t n = strlen(cs);

	return n == s->len && memcmp(s->data, cs, n) == 0;
}

void
str_chomp(struct str *s)
{
	if (s->len > 0 && s->data[s->len - 1] == '\n')
		s->len--;
	if (s->len > 0 && s->data[s->len - 1] == '\r')
		s->len--;
	s->data[s->len] = '\0';
}

/* str_steal - hand the buffer to the caller */
char *
str_steal(struct str **sp)
{
	char *p = (*sp)->data;

	free(*sp);
	*sp = NULL;
	return p;
}

/* mem_printable - escape untrusted bytes for logging */
void
mem_printable(struct str *out, const void *p, size_t n, size_t limit)
{
	const unsigned char *cp = p;
	size_t start = str_len(out), i;
	char buf[8];

	for (i = 0; i < n; i++) {
		if (str_len(out) - start >= limit) {
			(void)str_append_cstr(out, "...");
			return;
		}
		if (cp[i] >= 0x20 && cp[i] < 0x7f && cp[i] != '\\') {
			if (str_append_c(out, (char)cp[i]) < 0)
				return;
		} else {
			snprintf(buf, sizeof(buf), "\\%03o", cp[i]);
			if (str_append_cstr(out, buf) < 0)
				return;
		}
	}
}

size_t
pst_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n >= size ? size - 1 : n;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

size_t
pst_strlcat(char *dst, const char *src, size_t size)
{
	size_t d = strnlen(dst, size);

	if (d == size)
		return size + strlen(src);
	return d + pst_strlcpy(dst + d, src, size - d);
}

/* str_to_ulong - strict decimal parse */
bool
str_to_ulong(const char *p, size_t n, unsigned long max, unsigned long *value_r)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (p[i] < '0' || p[i] > '9')
			return false;
		d = (unsigned)(p[i] - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*value_r = v;
	return true;
}
