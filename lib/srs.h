/* SPDX-License-Identifier: MIT */
/*
 * srs - Sender Rewriting Scheme (SRS0) for forwarded mail
 *
 * A forwarder that keeps the original envelope sender makes SPF fail at
 * the next hop. SRS rewrites the sender of forwarded mail into an
 * address at our own $srs_domain that encodes the original, with a hash
 * so that nobody else can make us forward bounces, and a timestamp so
 * that old addresses die:
 *
 *	SRS0=HHHH=TT=orig.domain=orig.local@srs.domain
 *
 * HHHH is the first four characters of the base64 HMAC-SHA1 (keyed by
 * the secret) of the lower-cased "TT" "orig.domain" "orig.local"
 * (libsrs2's order and case folding, so addresses made by postsrsd with
 * the same secret verify here); TT is the day number modulo 1024 in two
 * base32 characters. Hashes compare case-insensitively (mailers may
 * lower-case local parts).
 *
 * Nothing here logs or exits (but on memory exhaustion); errors come
 * back as static text in *error_r.
 */
#ifndef POSTERN_SRS_H
#define POSTERN_SRS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct str;
struct srs;

#define SRS_HASH_LEN	4

/*
 * srs_new - a rewriter for domain with this secret (copied; the caller
 * may wipe its own copy) accepting addresses up to max_age_days old.
 * NULL (EINVAL) for an empty secret or a domain that is not plain.
 */
struct srs *srs_new(const void *secret, size_t secret_len, const char *domain,
    unsigned max_age_days);
/* srs_free - wipe and free (NULL allowed) */
void srs_free(struct srs **srsp);

/* srs_domain - the domain given to srs_new (valid while srs lives) */
const char *srs_domain(const struct srs *srs);

/* srs_is_ours - is address an SRS0 address at our domain (by form only) */
bool srs_is_ours(const struct srs *srs, const char *address);

/*
 * srs_forward - the SRS0 address for sender at time now into out
 * (replaced). An address that is already one of ours is kept as it is
 * (a second forwarding hop through us). 0, or -1 for a sender without
 * "@" or with an empty part.
 */
int srs_forward(const struct srs *srs, const char *sender, time_t now,
    struct str *out, const char **error_r);

/*
 * srs_reverse - the original address an SRS0 address at our domain
 * stands for, into out (replaced): 1; 0 if address is not SRS0 at our
 * domain; -1 if it is but fails (malformed, bad hash, expired), with
 * the reason.
 */
int srs_reverse(const struct srs *srs, const char *address, time_t now,
    struct str *out, const char **error_r);

#endif
