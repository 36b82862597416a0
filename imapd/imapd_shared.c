/* SPDX-License-Identifier: MIT */
/*
 * imapd_shared - list archives as read-only shared mailboxes
 *
 * DESCRIPTION
 *	A list with the setting archive_imap = yes (and archive not off)
 *	is shown to its members as the mailbox "Shared/LIST" in the shared
 *	namespace "Shared/" (NAMESPACE, RFC 2342). Its messages live in a
 *	store of their own, user LIST under the root
 *	$store_directory/.lists (a name no user store can have: user names
 *	never start with '.'), owned like every store by $store_owner.
 *
 *	list-mgr appends each distributed post once to the list's mboxrd
 *	archive (archive/YYYY-MM.mbox, under its progress record). The
 *	mail role brings the store up to date from those files when a
 *	member opens or asks about the mailbox: under an exclusive flock
 *	of .lists/LIST.lock it counts the store's messages (N; nothing
 *	ever expunges them) and appends archive entries N+1.. in order
 *	(months sorted by name, entries in file order), turning the mboxrd
 *	form back into the message (">From " unquoted, CRLF line ends).
 *	A message is committed before the next is read, so a crash leaves
 *	a prefix and the next import carries on. .lists/LIST.stamp holds
 *	the archive files' total size and the message count after the last
 *	complete import, so an unchanged archive costs a few stat(2) calls
 *	and a read of the mailbox's index header.
 *
 *	Membership is checked at every SELECT/EXAMINE, STATUS and LIST:
 *	the user's addresses are USER@D for each D in $mydestination and
 *	$mydomain (or USER itself when it holds an '@';
 *	list_user_addresses), looked up in the list's members.db (a
 *	shared lock) for membership=db and both. For membership=ldap and
 *	both, the LDAP group counts as the login side found it when the
 *	user logged in (struct login_conn dir_lists, from the hand-off
 *	record; imapd_login.c login_dir_lists, lib/list_ldap.c, the
 *	lookup list-mgr makes): this process links no libldap. So a
 *	removal from the group takes effect at the user's next login, and
 *	a directory that could not answer then hides the archive for the
 *	whole session (fail closed). Anyone else, and every name
 *	under Shared/ that is no such list, gets NO [NONEXISTENT], the
 *	same answer for lists that do not exist, so a non-member cannot
 *	learn that a list exists.
 *
 *	The mailbox is always opened read-only (SELECT answers like
 *	EXAMINE: [READ-ONLY]); flags, \Seen included, are not kept (a
 *	session sees every message unseen). Nothing can be written under
 *	Shared/: the session answers NO [NOPERM].
 *
 * SECURITY
 *	Runs in the mail role as $store_owner. Reads, for the lists it is
 *	asked about: $list_directory (the names), LIST/config, LIST/lock
 *	(flock only) and LIST/members.db, and archive/ *.mbox (under a
 *	shared flock); it needs read access to those (the list owner's
 *	group) and no write access. List names are allow-listed
 *	(list_name_ok) before they become paths. The archived messages are
 *	list mail, as untrusted as any delivery: they are only split,
 *	unquoted and appended, and parsed by the same code as delivery.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "imap_envelope.h"
#include "list_store.h"
#include "log.h"
#include "safe_file.h"
#include "store/store.h"
#include "str.h"

#include "imapd.h"

#define SHARED_PREFIX		"Shared/"
#define SHARED_PREFIX_LEN	7
#define SHARED_MBOX_MAX		(2UL * 1024 * 1024 * 1024)

/* imapd_shared_name - see imapd.h */
bool
imapd_shared_name(const char *name)
{
	return strcmp(name, "Shared") == 0 ||
	    strncmp(name, SHARED_PREFIX, SHARED_PREFIX_LEN) == 0;
}

/* shared_root - "$store_directory/.lists" into out */
static const char *
shared_root(struct str *out)
{
	str_clear(out);
	str_printf(out, "%s/.lists", imapd_settings.store_dir);
	return str_c(out);
}

/* shared_is_member - is one of the user's addresses in members.db? */
static bool
shared_is_member(struct list_members *mp, const char *user)
{
	struct list_member m;
	const char *err;
	char **addrs;
	size_t n, i;
	bool found = false;

	addrs = list_user_addresses(user, &n);
	for (i = 0; i < n; i++) {
		if (!found && list_member_get(mp, addrs[i], &m, &err) == 1) {
			list_member_clear(&m);
			found = true;
		}
		free(addrs[i]);
	}
	free(addrs);
	return found;
}

/* shared_dir_member - the login side found the user in l's LDAP group */
static bool
shared_dir_member(const struct imapd_session *sess, const struct list *l)
{
	const char *have = sess->c->dir_lists, *p;
	size_t n = strlen(l->name);

	for (p = have; p != NULL && (p = strstr(p, l->name)) != NULL; p += n)
		if (p > have && p[-1] == ' ' && p[n] == ' ')
			return true;
	return false;
}

/*
 * shared_list_open - the list NAME if it exists, shows its archive by
 * IMAP and the user is a member: by members.db (membership=db), by the
 * LDAP group as the login side found it (ldap), either (both); NULL
 * otherwise (no reason: the client learns nothing either way)
 */
static struct list *
shared_list_open(const char *name, const struct imapd_session *sess)
{
	struct list_members *mp;
	struct list *l;
	const char *err, *mode;
	bool ok = false;

	if (!list_name_ok(name) || (l = list_store_open(name, &err)) == NULL)
		return NULL;
	if (!list_archive_imap_shown(l)) {
		list_store_free(&l);
		return NULL;
	}
	mode = list_get(l, "membership");
	if (strcmp(mode, "db") != 0)
		ok = shared_dir_member(sess, l);
	if (!ok && strcmp(mode, "ldap") != 0 &&
	    (mp = list_members_open(l, false, &err)) != NULL) {
		ok = shared_is_member(mp, sess->user);
		list_members_close(&mp);
	}
	if (!ok)
		list_store_free(&l);
	return l;
}

/* shared_namecmp - qsort: strcmp of char * */
static int
shared_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * shared_archive_files - the archive's *.mbox names, sorted, and their
 * total size; caller frees each and the array
 */
static char **
shared_archive_files(const struct list *l, size_t *n_r, uint64_t *size_r)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0);
	struct dirent *de;
	struct stat sb;
	char **names = NULL;
	size_t n = 0;
	DIR *d;

	*size_r = 0;
	if ((d = opendir(list_path(l, "archive", dir))) != NULL) {
		while ((de = readdir(d)) != NULL) {
			size_t nl = strlen(de->d_name);

			if (nl <= 5 || de->d_name[0] == '.' ||
			    strcmp(de->d_name + nl - 5, ".mbox") != 0)
				continue;
			str_clear(path);
			str_printf(path, "%s/%s", str_c(dir), de->d_name);
			if (stat(str_c(path), &sb) < 0 || !S_ISREG(sb.st_mode))
				continue;
			*size_r += (uint64_t)sb.st_size;
			names = xreallocarray(names, n + 1, sizeof(char *));
			names[n++] = xstrdup(de->d_name);
		}
		closedir(d);
	}
	if (n > 1)
		qsort(names, n, sizeof(char *), shared_namecmp);
	str_free(&dir);
	str_free(&path);
	*n_r = n;
	return names;
}

/* shared_unmbox - the message of one mboxrd entry p/n (LF) as CRLF */
static void
shared_unmbox(const char *p, size_t n, struct str *out)
{
	const char *end = p + n, *nl, *q;
	size_t len;

	str_clear(out);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		for (q = p; q < p + len && *q == '>'; q++)
			;
		if (q > p && (size_t)(p + len - q) >= 5 &&
		    strncmp(q, "From ", 5) == 0) {
			p++;
			len--;
		}
		str_append(out, p, len);
		str_append(out, "\r\n", 2);
		p = nl != NULL ? nl + 1 : end;
	}
}

/* shared_from_date - the date of a "From sender Www Mmm dd hh:mm:ss yyyy" line */
static time_t
shared_from_date(const char *line, size_t n)
{
	char buf[128];
	const char *sp;
	struct tm tm;

	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, line, n);
	buf[n] = '\0';
	if ((sp = strchr(buf + 5, ' ')) == NULL)
		return 0;
	memset(&tm, 0, sizeof(tm));
	if (strptime(sp + 1, "%a %b %e %H:%M:%S %Y", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/*
 * shared_import_file - append the entries of one mbox past *skip (entries
 * to pass over, counted down); 0, or -1 on a store error
 */
static int
shared_import_file(struct store *store, const char *path, size_t *skip,
    struct log_ctx *log)
{
	struct str *data = str_new(0, 0), *msg = str_new(0, 0),
	    *env = str_new(0, 0), *body = str_new(0, 0), *bs = str_new(0, 0);
	struct store_append_result res;
	const char *p, *end, *start, *next, *err;
	int fd, rc = 0;

	/* list-mgr writes each entry with one write(2) under LOCK_EX */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	if (flock(fd, LOCK_SH) < 0 ||
	    read_file(path, data, SHARED_MBOX_MAX) < 0) {
		(void)close(fd);
		goto out;
	}
	(void)close(fd);
	p = str_c(data);
	end = p + str_len(data);
	while (p < end && strncmp(p, "From ", 5) == 0) {
		struct store_append_req req;

		if ((start = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		start++;
		next = memmem(start - 1, (size_t)(end - start + 1),
		    "\n\nFrom ", 7);
		if (next != NULL)
			next += 2;
		else if (end - start >= 1 && end[-1] == '\n' &&
		    (end - start == 1 || end[-2] == '\n'))
			next = end;
		else
			break;	/* a torn last entry: not a message yet */
		/*
		 * The entry ends with the blank line list_mbox_format adds.
		 * An empty one (never written by list-mgr) is no message and
		 * not counted, so the count stays the store's.
		 */
		if (next - start <= 1) {
			p = next;
			continue;
		}
		if (*skip > 0) {
			(*skip)--;
			p = next;
			continue;
		}
		shared_unmbox(start, (size_t)(next - start - 1), msg);
		str_clear(env);
		str_clear(body);
		str_clear(bs);
		(void)imap_envelope_message(str_c(msg), str_len(msg), NULL,
		    env, body, bs);
		memset(&req, 0, sizeof(req));
		req.mailbox = "INBOX";
		req.data = str_c(msg);
		req.size = str_len(msg);
		req.fd = -1;
		req.internaldate = shared_from_date(p, (size_t)(start - 1 - p));
		req.envelope = str_c(env);
		req.envelope_len = str_len(env);
		req.body = str_c(body);
		req.body_len = str_len(body);
		req.bodystructure = str_c(bs);
		req.bodystructure_len = str_len(bs);
		if (store_append(store, &req, &res, &err) < 0) {
			log_error(log, "shared mailbox: append: %s", err);
			rc = -1;
			break;
		}
		p = next;
	}
out:
	str_free(&data);
	str_free(&msg);
	str_free(&env);
	str_free(&body);
	str_free(&bs);
	return rc;
}

/* shared_import - bring the list's store up to date with its archive */
static int
shared_import(struct store *store, const struct list *l, struct log_ctx *log)
{
	struct str *path = str_new(0, 0), *stamp = str_new(0, 0),
	    *cur = str_new(0, 0), *root = str_new(0, 0),
	    *dir = str_new(0, 0);
	struct store_mailbox *box;
	struct store_status st;
	char **names;
	size_t n, i, skip;
	uint64_t size;
	const char *err;
	int fd, rc = -1;

	/* the stamp: archive size and message count after the last import */
	names = shared_archive_files(l, &n, &size);
	if (store_mailbox_status(store, "INBOX", &st, &err) < 0) {
		log_error(log, "shared mailbox %s: %s", l->name, err);
		goto out;
	}
	str_printf(cur, "%llu %u\n", (unsigned long long)size, st.messages);
	shared_root(root);
	str_printf(path, "%s/%s.stamp", str_c(root), l->name);
	if (read_file(str_c(path), stamp, 64) == 0 &&
	    strcmp(str_c(stamp), str_c(cur)) == 0) {
		rc = 0;
		goto out;
	}
	str_clear(path);
	str_printf(path, "%s/%s.lock", str_c(root), l->name);
	if ((fd = open(str_c(path), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    flock(fd, LOCK_EX) < 0) {
		log_error(log, "shared mailbox: %s: %m", str_c(path));
		if (fd >= 0)
			(void)close(fd);
		goto out;
	}
	if ((box = store_mailbox_open(store, "INBOX", STORE_OPEN_READONLY,
	    &err)) == NULL) {
		log_error(log, "shared mailbox %s: %s", l->name, err);
		(void)close(fd);
		goto out;
	}
	skip = store_mailbox_count(box);
	store_mailbox_close(&box);
	rc = 0;
	list_path(l, "archive", dir);
	for (i = 0; i < n && rc == 0; i++) {
		str_clear(path);
		str_printf(path, "%s/%s", str_c(dir), names[i]);
		rc = shared_import_file(store, str_c(path), &skip, log);
	}
	if (rc == 0 && store_mailbox_status(store, "INBOX", &st, &err) < 0) {
		log_error(log, "shared mailbox %s: %s", l->name, err);
		rc = -1;
	}
	if (rc == 0) {
		str_clear(cur);
		str_printf(cur, "%llu %u\n", (unsigned long long)size,
		    st.messages);
		str_clear(path);
		str_printf(path, "%s/%s.stamp", str_c(root), l->name);
		if (safe_file_replace(str_c(path), str_c(cur), str_len(cur),
		    0600) < 0)
			log_warn(log, "shared mailbox: %s: %m", str_c(path));
	}
	(void)close(fd);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	str_free(&path);
	str_free(&stamp);
	str_free(&cur);
	str_free(&root);
	str_free(&dir);
	return rc;
}

/* imapd_shared_open - see imapd.h */
struct store *
imapd_shared_open(struct imapd_session *sess, const char *name)
{
	struct str *root = str_new(0, 0);
	struct store *store = NULL;
	struct store_status st;
	struct list *l = NULL;
	const char *err;

	if (strncmp(name, SHARED_PREFIX, SHARED_PREFIX_LEN) != 0 ||
	    (l = shared_list_open(name + SHARED_PREFIX_LEN, sess)) == NULL)
		goto out;
	if (mkdir_p(shared_root(root), 0700) < 0) {
		log_error(&sess->c->log, "shared mailbox: %s: %m", str_c(root));
		goto out;
	}
	if ((store = store_open(str_c(root), l->name, &err)) == NULL) {
		log_error(&sess->c->log, "shared mailbox %s: %s", l->name, err);
		goto out;
	}
	if (store_mailbox_status(store, "INBOX", &st, &err) < 0 &&
	    store_mailbox_create(store, "INBOX", 0, &err) < 0 &&
	    store_error(store) != STORE_ERR_EXISTS) {
		log_error(&sess->c->log, "shared mailbox %s: %s", l->name, err);
		store_free(&store);
		goto out;
	}
	if (shared_import(store, l, &sess->c->log) < 0)
		store_free(&store);
out:
	list_store_free(&l);
	str_free(&root);
	return store;
}

/* imapd_shared_names - see imapd.h */
char **
imapd_shared_names(struct imapd_session *sess, size_t *n_r)
{
	char **names = NULL;
	struct dirent *de;
	struct list *l;
	size_t n = 0;
	DIR *d;

	if ((d = opendir(list_directory())) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (!list_name_ok(de->d_name) ||
			    (l = shared_list_open(de->d_name, sess)) == NULL)
				continue;
			list_store_free(&l);
			names = xreallocarray(names, n + 1, sizeof(char *));
			names[n] = xmalloc(SHARED_PREFIX_LEN +
			    strlen(de->d_name) + 1);
			memcpy(names[n], SHARED_PREFIX, SHARED_PREFIX_LEN);
			strcpy(names[n] + SHARED_PREFIX_LEN, de->d_name);
			n++;
		}
		closedir(d);
	}
	if (n > 1)
		qsort(names, n, sizeof(char *), shared_namecmp);
	*n_r = n;
	return names;
}

/* imapd_shared_copy - see imapd.h */
int
imapd_shared_copy(struct imapd_session *sess, const uint32_t *seqs,
    size_t n, const char *dest, struct store_uids *src_r,
    struct store_uids *dst_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct store_append_req *reqs = xcalloc(n, sizeof(*reqs));
	struct store_append_result *res = xcalloc(n, sizeof(*res));
	struct str **bufs = xcalloc(n * 4, sizeof(*bufs));
	static const enum store_cache_field fields[3] = {
		STORE_CACHE_ENVELOPE, STORE_CACHE_BODY,
		STORE_CACHE_BODYSTRUCTURE,
	};
	struct store_msg m;
	uint64_t total = 0;
	size_t i, k;
	int rc = -2;

	for (i = 0; i < n; i++) {
		struct str **b = &bufs[i * 4];

		store_msg_get(sess->box, seqs[i], &m);
		total += m.size;
		if (total > imapd_settings.append_max) {
			*error_r = "Too much to copy at once (APPENDLIMIT)";
			goto out;
		}
		for (k = 0; k < 4; k++)
			b[k] = str_new(0, 0);
		if (store_msg_read(sess->box, seqs[i], b[0], error_r) < 0) {
			rc = -3;
			goto out;
		}
		for (k = 0; k < 3; k++)
			if (store_msg_cached(sess->box, seqs[i], fields[k],
			    b[k + 1], error_r) < 0) {
				rc = -3;
				goto out;
			}
		reqs[i].mailbox = dest;
		reqs[i].data = str_c(b[0]);
		reqs[i].size = str_len(b[0]);
		reqs[i].fd = -1;
		reqs[i].internaldate = m.internaldate;
		reqs[i].tz_minutes = m.tz_minutes;
		reqs[i].envelope = str_c(b[1]);
		reqs[i].envelope_len = str_len(b[1]);
		reqs[i].body = str_c(b[2]);
		reqs[i].body_len = str_len(b[2]);
		reqs[i].bodystructure = str_c(b[3]);
		reqs[i].bodystructure_len = str_len(b[3]);
		reqs[i].quota_bytes = sess->quota_bytes;
	}
	/* one commit: COPY is all or nothing (RFC 3501 6.4.7) */
	if (store_append_multi(sess->store, reqs, n, res, error_r) < 0) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		store_uids_add(src_r, store_msg_uid(sess->box, seqs[i]));
		store_uids_add(dst_r, res[i].uid);
	}
	*uidvalidity_r = res[0].uidvalidity;
	rc = 0;
out:
	for (i = 0; i < n * 4; i++)
		str_free(&bufs[i]);
	free(bufs);
	free(reqs);
	free(res);
	return rc;
}
