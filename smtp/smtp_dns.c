/* SPDX-License-Identifier: MIT */
/*
 * smtp_dns - MX, A and AAAA lookups for the smtp agent (libresolv)
 *
 * DESCRIPTION
 *	RFC 5321 5.1: the MX records of the next-hop domain, in preference
 *	order (equal preferences shuffled), each host's AAAA and A records;
 *	a domain without MX records is its own single mail exchanger
 *	(implicit MX). A null MX (RFC 7505: one MX record with the root as
 *	its target) means the domain accepts no mail: a permanent failure.
 *	"Host not found" (NXDOMAIN) is permanent, anything else (SERVFAIL,
 *	timeouts) temporary.
 *
 *	All queries go through one private res_state, set up by
 *	smtp_dns_init() before the jail (lib/dns: res_ninit reads
 *	/etc/resolv.conf).
 *	$smtp_dns_server, when set, replaces its name servers with one IPv4
 *	address and port (a site or test option: the tests run their own
 *	DNS server on loopback). Names are looked up as given, never with
 *	the search list. When no DNS server is configured, a name that DNS
 *	does not know is also tried with getaddrinfo() (for /etc/hosts names
 *	such as "localhost" in a "[localhost]:port" next hop).
 *
 *	DNSSEC and DANE (RFC 7672): with $smtp_dns_support_level = dnssec
 *	the queries ask for DNSSEC status (lib/dns: EDNS0, DO) and each
 *	address records whether the MX answer (or, for an implicit MX, the
 *	secure denial of MX records) and the address answer both had the
 *	AD bit: only then is the host's TLSA RRset looked up (RFC 7672
 *	2.2.2; an insecure MX or address lookup makes the TLSA records
 *	worthless, since an attacker could have chosen the host). The AD
 *	bit is trusted only from a resolver the operator named
 *	($smtp_dns_server) or from loopback name servers in resolv.conf: a
 *	validating resolver on the same host. Postern does no validation
 *	itself. smtp_dns_dane() turns the TLSA lookup into a TLS level for
 *	one server (see smtp.h); a TLSA lookup that fails (SERVFAIL, which
 *	is also what a validating resolver answers for bogus data) defers
 *	that server rather than risk a downgrade. XXX an MX host that is a
 *	CNAME keeps its MX name as the TLSA base domain (RFC 7672 2.2.3
 *	would first try the secure CNAME target's TLSA records).
 *
 * SEE ALSO
 *	RFC 5321 5.1, RFC 7505, RFC 7672, resolver(3), lib/tls_dane.h
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
#include "log.h"
#include "smtp.h"
#include "tls_dane.h"

#define SMTP_DNS_ANSWER_MAX	65536
#define SMTP_DNS_MX_MAX		32

static struct __res_state smtp_res;
static bool smtp_res_ok;
static bool smtp_res_custom;
static bool smtp_res_dnssec;		/* AD asked for and trusted */

/* smtp_dns_init - see smtp.h */
int
smtp_dns_init(const char *server, bool dnssec, struct str *why)
{
	if (dns_resolver_init(&smtp_res, server, why) < 0) {
		if (server != NULL && *server != '\0') {
			str_clear(why);
			str_printf(why, "bad smtp_dns_server \"%s\" (want "
			    "IPv4[:port])", server);
		}
		return -1;
	}
	smtp_res_ok = true;
	smtp_res_custom = server != NULL && *server != '\0';
	if (dnssec && !smtp_res_custom && !dns_resolver_loopback(&smtp_res))
		log_warn(NULL, "smtp_dns_support_level = dnssec, but the name "
		    "servers of resolv.conf are not on loopback and "
		    "smtp_dns_server is not set: DNSSEC status not trusted, "
		    "no DANE");
	else if (dnssec) {
		dns_resolver_dnssec(&smtp_res);
		smtp_res_dnssec = true;
	}
	return 0;
}

/* smtp_dns_dnssec - see smtp.h */
bool
smtp_dns_dnssec(void)
{
	return smtp_res_dnssec;
}

/* smtp_addrs_add - append one address */
static void
smtp_addrs_add(struct smtp_addrs *list, const char *host, unsigned pref,
    int family, const void *addr, unsigned port, bool secure)
{
	struct smtp_addr *a;

	if (list->n == list->cap) {
		list->cap = list->cap == 0 ? 8 : 2 * list->cap;
		list->a = xreallocarray(list->a, list->cap, sizeof(*list->a));
	}
	a = &list->a[list->n++];
	memset(a, 0, sizeof(*a));
	a->host = xstrdup(host);
	a->pref = pref;
	a->secure = secure;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, 4);
		a->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, 16);
		a->len = sizeof(*sin6);
	}
}

/* smtp_addrs_free - see smtp.h */
void
smtp_addrs_free(struct smtp_addrs *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		free(list->a[i].host);
	free(list->a);
	memset(list, 0, sizeof(*list));
}

/*
 * smtp_dns_query - one query; the answer's length, or -1 with the
 * result kind in *res_r and a reason in why
 */
static int
smtp_dns_query(const char *name, int type, unsigned char *answer,
    enum smtp_dns_result *res_r, bool *secure_r, struct str *why)
{
	int n;

	*secure_r = false;
	if (!smtp_res_ok) {
		*res_r = SMTP_DNS_TEMP;
		str_set_cstr(why, "no resolver");
		return -1;
	}
	memset(answer, 0, HFIXEDSZ);
	n = res_nquery(&smtp_res, name, ns_c_in, type, answer,
	    SMTP_DNS_ANSWER_MAX);
	/* the answer is in the buffer also for NXDOMAIN and NODATA */
	*secure_r = smtp_res_dnssec && dns_answer_secure(answer,
	    n >= 0 ? n : HFIXEDSZ);
	if (n >= 0)
		return n;
	str_clear(why);
	switch (smtp_res.res_h_errno) {
	case HOST_NOT_FOUND:
		*res_r = SMTP_DNS_NOTFOUND;
		str_printf(why, "Host or domain name not found. Name service "
		    "error for name=%s type=%s: Host not found", name,
		    type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : "AAAA");
		break;
	case NO_DATA:
		*res_r = SMTP_DNS_NODATA;
		str_printf(why, "no %s record for %s",
		    type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : "AAAA",
		    name);
		break;
	default:
		*res_r = SMTP_DNS_TEMP;
		str_printf(why, "Host or domain name not found. Name service "
		    "error for name=%s type=%s: Host not found, try again",
		    name, type == ns_t_mx ? "MX" : type == ns_t_a ? "A" :
		    "AAAA");
		break;
	}
	return -1;
}

/*
 * smtp_dns_host - the A and AAAA records of host, appended; secure when
 * the way to host was (MX lookup) and both answers are
 */
static enum smtp_dns_result
smtp_dns_host(const char *host, unsigned pref, unsigned port, bool secure,
    struct smtp_addrs *list, struct str *why)
{
	static const int types[] = { ns_t_aaaa, ns_t_a };
	unsigned char *answer = xmalloc(SMTP_DNS_ANSWER_MAX);
	enum smtp_dns_result worst = SMTP_DNS_NOTFOUND, r;
	size_t before = list->n, t;
	struct in6_addr a6;
	struct in_addr a4;
	bool ad;

	/* an address literal is itself */
	if (inet_pton(AF_INET, host, &a4) == 1) {
		smtp_addrs_add(list, host, pref, AF_INET, &a4, port, false);
		free(answer);
		return SMTP_DNS_OK;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		smtp_addrs_add(list, host, pref, AF_INET6, &a6, port, false);
		free(answer);
		return SMTP_DNS_OK;
	}
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		ns_msg msg;
		ns_rr rr;
		int n, i;

		n = smtp_dns_query(host, types[t], answer, &r, &ad, why);
		if (!ad)
			secure = false;
		if (n < 0) {
			if (r == SMTP_DNS_TEMP || (r == SMTP_DNS_NODATA &&
			    worst == SMTP_DNS_NOTFOUND))
				worst = r;
			continue;
		}
		if (ns_initparse(answer, n, &msg) < 0)
			continue;
		for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				break;
			if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4)
				smtp_addrs_add(list, host, pref, AF_INET,
				    ns_rr_rdata(rr), port, false);
			else if (ns_rr_type(rr) == ns_t_aaaa &&
			    ns_rr_rdlen(rr) == 16)
				smtp_addrs_add(list, host, pref, AF_INET6,
				    ns_rr_rdata(rr), port, false);
		}
	}
	/* both answers (or secure denials) seen: mark this host's addresses */
	for (t = before; t < list->n; t++)
		list->a[t].secure = secure;
	free(answer);
	if (list->n > before)
		return SMTP_DNS_OK;
	if (!smtp_res_custom && worst != SMTP_DNS_TEMP) {
		/* not in DNS: /etc/hosts names ("localhost") */
		struct addrinfo hints, *res = NULL, *ai;


		/* never secure */
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, NULL, &hints, &res) == 0) {
			for (ai = res; ai != NULL; ai = ai->ai_next) {
				if (ai->ai_family == AF_INET)
					smtp_addrs_add(list, host, pref, AF_INET,
					    &((struct sockaddr_in *)(void *)
					    ai->ai_addr)->sin_addr, port,
					    false);
				else if (ai->ai_family == AF_INET6)
					smtp_addrs_add(list, host, pref,
					    AF_INET6, &((struct sockaddr_in6 *)
					    (void *)ai->ai_addr)->sin6_addr,
					    port, false);
			}
			freeaddrinfo(res);
			if (list->n > before)
				return SMTP_DNS_OK;
		}
	}
	str_clear(why);
	if (worst == SMTP_DNS_TEMP)
		str_printf(why, "Host or domain name not found. Name service "
		    "error for name=%s type=A: Host not found, try again",
		    host);
	else
		str_printf(why, "Host or domain name not found. Name service "
		    "error for name=%s type=A: Host not found", host);
	return worst == SMTP_DNS_TEMP ? SMTP_DNS_TEMP : SMTP_DNS_NOTFOUND;
}

struct smtp_mx {
	char name[NS_MAXDNAME];
	unsigned pref;
	unsigned shuffle;
};

static int
smtp_mx_cmp(const void *a, const void *b)
{
	const struct smtp_mx *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->shuffle < y->shuffle ? -1 : x->shuffle > y->shuffle;
}

/* smtp_dns_resolve - see smtp.h */
enum smtp_dns_result
smtp_dns_resolve(const char *name, bool mx, unsigned port,
    struct smtp_addrs *list, struct str *why)
{
	unsigned char *answer;
	struct smtp_mx *mxs;
	enum smtp_dns_result r, worst;
	size_t nmx = 0, i;
	ns_msg msg;
	ns_rr rr;
	bool secure;
	int n;

	/* the name itself came from the operator or the message: trusted */
	if (!mx)
		return smtp_dns_host(name, 0, port, true, list, why);
	answer = xmalloc(SMTP_DNS_ANSWER_MAX);
	n = smtp_dns_query(name, ns_t_mx, answer, &r, &secure, why);
	if (n < 0) {
		free(answer);
		if (r == SMTP_DNS_NODATA)	/* implicit MX: the domain itself */
			return smtp_dns_host(name, 0, port, secure, list, why);
		return r;
	}
	mxs = xcalloc(SMTP_DNS_MX_MAX, sizeof(*mxs));
	if (ns_initparse(answer, n, &msg) == 0) {
		for (i = 0; i < (size_t)ns_msg_count(msg, ns_s_an) &&
		    nmx < SMTP_DNS_MX_MAX; i++) {
			if (ns_parserr(&msg, ns_s_an, (int)i, &rr) < 0)
				break;
			if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3)
				continue;
			mxs[nmx].pref = ns_get16(ns_rr_rdata(rr));
			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg),
			    ns_rr_rdata(rr) + 2, mxs[nmx].name,
			    sizeof(mxs[nmx].name)) < 0)
				continue;
			mxs[nmx].shuffle = (unsigned)random();
			nmx++;
		}
	}
	free(answer);
	if (nmx == 0) {
		free(mxs);
		return smtp_dns_host(name, 0, port, secure, list, why);
	}
	/* RFC 7505: the root as target means "no mail here" */
	for (i = 0; i < nmx; i++) {
		if (mxs[i].name[0] == '\0' || strcmp(mxs[i].name, ".") == 0) {
			free(mxs);
			str_clear(why);
			str_printf(why, "Domain %s does not accept mail (nullMX)",
			    name);
			return SMTP_DNS_NULLMX;
		}
	}
	qsort(mxs, nmx, sizeof(*mxs), smtp_mx_cmp);
	worst = SMTP_DNS_NOTFOUND;
	for (i = 0; i < nmx; i++) {
		struct str *w = str_new(128, 0);

		r = smtp_dns_host(mxs[i].name, mxs[i].pref, port, secure,
		    list, w);
		if (r == SMTP_DNS_TEMP)
			worst = SMTP_DNS_TEMP;
		if (r != SMTP_DNS_OK && list->n == 0)
			str_set(why, str_c(w), str_len(w));
		str_free(&w);
	}
	free(mxs);
	if (list->n > 0)
		return SMTP_DNS_OK;
	/* MX hosts that do not resolve: try later, they may come back */
	(void)worst;
	return SMTP_DNS_TEMP;
}

/* smtp_dns_dane - see smtp.h */
int
smtp_dns_dane(const struct smtp_addr *a, unsigned port, int policy,
    struct tls_dane **dane_r, struct str *why)
{
	enum dns_tlsa_result r;
	struct dns_tlsa *recs = NULL;
	struct tls_dane *dane;
	size_t n = 0, i;
	bool secure;

	*dane_r = NULL;
	str_clear(why);
	if (!smtp_res_dnssec || !a->secure) {
		if (policy != SMTP_TLS_DANE_ONLY)
			return SMTP_TLS_MAY;
		str_printf(why, "TLS is required, but no DNSSEC-validated %s "
		    "of host %s (dane-only)", smtp_res_dnssec ? "address "
		    "records" : "lookups (smtp_dns_support_level is not "
		    "dnssec)", a->host);
		return -1;
	}
	r = dns_tlsa_lookup(&smtp_res, a->host, port, &recs, &n, &secure);
	if (r == DNS_TLSA_TEMP) {
		str_printf(why, "TLSA lookup error for _%u._tcp.%s: Host not "
		    "found, try again", port, a->host);
		return -1;
	}
	if (r == DNS_TLSA_NONE || !secure) {
		dns_tlsa_free(&recs, n);
		if (policy != SMTP_TLS_DANE_ONLY)
			return SMTP_TLS_MAY;
		str_printf(why, "TLS is required, but host %s has no %sTLSA "
		    "records (dane-only)", a->host, r == DNS_TLSA_NONE ? "" :
		    "DNSSEC-validated ");
		return -1;
	}
	dane = tls_dane_new(a->host);
	for (i = 0; i < n; i++)
		(void)tls_dane_add(dane, recs[i].usage, recs[i].selector,
		    recs[i].mtype, recs[i].data, recs[i].len);
	dns_tlsa_free(&recs, n);
	if (tls_dane_count(dane) == 0) {
		/* RFC 7672 2.2: TLS, but nothing to authenticate with */
		tls_dane_free(&dane);
		if (policy != SMTP_TLS_DANE_ONLY)
			return SMTP_TLS_ENCRYPT;
		str_printf(why, "TLS is required, but none of the TLSA records "
		    "of host %s is usable (dane-only)", a->host);
		return -1;
	}
	*dane_r = dane;
	return SMTP_TLS_DANE;
}
