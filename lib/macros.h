/* SPDX-License-Identifier: MIT */
/*
 * macros - small compiler helpers used everywhere
 *
 * ASSERT() is never compiled out: a failed assertion is our own bug and
 * panics with file and line (see log.h).
 */
#ifndef POSTERN_MACROS_H
#define POSTERN_MACROS_H

#include <stddef.h>

#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))
#define WARN_UNUSED __attribute__((warn_unused_result))

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* MIN/MAX evaluate their arguments twice. */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

void assert_failed(const char *expr, const char *file, int line) NORETURN;

#define ASSERT(expr) \
	((expr) ? (void)0 : assert_failed(#expr, __FILE__, __LINE__))

#endif
