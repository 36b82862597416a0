/* SPDX-License-Identifier: MIT */
/*
 * privsep_test - unit tests for privsep.c
 *
 * The drop itself runs in forked children (a process cannot get root
 * back), which report through their exit status. As another user than
 * root only the "privilege separation is off" behaviour is testable.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep.h"
#include "test.h"

/* Exit codes of the children: which check failed. */
enum {
	CHILD_OK = 0,
	CHILD_DROP_FAILED = 10,
	CHILD_IDS,
	CHILD_GROUPS,
	CHILD_ROOT_BACK,
	CHILD_CWD,
	CHILD_ESCAPE,
	CHILD_REFUSED_WRONGLY,
	CHILD_NOT_REFUSED,
};

/* run_child - fork, run fn in the child, return its exit status or -1 */
static int
run_child(int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg));
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* child_drop_nobody - drop to nobody and check everything */
static int
child_drop_nobody(const void *arg)
{
	const struct passwd *pw = arg;
	gid_t groups[64];
	const char *error;
	int n, i;

	if (privsep_drop("nobody", NULL, &error) < 0)
		return CHILD_DROP_FAILED;
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || getegid() != pw->pw_gid)
		return CHILD_IDS;
	n = getgroups(64, groups);
	for (i = 0; i < n; i++) {
		if (groups[i] == 0)
			return CHILD_GROUPS;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return CHILD_ROOT_BACK;
	return CHILD_OK;
}

/* child_drop_chroot - drop into a chroot; "/" is the directory now */
static int
child_drop_chroot(const void *arg)
{
	const char *dir = arg;
	const char *error;
	struct stat st;
	char cwd[PATH_MAX];

	if (privsep_drop("nobody", dir, &error) < 0)
		return CHILD_DROP_FAILED;
	if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
		return CHILD_CWD;
	/* The marker file made before the drop is at the root now. */
	if (stat("/marker", &st) < 0)
		return CHILD_ESCAPE;
	if (chdir("..") == 0 && stat("/marker", &st) < 0)
		return CHILD_ESCAPE;
	return CHILD_OK;
}

/* child_drop_root - dropping "to root" must be refused */
static int
child_drop_root(const void *arg)
{
	const char *error = NULL;

	(void)arg;
	if (privsep_drop("root", NULL, &error) == 0)
		return CHILD_NOT_REFUSED;
	if (error == NULL || strstr(error, "root") == NULL)
		return CHILD_REFUSED_WRONGLY;
	if (geteuid() != 0)
		return CHILD_IDS;	/* refused before changing anything */
	return CHILD_OK;
}

/* child_drop_unknown - an unknown user is an error */
static int
child_drop_unknown(const void *arg)
{
	const char *error = NULL;

	(void)arg;
	if (privsep_drop("no-such-user-for-privsep-test", NULL, &error) == 0)
		return CHILD_NOT_REFUSED;
	return error != NULL ? CHILD_OK : CHILD_REFUSED_WRONGLY;
}

static void
test_user(void)
{
	const char *error = NULL;
	uid_t uid;
	gid_t gid;

	test_begin("privsep_user resolves and rejects");
	TEST_ASSERT(privsep_user("root", &uid, &gid, &error) == 0);
	TEST_ASSERT(uid == 0 && gid == 0);
	TEST_ASSERT(privsep_user("no-such-user-for-privsep-test", &uid, &gid,
	    &error) < 0);
	TEST_ASSERT(error != NULL);
	TEST_ASSERT(privsep_user("", &uid, &gid, &error) < 0);
	test_end();
}

static void
test_drop_as_root(void)
{
	struct passwd pwcopy, *pw = getpwnam("nobody");
	char path[PATH_MAX];
	const char *dir;
	int fd;

	test_begin("privsep_drop as root");
	if (!privsep_enabled() || pw == NULL) {
		/* Nothing to check here: not root, or no nobody account. */
		test_end();
		return;
	}
	pwcopy = *pw;
	TEST_ASSERT(run_child(child_drop_nobody, &pwcopy) == CHILD_OK);
	TEST_ASSERT(run_child(child_drop_root, NULL) == CHILD_OK);
	TEST_ASSERT(run_child(child_drop_unknown, NULL) == CHILD_OK);
	dir = test_tmpdir();
	/* nobody must be able to look inside its new root */
	TEST_ASSERT(chmod(dir, 0711) == 0);
	snprintf(path, sizeof(path), "%s/marker", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	TEST_ASSERT(fd >= 0);
	if (fd >= 0)
		close(fd);
	TEST_ASSERT(run_child(child_drop_chroot, dir) == CHILD_OK);
	test_end();
}

static void
test_drop_not_root(void)
{
	const char *error = NULL;
	uid_t uid = getuid();

	test_begin("privsep_drop when not root changes nothing");
	if (privsep_enabled()) {
		test_end();
		return;
	}
	TEST_ASSERT(privsep_drop("nobody", "/nonexistent", &error) == 0);
	TEST_ASSERT(getuid() == uid);
	test_end();
}

static void
test_clean_env(void)
{
	static const char *const keep[] = { "KEEP_ME", NULL };

	test_begin("privsep_clean_env keeps only what it should");
	setenv("TZ", "UTC", 1);
	setenv("LANG", "C.UTF-8", 1);
	setenv("LC_ALL", "C", 1);
	setenv("KEEP_ME", "yes", 1);
	setenv("KEEP_ME_NOT", "no", 1);
	setenv("LD_PRELOAD", "/tmp/evil.so", 1);
	setenv("IFS", "x", 1);
	setenv("PATH", "/tmp/evil:/usr/bin", 1);
	privsep_clean_env(keep);
	TEST_ASSERT_STR(getenv("TZ"), "UTC");
	TEST_ASSERT_STR(getenv("LANG"), "C.UTF-8");
	TEST_ASSERT_STR(getenv("LC_ALL"), "C");
	TEST_ASSERT_STR(getenv("KEEP_ME"), "yes");
	TEST_ASSERT(getenv("KEEP_ME_NOT") == NULL);
	TEST_ASSERT(getenv("LD_PRELOAD") == NULL);
	TEST_ASSERT(getenv("IFS") == NULL);
	TEST_ASSERT_STR(getenv("PATH"), "/usr/bin:/bin");
	privsep_clean_env(NULL);
	TEST_ASSERT(getenv("KEEP_ME") == NULL);
	TEST_ASSERT_STR(getenv("TZ"), "UTC");
	test_end();
}

static void
test_limits(void)
{
	mode_t old;

	test_begin("privsep_set_limits sets umask 077");
	privsep_set_limits();
	old = umask(022);
	TEST_ASSERT(old == 077);
	test_end();
}

int
main(void)
{
	test_user();
	test_drop_as_root();
	test_drop_not_root();
	test_clean_env();
	test_limits();
	return test_done();
}
