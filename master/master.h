/* SPDX-License-Identifier: MIT */
/*
 * master - private interfaces between the master's modules
 *
 *	master.c          main(): options, config, daemonizing, signals, stop
 *	master_service.c  the service table: start, reload (add/remove/change),
 *	                  listener watching, throttling, wakeups, status text
 *	master_listen.c   planning and binding listeners (inet, unix, fifo)
 *	master_spawn.c    fork+exec of workers, the status pipes, reaping
 *	master_status.c   the status socket
 *
 * Everything runs in one thread from one event loop; nothing here is
 * re-entered from a signal handler (signals arrive through signalfd).
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "event.h"
#include "master_conf.h"
#include "str.h"

/*
 * A worker that has not reported within this many ms of its spawn no
 * longer holds back the next spawn while connections wait (see
 * master_service.c DESCRIPTION): start-up runs in parallel under load.
 */
#define MASTER_SPAWN_AHEAD_MS	1000

/* One listening endpoint: planned (fd -1) or bound. */
struct master_listener {
	enum master_service_type kind;
	struct sockaddr_storage addr;	/* inet */
	socklen_t addrlen;
	bool implicit;		/* from inet_interfaces: may be skipped */
	char *path;		/* unix, fifo */
	bool private_;		/* unix, fifo: private/ */
	char *desc;		/* "127.0.0.1:25", "[::1]:25", or the path */
	int fd;
};

/* One master.conf generation; services point into it. */
struct master_gen {
	struct master_conf *conf;
	unsigned refs;
};

struct master_svc {
	/* Definition (NULL once retired). */
	struct master_gen *gen;
	const struct master_service *def;
	/* Copies, valid for the whole life of the service. */
	char *name;
	enum master_service_type type;
	char *path;		/* the program */
	char *user;		/* the account workers run as (NULL: privsep off) */
	int maxproc;		/* 0 = unlimited */
	char **args;		/* argv for exec, NULL-terminated */

	struct master_listener *listeners;
	size_t nlisteners;
	char *listen_desc;	/* comma-separated listener descriptions */

	int status_rd;		/* status pipe, read end (master) */
	int status_wr;		/* write end: handed to each worker as fd 3 */
	unsigned char status_buf[64];
	size_t status_len;

	unsigned procs;
	unsigned avail;
	unsigned starting;	/* spawned, no status record yet (also in avail) */
	bool spawn_ahead;	/* the last spawn is MASTER_SPAWN_AHEAD_MS old */
	bool active;		/* false: retired (reload removed it, or stop) */
	bool watching;		/* listeners are in the event loop */
	bool throttled;
	bool used;		/* a client used it (wakeup '?') */
	struct event_timer *throttle_timer;
	struct event_timer *wakeup_timer;
	struct event_timer *spawn_timer;	/* MASTER_SPAWN_AHEAD_MS after a spawn */
	struct event_timer *bind_timer;	/* retrying binds after a reload */
	unsigned bind_tries;

	struct master_svc *next;
};

struct master_proc {
	pid_t pid;
	struct master_svc *svc;
	bool available;
	bool busy_seen;
	bool reported;		/* sent a status record: it has started */
	bool recycled;		/* sent SIGHUP by a reload: exits when idle */
	bool recycle_pending;	/* SIGHUP due at its first status record */
	unsigned long done;	/* pieces of work finished */
	struct timespec started;
	struct master_proc *next;
};

/* The process-wide state of master. */
struct master_state {
	struct event_loop *loop;
	char *config_dir;	/* absolute */
	char *queue_dir;
	char *pid_dir;
	char *fail_text;	/* keeps a failure's text reachable until exit */
	struct master_conf *initial;	/* master.conf until the services own it */
	char *pid_path;
	char *status_path;
	bool foreground;
	bool verbose;
	bool privsep;		/* running as root */
	char *invoker;		/* privsep off: the user everything runs as */
	bool stopping;
	struct timespec started;
	struct master_svc *services;	/* active, in master.conf order */
	struct master_svc *retired;	/* waiting for their workers to exit */
	struct master_proc *procs;
	int status_fd;		/* the status socket, or -1 */
	time_t tls_keys_due;	/* when the ticket key file needs rotating */
};

extern struct master_state master;

/* master_listen.c */
/*
 * master_listen_plan - the listeners a service needs under cfg, unbound.
 * Appends "FILE:LINE: reason" lines to errors and returns -1 on failure.
 * *list_r (owned) has *count_r entries.
 */
int master_listen_plan(const struct master_service *def,
    const struct config *cfg, struct master_listener **list_r,
    size_t *count_r, struct str *errors);
/* master_listen_same - the same endpoint (kind and address or path)? */
bool master_listen_same(const struct master_listener *a,
    const struct master_listener *b);
/*
 * master_listen_bind - bind a planned listener (unix/fifo: create the
 * directory as needed and replace a stale socket). -1 with *error_r set
 * (static text) and errno; skipped_r is set when an implicit IPv6 address
 * is not available here (a warning, not an error).
 */
int master_listen_bind(struct master_listener *l, const struct config *cfg,
    bool *skipped_r, const char **error_r);
/* master_listen_close - close fd; unlink the socket or fifo if asked */
void master_listen_close(struct master_listener *l, bool unlink_path);
void master_listen_free(struct master_listener *l);
/* master_listen_chown - give path to $mail_owner (as root) */
void master_listen_chown(const char *path, const struct config *cfg);

/* master_spawn.c */
int master_spawn(struct master_svc *svc);
void master_reap(void);
void master_status_event(void *ctx, int fd, unsigned events);
struct master_proc *master_proc_find(pid_t pid);
void master_signal_all(int signo);
void master_recycle_all(void);

/* master_service.c */
/*
 * master_services_check - validate a new configuration without changing
 * anything; every problem is appended to errors ("FILE:LINE: reason").
 */
int master_services_check(const struct master_conf *mc,
    const struct config *cfg, struct str *errors);
/*
 * master_services_apply - make the running services match mc (already
 * checked); mc is owned afterwards. At start-up (initial) a service that
 * cannot bind is an error: -1 with *error_r (allocated). On reload, it is
 * logged and retried.
 */
int master_services_apply(struct master_conf *mc, bool initial,
    char **error_r);
void master_svc_update(struct master_svc *svc);
void master_svc_throttle(struct master_svc *svc);
void master_svc_proc_gone(struct master_svc *svc);
void master_services_stop(void);
void master_services_status(struct str *out);
size_t master_services_count(void);

/* master_status.c */
int master_status_open(const char *path, const char **error_r);
void master_status_close(void);

/* master.c */
void master_exit_stopped(void) NORETURN;
/*
 * master_tls_keys - create or rotate the shared TLS session ticket key
 * file (lib/tls_ticket.h) if it is due, or at once with force (start,
 * reload). Called before each spawn, so a new worker reads current
 * keys. Trouble is logged; workers then fall back to their own keys.
 */
void master_tls_keys(bool force);

#endif
