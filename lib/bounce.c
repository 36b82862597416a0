/* SPDX-License-Identifier: MIT */
/*
 * bounce - build RFC 3464 delivery status notifications
 *
 * DESCRIPTION
 *	See bounce.h. The DSN is made in memory (its size is bounded by the
 *	report plus $bounce_size_limit of original content) with CRLF line
 *	ends. Text from outside (reply text, addresses) is made printable
 *	and cut to keep every line under 998 octets; long Diagnostic-Code
 *	fields are folded.
 *
 * SEE ALSO
 *	RFC 3464 (delivery-status), RFC 3461 (DSN SMTP extension), RFC 6522
 *	(multipart/report), Postfix src/bounce/
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bounce.h"

#define BOUNCE_CHUNK		(64 * 1024)
#define BOUNCE_FIELD_MAX	900	/* text octets per field before folding */
#define BOUNCE_FOLD		76

static const char *const bounce_actions[] = {
	"failed", "delayed", "delivered", "relayed", "expanded",
};

const char *
bounce_action_str(enum bounce_action a)
{
	if ((unsigned)a >= N_ELEMENTS(bounce_actions))
		return "failed";
	return bounce_actions[a];
}

/* bounce_date - RFC 5322 date */
void
bounce_date(time_t t, struct str *out)
{
	char buf[64];
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		buf[0] = '\0';
	str_append_cstr(out, buf);
}

/* bounce_clean - printable ASCII only, capped (for header-ish fields) */
static void
bounce_clean(struct str *out, const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0' && n < max; s++, n++) {
		unsigned char c = (unsigned char)*s;

		str_append_c(out, c >= 32 && c < 127 ? (char)c : '?');
	}
}

/* bounce_field - "Name: value" folded at spaces, CRLF */
static void
bounce_field(struct str *out, const char *name, const char *value)
{
	struct str *v = str_new(128, 0);
	size_t col, i, len;

	bounce_clean(v, value, BOUNCE_FIELD_MAX);
	str_printf(out, "%s:", name);
	col = strlen(name) + 1;
	len = str_len(v);
	i = 0;
	while (i < len) {
		size_t j = i;

		/* the next word, with its leading spaces */
		while (j < len && str_c(v)[j] == ' ')
			j++;
		while (j < len && str_c(v)[j] != ' ')
			j++;
		if (col + (j - i) > BOUNCE_FOLD && col > strlen(name) + 1 &&
		    str_c(v)[i] == ' ') {
			str_append(out, "\r\n", 2);
			col = 0;
		}
		if (i == 0 && str_c(v)[0] != ' ') {
			str_append_c(out, ' ');
			col++;
		}
		str_append(out, str_c(v) + i, j - i);
		col += j - i;
		i = j;
	}
	str_append(out, "\r\n", 2);
	str_free(&v);
}

/* bounce_read_original - the original, or its header section, into out */
static int
bounce_read_original(const struct bounce_info *info, bool headers_only,
    struct str *out, const char **error_r)
{
	char *buf = xmalloc(BOUNCE_CHUNK);
	uint64_t off = 0, limit;
	size_t start = str_len(out);
	int state = 0;		/* CR LF CR LF matcher for headers_only */

	limit = headers_only ? info->size_limit : info->content_length;
	while (off < info->content_length) {
		ssize_t n = info->read(info->read_ctx, buf, BOUNCE_CHUNK, off);
		size_t i, take;

		if (n <= 0) {
			free(buf);
			str_truncate(out, start);
			*error_r = "cannot read the original message";
			return -1;
		}
		take = (size_t)n;
		if (headers_only) {
			for (i = 0; i < (size_t)n; i++) {
				char c = buf[i];

				if ((state == 0 || state == 2) && c == '\r')
					state++;
				else if ((state == 1 || state == 3) && c == '\n')
					state++;
				else if (c == '\n' && state == 1)
					state = 2;
				else
					state = c == '\r' ? 1 : 0;
				if (state == 4) {
					take = i + 1;
					break;
				}
			}
		}
		if (off + take > limit)
			take = (size_t)(limit - off);
		str_append(out, buf, take);
		off += take;
		if (state == 4 || off >= limit)
			break;
	}
	free(buf);
	if (headers_only) {
		/* end on a line boundary, without the blank line */
		const char *p = str_c(out) + start;
		size_t len = str_len(out) - start;

		while (len > 0 && p[len - 1] != '\n')
			len--;
		if (len >= 4 && memcmp(p + len - 4, "\r\n\r\n", 4) == 0)
			len -= 2;
		str_truncate(out, start + len);
	}
	if (str_len(out) > start && str_c(out)[str_len(out) - 1] != '\n')
		str_append(out, "\r\n", 2);
	return 0;
}

/* bounce_build - see bounce.h */
int
bounce_build(const struct bounce_info *info, const struct bounce_rcpt *rcpts,
    size_t n, struct str *out, enum smtp_body *body_r, const char **error_r)
{
	struct str *boundary = str_new(64, 0), *t = str_new(256, 0);
	enum bounce_action kind = n > 0 ? rcpts[0].action : BOUNCE_FAILED;
	bool headers_only, eightbit = false;
	const char *subject;
	size_t i, start = str_len(out);

	for (i = 0; i < n; i++)
		if (rcpts[i].action == BOUNCE_FAILED)
			kind = BOUNCE_FAILED;
	if (kind != BOUNCE_FAILED)
		for (i = 0; i < n; i++)
			if (rcpts[i].action == BOUNCE_DELAYED)
				kind = BOUNCE_DELAYED;
	switch (kind) {
	case BOUNCE_FAILED:
		subject = "Undelivered Mail Returned to Sender";
		break;
	case BOUNCE_DELAYED:
		subject = "Delayed Mail (still being retried)";
		break;
	default:
		subject = "Successful Mail Delivery Report";
		break;
	}
	headers_only = kind != BOUNCE_FAILED || info->ret == SMTP_RET_HDRS ||
	    info->content_length > info->size_limit ||
	    info->body == SMTP_BODY_BINARYMIME;
	if (!headers_only && info->body == SMTP_BODY_8BITMIME)
		eightbit = true;

	str_printf(boundary, "%s.%lld/%s", info->queue_id,
	    (long long)info->now, info->reporting_mta);

	/* header */
	str_printf(out, "From: %s (Mail Delivery System)\r\n", info->from);
	str_printf(out, "To: <%s>\r\n", info->to);
	str_printf(out, "Subject: %s\r\n", subject);
	str_append_cstr(out, "Date: ");
	bounce_date(info->now, out);
	str_append(out, "\r\n", 2);
	str_printf(out, "Message-ID: <%s>\r\n", info->message_id);
	str_append_cstr(out, "Auto-Submitted: auto-replied\r\n");
	str_append_cstr(out, "MIME-Version: 1.0\r\n");
	str_printf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
	    str_c(boundary));
	str_printf(out, "Content-Transfer-Encoding: %s\r\n",
	    eightbit ? "8bit" : "7bit");
	str_append_cstr(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	/* the human part */
	str_printf(out, "--%s\r\n", str_c(boundary));
	str_append_cstr(out, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	str_printf(out, "This is the mail system at host %s.\r\n\r\n",
	    info->reporting_mta);
	if (kind == BOUNCE_FAILED)
		str_append_cstr(out, "I'm sorry to have to inform you that "
		    "your message could not\r\nbe delivered to one or more "
		    "recipients. It's attached below.\r\n\r\n");
	else if (kind == BOUNCE_DELAYED)
		str_append_cstr(out, "Your message could not be delivered "
		    "yet to one or more recipients.\r\nDelivery will be "
		    "retried; you do not need to resend it.\r\n\r\n");
	else
		str_append_cstr(out, "Your message was successfully "
		    "delivered to the destination(s)\r\nlisted below.\r\n\r\n");
	for (i = 0; i < n; i++) {
		str_clear(t);
		bounce_clean(t, rcpts[i].address, 300);
		str_printf(out, "<%s>: ", str_c(t));
		str_clear(t);
		bounce_clean(t, rcpts[i].diag != NULL ? rcpts[i].diag : "",
		    BOUNCE_FIELD_MAX);
		str_printf(out, "%s\r\n\r\n", str_c(t));
	}

	/* the machine part */
	str_printf(out, "--%s\r\n", str_c(boundary));
	str_append_cstr(out, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	str_append_cstr(out, "Reporting-MTA: dns; ");
	bounce_clean(out, info->reporting_mta, 255);
	str_append(out, "\r\n", 2);
	bounce_field(out, "X-Postern-Queue-ID", info->queue_id);
	if (info->orig_sender != NULL) {
		str_clear(t);
		str_printf(t, "rfc822; %s", info->orig_sender);
		bounce_field(out, "X-Postern-Sender", str_c(t));
	}
	if (info->envid != NULL)
		bounce_field(out, "Original-Envelope-Id", info->envid);
	str_clear(t);
	bounce_date(info->arrival.tv_sec, t);
	bounce_field(out, "Arrival-Date", str_c(t));
	for (i = 0; i < n; i++) {
		const struct bounce_rcpt *r = &rcpts[i];

		str_append(out, "\r\n", 2);
		if (r->orcpt != NULL && r->orcpt_type != NULL) {
			str_clear(t);
			str_printf(t, "%s; %s", r->orcpt_type, r->orcpt);
			bounce_field(out, "Original-Recipient", str_c(t));
		}
		str_clear(t);
		str_printf(t, "rfc822; %s", r->address);
		bounce_field(out, "Final-Recipient", str_c(t));
		bounce_field(out, "Action", bounce_action_str(r->action));
		bounce_field(out, "Status", r->status);
		if (r->remote_mta != NULL) {
			str_clear(t);
			str_printf(t, "dns; %s", r->remote_mta);
			bounce_field(out, "Remote-MTA", str_c(t));
		}
		if (r->diag != NULL && *r->diag != '\0') {
			str_clear(t);
			str_printf(t, "%s; %s", r->diag_smtp ? "smtp" :
			    "X-Postern", r->diag);
			bounce_field(out, "Diagnostic-Code", str_c(t));
		}
		if (r->last_attempt != 0) {
			str_clear(t);
			bounce_date(r->last_attempt, t);
			bounce_field(out, "Last-Attempt-Date", str_c(t));
		}
		if (r->action == BOUNCE_DELAYED && r->will_retry_until != 0) {
			str_clear(t);
			bounce_date(r->will_retry_until, t);
			bounce_field(out, "Will-Retry-Until", str_c(t));
		}
	}
	str_append(out, "\r\n", 2);

	/* the original */
	str_printf(out, "--%s\r\n", str_c(boundary));
	if (headers_only)
		str_append_cstr(out, "Content-Description: Undelivered Message "
		    "Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n");
	else
		str_printf(out, "Content-Description: Undelivered Message\r\n"
		    "Content-Type: message/rfc822\r\n%s\r\n", eightbit ?
		    "Content-Transfer-Encoding: 8bit\r\n" : "");
	if (bounce_read_original(info, headers_only, out, error_r) < 0) {
		str_truncate(out, start);
		str_free(&t);
		str_free(&boundary);
		return -1;
	}
	str_printf(out, "\r\n--%s--\r\n", str_c(boundary));
	*body_r = eightbit ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT;
	str_free(&t);
	str_free(&boundary);
	return 0;
}
