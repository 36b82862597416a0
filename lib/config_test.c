/* SPDX-License-Identifier: MIT */
/*
 * config_test - unit tests for config.c and config_params.c
 *
 * DESCRIPTION
 *	Error cases are a table: input text, expected result, and pieces
 *	of text the log must (or must not) contain. Log lines go to a file
 *	in the test directory, which each case empties and reads back.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "str.h"
#include "test.h"

static char *log_path;
static struct str *log_text;

/* log_reset - start a fresh log file */
static void
log_reset(void)
{
	int fd = open(log_path, O_WRONLY | O_TRUNC | O_CREAT, 0600);

	if (fd >= 0)
		close(fd);
}

/* log_read - read the log file into log_text */
static const char *
log_read(void)
{
	char buf[4096];
	ssize_t n;
	int fd;

	str_clear(log_text);
	if ((fd = open(log_path, O_RDONLY)) < 0)
		return str_c(log_text);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		str_append(log_text, buf, (size_t)n);
	close(fd);
	return str_c(log_text);
}

/* log_has - does the log contain s? (prints the log if not) */
static bool
log_has(const char *s)
{
	if (strstr(str_c(log_text), s) != NULL)
		return true;
	printf("# log lacks \"%s\"; log is:\n", s);
	printf("# %s\n", str_c(log_text));
	return false;
}

/* parse - parse text (with its length) into cfg; log captured */
static int
parse(struct config *cfg, const char *data, size_t len, const char **error_r)
{
	int ret;

	log_reset();
	ret = config_parse(cfg, data, len, "t.conf", error_r);
	log_read();
	return ret;
}

static const struct {
	const char *name;
	const char *in;
	int ret;
	const char *log[3];	/* must appear */
	const char *error;	/* *error_r */
} error_cases[] = {
	{ "missing '='", "myorigin example.com\n", -1,
	  { "t.conf:1: missing '=' after parameter name \"myorigin\"" },
	  "t.conf: 1 error" },
	{ "missing name", "debug = yes\n= value\n", -1,
	  { "t.conf:2: missing parameter name before '='" }, NULL },
	{ "bad name", "\n\nmy-origin = x\n", -1,
	  { "t.conf:3: bad parameter name \"my-origin\"" }, NULL },
	{ "name with control text is escaped", "my\tx y = 1\n", -1,
	  { "t.conf:1: missing '=' after parameter name \"my\"" }, NULL },
	{ "unknown name is a warning", "no_such_thing = 1\n", 0,
	  { "warning: t.conf:1: unknown parameter name \"no_such_thing\"" },
	  NULL },
	{ "bad int", "max_use = 10x\n", -1,
	  { "t.conf:1: parameter max_use: bad integer value", "\"10x\"" },
	  NULL },
	{ "negative int", "max_use = -1\n", -1,
	  { "t.conf:1: parameter max_use: bad integer" }, NULL },
	{ "empty int", "max_use =\n", -1,
	  { "t.conf:1: parameter max_use: bad integer" }, NULL },
	{ "int overflow", "max_use = 184467440737095516160\n", -1,
	  { "t.conf:1: parameter max_use: bad integer" }, NULL },
	{ "int with space", "max_use = 1 0\n", -1,
	  { "t.conf:1: parameter max_use: bad integer" }, NULL },
	{ "bad bool", "debug = maybe\n", -1,
	  { "t.conf:1: parameter debug: bad boolean value" }, NULL },
	{ "bad time unit", "max_idle = 10y\n", -1,
	  { "t.conf:1: parameter max_idle: bad time value" }, NULL },
	{ "time without number", "max_idle = s\n", -1,
	  { "t.conf:1: parameter max_idle: bad time value" }, NULL },
	{ "time two units", "max_idle = 1hs\n", -1,
	  { "parameter max_idle: bad time value" }, NULL },
	{ "time overflow", "max_idle = 100000000w\n", -1,
	  { "parameter max_idle: bad time value" }, NULL },
	{ "bad size", "message_size_limit = 10t\n", -1,
	  { "t.conf:1: parameter message_size_limit: bad size value" }, NULL },
	{ "size overflow", "message_size_limit = 17179869184g\n", -1,
	  { "parameter message_size_limit: bad size value" }, NULL },
	{ "bad value after expansion", "max_use = $myorigin\n", -1,
	  { "t.conf:1: parameter max_use: bad integer value" }, NULL },
	{ "self loop", "myorigin = $myorigin\n", -1,
	  { "t.conf:1: parameter myorigin: expansion loop: $myorigin -> "
	    "$myorigin" }, NULL },
	{ "loop through a default", "myhostname = x.$myorigin\n", -1,
	  { "t.conf:1: parameter myhostname: expansion loop" }, NULL },
	{ "loop through a computed default", "myhostname = a.$mydomain\n", -1,
	  { "t.conf:1: parameter myhostname: expansion loop" }, NULL },
	{ "loop of three", "a = $b\nb = ${c}\nc = $(a)\n", -1,
	  { "expansion loop: $a -> $b -> $c -> $a" }, "t.conf: 1 error" },
	{ "undefined reference", "myorigin = $nosuch.example\n", -1,
	  { "t.conf:1: parameter myorigin: reference to an undefined "
	    "parameter: nosuch" }, NULL },
	{ "unterminated reference", "myorigin = ${myhostname\n", -1,
	  { "t.conf:1: parameter myorigin: unterminated parameter reference" },
	  NULL },
	{ "mismatched brackets", "myorigin = $(myhostname}\n", -1,
	  { "t.conf:1: parameter myorigin: bad parameter name in reference: "
	    "$(myhostname}" }, NULL },
	{ "empty braces", "myorigin = ${}\n", -1,
	  { "bad parameter name in reference" }, NULL },
	{ "lone dollar at end", "myorigin = a$\n", -1,
	  { "t.conf:1: parameter myorigin: '$' not followed by a parameter "
	    "name" }, NULL },
	{ "dollar before punctuation", "myorigin = $-x\n", -1,
	  { "'$' not followed by a parameter name" }, NULL },
	{ "continuation first", "  indented = 1\nmyorigin = x\n", -1,
	  { "t.conf:1: continuation line (starts with white space) without" },
	  NULL },
	{ "bare CR", "myorigin = a\rb\n", -1,
	  { "t.conf:1: control character in line" }, NULL },
	{ "control character in a comment", "# a\033[1m\n", -1,
	  { "t.conf:1: control character in line" }, NULL },
	{ "DEL", "myorigin = \177\n", -1,
	  { "t.conf:1: control character in line" }, NULL },
	{ "several errors are all reported",
	  "max_use = x\ndebug = 2\nfoo\nmyorigin = $$ok\n", -1,
	  { "t.conf:1: parameter max_use", "t.conf:2: parameter debug",
	    "t.conf:3: missing '='" }, "t.conf: 3 errors" },
	{ "last setting wins", "max_use = x\nmax_use = 5\n", 0, { NULL },
	  NULL },
};

static void
test_errors(void)
{
	const char *error;
	size_t i, k;
	int ret;

	for (i = 0; i < N_ELEMENTS(error_cases); i++) {
		struct config *cfg = config_new("/tmp");

		test_begin(error_cases[i].name);
		error = NULL;
		ret = parse(cfg, error_cases[i].in, strlen(error_cases[i].in),
		    &error);
		TEST_ASSERT(ret == error_cases[i].ret);
		for (k = 0; k < N_ELEMENTS(error_cases[i].log) &&
		    error_cases[i].log[k] != NULL; k++)
			TEST_ASSERT(log_has(error_cases[i].log[k]));
		if (error_cases[i].ret == 0)
			TEST_ASSERT(strstr(str_c(log_text), "error:") == NULL);
		if (error_cases[i].error != NULL)
			TEST_ASSERT_STR(error, error_cases[i].error);
		config_free(&cfg);
		TEST_ASSERT(cfg == NULL);
		test_end();
	}
}

static void
test_nul(void)
{
	static const char in[] = "debug = yes\n# x\nmyorigin = a\0b\nmax_use = 3\n";
	static const char in2[] = "mynetworks = a\n b\0\n c\nmax_use=4";
	struct config *cfg = config_new(NULL);
	const char *error;

	test_begin("NUL byte rejected with file:line");
	TEST_ASSERT(parse(cfg, in, sizeof(in) - 1, &error) == -1);
	TEST_ASSERT(log_has("t.conf:3: NUL byte in line"));
	TEST_ASSERT_STR(error, "t.conf: 1 error");
	/* The other lines still count. */
	TEST_ASSERT(config_int(cfg, "max_use") == 3);
	TEST_ASSERT(config_bool(cfg, "debug"));
	TEST_ASSERT(config_is_default(cfg, "myorigin"));
	config_free(&cfg);
	test_end();

	test_begin("NUL byte in a continuation line drops the logical line");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, in2, sizeof(in2) - 1, &error) == -1);
	TEST_ASSERT(log_has("t.conf:2: NUL byte in line"));
	TEST_ASSERT(config_is_default(cfg, "mynetworks"));
	TEST_ASSERT(config_int(cfg, "max_use") == 4);
	config_free(&cfg);
	test_end();
}

static void
test_order(void)
{
	static const char in[] =
	    "max_idle = x\nmax_use = y\n\nmyorigin = $nosuch\ndebug = z\n";
	struct config *cfg = config_new(NULL);
	const char *error, *a, *b, *c, *d;

	test_begin("value errors are logged in file order");
	TEST_ASSERT(parse(cfg, in, sizeof(in) - 1, &error) == -1);
	TEST_ASSERT_STR(error, "t.conf: 4 errors");
	a = strstr(str_c(log_text), "t.conf:1: parameter max_idle");
	b = strstr(str_c(log_text), "t.conf:2: parameter max_use");
	c = strstr(str_c(log_text), "t.conf:4: parameter myorigin");
	d = strstr(str_c(log_text), "t.conf:5: parameter debug");
	TEST_ASSERT(a != NULL && b != NULL && c != NULL && d != NULL);
	TEST_ASSERT(a < b && b < c && c < d);
	config_free(&cfg);
	test_end();
}

static void
test_syntax(void)
{
	static const char in[] =
	    "# comment\r\n"
	    "\r\n"
	    "   # indented comment\n"
	    "mydestination = a,\n"
	    "   b,\r\n"
	    "\n"
	    "# a comment between a line and its continuation\n"
	    "\tc   \n"
	    "myhostname=mail.example.org\r\n"
	    "myorigin   =   $mydomain # not a comment  \n"
	    "max_use = 7";
	struct config *cfg = config_new(NULL);
	const char *const *list;
	const char *error;
	size_t n;

	test_begin("continuations, comments, CRLF, no final newline");
	TEST_ASSERT(parse(cfg, in, sizeof(in) - 1, &error) == 0);
	TEST_ASSERT_STR(str_c(log_text), "");
	TEST_ASSERT_STR(config_raw(cfg, "mydestination"), "a, b, c");
	TEST_ASSERT_STR(config_source(cfg, "mydestination"), "t.conf:4");
	list = config_list(cfg, "mydestination", &n);
	TEST_ASSERT(n == 3);
	if (n == 3) {
		TEST_ASSERT_STR(list[0], "a");
		TEST_ASSERT_STR(list[1], "b");
		TEST_ASSERT_STR(list[2], "c");
		TEST_ASSERT(list[3] == NULL);
	}
	TEST_ASSERT_STR(config_str(cfg, "myhostname"), "mail.example.org");
	TEST_ASSERT_STR(config_source(cfg, "myhostname"), "t.conf:9");
	TEST_ASSERT_STR(config_raw(cfg, "myorigin"), "$mydomain # not a comment");
	TEST_ASSERT_STR(config_str(cfg, "myorigin"), "example.org # not a comment");
	TEST_ASSERT(config_int(cfg, "max_use") == 7);
	TEST_ASSERT_STR(config_source(cfg, "max_use"), "t.conf:11");
	config_free(&cfg);
	test_end();

	test_begin("empty input and comment-only input");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, "", 0, &error) == 0);
	TEST_ASSERT(parse(cfg, "#\n#\n\n \n\t\n", 9, &error) == 0);
	TEST_ASSERT(config_is_default(cfg, "max_use"));
	config_free(&cfg);
	test_end();
}

static void
test_long_lines(void)
{
	struct str *in = str_new(0, 0);
	struct config *cfg;
	const char *error;
	size_t i;

	test_begin("a long line within the limit is kept whole");
	str_append_cstr(in, "mynetworks =");
	for (i = 0; i < 4000; i++)
		str_printf(in, " 10.%zu.%zu.0/24", i / 256, i % 256);
	str_append_c(in, '\n');
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == 0);
	{
		size_t n;

		(void)config_list(cfg, "mynetworks", &n);
		TEST_ASSERT(n == 4000);
	}
	config_free(&cfg);
	test_end();

	test_begin("a line over the limit is an error");
	str_clear(in);
	str_append_cstr(in, "debug = yes\nmyorigin = ");
	for (i = 0; i < 70000; i++)
		str_append_c(in, 'x');
	str_append_cstr(in, "\nmax_use = 9\n");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == -1);
	TEST_ASSERT(log_has("t.conf:2: line too long"));
	TEST_ASSERT(config_is_default(cfg, "myorigin"));
	TEST_ASSERT(config_int(cfg, "max_use") == 9);
	config_free(&cfg);
	test_end();

	test_begin("continuation lines over the limit are an error");
	str_clear(in);
	str_append_cstr(in, "myorigin = x\n");
	for (i = 0; i < 700; i++)
		str_append_cstr(in, "  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == -1);
	TEST_ASSERT(log_has("t.conf:1: line too long"));
	TEST_ASSERT_STR(error, "t.conf: 1 error");
	config_free(&cfg);
	test_end();

	test_begin("deep reference chains are an error");
	str_clear(in);
	for (i = 0; i < 80; i++)
		str_printf(in, "v%zu = $v%zu\n", i, i + 1);
	str_append_cstr(in, "v80 = end\nmyorigin = $v0\n");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == -1);
	TEST_ASSERT(log_has("nested too deeply"));
	config_free(&cfg);
	test_end();

	test_begin("exponential expansion stops at the value limit, quickly");
	str_clear(in);
	str_append_cstr(in, "a0 = xxxxxxxx\n");
	for (i = 1; i < 40; i++)
		str_printf(in, "a%zu = $a%zu$a%zu\n", i, i - 1, i - 1);
	str_append_cstr(in, "myorigin = $a39\n");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == -1);
	TEST_ASSERT(log_has("expanded value too long"));
	config_free(&cfg);
	test_end();

	test_begin("exponential expansion to empty is fast");
	str_clear(in);
	str_append_cstr(in, "b0 =\n");
	for (i = 1; i < 40; i++)
		str_printf(in, "b%zu = $b%zu$b%zu$b%zu$b%zu\n", i, i - 1, i - 1,
		    i - 1, i - 1);
	str_append_cstr(in, "myorigin = x$b39\n");
	cfg = config_new(NULL);
	TEST_ASSERT(parse(cfg, str_c(in), str_len(in), &error) == 0);
	TEST_ASSERT_STR(config_str(cfg, "myorigin"), "x");
	config_free(&cfg);
	test_end();
	str_free(&in);
}

static void
test_expansion(void)
{
	static const char in[] =
	    "myhostname = mx1.mail.example.com\n"
	    "site = example\n"
	    "myorigin = ${site}.$(site).$site.$$site.$$\n"
	    "data_directory = /srv/$site\n";
	struct config *cfg = config_new("/etc/x");
	const char *error;

	test_begin("$name, ${name}, $(name), $$ and user-defined names");
	TEST_ASSERT(parse(cfg, in, sizeof(in) - 1, &error) == 0);
	TEST_ASSERT(log_has("t.conf:2: unknown parameter name \"site\""));
	TEST_ASSERT_STR(config_str(cfg, "myorigin"),
	    "example.example.example.$site.$");
	TEST_ASSERT_STR(config_raw(cfg, "myorigin"),
	    "${site}.$(site).$site.$$site.$$");
	TEST_ASSERT_STR(config_str(cfg, "user_database"),
	    "/srv/example/users.db");
	TEST_ASSERT(config_is_default(cfg, "user_database"));
	TEST_ASSERT_STR(config_raw(cfg, "user_database"),
	    "$data_directory/users.db");
	TEST_ASSERT_STR(config_str(cfg, "mydomain"), "mail.example.com");
	TEST_ASSERT_STR(config_raw(cfg, "mydomain"), "mail.example.com");
	TEST_ASSERT_STR(config_str(cfg, "config_directory"), "/etc/x");
	TEST_ASSERT(config_is_default(cfg, "config_directory"));
	test_end();

	test_begin("config_set changes dependants and checks the result");
	TEST_ASSERT(config_set(cfg, "myhostname", "host", &error) == 0);
	TEST_ASSERT_STR(config_str(cfg, "mydomain"), "localdomain");
	TEST_ASSERT(config_set(cfg, "mydomain", "example.net", &error) == 0);
	TEST_ASSERT_STR(config_str(cfg, "mydomain"), "example.net");
	TEST_ASSERT(config_set(cfg, "myhostname", "a.$mydestination",
	    &error) == -1);
	TEST_ASSERT_STR(error, "expansion loop");
	TEST_ASSERT_STR(config_str(cfg, "myhostname"), "host");
	TEST_ASSERT(config_set(cfg, "max_use", "ten", &error) == -1);
	TEST_ASSERT_STR(error, "bad integer value (want a decimal number)");
	TEST_ASSERT(config_int(cfg, "max_use") == 100);
	TEST_ASSERT(config_is_default(cfg, "max_use"));
	TEST_ASSERT(config_set(cfg, "max_use", "$default_process_limit",
	    &error) == 0);
	TEST_ASSERT(config_int(cfg, "max_use") == 100);
	TEST_ASSERT(!config_is_default(cfg, "max_use"));
	TEST_ASSERT(config_source(cfg, "max_use") == NULL);
	TEST_ASSERT(config_set(cfg, "default_process_limit", "5", &error) == 0);
	TEST_ASSERT(config_int(cfg, "max_use") == 5);
	TEST_ASSERT(config_set(cfg, "site", "x", &error) == -1);
	TEST_ASSERT_STR(error, "unknown parameter name");
	TEST_ASSERT(config_set(cfg, "myorigin", "a\nb", &error) == -1);
	TEST_ASSERT_STR(error, "control character in value");
	TEST_ASSERT(config_set(cfg, "myorigin", "$nope", &error) == -1);
	TEST_ASSERT_STR(error, "reference to an undefined parameter");
	TEST_ASSERT(config_set(cfg, "debug", "On", &error) == 0);
	TEST_ASSERT(config_bool(cfg, "debug"));
	config_free(&cfg);
	test_end();

	test_begin("a computed default is not expanded twice");
	cfg = config_new(NULL);
	TEST_ASSERT(config_set(cfg, "myhostname", "a.$$b.$$c", &error) == 0);
	TEST_ASSERT_STR(config_str(cfg, "myhostname"), "a.$b.$c");
	TEST_ASSERT_STR(config_str(cfg, "mydomain"), "$b.$c");
	TEST_ASSERT_STR(config_raw(cfg, "mydomain"), "$b.$c");
	TEST_ASSERT(config_set(cfg, "myorigin", "$mydomain", &error) == 0);
	TEST_ASSERT_STR(config_str(cfg, "myorigin"), "$b.$c");
	config_free(&cfg);
	test_end();

	test_begin("computed defaults");
	cfg = config_new(NULL);
	TEST_ASSERT(config_raw(cfg, "myhostname") != NULL &&
	    config_raw(cfg, "myhostname")[0] != '\0');
	TEST_ASSERT_STR(config_str(cfg, "myorigin"),
	    config_str(cfg, "myhostname"));
	TEST_ASSERT(strchr(config_str(cfg, "mydomain"), '.') != NULL ||
	    strcmp(config_str(cfg, "mydomain"), "localdomain") == 0 ||
	    strlen(config_str(cfg, "mydomain")) > 0);
	TEST_ASSERT_STR(config_str(cfg, "config_directory"), "/etc/postern");
	TEST_ASSERT(config_source(cfg, "myhostname") == NULL);
	config_free(&cfg);
	test_end();
}

static void
test_types(void)
{
	static const struct {
		const char *value;
		unsigned secs;
	} times[] = {
		{ "0", 0 }, { "45", 45 }, { "45s", 45 }, { "2m", 120 },
		{ "3h", 10800 }, { "1d", 86400 }, { "2w", 1209600 },
		{ "4294967295", 4294967295u },
	};
	static const struct {
		const char *value;
		uint64_t bytes;
	} sizes[] = {
		{ "0", 0 }, { "1000", 1000 }, { "1k", 1024 }, { "1K", 1024 },
		{ "10m", 10485760 }, { "2G", 2147483648ull },
		{ "17179869183g", 17179869183ull << 30 },
	};
	static const struct {
		const char *value;
		bool on;
	} bools[] = {
		{ "yes", true }, { "YES", true }, { "true", true },
		{ "on", true }, { "1", true }, { "no", false },
		{ "False", false }, { "off", false }, { "0", false },
	};
	struct config *cfg = config_new(NULL);
	const char *const *list;
	const char *error;
	size_t i, n;

	test_begin("typed getters and defaults");
	TEST_ASSERT(config_int(cfg, "default_process_limit") == 100);
	TEST_ASSERT(config_int(cfg, "max_connections") == 1000);
	TEST_ASSERT(config_time(cfg, "max_idle") == 100);
	TEST_ASSERT(config_time(cfg, "service_throttle_time") == 60);
	TEST_ASSERT(config_time(cfg, "master_stop_timeout") == 10);
	TEST_ASSERT(config_size(cfg, "message_size_limit") == 10485760);
	TEST_ASSERT(!config_bool(cfg, "debug"));
	TEST_ASSERT_STR(config_str(cfg, "maillog_file"), "");
	TEST_ASSERT_STR(config_str(cfg, "user_database"),
	    "/var/lib/postern/users.db");
	list = config_list(cfg, "mynetworks", &n);
	TEST_ASSERT(n == 2);
	if (n == 2) {
		TEST_ASSERT_STR(list[0], "127.0.0.0/8");
		TEST_ASSERT_STR(list[1], "[::1]/128");
	}
	list = config_list(cfg, "inet_interfaces", &n);
	TEST_ASSERT(n == 1 && strcmp(list[0], "all") == 0);
	list = config_list(cfg, "tls_ca_file", &n);
	TEST_ASSERT(n == 0 && list[0] == NULL);
	test_end();

	test_begin("time values");
	for (i = 0; i < N_ELEMENTS(times); i++) {
		TEST_ASSERT(config_set(cfg, "max_idle", times[i].value,
		    &error) == 0);
		TEST_ASSERT(config_time(cfg, "max_idle") == times[i].secs);
	}
	TEST_ASSERT(config_set(cfg, "max_idle", "4294967296", &error) == -1);
	TEST_ASSERT(config_set(cfg, "max_idle", "-1s", &error) == -1);
	TEST_ASSERT(config_set(cfg, "max_idle", "1 s", &error) == -1);
	TEST_ASSERT(config_set(cfg, "max_idle", "", &error) == -1);
	test_end();

	test_begin("size values");
	for (i = 0; i < N_ELEMENTS(sizes); i++) {
		TEST_ASSERT(config_set(cfg, "message_size_limit",
		    sizes[i].value, &error) == 0);
		TEST_ASSERT(config_size(cfg, "message_size_limit") ==
		    sizes[i].bytes);
	}
	TEST_ASSERT(config_set(cfg, "message_size_limit", "17179869184g",
	    &error) == -1);
	TEST_ASSERT(config_set(cfg, "message_size_limit", "1kb", &error) == -1);
	TEST_ASSERT(config_set(cfg, "message_size_limit", "k", &error) == -1);
	test_end();

	test_begin("boolean values");
	for (i = 0; i < N_ELEMENTS(bools); i++) {
		TEST_ASSERT(config_set(cfg, "debug", bools[i].value,
		    &error) == 0);
		TEST_ASSERT(config_bool(cfg, "debug") == bools[i].on);
	}
	TEST_ASSERT(config_set(cfg, "debug", "2", &error) == -1);
	TEST_ASSERT(config_set(cfg, "debug", "", &error) == -1);
	test_end();

	test_begin("list splitting");
	TEST_ASSERT(config_set(cfg, "mynetworks", " ,a,,b\t c , ", &error) == 0);
	list = config_list(cfg, "mynetworks", &n);
	TEST_ASSERT(n == 3);
	if (n == 3) {
		TEST_ASSERT_STR(list[0], "a");
		TEST_ASSERT_STR(list[1], "b");
		TEST_ASSERT_STR(list[2], "c");
	}
	/* The same array until the value changes. */
	TEST_ASSERT(config_list(cfg, "mynetworks", &n) == list);
	TEST_ASSERT(config_set(cfg, "mynetworks", ",", &error) == 0);
	list = config_list(cfg, "mynetworks", &n);
	TEST_ASSERT(n == 0 && list[0] == NULL);
	config_free(&cfg);
	test_end();
}

static void
test_table(void)
{
	struct config *cfg = config_new(NULL);
	const struct config_param *p;
	size_t i, n;

	test_begin("the table is sorted and every default is valid");
	for (i = 0; config_params[i].name != NULL; i++) {
		TEST_ASSERT(config_params[i].desc != NULL &&
		    config_params[i].desc[0] != '\0');
		if (config_params[i + 1].name != NULL &&
		    !TEST_ASSERT(strcmp(config_params[i].name,
		    config_params[i + 1].name) < 0))
			printf("# out of order: %s\n", config_params[i].name);
		TEST_ASSERT(config_param_find(config_params[i].name) ==
		    &config_params[i]);
		TEST_ASSERT(config_str(cfg, config_params[i].name) != NULL);
		TEST_ASSERT(config_is_default(cfg, config_params[i].name));
		switch (config_params[i].type) {
		case CONFIG_INT:
			(void)config_int(cfg, config_params[i].name);
			break;
		case CONFIG_BOOL:
			(void)config_bool(cfg, config_params[i].name);
			break;
		case CONFIG_TIME:
			(void)config_time(cfg, config_params[i].name);
			break;
		case CONFIG_SIZE:
			(void)config_size(cfg, config_params[i].name);
			break;
		case CONFIG_LIST:
			(void)config_list(cfg, config_params[i].name, &n);
			break;
		case CONFIG_STR:
			break;
		}
	}
	TEST_ASSERT(i >= 29);
	TEST_ASSERT(config_param_find("") == NULL);
	TEST_ASSERT(config_param_find("zzz") == NULL);
	TEST_ASSERT(config_param_find("aaa") == NULL);
	TEST_ASSERT(config_param_find("max_usf") == NULL);
	p = config_param_find("queue_directory");
	TEST_ASSERT(p != NULL && p->type == CONFIG_STR &&
	    strcmp(p->def, "/var/spool/postern") == 0);
	config_free(&cfg);
	test_end();
}

static void
test_load(void)
{
	char *path = xasprintf("%s/postern.conf", test_tmpdir());
	char *missing = xasprintf("%s/nonexistent.conf", test_tmpdir());
	struct config *cfg = config_new(test_tmpdir());
	const char *error = NULL;
	FILE *fp;

	test_begin("config_load from a file");
	fp = fopen(path, "w");
	TEST_ASSERT(fp != NULL);
	if (fp != NULL) {
		fputs("# test\nmax_use = 12\nmax_idle = oops\n", fp);
		fclose(fp);
	}
	log_reset();
	TEST_ASSERT(config_load(cfg, path, &error) == -1);
	log_read();
	{
		char *want = xasprintf("%s:3: parameter max_idle: bad time", path);

		TEST_ASSERT(log_has(want));
		free(want);
		want = xasprintf("%s: 1 error", path);
		TEST_ASSERT_STR(error, want);
		free(want);
	}
	config_free(&cfg);
	cfg = config_new(NULL);
	TEST_ASSERT(config_load(cfg, missing, &error) == -1);
	TEST_ASSERT(error != NULL && strstr(error, "nonexistent.conf") != NULL);
	fp = fopen(path, "w");
	if (fp != NULL) {
		fputs("max_use = 12\n", fp);
		fclose(fp);
	}
	TEST_ASSERT(config_load(cfg, path, &error) == 0);
	TEST_ASSERT(config_int(cfg, "max_use") == 12);
	test_end();

	test_begin("global config");
	config_set_global(cfg);
	TEST_ASSERT(conf() == cfg);
	TEST_ASSERT(config_int(conf(), "max_use") == 12);
	config_set_global(config_new(NULL));
	TEST_ASSERT(config_int(conf(), "max_use") == 100);
	cfg = conf();
	config_free(&cfg);
	test_end();
	free(path);
	free(missing);
}

int
main(void)
{
	log_init("config_test");
	log_path = xasprintf("%s/log", test_tmpdir());
	log_text = str_new(1024, 0);
	log_reset();
	if (log_open_file(log_path) < 0) {
		printf("Bail out! cannot open %s\n", log_path);
		return 1;
	}
	test_errors();
	test_nul();
	test_order();
	test_syntax();
	test_long_lines();
	test_expansion();
	test_types();
	test_table();
	test_load();
	str_free(&log_text);
	free(log_path);
	return test_done();
}
