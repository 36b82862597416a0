/* SPDX-License-Identifier: MIT */
/*
 * vacation - vacation requests, settings and the client side of vacationd
 *
 * DESCRIPTION
 *	See vacation.h for the contract. The parameter record:
 *
 *	    tag 1  user         string (required)
 *	    tag 2  period       u32 big endian, seconds (required)
 *	    tag 3  subject      string
 *	    tag 4  from         string
 *	    tag 5  address      string (repeatable, at most 64)
 *	    tag 6  mime         1 octet, 0 or 1
 *	    tag 7  handle       string
 *	    tag 8  reason       string (required)
 *	    tag 9  source       1 octet (enum vacation_source: 1 Sieve,
 *	                        2 settings.db, 3 LDAP)
 *	    tag 10 start        i64 big endian (settings only)
 *	    tag 11 end          i64 big endian (settings only)
 *
 *	each as tag (1 octet), length (u32 big endian), value. Strings hold
 *	no NUL and at most VACATION_STRING_MAX octets; a record at most
 *	VACATION_PARAMS_MAX. A tag other than address may appear once.
 *
 *	The settings database is rewritten as a whole under the lock (it
 *	holds one small record per user on vacation), which keeps readers
 *	lock-free.
 *
 * SEE ALSO
 *	vacationd(8), postern(8) vacation, lmtpd(8)
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <db.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

#include "vacation.h"

enum {
	TAG_USER = 1, TAG_PERIOD, TAG_SUBJECT, TAG_FROM, TAG_ADDRESS,
	TAG_MIME, TAG_HANDLE, TAG_REASON, TAG_SOURCE, TAG_START, TAG_END,
	TAG_MAX = TAG_END,
};

#define VACATION_REPLY_LINE_MAX	2048

/* vacation_params_clear - see vacation.h */
void
vacation_params_clear(struct vacation_params *p)
{
	size_t i;

	free(p->user);
	free(p->subject);
	free(p->from);
	for (i = 0; i < p->naddresses; i++)
		free(p->addresses[i]);
	free(p->addresses);
	free(p->handle);
	free(p->reason);
	memset(p, 0, sizeof(*p));
}

/* vacation_params_add_address - see vacation.h */
void
vacation_params_add_address(struct vacation_params *p, const char *address)
{
	p->addresses = xreallocarray(p->addresses, p->naddresses + 2,
	    sizeof(*p->addresses));
	p->addresses[p->naddresses++] = xstrdup(address);
	p->addresses[p->naddresses] = NULL;
}

/* put_item - tag, length, value */
static void
put_item(struct str *out, unsigned tag, const void *v, size_t n)
{
	unsigned char h[5];

	h[0] = (unsigned char)tag;
	h[1] = (unsigned char)(n >> 24);
	h[2] = (unsigned char)(n >> 16);
	h[3] = (unsigned char)(n >> 8);
	h[4] = (unsigned char)n;
	str_append(out, h, sizeof(h));
	str_append(out, v, n);
}

static void
put_string(struct str *out, unsigned tag, const char *s)
{
	if (s != NULL)
		put_item(out, tag, s, strlen(s));
}

static void
put_u64(struct str *out, unsigned tag, uint64_t v, size_t width)
{
	unsigned char b[8];
	size_t i;

	for (i = 0; i < width; i++)
		b[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
	put_item(out, tag, b, width);
}

/* encode - the record of p (and, for a setting, start and end) */
static void
encode(const struct vacation_params *p, const int64_t *start,
    const int64_t *end, struct str *out)
{
	size_t i;

	put_string(out, TAG_USER, p->user);
	put_u64(out, TAG_PERIOD, p->period, 4);
	put_string(out, TAG_SUBJECT, p->subject);
	put_string(out, TAG_FROM, p->from);
	for (i = 0; i < p->naddresses; i++)
		put_string(out, TAG_ADDRESS, p->addresses[i]);
	put_u64(out, TAG_MIME, p->mime ? 1 : 0, 1);
	put_string(out, TAG_HANDLE, p->handle);
	put_string(out, TAG_REASON, p->reason);
	if (p->source != 0)	/* 0: not said (older records) */
		put_u64(out, TAG_SOURCE, p->source, 1);
	if (start != NULL)
		put_u64(out, TAG_START, (uint64_t)*start, 8);
	if (end != NULL)
		put_u64(out, TAG_END, (uint64_t)*end, 8);
}

/* vacation_params_encode - see vacation.h */
void
vacation_params_encode(const struct vacation_params *p, struct str *out)
{
	encode(p, NULL, NULL, out);
}

/* decode - strict decoding; start_r/end_r NULL: those tags are refused */
static int
decode(const void *data, size_t len, struct vacation_params *p,
    int64_t *start_r, int64_t *end_r, const char **error_r)
{
	const unsigned char *d = data;
	unsigned seen = 0;
	size_t off = 0, n, i;
	uint64_t v;
	unsigned tag;
	char *s;

	memset(p, 0, sizeof(*p));
	if (len > VACATION_PARAMS_MAX) {
		*error_r = "parameter record too long";
		return -1;
	}
	while (off < len) {
		if (len - off < 5) {
			*error_r = "truncated item header";
			goto fail;
		}
		tag = d[off];
		n = (size_t)d[off + 1] << 24 | (size_t)d[off + 2] << 16 |
		    (size_t)d[off + 3] << 8 | (size_t)d[off + 4];
		off += 5;
		if (n > len - off) {
			*error_r = "truncated item";
			goto fail;
		}
		if (tag == 0 || tag > TAG_MAX ||
		    ((tag == TAG_START || tag == TAG_END) && start_r == NULL)) {
			*error_r = "unknown item";
			goto fail;
		}
		if (tag != TAG_ADDRESS && (seen & (1u << tag)) != 0) {
			*error_r = "repeated item";
			goto fail;
		}
		seen |= 1u << tag;
		switch (tag) {
		case TAG_PERIOD: case TAG_MIME: case TAG_SOURCE:
		case TAG_START: case TAG_END:
			if (n != (tag == TAG_PERIOD ? 4u : tag <= TAG_SOURCE ?
			    1u : 8u)) {
				*error_r = "bad number size";
				goto fail;
			}
			for (v = 0, i = 0; i < n; i++)
				v = v << 8 | d[off + i];
			if (tag == TAG_PERIOD)
				p->period = (unsigned)v;
			else if (tag == TAG_MIME) {
				if (v > 1) {
					*error_r = "bad mime flag";
					goto fail;
				}
				p->mime = v == 1;
			} else if (tag == TAG_SOURCE) {
				if (v != VACATION_SOURCE_SIEVE &&
				    v != VACATION_SOURCE_SETTING &&
				    v != VACATION_SOURCE_LDAP) {
					*error_r = "bad source";
					goto fail;
				}
				p->source = (unsigned)v;
			} else if (tag == TAG_START)
				*start_r = (int64_t)v;
			else
				*end_r = (int64_t)v;
			break;
		default:
			if (n > VACATION_STRING_MAX ||
			    memchr(d + off, '\0', n) != NULL) {
				*error_r = "bad string";
				goto fail;
			}
			s = xmalloc(n + 1);
			memcpy(s, d + off, n);
			s[n] = '\0';
			switch (tag) {
			case TAG_USER: p->user = s; break;
			case TAG_SUBJECT: p->subject = s; break;
			case TAG_FROM: p->from = s; break;
			case TAG_HANDLE: p->handle = s; break;
			case TAG_REASON: p->reason = s; break;
			case TAG_ADDRESS:
				if (p->naddresses >= VACATION_ADDRESSES_MAX) {
					free(s);
					*error_r = "too many addresses";
					goto fail;
				}
				vacation_params_add_address(p, s);
				free(s);
				break;
			}
		}
		off += n;
	}
	if (p->user == NULL || p->reason == NULL ||
	    (seen & (1u << TAG_PERIOD)) == 0 ||
	    (start_r != NULL && (seen & (1u << TAG_START | 1u << TAG_END)) !=
	    (1u << TAG_START | 1u << TAG_END))) {
		*error_r = "required item missing";
		goto fail;
	}
	return 0;
fail:
	vacation_params_clear(p);
	return -1;
}

/* vacation_params_decode - see vacation.h */
int
vacation_params_decode(const void *data, size_t len,
    struct vacation_params *p, const char **error_r)
{
	return decode(data, len, p, NULL, NULL, error_r);
}

/* vacation_xtext_encode - see vacation.h */
void
vacation_xtext_encode(const void *p, size_t n, struct str *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] >= 33 && s[i] <= 126 && s[i] != '+' && s[i] != '=')
			str_append_c(out, (char)s[i]);
		else {
			str_append_c(out, '+');
			str_append_c(out, hex[s[i] >> 4]);
			str_append_c(out, hex[s[i] & 15]);
		}
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* vacation_xtext_decode - see vacation.h */
int
vacation_xtext_decode(const char *p, size_t n, struct str *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			if (n - i < 3 || (hi = hexval(p[i + 1])) < 0 ||
			    (lo = hexval(p[i + 2])) < 0)
				return -1;
			if (str_append_c(out, (char)(hi << 4 | lo)) < 0)
				return -1;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		} else if (str_append_c(out, (char)c) < 0) {
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ settings */

/* vacation_setting_clear - see vacation.h */
void
vacation_setting_clear(struct vacation_setting *s)
{
	vacation_params_clear(&s->params);
	free(s->origin);
	memset(s, 0, sizeof(*s));
}

/* vacation_setting_active - see vacation.h */
bool
vacation_setting_active(const struct vacation_setting *s, time_t now)
{
	return !s->off && (int64_t)now >= s->start && (int64_t)now < s->end;
}

/* the group settings.db gets when root writes it (vacation.h) */
gid_t vacation_setting_gid = (gid_t)-1;

/* db_open_read - the settings database, or NULL (*absent_r if missing) */
static DB *
db_open_read(const char *path, bool *absent_r, const char **error_r)
{
	DB *db;
	int ret;

	*absent_r = false;
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		*absent_r = true;
		return NULL;
	}
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		*error_r = db_strerror(ret);
		return NULL;
	}
	ret = db->open(db, NULL, path, NULL, DB_BTREE, DB_RDONLY, 0);
	if (ret != 0) {
		*error_r = db_strerror(ret);
		db->close(db, 0);
		return NULL;
	}
	return db;
}

/* vacation_setting_get - see vacation.h */
int
vacation_setting_get(const char *dir, const char *user,
    struct vacation_setting *s_r, const char **error_r)
{
	char *path = xasprintf("%s/settings.db", dir);
	DBT k, v;
	DB *db;
	bool absent;
	int ret;

	memset(s_r, 0, sizeof(*s_r));
	db = db_open_read(path, &absent, error_r);
	free(path);
	if (db == NULL)
		return absent ? 0 : -1;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)user;	/* BDB does not write keys */
	k.size = (u_int32_t)strlen(user);
	ret = db->get(db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND) {
		db->close(db, 0);
		return 0;
	}
	if (ret != 0) {
		*error_r = db_strerror(ret);
		db->close(db, 0);
		return -1;
	}
	ret = decode(v.data, v.size, &s_r->params, &s_r->start, &s_r->end,
	    error_r);
	db->close(db, 0);
	if (ret < 0)
		return -1;
	if (strcmp(s_r->params.user, user) != 0) {
		vacation_setting_clear(s_r);
		*error_r = "settings record names another user";
		return -1;
	}
	return 1;
}

/* vacation_setting_put - see vacation.h */
int
vacation_setting_put(const char *dir, const char *user,
    const struct vacation_setting *s, const char **error_r)
{
	char *path = xasprintf("%s/settings.db", dir);
	char *lock = xasprintf("%s/settings.lock", dir);
	struct str *tmp = str_new(0, 0), *rec = str_new(0, 0);
	DB *old = NULL, *db = NULL;
	DBC *cur = NULL;
	DBT k, v;
	bool absent;
	int lock_fd = -1, ret, rc = -1;

	/* lmtpd (the store owner) reads settings.db: like the user
	 * database, it is readable by the group of $mail_owner (the
	 * caller, postern vacation, sets owner and group as root) */
	if (mkdir_p(dir, 0750) < 0) {
		*error_r = "cannot create the vacation directory";
		goto out;
	}
	if ((lock_fd = lock_file(lock, true)) < 0) {
		*error_r = "cannot lock the vacation settings";
		goto out;
	}
	old = db_open_read(path, &absent, error_r);
	if (old == NULL && !absent)
		goto out;
	if (safe_file_tmpname(path, tmp) < 0) {
		*error_r = "cannot name a temporary file";
		goto out;
	}
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		*error_r = db_strerror(ret);
		db = NULL;
		goto out;
	}
	if ((ret = db->open(db, NULL, str_c(tmp), NULL, DB_BTREE,
	    DB_CREATE | DB_EXCL, 0600)) != 0) {
		*error_r = db_strerror(ret);
		goto out;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	if (old != NULL) {
		if ((ret = old->cursor(old, NULL, &cur, 0)) != 0) {
			*error_r = db_strerror(ret);
			goto out;
		}
		while ((ret = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
			if (k.size == strlen(user) &&
			    memcmp(k.data, user, k.size) == 0)
				continue;
			if ((ret = db->put(db, NULL, &k, &v, 0)) != 0)
				break;
		}
		if (ret != DB_NOTFOUND) {
			*error_r = db_strerror(ret);
			goto out;
		}
	}
	if (s != NULL) {
		struct vacation_params p = s->params;

		p.user = (char *)(uintptr_t)user;	/* encode only reads it */
		encode(&p, &s->start, &s->end, rec);
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = (void *)(uintptr_t)user;
		k.size = (u_int32_t)strlen(user);
		v.data = str_data(rec);
		v.size = (u_int32_t)str_len(rec);
		if ((ret = db->put(db, NULL, &k, &v, 0)) != 0) {
			*error_r = db_strerror(ret);
			goto out;
		}
	}
	if (cur != NULL) {
		cur->close(cur);
		cur = NULL;
	}
	ret = db->close(db, 0);
	db = NULL;
	if (ret != 0) {
		*error_r = db_strerror(ret);
		goto out;
	}
	(void)chmod(str_c(tmp), 0640);
	if (geteuid() == 0 && vacation_setting_gid != (gid_t)-1 &&
	    chown(str_c(tmp), (uid_t)-1, vacation_setting_gid) < 0) {
		*error_r = "cannot set the group of the settings database";
		goto out;
	}
	if (safe_file_install(str_c(tmp), path) < 0) {
		*error_r = "cannot rename the new settings database into place";
		goto out;
	}
	str_clear(tmp);
	rc = 0;
out:
	if (cur != NULL)
		cur->close(cur);
	if (db != NULL)
		db->close(db, 0);
	if (old != NULL)
		old->close(old, 0);
	if (str_len(tmp) > 0)
		(void)unlink(str_c(tmp));
	if (lock_fd >= 0)
		(void)close(lock_fd);
	free(path);
	free(lock);
	str_free(&tmp);
	str_free(&rec);
	return rc;
}

/* vacation_now - see vacation.h */
time_t
vacation_now(void)
{
	const char *hooks = getenv("POSTERN_TEST_HOOKS");
	const char *v = getenv("POSTERN_TEST_NOW");
	struct str *text;
	unsigned long n;
	time_t now = time(NULL);
	size_t len;

	if (hooks == NULL || strcmp(hooks, "1") != 0 || v == NULL || *v == '\0')
		return now;
	if (*v != '/')
		return str_to_ulong(v, strlen(v), (unsigned long)INT64_MAX, &n) ?
		    (time_t)n : now;
	text = str_new(0, 0);
	if (read_file(v, text, 64) == 0) {
		str_chomp(text);
		len = str_len(text);
		if (str_to_ulong(str_c(text), len, (unsigned long)INT64_MAX, &n))
			now = (time_t)n;
	}
	str_free(&text);
	return now;
}

/* ------------------------------------------------------------ client */

/* reply - one (multi-line) reply; its code, or -1; the last line's text in text */
static int
reply(struct stream *s, struct str *line, struct str *text, bool *ext_r)
{
	const char *p;
	size_t n;
	int code;

	for (;;) {
		if (stream_read_line(s, line, VACATION_REPLY_LINE_MAX) !=
		    STREAM_OK)
			return -1;
		str_chomp(line);
		p = str_c(line);
		n = str_len(line);
		if (n < 3 || p[0] < '1' || p[0] > '5' || p[1] < '0' ||
		    p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (n > 3 && p[3] != ' ' && p[3] != '-'))
			return -1;
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (ext_r != NULL && n >= 4 + strlen(VACATION_EXT) &&
		    strncasecmp(p + 4, VACATION_EXT, strlen(VACATION_EXT)) == 0)
			*ext_r = true;
		if (n <= 3 || p[3] == ' ') {
			str_set(text, n > 4 ? p + 4 : "", n > 4 ? n - 4 : 0);
			return code;
		}
	}
}

/* write_dotted - msg with SMTP transparency and the final dot */
static void
write_dotted(struct stream *s, const char *msg, size_t size)
{
	size_t i, start = 0;

	for (i = 0; i < size; i++) {
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n')) {
			(void)stream_write(s, msg + start, i - start);
			(void)stream_write(s, ".", 1);
			start = i;
		}
	}
	(void)stream_write(s, msg + start, size - start);
	if (size > 0 && msg[size - 1] != '\n')
		(void)stream_write(s, "\r\n", 2);
	(void)stream_write(s, ".\r\n", 3);
}

/* vacation_client_send - see vacation.h */
int
vacation_client_send(const char *path, unsigned timeout, const char *helo,
    const char *sender, const char *rcpt, const struct vacation_params *p,
    const char *msg, size_t size, struct str *result)
{
	struct sockaddr_un sun;
	struct stream *s = NULL;
	struct str *line = str_new(0, 0), *text = str_new(0, 0);
	struct str *rec = str_new(0, 0), *x = str_new(0, 0);
	bool ext = false;
	int fd, code, rc = -1;

	str_clear(result);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (pst_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		str_append_cstr(result, "socket path too long");
		goto out;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		str_printf(result, "socket: %s", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		str_printf(result, "connect to %s: %s", path, strerror(errno));
		(void)close(fd);
		goto out;
	}
	s = stream_new(fd, timeout, 0);
	if ((code = reply(s, line, text, NULL)) != 220)
		goto proto;
	(void)stream_printf(s, "LHLO %s\r\n", helo);
	if (stream_flush(s) < 0 || (code = reply(s, line, text, &ext)) != 250)
		goto proto;
	if (!ext) {
		str_append_cstr(result, "vacationd does not offer "
		    VACATION_EXT);
		goto out;
	}
	vacation_params_encode(p, rec);
	vacation_xtext_encode(str_c(rec), str_len(rec), x);
	(void)stream_printf(s, "MAIL FROM:<%s>\r\n", sender);
	if (stream_flush(s) < 0 || (code = reply(s, line, text, NULL)) != 250)
		goto proto;
	(void)stream_printf(s, "RCPT TO:<%s> " VACATION_EXT "=", rcpt);
	(void)stream_write(s, str_c(x), str_len(x));
	(void)stream_puts(s, "\r\n");
	if (stream_flush(s) < 0 || (code = reply(s, line, text, NULL)) != 250)
		goto proto;
	(void)stream_puts(s, "DATA\r\n");
	if (stream_flush(s) < 0 || (code = reply(s, line, text, NULL)) != 354)
		goto proto;
	write_dotted(s, msg, size);
	if (stream_flush(s) < 0 || (code = reply(s, line, text, NULL)) < 0)
		goto proto;
	str_append_str(result, text);
	if (code / 100 == 2)
		rc = 0;
	(void)stream_puts(s, "QUIT\r\n");
	(void)stream_flush(s);
	goto out;
proto:
	if (code < 0)
		str_printf(result, "lost connection with vacationd (%s)",
		    stream_result_name(stream_error(s)));
	else
		str_printf(result, "vacationd said %d %s", code, str_c(text));
out:
	stream_free(&s);
	str_free(&line);
	str_free(&text);
	str_free(&rec);
	str_free(&x);
	return rc;
}
