/* SPDX-License-Identifier: MIT */
/*
 * header - RFC 5322 header blocks: find the end, split fields, unfold, look up
 *
 * A header block is parsed in place: nothing here copies the input or
 * allocates, and every pointer handed back points into the caller's bytes,
 * which must stay unchanged while it is used. Input is (pointer, length);
 * it may hold NUL and 8-bit bytes, and lines may end in CRLF or a bare LF.
 *
 * A field runs from its first line to the last continuation line (one that
 * starts with SP or HTAB). A line without a colon is still a field (its name
 * is the whole line, its value empty, no_colon set), as Dovecot does, so a
 * broken line never hides the fields after it. The block ends at the first
 * empty line, or at the end of the input.
 *
 * Nothing here can fail or end the process on any input.
 */
#ifndef POSTERN_HEADER_H
#define POSTERN_HEADER_H

#include <stdbool.h>
#include <stddef.h>

struct str;

struct header_field {
	const char *name;	/* into the input; not NUL-terminated */
	size_t name_len;	/* without WSP before the colon */
	const char *value;	/* raw: after the colon, folds kept, final EOL not */
	size_t value_len;
	size_t offset;		/* of the field's first byte in the block */
	size_t size;		/* the whole field including its final EOL */
	bool no_colon;		/* a line without ':' (name = whole line) */
};

struct header_iter {
	const char *p;		/* private */
	size_t n;		/* private */
	size_t pos;		/* private */
};

/*
 * header_block_size - the size of the header block at the start of p/n,
 * including the empty line that ends it; the body starts there. Without
 * an empty line the whole input is header and the result is n. A message
 * that starts with an empty line has an empty header (result 1 or 2).
 */
size_t header_block_size(const char *p, size_t n);

/* header_iter_init - iterate the fields of the header block p/n */
void header_iter_init(struct header_iter *it, const char *p, size_t n);
/*
 * header_iter_next - the next field into *f; false at the end of the
 * block (the empty line or the end of p/n).
 */
bool header_iter_next(struct header_iter *it, struct header_field *f);

/* header_name_is - whether the field's name is name (ASCII case-insensitive) */
bool header_name_is(const struct header_field *f, const char *name);

/*
 * header_find - the first field named name (case-insensitive) in the block
 * p/n into *f; false if there is none.
 */
bool header_find(const char *p, size_t n, const char *name,
    struct header_field *f);

/*
 * header_unfold - append the value p/n to out with the line ends of folds
 * removed (the WSP after them stays, RFC 5322 3.2.2), and leading and
 * trailing WSP trimmed. Returns 0, or -1 (E2BIG) if out hit its maximum.
 */
int header_unfold(const char *p, size_t n, struct str *out);

/*
 * header_trim - shrink the range *p, *n to drop leading and trailing SP, HTAB, CR, LF.
 */
void header_trim(const char **p, size_t *n);

#endif
