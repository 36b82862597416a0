/* SPDX-License-Identifier: MIT */
/*
 * list_archive - a list's mbox archive and its static HTML pages
 *
 * The archive of list L is $list_directory/L/archive/YYYY-MM.mbox
 * (mboxrd: "From SENDER DATE" separator lines, lines starting with
 * ">*From " quoted by one more '>', LF line ends), written by list-mgr.
 * list_archive_rebuild() makes archive/html/ from all of them:
 * index.html, date.html (by date), thread.html (by thread, from
 * In-Reply-To and References), and one page per message (mNNNNN.html).
 * Every text from a message is HTML-escaped; nothing from a message
 * becomes a file name. Pages are written with safe_file_replace.
 *
 * Errors: -1 with a static *error_r; nothing exits.
 */
#ifndef POSTERN_LIST_ARCHIVE_H
#define POSTERN_LIST_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "list_store.h"
#include "str.h"

/*
 * list_mbox_format - append one mboxrd entry for data/len (CRLF or LF)
 * to out: the separator line "From sender date", the message with LF
 * line ends and From-quoting, and an empty line.
 */
void list_mbox_format(const char *sender, const char *date, const char *data,
    size_t len, struct str *out);
/* list_archive_stale - an mbox is newer than html/index.html */
bool list_archive_stale(const struct list *l);
/* list_archive_rebuild - regenerate archive/html/; 0 or -1 */
int list_archive_rebuild(const struct list *l, const char **error_r);

#endif
