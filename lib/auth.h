/* SPDX-License-Identifier: MIT */
/*
 * auth - password verification and user existence, behind one small API
 *
 * Every service that checks a password (smtpd AUTH PLAIN/LOGIN, imapd
 * LOGIN/AUTHENTICATE PLAIN, pop3d USER/PASS and AUTH PLAIN, sieved) calls
 * auth_verify_password(); recipient checks call auth_user_exists(). Both
 * ask the backends in $auth_backends, in order: "userdb" (the embedded
 * user database, $user_database, lib/userdb.h; the default), "kerberos"
 * (a Heimdal initial ticket verified against $auth_krb5_keytab,
 * lib/auth_krb5.h) and "ldap" (the user's entry found with
 * $ldap_user_filter, the password checked by binding as it,
 * lib/ldapdir.h). The first backend that accepts the password wins; the
 * first that knows the user answers auth_user_exists() (kerberos cannot
 * tell and is skipped there).
 *
 * User names are folded to lower case before the lookup (the user
 * database keys are lower case). A name that cannot exist (fails
 * userdb_name_ok) is simply AUTH_FAIL / false, not an error.
 *
 * Backend handles are opened on first use and kept for the life of
 * the process (the LDAP connection reconnects by itself); the user database notices its own replacement, so new
 * users and passwords are seen at once. A missing database is "no such
 * user" (AUTH_FAIL), not a temporary failure: an instance without users
 * simply has nobody to log in.
 *
 * Failed logins slow down (lib/auth_delay.h): auth_verify_password()
 * keys the attempt on the client's address (server_peer_addr(), the
 * connection the calling login process serves) and on the user name as
 * given, waits what earlier failures of either left pending before it
 * asks any backend (right password or not), and after AUTH_FAIL records
 * the failure and waits again: $auth_failure_delay_ms, doubling per
 * failure in a row up to $auth_failure_delay_max_ms, decaying by one
 * step per $auth_failure_delay_decay of quiet. AUTH_OK forgets the
 * user's failures (not the address's). An unknown user and a wrong
 * password count and wait alike. The counts live in the shared table
 * $auth_failure_delay_table, so every login process of every protocol
 * sees them; if it cannot be opened every failure waits
 * $auth_failure_delay_ms (logged once). So the call may take up to
 * twice $auth_failure_delay_max_ms longer than the backends.
 *
 * Nothing here exits except on memory exhaustion. Callers log failures
 * with the session's log context; *error_r (static text or valid until
 * the next call here) says why for AUTH_TEMPFAIL / -1.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdbool.h>

enum auth_result {
	AUTH_OK,		/* the password is right */
	AUTH_FAIL,		/* wrong password, no such user, no password set */
	AUTH_TEMPFAIL,		/* the backend failed: try again later (4xx) */
};

/*
 * auth_verify_password - check user's password. Takes about as long for
 * a user that does not exist as for one that does (the backend hashes a
 * dummy), so timing does not reveal user names.
 */
enum auth_result auth_verify_password(const char *user, const char *password,
    const char **error_r);

/*
 * auth_user_exists - 1 the user exists in some backend, 0 not, -1 a
 * backend failed and no other knew the user
 */
int auth_user_exists(const char *user, const char **error_r);

/* auth_deinit - close the backends (tests; before exit) */
void auth_deinit(void);

#endif
