/* SPDX-License-Identifier: MIT */
/*
 * imapd_fetch - FETCH and STORE
 *
 * DESCRIPTION
 *	FLAGS, UID, INTERNALDATE, RFC822.SIZE and MODSEQ come from the
 *	mmap'd index; ENVELOPE, BODY and BODYSTRUCTURE from the strings
 *	the store cached at delivery (computed here only for a message
 *	stored without them). Only body sections (BODY[...], BINARY[...],
 *	RFC822*) read the message file, and only those that name a part,
 *	a header or the text parse its MIME structure, once per message.
 *	\Seen is set for non-PEEK body fetches before the responses are
 *	written, so each response carries the new FLAGS.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "header.h"
#include "imap_envelope.h"
#include "mime.h"
#include "mime_decode.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"

#include "imapd.h"

enum fitem_type {
	FI_FLAGS, FI_UID, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE,
	FI_BODYSTRUCTURE, FI_BODY, FI_MODSEQ, FI_SECTION, FI_BINARY,
	FI_BINARY_SIZE, FI_RFC822, FI_RFC822_HEADER, FI_RFC822_TEXT,
};

struct fitem {
	enum fitem_type type;
	bool peek;
	char *spec;		/* section spec without the field list */
	char **fields;
	size_t nfields;
	bool partial;
	uint64_t off, len;
	struct str *name;	/* response item name */
};

struct fetch {
	struct fitem *items;
	size_t n;
	bool need_body;		/* message bytes */
	bool sets_seen;
	uint64_t changedsince;
	bool vanished;
};

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* imapd_write_date - "dd-Mon-yyyy hh:mm:ss +zzzz" in the stored zone */
void
imapd_write_date(struct str *out, time_t t, int tz)
{
	struct tm tm;
	time_t local = t + (time_t)tz * 60;
	int a = tz < 0 ? -tz : tz;

	gmtime_r(&local, &tm);
	str_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tz < 0 ? '-' : '+', a / 60, a % 60);
}

static void
fetch_free(struct fetch *f)
{
	size_t i, j;

	for (i = 0; i < f->n; i++) {
		free(f->items[i].spec);
		for (j = 0; j < f->items[i].nfields; j++)
			free(f->items[i].fields[j]);
		free(f->items[i].fields);
		str_free(&f->items[i].name);
	}
	free(f->items);
	memset(f, 0, sizeof(*f));
}

static struct fitem *
fetch_add(struct fetch *f, enum fitem_type type)
{
	struct fitem *it;

	f->items = xreallocarray(f->items, f->n + 1, sizeof(*f->items));
	it = &f->items[f->n++];
	memset(it, 0, sizeof(*it));
	it->type = type;
	return it;
}

/* spec_valid - section-spec syntax (RFC 3501 9); binary: part numbers only */
static bool
spec_valid(const char *p, bool binary, bool *fields_r, bool *not_r)
{
	const char *s = p;

	*fields_r = *not_r = false;
	while (*s >= '1' && *s <= '9') {
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s != '.')
			break;
		s++;
	}
	if (*s == '\0')
		return s == p || s[-1] != '.';
	if (binary)
		return false;
	if (s != p && s[-1] != '.')
		return false;
	if (strcasecmp(s, "HEADER") == 0 || strcasecmp(s, "TEXT") == 0)
		return true;
	if (strcasecmp(s, "MIME") == 0)
		return s != p;
	if (strcasecmp(s, "HEADER.FIELDS") == 0) {
		*fields_r = true;
		return true;
	}
	if (strcasecmp(s, "HEADER.FIELDS.NOT") == 0) {
		*fields_r = *not_r = true;
		return true;
	}
	return false;
}

/* parse_section - "[spec]<o.l>" after BODY / BODY.PEEK / BINARY... */
static bool
parse_section(struct imapd_session *sess, struct fitem *it, const char *base)
{
	struct imap_parser *ip = &sess->ip;
	struct str *t = str_new(0, 0);
	size_t start;
	bool fields, isnot, ok = false;

	if (!imap_parse_char(ip, '['))
		goto out;
	start = ip->pos;
	while (ip->pos < ip->n && ip->p[ip->pos] != ']' && ip->p[ip->pos] != ' ')
		ip->pos++;
	it->spec = xstrndup(ip->p + start, ip->pos - start);
	if (!spec_valid(it->spec, it->type != FI_SECTION, &fields, &isnot)) {
		ip->error = "Invalid section";
		goto out;
	}
	it->name = str_new(0, 0);
	str_printf(it->name, "%s[%s", base, it->spec);
	if (fields) {
		if (!imap_parse_sp(ip) || !imap_parse_char(ip, '('))
			goto out;
		str_append_cstr(it->name, " (");
		for (;;) {
			if (!imap_parse_astring(ip, t))
				goto out;
			it->fields = xreallocarray(it->fields, it->nfields + 1,
			    sizeof(char *));
			it->fields[it->nfields++] = xstrdup(str_c(t));
			if (it->nfields > 1)
				str_append_c(it->name, ' ');
			if (str_len(t) > 0 && strspn(str_c(t),
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789-_.") == str_len(t))
				str_append_str(it->name, t);
			else
				imap_write_string(it->name, str_c(t), str_len(t));
			if (imap_parse_peek(ip, ')'))
				break;
			if (!imap_parse_sp(ip))
				goto out;
		}
		ip->pos++;
		str_append_c(it->name, ')');
	}
	if (!imap_parse_char(ip, ']'))
		goto out;
	str_append_c(it->name, ']');
	if (imap_parse_peek(ip, '<')) {
		uint32_t o, l;

		ip->pos++;
		if (!imap_parse_number(ip, &o, false) || !imap_parse_char(ip, '.') ||
		    !imap_parse_number(ip, &l, true) || !imap_parse_char(ip, '>'))
			goto out;
		it->partial = true;
		it->off = o;
		it->len = l;
		str_printf(it->name, "<%u>", o);
	}
	ok = true;
out:
	str_free(&t);
	return ok;
}

/* parse_item - one fetch-att */
static bool
parse_item(struct imapd_session *sess, struct fetch *f)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	struct fitem *it;
	const char *n;
	bool ok = true;
	size_t start = ip->pos;

	while (ip->pos < ip->n && ip->p[ip->pos] != ' ' && ip->p[ip->pos] != '[' &&
	    ip->p[ip->pos] != ')' && ip->p[ip->pos] != '(')
		ip->pos++;
	str_set(a, ip->p + start, ip->pos - start);
	n = str_c(a);
	if (strcasecmp(n, "FLAGS") == 0)
		fetch_add(f, FI_FLAGS);
	else if (strcasecmp(n, "UID") == 0)
		fetch_add(f, FI_UID);
	else if (strcasecmp(n, "INTERNALDATE") == 0)
		fetch_add(f, FI_INTERNALDATE);
	else if (strcasecmp(n, "RFC822.SIZE") == 0)
		fetch_add(f, FI_SIZE);
	else if (strcasecmp(n, "ENVELOPE") == 0)
		fetch_add(f, FI_ENVELOPE);
	else if (strcasecmp(n, "BODYSTRUCTURE") == 0)
		fetch_add(f, FI_BODYSTRUCTURE);
	else if (strcasecmp(n, "MODSEQ") == 0) {
		fetch_add(f, FI_MODSEQ);
		sess->condstore = true;
	} else if (strcasecmp(n, "RFC822") == 0) {
		fetch_add(f, FI_RFC822);
		f->need_body = f->sets_seen = true;
	} else if (strcasecmp(n, "RFC822.HEADER") == 0) {
		fetch_add(f, FI_RFC822_HEADER);
		f->need_body = true;
	} else if (strcasecmp(n, "RFC822.TEXT") == 0) {
		fetch_add(f, FI_RFC822_TEXT);
		f->need_body = f->sets_seen = true;
	} else if (strcasecmp(n, "BODY") == 0 && !imap_parse_peek(ip, '['))
		fetch_add(f, FI_BODY);
	else if (strcasecmp(n, "BODY") == 0 || strcasecmp(n, "BODY.PEEK") == 0) {
		it = fetch_add(f, FI_SECTION);
		it->peek = strcasecmp(n, "BODY.PEEK") == 0;
		ok = parse_section(sess, it, "BODY");
		f->need_body = true;
		if (!it->peek)
			f->sets_seen = true;
	} else if (strcasecmp(n, "BINARY") == 0 ||
	    strcasecmp(n, "BINARY.PEEK") == 0) {
		it = fetch_add(f, FI_BINARY);
		it->peek = strcasecmp(n, "BINARY.PEEK") == 0;
		ok = parse_section(sess, it, "BINARY");
		f->need_body = true;
		if (!it->peek)
			f->sets_seen = true;
	} else if (strcasecmp(n, "BINARY.SIZE") == 0) {
		it = fetch_add(f, FI_BINARY_SIZE);
		ok = parse_section(sess, it, "BINARY.SIZE") && !it->partial;
		f->need_body = true;
	} else {
		ip->error = "Invalid fetch attribute";
		ok = false;
	}
	str_free(&a);
	return ok;
}

/* parse_fetch_atts - macro, one att, or a list; then modifiers */
static bool
parse_fetch_atts(struct imapd_session *sess, struct fetch *f)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	bool ok = false;

	if (imap_parse_peek(ip, '(')) {
		ip->pos++;
		for (;;) {
			if (!parse_item(sess, f))
				goto out;
			if (imap_parse_peek(ip, ')'))
				break;
			if (!imap_parse_sp(ip))
				goto out;
		}
		ip->pos++;
	} else {
		size_t save = ip->pos;

		if (imap_parse_atom(ip, a, false) && strcasecmp(str_c(a), "ALL") == 0) {
			fetch_add(f, FI_FLAGS);
			fetch_add(f, FI_INTERNALDATE);
			fetch_add(f, FI_SIZE);
			fetch_add(f, FI_ENVELOPE);
		} else if (strcasecmp(str_c(a), "FAST") == 0) {
			fetch_add(f, FI_FLAGS);
			fetch_add(f, FI_INTERNALDATE);
			fetch_add(f, FI_SIZE);
		} else if (strcasecmp(str_c(a), "FULL") == 0) {
			fetch_add(f, FI_FLAGS);
			fetch_add(f, FI_INTERNALDATE);
			fetch_add(f, FI_SIZE);
			fetch_add(f, FI_ENVELOPE);
			fetch_add(f, FI_BODY);
		} else {
			ip->pos = save;
			ip->error = NULL;
			if (!parse_item(sess, f))
				goto out;
		}
	}
	if (imap_parse_peek(ip, ' ')) {
		/* fetch-modifiers (RFC 7162): (CHANGEDSINCE n [VANISHED]) */
		ip->pos++;
		if (!imap_parse_char(ip, '('))
			goto out;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, a, false))
				goto out;
			if (strcasecmp(str_c(a), "CHANGEDSINCE") == 0) {
				if (!imap_parse_sp(ip) ||
				    !imap_parse_number64(ip, &f->changedsince))
					goto out;
				sess->condstore = true;
			} else if (strcasecmp(str_c(a), "VANISHED") == 0 &&
			    sess->uid && sess->qresync) {
				f->vanished = true;
			} else {
				ip->error = "Unknown FETCH modifier";
				goto out;
			}
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
		if (f->vanished && f->changedsince == 0) {
			ip->error = "VANISHED needs CHANGEDSINCE";
			goto out;
		}
	}
	ok = imap_parse_end(ip);
out:
	str_free(&a);
	return ok;
}

/* write_literal - {n} + bytes (literal8 ~{n} when binary holds NUL) */
static void
write_literal(struct imapd_session *sess, const char *p, size_t n, bool binary)
{
	bool nul = binary && memchr(p, '\0', n) != NULL;

	str_printf(sess->out, "%s{%zu}\r\n", nul ? "~" : "", n);
	if (n > 65536) {
		imapd_flush_out(sess);
		stream_write(sess->s, p, n);
	} else
		str_append(sess->out, p, n);
}

/* write_partial - the <off.len> window of p/n as a literal */
static void
write_ranged(struct imapd_session *sess, const struct fitem *it, const char *p,
    size_t n, bool binary)
{
	if (it->partial) {
		if (it->off >= n)
			n = 0, p = "";
		else {
			p += it->off;
			n -= (size_t)it->off;
			if (n > it->len)
				n = (size_t)it->len;
		}
	}
	write_literal(sess, p, n, binary);
}

/* field_listed - the header field name is in the item's list */
static bool
field_listed(const struct fitem *it, const struct header_field *hf)
{
	size_t i;

	for (i = 0; i < it->nfields; i++)
		if (strlen(it->fields[i]) == hf->name_len &&
		    strncasecmp(it->fields[i], hf->name, hf->name_len) == 0)
			return true;
	return false;
}

struct msgdata {
	struct str *data;
	struct mime_message *mime;
	bool loaded, failed;
};

static struct mime_message *
msg_mime(struct msgdata *md)
{
	if (md->mime == NULL)
		md->mime = mime_parse(str_c(md->data), str_len(md->data), NULL);
	return md->mime;
}

/* write_section - BODY[spec] / BINARY[spec] / BINARY.SIZE[spec] */
static void
write_section(struct imapd_session *sess, const struct fitem *it,
    struct msgdata *md)
{
	struct mime_section sec;
	struct str *t;
	const char *err, *base = str_c(md->data);
	size_t n = str_len(md->data);

	if (it->spec[0] == '\0' && it->type == FI_SECTION) {
		write_ranged(sess, it, base, n, false);
		return;
	}
	if (mime_section_find(msg_mime(md), it->spec, strlen(it->spec), &sec,
	    &err) < 0) {
		if (it->type == FI_BINARY_SIZE)
			str_append_cstr(sess->out, "0");
		else
			str_append_cstr(sess->out, "NIL");
		return;
	}
	if (it->type == FI_BINARY || it->type == FI_BINARY_SIZE) {
		const struct mime_part *part = sec.part;

		t = str_new(sec.size, 0);
		if (part->children != NULL || it->spec[0] == '\0')
			str_append(t, base + sec.offset, sec.size);
		else
			(void)mime_decode_part(msg_mime(md), part, t);
		if (it->type == FI_BINARY_SIZE)
			str_printf(sess->out, "%zu", str_len(t));
		else
			write_ranged(sess, it, str_c(t), str_len(t), true);
		str_free(&t);
		return;
	}
	if (it->nfields == 0) {
		write_ranged(sess, it, base + sec.offset, sec.size, false);
		return;
	}
	{
		struct header_iter hi;
		struct header_field hf;
		bool isnot = strcasestr(it->spec, ".NOT") != NULL;
		const char *hp = base + sec.offset;

		t = str_new(256, 0);
		header_iter_init(&hi, hp, sec.size);
		while (header_iter_next(&hi, &hf))
			if (field_listed(it, &hf) != isnot)
				str_append(t, hp + hf.offset, hf.size);
		str_append(t, "\r\n", 2);
		write_ranged(sess, it, str_c(t), str_len(t), false);
		str_free(&t);
	}
}

/* write_cached - ENVELOPE / BODY / BODYSTRUCTURE from the cache, else computed */
static void
write_cached(struct imapd_session *sess, uint32_t seq,
    enum store_cache_field field, struct msgdata *md)
{
	size_t before = str_len(sess->out);
	const char *err;

	if (store_msg_cached(sess->box, seq, field, sess->out, &err) == 0 &&
	    str_len(sess->out) > before)
		return;
	str_truncate(sess->out, before);
	if (!md->loaded) {
		md->loaded = true;
		if (store_msg_read(sess->box, seq, md->data, &err) < 0)
			md->failed = true;
	}
	if (md->failed) {
		str_append_cstr(sess->out, "NIL");
		return;
	}
	if (field == STORE_CACHE_ENVELOPE) {
		size_t hs = header_block_size(str_c(md->data), str_len(md->data));

		(void)imap_envelope_write(sess->out, str_c(md->data), hs);
	} else
		(void)imap_envelope_bodystructure(sess->out, msg_mime(md),
		    mime_message_root(msg_mime(md)),
		    field == STORE_CACHE_BODYSTRUCTURE);
}

/* fetch_one - the FETCH response for seq */
static void
fetch_one(struct imapd_session *sess, const struct fetch *f, uint32_t seq,
    bool add_flags)
{
	struct msgdata md = { 0 };
	struct store_msg m;
	const char *err;
	size_t i, n = 0;
	bool has_uid = false, has_flags = false, has_modseq = false;

	store_msg_get(sess->box, seq, &m);
	md.data = str_new(0, 0);
	if (f->need_body) {
		md.loaded = true;
		if (store_msg_read(sess->box, seq, md.data, &err) < 0)
			md.failed = true;
	}
	str_printf(sess->out, "* %u FETCH (", seq);
	for (i = 0; i < f->n; i++) {
		if (f->items[i].type == FI_UID)
			has_uid = true;
		if (f->items[i].type == FI_FLAGS)
			has_flags = true;
		if (f->items[i].type == FI_MODSEQ)
			has_modseq = true;
	}
	if (sess->uid && !has_uid) {
		str_printf(sess->out, "UID %u", m.uid);
		n++;
	}
	if (add_flags && !has_flags) {
		str_append_cstr(sess->out, n++ ? " FLAGS " : "FLAGS ");
		imapd_write_flags(sess, sess->out, m.flags, m.keywords);
	}
	if (f->changedsince > 0 && !has_modseq) {
		str_printf(sess->out, "%sMODSEQ (%llu)", n++ ? " " : "",
		    (unsigned long long)m.modseq);
	}
	for (i = 0; i < f->n; i++) {
		const struct fitem *it = &f->items[i];

		if (n++ > 0)
			str_append_c(sess->out, ' ');
		switch (it->type) {
		case FI_FLAGS:
			str_append_cstr(sess->out, "FLAGS ");
			imapd_write_flags(sess, sess->out, m.flags, m.keywords);
			break;
		case FI_UID:
			str_printf(sess->out, "UID %u", m.uid);
			break;
		case FI_INTERNALDATE:
			str_append_cstr(sess->out, "INTERNALDATE ");
			imapd_write_date(sess->out, m.internaldate, m.tz_minutes);
			break;
		case FI_SIZE:
			str_printf(sess->out, "RFC822.SIZE %llu",
			    (unsigned long long)m.size);
			break;
		case FI_MODSEQ:
			str_printf(sess->out, "MODSEQ (%llu)",
			    (unsigned long long)m.modseq);
			break;
		case FI_ENVELOPE:
			str_append_cstr(sess->out, "ENVELOPE ");
			write_cached(sess, seq, STORE_CACHE_ENVELOPE, &md);
			break;
		case FI_BODYSTRUCTURE:
			str_append_cstr(sess->out, "BODYSTRUCTURE ");
			write_cached(sess, seq, STORE_CACHE_BODYSTRUCTURE, &md);
			break;
		case FI_BODY:
			str_append_cstr(sess->out, "BODY ");
			write_cached(sess, seq, STORE_CACHE_BODY, &md);
			break;
		case FI_RFC822:
		case FI_RFC822_HEADER:
		case FI_RFC822_TEXT:
			str_append_cstr(sess->out, it->type == FI_RFC822 ? "RFC822 " :
			    it->type == FI_RFC822_HEADER ? "RFC822.HEADER " :
			    "RFC822.TEXT ");
			if (md.failed) {
				str_append_cstr(sess->out, "NIL");
				break;
			}
			{
				size_t hs = header_block_size(str_c(md.data),
				    str_len(md.data));

				if (it->type == FI_RFC822)
					write_literal(sess, str_c(md.data),
					    str_len(md.data), false);
				else if (it->type == FI_RFC822_HEADER)
					write_literal(sess, str_c(md.data), hs,
					    false);
				else
					write_literal(sess, str_c(md.data) + hs,
					    str_len(md.data) - hs, false);
			}
			break;
		case FI_SECTION:
		case FI_BINARY:
		case FI_BINARY_SIZE:
			str_append_str(sess->out, it->name);
			str_append_c(sess->out, ' ');
			if (md.failed)
				str_append_cstr(sess->out, "NIL");
			else
				write_section(sess, it, &md);
			break;
		}
	}
	str_append_cstr(sess->out, ")\r\n");
	if (str_len(sess->out) > 65536)
		imapd_flush_out(sess);
	mime_message_free(&md.mime);
	str_free(&md.data);
}

static bool
uid_in_set(const struct store_uids *set, uint32_t uid)
{
	size_t lo = 0, hi = set->count;

	/* ascending: added in sequence order */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (set->uids[mid] == uid)
			return true;
		if (set->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* imapd_cmd_fetch - FETCH / UID FETCH */
void
imapd_cmd_fetch(struct imapd_session *sess)
{
	struct imap_seqset set = { 0 };
	struct fetch f = { 0 };
	struct store_uids seen = { 0 };
	uint32_t *seqs = NULL;
	size_t n = 0, i;
	const char *err;
	bool unknown_cte = false;

	if (!imap_parse_sp(&sess->ip) || !imap_parse_seqset(&sess->ip, &set) ||
	    !imap_parse_sp(&sess->ip) || !parse_fetch_atts(sess, &f)) {
		sess->errors++;
		imapd_reply(sess, "BAD %s", sess->ip.error != NULL ?
		    sess->ip.error : "Invalid arguments");
		goto out;
	}
	if (!imapd_resolve_set(sess, &set, sess->uid, &seqs, &n)) {
		sess->errors++;
		imapd_reply(sess, "BAD Invalid messageset");
		goto out;
	}
	if (f.vanished) {
		struct store_uids gone = { 0 };

		if (store_expunged_since(sess->box, f.changedsince, &gone, &err) >= 0) {
			uint32_t *v = xcalloc(gone.count + 1, sizeof(*v));
			size_t k = 0;
			uint32_t maxuid = store_mailbox_count(sess->box) > 0 ?
			    store_msg_uid(sess->box, store_mailbox_count(sess->box)) : 0;

			for (i = 0; i < gone.count; i++)
				if (imap_seqset_contains(&set, gone.uids[i],
				    MAX(maxuid, gone.uids[i])))
					v[k++] = gone.uids[i];
			if (k > 0) {
				str_append_cstr(sess->out, "* VANISHED (EARLIER) ");
				imap_seqset_write(sess->out, v, k);
				str_append_cstr(sess->out, "\r\n");
			}
			free(v);
		}
		store_uids_clear(&gone);
	}
	/* \Seen first, so that the responses show it */
	if (f.sets_seen && !sess->readonly) {
		for (i = 0; i < n; i++) {
			struct store_msg m;

			store_msg_get(sess->box, seqs[i], &m);
			if ((m.flags & STORE_FLAG_SEEN) == 0 && !m.expunged &&
			    (f.changedsince == 0 || m.modseq > f.changedsince))
				store_uids_add(&seen, m.uid);
		}
		if (seen.count > 0) {
			if (store_update_flags(sess->box, seen.uids, seen.count,
			    STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0, NULL, &err) < 0)
				log_warn(&sess->c->log, "setting \\Seen: %s", err);
			imapd_sync(sess, false, seen.uids, seen.count);
		}
	}
	for (i = 0; i < n; i++) {
		struct store_msg m;

		if (f.changedsince > 0) {
			store_msg_get(sess->box, seqs[i], &m);
			if (m.modseq <= f.changedsince)
				continue;
		}
		fetch_one(sess, &f, seqs[i], seen.count > 0 &&
		    uid_in_set(&seen, store_msg_uid(sess->box, seqs[i])));
	}
	(void)unknown_cte;
	imapd_sync(sess, false, NULL, 0);
	imapd_reply(sess, "OK Fetch completed.");
out:
	free(seqs);
	fetch_free(&f);
	imap_seqset_free(&set);
	store_uids_clear(&seen);
}

/* The fetch-att list of NOTIFY's MessageNew (RFC 5465 5.2). */
struct imapd_fetch_atts {
	struct fetch f;
};

/* imapd_fetch_atts_parse - see imapd.h */
struct imapd_fetch_atts *
imapd_fetch_atts_parse(struct imapd_session *sess)
{
	struct imap_parser *ip = &sess->ip;
	struct imapd_fetch_atts *a = xcalloc(1, sizeof(*a));

	if (!imap_parse_char(ip, '('))
		goto bad;
	for (;;) {
		if (!parse_item(sess, &a->f))
			goto bad;
		if (imap_parse_peek(ip, ')'))
			break;
		if (!imap_parse_sp(ip))
			goto bad;
	}
	ip->pos++;
	/* a notification never changes the mailbox: BODY[] acts as PEEK */
	a->f.sets_seen = false;
	return a;
bad:
	imapd_fetch_atts_free(&a);
	return NULL;
}

/* imapd_fetch_atts_write - see imapd.h */
void
imapd_fetch_atts_write(struct imapd_session *sess,
    const struct imapd_fetch_atts *a, uint32_t seq)
{
	bool uid = sess->uid;

	/* only what the client listed (no UID added as for UID FETCH) */
	sess->uid = false;
	fetch_one(sess, &a->f, seq, false);
	sess->uid = uid;
}

/* imapd_fetch_atts_free - see imapd.h */
void
imapd_fetch_atts_free(struct imapd_fetch_atts **ap)
{
	if (*ap == NULL)
		return;
	fetch_free(&(*ap)->f);
	free(*ap);
	*ap = NULL;
}

/* A parsed STORE command. */
struct store_args {
	struct imap_seqset set;
	enum store_flags_mode mode;
	bool silent;
	uint64_t unchangedsince;
	uint32_t flags;		/* system flags */
	char **keywords;
	size_t nkeywords;
};

static void
store_args_free(struct store_args *sa)
{
	size_t i;

	imap_seqset_free(&sa->set);
	for (i = 0; i < sa->nkeywords; i++)
		free(sa->keywords[i]);
	free(sa->keywords);
	memset(sa, 0, sizeof(*sa));
}

/* store_parse - sequence-set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags */
static bool
store_parse(struct imapd_session *sess, struct store_args *sa)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0), *fl = str_new(0, 0);
	const char *op;
	bool paren, ok = false;
	size_t i;

	if (!imap_parse_sp(ip) || !imap_parse_seqset(ip, &sa->set) ||
	    !imap_parse_sp(ip))
		goto out;
	if (imap_parse_peek(ip, '(')) {
		ip->pos++;
		if (!imap_parse_atom(ip, a, false) ||
		    strcasecmp(str_c(a), "UNCHANGEDSINCE") != 0 ||
		    !imap_parse_sp(ip) ||
		    !imap_parse_number64(ip, &sa->unchangedsince) ||
		    !imap_parse_char(ip, ')') || !imap_parse_sp(ip))
			goto out;
		sess->condstore = true;
	}
	if (!imap_parse_atom(ip, a, false) || !imap_parse_sp(ip))
		goto out;
	op = str_c(a);
	sa->mode = STORE_FLAGS_REPLACE;
	if (*op == '+' || *op == '-') {
		sa->mode = *op == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		op++;
	}
	if (strcasecmp(op, "FLAGS") == 0)
		sa->silent = false;
	else if (strcasecmp(op, "FLAGS.SILENT") == 0)
		sa->silent = true;
	else
		goto out;
	paren = imap_parse_peek(ip, '(');
	if (paren)
		ip->pos++;
	while (!(paren && imap_parse_peek(ip, ')')) && ip->pos < ip->n) {
		if (!imap_parse_flag(ip, fl))
			goto out;
		if (str_c(fl)[0] == '\\') {
			static const char *const sys[] = { "\\Seen", "\\Answered",
			    "\\Flagged", "\\Deleted", "\\Draft" };

			for (i = 0; i < N_ELEMENTS(sys); i++)
				if (strcasecmp(str_c(fl), sys[i]) == 0)
					break;
			if (i < N_ELEMENTS(sys))
				sa->flags |= 1u << i;
			else if (strcasecmp(str_c(fl), "\\Recent") != 0) {
				ip->error = "Invalid system flag";
				goto out;
			}
		} else {
			if (sa->nkeywords >= 1024) {
				ip->error = "Too many keywords";
				goto out;
			}
			sa->keywords = xreallocarray(sa->keywords,
			    sa->nkeywords + 1, sizeof(char *));
			sa->keywords[sa->nkeywords++] = xstrdup(str_c(fl));
		}
		if (imap_parse_peek(ip, ' '))
			ip->pos++;
		else if (!paren)
			break;
	}
	if (paren && !imap_parse_char(ip, ')'))
		goto out;
	ok = imap_parse_end(ip);
out:
	str_free(&a);
	str_free(&fl);
	return ok;
}

/* imapd_cmd_store - STORE / UID STORE */
void
imapd_cmd_store(struct imapd_session *sess)
{
	struct imap_parser *ip = &sess->ip;
	struct store_args sa = { 0 };
	struct store_uids failed = { 0 }, mine = { 0 };
	uint64_t kw = 0;
	uint32_t *seqs = NULL;
	size_t n = 0, i;
	const char *err;

	if (!store_parse(sess, &sa))
		goto bad;
	if (sess->readonly) {
		imapd_reply(sess, sess->box_store != NULL ? "NO [NOPERM] Shared "
		    "mailboxes are read-only" : "NO [READ-ONLY] Mailbox is "
		    "read-only");
		goto out;
	}
	for (i = 0; i < sa.nkeywords; i++) {
		unsigned idx;

		if (store_keyword_lookup(sess->box, sa.keywords[i],
		    sa.mode != STORE_FLAGS_REMOVE, &idx, &err) == 0)
			kw |= (uint64_t)1 << idx;
		else if (sa.mode != STORE_FLAGS_REMOVE) {
			imapd_reply(sess, "NO [LIMIT] %s", err);
			goto out;
		}
	}
	if (!imapd_resolve_set(sess, &sa.set, sess->uid, &seqs, &n)) {
		ip->error = "Invalid messageset";
		goto bad;
	}
	for (i = 0; i < n; i++)
		store_uids_add(&mine, store_msg_uid(sess->box, seqs[i]));
	if (mine.count > 0 && store_update_flags(sess->box, mine.uids, mine.count,
	    sa.mode, sa.flags, kw, sa.unchangedsince, &failed, &err) < 0) {
		imapd_reply(sess, "NO %s", err);
		goto out;
	}
	/* our changes come back from the sync like everyone else's */
	imapd_sync(sess, false, sa.silent && !sess->condstore ? mine.uids : NULL,
	    mine.count);
	if (failed.count > 0) {
		struct str *code = str_new(0, 0);
		uint32_t *v = xcalloc(failed.count, sizeof(*v));
		size_t k = 0;

		for (i = 0; i < failed.count; i++) {
			uint32_t s = store_seq_by_uid(sess->box, failed.uids[i]);

			if (s != 0)
				v[k++] = sess->uid ? failed.uids[i] : s;
		}
		imap_seqset_write(code, v, k);
		imapd_reply(sess, "OK [MODIFIED %s] Conditional store failed",
		    str_c(code));
		free(v);
		str_free(&code);
	} else
		imapd_reply(sess, "OK Store completed.");
	goto out;
bad:
	sess->errors++;
	imapd_reply(sess, "BAD %s", ip->error != NULL ? ip->error :
	    "Invalid arguments");
out:
	free(seqs);
	store_args_free(&sa);
	store_uids_clear(&failed);
	store_uids_clear(&mine);
}
