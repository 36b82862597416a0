/* SPDX-License-Identifier: MIT */
/*
 * newsgw_history - the Message-ID history and the pull high-water marks
 *
 * DESCRIPTION
 *	One Berkeley DB btree ($news_gw_history): key a Message-ID
 *	("<...>"), value "D TIME" where D is 'm' (we posted it from mail)
 *	or 'n' (we mailed it from news) and TIME when; key "hwm GROUP",
 *	value the number of the last article pulled from GROUP. A
 *	Message-ID never starts with "hwm ", so the two kinds cannot meet.
 *
 *	Several news-gw processes use the file at once (LMTP and feed
 *	workers, the puller), and a plain DB file has no locking of its
 *	own: every operation takes an exclusive fcntl lock on
 *	HISTORY.lock, opens the database, works, closes (which syncs), and
 *	releases the lock. The history is small and each operation short.
 *
 *	Expiry: newsgw_history_expire() walks the btree and deletes
 *	Message-IDs older than $news_gw_history_lifetime; the puller's
 *	wakeup and every 500th addition call it.
 *
 *	Every failure is logged here and returned as -1; callers turn it
 *	into a temporary failure.
 */
#include <db.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "safe_file.h"
#include "str.h"

#include "newsgw.h"

#define NEWSGW_HWM_PREFIX "hwm "

/* newsgw_history_open - lock and open; the lock fd into *lock_r */
static DB *
newsgw_history_open(int *lock_r, struct log_ctx *log)
{
	struct str *path = str_new(0, 0), *dir = str_new(0, 0);
	const char *slash;
	DB *db = NULL;
	int ret;

	*lock_r = -1;
	slash = strrchr(newsgw_settings.history, '/');
	if (slash != NULL && slash != newsgw_settings.history) {
		str_set(dir, newsgw_settings.history,
		    (size_t)(slash - newsgw_settings.history));
		if (mkdir_p(str_c(dir), 0700) < 0 && errno != EEXIST) {
			log_error(log, "mkdir %s: %m", str_c(dir));
			goto out;
		}
	}
	str_printf(path, "%s.lock", newsgw_settings.history);
	if ((*lock_r = lock_file(str_c(path), true)) < 0) {
		log_error(log, "lock %s: %m", str_c(path));
		goto out;
	}
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		log_error(log, "db_create: %s", db_strerror(ret));
		db = NULL;
		goto fail;
	}
	ret = db->open(db, NULL, newsgw_settings.history, NULL, DB_BTREE,
	    DB_CREATE, 0600);
	if (ret != 0) {
		log_error(log, "open %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		db->close(db, 0);
		db = NULL;
		goto fail;
	}
	goto out;
fail:
	close(*lock_r);
	*lock_r = -1;
out:
	str_free(&path);
	str_free(&dir);
	return db;
}

/* newsgw_history_close - close (sync) and unlock; -1 if the sync failed */
static int
newsgw_history_close(DB *db, int lock_fd, struct log_ctx *log)
{
	int ret = db->close(db, 0);

	close(lock_fd);
	if (ret != 0) {
		log_error(log, "close %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		return -1;
	}
	return 0;
}

/* newsgw_history_get - the value of key into out; 1, 0 absent, -1 */
static int
newsgw_history_get(const char *key, struct str *out, struct log_ctx *log)
{
	DBT k, v;
	DB *db;
	int lock_fd, ret, rc;

	if ((db = newsgw_history_open(&lock_fd, log)) == NULL)
		return -1;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)strlen(key);
	ret = db->get(db, NULL, &k, &v, 0);
	if (ret == 0) {
		str_set(out, v.data, v.size);
		rc = 1;
	} else if (ret == DB_NOTFOUND) {
		rc = 0;
	} else {
		log_error(log, "read %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		rc = -1;
	}
	if (newsgw_history_close(db, lock_fd, log) < 0)
		rc = -1;
	return rc;
}

/* newsgw_history_put - set key to value; 0 or -1 */
static int
newsgw_history_put(const char *key, const char *value, struct log_ctx *log)
{
	DBT k, v;
	DB *db;
	int lock_fd, ret, rc = 0;

	if ((db = newsgw_history_open(&lock_fd, log)) == NULL)
		return -1;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)strlen(key);
	v.data = (void *)(uintptr_t)value;
	v.size = (u_int32_t)strlen(value);
	if ((ret = db->put(db, NULL, &k, &v, 0)) != 0) {
		log_error(log, "write %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		rc = -1;
	}
	if (newsgw_history_close(db, lock_fd, log) < 0)
		rc = -1;
	return rc;
}

/* newsgw_history_seen - see newsgw.h */
int
newsgw_history_seen(const char *msgid, char *dir_r, struct log_ctx *log)
{
	struct str *v = str_new(0, 0);
	int rc = newsgw_history_get(msgid, v, log);

	if (rc == 1 && dir_r != NULL)
		*dir_r = str_len(v) > 0 ? str_c(v)[0] : '?';
	str_free(&v);
	return rc;
}

/* newsgw_history_add_at - see newsgw.h */
int
newsgw_history_add_at(const char *msgid, char dir, time_t when,
    struct log_ctx *log)
{
	char value[64];

	snprintf(value, sizeof(value), "%c %lld", dir, (long long)when);
	return newsgw_history_put(msgid, value, log);
}

/* newsgw_history_add - see newsgw.h */
int
newsgw_history_add(const char *msgid, char dir, struct log_ctx *log)
{
	static unsigned adds;
	int rc;

	rc = newsgw_history_add_at(msgid, dir, time(NULL), log);
	if (rc == 0 && ++adds % 500 == 0)
		(void)newsgw_history_expire(log);
	return rc;
}

/* newsgw_history_hwm - see newsgw.h */
int
newsgw_history_hwm(const char *group, unsigned long *hwm_r, bool *found_r,
    struct log_ctx *log)
{
	struct str *key = str_new(0, 0), *v = str_new(0, 0);
	int rc;

	*hwm_r = 0;
	*found_r = false;
	str_printf(key, NEWSGW_HWM_PREFIX "%s", group);
	rc = newsgw_history_get(str_c(key), v, log);
	if (rc == 1) {
		if (!str_to_ulong(str_c(v), str_len(v), ~0UL, hwm_r)) {
			log_warn(log, "bad high-water mark for %s: reset",
			    group);
			*hwm_r = 0;
		} else
			*found_r = true;
		rc = 0;
	}
	str_free(&key);
	str_free(&v);
	return rc;
}

/* newsgw_history_set_hwm - see newsgw.h */
int
newsgw_history_set_hwm(const char *group, unsigned long hwm,
    struct log_ctx *log)
{
	struct str *key = str_new(0, 0);
	char value[32];
	int rc;

	str_printf(key, NEWSGW_HWM_PREFIX "%s", group);
	snprintf(value, sizeof(value), "%lu", hwm);
	rc = newsgw_history_put(str_c(key), value, log);
	str_free(&key);
	return rc;
}

/* newsgw_history_expire - see newsgw.h */
int
newsgw_history_expire(struct log_ctx *log)
{
	DBC *cur;
	DBT k, v;
	DB *db;
	time_t cutoff = time(NULL) - (time_t)newsgw_settings.history_lifetime;
	unsigned long removed = 0;
	char buf[32];
	long long when;
	char *end;
	int lock_fd, ret, rc = 0;

	if ((db = newsgw_history_open(&lock_fd, log)) == NULL)
		return -1;
	if ((ret = db->cursor(db, NULL, &cur, 0)) != 0) {
		log_error(log, "cursor %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		(void)newsgw_history_close(db, lock_fd, log);
		return -1;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	while ((ret = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
		if (k.size == 0 || ((const char *)k.data)[0] != '<')
			continue;
		if (v.size < 3 || v.size >= sizeof(buf))
			continue;
		memcpy(buf, (const char *)v.data + 2, v.size - 2);
		buf[v.size - 2] = '\0';
		errno = 0;
		when = strtoll(buf, &end, 10);
		if (errno != 0 || *end != '\0' || when >= (long long)cutoff)
			continue;
		if (cur->del(cur, 0) == 0)
			removed++;
	}
	if (ret != DB_NOTFOUND) {
		log_error(log, "walk %s: %s", newsgw_settings.history,
		    db_strerror(ret));
		rc = -1;
	}
	cur->close(cur);
	if (newsgw_history_close(db, lock_fd, log) < 0)
		rc = -1;
	if (removed > 0)
		log_info(log, "history: expired %lu Message-IDs", removed);
	return rc;
}
