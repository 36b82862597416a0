/* SPDX-License-Identifier: MIT */
/*
 * listmgr_session - list-mgr's small LMTP server session
 *
 * DESCRIPTION
 *	RFC 2033 with LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT (and HELP,
 *	VRFY answered generically). Extensions: PIPELINING,
 *	ENHANCEDSTATUSCODES, 8BITMIME, SIZE, and XPOSTERN-TOKEN: qmgr's
 *	delivery token (RCPT TO ... XTOKEN=) keys the post's progress
 *	record (listmgr_progress.c), so a retried post resumes instead of
 *	sending members a second copy. No CHUNKING: lmtpd's session (lmtpd/lmtpd_session.c) does much more than
 *	a list needs, and sharing it would have meant reworking it into
 *	lib/ around a delivery callback; this one is small. A recipient is
 *	accepted at RCPT only when it names an existing list and role
 *	(listmgr_rcpt_ok), so qmgr bounces mail to unknown lists at once.
 *
 *	DATA is read with a bounded line read ($lmtpd_line_length_limit is
 *	not ours: SMTP_PROTO_LINE_MAX ... 1 MB lines), dot-unstuffed into
 *	memory up to $list_message_size_limit (over it: 552 for every
 *	recipient, the rest read and dropped), then handed to
 *	listmgr_deliver() once per recipient, each reply in order.
 *
 *	Nothing here exits; a broken connection ends the session.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "header.h"
#include "log.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "stream.h"
#include "str.h"

#include "listmgr.h"

#define LISTMGR_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_PIPELINING | \
	SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_SMTPUTF8)
#define LISTMGR_RCPT_MAX	100
#define LISTMGR_ERROR_LIMIT	50
#define LISTMGR_DATA_LINE_MAX	(1024 * 1024)
/* qmgr's delivery tokens (as lmtpd's): RCPT TO ... XTOKEN=<xtext> */
#define LISTMGR_TOKEN_EXT	"XPOSTERN-TOKEN"
#define LISTMGR_TOKEN_MAX	91

struct listmgr_session {
	struct stream *s;
	struct smtp_cmd *cmd;
	struct str *line;
	struct str *sender;
	char **rcpt_local;
	char **rcpt_domain;
	char **rcpt_token;	/* XTOKEN per recipient, NULL if none */
	struct str *token;	/* of the RCPT TO being parsed */
	bool has_token;
	size_t nrcpt;
	bool lhlo, in_mail, smtputf8;
	unsigned errors;
	char tx_id[QUEUE_ID_SIZE];
	struct log_ctx log;
	const char *peer;
};

static void
listmgr_reply(struct listmgr_session *sess, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

/* listmgr_reply - one reply line (CRLF added, buffered) */
static void
listmgr_reply(struct listmgr_session *sess, const char *fmt, ...)
{
	va_list ap;
	struct str *t = str_new(0, 0);

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	if (str_c(t)[0] == '4' || str_c(t)[0] == '5')
		sess->errors++;
	(void)stream_printf(sess->s, "%s\r\n", str_c(t));
	str_free(&t);
}

/* listmgr_tx_reset - forget the transaction */
static void
listmgr_tx_reset(struct listmgr_session *sess)
{
	size_t i;

	for (i = 0; i < sess->nrcpt; i++) {
		free(sess->rcpt_local[i]);
		free(sess->rcpt_domain[i]);
		free(sess->rcpt_token[i]);
	}
	sess->nrcpt = 0;
	sess->in_mail = false;
	sess->smtputf8 = false;
	str_clear(sess->sender);
	sess->log.id = NULL;
}

/* listmgr_data - read the content, then one reply per recipient */
static bool
listmgr_data(struct listmgr_session *sess)
{
	struct str *msg = str_new(64 * 1024, 0), *reply = str_new(0, 0);
	struct listmgr_msg m;
	enum stream_result r;
	bool too_big = false, bad_line = false;
	size_t i;

	if (!sess->in_mail || sess->nrcpt == 0) {
		listmgr_reply(sess, sess->in_mail ? "554 5.5.1 Error: no valid "
		    "recipients" : "503 5.5.1 Error: need MAIL command");
		str_free(&msg);
		str_free(&reply);
		return true;
	}
	listmgr_reply(sess, "354 End data with <CR><LF>.<CR><LF>");
	if (stream_flush(sess->s) < 0)
		goto lost;
	for (;;) {
		r = stream_read_line(sess->s, sess->line, LISTMGR_DATA_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			bad_line = true;
			continue;
		}
		if (r != STREAM_OK)
			goto lost;
		str_chomp(sess->line);
		if (str_len(sess->line) == 1 && str_c(sess->line)[0] == '.')
			break;
		if (too_big || bad_line)
			continue;
		i = str_len(sess->line) > 0 && str_c(sess->line)[0] == '.' ? 1 : 0;
		if (str_len(msg) + str_len(sess->line) + 2 >
		    listmgr_settings.size_limit) {
			too_big = true;
			continue;
		}
		str_append(msg, str_c(sess->line) + i, str_len(sess->line) - i);
		str_append(msg, "\r\n", 2);
	}
	memset(&m, 0, sizeof(m));
	m.data = str_c(msg);
	m.len = str_len(msg);
	m.hdr_len = header_block_size(m.data, m.len);
	m.sender = str_c(sess->sender);
	m.log = &sess->log;
	for (i = 0; i < sess->nrcpt; i++) {
		if (too_big) {
			listmgr_reply(sess, "552 5.3.4 Message size exceeds "
			    "fixed limit");
			continue;
		}
		if (bad_line) {
			listmgr_reply(sess, "552 5.3.4 Line too long");
			continue;
		}
		str_clear(reply);
		m.token = sess->rcpt_token[i];
		(void)listmgr_deliver(&m, sess->rcpt_local[i],
		    sess->rcpt_domain[i], reply);
		listmgr_reply(sess, "%s", str_c(reply));
	}
	log_info(&sess->log, "from=<%s>, size=%zu, nrcpt=%zu (done)",
	    str_c(sess->sender), str_len(msg), sess->nrcpt);
	listmgr_tx_reset(sess);
	str_free(&msg);
	str_free(&reply);
	return true;
lost:
	str_free(&msg);
	str_free(&reply);
	return false;
}

/*
 * listmgr_split_token - take " XTOKEN=<xtext>" off an RCPT TO line (in
 * place: line shortened, decoded token into token); 1 taken, 0 none, -1
 * malformed, repeated, too long or with octets outside 0x21..0x7e.
 * The parameter is looked for only after the path, so a quoted local
 * part cannot smuggle one in.
 */
static int
listmgr_split_token(struct str *line, struct str *token)
{
	static const char kw[] = "XTOKEN=";
	const char *p = str_c(line);
	size_t len = str_len(line), i = 8, start, end, kwlen = sizeof(kw) - 1;
	struct str *rest;
	bool quoted = false;
	int found = 0;

	str_clear(token);
	if (len < 8 || strncasecmp(p, "RCPT TO:", 8) != 0)
		return 0;
	while (i < len && p[i] == ' ')
		i++;
	/* the path: up to the first unquoted '>' (or space if no '<') */
	for (; i < len; i++) {
		if (p[i] == '\\' && quoted && i + 1 < len)
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
		else if (!quoted && (p[i] == '>' || p[i] == ' ')) {
			if (p[i] == '>')
				i++;
			break;
		}
	}
	rest = str_new(0, 0);
	str_append(rest, p, i);
	while (i < len) {
		start = i;
		while (i < len && p[i] == ' ')
			i++;
		end = i;
		while (end < len && p[end] != ' ')
			end++;
		if (end - i >= kwlen && strncasecmp(p + i, kw, kwlen) == 0) {
			if (found++ > 0 || end - i == kwlen ||
			    smtp_proto_xtext_decode(p + i + kwlen,
			    end - i - kwlen, token) < 0)
				goto bad;
		} else
			str_append(rest, p + start, end - start);
		i = end;
	}
	if (found) {
		size_t k;

		if (str_len(token) > LISTMGR_TOKEN_MAX)
			goto bad;
		for (k = 0; k < str_len(token); k++)
			if ((unsigned char)str_c(token)[k] <= 0x20 ||
			    (unsigned char)str_c(token)[k] >= 0x7f)
				goto bad;
		str_set(line, str_c(rest), str_len(rest));
	}
	str_free(&rest);
	return found;
bad:
	str_free(&rest);
	return -1;
}

/* listmgr_dispatch - one parsed command; false to end */
static bool
listmgr_dispatch(struct listmgr_session *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct str *t;

	switch (cmd->verb) {
	case SMTP_VERB_LHLO:
		listmgr_tx_reset(sess);
		sess->lhlo = true;
		(void)stream_printf(sess->s, "250-%s\r\n250-PIPELINING\r\n"
		    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
		    "250-SMTPUTF8\r\n250-" LISTMGR_TOKEN_EXT "\r\n"
		    "250 SIZE %llu\r\n",
		    listmgr_settings.myhostname,
		    (unsigned long long)listmgr_settings.size_limit);
		return true;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		listmgr_reply(sess, "500 5.5.1 Error: this is LMTP: use LHLO");
		return true;
	case SMTP_VERB_MAIL:
		if (!sess->lhlo)
			listmgr_reply(sess, "503 5.5.1 Error: send LHLO first");
		else if (sess->in_mail)
			listmgr_reply(sess, "503 5.5.1 Error: nested MAIL command");
		else if (cmd->mail.size_set &&
		    cmd->mail.size > listmgr_settings.size_limit)
			listmgr_reply(sess, "552 5.3.4 Message size exceeds "
			    "fixed limit");
		else if (address_canonical(cmd->addr, sess->sender) < 0)
			listmgr_reply(sess, "501 5.1.7 Bad sender address syntax");
		else {
			queue_id_new(sess->tx_id);
			sess->log.id = sess->tx_id;
			sess->in_mail = true;
			sess->smtputf8 = cmd->mail.smtputf8;
			t = str_new(0, 0);
			mem_printable(t, str_c(sess->sender),
			    str_len(sess->sender), 300);
			log_info(&sess->log, "client=%s, from=<%s>", sess->peer,
			    str_c(t));
			str_free(&t);
			listmgr_reply(sess, "250 2.1.0 Ok");
		}
		return true;
	case SMTP_VERB_RCPT:
		if (!sess->in_mail) {
			listmgr_reply(sess, "503 5.5.1 Error: need MAIL command");
		} else if (sess->nrcpt >= LISTMGR_RCPT_MAX) {
			listmgr_reply(sess, "452 4.5.3 Error: too many recipients");
		} else if (!listmgr_rcpt_ok(str_c(cmd->addr->local),
		    str_c(cmd->addr->domain))) {
			listmgr_reply(sess, "550 5.1.1 No such list");
		} else {
			sess->rcpt_local = xreallocarray(sess->rcpt_local,
			    sess->nrcpt + 1, sizeof(char *));
			sess->rcpt_domain = xreallocarray(sess->rcpt_domain,
			    sess->nrcpt + 1, sizeof(char *));
			sess->rcpt_token = xreallocarray(sess->rcpt_token,
			    sess->nrcpt + 1, sizeof(char *));
			sess->rcpt_token[sess->nrcpt] = sess->has_token ?
			    xstrdup(str_c(sess->token)) : NULL;
			sess->rcpt_local[sess->nrcpt] =
			    xstrdup(str_c(cmd->addr->local));
			sess->rcpt_domain[sess->nrcpt] =
			    xstrdup(str_c(cmd->addr->domain));
			sess->nrcpt++;
			listmgr_reply(sess, "250 2.1.5 Ok");
		}
		return true;
	case SMTP_VERB_DATA:
		return listmgr_data(sess);
	case SMTP_VERB_RSET:
		listmgr_tx_reset(sess);
		listmgr_reply(sess, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_NOOP:
		listmgr_reply(sess, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_QUIT:
		listmgr_reply(sess, "221 2.0.0 Bye");
		return false;
	case SMTP_VERB_VRFY:
		listmgr_reply(sess, "252 2.0.0 Will attempt delivery");
		return true;
	case SMTP_VERB_HELP:
		listmgr_reply(sess, "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT");
		return true;
	default:
		listmgr_reply(sess, "502 5.5.1 Error: command not implemented");
		return true;
	}
}

/* listmgr_session_run - see listmgr.h */
void
listmgr_session_run(int fd, const char *peer)
{
	struct listmgr_session sess;
	enum smtp_proto_error perr;
	enum stream_result r;
	const char *enh;
	int code;

	memset(&sess, 0, sizeof(sess));
	sess.s = stream_new(fd, listmgr_settings.timeout, STREAM_NO_CLOSE);
	sess.cmd = smtp_cmd_new();
	sess.line = str_new(0, 0);
	sess.sender = str_new(0, 0);
	sess.token = str_new(0, 0);
	sess.peer = peer;
	log_info(NULL, "connect from %s", peer);
	(void)stream_printf(sess.s, "220 %s LMTP Postern list-mgr\r\n",
	    listmgr_settings.myhostname);
	for (;;) {
		if (sess.errors >= LISTMGR_ERROR_LIMIT) {
			(void)stream_puts(sess.s, "421 4.7.0 Error: too many "
			    "errors\r\n");
			(void)stream_flush(sess.s);
			break;
		}
		if (stream_pending(sess.s) == 0 && stream_flush(sess.s) < 0)
			break;
		r = stream_read_line(sess.s, sess.line, SMTP_PROTO_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			listmgr_reply(&sess, "500 5.5.2 Error: line too long");
			continue;
		}
		if (r == STREAM_TIMEOUT) {
			(void)stream_puts(sess.s, "421 4.4.2 Error: timeout "
			    "exceeded\r\n");
			(void)stream_flush(sess.s);
			break;
		}
		if (r != STREAM_OK)
			break;
		str_chomp(sess.line);
		switch (listmgr_split_token(sess.line, sess.token)) {
		case -1:
			listmgr_reply(&sess, "501 5.5.4 Error: bad XTOKEN "
			    "parameter");
			continue;
		case 1:
			sess.has_token = true;
			break;
		default:
			sess.has_token = false;
		}
		perr = smtp_cmd_parse(sess.cmd, str_c(sess.line),
		    str_len(sess.line), LISTMGR_EXT,
		    sess.in_mail && sess.smtputf8, 0);
		if (perr != SMTP_PROTO_OK) {
			smtp_proto_error_reply(perr, &code, &enh);
			listmgr_reply(&sess, "%d %s Error: %s", code, enh,
			    smtp_proto_error_str(perr));
			continue;
		}
		if (!listmgr_dispatch(&sess)) {
			(void)stream_flush(sess.s);
			break;
		}
	}
	listmgr_tx_reset(&sess);
	log_info(NULL, "disconnect from %s", peer);
	free(sess.rcpt_local);
	free(sess.rcpt_domain);
	free(sess.rcpt_token);
	str_free(&sess.token);
	str_free(&sess.line);
	str_free(&sess.sender);
	smtp_cmd_free(&sess.cmd);
	stream_free(&sess.s);
}
