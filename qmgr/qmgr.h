/* SPDX-License-Identifier: MIT */
/*
 * qmgr.h - private interface between the parts of qmgr(8)
 *
 * qmgr.c: the daemon (wakeups, queue scans, timers, start-up recovery);
 * qmgr_message.c: a message's life in memory (load, results, finish);
 * qmgr_resolve.c: where each recipient goes (local, alias, virtual,
 * transport); qmgr_deliver.c: destinations, concurrency and the
 * connections to delivery agents; qmgr_bounce.c: DSNs through cleanup.
 *
 * Everything runs in one event loop (server multi mode); nothing blocks
 * except the short synchronous hand-offs to cleanup (alias expansion,
 * DSNs) and queue file I/O.
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "deliver_proto.h"
#include "log.h"
#include "queue_file.h"
#include "str.h"

struct map;
struct srs;
struct event_loop;
struct event_timer;

/* Settings from postern.conf, read once at start. */
struct qmgr_settings {
	const char *const *mydestination;
	size_t nmydestination;
	const char *recipient_delimiter;
	const char *local_transport;
	const char *default_transport;
	const char *relayhost;
	const char *myhostname;
	const char *double_bounce_rcpt;
	bool allow_commands;
	bool allow_files;
	unsigned min_backoff;
	unsigned max_backoff;
	unsigned queue_run_delay;
	unsigned max_lifetime;
	unsigned bounce_lifetime;
	unsigned delay_warning;
	uint64_t bounce_size_limit;
	unsigned long active_limit;
	unsigned long rcpt_limit;
	unsigned long dest_rcpt_limit;
	unsigned long default_concurrency;
	/* map lists: one slot per spec, NULL while it cannot be opened */
	struct map **alias_maps;
	const char *const *alias_specs;
	size_t nalias_maps;
	struct map **virtual_maps;
	const char *const *virtual_specs;
	size_t nvirtual_maps;
	const char *const *virtual_domains;
	size_t nvirtual_domains;
	struct map **transport_maps;
	const char *const *transport_specs;
	size_t ntransport_maps;
	const char *const *department_domains;
	size_t ndepartment_domains;
	const char *user_database;
	struct srs *srs;		/* NULL: SRS off */
};

extern struct qmgr_settings qmgr_settings;

/* The envelope attribute that marks a message made by alias expansion. */
#define QMGR_ATTR_EXPANDED	"postern_expanded"
/* ... and one that marks a DSN sent to the double-bounce recipient. */
#define QMGR_ATTR_DSN		"postern_dsn"

struct qmgr_dest;
struct qmgr_message;

enum qmgr_rcpt_phase {
	QMGR_RCPT_IDLE,		/* settled for this round (or not ours) */
	QMGR_RCPT_QUEUED,	/* waiting in a destination's queue */
	QMGR_RCPT_INFLIGHT,	/* handed to a delivery agent */
};

/* One recipient to work on in this round (a non-final one). */
struct qmgr_rcpt {
	size_t index;			/* in the queue file */
	enum qmgr_rcpt_phase phase;
	char *address;			/* where to deliver (after aliases) */
	time_t prev_update;		/* its status time before this round */
	char *remote_mta;		/* the server of its last reply, or NULL */
};

struct qmgr_message {
	char id[QUEUE_ID_SIZE];
	struct log_ctx log;
	struct queue_file *qf;		/* open with the update lock */
	time_t arrival;
	time_t loaded;
	struct qmgr_rcpt *rcpts;
	size_t nrcpts;
	unsigned queued;		/* recipients waiting in queues */
	unsigned inflight;		/* jobs at delivery agents */
	struct qmgr_message *hnext;	/* hash chain */
	struct qmgr_message *prev, *next;	/* all messages */
};

/* A job: recipients of one message for one destination, one request. */
struct qmgr_job {
	struct qmgr_message *msg;
	struct qmgr_dest *dest;
	size_t *rcpts;			/* indexes into msg->rcpts */
	size_t nrcpts;
	struct qmgr_job *next;		/* in the destination's queue */
	/* while at an agent */
	int fd;
	struct str *out;
	size_t out_off;
	struct str *in;
	struct event_timer *timer;
	time_t started;
};

struct qmgr_transport {
	char *name;			/* master.conf service: private/NAME */
	unsigned limit;			/* per-destination concurrency */
	struct qmgr_dest *dests;
	struct qmgr_transport *next;
};

struct qmgr_dest {
	struct qmgr_transport *transport;
	char *nexthop;
	unsigned active;
	struct qmgr_job *head, *tail;
	struct qmgr_dest *next;		/* in the transport */
};

/* ---------------------------------------------------------- qmgr.c */
struct event_loop *qmgr_loop(void);
/* qmgr_now - the wall clock, seconds */
time_t qmgr_now(void);
/* qmgr_backoff - the delay before attempt number attempts+1 */
unsigned qmgr_backoff(uint32_t attempts);
/* qmgr_deferred_due - a message went to deferred/ and is due at t */
void qmgr_deferred_due(time_t t);
/* qmgr_room - may another message be loaded into memory? */
bool qmgr_room(void);
/* qmgr_kick - soon: scan for more work and dispatch (no recursion) */
void qmgr_kick(void);

/* ------------------------------------------------- qmgr_message.c */
/* qmgr_message_find - the message with this ID in memory, or NULL */
struct qmgr_message *qmgr_message_find(const char *id);
/*
 * qmgr_message_load - take an open (update-locked) active queue file
 * into memory (takes ownership of qf): resolve its open recipients and
 * queue them; finishes it at once if there is nothing to deliver.
 */
void qmgr_message_load(struct queue_file *qf);
/* qmgr_message_count / qmgr_rcpt_count - what memory holds */
size_t qmgr_message_count(void);
size_t qmgr_rcpt_count(void);
/*
 * qmgr_message_results - a job ended: record the outcome of its
 * recipients durably (one queue_file_update), log them, and finish the
 * message when nothing is left. res may be NULL (agent failure): every
 * recipient is then deferred with why.
 */
void qmgr_message_results(struct qmgr_job *job,
    const struct deliver_response *res, const char *why);
/*
 * qmgr_message_settle - record one recipient's outcome decided by qmgr
 * itself (resolution, expansion) and log it.
 */
void qmgr_message_settle(struct qmgr_message *msg, struct qmgr_rcpt *r,
    enum deliver_status status, const char *relay, const char *dsn_text);
/* qmgr_message_maybe_done - finish the message if nothing is pending */
void qmgr_message_maybe_done(struct qmgr_message *msg);

/* ------------------------------------------------- qmgr_resolve.c */
struct qmgr_route {
	enum { QMGR_ROUTE_DELIVER, QMGR_ROUTE_DEFER, QMGR_ROUTE_BOUNCE,
	    QMGR_ROUTE_DONE } kind;
	char *transport;		/* DELIVER */
	char *nexthop;			/* DELIVER */
	char *address;			/* DELIVER: where to */
	struct str *reason;		/* DEFER/BOUNCE/DONE: "X.Y.Z text" */
};
void qmgr_route_clear(struct qmgr_route *route);
/*
 * qmgr_resolve - decide where recipient r of msg goes: deliver (with
 * transport, nexthop and address), or settle it now (defer, bounce, or
 * done after an alias expansion that re-injected the targets).
 */
void qmgr_resolve(struct qmgr_message *msg, const struct queue_rcpt *qr,
    struct qmgr_route *route);
/* qmgr_resolve_init - set up SRS from the secret read before the jail */
void qmgr_resolve_init(void);
/*
 * qmgr_resolve_pre_jail - read $srs_secret_file when $srs_enable (before
 * the privilege drop: the file may be root's); a missing or empty
 * secret with srs_enable is fatal (a misconfiguration).
 */
void qmgr_resolve_pre_jail(void);

/* ------------------------------------------------- qmgr_deliver.c */
/* qmgr_deliver_queue - put recipient r of msg on the queue of transport/nexthop */
void qmgr_deliver_queue(struct qmgr_message *msg, size_t r,
    const char *transport, const char *nexthop);
/* qmgr_deliver_dispatch - start jobs while concurrency allows */
void qmgr_deliver_dispatch(void);
/* qmgr_deliver_forget - drop the queued (not in-flight) jobs of msg */
void qmgr_deliver_forget(struct qmgr_message *msg);

/* -------------------------------------------------- qmgr_bounce.c */
/*
 * qmgr_bounce_notify - send the DSNs due for msg's final recipients
 * (failure and success) and delay warnings; marks them DSN_SENT. false
 * if a DSN could not be queued (the message is then kept for a retry).
 */
bool qmgr_bounce_notify(struct qmgr_message *msg, bool expire_now);
/*
 * qmgr_inject - queue a new message through cleanup: envelope, the
 * recipients, and the content from src (when src_qf is set) or from
 * text; flags are CLEANUP_FLAG_*. The new ID in id_r. 0 on success, -1 with a reason in why.
 */
int qmgr_inject(unsigned flags, const struct queue_envelope *env,
    const struct queue_rcpt *rcpts, size_t nrcpts,
    const struct queue_file *src_qf, const struct str *text,
    char id_r[QUEUE_ID_SIZE], struct str *why);

#endif
