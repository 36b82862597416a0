/* SPDX-License-Identifier: MIT */
/*
 * scache_table - the sessions scache(8) holds
 *
 * DESCRIPTION
 *	A small array in park order (oldest first): the table holds at
 *	most $scache_size_limit sessions, a few dozen in practice, so a
 *	linear scan costs less than any index. A session leaves by a GET
 *	(the newest one of its key: it has idled the least), by expiry
 *	after the ttl ($smtp_connection_cache_time, counted from the
 *	park), or when a new one needs its place (the oldest goes). A
 *	closed session gets a "QUIT", written without waiting (the socket
 *	is non-blocking as the agent left it, or the write is dropped).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "macros.h"
#include "scache.h"

struct scache_entry {
	struct scache_rec rec;
	int fd;
	int64_t expires;		/* ms */
};

static struct scache_entry *scache_entries;
static size_t scache_n, scache_limit;
static int64_t scache_ttl_ms;

/* scache_table_init - see scache.h */
void
scache_table_init(size_t limit, int64_t ttl_ms)
{
	ASSERT(limit >= 1 && scache_entries == NULL);
	scache_limit = limit;
	scache_ttl_ms = ttl_ms;
	scache_entries = xcalloc(limit, sizeof(*scache_entries));
}

/* scache_entry_close - QUIT (not waited for), close, drop entry i */
static void
scache_entry_close(size_t i)
{
	struct scache_entry *e = &scache_entries[i];

	(void)send(e->fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)close(e->fd);
	scache_rec_clear(&e->rec);
	memmove(e, e + 1, (scache_n - i - 1) * sizeof(*e));
	scache_n--;
}

/* scache_table_put - see scache.h */
void
scache_table_put(const struct scache_rec *r, int fd, int64_t now)
{
	struct scache_entry *e;

	if (scache_n == scache_limit)
		scache_entry_close(0);
	e = &scache_entries[scache_n++];
	memset(e, 0, sizeof(*e));
	e->rec.op = SCACHE_OP_PUT;
	e->rec.ext = r->ext;
	e->rec.token_ext = r->token_ext;
	e->rec.size_max = r->size_max;
	e->rec.key = xstrdup(r->key != NULL ? r->key : "");
	e->rec.host = xstrdup(r->host != NULL ? r->host : "");
	e->fd = fd;
	e->expires = now + scache_ttl_ms;
}

/* scache_table_get - see scache.h */
int
scache_table_get(const char *key, int64_t now, struct scache_rec *r_r)
{
	size_t i;
	int fd;

	memset(r_r, 0, sizeof(*r_r));
	(void)scache_table_expire(now);
	for (i = scache_n; i-- > 0;) {
		struct scache_entry *e = &scache_entries[i];

		if (strcmp(e->rec.key, key) != 0)
			continue;
		*r_r = e->rec;
		fd = e->fd;
		memmove(e, e + 1, (scache_n - i - 1) * sizeof(*e));
		scache_n--;
		return fd;
	}
	return -1;
}

/* scache_table_expire - see scache.h */
int64_t
scache_table_expire(int64_t now)
{
	/* park order is expiry order: the expired ones are in front */
	while (scache_n > 0 && scache_entries[0].expires <= now)
		scache_entry_close(0);
	return scache_n > 0 ? scache_entries[0].expires - now : 0;
}

/* scache_table_count - see scache.h */
size_t
scache_table_count(void)
{
	return scache_n;
}

/* scache_table_close_all - see scache.h */
void
scache_table_close_all(void)
{
	while (scache_n > 0)
		scache_entry_close(scache_n - 1);
}
