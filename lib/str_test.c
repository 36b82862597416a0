/* SPDX-License-Identifier: MIT */
/* str_test - unit tests for str.c */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "test.h"

static void
test_append(void)
{
	struct str *s = str_new(2, 0);

	test_begin("str append grows and keeps NUL");
	TEST_ASSERT(str_append(s, "ab\0cd", 5) == 0);
	TEST_ASSERT(str_len(s) == 5);
	TEST_ASSERT(memcmp(str_c(s), "ab\0cd", 6) == 0);
	TEST_ASSERT(str_printf(s, "%d-%s", 42, "x") == 0);
	TEST_ASSERT(str_len(s) == 9);
	TEST_ASSERT(memcmp(str_c(s) + 5, "42-x", 5) == 0);
	str_delete_head(s, 3);
	TEST_ASSERT(str_len(s) == 6);
	TEST_ASSERT_STR(str_c(s), "cd42-x");
	str_free(&s);
	TEST_ASSERT(s == NULL);
	str_free(&s);
	test_end();
}

static void
test_max(void)
{
	struct str *s = str_new(0, 8);

	test_begin("str refuses to grow past its maximum");
	TEST_ASSERT(str_append_cstr(s, "12345678") == 0);
	errno = 0;
	TEST_ASSERT(str_append_c(s, '9') == -1 && errno == E2BIG);
	TEST_ASSERT_STR(str_c(s), "12345678");
	str_clear(s);
	TEST_ASSERT(str_printf(s, "%s", "123456789") == -1);
	TEST_ASSERT(str_len(s) == 0 && str_c(s)[0] == '\0');
	TEST_ASSERT(str_set_cstr(s, "abcdefghi") == -1);
	TEST_ASSERT(str_reserve(s, 9) == NULL);
	TEST_ASSERT(str_reserve(s, 8) != NULL);
	TEST_ASSERT(str_set_max(s, 0) == 0);
	TEST_ASSERT(str_append_cstr(s, "0123456789abcdef") == 0);
	TEST_ASSERT(str_set_max(s, 4) == -1);
	str_free(&s);
	test_end();
}

static void
test_printf_long(void)
{
	struct str *s = str_new(4, 0);
	char big[1000];

	test_begin("str printf longer than the buffer");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	TEST_ASSERT(str_printf(s, "<%s>", big) == 0);
	TEST_ASSERT(str_len(s) == 1001);
	TEST_ASSERT(str_c(s)[1000] == '>' && str_c(s)[1001] == '\0');
	str_free(&s);
	test_end();
}

static void
test_misc(void)
{
	struct str *s = str_new_cstr("line\r\n");
	unsigned long v;
	char buf[4];

	test_begin("chomp, printable, numbers, strlcpy");
	str_chomp(s);
	TEST_ASSERT(str_equals_cstr(s, "line"));
	str_clear(s);
	mem_printable(s, "a\r\n\\\x80", 5, 100);
	TEST_ASSERT_STR(str_c(s), "a\\015\\012\\134\\200");
	str_clear(s);
	mem_printable(s, "abcdefgh", 8, 4);
	TEST_ASSERT_STR(str_c(s), "abcd...");
	TEST_ASSERT(str_to_ulong("12345", 5, ULONG_MAX, &v) && v == 12345);
	TEST_ASSERT(!str_to_ulong("", 0, 10, &v));
	TEST_ASSERT(!str_to_ulong("+1", 2, 10, &v));
	TEST_ASSERT(!str_to_ulong("11", 2, 10, &v));
	TEST_ASSERT(str_to_ulong("10", 2, 10, &v) && v == 10);
	TEST_ASSERT(!str_to_ulong("5", 1, 3, &v));
	TEST_ASSERT(!str_to_ulong("18446744073709551616", 20, ULONG_MAX, &v));
	TEST_ASSERT(str_to_ulong("18446744073709551615", 20, ULONG_MAX, &v) && v == ULONG_MAX);
	TEST_ASSERT(pst_strlcpy(buf, "abcdef", sizeof(buf)) == 6);
	TEST_ASSERT_STR(buf, "abc");
	char *p = str_steal(&s);
	TEST_ASSERT(s == NULL && p != NULL);
	free(p);
	test_end();
}

int
main(void)
{
	test_append();
	test_max();
	test_printf_long();
	test_misc();
	return test_done();
}
