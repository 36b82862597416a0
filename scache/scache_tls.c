/* SPDX-License-Identifier: MIT */
/*
 * scache_tls - the TLS client sessions scache(8) holds for the agents
 *
 * DESCRIPTION
 *	Postfix keeps the smtp client's TLS sessions in tlsmgr(8)'s
 *	session cache database; Postern keeps them here, in the memory of
 *	scache, the per-instance cache daemon the agents already share.
 *	An agent stores the session of a handshake it made (TLS_PUT: a
 *	serialized SSL_SESSION under a key that names the destination and
 *	the TLS policy it was made under); an agent of any process that
 *	is about to make a handshake with the same key asks for it
 *	(TLS_GET) and offers it to the server for resumption.
 *
 *	One session per key: a put replaces the session the key had (the
 *	newest one carries the server's latest ticket). A get leaves it in
 *	place, as Postfix's cache does: several agents may offer one
 *	session at once, and a server that does not want that answers
 *	with a full handshake. A session stays $smtp_tls_session_cache_timeout
 *	after its put; at most SCACHE_TLS_LIMIT sessions are held (the
 *	oldest goes for a new one), so memory stays below SCACHE_TLS_LIMIT
 *	times SCACHE_DATA_MAX plus the keys.
 *
 *	A small array in put order, which with one timeout is expiry
 *	order: a linear scan of at most SCACHE_TLS_LIMIT keys costs
 *	microseconds, well below one request's system calls.
 *
 *	The sessions are secrets (each holds a master secret or resumption
 *	key): they are wiped when they leave the table, and they never
 *	leave the process except in a reply to an agent. Losing them
 *	costs full handshakes, nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "macros.h"
#include "scache.h"

struct scache_tls_entry {
	char *key;
	unsigned char *data;
	size_t len;
	int64_t expires;		/* ms */
};

static struct scache_tls_entry *scache_tls_entries;
static size_t scache_tls_n, scache_tls_limit;
static int64_t scache_tls_ttl_ms;

/* scache_tls_init - see scache.h */
void
scache_tls_init(size_t limit, int64_t ttl_ms)
{
	ASSERT(limit >= 1 && scache_tls_entries == NULL);
	scache_tls_limit = limit;
	scache_tls_ttl_ms = ttl_ms;
	scache_tls_entries = xcalloc(limit, sizeof(*scache_tls_entries));
}

/* scache_tls_drop - wipe and remove entry i */
static void
scache_tls_drop(size_t i)
{
	struct scache_tls_entry *e = &scache_tls_entries[i];

	explicit_bzero(e->data, e->len);
	free(e->data);
	free(e->key);
	memmove(e, e + 1, (scache_tls_n - i - 1) * sizeof(*e));
	scache_tls_n--;
}

/* scache_tls_find - the index of key, or scache_tls_n */
static size_t
scache_tls_find(const char *key)
{
	size_t i;

	for (i = 0; i < scache_tls_n; i++)
		if (strcmp(scache_tls_entries[i].key, key) == 0)
			break;
	return i;
}

/* scache_tls_put - see scache.h */
bool
scache_tls_put(const char *key, const void *data, size_t len, int64_t now)
{
	struct scache_tls_entry *e;
	size_t i;

	if (scache_tls_ttl_ms <= 0 || len == 0 || len > SCACHE_DATA_MAX)
		return false;
	if ((i = scache_tls_find(key)) < scache_tls_n)
		scache_tls_drop(i);
	else if (scache_tls_n == scache_tls_limit)
		scache_tls_drop(0);
	e = &scache_tls_entries[scache_tls_n++];
	e->key = xstrdup(key);
	e->data = xmalloc(len);
	memcpy(e->data, data, len);
	e->len = len;
	e->expires = now + scache_tls_ttl_ms;
	return true;
}

/* scache_tls_get - see scache.h */
bool
scache_tls_get(const char *key, int64_t now, struct scache_rec *r_r)
{
	const struct scache_tls_entry *e;
	size_t i;

	(void)scache_tls_expire(now);
	if ((i = scache_tls_find(key)) == scache_tls_n)
		return false;
	e = &scache_tls_entries[i];
	r_r->data = xmalloc(e->len);
	memcpy(r_r->data, e->data, e->len);
	r_r->data_len = e->len;
	return true;
}

/* scache_tls_expire - see scache.h */
int64_t
scache_tls_expire(int64_t now)
{
	/* put order is expiry order: the expired ones are in front */
	while (scache_tls_n > 0 && scache_tls_entries[0].expires <= now)
		scache_tls_drop(0);
	return scache_tls_n > 0 ? scache_tls_entries[0].expires - now : 0;
}

/* scache_tls_count - see scache.h */
size_t
scache_tls_count(void)
{
	return scache_tls_n;
}

/* scache_tls_clear - see scache.h */
void
scache_tls_clear(void)
{
	while (scache_tls_n > 0)
		scache_tls_drop(scache_tls_n - 1);
}
