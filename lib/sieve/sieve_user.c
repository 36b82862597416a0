/* SPDX-License-Identifier: MIT */
/*
 * sieve_user - a user's Sieve scripts on disk (see sieve_user.h)
 *
 * DESCRIPTION
 *	Every change to the set of scripts (put, activate, delete, rename)
 *	holds DIR/lock, so two ManageSieve sessions of one user cannot
 *	race a quota check against each other. Readers (lmtpd) take no
 *	lock: each change is one rename(2) or link(2), so a reader sees
 *	either the old or the new state.
 *
 *	Script files are written with safe_file (temporary, fsync, rename,
 *	directory fsync). The active link is replaced by creating a
 *	symlink under a temporary name and renaming it over "active".
 *
 * SECURITY
 *	Names are allow-listed (sieve_user_name_ok) before they are joined
 *	to DIR, and the active link's target is checked the same way when
 *	it is read, so nothing outside DIR is ever opened through a name.
 *	Files are created mode 0600, the directory 0700.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "safe_file.h"
#include "sieve/sieve.h"
#include "sieve/sieve_user.h"
#include "str.h"

#define SUFFIX_LEN	(sizeof(SIEVE_USER_SUFFIX) - 1)
#define DUP_RECORD	(1 + SIEVE_USER_DUP_ID_MAX + 8)
#define DUP_FILE_MAX	(4u * 1024 * 1024)

/* sieve_user_name_ok - see sieve_user.h */
bool
sieve_user_name_ok(const char *p, size_t n, const char **why_r)
{
	const unsigned char *s = (const unsigned char *)p;
	const char *why = NULL;
	size_t i, k, len;
	uint32_t cp;

	if (n == 0)
		why = "empty script name";
	else if (n > SIEVE_USER_NAME_MAX)
		why = "script name too long";
	else if (s[0] == '.')
		why = "script name starts with a dot";
	for (i = 0; why == NULL && i < n; i += len) {
		if (s[i] < 0x80) {
			len = 1;
			cp = s[i];
		} else if ((s[i] & 0xe0) == 0xc0) {
			len = 2;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4;
			cp = s[i] & 0x07;
		} else {
			why = "script name is not UTF-8";
			break;
		}
		if (i + len > n) {
			why = "script name is not UTF-8";
			break;
		}
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				why = "script name is not UTF-8";
				break;
			}
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (why != NULL)
			break;
		/* overlong forms, surrogates, beyond Unicode */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			why = "script name is not UTF-8";
			break;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
		    cp == 0x2028 || cp == 0x2029)
			why = "control character in script name";
		else if (cp == '/')
			why = "'/' in script name";
	}
	if (why != NULL && why_r != NULL)
		*why_r = why;
	return why == NULL;
}

/* sieve_user_dir - see sieve_user.h */
void
sieve_user_dir(const char *store_dir, const char *user, struct str *out)
{
	str_clear(out);
	str_printf(out, "%s/%s/sieve", store_dir, user);
}

/* script_path - DIR/NAME.sieve into out */
static int
script_path(const char *dir, const char *name, struct str *out,
    enum sieve_user_code *code_r, const char **error_r)
{
	if (!sieve_user_name_ok(name, strlen(name), error_r)) {
		if (code_r != NULL)
			*code_r = SIEVE_USER_BADNAME;
		return -1;
	}
	str_clear(out);
	str_printf(out, "%s/%s%s", dir, name, SIEVE_USER_SUFFIX);
	return 0;
}

/* set_code - failure helper */
static int
fail(enum sieve_user_code *code_r, enum sieve_user_code code,
    const char **error_r, const char *why)
{
	if (code_r != NULL)
		*code_r = code;
	*error_r = why;
	return -1;
}

/* dir_lock - create dir if needed and take its lock; the fd or -1 */
static int
dir_lock(const char *dir, const char **error_r)
{
	struct str *p = str_new(0, 0);
	int fd;

	if (mkdir_p(dir, 0700) < 0) {
		*error_r = "cannot create the script directory";
		str_free(&p);
		return -1;
	}
	str_printf(p, "%s/lock", dir);
	fd = lock_file(str_c(p), true);
	if (fd < 0)
		*error_r = "cannot lock the script directory";
	str_free(&p);
	return fd;
}

/* sieve_user_active - see sieve_user.h */
int
sieve_user_active(const char *dir, struct str *name, struct str *path,
    const char **error_r)
{
	char buf[SIEVE_USER_NAME_MAX + SUFFIX_LEN + 2];
	struct str *link = str_new(0, 0);
	ssize_t n;

	str_printf(link, "%s/%s", dir, SIEVE_USER_ACTIVE);
	n = readlink(str_c(link), buf, sizeof(buf));
	str_free(&link);
	if (n < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		*error_r = "cannot read the active script link";
		return -1;
	}
	if ((size_t)n >= sizeof(buf) || (size_t)n <= SUFFIX_LEN ||
	    memcmp(buf + n - SUFFIX_LEN, SIEVE_USER_SUFFIX, SUFFIX_LEN) != 0 ||
	    !sieve_user_name_ok(buf, (size_t)n - SUFFIX_LEN, NULL)) {
		errno = EINVAL;
		*error_r = "the active script link is damaged";
		return -1;
	}
	if (name != NULL)
		str_set(name, buf, (size_t)n - SUFFIX_LEN);
	if (path != NULL) {
		str_clear(path);
		str_printf(path, "%s/%.*s", dir, (int)n, buf);
	}
	return 1;
}

static int
script_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sieve_user_script *)a)->name,
	    ((const struct sieve_user_script *)b)->name);
}

/* sieve_user_list - see sieve_user.h */
int
sieve_user_list(const char *dir, struct sieve_user_script **list_r,
    size_t *count_r, const char **error_r)
{
	struct sieve_user_script *list = NULL;
	struct str *active = str_new(0, 0);
	size_t count = 0, cap = 0, len;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int has_active;

	*list_r = NULL;
	*count_r = 0;
	has_active = sieve_user_active(dir, active, NULL, error_r);
	d = opendir(dir);
	if (d == NULL) {
		str_free(&active);
		if (errno == ENOENT)
			return 0;
		*error_r = "cannot read the script directory";
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= SUFFIX_LEN || strcmp(de->d_name + len - SUFFIX_LEN,
		    SIEVE_USER_SUFFIX) != 0 ||
		    !sieve_user_name_ok(de->d_name, len - SUFFIX_LEN, NULL))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		list[count].name = xstrndup(de->d_name, len - SUFFIX_LEN);
		list[count].size = (uint64_t)st.st_size;
		list[count].active = has_active > 0 &&
		    strcmp(list[count].name, str_c(active)) == 0;
		count++;
	}
	closedir(d);
	str_free(&active);
	if (count > 1)
		qsort(list, count, sizeof(*list), script_cmp);
	*list_r = list;
	*count_r = count;
	return 0;
}

/* sieve_user_list_free - see sieve_user.h */
void
sieve_user_list_free(struct sieve_user_script **listp, size_t count)
{
	size_t i;

	if (*listp == NULL)
		return;
	for (i = 0; i < count; i++)
		free((*listp)[i].name);
	XFREE(*listp);
}

/* sieve_user_get - see sieve_user.h */
int
sieve_user_get(const char *dir, const char *name, struct str *out,
    size_t max, const char **error_r)
{
	struct str *p = str_new(0, 0);
	int ret = 1;

	if (script_path(dir, name, p, NULL, error_r) < 0) {
		str_free(&p);
		return 0;
	}
	if (read_file(str_c(p), out, max) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			ret = 0;
		else {
			*error_r = errno == E2BIG ? "script too large" :
			    "cannot read the script";
			ret = -1;
		}
	}
	str_free(&p);
	return ret;
}

/* quota_check - would name at size fit? (caller may hold the lock) */
static int
quota_check(const char *dir, const char *name, uint64_t size,
    const struct sieve_user_quota *q, enum sieve_user_code *code_r,
    const char **error_r)
{
	struct sieve_user_script *list;
	uint64_t total = size, scripts = 1;
	size_t count, i;

	if (!sieve_user_name_ok(name, strlen(name), error_r))
		return fail(code_r, SIEVE_USER_BADNAME, error_r, *error_r);
	if (q->max_script_size != 0 && size > q->max_script_size)
		return fail(code_r, SIEVE_USER_QUOTA_MAXSIZE, error_r,
		    "Script is too large");
	if (sieve_user_list(dir, &list, &count, error_r) < 0)
		return fail(code_r, SIEVE_USER_TRYLATER, error_r, *error_r);
	for (i = 0; i < count; i++) {
		if (strcmp(list[i].name, name) == 0)
			continue;
		scripts++;
		total += list[i].size;
	}
	sieve_user_list_free(&list, count);
	if (q->max_scripts != 0 && scripts > q->max_scripts)
		return fail(code_r, SIEVE_USER_QUOTA_MAXSCRIPTS, error_r,
		    "Too many scripts");
	if (q->max_storage != 0 && total > q->max_storage)
		return fail(code_r, SIEVE_USER_QUOTA_MAXSIZE, error_r,
		    "Not enough space for the script");
	return 0;
}

/* sieve_user_havespace - see sieve_user.h */
int
sieve_user_havespace(const char *dir, const char *name, uint64_t size,
    const struct sieve_user_quota *quota, enum sieve_user_code *code_r,
    const char **error_r)
{
	return quota_check(dir, name, size, quota, code_r, error_r);
}

/* drop_binary - remove DIR/NAME.sieve.svbin (best effort) */
static void
drop_binary(const struct str *path)
{
	struct str *b = str_new(0, 0);

	str_printf(b, "%s.svbin", str_c(path));
	(void)unlink(str_c(b));
	str_free(&b);
}

/* sieve_user_put - see sieve_user.h */
int
sieve_user_put(const char *dir, const char *name, const char *p, size_t n,
    const struct sieve_user_quota *quota, enum sieve_user_code *code_r,
    const char **error_r)
{
	struct str *path = str_new(0, 0);
	int lock, ret = -1;

	*code_r = SIEVE_USER_OK;
	if (script_path(dir, name, path, code_r, error_r) < 0)
		goto out;
	if ((lock = dir_lock(dir, error_r)) < 0) {
		*code_r = SIEVE_USER_TRYLATER;
		goto out;
	}
	if (quota_check(dir, name, n, quota, code_r, error_r) == 0) {
		if (safe_file_replace(str_c(path), p, n, 0600) < 0)
			(void)fail(code_r, SIEVE_USER_TRYLATER, error_r,
			    "cannot write the script");
		else {
			drop_binary(path);
			*code_r = SIEVE_USER_OK;
			ret = 0;
		}
	}
	close(lock);
out:
	str_free(&path);
	return ret;
}

/* link_active - point DIR/active at target (NULL = remove it) */
static int
link_active(const char *dir, const char *target, const char **error_r)
{
	struct str *link = str_new(0, 0), *tmp = str_new(0, 0);
	int ret = -1, tries;

	str_printf(link, "%s/%s", dir, SIEVE_USER_ACTIVE);
	if (target == NULL) {
		if (unlink(str_c(link)) < 0 && errno != ENOENT)
			*error_r = "cannot remove the active script link";
		else {
			(void)fsync_dir(dir);
			ret = 0;
		}
		goto out;
	}
	for (tries = 0; tries < 10; tries++) {
		if (safe_file_tmpname(str_c(link), tmp) < 0)
			break;
		if (symlink(target, str_c(tmp)) == 0) {
			if (rename(str_c(tmp), str_c(link)) < 0) {
				(void)unlink(str_c(tmp));
				break;
			}
			ret = fsync_dir(dir);
			break;
		}
		if (errno != EEXIST)
			break;
	}
	if (ret < 0)
		*error_r = "cannot replace the active script link";
out:
	str_free(&link);
	str_free(&tmp);
	return ret;
}

/* sieve_user_activate - see sieve_user.h */
int
sieve_user_activate(const char *dir, const char *name,
    enum sieve_user_code *code_r, const char **error_r)
{
	struct str *path = str_new(0, 0), *target = str_new(0, 0);
	struct stat st;
	int lock, ret = -1;

	*code_r = SIEVE_USER_OK;
	if (*name != '\0' && script_path(dir, name, path, code_r, error_r) < 0)
		goto out;
	if ((lock = dir_lock(dir, error_r)) < 0) {
		*code_r = SIEVE_USER_TRYLATER;
		goto out;
	}
	if (*name == '\0') {
		ret = link_active(dir, NULL, error_r);
	} else if (lstat(str_c(path), &st) < 0 || !S_ISREG(st.st_mode)) {
		(void)fail(code_r, SIEVE_USER_NONEXISTENT, error_r,
		    "There is no script by that name");
	} else {
		str_printf(target, "%s%s", name, SIEVE_USER_SUFFIX);
		ret = link_active(dir, str_c(target), error_r);
	}
	if (ret < 0 && *code_r == SIEVE_USER_OK)
		*code_r = SIEVE_USER_TRYLATER;
	close(lock);
out:
	str_free(&path);
	str_free(&target);
	return ret;
}

/* sieve_user_delete - see sieve_user.h */
int
sieve_user_delete(const char *dir, const char *name,
    enum sieve_user_code *code_r, const char **error_r)
{
	struct str *path = str_new(0, 0), *active = str_new(0, 0);
	int lock, ret = -1, act;

	*code_r = SIEVE_USER_OK;
	if (script_path(dir, name, path, code_r, error_r) < 0)
		goto out;
	if ((lock = dir_lock(dir, error_r)) < 0) {
		*code_r = SIEVE_USER_TRYLATER;
		goto out;
	}
	act = sieve_user_active(dir, active, NULL, error_r);
	if (act > 0 && strcmp(str_c(active), name) == 0)
		(void)fail(code_r, SIEVE_USER_ACTIVE_SCRIPT, error_r,
		    "You may not delete an active script");
	else if (unlink(str_c(path)) < 0)
		(void)fail(code_r, errno == ENOENT ? SIEVE_USER_NONEXISTENT :
		    SIEVE_USER_TRYLATER, error_r, errno == ENOENT ?
		    "There is no script by that name" : "cannot remove the script");
	else {
		drop_binary(path);
		(void)fsync_dir(dir);
		*code_r = SIEVE_USER_OK;
		ret = 0;
	}
	close(lock);
out:
	str_free(&path);
	str_free(&active);
	return ret;
}

/* sieve_user_rename - see sieve_user.h */
int
sieve_user_rename(const char *dir, const char *oldname, const char *newname,
    enum sieve_user_code *code_r, const char **error_r)
{
	struct str *op = str_new(0, 0), *np = str_new(0, 0);
	struct str *active = str_new(0, 0), *target = str_new(0, 0);
	int lock, ret = -1, act;

	*code_r = SIEVE_USER_OK;
	if (script_path(dir, oldname, op, code_r, error_r) < 0 ||
	    script_path(dir, newname, np, code_r, error_r) < 0)
		goto out;
	if ((lock = dir_lock(dir, error_r)) < 0) {
		*code_r = SIEVE_USER_TRYLATER;
		goto out;
	}
	if (strcmp(oldname, newname) == 0) {
		struct stat st;

		if (lstat(str_c(op), &st) < 0)
			(void)fail(code_r, SIEVE_USER_NONEXISTENT, error_r,
			    "There is no script by that name");
		else
			(void)fail(code_r, SIEVE_USER_ALREADYEXISTS, error_r,
			    "A script with that name already exists");
		goto unlock;
	}
	if (link(str_c(op), str_c(np)) < 0) {
		if (errno == ENOENT)
			(void)fail(code_r, SIEVE_USER_NONEXISTENT, error_r,
			    "There is no script by that name");
		else if (errno == EEXIST)
			(void)fail(code_r, SIEVE_USER_ALREADYEXISTS, error_r,
			    "A script with that name already exists");
		else
			(void)fail(code_r, SIEVE_USER_TRYLATER, error_r,
			    "cannot rename the script");
		goto unlock;
	}
	act = sieve_user_active(dir, active, NULL, error_r);
	if (act > 0 && strcmp(str_c(active), oldname) == 0) {
		str_printf(target, "%s%s", newname, SIEVE_USER_SUFFIX);
		if (link_active(dir, str_c(target), error_r) < 0) {
			(void)unlink(str_c(np));
			*code_r = SIEVE_USER_TRYLATER;
			goto unlock;
		}
	}
	(void)unlink(str_c(op));
	drop_binary(op);
	(void)fsync_dir(dir);
	*code_r = SIEVE_USER_OK;
	ret = 0;
unlock:
	close(lock);
out:
	str_free(&op);
	str_free(&np);
	str_free(&active);
	str_free(&target);
	return ret;
}

/*
 * The duplicate file: records of DUP_RECORD octets: id length (1), id
 * (32, zero padded), expiry (8, big-endian seconds). Small by nature
 * (marks expire within sieve's duplicate_max_period), read whole.
 */
static void
dup_key(unsigned char *rec, const void *id, size_t idlen)
{
	memset(rec, 0, 1 + SIEVE_USER_DUP_ID_MAX);
	rec[0] = (unsigned char)idlen;
	memcpy(rec + 1, id, idlen);
}

static uint64_t
dup_expiry(const unsigned char *rec)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | rec[1 + SIEVE_USER_DUP_ID_MAX + i];
	return v;
}

static int
dup_read(const char *dir, struct str *data, const char **error_r)
{
	struct str *p = str_new(0, 0);
	int ret = 0;

	str_printf(p, "%s/duplicates", dir);
	if (read_file(str_c(p), data, DUP_FILE_MAX) < 0 && errno != ENOENT) {
		*error_r = "cannot read the duplicate database";
		ret = -1;
	}
	str_free(&p);
	return ret;
}

/* sieve_user_dup_check - see sieve_user.h */
int
sieve_user_dup_check(const char *dir, const void *id, size_t idlen,
    time_t now, const char **error_r)
{
	unsigned char key[1 + SIEVE_USER_DUP_ID_MAX];
	struct str *data = str_new(0, 0);
	const unsigned char *d;
	size_t i;
	int ret = 0;

	if (idlen > SIEVE_USER_DUP_ID_MAX)
		idlen = SIEVE_USER_DUP_ID_MAX;
	dup_key(key, id, idlen);
	if (dup_read(dir, data, error_r) < 0)
		ret = -1;
	d = (const unsigned char *)str_c(data);
	for (i = 0; ret == 0 && i + DUP_RECORD <= str_len(data); i += DUP_RECORD)
		if (memcmp(d + i, key, sizeof(key)) == 0 &&
		    dup_expiry(d + i) > (uint64_t)now)
			ret = 1;
	str_free(&data);
	return ret;
}

/* sieve_user_dup_mark - see sieve_user.h */
int
sieve_user_dup_mark(const char *dir, const void *id, size_t idlen,
    unsigned period, time_t now, const char **error_r)
{
	unsigned char rec[DUP_RECORD];
	struct str *data = str_new(0, 0), *out = str_new(0, 0), *p;
	const unsigned char *d;
	uint64_t exp = (uint64_t)now + period;
	size_t i;
	int lock, ret = -1;

	if (idlen > SIEVE_USER_DUP_ID_MAX)
		idlen = SIEVE_USER_DUP_ID_MAX;
	dup_key(rec, id, idlen);
	for (i = 0; i < 8; i++)
		rec[1 + SIEVE_USER_DUP_ID_MAX + i] = (unsigned char)(exp >> (56 - 8 * i));
	if ((lock = dir_lock(dir, error_r)) < 0)
		goto out;
	if (dup_read(dir, data, error_r) == 0) {
		d = (const unsigned char *)str_c(data);
		for (i = 0; i + DUP_RECORD <= str_len(data); i += DUP_RECORD) {
			if (dup_expiry(d + i) <= (uint64_t)now ||
			    memcmp(d + i, rec, 1 + SIEVE_USER_DUP_ID_MAX) == 0)
				continue;
			str_append(out, d + i, DUP_RECORD);
		}
		str_append(out, rec, DUP_RECORD);
		p = str_new(0, 0);
		str_printf(p, "%s/duplicates", dir);
		if (safe_file_replace(str_c(p), str_c(out), str_len(out), 0600) < 0)
			*error_r = "cannot write the duplicate database";
		else
			ret = 0;
		str_free(&p);
	}
	close(lock);
out:
	str_free(&data);
	str_free(&out);
	return ret;
}

/* sieve_user_limits - see sieve_user.h */
void
sieve_user_limits(const struct config *cf, struct sieve_limits *l)
{
	sieve_limits_default(l);
	l->max_script_size = (size_t)config_size(cf, "sieve_max_script_size");
	l->max_actions = (unsigned)config_int(cf, "sieve_max_actions");
	l->max_redirects = (unsigned)config_int(cf, "sieve_max_redirects");
	l->max_notifications =
	    (unsigned)config_int(cf, "sieve_max_notifications");
	l->max_include_depth =
	    (unsigned)config_int(cf, "sieve_include_max_nesting_depth");
	l->max_includes = (unsigned)config_int(cf, "sieve_include_max_includes");
	l->max_regex_size = (size_t)config_size(cf, "sieve_regex_max_size");
}

/* sieve_user_quota_config - see sieve_user.h */
void
sieve_user_quota_config(const struct config *cf, struct sieve_user_quota *q)
{
	q->max_scripts = config_int(cf, "sieve_quota_max_scripts");
	q->max_storage = config_size(cf, "sieve_quota_max_storage");
	q->max_script_size = config_size(cf, "sieve_max_script_size");
}

/* sieve_user_code_name - see sieve_user.h */
const char *
sieve_user_code_name(enum sieve_user_code code)
{
	switch (code) {
	case SIEVE_USER_NONEXISTENT:
		return "NONEXISTENT";
	case SIEVE_USER_ALREADYEXISTS:
		return "ALREADYEXISTS";
	case SIEVE_USER_ACTIVE_SCRIPT:
		return "ACTIVE";
	case SIEVE_USER_QUOTA_MAXSCRIPTS:
		return "QUOTA/MAXSCRIPTS";
	case SIEVE_USER_QUOTA_MAXSIZE:
		return "QUOTA/MAXSIZE";
	case SIEVE_USER_TRYLATER:
		return "TRYLATER";
	case SIEVE_USER_BADNAME:
	case SIEVE_USER_OK:
	default:
		return "";
	}
}
