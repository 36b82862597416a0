/* SPDX-License-Identifier: MIT */
/*
 * html_text - the plain text of an HTML body, for Sieve extracttext
 *
 * The conversion is Dovecot's (src/lib-mail/mail-html2text.c), so that
 * Postern's Sieve gives what Pigeonhole gives: tags go and each one
 * that ends leaves one space; comments, <script> and <style> contents
 * go; CDATA text stays; character references (&amp;, &#233;, &#xE9;)
 * become UTF-8, unknown or broken ones are dropped; an unfinished tag,
 * comment or reference at the end of the input is dropped. Whitespace
 * is kept as it is. It is a text extractor, not an HTML parser.
 */
#ifndef POSTERN_HTML_TEXT_H
#define POSTERN_HTML_TEXT_H

#include <stddef.h>

struct str;

/*
 * html_text_convert - append the text of the HTML p/n to out. Returns
 * 0, or -1 with errno E2BIG when out reached its maximum (out then holds
 * what fitted). Never ends the process except on allocation failure.
 */
int html_text_convert(const char *p, size_t n, struct str *out);

#endif
