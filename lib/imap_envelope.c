/* SPDX-License-Identifier: MIT */
/*
 * imap_envelope - IMAP ENVELOPE, BODY and BODYSTRUCTURE strings
 *
 * DESCRIPTION
 *	See imap_envelope.h. Output goes through a small writer that
 *	remembers the first failed append (out at its maximum) and then
 *	appends nothing more, so a failed call never leaves a string that
 *	looks complete.
 *
 *	Compared with Dovecot 2.3 (checked against its imap on the same
 *	messages, see lib/testdata/mime/):
 *	  - defaults are upper case ("TEXT" "PLAIN" ("CHARSET" "US-ASCII"),
 *	    "7BIT"), as in RFC 3501's examples; Dovecot writes lower case;
 *	  - a text part without a charset parameter gets "CHARSET"
 *	    "US-ASCII" appended to its parameters, as Dovecot does;
 *	  - a Content-Type without type "/" subtype is the default
 *	    text/plain (RFC 2045 5.2); Dovecot keeps a lone type ("text" "");
 *	  - sizes are of the bytes as stored; Dovecot counts a bare LF as
 *	    two bytes (its virtual CRLF size);
 *	  - strings are quoted whenever they can be; Dovecot sends a literal
 *	    for a subject it had to clean up (folds, TABs).
 *	Structure the same as Dovecot's: a multipart with no parts shows one
 *	empty text/plain part; an encoded or unparsed message/rfc822 shows
 *	an all-NIL envelope and an empty text/plain body; RFC 2231
 *	parameters show joined but undecoded, under "name*".
 *
 * SEE ALSO
 *	RFC 3501 section 7.4.2, RFC 9051 section 7.5.2, RFC 2231.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "header_address.h"
#include "imap_envelope.h"
#include "mime.h"
#include "str.h"

/* Addresses kept per ENVELOPE address field */
#define IMAP_ENVELOPE_MAX_ADDRESSES	1000

enum imap_envelope_field {
	ENV_DATE,
	ENV_SUBJECT,
	ENV_FROM,
	ENV_SENDER,
	ENV_REPLY_TO,
	ENV_TO,
	ENV_CC,
	ENV_BCC,
	ENV_IN_REPLY_TO,
	ENV_MESSAGE_ID,
	ENV_COUNT
};

static const char *const imap_envelope_names[ENV_COUNT] = {
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
	"in-reply-to", "message-id",
};

struct imap_envelope_writer {
	struct str *out;
	struct str *tmp;	/* scratch for cleaned values, or NULL */
	int error;
};

/* imap_envelope_put - append p/n unless an append already failed */
static void
imap_envelope_put(struct imap_envelope_writer *w, const char *p, size_t n)
{
	if (w->error == 0 && str_append(w->out, p, n) < 0)
		w->error = -1;
}

/* imap_envelope_puts - append a C string */
static void
imap_envelope_puts(struct imap_envelope_writer *w, const char *s)
{
	imap_envelope_put(w, s, strlen(s));
}

/* imap_envelope_string - append an IMAP quoted string or literal */
int
imap_envelope_string(struct str *out, const char *p, size_t n)
{
	size_t i, start = str_len(out);
	char *d, *w;

	/* Try a quoted string in one pass; at most every byte escaped. */
	if ((d = w = str_reserve(out, n * 2 + 2)) == NULL)
		goto fail;
	*w++ = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == 0 || c == '\r' || c == '\n' || c >= 0x80)
			break;
		if (c == '"' || c == '\\')
			*w++ = '\\';
		*w++ = (char)c;
	}
	if (i == n) {
		*w++ = '"';
		str_commit(out, (size_t)(w - d));
		return 0;
	}
	/* Not quotable: a literal. */
	if (str_printf(out, "{%zu}\r\n", n) < 0 ||
	    str_append(out, p, n) < 0)
		goto fail;
	/* RFC 3501 literals (not literal8) may not hold NUL. */
	d = str_data(out) + str_len(out) - n;
	for (i = 0; i < n; i++) {
		if (d[i] == '\0')
			d[i] = (char)0x80;
	}
	return 0;
fail:
	str_truncate(out, start);
	errno = E2BIG;
	return -1;
}

/* imap_envelope_nstring - NIL or an IMAP string */
int
imap_envelope_nstring(struct str *out, const char *p)
{
	if (p == NULL)
		return str_append(out, "NIL", 3);
	return imap_envelope_string(out, p, strlen(p));
}

/* imap_envelope_wstring - an IMAP string through the writer */
static void
imap_envelope_wstring(struct imap_envelope_writer *w, const char *p, size_t n)
{
	if (w->error == 0 && imap_envelope_string(w->out, p, n) < 0)
		w->error = -1;
}

/* imap_envelope_wnstring - NIL or an IMAP string through the writer */
static void
imap_envelope_wnstring(struct imap_envelope_writer *w, const char *p)
{
	if (p == NULL)
		imap_envelope_puts(w, "NIL");
	else
		imap_envelope_wstring(w, p, strlen(p));
}

/*
 * imap_envelope_human - append p/n to tmp unfolded, with TAB made SP,
 * runs of white space made one SP, and trimmed (subjects, names).
 */
static void
imap_envelope_human(struct str *tmp, const char *p, size_t n)
{
	size_t i;
	bool space = false;
	char *start, *w;

	str_clear(tmp);
	if ((start = w = str_reserve(tmp, n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == ' ' || c == '\t') {
			space = true;
			continue;
		}
		if (space && w > start)
			*w++ = ' ';
		space = false;
		*w++ = c;
	}
	str_commit(tmp, (size_t)(w - start));
}

/* imap_envelope_addresses - an ENVELOPE address list, or NIL */
static void
imap_envelope_addresses(struct imap_envelope_writer *w,
    const struct header_address *a)
{
	if (a == NULL) {
		imap_envelope_puts(w, "NIL");
		return;
	}
	imap_envelope_puts(w, "(");
	for (; a != NULL; a = a->next) {
		imap_envelope_puts(w, "(");
		if (a->name != NULL) {
			imap_envelope_human(w->tmp, a->name, strlen(a->name));
			imap_envelope_wstring(w, str_c(w->tmp),
			    str_len(w->tmp));
		} else {
			imap_envelope_puts(w, "NIL");
		}
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, a->route);
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, a->mailbox);
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, a->domain);
		imap_envelope_puts(w, ")");
	}
	imap_envelope_puts(w, ")");
}

/* imap_envelope_do - the ENVELOPE of the header block p/n */
static void
imap_envelope_do(struct imap_envelope_writer *w, const char *p, size_t n)
{
	struct header_field fields[ENV_COUNT], f;
	struct header_address *addrs[ENV_COUNT];
	bool seen[ENV_COUNT];
	struct header_iter it;
	unsigned int i;
	const char *v;
	size_t vn;

	memset(seen, 0, sizeof(seen));
	memset(addrs, 0, sizeof(addrs));
	header_iter_init(&it, p, n);
	while (header_iter_next(&it, &f)) {
		if (f.no_colon)
			continue;
		for (i = 0; i < ENV_COUNT; i++) {
			if (!seen[i] && header_name_is(&f,
			    imap_envelope_names[i])) {
				seen[i] = true;
				fields[i] = f;
				break;
			}
		}
	}
	for (i = ENV_FROM; i <= ENV_BCC; i++) {
		if (seen[i])
			addrs[i] = header_address_parse(fields[i].value,
			    fields[i].value_len,
			    IMAP_ENVELOPE_MAX_ADDRESSES);
	}

	imap_envelope_puts(w, "(");
	for (i = 0; i < ENV_COUNT; i++) {
		if (i > 0)
			imap_envelope_puts(w, " ");
		if (i >= ENV_FROM && i <= ENV_BCC) {
			const struct header_address *a = addrs[i];

			/* RFC 3501: absent or empty Sender/Reply-To = From. */
			if (a == NULL && (i == ENV_SENDER ||
			    i == ENV_REPLY_TO))
				a = addrs[ENV_FROM];
			imap_envelope_addresses(w, a);
			continue;
		}
		if (!seen[i]) {
			imap_envelope_puts(w, "NIL");
			continue;
		}
		v = fields[i].value;
		vn = fields[i].value_len;
		if (i == ENV_SUBJECT) {
			imap_envelope_human(w->tmp, v, vn);
		} else {
			str_clear(w->tmp);
			(void)header_unfold(v, vn, w->tmp);
		}
		imap_envelope_wstring(w, str_c(w->tmp), str_len(w->tmp));
	}
	imap_envelope_puts(w, ")");
	for (i = 0; i < ENV_COUNT; i++)
		header_address_free(&addrs[i]);
}

/* imap_envelope_write - append the ENVELOPE of a header block */
int
imap_envelope_write(struct str *out, const char *p, size_t n)
{
	struct imap_envelope_writer w = { out, str_new(128, 0), 0 };
	size_t start = str_len(out);

	imap_envelope_do(&w, p, n);
	str_free(&w.tmp);
	if (w.error != 0) {
		str_truncate(out, start);
		errno = E2BIG;
	}
	return w.error;
}

/* imap_envelope_params - a parameter list, or NIL */
static void
imap_envelope_params(struct imap_envelope_writer *w,
    const struct mime_param *params, unsigned int count, bool add_charset)
{
	unsigned int i;

	if (count == 0 && !add_charset) {
		imap_envelope_puts(w, "NIL");
		return;
	}
	imap_envelope_puts(w, "(");
	for (i = 0; i < count; i++) {
		if (i > 0)
			imap_envelope_puts(w, " ");
		if (params[i].extended) {
			str_clear(w->tmp);
			(void)str_append_cstr(w->tmp, params[i].name);
			(void)str_append_c(w->tmp, '*');
			imap_envelope_wstring(w, str_c(w->tmp),
			    str_len(w->tmp));
		} else {
			imap_envelope_wnstring(w, params[i].name);
		}
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, params[i].value);
	}
	if (add_charset)
		imap_envelope_puts(w, count > 0 ? " \"CHARSET\" \"US-ASCII\"" :
		    "\"CHARSET\" \"US-ASCII\"");
	imap_envelope_puts(w, ")");
}

/* imap_envelope_ext - disposition, language and location */
static void
imap_envelope_ext(struct imap_envelope_writer *w, const struct mime_part *part)
{
	unsigned int i;

	imap_envelope_puts(w, " ");
	if (part->disposition == NULL) {
		imap_envelope_puts(w, "NIL");
	} else {
		imap_envelope_puts(w, "(");
		imap_envelope_wnstring(w, part->disposition);
		imap_envelope_puts(w, " ");
		imap_envelope_params(w, part->disposition_params,
		    part->disposition_param_count, false);
		imap_envelope_puts(w, ")");
	}
	imap_envelope_puts(w, " ");
	if (part->language_count == 0) {
		imap_envelope_puts(w, "NIL");
	} else {
		imap_envelope_puts(w, "(");
		for (i = 0; i < part->language_count; i++) {
			if (i > 0)
				imap_envelope_puts(w, " ");
			imap_envelope_wnstring(w, part->languages[i]);
		}
		imap_envelope_puts(w, ")");
	}
	imap_envelope_puts(w, " ");
	imap_envelope_wnstring(w, part->location);
}

#define IMAP_ENVELOPE_EMPTY_BODY \
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0"
#define IMAP_ENVELOPE_EMPTY_ENVELOPE \
	"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

/* imap_envelope_empty_body - the stand-in for a missing body part */
static void
imap_envelope_empty_body(struct imap_envelope_writer *w, bool extended)
{
	imap_envelope_puts(w, IMAP_ENVELOPE_EMPTY_BODY);
	imap_envelope_puts(w, extended ? " NIL NIL NIL NIL)" : ")");
}

/* imap_envelope_body - BODY or BODYSTRUCTURE of one part */
static void
imap_envelope_body(struct imap_envelope_writer *w,
    const struct mime_message *msg, const struct mime_part *part,
    bool extended)
{
	const struct mime_part *c;
	const char *data;
	size_t size;
	bool is_text;

	data = mime_message_data(msg, &size);
	imap_envelope_puts(w, "(");
	if ((part->flags & MIME_PART_MULTIPART) != 0) {
		if (part->children == NULL)
			imap_envelope_empty_body(w, extended);
		for (c = part->children; c != NULL; c = c->next)
			imap_envelope_body(w, msg, c, extended);
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, part->subtype);
		if (extended) {
			imap_envelope_puts(w, " ");
			imap_envelope_params(w, part->params,
			    part->param_count, false);
			imap_envelope_ext(w, part);
		}
		imap_envelope_puts(w, ")");
		return;
	}
	is_text = (part->flags & MIME_PART_TEXT) != 0;
	if (part->type == NULL) {
		imap_envelope_puts(w, "\"TEXT\" \"PLAIN\" ");
		imap_envelope_params(w, NULL, 0, true);
	} else {
		imap_envelope_wnstring(w, part->type);
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, part->subtype);
		imap_envelope_puts(w, " ");
		imap_envelope_params(w, part->params, part->param_count,
		    is_text && mime_part_param(part, "charset", false) ==
		    NULL);
	}
	imap_envelope_puts(w, " ");
	imap_envelope_wnstring(w, part->id);
	imap_envelope_puts(w, " ");
	imap_envelope_wnstring(w, part->description);
	imap_envelope_puts(w, " ");
	if (part->encoding == NULL)
		imap_envelope_puts(w, "\"7BIT\"");
	else
		imap_envelope_wnstring(w, part->encoding);
	if (w->error == 0 && str_printf(w->out, " %zu", part->body_size) < 0)
		w->error = -1;
	if (part->type != NULL && strcasecmp(part->type, "message") == 0 &&
	    strcasecmp(part->subtype, "rfc822") == 0) {
		imap_envelope_puts(w, " ");
		if ((part->flags & MIME_PART_MESSAGE) != 0) {
			c = part->children;
			imap_envelope_do(w, data + c->hdr_offset, c->hdr_size);
			imap_envelope_puts(w, " ");
			imap_envelope_body(w, msg, c, extended);
		} else {
			imap_envelope_puts(w, IMAP_ENVELOPE_EMPTY_ENVELOPE " ");
			imap_envelope_empty_body(w, extended);
		}
		is_text = true;		/* the line count follows */
	}
	if (is_text && w->error == 0 &&
	    str_printf(w->out, " %zu", part->body_lines) < 0)
		w->error = -1;
	if (extended) {
		imap_envelope_puts(w, " ");
		imap_envelope_wnstring(w, part->md5);
		imap_envelope_ext(w, part);
	}
	imap_envelope_puts(w, ")");
}

/* imap_envelope_bodystructure - BODY or BODYSTRUCTURE */
int
imap_envelope_bodystructure(struct str *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended)
{
	struct imap_envelope_writer w = { out, str_new(128, 0), 0 };
	size_t start = str_len(out);

	imap_envelope_body(&w, msg, part, extended);
	str_free(&w.tmp);
	if (w.error != 0) {
		str_truncate(out, start);
		errno = E2BIG;
	}
	return w.error;
}

/* imap_envelope_message - parse and produce all three strings */
int
imap_envelope_message(const char *p, size_t n,
    const struct mime_limits *limits, struct str *envelope,
    struct str *body, struct str *bodystructure)
{
	struct mime_message *msg = mime_parse(p, n, limits);
	const struct mime_part *root = mime_message_root(msg);
	int ret = 0;

	if (envelope != NULL &&
	    imap_envelope_write(envelope, p + root->hdr_offset,
	    root->hdr_size) < 0)
		ret = -1;
	if (ret == 0 && body != NULL &&
	    imap_envelope_bodystructure(body, msg, root, false) < 0)
		ret = -1;
	if (ret == 0 && bodystructure != NULL &&
	    imap_envelope_bodystructure(bodystructure, msg, root, true) < 0)
		ret = -1;
	mime_message_free(&msg);
	return ret;
}
