/* SPDX-License-Identifier: MIT */
/*
 * listmgr_progress - per-post progress records: exactly-once distribution
 *
 * DESCRIPTION
 *	A post goes out as one queue entry per member (VERP). If list-mgr
 *	dies half-way, qmgr retries the post with the same delivery token
 *	(XTOKEN "QUEUEID/index"), and without a record every member already
 *	queued would get a second copy. So each post being distributed has
 *	a record
 *
 *	    $list_directory/NAME/progress/t-HEX(token)
 *	    (no token: m-HEX(Message-ID) when the Message-ID is at most
 *	    LISTMGR_PROGRESS_KEY_MAX octets; neither: no record)
 *
 *	an append-only file of lines, each written with one write(2):
 *
 *	    p QUEUEID MEMBER	the copy for MEMBER is about to be committed
 *				as QUEUEID (fdatasync'd)
 *	    q QUEUEID MEMBER	written after that sync returned, just
 *				before cleanup gets the end of the message
 *	    p - MEMBER		cleanup said it did not queue it after all
 *	    d - MEMBER		cleanup said the copy is queued
 *	    a - -		the whole post is done (archive, digest too)
 *
 *	A retry resumes: "d" members are skipped; a "p"/"q" member without
 *	"d" is looked up in the queue by its ID: in active/, deferred/,
 *	hold/ it is queued; in incoming/ a complete file is committed with
 *	queue_file_recover() and an incomplete one (its writer gone: our
 *	end of message never arrived) removed and the copy sent again;
 *	nowhere: with "q", cleanup committed it and qmgr has delivered it
 *	since; with "p" only, the end never went out (cleanup drops such a
 *	message), so it is sent again. After "a" the retry is acknowledged
 *	at once. XXX A kill in the few instructions between the write of
 *	"q" and the write of the end record loses that member's copy; and
 *	if cleanup fails the commit while list-mgr is dead, that too looks
 *	like "delivered". Closing both needs cleanup to remember client
 *	transaction IDs, which it does not.
 *
 *	The record file is locked (flock, exclusive) by the distributing
 *	process; the expansion children inherit the lock with the
 *	descriptor, and they die with their parent (PR_SET_PDEATHSIG), so a
 *	retry that finds the lock held answers 451 and never runs beside a
 *	half-dead distribution. Records older than LISTMGR_PROGRESS_LIFETIME
 *	are removed by the wakeup (qmgr gives up on a post long before).
 *
 *	"d" records are not synced one by one (a kill -9 keeps them in the
 *	page cache); the last one is fdatasync'd before the LMTP 250. After
 *	a system crash an unsynced "d" leaves the "p" before it, and that
 *	member is resolved from the queue as above.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "list_store.h"
#include "log.h"
#include "queue_file.h"
#include "queue_id.h"
#include "str.h"

#include "listmgr.h"

#define LISTMGR_PROGRESS_KEY_MAX	100
#define LISTMGR_PROGRESS_LIFETIME	(7 * 24 * 3600)
#define LISTMGR_PROGRESS_LINE_MAX	2048

struct listmgr_progress_entry {
	char *member;
	char qid[QUEUE_ID_SIZE];	/* "" if none */
	size_t seq;			/* line number (loading only) */
	bool done, is_p;
	bool sent;			/* a "q" record: the end went out */
};

struct listmgr_progress {
	int fd;
	struct str *path;
	struct listmgr_progress_entry *e;	/* sorted by member after load */
	size_t n, cap;
	bool finished;
};

/* listmgr_progress_hex - hex of p[0..len) appended to out */
static void
listmgr_progress_hex(const char *p, size_t len, struct str *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		str_append_c(out, hex[(unsigned char)p[i] >> 4]);
		str_append_c(out, hex[(unsigned char)p[i] & 15]);
	}
}

/* listmgr_progress_cmp - qsort/bsearch by member */
static int
listmgr_progress_cmp(const void *a, const void *b)
{
	const struct listmgr_progress_entry *x = a, *y = b;
	int r = strcmp(x->member, y->member);

	if (r != 0)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* listmgr_progress_find - the entry for member, or NULL */
static struct listmgr_progress_entry *
listmgr_progress_find(struct listmgr_progress *p, const char *member)
{
	struct listmgr_progress_entry key;

	/* after loading, members are unique and every seq is 0 */
	key.member = (char *)(uintptr_t)member;	/* only compared */
	key.seq = 0;
	if (p->n == 0)		/* bsearch(.., NULL, 0, ..) is undefined */
		return NULL;
	return bsearch(&key, p->e, p->n, sizeof(*p->e), listmgr_progress_cmp);
}

/* listmgr_progress_load - read the records; 0 or -1 */
static int
listmgr_progress_load(struct listmgr_progress *p)
{
	struct str *all = str_new(0, 0);
	char buf[8192];
	const char *s, *end, *nl, *sp1, *sp2;
	ssize_t r;
	size_t i, j;

	while ((r = read(p->fd, buf, sizeof(buf))) > 0)
		str_append(all, buf, (size_t)r);
	if (r < 0) {
		str_free(&all);
		return -1;
	}
	s = str_c(all);
	end = s + str_len(all);
	/* a torn last line (no LF) is ignored: its write never finished */
	for (; s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL;
	    s = nl + 1) {
		struct listmgr_progress_entry *e;

		if (nl - s < 5 || s[1] != ' ')
			continue;
		if (s[0] == 'a') {
			p->finished = true;
			continue;
		}
		sp1 = s + 1;
		sp2 = memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1));
		if (sp2 == NULL || sp2 + 1 >= nl ||
		    (s[0] != 'p' && s[0] != 'q' && s[0] != 'd'))
			continue;
		if (p->n == p->cap) {
			p->cap = p->cap == 0 ? 64 : p->cap * 2;
			p->e = xreallocarray(p->e, p->cap, sizeof(*p->e));
		}
		e = &p->e[p->n++];
		memset(e, 0, sizeof(*e));
		e->member = xstrndup(sp2 + 1, (size_t)(nl - sp2 - 1));
		e->seq = p->n;
		if (s[0] == 'd') {
			e->done = true;
			continue;
		}
		e->is_p = true;
		e->sent = s[0] == 'q';
		if (sp2 - sp1 - 1 == 1 && sp1[1] == '-')
			e->qid[0] = '\0';	/* "p -": the commit failed */
		else if ((size_t)(sp2 - sp1 - 1) < QUEUE_ID_SIZE) {
			memcpy(e->qid, sp1 + 1, (size_t)(sp2 - sp1 - 1));
			e->qid[sp2 - sp1 - 1] = '\0';
		}
	}
	str_free(&all);
	/* fold the lines of one member into one entry (any "d" wins) */
	if (p->n > 0)	/* qsort(NULL, 0, ...) is undefined */
		qsort(p->e, p->n, sizeof(*p->e), listmgr_progress_cmp);
	for (i = 0, j = 0; i < p->n; i++) {
		if (j > 0 && strcmp(p->e[j - 1].member, p->e[i].member) == 0) {
			p->e[j - 1].done |= p->e[i].done;
			if (p->e[i].is_p) {	/* the later intent counts */
				memcpy(p->e[j - 1].qid, p->e[i].qid,
				    sizeof(p->e[i].qid));
				p->e[j - 1].sent = p->e[i].sent;
			}
			free(p->e[i].member);
			continue;
		}
		p->e[j++] = p->e[i];
	}
	p->n = j;
	for (i = 0; i < p->n; i++)
		p->e[i].seq = 0;
	return 0;
}

/* listmgr_progress_open - see listmgr.h */
struct listmgr_progress *
listmgr_progress_open(const struct list *l, const struct listmgr_msg *msg,
    bool *busy_r)
{
	struct listmgr_progress *p;
	struct str *key = str_new(0, 0), *mid = str_new(0, 0);
	struct str *dir = str_new(0, 0);

	*busy_r = false;
	if (msg->token != NULL && msg->token[0] != '\0') {
		str_append_cstr(key, "t-");
		listmgr_progress_hex(msg->token, strlen(msg->token), key);
	} else if (listmgr_header_value(msg->data, msg->hdr_len, "Message-ID",
	    mid) && str_len(mid) > 2 &&
	    str_len(mid) <= LISTMGR_PROGRESS_KEY_MAX) {
		str_append_cstr(key, "m-");
		listmgr_progress_hex(str_c(mid), str_len(mid), key);
	} else {
		str_free(&key);
		str_free(&mid);
		str_free(&dir);
		return NULL;
	}
	str_free(&mid);
	p = xcalloc(1, sizeof(*p));
	p->path = str_new(0, 0);
	list_path(l, "progress", dir);
	if (mkdir(str_c(dir), 0700) < 0 && errno != EEXIST)
		goto fail;
	str_printf(p->path, "%s/%s", str_c(dir), str_c(key));
	p->fd = open(str_c(p->path), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (p->fd < 0)
		goto fail;
	if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			*busy_r = true;
		goto fail;
	}
	if (listmgr_progress_load(p) < 0)
		goto fail;
	str_free(&key);
	str_free(&dir);
	return p;
fail:
	log_error(msg->log, "list=%s: progress record %s: %m", l->name,
	    str_c(p->path));
	if (p->fd >= 0)
		(void)close(p->fd);
	str_free(&p->path);
	free(p);
	str_free(&key);
	str_free(&dir);
	if (!*busy_r)
		*busy_r = true;	/* cannot track: do not distribute now */
	return NULL;
}

/* listmgr_progress_close - see listmgr.h */
void
listmgr_progress_close(struct listmgr_progress **pp)
{
	struct listmgr_progress *p = *pp;
	size_t i;

	if (p == NULL)
		return;
	*pp = NULL;
	(void)close(p->fd);
	for (i = 0; i < p->n; i++)
		free(p->e[i].member);
	free(p->e);
	str_free(&p->path);
	free(p);
}

/* listmgr_progress_finished - see listmgr.h */
bool
listmgr_progress_finished(const struct listmgr_progress *p)
{
	return p != NULL && p->finished;
}

/* listmgr_progress_write - append one record line; 0 or -1 */
static int
listmgr_progress_write(struct listmgr_progress *p, char type, const char *qid,
    const char *member, bool sync)
{
	char line[LISTMGR_PROGRESS_LINE_MAX];
	int n;

	n = snprintf(line, sizeof(line), "%c %s %s\n", type, qid, member);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (write(p->fd, line, (size_t)n) != n)
		return -1;
	if (sync && fdatasync(p->fd) < 0)
		return -1;
	return 0;
}

/* listmgr_progress_intent - see listmgr.h */
int
listmgr_progress_intent(struct listmgr_progress *p, const char *member,
    const char *qid)
{
	if (p == NULL)
		return 0;
	/*
	 * "p" is durable first (a system crash keeps the queue ID); "q" is
	 * written only after the sync returned, so a process killed while
	 * syncing leaves no "q", and its copy is known not to be committed
	 * (cleanup drops a message whose end never came).
	 */
	if (listmgr_progress_write(p, 'p', qid, member, true) < 0)
		return -1;
	return listmgr_progress_write(p, 'q', qid, member, false);
}

/* listmgr_progress_failed - see listmgr.h */
int
listmgr_progress_failed(struct listmgr_progress *p, const char *member)
{
	if (p == NULL)
		return 0;
	return listmgr_progress_write(p, 'p', "-", member, false);
}

/* listmgr_progress_done - see listmgr.h */
int
listmgr_progress_done(struct listmgr_progress *p, const char *member)
{
	if (p == NULL)
		return 0;
	return listmgr_progress_write(p, 'd', "-", member, false);
}

/* listmgr_progress_finish - see listmgr.h */
int
listmgr_progress_finish(struct listmgr_progress *p)
{
	if (p == NULL)
		return 0;
	return listmgr_progress_write(p, 'a', "-", "-", true);
}

/* listmgr_progress_sync - see listmgr.h */
int
listmgr_progress_sync(struct listmgr_progress *p)
{
	return p == NULL ? 0 : fdatasync(p->fd);
}

/*
 * listmgr_progress_queued - whether the copy committed as qid is queued
 * (or was and has been delivered): 1 yes, 0 no (send it again), -1 not
 * known now (try the post later).
 */
static int
listmgr_progress_queued(const char *qid, bool sent, struct log_ctx *log)
{
	const char *qdir = config_str(conf(), "queue_directory"), *error = "";
	struct log_ctx ctx = { .id = qid };
	enum queue_name q;
	struct str *path;
	int r, tries;

	(void)log;
	if (!queue_id_ok(qid, strlen(qid)))
		return 0;
	for (tries = 0; tries < 3; tries++) {
		if (queue_file_locate(qdir, qid, &q) < 0)
			return errno != ENOENT ? -1 : sent ? 1 : 0;
		if (q != QUEUE_INCOMING)
			return 1;
		r = queue_file_recover(qdir, qid, QUEUE_ACTIVE, &error);
		if (r == 1) {
			log_warn(&ctx, "list copy: completed cleanup's commit");
			return 1;
		}
		if (r < 0 && errno == ENOENT)
			continue;
		if (r < 0)
			return -1;	/* its writer is alive, or I/O error */
		path = str_new(0, 0);
		if (queue_file_path(qdir, QUEUE_INCOMING, qid, path) == 0)
			(void)unlink(str_c(path));
		str_free(&path);
		return 0;
	}
	return -1;
}

/* listmgr_progress_pending - see listmgr.h */
int
listmgr_progress_pending(struct listmgr_progress *p, const char *member,
    struct log_ctx *log)
{
	struct listmgr_progress_entry *e;
	int r;

	if (p == NULL || (e = listmgr_progress_find(p, member)) == NULL)
		return 1;
	if (e->done)
		return 0;
	if (e->qid[0] == '\0')
		return 1;
	r = listmgr_progress_queued(e->qid, e->sent, log);
	if (r == 1) {
		(void)listmgr_progress_done(p, member);
		e->done = true;
		return 0;
	}
	return r < 0 ? -1 : 1;
}

/* listmgr_progress_expire - see listmgr.h */
void
listmgr_progress_expire(const struct list *l, time_t now)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0);
	struct dirent *de;
	struct stat st;
	DIR *d;

	list_path(l, "progress", dir);
	if ((d = opendir(str_c(dir))) == NULL) {
		str_free(&dir);
		str_free(&path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		str_clear(path);
		str_printf(path, "%s/%s", str_c(dir), de->d_name);
		if (stat(str_c(path), &st) == 0 &&
		    st.st_mtime + LISTMGR_PROGRESS_LIFETIME < now)
			(void)unlink(str_c(path));
	}
	(void)closedir(d);
	str_free(&dir);
	str_free(&path);
}
