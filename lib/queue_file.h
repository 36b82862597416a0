/* SPDX-License-Identifier: MIT */
/*
 * queue_file - the queue file format, its durable writer and its reader
 *
 * This is the one on-disk contract of the queue. Only the injection path
 * (cleanup) writes queue files; qmgr, the delivery agents, smtpd (to
 * answer from what is on disk) and `postern queue` read them; only qmgr
 * and `postern queue` update recipient state or move files.
 *
 * DIRECTORIES: $queue_dir/{maildrop,incoming,active,deferred,hold,corrupt}/
 * hold one file per queue ID, named by the ID (flat for now; paths are only
 * ever built by queue_file_path(), so hashed subdirectories can come later
 * without touching callers). Every ID passes queue_id_ok() before it
 * becomes a path. States (after qmail INTERNALS):
 *
 *	incoming/ID	being written; not yet accepted. A crashed writer
 *			leaves it here, complete or not, and so can a crash
 *			that undid the rename of a commit into active/ (the
 *			message was accepted then): see
 *			queue_file_complete() and queue_file_recover().
 *	active/ID	committed and owned by qmgr for delivery.
 *	deferred/ID	committed, some recipient waits for a retry.
 *	hold/ID		committed, kept until an operator releases it.
 *	corrupt/ID	failed validation; kept for an operator, never read.
 *	maildrop/	reserved for the local submission path.
 *
 * Moves are rename(2) followed by fsync of both directories, except the
 * commit out of incoming/ (below). A file is never in active/, deferred/
 * or hold/ unless it was complete and fsync'd before the rename.
 *
 * COMMIT AND REMOVAL (the directory syncs, and why these are enough):
 *  - queue_file_commit() into active/ fsyncs the file, makes its
 *    incoming/ name durable, and only then renames it to active/ID,
 *    without waiting for that rename: the 2xx may go out. A message is
 *    durable once a complete, fsync'd file is durably named in incoming/
 *    or in any later queue; which of the two names a crash leaves does
 *    not matter, because RECOVERY (below) finishes the commit of a
 *    complete file left in incoming/ (qmgr does so within a minute or
 *    two). The incoming/ name is made durable by an fsync of incoming/,
 *    except on ext4, xfs and btrfs, where the file's own fsync already
 *    did it: there it is one journal commit (or log force) that holds
 *    the creation of the name together with the inode, and a second,
 *    separate sync would cost another cache flush per message for
 *    nothing. So a commit into active/ costs one sync where the file
 *    system is known, as Postfix's cleanup does.
 *  - Into hold/ the rename is synced before 0 (fsync of hold/), because
 *    recovery commits into active/ only and a held message must not
 *    come back as an active one.
 *  - incoming/ is not fsync'd after the rename. On ext4, xfs and btrfs
 *    a rename is one journal transaction, so the old name is durably
 *    gone as soon as the new one is durable (the next journal commit:
 *    any later sync). Elsewhere a crash might bring incoming/ID back as
 *    a second name of the same inode; two rules make that harmless:
 *  - RECOVERY: queue_file_recover() never commits incoming/ID when
 *    another queue holds ID: a second name of the same inode is removed
 *    (and incoming/ fsync'd), a different file is left (EEXIST).
 *  - REMOVAL: before the removal of a message is made durable, incoming/
 *    is fsync'd (queue_file_remove(), queue_removals_sync()), so the old
 *    name cannot outlive the message and bring it back for a second
 *    delivery after it was delivered and removed.
 *  - A removal (unlink) need not be durable before anything else
 *    happens: a crash that undoes it leaves the message with its durable
 *    recipient state, which is then delivered again only where that
 *    state was not final (see queue_file_update_nosync()). Callers may
 *    therefore unlink many files and make the unlinks durable together
 *    with one queue_removals_sync() (qmgr's group commit).
 *
 * FORMAT (version 1). All integers are big-endian. The file starts with
 * the 8-octet magic "\x89PQF\r\n\x1a\n", then records, each a type octet, a
 * u32 length and that many octets (Postfix rec_put/rec_get; every length is
 * checked against a per-type maximum before anything is allocated):
 *
 *	'V' u32 version (first record)
 *	'T' u64 arrival time, microseconds since the epoch
 *	'S' sender, canonical form (address.h); "" is the null sender
 *	'E' ENVID (decoded)	'R' u8 RET	'B' u8 BODY	'U' SMTPUTF8 (empty)
 *	'c' client name  'a' client address  'h' HELO name  'p' protocol
 *	'u' SASL user    'A' attribute "name=value"
 *	'r' recipient (canonical form), then for that recipient optionally
 *	    'o' ORCPT "addr-type;decoded-address", 'n' u8 NOTIFY bits,
 *	    'O' original recipient (before rewriting/aliasing)
 *	'M' u64 content length (the record length is 8), then the content
 *	    itself: the message exactly as it goes on the wire (CRLF line
 *	    ends, not dot-stuffed, any octets incl. NUL for BINARYMIME)
 *	    recipients ('r','o','n','O') may also follow the content
 *	'X' end record: u64 content length, u32 recipient count, u32 CRC-32C
 *	    of the envelope (every octet before 'X' except the 'M' record and
 *	    the content), u32 CRC-32C of the content
 *	'L' recipient status log records, appended after 'X' (below)
 *
 * Text fields hold no NUL. A file without a valid 'X' (truncated, crashed
 * writer) or with an unknown record type, a record too long for its type,
 * fields in the wrong order or a checksum mismatch is invalid: open fails
 * with EBADMSG and the caller moves it to corrupt/ (or, in incoming/,
 * leaves it to recovery).
 *
 * RECIPIENT STATE is updated in place by APPENDING 'L' records after the
 * end record, never by rewriting: each is u32 recipient index, u8 state,
 * u8 flags, u32 attempts, u64 next attempt (s), u64 time of update (s),
 * the reason text, then a u32 CRC-32C of the whole record (type and length
 * included). The reader replays them in order; the last one for a
 * recipient wins; the first record that is torn, fails its CRC or names
 * a recipient, state or flag that does not exist ends the log. Why a log and not fixed slots rewritten with pwrite: the
 * committed message is never written again (a delivery agent can
 * sendfile() it while qmgr updates), the reason text is not cut to fit a
 * slot, many recipients are updated with one write and one fdatasync, and
 * durability does not depend on sector-sized writes being atomic: a crash
 * during an append leaves a torn last record whose CRC fails, the reader
 * ignores it (and the updater truncates it away before appending again),
 * so the recipient keeps its previous, durable state. An update that
 * returned 0 is on disk. A delivery whose DELIVERED update was torn is
 * retried, and the delivery token makes the receiver acknowledge it
 * without a second copy (ARCHITECTURE.md, exactly once).
 *
 * Final states (DELIVERED, BOUNCED) are sticky: the library refuses to
 * move a recipient out of them (a delivered recipient is never retried),
 * only flags can be added.
 *
 * ERRORS: calls return 0 / -1 / NULL with errno and a static-text
 * *error_r for the caller to log; none exits except on memory exhaustion.
 * errno EBADMSG means the file is invalid, EINVAL a bad ID or argument,
 * EWOULDBLOCK that another process holds the update lock.
 */
#ifndef POSTERN_QUEUE_FILE_H
#define POSTERN_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/types.h>

#include "queue_id.h"
#include "smtp_proto.h"
#include "str.h"

#define QUEUE_FILE_VERSION	1
#define QUEUE_FILE_RCPT_MAX	100000	/* recipients per file */
#define QUEUE_FILE_TEXT_MAX	4096	/* any envelope text field */
#define QUEUE_FILE_REASON_MAX	4096	/* status reason text */
#define QUEUE_FILE_ATTR_MAX	1000	/* attributes per file */

enum queue_name {
	QUEUE_MAILDROP,
	QUEUE_INCOMING,
	QUEUE_ACTIVE,
	QUEUE_DEFERRED,
	QUEUE_HOLD,
	QUEUE_CORRUPT,
	QUEUE_COUNT
};

/* queue_name_str - "active" etc.; queue_name_parse - the reverse */
const char *queue_name_str(enum queue_name q);
bool queue_name_parse(const char *s, enum queue_name *q_r);

/*
 * queue_file_path - append "$queue_dir/<queue>/<id>" to out (cleared
 * first). -1 with EINVAL if !queue_id_ok(id) or q is out of range.
 */
int queue_file_path(const char *queue_dir, enum queue_name q, const char *id,
    struct str *out);

/* queue_dirs_create - create $queue_dir and all queue subdirectories */
int queue_dirs_create(const char *queue_dir, mode_t mode);

/*
 * queue_scan - call cb(id, ctx) for each well-formed ID in queue q (other
 * names are skipped), in no particular order. A non-zero return from cb
 * stops the scan and is returned; -1 on a directory error.
 */
int queue_scan(const char *queue_dir, enum queue_name q,
    int (*cb)(const char *id, void *ctx), void *ctx);

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,	/* not yet tried */
	QUEUE_RCPT_DEFERRED,	/* temporary failure; retry at next_attempt */
	QUEUE_RCPT_DELIVERED,	/* final: accepted by the next hop */
	QUEUE_RCPT_BOUNCED,	/* final: permanent failure */
	QUEUE_RCPT_STATE_COUNT
};
/* Flags in queue_rcpt.flags */
#define QUEUE_RCPT_F_DSN_SENT	0x01	/* DSN/bounce for the final state is queued */
#define QUEUE_RCPT_F_ALL	0x01

/* queue_rcpt_state_str - "pending", "deferred", "delivered", "bounced" */
const char *queue_rcpt_state_str(enum queue_rcpt_state s);

/*
 * A recipient. For the writer only the first five fields are used (the
 * strings are borrowed for the call). From the reader all strings are
 * owned by the queue_file and valid until queue_file_close(); optional
 * ones are NULL when absent.
 */
struct queue_rcpt {
	const char *address;	/* canonical form */
	const char *orcpt_type;	/* ORCPT addr-type ("rfc822") or NULL */
	const char *orcpt;	/* ORCPT decoded address or NULL */
	unsigned notify;	/* SMTP_NOTIFY_* or 0 */
	const char *original;	/* original recipient or NULL */
	/* state, from the status log */
	enum queue_rcpt_state state;
	unsigned flags;		/* QUEUE_RCPT_F_* */
	uint32_t attempts;
	time_t next_attempt;	/* 0 = now */
	time_t updated;		/* time of the last update, 0 = never */
	const char *reason;	/* last reason text, "" if none */
};

struct queue_attr {
	const char *name;	/* [A-Za-z0-9_.-]+ */
	const char *value;	/* any text without NUL */
};

/*
 * The envelope. For the writer: filled in by the caller, strings borrowed
 * for the call, NULL for absent optional fields. From the reader: owned by
 * the queue_file, valid until queue_file_close().
 */
struct queue_envelope {
	struct timeval arrival;
	const char *sender;	/* canonical form; "" = null sender (required) */
	const char *envid;	/* or NULL */
	enum smtp_ret ret;
	enum smtp_body body;
	bool smtputf8;
	const char *client_name;	/* or NULL */
	const char *client_addr;	/* or NULL */
	const char *helo;		/* or NULL */
	const char *protocol;		/* "ESMTPS", "LMTP", "local" ... or NULL */
	const char *auth_user;		/* or NULL */
	const struct queue_attr *attrs;
	size_t nattrs;
};

/* ------------------------------------------------------------ writer */

struct queue_file_writer;

/*
 * queue_file_create - make a new queue ID and create incoming/ID with
 * O_EXCL (mode 0600). The ID is written to id_r. NULL on error. The writer
 * holds an exclusive flock on the file until commit or abort, so that
 * queue_file_recover() can tell a live writer from a dead one.
 */
struct queue_file_writer *queue_file_create(const char *queue_dir,
    char id_r[QUEUE_ID_SIZE], const char **error_r);

/* queue_file_writer_id - the ID (valid until the writer is freed) */
const char *queue_file_writer_id(const struct queue_file_writer *w);

/*
 * queue_file_write_envelope - write the envelope; exactly once, first.
 * Text fields are checked (no NUL, length <= QUEUE_FILE_TEXT_MAX, attribute
 * names); the sender must be in canonical form (address.h; accepted by
 * address_parse_mailbox() with ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NULL |
 * ADDRESS_ALLOW_NO_DOMAIN). -1 EINVAL on a bad field. Any failure of a
 * writer call except a refused recipient is sticky: later calls fail and
 * commit removes the file.
 */
int queue_file_write_envelope(struct queue_file_writer *w,
    const struct queue_envelope *env, const char **error_r);

/*
 * queue_file_add_rcpt - add a recipient (after the envelope; before or
 * after the content). Only address (canonical form, as for the sender but
 * not null), orcpt_type, orcpt, notify and original are used. At most
 * QUEUE_FILE_RCPT_MAX; -1 E2BIG past that, -1 EINVAL for a bad field;
 * either refusal writes nothing and the writer stays usable.
 */
int queue_file_add_rcpt(struct queue_file_writer *w,
    const struct queue_rcpt *rcpt, const char **error_r);

/*
 * queue_file_write_content - append message octets (after the envelope).
 * Streamed through a fixed buffer: memory does not grow with the message.
 */
int queue_file_write_content(struct queue_file_writer *w, const void *data,
    size_t len, const char **error_r);

/* queue_file_content_size - content octets written so far */
uint64_t queue_file_content_size(const struct queue_file_writer *w);

/*
 * queue_file_commit - write the end record, fsync the file, make its
 * incoming/ name durable (see COMMIT AND REMOVAL above), rename incoming/ID
 * to target/ID (QUEUE_ACTIVE or QUEUE_HOLD); for QUEUE_HOLD fsync hold/
 * too. Frees *wp and sets it to NULL in every case.
 *
 * Returns 0 only when the message is durably queued: ONLY THEN may the
 * caller answer 2xx. It is then in target/ (for QUEUE_ACTIVE a crash may
 * put it back into incoming/, complete, for recovery to commit again).
 * On -1 before the rename the file is removed; if only the fsync of
 * hold/ failed, the file is already in hold/ (a later
 * queue_file_locate() tells). At least one recipient is required (-1
 * EINVAL otherwise, file removed).
 */
int queue_file_commit(struct queue_file_writer **wp, enum queue_name target,
    const char **error_r);

/* queue_file_abort - remove incoming/ID and free *wp (NULL allowed) */
void queue_file_abort(struct queue_file_writer **wp);

/*
 * For tests only: when set, called with the step number just before each
 * step of queue_file_commit() (1 flush, 2 end record, 3 fsync the file
 * and, where needed, incoming/, 4 rename, 5 fsync hold/ (no I/O for
 * active/), 6 where the fsync of incoming/ after the rename used to be:
 * no I/O now) and with 7 after the last.
 * Crash simulations _exit() from it in a child. NULL in production.
 */
extern void (*queue_file_commit_hook)(int step);

/* ------------------------------------------------------------ reader */

struct queue_file;

#define QUEUE_FILE_UPDATE	0x01	/* O_RDWR + exclusive lock: updates, moves */
#define QUEUE_FILE_VERIFY	0x02	/* also check the content CRC (reads it all) */

/*
 * queue_file_open - open queue q's file ID and read and validate its
 * envelope, recipients and status log. With QUEUE_FILE_UPDATE, takes a
 * non-blocking exclusive flock (EWOULDBLOCK if held) for the life of the
 * handle. NULL on error with errno: EINVAL bad ID, ENOENT no such file,
 * EBADMSG invalid file (move it to corrupt/), EWOULDBLOCK (another
 * updater, or a writer finishing its commit: the writer's lock lasts
 * until just after the rename; try again shortly), or an I/O errno.
 */
struct queue_file *queue_file_open(const char *queue_dir, enum queue_name q,
    const char *id, unsigned flags, const char **error_r);

/* queue_file_close - close and free (NULL allowed), releasing the lock */
void queue_file_close(struct queue_file **qfp);

const char *queue_file_id(const struct queue_file *qf);
enum queue_name queue_file_queue(const struct queue_file *qf);
const struct queue_envelope *queue_file_envelope(const struct queue_file *qf);
size_t queue_file_rcpt_count(const struct queue_file *qf);
/* queue_file_rcpt - recipient i (< count); the index is stable forever */
const struct queue_rcpt *queue_file_rcpt(const struct queue_file *qf, size_t i);

/*
 * The content: queue_file_fd() (owned by qf; use pread/sendfile with an
 * explicit offset, never the file position), from content_offset for
 * content_length octets. queue_file_read_content - pread up to len octets
 * at offset off within the content; returns octets read, 0 at its end, -1.
 */
int queue_file_fd(const struct queue_file *qf);
uint64_t queue_file_content_offset(const struct queue_file *qf);
uint64_t queue_file_content_length(const struct queue_file *qf);
ssize_t queue_file_read_content(const struct queue_file *qf, void *buf,
    size_t len, uint64_t off);

/* queue_file_verify - check the content CRC now (-1 EBADMSG on mismatch) */
int queue_file_verify(struct queue_file *qf, const char **error_r);

/*
 * queue_file_token - append the delivery token "QUEUEID/index" of
 * recipient index to out (cleared first). queue_file_token_parse - split
 * a token; false if malformed.
 */
int queue_file_token(const char *id, size_t index, struct str *out);
bool queue_file_token_parse(const char *p, size_t len,
    char id_r[QUEUE_ID_SIZE], size_t *index_r);

struct queue_rcpt_update {
	size_t index;			/* recipient */
	enum queue_rcpt_state state;	/* new state */
	unsigned flags;			/* flags to ADD (QUEUE_RCPT_F_*) */
	bool attempted;			/* count one more delivery attempt */
	time_t next_attempt;		/* for DEFERRED; else 0 */
	const char *reason;		/* reply text etc., or NULL; borrowed;
					 * cut at QUEUE_FILE_REASON_MAX */
};

/*
 * queue_file_update - durably record n recipient updates: one append of n
 * status records and one fdatasync. Needs QUEUE_FILE_UPDATE. Returns 0
 * when all are on disk (the in-memory recipients then show them), -1 with
 * nothing applied in memory. -1 EINVAL for a bad index, state or flags, or
 * an attempt to leave a final state (DELIVERED/BOUNCED may only gain flags).
 */
int queue_file_update(struct queue_file *qf,
    const struct queue_rcpt_update *updates, size_t n, const char **error_r);

/*
 * queue_file_update_nosync - as queue_file_update() but without the
 * fdatasync: the records are written (the in-memory recipients and any
 * reader see them) but a crash may undo them, and each recipient then
 * has its previous durable state again. Only for updates after which the
 * file is removed at once: a DELIVERED update lost this way means one
 * more hand-off with the same delivery token, which is exactly what a
 * crash between the next hop's reply and a synced update does anyway
 * (the receiver acknowledges it without a second copy; a remote SMTP
 * server has no tokens and has the same window either way). A later
 * queue_file_update(), queue_file_sync() or queue_file_move() (which
 * syncs first) makes these records durable; queue_file_unlink() /
 * queue_file_remove() make them moot.
 */
int queue_file_update_nosync(struct queue_file *qf,
    const struct queue_rcpt_update *updates, size_t n, const char **error_r);

/* queue_file_sync - fdatasync records from queue_file_update_nosync() */
int queue_file_sync(struct queue_file *qf, const char **error_r);

/*
 * queue_file_move - make unsynced status records durable, rename the file
 * to queue to and fsync both directories
 * (needs QUEUE_FILE_UPDATE). The handle follows the file.
 * queue_file_remove - unlink it and make that durable with
 * queue_removals_sync(); the handle stays usable for reading until
 * closed.
 */
int queue_file_move(struct queue_file *qf, enum queue_name to,
    const char **error_r);
int queue_file_remove(struct queue_file *qf, const char **error_r);

/*
 * queue_file_unlink - unlink the file without a directory sync: the
 * removal is durable only after a later queue_removals_sync() of its
 * queue (a crash before that brings the file back with its durable
 * recipient state: see COMMIT AND REMOVAL). For group commit: unlink
 * many, sync once. The handle stays usable for reading until closed.
 */
int queue_file_unlink(struct queue_file *qf, const char **error_r);

/*
 * queue_removals_sync - make earlier unlinks from queue q durable: fsync
 * incoming/ (unless q is incoming), then q/ (see COMMIT AND REMOVAL:
 * incoming/ must be synced first). -1 with errno if either fsync fails.
 */
int queue_removals_sync(const char *queue_dir, enum queue_name q,
    const char **error_r);

/* ----------------------------------------------- recovery and by name */

/*
 * queue_file_rename - move ID from queue from to queue to by name (e.g.
 * to corrupt/ after an open failed with EBADMSG), fsyncing both
 * directories.
 */
int queue_file_rename(const char *queue_dir, enum queue_name from,
    enum queue_name to, const char *id, const char **error_r);

/*
 * queue_file_complete - does queue q hold a complete, valid file ID (end
 * record present, envelope and content checksums right)? 1 yes, 0 no (the
 * file is incomplete or invalid; *error_r says why), -1 on errors such as
 * ENOENT. It only reads; a writer may still be working on an incomplete
 * file.
 */
int queue_file_complete(const char *queue_dir, enum queue_name q,
    const char *id, const char **error_r);

/*
 * queue_file_locate - which queue holds ID (active, deferred, hold,
 * incoming, corrupt, maildrop are tried)? 0 and *q_r, or -1 with ENOENT.
 */
int queue_file_locate(const char *queue_dir, const char *id,
    enum queue_name *q_r);

/*
 * queue_file_recover - for a file left in incoming/ by a writer that is
 * gone (its lock is free): if another queue (active, deferred, hold,
 * corrupt) holds ID under the same inode, incoming/ID is a stale name
 * from a commit whose incoming/ removal a crash undid: remove it, fsync
 * incoming/ and return 1 (another file under the ID: -1 EEXIST, both
 * left). Otherwise, if it is complete, fsync it and finish its commit
 * (rename to target, fsync directories) and return 1; if not, return 0
 * and leave it
 * (the caller removes it or moves it to corrupt/). -1 on errors, with
 * EWOULDBLOCK while the writer still holds its lock (it is alive: wait
 * for it), ENOENT when there is no incoming/ID (look with
 * queue_file_locate()). This is how smtpd answers from what is on disk
 * rather than from whether the writer lived: after losing its cleanup,
 * locate the ID; in active/ or hold/ -> 250; in incoming/ -> recover,
 * 1 -> 250, 0 -> 4xx.
 */
int queue_file_recover(const char *queue_dir, const char *id,
    enum queue_name target, const char **error_r);

/* ------------------------------------------------------------ humans */

#define QUEUE_FILE_DUMP_CONTENT	0x01	/* print the message too */
#define QUEUE_FILE_DUMP_LOG	0x02	/* print every status record, not just the result */

/*
 * queue_file_dump - print qf for `postern queue show`: envelope,
 * recipients with state, then (with QUEUE_FILE_DUMP_CONTENT) the message
 * with unprintable octets escaped. -1 on a write or read error.
 */
int queue_file_dump(struct queue_file *qf, FILE *fp, unsigned flags);

#endif
