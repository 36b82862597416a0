/* SPDX-License-Identifier: MIT */
/*
 * log - the one logging and error API
 *
 * DESCRIPTION
 *	See log.h. A line is formatted once into a stack buffer (long lines
 *	are cut at LOG_LINE_MAX with "..."), then written with one write(2)
 *	so that lines from many processes sharing one O_APPEND file never
 *	interleave. Nothing here allocates: log_fatal() must work when
 *	memory is exhausted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 4096

static char log_prog[64] = "postern";
static char log_sysname[64] = "postern";
static char log_ident[130] = "postern";
static int log_fd = STDERR_FILENO;
static bool log_syslog;
static bool log_debug_on;
static void (*log_fatal_cb)(void);
static char log_host[256];

static const char *const log_level_names[] = {
	"debug: ", "", "warning: ", "error: ", "fatal: ", "panic: ",
};

static const int log_syslog_prio[] = {
	LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT,
};

static void
log_make_ident(void)
{
	if (strcmp(log_sysname, log_prog) == 0)
		snprintf(log_ident, sizeof(log_ident), "%s", log_prog);
	else
		snprintf(log_ident, sizeof(log_ident), "%s/%s", log_sysname, log_prog);
}

/* log_init - name this process */
void
log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	snprintf(log_prog, sizeof(log_prog), "%s", slash ? slash + 1 : progname);
	if (gethostname(log_host, sizeof(log_host) - 1) < 0)
		snprintf(log_host, sizeof(log_host), "localhost");
	log_make_ident();
}

void
log_set_syslog_name(const char *name)
{
	snprintf(log_sysname, sizeof(log_sysname), "%s", name);
	log_make_ident();
	if (log_syslog) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

const char *
log_progname(void)
{
	return log_prog;
}

static const struct {
	const char *name;
	int facility;
} log_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

/* log_open_syslog - log to syslog with the named facility */
int
log_open_syslog(const char *facility)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(log_facilities); i++) {
		if (strcasecmp(facility, log_facilities[i].name) == 0) {
			openlog(log_ident, LOG_PID | LOG_NDELAY,
			    log_facilities[i].facility);
			log_syslog = true;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

/* log_open_file - log by appending to a file */
int
log_open_file(const char *path)
{
	int fd;

	if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stderr") == 0) {
		fd = STDERR_FILENO;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
	}
	if (log_fd != STDERR_FILENO && log_fd != fd)
		(void)close(log_fd);
	log_fd = fd;
	if (log_syslog) {
		closelog();
		log_syslog = false;
	}
	return 0;
}

void
log_set_debug(bool on)
{
	log_debug_on = on;
}

bool
log_debug_enabled(void)
{
	return log_debug_on;
}

void
log_set_fatal_hook(void (*hook)(void))
{
	log_fatal_cb = hook;
}

/* log_vmsg - format and emit one line */
void
log_vmsg(enum log_level level, const struct log_ctx *ctx, const char *fmt,
    va_list ap)
{
	char line[LOG_LINE_MAX + 2];
	size_t len = 0;
	int saved = errno, n;

	if (level == LOG_LEVEL_DEBUG && !log_debug_on)
		return;
	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		len = strftime(line, 64, "%b %e %H:%M:%S", &tm);
		n = snprintf(line + len, LOG_LINE_MAX - len, " %s %s[%ld]: ",
		    log_host, log_ident, (long)getpid());
		if (n > 0)
			len += (size_t)n;
	}
	n = snprintf(line + len, LOG_LINE_MAX - len, "%s%s%s",
	    log_level_names[level],
	    ctx != NULL && ctx->id != NULL ? ctx->id : "",
	    ctx != NULL && ctx->id != NULL ? ": " : "");
	if (n > 0)
		len += (size_t)n;
	if (len < LOG_LINE_MAX) {
		errno = saved;
		n = vsnprintf(line + len, LOG_LINE_MAX - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (len >= LOG_LINE_MAX) {
		len = LOG_LINE_MAX - 4;
		memcpy(line + len, "...", 3);
		len += 3;
	}
	if (log_syslog) {
		line[len] = '\0';
		syslog(log_syslog_prio[level], "%s", line);
	} else {
		line[len++] = '\n';
		while (write(log_fd, line, len) < 0 && errno == EINTR)
			;
	}
	errno = saved;
}

void
log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, ctx, fmt, ap);
	va_end(ap);
}

void
log_info(const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_INFO, ctx, fmt, ap);
	va_end(ap);
}

void
log_warn(const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_WARN, ctx, fmt, ap);
	va_end(ap);
}

void
log_error(const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, ctx, fmt, ap);
	va_end(ap);
}

/* log_fatal - environment or config stops us: log, clean up, exit(1) */
void
log_fatal(const struct log_ctx *ctx, const char *fmt, ...)
{
	static int dying;
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_FATAL, ctx, fmt, ap);
	va_end(ap);
	if (dying++ == 0 && log_fatal_cb != NULL)
		log_fatal_cb();
	exit(1);
}

/* log_panic - our own bug: log and abort for a core */
void
log_panic(const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_PANIC, ctx, fmt, ap);
	va_end(ap);
	abort();
}

/* assert_failed - ASSERT() landed here */
void
assert_failed(const char *expr, const char *file, int line)
{
	log_panic(NULL, "%s:%d: assertion failed: %s", file, line, expr);
}
