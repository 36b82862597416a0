/* SPDX-License-Identifier: MIT */
/*
 * lmtpd - private interfaces of the LMTP delivery server (lmtpd sources only)
 *
 * One struct lmtpd_session per client connection. lmtpd_session_run()
 * drives the whole conversation on a struct stream, so the same code
 * runs under master (lmtpd.c), in the unit test and in the fuzz target
 * (in memory).
 *
 * A transaction (MAIL .. end of DATA / BDAT LAST, or RSET) holds the
 * accepted recipients (struct lmtpd_rcpt, each with its user's store
 * open) and the spooled message (struct lmtpd_msg). At the end of the
 * content every accepted recipient is delivered in order and gets its
 * own reply (RFC 2033 4.2): lmtpd_deliver.c. What a delivery does (which
 * mailboxes, which flags) comes from one function, lmtpd_delivery_plan()
 * (lmtpd_plan.c), which Sieve will replace.
 */
#ifndef POSTERN_LMTPD_H
#define POSTERN_LMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "str.h"

struct stream;
struct store;
struct address;

/* The private extension a client uses to send delivery tokens. */
#define LMTPD_TOKEN_EXT		"XPOSTERN-TOKEN"
/*
 * A client's token may be this long: a plan with several actions
 * appends "/N" to it for all but the last one (see lmtpd_deliver.c).
 */
#define LMTPD_TOKEN_MAX		(95 - 4)
#define LMTPD_PLAN_MAX		16	/* actions of one delivery plan */

struct lmtpd_settings {
	const char *myhostname;
	uint64_t size_limit;		/* 0 = none */
	uint64_t line_limit;
	unsigned rcpt_limit;		/* 0 = none */
	unsigned timeout;
	const char *store_dir;
	const char *user_database;
	const char *recipient_delimiter;
	const char *const *mydestination;
	size_t n_mydestination;
	bool save_to_detail;
	unsigned dup_window;		/* seconds, 0 = off */
	const char *dup_dir;
	bool quota_tempfail;
	uint64_t quota_default;		/* bytes, 0 = unlimited */
	bool fsync;			/* false only in tests and fuzzing */
};

/* The process-wide settings (lmtpd_settings_load fills them). */
extern struct lmtpd_settings lmtpd_settings;

/*
 * lmtpd_settings_load - read conf() into lmtpd_settings; false with a
 * logged error on a bad value (the caller makes that fatal).
 */
bool lmtpd_settings_load(void);

/* One accepted recipient. */
struct lmtpd_rcpt {
	char *address;		/* canonical form as the client gave it */
	char *user;		/* user database name (lower case) */
	char *detail;		/* address extension, NULL if none */
	char *token;		/* XTOKEN value, NULL if none */
	uint64_t quota;		/* storage limit in bytes, 0 = unlimited */
	struct store *store;	/* the user's store, open */
};

/*
 * The message of a transaction, spooled to an unlinked temporary file
 * (fd) while it arrives and mapped (data/size) when it is complete. The
 * cached IMAP strings are computed once per message, at the first
 * delivery that needs them, and handed to every recipient's append.
 */
struct lmtpd_msg {
	int fd;			/* spool file, -1 = none yet */
	uint64_t size;		/* bytes written so far */
	struct str *wbuf;	/* write buffer in front of fd */
	const char *data;	/* mapped message (after lmtpd_msg_finish) */
	void *map;		/* the mapping, NULL if size is 0 */
	bool parsed;
	struct str *envelope;
	struct str *body;
	struct str *bodystructure;
	bool msgid_done;
	struct str *message_id;	/* unfolded Message-ID, "" if none */
};

#define LMTPD_VERB_COUNT	(SMTP_VERB_AUTH + 1)

struct lmtpd_session {
	struct stream *stream;
	struct str *client_text;	/* "peer" for logs */
	struct log_ctx log;		/* id: queue ID or transaction ID */
	char tx_id[QUEUE_ID_SIZE];	/* generated at MAIL */
	char queue_id[QUEUE_ID_SIZE];	/* from the first token, or "" */

	struct smtp_cmd *cmd;
	struct str *line;
	struct str *scratch;

	char *lhlo;			/* NULL until LHLO */
	unsigned errors;
	bool quit;			/* stop after this command */
	bool lost;			/* the connection broke */
	int last_code;
	enum smtp_verb cur_verb;
	unsigned count_ok[LMTPD_VERB_COUNT + 1];	/* +1: unknown */
	unsigned count_all[LMTPD_VERB_COUNT + 1];

	/* transaction */
	bool in_mail;
	struct str *sender;		/* canonical */
	enum smtp_body body;
	bool smtputf8;
	uint64_t size_hint;		/* MAIL FROM SIZE=, 0 if not given */
	struct lmtpd_rcpt *rcpts;
	size_t nrcpt;
	size_t rcpt_cap;
	bool bdat_active;
	bool bdat_failed;
	int bdat_fail_code;
	struct str *bdat_fail_text;
	struct lmtpd_msg msg;
};

/* lmtpd_session.c */
void lmtpd_session_run(struct stream *s, const char *peer);
/* lmtpd_reply - send "code[ enh] text" (buffered) */
void lmtpd_reply(struct lmtpd_session *sess, int code, const char *enh,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
/* lmtpd_reply_raw - send "code text" where text starts with the enhanced code */
void lmtpd_reply_raw(struct lmtpd_session *sess, int code, const char *text);
void lmtpd_tx_reset(struct lmtpd_session *sess);

/* lmtpd_data.c */
void lmtpd_cmd_data(struct lmtpd_session *sess);
void lmtpd_cmd_bdat(struct lmtpd_session *sess);
/*
 * lmtpd_msg_write - append n bytes to the spool; -1 (logged) on an I/O
 * error. lmtpd_msg_finish - flush and map it; -1 (logged) on error.
 * lmtpd_msg_reset - drop the spool and everything computed from it.
 */
int lmtpd_msg_write(struct lmtpd_session *sess, const void *p, size_t n);
int lmtpd_msg_finish(struct lmtpd_session *sess);
void lmtpd_msg_reset(struct lmtpd_msg *msg);

/* lmtpd_deliver.c */
/*
 * lmtpd_rcpt_check - RCPT TO: resolve addr (with its token) to a local
 * user, check quota; on success add it to the transaction and answer 250,
 * else answer the reason. token may be NULL.
 */
void lmtpd_rcpt_check(struct lmtpd_session *sess, const struct address *addr,
    const char *token);
/* lmtpd_deliver_all - the message is complete: one reply per recipient */
void lmtpd_deliver_all(struct lmtpd_session *sess);
/* lmtpd_fail_all - the message failed: the same reply for every recipient */
void lmtpd_fail_all(struct lmtpd_session *sess, int code, const char *text);
void lmtpd_rcpt_free(struct lmtpd_rcpt *rcpt);
/* lmtpd_deliver_deinit - close the user database */
void lmtpd_deliver_deinit(void);

/* lmtpd_plan.c */
struct lmtpd_action {
	char *mailbox;		/* where to append ("INBOX" ...), owned */
	bool fallback_inbox;	/* if mailbox does not exist, INBOX instead */
	uint32_t flags;		/* STORE_FLAG_* */
	char **keywords;	/* NULL-terminated, owned, or NULL */
	/* Sieve editheader: the header block to store in place of the
	 * message's own (complete, CRLF, ends with the empty line), owned;
	 * NULL = the message as it came */
	struct str *header;
};

struct lmtpd_plan {
	struct lmtpd_action actions[LMTPD_PLAN_MAX];
	size_t count;		/* 0 = discard (nothing stored, 250) */
	char *reject_text;	/* Sieve ereject: answer 550 5.7.1 this, store nothing (owned) */
};

/*
 * lmtpd_delivery_plan - what delivering msg to rcpt does: the mailboxes
 * to append to, in order, with their flags. Today: the INBOX, or with
 * lmtp_save_to_detail_mailbox the mailbox named by the address detail
 * when it exists; with lmtp_sieve, what the user's Sieve scripts say.
 * Returns 0, or -1 with *error_r (static) for a temporary failure.
 */
int lmtpd_delivery_plan(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt, struct lmtpd_plan *plan,
    const char **error_r);
void lmtpd_plan_clear(struct lmtpd_plan *plan);

/*
 * lmtpd_sieve.c - the plan from the user's Sieve scripts (sieve_before,
 * the active script, sieve_after); redirects and reject notices are
 * injected on the way. lmtpd_sieve_enabled - lmtp_sieve. Returns 0, 1
 * when no script ran (the plan is then the default one), or -1 with
 * *error_r (static) for a temporary failure.
 */
bool lmtpd_sieve_enabled(void);
int lmtpd_sieve_plan(struct lmtpd_session *sess, const struct lmtpd_rcpt *rcpt,
    struct lmtpd_plan *plan, const char **error_r);

/*
 * lmtpd_vacation.c - hand vacation requests to vacationd (logged; never
 * fails the delivery). lmtpd_vacation_sieve - a Sieve vacation action;
 * lmtpd_vacation_setting - the user's vacation setting, when active and
 * no Sieve vacation action ran for rcpt in this transaction.
 */
struct sieve_action;
void lmtpd_vacation_sieve(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt, const struct sieve_action *a);
void lmtpd_vacation_setting(struct lmtpd_session *sess,
    const struct lmtpd_rcpt *rcpt);

/* lmtpd_dup.c - Message-ID duplicate suppression (lmtp_duplicate_window) */
/*
 * lmtpd_dup_check - 1 if message_id was delivered to user within the
 * window, 0 if not, -1 (with *error_r) if the record cannot be read.
 * lmtpd_dup_mark - remember it; -1 on error (best effort: logged only).
 */
int lmtpd_dup_check(const char *user, const char *message_id,
    const char **error_r);
int lmtpd_dup_mark(const char *user, const char *message_id,
    const char **error_r);

#endif
