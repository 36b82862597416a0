/* SPDX-License-Identifier: MIT */
/*
 * cleanup_client - hand a new message to cleanup, the one way into the queue
 *
 * smtpd, the sendmail command, bounce generation (qmgr), list-mgr,
 * news-gw and vacationd all inject mail through this client; only the
 * cleanup daemon writes queue files (lib/queue_file.h). A client
 * connects to cleanup's UNIX socket ($queue_directory/private/cleanup for
 * daemons, $queue_directory/public/cleanup for local users: cleanup
 * learns a local user's identity with SO_PEERCRED and trusts nothing
 * they claim), and streams one message per connection:
 *
 *	c = cleanup_client_open(path, flags, &error);  // queue ID known now
 *	cleanup_client_envelope(c, &env, &error);
 *	cleanup_client_rcpt(c, &rcpt, &error);          // one or more
 *	cleanup_client_content(c, data, len, &error);   // any number of chunks
 *	status = cleanup_client_finish(&c, reason);     // 2xx only if OK
 *
 * Content is the message exactly as it will go on the wire: CRLF line
 * ends, NOT dot-stuffed (smtpd removes the SMTP transparency dots first),
 * header then body. The caller adds its own trace header (Received:)
 * first; cleanup adds Message-ID:, Date: and From: where missing when
 * CLEANUP_FLAG_SUBMISSION is set, applies canonical maps, enforces header
 * limits, and writes the queue file durably.
 *
 * cleanup_client_finish() returns CLEANUP_OK only when cleanup reported
 * the queue file committed (queue_file_commit returned 0). If the
 * connection breaks after the end of the message was sent (cleanup was
 * killed), it answers from what is on disk: it looks the ID up with
 * queue_file_locate()/queue_file_complete(), completing a finished commit
 * with queue_file_recover(), so a message that is durably queued is never
 * answered 4xx (no duplicate on the client's retry), and an incomplete one
 * is never answered 2xx.
 *
 * Every call but finish returns 0 / -1 (NULL for open) with a static-text
 * *error_r; after a failure the caller must still finish or abort. No call
 * exits. The wire protocol is private to this module and cleanup/.
 */
#ifndef POSTERN_CLEANUP_CLIENT_H
#define POSTERN_CLEANUP_CLIENT_H

#include <stddef.h>

#include "queue_file.h"
#include "str.h"

/* Flags for cleanup_client_open */
#define CLEANUP_FLAG_SUBMISSION	0x01	/* add Message-ID/Date/From if missing */
#define CLEANUP_FLAG_EXTRACT_RCPTS 0x02	/* sendmail -t: recipients from To/Cc/Bcc */
#define CLEANUP_FLAG_HOLD	0x04	/* commit into hold/ */
#define CLEANUP_FLAG_BOUNCE	0x08	/* a bounce/DSN: no rewriting of the sender */

enum cleanup_status {
	CLEANUP_OK,		/* durably queued */
	CLEANUP_TEMPFAIL,	/* not queued; try again later (4xx) */
	CLEANUP_REJECT,		/* not queued; permanent (5xx), e.g. header too big */
};

struct cleanup_client;

struct cleanup_client *cleanup_client_open(const char *socket_path,
    unsigned flags, const char **error_r);
/* cleanup_client_id - the queue ID cleanup assigned (for logging at once) */
const char *cleanup_client_id(const struct cleanup_client *c);
int cleanup_client_envelope(struct cleanup_client *c,
    const struct queue_envelope *env, const char **error_r);
int cleanup_client_rcpt(struct cleanup_client *c, const struct queue_rcpt *rcpt,
    const char **error_r);
int cleanup_client_content(struct cleanup_client *c, const void *data,
    size_t len, const char **error_r);
/*
 * cleanup_client_finish - end the message and wait for cleanup's verdict
 * (see above). reason gets a human text for TEMPFAIL/REJECT (and the
 * enhanced status code to use, as "4.3.0 text" / "5.6.0 text").
 * Frees *cp and sets it to NULL.
 */
enum cleanup_status cleanup_client_finish(struct cleanup_client **cp,
    struct str *reason);
/* cleanup_client_abort - drop the message (cleanup removes its file); NULL allowed */
void cleanup_client_abort(struct cleanup_client **cp);

#endif
