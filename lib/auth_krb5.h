/* SPDX-License-Identifier: MIT */
/*
 * auth_krb5 - the Kerberos (Heimdal) password backend of lib/auth
 *
 * auth_krb5_verify() gets an initial ticket for user@$auth_krb5_realm
 * with the password (krb5_get_init_creds_password) and then verifies it
 * against the service key in $auth_krb5_keytab (krb5_verify_init_creds
 * with ap_req_nofail): the KDC's answer alone proves nothing, since
 * whoever answers for the KDC's address can make any password "right";
 * only a KDC that knows our service key can issue a ticket we can
 * decrypt. A ticket that cannot be verified is AUTH_FAIL (never OK) with
 * *error_r saying why, so the caller can log it; an ordinary wrong
 * password or unknown principal is AUTH_FAIL with *error_r NULL.
 * AUTH_TEMPFAIL always sets *error_r.
 *
 * $auth_krb5_config names the krb5.conf (empty: the library default;
 * daemons run with a cleaned environment, so KRB5_CONFIG does not reach
 * them). The context is made on first use and kept.
 *
 * Called only by lib/auth.c, with a name that passed userdb_name_ok()
 * (no '@', '/' or other principal syntax). *error_r is valid until the
 * next call here. Nothing here exits except on memory exhaustion.
 */
#ifndef POSTERN_AUTH_KRB5_H
#define POSTERN_AUTH_KRB5_H

#include "auth.h"

enum auth_result auth_krb5_verify(const char *user, const char *password,
    const char **error_r);
void auth_krb5_deinit(void);

#endif
