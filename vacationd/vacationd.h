/* SPDX-License-Identifier: MIT */
/*
 * vacationd - private interfaces of the vacation responder (vacationd sources only)
 *
 * vacationd.c is main and the settings; vacationd_session.c the LMTP
 * conversation (lib/lmtp_server with vacationd's options);
 * vacationd_reply.c the RFC 3834 / RFC 5230 rules, the reply and its
 * injection; vacationd_db.c the per-user "already answered" database.
 */
#ifndef POSTERN_VACATIOND_H
#define POSTERN_VACATIOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "log.h"

struct str;
struct vacation_params;

/* A request line may carry a whole xtext-encoded parameter record. */
#define VACATIOND_LINE_MAX	(3 * 64 * 1024 + 1024)
#define VACATIOND_HEADER_MAX	(1024 * 1024)	/* header block kept */
#define VACATIOND_RCPT_MAX	64
#define VACATIOND_ERROR_LIMIT	10

struct vacationd_settings {
	const char *myhostname;
	const char *directory;		/* $vacation_directory */
	const char *cleanup;		/* $vacationd_cleanup_service */
	const char *user_database;
	const char *delimiter;		/* recipient_delimiter */
	const char *const *mydestination;
	size_t n_mydestination;
	unsigned timeout;
};

extern struct vacationd_settings vacationd_settings;

/* vacationd_session.c - one client connection on fd (not closed) */
void vacationd_session_run(int fd, const char *peer);

/*
 * vacationd_reply.c - decide and, when due, send the reply to sender
 * (canonical, "" = null) for the message whose header block is
 * head[0..hlen), received for rcpt with parameters p. Returns the LMTP
 * code for the recipient (250: replied or not due; 4xx: try again) with
 * its text ("2.0.0 ...") in text (replaced).
 */
int vacationd_reply(const struct log_ctx *log, const char *sender,
    const char *rcpt, const struct vacation_params *p, const char *head,
    size_t hlen, struct str *text);
void vacationd_reply_deinit(void);

/* vacationd_db.c - $vacation_directory/replied/USER.db (USER allow-listed) */
struct vacationd_db;
/* vacationd_db_open - lock and open (creating) the user's database; NULL + *error_r */
struct vacationd_db *vacationd_db_open(const char *user, const char **error_r);
/* vacationd_db_seen - 1 if key was answered and its period has not ended at now, 0 not, -1 error */
int vacationd_db_seen(struct vacationd_db *db, const void *key, size_t klen,
    time_t now, const char **error_r);
/* vacationd_db_mark - remember key until now + period, and drop expired records */
int vacationd_db_mark(struct vacationd_db *db, const void *key, size_t klen,
    time_t now, unsigned period, const char **error_r);
/* vacationd_db_close - write, close, unlock; NULL allowed */
void vacationd_db_close(struct vacationd_db **dbp);

#endif
