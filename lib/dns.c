/* SPDX-License-Identifier: MIT */
/*
 * dns - a private resolver state and TXT lookups (see dns.h)
 *
 * DESCRIPTION
 *	dns_resolver_init() is the resolver set-up smtp(8) uses for MX
 *	lookups (smtp_dns.c), shared so list-mgr's DMARC lookups go to the
 *	same kind of resolver with the same test override. TXT answers are
 *	parsed with ns_initparse/ns_parserr, each character-string checked
 *	against the RDATA length; nothing is read past the answer.
 *
 *	DNSSEC: Postern does not validate; it trusts the AD bit of a
 *	validating resolver (smtp(8)'s DANE, RFC 7672 2.1.1), set up with
 *	dns_resolver_dnssec(). res_nquery() leaves the whole answer in the
 *	buffer also when it returns -1 for NXDOMAIN or NODATA, so the AD
 *	bit of a denial can be read too (dns_answer_secure()).
 *
 * SEE ALSO
 *	resolver(3), RFC 1035 3.3.14, RFC 7489 6.1, RFC 6698, RFC 7672.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "dns.h"
#include "str.h"

#define DNS_ANSWER_MAX	65536
#define DNS_TXT_MAX	4000

/* dns_resolver_init - see dns.h */
int
dns_resolver_init(struct __res_state *res, const char *server, struct str *why)
{
	struct sockaddr_in sin;
	const char *colon;
	char host[64];
	unsigned long port = 53;

	memset(res, 0, sizeof(*res));
	if (res_ninit(res) != 0) {
		str_set_cstr(why, "res_ninit failed");
		return -1;
	}
	res->options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	if (server == NULL || *server == '\0')
		return 0;
	colon = strchr(server, ':');
	if ((size_t)(colon != NULL ? colon - server : (ptrdiff_t)strlen(server))
	    >= sizeof(host))
		goto bad;
	(void)snprintf(host, sizeof(host), "%.*s", colon != NULL ?
	    (int)(colon - server) : (int)strlen(server), server);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		goto bad;
	if (colon != NULL && (!str_to_ulong(colon + 1, strlen(colon + 1),
	    65535, &port) || port == 0))
		goto bad;
	sin.sin_port = htons((uint16_t)port);
	res->nsaddr_list[0] = sin;
	res->nscount = 1;
	res->retrans = 2;
	res->retry = 2;
	return 0;
bad:
	res_nclose(res);
	str_clear(why);
	str_printf(why, "bad DNS server \"%s\" (want IPv4[:port])", server);
	return -1;
}

/* dns_resolver_dnssec - see dns.h */
void
dns_resolver_dnssec(struct __res_state *res)
{
	res->options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
#ifdef RES_TRUSTAD
	res->options |= RES_TRUSTAD;
#endif
}

/* dns_resolver_loopback - see dns.h */
bool
dns_resolver_loopback(const struct __res_state *res)
{
	int i;

	if (res->nscount <= 0)
		return false;
	for (i = 0; i < res->nscount && i < MAXNS; i++) {
		const struct sockaddr_in *sin = &res->nsaddr_list[i];

		if (sin->sin_family == AF_INET) {
			if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
				return false;
		} else if (res->_u._ext.nsaddrs[i] != NULL &&
		    res->_u._ext.nsaddrs[i]->sin6_family == AF_INET6) {
			if (!IN6_IS_ADDR_LOOPBACK(
			    &res->_u._ext.nsaddrs[i]->sin6_addr))
				return false;
		} else
			return false;
	}
	return true;
}

/* dns_answer_secure - see dns.h */
bool
dns_answer_secure(const unsigned char *answer, int len)
{
	HEADER hdr;

	if (len < (int)sizeof(hdr))
		return false;
	memcpy(&hdr, answer, sizeof(hdr));
	return hdr.ad != 0;
}

/* dns_tlsa_free - see dns.h */
void
dns_tlsa_free(struct dns_tlsa **recsp, size_t n)
{
	size_t i;

	if (*recsp == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*recsp)[i].data);
	free(*recsp);
	*recsp = NULL;
}

/* dns_tlsa_lookup - see dns.h */
enum dns_tlsa_result
dns_tlsa_lookup(struct __res_state *res, const char *host, unsigned port,
    struct dns_tlsa **recs_r, size_t *n_r, bool *secure_r)
{
	unsigned char *ans = xmalloc(DNS_ANSWER_MAX);
	enum dns_tlsa_result r = DNS_TLSA_NONE;
	char name[NS_MAXDNAME + 32];
	struct dns_tlsa *recs = NULL;
	size_t n = 0;
	ns_msg msg;
	ns_rr rr;
	int len, i;

	*recs_r = NULL;
	*n_r = 0;
	*secure_r = false;
	if (snprintf(name, sizeof(name), "_%u._tcp.%s", port, host) >=
	    (int)sizeof(name))
		goto out;
	memset(ans, 0, HFIXEDSZ);
	len = res_nquery(res, name, ns_c_in, ns_t_tlsa, ans, DNS_ANSWER_MAX);
	if (len < 0) {
		if (res->res_h_errno != HOST_NOT_FOUND &&
		    res->res_h_errno != NO_DATA)
			r = DNS_TLSA_TEMP;
		else
			*secure_r = dns_answer_secure(ans, HFIXEDSZ);
		goto out;
	}
	if (ns_initparse(ans, len, &msg) < 0) {
		r = DNS_TLSA_TEMP;
		goto out;
	}
	*secure_r = dns_answer_secure(ans, len);
	recs = xcalloc((size_t)ns_msg_count(msg, ns_s_an) + 1, sizeof(*recs));
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		const unsigned char *rd;
		size_t rl;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != ns_t_tlsa)
			continue;		/* the CNAMEs of a chain */
		rd = ns_rr_rdata(rr);
		rl = ns_rr_rdlen(rr);
		if (rl < 4)
			continue;
		recs[n].usage = rd[0];
		recs[n].selector = rd[1];
		recs[n].mtype = rd[2];
		recs[n].len = rl - 3;
		recs[n].data = xmalloc(rl - 3);
		memcpy(recs[n].data, rd + 3, rl - 3);
		n++;
	}
	if (n > 0) {
		r = DNS_TLSA_FOUND;
		*recs_r = recs;
		*n_r = n;
		recs = NULL;
	}
out:
	dns_tlsa_free(&recs, n);
	free(ans);
	return r;
}

/* dns_txt_first - see dns.h */
enum dns_txt_result
dns_txt_first(struct __res_state *res, const char *name, const char *prefix,
    struct str *out)
{
	unsigned char *ans = xmalloc(DNS_ANSWER_MAX);
	enum dns_txt_result r = DNS_TXT_NONE;
	size_t plen = strlen(prefix);
	ns_msg msg;
	ns_rr rr;
	int len, i;

	str_clear(out);
	len = res_nquery(res, name, ns_c_in, ns_t_txt, ans, DNS_ANSWER_MAX);
	if (len < 0) {
		if (res->res_h_errno != HOST_NOT_FOUND &&
		    res->res_h_errno != NO_DATA)
			r = DNS_TXT_TEMP;
		goto out;
	}
	if (ns_initparse(ans, len, &msg) < 0) {
		r = DNS_TXT_TEMP;
		goto out;
	}
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		const unsigned char *rd;
		size_t rl, off = 0;
		bool ok = true;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 ||
		    ns_rr_type(rr) != ns_t_txt)
			continue;
		rd = ns_rr_rdata(rr);
		rl = ns_rr_rdlen(rr);
		str_clear(out);
		while (off < rl && ok) {
			size_t sl = rd[off];

			if (off + 1 + sl > rl || str_len(out) + sl > DNS_TXT_MAX)
				ok = false;
			else
				str_append(out, rd + off + 1, sl);
			off += 1 + sl;
		}
		if (ok && str_len(out) >= plen &&
		    strncasecmp(str_c(out), prefix, plen) == 0 &&
		    memchr(str_c(out), '\0', str_len(out)) == NULL) {
			r = DNS_TXT_FOUND;
			goto out;
		}
	}
	str_clear(out);
out:
	free(ans);
	return r;
}
