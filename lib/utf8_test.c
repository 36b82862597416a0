/* SPDX-License-Identifier: MIT */
/* utf8_test - unit tests for utf8.c */
#include <string.h>

#include "str.h"
#include "test.h"
#include "utf8.h"

static const struct {
	const char *in, *folded;
} folds[] = {
	{ "Hello, World", "hello, world" },
	{ "\xc3\x84PFEL", "\xc3\xa4pfel" },			/* ÄPFEL */
	{ "\xc3\xa4pfel", "\xc3\xa4pfel" },
	{ "\xce\xa3\xce\x9f\xce\xa6\xce\x8a\xce\x91",		/* ΣΟΦΊΑ */
	  "\xcf\x83\xce\xbf\xcf\x86\xce\xaf\xce\xb1" },		/* σοφία */
	{ "\xcf\x82", "\xcf\x83" },				/* ς -> σ */
	{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",	/* ПРИВЕТ */
	  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
	{ "\xd0\x81", "\xd1\x91" },				/* Ё -> ё */
	{ "\xc4\x80\xc4\x82", "\xc4\x81\xc4\x83" },		/* Ā Ă: stride 2 */
	{ "\xc5\xbf", "s" },					/* ſ -> s */
	{ "\xe2\x84\xaa", "k" },				/* KELVIN SIGN */
	{ "\xc2\xb5", "\xce\xbc" },				/* µ -> μ */
	{ "\xe1\xba\x9e", "\xc3\x9f" },				/* ẞ -> ß (S) */
	{ "\xc3\x9f", "\xc3\x9f" },				/* ß: no full folding */
	{ "\xc4\xb0", "\xc4\xb0" },				/* İ: Turkic only */
	{ "\xf0\x90\x90\x80", "\xf0\x90\x90\xa8" },		/* DESERET 𐐀 */
	{ "\xe1\x8f\xb8", "\xe1\x8f\xb0" },			/* Cherokee small */
	{ "a\xff" "B\xc3" "C", "a\xff" "b\xc3" "c" },		/* bad bytes kept */
	{ "\xed\xa0\x80X", "\xed\xa0\x80x" },			/* surrogate */
	{ "\xc0\xc1Z", "\xc0\xc1z" },				/* overlong lead */
};

static bool
find(const char *hay, const struct str *needle, struct str *scratch)
{
	return utf8_casefold_find(hay, strlen(hay), str_c(needle),
	    str_len(needle), scratch);
}

int
main(void)
{
	struct str *s = str_new(0, 0), *scratch = str_new(0, 0), *lim;
	size_t i, len;
	char buf[4];
	uint32_t cp;

	test_begin("utf8_decode / utf8_encode");
	TEST_ASSERT(utf8_decode("A", 1, &len) == 'A' && len == 1);
	TEST_ASSERT(utf8_decode("\xc3\xa4", 2, &len) == 0xe4 && len == 2);
	TEST_ASSERT(utf8_decode("\xe2\x82\xac", 3, &len) == 0x20ac && len == 3);
	TEST_ASSERT(utf8_decode("\xf0\x9f\x93\xa7", 4, &len) == 0x1f4e7 &&
	    len == 4);
	TEST_ASSERT(utf8_decode("\xc3", 1, &len) == UTF8_INVALID && len == 1);
	TEST_ASSERT(utf8_decode("\xe2\x82", 2, &len) == UTF8_INVALID);
	TEST_ASSERT(utf8_decode("\x80", 1, &len) == UTF8_INVALID);
	TEST_ASSERT(utf8_decode("\xe0\x80\x80", 3, &len) == UTF8_INVALID);
	TEST_ASSERT(utf8_decode("\xf4\x90\x80\x80", 4, &len) == UTF8_INVALID);
	TEST_ASSERT(utf8_decode("\xed\xb0\x80", 3, &len) == UTF8_INVALID);
	TEST_ASSERT(utf8_decode("", 0, &len) == UTF8_INVALID);
	for (cp = 0; cp < 0x110000; cp += (cp < 0x800 ? 1 : 97)) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		len = utf8_encode(cp, buf);
		{
			size_t l2;

			TEST_ASSERT(utf8_decode(buf, len, &l2) == cp && l2 == len);
		}
	}
	test_end();

	test_begin("utf8_fold_char");
	TEST_ASSERT(utf8_fold_char('A') == 'a');
	TEST_ASSERT(utf8_fold_char('a') == 'a');
	TEST_ASSERT(utf8_fold_char('@') == '@');
	TEST_ASSERT(utf8_fold_char(0xc4) == 0xe4);
	TEST_ASSERT(utf8_fold_char(0xd7) == 0xd7);	/* × between runs */
	TEST_ASSERT(utf8_fold_char(0x100) == 0x101);
	TEST_ASSERT(utf8_fold_char(0x101) == 0x101);
	TEST_ASSERT(utf8_fold_char(0x3a3) == 0x3c3);
	TEST_ASSERT(utf8_fold_char(0x410) == 0x430);
	TEST_ASSERT(utf8_fold_char(0xff21) == 0xff41);	/* fullwidth A */
	TEST_ASSERT(utf8_fold_char(0x1e921) == 0x1e943);	/* Adlam */
	TEST_ASSERT(utf8_fold_char(0x10ffff) == 0x10ffff);
	TEST_ASSERT(utf8_fold_char(0x4e2d) == 0x4e2d);	/* 中 */
	test_end();

	test_begin("utf8_casefold");
	for (i = 0; i < N_ELEMENTS(folds); i++) {
		str_clear(s);
		TEST_ASSERT(utf8_casefold(folds[i].in, strlen(folds[i].in),
		    s) == 0);
		TEST_ASSERT_STR(str_c(s), folds[i].folded);
	}
	lim = str_new(0, 4);
	TEST_ASSERT(str_append_cstr(lim, "ab") == 0);
	TEST_ASSERT(utf8_casefold("\xc3\x84\xc3\x84", 4, lim) < 0);
	TEST_ASSERT_STR(str_c(lim), "ab");	/* unchanged on failure */
	str_free(&lim);
	test_end();

	test_begin("utf8_casefold_find");
	str_clear(s);
	utf8_casefold("\xc3\x84PFEL", 6, s);
	TEST_ASSERT(find("Rote \xc3\xa4pfel und", s, scratch));
	TEST_ASSERT(find("ROTE \xc3\x84PFEL", s, scratch));
	TEST_ASSERT(!find("Rote apfel", s, scratch));
	TEST_ASSERT(!find("Rote \xc3\x84PFE", s, scratch));
	TEST_ASSERT(utf8_casefold_find("anything", 8, "", 0, scratch));
	TEST_ASSERT(!utf8_casefold_find("", 0, "a", 1, scratch));
	test_end();

	str_free(&s);
	str_free(&scratch);
	return test_done();
}
