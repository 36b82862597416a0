/* SPDX-License-Identifier: MIT */
/*
 * srs - Sender Rewriting Scheme (SRS0)
 *
 * DESCRIPTION
 *	See srs.h for the address form. The hash is HMAC-SHA1 from
 *	OpenSSL over the lower-cased timestamp, domain and local part
 *	(concatenated, no separators, as libsrs2 does), base64-encoded,
 *	first SRS_HASH_LEN characters. Reversal parses the local part from
 *	the left: "SRS0", a separator ('=', or '+' / '-' that some
 *	mailers produce), hash, '=', timestamp, '=', domain, '=', and the
 *	rest (which may hold '=') is the original local part. It checks
 *	the hash in constant time (case-insensitively), then the age: the
 *	timestamp is a day number modulo 1024, so "age" is the distance
 *	back from today modulo 1024, and anything older than max_age days
 *	(including timestamps from the future) is expired.
 *
 *	XXX SRS1 (re-forwarding another forwarder's SRS0 address) is not
 *	made: a foreign SRS0 sender is wrapped as a plain address, which
 *	is valid SRS0 but longer.
 *
 * SEE ALSO
 *	Shevek, "Sender Rewriting Scheme" (libsrs2), postsrsd(8).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "alloc.h"
#include "srs.h"
#include "str.h"

#define SRS_DAY		86400
#define SRS_TS_MOD	1024
#define SRS_ADDRESS_MAX	1024

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

struct srs {
	unsigned char *secret;
	size_t secret_len;
	char *domain;
	unsigned max_age;
};

/* srs_new - see srs.h */
struct srs *
srs_new(const void *secret, size_t secret_len, const char *domain,
    unsigned max_age_days)
{
	struct srs *srs;
	const char *p;

	if (secret_len == 0 || domain == NULL || *domain == '\0' ||
	    strlen(domain) > 255) {
		errno = EINVAL;
		return NULL;
	}
	for (p = domain; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
			errno = EINVAL;
			return NULL;
		}
	srs = xcalloc(1, sizeof(*srs));
	srs->secret = xmalloc(secret_len);
	memcpy(srs->secret, secret, secret_len);
	srs->secret_len = secret_len;
	srs->domain = xstrdup(domain);
	srs->max_age = max_age_days == 0 ? 1 : max_age_days;
	return srs;
}

/* srs_free - see srs.h */
void
srs_free(struct srs **srsp)
{
	struct srs *srs = *srsp;

	if (srs == NULL)
		return;
	explicit_bzero(srs->secret, srs->secret_len);
	free(srs->secret);
	free(srs->domain);
	free(srs);
	*srsp = NULL;
}

const char *
srs_domain(const struct srs *srs)
{
	return srs->domain;
}

/* srs_hash - the SRS_HASH_LEN characters for (ts, domain, local) */
static void
srs_hash(const struct srs *srs, const char *ts, size_t ts_len,
    const char *domain, size_t domain_len, const char *local,
    size_t local_len, char out[SRS_HASH_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE], b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned int mac_len = 0;
	struct str *data = str_new(ts_len + domain_len + local_len + 1, 0);
	size_t i;

	(void)str_append(data, ts, ts_len);
	(void)str_append(data, domain, domain_len);
	(void)str_append(data, local, local_len);
	for (i = 0; i < str_len(data); i++)
		str_data(data)[i] = (char)tolower((unsigned char)str_data(data)[i]);
	if (HMAC(EVP_sha1(), srs->secret, (int)srs->secret_len,
	    (const unsigned char *)str_data(data), str_len(data), mac,
	    &mac_len) == NULL)
		mac_len = 0;	/* cannot happen with SHA-1; a hash that never matches */
	(void)EVP_EncodeBlock(b64, mac, (int)mac_len);
	memcpy(out, b64, SRS_HASH_LEN);
	out[SRS_HASH_LEN] = '\0';
	str_free(&data);
}

/* srs_timestamp - today's two base32 characters */
static void
srs_timestamp(time_t now, char out[3])
{
	unsigned day = (unsigned)((uint64_t)now / SRS_DAY % SRS_TS_MOD);

	out[0] = srs_base32[day >> 5 & 31];
	out[1] = srs_base32[day & 31];
	out[2] = '\0';
}

/* srs_split - local part and domain of address: false if either is empty */
static bool
srs_split(const char *address, const char **at_r)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || at == address || at[1] == '\0')
		return false;
	*at_r = at;
	return true;
}

/* srs_is_ours - see srs.h */
bool
srs_is_ours(const struct srs *srs, const char *address)
{
	const char *at;

	if (!srs_split(address, &at))
		return false;
	return strcasecmp(at + 1, srs->domain) == 0 &&
	    strncasecmp(address, "SRS0", 4) == 0 &&
	    (address[4] == '=' || address[4] == '+' || address[4] == '-');
}

/* srs_forward - see srs.h */
int
srs_forward(const struct srs *srs, const char *sender, time_t now,
    struct str *out, const char **error_r)
{
	char ts[3], hash[SRS_HASH_LEN + 1];
	const char *at;
	size_t local_len;

	str_clear(out);
	if (strlen(sender) > SRS_ADDRESS_MAX || !srs_split(sender, &at)) {
		*error_r = "sender is not local@domain";
		return -1;
	}
	if (srs_is_ours(srs, sender)) {
		(void)str_append_cstr(out, sender);
		return 0;
	}
	local_len = (size_t)(at - sender);
	srs_timestamp(now, ts);
	srs_hash(srs, ts, 2, at + 1, strlen(at + 1), sender, local_len, hash);
	(void)str_printf(out, "SRS0=%s=%s=%s=%.*s@%s", hash, ts, at + 1,
	    (int)local_len, sender, srs->domain);
	return 0;
}

/* srs_b32 - the value of a base32 character, -1 if none */
static int
srs_b32(char c)
{
	const char *p;

	c = (char)toupper((unsigned char)c);
	if (c == '\0' || (p = strchr(srs_base32, c)) == NULL)
		return -1;
	return (int)(p - srs_base32);
}

/* srs_reverse - see srs.h */
int
srs_reverse(const struct srs *srs, const char *address, time_t now,
    struct str *out, const char **error_r)
{
	const char *at, *p, *hash, *ts, *dom, *local;
	char want[SRS_HASH_LEN + 1], got[SRS_HASH_LEN + 1];
	unsigned today, then, age;
	int hi, lo;
	size_t i;

	str_clear(out);
	if (!srs_is_ours(srs, address))
		return 0;
	at = strrchr(address, '@');
	if ((size_t)(at - address) > SRS_ADDRESS_MAX)
		goto malformed;
	hash = address + 5;
	if ((p = memchr(hash, '=', (size_t)(at - hash))) == NULL ||
	    p - hash != SRS_HASH_LEN)
		goto malformed;
	ts = p + 1;
	if ((p = memchr(ts, '=', (size_t)(at - ts))) == NULL || p - ts != 2)
		goto malformed;
	dom = p + 1;
	if ((p = memchr(dom, '=', (size_t)(at - dom))) == NULL || p == dom)
		goto malformed;
	local = p + 1;
	if (local == at)
		goto malformed;
	srs_hash(srs, ts, 2, dom, (size_t)(p - dom), local,
	    (size_t)(at - local), want);
	for (i = 0; i < SRS_HASH_LEN; i++) {
		want[i] = (char)tolower((unsigned char)want[i]);
		got[i] = (char)tolower((unsigned char)hash[i]);
	}
	if (CRYPTO_memcmp(want, got, SRS_HASH_LEN) != 0) {
		*error_r = "bad SRS hash";
		return -1;
	}
	if ((hi = srs_b32(ts[0])) < 0 || (lo = srs_b32(ts[1])) < 0)
		goto malformed;
	then = (unsigned)(hi << 5 | lo);
	today = (unsigned)((uint64_t)now / SRS_DAY % SRS_TS_MOD);
	age = (today + SRS_TS_MOD - then) % SRS_TS_MOD;
	if (age > srs->max_age) {
		*error_r = "SRS address expired";
		return -1;
	}
	(void)str_append(out, local, (size_t)(at - local));
	(void)str_append_c(out, '@');
	(void)str_append(out, dom, (size_t)(p - dom));
	return 1;
malformed:
	*error_r = "malformed SRS address";
	return -1;
}
