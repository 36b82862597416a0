/* SPDX-License-Identifier: MIT */
/*
 * store_private - internals shared by the files of lib/store
 *
 * Not for use outside lib/store. The on-disk structures here are the
 * format described in DESIGN.md; changing one changes the version.
 */
#ifndef POSTERN_STORE_PRIVATE_H
#define POSTERN_STORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macros.h"
#include "store/store.h"

struct str;

/* ---------------------------------------------------------------- disk format */

#define STORE_IDX_MAGIC		0x58444950u	/* "PIDX" */
#define STORE_IDX_VERSION	1u
#define STORE_IDX_HDR_SIZE	8192u
#define STORE_IDX_REC_SIZE	64u
#define STORE_IDX_KW_OFF	256u
#define STORE_IDX_KW_SLOT	64u
#define STORE_IDX_DELETED	0x1u		/* hdr.flags: mailbox deleted */

#define STORE_REC_EXPUNGED	0x80000000u

struct store_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t seq;
	uint32_t hdr_size;
	uint32_t rec_size;
	uint32_t uidvalidity;
	uint64_t log_id;
	uint64_t log_applied;
	uint8_t boot_id[16];
	uint32_t uidnext;
	uint32_t n_records;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t deleted;
	uint32_t keyword_count;
	uint64_t bytes;
	uint64_t tombstone_modseq;
	uint32_t n_expunged;
	uint32_t flags;
};

struct store_rec {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
	int64_t internaldate;
	uint64_t size;
	uint64_t log_off;
	int32_t tz_minutes;
	uint32_t pad;
	uint64_t token_hash;
};

#define STORE_LOG_MAGIC		0x474f4c50u	/* "PLOG" */
#define STORE_LOG_MAX_ENTRY	(64u * 1024 * 1024)

enum store_log_type {
	STORE_LOG_HEADER = 1,
	STORE_LOG_KEYWORD = 2,
	STORE_LOG_APPEND = 3,
	STORE_LOG_FLAGS = 4,
	STORE_LOG_EXPUNGE = 5,
};

/* type bit: last entry of a commit; replay applies whole commits only */
#define STORE_LOG_END		0x100u
#define STORE_LOG_TYPE(t)	((t) & 0xffu)

struct store_log_ent {
	uint32_t magic;
	uint32_t type;
	uint32_t len;
	uint32_t crc;
	uint64_t modseq;
};

struct store_log_header {
	uint64_t log_id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t tombstone_modseq;
};

/* a log holding only its HEADER entry: nothing was ever committed to it */
#define STORE_LOG_HDR_ENTRY_SIZE \
	(sizeof(struct store_log_ent) + sizeof(struct store_log_header))

struct store_log_keyword {
	uint32_t index;
	uint32_t len;
	/* name follows */
};

struct store_log_append {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	int64_t internaldate;
	int32_t tz_minutes;
	uint32_t token_len;
	uint64_t size;
	uint64_t token_hash;
	uint32_t envelope_len;
	uint32_t bodystructure_len;
	uint32_t body_len;
	uint32_t pad;
	/* token, envelope, bodystructure, body follow */
};

struct store_log_flags {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
};

struct store_log_expunge {
	uint32_t uid;
	uint32_t pad;
	uint64_t token_hash;
};

#define STORE_TOKEN_REC_SIZE	128u
#define STORE_TOKEN_COMPACT_AT	4096u
#define STORE_TOKEN_LIFETIME	(7 * 24 * 3600)

struct store_token_rec {
	uint64_t hash;
	uint32_t mbox_id;
	uint32_t uid;
	uint32_t uidvalidity;
	uint32_t pad;
	int64_t time;
	uint8_t len;
	char token[STORE_TOKEN_MAX];
};

#define STORE_TOMBSTONES_KEEP	100000u
#define STORE_COMPACT_MIN	1000u

/* ---------------------------------------------------------------- handles */

struct store {
	char *dir;		/* <root>/<user> */
	char *user;
	bool fsync_on;
	enum store_error err;
	struct str *errbuf;
	int user_lock_fd;
	unsigned user_lock_depth;
};

#define STORE_VIEW_NOREC	UINT32_MAX

struct store_view_ent {
	uint32_t uid;
	uint32_t rec;		/* record index, or STORE_VIEW_NOREC if gone */
};

struct store_mailbox {
	struct store *store;
	char *name;
	uint32_t id;
	char *dir;
	bool readonly;

	int index_fd;
	int log_fd;
	ino_t index_ino;
	ino_t log_ino;
	uint64_t log_id;	/* of log_fd's HEADER entry */
	const unsigned char *map;
	size_t map_size;

	int lock_fd;
	bool locked;
	struct store_hdr whdr;	/* writer's copy while locked */
	uint64_t log_size;	/* writer: end of log while locked */

	/* the session's view */
	bool has_view;
	bool view_resync;	/* files replaced: next sync compares by UID */
	struct store_view_ent *view;	/* ascending UID */
	size_t view_count;
	size_t view_cap;
	uint32_t view_nrec;	/* records looked at */
	uint64_t view_log_off;	/* log read up to here */
	uint64_t view_modseq;
	struct store_hdr vhdr;	/* header as of the last sync */
	struct store_uids pending_expunge;	/* deferred by NO_EXPUNGE */

	char kw[STORE_KEYWORDS_MAX][STORE_IDX_KW_SLOT];
	unsigned kw_count;
};

/* ---------------------------------------------------------------- util (store_util.c) */

uint32_t store_crc32(uint32_t crc, const void *p, size_t n);
uint64_t store_hash64(const void *p, size_t n);
const uint8_t *store_boot_id(void);
void store_killpoint(void);
/* store_killpoint_set - die at the n-th kill point from now (tests; 0 = never) */
void store_killpoint_set(long n);
bool store_killpoints_active(void);
uint64_t store_random64(void);

int store_set_err(struct store *store, enum store_error err,
    const char **error_r, const char *fmt, ...) PRINTF_LIKE(4, 5);
int store_set_syserr(struct store *store, const char **error_r,
    const char *what, const char *path);

int store_pwrite_all(int fd, const void *p, size_t n, off_t off);
int store_pread_all(int fd, void *p, size_t n, off_t off);
int store_write_all(int fd, const void *p, size_t n);
int store_fsync(struct store *store, int fd);
int store_fsync_path(struct store *store, const char *dir);
int store_mkdir(const char *path);
int store_rm_rf(const char *path);
int store_replace_file(struct store *store, const char *path, const void *data,
    size_t len);
int store_lock_fd(int fd, bool wait);

bool store_keyword_ok(const char *name);
bool store_token_ok(const char *token);
bool store_is_inbox(const char *name);

/* ---------------------------------------------------------------- store.c */

int store_user_lock(struct store *store, const char **error_r);
void store_user_unlock(struct store *store);
int store_mbox_lookup(struct store *store, const char *name, uint32_t *id_r,
    char **canon_r, const char **error_r);
char *store_mbox_dir(const struct store *store, uint32_t id);
int store_mbox_materialize(struct store *store, uint32_t id,
    const char **error_r);
int store_token_find(struct store *store, const char *token,
    struct store_append_result *result_r, const char **error_r);
int store_token_record(struct store *store, const char *token,
    uint32_t mbox_id, uint32_t uidvalidity, uint32_t uid,
    const char **error_r);

/* ---------------------------------------------------------------- store_index.c */

int store_box_init_files(struct store *store, const char *dir,
    uint32_t uidvalidity, const char **error_r);
bool store_box_unborn(const char *dir);
struct store_mailbox *store_box_open_id(struct store *store, uint32_t id,
    const char *name, bool readonly, const char **error_r);
void store_box_free(struct store_mailbox **boxp);
int store_box_lock(struct store_mailbox *box, const char **error_r);
int store_box_trylock(struct store_mailbox *box, const char **error_r);
void store_box_unlock(struct store_mailbox *box);
int store_box_commit(struct store_mailbox *box, const void *entries,
    size_t len, const char **error_r);
int store_box_write_header(struct store_mailbox *box, const char **error_r);
void store_box_hdr_snapshot(const struct store_mailbox *box,
    struct store_hdr *hdr_r);
int store_box_remap(struct store_mailbox *box, const char **error_r);
int store_box_reopen(struct store_mailbox *box, const char **error_r);
bool store_box_files_changed(const struct store_mailbox *box);
int store_box_read_rec(const struct store_mailbox *box, uint32_t i,
    struct store_rec *rec_r);
const struct store_rec *store_box_rec(const struct store_mailbox *box,
    uint32_t i);
int64_t store_box_find_uid(const struct store_mailbox *box, uint32_t uid,
    uint32_t n_records);
int store_box_compact(struct store_mailbox *box, const char **error_r);
int store_box_read_entry(struct store_mailbox *box, int fd, uint64_t off,
    struct store_log_ent *ent_r, unsigned char **buf, size_t *buf_size,
    const char **error_r);
void store_box_load_keywords(struct store_mailbox *box);
int store_box_sweep_tmp(struct store_mailbox *box);
size_t store_log_entry_size(size_t payload);
void store_log_entry_fill(void *entry, uint32_t type, uint64_t modseq,
    size_t payload);

/* ---------------------------------------------------------------- store_mailbox.c */

void store_view_build(struct store_mailbox *box);
void store_view_translate(struct store_mailbox *box);

#endif
