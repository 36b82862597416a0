/* SPDX-License-Identifier: MIT */
/*
 * listmgr_digest - archive appends, digests, periodic upkeep
 *
 * DESCRIPTION
 *	Archive: every distributed post is appended to
 *	archive/YYYY-MM.mbox (mboxrd: "From " line, ">From " quoting, LF
 *	line ends) under the list's lock file; the HTML pages are made from
 *	those files by lib/list_archive (listmgr_periodic, and `postern
 *	list archive rebuild`).
 *
 *	Digests: each post for digest members is kept as one file in
 *	digest/ (named by time and a random token). When their total
 *	reaches digest_size octets, or the oldest is digest_interval
 *	seconds old (checked at each post and at each master wakeup), one
 *	digest goes to the digest members: MIME (RFC 2046 multipart/digest
 *	inside a multipart/mixed with a table of contents) or, for members
 *	with the plain option, RFC 1153 plain text. The files are removed
 *	only after both are queued.
 *
 *	Upkeep (master wakeup): due digests; members disabled for bounces
 *	longer than bounce_remove_after are removed; expired confirmation
 *	tokens are removed; archives are rebuilt when an mbox is newer than
 *	the HTML index.
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
#include "header.h"
#include "list_archive.h"
#include "list_store.h"
#include "log.h"
#include "safe_file.h"
#include "str.h"

#include "listmgr.h"

/* listmgr_archive_add - see listmgr.h */
int
listmgr_archive_add(const struct list *l, const char *sender,
    const char *data, size_t len)
{
	struct str *path = str_new(0, 0), *rel = str_new(0, 0),
	    *out = str_new(len + 256, 0);
	time_t now = time(NULL);
	struct tm tm;
	char month[16], date[64];
	int fd, rc = -1;

	gmtime_r(&now, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	str_printf(rel, "archive/%s.mbox", month);
	(void)mkdir(list_path(l, "archive", path), 0750);
	list_mbox_format(sender[0] != '\0' ? sender : "MAILER-DAEMON", date,
	    data, len, out);
	fd = open(list_path(l, str_c(rel), path), O_WRONLY | O_APPEND |
	    O_CREAT | O_CLOEXEC, 0640);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX) == 0 &&
		    write(fd, str_c(out), str_len(out)) == (ssize_t)str_len(out) &&
		    fdatasync(fd) == 0)
			rc = 0;
		(void)close(fd);
	}
	str_free(&path);
	str_free(&rel);
	str_free(&out);
	return rc;
}

/* listmgr_digest_add - see listmgr.h */
int
listmgr_digest_add(struct list *l, const char *data, size_t len)
{
	struct str *path = str_new(0, 0), *rel = str_new(0, 0),
	    *tok = str_new(0, 0);
	int rc;

	(void)mkdir(list_path(l, "digest", path), 0750);
	list_random_token(tok);
	str_printf(rel, "digest/%012lld-%s", (long long)time(NULL), str_c(tok));
	rc = safe_file_replace(list_path(l, str_c(rel), path), data, len, 0640);
	str_free(&path);
	str_free(&rel);
	str_free(&tok);
	if (rc == 0)
		rc = listmgr_digest_check(l, false);
	return rc;
}

static int
listmgr_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct listmgr_digest_rcpts {
	char **mime, **plain;
	size_t nmime, nplain;
};

static int
listmgr_digest_collect(const struct list_member *m, void *ctx)
{
	struct listmgr_digest_rcpts *r = ctx;

	if (!(m->flags & LIST_MEMBER_DIGEST) ||
	    (m->flags & (LIST_MEMBER_NOMAIL | LIST_MEMBER_BOUNCING)))
		return 0;
	if (m->flags & LIST_MEMBER_PLAIN) {
		r->plain = xreallocarray(r->plain, r->nplain + 1, sizeof(char *));
		r->plain[r->nplain++] = xstrdup(m->address);
	} else {
		r->mime = xreallocarray(r->mime, r->nmime + 1, sizeof(char *));
		r->mime[r->nmime++] = xstrdup(m->address);
	}
	return 0;
}

/* listmgr_digest_build - the MIME and the RFC 1153 digest of msgs */
static void
listmgr_digest_build(const struct list *l, struct str *const *msgs, size_t n,
    unsigned issue, struct str *mime, struct str *plain)
{
	struct str *toc = str_new(0, 0), *v = str_new(0, 0),
	    *b = str_new(0, 0), *post = str_new(0, 0),
	    *req = str_new(0, 0);
	size_t i, hl;
	time_t now = time(NULL);
	struct tm tm;
	char date[64];

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	list_address(l, "", post);
	list_address(l, "request", req);
	list_random_token(b);
	str_printf(toc, "Today's Topics:\r\n\r\n");
	for (i = 0; i < n; i++) {
		hl = header_block_size(str_c(msgs[i]), str_len(msgs[i]));
		(void)listmgr_header_value(str_c(msgs[i]), hl, "Subject", v);
		str_printf(toc, "   %zu. %s\r\n", i + 1, str_c(v));
	}
	str_printf(mime, "From: %s\r\nTo: %s\r\nSubject: %s Digest, Vol 1, "
	    "Issue %u\r\nDate: %s\r\nMIME-Version: 1.0\r\nList-Id: <%s.%s>\r\n"
	    "List-Post: <mailto:%s>\r\nList-Unsubscribe: <mailto:%s-leave@%s>\r\n"
	    "Precedence: list\r\nX-Loop: %s\r\n"
	    "Content-Type: multipart/mixed; boundary=\"=_d1_%s\"\r\n\r\n"
	    "--=_d1_%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Description: Digest table of contents\r\n\r\n"
	    "%s Digest, Issue %u\r\n\r\n", str_c(req), str_c(post), l->name,
	    issue, date, l->name, list_get(l, "domain"), str_c(post), l->name,
	    list_get(l, "domain"), str_c(post), str_c(b), str_c(b), l->name,
	    issue);
	str_append_str(mime, toc);
	str_printf(mime, "\r\n--=_d1_%s\r\nContent-Type: multipart/digest; "
	    "boundary=\"=_d2_%s\"\r\n\r\n", str_c(b), str_c(b));
	for (i = 0; i < n; i++) {
		str_printf(mime, "--=_d2_%s\r\n\r\n", str_c(b));
		str_append_str(mime, msgs[i]);
		if (str_len(msgs[i]) > 0 &&
		    str_c(msgs[i])[str_len(msgs[i]) - 1] != '\n')
			str_append_cstr(mime, "\r\n");
	}
	str_printf(mime, "--=_d2_%s--\r\n\r\n--=_d1_%s--\r\n", str_c(b),
	    str_c(b));

	/* RFC 1153 */
	str_printf(plain, "From: %s\r\nTo: %s\r\nSubject: %s Digest V1 #%u"
	    "\r\nDate: %s\r\nList-Id: <%s.%s>\r\nPrecedence: list\r\n"
	    "X-Loop: %s\r\n\r\n%s Digest                "
	    "Issue %u\r\n\r\n", str_c(req), str_c(post), l->name, issue, date,
	    l->name, list_get(l, "domain"), str_c(post), l->name, issue);
	str_append_str(plain, toc);
	str_append_cstr(plain, "\r\n----------------------------------------"
	    "------------------------------\r\n\r\n");
	for (i = 0; i < n; i++) {
		static const char *const keep[] = { "Date", "From", "Subject" };
		size_t k;

		hl = header_block_size(str_c(msgs[i]), str_len(msgs[i]));
		for (k = 0; k < N_ELEMENTS(keep); k++)
			if (listmgr_header_value(str_c(msgs[i]), hl, keep[k], v))
				str_printf(plain, "%s: %s\r\n", keep[k], str_c(v));
		str_append_cstr(plain, "\r\n");
		str_append(plain, str_c(msgs[i]) + hl, str_len(msgs[i]) - hl);
		str_append_cstr(plain, "\r\n------------------------------\r\n"
		    "\r\n");
	}
	str_printf(plain, "End of %s Digest V1 Issue #%u\r\n", l->name, issue);
	for (i = 0; i < 30 + strlen(l->name); i++)
		str_append_c(plain, '*');
	str_append_cstr(plain, "\r\n");
	str_free(&toc);
	str_free(&v);
	str_free(&b);
	str_free(&post);
	str_free(&req);
}

/* listmgr_digest_check - see listmgr.h */
int
listmgr_digest_check(struct list *l, bool force)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0),
	    *bounces = str_new(0, 0), *mime = str_new(0, 0),
	    *plain = str_new(0, 0), *t = str_new(0, 0);
	struct str **msgs = NULL;
	struct listmgr_digest_rcpts r;
	struct list_members *mp = NULL;
	struct log_ctx log = { NULL };
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i, total = 0;
	long long oldest = 0;
	unsigned issue = 1;
	const char *error;
	DIR *d;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	if ((d = opendir(list_path(l, "digest", dir))) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || strchr(de->d_name, '-') == NULL ||
		    strstr(de->d_name, ".tmp") != NULL)
			continue;
		str_clear(path);
		str_printf(path, "%s/%s", str_c(dir), de->d_name);
		if (stat(str_c(path), &st) < 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof(char *));
		names[n++] = xstrdup(de->d_name);
		total += (size_t)st.st_size;
	}
	closedir(d);
	if (n == 0)
		goto out;
	qsort(names, n, sizeof(char *), listmgr_strcmp);
	oldest = strtoll(names[0], NULL, 10);
	if (!force && (long)total < list_get_int(l, "digest_size") &&
	    oldest + list_get_int(l, "digest_interval") > (long long)time(NULL))
		goto out;
	msgs = xcalloc(n, sizeof(*msgs));
	for (i = 0; i < n; i++) {
		msgs[i] = str_new(0, 0);
		str_clear(path);
		str_printf(path, "%s/%s", str_c(dir), names[i]);
		(void)read_file(str_c(path), msgs[i], 64UL * 1024 * 1024);
	}
	if ((mp = list_members_open(l, false, &error)) == NULL ||
	    list_members_each(mp, listmgr_digest_collect, &r, &error) < 0) {
		rc = -1;
		goto out;
	}
	list_members_close(&mp);
	if (read_file(list_path(l, "digest.issue", path), t, 64) == 0)
		issue = (unsigned)strtoul(str_c(t), NULL, 10) + 1;
	listmgr_digest_build(l, msgs, n, issue, mime, plain);
	list_address(l, "bounces", bounces);
	if (r.nmime > 0 && listmgr_inject(str_c(bounces),
	    (const char *const *)r.mime, r.nmime, str_c(mime), str_len(mime),
	    &log) < 0)
		rc = -1;
	if (rc == 0 && r.nplain > 0 && listmgr_inject(str_c(bounces),
	    (const char *const *)r.plain, r.nplain, str_c(plain),
	    str_len(plain), &log) < 0)
		rc = -1;
	if (rc == 0) {
		str_clear(t);
		str_printf(t, "%u\n", issue);
		(void)safe_file_replace(list_path(l, "digest.issue", path),
		    str_c(t), str_len(t), 0640);
		for (i = 0; i < n; i++) {
			str_clear(path);
			str_printf(path, "%s/%s", str_c(dir), names[i]);
			(void)unlink(str_c(path));
		}
		log_info(NULL, "list=%s: digest issue %u sent (%zu posts, %zu "
		    "MIME, %zu plain)", l->name, issue, n, r.nmime, r.nplain);
	}
out:
	list_members_close(&mp);
	for (i = 0; i < n; i++) {
		free(names[i]);
		if (msgs != NULL)
			str_free(&msgs[i]);
	}
	for (i = 0; i < r.nmime; i++)
		free(r.mime[i]);
	for (i = 0; i < r.nplain; i++)
		free(r.plain[i]);
	free(r.mime);
	free(r.plain);
	free(names);
	free(msgs);
	str_free(&dir);
	str_free(&path);
	str_free(&bounces);
	str_free(&mime);
	str_free(&plain);
	str_free(&t);
	return rc;
}

struct listmgr_expire {
	time_t now;
	long after;
	char **gone;
	size_t n;
};

static int
listmgr_expire_cb(const struct list_member *m, void *ctx)
{
	struct listmgr_expire *e = ctx;

	if ((m->flags & LIST_MEMBER_BOUNCING) && m->disabled != 0 &&
	    m->disabled + e->after <= e->now) {
		e->gone = xreallocarray(e->gone, e->n + 1, sizeof(char *));
		e->gone[e->n++] = xstrdup(m->address);
	}
	return 0;
}

/* listmgr_upkeep - one list's periodic work */
static void
listmgr_upkeep(struct list *l)
{
	struct listmgr_expire e;
	struct list_members *mp;
	struct str *path = str_new(0, 0);
	const char *error;
	struct dirent *de;
	DIR *d;
	size_t i;

	(void)listmgr_digest_check(l, false);
	memset(&e, 0, sizeof(e));
	e.now = time(NULL);
	e.after = list_get_int(l, "bounce_remove_after");
	if ((mp = list_members_open(l, true, &error)) != NULL) {
		if (list_members_each(mp, listmgr_expire_cb, &e, &error) == 0)
			for (i = 0; i < e.n; i++)
				if (list_member_del(mp, e.gone[i], &error) > 0)
					log_info(NULL, "list=%s: member <%s> "
					    "removed (bouncing)", l->name,
					    e.gone[i]);
		list_members_close(&mp);
	}
	for (i = 0; i < e.n; i++)
		free(e.gone[i]);
	free(e.gone);
	/* expired confirmation tokens */
	if ((d = opendir(list_path(l, "pending", path))) != NULL) {
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			struct str *p;

			if (!list_token_ok(de->d_name))
				continue;
			p = str_new(0, 0);
			str_printf(p, "%s/%s", str_c(path), de->d_name);
			if (stat(str_c(p), &st) == 0 && st.st_mtime +
			    list_get_int(l, "confirm_lifetime") < e.now)
				(void)unlink(str_c(p));
			str_free(&p);
		}
		closedir(d);
	}
	if (strcmp(list_get(l, "archive"), "off") != 0 &&
	    list_archive_stale(l) && list_archive_rebuild(l, &error) < 0)
		log_warn(NULL, "list=%s: archive rebuild: %s", l->name, error);
	str_free(&path);
}

/* listmgr_periodic - see listmgr.h */
void
listmgr_periodic(void)
{
	struct dirent *de;
	struct list *l;
	const char *error;
	DIR *d;

	if ((d = opendir(list_directory())) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!list_name_ok(de->d_name))
			continue;
		if ((l = list_store_open(de->d_name, &error)) == NULL)
			continue;
		listmgr_upkeep(l);
		listmgr_progress_expire(l, time(NULL));
		list_store_free(&l);
	}
	closedir(d);
}
