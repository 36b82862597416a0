/* SPDX-License-Identifier: MIT */
/*
 * sieved_parse_test - unit tests of the ManageSieve parser and of the
 * script directory (lib/sieve/sieve_user) that sieved serves
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sieve/sieve_user.h"
#include "str.h"
#include "test.h"

#include "sieved.h"

/* sieved.c holds main and this; the test links the other objects */
struct sieved_settings sieved_settings;

static const struct {
	const char *cmd;	/* "\n" stands for CRLF inside literals */
	enum sieved_cmd_id id;	/* NONE = must fail */
	unsigned nargs;
	const char *arg0;
} cases[] = {
	{ "CAPABILITY", SIEVED_CMD_CAPABILITY, 0, NULL },
	{ "capability", SIEVED_CMD_CAPABILITY, 0, NULL },
	{ "CAPABILITY ", SIEVED_CMD_NONE, 0, NULL },
	{ "LOGOUT \"x\"", SIEVED_CMD_NONE, 0, NULL },
	{ "NOOP", SIEVED_CMD_NOOP, 0, NULL },
	{ "NOOP \"tag\"", SIEVED_CMD_NOOP, 1, "tag" },
	{ "NOOP \"a\\\"b\\\\c\"", SIEVED_CMD_NOOP, 1, "a\"b\\c" },
	{ "NOOP \"a\\nb\"", SIEVED_CMD_NONE, 0, NULL },
	{ "NOOP \"open", SIEVED_CMD_NONE, 0, NULL },
	{ "NOOP  \"x\"", SIEVED_CMD_NONE, 0, NULL },
	{ "AUTHENTICATE \"PLAIN\"", SIEVED_CMD_AUTHENTICATE, 1, "PLAIN" },
	{ "AUTHENTICATE \"PLAIN\" \"AGEAYg==\"", SIEVED_CMD_AUTHENTICATE, 2, "PLAIN" },
	{ "AUTHENTICATE \"PLAIN\" {8+}\nAGEAYg==", SIEVED_CMD_AUTHENTICATE, 2, "PLAIN" },
	{ "AUTHENTICATE", SIEVED_CMD_NONE, 0, NULL },
	{ "PUTSCRIPT \"s\" {5+}\nkeep;", SIEVED_CMD_PUTSCRIPT, 2, "s" },
	{ "PUTSCRIPT \"s\" {5}\nkeep;", SIEVED_CMD_PUTSCRIPT, 2, "s" },
	{ "PUTSCRIPT {1+}\ns {0+}\n", SIEVED_CMD_PUTSCRIPT, 2, "s" },
	{ "PUTSCRIPT \"s\" {9+}\nkeep;", SIEVED_CMD_NONE, 0, NULL },
	{ "PUTSCRIPT \"s\" {5+}keep;", SIEVED_CMD_NONE, 0, NULL },
	{ "PUTSCRIPT \"s\" {99999999999+}\nkeep;", SIEVED_CMD_NONE, 0, NULL },
	{ "PUTSCRIPT \"s\"", SIEVED_CMD_NONE, 0, NULL },
	{ "PUTSCRIPT \"s\" 5", SIEVED_CMD_NONE, 0, NULL },
	{ "HAVESPACE \"s\" 100", SIEVED_CMD_HAVESPACE, 2, "s" },
	{ "HAVESPACE \"s\" 4294967296", SIEVED_CMD_NONE, 0, NULL },
	{ "HAVESPACE \"s\" \"100\"", SIEVED_CMD_NONE, 0, NULL },
	{ "RENAMESCRIPT \"a\" \"b\"", SIEVED_CMD_RENAMESCRIPT, 2, "a" },
	{ "SETACTIVE \"\"", SIEVED_CMD_SETACTIVE, 1, "" },
	{ "GETSCRIPT \"a\" \"b\"", SIEVED_CMD_NONE, 0, NULL },
	{ "DELETESCRIPT \"a\"", SIEVED_CMD_DELETESCRIPT, 1, "a" },
	{ "CHECKSCRIPT \"keep;\"", SIEVED_CMD_CHECKSCRIPT, 1, "keep;" },
	{ "UNAUTHENTICATE", SIEVED_CMD_UNAUTHENTICATE, 0, NULL },
	{ "STARTTLS", SIEVED_CMD_STARTTLS, 0, NULL },
	{ "LISTSCRIPTS", SIEVED_CMD_LISTSCRIPTS, 0, NULL },
	{ "FROB", SIEVED_CMD_NONE, 0, NULL },
	{ "", SIEVED_CMD_NONE, 0, NULL },
	{ "\"NOOP\"", SIEVED_CMD_NONE, 0, NULL },
};

static void
test_commands(void)
{
	struct sieved_cmd cmd;
	struct str *buf = str_new(0, 0), *u = str_new(0, 0);
	size_t i, k;
	bool ok;

	test_begin("command parser");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		str_clear(buf);
		for (k = 0; cases[i].cmd[k] != '\0'; k++)
			if (cases[i].cmd[k] == '\n')
				str_append_cstr(buf, "\r\n");
			else
				str_append_c(buf, cases[i].cmd[k]);
		ok = sieved_parse_command(str_c(buf), str_len(buf), &cmd);
		if (cases[i].id == SIEVED_CMD_NONE) {
			TEST_ASSERT(!ok && cmd.error != NULL);
			continue;
		}
		TEST_ASSERT(ok);
		TEST_ASSERT(cmd.id == cases[i].id);
		TEST_ASSERT(cmd.nargs == cases[i].nargs);
		if (cases[i].arg0 != NULL && ok) {
			sieved_unquote(&cmd.args[0], u);
			TEST_ASSERT_STR(str_c(u), cases[i].arg0);
		}
	}
	test_end();
	str_free(&buf);
	str_free(&u);
}

static void
test_announce(void)
{
	uint64_t n = 0;

	test_begin("literal announcements");
	TEST_ASSERT(sieved_literal_announce("PUTSCRIPT \"a\" {12+}", 19, &n) == 1 && n == 12);
	TEST_ASSERT(sieved_literal_announce("X {0}", 5, &n) == 1 && n == 0);
	TEST_ASSERT(sieved_literal_announce("X \"{5}\"", 7, &n) == 0);
	TEST_ASSERT(sieved_literal_announce("X {5+", 5, &n) == 0);
	TEST_ASSERT(sieved_literal_announce("X {}", 4, &n) == 0);
	TEST_ASSERT(sieved_literal_announce("X {4294967296+}", 15, &n) == -1);
	TEST_ASSERT(sieved_literal_announce("X {4294967295+}", 15, &n) == 1 &&
	    n == 4294967295u);
	test_end();
}

static void
test_strings(void)
{
	struct str *o = str_new(0, 0);

	test_begin("response strings");
	sieved_append_string(o, "a\"b", 3);
	TEST_ASSERT_STR(str_c(o), "\"a\\\"b\"");
	str_clear(o);
	sieved_append_string(o, "l1\nl2", 5);
	TEST_ASSERT_STR(str_c(o), "{5}\r\nl1\nl2");
	test_end();
	str_free(&o);
}

static void
test_names(void)
{
	test_begin("script names");
	TEST_ASSERT(sieve_user_name_ok("main", 4, NULL));
	TEST_ASSERT(sieve_user_name_ok("\xc3\xa9t\xc3\xa9", 5, NULL));
	TEST_ASSERT(!sieve_user_name_ok("", 0, NULL));
	TEST_ASSERT(!sieve_user_name_ok("a/b", 3, NULL));
	TEST_ASSERT(!sieve_user_name_ok("..", 2, NULL));
	TEST_ASSERT(!sieve_user_name_ok(".x", 2, NULL));
	TEST_ASSERT(!sieve_user_name_ok("a\tb", 3, NULL));
	TEST_ASSERT(!sieve_user_name_ok("a\0b", 3, NULL));
	TEST_ASSERT(!sieve_user_name_ok("\xc0\xaf", 2, NULL));
	TEST_ASSERT(!sieve_user_name_ok("\xe2\x80\xa8", 3, NULL));
	TEST_ASSERT(!sieve_user_name_ok("\xff", 1, NULL));
	test_end();
}

static void
test_user_dir(void)
{
	struct sieve_user_quota q = { 2, 100, 60 };
	struct sieve_user_script *list;
	struct str *dir = str_new(0, 0), *name = str_new(0, 0);
	struct str *path = str_new(0, 0), *text = str_new(0, 0);
	enum sieve_user_code code;
	const char *err;
	size_t count;
	unsigned char id[4] = { 1, 2, 3, 4 };

	test_begin("script directory");
	str_printf(dir, "%s/u/sieve", test_tmpdir());
	TEST_ASSERT(sieve_user_list(str_c(dir), &list, &count, &err) == 0 &&
	    count == 0);
	TEST_ASSERT(sieve_user_active(str_c(dir), name, path, &err) == 0);
	TEST_ASSERT(sieve_user_put(str_c(dir), "a", "keep;", 5, &q, &code, &err) == 0);
	TEST_ASSERT(sieve_user_put(str_c(dir), "b", "stop;", 5, &q, &code, &err) == 0);
	TEST_ASSERT(sieve_user_put(str_c(dir), "c", "stop;", 5, &q, &code, &err) < 0 &&
	    code == SIEVE_USER_QUOTA_MAXSCRIPTS);
	TEST_ASSERT(sieve_user_put(str_c(dir), "a", "#123456789012345678901234567890123456789012345678901234567890\n", 62, &q, &code, &err) < 0 &&
	    code == SIEVE_USER_QUOTA_MAXSIZE);
	TEST_ASSERT(sieve_user_put(str_c(dir), "../x", "keep;", 5, &q, &code, &err) < 0 &&
	    code == SIEVE_USER_BADNAME);
	TEST_ASSERT(sieve_user_activate(str_c(dir), "a", &code, &err) == 0);
	TEST_ASSERT(sieve_user_active(str_c(dir), name, path, &err) == 1);
	TEST_ASSERT_STR(str_c(name), "a");
	TEST_ASSERT(sieve_user_delete(str_c(dir), "a", &code, &err) < 0 &&
	    code == SIEVE_USER_ACTIVE_SCRIPT);
	TEST_ASSERT(sieve_user_rename(str_c(dir), "a", "b", &code, &err) < 0 &&
	    code == SIEVE_USER_ALREADYEXISTS);
	TEST_ASSERT(sieve_user_rename(str_c(dir), "a", "z", &code, &err) == 0);
	TEST_ASSERT(sieve_user_active(str_c(dir), name, path, &err) == 1);
	TEST_ASSERT_STR(str_c(name), "z");
	TEST_ASSERT(sieve_user_get(str_c(dir), "z", text, 0, &err) == 1);
	TEST_ASSERT_STR(str_c(text), "keep;");
	TEST_ASSERT(sieve_user_get(str_c(dir), "a", text, 0, &err) == 0);
	TEST_ASSERT(sieve_user_list(str_c(dir), &list, &count, &err) == 0 &&
	    count == 2);
	if (count == 2) {
		TEST_ASSERT_STR(list[0].name, "b");
		TEST_ASSERT(!list[0].active && list[1].active);
	}
	sieve_user_list_free(&list, count);
	TEST_ASSERT(sieve_user_activate(str_c(dir), "nope", &code, &err) < 0 &&
	    code == SIEVE_USER_NONEXISTENT);
	TEST_ASSERT(sieve_user_activate(str_c(dir), "", &code, &err) == 0);
	TEST_ASSERT(sieve_user_active(str_c(dir), name, path, &err) == 0);
	TEST_ASSERT(sieve_user_delete(str_c(dir), "z", &code, &err) == 0);
	/* a link pointing out of the directory is refused */
	str_clear(path);
	str_printf(path, "%s/active", str_c(dir));
	TEST_ASSERT(symlink("../../etc.sieve", str_c(path)) == 0);
	TEST_ASSERT(sieve_user_active(str_c(dir), name, NULL, &err) < 0);
	/* duplicate ids expire */
	TEST_ASSERT(sieve_user_dup_check(str_c(dir), id, 4, 1000, &err) == 0);
	TEST_ASSERT(sieve_user_dup_mark(str_c(dir), id, 4, 60, 1000, &err) == 0);
	TEST_ASSERT(sieve_user_dup_check(str_c(dir), id, 4, 1059, &err) == 1);
	TEST_ASSERT(sieve_user_dup_check(str_c(dir), id, 4, 1060, &err) == 0);
	TEST_ASSERT(sieve_user_dup_check(str_c(dir), id, 3, 1001, &err) == 0);
	test_end();
	str_free(&dir);
	str_free(&name);
	str_free(&path);
	str_free(&text);
}

int
main(void)
{
	test_commands();
	test_announce();
	test_strings();
	test_names();
	test_user_dir();
	return test_done();
}
