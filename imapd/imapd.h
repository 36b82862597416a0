/* SPDX-License-Identifier: MIT */
/*
 * imapd.h - private interfaces of imapd and imapd-mail (two roles)
 */
#ifndef POSTERN_IMAPD_H
#define POSTERN_IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "log.h"
#include "login_proxy.h"
#include "str.h"

struct stream;
struct tls_context;
struct tls_session;
struct store;
struct store_mailbox;
struct login_handoff;
struct imapd_zlib;
struct imapd_notify;
struct server_conn;

/* ---------------------------------------------------------------- settings */

enum imapd_role {
	IMAPD_ROLE_LOGIN,
	IMAPD_ROLE_MAIL,
	IMAPD_ROLE_STANDALONE,
};

struct imapd_settings {
	enum imapd_role role;
	const char *banner;
	unsigned login_timeout;
	unsigned timeout;
	size_t line_max;
	uint64_t append_max;
	char sep;
	bool disable_plaintext_auth;
	bool wrappermode;
	bool loopback_secure;
	const char *mail_service;
	unsigned ip_conn_limit;
	unsigned user_conn_limit;
	const char *store_dir;
	const char *data_dir;
	unsigned notify_mailbox_limit;	/* NOTIFY: mailboxes tracked at most */
};
extern struct imapd_settings imapd_settings;

/* ---------------------------------------------------------------- parser */

/* Reading one command (imapd_parse.c). */
enum imapd_read {
	IMAPD_READ_OK,
	IMAPD_READ_EOF,		/* connection closed or I/O error */
	IMAPD_READ_TOO_LONG,	/* line or literal too big: BAD sent, go on */
	IMAPD_READ_FATAL,	/* BYE sent (non-synchronizing literal too big) */
};

/*
 * imapd_read_command - read one command into cmd: lines and literals as
 * on the wire ("{n}\r\n" + n bytes, a "+" of LITERAL+ dropped), final
 * CRLF removed. Sends "+ OK" for synchronizing literals. max bounds the
 * whole command; APPEND (seen from the first line) may carry literals
 * of up to append_max bytes in all (MULTIAPPEND).
 */
enum imapd_read imapd_read_command(struct stream *s, struct str *cmd,
    size_t max, uint64_t append_max, struct str *tag_r);

struct imap_parser {
	const char *p;
	size_t n;
	size_t pos;
	const char *error;	/* static text after a failure */
};

void imap_parser_init(struct imap_parser *ip, const char *p, size_t n);
bool imap_parse_end(struct imap_parser *ip);
bool imap_parse_sp(struct imap_parser *ip);
bool imap_parse_peek(const struct imap_parser *ip, char c);
bool imap_parse_char(struct imap_parser *ip, char c);
/* atom: ATOM-CHARs (with ']' when bracket is true) */
bool imap_parse_atom(struct imap_parser *ip, struct str *out, bool bracket);
/* a tag: ASTRING-CHAR except '+' */
bool imap_parse_tag(struct imap_parser *ip, struct str *out);
bool imap_parse_string(struct imap_parser *ip, struct str *out);
bool imap_parse_astring(struct imap_parser *ip, struct str *out);
/* nstring: NIL gives *nil_r true */
bool imap_parse_nstring(struct imap_parser *ip, struct str *out, bool *nil_r);
bool imap_parse_number(struct imap_parser *ip, uint32_t *v, bool nz);
bool imap_parse_number64(struct imap_parser *ip, uint64_t *v);
/* flag: \Atom or atom, into out (with the backslash) */
bool imap_parse_flag(struct imap_parser *ip, struct str *out);
/* literal8 (~{n}) or string, for APPEND BINARY */
bool imap_parse_literal_any(struct imap_parser *ip, struct str *out,
    bool *binary_r);

/* Sequence sets. UINT32_MAX stands for '*'. */
struct imap_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_range *r;
	size_t n, cap;
	bool saved;		/* "$" (SEARCHRES) */
};
bool imap_parse_seqset(struct imap_parser *ip, struct imap_seqset *set);
void imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi);
void imap_seqset_free(struct imap_seqset *set);
/* imap_seqset_contains - v in set, with '*' meaning star */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t v,
    uint32_t star);
/* imap_seqset_write - compact "1:3,5" of the sorted values v[0..n) */
void imap_seqset_write(struct str *out, const uint32_t *v, size_t n);

/* imap_write_astring - quoted, or a literal when needed */
void imap_write_string(struct str *out, const char *p, size_t n);
/* imap_write_mailbox - a mailbox name (UTF-8) in mUTF-7 (or UTF-8 if utf8) */
void imap_write_mailbox(struct str *out, const char *name, char sep, bool utf8);

/* ---------------------------------------------------------------- sessions */

/* The connection as both roles see it: struct login_conn (lib/login_proxy.h). */

/* imapd_login.c: the LOGIN role (and the pre-auth half of standalone) */
void imapd_login_run(struct login_conn *c, struct tls_context *tls_ctx);

/* imapd_session.c: the MAIL role */
void imapd_session_run(struct login_conn *c, const char *user,
    const char *tag, struct str *input);

/* capability strings */
void imapd_capability_preauth(struct str *out, const struct login_conn *c,
    bool tls_available);
/* imapd_capability_auth - after login; sess may be NULL (no COMPRESS) */
struct imapd_session;
void imapd_capability_auth(struct str *out, const struct imapd_session *sess);

/* The authenticated session (mail role), shared by imapd_session.c,
 * imapd_fetch.c, imapd_search.c and imapd_list.c. */
struct imapd_session {
	struct login_conn *c;
	struct stream *s;
	struct store *store;
	char *user;
	struct str *tag;
	struct str *cmd;
	struct str *out;	/* response being built */
	struct imap_parser ip;
	bool uid;		/* UID FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE */

	struct store_mailbox *box;
	bool readonly;
	struct store *box_store;	/* the shared store box is from, or NULL */
	uint64_t client_modseq;	/* highest modseq announced (CONDSTORE) */
	struct imap_seqset searchres;	/* SEARCHRES "$": UIDs */

	bool condstore, qresync, rev2, utf8;
	struct imapd_zlib *zlib;	/* COMPRESS=DEFLATE is active */
	struct imapd_notify *notify;	/* NOTIFY SET is in force, or NULL */
	bool done;
	unsigned errors;
	uint64_t quota_bytes;
};

/* imapd_session.c helpers */
void imapd_reply(struct imapd_session *sess, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
void imapd_flush_out(struct imapd_session *sess);
/* imapd_sync - bring the view up to date and announce the changes */
void imapd_sync(struct imapd_session *sess, bool allow_expunge,
    const uint32_t *skip, size_t nskip);
/* imapd_write_flags - "(\Seen kw ...)" of a message */
void imapd_write_flags(struct imapd_session *sess, struct str *out,
    uint32_t flags, uint64_t keywords);
/*
 * imapd_resolve_set - the seqs (ascending, unique) a sequence set or UID
 * set names; false (BAD) for a sequence number past the view.
 */
bool imapd_resolve_set(struct imapd_session *sess,
    const struct imap_seqset *set, bool uid, uint32_t **seqs_r,
    size_t *n_r);
/* imapd_parse_mailbox - a mailbox argument into its UTF-8 store name */
bool imapd_parse_mailbox(struct imapd_session *sess, struct str *out);
void imapd_mailbox_from_wire(struct imapd_session *sess, const char *p,
    size_t n, struct str *out, bool *ok_r);

/* imapd_fetch.c */
void imapd_cmd_fetch(struct imapd_session *sess);
void imapd_cmd_store(struct imapd_session *sess);
void imapd_write_date(struct str *out, time_t t, int tz_minutes);

/*
 * imapd_fetch_atts_parse - NOTIFY's MessageNew fetch-att list, "("
 * fetch-att *(SP fetch-att) ")", at sess->ip; an owned list, or NULL
 * with sess->ip.error (BAD). Body sections never set \Seen.
 */
struct imapd_fetch_atts;
struct imapd_fetch_atts *imapd_fetch_atts_parse(struct imapd_session *sess);
/* imapd_fetch_atts_write - the untagged FETCH of seq with those items */
void imapd_fetch_atts_write(struct imapd_session *sess,
    const struct imapd_fetch_atts *a, uint32_t seq);
void imapd_fetch_atts_free(struct imapd_fetch_atts **ap);

/* imapd_search.c */
void imapd_cmd_search(struct imapd_session *sess);
void imapd_cmd_sort(struct imapd_session *sess, bool thread);
/* imapd_parse_date - "1-Feb-1994" into a UTC midnight time; false if bad */
bool imapd_parse_date(const char *p, size_t n, time_t *t_r);
bool imapd_parse_datetime(const char *p, size_t n, time_t *t_r, int *tz_r);

/* imapd_thread.c: base subjects, THREAD=ORDEREDSUBJECT and REFERENCES */
struct imapd_thread_msg {
	uint32_t seq, uid;
	time_t date;		/* sent date: Date:, else the internal date */
	const char *subject;	/* imapd_base_subject() */
	bool reply;		/* the subject marked a reply or forward */
	const char *msgid;	/* "<...>", or NULL */
	char *const *refs;	/* References (else In-Reply-To), oldest first */
	size_t nrefs;
};
/*
 * imapd_base_subject - the base subject of the Subject value p/n (RFC
 * 5256 2.1), case-folded, in a new string the caller frees; *reply_r
 * tells whether a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" was removed.
 */
char *imapd_base_subject(const char *p, size_t n, bool *reply_r);
/* imapd_thread_* - append the threads of v[0..n) (RFC 5256 thread-list) */
void imapd_thread_orderedsubject(struct str *out, struct imapd_thread_msg *v,
    size_t n, bool uid);
void imapd_thread_references(struct str *out, struct imapd_thread_msg *v,
    size_t n, bool uid);

/* imapd_list.c */
void imapd_cmd_list(struct imapd_session *sess, bool lsub);
void imapd_cmd_status(struct imapd_session *sess);
/* imapd_status_items - append "(MESSAGES n ...)" for the items p/n */
bool imapd_status_write(struct imapd_session *sess, const char *name,
    const char *items, size_t n, struct str *out);

/* imapd_shared.c: list archives as read-only shared mailboxes "Shared/LIST" */
/* imapd_shared_name - a name in the shared namespace ("Shared", "Shared/...") */
bool imapd_shared_name(const char *name);
/*
 * imapd_shared_open - the store (owned by the caller, its mailbox is
 * "INBOX") of the shared mailbox name, brought up to date with the
 * list's archive, if the user is a member of a list that shows it;
 * NULL for every other name (answer NO [NONEXISTENT]: the client must
 * not learn whether the list exists). Failures are logged.
 */
struct store *imapd_shared_open(struct imapd_session *sess, const char *name);
/*
 * imapd_shared_names - "Shared/LIST" for every list the user may read,
 * sorted; the caller frees each and the array (NULL when *n_r is 0)
 */
char **imapd_shared_names(struct imapd_session *sess, size_t *n_r);
/*
 * imapd_shared_copy - COPY the messages seqs[0..n) of the selected shared
 * mailbox into the user's mailbox dest, all or none (one
 * store_append_multi, at most APPENDLIMIT octets in all); fills the
 * COPYUID sets and UIDVALIDITY. 0; -1 a store error on sess->store
 * (store_error, *error_r); -2 too large (NO [LIMIT]); -3 the shared
 * mailbox could not be read (*error_r).
 */
struct store_uids;
int imapd_shared_copy(struct imapd_session *sess, const uint32_t *seqs,
    size_t n, const char *dest, struct store_uids *src_r,
    struct store_uids *dst_r, uint32_t *uidvalidity_r, const char **error_r);

/* imapd_notify.c: NOTIFY (RFC 5465) and the inotify watches of IDLE */
/* imapd_cmd_notify - NOTIFY SET ... / NOTIFY NONE */
void imapd_cmd_notify(struct imapd_session *sess);
/*
 * imapd_notify_watch - add an inotify watch (mask) on every mailbox
 * directory of the user to fd; the number of directories in *n_r
 * (may be NULL). -1 with errno when a watch could not be added
 * (ENOSPC: the kernel's watch limit), the others stay.
 */
int imapd_notify_watch(struct imapd_session *sess, int fd, unsigned mask,
    size_t *n_r);
/* imapd_notify_fd - the inotify descriptor of NOTIFY, -1 when none is set */
int imapd_notify_fd(const struct imapd_session *sess);
/*
 * imapd_notify_check - read NOTIFY's change events and append the
 * notifications to sess->out (not flushed). idle: inside IDLE, where
 * every event of the selected mailbox may go out; otherwise between
 * commands (SELECTED-DELAYED holds expunges back). A failure to keep
 * track appends "* OK [NOTIFICATIONOVERFLOW]" and ends NOTIFY.
 */
void imapd_notify_check(struct imapd_session *sess, bool idle);
/*
 * imapd_notify_wait - between commands: wait for client input, sending
 * notifications as changes happen. true when input is there (or NOTIFY
 * is not set); false after the autologout BYE or an I/O error.
 */
bool imapd_notify_wait(struct imapd_session *sess);
/*
 * imapd_notify_flag_changes - false when NOTIFY has a SELECTED or
 * SELECTED-DELAYED group without FlagChange: imapd_sync() then sends
 * no FETCH for other sessions' flag changes (RFC 5465 5.3)
 */
bool imapd_notify_flag_changes(const struct imapd_session *sess);
/* imapd_notify_selected - a mailbox was selected: its messages are not new */
void imapd_notify_selected(struct imapd_session *sess);
void imapd_notify_free(struct imapd_notify **np);

/* imapd_compress.c: COMPRESS=DEFLATE */
/*
 * imapd_compress_start - from now on s reads and writes raw deflate
 * through the returned layer (owned by the caller; free it only after
 * stream_set_io(s, NULL, NULL)); NULL with *error_r if zlib fails.
 */
struct imapd_zlib *imapd_compress_start(struct stream *s, const char **error_r);
/* imapd_compress_pending - input inflated or received but not read yet */
bool imapd_compress_pending(const struct imapd_zlib *z);
void imapd_compress_free(struct imapd_zlib **zp);

/* imapd_conn.c: shared by imapd and imapd-mail; no TLS or SASL here */
/* imapd_settings_load - fill imapd_settings from conf(); fatal if bad */
void imapd_settings_load(void);
/* imapd_serve_mail - receive one hand-off and serve the session */
void imapd_serve_mail(const struct server_conn *conn);

#endif
