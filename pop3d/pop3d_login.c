/* SPDX-License-Identifier: MIT */
/*
 * pop3d_login - the AUTHORIZATION state (login role)
 *
 * DESCRIPTION
 *	Greeting, CAPA, STLS, USER/PASS, AUTH (RFC 5034, with or without
 *	an initial response), APOP (refused: the user database keeps
 *	hashes, not the shared secret APOP needs) and QUIT. Every other
 *	command gets -ERR in this state. Command lines are at most
 *	POP3D_LINE_MAX bytes, except AUTH with an initial response
 *	(POP3D_SASL_LINE_MAX: a Kerberos ticket does not fit in 1024);
 *	POP3D_LOGIN_ERRORS bad commands or failed logins end the
 *	connection. Password logins over a connection that is neither TLS
 *	nor (with pop3_loopback_secure) loopback are refused with -ERR
 *	[AUTH] while disable_plaintext_auth is set, and CAPA then offers
 *	neither USER nor the password mechanisms (RFC 2595 4).
 *
 *	AUTH runs the mechanisms of $sasl_mechanisms through
 *	lib/sasl_server (Cyrus libsasl2: PLAIN and LOGIN checked by
 *	lib/auth, GSSAPI with the pop/ key in $auth_krb5_keytab), one SASL
 *	session per connection, renewed after STLS and after each failed
 *	exchange; CAPA's SASL line and AUTH without an argument list what
 *	that session offers. Challenges go out as "+ base64", a "*" line
 *	cancels. If libsasl2 could not be set up, a built-in PLAIN remains.
 *
 *	After a successful login: in the standalone role the session goes
 *	on in this process (pop3d_session_run); in the login role the
 *	connection is handed to the mail service (lib/login_proxy), with
 *	whatever pipelined input is already buffered, and under TLS this
 *	process relays the decrypted stream until the session ends. The
 *	mail side sends the +OK (or -ERR [IN-USE]) for the login command,
 *	because only it can lock and open the maildrop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "auth.h"
#include "login_proxy.h"
#include "sasl_server.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "pop3d.h"

struct login_state {
	struct login_conn *c;
	struct tls_context *tls_ctx;
	char *user;		/* from USER, waiting for PASS */
	unsigned errors;
	bool done;
};

/*
 * The connection's SASL session (NULL without libsasl2). A login
 * process serves one connection at a time, and pop3d_capa (which the
 * mail role shares) finds it here.
 */
static struct sasl_server *login_sasl;

/* pop3d_plaintext_ok - may passwords be sent on this connection? */
static bool
pop3d_plaintext_ok(const struct login_conn *c)
{
	return c->secured || !pop3d_settings.disable_plaintext_auth;
}

/* login_sasl_reset - a fresh SASL session for the connection's state */
static void
login_sasl_reset(const struct login_conn *c)
{
	const char *err;

	sasl_server_free(&login_sasl);
	if (!sasl_server_ready())
		return;
	login_sasl = sasl_server_create("pop", &c->log, pop3d_plaintext_ok(c),
	    &err);
	if (login_sasl == NULL)
		log_error(&c->log, "SASL session: %s", err);
}

/* login_mechs - the mechanisms AUTH accepts now, each after prefix */
static void
login_mechs(const struct login_conn *c, struct str *out, const char *prefix)
{
	if (login_sasl != NULL)
		sasl_server_mechs(login_sasl, out, prefix);
	else if (pop3d_plaintext_ok(c)) {
		str_append_cstr(out, prefix);
		str_append_cstr(out, "PLAIN");
	}
}

/* pop3d_capa - see pop3d.h */
void
pop3d_capa(struct str *out, const struct login_conn *c, bool tls_available,
    bool authenticated)
{
	struct str *mechs;

	str_append_cstr(out, "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
	    "AUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\n"
	    "LOGIN-DELAY 0\r\nIMPLEMENTATION Postern\r\n");
	if (authenticated)
		return;
	if (tls_available && !c->tls)
		str_append_cstr(out, "STLS\r\n");
	if (pop3d_plaintext_ok(c))
		str_append_cstr(out, "USER\r\n");
	mechs = str_new(0, 0);
	login_mechs(c, mechs, " ");
	if (str_len(mechs) > 0)
		str_printf(out, "SASL%s\r\n", str_c(mechs));
	str_free(&mechs);
}

static void
login_reply(struct login_state *st, const char *text)
{
	stream_puts(st->c->s, text);
	stream_puts(st->c->s, "\r\n");
	stream_flush(st->c->s);
}

/* user_fold - the canonical (lower-case) user name */
static void
user_fold(char *p)
{
	for (; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* login_handoff - hand the authenticated session over */
static void
login_handoff(struct login_state *st, const char *user)
{
	struct login_conn *c = st->c;
	struct login_handoff h;
	const char *err;
	int pair[2] = { -1, -1 };
	int client_fd;

	if (pop3d_settings.role == POP3D_ROLE_STANDALONE) {
		stream_set_timeout(c->s, pop3d_settings.timeout);
		pop3d_session_run(c, user);
		st->done = true;
		return;
	}
	if (login_conn_handoff_record(c, user, NULL, &h) < 0) {
		login_reply(st, "-ERR Too much pipelined input");
		st->done = true;
		return;
	}
	if (c->tls) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
			log_error(&c->log, "socketpair: %m");
			login_reply(st, "-ERR [SYS/TEMP] Internal error");
			login_handoff_clear(&h);
			st->done = true;
			return;
		}
		client_fd = pair[1];
	} else
		client_fd = stream_fd(c->s);
	stream_flush(c->s);
	if (login_proxy_send(pop3d_settings.mail_service, client_fd,
	    c->slot_fd, &h, 10, &err) < 0) {
		log_error(&c->log, "hand-off to %s failed: %s: %m",
		    pop3d_settings.mail_service, err);
		login_reply(st, "-ERR [SYS/TEMP] Mail service unavailable, try "
		    "again later");
		if (pair[0] >= 0) {
			close(pair[0]);
			close(pair[1]);
		}
		login_handoff_clear(&h);
		/* the pipelined input is gone: this connection cannot go on */
		st->done = true;
		return;
	}
	login_handoff_clear(&h);
	st->done = true;
	if (!c->tls)
		return;
	close(pair[1]);
	/* the mail process keeps the slot; so do we, until the relay ends */
	stream_set_timeout(c->s, pop3d_settings.timeout);
	if (login_proxy_relay(c->s, pair[0],
	    (bool (*)(const void *))tls_session_pending, c->tls_sess, &err) < 0)
		log_info(&c->log, "relay ended: %s: %m", err);
	close(pair[0]);
}

/* login_check - verify user/password and continue on success */
static void
login_check(struct login_state *st, const char *user, const char *pass,
    const char *method)
{
	const char *err = NULL;
	struct str *u;

	switch (auth_verify_password(user, pass, &err)) {
	case AUTH_OK:
		u = str_new_cstr(user);
		user_fold(str_data(u));
		log_info(&st->c->log, "login: user=%s, method=%s%s%s", str_c(u),
		    method, st->c->tls ? ", tls=" : "",
		    st->c->tls ? st->c->tls_desc : "");
		login_handoff(st, str_c(u));
		str_free(&u);
		return;
	case AUTH_TEMPFAIL:
		log_error(&st->c->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		login_reply(st, "-ERR [SYS/TEMP] Authentication service "
		    "unavailable, try again later");
		return;
	case AUTH_FAIL:
	default:
		{
			struct str *shown = str_new(0, 0);

			mem_printable(shown, user, strlen(user), 64);
			log_info(&st->c->log, "login failed: user=%s, method=%s",
			    str_c(shown), method);
			str_free(&shown);
		}
		st->errors++;
		/* no sleep here: lib/auth has waited out the growing
		 * failed-login delay (auth_delay.h) for passwords */
		login_reply(st, "-ERR [AUTH] Authentication failed.");
		return;
	}
}

static bool
login_allowed(struct login_state *st)
{
	if (!pop3d_plaintext_ok(st->c)) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Plaintext authentication "
		    "disallowed on non-secure (SSL/TLS) connections.");
		return false;
	}
	return true;
}

static void
cmd_user(struct login_state *st, const struct pop3_cmd *cmd)
{
	XFREE(st->user);
	if (!login_allowed(st))
		return;
	if (memchr(cmd->arg, '\0', cmd->arg_len) != NULL) {
		st->errors++;
		login_reply(st, "-ERR Invalid user name");
		return;
	}
	st->user = xstrndup(cmd->arg, cmd->arg_len);
	login_reply(st, "+OK");
}

static void
cmd_pass(struct login_state *st, const struct pop3_cmd *cmd)
{
	char *pass;

	if (!login_allowed(st))
		return;
	if (st->user == NULL) {
		st->errors++;
		login_reply(st, "-ERR No username given.");
		return;
	}
	pass = xstrndup(cmd->arg, cmd->arg_len);
	login_check(st, st->user, pass, "USER");
	explicit_bzero(pass, strlen(pass));
	free(pass);
	XFREE(st->user);
}

/* login_plain - check a decoded PLAIN response */
static void
login_plain(struct login_state *st, const struct str *resp)
{
	const char *authz, *authc, *pass;
	size_t authz_len, authc_len, pass_len;
	char *zs, *cs, *ps;

	if (!pop3_sasl_plain(str_c(resp), str_len(resp), &authz, &authz_len,
	    &authc, &authc_len, &pass, &pass_len)) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Invalid PLAIN response");
		return;
	}
	zs = xstrndup(authz, authz_len);
	cs = xstrndup(authc, authc_len);
	ps = xstrndup(pass, pass_len);
	if (*zs != '\0' && strcasecmp(zs, cs) != 0) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Authorization as another user is "
		    "not allowed");
	} else
		login_check(st, cs, ps, "PLAIN");
	explicit_bzero(ps, strlen(ps));
	free(zs);
	free(cs);
	free(ps);
}

/*
 * login_sasl_read - send the challenge ("+ base64") and read the
 * client's answer into line. 1 with the answer; 0 if the exchange
 * ended with a reply sent (too long, "*"); -1 if the connection broke.
 */
static int
login_sasl_read(struct login_state *st, const struct str *challenge,
    struct str *line)
{
	enum stream_result r;

	stream_printf(st->c->s, "+ %s\r\n", str_c(challenge));
	stream_flush(st->c->s);
	r = stream_read_line(st->c->s, line, POP3D_SASL_LINE_MAX);
	if (r == STREAM_TOO_LONG) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Response too long");
		return 0;
	}
	if (r != STREAM_OK) {
		st->done = true;
		return -1;
	}
	str_chomp(line);
	if (str_equals_cstr(line, "*")) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Authentication aborted");
		return 0;
	}
	return 1;
}

/*
 * login_sasl_run - AUTH through lib/sasl_server: challenges as
 * "+ base64", the client's lines back, until a result
 */
static void
login_sasl_run(struct login_state *st, const char *mech, const char *ir,
    size_t ilen)
{
	struct str *out = str_new(0, 0), *line = str_new(0, 0), *shown;
	enum sasl_server_result r;
	const char *err = NULL;
	bool reset = true;

	if (!sasl_server_mech_offered(login_sasl, mech)) {
		if (sasl_server_mech_plaintext(mech) && !login_allowed(st))
			goto out;
		st->errors++;
		login_reply(st, "-ERR Unsupported authentication mechanism.");
		goto out;
	}
	r = sasl_server_begin(login_sasl, mech, ir, ilen, out, &err);
	while (r == SASL_SERVER_CONTINUE) {
		if (login_sasl_read(st, out, line) <= 0)
			goto out;
		r = sasl_server_next(login_sasl, str_c(line), str_len(line), out,
		    &err);
		explicit_bzero(str_data(line), str_len(line));
	}
	mech = sasl_server_mech(login_sasl);
	switch (r) {
	case SASL_SERVER_OK:
		log_info(&st->c->log, "login: user=%s, method=%s%s%s",
		    sasl_server_user(login_sasl), mech,
		    st->c->tls ? ", tls=" : "", st->c->tls ? st->c->tls_desc : "");
		reset = false;
		shown = str_new_cstr(sasl_server_user(login_sasl));
		login_handoff(st, str_c(shown));
		str_free(&shown);
		break;
	case SASL_SERVER_TEMPFAIL:
		log_error(&st->c->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		login_reply(st, "-ERR [SYS/TEMP] Authentication service "
		    "unavailable, try again later");
		break;
	case SASL_SERVER_BADB64:
		st->errors++;
		login_reply(st, "-ERR [AUTH] Invalid base64 data");
		break;
	case SASL_SERVER_BADMECH:
		st->errors++;
		login_reply(st, "-ERR Unsupported authentication mechanism.");
		break;
	case SASL_SERVER_ERROR:
		log_error(&st->c->log, "SASL %s: %s", mech,
		    err != NULL ? err : "failed");
		login_reply(st, "-ERR [SYS/TEMP] Internal error");
		break;
	case SASL_SERVER_NOAUTHZ:
	case SASL_SERVER_FAIL:
	default:
		shown = str_new(0, 0);
		if (err != NULL)
			mem_printable(shown, err, strlen(err), 200);
		log_info(&st->c->log, "login failed: method=%s%s%s", mech,
		    err != NULL ? ": " : "", str_c(shown));
		str_free(&shown);
		st->errors++;
		/* no sleep here: lib/auth has waited out the growing
		 * failed-login delay (auth_delay.h) for passwords */
		login_reply(st, r == SASL_SERVER_NOAUTHZ ?
		    "-ERR [AUTH] Authorization as another user is not allowed" :
		    "-ERR [AUTH] Authentication failed.");
		break;
	}
out:
	/* a session that ran an exchange is not reused for another */
	if (reset && !st->done)
		login_sasl_reset(st->c);
	if (str_len(line) > 0)
		explicit_bzero(str_data(line), str_len(line));
	str_free(&out);
	str_free(&line);
}

/* login_plain_builtin - AUTH PLAIN without libsasl2 */
static void
login_plain_builtin(struct login_state *st, const struct pop3_cmd *cmd)
{
	struct str *ir = str_new(0, 0), *resp = str_new(0, 0);
	struct str *line = str_new(0, 0);
	struct str *none = str_new(0, 0);

	if (cmd->arg_len != 5 || strncasecmp(cmd->arg, "PLAIN", 5) != 0) {
		st->errors++;
		login_reply(st, "-ERR Unsupported authentication mechanism.");
		goto out;
	}
	if (!login_allowed(st))
		goto out;
	if (cmd->nargs == 2) {
		str_set(ir, cmd->arg2, cmd->arg2_len);
	} else {
		if (login_sasl_read(st, none, line) <= 0)
			goto out;
		str_set(ir, str_c(line), str_len(line));
	}
	if (str_equals_cstr(ir, "="))
		str_clear(ir);
	if (!pop3_base64_strict(str_c(ir), str_len(ir), resp)) {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Invalid base64 data");
		goto out;
	}
	login_plain(st, resp);
out:
	if (str_len(resp) > 0)
		explicit_bzero(str_data(resp), str_len(resp));
	if (str_len(ir) > 0)
		explicit_bzero(str_data(ir), str_len(ir));
	if (str_len(line) > 0)
		explicit_bzero(str_data(line), str_len(line));
	str_free(&ir);
	str_free(&resp);
	str_free(&line);
	str_free(&none);
}

/* cmd_auth - AUTH [mechanism [initial-response]] (RFC 5034) */
static void
cmd_auth(struct login_state *st, const struct pop3_cmd *cmd)
{
	struct str *mechs;
	char *mech;

	if (cmd->nargs == 0) {
		/* the mechanism list (RFC 1734 style; clients probe with it) */
		mechs = str_new(0, 0);
		login_mechs(st->c, mechs, "\r\n");
		stream_puts(st->c->s, "+OK");
		stream_write(st->c->s, str_c(mechs), str_len(mechs));
		stream_puts(st->c->s, "\r\n");
		login_reply(st, ".");
		str_free(&mechs);
		return;
	}
	if (cmd->nargs == 2 && cmd->arg2_len == 1 && cmd->arg2[0] == '*') {
		st->errors++;
		login_reply(st, "-ERR [AUTH] Authentication aborted");
		return;
	}
	if (login_sasl == NULL) {
		login_plain_builtin(st, cmd);
		return;
	}
	mech = xstrndup(cmd->arg, cmd->arg_len);
	login_sasl_run(st, mech, cmd->nargs == 2 ? cmd->arg2 : NULL,
	    cmd->nargs == 2 ? cmd->arg2_len : 0);
	free(mech);
}

static void
cmd_stls(struct login_state *st)
{
	struct str *err;

	if (st->c->tls) {
		st->errors++;
		login_reply(st, "-ERR TLS is already active.");
		return;
	}
	if (st->tls_ctx == NULL) {
		st->errors++;
		login_reply(st, "-ERR TLS is not available.");
		return;
	}
	login_reply(st, "+OK Begin TLS negotiation now.");
	err = str_new(0, 0);
	st->c->tls_sess = tls_session_start(st->tls_ctx, st->c->s, NULL,
	    pop3d_settings.login_timeout, err);
	if (st->c->tls_sess == NULL) {
		log_info(&st->c->log, "STLS failed: %s", str_c(err));
		str_free(&err);
		st->done = true;
		return;
	}
	str_clear(err);
	tls_session_describe(st->c->tls_sess, err);
	st->c->tls_desc = str_steal(&err);
	st->c->tls = st->c->secured = true;
	/* RFC 2595 4: forget anything from before the handshake */
	XFREE(st->user);
	login_sasl_reset(st->c);
}

/* pop3d_login_run - see pop3d.h */
void
pop3d_login_run(struct login_conn *c, struct tls_context *tls_ctx)
{
	struct login_state st;
	struct str *line = str_new(0, 0), *caps = str_new(0, 0);
	struct pop3_cmd cmd;
	enum stream_result r;

	memset(&st, 0, sizeof(st));
	st.c = c;
	st.tls_ctx = tls_ctx;
	login_sasl_reset(c);
	stream_printf(c->s, "+OK %s\r\n", pop3d_settings.banner);
	stream_flush(c->s);
	while (!st.done) {
		if (st.errors >= POP3D_LOGIN_ERRORS) {
			login_reply(&st, "-ERR Too many errors, closing.");
			break;
		}
		/* room for AUTH with an initial response; see below */
		r = stream_read_line(c->s, line, POP3D_SASL_LINE_MAX + 64);
		if (r == STREAM_TOO_LONG) {
			st.errors++;
			login_reply(&st, "-ERR Line too long");
			continue;
		}
		if (r != STREAM_OK) {
			if (stream_error(c->s) == STREAM_TIMEOUT) {
				log_info(&c->log, "timeout before login");
				pop3d_timeout_reply(c);
			}
			break;
		}
		str_chomp(line);
		if (str_len(line) + 2 > POP3D_LINE_MAX &&
		    (str_len(line) < 5 || strncasecmp(str_c(line), "AUTH ", 5) != 0)) {
			st.errors++;
			login_reply(&st, "-ERR Line too long");
			continue;
		}
		if (!pop3_parse_command(str_c(line), str_len(line), &cmd)) {
			st.errors++;
			stream_printf(c->s, "-ERR %s\r\n", cmd.error);
			stream_flush(c->s);
			continue;
		}
		switch (cmd.id) {
		case POP3_CMD_CAPA:
			str_clear(caps);
			pop3d_capa(caps, c, tls_ctx != NULL, false);
			stream_puts(c->s, "+OK Capability list follows\r\n");
			stream_write(c->s, str_c(caps), str_len(caps));
			login_reply(&st, ".");
			break;
		case POP3_CMD_QUIT:
			login_reply(&st, "+OK Logging out.");
			st.done = true;
			break;
		case POP3_CMD_STLS:
			cmd_stls(&st);
			break;
		case POP3_CMD_USER:
			cmd_user(&st, &cmd);
			break;
		case POP3_CMD_PASS:
			cmd_pass(&st, &cmd);
			break;
		case POP3_CMD_AUTH:
			cmd_auth(&st, &cmd);
			break;
		case POP3_CMD_APOP:
			st.errors++;
			login_reply(&st, "-ERR APOP is not supported.");
			break;
		default:
			st.errors++;
			login_reply(&st, "-ERR Unknown command or not valid in "
			    "the AUTHORIZATION state.");
			break;
		}
		if (str_len(line) > 0)
			explicit_bzero(str_data(line), str_len(line));
	}
	XFREE(st.user);
	sasl_server_free(&login_sasl);
	str_free(&line);
	str_free(&caps);
}
