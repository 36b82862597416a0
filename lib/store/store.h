/* SPDX-License-Identifier: MIT */
/*
 * store - the mail store: users, mailboxes, messages, index, sync
 *
 * One struct store is one user's store (root directory + user name); it
 * owns the mailbox list, subscriptions, delivery tokens and quota. A
 * struct store_mailbox is one open mailbox *as one session sees it*: a
 * private view (sequence numbers 1..count mapping to UIDs) that changes
 * only when the caller calls store_mailbox_sync(), so imapd controls when
 * EXISTS/EXPUNGE/FETCH are announced. Several processes (lmtpd, imapd,
 * pop3d, sieved, the CLI) may use one mailbox at once; see DESIGN.md for
 * the on-disk format, the locking protocol and the crash-safety argument.
 *
 * Errors. Every call that can fail returns -1 (or NULL) and sets
 * *error_r to a human-readable reason owned by the struct store, valid
 * until the next call on that store (or on a mailbox opened from it);
 * store_error() gives the class of the last failure, so a caller can pick
 * the protocol reply (LMTP 452 vs 552, IMAP [OVERQUOTA], [NONEXISTENT]...).
 * Nothing here exits the process on bad input or I/O errors; a violated
 * precondition (caller bug, e.g. seq 0) panics. Nothing logs: the caller
 * holding the session's log_ctx logs the reason once.
 *
 * Strings. Mailbox names are UTF-8 with '/' as the hierarchy separator;
 * "INBOX" in any case means the INBOX. Names never become paths (mailbox
 * directories are named by number), and are validated with
 * store_mailbox_name_ok(). Keywords are IMAP atoms of at most
 * STORE_KEYWORD_MAX bytes, at most STORE_KEYWORDS_MAX per mailbox.
 *
 * Cached strings (ENVELOPE, BODYSTRUCTURE, BODY) are opaque bytes given by
 * the caller at append time (computed by lib/mime); the store keeps and
 * returns them byte for byte and never parses them.
 */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct str;
struct store;
struct store_mailbox;

/* System flags (IMAP \Seen ...); bit values are part of the disk format. */
#define STORE_FLAG_SEEN		0x01u
#define STORE_FLAG_ANSWERED	0x02u
#define STORE_FLAG_FLAGGED	0x04u
#define STORE_FLAG_DELETED	0x08u
#define STORE_FLAG_DRAFT	0x10u
#define STORE_FLAGS_ALL		0x1fu

#define STORE_KEYWORDS_MAX	64	/* keywords per mailbox (bits of a uint64_t) */
#define STORE_KEYWORD_MAX	63	/* bytes in a keyword name */
#define STORE_MAILBOX_NAME_MAX	512	/* bytes in a full mailbox name */
#define STORE_TOKEN_MAX		95	/* bytes in a delivery token */

/* Mailbox attributes: RFC 6154 special use, and list state. */
#define STORE_MBOX_DRAFTS	0x0001u	/* \Drafts */
#define STORE_MBOX_SENT		0x0002u	/* \Sent */
#define STORE_MBOX_TRASH	0x0004u	/* \Trash */
#define STORE_MBOX_JUNK		0x0008u	/* \Junk */
#define STORE_MBOX_ARCHIVE	0x0010u	/* \Archive */
#define STORE_MBOX_ALL_MAIL	0x0020u	/* \All */
#define STORE_MBOX_FLAGGED	0x0040u	/* \Flagged */
#define STORE_MBOX_SPECIAL_USE	0x007fu	/* mask of the above */
#define STORE_MBOX_SUBSCRIBED	0x0100u	/* \Subscribed */
#define STORE_MBOX_NONEXISTENT	0x0200u	/* subscribed, but no such mailbox */
#define STORE_MBOX_HASCHILDREN	0x0400u	/* computed by store_mailbox_list */

enum store_error {
	STORE_ERR_NONE = 0,
	STORE_ERR_TEMP,		/* I/O or other temporary failure: try later */
	STORE_ERR_NOTFOUND,	/* no such mailbox / message / user store */
	STORE_ERR_EXISTS,	/* mailbox already exists */
	STORE_ERR_INVALID,	/* bad name, keyword, token or argument */
	STORE_ERR_QUOTA,	/* over quota (permanent for this message) */
	STORE_ERR_LIMIT,	/* too many keywords, name too long ... */
	STORE_ERR_EXPUNGED,	/* the message was expunged by another session */
	STORE_ERR_READONLY,	/* write on a mailbox opened read-only */
	STORE_ERR_CORRUPT,	/* the on-disk data failed validation */
};

/* ---------------------------------------------------------------- store */

/*
 * store_open - the store of user under root_dir (created if missing,
 * mode 0700). user must pass store_user_ok(). Returns an owned handle or
 * NULL with *error_r (static text: there is no store yet to own it).
 * Cheap: opens no mailbox.
 */
struct store *store_open(const char *root_dir, const char *user,
    const char **error_r);
/* store_free - close everything opened from it first; NULL allowed */
void store_free(struct store **storep);
/* store_error - class of the last failure on this store */
enum store_error store_error(const struct store *store);

/*
 * store_set_fsync - false disables every fsync (tests and benchmarks
 * building large fixtures only; a crash may then lose anything).
 */
void store_set_fsync(struct store *store, bool on);

/* store_user_ok - allow-list for user names: [A-Za-z0-9._@+-], 1..128, no leading '.' */
bool store_user_ok(const char *user);
/*
 * store_mailbox_name_ok - valid UTF-8, 1..STORE_MAILBOX_NAME_MAX bytes, no
 * control characters, no '*' or '%', no empty, "." or ".." component, at
 * most 32 levels. On false, *why_r (may be NULL) gets a static reason.
 */
bool store_mailbox_name_ok(const char *name, const char **why_r);

/* ---------------------------------------------------------------- mailbox list */

/*
 * store_mailbox_create - create name (and missing parents as plain
 * mailboxes) with special-use attributes attrs (STORE_MBOX_SPECIAL_USE
 * bits; 0 for none). A new UIDVALIDITY is generated, larger than any
 * this user had. STORE_ERR_EXISTS if it exists. Costs one commit of the
 * mailbox list: the mailbox's files are made at its first open.
 */
int store_mailbox_create(struct store *store, const char *name,
    unsigned attrs, const char **error_r);
/*
 * store_mailbox_delete - delete name and its messages. Children are kept
 * (IMAP DELETE). Deleting INBOX is STORE_ERR_INVALID. Sessions that have
 * it open get STORE_ERR_NOTFOUND from their next sync.
 */
int store_mailbox_delete(struct store *store, const char *name,
    const char **error_r);
/*
 * store_mailbox_rename - rename old to new, with all children (IMAP
 * RENAME); UIDVALIDITY and messages move with it. Renaming INBOX moves its
 * messages into new and leaves an empty INBOX (RFC 3501 6.3.5).
 */
int store_mailbox_rename(struct store *store, const char *oldname,
    const char *newname, const char **error_r);
/* store_mailbox_set_attrs - replace the special-use bits of name */
int store_mailbox_set_attrs(struct store *store, const char *name,
    unsigned attrs, const char **error_r);
/* store_subscribe - (un)subscribe name; a name need not exist (RFC 3501) */
int store_subscribe(struct store *store, const char *name, bool subscribe,
    const char **error_r);
/*
 * store_ensure_defaults - create (if missing) and subscribe INBOX,
 * Drafts, Sent, Trash, Junk and Archive with their special-use
 * attributes. Call on first delivery and on login; cheap when done, and
 * one list commit (two fsyncs) when not: no mailbox files are made until
 * a mailbox is opened (lib/store/DESIGN.md 4).
 */
int store_ensure_defaults(struct store *store, const char **error_r);

struct store_mailbox_info {
	const char *name;	/* UTF-8, '/' separated */
	unsigned attrs;		/* STORE_MBOX_* */
	uint32_t uidvalidity;	/* 0 for STORE_MBOX_NONEXISTENT */
};

/*
 * store_mailbox_list - all mailboxes (and subscribed names that do not
 * exist) sorted by name, INBOX first. *list_r is owned by the caller:
 * free with store_mailbox_list_free(&list, count). Pattern matching is
 * the caller's job.
 */
int store_mailbox_list(struct store *store, struct store_mailbox_info **list_r,
    size_t *count_r, const char **error_r);
void store_mailbox_list_free(struct store_mailbox_info **listp, size_t count);

struct store_status {
	uint32_t messages;	/* live messages */
	uint32_t unseen;	/* without \Seen */
	uint32_t deleted;	/* with \Deleted */
	uint32_t recent;	/* always 0: \Recent is not kept (IMAP4rev2) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t size;		/* sum of RFC822.SIZE */
};

/*
 * store_mailbox_status - counts of name from its index header only
 * (IMAP STATUS, LIST-STATUS): no message is read and no view is built.
 */
int store_mailbox_status(struct store *store, const char *name,
    struct store_status *status_r, const char **error_r);

/* ---------------------------------------------------------------- quota */

struct store_quota {
	uint64_t bytes;		/* used: sum of message sizes */
	uint64_t messages;	/* used: message count */
};

/*
 * store_quota_get - the user's usage, summed from the mailbox index
 * headers (one small read per mailbox; exact after any crash).
 */
int store_quota_get(struct store *store, struct store_quota *usage_r,
    const char **error_r);
/*
 * store_quota_check - would adding bytes/messages stay within the limits
 * (0 = unlimited)? 0 if yes; -1 with STORE_ERR_QUOTA if not, or another
 * error. store_append() does this check itself, under the user lock, when
 * given limits: "charging" is the append itself.
 */
int store_quota_check(struct store *store, uint64_t limit_bytes,
    uint64_t limit_messages, uint64_t add_bytes, uint64_t add_messages,
    const char **error_r);

/* ---------------------------------------------------------------- append */

struct store_append_req {
	const char *mailbox;	/* NULL = "INBOX" */
	/* the message, exactly as BODY[] (CRLF): either data/size or fd */
	const void *data;
	size_t size;
	int fd;			/* >= 0: read the message from fd (from offset 0 to EOF) */
	uint32_t flags;		/* STORE_FLAG_* */
	const char *const *keywords;	/* keyword names, NULL-terminated, or NULL */
	time_t internaldate;	/* 0 = now */
	int tz_minutes;		/* zone of internaldate, minutes east of UTC */
	/*
	 * Delivery token ("QUEUEID/rcpt-index", <= STORE_TOKEN_MAX bytes of
	 * [!-~]) or NULL. If a message with this token was committed for this
	 * user within the token lifetime, nothing is stored and the result
	 * names the existing message (duplicate = true), even if it was
	 * expunged since.
	 */
	const char *token;
	/* opaque cached strings, kept byte for byte (may be NULL/0) */
	const void *envelope;
	size_t envelope_len;
	const void *bodystructure;
	size_t bodystructure_len;
	const void *body;	/* BODY (non-extensible BODYSTRUCTURE) */
	size_t body_len;
	/* quota limits checked under the user lock; 0 = unlimited */
	uint64_t quota_bytes;
	uint64_t quota_messages;
};

struct store_append_result {
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t modseq;
	bool duplicate;		/* token seen before: nothing new was stored */
	char mailbox[STORE_MAILBOX_NAME_MAX + 1];	/* where it is (duplicate: where it went then) */
};

/*
 * store_append - store one message durably. When this returns 0 the
 * message file, its directory entry and its index entry are on disk
 * (fsync'd), the UID is never reused, and the caller may acknowledge
 * (LMTP 250, IMAP APPEND OK with APPENDUID). Keywords not yet known to the
 * mailbox are added (STORE_ERR_LIMIT past STORE_KEYWORDS_MAX). Cost does
 * not depend on the number of messages in the mailbox. STORE_ERR_NOTFOUND
 * if the mailbox does not exist (lmtpd falls back to INBOX).
 */
int store_append(struct store *store, const struct store_append_req *req,
    struct store_append_result *result_r, const char **error_r);

/*
 * store_append_multi - store the n messages reqs[0..n) in one mailbox
 * atomically (IMAP MULTIAPPEND, RFC 3502): when this returns 0 all of
 * them are committed, with consecutive UIDs, results_r[i] for reqs[i];
 * on -1 (or a crash at any point) none of them is in the mailbox.
 * reqs[0] names the mailbox and the quota limits, which cover the
 * messages' total; the other requests' mailbox and limits are ignored.
 * Delivery tokens are allowed only with n == 1 (STORE_ERR_INVALID).
 * store_append() is this with n == 1.
 */
int store_append_multi(struct store *store,
    const struct store_append_req *reqs, size_t n,
    struct store_append_result *results_r, const char **error_r);

/*
 * store_token_lookup - was token committed for this user? 1 and the
 * result filled if so, 0 if not, -1 on error. (store_append checks by
 * itself; this is for lmtpd to skip Sieve on a retried delivery.)
 */
int store_token_lookup(struct store *store, const char *token,
    struct store_append_result *result_r, const char **error_r);

/* ---------------------------------------------------------------- open mailbox */

#define STORE_OPEN_READONLY	0x01u	/* EXAMINE; pop3d may use it too */

/*
 * store_mailbox_open - open name with a view of all its current messages.
 * The handle is owned by the caller and borrows store (close it before
 * store_free). A read-only handle never takes the write lock (except
 * briefly to repair a mailbox left by a crash) and all writes on it fail
 * with STORE_ERR_READONLY.
 */
struct store_mailbox *store_mailbox_open(struct store *store,
    const char *name, unsigned flags, const char **error_r);
void store_mailbox_close(struct store_mailbox **boxp);

/* store_mailbox_name - the name it was opened with (canonical INBOX) */
const char *store_mailbox_name(const struct store_mailbox *box);
/* store_mailbox_status_get - header values as of the view (messages = view count) */
void store_mailbox_status_get(const struct store_mailbox *box,
    struct store_status *status_r);
/* store_mailbox_count - messages in the view (IMAP EXISTS) */
uint32_t store_mailbox_count(const struct store_mailbox *box);

/* keywords: PERMANENTFLAGS / FLAGS lists; index i is bit (1 << i) */
unsigned store_keyword_count(const struct store_mailbox *box);
/* store_keyword_name - name of keyword i (< count); valid while box is open */
const char *store_keyword_name(const struct store_mailbox *box, unsigned i);
/*
 * store_keyword_lookup - the bit index of name (case-insensitive, as IMAP
 * compares flags); with create, add it if missing (needs read-write).
 * 0 with *idx_r, or -1 (STORE_ERR_NOTFOUND without create, LIMIT, INVALID).
 */
int store_keyword_lookup(struct store_mailbox *box, const char *name,
    bool create, unsigned *idx_r, const char **error_r);

struct store_msg {
	uint32_t uid;
	uint32_t flags;		/* STORE_FLAG_* */
	uint64_t keywords;	/* bit i = store_keyword_name(box, i) */
	uint64_t modseq;
	time_t internaldate;
	int tz_minutes;
	uint64_t size;		/* RFC822.SIZE = bytes of the file */
	bool expunged;		/* expunged by another session, not yet synced away */
};

/*
 * store_msg_get - the index data of message seq (1..count) of the view.
 * Reads the mmap'd index only: a FETCH FLAGS of 100,000 messages touches
 * no message file. seq out of range is a caller bug (panic).
 */
void store_msg_get(const struct store_mailbox *box, uint32_t seq,
    struct store_msg *msg_r);
/* store_msg_uid - the UID of seq (cheaper than store_msg_get) */
uint32_t store_msg_uid(const struct store_mailbox *box, uint32_t seq);
/* store_seq_by_uid - the seq of uid in the view, or 0 (binary search) */
uint32_t store_seq_by_uid(const struct store_mailbox *box, uint32_t uid);
/*
 * store_seq_range_by_uid - the seqs [*first_r, *last_r] whose UIDs lie in
 * [uid_lo, uid_hi]; false if none (UID FETCH 100:200).
 */
bool store_seq_range_by_uid(const struct store_mailbox *box, uint32_t uid_lo,
    uint32_t uid_hi, uint32_t *first_r, uint32_t *last_r);

enum store_cache_field {
	STORE_CACHE_ENVELOPE,
	STORE_CACHE_BODYSTRUCTURE,
	STORE_CACHE_BODY,
};

/* store_msg_cached - append the cached string of seq to out (may be empty) */
int store_msg_cached(struct store_mailbox *box, uint32_t seq,
    enum store_cache_field field, struct str *out, const char **error_r);
/*
 * store_msg_open - a read-only fd on the message bytes of seq (BODY[],
 * size bytes from offset 0), owned by the caller (close it). The file
 * never changes while it exists. STORE_ERR_EXPUNGED if another session
 * expunged it already.
 */
int store_msg_open(struct store_mailbox *box, uint32_t seq,
    const char **error_r);
/* store_msg_read - append the whole message of seq to out */
int store_msg_read(struct store_mailbox *box, uint32_t seq, struct str *out,
    const char **error_r);

/* ---------------------------------------------------------------- changes */

/* A set of UIDs: a plain growable array, ascending where documented. */
struct store_uids {
	uint32_t *uids;
	size_t count;
	size_t cap;
};
void store_uids_add(struct store_uids *set, uint32_t uid);
void store_uids_clear(struct store_uids *set);	/* frees the array */

enum store_flags_mode {
	STORE_FLAGS_REPLACE,	/* FLAGS */
	STORE_FLAGS_ADD,	/* +FLAGS */
	STORE_FLAGS_REMOVE,	/* -FLAGS */
};

/*
 * store_update_flags - change the flags of the messages with the given
 * UIDs (any order; UIDs not in the mailbox are ignored). unchangedsince
 * (0 = none) is CONDSTORE's: a message whose modseq is greater is left
 * alone and its UID added to failed_r (may be NULL if unchangedsince is
 * 0). A message whose flags would not change gets no new modseq. All
 * changes of one call share one fsync. The caller's own view learns of
 * the changes by store_mailbox_sync() like everyone else's.
 */
int store_update_flags(struct store_mailbox *box, const uint32_t *uids,
    size_t count, enum store_flags_mode mode, uint32_t flags,
    uint64_t keywords, uint64_t unchangedsince, struct store_uids *failed_r,
    const char **error_r);

/*
 * store_expunge - expunge the messages with the given UIDs (UIDs absent
 * are ignored); with uids NULL, every message with \Deleted (IMAP
 * EXPUNGE, pop3d QUIT). Expunged UIDs are appended to expunged_r (may be
 * NULL). The view is not changed until the next sync.
 */
int store_expunge(struct store_mailbox *box, const uint32_t *uids,
    size_t count, struct store_uids *expunged_r, const char **error_r);

/*
 * store_copy - copy the messages with the given UIDs from box into the
 * mailbox named dest (hard links: no data copy), keeping flags, keywords,
 * internal date and cached strings. Source and new UIDs are appended to
 * src_uids_r / dst_uids_r (either may be NULL), in the same order, for
 * COPYUID. *uidvalidity_r (may be NULL) gets dest's UIDVALIDITY. With
 * move, the sources are then expunged (IMAP MOVE; a crash in between can
 * leave both copies, never none).
 */
int store_copy(struct store_mailbox *box, const uint32_t *uids, size_t count,
    const char *dest, bool move, struct store_uids *src_uids_r,
    struct store_uids *dst_uids_r, uint32_t *uidvalidity_r,
    const char **error_r);

#define STORE_SYNC_NO_EXPUNGE	0x01u	/* keep expunged messages in the view */

struct store_sync_result {
	/*
	 * Expunges, in the order to announce them: expunged.uids[i] is to
	 * be sent as "* N EXPUNGE" with N = expunge_seqs[i] (already adjusted
	 * for the earlier ones), or collected for VANISHED.
	 */
	struct store_uids expunged;
	uint32_t *expunge_seqs;
	uint32_t exists;	/* count after the sync; != before => EXISTS */
	uint32_t new_first_seq;	/* first seq of new messages (0 if none) */
	/* UIDs (ascending) of messages in the view whose flags or modseq changed */
	struct store_uids changed;
	uint64_t highestmodseq;
};
void store_sync_result_free(struct store_sync_result *res);

/*
 * store_mailbox_sync - bring the view up to date with what every process
 * did since the last sync (or open): appends, flag changes, expunges.
 * Reads only the change log written since, not the whole index. res is
 * filled (initialise it to zeros; free with store_sync_result_free).
 * With STORE_SYNC_NO_EXPUNGE, expunged messages stay in the view (with
 * msg.expunged) and are reported by a later sync. Own changes are reported
 * too. STORE_ERR_NOTFOUND if the mailbox was deleted.
 */
int store_mailbox_sync(struct store_mailbox *box, unsigned flags,
    struct store_sync_result *res, const char **error_r);

/*
 * store_expunged_since - UIDs (ascending) expunged with modseq > modseq
 * (QRESYNC VANISHED (EARLIER)). Returns 0, or 1 if the history does not
 * reach back that far (tombstones were dropped by compaction): the caller
 * must then treat every UID it cannot find as vanished.
 */
int store_expunged_since(struct store_mailbox *box, uint64_t modseq,
    struct store_uids *uids_r, const char **error_r);
/* store_changed_since - UIDs in the view with modseq > modseq (CHANGEDSINCE) */
void store_changed_since(const struct store_mailbox *box, uint64_t modseq,
    struct store_uids *uids_r);

/*
 * store_mailbox_compact - rewrite the index and change log without
 * expunged records and old tombstones (also done automatically when
 * enough has been expunged). Sessions with the mailbox open notice the
 * new files at their next sync.
 */
int store_mailbox_compact(struct store_mailbox *box, const char **error_r);

#endif
