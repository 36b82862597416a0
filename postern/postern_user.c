/* SPDX-License-Identifier: MIT */
/*
 * postern_user - the embedded user database ($user_database)
 *
 * DESCRIPTION
 *	postern user add NAME [--password P | --password-stdin]
 *	postern user passwd NAME [--password P | --password-stdin]
 *	postern user delete|del NAME [--keep-mail]
 *	postern user list
 *	postern user verify NAME      (password on stdin; exit 0 ok, 1 not)
 *	postern user show NAME        quota, usage and mailboxes
 *	postern user quota NAME       the effective storage quota
 *
 *	delete removes the user from the database first (so lmtpd refuses
 *	new mail for it with 550 5.1.1), then, unless --keep-mail, the
 *	user's store ($store_directory/NAME, renamed aside and removed) and
 *	its duplicate-suppression record. show and quota read the store;
 *	run as root, that part runs in a child that has become the owner of
 *	$store_directory, so that nothing in the store becomes root's.
 *	`user quota NAME SIZE` sets the per-user quota (0: the default).
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
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "store/store.h"
#include "str.h"
#include "user_quota.h"
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
	bool want_keep_mail;	/* accept --keep-mail */
	bool keep_mail;		/* --keep-mail given */
	const char *size;	/* quota: the optional SIZE argument */
};

static int user_remove_mail(const char *name);

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
		} else if (a->want_keep_mail && strcmp(arg, "--keep-mail") == 0) {
			a->keep_mail = true;
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

	a.want_keep_mail = true;
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
	if (!a.keep_mail && user_remove_mail(a.name) < 0)
		return POSTERN_EXIT_FAIL;
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

/* ------------------------------------------------------------ the store side */

/* user_rm_entry - nftw callback: remove one file or (empty) directory */
static int
user_rm_entry(const char *path, const struct stat *sb UNUSED, int type,
    struct FTW *ftw UNUSED)
{
	if (type == FTW_DP ? rmdir(path) : unlink(path)) {
		postern_error("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* user_rm_tree - remove path and everything below it; ENOENT is fine */
static int
user_rm_tree(const char *path)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	return nftw(path, user_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/*
 * user_remove_mail - remove the user's store and duplicate record. The
 * store directory is first renamed to a name no user can have (a leading
 * '.'), so a delivery racing the removal never finds half a store.
 */
static int
user_remove_mail(const char *name)
{
	struct config *cfg = postern_load_config(false);
	const char *store_dir, *dup_dir;
	char *dir, *aside, *dup;
	int rc = 0;

	if (cfg == NULL || (store_dir = postern_param(cfg, "store_directory")) == NULL)
		return -1;
	if (!store_user_ok(name)) {
		postern_error("user name %s cannot name a store", name);
		return -1;
	}
	dir = xasprintf("%s/%s", store_dir, name);
	aside = xasprintf("%s/.deleted.%s.%ld", store_dir, name, (long)getpid());
	if (rename(dir, aside) < 0) {
		if (errno != ENOENT) {
			postern_error("cannot move %s aside: %s", dir, strerror(errno));
			rc = -1;
		}
	} else if (user_rm_tree(aside) < 0) {
		rc = -1;
	} else if (postern.verbose) {
		printf("postern: removed the mailboxes of %s (%s)\n", name, dir);
	}
	if ((dup_dir = postern_param(cfg, "lmtp_duplicate_directory")) != NULL) {
		dup = xasprintf("%s/%s", dup_dir, name);
		if (unlink(dup) < 0 && errno != ENOENT) {
			postern_error("cannot remove %s: %s", dup, strerror(errno));
			rc = -1;
		}
		free(dup);
	}
	free(dir);
	free(aside);
	return rc;
}

/* user_quota_of - the effective quota of u (user_quota.h); -1 after a message */
static int
user_quota_of(const struct userdb_user *u, struct config *cfg,
    uint64_t *quota_r, const char **source_r)
{
	const char *err;

	if (user_quota_get(cfg, u->name, u->quota_bytes, quota_r, source_r,
	    &err) < 0) {
		postern_error("quota of %s: %s", u->name, err);
		return -1;
	}
	return 0;
}

/*
 * user_store_report - print usage and mailboxes of name from its store.
 * Runs in the caller's process, or as root in a child that became the
 * owner of the store directory. 0, or -1 after a message.
 */
static int
user_store_report(const char *store_dir, const char *name)
{
	struct store_mailbox_info *list = NULL;
	struct store_status st;
	struct store_quota q;
	struct store *store;
	const char *err;
	size_t n = 0, i;
	char *dir = xasprintf("%s/%s", store_dir, name);
	int rc = 0;

	/* store_open would create the directory: a user without mail has none */
	if (access(dir, F_OK) < 0) {
		printf("usage: 0 bytes, 0 messages\nmailboxes: (none: no mail yet)\n");
		free(dir);
		return 0;
	}
	free(dir);
	if ((store = store_open(store_dir, name, &err)) == NULL) {
		postern_error("cannot open the store of %s: %s", name, err);
		return -1;
	}
	if (store_quota_get(store, &q, &err) < 0 ||
	    store_mailbox_list(store, &list, &n, &err) < 0) {
		postern_error("cannot read the store of %s: %s", name, err);
		store_free(&store);
		return -1;
	}
	printf("usage: %llu bytes, %llu messages\nmailboxes:\n",
	    (unsigned long long)q.bytes, (unsigned long long)q.messages);
	for (i = 0; i < n; i++) {
		static const struct { unsigned bit; const char *name; } su[] = {
			{ STORE_MBOX_DRAFTS, "\\Drafts" },
			{ STORE_MBOX_SENT, "\\Sent" },
			{ STORE_MBOX_TRASH, "\\Trash" },
			{ STORE_MBOX_JUNK, "\\Junk" },
			{ STORE_MBOX_ARCHIVE, "\\Archive" },
			{ STORE_MBOX_ALL_MAIL, "\\All" },
			{ STORE_MBOX_FLAGGED, "\\Flagged" },
		};
		struct str *line = str_new(0, 0);

		if ((list[i].attrs & STORE_MBOX_NONEXISTENT) != 0) {
			str_free(&line);
			continue;
		}
		memset(&st, 0, sizeof(st));
		if (store_mailbox_status(store, list[i].name, &st, &err) < 0) {
			postern_error("%s: %s", list[i].name, err);
			rc = -1;
		}
		mem_printable(line, list[i].name, strlen(list[i].name), 600);
		printf("  %s\tmessages=%u unseen=%u size=%llu", str_c(line),
		    st.messages, st.unseen, (unsigned long long)st.size);
		for (size_t k = 0; k < N_ELEMENTS(su); k++)
			if ((list[i].attrs & su[k].bit) != 0)
				printf(" %s", su[k].name);
		printf("\n");
		str_free(&line);
	}
	store_mailbox_list_free(&list, n);
	store_free(&store);
	return rc;
}

/* user_store_report_as_owner - user_store_report, as the store's owner */
static int
user_store_report_as_owner(const char *store_dir, const char *name)
{
	struct stat sb;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return user_store_report(store_dir, name);
	if (stat(store_dir, &sb) < 0) {
		postern_error("cannot stat %s: %s", store_dir, strerror(errno));
		return -1;
	}
	(void)fflush(stdout);
	if ((pid = fork()) < 0) {
		postern_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(sb.st_gid) < 0 ||
		    setuid(sb.st_uid) < 0) {
			postern_error("cannot become the owner of %s: %s",
			    store_dir, strerror(errno));
			_exit(POSTERN_EXIT_FAIL);
		}
		status = user_store_report(store_dir, name);
		(void)fflush(stdout);
		_exit(status == 0 ? POSTERN_EXIT_OK : POSTERN_EXIT_FAIL);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* user_lookup_one - the record of a.name; POSTERN_EXIT_* after a message */
static int
user_lookup_one(const char *name, struct userdb_user *u)
{
	struct userdb *db;
	const char *path, *error = NULL;
	int found;

	memset(u, 0, sizeof(*u));
	if ((path = user_db_path()) == NULL || (db = user_open(path)) == NULL)
		return POSTERN_EXIT_FAIL;
	found = userdb_lookup(db, name, u, &error);
	userdb_close(&db);
	if (found < 0) {
		postern_error("cannot look up %s in %s: %s", name, path,
		    error != NULL ? error : "failed");
		return POSTERN_EXIT_FAIL;
	}
	if (found == 0) {
		postern_error("no user %s in %s", name, path);
		return POSTERN_EXIT_FAIL;
	}
	return POSTERN_EXIT_OK;
}

/* user_cmd_show - quota, usage and mailboxes of one user */
static int
user_cmd_show(int argc, char **argv)
{
	struct user_args a = { 0 };
	struct userdb_user u;
	struct config *cfg;
	const char *source, *store_dir;
	uint64_t quota;
	int rc;

	if ((rc = user_parse(argc, argv, true, false, &a)) != POSTERN_EXIT_OK)
		return rc;
	if ((rc = user_lookup_one(a.name, &u)) != POSTERN_EXIT_OK)
		return rc;
	cfg = conf();
	if (user_quota_of(&u, cfg, &quota, &source) < 0) {
		userdb_user_clear(&u);
		return POSTERN_EXIT_FAIL;
	}
	printf("user: %s\n", a.name);
	printf("password: %s\n", *u.password_hash != '\0' ? "set" : "none");
	if (quota == 0)
		printf("quota: unlimited (%s)\n", source);
	else
		printf("quota: %llu bytes (%s)\n", (unsigned long long)quota, source);
	userdb_user_clear(&u);
	if ((store_dir = postern_param(cfg, "store_directory")) == NULL)
		return POSTERN_EXIT_FAIL;
	return user_store_report_as_owner(store_dir, a.name) == 0 ?
	    POSTERN_EXIT_OK : POSTERN_EXIT_FAIL;
}

/* user_cmd_quota - show the effective quota, or set the user's own */
static int
user_cmd_quota(int argc, char **argv)
{
	struct user_args a = { 0 };
	struct userdb_user u;
	const char *source, *path, *err;
	uint64_t quota;
	int rc;

	if (argc == 3 && argv[2][0] != '-') {
		/* user quota NAME SIZE */
		a.size = argv[2];
		argc--;
	}
	if ((rc = user_parse(argc, argv, true, false, &a)) != POSTERN_EXIT_OK)
		return rc;
	if (a.size != NULL) {
		if (!config_parse_size(a.size, &quota)) {
			postern_error("user quota %s %s: bad size (want bytes "
			    "with an optional k, m or g suffix; 0 = the default "
			    "quota_storage_limit)", a.name, a.size);
			return POSTERN_EXIT_USAGE;
		}
		if ((path = user_db_path()) == NULL)
			return POSTERN_EXIT_FAIL;
		if (userdb_set_quota(path, a.name, quota, &err) < 0) {
			postern_error("user quota %s: %s", a.name, err);
			return POSTERN_EXIT_FAIL;
		}
	}
	if ((rc = user_lookup_one(a.name, &u)) != POSTERN_EXIT_OK)
		return rc;
	rc = user_quota_of(&u, conf(), &quota, &source);
	userdb_user_clear(&u);
	if (rc < 0)
		return POSTERN_EXIT_FAIL;
	if (quota == 0)
		printf("%s: unlimited (%s)\n", a.name, source);
	else
		printf("%s: %llu (%s)\n", a.name, (unsigned long long)quota, source);
	return POSTERN_EXIT_OK;
}

/* postern_cmd_user - user add | passwd | delete | list | verify | show | quota */
int
postern_cmd_user(int argc, char **argv)
{
	const char *sub;

	if (argc < 2)
		return postern_usage_error("user", "user needs add, passwd, "
		    "delete, list, verify, show or quota");
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0)
		return user_cmd_set(argc, argv, true);
	if (strcmp(sub, "passwd") == 0)
		return user_cmd_set(argc, argv, false);
	if (strcmp(sub, "delete") == 0 || strcmp(sub, "del") == 0)
		return user_cmd_delete(argc, argv);
	if (strcmp(sub, "show") == 0)
		return user_cmd_show(argc, argv);
	if (strcmp(sub, "quota") == 0)
		return user_cmd_quota(argc, argv);
	if (strcmp(sub, "list") == 0)
		return user_cmd_list(argc, argv);
	if (strcmp(sub, "verify") == 0)
		return user_cmd_verify(argc, argv);
	return postern_usage_error("user", "unknown user command \"%s\"", sub);
}
