/* SPDX-License-Identifier: MIT */
/*
 * sendmail - Sendmail/Postfix-compatible mail injection for local users
 *
 * DESCRIPTION
 *	sendmail [options] [recipient ...] reads a message from standard
 *	input and hands it to cleanup through cleanup_client.h over
 *	$queue_directory/public/cleanup. No write access to the queue is
 *	needed and the program is not set-uid or set-gid: cleanup learns
 *	the caller's uid from the socket (SO_PEERCRED) and decides what
 *	the caller may claim.
 *
 *	Input: lines may end in LF (the norm for sendmail) or CRLF; every
 *	line end becomes CRLF, a last line without one gets one, other
 *	octets (8-bit, NUL) pass unchanged. Unless -i or -oi is given, a
 *	line holding a single "." ends the input. No dot-unstuffing: this
 *	is not SMTP.
 *
 *	Options: -t (recipients from To:, Cc:, Bcc: as well), -f sender
 *	(also -r; "<>" is the null sender), -F full name (default: the
 *	GECOS name), -i and -oi, -oXXX (other -o options are ignored as
 *	Sendmail does), -N dsn (never, or a comma list of success,
 *	failure, delay), -R full|hdrs, -V envid, -B 7BIT|8BITMIME, -C DIR
 *	(configuration directory, or the postern.conf in it), -v (print
 *	the queue ID), -bm (deliver mail: the default), -bs (SMTP on
 *	standard input and output: runs $daemon_directory/smtpd -S), -bp
 *	(list the queue: runs $command_directory/postern queue list),
 *	-bi (build the alias maps: postern map build for each db: map in
 *	$alias_maps). -G, -U, -n, -m, -h N, -L label, -X file are accepted
 *	and ignored for compatibility. Invoked as mailq it means -bp,
 *	as newaliases -bi.
 *
 * SECURITY
 *	Runs with the caller's privileges only. It reads postern.conf
 *	(any directory the caller names: that only changes which socket
 *	it talks to, and cleanup trusts nothing the caller sends) and
 *	standard input; it writes only to the cleanup socket, standard
 *	output and standard error.
 *
 * DIAGNOSTICS
 *	Errors go to standard error as "sendmail: text". Exit status
 *	(sysexits.h): 0 queued; EX_USAGE bad options or no recipients;
 *	EX_DATAERR bad address or message refused (5xx); EX_NOINPUT
 *	standard input unreadable; EX_NOUSER caller has no login name;
 *	EX_TEMPFAIL not queued, try again (4xx, cleanup not running);
 *	EX_CONFIG bad postern.conf; EX_UNAVAILABLE a -bp/-bs/-bi helper is
 *	missing.
 *
 * SEE ALSO
 *	sendmail(1), cleanup(8), cleanup_client.h
 */
#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "log.h"
#include "str.h"

#define SENDMAIL_CHUNK		(64 * 1024)
#define SENDMAIL_RCPT_MAX	QUEUE_FILE_RCPT_MAX

static const char *sendmail_name = "sendmail";

struct sendmail_opts {
	const char *config_dir;
	char *config_dir_alloc;		/* when config_dir was made here */
	const char *sender;		/* -f, or NULL */
	const char *fullname;		/* -F, or NULL */
	const char *envid;		/* -V */
	enum smtp_ret ret;		/* -R */
	enum smtp_body body;		/* -B */
	unsigned notify;		/* -N */
	bool extract;			/* -t */
	bool dot_ends;			/* not -i */
	bool verbose;
	char mode;			/* 'm', 's', 'p', 'i' */
};

static void PRINTF_LIKE(1, 2)
sendmail_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sendmail_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void NORETURN
sendmail_usage(const char *why)
{
	if (why != NULL)
		sendmail_error("%s", why);
	fprintf(stderr, "usage: %s [-t] [-i] [-f sender] [-F name] [-N dsn] "
	    "[-R full|hdrs] [-V envid] [-C dir] [-v] [-bm|-bs|-bp|-bi] "
	    "[recipient ...]\n", sendmail_name);
	exit(EX_USAGE);
}

/* ------------------------------------------------------------ helpers */

/* sendmail_exec - run a postern program in place of this one */
static int
sendmail_exec(const char *dir_param, const char *prog, char **args,
    const struct config *cfg)
{
	char *path = xasprintf("%s/%s", config_str(cfg, dir_param), prog);

	args[0] = path;
	fflush(stdout);
	execv(path, args);
	sendmail_error("cannot run %s: %s", path, strerror(errno));
	free(path);
	return errno == ENOENT ? EX_UNAVAILABLE : EX_OSERR;
}

/* sendmail_newaliases - postern map build for each db: alias map */
static int
sendmail_newaliases(const struct config *cfg, const char *cdir)
{
	const char *const *maps;
	size_t i, n;
	int status, rc = 0;
	pid_t pid;
	char *path;

	maps = config_list(cfg, "alias_maps", &n);
	if (n == 0) {
		sendmail_error("alias_maps is empty: nothing to build");
		return 0;
	}
	path = xasprintf("%s/postern", config_str(cfg, "command_directory"));
	for (i = 0; i < n; i++) {
		if (strncmp(maps[i], "db:", 3) != 0)
			continue;
		fflush(stdout);
		if ((pid = fork()) < 0) {
			sendmail_error("cannot fork: %s", strerror(errno));
			rc = EX_OSERR;
			break;
		}
		if (pid == 0) {
			execl(path, path, "-c", cdir, "map", "build", maps[i],
			    (char *)NULL);
			sendmail_error("cannot run %s: %s", path,
			    strerror(errno));
			_exit(EX_UNAVAILABLE);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = WIFEXITED(status) && WEXITSTATUS(status) ==
			    EX_UNAVAILABLE ? EX_UNAVAILABLE : EX_SOFTWARE;
	}
	free(path);
	return rc;
}

/* sendmail_canon - an address argument in canonical form; false if bad */
static bool
sendmail_canon(const char *arg, bool sender, struct str *out)
{
	struct address *a = address_new();
	size_t n = strlen(arg);
	bool ok;

	str_clear(out);
	while (n > 0 && (*arg == ' ' || *arg == '\t')) {
		arg++;
		n--;
	}
	while (n > 0 && (arg[n - 1] == ' ' || arg[n - 1] == '\t'))
		n--;
	if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
		arg++;
		n -= 2;
	}
	ok = address_parse_mailbox(arg, n, ADDRESS_SMTPUTF8 |
	    ADDRESS_ALLOW_NO_DOMAIN | (sender ? ADDRESS_ALLOW_NULL :
	    ADDRESS_ALLOW_POSTMASTER), a) == ADDRESS_OK &&
	    address_canonical(a, out) == 0;
	address_free(&a);
	return ok;
}

/*
 * sendmail_rcpts - the recipients of one argument: an address list
 * ("a@b, Joe <c@d>") or a single mailbox; false if it does not parse.
 */
static bool
sendmail_rcpts(const char *arg, char ***rcpts, size_t *nrcpts)
{
	struct address_list *list = address_list_new();
	struct str *canon = str_new(128, 0);
	const char *error;
	size_t i;
	bool ok = true;

	if (address_list_parse(arg, strlen(arg), ADDRESS_LIST_UTF8,
	    SENDMAIL_RCPT_MAX, list, &error) == 0 && list->count > 0) {
		for (i = 0; i < list->count; i++) {
			str_clear(canon);
			(void)address_canonical(list->items[i].addr, canon);
			*rcpts = xreallocarray(*rcpts, *nrcpts + 1,
			    sizeof(char *));
			(*rcpts)[(*nrcpts)++] = xstrdup(str_c(canon));
		}
	} else if (sendmail_canon(arg, false, canon)) {
		*rcpts = xreallocarray(*rcpts, *nrcpts + 1, sizeof(char *));
		(*rcpts)[(*nrcpts)++] = xstrdup(str_c(canon));
	} else {
		ok = false;
	}
	str_free(&canon);
	address_list_free(&list);
	return ok;
}

/* sendmail_gecos - the full name from the password entry, or NULL */
static char *
sendmail_gecos(const struct passwd *pw)
{
	struct str *out;
	const char *p;

	if (pw->pw_gecos == NULL || pw->pw_gecos[0] == '\0' ||
	    pw->pw_gecos[0] == ',')
		return NULL;
	out = str_new(64, 256);
	for (p = pw->pw_gecos; *p != '\0' && *p != ','; p++) {
		if (*p == '&') {	/* Sendmail: & is the capitalized login */
			(void)str_append_c(out, (char)(pw->pw_name[0] >= 'a' &&
			    pw->pw_name[0] <= 'z' ? pw->pw_name[0] - 32 :
			    pw->pw_name[0]));
			if (pw->pw_name[0] != '\0')
				(void)str_append_cstr(out, pw->pw_name + 1);
		} else {
			(void)str_append_c(out, *p);
		}
	}
	return str_steal(&out);
}

/* ------------------------------------------------------------ input */

/*
 * The input filter: LF or CRLF -> CRLF, "." alone ends the input
 * unless -i. State survives between read buffers.
 */
struct sendmail_filter {
	struct str *out;
	bool line_start;
	bool dot;		/* "." held at the start of a line */
	bool cr;		/* "\r" held */
	bool ended;		/* saw the "." line */
	bool dot_ends;
};

/* filter_byte - one input octet */
static void
filter_byte(struct sendmail_filter *f, char c)
{
	if (f->cr) {
		f->cr = false;
		if (c == '\n') {
			if (f->dot) {	/* ".\r\n" */
				f->ended = true;
				return;
			}
			(void)str_append(f->out, "\r\n", 2);
			f->line_start = true;
			return;
		}
		if (f->dot) {
			(void)str_append_c(f->out, '.');
			f->dot = false;
		}
		(void)str_append_c(f->out, '\r');
		f->line_start = false;
	}
	if (c == '\r') {
		f->cr = true;
		return;
	}
	if (c == '\n') {
		if (f->dot) {
			f->ended = true;
			return;
		}
		(void)str_append(f->out, "\r\n", 2);
		f->line_start = true;
		return;
	}
	if (f->dot) {
		(void)str_append_c(f->out, '.');
		f->dot = false;
	}
	if (f->line_start && c == '.' && f->dot_ends) {
		f->dot = true;
		f->line_start = false;
		return;
	}
	(void)str_append_c(f->out, c);
	f->line_start = false;
}

/* filter_eof - flush what is held; end the last line */
static void
filter_eof(struct sendmail_filter *f)
{
	if (f->ended)
		return;
	if (f->dot)
		(void)str_append_c(f->out, '.');
	if (f->cr)
		(void)str_append_c(f->out, '\r');
	if (f->dot || f->cr || !f->line_start)
		(void)str_append(f->out, "\r\n", 2);
	f->dot = f->cr = false;
}

/* ------------------------------------------------------------ main */

/* notify_word - one -N keyword; 0 if unknown */
static unsigned
notify_word(const char *p, size_t n)
{
	static const struct { const char *name; unsigned bit; } words[] = {
		{ "never", SMTP_NOTIFY_NEVER },
		{ "success", SMTP_NOTIFY_SUCCESS },
		{ "failure", SMTP_NOTIFY_FAILURE },
		{ "delay", SMTP_NOTIFY_DELAY },
	};
	size_t i;

	for (i = 0; i < N_ELEMENTS(words); i++)
		if (strlen(words[i].name) == n &&
		    strncasecmp(words[i].name, p, n) == 0)
			return words[i].bit;
	return 0;
}

/* sendmail_notify - parse -N: never, or a comma list of the others */
static unsigned
sendmail_notify(const char *val)
{
	const char *p = val, *end;
	unsigned bits = 0, bit;

	while (*p != '\0') {
		end = p + strcspn(p, ", ");
		if (end > p) {
			if ((bit = notify_word(p, (size_t)(end - p))) == 0)
				sendmail_usage("-N takes never or "
				    "success,failure,delay");
			bits |= bit;
		}
		p = *end != '\0' ? end + 1 : end;
	}
	if (bits == 0 || ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER))
		sendmail_usage("-N takes never or success,failure,delay");
	return bits;
}

static void
sendmail_args(int argc, char **argv, struct sendmail_opts *o, int *first_r)
{
	int i;
	const char *a, *val;
	char opt;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		opt = a[1];
		/* Options that take a value: attached or the next argument. */
		if (strchr("fFrNRVBCLXh", opt) != NULL) {
			if (a[2] != '\0') {
				val = a + 2;
			} else {
				if (i + 1 >= argc)
					sendmail_usage("option needs a value");
				val = argv[++i];
			}
			switch (opt) {
			case 'f':
			case 'r':
				o->sender = val;
				break;
			case 'F':
				o->fullname = val;
				break;
			case 'V':
				o->envid = val;
				break;
			case 'C':
				o->config_dir = val;
				break;
			case 'R':
				if (strcasecmp(val, "full") == 0)
					o->ret = SMTP_RET_FULL;
				else if (strcasecmp(val, "hdrs") == 0)
					o->ret = SMTP_RET_HDRS;
				else
					sendmail_usage("-R takes full or hdrs");
				break;
			case 'B':
				if (strcasecmp(val, "8BITMIME") == 0)
					o->body = SMTP_BODY_8BITMIME;
				else if (strcasecmp(val, "7BIT") == 0)
					o->body = SMTP_BODY_7BIT;
				else
					sendmail_usage("-B takes 7BIT or 8BITMIME");
				break;
			case 'N':
				o->notify = sendmail_notify(val);
				break;
			default:	/* -L -X -h: accepted, ignored */
				break;
			}
			continue;
		}
		switch (opt) {
		case 't':
			o->extract = true;
			break;
		case 'i':
			o->dot_ends = false;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'o':
			/* -oi; every other -oXXX is ignored, as Sendmail does */
			if (strcmp(a, "-oi") == 0)
				o->dot_ends = false;
			break;
		case 'b':
			if (strcmp(a, "-bm") == 0)
				o->mode = 'm';
			else if (strcmp(a, "-bs") == 0)
				o->mode = 's';
			else if (strcmp(a, "-bp") == 0)
				o->mode = 'p';
			else if (strcmp(a, "-bi") == 0)
				o->mode = 'i';
			else
				sendmail_usage("unsupported -b mode");
			break;
		case 'G': case 'U': case 'n': case 'm': case 'c': case 'e':
			break;
		default:
			sendmail_usage("unknown option");
		}
	}
	*first_r = i;
}

/* sendmail_config - load postern.conf; exits on failure */
static struct config *
sendmail_config(struct sendmail_opts *o)
{
	struct config *cfg;
	struct stat sb;
	const char *error;
	const char *slash;
	char *path;

	if (o->config_dir == NULL)
		o->config_dir = getenv("POSTERN_CONFIG_DIR");
	if (o->config_dir == NULL || o->config_dir[0] == '\0')
		o->config_dir = "/etc/postern";
	/* Postfix accepts the main.cf file itself too. */
	if (stat(o->config_dir, &sb) == 0 && S_ISREG(sb.st_mode)) {
		slash = strrchr(o->config_dir, '/');
		if (slash != NULL && slash != o->config_dir)
			o->config_dir = o->config_dir_alloc = xstrndup(
			    o->config_dir, (size_t)(slash - o->config_dir));
		else
			o->config_dir = slash == NULL ? "." : "/";
	}
	cfg = config_new(o->config_dir);
	path = xasprintf("%s/postern.conf", o->config_dir);
	if (config_load(cfg, path, &error) < 0) {
		sendmail_error("%s: %s", path, error);
		exit(EX_CONFIG);
	}
	free(path);
	return cfg;
}

/* sendmail_copy_input - stdin through the filter to cleanup; rc or -1 */
static int
sendmail_copy_input(struct cleanup_client *c, bool dot_ends,
    const char **error_r)
{
	struct sendmail_filter filt;
	char buf[SENDMAIL_CHUNK];
	ssize_t n, i;
	int rc = 0;

	memset(&filt, 0, sizeof(filt));
	filt.out = str_new(2 * SENDMAIL_CHUNK + 16, 0);
	filt.line_start = true;
	filt.dot_ends = dot_ends;
	while (!filt.ended && rc == 0) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sendmail_error("cannot read standard input: %s",
			    strerror(errno));
			rc = EX_NOINPUT;
			break;
		}
		if (n == 0)
			break;
		for (i = 0; i < n && !filt.ended; i++)
			filter_byte(&filt, buf[i]);
		if (str_len(filt.out) >= SENDMAIL_CHUNK) {
			if (cleanup_client_content(c, str_c(filt.out),
			    str_len(filt.out), error_r) < 0)
				rc = -1;
			str_clear(filt.out);
		}
	}
	if (rc == 0) {
		filter_eof(&filt);
		if (str_len(filt.out) > 0 && cleanup_client_content(c,
		    str_c(filt.out), str_len(filt.out), error_r) < 0)
			rc = -1;
	}
	str_free(&filt.out);
	return rc;
}

/* sendmail_submit - build the envelope, send the message; exit status */
static int
sendmail_submit(const struct sendmail_opts *o, const struct config *cfg,
    char **args, size_t nargs)
{
	struct cleanup_client *c = NULL;
	struct queue_envelope env;
	struct queue_attr attrs[3];
	struct queue_rcpt r;
	struct passwd *pw;
	struct str *sender, *reason, *socket_path;
	char uidbuf[32], id[QUEUE_ID_SIZE], *gecos = NULL, **rcpts = NULL;
	const char *error = "", *fullname = o->fullname;
	size_t nrcpts = 0, i, nattrs = 0;
	enum cleanup_status status;
	int rc = EX_OK;

	sender = str_new(128, 0);
	reason = str_new(128, 0);
	socket_path = str_new(256, 0);
	/* Who we are: cleanup checks this itself; we fill in the defaults. */
	if ((pw = getpwuid(getuid())) == NULL) {
		sendmail_error("uid %lu has no login name",
		    (unsigned long)getuid());
		rc = EX_NOUSER;
		goto out;
	}
	if (o->sender != NULL) {
		if (!sendmail_canon(o->sender, true, sender)) {
			sendmail_error("bad sender address syntax: %s",
			    o->sender);
			rc = EX_DATAERR;
			goto out;
		}
	} else {
		(void)address_quote_local(pw->pw_name, strlen(pw->pw_name),
		    sender);
	}
	for (i = 0; i < nargs; i++) {
		if (!sendmail_rcpts(args[i], &rcpts, &nrcpts)) {
			sendmail_error("bad recipient address syntax: %s",
			    args[i]);
			rc = EX_DATAERR;
			goto out;
		}
	}
	if (nrcpts == 0 && !o->extract) {
		sendmail_error("recipients must be given on the command line "
		    "or with -t");
		rc = EX_USAGE;
		goto out;
	}
	if (fullname == NULL)
		fullname = gecos = sendmail_gecos(pw);

	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = str_c(sender);
	env.envid = o->envid;
	env.ret = o->ret;
	env.body = o->body;
	env.protocol = "local";
	(void)snprintf(uidbuf, sizeof(uidbuf), "%lu", (unsigned long)getuid());
	attrs[nattrs].name = "uid";
	attrs[nattrs++].value = uidbuf;
	attrs[nattrs].name = "login";
	attrs[nattrs++].value = pw->pw_name;
	if (fullname != NULL) {
		attrs[nattrs].name = "fullname";
		attrs[nattrs++].value = fullname;
	}
	env.attrs = attrs;
	env.nattrs = nattrs;

	(void)str_printf(socket_path, "%s/public/cleanup",
	    config_str(cfg, "queue_directory"));
	c = cleanup_client_open(str_c(socket_path), CLEANUP_FLAG_SUBMISSION |
	    (o->extract ? CLEANUP_FLAG_EXTRACT_RCPTS : 0), &error);
	if (c == NULL) {
		sendmail_error("cannot submit mail: %s: %s", str_c(socket_path),
		    error);
		rc = EX_TEMPFAIL;
		goto out;
	}
	pst_strlcpy(id, cleanup_client_id(c), sizeof(id));
	if (cleanup_client_envelope(c, &env, &error) < 0)
		rc = -1;
	for (i = 0; rc == 0 && i < nrcpts; i++) {
		memset(&r, 0, sizeof(r));
		r.address = rcpts[i];
		r.notify = o->notify;
		if (cleanup_client_rcpt(c, &r, &error) < 0)
			rc = -1;
	}
	if (rc == 0)
		rc = sendmail_copy_input(c, o->dot_ends, &error);
	if (rc > 0) {
		/* Our own failure: closing early makes cleanup drop it. */
		cleanup_client_abort(&c);
		goto out;
	}
	/* After a broken connection too: finish tells what is on disk. */
	status = cleanup_client_finish(&c, reason);
	if (status == CLEANUP_OK) {
		if (o->verbose)
			printf("%s: queued as %s\n", sendmail_name, id);
		rc = EX_OK;
	} else {
		if (rc < 0)
			sendmail_error("mail not sent: %s (%s)", str_c(reason),
			    error);
		else
			sendmail_error("mail not sent: %s", str_c(reason));
		rc = status == CLEANUP_REJECT ? EX_DATAERR : EX_TEMPFAIL;
	}
out:
	cleanup_client_abort(&c);
	str_free(&sender);
	str_free(&reason);
	str_free(&socket_path);
	for (i = 0; i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	free(gecos);
	return rc;
}

int
main(int argc, char **argv)
{
	struct sendmail_opts o = { .dot_ends = true, .mode = 'm' };
	struct config *cfg;
	const char *base;
	char *cdir;
	int first, rc;

	base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "mailq") == 0) {
		sendmail_name = "mailq";
		o.mode = 'p';
	} else if (strcmp(base, "newaliases") == 0) {
		sendmail_name = "newaliases";
		o.mode = 'i';
	}
	log_init(sendmail_name);
	sendmail_args(argc, argv, &o, &first);
	cfg = sendmail_config(&o);
	/* execv() takes char *const[]: give it writable copies. */
	cdir = xstrdup(o.config_dir);

	switch (o.mode) {
	case 'p': {
		static char opt_c[] = "-c", queue[] = "queue", list[] = "list";
		char *args[] = { NULL, opt_c, cdir, queue, list, NULL };

		rc = sendmail_exec("command_directory", "postern", args, cfg);
		break;
	}
	case 's': {
		static char opt_S[] = "-S", opt_c[] = "-c";
		char *args[] = { NULL, opt_S, opt_c, cdir, NULL };

		rc = sendmail_exec("daemon_directory", "smtpd", args, cfg);
		break;
	}
	case 'i':
		rc = sendmail_newaliases(cfg, cdir);
		break;
	default:
		rc = sendmail_submit(&o, cfg, argv + first,
		    (size_t)(argc - first));
		break;
	}
	free(cdir);
	free(o.config_dir_alloc);
	config_free(&cfg);
	return rc;
}
