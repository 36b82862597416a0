/* SPDX-License-Identifier: MIT */
/*
 * server - the skeleton every master-spawned daemon runs in
 *
 * main() is thin:
 *
 *	static const struct server_ops ops = { .serve = smtpd_serve, ... };
 *	int main(int argc, char **argv) { return server_main(argc, argv, &ops); }
 *
 * server_main() parses the standard options, loads postern.conf into
 * conf() (with -o overrides), opens logging, changes to
 * $queue_directory, calls pre_jail() (still root: open keys, bind
 * nothing), drops privileges to the service user (privsep_drop, chroot
 * if configured), cleans the environment (privsep_clean_env, keeping
 * ops.keep_env), sets umask 077, calls post_jail(), then serves. It never
 * returns: the process exits 0 after a normal end (max_use, max_idle,
 * master gone, -S done) and 1 through log_fatal() when the environment
 * or configuration stops it (bad option, unreadable postern.conf, no
 * such user, not started by master).
 *
 * Standard options (master passes them; see master(8)):
 *	-c DIR      configuration directory (postern.conf); default
 *	            $POSTERN_CONFIG_DIR, else /etc/postern
 *	-n NAME     service name (master.conf column 1), for logs and status
 *	-t TYPE     inet, unix or fifo (informational: the skeleton looks at
 *	            the inherited fds themselves)
 *	-u USER     run as this account (root only; as root without -u the
 *	            daemon runs as $mail_owner, never as root)
 *	-r          chroot into $queue_directory (root only)
 *	-o k=v      postern.conf override (repeatable)
 *	-S          stand-alone: serve one client on stdin/stdout, then exit
 *	-v          debug logging
 * Options may come in any order and may be mixed with the daemon's own
 * arguments. Any argument the skeleton does not know (another option
 * letter, a non-option word), and everything after "--", is the
 * daemon's own and is kept in order for server_argv(). Daemons must not
 * give their own options the letters c n t u r o S v.
 *
 * The master interface: fd SERVER_STATUS_FD is the write end of a pipe
 * to master, shared by all workers of one service; the listening
 * sockets (or the fifo) are fds SERVER_LISTEN_FD .. +n-1 with n in the
 * environment as POSTERN_LISTEN_FDS. The worker writes one struct
 * server_status to the pipe each time it becomes busy or available (a
 * fresh worker counts as available; master spawns more workers only
 * while none is available). A worker exits after $max_use connections
 * or $max_idle seconds without one (0 = no limit), and when the status
 * pipe closes (master went away, or a reload removed or changed the
 * service); a connection being served is always finished first. A
 * single-mode worker also exits on SIGHUP, which master sends to every
 * worker that has reported on reload: SIGHUP is blocked except while the
 * skeleton waits for the next connection, so it never interrupts
 * serve(); a busy worker finishes and then exits. (Children a daemon
 * starts inherit the blocked SIGHUP.) Multi mode ignores SIGHUP.
 *
 * Wakeups (master.conf wakeup column): master never talks a protocol to
 * its workers, so the wakeup is one byte, "W":
 *   - fifo service: master writes "W" into the fifo. Every read of the
 *     fifo by the skeleton is a trigger: it drains what is there (any
 *     bytes; several triggers coalesce) and calls ops.wakeup() once.
 *     serve() is never called for a fifo service.
 *   - unix service: master connects to the socket, writes "W" and
 *     closes. The skeleton recognises that connection by the peer's
 *     credentials (SO_PEERCRED): its pid is our parent, master, which is
 *     a process no client can be. It reads the byte (waiting at most a
 *     second), calls ops.wakeup() if the connection carried exactly "W",
 *     and never hands the connection to serve(). Any other connection
 *     goes to serve() untouched, so a client cannot fake or swallow a
 *     wakeup and a daemon protocol may start with any byte.
 *   - inet services have no wakeups (master.conf rejects them).
 * Wakeups do not count towards $max_use.
 *
 * Single mode (default): one connection at a time; serve() runs it to the
 * end and the skeleton closes the fd afterwards. Multi mode (ops.multi):
 * serve() registers the connection with server_loop() and returns; the
 * fd then belongs to the daemon, which closes it and calls
 * server_conn_done() when the connection ends. The skeleton keeps
 * accepting while fewer than $max_connections (per process, 0 = no
 * limit) are open, and reports itself busy to master while it is full.
 *
 * The struct server_conn handed to serve() and its strings are valid only
 * during that call; a multi-mode daemon copies what it keeps. conn->fd is
 * a blocking, close-on-exec socket (a daemon that wants non-blocking I/O
 * wraps it in a stream, which sets that).
 *
 * Stand-alone mode (-S), for tests and debugging: one connection, no
 * master, no listeners. If fd 0 is a socket it is the connection (run
 * under socat, inetd, or a Python socketpair) and its peer address is
 * reported. Otherwise stdin and stdout are bridged to the daemon through
 * a socketpair by a small relay process, so `smtpd -S < session.txt`
 * works too; the peer is then "local". The process exits after serve()
 * (single mode) or after server_conn_done() (multi mode).
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "macros.h"

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4
#define SERVER_LISTEN_FDS_ENV "POSTERN_LISTEN_FDS"

/* The wakeup byte master sends (see above). */
#define SERVER_WAKEUP_BYTE 'W'

enum server_state {
	SERVER_STATUS_AVAILABLE = 0,
	SERVER_STATUS_BUSY = 1,
};

/*
 * What a worker writes to master: fixed size, native byte order, one
 * write(2) each (atomic on a pipe). Master checks that pid is one of the
 * service's workers and state is known, and ignores anything else.
 */
struct server_status {
	pid_t pid;
	int state;		/* enum server_state */
};

struct server_conn {
	int fd;
	const char *peer_addr;	/* "192.0.2.1" / "2001:db8::1" / "local" */
	unsigned peer_port;
	const char *local_addr;
	unsigned local_port;
	const char *service;	/* master.conf service name */
};

struct server_ops {
	void (*pre_jail)(void);
	void (*post_jail)(void);
	void (*serve)(const struct server_conn *conn);
	/* wakeup - master's periodic wakeup (master.conf wakeup column) */
	void (*wakeup)(void);
	/* pre_exit - before a normal exit (max_use, max_idle, master gone, -S done) */
	void (*pre_exit)(void);
	/*
	 * idle - single mode, optional: called before each wait for the
	 * next connection (also when a wait it asked for ran out); returns
	 * the ms after which it wants to be called again if nothing
	 * happens (0 = no need). For housekeeping between connections,
	 * such as closing smtp's cached sessions. It must not block.
	 */
	unsigned (*idle)(void);
	bool multi;
	/* keep_env - environment names to keep besides TZ, LANG, LC_* (NULL-terminated, or NULL) */
	const char *const *keep_env;
};

/* server_main - see above; does not return */
int server_main(int argc, char **argv, const struct server_ops *ops) NORETURN;

/* For the daemon, valid after server_main() started it: */
const char *server_service_name(void);
char **server_argv(void);		/* the daemon's own arguments, NULL-terminated */
struct event_loop *server_loop(void);	/* multi mode (NULL in single mode) */
void server_conn_done(void);		/* multi mode: a connection ended */
/*
 * server_peer_addr - single mode: the peer address of the connection
 * being served (as conn->peer_addr), valid during serve(); NULL outside
 * serve() and always in multi mode (no one "current" connection). For
 * lib/ code that keys state on the client without an argument for it
 * (lib/auth's failed-login delay).
 */
const char *server_peer_addr(void);

#endif
