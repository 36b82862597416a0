/* SPDX-License-Identifier: MIT */
/*
 * html_text - the plain text of an HTML body
 *
 * DESCRIPTION
 *	One pass over the input with a small state machine, the one of
 *	Dovecot's mail-html2text.c (see html_text.h for the rules). The
 *	whole input is at hand, so where Dovecot waits for more data this
 *	stops and drops the rest. Work and output are linear in the input:
 *	each byte is looked at a bounded number of times.
 *
 * SEE ALSO
 *	sieve_run.c (extracttext), RFC 5703 section 7
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html_text.h"
#include "str.h"
#include "utf8.h"

enum html_text_state {
	HTML_TEXT_TEXT,
	HTML_TEXT_TAG,
	HTML_TEXT_TAG_DQ,	/* "quoted" attribute value */
	HTML_TEXT_TAG_DQ_ESC,
	HTML_TEXT_TAG_SQ,	/* 'quoted' attribute value */
	HTML_TEXT_TAG_SQ_ESC,
	HTML_TEXT_COMMENT,
	HTML_TEXT_COMMENT_END,	/* "--" seen, waiting for '>' */
	HTML_TEXT_SCRIPT,
	HTML_TEXT_STYLE,
	HTML_TEXT_CDATA,
};

#define HTML_TEXT_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || \
	(c) == '\n')

/*
 * The named references mail readers meet most. Dovecot knows the whole
 * HTML 4 list; a name missing here is dropped, as Dovecot drops names
 * it does not know.
 */
static const struct {
	const char *name;
	uint32_t cp;
} html_text_entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", 0xa0 }, { "copy", 0xa9 }, { "reg", 0xae },
	{ "trade", 0x2122 }, { "euro", 0x20ac }, { "pound", 0xa3 },
	{ "yen", 0xa5 }, { "cent", 0xa2 }, { "sect", 0xa7 }, { "deg", 0xb0 },
	{ "plusmn", 0xb1 }, { "middot", 0xb7 }, { "laquo", 0xab },
	{ "raquo", 0xbb }, { "times", 0xd7 }, { "divide", 0xf7 },
	{ "ndash", 0x2013 }, { "mdash", 0x2014 }, { "lsquo", 0x2018 },
	{ "rsquo", 0x2019 }, { "ldquo", 0x201c }, { "rdquo", 0x201d },
	{ "bull", 0x2022 }, { "hellip", 0x2026 }, { "shy", 0xad },
	{ "iexcl", 0xa1 }, { "iquest", 0xbf }, { "szlig", 0xdf },
	{ "agrave", 0xe0 }, { "aacute", 0xe1 }, { "acirc", 0xe2 },
	{ "auml", 0xe4 }, { "aring", 0xe5 }, { "ccedil", 0xe7 },
	{ "egrave", 0xe8 }, { "eacute", 0xe9 }, { "ecirc", 0xea },
	{ "euml", 0xeb }, { "iuml", 0xef }, { "ntilde", 0xf1 },
	{ "ouml", 0xf6 }, { "oslash", 0xf8 }, { "uuml", 0xfc },
};

/* html_text_number - digits of base 10 or 16, all of p/n; false if not */
static bool
html_text_number(const char *p, size_t n, unsigned base, uint32_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (p[i] >= '0' && p[i] <= '9')
			d = (unsigned)(p[i] - '0');
		else if (base == 16 && p[i] >= 'a' && p[i] <= 'f')
			d = (unsigned)(p[i] - 'a' + 10);
		else if (base == 16 && p[i] >= 'A' && p[i] <= 'F')
			d = (unsigned)(p[i] - 'A' + 10);
		else
			return false;
		v = v * base + d;
		if (v > UINT32_MAX)
			return false;
	}
	*v_r = (uint32_t)v;
	return true;
}

/* html_text_entity - the UTF-8 of the reference name p/n, into out */
static int
html_text_entity(const char *p, size_t n, struct str *out)
{
	uint32_t cp = 0;
	bool ok = false;
	size_t i;
	char buf[4];

	for (i = 0; i < sizeof(html_text_entities) /
	    sizeof(html_text_entities[0]); i++)
		if (strlen(html_text_entities[i].name) == n &&
		    strncasecmp(html_text_entities[i].name, p, n) == 0) {
			cp = html_text_entities[i].cp;
			ok = true;
			break;
		}
	if (!ok && n >= 2 && p[0] == '#')
		ok = p[1] == 'x' ? html_text_number(p + 2, n - 2, 16, &cp) :
		    html_text_number(p + 1, n - 1, 10, &cp);
	/* what has no UTF-8 form is dropped */
	if (!ok || cp == 0 || cp >= 0x110000 || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return str_append(out, buf, utf8_encode(cp, buf));
}

/* html_text_space - one space after a tag, unless one is there already */
static int
html_text_space(struct str *out)
{
	size_t n = str_len(out);

	if (n > 0 && str_c(out)[n - 1] != ' ')
		return str_append_c(out, ' ');
	return 0;
}

/*
 * html_text_tag - after '<', with p/n the bytes after it: the state the
 * tag starts and how many bytes of p it takes (*used_r). False when the
 * input ends before the tag name does.
 */
static bool
html_text_tag(const char *p, size_t n, enum html_text_state *st,
    size_t *used_r)
{
	size_t i;

	*used_r = 0;
	*st = HTML_TEXT_TAG;
	if (n >= 3 && memcmp(p, "!--", 3) == 0) {
		*st = HTML_TEXT_COMMENT;
		*used_r = 3;
	} else if (n >= 7 && strncasecmp(p, "script", 6) == 0 &&
	    (HTML_TEXT_WS(p[6]) || p[6] == '>')) {
		*st = HTML_TEXT_SCRIPT;
		*used_r = 7;
	} else if (n >= 6 && strncasecmp(p, "style", 5) == 0 &&
	    (HTML_TEXT_WS(p[5]) || p[5] == '>')) {
		*st = HTML_TEXT_STYLE;
		*used_r = 6;
	} else if (n >= 8 && strncasecmp(p, "![CDATA[", 8) == 0) {
		*st = HTML_TEXT_CDATA;
		*used_r = 8;
	} else if (n < 12) {
		/* as Dovecot: wait to see the end of a short tag name */
		for (i = 0; i < n; i++)
			if (HTML_TEXT_WS(p[i]) || p[i] == '>')
				break;
		if (i == n)
			return false;
	}
	return true;
}

/*
 * html_text_ref - after '&', with p/n the bytes after it: how many it
 * takes (*used_r). A name running into white space or past 9 bytes is
 * broken: only the '&' goes. False when the input ends before the ';'.
 */
static bool
html_text_ref(const char *p, size_t n, struct str *out, size_t *used_r,
    int *rc)
{
	size_t i;

	*used_r = 0;
	for (i = 0; i < n; i++) {
		if (HTML_TEXT_WS(p[i]) || i >= 10)
			return true;
		if (p[i] == ';')
			break;
	}
	if (i == n)
		return false;
	*rc |= html_text_entity(p, i, out);
	*used_r = i + 1;
	return true;
}

/* html_text_closes - whether p/n starts with the closing tag end (any case) */
static bool
html_text_closes(const char *p, size_t n, const char *end, bool *short_r)
{
	size_t k = strlen(end);

	*short_r = n < k;
	return strncasecmp(p, end, *short_r ? n : k) == 0;
}

/* html_text_convert - see html_text.h */
int
html_text_convert(const char *p, size_t n, struct str *out)
{
	enum html_text_state st = HTML_TEXT_TEXT;
	size_t i, used;
	bool cut;
	int rc = 0;	/* -1 once an append failed (out is full) */

	for (i = 0; i < n; i++) {
		char c = p[i];

		switch (st) {
		case HTML_TEXT_TEXT:
			if (c == '<') {
				if (!html_text_tag(p + i + 1, n - i - 1, &st,
				    &used))
					goto done;
				i += used;
			} else if (c == '&') {
				if (!html_text_ref(p + i + 1, n - i - 1, out,
				    &used, &rc))
					goto done;
				i += used;
			} else
				rc |= str_append_c(out, c);
			break;
		case HTML_TEXT_TAG:
			if (c == '"')
				st = HTML_TEXT_TAG_DQ;
			else if (c == '\'')
				st = HTML_TEXT_TAG_SQ;
			else if (c == '>') {
				st = HTML_TEXT_TEXT;
				rc |= html_text_space(out);
			}
			break;
		case HTML_TEXT_TAG_DQ:
			if (c == '"')
				st = HTML_TEXT_TAG;
			else if (c == '\\')
				st = HTML_TEXT_TAG_DQ_ESC;
			break;
		case HTML_TEXT_TAG_DQ_ESC:
			st = HTML_TEXT_TAG_DQ;
			break;
		case HTML_TEXT_TAG_SQ:
			if (c == '\'')
				st = HTML_TEXT_TAG;
			else if (c == '\\')
				st = HTML_TEXT_TAG_SQ_ESC;
			break;
		case HTML_TEXT_TAG_SQ_ESC:
			st = HTML_TEXT_TAG_SQ;
			break;
		case HTML_TEXT_COMMENT:
			if (c == '-') {
				if (i + 1 == n)
					goto done;
				if (p[i + 1] == '-') {
					st = HTML_TEXT_COMMENT_END;
					i++;
				}
			}
			break;
		case HTML_TEXT_COMMENT_END:
			if (c == '>')
				st = HTML_TEXT_TEXT;
			else if (!HTML_TEXT_WS(c))
				st = HTML_TEXT_COMMENT;
			break;
		case HTML_TEXT_SCRIPT:
		case HTML_TEXT_STYLE: {
			const char *end = st == HTML_TEXT_SCRIPT ? "</script>" :
			    "</style>";

			if (c != '<' || !html_text_closes(p + i, n - i, end,
			    &cut))
				break;
			if (cut)
				goto done;
			rc |= html_text_space(out);
			st = HTML_TEXT_TEXT;
			i += strlen(end) - 1;
			break;
		}
		case HTML_TEXT_CDATA:
			if (c == ']' && html_text_closes(p + i, n - i, "]]>",
			    &cut)) {
				if (cut)
					goto done;
				st = HTML_TEXT_TEXT;
				i += 2;
				break;
			}
			rc |= str_append_c(out, c);
			break;
		}
	}
done:
	if (rc < 0) {
		errno = E2BIG;
		return -1;
	}
	return 0;
}
