/* SPDX-License-Identifier: MIT */
/* html_text_test - unit tests for html_text.c */
#include <errno.h>
#include <string.h>

#include "html_text.h"
#include "str.h"
#include "test.h"

/* Expected texts follow Dovecot's mail_html2text (see html_text.h). */
static const struct {
	const char *in, *out;
} cases[] = {
	{ "plain text", "plain text" },
	{ "<p>hi <b>there</b></p>", "hi there " },
	{ "a<br>b<br/>c", "a b c" },
	{ "<div title=\"x > y\">t</div>", "t " },
	{ "<div title='x > \\' y'>t</div>", "t " },
	{ "<div title=\"a \\\" > b\">t</div>", "t " },
	{ "a<!-- <b>x</b> -- >b", "ab" },	/* white space before '>' */
	{ "a<!-- x -- y >b", "a" },		/* "-- y" does not end it */
	{ "a<!-- x -->b", "ab" },
	{ "a<!-- x -- y -->b", "ab" },
	{ "<script>x<y</script>after", "after" },	/* no space first */
	{ "a<SCRIPT type=\"t\">var a=\"</b>\";</Script>z", "a z" },
	{ "a<style>p{}</style>z", "a z" },
	{ "<![CDATA[a <b> c]]>d", "a <b> cd" },
	{ "<![CDATA[a]b]]>", "a]b" },
	{ "&amp;&lt;&gt;&quot;&apos;", "&<>\"'" },
	{ "&AMP;", "&" },
	{ "&#233;&#xe9;&#xE9;&eacute;", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" },
	{ "&#X41;", "" },			/* only a lower-case x */
	{ "&#0;&#xd800;&#x110000;&#x;&#;", "" },
	{ "&#99999999999;", "#99999999999;" },	/* too long: broken */
	{ "&#42949672;&#x1000000;", "" },
	{ "&bogus;x", "x" },
	{ "a & b", "a  b" },			/* broken: the '&' goes */
	{ "&averyveryverylong;x", "averyveryverylong;x" },
	{ "&nbsp;", "\xc2\xa0" },
	{ "tail &amp", "tail " },		/* unfinished: dropped */
	{ "tail <b", "tail " },
	{ "tail <!-", "tail " },
	{ "x<!--a-", "x" },
	{ "<script>never closed</scr", "" },
	{ "<", "" },
	{ "", "" },
	{ "<a href=x>link</a> <averyveryverylongtagname", "link  " },
};

int
main(void)
{
	struct str *s = str_new(0, 0), *small;
	size_t i;

	test_begin("html_text_convert: Dovecot's html2text rules");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		str_clear(s);
		TEST_ASSERT(html_text_convert(cases[i].in,
		    strlen(cases[i].in), s) == 0);
		TEST_ASSERT_STR(str_c(s), cases[i].out);
	}
	test_end();

	test_begin("html_text_convert: appends, binary input");
	str_set(s, "pre:", 4);
	TEST_ASSERT(html_text_convert("a\0b<i>c", 7, s) == 0);
	TEST_ASSERT(str_len(s) == 9 && memcmp(str_c(s), "pre:a\0b c", 9) == 0);
	test_end();

	test_begin("html_text_convert: output limit");
	small = str_new(0, 4);
	errno = 0;
	TEST_ASSERT(html_text_convert("abcdefgh", 8, small) == -1);
	TEST_ASSERT(errno == E2BIG);
	TEST_ASSERT_STR(str_c(small), "abcd");
	str_free(&small);
	test_end();

	str_free(&s);
	return test_done();
}
