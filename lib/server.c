/* SPDX-License-Identifier: MIT */
/*
 * server - the skeleton every master-spawned daemon runs in
 *
 * DESCRIPTION
 *	See server.h for the contract (options, the master interface,
 *	wakeups, single and multi mode, stand-alone mode).
 *
 *	Start-up order: options; postern.conf and -o overrides; logging;
 *	the inherited fds are checked (a daemon started by hand without -S
 *	stops here); chdir($queue_directory); pre_jail(); privsep_drop();
 *	clean environment and umask; post_jail(); serve.
 *
 *	Single mode polls the status pipe (with no events: a write end
 *	reports POLLERR once master's read end is closed) and every
 *	listener, with $max_idle as the deadline since the last piece of
 *	work. All idle workers of a service wake for each connection and
 *	race for it; the losers get EAGAIN from the non-blocking accept and
 *	go back to sleep (Postfix does the same without an accept lock).
 *	Master counts a freshly spawned worker as available; the worker says
 *	BUSY after it accepted and AVAILABLE when it is done, so master
 *	spawns another worker exactly when a connection waits and nobody is
 *	free to take it.
 *
 *	Multi mode runs everything from one event loop: the listeners are
 *	watched while the process has room ($max_connections) and is not
 *	draining; draining starts when master goes away or $max_use is
 *	reached, and the process exits when its last connection ends.
 *
 *	Errors: trouble with one connection (accept failing, a peer that
 *	went away) is logged and the worker carries on; trouble with the
 *	environment (no listeners, bad config, no such user) is log_fatal.
 *
 * SECURITY
 *	Runs as root until privsep_drop(); nothing read from the network
 *	is looked at before that (the skeleton reads no client data at
 *	all, except the wakeup byte on a connection whose kernel-verified
 *	peer is master). Master's status pipe carries only fixed-size
 *	records that the worker writes.
 *
 * SEE ALSO
 *	master(8); Postfix src/master/single_server.c, multi_server.c,
 *	trigger_server.c.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "privsep.h"
#include "server.h"
#include "str.h"

#define SERVER_DEFAULT_CONFIG_DIR "/etc/postern"
#define SERVER_MAX_LISTEN 64
#define SERVER_WAKEUP_WAIT_MS 1000
#define SERVER_ADDR_MAX NI_MAXHOST

/* The parsed command line. */
struct server_args {
	const char *config_dir;
	const char *name;
	const char *type;
	const char *user;
	bool chroot;
	bool standalone;
	bool verbose;
	const char **overrides;	/* "k=v" */
	size_t noverrides;
	char **own;		/* the daemon's own arguments */
};

struct server_listener {
	int fd;
	bool fifo;
	int family;		/* sockets: AF_INET, AF_INET6, AF_UNIX */
};

static const struct server_ops *server_ops;
static char *server_name;
static char **server_own_argv;
static struct event_loop *server_evloop;
static struct server_listener *server_listeners;
static size_t server_nlisteners;
static pid_t server_master_pid;
static bool server_standalone;
static bool server_master_gone;
static unsigned long server_max_use;
static unsigned long server_max_conn;
static unsigned server_max_idle;
static unsigned long server_uses;
static unsigned long server_open;	/* multi mode */
static bool server_full;		/* multi mode: listeners off, told BUSY */
static bool server_draining;		/* multi mode: accept no more */
static struct event_timer *server_idle_timer;
static pid_t server_relay_pid;
static const char *server_cur_peer;	/* single mode, during serve() */
static volatile sig_atomic_t server_recycle;	/* SIGHUP: master reloaded */
static sigset_t server_wait_mask;	/* single mode: SIGHUP unblocked */

static void server_multi_listen(bool on);

/* server_now_ms - CLOCK_MONOTONIC in milliseconds */
static int64_t
server_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* server_exit - a normal end of the process */
static void NORETURN
server_exit(void)
{
	if (server_ops->pre_exit != NULL)
		server_ops->pre_exit();
	exit(0);
}

/* server_value_opt - is c an option that takes a value? */
static bool
server_value_opt(char c)
{
	return c == 'c' || c == 'n' || c == 't' || c == 'u' || c == 'o';
}

/* server_flag_opt - is c an option without a value? */
static bool
server_flag_opt(char c)
{
	return c == 'r' || c == 'S' || c == 'v';
}

/* server_ours - does arg consist of our options only? */
static bool
server_ours(const char *arg)
{
	const char *p;

	if (arg[0] != '-' || arg[1] == '\0')
		return false;
	for (p = arg + 1; *p != '\0'; p++) {
		if (server_value_opt(*p))
			return true;
		if (!server_flag_opt(*p))
			return false;
	}
	return true;
}

/* server_parse_args - split argv into our options and the daemon's own */
static void
server_parse_args(int argc, char **argv, struct server_args *a)
{
	size_t nown = 0;
	const char *p, *val;
	bool rest = false;
	int i;

	a->own = xcalloc((size_t)argc + 1, sizeof(*a->own));
	a->overrides = xcalloc((size_t)argc + 1, sizeof(*a->overrides));
	for (i = 1; i < argc; i++) {
		if (rest || !server_ours(argv[i])) {
			if (!rest && strcmp(argv[i], "--") == 0) {
				rest = true;
				continue;
			}
			a->own[nown++] = argv[i];
			continue;
		}
		for (p = argv[i] + 1; *p != '\0'; p++) {
			if (server_flag_opt(*p)) {
				if (*p == 'r')
					a->chroot = true;
				else if (*p == 'S')
					a->standalone = true;
				else
					a->verbose = true;
				continue;
			}
			if (p[1] != '\0')
				val = p + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				log_fatal(NULL, "option -%c needs a value", *p);
			switch (*p) {
			case 'c':
				a->config_dir = val;
				break;
			case 'n':
				a->name = val;
				break;
			case 't':
				a->type = val;
				break;
			case 'u':
				a->user = val;
				break;
			case 'o':
				a->overrides[a->noverrides++] = val;
				break;
			}
			break;
		}
	}
	a->own[nown] = NULL;
}

/* server_load_config - postern.conf plus -o overrides into conf() */
static void
server_load_config(const struct server_args *a)
{
	const char *dir = a->config_dir, *error = NULL;
	struct config *cfg;
	char *path, *name;
	size_t i;

	if (dir == NULL)
		dir = getenv("POSTERN_CONFIG_DIR");
	if (dir == NULL || *dir == '\0')
		dir = SERVER_DEFAULT_CONFIG_DIR;
	cfg = config_new(dir);
	path = xasprintf("%s/postern.conf", dir);
	if (config_load(cfg, path, &error) < 0)
		log_fatal(NULL, "%s: %s", path, error != NULL ? error :
		    "configuration error");
	free(path);
	for (i = 0; i < a->noverrides; i++) {
		const char *eq = strchr(a->overrides[i], '=');

		if (eq == NULL)
			log_fatal(NULL, "-o %s: expected name=value",
			    a->overrides[i]);
		name = xstrndup(a->overrides[i], (size_t)(eq - a->overrides[i]));
		if (config_set(cfg, name, eq + 1, &error) < 0)
			log_fatal(NULL, "-o %s: %s", a->overrides[i], error);
		free(name);
	}
	config_set_global(cfg);
}

/* server_open_log - log where postern.conf says */
static void
server_open_log(bool verbose)
{
	const char *file = config_str(conf(), "maillog_file");
	const char *facility = config_str(conf(), "syslog_facility");

	log_set_syslog_name(config_str(conf(), "syslog_name"));
	if (*file != '\0') {
		if (log_open_file(file) < 0)
			log_fatal(NULL, "open log file %s: %m", file);
	} else if (log_open_syslog(facility) < 0) {
		log_fatal(NULL, "unknown syslog_facility: %s", facility);
	}
	if (verbose || config_bool(conf(), "debug"))
		log_set_debug(true);
}

/* server_fd_cloexec - set close-on-exec (and optionally non-blocking) */
static void
server_fd_flags(int fd, bool nonblock)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFD)) < 0 ||
	    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		log_fatal(NULL, "fcntl fd %d: %m", fd);
	if (nonblock && ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		log_fatal(NULL, "fcntl fd %d: %m", fd);
}

/* server_inherit - check and adopt the fds master handed us */
static void
server_inherit(void)
{
	const char *env = getenv(SERVER_LISTEN_FDS_ENV);
	unsigned long n;
	struct sockaddr_storage ss;
	socklen_t len;
	struct stat st;
	size_t i;

	if (env == NULL || !str_to_ulong(env, strlen(env), SERVER_MAX_LISTEN, &n) ||
	    n == 0)
		log_fatal(NULL, "not started by master (no listening sockets "
		    "in $%s); use -S to serve one client on stdin",
		    SERVER_LISTEN_FDS_ENV);
	if (fcntl(SERVER_STATUS_FD, F_GETFD) < 0)
		log_fatal(NULL, "not started by master (no status pipe on fd %d)",
		    SERVER_STATUS_FD);
	(void)unsetenv(SERVER_LISTEN_FDS_ENV);
	server_fd_flags(SERVER_STATUS_FD, false);
	server_listeners = xcalloc(n, sizeof(*server_listeners));
	server_nlisteners = n;
	for (i = 0; i < n; i++) {
		struct server_listener *l = &server_listeners[i];

		l->fd = SERVER_LISTEN_FD + (int)i;
		if (fstat(l->fd, &st) < 0)
			log_fatal(NULL, "listening fd %d: %m", l->fd);
		l->fifo = S_ISFIFO(st.st_mode);
		if (!l->fifo) {
			memset(&ss, 0, sizeof(ss));
			len = sizeof(ss);
			if (!S_ISSOCK(st.st_mode) ||
			    getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
				log_fatal(NULL, "fd %d is not a listening socket",
				    l->fd);
			l->family = ss.ss_family;
		}
		server_fd_flags(l->fd, true);
	}
	server_master_pid = getppid();
}

/* server_drop - chdir, pre_jail, privileges, environment, post_jail */
static void
server_drop(const struct server_args *a)
{
	const char *error, *user = a->user;
	char *qdir = xstrdup(config_str(conf(), "queue_directory"));

	if (chdir(qdir) < 0) {
		if (!a->standalone)
			log_fatal(NULL, "chdir %s: %m", qdir);
		log_warn(NULL, "chdir %s: %m", qdir);
	}
	if (server_ops->pre_jail != NULL)
		server_ops->pre_jail();
	if (privsep_enabled() && user == NULL)
		user = config_str(conf(), "mail_owner");
	if (privsep_drop(user, a->chroot ? qdir : NULL, &error) < 0)
		log_fatal(NULL, "cannot run as user %s%s%s: %s: %m",
		    user != NULL ? user : "?", a->chroot ? " in chroot " : "",
		    a->chroot ? qdir : "", error);
	free(qdir);
	privsep_clean_env(server_ops->keep_env);
	privsep_set_limits();
	if (server_ops->post_jail != NULL)
		server_ops->post_jail();
}

/* server_report - tell master we are busy or available */
static void
server_report(enum server_state state)
{
	struct server_status st;
	ssize_t n;

	if (server_standalone || server_master_gone)
		return;
	memset(&st, 0, sizeof(st));
	st.pid = getpid();
	st.state = (int)state;
	do {
		n = write(SERVER_STATUS_FD, &st, sizeof(st));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(st)) {
		/* EPIPE: master closed the pipe. Finish what we do, then go. */
		log_debug(NULL, "status pipe: %m; master went away");
		server_master_gone = true;
	}
}

/* server_addr - numeric address and port of a socket address */
static void
server_addr(const struct sockaddr_storage *ss, socklen_t len, char *host,
    size_t hostlen, unsigned *port_r)
{
	char serv[NI_MAXSERV];
	unsigned long port;

	*port_r = 0;
	if ((ss->ss_family != AF_INET && ss->ss_family != AF_INET6) ||
	    getnameinfo((const struct sockaddr *)ss, len, host, (socklen_t)hostlen,
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		pst_strlcpy(host, "local", hostlen);
		return;
	}
	if (str_to_ulong(serv, strlen(serv), 65535, &port))
		*port_r = (unsigned)port;
}

/* server_from_master - is this unix connection master's wakeup? */
static bool
server_from_master(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (server_standalone || server_master_pid <= 1 ||
	    getppid() != server_master_pid)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    len != sizeof(cred))
		return false;
	return cred.pid == server_master_pid;
}

/* server_do_wakeup - run the daemon's wakeup callback */
static void
server_do_wakeup(void)
{
	log_debug(NULL, "wakeup");
	if (server_ops->wakeup == NULL)
		return;
	if (!server_ops->multi)
		server_report(SERVER_STATUS_BUSY);
	server_ops->wakeup();
	if (!server_ops->multi)
		server_report(SERVER_STATUS_AVAILABLE);
}

/* server_wakeup_conn - read master's wakeup byte and act on it */
static void
server_wakeup_conn(int fd)
{
	struct pollfd pfd;
	char buf[16];
	size_t got = 0;
	ssize_t n;

	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, SERVER_WAKEUP_WAIT_MS) <= 0)
			break;
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf))
			break;
	}
	(void)close(fd);
	if (got == 1 && buf[0] == SERVER_WAKEUP_BYTE)
		server_do_wakeup();
	else
		log_warn(NULL, "ignoring a malformed wakeup from master (%zu bytes)",
		    got);
}

/* server_fifo_trigger - drain the fifo; any data is one wakeup */
static void
server_fifo_trigger(int fd)
{
	char buf[512];
	bool any = false;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			any = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;		/* EAGAIN: drained (another worker may have won) */
	}
	if (any)
		server_do_wakeup();
}

/* server_accept - accept one connection; -1 if there was none */
static int
server_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
	int fd;

	memset(peer, 0, sizeof(*peer));
	*len = sizeof(*peer);
	fd = accept4(lfd, (struct sockaddr *)peer, len, SOCK_CLOEXEC);
	if (fd >= 0)
		return fd;
	switch (errno) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		break;
	case EINVAL:
		/* Not listening any more: master shut it down (reload, stop). */
		log_debug(NULL, "listener closed by master");
		server_master_gone = true;
		break;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn(NULL, "accept: %m");
		break;
	default:
		log_fatal(NULL, "accept: %m");
	}
	return -1;
}

/* server_serve_fd - hand one accepted connection to the daemon */
static void
server_serve_fd(int fd, const struct sockaddr_storage *peer, socklen_t plen)
{
	char peer_host[SERVER_ADDR_MAX], local_host[SERVER_ADDR_MAX];
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct server_conn conn;

	memset(&conn, 0, sizeof(conn));
	conn.fd = fd;
	conn.service = server_name;
	server_addr(peer, plen, peer_host, sizeof(peer_host), &conn.peer_port);
	memset(&local, 0, sizeof(local));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		local.ss_family = AF_UNSPEC;
	server_addr(&local, llen, local_host, sizeof(local_host),
	    &conn.local_port);
	conn.peer_addr = peer_host;
	conn.local_addr = local_host;
	log_debug(NULL, "connect from %s port %u", conn.peer_addr,
	    conn.peer_port);
	server_uses++;
	if (!server_ops->multi) {
		server_report(SERVER_STATUS_BUSY);
		server_cur_peer = conn.peer_addr;
		server_ops->serve(&conn);
		server_cur_peer = NULL;
		(void)close(fd);
		server_report(SERVER_STATUS_AVAILABLE);
		return;
	}
	server_open++;
	event_timer_remove(server_evloop, &server_idle_timer);
	if (server_max_conn != 0 && server_open >= server_max_conn &&
	    !server_full && !server_standalone) {
		server_full = true;
		server_multi_listen(false);
		server_report(SERVER_STATUS_BUSY);
	}
	server_ops->serve(&conn);
}

/* server_handle - an accepted connection: a wakeup or a client */
static void
server_handle(int fd, int family, const struct sockaddr_storage *peer,
    socklen_t plen)
{
	if (family == AF_UNIX && server_from_master(fd)) {
		server_wakeup_conn(fd);
		return;
	}
	server_serve_fd(fd, peer, plen);
}

/* server_sighup - master reloaded: exit once idle (see server.h) */
static void
server_sighup(int signo UNUSED)
{
	server_recycle = 1;
}

/*
 * server_signals - SIGHUP handling. Single mode: the handler sets a flag,
 * and SIGHUP is blocked except inside the wait for the next connection
 * (ppoll), so it never interrupts serve() (no EINTR in daemon code) and
 * a busy worker sees it when it comes back for more. Multi mode keeps
 * running (it ignores SIGHUP).
 */
static void
server_signals(void)
{
	struct sigaction sa;
	sigset_t hup;

	if (server_ops->multi || server_standalone) {
		(void)signal(SIGHUP, SIG_IGN);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = server_sighup;
	(void)sigemptyset(&sa.sa_mask);
	(void)sigemptyset(&hup);
	(void)sigaddset(&hup, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &hup, &server_wait_mask) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		log_fatal(NULL, "cannot set up SIGHUP: %m");
	(void)sigdelset(&server_wait_mask, SIGHUP);
}

/* server_single_loop - one connection at a time until a reason to exit */
static void NORETURN
server_single_loop(void)
{
	struct pollfd *pfd;
	struct sockaddr_storage peer;
	socklen_t plen;
	int64_t now, deadline;	/* ms */
	size_t i, k, start = 0, n = server_nlisteners;
	struct timespec ts;
	int r, timeout, fd;
	bool worked;

	ASSERT(n > 0);
	pfd = xcalloc(n + 1, sizeof(*pfd));
	deadline = server_now_ms() + (int64_t)server_max_idle * 1000;
	for (;;) {
		if (server_master_gone) {
			log_debug(NULL, "master went away; exiting");
			server_exit();
		}
		if (server_max_use != 0 && server_uses >= server_max_use) {
			log_debug(NULL, "served %lu connections; exiting",
			    server_uses);
			server_exit();
		}
		if (server_recycle) {
			log_debug(NULL, "master reloaded; exiting");
			server_exit();
		}
		timeout = -1;
		if (server_max_idle != 0) {
			now = server_now_ms();
			if (now >= deadline) {
				log_debug(NULL, "idle for %us; exiting",
				    server_max_idle);
				server_exit();
			}
			timeout = (int)MIN(deadline - now, (int64_t)INT_MAX);
		}
		if (server_ops->idle != NULL) {
			unsigned ms = server_ops->idle();

			if (ms > 0 && ms <= INT_MAX &&
			    (timeout < 0 || (int)ms < timeout))
				timeout = (int)ms;
		}
		pfd[0].fd = SERVER_STATUS_FD;
		pfd[0].events = 0;
		pfd[0].revents = 0;
		for (i = 0; i < n; i++) {
			pfd[i + 1].fd = server_listeners[i].fd;
			pfd[i + 1].events = POLLIN;
			pfd[i + 1].revents = 0;
		}
		if (timeout >= 0) {
			ts.tv_sec = timeout / 1000;
			ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		}
		r = ppoll(pfd, n + 1, timeout >= 0 ? &ts : NULL,
		    &server_wait_mask);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_fatal(NULL, "poll: %m");
		}
		if (r == 0 || server_recycle)
			continue;	/* the checks above exit */
		if (pfd[0].revents != 0) {
			server_master_gone = true;
			continue;
		}
		/* Start at a different listener each round: no starving. */
		worked = false;
		for (k = 0; k < n && !worked; k++) {
			i = (start + k) % n;
			if (pfd[i + 1].revents == 0)
				continue;
			if ((pfd[i + 1].revents & (POLLHUP | POLLERR)) != 0) {
				/* master shut the listener down (reload, stop) */
				server_master_gone = true;
				break;
			}
			if (server_listeners[i].fifo) {
				server_fifo_trigger(server_listeners[i].fd);
				worked = true;
				continue;
			}
			fd = server_accept(server_listeners[i].fd, &peer, &plen);
			if (fd < 0)
				continue;
			server_handle(fd, server_listeners[i].family, &peer,
			    plen);
			worked = true;
		}
		start = (start + 1) % n;
		if (worked)
			deadline = server_now_ms() +
			    (int64_t)server_max_idle * 1000;
	}
}

/* server_multi_idle - no connection for $max_idle seconds */
static void
server_multi_idle(void *ctx UNUSED)
{
	server_idle_timer = NULL;
	if (server_open == 0) {
		log_debug(NULL, "idle for %us; exiting", server_max_idle);
		server_exit();
	}
}

/* server_multi_arm_idle - start the idle clock (no connections open) */
static void
server_multi_arm_idle(void)
{
	if (server_max_idle == 0 || server_standalone ||
	    server_idle_timer != NULL)
		return;
	server_idle_timer = event_timer_add(server_evloop,
	    server_max_idle * 1000U, server_multi_idle, NULL);
}

/* server_multi_drain - accept no more; exit when the last one ends */
static void
server_multi_drain(void)
{
	if (!server_draining) {
		server_draining = true;
		server_multi_listen(false);
		server_report(SERVER_STATUS_BUSY);
	}
	if (server_open == 0)
		server_exit();
}

/* server_multi_accept - a listener is readable */
static void
server_multi_accept(void *ctx, int lfd UNUSED, unsigned events)
{
	struct server_listener *l = ctx;
	struct sockaddr_storage peer;
	socklen_t plen;
	int fd;

	if ((events & EVENT_ERROR) != 0) {
		/* master shut the listener down (reload, stop) */
		server_master_gone = true;
		server_multi_drain();
		return;
	}
	if (l->fifo) {
		server_fifo_trigger(l->fd);
		return;
	}
	while (!server_full && !server_draining) {
		if ((fd = server_accept(l->fd, &peer, &plen)) < 0) {
			if (server_master_gone)
				server_multi_drain();
			break;
		}
		server_handle(fd, l->family, &peer, plen);
		if (server_max_use != 0 && server_uses >= server_max_use) {
			log_debug(NULL, "served %lu connections; draining",
			    server_uses);
			server_multi_drain();
		}
	}
}

/* server_multi_listen - watch the listeners or stop watching them */
static void
server_multi_listen(bool on)
{
	size_t i;

	for (i = 0; i < server_nlisteners; i++) {
		struct server_listener *l = &server_listeners[i];

		if (on && !server_draining) {
			if (event_fd_add(server_evloop, l->fd, EVENT_READ,
			    server_multi_accept, l) < 0 && errno != EEXIST)
				log_fatal(NULL, "event_fd_add: %m");
		} else {
			(void)event_fd_remove(server_evloop, l->fd);
		}
	}
}

/* server_multi_status - the status pipe broke: master went away */
static void
server_multi_status(void *ctx UNUSED, int fd, unsigned events)
{
	if ((events & EVENT_ERROR) == 0)
		return;
	(void)event_fd_remove(server_evloop, fd);
	log_debug(NULL, "master went away; draining");
	server_master_gone = true;
	server_multi_drain();
}

/* server_conn_done - multi mode: the daemon finished a connection */
void
server_conn_done(void)
{
	ASSERT(server_ops != NULL && server_ops->multi);
	ASSERT(server_open > 0);
	server_open--;
	if (server_standalone) {
		if (server_open == 0)
			event_loop_stop(server_evloop);
		return;
	}
	if (server_draining) {
		if (server_open == 0)
			server_exit();
		return;
	}
	if (server_full && server_open < server_max_conn) {
		server_full = false;
		server_multi_listen(true);
		server_report(SERVER_STATUS_AVAILABLE);
	}
	if (server_open == 0)
		server_multi_arm_idle();
}

/* server_multi_loop - run the daemon's event loop with our listeners */
static void NORETURN
server_multi_loop(void)
{
	if (event_fd_add(server_evloop, SERVER_STATUS_FD, EVENT_READ,
	    server_multi_status, NULL) < 0)
		log_fatal(NULL, "event_fd_add status pipe: %m");
	server_multi_listen(true);
	server_multi_arm_idle();
	if (event_loop_run(server_evloop) < 0)
		log_fatal(NULL, "event loop: %m");
	server_exit();
}

/* server_relay - bridge stdin/stdout and a socket until both sides end */
static void NORETURN
server_relay(int s)
{
	char in[4096], out[4096];
	size_t in_len = 0, out_len = 0;
	bool in_eof = false, s_eof = false, shut = false;
	struct pollfd pfd[3];
	ssize_t n;
	int fl;

	if ((fl = fcntl(s, F_GETFL)) >= 0)
		(void)fcntl(s, F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		if (in_eof && in_len == 0 && !shut) {
			(void)shutdown(s, SHUT_WR);
			shut = true;
		}
		if (s_eof && out_len == 0)
			_exit(0);
		pfd[0].fd = !in_eof && in_len == 0 ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = s;
		pfd[1].events = (!s_eof && out_len == 0 ? POLLIN : 0) |
		    (in_len > 0 ? POLLOUT : 0);
		pfd[2].fd = out_len > 0 ? STDOUT_FILENO : -1;
		pfd[2].events = POLLOUT;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (pfd[0].revents != 0) {
			n = read(STDIN_FILENO, in, sizeof(in));
			if (n > 0)
				in_len = (size_t)n;
			else if (n == 0 || errno != EINTR)
				in_eof = true;
		}
		if ((pfd[1].revents & POLLOUT) != 0 && in_len > 0) {
			n = write(s, in, in_len);
			if (n > 0) {
				memmove(in, in + n, in_len - (size_t)n);
				in_len -= (size_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				in_len = 0;
				in_eof = true;
			}
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
		    !s_eof && out_len == 0) {
			n = read(s, out, sizeof(out));
			if (n > 0)
				out_len = (size_t)n;
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
				s_eof = true;
		}
		if (pfd[2].revents != 0 && out_len > 0) {
			n = write(STDOUT_FILENO, out, out_len);
			if (n > 0) {
				memmove(out, out + n, out_len - (size_t)n);
				out_len -= (size_t)n;
			} else if (n < 0 && errno != EINTR) {
				_exit(1);
			}
		}
	}
}

/* server_standalone_fd - the connection for -S */
static int
server_standalone_fd(void)
{
	struct stat st;
	int sv[2], fd;
	pid_t pid;

	if (fstat(STDIN_FILENO, &st) == 0 && S_ISSOCK(st.st_mode)) {
		if ((fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)) < 0)
			log_fatal(NULL, "dup stdin: %m");
		return fd;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		log_fatal(NULL, "socketpair: %m");
	if ((pid = fork()) < 0)
		log_fatal(NULL, "fork: %m");
	if (pid == 0) {
		(void)close(sv[0]);
		server_relay(sv[1]);
	}
	(void)close(sv[1]);
	server_relay_pid = pid;
	return sv[0];
}

/* server_run_standalone - -S: serve stdin/stdout once */
static void NORETURN
server_run_standalone(void)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int fd, status;

	fd = server_standalone_fd();
	memset(&peer, 0, sizeof(peer));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
		memset(&peer, 0, sizeof(peer));
		peer.ss_family = AF_UNIX;
		plen = sizeof(sa_family_t);
	}
	server_serve_fd(fd, &peer, plen);
	if (server_ops->multi) {
		if (event_loop_run(server_evloop) < 0)
			log_fatal(NULL, "event loop: %m");
	}
	if (server_relay_pid > 0) {
		/* The daemon's end is closed: let the relay write out the rest. */
		while (waitpid(server_relay_pid, &status, 0) < 0 &&
		    errno == EINTR)
			;
	}
	server_exit();
}

/* server_main - the daemon's main() */
int
server_main(int argc, char **argv, const struct server_ops *ops)
{
	struct server_args args;

	ASSERT(ops != NULL && ops->serve != NULL);
	server_ops = ops;
	log_init(argc > 0 ? argv[0] : "server");
	memset(&args, 0, sizeof(args));
	server_parse_args(argc, argv, &args);
	server_own_argv = args.own;
	server_standalone = args.standalone;
	server_load_config(&args);
	server_open_log(args.verbose);
	server_name = xstrdup(args.name != NULL ? args.name : log_progname());
	if (!server_standalone)
		server_inherit();
	(void)signal(SIGPIPE, SIG_IGN);
	server_max_use = config_int(conf(), "max_use");
	server_max_idle = config_time(conf(), "max_idle");
	server_max_conn = config_int(conf(), "max_connections");
	if (ops->multi && (server_evloop = event_loop_new()) == NULL)
		log_fatal(NULL, "event_loop_new: %m");
	server_drop(&args);
	free(args.overrides);
	log_debug(NULL, "service %s started", server_name);
	/* Before the first report: master signals only workers that reported. */
	server_signals();
	/* ready: master may stop counting us as starting (spawning ahead) */
	server_report(SERVER_STATUS_AVAILABLE);
	if (server_standalone)
		server_run_standalone();
	if (ops->multi)
		server_multi_loop();
	server_single_loop();
}

const char *
server_service_name(void)
{
	return server_name;
}

/* server_peer_addr - see server.h */
const char *
server_peer_addr(void)
{
	return server_cur_peer;
}

char **
server_argv(void)
{
	return server_own_argv;
}

struct event_loop *
server_loop(void)
{
	return server_evloop;
}
