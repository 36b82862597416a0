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
