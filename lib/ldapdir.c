/* SPDX-License-Identifier: MIT */
/*
 * ldapdir - searches and password binds against an LDAP directory
 *
 * DESCRIPTION
 *	See ldapdir.h. libldap (OpenLDAP 2.5) with protocol version 3,
 *	referrals off, LDAP_OPT_NETWORK_TIMEOUT and LDAP_OPT_TIMEOUT set to
 *	the configured timeout, and a time limit on each search. Several
 *	URIs are handed to ldap_initialize() as one space-separated list:
 *	libldap connects to the first that answers, which is the failover.
 *
 *	A search that fails with a connection-level error drops the
 *	connection and tries once more on a new one; so a slapd restart
 *	costs one reconnect, not an error, as long as it is back.
 *
 *	Passwords are checked by a simple bind on a separate short-lived
 *	connection; an empty password is refused before any bind, because
 *	a simple bind with a DN and no password is an "unauthenticated"
 *	bind that many servers accept (RFC 4513 5.1.2).
 *
 * SEE ALSO
 *	ldap_search_ext_s(3), ldap_sasl_bind_s(3), RFC 4515 (filters)
 */
#include <errno.h>
#include <ldap.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "macros.h"
#include "safe_file.h"
#include "ldapdir.h"
#include "str.h"

#define LDAPDIR_VALUE_MAX	(1024 * 1024)
#define LDAPDIR_ATTRS_MAX	16

struct ldapdir {
	char *uris;
	char *base;
	int scope;
	char *filter;
	char *attrs[LDAPDIR_ATTRS_MAX + 1];	/* NULL-terminated */
	size_t n_attrs;
	char *bind_dn;
	char *bind_pw;
	unsigned timeout;
	bool start_tls;
	bool tls;		/* set TLS options: start_tls or an ldaps:// URI */
	char *tls_ca_file;	/* NULL: the system's */
	bool tls_insecure;
	LDAP *conn;
	struct str *expanded;
	struct str *error;
};

/* ldapdir_parse_scope - see ldapdir.h */
bool
ldapdir_parse_scope(const char *s, enum ldapdir_scope *scope_r)
{
	if (strcmp(s, "sub") == 0 || strcmp(s, "subtree") == 0)
		*scope_r = LDAPDIR_SCOPE_SUB;
	else if (strcmp(s, "one") == 0 || strcmp(s, "onelevel") == 0)
		*scope_r = LDAPDIR_SCOPE_ONE;
	else if (strcmp(s, "base") == 0)
		*scope_r = LDAPDIR_SCOPE_BASE;
	else
		return false;
	return true;
}

/* ldapdir_new - copy the settings */
struct ldapdir *
ldapdir_new(const struct ldapdir_settings *s)
{
	struct ldapdir *ld = xcalloc(1, sizeof(*ld));
	const char *p, *e;
	char *uris;
	size_t i;

	/* libldap wants the URIs separated by spaces (or commas). */
	uris = xstrdup(s->uris != NULL ? s->uris : "");
	for (i = 0; uris[i] != '\0'; i++)
		if (uris[i] == '\t' || uris[i] == '\n' || uris[i] == ',')
			uris[i] = ' ';
	ld->uris = uris;
	ld->base = xstrdup(s->base != NULL ? s->base : "");
	ld->scope = s->scope == LDAPDIR_SCOPE_BASE ? LDAP_SCOPE_BASE :
	    s->scope == LDAPDIR_SCOPE_ONE ? LDAP_SCOPE_ONELEVEL :
	    LDAP_SCOPE_SUBTREE;
	ld->filter = xstrdup(s->filter != NULL ? s->filter : "");
	p = s->result_attrs != NULL ? s->result_attrs : "";
	while (*p != '\0' && ld->n_attrs < LDAPDIR_ATTRS_MAX) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		for (e = p; *e != '\0' && *e != ' ' && *e != ',' && *e != '\t';
		    e++)
			;
		if (e > p)
			ld->attrs[ld->n_attrs++] = xstrndup(p, (size_t)(e - p));
		p = e;
	}
	ld->bind_dn = xstrdup(s->bind_dn != NULL ? s->bind_dn : "");
	ld->bind_pw = xstrdup(s->bind_pw != NULL ? s->bind_pw : "");
	ld->timeout = s->timeout > 0 ? s->timeout : 10;
	ld->start_tls = s->start_tls;
	ld->tls = s->start_tls || strstr(ld->uris, "ldaps://") != NULL;
	if (s->tls_ca_file != NULL && *s->tls_ca_file != '\0')
		ld->tls_ca_file = xstrdup(s->tls_ca_file);
	ld->tls_insecure = s->tls_insecure;
	ld->expanded = str_new(256, 64 * 1024);
	ld->error = str_new(0, 0);
	return ld;
}

/* ldapdir_disconnect - drop the shared connection */
static void
ldapdir_disconnect(struct ldapdir *ld)
{
	if (ld->conn != NULL)
		(void)ldap_unbind_ext_s(ld->conn, NULL, NULL);
	ld->conn = NULL;
}

/* ldapdir_free - close and free (NULL allowed) */
void
ldapdir_free(struct ldapdir **ldp)
{
	struct ldapdir *ld = *ldp;
	size_t i;

	if (ld == NULL)
		return;
	ldapdir_disconnect(ld);
	free(ld->uris);
	free(ld->base);
	free(ld->filter);
	for (i = 0; i < ld->n_attrs; i++)
		free(ld->attrs[i]);
	free(ld->bind_dn);
	free(ld->tls_ca_file);
	if (ld->bind_pw != NULL) {
		explicit_bzero(ld->bind_pw, strlen(ld->bind_pw));
		free(ld->bind_pw);
	}
	str_free(&ld->expanded);
	str_free(&ld->error);
	free(ld);
	*ldp = NULL;
}

/* ldapdir_fail - set the error text; returns -1 */
static int PRINTF_LIKE(2, 3)
ldapdir_fail(struct ldapdir *ld, const char *fmt, ...)
{
	va_list ap;

	str_clear(ld->error);
	va_start(ap, fmt);
	(void)str_vprintf(ld->error, fmt, ap);
	va_end(ap);
	return -1;
}

/* ldapdir_escape - append n bytes of p to out, RFC 4515 escaped */
static int
ldapdir_escape(struct str *out, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c;
	size_t i;
	int ret = 0;

	for (i = 0; i < n && ret == 0; i++) {
		c = (unsigned char)p[i];
		if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
			ret |= str_append_c(out, '\\');
			ret |= str_append_c(out, hex[c >> 4]);
			ret |= str_append_c(out, hex[c & 15]);
		} else
			ret |= str_append_c(out, (char)c);
	}
	return ret;
}

/* ldapdir_filter_expand - see ldapdir.h */
bool
ldapdir_filter_expand(const char *template, const char *key,
    struct str *out)
{
	const char *at = strrchr(key, '@'), *p;
	size_t klen = strlen(key);
	int ret = 0;

	str_clear(out);
	for (p = template; *p != '\0' && ret == 0; p++) {
		if (*p != '%' || p[1] == '\0') {
			ret = str_append_c(out, *p);
			continue;
		}
		switch (*++p) {
		case 's':
			ret = ldapdir_escape(out, key, klen);
			break;
		case 'u':
			ret = ldapdir_escape(out, key,
			    at != NULL ? (size_t)(at - key) : klen);
			break;
		case 'd':
			if (at == NULL || at[1] == '\0')
				return false;
			ret = ldapdir_escape(out, at + 1, strlen(at + 1));
			break;
		default:	/* "%%" and unknown: the character itself */
			ret = str_append_c(out, *p);
			break;
		}
	}
	return ret == 0;
}

/* ldapdir_fail_conn - as ldapdir_fail, with libldap's diagnostic; frees conn */
static int
ldapdir_fail_conn(struct ldapdir *ld, LDAP *conn, const char *what, int rc)
{
	char *diag = NULL;

	(void)ldap_get_option(conn, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	(void)ldapdir_fail(ld, "%s %s: %s%s%s", what, ld->uris,
	    ldap_err2string(rc), diag != NULL && *diag != '\0' ? ": " : "",
	    diag != NULL ? diag : "");
	ldap_memfree(diag);
	(void)ldap_unbind_ext_s(conn, NULL, NULL);
	return -1;
}

/*
 * ldapdir_tls_options - this handle's own TLS settings (never libldap's
 * process-wide defaults or ldap.conf's TLS_REQCERT), then a TLS
 * context made from them
 */
static int
ldapdir_tls_options(struct ldapdir *ld, LDAP *conn)
{
	int req = ld->tls_insecure ? LDAP_OPT_X_TLS_NEVER :
	    LDAP_OPT_X_TLS_DEMAND, client = 0, rc;

	if ((rc = ldap_set_option(conn, LDAP_OPT_X_TLS_REQUIRE_CERT, &req)) !=
	    LDAP_OPT_SUCCESS ||
	    (ld->tls_ca_file != NULL && (rc = ldap_set_option(conn,
	    LDAP_OPT_X_TLS_CACERTFILE, ld->tls_ca_file)) != LDAP_OPT_SUCCESS) ||
	    (rc = ldap_set_option(conn, LDAP_OPT_X_TLS_NEWCTX, &client)) !=
	    LDAP_OPT_SUCCESS)
		return ldapdir_fail_conn(ld, conn, ld->tls_ca_file != NULL ?
		    "TLS settings (CA file) for" : "TLS settings for", rc);
	return 0;
}

/*
 * ldapdir_open - a new connection to the configured URIs, not yet
 * bound; with TLS (start_tls, ldaps://) already connected, TLS in place
 */
static int
ldapdir_open(struct ldapdir *ld, LDAP **conn_r)
{
	struct timeval tv = { .tv_sec = (time_t)ld->timeout };
	int version = LDAP_VERSION3, rc;
	LDAP *conn;

	if ((rc = ldap_initialize(&conn, ld->uris)) != LDAP_SUCCESS)
		return ldapdir_fail(ld, "ldap_initialize %s: %s", ld->uris,
		    ldap_err2string(rc));
	(void)ldap_set_option(conn, LDAP_OPT_PROTOCOL_VERSION, &version);
	(void)ldap_set_option(conn, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	(void)ldap_set_option(conn, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	(void)ldap_set_option(conn, LDAP_OPT_TIMEOUT, &tv);
	if (ld->tls && ldapdir_tls_options(ld, conn) < 0)
		return -1;
	if (ld->tls) {
		/*
		 * Connect now: a TLS failure then reads as one, and we see
		 * which URI answered: an ldaps:// one has TLS already
		 * (StartTLS on it would be refused).
		 */
		if ((rc = ldap_connect(conn)) != LDAP_SUCCESS)
			return ldapdir_fail_conn(ld, conn, "TLS connect to", rc);
		if (ld->start_tls && !ldap_tls_inplace(conn) &&
		    (rc = ldap_start_tls_s(conn, NULL, NULL)) != LDAP_SUCCESS)
			return ldapdir_fail_conn(ld, conn, "StartTLS with", rc);
	}
	*conn_r = conn;
	return 0;
}

/* ldapdir_simple_bind - bind conn as dn/pw; the libldap result code */
static int
ldapdir_simple_bind(LDAP *conn, const char *dn, const char *pw)
{
	struct berval cred;

	/* ldap_sasl_bind_s does not write through bv_val. */
	cred.bv_val = (char *)(uintptr_t)pw;
	cred.bv_len = strlen(pw);
	return ldap_sasl_bind_s(conn, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	    NULL);
}

/* ldapdir_connect - the shared connection, bound as the service account */
static int
ldapdir_connect(struct ldapdir *ld)
{
	int rc;

	if (ld->conn != NULL)
		return 0;
	if (ldapdir_open(ld, &ld->conn) < 0)
		return -1;
	if (*ld->bind_dn == '\0')
		return 0;	/* anonymous */
	if ((rc = ldapdir_simple_bind(ld->conn, ld->bind_dn, ld->bind_pw)) !=
	    LDAP_SUCCESS) {
		ldapdir_disconnect(ld);
		return ldapdir_fail(ld, "bind as %s to %s: %s", ld->bind_dn,
		    ld->uris, ldap_err2string(rc));
	}
	return 0;
}

/* ldapdir_conn_lost - an error after which the connection is useless */
static bool
ldapdir_conn_lost(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

/* ldapdir_collect - gather result values; returns the number of entries */
static int
ldapdir_collect(struct ldapdir *ld, LDAPMessage *res, struct str *value_r,
    struct str *dn_r, bool *too_long_r)
{
	struct berval **vals;
	LDAPMessage *e;
	char *dn;
	size_t i, j;
	int n = 0;

	*too_long_r = false;
	for (e = ldap_first_entry(ld->conn, res); e != NULL;
	    e = ldap_next_entry(ld->conn, e)) {
		if (n++ == 0 && dn_r != NULL &&
		    (dn = ldap_get_dn(ld->conn, e)) != NULL) {
			(void)str_set_cstr(dn_r, dn);
			ldap_memfree(dn);
		}
		for (i = 0; value_r != NULL && i < ld->n_attrs; i++) {
			if ((vals = ldap_get_values_len(ld->conn, e,
			    ld->attrs[i])) == NULL)
				continue;
			for (j = 0; vals[j] != NULL; j++) {
				if (str_len(value_r) > 0)
					(void)str_append_cstr(value_r, ", ");
				if (str_len(value_r) + vals[j]->bv_len >
				    LDAPDIR_VALUE_MAX)
					*too_long_r = true;
				else
					(void)str_append(value_r,
					    vals[j]->bv_val, vals[j]->bv_len);
			}
			ldap_value_free_len(vals);
		}
	}
	return n;
}

/* ldapdir_run - search for ld->expanded (one reconnect); the result, or NULL with ld->error */
static LDAPMessage *
ldapdir_run(struct ldapdir *ld, char **attrs, int sizelimit, int *rc_r)
{
	struct timeval tv = { .tv_sec = (time_t)ld->timeout };
	LDAPMessage *res = NULL;
	int rc = LDAP_OTHER, tries;

	for (tries = 0; tries < 2; tries++) {
		if (ldapdir_connect(ld) < 0)
			continue;
		rc = ldap_search_ext_s(ld->conn, *ld->base != '\0' ? ld->base :
		    NULL, ld->scope, str_c(ld->expanded), attrs, 0, NULL, NULL,
		    &tv, sizelimit, &res);
		if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED ||
		    rc == LDAP_NO_SUCH_OBJECT)
			break;
		if (res != NULL)
			ldap_msgfree(res);
		res = NULL;
		(void)ldapdir_fail(ld, "search %s in %s at %s: %s",
		    str_c(ld->expanded), ld->base, ld->uris,
		    ldap_err2string(rc));
		if (!ldapdir_conn_lost(rc))
			break;
		ldapdir_disconnect(ld);
	}
	*rc_r = rc;
	return res;
}

/* ldapdir_do_search - one search; 1/0/-1 as ldapdir_search */
static int
ldapdir_do_search(struct ldapdir *ld, const char *key, struct str *value_r,
    struct str *dn_r, bool unique, const char **error_r)
{
	static char *no_attrs[] = { (char *)(uintptr_t)LDAP_NO_ATTRS, NULL };
	LDAPMessage *res;
	bool too_long;
	int rc, n;

	if (!ldapdir_filter_expand(ld->filter, key, ld->expanded))
		return 0;
	res = ldapdir_run(ld, ld->n_attrs > 0 ? ld->attrs : no_attrs,
	    unique ? 2 : 0, &rc);
	if (res == NULL) {
		*error_r = str_c(ld->error);
		return -1;
	}
	if (value_r != NULL)
		str_clear(value_r);
	if (dn_r != NULL)
		str_clear(dn_r);
	n = rc == LDAP_NO_SUCH_OBJECT ? 0 :
	    ldapdir_collect(ld, res, value_r, dn_r, &too_long);
	ldap_msgfree(res);
	if (n == 0 || (unique && (n > 1 || rc == LDAP_SIZELIMIT_EXCEEDED)))
		return 0;
	if (too_long) {
		(void)ldapdir_fail(ld, "search %s: result too long",
		    str_c(ld->expanded));
		*error_r = str_c(ld->error);
		return -1;
	}
	if (ld->n_attrs > 0 && value_r != NULL && str_len(value_r) == 0)
		return 0;
	return 1;
}

/* ldapdir_search - see ldapdir.h */
int
ldapdir_search(struct ldapdir *ld, const char *key, struct str *value_r,
    struct str *dn_r, const char **error_r)
{
	return ldapdir_do_search(ld, key, value_r, dn_r, false, error_r);
}

/* ldapdir_search_unique - see ldapdir.h */
int
ldapdir_search_unique(struct ldapdir *ld, const char *key,
    struct str *value_r, struct str *dn_r, const char **error_r)
{
	return ldapdir_do_search(ld, key, value_r, dn_r, true, error_r);
}

/* ldapdir_search_entry - see ldapdir.h */
int
ldapdir_search_entry(struct ldapdir *ld, const char *key,
    const char *const *attrs, ldapdir_value_cb *cb, void *ctx,
    struct str *dn_r, const char **error_r)
{
	struct berval **vals;
	LDAPMessage *res, *e;
	size_t i, j, total = 0;
	char *dn;
	int rc, ret = 1;

	if (!ldapdir_filter_expand(ld->filter, key, ld->expanded))
		return 0;
	/* ldap_search_ext_s does not write through the attribute list. */
	if ((res = ldapdir_run(ld, (char **)(uintptr_t)attrs, 2, &rc)) ==
	    NULL) {
		*error_r = str_c(ld->error);
		return -1;
	}
	if (rc != LDAP_SUCCESS || ldap_count_entries(ld->conn, res) != 1 ||
	    (e = ldap_first_entry(ld->conn, res)) == NULL) {
		ldap_msgfree(res);
		return 0;	/* none, or ambiguous */
	}
	if (dn_r != NULL) {
		str_clear(dn_r);
		if ((dn = ldap_get_dn(ld->conn, e)) != NULL) {
			(void)str_set_cstr(dn_r, dn);
			ldap_memfree(dn);
		}
	}
	for (i = 0; attrs[i] != NULL && ret == 1; i++) {
		if ((vals = ldap_get_values_len(ld->conn, e, attrs[i])) == NULL)
			continue;
		for (j = 0; vals[j] != NULL && ret == 1; j++) {
			total += vals[j]->bv_len;
			if (total > LDAPDIR_VALUE_MAX) {
				(void)ldapdir_fail(ld, "search %s: result too "
				    "long", str_c(ld->expanded));
				*error_r = str_c(ld->error);
				ret = -1;
			} else if (cb(ctx, i, vals[j]->bv_val, vals[j]->bv_len,
			    error_r) < 0)
				ret = -1;
		}
		ldap_value_free_len(vals);
	}
	ldap_msgfree(res);
	return ret;
}

/* ldapdir_check_password - see ldapdir.h */
int
ldapdir_check_password(struct ldapdir *ld, const char *dn,
    const char *password, const char **error_r)
{
	LDAP *conn;
	int rc;

	if (*password == '\0' || *dn == '\0')
		return 0;
	if (ldapdir_open(ld, &conn) < 0) {
		*error_r = str_c(ld->error);
		return -1;
	}
	rc = ldapdir_simple_bind(conn, dn, password);
	(void)ldap_unbind_ext_s(conn, NULL, NULL);
	if (rc == LDAP_SUCCESS)
		return 1;
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH ||
	    rc == LDAP_UNWILLING_TO_PERFORM)
		return 0;
	(void)ldapdir_fail(ld, "bind as %s to %s: %s", dn, ld->uris,
	    ldap_err2string(rc));
	*error_r = str_c(ld->error);
	return -1;
}

/* The names ldapdir_from_text knows, in the order of its values[]. */
static const char *const ldapdir_cf_names[] = {
	"server_host", "server_port", "search_base", "scope", "query_filter",
	"result_attribute", "bind", "bind_dn", "bind_pw", "bind_pw_file",
	"timeout", "start_tls", "tls_ca_cert_file", "tls_require_cert", NULL,
};
enum {
	LDAPDIR_CF_HOST, LDAPDIR_CF_PORT, LDAPDIR_CF_BASE, LDAPDIR_CF_SCOPE,
	LDAPDIR_CF_FILTER, LDAPDIR_CF_ATTRS, LDAPDIR_CF_BIND, LDAPDIR_CF_DN,
	LDAPDIR_CF_PW, LDAPDIR_CF_PW_FILE, LDAPDIR_CF_TIMEOUT,
	LDAPDIR_CF_START_TLS, LDAPDIR_CF_CA_FILE, LDAPDIR_CF_REQUIRE_CERT,
	LDAPDIR_CF_N,
};

/* ldapdir_cf_bool - a yes/no setting into *v (def if unset); false if neither */
static bool
ldapdir_cf_bool(const struct str *value, bool def, bool *v)
{
	if (value == NULL)
		*v = def;
	else if (str_equals_cstr(value, "yes"))
		*v = true;
	else if (str_equals_cstr(value, "no"))
		*v = false;
	else
		return false;
	return true;
}

/* ldapdir_cf_set - store one "name = value"; false if name is unknown */
static bool
ldapdir_cf_set(struct str *values[LDAPDIR_CF_N], const char *line, size_t n,
    struct str *name)
{
	const char *eq = memchr(line, '=', n), *v, *end = line + n;
	size_t i, nl;

	if (eq == NULL)
		return false;
	for (nl = (size_t)(eq - line); nl > 0 && (line[nl - 1] == ' ' ||
	    line[nl - 1] == '\t'); nl--)
		;
	(void)str_set(name, line, nl);
	for (v = eq + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (i = 0; ldapdir_cf_names[i] != NULL; i++) {
		if (str_equals_cstr(name, ldapdir_cf_names[i])) {
			if (values[i] == NULL)
				values[i] = str_new(0, 64 * 1024);
			return str_set(values[i], v, (size_t)(end - v)) == 0;
		}
	}
	return false;
}

/* ldapdir_hosts - server_host values as URIs (bare host names get ldap://H:PORT/) */
static void
ldapdir_hosts(const char *hosts, const char *port, struct str *out)
{
	const char *p = hosts, *e;

	str_clear(out);
	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		for (e = p; *e != '\0' && *e != ' ' && *e != ',' && *e != '\t';
		    e++)
			;
		if (e == p)
			break;
		if (str_len(out) > 0)
			(void)str_append_c(out, ' ');
		if (memchr(p, ':', (size_t)(e - p)) != NULL &&
		    strstr(p, "://") != NULL && strstr(p, "://") < e)
			(void)str_append(out, p, (size_t)(e - p));
		else
			(void)str_printf(out, "ldap://%.*s:%s/", (int)(e - p), p,
			    port);
		p = e;
	}
}

/* ldapdir_from_text - see ldapdir.h */
struct ldapdir *
ldapdir_from_text(const char *text, size_t len, const char *filename,
    struct str *errors)
{
	struct str *values[LDAPDIR_CF_N] = { 0 }, *logical, *name, *uris,
	    *pw_from_file = NULL;
	struct ldapdir_settings s;
	struct ldapdir *ld = NULL;
	const char *p = text, *end = text + len, *nl, *v;
	unsigned long lineno = 0, start = 0, timeout;
	bool failed = false, require_cert = true;
	size_t i, n;

#define CF(i) (values[i] != NULL ? str_c(values[i]) : NULL)
	logical = str_new(0, 64 * 1024);
	name = str_new(0, 0);
	uris = str_new(0, 0);
	for (;;) {
		nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		n = p < end ? (nl != NULL ? (size_t)(nl - p) : (size_t)(end - p))
		    : 0;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		lineno++;
		/* A line that does not continue ends the logical line. */
		if (p >= end || (n > 0 && p[0] != ' ' && p[0] != '\t' &&
		    p[0] != '#')) {
			if (str_len(logical) > 0 && !ldapdir_cf_set(values,
			    str_c(logical), str_len(logical), name)) {
				(void)str_printf(errors, "%s:%lu: unknown or "
				    "bad setting\n", filename, start);
				failed = true;
			}
			str_clear(logical);
			if (p >= end)
				break;
			start = lineno;
			(void)str_set(logical, p, n);
		} else if (n > 0 && p[0] != '#' && str_len(logical) > 0) {
			for (v = p; v < p + n && (*v == ' ' || *v == '\t'); v++)
				;
			if (v < p + n) {
				(void)str_append_c(logical, ' ');
				(void)str_append(logical, v, (size_t)(p + n - v));
			}
		}
		p = nl != NULL ? nl + 1 : end;
	}
	memset(&s, 0, sizeof(s));
	s.scope = LDAPDIR_SCOPE_SUB;
	if (CF(LDAPDIR_CF_SCOPE) != NULL &&
	    !ldapdir_parse_scope(CF(LDAPDIR_CF_SCOPE), &s.scope)) {
		(void)str_printf(errors, "%s: scope: sub, one or base\n",
		    filename);
		failed = true;
	}
	timeout = 10;
	if (values[LDAPDIR_CF_TIMEOUT] != NULL && (!str_to_ulong(
	    str_c(values[LDAPDIR_CF_TIMEOUT]),
	    str_len(values[LDAPDIR_CF_TIMEOUT]), 3600, &timeout) ||
	    timeout == 0)) {
		(void)str_printf(errors, "%s: timeout: seconds (1-3600)\n",
		    filename);
		failed = true;
	}
	if (!ldapdir_cf_bool(values[LDAPDIR_CF_START_TLS], false,
	    &s.start_tls)) {
		(void)str_printf(errors, "%s: start_tls: yes or no\n",
		    filename);
		failed = true;
	}
	if (!ldapdir_cf_bool(values[LDAPDIR_CF_REQUIRE_CERT], true,
	    &require_cert)) {
		(void)str_printf(errors, "%s: tls_require_cert: yes or no\n",
		    filename);
		failed = true;
	}
	s.tls_insecure = !require_cert;
	s.tls_ca_file = CF(LDAPDIR_CF_CA_FILE);
	if (CF(LDAPDIR_CF_PW_FILE) != NULL) {
		pw_from_file = str_new(0, 0);
		if (read_file(CF(LDAPDIR_CF_PW_FILE), pw_from_file, 4096) < 0) {
			(void)str_printf(errors, "%s: bind_pw_file %s: %m\n",
			    filename, CF(LDAPDIR_CF_PW_FILE));
			failed = true;
		}
		str_chomp(pw_from_file);
	}
	if (!failed) {
		ldapdir_hosts(CF(LDAPDIR_CF_HOST) != NULL ?
		    CF(LDAPDIR_CF_HOST) : "localhost", CF(LDAPDIR_CF_PORT) !=
		    NULL ? CF(LDAPDIR_CF_PORT) : "389", uris);
		s.uris = str_c(uris);
		s.base = CF(LDAPDIR_CF_BASE);
		s.filter = CF(LDAPDIR_CF_FILTER) != NULL ?
		    CF(LDAPDIR_CF_FILTER) : "(mailacceptinggeneralid=%s)";
		s.result_attrs = CF(LDAPDIR_CF_ATTRS) != NULL ?
		    CF(LDAPDIR_CF_ATTRS) : "maildrop";
		if (values[LDAPDIR_CF_BIND] == NULL ||
		    !str_equals_cstr(values[LDAPDIR_CF_BIND], "no")) {
			s.bind_dn = CF(LDAPDIR_CF_DN);
			s.bind_pw = pw_from_file != NULL ? str_c(pw_from_file) :
			    CF(LDAPDIR_CF_PW);
		}
		s.timeout = (unsigned)timeout;
		ld = ldapdir_new(&s);
	}
#undef CF
	for (i = 0; i < LDAPDIR_CF_N; i++) {
		if (values[i] != NULL)
			explicit_bzero(str_data(values[i]), str_len(values[i]));
		str_free(&values[i]);
	}
	if (pw_from_file != NULL)
		explicit_bzero(str_data(pw_from_file), str_len(pw_from_file));
	str_free(&pw_from_file);
	explicit_bzero(str_data(logical), str_len(logical));
	str_free(&logical);
	str_free(&name);
	str_free(&uris);
	return ld;
}
