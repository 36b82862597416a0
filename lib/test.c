/* SPDX-License-Identifier: MIT */
/*
 * test - a small TAP unit-test harness
 *
 * DESCRIPTION
 *	See test.h. Built into libpostern so that every *_test.c links it;
 *	nothing outside tests calls it.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static int test_count;
static int test_failures;
static bool test_cur_failed;
static const char *test_cur_name;
static char test_dir[256];

void
test_begin(const char *name)
{
	test_cur_name = name;
	test_cur_failed = false;
}

void
test_end(void)
{
	test_count++;
	printf("%s %d - %s\n", test_cur_failed ? "not ok" : "ok", test_count,
	    test_cur_name != NULL ? test_cur_name : "");
	fflush(stdout);
	if (test_cur_failed)
		test_failures++;
	test_cur_name = NULL;
}

bool
test_assert_fail(const char *expr, const char *file, int line)
{
	printf("# %s:%d: assertion failed: %s\n", file, line, expr);
	test_cur_failed = true;
	return false;
}

bool
test_assert_strfail(const char *got, const char *want, const char *file,
    int line)
{
	if (got != NULL && want != NULL && strcmp(got, want) == 0)
		return true;
	printf("# %s:%d: got \"%s\", want \"%s\"\n", file, line,
	    got ? got : "(null)", want ? want : "(null)");
	test_cur_failed = true;
	return false;
}

static int
test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

const char *
test_tmpdir(void)
{
	if (test_dir[0] == '\0') {
		const char *t = getenv("TMPDIR");

		snprintf(test_dir, sizeof(test_dir), "%s/postern-test.XXXXXX",
		    t != NULL ? t : "/tmp");
		if (mkdtemp(test_dir) == NULL) {
			perror("mkdtemp");
			exit(99);
		}
	}
	return test_dir;
}

int
test_done(void)
{
	printf("1..%d\n", test_count);
	if (test_dir[0] != '\0' && getenv("TEST_KEEP_TMP") == NULL)
		(void)nftw(test_dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
	return test_failures == 0 ? 0 : 1;
}
