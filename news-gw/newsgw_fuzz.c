/* SPDX-License-Identifier: MIT */
/*
 * newsgw_fuzz - libFuzzer target: news-gw's article <-> mail converters
 *
 * DESCRIPTION
 *	The input is a message or article (any bytes). It is checked as a
 *	received article and, when acceptable, converted to mail; and it is
 *	converted from mail to an article, whose result must then pass
 *	newsgw_article_check() itself (what we post is a valid article)
 *	unless the input carried our marker. Byte 0 picks the options.
 *
 *	The fuzz build links only this object and libpostern, so the
 *	converter (which uses nothing else of news-gw) is included here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "newsgw_article.c"

struct newsgw_settings newsgw_settings;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *out = str_new(0, 0), *msgid = str_new(0, 0),
	    *groups = str_new(0, 0), *id2 = str_new(0, 0);
	struct newsgw_m2n m2n;
	struct newsgw_n2m n2m;
	const char *p = (const char *)data, *why = NULL;
	unsigned flags = size > 0 ? data[0] : 0;

	if (size > 0) {
		p++;
		size--;
	}
	if (newsgw_article_check(p, size, "gw.test", msgid, groups, &why) ==
	    NEWSGW_CONV_OK) {
		memset(&n2m, 0, sizeof(n2m));
		n2m.identity = "gw.test";
		n2m.list_group = (flags & 1) ? "test.group" : NULL;
		n2m.peer = "[192.0.2.1]:119";
		n2m.now = 1700000000;
		newsgw_article_to_mail(p, size, &n2m, out);
	}
	memset(&m2n, 0, sizeof(m2n));
	m2n.groups = (flags & 2) ? "test.one,test.two" : "test.one";
	m2n.identity = "gw.test";
	m2n.envelope_sender = (flags & 4) ? "" : "sender@example.org";
	m2n.qid = "1J175P0MFV000CAL00";
	m2n.now = 1700000000;
	m2n.for_ihave = (flags & 8) != 0;
	if (newsgw_mail_to_article(p, size, &m2n, out, msgid, &why) ==
	    NEWSGW_CONV_OK) {
		/* what we made must be an article we would accept, but for
		 * our own Path entry (a loop, by design) */
		enum newsgw_conv c = newsgw_article_check(str_c(out),
		    str_len(out), "other.test", id2, NULL, &why);

		if (c != NEWSGW_CONV_OK || strcmp(str_c(id2), str_c(msgid)) != 0)
			abort();
	}
	str_free(&out);
	str_free(&msgid);
	str_free(&groups);
	str_free(&id2);
	return 0;
}
