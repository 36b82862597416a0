/* SPDX-License-Identifier: MIT */
/*
 * postern_list - `postern list`: mailing lists (list-mgr(8))
 *
 * DESCRIPTION
 *	list create NAME@DOMAIN [--owner ADDR]... [KEY=VALUE]...
 *	list delete NAME
 *	list show NAME
 *	list set NAME KEY=VALUE...
 *	list members NAME [list]
 *	list members NAME add ADDR... [--options digest,nomail,nocopy,plain]
 *	list members NAME remove ADDR...
 *	list held NAME
 *	list approve|reject|discard NAME ID
 *	list archive rebuild NAME
 *
 *	Settings and members are changed in place through lib/list_store
 *	(the members database under the list's lock). approve, reject and
 *	discard send the command "approve ID" (etc.) to NAME-request by the
 *	injection path, so list-mgr does the work exactly as for a
 *	moderator's reply. When run by root, files the command creates are
 *	given to the owner of $list_directory (the list-mgr user).
 *
 * SECURITY
 *	Runs with the rights of its caller; reads postern.conf and the list
 *	directory, writes there, and connects to cleanup.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cleanup_client.h"
#include "config.h"
#include "list_archive.h"
#include "list_store.h"
#include "safe_file.h"
#include "str.h"

#include "postern.h"

static uid_t list_chown_uid;
static gid_t list_chown_gid;

/* list_chown_cb - nftw: give a file to the list-mgr user */
static int
list_chown_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	/* best effort: a file left root's is reported by list-mgr's errors */
	if ((st->st_uid != list_chown_uid || st->st_gid != list_chown_gid) &&
	    lchown(path, list_chown_uid, list_chown_gid) < 0)
		postern_warn("chown %s: %s", path, strerror(errno));
	return 0;
}

/* list_fix_owner - as root: the list's files to $list_directory's owner */
static void
list_fix_owner(const struct list *l)
{
	struct stat st;

	if (geteuid() != 0 || stat(list_directory(), &st) < 0)
		return;
	list_chown_uid = st.st_uid;
	list_chown_gid = st.st_gid;
	(void)nftw(l->dir, list_chown_cb, 16, FTW_PHYS);
}

/*
 * list_make_directory - as root, a new $list_directory belongs to the
 * owner of the directory it is in (the daemons' account)
 */
static void
list_make_directory(void)
{
	struct str *parent;
	struct stat st;
	char *slash;

	if (geteuid() != 0 || stat(list_directory(), &st) == 0)
		return;
	parent = str_new_cstr(list_directory());
	slash = strrchr(str_data(parent), '/');
	if (slash != NULL && slash != str_data(parent)) {
		str_truncate(parent, (size_t)(slash - str_data(parent)));
		if (stat(str_c(parent), &st) == 0 &&
		    mkdir_p(list_directory(), 0750) == 0 &&
		    chown(list_directory(), st.st_uid, st.st_gid) < 0)
			postern_warn("chown %s: %s", list_directory(),
			    strerror(errno));
	}
	str_free(&parent);
}

/* list_open_or_fail - open NAME or print why */
static struct list *
list_open_or_fail(const char *name)
{
	const char *error;
	struct list *l = list_store_open(name, &error);

	if (l == NULL)
		postern_error("list %s: %s", name, error);
	return l;
}

/* list_set_pairs - KEY=VALUE arguments into l */
static int
list_set_pairs(struct list *l, int argc, char **argv)
{
	const char *error;
	char *eq;
	int i;

	for (i = 0; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (eq == NULL)
			return postern_usage_error("list", "expected KEY=VALUE, "
			    "got \"%s\"", argv[i]);
		*eq = '\0';
		if (list_set(l, argv[i], eq + 1, &error) < 0) {
			postern_error("list %s: %s: %s", l->name, argv[i], error);
			*eq = '=';
			return POSTERN_EXIT_FAIL;
		}
		*eq = '=';
	}
	return POSTERN_EXIT_OK;
}

/* list_cmd_create - list create NAME@DOMAIN [--owner A]... [K=V]... */
static int
list_cmd_create(int argc, char **argv)
{
	struct str *owners = str_new(0, 0), *name = str_new(0, 0);
	const char *at, *error;
	struct list *l = NULL;
	char **pairs;
	int i, npairs = 0, rc = POSTERN_EXIT_FAIL;

	if (argc < 2 || (at = strchr(argv[1], '@')) == NULL || at[1] == '\0')
		return postern_usage_error("list", "list create NAME@DOMAIN");
	pairs = calloc((size_t)argc, sizeof(char *));
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--owner") == 0 && i + 1 < argc) {
			str_printf(owners, "%s%s", str_len(owners) ? "," : "",
			    argv[++i]);
		} else if (pairs != NULL)
			pairs[npairs++] = argv[i];
	}
	str_append(name, argv[1], (size_t)(at - argv[1]));
	list_make_directory();
	l = list_store_create(str_c(name), at + 1, &error);
	if (l == NULL) {
		postern_error("list create %s: %s", argv[1], error);
		goto out;
	}
	if (str_len(owners) > 0 && list_set(l, "owners", str_c(owners),
	    &error) < 0) {
		postern_error("list create: owners: %s", error);
		goto out;
	}
	if ((rc = list_set_pairs(l, npairs, pairs)) != POSTERN_EXIT_OK)
		goto out;
	if (list_store_save(l, &error) < 0) {
		postern_error("list create: %s", error);
		rc = POSTERN_EXIT_FAIL;
		goto out;
	}
	{
		struct list_members *mp = list_members_open(l, true, &error);

		list_members_close(&mp);
	}
	list_fix_owner(l);
	printf("list %s@%s created\n", l->name, at + 1);
	rc = POSTERN_EXIT_OK;
out:
	if (rc != POSTERN_EXIT_OK && l != NULL)
		(void)list_store_delete(l->name, &error);
	list_store_free(&l);
	free(pairs);
	str_free(&owners);
	str_free(&name);
	return rc;
}

/* list_count_cb - count members */
static int
list_count_cb(const struct list_member *m, void *ctx)
{
	(void)m;
	(*(size_t *)ctx)++;
	return 0;
}

/* list_cmd_show - list show NAME */
static int
list_cmd_show(int argc, char **argv)
{
	const char *const *keys = list_keys(), *error;
	struct list_members *mp;
	struct list *l;
	size_t i, n = 0;

	if (argc != 2)
		return postern_usage_error("list", "list show NAME");
	if ((l = list_open_or_fail(argv[1])) == NULL)
		return POSTERN_EXIT_FAIL;
	printf("address = %s@%s\n", l->name, list_get(l, "domain"));
	for (i = 0; keys[i] != NULL; i++) {
		if (strcmp(keys[i], "password") == 0 ||
		    strcmp(keys[i], "ldap_bind_password") == 0)
			printf("%s = %s\n", keys[i],
			    list_get(l, keys[i])[0] != '\0' ? "(set)" : "");
		else
			printf("%s = %s\n", keys[i], list_get(l, keys[i]));
	}
	if ((mp = list_members_open(l, false, &error)) != NULL &&
	    list_members_each(mp, list_count_cb, &n, &error) == 0)
		printf("members = %zu\n", n);
	list_members_close(&mp);
	list_store_free(&l);
	return POSTERN_EXIT_OK;
}

/* list_cmd_set - list set NAME K=V... */
static int
list_cmd_set(int argc, char **argv)
{
	const char *error;
	struct list *l;
	int rc;

	if (argc < 3)
		return postern_usage_error("list", "list set NAME KEY=VALUE...");
	if ((l = list_open_or_fail(argv[1])) == NULL)
		return POSTERN_EXIT_FAIL;
	rc = list_set_pairs(l, argc - 2, argv + 2);
	if (rc == POSTERN_EXIT_OK && list_store_save(l, &error) < 0) {
		postern_error("list set: %s", error);
		rc = POSTERN_EXIT_FAIL;
	}
	list_fix_owner(l);
	list_store_free(&l);
	return rc;
}

/* list_print_cb - one member line */
static int
list_print_cb(const struct list_member *m, void *ctx)
{
	struct str *f = ctx;

	list_member_flags_str(m->flags, f);
	printf("%s\t%s\t%.1f\n", m->address, str_c(f), m->score);
	return 0;
}

/* list_cmd_members - list members NAME [list|add|remove] ... */
static int
list_cmd_members(int argc, char **argv)
{
	struct list_members *mp = NULL;
	struct list_member m;
	struct str *f = str_new(0, 0);
	const char *sub = argc >= 3 ? argv[2] : "list", *error;
	unsigned flags = 0;
	struct list *l;
	int i, rc = POSTERN_EXIT_OK, r;

	if (argc < 2)
		return postern_usage_error("list", "list members NAME "
		    "[list|add|remove] ...");
	if ((l = list_open_or_fail(argv[1])) == NULL) {
		str_free(&f);
		return POSTERN_EXIT_FAIL;
	}
	if (strcmp(sub, "list") == 0) {
		if ((mp = list_members_open(l, false, &error)) == NULL ||
		    list_members_each(mp, list_print_cb, f, &error) < 0) {
			postern_error("list members %s: %s", l->name, error);
			rc = POSTERN_EXIT_FAIL;
		}
		goto out;
	}
	if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0) {
		rc = postern_usage_error("list", "unknown members command \"%s\"",
		    sub);
		goto out;
	}
	for (i = 3; i < argc; i++)
		if (strcmp(argv[i], "--options") == 0 && i + 1 < argc &&
		    !list_member_flags_parse(argv[i + 1], &flags)) {
			rc = postern_usage_error("list", "bad --options \"%s\"",
			    argv[i + 1]);
			goto out;
		}
	if ((mp = list_members_open(l, true, &error)) == NULL) {
		postern_error("list members %s: %s", l->name, error);
		rc = POSTERN_EXIT_FAIL;
		goto out;
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--options") == 0) {
			i++;
			continue;
		}
		if (strchr(argv[i], '@') == NULL || strpbrk(argv[i],
		    " \t<>\",") != NULL) {
			postern_error("%s: not an address", argv[i]);
			rc = POSTERN_EXIT_FAIL;
			continue;
		}
		if (strcmp(sub, "add") == 0) {
			memset(&m, 0, sizeof(m));
			m.address = argv[i];
			m.flags = flags;
			m.since = time(NULL);
			r = list_member_put(mp, &m, &error);
		} else {
			r = list_member_del(mp, argv[i], &error);
			if (r == 0) {
				postern_error("%s: not a member", argv[i]);
				rc = POSTERN_EXIT_FAIL;
			}
		}
		if (r < 0) {
			postern_error("%s: %s", argv[i], error);
			rc = POSTERN_EXIT_FAIL;
		}
	}
out:
	list_members_close(&mp);
	list_fix_owner(l);
	list_store_free(&l);
	str_free(&f);
	return rc;
}

/* list_cmd_held - list held NAME */
static int
list_cmd_held(int argc, char **argv)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0),
	    *info = str_new(0, 0);
	struct dirent *de;
	struct list *l;
	DIR *d;

	if (argc != 2)
		return postern_usage_error("list", "list held NAME");
	if ((l = list_open_or_fail(argv[1])) == NULL)
		return POSTERN_EXIT_FAIL;
	if ((d = opendir(list_path(l, "held", dir))) != NULL) {
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			char *p;

			if (n != 29 || strcmp(de->d_name + 24, ".info") != 0)
				continue;
			str_clear(path);
			str_printf(path, "%s/%s", str_c(dir), de->d_name);
			if (read_file(str_c(path), info, 64 * 1024) < 0)
				continue;
			for (p = str_data(info); *p != '\0'; p++)
				if (*p == '\n')
					*p = ' ';
			printf("%.24s %s\n", de->d_name, str_c(info));
		}
		closedir(d);
	}
	list_store_free(&l);
	str_free(&dir);
	str_free(&path);
	str_free(&info);
	return POSTERN_EXIT_OK;
}

/* list_cmd_moderate - approve|reject|discard NAME ID [reason] */
static int
list_cmd_moderate(int argc, char **argv)
{
	struct str *msg = str_new(0, 0), *to = str_new(0, 0),
	    *sock = str_new(0, 0), *reason = str_new(0, 0);
	struct cleanup_client *c;
	struct queue_envelope env;
	struct queue_rcpt rcpt;
	struct list *l;
	const char *error = NULL;
	int rc = POSTERN_EXIT_FAIL;

	if (argc < 3 || !list_token_ok(argv[2])) {
		str_free(&msg);
		str_free(&to);
		str_free(&sock);
		str_free(&reason);
		return postern_usage_error("list", "list %s NAME ID", argv[0]);
	}
	if ((l = list_open_or_fail(argv[1])) == NULL)
		goto out0;
	str_printf(msg, "%s/%s.info", "held", argv[2]);
	if (access(list_path(l, str_c(msg), to), F_OK) < 0) {
		postern_error("list %s: no held message %s", l->name, argv[2]);
		goto out;
	}
	list_address(l, "request", to);
	str_clear(msg);
	str_printf(msg, "From: postmaster\r\nTo: %s\r\nSubject: %s %s\r\n"
	    "\r\n%s %s%s%s\r\n", str_c(to), argv[0], argv[2], argv[0], argv[2],
	    argc > 3 ? " " : "", argc > 3 ? argv[3] : "");
	str_set_cstr(sock, config_str(conf(), "list_cleanup_service"));
	c = cleanup_client_open(str_c(sock), CLEANUP_FLAG_SUBMISSION, &error);
	if (c == NULL) {
		postern_error("cannot connect to cleanup: %s", error);
		goto out;
	}
	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = "";
	env.protocol = "local";
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = str_c(to);
	if (cleanup_client_envelope(c, &env, &error) < 0 ||
	    cleanup_client_rcpt(c, &rcpt, &error) < 0 ||
	    cleanup_client_content(c, str_c(msg), str_len(msg), &error) < 0) {
		postern_error("injection failed: %s", error);
		cleanup_client_abort(&c);
		goto out;
	}
	if (cleanup_client_finish(&c, reason) != CLEANUP_OK) {
		postern_error("not queued: %s", str_c(reason));
		goto out;
	}
	printf("%s %s: sent to %s\n", argv[0], argv[2], str_c(to));
	rc = POSTERN_EXIT_OK;
out:
	list_store_free(&l);
out0:
	str_free(&msg);
	str_free(&to);
	str_free(&sock);
	str_free(&reason);
	return rc;
}

/* list_cmd_archive - list archive rebuild NAME */
static int
list_cmd_archive(int argc, char **argv)
{
	const char *error;
	struct list *l;
	int rc = POSTERN_EXIT_OK;

	if (argc != 3 || strcmp(argv[1], "rebuild") != 0)
		return postern_usage_error("list", "list archive rebuild NAME");
	if ((l = list_open_or_fail(argv[2])) == NULL)
		return POSTERN_EXIT_FAIL;
	if (list_archive_rebuild(l, &error) < 0) {
		postern_error("list archive %s: %s", l->name, error);
		rc = POSTERN_EXIT_FAIL;
	}
	list_fix_owner(l);
	list_store_free(&l);
	return rc;
}

/* list_cmd_delete - list delete NAME */
static int
list_cmd_delete(int argc, char **argv)
{
	const char *error;

	if (argc != 2)
		return postern_usage_error("list", "list delete NAME");
	if (list_store_delete(argv[1], &error) < 0) {
		postern_error("list delete %s: %s", argv[1], error);
		return POSTERN_EXIT_FAIL;
	}
	return POSTERN_EXIT_OK;
}

/* postern_cmd_list - see the DESCRIPTION (declared in postern.c) */
int postern_cmd_list(int argc, char **argv);

int
postern_cmd_list(int argc, char **argv)
{
	const char *sub;

	if (argc < 2)
		return postern_usage_error("list", "list needs create, delete, "
		    "show, set, members, held, approve, reject, discard or "
		    "archive");
	if (postern_load_config(true) == NULL)
		return POSTERN_EXIT_FAIL;
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "create") == 0)
		return list_cmd_create(argc, argv);
	if (strcmp(sub, "delete") == 0)
		return list_cmd_delete(argc, argv);
	if (strcmp(sub, "show") == 0)
		return list_cmd_show(argc, argv);
	if (strcmp(sub, "set") == 0)
		return list_cmd_set(argc, argv);
	if (strcmp(sub, "members") == 0)
		return list_cmd_members(argc, argv);
	if (strcmp(sub, "held") == 0)
		return list_cmd_held(argc, argv);
	if (strcmp(sub, "approve") == 0 || strcmp(sub, "reject") == 0 ||
	    strcmp(sub, "discard") == 0)
		return list_cmd_moderate(argc, argv);
	if (strcmp(sub, "archive") == 0)
		return list_cmd_archive(argc, argv);
	return postern_usage_error("list", "unknown list command \"%s\"", sub);
}
