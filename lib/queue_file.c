/* SPDX-License-Identifier: MIT */
/*
 * queue_file - the queue file format, its durable writer and its reader
 *
 * DESCRIPTION
 *	See queue_file.h for the format, the directory states and the
 *	recipient status log.
 *
 *	Writer: queue_file_create() makes incoming/ID with O_EXCL and takes
 *	an exclusive flock on it for as long as the writer lives, so that
 *	recovery can tell a live writer (lock held) from a dead one (lock
 *	free). Records go through a fixed 64 KiB buffer; the envelope and
 *	content CRCs are computed as the octets pass. The content length
 *	in the 'M' record is written as all-ones and patched with pwrite()
 *	at commit (an uncommitted file therefore never validates). Commit
 *	order: flush, patch 'M', append 'X', fsync (plus an fsync of
 *	incoming/ where the file system needs one to make the name
 *	durable), rename into the target queue (fsync hold/ for hold/).
 *	Only then 0. Why one sync is enough for active/: queue_file.h,
 *	COMMIT AND REMOVAL.
 *
 *	Reader: reads and checks the whole envelope with pread() through a
 *	small buffer, skips the content (checking only that it is all
 *	there), checks the end record and the envelope CRC, then replays
 *	the status log. Every length is checked against the record type's
 *	maximum before anything is read or allocated; the recipient count
 *	is bounded. The content CRC is checked on demand (QUEUE_FILE_VERIFY,
 *	queue_file_verify(), queue_file_complete()) because that means
 *	reading the whole message.
 *
 *	Updates append 'L' records (see queue_file.h for why a log) with
 *	one pwrite() at the end of the valid log and one fdatasync(); a torn
 *	tail left by a crash is cut off with ftruncate() first.
 *
 *	Nothing here logs or exits (except on memory exhaustion): every
 *	failure is -1/NULL with errno and a static *error_r.
 *
 * SEE ALSO
 *	ARCHITECTURE.md (queue contract, exactly once), Postfix
 *	src/global/record.c and mail_queue.c, qmail INTERNALS.
 */
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "log.h"
#include "queue_file.h"
#include "safe_file.h"

/* record types */
#define REC_VERSION	'V'
#define REC_TIME	'T'
#define REC_SENDER	'S'
#define REC_ENVID	'E'
#define REC_RET		'R'
#define REC_BODY	'B'
#define REC_SMTPUTF8	'U'
#define REC_CLIENT_NAME	'c'
#define REC_CLIENT_ADDR	'a'
#define REC_HELO	'h'
#define REC_PROTOCOL	'p'
#define REC_AUTH_USER	'u'
#define REC_ATTR	'A'
#define REC_RCPT	'r'
#define REC_ORCPT	'o'
#define REC_NOTIFY	'n'
#define REC_ORIG_RCPT	'O'
#define REC_CONTENT	'M'
#define REC_END		'X'
#define REC_STATUS	'L'

#define REC_HDR_LEN	5		/* type + u32 length */
#define END_LEN		20		/* u64 + u32 + u32 + u32 */
#define STATUS_FIXED	26		/* index..updated, before the reason */
#define STATUS_MIN	(STATUS_FIXED + 4)	/* + CRC */
#define CONTENT_UNSET	UINT64_MAX
#define QF_BUF_SIZE	65536
#define QF_MODE		0600

/*
 * Fuzz builds accept any checksum so that the fuzzer can reach the
 * parser behind it; everything else is checked the same way.
 */
#ifdef POSTERN_FUZZ
#define CRC_BAD(got, want)	((void)(got), (void)(want), false)
#else
#define CRC_BAD(got, want)	((got) != (want))
#endif

static const unsigned char qf_magic[8] = {
	0x89, 'P', 'Q', 'F', '\r', '\n', 0x1a, '\n'
};

void (*queue_file_commit_hook)(int step);

static const char *const queue_names[QUEUE_COUNT] = {
	"maildrop", "incoming", "active", "deferred", "hold", "corrupt",
};

static const char *const rcpt_state_names[QUEUE_RCPT_STATE_COUNT] = {
	"pending", "deferred", "delivered", "bounced",
};

/* ------------------------------------------------------------ CRC-32C */

static uint32_t crc_table[256];
static bool crc_ready;

/* crc_init - the table for the Castagnoli polynomial (reflected) */
static void
crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = true;
}

/* crc32c - continue crc (start with 0) over p[0..len) */
static uint32_t
crc32c(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *u = p;

	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (len-- > 0)
		crc = crc_table[(crc ^ *u++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------------- big-endian */

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t
get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* --------------------------------------------------------- names, paths */

const char *
queue_name_str(enum queue_name q)
{
	if ((unsigned)q >= QUEUE_COUNT)
		return "?";
	return queue_names[q];
}

bool
queue_name_parse(const char *s, enum queue_name *q_r)
{
	unsigned q;

	for (q = 0; q < QUEUE_COUNT; q++) {
		if (strcmp(s, queue_names[q]) == 0) {
			*q_r = (enum queue_name)q;
			return true;
		}
	}
	return false;
}

const char *
queue_rcpt_state_str(enum queue_rcpt_state s)
{
	if ((unsigned)s >= QUEUE_RCPT_STATE_COUNT)
		return "?";
	return rcpt_state_names[s];
}

/* queue_dir_path - "$queue_dir/<queue>" into out (cleared) */
static int
queue_dir_path(const char *queue_dir, enum queue_name q, struct str *out)
{
	str_clear(out);
	if ((unsigned)q >= QUEUE_COUNT) {
		errno = EINVAL;
		return -1;
	}
	return str_printf(out, "%s/%s", queue_dir, queue_names[q]);
}

/* queue_file_path - the one place that turns an ID into a path */
int
queue_file_path(const char *queue_dir, enum queue_name q, const char *id,
    struct str *out)
{
	str_clear(out);
	if (id == NULL || !queue_id_ok(id, strlen(id)) ||
	    (unsigned)q >= QUEUE_COUNT) {
		errno = EINVAL;
		return -1;
	}
	/* Flat layout; hashed subdirectories would be added here. */
	return str_printf(out, "%s/%s/%s", queue_dir, queue_names[q], id);
}

/* queue_dirs_create - the spool tree */
int
queue_dirs_create(const char *queue_dir, mode_t mode)
{
	struct str *path = str_new(0, 0);
	unsigned q;
	int ret = 0;

	for (q = 0; q < QUEUE_COUNT && ret == 0; q++) {
		(void)queue_dir_path(queue_dir, (enum queue_name)q, path);
		ret = mkdir_p(str_c(path), mode);
	}
	str_free(&path);
	return ret;
}

/* queue_scan - each well-formed ID in a queue */
int
queue_scan(const char *queue_dir, enum queue_name q,
    int (*cb)(const char *id, void *ctx), void *ctx)
{
	struct str *path = str_new(0, 0);
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (queue_dir_path(queue_dir, q, path) < 0 ||
	    (dir = opendir(str_c(path))) == NULL) {
		str_free(&path);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!queue_id_ok(de->d_name, strlen(de->d_name)))
			continue;
		if ((ret = cb(de->d_name, ctx)) != 0)
			break;
	}
	(void)closedir(dir);
	str_free(&path);
	return ret;
}

/* fsync_queue_dir - fsync "$queue_dir/<queue>" */
static int
fsync_queue_dir(const char *queue_dir, enum queue_name q)
{
	struct str *path = str_new(0, 0);
	int ret;

	ret = queue_dir_path(queue_dir, q, path) < 0 ? -1 :
	    fsync_dir(str_c(path));
	str_free(&path);
	return ret;
}

/* rename_id - rename ID between queues and fsync both directories */
static int
rename_id(const char *queue_dir, enum queue_name from, enum queue_name to,
    const char *id, const char **error_r)
{
	struct str *a = str_new(0, 0), *b = str_new(0, 0);
	int ret = -1;

	if (queue_file_path(queue_dir, from, id, a) < 0 ||
	    queue_file_path(queue_dir, to, id, b) < 0) {
		*error_r = "bad queue ID or queue";
		goto out;
	}
	/*
	 * XXX rename() replaces an existing target. IDs are unique, so a
	 * target can only exist after operator meddling.
	 */
	if (rename(str_c(a), str_c(b)) < 0) {
		*error_r = "rename";
		goto out;
	}
	if (fsync_queue_dir(queue_dir, to) < 0 ||
	    fsync_queue_dir(queue_dir, from) < 0) {
		*error_r = "fsync directory";
		goto out;
	}
	ret = 0;
out:
	str_free(&a);
	str_free(&b);
	return ret;
}

/* queue_file_rename - move by name */
int
queue_file_rename(const char *queue_dir, enum queue_name from,
    enum queue_name to, const char *id, const char **error_r)
{
	return rename_id(queue_dir, from, to, id, error_r);
}

/* ------------------------------------------------------------ tokens */

int
queue_file_token(const char *id, size_t index, struct str *out)
{
	str_clear(out);
	if (id == NULL || !queue_id_ok(id, strlen(id))) {
		errno = EINVAL;
		return -1;
	}
	return str_printf(out, "%s/%zu", id, index);
}

bool
queue_file_token_parse(const char *p, size_t len, char id_r[QUEUE_ID_SIZE],
    size_t *index_r)
{
	unsigned long idx;

	if (len < QUEUE_ID_LEN + 2 || p[QUEUE_ID_LEN] != '/' ||
	    !queue_id_ok(p, QUEUE_ID_LEN))
		return false;
	/* no leading zeros: one token, one spelling */
	if (len > QUEUE_ID_LEN + 2 && p[QUEUE_ID_LEN + 1] == '0')
		return false;
	if (!str_to_ulong(p + QUEUE_ID_LEN + 1, len - QUEUE_ID_LEN - 1,
	    QUEUE_FILE_RCPT_MAX - 1, &idx))
		return false;
	memcpy(id_r, p, QUEUE_ID_LEN);
	id_r[QUEUE_ID_LEN] = '\0';
	*index_r = idx;
	return true;
}

/* ------------------------------------------------------ field checks */

/* text_ok - a text field: no NUL, bounded */
static bool
text_ok(const char *s, size_t len)
{
	return len <= QUEUE_FILE_TEXT_MAX && memchr(s, '\0', len) == NULL;
}

/* attr_name_ok - [A-Za-z0-9_.-]+ */
static bool
attr_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* address_ok - p[0..len) is a canonical address (null allowed if sender) */
static bool
address_ok(const char *p, size_t len, bool sender, struct address *tmp)
{
	unsigned flags = ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NO_DOMAIN |
	    (sender ? ADDRESS_ALLOW_NULL : 0);

	return address_parse_mailbox(p, len, flags, tmp) == ADDRESS_OK;
}

/* orcpt_ok - "type;value" */
static bool
orcpt_ok(const char *p, size_t len)
{
	const char *semi = memchr(p, ';', len);

	return semi != NULL && semi != p && text_ok(p, len);
}

/* ------------------------------------------------------------ writer */

enum writer_phase {
	W_START,		/* nothing written */
	W_ENVELOPE,		/* envelope written; recipients may follow */
	W_CONTENT,		/* 'M' written, content streaming */
	W_TAIL,			/* recipients after the content */
};

struct queue_file_writer {
	char id[QUEUE_ID_SIZE];
	char *queue_dir;
	struct str *path;
	int fd;
	unsigned char *buf;
	size_t buf_len;
	uint64_t flushed;		/* file offset of buf[0] */
	uint32_t env_crc;
	uint32_t content_crc;
	uint64_t content_len;
	uint64_t m_off;			/* offset of the 'M' record */
	enum writer_phase phase;
	size_t nrcpt;
	bool failed;			/* sticky: an earlier call failed */
	struct address *tmp;
};

/* w_flush - write out the buffer */
static int
w_flush(struct queue_file_writer *w)
{
	size_t done = 0;

	while (done < w->buf_len) {
		ssize_t n = write(w->fd, w->buf + done, w->buf_len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	w->flushed += w->buf_len;
	w->buf_len = 0;
	return 0;
}

/* w_put - append octets; env: count them in the envelope CRC */
static int
w_put(struct queue_file_writer *w, const void *p, size_t len, bool env)
{
	const unsigned char *u = p;

	if (env)
		w->env_crc = crc32c(w->env_crc, p, len);
	while (len > 0) {
		size_t n = QF_BUF_SIZE - w->buf_len;

		if (n > len)
			n = len;
		memcpy(w->buf + w->buf_len, u, n);
		w->buf_len += n;
		u += n;
		len -= n;
		if (w->buf_len == QF_BUF_SIZE && w_flush(w) < 0)
			return -1;
	}
	return 0;
}

/* w_rec - one envelope record */
static int
w_rec(struct queue_file_writer *w, char type, const void *p, size_t len)
{
	unsigned char hdr[REC_HDR_LEN];

	hdr[0] = (unsigned char)type;
	put_u32(hdr + 1, (uint32_t)len);
	if (w_put(w, hdr, sizeof(hdr), true) < 0 || w_put(w, p, len, true) < 0)
		return -1;
	return 0;
}

static int
w_rec_str(struct queue_file_writer *w, char type, const char *s)
{
	return s == NULL ? 0 : w_rec(w, type, s, strlen(s));
}

static int
w_rec_u8(struct queue_file_writer *w, char type, unsigned v)
{
	unsigned char b = (unsigned char)v;

	return w_rec(w, type, &b, 1);
}

/* w_fail - mark the writer failed and return -1 */
static int
w_fail(struct queue_file_writer *w, const char **error_r, const char *why)
{
	int saved = errno;

	w->failed = true;
	*error_r = why;
	errno = saved;
	return -1;
}

/* writer_free - close, optionally unlink, free */
static void
writer_free(struct queue_file_writer **wp, bool unlink_file)
{
	struct queue_file_writer *w = *wp;
	int saved = errno;

	if (w == NULL)
		return;
	if (unlink_file)
		(void)unlink(str_c(w->path));
	if (w->fd >= 0)
		(void)close(w->fd);
	free(w->queue_dir);
	str_free(&w->path);
	free(w->buf);
	address_free(&w->tmp);
	free(w);
	*wp = NULL;
	errno = saved;
}

/* queue_file_create - O_EXCL in incoming/ */
struct queue_file_writer *
queue_file_create(const char *queue_dir, char id_r[QUEUE_ID_SIZE],
    const char **error_r)
{
	struct queue_file_writer *w = xmalloc(sizeof(*w));
	int tries;

	w->fd = -1;
	w->queue_dir = xstrdup(queue_dir);
	w->path = str_new(0, 0);
	w->buf = xmalloc(QF_BUF_SIZE);
	w->tmp = address_new();
	/* IDs are unique; retry only to survive a clock step back. */
	for (tries = 0; tries < 3; tries++) {
		queue_id_new(w->id);
		if (queue_file_path(queue_dir, QUEUE_INCOMING, w->id,
		    w->path) < 0) {
			*error_r = "queue ID";
			goto fail;
		}
		w->fd = open(str_c(w->path),
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, QF_MODE);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		*error_r = "create queue file";
		goto fail;
	}
	/* Held until commit/abort: recovery sees a live writer. */
	if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
		*error_r = "lock queue file";
		(void)unlink(str_c(w->path));
		goto fail;
	}
	memcpy(id_r, w->id, QUEUE_ID_SIZE);
	return w;
fail:
	writer_free(&w, false);
	return NULL;
}

const char *
queue_file_writer_id(const struct queue_file_writer *w)
{
	return w->id;
}

uint64_t
queue_file_content_size(const struct queue_file_writer *w)
{
	return w->content_len;
}

/* queue_file_write_envelope - the envelope records */
int
queue_file_write_envelope(struct queue_file_writer *w,
    const struct queue_envelope *env, const char **error_r)
{
	const char *texts[] = {
		env->envid, env->client_name, env->client_addr, env->helo,
		env->protocol, env->auth_user,
	};
	unsigned char b8[8];
	uint64_t us;
	size_t i;

	if (w->failed || w->phase != W_START) {
		errno = EINVAL;
		return w_fail(w, error_r, "envelope written out of order");
	}
	if (env->sender == NULL || strlen(env->sender) > QUEUE_FILE_TEXT_MAX ||
	    !address_ok(env->sender, strlen(env->sender), true, w->tmp)) {
		errno = EINVAL;
		return w_fail(w, error_r, "bad sender");
	}
	for (i = 0; i < N_ELEMENTS(texts); i++) {
		if (texts[i] != NULL && strlen(texts[i]) > QUEUE_FILE_TEXT_MAX) {
			errno = EINVAL;
			return w_fail(w, error_r, "envelope field too long");
		}
	}
	if ((unsigned)env->ret > SMTP_RET_HDRS ||
	    (unsigned)env->body > SMTP_BODY_BINARYMIME ||
	    env->nattrs > QUEUE_FILE_ATTR_MAX || env->arrival.tv_sec < 0 ||
	    env->arrival.tv_usec < 0 || env->arrival.tv_usec >= 1000000) {
		errno = EINVAL;
		return w_fail(w, error_r, "bad envelope field");
	}
	for (i = 0; i < env->nattrs; i++) {
		const struct queue_attr *a = &env->attrs[i];

		if (a->name == NULL || a->value == NULL ||
		    !attr_name_ok(a->name, strlen(a->name)) ||
		    strlen(a->name) + 1 + strlen(a->value) > QUEUE_FILE_TEXT_MAX) {
			errno = EINVAL;
			return w_fail(w, error_r, "bad attribute");
		}
	}
	if (w_put(w, qf_magic, sizeof(qf_magic), true) < 0)
		goto io;
	put_u32(b8, QUEUE_FILE_VERSION);
	if (w_rec(w, REC_VERSION, b8, 4) < 0)
		goto io;
	us = (uint64_t)env->arrival.tv_sec * 1000000u +
	    (uint64_t)env->arrival.tv_usec;
	put_u64(b8, us);
	if (w_rec(w, REC_TIME, b8, 8) < 0 ||
	    w_rec_str(w, REC_SENDER, env->sender) < 0 ||
	    w_rec_str(w, REC_ENVID, env->envid) < 0 ||
	    (env->ret != SMTP_RET_NONE && w_rec_u8(w, REC_RET, env->ret) < 0) ||
	    (env->body != SMTP_BODY_NONE &&
	    w_rec_u8(w, REC_BODY, env->body) < 0) ||
	    (env->smtputf8 && w_rec(w, REC_SMTPUTF8, "", 0) < 0) ||
	    w_rec_str(w, REC_CLIENT_NAME, env->client_name) < 0 ||
	    w_rec_str(w, REC_CLIENT_ADDR, env->client_addr) < 0 ||
	    w_rec_str(w, REC_HELO, env->helo) < 0 ||
	    w_rec_str(w, REC_PROTOCOL, env->protocol) < 0 ||
	    w_rec_str(w, REC_AUTH_USER, env->auth_user) < 0)
		goto io;
	for (i = 0; i < env->nattrs; i++) {
		struct str *s = str_new(0, 0);
		int r;

		(void)str_printf(s, "%s=%s", env->attrs[i].name,
		    env->attrs[i].value);
		r = w_rec(w, REC_ATTR, str_c(s), str_len(s));
		str_free(&s);
		if (r < 0)
			goto io;
	}
	w->phase = W_ENVELOPE;
	return 0;
io:
	return w_fail(w, error_r, "write queue file");
}

/* queue_file_add_rcpt - 'r' [ 'o' ] [ 'n' ] [ 'O' ] */
int
queue_file_add_rcpt(struct queue_file_writer *w,
    const struct queue_rcpt *rcpt, const char **error_r)
{
	size_t alen;

	if (w->failed || w->phase == W_START) {
		errno = EINVAL;
		return w_fail(w, error_r, "recipient before envelope");
	}
	if (w->nrcpt >= QUEUE_FILE_RCPT_MAX) {
		/* Not sticky: the caller may refuse this one recipient. */
		*error_r = "too many recipients";
		errno = E2BIG;
		return -1;
	}
	alen = rcpt->address != NULL ? strlen(rcpt->address) : 0;
	if (rcpt->address == NULL || alen > QUEUE_FILE_TEXT_MAX ||
	    !address_ok(rcpt->address, alen, false, w->tmp) ||
	    (rcpt->original != NULL && !text_ok(rcpt->original,
	    strlen(rcpt->original))) ||
	    (rcpt->orcpt != NULL && (rcpt->orcpt_type == NULL ||
	    strlen(rcpt->orcpt_type) + 1 + strlen(rcpt->orcpt) >
	    QUEUE_FILE_TEXT_MAX || strchr(rcpt->orcpt_type, ';') != NULL ||
	    rcpt->orcpt_type[0] == '\0')) ||
	    (rcpt->notify & ~(unsigned)(SMTP_NOTIFY_NEVER |
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) != 0) {
		/* Not sticky either: nothing was written. */
		*error_r = "bad recipient";
		errno = EINVAL;
		return -1;
	}
	if (w->phase == W_CONTENT)
		w->phase = W_TAIL;
	if (w_rec(w, REC_RCPT, rcpt->address, alen) < 0)
		goto io;
	if (rcpt->orcpt != NULL) {
		struct str *s = str_new(0, 0);
		int r;

		(void)str_printf(s, "%s;%s", rcpt->orcpt_type, rcpt->orcpt);
		r = w_rec(w, REC_ORCPT, str_c(s), str_len(s));
		str_free(&s);
		if (r < 0)
			goto io;
	}
	if (rcpt->notify != 0 && w_rec_u8(w, REC_NOTIFY, rcpt->notify) < 0)
		goto io;
	if (w_rec_str(w, REC_ORIG_RCPT, rcpt->original) < 0)
		goto io;
	w->nrcpt++;
	return 0;
io:
	return w_fail(w, error_r, "write queue file");
}

/* w_start_content - the 'M' record with a placeholder length */
static int
w_start_content(struct queue_file_writer *w)
{
	unsigned char rec[REC_HDR_LEN + 8];

	rec[0] = REC_CONTENT;
	put_u32(rec + 1, 8);
	put_u64(rec + REC_HDR_LEN, CONTENT_UNSET);
	w->m_off = w->flushed + w->buf_len;
	if (w_put(w, rec, sizeof(rec), false) < 0)
		return -1;
	w->phase = W_CONTENT;
	return 0;
}

/* queue_file_write_content - stream message octets */
int
queue_file_write_content(struct queue_file_writer *w, const void *data,
    size_t len, const char **error_r)
{
	if (w->failed || w->phase == W_START || w->phase == W_TAIL) {
		errno = EINVAL;
		return w_fail(w, error_r, "content written out of order");
	}
	if (w->phase == W_ENVELOPE && w_start_content(w) < 0)
		return w_fail(w, error_r, "write queue file");
	w->content_crc = crc32c(w->content_crc, data, len);
	w->content_len += len;
	if (w_put(w, data, len, false) < 0)
		return w_fail(w, error_r, "write queue file");
	return 0;
}

static void
commit_step(int step)
{
	if (queue_file_commit_hook != NULL)
		queue_file_commit_hook(step);
}

/* pwrite_all - pwrite with retries */
static int
pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	const unsigned char *u = p;

	while (len > 0) {
		ssize_t n = pwrite(fd, u, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		u += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * name_synced_with_file - does an fsync of a new file on fd's file system
 * also make the file's directory entry durable? On ext4 (the journal
 * commit the fsync forces holds the create; without a journal ext4 syncs
 * the parent of a new entry itself), xfs (the log force covers the create
 * transaction, directory and inode together) and btrfs (the fsync logs a
 * new inode's names) it does, and a separate directory fsync would cost
 * one more cache flush per message. Anywhere else: false, and the caller
 * fsyncs the directory. XXX ext2 has ext4's magic number; ext4's driver
 * serves it on current kernels, the old ext2 driver does not sync the
 * parent.
 */
static bool
name_synced_with_file(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return false;
	switch ((unsigned long)sfs.f_type) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
		return true;
	default:
		return false;
	}
}

/* queue_file_commit - make it durable, then visible */
int
queue_file_commit(struct queue_file_writer **wp, enum queue_name target,
    const char **error_r)
{
	struct queue_file_writer *w = *wp;
	unsigned char b8[8], end[REC_HDR_LEN + END_LEN];
	struct str *target_path;
	const char *why;
	int ret;

	if (w->failed || w->phase == W_START || w->nrcpt == 0 ||
	    (target != QUEUE_ACTIVE && target != QUEUE_HOLD)) {
		*error_r = w->failed ? "earlier write failed" :
		    w->phase == W_START ? "no envelope" :
		    w->nrcpt == 0 ? "no recipients" : "bad target queue";
		writer_free(wp, true);
		errno = EINVAL;
		return -1;
	}
	commit_step(1);
	if (w->phase == W_ENVELOPE && w_start_content(w) < 0) {
		why = "write queue file";
		goto fail;
	}
	if (w_flush(w) < 0) {
		why = "write queue file";
		goto fail;
	}
	put_u64(b8, w->content_len);
	if (pwrite_all(w->fd, b8, 8, w->m_off + REC_HDR_LEN) < 0) {
		why = "write queue file";
		goto fail;
	}
	commit_step(2);
	end[0] = REC_END;
	put_u32(end + 1, END_LEN);
	put_u64(end + REC_HDR_LEN, w->content_len);
	put_u32(end + REC_HDR_LEN + 8, (uint32_t)w->nrcpt);
	put_u32(end + REC_HDR_LEN + 12, w->env_crc);
	put_u32(end + REC_HDR_LEN + 16, w->content_crc);
	if (pwrite_all(w->fd, end, sizeof(end), w->flushed) < 0) {
		why = "write queue file";
		goto fail;
	}
	commit_step(3);
	if (fsync(w->fd) < 0) {
		why = "fsync queue file";
		goto fail;
	}
	/*
	 * Into active/: the message is durable once its incoming/ name is
	 * (see COMMIT AND REMOVAL in queue_file.h). The fsync above was one
	 * journal commit that took in the creation of that name on the
	 * file systems name_synced_with_file() knows; elsewhere incoming/
	 * is fsync'd. The rename below is not waited for: if a crash undoes
	 * it, the complete file is back in incoming/ and recovery finishes
	 * the commit. Recovery commits into active/ only, so hold/ keeps
	 * the synced rename.
	 */
	if (target == QUEUE_ACTIVE && !name_synced_with_file(w->fd) &&
	    fsync_queue_dir(w->queue_dir, QUEUE_INCOMING) < 0) {
		why = "fsync incoming directory";
		goto fail;
	}
	commit_step(4);
	target_path = str_new(0, 0);
	(void)queue_file_path(w->queue_dir, target, w->id, target_path);
	ret = rename(str_c(w->path), str_c(target_path));
	str_free(&target_path);
	if (ret < 0) {
		why = "rename queue file";
		goto fail;
	}
	commit_step(5);
	if (target != QUEUE_ACTIVE &&
	    fsync_queue_dir(w->queue_dir, target) < 0) {
		/* Renamed; only a directory fsync failed. Leave the file. */
		*error_r = "fsync queue directory";
		writer_free(wp, false);
		return -1;
	}
	/*
	 * No fsync of incoming/ after the rename (step 6; the number stays
	 * so that crash tests keep their meaning). The rename is one
	 * metadata operation: on ext4, xfs and btrfs it is one journal
	 * transaction, so whatever makes active/ID (or hold/ID) durable
	 * makes the removal of incoming/ID durable as well. Where a file
	 * system could bring the old name back after a crash, it comes back
	 * as a second name of the committed inode: queue_file_recover()
	 * removes such a stale incoming/ name (it never commits an ID that
	 * another queue holds), and queue_file_remove()/queue_removals_sync()
	 * fsync incoming/ before a removal is made durable, so a message
	 * that is gone can never come back through its old incoming/ name.
	 */
	commit_step(6);
	commit_step(7);
	writer_free(wp, false);
	return 0;
fail:
	*error_r = why;
	writer_free(wp, true);
	return -1;
}

/* queue_file_abort - throw the file away */
void
queue_file_abort(struct queue_file_writer **wp)
{
	writer_free(wp, true);
}

/* ------------------------------------------------------------ reader */

struct queue_file {
	char id[QUEUE_ID_SIZE];
	char *queue_dir;
	enum queue_name queue;
	int fd;
	unsigned flags;
	uint64_t file_size;
	struct queue_envelope env;
	struct queue_attr *attrs;
	struct queue_rcpt *rcpts;
	size_t nrcpt, rcpt_cap;
	char **reasons;			/* owned reason per recipient */
	char **strs;			/* every other owned string */
	size_t nstrs, strs_cap;
	uint64_t content_off, content_len;
	uint32_t content_crc;
	uint64_t log_start, log_end;	/* the valid status log */
	size_t nlog;			/* status records replayed */
	bool unsynced;			/* status records written, not fdatasync'd */
};

/* A small pread() reader over the file. */
struct rd {
	int fd;
	uint64_t off;		/* file offset of buf[0] */
	uint64_t size;
	unsigned char buf[8192];
	size_t len, pos;
	uint32_t crc;
	bool crc_on;
};

/* rd_read - exactly n octets, or -1 (EBADMSG at EOF) */
static int
rd_read(struct rd *r, void *dst, size_t n)
{
	unsigned char *d = dst;

	while (n > 0) {
		size_t k;

		if (r->pos == r->len) {
			ssize_t got;

			r->off += r->len;
			r->len = r->pos = 0;
			do {
				got = pread(r->fd, r->buf, sizeof(r->buf),
				    (off_t)r->off);
			} while (got < 0 && errno == EINTR);
			if (got < 0)
				return -1;
			if (got == 0) {
				errno = EBADMSG;
				return -1;
			}
			r->len = (size_t)got;
		}
		k = MIN(n, r->len - r->pos);
		if (r->crc_on)
			r->crc = crc32c(r->crc, r->buf + r->pos, k);
		memcpy(d, r->buf + r->pos, k);
		r->pos += k;
		d += k;
		n -= k;
	}
	return 0;
}

static uint64_t
rd_tell(const struct rd *r)
{
	return r->off + r->pos;
}

/* rd_seek - continue at an absolute offset */
static void
rd_seek(struct rd *r, uint64_t off)
{
	if (off >= r->off && off <= r->off + r->len)
		r->pos = (size_t)(off - r->off);
	else {
		r->off = off;
		r->len = r->pos = 0;
	}
}

/* qf_str - keep an owned NUL-terminated copy */
static const char *
qf_str(struct queue_file *qf, const void *p, size_t len)
{
	char *s = xmemdup(p, len);

	if (qf->nstrs == qf->strs_cap) {
		qf->strs_cap = qf->strs_cap == 0 ? 16 : qf->strs_cap * 2;
		qf->strs = xreallocarray(qf->strs, qf->strs_cap, sizeof(char *));
	}
	qf->strs[qf->nstrs++] = s;
	return s;
}

/* rec_max - the largest data length a record type may have, or -1 */
static long
rec_max(int type)
{
	switch (type) {
	case REC_VERSION:
		return 4;
	case REC_TIME:
	case REC_CONTENT:
		return 8;
	case REC_RET:
	case REC_BODY:
	case REC_NOTIFY:
		return 1;
	case REC_SMTPUTF8:
		return 0;
	case REC_END:
		return END_LEN;
	case REC_SENDER:
	case REC_ENVID:
	case REC_CLIENT_NAME:
	case REC_CLIENT_ADDR:
	case REC_HELO:
	case REC_PROTOCOL:
	case REC_AUTH_USER:
	case REC_ATTR:
	case REC_RCPT:
	case REC_ORCPT:
	case REC_ORIG_RCPT:
		return QUEUE_FILE_TEXT_MAX;
	}
	return -1;
}

/* fixed-length record types must have exactly their length */
static bool
rec_fixed(int type)
{
	return type == REC_VERSION || type == REC_TIME || type == REC_CONTENT ||
	    type == REC_RET || type == REC_BODY || type == REC_NOTIFY ||
	    type == REC_SMTPUTF8 || type == REC_END;
}

/* add_rcpt_slot - a new recipient entry */
static struct queue_rcpt *
add_rcpt_slot(struct queue_file *qf)
{
	struct queue_rcpt *r;

	if (qf->nrcpt == qf->rcpt_cap) {
		qf->rcpt_cap = qf->rcpt_cap == 0 ? 8 : qf->rcpt_cap * 2;
		qf->rcpts = xreallocarray(qf->rcpts, qf->rcpt_cap,
		    sizeof(*qf->rcpts));
	}
	r = &qf->rcpts[qf->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->reason = "";
	return r;
}

/* rcpt record flags for "at most once per recipient" */
#define SEEN_ORCPT	0x1
#define SEEN_NOTIFY	0x2
#define SEEN_ORIG	0x4

/*
 * read_records - the envelope, recipients, content and end record.
 * Returns 0 or -1 with errno (EBADMSG for anything malformed).
 */
static int
read_records(struct queue_file *qf, struct rd *r, const char **error_r)
{
	unsigned char hdr[REC_HDR_LEN], magic[8], end[END_LEN];
	struct str *data = str_new(256, 0);
	struct address *tmp = address_new();
	enum { P_ENV, P_RCPT, P_TAIL } phase = P_ENV;
	unsigned seen_env = 0, seen_rcpt = 0;
	size_t nattrs = 0, attrs_cap = 0;
	bool have_content = false, rcpt_open = false;
	int ret = -1;

	r->crc_on = true;
	if (rd_read(r, magic, sizeof(magic)) < 0) {
		*error_r = "truncated before magic";
		goto out;
	}
	if (memcmp(magic, qf_magic, sizeof(magic)) != 0) {
		*error_r = "not a queue file";
		errno = EBADMSG;
		goto out;
	}
	for (;;) {
		int type;
		uint32_t len;
		long max;
		const char *d;

		r->crc_on = false;
		if (rd_read(r, hdr, 1) < 0) {
			*error_r = "truncated (no end record)";
			goto out;
		}
		type = hdr[0];
		/* The 'M' and 'X' records are outside the envelope CRC. */
		if (type != REC_CONTENT && type != REC_END) {
			r->crc = crc32c(r->crc, hdr, 1);
			r->crc_on = true;
		}
		if (rd_read(r, hdr + 1, 4) < 0) {
			*error_r = "truncated record header";
			goto out;
		}
		len = get_u32(hdr + 1);
		max = rec_max(type);
		if (max < 0) {
			*error_r = "unknown record type";
			errno = EBADMSG;
			goto out;
		}
		if (len > (uint32_t)max || (rec_fixed(type) && len != (uint32_t)max)) {
			*error_r = "bad record length";
			errno = EBADMSG;
			goto out;
		}
		if (len > r->size - rd_tell(r)) {
			*error_r = "truncated record";
			errno = EBADMSG;
			goto out;
		}
		str_clear(data);
		if (rd_read(r, str_reserve(data, len), len) < 0) {
			*error_r = "truncated record";
			goto out;
		}
		str_commit(data, len);
		d = str_c(data);
		/* Text records hold no NUL. */
		if (max == QUEUE_FILE_TEXT_MAX && memchr(d, '\0', len) != NULL) {
			*error_r = "NUL in text record";
			errno = EBADMSG;
			goto out;
		}
		if ((seen_env & 1u) == 0 && type != REC_VERSION) {
			*error_r = "version record missing";
			errno = EBADMSG;
			goto out;
		}
		switch (type) {
		case REC_VERSION:
			if (seen_env != 0 ||
			    get_u32((const unsigned char *)d) != QUEUE_FILE_VERSION) {
				*error_r = "bad version record";
				errno = EBADMSG;
				goto out;
			}
			seen_env |= 1u;
			continue;
		case REC_TIME: case REC_SENDER: case REC_ENVID: case REC_RET:
		case REC_BODY: case REC_SMTPUTF8: case REC_CLIENT_NAME:
		case REC_CLIENT_ADDR: case REC_HELO: case REC_PROTOCOL:
		case REC_AUTH_USER: {
			unsigned bit = 1u << (strchr("VTSERBUcahpu", type) -
			    "VTSERBUcahpu");

			if (phase != P_ENV || (seen_env & bit) != 0) {
				*error_r = "envelope record out of place";
				errno = EBADMSG;
				goto out;
			}
			seen_env |= bit;
			break;
		}
		case REC_ATTR:
			if (phase != P_ENV) {
				*error_r = "attribute out of place";
				errno = EBADMSG;
				goto out;
			}
			break;
		default:
			break;
		}
		switch (type) {
		case REC_TIME: {
			uint64_t us = get_u64((const unsigned char *)d);

			qf->env.arrival.tv_sec = (time_t)(us / 1000000u);
			qf->env.arrival.tv_usec = (suseconds_t)(us % 1000000u);
			break;
		}
		case REC_SENDER:
			if (!address_ok(d, len, true, tmp)) {
				*error_r = "bad sender";
				errno = EBADMSG;
				goto out;
			}
			qf->env.sender = qf_str(qf, d, len);
			break;
		case REC_ENVID:
			qf->env.envid = qf_str(qf, d, len);
			break;
		case REC_RET:
			if ((unsigned char)d[0] < SMTP_RET_FULL ||
			    (unsigned char)d[0] > SMTP_RET_HDRS) {
				*error_r = "bad RET";
				errno = EBADMSG;
				goto out;
			}
			qf->env.ret = (enum smtp_ret)(unsigned char)d[0];
			break;
		case REC_BODY:
			if ((unsigned char)d[0] < SMTP_BODY_7BIT ||
			    (unsigned char)d[0] > SMTP_BODY_BINARYMIME) {
				*error_r = "bad BODY";
				errno = EBADMSG;
				goto out;
			}
			qf->env.body = (enum smtp_body)(unsigned char)d[0];
			break;
		case REC_SMTPUTF8:
			qf->env.smtputf8 = true;
			break;
		case REC_CLIENT_NAME:
			qf->env.client_name = qf_str(qf, d, len);
			break;
		case REC_CLIENT_ADDR:
			qf->env.client_addr = qf_str(qf, d, len);
			break;
		case REC_HELO:
			qf->env.helo = qf_str(qf, d, len);
			break;
		case REC_PROTOCOL:
			qf->env.protocol = qf_str(qf, d, len);
			break;
		case REC_AUTH_USER:
			qf->env.auth_user = qf_str(qf, d, len);
			break;
		case REC_ATTR: {
			const char *eq = memchr(d, '=', len);
			const char *s;

			if (eq == NULL || !attr_name_ok(d, (size_t)(eq - d)) ||
			    nattrs >= QUEUE_FILE_ATTR_MAX) {
				*error_r = "bad attribute";
				errno = EBADMSG;
				goto out;
			}
			if (nattrs == attrs_cap) {
				attrs_cap = attrs_cap == 0 ? 8 : attrs_cap * 2;
				qf->attrs = xreallocarray(qf->attrs, attrs_cap,
				    sizeof(*qf->attrs));
			}
			s = qf_str(qf, d, len);
			qf->attrs[nattrs].name = qf_str(qf, d, (size_t)(eq - d));
			qf->attrs[nattrs].value = s + (eq - d) + 1;
			nattrs++;
			break;
		}
		case REC_RCPT:
			if (phase == P_ENV) {
				if ((seen_env & 0x7) != 0x7) {
					*error_r = "envelope incomplete";
					errno = EBADMSG;
					goto out;
				}
				phase = P_RCPT;
			}
			rcpt_open = true;
			if (qf->nrcpt >= QUEUE_FILE_RCPT_MAX) {
				*error_r = "too many recipients";
				errno = EBADMSG;
				goto out;
			}
			if (!address_ok(d, len, false, tmp)) {
				*error_r = "bad recipient";
				errno = EBADMSG;
				goto out;
			}
			add_rcpt_slot(qf)->address = qf_str(qf, d, len);
			seen_rcpt = 0;
			break;
		case REC_ORCPT:
		case REC_NOTIFY:
		case REC_ORIG_RCPT: {
			struct queue_rcpt *rc;
			unsigned bit = type == REC_ORCPT ? SEEN_ORCPT :
			    type == REC_NOTIFY ? SEEN_NOTIFY : SEEN_ORIG;

			if (!rcpt_open || (seen_rcpt & bit) != 0) {
				*error_r = "recipient record out of place";
				errno = EBADMSG;
				goto out;
			}
			seen_rcpt |= bit;
			rc = &qf->rcpts[qf->nrcpt - 1];
			if (type == REC_ORCPT) {
				const char *semi;
				const char *s;

				if (!orcpt_ok(d, len)) {
					*error_r = "bad ORCPT";
					errno = EBADMSG;
					goto out;
				}
				semi = memchr(d, ';', len);
				s = qf_str(qf, d, len);
				rc->orcpt_type = qf_str(qf, d, (size_t)(semi - d));
				rc->orcpt = s + (semi - d) + 1;
			} else if (type == REC_NOTIFY) {
				unsigned n = (unsigned char)d[0];

				if (n == 0 || (n & ~0x0fu) != 0 ||
				    ((n & SMTP_NOTIFY_NEVER) != 0 &&
				    n != SMTP_NOTIFY_NEVER)) {
					*error_r = "bad NOTIFY";
					errno = EBADMSG;
					goto out;
				}
				rc->notify = n;
			} else
				rc->original = qf_str(qf, d, len);
			break;
		}
		case REC_CONTENT: {
			uint64_t clen = get_u64((const unsigned char *)d);

			if (have_content || (seen_env & 0x7) != 0x7) {
				*error_r = have_content ? "second content record" :
				    "envelope incomplete";
				errno = EBADMSG;
				goto out;
			}
			rcpt_open = false;
			if (clen == CONTENT_UNSET ||
			    clen > r->size - rd_tell(r)) {
				*error_r = "content incomplete";
				errno = EBADMSG;
				goto out;
			}
			have_content = true;
			phase = P_TAIL;
			qf->content_off = rd_tell(r);
			qf->content_len = clen;
			rd_seek(r, qf->content_off + clen);
			break;
		}
		case REC_END:
			if (!have_content) {
				*error_r = "end record before content";
				errno = EBADMSG;
				goto out;
			}
			memcpy(end, d, END_LEN);
			if (qf->nrcpt == 0 || get_u64(end) != qf->content_len ||
			    get_u32(end + 8) != qf->nrcpt ||
			    CRC_BAD(get_u32(end + 12), r->crc)) {
				*error_r = "end record mismatch (corrupt)";
				errno = EBADMSG;
				goto out;
			}
			qf->content_crc = get_u32(end + 16);
			qf->log_start = rd_tell(r);
			ret = 0;
			goto out;
		}
	}
out:
	qf->env.attrs = qf->attrs;
	qf->env.nattrs = nattrs;
	str_free(&data);
	address_free(&tmp);
	return ret;
}

/* apply_status - one status change to recipient rc (stickiness enforced) */
static bool
status_allowed(const struct queue_rcpt *rc, enum queue_rcpt_state state)
{
	bool final = rc->state == QUEUE_RCPT_DELIVERED ||
	    rc->state == QUEUE_RCPT_BOUNCED;

	return !final || state == rc->state;
}

/* set_reason - replace recipient i's reason */
static void
set_reason(struct queue_file *qf, size_t i, const char *p, size_t len)
{
	free(qf->reasons[i]);
	qf->reasons[i] = xmemdup(p, len);
	qf->rcpts[i].reason = qf->reasons[i];
}

/*
 * read_log - replay the status records after the end record; stops at
 * the first one that is torn, fails its CRC or makes no sense, and
 * remembers where the valid log ends.
 */
static void
read_log(struct queue_file *qf, struct rd *r)
{
	unsigned char hdr[REC_HDR_LEN];
	struct str *data = str_new(256, 0);

	r->crc_on = false;
	rd_seek(r, qf->log_start);
	qf->log_end = qf->log_start;
	for (;;) {
		const unsigned char *d;
		uint32_t len, idx;
		size_t rlen;
		struct queue_rcpt *rc;
		unsigned state, flags;

		if (qf->log_end == r->size)
			break;
		if (rd_read(r, hdr, sizeof(hdr)) < 0 || hdr[0] != REC_STATUS)
			break;
		len = get_u32(hdr + 1);
		if (len < STATUS_MIN || len > STATUS_MIN + QUEUE_FILE_REASON_MAX ||
		    len > r->size - rd_tell(r))
			break;
		str_clear(data);
		if (rd_read(r, str_reserve(data, len), len) < 0)
			break;
		str_commit(data, len);
		d = (const unsigned char *)str_c(data);
		if (CRC_BAD(crc32c(crc32c(0, hdr, sizeof(hdr)), d, len - 4),
		    get_u32(d + len - 4)))
			break;
		idx = get_u32(d);
		state = d[4];
		flags = d[5];
		rlen = len - STATUS_MIN;
		if (idx >= qf->nrcpt || state >= QUEUE_RCPT_STATE_COUNT ||
		    (flags & ~(unsigned)QUEUE_RCPT_F_ALL) != 0 ||
		    memchr(d + STATUS_FIXED, '\0', rlen) != NULL)
			break;
		rc = &qf->rcpts[idx];
		if (status_allowed(rc, (enum queue_rcpt_state)state))
			rc->state = (enum queue_rcpt_state)state;
		rc->flags |= flags;
		rc->attempts = get_u32(d + 6);
		rc->next_attempt = (time_t)get_u64(d + 10);
		rc->updated = (time_t)get_u64(d + 18);
		set_reason(qf, idx, (const char *)d + STATUS_FIXED, rlen);
		qf->log_end = rd_tell(r);
		qf->nlog++;
	}
	str_free(&data);
}

/* queue_file_close - release */
void
queue_file_close(struct queue_file **qfp)
{
	struct queue_file *qf = *qfp;
	size_t i;

	if (qf == NULL)
		return;
	if (qf->fd >= 0)
		(void)close(qf->fd);	/* releases the flock */
	for (i = 0; i < qf->nstrs; i++)
		free(qf->strs[i]);
	for (i = 0; i < qf->nrcpt; i++)
		free(qf->reasons != NULL ? qf->reasons[i] : NULL);
	free(qf->strs);
	free(qf->reasons);
	free(qf->rcpts);
	free(qf->attrs);
	free(qf->queue_dir);
	free(qf);
	*qfp = NULL;
}

/* verify_content - CRC of the content region */
static int
verify_content(struct queue_file *qf, const char **error_r)
{
	unsigned char *buf = xmalloc(QF_BUF_SIZE);
	uint64_t off = 0;
	uint32_t crc = 0;
	int ret = -1;

	while (off < qf->content_len) {
		ssize_t n = queue_file_read_content(qf, buf, QF_BUF_SIZE, off);

		if (n < 0) {
			*error_r = "read queue file";
			goto out;
		}
		if (n == 0) {
			*error_r = "content truncated";
			errno = EBADMSG;
			goto out;
		}
		crc = crc32c(crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (CRC_BAD(crc, qf->content_crc)) {
		*error_r = "content checksum mismatch";
		errno = EBADMSG;
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* open_path - open and parse; no ID checks (callers did them) */
static struct queue_file *
open_file(const char *queue_dir, enum queue_name q, const char *id,
    unsigned flags, const char **error_r)
{
	struct queue_file *qf;
	struct str *path = str_new(0, 0);
	struct rd *r;
	struct stat st;
	int saved;

	if (queue_file_path(queue_dir, q, id, path) < 0) {
		*error_r = "bad queue ID or queue";
		str_free(&path);
		return NULL;
	}
	qf = xmalloc(sizeof(*qf));
	memcpy(qf->id, id, QUEUE_ID_SIZE);
	qf->queue_dir = xstrdup(queue_dir);
	qf->queue = q;
	qf->flags = flags;
	qf->fd = open(str_c(path), ((flags & QUEUE_FILE_UPDATE) != 0 ?
	    O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	str_free(&path);
	if (qf->fd < 0) {
		*error_r = "open queue file";
		goto fail;
	}
	if ((flags & QUEUE_FILE_UPDATE) != 0 &&
	    flock(qf->fd, LOCK_EX | LOCK_NB) < 0) {
		*error_r = "queue file is locked";
		goto fail;
	}
	if (fstat(qf->fd, &st) < 0) {
		*error_r = "stat queue file";
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = "not a regular file";
		errno = EBADMSG;
		goto fail;
	}
	qf->file_size = (uint64_t)st.st_size;
	r = xmalloc(sizeof(*r));
	r->fd = qf->fd;
	r->size = qf->file_size;
	if (read_records(qf, r, error_r) < 0) {
		free(r);
		goto fail;
	}
	qf->reasons = xcalloc(qf->nrcpt, sizeof(char *));
	read_log(qf, r);
	free(r);
	if ((flags & QUEUE_FILE_VERIFY) != 0 && verify_content(qf, error_r) < 0)
		goto fail;
	return qf;
fail:
	saved = errno;
	queue_file_close(&qf);
	errno = saved;
	return NULL;
}

/* queue_file_open - checked open */
struct queue_file *
queue_file_open(const char *queue_dir, enum queue_name q, const char *id,
    unsigned flags, const char **error_r)
{
	if (id == NULL || !queue_id_ok(id, strlen(id)) ||
	    (unsigned)q >= QUEUE_COUNT) {
		*error_r = "bad queue ID or queue";
		errno = EINVAL;
		return NULL;
	}
	return open_file(queue_dir, q, id, flags, error_r);
}

const char *
queue_file_id(const struct queue_file *qf)
{
	return qf->id;
}

enum queue_name
queue_file_queue(const struct queue_file *qf)
{
	return qf->queue;
}

const struct queue_envelope *
queue_file_envelope(const struct queue_file *qf)
{
	return &qf->env;
}

size_t
queue_file_rcpt_count(const struct queue_file *qf)
{
	return qf->nrcpt;
}

const struct queue_rcpt *
queue_file_rcpt(const struct queue_file *qf, size_t i)
{
	ASSERT(i < qf->nrcpt);
	return &qf->rcpts[i];
}

int
queue_file_fd(const struct queue_file *qf)
{
	return qf->fd;
}

uint64_t
queue_file_content_offset(const struct queue_file *qf)
{
	return qf->content_off;
}

uint64_t
queue_file_content_length(const struct queue_file *qf)
{
	return qf->content_len;
}

/* queue_file_read_content - pread within the content */
ssize_t
queue_file_read_content(const struct queue_file *qf, void *buf, size_t len,
    uint64_t off)
{
	ssize_t n;

	if (off >= qf->content_len)
		return 0;
	if (len > qf->content_len - off)
		len = (size_t)(qf->content_len - off);
	do {
		n = pread(qf->fd, buf, len, (off_t)(qf->content_off + off));
	} while (n < 0 && errno == EINTR);
	return n;
}

int
queue_file_verify(struct queue_file *qf, const char **error_r)
{
	return verify_content(qf, error_r);
}

/* update_append - append status records; fdatasync them when sync */
static int
update_append(struct queue_file *qf, const struct queue_rcpt_update *updates,
    size_t n, bool sync, const char **error_r)
{
	struct str *buf;
	enum queue_rcpt_state *state;
	uint32_t *attempts;
	unsigned char *rflags;
	int saved;
	struct stat st;
	time_t now = time(NULL);
	size_t i;
	int ret = -1;

	if ((qf->flags & QUEUE_FILE_UPDATE) == 0) {
		*error_r = "queue file not open for update";
		errno = EBADF;
		return -1;
	}
	if (n == 0)
		return 0;
	/* Validate the whole batch against the state it would produce. */
	state = xcalloc(qf->nrcpt, sizeof(*state));
	attempts = xcalloc(qf->nrcpt, sizeof(*attempts));
	rflags = xcalloc(qf->nrcpt, 1);
	for (i = 0; i < qf->nrcpt; i++) {
		state[i] = qf->rcpts[i].state;
		attempts[i] = qf->rcpts[i].attempts;
		rflags[i] = (unsigned char)qf->rcpts[i].flags;
	}
	buf = str_new(0, 0);
	for (i = 0; i < n; i++) {
		const struct queue_rcpt_update *u = &updates[i];
		unsigned char rec[REC_HDR_LEN + STATUS_FIXED], crc[4];
		size_t rlen = u->reason != NULL ? strlen(u->reason) : 0;
		struct queue_rcpt probe;

		if (u->index >= qf->nrcpt ||
		    (unsigned)u->state >= QUEUE_RCPT_STATE_COUNT ||
		    (u->flags & ~(unsigned)QUEUE_RCPT_F_ALL) != 0 ||
		    u->next_attempt < 0) {
			*error_r = "bad recipient update";
			errno = EINVAL;
			goto out;
		}
		probe.state = state[u->index];
		if (!status_allowed(&probe, u->state)) {
			*error_r = "recipient is already final";
			errno = EINVAL;
			goto out;
		}
		state[u->index] = u->state;
		if (u->attempted && attempts[u->index] < UINT32_MAX)
			attempts[u->index]++;
		if (rlen > QUEUE_FILE_REASON_MAX)
			rlen = QUEUE_FILE_REASON_MAX;
		rec[0] = REC_STATUS;
		put_u32(rec + 1, (uint32_t)(STATUS_MIN + rlen));
		put_u32(rec + REC_HDR_LEN, (uint32_t)u->index);
		rec[REC_HDR_LEN + 4] = (unsigned char)u->state;
		rflags[u->index] |= (unsigned char)u->flags;
		rec[REC_HDR_LEN + 5] = rflags[u->index];
		put_u32(rec + REC_HDR_LEN + 6, attempts[u->index]);
		put_u64(rec + REC_HDR_LEN + 10, (uint64_t)u->next_attempt);
		put_u64(rec + REC_HDR_LEN + 18, (uint64_t)now);
		put_u32(crc, crc32c(crc32c(0, rec, sizeof(rec)), u->reason != NULL ?
		    u->reason : "", rlen));
		(void)str_append(buf, rec, sizeof(rec));
		(void)str_append(buf, u->reason != NULL ? u->reason : "", rlen);
		(void)str_append(buf, crc, 4);
	}
	/* Cut off a torn record left by a crash during an earlier append. */
	if (fstat(qf->fd, &st) < 0) {
		*error_r = "stat queue file";
		goto out;
	}
	if ((uint64_t)st.st_size != qf->log_end &&
	    ftruncate(qf->fd, (off_t)qf->log_end) < 0) {
		*error_r = "truncate queue file";
		goto out;
	}
	if (pwrite_all(qf->fd, str_c(buf), str_len(buf), qf->log_end) < 0 ||
	    (sync && fdatasync(qf->fd) < 0)) {
		*error_r = "write queue file";
		saved = errno;
		/*
		 * Best effort: a torn tail fails its CRC and is cut away
		 * before the next append anyway, so a failure here loses
		 * nothing.
		 */
		if (ftruncate(qf->fd, (off_t)qf->log_end) < 0)
			log_debug(NULL, "queue file: truncating a failed status append: %m");
		errno = saved;
		goto out;
	}
	/* Durable: now apply in memory, in order. */
	for (i = 0; i < n; i++) {
		const struct queue_rcpt_update *u = &updates[i];
		struct queue_rcpt *rc = &qf->rcpts[u->index];
		size_t rlen = u->reason != NULL ? strlen(u->reason) : 0;

		rc->state = u->state;
		rc->flags |= u->flags;
		if (u->attempted && rc->attempts < UINT32_MAX)
			rc->attempts++;
		rc->next_attempt = u->next_attempt;
		rc->updated = now;
		set_reason(qf, u->index, u->reason != NULL ? u->reason : "",
		    MIN(rlen, (size_t)QUEUE_FILE_REASON_MAX));
	}
	qf->log_end += str_len(buf);
	qf->file_size = qf->log_end;
	qf->nlog += n;
	/* One fdatasync covers every earlier unsynced append too. */
	qf->unsynced = !sync;
	ret = 0;
out:
	free(state);
	free(attempts);
	free(rflags);
	str_free(&buf);
	return ret;
}

/* queue_file_update - append status records, fdatasync */
int
queue_file_update(struct queue_file *qf,
    const struct queue_rcpt_update *updates, size_t n, const char **error_r)
{
	if (n == 0)
		return queue_file_sync(qf, error_r);
	return update_append(qf, updates, n, true, error_r);
}

/* queue_file_update_nosync - append status records; the caller syncs or removes */
int
queue_file_update_nosync(struct queue_file *qf,
    const struct queue_rcpt_update *updates, size_t n, const char **error_r)
{
	if (n == 0)
		return 0;
	return update_append(qf, updates, n, false, error_r);
}

/* queue_file_sync - fdatasync status records written without it */
int
queue_file_sync(struct queue_file *qf, const char **error_r)
{
	if ((qf->flags & QUEUE_FILE_UPDATE) == 0) {
		*error_r = "queue file not open for update";
		errno = EBADF;
		return -1;
	}
	if (!qf->unsynced)
		return 0;
	if (fdatasync(qf->fd) < 0) {
		*error_r = "fdatasync queue file";
		return -1;
	}
	qf->unsynced = false;
	return 0;
}

/* queue_file_move - rename between queues; the handle follows */
int
queue_file_move(struct queue_file *qf, enum queue_name to,
    const char **error_r)
{
	if ((qf->flags & QUEUE_FILE_UPDATE) == 0) {
		*error_r = "queue file not open for update";
		errno = EBADF;
		return -1;
	}
	/* The file's state must be durable before it shows up elsewhere. */
	if (queue_file_sync(qf, error_r) < 0)
		return -1;
	if (to == qf->queue)
		return 0;
	if (rename_id(qf->queue_dir, qf->queue, to, qf->id, error_r) < 0) {
		/* After a rename with a failed fsync the file did move. */
		if (strcmp(*error_r, "rename") != 0)
			qf->queue = to;
		return -1;
	}
	qf->queue = to;
	return 0;
}

/* queue_file_unlink - unlink; durable after queue_removals_sync() */
int
queue_file_unlink(struct queue_file *qf, const char **error_r)
{
	struct str *path = str_new(0, 0);
	int ret = -1;

	if ((qf->flags & QUEUE_FILE_UPDATE) == 0) {
		*error_r = "queue file not open for update";
		errno = EBADF;
	} else if (queue_file_path(qf->queue_dir, qf->queue, qf->id, path) < 0 ||
	    unlink(str_c(path)) < 0)
		*error_r = "unlink queue file";
	else
		ret = 0;
	str_free(&path);
	return ret;
}

/* queue_file_remove - unlink and make it durable */
int
queue_file_remove(struct queue_file *qf, const char **error_r)
{
	if (queue_file_unlink(qf, error_r) < 0)
		return -1;
	return queue_removals_sync(qf->queue_dir, qf->queue, error_r);
}

/*
 * queue_removals_sync - make unlinks from queue q durable. incoming/ goes
 * first: queue_file_commit() does not fsync it after its rename, so on a
 * file system that could resurrect a renamed-away name this is what makes
 * sure that incoming/ID is durably gone before the last durable name of
 * the message is. (On ext4/xfs the first fsync commits the journal
 * transaction that holds both, and the second costs a cache flush.)
 */
int
queue_removals_sync(const char *queue_dir, enum queue_name q,
    const char **error_r)
{
	if (q != QUEUE_INCOMING &&
	    fsync_queue_dir(queue_dir, QUEUE_INCOMING) < 0) {
		*error_r = "fsync incoming directory";
		return -1;
	}
	if (fsync_queue_dir(queue_dir, q) < 0) {
		*error_r = "fsync directory";
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ recovery */

int
queue_file_complete(const char *queue_dir, enum queue_name q, const char *id,
    const char **error_r)
{
	struct queue_file *qf;

	qf = queue_file_open(queue_dir, q, id, QUEUE_FILE_VERIFY, error_r);
	if (qf == NULL)
		return errno == EBADMSG ? 0 : -1;
	queue_file_close(&qf);
	return 1;
}

int
queue_file_locate(const char *queue_dir, const char *id, enum queue_name *q_r)
{
	static const enum queue_name order[] = {
		QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_INCOMING,
		QUEUE_MAILDROP, QUEUE_CORRUPT,
	};
	struct str *path = str_new(0, 0);
	struct stat st;
	size_t i;
	int pass;

	if (id == NULL || !queue_id_ok(id, strlen(id))) {
		str_free(&path);
		errno = EINVAL;
		return -1;
	}
	/* Two passes: a file renamed between our lookups is seen the second time. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < N_ELEMENTS(order); i++) {
			(void)queue_file_path(queue_dir, order[i], id, path);
			if (lstat(str_c(path), &st) == 0) {
				*q_r = order[i];
				str_free(&path);
				return 0;
			}
		}
	}
	str_free(&path);
	errno = ENOENT;
	return -1;
}

/*
 * stale_incoming - is incoming/ID an old name of a file committed into
 * another queue (queue_file_commit() does not fsync incoming/ after its
 * rename, so a file system without atomic renames could bring the name
 * back after a crash)? If so, remove the name, fsync incoming/ and
 * return 1 (the message is committed). 0 when no other queue holds ID
 * (or no incoming/ID exists), -1 on errors (EEXIST: another queue holds
 * a different file under the same ID; both are left for an operator).
 */
static int
stale_incoming(const char *queue_dir, const char *id, const char **error_r)
{
	static const enum queue_name others[] = {
		QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
	};
	struct str *in = str_new(0, 0), *other = str_new(0, 0);
	struct stat st_in, st;
	size_t i;
	int ret = 0;

	if (queue_file_path(queue_dir, QUEUE_INCOMING, id, in) < 0) {
		*error_r = "bad queue ID";
		ret = -1;
		goto out;
	}
	if (lstat(str_c(in), &st_in) < 0)
		goto out;	/* ENOENT: the open below reports it */
	for (i = 0; i < N_ELEMENTS(others); i++) {
		(void)queue_file_path(queue_dir, others[i], id, other);
		if (lstat(str_c(other), &st) < 0)
			continue;
		if (st.st_dev != st_in.st_dev || st.st_ino != st_in.st_ino) {
			*error_r = "queue ID also in another queue (another file)";
			errno = EEXIST;
			ret = -1;
			goto out;
		}
		if (unlink(str_c(in)) < 0 && errno != ENOENT) {
			*error_r = "unlink stale incoming name";
			ret = -1;
		} else if (fsync_queue_dir(queue_dir, QUEUE_INCOMING) < 0) {
			*error_r = "fsync incoming directory";
			ret = -1;
		} else {
			ret = 1;
		}
		goto out;
	}
out:
	str_free(&in);
	str_free(&other);
	return ret;
}

int
queue_file_recover(const char *queue_dir, const char *id,
    enum queue_name target, const char **error_r)
{
	struct queue_file *qf;
	int saved, rc;

	if (target != QUEUE_ACTIVE && target != QUEUE_HOLD) {
		*error_r = "bad target queue";
		errno = EINVAL;
		return -1;
	}
	/*
	 * A stale second name first: its inode may be locked by qmgr in
	 * active/, which would look like a live writer below.
	 */
	if ((rc = stale_incoming(queue_dir, id, error_r)) != 0)
		return rc;
	/* The update lock fails with EWOULDBLOCK while the writer lives. */
	qf = queue_file_open(queue_dir, QUEUE_INCOMING, id,
	    QUEUE_FILE_UPDATE | QUEUE_FILE_VERIFY, error_r);
	if (qf == NULL)
		return errno == EBADMSG ? 0 : -1;
	if (fsync(qf->fd) < 0) {
		*error_r = "fsync queue file";
		goto fail;
	}
	if (queue_file_move(qf, target, error_r) < 0)
		goto fail;
	queue_file_close(&qf);
	return 1;
fail:
	saved = errno;
	queue_file_close(&qf);
	errno = saved;
	return -1;
}

/* ------------------------------------------------------------ dump */

/* dump_text - a field, escaped */
static void
dump_field(FILE *fp, const char *name, const char *value)
{
	struct str *s;

	if (value == NULL)
		return;
	s = str_new(0, 0);
	mem_printable(s, value, strlen(value), 1000);
	fprintf(fp, "%-14s %s\n", name, str_c(s));
	str_free(&s);
}

int
queue_file_dump(struct queue_file *qf, FILE *fp, unsigned flags)
{
	static const char *const rets[] = { NULL, "FULL", "HDRS" };
	static const char *const bodies[] = {
		NULL, "7BIT", "8BITMIME", "BINARYMIME"
	};
	const struct queue_envelope *env = &qf->env;
	struct str *s = str_new(0, 0);
	size_t i;
	char tbuf[64];
	struct tm tm;

	fprintf(fp, "%-14s %s\n", "queue_id", qf->id);
	fprintf(fp, "%-14s %s\n", "queue", queue_name_str(qf->queue));
	localtime_r(&env->arrival.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S %z", &tm);
	fprintf(fp, "%-14s %s (%06ld us)\n", "arrival", tbuf,
	    (long)env->arrival.tv_usec);
	fprintf(fp, "%-14s %" PRIu64 "\n", "size", qf->content_len);
	dump_field(fp, "sender", env->sender[0] != '\0' ? env->sender : "<>");
	dump_field(fp, "envid", env->envid);
	dump_field(fp, "ret", rets[env->ret]);
	dump_field(fp, "body", bodies[env->body]);
	if (env->smtputf8)
		dump_field(fp, "smtputf8", "yes");
	dump_field(fp, "client_name", env->client_name);
	dump_field(fp, "client_addr", env->client_addr);
	dump_field(fp, "helo", env->helo);
	dump_field(fp, "protocol", env->protocol);
	dump_field(fp, "auth_user", env->auth_user);
	for (i = 0; i < env->nattrs; i++) {
		str_clear(s);
		str_printf(s, "attr %s", env->attrs[i].name);
		dump_field(fp, str_c(s), env->attrs[i].value);
	}
	for (i = 0; i < qf->nrcpt; i++) {
		const struct queue_rcpt *rc = &qf->rcpts[i];

		str_clear(s);
		mem_printable(s, rc->address, strlen(rc->address), 1000);
		fprintf(fp, "recipient %zu   %s\n", i, str_c(s));
		fprintf(fp, "  %-12s %s%s, attempts %" PRIu32 "\n", "state",
		    queue_rcpt_state_str(rc->state),
		    (rc->flags & QUEUE_RCPT_F_DSN_SENT) ? " (dsn sent)" : "",
		    rc->attempts);
		if (rc->next_attempt != 0) {
			localtime_r(&rc->next_attempt, &tm);
			strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S %z", &tm);
			fprintf(fp, "  %-12s %s\n", "next attempt", tbuf);
		}
		if (rc->orcpt != NULL) {
			str_clear(s);
			str_printf(s, "%s;%s", rc->orcpt_type, rc->orcpt);
			dump_field(fp, "  orcpt", str_c(s));
		}
		if (rc->notify != 0)
			fprintf(fp, "  %-12s %s%s%s%s\n", "notify",
			    (rc->notify & SMTP_NOTIFY_NEVER) ? "NEVER" : "",
			    (rc->notify & SMTP_NOTIFY_SUCCESS) ? "SUCCESS " : "",
			    (rc->notify & SMTP_NOTIFY_FAILURE) ? "FAILURE " : "",
			    (rc->notify & SMTP_NOTIFY_DELAY) ? "DELAY" : "");
		dump_field(fp, "  original", rc->original);
		if (rc->reason[0] != '\0')
			dump_field(fp, "  reason", rc->reason);
	}
	if ((flags & QUEUE_FILE_DUMP_LOG) != 0)
		fprintf(fp, "%-14s %zu records, %" PRIu64 " octets\n",
		    "status log", qf->nlog, qf->log_end - qf->log_start);
	if ((flags & QUEUE_FILE_DUMP_CONTENT) != 0) {
		unsigned char *buf = xmalloc(QF_BUF_SIZE);
		uint64_t off = 0;

		fprintf(fp, "*** message ***\n");
		while (off < qf->content_len) {
			ssize_t n = queue_file_read_content(qf, buf,
			    QF_BUF_SIZE, off);
			ssize_t k;

			if (n <= 0) {
				free(buf);
				str_free(&s);
				return -1;
			}
			/* CRLF shown as line ends; other controls escaped */
			str_clear(s);
			for (k = 0; k < n; k++) {
				unsigned char c = buf[k];

				if (c == '\n' || c == '\t' || (c >= 32 && c < 127))
					(void)str_append_c(s, (char)c);
				else if (c == '\r' && k + 1 < n && buf[k + 1] == '\n')
					continue;
				else
					(void)str_printf(s, "\\%03o", c);
			}
			fwrite(str_c(s), 1, str_len(s), fp);
			off += (uint64_t)n;
		}
		free(buf);
		fprintf(fp, "*** end of message ***\n");
	}
	str_free(&s);
	return ferror(fp) ? -1 : 0;
}
