/* SPDX-License-Identifier: MIT */
/*
 * store - one user's mail store: mailbox list, subscriptions, tokens, quota
 *
 * DESCRIPTION
 *	The user directory holds "lock" (the user lock), "mailboxes" (the
 *	mailbox list, replaced atomically), "tokens" (the delivery-token
 *	log) and mbox/<id>/ per mailbox (store_index.c, store_mailbox.c).
 *	The format and the protocol are in DESIGN.md.
 *
 *	Mailbox list changes are read-modify-write of the whole list under
 *	the user lock; readers read it whole without a lock. Quota usage is
 *	the sum of the mailbox index headers, so it needs no counter of its
 *	own that a crash could make drift.
 *
 *	Errors return -1 with the reason in the store's error buffer (see
 *	store.h); nothing here exits or logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "store/store_private.h"

#define MBL_MAGIC	"PSTMBXL1"
#define MBL_VERSION	1u
#define MBL_MAX_SIZE	(16u * 1024 * 1024)

struct mbl_entry {
	uint32_t id;
	uint32_t attrs;
	uint32_t uidvalidity;
	char *name;
};

struct mbl {
	uint32_t next_id;
	uint32_t last_uidvalidity;
	struct mbl_entry *e;
	size_t n;
	size_t cap;
};

struct store *
store_open(const char *root_dir, const char *user, const char **error_r)
{
	struct store *store;
	char *mdir;
	int made;

	if (!store_user_ok(user)) {
		*error_r = "invalid user name";
		return NULL;
	}
	store = xcalloc(1, sizeof(*store));
	store->dir = xasprintf("%s/%s", root_dir, user);
	store->user = xstrdup(user);
	store->fsync_on = true;
	store->errbuf = str_new(128, 0);
	store->user_lock_fd = -1;
	mdir = xasprintf("%s/mbox", store->dir);
	/*
	 * A new user's directory entry is made durable here; mbox/ and the
	 * mailbox list are synced with the user directory by the list's
	 * first commit (store_replace_file).
	 */
	made = mkdir(store->dir, 0700);
	if ((made < 0 && errno != EEXIST) ||
	    (made == 0 && store_fsync_path(store, root_dir) < 0) ||
	    store_mkdir(mdir) < 0) {
		*error_r = "cannot create the user's store directory";
		free(mdir);
		store_free(&store);
		return NULL;
	}
	free(mdir);
	return store;
}

void
store_free(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	if (store->user_lock_fd >= 0)
		close(store->user_lock_fd);
	free(store->dir);
	free(store->user);
	str_free(&store->errbuf);
	free(store);
	*storep = NULL;
}

enum store_error
store_error(const struct store *store)
{
	return store->err;
}

void
store_set_fsync(struct store *store, bool on)
{
	store->fsync_on = on;
}

/* store_user_lock - take the user lock (recursive within this handle) */
int
store_user_lock(struct store *store, const char **error_r)
{
	if (store->user_lock_depth++ > 0)
		return 0;
	if (store->user_lock_fd < 0) {
		char *path = xasprintf("%s/lock", store->dir);

		store->user_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (store->user_lock_fd < 0) {
			store->user_lock_depth = 0;
			store_set_syserr(store, error_r, "open", path);
			free(path);
			return -1;
		}
		free(path);
	}
	if (store_lock_fd(store->user_lock_fd, true) < 0) {
		store->user_lock_depth = 0;
		return store_set_syserr(store, error_r, "lock", "user lock");
	}
	return 0;
}

void
store_user_unlock(struct store *store)
{
	struct flock fl;

	ASSERT(store->user_lock_depth > 0);
	if (--store->user_lock_depth > 0)
		return;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(store->user_lock_fd, F_SETLK, &fl);
}

char *
store_mbox_dir(const struct store *store, uint32_t id)
{
	return xasprintf("%s/mbox/%u", store->dir, id);
}

/* ---------------------------------------------------------------- mailbox list */

static void
mbl_free(struct mbl *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static struct mbl_entry *
mbl_add(struct mbl *l, uint32_t id, uint32_t attrs, uint32_t uidvalidity,
    const char *name)
{
	struct mbl_entry *e;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->e = xreallocarray(l->e, l->cap, sizeof(*l->e));
	}
	e = &l->e[l->n++];
	e->id = id;
	e->attrs = attrs;
	e->uidvalidity = uidvalidity;
	e->name = xstrdup(name);
	return e;
}

static struct mbl_entry *
mbl_find(struct mbl *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

static void
mbl_remove(struct mbl *l, struct mbl_entry *e)
{
	size_t i = (size_t)(e - l->e);

	free(e->name);
	memmove(&l->e[i], &l->e[i + 1], (l->n - i - 1) * sizeof(*e));
	l->n--;
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void
put32(struct str *s, uint32_t v)
{
	(void)str_append(s, &v, 4);
}

/* mbl_read - load the list; a missing file is an empty list */
static int
mbl_read(struct store *store, struct mbl *l, const char **error_r)
{
	char *path = xasprintf("%s/mailboxes", store->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *buf = NULL;
	size_t off, size;
	uint32_t count, crc;
	int ret = -1;

	memset(l, 0, sizeof(*l));
	l->next_id = 1;
	if (fd < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			store_set_syserr(store, error_r, "open", path);
		free(path);
		return ret;
	}
	if (fstat(fd, &st) < 0 || st.st_size > MBL_MAX_SIZE || st.st_size < 28) {
		store_set_err(store, STORE_ERR_CORRUPT, error_r,
		    "mailbox list %s: bad size", path);
		goto out;
	}
	size = (size_t)st.st_size;
	buf = xmalloc(size);
	if (store_pread_all(fd, buf, size, 0) < 0) {
		store_set_syserr(store, error_r, "read", path);
		goto out;
	}
	memcpy(&crc, buf + size - 4, 4);
	if (memcmp(buf, MBL_MAGIC, 8) != 0 || get32(buf + 8) != MBL_VERSION ||
	    store_crc32(0, buf, size - 4) != crc) {
		store_set_err(store, STORE_ERR_CORRUPT, error_r,
		    "mailbox list %s: bad magic, version or checksum", path);
		goto out;
	}
	count = get32(buf + 12);
	l->next_id = get32(buf + 16);
	l->last_uidvalidity = get32(buf + 20);
	off = 24;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t id, attrs, uv, nlen;
		char *name;

		if (size - 4 - off < 16)
			break;
		id = get32(buf + off);
		attrs = get32(buf + off + 4);
		uv = get32(buf + off + 8);
		nlen = get32(buf + off + 12);
		off += 16;
		if (nlen == 0 || nlen > STORE_MAILBOX_NAME_MAX ||
		    size - 4 - off < ((nlen + 3) & ~3u))
			break;
		name = xstrndup((const char *)buf + off, nlen);
		off += (nlen + 3) & ~3u;
		mbl_add(l, id, attrs, uv, name);
		free(name);
	}
	if (l->n != count || off != size - 4) {
		store_set_err(store, STORE_ERR_CORRUPT, error_r,
		    "mailbox list %s: bad entries", path);
		mbl_free(l);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	close(fd);
	free(path);
	return ret;
}

/* mbl_write - replace the list atomically (caller holds the user lock) */
static int
mbl_write(struct store *store, const struct mbl *l, const char **error_r)
{
	struct str *s = str_new(256, 0);
	char *path = xasprintf("%s/mailboxes", store->dir);
	uint32_t crc;
	int ret;

	(void)str_append(s, MBL_MAGIC, 8);
	put32(s, MBL_VERSION);
	put32(s, (uint32_t)l->n);
	put32(s, l->next_id);
	put32(s, l->last_uidvalidity);
	for (size_t i = 0; i < l->n; i++) {
		uint32_t nlen = (uint32_t)strlen(l->e[i].name);
		static const char zeros[4];

		put32(s, l->e[i].id);
		put32(s, l->e[i].attrs);
		put32(s, l->e[i].uidvalidity);
		put32(s, nlen);
		(void)str_append(s, l->e[i].name, nlen);
		(void)str_append(s, zeros, ((nlen + 3) & ~3u) - nlen);
	}
	crc = store_crc32(0, str_c(s), str_len(s));
	put32(s, crc);
	ret = store_replace_file(store, path, str_c(s), str_len(s));
	if (ret < 0)
		store_set_syserr(store, error_r, "write", path);
	str_free(&s);
	free(path);
	return ret;
}

/* canon_name - validated copy of name with any case of INBOX as "INBOX" */
static char *
canon_name(struct store *store, const char *name, const char **error_r)
{
	const char *why;

	if (name == NULL)
		return xstrdup("INBOX");
	if (!store_mailbox_name_ok(name, &why)) {
		store_set_err(store, STORE_ERR_INVALID, error_r, "%s", why);
		return NULL;
	}
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		return xasprintf("INBOX%s", name + 5);
	return xstrdup(name);
}

/* store_mbox_lookup - id and canonical name of an existing mailbox */
int
store_mbox_lookup(struct store *store, const char *name, uint32_t *id_r,
    char **canon_r, const char **error_r)
{
	struct mbl l;
	struct mbl_entry *e;
	char *canon = canon_name(store, name, error_r);
	int ret = -1;

	if (canon == NULL)
		return -1;
	if (mbl_read(store, &l, error_r) < 0) {
		free(canon);
		return -1;
	}
	e = mbl_find(&l, canon);
	if (e == NULL || e->id == 0)
		store_set_err(store, STORE_ERR_NOTFOUND, error_r,
		    "no such mailbox");
	else {
		*id_r = e->id;
		ret = 0;
	}
	mbl_free(&l);
	if (ret == 0 && canon_r != NULL)
		*canon_r = canon;
	else
		free(canon);
	return ret;
}

/* mbl_new_mailbox - make the directory and files for a new mailbox */
static int
mbl_new_mailbox(struct store *store, struct mbl *l, const char *name,
    uint32_t attrs, const char **error_r)
{
	struct mbl_entry *e = mbl_find(l, name);
	uint32_t id = l->next_id++;
	uint32_t uv = (uint32_t)time(NULL);
	char *dir = store_mbox_dir(store, id);

	if (uv <= l->last_uidvalidity)
		uv = l->last_uidvalidity + 1;
	l->last_uidvalidity = uv;
	/*
	 * A leftover of a create that crashed before its list commit (or of
	 * an older store that made the files here). The files themselves are
	 * made by the first open (store_mbox_materialize): the list entry is
	 * what commits the mailbox, so creating one costs no fsync of its own.
	 */
	if (store_rm_rf(dir) < 0) {
		store_set_syserr(store, error_r, "remove", dir);
		free(dir);
		return -1;
	}
	free(dir);
	if (e != NULL) {
		e->id = id;
		e->uidvalidity = uv;
		e->attrs = (e->attrs & STORE_MBOX_SUBSCRIBED) | attrs;
	} else
		mbl_add(l, id, attrs, uv, name);
	return 0;
}

/*
 * store_mbox_materialize - make the files of listed mailbox id if they are
 * not there (never opened since its creation, or lost to a crash before
 * anything was committed in it). Under the user lock, so that two openers
 * do not race and a mailbox deleted meanwhile is not brought back.
 */
int
store_mbox_materialize(struct store *store, uint32_t id, const char **error_r)
{
	struct mbl l;
	struct mbl_entry *e = NULL;
	int ret = -1;

	if (store_user_lock(store, error_r) < 0)
		return -1;
	if (mbl_read(store, &l, error_r) == 0) {
		for (size_t i = 0; i < l.n && e == NULL; i++)
			if (l.e[i].id == id)
				e = &l.e[i];
		if (e == NULL)
			store_set_err(store, STORE_ERR_NOTFOUND, error_r,
			    "mailbox was deleted");
		else {
			char *dir = store_mbox_dir(store, id);

			ret = !store_box_unborn(dir) ? 0 :
			    store_box_init_files(store, dir, e->uidvalidity,
				error_r);
			free(dir);
		}
		mbl_free(&l);
	}
	store_user_unlock(store);
	return ret;
}

/* mbl_create_parents - create missing parents of name as plain mailboxes */
static int
mbl_create_parents(struct store *store, struct mbl *l, const char *name,
    const char **error_r)
{
	char *p = xstrdup(name);

	for (char *s = strchr(p, '/'); s != NULL; s = strchr(s + 1, '/')) {
		struct mbl_entry *e;

		*s = '\0';
		e = mbl_find(l, p);
		if ((e == NULL || e->id == 0) &&
		    mbl_new_mailbox(store, l, p, 0, error_r) < 0) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	return 0;
}

int
store_mailbox_create(struct store *store, const char *name, unsigned attrs,
    const char **error_r)
{
	char *canon = canon_name(store, name, error_r);
	struct mbl l;
	struct mbl_entry *e;
	int ret = -1;

	if (canon == NULL)
		return -1;
	if (store_user_lock(store, error_r) < 0) {
		free(canon);
		return -1;
	}
	if (mbl_read(store, &l, error_r) == 0) {
		e = mbl_find(&l, canon);
		if (e != NULL && e->id != 0)
			store_set_err(store, STORE_ERR_EXISTS, error_r,
			    "mailbox already exists");
		else if (mbl_create_parents(store, &l, canon, error_r) == 0 &&
		    mbl_new_mailbox(store, &l, canon,
			attrs & STORE_MBOX_SPECIAL_USE, error_r) == 0 &&
		    mbl_write(store, &l, error_r) == 0)
			ret = 0;
		mbl_free(&l);
	}
	store_user_unlock(store);
	free(canon);
	return ret;
}

int
store_mailbox_delete(struct store *store, const char *name,
    const char **error_r)
{
	char *canon = canon_name(store, name, error_r);
	struct mbl l;
	struct mbl_entry *e;
	uint32_t id = 0;
	int ret = -1;

	if (canon == NULL)
		return -1;
	if (strcmp(canon, "INBOX") == 0) {
		free(canon);
		return store_set_err(store, STORE_ERR_INVALID, error_r,
		    "INBOX cannot be deleted");
	}
	if (store_user_lock(store, error_r) < 0) {
		free(canon);
		return -1;
	}
	if (mbl_read(store, &l, error_r) == 0) {
		e = mbl_find(&l, canon);
		if (e == NULL || e->id == 0)
			store_set_err(store, STORE_ERR_NOTFOUND, error_r,
			    "no such mailbox");
		else {
			id = e->id;
			if (e->attrs & STORE_MBOX_SUBSCRIBED) {
				e->id = 0;
				e->uidvalidity = 0;
				e->attrs = STORE_MBOX_SUBSCRIBED;
			} else
				mbl_remove(&l, e);
			if (mbl_write(store, &l, error_r) == 0)
				ret = 0;
		}
		mbl_free(&l);
	}
	if (ret == 0) {
		/* tell open sessions, then remove the files */
		const char *err;
		struct store_mailbox *box =
		    store_box_open_id(store, id, canon, false, &err);
		char *dir = store_mbox_dir(store, id);

		if (box != NULL) {
			if (store_box_lock(box, &err) == 0) {
				box->whdr.flags |= STORE_IDX_DELETED;
				(void)store_box_write_header(box, &err);
				store_box_unlock(box);
			}
			store_mailbox_close(&box);
		}
		(void)store_rm_rf(dir);
		free(dir);
		store->err = STORE_ERR_NONE;
	}
	store_user_unlock(store);
	free(canon);
	return ret;
}

int
store_mailbox_rename(struct store *store, const char *oldname,
    const char *newname, const char **error_r)
{
	char *o = canon_name(store, oldname, error_r);
	char *n = o == NULL ? NULL : canon_name(store, newname, error_r);
	struct mbl l;
	struct mbl_entry *e;
	size_t olen;
	int ret = -1;

	if (n == NULL) {
		free(o);
		return -1;
	}
	olen = strlen(o);
	if (strcmp(n, "INBOX") == 0 ||
	    (strncmp(n, o, olen) == 0 && (n[olen] == '/' || n[olen] == '\0'))) {
		free(o);
		free(n);
		return store_set_err(store, STORE_ERR_INVALID, error_r,
		    "cannot rename a mailbox to INBOX or into itself");
	}
	if (store_user_lock(store, error_r) < 0)
		goto out;
	if (mbl_read(store, &l, error_r) < 0) {
		store_user_unlock(store);
		goto out;
	}
	e = mbl_find(&l, o);
	if (e == NULL || e->id == 0) {
		store_set_err(store, STORE_ERR_NOTFOUND, error_r, "no such mailbox");
		goto done;
	}
	if ((e = mbl_find(&l, n)) != NULL && e->id != 0) {
		store_set_err(store, STORE_ERR_EXISTS, error_r,
		    "mailbox already exists");
		goto done;
	}
	if (strcmp(o, "INBOX") == 0) {
		/* RFC 3501 6.3.5: move INBOX's messages, leave an empty INBOX */
		struct mbl_entry *in = mbl_find(&l, "INBOX");
		uint32_t id = in->id, uv = in->uidvalidity;

		if (mbl_create_parents(store, &l, n, error_r) < 0)
			goto done;
		in = mbl_find(&l, "INBOX");
		in->id = 0;
		if (mbl_new_mailbox(store, &l, "INBOX", in->attrs &
		    STORE_MBOX_SPECIAL_USE, error_r) < 0)
			goto done;
		e = mbl_find(&l, n);
		if (e == NULL)
			e = mbl_add(&l, id, 0, uv, n);
		e->id = id;
		e->uidvalidity = uv;
	} else {
		/* every name at or below o moves; none may collide */
		for (size_t i = 0; i < l.n; i++) {
			char *nn;
			struct mbl_entry *c;

			if (strncmp(l.e[i].name, o, olen) != 0 ||
			    (l.e[i].name[olen] != '/' && l.e[i].name[olen] != '\0') ||
			    l.e[i].id == 0)
				continue;
			nn = xasprintf("%s%s", n, l.e[i].name + olen);
			c = mbl_find(&l, nn);
			if ((c != NULL && c->id != 0) ||
			    strlen(nn) > STORE_MAILBOX_NAME_MAX) {
				free(nn);
				store_set_err(store, STORE_ERR_EXISTS, error_r,
				    "a mailbox below the new name exists");
				goto done;
			}
			free(nn);
		}
		for (size_t i = 0; i < l.n; i++) {
			char *nn;
			struct mbl_entry *c;

			if (strncmp(l.e[i].name, o, olen) != 0 ||
			    (l.e[i].name[olen] != '/' && l.e[i].name[olen] != '\0') ||
			    l.e[i].id == 0)
				continue;
			nn = xasprintf("%s%s", n, l.e[i].name + olen);
			/* a subscription-only entry of the new name merges */
			if ((c = mbl_find(&l, nn)) != NULL) {
				l.e[i].attrs |= c->attrs & STORE_MBOX_SUBSCRIBED;
				if (c < &l.e[i])
					i--;
				mbl_remove(&l, c);
			}
			free(l.e[i].name);
			l.e[i].name = nn;
		}
		if (mbl_create_parents(store, &l, n, error_r) < 0)
			goto done;
	}
	if (mbl_write(store, &l, error_r) == 0)
		ret = 0;
done:
	mbl_free(&l);
	store_user_unlock(store);
out:
	free(o);
	free(n);
	return ret;
}

int
store_mailbox_set_attrs(struct store *store, const char *name, unsigned attrs,
    const char **error_r)
{
	char *canon = canon_name(store, name, error_r);
	struct mbl l;
	struct mbl_entry *e;
	int ret = -1;

	if (canon == NULL)
		return -1;
	if (store_user_lock(store, error_r) < 0) {
		free(canon);
		return -1;
	}
	if (mbl_read(store, &l, error_r) == 0) {
		e = mbl_find(&l, canon);
		if (e == NULL || e->id == 0)
			store_set_err(store, STORE_ERR_NOTFOUND, error_r,
			    "no such mailbox");
		else {
			e->attrs = (e->attrs & ~STORE_MBOX_SPECIAL_USE) |
			    (attrs & STORE_MBOX_SPECIAL_USE);
			ret = mbl_write(store, &l, error_r);
		}
		mbl_free(&l);
	}
	store_user_unlock(store);
	free(canon);
	return ret;
}

int
store_subscribe(struct store *store, const char *name, bool subscribe,
    const char **error_r)
{
	char *canon = canon_name(store, name, error_r);
	struct mbl l;
	struct mbl_entry *e;
	int ret = -1;

	if (canon == NULL)
		return -1;
	if (store_user_lock(store, error_r) < 0) {
		free(canon);
		return -1;
	}
	if (mbl_read(store, &l, error_r) == 0) {
		e = mbl_find(&l, canon);
		if (subscribe) {
			if (e == NULL)
				mbl_add(&l, 0, STORE_MBOX_SUBSCRIBED, 0, canon);
			else
				e->attrs |= STORE_MBOX_SUBSCRIBED;
		} else if (e != NULL) {
			if (e->id == 0)
				mbl_remove(&l, e);
			else
				e->attrs &= ~STORE_MBOX_SUBSCRIBED;
		}
		ret = mbl_write(store, &l, error_r);
		mbl_free(&l);
	}
	store_user_unlock(store);
	free(canon);
	return ret;
}

int
store_ensure_defaults(struct store *store, const char **error_r)
{
	static const struct {
		const char *name;
		unsigned attrs;
	} defs[] = {
		{ "INBOX", 0 },
		{ "Drafts", STORE_MBOX_DRAFTS },
		{ "Sent", STORE_MBOX_SENT },
		{ "Trash", STORE_MBOX_TRASH },
		{ "Junk", STORE_MBOX_JUNK },
		{ "Archive", STORE_MBOX_ARCHIVE },
	};
	struct mbl l;
	bool changed = false;
	int ret = -1;

	/* the common case, everything there, without the lock */
	if (mbl_read(store, &l, error_r) < 0)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(defs); i++) {
		struct mbl_entry *e = mbl_find(&l, defs[i].name);

		if (e == NULL || e->id == 0)
			changed = true;
	}
	mbl_free(&l);
	if (!changed)
		return 0;
	if (store_user_lock(store, error_r) < 0)
		return -1;
	if (mbl_read(store, &l, error_r) == 0) {
		ret = 0;
		changed = false;
		for (size_t i = 0; i < N_ELEMENTS(defs) && ret == 0; i++) {
			struct mbl_entry *e = mbl_find(&l, defs[i].name);

			if (e != NULL && e->id != 0)
				continue;
			if (mbl_new_mailbox(store, &l, defs[i].name,
			    defs[i].attrs, error_r) < 0) {
				ret = -1;
				break;
			}
			mbl_find(&l, defs[i].name)->attrs |= STORE_MBOX_SUBSCRIBED;
			changed = true;
		}
		if (ret == 0 && changed)
			ret = mbl_write(store, &l, error_r);
		mbl_free(&l);
	}
	store_user_unlock(store);
	return ret;
}

static int
info_cmp(const void *a, const void *b)
{
	const struct store_mailbox_info *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;

	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
store_mailbox_list(struct store *store, struct store_mailbox_info **list_r,
    size_t *count_r, const char **error_r)
{
	struct mbl l;
	struct store_mailbox_info *out;

	if (mbl_read(store, &l, error_r) < 0)
		return -1;
	out = xcalloc(l.n + 1, sizeof(*out));
	for (size_t i = 0; i < l.n; i++) {
		out[i].name = l.e[i].name;
		l.e[i].name = NULL;
		out[i].attrs = l.e[i].attrs & ~STORE_MBOX_HASCHILDREN;
		if (l.e[i].id == 0)
			out[i].attrs |= STORE_MBOX_NONEXISTENT;
		out[i].uidvalidity = l.e[i].uidvalidity;
	}
	for (size_t i = 0; i < l.n; i++) {
		size_t len = strlen(out[i].name);

		for (size_t j = 0; j < l.n; j++)
			if (j != i && (out[j].attrs & STORE_MBOX_NONEXISTENT) == 0 &&
			    strncmp(out[j].name, out[i].name, len) == 0 &&
			    out[j].name[len] == '/') {
				out[i].attrs |= STORE_MBOX_HASCHILDREN;
				break;
			}
	}
	qsort(out, l.n, sizeof(*out), info_cmp);
	*list_r = out;
	*count_r = l.n;
	mbl_free(&l);
	return 0;
}

void
store_mailbox_list_free(struct store_mailbox_info **listp, size_t count)
{
	struct store_mailbox_info *list = *listp;

	if (list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((char *)(uintptr_t)list[i].name);	/* we allocated it; const only for callers */
	free(list);
	*listp = NULL;
}

/* read_header_file - a consistent copy of a mailbox index header, no lock */
static int
read_header_file(struct store *store, uint32_t id, struct store_hdr *hdr_r,
    const char **error_r)
{
	char *dir = store_mbox_dir(store, id);
	char *path = xasprintf("%s/index", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

	free(dir);
	if (fd < 0 && errno == ENOENT) {
		/* not materialised yet (or the index not built): open it */
		struct store_mailbox *box = store_box_open_id(store, id, "",
		    true, error_r);

		free(path);
		if (box == NULL)
			return -1;
		*hdr_r = box->vhdr;
		store_box_free(&box);
		return 0;
	}
	if (fd < 0) {
		store_set_syserr(store, error_r, "open", path);
		free(path);
		return -1;
	}
	for (int tries = 0; tries < 1000; tries++) {
		struct store_hdr a;
		uint32_t seq2;

		if (store_pread_all(fd, &a, sizeof(a), 0) < 0 ||
		    store_pread_all(fd, &seq2, 4, 8) < 0) {
			store_set_syserr(store, error_r, "read", path);
			break;
		}
		if (a.magic != STORE_IDX_MAGIC || a.version != STORE_IDX_VERSION) {
			store_set_err(store, STORE_ERR_CORRUPT, error_r,
			    "%s: bad index header", path);
			break;
		}
		if ((a.seq & 1) == 0 && a.seq == seq2) {
			*hdr_r = a;
			ret = 0;
			break;
		}
		usleep(100);
	}
	close(fd);
	free(path);
	return ret;
}

int
store_mailbox_status(struct store *store, const char *name,
    struct store_status *status_r, const char **error_r)
{
	uint32_t id;
	struct store_hdr h;

	if (store_mbox_lookup(store, name, &id, NULL, error_r) < 0 ||
	    read_header_file(store, id, &h, error_r) < 0)
		return -1;
	memset(status_r, 0, sizeof(*status_r));
	status_r->messages = h.messages;
	status_r->unseen = h.unseen;
	status_r->deleted = h.deleted;
	status_r->uidvalidity = h.uidvalidity;
	status_r->uidnext = h.uidnext;
	status_r->highestmodseq = h.highestmodseq;
	status_r->size = h.bytes;
	return 0;
}

int
store_quota_get(struct store *store, struct store_quota *usage_r,
    const char **error_r)
{
	struct mbl l;
	int ret = 0;

	memset(usage_r, 0, sizeof(*usage_r));
	if (mbl_read(store, &l, error_r) < 0)
		return -1;
	for (size_t i = 0; i < l.n && ret == 0; i++) {
		struct store_hdr h;

		if (l.e[i].id == 0)
			continue;
		if (read_header_file(store, l.e[i].id, &h, error_r) < 0)
			ret = -1;
		else {
			usage_r->bytes += h.bytes;
			usage_r->messages += h.messages;
		}
	}
	mbl_free(&l);
	return ret;
}

int
store_quota_check(struct store *store, uint64_t limit_bytes,
    uint64_t limit_messages, uint64_t add_bytes, uint64_t add_messages,
    const char **error_r)
{
	struct store_quota q;

	if (limit_bytes == 0 && limit_messages == 0)
		return 0;
	if (store_quota_get(store, &q, error_r) < 0)
		return -1;
	if ((limit_bytes != 0 && q.bytes + add_bytes > limit_bytes) ||
	    (limit_messages != 0 && q.messages + add_messages > limit_messages))
		return store_set_err(store, STORE_ERR_QUOTA, error_r,
		    "quota exceeded (%llu bytes, %llu messages in use)",
		    (unsigned long long)q.bytes, (unsigned long long)q.messages);
	return 0;
}

/* ---------------------------------------------------------------- tokens */

/* mbl_name_of - the name of mailbox id, or NULL */
static char *
mbl_name_of(struct store *store, uint32_t id)
{
	struct mbl l;
	const char *err;
	char *name = NULL;

	if (mbl_read(store, &l, &err) < 0)
		return NULL;
	for (size_t i = 0; i < l.n; i++)
		if (l.e[i].id == id)
			name = xstrdup(l.e[i].name);
	mbl_free(&l);
	return name;
}

/*
 * token_committed - did (box, uid) get committed with this token hash?
 * The record (live or expunged) or, after compaction, its tombstone says.
 */
static int
token_committed(struct store_mailbox *box, uint32_t uid, uint64_t hash,
    const char **error_r)
{
	struct store_hdr h;
	int64_t i;
	struct store_rec rec;
	unsigned char *buf = NULL;
	size_t buf_size = 0;
	uint64_t off;
	int ret = 0;

	store_box_hdr_snapshot(box, &h);
	i = store_box_find_uid(box, uid, h.n_records);
	if (i >= 0 && store_box_read_rec(box, (uint32_t)i, &rec) == 0)
		return rec.token_hash == hash ? 1 : 0;
	if (uid >= h.uidnext)
		return 0;
	/* rare: look for the tombstone */
	for (off = 0; off < h.log_applied;) {
		struct store_log_ent ent;

		if (store_box_read_entry(box, box->log_fd, off, &ent, &buf,
		    &buf_size, error_r) < 0) {
			ret = -1;
			break;
		}
		if (STORE_LOG_TYPE(ent.type) == STORE_LOG_EXPUNGE) {
			struct store_log_expunge x;

			memcpy(&x, buf + sizeof(ent), sizeof(x));
			if (x.uid == uid && x.token_hash == hash) {
				ret = 1;
				break;
			}
		}
		off += ent.len;
	}
	free(buf);
	return ret;
}

/*
 * store_token_find - 1 if token was committed (result filled), 0 if not.
 * Callers that go on to store must hold the user lock.
 */
int
store_token_find(struct store *store, const char *token,
    struct store_append_result *result_r, const char **error_r)
{
	char *path = xasprintf("%s/tokens", store->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t hash = store_hash64(token, strlen(token));
	size_t tlen = strlen(token);
	struct stat st;
	unsigned char *buf;
	size_t n;
	int ret = 0;

	if (fd < 0) {
		if (errno != ENOENT)
			ret = store_set_syserr(store, error_r, "open", path);
		free(path);
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = store_set_syserr(store, error_r, "stat", path);
		close(fd);
		free(path);
		return ret;
	}
	n = (size_t)st.st_size / STORE_TOKEN_REC_SIZE;
	buf = xmalloc(n * STORE_TOKEN_REC_SIZE + 1);
	if (n > 0 && store_pread_all(fd, buf, n * STORE_TOKEN_REC_SIZE, 0) < 0) {
		ret = store_set_syserr(store, error_r, "read", path);
		n = 0;
	}
	close(fd);
	free(path);
	/* newest first: the latest attempt for a token is the one that counts */
	while (n-- > 0 && ret == 0) {
		struct store_token_rec r;
		struct store_mailbox *box;
		char *name;
		int c;

		memcpy(&r, buf + n * STORE_TOKEN_REC_SIZE, sizeof(r));
		if (r.hash != hash || r.len != tlen ||
		    memcmp(r.token, token, tlen) != 0)
			continue;
		name = mbl_name_of(store, r.mbox_id);
		if (name == NULL) {
			/* the mailbox was deleted since: it was delivered */
			memset(result_r, 0, sizeof(*result_r));
			result_r->uid = r.uid;
			result_r->uidvalidity = r.uidvalidity;
			result_r->duplicate = true;
			ret = 1;
			break;
		}
		box = store_box_open_id(store, r.mbox_id, name, true, error_r);
		if (box == NULL) {
			free(name);
			ret = -1;
			break;
		}
		c = box->vhdr.uidvalidity != r.uidvalidity ? 0 :
		    token_committed(box, r.uid, hash, error_r);
		store_mailbox_close(&box);
		if (c < 0)
			ret = -1;
		else if (c > 0) {
			memset(result_r, 0, sizeof(*result_r));
			result_r->uid = r.uid;
			result_r->uidvalidity = r.uidvalidity;
			result_r->duplicate = true;
			pst_strlcpy(result_r->mailbox, name,
			    sizeof(result_r->mailbox));
			ret = 1;
		}
		free(name);
		/* an uncommitted attempt: earlier records are older attempts */
		break;
	}
	free(buf);
	return ret;
}

int
store_token_lookup(struct store *store, const char *token,
    struct store_append_result *result_r, const char **error_r)
{
	if (!store_token_ok(token))
		return store_set_err(store, STORE_ERR_INVALID, error_r,
		    "invalid delivery token");
	return store_token_find(store, token, result_r, error_r);
}

/* token_compact - drop expired records once the file is big (user lock held) */
static int
token_compact(struct store *store, const char *path, int fd, size_t n)
{
	unsigned char *buf = xmalloc(n * STORE_TOKEN_REC_SIZE + 1);
	size_t keep = 0;
	time_t now = time(NULL);
	int ret;

	if (store_pread_all(fd, buf, n * STORE_TOKEN_REC_SIZE, 0) < 0) {
		free(buf);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_token_rec r;

		memcpy(&r, buf + i * STORE_TOKEN_REC_SIZE, sizeof(r));
		if (r.time + STORE_TOKEN_LIFETIME >= now || n - i <= STORE_TOKEN_COMPACT_AT / 2)
			memmove(buf + keep++ * STORE_TOKEN_REC_SIZE,
			    buf + i * STORE_TOKEN_REC_SIZE, STORE_TOKEN_REC_SIZE);
	}
	ret = store_replace_file(store, path, buf, keep * STORE_TOKEN_REC_SIZE);
	free(buf);
	return ret;
}

/*
 * store_token_record - durably note "token is being stored as (id, uid)"
 * before the commit that it protects. Caller holds the user lock.
 */
int
store_token_record(struct store *store, const char *token, uint32_t mbox_id,
    uint32_t uidvalidity, uint32_t uid, const char **error_r)
{
	char *path = xasprintf("%s/tokens", store->dir);
	struct store_token_rec r;
	struct stat st;
	int fd, ret = -1;

	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0)
		goto fail;
	if ((size_t)st.st_size / STORE_TOKEN_REC_SIZE >= STORE_TOKEN_COMPACT_AT) {
		if (token_compact(store, path, fd,
		    (size_t)st.st_size / STORE_TOKEN_REC_SIZE) < 0)
			goto fail;
		close(fd);
		fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			goto fail;
	} else if (st.st_size % STORE_TOKEN_REC_SIZE != 0) {
		/* a torn record from a crash: cut it off */
		if (ftruncate(fd, st.st_size - st.st_size % STORE_TOKEN_REC_SIZE) < 0)
			goto fail;
	}
	memset(&r, 0, sizeof(r));
	r.hash = store_hash64(token, strlen(token));
	r.mbox_id = mbox_id;
	r.uid = uid;
	r.uidvalidity = uidvalidity;
	r.time = (int64_t)time(NULL);
	r.len = (uint8_t)strlen(token);
	memcpy(r.token, token, r.len);
	if (store_write_all(fd, &r, sizeof(r)) < 0 || store_fsync(store, fd) < 0)
		goto fail;
	ret = 0;
fail:
	if (ret < 0)
		store_set_syserr(store, error_r, "write", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}
