/* SPDX-License-Identifier: MIT */
/*
 * user_quota_test - unit tests for user_quota.c: the user database's own
 * quota, then the first quota_maps hit, then quota_storage_limit; a bad
 * map value or a missing map is an error with the default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "test.h"
#include "user_quota.h"

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	TEST_ASSERT(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

int
main(void)
{
	struct config *cfg = config_new(test_tmpdir());
	char *m1 = xasprintf("%s/q1", test_tmpdir());
	char *m2 = xasprintf("%s/q2", test_tmpdir());
	char *list = xasprintf("file:%s, file:%s", m1, m2);
	char *src1 = xasprintf("quota_maps file:%s", m1);
	char *src2 = xasprintf("quota_maps file:%s", m2);
	const char *err = NULL, *source = NULL;
	uint64_t q = 0;

	write_file(m1, "alice 2000\nzero 0\nbad lots\n");
	write_file(m2, "alice 9m\nbob 3k\n");
	TEST_ASSERT(config_set(cfg, "quota_storage_limit", "1m", &err) == 0);
	TEST_ASSERT(config_set(cfg, "quota_maps", list, &err) == 0);

	test_begin("user database quota wins");
	TEST_ASSERT(user_quota_get(cfg, "alice", 777, &q, &source, &err) == 0);
	TEST_ASSERT(q == 777);
	TEST_ASSERT_STR(source, "user database");
	test_end();

	test_begin("first map hit, in list order");
	TEST_ASSERT(user_quota_get(cfg, "alice", 0, &q, &source, &err) == 0);
	TEST_ASSERT(q == 2000);
	TEST_ASSERT_STR(source, src1);
	TEST_ASSERT(user_quota_get(cfg, "bob", 0, &q, &source, &err) == 0);
	TEST_ASSERT(q == 3072);
	TEST_ASSERT_STR(source, src2);
	test_end();

	test_begin("0 in a map is unlimited, not the default");
	TEST_ASSERT(user_quota_get(cfg, "zero", 0, &q, &source, &err) == 0);
	TEST_ASSERT(q == 0);
	TEST_ASSERT_STR(source, src1);
	test_end();

	test_begin("no hit: quota_storage_limit");
	TEST_ASSERT(user_quota_get(cfg, "carol", 0, &q, &source, &err) == 0);
	TEST_ASSERT(q == 1048576);
	TEST_ASSERT_STR(source, "quota_storage_limit");
	test_end();

	test_begin("a value that is not a size: error and the default");
	q = 5;
	TEST_ASSERT(user_quota_get(cfg, "bad", 0, &q, &source, &err) < 0);
	TEST_ASSERT(q == 1048576);
	TEST_ASSERT_STR(source, "quota_storage_limit");
	TEST_ASSERT(strstr(err, "\"lots\"") != NULL);
	test_end();

	free(m1);
	free(m2);
	free(list);
	free(src1);
	free(src2);
	config_free(&cfg);
	return test_done();
}
