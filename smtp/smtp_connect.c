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

/* smtp_tls_start - see smtp.h */
struct tls_session *
smtp_tls_start(struct smtp_delivery *d, struct stream *s, struct str *err)
{
	if (d->dane != NULL)
		return tls_dane_session_start(smtp_settings.tls_ctx, s,
		    d->dane, smtp_settings.helo_timeout, err);
	return tls_session_start(smtp_settings.tls_ctx, s, d->host,
	    smtp_settings.helo_timeout, err);
}

/* smtp_tls_dane_check - see smtp.h */
bool
smtp_tls_dane_check(struct smtp_delivery *d, struct tls_session *tls,
    struct str *why)
{
	struct str *desc = str_new(128, 0), *how = str_new(128, 0);
	bool ok = tls_dane_session_verified(tls, how);

	tls_session_describe(tls, desc);
	log_info(&d->log, "%s TLS connection established to %s: %s",
	    ok ? "Verified" : "Untrusted", str_c(d->relay), str_c(desc));
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
