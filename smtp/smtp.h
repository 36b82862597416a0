/* SPDX-License-Identifier: MIT */
/*
 * smtp.h - private interface between the parts of the smtp(8) agent
 *
 * smtp.c takes one delivery request from qmgr (lib/deliver_proto.h),
 * opens the queue file read-only and answers with one status per
 * recipient; smtp_connect.c reaches the next hop; smtp_session.c speaks
 * SMTP or LMTP to it. Nothing here exits on a delivery problem: every
 * failure becomes a per-recipient status.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver_proto.h"
#include "log.h"
#include "queue_file.h"
#include "str.h"

struct stream;

/* Timeouts and names, read from postern.conf once per process. */
struct smtp_settings {
	bool lmtp;			/* speak LMTP (service name "lmtp...") */
	unsigned connect_timeout;
	unsigned helo_timeout;
	unsigned mail_timeout;
	unsigned rcpt_timeout;
	unsigned data_init_timeout;
	unsigned data_xfer_timeout;
	unsigned data_done_timeout;
	const char *helo_name;
};

extern struct smtp_settings smtp_settings;

/* The outcome of one recipient, filled in as the session goes. */
struct smtp_rcpt_state {
	const struct deliver_rcpt *rcpt;
	bool done;			/* status below is final for this request */
	enum deliver_status status;
	unsigned flags;			/* DELIVER_RES_F_* */
	struct str *dsn;
	struct str *text;
};

/* One delivery: the request, the queue file and the results. */
struct smtp_delivery {
	struct log_ctx log;
	const struct deliver_request *req;
	struct queue_file *qf;
	struct smtp_rcpt_state *rcpts;
	size_t nrcpts;
	struct str *relay;		/* "host[addr]:port" or the socket path */
};

/*
 * smtp_set_status - record the status of recipient i unless it already
 * has one. dsn is "X.Y.Z"; text is copied.
 */
void smtp_set_status(struct smtp_delivery *d, size_t i,
    enum deliver_status status, unsigned flags, const char *dsn,
    const char *text);
/* smtp_set_all - the same for every recipient without a status yet */
void smtp_set_all(struct smtp_delivery *d, enum deliver_status status,
    const char *dsn, const char *text);

/*
 * smtp_connect - connect to nexthop ("unix:/path", "inet:host:port",
 * "inet:[host]:port", "/path", "host[:port]"). Returns a connected
 * blocking fd and sets relay_r (replaced) to its name for logs, or -1
 * with a human reason in why_r (replaced) and *perm_r true when retrying
 * cannot help (malformed nexthop).
 */
int smtp_connect(const char *nexthop, unsigned default_port, struct str *relay_r,
    struct str *why_r, bool *perm_r);

/*
 * smtp_session - run the conversation on fd (owned: closed before
 * return) and set a status for every recipient of d.
 */
void smtp_session(struct smtp_delivery *d, int fd);

#endif
