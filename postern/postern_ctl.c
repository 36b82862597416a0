/* SPDX-License-Identifier: MIT */
/*
 * postern_ctl - start, stop, reload and status of the mail system
 *
 * DESCRIPTION
 *	master is the only process these verbs talk to. Whether it runs is
 *	decided by its pid file, $queue_directory/pid/master.pid: master
 *	holds an fcntl lock on it for its whole life, so a pid file left by
 *	a crash (or a recycled pid) never makes a dead master look alive
 *	(pid_file_read).
 *
 *	start runs $daemon_directory/master -c DIR and waits for it: master
 *	daemonizes, and its first process exits 0 only once the service is
 *	ready, or non-zero after printing why to stderr (which is ours).
 *	stop sends SIGTERM and waits up to $master_stop_timeout + 5 seconds
 *	for the lock to go and the process to be gone. reload checks both configuration files first,
 *	so that a typo is reported here instead of only in the log, then
 *	sends SIGHUP. status reads master's status socket,
 *	$queue_directory/pid/master.status, where master writes one line
 *	per record ("master k=v ...", "service k=v ...") and closes; status
 *	prints a table of them, or with -k the lines as they came.
 *
 * SECURITY
 *	The status socket is read with a size cap and a deadline; its text
 *	is printed, never interpreted beyond splitting on white space and
 *	'='. Signals go only to the pid in a locked pid file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "master_conf.h"
#include "safe_file.h"
#include "str.h"

#include "postern.h"

#define CTL_STATUS_MAX (1024 * 1024)	/* bytes read from the status socket */
#define CTL_STATUS_TIMEOUT_MS 10000
#define CTL_STOP_GRACE 5		/* seconds on top of master_stop_timeout */
#define CTL_POLL_MS 50

struct ctl {
	struct config *cfg;
	struct str *pid_path;
	struct str *status_path;
	const char *log_file;
};

/* ctl_init - load postern.conf and work out the paths; false on failure */
static bool
ctl_init(struct ctl *ctl)
{
	const char *qdir;

	memset(ctl, 0, sizeof(*ctl));
	ctl->cfg = postern_load_config(false);
	if (ctl->cfg == NULL)
		return false;
	qdir = postern_param(ctl->cfg, "queue_directory");
	if (qdir == NULL)
		return false;
	ctl->pid_path = str_new(PATH_MAX, 0);
	ctl->status_path = str_new(PATH_MAX, 0);
	str_printf(ctl->pid_path, "%s/pid/master.pid", qdir);
	str_printf(ctl->status_path, "%s/pid/master.status", qdir);
	if (config_param_find("maillog_file") != NULL)
		ctl->log_file = config_str(ctl->cfg, "maillog_file");
	if (ctl->log_file == NULL || *ctl->log_file == '\0')
		ctl->log_file = "the mail log";
	return true;
}

static void
ctl_deinit(struct ctl *ctl)
{
	str_free(&ctl->pid_path);
	str_free(&ctl->status_path);
}

/*
 * ctl_master_pid - the pid of the running master, or 0 when none runs
 * (then a message saying why has been printed if report is true), or
 * -1 when the pid file cannot be read.
 */
static pid_t
ctl_master_pid(const struct ctl *ctl, bool report)
{
	const char *path = str_c(ctl->pid_path);
	struct stat st;
	pid_t pid;

	pid = pid_file_read(path);
	if (pid > 0)
		return pid;
	if (pid < 0 && errno != ENOENT) {
		postern_error("cannot read the pid file %s: %m", path);
		return -1;
	}
	if (report) {
		if (stat(path, &st) < 0)
			postern_error("master is not running (no pid file %s)",
			    path);
		else
			postern_error("master is not running (pid file %s is "
			    "left over: no process holds its lock)", path);
	}
	return 0;
}

static int
ctl_no_args(int argc, char **argv)
{
	if (argc > 1)
		return postern_usage_error(argv[0], "%s takes no arguments",
		    argv[0]);
	return 0;
}

/* postern_cmd_start - run master, which daemonizes once it is ready */
int
postern_cmd_start(int argc, char **argv)
{
	struct ctl ctl;
	struct str *master = NULL;
	const char *ddir;
	char opt_c[] = "-c", opt_v[] = "-v";
	char *args[5], *cdir = NULL;
	size_t n = 0;
	pid_t pid, child;
	int status, rc = POSTERN_EXIT_FAIL;

	if (ctl_no_args(argc, argv) != 0)
		return POSTERN_EXIT_USAGE;
	if (!ctl_init(&ctl))
		return POSTERN_EXIT_FAIL;
	pid = ctl_master_pid(&ctl, false);
	if (pid < 0)
		goto out;
	if (pid > 0) {
		postern_error("master is already running (pid %ld); use "
		    "postern stop first, or postern reload to re-read the "
		    "configuration", (long)pid);
		goto out;
	}
	if ((ddir = postern_param(ctl.cfg, "daemon_directory")) == NULL)
		goto out;
	master = str_new(PATH_MAX, 0);
	str_printf(master, "%s/master", ddir);
	if (access(str_c(master), X_OK) < 0) {
		postern_error("cannot run %s: %m (check daemon_directory in "
		    "%s/postern.conf)", str_c(master), postern.config_dir);
		goto out;
	}
	/* execv() takes char *const[]: give it writable copies. */
	cdir = xstrdup(postern.config_dir);
	args[n++] = str_data(master);
	args[n++] = opt_c;
	args[n++] = cdir;
	if (postern.verbose)
		args[n++] = opt_v;
	args[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		postern_error("cannot fork: %m");
		goto out;
	}
	if (child == 0) {
		execv(args[0], args);
		postern_error("cannot run %s: %m", args[0]);
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR) {
			postern_error("cannot wait for master: %m");
			goto out;
		}
	}
	if (WIFSIGNALED(status)) {
		postern_error("master was killed by signal %d while starting "
		    "(see %s)", WTERMSIG(status), ctl.log_file);
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		postern_error("master did not start (exit status %d; see the "
		    "messages above and %s)", WEXITSTATUS(status),
		    ctl.log_file);
		goto out;
	}
	pid = ctl_master_pid(&ctl, false);
	if (pid > 0)
		printf("postern: master started (pid %ld)\n", (long)pid);
	else
		printf("postern: master started\n");
	rc = POSTERN_EXIT_OK;
out:
	free(cdir);
	str_free(&master);
	ctl_deinit(&ctl);
	return rc;
}

/* ctl_sleep_ms - nap between polls */
static void
ctl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * ctl_process_gone - true if pid has exited: no such process, or a
 * zombie that nobody reaped yet (master is not our child: its first
 * process exited when it daemonized).
 */
static bool
ctl_process_gone(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	if ((paren = strrchr(buf, ')')) == NULL || paren[1] != ' ')
		return false;
	return paren[2] == 'Z' || paren[2] == 'X';
}

/* postern_cmd_stop - SIGTERM, then wait for master's lock to go */
int
postern_cmd_stop(int argc, char **argv)
{
	struct ctl ctl;
	unsigned timeout;
	long deadline;
	pid_t pid, now;
	int rc = POSTERN_EXIT_FAIL;

	if (ctl_no_args(argc, argv) != 0)
		return POSTERN_EXIT_USAGE;
	if (!ctl_init(&ctl))
		return POSTERN_EXIT_FAIL;
	pid = ctl_master_pid(&ctl, true);
	if (pid <= 0)
		goto out;
	if (kill(pid, SIGTERM) < 0) {
		postern_error("cannot signal master (pid %ld): %m (run postern "
		    "as the user that started it)", (long)pid);
		goto out;
	}
	timeout = postern_param_time(ctl.cfg, "master_stop_timeout", 10) +
	    CTL_STOP_GRACE;
	deadline = ctl_now_ms() + (long)timeout * 1000;
	for (;;) {
		now = pid_file_read(str_c(ctl.pid_path));
		/*
		 * The lock goes when master is done; its exit may take a
		 * moment more (a sanitizer's leak check, say). Wait for that
		 * too, so that nothing of it is left when we return.
		 */
		if (now != pid && (ctl_process_gone(pid) ||
		    ctl_now_ms() >= deadline)) {
			printf("postern: master stopped\n");
			rc = POSTERN_EXIT_OK;
			break;
		}
		if (ctl_now_ms() >= deadline) {
			postern_error("master (pid %ld) is still running %u "
			    "seconds after SIGTERM (see %s; try postern stop "
			    "again, or kill -KILL %ld)", (long)pid, timeout,
			    ctl.log_file, (long)pid);
			break;
		}
		ctl_sleep_ms(CTL_POLL_MS);
	}
out:
	ctl_deinit(&ctl);
	return rc;
}

/* ctl_check_master_conf - print master.conf problems; false if any */
static bool
ctl_check_master_conf(void)
{
	struct master_conf *mc = NULL;
	struct str *path = str_new(PATH_MAX, 0);
	struct str *errors = str_new(256, 0);
	const char *p, *end;
	bool ok = true;

	postern_config_path(path, "master.conf");
	if (master_conf_load(str_c(path), &mc, errors) < 0) {
		for (p = str_c(errors); *p != '\0'; p = end + (*end != '\0')) {
			end = strchr(p, '\n');
			if (end == NULL)
				end = p + strlen(p);
			if (end > p)
				postern_error("%.*s", (int)(end - p), p);
		}
		if (str_len(errors) == 0)
			postern_error("%s: cannot load", str_c(path));
		ok = false;
	}
	master_conf_free(&mc);
	str_free(&errors);
	str_free(&path);
	return ok;
}

/* postern_cmd_reload - check the configuration, then SIGHUP master */
int
postern_cmd_reload(int argc, char **argv)
{
	struct ctl ctl;
	pid_t pid;
	int rc = POSTERN_EXIT_FAIL;

	if (ctl_no_args(argc, argv) != 0)
		return POSTERN_EXIT_USAGE;
	if (!ctl_init(&ctl)) {
		postern_error("not reloading: master keeps its current "
		    "configuration");
		return POSTERN_EXIT_FAIL;
	}
	pid = ctl_master_pid(&ctl, true);
	if (pid <= 0)
		goto out;
	if (!ctl_check_master_conf()) {
		postern_error("not reloading: fix master.conf first (master "
		    "keeps its current configuration)");
		goto out;
	}
	if (kill(pid, SIGHUP) < 0) {
		postern_error("cannot signal master (pid %ld): %m (run postern "
		    "as the user that started it)", (long)pid);
		goto out;
	}
	printf("postern: master (pid %ld) is reloading its configuration\n",
	    (long)pid);
	rc = POSTERN_EXIT_OK;
out:
	ctl_deinit(&ctl);
	return rc;
}

/*
 * ctl_status_read - connect to the status socket and read until master
 * closes it, at most CTL_STATUS_MAX bytes within CTL_STATUS_TIMEOUT_MS.
 */
static int
ctl_status_read(const char *path, struct str *out)
{
	struct sockaddr_un sun;
	const char *name = path;
	char *dir = NULL;
	long deadline;
	int fd, rc = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		/* Too long for sun_path: connect by a relative name. */
		const char *slash = strrchr(path, '/');

		dir = xstrndup(path, (size_t)(slash - path));
		if (chdir(dir) < 0) {
			postern_error("cannot enter %s: %m", dir);
			free(dir);
			return -1;
		}
		name = slash + 1;
	}
	if (pst_strlcpy(sun.sun_path, name, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		postern_error("status socket name too long: %s", path);
		free(dir);
		return -1;
	}
	free(dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		postern_error("cannot create a socket: %m");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		postern_error("cannot connect to master's status socket %s: %m",
		    path);
		goto out;
	}
	deadline = ctl_now_ms() + CTL_STATUS_TIMEOUT_MS;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - ctl_now_ms();
		char buf[4096];
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			postern_error("master's status socket %s did not "
			    "answer within %d seconds", path,
			    CTL_STATUS_TIMEOUT_MS / 1000);
			goto out;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			postern_error("cannot read master's status: %m");
			goto out;
		}
		if (n == 0)
			break;
		if (str_len(out) + (size_t)n > CTL_STATUS_MAX) {
			postern_error("master's status is over %d bytes",
			    CTL_STATUS_MAX);
			goto out;
		}
		str_append(out, buf, (size_t)n);
	}
	rc = 0;
out:
	(void)close(fd);
	return rc;
}

/* One status record: its type word and its key=value fields. */
#define CTL_FIELDS_MAX 32

struct ctl_record {
	char *type;
	size_t n;
	char *key[CTL_FIELDS_MAX];
	char *value[CTL_FIELDS_MAX];
};

/* ctl_next_word - the next white-space separated word of *p, or NULL */
static char *
ctl_next_word(char **p)
{
	char *word;

	*p += strspn(*p, " \t\r");
	if (**p == '\0')
		return NULL;
	word = *p;
	*p += strcspn(*p, " \t\r");
	if (**p != '\0')
		*(*p)++ = '\0';
	return word;
}

/* ctl_record_parse - split a line in place; fields past the cap are dropped */
static void
ctl_record_parse(char *line, struct ctl_record *rec)
{
	char *word, *eq;

	memset(rec, 0, sizeof(*rec));
	rec->type = ctl_next_word(&line);
	while ((word = ctl_next_word(&line)) != NULL) {
		if (rec->n >= CTL_FIELDS_MAX)
			break;
		eq = strchr(word, '=');
		if (eq != NULL)
			*eq++ = '\0';
		rec->key[rec->n] = word;
		rec->value[rec->n] = eq != NULL ? eq : (char *)"";
		rec->n++;
	}
}

static const char *
ctl_field(const struct ctl_record *rec, const char *key)
{
	size_t i;

	for (i = 0; i < rec->n; i++)
		if (strcmp(rec->key[i], key) == 0)
			return rec->value[i];
	return "-";
}

/* ctl_duration - "3d 4h 5m 6s" from a count of seconds */
static void
ctl_duration(struct str *out, const char *secs)
{
	unsigned long s, d, h, m;

	if (!str_to_ulong(secs, strlen(secs), ULONG_MAX, &s)) {
		str_append_cstr(out, secs);
		return;
	}
	d = s / 86400;
	h = s % 86400 / 3600;
	m = s % 3600 / 60;
	s %= 60;
	if (d > 0)
		str_printf(out, "%lud ", d);
	if (d > 0 || h > 0)
		str_printf(out, "%luh ", h);
	if (d > 0 || h > 0 || m > 0)
		str_printf(out, "%lum ", m);
	str_printf(out, "%lus", s);
}

/* The service table's columns: heading and status key. */
static const struct {
	const char *heading;
	const char *key;
} ctl_columns[] = {
	{ "SERVICE", "name" }, { "TYPE", "type" }, { "LISTEN", "listen" },
	{ "USER", "user" }, { "MAXPROC", "maxproc" }, { "PROCS", "procs" },
	{ "AVAIL", "available" }, { "THROTTLED", "throttled" },
	{ "PIDS", "pids" },
};

/* ctl_status_print - the human-readable form */
static void
ctl_status_print(char *text)
{
	struct ctl_record *services = NULL;
	size_t nservices = 0, i, c;
	size_t width[N_ELEMENTS(ctl_columns)];
	struct ctl_record rec;
	bool have_master = false;
	char *line, *next;

	for (line = text; *line != '\0'; line = next) {
		next = line + strcspn(line, "\n");
		if (*next != '\0')
			*next++ = '\0';
		ctl_record_parse(line, &rec);
		if (rec.type == NULL)
			continue;
		if (strcmp(rec.type, "master") == 0) {
			struct str *up = str_new(32, 0);

			ctl_duration(up, ctl_field(&rec, "uptime"));
			printf("master: running, pid %s, up %s, config %s, "
			    "%s service%s\n", ctl_field(&rec, "pid"), str_c(up),
			    ctl_field(&rec, "config"),
			    ctl_field(&rec, "services"),
			    strcmp(ctl_field(&rec, "services"), "1") == 0 ?
			    "" : "s");
			str_free(&up);
			have_master = true;
		} else if (strcmp(rec.type, "service") == 0) {
			services = xreallocarray(services, nservices + 1,
			    sizeof(*services));
			services[nservices++] = rec;
		}
		/* Other record types are for newer tools: skip them. */
	}
	if (!have_master)
		printf("master: running\n");
	if (nservices == 0) {
		printf("no services (master.conf defines none)\n");
		free(services);
		return;
	}
	for (c = 0; c < N_ELEMENTS(ctl_columns); c++) {
		width[c] = strlen(ctl_columns[c].heading);
		for (i = 0; i < nservices; i++)
			width[c] = MAX(width[c],
			    strlen(ctl_field(&services[i], ctl_columns[c].key)));
	}
	printf("\n");
	for (c = 0; c + 1 < N_ELEMENTS(ctl_columns); c++)
		printf("%-*s  ", (int)width[c], ctl_columns[c].heading);
	printf("%s\n", ctl_columns[c].heading);
	for (i = 0; i < nservices; i++) {
		for (c = 0; c < N_ELEMENTS(ctl_columns); c++) {
			const char *v = ctl_field(&services[i],
			    ctl_columns[c].key);

			if (c + 1 < N_ELEMENTS(ctl_columns))
				printf("%-*s  ", (int)width[c], v);
			else
				printf("%s\n", v);
		}
	}
	free(services);
}

/* postern_cmd_status - is master running; what are its services doing */
int
postern_cmd_status(int argc, char **argv)
{
	struct ctl ctl;
	struct str *text = NULL;
	bool raw = false;
	pid_t pid;
	int c, rc = POSTERN_EXIT_FAIL;

	optind = 0;
	opterr = 0;	/* our own message, below */
	while ((c = getopt(argc, argv, "+k")) != -1) {
		switch (c) {
		case 'k':
			raw = true;
			break;
		default:
			return postern_usage_error("status", "status: unknown "
			    "option -%c", optopt);
		}
	}
	if (optind < argc)
		return postern_usage_error("status", "unexpected argument "
		    "\"%s\"", argv[optind]);
	if (!ctl_init(&ctl))
		return POSTERN_EXIT_FAIL;
	pid = ctl_master_pid(&ctl, true);
	if (pid <= 0)
		goto out;
	rc = POSTERN_EXIT_OK;
	text = str_new(4096, 0);
	if (ctl_status_read(str_c(ctl.status_path), text) < 0) {
		/* Running is what the exit status reports; say the rest. */
		postern_warn("master is running (pid %ld) but its status is "
		    "not available (see %s)", (long)pid, ctl.log_file);
		if (!raw)
			printf("master: running, pid %ld\n", (long)pid);
		goto out;
	}
	if (raw) {
		fwrite(str_c(text), 1, str_len(text), stdout);
		if (str_len(text) > 0 && str_c(text)[str_len(text) - 1] != '\n')
			putchar('\n');
	} else {
		ctl_status_print(str_data(text));
	}
out:
	str_free(&text);
	ctl_deinit(&ctl);
	return rc;
}
