/* SPDX-License-Identifier: MIT */
/*
 * list_ldap - the members of a list's LDAP group (membership=ldap|both)
 *
 * DESCRIPTION
 *	With membership=ldap or both, a list's members include the
 *	addresses of an LDAP group: we bind to ldap_uri (simple bind as
 *	ldap_bind_dn, a read-only account, with the password from
 *	ldap_bind_password_file, else ldap_bind_password), read the group
 *	entry ldap_group (scope base) and take
 *	    member, uniqueMember   DNs (uniqueMember's "#'...'B" dropped):
 *	                           each entry's mail (scope base);
 *	    memberUid              uid values: mail of the entries under
 *	                           ldap_base with that uid (the filter value
 *	                           escaped per RFC 4515, ldapdir_filter_expand).
 *	Nested groups are not followed. Addresses are lower-cased.
 *
 *	This is the one directory lookup for lists: list-mgr uses it for
 *	the receivers of a post and for posting=members, and imapd's
 *	login role for who may read the list's archive over IMAP (the
 *	mail role, imapd-mail, links no libldap and gets the answer in the
 *	hand-off record). Both therefore agree on who is a member.
 *
 *	libldap directly, not lib/ldapdir: an ldapdir has one search base,
 *	and a group of N member DNs needs N base-scope reads on one
 *	connection. The connection lives for one call.
 *
 *	Errors (server down, bad credentials, no such group): -1 with a
 *	reason; nothing here logs or exits (except on memory exhaustion).
 */
#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloc.h"
#include "ldapdir.h"
#include "list_ldap.h"
#include "list_store.h"
#include "str.h"

#define LIST_LDAP_TIMEOUT	10
#define LIST_LDAP_MEMBERS_MAX 200000

/* list_ldap_read_password - the first line of path into out; 0 or -1 */
static int
list_ldap_read_password(const char *path, struct str *out)
{
	char buf[1024];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	str_set_cstr(out, buf);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* list_ldap_add - append the lower-cased mail values of entry e */
static void
list_ldap_add(LDAP *ld, LDAPMessage *e, char ***addrs, size_t *n)
{
	struct berval **v = ldap_get_values_len(ld, e, "mail");
	size_t i, k;

	for (i = 0; v != NULL && v[i] != NULL; i++) {
		char *a;

		if (v[i]->bv_len == 0 || v[i]->bv_len > 320 ||
		    memchr(v[i]->bv_val, '@', v[i]->bv_len) == NULL ||
		    *n >= LIST_LDAP_MEMBERS_MAX)
			continue;
		a = xstrndup(v[i]->bv_val, v[i]->bv_len);
		if (strpbrk(a, " \t\r\n<>,\"") != NULL) {
			free(a);
			continue;
		}
		for (k = 0; a[k] != '\0'; k++)
			if (a[k] >= 'A' && a[k] <= 'Z')
				a[k] = (char)(a[k] - 'A' + 'a');
		*addrs = xreallocarray(*addrs, *n + 1, sizeof(char *));
		(*addrs)[(*n)++] = a;
	}
	ldap_value_free_len(v);
}

/* list_ldap_search - search and add the mail of every entry found */
static int
list_ldap_search(LDAP *ld, const char *base, int scope, const char *filter,
    char ***addrs, size_t *n, struct str *error)
{
	static char *attrs[] = { "mail", NULL };
	struct timeval tv = { LIST_LDAP_TIMEOUT, 0 };
	LDAPMessage *res = NULL, *e;
	int rc;

	rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL,
	    &tv, 1000, &res);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		ldap_msgfree(res);
		return 0;	/* a member DN that is gone: skip it */
	}
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		str_printf(error, "search %s: %s", base, ldap_err2string(rc));
		ldap_msgfree(res);
		return -1;
	}
	for (e = ldap_first_entry(ld, res); e != NULL;
	    e = ldap_next_entry(ld, e))
		list_ldap_add(ld, e, addrs, n);
	ldap_msgfree(res);
	return 0;
}

/* list_ldap_cmp - qsort/bsearch: strcasecmp of char * */
static int
list_ldap_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* list_ldap_members - see list_ldap.h */
int
list_ldap_members(const struct list *l, char ***addrs_r, size_t *n_r,
    struct str *error)
{
	static char *gattrs[] = { "member", "uniqueMember", "memberUid", NULL };
	struct timeval tv = { LIST_LDAP_TIMEOUT, 0 };
	struct str *pw = str_new(0, 0), *filter = str_new(0, 0);
	struct berval cred, **v;
	LDAPMessage *res = NULL, *g;
	LDAP *ld = NULL;
	const char *group = list_get(l, "ldap_group"), *pwfile;
	int rc, version = LDAP_VERSION3, ret = -1;
	size_t a, i;

	*addrs_r = NULL;
	*n_r = 0;
	if (list_get(l, "ldap_uri")[0] == '\0' || group[0] == '\0') {
		str_set_cstr(error, "ldap_uri and ldap_group must be set");
		goto out;
	}
	pwfile = list_get(l, "ldap_bind_password_file");
	if (pwfile[0] != '\0') {
		if (list_ldap_read_password(pwfile, pw) < 0) {
			str_printf(error, "ldap_bind_password_file %s: %s",
			    pwfile, strerror(errno));
			goto out;
		}
	} else
		str_set_cstr(pw, list_get(l, "ldap_bind_password"));
	if ((rc = ldap_initialize(&ld, list_get(l, "ldap_uri"))) !=
	    LDAP_SUCCESS) {
		str_printf(error, "ldap_initialize: %s", ldap_err2string(rc));
		goto out;
	}
	(void)ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	(void)ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	(void)ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	(void)ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	cred.bv_val = str_data(pw);
	cred.bv_len = str_len(pw);
	rc = ldap_sasl_bind_s(ld, list_get(l, "ldap_bind_dn"), LDAP_SASL_SIMPLE,
	    &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		str_printf(error, "bind as %s: %s", list_get(l, "ldap_bind_dn"),
		    ldap_err2string(rc));
		goto out;
	}
	rc = ldap_search_ext_s(ld, group, LDAP_SCOPE_BASE, "(objectClass=*)",
	    gattrs, 0, NULL, NULL, &tv, 1, &res);
	if (rc != LDAP_SUCCESS || (g = ldap_first_entry(ld, res)) == NULL) {
		str_printf(error, "group %s: %s", group, ldap_err2string(rc));
		goto out;
	}
	for (a = 0; a < 2; a++) {
		v = ldap_get_values_len(ld, g, gattrs[a]);
		for (i = 0; v != NULL && v[i] != NULL; i++) {
			char *dn = xstrndup(v[i]->bv_val, v[i]->bv_len);
			char *hash = a == 1 ? strrchr(dn, '#') : NULL;

			if (hash != NULL)	/* uniqueMember's optional UID */
				*hash = '\0';
			rc = dn[0] == '\0' ? 0 : list_ldap_search(ld, dn,
			    LDAP_SCOPE_BASE, "(objectClass=*)", addrs_r, n_r,
			    error);
			free(dn);
			if (rc < 0) {
				ldap_value_free_len(v);
				goto out;
			}
		}
		ldap_value_free_len(v);
	}
	v = ldap_get_values_len(ld, g, "memberUid");
	for (i = 0; v != NULL && v[i] != NULL; i++) {
		char *uid = xstrndup(v[i]->bv_val, v[i]->bv_len);

		rc = 0;
		if (strlen(uid) == v[i]->bv_len &&
		    list_get(l, "ldap_base")[0] != '\0' &&
		    ldapdir_filter_expand("(uid=%s)", uid, filter))
			rc = list_ldap_search(ld, list_get(l, "ldap_base"),
			    LDAP_SCOPE_SUBTREE, str_c(filter), addrs_r, n_r,
			    error);
		free(uid);
		if (rc < 0) {
			ldap_value_free_len(v);
			goto out;
		}
	}
	ldap_value_free_len(v);
	if (*n_r > 1)
		qsort(*addrs_r, *n_r, sizeof(char *), list_ldap_cmp);
	ret = 0;
out:
	if (ret < 0) {
		for (i = 0; i < *n_r; i++)
			free((*addrs_r)[i]);
		free(*addrs_r);
		*addrs_r = NULL;
		*n_r = 0;
	}
	ldap_msgfree(res);
	if (ld != NULL)
		(void)ldap_unbind_ext_s(ld, NULL, NULL);
	explicit_bzero(str_data(pw), str_len(pw));
	str_free(&pw);
	str_free(&filter);
	return ret;
}

/* list_ldap_free - see list_ldap.h */
void
list_ldap_free(char **addrs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

/* list_ldap_find - see list_ldap.h */
bool
list_ldap_find(char *const *addrs, size_t n, const char *addr)
{
	return n > 0 && bsearch(&addr, addrs, n, sizeof(char *),
	    list_ldap_cmp) != NULL;
}

/* list_ldap_is_member - see list_ldap.h */
int
list_ldap_is_member(const struct list *l, const char *const *addrs,
    size_t naddrs, struct str *error)
{
	char **group;
	size_t n, i;
	int r = 0;

	if (list_ldap_members(l, &group, &n, error) < 0)
		return -1;
	for (i = 0; i < naddrs && r == 0; i++)
		r = list_ldap_find(group, n, addrs[i]);
	list_ldap_free(group, n);
	return r;
}
