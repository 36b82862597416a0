/* SPDX-License-Identifier: MIT */
/*
 * postern - the operator's command-line tool
 *
 * DESCRIPTION
 *	One program for what Postfix spreads over postfix(1), postconf(1)
 *	and postmap(1): start, stop, reload and status of the mail system;
 *	reading and editing postern.conf; building and querying lookup
 *	tables; the embedded user database; and self-contained instances
 *	for tests and demos. This file holds main(), the global options
 *	(-c DIR, -v), the usage text and the helpers the verbs share; each
 *	group of verbs lives in postern_<topic>.c.
 *
 *	Output meant for scripts (status -k, config -h, instance init/info,
 *	map query) is a stable interface documented in postern(8).
 *
 * SECURITY
 *	Runs as whoever invokes it, with that user's rights; it is not
 *	set-uid and trusts its command line and environment only as far as
 *	that user could anyway. It reads postern.conf, writes postern.conf
 *	(config -e), map databases, the user database and instance
 *	directories, signals the master process named by the pid file, and
 *	reads master's status socket (bounded in size and time). Passwords
 *	are never echoed, never logged, and wiped from memory after use.
 *
 * DIAGNOSTICS
 *	Problems go to stderr as "postern: what is wrong (what to do)";
 *	see postern.h for the exit statuses.
 *
 * SEE ALSO
 *	postern(8), master(8), postern.conf(5), master.conf(5)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "str.h"

#include "postern.h"

#define POSTERN_SECRET_MAX 1024

struct postern_ctx postern;

/* postern_sieve.c (declared here to keep postern.h to its owner) */
int postern_cmd_sieve(int argc, char **argv);
/* postern_list.c (likewise) */
int postern_cmd_list(int argc, char **argv);
/* postern_alias.c (likewise) */
int postern_cmd_alias(int argc, char **argv);
int postern_cmd_forward(int argc, char **argv);
/* postern_vacation.c (likewise) */
int postern_cmd_vacation(int argc, char **argv);

struct postern_verb {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct postern_verb postern_verbs[] = {
	{ "start", postern_cmd_start },
	{ "stop", postern_cmd_stop },
	{ "reload", postern_cmd_reload },
	{ "status", postern_cmd_status },
	{ "config", postern_cmd_config },
	{ "map", postern_cmd_map },
	{ "user", postern_cmd_user },
	{ "instance", postern_cmd_instance },
	{ "queue", postern_cmd_queue },
	{ "mailq", postern_cmd_mailq },
	{ "sieve", postern_cmd_sieve },
	{ "list", postern_cmd_list },
	{ "alias", postern_cmd_alias },
	{ "forward", postern_cmd_forward },
	{ "vacation", postern_cmd_vacation },
};

/*
 * The usage text: one line per form of each verb. postern_usage_error()
 * prints the lines of the verb concerned, found by their first word.
 */
static const char *const postern_usage_lines[] = {
	"Mail system:",
	"  start                       start the mail system (runs master)",
	"  stop                        stop it: SIGTERM to master, wait for it to exit",
	"  reload                      check the configuration, then SIGHUP to master",
	"  status [-k]                 exit 0 if master runs; show its services",
	"                              (-k: raw key=value lines for scripts)",
	"Configuration (postern.conf):",
	"  config [-n] [-xh]           settings that differ from the defaults",
	"  config [-xh] KEY...         the expanded value of each KEY",
	"  config -d [-xh] [KEY...]    default values",
	"  config -e KEY=VALUE...      change settings in place (checked first)",
	"                              (-x: expand $names, -h: values only)",
	"Lookup tables:",
	"  map build FILE...           compile FILE into FILE.db (db:) or check it",
	"                              (file:FILE); FILE may be a TYPE:NAME spec",
	"  map query SPEC KEY          print the value of KEY; exit 1 if not found",
	"Users ($user_database):",
	"  user add NAME [--password P | --password-stdin]",
	"  user passwd NAME [--password P | --password-stdin]",
	"  user delete NAME [--keep-mail]",
	"  user list",
	"  user verify NAME            read a password from stdin; exit 0 if it",
	"                              matches, 1 if not",
	"  user show NAME              quota, usage and mailboxes",
	"  user quota NAME [SIZE]      the effective quota (SIZE: set it; 0 =",
	"                              quota_storage_limit)",
	"Departmental addresses and forwarding (see postern-alias(8)):",
	"  alias set NAME ADDRESS@DEPT | alias show NAME | alias del NAME",
	"  forward set NAME ADDRESS [--keep-copy] | forward show NAME | forward off NAME",
	"Out-of-office replies (see vacationd(8)):",
	"  vacation set NAME --from DATE --until DATE --message-file FILE [--subject S] [--addresses A,B...] [--days N]",
	"  vacation show NAME | vacation off NAME",
	"Mail queue ($queue_directory):",
	"  queue list [--json]         what is queued (mailq; --json: one object a line)",
	"  queue show ID [--body] [--log]",
	"                              envelope, recipients, header of one message",
	"  queue flush                 retry deferred mail now",
	"  queue hold ID|ALL           keep mail from delivery",
	"  queue release ID|ALL        give held mail back to qmgr",
	"  queue delete ID|ALL         remove mail from the queue",
	"  queue requeue ID|ALL        hand mail to cleanup again (new queue ID)",
	"  mailq [--json]              the same as queue list",
	"Sieve scripts (see postern-sieve(8)):",
	"  sieve test SCRIPT MESSAGE [--from A] [--to A] [--user U]",
	"                              print the actions SCRIPT takes on MESSAGE",
	"  sieve check SCRIPT...       print errors as SCRIPT:LINE:COLUMN",
	"  sieve compile SCRIPT... [--dump]",
	"                              write SCRIPT.svbin (the compiled cache)",
	"Mailing lists (see list-mgr(8)):",
	"  list create NAME@DOMAIN [--owner ADDR]... [KEY=VALUE]...",
	"  list delete NAME | show NAME | set NAME KEY=VALUE...",
	"  list members NAME [list | add ADDR... [--options O,...] | remove ADDR...]",
	"  list held NAME              messages held for moderation",
	"  list approve|reject|discard NAME ID",
	"  list archive rebuild NAME   regenerate the static HTML archive",
	"Instances (self-contained installations for tests and demos):",
	"  instance init DIR [--port-base N] [--force]",
	"                              create one in DIR (ports N+25, N+143, ...)",
	"  instance info               print the endpoints of the instance -c DIR",
	"  help                        this text",
};

static void
postern_usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: postern [-c DIR] [-v] COMMAND [ARGS]\n\n");
	for (i = 0; i < N_ELEMENTS(postern_usage_lines); i++)
		fprintf(fp, "%s\n", postern_usage_lines[i]);
	fprintf(fp, "\nOptions:\n"
	    "  -c DIR   configuration directory (default: $POSTERN_CONFIG_DIR,\n"
	    "           else " POSTERN_DEFAULT_CONFIG_DIR ")\n"
	    "  -v       verbose: more detail, and master logs debug lines\n"
	    "\nSee postern(8).\n");
}

static void
postern_vmessage(const char *level, const char *fmt, va_list ap)
{
	int saved = errno;

	fflush(stdout);
	fprintf(stderr, "postern: %s", level);
	errno = saved;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	errno = saved;
}

/* postern_error - tell the operator what failed */
void
postern_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	postern_vmessage("", fmt, ap);
	va_end(ap);
}

/* postern_warn - something odd, while the command goes on */
void
postern_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	postern_vmessage("warning: ", fmt, ap);
	va_end(ap);
}

/* postern_usage_error - a bad command line: say why, then the verb's usage */
int
postern_usage_error(const char *verb, const char *fmt, ...)
{
	size_t i, vlen = strlen(verb);
	bool in_verb = false;
	va_list ap;

	va_start(ap, fmt);
	postern_vmessage("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage:\n");
	for (i = 0; i < N_ELEMENTS(postern_usage_lines); i++) {
		const char *line = postern_usage_lines[i];

		/* A verb's lines, plus their continuation lines. */
		if (strncmp(line, "  ", 2) == 0 &&
		    strncmp(line + 2, verb, vlen) == 0 &&
		    (line[2 + vlen] == ' ' || line[2 + vlen] == '\0'))
			in_verb = true;
		else if (strncmp(line, "    ", 4) != 0)
			in_verb = false;
		if (in_verb && strncmp(line, "    ", 4) == 0)
			fprintf(stderr, "        %s\n", line);
		else if (in_verb)
			fprintf(stderr, "  postern%s\n", line + 1);
	}
	fprintf(stderr, "(see postern help)\n");
	return POSTERN_EXIT_USAGE;
}

/* postern_config_path - $config_dir/FILE */
void
postern_config_path(struct str *out, const char *file)
{
	str_clear(out);
	str_printf(out, "%s/%s", postern.config_dir, file);
}

/*
 * Library code reports config problems through log.h, whose stderr lines
 * carry a time stamp and host for daemons' benefit. While the CLI loads a
 * config, fd 2 goes to a memory file; afterwards each captured line is
 * printed as "postern: level: text", without the log prefix.
 */
struct postern_capture {
	int saved_fd;
	int mem_fd;
};

static void
postern_capture_begin(struct postern_capture *cap)
{
	cap->saved_fd = -1;
	cap->mem_fd = memfd_create("postern-log", MFD_CLOEXEC);
	if (cap->mem_fd < 0)
		return;
	fflush(stderr);
	cap->saved_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (cap->saved_fd < 0 || dup2(cap->mem_fd, STDERR_FILENO) < 0) {
		if (cap->saved_fd >= 0)
			(void)close(cap->saved_fd);
		(void)close(cap->mem_fd);
		cap->saved_fd = cap->mem_fd = -1;
	}
}

static void
postern_capture_end(struct postern_capture *cap, bool print)
{
	struct str *buf, *marker;
	const char *p, *end;

	if (cap->mem_fd < 0)
		return;
	(void)dup2(cap->saved_fd, STDERR_FILENO);
	(void)close(cap->saved_fd);
	buf = str_new(1024, 0);
	marker = str_new(32, 0);
	str_printf(marker, "[%ld]: ", (long)getpid());
	if (lseek(cap->mem_fd, 0, SEEK_SET) == 0) {
		char chunk[4096];
		ssize_t n;

		while ((n = read(cap->mem_fd, chunk, sizeof(chunk))) > 0)
			str_append(buf, chunk, (size_t)n);
	}
	(void)close(cap->mem_fd);
	for (p = print ? str_c(buf) : "";  *p != '\0'; p = end + (*end != '\0')) {
		const char *text;

		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		text = memmem(p, (size_t)(end - p), str_c(marker), str_len(marker));
		text = text != NULL ? text + str_len(marker) : p;
		fprintf(stderr, "postern: %.*s\n", (int)(end - text), text);
	}
	str_free(&marker);
	str_free(&buf);
}

/* postern_load_config - read postern.conf into the global config */
struct config *
postern_load_config(bool missing_ok)
{
	struct postern_capture cap;
	struct config *cfg;
	struct str *path = str_new(PATH_MAX, 0);
	const char *error = NULL;
	int fd, rc;

	postern_config_path(path, "postern.conf");
	fd = open(str_c(path), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && missing_ok) {
			cfg = config_new(postern.config_dir);
			config_set_global(cfg);
			str_free(&path);
			return cfg;
		}
		postern_error("cannot read %s: %m (use -c DIR or set "
		    "POSTERN_CONFIG_DIR)", str_c(path));
		str_free(&path);
		return NULL;
	}
	(void)close(fd);
	cfg = config_new(postern.config_dir);
	postern_capture_begin(&cap);
	rc = config_load(cfg, str_c(path), &error);
	postern_capture_end(&cap, true);
	if (rc < 0) {
		postern_error("%s: %s (fix it, then check with postern config)",
		    str_c(path), error != NULL ? error : "cannot load");
		config_free(&cfg);
		str_free(&path);
		return NULL;
	}
	str_free(&path);
	config_set_global(cfg);
	return cfg;
}

/* postern_config_parses - true if data loads as postern.conf */
bool
postern_config_parses(const char *data, size_t len, const char *filename,
    bool report)
{
	struct postern_capture cap;
	struct config *cfg = config_new(postern.config_dir);
	const char *error = NULL;
	int rc;

	postern_capture_begin(&cap);
	rc = config_parse(cfg, data, len, filename, &error);
	postern_capture_end(&cap, report);
	config_free(&cfg);
	return rc == 0;
}

/* postern_param - an expanded value, or NULL if this build lacks the name */
const char *
postern_param(const struct config *cfg, const char *name)
{
	if (config_param_find(name) == NULL) {
		postern_error("this build knows no parameter %s "
		    "(postern and libpostern do not match; rebuild)", name);
		return NULL;
	}
	return config_str(cfg, name);
}

/* postern_param_time - seconds, with a fallback for an older table */
unsigned
postern_param_time(const struct config *cfg, const char *name,
    unsigned fallback)
{
	if (config_param_find(name) == NULL)
		return fallback;
	return config_time(cfg, name);
}

/*
 * postern_read_secret - one line from stdin, read a byte at a time so
 * that no stdio buffer keeps a copy; the echo is off on a terminal. The
 * result has no line end. -1 (with a message printed) on error, on a
 * line over POSTERN_SECRET_MAX bytes, or on a NUL byte.
 */
int
postern_read_secret(const char *prompt, struct str *out)
{
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO) != 0;
	bool restore = false;
	bool seen_any = false;
	int rc = 0;
	char c;

	str_clear(out);
	if (tty) {
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &saved) == 0) {
			quiet = saved;
			quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			quiet.c_lflag |= ICANON;
			if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0)
				restore = true;
		}
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			postern_error("cannot read the password: %m");
			rc = -1;
			break;
		}
		if (n == 0) {
			if (!seen_any) {
				postern_error("no password on standard input");
				rc = -1;
			}
			break;
		}
		seen_any = true;
		if (c == '\n')
			break;
		if (c == '\0') {
			postern_error("the password contains a NUL byte");
			rc = -1;
			break;
		}
		if (str_len(out) >= POSTERN_SECRET_MAX) {
			postern_error("the password is longer than %d bytes",
			    POSTERN_SECRET_MAX);
			rc = -1;
			break;
		}
		str_append_c(out, c);
	}
	c = 0;
	if (restore) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	if (rc == 0 && str_len(out) > 0 && str_c(out)[str_len(out) - 1] == '\r')
		str_truncate(out, str_len(out) - 1);
	if (rc < 0) {
		explicit_bzero(str_data(out), str_len(out));
		str_clear(out);
	}
	return rc;
}

/* postern_find_self - the directory that holds this binary */
static char *
postern_find_self(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0 || (size_t)n >= sizeof(buf) - 1)
		return NULL;
	buf[n] = '\0';
	return xstrdup(dirname(buf));
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	char *real;
	size_t i;
	int c;

	log_init("postern");
	/* Invoked as "mailq": the queue listing (sendmail tradition). */
	if (argc > 0 && strcmp(basename(argv[0]), "mailq") == 0) {
		char *margs[] = { "mailq", argc > 1 ? argv[1] : NULL, NULL };
		const char *cdir = getenv("POSTERN_CONFIG_DIR");

		postern.config_dir = cdir != NULL && *cdir != '\0' ? cdir :
		    POSTERN_DEFAULT_CONFIG_DIR;
		return postern_cmd_mailq(argc > 1 ? 2 : 1, margs);
	}
	opterr = 0;	/* our own messages, below */
	while ((c = getopt_long(argc, argv, "+:c:hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			dir = optarg;
			break;
		case 'h':
			postern_usage(stdout);
			return POSTERN_EXIT_OK;
		case 'v':
			postern.verbose = true;
			log_set_debug(true);
			break;
		case ':':
			postern_error("option -%c needs a value (see postern "
			    "help)", optopt);
			return POSTERN_EXIT_USAGE;
		default:
			postern_error("unknown option -%c (see postern help)",
			    optopt);
			return POSTERN_EXIT_USAGE;
		}
	}
	if (dir == NULL)
		dir = getenv("POSTERN_CONFIG_DIR");
	if (dir == NULL || *dir == '\0')
		dir = POSTERN_DEFAULT_CONFIG_DIR;
	/*
	 * An absolute path, because master gets it and daemonizes into "/";
	 * one that does not exist yet is kept as given for the messages.
	 */
	real = realpath(dir, NULL);
	postern.config_dir = real != NULL ? real : dir;
	postern.self_dir = postern_find_self();

	if (optind >= argc) {
		postern_usage(stderr);
		return POSTERN_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "help") == 0) {
		postern_usage(stdout);
		return POSTERN_EXIT_OK;
	}
	for (i = 0; i < N_ELEMENTS(postern_verbs); i++) {
		if (strcmp(argv[0], postern_verbs[i].name) == 0) {
			int status = postern_verbs[i].run(argc, argv);

			if (fflush(stdout) != 0 || ferror(stdout)) {
				postern_error("cannot write the output: %m");
				status = POSTERN_EXIT_FAIL;
			}
			return status;
		}
	}
	postern_error("unknown command \"%s\" (run postern help for the list)",
	    argv[0]);
	return POSTERN_EXIT_USAGE;
}
