/* SPDX-License-Identifier: MIT */
/*
 * listmgr_inject - list-mgr's way into the queue (lib/cleanup_client)
 *
 * DESCRIPTION
 *	Every message list-mgr sends (copies of posts, digests, notices,
 *	confirmations) is one cleanup_client transaction. listmgr_inject()
 *	returns 0 only when cleanup reported the queue file committed.
 */
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cleanup_client.h"
#include "log.h"
#include "str.h"

#include "listmgr.h"

/* listmgr_inject_flags - the work of listmgr_inject with cleanup flags */
static int
listmgr_inject_flags(const char *sender, const char *const *rcpts, size_t n,
    const char *data, size_t len, unsigned flags, struct listmgr_progress *p,
    struct log_ctx *log)
{
	struct cleanup_client *c;
	struct queue_envelope env;
	struct queue_rcpt rcpt;
	struct str *reason;
	const char *error = NULL;
	size_t i;
	int rc = -1;

	c = cleanup_client_open(listmgr_settings.cleanup_socket, flags, &error);
	if (c == NULL) {
		log_error(log, "cannot connect to cleanup (%s): %s",
		    listmgr_settings.cleanup_socket, error);
		return -1;
	}
	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = sender;
	env.protocol = "list-mgr";
	if (cleanup_client_envelope(c, &env, &error) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		memset(&rcpt, 0, sizeof(rcpt));
		rcpt.address = rcpts[i];
		if (cleanup_client_rcpt(c, &rcpt, &error) < 0)
			goto fail;
	}
	if (cleanup_client_content(c, data, len, &error) < 0)
		goto fail;
	/* the intent is durable before cleanup can commit (see progress) */
	if (p != NULL && listmgr_progress_intent(p, rcpts[0],
	    cleanup_client_id(c)) < 0) {
		error = "cannot write the progress record";
		goto fail;
	}
	reason = str_new(0, 0);
	if (cleanup_client_finish(&c, reason) == CLEANUP_OK) {
		rc = 0;
		if (p != NULL && listmgr_progress_done(p, rcpts[0]) < 0)
			log_warn(log, "progress record: %m");
	} else {
		log_error(log, "cleanup did not queue the message: %s",
		    str_c(reason));
		/* (a lost connection was answered from the queue on disk) */
		if (p != NULL)
			(void)listmgr_progress_failed(p, rcpts[0]);
	}
	str_free(&reason);
	return rc;
fail:
	log_error(log, "injection failed: %s", error);
	cleanup_client_abort(&c);
	return -1;
}

/* listmgr_inject - see listmgr.h */
int
listmgr_inject(const char *sender, const char *const *rcpts, size_t n,
    const char *data, size_t len, struct log_ctx *log)
{
	return listmgr_inject_flags(sender, rcpts, n, data, len, 0, NULL, log);
}

/* listmgr_inject_copy - see listmgr.h */
int
listmgr_inject_copy(const char *sender, const char *rcpt, const char *data,
    size_t len, struct listmgr_progress *p, struct log_ctx *log)
{
	return listmgr_inject_flags(sender, &rcpt, 1, data, len, 0, p, log);
}

/* listmgr_notice - see listmgr.h */
int
listmgr_notice(const struct list *l, const char *from, const char *to,
    const char *subject, const char *extra_hdr, const char *body,
    struct log_ctx *log)
{
	struct str *m = str_new(0, 0), *bounces = str_new(0, 0);
	const char *p;
	int rc;

	list_address(l, "bounces", bounces);
	str_printf(m, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", from, to,
	    subject);
	str_append_cstr(m, "MIME-Version: 1.0\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "Auto-Submitted: auto-replied\r\nPrecedence: list\r\n");
	str_printf(m, "X-Loop: %s@%s\r\n", l->name, list_get(l, "domain"));
	if (extra_hdr != NULL)
		str_append_cstr(m, extra_hdr);
	str_append_cstr(m, "\r\n");
	/* body: LF or CRLF in, CRLF out */
	for (p = body; *p != '\0'; p++) {
		if (*p == '\n' && (p == body || p[-1] != '\r'))
			str_append_c(m, '\r');
		str_append_c(m, *p);
	}
	if (str_len(m) < 2 || str_c(m)[str_len(m) - 1] != '\n')
		str_append_cstr(m, "\r\n");
	rc = listmgr_inject_flags(str_c(bounces), &to, 1, str_c(m), str_len(m),
	    CLEANUP_FLAG_SUBMISSION, NULL, log);
	str_free(&m);
	str_free(&bounces);
	return rc;
}
