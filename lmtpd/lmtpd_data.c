/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_data - message content: DATA (dot-stuffed lines), BDAT (chunks)
 *
 * DESCRIPTION
 *	DATA reads the content line by line (each at most
 *	lmtpd_line_length_limit bytes) and ends ONLY at a line that is
 *	exactly ".\r\n" following a line that itself ended in CRLF on the
 *	wire (or at the very start), exactly as smtpd does: "\n.\n",
 *	"\n.\r\n" and "\r\n.\n" are content, never an end (no smuggling).
 *	A line ending in a bare LF fails the message with 550 5.5.2 for
 *	every recipient (qmgr always sends CRLF). A leading dot is removed
 *	(RFC 5321 4.5.2).
 *
 *	BDAT (RFC 3030) reads exactly the announced octets, always, even
 *	when the command is refused, so the session stays in step. Its
 *	content is stored as sent.
 *
 *	The spool: the first LMTPD_SPOOL_MEMORY bytes stay in memory; a
 *	bigger message goes to an unlinked temporary file (O_TMPFILE, else
 *	mkstemp + unlink) in $store_directory, written in pieces and mapped
 *	read-only when complete, so memory does not grow with the message
 *	and the MIME parser and the store read it in place. The store then
 *	copies it into each recipient's mailbox (its tmp/ is per mailbox,
 *	so there is nothing to hard-link). Over lmtpd_message_size_limit the
 *	rest is read and dropped, and every recipient gets 552 5.3.4.
 *
 *	After the content, RFC 2033 4.2: one reply per accepted recipient,
 *	in RCPT order, whatever happened (lmtpd_deliver_all or
 *	lmtpd_fail_all). A non-final BDAT chunk gets one reply.
 *
 * SEE ALSO
 *	RFC 2033, RFC 5321 4.1.1.4, 4.5.2, RFC 3030; smtpd_data.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "stream.h"
#include "str.h"

#include "lmtpd.h"

#define LMTPD_SPOOL_MEMORY	(128 * 1024)
#define LMTPD_BDAT_PIECE	(64 * 1024)

/* Why a message failed while its content was read. */
enum lmtpd_data_fail {
	LMTPD_DATA_OK,
	LMTPD_DATA_SIZE,
	LMTPD_DATA_LINE,
	LMTPD_DATA_BARE_LF,
	LMTPD_DATA_TEMP,
};

/* lmtpd_msg_reset - see lmtpd.h */
void
lmtpd_msg_reset(struct lmtpd_msg *msg)
{
	if (msg->map != NULL)
		(void)munmap(msg->map, (size_t)msg->size);
	if (msg->fd >= 0)
		(void)close(msg->fd);
	str_free(&msg->wbuf);
	str_free(&msg->envelope);
	str_free(&msg->body);
	str_free(&msg->bodystructure);
	str_free(&msg->message_id);
	memset(msg, 0, sizeof(*msg));
	msg->fd = -1;
}

/* lmtpd_spool_open - an unlinked temporary file in the store directory */
static int
lmtpd_spool_open(struct lmtpd_session *sess)
{
	const char *dir = lmtpd_settings.store_dir;
	char *path;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		log_error(&sess->log, "cannot create a spool file in %s: %m", dir);
		return -1;
	}
	path = xasprintf("%s/.lmtpd-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		log_error(&sess->log, "cannot create a spool file in %s: %m", dir);
	else
		(void)unlink(path);
	free(path);
	return fd;
}

/* lmtpd_spool_flush - write the memory buffer to the spool file */
static int
lmtpd_spool_flush(struct lmtpd_session *sess)
{
	struct lmtpd_msg *msg = &sess->msg;
	const char *p = str_c(msg->wbuf);
	size_t n = str_len(msg->wbuf);
	ssize_t w;

	if (msg->fd < 0 && (msg->fd = lmtpd_spool_open(sess)) < 0)
		return -1;
	while (n > 0) {
		w = write(msg->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error(&sess->log, "write to the spool file: %m");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	str_clear(msg->wbuf);
	return 0;
}

/* lmtpd_msg_write - see lmtpd.h */
int
lmtpd_msg_write(struct lmtpd_session *sess, const void *p, size_t n)
{
	struct lmtpd_msg *msg = &sess->msg;

	if (msg->wbuf == NULL)
		msg->wbuf = str_new(8192, 0);
	if (str_len(msg->wbuf) + n > LMTPD_SPOOL_MEMORY &&
	    lmtpd_spool_flush(sess) < 0)
		return -1;
	if (n > LMTPD_SPOOL_MEMORY) {
		/* a big BDAT piece: straight through */
		str_append(msg->wbuf, p, n);
		if (lmtpd_spool_flush(sess) < 0)
			return -1;
	} else {
		str_append(msg->wbuf, p, n);
	}
	msg->size += n;
	return 0;
}

/* lmtpd_msg_finish - see lmtpd.h */
int
lmtpd_msg_finish(struct lmtpd_session *sess)
{
	struct lmtpd_msg *msg = &sess->msg;
	void *map;

	if (msg->wbuf == NULL)
		msg->wbuf = str_new(0, 0);
	if (msg->fd < 0) {
		/* all in memory */
		msg->data = str_c(msg->wbuf);
		return 0;
	}
	if (lmtpd_spool_flush(sess) < 0)
		return -1;
	if (msg->size == 0) {
		msg->data = "";
		return 0;
	}
	map = mmap(NULL, (size_t)msg->size, PROT_READ, MAP_PRIVATE, msg->fd, 0);
	if (map == MAP_FAILED) {
		log_error(&sess->log, "cannot map the spool file: %m");
		return -1;
	}
	msg->map = map;
	msg->data = map;
	return 0;
}

/* lmtpd_start_content - refuse DATA/BDAT before MAIL/RCPT */
static bool
lmtpd_start_content(struct lmtpd_session *sess, bool bdat)
{
	if (!sess->in_mail) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: need MAIL command");
		return false;
	}
	if (sess->nrcpt == 0) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: need RCPT command");
		return false;
	}
	if (!bdat && sess->bdat_active) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: DATA after BDAT");
		return false;
	}
	if (!bdat && sess->body == SMTP_BODY_BINARYMIME) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: BINARYMIME requires BDAT");
		return false;
	}
	return true;
}

/* lmtpd_finish - end of content: deliver, or fail every recipient */
static void
lmtpd_finish(struct lmtpd_session *sess, enum lmtpd_data_fail fail)
{
	if (fail == LMTPD_DATA_OK && lmtpd_msg_finish(sess) < 0)
		fail = LMTPD_DATA_TEMP;
	switch (fail) {
	case LMTPD_DATA_OK:
		lmtpd_deliver_all(sess);
		break;
	case LMTPD_DATA_SIZE:
		lmtpd_fail_all(sess, 552, "5.3.4 Error: message file too big");
		break;
	case LMTPD_DATA_LINE:
		lmtpd_fail_all(sess, 552, "5.3.4 Error: message line too long");
		break;
	case LMTPD_DATA_BARE_LF:
		lmtpd_fail_all(sess, 550, "5.5.2 Error: bare <LF> received");
		break;
	case LMTPD_DATA_TEMP:
		lmtpd_fail_all(sess, 451, "4.3.0 Error: local spool write error");
		break;
	}
	lmtpd_tx_reset(sess);
}

/* lmtpd_lost - the connection broke or timed out inside the content */
static void
lmtpd_lost(struct lmtpd_session *sess, enum stream_result r, const char *what)
{
	if (r == STREAM_TIMEOUT) {
		(void)stream_printf(sess->stream, "421 4.4.2 %s Error: timeout "
		    "exceeded\r\n", lmtpd_settings.myhostname);
		(void)stream_flush(sess->stream);
	}
	log_info(&sess->log, "%s while receiving %s from %s",
	    r == STREAM_TIMEOUT ? "timeout" : "lost connection", what,
	    str_c(sess->client_text));
	lmtpd_tx_reset(sess);
	sess->quit = sess->lost = true;
	sess->last_code = 421;
}

/* lmtpd_cmd_data - DATA; see DESCRIPTION */
void
lmtpd_cmd_data(struct lmtpd_session *sess)
{
	struct stream *s = sess->stream;
	struct str *line = sess->line;
	enum lmtpd_data_fail fail = LMTPD_DATA_OK;
	enum stream_result r;
	bool prev_crlf = true, crlf;
	const char *p;
	size_t n;

	if (!lmtpd_start_content(sess, false))
		return;
	lmtpd_reply(sess, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	if (stream_flush(s) < 0) {
		lmtpd_tx_reset(sess);
		sess->quit = sess->lost = true;
		return;
	}
	for (;;) {
		r = stream_read_line(s, line, (size_t)lmtpd_settings.line_limit);
		if (r == STREAM_TOO_LONG) {
			/* XXX its line end is unknown: taken as CRLF */
			if (fail == LMTPD_DATA_OK)
				fail = LMTPD_DATA_LINE;
			prev_crlf = true;
			continue;
		}
		if (r != STREAM_OK) {
			lmtpd_lost(sess, r, "the message");
			return;
		}
		p = str_c(line);
		n = str_len(line);
		crlf = n >= 2 && p[n - 2] == '\r';
		if (prev_crlf && crlf && n == 3 && p[0] == '.')
			break;
		prev_crlf = crlf;
		if (!crlf && fail == LMTPD_DATA_OK)
			fail = LMTPD_DATA_BARE_LF;
		if (fail != LMTPD_DATA_OK)
			continue;
		if (p[0] == '.') {
			p++;
			n--;
		}
		if (lmtpd_settings.size_limit != 0 &&
		    sess->msg.size + n > lmtpd_settings.size_limit) {
			fail = LMTPD_DATA_SIZE;
			continue;
		}
		if (lmtpd_msg_write(sess, p, n) < 0)
			fail = LMTPD_DATA_TEMP;
	}
	lmtpd_finish(sess, fail);
}

/* lmtpd_bdat_read - read n octets, spooling them if keep */
static bool
lmtpd_bdat_read(struct lmtpd_session *sess, uint64_t n, bool *keep)
{
	struct stream *s = sess->stream;
	struct str *buf = sess->line;
	enum stream_result r;
	size_t piece;

	while (n > 0) {
		piece = n > LMTPD_BDAT_PIECE ? LMTPD_BDAT_PIECE : (size_t)n;
		str_clear(buf);
		r = stream_read_n(s, buf, piece);
		if (r != STREAM_OK) {
			lmtpd_lost(sess, r, "BDAT");
			return false;
		}
		n -= piece;
		if (*keep && lmtpd_msg_write(sess, str_c(buf), piece) < 0)
			*keep = false;
	}
	return true;
}

/* lmtpd_bdat_fail - remember the first error of a chunked transaction */
static void
lmtpd_bdat_fail(struct lmtpd_session *sess, int code, const char *text)
{
	if (!sess->bdat_failed) {
		sess->bdat_failed = true;
		sess->bdat_fail_code = code;
		str_set_cstr(sess->bdat_fail_text, text);
	}
}

/* lmtpd_cmd_bdat - BDAT size [LAST]; see DESCRIPTION */
void
lmtpd_cmd_bdat(struct lmtpd_session *sess)
{
	uint64_t size = sess->cmd->bdat_size;
	bool last = sess->cmd->bdat_last;
	bool keep = false;

	if (!sess->in_mail || sess->nrcpt == 0) {
		/* Stay in step: the chunk is on its way anyway. */
		if (!lmtpd_bdat_read(sess, size, &keep))
			return;
		(void)lmtpd_start_content(sess, true);
		return;
	}
	sess->bdat_active = true;
	if (lmtpd_settings.size_limit != 0 &&
	    (size > lmtpd_settings.size_limit ||
	    sess->msg.size + size > lmtpd_settings.size_limit))
		lmtpd_bdat_fail(sess, 552, "5.3.4 Error: message file too big");
	keep = !sess->bdat_failed;
	if (!lmtpd_bdat_read(sess, size, &keep))
		return;
	if (!keep && !sess->bdat_failed)
		lmtpd_bdat_fail(sess, 451, "4.3.0 Error: local spool write error");
	if (!last) {
		if (sess->bdat_failed)
			lmtpd_reply_raw(sess, sess->bdat_fail_code,
			    str_c(sess->bdat_fail_text));
		else
			lmtpd_reply(sess, 250, "2.0.0", "Ok: %llu bytes",
			    (unsigned long long)size);
		return;
	}
	if (sess->bdat_failed) {
		lmtpd_fail_all(sess, sess->bdat_fail_code,
		    str_c(sess->bdat_fail_text));
		lmtpd_tx_reset(sess);
		return;
	}
	lmtpd_finish(sess, LMTPD_DATA_OK);
}
