/* SPDX-License-Identifier: MIT */
/*
 * ldapdir - searches and password binds against an LDAP directory (libldap)
 *
 * One struct ldapdir is one lookup configuration: server URIs (tried in
 * order: failover), search base, scope, a filter template, the result
 * attributes, the bind DN and password of a read-only service account
 * (empty DN: anonymous) and a timeout. It is shared by the ldap: map type
 * (lib/map.c, Postfix ldap_table semantics) and the LDAP auth backend
 * (lib/auth.c).
 *
 * TLS: an ldaps:// URI is TLS from the connect; with start_tls every
 * other connection (searches and password binds alike) sends StartTLS
 * before anything else. Either way the server certificate must verify
 * against tls_ca_file (or the system's authorities) and name the URI's
 * host, unless tls_insecure. A TLS failure is an error (-1), like a
 * server that does not answer: a lookup never falls back to plaintext.
 *
 * The connection is opened on the first search and reused; when the
 * server went away (LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR, a timeout) the
 * search reconnects once (to the first URI that answers) and retries.
 *
 * Filter templates expand %s (the whole key), %u (the part before the
 * last '@', or the whole key), %d (the part after it; a key without '@'
 * does not match anything: the lookup is "not found") and %% ('%'). Every
 * expanded value is escaped as RFC 4515 requires ('*', '(', ')', '\' and
 * NUL as \XX), so a key cannot change the filter's structure.
 *
 * Errors return -1 with *error_r: valid until the next call on the same
 * ldapdir. Nothing here logs or exits (except on memory exhaustion).
 */
#ifndef POSTERN_LDAPDIR_H
#define POSTERN_LDAPDIR_H

#include <stdbool.h>

#include "str.h"

enum ldapdir_scope {
	LDAPDIR_SCOPE_SUB,
	LDAPDIR_SCOPE_ONE,
	LDAPDIR_SCOPE_BASE,
};

/* Borrowed by ldapdir_new(), which copies what it keeps. */
struct ldapdir_settings {
	const char *uris;		/* "ldap://a/ ldap://b/" (space or comma separated) */
	const char *base;
	enum ldapdir_scope scope;
	const char *filter;		/* with %s %u %d */
	const char *result_attrs;	/* "mail, maildrop" (may be empty: DN only) */
	const char *bind_dn;		/* empty: anonymous */
	const char *bind_pw;
	unsigned timeout;		/* seconds, for connect and each operation */
	bool start_tls;			/* StartTLS on ldap:// connections */
	const char *tls_ca_file;	/* PEM CAs for the server certificate (NULL/empty: system) */
	bool tls_insecure;		/* TLS without checking the certificate */
};

struct ldapdir;

/* ldapdir_new - a configuration (no connection yet); never NULL */
struct ldapdir *ldapdir_new(const struct ldapdir_settings *s);
void ldapdir_free(struct ldapdir **ldp);

/*
 * ldapdir_search - search for key. 1 found: value_r (replaced, if not
 * NULL) gets the values of the result attributes of all entries found,
 * joined with ", " (Postfix ldap_table), and dn_r (if not NULL) the DN of
 * the first entry; 0 nothing found (or an entry without any result
 * attribute, when result attributes were asked for); -1 on error.
 */
int ldapdir_search(struct ldapdir *ld, const char *key, struct str *value_r,
    struct str *dn_r, const char **error_r);

/*
 * ldapdir_search_unique - as ldapdir_search, but more than one entry is
 * not "found" (0): for user lookups, where two entries for one name mean
 * the directory is ambiguous and nobody should log in as either.
 */
int ldapdir_search_unique(struct ldapdir *ld, const char *key,
    struct str *value_r, struct str *dn_r, const char **error_r);

/*
 * ldapdir_search_entry - search for key (the configured filter, base and
 * scope) and read the attributes attrs (NULL-terminated; the configured
 * result attributes are not used) of the one entry found: cb is called
 * for each value with the index of its attribute in attrs and the value
 * (ptr, len; borrowed for the call, not NUL-terminated). dn_r (if not
 * NULL) gets the entry's DN. 1 found, 0 no entry or more than one
 * (ambiguous, as ldapdir_search_unique), -1 error (ldapdir's, or a cb
 * that returned -1 with *error_r set).
 */
typedef int ldapdir_value_cb(void *ctx, size_t attr, const char *value,
    size_t len, const char **error_r);
int ldapdir_search_entry(struct ldapdir *ld, const char *key,
    const char *const *attrs, ldapdir_value_cb *cb, void *ctx,
    struct str *dn_r, const char **error_r);

/*
 * ldapdir_check_password - simple bind as dn with password on a fresh
 * connection (never the shared one, which stays bound as the service
 * account). 1 right, 0 wrong (invalidCredentials, or an empty password:
 * an empty password would be an unauthenticated bind, RFC 4513 5.1.2),
 * -1 error.
 */
int ldapdir_check_password(struct ldapdir *ld, const char *dn,
    const char *password, const char **error_r);

/* ldapdir_filter_expand - expand template for key into out (replaced); false if %d has no domain */
bool ldapdir_filter_expand(const char *template, const char *key,
    struct str *out);

/*
 * ldapdir_from_text - a configuration from a Postfix ldap_table(5)-style
 * file (the ldap: map type): "name = value" lines, '#' comments, blank
 * lines, and lines starting with white space continue the value. Names:
 * server_host (URIs, or host names made into ldap://HOST/, several =
 * failover), server_port (for bare host names, default 389),
 * search_base, scope (sub, one, base), query_filter (default
 * "(mailacceptinggeneralid=%s)"), result_attribute (default "maildrop"),
 * bind (yes/no, default yes: bind if bind_dn is set), bind_dn, bind_pw,
 * bind_pw_file, timeout (seconds, default 10), start_tls (yes/no,
 * default no), tls_ca_cert_file, tls_require_cert (yes/no, default
 * yes, unlike Postfix). NULL with "FILE:LINE:
 * what" lines in errors on an unknown name or bad value.
 */
struct ldapdir *ldapdir_from_text(const char *text, size_t len,
    const char *filename, struct str *errors);

/* ldapdir_parse_scope - "sub", "one", "base"; false if none of those */
bool ldapdir_parse_scope(const char *s, enum ldapdir_scope *scope_r);

#endif
