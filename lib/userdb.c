/* SPDX-License-Identifier: MIT */
/*
 * userdb - the embedded user database (the default auth backend)
 *
 * DESCRIPTION
 *	See userdb.h. The file is a Berkeley DB 5.3 btree; key = the user
 *	name (its bytes, no NUL), value = a record:
 *
 *	    version   u8      USERDB_RECORD_VERSION (1)
 *	    then fields, in strictly ascending tag order:
 *	    tag       u8
 *	    length    u32     big-endian, bytes that follow
 *	    data      length bytes
 *
 *	    tag 1  password   the crypt(3) string, 0..USERDB_HASH_MAX bytes
 *	                      of printable ASCII without space ("" = no
 *	                      password login); required
 *	    tag 2  quota      u64 big-endian, bytes; optional (absent = 0)
 *	    tag 3  alias      departmental address, lower case; optional
 *	    tag 4  forward    forwarding address; optional
 *	    tag 5  keep       u8 1: forwarding keeps a copy; optional, only
 *	                      with tag 4
 *
 *	Reverse index: the departmental addresses live in the same btree,
 *	keyed by the address itself (it holds an '@', which no user name
 *	can), with the value
 *
 *	    version   u8      USERDB_INDEX_VERSION (0x81)
 *	    tag 1  user       the owner's name
 *
 *	so qmgr finds alias@dept with one get and no scan. A writer that
 *	changes or deletes a user's alias drops and adds the index keys in
 *	the same file replacement; userdb_list skips index keys. Records
 *	written before tags 3-5 existed decode unchanged.
 *
 *	userdb_record_decode() is strict: known version, known tags only,
 *	ascending (so no duplicates), each length within the record, the
 *	whole record consumed, total size at most USERDB_RECORD_MAX. A
 *	record that fails is reported as an error, never half-used.
 *
 *	Readers open the file DB_RDONLY without an environment or locks and
 *	stat() it on every call, reopening when it was replaced (as map.c
 *	does). Writers take an exclusive fcntl lock on the lock file next
 *	to the database (PATH with ".db" replaced by ".lock", else
 *	PATH.lock), copy every record of the current file into a new
 *	database under a temporary name in the same directory while applying
 *	the change, sync and close it, then rename it over the old file and
 *	fsync the directory (safe_file_install). Readers thus see the old or
 *	the new file, never a mix. The new file keeps the old one's mode and
 *	owner; a first file is mode 0640 and, when root makes it, gets the
 *	directory's group (the group the daemons read it with).
 *
 *	Passwords are hashed with crypt_gensalt_ra(NULL, ...) (the libxcrypt
 *	default method: yescrypt on Debian 12) and crypt_rn(); verification
 *	recomputes crypt_rn() with the stored setting and compares in
 *	constant time. A user who does not exist (or has no password) costs
 *	one hash computation too, against a dummy hash, so that timing does
 *	not tell which names exist. crypt_data buffers and hash copies are
 *	wiped with explicit_bzero().
 *
 *	XXX Berkeley DB makes a DB_CREATE|DB_EXCL file as "__db.NAME" and
 *	renames and reopens it by name, so the temporary's directory must be
 *	writable only by trusted users (it is the table's or the data
 *	directory's own); a crash may leave a stale "__db.*" or ".tmp"
 *	file there, never a partial table.
 *
 *	Errors return -1 with *error_r: static text for writers and for
 *	userdb_open() (errno is kept where it means something), text inside
 *	the handle otherwise. Nothing here logs or exits (except on memory
 *	exhaustion).
 *
 * SEE ALSO
 *	crypt(5), crypt_gensalt(3), db_intro(3), map.c.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <crypt.h>
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"
#include "userdb.h"

#define USERDB_NAME_MAX		64
#define USERDB_HASH_MAX		512
#define USERDB_RECORD_MAX	4096
#define USERDB_RECORD_VERSION	1
#define USERDB_TAG_PASSWORD	1
#define USERDB_TAG_QUOTA	2
#define USERDB_TAG_ALIAS	3
#define USERDB_TAG_FORWARD	4
#define USERDB_TAG_KEEP		5
#define USERDB_INDEX_VERSION	0x81
#define USERDB_INDEX_TAG_USER	1
#define USERDB_ADDRESS_MAX	254
#define USERDB_FIELD_HEAD	5	/* tag u8 + length u32 */
#define USERDB_NEW_MODE		0640
#define USERDB_TMP_TRIES	100
#define USERDB_NSKIP			3

struct userdb_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	struct timespec ctim;
};

struct userdb {
	char *path;
	DB *db;
	struct userdb_file_id id;
	struct str *error;	/* *error_r points here */
	struct str *dberr;	/* the last Berkeley DB message */
};

enum userdb_op {
	USERDB_OP_ADD,
	USERDB_OP_SET_PASSWORD,
	USERDB_OP_DELETE,
	USERDB_OP_SET_ALIAS,
	USERDB_OP_SET_FORWARD,
	USERDB_OP_SET_QUOTA,
};

/* what a writer changes */
struct userdb_change {
	enum userdb_op op;
	const char *password;
	const char *alias;
	const char *forward;
	bool keep;
	uint64_t quota;
};

/* userdb_name_ok_mem - the allow-list on p[0..len) */
static bool
userdb_name_ok_mem(const char *p, size_t len)
{
	size_t i;
	char c;

	if (len == 0 || len > USERDB_NAME_MAX || p[0] == '.' || p[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* userdb_name_ok - is name an allowed user name */
bool
userdb_name_ok(const char *name)
{
	if (name == NULL)
		return false;
	return userdb_name_ok_mem(name, strnlen(name, USERDB_NAME_MAX + 1));
}

/* userdb_address_ok_mem - a plain local@domain in p[0..len) */
static bool
userdb_address_ok_mem(const unsigned char *p, size_t len)
{
	const unsigned char *at;
	size_t i;

	if (len < 3 || len > USERDB_ADDRESS_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] > '~' ||
		    strchr("<>()[],;:\\\"", p[i]) != NULL)
			return false;
	at = memrchr(p, '@', len);
	return at != NULL && at != p && at != p + len - 1 &&
	    memchr(at + 1, '@', (size_t)(p + len - at - 1)) == NULL &&
	    memchr(p, '@', (size_t)(at - p)) == NULL;
}

/* userdb_address_ok - see userdb.h */
bool
userdb_address_ok(const char *address)
{
	if (address == NULL)
		return false;
	return userdb_address_ok_mem((const unsigned char *)address,
	    strnlen(address, USERDB_ADDRESS_MAX + 1));
}

/* userdb_get_u32 - big-endian u32 at p */
static uint32_t
userdb_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* userdb_put_field - append one (tag, length, data) field */
static void
userdb_put_field(struct str *out, unsigned char tag, const void *data,
    uint32_t len)
{
	unsigned char head[USERDB_FIELD_HEAD];

	head[0] = tag;
	head[1] = (unsigned char)(len >> 24);
	head[2] = (unsigned char)(len >> 16);
	head[3] = (unsigned char)(len >> 8);
	head[4] = (unsigned char)len;
	(void)str_append(out, head, sizeof(head));
	(void)str_append(out, data, len);
}

/* userdb_hash_ok - is p[0..len) an acceptable stored crypt string */
static bool
userdb_hash_ok(const unsigned char *p, size_t len)
{
	size_t i;

	if (len > USERDB_HASH_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return false;
	return true;
}

/* userdb_record_encode - the record for user (name is not part of it) */
int
userdb_record_encode(const struct userdb_user *user, struct str *out)
{
	const char *hash = user->password_hash != NULL ?
	    user->password_hash : "";
	size_t len = strlen(hash);
	unsigned char q[8];
	int i;

	if (!userdb_hash_ok((const unsigned char *)hash, len)) {
		errno = EINVAL;
		return -1;
	}
	str_clear(out);
	(void)str_append_c(out, USERDB_RECORD_VERSION);
	userdb_put_field(out, USERDB_TAG_PASSWORD, hash, (uint32_t)len);
	if (user->quota_bytes != 0) {
		for (i = 0; i < 8; i++)
			q[i] = (unsigned char)(user->quota_bytes >> (56 - 8 * i));
		userdb_put_field(out, USERDB_TAG_QUOTA, q, sizeof(q));
	}
	if (user->dept_alias != NULL) {
		if (!userdb_address_ok(user->dept_alias)) {
			errno = EINVAL;
			return -1;
		}
		userdb_put_field(out, USERDB_TAG_ALIAS, user->dept_alias,
		    (uint32_t)strlen(user->dept_alias));
	}
	if (user->forward != NULL) {
		if (!userdb_address_ok(user->forward)) {
			errno = EINVAL;
			return -1;
		}
		userdb_put_field(out, USERDB_TAG_FORWARD, user->forward,
		    (uint32_t)strlen(user->forward));
		if (user->forward_keep)
			userdb_put_field(out, USERDB_TAG_KEEP, "\1", 1);
	}
	return 0;
}

/* userdb_record_decode - strictly decode a record into user_r */
int
userdb_record_decode(const void *p, size_t len, struct userdb_user *user_r)
{
	const unsigned char *rec = p;
	size_t pos = 1, flen;
	unsigned int tag, last_tag = 0;
	bool have_password = false;
	int i;

	memset(user_r, 0, sizeof(*user_r));
	if (len < 1 || len > USERDB_RECORD_MAX ||
	    rec[0] != USERDB_RECORD_VERSION)
		goto bad;
	while (pos < len) {
		if (len - pos < USERDB_FIELD_HEAD)
			goto bad;
		tag = rec[pos];
		flen = userdb_get_u32(rec + pos + 1);
		pos += USERDB_FIELD_HEAD;
		if (flen > len - pos || tag <= last_tag)
			goto bad;
		last_tag = tag;
		switch (tag) {
		case USERDB_TAG_PASSWORD:
			if (!userdb_hash_ok(rec + pos, flen))
				goto bad;
			user_r->password_hash = xstrndup((const char *)rec + pos,
			    flen);
			have_password = true;
			break;
		case USERDB_TAG_QUOTA:
			if (flen != 8)
				goto bad;
			for (i = 0; i < 8; i++)
				user_r->quota_bytes = user_r->quota_bytes << 8 |
				    rec[pos + (size_t)i];
			break;
		case USERDB_TAG_ALIAS:
			if (!userdb_address_ok_mem(rec + pos, flen))
				goto bad;
			user_r->dept_alias = xstrndup((const char *)rec + pos,
			    flen);
			break;
		case USERDB_TAG_FORWARD:
			if (!userdb_address_ok_mem(rec + pos, flen))
				goto bad;
			user_r->forward = xstrndup((const char *)rec + pos,
			    flen);
			break;
		case USERDB_TAG_KEEP:
			if (flen != 1 || rec[pos] != 1 ||
			    user_r->forward == NULL)
				goto bad;
			user_r->forward_keep = true;
			break;
		default:
			goto bad;
		}
		pos += flen;
	}
	if (!have_password)
		goto bad;
	return 0;
bad:
	userdb_user_clear(user_r);
	errno = EINVAL;
	return -1;
}

/* userdb_user_clear - free and wipe the fields */
void
userdb_user_clear(struct userdb_user *user)
{
	free(user->name);
	free(user->dept_alias);
	free(user->forward);
	if (user->password_hash != NULL) {
		explicit_bzero(user->password_hash, strlen(user->password_hash));
		free(user->password_hash);
	}
	memset(user, 0, sizeof(*user));
}

/* userdb_db_errcall - keep Berkeley DB's message instead of printing it */
static void
userdb_db_errcall(const DB_ENV *dbenv, const char *pfx, const char *msg)
{
	struct str *s = dbenv->app_private;

	(void)pfx;
	if (s == NULL)
		return;
	str_clear(s);
	(void)str_append_cstr(s, msg);
}

/* userdb_db_open - open a btree; flags DB_RDONLY or DB_CREATE|DB_EXCL */
static int
userdb_db_open(const char *path, u_int32_t flags, mode_t mode,
    struct str *errbuf, DB **dbp)
{
	DB *db;
	int ret;

	*dbp = NULL;
	if ((ret = db_create(&db, NULL, 0)) != 0)
		return ret;
	db->dbenv->app_private = errbuf;
	db->set_errcall(db, userdb_db_errcall);
	if ((ret = db->open(db, NULL, path, NULL, DB_BTREE, flags, mode)) != 0) {
		(void)db->close(db, 0);
		return ret;
	}
	*dbp = db;
	return 0;
}

/* userdb_stat_id - the identity of a file */
static void
userdb_stat_id(const struct stat *st, struct userdb_file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtim = st->st_mtim;
	id->ctim = st->st_ctim;
}

/* userdb_id_same - same unchanged file */
static bool
userdb_id_same(const struct userdb_file_id *a, const struct userdb_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* userdb_error - set the handle's error text */
static int PRINTF_LIKE(3, 4)
userdb_error(struct userdb *db, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	str_clear(db->error);
	va_start(ap, fmt);
	errno = saved;
	(void)str_vprintf(db->error, fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = str_c(db->error);
	errno = saved;
	return -1;
}

/* userdb_load - (re)open the file; keep the old handle on failure */
static int
userdb_load(struct userdb *db, const char **error_r)
{
	struct stat st;
	DB *h;
	int ret, fd;

	str_clear(db->dberr);
	ret = userdb_db_open(db->path, DB_RDONLY, 0, db->dberr, &h);
	if (ret == 0 && (ret = h->fd(h, &fd)) == 0 && fstat(fd, &st) < 0)
		ret = errno;
	if (ret != 0) {
		if (h != NULL)
			(void)h->close(h, 0);
		if (ret > 0)
			errno = ret;
		return userdb_error(db, error_r, "%s: %s%s%s", db->path,
		    db_strerror(ret), str_len(db->dberr) > 0 ? ": " : "",
		    str_c(db->dberr));
	}
	if (db->db != NULL)
		(void)db->db->close(db->db, 0);
	db->db = h;
	userdb_stat_id(&st, &db->id);
	return 0;
}

/* userdb_refresh - reopen when a writer replaced the file */
static int
userdb_refresh(struct userdb *db, const char **error_r)
{
	struct userdb_file_id now;
	struct stat st;

	if (stat(db->path, &st) < 0)
		return userdb_error(db, error_r, "%s: %m", db->path);
	userdb_stat_id(&st, &now);
	if (userdb_id_same(&now, &db->id))
		return 0;
	return userdb_load(db, error_r);
}

/* userdb_open - open for reading */
struct userdb *
userdb_open(const char *path, const char **error_r)
{
	struct userdb *db = xcalloc(1, sizeof(*db));
	const char *err;
	int saved;

	db->path = xstrdup(path);
	db->error = str_new(0, 0);
	db->dberr = str_new(0, 0);
	if (userdb_load(db, &err) < 0) {
		saved = errno;
		userdb_close(&db);
		/* No handle survives to hold the detail; errno has it. */
		if (error_r != NULL)
			*error_r = saved == ENOENT ?
			    "no user database (add a user to create it)" :
			    "cannot open the user database";
		errno = saved;
		return NULL;
	}
	return db;
}

/* userdb_close - close (NULL allowed) */
void
userdb_close(struct userdb **dbp)
{
	struct userdb *db = *dbp;

	if (db == NULL)
		return;
	if (db->db != NULL)
		(void)db->db->close(db->db, 0);
	free(db->path);
	str_free(&db->error);
	str_free(&db->dberr);
	free(db);
	*dbp = NULL;
}

/* userdb_dbt - a DBT over name (BDB does not write through key data) */
static void
userdb_dbt(DBT *k, const char *name)
{
	memset(k, 0, sizeof(*k));
	k->data = (void *)(uintptr_t)name;
	k->size = (u_int32_t)strlen(name);
}

/* userdb_lookup - find name */
int
userdb_lookup(struct userdb *db, const char *name,
    struct userdb_user *user_r, const char **error_r)
{
	DBT k, v;
	int ret;

	memset(user_r, 0, sizeof(*user_r));
	if (!userdb_name_ok(name))
		return 0;	/* no such name can be stored */
	if (userdb_refresh(db, error_r) < 0)
		return -1;
	userdb_dbt(&k, name);
	memset(&v, 0, sizeof(v));
	str_clear(db->dberr);
	ret = db->db->get(db->db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return userdb_error(db, error_r, "%s: lookup: %s%s%s", db->path,
		    db_strerror(ret), str_len(db->dberr) > 0 ? ": " : "",
		    str_c(db->dberr));
	if (userdb_record_decode(v.data, v.size, user_r) < 0)
		return userdb_error(db, error_r, "%s: corrupt record for "
		    "user %s", db->path, name);
	user_r->name = xstrdup(name);
	return 1;
}

/* userdb_ct_equal - compare two strings in time independent of content */
static bool
userdb_ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	volatile unsigned char diff = 0;

	/* The length of a crypt string is public (it follows the method). */
	if (la != lb)
		return false;
	for (i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* userdb_crypt - crypt_rn into out (CRYPT_OUTPUT_SIZE); false on failure */
static bool
userdb_crypt(const char *password, const char *setting, char *out)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h;
	bool ok = false;

	h = crypt_rn(password, setting, cd, sizeof(*cd));
	/* Some methods report failure with a "*" string instead of NULL. */
	if (h != NULL && h[0] != '*' && strlen(h) < CRYPT_OUTPUT_SIZE) {
		memcpy(out, h, strlen(h) + 1);
		ok = true;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* userdb_dummy_hash - a valid hash of the default method, made once */
static const char *
userdb_dummy_hash(void)
{
	static char dummy[CRYPT_OUTPUT_SIZE];
	char *salt;

	if (dummy[0] == '\0') {
		if ((salt = crypt_gensalt_ra(NULL, 0, NULL, 0)) == NULL)
			return NULL;
		if (!userdb_crypt("postern-dummy-password", salt, dummy))
			dummy[0] = '\0';
		free(salt);
	}
	return dummy[0] != '\0' ? dummy : NULL;
}

/* userdb_verify - check password against name's hash */
int
userdb_verify(struct userdb *db, const char *name, const char *password,
    const char **error_r)
{
	struct userdb_user user;
	char out[CRYPT_OUTPUT_SIZE];
	const char *dummy;
	int ret, match = 0;

	ret = userdb_lookup(db, name, &user, error_r);
	if (ret < 0)
		return -1;
	if (password == NULL)
		password = "";
	if (ret == 0 || user.password_hash[0] == '\0') {
		/* Spend the same time as a real check, then say no. */
		if ((dummy = userdb_dummy_hash()) != NULL)
			(void)userdb_crypt(password, dummy, out);
	} else if (userdb_crypt(password, user.password_hash, out))
		match = userdb_ct_equal(out, user.password_hash) ? 1 : 0;
	explicit_bzero(out, sizeof(out));
	userdb_user_clear(&user);
	return match;
}

/* userdb_make_hash - hash password with a new salt into out ("" if none) */
static int
userdb_make_hash(const char *password, char *out, const char **error_r)
{
	char *salt;
	bool ok;

	out[0] = '\0';
	if (password == NULL || password[0] == '\0')
		return 0;	/* no password login */
	if (strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE) {
		*error_r = "password too long";
		errno = EINVAL;
		return -1;
	}
	if ((salt = crypt_gensalt_ra(NULL, 0, NULL, 0)) == NULL) {
		*error_r = "cannot make a password salt";
		return -1;
	}
	ok = userdb_crypt(password, salt, out);
	free(salt);
	if (!ok) {
		*error_r = "cannot hash the password";
		return -1;
	}
	return 0;
}

/* userdb_lock_path - PATH with ".db" replaced by ".lock", else PATH.lock */
static char *
userdb_lock_path(const char *path)
{
	size_t len = strlen(path);

	if (len > 3 && strcmp(path + len - 3, ".db") == 0)
		return xasprintf("%.*s.lock", (int)(len - 3), path);
	return xasprintf("%s.lock", path);
}

/* userdb_dir_gid - the group of the directory holding path */
static int
userdb_dir_gid(const char *path, gid_t *gid_r)
{
	const char *slash = strrchr(path, '/');
	struct stat st;
	char *dir;
	int ret;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	ret = stat(dir, &st);
	free(dir);
	if (ret == 0)
		*gid_r = st.st_gid;
	return ret;
}

/* userdb_write state */
struct userdb_write {
	const char *path;
	DB *old;
	DB *new;
	struct str *tmp;
	struct str *dberr;
	struct stat old_st;
	bool have_old;
};

/* userdb_write_create - a new empty database under a temporary name */
static int
userdb_write_create(struct userdb_write *w)
{
	int tries, ret = EEXIST;

	for (tries = 0; tries < USERDB_TMP_TRIES && ret == EEXIST; tries++) {
		if (safe_file_tmpname(w->path, w->tmp) < 0)
			return errno;
		ret = userdb_db_open(str_c(w->tmp), DB_CREATE | DB_EXCL,
		    0600, w->dberr, &w->new);
	}
	return ret;
}

/* userdb_write_copy - copy all records but the skipped keys from old to new */
static int
userdb_write_copy(struct userdb_write *w, const char *const *skip,
    size_t nskip)
{
	DBC *c;
	DBT k, v;
	size_t i;
	int ret, cret;

	if (!w->have_old)
		return 0;
	if ((ret = w->old->cursor(w->old, NULL, &c, 0)) != 0)
		return ret;
	for (;;) {
		bool skipped = false;

		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		if ((ret = c->get(c, &k, &v, DB_NEXT)) != 0)
			break;
		for (i = 0; i < nskip; i++)
			if (skip[i] != NULL && k.size == strlen(skip[i]) &&
			    memcmp(k.data, skip[i], k.size) == 0)
				skipped = true;
		if (skipped)
			continue;
		if ((ret = w->new->put(w->new, NULL, &k, &v,
		    DB_NOOVERWRITE)) != 0)
			break;
	}
	cret = c->close(c);
	if (ret == DB_NOTFOUND)
		ret = 0;
	return ret != 0 ? ret : cret;
}

/* userdb_write_finish - sync, set owner and mode, rename into place */
static int
userdb_write_finish(struct userdb_write *w, const char **error_r)
{
	DB *db = w->new;
	mode_t mode = USERDB_NEW_MODE;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int ret;

	w->new = NULL;
	ret = db->sync(db, 0);
	if (ret == 0)
		ret = db->close(db, 0);
	else
		(void)db->close(db, 0);
	if (ret != 0) {
		*error_r = "cannot write the new user database";
		return -1;
	}
	if (w->have_old) {
		mode = w->old_st.st_mode & 07777;
		uid = w->old_st.st_uid;
		gid = w->old_st.st_gid;
	} else if (geteuid() == 0 && userdb_dir_gid(w->path, &gid) < 0) {
		*error_r = "cannot stat the user database directory";
		return -1;
	}
	if (chmod(str_c(w->tmp), mode) < 0) {
		*error_r = "cannot set the user database mode";
		return -1;
	}
	/* chown to our own ids is a no-op; to others' needs root. */
	if ((uid != (uid_t)-1 && uid != geteuid()) ||
	    (gid != (gid_t)-1 && gid != getegid())) {
		if (chown(str_c(w->tmp), uid, gid) < 0) {
			*error_r = "cannot keep the user database owner";
			return -1;
		}
	}
	if (safe_file_install(str_c(w->tmp), w->path) < 0) {
		*error_r = "cannot rename the new user database into place";
		return -1;
	}
	str_clear(w->tmp);	/* nothing left to unlink */
	return 0;
}

/* userdb_index_owner - the owner of index key addr in the old file: 1, 0 none, -1 */
static int
userdb_index_owner(struct userdb_write *w, const char *addr, struct str *owner)
{
	const unsigned char *p;
	DBT k, v;
	int ret;

	str_clear(owner);
	if (!w->have_old)
		return 0;
	userdb_dbt(&k, addr);
	memset(&v, 0, sizeof(v));
	ret = w->old->get(w->old, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return -1;
	p = v.data;
	if (v.size < 1 + USERDB_FIELD_HEAD || p[0] != USERDB_INDEX_VERSION ||
	    p[1] != USERDB_INDEX_TAG_USER ||
	    userdb_get_u32(p + 2) != v.size - 1 - USERDB_FIELD_HEAD ||
	    !userdb_name_ok_mem((const char *)p + 1 + USERDB_FIELD_HEAD,
	    v.size - 1 - USERDB_FIELD_HEAD))
		return -1;
	(void)str_append(owner, p + 1 + USERDB_FIELD_HEAD,
	    v.size - 1 - USERDB_FIELD_HEAD);
	return 1;
}

/*
 * userdb_write_record - the record for name after the change, from its
 * old one; the old departmental address (to drop from the index) in
 * old_alias_r (owned, may be NULL)
 */
static int
userdb_write_record(struct userdb_write *w, const char *name,
    const struct userdb_change *ch, const char *hash, struct str *rec,
    char **old_alias_r, const char **error_r)
{
	struct userdb_user user;
	enum userdb_op op = ch->op;
	DBT k, v;
	int ret = DB_NOTFOUND;

	*old_alias_r = NULL;
	memset(&user, 0, sizeof(user));
	memset(&v, 0, sizeof(v));
	if (w->have_old) {
		userdb_dbt(&k, name);
		memset(&v, 0, sizeof(v));
		ret = w->old->get(w->old, NULL, &k, &v, 0);
		if (ret != 0 && ret != DB_NOTFOUND) {
			*error_r = "cannot read the user database";
			return -1;
		}
	}
	if (op == USERDB_OP_ADD && ret == 0) {
		*error_r = "user already exists";
		errno = EEXIST;
		return -1;
	}
	if (op != USERDB_OP_ADD && ret == DB_NOTFOUND) {
		*error_r = "no such user";
		errno = ENOENT;
		return -1;
	}
	/*
	 * Every change but add keeps the other fields: the record must
	 * decode. A corrupt record can still be deleted (its alias index
	 * entry, if any, then stays: userdb_lookup_alias finds a user that
	 * does not exist, which reads as "unknown").
	 */
	if (op != USERDB_OP_ADD &&
	    userdb_record_decode(v.data, v.size, &user) < 0) {
		if (op == USERDB_OP_DELETE)
			return 0;
		*error_r = "corrupt record for this user";
		return -1;
	}
	*old_alias_r = user.dept_alias;
	user.dept_alias = NULL;
	if (op == USERDB_OP_DELETE) {
		userdb_user_clear(&user);
		return 0;
	}
	switch (op) {
	case USERDB_OP_ADD:
	case USERDB_OP_SET_PASSWORD:
		if (user.password_hash != NULL) {
			explicit_bzero(user.password_hash,
			    strlen(user.password_hash));
			free(user.password_hash);
		}
		user.password_hash = xstrdup(hash);
		if (*old_alias_r != NULL)
			user.dept_alias = xstrdup(*old_alias_r);
		break;
	case USERDB_OP_SET_ALIAS:
		if (ch->alias != NULL)
			user.dept_alias = xstrdup(ch->alias);
		break;
	case USERDB_OP_SET_FORWARD:
		if (*old_alias_r != NULL)
			user.dept_alias = xstrdup(*old_alias_r);
		free(user.forward);
		user.forward = ch->forward != NULL ? xstrdup(ch->forward) :
		    NULL;
		user.forward_keep = ch->forward != NULL && ch->keep;
		break;
	case USERDB_OP_SET_QUOTA:
		if (*old_alias_r != NULL)
			user.dept_alias = xstrdup(*old_alias_r);
		user.quota_bytes = ch->quota;
		break;
	case USERDB_OP_DELETE:
		break;
	}
	ret = userdb_record_encode(&user, rec);
	userdb_user_clear(&user);
	if (ret < 0) {
		*error_r = "cannot encode the user record";
		return -1;
	}
	return 0;
}

/* userdb_put_index - the index entry addr -> name into the new file */
static int
userdb_put_index(struct userdb_write *w, const char *addr, const char *name)
{
	struct str *val = str_new(64, 0);
	DBT k, v;
	int ret;

	(void)str_append_c(val, USERDB_INDEX_VERSION);
	userdb_put_field(val, USERDB_INDEX_TAG_USER, name,
	    (uint32_t)strlen(name));
	userdb_dbt(&k, addr);
	memset(&v, 0, sizeof(v));
	v.data = str_data(val);
	v.size = (u_int32_t)str_len(val);
	ret = w->new->put(w->new, NULL, &k, &v, DB_NOOVERWRITE);
	str_free(&val);
	return ret;
}

/* userdb_write - apply one change under the lock, replacing the file */
static int
userdb_write(const char *path, const char *name,
    const struct userdb_change *ch, const char **error_r)
{
	enum userdb_op op = ch->op;
	const char *password = ch->password;
	char *old_alias = NULL, *new_alias = NULL;
	struct str *owner = NULL;
	const char *skip[3];
	struct userdb_write w;
	char hash[CRYPT_OUTPUT_SIZE];
	const char *err = "failed";
	struct str *rec = NULL;
	char *lock_path = NULL;
	int lock_fd = -1, ret, result = -1, saved;
	DBT k, v;

	memset(&w, 0, sizeof(w));
	hash[0] = '\0';
	if (!userdb_name_ok(name)) {
		err = "invalid user name";
		errno = EINVAL;
		goto out;
	}
	if (op == USERDB_OP_SET_ALIAS && ch->alias != NULL) {
		if (!userdb_address_ok(ch->alias)) {
			err = "invalid address (local@domain expected)";
			errno = EINVAL;
			goto out;
		}
		new_alias = xstrdup(ch->alias);
		for (char *p = new_alias; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	if (op == USERDB_OP_SET_FORWARD && ch->forward != NULL &&
	    !userdb_address_ok(ch->forward)) {
		err = "invalid address (local@domain expected)";
		errno = EINVAL;
		goto out;
	}
	/* Hash before locking: it is slow, and needs no shared state. */
	if ((op == USERDB_OP_ADD || op == USERDB_OP_SET_PASSWORD) &&
	    userdb_make_hash(password, hash, &err) < 0)
		goto out;
	lock_path = userdb_lock_path(path);
	if ((lock_fd = lock_file(lock_path, true)) < 0) {
		err = "cannot lock the user database";
		goto out;
	}
	w.path = path;
	w.tmp = str_new(0, 0);
	w.dberr = str_new(0, 0);
	if (stat(path, &w.old_st) == 0) {
		if ((ret = userdb_db_open(path, DB_RDONLY, 0, w.dberr,
		    &w.old)) != 0) {
			err = "cannot open the user database";
			goto out;
		}
		w.have_old = true;
	} else if (errno != ENOENT) {
		err = "cannot stat the user database";
		goto out;
	}
	rec = str_new(0, 0);
	if (op == USERDB_OP_SET_ALIAS) {
		struct userdb_change c2 = *ch;

		c2.alias = new_alias;
		if (userdb_write_record(&w, name, &c2, hash, rec, &old_alias,
		    &err) < 0)
			goto out;
	} else if (userdb_write_record(&w, name, ch, hash, rec, &old_alias,
	    &err) < 0)
		goto out;
	if (new_alias != NULL) {
		owner = str_new(64, 0);
		ret = userdb_index_owner(&w, new_alias, owner);
		if (ret < 0) {
			err = "cannot read the alias index";
			goto out;
		}
		if (ret > 0 && strcmp(str_c(owner), name) != 0) {
			err = "address belongs to another user";
			errno = EEXIST;
			goto out;
		}
	}
	if ((ret = userdb_write_create(&w)) != 0) {
		if (ret > 0)
			errno = ret;
		err = "cannot create a temporary user database";
		goto out;
	}
	skip[0] = name;
	skip[1] = old_alias;
	skip[2] = new_alias;
	if (userdb_write_copy(&w, skip, USERDB_NSKIP) != 0) {
		err = "cannot copy the user database";
		goto out;
	}
	if (op == USERDB_OP_SET_ALIAS ? new_alias != NULL :
	    (op != USERDB_OP_DELETE && old_alias != NULL)) {
		if (userdb_put_index(&w, op == USERDB_OP_SET_ALIAS ? new_alias :
		    old_alias, name) != 0) {
			err = "cannot store the alias index entry";
			goto out;
		}
	}
	if (op != USERDB_OP_DELETE) {
		userdb_dbt(&k, name);
		memset(&v, 0, sizeof(v));
		v.data = str_data(rec);
		v.size = (u_int32_t)str_len(rec);
		if (w.new->put(w.new, NULL, &k, &v, DB_NOOVERWRITE) != 0) {
			err = "cannot store the user record";
			goto out;
		}
	}
	if (userdb_write_finish(&w, &err) < 0)
		goto out;
	result = 0;
out:
	saved = errno;
	explicit_bzero(hash, sizeof(hash));
	if (rec != NULL) {
		explicit_bzero(str_data(rec), str_len(rec));
		str_free(&rec);
	}
	if (w.new != NULL)
		(void)w.new->close(w.new, 0);
	if (w.tmp != NULL && str_len(w.tmp) > 0)
		(void)unlink(str_c(w.tmp));
	if (w.old != NULL)
		(void)w.old->close(w.old, 0);
	str_free(&w.tmp);
	str_free(&w.dberr);
	if (lock_fd >= 0)
		(void)close(lock_fd);
	free(lock_path);
	free(old_alias);
	free(new_alias);
	str_free(&owner);
	if (result < 0 && error_r != NULL)
		*error_r = err;
	errno = saved;
	return result;
}

/* userdb_add - add a new user */
int
userdb_add(const char *path, const char *name, const char *password,
    const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_ADD, .password = password };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_set_password - replace an existing user's password */
int
userdb_set_password(const char *path, const char *name, const char *password,
    const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_SET_PASSWORD,
	    .password = password };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_delete - remove a user */
int
userdb_delete(const char *path, const char *name, const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_DELETE };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_set_alias - see userdb.h */
int
userdb_set_alias(const char *path, const char *name, const char *alias,
    const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_SET_ALIAS, .alias = alias };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_set_forward - see userdb.h */
int
userdb_set_forward(const char *path, const char *name, const char *address,
    bool keep_copy, const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_SET_FORWARD,
	    .forward = address, .keep = keep_copy };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_set_quota - see userdb.h */
int
userdb_set_quota(const char *path, const char *name, uint64_t quota_bytes,
    const char **error_r)
{
	struct userdb_change ch = { .op = USERDB_OP_SET_QUOTA,
	    .quota = quota_bytes };

	return userdb_write(path, name, &ch, error_r);
}

/* userdb_lookup_alias - see userdb.h */
int
userdb_lookup_alias(struct userdb *db, const char *address,
    struct str *user_r, const char **error_r)
{
	const unsigned char *p;
	char *key;
	DBT k, v;
	int ret;

	str_clear(user_r);
	if (!userdb_address_ok(address))
		return 0;
	if (userdb_refresh(db, error_r) < 0)
		return -1;
	key = xstrdup(address);
	for (char *q = key; *q != '\0'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	userdb_dbt(&k, key);
	memset(&v, 0, sizeof(v));
	str_clear(db->dberr);
	ret = db->db->get(db->db, NULL, &k, &v, 0);
	free(key);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return userdb_error(db, error_r, "%s: alias lookup: %s",
		    db->path, db_strerror(ret));
	p = v.data;
	if (v.size < 1 + USERDB_FIELD_HEAD || p[0] != USERDB_INDEX_VERSION ||
	    p[1] != USERDB_INDEX_TAG_USER ||
	    userdb_get_u32(p + 2) != v.size - 1 - USERDB_FIELD_HEAD ||
	    !userdb_name_ok_mem((const char *)p + 1 + USERDB_FIELD_HEAD,
	    v.size - 1 - USERDB_FIELD_HEAD))
		return userdb_error(db, error_r, "%s: corrupt alias index "
		    "entry for %s", db->path, address);
	(void)str_append(user_r, p + 1 + USERDB_FIELD_HEAD,
	    v.size - 1 - USERDB_FIELD_HEAD);
	return 1;
}

/* userdb_list - call cb with every name, in btree (byte) order */
int
userdb_list(struct userdb *db, void (*cb)(void *ctx, const char *name),
    void *ctx, const char **error_r)
{
	struct str *names;
	const char *p, *end;
	DBC *c;
	DBT k, v;
	int ret, cret;

	if (userdb_refresh(db, error_r) < 0)
		return -1;
	/*
	 * Collect first, call back after: cb may call userdb_lookup(), which
	 * can reopen the handle under an open cursor.
	 */
	names = str_new(0, 0);
	if ((ret = db->db->cursor(db->db, NULL, &c, 0)) != 0)
		goto dberr;
	for (;;) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		if ((ret = c->get(c, &k, &v, DB_NEXT)) != 0)
			break;
		if (memchr(k.data, '@', k.size) != NULL)
			continue;	/* a reverse index entry */
		if (!userdb_name_ok_mem(k.data, k.size)) {
			(void)c->close(c);
			str_free(&names);
			return userdb_error(db, error_r,
			    "%s: invalid user name in the database", db->path);
		}
		(void)str_append(names, k.data, k.size);
		(void)str_append_c(names, '\0');
	}
	cret = c->close(c);
	if (ret == DB_NOTFOUND)
		ret = cret;
	if (ret != 0)
		goto dberr;
	end = str_c(names) + str_len(names);
	for (p = str_c(names); p < end; p += strlen(p) + 1)
		cb(ctx, p);
	str_free(&names);
	return 0;
dberr:
	str_free(&names);
	return userdb_error(db, error_r, "%s: list: %s", db->path,
	    db_strerror(ret));
}
