/* SPDX-License-Identifier: MIT */
/*
 * dns - a private resolver state and TXT lookups (libresolv)
 *
 * One res_state per process, set up before the jail (res_ninit reads
 * /etc/resolv.conf): names are looked up as given, never with the
 * search list, and a configured "IPv4[:port]" server (a site or test
 * option such as $smtp_dns_server) replaces the name servers.
 *
 * Nothing here exits; a lookup failure is a return value.
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <resolv.h>
#include <stdbool.h>

#include "str.h"

/*
 * dns_resolver_init - res_ninit into res (caller-owned, zeroed here),
 * search list off; server NULL or "" keeps resolv.conf's servers, else
 * "IPv4[:port]" becomes the only one. 0, or -1 with a reason in why
 * (replaced) that names server.
 */
int dns_resolver_init(struct __res_state *res, const char *server,
    struct str *why);

/*
 * dns_resolver_dnssec - ask res's servers for DNSSEC status: EDNS0 with
 * the DO bit (RES_USE_DNSSEC) and, where glibc has it, RES_TRUSTAD so
 * the AD bit of answers is kept. Only for a resolver the operator
 * trusts to validate (see dns_resolver_loopback): the AD bit is worth
 * no more than the path to the server that set it.
 */
void dns_resolver_dnssec(struct __res_state *res);

/* dns_resolver_loopback - every name server of res is on loopback */
bool dns_resolver_loopback(const struct __res_state *res);

/*
 * dns_answer_secure - the AD ("authentic data") bit of a DNS message of
 * len octets (false when shorter than a header)
 */
bool dns_answer_secure(const unsigned char *answer, int len);

/* One TLSA record (RFC 6698 2.1); data is owned by the array. */
struct dns_tlsa {
	unsigned usage;		/* 0 PKIX-TA ... 3 DANE-EE */
	unsigned selector;	/* 0 Cert, 1 SPKI */
	unsigned mtype;		/* 0 Full, 1 SHA2-256, 2 SHA2-512 */
	unsigned char *data;
	size_t len;
};

enum dns_tlsa_result {
	DNS_TLSA_FOUND,		/* *recs_r holds *n_r >= 1 records */
	DNS_TLSA_NONE,		/* no such name or no TLSA records */
	DNS_TLSA_TEMP,		/* SERVFAIL (also: DNSSEC bogus), timeout */
};

/*
 * dns_tlsa_lookup - the TLSA records of "_port._tcp.host" (RFC 7672
 * 2.2.3) into *recs_r (owned by the caller: dns_tlsa_free) and *n_r,
 * with *secure_r the AD bit of the answer (also for NONE: a secure
 * denial). Records with less than 4 octets of RDATA are dropped.
 */
enum dns_tlsa_result dns_tlsa_lookup(struct __res_state *res,
    const char *host, unsigned port, struct dns_tlsa **recs_r, size_t *n_r,
    bool *secure_r);
/* dns_tlsa_free - free n records and NULL *recsp (NULL allowed) */
void dns_tlsa_free(struct dns_tlsa **recsp, size_t n);

enum dns_txt_result {
	DNS_TXT_FOUND,		/* out holds the record */
	DNS_TXT_NONE,		/* no such name, no TXT, or none matches */
	DNS_TXT_TEMP,		/* SERVFAIL, timeout: try again later */
};

/*
 * dns_txt_first - the first TXT record of name whose text (its strings
 * concatenated, RFC 7208 3.3 / RFC 7489 6.6.3) starts with prefix
 * (case-insensitive; "" takes any) into out (replaced). Records over
 * 4000 octets are skipped.
 */
enum dns_txt_result dns_txt_first(struct __res_state *res, const char *name,
    const char *prefix, struct str *out);

#endif
