/* SPDX-License-Identifier: MIT */
/*
 * smtp_session - the SMTP/LMTP client conversation of one delivery
 *
 * DESCRIPTION
 *	Greeting, EHLO (falling back to HELO) or LHLO, STARTTLS by the
 *	TLS policy, AUTH when SASL is on and the next hop has credentials
 *	(smtp_sasl.c; a failure defers, 5xx included), then MAIL FROM with
 *	the parameters the server offers (SIZE, BODY, SMTPUTF8, RET and
 *	ENVID), one RCPT TO per recipient (NOTIFY and ORCPT with DSN, and
 *	XTOKEN=<delivery token> when the server advertises XPOSTERN-TOKEN,
 *	so that a hand-off retried after a crash is acknowledged without a
 *	second copy), then the content: DATA with dot-stuffing, or one
 *	BDAT ... LAST when the message is BINARYMIME (RFC 3030; that needs
 *	CHUNKING and BINARYMIME from the server). With PIPELINING the
 *	commands go out in one write and the replies are read in order
 *	(RFC 2920). LMTP gives one reply per accepted recipient after the
 *	content (RFC 2033 4.2), SMTP one for all.
 *
 *	Every reply maps to a status: 2xx delivered, 4xx deferred, 5xx
 *	bounced, with the server's enhanced status code (or X.0.0) and its
 *	text, "host said: ... (in reply to RCPT TO command)". A broken
 *	connection, a timeout or a malformed reply defers every recipient
 *	that has no status yet.
 *
 *	Each phase has its own deadline ($smtp_*_timeout), set on the
 *	stream before the phase.
 *
 * SEE ALSO
 *	RFC 5321, RFC 2033, RFC 2920, RFC 3030, RFC 3461, RFC 4954, smtp(8)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "smtp.h"
#include "smtp_proto.h"
#include "stream.h"
#include "tls.h"

#define SMTP_CHUNK	(64 * 1024)
#define SMTP_TOKEN_EXT	"XPOSTERN-TOKEN"

struct smtp_conv {
	struct smtp_delivery *d;
	struct stream *s;
	struct smtp_reply *reply;
	struct str *line;
	struct str *text;		/* the last reply as one line */
	unsigned ext;
	uint64_t size_max;
	bool token_ext;
	const char *stage;		/* for "lost connection ... while X" */
	bool broken;
	bool next_ok;			/* the caller may try another server */
	bool downgrade;			/* 8BITMIME -> quoted-printable */
	bool greeted;			/* EHLO/LHLO (and STARTTLS) done */
	struct tls_session *tls;
	struct str *auth_mechs;		/* the last EHLO's AUTH mechanisms */
};

/* smtp_conv_broken - the connection failed: defer everything open */
static void
smtp_conv_broken(struct smtp_conv *c, enum stream_result r, const char *what)
{
	struct str *why = str_new(128, 0);

	c->broken = true;
	if (r == STREAM_TIMEOUT)
		str_printf(why, "conversation with %s timed out while %s",
		    str_c(c->d->relay), c->stage);
	else if (what != NULL)
		str_printf(why, "%s from %s while %s", what,
		    str_c(c->d->relay), c->stage);
	else
		str_printf(why, "lost connection with %s while %s",
		    str_c(c->d->relay), c->stage);
	smtp_set_all(c->d, DELIVER_STATUS_DEFERRED,
	    r == STREAM_TIMEOUT ? "4.4.2" : "4.4.2", str_c(why));
	str_free(&why);
}

/* smtp_read_reply - one whole reply; false when the connection failed */
static bool
smtp_read_reply(struct smtp_conv *c)
{
	enum smtp_reply_result rr;
	enum stream_result r;
	const char *error = NULL;
	size_t i;

	if (c->broken)
		return false;
	smtp_reply_clear(c->reply);
	do {
		r = stream_read_line(c->s, c->line, SMTP_PROTO_LINE_MAX + 2);
		if (r != STREAM_OK) {
			smtp_conv_broken(c, r, r == STREAM_TOO_LONG ?
			    "reply line too long" : NULL);
			return false;
		}
		str_chomp(c->line);
		rr = smtp_reply_add_line(c->reply, str_c(c->line),
		    str_len(c->line), &error);
		if (rr == SMTP_REPLY_ERROR) {
			smtp_conv_broken(c, STREAM_ERROR, "malformed reply");
			return false;
		}
	} while (rr != SMTP_REPLY_DONE);
	/* the reply as one line, for logs and DSNs */
	str_clear(c->text);
	str_printf(c->text, "%d", c->reply->code);
	if (c->reply->enhanced[0] != '\0')
		str_printf(c->text, " %s", c->reply->enhanced);
	for (i = 0; i < c->reply->nlines; i++) {
		if (str_len(c->reply->lines[i]) == 0)
			continue;
		str_append_c(c->text, ' ');
		mem_printable(c->text, str_c(c->reply->lines[i]),
		    str_len(c->reply->lines[i]), 1000);
		if (str_len(c->text) > 2000)
			break;
	}
	return true;
}

/* smtp_reply_dsn - the reply's enhanced code, or X.0.0 from its class */
static void
smtp_reply_dsn(const struct smtp_reply *reply, char dsn[12])
{
	if (reply->enhanced[0] != '\0' && reply->enhanced[0] ==
	    '0' + reply->code / 100) {
		(void)snprintf(dsn, 12, "%s", reply->enhanced);
		return;
	}
	dsn[0] = (char)('0' + (reply->code / 100) % 10);
	memcpy(dsn + 1, ".0.0", 5);
}

/* smtp_status_of - deliver_status for a reply class */
static enum deliver_status
smtp_status_of(int code)
{
	if (code >= 200 && code < 300)
		return DELIVER_STATUS_DELIVERED;
	if (code >= 500)
		return DELIVER_STATUS_BOUNCED;
	return DELIVER_STATUS_DEFERRED;
}

/*
 * smtp_reply_status - set the status of recipient i (or of all open ones
 * when i is (size_t)-1) from the last reply
 */
static void
smtp_reply_status(struct smtp_conv *c, size_t i, const char *command)
{
	struct str *t = str_new(256, 0);
	enum deliver_status st = smtp_status_of(c->reply->code);
	char dsn[12];

	smtp_reply_dsn(c->reply, dsn);
	if (st == DELIVER_STATUS_DELIVERED)
		str_append_str(t, c->text);
	else
		str_printf(t, "host %s said: %s (in reply to %s command)",
		    str_c(c->d->relay), str_c(c->text), command);
	if (i == (size_t)-1)
		smtp_set_all(c->d, st, dsn, str_c(t));
	else
		smtp_set_status(c->d, i, st, DELIVER_RES_F_REMOTE |
		    (st == DELIVER_STATUS_DELIVERED &&
		    (c->ext & SMTP_EXT_DSN) != 0 ? DELIVER_RES_F_DSN_PASSED : 0),
		    dsn, str_c(t));
	str_free(&t);
}

/* smtp_send - write and flush a command; false when the connection failed */
static bool
smtp_flush(struct smtp_conv *c)
{
	if (c->broken)
		return false;
	if (stream_flush(c->s) < 0) {
		smtp_conv_broken(c, stream_error(c->s), NULL);
		return false;
	}
	return true;
}

/* smtp_ehlo_token - did the EHLO/LHLO reply advertise XPOSTERN-TOKEN? */
static bool
smtp_ehlo_token(const struct smtp_reply *reply)
{
	size_t i, n = strlen(SMTP_TOKEN_EXT);

	for (i = 1; i < reply->nlines; i++) {
		const char *p = str_c(reply->lines[i]);
		size_t len = str_len(reply->lines[i]);

		if (len >= n && strncasecmp(p, SMTP_TOKEN_EXT, n) == 0 &&
		    (len == n || p[n] == ' '))
			return true;
	}
	return false;
}

/*
 * smtp_ehlo_parse - extensions, size limit, XPOSTERN-TOKEN and the AUTH
 * mechanisms ("AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN") of the
 * EHLO/LHLO reply in c->reply
 */
static void
smtp_ehlo_parse(struct smtp_conv *c)
{
	size_t i;

	c->ext = smtp_reply_ehlo(c->reply, &c->size_max);
	c->token_ext = smtp_ehlo_token(c->reply);
	str_clear(c->auth_mechs);
	for (i = 1; i < c->reply->nlines; i++) {
		const char *p = str_c(c->reply->lines[i]);
		size_t len = str_len(c->reply->lines[i]);

		if (len > 5 && strncasecmp(p, "AUTH", 4) == 0 &&
		    (p[4] == ' ' || p[4] == '=') && str_len(c->auth_mechs) == 0)
			mem_printable(c->auth_mechs, p + 5, len - 5, 1000);
	}
}

/*
 * smtp_auth_fail - SASL authentication did not work with this server:
 * defer everything (a 5xx from the server too, as Postfix does: the
 * credentials are a local setting an operator can fix), try the next
 */
static bool
smtp_auth_fail(struct smtp_conv *c, const char *dsn, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static bool
smtp_auth_fail(struct smtp_conv *c, const char *dsn, const char *fmt, ...)
{
	struct str *t = str_new(128, 0);
	va_list ap;

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	log_warn(&c->d->log, "%s", str_c(t));
	smtp_set_all(c->d, DELIVER_STATUS_DEFERRED, dsn, str_c(t));
	str_free(&t);
	c->next_ok = true;
	return false;
}

/*
 * smtp_auth - after EHLO (and STARTTLS): with SASL on, a server that
 * offers AUTH and credentials for this next hop, authenticate (RFC
 * 4954) before MAIL. true when the session may go on (also without
 * AUTH: then the mail goes unauthenticated, as in Postfix).
 */
static bool
smtp_auth(struct smtp_conv *c)
{
	struct smtp_delivery *d = c->d;
	struct str *cred, *out, *why;
	struct smtp_sasl *sa = NULL;
	const char *keys[3], *mech = NULL;
	char *hostkey = NULL, *p;
	bool has_ir = false, ok = false;
	int r;

	if (smtp_settings.lmtp || !smtp_sasl_enabled() ||
	    (c->ext & SMTP_EXT_AUTH) == 0 || str_len(c->auth_mechs) == 0 ||
	    d->nexthop == NULL)
		return true;
	/* "[host]:port", then "[host]" or "domain", then the server's name */
	keys[0] = d->nexthop;
	hostkey = xstrdup(d->nexthop);
	p = hostkey[0] == '[' ? strchr(hostkey, ']') : NULL;
	if (p != NULL)
		p[1] = '\0';
	else if ((p = strrchr(hostkey, ':')) != NULL &&
	    strchr(hostkey, ':') == p)
		*p = '\0';
	keys[1] = strcmp(hostkey, d->nexthop) != 0 ? hostkey : NULL;
	keys[2] = d->host;
	cred = str_new(64, 0);
	out = str_new(256, 0);
	why = str_new(128, 0);
	r = smtp_sasl_passwd_lookup(&d->log, keys, N_ELEMENTS(keys), cred, why);
	if (r < 0) {
		log_warn(&d->log, "%s", str_c(why));
		smtp_set_all(d, DELIVER_STATUS_DEFERRED, "4.3.0", str_c(why));
		goto out;
	}
	if (r == 0) {
		ok = true;		/* no credentials: go on without */
		goto out;
	}
	sa = smtp_sasl_start(&d->log, d->host != NULL ? d->host : "localhost",
	    str_c(c->auth_mechs), c->tls != NULL, str_c(cred), str_len(cred),
	    out, &has_ir, &mech, why);
	if (sa == NULL) {
		(void)smtp_auth_fail(c, "4.7.0", "SASL authentication failed; "
		    "cannot authenticate to server %s: %s", str_c(d->relay),
		    str_c(why));
		goto out;
	}
	/* never logged: the exchange carries the password */
	c->stage = "sending AUTH";
	stream_set_timeout(c->s, smtp_settings.helo_timeout);
	(void)stream_printf(c->s, "AUTH %s", mech);
	if (has_ir)
		(void)stream_printf(c->s, " %s", str_len(out) > 0 ?
		    str_c(out) : "=");
	(void)stream_puts(c->s, "\r\n");
	for (;;) {
		if (!smtp_flush(c) || !smtp_read_reply(c)) {
			c->next_ok = true;
			goto out;
		}
		if (c->reply->code != 334)
			break;
		if (smtp_sasl_step(sa, c->reply->nlines > 0 ?
		    str_c(c->reply->lines[0]) : "", c->reply->nlines > 0 ?
		    str_len(c->reply->lines[0]) : 0, out, why) < 0) {
			/* cancel (RFC 4954 4), then give up on this server */
			(void)stream_puts(c->s, "*\r\n");
			if (smtp_flush(c))
				(void)smtp_read_reply(c);
			(void)smtp_auth_fail(c, "4.7.0", "SASL authentication "
			    "failed; cannot authenticate to server %s: %s",
			    str_c(d->relay), str_c(why));
			goto out;
		}
		(void)stream_printf(c->s, "%s\r\n", str_c(out));
	}
	/* 235; any 2xx, as Postfix takes it (smtp-sink answers 250) */
	if (c->reply->code / 100 == 2) {
		log_debug(&d->log, "SASL authentication to %s with %s "
		    "succeeded", str_c(d->relay), mech);
		ok = true;
		goto out;
	}
	{
		char dsn[12];

		smtp_reply_dsn(c->reply, dsn);
		dsn[0] = '4';	/* deferred, whatever the class: see above */
		(void)smtp_auth_fail(c, dsn, "SASL authentication failed; "
		    "server %s said: %s", str_c(d->relay), str_c(c->text));
	}
out:
	smtp_sasl_free(&sa);
	explicit_bzero(str_data(cred), str_len(cred));
	explicit_bzero(str_data(out), str_len(out));
	str_free(&cred);
	str_free(&out);
	str_free(&why);
	free(hostkey);
	return ok;
}

/* smtp_tls_fail - the TLS policy stops this server: defer, try the next */
static bool
smtp_tls_fail(struct smtp_conv *c, const char *dsn, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static bool
smtp_tls_fail(struct smtp_conv *c, const char *dsn, const char *fmt, ...)
{
	struct str *t = str_new(128, 0);
	va_list ap;

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	log_info(&c->d->log, "%s", str_c(t));
	smtp_set_all(c->d, DELIVER_STATUS_DEFERRED, dsn, str_c(t));
	str_free(&t);
	c->next_ok = true;
	return false;
}

/*
 * smtp_starttls - after EHLO: STARTTLS by the next hop's TLS level
 * (may: when offered; encrypt: required; verify: required with a
 * certificate chain that $smtp_tls_CAfile trusts; dane: required and
 * matching the server's TLSA records), then EHLO again
 */
static bool
smtp_starttls(struct smtp_conv *c)
{
	struct smtp_delivery *d = c->d;
	struct str *err;
	bool required = d->tls_level >= SMTP_TLS_ENCRYPT;

	if (smtp_settings.lmtp || d->tls_level == SMTP_TLS_NONE)
		return true;
	if ((c->ext & SMTP_EXT_STARTTLS) == 0 ||
	    smtp_settings.tls_ctx == NULL) {
		if (!required)
			return true;
		return smtp_tls_fail(c, "4.7.4", "TLS is required, but %s "
		    "host %s", smtp_settings.tls_ctx == NULL ? "could not be "
		    "set up for" : "was not offered by", str_c(d->relay));
	}
	c->stage = "sending STARTTLS";
	(void)stream_puts(c->s, "STARTTLS\r\n");
	if (!smtp_flush(c) || !smtp_read_reply(c)) {
		c->next_ok = true;
		return false;
	}
	if (c->reply->code != 220) {
		if (!required)
			return true;
		return smtp_tls_fail(c, "4.7.5", "TLS is required, but host "
		    "%s refused to start TLS: %s", str_c(d->relay),
		    str_c(c->text));
	}
	err = str_new(128, 0);
	c->tls = smtp_tls_start(d, c->s, err);
	if (c->tls == NULL) {
		c->broken = true;
		(void)smtp_tls_fail(c, "4.7.5", "Cannot start TLS with %s: "
		    "handshake failure: %s", str_c(d->relay), str_c(err));
		str_free(&err);
		return false;
	}
	if (d->dane != NULL) {		/* DANE: see smtp_connect.c */
		if (!smtp_tls_dane_check(d, c->tls, err)) {
			(void)smtp_tls_fail(c, "4.7.5", "%s", str_c(err));
			str_free(&err);
			return false;
		}
	} else {
		str_clear(err);
		tls_session_describe(c->tls, err);
		log_info(&d->log, "%s TLS connection established to %s: %s%s",
		    tls_session_verified(c->tls) ? "Trusted" : "Untrusted",
		    str_c(d->relay), str_c(err), tls_session_reused(c->tls) ?
		    ", session resumed" : "");
	}
	str_free(&err);
	if (d->tls_level == SMTP_TLS_VERIFY && !tls_session_verified(c->tls))
		return smtp_tls_fail(c, "4.7.5", "Server certificate not "
		    "trusted by smtp_tls_CAfile (host %s)", str_c(d->relay));
	if (d->tls_level == SMTP_TLS_VERIFY &&
	    !tls_session_name_matches(c->tls, d->host))
		return smtp_tls_fail(c, "4.7.5", "Server certificate is not "
		    "for %s (host %s)", d->host, str_c(d->relay));
	c->stage = "sending EHLO";
	(void)stream_printf(c->s, "EHLO %s\r\n", smtp_settings.helo_name);
	if (!smtp_flush(c) || !smtp_read_reply(c)) {
		c->next_ok = true;
		return false;
	}
	if (c->reply->code / 100 != 2) {
		smtp_reply_status(c, (size_t)-1, "EHLO");
		c->next_ok = true;
		return false;
	}
	smtp_ehlo_parse(c);
	/* the policy holds, and a TLS 1.3 server's tickets have come */
	smtp_tls_remember(d, c->tls);
	return true;
}

/* smtp_helo - greeting and EHLO/LHLO (HELO fallback for SMTP) */
static bool
smtp_helo(struct smtp_conv *c)
{
	c->stage = "receiving the initial server greeting";
	stream_set_timeout(c->s, smtp_settings.helo_timeout);
	if (!smtp_read_reply(c))
		return false;
	if (c->reply->code / 100 != 2) {
		smtp_reply_status(c, (size_t)-1, "the initial greeting");
		return false;
	}
	c->stage = smtp_settings.lmtp ? "sending LHLO" : "sending EHLO";
	(void)stream_printf(c->s, "%s %s\r\n", smtp_settings.lmtp ? "LHLO" :
	    "EHLO", smtp_settings.helo_name);
	if (!smtp_flush(c) || !smtp_read_reply(c))
		return false;
	if (c->reply->code / 100 == 2) {
		smtp_ehlo_parse(c);
		return smtp_starttls(c) && smtp_auth(c);
	}
	if (smtp_settings.lmtp || c->reply->code / 100 != 5) {
		smtp_reply_status(c, (size_t)-1, smtp_settings.lmtp ? "LHLO" :
		    "EHLO");
		return false;
	}
	c->stage = "sending HELO";
	(void)stream_printf(c->s, "HELO %s\r\n", smtp_settings.helo_name);
	if (!smtp_flush(c) || !smtp_read_reply(c))
		return false;
	if (c->reply->code / 100 != 2) {
		smtp_reply_status(c, (size_t)-1, "HELO");
		return false;
	}
	c->ext = 0;
	str_clear(c->auth_mechs);
	return smtp_starttls(c);
}

/* smtp_xtext - append " KEY=xtext(value)" */
static void
smtp_xtext_param(struct stream *s, const char *key, const char *value)
{
	struct str *x = str_new(64, 0);

	(void)smtp_proto_xtext_encode(value, strlen(value), x);
	(void)stream_printf(s, " %s=%s", key, str_c(x));
	str_free(&x);
}

/* smtp_mail_cmd - MAIL FROM with the parameters the server takes */
static void
smtp_mail_cmd(struct smtp_conv *c)
{
	const struct queue_envelope *env = queue_file_envelope(c->d->qf);

	(void)stream_printf(c->s, "MAIL FROM:<%s>", c->d->req->sender);
	if ((c->ext & SMTP_EXT_SIZE) != 0)
		(void)stream_printf(c->s, " SIZE=%llu", (unsigned long long)
		    queue_file_content_length(c->d->qf));
	if (env->body == SMTP_BODY_8BITMIME && (c->ext & SMTP_EXT_8BITMIME) != 0
	    && !c->downgrade)
		(void)stream_puts(c->s, " BODY=8BITMIME");
	else if (env->body == SMTP_BODY_BINARYMIME)
		(void)stream_puts(c->s, " BODY=BINARYMIME");
	if (env->smtputf8 && (c->ext & SMTP_EXT_SMTPUTF8) != 0)
		(void)stream_puts(c->s, " SMTPUTF8");
	if ((c->ext & SMTP_EXT_DSN) != 0) {
		if (env->ret == SMTP_RET_FULL)
			(void)stream_puts(c->s, " RET=FULL");
		else if (env->ret == SMTP_RET_HDRS)
			(void)stream_puts(c->s, " RET=HDRS");
		if (env->envid != NULL)
			smtp_xtext_param(c->s, "ENVID", env->envid);
	}
	(void)stream_puts(c->s, "\r\n");
}

/* smtp_rcpt_cmd - RCPT TO with NOTIFY/ORCPT (DSN) and XTOKEN */
static void
smtp_rcpt_cmd(struct smtp_conv *c, const struct deliver_rcpt *r)
{
	(void)stream_printf(c->s, "RCPT TO:<%s>", r->address);
	if ((c->ext & SMTP_EXT_DSN) != 0) {
		if ((r->notify & SMTP_NOTIFY_NEVER) != 0)
			(void)stream_puts(c->s, " NOTIFY=NEVER");
		else if (r->notify != 0) {
			const char *sep = " NOTIFY=";

			if ((r->notify & SMTP_NOTIFY_SUCCESS) != 0) {
				(void)stream_printf(c->s, "%sSUCCESS", sep);
				sep = ",";
			}
			if ((r->notify & SMTP_NOTIFY_FAILURE) != 0) {
				(void)stream_printf(c->s, "%sFAILURE", sep);
				sep = ",";
			}
			if ((r->notify & SMTP_NOTIFY_DELAY) != 0)
				(void)stream_printf(c->s, "%sDELAY", sep);
		}
		if (r->orcpt != NULL) {
			struct str *x = str_new(64, 0);

			(void)smtp_proto_xtext_encode(r->orcpt,
			    strlen(r->orcpt), x);
			(void)stream_printf(c->s, " ORCPT=%s;%s", r->orcpt_type,
			    str_c(x));
			str_free(&x);
		}
	}
	if (c->token_ext && r->token[0] != '\0')
		smtp_xtext_param(c->s, "XTOKEN", r->token);
	(void)stream_puts(c->s, "\r\n");
}

/* smtp_send_downgraded - the content converted to 7 bit, dot-stuffed */
static bool
smtp_send_downgraded(struct smtp_conv *c)
{
	uint64_t len = queue_file_content_length(c->d->qf), off = 0;
	struct str *in = str_new(len + 1, 0), *out = str_new(len + len / 2, 0);
	const char *p;
	size_t i, start = 0, n;
	bool bol = true;
	ssize_t r;

	stream_set_timeout(c->s, smtp_settings.data_xfer_timeout);
	c->stage = "sending message body";
	while (off < len) {
		char *buf = str_reserve(in, SMTP_CHUNK);

		r = queue_file_read_content(c->d->qf, buf, SMTP_CHUNK, off);
		if (r <= 0) {
			str_free(&in);
			str_free(&out);
			smtp_set_all(c->d, DELIVER_STATUS_DEFERRED, "4.3.0",
			    "cannot read the queue file");
			c->broken = true;
			return false;
		}
		str_commit(in, (size_t)r);
		off += (uint64_t)r;
	}
	smtp_8bit_downgrade(str_c(in), str_len(in), out);
	str_free(&in);
	p = str_c(out);
	n = str_len(out);
	for (i = 0; i < n; i++) {
		if (bol && p[i] == '.') {
			(void)stream_write(c->s, p + start, i - start);
			(void)stream_write(c->s, ".", 1);
			start = i;
		}
		bol = p[i] == '\n';
	}
	(void)stream_write(c->s, p + start, n - start);
	if (n > 0 && !(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n'))
		(void)stream_write(c->s, "\r\n", 2);
	(void)stream_write(c->s, ".\r\n", 3);
	str_free(&out);
	return smtp_flush(c);
}

/* smtp_send_data - the content, dot-stuffed, then "." */
static bool
smtp_send_data(struct smtp_conv *c)
{
	uint64_t off = 0, len = queue_file_content_length(c->d->qf);
	char *buf = xmalloc(SMTP_CHUNK);
	bool bol = true;
	char last = '\n', prev = '\r';
	ssize_t n;

	stream_set_timeout(c->s, smtp_settings.data_xfer_timeout);
	c->stage = "sending message body";
	while (off < len) {
		size_t i, start = 0;

		n = queue_file_read_content(c->d->qf, buf, SMTP_CHUNK, off);
		if (n <= 0) {
			free(buf);
			smtp_set_all(c->d, DELIVER_STATUS_DEFERRED, "4.3.0",
			    "cannot read the queue file");
			c->broken = true;
			return false;
		}
		for (i = 0; i < (size_t)n; i++) {
			if (bol && buf[i] == '.') {
				(void)stream_write(c->s, buf + start, i - start);
				(void)stream_write(c->s, ".", 1);
				start = i;
			}
			bol = buf[i] == '\n';
		}
		(void)stream_write(c->s, buf + start, (size_t)n - start);
		if (n >= 2) {
			prev = buf[n - 2];
			last = buf[n - 1];
		} else {
			prev = last;
			last = buf[0];
		}
		off += (uint64_t)n;
		if (stream_error(c->s) != STREAM_OK)
			break;
	}
	free(buf);
	if (!(prev == '\r' && last == '\n') && len > 0)
		(void)stream_write(c->s, "\r\n", 2);
	(void)stream_write(c->s, ".\r\n", 3);
	return smtp_flush(c);
}

/* smtp_send_bdat - the content raw in one BDAT ... LAST */
static bool
smtp_send_bdat(struct smtp_conv *c)
{
	uint64_t off = 0, len = queue_file_content_length(c->d->qf);
	char *buf = xmalloc(SMTP_CHUNK);
	ssize_t n;

	stream_set_timeout(c->s, smtp_settings.data_xfer_timeout);
	c->stage = "sending message body";
	(void)stream_printf(c->s, "BDAT %llu LAST\r\n", (unsigned long long)len);
	while (off < len) {
		n = queue_file_read_content(c->d->qf, buf, SMTP_CHUNK, off);
		if (n <= 0) {
			free(buf);
			smtp_set_all(c->d, DELIVER_STATUS_DEFERRED, "4.3.0",
			    "cannot read the queue file");
			c->broken = true;
			return false;
		}
		(void)stream_write(c->s, buf, (size_t)n);
		off += (uint64_t)n;
		if (stream_error(c->s) != STREAM_OK)
			break;
	}
	free(buf);
	return smtp_flush(c);
}

/* smtp_check_features - refuse what the server cannot take, up front */
static bool
smtp_check_features(struct smtp_conv *c)
{
	const struct queue_envelope *env = queue_file_envelope(c->d->qf);
	uint64_t len = queue_file_content_length(c->d->qf);

	if (c->size_max > 0 && len > c->size_max) {
		struct str *t = str_new(128, 0);

		str_printf(t, "message size %llu exceeds size limit %llu of "
		    "server %s", (unsigned long long)len,
		    (unsigned long long)c->size_max, str_c(c->d->relay));
		smtp_set_all(c->d, DELIVER_STATUS_BOUNCED, "5.3.4", str_c(t));
		str_free(&t);
		return false;
	}
	if (env->body == SMTP_BODY_BINARYMIME &&
	    ((c->ext & SMTP_EXT_CHUNKING) == 0 ||
	    (c->ext & SMTP_EXT_BINARYMIME) == 0)) {
		smtp_set_all(c->d, DELIVER_STATUS_BOUNCED, "5.6.3",
		    "binary content (BODY=BINARYMIME) but the server offers "
		    "no BINARYMIME and CHUNKING");
		return false;
	}
	if (env->body == SMTP_BODY_8BITMIME &&
	    (c->ext & SMTP_EXT_8BITMIME) == 0) {
		if (!smtp_settings.downgrade_8bit) {
			smtp_set_all(c->d, DELIVER_STATUS_BOUNCED, "5.6.3",
			    "8-bit content (BODY=8BITMIME), the server offers "
			    "no 8BITMIME and smtp_8bitmime_downgrade = no");
			return false;
		}
		c->downgrade = true;
	}
	if (env->smtputf8 && (c->ext & SMTP_EXT_SMTPUTF8) == 0) {
		smtp_set_all(c->d, DELIVER_STATUS_BOUNCED, "5.6.7",
		    "SMTPUTF8 is required, but was not offered by the server");
		return false;
	}
	return true;
}

/* smtp_quit - say goodbye, briefly; the outcome is already known */
static void
smtp_quit(struct smtp_conv *c)
{
	if (c->broken)
		return;
	stream_set_timeout(c->s, 10);
	(void)stream_puts(c->s, "QUIT\r\n");
	if (stream_flush(c->s) == 0) {
		c->stage = "sending QUIT";
		(void)stream_read_line(c->s, c->line, SMTP_PROTO_LINE_MAX + 2);
	}
}

/*
 * smtp_session_run - the conversation on c (its stream set; greeted when
 * it came from the cache); frees c's contents, parking a cleanly ended
 * session under cache_key (not NULL) instead of QUIT
 */
static bool
smtp_session_run(struct smtp_conv *c, const char *cache_key)
{
	struct smtp_delivery *d = c->d;
	size_t *accepted = xcalloc(d->nrcpts, sizeof(*accepted));
	size_t naccepted = 0, i;
	bool pipelining, bdat, data_sent = false;

	c->reply = smtp_reply_new();
	c->line = str_new(512, 0);
	c->text = str_new(512, 0);
	c->auth_mechs = str_new(64, 0);

	if (!c->greeted) {
		if (!smtp_helo(c)) {
			/* a failed greeting or EHLO (any code): try another */
			c->next_ok = true;
			goto quit;
		}
		c->greeted = true;
	}
	if (!smtp_check_features(c))
		goto quit;
	pipelining = (c->ext & SMTP_EXT_PIPELINING) != 0;
	bdat = queue_file_envelope(d->qf)->body == SMTP_BODY_BINARYMIME;

	/* MAIL, RCPT... and (pipelined) DATA */
	c->stage = "sending MAIL FROM";
	stream_set_timeout(c->s, smtp_settings.mail_timeout);
	smtp_mail_cmd(c);
	if (!pipelining && (!smtp_flush(c) || !smtp_read_reply(c)))
		goto quit;
	if (!pipelining && c->reply->code / 100 != 2) {
		smtp_reply_status(c, (size_t)-1, "MAIL FROM");
		goto quit;
	}
	for (i = 0; i < d->nrcpts; i++) {
		smtp_rcpt_cmd(c, d->rcpts[i].rcpt);
		if (!pipelining) {
			c->stage = "sending RCPT TO";
			stream_set_timeout(c->s, smtp_settings.rcpt_timeout);
			if (!smtp_flush(c) || !smtp_read_reply(c))
				goto quit;
			if (c->reply->code / 100 == 2)
				accepted[naccepted++] = i;
			else
				smtp_reply_status(c, i, "RCPT TO");
		}
	}
	if (pipelining) {
		if (!bdat) {
			(void)stream_puts(c->s, "DATA\r\n");
			data_sent = true;
		}
		c->stage = "sending MAIL FROM";
		if (!smtp_flush(c) || !smtp_read_reply(c))
			goto quit;
		if (c->reply->code / 100 != 2) {
			smtp_reply_status(c, (size_t)-1, "MAIL FROM");
			/* drain the pipelined replies before QUIT */
			for (i = 0; i < d->nrcpts + (data_sent ? 1 : 0); i++)
				if (!smtp_read_reply(c))
					break;
			goto quit;
		}
		c->stage = "sending RCPT TO";
		stream_set_timeout(c->s, smtp_settings.rcpt_timeout);
		for (i = 0; i < d->nrcpts; i++) {
			if (!smtp_read_reply(c))
				goto quit;
			if (c->reply->code / 100 == 2)
				accepted[naccepted++] = i;
			else
				smtp_reply_status(c, i, "RCPT TO");
		}
	}
	if (naccepted == 0) {
		if (data_sent) {
			c->stage = "sending DATA";
			(void)smtp_read_reply(c);
		}
		goto quit;
	}

	/* the content */
	if (bdat) {
		if (!smtp_send_bdat(c))
			goto quit;
	} else {
		c->stage = "sending DATA";
		stream_set_timeout(c->s, smtp_settings.data_init_timeout);
		if (!data_sent) {
			(void)stream_puts(c->s, "DATA\r\n");
			if (!smtp_flush(c))
				goto quit;
		}
		if (!smtp_read_reply(c))
			goto quit;
		if (c->reply->code != 354) {
			for (i = 0; i < naccepted; i++)
				smtp_reply_status(c, accepted[i], "DATA");
			goto quit;
		}
		if (!(c->downgrade ? smtp_send_downgraded(c) :
		    smtp_send_data(c)))
			goto quit;
	}
	c->stage = "sending end of data -- message may be sent more than once";
	stream_set_timeout(c->s, smtp_settings.data_done_timeout);
	if (smtp_settings.lmtp) {
		for (i = 0; i < naccepted; i++) {
			if (!smtp_read_reply(c))
				goto quit;
			smtp_reply_status(c, accepted[i], "end of DATA");
		}
	} else {
		if (!smtp_read_reply(c))
			goto quit;
		for (i = 0; i < naccepted; i++)
			smtp_reply_status(c, accepted[i], "end of DATA");
	}
quit:
	/* a connection lost before the content went: nothing committed */
	if (c->broken && !data_sent && naccepted == 0)
		c->next_ok = true;
	if (cache_key != NULL && c->greeted && !c->broken && !c->next_ok &&
	    smtp_cache_enabled()) {
		/*
		 * At a command boundary: every reply we asked for was read.
		 * A transaction left open (all recipients refused, DATA
		 * refused) is ended by the RSET that proves the session
		 * alive before its next use.
		 */
		struct smtp_conn conn;

		memset(&conn, 0, sizeof(conn));
		conn.s = c->s;
		conn.tls = c->tls;
		conn.ext = c->ext;
		conn.size_max = c->size_max;
		conn.token_ext = c->token_ext;
		c->s = NULL;
		c->tls = NULL;
		smtp_cache_put(cache_key, c->d->host, &conn);
	} else {
		smtp_quit(c);
		tls_session_free(&c->tls);
	}
	/* anything still open: the server never gave a verdict */
	smtp_set_all(d, DELIVER_STATUS_DEFERRED, "4.4.2",
	    "no reply from the server for this recipient");
	free(accepted);
	str_free(&c->auth_mechs);
	str_free(&c->text);
	str_free(&c->line);
	smtp_reply_free(&c->reply);
	stream_free(&c->s);
	return c->next_ok;
}

/* smtp_session - see smtp.h */
bool
smtp_session(struct smtp_delivery *d, int fd, const char *cache_key)
{
	struct smtp_conv conv;

	memset(&conv, 0, sizeof(conv));
	conv.d = d;
	conv.s = stream_new(fd, smtp_settings.helo_timeout, 0);
	return smtp_session_run(&conv, cache_key);
}

/* smtp_session_cached - see smtp.h */
bool
smtp_session_cached(struct smtp_delivery *d, const char *cache_key,
    bool *next_ok_r)
{
	struct smtp_conn conn;
	struct smtp_conv conv;

	if (!smtp_cache_enabled() || !smtp_cache_take(cache_key, &conn))
		return false;
	if (!smtp_conn_probe(&conn, MIN(smtp_settings.helo_timeout, 10))) {
		log_info(&d->log, "cached session with %s was closed; "
		    "reconnecting", str_c(d->relay));
		smtp_conn_close(&conn, false);
		return false;
	}
	log_debug(&d->log, "reusing the session with %s", str_c(d->relay));
	memset(&conv, 0, sizeof(conv));
	conv.d = d;
	conv.s = conn.s;
	conv.tls = conn.tls;
	conv.ext = conn.ext;
	conv.size_max = conn.size_max;
	conv.token_ext = conn.token_ext;
	conv.greeted = true;
	*next_ok_r = smtp_session_run(&conv, cache_key);
	return true;
}
