/* SPDX-License-Identifier: MIT */
/*
 * master_conf - master.conf parsing: the services master runs
 *
 * DESCRIPTION
 *	See master_conf.h for the columns. The file is read whole (at most
 *	MASTER_CONF_FILE_MAX bytes) and split into logical lines as
 *	postern.conf is: LF or CRLF line ends; '#' lines and blank lines
 *	skipped anywhere; a line starting with white space continues the
 *	previous one. NUL bytes, other control characters except tab, and
 *	lines over MASTER_CONF_LINE_MAX bytes are errors. A logical line is
 *	split at white space into fields; there is no quoting.
 *
 *	Every field is checked here, so master never acts on a half-valid
 *	line:
 *	  - inet names are "port", "host:port" or "[v6addr]:port" with a
 *	    decimal port 1-65535; host is an IPv4 literal (inet_pton), a
 *	    bracketed IPv6 literal, or a host name of letters, digits, '-'
 *	    and '.' (resolved by master when it binds);
 *	  - unix and fifo names are [A-Za-z0-9._-], not "." or "..", at
 *	    most MASTER_CONF_NAME_MAX bytes (they become socket paths);
 *	  - user is "-" or [A-Za-z0-9._-] not starting with '-';
 *	  - wakeup is "-" or seconds, optionally followed by '?';
 *	  - maxproc is "-" or a number;
 *	  - the command is an absolute path, or a bare program name (no '/')
 *	    found in $daemon_directory; neither may contain a ".."
 *	    component;
 *	  - "-o" must be followed by name=value with a name from the
 *	    postern.conf table (config_params[]); the value is checked by
 *	    the service itself when it starts.
 *	A service defined twice (same name and type) is an error.
 *
 * ERRORS
 *	Problems are appended to the caller's errors string, one
 *	"FILE:LINE: text\n" each, and parsing goes on to find them all; any
 *	problem makes the result -1 with *conf_r NULL (master must not run
 *	half a config). Field text in messages is escaped and capped. Only
 *	memory exhaustion ends the process (alloc.h).
 *
 * SEE ALSO
 *	master.conf(5), master/
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "master_conf.h"
#include "str.h"

#define MASTER_CONF_FILE_MAX	(1024 * 1024)	/* bytes in the file */
#define MASTER_CONF_LINE_MAX	8192	/* bytes in a logical line */
#define MASTER_CONF_NAME_MAX	100	/* unix/fifo service names */
#define MASTER_CONF_USER_MAX	32	/* user names */
#define MASTER_CONF_WAKEUP_MAX	(7 * 86400)	/* seconds */
#define MASTER_CONF_MAXPROC_MAX	100000
#define MASTER_CONF_SHOW_MAX	64	/* bytes of a field in a message */
#define MASTER_CONF_FIELDS	8	/* columns before the arguments */

/* State of one parse. */
struct master_conf_parser {
	const char *filename;
	unsigned line;		/* logical line being parsed */
	struct str *errors;	/* may be NULL */
	unsigned nerrors;
	struct master_conf *conf;
	size_t cap;		/* allocated services */
};

/* A field of a logical line (points into the line). */
struct master_conf_field {
	const char *p;
	size_t n;
};

/* master_conf_error - record one "FILE:LINE: text" problem */
static void PRINTF_LIKE(2, 3)
master_conf_error(struct master_conf_parser *mp, const char *fmt, ...)
{
	va_list ap;

	mp->nerrors++;
	if (mp->errors == NULL)
		return;
	(void)str_printf(mp->errors, "%s:%u: ", mp->filename, mp->line);
	va_start(ap, fmt);
	(void)str_vprintf(mp->errors, fmt, ap);
	va_end(ap);
	(void)str_append_c(mp->errors, '\n');
}

/* master_conf_show - printable, capped copy of a field for a message */
static const char *
master_conf_show(struct str *buf, const struct master_conf_field *f)
{
	str_clear(buf);
	mem_printable(buf, f->p, f->n, MASTER_CONF_SHOW_MAX);
	return str_c(buf);
}

/* master_conf_field_is - does the field equal the C string s? */
static bool
master_conf_field_is(const struct master_conf_field *f, const char *s)
{
	return strlen(s) == f->n && memcmp(f->p, s, f->n) == 0;
}

/* master_conf_allowed - all of p[0..n) in [A-Za-z0-9._-]? */
static bool
master_conf_allowed(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			return false;
	}
	return true;
}

/* master_conf_hostname_ok - letters, digits and '-' in dot-separated labels */
static bool
master_conf_hostname_ok(const char *p, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '.') {
			/* No empty label; a trailing dot is allowed. */
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return p[n - 1] != '-';
}

/* master_conf_inet_name - split and check "port", "host:port", "[v6]:port" */
static bool
master_conf_inet_name(struct master_conf_parser *mp,
    const struct master_conf_field *f, struct master_service *svc,
    struct str *show)
{
	const char *p = f->p, *colon, *host = NULL;
	size_t n = f->n, host_len = 0;
	unsigned long port;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t i;
	bool digits_dots = true;

	if (n > 0 && p[0] == '[') {
		const char *close = memchr(p, ']', n);

		if (close == NULL || close + 1 == p + n || close[1] != ':') {
			master_conf_error(mp, "bad inet service \"%s\": want "
			    "[ipv6-address]:port", master_conf_show(show, f));
			return false;
		}
		host = p + 1;
		host_len = (size_t)(close - host);
		if (host_len == 0 || host_len >= sizeof(addr)) {
			master_conf_error(mp, "bad IPv6 address in \"%s\"",
			    master_conf_show(show, f));
			return false;
		}
		memcpy(addr, host, host_len);
		addr[host_len] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			master_conf_error(mp, "bad IPv6 address in \"%s\"",
			    master_conf_show(show, f));
			return false;
		}
		colon = close + 1;
	} else if ((colon = memrchr(p, ':', n)) != NULL) {
		host = p;
		host_len = (size_t)(colon - p);
		if (host_len == 0) {
			master_conf_error(mp, "bad inet service \"%s\": empty "
			    "host before ':'", master_conf_show(show, f));
			return false;
		}
		if (memchr(host, ':', host_len) != NULL) {
			master_conf_error(mp, "bad inet service \"%s\": write "
			    "an IPv6 address in brackets, as [::1]:25",
			    master_conf_show(show, f));
			return false;
		}
		for (i = 0; i < host_len; i++)
			if (host[i] != '.' && (host[i] < '0' || host[i] > '9'))
				digits_dots = false;
		if (digits_dots) {
			if (host_len >= sizeof(addr)) {
				master_conf_error(mp, "bad IPv4 address in "
				    "\"%s\"", master_conf_show(show, f));
				return false;
			}
			memcpy(addr, host, host_len);
			addr[host_len] = '\0';
			if (inet_pton(AF_INET, addr, bin) != 1) {
				master_conf_error(mp, "bad IPv4 address in "
				    "\"%s\"", master_conf_show(show, f));
				return false;
			}
		} else if (!master_conf_hostname_ok(host, host_len)) {
			master_conf_error(mp, "bad host name in \"%s\"",
			    master_conf_show(show, f));
			return false;
		}
	} else {
		colon = p - 1;	/* a bare port */
	}
	if (!str_to_ulong(colon + 1, (size_t)(p + n - colon - 1), 65535,
	    &port) || port == 0) {
		master_conf_error(mp, "bad port in inet service \"%s\": want "
		    "a number from 1 to 65535", master_conf_show(show, f));
		return false;
	}
	svc->port = (unsigned)port;
	svc->host = host != NULL ? xstrndup(host, host_len) : NULL;
	return true;
}

/* master_conf_yn - y, n or "-" (def); false if none of them */
static bool
master_conf_yn(const struct master_conf_field *f, bool def, bool *value_r)
{
	if (master_conf_field_is(f, "-"))
		*value_r = def;
	else if (master_conf_field_is(f, "y"))
		*value_r = true;
	else if (master_conf_field_is(f, "n"))
		*value_r = false;
	else
		return false;
	return true;
}

/* master_conf_path_ok - no "." or ".." component in p[0..n) */
static bool
master_conf_path_ok(const char *p, size_t n)
{
	size_t i = 0, start;

	while (i < n) {
		while (i < n && p[i] == '/')
			i++;
		start = i;
		while (i < n && p[i] != '/')
			i++;
		if ((i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
	}
	return true;
}

/* master_conf_command - check the program and the -o options */
static bool
master_conf_command(struct master_conf_parser *mp,
    const struct master_conf_field *fields, size_t nfields, struct str *show)
{
	const struct master_conf_field *prog = &fields[0];
	char name[128];
	const char *eq;
	size_t i, len;
	bool ok = true;

	if (prog->p[0] == '/') {
		if (!master_conf_path_ok(prog->p, prog->n) ||
		    prog->p[prog->n - 1] == '/') {
			master_conf_error(mp, "bad command path \"%s\": no "
			    "\".\" or \"..\" components, no trailing '/'",
			    master_conf_show(show, prog));
			ok = false;
		}
	} else if (!master_conf_allowed(prog->p, prog->n) ||
	    master_conf_field_is(prog, ".") || master_conf_field_is(prog, "..")) {
		master_conf_error(mp, "bad command \"%s\": want a program "
		    "name in $daemon_directory ([A-Za-z0-9._-]) or an "
		    "absolute path", master_conf_show(show, prog));
		ok = false;
	}
	for (i = 1; i < nfields; i++) {
		if (!master_conf_field_is(&fields[i], "-o"))
			continue;
		if (i + 1 == nfields) {
			master_conf_error(mp, "\"-o\" without name=value");
			return false;
		}
		i++;
		eq = memchr(fields[i].p, '=', fields[i].n);
		len = eq != NULL ? (size_t)(eq - fields[i].p) : 0;
		if (eq == NULL || len == 0 || len >= sizeof(name)) {
			master_conf_error(mp, "bad \"-o %s\": want -o name=value",
			    master_conf_show(show, &fields[i]));
			ok = false;
			continue;
		}
		memcpy(name, fields[i].p, len);
		name[len] = '\0';
		if (config_param_find(name) == NULL) {
			master_conf_error(mp, "\"-o %s\": unknown parameter name",
			    master_conf_show(show, &fields[i]));
			ok = false;
		}
	}
	return ok;
}

/* master_conf_service_free - free what one service owns (not the struct) */
static void
master_conf_service_free(struct master_service *svc)
{
	size_t i;

	free(svc->name);
	free(svc->host);
	free(svc->user);
	if (svc->argv != NULL)
		for (i = 0; i < svc->argc; i++)
			free(svc->argv[i]);
	free(svc->argv);
	free(svc->file);
	memset(svc, 0, sizeof(*svc));
}

/* master_conf_number - "-" (def) or a decimal number <= max */
static bool
master_conf_number(const struct master_conf_field *f, unsigned long max,
    long def, long *value_r)
{
	unsigned long v;

	if (master_conf_field_is(f, "-")) {
		*value_r = def;
		return true;
	}
	if (!str_to_ulong(f->p, f->n, max, &v))
		return false;
	*value_r = (long)v;
	return true;
}

/* master_conf_line - parse one logical line into a service */
static void
master_conf_line(struct master_conf_parser *mp, const char *p, size_t n)
{
	struct master_conf_field *fields;
	struct master_service svc;
	struct str *show = str_new(MASTER_CONF_SHOW_MAX + 8, 0);
	size_t nfields = 0, i, k;
	unsigned errors = mp->nerrors;
	long num;

	/* Every field is at least one byte plus a separator. */
	fields = xcalloc(n / 2 + 1, sizeof(*fields));
	for (i = 0; i < n;) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			break;
		fields[nfields].p = p + i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		fields[nfields].n = (size_t)(p + i - fields[nfields].p);
		nfields++;
	}
	memset(&svc, 0, sizeof(svc));
	if (nfields < MASTER_CONF_FIELDS) {
		master_conf_error(mp, "%zu field%s; want at least 8: service "
		    "type private user chroot wakeup maxproc command",
		    nfields, nfields == 1 ? "" : "s");
		goto done;
	}

	/* Column 2: type, needed to read column 1. */
	if (master_conf_field_is(&fields[1], "inet"))
		svc.type = MASTER_SERVICE_INET;
	else if (master_conf_field_is(&fields[1], "unix"))
		svc.type = MASTER_SERVICE_UNIX;
	else if (master_conf_field_is(&fields[1], "fifo"))
		svc.type = MASTER_SERVICE_FIFO;
	else {
		master_conf_error(mp, "bad service type \"%s\": want inet, "
		    "unix or fifo", master_conf_show(show, &fields[1]));
		goto done;
	}

	/* Column 1: service name. */
	svc.name = xstrndup(fields[0].p, fields[0].n);
	if (svc.type == MASTER_SERVICE_INET) {
		(void)master_conf_inet_name(mp, &fields[0], &svc, show);
	} else if (!master_conf_allowed(fields[0].p, fields[0].n) ||
	    fields[0].n > MASTER_CONF_NAME_MAX ||
	    master_conf_field_is(&fields[0], ".") ||
	    master_conf_field_is(&fields[0], "..")) {
		master_conf_error(mp, "bad %s service name \"%s\": want "
		    "[A-Za-z0-9._-], at most %d bytes",
		    master_service_type_name(svc.type),
		    master_conf_show(show, &fields[0]), MASTER_CONF_NAME_MAX);
	}

	/* Column 3: private. */
	if (!master_conf_yn(&fields[2], svc.type != MASTER_SERVICE_INET,
	    &svc.private_))
		master_conf_error(mp, "bad private field \"%s\": want y, n "
		    "or -", master_conf_show(show, &fields[2]));

	/* Column 4: user. */
	if (!master_conf_field_is(&fields[3], "-")) {
		if (!master_conf_allowed(fields[3].p, fields[3].n) ||
		    fields[3].p[0] == '-' || fields[3].n > MASTER_CONF_USER_MAX)
			master_conf_error(mp, "bad user \"%s\": want - or a "
			    "user name ([A-Za-z0-9._-])",
			    master_conf_show(show, &fields[3]));
		else
			svc.user = xstrndup(fields[3].p, fields[3].n);
	}

	/* Column 5: chroot. */
	if (!master_conf_yn(&fields[4], false, &svc.chroot))
		master_conf_error(mp, "bad chroot field \"%s\": want y, n "
		    "or -", master_conf_show(show, &fields[4]));

	/* Column 6: wakeup, with an optional '?'. */
	{
		struct master_conf_field w = fields[5];

		if (w.n > 1 && w.p[w.n - 1] == '?') {
			svc.wakeup_if_used = true;
			w.n--;
		}
		if (!master_conf_number(&w, MASTER_CONF_WAKEUP_MAX, 0, &num) ||
		    (svc.wakeup_if_used && num == 0)) {
			master_conf_error(mp, "bad wakeup field \"%s\": want - "
			    "or seconds (at most %d), optionally followed by ?",
			    master_conf_show(show, &fields[5]),
			    MASTER_CONF_WAKEUP_MAX);
			svc.wakeup_if_used = false;
		} else {
			svc.wakeup = (unsigned)num;
		}
	}

	/* Column 7: maxproc. */
	if (!master_conf_number(&fields[6], MASTER_CONF_MAXPROC_MAX, -1, &num))
		master_conf_error(mp, "bad maxproc field \"%s\": want - or a "
		    "number (0 = no limit, at most %d)",
		    master_conf_show(show, &fields[6]), MASTER_CONF_MAXPROC_MAX);
	else
		svc.maxproc = (int)num;

	/* Columns 8 and on: the command. */
	(void)master_conf_command(mp, &fields[7], nfields - 7, show);

	if (mp->nerrors != errors)
		goto done;

	/* The same service twice? */
	for (k = 0; k < mp->conf->count; k++) {
		const struct master_service *old = &mp->conf->services[k];

		if (old->type == svc.type && strcmp(old->name, svc.name) == 0) {
			master_conf_error(mp, "service %s/%s is already defined "
			    "at %s:%u", master_conf_show(show, &fields[0]),
			    master_service_type_name(svc.type), old->file,
			    old->line);
			goto done;
		}
	}

	svc.argc = nfields - 7;
	svc.argv = xcalloc(svc.argc + 1, sizeof(*svc.argv));
	for (k = 0; k < svc.argc; k++)
		svc.argv[k] = xstrndup(fields[7 + k].p, fields[7 + k].n);
	svc.file = xstrdup(mp->filename);
	svc.line = mp->line;
	if (mp->conf->count == mp->cap) {
		mp->cap = mp->cap * 2 + 8;
		mp->conf->services = xreallocarray(mp->conf->services, mp->cap,
		    sizeof(*mp->conf->services));
	}
	mp->conf->services[mp->conf->count++] = svc;
	memset(&svc, 0, sizeof(svc));

done:
	master_conf_service_free(&svc);
	free(fields);
	str_free(&show);
}

/* master_conf_parse - parse master.conf text from memory */
int
master_conf_parse(const char *data, size_t len, const char *filename,
    struct master_conf **conf_r, struct str *errors)
{
	struct master_conf_parser mp;
	struct str *logical = str_new(256, MASTER_CONF_LINE_MAX);
	unsigned lineno = 0, start_line = 0;
	bool have = false, broken = false;
	size_t pos = 0, n, i;
	const char *line, *nl;

	memset(&mp, 0, sizeof(mp));
	mp.filename = filename;
	mp.errors = errors;
	mp.conf = xcalloc(1, sizeof(*mp.conf));
	*conf_r = NULL;

	while (pos < len) {
		bool bad = false;

		line = data + pos;
		nl = memchr(line, '\n', len - pos);
		n = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += n + (nl != NULL);
		mp.line = ++lineno;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > MASTER_CONF_LINE_MAX) {
			master_conf_error(&mp, "line too long (more than %d "
			    "bytes)", MASTER_CONF_LINE_MAX);
			bad = true;
		} else {
			for (i = 0; i < n; i++) {
				unsigned char c = (unsigned char)line[i];

				if (c == '\0' || (c < 0x20 && c != '\t') ||
				    c == 0x7f) {
					master_conf_error(&mp, "%s in line",
					    c == '\0' ? "NUL byte" :
					    "control character");
					bad = true;
					break;
				}
			}
		}

		for (i = 0; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
			;
		if (i == n || line[i] == '#')
			continue;
		if (i > 0) {
			if (!have) {
				if (!bad)
					master_conf_error(&mp, "continuation "
					    "line (starts with white space) "
					    "without a service line before it");
				continue;
			}
			if (bad)
				broken = true;
			if (broken)
				continue;
			if (str_append_c(logical, ' ') < 0 ||
			    str_append(logical, line + i, n - i) < 0) {
				mp.line = start_line;
				master_conf_error(&mp, "line too long (more "
				    "than %d bytes with its continuation "
				    "lines)", MASTER_CONF_LINE_MAX);
				broken = true;
			}
			continue;
		}
		if (have && !broken) {
			mp.line = start_line;
			master_conf_line(&mp, str_c(logical), str_len(logical));
			mp.line = lineno;
		}
		have = true;
		broken = bad;
		start_line = lineno;
		str_clear(logical);
		if (!bad)
			(void)str_append(logical, line, n);
	}
	if (have && !broken) {
		mp.line = start_line;
		master_conf_line(&mp, str_c(logical), str_len(logical));
	}
	str_free(&logical);

	if (mp.nerrors > 0) {
		master_conf_free(&mp.conf);
		return -1;
	}
	*conf_r = mp.conf;
	return 0;
}

/* master_conf_load - read and parse a master.conf file */
int
master_conf_load(const char *path, struct master_conf **conf_r,
    struct str *errors)
{
	struct str *buf = str_new(8192, MASTER_CONF_FILE_MAX);
	int fd, ret;
	ssize_t n;

	*conf_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errors != NULL)
			(void)str_printf(errors, "open %s: %s\n", path,
			    strerror(errno));
		str_free(&buf);
		return -1;
	}
	for (;;) {
		char *w = str_reserve(buf, 8192);

		if (w == NULL) {
			if (errors != NULL)
				(void)str_printf(errors, "%s: file too large "
				    "(more than %d bytes)\n", path,
				    MASTER_CONF_FILE_MAX);
			goto fail;
		}
		n = read(fd, w, 8192);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errors != NULL)
				(void)str_printf(errors, "read %s: %s\n", path,
				    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		str_commit(buf, (size_t)n);
	}
	(void)close(fd);
	ret = master_conf_parse(str_c(buf), str_len(buf), path, conf_r, errors);
	str_free(&buf);
	return ret;

fail:
	(void)close(fd);
	str_free(&buf);
	return -1;
}

/* master_conf_free - free *confp (NULL allowed) and set it to NULL */
void
master_conf_free(struct master_conf **confp)
{
	struct master_conf *mc = *confp;
	size_t i;

	if (mc == NULL)
		return;
	*confp = NULL;
	for (i = 0; i < mc->count; i++)
		master_conf_service_free(&mc->services[i]);
	free(mc->services);
	free(mc);
}

/* master_conf_streq - equal strings, where NULL equals only NULL */
static bool
master_conf_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* master_service_same - true if switching from a to b needs no restart */
bool
master_service_same(const struct master_service *a,
    const struct master_service *b)
{
	size_t i;

	if (!master_conf_streq(a->name, b->name) || a->type != b->type ||
	    !master_conf_streq(a->host, b->host) || a->port != b->port ||
	    a->private_ != b->private_ || !master_conf_streq(a->user, b->user) ||
	    a->chroot != b->chroot || a->wakeup != b->wakeup ||
	    a->wakeup_if_used != b->wakeup_if_used ||
	    a->maxproc != b->maxproc || a->argc != b->argc)
		return false;
	for (i = 0; i < a->argc; i++)
		if (!master_conf_streq(a->argv[i], b->argv[i]))
			return false;
	return true;
}

/* master_service_type_name - "inet", "unix" or "fifo" */
const char *
master_service_type_name(enum master_service_type type)
{
	switch (type) {
	case MASTER_SERVICE_INET:
		return "inet";
	case MASTER_SERVICE_UNIX:
		return "unix";
	case MASTER_SERVICE_FIFO:
		return "fifo";
	}
	return "unknown";
}
