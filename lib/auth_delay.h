/* SPDX-License-Identifier: MIT */
/*
 * auth_delay - failed-login delays shared by every login process
 *
 * A small fixed-size table in a file (mmap'd, MAP_SHARED) that every
 * process checking passwords opens: smtpd, the login roles of imapd,
 * pop3d and sieved, each connection in a process of its own. A key is a
 * string, "ip:ADDR" or "user:NAME" (auth_delay_ip_key); its slot holds
 * a failure count, the time of the last failure and the time before
 * which no answer goes to that key.
 *
 * After the n-th failure in a row the answer waits
 * min(base * 2^(n-1), max) ms. Every decay ms without a failure takes
 * one off the count (so the delay halves), and auth_delay_reset
 * forgets a key (a successful login forgets the user, not the
 * address). The count stops growing where the delay reaches max, so a
 * long attack decays as fast as a short one.
 *
 * The table cannot grow: slots (a power of two, default
 * AUTH_DELAY_SLOTS) in sets of AUTH_DELAY_WAYS. A key's set is chosen
 * by a keyed hash (HMAC-SHA256 with a random secret kept in the file),
 * so nobody outside can aim keys at one set. A full set gives up the
 * slot that matters least: one whose delay has run out, else the
 * lowest count, else the oldest failure.
 *
 * Every operation takes an fcntl write lock on the whole file, reads
 * or changes a few slots and lets go: nobody sleeps under the lock. A
 * file that is missing, of the wrong size or without our header is
 * (re)made under the lock, with a new secret: the table is soft state
 * and losing it only forgets delays.
 *
 * Times are CLOCK_REALTIME milliseconds passed in by the caller (the
 * tests pass their own); a wait is never longer than max, so a clock
 * stepped backwards cannot lock anyone out.
 *
 * Errors return -1 with *error_r (static text; errno kept). Nothing
 * here logs or exits, except on memory exhaustion.
 */
#ifndef POSTERN_AUTH_DELAY_H
#define POSTERN_AUTH_DELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define AUTH_DELAY_SLOTS	8192	/* 256 KB of 32-byte slots */
#define AUTH_DELAY_WAYS		8	/* slots per set */
#define AUTH_DELAY_KEY_MAX	256	/* longer keys are cut (same set, same slot) */

struct auth_delay_settings {
	unsigned base_ms;	/* delay after the first failure (> 0) */
	unsigned max_ms;	/* the cap (>= base_ms) */
	unsigned decay_ms;	/* quiet time that takes one off a count; 0 never */
	unsigned slots;		/* power of two >= AUTH_DELAY_WAYS; 0 = AUTH_DELAY_SLOTS */
};

struct auth_delay;

/*
 * auth_delay_open - open (creating, mode 0660: the login services may
 * run as different users of one group) the table at path. The settings
 * are copied. NULL with *error_r on a bad setting or when the file
 * cannot be opened, created or mapped.
 */
struct auth_delay *auth_delay_open(const char *path,
    const struct auth_delay_settings *s, const char **error_r);

/* auth_delay_close - unmap and close (NULL allowed); NULLs *adp */
void auth_delay_close(struct auth_delay **adp);

/*
 * auth_delay_pending - *wait_r = the ms an answer to any of the n keys
 * must still wait at now_ms (the longest; 0 if none has a delay). 0 or
 * -1.
 */
int auth_delay_pending(struct auth_delay *ad, const char *const *keys,
    size_t n, int64_t now_ms, unsigned *wait_r, const char **error_r);

/*
 * auth_delay_fail - record one failure at now_ms for each of the n keys;
 * *wait_r = the ms until the answer to this attempt may go (the longest
 * over the keys). 0 or -1.
 */
int auth_delay_fail(struct auth_delay *ad, const char *const *keys,
    size_t n, int64_t now_ms, unsigned *wait_r, const char **error_r);

/* auth_delay_reset - forget key (a successful login). 0 or -1. */
int auth_delay_reset(struct auth_delay *ad, const char *key,
    const char **error_r);

/*
 * auth_delay_count - *count_r = key's failure count at now_ms after
 * decay (0: not in the table). 0 or -1.
 */
int auth_delay_count(struct auth_delay *ad, const char *key, int64_t now_ms,
    unsigned *count_r, const char **error_r);

/* auth_delay_for - the delay in ms after count failures in a row */
unsigned auth_delay_for(const struct auth_delay_settings *s, unsigned count);

/*
 * auth_delay_ip_key - the key for a client address into out (replaced):
 * "ip:" and the IPv4 address, or the IPv6 /64 prefix (one host usually
 * has a whole /64; IPv4-mapped addresses count as IPv4). false if addr
 * is not an IP address ("local", NULL): no address key then.
 */
bool auth_delay_ip_key(const char *addr, struct str *out);

/* auth_delay_now_ms - CLOCK_REALTIME in ms */
int64_t auth_delay_now_ms(void);

/* auth_delay_sleep - sleep ms milliseconds (restarts after signals) */
void auth_delay_sleep(unsigned ms);

#endif
