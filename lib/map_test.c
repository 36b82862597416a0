/* SPDX-License-Identifier: MIT */
/* map_test - unit tests for map.c */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "map.h"
#include "safe_file.h"
#include "str.h"
#include "test.h"

/* tpath - a path in the test directory (slot picks one of a few buffers) */
static const char *
tpath(int slot, const char *name)
{
	static char buf[4][PATH_MAX];

	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", test_tmpdir(), name);
	return buf[slot];
}

/* collect_cb - append "key=value\n" */
static int
collect_cb(void *ctx, const char *key, const char *value)
{
	struct str *out = ctx;

	return str_printf(out, "%s=%s\n", key, value);
}

/* refuse_cb - fail on the key "bad" */
static int
refuse_cb(void *ctx, const char *key, const char *value)
{
	(void)ctx;
	(void)value;
	return strcmp(key, "bad") == 0 ? -1 : 0;
}

/* parse - run map_parse_text on a C string */
static int
parse(const char *text, int flags, struct str *out, struct str *errors)
{
	str_clear(out);
	str_clear(errors);
	return map_parse_text(text, strlen(text), "src", flags, collect_cb,
	    out, errors);
}

static void
test_parse(void)
{
	struct str *out = str_new(0, 0), *err = str_new(0, 0);

	test_begin("map_parse_text format");
	TEST_ASSERT(parse("# comment\n"
	    "\n"
	    "Key1 value one  \n"
	    "  # indented comment\n"
	    "key2:\tv2\n"
	    "root: a,\n"
	    "   b,\r\n"
	    "\t c\n"
	    "\n"
	    "   \t\n"
	    "2001:db8::1 REJECT\n"
	    "2001:db8:: OK\n"
	    "lonely\n"
	    "  value on next line\n"
	    "last no newline", 0, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "key1=value one\n"
	    "key2=v2\n"
	    "root=a, b, c\n"
	    "2001:db8::1=REJECT\n"
	    "2001:db8::=OK\n"
	    "lonely=value on next line\n"
	    "last=no newline\n");
	TEST_ASSERT_STR(str_c(err), "");

	TEST_ASSERT(parse("MiXeD VaLuE\n", MAP_CASE_SENSITIVE, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "MiXeD=VaLuE\n");
	TEST_ASSERT(parse("", 0, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "");
	TEST_ASSERT(parse("\n\n#x", 0, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "");
	test_end();

	test_begin("map_parse_text duplicates warn and keep the first");
	TEST_ASSERT(parse("a 1\nb 2\nA 3\n", 0, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "a=1\nb=2\n");
	TEST_ASSERT_STR(str_c(err),
	    "src:3: warning: duplicate key \"a\" ignored, keeping line 1\n");
	TEST_ASSERT(parse("a 1\nA 3\n", MAP_CASE_SENSITIVE, out, err) == 0);
	TEST_ASSERT_STR(str_c(out), "a=1\nA=3\n");
	test_end();

	str_free(&out);
	str_free(&err);
}

static void
test_parse_errors(void)
{
	struct str *out = str_new(0, 0), *err = str_new(0, 0), *big;
	static const char nul[] = "a 1\nb x\0y\n  more\nc 3\n";
	size_t i;

	test_begin("map_parse_text errors name FILE:LINE");
	TEST_ASSERT(parse("a 1\nnovalue\nb 2\n", 0, out, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:2: key \"novalue\" without a value\n");
	TEST_ASSERT_STR(str_c(out), "a=1\nb=2\n");

	TEST_ASSERT(parse("  orphan\nx y\n", 0, out, err) == -1);
	TEST_ASSERT_STR(str_c(err),
	    "src:1: continuation line without a preceding entry\n");

	TEST_ASSERT(parse("ok 1\n: value\n  cont\nz 2\n", 0, out, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:2: empty key\n");
	TEST_ASSERT_STR(str_c(out), "ok=1\nz=2\n");

	str_clear(out);
	str_clear(err);
	TEST_ASSERT(map_parse_text(nul, sizeof(nul) - 1, "src", 0, collect_cb,
	    out, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:2: NUL byte in line\n");
	TEST_ASSERT_STR(str_c(out), "a=1\nc=3\n");

	big = str_new(0, 0);
	for (i = 0; i < 1024; i++)
		str_append_c(big, 'k');
	str_append_cstr(big, " v\n");
	TEST_ASSERT(parse(str_c(big), 0, out, err) == 0);
	str_clear(big);
	str_append_cstr(big, "a b\n");
	for (i = 0; i < 1025; i++)
		str_append_c(big, 'k');
	str_append_cstr(big, " v\n");
	TEST_ASSERT(parse(str_c(big), 0, out, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:2: key longer than 1024 bytes\n");
	str_free(&big);

	/* Several errors are all reported; the callback can stop the parse. */
	TEST_ASSERT(parse("x\ny\nz 1\n", 0, out, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:1: key \"x\" without a value\n"
	    "src:2: key \"y\" without a value\n");
	str_clear(err);
	TEST_ASSERT(map_parse_text("a 1\nbad 2\nc 3\n", 14, "src", 0,
	    refuse_cb, NULL, err) == -1);
	TEST_ASSERT_STR(str_c(err), "src:2: cannot store key \"bad\"\n");
	/* Untrusted bytes are escaped in messages. */
	TEST_ASSERT(parse("k\033y\n", 0, out, err) == -1);
	TEST_ASSERT(strchr(str_c(err), '\033') == NULL);
	test_end();

	test_begin("map_parse_text error cap");
	big = str_new(0, 0);
	for (i = 0; i < 500; i++)
		str_append_cstr(big, "x\n");
	TEST_ASSERT(parse(str_c(big), 0, out, err) == -1);
	TEST_ASSERT(strstr(str_c(err), "src: too many errors, giving up\n") != NULL);
	TEST_ASSERT(strstr(str_c(err), "src:101:") == NULL);
	str_free(&big);
	test_end();

	str_free(&out);
	str_free(&err);
}

/* write_src - replace a source file */
static void
write_src(const char *path, const char *text)
{
	TEST_ASSERT(safe_file_replace(path, text, strlen(text), 0640) == 0);
}

/* count_tmp - temporaries left in the test directory */
static int
count_tmp(void)
{
	DIR *d = opendir(test_tmpdir());
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_db(void)
{
	const char *src = tpath(0, "aliases");
	struct str *err = str_new(0, 0), *val = str_new(0, 0);
	char spec[PATH_MAX + 8];
	const char *error;
	struct map *map, *cs;
	struct stat st;

	test_begin("map db: build and lookup");
	write_src(src, "# aliases\nPostmaster: root\nroot: admin@Example.COM,\n"
	    "  other\nabuse root\n");
	snprintf(spec, sizeof(spec), "db:%s", src);
	TEST_ASSERT(map_build(spec, 0, err) == 0);
	TEST_ASSERT_STR(str_c(err), "");
	TEST_ASSERT(stat(tpath(1, "aliases.db"), &st) == 0 &&
	    (st.st_mode & 0777) == 0640);
	TEST_ASSERT(count_tmp() == 0);
	map = map_open(spec, 0, &error);
	TEST_ASSERT(map != NULL);
	if (map == NULL) {
		test_end();
		return;
	}
	TEST_ASSERT_STR(map_spec(map), spec);
	TEST_ASSERT(map_lookup(map, "postmaster", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "root");
	TEST_ASSERT(map_lookup(map, "POSTMASTER", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "root");
	TEST_ASSERT(map_lookup(map, "Root", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "admin@Example.COM, other");
	TEST_ASSERT(map_lookup(map, "nobody", val, &error) == 0);
	TEST_ASSERT(map_lookup(map, "", val, &error) == 0);
	/* A spec without a type is db:. */
	cs = map_open(src, 0, &error);
	TEST_ASSERT(cs != NULL && map_lookup(cs, "abuse", val, &error) == 1);
	map_close(&cs);
	test_end();

	test_begin("map db: replacement seen by an open reader");
	write_src(src, "postmaster new\nadded yes\n");
	TEST_ASSERT(map_build(spec, 0, err) == 0);
	TEST_ASSERT(map_lookup(map, "postmaster", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "new");
	TEST_ASSERT(map_lookup(map, "added", val, &error) == 1);
	TEST_ASSERT(map_lookup(map, "root", val, &error) == 0);
	/* A failed build leaves the old database in place. */
	write_src(src, "postmaster newer\nbroken\n");
	str_clear(err);
	TEST_ASSERT(map_build(spec, 0, err) == -1);
	TEST_ASSERT(strstr(str_c(err), ":2: key \"broken\" without a value") != NULL);
	TEST_ASSERT(count_tmp() == 0);
	TEST_ASSERT(map_lookup(map, "postmaster", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "new");
	map_close(&map);
	TEST_ASSERT(map == NULL);
	map_close(&map);
	test_end();

	test_begin("map db: case-sensitive");
	write_src(src, "MiXed 1\nmixed 2\n");
	str_clear(err);
	TEST_ASSERT(map_build(spec, MAP_CASE_SENSITIVE, err) == 0);
	cs = map_open(spec, MAP_CASE_SENSITIVE, &error);
	TEST_ASSERT(cs != NULL);
	TEST_ASSERT(map_lookup(cs, "MiXed", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "1");
	TEST_ASSERT(map_lookup(cs, "mixed", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "2");
	TEST_ASSERT(map_lookup(cs, "MIXED", val, &error) == 0);
	map_close(&cs);
	/* Duplicates after folding: a warning, build succeeds. */
	str_clear(err);
	TEST_ASSERT(map_build(spec, 0, err) == 0);
	TEST_ASSERT(strstr(str_c(err), ":2: warning: duplicate key") != NULL);
	test_end();

	str_free(&err);
	str_free(&val);
}

static void
test_file(void)
{
	const char *src = tpath(0, "access");
	struct str *err = str_new(0, 0), *val = str_new(0, 0);
	char spec[PATH_MAX + 8];
	const char *error;
	struct map *map;

	test_begin("map file: lookup and reload");
	write_src(src, "example.com REJECT\nGood.Example OK\n");
	snprintf(spec, sizeof(spec), "file:%s", src);
	map = map_open(spec, 0, &error);
	TEST_ASSERT(map != NULL);
	if (map == NULL) {
		test_end();
		return;
	}
	TEST_ASSERT(map_lookup(map, "EXAMPLE.com", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "REJECT");
	TEST_ASSERT(map_lookup(map, "good.example", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "OK");
	TEST_ASSERT(map_lookup(map, "other", val, &error) == 0);
	TEST_ASSERT(map_build(spec, 0, err) == 0);

	write_src(src, "example.com OK\n");
	TEST_ASSERT(map_lookup(map, "example.com", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "OK");
	TEST_ASSERT(map_lookup(map, "good.example", val, &error) == 0);

	/* A bad replacement: lookups fail (defer) until it is fixed. */
	write_src(src, "example.com OK\nbad\n");
	TEST_ASSERT(map_lookup(map, "example.com", val, &error) == -1);
	TEST_ASSERT(strstr(error, "access:2: key \"bad\" without a value") != NULL);
	str_clear(err);
	TEST_ASSERT(map_build(spec, 0, err) == -1);
	TEST_ASSERT(strstr(str_c(err), "access:2: key \"bad\"") != NULL);
	write_src(src, "example.com FIXED\n");
	TEST_ASSERT(map_lookup(map, "example.com", val, &error) == 1);
	TEST_ASSERT_STR(str_c(val), "FIXED");
	map_close(&map);
	test_end();

	str_free(&err);
	str_free(&val);
}

static void
test_open_errors(void)
{
	struct str *err = str_new(0, 0), *val = str_new(0, 0);
	char spec[PATH_MAX + 8];
	const char *error = NULL;
	struct map *map;

	test_begin("map open and build errors");
	snprintf(spec, sizeof(spec), "db:%s", tpath(0, "missing"));
	TEST_ASSERT(map_open(spec, 0, &error) == NULL);
	TEST_ASSERT(error != NULL && strstr(error, "missing.db") != NULL &&
	    strstr(error, "No such file") != NULL);
	snprintf(spec, sizeof(spec), "file:%s", tpath(0, "missing"));
	TEST_ASSERT(map_open(spec, 0, &error) == NULL);
	TEST_ASSERT(strstr(error, "No such file") != NULL);
	TEST_ASSERT(map_open("ldapx:foo", 0, &error) == NULL);
	TEST_ASSERT_STR(error, "ldapx:foo: unsupported map type");
	TEST_ASSERT(map_open("file:", 0, &error) == NULL);
	TEST_ASSERT(map_build(spec, 0, err) == -1);
	TEST_ASSERT(strstr(str_c(err), "No such file") != NULL);

	/* Not a Berkeley DB file. */
	write_src(tpath(0, "junk.db"), "this is not a btree\n");
	snprintf(spec, sizeof(spec), "db:%s", tpath(0, "junk"));
	TEST_ASSERT(map_open(spec, 0, &error) == NULL);

	/* The file vanishing under an open map is an error, not a crash. */
	write_src(tpath(0, "gone"), "a b\n");
	snprintf(spec, sizeof(spec), "file:%s", tpath(0, "gone"));
	map = map_open(spec, 0, &error);
	TEST_ASSERT(map != NULL);
	unlink(tpath(0, "gone"));
	TEST_ASSERT(map_lookup(map, "a", val, &error) == -1);
	map_close(&map);
	test_end();

	str_free(&err);
	str_free(&val);
}

int
main(void)
{
	test_parse();
	test_parse_errors();
	test_db();
	test_file();
	test_open_errors();
	return test_done();
}
