/* SPDX-License-Identifier: MIT */
/*
 * scache.h - private interface of scache(8): the table of parked sessions
 *
 * scache_table.c holds the sessions (an fd each, with the state the
 * agent needs to go on: struct scache_rec without op/status) under their
 * key; scache.c speaks the protocol (lib/scache_proto.h).
 */
#ifndef POSTERN_SCACHE_H
#define POSTERN_SCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scache_proto.h"

/*
 * scache_table_init - at most limit sessions (>= 1), each kept ttl_ms
 * milliseconds
 */
void scache_table_init(size_t limit, int64_t ttl_ms);
/*
 * scache_table_put - park fd (taken over) with the state in r (copied)
 * at time now (ms). With the table full, the oldest session is closed
 * first.
 */
void scache_table_put(const struct scache_rec *r, int fd, int64_t now);
/*
 * scache_table_get - the most recently parked unexpired session under
 * key: its fd (the caller owns it) and its state in r_r (owned:
 * scache_rec_clear), removed from the table; -1 when there is none.
 */
int scache_table_get(const char *key, int64_t now, struct scache_rec *r_r);
/*
 * scache_table_expire - close the sessions parked longer than the ttl;
 * the ms until the next one expires, 0 when the table is empty
 */
int64_t scache_table_expire(int64_t now);
/* scache_table_count - how many sessions are parked */
size_t scache_table_count(void);
/* scache_table_close_all - close every session (QUIT, unanswered) */
void scache_table_close_all(void);

#endif
