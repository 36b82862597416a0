/* SPDX-License-Identifier: MIT */
/*
 * log - the one logging and error API
 *
 * Lines go to syslog (facility mail by default), to a log file (each line
 * one O_APPEND write, so several processes can share it), or to stderr.
 * Every line is "syslog_name/program[pid]: [level: ]ID: text": ID is the
 * queue ID or session ID of the log_ctx, or absent for process-level lines
 * (ctx NULL or ctx->id NULL). Never format an ID into the text yourself:
 * operators grep one ID across all daemons.
 *
 * Levels (Postfix meanings): info - normal events; warning - something odd
 * while work goes on; error - a failed operation; fatal - the environment or
 * configuration stops us: exit(1) after flushing, master restarts us with
 * backoff; panic - our own bug: abort() for a core, no cleanup.
 *
 * %m expands to strerror(errno) as of the call. Untrusted text must be
 * escaped and capped with mem_printable() before it is logged.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "macros.h"

struct log_ctx {
	const char *id;		/* queue ID, session ID, or NULL (borrowed) */
};

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
	LOG_LEVEL_PANIC,
};

/*
 * log_init - name the process ("smtpd"); logs go to stderr until a target
 * is opened. syslog_name (Postfix's) prefixes it: "postern/smtpd".
 */
void log_init(const char *progname);
void log_set_syslog_name(const char *syslog_name);
/* log_open_syslog - send lines to syslog; facility name such as "mail" */
int log_open_syslog(const char *facility);
/* log_open_file - append lines to path ("-" or "/dev/stderr" = stderr); -1 on error */
int log_open_file(const char *path);
/* log_set_debug - enable debug-level lines */
void log_set_debug(bool on);
bool log_debug_enabled(void);
/* log_progname - the name given to log_init */
const char *log_progname(void);
/*
 * log_fatal_hook - called once by log_fatal before exit (e.g. to remove a
 * pid file); must not log at fatal level itself.
 */
void log_set_fatal_hook(void (*hook)(void));

void log_msg(enum log_level level, const struct log_ctx *ctx,
    const char *fmt, ...) PRINTF_LIKE(3, 4);
void log_vmsg(enum log_level level, const struct log_ctx *ctx,
    const char *fmt, va_list ap) PRINTF_LIKE(3, 0);

#define log_debug(ctx, ...) \
	do { if (log_debug_enabled()) log_msg(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__); } while (0)
void log_info(const struct log_ctx *ctx, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_warn(const struct log_ctx *ctx, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_error(const struct log_ctx *ctx, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_fatal(const struct log_ctx *ctx, const char *fmt, ...) PRINTF_LIKE(2, 3) NORETURN;
void log_panic(const struct log_ctx *ctx, const char *fmt, ...) PRINTF_LIKE(2, 3) NORETURN;

#endif
