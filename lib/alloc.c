/* SPDX-License-Identifier: MIT */
/*
 * alloc - memory allocation that never returns NULL
 *
 * DESCRIPTION
 *	See alloc.h. Exhaustion is an environment problem, not a bug, so it
 *	is log_fatal() (exit, master restarts us with backoff), not a panic.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

static void
oom(size_t size)
{
	log_fatal(NULL, "out of memory allocating %zu bytes", size);
}

/* xmalloc - allocate zeroed memory */
void *
xmalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

/* xcalloc - allocate a zeroed array */
void *
xcalloc(size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		log_fatal(NULL, "allocation size overflow: %zu * %zu", nmemb, size);
	return xmalloc(nmemb * size);
}

/* xrealloc - resize */
void *
xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

/* xreallocarray - resize an array, checking the product */
void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		log_fatal(NULL, "allocation size overflow: %zu * %zu", nmemb, size);
	return xrealloc(ptr, nmemb * size);
}

/* xstrdup - copy a string */
char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

/* xstrndup - copy at most n bytes of a string */
char *
xstrndup(const char *s, size_t n)
{
	return xmemdup(s, strnlen(s, n));
}

/* xmemdup - copy bytes and NUL-terminate the copy */
void *
xmemdup(const void *p, size_t n)
{
	char *q;

	if (n == SIZE_MAX)
		log_fatal(NULL, "allocation size overflow");
	q = xmalloc(n + 1);
	if (n > 0)
		memcpy(q, p, n);
	return q;
}

/* xasprintf - allocate a formatted string */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return s;
}
