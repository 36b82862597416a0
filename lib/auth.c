/* SPDX-License-Identifier: MIT */
/*
 * auth - password verification against the user database
 *
 * DESCRIPTION
 *	See auth.h. One process-wide userdb handle, opened lazily from
 *	$user_database (so a daemon that never authenticates never opens
 *	it). If the database does not exist yet (ENOENT) every user is
 *	unknown; the open is retried on the next call, so the first
 *	`postern user add` is seen without a restart.
 *
 *	Names are lower-cased into a bounded local copy before the lookup;
 *	anything longer than a user name can be is unknown.
 *
 * SEE ALSO
 *	userdb.h, smtpd(8)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "userdb.h"

#define AUTH_NAME_MAX	64

static struct userdb *auth_db;

/* auth_open - the database handle; 1 open, 0 no database, -1 error */
static int
auth_open(const char **error_r)
{
	if (auth_db != NULL)
		return 1;
	auth_db = userdb_open(config_str(conf(), "user_database"), error_r);
	if (auth_db != NULL)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* auth_fold - lower-case name into buf; false if it cannot be a user name */
static bool
auth_fold(const char *name, char buf[AUTH_NAME_MAX + 1])
{
	size_t i, n = strlen(name);

	if (n == 0 || n > AUTH_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		buf[i] = name[i] >= 'A' && name[i] <= 'Z' ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	buf[n] = '\0';
	return userdb_name_ok(buf);
}

/* auth_verify_password - see auth.h */
enum auth_result
auth_verify_password(const char *user, const char *password,
    const char **error_r)
{
	char name[AUTH_NAME_MAX + 1];
	int ret;

	if (!auth_fold(user, name))
		return AUTH_FAIL;
	if ((ret = auth_open(error_r)) <= 0)
		return ret == 0 ? AUTH_FAIL : AUTH_TEMPFAIL;
	ret = userdb_verify(auth_db, name, password, error_r);
	explicit_bzero(name, sizeof(name));
	if (ret < 0)
		return AUTH_TEMPFAIL;
	return ret == 1 ? AUTH_OK : AUTH_FAIL;
}

/* auth_user_exists - see auth.h */
int
auth_user_exists(const char *user, const char **error_r)
{
	char name[AUTH_NAME_MAX + 1];
	struct userdb_user u;
	int ret;

	if (!auth_fold(user, name))
		return 0;
	if ((ret = auth_open(error_r)) <= 0)
		return ret;
	ret = userdb_lookup(auth_db, name, &u, error_r);
	if (ret == 1)
		userdb_user_clear(&u);
	return ret;
}

/* auth_deinit - close the handle */
void
auth_deinit(void)
{
	userdb_close(&auth_db);
}
