/* SPDX-License-Identifier: MIT */
/* imap_utf7_test - unit tests for imap_utf7.c */
#include <string.h>

#include "imap_utf7.h"
#include "str.h"
#include "test.h"

static const struct {
	const char *utf8;
	const char *utf7;
} pairs[] = {
	{ "INBOX", "INBOX" },
	{ "a&b", "a&-b" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "\xf0\x9f\x93\xa7 mail", "&2D3c5w- mail" },
	{ "&&", "&-&-" },
	{ "tab\there", "tab&AAk-here" },
};

static const char *bad_utf7[] = {
	"&", "&Jjo", "&AGE-", "&-&", "&U,BTFw", "&2D3-", "&3OcAIA-", "a\x80",
	"&A-", "&AP-",
};

int
main(void)
{
	struct str *s = str_new(0, 0);
	size_t i;

	test_begin("imap_utf7 round trip");
	for (i = 0; i < N_ELEMENTS(pairs); i++) {
		str_clear(s);
		TEST_ASSERT(imap_utf8_to_utf7(pairs[i].utf8,
		    strlen(pairs[i].utf8), s) == 0);
		TEST_ASSERT_STR(str_c(s), pairs[i].utf7);
		str_clear(s);
		TEST_ASSERT(imap_utf7_to_utf8(pairs[i].utf7,
		    strlen(pairs[i].utf7), s) == 0);
		TEST_ASSERT_STR(str_c(s), pairs[i].utf8);
	}
	test_end();

	test_begin("imap_utf7 rejects malformed names");
	for (i = 0; i < N_ELEMENTS(bad_utf7); i++) {
		str_set_cstr(s, "x");
		if (!TEST_ASSERT(imap_utf7_to_utf8(bad_utf7[i],
		    strlen(bad_utf7[i]), s) < 0))
			TEST_ASSERT_STR(bad_utf7[i], "(should fail)");
		TEST_ASSERT_STR(str_c(s), "x");
	}
	str_clear(s);
	TEST_ASSERT(imap_utf8_to_utf7("\xc3", 1, s) < 0);
	TEST_ASSERT(imap_utf7_is_ascii("Sent", 4));
	TEST_ASSERT(!imap_utf7_is_ascii("a&b", 3));
	test_end();
	str_free(&s);
	return test_done();
}
