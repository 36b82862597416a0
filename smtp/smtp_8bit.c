/* SPDX-License-Identifier: MIT */
/*
 * smtp_8bit - 8BITMIME downgrade to quoted-printable (RFC 6152 3)
 *
 * DESCRIPTION
 *	A message marked BODY=8BITMIME cannot go as it is to a server that
 *	does not offer 8BITMIME. smtp_8bit_downgrade() rewrites it MIME-
 *	aware, as Postfix does: each leaf part whose body holds 8-bit octets
 *	gets its Content-Transfer-Encoding replaced by quoted-printable and
 *	its body encoded (CRLF line breaks kept, soft breaks before 76
 *	columns, trailing white space protected); multipart bodies are
 *	walked part by part (at most SMTP_8BIT_DEPTH levels), and
 *	message/rfc822 parts are converted inside. A top-level message
 *	without MIME headers gets "MIME-Version: 1.0" so that the new
 *	Content-Transfer-Encoding means something. Headers themselves are
 *	left alone (8-bit header text is not MIME's business).
 *
 *	Input is the message as in the queue file (CRLF). Output is
 *	appended to out. It never fails: what it cannot parse it copies.
 *
 * SEE ALSO
 *	RFC 6152, RFC 2045 6.7, Postfix mime_state.c
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "smtp.h"

#define SMTP_8BIT_DEPTH	20

static void smtp_8bit_entity(const char *p, size_t len, struct str *out,
    bool top, bool digest, int depth);

/* smtp_8bit_has - any octet >= 0x80 (or NUL) in p? */
static bool
smtp_8bit_has(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80 || p[i] == '\0')
			return true;
	return false;
}

/* smtp_8bit_qp - quoted-printable of a CRLF text body */
static void
smtp_8bit_qp(const char *p, size_t len, struct str *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, col = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)p[i];
		bool eol = false;
		size_t w;

		if (ch == '\r' && i + 1 < len && p[i + 1] == '\n') {
			str_append(out, "\r\n", 2);
			i += 2;
			col = 0;
			continue;
		}
		/* white space right before a line break must be encoded */
		if ((ch == ' ' || ch == '\t') && (i + 1 == len ||
		    (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')))
			eol = true;
		w = (ch >= 33 && ch <= 126 && ch != '=') ||
		    ((ch == ' ' || ch == '\t') && !eol) ? 1 : 3;
		if (col + w > 75) {
			str_append(out, "=\r\n", 3);
			col = 0;
		}
		if (w == 1) {
			str_append_c(out, (char)ch);
		} else {
			str_append_c(out, '=');
			str_append_c(out, hex[ch >> 4]);
			str_append_c(out, hex[ch & 15]);
		}
		col += w;
		i++;
	}
}

/*
 * smtp_8bit_header - the value of header name (unfolded, in hbuf) or
 * NULL; hdrs is the header block
 */
static bool
smtp_8bit_header(const char *hdrs, size_t len, const char *name,
    struct str *value)
{
	size_t n = strlen(name), i = 0;

	str_clear(value);
	while (i < len) {
		size_t end = i;

		while (end < len && hdrs[end] != '\n')
			end++;
		if (end - i > n && strncasecmp(hdrs + i, name, n) == 0 &&
		    hdrs[i + n] == ':') {
			size_t j = i + n + 1;

			for (;;) {
				for (; j < end; j++)
					if (hdrs[j] != '\r')
						str_append_c(value, hdrs[j]);
				if (end + 1 < len && (hdrs[end + 1] == ' ' ||
				    hdrs[end + 1] == '\t')) {
					j = end + 1;
					end = j;
					while (end < len && hdrs[end] != '\n')
						end++;
					continue;
				}
				break;
			}
			return true;
		}
		i = end + 1;
	}
	return false;
}

/* smtp_8bit_param - a Content-Type parameter (boundary) */
static bool
smtp_8bit_param(const char *ct, const char *name, struct str *value)
{
	size_t n = strlen(name);
	const char *p = ct;

	str_clear(value);
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, n) == 0 && p[n] == '=') {
			p += n + 1;
			if (*p == '"') {
				p++;
				while (*p != '\0' && *p != '"')
					str_append_c(value, *p++);
			} else {
				while (*p != '\0' && *p != ';' && *p != ' ' &&
				    *p != '\t')
					str_append_c(value, *p++);
			}
			return str_len(value) > 0;
		}
	}
	return false;
}

/* smtp_8bit_copy_headers - the header block without CTE lines */
static void
smtp_8bit_copy_headers(const char *hdrs, size_t len, struct str *out,
    bool drop_cte)
{
	size_t i = 0;
	bool dropping = false;

	while (i < len) {
		size_t end = i;

		while (end < len && hdrs[end] != '\n')
			end++;
		if (end < len)
			end++;
		if (hdrs[i] == ' ' || hdrs[i] == '\t') {
			if (!dropping)
				str_append(out, hdrs + i, end - i);
		} else {
			dropping = drop_cte && end - i > 26 &&
			    strncasecmp(hdrs + i, "Content-Transfer-Encoding:",
			    26) == 0;
			if (!dropping)
				str_append(out, hdrs + i, end - i);
		}
		i = end;
	}
}

/* smtp_8bit_multipart - walk the parts of a multipart body */
static void
smtp_8bit_multipart(const char *p, size_t len, const char *boundary,
    struct str *out, bool digest, int depth)
{
	size_t blen = strlen(boundary), i = 0, part = 0;
	bool in_part = false;

	while (i < len) {
		size_t end = i;
		bool delim;

		while (end < len && p[end] != '\n')
			end++;
		if (end < len)
			end++;
		delim = end - i >= blen + 2 && p[i] == '-' && p[i + 1] == '-' &&
		    memcmp(p + i + 2, boundary, blen) == 0;
		if (delim) {
			if (in_part) {
				/* the CRLF before the delimiter belongs to it */
				size_t plen = i - part;

				if (plen >= 2 && p[i - 2] == '\r')
					plen -= 2;
				smtp_8bit_entity(p + part, plen, out, false,
				    digest, depth + 1);
				str_append(out, p + part + plen,
				    i - part - plen);
			}
			str_append(out, p + i, end - i);
			if (end - i >= blen + 4 && p[i + blen + 2] == '-' &&
			    p[i + blen + 3] == '-') {
				/* close delimiter: the epilogue as it is */
				str_append(out, p + end, len - end);
				return;
			}
			in_part = true;
			part = end;
		} else if (!in_part) {
			str_append(out, p + i, end - i);	/* preamble */
		}
		i = end;
	}
	if (in_part)
		smtp_8bit_entity(p + part, len - part, out, false, digest,
		    depth + 1);
}

/* smtp_8bit_entity - one entity (headers + body) */
static void
smtp_8bit_entity(const char *p, size_t len, struct str *out, bool top,
    bool digest, int depth)
{
	struct str *ct = str_new(128, 0), *cte = str_new(32, 0);
	struct str *b = str_new(64, 0);
	size_t hlen, boff;
	bool has_ct;
	const char *sep;

	/* the header block ends at the first empty line */
	if (len >= 2 && p[0] == '\r' && p[1] == '\n') {
		hlen = 0;
		boff = 2;
	} else if ((sep = memmem(p, len, "\r\n\r\n", 4)) != NULL) {
		hlen = (size_t)(sep - p) + 2;
		boff = hlen + 2;
	} else {
		hlen = len;
		boff = len;
	}
	if (depth > SMTP_8BIT_DEPTH || !smtp_8bit_has(p + boff, len - boff)) {
		str_append(out, p, len);
		goto out;
	}
	has_ct = smtp_8bit_header(p, hlen, "Content-Type", ct);
	(void)smtp_8bit_header(p, hlen, "Content-Transfer-Encoding", cte);
	if (has_ct && strncasecmp(str_c(ct) + strspn(str_c(ct), " \t"),
	    "multipart/", 10) == 0 && smtp_8bit_param(str_c(ct), "boundary",
	    b)) {
		str_append(out, p, boff);
		smtp_8bit_multipart(p + boff, len - boff, str_c(b), out,
		    strncasecmp(str_c(ct) + strspn(str_c(ct), " \t"),
		    "multipart/digest", 16) == 0, depth);
		goto out;
	}
	if ((has_ct && strncasecmp(str_c(ct) + strspn(str_c(ct), " \t"),
	    "message/rfc822", 14) == 0) || (!has_ct && digest)) {
		str_append(out, p, boff);
		smtp_8bit_entity(p + boff, len - boff, out, false, false,
		    depth + 1);
		goto out;
	}
	/* a leaf with 8-bit octets: quoted-printable */
	if (top && !smtp_8bit_header(p, hlen, "MIME-Version", b))
		str_append_cstr(out, "MIME-Version: 1.0\r\n");
	smtp_8bit_copy_headers(p, hlen, out, true);
	str_append_cstr(out, "Content-Transfer-Encoding: quoted-printable\r\n");
	str_append(out, "\r\n", 2);
	smtp_8bit_qp(p + boff, len - boff, out);
out:
	str_free(&b);
	str_free(&cte);
	str_free(&ct);
}

/* smtp_8bit_downgrade - see smtp.h */
void
smtp_8bit_downgrade(const char *msg, size_t len, struct str *out)
{
	smtp_8bit_entity(msg, len, out, true, false, 0);
}
