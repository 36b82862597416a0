/* SPDX-License-Identifier: MIT */
/*
 * imapd_search - SEARCH (ESEARCH, SEARCHRES, CONDSTORE MODSEQ), SORT
 * and THREAD (the messages; the algorithms are in imapd_thread.c)
 *
 * DESCRIPTION
 *	The search program is parsed into a tree and evaluated per
 *	message. Keys on flags, sizes, dates, UIDs and modseqs use the
 *	index only; header keys read the message's header and compare the
 *	RFC 2047-decoded value; BODY and TEXT decode each text part
 *	(base64/quoted-printable, then its charset to UTF-8). Comparisons
 *	are substring matches after Unicode simple case folding of both
 *	sides (lib/utf8.h), so capital and small umlauts, Greek or
 *	Cyrillic letters match whatever the process locale; the search string is folded once at parse
 *	time, the message text per comparison.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "header.h"
#include "mime.h"
#include "mime_decode.h"
#include "rfc2047.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"
#include "utf8.h"

#include "imapd.h"

#define SEARCH_DEPTH_MAX 64

enum sk_type {
	SK_ALL, SK_SEQ, SK_UID, SK_FLAG, SK_UNFLAG, SK_KEYWORD, SK_UNKEYWORD,
	SK_NOT, SK_OR, SK_AND, SK_LARGER, SK_SMALLER, SK_BEFORE, SK_ON,
	SK_SINCE, SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE, SK_HEADER, SK_BODY,
	SK_TEXT, SK_MODSEQ, SK_NONE, SK_OLDER, SK_YOUNGER,
};

struct skey {
	enum sk_type type;
	uint32_t flag;
	struct imap_seqset set;
	char *field, *value;
	uint64_t num;
	long day;
	struct skey *kids;	/* NOT: 1, OR: 2, AND: n */
	struct skey *next;
};

struct search_ctx {
	struct imapd_session *sess;
	uint32_t seq;
	struct store_msg m;
	struct str *data;
	struct str *fold;	/* scratch: the folded text being searched */
	bool loaded, failed;
	struct mime_message *mime;
	uint32_t count, maxuid;
	bool modseq_used;
	uint64_t max_modseq;
};

static void
skey_free(struct skey *k)
{
	while (k != NULL) {
		struct skey *next = k->next;

		skey_free(k->kids);
		imap_seqset_free(&k->set);
		free(k->field);
		free(k->value);
		free(k);
		k = next;
	}
}

/* ---------------------------------------------------------------- dates */

static int
month_index(const char *p)
{
	static const char *const m[] = { "jan", "feb", "mar", "apr", "may",
	    "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (strncasecmp(p, m[i], 3) == 0)
			return i;
	return -1;
}

/* days_from_civil - days since 1970-01-01 (Howard Hinnant's algorithm) */
static long
days_from_civil(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

/* parse_date_parts - "d-Mon-yyyy" at p/n into day number; *used_r bytes */
static bool
parse_date_parts(const char *p, size_t n, long *day_r, size_t *used_r)
{
	size_t i = 0;
	unsigned d = 0, y = 0, k;
	int mon;

	for (k = 0; i < n && k < 2 && p[i] >= '0' && p[i] <= '9'; k++, i++)
		d = d * 10 + (unsigned)(p[i] - '0');
	if (k == 0 || d < 1 || d > 31 || i + 5 > n || p[i] != '-')
		return false;
	if ((mon = month_index(p + i + 1)) < 0 || p[i + 4] != '-')
		return false;
	i += 5;
	for (k = 0; i < n && k < 4 && p[i] >= '0' && p[i] <= '9'; k++, i++)
		y = y * 10 + (unsigned)(p[i] - '0');
	if (k != 4)
		return false;
	*day_r = days_from_civil((long)y, (unsigned)mon + 1, d);
	*used_r = i;
	return true;
}

/* imapd_parse_date - see imapd.h */
bool
imapd_parse_date(const char *p, size_t n, time_t *t_r)
{
	long day;
	size_t used;

	if (!parse_date_parts(p, n, &day, &used) || used != n)
		return false;
	*t_r = (time_t)day * 86400;
	return true;
}

/* imapd_parse_datetime - "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d") */
bool
imapd_parse_datetime(const char *p, size_t n, time_t *t_r, int *tz_r)
{
	long day;
	size_t used, i;
	unsigned hh, mm, ss, zh, zm;
	int sign;

	if (n > 0 && p[0] == ' ') {
		p++;
		n--;
	}
	if (!parse_date_parts(p, n, &day, &used))
		return false;
	i = used;
	if (n - i != 15 || p[i] != ' ' || p[i + 3] != ':' || p[i + 6] != ':' ||
	    p[i + 9] != ' ' || (p[i + 10] != '+' && p[i + 10] != '-'))
		return false;
	for (size_t j = i + 1; j < n; j++)
		if (j != i + 3 && j != i + 6 && j != i + 9 && j != i + 10 &&
		    !isdigit((unsigned char)p[j]))
			return false;
	hh = (unsigned)((p[i + 1] - '0') * 10 + (p[i + 2] - '0'));
	mm = (unsigned)((p[i + 4] - '0') * 10 + (p[i + 5] - '0'));
	ss = (unsigned)((p[i + 7] - '0') * 10 + (p[i + 8] - '0'));
	sign = p[i + 10] == '-' ? -1 : 1;
	zh = (unsigned)((p[i + 11] - '0') * 10 + (p[i + 12] - '0'));
	zm = (unsigned)((p[i + 13] - '0') * 10 + (p[i + 14] - '0'));
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return false;
	*tz_r = sign * (int)(zh * 60 + zm);
	*t_r = (time_t)day * 86400 + hh * 3600 + mm * 60 + ss - *tz_r * 60;
	return true;
}

/* rfc5322_day - the day number of a Date: header in its own zone */
static bool
rfc5322_date(const char *p, size_t n, time_t *t_r, long *day_r)
{
	struct str *t = str_new(0, 0);
	const char *s, *e;
	long day;
	unsigned d = 0, y = 0, hh = 0, mm = 0, ss = 0;
	int mon, tz = 0;
	bool ok = false;

	header_unfold(p, n, t);
	s = str_c(t);
	e = s + str_len(t);
	/* optional "Day," */
	if (e - s > 4 && isalpha((unsigned char)s[0]) && s[3] == ',')
		s += 4;
	while (s < e && *s == ' ')
		s++;
	while (s < e && isdigit((unsigned char)*s))
		d = d * 10 + (unsigned)(*s++ - '0');
	while (s < e && *s == ' ')
		s++;
	if (e - s < 3 || (mon = month_index(s)) < 0)
		goto out;
	s += 3;
	while (s < e && *s == ' ')
		s++;
	while (s < e && isdigit((unsigned char)*s))
		y = y * 10 + (unsigned)(*s++ - '0');
	if (y < 50)
		y += 2000;
	else if (y < 1000)
		y += 1900;
	while (s < e && *s == ' ')
		s++;
	if (e - s >= 5 && s[2] == ':') {
		hh = (unsigned)atoi(s);
		mm = (unsigned)atoi(s + 3);
		s += 5;
		if (s < e && *s == ':') {
			ss = (unsigned)atoi(s + 1);
			s += 3;
		}
		while (s < e && *s == ' ')
			s++;
		if (e - s >= 5 && (*s == '+' || *s == '-')) {
			int z = atoi(s + 1);

			tz = (*s == '-' ? -1 : 1) * ((z / 100) * 60 + z % 100);
		}
	}
	if (d < 1 || d > 31)
		goto out;
	day = days_from_civil((long)y, (unsigned)mon + 1, d);
	*day_r = day;
	*t_r = (time_t)day * 86400 + hh * 3600 + mm * 60 + ss - tz * 60;
	ok = true;
out:
	str_free(&t);
	return ok;
}

/* ---------------------------------------------------------------- parsing */

static struct skey *parse_keys(struct imapd_session *sess, bool one,
    unsigned depth);

static struct skey *
skey_new(enum sk_type type)
{
	struct skey *k = xcalloc(1, sizeof(*k));

	k->type = type;
	return k;
}

static bool
parse_sp_astring(struct imap_parser *ip, struct str *out)
{
	return imap_parse_sp(ip) && imap_parse_astring(ip, out);
}

/* folded_dup - the search string case-folded once, for ci_find() */
static char *
folded_dup(const struct str *v)
{
	struct str *f = str_new(str_len(v) + 1, 0);

	(void)utf8_casefold(str_c(v), strlen(str_c(v)), f);
	return str_steal(&f);
}

/* parse_key - one search-key */
static struct skey *
parse_key(struct imapd_session *sess, unsigned depth)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0), *v = str_new(0, 0);
	struct skey *k = NULL;
	const char *n;
	static const struct {
		const char *name;
		enum sk_type type;
		uint32_t flag;
	} flagkeys[] = {
		{ "ANSWERED", SK_FLAG, STORE_FLAG_ANSWERED },
		{ "DELETED", SK_FLAG, STORE_FLAG_DELETED },
		{ "DRAFT", SK_FLAG, STORE_FLAG_DRAFT },
		{ "FLAGGED", SK_FLAG, STORE_FLAG_FLAGGED },
		{ "SEEN", SK_FLAG, STORE_FLAG_SEEN },
		{ "OLD", SK_ALL, 0 },
		{ "UNANSWERED", SK_UNFLAG, STORE_FLAG_ANSWERED },
		{ "UNDELETED", SK_UNFLAG, STORE_FLAG_DELETED },
		{ "UNDRAFT", SK_UNFLAG, STORE_FLAG_DRAFT },
		{ "UNFLAGGED", SK_UNFLAG, STORE_FLAG_FLAGGED },
		{ "UNSEEN", SK_UNFLAG, STORE_FLAG_SEEN },
		{ "NEW", SK_NONE, 0 },
		{ "RECENT", SK_NONE, 0 },
		{ "ALL", SK_ALL, 0 },
	};
	size_t i;

	if (depth > SEARCH_DEPTH_MAX) {
		ip->error = "Search program nested too deeply";
		goto out;
	}
	if (imap_parse_peek(ip, '(')) {
		ip->pos++;
		k = skey_new(SK_AND);
		if ((k->kids = parse_keys(sess, false, depth + 1)) == NULL ||
		    !imap_parse_char(ip, ')')) {
			skey_free(k);
			k = NULL;
		}
		goto out;
	}
	if (imap_parse_peek(ip, '$') || imap_parse_peek(ip, '*') ||
	    (ip->pos < ip->n && ip->p[ip->pos] >= '0' && ip->p[ip->pos] <= '9')) {
		k = skey_new(SK_SEQ);
		if (!imap_parse_seqset(ip, &k->set)) {
			skey_free(k);
			k = NULL;
		}
		goto out;
	}
	if (!imap_parse_atom(ip, a, false))
		goto out;
	n = str_c(a);
	for (i = 0; i < N_ELEMENTS(flagkeys); i++)
		if (strcasecmp(n, flagkeys[i].name) == 0) {
			k = skey_new(flagkeys[i].type);
			k->flag = flagkeys[i].flag;
			goto out;
		}
	if (strcasecmp(n, "NOT") == 0) {
		k = skey_new(SK_NOT);
		if (!imap_parse_sp(ip) || (k->kids = parse_key(sess, depth + 1)) ==
		    NULL) {
			skey_free(k);
			k = NULL;
		}
	} else if (strcasecmp(n, "OR") == 0) {
		k = skey_new(SK_OR);
		if (!imap_parse_sp(ip) || (k->kids = parse_key(sess, depth + 1)) ==
		    NULL || !imap_parse_sp(ip) ||
		    (k->kids->next = parse_key(sess, depth + 1)) == NULL) {
			skey_free(k);
			k = NULL;
		}
	} else if (strcasecmp(n, "UID") == 0) {
		k = skey_new(SK_UID);
		if (!imap_parse_sp(ip) || !imap_parse_seqset(ip, &k->set)) {
			skey_free(k);
			k = NULL;
		}
	} else if (strcasecmp(n, "KEYWORD") == 0 || strcasecmp(n, "UNKEYWORD") == 0) {
		k = skey_new(strcasecmp(n, "KEYWORD") == 0 ? SK_KEYWORD :
		    SK_UNKEYWORD);
		if (!imap_parse_sp(ip) || !imap_parse_flag(ip, v)) {
			skey_free(k);
			k = NULL;
		} else
			k->value = xstrdup(str_c(v));
	} else if (strcasecmp(n, "LARGER") == 0 || strcasecmp(n, "SMALLER") == 0 ||
	    strcasecmp(n, "OLDER") == 0 || strcasecmp(n, "YOUNGER") == 0) {
		uint32_t x;

		k = skey_new(strcasecmp(n, "LARGER") == 0 ? SK_LARGER :
		    strcasecmp(n, "SMALLER") == 0 ? SK_SMALLER :
		    strcasecmp(n, "OLDER") == 0 ? SK_OLDER : SK_YOUNGER);
		if (!imap_parse_sp(ip) || !imap_parse_number(ip, &x, false)) {
			skey_free(k);
			k = NULL;
		} else
			k->num = x;
	} else if (strcasecmp(n, "BEFORE") == 0 || strcasecmp(n, "ON") == 0 ||
	    strcasecmp(n, "SINCE") == 0 || strcasecmp(n, "SENTBEFORE") == 0 ||
	    strcasecmp(n, "SENTON") == 0 || strcasecmp(n, "SENTSINCE") == 0) {
		time_t t;

		k = skey_new(strcasecmp(n, "BEFORE") == 0 ? SK_BEFORE :
		    strcasecmp(n, "ON") == 0 ? SK_ON :
		    strcasecmp(n, "SINCE") == 0 ? SK_SINCE :
		    strcasecmp(n, "SENTBEFORE") == 0 ? SK_SENTBEFORE :
		    strcasecmp(n, "SENTON") == 0 ? SK_SENTON : SK_SENTSINCE);
		if (!parse_sp_astring(ip, v) ||
		    !imapd_parse_date(str_c(v), str_len(v), &t)) {
			ip->error = "Invalid search date";
			skey_free(k);
			k = NULL;
		} else
			k->day = (long)(t / 86400);
	} else if (strcasecmp(n, "FROM") == 0 || strcasecmp(n, "TO") == 0 ||
	    strcasecmp(n, "CC") == 0 || strcasecmp(n, "BCC") == 0 ||
	    strcasecmp(n, "SUBJECT") == 0) {
		k = skey_new(SK_HEADER);
		k->field = xstrdup(n);
		if (!parse_sp_astring(ip, v)) {
			skey_free(k);
			k = NULL;
		} else
			k->value = folded_dup(v);
	} else if (strcasecmp(n, "HEADER") == 0) {
		k = skey_new(SK_HEADER);
		if (!parse_sp_astring(ip, a)) {
			skey_free(k);
			k = NULL;
			goto out;
		}
		k->field = xstrdup(str_c(a));
		if (!parse_sp_astring(ip, v)) {
			skey_free(k);
			k = NULL;
		} else
			k->value = folded_dup(v);
	} else if (strcasecmp(n, "BODY") == 0 || strcasecmp(n, "TEXT") == 0) {
		k = skey_new(strcasecmp(n, "BODY") == 0 ? SK_BODY : SK_TEXT);
		if (!parse_sp_astring(ip, v)) {
			skey_free(k);
			k = NULL;
		} else
			k->value = folded_dup(v);
	} else if (strcasecmp(n, "MODSEQ") == 0) {
		k = skey_new(SK_MODSEQ);
		if (!imap_parse_sp(ip))
			goto fail;
		if (imap_parse_peek(ip, '"')) {
			/* entry-name entry-type-req: accepted, not used */
			if (!imap_parse_string(ip, v) || !imap_parse_sp(ip) ||
			    !imap_parse_atom(ip, v, false) || !imap_parse_sp(ip))
				goto fail;
		}
		if (!imap_parse_number64(ip, &k->num))
			goto fail;
		sess->condstore = true;
	} else {
		ip->error = "Unknown search key";
	}
	goto out;
fail:
	skey_free(k);
	k = NULL;
out:
	str_free(&a);
	str_free(&v);
	return k;
}

/* parse_keys - search-key *(SP search-key), up to ')' or the end */
static struct skey *
parse_keys(struct imapd_session *sess, bool one, unsigned depth)
{
	struct imap_parser *ip = &sess->ip;
	struct skey *head = NULL, **tail = &head, *k;

	for (;;) {
		if ((k = parse_key(sess, depth)) == NULL) {
			skey_free(head);
			return NULL;
		}
		*tail = k;
		tail = &k->next;
		if (one || !imap_parse_peek(ip, ' '))
			break;
		ip->pos++;
	}
	return head;
}

/* ---------------------------------------------------------------- matching */

/* ci_find - Unicode case-insensitive substring search (needle is folded) */
static bool
ci_find(struct search_ctx *x, const char *hay, size_t hn, const char *needle)
{
	return utf8_casefold_find(hay, hn, needle, strlen(needle), x->fold);
}

static bool
ctx_load(struct search_ctx *x)
{
	const char *err;

	if (!x->loaded) {
		x->loaded = true;
		str_clear(x->data);
		if (store_msg_read(x->sess->box, x->seq, x->data, &err) < 0)
			x->failed = true;
	}
	return !x->failed;
}

static struct mime_message *
ctx_mime(struct search_ctx *x)
{
	if (x->mime == NULL)
		x->mime = mime_parse(str_c(x->data), str_len(x->data), NULL);
	return x->mime;
}

/* header_match - any field named name whose decoded value contains value */
static bool
header_match(struct search_ctx *x, const char *name, const char *value)
{
	struct header_iter it;
	struct header_field f;
	struct str *d;
	size_t hs;
	bool found = false;

	if (!ctx_load(x))
		return false;
	hs = header_block_size(str_c(x->data), str_len(x->data));
	d = str_new(256, 0);
	header_iter_init(&it, str_c(x->data), hs);
	while (!found && header_iter_next(&it, &f)) {
		if (!header_name_is(&f, name))
			continue;
		if (*value == '\0') {
			found = true;
			break;
		}
		str_clear(d);
		rfc2047_decode(f.value, f.value_len, d);
		found = ci_find(x, str_c(d), str_len(d), value);
	}
	str_free(&d);
	return found;
}

/* body_match_part - text leaves, decoded and converted to UTF-8 */
static bool
body_match_part(struct search_ctx *x, const struct mime_part *p,
    const char *value, struct str *buf, struct str *u8)
{
	const struct mime_part *c;
	const char *cs;

	if (p->children != NULL) {
		for (c = p->children; c != NULL; c = c->next)
			if (body_match_part(x, c, value, buf, u8))
				return true;
		return false;
	}
	str_clear(buf);
	str_clear(u8);
	(void)mime_decode_part(ctx_mime(x), p, buf);
	cs = mime_part_param(p, "charset", false);
	if ((p->flags & MIME_PART_TEXT) != 0 && cs != NULL &&
	    strcasecmp(cs, "utf-8") != 0 && strcasecmp(cs, "us-ascii") != 0) {
		rfc2047_charset_to_utf8(cs, strlen(cs), str_c(buf), str_len(buf), u8);
		return ci_find(x, str_c(u8), str_len(u8), value);
	}
	return ci_find(x, str_c(buf), str_len(buf), value);
}

static bool
body_match(struct search_ctx *x, const char *value, bool text)
{
	struct str *buf, *u8;
	bool found;

	if (!ctx_load(x))
		return false;
	if (text) {
		size_t hs = header_block_size(str_c(x->data), str_len(x->data));
		struct str *d = str_new(hs, 0);

		rfc2047_decode(str_c(x->data), hs, d);
		found = ci_find(x, str_c(d), str_len(d), value);
		str_free(&d);
		if (found)
			return true;
	}
	buf = str_new(0, 0);
	u8 = str_new(0, 0);
	found = body_match_part(x, mime_message_root(ctx_mime(x)), value, buf, u8);
	str_free(&buf);
	str_free(&u8);
	return found;
}

static long
msg_day(const struct store_msg *m)
{
	time_t t = m->internaldate + (time_t)m->tz_minutes * 60;

	return (long)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
}

static bool
sent_day(struct search_ctx *x, long *day_r)
{
	struct header_field f;
	time_t t;

	if (!ctx_load(x))
		return false;
	if (header_find(str_c(x->data), header_block_size(str_c(x->data),
	    str_len(x->data)), "Date", &f) && rfc5322_date(f.value, f.value_len,
	    &t, day_r))
		return true;
	*day_r = msg_day(&x->m);
	return true;
}

static bool
skey_match(struct search_ctx *x, const struct skey *k)
{
	long day;
	unsigned idx;
	const char *err;
	const struct skey *c;

	switch (k->type) {
	case SK_ALL:
		return true;
	case SK_NONE:
		return false;
	case SK_SEQ:
		if (k->set.saved)
			return imap_seqset_contains(&x->sess->searchres, x->m.uid,
			    x->maxuid);
		return imap_seqset_contains(&k->set, x->seq, x->count);
	case SK_UID:
		if (k->set.saved)
			return imap_seqset_contains(&x->sess->searchres, x->m.uid,
			    x->maxuid);
		return imap_seqset_contains(&k->set, x->m.uid, x->maxuid);
	case SK_FLAG:
		return (x->m.flags & k->flag) != 0;
	case SK_UNFLAG:
		return (x->m.flags & k->flag) == 0;
	case SK_KEYWORD:
	case SK_UNKEYWORD:
		if (store_keyword_lookup(x->sess->box, k->value, false, &idx,
		    &err) < 0)
			return k->type == SK_UNKEYWORD;
		return ((x->m.keywords & ((uint64_t)1 << idx)) != 0) ==
		    (k->type == SK_KEYWORD);
	case SK_NOT:
		return !skey_match(x, k->kids);
	case SK_OR:
		return skey_match(x, k->kids) || skey_match(x, k->kids->next);
	case SK_AND:
		for (c = k->kids; c != NULL; c = c->next)
			if (!skey_match(x, c))
				return false;
		return true;
	case SK_LARGER:
		return x->m.size > k->num;
	case SK_SMALLER:
		return x->m.size < k->num;
	case SK_OLDER:
		return time(NULL) - x->m.internaldate >= (time_t)k->num;
	case SK_YOUNGER:
		return time(NULL) - x->m.internaldate <= (time_t)k->num;
	case SK_BEFORE:
		return msg_day(&x->m) < k->day;
	case SK_ON:
		return msg_day(&x->m) == k->day;
	case SK_SINCE:
		return msg_day(&x->m) >= k->day;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (!sent_day(x, &day))
			return false;
		return k->type == SK_SENTBEFORE ? day < k->day :
		    k->type == SK_SENTON ? day == k->day : day >= k->day;
	case SK_HEADER:
		return header_match(x, k->field, k->value);
	case SK_BODY:
		return body_match(x, k->value, false);
	case SK_TEXT:
		return body_match(x, k->value, true);
	case SK_MODSEQ:
		x->modseq_used = true;
		if (x->m.modseq >= k->num) {
			return true;
		}
		return false;
	}
	return false;
}

/* search_run - the matching seqs (ascending) */
static void
search_run(struct imapd_session *sess, const struct skey *prog,
    struct store_uids *seqs_r, uint64_t *max_modseq_r, bool *modseq_r)
{
	struct search_ctx x;
	struct skey and;
	uint32_t s;

	memset(&x, 0, sizeof(x));
	memset(&and, 0, sizeof(and));
	and.type = SK_AND;
	and.kids = (struct skey *)(uintptr_t)prog;
	x.sess = sess;
	x.data = str_new(0, 0);
	x.fold = str_new(0, 0);
	x.count = store_mailbox_count(sess->box);
	x.maxuid = x.count > 0 ? store_msg_uid(sess->box, x.count) : 0;
	for (s = 1; s <= x.count; s++) {
		x.seq = s;
		x.loaded = x.failed = false;
		mime_message_free(&x.mime);
		store_msg_get(sess->box, s, &x.m);
		if (skey_match(&x, &and)) {
			store_uids_add(seqs_r, s);
			if (x.m.modseq > x.max_modseq)
				x.max_modseq = x.m.modseq;
		}
	}
	mime_message_free(&x.mime);
	str_free(&x.data);
	str_free(&x.fold);
	*max_modseq_r = x.max_modseq;
	*modseq_r = x.modseq_used;
}

/* parse_charset - optional "CHARSET x" before the keys */
static bool
parse_charset(struct imapd_session *sess, bool required)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	size_t save = ip->pos;
	bool ok = true;

	if (required) {
		if (!imap_parse_astring(ip, a) || !imap_parse_sp(ip))
			ok = false;
	} else if (imap_parse_atom(ip, a, false) &&
	    strcasecmp(str_c(a), "CHARSET") == 0) {
		if (!imap_parse_sp(ip) || !imap_parse_astring(ip, a) ||
		    !imap_parse_sp(ip))
			ok = false;
	} else {
		ip->pos = save;
		ip->error = NULL;
		str_clear(a);
	}
	if (ok && str_len(a) > 0 && strcasecmp(str_c(a), "UTF-8") != 0 &&
	    strcasecmp(str_c(a), "US-ASCII") != 0) {
		imapd_reply(sess, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported "
		    "charset");
		str_free(&a);
		return false;
	}
	if (!ok) {
		sess->errors++;
		imapd_reply(sess, "BAD Invalid CHARSET");
	}
	str_free(&a);
	return ok;
}

#define RET_MIN		0x01
#define RET_MAX		0x02
#define RET_ALL		0x04
#define RET_COUNT	0x08
#define RET_SAVE	0x10

/*
 * search_parse - [RETURN (...)] [CHARSET x] search-keys up to the end;
 * 1 parsed, 0 syntax error (BAD with ip->error), -1 answered already
 */
static int
search_parse(struct imapd_session *sess, unsigned *ret_r, bool *esearch_r,
    struct skey **prog_r)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	unsigned ret = 0;
	int ok = 0;

	*esearch_r = false;
	*prog_r = NULL;
	if (!imap_parse_sp(ip))
		goto out;
	if (ip->n - ip->pos > 7 && strncasecmp(ip->p + ip->pos, "RETURN ", 7) == 0) {
		ip->pos += 7;
		*esearch_r = true;
		if (!imap_parse_char(ip, '('))
			goto out;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, a, false))
				goto out;
			if (strcasecmp(str_c(a), "MIN") == 0)
				ret |= RET_MIN;
			else if (strcasecmp(str_c(a), "MAX") == 0)
				ret |= RET_MAX;
			else if (strcasecmp(str_c(a), "ALL") == 0)
				ret |= RET_ALL;
			else if (strcasecmp(str_c(a), "COUNT") == 0)
				ret |= RET_COUNT;
			else if (strcasecmp(str_c(a), "SAVE") == 0)
				ret |= RET_SAVE;
			else
				goto out;
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
		if (!imap_parse_sp(ip))
			goto out;
		if (ret == 0)
			ret = RET_ALL;
	}
	if (!parse_charset(sess, false)) {
		ok = -1;
		goto out;
	}
	if ((*prog_r = parse_keys(sess, false, 0)) == NULL || !imap_parse_end(ip))
		goto out;
	ok = 1;
out:
	*ret_r = ret;
	str_free(&a);
	return ok;
}

/* imapd_cmd_search - SEARCH / UID SEARCH */
void
imapd_cmd_search(struct imapd_session *sess)
{
	struct imap_parser *ip = &sess->ip;
	struct store_uids res = { 0 };
	struct skey *prog = NULL;
	unsigned ret = 0;
	bool esearch = false, modseq_used;
	uint64_t maxmod;
	size_t i;

	switch (search_parse(sess, &ret, &esearch, &prog)) {
	case 0:
		goto bad;
	case -1:
		goto out;
	}
	/* IMAP4rev2 has no untagged SEARCH: RETURN () is RETURN (ALL) */
	if (sess->rev2 && !esearch) {
		esearch = true;
		ret = RET_ALL;
	}
	search_run(sess, prog, &res, &maxmod, &modseq_used);
	if (ret & RET_SAVE) {
		imap_seqset_free(&sess->searchres);
		if (ret == RET_SAVE || (ret & (RET_ALL | RET_COUNT)) != 0) {
			for (i = 0; i < res.count; i++) {
				uint32_t u = store_msg_uid(sess->box, res.uids[i]);

				imap_seqset_add(&sess->searchres, u, u);
			}
		} else if (res.count > 0) {
			/* only MIN and/or MAX are saved (RFC 5182 2.1) */
			if (ret & RET_MIN) {
				uint32_t u = store_msg_uid(sess->box, res.uids[0]);

				imap_seqset_add(&sess->searchres, u, u);
			}
			if (ret & RET_MAX) {
				uint32_t u = store_msg_uid(sess->box,
				    res.uids[res.count - 1]);

				imap_seqset_add(&sess->searchres, u, u);
			}
		}
	}
	if (sess->uid)
		for (i = 0; i < res.count; i++)
			res.uids[i] = store_msg_uid(sess->box, res.uids[i]);
	if (!esearch) {
		str_append_cstr(sess->out, "* SEARCH");
		for (i = 0; i < res.count; i++)
			str_printf(sess->out, " %u", res.uids[i]);
		if (modseq_used && res.count > 0)
			str_printf(sess->out, " (MODSEQ %llu)",
			    (unsigned long long)maxmod);
		str_append_cstr(sess->out, "\r\n");
	} else if (ret != RET_SAVE) {
		str_append_cstr(sess->out, "* ESEARCH (TAG ");
		imap_write_string(sess->out, str_c(sess->tag), str_len(sess->tag));
		str_append_c(sess->out, ')');
		if (sess->uid)
			str_append_cstr(sess->out, " UID");
		if ((ret & RET_MIN) && res.count > 0)
			str_printf(sess->out, " MIN %u", res.uids[0]);
		if ((ret & RET_MAX) && res.count > 0)
			str_printf(sess->out, " MAX %u", res.uids[res.count - 1]);
		if ((ret & RET_ALL) && res.count > 0) {
			str_append_cstr(sess->out, " ALL ");
			imap_seqset_write(sess->out, res.uids, res.count);
		}
		if (ret & RET_COUNT)
			str_printf(sess->out, " COUNT %zu", res.count);
		if (modseq_used && res.count > 0)
			str_printf(sess->out, " MODSEQ %llu",
			    (unsigned long long)maxmod);
		str_append_cstr(sess->out, "\r\n");
	}
	imapd_sync(sess, false, NULL, 0);
	imapd_reply(sess, "OK Search completed.");
	goto out;
bad:
	sess->errors++;
	imapd_reply(sess, "BAD %s", ip->error != NULL ? ip->error :
	    "Invalid search arguments");
out:
	skey_free(prog);
	store_uids_clear(&res);
}

/* ---------------------------------------------------------------- SORT, THREAD */

enum sort_key {
	SORT_ARRIVAL, SORT_CC, SORT_DATE, SORT_FROM, SORT_SIZE, SORT_SUBJECT,
	SORT_TO,
};

struct sort_msg {
	uint32_t seq;
	uint32_t uid;
	time_t arrival, date;
	uint64_t size;
	char *from, *to, *cc, *subject;
	bool reply;		/* subject: a reply or forward */
	char *msgid;		/* THREAD=REFERENCES */
	char **refs;
	size_t nrefs;
};

static enum sort_key sort_keys[16];
static bool sort_rev[16];
static size_t sort_nkeys;

/* first_mailbox - the addr-mailbox of the first address, lower case */
static char *
first_mailbox(const char *p, size_t n)
{
	struct str *d = str_new(0, 0);
	const char *s, *e, *lt;
	char *r;
	size_t i;

	rfc2047_decode(p, n, d);
	s = str_c(d);
	lt = strchr(s, '<');
	if (lt != NULL)
		s = lt + 1;
	e = s;
	while (*e != '\0' && *e != '@' && *e != '>' && *e != ',' && *e != ' ')
		e++;
	r = xstrndup(s, (size_t)(e - s));
	for (i = 0; r[i] != '\0'; i++)
		r[i] = (char)tolower((unsigned char)r[i]);
	str_free(&d);
	return r;
}

/* msgid_token - the first "<...>" in p/n, or NULL */
static char *
msgid_token(const char **pp, const char *e)
{
	const char *p = *pp, *lt, *gt;

	lt = memchr(p, '<', (size_t)(e - p));
	if (lt == NULL)
		return NULL;
	gt = memchr(lt, '>', (size_t)(e - lt));
	if (gt == NULL)
		return NULL;
	*pp = gt + 1;
	return xstrndup(lt, (size_t)(gt - lt + 1));
}

static void
sort_msg_load(struct imapd_session *sess, struct sort_msg *sm, uint32_t seq,
    struct str *data)
{
	struct store_msg m;
	struct header_field f;
	const char *err, *hp;
	size_t hs;
	long day;

	store_msg_get(sess->box, seq, &m);
	memset(sm, 0, sizeof(*sm));
	sm->seq = seq;
	sm->uid = m.uid;
	sm->arrival = m.internaldate;
	sm->date = m.internaldate;
	sm->size = m.size;
	str_clear(data);
	if (store_msg_read(sess->box, seq, data, &err) < 0) {
		sm->from = xstrdup("");
		sm->to = xstrdup("");
		sm->cc = xstrdup("");
		sm->subject = xstrdup("");
		return;
	}
	hp = str_c(data);
	hs = header_block_size(hp, str_len(data));
	sm->from = header_find(hp, hs, "From", &f) ?
	    first_mailbox(f.value, f.value_len) : xstrdup("");
	sm->to = header_find(hp, hs, "To", &f) ?
	    first_mailbox(f.value, f.value_len) : xstrdup("");
	sm->cc = header_find(hp, hs, "Cc", &f) ?
	    first_mailbox(f.value, f.value_len) : xstrdup("");
	sm->subject = header_find(hp, hs, "Subject", &f) ?
	    imapd_base_subject(f.value, f.value_len, &sm->reply) : xstrdup("");
	if (header_find(hp, hs, "Date", &f))
		(void)rfc5322_date(f.value, f.value_len, &sm->date, &day);
	if (header_find(hp, hs, "Message-ID", &f)) {
		const char *p = f.value;

		sm->msgid = msgid_token(&p, f.value + f.value_len);
	}
	if (header_find(hp, hs, "References", &f)) {
		const char *p = f.value, *e = f.value + f.value_len;
		char *id;

		while ((id = msgid_token(&p, e)) != NULL && sm->nrefs < 1000) {
			sm->refs = xreallocarray(sm->refs, sm->nrefs + 1,
			    sizeof(char *));
			sm->refs[sm->nrefs++] = id;
		}
	}
	if (sm->nrefs == 0 && header_find(hp, hs, "In-Reply-To", &f)) {
		const char *p = f.value;
		char *id = msgid_token(&p, f.value + f.value_len);

		if (id != NULL) {
			sm->refs = xcalloc(1, sizeof(char *));
			sm->refs[sm->nrefs++] = id;
		}
	}
}

static void
sort_msg_free(struct sort_msg *sm)
{
	size_t i;

	free(sm->from);
	free(sm->to);
	free(sm->cc);
	free(sm->subject);
	free(sm->msgid);
	for (i = 0; i < sm->nrefs; i++)
		free(sm->refs[i]);
	free(sm->refs);
}

static int
sort_cmp(const void *va, const void *vb)
{
	const struct sort_msg *a = va, *b = vb;
	size_t i;
	int c = 0;

	for (i = 0; i < sort_nkeys && c == 0; i++) {
		switch (sort_keys[i]) {
		case SORT_ARRIVAL:
			c = a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
			break;
		case SORT_DATE:
			c = a->date < b->date ? -1 : a->date > b->date;
			break;
		case SORT_SIZE:
			c = a->size < b->size ? -1 : a->size > b->size;
			break;
		case SORT_FROM:
			c = strcmp(a->from, b->from);
			break;
		case SORT_TO:
			c = strcmp(a->to, b->to);
			break;
		case SORT_CC:
			c = strcmp(a->cc, b->cc);
			break;
		case SORT_SUBJECT:
			c = strcmp(a->subject, b->subject);
			break;
		}
		if (sort_rev[i])
			c = -c;
	}
	if (c == 0)
		c = a->seq < b->seq ? -1 : a->seq > b->seq;
	return c;
}

/*
 * sort_parse - sort criteria or thread algorithm, charset, search keys;
 * 1 parsed, 0 syntax error, -1 answered already (fills sort_keys)
 */
static int
sort_parse(struct imapd_session *sess, bool thread, bool *refs_r,
    struct skey **prog_r)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	bool rev = false;
	int ok = 0;

	sort_nkeys = 0;
	*refs_r = false;
	*prog_r = NULL;
	if (!imap_parse_sp(ip))
		goto out;
	if (thread) {
		if (!imap_parse_atom(ip, a, false))
			goto out;
		if (strcasecmp(str_c(a), "REFERENCES") == 0)
			*refs_r = true;
		else if (strcasecmp(str_c(a), "ORDEREDSUBJECT") != 0) {
			ip->error = "Unknown thread algorithm";
			goto out;
		}
		if (!imap_parse_sp(ip))
			goto out;
	} else {
		if (!imap_parse_char(ip, '('))
			goto out;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, a, false))
				goto out;
			if (strcasecmp(str_c(a), "REVERSE") == 0) {
				rev = true;
			} else {
				static const char *const names[] = { "ARRIVAL",
				    "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO" };
				size_t k;

				for (k = 0; k < N_ELEMENTS(names); k++)
					if (strcasecmp(str_c(a), names[k]) == 0)
						break;
				if (k == N_ELEMENTS(names) ||
				    sort_nkeys == N_ELEMENTS(sort_keys))
					goto out;
				sort_keys[sort_nkeys] = (enum sort_key)k;
				sort_rev[sort_nkeys++] = rev;
				rev = false;
			}
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
		if (sort_nkeys == 0 || rev || !imap_parse_sp(ip))
			goto out;
	}
	if (!parse_charset(sess, true)) {
		ok = -1;
		goto out;
	}
	if ((*prog_r = parse_keys(sess, false, 0)) == NULL || !imap_parse_end(ip))
		goto out;
	ok = 1;
out:
	str_free(&a);
	return ok;
}

/* imapd_cmd_sort - SORT / THREAD (and their UID forms) */
void
imapd_cmd_sort(struct imapd_session *sess, bool thread)
{
	struct imap_parser *ip = &sess->ip;
	struct str *data = str_new(0, 0);
	struct store_uids res = { 0 };
	struct skey *prog = NULL;
	struct sort_msg *v = NULL;
	bool modseq_used, refs = false;
	uint64_t maxmod;
	size_t i;

	switch (sort_parse(sess, thread, &refs, &prog)) {
	case 0:
		goto bad;
	case -1:
		goto out;
	}
	search_run(sess, prog, &res, &maxmod, &modseq_used);
	v = xcalloc(res.count + 1, sizeof(*v));
	for (i = 0; i < res.count; i++)
		sort_msg_load(sess, &v[i], res.uids[i], data);
	if (thread) {
		struct imapd_thread_msg *tm = xcalloc(res.count + 1,
		    sizeof(*tm));

		for (i = 0; i < res.count; i++) {
			tm[i].seq = v[i].seq;
			tm[i].uid = v[i].uid;
			tm[i].date = v[i].date;
			tm[i].subject = v[i].subject;
			tm[i].reply = v[i].reply;
			tm[i].msgid = v[i].msgid;
			tm[i].refs = v[i].refs;
			tm[i].nrefs = v[i].nrefs;
		}
		str_append_cstr(sess->out, "* THREAD ");
		if (refs)
			imapd_thread_references(sess->out, tm, res.count,
			    sess->uid);
		else
			imapd_thread_orderedsubject(sess->out, tm, res.count,
			    sess->uid);
		free(tm);
	} else {
		qsort(v, res.count, sizeof(*v), sort_cmp);
		str_append_cstr(sess->out, "* SORT");
		for (i = 0; i < res.count; i++)
			str_printf(sess->out, " %u", sess->uid ? v[i].uid : v[i].seq);
	}
	str_append_cstr(sess->out, "\r\n");
	imapd_sync(sess, false, NULL, 0);
	imapd_reply(sess, "OK %s completed.", thread ? "Thread" : "Sort");
	goto out;
bad:
	sess->errors++;
	imapd_reply(sess, "BAD %s", ip->error != NULL ? ip->error :
	    "Invalid arguments");
out:
	if (v != NULL)
		for (i = 0; i < res.count; i++)
			sort_msg_free(&v[i]);
	free(v);
	skey_free(prog);
	store_uids_clear(&res);
	str_free(&data);
}
