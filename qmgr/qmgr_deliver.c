/* SPDX-License-Identifier: MIT */
/*
 * qmgr_deliver - destinations, concurrency, and the delivery agents
 *
 * DESCRIPTION
 *	A destination is a (transport, next hop) pair, e.g. ("lmtp",
 *	"unix:/var/spool/postern/private/lmtpd"). Each keeps a FIFO of
 *	jobs; a job is up to $default_destination_recipient_limit
 *	recipients of one message. qmgr_deliver_dispatch() starts jobs
 *	round-robin over the destinations while each stays under its
 *	concurrency limit ($<transport>_destination_concurrency_limit,
 *	else $default_destination_concurrency_limit).
 *
 *	A job is one connection to the transport's agent socket,
 *	private/<transport> (master starts agents on demand): the request
 *	is written and the answer read without blocking, through the event
 *	loop; a job that takes longer than QMGR_JOB_TIMEOUT is abandoned
 *	(its recipients deferred). An agent that cannot be reached or
 *	closes without a whole answer defers the job's recipients: a
 *	missing answer never counts as delivered.
 *
 * SEE ALSO
 *	smtp(8), lib/deliver_proto.h
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "event.h"
#include "log.h"

#include "qmgr.h"

#define QMGR_JOB_TIMEOUT	(3600 * 1000U)	/* ms */
#define QMGR_RETRY_CONNECT	(1000U)		/* ms, agent backlog full */

static struct qmgr_transport *qmgr_transports;
static struct event_timer *qmgr_retry_timer;

/* qmgr_transport_get - find or make the transport called name */
static struct qmgr_transport *
qmgr_transport_get(const char *name)
{
	struct qmgr_transport *t;
	struct str *param;

	for (t = qmgr_transports; t != NULL; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(name);
	t->limit = (unsigned)qmgr_settings.default_concurrency;
	param = str_new(64, 0);
	str_printf(param, "%s_destination_concurrency_limit", name);
	if (config_param_find(str_c(param)) != NULL)
		t->limit = (unsigned)config_int(conf(), str_c(param));
	str_free(&param);
	if (t->limit == 0)
		t->limit = 1;
	t->next = qmgr_transports;
	qmgr_transports = t;
	return t;
}

/* qmgr_dest_get - find or make a destination */
static struct qmgr_dest *
qmgr_dest_get(const char *transport, const char *nexthop)
{
	struct qmgr_transport *t = qmgr_transport_get(transport);
	struct qmgr_dest *d;

	for (d = t->dests; d != NULL; d = d->next)
		if (strcmp(d->nexthop, nexthop) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->transport = t;
	d->nexthop = xstrdup(nexthop);
	d->next = t->dests;
	t->dests = d;
	return d;
}

/* qmgr_deliver_queue - see qmgr.h */
void
qmgr_deliver_queue(struct qmgr_message *msg, size_t r, const char *transport,
    const char *nexthop)
{
	struct qmgr_dest *d = qmgr_dest_get(transport, nexthop);
	struct qmgr_job *job = d->tail;

	if (job == NULL || job->msg != msg ||
	    job->nrcpts >= qmgr_settings.dest_rcpt_limit) {
		job = xcalloc(1, sizeof(*job));
		job->msg = msg;
		job->dest = d;
		job->fd = -1;
		job->rcpts = xcalloc(qmgr_settings.dest_rcpt_limit,
		    sizeof(*job->rcpts));
		if (d->tail != NULL)
			d->tail->next = job;
		else
			d->head = job;
		d->tail = job;
	}
	job->rcpts[job->nrcpts++] = r;
	msg->rcpts[r].phase = QMGR_RCPT_QUEUED;
	msg->queued++;
}

/* qmgr_job_free - a job that is off every queue */
static void
qmgr_job_free(struct qmgr_job *job)
{
	if (job->fd >= 0) {
		(void)event_fd_remove(qmgr_loop(), job->fd);
		(void)close(job->fd);
	}
	event_timer_remove(qmgr_loop(), &job->timer);
	str_free(&job->out);
	str_free(&job->in);
	free(job->rcpts);
	free(job);
}

/* qmgr_job_end - the job is over (res or why): record and go on */
static void
qmgr_job_end(struct qmgr_job *job, const struct deliver_response *res,
    const char *why)
{
	struct qmgr_dest *d = job->dest;

	if (job->fd >= 0) {
		(void)event_fd_remove(qmgr_loop(), job->fd);
		(void)close(job->fd);
		job->fd = -1;
	}
	event_timer_remove(qmgr_loop(), &job->timer);
	d->active--;
	qmgr_message_results(job, res, why);
	qmgr_job_free(job);
	qmgr_kick();
}

/* qmgr_job_timeout - the agent took too long */
static void
qmgr_job_timeout(void *ctx)
{
	struct qmgr_job *job = ctx;
	struct str *why = str_new(64, 0);

	job->timer = NULL;
	str_printf(why, "delivery agent %s did not answer in time",
	    job->dest->transport->name);
	log_warn(&job->msg->log, "%s", str_c(why));
	qmgr_job_end(job, NULL, str_c(why));
	str_free(&why);
}

/* qmgr_job_io - the agent socket is ready */
static void
qmgr_job_io(void *ctx, int fd, unsigned events)
{
	struct qmgr_job *job = ctx;
	const char *error = NULL;
	char buf[8192];
	size_t used;
	ssize_t n;
	int r;

	if (job->out_off < str_len(job->out)) {
		n = write(fd, str_c(job->out) + job->out_off,
		    str_len(job->out) - job->out_off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			struct str *why = str_new(64, 0);

			str_printf(why, "cannot send the request to delivery "
			    "agent %s: %m", job->dest->transport->name);
			qmgr_job_end(job, NULL, str_c(why));
			str_free(&why);
			return;
		}
		job->out_off += (size_t)n;
		if (job->out_off == str_len(job->out))
			(void)event_fd_modify(qmgr_loop(), fd, EVENT_READ);
		return;
	}
	if ((events & (EVENT_READ | EVENT_ERROR)) == 0)
		return;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && str_append(job->in, buf, (size_t)n) < 0) {
		qmgr_job_end(job, NULL, "answer of the delivery agent too long");
		return;
	}
	r = deliver_proto_complete(str_c(job->in), str_len(job->in), &used,
	    &error);
	if (r == 1) {
		struct deliver_response *res;

		res = deliver_response_decode(str_c(job->in), used, &error);
		if (res == NULL) {
			log_warn(&job->msg->log, "bad answer from delivery agent "
			    "%s: %s", job->dest->transport->name, error);
			qmgr_job_end(job, NULL, "bad answer from the delivery "
			    "agent");
			return;
		}
		qmgr_job_end(job, res, NULL);
		deliver_response_free(&res);
		return;
	}
	if (r < 0 || n <= 0) {
		struct str *why = str_new(64, 0);

		if (r < 0)
			log_warn(&job->msg->log, "bad answer from delivery "
			    "agent %s: %s", job->dest->transport->name, error);
		str_printf(why, "delivery agent %s %s",
		    job->dest->transport->name, r < 0 ? "sent a bad answer" :
		    "closed the connection without an answer (crashed?)");
		qmgr_job_end(job, NULL, str_c(why));
		str_free(&why);
	}
}

/* qmgr_job_request - encode the delivery request of job */
static int
qmgr_job_request(struct qmgr_job *job, const char **error_r)
{
	struct qmgr_message *msg = job->msg;
	struct deliver_rcpt *rcpts = xcalloc(job->nrcpts, sizeof(*rcpts));
	struct str **tokens = xcalloc(job->nrcpts, sizeof(*tokens));
	struct deliver_request req;
	size_t i;
	int rc;

	for (i = 0; i < job->nrcpts; i++) {
		struct qmgr_rcpt *r = &msg->rcpts[job->rcpts[i]];
		const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, r->index);

		tokens[i] = str_new(32, 0);
		(void)queue_file_token(msg->id, r->index, tokens[i]);
		rcpts[i].index = (uint32_t)r->index;
		rcpts[i].address = r->address;
		rcpts[i].orcpt_type = qr->orcpt != NULL ? qr->orcpt_type : NULL;
		rcpts[i].orcpt = qr->orcpt_type != NULL ? qr->orcpt : NULL;
		rcpts[i].notify = qr->notify;
		rcpts[i].token = str_c(tokens[i]);
	}
	memset(&req, 0, sizeof(req));
	req.queue_id = msg->id;
	req.queue = queue_file_queue(msg->qf);
	req.nexthop = job->dest->nexthop;
	req.sender = queue_file_envelope(msg->qf)->sender;
	req.rcpts = rcpts;
	req.nrcpts = job->nrcpts;
	job->out = str_new(1024, 0);
	rc = deliver_request_encode(&req, job->out, error_r);
	for (i = 0; i < job->nrcpts; i++)
		str_free(&tokens[i]);
	free(tokens);
	free(rcpts);
	return rc;
}

static void
qmgr_retry_fire(void *ctx UNUSED)
{
	qmgr_retry_timer = NULL;
	qmgr_deliver_dispatch();
}

/*
 * qmgr_job_start - connect to the agent and send; 0 started, 1 try
 * later (agent busy), -1 ended at once (recipients settled)
 */
static int
qmgr_job_start(struct qmgr_job *job)
{
	struct sockaddr_un sun;
	struct str *why = str_new(64, 0);
	const char *error = NULL;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "private/%s",
	    job->dest->transport->name) >= sizeof(sun.sun_path)) {
		str_printf(why, "transport name too long: %s",
		    job->dest->transport->name);
		goto fail;
	}
	if (qmgr_job_request(job, &error) < 0) {
		str_printf(why, "cannot make the delivery request: %s", error);
		goto fail;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		str_printf(why, "socket: %m");
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
	    errno != EINPROGRESS) {
		if (errno == EAGAIN) {
			(void)close(fd);
			str_free(&job->out);
			str_free(&why);
			return 1;
		}
		str_printf(why, "mail transport unavailable: cannot connect "
		    "to delivery agent %s (private/%s): %m",
		    job->dest->transport->name, job->dest->transport->name);
		(void)close(fd);
		goto fail;
	}
	job->fd = fd;
	job->in = str_new(1024, DELIVER_PROTO_MSG_MAX);
	job->started = qmgr_now();
	if (event_fd_add(qmgr_loop(), fd, EVENT_WRITE | EVENT_READ,
	    qmgr_job_io, job) < 0) {
		str_printf(why, "event_fd_add: %m");
		goto fail;
	}
	job->timer = event_timer_add(qmgr_loop(), QMGR_JOB_TIMEOUT,
	    qmgr_job_timeout, job);
	str_free(&why);
	return 0;
fail:
	log_warn(&job->msg->log, "%s", str_c(why));
	qmgr_job_end(job, NULL, str_c(why));
	str_free(&why);
	return -1;
}

/* qmgr_deliver_dispatch - see qmgr.h */
void
qmgr_deliver_dispatch(void)
{
	struct qmgr_transport *t;
	struct qmgr_dest *d;
	bool progress = true, busy = false;

	while (progress) {
		progress = false;
		for (t = qmgr_transports; t != NULL; t = t->next) {
			for (d = t->dests; d != NULL; d = d->next) {
				struct qmgr_job *job = d->head;
				int r;

				if (job == NULL || d->active >= t->limit)
					continue;
				d->head = job->next;
				if (d->head == NULL)
					d->tail = NULL;
				job->next = NULL;
				job->msg->queued -= (unsigned)job->nrcpts;
				job->msg->inflight++;
				d->active++;
				{
					size_t i;

					for (i = 0; i < job->nrcpts; i++)
						job->msg->rcpts[job->rcpts[i]].phase =
						    QMGR_RCPT_INFLIGHT;
				}
				r = qmgr_job_start(job);
				if (r == 1) {
					/* agent backlog full: put it back */
					size_t i;

					d->active--;
					job->msg->inflight--;
					job->msg->queued += (unsigned)job->nrcpts;
					for (i = 0; i < job->nrcpts; i++)
						job->msg->rcpts[job->rcpts[i]].phase =
						    QMGR_RCPT_QUEUED;
					job->next = d->head;
					d->head = job;
					if (d->tail == NULL)
						d->tail = job;
					busy = true;
					continue;
				}
				progress = true;
				/* the job may have ended and freed messages: restart */
				goto again;
			}
		}
again:
		;
	}
	if (busy && qmgr_retry_timer == NULL)
		qmgr_retry_timer = event_timer_add(qmgr_loop(),
		    QMGR_RETRY_CONNECT, qmgr_retry_fire, NULL);
}

/* qmgr_deliver_forget - drop msg's queued jobs (message leaves memory) */
void
qmgr_deliver_forget(struct qmgr_message *msg)
{
	struct qmgr_transport *t;
	struct qmgr_dest *d;

	for (t = qmgr_transports; t != NULL; t = t->next) {
		for (d = t->dests; d != NULL; d = d->next) {
			struct qmgr_job **pp = &d->head, *job;

			d->tail = NULL;
			while ((job = *pp) != NULL) {
				if (job->msg == msg) {
					*pp = job->next;
					msg->queued -= (unsigned)job->nrcpts;
					qmgr_job_free(job);
					continue;
				}
				d->tail = job;
				pp = &job->next;
			}
		}
	}
}
