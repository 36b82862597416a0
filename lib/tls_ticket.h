/* SPDX-License-Identifier: MIT */
/*
 * tls_ticket - the session ticket keys all TLS servers of an instance share
 *
 * RFC 5077 / RFC 8446 session tickets are encrypted by the server with a
 * key only the server knows; a client that comes back presents the
 * ticket and skips the full handshake. OpenSSL's own ticket keys are
 * made at random in each process, so a ticket resumed only with the
 * worker process that issued it. This module keeps one key file per
 * instance, $queue_directory/TLS_TICKET_KEYS_FILE, which master writes
 * and every TLS server reads (lib/tls.c), so a ticket from any worker of
 * any service resumes with any other (as Postfix's tlsmgr and Dovecot's
 * shared keys do).
 *
 * Rotation, with L = tls_session_ticket_key_lifetime seconds: each key
 * has a start time (not_before). The key that encrypts new tickets is
 * the newest one that has started, for L seconds from its start; a key
 * decrypts tickets for 2L seconds from its start (one more period after
 * it stopped issuing them). The file holds, besides the current key,
 * the previous one (until it expires) and the NEXT one, which starts
 * when the current one stops issuing: a worker that loaded the file
 * once (at start-up, as root, like its private key) therefore goes on
 * rotating by the clock for at least L seconds with no new read.
 * master calls tls_ticket_keys_update() at start, on reload and before
 * it spawns a worker, so a new worker always reads a file that is up
 * to date; nobody needs a restart for keys to rotate. A worker older
 * than its keys issues no more tickets (full handshakes go on).
 *
 * The file: "PTK1", a 32-bit big-endian count (1..TLS_TICKET_KEYS_MAX),
 * then per key: not_before (64-bit big-endian seconds since the epoch),
 * the 16-byte key name (random, goes out in each ticket), the 32-byte
 * AES-256-CBC key and the 32-byte HMAC-SHA256 key; nothing else. Keys
 * are in ascending not_before order. Mode 0600, owned by master's user
 * (root when privilege separation is on); written by safe_file_replace
 * (atomic). tls_ticket_keys_load() refuses a file that is not a regular
 * file owned by the effective user with no group or other permission
 * bits. Never sent anywhere.
 *
 * Errors: calls that can fail return -1 (or false) with a reason in the
 * caller's str (replaced) and errno set where a system call failed;
 * none exits.
 */
#ifndef POSTERN_TLS_TICKET_H
#define POSTERN_TLS_TICKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "str.h"

/* The key file, relative to $queue_directory (master's root-owned pid/). */
#define TLS_TICKET_KEYS_FILE	"pid/tls_ticket_keys"

#define TLS_TICKET_NAME_LEN	16
#define TLS_TICKET_AES_LEN	32	/* AES-256-CBC */
#define TLS_TICKET_HMAC_LEN	32	/* HMAC-SHA256 */
#define TLS_TICKET_KEYS_MAX	4
/* The size of one key in the file, and of the header. */
#define TLS_TICKET_KEY_SIZE	(8 + TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN + \
				 TLS_TICKET_HMAC_LEN)
#define TLS_TICKET_HEADER_SIZE	8
#define TLS_TICKET_FILE_MAX	(TLS_TICKET_HEADER_SIZE + \
				 TLS_TICKET_KEYS_MAX * TLS_TICKET_KEY_SIZE)

struct tls_ticket_key {
	int64_t not_before;	/* seconds since the epoch */
	unsigned char name[TLS_TICKET_NAME_LEN];
	unsigned char aes[TLS_TICKET_AES_LEN];
	unsigned char hmac[TLS_TICKET_HMAC_LEN];
};

/* A key set: n keys in ascending not_before order. Plain data: may be copied. */
struct tls_ticket_keys {
	size_t n;
	struct tls_ticket_key key[TLS_TICKET_KEYS_MAX];
};

/*
 * tls_ticket_keys_parse - the key set in data (len bytes, the file's
 * whole content) into *keys; false with *error set unless it is exactly
 * a well-formed file (magic, count in range, exact size, ascending
 * start times, distinct names).
 */
bool tls_ticket_keys_parse(const void *data, size_t len,
    struct tls_ticket_keys *keys, struct str *error);

/*
 * tls_ticket_keys_format - the file form of keys into buf (at least
 * TLS_TICKET_FILE_MAX bytes); returns its length. The caller wipes buf.
 */
size_t tls_ticket_keys_format(const struct tls_ticket_keys *keys,
    unsigned char *buf);

/*
 * tls_ticket_keys_rotate - bring keys up to date for time now and
 * lifetime seconds (> 0): drop keys past decryption (not_before +
 * 2*lifetime <= now) or implausibly far ahead (a clock set back), make
 * a current key (not_before = now) if none issues at now, and a next
 * key (starting lifetime after the current one) if there is none. New
 * keys come from getrandom(2). *due_r is set to the time the set must
 * be rotated again. Returns 1 if keys changed, 0 if not, -1 with errno
 * if no random bytes could be had (keys unchanged).
 */
int tls_ticket_keys_rotate(struct tls_ticket_keys *keys, time_t now,
    unsigned lifetime, time_t *due_r);

/*
 * tls_ticket_keys_update - master's call: read path (missing, or
 * unusable: start afresh), rotate, and if anything changed write it
 * back atomically with mode 0600. *due_r as for rotate. 0, or -1 with
 * *error set (the old file, if any, is left as it was).
 */
int tls_ticket_keys_update(const char *path, unsigned lifetime, time_t now,
    time_t *due_r, struct str *error);

/*
 * tls_ticket_keys_load - a server's call (pre_jail, before privileges
 * drop): read and check path into *keys. -1 with *error set and errno
 * (ENOENT: no file; EPERM: wrong owner or mode; EINVAL: malformed).
 */
int tls_ticket_keys_load(const char *path, struct tls_ticket_keys *keys,
    struct str *error);

/*
 * tls_ticket_keys_encrypting - the key that encrypts tickets issued at
 * now: the newest that has started, if it started less than lifetime
 * seconds ago; NULL if there is none (issue no ticket). Borrowed from keys.
 */
const struct tls_ticket_key *tls_ticket_keys_encrypting(
    const struct tls_ticket_keys *keys, time_t now, unsigned lifetime);

/*
 * tls_ticket_keys_decrypting - the key named name (TLS_TICKET_NAME_LEN
 * bytes, from a client's ticket) if it may decrypt at now: started, and
 * less than 2*lifetime seconds ago; else NULL (full handshake).
 */
const struct tls_ticket_key *tls_ticket_keys_decrypting(
    const struct tls_ticket_keys *keys, const unsigned char *name,
    time_t now, unsigned lifetime);

/* tls_ticket_keys_wipe - zero keys (explicit_bzero) */
void tls_ticket_keys_wipe(struct tls_ticket_keys *keys);

#endif
