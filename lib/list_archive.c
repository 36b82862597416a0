/* SPDX-License-Identifier: MIT */
/*
 * list_archive - a list's mbox archive and its static HTML (list_archive.h)
 *
 * DESCRIPTION
 *	The rebuild reads every archive/YYYY-MM.mbox in name (= month) order,
 *	splits at separator lines, and keeps per message its Subject, From,
 *	Date, Message-ID and parent (last References entry, else
 *	In-Reply-To). Threads: a message whose parent's Message-ID is in
 *	the archive is listed under it (depth capped), others start a
 *	thread. At most LIST_ARCHIVE_MAX messages are indexed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "header.h"
#include "list_archive.h"
#include "safe_file.h"
#include "str.h"

#define LIST_ARCHIVE_MAX	200000
#define LIST_ARCHIVE_DEPTH	20

struct list_arch_msg {
	char *subject, *from, *date, *msgid, *parent;
	size_t parent_idx;	/* index+1, 0 = none */
	size_t first_child, next_sibling;	/* index+1 */
};

/* list_mbox_format - see list_archive.h */
void
list_mbox_format(const char *sender, const char *date, const char *data,
    size_t len, struct str *out)
{
	const char *p = data, *end = data + len, *nl, *q;
	size_t n;

	str_printf(out, "From %s %s\n", sender, date);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		for (q = p; q < p + n && *q == '>'; q++)
			;
		if ((size_t)(p + n - q) >= 5 && strncmp(q, "From ", 5) == 0)
			str_append_c(out, '>');
		str_append(out, p, n);
		str_append_c(out, '\n');
		p = nl != NULL ? nl + 1 : end;
	}
	str_append_c(out, '\n');
}

/* list_html_escape - append p/n HTML-escaped (printable) */
static void
list_html_escape(struct str *out, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '<')
			str_append_cstr(out, "&lt;");
		else if (c == '>')
			str_append_cstr(out, "&gt;");
		else if (c == '&')
			str_append_cstr(out, "&amp;");
		else if (c == '"')
			str_append_cstr(out, "&quot;");
		else if (c == '\r')
			continue;
		else if (c < 0x20 && c != '\n' && c != '\t')
			str_append_c(out, '?');
		else
			str_append_c(out, (char)c);
	}
}

static void
list_html_escape_cstr(struct str *out, const char *s)
{
	list_html_escape(out, s, strlen(s));
}

/* list_arch_field - unfolded value of name, or "" (owned) */
static char *
list_arch_field(const char *hdr, size_t hl, const char *name)
{
	struct header_field f;
	struct str *v = str_new(0, 2000);

	if (header_find(hdr, hl, name, &f))
		(void)header_unfold(f.value, f.value_len, v);
	return str_steal(&v);
}

/* list_arch_last_id - the last "<...>" in s (owned), or NULL */
static char *
list_arch_last_id(const char *s)
{
	const char *lt = strrchr(s, '<'), *gt;

	if (lt == NULL || (gt = strchr(lt, '>')) == NULL)
		return NULL;
	return xstrndup(lt, (size_t)(gt - lt + 1));
}

static int
list_arch_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list_arch_page_head - the start of a page */
static void
list_arch_page_head(struct str *out, const struct list *l, const char *title)
{
	str_append_cstr(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>");
	list_html_escape_cstr(out, l->name);
	str_append_cstr(out, ": ");
	list_html_escape_cstr(out, title);
	str_append_cstr(out, "</title></head><body>\n<h1>");
	list_html_escape_cstr(out, l->name);
	str_append_cstr(out, ": ");
	list_html_escape_cstr(out, title);
	str_append_cstr(out, "</h1>\n<p><a href=\"index.html\">index</a> | "
	    "<a href=\"date.html\">by date</a> | <a href=\"thread.html\">by "
	    "thread</a></p>\n");
}

/* list_arch_item - one list entry for message i */
static void
list_arch_item(struct str *out, const struct list_arch_msg *m, size_t i)
{
	str_printf(out, "<li><a href=\"m%05zu.html\">", i + 1);
	list_html_escape_cstr(out, m->subject[0] != '\0' ? m->subject :
	    "(no subject)");
	str_append_cstr(out, "</a> <i>");
	list_html_escape_cstr(out, m->from);
	str_append_cstr(out, "</i> ");
	list_html_escape_cstr(out, m->date);
	str_append_cstr(out, "</li>\n");
}

/* list_arch_thread - message i and its replies, nested */
static void
list_arch_thread(struct str *out, const struct list_arch_msg *ms, size_t i,
    unsigned depth)
{
	size_t c;

	list_arch_item(out, &ms[i], i);
	if (ms[i].first_child == 0)
		return;
	if (depth >= LIST_ARCHIVE_DEPTH) {
		str_append_cstr(out, "<ul>\n");
		for (c = ms[i].first_child; c != 0; c = ms[c - 1].next_sibling)
			list_arch_item(out, &ms[c - 1], c - 1);
		str_append_cstr(out, "</ul>\n");
		return;
	}
	str_append_cstr(out, "<ul>\n");
	for (c = ms[i].first_child; c != 0; c = ms[c - 1].next_sibling)
		list_arch_thread(out, ms, c - 1, depth + 1);
	str_append_cstr(out, "</ul>\n");
}

/* list_archive_rebuild - see list_archive.h */
int
list_archive_rebuild(const struct list *l, const char **error_r)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0),
	    *data = str_new(0, 0), *page = str_new(0, 0),
	    *hdir = str_new(0, 0);
	struct list_arch_msg *ms = NULL;
	char **names = NULL;
	size_t nnames = 0, n = 0, cap = 0, i, j, last_child;
	struct dirent *de;
	DIR *d;
	int rc = -1;

	list_path(l, "archive", dir);
	list_path(l, "archive/html", hdir);
	(void)mkdir(str_c(dir), 0750);
	(void)mkdir(str_c(hdir), 0755);
	if ((d = opendir(str_c(dir))) == NULL) {
		*error_r = "cannot read the archive directory";
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (nl > 5 && strcmp(de->d_name + nl - 5, ".mbox") == 0 &&
		    de->d_name[0] != '.') {
			names = xreallocarray(names, nnames + 1, sizeof(char *));
			names[nnames++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	if (nnames > 1)		/* names is NULL when there are none */
		qsort(names, nnames, sizeof(char *), list_arch_namecmp);
	for (i = 0; i < nnames && n < LIST_ARCHIVE_MAX; i++) {
		const char *p, *end, *start, *next;

		str_clear(path);
		str_printf(path, "%s/%s", str_c(dir), names[i]);
		if (read_file(str_c(path), data, 2UL * 1024 * 1024 * 1024) < 0)
			continue;
		p = str_c(data);
		end = p + str_len(data);
		while (p < end && n < LIST_ARCHIVE_MAX) {
			size_t hl;

			if (strncmp(p, "From ", 5) != 0)
				break;
			start = memchr(p, '\n', (size_t)(end - p));
			if (start == NULL)
				break;
			start++;
			next = start;
			for (;;) {
				next = memmem(next, (size_t)(end - next), "\n\nFrom ", 7);
				if (next == NULL) {
					next = end;
					break;
				}
				next += 2;
				break;
			}
			if (n == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				ms = xreallocarray(ms, cap, sizeof(*ms));
			}
			memset(&ms[n], 0, sizeof(ms[n]));
			hl = header_block_size(start, (size_t)(next - start));
			ms[n].subject = list_arch_field(start, hl, "Subject");
			ms[n].from = list_arch_field(start, hl, "From");
			ms[n].date = list_arch_field(start, hl, "Date");
			ms[n].msgid = list_arch_field(start, hl, "Message-ID");
			{
				char *refs = list_arch_field(start, hl, "References");
				char *irt = list_arch_field(start, hl, "In-Reply-To");

				ms[n].parent = list_arch_last_id(refs);
				if (ms[n].parent == NULL)
					ms[n].parent = list_arch_last_id(irt);
				free(refs);
				free(irt);
			}
			/* the message page */
			str_clear(page);
			list_arch_page_head(page, l, ms[n].subject);
			str_append_cstr(page, "<pre>From: ");
			list_html_escape_cstr(page, ms[n].from);
			str_append_cstr(page, "\nDate: ");
			list_html_escape_cstr(page, ms[n].date);
			str_append_cstr(page, "\nSubject: ");
			list_html_escape_cstr(page, ms[n].subject);
			str_append_cstr(page, "\n\n");
			list_html_escape(page, start + hl,
			    (size_t)(next - start) - hl);
			str_append_cstr(page, "</pre></body></html>\n");
			str_clear(path);
			str_printf(path, "%s/m%05zu.html", str_c(hdir), n + 1);
			(void)safe_file_replace(str_c(path), str_c(page),
			    str_len(page), 0644);
			n++;
			p = next;
		}
	}
	/* threads: link each message to the latest earlier one it names */
	for (i = 0; i < n; i++) {
		if (ms[i].parent == NULL)
			continue;
		for (j = i; j-- > 0;)
			if (strcmp(ms[j].msgid, ms[i].parent) == 0) {
				ms[i].parent_idx = j + 1;
				break;
			}
		if (ms[i].parent_idx == 0)
			continue;
		j = ms[i].parent_idx - 1;
		if (ms[j].first_child == 0)
			ms[j].first_child = i + 1;
		else {
			for (last_child = ms[j].first_child;
			    ms[last_child - 1].next_sibling != 0;
			    last_child = ms[last_child - 1].next_sibling)
				;
			ms[last_child - 1].next_sibling = i + 1;
		}
	}
	str_clear(page);
	list_arch_page_head(page, l, "by date");
	str_append_cstr(page, "<ul>\n");
	for (i = 0; i < n; i++)
		list_arch_item(page, &ms[i], i);
	str_append_cstr(page, "</ul></body></html>\n");
	str_clear(path);
	str_printf(path, "%s/date.html", str_c(hdir));
	if (safe_file_replace(str_c(path), str_c(page), str_len(page), 0644) < 0)
		goto werr;
	str_clear(page);
	list_arch_page_head(page, l, "by thread");
	str_append_cstr(page, "<ul>\n");
	for (i = 0; i < n; i++)
		if (ms[i].parent_idx == 0)
			list_arch_thread(page, ms, i, 0);
	str_append_cstr(page, "</ul></body></html>\n");
	str_clear(path);
	str_printf(path, "%s/thread.html", str_c(hdir));
	if (safe_file_replace(str_c(path), str_c(page), str_len(page), 0644) < 0)
		goto werr;
	str_clear(page);
	list_arch_page_head(page, l, "archive");
	str_printf(page, "<p>%zu messages.</p>\n</body></html>\n", n);
	str_clear(path);
	str_printf(path, "%s/index.html", str_c(hdir));
	if (safe_file_replace(str_c(path), str_c(page), str_len(page), 0644) < 0)
		goto werr;
	rc = 0;
	goto out;
werr:
	*error_r = "cannot write the HTML pages";
out:
	for (i = 0; i < n; i++) {
		free(ms[i].subject);
		free(ms[i].from);
		free(ms[i].date);
		free(ms[i].msgid);
		free(ms[i].parent);
	}
	free(ms);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	str_free(&dir);
	str_free(&path);
	str_free(&data);
	str_free(&page);
	str_free(&hdir);
	return rc;
}

/* list_archive_stale - see list_archive.h */
bool
list_archive_stale(const struct list *l)
{
	struct str *dir = str_new(0, 0), *path = str_new(0, 0);
	struct stat st, idx;
	struct dirent *de;
	bool stale = false, have_idx;
	DIR *d;

	list_path(l, "archive", dir);
	str_printf(path, "%s/html/index.html", str_c(dir));
	have_idx = stat(str_c(path), &idx) == 0;
	if ((d = opendir(str_c(dir))) != NULL) {
		while (!stale && (de = readdir(d)) != NULL) {
			size_t nl = strlen(de->d_name);

			if (nl <= 5 || strcmp(de->d_name + nl - 5, ".mbox") != 0)
				continue;
			str_clear(path);
			str_printf(path, "%s/%s", str_c(dir), de->d_name);
			if (stat(str_c(path), &st) == 0 && (!have_idx ||
			    st.st_mtime >= idx.st_mtime))
				stale = true;
		}
		closedir(d);
	}
	str_free(&dir);
	str_free(&path);
	return stale;
}
