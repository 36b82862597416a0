/* SPDX-License-Identifier: MIT */
/*
 * smtpd_session - one SMTP conversation: the command loop and its state
 *
 * DESCRIPTION
 *	smtpd_session_run() greets the client (after smtpd_greet_pause, if
 *	set, dropping clients that talk first), then reads one command line
 *	at a time with a bounded stream read, parses it with
 *	smtp_cmd_parse() and dispatches on the verb. Replies are buffered
 *	and flushed only when no pipelined input is waiting (RFC 2920), or
 *	before the session must wait for the client (354, 334, 220 for
 *	STARTTLS, the end).
 *
 *	States: the session knows its HELO name, whether TLS is on, the
 *	authenticated user; the transaction (MAIL .. end of DATA/BDAT LAST
 *	or RSET) holds the cleanup connection, the sender and the recipient
 *	count. A transaction opens its cleanup connection at MAIL, so the
 *	queue ID exists (and is the log context) from MAIL on, as in
 *	Postfix; envelope and recipients go to cleanup as they are
 *	accepted. Every way out of a transaction (RSET, a new HELO/EHLO,
 *	STARTTLS, QUIT, a lost connection) aborts the cleanup connection so
 *	that no queue file is left behind.
 *
 *	Errors: every 4xx/5xx reply counts towards smtpd_hard_error_limit;
 *	at the limit the client gets 421 and is dropped. A line over
 *	SMTP_PROTO_LINE_MAX is answered "500 5.5.2 line too long" and its
 *	rest skipped; the session goes on. Timeouts get 421 4.4.2.
 *
 *	Nothing here exits: the session returns to the caller, which closes
 *	the connection.
 *
 * SEE ALSO
 *	RFC 5321, RFC 2920, RFC 3207, RFC 2034; Postfix src/smtpd/smtpd.c.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "log.h"
#include "smtp_proto.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "smtpd.h"

/* Verbs in the disconnect summary, in Postfix's order. */
static const enum smtp_verb smtpd_summary_order[] = {
	SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH,
	SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA, SMTP_VERB_BDAT,
	SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
	SMTP_VERB_HELP, SMTP_VERB_QUIT,
};

/* smtpd_protocol - the Received:/queue file protocol name */
const char *
smtpd_protocol(const struct smtpd_session *sess)
{
	static const char *const names[2][2][2] = {
		/* [utf8][tls][auth] */
		{ { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
		{ { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
	};

	if (!sess->esmtp && !sess->smtputf8)
		return sess->tls != NULL ? "SMTPS" : "SMTP";
	return names[sess->smtputf8][sess->tls != NULL][sess->auth_user != NULL];
}

/* smtpd_log_reject - log a 4xx/5xx reply Postfix-style */
static void
smtpd_log_reject(struct smtpd_session *sess, int code, const char *text)
{
	const struct log_ctx *ctx = sess->queue_id != NULL ? &sess->log :
	    &sess->noqueue;
	struct str *t = str_new(0, 0);

	mem_printable(t, text, strlen(text), 300);
	if (sess->cur_verb == SMTP_VERB_MAIL || sess->cur_verb == SMTP_VERB_RCPT ||
	    sess->cur_verb == SMTP_VERB_DATA || sess->cur_verb == SMTP_VERB_BDAT ||
	    sess->cur_verb == SMTP_VERB_VRFY)
		log_info(ctx, "reject: %s from %s: %d %s; from=<%s> proto=%s helo=<%s>",
		    smtp_verb_name(sess->cur_verb), str_c(sess->client_text),
		    code, str_c(t), sess->sender != NULL && sess->in_mail ?
		    str_c(sess->sender) : "", smtpd_protocol(sess),
		    sess->helo != NULL ? sess->helo : "");
	else
		log_debug(ctx, "%s from %s: %d %s",
		    sess->cur_verb == SMTP_VERB_NONE ? "command" :
		    smtp_verb_name(sess->cur_verb), str_c(sess->client_text),
		    code, str_c(t));
	str_free(&t);
}

/* smtpd_reply_raw - "code text\r\n"; text already has its enhanced code */
void
smtpd_reply_raw(struct smtpd_session *sess, int code, const char *text)
{
	(void)stream_printf(sess->stream, "%d %s\r\n", code, text);
	sess->last_code = code;
	if (code >= 400) {
		sess->errors++;
		smtpd_log_reject(sess, code, text);
	}
}

/* smtpd_reply - see smtpd.h */
void
smtpd_reply(struct smtpd_session *sess, int code, const char *enh,
    const char *fmt, ...)
{
	va_list ap;

	str_clear(sess->scratch);
	if (enh != NULL)
		str_printf(sess->scratch, "%s ", enh);
	va_start(ap, fmt);
	str_vprintf(sess->scratch, fmt, ap);
	va_end(ap);
	smtpd_reply_raw(sess, code, str_c(sess->scratch));
}

/*
 * smtpd_timeout_reply - "421 4.4.2 timeout" after a read timed out. The
 * stream's error is sticky (every later stream call fails), so the reply
 * goes straight to the socket, without waiting. Over TLS that is not
 * possible (it would not be a TLS record): the client just sees the
 * connection close.
 */
void
smtpd_timeout_reply(struct smtpd_session *sess)
{
	struct str *msg;

	if (sess->tls != NULL)
		return;
	msg = str_new(0, 0);
	str_printf(msg, "421 4.4.2 %s Error: timeout exceeded\r\n",
	    smtpd_settings.myhostname);
	(void)send(stream_fd(sess->stream), str_c(msg), str_len(msg),
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	str_free(&msg);
}

/* smtpd_tx_reset - end the transaction; abort any cleanup connection */
void
smtpd_tx_reset(struct smtpd_session *sess)
{
	cleanup_client_abort(&sess->cleanup);
	XFREE(sess->queue_id);
	sess->log.id = NULL;
	sess->in_mail = false;
	sess->tx_broken = false;
	str_clear(sess->sender);
	sess->body = SMTP_BODY_NONE;
	sess->smtputf8 = false;
	sess->nrcpt = 0;
	str_clear(sess->first_rcpt);
	sess->bdat_active = false;
	sess->bdat_failed = false;
	sess->bdat_fail_code = 0;
	str_clear(sess->bdat_fail_text);
	sess->content_size = 0;
}

/* smtpd_tls_offered - STARTTLS is advertised and accepted now */
static bool
smtpd_tls_offered(const struct smtpd_session *sess)
{
	return sess->tls_ctx != NULL && sess->tls == NULL &&
	    smtpd_settings.tls_level != SMTPD_TLS_NONE;
}

/* smtpd_ext - the extensions advertised (parameters of others are refused) */
static unsigned
smtpd_ext(const struct smtpd_session *sess)
{
	unsigned ext;

	/* HELO clients get no extensions; before any greeting, be lenient. */
	if (sess->helo != NULL && !sess->esmtp)
		return 0;
	ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME |
	    SMTP_EXT_CHUNKING | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN |
	    SMTP_EXT_PIPELINING | SMTP_EXT_ENHANCEDSTATUSCODES;
	if (smtpd_tls_offered(sess))
		ext |= SMTP_EXT_STARTTLS;
	if (smtpd_auth_offered(sess))
		ext |= SMTP_EXT_AUTH;
	return ext;
}

/* smtpd_cmd_helo - HELO and EHLO; a new greeting resets the transaction */
static void
smtpd_cmd_helo(struct smtpd_session *sess, bool esmtp)
{
	struct stream *s = sess->stream;
	const char *host = smtpd_settings.myhostname;

	smtpd_tx_reset(sess);
	free(sess->helo);
	sess->helo = xstrdup(str_c(sess->cmd->arg));
	sess->esmtp = esmtp;
	sess->last_code = 250;
	if (!esmtp) {
		(void)stream_printf(s, "250 %s\r\n", host);
		return;
	}
	/* RFC 2034: no enhanced codes in the EHLO reply. */
	(void)stream_printf(s, "250-%s\r\n", host);
	(void)stream_puts(s, "250-PIPELINING\r\n");
	if (smtpd_settings.size_limit != 0)
		(void)stream_printf(s, "250-SIZE %llu\r\n",
		    (unsigned long long)smtpd_settings.size_limit);
	else
		(void)stream_puts(s, "250-SIZE\r\n");
	if (!smtpd_settings.disable_vrfy)
		(void)stream_puts(s, "250-VRFY\r\n");
	if (smtpd_tls_offered(sess))
		(void)stream_puts(s, "250-STARTTLS\r\n");
	if (smtpd_auth_offered(sess)) {
		struct str *mechs = str_new(0, 0);

		smtpd_sasl_mechs(sess, mechs);
		if (str_len(mechs) > 0)
			(void)stream_printf(s, "250-AUTH %s\r\n", str_c(mechs));
		str_free(&mechs);
	}
	(void)stream_puts(s, "250-ENHANCEDSTATUSCODES\r\n");
	(void)stream_puts(s, "250-8BITMIME\r\n");
	(void)stream_puts(s, "250-DSN\r\n");
	(void)stream_puts(s, "250-SMTPUTF8\r\n");
	(void)stream_puts(s, "250-BINARYMIME\r\n");
	(void)stream_puts(s, "250 CHUNKING\r\n");
}

/*
 * smtpd_tls_log - Postfix's "Trusted/Untrusted/Anonymous TLS connection
 * established" line, with the client certificate's subject and
 * fingerprint when one was presented
 */
static void
smtpd_tls_log(struct smtpd_session *sess)
{
	struct str *peer = str_new(0, 0);

	if (tls_session_peer_cert(sess->tls)) {
		str_append_cstr(peer, ", client certificate subject=");
		(void)tls_session_peer_subject(sess->tls, peer);
		str_append_cstr(peer, " fingerprint=");
		(void)tls_session_peer_fingerprint(sess->tls, peer);
	}
	log_info(NULL, "%s TLS connection established from %s: %s%s%s",
	    tls_session_trust(sess->tls), str_c(sess->client_text),
	    str_c(sess->tls_desc), str_c(peer),
	    tls_session_reused(sess->tls) ? ", session resumed" : "");
	str_free(&peer);
}

/* smtpd_cmd_starttls - RFC 3207; pipelined plaintext is discarded by tls */
static bool
smtpd_cmd_starttls(struct smtpd_session *sess)
{
	struct str *err;

	if (sess->tls != NULL) {
		smtpd_reply(sess, 554, "5.5.1", "Error: TLS already active");
		return true;
	}
	if (!smtpd_tls_offered(sess)) {
		smtpd_reply(sess, 502, "5.5.1", "Error: command not implemented");
		return true;
	}
	smtpd_reply(sess, 220, "2.0.0", "Ready to start TLS");
	err = str_new(0, 0);
	sess->tls = tls_session_start(sess->tls_ctx, sess->stream, NULL,
	    smtpd_settings.timeout, err);
	if (sess->tls == NULL) {
		log_warn(NULL, "TLS handshake failed with %s: %s",
		    str_c(sess->client_text), str_c(err));
		str_free(&err);
		return false;
	}
	str_free(&err);
	str_clear(sess->tls_desc);
	tls_session_describe(sess->tls, sess->tls_desc);
	smtpd_tls_log(sess);
	/* RFC 3207 4.2: forget everything learned before TLS. */
	smtpd_tx_reset(sess);
	XFREE(sess->helo);
	sess->esmtp = false;
	XFREE(sess->auth_user);
	sess->auth_method = NULL;
	return true;
}

/* smtpd_cmd_mail - MAIL FROM */
static void
smtpd_cmd_mail(struct smtpd_session *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct queue_envelope env;
	const char *err;
	unsigned flags = 0;

	if (sess->in_mail) {
		smtpd_reply(sess, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (sess->helo == NULL && smtpd_settings.helo_required) {
		smtpd_reply(sess, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (smtpd_settings.tls_level == SMTPD_TLS_ENCRYPT && sess->tls == NULL) {
		smtpd_reply(sess, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (!smtpd_check_client(sess))
		return;
	if (cmd->mail.size_set && smtpd_settings.size_limit != 0 &&
	    cmd->mail.size > smtpd_settings.size_limit) {
		smtpd_reply(sess, 552, "5.3.4", "Message size exceeds fixed limit");
		return;
	}
	str_clear(sess->sender);
	if (address_canonical(cmd->addr, sess->sender) < 0) {
		smtpd_reply(sess, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	if (sess->auth_user != NULL)
		flags |= CLEANUP_FLAG_SUBMISSION;
	sess->cleanup = cleanup_client_open(smtpd_settings.cleanup_socket, flags, &err);
	if (sess->cleanup == NULL) {
		log_error(&sess->noqueue, "cannot connect to cleanup (%s): %s",
		    smtpd_settings.cleanup_socket, err);
		smtpd_reply(sess, 451, "4.3.0", "Error: queue file write error");
		return;
	}
	sess->queue_id = xstrdup(cleanup_client_id(sess->cleanup));
	sess->log.id = sess->queue_id;
	sess->in_mail = true;
	sess->body = cmd->mail.body;
	sess->smtputf8 = cmd->mail.smtputf8;

	memset(&env, 0, sizeof(env));
	(void)gettimeofday(&env.arrival, NULL);
	env.sender = str_c(sess->sender);
	env.envid = cmd->mail.envid_set ? str_c(cmd->mail.envid) : NULL;
	env.ret = cmd->mail.ret;
	env.body = cmd->mail.body;
	env.smtputf8 = cmd->mail.smtputf8;
	env.client_name = sess->client.name;
	env.client_addr = sess->client.addr;
	env.helo = sess->helo;
	env.protocol = smtpd_protocol(sess);
	env.auth_user = sess->auth_user;
	if (sess->auth_user != NULL)
		log_info(&sess->log, "client=%s, sasl_method=%s, sasl_username=%s",
		    str_c(sess->client_text), sess->auth_method, sess->auth_user);
	else
		log_info(&sess->log, "client=%s", str_c(sess->client_text));
	if (cleanup_client_envelope(sess->cleanup, &env, &err) < 0) {
		log_error(&sess->log, "cleanup: envelope: %s", err);
		sess->tx_broken = true;
	}
	smtpd_reply(sess, 250, "2.1.0", "Ok");
}

/* smtpd_cmd_rcpt - RCPT TO */
static void
smtpd_cmd_rcpt(struct smtpd_session *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct queue_rcpt rcpt;
	const char *err;

	if (!sess->in_mail) {
		smtpd_reply(sess, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (sess->bdat_active) {
		smtpd_reply(sess, 503, "5.5.1", "Error: RCPT after BDAT");
		return;
	}
	if (smtpd_settings.rcpt_limit != 0 && sess->nrcpt >= smtpd_settings.rcpt_limit) {
		smtpd_reply(sess, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	if (!smtpd_check_rcpt(sess, cmd->addr))
		return;
	str_clear(sess->scratch);
	(void)address_canonical(cmd->addr, sess->scratch);
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = str_c(sess->scratch);
	rcpt.notify = cmd->rcpt.notify;
	if (cmd->rcpt.orcpt_set) {
		rcpt.orcpt_type = str_c(cmd->rcpt.orcpt_type);
		rcpt.orcpt = str_c(cmd->rcpt.orcpt);
	}
	if (!sess->tx_broken &&
	    cleanup_client_rcpt(sess->cleanup, &rcpt, &err) < 0) {
		log_error(&sess->log, "cleanup: recipient: %s", err);
		sess->tx_broken = true;
	}
	if (sess->nrcpt++ == 0)
		str_set(sess->first_rcpt, str_c(sess->scratch), str_len(sess->scratch));
	smtpd_reply(sess, 250, "2.1.5", "Ok");
}

/* smtpd_cmd_vrfy - 252 unless enabled; then local users only */
static void
smtpd_cmd_vrfy(struct smtpd_session *sess)
{
	struct address *addr;
	const char *arg = str_c(sess->cmd->arg);
	size_t len = str_len(sess->cmd->arg);
	int ret;

	if (smtpd_settings.disable_vrfy) {
		smtpd_reply(sess, 252, "2.0.0",
		    "Cannot VRFY user, but will accept message and attempt delivery");
		return;
	}
	addr = address_new();
	if (len > 0 && arg[0] == '<')
		ret = address_parse_path(arg, len, ADDRESS_ALLOW_POSTMASTER, addr);
	else
		ret = address_parse_mailbox(arg, len, ADDRESS_ALLOW_POSTMASTER |
		    ADDRESS_ALLOW_NO_DOMAIN, addr);
	if (ret != ADDRESS_OK) {
		smtpd_reply(sess, 501, "5.1.3", "Bad recipient address syntax");
	} else if (str_len(addr->domain) > 0 &&
	    !smtpd_local_domain(str_c(addr->domain))) {
		smtpd_reply(sess, 252, "2.0.0",
		    "Cannot VRFY user, but will accept message and attempt delivery");
	} else if ((ret = smtpd_local_user(addr)) < 0) {
		smtpd_reply(sess, 450, "4.3.0", "Error: temporary lookup failure");
	} else if (ret == 0) {
		smtpd_reply(sess, 550, "5.1.1",
		    "Recipient address rejected: User unknown in local recipient table");
	} else {
		str_clear(sess->scratch);
		(void)address_canonical(addr, sess->scratch);
		smtpd_reply(sess, 250, "2.0.0", "<%s>", str_c(sess->scratch));
	}
	address_free(&addr);
}

/* smtpd_summary - the counts for the disconnect line */
static void
smtpd_summary(struct smtpd_session *sess, struct str *out)
{
	unsigned ok = 0, all = 0;
	size_t i;
	enum smtp_verb v;
	char name[16];

	for (i = 0; i < N_ELEMENTS(smtpd_summary_order) + 1; i++) {
		if (i < N_ELEMENTS(smtpd_summary_order)) {
			v = smtpd_summary_order[i];
			pst_strlcpy(name, smtp_verb_name(v), sizeof(name));
		} else {
			v = SMTPD_VERB_COUNT;
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

/* smtpd_greet_wait - false if the client spoke before the greeting */
static bool
smtpd_greet_wait(struct smtpd_session *sess)
{
	struct pollfd pfd;
	int n;

	if (smtpd_settings.greet_pause == 0)
		return true;
	pfd.fd = stream_fd(sess->stream);
	pfd.events = POLLIN;
	do
		n = poll(&pfd, 1, (int)smtpd_settings.greet_pause * 1000);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return true;
	/*
	 * Read what came (bounded), so that closing the socket does not
	 * reset the connection before the client can read our reply.
	 */
	str_clear(sess->line);
	(void)stream_read_some(sess->stream, sess->line, 4096);
	log_info(NULL, "reject: pre-greeting traffic from %s",
	    str_c(sess->client_text));
	smtpd_reply(sess, 554, "5.5.1", "Error: talking before the greeting");
	return false;
}

/* smtpd_dispatch - one parsed command; false to end the session */
static bool
smtpd_dispatch(struct smtpd_session *sess)
{
	switch (sess->cmd->verb) {
	case SMTP_VERB_HELO:
		smtpd_cmd_helo(sess, false);
		break;
	case SMTP_VERB_EHLO:
		smtpd_cmd_helo(sess, true);
		break;
	case SMTP_VERB_LHLO:
		smtpd_reply(sess, 502, "5.5.2", "Error: command not recognized");
		break;
	case SMTP_VERB_STARTTLS:
		return smtpd_cmd_starttls(sess);
	case SMTP_VERB_AUTH:
		smtpd_cmd_auth(sess);
		break;
	case SMTP_VERB_MAIL:
		smtpd_cmd_mail(sess);
		break;
	case SMTP_VERB_RCPT:
		smtpd_cmd_rcpt(sess);
		break;
	case SMTP_VERB_DATA:
		smtpd_cmd_data(sess);
		break;
	case SMTP_VERB_BDAT:
		smtpd_cmd_bdat(sess);
		break;
	case SMTP_VERB_RSET:
		smtpd_tx_reset(sess);
		smtpd_reply(sess, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_NOOP:
		smtpd_reply(sess, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		smtpd_reply(sess, 221, "2.0.0", "Bye");
		sess->quit = true;
		break;
	case SMTP_VERB_VRFY:
		smtpd_cmd_vrfy(sess);
		break;
	case SMTP_VERB_EXPN:
		smtpd_reply(sess, 502, "5.5.1", "Error: EXPN is disabled");
		break;
	case SMTP_VERB_HELP:
		smtpd_reply(sess, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT "
		    "DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH; see RFC 5321");
		break;
	case SMTP_VERB_NONE:
		smtpd_reply(sess, 500, "5.5.2", "Error: command not recognized");
		break;
	}
	return !sess->quit;
}

/* smtpd_loop - read, parse and run commands until the end */
static const char *
smtpd_loop(struct smtpd_session *sess)
{
	struct stream *s = sess->stream;
	enum smtp_proto_error perr;
	enum stream_result r;
	unsigned slot;
	const char *enh;
	int code;

	for (;;) {
		if (smtpd_settings.hard_error_limit != 0 &&
		    sess->errors >= smtpd_settings.hard_error_limit) {
			log_info(NULL, "too many errors after %s from %s",
			    sess->cur_verb == SMTP_VERB_NONE ? "unknown command" :
			    smtp_verb_name(sess->cur_verb), str_c(sess->client_text));
			(void)stream_printf(s, "421 4.7.0 %s Error: too many errors\r\n",
			    smtpd_settings.myhostname);
			(void)stream_flush(s);
			return NULL;
		}
		/* RFC 2920: flush only when we would wait for the client. */
		if (stream_pending(s) == 0 && stream_flush(s) < 0)
			return "lost connection";
		stream_set_timeout(s, smtpd_settings.timeout);
		r = stream_read_line(s, sess->line, SMTP_PROTO_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			sess->cur_verb = SMTP_VERB_NONE;
			sess->count_all[SMTPD_VERB_COUNT]++;
			smtpd_reply(sess, 500, "5.5.2", "Error: line too long");
			continue;
		}
		if (r == STREAM_TIMEOUT) {
			smtpd_timeout_reply(sess);
			return "timeout";
		}
		if (r != STREAM_OK)
			return "lost connection";
		str_chomp(sess->line);
		perr = smtp_cmd_parse(sess->cmd, str_c(sess->line),
		    str_len(sess->line), smtpd_ext(sess),
		    sess->in_mail && sess->smtputf8, 0);
		sess->cur_verb = sess->cmd->verb;
		slot = sess->cmd->verb == SMTP_VERB_NONE ? SMTPD_VERB_COUNT :
		    (unsigned)sess->cmd->verb;
		sess->count_all[slot]++;
		sess->last_code = 0;
		if (perr != SMTP_PROTO_OK) {
			smtp_proto_error_reply(perr, &code, &enh);
			if (perr == SMTP_PROTO_ERR_UNKNOWN_VERB)
				smtpd_reply(sess, code, enh, "Error: command not recognized");
			else
				smtpd_reply(sess, code, enh, "Error: %s",
				    smtp_proto_error_str(perr));
			continue;
		}
		if (!smtpd_dispatch(sess)) {
			if (sess->last_code >= 200 && sess->last_code < 400)
				sess->count_ok[slot]++;
			if (sess->quit && !sess->lost) {
				(void)stream_flush(s);
				return NULL;
			}
			return "lost connection";
		}
		if (sess->last_code >= 200 && sess->last_code < 400)
			sess->count_ok[slot]++;
		if (stream_error(s) != STREAM_OK)
			return "lost connection";
	}
}

/* smtpd_session_run - see smtpd.h */
void
smtpd_session_run(struct stream *s, const struct smtpd_client *client,
    struct tls_context *tls_ctx)
{
	struct smtpd_session sess_buf, *sess = &sess_buf;
	struct str *summary;
	const char *why = NULL;

	memset(sess, 0, sizeof(*sess));
	sess->stream = s;
	sess->client = *client;
	sess->tls_ctx = tls_ctx;
	sess->noqueue.id = "NOQUEUE";
	sess->client_text = str_new(0, 0);
	str_printf(sess->client_text, "%s[%s]", client->name, client->addr);
	sess->tls_desc = str_new(0, 0);
	sess->cmd = smtp_cmd_new();
	sess->line = str_new(0, 0);
	sess->scratch = str_new(0, 0);
	sess->sender = str_new(0, 0);
	sess->first_rcpt = str_new(0, 0);
	sess->bdat_fail_text = str_new(0, 0);
	stream_set_timeout(s, smtpd_settings.timeout);

	log_info(NULL, "connect from %s", str_c(sess->client_text));
	if (smtpd_settings.wrappermode) {
		struct str *err = str_new(0, 0);

		if (tls_ctx == NULL) {
			log_error(NULL, "smtpd_tls_wrappermode is set but TLS is "
			    "not available (tls_cert_file, tls_key_file)");
			why = "no TLS";
		} else if ((sess->tls = tls_session_start(tls_ctx, s, NULL,
		    smtpd_settings.timeout, err)) == NULL) {
			log_warn(NULL, "TLS handshake failed with %s: %s",
			    str_c(sess->client_text), str_c(err));
			why = "TLS handshake failure";
		} else {
			tls_session_describe(sess->tls, sess->tls_desc);
			smtpd_tls_log(sess);
		}
		str_free(&err);
	}
	if (why == NULL && smtpd_settings.conn_limit != 0 &&
	    !smtpd_conn_limit(client->addr)) {
		log_warn(NULL, "Connection concurrency limit exceeded: %s",
		    str_c(sess->client_text));
		(void)stream_printf(s, "421 4.7.0 %s Error: too many connections "
		    "from %s\r\n", smtpd_settings.myhostname, client->addr);
		(void)stream_flush(s);
		why = "too many connections";
	}
	if (why == NULL && !smtpd_greet_wait(sess)) {
		(void)stream_flush(s);
		why = "pre-greeting traffic";
	}
	if (why == NULL) {
		(void)stream_printf(s, "220 %s\r\n", smtpd_settings.banner);
		why = smtpd_loop(sess);
	}
	if (why != NULL && sess->cur_verb != SMTP_VERB_NONE)
		log_info(sess->queue_id != NULL ? &sess->log : NULL,
		    "%s after %s from %s", why, smtp_verb_name(sess->cur_verb),
		    str_c(sess->client_text));
	else if (why != NULL && strcmp(why, "lost connection") != 0)
		log_info(NULL, "%s from %s", why, str_c(sess->client_text));
	smtpd_tx_reset(sess);

	summary = str_new(0, 0);
	smtpd_summary(sess, summary);
	log_info(NULL, "disconnect from %s%s", str_c(sess->client_text),
	    str_c(summary));
	str_free(&summary);

	tls_session_free(&sess->tls);
	free(sess->helo);
	if (sess->auth_user != NULL)
		free(sess->auth_user);
	str_free(&sess->client_text);
	str_free(&sess->tls_desc);
	smtp_cmd_free(&sess->cmd);
	str_free(&sess->line);
	str_free(&sess->scratch);
	str_free(&sess->sender);
	str_free(&sess->first_rcpt);
	str_free(&sess->bdat_fail_text);
}
