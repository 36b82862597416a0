/* SPDX-License-Identifier: MIT */
/*
 * mime_test - unit and golden tests for mime.c, imap_envelope.c,
 * header.c, header_address.c, rfc2047.c and mime_decode.c
 *
 * The golden files are lib/testdata/mime/NAME.eml with the expected
 * ENVELOPE, BODY and BODYSTRUCTURE in NAME.ref (checked by hand against
 * Dovecot 2.3, whose own output is kept in NAME.dovecot; see README
 * there). MIME_TEST_REGEN=1 rewrites the .ref files from the current
 * output. The directory is found from $POSTERN_SRCDIR, else by looking
 * upwards from the working directory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "header.h"
#include "header_address.h"
#include "imap_envelope.h"
#include "mime.h"
#include "mime_decode.h"
#include "rfc2047.h"
#include "str.h"
#include "test.h"

static char testdir[1024];

/* find_testdir - locate lib/testdata/mime */
static bool
find_testdir(void)
{
	static const char *const rel[] = {
		"lib/testdata/mime", "../lib/testdata/mime",
		"../../lib/testdata/mime", "../../../lib/testdata/mime",
	};
	const char *src = getenv("POSTERN_SRCDIR");
	DIR *d;
	size_t i;

	if (src != NULL) {
		snprintf(testdir, sizeof(testdir), "%s/lib/testdata/mime", src);
		if ((d = opendir(testdir)) != NULL) {
			closedir(d);
			return true;
		}
	}
	for (i = 0; i < N_ELEMENTS(rel); i++) {
		if ((d = opendir(rel[i])) != NULL) {
			closedir(d);
			snprintf(testdir, sizeof(testdir), "%s", rel[i]);
			return true;
		}
	}
	return false;
}

/* read_file - the whole file into a new str, or NULL */
static struct str *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct str *s;
	char buf[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	s = str_new(8192, 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		(void)str_append(s, buf, n);
	fclose(f);
	return s;
}

/* load - a test message by name */
static struct str *
load(const char *name)
{
	char path[1400];

	snprintf(path, sizeof(path), "%s/%s.eml", testdir, name);
	return read_file(path);
}

/* render - the golden-file text for a message */
static void
render(const char *p, size_t n, struct str *out)
{
	struct str *e = str_new(0, 0), *b = str_new(0, 0), *bs = str_new(0, 0);

	TEST_ASSERT(imap_envelope_message(p, n, NULL, e, b, bs) == 0);
	str_printf(out, "ENVELOPE %s\nBODY %s\nBODYSTRUCTURE %s\n",
	    str_c(e), str_c(b), str_c(bs));
	str_free(&e);
	str_free(&b);
	str_free(&bs);
}

/* check_tree - structural invariants of a parsed part */
static bool
check_tree(const struct mime_part *part, size_t lo, size_t hi)
{
	const struct mime_part *c;
	size_t prev_end = lo;
	unsigned int count = 0;

	if (part->hdr_offset < lo || part->body_offset !=
	    part->hdr_offset + part->hdr_size ||
	    part->body_offset + part->body_size > hi)
		return false;
	for (c = part->children; c != NULL; c = c->next) {
		if (c->parent != part || c->depth != part->depth + 1 ||
		    c->hdr_offset < prev_end)
			return false;
		if (!check_tree(c, part->body_offset,
		    part->body_offset + part->body_size))
			return false;
		prev_end = c->body_offset + c->body_size;
		count++;
	}
	return count == part->child_count;
}

static void
test_golden(void)
{
	struct dirent *de;
	DIR *d;
	char path[1400];
	unsigned int files = 0;
	bool regen = getenv("MIME_TEST_REGEN") != NULL;

	test_begin("golden ENVELOPE/BODY/BODYSTRUCTURE files");
	d = opendir(testdir);
	TEST_ASSERT(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct str *msg, *want, *got;

		if (len < 5 || strcmp(de->d_name + len - 4, ".eml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", testdir, de->d_name);
		msg = read_file(path);
		TEST_ASSERT(msg != NULL);
		if (msg == NULL)
			continue;
		got = str_new(0, 0);
		render(str_c(msg), str_len(msg), got);
		snprintf(path, sizeof(path), "%s/%.*s.ref", testdir,
		    (int)(len - 4), de->d_name);
		if (regen) {
			FILE *f = fopen(path, "wb");

			if (f != NULL) {
				fwrite(str_c(got), 1, str_len(got), f);
				fclose(f);
			}
		}
		want = read_file(path);
		if (want == NULL) {
			printf("# missing %s\n", path);
			TEST_ASSERT(want != NULL);
		} else if (str_len(want) != str_len(got) ||
		    memcmp(str_c(want), str_c(got), str_len(got)) != 0) {
			printf("# %s differs\n", de->d_name);
			TEST_ASSERT_STR(str_c(got), str_c(want));
		}
		files++;
		str_free(&msg);
		str_free(&want);
		str_free(&got);
	}
	if (d != NULL)
		closedir(d);
	TEST_ASSERT(files >= 20);
	test_end();
}

/* section - the text of a section of msg, or "ERR" */
static void
section(const struct mime_message *msg, const char *spec, struct str *out)
{
	struct mime_section sec;
	const char *error, *data;
	size_t size;

	str_clear(out);
	data = mime_message_data(msg, &size);
	if (mime_section_find(msg, spec, strlen(spec), &sec, &error) < 0) {
		(void)str_append_cstr(out, "ERR");
		return;
	}
	(void)str_append(out, data + sec.offset, sec.size);
}

static void
test_sections(void)
{
	struct str *m = load("rfc822-nested"), *s = str_new(0, 0);
	struct mime_message *msg;
	const struct mime_part *p;

	test_begin("section lookup (RFC 3501 numbering)");
	TEST_ASSERT(m != NULL);
	if (m == NULL)
		goto out;
	msg = mime_parse(str_c(m), str_len(m), NULL);
	section(msg, "1", s);
	TEST_ASSERT_STR(str_c(s), "Forwarded below.\r\n");
	section(msg, "1.MIME", s);
	TEST_ASSERT_STR(str_c(s), "Content-Type: text/plain\r\n\r\n");
	section(msg, "2.HEADER", s);
	TEST_ASSERT(strncmp(str_c(s), "From: Original Author", 21) == 0);
	TEST_ASSERT(str_len(s) > 4 &&
	    memcmp(str_c(s) + str_len(s) - 4, "\r\n\r\n", 4) == 0);
	section(msg, "2.header.fields", s);
	TEST_ASSERT(strncmp(str_c(s), "From: Original Author", 21) == 0);
	section(msg, "2.MIME", s);
	TEST_ASSERT_STR(str_c(s), "Content-Type: message/rfc822\r\n"
	    "Content-Disposition: inline\r\n\r\n");
	section(msg, "2.1", s);
	TEST_ASSERT_STR(str_c(s), "Original text.");
	section(msg, "2.2.HEADER", s);
	TEST_ASSERT_STR(str_c(s),
	    "Subject: deepest\r\nFrom: deep@example.net\r\n\r\n");
	section(msg, "2.2.TEXT", s);
	TEST_ASSERT_STR(str_c(s), "deep body");
	section(msg, "2.2.1", s);
	TEST_ASSERT_STR(str_c(s), "deep body");
	section(msg, "2.2", s);
	TEST_ASSERT_STR(str_c(s),
	    "Subject: deepest\r\nFrom: deep@example.net\r\n\r\ndeep body");
	section(msg, "TEXT", s);
	TEST_ASSERT(strncmp(str_c(s), "--b1\r\n", 6) == 0);
	section(msg, "", s);
	TEST_ASSERT(str_len(s) == str_len(m));
	section(msg, "HEADER", s);
	TEST_ASSERT(strncmp(str_c(s), "From: forwarder", 15) == 0);
	/* Errors. */
	section(msg, "3", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "2.3", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "1.HEADER", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "0", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "1.", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "1..1", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "2.FOO", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "99999999999999999999", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	p = mime_part_find(msg, "2.2.1", 5);
	TEST_ASSERT(p != NULL && mime_part_is(p, "text", "plain"));
	p = mime_part_find(msg, "2", 1);
	TEST_ASSERT(p != NULL && mime_part_is(p, "message", "rfc822") &&
	    (p->flags & MIME_PART_MESSAGE) != 0);
	TEST_ASSERT(mime_part_find(msg, "2.", 2) == NULL);
	mime_message_free(&msg);
	TEST_ASSERT(msg == NULL);
	mime_message_free(&msg);

	/* A single-part message has only part 1: its body. */
	str_free(&m);
	m = load("no-content-type");
	TEST_ASSERT(m != NULL);
	if (m == NULL)
		goto out;
	msg = mime_parse(str_c(m), str_len(m), NULL);
	section(msg, "1", s);
	TEST_ASSERT_STR(str_c(s), "No MIME here.\r\nSecond line.\r\n");
	section(msg, "1.MIME", s);
	TEST_ASSERT(strncmp(str_c(s), "From: a@example.com", 19) == 0);
	section(msg, "TEXT", s);
	TEST_ASSERT_STR(str_c(s), "No MIME here.\r\nSecond line.\r\n");
	section(msg, "2", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	section(msg, "1.1", s);
	TEST_ASSERT_STR(str_c(s), "ERR");
	mime_message_free(&msg);
out:
	str_free(&m);
	str_free(&s);
	test_end();
}

static void
test_structure(void)
{
	struct str *m = load("missing-final-boundary");
	struct mime_message *msg;
	const struct mime_part *root, *c;
	size_t size;
	const char *data;

	test_begin("structure: missing final boundary, offsets");
	TEST_ASSERT(m != NULL);
	if (m == NULL) {
		test_end();
		return;
	}
	msg = mime_parse(str_c(m), str_len(m), NULL);
	data = mime_message_data(msg, &size);
	root = mime_message_root(msg);
	TEST_ASSERT(check_tree(root, 0, size));
	TEST_ASSERT((root->flags & MIME_PART_NO_END) != 0);
	TEST_ASSERT(root->child_count == 2);
	c = root->children->next;
	TEST_ASSERT(c != NULL && c->body_offset + c->body_size == size);
	TEST_ASSERT(c != NULL && strncmp(data + c->body_offset, "second", 6) == 0);
	TEST_ASSERT(mime_message_part_count(msg) == 3);
	TEST_ASSERT(!mime_message_overflow(msg));
	mime_message_free(&msg);
	str_free(&m);
	test_end();
}

static void
test_limits(void)
{
	struct str *m = load("deep-nesting");
	struct mime_message *msg;
	struct mime_limits lim;
	const struct mime_part *p;
	unsigned int depth = 0;

	test_begin("limits: depth and part count");
	TEST_ASSERT(m != NULL);
	if (m == NULL) {
		test_end();
		return;
	}
	msg = mime_parse(str_c(m), str_len(m), NULL);
	TEST_ASSERT(mime_message_overflow(msg));
	for (p = mime_message_root(msg); p->children != NULL; p = p->children)
		depth++;
	TEST_ASSERT(depth == MIME_DEFAULT_MAX_DEPTH);
	TEST_ASSERT((p->flags & MIME_PART_OVERFLOW) != 0);
	mime_message_free(&msg);
	mime_limits_default(&lim);
	lim.max_depth = 3;
	msg = mime_parse(str_c(m), str_len(m), &lim);
	TEST_ASSERT(mime_part_find(msg, "1.1.1", 5) != NULL);
	TEST_ASSERT(mime_part_find(msg, "1.1.1.1", 7) == NULL);
	mime_message_free(&msg);
	str_free(&m);

	m = load("many-parts");
	TEST_ASSERT(m != NULL);
	if (m != NULL) {
		msg = mime_parse(str_c(m), str_len(m), NULL);
		TEST_ASSERT(mime_message_overflow(msg));
		TEST_ASSERT(mime_message_part_count(msg) ==
		    MIME_DEFAULT_MAX_PARTS);
		TEST_ASSERT(mime_message_root(msg)->child_count ==
		    MIME_DEFAULT_MAX_PARTS - 1);
		TEST_ASSERT((mime_message_root(msg)->flags &
		    MIME_PART_OVERFLOW) != 0);
		TEST_ASSERT(mime_message_root(msg)->body_offset +
		    mime_message_root(msg)->body_size == str_len(m));
		mime_message_free(&msg);
		lim.max_depth = 20;
		lim.max_parts = 0;	/* still gets the root */
		msg = mime_parse(str_c(m), str_len(m), &lim);
		TEST_ASSERT(mime_message_part_count(msg) == 1);
		mime_message_free(&msg);
	}
	str_free(&m);

	/* Fields past max_header_size are not looked at. */
	{
		static const char big[] =
		    "X-Filler: 0123456789012345678901234567890123456789\r\n"
		    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		    "--b\r\n\r\nx\r\n--b--\r\n";

		lim.max_parts = 1000;
		lim.max_header_size = 40;
		msg = mime_parse(big, sizeof(big) - 1, &lim);
		TEST_ASSERT(mime_message_root(msg)->type == NULL);
		TEST_ASSERT(mime_message_root(msg)->children == NULL);
		mime_message_free(&msg);
		lim.max_header_size = 1000;
		msg = mime_parse(big, sizeof(big) - 1, &lim);
		TEST_ASSERT(mime_message_root(msg)->child_count == 1);
		mime_message_free(&msg);
	}
	test_end();
}

/*
 * test_pieces - every prefix of some messages (a message cut anywhere,
 * as a partly written or truncated file is) parses to a sound tree and
 * renders, and the tree of a prefix never reaches past it.
 */
static void
test_pieces(void)
{
	static const char *const names[] = {
		"nested-mixed", "rfc822-nested", "boundary-in-preamble",
		"rfc2231", "groups", "encoded-words", "bare-lf",
	};
	struct str *out = str_new(0, 0);
	size_t i, n;
	bool ok = true;

	test_begin("every prefix of a message parses and renders");
	for (i = 0; i < N_ELEMENTS(names); i++) {
		struct str *m = load(names[i]);

		TEST_ASSERT(m != NULL);
		if (m == NULL)
			continue;
		for (n = 0; n <= str_len(m); n++) {
			/* A copy of exactly n bytes, so ASan sees overreads. */
			char *p = xmemdup(str_c(m), n);
			struct mime_message *msg = mime_parse(p, n, NULL);

			if (!check_tree(mime_message_root(msg), 0, n))
				ok = false;
			str_clear(out);
			render(p, n, out);
			mime_message_free(&msg);
			free(p);
		}
		str_free(&m);
	}
	TEST_ASSERT(ok);
	str_free(&out);
	test_end();
}

static void
test_params(void)
{
	struct str *m = load("rfc2231");
	struct mime_message *msg;
	const struct mime_part *p;

	test_begin("RFC 2231 and encoded-word parameters, decoded");
	TEST_ASSERT(m != NULL);
	if (m == NULL) {
		test_end();
		return;
	}
	msg = mime_parse(str_c(m), str_len(m), NULL);
	p = mime_part_find(msg, "1", 1);
	TEST_ASSERT(p != NULL);
	if (p != NULL) {
		TEST_ASSERT_STR(mime_part_param(p, "NAME", true),
		    "\xE2\x82\xAC rates for 2023.txt");
		TEST_ASSERT_STR(mime_part_param(p, "name", false),
		    "utf-8''%E2%82%AC%20rates%20for%202023.txt");
		TEST_ASSERT_STR(mime_part_disposition_param(p, "filename",
		    true), "\xC3\xA4rger.txt");
		TEST_ASSERT_STR(mime_part_disposition_param(p, "title",
		    true), "very long title");
		TEST_ASSERT_STR(p->disposition, "attachment");
		TEST_ASSERT(mime_part_param(p, "missing", true) == NULL);
	}
	p = mime_part_find(msg, "2", 1);
	TEST_ASSERT(p != NULL);
	if (p != NULL) {
		TEST_ASSERT_STR(mime_part_param(p, "name", true),
		    "caf\xC3\xA9.txt");
		TEST_ASSERT_STR(mime_part_param(p, "name", false),
		    "=?utf-8?q?caf=C3=A9?=.txt");
	}
	mime_message_free(&msg);
	str_free(&m);
	test_end();
}

/* dec - rfc2047_decode of a C string, as a new C string in buf */
static const char *
dec(struct str *buf, const char *in)
{
	str_clear(buf);
	TEST_ASSERT(rfc2047_decode(in, strlen(in), buf) == 0);
	return str_c(buf);
}

static void
test_rfc2047(void)
{
	struct str *s = str_new(0, 0);

	test_begin("rfc2047 encoded-words");
	TEST_ASSERT_STR(dec(s, "plain text"), "plain text");
	TEST_ASSERT_STR(dec(s, "  folded\r\n\tvalue \r\n"), "folded\tvalue");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?a?=\r\n =?utf-8?q?b?="), "ab");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?a?= b =?utf-8?q?c?="), "a b c");
	TEST_ASSERT_STR(dec(s, "x =?utf-8?q?a_b?= y"), "x a b y");
	TEST_ASSERT_STR(dec(s, "=?ISO-8859-1?Q?Keld_J=F8rn?="),
	    "Keld J\xC3\xB8rn");
	TEST_ASSERT_STR(dec(s, "=?utf-8?B?w4VzYQ==?="), "\xC3\x85sa");
	TEST_ASSERT_STR(dec(s, "=?utf-8?b?w4VzYQ?="), "\xC3\x85sa");
	/* A character split across two words comes out whole. */
	TEST_ASSERT_STR(dec(s, "=?utf-8?B?4oI=?= =?utf-8?B?rA==?="),
	    "\xE2\x82\xAC");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?=E2=82?= =?UTF-8?q?=AC?="),
	    "\xE2\x82\xAC");
	/* RFC 2231 language suffix. */
	TEST_ASSERT_STR(dec(s, "=?utf-8*en?q?hi?="), "hi");
	/* Through iconv. */
	TEST_ASSERT_STR(dec(s, "=?windows-1252?q?=80?="), "\xE2\x82\xAC");
	TEST_ASSERT_STR(dec(s, "=?koi8-r?b?8NLJ18XU?="),
	    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
	TEST_ASSERT_STR(dec(s, "=?iso-2022-jp?b?GyRCJEgkJBsoQg==?="),
	    "\xE3\x81\xA8\xE3\x81\x84");
	/* Unknown charset: bytes kept, repaired to UTF-8. */
	TEST_ASSERT_STR(dec(s, "=?x-unknown?q?unk=E9nown?="),
	    "unk\xEF\xBF\xBDnown");
	TEST_ASSERT_STR(dec(s, "=?bad/name//TRANSLIT?q?a?="), "a");
	/* Bad base64, bad encoding letter: kept literally. */
	TEST_ASSERT_STR(dec(s, "=?utf-8?b?!!bad!!?="), "=?utf-8?b?!!bad!!?=");
	TEST_ASSERT_STR(dec(s, "=?utf-8?b?QUJD=x?="), "=?utf-8?b?QUJD=x?=");
	TEST_ASSERT_STR(dec(s, "=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?a b?="), "=?utf-8?q?a b?=");
	TEST_ASSERT_STR(dec(s, "=??q?a?="), "=??q?a?=");
	TEST_ASSERT_STR(dec(s, "=?utf-8?q?unterminated"),
	    "=?utf-8?q?unterminated");
	/* Glued to text (not RFC, but what mail readers do). */
	TEST_ASSERT_STR(dec(s, "re:=?utf-8?q?x?=!"), "re:x!");
	/* Raw 8-bit: UTF-8 kept, anything else repaired. */
	TEST_ASSERT_STR(dec(s, "Gr\xC3\xBC\xC3\x9F" "e"), "Gr\xC3\xBC\xC3\x9F" "e");
	TEST_ASSERT_STR(dec(s, "caf\xE9"), "caf\xEF\xBF\xBD");
	TEST_ASSERT(rfc2047_utf8_valid("\xC3\xA9", 2));
	TEST_ASSERT(!rfc2047_utf8_valid("\xC0\x80", 2));
	TEST_ASSERT(!rfc2047_utf8_valid("\xED\xA0\x80", 3));
	TEST_ASSERT(!rfc2047_utf8_valid("\xF4\x90\x80\x80", 4));
	TEST_ASSERT(!rfc2047_utf8_valid("\xE2\x82", 2));
	str_clear(s);
	TEST_ASSERT(rfc2047_charset_to_utf8("x-nope", 6, "a", 1, s) == 1);
	/* E2BIG on a capped output. */
	str_free(&s);
	s = str_new(4, 4);
	errno = 0;
	TEST_ASSERT(rfc2047_decode("=?utf-8?q?abcdefgh?=", 20, s) == -1 &&
	    errno == E2BIG);
	str_free(&s);
	rfc2047_deinit();
	test_end();
}

static void
test_header(void)
{
	static const char hdr[] =
	    "Subject: one\r\n two\r\n"
	    "broken line without colon\r\n"
	    "X-Empty:\r\n"
	    "To : x@y\n"
	    "\r\n"
	    "Body: not a header\r\n";
	struct header_iter it;
	struct header_field f;
	struct str *s = str_new(0, 0);
	size_t hs = header_block_size(hdr, sizeof(hdr) - 1);
	unsigned int count = 0;

	test_begin("header block split, iterate, unfold, find");
	TEST_ASSERT(hs == (size_t)(strstr(hdr, "Body:") - hdr));
	header_iter_init(&it, hdr, hs);
	while (header_iter_next(&it, &f))
		count++;
	TEST_ASSERT(count == 4);
	TEST_ASSERT(header_find(hdr, hs, "SUBJECT", &f));
	TEST_ASSERT(f.offset == 0 && f.size == 20);
	TEST_ASSERT(header_unfold(f.value, f.value_len, s) == 0);
	TEST_ASSERT_STR(str_c(s), "one two");
	TEST_ASSERT(header_find(hdr, hs, "to", &f));
	TEST_ASSERT(f.name_len == 2 && f.value_len == 4);
	TEST_ASSERT(header_find(hdr, hs, "x-empty", &f) && f.value_len == 0);
	TEST_ASSERT(!header_find(hdr, hs, "body", &f));
	TEST_ASSERT(!header_find(hdr, hs, "broken line without colon", &f));
	header_iter_init(&it, hdr, hs);
	(void)header_iter_next(&it, &f);
	(void)header_iter_next(&it, &f);
	TEST_ASSERT(f.no_colon && f.name_len == 25);
	TEST_ASSERT(header_block_size("\r\nbody", 6) == 2);
	TEST_ASSERT(header_block_size("\nbody", 5) == 1);
	TEST_ASSERT(header_block_size("A: b", 4) == 4);
	TEST_ASSERT(header_block_size("", 0) == 0);
	TEST_ASSERT(header_block_size("A: b\r\r\n\r\n", 9) == 9);
	str_free(&s);
	test_end();
}

/* addr - render a parsed address list as (name route mailbox host)... */
static const char *
addr(struct str *s, const char *in)
{
	struct header_address *list = header_address_parse(in, strlen(in), 0);
	const struct header_address *a;

	str_clear(s);
	for (a = list; a != NULL; a = a->next) {
		str_printf(s, "[%s|%s|%s|%s]", a->name ? a->name : "-",
		    a->route ? a->route : "-", a->mailbox ? a->mailbox : "-",
		    a->domain ? a->domain : "-");
	}
	header_address_free(&list);
	TEST_ASSERT(list == NULL);
	return str_c(s);
}

static void
test_address(void)
{
	struct str *s = str_new(0, 0);
	struct header_address *list;
	unsigned int n = 0;

	test_begin("address lists and groups");
	TEST_ASSERT_STR(addr(s, ""), "");
	TEST_ASSERT_STR(addr(s, "a@b"), "[-|-|a|b]");
	TEST_ASSERT_STR(addr(s, "\"Doe, J\" <j@x.org>, k@y"),
	    "[Doe, J|-|j|x.org][-|-|k|y]");
	TEST_ASSERT_STR(addr(s, "John Q. Public <jqp@x>"),
	    "[John Q. Public|-|jqp|x]");
	TEST_ASSERT_STR(addr(s, "x@y (Comment Name)"),
	    "[Comment Name|-|x|y]");
	TEST_ASSERT_STR(addr(s, "g: a@b, c@d;, e@f"),
	    "[-|-|g|-][-|-|a|b][-|-|c|d][-|-|-|-][-|-|e|f]");
	TEST_ASSERT_STR(addr(s, "undisclosed-recipients:;"),
	    "[-|-|undisclosed-recipients|-][-|-|-|-]");
	TEST_ASSERT_STR(addr(s, "unterminated: a@b"),
	    "[-|-|unterminated|-][-|-|a|b][-|-|-|-]");
	TEST_ASSERT_STR(addr(s, "<@r1,@r2:u@h>"), "[-|@r1,@r2|u|h]");
	TEST_ASSERT_STR(addr(s, "foo"), "[-|-|foo|MISSING_DOMAIN]");
	TEST_ASSERT_STR(addr(s, "<>"),
	    "[-|-|MISSING_MAILBOX|MISSING_DOMAIN]");
	TEST_ASSERT_STR(addr(s, "\"a b\"@c"), "[-|-|a b|c]");
	TEST_ASSERT_STR(addr(s, "u@[1.2.3.4]"), "[-|-|u|[1.2.3.4]]");
	TEST_ASSERT_STR(addr(s, "<a@b"), "[-|-|a|b]");
	TEST_ASSERT_STR(addr(s, "\"unterminated <a@b>"),
	    "[-|-|unterminated <a@b>|MISSING_DOMAIN]");
	TEST_ASSERT_STR(addr(s, ",,,;;;"), "");
	TEST_ASSERT_STR(addr(s, "(((("), "");
	list = header_address_parse("a@b,c@d,e@f,g@h", 15, 2);
	for (const struct header_address *a = list; a != NULL; a = a->next)
		n++;
	TEST_ASSERT(n == 2);
	header_address_free(&list);
	str_free(&s);
	test_end();
}

static void
test_decode(void)
{
	struct str *s = str_new(0, 0);

	test_begin("base64 and quoted-printable decoding");
	TEST_ASSERT(mime_decode_base64("SGVs\r\nbG8=\r\n", 12, s) == 0);
	TEST_ASSERT_STR(str_c(s), "Hello");
	str_clear(s);
	TEST_ASSERT(mime_decode_base64("SGV*sbG8", 8, s) == 1);
	TEST_ASSERT_STR(str_c(s), "Hello");
	str_clear(s);
	TEST_ASSERT(mime_decode_base64("SGVsbG8=junk", 12, s) == 1);
	TEST_ASSERT_STR(str_c(s), "Hello");
	str_clear(s);
	TEST_ASSERT(mime_decode_base64("SGVsbG8gV", 9, s) == 1);
	str_clear(s);
	TEST_ASSERT(mime_decode_qp("a=3Db=\r\nc  \r\nd=\ne=zz=4", 22, s) == 1);
	TEST_ASSERT_STR(str_c(s), "a=bc\r\nde=zz=4");
	str_clear(s);
	TEST_ASSERT(mime_decode_qp("caf=C3=A9\n", 10, s) == 0);
	TEST_ASSERT_STR(str_c(s), "caf\xC3\xA9\n");
	str_clear(s);
	TEST_ASSERT(mime_decode_qp("=", 1, s) == 0 && str_len(s) == 0);
	TEST_ASSERT(mime_decode_encoding(NULL) == MIME_DECODE_IDENTITY);
	TEST_ASSERT(mime_decode_encoding("Base64") == MIME_DECODE_BASE64);
	TEST_ASSERT(mime_decode_encoding("QUOTED-PRINTABLE") == MIME_DECODE_QP);
	TEST_ASSERT(mime_decode_encoding("x-uue") == MIME_DECODE_UNKNOWN);
	str_free(&s);

	{
		struct str *m = load("alternative"), *out = str_new(0, 0);
		struct mime_message *msg;

		TEST_ASSERT(m != NULL);
		if (m != NULL) {
			msg = mime_parse(str_c(m), str_len(m), NULL);
			TEST_ASSERT(mime_decode_part(msg,
			    mime_part_find(msg, "1", 1), out) == 0);
			TEST_ASSERT_STR(str_c(out), "Caf\xC3\xA9 at noon?");
			mime_message_free(&msg);
		}
		str_free(&m);
		str_free(&out);
	}
	test_end();
}

static void
test_output(void)
{
	struct str *s = str_new(0, 0), *capped;
	struct str *m = load("nested-mixed");

	test_begin("IMAP string quoting and capped output");
	TEST_ASSERT(imap_envelope_string(s, "a\"b\\c", 5) == 0);
	TEST_ASSERT_STR(str_c(s), "\"a\\\"b\\\\c\"");
	str_clear(s);
	TEST_ASSERT(imap_envelope_string(s, "caf\xC3\xA9", 5) == 0);
	TEST_ASSERT_STR(str_c(s), "{5}\r\ncaf\xC3\xA9");
	str_clear(s);
	TEST_ASSERT(imap_envelope_string(s, "a\0b", 3) == 0);
	TEST_ASSERT(str_len(s) == 8 && memcmp(str_c(s), "{3}\r\na\x80" "b",
	    8) == 0);
	str_clear(s);
	TEST_ASSERT(imap_envelope_nstring(s, NULL) == 0);
	TEST_ASSERT_STR(str_c(s), "NIL");
	str_clear(s);
	TEST_ASSERT(imap_envelope_string(s, "", 0) == 0);
	TEST_ASSERT_STR(str_c(s), "\"\"");
	TEST_ASSERT(m != NULL);
	if (m != NULL) {
		capped = str_new(16, 100);
		(void)str_append_cstr(capped, "keep");
		errno = 0;
		TEST_ASSERT(imap_envelope_message(str_c(m), str_len(m), NULL,
		    NULL, NULL, capped) == -1 && errno == E2BIG);
		TEST_ASSERT_STR(str_c(capped), "keep");
		str_clear(capped);
		TEST_ASSERT(imap_envelope_message(str_c(m), str_len(m), NULL,
		    capped, NULL, NULL) == -1);
		TEST_ASSERT(str_len(capped) == 0);
		str_free(&capped);
	}
	str_free(&m);
	str_free(&s);
	test_end();
}

/* now_ns - monotonic nanoseconds */
static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
test_speed(void)
{
	struct str *m = load("nested-mixed"), *e, *bs;
	const int rounds = 5000;
	double t0, per;
	int i;

	test_begin("parse + ENVELOPE + BODYSTRUCTURE, 5000 rounds (time reported)");
	TEST_ASSERT(m != NULL);
	if (m == NULL) {
		test_end();
		return;
	}
	e = str_new(1024, 0);
	bs = str_new(1024, 0);
	t0 = now_ns();
	for (i = 0; i < rounds; i++) {
		str_clear(e);
		str_clear(bs);
		(void)imap_envelope_message(str_c(m), str_len(m), NULL, e,
		    NULL, bs);
	}
	per = (now_ns() - t0) / rounds;
	printf("# %zu-byte message: %.2f us per parse + ENVELOPE + "
	    "BODYSTRUCTURE\n", str_len(m), per / 1000.0);
	/* Reported, not asserted (bench/ measures speed); the results
	 * must be there. */
	TEST_ASSERT(str_len(e) > 0 && str_len(bs) > 0);
	str_free(&e);
	str_free(&bs);
	str_free(&m);
	test_end();
}

/* test_field_parse - one Content-Type / Content-Disposition value alone */
static void
test_field_parse(void)
{
	static const char ct[] = " Text/Plain ; charset=\"iso-8859-1\"; "
	    "name*0=\"a\"; name*1=\"b.txt\"";
	static const char cd[] = "attachment; filename*=utf-8''caf%C3%A9.pdf";
	struct mime_message *m;
	const struct mime_part *p;

	test_begin("mime_field_parse");
	m = mime_field_parse(ct, sizeof(ct) - 1, true);
	p = mime_message_root(m);
	TEST_ASSERT_STR(p->type, "Text");
	TEST_ASSERT_STR(p->subtype, "Plain");
	TEST_ASSERT(p->param_count == 2);
	TEST_ASSERT_STR(mime_part_param(p, "CHARSET", false), "iso-8859-1");
	TEST_ASSERT_STR(mime_part_param(p, "name", true), "ab.txt");
	mime_message_free(&m);
	TEST_ASSERT(m == NULL);

	m = mime_field_parse(cd, sizeof(cd) - 1, false);
	p = mime_message_root(m);
	TEST_ASSERT_STR(p->disposition, "attachment");
	TEST_ASSERT_STR(mime_part_disposition_param(p, "filename", true),
	    "caf\xc3\xa9.pdf");
	mime_message_free(&m);

	/* junk after the subtype, or no subtype: nothing parsed */
	m = mime_field_parse("text/plain junk", 15, true);
	TEST_ASSERT(mime_message_root(m)->type == NULL);
	mime_message_free(&m);
	m = mime_field_parse("text", 4, true);
	TEST_ASSERT(mime_message_root(m)->type == NULL);
	mime_message_free(&m);
	m = mime_field_parse("", 0, false);
	TEST_ASSERT(mime_message_root(m)->disposition == NULL);
	mime_message_free(&m);
	test_end();
}

int
main(void)
{
	if (!find_testdir()) {
		test_begin("find lib/testdata/mime");
		(void)test_assert_fail("lib/testdata/mime not found; set POSTERN_SRCDIR",
		    __FILE__, __LINE__);
		test_end();
		return test_done();
	}
	test_header();
	test_address();
	test_rfc2047();
	test_decode();
	test_output();
	test_structure();
	test_sections();
	test_params();
	test_field_parse();
	test_limits();
	test_pieces();
	test_golden();
	test_speed();
	return test_done();
}
