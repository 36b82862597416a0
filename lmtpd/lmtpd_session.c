/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_session - one LMTP conversation: the command loop and its state
 *
 * DESCRIPTION
 *	lmtpd_session_run() greets the client, then reads one command line
 *	at a time with a bounded stream read, parses it with
 *	smtp_cmd_parse() and dispatches on the verb. Replies are buffered
 *	and flushed only when no pipelined input is waiting (RFC 2920), or
 *	before the session must wait for the client (354, the end).
 *
 *	LMTP (RFC 2033) is ESMTP with LHLO instead of EHLO/HELO (both are
 *	refused) and with one reply per accepted recipient after the
 *	content. LHLO is required before MAIL. The extensions offered are
 *	PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, BINARYMIME, CHUNKING,
 *	SMTPUTF8, SIZE and the private XPOSTERN-TOKEN: RCPT TO may carry
 *	XTOKEN=<xtext>, the delivery token "QUEUEID/index" that makes a
 *	retried hand-off harmless (see lmtpd_deliver.c). The shared parser
 *	does not know XTOKEN, so lmtpd_rcpt_split_token() takes it out of
 *	the line first (lib/lmtp_server's splitter, shared with list-mgr);
 *	every other parameter goes through the parser.
 *	DSN is not offered: lmtpd sends no notices, so qmgr keeps that job.
 *
 *	Errors: a line over SMTP_PROTO_LINE_MAX is answered "500 5.5.2 line
 *	too long" and its rest skipped; a parser error gets the shared
 *	parser's code; after LMTPD_ERROR_LIMIT errors the client gets 421
 *	and is dropped; a timeout gets 421 4.4.2.
 *
 *	Nothing here exits: the session returns to the caller, which closes
 *	the connection.
 *
 * SEE ALSO
 *	RFC 2033, RFC 5321, RFC 2920, RFC 3030, RFC 2034.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "lmtp_server.h"
#include "log.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "stream.h"
#include "str.h"

#include "lmtpd.h"

#define LMTPD_ERROR_LIMIT	100

/* The extensions offered after LHLO (parameters of others are refused). */
#define LMTPD_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | \
	SMTP_EXT_CHUNKING | SMTP_EXT_SMTPUTF8 | SMTP_EXT_PIPELINING | \
	SMTP_EXT_ENHANCEDSTATUSCODES)

/* Verbs in the disconnect summary. */
static const enum smtp_verb lmtpd_summary_order[] = {
	SMTP_VERB_LHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
	SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_VRFY,
	SMTP_VERB_HELP, SMTP_VERB_QUIT,
};

/* lmtpd_log_reject - log a 4xx/5xx reply to a transaction command */
static void
lmtpd_log_reject(struct lmtpd_session *sess, int code, const char *text)
{
	struct str *t = str_new(0, 0);

	mem_printable(t, text, strlen(text), 300);
	if (sess->cur_verb == SMTP_VERB_MAIL || sess->cur_verb == SMTP_VERB_RCPT)
		log_info(sess->in_mail ? &sess->log : NULL,
		    "reject: %s from %s: %d %s", smtp_verb_name(sess->cur_verb),
		    str_c(sess->client_text), code, str_c(t));
	else
		log_debug(NULL, "%s from %s: %d %s",
		    sess->cur_verb == SMTP_VERB_NONE ? "command" :
		    smtp_verb_name(sess->cur_verb), str_c(sess->client_text),
		    code, str_c(t));
	str_free(&t);
}

/* lmtpd_reply_raw - see lmtpd.h */
void
lmtpd_reply_raw(struct lmtpd_session *sess, int code, const char *text)
{
	(void)stream_printf(sess->stream, "%d %s\r\n", code, text);
	sess->last_code = code;
	if (code >= 400) {
		sess->errors++;
		lmtpd_log_reject(sess, code, text);
	}
}

/* lmtpd_reply - see lmtpd.h */
void
lmtpd_reply(struct lmtpd_session *sess, int code, const char *enh,
    const char *fmt, ...)
{
	va_list ap;

	str_clear(sess->scratch);
	if (enh != NULL)
		str_printf(sess->scratch, "%s ", enh);
	va_start(ap, fmt);
	str_vprintf(sess->scratch, fmt, ap);
	va_end(ap);
	lmtpd_reply_raw(sess, code, str_c(sess->scratch));
}

/* lmtpd_tx_reset - end the transaction: recipients, spool, state */
void
lmtpd_tx_reset(struct lmtpd_session *sess)
{
	size_t i;

	for (i = 0; i < sess->nrcpt; i++)
		lmtpd_rcpt_free(&sess->rcpts[i]);
	sess->nrcpt = 0;
	lmtpd_msg_reset(&sess->msg);
	sess->in_mail = false;
	sess->log.id = NULL;
	sess->tx_id[0] = '\0';
	sess->queue_id[0] = '\0';
	str_clear(sess->sender);
	sess->body = SMTP_BODY_NONE;
	sess->smtputf8 = false;
	sess->size_hint = 0;
	sess->bdat_active = false;
	sess->bdat_failed = false;
	sess->bdat_fail_code = 0;
	str_clear(sess->bdat_fail_text);
}

/* lmtpd_cmd_lhlo - LHLO; a new greeting resets the transaction */
static void
lmtpd_cmd_lhlo(struct lmtpd_session *sess)
{
	struct stream *s = sess->stream;

	lmtpd_tx_reset(sess);
	free(sess->lhlo);
	sess->lhlo = xstrdup(str_c(sess->cmd->arg));
	sess->last_code = 250;
	/* RFC 2034: no enhanced codes in the LHLO reply. */
	(void)stream_printf(s, "250-%s\r\n", lmtpd_settings.myhostname);
	(void)stream_puts(s, "250-PIPELINING\r\n");
	(void)stream_puts(s, "250-ENHANCEDSTATUSCODES\r\n");
	(void)stream_puts(s, "250-8BITMIME\r\n");
	(void)stream_puts(s, "250-BINARYMIME\r\n");
	(void)stream_puts(s, "250-CHUNKING\r\n");
	(void)stream_puts(s, "250-SMTPUTF8\r\n");
	if (lmtpd_settings.size_limit != 0)
		(void)stream_printf(s, "250-SIZE %llu\r\n",
		    (unsigned long long)lmtpd_settings.size_limit);
	else
		(void)stream_puts(s, "250-SIZE\r\n");
	(void)stream_puts(s, "250 " LMTPD_TOKEN_EXT "\r\n");
}

/* lmtpd_cmd_mail - MAIL FROM */
static void
lmtpd_cmd_mail(struct lmtpd_session *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct str *t;

	if (sess->lhlo == NULL) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: send LHLO first");
		return;
	}
	if (sess->in_mail) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (cmd->mail.size_set && lmtpd_settings.size_limit != 0 &&
	    cmd->mail.size > lmtpd_settings.size_limit) {
		lmtpd_reply(sess, 552, "5.3.4", "Message size exceeds fixed limit");
		return;
	}
	str_clear(sess->sender);
	if (address_canonical(cmd->addr, sess->sender) < 0) {
		lmtpd_reply(sess, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	queue_id_new(sess->tx_id);
	sess->log.id = sess->tx_id;
	sess->in_mail = true;
	sess->body = cmd->mail.body;
	sess->smtputf8 = cmd->mail.smtputf8;
	sess->size_hint = cmd->mail.size_set ? cmd->mail.size : 0;
	t = str_new(0, 0);
	mem_printable(t, str_c(sess->sender), str_len(sess->sender), 300);
	log_info(&sess->log, "client=%s, from=<%s>", str_c(sess->client_text),
	    str_c(t));
	str_free(&t);
	lmtpd_reply(sess, 250, "2.1.0", "Ok");
}

/*
 * lmtpd_rcpt_split_token - if line p[0..len) is RCPT TO with an XTOKEN=
 * parameter, copy the line without it into out and the decoded token
 * into token; 1 if so, 0 if the line has no XTOKEN (out is then the
 * line unchanged), -1 for a malformed or repeated XTOKEN. Exposed for
 * the unit test.
 */
int lmtpd_rcpt_split_token(const char *p, size_t len, struct str *out,
    struct str *token);

int
lmtpd_rcpt_split_token(const char *p, size_t len, struct str *out,
    struct str *token)
{
	return lmtp_server_split_param("XTOKEN", p, len, out, token);
}

/*
 * lmtpd_rcpt_add_domain - RCPT TO line p[0..len) with "@localhost" put
 * at the end of its path, so that the RFC 5321 parser takes the LMTP
 * form "RCPT TO:<user>" (the domain is dropped again after parsing).
 */
static void
lmtpd_rcpt_add_domain(const char *p, size_t len, struct str *out)
{
	size_t i = 8, end;

	while (i < len && p[i] == ' ')
		i++;
	end = lmtp_server_path_end(p, len, i);
	if (end > i && p[i] == '<' && p[end - 1] == '>')
		end--;
	str_clear(out);
	str_append(out, p, end);
	str_append_cstr(out, "@localhost");
	str_append(out, p + end, len - end);
}

/* lmtpd_token_ok - a token the store can keep, with room for "/N" */
static bool
lmtpd_token_ok(const struct str *token)
{
	size_t i;

	if (str_len(token) == 0 || str_len(token) > LMTPD_TOKEN_MAX)
		return false;
	for (i = 0; i < str_len(token); i++)
		if ((unsigned char)str_c(token)[i] <= 0x20 ||
		    (unsigned char)str_c(token)[i] >= 0x7f)
			return false;
	return true;
}

/* lmtpd_cmd_rcpt - RCPT TO (token already split off) */
static void
lmtpd_cmd_rcpt(struct lmtpd_session *sess, const struct str *token)
{
	if (!sess->in_mail) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (sess->bdat_active) {
		lmtpd_reply(sess, 503, "5.5.1", "Error: RCPT after BDAT");
		return;
	}
	if (lmtpd_settings.rcpt_limit != 0 &&
	    sess->nrcpt >= lmtpd_settings.rcpt_limit) {
		lmtpd_reply(sess, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	if (token != NULL && !lmtpd_token_ok(token)) {
		lmtpd_reply(sess, 501, "5.5.4", "Error: bad XTOKEN value");
		return;
	}
	lmtpd_rcpt_check(sess, sess->cmd->addr, token != NULL ? str_c(token) : NULL);
}

/* lmtpd_summary - the counts for the disconnect line */
static void
lmtpd_summary(struct lmtpd_session *sess, struct str *out)
{
	unsigned ok = 0, all = 0;
	size_t i;
	enum smtp_verb v;
	char name[16];

	for (i = 0; i < N_ELEMENTS(lmtpd_summary_order) + 1; i++) {
		if (i < N_ELEMENTS(lmtpd_summary_order)) {
			v = lmtpd_summary_order[i];
			pst_strlcpy(name, smtp_verb_name(v), sizeof(name));
		} else {
			v = LMTPD_VERB_COUNT;
			pst_strlcpy(name, "UNKNOWN", sizeof(name));
		}
		if (sess->count_all[v] == 0)
			continue;
		for (char *p = name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (sess->count_ok[v] == sess->count_all[v])
			str_printf(out, " %s=%u", name, sess->count_all[v]);
		else
			str_printf(out, " %s=%u/%u", name, sess->count_ok[v],
			    sess->count_all[v]);
		ok += sess->count_ok[v];
		all += sess->count_all[v];
	}
	if (ok == all)
		str_printf(out, " commands=%u", all);
	else
		str_printf(out, " commands=%u/%u", ok, all);
}

/* lmtpd_dispatch - one parsed command; false to end the session */
static bool
lmtpd_dispatch(struct lmtpd_session *sess, const struct str *token)
{
	switch (sess->cmd->verb) {
	case SMTP_VERB_LHLO:
		lmtpd_cmd_lhlo(sess);
		break;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		lmtpd_reply(sess, 500, "5.5.1", "Error: this is LMTP: use LHLO");
		break;
	case SMTP_VERB_MAIL:
		lmtpd_cmd_mail(sess);
		break;
	case SMTP_VERB_RCPT:
		lmtpd_cmd_rcpt(sess, token);
		break;
	case SMTP_VERB_DATA:
		lmtpd_cmd_data(sess);
		break;
	case SMTP_VERB_BDAT:
		lmtpd_cmd_bdat(sess);
		break;
	case SMTP_VERB_RSET:
		lmtpd_tx_reset(sess);
		lmtpd_reply(sess, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_NOOP:
		lmtpd_reply(sess, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		lmtpd_reply(sess, 221, "2.0.0", "Bye");
		sess->quit = true;
		break;
	case SMTP_VERB_VRFY:
		lmtpd_reply(sess, 252, "2.0.0", "Cannot VRFY user, but will "
		    "accept message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
	case SMTP_VERB_STARTTLS:
	case SMTP_VERB_AUTH:
		lmtpd_reply(sess, 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_VERB_HELP:
		lmtpd_reply(sess, 214, "2.0.0", "Commands: LHLO MAIL RCPT DATA "
		    "BDAT RSET NOOP QUIT VRFY HELP; see RFC 2033");
		break;
	case SMTP_VERB_NONE:
		lmtpd_reply(sess, 500, "5.5.2", "Error: command not recognized");
		break;
	}
	return !sess->quit;
}

/* lmtpd_loop - read, parse and run commands until the end */
static const char *
lmtpd_loop(struct lmtpd_session *sess)
{
	struct stream *s = sess->stream;
	struct str *cmdline = str_new(0, 0), *token = str_new(64, 512);
	enum smtp_proto_error perr;
	enum stream_result r;
	const char *why = NULL, *enh;
	unsigned slot;
	int code, split;

	for (;;) {
		if (sess->errors >= LMTPD_ERROR_LIMIT) {
			log_info(NULL, "too many errors from %s",
			    str_c(sess->client_text));
			(void)stream_printf(s, "421 4.7.0 %s Error: too many "
			    "errors\r\n", lmtpd_settings.myhostname);
			(void)stream_flush(s);
			break;
		}
		/* RFC 2920: flush only when we would wait for the client. */
		if (stream_pending(s) == 0 && stream_flush(s) < 0) {
			why = "lost connection";
			break;
		}
		stream_set_timeout(s, lmtpd_settings.timeout);
		r = stream_read_line(s, sess->line, SMTP_PROTO_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			sess->cur_verb = SMTP_VERB_NONE;
			sess->count_all[LMTPD_VERB_COUNT]++;
			lmtpd_reply(sess, 500, "5.5.2", "Error: line too long");
			continue;
		}
		if (r == STREAM_TIMEOUT) {
			(void)stream_printf(s, "421 4.4.2 %s Error: timeout "
			    "exceeded\r\n", lmtpd_settings.myhostname);
			(void)stream_flush(s);
			why = "timeout";
			break;
		}
		if (r != STREAM_OK) {
			why = "lost connection";
			break;
		}
		str_chomp(sess->line);
		split = lmtpd_rcpt_split_token(str_c(sess->line),
		    str_len(sess->line), cmdline, token);
		perr = smtp_cmd_parse(sess->cmd, str_c(cmdline), str_len(cmdline),
		    LMTPD_EXT, sess->in_mail && sess->smtputf8, 0);
		if (perr == SMTP_PROTO_ERR_RECIPIENT &&
		    sess->cmd->addr_error == ADDRESS_ERR_NO_DOMAIN) {
			/* LMTP: a bare local user (RFC 2033 4.1 leaves it to us) */
			lmtpd_rcpt_add_domain(str_c(cmdline), str_len(cmdline),
			    sess->scratch);
			perr = smtp_cmd_parse(sess->cmd, str_c(sess->scratch),
			    str_len(sess->scratch), LMTPD_EXT,
			    sess->in_mail && sess->smtputf8, 0);
			if (perr == SMTP_PROTO_OK)
				str_clear(sess->cmd->addr->domain);
		}
		sess->cur_verb = sess->cmd->verb;
		slot = sess->cmd->verb == SMTP_VERB_NONE ? LMTPD_VERB_COUNT :
		    (unsigned)sess->cmd->verb;
		sess->count_all[slot]++;
		sess->last_code = 0;
		if (perr == SMTP_PROTO_OK && split < 0) {
			lmtpd_reply(sess, 501, "5.5.4", "Error: bad XTOKEN parameter");
			continue;
		}
		if (perr != SMTP_PROTO_OK) {
			smtp_proto_error_reply(perr, &code, &enh);
			if (perr == SMTP_PROTO_ERR_UNKNOWN_VERB)
				lmtpd_reply(sess, code, enh, "Error: command not recognized");
			else
				lmtpd_reply(sess, code, enh, "Error: %s",
				    smtp_proto_error_str(perr));
			continue;
		}
		if (!lmtpd_dispatch(sess, split > 0 ? token : NULL)) {
			if (sess->last_code >= 200 && sess->last_code < 400)
				sess->count_ok[slot]++;
			if (sess->quit && !sess->lost)
				(void)stream_flush(s);
			else
				why = "lost connection";
			break;
		}
		if (sess->last_code >= 200 && sess->last_code < 400)
			sess->count_ok[slot]++;
		if (stream_error(s) != STREAM_OK) {
			why = "lost connection";
			break;
		}
	}
	str_free(&cmdline);
	str_free(&token);
	return why;
}

/* lmtpd_session_run - see lmtpd.h */
void
lmtpd_session_run(struct stream *s, const char *peer)
{
	struct lmtpd_session sess_buf, *sess = &sess_buf;
	struct str *summary;
	const char *why;

	memset(sess, 0, sizeof(*sess));
	sess->stream = s;
	sess->client_text = str_new(0, 0);
	str_append_cstr(sess->client_text, peer);
	sess->cmd = smtp_cmd_new();
	sess->line = str_new(0, 0);
	sess->scratch = str_new(0, 0);
	sess->sender = str_new(0, 0);
	sess->bdat_fail_text = str_new(0, 0);
	sess->msg.fd = -1;
	stream_set_timeout(s, lmtpd_settings.timeout);

	log_info(NULL, "connect from %s", str_c(sess->client_text));
	(void)stream_printf(s, "220 %s LMTP Postern\r\n", lmtpd_settings.myhostname);
	why = lmtpd_loop(sess);
	if (why != NULL && sess->cur_verb != SMTP_VERB_NONE)
		log_info(sess->in_mail ? &sess->log : NULL, "%s after %s from %s",
		    why, smtp_verb_name(sess->cur_verb), str_c(sess->client_text));
	else if (why != NULL && strcmp(why, "lost connection") != 0)
		log_info(NULL, "%s from %s", why, str_c(sess->client_text));
	lmtpd_tx_reset(sess);

	summary = str_new(0, 0);
	lmtpd_summary(sess, summary);
	log_info(NULL, "disconnect from %s%s", str_c(sess->client_text),
	    str_c(summary));
	str_free(&summary);

	free(sess->rcpts);
	free(sess->lhlo);
	str_free(&sess->client_text);
	smtp_cmd_free(&sess->cmd);
	str_free(&sess->line);
	str_free(&sess->scratch);
	str_free(&sess->sender);
	str_free(&sess->bdat_fail_text);
	lmtpd_msg_reset(&sess->msg);
}
