/* SPDX-License-Identifier: MIT */
/*
 * master_conf_test - unit tests for master_conf.c
 *
 * DESCRIPTION
 *	Error cases are a table of input and the exact error text; good
 *	input is checked field by field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "master_conf.h"
#include "str.h"
#include "test.h"

static const struct {
	const char *name;
	const char *in;
	const char *errors;	/* exact text of every error */
} error_cases[] = {
	{ "too few fields", "smtp inet n - n - -\n",
	  "m.conf:1: 7 fields; want at least 8: service type private user "
	  "chroot wakeup maxproc command\n" },
	{ "one field", "\n\nsmtpd\n",
	  "m.conf:3: 1 field; want at least 8: service type private user "
	  "chroot wakeup maxproc command\n" },
	{ "bad type", "smtp tcp n - n - - smtpd\n",
	  "m.conf:1: bad service type \"tcp\": want inet, unix or fifo\n" },
	{ "port zero", "0 inet n - n - - smtpd\n",
	  "m.conf:1: bad port in inet service \"0\": want a number from 1 to "
	  "65535\n" },
	{ "port too big", "65536 inet n - n - - smtpd\n",
	  "m.conf:1: bad port in inet service \"65536\": want a number from 1 "
	  "to 65535\n" },
	{ "service name port", "smtp inet n - n - - smtpd\n",
	  "m.conf:1: bad port in inet service \"smtp\": want a number from 1 "
	  "to 65535\n" },
	{ "empty port", "127.0.0.1: inet n - n - - smtpd\n",
	  "m.conf:1: bad port in inet service \"127.0.0.1:\": want a number "
	  "from 1 to 65535\n" },
	{ "signed port", "+25 inet n - n - - smtpd\n",
	  "m.conf:1: bad port in inet service \"+25\": want a number from 1 to "
	  "65535\n" },
	{ "empty host", ":25 inet n - n - - smtpd\n",
	  "m.conf:1: bad inet service \":25\": empty host before ':'\n" },
	{ "bad IPv4", "127.0.0.256:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad IPv4 address in \"127.0.0.256:25\"\n" },
	{ "short IPv4", "127.1:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad IPv4 address in \"127.1:25\"\n" },
	{ "bad IPv6", "[::g]:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad IPv6 address in \"[::g]:25\"\n" },
	{ "empty IPv6", "[]:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad IPv6 address in \"[]:25\"\n" },
	{ "IPv4 in brackets", "[127.0.0.1]:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad IPv6 address in \"[127.0.0.1]:25\"\n" },
	{ "IPv6 without port", "[::1] inet n - n - - smtpd\n",
	  "m.conf:1: bad inet service \"[::1]\": want [ipv6-address]:port\n" },
	{ "unclosed bracket", "[::1:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad inet service \"[::1:25\": want [ipv6-address]:port\n" },
	{ "IPv6 without brackets", "::1:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad inet service \"::1:25\": write an IPv6 address in "
	  "brackets, as [::1]:25\n" },
	{ "bad host name", "mail_host:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad host name in \"mail_host:25\"\n" },
	{ "host name with empty label", "a..b:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad host name in \"a..b:25\"\n" },
	{ "host label starts with -", "-a.b:25 inet n - n - - smtpd\n",
	  "m.conf:1: bad host name in \"-a.b:25\"\n" },
	{ "unix name with slash", "../x unix n - n - - cleanup\n",
	  "m.conf:1: bad unix service name \"../x\": want [A-Za-z0-9._-], at "
	  "most 100 bytes\n" },
	{ "unix name ..", ".. unix n - n - - cleanup\n",
	  "m.conf:1: bad unix service name \"..\": want [A-Za-z0-9._-], at "
	  "most 100 bytes\n" },
	{ "fifo name with colon", "a:b fifo n - n - - pickup\n",
	  "m.conf:1: bad fifo service name \"a:b\": want [A-Za-z0-9._-], at "
	  "most 100 bytes\n" },
	{ "bad private", "x unix yes - n - - x\n",
	  "m.conf:1: bad private field \"yes\": want y, n or -\n" },
	{ "bad user", "x unix n r/oot n - - x\n",
	  "m.conf:1: bad user \"r/oot\": want - or a user name "
	  "([A-Za-z0-9._-])\n" },
	{ "user starting with -", "x unix n -u n - - x\n",
	  "m.conf:1: bad user \"-u\": want - or a user name "
	  "([A-Za-z0-9._-])\n" },
	{ "bad chroot", "x unix n - Y - - x\n",
	  "m.conf:1: bad chroot field \"Y\": want y, n or -\n" },
	{ "bad wakeup", "x unix n - n 1m - x\n",
	  "m.conf:1: bad wakeup field \"1m\": want - or seconds (at most "
	  "604800), optionally followed by ?\n" },
	{ "wakeup only ?", "x unix n - n ? - x\n",
	  "m.conf:1: bad wakeup field \"?\": want - or seconds (at most "
	  "604800), optionally followed by ?\n" },
	{ "wakeup -?", "x unix n - n -? - x\n",
	  "m.conf:1: bad wakeup field \"-?\": want - or seconds (at most "
	  "604800), optionally followed by ?\n" },
	{ "wakeup 0?", "x unix n - n 0? - x\n",
	  "m.conf:1: bad wakeup field \"0?\": want - or seconds (at most "
	  "604800), optionally followed by ?\n" },
	{ "wakeup too big", "x unix n - n 604801 - x\n",
	  "m.conf:1: bad wakeup field \"604801\": want - or seconds (at most "
	  "604800), optionally followed by ?\n" },
	{ "bad maxproc", "x unix n - n - -1 x\n",
	  "m.conf:1: bad maxproc field \"-1\": want - or a number (0 = no "
	  "limit, at most 100000)\n" },
	{ "maxproc overflow", "x unix n - n - 99999999999999999999999 x\n",
	  "m.conf:1: bad maxproc field \"99999999999999999999999\": want - or "
	  "a number (0 = no limit, at most 100000)\n" },
	{ "relative command path", "x unix n - n - - bin/x\n",
	  "m.conf:1: bad command \"bin/x\": want a program name in "
	  "$daemon_directory ([A-Za-z0-9._-]) or an absolute path\n" },
	{ "command ..", "x unix n - n - - ..\n",
	  "m.conf:1: bad command \"..\": want a program name in "
	  "$daemon_directory ([A-Za-z0-9._-]) or an absolute path\n" },
	{ "absolute command with ..", "x unix n - n - - /usr/../bin/sh\n",
	  "m.conf:1: bad command path \"/usr/../bin/sh\": no \".\" or \"..\" "
	  "components, no trailing '/'\n" },
	{ "absolute command is a directory", "x unix n - n - - /usr/\n",
	  "m.conf:1: bad command path \"/usr/\": no \".\" or \"..\" "
	  "components, no trailing '/'\n" },
	{ "-o at the end", "x unix n - n - - x -v -o\n",
	  "m.conf:1: \"-o\" without name=value\n" },
	{ "-o without =", "x unix n - n - - x -o debug\n",
	  "m.conf:1: bad \"-o debug\": want -o name=value\n" },
	{ "-o empty name", "x unix n - n - - x -o =yes\n",
	  "m.conf:1: bad \"-o =yes\": want -o name=value\n" },
	{ "-o unknown name", "x unix n - n - - x -o no_such=1\n",
	  "m.conf:1: \"-o no_such=1\": unknown parameter name\n" },
	{ "duplicate service",
	  "# c\nx unix n - n - - x\ny unix n - n - - y\nx unix y - n - - z\n",
	  "m.conf:4: service x/unix is already defined at m.conf:2\n" },
	{ "duplicate inet service", "25 inet n - n - - a\n25 inet n - n - - b\n",
	  "m.conf:2: service 25/inet is already defined at m.conf:1\n" },
	{ "continuation first", "  x unix n - n - - x\n",
	  "m.conf:1: continuation line (starts with white space) without a "
	  "service line before it\n" },
	{ "bare CR", "x unix n - n - - x\r-v\n",
	  "m.conf:1: control character in line\n" },
	{ "escape in a comment", "# \033[2J\n",
	  "m.conf:1: control character in line\n" },
	{ "escapes field text", "x\177 unix n - n - - x\n",
	  "m.conf:1: control character in line\n" },
	{ "every error is reported",
	  "a unix n - n - - a\n"
	  "b unix q - n - - b\n"
	  "# comment\n"
	  "c unix n - n x - c\n"
	  "  -o bad\n"
	  "a unix n - n - - a\n",
	  "m.conf:2: bad private field \"q\": want y, n or -\n"
	  "m.conf:4: bad wakeup field \"x\": want - or seconds (at most "
	  "604800), optionally followed by ?\n"
	  "m.conf:4: bad \"-o bad\": want -o name=value\n"
	  "m.conf:6: service a/unix is already defined at m.conf:1\n" },
};

static void
test_errors(void)
{
	static struct master_conf dummy;
	struct str *errors = str_new(256, 0);
	struct master_conf *mc;
	size_t i, len;

	for (i = 0; i < N_ELEMENTS(error_cases); i++) {
		test_begin(error_cases[i].name);
		str_clear(errors);
		mc = &dummy;	/* must be reset to NULL */
		len = strlen(error_cases[i].in);
		TEST_ASSERT(master_conf_parse(error_cases[i].in, len, "m.conf",
		    &mc, errors) == -1);
		TEST_ASSERT(mc == NULL);
		TEST_ASSERT_STR(str_c(errors), error_cases[i].errors);
		/* The same with no place for errors. */
		TEST_ASSERT(master_conf_parse(error_cases[i].in, len, "m.conf",
		    &mc, NULL) == -1);
		test_end();
	}

	test_begin("NUL byte");
	{
		static const char in[] =
		    "x unix n - n - - x\ny unix n - n - - \0y\n"
		    "z unix n - n - - \0\n";

		str_clear(errors);
		TEST_ASSERT(master_conf_parse(in, sizeof(in) - 1, "m.conf", &mc,
		    errors) == -1);
		TEST_ASSERT(mc == NULL);
		TEST_ASSERT_STR(str_c(errors), "m.conf:2: NUL byte in line\n"
		    "m.conf:3: NUL byte in line\n");
	}
	test_end();
	str_free(&errors);
}

static void
test_good(void)
{
	static const char in[] =
	    "# service     type  private user chroot wakeup maxproc command\r\n"
	    "25            inet  n       -    n      -      -       smtpd\r\n"
	    "127.0.0.1:10025 inet -     -    y      -      10      smtpd\n"
	    "    -o debug=yes\n"
	    "\n"
	    "# between a line and its continuation\n"
	    "\t-o max_use=$default_process_limit\n"
	    "[::1]:587 inet n - - - 0 smtpd -o syslog_name=postern/submission\n"
	    "localhost:465 inet n postern - - - /usr/local/bin/x -v\n"
	    "mail.example.com.:143 inet n - n - - imapd\n"
	    "cleanup       unix  n       -    n      -      0       cleanup\n"
	    "qmgr          unix  -       -    -      300    1       qmgr\n"
	    "pickup        fifo  y       mail_1 n    60?    1       pickup\n"
	    "public.x-1    unix  -       -    n      -      -       x\n"
	    "25            unix  -       -    n      -      -       y";
	struct str *errors = str_new(0, 0);
	struct master_conf *mc = NULL;
	const struct master_service *s;

	test_begin("a good file, field by field");
	TEST_ASSERT(master_conf_parse(in, sizeof(in) - 1, "m.conf", &mc,
	    errors) == 0);
	TEST_ASSERT_STR(str_c(errors), "");
	TEST_ASSERT(mc != NULL && mc->count == 10);
	if (mc == NULL || mc->count != 10) {
		test_end();
		master_conf_free(&mc);
		str_free(&errors);
		return;
	}
	s = &mc->services[0];
	TEST_ASSERT_STR(s->name, "25");
	TEST_ASSERT(s->type == MASTER_SERVICE_INET && s->host == NULL &&
	    s->port == 25 && !s->private_ && s->user == NULL && !s->chroot &&
	    s->wakeup == 0 && !s->wakeup_if_used && s->maxproc == -1 &&
	    s->argc == 1 && s->line == 2);
	TEST_ASSERT_STR(s->argv[0], "smtpd");
	TEST_ASSERT(s->argv[1] == NULL);
	TEST_ASSERT_STR(s->file, "m.conf");

	s = &mc->services[1];
	TEST_ASSERT_STR(s->name, "127.0.0.1:10025");
	TEST_ASSERT_STR(s->host, "127.0.0.1");
	TEST_ASSERT(s->port == 10025 && !s->private_ && s->chroot &&
	    s->maxproc == 10 && s->argc == 5 && s->line == 3);
	TEST_ASSERT_STR(s->argv[1], "-o");
	TEST_ASSERT_STR(s->argv[2], "debug=yes");
	TEST_ASSERT_STR(s->argv[4], "max_use=$default_process_limit");
	TEST_ASSERT(s->argv[5] == NULL);

	s = &mc->services[2];
	TEST_ASSERT_STR(s->host, "::1");
	TEST_ASSERT(s->port == 587 && s->maxproc == 0 && s->argc == 3);

	s = &mc->services[3];
	TEST_ASSERT_STR(s->host, "localhost");
	TEST_ASSERT_STR(s->user, "postern");
	TEST_ASSERT_STR(s->argv[0], "/usr/local/bin/x");
	TEST_ASSERT(s->port == 465);

	s = &mc->services[4];
	TEST_ASSERT_STR(s->host, "mail.example.com.");
	TEST_ASSERT(s->port == 143);

	s = &mc->services[5];
	TEST_ASSERT(s->type == MASTER_SERVICE_UNIX && !s->private_ &&
	    s->maxproc == 0 && s->host == NULL && s->port == 0);

	s = &mc->services[6];
	TEST_ASSERT(s->type == MASTER_SERVICE_UNIX && s->private_ &&
	    !s->chroot && s->wakeup == 300 && !s->wakeup_if_used &&
	    s->maxproc == 1);

	s = &mc->services[7];
	TEST_ASSERT(s->type == MASTER_SERVICE_FIFO && s->private_ &&
	    s->wakeup == 60 && s->wakeup_if_used);
	TEST_ASSERT_STR(s->user, "mail_1");

	s = &mc->services[9];
	TEST_ASSERT(s->type == MASTER_SERVICE_UNIX && s->line == 15);
	TEST_ASSERT_STR(master_service_type_name(s->type), "unix");
	TEST_ASSERT_STR(master_service_type_name(MASTER_SERVICE_INET), "inet");
	TEST_ASSERT_STR(master_service_type_name(MASTER_SERVICE_FIFO), "fifo");
	master_conf_free(&mc);
	TEST_ASSERT(mc == NULL);
	master_conf_free(&mc);
	test_end();

	test_begin("empty and comment-only files have no services");
	TEST_ASSERT(master_conf_parse("", 0, "m.conf", &mc, errors) == 0);
	TEST_ASSERT(mc != NULL && mc->count == 0);
	master_conf_free(&mc);
	TEST_ASSERT(master_conf_parse("# x\n\n  # y\n", 11, "m.conf", &mc,
	    errors) == 0);
	TEST_ASSERT(mc != NULL && mc->count == 0);
	master_conf_free(&mc);
	TEST_ASSERT_STR(str_c(errors), "");
	test_end();
	str_free(&errors);
}

static void
test_same(void)
{
	static const char *const variants[] = {
		"26 inet n - n - - smtpd -v",
		"127.0.0.1:25 inet n - n - - smtpd -v",
		"25 inet y - n - - smtpd -v",
		"25 inet n nobody n - - smtpd -v",
		"25 inet n - y - - smtpd -v",
		"25 inet n - n 10 - smtpd -v",
		"25 inet n - n 10? - smtpd -v",
		"25 inet n - n - 5 smtpd -v",
		"25 inet n - n - 0 smtpd -v",
		"25 inet n - n - - smtpd -v -v",
		"25 inet n - n - - smtpd",
		"25 inet n - n - - lmtpd -v",
		"25 unix n - n - - smtpd -v",
	};
	static const char base[] = "25 inet n - n - - smtpd -v";
	struct master_conf *a = NULL, *b = NULL;
	struct str *in = str_new(0, 0);
	size_t i;

	test_begin("master_service_same sees every field that matters");
	TEST_ASSERT(master_conf_parse(base, strlen(base), "a", &a, NULL) == 0);
	str_set_cstr(in, "# moved down\n\n");
	str_append_cstr(in, base);
	TEST_ASSERT(master_conf_parse(str_c(in), str_len(in), "b", &b,
	    NULL) == 0);
	if (a == NULL || b == NULL) {
		test_end();
		return;
	}
	/* Another file and line are no reason to restart. */
	TEST_ASSERT(master_service_same(&a->services[0], &b->services[0]));
	TEST_ASSERT(master_service_same(&a->services[0], &a->services[0]));
	master_conf_free(&b);
	for (i = 0; i < N_ELEMENTS(variants); i++) {
		TEST_ASSERT(master_conf_parse(variants[i], strlen(variants[i]),
		    "b", &b, NULL) == 0);
		if (b == NULL)
			continue;
		if (!TEST_ASSERT(!master_service_same(&a->services[0],
		    &b->services[0])))
			printf("# same: %s\n", variants[i]);
		TEST_ASSERT(!master_service_same(&b->services[0],
		    &a->services[0]));
		master_conf_free(&b);
	}
	master_conf_free(&a);
	str_free(&in);
	test_end();
}

static void
test_limits(void)
{
	struct str *in = str_new(0, 0), *errors = str_new(0, 0);
	struct master_conf *mc = NULL;
	size_t i;

	test_begin("long lines");
	str_append_cstr(in, "x unix n - n - - x");
	for (i = 0; i < 1000; i++)
		str_append_cstr(in, " -v");
	str_append_c(in, '\n');
	TEST_ASSERT(master_conf_parse(str_c(in), str_len(in), "m.conf", &mc,
	    errors) == 0);
	TEST_ASSERT(mc != NULL && mc->services[0].argc == 1001);
	master_conf_free(&mc);

	str_set_cstr(in, "x unix n - n - - x ");
	for (i = 0; i < 9000; i++)
		str_append_c(in, 'v');
	str_append_cstr(in, "\ny unix n - n - - y\n");
	TEST_ASSERT(master_conf_parse(str_c(in), str_len(in), "m.conf", &mc,
	    errors) == -1);
	TEST_ASSERT_STR(str_c(errors),
	    "m.conf:1: line too long (more than 8192 bytes)\n");

	str_clear(errors);
	str_set_cstr(in, "x unix n - n - - x\n");
	for (i = 0; i < 3000; i++)
		str_append_cstr(in, "  -v\n");
	TEST_ASSERT(master_conf_parse(str_c(in), str_len(in), "m.conf", &mc,
	    errors) == -1);
	TEST_ASSERT_STR(str_c(errors), "m.conf:1: line too long (more than "
	    "8192 bytes with its continuation lines)\n");

	str_clear(errors);
	str_set_cstr(in, "x unix n - n - - x\n");
	for (i = 0; i < 101; i++)
		str_append_c(in, 'n');
	str_append_cstr(in, " unix n - n - - x\n");
	TEST_ASSERT(master_conf_parse(str_c(in), str_len(in), "m.conf", &mc,
	    errors) == -1);
	TEST_ASSERT(strstr(str_c(errors), "m.conf:2: bad unix service name") !=
	    NULL);
	str_free(&in);
	str_free(&errors);
	test_end();
}

static void
test_load(void)
{
	char *path = xasprintf("%s/master.conf", test_tmpdir());
	char *missing = xasprintf("%s/missing.conf", test_tmpdir());
	struct str *errors = str_new(0, 0);
	struct master_conf *mc = NULL;
	char *want;
	FILE *fp;

	test_begin("master_conf_load");
	fp = fopen(path, "w");
	TEST_ASSERT(fp != NULL);
	if (fp != NULL) {
		fputs("cleanup unix n - n - 0 cleanup\nx unix\n", fp);
		fclose(fp);
	}
	TEST_ASSERT(master_conf_load(path, &mc, errors) == -1);
	TEST_ASSERT(mc == NULL);
	want = xasprintf("%s:2: 2 fields; want at least 8: service type "
	    "private user chroot wakeup maxproc command\n", path);
	TEST_ASSERT_STR(str_c(errors), want);
	free(want);
	fp = fopen(path, "w");
	if (fp != NULL) {
		fputs("cleanup unix n - n - 0 cleanup\n", fp);
		fclose(fp);
	}
	str_clear(errors);
	TEST_ASSERT(master_conf_load(path, &mc, errors) == 0);
	TEST_ASSERT(mc != NULL && mc->count == 1);
	if (mc != NULL)
		TEST_ASSERT_STR(mc->services[0].file, path);
	master_conf_free(&mc);
	TEST_ASSERT(master_conf_load(missing, &mc, errors) == -1);
	TEST_ASSERT(strstr(str_c(errors), "open ") != NULL &&
	    strstr(str_c(errors), "missing.conf") != NULL);
	TEST_ASSERT(mc == NULL);
	free(path);
	free(missing);
	str_free(&errors);
	test_end();
}

int
main(void)
{
	test_errors();
	test_good();
	test_same();
	test_limits();
	test_load();
	return test_done();
}
