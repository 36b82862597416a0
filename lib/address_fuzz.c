/* SPDX-License-Identifier: MIT */
/*
 * address_fuzz - libFuzzer target for address.c
 *
 * The first octet selects the parser flags, the rest is the input. Beyond
 * "no crash, no leak" it checks the round-trip contract: the canonical
 * form of every address either parser accepts parses back, as a mailbox,
 * to an equal address.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct address *a, struct str *buf, struct address *b)
{
	unsigned f = ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NULL |
	    ADDRESS_ALLOW_NO_DOMAIN;

	str_clear(buf);
	ASSERT(address_canonical(a, buf) == 0);
	ASSERT(str_len(buf) <= ADDRESS_CANONICAL_MAX);
	ASSERT(address_parse_mailbox(str_c(buf), str_len(buf), f, b) ==
	    ADDRESS_OK);
	ASSERT(address_equal(a, b));
	ASSERT(str_len(a->local) == str_len(b->local) &&
	    memcmp(str_c(a->local), str_c(b->local), str_len(a->local)) == 0);
	ASSERT(a->utf8 == b->utf8);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct address *a, *b;
	struct address_list *list;
	struct str *buf;
	const char *p = (const char *)data + 1, *error;
	size_t len, i;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0];
	len = size - 1;
	a = address_new();
	b = address_new();
	buf = str_new(0, 0);
	list = address_list_new();

	if (address_parse_path(p, len, flags & 0x0f, a) == ADDRESS_OK)
		check_round_trip(a, buf, b);
	if (address_parse_mailbox(p, len, flags & 0x0f, a) == ADDRESS_OK)
		check_round_trip(a, buf, b);
	(void)address_parse_domain(p, len, flags & 0x01, buf);
	(void)address_list_parse(p, len, (flags >> 4) & 0x03, 50, list, &error);
	for (i = 0; i < list->count; i++) {
		check_round_trip(list->items[i].addr, buf, b);
		str_clear(buf);
		(void)address_list_item_format(&list->items[i], buf);
	}
	address_list_free(&list);
	str_free(&buf);
	address_free(&a);
	address_free(&b);
	return 0;
}
