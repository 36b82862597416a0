/* SPDX-License-Identifier: MIT */
/*
 * alloc - memory allocation that never returns NULL
 *
 * Every function here either succeeds or ends the process with log_fatal()
 * ("out of memory"): callers never check for NULL. Sizes are checked for
 * overflow before multiplying. xmalloc() and xcalloc() return zeroed memory.
 * Everything returned is owned by the caller and released with free().
 */
#ifndef POSTERN_ALLOC_H
#define POSTERN_ALLOC_H

#include <stddef.h>

#include "macros.h"

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
/* xrealloc - like realloc(3); does not zero the new tail */
void *xrealloc(void *ptr, size_t size);
/* xreallocarray - realloc for nmemb * size, checking the product */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* xstrndup - copy at most n bytes of s and NUL-terminate */
char *xstrndup(const char *s, size_t n);
/* xmemdup - copy n bytes, plus a NUL after them that is not counted */
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* XFREE - free and NULL the pointer; evaluates p twice */
#define XFREE(p) do { free(p); (p) = NULL; } while (0)

#endif
