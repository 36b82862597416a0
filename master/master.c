/* SPDX-License-Identifier: MIT */
/*
 * master - the Postern supervisor: binds listeners, spawns and restarts workers
 *
 * DESCRIPTION
 *	master -c CONFIG_DIR [-f] [-v]
 *
 *	Reads postern.conf and master.conf from CONFIG_DIR and refuses to
 *	start if either has any error (each is printed as FILE:LINE on
 *	standard error and logged). It then takes the lock and pid file
 *	$queue_directory/pid/master.pid (one master per instance), binds
 *	every service's listeners, opens the status socket, and runs its
 *	event loop until SIGTERM or SIGINT. Without -f it daemonizes first;
 *	the parent process exits only when the daemon is ready (0) or has
 *	failed (1, with the reason on standard error), so `postern start`
 *	gets a real exit status.
 *
 *	The process model, reload and stop are described in master(8) and
 *	in master_service.c; spawning and reaping in master_spawn.c.
 *
 *	Errors before the daemon is ready stop it (exit 1); after that,
 *	trouble with one service is logged and the rest carry on.
 *
 * SECURITY
 *	Runs as root when started by root: it must bind privileged ports
 *	and start workers under other accounts. It never reads network
 *	input: it reads its own configuration files, fixed-size status
 *	records from its workers' pipes, and nothing from the status socket
 *	(it only writes there). Workers are fork+exec'd with only their
 *	sockets open and drop privileges themselves (lib/server.c) to the
 *	service's user, chrooted into $queue_directory if configured.
 *	The only file it writes besides its pid file and sockets is the
 *	TLS session ticket key file $queue_directory/pid/tls_ticket_keys
 *	(mode 0600, atomically replaced; lib/tls_ticket.c), which workers
 *	read in pre_jail, before they drop privileges.
 *	Started by another user, privilege separation is off: it logs that
 *	once and everything runs as that user.
 *
 * DIAGNOSTICS
 *	Configuration errors as FILE:LINE: reason. "process PATH pid N exit
 *	status S" and "process PATH pid N killed by signal S" when a worker
 *	dies abnormally; "service NAME throttled for Ns after worker
 *	failure" when a service stops being restarted for a while.
 *
 * SEE ALSO
 *	master(8), postern.conf(5), master.conf(5); Postfix src/master/.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "privsep.h"
#include "safe_file.h"
#include "tls_ticket.h"

#include "master.h"

#define MASTER_DEFAULT_CONFIG_DIR "/etc/postern"
/* After SIGKILL, how long to wait for the kernel before giving up. */
#define MASTER_KILL_WAIT_MS 5000

struct master_state master = { .status_fd = -1 };

static int master_ready_fd = -1;	/* daemonizing: the parent waits on it */
static bool master_opt_verbose;
static bool master_have_pid_file;
static struct event_timer *master_stop_timer;

/* master_usage - bad command line */
static void NORETURN
master_usage(void)
{
	fprintf(stderr, "usage: master [-f] [-v] [-c config_dir]\n");
	exit(1);
}

/* master_tell_parent - report readiness or failure to the waiting parent */
static void
master_tell_parent(const char *msg)
{
	size_t len = strlen(msg);
	ssize_t n;

	if (master_ready_fd < 0)
		return;
	while (len > 0) {
		n = write(master_ready_fd, msg, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		msg += n;
		len -= (size_t)n;
	}
	(void)close(master_ready_fd);
	master_ready_fd = -1;
}

/* master_cleanup - undo what a failed start created */
static void
master_cleanup(void)
{
	master_status_close();
	if (master.loop != NULL)
		master_services_stop();
	if (master_have_pid_file)
		(void)unlink(master.pid_path);
	master_have_pid_file = false;
}

/* master_fatal_hook - log_fatal() is ending us */
static void
master_fatal_hook(void)
{
	master_tell_parent("ERR fatal error; see the log\n");
	master_signal_all(SIGTERM);
	if (master_have_pid_file)
		(void)unlink(master.pid_path);
}

/* master_fail - start-up failed: log, tell the parent, clean up, exit 1 */
static void PRINTF_LIKE(1, 2) NORETURN
master_fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_error(NULL, "%s", buf);
	if (master_ready_fd >= 0) {
		char *msg = xasprintf("ERR %s\n", buf);

		master_tell_parent(msg);
		free(msg);
	} else {
		fprintf(stderr, "master: %s\n", buf);
	}
	master_cleanup();
	exit(1);
}

/* master_open_log - log where cfg says */
static int
master_open_log(const struct config *cfg, const char **what_r)
{
	const char *file = config_str(cfg, "maillog_file");

	log_set_syslog_name(config_str(cfg, "syslog_name"));
	if (*file != '\0') {
		*what_r = file;
		return log_open_file(file);
	}
	*what_r = config_str(cfg, "syslog_facility");
	return log_open_syslog(*what_r);
}

/*
 * master_conf_errors_to_log - postern.conf is broken: its errors went to
 * stderr as they were found; log them once more where the log would go,
 * if the (unexpanded) logging settings can be read.
 */
static void
master_conf_errors_to_log(const struct config *bad, const char *path)
{
	const char *file = config_raw(bad, "maillog_file");
	const char *fac = config_raw(bad, "syslog_facility");
	struct config *again;
	const char *error;

	if (file == NULL || strchr(file, '$') != NULL ||
	    strcmp(file, "-") == 0 || strcmp(file, "/dev/stderr") == 0)
		return;
	if (*file != '\0') {
		if (log_open_file(file) < 0)
			return;
	} else if (fac == NULL || strchr(fac, '$') != NULL ||
	    log_open_syslog(fac) < 0) {
		return;
	}
	again = config_new(master.config_dir);
	(void)config_load(again, path, &error);
	log_error(NULL, "%s: configuration errors; master not started", path);
	config_free(&again);
}

/* master_print_errors - each "FILE:LINE: reason" line to stderr and the log */
static void
master_print_errors(const struct str *errors, bool to_stderr)
{
	const char *p = str_c(errors), *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (nl > p) {
			if (to_stderr)
				fprintf(stderr, "master: %.*s\n", (int)(nl - p), p);
			log_error(NULL, "%.*s", (int)(nl - p), p);
		}
		p = *nl == '\0' ? nl : nl + 1;
	}
}

/* master_load - both configuration files; NULL master.conf on errors */
static struct master_conf *
master_load(struct config *cfg, bool to_stderr)
{
	struct master_conf *mc = NULL;
	struct str *errors = str_new(0, 0);
	char *path = xasprintf("%s/master.conf", master.config_dir);

	if (master_conf_load(path, &mc, errors) < 0 ||
	    master_services_check(mc, cfg, errors) < 0) {
		if (str_len(errors) == 0)
			str_printf(errors, "%s: cannot be loaded\n", path);
		master_print_errors(errors, to_stderr);
		master_conf_free(&mc);
	}
	str_free(&errors);
	free(path);
	return mc;
}

/* master_daemonize - fork; the parent waits for the child to be ready */
static void
master_daemonize(void)
{
	char buf[1024];
	size_t len = 0;
	ssize_t n;
	int fds[2], fd;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "master: pipe: %s\n", strerror(errno));
		exit(1);
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "master: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		(void)close(fds[1]);
		while (len < sizeof(buf) - 1) {
			n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		buf[len] = '\0';
		if (strncmp(buf, "OK", 2) == 0)
			exit(0);
		if (strncmp(buf, "ERR ", 4) == 0)
			fprintf(stderr, "master: %s", buf + 4);
		else
			fprintf(stderr, "master: failed to start; see the log\n");
		exit(1);
	}
	(void)close(fds[0]);
	master_ready_fd = fds[1];
	if (setsid() < 0)
		master_fail("setsid: %m");
	if ((fd = open("/dev/null", O_RDWR)) < 0)
		master_fail("open /dev/null: %m");
	(void)dup2(fd, STDIN_FILENO);
	(void)dup2(fd, STDOUT_FILENO);
	if (fd > STDERR_FILENO)
		(void)close(fd);
}

/* master_ready - everything is up: release the waiting parent */
static void
master_ready(void)
{
	int fd;

	if (master_ready_fd < 0)
		return;
	if (!master.foreground && (fd = open("/dev/null", O_RDWR)) >= 0) {
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void)close(fd);
	}
	master_tell_parent("OK\n");
}

/* master_exit_stopped - the end of an orderly stop */
void
master_exit_stopped(void)
{
	event_timer_remove(master.loop, &master_stop_timer);
	if (master_have_pid_file)
		(void)unlink(master.pid_path);
	log_info(NULL, "stopped");
	exit(0);
}

/* master_kill_wait_event - SIGKILLed workers did not go away either */
static void
master_kill_wait_event(void *ctx UNUSED)
{
	const struct master_proc *p;

	master_stop_timer = NULL;
	for (p = master.procs; p != NULL; p = p->next)
		log_error(NULL, "process %s pid %ld did not die; giving up",
		    p->svc->path, (long)p->pid);
	master_exit_stopped();
}

/* master_stop_timeout_event - workers did not stop in time */
static void
master_stop_timeout_event(void *ctx UNUSED)
{
	master_stop_timer = NULL;
	log_warn(NULL, "workers did not stop within %us; killing them",
	    config_time(conf(), "master_stop_timeout"));
	master_signal_all(SIGKILL);
	master_stop_timer = event_timer_add(master.loop, MASTER_KILL_WAIT_MS,
	    master_kill_wait_event, NULL);
}

/* master_stop - orderly stop (SIGTERM, SIGINT) */
static void
master_stop(int signo)
{
	if (master.stopping) {
		/* Asked again: do not wait for the stragglers. */
		log_info(NULL, "signal %d again: killing the workers", signo);
		event_timer_remove(master.loop, &master_stop_timer);
		master_signal_all(SIGKILL);
		master_stop_timer = event_timer_add(master.loop,
		    MASTER_KILL_WAIT_MS, master_kill_wait_event, NULL);
		return;
	}
	master.stopping = true;
	log_info(NULL, "stopping on signal %d", signo);
	master_status_close();
	master_services_stop();
	master_signal_all(SIGTERM);
	if (master.procs == NULL)
		master_exit_stopped();
	master_stop_timer = event_timer_add(master.loop,
	    config_time(conf(), "master_stop_timeout") * 1000U,
	    master_stop_timeout_event, NULL);
}

/* master_tls_keys - see master.h */
void
master_tls_keys(bool force)
{
	unsigned lifetime = config_time(conf(), "tls_session_ticket_key_lifetime");
	struct str *err;
	time_t now = time(NULL);
	char *path;

	if (lifetime == 0 || (!force && now < master.tls_keys_due))
		return;
	err = str_new(0, 0);
	path = xasprintf("%s/%s", master.queue_dir, TLS_TICKET_KEYS_FILE);
	if (tls_ticket_keys_update(path, lifetime, now, &master.tls_keys_due,
	    err) < 0) {
		log_error(NULL, "TLS session ticket keys: %s", str_c(err));
		/* Try again with the next spawn a minute from now. */
		master.tls_keys_due = now + 60;
	}
	free(path);
	str_free(&err);
}

/* master_reload - SIGHUP: re-read both files; keep the old on any error */
static void
master_reload(void)
{
	char *path = xasprintf("%s/postern.conf", master.config_dir);
	struct config *cfg = config_new(master.config_dir);
	struct master_conf *mc;
	const char *error = NULL, *what;
	char *apply_error = NULL;

	log_info(NULL, "reload: reading %s", master.config_dir);
	if (config_load(cfg, path, &error) < 0) {
		log_error(NULL, "reload: %s: %s; keeping the old configuration",
		    path, error != NULL ? error : "errors");
		config_free(&cfg);
		free(path);
		return;
	}
	free(path);
	if ((mc = master_load(cfg, false)) == NULL) {
		log_error(NULL, "reload: errors in master.conf; keeping the "
		    "old configuration");
		config_free(&cfg);
		return;
	}
	config_set_global(cfg);
	if (master_open_log(conf(), &what) < 0)
		log_error(NULL, "reload: cannot log to %s: %m", what);
	master.verbose = master_opt_verbose || config_bool(conf(), "debug");
	log_set_debug(master.verbose);
	/* The lifetime may have changed: check the keys before any spawn. */
	master_tls_keys(true);
	/* Workers started before now exit once idle: see master(8). */
	master_recycle_all();
	(void)master_services_apply(mc, false, &apply_error);
	free(apply_error);
}

/* master_signal - SIGCHLD, SIGHUP, SIGTERM, SIGINT through the loop */
static void
master_signal(void *ctx UNUSED, int signo)
{
	switch (signo) {
	case SIGCHLD:
		master_reap();
		if (master.stopping && master.procs == NULL)
			master_exit_stopped();
		break;
	case SIGHUP:
		if (!master.stopping)
			master_reload();
		break;
	case SIGTERM:
	case SIGINT:
		master_stop(signo);
		break;
	}
}

/* master_invoker - the name of the user we run as */
static char *
master_invoker(void)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw != NULL)
		return xstrdup(pw->pw_name);
	return xasprintf("%ld", (long)getuid());
}

/* master_run - the daemon proper */
static void NORETURN
master_run(void)
{
	static const int signals[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
	struct master_conf *mc;
	const char *error;
	char *status_path, *apply_error = NULL;
	pid_t other;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &master.started);
	/* In master (not locals): master_fail() exits with them reachable. */
	master.queue_dir = xstrdup(config_str(conf(), "queue_directory"));
	master.pid_dir = xasprintf("%s/pid", master.queue_dir);
	if (mkdir_p(master.pid_dir, 0755) < 0)
		master_fail("cannot create %s: %m", master.pid_dir);
	master.pid_path = xasprintf("%s/master.pid", master.pid_dir);
	if (pid_file_write(master.pid_path) < 0) {
		if (errno == EWOULDBLOCK) {
			other = pid_file_read(master.pid_path);
			master_fail("master is already running for %s (pid %ld, "
			    "%s is locked)", master.config_dir, (long)other,
			    master.pid_path);
		}
		master_fail("pid file %s: %m", master.pid_path);
	}
	master_have_pid_file = true;
	/* As Postfix: a daemon holds no other directory busy. */
	if (chdir(master.queue_dir) < 0)
		master_fail("chdir %s: %m", master.queue_dir);

	master.privsep = privsep_enabled();
	master.invoker = master_invoker();
	if (!master.privsep)
		log_info(NULL, "privilege separation is off: running all "
		    "services as %s", master.invoker);

	master_tls_keys(true);
	if ((master.loop = event_loop_new()) == NULL)
		master_fail("event loop: %m");
	for (i = 0; i < N_ELEMENTS(signals); i++) {
		if (event_signal_add(master.loop, signals[i], master_signal,
		    NULL) < 0)
			master_fail("signal %d: %m", signals[i]);
	}
	mc = master.initial;
	master.initial = NULL;
	if (master_services_apply(mc, true, &apply_error) < 0) {
		master.fail_text = apply_error;
		master_fail("%s", apply_error);
	}
	status_path = xasprintf("%s/master.status", master.pid_dir);
	if (master_status_open(status_path, &error) < 0) {
		master.fail_text = status_path;
		master_fail("status socket %s: %s: %m", status_path, error);
	}
	free(status_path);
	log_info(NULL, "daemon started -- configuration %s, %zu services",
	    master.config_dir, master_services_count());
	master_ready();
	if (event_loop_run(master.loop) < 0)
		log_fatal(NULL, "event loop: %m");
	log_panic(NULL, "event loop returned");
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *error = NULL, *what;
	struct master_conf *mc;
	struct config *cfg;
	char *path;
	int c;

	log_init("master");
	while ((c = getopt(argc, argv, "c:fv")) != -1) {
		switch (c) {
		case 'c':
			dir = optarg;
			break;
		case 'f':
			master.foreground = true;
			break;
		case 'v':
			master_opt_verbose = true;
			break;
		default:
			master_usage();
		}
	}
	if (optind != argc)
		master_usage();
	if (dir == NULL && (dir = getenv("POSTERN_CONFIG_DIR")) == NULL)
		dir = MASTER_DEFAULT_CONFIG_DIR;
	if ((master.config_dir = realpath(dir, NULL)) == NULL) {
		fprintf(stderr, "master: configuration directory %s: %s\n",
		    dir, strerror(errno));
		return 1;
	}
	(void)signal(SIGPIPE, SIG_IGN);
	(void)umask(022);
	log_set_fatal_hook(master_fatal_hook);

	/* postern.conf: errors go to stderr as they are found. */
	cfg = config_new(master.config_dir);
	path = xasprintf("%s/postern.conf", master.config_dir);
	if (config_load(cfg, path, &error) < 0) {
		fprintf(stderr, "master: %s: %s; not started\n", path,
		    error != NULL ? error : "errors");
		master_conf_errors_to_log(cfg, path);
		config_free(&cfg);
		free(path);
		return 1;
	}
	free(path);
	config_set_global(cfg);
	if (master_open_log(conf(), &what) < 0) {
		fprintf(stderr, "master: cannot log to %s: %s\n", what,
		    strerror(errno));
		return 1;
	}
	master.verbose = master_opt_verbose || config_bool(conf(), "debug");
	log_set_debug(master.verbose);

	if ((mc = master_load(conf(), true)) == NULL) {
		fprintf(stderr, "master: configuration errors; not started\n");
		return 1;
	}
	master.initial = mc;
	if (!master.foreground)
		master_daemonize();
	master_run();
}
