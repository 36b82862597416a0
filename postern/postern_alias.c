/* SPDX-License-Identifier: MIT */
/*
 * postern_alias - departmental addresses and forwarding in the user database
 *
 * DESCRIPTION
 *	postern alias set USER ADDRESS@DEPT   USER's departmental address
 *	postern alias show USER
 *	postern alias del USER
 *	postern forward set USER ADDRESS [--keep-copy]
 *	postern forward show USER
 *	postern forward off USER
 *
 *	Both live in USER's record in $user_database (lib/userdb.h); an
 *	alias also gets a reverse index entry, so qmgr resolves
 *	alias@dept with one lookup. The departmental domain must be one of
 *	$department_domains (a warning otherwise: mail to it would not be
 *	looked up). Writers replace the file atomically (userdb.c), so qmgr
 *	sees a change at its next lookup, with no reload.
 *
 * SECURITY
 *	Runs with the invoker's rights; writing the user database needs
 *	write access to its directory, as for postern user.
 *
 * SEE ALSO
 *	postern-alias(8), qmgr(8)
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "str.h"
#include "userdb.h"

#include "postern.h"

/* alias_db_path - $user_database, or NULL after a message */
static const char *
alias_db_path(void)
{
	struct config *cfg = postern_load_config(false);

	if (cfg == NULL)
		return NULL;
	return postern_param(cfg, "user_database");
}

/* alias_lookup - USER's record; false after a message */
static bool
alias_lookup(const char *path, const char *name, struct userdb_user *u)
{
	struct userdb *db;
	const char *error = NULL;
	int r;

	memset(u, 0, sizeof(*u));
	if ((db = userdb_open(path, &error)) == NULL) {
		postern_error("%s: %s", path, error);
		return false;
	}
	r = userdb_lookup(db, name, u, &error);
	userdb_close(&db);
	if (r < 0)
		postern_error("%s: %s", path, error != NULL ? error : "failed");
	else if (r == 0)
		postern_error("no user %s in %s", name, path);
	return r > 0;
}

/* alias_domain_check - warn when address's domain is not a department domain */
static void
alias_domain_check(const char *address)
{
	const char *at = strrchr(address, '@');
	const char *const *doms;
	size_t n, i;

	if (at == NULL)
		return;
	doms = config_list(conf(), "department_domains", &n);
	for (i = 0; i < n; i++)
		if (strcasecmp(doms[i], at + 1) == 0)
			return;
	postern_warn("%s is not in department_domains: mail to %s will not "
	    "be looked up until it is", at + 1, address);
}

/* postern_cmd_alias - see DESCRIPTION (declared in postern.c) */
int postern_cmd_alias(int argc, char **argv);
int
postern_cmd_alias(int argc, char **argv)
{
	struct userdb_user u;
	const char *path, *error = NULL, *sub, *alias = NULL;

	if (argc < 3)
		return postern_usage_error("alias", "alias needs set, show or "
		    "del and a user NAME");
	sub = argv[1];
	if (strcmp(sub, "set") == 0) {
		if (argc != 4)
			return postern_usage_error("alias", "alias set NAME "
			    "ADDRESS@DEPT");
		alias = argv[3];
	} else if ((strcmp(sub, "show") != 0 && strcmp(sub, "del") != 0 &&
	    strcmp(sub, "delete") != 0) || argc != 3) {
		return postern_usage_error("alias", "alias %s: unknown or "
		    "wrong arguments", sub);
	}
	if ((path = alias_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	if (strcmp(sub, "show") == 0) {
		if (!alias_lookup(path, argv[2], &u))
			return POSTERN_EXIT_FAIL;
		printf("%s\n", u.dept_alias != NULL ? u.dept_alias : "(none)");
		userdb_user_clear(&u);
		return POSTERN_EXIT_OK;
	}
	if (userdb_set_alias(path, argv[2], alias, &error) < 0) {
		postern_error("cannot %s the departmental address of %s: %s",
		    alias != NULL ? "set" : "remove", argv[2],
		    error != NULL ? error : "failed");
		return POSTERN_EXIT_FAIL;
	}
	if (alias != NULL)
		alias_domain_check(alias);
	return POSTERN_EXIT_OK;
}

/* postern_cmd_forward - see DESCRIPTION (declared in postern.c) */
int postern_cmd_forward(int argc, char **argv);
int
postern_cmd_forward(int argc, char **argv)
{
	struct userdb_user u;
	const char *path, *error = NULL, *sub, *addr = NULL;
	bool keep = false;
	int i;

	if (argc < 3)
		return postern_usage_error("forward", "forward needs set, show "
		    "or off and a user NAME");
	sub = argv[1];
	if (strcmp(sub, "set") == 0) {
		for (i = 3; i < argc; i++) {
			if (strcmp(argv[i], "--keep-copy") == 0)
				keep = true;
			else if (addr == NULL && argv[i][0] != '-')
				addr = argv[i];
			else
				return postern_usage_error("forward", "forward "
				    "set: unexpected \"%s\"", argv[i]);
		}
		if (addr == NULL)
			return postern_usage_error("forward", "forward set NAME "
			    "ADDRESS [--keep-copy]");
	} else if ((strcmp(sub, "show") != 0 && strcmp(sub, "off") != 0) ||
	    argc != 3) {
		return postern_usage_error("forward", "forward %s: unknown or "
		    "wrong arguments", sub);
	}
	if ((path = alias_db_path()) == NULL)
		return POSTERN_EXIT_FAIL;
	if (strcmp(sub, "show") == 0) {
		if (!alias_lookup(path, argv[2], &u))
			return POSTERN_EXIT_FAIL;
		if (u.forward == NULL)
			printf("off\n");
		else
			printf("%s%s\n", u.forward, u.forward_keep ?
			    " --keep-copy" : "");
		userdb_user_clear(&u);
		return POSTERN_EXIT_OK;
	}
	if (userdb_set_forward(path, argv[2], addr, keep, &error) < 0) {
		postern_error("cannot %s forwarding of %s: %s",
		    addr != NULL ? "set" : "turn off", argv[2],
		    error != NULL ? error : "failed");
		return POSTERN_EXIT_FAIL;
	}
	return POSTERN_EXIT_OK;
}
