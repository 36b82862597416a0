/* SPDX-License-Identifier: MIT */
/*
 * sieved_session - the ManageSieve conversation (RFC 5804)
 *
 * DESCRIPTION
 *	Two states. Not authenticated: CAPABILITY, STARTTLS, AUTHENTICATE
 *	(with or without an initial response), NOOP, LOGOUT; any
 *	other command gets NO. Authenticated: CAPABILITY, HAVESPACE,
 *	PUTSCRIPT, CHECKSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT,
 *	DELETESCRIPT, RENAMESCRIPT, NOOP, UNAUTHENTICATE, LOGOUT;
 *	STARTTLS and AUTHENTICATE get NO.
 *
 *	Reading a command: lines of at most SIEVED_LINE_MAX octets; a line
 *	that ends in a literal announcement {N} or {N+} is followed by
 *	exactly N octets, read only after N was checked against the
 *	literal budget of the state (SIEVED_PRELOGIN_LITERAL_MAX before
 *	login, sieve_max_script_size + SIEVED_LINE_MAX after). A line too
 *	long or a literal over the budget ends the connection with BYE:
 *	the client is already sending the octets and there is no way to
 *	find the next command. Parse errors and commands in the wrong
 *	state get NO; SIEVED_LOGIN_ERRORS (before login) or
 *	SIEVED_SESSION_ERRORS of them end it with BYE.
 *
 *	PUTSCRIPT and CHECKSCRIPT compile the script with the engine
 *	(includes resolved in the user's directory and $sieve_global_dir):
 *	a script with errors is refused with NO and the engine's messages
 *	("NAME:LINE:COLUMN: error: TEXT"); warnings come with OK
 *	(WARNINGS). SETACTIVE compiles the script again (a global script
 *	it includes may have changed). Storage is lib/sieve/sieve_user.
 *
 *	AUTHENTICATE runs the mechanisms of $sasl_mechanisms through
 *	lib/sasl_server (Cyrus libsasl2: PLAIN and LOGIN checked by
 *	lib/auth, GSSAPI with the sieve/ key in $auth_krb5_keytab), one
 *	SASL session per connection, renewed after STARTTLS and after
 *	each exchange (so UNAUTHENTICATE finds a fresh one); the SASL
 *	capability lists what that session offers. Challenges go out as
 *	strings of base64, the client answers with a string (quoted or
 *	literal, within the limits above), a quoted "*" cancels. If
 *	libsasl2 could not be set up, a built-in PLAIN remains.
 *
 *	In the login role a successful AUTHENTICATE hands the connection
 *	to the mail role (lib/login_proxy), which answers OK; in the
 *	standalone role, and in the mail role after UNAUTHENTICATE, the
 *	login is checked in this process.
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
#include "sieve/sieve.h"
#include "sieve/sieve_user.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "sieved.h"

struct sess {
	struct login_conn *c;
	struct tls_context *tls_ctx;
	struct sasl_server *sasl;	/* NULL without libsasl2 */
	char *user;		/* NULL: not authenticated */
	struct str *dir;	/* the user's script directory */
	struct str *cmdbuf;
	struct str *line;
	struct str *out;
	struct str *a1, *a2;
	unsigned errors;
	unsigned puts, gets;
	bool done;
	bool handed_off;
};

/* send_out - write sess->out and clear it */
static void
send_out(struct sess *ss)
{
	stream_write(ss->c->s, str_c(ss->out), str_len(ss->out));
	stream_flush(ss->c->s);
	str_clear(ss->out);
}

/* reply - "OK|NO|BYE[ (CODE)][ TEXT]" */
static void
reply(struct sess *ss, const char *what, const char *code, const char *text)
{
	str_append_cstr(ss->out, what);
	if (code != NULL && *code != '\0')
		str_printf(ss->out, " (%s)", code);
	if (text != NULL) {
		str_append_c(ss->out, ' ');
		sieved_append_string(ss->out, text, strlen(text));
	}
	str_append_cstr(ss->out, "\r\n");
	send_out(ss);
}

static void
reply_no(struct sess *ss, const char *code, const char *text)
{
	ss->errors++;
	reply(ss, "NO", code, text);
}

static bool
plaintext_ok(const struct sess *ss)
{
	return ss->c->secured || !sieved_settings.disable_plaintext_auth;
}

/* sasl_reset - a fresh SASL session for the connection's state */
static void
sasl_reset(struct sess *ss)
{
	const char *err;

	sasl_server_free(&ss->sasl);
	if (!sasl_server_ready())
		return;
	ss->sasl = sasl_server_create("sieve", &ss->c->log, plaintext_ok(ss),
	    &err);
	if (ss->sasl == NULL)
		log_error(&ss->c->log, "SASL session: %s", err);
}

/* capabilities - the capability lines (RFC 5804 1.7) */
static void
capabilities(struct sess *ss)
{
	struct str *o = ss->out, *mechs;

	str_append_cstr(o, "\"IMPLEMENTATION\" ");
	sieved_append_string(o, sieved_settings.implementation,
	    strlen(sieved_settings.implementation));
	str_append_cstr(o, "\r\n\"SIEVE\" ");
	sieved_append_string(o, sieve_extensions(), strlen(sieve_extensions()));
	str_append_cstr(o, "\r\n\"NOTIFY\" \"" SIEVE_NOTIFY_METHODS "\"\r\n");
	if (ss->user == NULL) {
		mechs = str_new(0, 0);
		if (ss->sasl != NULL)
			sasl_server_mechs(ss->sasl, mechs, " ");
		else if (plaintext_ok(ss))
			str_append_cstr(mechs, " PLAIN");
		str_append_cstr(o, "\"SASL\" ");
		sieved_append_string(o, str_len(mechs) > 0 ? str_c(mechs) + 1 :
		    "", str_len(mechs) > 0 ? str_len(mechs) - 1 : 0);
		str_append_cstr(o, "\r\n");
		str_free(&mechs);
		if (ss->tls_ctx != NULL && !ss->c->tls)
			str_append_cstr(o, "\"STARTTLS\"\r\n");
	} else {
		str_append_cstr(o, "\"OWNER\" ");
		sieved_append_string(o, ss->user, strlen(ss->user));
		str_append_cstr(o, "\r\n");
	}
	str_printf(o, "\"MAXREDIRECTS\" \"%u\"\r\n",
	    sieved_settings.limits.max_redirects);
	str_append_cstr(o, "\"VERSION\" \"1.0\"\r\n");
}

/* timeout_reply - BYE straight to the socket (plaintext only) */
static void
timeout_reply(struct sess *ss)
{
	static const char msg[] = "BYE \"Disconnected for inactivity.\"\r\n";

	if (ss->c->tls_sess != NULL || ss->c->tls)
		return;
	(void)send(stream_fd(ss->c->s), msg, sizeof(msg) - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * read_command - one command (lines and literals) into cmdbuf. 1 ok;
 * 0 the connection ended (or timed out); -1 a limit was broken (BYE
 * sent). See DESCRIPTION.
 */
static int
read_command(struct sess *ss)
{
	size_t budget = ss->user != NULL ?
	    sieved_settings.limits.max_script_size + SIEVED_LINE_MAX :
	    SIEVED_PRELOGIN_LITERAL_MAX;
	unsigned literals = 0;
	enum stream_result r;
	uint64_t size;
	int a;

	str_clear(ss->cmdbuf);
	for (;;) {
		r = stream_read_line(ss->c->s, ss->line, SIEVED_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			reply(ss, "BYE", NULL, "Command line too long");
			return -1;
		}
		if (r != STREAM_OK) {
			if (stream_error(ss->c->s) == STREAM_TIMEOUT) {
				log_info(&ss->c->log, "timeout%s",
				    ss->user == NULL ? " before login" : "");
				timeout_reply(ss);
			}
			return 0;
		}
		str_chomp(ss->line);
		if (str_append_str(ss->cmdbuf, ss->line) < 0) {
			reply(ss, "BYE", NULL, "Command too long");
			return -1;
		}
		a = sieved_literal_announce(str_c(ss->line), str_len(ss->line),
		    &size);
		if (a == 0)
			return 1;
		if (a < 0 || size > budget || ++literals > SIEVED_ARGS_MAX + 1) {
			log_info(&ss->c->log, "literal over the limit (%zu "
			    "octets left)", budget);
			reply(ss, "BYE", "QUOTA/MAXSIZE", "Literal too large");
			return -1;
		}
		budget -= (size_t)size;
		if (str_append(ss->cmdbuf, "\r\n", 2) < 0) {
			reply(ss, "BYE", NULL, "Command too long");
			return -1;
		}
		r = stream_read_n(ss->c->s, ss->cmdbuf, (size_t)size);
		if (r != STREAM_OK) {
			if (r == STREAM_ERROR && errno == E2BIG)
				reply(ss, "BYE", NULL, "Command too long");
			return r == STREAM_ERROR && errno == E2BIG ? -1 : 0;
		}
	}
}

/* ---------------------------------------------------------------- login */

/* user_fold - lower case */
static void
user_fold(char *p)
{
	for (; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* set_user - enter the authenticated state as user */
static void
set_user(struct sess *ss, const char *user)
{
	XFREE(ss->user);
	ss->user = xstrdup(user);
	sieve_user_dir(sieved_settings.store_dir, user, ss->dir);
	ss->errors = 0;
}

/* handoff - the login role passes the session to the mail role */
static void
handoff(struct sess *ss, const char *user)
{
	struct login_conn *c = ss->c;
	struct login_handoff h;
	const char *err;
	int pair[2] = { -1, -1 };
	int client_fd;

	ss->done = true;
	if (login_conn_handoff_record(c, user, NULL, &h) < 0) {
		reply(ss, "BYE", NULL, "Too much pipelined input");
		return;
	}
	if (c->tls) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
			log_error(&c->log, "socketpair: %m");
			reply(ss, "NO", "TRYLATER", "Internal error");
			login_handoff_clear(&h);
			return;
		}
		client_fd = pair[1];
	} else
		client_fd = stream_fd(c->s);
	stream_flush(c->s);
	if (login_proxy_send(sieved_settings.mail_service, client_fd,
	    c->slot_fd, &h, 10, &err) < 0) {
		log_error(&c->log, "hand-off to %s failed: %s: %m",
		    sieved_settings.mail_service, err);
		reply(ss, "BYE", "TRYLATER", "Service unavailable, try again "
		    "later");
		if (pair[0] >= 0) {
			close(pair[0]);
			close(pair[1]);
		}
		login_handoff_clear(&h);
		return;
	}
	login_handoff_clear(&h);
	ss->handed_off = true;
	if (!c->tls)
		return;
	close(pair[1]);
	stream_set_timeout(c->s, sieved_settings.timeout);
	if (login_proxy_relay(c->s, pair[0],
	    (bool (*)(const void *))tls_session_pending, c->tls_sess, &err) < 0)
		log_info(&c->log, "relay ended: %s: %m", err);
	close(pair[0]);
}

/* login_ok - user (a valid local name) has authenticated with mech */
static void
login_ok(struct sess *ss, const char *user, const char *mech)
{
	if (!store_user_ok(user)) {
		reply_no(ss, NULL, "Authentication failed.");
		return;
	}
	log_info(&ss->c->log, "login: user=%s, method=%s%s%s", user, mech,
	    ss->c->tls ? ", tls=" : "", ss->c->tls ? ss->c->tls_desc : "");
	if (sieved_settings.role == SIEVED_ROLE_LOGIN)
		handoff(ss, user);
	else {
		set_user(ss, user);
		reply(ss, "OK", NULL, "Logged in.");
	}
}

/* login_check - verify and go on as user */
static void
login_check(struct sess *ss, const char *user, const char *pass)
{
	const char *err = NULL;
	struct str *u, *shown;

	switch (auth_verify_password(user, pass, &err)) {
	case AUTH_OK:
		u = str_new_cstr(user);
		user_fold(str_data(u));
		login_ok(ss, str_c(u), "PLAIN");
		str_free(&u);
		return;
	case AUTH_TEMPFAIL:
		log_error(&ss->c->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		reply_no(ss, "TRYLATER", "Authentication service unavailable");
		return;
	case AUTH_FAIL:
	default:
		shown = str_new(0, 0);
		mem_printable(shown, user, strlen(user), 64);
		log_info(&ss->c->log, "login failed: user=%s, method=PLAIN",
		    str_c(shown));
		str_free(&shown);
		/* no sleep here: lib/auth has waited out the growing
		 * failed-login delay (auth_delay.h) for passwords */
		reply_no(ss, NULL, "Authentication failed.");
		return;
	}
}

/*
 * sasl_read - send challenge (base64 text) as a string and read the
 * client's answer, a string, into resp. 1 with the answer; 0 if the
 * exchange ended with a reply sent (not a string, "*"); -1 if the
 * connection ended (ss->done set; BYE sent for a broken limit).
 */
static int
sasl_read(struct sess *ss, const char *challenge, size_t n, struct str *resp)
{
	struct sieved_arg arg;
	const char *err;

	sieved_append_string(ss->out, challenge, n);
	str_append_cstr(ss->out, "\r\n");
	send_out(ss);
	if (read_command(ss) <= 0) {
		ss->done = true;
		return -1;
	}
	if (sieved_parse_args(str_c(ss->cmdbuf), str_len(ss->cmdbuf), &arg, 1,
	    &err) != 1 || arg.number) {
		reply_no(ss, NULL, "Invalid SASL response");
		return 0;
	}
	sieved_unquote(&arg, resp);
	if (!arg.literal && str_equals_cstr(resp, "*")) {
		reply_no(ss, NULL, "Authentication aborted");
		return 0;
	}
	return 1;
}

/*
 * sasl_run - AUTHENTICATE through lib/sasl_server: challenges as
 * strings, the client's strings back, until a result
 */
static void
sasl_run(struct sess *ss, const char *mech, const struct str *ir)
{
	struct str *out = str_new(0, 0), *resp = str_new(0, 0), *shown;
	enum sasl_server_result r;
	const char *err = NULL;

	if (!sasl_server_mech_offered(ss->sasl, mech)) {
		if (sasl_server_mech_plaintext(mech) && !plaintext_ok(ss))
			reply_no(ss, "ENCRYPT-NEEDED", "Plaintext "
			    "authentication disallowed on non-secure "
			    "connections");
		else
			reply_no(ss, NULL, "Unsupported authentication "
			    "mechanism");
		goto out;
	}
	r = sasl_server_begin(ss->sasl, mech, ir != NULL ? str_c(ir) : NULL,
	    ir != NULL ? str_len(ir) : 0, out, &err);
	while (r == SASL_SERVER_CONTINUE) {
		if (sasl_read(ss, str_c(out), str_len(out), resp) <= 0)
			goto out;
		r = sasl_server_next(ss->sasl, str_c(resp), str_len(resp), out,
		    &err);
		explicit_bzero(str_data(resp), str_len(resp));
	}
	mech = sasl_server_mech(ss->sasl);
	switch (r) {
	case SASL_SERVER_OK:
		shown = str_new_cstr(sasl_server_user(ss->sasl));
		login_ok(ss, str_c(shown), mech);
		str_free(&shown);
		break;
	case SASL_SERVER_TEMPFAIL:
		log_error(&ss->c->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		reply_no(ss, "TRYLATER", "Authentication service unavailable");
		break;
	case SASL_SERVER_BADB64:
		reply_no(ss, NULL, "Invalid base64 data");
		break;
	case SASL_SERVER_BADMECH:
		reply_no(ss, NULL, "Unsupported authentication mechanism");
		break;
	case SASL_SERVER_ERROR:
		log_error(&ss->c->log, "SASL %s: %s", mech,
		    err != NULL ? err : "failed");
		reply_no(ss, "TRYLATER", "Internal error");
		break;
	case SASL_SERVER_NOAUTHZ:
	case SASL_SERVER_FAIL:
	default:
		shown = str_new(0, 0);
		if (err != NULL)
			mem_printable(shown, err, strlen(err), 200);
		log_info(&ss->c->log, "login failed: method=%s%s%s", mech,
		    err != NULL ? ": " : "", str_c(shown));
		str_free(&shown);
		/* no sleep here: lib/auth has waited out the growing
		 * failed-login delay (auth_delay.h) for passwords */
		reply_no(ss, NULL, r == SASL_SERVER_NOAUTHZ ?
		    "Authorization as another user is not allowed" :
		    "Authentication failed.");
		break;
	}
out:
	/* a session that ran an exchange is not reused for another */
	if (!ss->done)
		sasl_reset(ss);
	if (str_len(resp) > 0)
		explicit_bzero(str_data(resp), str_len(resp));
	str_free(&out);
	str_free(&resp);
}

/* plain_builtin - AUTHENTICATE "PLAIN" without libsasl2 */
static void
plain_builtin(struct sess *ss, struct str *resp, bool have_ir)
{
	struct str *dec = str_new(0, 0);
	const char *authz, *authc, *pass;
	size_t zl, cl, pl;
	char *zs, *cs, *ps;

	if (strcasecmp(str_c(ss->a1), "PLAIN") != 0) {
		reply_no(ss, NULL, "Unsupported authentication mechanism");
		goto out;
	}
	if (!plaintext_ok(ss)) {
		reply_no(ss, "ENCRYPT-NEEDED", "Plaintext authentication "
		    "disallowed on non-secure connections");
		goto out;
	}
	if (!have_ir && sasl_read(ss, "", 0, resp) <= 0)
		goto out;
	if (!sieved_base64_strict(str_c(resp), str_len(resp), dec) ||
	    !sieved_sasl_plain(str_c(dec), str_len(dec), &authz, &zl, &authc,
	    &cl, &pass, &pl)) {
		reply_no(ss, NULL, "Invalid PLAIN response");
		goto out;
	}
	zs = xstrndup(authz, zl);
	cs = xstrndup(authc, cl);
	ps = xstrndup(pass, pl);
	if (*zs != '\0' && strcasecmp(zs, cs) != 0)
		reply_no(ss, NULL, "Authorization as another user is not "
		    "allowed");
	else
		login_check(ss, cs, ps);
	explicit_bzero(ps, strlen(ps));
	free(zs);
	free(cs);
	free(ps);
out:
	if (str_len(dec) > 0)
		explicit_bzero(str_data(dec), str_len(dec));
	str_free(&dec);
}

/* cmd_authenticate - AUTHENTICATE "MECH" ["initial response"] */
static void
cmd_authenticate(struct sess *ss, const struct sieved_cmd *cmd)
{
	struct str *resp = str_new(0, 0);

	if (ss->user != NULL) {
		reply_no(ss, NULL, "Already authenticated");
		goto out;
	}
	sieved_unquote(&cmd->args[0], ss->a1);
	if (cmd->nargs == 2)
		sieved_unquote(&cmd->args[1], resp);
	if (ss->sasl != NULL)
		sasl_run(ss, str_c(ss->a1), cmd->nargs == 2 ? resp : NULL);
	else
		plain_builtin(ss, resp, cmd->nargs == 2);
out:
	if (str_len(resp) > 0)
		explicit_bzero(str_data(resp), str_len(resp));
	explicit_bzero(str_data(ss->cmdbuf), str_len(ss->cmdbuf));
	str_free(&resp);
}

/* cmd_starttls - STARTTLS (RFC 5804 2.2) */
static void
cmd_starttls(struct sess *ss)
{
	struct str *err;

	if (ss->user != NULL) {
		reply_no(ss, NULL, "Already authenticated");
		return;
	}
	if (ss->c->tls || ss->tls_ctx == NULL) {
		reply_no(ss, NULL, ss->c->tls ? "TLS is already active" :
		    "TLS is not available");
		return;
	}
	reply(ss, "OK", NULL, "Begin TLS negotiation now.");
	err = str_new(0, 0);
	ss->c->tls_sess = tls_session_start(ss->tls_ctx, ss->c->s, NULL,
	    sieved_settings.login_timeout, err);
	if (ss->c->tls_sess == NULL) {
		log_info(&ss->c->log, "STARTTLS failed: %s", str_c(err));
		str_free(&err);
		ss->done = true;
		return;
	}
	str_clear(err);
	tls_session_describe(ss->c->tls_sess, err);
	ss->c->tls_desc = str_steal(&err);
	ss->c->tls = ss->c->secured = true;
	sasl_reset(ss);
	/* the capabilities again, now with the TLS-only ones */
	capabilities(ss);
	reply(ss, "OK", NULL, "TLS negotiation successful.");
}

/* ---------------------------------------------------------------- scripts */

/*
 * compile - compile p/n; NULL on success with warnings (if any) in
 * *warn_r (owned); else the error text (owned).
 */
static char *
compile(struct sess *ss, const char *name, const char *p, size_t n,
    char **warn_r)
{
	struct sieve_dir_loader dl;
	struct sieve_loader loader;
	struct sieve_errors errs;
	struct sieve_script *script;
	struct str *text = str_new(0, 0);
	char *ret = NULL;

	*warn_r = NULL;
	memset(&errs, 0, sizeof(errs));
	memset(&dl, 0, sizeof(dl));
	dl.personal_dir = str_c(ss->dir);
	dl.global_dir = sieved_settings.global_dir;
	sieve_dir_loader_init(&dl, &loader);
	script = sieve_compile(name, p, n, &sieved_settings.limits, &loader,
	    &errs);
	sieve_errors_format(&errs, text);
	str_chomp(text);
	if (script == NULL) {
		if (str_len(text) == 0)
			str_append_cstr(text, "the script does not compile");
		ret = str_steal(&text);
	} else if (str_len(text) > 0)
		*warn_r = str_steal(&text);
	sieve_script_free(&script);
	sieve_errors_clear(&errs);
	sieve_dir_loader_deinit(&dl);
	str_free(&text);
	return ret;
}

/* arg_name - the script name argument into out; false (NO sent) if invalid */
static bool
arg_name(struct sess *ss, const struct sieved_arg *arg, struct str *out)
{
	const char *why = "Invalid script name";

	sieved_unquote(arg, out);
	if (str_len(out) == 0 && out == ss->a1)
		return true;	/* SETACTIVE "" */
	if (!sieve_user_name_ok(str_c(out), str_len(out), &why) ||
	    strlen(str_c(out)) != str_len(out)) {
		reply_no(ss, NULL, why);
		return false;
	}
	return true;
}

/* reply_code - NO with the response code that fits code */
static void
reply_code(struct sess *ss, enum sieve_user_code code, const char *err)
{
	if (code == SIEVE_USER_TRYLATER)
		log_error(&ss->c->log, "scripts of %s: %s: %m", ss->user, err);
	reply_no(ss, sieve_user_code_name(code), err);
}

static void
cmd_putscript(struct sess *ss, const struct sieved_cmd *cmd, bool check_only)
{
	const struct sieved_arg *body = &cmd->args[check_only ? 0 : 1];
	struct str *script = str_new(0, 0);
	enum sieve_user_code code;
	const char *err = NULL;
	char *cerr, *warn;

	if (!check_only && !arg_name(ss, &cmd->args[0], ss->a2))
		goto out;
	sieved_unquote(body, script);
	if (str_len(script) > sieved_settings.limits.max_script_size) {
		reply_no(ss, "QUOTA/MAXSIZE", "Script is too large");
		goto out;
	}
	if (!check_only && sieve_user_havespace(str_c(ss->dir), str_c(ss->a2),
	    str_len(script), &sieved_settings.quota, &code, &err) < 0) {
		reply_code(ss, code, err);
		goto out;
	}
	cerr = compile(ss, check_only ? "script" : str_c(ss->a2),
	    str_c(script), str_len(script), &warn);
	if (cerr != NULL) {
		reply_no(ss, NULL, cerr);
		free(cerr);
		goto out;
	}
	if (!check_only) {
		if (sieve_user_put(str_c(ss->dir), str_c(ss->a2), str_c(script),
		    str_len(script), &sieved_settings.quota, &code, &err) < 0) {
			reply_code(ss, code, err);
			free(warn);
			goto out;
		}
		ss->puts++;
		log_info(&ss->c->log, "putscript: user=%s, name=%s, size=%zu",
		    ss->user, str_c(ss->a2), str_len(script));
	}
	if (warn != NULL)
		reply(ss, "OK", "WARNINGS", warn);
	else
		reply(ss, "OK", NULL, check_only ? "Script is valid." :
		    "Script stored.");
	free(warn);
out:
	str_free(&script);
}

static void
cmd_listscripts(struct sess *ss)
{
	struct sieve_user_script *list;
	const char *err;
	size_t count, i;

	if (sieve_user_list(str_c(ss->dir), &list, &count, &err) < 0) {
		reply_code(ss, SIEVE_USER_TRYLATER, err);
		return;
	}
	for (i = 0; i < count; i++) {
		sieved_append_string(ss->out, list[i].name, strlen(list[i].name));
		if (list[i].active)
			str_append_cstr(ss->out, " ACTIVE");
		str_append_cstr(ss->out, "\r\n");
	}
	sieve_user_list_free(&list, count);
	reply(ss, "OK", NULL, "Listscripts completed.");
}

static void
cmd_havespace(struct sess *ss, const struct sieved_cmd *cmd)
{
	enum sieve_user_code code;
	const char *err;

	if (!arg_name(ss, &cmd->args[0], ss->a2))
		return;
	if (cmd->args[1].num > sieved_settings.limits.max_script_size) {
		reply_no(ss, "QUOTA/MAXSIZE", "Script is too large");
		return;
	}
	if (sieve_user_havespace(str_c(ss->dir), str_c(ss->a2),
	    cmd->args[1].num, &sieved_settings.quota, &code, &err) < 0) {
		reply_code(ss, code, err);
		return;
	}
	reply(ss, "OK", NULL, "Putscript would succeed.");
}

static void
cmd_setactive(struct sess *ss, const struct sieved_cmd *cmd)
{
	struct str *script = str_new(0, 0);
	enum sieve_user_code code;
	const char *err = NULL;
	char *cerr, *warn = NULL;
	int r;

	if (!arg_name(ss, &cmd->args[0], ss->a1))
		goto out;
	if (str_len(ss->a1) > 0) {
		r = sieve_user_get(str_c(ss->dir), str_c(ss->a1), script,
		    sieved_settings.limits.max_script_size, &err);
		if (r <= 0) {
			reply_code(ss, r == 0 ? SIEVE_USER_NONEXISTENT :
			    SIEVE_USER_TRYLATER, r == 0 ?
			    "There is no script by that name" : err);
			goto out;
		}
		cerr = compile(ss, str_c(ss->a1), str_c(script),
		    str_len(script), &warn);
		free(warn);
		if (cerr != NULL) {
			reply_no(ss, NULL, cerr);
			free(cerr);
			goto out;
		}
	}
	if (sieve_user_activate(str_c(ss->dir), str_c(ss->a1), &code, &err) < 0) {
		reply_code(ss, code, err);
		goto out;
	}
	log_info(&ss->c->log, "setactive: user=%s, name=%s", ss->user,
	    str_len(ss->a1) > 0 ? str_c(ss->a1) : "(none)");
	reply(ss, "OK", NULL, str_len(ss->a1) > 0 ? "Script activated." :
	    "Script deactivated.");
out:
	str_free(&script);
}

static void
cmd_getscript(struct sess *ss, const struct sieved_cmd *cmd)
{
	struct str *script = str_new(0, 0);
	const char *err = NULL;
	int r;

	if (!arg_name(ss, &cmd->args[0], ss->a2))
		goto out;
	r = sieve_user_get(str_c(ss->dir), str_c(ss->a2), script, 0, &err);
	if (r <= 0) {
		reply_code(ss, r == 0 ? SIEVE_USER_NONEXISTENT :
		    SIEVE_USER_TRYLATER, r == 0 ? "There is no script by that "
		    "name" : err);
		goto out;
	}
	ss->gets++;
	str_printf(ss->out, "{%zu}\r\n", str_len(script));
	str_append_str(ss->out, script);
	str_append_cstr(ss->out, "\r\n");
	reply(ss, "OK", NULL, "Getscript completed.");
out:
	str_free(&script);
}

static void
cmd_deletescript(struct sess *ss, const struct sieved_cmd *cmd)
{
	enum sieve_user_code code;
	const char *err;

	if (!arg_name(ss, &cmd->args[0], ss->a2))
		return;
	if (sieve_user_delete(str_c(ss->dir), str_c(ss->a2), &code, &err) < 0) {
		reply_code(ss, code, err);
		return;
	}
	log_info(&ss->c->log, "deletescript: user=%s, name=%s", ss->user,
	    str_c(ss->a2));
	reply(ss, "OK", NULL, "Script deleted.");
}

static void
cmd_renamescript(struct sess *ss, const struct sieved_cmd *cmd)
{
	enum sieve_user_code code;
	const char *err;

	if (!arg_name(ss, &cmd->args[0], ss->a2) ||
	    !arg_name(ss, &cmd->args[1], ss->line))
		return;
	if (sieve_user_rename(str_c(ss->dir), str_c(ss->a2), str_c(ss->line),
	    &code, &err) < 0) {
		reply_code(ss, code, err);
		return;
	}
	reply(ss, "OK", NULL, "Script renamed.");
}

/* ---------------------------------------------------------------- loop */

static void
cmd_noop(struct sess *ss, const struct sieved_cmd *cmd)
{
	if (cmd->nargs == 1) {
		sieved_unquote(&cmd->args[0], ss->a1);
		str_append_cstr(ss->out, "OK (TAG ");
		sieved_append_string(ss->out, str_c(ss->a1), str_len(ss->a1));
		str_append_cstr(ss->out, ") \"Done\"\r\n");
		send_out(ss);
		return;
	}
	reply(ss, "OK", NULL, "NOOP completed.");
}

/* dispatch - one parsed command */
static void
dispatch(struct sess *ss, const struct sieved_cmd *cmd)
{
	switch (cmd->id) {
	case SIEVED_CMD_CAPABILITY:
		capabilities(ss);
		reply(ss, "OK", NULL, "Capability completed.");
		return;
	case SIEVED_CMD_LOGOUT:
		reply(ss, "OK", NULL, "Logout completed.");
		ss->done = true;
		return;
	case SIEVED_CMD_NOOP:
		cmd_noop(ss, cmd);
		return;
	case SIEVED_CMD_STARTTLS:
		cmd_starttls(ss);
		return;
	case SIEVED_CMD_AUTHENTICATE:
		cmd_authenticate(ss, cmd);
		return;
	default:
		break;
	}
	if (ss->user == NULL) {
		reply_no(ss, NULL, "Authenticate first");
		return;
	}
	switch (cmd->id) {
	case SIEVED_CMD_HAVESPACE:
		cmd_havespace(ss, cmd);
		break;
	case SIEVED_CMD_PUTSCRIPT:
		cmd_putscript(ss, cmd, false);
		break;
	case SIEVED_CMD_CHECKSCRIPT:
		cmd_putscript(ss, cmd, true);
		break;
	case SIEVED_CMD_LISTSCRIPTS:
		cmd_listscripts(ss);
		break;
	case SIEVED_CMD_SETACTIVE:
		cmd_setactive(ss, cmd);
		break;
	case SIEVED_CMD_GETSCRIPT:
		cmd_getscript(ss, cmd);
		break;
	case SIEVED_CMD_DELETESCRIPT:
		cmd_deletescript(ss, cmd);
		break;
	case SIEVED_CMD_RENAMESCRIPT:
		cmd_renamescript(ss, cmd);
		break;
	case SIEVED_CMD_UNAUTHENTICATE:
		log_info(&ss->c->log, "unauthenticate: user=%s", ss->user);
		XFREE(ss->user);
		str_clear(ss->dir);
		ss->errors = 0;
		reply(ss, "OK", NULL, "Unauthenticate completed.");
		break;
	default:
		reply_no(ss, NULL, "Unknown command");
		break;
	}
}

/* sieved_session_run - see sieved.h */
void
sieved_session_run(struct login_conn *c, struct tls_context *tls_ctx,
    const char *user)
{
	struct sess ss;
	struct sieved_cmd cmd;
	int r;

	memset(&ss, 0, sizeof(ss));
	ss.c = c;
	ss.tls_ctx = tls_ctx;
	ss.dir = str_new(0, 0);
	ss.cmdbuf = str_new(0, sieved_settings.limits.max_script_size +
	    4 * SIEVED_LINE_MAX);
	ss.line = str_new(0, 0);
	ss.out = str_new(0, 0);
	ss.a1 = str_new(0, 0);
	ss.a2 = str_new(0, 0);
	sasl_reset(&ss);
	if (user != NULL) {
		set_user(&ss, user);
		reply(&ss, "OK", NULL, "Logged in.");
	} else {
		capabilities(&ss);
		reply(&ss, "OK", NULL, "Postern ManageSieve ready.");
	}
	while (!ss.done) {
		if (ss.errors >= (ss.user == NULL ? SIEVED_LOGIN_ERRORS :
		    SIEVED_SESSION_ERRORS)) {
			reply(&ss, "BYE", NULL, "Too many errors.");
			break;
		}
		r = read_command(&ss);
		if (r <= 0)
			break;
		if (!sieved_parse_command(str_c(ss.cmdbuf), str_len(ss.cmdbuf),
		    &cmd)) {
			reply_no(&ss, NULL, cmd.error);
			continue;
		}
		dispatch(&ss, &cmd);
		if (stream_error(c->s) != STREAM_OK)
			break;
	}
	if (!ss.handed_off)
		log_info(&c->log, "disconnect: user=%s, put=%u, get=%u",
		    ss.user != NULL ? ss.user : "-", ss.puts, ss.gets);
	XFREE(ss.user);
	sasl_server_free(&ss.sasl);
	str_free(&ss.dir);
	str_free(&ss.cmdbuf);
	str_free(&ss.line);
	str_free(&ss.out);
	str_free(&ss.a1);
	str_free(&ss.a2);
}
