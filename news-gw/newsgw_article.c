/* SPDX-License-Identifier: MIT */
/*
 * newsgw_article - mail to article and article to mail
 *
 * DESCRIPTION
 *	Pure conversions on whole messages in memory (CRLF, not
 *	dot-stuffed): no I/O, no settings, so the fuzz target runs them
 *	as they are.
 *
 *	Mail to news (RFC 5536, RFC 5537 3.5 "gateways"): Path: and
 *	Newsgroups: are made by us; From, Subject, Date and a valid
 *	Message-ID are kept (a missing From comes from the envelope
 *	sender, a missing Subject is "(no subject)", a missing Date is
 *	now, an invalid or missing Message-ID is made from the queue ID
 *	and our identity, the old one kept as X-Original-Message-ID).
 *	Trace fields and ones that would break posting or bypass the news
 *	server's rules are dropped (Received, Delivered-To, Return-Path,
 *	Xref, Lines, Injection-*, NNTP-Posting-*, Bcc, empty fields) or
 *	renamed X-Original-* (To, Cc, Control, Approved, Supersedes,
 *	Also-Control, Distribution). The body, 8-bit bytes and MIME
 *	structure pass untouched. A header line over 998 octets, a field
 *	without a colon or with a bad name is a permanent refusal. Mail
 *	that carries our own gateway marker came from news: a loop.
 *
 *	News to mail: the article must have a valid Message-ID, Path,
 *	From and Newsgroups, no Control field, header lines of at most
 *	998 octets; our identity in Path or in a gateway marker is a loop.
 *	Newsgroups becomes X-Newsgroups, the trace fields go, List-Id
 *	names the gatewayed group, Message-ID and everything else stay.
 *
 * SEE ALSO
 *	RFC 5536, RFC 5537, RFC 2919 (List-Id), newsgw.h.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "header.h"
#include "nntp_proto.h"
#include "str.h"

#include "newsgw.h"

#define NEWSGW_HEADER_LINE_MAX	998	/* RFC 5322 2.1.1 / RFC 5536 */
#define NEWSGW_HEADER_FIELDS_MAX 1000

/* Fields that never cross the gateway (either way). */
static const char *const newsgw_drop_fields[] = {
	"Path", "Newsgroups", "Xref", "Received", "Delivered-To",
	"Return-Path", "Lines", "Injection-Info", "Injection-Date",
	"NNTP-Posting-Host", "NNTP-Posting-Date", "X-Trace",
	"X-Complaints-To", "Bcc", "Content-Length", NEWSGW_MARKER, NULL,
};

/* Mail fields that become X-Original-* in the article. */
static const char *const newsgw_rename_fields[] = {
	"To", "Cc", "Control", "Approved", "Supersedes", "Also-Control",
	"Distribution", NULL,
};

/* Article fields that do not go into the mail (besides the drop list). */
static const char *const newsgw_n2m_drop_fields[] = {
	"Followup-To", NULL,
};

/* newsgw_field_in - whether the field's name is in list */
static bool
newsgw_field_in(const struct header_field *f, const char *const *list)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (header_name_is(f, list[i]))
			return true;
	return false;
}

/* newsgw_name_ok - RFC 5322 field name: printable ASCII but ':' */
static bool
newsgw_name_ok(const struct header_field *f)
{
	size_t i;

	if (f->no_colon || f->name_len == 0)
		return false;
	for (i = 0; i < f->name_len; i++)
		if ((unsigned char)f->name[i] < 33 ||
		    (unsigned char)f->name[i] > 126 || f->name[i] == ':')
			return false;
	/* no white space between the name and the colon (RFC 5536 3) */
	return f->name[f->name_len] == ':';
}

/* newsgw_lines_ok - whether no line of the field is longer than 998 */
static bool
newsgw_lines_ok(const struct header_field *f)
{
	const char *p = f->name, *end = f->name + f->size, *lf;

	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			lf = end;
		if ((size_t)(lf - p) > NEWSGW_HEADER_LINE_MAX + 1)
			return false;
		p = lf + 1;
	}
	return true;
}

/* newsgw_value_empty - whether the value is only white space */
static bool
newsgw_value_empty(const struct header_field *f)
{
	const char *p = f->value;
	size_t n = f->value_len;

	header_trim(&p, &n);
	return n == 0;
}

/* newsgw_unfolded - the trimmed, unfolded value into out (replaced) */
static void
newsgw_unfolded(const struct header_field *f, struct str *out)
{
	str_clear(out);
	(void)header_unfold(f->value, f->value_len, out);
}

/* newsgw_append_field - the field as it came, ending in CRLF */
static void
newsgw_append_field(struct str *out, const struct header_field *f)
{
	size_t n = f->size;

	while (n > 0 && (f->name[n - 1] == '\n' || f->name[n - 1] == '\r'))
		n--;
	str_append(out, f->name, n);
	str_append(out, "\r\n", 2);
}

/* newsgw_append_renamed - "X-Original-NAME:" and the raw value */
static void
newsgw_append_renamed(struct str *out, const struct header_field *f)
{
	size_t n = f->value_len;

	while (n > 0 && (f->value[n - 1] == '\n' || f->value[n - 1] == '\r'))
		n--;
	str_append_cstr(out, "X-Original-");
	str_append(out, f->name, f->name_len);
	str_append_c(out, ':');
	str_append(out, f->value, n);
	str_append(out, "\r\n", 2);
}

/* newsgw_date - an RFC 5322 date for t (UTC, C locale names) */
static void
newsgw_date(time_t t, struct str *out)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec",
	};
	struct tm tm;

	gmtime_r(&t, &tm);
	str_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* newsgw_marker_ours - whether a marker value names identity */
static bool
newsgw_marker_ours(const struct header_field *f, const char *identity,
    struct str *tmp)
{
	const char *p, *v;
	size_t idlen = strlen(identity), n;

	newsgw_unfolded(f, tmp);
	v = str_c(tmp);
	n = str_len(tmp);
	/* "direction; identity" */
	p = memchr(v, ';', n);
	if (p == NULL)
		return false;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return strlen(p) == idlen && strncasecmp(p, identity, idlen) == 0;
}

/* newsgw_mail_to_article - see newsgw.h */
enum newsgw_conv
newsgw_mail_to_article(const char *msg, size_t len,
    const struct newsgw_m2n *opt, struct str *article, struct str *msgid,
    const char **why)
{
	struct header_iter it;
	struct header_field f;
	struct str *hdr = str_new(0, 0), *tmp = str_new(0, 0),
	    *orig_id = str_new(0, 0);
	size_t hdr_len = header_block_size(msg, len), nfields = 0;
	bool has_from = false, has_subject = false, has_date = false;
	enum newsgw_conv rc = NEWSGW_CONV_REJECT;

	str_clear(article);
	str_clear(msgid);
	header_iter_init(&it, msg, hdr_len);
	while (header_iter_next(&it, &f)) {
		if (++nfields > NEWSGW_HEADER_FIELDS_MAX) {
			*why = "too many header fields";
			goto out;
		}
		if (!newsgw_name_ok(&f)) {
			*why = "malformed header field";
			goto out;
		}
		if (!newsgw_lines_ok(&f)) {
			*why = "header line longer than 998 octets";
			goto out;
		}
		if (header_name_is(&f, NEWSGW_MARKER) &&
		    newsgw_marker_ours(&f, opt->identity, tmp)) {
			*why = "our own gateway marker: came from news";
			rc = NEWSGW_CONV_LOOP;
			goto out;
		}
		if (newsgw_field_in(&f, newsgw_drop_fields) ||
		    newsgw_value_empty(&f))
			continue;
		if (newsgw_field_in(&f, newsgw_rename_fields)) {
			newsgw_append_renamed(hdr, &f);
			continue;
		}
		if (header_name_is(&f, "Message-ID")) {
			if (str_len(msgid) > 0) {
				newsgw_append_renamed(hdr, &f);
				continue;
			}
			newsgw_unfolded(&f, tmp);
			if (nntp_msgid_ok(str_c(tmp), str_len(tmp))) {
				str_set(msgid, str_c(tmp), str_len(tmp));
				str_printf(hdr, "Message-ID: %s\r\n", str_c(msgid));
			} else if (str_len(orig_id) == 0) {
				str_set(orig_id, str_c(tmp), str_len(tmp));
				newsgw_append_renamed(hdr, &f);
			}
			continue;
		}
		if (header_name_is(&f, "From")) {
			if (has_from) {
				newsgw_append_renamed(hdr, &f);
				continue;
			}
			has_from = true;
		} else if (header_name_is(&f, "Subject")) {
			if (has_subject) {
				newsgw_append_renamed(hdr, &f);
				continue;
			}
			has_subject = true;
		} else if (header_name_is(&f, "Date")) {
			if (has_date) {
				newsgw_append_renamed(hdr, &f);
				continue;
			}
			has_date = true;
		}
		newsgw_append_field(hdr, &f);
	}
	if (!has_from) {
		if (opt->envelope_sender == NULL ||
		    opt->envelope_sender[0] == '\0') {
			*why = "no From: and no envelope sender";
			goto out;
		}
		str_printf(hdr, "From: <%s>\r\n", opt->envelope_sender);
	}
	if (!has_subject)
		str_append_cstr(hdr, "Subject: (no subject)\r\n");
	if (!has_date) {
		str_append_cstr(hdr, "Date: ");
		newsgw_date(opt->now, hdr);
		str_append_cstr(hdr, "\r\n");
	}
	if (str_len(msgid) == 0) {
		str_printf(msgid, "<%s.%lld@%s>", opt->qid,
		    (long long)opt->now, opt->identity);
		if (!nntp_msgid_ok(str_c(msgid), str_len(msgid))) {
			*why = "cannot make a valid Message-ID "
			    "(check news_gw_path_identity)";
			goto out;
		}
		str_printf(hdr, "Message-ID: %s\r\n", str_c(msgid));
	}
	str_printf(article, "Path: %s!not-for-mail\r\n", opt->identity);
	str_printf(article, "Newsgroups: %s\r\n", opt->groups);
	str_append_str(article, hdr);
	str_printf(article, "%s: mail-to-news; %s\r\n", NEWSGW_MARKER,
	    opt->identity);
	str_append(article, "\r\n", 2);
	/* the body as it is; skip the mail's own empty line */
	if (hdr_len < len)
		str_append(article, msg + hdr_len, len - hdr_len);
	rc = NEWSGW_CONV_OK;
out:
	str_free(&hdr);
	str_free(&tmp);
	str_free(&orig_id);
	return rc;
}

/* newsgw_path_has - whether identity is one of the '!' entries of Path */
static bool
newsgw_path_has(const char *p, size_t n, const char *identity)
{
	size_t idlen = strlen(identity), i = 0, start, end;

	while (i < n) {
		start = i;
		while (i < n && p[i] != '!')
			i++;
		end = i;
		while (start < end && (p[start] == ' ' || p[start] == '\t'))
			start++;
		while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;
		if (end - start == idlen &&
		    strncasecmp(p + start, identity, idlen) == 0)
			return true;
		i++;
	}
	return false;
}

/* newsgw_article_check - see newsgw.h */
enum newsgw_conv
newsgw_article_check(const char *art, size_t len, const char *identity,
    struct str *msgid, struct str *groups, const char **why)
{
	struct header_iter it;
	struct header_field f;
	struct str *tmp = str_new(0, 0);
	size_t hdr_len = header_block_size(art, len), nfields = 0;
	bool has_id = false, has_path = false, has_from = false,
	    has_groups = false, loop = false;
	enum newsgw_conv rc = NEWSGW_CONV_REJECT;

	header_iter_init(&it, art, hdr_len);
	while (header_iter_next(&it, &f)) {
		if (++nfields > NEWSGW_HEADER_FIELDS_MAX) {
			*why = "too many header fields";
			goto out;
		}
		if (!newsgw_name_ok(&f)) {
			*why = "malformed header field";
			goto out;
		}
		if (!newsgw_lines_ok(&f)) {
			*why = "header line longer than 998 octets";
			goto out;
		}
		if (header_name_is(&f, "Message-ID")) {
			if (has_id) {
				*why = "more than one Message-ID";
				goto out;
			}
			newsgw_unfolded(&f, tmp);
			if (!nntp_msgid_ok(str_c(tmp), str_len(tmp))) {
				*why = "invalid Message-ID";
				goto out;
			}
			if (msgid != NULL)
				str_set(msgid, str_c(tmp), str_len(tmp));
			has_id = true;
		} else if (header_name_is(&f, "Path")) {
			has_path = true;
			newsgw_unfolded(&f, tmp);
			if (newsgw_path_has(str_c(tmp), str_len(tmp), identity))
				loop = true;
		} else if (header_name_is(&f, "From")) {
			has_from = !newsgw_value_empty(&f);
		} else if (header_name_is(&f, "Newsgroups")) {
			newsgw_unfolded(&f, tmp);
			if (str_len(tmp) == 0) {
				*why = "empty Newsgroups";
				goto out;
			}
			if (groups != NULL)
				str_set(groups, str_c(tmp), str_len(tmp));
			has_groups = true;
		} else if (header_name_is(&f, "Control")) {
			*why = "control messages are not gatewayed";
			goto out;
		} else if (header_name_is(&f, NEWSGW_MARKER) &&
		    newsgw_marker_ours(&f, identity, tmp)) {
			loop = true;
		}
	}
	if (!has_id || !has_path || !has_from || !has_groups) {
		*why = !has_id ? "no Message-ID" : !has_path ? "no Path" :
		    !has_from ? "no From" : "no Newsgroups";
		goto out;
	}
	if (loop) {
		*why = "our own Path entry or gateway marker";
		rc = NEWSGW_CONV_LOOP;
		goto out;
	}
	rc = NEWSGW_CONV_OK;
out:
	str_free(&tmp);
	return rc;
}

/* newsgw_list_label_ok - whether group.identity can be a List-Id label */
static bool
newsgw_list_label_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		    *s == '_' || *s == '+'))
			return false;
	return true;
}

/* newsgw_article_to_mail - see newsgw.h */
void
newsgw_article_to_mail(const char *art, size_t len,
    const struct newsgw_n2m *opt, struct str *mail)
{
	struct header_iter it;
	struct header_field f;
	size_t hdr_len = header_block_size(art, len);

	str_clear(mail);
	str_printf(mail, "Received: from %s by %s (Postern news-gw) with NNTP;"
	    "\r\n\t", opt->peer, opt->identity);
	newsgw_date(opt->now, mail);
	str_append_cstr(mail, "\r\n");
	str_printf(mail, "%s: news-to-mail; %s\r\n", NEWSGW_MARKER,
	    opt->identity);
	if (opt->list_group != NULL && newsgw_list_label_ok(opt->list_group) &&
	    newsgw_list_label_ok(opt->identity))
		str_printf(mail, "List-Id: <%s.%s>\r\n", opt->list_group,
		    opt->identity);
	header_iter_init(&it, art, hdr_len);
	while (header_iter_next(&it, &f)) {
		if (header_name_is(&f, "Newsgroups")) {
			str_append_cstr(mail, "X-");
			newsgw_append_field(mail, &f);
			continue;
		}
		if (header_name_is(&f, "List-Id") && opt->list_group != NULL)
			continue;
		if (newsgw_field_in(&f, newsgw_drop_fields) ||
		    newsgw_field_in(&f, newsgw_n2m_drop_fields))
			continue;
		newsgw_append_field(mail, &f);
	}
	str_append(mail, "\r\n", 2);
	if (hdr_len < len)
		str_append(mail, art + hdr_len, len - hdr_len);
}
