/* SPDX-License-Identifier: MIT */
/*
 * scache.h - private interface of scache(8): the table of parked sessions
 *
 * scache_table.c holds the sessions (an fd each, with the state the
 * agent needs to go on: struct scache_rec without op/status) under their
 * key; scache_tls.c holds TLS client sessions (serialized, secret)
 * under theirs; scache.c speaks the protocol (lib/scache_proto.h).
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

/* The most TLS sessions held (each at most SCACHE_DATA_MAX octets). */
#define SCACHE_TLS_LIMIT	1000

/*
 * scache_tls_init - at most limit TLS sessions (>= 1), each kept ttl_ms
 * milliseconds (0: none are kept)
 */
void scache_tls_init(size_t limit, int64_t ttl_ms);
/*
 * scache_tls_put - keep data[0..len) (copied) under key (copied) from
 * now (ms), replacing the session key had; with the table full the
 * oldest goes first. false (nothing kept) when sessions are not kept
 * (ttl 0) or len is 0 or above SCACHE_DATA_MAX.
 */
bool scache_tls_put(const char *key, const void *data, size_t len,
    int64_t now);
/*
 * scache_tls_get - the unexpired session under key: a copy in r_r->data
 * and r_r->data_len (owned by r_r: scache_rec_clear wipes it); it stays
 * in the table. false when there is none.
 */
bool scache_tls_get(const char *key, int64_t now, struct scache_rec *r_r);
/*
 * scache_tls_expire - wipe the sessions older than the ttl; the ms until
 * the next one expires, 0 when the table is empty
 */
int64_t scache_tls_expire(int64_t now);
/* scache_tls_count - how many TLS sessions are held */
size_t scache_tls_count(void);
/* scache_tls_clear - wipe every TLS session */
void scache_tls_clear(void);

#endif
