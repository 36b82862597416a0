/* SPDX-License-Identifier: MIT */
/*
 * postern_user - the embedded user database ($user_database)
 *
 * DESCRIPTION
 *	postern user add NAME [--password P | --password-stdin]
 *	postern user passwd NAME [--password P | --password-stdin]
 *	postern user delete NAME
 *	postern user list
 *	postern user verify NAME      (password on stdin; exit 0 ok, 1 not)
 *
 *	Without a password option, add and passwd ask twice on a terminal
 *	and refuse to guess from a pipe. --password-stdin reads one line
 *	(its line end is not part of the password). Empty passwords are
 *	refused: a user without a password could not log in anyway, and
 *	an empty one is most likely a mistake in a script.
 *
 * SECURITY
 *	Passwords are never echoed or printed, are read from stdin a byte
 *	at a time (no stdio copy) and are wiped after use, as is the
 *	--password argument in our argv (it was visible in ps(1) until
 *	then; postern(8) says to prefer --password-stdin). Names are
 *	allow-listed (userdb_name_ok) before anything else happens.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "str.h"
#include "userdb.h"

#include "postern.h"

#define USER_SECRET_MAX 1024

enum user_pw_source {
	USER_PW_NONE,
	USER_PW_ARG,
	USER_PW_STDIN,
};

struct user_args {
	const char *verb;
	const char *name;
	enum user_pw_source source;
	char *password_arg;	/* points into argv */
};

/* user_parse - NAME and the password options after the sub-command */
static int
user_parse(int argc, char **argv, bool want_name, bool want_password,
    struct user_args *a)
{
	int i;
	bool options = true;

	a->verb = argv[0];
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && strcmp(arg, "--") == 0) {
			options = false;
		} else if (!options) {
			if (!want_name || a->name != NULL)
				return postern_usage_error("user", "user %s: "
				    "unexpected argument \"%s\"", a->verb, arg);
			a->name = arg;
		} else if (want_password && strcmp(arg, "--password-stdin") == 0) {
			a->source = USER_PW_STDIN;
		} else if (want_password && strcmp(arg, "--password") == 0) {
			if (++i >= argc)
				return postern_usage_error("user", "--password "
				    "needs a value");
			a->source = USER_PW_ARG;
			a->password_arg = argv[i];
		} else if (want_password &&
		    strncmp(arg, "--password=", 11) == 0) {
			a->source = USER_PW_ARG;
			a->password_arg = argv[i] + 11;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return postern_usage_error("user", "user %s: unknown "
			    "option \"%s\"", a->verb, arg);
		} else if (want_name && a->name == NULL) {
			a->name = arg;
		} else {
			return postern_usage_error("user", "user %s: unexpected "
			    "argument \"%s\"", a->verb, arg);
		}
	}
	if (want_name && a->name == NULL)
		return postern_usage_error("user", "user %s needs a user NAME",
		    a->verb);
	if (want_name && !userdb_name_ok(a->name)) {
		postern_error("invalid user name \"%s\": use 1-64 characters "
		    "from a-z 0-9 . _ - (lower case), not starting with . or -",
		    a->name);
		return POSTERN_EXIT_FAIL;
	}
	return POSTERN_EXIT_OK;
}

/*
 * user_password - get the password into pw as a->source says; new
 * passwords are asked twice on a terminal. -1 after a message.
 */
static int
user_password(struct user_args *a, bool is_new, struct str *pw)
{
	struct str *again;
	int rc;

	switch (a->source) {
	case USER_PW_ARG:
		if (strlen(a->password_arg) > USER_SECRET_MAX) {
			postern_error("the password is longer than %d bytes",
			    USER_SECRET_MAX);
			return -1;
		}
		str_set_cstr(pw, a->password_arg);
		/* Off our command line, at least from now on. */
		explicit_bzero(a->password_arg, strlen(a->password_arg));
		break;
	case USER_PW_STDIN:
		if (postern_read_secret("Password: ", pw) < 0)
			return -1;
		break;
	case USER_PW_NONE:
		if (!isatty(STDIN_FILENO) && is_new) {
			postern_error("user %s: no password given (use "
			    "--password-stdin to read it from standard input, "
			    "or run on a terminal to be asked)", a->verb);
			return -1;
		}
		if (postern_read_secret(is_new ? "New password: " :
		    "Password: ", pw) < 0)
			return -1;
		if (is_new && str_len(pw) > 0) {
			again = str_new(USER_SECRET_MAX, USER_SECRET_MAX + 1);
			rc = postern_read_secret("Retype new password: ", again);
			if (rc == 0 && (str_len(again) != str_len(pw) ||
			    memcmp(str_c(again), str_c(pw), str_len(pw)) != 0)) {
				postern_error("the passwords differ; nothing "
				    "changed");
				rc = -1;
			}
			explicit_bzero(str_data(again), str_len(again));
			str_free(&again);
			if (rc < 0)
				return -1;
		}
		break;
	}
	if (is_new && str_len(pw) == 0) {
		postern_error("user %s: empty passwords are not allowed",
		    a->verb);
		return -1;
	}
	return 0;
}

/* user_db_path - $user_database, or NULL after a message */
static const char *
user_db_path(void)
{
	struct config *cfg = postern_load_config(false);

	if (cfg == NULL)
		return NULL;
	return postern_param(cfg, "user_database");
}

static struct str *
user_secret_new(void)
{
	/* Sized up front so the buffer never moves and leaves a copy. */
	return str_new(USER_SECRET_MAX + 1, USER_SECRET_MAX + 1);
}

static void
user_secret_free(struct str **pwp)
{
	if (*pwp != NULL)
		explicit_bzero(str_data(*pwp), str_len(*pwp));
	str_free(pwp);
}

/* user_cmd_set - add or passwd */
static int
user_cmd_set(int argc, char **argv, bool add)
{
	struct user_args a = { 0 };
	struct str *pw = NULL;
	const char *path, *error = NULL;
	int rc;

	if ((rc = user_parse(argc, argv, true, true, &a)) != POSTERN_EXIT_OK)
		return rc;
	if ((path = user_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	pw = user_secret_new();
	rc = POSTERN_EXIT_FAIL;
	if (user_password(&a, true, pw) < 0)
		goto out;
	if (add) {
		if (userdb_add(path, a.name, str_c(pw), &error) < 0) {
			postern_error("cannot add user %s to %s: %s", a.name,
			    path, error != NULL ? error : "failed");
			goto out;
		}
	} else if (userdb_set_password(path, a.name, str_c(pw), &error) < 0) {
		postern_error("cannot change the password of %s in %s: %s",
		    a.name, path, error != NULL ? error : "failed");
		goto out;
	}
	if (postern.verbose)
		printf("postern: %s %s\n", add ? "added user" :
		    "changed the password of", a.name);
	rc = POSTERN_EXIT_OK;
out:
	user_secret_free(&pw);
	return rc;
}

static int
user_cmd_delete(int argc, char **argv)
{
	struct user_args a = { 0 };
	const char *path, *error = NULL;
	int rc;

	if ((rc = user_parse(argc, argv, true, false, &a)) != POSTERN_EXIT_OK)
		return rc;
	if ((path = user_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	if (userdb_delete(path, a.name, &error) < 0) {
		postern_error("cannot delete user %s from %s: %s", a.name, path,
		    error != NULL ? error : "failed");
		return POSTERN_EXIT_FAIL;
	}
	if (postern.verbose)
		printf("postern: deleted user %s\n", a.name);
	return POSTERN_EXIT_OK;
}

static void
user_list_cb(void *ctx UNUSED, const char *name)
{
	printf("%s\n", name);
}

/* user_open - open the database for reading; NULL after a message */
static struct userdb *
user_open(const char *path)
{
	struct userdb *db;
	const char *error = NULL;

	db = userdb_open(path, &error);
	if (db == NULL)
		postern_error("cannot open the user database %s: %s (create "
		    "it by adding a user: postern user add NAME)", path,
		    error != NULL ? error : "failed");
	return db;
}

static int
user_cmd_list(int argc, char **argv)
{
	struct user_args a = { 0 };
	struct userdb *db;
	const char *path, *error = NULL;
	int rc;

	if ((rc = user_parse(argc, argv, false, false, &a)) != POSTERN_EXIT_OK)
		return rc;
	if ((path = user_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		/* No user added yet: an empty list, not an error. */
		if (postern.verbose)
			postern_warn("no user database at %s yet", path);
		return POSTERN_EXIT_OK;
	}
	if ((db = user_open(path)) == NULL)
		return POSTERN_EXIT_FAIL;
	rc = POSTERN_EXIT_OK;
	if (userdb_list(db, user_list_cb, NULL, &error) < 0) {
		postern_error("cannot list %s: %s", path,
		    error != NULL ? error : "failed");
		rc = POSTERN_EXIT_FAIL;
	}
	userdb_close(&db);
	return rc;
}

static int
user_cmd_verify(int argc, char **argv)
{
	struct user_args a = { 0 };
	struct userdb_user user;
	struct userdb *db = NULL;
	struct str *pw = NULL;
	const char *path, *error = NULL;
	int rc, found;

	if ((rc = user_parse(argc, argv, true, true, &a)) != POSTERN_EXIT_OK)
		return rc;
	if ((path = user_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	pw = user_secret_new();
	rc = POSTERN_EXIT_FAIL;
	if (user_password(&a, false, pw) < 0)
		goto out;
	if ((db = user_open(path)) == NULL)
		goto out;
	memset(&user, 0, sizeof(user));
	found = userdb_lookup(db, a.name, &user, &error);
	userdb_user_clear(&user);
	if (found == 0) {
		postern_error("no user %s in %s", a.name, path);
		goto out;
	}
	if (found > 0)
		found = userdb_verify(db, a.name, str_c(pw), &error);
	if (found < 0) {
		postern_error("cannot check the password of %s: %s", a.name,
		    error != NULL ? error : "failed");
	} else if (found == 0) {
		postern_error("%s: wrong password", a.name);
	} else {
		if (postern.verbose)
			printf("postern: %s: password ok\n", a.name);
		rc = POSTERN_EXIT_OK;
	}
out:
	userdb_close(&db);
	user_secret_free(&pw);
	return rc;
}

/* postern_cmd_user - user add | passwd | delete | list | verify */
int
postern_cmd_user(int argc, char **argv)
{
	const char *sub;

	if (argc < 2)
		return postern_usage_error("user", "user needs add, passwd, "
		    "delete, list or verify");
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0)
		return user_cmd_set(argc, argv, true);
	if (strcmp(sub, "passwd") == 0)
		return user_cmd_set(argc, argv, false);
	if (strcmp(sub, "delete") == 0)
		return user_cmd_delete(argc, argv);
	if (strcmp(sub, "list") == 0)
		return user_cmd_list(argc, argv);
	if (strcmp(sub, "verify") == 0)
		return user_cmd_verify(argc, argv);
	return postern_usage_error("user", "unknown user command \"%s\"", sub);
}
