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
 * conf() (with -o overrides), opens logging, calls pre_jail() (still
 * root: open keys, bind nothing), drops privileges to the service user
 * (privsep_drop, chroot if configured), calls post_jail(), then serves.
 *
 * Standard options (master passes them; see master(8)):
 *	-c DIR      configuration directory (postern.conf)
 *	-n NAME     service name (master.conf column 1), for logs and status
 *	-t TYPE     inet, unix or fifo
 *	-u USER     run as this account (root only)
 *	-r          chroot into $queue_directory
 *	-o k=v      postern.conf override (repeatable)
 *	-S          stand-alone: serve one client on stdin/stdout, then exit
 *	-v          debug logging
 * Remaining arguments are the daemon's own (server_argv()).
 *
 * The master interface: fd SERVER_STATUS_FD is a pipe to master; the
 * listening sockets are fds SERVER_LISTEN_FD .. +n-1 with n in the
 * environment as POSTERN_LISTEN_FDS. The worker writes one struct
 * server_status to the pipe each time it becomes busy or available
 * (master spawns more workers only while none is available). A worker
 * exits after $max_use connections or $max_idle seconds without one, and
 * when the status pipe closes (master went away or reloaded it out).
 *
 * Single mode (default): one connection at a time; serve() runs it to the
 * end and the skeleton closes the fd afterwards. Multi mode (ops.multi):
 * serve() registers the connection with server_loop() and returns; the
 * daemon calls server_conn_done() when the connection ends, and the
 * skeleton keeps accepting while at most $max_connections (per process)
 * are open.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4

enum server_state {
	SERVER_STATUS_AVAILABLE = 0,
	SERVER_STATUS_BUSY = 1,
};

/* What a worker writes to master: fixed size, native byte order. */
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
	/* pre_exit - before a normal exit (max_use, max_idle, stop) */
	void (*pre_exit)(void);
	bool multi;
};

int server_main(int argc, char **argv, const struct server_ops *ops);

/* For the daemon, valid after server_main() started it: */
const char *server_service_name(void);
char **server_argv(void);		/* the daemon's own arguments, NULL-terminated */
struct event_loop *server_loop(void);	/* multi mode */
void server_conn_done(void);		/* multi mode: a connection ended */

#endif
