/* SPDX-License-Identifier: MIT */
/*
 * list_ldap - the members of a list's LDAP group (membership=ldap|both)
 *
 * One lookup, shared by list-mgr (receivers, posting=members, the
 * -request replies) and imapd's login role (who may read the archive
 * over IMAP), so that both agree on who is a member; list_ldap.c says
 * how the group is read. Links libldap: imapd-mail must not call it.
 *
 * Addresses are compared without regard to case (the group's are
 * lower-cased). Nothing here logs or exits except on memory exhaustion.
 */
#ifndef POSTERN_LIST_LDAP_H
#define POSTERN_LIST_LDAP_H

#include <stdbool.h>
#include <stddef.h>

#include "list_store.h"
#include "str.h"

/*
 * list_ldap_members - the mail addresses of l's LDAP group (lower case,
 * sorted with strcasecmp, duplicates kept; owned: list_ldap_free); 0,
 * or -1 with a reason in error (appended) and nothing in *addrs_r.
 * Blocks up to 10 seconds per directory operation.
 */
int list_ldap_members(const struct list *l, char ***addrs_r, size_t *n_r,
    struct str *error);
/* list_ldap_free - free what list_ldap_members returned; NULL allowed */
void list_ldap_free(char **addrs, size_t n);
/* list_ldap_find - addr is in the sorted addrs[0..n) (any case) */
bool list_ldap_find(char *const *addrs, size_t n, const char *addr);

/*
 * list_ldap_is_member - whether one of addrs[0..naddrs) is in l's group:
 * 1 yes, 0 no, -1 the directory could not tell (reason in error). The
 * group is read afresh on every call (nothing is cached).
 */
int list_ldap_is_member(const struct list *l, const char *const *addrs,
    size_t naddrs, struct str *error);

#endif
