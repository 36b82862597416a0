/* SPDX-License-Identifier: MIT */
/*
 * vacationd_db - the per-user "already answered" database
 *
 * DESCRIPTION
 *	A Berkeley DB btree per user, $vacation_directory/replied/USER.db:
 *	key = handle NUL lower-cased sender (vacationd_reply.c builds it),
 *	value = i64 big endian, the time until which that sender is not
 *	answered again for that handle. Expired records are dropped at each
 *	write. Every use holds an fcntl lock on replied/USER.lock from
 *	before the check to after the mark, so two vacationd processes
 *	never both answer one sender; the database is synced before the
 *	lock is released. The user name is allow-listed by the caller
 *	(userdb_name_ok) before it becomes a path.
 */
#include <db.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"

#include "vacationd.h"

struct vacationd_db {
	DB *db;
	int lock_fd;
};

/* vacationd_db_open - see vacationd.h */
struct vacationd_db *
vacationd_db_open(const char *user, const char **error_r)
{
	struct vacationd_db *vdb;
	char *dir = xasprintf("%s/replied", vacationd_settings.directory);
	char *path = xasprintf("%s/%s.db", dir, user);
	char *lock = xasprintf("%s/%s.lock", dir, user);
	int ret, fd;
	DB *db = NULL;

	vdb = NULL;
	/* $vacation_directory stays searchable: lmtpd reads settings.db */
	if (mkdir_p(vacationd_settings.directory, 0750) < 0 ||
	    mkdir_p(dir, 0700) < 0) {
		*error_r = "cannot create the replied directory";
		goto out;
	}
	if ((fd = lock_file(lock, true)) < 0) {
		*error_r = "cannot lock the replied database";
		goto out;
	}
	if ((ret = db_create(&db, NULL, 0)) != 0 ||
	    (ret = db->open(db, NULL, path, NULL, DB_BTREE, DB_CREATE,
	    0600)) != 0) {
		*error_r = db_strerror(ret);
		if (db != NULL)
			db->close(db, 0);
		(void)close(fd);
		goto out;
	}
	vdb = xcalloc(1, sizeof(*vdb));
	vdb->db = db;
	vdb->lock_fd = fd;
out:
	free(dir);
	free(path);
	free(lock);
	return vdb;
}

static int64_t
get_i64(const unsigned char *b)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* vacationd_db_seen - see vacationd.h */
int
vacationd_db_seen(struct vacationd_db *vdb, const void *key, size_t klen,
    time_t now, const char **error_r)
{
	DBT k, v;
	int ret;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;	/* BDB does not write keys */
	k.size = (u_int32_t)klen;
	ret = vdb->db->get(vdb->db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0) {
		*error_r = db_strerror(ret);
		return -1;
	}
	if (v.size != 8)	/* a damaged record: treat as not answered */
		return 0;
	return get_i64(v.data) > (int64_t)now ? 1 : 0;
}

/* vacationd_db_mark - see vacationd.h */
int
vacationd_db_mark(struct vacationd_db *vdb, const void *key, size_t klen,
    time_t now, unsigned period, const char **error_r)
{
	unsigned char b[8];
	uint64_t until = (uint64_t)((int64_t)now + (int64_t)period);
	DBC *cur;
	DBT k, v;
	int ret, i;

	/* drop the expired records first (a user's set stays small) */
	if ((ret = vdb->db->cursor(vdb->db, NULL, &cur, 0)) == 0) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		while (cur->get(cur, &k, &v, DB_NEXT) == 0)
			if (v.size != 8 || get_i64(v.data) <= (int64_t)now)
				(void)cur->del(cur, 0);
		cur->close(cur);
	}
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(until >> (56 - 8 * i));
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)klen;
	v.data = b;
	v.size = sizeof(b);
	if ((ret = vdb->db->put(vdb->db, NULL, &k, &v, 0)) != 0 ||
	    (ret = vdb->db->sync(vdb->db, 0)) != 0) {
		*error_r = db_strerror(ret);
		return -1;
	}
	return 0;
}

/* vacationd_db_close - see vacationd.h */
void
vacationd_db_close(struct vacationd_db **dbp)
{
	struct vacationd_db *vdb = *dbp;

	if (vdb == NULL)
		return;
	vdb->db->close(vdb->db, 0);
	(void)close(vdb->lock_fd);
	free(vdb);
	*dbp = NULL;
}
