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

/* ldapdir_open - a new connection to the configured URIs, not yet bound */
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

/* ldapdir_do_search - one search; 1/0/-1 as ldapdir_search */
static int
ldapdir_do_search(struct ldapdir *ld, const char *key, struct str *value_r,
    struct str *dn_r, bool unique, const char **error_r)
{
	struct timeval tv = { .tv_sec = (time_t)ld->timeout };
	static char *no_attrs[] = { (char *)(uintptr_t)LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	bool too_long;
	int rc = LDAP_OTHER, n, tries;

	if (!ldapdir_filter_expand(ld->filter, key, ld->expanded))
		return 0;
	for (tries = 0; tries < 2; tries++) {
		if (ldapdir_connect(ld) < 0)
			continue;
		rc = ldap_search_ext_s(ld->conn, *ld->base != '\0' ? ld->base :
		    NULL, ld->scope, str_c(ld->expanded), ld->n_attrs > 0 ?
		    ld->attrs : no_attrs, 0, NULL, NULL, &tv, unique ? 2 : 0,
		    &res);
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
