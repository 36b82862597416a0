/* SPDX-License-Identifier: MIT */
/*
 * qmgr_bounce - DSNs for finished recipients, and injection via cleanup
 *
 * DESCRIPTION
 *	When a message has nothing in flight, qmgr_bounce_notify() reports
 *	to its sender:
 *	  - failed recipients (BOUNCED without the DSN_SENT flag) whose
 *	    NOTIFY asks for failures (the default, RFC 3461),
 *	  - delivered recipients with NOTIFY=SUCCESS (unless the next hop
 *	    took the DSN request itself: the flag was set when the result
 *	    came in),
 *	  - delayed recipients once the message is $delay_warning_time old
 *	    (sent once: at the first deferral after that age).
 *	A DSN is one multipart/report (lib/bounce.c) injected through
 *	cleanup with the null sender and CLEANUP_FLAG_BOUNCE. Only after
 *	cleanup accepted it are the recipients marked DSN_SENT. Mail with
 *	the null sender is never bounced to its sender: its failures go to
 *	$2bounce_notice_recipient as a double bounce, and a failed double
 *	bounce is only logged.
 *
 * SEE ALSO
 *	lib/bounce.h, lib/cleanup_client.h
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bounce.h"
#include "cleanup_client.h"
#include "log.h"

#include "qmgr.h"

#define QMGR_CLEANUP_SOCKET	"public/cleanup"
#define QMGR_INJECT_CHUNK	(64 * 1024)

/* qmgr_inject - see qmgr.h */
int
qmgr_inject(unsigned flags, const struct queue_envelope *env,
    const struct queue_rcpt *rcpts, size_t nrcpts,
    const struct queue_file *src_qf, const struct str *text,
    char id_r[QUEUE_ID_SIZE], struct str *why)
{
	struct cleanup_client *c;
	enum cleanup_status st;
	const char *error = NULL;
	size_t i;

	str_clear(why);
	c = cleanup_client_open(QMGR_CLEANUP_SOCKET, flags, &error);
	if (c == NULL) {
		str_printf(why, "cannot connect to cleanup: %s", error);
		return -1;
	}
	pst_strlcpy(id_r, cleanup_client_id(c), QUEUE_ID_SIZE);
	if (cleanup_client_envelope(c, env, &error) < 0)
		goto fail;
	for (i = 0; i < nrcpts; i++)
		if (cleanup_client_rcpt(c, &rcpts[i], &error) < 0)
			goto fail;
	if (src_qf != NULL) {
		uint64_t off = 0, len = queue_file_content_length(src_qf);
		char *buf = xmalloc(QMGR_INJECT_CHUNK);

		while (off < len) {
			ssize_t n = queue_file_read_content(src_qf, buf,
			    QMGR_INJECT_CHUNK, off);

			if (n <= 0) {
				error = "cannot read the queue file";
				free(buf);
				goto fail;
			}
			if (cleanup_client_content(c, buf, (size_t)n,
			    &error) < 0) {
				free(buf);
				goto fail;
			}
			off += (uint64_t)n;
		}
		free(buf);
	} else if (cleanup_client_content(c, str_c(text), str_len(text),
	    &error) < 0) {
		goto fail;
	}
	st = cleanup_client_finish(&c, why);
	if (st == CLEANUP_OK)
		return 0;
	if (str_len(why) == 0)
		str_append_cstr(why, "cleanup refused the message");
	return -1;
fail:
	cleanup_client_abort(&c);
	str_printf(why, "%s", error != NULL ? error : "cleanup failed");
	return -1;
}

/* qmgr_read_content - bounce.h's content callback over a queue file */
static ssize_t
qmgr_read_content(void *ctx, void *buf, size_t len, uint64_t off)
{
	return queue_file_read_content(ctx, buf, len, off);
}

/* qmgr_notify_wants - does NOTIFY ask for this kind of report? */
static bool
qmgr_notify_wants(unsigned notify, unsigned bit)
{
	if ((notify & SMTP_NOTIFY_NEVER) != 0)
		return false;
	if (notify == 0)	/* RFC 3461 default: FAILURE (and DELAY) */
		return bit == SMTP_NOTIFY_FAILURE || bit == SMTP_NOTIFY_DELAY;
	return (notify & bit) != 0;
}

/* qmgr_attr_is - has the envelope attribute name this value? */
static bool
qmgr_attr_is(const struct queue_envelope *env, const char *name,
    const char *value)
{
	size_t i;

	for (i = 0; i < env->nattrs; i++)
		if (strcmp(env->attrs[i].name, name) == 0)
			return strcmp(env->attrs[i].value, value) == 0;
	return false;
}

/* qmgr_reason_split - "X.Y.Z text" into status and text */
static const char *
qmgr_reason_split(const char *reason, char status[16])
{
	const char *sp = strchr(reason, ' ');
	size_t n = sp != NULL ? (size_t)(sp - reason) : 0;

	if (n > 0 && n < 16) {
		memcpy(status, reason, n);
		status[n] = '\0';
		if (deliver_dsn_ok(status))
			return sp + 1;
	}
	memcpy(status, "5.0.0", 6);
	return reason;
}

/*
 * qmgr_remote_mta - the Remote-MTA of recipient index of msg: what the
 * agent reported with its last status in this process, else the name
 * in a reason "host NAME[addr]:port said: ..." (a message loaded from
 * the queue after a restart); NULL when neither. The result lives in
 * msg or in buf.
 */
static const char *
qmgr_remote_mta(const struct qmgr_message *msg, size_t index,
    const char *diag, char *buf, size_t size)
{
	size_t i, n;

	for (i = 0; i < msg->nrcpts; i++)
		if (msg->rcpts[i].index == index &&
		    msg->rcpts[i].remote_mta != NULL)
			return msg->rcpts[i].remote_mta;
	if (strncmp(diag, "host ", 5) != 0)
		return NULL;
	diag += 5;
	n = strcspn(diag, "[ ");
	if (n == 0 || n >= size || diag[n] != '[')
		return NULL;
	memcpy(buf, diag, n);
	buf[n] = '\0';
	return buf;
}

/*
 * qmgr_send_dsn - build and inject one DSN about the recipients idx[]
 * of msg, to rcpt_to; mark them DSN_SENT when mark. false on failure.
 */
static bool
qmgr_send_dsn(struct qmgr_message *msg, const size_t *idx, size_t n,
    enum bounce_action action, const char *rcpt_to, bool double_bounce,
    bool mark)
{
	const struct queue_envelope *env = queue_file_envelope(msg->qf);
	struct bounce_rcpt *br = xcalloc(n, sizeof(*br));
	char (*status)[16] = xcalloc(n, sizeof(*status));
	char (*mta)[256] = xcalloc(n, sizeof(*mta));
	struct queue_rcpt_update *u = xcalloc(n, sizeof(*u));
	struct str *text = str_new(4096, 0), *why = str_new(64, 0);
	struct str *from = str_new(64, 0), *mid = str_new(64, 0);
	struct bounce_info info;
	struct queue_envelope denv;
	struct queue_attr attr;
	struct queue_rcpt rcpt;
	enum smtp_body body;
	char id[QUEUE_ID_SIZE];
	const char *error = NULL;
	time_t now = qmgr_now();
	unsigned lifetime = qmgr_settings.max_lifetime;
	bool ok = false;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, idx[i]);
		const char *diag = qmgr_reason_split(qr->reason, status[i]);
		const char *said = strstr(diag, " said: ");

		if (action == BOUNCE_DELIVERED)
			memcpy(status[i], "2.0.0", 6);
		br[i].address = qr->address;
		br[i].orcpt_type = qr->orcpt_type;
		br[i].orcpt = qr->orcpt;
		br[i].action = action;
		br[i].status = status[i];
		br[i].diag = said != NULL && strncmp(diag, "host ", 5) == 0 ?
		    said + 7 : diag;
		br[i].diag_smtp = said != NULL && strncmp(diag, "host ", 5) == 0;
		if (action != BOUNCE_DELIVERED)
			br[i].remote_mta = qmgr_remote_mta(msg, idx[i], diag,
			    mta[i], sizeof(mta[i]));
		br[i].last_attempt = qr->updated;
		br[i].will_retry_until = msg->arrival + (time_t)lifetime;
	}
	str_printf(from, "MAILER-DAEMON@%s", qmgr_settings.myhostname);
	str_printf(mid, "%s.%lld.dsn@%s", msg->id, (long long)now,
	    qmgr_settings.myhostname);
	memset(&info, 0, sizeof(info));
	info.queue_id = msg->id;
	info.reporting_mta = qmgr_settings.myhostname;
	info.from = str_c(from);
	info.to = rcpt_to;
	info.message_id = str_c(mid);
	info.arrival = env->arrival;
	info.now = now;
	info.envid = env->envid;
	info.ret = env->ret;
	info.body = env->body;
	info.orig_sender = env->sender[0] != '\0' ? env->sender : "<>";
	info.read = qmgr_read_content;
	info.read_ctx = msg->qf;
	info.content_length = queue_file_content_length(msg->qf);
	info.size_limit = qmgr_settings.bounce_size_limit;
	if (bounce_build(&info, br, n, text, &body, &error) < 0) {
		log_error(&msg->log, "cannot build the delivery status "
		    "notification: %s", error);
		goto out;
	}
	memset(&denv, 0, sizeof(denv));
	gettimeofday(&denv.arrival, NULL);
	denv.sender = "";
	denv.body = body;
	denv.protocol = "local";
	attr.name = QMGR_ATTR_DSN;
	attr.value = double_bounce ? "2bounce" : "bounce";
	denv.attrs = &attr;
	denv.nattrs = 1;
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = rcpt_to;
	if (qmgr_inject(CLEANUP_FLAG_BOUNCE, &denv, &rcpt, 1, NULL, text, id,
	    why) < 0) {
		log_warn(&msg->log, "cannot queue the %s notification to <%s>: "
		    "%s", bounce_action_str(action), rcpt_to, str_c(why));
		goto out;
	}
	log_info(&msg->log, "sender %s notification: %s", action ==
	    BOUNCE_FAILED ? "non-delivery" : action == BOUNCE_DELAYED ?
	    "delay" : "delivery status", id);
	ok = true;
	if (!mark)
		goto out;
	for (i = 0; i < n; i++) {
		u[i].index = idx[i];
		u[i].state = queue_file_rcpt(msg->qf, idx[i])->state;
		u[i].flags = QUEUE_RCPT_F_DSN_SENT;
	}
	if (queue_file_update(msg->qf, u, n, &error) < 0)
		log_error(&msg->log, "cannot mark the notification as sent: "
		    "%s: %m", error);
out:
	str_free(&mid);
	str_free(&from);
	str_free(&why);
	str_free(&text);
	free(u);
	free(status);
	free(mta);
	free(br);
	return ok;
}

/* qmgr_mark - set DSN_SENT on recipients that get no report */
static void
qmgr_mark(struct qmgr_message *msg, const size_t *idx, size_t n)
{
	struct queue_rcpt_update *u;
	const char *error = NULL;
	size_t i;

	if (n == 0)
		return;
	u = xcalloc(n, sizeof(*u));
	for (i = 0; i < n; i++) {
		u[i].index = idx[i];
		u[i].state = queue_file_rcpt(msg->qf, idx[i])->state;
		u[i].flags = QUEUE_RCPT_F_DSN_SENT;
	}
	if (queue_file_update(msg->qf, u, n, &error) < 0)
		log_error(&msg->log, "cannot update recipient flags: %s: %m",
		    error);
	free(u);
}

/* qmgr_prev_update - the status time of index before this round */
static time_t
qmgr_prev_update(const struct qmgr_message *msg, size_t index, time_t dflt)
{
	size_t i;

	for (i = 0; i < msg->nrcpts; i++)
		if (msg->rcpts[i].index == index)
			return msg->rcpts[i].prev_update;
	return dflt;
}

/* qmgr_bounce_notify - see qmgr.h */
bool
qmgr_bounce_notify(struct qmgr_message *msg, bool expire_now UNUSED)
{
	const struct queue_envelope *env = queue_file_envelope(msg->qf);
	size_t n = queue_file_rcpt_count(msg->qf), i;
	size_t *failed = xcalloc(n + 1, sizeof(size_t));
	size_t *success = xcalloc(n + 1, sizeof(size_t));
	size_t *delayed = xcalloc(n + 1, sizeof(size_t));
	size_t *quiet = xcalloc(n + 1, sizeof(size_t));
	size_t nf = 0, ns = 0, nd = 0, nq = 0;
	bool null_sender = env->sender[0] == '\0', ok = true;
	time_t now = qmgr_now(), warn_at = msg->arrival +
	    (time_t)qmgr_settings.delay_warning;

	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = queue_file_rcpt(msg->qf, i);

		if (qr->state == QUEUE_RCPT_DEFERRED) {
			if (qmgr_settings.delay_warning > 0 && !null_sender &&
			    qmgr_notify_wants(qr->notify, SMTP_NOTIFY_DELAY) &&
			    now >= warn_at && qmgr_prev_update(msg, i, now) <
			    warn_at)
				delayed[nd++] = i;
			continue;
		}
		if ((qr->flags & QUEUE_RCPT_F_DSN_SENT) != 0)
			continue;
		if (qr->state == QUEUE_RCPT_BOUNCED) {
			if (null_sender || qmgr_notify_wants(qr->notify,
			    SMTP_NOTIFY_FAILURE))
				failed[nf++] = i;
			else
				quiet[nq++] = i;
		} else if (qr->state == QUEUE_RCPT_DELIVERED &&
		    qmgr_notify_wants(qr->notify, SMTP_NOTIFY_SUCCESS) &&
		    !null_sender) {
			success[ns++] = i;
		}
	}
	if (nf > 0) {
		if (!null_sender) {
			ok = qmgr_send_dsn(msg, failed, nf, BOUNCE_FAILED,
			    env->sender, false, true);
		} else if (qmgr_attr_is(env, QMGR_ATTR_DSN, "2bounce")) {
			log_warn(&msg->log, "undeliverable double bounce "
			    "discarded");
			qmgr_mark(msg, failed, nf);
		} else {
			ok = qmgr_send_dsn(msg, failed, nf, BOUNCE_FAILED,
			    qmgr_settings.double_bounce_rcpt, true, true);
		}
	}
	if (ns > 0 && !qmgr_send_dsn(msg, success, ns, BOUNCE_DELIVERED,
	    env->sender, false, true))
		ok = false;
	if (nd > 0)
		(void)qmgr_send_dsn(msg, delayed, nd, BOUNCE_DELAYED,
		    env->sender, false, false);
	qmgr_mark(msg, quiet, nq);
	free(quiet);
	free(delayed);
	free(success);
	free(failed);
	return ok;
}
