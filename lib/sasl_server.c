/* SPDX-License-Identifier: MIT */
/*
 * sasl_server - server-side SASL over Cyrus libsasl2
 *
 * DESCRIPTION
 *	See sasl_server.h for the contract. libsasl2 is configured only
 *	through our getopt callback (a /etc/sasl2/APP.conf may add options
 *	we do not answer, nothing more):
 *
 *	mech_list       $sasl_mechanisms: libsasl2 loads only these
 *	pwcheck_method  auxprop, with auxprop_plugin naming no plugin:
 *	                when our checkpass callback refuses a password,
 *	                libsasl2 falls back to that verifier, which finds
 *	                no plugin (SASL_NOMECH), so the refusal stands and
 *	                sasldb is never consulted. XXX libsasl2 then logs
 *	                "unknown password verifier(s)" as an error; the log
 *	                callback turns that one into a debug line when lib/auth
 *	                has just refused the password.
 *	keytab          (GSSAPI) $auth_krb5_keytab without "FILE:"; the
 *	                plugin registers it with Heimdal
 *	                (gsskrb5_register_acceptor_identity) at load time
 *
 *	KRB5_KTNAME and KRB5_CONFIG are set too, for a plugin built
 *	without that registration and for Heimdal's library context.
 *
 *	Per session, the callbacks carry the session as context: the log
 *	callback logs with the session's log context, the checkpass
 *	callback asks lib/auth and remembers a temporary failure (libsasl2
 *	itself can only say "failed"), and the proxy policy compares the
 *	mapped authorization and authentication identities.
 *
 *	XXX libsasl2 keeps process-global state (plugins, callbacks);
 *	every login daemon serves one session at a time, so that is fine.
 *
 * SEE ALSO
 *	sasl_server.h, auth.h, RFC 4422, RFC 4752 (GSSAPI), Cyrus SASL
 *	sasl_server_new(3), Postfix xsasl_cyrus_server.c.
 */
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "mime_decode.h"
#include "sasl_server.h"
#include "str.h"
#include "userdb.h"

#define SASL_SERVER_NAME_MAX	256
#define SASL_SERVER_PASS_MAX	1024

struct sasl_server {
	sasl_conn_t *conn;
	const struct log_ctx *log;
	sasl_callback_t callbacks[5];
	struct str *mechs;	/* offered, space-separated, upper case */
	struct str *user;	/* mapped local user after OK */
	struct str *why;	/* *error_r text we made */
	char *mech;		/* mechanism of the last start */
	bool fold;		/* password mechanism: fold names */
	bool tempfail;		/* the checkpass backend failed */
	bool pwfail;		/* lib/auth refused the password */
	bool pwok;		/* lib/auth accepted the password */
	bool noauthz;		/* the proxy policy refused */
	const char *err;
};

static bool sasl_server_inited;
static char *sasl_server_opt_mechs;	/* space-separated $sasl_mechanisms */
static char *sasl_server_opt_keytab;	/* path, or NULL */
static char *sasl_server_hostname;
static char *sasl_server_realm;
static const char *const *sasl_server_allowed;
static size_t sasl_server_nallowed;

/*
 * SASL_SERVER_CB - a callback in libsasl2's generic pointer type. libsasl2
 * calls each proc with the signature its id implies; going through
 * void (*)(void) (which -Wcast-function-type treats as generic) only
 * stores it in the table's field type.
 */
#define SASL_SERVER_CB(fn) ((int (*)(void))(void (*)(void))(fn))

/* ------------------------------------------------------------ helpers */

/* sasl_server_mech_plaintext - see sasl_server.h */
bool
sasl_server_mech_plaintext(const char *mech)
{
	return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

/* sasl_server_filter_mechs - see sasl_server.h */
void
sasl_server_filter_mechs(const char *available, const char *const *allowed,
    size_t nallowed, bool allow_plaintext, const char *prefix,
    struct str *out)
{
	const char *p = available, *e;
	char name[64];
	size_t i, n;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		n = (size_t)(e - p);
		if (n == 0)
			break;
		if (n < sizeof(name)) {
			for (i = 0; i < n; i++)
				name[i] = (p[i] >= 'a' && p[i] <= 'z') ?
				    (char)(p[i] - 'a' + 'A') : p[i];
			name[n] = '\0';
			for (i = 0; i < nallowed; i++)
				if (strcasecmp(allowed[i], name) == 0)
					break;
			if (i < nallowed && (allow_plaintext ||
			    !sasl_server_mech_plaintext(name))) {
				str_append_cstr(out, prefix);
				str_append_cstr(out, name);
			}
		}
		p = e;
	}
}

/* sasl_server_map_user - see sasl_server.h */
bool
sasl_server_map_user(const char *authid, const char *realm, bool fold,
    struct str *out)
{
	const char *at = strchr(authid, '@');
	size_t n = at != NULL ? (size_t)(at - authid) : strlen(authid);
	size_t i;
	char *p;

	str_clear(out);
	if (at != NULL && (realm == NULL || *realm == '\0' ||
	    strcmp(at + 1, realm) != 0))
		return false;
	if (n == 0 || n > SASL_SERVER_NAME_MAX)
		return false;
	str_set(out, authid, n);
	p = str_data(out);
	for (i = 0; i < n; i++) {
		if (p[i] >= 'A' && p[i] <= 'Z') {
			if (!fold)
				goto bad;
			p[i] = (char)(p[i] - 'A' + 'a');
		}
	}
	/* '@', '/' and everything else a principal may carry fail here */
	if (userdb_name_ok(str_c(out)))
		return true;
bad:
	str_clear(out);
	return false;
}

/* sasl_server_b64 - strict base64 (padding, alphabet only) into out */
static bool
sasl_server_b64(const char *p, size_t n, struct str *out)
{
	size_t i;

	str_clear(out);
	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
		    (ch == '=' && i >= n - 2 && (i == n - 1 || p[n - 1] == '='))))
			return false;
	}
	return mime_decode_base64(p, n, out) == 0;
}

/* sasl_server_encode - base64 of (p, n) into out */
static int
sasl_server_encode(const char *p, unsigned n, struct str *out)
{
	size_t room = ((size_t)n + 2) / 3 * 4 + 1;
	unsigned len = 0;
	char *w;

	str_clear(out);
	if (n == 0)
		return 0;
	if ((w = str_reserve(out, room)) == NULL)
		return -1;
	if (sasl_encode64(p, n, w, (unsigned)room, &len) != SASL_OK)
		return -1;
	str_commit(out, len);
	return 0;
}

/* ---------------------------------------------------------- callbacks */

/* sasl_server_cb_log - libsasl2's messages into our log */
static int
sasl_server_cb_log(void *context, int level, const char *message)
{
	const struct sasl_server *sa = context;
	const struct log_ctx *log = sa != NULL ? sa->log : NULL;
	struct str *m;

	if (sa != NULL && (sa->pwfail || sa->tempfail) &&
	    strncmp(message, "unknown password verifier", 25) == 0)
		level = SASL_LOG_DEBUG;		/* see DESCRIPTION */
	m = str_new(0, 0);
	mem_printable(m, message, strlen(message), 400);
	switch (level) {
	case SASL_LOG_ERR:
		log_error(log, "sasl: %s", str_c(m));
		break;
	case SASL_LOG_WARN:
		log_warn(log, "sasl: %s", str_c(m));
		break;
	case SASL_LOG_FAIL:
	case SASL_LOG_NOTE:
		log_info(log, "sasl: %s", str_c(m));
		break;
	default:
		log_debug(log, "sasl: %s", str_c(m));
		break;
	}
	str_free(&m);
	return SASL_OK;
}

/* sasl_server_cb_getopt - our configuration, nothing else */
static int
sasl_server_cb_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	const char *v = NULL;

	(void)context;
	if (strcmp(option, "mech_list") == 0)
		v = sasl_server_opt_mechs;
	else if (strcmp(option, "pwcheck_method") == 0)
		v = "auxprop";
	else if (strcmp(option, "auxprop_plugin") == 0)
		v = "postern-none";
	else if (strcmp(option, "keytab") == 0 && plugin != NULL &&
	    strcasecmp(plugin, "GSSAPI") == 0)
		v = sasl_server_opt_keytab;
	if (v == NULL)
		return SASL_FAIL;
	*result = v;
	if (len != NULL)
		*len = (unsigned)strlen(v);
	return SASL_OK;
}

/* sasl_server_cb_checkpass - PLAIN/LOGIN passwords through lib/auth */
static int
sasl_server_cb_checkpass(sasl_conn_t *conn, void *context, const char *user,
    const char *pass, unsigned passlen, struct propctx *propctx)
{
	struct sasl_server *sa = context;
	const char *err = NULL;
	char *copy;
	int ret;

	(void)conn;
	(void)propctx;
	if (passlen > SASL_SERVER_PASS_MAX ||
	    memchr(pass, '\0', passlen) != NULL) {
		sa->pwfail = true;
		return SASL_BADAUTH;
	}
	copy = xmalloc((size_t)passlen + 1);
	memcpy(copy, pass, passlen);
	copy[passlen] = '\0';
	switch (auth_verify_password(user, copy, &err)) {
	case AUTH_OK:
		sa->pwok = true;
		ret = SASL_OK;
		break;
	case AUTH_TEMPFAIL:
		sa->tempfail = true;
		sa->err = err != NULL ? err : "authentication backend failed";
		ret = SASL_UNAVAIL;
		break;
	case AUTH_FAIL:
	default:
		sa->pwfail = true;
		ret = SASL_BADAUTH;
		break;
	}
	explicit_bzero(copy, passlen);
	free(copy);
	return ret;
}

/* sasl_server_cb_authorize - no proxy logins: authz must be the authc */
static int
sasl_server_cb_authorize(sasl_conn_t *conn, void *context,
    const char *requested, unsigned rlen, const char *auth_identity,
    unsigned alen, const char *def_realm, unsigned urlen,
    struct propctx *propctx)
{
	struct sasl_server *sa = context;
	struct str *a, *r;
	char *rq, *au;
	bool ok;

	(void)def_realm;
	(void)urlen;
	(void)propctx;
	/* no authzid (libsasl2 then passes the authcid): sasl_server_answer
	 * maps the identity itself */
	if (requested == NULL || rlen == 0 || (rlen == alen &&
	    memcmp(requested, auth_identity, alen) == 0))
		return SASL_OK;
	rq = xstrndup(requested, rlen);
	au = xstrndup(auth_identity, alen);
	a = str_new(0, 0);
	r = str_new(0, 0);
	ok = sasl_server_map_user(au, sasl_server_realm, sa->fold, a) &&
	    sasl_server_map_user(rq, sasl_server_realm, true, r) &&
	    strcmp(str_c(a), str_c(r)) == 0;
	str_free(&a);
	str_free(&r);
	free(rq);
	free(au);
	if (ok)
		return SASL_OK;
	sa->noauthz = true;
	sasl_seterror(conn, SASL_NOLOG, "authorization identity not allowed");
	return SASL_NOAUTHZ;
}

/* ------------------------------------------------------------ process */

/* sasl_server_setup - see sasl_server.h */
int
sasl_server_setup(const char *app_name, const char **error_r)
{
	static sasl_callback_t global_cb[3];
	const struct config *c = conf();
	const char *keytab = config_str(c, "auth_krb5_keytab");
	const char *krb5conf = config_str(c, "auth_krb5_config");
	struct str *m;
	size_t i;
	int ret;

	if (sasl_server_inited)
		return 0;
	sasl_server_allowed = config_list(c, "sasl_mechanisms",
	    &sasl_server_nallowed);
	m = str_new(0, 0);
	for (i = 0; i < sasl_server_nallowed; i++) {
		if (i > 0)
			str_append_c(m, ' ');
		str_append_cstr(m, sasl_server_allowed[i]);
	}
	sasl_server_opt_mechs = str_steal(&m);
	sasl_server_hostname = xstrdup(config_str(c, "sasl_hostname"));
	sasl_server_realm = xstrdup(config_str(c, "auth_krb5_realm"));
	if (*keytab != '\0') {
		(void)setenv("KRB5_KTNAME", keytab, 1);
		if (strncmp(keytab, "FILE:", 5) == 0)
			sasl_server_opt_keytab = xstrdup(keytab + 5);
		else if (strchr(keytab, ':') == NULL)
			sasl_server_opt_keytab = xstrdup(keytab);
	}
	if (*krb5conf != '\0')
		(void)setenv("KRB5_CONFIG", krb5conf, 1);
	global_cb[0].id = SASL_CB_GETOPT;
	global_cb[0].proc = SASL_SERVER_CB(sasl_server_cb_getopt);
	global_cb[1].id = SASL_CB_LOG;
	global_cb[1].proc = SASL_SERVER_CB(sasl_server_cb_log);
	global_cb[2].id = SASL_CB_LIST_END;
	if ((ret = sasl_server_init(global_cb, app_name)) != SASL_OK) {
		*error_r = sasl_errstring(ret, NULL, NULL);
		return -1;
	}
	sasl_server_inited = true;
	return 0;
}

/* sasl_server_ready - see sasl_server.h */
bool
sasl_server_ready(void)
{
	return sasl_server_inited;
}

/* sasl_server_deinit - see sasl_server.h */
void
sasl_server_deinit(void)
{
	if (!sasl_server_inited)
		return;
	sasl_server_done();
	sasl_server_inited = false;
	XFREE(sasl_server_opt_mechs);
	XFREE(sasl_server_opt_keytab);
	XFREE(sasl_server_hostname);
	XFREE(sasl_server_realm);
}

/* ------------------------------------------------------------ session */

/* sasl_server_create - see sasl_server.h */
struct sasl_server *
sasl_server_create(const char *service, const struct log_ctx *log,
    bool allow_plaintext, const char **error_r)
{
	struct sasl_server *sa;
	sasl_security_properties_t sec;
	const char *list = NULL;
	unsigned len = 0;
	int count = 0, ret;

	if (!sasl_server_inited) {
		*error_r = "SASL is not set up";
		return NULL;
	}
	sa = xcalloc(1, sizeof(*sa));
	sa->log = log;
	sa->mechs = str_new(0, 0);
	sa->user = str_new(0, 0);
	sa->why = str_new(0, 0);
	sa->callbacks[0].id = SASL_CB_LOG;
	sa->callbacks[0].proc = SASL_SERVER_CB(sasl_server_cb_log);
	sa->callbacks[0].context = sa;
	sa->callbacks[1].id = SASL_CB_SERVER_USERDB_CHECKPASS;
	sa->callbacks[1].proc = SASL_SERVER_CB(sasl_server_cb_checkpass);
	sa->callbacks[1].context = sa;
	sa->callbacks[2].id = SASL_CB_PROXY_POLICY;
	sa->callbacks[2].proc = SASL_SERVER_CB(sasl_server_cb_authorize);
	sa->callbacks[2].context = sa;
	sa->callbacks[3].id = SASL_CB_LIST_END;
	ret = sasl_server_new(service, sasl_server_hostname, NULL, NULL, NULL,
	    sa->callbacks, 0, &sa->conn);
	if (ret != SASL_OK) {
		*error_r = sasl_errstring(ret, NULL, NULL);
		sa->conn = NULL;
		sasl_server_free(&sa);
		return NULL;
	}
	memset(&sec, 0, sizeof(sec));
	sec.min_ssf = 0;
	sec.max_ssf = 0;	/* never a security layer: TLS does that */
	sec.maxbufsize = 0;
	sec.security_flags = SASL_SEC_NOANONYMOUS |
	    (allow_plaintext ? 0 : SASL_SEC_NOPLAINTEXT);
	if (sasl_setprop(sa->conn, SASL_SEC_PROPS, &sec) != SASL_OK) {
		*error_r = "cannot set SASL security properties";
		sasl_server_free(&sa);
		return NULL;
	}
	if (sasl_listmech(sa->conn, NULL, "", " ", "", &list, &len,
	    &count) == SASL_OK && list != NULL)
		sasl_server_filter_mechs(list, sasl_server_allowed,
		    sasl_server_nallowed, allow_plaintext, " ", sa->mechs);
	return sa;
}

/* sasl_server_free - see sasl_server.h */
void
sasl_server_free(struct sasl_server **sap)
{
	struct sasl_server *sa = *sap;

	if (sa == NULL)
		return;
	if (sa->conn != NULL)
		sasl_dispose(&sa->conn);
	str_free(&sa->mechs);
	str_free(&sa->user);
	str_free(&sa->why);
	free(sa->mech);
	free(sa);
	*sap = NULL;
}

/* sasl_server_mechs - see sasl_server.h */
void
sasl_server_mechs(const struct sasl_server *sa, struct str *out,
    const char *prefix)
{
	const char *p = str_c(sa->mechs), *e;

	while (*p == ' ') {
		p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		str_append_cstr(out, prefix);
		str_append(out, p, (size_t)(e - p));
		p = e;
	}
}

/* sasl_server_mech_offered - see sasl_server.h */
bool
sasl_server_mech_offered(const struct sasl_server *sa, const char *mech)
{
	const char *p = str_c(sa->mechs), *e;
	size_t n = strlen(mech);

	while (*p == ' ') {
		p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		if ((size_t)(e - p) == n && strncasecmp(p, mech, n) == 0)
			return true;
		p = e;
	}
	return false;
}

/* sasl_server_answer - turn libsasl2's answer into ours */
static enum sasl_server_result
sasl_server_answer(struct sasl_server *sa, int ret, const char *out,
    unsigned outlen, struct str *b64, const char **error_r)
{
	const void *name = NULL;

	*error_r = NULL;
	if (ret == SASL_CONTINUE) {
		if (sasl_server_encode(out, outlen, b64) < 0) {
			*error_r = "cannot encode the challenge";
			return SASL_SERVER_ERROR;
		}
		return SASL_SERVER_CONTINUE;
	}
	if (ret == SASL_OK) {
		if (sasl_getprop(sa->conn, SASL_USERNAME, &name) != SASL_OK ||
		    name == NULL) {
			*error_r = "no user name from the mechanism";
			return SASL_SERVER_ERROR;
		}
		if (!sasl_server_map_user(name, sasl_server_realm, sa->fold,
		    sa->user)) {
			str_set_cstr(sa->why, "identity ");
			mem_printable(sa->why, name, strlen(name), 100);
			str_append_cstr(sa->why, " is not a local user");
			*error_r = str_c(sa->why);
			return SASL_SERVER_FAIL;
		}
		return SASL_SERVER_OK;
	}
	if (sa->tempfail) {
		*error_r = sa->err;
		return SASL_SERVER_TEMPFAIL;
	}
	*error_r = sasl_errdetail(sa->conn);
	/*
	 * A right password and still no success: what failed is the
	 * authorization identity (PLAIN with an authzid that libsasl2's
	 * own canonicalization refuses before our proxy policy is asked,
	 * which it reports as SASL_NOMECH)
	 */
	if (sa->noauthz || ret == SASL_NOAUTHZ || sa->pwok)
		return SASL_SERVER_NOAUTHZ;
	/* whatever libsasl2's fall-back verifier answered */
	if (sa->pwfail)
		return SASL_SERVER_FAIL;
	if (ret == SASL_NOMECH || ret == SASL_TOOWEAK || ret == SASL_ENCRYPT)
		return SASL_SERVER_BADMECH;
	if (ret == SASL_TRYAGAIN || ret == SASL_UNAVAIL)
		return SASL_SERVER_TEMPFAIL;
	return SASL_SERVER_FAIL;
}

/* sasl_server_begin - see sasl_server.h */
enum sasl_server_result
sasl_server_begin(struct sasl_server *sa, const char *mech, const char *ir,
    size_t ilen, struct str *out, const char **error_r)
{
	struct str *in;
	const char *sout = NULL;
	unsigned soutlen = 0;
	enum sasl_server_result r;
	size_t i;
	int ret;

	str_clear(out);
	*error_r = NULL;
	if (!sasl_server_mech_offered(sa, mech))
		return SASL_SERVER_BADMECH;
	free(sa->mech);
	sa->mech = xstrdup(mech);
	for (i = 0; sa->mech[i] != '\0'; i++)
		if (sa->mech[i] >= 'a' && sa->mech[i] <= 'z')
			sa->mech[i] = (char)(sa->mech[i] - 'a' + 'A');
	sa->fold = sasl_server_mech_plaintext(mech);
	sa->tempfail = sa->noauthz = sa->pwfail = sa->pwok = false;
	str_clear(sa->user);
	in = str_new(0, 0);
	if (ir != NULL && !(ilen == 1 && ir[0] == '=') &&
	    !sasl_server_b64(ir, ilen, in)) {
		str_free(&in);
		return SASL_SERVER_BADB64;
	}
	if (str_len(in) > (size_t)(unsigned)-1 / 2) {
		str_free(&in);
		return SASL_SERVER_BADB64;
	}
	ret = sasl_server_start(sa->conn, sa->mech,
	    ir != NULL ? str_c(in) : NULL, (unsigned)str_len(in), &sout,
	    &soutlen);
	explicit_bzero(str_data(in), str_len(in));
	str_free(&in);
	r = sasl_server_answer(sa, ret, sout, soutlen, out, error_r);
	return r;
}

/* sasl_server_next - see sasl_server.h */
enum sasl_server_result
sasl_server_next(struct sasl_server *sa, const char *line, size_t ilen,
    struct str *out, const char **error_r)
{
	struct str *in = str_new(0, 0);
	const char *sout = NULL;
	unsigned soutlen = 0;
	int ret;

	str_clear(out);
	*error_r = NULL;
	if (sa->mech == NULL) {
		str_free(&in);
		*error_r = "no authentication in progress";
		return SASL_SERVER_ERROR;
	}
	if (!sasl_server_b64(line, ilen, in) ||
	    str_len(in) > (size_t)(unsigned)-1 / 2) {
		str_free(&in);
		return SASL_SERVER_BADB64;
	}
	ret = sasl_server_step(sa->conn, str_c(in), (unsigned)str_len(in),
	    &sout, &soutlen);
	explicit_bzero(str_data(in), str_len(in));
	str_free(&in);
	return sasl_server_answer(sa, ret, sout, soutlen, out, error_r);
}

/* sasl_server_user - see sasl_server.h */
const char *
sasl_server_user(const struct sasl_server *sa)
{
	return str_len(sa->user) > 0 ? str_c(sa->user) : NULL;
}

/* sasl_server_mech - see sasl_server.h */
const char *
sasl_server_mech(const struct sasl_server *sa)
{
	return sa->mech;
}
