/* SPDX-License-Identifier: MIT */
/* safe_file_test - unit tests for safe_file.c */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safe_file.h"
#include "str.h"
#include "test.h"

/* tpath - a path in the test directory (one static buffer per slot) */
static const char *
tpath(int slot, const char *name)
{
	static char buf[4][PATH_MAX];

	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", test_tmpdir(), name);
	return buf[slot];
}

/* count_tmp - how many "*.tmp*" names are in dir */
static int
count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_replace(void)
{
	const char *p = tpath(0, "replace");
	struct str *s = str_new(0, 0);
	struct safe_file *sf;
	struct stat st;

	test_begin("safe_file replace, commit, abort");
	TEST_ASSERT(safe_file_replace(p, "hello\n", 6, 0640) == 0);
	TEST_ASSERT(read_file(p, s, 0) == 0);
	TEST_ASSERT_STR(str_c(s), "hello\n");
	TEST_ASSERT(stat(p, &st) == 0 && (st.st_mode & 0777) == (0640 & ~022 & 0777));
	TEST_ASSERT(safe_file_replace(p, "bye", 3, 0640) == 0);
	str_clear(s);
	TEST_ASSERT(read_file(p, s, 0) == 0);
	TEST_ASSERT_STR(str_c(s), "bye");

	sf = safe_file_create(p, 0600);
	TEST_ASSERT(sf != NULL && safe_file_fd(sf) >= 0);
	TEST_ASSERT(safe_file_write(sf, "partial", 7) == 0);
	TEST_ASSERT(count_tmp(test_tmpdir()) == 1);
	safe_file_abort(&sf);
	TEST_ASSERT(sf == NULL);
	safe_file_abort(&sf);
	TEST_ASSERT(count_tmp(test_tmpdir()) == 0);
	str_clear(s);
	TEST_ASSERT(read_file(p, s, 0) == 0);
	TEST_ASSERT_STR(str_c(s), "bye");

	sf = safe_file_create(p, 0600);
	TEST_ASSERT(safe_file_write(sf, "new", 3) == 0);
	TEST_ASSERT(safe_file_commit(&sf) == 0 && sf == NULL);
	str_clear(s);
	TEST_ASSERT(read_file(p, s, 0) == 0);
	TEST_ASSERT_STR(str_c(s), "new");
	TEST_ASSERT(count_tmp(test_tmpdir()) == 0);

	errno = 0;
	TEST_ASSERT(safe_file_create(tpath(1, "nodir/x"), 0600) == NULL &&
	    errno == ENOENT);
	str_free(&s);
	test_end();
}

static void
test_install(void)
{
	const char *p = tpath(0, "inst"), *t;
	struct str *tmp = str_new(0, 0), *s = str_new(0, 0);

	test_begin("safe_file_tmpname + safe_file_install");
	TEST_ASSERT(safe_file_tmpname(p, tmp) == 0);
	t = str_c(tmp);
	TEST_ASSERT(strncmp(t, p, strlen(p)) == 0);
	TEST_ASSERT(strlen(t) == strlen(p) + 12);
	TEST_ASSERT(safe_file_replace(t, "x", 1, 0600) == 0);
	TEST_ASSERT(safe_file_install(t, p) == 0);
	TEST_ASSERT(access(t, F_OK) < 0 && errno == ENOENT);
	TEST_ASSERT(read_file(p, s, 0) == 0 && str_equals_cstr(s, "x"));
	TEST_ASSERT(safe_file_install(t, p) < 0);
	str_free(&tmp);
	str_free(&s);
	test_end();
}

static void
test_read_max(void)
{
	const char *p = tpath(0, "max");
	struct str *s = str_new(0, 0);

	test_begin("read_file limit and errors");
	TEST_ASSERT(safe_file_replace(p, "0123456789", 10, 0600) == 0);
	TEST_ASSERT(str_append_cstr(s, "pre:") == 0);
	TEST_ASSERT(read_file(p, s, 10) == 0);
	TEST_ASSERT_STR(str_c(s), "pre:0123456789");
	errno = 0;
	TEST_ASSERT(read_file(p, s, 9) == -1 && errno == E2BIG);
	TEST_ASSERT_STR(str_c(s), "pre:0123456789");
	errno = 0;
	TEST_ASSERT(read_file(tpath(1, "missing"), s, 0) == -1 && errno == ENOENT);
	TEST_ASSERT(safe_file_replace(p, "", 0, 0600) == 0);
	str_clear(s);
	TEST_ASSERT(read_file(p, s, 1) == 0 && str_len(s) == 0);
	str_free(&s);
	test_end();
}

static void
test_mkdir(void)
{
	struct stat st;

	test_begin("mkdir_p and fsync_dir/fsync_parent");
	TEST_ASSERT(mkdir_p(tpath(0, "a/b//c/d"), 0755) == 0);
	TEST_ASSERT(stat(tpath(1, "a/b/c/d"), &st) == 0 && S_ISDIR(st.st_mode));
	TEST_ASSERT(mkdir_p(tpath(0, "a/b/c/d/"), 0755) == 0);
	TEST_ASSERT(mkdir_p(tpath(0, "a/b"), 0755) == 0);
	TEST_ASSERT(safe_file_replace(tpath(0, "a/file"), "x", 1, 0600) == 0);
	errno = 0;
	TEST_ASSERT(mkdir_p(tpath(0, "a/file"), 0755) == -1 && errno == ENOTDIR);
	TEST_ASSERT(mkdir_p(tpath(0, "a/file/sub"), 0755) == -1);
	TEST_ASSERT(mkdir_p("", 0755) == -1);
	TEST_ASSERT(fsync_dir(tpath(0, "a/b")) == 0);
	TEST_ASSERT(fsync_parent(tpath(0, "a/b/c")) == 0);
	TEST_ASSERT(fsync_parent("relative") == 0);
	TEST_ASSERT(fsync_parent("/etc") == 0);
	TEST_ASSERT(fsync_dir(tpath(0, "nope")) == -1);
	test_end();
}

static void
test_lock(void)
{
	const char *p = tpath(0, "lock"), *pid = tpath(1, "x.pid");
	int fd, status, pipefd[2];
	pid_t child;
	char c;

	test_begin("lock_file and pid files");
	fd = lock_file(p, false);
	TEST_ASSERT(fd >= 0);
	TEST_ASSERT((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	/* Another process cannot take it, and gets EWOULDBLOCK. */
	if ((child = fork()) == 0) {
		int r = lock_file(p, false);

		_exit(r < 0 && errno == EWOULDBLOCK ? 0 : 1);
	}
	TEST_ASSERT(waitpid(child, &status, 0) == child &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	/* Released by close: a waiting locker gets it. */
	if ((child = fork()) == 0)
		_exit(lock_file(p, true) >= 0 ? 0 : 1);
	TEST_ASSERT(waitpid(child, &status, 0) == child &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* No pid file, then a stale one, then a live holder. */
	TEST_ASSERT(pid_file_read(pid) == 0);
	TEST_ASSERT(safe_file_replace(pid, "12345\n", 6, 0644) == 0);
	TEST_ASSERT(pid_file_read(pid) == 0);
	TEST_ASSERT(pipe(pipefd) == 0);
	if ((child = fork()) == 0) {
		close(pipefd[0]);
		if (pid_file_write(pid) != 0)
			_exit(1);
		if (write(pipefd[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	TEST_ASSERT(read(pipefd[0], &c, 1) == 1);
	close(pipefd[0]);
	TEST_ASSERT(pid_file_read(pid) == child);
	errno = 0;
	TEST_ASSERT(pid_file_write(pid) == -1 && errno == EWOULDBLOCK);
	kill(child, SIGTERM);
	TEST_ASSERT(waitpid(child, &status, 0) == child);
	TEST_ASSERT(pid_file_read(pid) == 0);
	/* Now ours; a child sees us holding it. */
	TEST_ASSERT(pid_file_write(pid) == 0);
	if ((child = fork()) == 0)
		_exit(pid_file_read(pid) == getppid() ? 0 : 1);
	TEST_ASSERT(waitpid(child, &status, 0) == child &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_end();
}

int
main(void)
{
	test_replace();
	test_install();
	test_read_max();
	test_mkdir();
	test_lock();
	return test_done();
}
