/* SPDX-License-Identifier: MIT */
/*
 * imapd_login - the not-authenticated state (login role)
 *
 * DESCRIPTION
 *	Greeting, CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and
 *	AUTHENTICATE (with SASL-IR); everything else is BAD in this
 *	state. AUTHENTICATE runs the mechanisms of $sasl_mechanisms
 *	through lib/sasl_server (Cyrus libsasl2: PLAIN and LOGIN checked
 *	by lib/auth, GSSAPI with the imap/ key in $auth_krb5_keytab), one
 *	SASL session per connection, renewed after STARTTLS and after each
 *	failed exchange; if libsasl2 could not be set up, a built-in PLAIN
 *	remains. Commands are at most IMAPD_LOGIN_MAX bytes, literals
 *	included; IMAPD_LOGIN_ERRORS bad commands or failed logins end the
 *	connection. Password logins over a connection that is neither TLS
 *	nor loopback are refused while disable_plaintext_auth is set
 *	(LOGINDISABLED, RFC 3501 6.2.3).
 *
 *	After a successful login: in the standalone role the session goes
 *	on in this process (imapd_session_run); in the login role the
 *	connection is handed to the mail service (lib/login_proxy), with
 *	whatever pipelined input is already buffered, and under TLS this
 *	process relays the decrypted stream until the session ends.
 *	Before either, it looks up what the mail role cannot: the quota
 *	(quota_maps may be ldap:) and the lists with an IMAP archive whose
 *	LDAP group holds the user (lib/list_ldap, as list-mgr decides
 *	membership), which travel in the hand-off record.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "list_ldap.h"
#include "list_store.h"
#include "log.h"
#include "login_proxy.h"
#include "mime_decode.h"
#include "sasl_server.h"
#include "stream.h"
#include "str.h"
#include "tls.h"
#include "user_quota.h"
#include "userdb.h"

#include "imapd.h"

#define IMAPD_LOGIN_MAX		8192
#define IMAPD_LOGIN_ERRORS	10

struct login_state {
	struct login_conn *c;
	struct tls_context *tls_ctx;
	struct str *tag;
	struct str *cmd;
	unsigned errors;
	bool done;
};

/*
 * The connection's SASL session (NULL without libsasl2). A login
 * process serves one connection at a time, and imapd_capability_preauth
 * (whose signature the mail role shares) finds it here.
 */
static struct sasl_server *login_sasl;

/* imapd_capability_preauth - see imapd.h */
void
imapd_capability_preauth(struct str *out, const struct login_conn *c,
    bool tls_available)
{
	str_append_cstr(out, "IMAP4rev1 IMAP4rev2 SASL-IR LOGIN-REFERRALS ID "
	    "ENABLE IDLE LITERAL+");
	if (tls_available && !c->tls)
		str_append_cstr(out, " STARTTLS");
	if (!c->secured && imapd_settings.disable_plaintext_auth)
		str_append_cstr(out, " LOGINDISABLED");
	else if (login_sasl == NULL)
		str_append_cstr(out, " AUTH=PLAIN");
	if (login_sasl != NULL)
		sasl_server_mechs(login_sasl, out, " AUTH=");
}

/* login_sasl_reset - a fresh SASL session for the connection's state */
static void
login_sasl_reset(const struct login_conn *c)
{
	const char *err;

	sasl_server_free(&login_sasl);
	if (!sasl_server_ready())
		return;
	login_sasl = sasl_server_create("imap", &c->log, c->secured ||
	    !imapd_settings.disable_plaintext_auth, &err);
	if (login_sasl == NULL)
		log_error(&c->log, "SASL session: %s", err);
}

static void
login_reply(struct login_state *st, const char *text)
{
	stream_printf(st->c->s, "%s %s\r\n", str_c(st->tag), text);
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

/*
 * login_quota - the user's storage quota (user_quota.h, as lmtpd
 * enforces it at delivery); a failing quota_maps lookup means the default.
 * Looked up here, not in the mail role: imapd-mail links no LDAP (for
 * ldap: quota_maps) and gets the value in the hand-off record.
 */
static uint64_t
login_quota(struct login_conn *c, const char *user)
{
	uint64_t dflt = config_size(conf(), "quota_storage_limit");
	struct userdb_user u;
	struct userdb *db;
	const char *err, *source;
	int r;

	if ((db = userdb_open(config_str(conf(), "user_database"),
	    &err)) == NULL) {
		if (errno != ENOENT)
			log_warn(&c->log, "user database: %s (quota: default)",
			    err);
		return dflt;
	}
	memset(&u, 0, sizeof(u));
	r = userdb_lookup(db, user, &u, &err);
	if (r < 0)
		log_warn(&c->log, "quota of %s: %s (default)", user, err);
	if (r > 0 && user_quota_get(conf(), user, u.quota_bytes, &dflt,
	    &source, &err) < 0)
		log_warn(&c->log, "quota of %s: %s (default)", user, err);
	userdb_user_clear(&u);
	userdb_close(&db);
	return dflt;
}

/*
 * login_dir_lists - " a b ... " (space before and after each name): the
 * lists with an IMAP archive whose LDAP group has one of user's
 * addresses (list_ldap.h, the lookup list-mgr makes). Decided here, not
 * in the mail role: imapd-mail links no libldap, and a session's
 * membership is fixed at login, as its quota is. A directory that
 * cannot answer hides that archive for the session (fail closed), logged.
 */
static char *
login_dir_lists(struct login_conn *c, const char *user)
{
	struct str *out = str_new(0, 0), *err = str_new(0, 0);
	struct dirent *de;
	struct list *l;
	char **addrs = NULL;
	size_t naddrs = 0, i;
	const char *why;
	DIR *d;
	int r;

	str_append_c(out, ' ');
	if ((d = opendir(list_directory())) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (!list_name_ok(de->d_name) ||
		    (l = list_store_open(de->d_name, &why)) == NULL)
			continue;
		if (!list_archive_imap_shown(l) ||
		    strcmp(list_get(l, "membership"), "db") == 0) {
			list_store_free(&l);
			continue;
		}
		if (addrs == NULL)
			addrs = list_user_addresses(user, &naddrs);
		str_clear(err);
		r = list_ldap_is_member(l, (const char *const *)addrs, naddrs,
		    err);
		if (r < 0)
			log_warn(&c->log, "list=%s: LDAP group: %s (its archive "
			    "is not shown to %s in this session)", l->name,
			    str_c(err), user);
		else if (r > 0 && str_len(out) + strlen(l->name) + 1 >
		    LOGIN_HANDOFF_MAX_LISTS)
			log_warn(&c->log, "list=%s: too many list archives for "
			    "%s: not shown", l->name, user);
		else if (r > 0)
			str_printf(out, "%s ", l->name);
		list_store_free(&l);
	}
	closedir(d);
out:
	for (i = 0; i < naddrs; i++)
		free(addrs[i]);
	free(addrs);
	str_free(&err);
	return str_steal(&out);
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

	c->quota_bytes = login_quota(c, user);
	c->have_quota = true;
	XFREE(c->dir_lists);
	c->dir_lists = login_dir_lists(c, user);
	if (imapd_settings.role == IMAPD_ROLE_STANDALONE) {
		stream_set_timeout(c->s, imapd_settings.timeout);
		imapd_session_run(c, user, str_c(st->tag), NULL);
		st->done = true;
		return;
	}
	if (login_conn_handoff_record(c, user, str_c(st->tag), &h) < 0) {
		login_reply(st, "BAD Too much pipelined input");
		return;
	}
	if (c->tls) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
			log_error(&c->log, "socketpair: %m");
			login_reply(st, "NO [UNAVAILABLE] Internal error");
			login_handoff_clear(&h);
			return;
		}
		client_fd = pair[1];
	} else
		client_fd = stream_fd(c->s);
	stream_flush(c->s);
	/*
	 * The mail service is local and takes every hand-off in the end; a
	 * burst of logins on a loaded host can keep it seconds behind, so
	 * wait as long as a client may take to log in, not a fixed 10s.
	 */
	if (login_proxy_send(imapd_settings.mail_service, client_fd, c->slot_fd,
	    &h, MAX(imapd_settings.login_timeout, 10), &err) < 0) {
		log_error(&c->log, "hand-off to %s failed: %s: %m",
		    imapd_settings.mail_service, err);
		login_reply(st, "NO [UNAVAILABLE] Mail service unavailable, "
		    "try again later");
		if (pair[0] >= 0) {
			close(pair[0]);
			close(pair[1]);
		}
		login_handoff_clear(&h);
		return;
	}
	login_handoff_clear(&h);
	st->done = true;
	if (!c->tls)
		return;
	close(pair[1]);
	/* the mail process keeps the slot; so do we, until the relay ends */
	stream_set_timeout(c->s, imapd_settings.timeout);
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
		login_reply(st, "NO [UNAVAILABLE] Authentication service "
		    "unavailable");
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
		login_reply(st, "NO [AUTHENTICATIONFAILED] Authentication "
		    "failed.");
		return;
	}
}

static bool
login_allowed(struct login_state *st)
{
	if (!st->c->secured && imapd_settings.disable_plaintext_auth) {
		login_reply(st, "NO [PRIVACYREQUIRED] Plaintext authentication "
		    "disallowed on non-secure (SSL/TLS) connections.");
		return false;
	}
	return true;
}

/* b64_strict - base64 with padding, only the alphabet */
static bool
b64_strict(const char *p, size_t n, struct str *out)
{
	size_t i;

	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
		    (ch == '=' && i >= n - 2)))
			return false;
	}
	return mime_decode_base64(p, n, out) == 0;
}

/* login_plain - check a decoded PLAIN response */
static void
login_plain(struct login_state *st, const struct str *resp)
{
	const char *p = str_c(resp), *z1, *z2;
	size_t n = str_len(resp);
	char *authz, *authc, *pass;

	z1 = memchr(p, '\0', n);
	z2 = z1 != NULL ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - p)) : NULL;
	if (z2 == NULL || memchr(z2 + 1, '\0', n - (size_t)(z2 + 1 - p)) != NULL) {
		st->errors++;
		login_reply(st, "NO [AUTHENTICATIONFAILED] Invalid PLAIN response");
		return;
	}
	authz = xstrndup(p, (size_t)(z1 - p));
	authc = xstrndup(z1 + 1, (size_t)(z2 - z1 - 1));
	pass = xstrndup(z2 + 1, n - (size_t)(z2 + 1 - p));
	if (*authz != '\0' && strcasecmp(authz, authc) != 0) {
		st->errors++;
		login_reply(st, "NO [AUTHORIZATIONFAILED] Authorization as "
		    "another user is not allowed");
	} else
		login_check(st, authc, pass, "PLAIN");
	explicit_bzero(pass, strlen(pass));
	free(authz);
	free(authc);
	free(pass);
}

/*
 * login_sasl_run - AUTHENTICATE through lib/sasl_server: challenges as
 * "+ base64", the client's lines back, until a result
 */
static void
login_sasl_run(struct login_state *st, const char *mech, const struct str *ir)
{
	struct str *out = str_new(0, 0), *line = str_new(0, 0), *shown;
	enum sasl_server_result r;
	const char *err = NULL;
	bool reset = true;

	if (!sasl_server_mech_offered(login_sasl, mech)) {
		if (sasl_server_mech_plaintext(mech) && !login_allowed(st))
			goto out;
		login_reply(st, "NO Unsupported authentication mechanism");
		goto out;
	}
	r = sasl_server_begin(login_sasl, mech, ir != NULL ? str_c(ir) : NULL,
	    ir != NULL ? str_len(ir) : 0, out, &err);
	while (r == SASL_SERVER_CONTINUE) {
		stream_printf(st->c->s, "+ %s\r\n", str_c(out));
		stream_flush(st->c->s);
		if (stream_read_line(st->c->s, line, IMAPD_LOGIN_MAX) != STREAM_OK) {
			st->done = true;
			goto out;
		}
		str_chomp(line);
		if (str_equals_cstr(line, "*")) {
			login_reply(st, "BAD Authentication aborted");
			goto out;
		}
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
		login_reply(st, "NO [UNAVAILABLE] Authentication service "
		    "unavailable");
		break;
	case SASL_SERVER_BADB64:
		st->errors++;
		login_reply(st, "BAD Invalid base64 data");
		break;
	case SASL_SERVER_BADMECH:
		login_reply(st, "NO Unsupported authentication mechanism");
		break;
	case SASL_SERVER_ERROR:
		log_error(&st->c->log, "SASL %s: %s", mech,
		    err != NULL ? err : "failed");
		login_reply(st, "NO [UNAVAILABLE] Internal error");
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
		    "NO [AUTHORIZATIONFAILED] Authorization as another user "
		    "is not allowed" :
		    "NO [AUTHENTICATIONFAILED] Authentication failed.");
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

static void
cmd_authenticate(struct login_state *st, struct imap_parser *ip)
{
	struct str *mech = str_new(0, 0), *ir = str_new(0, 0);
	struct str *resp = str_new(0, 0), *line = str_new(0, 0);
	bool have_ir = false;

	if (!imap_parse_sp(ip) || !imap_parse_atom(ip, mech, false))
		goto bad;
	if (imap_parse_peek(ip, ' ')) {
		/* SASL-IR: the rest of the line is the initial response */
		ip->pos++;
		str_set(ir, ip->p + ip->pos, ip->n - ip->pos);
		ip->pos = ip->n;
		have_ir = true;
	}
	if (!imap_parse_end(ip))
		goto bad;
	if (login_sasl != NULL) {
		login_sasl_run(st, str_c(mech), have_ir ? ir : NULL);
		goto out;
	}
	if (strcasecmp(str_c(mech), "PLAIN") != 0) {
		login_reply(st, "NO Unsupported authentication mechanism");
		goto out;
	}
	if (!login_allowed(st))
		goto out;
	if (!have_ir) {
		stream_puts(st->c->s, "+ \r\n");
		stream_flush(st->c->s);
		if (stream_read_line(st->c->s, line, IMAPD_LOGIN_MAX) != STREAM_OK) {
			st->done = true;
			goto out;
		}
		str_chomp(line);
		str_set(ir, str_c(line), str_len(line));
	}
	if (str_equals_cstr(ir, "*")) {
		login_reply(st, "BAD Authentication aborted");
		goto out;
	}
	if (str_equals_cstr(ir, "="))
		str_clear(ir);
	if (!b64_strict(str_c(ir), str_len(ir), resp)) {
		st->errors++;
		login_reply(st, "BAD Invalid base64 data");
		goto out;
	}
	login_plain(st, resp);
	goto out;
bad:
	st->errors++;
	login_reply(st, "BAD Invalid arguments");
out:
	if (str_len(resp) > 0)
		explicit_bzero(str_data(resp), str_len(resp));
	if (str_len(ir) > 0)
		explicit_bzero(str_data(ir), str_len(ir));
	str_free(&mech);
	str_free(&ir);
	str_free(&resp);
	str_free(&line);
}

static void
cmd_login(struct login_state *st, struct imap_parser *ip)
{
	struct str *user = str_new(0, 0), *pass = str_new(0, 0);

	if (!imap_parse_sp(ip) || !imap_parse_astring(ip, user) ||
	    !imap_parse_sp(ip) || !imap_parse_astring(ip, pass) ||
	    !imap_parse_end(ip) || memchr(str_c(user), '\0', str_len(user)) ||
	    memchr(str_c(pass), '\0', str_len(pass))) {
		st->errors++;
		login_reply(st, "BAD Invalid arguments");
	} else if (login_allowed(st))
		login_check(st, str_c(user), str_c(pass), "LOGIN");
	if (str_len(pass) > 0)
		explicit_bzero(str_data(pass), str_len(pass));
	str_free(&user);
	str_free(&pass);
}

static void
cmd_starttls(struct login_state *st, struct imap_parser *ip)
{
	struct str *err;

	if (!imap_parse_end(ip)) {
		login_reply(st, "BAD Invalid arguments");
		return;
	}
	if (st->tls_ctx == NULL || st->c->tls) {
		login_reply(st, st->c->tls ? "BAD TLS is already active" :
		    "NO TLS is not available");
		return;
	}
	login_reply(st, "OK Begin TLS negotiation now.");
	err = str_new(0, 0);
	st->c->tls_sess = tls_session_start(st->tls_ctx, st->c->s, NULL,
	    imapd_settings.login_timeout, err);
	if (st->c->tls_sess == NULL) {
		log_info(&st->c->log, "STARTTLS failed: %s", str_c(err));
		str_free(&err);
		st->done = true;
		return;
	}
	str_clear(err);
	tls_session_describe(st->c->tls_sess, err);
	st->c->tls_desc = str_steal(&err);
	st->c->tls = st->c->secured = true;
	login_sasl_reset(st->c);
}

/* imapd_cmd_id - ID (RFC 2971): parse the client's list, answer ours */
static void
cmd_id(struct login_state *st, struct imap_parser *ip)
{
	struct str *k = str_new(0, 0);
	bool nil, ok = imap_parse_sp(ip);

	if (ok && !imap_parse_nstring(ip, k, &nil)) {
		ip->error = NULL;
		ok = imap_parse_char(ip, '(');
		while (ok && !imap_parse_peek(ip, ')'))
			ok = imap_parse_string(ip, k) && imap_parse_sp(ip) &&
			    imap_parse_nstring(ip, k, &nil) &&
			    (imap_parse_peek(ip, ')') || imap_parse_sp(ip));
		ok = ok && imap_parse_char(ip, ')');
	} else if (ok && !nil)
		ok = false;
	if (!ok || !imap_parse_end(ip)) {
		login_reply(st, "BAD Invalid ID arguments");
	} else {
		stream_puts(st->c->s, "* ID (\"name\" \"Postern\")\r\n");
		login_reply(st, "OK ID completed.");
	}
	str_free(&k);
}

/* imapd_login_run - see imapd.h */
void
imapd_login_run(struct login_conn *c, struct tls_context *tls_ctx)
{
	struct login_state st;
	struct str *name = str_new(0, 0), *caps = str_new(0, 0);
	struct imap_parser ip;
	enum imapd_read r;

	memset(&st, 0, sizeof(st));
	st.c = c;
	st.tls_ctx = tls_ctx;
	st.tag = str_new(0, 0);
	st.cmd = str_new(0, 0);
	login_sasl_reset(c);
	imapd_capability_preauth(caps, c, tls_ctx != NULL);
	stream_printf(c->s, "* OK [CAPABILITY %s] %s\r\n", str_c(caps),
	    imapd_settings.banner);
	stream_flush(c->s);
	while (!st.done) {
		if (st.errors >= IMAPD_LOGIN_ERRORS) {
			stream_puts(c->s, "* BYE Too many errors\r\n");
			stream_flush(c->s);
			break;
		}
		r = imapd_read_command(c->s, st.cmd, IMAPD_LOGIN_MAX, 0, st.tag);
		if (r == IMAPD_READ_EOF) {
			if (stream_error(c->s) == STREAM_TIMEOUT) {
				stream_puts(c->s, "* BYE Autologout; idle for too "
				    "long\r\n");
				stream_flush(c->s);
			}
			break;
		}
		if (r == IMAPD_READ_FATAL)
			break;
		if (r == IMAPD_READ_TOO_LONG) {
			st.errors++;
			continue;
		}
		imap_parser_init(&ip, str_c(st.cmd), str_len(st.cmd));
		if (!imap_parse_tag(&ip, st.tag))
			str_set_cstr(st.tag, "*");
		if (str_equals_cstr(st.tag, "*") || !imap_parse_sp(&ip) ||
		    !imap_parse_atom(&ip, name, false)) {
			st.errors++;
			login_reply(&st, "BAD Error in IMAP command: invalid tag "
			    "or command");
			continue;
		}
		if (strcasecmp(str_c(name), "CAPABILITY") == 0) {
			if (!imap_parse_end(&ip)) {
				login_reply(&st, "BAD Invalid arguments");
				continue;
			}
			str_clear(caps);
			imapd_capability_preauth(caps, c, tls_ctx != NULL);
			stream_printf(c->s, "* CAPABILITY %s\r\n", str_c(caps));
			login_reply(&st, "OK Capability completed.");
		} else if (strcasecmp(str_c(name), "NOOP") == 0) {
			login_reply(&st, imap_parse_end(&ip) ?
			    "OK NOOP completed." : "BAD Invalid arguments");
		} else if (strcasecmp(str_c(name), "LOGOUT") == 0) {
			stream_puts(c->s, "* BYE Logging out\r\n");
			login_reply(&st, "OK Logout completed.");
			break;
		} else if (strcasecmp(str_c(name), "STARTTLS") == 0) {
			cmd_starttls(&st, &ip);
		} else if (strcasecmp(str_c(name), "LOGIN") == 0) {
			cmd_login(&st, &ip);
		} else if (strcasecmp(str_c(name), "AUTHENTICATE") == 0) {
			cmd_authenticate(&st, &ip);
		} else if (strcasecmp(str_c(name), "ID") == 0) {
			cmd_id(&st, &ip);
		} else {
			st.errors++;
			login_reply(&st, "BAD Command unknown or not valid in "
			    "the not-authenticated state");
		}
	}
	sasl_server_free(&login_sasl);
	str_free(&name);
	str_free(&caps);
	str_free(&st.tag);
	str_free(&st.cmd);
}
