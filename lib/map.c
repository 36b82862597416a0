/* SPDX-License-Identifier: MIT */
/*
 * map - one lookup interface for tables: "type:name"
 *
 * DESCRIPTION
 *	See map.h for the types and the source format. Details:
 *
 *	Source text. A physical line ends at LF; one CR before the LF is
 *	dropped. A logical line starts with a non-blank character; lines
 *	starting with a space or tab continue it (joined to the value with
 *	one space, leading blanks dropped). Blank lines and lines whose
 *	first non-blank character is '#' are skipped and do not end a
 *	logical line. The key is the first blank-delimited token; one ':'
 *	ending it is the aliases-style separator and is dropped, unless the
 *	token ends in "::" (an IPv6 address such as "2001:db8::"). The value
 *	is the rest of the logical line, with blanks trimmed at both ends.
 *	Errors (each "FILE:LINE: what", the LINE of the logical line's
 *	start): a NUL byte, an empty key, a key over MAP_KEY_MAX bytes, a
 *	value over MAP_VALUE_MAX bytes, a key without a value, and a
 *	continuation line before any entry. A bad line is skipped with its
 *	continuations and parsing goes on so that all errors are reported,
 *	up to MAP_ERRORS_MAX. A duplicate key is a warning
 *	("FILE:LINE: warning: ...") and the first value wins, as in postmap;
 *	the callback never sees the duplicate.
 *
 *	db: files are Berkeley DB 5.3 btrees with key and value stored as
 *	their bytes without a terminating NUL. Readers open them DB_RDONLY
 *	without an environment and no locks: map_build() never changes a
 *	file in place but writes a new file under a temporary name, syncs
 *	it and renames it over the old one, so a reader's open handle keeps
 *	the old (unlinked) inode intact.
 *
 *	Change detection. Every lookup stat()s the file (one cheap system
 *	call) and compares st_dev, st_ino, st_size, st_mtim and st_ctim with
 *	the file it has loaded; on any difference it opens (db:) or loads
 *	(file:) the new file and only then drops the old one. If that fails
 *	the lookup returns -1 (a temporary failure for mail: defer rather
 *	than answer from a table we know is stale) and the next lookup tries
 *	again. For db: the identity is taken with fstat() on the handle's
 *	own fd; for file: stat() is done before reading, so a replacement
 *	during the read at worst causes one extra reload.
 *
 *	XXX Berkeley DB makes a DB_CREATE|DB_EXCL file as "__db.NAME" and
 *	renames and reopens it by name, so the temporary's directory must be
 *	writable only by trusted users (it is the table's or the data
 *	directory's own); a crash may leave a stale "__db.*" or ".tmp"
 *	file there, never a partial table.
 *
 *	Nothing here logs or exits (except on memory exhaustion).
 *
 *	XXX map_open() has no map to hold its error text, so *error_r then
 *	points to a static buffer valid until the next failed map_open().
 *
 * SEE ALSO
 *	postmap(1), postalias(1) for the format; db_intro(3) (BDB 5.3).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "ldapdir.h"
#include "map.h"
#include "safe_file.h"
#include "str.h"

#define MAP_KEY_MAX		1024
#define MAP_VALUE_MAX		(1024 * 1024)
#define MAP_SOURCE_MAX		((size_t)256 * 1024 * 1024)
#define MAP_ERRORS_MAX		100
#define MAP_SHOW_MAX		100	/* key bytes shown in messages */
#define MAP_DB_SUFFIX		".db"
#define MAP_TMP_TRIES		100

enum map_type {
	MAP_TYPE_DB,
	MAP_TYPE_FILE,
	MAP_TYPE_LDAP,
};

/* One slot of the open-addressing hash table; key == NULL = empty. */
struct map_hash_entry {
	char *key;
	size_t key_len;
	char *value;
	uint64_t hash;
	unsigned long line;	/* where the key was defined */
};

struct map_hash {
	struct map_hash_entry *slots;
	size_t size;		/* a power of two, or 0 */
	size_t count;
};

/* The identity of a loaded file, to notice its replacement. */
struct map_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	struct timespec ctim;
};

struct map {
	char *spec;
	enum map_type type;
	int flags;
	char *path;		/* the file we read: NAME.db or NAME */
	struct map_file_id id;
	DB *db;			/* db: */
	struct map_hash table;	/* file: */
	struct ldapdir *ldap;	/* ldap: */
	struct str *key;	/* lookup key, folded */
	struct str *error;	/* *error_r points here */
	struct str *dberr;	/* the last Berkeley DB message */
};

/* map_parse_text state */
struct map_parse {
	const char *filename;
	int flags;
	map_entry_cb *cb;
	void *ctx;
	struct str *errors;
	unsigned int nerrors;
	bool failed;		/* an error (not a warning) was seen */
	bool stop;		/* cb refused or too many errors */
	bool have_entry;	/* key/value hold a logical line */
	bool skipping;		/* continuations of a bad line */
	unsigned long entry_line;
	struct str *key;
	struct str *value;
	struct map_hash seen;
};

static struct str *map_open_error;

/* map_hash_fn - FNV-1a, 64 bits */
static uint64_t
map_hash_fn(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n-- > 0) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ull;
	}
	return h;
}

/* map_hash_find - the entry for key, or NULL */
static struct map_hash_entry *
map_hash_find(const struct map_hash *h, const char *key, size_t len)
{
	uint64_t hv;
	size_t i;

	if (h->size == 0)
		return NULL;
	hv = map_hash_fn(key, len);
	for (i = hv & (h->size - 1); h->slots[i].key != NULL;
	    i = (i + 1) & (h->size - 1)) {
		if (h->slots[i].hash == hv && h->slots[i].key_len == len &&
		    memcmp(h->slots[i].key, key, len) == 0)
			return &h->slots[i];
	}
	return NULL;
}

/* map_hash_place - put a filled entry into the first free slot of its chain */
static void
map_hash_place(struct map_hash *h, const struct map_hash_entry *e)
{
	size_t i;

	for (i = e->hash & (h->size - 1); h->slots[i].key != NULL;
	    i = (i + 1) & (h->size - 1))
		;
	h->slots[i] = *e;
	h->count++;
}

/* map_hash_add - copy key and value in; false (no change) if key exists */
static bool
map_hash_add(struct map_hash *h, const char *key, size_t len,
    const char *value, unsigned long line)
{
	struct map_hash_entry e, *old;
	size_t i, old_size;

	if (map_hash_find(h, key, len) != NULL)
		return false;
	/* Keep the load factor at most 1/2. */
	if ((h->count + 1) * 2 > h->size) {
		old = h->slots;
		old_size = h->size;
		h->size = old_size == 0 ? 64 : old_size * 2;
		h->slots = xcalloc(h->size, sizeof(*h->slots));
		h->count = 0;
		for (i = 0; i < old_size; i++)
			if (old[i].key != NULL)
				map_hash_place(h, &old[i]);
		free(old);
	}
	e.key = xmemdup(key, len);
	e.key_len = len;
	e.value = value != NULL ? xstrdup(value) : NULL;
	e.hash = map_hash_fn(key, len);
	e.line = line;
	map_hash_place(h, &e);
	return true;
}

/* map_hash_clear - free all entries */
static void
map_hash_clear(struct map_hash *h)
{
	size_t i;

	for (i = 0; i < h->size; i++) {
		free(h->slots[i].key);
		free(h->slots[i].value);
	}
	free(h->slots);
	h->slots = NULL;
	h->size = h->count = 0;
}

/* map_fold - lower-case ASCII letters in place (mail is not locale text) */
static void
map_fold(char *p, size_t n)
{
	for (; n > 0; p++, n--)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* map_is_blank - space or tab */
static bool
map_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* map_parse_msg - append "FILE:LINE: [warning: ]text" to the errors */
static void PRINTF_LIKE(4, 5)
map_parse_msg(struct map_parse *mp, unsigned long line, bool warning,
    const char *fmt, ...)
{
	va_list ap;

	if (!warning) {
		mp->failed = true;
		if (++mp->nerrors > MAP_ERRORS_MAX) {
			if (mp->errors != NULL)
				(void)str_printf(mp->errors,
				    "%s: too many errors, giving up\n",
				    mp->filename);
			mp->stop = true;
			return;
		}
	}
	if (mp->errors == NULL)
		return;
	(void)str_printf(mp->errors, "%s:%lu: %s", mp->filename, line,
	    warning ? "warning: " : "");
	va_start(ap, fmt);
	(void)str_vprintf(mp->errors, fmt, ap);
	va_end(ap);
	(void)str_append_c(mp->errors, '\n');
}

/* map_parse_show - the current key escaped and capped, for messages */
static const char *
map_parse_show(struct map_parse *mp, struct str *buf)
{
	str_clear(buf);
	mem_printable(buf, str_c(mp->key), str_len(mp->key), MAP_SHOW_MAX);
	return str_c(buf);
}

/* map_parse_flush - hand the pending logical line to the callback */
static void
map_parse_flush(struct map_parse *mp)
{
	struct map_hash_entry *first;
	struct str *show;

	if (!mp->have_entry)
		return;
	mp->have_entry = false;
	show = str_new(0, 0);
	if (str_len(mp->value) == 0) {
		map_parse_msg(mp, mp->entry_line, false,
		    "key \"%s\" without a value", map_parse_show(mp, show));
	} else if ((first = map_hash_find(&mp->seen, str_c(mp->key),
	    str_len(mp->key))) != NULL) {
		map_parse_msg(mp, mp->entry_line, true,
		    "duplicate key \"%s\" ignored, keeping line %lu",
		    map_parse_show(mp, show), first->line);
	} else {
		(void)map_hash_add(&mp->seen, str_c(mp->key), str_len(mp->key),
		    NULL, mp->entry_line);
		if (mp->cb(mp->ctx, str_c(mp->key), str_c(mp->value)) < 0) {
			map_parse_msg(mp, mp->entry_line, false,
			    "cannot store key \"%s\"", map_parse_show(mp, show));
			mp->stop = true;
		}
	}
	str_free(&show);
}

/* map_parse_first - start a logical line from p[0..n) (non-blank start) */
static void
map_parse_first(struct map_parse *mp, const char *p, size_t n,
    unsigned long line)
{
	size_t klen = 0, vstart, vend;

	while (klen < n && !map_is_blank(p[klen]))
		klen++;
	vstart = klen;
	if (klen >= 1 && p[klen - 1] == ':' &&
	    !(klen >= 2 && p[klen - 2] == ':'))
		klen--;
	if (klen == 0) {
		map_parse_msg(mp, line, false, "empty key");
		mp->skipping = true;
		return;
	}
	if (klen > MAP_KEY_MAX) {
		map_parse_msg(mp, line, false, "key longer than %d bytes",
		    MAP_KEY_MAX);
		mp->skipping = true;
		return;
	}
	while (vstart < n && map_is_blank(p[vstart]))
		vstart++;
	vend = n;
	while (vend > vstart && map_is_blank(p[vend - 1]))
		vend--;
	if (vend - vstart > MAP_VALUE_MAX) {
		map_parse_msg(mp, line, false, "value longer than %d bytes",
		    MAP_VALUE_MAX);
		mp->skipping = true;
		return;
	}
	(void)str_set(mp->key, p, klen);
	if ((mp->flags & MAP_CASE_SENSITIVE) == 0)
		map_fold(str_data(mp->key), str_len(mp->key));
	(void)str_set(mp->value, p + vstart, vend - vstart);
	mp->have_entry = true;
	mp->entry_line = line;
}

/* map_parse_more - add continuation text p[0..n) (blanks trimmed) */
static void
map_parse_more(struct map_parse *mp, const char *p, size_t n)
{
	if ((str_len(mp->value) > 0 && str_append_c(mp->value, ' ') < 0) ||
	    str_append(mp->value, p, n) < 0) {
		map_parse_msg(mp, mp->entry_line, false,
		    "value longer than %d bytes", MAP_VALUE_MAX);
		mp->have_entry = false;
		mp->skipping = true;
	}
}

/* map_parse_line - one physical line p[0..n), without its LF */
static void
map_parse_line(struct map_parse *mp, const char *p, size_t n,
    unsigned long line)
{
	size_t i, end;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (memchr(p, '\0', n) != NULL) {
		map_parse_msg(mp, line, false, "NUL byte in line");
		if (n > 0 && map_is_blank(p[0])) {
			/* A bad continuation spoils its logical line. */
			mp->have_entry = false;
		} else
			map_parse_flush(mp);
		mp->skipping = true;
		return;
	}
	for (i = 0; i < n && map_is_blank(p[i]); i++)
		;
	if (i == n || p[i] == '#')
		return;		/* blank or comment */
	if (i > 0) {
		if (mp->skipping)
			return;
		if (!mp->have_entry) {
			map_parse_msg(mp, line, false,
			    "continuation line without a preceding entry");
			return;
		}
		for (end = n; end > i && map_is_blank(p[end - 1]); end--)
			;
		map_parse_more(mp, p + i, end - i);
		return;
	}
	map_parse_flush(mp);
	mp->skipping = false;
	if (!mp->stop)
		map_parse_first(mp, p, n, line);
}

/* map_parse_text - parse source text, calling cb per first-seen entry */
int
map_parse_text(const char *data, size_t len, const char *filename,
    int flags, map_entry_cb *cb, void *ctx, struct str *errors)
{
	struct map_parse mp;
	const char *p = data, *end = data + len, *nl;
	unsigned long line = 0;

	memset(&mp, 0, sizeof(mp));
	mp.filename = filename != NULL ? filename : "-";
	mp.flags = flags;
	mp.cb = cb;
	mp.ctx = ctx;
	mp.errors = errors;
	mp.key = str_new(64, MAP_KEY_MAX);
	mp.value = str_new(64, MAP_VALUE_MAX);
	while (p < end && !mp.stop) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		map_parse_line(&mp, p, (size_t)(nl - p), line);
		p = nl < end ? nl + 1 : end;
	}
	if (!mp.stop)
		map_parse_flush(&mp);
	map_hash_clear(&mp.seen);
	str_free(&mp.key);
	str_free(&mp.value);
	return mp.failed ? -1 : 0;
}

/* map_db_errcall - keep Berkeley DB's message instead of printing it */
static void
map_db_errcall(const DB_ENV *dbenv, const char *pfx, const char *msg)
{
	struct str *s = dbenv->app_private;

	(void)pfx;
	if (s == NULL)
		return;
	str_clear(s);
	(void)str_append_cstr(s, msg);
}

/* map_db_new - a DB handle whose messages go to errbuf */
static int
map_db_new(DB **dbp, struct str *errbuf)
{
	int ret;

	if ((ret = db_create(dbp, NULL, 0)) != 0)
		return ret;
	(*dbp)->dbenv->app_private = errbuf;
	(*dbp)->set_errcall(*dbp, map_db_errcall);
	return 0;
}

/* map_stat_id - the identity of a file from its stat */
static void
map_stat_id(const struct stat *st, struct map_file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtim = st->st_mtim;
	id->ctim = st->st_ctim;
}

/* map_id_same - do two identities name the same unchanged file */
static bool
map_id_same(const struct map_file_id *a, const struct map_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* map_error - set the map's error text and point *error_r at it */
static int PRINTF_LIKE(3, 4)
map_error(struct map *map, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	str_clear(map->error);
	va_start(ap, fmt);
	errno = saved;
	(void)str_vprintf(map->error, fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = str_c(map->error);
	errno = saved;
	return -1;
}

/* map_load_db - open map->path; replace the handle only on success */
static int
map_load_db(struct map *map, const char **error_r)
{
	struct stat st;
	DB *db;
	int ret, fd;

	str_clear(map->dberr);
	if ((ret = map_db_new(&db, map->dberr)) != 0)
		return map_error(map, error_r, "%s: db_create: %s",
		    map->spec, db_strerror(ret));
	ret = db->open(db, NULL, map->path, NULL, DB_BTREE, DB_RDONLY, 0);
	if (ret == 0 && (ret = db->fd(db, &fd)) == 0 && fstat(fd, &st) < 0)
		ret = errno;
	if (ret != 0) {
		(void)db->close(db, 0);
		return map_error(map, error_r, "%s: open %s: %s%s%s", map->spec,
		    map->path, db_strerror(ret),
		    str_len(map->dberr) > 0 ? ": " : "", str_c(map->dberr));
	}
	if (map->db != NULL)
		(void)map->db->close(map->db, 0);
	map->db = db;
	map_stat_id(&st, &map->id);
	return 0;
}

/* map_file_cb - store one entry of a file: map */
static int
map_file_cb(void *ctx, const char *key, const char *value)
{
	struct map_hash *h = ctx;

	(void)map_hash_add(h, key, strlen(key), value, 0);
	return 0;
}

/* map_check_cb - accept every entry (map_build of a file: map only checks) */
static int
map_check_cb(void *ctx, const char *key, const char *value)
{
	(void)ctx;
	(void)key;
	(void)value;
	return 0;
}

/* map_load_file - read and parse map->path; replace the table on success */
static int
map_load_file(struct map *map, const char **error_r)
{
	struct map_hash table;
	struct str *text, *errors;
	struct stat st;
	const char *nl;
	int ret;

	if (stat(map->path, &st) < 0)
		return map_error(map, error_r, "%s: %s: %m", map->spec,
		    map->path);
	text = str_new(st.st_size > 0 ? (size_t)st.st_size : 0, 0);
	if (read_file(map->path, text, MAP_SOURCE_MAX) < 0) {
		str_free(&text);
		return map_error(map, error_r, "%s: read %s: %m", map->spec,
		    map->path);
	}
	memset(&table, 0, sizeof(table));
	errors = str_new(0, 0);
	ret = map_parse_text(str_c(text), str_len(text), map->path,
	    map->flags, map_file_cb, &table, errors);
	str_free(&text);
	if (ret < 0) {
		/* Report the first error; all are in `postern map build`. */
		nl = memchr(str_c(errors), '\n', str_len(errors));
		map_error(map, error_r, "%.*s", nl != NULL ?
		    (int)(nl - str_c(errors)) : (int)str_len(errors),
		    str_c(errors));
		str_free(&errors);
		map_hash_clear(&table);
		return -1;
	}
	str_free(&errors);
	map_hash_clear(&map->table);
	map->table = table;
	map_stat_id(&st, &map->id);
	return 0;
}

/* map_load_ldap - (re)read an ldap: map's configuration file */
static int
map_load_ldap(struct map *map, const char **error_r)
{
	struct ldapdir *ld;
	struct stat st;
	struct str *text;

	text = str_new(0, 0);
	if (stat(map->path, &st) < 0 ||
	    read_file(map->path, text, MAP_VALUE_MAX) < 0) {
		str_free(&text);
		return map_error(map, error_r, "%s: %s: %m", map->spec,
		    map->path);
	}
	str_clear(map->error);
	ld = ldapdir_from_text(str_c(text), str_len(text), map->path,
	    map->error);
	explicit_bzero(str_data(text), str_len(text));
	str_free(&text);
	if (ld == NULL) {
		str_chomp(map->error);
		*error_r = str_c(map->error);
		return -1;
	}
	ldapdir_free(&map->ldap);
	map->ldap = ld;
	map_stat_id(&st, &map->id);
	return 0;
}

/* map_load - (re)load the map's file */
static int
map_load(struct map *map, const char **error_r)
{
	if (map->type == MAP_TYPE_LDAP)
		return map_load_ldap(map, error_r);
	return map->type == MAP_TYPE_DB ? map_load_db(map, error_r) :
	    map_load_file(map, error_r);
}

/* map_refresh - reload if the file was replaced or changed */
static int
map_refresh(struct map *map, const char **error_r)
{
	struct map_file_id now;
	struct stat st;

	if (stat(map->path, &st) < 0)
		return map_error(map, error_r, "%s: %s: %m", map->spec,
		    map->path);
	map_stat_id(&st, &now);
	if (map_id_same(&now, &map->id))
		return 0;
	return map_load(map, error_r);
}

/* map_spec_parse - split spec into type and name; false if unknown type */
static bool
map_spec_parse(const char *spec, enum map_type *type_r, const char **name_r,
    const char **why_r)
{
	const char *colon = strchr(spec, ':'), *p;
	size_t n;

	*type_r = MAP_TYPE_DB;
	*name_r = spec;
	if (colon != NULL) {
		/* A type is lower-case letters; otherwise ':' is in the path. */
		for (p = spec; p < colon && *p >= 'a' && *p <= 'z'; p++)
			;
		if (p == colon && colon > spec) {
			n = (size_t)(colon - spec);
			*name_r = colon + 1;
			if (n == 2 && memcmp(spec, "db", 2) == 0)
				*type_r = MAP_TYPE_DB;
			else if (n == 4 && memcmp(spec, "file", 4) == 0)
				*type_r = MAP_TYPE_FILE;
			else if (n == 4 && memcmp(spec, "ldap", 4) == 0)
				*type_r = MAP_TYPE_LDAP;
			else {
				*why_r = "unsupported map type";
				return false;
			}
		}
	}
	if (**name_r == '\0') {
		*why_r = "empty map name";
		return false;
	}
	return true;
}

/* map_open_fail - set the static open error; see XXX in DESCRIPTION */
static struct map * PRINTF_LIKE(2, 3)
map_open_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (map_open_error == NULL)
		map_open_error = str_new(0, 0);
	str_clear(map_open_error);
	va_start(ap, fmt);
	(void)str_vprintf(map_open_error, fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = str_c(map_open_error);
	errno = saved;
	return NULL;
}

/* map_open - open a table */
struct map *
map_open(const char *spec, int flags, const char **error_r)
{
	struct map *map;
	enum map_type type;
	const char *name, *why, *err;

	if (!map_spec_parse(spec, &type, &name, &why))
		return map_open_fail(error_r, "%s: %s", spec, why);
	map = xcalloc(1, sizeof(*map));
	map->spec = xstrdup(spec);
	map->type = type;
	map->flags = flags;
	map->path = type == MAP_TYPE_DB ? xasprintf("%s%s", name,
	    MAP_DB_SUFFIX) : xstrdup(name);
	map->key = str_new(64, 0);
	map->error = str_new(0, 0);
	map->dberr = str_new(0, 0);
	if (map_load(map, &err) < 0) {
		(void)map_open_fail(error_r, "%s", err);
		map_close(&map);
		return NULL;
	}
	return map;
}

/* map_close - close and free (NULL allowed) */
void
map_close(struct map **mapp)
{
	struct map *map = *mapp;

	if (map == NULL)
		return;
	if (map->db != NULL)
		(void)map->db->close(map->db, 0);
	map_hash_clear(&map->table);
	ldapdir_free(&map->ldap);
	free(map->spec);
	free(map->path);
	str_free(&map->key);
	str_free(&map->error);
	str_free(&map->dberr);
	free(map);
	*mapp = NULL;
}

/* map_spec - the spec the map was opened with */
const char *
map_spec(const struct map *map)
{
	return map->spec;
}

/* map_lookup - look key up, reloading a replaced file first */
int
map_lookup(struct map *map, const char *key, struct str *value_r,
    const char **error_r)
{
	struct map_hash_entry *e;
	size_t len = strlen(key);
	DBT k, v;
	int ret;

	if (map_refresh(map, error_r) < 0)
		return -1;
	if (len == 0 || len > MAP_KEY_MAX)
		return 0;	/* no such key can be stored */
	(void)str_set(map->key, key, len);
	if ((map->flags & MAP_CASE_SENSITIVE) == 0)
		map_fold(str_data(map->key), len);
	if (map->type == MAP_TYPE_LDAP)
		return ldapdir_search(map->ldap, str_c(map->key), value_r, NULL,
		    error_r);
	if (map->type == MAP_TYPE_FILE) {
		if ((e = map_hash_find(&map->table, str_c(map->key), len)) ==
		    NULL)
			return 0;
		(void)str_set_cstr(value_r, e->value);
		return 1;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = str_data(map->key);
	k.size = (u_int32_t)len;
	str_clear(map->dberr);
	ret = map->db->get(map->db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return map_error(map, error_r, "%s: lookup: %s%s%s", map->spec,
		    db_strerror(ret), str_len(map->dberr) > 0 ? ": " : "",
		    str_c(map->dberr));
	/* The value memory belongs to the handle until its next call. */
	if (str_set(value_r, v.data, v.size) < 0)
		return map_error(map, error_r, "%s: value too long",
		    map->spec);
	return 1;
}

/* map_build state */
struct map_build {
	DB *db;
	struct str *dberr;
	int ret;		/* the first failed put */
};

/* map_build_cb - store one entry in the new database */
static int
map_build_cb(void *ctx, const char *key, const char *value)
{
	struct map_build *mb = ctx;
	DBT k, v;
	int ret;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	/* BDB takes non-const pointers but does not write through them. */
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)strlen(key);
	v.data = (void *)(uintptr_t)value;
	v.size = (u_int32_t)strlen(value);
	if ((ret = mb->db->put(mb->db, NULL, &k, &v, DB_NOOVERWRITE)) != 0) {
		mb->ret = ret;
		return -1;
	}
	return 0;
}

/* map_build_create - create a temporary database next to target */
static int
map_build_create(const char *target, mode_t mode, struct map_build *mb,
    struct str *tmp)
{
	int tries, ret = EEXIST;

	for (tries = 0; tries < MAP_TMP_TRIES && ret == EEXIST; tries++) {
		if (safe_file_tmpname(target, tmp) < 0)
			return errno;
		if ((ret = map_db_new(&mb->db, mb->dberr)) != 0)
			return ret;
		ret = mb->db->open(mb->db, NULL, str_c(tmp), NULL, DB_BTREE,
		    DB_CREATE | DB_EXCL, mode);
		if (ret != 0) {
			(void)mb->db->close(mb->db, 0);
			mb->db = NULL;
		}
	}
	return ret;
}

/* map_build - compile the source of a db: map, or check a file: map */
int
map_build(const char *spec, int flags, struct str *errors)
{
	struct map_build mb;
	struct str *text, *tmp = NULL, *target = NULL;
	struct stat st;
	enum map_type type;
	const char *name, *why;
	mode_t mode;
	int ret, result = -1;

	if (!map_spec_parse(spec, &type, &name, &why)) {
		(void)str_printf(errors, "%s: %s\n", spec, why);
		return -1;
	}
	text = str_new(0, 0);
	if (stat(name, &st) < 0 || read_file(name, text, MAP_SOURCE_MAX) < 0) {
		(void)str_printf(errors, "%s: %m\n", name);
		str_free(&text);
		return -1;
	}
	if (type == MAP_TYPE_LDAP) {
		/* Nothing to build: check the configuration. */
		struct ldapdir *ld = ldapdir_from_text(str_c(text),
		    str_len(text), name, errors);

		result = ld != NULL ? 0 : -1;
		ldapdir_free(&ld);
		explicit_bzero(str_data(text), str_len(text));
		str_free(&text);
		return result;
	}
	if (type == MAP_TYPE_FILE) {
		result = map_parse_text(str_c(text), str_len(text), name, flags,
		    map_check_cb, NULL, errors);
		str_free(&text);
		return result;
	}

	memset(&mb, 0, sizeof(mb));
	mb.dberr = str_new(0, 0);
	tmp = str_new(0, 0);
	target = str_new(0, 0);
	(void)str_printf(target, "%s%s", name, MAP_DB_SUFFIX);
	/* The database gets the source's permission bits, as with postmap. */
	mode = st.st_mode & 0666;
	if ((ret = map_build_create(str_c(target), mode, &mb, tmp)) != 0) {
		(void)str_printf(errors, "%s: create: %s%s%s\n", str_c(target),
		    db_strerror(ret), str_len(mb.dberr) > 0 ? ": " : "",
		    str_c(mb.dberr));
		goto out;
	}
	if (map_parse_text(str_c(text), str_len(text), name, flags,
	    map_build_cb, &mb, errors) < 0) {
		if (mb.ret != 0)
			(void)str_printf(errors, "%s: put: %s%s%s\n",
			    str_c(tmp), db_strerror(mb.ret),
			    str_len(mb.dberr) > 0 ? ": " : "", str_c(mb.dberr));
		(void)mb.db->close(mb.db, 0);
		goto unlink;
	}
	ret = mb.db->sync(mb.db, 0);
	if (ret == 0)
		ret = mb.db->close(mb.db, 0);
	else
		(void)mb.db->close(mb.db, 0);
	if (ret != 0) {
		(void)str_printf(errors, "%s: write: %s%s%s\n", str_c(tmp),
		    db_strerror(ret), str_len(mb.dberr) > 0 ? ": " : "",
		    str_c(mb.dberr));
		goto unlink;
	}
	/* Not subject to the umask: the source's bits are the intent. */
	if (chmod(str_c(tmp), mode) < 0 || (geteuid() == 0 &&
	    chown(str_c(tmp), st.st_uid, st.st_gid) < 0)) {
		(void)str_printf(errors, "%s: chmod/chown: %m\n", str_c(tmp));
		goto unlink;
	}
	if (safe_file_install(str_c(tmp), str_c(target)) < 0) {
		(void)str_printf(errors, "%s: install: %m\n", str_c(target));
		goto unlink;
	}
	result = 0;
	goto out;
unlink:
	(void)unlink(str_c(tmp));
out:
	str_free(&text);
	str_free(&tmp);
	str_free(&target);
	str_free(&mb.dberr);
	return result;
}
