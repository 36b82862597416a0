/* SPDX-License-Identifier: MIT */
/*
 * list_store - a mailing list's data on disk (see list_store.h)
 *
 * DESCRIPTION
 *	The settings file is "key = value" lines, one per non-default
 *	setting; unknown keys are refused at read time so a typo is seen,
 *	not ignored. Values never hold a newline (list_setting_check), so
 *	the file cannot be made to carry a second line by a value.
 *
 *	One-click unsubscribe tokens are made in list_unsub.c, apart, so
 *	that a reader of lists (imapd's mail role) links no libcrypto.
 *
 *	Member records in members.db are text "flags score last_bounce
 *	disabled since" (decimal), parsed strictly; a record that does not
 *	parse is reported as a database error rather than guessed at.
 *
 * SEE ALSO
 *	list-mgr(8), postern(8) (postern list)
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "list_store.h"
#include "log.h"
#include "safe_file.h"
#include "str.h"

enum list_stype { LS_STR, LS_INT, LS_BOOL, LS_ENUM, LS_ADDRS, LS_GROUP };

static const struct {
	const char *key;
	enum list_stype type;
	const char *def;
	const char *choices;	/* LS_ENUM: "a|b|c" */
} list_settings[] = {
	{ "advertise_who", LS_ENUM, "owners", "members|owners|nobody" },
	{ "archive", LS_ENUM, "public", "public|private|off" },
	{ "archive_imap", LS_BOOL, "no", NULL },
	{ "archive_url", LS_STR, "", NULL },
	{ "bounce_once_per_day", LS_BOOL, "yes", NULL },
	{ "bounce_remove_after", LS_INT, "604800", NULL },
	{ "bounce_score_hard", LS_INT, "10", NULL },	/* tenths */
	{ "bounce_score_soft", LS_INT, "5", NULL },	/* tenths */
	{ "bounce_threshold", LS_INT, "50", NULL },	/* tenths: 5.0 */
	{ "confirm_lifetime", LS_INT, "259200", NULL },
	{ "description", LS_STR, "", NULL },
	{ "digest_interval", LS_INT, "86400", NULL },
	{ "digest_size", LS_INT, "30000", NULL },
	{ "dmarc_mitigation", LS_ENUM, "auto", "auto|always|never" },
	{ "domain", LS_STR, "", NULL },
	{ "footer", LS_STR, "", NULL },
	{ "http_unsubscribe_url", LS_STR, "", NULL },
	{ "ldap_base", LS_STR, "", NULL },
	{ "ldap_bind_dn", LS_STR, "", NULL },
	{ "ldap_bind_password", LS_STR, "", NULL },
	{ "ldap_bind_password_file", LS_STR, "", NULL },
	{ "ldap_contact", LS_STR, "", NULL },
	{ "ldap_group", LS_STR, "", NULL },
	{ "ldap_leave_text", LS_STR, "", NULL },
	{ "ldap_uri", LS_STR, "", NULL },
	{ "max_size", LS_INT, "1048576", NULL },
	{ "membership", LS_ENUM, "db", "db|ldap|both" },
	{ "moderators", LS_ADDRS, "", NULL },
	{ "newsgroup", LS_GROUP, "", NULL },
	{ "nonmember_action", LS_ENUM, "hold", "hold|reject|discard|accept" },
	{ "owners", LS_ADDRS, "", NULL },
	{ "password", LS_STR, "", NULL },
	{ "posting", LS_ENUM, "members", "open|members|moderated" },
	{ "subject_prefix", LS_STR, "", NULL },
	{ "subscribe_policy", LS_ENUM, "confirm", "open|confirm|closed" },
};

/* list_setting_find - index of key, -1 if unknown */
static int
list_setting_find(const char *key)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(list_settings); i++)
		if (strcmp(list_settings[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* list_keys - see list_store.h */
const char *const *
list_keys(void)
{
	static const char *keys[N_ELEMENTS(list_settings) + 1];
	size_t i;

	for (i = 0; i < N_ELEMENTS(list_settings); i++)
		keys[i] = list_settings[i].key;
	keys[i] = NULL;
	return keys;
}

/* list_setting_ok - see list_store.h */
bool
list_setting_ok(const char *key)
{
	return list_setting_find(key) >= 0;
}

/* list_setting_check - see list_store.h */
bool
list_setting_check(const char *key, const char *value, const char **error_r)
{
	int i = list_setting_find(key);
	unsigned long n;
	const char *p, *c;
	size_t len;

	if (i < 0) {
		*error_r = "unknown list setting";
		return false;
	}
	if (strpbrk(value, "\r\n") != NULL || strlen(value) > 4000) {
		*error_r = "value has a line break or is too long";
		return false;
	}
	switch (list_settings[i].type) {
	case LS_INT:
		if (!str_to_ulong(value, strlen(value), 1UL << 40, &n)) {
			*error_r = "value is not a number";
			return false;
		}
		break;
	case LS_BOOL:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			*error_r = "value is not yes or no";
			return false;
		}
		break;
	case LS_ENUM:
		len = strlen(value);
		for (p = list_settings[i].choices; *p != '\0'; p = c) {
			c = strchr(p, '|');
			if (c == NULL)
				c = p + strlen(p);
			if ((size_t)(c - p) == len && strncmp(p, value, len) == 0)
				return true;
			if (*c == '|')
				c++;
		}
		*error_r = "value is not one of the allowed words";
		return false;
	case LS_GROUP:
		/* RFC 5536 3.1.4 newsgroup-name, lower case; "" = none */
		for (p = value; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' &&
			    *p <= '9') || strchr("+-_.", *p) != NULL) ||
			    (*p == '.' && (p == value || p[-1] == '.' ||
			    p[1] == '\0'))) {
				*error_r = "value is not a newsgroup name";
				return false;
			}
		if (p - value > 200) {
			*error_r = "newsgroup name too long";
			return false;
		}
		break;
	case LS_STR:
	case LS_ADDRS:
		break;
	}
	return true;
}

/* list_name_ok - see list_store.h */
bool
list_name_ok(const char *name)
{
	static const char *const reserved[] = { "-request", "-owner",
	    "-bounces", "-join", "-leave", "-confirm" };
	size_t i, len = strlen(name), rl;

	if (len == 0 || len > LIST_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return false;
	}
	for (i = 0; i < N_ELEMENTS(reserved); i++) {
		rl = strlen(reserved[i]);
		if (len >= rl && strcmp(name + len - rl, reserved[i]) == 0)
			return false;
	}
	return true;
}

/* list_split_address - see list_store.h */
const char *
list_split_address(const char *local, struct str *name, struct str *extra)
{
	static const char *const roles[] = { "request", "owner", "bounces",
	    "join", "leave", "confirm" };
	const char *plus = strchr(local, '+'), *dash;
	size_t base_len, i, rl;

	str_clear(name);
	str_clear(extra);
	base_len = plus != NULL ? (size_t)(plus - local) : strlen(local);
	if (plus != NULL)
		str_append_cstr(extra, plus + 1);
	for (i = 0; i < N_ELEMENTS(roles); i++) {
		rl = strlen(roles[i]);
		if (base_len > rl + 1 && local[base_len - rl - 1] == '-' &&
		    strncasecmp(local + base_len - rl, roles[i], rl) == 0) {
			str_append(name, local, base_len - rl - 1);
			dash = roles[i];
			goto check;
		}
	}
	/* A post: no '+' part allowed. */
	if (plus != NULL)
		return NULL;
	str_append(name, local, base_len);
	dash = "";
check:
	for (i = 0; i < str_len(name); i++)
		if (str_c(name)[i] >= 'A' && str_c(name)[i] <= 'Z')
			str_data(name)[i] = (char)(str_c(name)[i] - 'A' + 'a');
	if (!list_name_ok(str_c(name)))
		return NULL;
	return dash;
}

/* list_directory - see list_store.h */
const char *
list_directory(void)
{
	return config_str(conf(), "list_directory");
}

/* list_new - an empty list object for name */
static struct list *
list_new(const char *name)
{
	struct list *l = xcalloc(1, sizeof(*l));

	l->name = xstrdup(name);
	l->dir = xasprintf("%s/%s", list_directory(), name);
	return l;
}

/* list_store_free - see list_store.h */
void
list_store_free(struct list **lp)
{
	struct list *l = *lp;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nsettings; i++) {
		free(l->keys[i]);
		free(l->values[i]);
	}
	free(l->keys);
	free(l->values);
	free(l->name);
	free(l->dir);
	free(l);
	*lp = NULL;
}

/* list_set_raw - set without checking */
static void
list_set_raw(struct list *l, const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < l->nsettings; i++)
		if (strcmp(l->keys[i], key) == 0) {
			free(l->values[i]);
			l->values[i] = xstrdup(value);
			return;
		}
	l->keys = xreallocarray(l->keys, l->nsettings + 1, sizeof(char *));
	l->values = xreallocarray(l->values, l->nsettings + 1, sizeof(char *));
	l->keys[l->nsettings] = xstrdup(key);
	l->values[l->nsettings] = xstrdup(value);
	l->nsettings++;
}

/* list_set - see list_store.h */
int
list_set(struct list *l, const char *key, const char *value,
    const char **error_r)
{
	if (!list_setting_check(key, value, error_r))
		return -1;
	list_set_raw(l, key, value);
	return 0;
}

/* list_get - see list_store.h */
const char *
list_get(const struct list *l, const char *key)
{
	size_t i;
	int k;

	for (i = 0; i < l->nsettings; i++)
		if (strcmp(l->keys[i], key) == 0)
			return l->values[i];
	k = list_setting_find(key);
	if (k < 0)
		log_panic(NULL, "list_get: unknown list setting %s", key);
	return list_settings[k].def;
}

long
list_get_int(const struct list *l, const char *key)
{
	return strtol(list_get(l, key), NULL, 10);
}

bool
list_get_bool(const struct list *l, const char *key)
{
	return strcmp(list_get(l, key), "yes") == 0;
}

/* list_store_parse - settings text into l; -1 on a bad line */
static int
list_store_parse(struct list *l, const char *data, size_t len,
    const char **error_r)
{
	const char *p = data, *end = data + len, *nl, *eq;
	struct str *key = str_new(0, 0), *val = str_new(0, 0);
	int rc = 0;

	for (; p < end; p = nl + 1) {
		const char *k, *ke, *v, *ve;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl == p || *p == '#')
			continue;
		eq = memchr(p, '=', (size_t)(nl - p));
		if (eq == NULL) {
			*error_r = "config line without '='";
			rc = -1;
			break;
		}
		k = p;
		ke = eq;
		while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		v = eq + 1;
		while (v < nl && (*v == ' ' || *v == '\t'))
			v++;
		ve = nl;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
			ve--;
		str_set(key, k, (size_t)(ke - k));
		str_set(val, v, (size_t)(ve - v));
		if (list_set(l, str_c(key), str_c(val), error_r) < 0) {
			rc = -1;
			break;
		}
	}
	str_free(&key);
	str_free(&val);
	return rc;
}

/* list_store_open - see list_store.h */
struct list *
list_store_open(const char *name, const char **error_r)
{
	struct list *l;
	struct str *path, *data;

	if (!list_name_ok(name)) {
		errno = EINVAL;
		*error_r = "bad list name";
		return NULL;
	}
	l = list_new(name);
	path = str_new(0, 0);
	data = str_new(0, 0);
	str_printf(path, "%s/config", l->dir);
	if (read_file(str_c(path), data, 1024 * 1024) < 0) {
		*error_r = errno == ENOENT ? "no such list" :
		    "cannot read the list's config";
		list_store_free(&l);
	} else if (list_store_parse(l, str_c(data), str_len(data), error_r) < 0) {
		list_store_free(&l);
		errno = EINVAL;
	}
	str_free(&path);
	str_free(&data);
	return l;
}

/* list_store_save - see list_store.h */
int
list_store_save(const struct list *l, const char **error_r)
{
	struct str *text = str_new(0, 0), *path = str_new(0, 0);
	size_t i;
	int rc;

	str_printf(text, "# list %s: written by postern list; see list-mgr(8)\n",
	    l->name);
	for (i = 0; i < l->nsettings; i++)
		str_printf(text, "%s = %s\n", l->keys[i], l->values[i]);
	str_printf(path, "%s/config", l->dir);
	rc = safe_file_replace(str_c(path), str_c(text), str_len(text), 0640);
	if (rc < 0)
		*error_r = "cannot write the list's config";
	str_free(&text);
	str_free(&path);
	return rc;
}

/* list_store_create - see list_store.h */
struct list *
list_store_create(const char *name, const char *domain, const char **error_r)
{
	static const char *const subdirs[] = { "held", "pending", "archive",
	    "archive/html" };
	struct list *l;
	struct str *path;
	size_t i;

	if (!list_name_ok(name)) {
		*error_r = "bad list name";
		return NULL;
	}
	if (mkdir_p(list_directory(), 0750) < 0) {
		*error_r = "cannot create $list_directory";
		return NULL;
	}
	l = list_new(name);
	if (mkdir(l->dir, 0750) < 0) {
		*error_r = errno == EEXIST ? "the list exists" :
		    "cannot create the list directory";
		list_store_free(&l);
		return NULL;
	}
	path = str_new(0, 0);
	for (i = 0; i < N_ELEMENTS(subdirs); i++)
		(void)mkdir(list_path(l, subdirs[i], path), 0750);
	str_free(&path);
	list_set_raw(l, "domain", domain);
	if (list_store_save(l, error_r) < 0)
		list_store_free(&l);
	return l;
}

/* list_rm_cb - nftw callback removing everything */
static int
list_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* list_store_delete - see list_store.h */
int
list_store_delete(const char *name, const char **error_r)
{
	struct list *l;
	int rc;

	if (!list_name_ok(name)) {
		*error_r = "bad list name";
		return -1;
	}
	l = list_new(name);
	rc = nftw(l->dir, list_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	if (rc != 0)
		*error_r = errno == ENOENT ? "no such list" :
		    "cannot remove the list directory";
	list_store_free(&l);
	return rc == 0 ? 0 : -1;
}

/* list_address - see list_store.h */
void
list_address(const struct list *l, const char *role, struct str *out)
{
	str_clear(out);
	str_printf(out, "%s%s%s@%s", l->name, role[0] != '\0' ? "-" : "", role,
	    list_get(l, "domain"));
}

/* list_path - see list_store.h */
const char *
list_path(const struct list *l, const char *rel, struct str *out)
{
	str_clear(out);
	str_printf(out, "%s/%s", l->dir, rel);
	return str_c(out);
}

/* list_addr_in - see list_store.h */
bool
list_addr_in(const struct list *l, const char *key, const char *addr)
{
	const char *p = list_get(l, key), *e;
	size_t n = strlen(addr);

	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		e = p;
		while (*e != '\0' && *e != ' ' && *e != ',' && *e != '\t')
			e++;
		if ((size_t)(e - p) == n && n > 0 && strncasecmp(p, addr, n) == 0)
			return true;
		p = e;
	}
	return false;
}

/* list_user_addresses - see list_store.h */
char **
list_user_addresses(const char *user, size_t *n_r)
{
	struct config *cf = conf();
	const char *const *dom;
	char **v;
	size_t n, i, k = 0;

	if (strchr(user, '@') != NULL) {
		v = xcalloc(1, sizeof(char *));
		v[k++] = xstrdup(user);
		*n_r = k;
		return v;
	}
	dom = config_list(cf, "mydestination", &n);
	v = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i <= n; i++) {
		const char *d = i < n ? dom[i] : config_str(cf, "mydomain");
		struct str *a;

		if (d == NULL || *d == '\0')
			continue;
		a = str_new(0, 0);
		str_printf(a, "%s@%s", user, d);
		v[k++] = str_steal(&a);
	}
	*n_r = k;
	return v;
}

/* list_archive_imap_shown - see list_store.h */
bool
list_archive_imap_shown(const struct list *l)
{
	return list_get_bool(l, "archive_imap") &&
	    strcmp(list_get(l, "archive"), "off") != 0;
}

/* ---------------------------------------------------------- members */

struct list_members {
	int lock_fd;
	DB *db;
	struct str *err;
};

/* list_members_close - see list_store.h */
void
list_members_close(struct list_members **mpp)
{
	struct list_members *mp = *mpp;

	if (mp == NULL)
		return;
	if (mp->db != NULL)
		(void)mp->db->close(mp->db, 0);
	if (mp->lock_fd >= 0)
		(void)close(mp->lock_fd);	/* releases the flock */
	str_free(&mp->err);
	free(mp);
	*mpp = NULL;
}

/* list_members_open - see list_store.h */
struct list_members *
list_members_open(const struct list *l, bool writable, const char **error_r)
{
	struct list_members *mp = xcalloc(1, sizeof(*mp));
	struct str *path = str_new(0, 0);
	int ret;

	mp->err = str_new(0, 0);
	mp->lock_fd = open(list_path(l, "lock", path), O_RDWR | O_CREAT |
	    O_CLOEXEC, 0640);
	/* a reader with read access only (imapd's shared mailboxes) */
	if (mp->lock_fd < 0 && errno == EACCES && !writable)
		mp->lock_fd = open(str_c(path), O_RDONLY | O_CLOEXEC);
	if (mp->lock_fd < 0 || flock(mp->lock_fd, writable ? LOCK_EX :
	    LOCK_SH) < 0) {
		*error_r = "cannot lock the list";
		goto fail;
	}
	if ((ret = db_create(&mp->db, NULL, 0)) != 0) {
		*error_r = "db_create failed";
		mp->db = NULL;
		goto fail;
	}
	ret = mp->db->open(mp->db, NULL, list_path(l, "members.db", path), NULL,
	    DB_BTREE, DB_CREATE, 0640);
	if (ret == EACCES && !writable) {
		(void)mp->db->close(mp->db, 0);
		if ((ret = db_create(&mp->db, NULL, 0)) != 0)
			mp->db = NULL;
		else
			ret = mp->db->open(mp->db, NULL, str_c(path), NULL,
			    DB_BTREE, DB_RDONLY, 0);
		if (mp->db == NULL) {
			*error_r = "db_create failed";
			goto fail;
		}
	}
	if (ret != 0) {
		/* static text: the caller's error must outlive mp */
		*error_r = ret == ENOENT ? "members.db missing" :
		    "cannot open members.db";
		goto fail;
	}
	str_free(&path);
	return mp;
fail:
	str_free(&path);
	list_members_close(&mp);
	return NULL;
}

/* list_address_key - see list_store.h */
void
list_address_key(const char *address, struct str *out)
{
	size_t i;

	str_set_cstr(out, address);
	for (i = 0; i < str_len(out); i++)
		if (str_c(out)[i] >= 'A' && str_c(out)[i] <= 'Z')
			str_data(out)[i] = (char)(str_c(out)[i] - 'A' + 'a');
}

/* list_member_clear - see list_store.h */
void
list_member_clear(struct list_member *m)
{
	free(m->address);
	memset(m, 0, sizeof(*m));
}

/* list_member_decode - record text into m (address set by the caller) */
static bool
list_member_decode(const char *p, size_t n, struct list_member *m)
{
	char buf[128], *e;
	unsigned long flags;
	long long lb, dis, since;
	double score;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	flags = strtoul(buf, &e, 10);
	if (*e != ' ')
		return false;
	score = strtod(e + 1, &e);
	if (*e != ' ')
		return false;
	lb = strtoll(e + 1, &e, 10);
	if (*e != ' ')
		return false;
	dis = strtoll(e + 1, &e, 10);
	if (*e != ' ')
		return false;
	since = strtoll(e + 1, &e, 10);
	if (*e != '\0' || errno != 0)
		return false;
	m->flags = (unsigned)flags;
	m->score = score;
	m->last_bounce = (time_t)lb;
	m->disabled = (time_t)dis;
	m->since = (time_t)since;
	return true;
}

/* list_member_get - see list_store.h */
int
list_member_get(struct list_members *mp, const char *address,
    struct list_member *m, const char **error_r)
{
	struct str *k = str_new(0, 0);
	DBT key, val;
	int ret;

	list_address_key(address, k);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = str_data(k);
	key.size = (u_int32_t)str_len(k);
	memset(m, 0, sizeof(*m));
	ret = mp->db->get(mp->db, NULL, &key, &val, 0);
	if (ret == DB_NOTFOUND) {
		str_free(&k);
		return 0;
	}
	if (ret != 0 || !list_member_decode(val.data, val.size, m)) {
		*error_r = ret != 0 ? "members.db read error" :
		    "bad member record";
		str_free(&k);
		return -1;
	}
	m->address = str_steal(&k);
	return 1;
}

/* list_member_put - see list_store.h */
int
list_member_put(struct list_members *mp, const struct list_member *m,
    const char **error_r)
{
	struct str *k = str_new(0, 0), *v = str_new(0, 0);
	DBT key, val;
	int ret;

	list_address_key(m->address, k);
	str_printf(v, "%u %.2f %lld %lld %lld", m->flags, m->score,
	    (long long)m->last_bounce, (long long)m->disabled,
	    (long long)m->since);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = str_data(k);
	key.size = (u_int32_t)str_len(k);
	val.data = str_data(v);
	val.size = (u_int32_t)str_len(v);
	ret = mp->db->put(mp->db, NULL, &key, &val, 0);
	if (ret == 0)
		ret = mp->db->sync(mp->db, 0);
	str_free(&k);
	str_free(&v);
	if (ret != 0) {
		*error_r = "members.db write error";
		return -1;
	}
	return 0;
}

/* list_member_del - see list_store.h */
int
list_member_del(struct list_members *mp, const char *address,
    const char **error_r)
{
	struct str *k = str_new(0, 0);
	DBT key;
	int ret;

	list_address_key(address, k);
	memset(&key, 0, sizeof(key));
	key.data = str_data(k);
	key.size = (u_int32_t)str_len(k);
	ret = mp->db->del(mp->db, NULL, &key, 0);
	if (ret == 0)
		ret = mp->db->sync(mp->db, 0);
	str_free(&k);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0) {
		*error_r = "members.db write error";
		return -1;
	}
	return 1;
}

/* list_members_each - see list_store.h */
int
list_members_each(struct list_members *mp,
    int (*cb)(const struct list_member *m, void *ctx), void *ctx,
    const char **error_r)
{
	DBC *cur = NULL;
	DBT key, val;
	struct list_member m;
	int ret, rc = 0;

	if (mp->db->cursor(mp->db, NULL, &cur, 0) != 0) {
		*error_r = "members.db cursor error";
		return -1;
	}
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((ret = cur->get(cur, &key, &val, DB_NEXT)) == 0) {
		memset(&m, 0, sizeof(m));
		if (!list_member_decode(val.data, val.size, &m)) {
			*error_r = "bad member record";
			rc = -1;
			break;
		}
		m.address = xstrndup(key.data, key.size);
		rc = cb(&m, ctx);
		list_member_clear(&m);
		if (rc != 0)
			break;
	}
	if (rc == 0 && ret != DB_NOTFOUND) {
		*error_r = "members.db read error";
		rc = -1;
	}
	(void)cur->close(cur);
	return rc;
}

static const struct {
	unsigned bit;
	const char *name;
} list_flag_names[] = {
	{ LIST_MEMBER_DIGEST, "digest" },
	{ LIST_MEMBER_NOMAIL, "nomail" },
	{ LIST_MEMBER_NOCOPY, "nocopy" },
	{ LIST_MEMBER_PLAIN, "plain" },
	{ LIST_MEMBER_BOUNCING, "bouncing" },
	{ LIST_MEMBER_MODERATOR, "moderator" },
};

/* list_member_flags_str - see list_store.h */
void
list_member_flags_str(unsigned flags, struct str *out)
{
	size_t i;
	bool first = true;

	str_clear(out);
	for (i = 0; i < N_ELEMENTS(list_flag_names); i++)
		if (flags & list_flag_names[i].bit) {
			str_printf(out, "%s%s", first ? "" : ",",
			    list_flag_names[i].name);
			first = false;
		}
	if (first)
		str_append_cstr(out, "-");
}

/* list_member_flags_parse - see list_store.h */
bool
list_member_flags_parse(const char *s, unsigned *flags_r)
{
	const char *p = s, *e;
	size_t i;
	unsigned flags = 0;

	if (strcmp(s, "-") == 0 || *s == '\0') {
		*flags_r = 0;
		return true;
	}
	while (*p != '\0') {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		for (i = 0; i < N_ELEMENTS(list_flag_names); i++)
			if (strlen(list_flag_names[i].name) == (size_t)(e - p) &&
			    strncmp(list_flag_names[i].name, p,
			    (size_t)(e - p)) == 0)
				break;
		if (i == N_ELEMENTS(list_flag_names))
			return false;
		flags |= list_flag_names[i].bit;
		p = *e == ',' ? e + 1 : e;
	}
	*flags_r = flags;
	return true;
}

/* list_random_token - see list_store.h */
void
list_random_token(struct str *out)
{
	unsigned char b[12];
	size_t i, got = 0;
	ssize_t n;

	while (got < sizeof(b)) {
		n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			abort();	/* no entropy: nothing sane to do */
		}
		got += (size_t)n;
	}
	str_clear(out);
	for (i = 0; i < sizeof(b); i++)
		str_printf(out, "%02x", b[i]);
	explicit_bzero(b, sizeof(b));
}

/* list_token_ok - see list_store.h */
bool
list_token_ok(const char *token)
{
	size_t i;

	for (i = 0; token[i] != '\0'; i++)
		if (!((token[i] >= '0' && token[i] <= '9') ||
		    (token[i] >= 'a' && token[i] <= 'f')))
			return false;
	return i == 24;
}
