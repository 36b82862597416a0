/* SPDX-License-Identifier: MIT */
/*
 * qmgr_message - a message's life in qmgr's memory
 *
 * DESCRIPTION
 *	qmgr_message_load() takes an active queue file (open, update
 *	lock held for the whole stay in memory), resolves every recipient
 *	that is not final and queues it for delivery or settles it at once
 *	(bounce, defer, alias expansion). qmgr_message_results() records
 *	an agent's answer: ONE queue_file_update for the whole job, and
 *	only after it returned 0 is anything logged or acted on. When no
 *	recipient is queued or in flight, the message finishes: expired
 *	deferrals become bounces, DSNs go out (qmgr_bounce.c), and the file
 *	is removed (every recipient final) or moved to deferred/ with its
 *	modification time set to the next attempt (the deferred scan reads
 *	only that).
 *
 *	A failed status update is logged and the message is left for a
 *	later round (the recipient stays non-final on disk; its delivery
 *	token makes a repeated hand-off harmless).
 *
 *	Cheap completion (the durable path costs what correctness needs):
 *	- When an answer makes every recipient of the message final and
 *	  nothing else of it is queued or in flight, the status records are
 *	  written without fdatasync (queue_file_update_nosync): the file is
 *	  removed right after, which makes them moot. If a crash undoes the
 *	  removal, the file comes back with the recipients' previous durable
 *	  state and they are handed off again with the same delivery tokens:
 *	  the LMTP servers acknowledge without a second copy. For a remote
 *	  SMTP server (no tokens) this is the window that already exists
 *	  between its 250 and a synced status record; it is not widened in
 *	  kind, only by the time to the next group commit (one event-loop
 *	  round). If the message is not removed after all (a DSN must go
 *	  out first, or some recipient is still open), the next synced
 *	  update or queue_file_move() makes the records durable first.
 *	- Group commit: finished files are unlinked at once but the
 *	  directory syncs (incoming/, then active/: queue_removals_sync) run
 *	  once per event-loop round for all the messages finished in it,
 *	  from a zero-delay timer; "removed" is logged after that sync. Until
 *	  then a crash brings a file back as described above.
 *
 * SEE ALSO
 *	qmgr.c, lib/queue_file.h
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "event.h"
#include "log.h"
#include "queue_file.h"

#include "qmgr.h"

#define QMGR_HASH_SIZE	4096

static struct qmgr_message *qmgr_hash[QMGR_HASH_SIZE];
static struct qmgr_message *qmgr_all;
static size_t qmgr_nmessages;
static size_t qmgr_nrcpts;

static unsigned
qmgr_hash_id(const char *id)
{
	unsigned h = 5381;

	while (*id != '\0')
		h = h * 33 + (unsigned char)*id++;
	return h % QMGR_HASH_SIZE;
}

struct qmgr_message *
qmgr_message_find(const char *id)
{
	struct qmgr_message *m;

	for (m = qmgr_hash[qmgr_hash_id(id)]; m != NULL; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

size_t
qmgr_message_count(void)
{
	return qmgr_nmessages;
}

size_t
qmgr_rcpt_count(void)
{
	return qmgr_nrcpts;
}

/* ------------------------------------------------ group commit of removals */

static char (*qmgr_removed)[QUEUE_ID_SIZE];	/* unlinked, not yet synced */
static size_t qmgr_nremoved, qmgr_removed_cap;
static struct event_timer *qmgr_removed_timer;

/* qmgr_removed_flush - one directory sync for every removal of this round */
static void
qmgr_removed_flush(void *ctx UNUSED)
{
	const char *error = NULL;
	size_t i;
	int rc;

	qmgr_removed_timer = NULL;
	if (qmgr_nremoved == 0)
		return;
	rc = queue_removals_sync(".", QUEUE_ACTIVE, &error);
	for (i = 0; i < qmgr_nremoved; i++) {
		struct log_ctx log = { qmgr_removed[i] };

		if (rc < 0)
			log_error(&log, "removed, but the removal is not known "
			    "to be on disk: %s: %m", error);
		else
			log_info(&log, "removed");
	}
	qmgr_nremoved = 0;
}

/* qmgr_removed_exit - sync what is pending when the process exits */
static void
qmgr_removed_exit(void)
{
	const char *error;

	if (qmgr_nremoved > 0)
		(void)queue_removals_sync(".", QUEUE_ACTIVE, &error);
}

/* qmgr_removed_add - id was unlinked from active/: sync it this round */
static void
qmgr_removed_add(const char *id)
{
	static bool exit_hook;

	if (!exit_hook) {
		exit_hook = true;
		(void)atexit(qmgr_removed_exit);
	}
	if (qmgr_nremoved == qmgr_removed_cap) {
		qmgr_removed_cap = qmgr_removed_cap == 0 ? 64 :
		    qmgr_removed_cap * 2;
		qmgr_removed = xrealloc(qmgr_removed, qmgr_removed_cap *
		    sizeof(*qmgr_removed));
	}
	pst_strlcpy(qmgr_removed[qmgr_nremoved++], id, QUEUE_ID_SIZE);
	/* Runs after this round's callbacks, before the loop waits again. */
	if (qmgr_removed_timer == NULL &&
	    (qmgr_removed_timer = event_timer_add(qmgr_loop(), 0,
	    qmgr_removed_flush, NULL)) == NULL)
		qmgr_removed_flush(NULL);
}

/* qmgr_message_free - unlink from memory, close the file (drops the lock) */
static void
qmgr_message_free(struct qmgr_message *msg)
{
	struct qmgr_message **pp;
	size_t i;

	for (pp = &qmgr_hash[qmgr_hash_id(msg->id)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == msg) {
			*pp = msg->hnext;
			break;
		}
	}
	if (msg->prev != NULL)
		msg->prev->next = msg->next;
	else
		qmgr_all = msg->next;
	if (msg->next != NULL)
		msg->next->prev = msg->prev;
	qmgr_nmessages--;
	qmgr_nrcpts -= msg->nrcpts;
	for (i = 0; i < msg->nrcpts; i++) {
		free(msg->rcpts[i].address);
		free(msg->rcpts[i].remote_mta);
	}
	free(msg->rcpts);
	queue_file_close(&msg->qf);
	free(msg);
	/* room for more: take what waits in active/ (and deferred/) */
	qmgr_kick();
}

/* qmgr_delay_str - "delay=N" seconds since arrival, one decimal */
static void
qmgr_delay(struct str *out, const struct qmgr_message *msg)
{
	struct timeval now;
	const struct queue_envelope *env = queue_file_envelope(msg->qf);
	double d;

	gettimeofday(&now, NULL);
	d = (double)(now.tv_sec - env->arrival.tv_sec) +
	    (double)(now.tv_usec - env->arrival.tv_usec) / 1e6;
	if (d < 0)
		d = 0;
	str_printf(out, "%.*f", d < 10 ? 2 : d < 100 ? 1 : 0, d);
}

/* qmgr_log_rcpt - Postfix's per-recipient line */
static void
qmgr_log_rcpt(struct qmgr_message *msg, const struct qmgr_rcpt *r,
    enum deliver_status status, const char *relay, const char *dsn,
    const char *text)
{
	static const char *const names[] = { "sent", "deferred", "bounced" };
	const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, r->index);
	struct str *line = str_new(256, 0);
	struct str *orig = str_new(64, 0);

	if (strcmp(qr->address, r->address) != 0)
		str_printf(orig, ", orig_to=<%s>", qr->address);
	else if (qr->original != NULL && strcmp(qr->original, qr->address) != 0)
		str_printf(orig, ", orig_to=<%s>", qr->original);
	qmgr_delay(line, msg);
	log_info(&msg->log, "to=<%s>%s, relay=%s, delay=%s, dsn=%s, status=%s "
	    "(%s)", r->address, str_c(orig), relay != NULL && *relay != '\0' ?
	    relay : "none", str_c(line), dsn, names[status], text);
	str_free(&orig);
	str_free(&line);
}

/* qmgr_split_reason - "X.Y.Z text" into dsn and text */
static void
qmgr_split_reason(const char *reason, char dsn[16], const char **text_r)
{
	const char *sp = strchr(reason, ' ');
	size_t n = sp != NULL ? (size_t)(sp - reason) : strlen(reason);

	if (n > 0 && n < 16) {
		memcpy(dsn, reason, n);
		dsn[n] = '\0';
		if (deliver_dsn_ok(dsn)) {
			*text_r = sp != NULL ? sp + 1 : "";
			return;
		}
	}
	memcpy(dsn, "4.0.0", 6);
	*text_r = reason;
}

/* qmgr_update_for - fill a queue_rcpt_update for a status */
static void
qmgr_update_for(struct qmgr_message *msg, struct qmgr_rcpt *r,
    enum deliver_status status, const char *reason,
    struct queue_rcpt_update *u)
{
	const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, r->index);

	memset(u, 0, sizeof(*u));
	u->index = r->index;
	u->attempted = true;
	u->reason = reason;
	switch (status) {
	case DELIVER_STATUS_DELIVERED:
		u->state = QUEUE_RCPT_DELIVERED;
		break;
	case DELIVER_STATUS_BOUNCED:
		u->state = QUEUE_RCPT_BOUNCED;
		break;
	default:
		u->state = QUEUE_RCPT_DEFERRED;
		u->next_attempt = qmgr_now() +
		    (time_t)qmgr_backoff(qr->attempts + 1);
		break;
	}
}

/* qmgr_message_settle - see qmgr.h */
void
qmgr_message_settle(struct qmgr_message *msg, struct qmgr_rcpt *r,
    enum deliver_status status, const char *relay, const char *dsn_text)
{
	struct queue_rcpt_update u;
	const char *error = NULL, *text;
	char dsn[16];

	qmgr_update_for(msg, r, status, dsn_text, &u);
	if (status != DELIVER_STATUS_DEFERRED)
		u.attempted = false;
	if (queue_file_update(msg->qf, &u, 1, &error) < 0) {
		log_error(&msg->log, "cannot record the status of <%s>: %s: %m",
		    r->address, error);
		r->phase = QMGR_RCPT_IDLE;
		return;
	}
	qmgr_split_reason(dsn_text, dsn, &text);
	qmgr_log_rcpt(msg, r, status, relay, dsn, text);
	r->phase = QMGR_RCPT_IDLE;
}

/* qmgr_message_load - see qmgr.h */
void
qmgr_message_load(struct queue_file *qf)
{
	struct qmgr_message *msg = xcalloc(1, sizeof(*msg));
	const struct queue_envelope *env = queue_file_envelope(qf);
	struct qmgr_route route;
	size_t i, n = queue_file_rcpt_count(qf), open = 0;
	unsigned h;

	pst_strlcpy(msg->id, queue_file_id(qf), sizeof(msg->id));
	msg->log.id = msg->id;
	msg->qf = qf;
	msg->arrival = env->arrival.tv_sec;
	msg->loaded = qmgr_now();
	for (i = 0; i < n; i++) {
		enum queue_rcpt_state st = queue_file_rcpt(qf, i)->state;

		if (st == QUEUE_RCPT_PENDING || st == QUEUE_RCPT_DEFERRED)
			open++;
	}
	msg->rcpts = xcalloc(open + 1, sizeof(*msg->rcpts));
	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = queue_file_rcpt(qf, i);
		struct qmgr_rcpt *r;

		if (qr->state != QUEUE_RCPT_PENDING &&
		    qr->state != QUEUE_RCPT_DEFERRED)
			continue;
		r = &msg->rcpts[msg->nrcpts++];
		r->index = i;
		r->address = xstrdup(qr->address);
		r->prev_update = qr->updated;
	}
	h = qmgr_hash_id(msg->id);
	msg->hnext = qmgr_hash[h];
	qmgr_hash[h] = msg;
	msg->next = qmgr_all;
	if (qmgr_all != NULL)
		qmgr_all->prev = msg;
	qmgr_all = msg;
	qmgr_nmessages++;
	qmgr_nrcpts += msg->nrcpts;

	log_info(&msg->log, "from=<%s>, size=%" PRIu64 ", nrcpt=%zu (queue "
	    "active)", env->sender, queue_file_content_length(qf), n);

	/* Resolve and queue; settle what qmgr decides itself. */
	for (i = 0; i < msg->nrcpts; i++) {
		struct qmgr_rcpt *r = &msg->rcpts[i];

		memset(&route, 0, sizeof(route));
		qmgr_resolve(msg, queue_file_rcpt(qf, r->index), &route);
		switch (route.kind) {
		case QMGR_ROUTE_DELIVER:
			free(r->address);
			r->address = xstrdup(route.address);
			qmgr_deliver_queue(msg, i, route.transport,
			    route.nexthop);
			break;
		case QMGR_ROUTE_DEFER:
			qmgr_message_settle(msg, r, DELIVER_STATUS_DEFERRED,
			    NULL, str_c(route.reason));
			break;
		case QMGR_ROUTE_BOUNCE:
			qmgr_message_settle(msg, r, DELIVER_STATUS_BOUNCED,
			    NULL, str_c(route.reason));
			break;
		case QMGR_ROUTE_DONE:
			qmgr_message_settle(msg, r, DELIVER_STATUS_DELIVERED,
			    "local", str_c(route.reason));
			break;
		}
		qmgr_route_clear(&route);
	}
	qmgr_message_maybe_done(msg);
}

/* qmgr_open_count - recipients of the file that are not final */
static size_t
qmgr_open_count(const struct qmgr_message *msg)
{
	size_t i, n = queue_file_rcpt_count(msg->qf), open = 0;

	for (i = 0; i < n; i++) {
		enum queue_rcpt_state st = queue_file_rcpt(msg->qf, i)->state;

		if (st == QUEUE_RCPT_PENDING || st == QUEUE_RCPT_DEFERRED)
			open++;
	}
	return open;
}

/* qmgr_find_result - the agent's result for queue file index idx */
static const struct deliver_result *
qmgr_find_result(const struct deliver_response *res, size_t idx)
{
	size_t i;

	if (res == NULL)
		return NULL;
	for (i = 0; i < res->nresults; i++)
		if (res->results[i].index == idx)
			return &res->results[i];
	return NULL;
}

/* qmgr_message_results - see qmgr.h */
void
qmgr_message_results(struct qmgr_job *job, const struct deliver_response *res,
    const char *why)
{
	struct qmgr_message *msg = job->msg;
	struct queue_rcpt_update *u;
	struct str **reasons;
	enum deliver_status *st;
	const char *error = NULL, *relay;
	size_t i, nfinal = 0;
	bool last;
	int rc;

	u = xcalloc(job->nrcpts, sizeof(*u));
	reasons = xcalloc(job->nrcpts, sizeof(*reasons));
	st = xcalloc(job->nrcpts, sizeof(*st));
	relay = res != NULL && res->relay[0] != '\0' ? res->relay :
	    job->dest->nexthop;
	for (i = 0; i < job->nrcpts; i++) {
		struct qmgr_rcpt *r = &msg->rcpts[job->rcpts[i]];
		const struct deliver_result *dr = qmgr_find_result(res,
		    r->index);

		reasons[i] = str_new(128, QUEUE_FILE_REASON_MAX);
		if (dr != NULL) {
			/* for the DSN's Remote-MTA (qmgr_bounce.c) */
			XFREE(r->remote_mta);
			if (dr->remote_mta != NULL)
				r->remote_mta = xstrdup(dr->remote_mta);
			st[i] = dr->status;
			(void)str_printf(reasons[i], "%s ", dr->dsn);
			str_append(reasons[i], dr->text, MIN(strlen(dr->text),
			    QUEUE_FILE_REASON_MAX - str_len(reasons[i])));
		} else {
			st[i] = DELIVER_STATUS_DEFERRED;
			(void)str_printf(reasons[i], "4.3.0 %s", why != NULL ?
			    why : "no status for this recipient from the "
			    "delivery agent");
		}
		qmgr_update_for(msg, r, st[i], str_c(reasons[i]), &u[i]);
		/* the next hop took NOTIFY: any success DSN is its job now */
		if (dr != NULL && st[i] == DELIVER_STATUS_DELIVERED &&
		    (dr->flags & DELIVER_RES_F_DSN_PASSED) != 0)
			u[i].flags = QUEUE_RCPT_F_DSN_SENT;
		if (u[i].state != QUEUE_RCPT_DEFERRED)
			nfinal++;
	}
	/*
	 * The last job of a message that leaves no recipient open: the
	 * message finishes below, and its file goes (or a synced update or
	 * move comes first): no fdatasync needed (see DESCRIPTION).
	 */
	last = msg->queued == 0 && msg->inflight == 1 &&
	    nfinal == job->nrcpts && qmgr_open_count(msg) == job->nrcpts;
	rc = last ? queue_file_update_nosync(msg->qf, u, job->nrcpts, &error) :
	    queue_file_update(msg->qf, u, job->nrcpts, &error);
	if (rc < 0) {
		log_error(&msg->log, "cannot record delivery status: %s: %m "
		    "(the recipients will be tried again)", error);
	} else {
		for (i = 0; i < job->nrcpts; i++) {
			struct qmgr_rcpt *r = &msg->rcpts[job->rcpts[i]];
			const char *text;
			char dsn[16];

			qmgr_split_reason(str_c(reasons[i]), dsn, &text);
			qmgr_log_rcpt(msg, r, st[i], relay, dsn, text);
		}
	}
	for (i = 0; i < job->nrcpts; i++) {
		msg->rcpts[job->rcpts[i]].phase = QMGR_RCPT_IDLE;
		str_free(&reasons[i]);
	}
	free(reasons);
	free(st);
	free(u);
	msg->inflight--;
	qmgr_message_maybe_done(msg);
}

/* qmgr_expire - deferred recipients of expired mail become bounces */
static void
qmgr_expire(struct qmgr_message *msg)
{
	const struct queue_envelope *env = queue_file_envelope(msg->qf);
	unsigned lifetime = env->sender[0] == '\0' ?
	    qmgr_settings.bounce_lifetime : qmgr_settings.max_lifetime;
	time_t now = qmgr_now();
	size_t i, n = queue_file_rcpt_count(msg->qf);

	if (now - msg->arrival < (time_t)lifetime)
		return;
	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, i);
		struct queue_rcpt_update u;
		struct str *reason;
		const char *error = NULL, *text;
		char dsn[16], *last, *addr;

		if (qr->state != QUEUE_RCPT_DEFERRED &&
		    qr->state != QUEUE_RCPT_PENDING)
			continue;
		qmgr_split_reason(qr->reason[0] != '\0' ? qr->reason :
		    "4.4.7 delivery time expired", dsn, &text);
		/* the update replaces qr->reason: keep copies for the log */
		last = xstrdup(text);
		addr = xstrdup(qr->address);
		text = last;
		reason = str_new(128, QUEUE_FILE_REASON_MAX);
		(void)str_printf(reason, "%s message expired after %lu days "
		    "in the queue; last error: ", dsn,
		    (unsigned long)((now - msg->arrival) / 86400));
		str_append(reason, text, MIN(strlen(text),
		    QUEUE_FILE_REASON_MAX - str_len(reason)));
		memset(&u, 0, sizeof(u));
		u.index = i;
		u.state = QUEUE_RCPT_BOUNCED;
		u.reason = str_c(reason);
		if (queue_file_update(msg->qf, &u, 1, &error) < 0) {
			log_error(&msg->log, "cannot record expiry of <%s>: "
			    "%s: %m", addr, error);
		} else {
			struct str *delay = str_new(16, 0);

			qmgr_delay(delay, msg);
			log_info(&msg->log, "to=<%s>, relay=none, delay=%s, "
			    "dsn=%s, status=expired, returned to sender (%s)",
			    addr, str_c(delay), dsn, text);
			str_free(&delay);
		}
		free(last);
		free(addr);
		str_free(&reason);
	}
}

/* qmgr_message_finish - nothing left in flight: DSNs, then remove or defer */
static void
qmgr_message_finish(struct qmgr_message *msg)
{
	size_t i, n = queue_file_rcpt_count(msg->qf);
	time_t next = 0, now;
	bool open = false, dsn_ok;
	const char *error = NULL;

	qmgr_expire(msg);
	dsn_ok = qmgr_bounce_notify(msg, false);
	now = qmgr_now();
	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, i);

		if (qr->state == QUEUE_RCPT_PENDING ||
		    qr->state == QUEUE_RCPT_DEFERRED) {
			open = true;
			if (next == 0 || qr->next_attempt < next)
				next = qr->next_attempt;
		}
	}
	if (!open && dsn_ok) {
		/* Durable with this round's group commit (qmgr_removed_flush). */
		if (queue_file_unlink(msg->qf, &error) < 0) {
			log_error(&msg->log, "cannot remove the queue file: "
			    "%s: %m", error);
			/* It stays: its state must be on disk after all. */
			if (queue_file_sync(msg->qf, &error) < 0)
				log_error(&msg->log, "cannot sync the queue "
				    "file: %s: %m", error);
		} else {
			qmgr_removed_add(msg->id);
		}
		qmgr_message_free(msg);
		return;
	}
	/* Some recipient waits (or a DSN could not be queued): retry later. */
	if (!open || next <= now)
		next = now + (time_t)qmgr_settings.min_backoff;
	if (queue_file_move(msg->qf, QUEUE_DEFERRED, &error) < 0) {
		log_error(&msg->log, "cannot move to deferred/: %s: %m", error);
	} else {
		struct timespec ts[2];

		ts[0].tv_sec = ts[1].tv_sec = next;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(queue_file_fd(msg->qf), ts) < 0)
			log_warn(&msg->log, "cannot set the retry time: %m");
		qmgr_deferred_due(next);
	}
	qmgr_message_free(msg);
}

/* qmgr_message_maybe_done - see qmgr.h */
void
qmgr_message_maybe_done(struct qmgr_message *msg)
{
	if (msg->queued == 0 && msg->inflight == 0)
		qmgr_message_finish(msg);
}
