/* SPDX-License-Identifier: MIT */
/*
 * store_index - a mailbox's change log and index: open, lock, commit,
 * recovery, rebuild, compaction
 *
 * DESCRIPTION
 *	The change log ("log") is the truth; the index ("index") is a
 *	cache of it that readers mmap. A commit appends entries to the log,
 *	fdatasyncs it, then applies the same entries to the index (records
 *	by pwrite, then the header under its seqlock). Recovery, done by
 *	whoever next takes the mailbox lock, applies the same way whatever
 *	the log holds beyond header.log_applied, cutting the log at the
 *	first entry that fails validation; a rebuild applies the whole log
 *	to a fresh index. So a commit, a recovery and a rebuild run one
 *	function (apply_entry) over the same bytes. DESIGN.md has the
 *	protocol and the crash argument.
 *
 *	Everything returns -1 with the store's error set; nothing exits.
 *	A log entry that fails validation in the committed part of the log
 *	(below log_applied) is STORE_ERR_CORRUPT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "store/store_private.h"

_Static_assert(sizeof(struct store_hdr) <= STORE_IDX_KW_OFF, "header size");
_Static_assert(sizeof(struct store_rec) == STORE_IDX_REC_SIZE, "record size");
_Static_assert(sizeof(struct store_log_ent) == 24, "log entry header size");
_Static_assert(sizeof(struct store_log_append) == 64, "append entry size");
_Static_assert(sizeof(struct store_token_rec) == STORE_TOKEN_REC_SIZE, "token size");
_Static_assert(STORE_IDX_KW_OFF + STORE_KEYWORDS_MAX * STORE_IDX_KW_SLOT <=
    STORE_IDX_HDR_SIZE, "keyword slots");

#define READ_BAD	(-2)	/* entry invalid or short: not an I/O error */

size_t
store_log_entry_size(size_t payload)
{
	return (sizeof(struct store_log_ent) + payload + 7) & ~(size_t)7;
}

/* store_log_entry_fill - header and CRC of an entry whose payload is written */
void
store_log_entry_fill(void *entry, uint32_t type, uint64_t modseq,
    size_t payload)
{
	struct store_log_ent ent;
	size_t len = store_log_entry_size(payload);

	memset((char *)entry + sizeof(ent) + payload, 0,
	    len - sizeof(ent) - payload);
	ent.magic = STORE_LOG_MAGIC;
	ent.type = type;
	ent.len = (uint32_t)len;
	ent.crc = 0;
	ent.modseq = modseq;
	memcpy(entry, &ent, sizeof(ent));
	ent.crc = store_crc32(0, entry, len);
	memcpy(entry, &ent, sizeof(ent));
}

/*
 * read_entry - read and validate the entry at off into *buf (grown as
 * needed). 0, READ_BAD (short, bad magic/len/CRC), or -1 (I/O error).
 */
static int
read_entry(int fd, uint64_t off, struct store_log_ent *ent_r,
    unsigned char **buf, size_t *buf_size)
{
	struct store_log_ent ent;
	uint32_t crc;
	ssize_t r;

	r = pread(fd, &ent, sizeof(ent), (off_t)off);
	if (r < 0)
		return -1;
	if ((size_t)r < sizeof(ent) || ent.magic != STORE_LOG_MAGIC ||
	    ent.len < sizeof(ent) || ent.len % 8 != 0 ||
	    ent.len > STORE_LOG_MAX_ENTRY)
		return READ_BAD;
	if (*buf_size < ent.len) {
		*buf_size = ent.len < 4096 ? 4096 : ent.len;
		*buf = xrealloc(*buf, *buf_size);
	}
	r = pread(fd, *buf, ent.len, (off_t)off);
	if (r < 0)
		return -1;
	if ((size_t)r < ent.len)
		return READ_BAD;
	crc = ent.crc;
	ent.crc = 0;
	memcpy(*buf, &ent, sizeof(ent));
	if (store_crc32(0, *buf, ent.len) != crc)
		return READ_BAD;
	ent.crc = crc;
	memcpy(*buf, &ent, sizeof(ent));
	*ent_r = ent;
	return 0;
}

/* store_box_read_entry - read_entry for the committed part of a log */
int
store_box_read_entry(struct store_mailbox *box, int fd, uint64_t off,
    struct store_log_ent *ent_r, unsigned char **buf, size_t *buf_size,
    const char **error_r)
{
	int r = read_entry(fd, off, ent_r, buf, buf_size);

	if (r == -1)
		return store_set_syserr(box->store, error_r, "read log in",
		    box->dir);
	if (r == READ_BAD)
		return store_set_err(box->store, STORE_ERR_CORRUPT, error_r,
		    "%s/log: bad entry at offset %llu", box->dir,
		    (unsigned long long)off);
	return 0;
}

/* ---------------------------------------------------------------- index access */

int
store_box_remap(struct store_mailbox *box, const char **error_r)
{
	struct stat st;
	void *m;

	if (fstat(box->index_fd, &st) < 0)
		return store_set_syserr(box->store, error_r, "stat index in",
		    box->dir);
	if ((size_t)st.st_size <= box->map_size && box->map != NULL)
		return 0;
	if ((size_t)st.st_size < STORE_IDX_HDR_SIZE)
		return store_set_err(box->store, STORE_ERR_CORRUPT, error_r,
		    "%s/index: too short", box->dir);
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
	    box->index_fd, 0);
	if (m == MAP_FAILED)
		return store_set_syserr(box->store, error_r, "mmap index in",
		    box->dir);
	if (box->map != NULL)
		munmap((void *)(uintptr_t)box->map, box->map_size);	/* we mapped it; const for readers */
	box->map = m;
	box->map_size = (size_t)st.st_size;
	return 0;
}

/* store_box_hdr_read - a consistent copy of the header (seqlock read) */
static void
store_box_hdr_read(const struct store_mailbox *box, struct store_hdr *hdr_r)
{
	const uint32_t *seqp = (const uint32_t *)(const void *)(box->map + 8);

	for (unsigned tries = 0;; tries++) {
		uint32_t s1 = __atomic_load_n(seqp, __ATOMIC_ACQUIRE), s2;

		if ((s1 & 1) == 0) {
			memcpy(hdr_r, box->map, sizeof(*hdr_r));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			s2 = __atomic_load_n(seqp, __ATOMIC_ACQUIRE);
			if (s1 == s2)
				return;
		}
		/* a writer is mid-update (or died there: then the lock holder repairs) */
		if (tries > 100000) {
			memcpy(hdr_r, box->map, sizeof(*hdr_r));
			return;
		}
		if (tries > 100)
			usleep(10);
	}
}

/*
 * store_box_hdr_snapshot - a consistent copy of the header whose records
 * are all mapped. The header lives in the shared mapping, so another
 * process's append can raise n_records past what this process mapped:
 * remap then (the map is this handle's own, as in store_box_remap), and
 * if the file is not that long yet, report only the mapped records.
 */
void
store_box_hdr_snapshot(const struct store_mailbox *box, struct store_hdr *hdr_r)
{
	struct store_mailbox *own = (struct store_mailbox *)(uintptr_t)box;
	const char *err;
	size_t mapped;

	store_box_hdr_read(box, hdr_r);
	for (unsigned tries = 0; tries < 3; tries++) {
		if (STORE_IDX_HDR_SIZE + (size_t)hdr_r->n_records *
		    STORE_IDX_REC_SIZE <= box->map_size)
			return;
		if (store_box_remap(own, &err) < 0)
			break;
		store_box_hdr_read(box, hdr_r);
	}
	mapped = (box->map_size - STORE_IDX_HDR_SIZE) / STORE_IDX_REC_SIZE;
	if (hdr_r->n_records > mapped)
		hdr_r->n_records = (uint32_t)mapped;
}

const struct store_rec *
store_box_rec(const struct store_mailbox *box, uint32_t i)
{
	size_t off = STORE_IDX_HDR_SIZE + (size_t)i * STORE_IDX_REC_SIZE;

	ASSERT(off + STORE_IDX_REC_SIZE <= box->map_size);
	return (const struct store_rec *)(const void *)(box->map + off);
}

/* store_box_read_rec - record i from the map, or by pread beyond it */
int
store_box_read_rec(const struct store_mailbox *box, uint32_t i,
    struct store_rec *rec_r)
{
	size_t off = STORE_IDX_HDR_SIZE + (size_t)i * STORE_IDX_REC_SIZE;

	if (box->map != NULL && off + STORE_IDX_REC_SIZE <= box->map_size) {
		memcpy(rec_r, box->map + off, sizeof(*rec_r));
		return 0;
	}
	return store_pread_all(box->index_fd, rec_r, sizeof(*rec_r), (off_t)off);
}

/* store_box_find_uid - index of the record with uid among the first n, or -1 */
int64_t
store_box_find_uid(const struct store_mailbox *box, uint32_t uid, uint32_t n)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct store_rec r;

		if (store_box_read_rec(box, mid, &r) < 0)
			return -1;
		if (r.uid == uid)
			return mid;
		if (r.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void
store_box_load_keywords(struct store_mailbox *box)
{
	struct store_hdr h;

	store_box_hdr_snapshot(box, &h);
	box->kw_count = h.keyword_count > STORE_KEYWORDS_MAX ?
	    STORE_KEYWORDS_MAX : h.keyword_count;
	for (unsigned i = 0; i < box->kw_count; i++) {
		memcpy(box->kw[i], box->map + STORE_IDX_KW_OFF +
		    i * STORE_IDX_KW_SLOT, STORE_IDX_KW_SLOT);
		box->kw[i][STORE_IDX_KW_SLOT - 1] = '\0';
	}
}

/* ---------------------------------------------------------------- writing the index */

/* store_box_write_header - publish whdr under the seqlock (writer) */
int
store_box_write_header(struct store_mailbox *box, const char **error_r)
{
	uint32_t seq = box->whdr.seq | 1;

	memcpy(box->whdr.boot_id, store_boot_id(), 16);
	box->whdr.seq = seq;
	if (store_pwrite_all(box->index_fd, &seq, 4, 8) < 0 ||
	    store_pwrite_all(box->index_fd, &box->whdr, sizeof(box->whdr), 0) < 0)
		goto fail;
	seq++;
	box->whdr.seq = seq;
	if (store_pwrite_all(box->index_fd, &seq, 4, 8) < 0)
		goto fail;
	store_killpoint();
	return 0;
fail:
	return store_set_syserr(box->store, error_r, "write index in", box->dir);
}

static int
write_rec(struct store_mailbox *box, uint32_t i, const struct store_rec *rec)
{
	return store_pwrite_all(box->index_fd, rec, sizeof(*rec),
	    (off_t)(STORE_IDX_HDR_SIZE + (size_t)i * STORE_IDX_REC_SIZE));
}

static void
count_flags(struct store_hdr *h, uint32_t flags, int dir)
{
	if ((flags & STORE_FLAG_SEEN) == 0)
		h->unseen += (uint32_t)dir;
	if (flags & STORE_FLAG_DELETED)
		h->deleted += (uint32_t)dir;
}

/*
 * apply_entry - reflect one valid log entry (at off) in whdr and the
 * records. -1 only on I/O error or an entry that contradicts the index.
 */
static int
apply_entry(struct store_mailbox *box, const unsigned char *e,
    uint64_t off, const char **error_r)
{
	struct store_log_ent ent;
	const unsigned char *p = e + sizeof(ent);
	struct store_hdr *h = &box->whdr;
	struct store_rec rec;
	int64_t i;

	memcpy(&ent, e, sizeof(ent));
	if (ent.modseq > h->highestmodseq)
		h->highestmodseq = ent.modseq;
	switch (STORE_LOG_TYPE(ent.type)) {
	case STORE_LOG_HEADER: {
		struct store_log_header lh;

		if (ent.len < sizeof(ent) + sizeof(lh))
			goto bad;
		memcpy(&lh, p, sizeof(lh));
		h->log_id = lh.log_id;
		h->uidvalidity = lh.uidvalidity;
		if (lh.uidnext > h->uidnext)
			h->uidnext = lh.uidnext;
		if (lh.highestmodseq > h->highestmodseq)
			h->highestmodseq = lh.highestmodseq;
		h->tombstone_modseq = lh.tombstone_modseq;
		return 0;
	}
	case STORE_LOG_KEYWORD: {
		struct store_log_keyword k;
		char slot[STORE_IDX_KW_SLOT];

		if (ent.len < sizeof(ent) + sizeof(k))
			goto bad;
		memcpy(&k, p, sizeof(k));
		if (k.index >= STORE_KEYWORDS_MAX || k.len == 0 ||
		    k.len > STORE_KEYWORD_MAX ||
		    ent.len < sizeof(ent) + sizeof(k) + k.len)
			goto bad;
		memset(slot, 0, sizeof(slot));
		memcpy(slot, p + sizeof(k), k.len);
		if (store_pwrite_all(box->index_fd, slot, sizeof(slot),
		    STORE_IDX_KW_OFF + k.index * STORE_IDX_KW_SLOT) < 0)
			goto ioerr;
		if (k.index + 1 > h->keyword_count)
			h->keyword_count = k.index + 1;
		return 0;
	}
	case STORE_LOG_APPEND: {
		struct store_log_append a;

		if (ent.len < sizeof(ent) + sizeof(a))
			goto bad;
		memcpy(&a, p, sizeof(a));
		/* UIDs only grow: records are in ascending UID order */
		if (a.uid == 0)
			goto bad;
		if (h->n_records > 0) {
			if (store_box_read_rec(box, h->n_records - 1, &rec) < 0)
				goto ioerr;
			if (a.uid <= rec.uid)
				goto bad;
		}
		memset(&rec, 0, sizeof(rec));
		rec.uid = a.uid;
		rec.flags = a.flags & STORE_FLAGS_ALL;
		rec.keywords = a.keywords;
		rec.modseq = ent.modseq;
		rec.internaldate = a.internaldate;
		rec.size = a.size;
		rec.log_off = off;
		rec.tz_minutes = a.tz_minutes;
		rec.token_hash = a.token_hash;
		if (write_rec(box, h->n_records, &rec) < 0)
			goto ioerr;
		store_killpoint();
		h->n_records++;
		if (a.uid >= h->uidnext)
			h->uidnext = a.uid + 1;
		h->messages++;
		h->bytes += a.size;
		count_flags(h, rec.flags, 1);
		return 0;
	}
	case STORE_LOG_FLAGS: {
		struct store_log_flags f;

		if (ent.len < sizeof(ent) + sizeof(f))
			goto bad;
		memcpy(&f, p, sizeof(f));
		i = store_box_find_uid(box, f.uid, h->n_records);
		if (i < 0 || store_box_read_rec(box, (uint32_t)i, &rec) < 0 ||
		    (rec.flags & STORE_REC_EXPUNGED))
			return 0;
		count_flags(h, rec.flags, -1);
		rec.flags = f.flags & STORE_FLAGS_ALL;
		rec.keywords = f.keywords;
		rec.modseq = ent.modseq;
		count_flags(h, rec.flags, 1);
		if (write_rec(box, (uint32_t)i, &rec) < 0)
			goto ioerr;
		return 0;
	}
	case STORE_LOG_EXPUNGE: {
		struct store_log_expunge x;

		if (ent.len < sizeof(ent) + sizeof(x))
			goto bad;
		memcpy(&x, p, sizeof(x));
		i = store_box_find_uid(box, x.uid, h->n_records);
		if (i < 0 || store_box_read_rec(box, (uint32_t)i, &rec) < 0 ||
		    (rec.flags & STORE_REC_EXPUNGED))
			return 0;
		count_flags(h, rec.flags, -1);
		h->messages--;
		h->bytes -= rec.size;
		h->n_expunged++;
		rec.flags |= STORE_REC_EXPUNGED;
		rec.modseq = ent.modseq;
		if (write_rec(box, (uint32_t)i, &rec) < 0)
			goto ioerr;
		return 0;
	}
	default:
		goto bad;
	}
bad:
	return store_set_err(box->store, STORE_ERR_CORRUPT, error_r,
	    "%s/log: entry at offset %llu contradicts the index", box->dir,
	    (unsigned long long)off);
ioerr:
	return store_set_syserr(box->store, error_r, "write index in", box->dir);
}

/*
 * replay - apply the log from off to its end; cut the log at the first
 * invalid entry (an uncommitted, torn tail). Sets box->log_size.
 */
static int
replay(struct store_mailbox *box, uint64_t off, const char **error_r)
{
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	struct stat st;
	uint64_t end, scan;
	int ret = 0;

	if (fstat(box->log_fd, &st) < 0)
		return store_set_syserr(box->store, error_r, "stat log in",
		    box->dir);
	/* pass 1: where does the last complete commit end? */
	for (scan = end = off; scan < (uint64_t)st.st_size;) {
		struct store_log_ent ent;
		int r = read_entry(box->log_fd, scan, &ent, &buf, &buf_size);

		if (r == -1) {
			free(buf);
			return store_set_syserr(box->store, error_r,
			    "read log in", box->dir);
		}
		if (r == READ_BAD)
			break;
		scan += ent.len;
		if (ent.type & STORE_LOG_END)
			end = scan;
	}
	if (end < (uint64_t)st.st_size) {
		/* a torn or unfinished commit: never acknowledged, never visible */
		if (ftruncate(box->log_fd, (off_t)end) < 0 ||
		    store_fsync(box->store, box->log_fd) < 0) {
			free(buf);
			return store_set_syserr(box->store, error_r,
			    "truncate log in", box->dir);
		}
	}
	/* pass 2: apply the complete commits */
	while (off < end) {
		struct store_log_ent ent;
		int r = read_entry(box->log_fd, off, &ent, &buf, &buf_size);

		if (r != 0) {
			ret = store_set_syserr(box->store, error_r,
			    "read log in", box->dir);
			break;
		}
		if (box->whdr.n_records == 0 && off == 0 &&
		    STORE_LOG_TYPE(ent.type) != STORE_LOG_HEADER) {
			ret = store_set_err(box->store, STORE_ERR_CORRUPT,
			    error_r, "%s/log: no header entry", box->dir);
			break;
		}
		if (apply_entry(box, buf, off, error_r) < 0) {
			ret = -1;
			break;
		}
		off += ent.len;
	}
	free(buf);
	box->log_size = off;
	box->whdr.log_applied = off;
	return ret;
}

/* ---------------------------------------------------------------- files */

static int
read_log_id(struct store_mailbox *box, const char **error_r)
{
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	struct store_log_ent ent;
	struct store_log_header lh;
	int r = read_entry(box->log_fd, 0, &ent, &buf, &buf_size);

	if (r == 0 && STORE_LOG_TYPE(ent.type) == STORE_LOG_HEADER &&
	    ent.len >= sizeof(ent) + sizeof(lh)) {
		memcpy(&lh, buf + sizeof(ent), sizeof(lh));
		box->log_id = lh.log_id;
	}
	free(buf);
	if (r == -1)
		return store_set_syserr(box->store, error_r, "read log in",
		    box->dir);
	if (r != 0 || STORE_LOG_TYPE(ent.type) != STORE_LOG_HEADER)
		return store_set_err(box->store, STORE_ERR_CORRUPT, error_r,
		    "%s/log: no valid header entry", box->dir);
	return 0;
}

/* open_files - (re)open log and index; a missing index is left at -1 */
static int
open_files(struct store_mailbox *box, const char **error_r)
{
	char *lpath = xasprintf("%s/log", box->dir);
	char *ipath = xasprintf("%s/index", box->dir);
	struct stat st;
	int lfd, ifd, ret = -1;

	lfd = open(lpath, O_RDWR | O_CLOEXEC);
	if (lfd < 0 && errno == EACCES)
		lfd = open(lpath, O_RDONLY | O_CLOEXEC);
	if (lfd < 0) {
		store_set_syserr(box->store, error_r, "open", lpath);
		goto out;
	}
	ifd = open(ipath, O_RDWR | O_CLOEXEC);
	if (ifd < 0 && errno == EACCES)
		ifd = open(ipath, O_RDONLY | O_CLOEXEC);
	if (ifd < 0 && errno != ENOENT) {
		store_set_syserr(box->store, error_r, "open", ipath);
		close(lfd);
		goto out;
	}
	if (box->log_fd >= 0)
		close(box->log_fd);
	if (box->index_fd >= 0)
		close(box->index_fd);
	if (box->map != NULL)
		munmap((void *)(uintptr_t)box->map, box->map_size);	/* we mapped it */
	box->map = NULL;
	box->map_size = 0;
	box->log_fd = lfd;
	box->index_fd = ifd;
	box->log_ino = fstat(lfd, &st) == 0 ? st.st_ino : 0;
	box->index_ino = ifd >= 0 && fstat(ifd, &st) == 0 ? st.st_ino : 0;
	if (read_log_id(box, error_r) < 0)
		goto out;
	if (ifd >= 0 && store_box_remap(box, error_r) < 0) {
		/* a short index (crash while building one) is rebuilt */
		if (box->store->err != STORE_ERR_CORRUPT)
			goto out;
		close(box->index_fd);
		box->index_fd = -1;
	}
	ret = 0;
out:
	free(lpath);
	free(ipath);
	return ret;
}

/* store_box_files_changed - were log or index replaced (or removed)? */
bool
store_box_files_changed(const struct store_mailbox *box)
{
	char *path = xasprintf("%s/index", box->dir);
	struct stat st;
	bool changed;

	changed = stat(path, &st) < 0 || st.st_ino != box->index_ino ||
	    box->index_fd < 0;
	if (!changed) {
		free(path);
		path = xasprintf("%s/log", box->dir);
		changed = stat(path, &st) < 0 || st.st_ino != box->log_ino;
	}
	free(path);
	return changed;
}

/* store_box_reopen - pick up replaced files; keep the view by UID */
int
store_box_reopen(struct store_mailbox *box, const char **error_r)
{
	if (open_files(box, error_r) < 0)
		return -1;
	if (box->index_fd >= 0 && box->has_view)
		store_view_translate(box);
	return 0;
}

/*
 * rebuild - a new index from the whole log, fsync'd and renamed in.
 * Caller holds the mailbox lock (or the mailbox is not yet visible).
 */
static int
rebuild(struct store_mailbox *box, const char **error_r)
{
	char *npath = xasprintf("%s/index.new", box->dir);
	char *ipath = xasprintf("%s/index", box->dir);
	int fd, old_fd = box->index_fd, ret = -1;
	const unsigned char *old_map = box->map;
	size_t old_map_size = box->map_size;
	uint32_t old_flags = box->whdr.flags;
	static const char zeros[STORE_IDX_HDR_SIZE];

	(void)unlink(npath);
	fd = open(npath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_set_syserr(box->store, error_r, "create", npath);
		goto out;
	}
	if (store_pwrite_all(fd, zeros, sizeof(zeros), 0) < 0) {
		store_set_syserr(box->store, error_r, "write", npath);
		close(fd);
		goto out;
	}
	box->index_fd = fd;
	box->map = NULL;
	box->map_size = 0;
	memset(&box->whdr, 0, sizeof(box->whdr));
	box->whdr.magic = STORE_IDX_MAGIC;
	box->whdr.version = STORE_IDX_VERSION;
	box->whdr.hdr_size = STORE_IDX_HDR_SIZE;
	box->whdr.rec_size = STORE_IDX_REC_SIZE;
	box->whdr.uidnext = 1;
	box->whdr.flags = old_flags & STORE_IDX_DELETED;
	if (replay(box, 0, error_r) < 0 ||
	    store_box_write_header(box, error_r) < 0)
		goto fail;
	/*
	 * No fsync of index.new or of the directory: the index is a cache
	 * of the log (I2), and one that a power loss may have left stale is
	 * rebuilt anyway (boot_id), so its durability buys nothing.
	 */
	if (rename(npath, ipath) < 0) {
		store_set_syserr(box->store, error_r, "install", npath);
		goto fail;
	}
	if (old_fd >= 0)
		close(old_fd);
	if (old_map != NULL)
		munmap((void *)(uintptr_t)old_map, old_map_size);	/* we mapped it */
	box->map = NULL;
	box->map_size = 0;
	{
		struct stat st;

		box->index_ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
	}
	if (store_box_remap(box, error_r) < 0)
		goto out;
	if (box->has_view)
		store_view_translate(box);
	ret = 0;
	goto out;
fail:
	close(fd);
	(void)unlink(npath);
	box->index_fd = old_fd;
	box->map = old_map;
	box->map_size = old_map_size;
out:
	free(npath);
	free(ipath);
	return ret;
}

/*
 * validate_locked - with the lock held: current files, index built from
 * this log in this boot, log fully applied. Rebuilds or replays as needed.
 */
static int
validate_locked(struct store_mailbox *box, const char **error_r)
{
	struct stat st;

	if (store_box_files_changed(box) &&
	    store_box_reopen(box, error_r) < 0)
		return -1;
	if (box->index_fd < 0 ||
	    store_pread_all(box->index_fd, &box->whdr, sizeof(box->whdr), 0) < 0 ||
	    box->whdr.magic != STORE_IDX_MAGIC ||
	    box->whdr.version != STORE_IDX_VERSION ||
	    box->whdr.log_id != box->log_id ||
	    memcmp(box->whdr.boot_id, store_boot_id(), 16) != 0)
		return rebuild(box, error_r);
	if (fstat(box->log_fd, &st) < 0)
		return store_set_syserr(box->store, error_r, "stat log in",
		    box->dir);
	if ((uint64_t)st.st_size < box->whdr.log_applied)
		return rebuild(box, error_r);
	if ((uint64_t)st.st_size > box->whdr.log_applied) {
		/* a writer died between its log write and its index update */
		if (replay(box, box->whdr.log_applied, error_r) < 0 ||
		    store_box_write_header(box, error_r) < 0)
			return -1;
	}
	box->log_size = box->whdr.log_applied;
	/* a writer may have died inside the header update: seq odd */
	if (box->whdr.seq & 1)
		return store_box_write_header(box, error_r);
	return 0;
}

int
store_box_lock(struct store_mailbox *box, const char **error_r)
{
	ASSERT(!box->locked);
	if (box->lock_fd < 0) {
		char *path = xasprintf("%s/lock", box->dir);

		box->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (box->lock_fd < 0) {
			store_set_syserr(box->store, error_r, "open", path);
			free(path);
			return -1;
		}
		free(path);
	}
	if (store_lock_fd(box->lock_fd, true) < 0)
		return store_set_syserr(box->store, error_r, "lock", box->dir);
	box->locked = true;
	if (validate_locked(box, error_r) < 0) {
		store_box_unlock(box);
		return -1;
	}
	if (box->whdr.flags & STORE_IDX_DELETED) {
		store_box_unlock(box);
		return store_set_err(box->store, STORE_ERR_NOTFOUND, error_r,
		    "mailbox was deleted");
	}
	return 0;
}

/* store_box_trylock - store_box_lock without waiting: 1 locked, 0 busy, -1 error */
int
store_box_trylock(struct store_mailbox *box, const char **error_r)
{
	ASSERT(!box->locked);
	if (box->lock_fd < 0) {
		char *path = xasprintf("%s/lock", box->dir);

		box->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (box->lock_fd < 0) {
			store_set_syserr(box->store, error_r, "open", path);
			free(path);
			return -1;
		}
		free(path);
	}
	if (store_lock_fd(box->lock_fd, false) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			return 0;
		return store_set_syserr(box->store, error_r, "lock", box->dir);
	}
	box->locked = true;
	if (validate_locked(box, error_r) < 0) {
		store_box_unlock(box);
		return -1;
	}
	return 1;
}

void
store_box_unlock(struct store_mailbox *box)
{
	struct flock fl;

	ASSERT(box->locked);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(box->lock_fd, F_SETLK, &fl);
	box->locked = false;
}

static int commit_entries(struct store_mailbox *box, const unsigned char *e,
    size_t len, uint64_t start, size_t first, const char **error_r);

/*
 * box_dirs_sync - before the first commit into a log that holds only its
 * HEADER: fsync the mailbox directory (entries log, msg/, tmp/) and mbox/
 * (the mailbox directory's own entry). A mailbox is materialised without
 * any fsync (store_box_init_files); this is where its files become
 * durable, before anything in it can be acknowledged. Compaction fsyncs
 * the directory itself, so a log that holds more than its HEADER has
 * durable entries already.
 */
static int
box_dirs_sync(struct store_mailbox *box, const char **error_r)
{
	char *parent = xstrdup(box->dir);
	int ret = 0;

	*strrchr(parent, '/') = '\0';
	if (store_fsync_path(box->store, box->dir) < 0)
		ret = store_set_syserr(box->store, error_r, "fsync", box->dir);
	else if (store_fsync_path(box->store, parent) < 0)
		ret = store_set_syserr(box->store, error_r, "fsync", parent);
	free(parent);
	return ret;
}

/*
 * store_box_commit - append entries (a concatenation of complete log
 * entries) to the log, fdatasync, apply them to the index, publish the
 * header. Lock held. After 0 the change is durable and visible.
 */
int
store_box_commit(struct store_mailbox *box, const void *entries, size_t len,
    const char **error_r)
{
	unsigned char *e;
	uint64_t start = box->log_size;
	size_t first = len, last = 0;
	int ret;

	ASSERT(box->locked);
	if (len == 0)
		return 0;
	if (start <= STORE_LOG_HDR_ENTRY_SIZE && box_dirs_sync(box, error_r) < 0)
		return -1;
	/* mark the last entry: replay takes the commit whole or not at all */
	e = xmemdup(entries, len);
	for (size_t off = 0; off < len;) {
		struct store_log_ent ent;

		memcpy(&ent, e + off, sizeof(ent));
		ASSERT(ent.len >= sizeof(ent) && ent.len <= len - off);
		last = off;
		off += ent.len;
	}
	{
		struct store_log_ent ent;

		memcpy(&ent, e + last, sizeof(ent));
		store_log_entry_fill(e + last, ent.type | STORE_LOG_END,
		    ent.modseq, ent.len - sizeof(ent));
	}
	ret = commit_entries(box, e, len, start, first, error_r);
	free(e);
	return ret;
}

static int
commit_entries(struct store_mailbox *box, const unsigned char *e, size_t len,
    uint64_t start, size_t first, const char **error_r)
{
	/* crash tests: make a torn write possible between two kill points */
	if (store_killpoints_active() && len > 8)
		first = len / 2;
	if (store_pwrite_all(box->log_fd, e, first, (off_t)start) < 0)
		goto fail;
	store_killpoint();
	if (first < len && store_pwrite_all(box->log_fd, e + first, len - first,
	    (off_t)(start + first)) < 0)
		goto fail;
	store_killpoint();
	if (store_fsync(box->store, box->log_fd) < 0)
		goto fail;
	/* committed: from here a crash (or error) is repaired by replay() */
	box->log_size = start + len;
	for (size_t off = 0; off < len;) {
		struct store_log_ent ent;

		memcpy(&ent, e + off, sizeof(ent));
		if (apply_entry(box, e + off, start + off, error_r) < 0)
			return -1;
		off += ent.len;
	}
	box->whdr.log_applied = box->log_size;
	return store_box_write_header(box, error_r);
fail:
	store_set_syserr(box->store, error_r, "write log in", box->dir);
	/* nothing was published; cut what we wrote (if that fails too, replay() will) */
	if (ftruncate(box->log_fd, (off_t)start) < 0)
		return -1;
	return -1;
}

/* ---------------------------------------------------------------- create/open */

/*
 * store_box_init_files - materialise a mailbox: its directory, msg/, tmp/
 * and a log holding only the HEADER (the index is built by the first
 * opener). No fsync: the mailbox list entry is what commits a mailbox's
 * existence, and these files can be made again from it (uidvalidity) for
 * as long as nothing was committed to the log, which is exactly as long
 * as their durability does not matter (box_dirs_sync syncs them before
 * the first commit). Caller holds the user lock.
 */
int
store_box_init_files(struct store *store, const char *dir,
    uint32_t uidvalidity, const char **error_r)
{
	static const char *const subs[] = { "", "/msg", "/tmp" };
	unsigned char entry[STORE_LOG_HDR_ENTRY_SIZE];
	struct store_log_header lh;
	char *path;
	int fd, ret = 0;

	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		path = xasprintf("%s%s", dir, subs[i]);
		if (store_mkdir(path) < 0) {
			store_set_syserr(store, error_r, "mkdir", path);
			free(path);
			return -1;
		}
		free(path);
	}
	memset(&lh, 0, sizeof(lh));
	lh.log_id = store_random64();
	lh.uidvalidity = uidvalidity;
	lh.uidnext = 1;
	lh.highestmodseq = 1;
	memcpy(entry + sizeof(struct store_log_ent), &lh, sizeof(lh));
	store_log_entry_fill(entry, STORE_LOG_HEADER | STORE_LOG_END, 1,
	    sizeof(lh));
	/* a stale index of an earlier incarnation would not match log_id */
	path = xasprintf("%s/log", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || store_write_all(fd, entry, sizeof(entry)) < 0)
		ret = store_set_syserr(store, error_r, "write", path);
	if (fd >= 0 && close(fd) < 0 && ret == 0)
		ret = store_set_syserr(store, error_r, "write", path);
	free(path);
	return ret;
}

/*
 * store_box_unborn - is the mailbox at dir not (or not completely)
 * materialised: its log missing, or no longer than a HEADER entry and
 * that entry not valid? Such a log never had a commit (a commit's
 * fdatasync would have made the HEADER durable with it), so it may be
 * made afresh. A longer log with a bad HEADER is corruption, not this.
 */
bool
store_box_unborn(const char *dir)
{
	char *path = xasprintf("%s/log", dir);
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	struct store_log_ent ent;
	struct stat st;
	bool unborn;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	free(path);
	if (fd < 0)
		return errno == ENOENT;
	unborn = fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_size <= STORE_LOG_HDR_ENTRY_SIZE &&
	    (read_entry(fd, 0, &ent, &buf, &buf_size) != 0 ||
	    STORE_LOG_TYPE(ent.type) != STORE_LOG_HEADER);
	free(buf);
	close(fd);
	return unborn;
}

void
store_box_free(struct store_mailbox **boxp)
{
	struct store_mailbox *box = *boxp;

	if (box == NULL)
		return;
	if (box->locked)
		store_box_unlock(box);
	if (box->map != NULL)
		munmap((void *)(uintptr_t)box->map, box->map_size);	/* we mapped it */
	if (box->index_fd >= 0)
		close(box->index_fd);
	if (box->log_fd >= 0)
		close(box->log_fd);
	if (box->lock_fd >= 0)
		close(box->lock_fd);
	free(box->view);
	store_uids_clear(&box->pending_expunge);
	free(box->name);
	free(box->dir);
	free(box);
	*boxp = NULL;
}

/* needs_repair - would a writer have to replay, rebuild or finish something? */
static bool
needs_repair(struct store_mailbox *box)
{
	struct store_hdr h;
	struct stat st;

	if (box->index_fd < 0 || box->map == NULL)
		return true;
	memcpy(&h, box->map, sizeof(h));
	if (h.magic != STORE_IDX_MAGIC || h.version != STORE_IDX_VERSION ||
	    h.log_id != box->log_id || memcmp(h.boot_id, store_boot_id(), 16) != 0)
		return true;
	store_box_hdr_snapshot(box, &h);
	return fstat(box->log_fd, &st) < 0 || (uint64_t)st.st_size != h.log_applied;
}

/* box_log_empty - does the log hold only its HEADER (nothing committed)? */
static bool
box_log_empty(const struct store_mailbox *box)
{
	struct stat st;

	return fstat(box->log_fd, &st) == 0 &&
	    (uint64_t)st.st_size <= STORE_LOG_HDR_ENTRY_SIZE;
}

/*
 * store_box_open_id - open mailbox id without building a view. Repairs
 * the index first if a crash or reboot left it stale (taking the lock
 * briefly, for readers too; if the log is merely ahead while some writer
 * holds the lock, that writer finishes it).
 */
struct store_mailbox *
store_box_open_id(struct store *store, uint32_t id, const char *name,
    bool readonly, const char **error_r)
{
	struct store_mailbox *box = xcalloc(1, sizeof(*box));

	box->store = store;
	box->id = id;
	box->name = xstrdup(name);
	box->dir = store_mbox_dir(store, id);
	box->readonly = readonly;
	box->index_fd = box->log_fd = box->lock_fd = -1;
	if (open_files(box, error_r) < 0) {
		/*
		 * A mailbox not yet materialised (or lost so by a crash), or
		 * one that another process was materialising just then: the
		 * unborn check is repeated under the user lock, where a
		 * materialisation in progress has finished, and only then is
		 * the failure final.
		 */
		if (store_mbox_materialize(store, id, error_r) < 0 ||
		    open_files(box, error_r) < 0)
			goto fail;
	}
	if (!readonly && box_log_empty(box)) {
		/*
		 * Nothing committed yet, so a power loss may have kept the
		 * log but not msg/ or tmp/ (their entries are synced by the
		 * first commit): make them again. Two mkdirs, empty mailboxes only.
		 */
		static const char *const subs[] = { "msg", "tmp" };

		for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
			char *path = xasprintf("%s/%s", box->dir, subs[i]);

			if (store_mkdir(path) < 0) {
				store_set_syserr(store, error_r, "mkdir", path);
				free(path);
				goto fail;
			}
			free(path);
		}
	}
	if (needs_repair(box)) {
		if (store_box_lock(box, error_r) < 0)
			goto fail;
		store_box_unlock(box);
	}
	store_box_hdr_snapshot(box, &box->vhdr);
	if (box->vhdr.flags & STORE_IDX_DELETED) {
		store_set_err(store, STORE_ERR_NOTFOUND, error_r,
		    "mailbox was deleted");
		goto fail;
	}
	store_box_load_keywords(box);
	return box;
fail:
	store_box_free(&box);
	return NULL;
}

/* ---------------------------------------------------------------- maintenance */

/* store_box_sweep_tmp - remove tmp files older than an hour */
int
store_box_sweep_tmp(struct store_mailbox *box)
{
	char *tdir = xasprintf("%s/tmp", box->dir);
	DIR *d = opendir(tdir);
	struct dirent *de;
	time_t now = time(NULL);

	if (d == NULL) {
		free(tdir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime + 3600 < now)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	free(tdir);
	return 0;
}

struct tomb {
	uint32_t uid;
	uint64_t modseq;
	uint64_t hash;
};

/* sweep_orphans - remove message files that have no live record */
static void
sweep_orphans(struct store_mailbox *box)
{
	char *mdir = xasprintf("%s/msg", box->dir);
	DIR *d = opendir(mdir);
	struct dirent *de;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			unsigned long uid;
			int64_t i;
			struct store_rec rec;

			if (de->d_name[0] == '.')
				continue;
			if (str_to_ulong(de->d_name, strlen(de->d_name),
			    UINT32_MAX, &uid)) {
				i = store_box_find_uid(box, (uint32_t)uid,
				    box->whdr.n_records);
				if (i >= 0 && store_box_read_rec(box, (uint32_t)i,
				    &rec) == 0 && (rec.flags & STORE_REC_EXPUNGED) == 0)
					continue;
			}
			(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	free(mdir);
}

/*
 * store_box_compact - rewrite log and index with only live messages and
 * recent tombstones. Lock held. See DESIGN.md 4 and 5.
 */
int
store_box_compact(struct store_mailbox *box, const char **error_r)
{
	char *npath = xasprintf("%s/log.new", box->dir);
	char *lpath = xasprintf("%s/log", box->dir);
	struct tomb *tombs = NULL;
	size_t ntombs = 0, tcap = 0, first_tomb = 0;
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	struct str *out = str_new(1 << 16, 0);
	struct store_log_header lh;
	unsigned char hentry[64];
	uint64_t tomb_modseq = box->whdr.tombstone_modseq;
	int fd = -1, ret = -1;

	ASSERT(box->locked);
	/* the tombstones so far */
	for (uint64_t off = 0; off < box->log_size;) {
		struct store_log_ent ent;

		if (store_box_read_entry(box, box->log_fd, off, &ent, &buf,
		    &buf_size, error_r) < 0)
			goto out;
		if (STORE_LOG_TYPE(ent.type) == STORE_LOG_EXPUNGE) {
			struct store_log_expunge x;

			memcpy(&x, buf + sizeof(ent), sizeof(x));
			if (ntombs == tcap) {
				tcap = tcap == 0 ? 256 : tcap * 2;
				tombs = xreallocarray(tombs, tcap, sizeof(*tombs));
			}
			tombs[ntombs].uid = x.uid;
			tombs[ntombs].modseq = ent.modseq;
			tombs[ntombs].hash = x.token_hash;
			ntombs++;
		}
		off += ent.len;
	}
	if (ntombs > STORE_TOMBSTONES_KEEP) {
		first_tomb = ntombs - STORE_TOMBSTONES_KEEP;
		for (size_t i = 0; i < first_tomb; i++)
			if (tombs[i].modseq > tomb_modseq)
				tomb_modseq = tombs[i].modseq;
	}

	(void)unlink(npath);
	fd = open(npath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_set_syserr(box->store, error_r, "create", npath);
		goto out;
	}
	memset(&lh, 0, sizeof(lh));
	lh.log_id = store_random64();
	lh.uidvalidity = box->whdr.uidvalidity;
	lh.uidnext = box->whdr.uidnext;
	lh.highestmodseq = box->whdr.highestmodseq;
	lh.tombstone_modseq = tomb_modseq;
	memcpy(hentry + sizeof(struct store_log_ent), &lh, sizeof(lh));
	store_log_entry_fill(hentry, STORE_LOG_HEADER | STORE_LOG_END,
	    box->whdr.highestmodseq, sizeof(lh));
	(void)str_append(out, hentry, store_log_entry_size(sizeof(lh)));
	for (unsigned i = 0; i < box->whdr.keyword_count; i++) {
		unsigned char kbuf[sizeof(struct store_log_ent) +
		    sizeof(struct store_log_keyword) + STORE_IDX_KW_SLOT + 8];
		struct store_log_keyword k;
		char name[STORE_IDX_KW_SLOT];

		if (store_pread_all(box->index_fd, name, sizeof(name),
		    STORE_IDX_KW_OFF + i * STORE_IDX_KW_SLOT) < 0)
			goto ioerr;
		name[sizeof(name) - 1] = '\0';
		k.index = i;
		k.len = (uint32_t)strlen(name);
		memcpy(kbuf + sizeof(struct store_log_ent), &k, sizeof(k));
		memcpy(kbuf + sizeof(struct store_log_ent) + sizeof(k), name, k.len);
		store_log_entry_fill(kbuf, STORE_LOG_KEYWORD | STORE_LOG_END, 0,
		    sizeof(k) + k.len);
		(void)str_append(out, kbuf, store_log_entry_size(sizeof(k) + k.len));
	}
	for (uint32_t i = 0; i < box->whdr.n_records; i++) {
		struct store_rec rec;
		struct store_log_ent ent;
		struct store_log_append a;

		if (store_box_read_rec(box, i, &rec) < 0)
			goto ioerr;
		if (rec.flags & STORE_REC_EXPUNGED)
			continue;
		if (store_box_read_entry(box, box->log_fd, rec.log_off, &ent,
		    &buf, &buf_size, error_r) < 0)
			goto out;
		memcpy(&a, buf + sizeof(ent), sizeof(a));
		a.flags = rec.flags;
		a.keywords = rec.keywords;
		memcpy(buf + sizeof(ent), &a, sizeof(a));
		store_log_entry_fill(buf, STORE_LOG_APPEND | STORE_LOG_END,
		    rec.modseq, ent.len - sizeof(ent));
		(void)str_append(out, buf, ent.len);
		if (str_len(out) > (1u << 20)) {
			if (store_write_all(fd, str_c(out), str_len(out)) < 0)
				goto ioerr;
			str_clear(out);
		}
	}
	for (size_t i = first_tomb; i < ntombs; i++) {
		unsigned char xbuf[sizeof(struct store_log_ent) +
		    sizeof(struct store_log_expunge)];
		struct store_log_expunge x;

		memset(&x, 0, sizeof(x));
		x.uid = tombs[i].uid;
		x.token_hash = tombs[i].hash;
		memcpy(xbuf + sizeof(struct store_log_ent), &x, sizeof(x));
		store_log_entry_fill(xbuf, STORE_LOG_EXPUNGE | STORE_LOG_END,
		    tombs[i].modseq, sizeof(x));
		(void)str_append(out, xbuf, sizeof(xbuf));
	}
	if (store_write_all(fd, str_c(out), str_len(out)) < 0 ||
	    store_fsync(box->store, fd) < 0)
		goto ioerr;
	if (rename(npath, lpath) < 0)
		goto ioerr;
	store_killpoint();
	/* the new log with the old index: log_id differs, so rebuild */
	close(box->log_fd);
	box->log_fd = fd;
	fd = -1;
	{
		struct stat st;

		box->log_ino = fstat(box->log_fd, &st) == 0 ? st.st_ino : 0;
	}
	box->log_id = lh.log_id;
	if (rebuild(box, error_r) < 0)
		goto out;
	sweep_orphans(box);
	(void)store_box_sweep_tmp(box);
	ret = 0;
	goto out;
ioerr:
	store_set_syserr(box->store, error_r, "write", npath);
out:
	if (fd >= 0) {
		close(fd);
		(void)unlink(npath);
	}
	str_free(&out);
	free(buf);
	free(tombs);
	free(npath);
	free(lpath);
	return ret;
}
