/* SPDX-License-Identifier: MIT */
/*
 * cleanup_message - stream the content; process the header block
 *
 * DESCRIPTION
 *	Content arrives in chunks. Until the end of the header block is
 *	known, chunks collect in st->header, which never grows beyond
 *	header_size_limit plus one chunk: past that the message is
 *	rejected (552 5.3.4) and the rest is discarded. The header block
 *	ends at the first empty line, or at the first line that is not a
 *	header field (no "name:" and not a continuation), in which case an
 *	empty line is inserted before it so that the body stays a body.
 *	After the header, chunks go straight to the queue file: memory
 *	does not grow with the message.
 *
 *	Header processing (Postfix cleanup(8)):
 *	  - limits: header_size_limit (552 5.3.4), header_count_limit
 *	    fields (552 5.3.4), hopcount_limit Received: fields (554
 *	    5.4.6, a mail loop);
 *	  - Bcc:, Resent-Bcc:, Content-Length: and Return-Path: are
 *	    removed from every message (as Postfix does); with
 *	    CLEANUP_FLAG_EXTRACT_RCPTS, To:, Cc: and Bcc: give envelope
 *	    recipients first;
 *	  - address rewriting: From:, Sender:, Reply-To: through the
 *	    sender maps and To:, Cc: through the recipient maps; with
 *	    CLEANUP_FLAG_SUBMISSION domainless addresses get @$myorigin.
 *	    A field is rebuilt only if an address in it changed, and left
 *	    as it was if it does not parse or contains a group (XXX groups
 *	    are not rebuilt);
 *	  - with CLEANUP_FLAG_SUBMISSION, missing Message-ID:
 *	    (<ID@$myhostname>), Date: (local time) and From: (the envelope
 *	    sender, with the "fullname" attribute as display name) are
 *	    appended to the header.
 *
 * SEE ALSO
 *	cleanup.c, header.h, address.h
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "alloc.h"
#include "header.h"

#include "cleanup.h"

#define CLEANUP_FOLD_COLUMN	78
#define CLEANUP_LOG_MSGID_MAX	200

/* ------------------------------------------------- end of the header */

/* field_line - does the line start with "name:" (RFC 5322 ftext)? */
static bool
field_line(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 &&
	    p[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* cleanup_header_end - where does the header block end? */
int
cleanup_header_end(const char *p, size_t n, bool at_end, size_t *scan_r,
    size_t *hdr_len_r, size_t *body_r)
{
	size_t pos = *scan_r, end, len;
	const char *eol, *line;

	while (pos < n) {
		eol = memchr(p + pos, '\n', n - pos);
		if (eol == NULL && !at_end)
			break;
		end = eol != NULL ? (size_t)(eol - p) + 1 : n;
		line = p + pos;
		len = end - pos;
		if ((len == 1 && line[0] == '\n') ||
		    (len == 2 && line[0] == '\r' && line[1] == '\n')) {
			*hdr_len_r = pos;
			*body_r = end;
			return 1;
		}
		/* A lone CR at the very end may be half of an empty line. */
		if (len == 1 && line[0] == '\r' && !at_end && eol == NULL)
			break;
		if ((line[0] == ' ' || line[0] == '\t') ? pos == 0 :
		    !field_line(line, len)) {
			*hdr_len_r = pos;
			*body_r = pos;
			return 1;
		}
		pos = end;
	}
	*scan_r = pos;
	if (at_end) {
		*hdr_len_r = n;
		*body_r = n;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------- header processing */

/* put_field_end - make sure out ends with a line end */
static void
put_line_end(struct str *out)
{
	if (str_len(out) > 0 && str_c(out)[str_len(out) - 1] != '\n')
		(void)str_append(out, "\r\n", 2);
}

/* header_extract - envelope recipients from an address header */
static void
header_extract(struct cleanup_state *st, const struct header_field *f)
{
	struct address_list *list = address_list_new();
	struct queue_rcpt r;
	struct str *canon = str_new(128, 0);
	const char *error;
	size_t i;

	(void)address_list_parse(f->value, f->value_len,
	    ADDRESS_LIST_SKIP_BAD | ADDRESS_LIST_UTF8, QUEUE_FILE_RCPT_MAX,
	    list, &error);
	for (i = 0; i < list->count && st->status == CLEANUP_OK; i++) {
		str_clear(canon);
		if (address_canonical(list->items[i].addr, canon) < 0 ||
		    str_len(canon) == 0)
			continue;
		memset(&r, 0, sizeof(r));
		r.address = str_c(canon);
		cleanup_rcpt_add(st, &r);
	}
	str_free(&canon);
	address_list_free(&list);
}

/* header_phrase_ok - may s be an unquoted RFC 5322 phrase? */
static bool
header_phrase_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (strchr("()<>[]:;@\\,.\"", *s) != NULL)
			return false;
	return true;
}

/* header_display - append a display name, quoted only when it must be */
static void
header_display(const char *name, struct str *out)
{
	bool plain = header_phrase_ok(name);
	const char *p;
	char c;

	if (!plain)
		(void)str_append_c(out, '"');
	/* Control octets become spaces: no header injection. */
	for (p = name; *p != '\0'; p++) {
		c = *p;
		if ((unsigned char)c < 32 || c == 127)
			c = ' ';
		if (!plain && (c == '"' || c == '\\'))
			(void)str_append_c(out, '\\');
		(void)str_append_c(out, c);
	}
	if (!plain)
		(void)str_append_c(out, '"');
}

/* header_mailbox - append "display <addr>" or "addr" */
static void
header_mailbox(const struct address_list_item *item, struct str *out)
{
	if (str_len(item->display) == 0) {
		(void)address_canonical(item->addr, out);
		return;
	}
	header_display(str_c(item->display), out);
	(void)str_append(out, " <", 2);
	(void)address_canonical(item->addr, out);
	(void)str_append_c(out, '>');
}

/*
 * header_rewrite - rewrite the addresses of an address header; true and
 * the new field in out if anything changed.
 */
static bool
header_rewrite(struct cleanup_state *st, const struct header_field *f,
    bool recipient, struct str *out)
{
	struct map **maps = recipient ? cleanup_settings.rcpt_maps :
	    cleanup_settings.sender_maps;
	size_t nmaps = recipient ? cleanup_settings.nrcpt_maps :
	    cleanup_settings.nsender_maps;
	bool submission = (st->flags & CLEANUP_FLAG_SUBMISSION) != 0;
	struct address_list *list;
	struct str *canon, *item;
	const char *error;
	bool changed = false;
	size_t i, col;
	int r;

	if (nmaps == 0 && !submission)
		return false;
	if (!recipient && (st->flags & CLEANUP_FLAG_BOUNCE))
		return false;
	list = address_list_new();
	if (address_list_parse(f->value, f->value_len, ADDRESS_LIST_UTF8, 0,
	    list, &error) < 0 || list->count == 0) {
		address_list_free(&list);
		return false;
	}
	for (i = 0; i < list->count; i++) {
		if (str_len(list->items[i].group) > 0) {
			address_list_free(&list);
			return false;
		}
	}
	canon = str_new(128, 0);
	for (i = 0; i < list->count; i++) {
		struct address *a = list->items[i].addr;

		if (str_len(a->domain) == 0 && !submission)
			continue;
		str_clear(canon);
		if (address_canonical(a, canon) < 0)
			continue;
		r = cleanup_addr_rewrite(canon, maps, nmaps, recipient, &error);
		if (r < 0 && errno != EINVAL) {
			cleanup_fail(st, CLEANUP_TEMPFAIL,
			    "4.3.0 header address lookup failed: %s", error);
			break;
		}
		if (r == 1 && address_parse_mailbox(str_c(canon),
		    str_len(canon), ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NO_DOMAIN |
		    ADDRESS_ALLOW_POSTMASTER, a) == ADDRESS_OK)
			changed = true;
	}
	str_free(&canon);
	if (!changed || st->status != CLEANUP_OK) {
		address_list_free(&list);
		return false;
	}
	(void)str_append(out, f->name, f->name_len);
	(void)str_append(out, ": ", 2);
	col = f->name_len + 2;
	item = str_new(128, 0);
	for (i = 0; i < list->count; i++) {
		str_clear(item);
		header_mailbox(&list->items[i], item);
		if (i > 0) {
			if (col + 2 + str_len(item) > CLEANUP_FOLD_COLUMN) {
				(void)str_append(out, ",\r\n\t", 4);
				col = 8;
			} else {
				(void)str_append(out, ", ", 2);
				col += 2;
			}
		}
		(void)str_append_str(out, item);
		col += str_len(item);
	}
	(void)str_append(out, "\r\n", 2);
	str_free(&item);
	address_list_free(&list);
	return true;
}

/* header_date - the Date: value for now, local time */
static void
header_date(struct str *out)
{
	char buf[128];
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z (%Z)",
	    &tm) == 0)
		pst_strlcpy(buf, "Thu, 01 Jan 1970 00:00:00 +0000", sizeof(buf));
	(void)str_printf(out, "Date: %s\r\n", buf);
}

/* header_from - the From: field for the envelope sender */
static void
header_from(struct cleanup_state *st, struct str *out)
{
	(void)str_append_cstr(out, "From: ");
	if (st->fullname != NULL && st->fullname[0] != '\0') {
		header_display(st->fullname, out);
		(void)str_append(out, " <", 2);
	}
	if (str_len(st->sender) == 0)
		(void)str_printf(out, "MAILER-DAEMON@%s",
		    cleanup_settings.myhostname);
	else
		(void)str_append_str(out, st->sender);
	if (st->fullname != NULL && st->fullname[0] != '\0')
		(void)str_append_c(out, '>');
	(void)str_append(out, "\r\n", 2);
}

/* cleanup_header_process - the processed header block */
void
cleanup_header_process(struct cleanup_state *st, const char *hdr, size_t n,
    struct str *out)
{
	struct header_iter it;
	struct header_field f;
	uint64_t count = 0, hops = 0;
	bool has_msgid = false, has_date = false, has_from = false;
	bool extract = (st->flags & CLEANUP_FLAG_EXTRACT_RCPTS) != 0;
	const char *v;
	size_t vn;

	header_iter_init(&it, hdr, n);
	while (st->status == CLEANUP_OK && header_iter_next(&it, &f)) {
		if (++count > cleanup_settings.header_count_limit) {
			cleanup_fail(st, CLEANUP_REJECT,
			    "5.3.4 message header has too many fields");
			break;
		}
		if (header_name_is(&f, "Received") &&
		    ++hops > cleanup_settings.hopcount_limit) {
			cleanup_fail(st, CLEANUP_REJECT,
			    "5.4.6 too many hops (mail loop?)");
			break;
		}
		if (header_name_is(&f, "Bcc")) {
			if (extract)
				header_extract(st, &f);
			continue;
		}
		if (header_name_is(&f, "Resent-Bcc") ||
		    header_name_is(&f, "Content-Length") ||
		    header_name_is(&f, "Return-Path"))
			continue;
		if (header_name_is(&f, "To") || header_name_is(&f, "Cc")) {
			if (extract)
				header_extract(st, &f);
			if (header_rewrite(st, &f, true, out))
				continue;
		} else if (header_name_is(&f, "From") ||
		    header_name_is(&f, "Sender") ||
		    header_name_is(&f, "Reply-To")) {
			has_from |= header_name_is(&f, "From");
			if (header_rewrite(st, &f, false, out))
				continue;
		} else if (header_name_is(&f, "Message-ID")) {
			has_msgid = true;
			v = f.value;
			vn = f.value_len;
			header_trim(&v, &vn);
			str_clear(st->message_id);
			mem_printable(st->message_id, v, vn,
			    CLEANUP_LOG_MSGID_MAX);
		} else if (header_name_is(&f, "Date")) {
			has_date = true;
		}
		(void)str_append(out, hdr + f.offset, f.size);
		put_line_end(out);
	}
	if (st->status != CLEANUP_OK)
		return;
	put_line_end(out);
	if (st->flags & CLEANUP_FLAG_SUBMISSION) {
		if (!has_msgid) {
			str_clear(st->message_id);
			(void)str_printf(st->message_id, "<%s@%s>", st->id,
			    cleanup_settings.myhostname);
			(void)str_printf(out, "Message-ID: %s\r\n",
			    str_c(st->message_id));
		}
		if (!has_date)
			header_date(out);
		if (!has_from)
			header_from(st, out);
	}
	(void)str_append(out, "\r\n", 2);
}

/* ------------------------------------------------- content */

/* content_write - append octets to the queue file */
static void
content_write(struct cleanup_state *st, const char *p, size_t n)
{
	const char *error;

	if (n == 0 || st->status != CLEANUP_OK)
		return;
	if (queue_file_write_content(st->w, p, n, &error) < 0)
		cleanup_fail(st, CLEANUP_TEMPFAIL,
		    "4.3.0 queue file write error: %s", error);
	else
		st->written += n;
}

/* header_done - the header block is complete: process it, go on with the body */
static void
header_done(struct cleanup_state *st, size_t hdr_len, size_t body)
{
	struct str *out;

	if (hdr_len > cleanup_settings.header_size_limit) {
		cleanup_fail(st, CLEANUP_REJECT,
		    "5.3.4 message header size exceeds limit");
	} else {
		out = str_new(hdr_len + 512, 0);
		cleanup_header_process(st, str_c(st->header), hdr_len, out);
		content_write(st, str_c(out), str_len(out));
		str_free(&out);
		content_write(st, str_c(st->header) + body,
		    str_len(st->header) - body);
	}
	st->in_header = false;
	str_free(&st->header);
}

/* cleanup_content - take the next content octets */
void
cleanup_content(struct cleanup_state *st, const char *p, size_t n)
{
	size_t hdr_len, body;

	st->size += n;
	if (cleanup_settings.message_size_limit > 0 &&
	    st->size > cleanup_settings.message_size_limit)
		cleanup_fail(st, CLEANUP_REJECT,
		    "5.3.4 message file too big");
	if (st->status != CLEANUP_OK) {
		str_free(&st->header);
		return;
	}
	if (!st->in_header) {
		content_write(st, p, n);
		return;
	}
	if (st->header == NULL)
		st->header = str_new(MIN(n + 1024, (size_t)65536), 0);
	(void)str_append(st->header, p, n);
	if (cleanup_header_end(str_c(st->header), str_len(st->header), false,
	    &st->header_scan, &hdr_len, &body) == 1) {
		header_done(st, hdr_len, body);
	} else if (str_len(st->header) > cleanup_settings.header_size_limit + 2) {
		/* +2: the empty line that would end it is not header. */
		cleanup_fail(st, CLEANUP_REJECT,
		    "5.3.4 message header size exceeds limit");
		str_free(&st->header);
	}
}

/* cleanup_content_end - the end of the message */
void
cleanup_content_end(struct cleanup_state *st)
{
	size_t hdr_len, body;

	if (!st->in_header || st->status != CLEANUP_OK)
		return;
	if (st->header == NULL)
		st->header = str_new(64, 0);
	(void)cleanup_header_end(str_c(st->header), str_len(st->header), true,
	    &st->header_scan, &hdr_len, &body);
	header_done(st, hdr_len, body);
}
