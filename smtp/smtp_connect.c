/* SPDX-License-Identifier: MIT */
/*
 * smtp_connect - reach the next hop of a delivery
 *
 * DESCRIPTION
 *	A next hop is "unix:/path" (a local LMTP server such as lmtpd),
 *	"inet:host:port" / "inet:[host]:port", or the same without the
 *	"inet:" prefix (relayhost style; the port defaults to the
 *	protocol's). Host names are resolved with getaddrinfo() and every
 *	address is tried in turn with a non-blocking connect() bounded by
 *	$smtp_connect_timeout. smtp_connect_addr() connects to one address
 *	that smtp_dns.c found (MX lookups are in smtp.c's delivery loop).
 *
 *	smtp_tls_start() and smtp_tls_dane_check() are the TLS handshake
 *	of STARTTLS: with DANE (lib/tls_dane) when the server has usable
 *	TLSA records, so smtp_session.c needs no DANE knowledge. As in
 *	Postfix, a DANE-authenticated session logs "Verified TLS
 *	connection established"; one whose certificate matched no TLSA
 *	record logs "Untrusted ..." and the delivery is deferred.
 *
 *	TLS session resumption across agent processes (Postfix's
 *	smtp_tls_session_cache): before the handshake smtp_tls_start()
 *	asks scache(8) for a session stored under the TLS key of the
 *	destination and offers it; after a handshake that satisfied the
 *	policy and the EHLO that follows it (by then a TLS 1.3 server has
 *	sent its tickets), smtp_tls_remember() stores the session under the
 *	same key. The key is the connection cache key (next hop, server
 *	name, address and port, TLS level: smtp.c) plus the SNI name and,
 *	for a DANE session, a digest of the TLSA records (tls_dane_digest).
 *	So a session is offered only under the very policy it was made
 *	under: never one made at "encrypt" or "may" under "verify", never a
 *	DANE session after the TLSA records changed. A resumed session
 *	carries the verification result of the handshake that made it
 *	(OpenSSL keeps the peer certificate and the result in the session),
 *	and the policy checks run on it as on a new one; since only
 *	sessions that passed them are stored, under the same key, they pass
 *	again. A session that fails a check is never stored.
 *
 * SEE ALSO
 *	smtp(8)
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "scache_proto.h"
#include "smtp.h"
#include "tls.h"
#include "tls_dane.h"

/* smtp_connect_wait - finish a non-blocking connect within timeout */
static int
smtp_connect_wait(int fd, const struct sockaddr *sa, socklen_t len,
    unsigned timeout)
{
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int flags, err = 0, r;

	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			r = poll(&pfd, 1, timeout > 0 ? (int)timeout * 1000 : -1);
		} while (r < 0 && errno == EINTR);
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -1;
		if (err != 0) {
			errno = err;
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, flags);
}

/* smtp_connect_unix - a UNIX-domain next hop */
static int
smtp_connect_unix(const char *path, struct str *relay_r, struct str *why_r,
    bool *perm_r)
{
	struct sockaddr_un sun;
	int fd;

	str_set_cstr(relay_r, path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (*path != '/' || strlen(path) >= sizeof(sun.sun_path)) {
		str_clear(why_r);
		str_printf(why_r, "bad UNIX socket path in next hop: %s", path);
		*perm_r = true;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		str_clear(why_r);
		str_printf(why_r, "socket: %m");
		return -1;
	}
	if (smtp_connect_wait(fd, (struct sockaddr *)&sun, sizeof(sun),
	    smtp_settings.connect_timeout) < 0) {
		str_clear(why_r);
		str_printf(why_r, "connect to %s: %m", path);
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* smtp_split_hostport - see smtp.h */
int
smtp_split_hostport(const char *s, unsigned default_port, char **host_r,
    unsigned *port_r)
{
	const char *end, *colon;
	unsigned long port = default_port;

	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		*host_r = xstrndup(s + 1, (size_t)(end - s - 1));
		colon = end[1] == ':' ? end + 1 : NULL;
		if (colon == NULL && end[1] != '\0') {
			XFREE(*host_r);
			return -1;
		}
	} else {
		colon = strrchr(s, ':');
		*host_r = xstrndup(s, colon != NULL ? (size_t)(colon - s) :
		    strlen(s));
	}
	if (colon != NULL && !str_to_ulong(colon + 1, strlen(colon + 1),
	    65535, &port)) {
		XFREE(*host_r);
		return -1;
	}
	if (**host_r == '\0' || port == 0) {
		XFREE(*host_r);
		return -1;
	}
	*port_r = (unsigned)port;
	return 0;
}

/* smtp_connect_inet - a TCP next hop; every address in turn */
static int
smtp_connect_inet(const char *hostport, unsigned default_port,
    struct str *relay_r, struct str *why_r, bool *perm_r)
{
	struct addrinfo hints, *res = NULL, *ai;
	char *host = NULL, portbuf[16], addr[NI_MAXHOST];
	unsigned port;
	int fd = -1, gai;

	if (smtp_split_hostport(hostport, default_port, &host, &port) < 0) {
		str_clear(why_r);
		str_printf(why_r, "malformed next hop \"%s\"", hostport);
		*perm_r = true;
		return -1;
	}
	(void)snprintf(portbuf, sizeof(portbuf), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	gai = getaddrinfo(host, portbuf, &hints, &res);
	if (gai != 0) {
		str_clear(why_r);
		str_printf(why_r, "Host or domain name not found: %s (%s)",
		    host, gai_strerror(gai));
		str_clear(relay_r);
		str_printf(relay_r, "%s", host);
		*perm_r = gai == EAI_NONAME;
		free(host);
		return -1;
	}
	str_clear(why_r);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
		    NULL, 0, NI_NUMERICHOST) != 0)
			(void)snprintf(addr, sizeof(addr), "?");
		str_clear(relay_r);
		str_printf(relay_r, "%s[%s]:%u", host, addr, port);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (smtp_connect_wait(fd, ai->ai_addr, ai->ai_addrlen,
		    smtp_settings.connect_timeout) == 0)
			break;
		str_clear(why_r);
		str_printf(why_r, "connect to %s[%s]:%u: %m", host, addr, port);
		(void)close(fd);
		fd = -1;
	}
	if (fd < 0 && str_len(why_r) == 0)
		str_printf(why_r, "no usable address for %s", host);
	freeaddrinfo(res);
	free(host);
	return fd;
}

/* smtp_connect - see smtp.h */
int
smtp_connect(const char *nexthop, unsigned default_port, struct str *relay_r,
    struct str *why_r, bool *perm_r)
{
	*perm_r = false;
	if (strncmp(nexthop, "unix:", 5) == 0)
		return smtp_connect_unix(nexthop + 5, relay_r, why_r, perm_r);
	if (*nexthop == '/')
		return smtp_connect_unix(nexthop, relay_r, why_r, perm_r);
	if (strncmp(nexthop, "inet:", 5) == 0)
		nexthop += 5;
	return smtp_connect_inet(nexthop, default_port, relay_r, why_r,
	    perm_r);
}

/* smtp_connect_addr - see smtp.h */
int
smtp_connect_addr(const struct smtp_addr *a)
{
	int fd, saved;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (smtp_connect_wait(fd, (const struct sockaddr *)&a->ss, a->len,
	    smtp_settings.connect_timeout) < 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * smtp_tls_cache_key - the TLS session cache key of d's server into out
 * (replaced); false when there is none (no destination key: a UNIX next
 * hop) or it is too long for scache
 */
static bool
smtp_tls_cache_key(const struct smtp_delivery *d, struct str *out)
{
	str_clear(out);
	if (d->cache_key == NULL || !smtp_cache_tls_enabled())
		return false;
	str_printf(out, "%s sni=%s", d->cache_key,
	    d->dane != NULL ? tls_dane_base(d->dane) :
	    d->host != NULL ? d->host : "");
	if (d->dane != NULL) {
		str_append_cstr(out, " tlsa=");
		tls_dane_digest(d->dane, out);
	}
	return str_len(out) <= SCACHE_STRING_MAX;
}

/* What smtp_tls_prepare() sets up on a new SSL. */
struct smtp_tls_prep {
	const struct tls_dane *dane;	/* or NULL */
	const struct str *session;	/* serialized, or empty */
};

/* smtp_tls_prepare - DANE, and the cached session to offer */
static int
smtp_tls_prepare(struct ssl_st *ssl, void *arg, struct str *err)
{
	const struct smtp_tls_prep *prep = arg;

	if (prep->dane != NULL &&
	    tls_dane_ssl_prepare(ssl, prep->dane, err) < 0)
		return -1;
	/* one that does not decode or resume just means a full handshake */
	if (str_len(prep->session) > 0)
		(void)tls_ssl_offer_session(ssl, str_c(prep->session),
		    str_len(prep->session));
	return 0;
}

/* smtp_tls_start - see smtp.h */
struct tls_session *
smtp_tls_start(struct smtp_delivery *d, struct stream *s, struct str *err)
{
	struct str *key = str_new(128, 0), *session = str_new(0, 0);
	struct smtp_tls_prep prep;
	struct tls_session *tls;

	prep.dane = d->dane;
	prep.session = session;
	if (smtp_tls_cache_key(d, key))
		(void)smtp_cache_tls_get(str_c(key), session);
	tls = tls_session_start_with(smtp_settings.tls_ctx, s,
	    d->dane != NULL ? tls_dane_base(d->dane) : d->host,
	    smtp_tls_prepare, &prep, smtp_settings.helo_timeout, err);
	explicit_bzero(str_data(session), str_len(session));
	str_free(&session);
	str_free(&key);
	return tls;
}

/* smtp_tls_remember - see smtp.h */
void
smtp_tls_remember(struct smtp_delivery *d, struct tls_session *tls)
{
	struct str *key = str_new(128, 0), *session = str_new(0, 0);

	if (smtp_tls_cache_key(d, key) && tls_session_export(tls, session))
		smtp_cache_tls_put(str_c(key), session);
	explicit_bzero(str_data(session), str_len(session));
	str_free(&session);
	str_free(&key);
}

/* smtp_tls_dane_check - see smtp.h */
bool
smtp_tls_dane_check(struct smtp_delivery *d, struct tls_session *tls,
    struct str *why)
{
	struct str *desc = str_new(128, 0), *how = str_new(128, 0);
	bool ok = tls_dane_session_verified(tls, how);

	tls_session_describe(tls, desc);
	log_info(&d->log, "%s TLS connection established to %s: %s%s",
	    ok ? "Verified" : "Untrusted", str_c(d->relay), str_c(desc),
	    tls_session_reused(tls) ? ", session resumed" : "");
	str_clear(why);
	if (ok)
		log_info(&d->log, "%s: DANE %s", str_c(d->relay), str_c(how));
	else
		str_printf(why, "Server certificate not trusted: no TLSA record "
		    "of %s matched (%s) (host %s)", tls_dane_base(d->dane),
		    str_c(how), str_c(d->relay));
	str_free(&how);
	str_free(&desc);
	return ok;
}
