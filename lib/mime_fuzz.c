/* SPDX-License-Identifier: MIT */
/*
 * mime_fuzz - libFuzzer target for mime.c, imap_envelope.c, mime_decode.c
 *
 * Parses the input as a stored message (the first byte picks small
 * limits now and then, so the depth and part limits are reached), renders
 * ENVELOPE, BODY and BODYSTRUCTURE, checks the tree's offsets, looks up
 * every part by its section number with each section keyword, and
 * decodes every leaf. The input is also parsed as one Content-Type and
 * one Content-Disposition value (mime_field_parse, for Sieve :mime).
 * Any overread, leak or inconsistency is a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "imap_envelope.h"
#include "mime.h"
#include "mime_decode.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_check - offsets of part and its subtree lie inside [lo, hi) */
static void
fuzz_check(const struct mime_part *part, size_t lo, size_t hi)
{
	const struct mime_part *c;
	unsigned int n = 0;

	if (part->hdr_offset < lo || part->body_offset !=
	    part->hdr_offset + part->hdr_size ||
	    part->body_offset + part->body_size > hi)
		abort();
	for (c = part->children; c != NULL; c = c->next, n++) {
		if (c->parent != part)
			abort();
		fuzz_check(c, part->body_offset,
		    part->body_offset + part->body_size);
	}
	if (n != part->child_count)
		abort();
}

/* fuzz_sections - look up each part by number, as imapd would */
static void
fuzz_sections(const struct mime_message *msg, const struct mime_part *ctx,
    struct str *path, struct str *out, unsigned int *budget)
{
	static const char *const kw[] = { "", ".MIME", ".HEADER", ".TEXT" };
	const struct mime_part *c, *first;
	struct mime_section sec;
	const char *error;
	size_t len = str_len(path), i, msize;
	unsigned int num = 1;

	(void)mime_message_data(msg, &msize);
	if ((ctx->flags & MIME_PART_MULTIPART) != 0)
		first = ctx->children;
	else
		first = ctx;	/* "1" names the body of a single part */
	for (c = first; c != NULL && *budget > 0; c = c->next, num++) {
		(*budget)--;
		str_truncate(path, len);
		(void)str_printf(path, "%s%u", len > 0 ? "." : "", num);
		for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
			size_t plen = str_len(path);

			(void)str_append_cstr(path, kw[i]);
			if (mime_section_find(msg, str_c(path),
			    str_len(path), &sec, &error) == 0 &&
			    sec.offset + sec.size > msize)
				abort();
			str_truncate(path, plen);
		}
		if (mime_part_find(msg, str_c(path), str_len(path)) != c)
			abort();
		str_clear(out);
		(void)mime_decode_part(msg, c, out);
		if ((c->flags & MIME_PART_MESSAGE) != 0)
			fuzz_sections(msg, c->children, path, out, budget);
		else if ((c->flags & MIME_PART_MULTIPART) != 0)
			fuzz_sections(msg, c, path, out, budget);
		if (ctx == first)
			break;	/* a single part has no siblings */
	}
	str_truncate(path, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits limits;
	struct mime_message *msg;
	struct str *a = str_new(0, 0), *b = str_new(0, 0), *c = str_new(0, 0);
	struct str *path = str_new(0, 0);
	const struct mime_part *root;
	unsigned int budget = 2000;
	char *copy;

	mime_limits_default(&limits);
	if (size > 0 && data[0] == 0x01) {
		limits.max_depth = 3;
		limits.max_parts = 5;
		limits.max_header_size = 64;
	}
	/* An exact-size copy, so ASan sees any read past the end. */
	copy = xmemdup(data, size);
	msg = mime_parse(copy, size, &limits);
	root = mime_message_root(msg);
	fuzz_check(root, 0, size);
	(void)imap_envelope_write(a, copy + root->hdr_offset, root->hdr_size);
	(void)imap_envelope_bodystructure(b, msg, root, false);
	(void)imap_envelope_bodystructure(c, msg, root, true);
	fuzz_sections(msg, root, path, a, &budget);
	mime_message_free(&msg);
	msg = mime_field_parse(copy, size, true);
	root = mime_message_root(msg);
	if ((root->type == NULL) != (root->subtype == NULL))
		abort();
	(void)mime_part_param(root, "charset", true);
	mime_message_free(&msg);
	msg = mime_field_parse(copy, size, false);
	(void)mime_part_disposition_param(mime_message_root(msg), "filename",
	    true);
	mime_message_free(&msg);
	free(copy);
	str_free(&a);
	str_free(&b);
	str_free(&c);
	str_free(&path);
	return 0;
}
