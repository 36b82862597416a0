/* SPDX-License-Identifier: MIT */
/*
 * smtpd_data - message content: DATA (dot-stuffed lines), BDAT (chunks)
 *
 * DESCRIPTION
 *	DATA reads the content line by line (each line at most
 *	smtpd_line_length_limit bytes) and ends ONLY at a line that is
 *	exactly ".\r\n" following a line that itself ended in CRLF on the
 *	wire (or at the very start). A bare LF never ends anything: "\n.\n",
 *	"\n.\r\n" and "\r\n.\n" are content (no SMTP smuggling, CVE-2023-
 *	51764 and friends). Lines ending in a bare LF make the message fail
 *	with 550 5.5.2 (smtpd_forbid_bare_newline = reject, the default) or
 *	are stored with CRLF (normalize). A leading dot is removed (RFC 5321
 *	4.5.2). Bare CR inside a line is content.
 *
 *	BDAT (RFC 3030) reads exactly the announced octets, always, even
 *	when the command is refused, so the session stays in step. Its
 *	content is stored as sent: no dot handling, no line rules.
 *	XXX: bare LF in non-BINARYMIME BDAT content is not checked; the
 *	outbound client must send it safely (it never has to dot-stuff
 *	across a bare LF either way).
 *
 *	Our Received: header goes first. The content goes to cleanup as it
 *	arrives; memory does not grow with the message. Over the size
 *	limit, or after any error, the rest is read and dropped, and the
 *	reply comes at the end. The durability rule: 250 only when
 *	cleanup_client_finish() said CLEANUP_OK; every other path aborts the
 *	cleanup connection, which removes the incomplete file.
 *
 * SEE ALSO
 *	RFC 5321 4.1.1.4, 4.4, 4.5.2; RFC 3030; Postfix smtpd.c smtpd_data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "log.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "smtpd.h"

#define SMTPD_BDAT_PIECE	(64 * 1024)

/* Why a message failed while its content was read. */
enum smtpd_data_fail {
	SMTPD_DATA_OK,
	SMTPD_DATA_SIZE,
	SMTPD_DATA_LINE,
	SMTPD_DATA_BARE_LF,
	SMTPD_DATA_TEMP,
};

/* smtpd_received - see smtpd.h; Postfix's layout */
void
smtpd_received(struct smtpd_session *sess, struct str *out)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	(void)localtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
		pst_strlcpy(date, "Thu, 01 Jan 1970 00:00:00 +0000", sizeof(date));
	str_printf(out, "Received: from %s (%s [%s])\r\n",
	    sess->helo != NULL ? sess->helo : sess->client.name,
	    sess->client.name, sess->client.addr);
	if (sess->tls != NULL) {
		str_printf(out, "\t(using %s)\r\n", str_c(sess->tls_desc));
		str_append_cstr(out, "\t(");
		tls_session_peer_describe(sess->tls, out);
		str_append_cstr(out, ")\r\n");
	}
	if (sess->auth_user != NULL && smtpd_settings.sasl_header)
		str_printf(out, "\t(Authenticated sender: %s)\r\n", sess->auth_user);
	str_printf(out, "\tby %s (Postern) with %s id %s",
	    smtpd_settings.myhostname, smtpd_protocol(sess),
	    sess->queue_id != NULL ? sess->queue_id : "unknown");
	if (sess->nrcpt == 1)
		str_printf(out, "\r\n\tfor <%s>; %s\r\n", str_c(sess->first_rcpt), date);
	else
		str_printf(out, ";\r\n\t%s\r\n", date);
}

/* smtpd_content - pass content to cleanup; false (and tx_broken) on failure */
static bool
smtpd_content(struct smtpd_session *sess, const void *p, size_t n)
{
	const char *err;

	if (sess->tx_broken)
		return false;
	if (n > 0 && cleanup_client_content(sess->cleanup, p, n, &err) < 0) {
		log_error(&sess->log, "cleanup: content: %s", err);
		sess->tx_broken = true;
		return false;
	}
	return true;
}

/* smtpd_start_content - refuse DATA/BDAT before MAIL/RCPT; write Received: */
static bool
smtpd_start_content(struct smtpd_session *sess, bool bdat)
{
	if (!sess->in_mail) {
		smtpd_reply(sess, 503, "5.5.1", "Error: need MAIL command");
		return false;
	}
	if (sess->nrcpt == 0) {
		smtpd_reply(sess, 554, "5.5.1", "Error: no valid recipients");
		return false;
	}
	if (!bdat && sess->bdat_active) {
		smtpd_reply(sess, 503, "5.5.1", "Error: DATA after BDAT");
		return false;
	}
	if (!bdat && sess->body == SMTP_BODY_BINARYMIME) {
		smtpd_reply(sess, 503, "5.5.1", "Error: BINARYMIME requires BDAT");
		return false;
	}
	return true;
}

/* smtpd_write_received - the trace header, first thing in the content */
static void
smtpd_write_received(struct smtpd_session *sess)
{
	struct str *hdr = str_new(0, 0);

	smtpd_received(sess, hdr);
	(void)smtpd_content(sess, str_c(hdr), str_len(hdr));
	str_free(&hdr);
}

/* smtpd_finish - end of content: commit and answer (durability rule) */
static void
smtpd_finish(struct smtpd_session *sess, enum smtpd_data_fail fail)
{
	struct str *reason;
	enum cleanup_status st;
	char *id;

	if (fail == SMTPD_DATA_OK && sess->tx_broken)
		fail = SMTPD_DATA_TEMP;
	switch (fail) {
	case SMTPD_DATA_OK:
		break;
	case SMTPD_DATA_SIZE:
		smtpd_reply(sess, 552, "5.3.4", "Error: message file too big");
		smtpd_tx_reset(sess);
		return;
	case SMTPD_DATA_LINE:
		smtpd_reply(sess, 552, "5.3.4", "Error: message line too long");
		smtpd_tx_reset(sess);
		return;
	case SMTPD_DATA_BARE_LF:
		smtpd_reply(sess, 550, "5.5.2", "Error: bare <LF> received");
		smtpd_tx_reset(sess);
		return;
	case SMTPD_DATA_TEMP:
		smtpd_reply(sess, 451, "4.3.0", "Error: queue file write error");
		smtpd_tx_reset(sess);
		return;
	}
	reason = str_new(0, 0);
	id = xstrdup(sess->queue_id);
	st = cleanup_client_finish(&sess->cleanup, reason);
	switch (st) {
	case CLEANUP_OK:
		log_info(&sess->log, "from=<%s>, size=%llu, nrcpt=%u (queued)",
		    str_c(sess->sender), (unsigned long long)sess->content_size,
		    sess->nrcpt);
		smtpd_reply(sess, 250, "2.0.0", "Ok: queued as %s", id);
		break;
	case CLEANUP_TEMPFAIL:
		if (str_len(reason) == 0 || reason->data[0] != '4')
			smtpd_reply(sess, 451, "4.3.0", "Error: %s", str_len(reason) > 0 ?
			    str_c(reason) : "queue file write error");
		else
			smtpd_reply_raw(sess, 451, str_c(reason));
		break;
	case CLEANUP_REJECT:
		if (str_len(reason) == 0 || reason->data[0] != '5')
			smtpd_reply(sess, 554, "5.6.0", "Error: %s", str_len(reason) > 0 ?
			    str_c(reason) : "message rejected");
		else
			smtpd_reply_raw(sess, 554, str_c(reason));
		break;
	}
	free(id);
	str_free(&reason);
	smtpd_tx_reset(sess);
}

/* smtpd_cmd_data - DATA; see DESCRIPTION */
void
smtpd_cmd_data(struct smtpd_session *sess)
{
	struct stream *s = sess->stream;
	struct str *line = sess->line;
	enum smtpd_data_fail fail = SMTPD_DATA_OK;
	enum stream_result r;
	bool prev_crlf = true, crlf;
	const char *p;
	size_t n;

	if (!smtpd_start_content(sess, false))
		return;
	smtpd_reply(sess, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	if (stream_flush(s) < 0) {
		smtpd_tx_reset(sess);
		sess->quit = sess->lost = true;
		return;
	}
	smtpd_write_received(sess);
	stream_set_timeout(s, smtpd_settings.data_timeout);
	for (;;) {
		r = stream_read_line(s, line, smtpd_settings.line_limit);
		if (r == STREAM_TOO_LONG) {
			/* XXX its line end is unknown: taken as CRLF */
			if (fail == SMTPD_DATA_OK)
				fail = SMTPD_DATA_LINE;
			prev_crlf = true;
			continue;
		}
		if (r != STREAM_OK) {
			/* Lost or timed out mid-message: nothing is queued. */
			if (r == STREAM_TIMEOUT)
				smtpd_timeout_reply(sess);
			log_info(&sess->log, "%s while receiving the message "
			    "from %s", r == STREAM_TIMEOUT ? "timeout" :
			    "lost connection", str_c(sess->client_text));
			smtpd_tx_reset(sess);
			sess->quit = sess->lost = true;
			sess->last_code = 421;
			return;
		}
		p = str_c(line);
		n = str_len(line);
		crlf = n >= 2 && p[n - 2] == '\r';
		if (prev_crlf && crlf && n == 3 && p[0] == '.')
			break;
		prev_crlf = crlf;
		if (!crlf && smtpd_settings.bare_newline == SMTPD_BARE_NL_REJECT &&
		    fail == SMTPD_DATA_OK)
			fail = SMTPD_DATA_BARE_LF;
		if (p[0] == '.') {
			p++;
			n--;
		}
		if (fail != SMTPD_DATA_OK)
			continue;
		if (!crlf)
			n--;	/* drop the bare LF; CRLF is appended below */
		sess->content_size += n + (crlf ? 0 : 2);
		if (smtpd_settings.size_limit != 0 &&
		    sess->content_size > smtpd_settings.size_limit) {
			fail = SMTPD_DATA_SIZE;
			continue;
		}
		if (!smtpd_content(sess, p, n) ||
		    (!crlf && !smtpd_content(sess, "\r\n", 2)))
			fail = SMTPD_DATA_TEMP;
	}
	stream_set_timeout(s, smtpd_settings.timeout);
	smtpd_finish(sess, fail);
}

/* smtpd_bdat_skip - read and drop n octets; false if the connection broke */
static bool
smtpd_bdat_read(struct smtpd_session *sess, uint64_t n, bool keep)
{
	struct stream *s = sess->stream;
	struct str *buf = sess->line;
	enum stream_result r;
	size_t piece;

	stream_set_timeout(s, smtpd_settings.data_timeout);
	while (n > 0) {
		piece = n > SMTPD_BDAT_PIECE ? SMTPD_BDAT_PIECE : (size_t)n;
		str_clear(buf);
		r = stream_read_n(s, buf, piece);
		if (r != STREAM_OK) {
			if (r == STREAM_TIMEOUT)
				smtpd_timeout_reply(sess);
			log_info(&sess->log, "%s while receiving BDAT from %s",
			    r == STREAM_TIMEOUT ? "timeout" : "lost connection",
			    str_c(sess->client_text));
			return false;
		}
		n -= piece;
		if (keep && !smtpd_content(sess, str_c(buf), piece))
			keep = false;
	}
	stream_set_timeout(s, smtpd_settings.timeout);
	return true;
}

/* smtpd_bdat_fail - remember the first error of a chunked transaction */
static void
smtpd_bdat_fail(struct smtpd_session *sess, int code, const char *text)
{
	if (!sess->bdat_failed) {
		sess->bdat_failed = true;
		sess->bdat_fail_code = code;
		str_set_cstr(sess->bdat_fail_text, text);
	}
}

/* smtpd_cmd_bdat - BDAT size [LAST]; see DESCRIPTION */
void
smtpd_cmd_bdat(struct smtpd_session *sess)
{
	uint64_t size = sess->cmd->bdat_size;
	bool last = sess->cmd->bdat_last;
	bool keep;

	if (!sess->in_mail || sess->nrcpt == 0) {
		/* Stay in step: the chunk is on its way anyway. */
		if (!smtpd_bdat_read(sess, size, false)) {
			sess->quit = sess->lost = true;
			return;
		}
		(void)smtpd_start_content(sess, true);
		return;
	}
	if (!sess->bdat_active) {
		sess->bdat_active = true;
		smtpd_write_received(sess);
	}
	if (smtpd_settings.size_limit != 0 &&
	    (size > smtpd_settings.size_limit ||
	    sess->content_size + size > smtpd_settings.size_limit))
		smtpd_bdat_fail(sess, 552, "5.3.4 Error: message file too big");
	keep = !sess->bdat_failed && !sess->tx_broken;
	if (!smtpd_bdat_read(sess, size, keep)) {
		smtpd_tx_reset(sess);
		sess->quit = sess->lost = true;
		sess->last_code = 421;
		return;
	}
	if (!sess->bdat_failed)
		sess->content_size += size;
	if (sess->tx_broken)
		smtpd_bdat_fail(sess, 451, "4.3.0 Error: queue file write error");
	if (!last) {
		if (sess->bdat_failed)
			smtpd_reply_raw(sess, sess->bdat_fail_code,
			    str_c(sess->bdat_fail_text));
		else
			smtpd_reply(sess, 250, "2.0.0", "Ok: %llu bytes",
			    (unsigned long long)size);
		return;
	}
	if (sess->bdat_failed) {
		smtpd_reply_raw(sess, sess->bdat_fail_code, str_c(sess->bdat_fail_text));
		smtpd_tx_reset(sess);
		return;
	}
	smtpd_finish(sess, SMTPD_DATA_OK);
}
