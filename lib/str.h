/* SPDX-License-Identifier: MIT */
/*
 * str - length-tracked, binary-safe, growable strings with a hard maximum
 *
 * A struct str holds len bytes of data (which may contain NUL) followed by
 * a NUL that is not counted, so str_c() can be handed to libc when the data
 * is known to be text. A str made with a maximum refuses to grow past it:
 * appends that would exceed it fail with -1 and errno E2BIG and leave the
 * string unchanged, so network input can never grow a buffer without
 * bound. A maximum of 0 means no limit.
 *
 * The fields are private: use the accessors. A pointer from str_c() or
 * str_data() stays valid until the next call that changes the string.
 * Allocation failure ends the process (alloc.h); no call here returns NULL.
 */
#ifndef POSTERN_STR_H
#define POSTERN_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "macros.h"

struct str {
	char *data;		/* private */
	size_t len;		/* private */
	size_t cap;		/* private: allocated, excluding the NUL */
	size_t max;		/* private: 0 = unlimited */
};

/* str_new - a new empty string with room for size bytes; max 0 = no limit */
struct str *str_new(size_t size, size_t max);
/* str_new_cstr - a new string holding a copy of s, no limit */
struct str *str_new_cstr(const char *s);
/* str_free - free *sp (NULL allowed) and set *sp to NULL */
void str_free(struct str **sp);

static inline const char *
str_c(const struct str *s)
{
	return s->data;
}

static inline char *
str_data(struct str *s)
{
	return s->data;
}

static inline size_t
str_len(const struct str *s)
{
	return s->len;
}

static inline size_t
str_max(const struct str *s)
{
	return s->max;
}

/* str_set_max - change the limit; fails (-1, E2BIG) if len already exceeds it */
int str_set_max(struct str *s, size_t max);

/*
 * The appending calls return 0, or -1 with errno E2BIG when the result
 * would exceed the maximum; on failure the string is unchanged.
 */
int str_append(struct str *s, const void *p, size_t n);
int str_append_cstr(struct str *s, const char *cs);
int str_append_c(struct str *s, char c);
int str_append_str(struct str *s, const struct str *t);
int str_printf(struct str *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
int str_vprintf(struct str *s, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);

/* str_set - replace the contents (same return as the appends) */
int str_set(struct str *s, const void *p, size_t n);
int str_set_cstr(struct str *s, const char *cs);

/* str_reserve - make room for n more bytes; returns the write pointer or NULL (E2BIG) */
char *str_reserve(struct str *s, size_t n);
/* str_commit - count n bytes written after str_reserve(); n <= reserved */
void str_commit(struct str *s, size_t n);

/* str_truncate - shorten to len bytes (no-op if already shorter) */
void str_truncate(struct str *s, size_t len);
/* str_clear - make empty, keep the allocation */
void str_clear(struct str *s);
/* str_delete_head - remove the first n bytes (n <= len) */
void str_delete_head(struct str *s, size_t n);

/* str_equals_cstr - exact, byte-wise comparison with a C string */
bool str_equals_cstr(const struct str *s, const char *cs);
/* str_chomp - remove a trailing CRLF or LF */
void str_chomp(struct str *s);

/* str_steal - take the buffer (NUL-terminated) and free the str; caller frees */
char *str_steal(struct str **sp);

/*
 * Helpers on (pointer, length) text, used by the parsers.
 * mem_printable - append p/n to out with control and non-ASCII bytes shown
 * as \ooo and the whole capped at limit bytes (for logging untrusted text).
 */
void mem_printable(struct str *out, const void *p, size_t n, size_t limit);

/* strlcpy/strlcat: glibc < 2.38 lacks them. Return strlen(src) (or total). */
size_t pst_strlcpy(char *dst, const char *src, size_t size);
size_t pst_strlcat(char *dst, const char *src, size_t size);

/*
 * str_to_ulong - parse all of p[0..n) as a decimal number <= max.
 * No sign, no space, no empty input. Returns false on any deviation.
 */
bool str_to_ulong(const char *p, size_t n, unsigned long max, unsigned long *value_r);

#endif
