/* SPDX-License-Identifier: MIT */
/*
 * cleanup_addr - address qualification, canonical maps, recipient list
 *
 * DESCRIPTION
 *	Addresses arrive and leave in the canonical form of address.h.
 *	A domainless address is qualified with @$myorigin (Postfix
 *	append_at_myorigin); the special recipient "Postmaster" too. Then
 *	each map of the list is tried in order and the first hit of each
 *	map rewrites the address (sender_canonical_maps or
 *	recipient_canonical_maps first, then canonical_maps, as Postfix
 *	cleanup does), with Postfix canonical(5) lookup order:
 *	"user@domain", then "user" when domain is in $mydestination, then
 *	"@domain". A value "@other" replaces only the domain; any other
 *	value is the new address (qualified if it has no domain). A value
 *	that is not a valid address is logged and ignored.
 *
 *	A map lookup error is a temporary failure of the message (4.3.0),
 *	never a silently unrewritten address.
 *
 *	Recipients are deduplicated on the final address, ORCPT and
 *	NOTIFY (Postfix duplicate_filter) with an open-addressing hash set.
 *
 * SEE ALSO
 *	canonical(5) in Postfix, map.h, address.h
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "log.h"

#include "cleanup.h"

/* cleanup_addr_local - is domain one of $mydestination? */
bool
cleanup_addr_local(const char *domain)
{
	size_t i;

	for (i = 0; i < cleanup_settings.nmydestination; i++)
		if (strcasecmp(domain, cleanup_settings.mydestination[i]) == 0)
			return true;
	return false;
}

/* addr_parse - parse a canonical address into a */
static bool
addr_parse(const char *p, size_t n, bool recipient, struct address *a)
{
	unsigned flags = ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NO_DOMAIN |
	    (recipient ? ADDRESS_ALLOW_POSTMASTER : ADDRESS_ALLOW_NULL);

	return address_parse_mailbox(p, n, flags, a) == ADDRESS_OK;
}

/* addr_qualify - give a domainless address @$myorigin */
static void
addr_qualify(struct address *a)
{
	if (!a->null && str_len(a->domain) == 0)
		(void)str_set_cstr(a->domain, cleanup_settings.myorigin);
}

/* addr_map_one - look addr up in one map; 1 rewritten, 0 no hit, -1 error */
static int
addr_map_one(struct map *map, struct address *a, struct str *key,
    struct str *value, bool recipient, const char **error_r)
{
	struct address *n;
	int r;

	str_clear(key);
	(void)address_canonical(a, key);
	r = map_lookup(map, str_c(key), value, error_r);
	if (r == 0 && cleanup_addr_local(str_c(a->domain))) {
		str_clear(key);
		(void)address_quote_local(str_c(a->local), str_len(a->local),
		    key);
		r = map_lookup(map, str_c(key), value, error_r);
	}
	if (r == 0) {
		str_clear(key);
		(void)str_printf(key, "@%s", str_c(a->domain));
		r = map_lookup(map, str_c(key), value, error_r);
	}
	if (r <= 0)
		return r;
	if (str_len(value) > 1 && str_c(value)[0] == '@') {
		str_clear(key);
		if (address_parse_domain(str_c(value) + 1, str_len(value) - 1,
		    ADDRESS_SMTPUTF8, key) != ADDRESS_OK) {
			log_warn(NULL, "%s: bad domain in canonical map value "
			    "\"@%s\"; ignored", map_spec(map), str_c(value) + 1);
			return 0;
		}
		(void)str_set(a->domain, str_c(key), str_len(key));
		return 1;
	}
	n = address_new();
	if (!addr_parse(str_c(value), str_len(value), recipient, n) ||
	    n->null) {
		log_warn(NULL, "%s: bad address in canonical map value "
		    "\"%s\"; ignored", map_spec(map), str_c(value));
		address_free(&n);
		return 0;
	}
	addr_qualify(n);
	address_copy(a, n);
	address_free(&n);
	return 1;
}

/* cleanup_addr_rewrite - qualify and map an address in canonical form */
int
cleanup_addr_rewrite(struct str *addr, struct map **maps, size_t nmaps,
    bool recipient, const char **error_r)
{
	struct address *a = address_new();
	struct str *key, *value, *orig;
	size_t i;
	int r, ret = 0;

	if (!addr_parse(str_c(addr), str_len(addr), recipient, a)) {
		address_free(&a);
		*error_r = "malformed address";
		errno = EINVAL;
		return -1;
	}
	if (a->null) {
		address_free(&a);
		return 0;
	}
	addr_qualify(a);
	key = str_new(128, 0);
	value = str_new(128, 0);
	for (i = 0; i < nmaps; i++) {
		r = addr_map_one(maps[i], a, key, value, recipient, error_r);
		if (r < 0) {
			ret = -1;
			break;
		}
	}
	if (ret == 0) {
		orig = str_new(str_len(addr) + 1, 0);
		(void)str_append_str(orig, addr);
		str_clear(addr);
		(void)address_canonical(a, addr);
		ret = str_len(orig) != str_len(addr) ||
		    memcmp(str_c(orig), str_c(addr), str_len(addr)) != 0;
		str_free(&orig);
	}
	str_free(&key);
	str_free(&value);
	address_free(&a);
	return ret;
}

/* ------------------------------------------------- duplicate filter */

struct cleanup_rcpt_set {
	char **slots;
	size_t cap;		/* a power of two */
	size_t count;
};

static uint64_t
rcpt_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* rcpt_set_add - false if key was there already */
static bool
rcpt_set_add(struct cleanup_rcpt_set *set, const char *key)
{
	size_t i, j;

	if (set->count * 2 >= set->cap) {
		struct cleanup_rcpt_set bigger;

		bigger.cap = set->cap == 0 ? 64 : set->cap * 2;
		bigger.slots = xcalloc(bigger.cap, sizeof(char *));
		bigger.count = 0;
		for (i = 0; i < set->cap; i++) {
			if (set->slots[i] == NULL)
				continue;
			j = rcpt_hash(set->slots[i]) & (bigger.cap - 1);
			while (bigger.slots[j] != NULL)
				j = (j + 1) & (bigger.cap - 1);
			bigger.slots[j] = set->slots[i];
			bigger.count++;
		}
		free(set->slots);
		*set = bigger;
	}
	j = rcpt_hash(key) & (set->cap - 1);
	while (set->slots[j] != NULL) {
		if (strcmp(set->slots[j], key) == 0)
			return false;
		j = (j + 1) & (set->cap - 1);
	}
	set->slots[j] = xstrdup(key);
	set->count++;
	return true;
}

/* cleanup_rcpt_set_free - free the duplicate filter (NULL allowed) */
void
cleanup_rcpt_set_free(struct cleanup_rcpt_set **setp)
{
	struct cleanup_rcpt_set *set = *setp;
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	free(set);
	*setp = NULL;
}

/* cleanup_rcpt_add - rewrite, deduplicate and write one recipient */
void
cleanup_rcpt_add(struct cleanup_state *st, const struct queue_rcpt *in)
{
	struct queue_rcpt r = *in;
	struct str *addr, *key, *printable;
	const char *error;
	int changed;

	if (st->status != CLEANUP_OK)
		return;
	addr = str_new(128, 0);
	(void)str_set_cstr(addr, in->address);
	changed = cleanup_addr_rewrite(addr, cleanup_settings.rcpt_maps,
	    cleanup_settings.nrcpt_maps, true, &error);
	if (changed < 0) {
		printable = str_new(128, 0);
		mem_printable(printable, in->address, strlen(in->address), 200);
		if (errno == EINVAL)
			cleanup_fail(st, CLEANUP_REJECT,
			    "5.1.3 bad recipient address syntax: <%s>",
			    str_c(printable));
		else
			cleanup_fail(st, CLEANUP_TEMPFAIL,
			    "4.3.0 recipient address lookup failed: %s", error);
		str_free(&printable);
		str_free(&addr);
		return;
	}
	r.address = str_c(addr);
	if (changed && r.original == NULL)
		r.original = in->address;
	key = str_new(128, 0);
	(void)str_printf(key, "%s%c%s%c%s%c%u", r.address, 1,
	    r.orcpt_type != NULL ? r.orcpt_type : "", 1,
	    r.orcpt != NULL ? r.orcpt : "", 1, r.notify);
	if (st->rcpts == NULL)
		st->rcpts = xcalloc(1, sizeof(*st->rcpts));
	if (!rcpt_set_add(st->rcpts, str_c(key))) {
		log_debug(&st->ctx, "duplicate recipient <%s> dropped", r.address);
	} else if (queue_file_add_rcpt(st->w, &r, &error) < 0) {
		if (errno == E2BIG)
			cleanup_fail(st, CLEANUP_REJECT,
			    "5.5.3 too many recipients");
		else if (errno == EINVAL)
			cleanup_fail(st, CLEANUP_REJECT,
			    "5.1.3 bad recipient: %s", error);
		else
			cleanup_fail(st, CLEANUP_TEMPFAIL,
			    "4.3.0 queue file write error: %s", error);
	} else {
		st->nrcpt++;
	}
	str_free(&key);
	str_free(&addr);
}
