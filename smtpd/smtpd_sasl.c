/* SPDX-License-Identifier: MIT */
/*
 * smtpd_sasl - SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN
 *
 * DESCRIPTION
 *	AUTH is offered when smtpd_sasl_auth_enable is set and, with
 *	smtpd_tls_auth_only (the default), only after TLS: a client that
 *	tries AUTH in plaintext then gets 538 5.7.11, and the password is
 *	never read. The password is checked through lib/auth
 *	(auth_verify_password), so the backend can change without touching
 *	this file. Decoded credentials are wiped (explicit_bzero) as soon
 *	as they are checked.
 *
 *	With libsasl2 set up (lib/sasl_server: smtpd_sasl_auth_enable and
 *	a working sasl_server_setup in pre_jail), every mechanism of
 *	$sasl_mechanisms runs through it: PLAIN and LOGIN are still checked
 *	by lib/auth (its checkpass callback), GSSAPI uses the smtp/ key in
 *	$auth_krb5_keytab. One SASL session per connection, renewed after
 *	STARTTLS and after each failed exchange. Without libsasl2 the
 *	built-in PLAIN and LOGIN below remain.
 *
 *	Replies: 235 2.7.0 success; 535 5.7.8 bad credentials; 454 4.7.0
 *	backend failure; 501 5.7.0 "*" cancel or bad base64; 504 5.5.4
 *	unknown mechanism; 503 5.5.1 already authenticated or during a
 *	transaction.
 *
 * SEE ALSO
 *	RFC 4954, RFC 4616; Postfix smtpd_sasl_proto.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "log.h"
#include "sasl_server.h"
#include "smtp_proto.h"
#include "stream.h"
#include "str.h"

#include "smtpd.h"

/*
 * The connection's SASL session (one connection per process at a time),
 * made for the TLS state in smtpd_sasl_tls, and the name of the
 * mechanism that authenticated (sess->auth_method points here).
 */
static struct sasl_server *smtpd_sasl;
static bool smtpd_sasl_tls;
static char smtpd_sasl_method[32];

/* smtpd_sasl_get - the session's SASL session, or NULL without libsasl2 */
static struct sasl_server *
smtpd_sasl_get(struct smtpd_session *sess)
{
	const char *err;
	bool tls = sess->tls != NULL;

	if (!sasl_server_ready())
		return NULL;
	if (smtpd_sasl != NULL && smtpd_sasl_tls == tls)
		return smtpd_sasl;
	sasl_server_free(&smtpd_sasl);
	smtpd_sasl = sasl_server_create("smtp", &sess->log,
	    tls || !smtpd_settings.tls_auth_only, &err);
	if (smtpd_sasl == NULL)
		log_error(NULL, "%s: SASL session: %s", str_c(sess->client_text),
		    err);
	smtpd_sasl_tls = tls;
	return smtpd_sasl;
}

/* smtpd_sasl_end - see smtpd.h */
void
smtpd_sasl_end(void)
{
	sasl_server_free(&smtpd_sasl);
}

/* smtpd_sasl_mechs - see smtpd.h */
void
smtpd_sasl_mechs(struct smtpd_session *sess, struct str *out)
{
	struct sasl_server *sa = smtpd_sasl_get(sess);

	if (sa == NULL) {
		str_append_cstr(out, "PLAIN LOGIN");
		return;
	}
	sasl_server_mechs(sa, out, " ");
	if (str_len(out) > 0 && str_c(out)[0] == ' ')
		str_delete_head(out, 1);
}

/* smtpd_auth_offered - AUTH in the EHLO reply and accepted now */
bool
smtpd_auth_offered(const struct smtpd_session *sess)
{
	if (!smtpd_settings.sasl_enable)
		return false;
	if (smtpd_settings.tls_auth_only && sess->tls == NULL)
		return false;
	return true;
}

/* smtpd_b64_value - the 6-bit value of c, or -1 */
static int
smtpd_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* smtpd_base64_decode - see smtpd.h: strict, padding required */
bool
smtpd_base64_decode(const char *p, size_t n, struct str *out)
{
	size_t i, pad = 0;
	int v[4], j;
	unsigned char b[3];

	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i += 4) {
		for (j = 0; j < 4; j++) {
			if (p[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[j] = smtpd_b64_value((unsigned char)p[i + j])) < 0)
				return false;
		}
		b[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		b[1] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
		b[2] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
		if (str_append(out, b, 3 - pad) < 0)
			return false;
	}
	return true;
}

/*
 * smtpd_sasl_read - send "334 challenge" and read the client's answer
 * into out (decoded). Returns 1, 0 for "*" or bad base64 (reply sent),
 * -1 if the connection broke.
 */
static int
smtpd_sasl_read(struct smtpd_session *sess, const char *challenge,
    struct str *out)
{
	struct stream *s = sess->stream;
	enum stream_result r;

	(void)stream_printf(s, "334 %s\r\n", challenge);
	if (stream_flush(s) < 0)
		return -1;
	r = stream_read_line(s, sess->line, SMTP_PROTO_LINE_MAX);
	if (r == STREAM_TOO_LONG) {
		smtpd_reply(sess, 500, "5.5.6", "Error: authentication line too long");
		return 0;
	}
	if (r != STREAM_OK)
		return -1;
	str_chomp(sess->line);
	if (str_equals_cstr(sess->line, "*")) {
		smtpd_reply(sess, 501, "5.7.0", "Authentication aborted");
		return 0;
	}
	str_clear(out);
	if (!smtpd_base64_decode(str_c(sess->line), str_len(sess->line), out)) {
		smtpd_reply(sess, 501, "5.5.2", "Error: invalid base64 data");
		return 0;
	}
	return 1;
}

/* smtpd_sasl_check - verify and answer; wipes nothing itself */
static void
smtpd_sasl_check(struct smtpd_session *sess, const char *mech,
    const char *user, const char *pass)
{
	const char *err = NULL;
	struct str *u;

	switch (auth_verify_password(user, pass, &err)) {
	case AUTH_OK:
		sess->auth_user = xstrdup(user);
		sess->auth_method = mech;
		smtpd_reply(sess, 235, "2.7.0", "Authentication successful");
		break;
	case AUTH_FAIL:
		u = str_new(0, 0);
		mem_printable(u, user, strlen(user), 100);
		log_warn(NULL, "%s: SASL %s authentication failed for user %s",
		    str_c(sess->client_text), mech, str_c(u));
		str_free(&u);
		smtpd_reply(sess, 535, "5.7.8", "Error: authentication failed");
		break;
	case AUTH_TEMPFAIL:
		log_error(NULL, "%s: SASL %s: authentication backend: %s",
		    str_c(sess->client_text), mech, err != NULL ? err : "failure");
		smtpd_reply(sess, 454, "4.7.0", "Temporary authentication failure");
		break;
	}
}

/* smtpd_sasl_plain - RFC 4616: [authzid] NUL authcid NUL passwd */
static void
smtpd_sasl_plain(struct smtpd_session *sess, struct str *buf)
{
	const char *p = str_c(buf), *end = p + str_len(buf);
	const char *authz, *authc, *pass, *nul1, *nul2;

	authz = p;
	if ((nul1 = memchr(p, '\0', str_len(buf))) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))) == NULL ||
	    memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL) {
		smtpd_reply(sess, 501, "5.5.2", "Error: malformed PLAIN response");
		return;
	}
	authc = nul1 + 1;
	pass = nul2 + 1;
	if (*authc == '\0') {
		smtpd_reply(sess, 535, "5.7.8", "Error: authentication failed");
		return;
	}
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		smtpd_reply(sess, 535, "5.7.8",
		    "Error: authorization identity not allowed");
		return;
	}
	smtpd_sasl_check(sess, "PLAIN", authc, pass);
}

/* smtpd_sasl_run - AUTH through lib/sasl_server */
static void
smtpd_sasl_run(struct smtpd_session *sess, struct sasl_server *sa)
{
	struct smtp_cmd *cmd = sess->cmd;
	struct str *out = str_new(0, 0), *u;
	enum sasl_server_result r;
	enum stream_result sr;
	const char *err = NULL, *mech;
	bool reset = true;

	if (!sasl_server_mech_offered(sa, str_c(cmd->arg))) {
		smtpd_reply(sess, 504, "5.5.4",
		    "Error: unsupported authentication mechanism");
		goto out;
	}
	r = sasl_server_begin(sa, str_c(cmd->arg),
	    cmd->arg2_set ? str_c(cmd->arg2) : NULL,
	    cmd->arg2_set ? str_len(cmd->arg2) : 0, out, &err);
	while (r == SASL_SERVER_CONTINUE) {
		(void)stream_printf(sess->stream, "334 %s\r\n", str_c(out));
		if (stream_flush(sess->stream) < 0) {
			sess->quit = sess->lost = true;
			goto out;
		}
		sr = stream_read_line(sess->stream, sess->line,
		    SMTP_PROTO_LINE_MAX);
		if (sr == STREAM_TOO_LONG) {
			smtpd_reply(sess, 500, "5.5.6",
			    "Error: authentication line too long");
			goto out;
		}
		if (sr != STREAM_OK) {
			sess->quit = sess->lost = true;
			goto out;
		}
		str_chomp(sess->line);
		if (str_equals_cstr(sess->line, "*")) {
			smtpd_reply(sess, 501, "5.7.0", "Authentication aborted");
			goto out;
		}
		r = sasl_server_next(sa, str_c(sess->line), str_len(sess->line),
		    out, &err);
		explicit_bzero(str_data(sess->line), str_len(sess->line));
	}
	mech = sasl_server_mech(sa);
	switch (r) {
	case SASL_SERVER_OK:
		sess->auth_user = xstrdup(sasl_server_user(sa));
		snprintf(smtpd_sasl_method, sizeof(smtpd_sasl_method), "%s",
		    mech);
		sess->auth_method = smtpd_sasl_method;
		reset = false;
		smtpd_reply(sess, 235, "2.7.0", "Authentication successful");
		break;
	case SASL_SERVER_TEMPFAIL:
	case SASL_SERVER_ERROR:
		log_error(NULL, "%s: SASL %s: %s", str_c(sess->client_text), mech,
		    err != NULL ? err : "failure");
		smtpd_reply(sess, 454, "4.7.0", "Temporary authentication failure");
		break;
	case SASL_SERVER_BADB64:
		smtpd_reply(sess, 501, "5.5.2", "Error: invalid base64 data");
		break;
	case SASL_SERVER_BADMECH:
		smtpd_reply(sess, 504, "5.5.4",
		    "Error: unsupported authentication mechanism");
		break;
	case SASL_SERVER_NOAUTHZ:
	case SASL_SERVER_FAIL:
	default:
		u = str_new(0, 0);
		if (err != NULL)
			mem_printable(u, err, strlen(err), 200);
		log_warn(NULL, "%s: SASL %s authentication failed%s%s",
		    str_c(sess->client_text), mech, err != NULL ? ": " : "",
		    str_c(u));
		str_free(&u);
		smtpd_reply(sess, 535, "5.7.8", r == SASL_SERVER_NOAUTHZ ?
		    "Error: authorization identity not allowed" :
		    "Error: authentication failed");
		break;
	}
out:
	/* a session that ran an exchange is not reused for another */
	if (reset)
		sasl_server_free(&smtpd_sasl);
	str_free(&out);
}

/* smtpd_cmd_auth - AUTH mechanism [initial-response] */
void
smtpd_cmd_auth(struct smtpd_session *sess)
{
	struct smtp_cmd *cmd = sess->cmd;
	const char *mech = str_c(cmd->arg);
	struct str *a = NULL, *b = NULL;
	struct sasl_server *sa;
	int r;

	if (!smtpd_settings.sasl_enable) {
		smtpd_reply(sess, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (smtpd_settings.tls_auth_only && sess->tls == NULL) {
		smtpd_reply(sess, 538, "5.7.11",
		    "Encryption required for requested authentication mechanism");
		return;
	}
	if (sess->auth_user != NULL) {
		smtpd_reply(sess, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (sess->in_mail) {
		smtpd_reply(sess, 503, "5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	a = str_new(0, 1024);
	b = str_new(0, 1024);
	if ((sa = smtpd_sasl_get(sess)) != NULL) {
		smtpd_sasl_run(sess, sa);
	} else if (strcmp(mech, "PLAIN") == 0) {
		if (cmd->arg2_set && strcmp(str_c(cmd->arg2), "=") == 0) {
			/* "=" is an empty initial response */
		} else if (cmd->arg2_set) {
			if (!smtpd_base64_decode(str_c(cmd->arg2), str_len(cmd->arg2), a)) {
				smtpd_reply(sess, 501, "5.5.2", "Error: invalid base64 data");
				goto done;
			}
		} else if ((r = smtpd_sasl_read(sess, "", a)) <= 0) {
			if (r < 0)
				sess->quit = sess->lost = true;
			goto done;
		}
		smtpd_sasl_plain(sess, a);
	} else if (strcmp(mech, "LOGIN") == 0) {
		if (cmd->arg2_set) {
			if (!smtpd_base64_decode(str_c(cmd->arg2), str_len(cmd->arg2), a)) {
				smtpd_reply(sess, 501, "5.5.2", "Error: invalid base64 data");
				goto done;
			}
		} else if ((r = smtpd_sasl_read(sess, "VXNlcm5hbWU6", a)) <= 0) {
			if (r < 0)
				sess->quit = sess->lost = true;
			goto done;
		}
		if ((r = smtpd_sasl_read(sess, "UGFzc3dvcmQ6", b)) <= 0) {
			if (r < 0)
				sess->quit = sess->lost = true;
			goto done;
		}
		if (memchr(str_c(a), '\0', str_len(a)) != NULL ||
		    memchr(str_c(b), '\0', str_len(b)) != NULL)
			smtpd_reply(sess, 535, "5.7.8", "Error: authentication failed");
		else
			smtpd_sasl_check(sess, "LOGIN", str_c(a), str_c(b));
	} else {
		smtpd_reply(sess, 504, "5.5.4", "Error: unsupported authentication mechanism");
	}
done:
	explicit_bzero(str_data(a), str_len(a));
	explicit_bzero(str_data(b), str_len(b));
	explicit_bzero(str_data(sess->line), str_len(sess->line));
	str_free(&a);
	str_free(&b);
}
