/* SPDX-License-Identifier: MIT */
/*
 * store_mailbox - open mailboxes: views, messages, append, flags,
 * expunge, copy, sync
 *
 * DESCRIPTION
 *	A struct store_mailbox is one session's view of a mailbox: an
 *	array of (UID, record index) that changes only in
 *	store_mailbox_sync(). Reads go to the mmap'd index (store_index.c)
 *	and, for cached strings, to the change log by offset; message bytes
 *	are the files msg/<uid>. Writes take the mailbox lock, build log
 *	entries and hand them to store_box_commit() (one write, one
 *	fdatasync per call, whatever the number of messages).
 *
 *	store_append() follows DESIGN.md section 4 step by step; the kill
 *	points between the steps are what the crash tests stop at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "store/store_private.h"

#define CACHE_STRING_MAX	(16u * 1024 * 1024)

/* ---------------------------------------------------------------- view */

static void
view_add(struct store_mailbox *box, uint32_t uid, uint32_t rec)
{
	if (box->view_count == box->view_cap) {
		box->view_cap = box->view_cap == 0 ? 64 : box->view_cap * 2;
		box->view = xreallocarray(box->view, box->view_cap,
		    sizeof(*box->view));
	}
	box->view[box->view_count].uid = uid;
	box->view[box->view_count].rec = rec;
	box->view_count++;
}

/* store_view_build - the view of every live message now */
void
store_view_build(struct store_mailbox *box)
{
	struct store_hdr h;

	store_box_hdr_snapshot(box, &h);
	box->view_count = 0;
	for (uint32_t i = 0; i < h.n_records; i++) {
		const struct store_rec *r = store_box_rec(box, i);

		if ((r->flags & STORE_REC_EXPUNGED) == 0)
			view_add(box, r->uid, i);
	}
	box->has_view = true;
	box->view_resync = false;
	box->view_nrec = h.n_records;
	box->view_log_off = h.log_applied;
	box->view_modseq = h.highestmodseq;
	box->vhdr = h;
}

/*
 * store_view_translate - the index was replaced: find each view UID's
 * record in the new one; the next sync compares by UID.
 */
void
store_view_translate(struct store_mailbox *box)
{
	struct store_hdr h;
	uint32_t maxuid = box->view_count > 0 ?
	    box->view[box->view_count - 1].uid : 0;
	uint32_t nrec;
	const char *err;

	if (store_box_remap(box, &err) < 0)
		return;
	store_box_hdr_snapshot(box, &h);
	for (size_t i = 0; i < box->view_count; i++) {
		int64_t r = store_box_find_uid(box, box->view[i].uid, h.n_records);

		box->view[i].rec = r < 0 ? STORE_VIEW_NOREC : (uint32_t)r;
	}
	/* records above the view's highest UID are new to it */
	nrec = 0;
	if (maxuid > 0) {
		uint32_t lo = 0, hi = h.n_records;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (store_box_rec(box, mid)->uid <= maxuid)
				lo = mid + 1;
			else
				hi = mid;
		}
		nrec = lo;
	}
	box->view_nrec = nrec;
	box->view_resync = true;
	store_box_load_keywords(box);
}

struct store_mailbox *
store_mailbox_open(struct store *store, const char *name, unsigned flags,
    const char **error_r)
{
	uint32_t id;
	char *canon;
	struct store_mailbox *box;

	if (store_mbox_lookup(store, name, &id, &canon, error_r) < 0)
		return NULL;
	box = store_box_open_id(store, id, canon, (flags & STORE_OPEN_READONLY) != 0,
	    error_r);
	free(canon);
	if (box == NULL)
		return NULL;
	if (store_box_remap(box, error_r) < 0) {
		store_box_free(&box);
		return NULL;
	}
	store_view_build(box);
	return box;
}

void
store_mailbox_close(struct store_mailbox **boxp)
{
	store_box_free(boxp);
}

const char *
store_mailbox_name(const struct store_mailbox *box)
{
	return box->name;
}

uint32_t
store_mailbox_count(const struct store_mailbox *box)
{
	return (uint32_t)box->view_count;
}

void
store_mailbox_status_get(const struct store_mailbox *box,
    struct store_status *status_r)
{
	const struct store_hdr *h = &box->vhdr;

	memset(status_r, 0, sizeof(*status_r));
	status_r->messages = (uint32_t)box->view_count;
	status_r->unseen = h->unseen;
	status_r->deleted = h->deleted;
	status_r->uidvalidity = h->uidvalidity;
	status_r->uidnext = h->uidnext;
	status_r->highestmodseq = h->highestmodseq;
	status_r->size = h->bytes;
}

unsigned
store_keyword_count(const struct store_mailbox *box)
{
	return box->kw_count;
}

const char *
store_keyword_name(const struct store_mailbox *box, unsigned i)
{
	ASSERT(i < box->kw_count);
	return box->kw[i];
}

static const struct store_view_ent *
view_ent(const struct store_mailbox *box, uint32_t seq)
{
	ASSERT(seq >= 1 && seq <= box->view_count);
	return &box->view[seq - 1];
}

void
store_msg_get(const struct store_mailbox *box, uint32_t seq,
    struct store_msg *msg_r)
{
	const struct store_view_ent *v = view_ent(box, seq);
	const struct store_rec *r;

	memset(msg_r, 0, sizeof(*msg_r));
	msg_r->uid = v->uid;
	if (v->rec == STORE_VIEW_NOREC) {
		msg_r->expunged = true;
		return;
	}
	r = store_box_rec(box, v->rec);
	msg_r->flags = r->flags & STORE_FLAGS_ALL;
	msg_r->keywords = r->keywords;
	msg_r->modseq = r->modseq;
	msg_r->internaldate = (time_t)r->internaldate;
	msg_r->tz_minutes = r->tz_minutes;
	msg_r->size = r->size;
	msg_r->expunged = (r->flags & STORE_REC_EXPUNGED) != 0;
}

uint32_t
store_msg_uid(const struct store_mailbox *box, uint32_t seq)
{
	return view_ent(box, seq)->uid;
}

/* lower_bound - first view position with uid >= uid */
static size_t
lower_bound(const struct store_mailbox *box, uint32_t uid)
{
	size_t lo = 0, hi = box->view_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (box->view[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t
store_seq_by_uid(const struct store_mailbox *box, uint32_t uid)
{
	size_t i = lower_bound(box, uid);

	return i < box->view_count && box->view[i].uid == uid ? (uint32_t)i + 1 : 0;
}

bool
store_seq_range_by_uid(const struct store_mailbox *box, uint32_t uid_lo,
    uint32_t uid_hi, uint32_t *first_r, uint32_t *last_r)
{
	size_t a = lower_bound(box, uid_lo), b;

	if (uid_hi < uid_lo || a >= box->view_count || box->view[a].uid > uid_hi)
		return false;
	b = uid_hi == UINT32_MAX ? box->view_count : lower_bound(box, uid_hi + 1);
	*first_r = (uint32_t)a + 1;
	*last_r = (uint32_t)b;
	return true;
}

int
store_msg_cached(struct store_mailbox *box, uint32_t seq,
    enum store_cache_field field, struct str *out, const char **error_r)
{
	const struct store_view_ent *v = view_ent(box, seq);
	const struct store_rec *r;
	struct store_log_ent ent;
	struct store_log_append a;
	unsigned char hb[sizeof(ent) + sizeof(a)];
	uint64_t off;
	size_t len;
	char *p;

	if (v->rec == STORE_VIEW_NOREC)
		return store_set_err(box->store, STORE_ERR_EXPUNGED, error_r,
		    "message was expunged");
	r = store_box_rec(box, v->rec);
	if (store_pread_all(box->log_fd, hb, sizeof(hb), (off_t)r->log_off) < 0)
		return store_set_syserr(box->store, error_r, "read log in",
		    box->dir);
	memcpy(&ent, hb, sizeof(ent));
	memcpy(&a, hb + sizeof(ent), sizeof(a));
	off = r->log_off + sizeof(hb) + a.token_len;
	switch (field) {
	case STORE_CACHE_ENVELOPE:
		len = a.envelope_len;
		break;
	case STORE_CACHE_BODYSTRUCTURE:
		off += a.envelope_len;
		len = a.bodystructure_len;
		break;
	case STORE_CACHE_BODY:
		off += (uint64_t)a.envelope_len + a.bodystructure_len;
		len = a.body_len;
		break;
	default:
		ASSERT(!"bad cache field");
		return -1;
	}
	if (ent.magic != STORE_LOG_MAGIC || STORE_LOG_TYPE(ent.type) != STORE_LOG_APPEND ||
	    off + len > r->log_off + ent.len)
		return store_set_err(box->store, STORE_ERR_CORRUPT, error_r,
		    "%s/log: bad cache entry for UID %u", box->dir, r->uid);
	if (len == 0)
		return 0;
	if ((p = str_reserve(out, len)) == NULL)
		return store_set_err(box->store, STORE_ERR_LIMIT, error_r,
		    "cached string too long for the buffer");
	if (store_pread_all(box->log_fd, p, len, (off_t)off) < 0)
		return store_set_syserr(box->store, error_r, "read log in",
		    box->dir);
	str_commit(out, len);
	return 0;
}

static char *
msg_path(const struct store_mailbox *box, uint32_t uid)
{
	return xasprintf("%s/msg/%u", box->dir, uid);
}

int
store_msg_open(struct store_mailbox *box, uint32_t seq, const char **error_r)
{
	const struct store_view_ent *v = view_ent(box, seq);
	char *path = msg_path(box, v->uid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			store_set_err(box->store, STORE_ERR_EXPUNGED, error_r,
			    "message was expunged");
		else
			store_set_syserr(box->store, error_r, "open", path);
	}
	free(path);
	return fd;
}

int
store_msg_read(struct store_mailbox *box, uint32_t seq, struct str *out,
    const char **error_r)
{
	int fd = store_msg_open(box, seq, error_r);
	struct stat st;
	char *p;
	int ret = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		store_set_syserr(box->store, error_r, "stat message in", box->dir);
	else if ((p = str_reserve(out, (size_t)st.st_size)) == NULL)
		store_set_err(box->store, STORE_ERR_LIMIT, error_r,
		    "message too long for the buffer");
	else if (st.st_size > 0 &&
	    store_pread_all(fd, p, (size_t)st.st_size, 0) < 0)
		store_set_syserr(box->store, error_r, "read message in", box->dir);
	else {
		str_commit(out, (size_t)st.st_size);
		ret = 0;
	}
	close(fd);
	return ret;
}

/* ---------------------------------------------------------------- keywords */

/* kw_find - index of name among the writer's current keywords, or -1 */
static int
kw_find(struct store_mailbox *box, const char *name)
{
	for (unsigned i = 0; i < box->kw_count; i++)
		if (strcasecmp(box->kw[i], name) == 0)
			return (int)i;
	return -1;
}

/*
 * kw_resolve - bits for names, appending KEYWORD entries to entries for
 * new ones. The caller holds the lock and reloaded box->kw from the index
 * (store_box_load_keywords) once before the first call of a commit: the
 * names added by earlier calls for the same commit are in box->kw only,
 * so reloading between calls would hand their indexes out twice.
 */
static int
kw_resolve(struct store_mailbox *box, const char *const *names,
    uint64_t *bits_r, struct str *entries, const char **error_r)
{
	unsigned next;

	next = box->kw_count;
	*bits_r = 0;
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		int k = kw_find(box, names[i]);

		if (!store_keyword_ok(names[i]))
			return store_set_err(box->store, STORE_ERR_INVALID,
			    error_r, "invalid keyword");
		if (k < 0) {
			struct store_log_keyword kw;
			unsigned char kb[sizeof(struct store_log_ent) +
			    sizeof(kw) + STORE_KEYWORD_MAX + 8];

			if (next >= STORE_KEYWORDS_MAX)
				return store_set_err(box->store, STORE_ERR_LIMIT,
				    error_r, "too many keywords in mailbox");
			kw.index = next;
			kw.len = (uint32_t)strlen(names[i]);
			memcpy(kb + sizeof(struct store_log_ent), &kw, sizeof(kw));
			memcpy(kb + sizeof(struct store_log_ent) + sizeof(kw),
			    names[i], kw.len);
			store_log_entry_fill(kb, STORE_LOG_KEYWORD, 0,
			    sizeof(kw) + kw.len);
			(void)str_append(entries, kb,
			    store_log_entry_size(sizeof(kw) + kw.len));
			/* visible to later names in this call */
			pst_strlcpy(box->kw[next], names[i], STORE_IDX_KW_SLOT);
			box->kw_count = ++next;
			k = (int)kw.index;
		}
		*bits_r |= 1ull << k;
	}
	return 0;
}

int
store_keyword_lookup(struct store_mailbox *box, const char *name, bool create,
    unsigned *idx_r, const char **error_r)
{
	const char *names[2] = { name, NULL };
	struct str *entries;
	uint64_t bits;
	int k, ret;

	if (!store_keyword_ok(name))
		return store_set_err(box->store, STORE_ERR_INVALID, error_r,
		    "invalid keyword");
	store_box_load_keywords(box);
	if ((k = kw_find(box, name)) >= 0) {
		*idx_r = (unsigned)k;
		return 0;
	}
	if (!create)
		return store_set_err(box->store, STORE_ERR_NOTFOUND, error_r,
		    "no such keyword");
	if (box->readonly)
		return store_set_err(box->store, STORE_ERR_READONLY, error_r,
		    "mailbox is read-only");
	if (store_box_lock(box, error_r) < 0)
		return -1;
	store_box_load_keywords(box);
	entries = str_new(128, 0);
	ret = kw_resolve(box, names, &bits, entries, error_r);
	if (ret == 0)
		ret = store_box_commit(box, str_c(entries), str_len(entries),
		    error_r);
	store_box_unlock(box);
	str_free(&entries);
	store_box_load_keywords(box);
	if (ret == 0)
		*idx_r = (unsigned)__builtin_ctzll(bits);
	return ret;
}

/* ---------------------------------------------------------------- append */

/* write_tmp - the message into tmp/, fsync'd; returns the path */
static char *
write_tmp(struct store_mailbox *box, const struct store_append_req *req,
    uint64_t *size_r, const char **error_r)
{
	static unsigned counter;
	struct timeval tv;
	char *path;
	int fd;
	uint64_t size = 0;

	gettimeofday(&tv, NULL);
	path = xasprintf("%s/tmp/%ld.%u.%lld%06ld", box->dir, (long)getpid(),
	    ++counter, (long long)tv.tv_sec, (long)tv.tv_usec);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_set_syserr(box->store, error_r, "create", path);
		free(path);
		return NULL;
	}
	if (req->fd >= 0) {
		char buf[65536];
		off_t off = 0;

		for (;;) {
			ssize_t n = pread(req->fd, buf, sizeof(buf), off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto fail;
			if (n == 0)
				break;
			if (store_write_all(fd, buf, (size_t)n) < 0)
				goto fail;
			off += n;
		}
		size = (uint64_t)off;
	} else {
		if (req->size > 0 && store_write_all(fd, req->data, req->size) < 0)
			goto fail;
		size = req->size;
	}
	if (store_fsync(box->store, fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	*size_r = size;
	return path;
fail:
	store_set_syserr(box->store, error_r, "write", path);
	if (fd >= 0)
		close(fd);
	(void)unlink(path);
	free(path);
	return NULL;
}

/* append_entry - an APPEND entry into out */
static void
append_entry(struct str *out, uint64_t modseq, const struct store_log_append *a,
    const char *token, const void *env, const void *bs, const void *body)
{
	size_t payload = sizeof(*a) + a->token_len + a->envelope_len +
	    a->bodystructure_len + a->body_len;
	size_t len = store_log_entry_size(payload);
	size_t start = str_len(out);
	char *p = str_reserve(out, len);

	ASSERT(p != NULL);
	p += sizeof(struct store_log_ent);
	memcpy(p, a, sizeof(*a));
	p += sizeof(*a);
	if (a->token_len > 0)
		memcpy(p, token, a->token_len);
	p += a->token_len;
	if (a->envelope_len > 0)
		memcpy(p, env, a->envelope_len);
	p += a->envelope_len;
	if (a->bodystructure_len > 0)
		memcpy(p, bs, a->bodystructure_len);
	p += a->bodystructure_len;
	if (a->body_len > 0)
		memcpy(p, body, a->body_len);
	str_commit(out, len);
	store_log_entry_fill(str_data(out) + start, STORE_LOG_APPEND, modseq,
	    payload);
}

/* append_req_ok - the request's own fields are valid */
static bool
append_req_ok(const struct store_append_req *req)
{
	if ((req->flags & ~STORE_FLAGS_ALL) != 0 ||
	    (req->token != NULL && !store_token_ok(req->token)) ||
	    req->envelope_len > CACHE_STRING_MAX ||
	    req->bodystructure_len > CACHE_STRING_MAX ||
	    req->body_len > CACHE_STRING_MAX ||
	    (req->fd < 0 && req->data == NULL && req->size > 0))
		return false;
	for (size_t i = 0; req->keywords != NULL && req->keywords[i] != NULL; i++)
		if (!store_keyword_ok(req->keywords[i]))
			return false;
	return true;
}

int
store_append(struct store *store, const struct store_append_req *req,
    struct store_append_result *result_r, const char **error_r)
{
	return store_append_multi(store, req, 1, result_r, error_r);
}

/*
 * store_append_multi - DESIGN.md section 4 for n messages at once: every
 * message is written to tmp/ first, then under the locks they get
 * consecutive UIDs, are renamed into msg/ and committed by one log write,
 * so a failure (or a crash) before the commit leaves none of them.
 */
int
store_append_multi(struct store *store, const struct store_append_req *reqs,
    size_t n, struct store_append_result *results_r, const char **error_r)
{
	const struct store_append_req *req = &reqs[0];
	struct store_mailbox *box = NULL;
	struct store_log_append *a = NULL;
	struct str *entries = NULL;
	char **tmp = NULL, **dst = NULL, *canon = NULL, *mdir = NULL;
	bool user_locked = false, committed = false;
	uint64_t *size = NULL, total = 0;
	uint32_t id;
	size_t i, renamed = 0;
	int ret = -1;

	if (n == 0)
		return store_set_err(store, STORE_ERR_INVALID, error_r,
		    "no message to append");
	memset(results_r, 0, n * sizeof(*results_r));
	for (i = 0; i < n; i++)
		if (!append_req_ok(&reqs[i]) || (n > 1 && reqs[i].token != NULL))
			return store_set_err(store, STORE_ERR_INVALID, error_r,
			    "invalid append request");
	if (store_mbox_lookup(store, req->mailbox, &id, &canon, error_r) < 0)
		return -1;
	box = store_box_open_id(store, id, canon, false, error_r);
	if (box == NULL)
		goto out;
	tmp = xcalloc(n, sizeof(*tmp));
	dst = xcalloc(n, sizeof(*dst));
	size = xcalloc(n, sizeof(*size));
	a = xcalloc(n, sizeof(*a));

	/* 1. the messages, durable under temporary names, no lock held */
	for (i = 0; i < n; i++) {
		if ((tmp[i] = write_tmp(box, &reqs[i], &size[i], error_r)) == NULL)
			goto out;
		total += size[i];
	}

	/* 2. token and quota, atomically with the commit */
	if (req->token != NULL || req->quota_bytes != 0 || req->quota_messages != 0) {
		if (store_user_lock(store, error_r) < 0)
			goto out;
		user_locked = true;
	}
	if (req->token != NULL) {
		int r = store_token_find(store, req->token, results_r, error_r);

		if (r < 0)
			goto out;
		if (r > 0) {
			ret = 0;
			goto out;
		}
	}
	if (store_quota_check(store, req->quota_bytes, req->quota_messages,
	    total, n, error_r) < 0)
		goto out;

	/* 3. the mailbox lock; the UIDs */
	if (store_box_lock(box, error_r) < 0)
		goto out;
	store_box_load_keywords(box);
	entries = str_new(1024 * n, 0);
	for (i = 0; i < n; i++) {
		if (kw_resolve(box, reqs[i].keywords, &a[i].keywords, entries,
		    error_r) < 0)
			goto unlock;
		a[i].uid = box->whdr.uidnext + (uint32_t)i;
		a[i].flags = reqs[i].flags;
		a[i].internaldate = reqs[i].internaldate != 0 ?
		    (int64_t)reqs[i].internaldate : (int64_t)time(NULL);
		a[i].tz_minutes = reqs[i].tz_minutes;
		a[i].size = size[i];
		if (reqs[i].token != NULL) {
			a[i].token_len = (uint32_t)strlen(reqs[i].token);
			a[i].token_hash = store_hash64(reqs[i].token,
			    a[i].token_len);
		}
		a[i].envelope_len = (uint32_t)reqs[i].envelope_len;
		a[i].bodystructure_len = (uint32_t)reqs[i].bodystructure_len;
		a[i].body_len = (uint32_t)reqs[i].body_len;
	}

	/* 4. the token intent, durable before the commit it protects */
	if (req->token != NULL &&
	    store_token_record(store, req->token, id, box->whdr.uidvalidity,
		a[0].uid, error_r) < 0)
		goto unlock;

	/* 5. the messages under their UIDs (replacing uncommitted orphans) */
	mdir = xasprintf("%s/msg", box->dir);
	for (i = 0; i < n; i++) {
		dst[i] = msg_path(box, a[i].uid);
		if (rename(tmp[i], dst[i]) < 0) {
			store_set_syserr(store, error_r, "rename to", dst[i]);
			goto unlock;
		}
		XFREE(tmp[i]);
		renamed++;
		store_killpoint();
	}
	if (store_fsync_path(store, mdir) < 0) {
		store_set_syserr(store, error_r, "fsync", mdir);
		goto unlock;
	}

	/* 6.-7. commit: the log entries, fdatasync, then the index */
	for (i = 0; i < n; i++)
		append_entry(entries, box->whdr.highestmodseq + 1 + i, &a[i],
		    reqs[i].token, reqs[i].envelope, reqs[i].bodystructure,
		    reqs[i].body);
	if (store_box_commit(box, str_c(entries), str_len(entries), error_r) < 0) {
		/* a commit that failed after the fsync is replayed by the next writer */
		committed = box->log_size > box->whdr.log_applied;
		goto unlock;
	}
	for (i = 0; i < n; i++) {
		results_r[i].uid = a[i].uid;
		results_r[i].uidvalidity = box->whdr.uidvalidity;
		results_r[i].modseq = box->whdr.highestmodseq - (n - 1 - i);
		pst_strlcpy(results_r[i].mailbox, canon,
		    sizeof(results_r[i].mailbox));
	}
	ret = 0;
	committed = true;
unlock:
	if (!committed)
		for (i = 0; i < renamed; i++)
			(void)unlink(dst[i]);
	store_box_unlock(box);
out:
	if (user_locked)
		store_user_unlock(store);
	for (i = 0; tmp != NULL && i < n; i++) {
		if (tmp[i] != NULL)
			(void)unlink(tmp[i]);
		free(tmp[i]);
	}
	for (i = 0; dst != NULL && i < n; i++)
		free(dst[i]);
	if (ret == 0)
		store->err = STORE_ERR_NONE;
	free(tmp);
	free(dst);
	free(size);
	free(a);
	free(mdir);
	free(canon);
	str_free(&entries);
	store_box_free(&box);
	return ret;
}

/* ---------------------------------------------------------------- flags, expunge */

static int
need_rw(struct store_mailbox *box, const char **error_r)
{
	if (box->readonly)
		return store_set_err(box->store, STORE_ERR_READONLY, error_r,
		    "mailbox is read-only");
	return 0;
}

int
store_update_flags(struct store_mailbox *box, const uint32_t *uids,
    size_t count, enum store_flags_mode mode, uint32_t flags,
    uint64_t keywords, uint64_t unchangedsince, struct store_uids *failed_r,
    const char **error_r)
{
	struct str *entries;
	uint64_t modseq;
	int ret;

	if (need_rw(box, error_r) < 0)
		return -1;
	if ((flags & ~STORE_FLAGS_ALL) != 0)
		return store_set_err(box->store, STORE_ERR_INVALID, error_r,
		    "invalid flags");
	if (store_box_lock(box, error_r) < 0)
		return -1;
	if (keywords >> (box->whdr.keyword_count & 63) != 0 &&
	    box->whdr.keyword_count < 64) {
		store_box_unlock(box);
		return store_set_err(box->store, STORE_ERR_INVALID, error_r,
		    "unknown keyword bit");
	}
	entries = str_new(count * 48 + 64, 0);
	modseq = box->whdr.highestmodseq;
	for (size_t i = 0; i < count; i++) {
		int64_t ri = store_box_find_uid(box, uids[i], box->whdr.n_records);
		struct store_rec rec;
		struct store_log_flags f;
		unsigned char fb[sizeof(struct store_log_ent) + sizeof(f)];

		if (ri < 0 || store_box_read_rec(box, (uint32_t)ri, &rec) < 0 ||
		    (rec.flags & STORE_REC_EXPUNGED))
			continue;
		if (unchangedsince != 0 && rec.modseq > unchangedsince) {
			if (failed_r != NULL)
				store_uids_add(failed_r, rec.uid);
			continue;
		}
		memset(&f, 0, sizeof(f));
		f.uid = rec.uid;
		switch (mode) {
		case STORE_FLAGS_REPLACE:
			f.flags = flags;
			f.keywords = keywords;
			break;
		case STORE_FLAGS_ADD:
			f.flags = (rec.flags & STORE_FLAGS_ALL) | flags;
			f.keywords = rec.keywords | keywords;
			break;
		case STORE_FLAGS_REMOVE:
			f.flags = rec.flags & STORE_FLAGS_ALL & ~flags;
			f.keywords = rec.keywords & ~keywords;
			break;
		}
		if (f.flags == (rec.flags & STORE_FLAGS_ALL) &&
		    f.keywords == rec.keywords)
			continue;
		memcpy(fb + sizeof(struct store_log_ent), &f, sizeof(f));
		store_log_entry_fill(fb, STORE_LOG_FLAGS, ++modseq, sizeof(f));
		(void)str_append(entries, fb, sizeof(fb));
	}
	ret = store_box_commit(box, str_c(entries), str_len(entries), error_r);
	store_box_unlock(box);
	str_free(&entries);
	return ret;
}

int
store_expunge(struct store_mailbox *box, const uint32_t *uids, size_t count,
    struct store_uids *expunged_r, const char **error_r)
{
	struct str *entries;
	struct store_uids done = { NULL, 0, 0 };
	uint64_t modseq;
	int ret;

	if (need_rw(box, error_r) < 0)
		return -1;
	if (store_box_lock(box, error_r) < 0)
		return -1;
	entries = str_new(4096, 0);
	modseq = box->whdr.highestmodseq;
	for (size_t i = 0; uids == NULL ? i < box->whdr.n_records : i < count; i++) {
		struct store_rec rec;
		struct store_log_expunge x;
		unsigned char xb[sizeof(struct store_log_ent) + sizeof(x)];

		if (uids == NULL) {
			if (store_box_read_rec(box, (uint32_t)i, &rec) < 0 ||
			    (rec.flags & STORE_FLAG_DELETED) == 0)
				continue;
		} else {
			int64_t ri = store_box_find_uid(box, uids[i],
			    box->whdr.n_records);

			if (ri < 0 || store_box_read_rec(box, (uint32_t)ri, &rec) < 0)
				continue;
		}
		if (rec.flags & STORE_REC_EXPUNGED)
			continue;
		memset(&x, 0, sizeof(x));
		x.uid = rec.uid;
		x.token_hash = rec.token_hash;
		memcpy(xb + sizeof(struct store_log_ent), &x, sizeof(x));
		store_log_entry_fill(xb, STORE_LOG_EXPUNGE, ++modseq, sizeof(x));
		(void)str_append(entries, xb, sizeof(xb));
		store_uids_add(&done, rec.uid);
	}
	ret = store_box_commit(box, str_c(entries), str_len(entries), error_r);
	if (ret == 0) {
		/* committed: the files go (a crash here leaves orphans for compaction) */
		for (size_t i = 0; i < done.count; i++) {
			char *path = msg_path(box, done.uids[i]);

			(void)unlink(path);
			free(path);
			if (expunged_r != NULL)
				store_uids_add(expunged_r, done.uids[i]);
		}
		if (done.count > 0)
			store_killpoint();
		if (box->whdr.n_expunged >= STORE_COMPACT_MIN &&
		    (uint64_t)box->whdr.n_expunged * 4 > box->whdr.n_records) {
			const char *err;

			/* failure leaves the old, valid files: not an error */
			(void)store_box_compact(box, &err);
			box->store->err = STORE_ERR_NONE;
		}
	}
	store_box_unlock(box);
	store_uids_clear(&done);
	str_free(&entries);
	return ret;
}

int
store_mailbox_compact(struct store_mailbox *box, const char **error_r)
{
	int ret;

	if (need_rw(box, error_r) < 0 || store_box_lock(box, error_r) < 0)
		return -1;
	ret = store_box_compact(box, error_r);
	store_box_unlock(box);
	return ret;
}

/* ---------------------------------------------------------------- copy */

/* copy_file - fallback when a hard link is impossible */
static int
copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (store_write_all(out, buf, (size_t)n) < 0)
			goto done;
	if (n == 0 && fdatasync(out) == 0)
		ret = 0;
done:
	if (out >= 0)
		close(out);
	close(in);
	if (ret < 0)
		(void)unlink(dst);
	return ret;
}

int
store_copy(struct store_mailbox *box, const uint32_t *uids, size_t count,
    const char *dest, bool move, struct store_uids *src_uids_r,
    struct store_uids *dst_uids_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct store *store = box->store;
	struct store_mailbox *dbox = NULL;
	struct str *entries = NULL;
	struct store_uids src = { NULL, 0, 0 }, dst = { NULL, 0, 0 };
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	char *canon = NULL, *mdir = NULL;
	uint64_t modseq;
	uint32_t id, uid;
	int ret = -1;

	if (move && need_rw(box, error_r) < 0)
		return -1;
	if (store_mbox_lookup(store, dest, &id, &canon, error_r) < 0)
		return -1;
	if (id == box->id) {
		free(canon);
		return store_set_err(store, STORE_ERR_INVALID, error_r,
		    "source and destination are the same mailbox");
	}
	if ((dbox = store_box_open_id(store, id, canon, false, error_r)) == NULL)
		goto out;
	if (store_box_lock(dbox, error_r) < 0)
		goto out;
	store_box_load_keywords(dbox);
	entries = str_new(4096, 0);
	modseq = dbox->whdr.highestmodseq;
	uid = dbox->whdr.uidnext;
	mdir = xasprintf("%s/msg", dbox->dir);
	store_box_load_keywords(box);
	for (size_t i = 0; i < count; i++) {
		struct store_hdr sh;
		int64_t ri;
		struct store_rec rec;
		struct store_log_ent ent;
		struct store_log_append a;
		const char *names[STORE_KEYWORDS_MAX + 1];
		size_t nn = 0;
		uint64_t kbits;
		char *sp, *dp;
		const unsigned char *p;

		store_box_hdr_snapshot(box, &sh);
		ri = store_box_find_uid(box, uids[i], sh.n_records);
		if (ri < 0 || store_box_read_rec(box, (uint32_t)ri, &rec) < 0 ||
		    (rec.flags & STORE_REC_EXPUNGED))
			continue;
		if (store_box_read_entry(box, box->log_fd, rec.log_off, &ent,
		    &buf, &buf_size, error_r) < 0)
			goto unlock;
		memcpy(&a, buf + sizeof(ent), sizeof(a));
		for (unsigned k = 0; k < box->kw_count; k++)
			if (rec.keywords & (1ull << k))
				names[nn++] = box->kw[k];
		names[nn] = NULL;
		if (kw_resolve(dbox, names, &kbits, entries, error_r) < 0)
			goto unlock;
		sp = msg_path(box, rec.uid);
		dp = msg_path(dbox, uid);
		(void)unlink(dp);	/* an uncommitted orphan */
		if (link(sp, dp) < 0) {
			if (errno == ENOENT) {
				/* expunged meanwhile */
				free(sp);
				free(dp);
				continue;
			}
			if (copy_file(sp, dp) < 0) {
				store_set_syserr(store, error_r, "copy to", dp);
				free(sp);
				free(dp);
				goto unlock;
			}
		}
		free(sp);
		free(dp);
		store_killpoint();
		/* the copy keeps flags and cached strings, not the token */
		p = buf + sizeof(ent) + sizeof(a);
		{
			const char *tok = (const char *)p;
			const unsigned char *env = p + a.token_len;

			(void)tok;
			a.uid = uid;
			a.flags = rec.flags & STORE_FLAGS_ALL;
			a.keywords = kbits;
			a.token_len = 0;
			a.token_hash = 0;
			append_entry(entries, ++modseq, &a, NULL, env,
			    env + a.envelope_len,
			    env + a.envelope_len + a.bodystructure_len);
		}
		store_uids_add(&src, rec.uid);
		store_uids_add(&dst, uid);
		uid++;
	}
	if (dst.count > 0 && store_fsync_path(store, mdir) < 0) {
		store_set_syserr(store, error_r, "fsync", mdir);
		goto unlock;
	}
	if (store_box_commit(dbox, str_c(entries), str_len(entries), error_r) < 0)
		goto unlock;
	if (uidvalidity_r != NULL)
		*uidvalidity_r = dbox->whdr.uidvalidity;
	ret = 0;
unlock:
	store_box_unlock(dbox);
	if (ret == 0 && move && src.count > 0)
		ret = store_expunge(box, src.uids, src.count, NULL, error_r);
	if (ret == 0) {
		for (size_t i = 0; i < src.count; i++) {
			if (src_uids_r != NULL)
				store_uids_add(src_uids_r, src.uids[i]);
			if (dst_uids_r != NULL)
				store_uids_add(dst_uids_r, dst.uids[i]);
		}
	}
out:
	store_uids_clear(&src);
	store_uids_clear(&dst);
	str_free(&entries);
	free(buf);
	free(mdir);
	free(canon);
	store_box_free(&dbox);
	return ret;
}

/* ---------------------------------------------------------------- sync */

void
store_sync_result_free(struct store_sync_result *res)
{
	store_uids_clear(&res->expunged);
	store_uids_clear(&res->changed);
	free(res->expunge_seqs);
	memset(res, 0, sizeof(*res));
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* view_pos - the position of uid in the view, or -1 */
static ssize_t
view_pos(const struct store_mailbox *box, uint32_t uid)
{
	size_t i = lower_bound(box, uid);

	return i < box->view_count && box->view[i].uid == uid ? (ssize_t)i : -1;
}

int
store_mailbox_sync(struct store_mailbox *box, unsigned flags,
    struct store_sync_result *res, const char **error_r)
{
	struct store_hdr h;
	unsigned char *gone = NULL, *changed = NULL;
	unsigned char *buf = NULL;
	size_t buf_size = 0, old_count, k;
	struct stat st;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (store_box_files_changed(box) && store_box_reopen(box, error_r) < 0)
		return -1;
	store_box_hdr_snapshot(box, &h);
	/* a crashed writer's committed tail, or a stale index: repair it */
	if (h.log_id != box->log_id) {
		if (store_box_lock(box, error_r) < 0)
			return -1;
		store_box_unlock(box);
		store_box_hdr_snapshot(box, &h);
	} else if (fstat(box->log_fd, &st) == 0 &&
	    (uint64_t)st.st_size != h.log_applied) {
		/* busy means a live writer, who will finish it */
		int r = store_box_trylock(box, error_r);

		if (r < 0)
			return -1;
		if (r > 0) {
			store_box_unlock(box);
			store_box_hdr_snapshot(box, &h);
		}
	}
	if (h.flags & STORE_IDX_DELETED)
		return store_set_err(box->store, STORE_ERR_NOTFOUND, error_r,
		    "mailbox was deleted");
	if (store_box_remap(box, error_r) < 0)
		return -1;
	old_count = box->view_count;
	gone = xcalloc(old_count + 1, 1);
	changed = xcalloc(old_count + 1, 1);
	if (box->view_resync) {
		for (size_t i = 0; i < old_count; i++) {
			const struct store_rec *r;

			if (box->view[i].rec == STORE_VIEW_NOREC ||
			    box->view[i].rec >= h.n_records) {
				gone[i] = 1;
				continue;
			}
			r = store_box_rec(box, box->view[i].rec);
			if (r->flags & STORE_REC_EXPUNGED)
				gone[i] = 1;
			else if (r->modseq > box->view_modseq)
				changed[i] = 1;
		}
	} else {
		for (uint64_t off = box->view_log_off; off < h.log_applied;) {
			struct store_log_ent ent;
			uint32_t uid;
			ssize_t pos;

			if (store_box_read_entry(box, box->log_fd, off, &ent, &buf,
			    &buf_size, error_r) < 0)
				goto out;
			off += ent.len;
			if (STORE_LOG_TYPE(ent.type) != STORE_LOG_FLAGS &&
			    STORE_LOG_TYPE(ent.type) != STORE_LOG_EXPUNGE)
				continue;
			memcpy(&uid, buf + sizeof(ent), 4);
			if ((pos = view_pos(box, uid)) < 0)
				continue;
			if (STORE_LOG_TYPE(ent.type) == STORE_LOG_FLAGS)
				changed[pos] = 1;
			else
				gone[pos] = 1;
		}
	}
	/* expunges deferred by an earlier NO_EXPUNGE sync */
	for (size_t i = 0; i < box->pending_expunge.count; i++) {
		ssize_t pos = view_pos(box, box->pending_expunge.uids[i]);

		if (pos >= 0)
			gone[pos] = 1;
	}
	store_uids_clear(&box->pending_expunge);
	if (flags & STORE_SYNC_NO_EXPUNGE) {
		for (size_t i = 0; i < old_count; i++)
			if (gone[i])
				store_uids_add(&box->pending_expunge, box->view[i].uid);
	} else {
		size_t removed = 0;

		for (size_t i = 0; i < old_count; i++)
			if (gone[i]) {
				store_uids_add(&res->expunged, box->view[i].uid);
				res->expunge_seqs = xreallocarray(res->expunge_seqs,
				    res->expunged.count, sizeof(uint32_t));
				res->expunge_seqs[res->expunged.count - 1] =
				    (uint32_t)(i + 1 - removed);
				removed++;
			}
		/* changed UIDs first, while positions still match */
		for (size_t i = 0; i < old_count; i++)
			if (changed[i] && !gone[i])
				store_uids_add(&res->changed, box->view[i].uid);
		for (size_t i = 0, j = 0; i < old_count; i++)
			if (!gone[i])
				box->view[j++] = box->view[i];
		box->view_count = old_count - removed;
	}
	if (flags & STORE_SYNC_NO_EXPUNGE)
		for (size_t i = 0; i < old_count; i++)
			if (changed[i] && !gone[i])
				store_uids_add(&res->changed, box->view[i].uid);
	/* new messages */
	k = box->view_count;
	for (uint32_t i = box->view_nrec; i < h.n_records; i++) {
		const struct store_rec *r = store_box_rec(box, i);

		if ((r->flags & STORE_REC_EXPUNGED) == 0 &&
		    (box->view_count == 0 ||
		     r->uid > box->view[box->view_count - 1].uid))
			view_add(box, r->uid, i);
	}
	if (box->view_count > k)
		res->new_first_seq = (uint32_t)k + 1;
	if (res->changed.count > 1)
		qsort(res->changed.uids, res->changed.count, sizeof(uint32_t),
		    uid_cmp);
	res->exists = (uint32_t)box->view_count;
	res->highestmodseq = h.highestmodseq;
	box->view_nrec = h.n_records;
	box->view_log_off = h.log_applied;
	box->view_modseq = h.highestmodseq;
	box->view_resync = false;
	box->vhdr = h;
	if (h.keyword_count != box->kw_count)
		store_box_load_keywords(box);
	ret = 0;
out:
	free(gone);
	free(changed);
	free(buf);
	return ret;
}

int
store_expunged_since(struct store_mailbox *box, uint64_t modseq,
    struct store_uids *uids_r, const char **error_r)
{
	struct store_hdr h;
	unsigned char *buf = NULL;
	size_t buf_size = 0, start = uids_r->count;
	int ret = 0;

	store_box_hdr_snapshot(box, &h);
	for (uint64_t off = 0; off < h.log_applied;) {
		struct store_log_ent ent;

		if (store_box_read_entry(box, box->log_fd, off, &ent, &buf,
		    &buf_size, error_r) < 0) {
			ret = -1;
			break;
		}
		off += ent.len;
		if (STORE_LOG_TYPE(ent.type) == STORE_LOG_EXPUNGE &&
		    ent.modseq > modseq) {
			uint32_t uid;

			memcpy(&uid, buf + sizeof(ent), 4);
			store_uids_add(uids_r, uid);
		}
	}
	free(buf);
	if (ret < 0)
		return -1;
	qsort(uids_r->uids + start, uids_r->count - start, sizeof(uint32_t),
	    uid_cmp);
	return modseq < h.tombstone_modseq ? 1 : 0;
}

void
store_changed_since(const struct store_mailbox *box, uint64_t modseq,
    struct store_uids *uids_r)
{
	for (size_t i = 0; i < box->view_count; i++) {
		const struct store_rec *r;

		if (box->view[i].rec == STORE_VIEW_NOREC)
			continue;
		r = store_box_rec(box, box->view[i].rec);
		if (r->modseq > modseq)
			store_uids_add(uids_r, box->view[i].uid);
	}
}
