/* SPDX-License-Identifier: MIT */
/*
 * test - a small TAP unit-test harness (run by prove(1))
 *
 *	int main(void) {
 *		test_begin("str append");
 *		TEST_ASSERT(str_len(s) == 3);
 *		TEST_ASSERT_STR(str_c(s), "abc");
 *		test_end();
 *		return test_done();
 *	}
 *
 * Each test_begin/test_end pair is one TAP test point ("ok N - name"); a
 * failed assertion prints a diagnostic with file and line and marks the
 * current point failed, and the test goes on. test_done() prints the plan
 * and returns the exit status (non-zero if anything failed).
 */
#ifndef POSTERN_TEST_H
#define POSTERN_TEST_H

#include <stdbool.h>
#include <stddef.h>

void test_begin(const char *name);
void test_end(void);
int test_done(void);
bool test_assert_fail(const char *expr, const char *file, int line);
bool test_assert_strfail(const char *got, const char *want, const char *file, int line);
/* test_tmpdir - a fresh temporary directory for this test binary (removed at test_done) */
const char *test_tmpdir(void);

#define TEST_ASSERT(expr) \
	((expr) ? true : test_assert_fail(#expr, __FILE__, __LINE__))
#define TEST_ASSERT_STR(got, want) \
	test_assert_strfail((got), (want), __FILE__, __LINE__)

#endif
