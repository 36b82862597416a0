/* SPDX-License-Identifier: MIT */
/*
 * smtp_cache - idle SMTP/LMTP sessions kept in the agent process
 *
 * DESCRIPTION
 *	After a delivery whose session ended at a command boundary (no
 *	broken connection, no TLS policy failure), smtp_session() parks
 *	the session here instead of sending QUIT, under a key that names
 *	the destination: the request's next hop, the server address and
 *	port it reached, and the TLS level (smtp.c builds it). The next
 *	request of this process for the same key takes it back within
 *	$smtp_connection_cache_time, proves it alive with RSET (which
 *	also ends a transaction the last delivery abandoned) and skips the
 *	greeting, EHLO/LHLO and STARTTLS. This is Postfix's connection
 *	cache without the shared scache(8) daemon: sessions stay in the
 *	process that opened them, so the hit rate depends on master
 *	handing the next request to a worker that holds one; each worker
 *	holds at most SMTP_CACHE_SLOTS sessions, one per key.
 *
 *	Before it opens a new connection (a cache miss), the agent closes
 *	every session it still holds (smtp.c calls smtp_cache_close_all()).
 *	A process that waits for a server to accept it must hold no idle
 *	session: with a server that caps its connections (smtp-sink -m,
 *	Postfix's per-client limits), busy agents each holding idle
 *	sessions to other destinations while they wait for a new one would
 *	deadlock with it until the server's idle timeout. On a hit the
 *	other sessions stay: that delivery waits only for replies.
 *
 *	Sessions idle longer than the cache time are closed (QUIT, not
 *	waited for) from the server skeleton's idle hook
 *	(smtp_cache_expire(), lib/server.h ops.idle), and all of them
 *	before the process exits (smtp_cache_close_all()).
 *
 *	Shared cache: with $smtp_connection_cache_service set (default
 *	"scache"), a plaintext session goes to scache(8) instead, which
 *	holds it for any agent process: smtp_cache_put() passes its fd
 *	with SCM_RIGHTS with the EHLO features, SIZE limit and server name,
 *	and closes its own copy without QUIT; smtp_cache_take() asks
 *	scache after a miss in its own slots. A TLS session stays here:
 *	its state lives in this process's SSL object. When scache cannot
 *	be reached (not in master.conf, killed, restarting), the agent
 *	keeps the session itself and does not ask again for
 *	SMTP_CACHE_SCACHE_BACKOFF seconds; no delivery waits on scache
 *	for long (SMTP_CACHE_SCACHE_TIMEOUT per request).
 *
 *	TLS sessions: with $smtp_tls_session_cache_timeout above 0 and the
 *	service set, the agents also share TLS client sessions through
 *	scache, for resumption, as Postfix's smtp does through tlsmgr(8)
 *	(smtp_connect.c decides what to store and offer, under which key):
 *	smtp_cache_tls_get() asks for the session stored under a key,
 *	smtp_cache_tls_put() stores one. These go to scache even with
 *	connection caching off, and share its backoff: an scache that
 *	cannot be reached costs full handshakes, nothing else. The
 *	sessions are secrets: every buffer that carried one is wiped.
 *
 *	Sessions parked in scache count against the server's connection
 *	limit while they idle. The deadlock above cannot happen with them:
 *	scache is not waiting for anything, its sessions close by
 *	themselves after the cache time, and a GET takes any session of
 *	the key, so an agent that misses and connects afresh knows that
 *	no session to that destination, next hop and TLS level is parked
 *	there. What remains is sessions under other keys of the same
 *	server (another next-hop name, another TLS level), at most the
 *	cache time each; a server with a cap below the agent count plus
 *	those should get a shorter $smtp_connection_cache_time.
 *
 *	XXX a cached session holds a process of a single-mode LMTP server
 *	(lmtpd) for up to the cache time; give lmtpd at least as many
 *	processes as the lmtp transport, or a worker without a cached
 *	session can wait for one to expire.
 *
 * SEE ALSO
 *	smtp(8), Postfix scache(8) and smtp_reuse.c
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "login_proxy.h"
#include "scache_proto.h"
#include "smtp.h"
#include "smtp_proto.h"
#include "stream.h"
#include "tls.h"

#define SMTP_CACHE_SLOTS	32	/* sessions per process */
#define SMTP_CACHE_QUIT_TIMEOUT	2	/* seconds for a parting QUIT */
#define SMTP_CACHE_SCACHE_TIMEOUT 2	/* seconds per scache request */
#define SMTP_CACHE_SCACHE_BACKOFF 10	/* seconds without scache after a failure */

struct smtp_cache_slot {
	char *key;			/* NULL: free */
	struct smtp_conn conn;
	int64_t expires;		/* ms, CLOCK_MONOTONIC */
};

static struct smtp_cache_slot smtp_cache_slots[SMTP_CACHE_SLOTS];
static unsigned smtp_cache_ttl_ms;
static char *smtp_cache_scache_path;	/* "private/scache", or NULL */
static bool smtp_cache_tls_on;		/* TLS sessions go to scache */
static int64_t smtp_cache_scache_down;	/* ms: do not ask before */

/* smtp_cache_now - monotonic ms */
static int64_t
smtp_cache_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* smtp_conn_close - see smtp.h */
void
smtp_conn_close(struct smtp_conn *conn, bool quit)
{
	if (conn->s == NULL)
		return;
	if (quit) {
		stream_set_timeout(conn->s, SMTP_CACHE_QUIT_TIMEOUT);
		(void)stream_puts(conn->s, "QUIT\r\n");
		(void)stream_flush(conn->s);
	}
	tls_session_free(&conn->tls);
	stream_free(&conn->s);
	memset(conn, 0, sizeof(*conn));
}

/* smtp_cache_slot_close - close one slot's session and free the slot */
static void
smtp_cache_slot_close(struct smtp_cache_slot *slot)
{
	smtp_conn_close(&slot->conn, true);
	XFREE(slot->key);
	slot->expires = 0;
}

/* smtp_cache_init - see smtp.h */
void
smtp_cache_init(unsigned ttl_seconds, unsigned tls_ttl_seconds)
{
	const char *service = config_str(conf(),
	    "smtp_connection_cache_service");

	smtp_cache_ttl_ms = ttl_seconds > 3600 ? 3600 * 1000 :
	    ttl_seconds * 1000;
	XFREE(smtp_cache_scache_path);
	smtp_cache_tls_on = false;
	if (*service == '\0' || strchr(service, '/') != NULL)
		return;
	if (smtp_cache_ttl_ms > 0 || tls_ttl_seconds > 0)
		smtp_cache_scache_path = xasprintf("private/%s", service);
	smtp_cache_tls_on = tls_ttl_seconds > 0;
}

/*
 * smtp_cache_scache - one request to scache: req (and fd when >= 0,
 * borrowed); the reply into rep_r (owned: scache_rec_clear) and, with
 * it, a received fd into *fd_r (-1 when none). false when scache could
 * not be asked (then not again for a while) or the reply was bad.
 */
static bool
smtp_cache_scache(const struct scache_rec *req, int fd,
    struct scache_rec *rep_r, int *fd_r)
{
	struct str *buf = str_new(128, SCACHE_REC_MAX);
	const char *error = NULL;
	int sock = -1, fds[1];
	size_t nfds = 0;
	bool ok = false;

	memset(rep_r, 0, sizeof(*rep_r));
	*fd_r = -1;
	if (smtp_cache_scache_path == NULL ||
	    smtp_cache_now() < smtp_cache_scache_down)
		goto out;
	if (scache_rec_encode(req, buf) < 0) {
		errno = ENAMETOOLONG;
		error = "key too long";
		goto fail;
	}
	if ((sock = login_proxy_connect(smtp_cache_scache_path,
	    SMTP_CACHE_SCACHE_TIMEOUT, &error)) < 0 ||
	    login_proxy_send_rec(sock, str_data(buf), str_len(buf), &fd,
	    fd >= 0 ? 1 : 0, SMTP_CACHE_SCACHE_TIMEOUT, &error) < 0 ||
	    login_proxy_recv_rec(sock, buf, SCACHE_REC_FIXED, SCACHE_REC_MAX,
	    fds, 1, &nfds, SMTP_CACHE_SCACHE_TIMEOUT, &error) < 0 ||
	    (errno = EPROTO, false) ||
	    scache_rec_decode(str_c(buf), str_len(buf), rep_r, &error) < 0)
		goto fail;
	if (rep_r->op != SCACHE_OP_REPLY ||
	    nfds != (rep_r->status == 1 && req->op == SCACHE_OP_GET)) {
		error = "unexpected reply";
		goto fail;
	}
	if (nfds == 1)
		*fd_r = fds[0];
	ok = true;
	goto out;
fail:
	log_warn(NULL, "connection cache service %s: %s: %m; not asking it "
	    "for %d seconds", smtp_cache_scache_path, error,
	    SMTP_CACHE_SCACHE_BACKOFF);
	smtp_cache_scache_down = smtp_cache_now() +
	    SMTP_CACHE_SCACHE_BACKOFF * 1000;
	while (nfds > 0)
		(void)close(fds[--nfds]);
	scache_rec_clear(rep_r);
out:
	if (sock >= 0)
		(void)close(sock);
	scache_rec_wipe(buf);		/* it may have carried a TLS session */
	str_free(&buf);
	return ok;
}

/* smtp_cache_scache_put - park a plaintext conn in scache; true if taken */
static bool
smtp_cache_scache_put(const char *key, const char *host,
    struct smtp_conn *conn)
{
	struct scache_rec req, rep;
	int fd;
	bool ok;

	if (conn->tls != NULL || smtp_cache_scache_path == NULL)
		return false;
	memset(&req, 0, sizeof(req));
	req.op = SCACHE_OP_PUT;
	req.ext = conn->ext;
	req.token_ext = conn->token_ext;
	req.size_max = conn->size_max;
	req.key = (char *)(uintptr_t)key;
	req.host = (char *)(uintptr_t)(host != NULL ? host : "");
	ok = smtp_cache_scache(&req, stream_fd(conn->s), &rep, &fd) &&
	    rep.status == 1;
	scache_rec_clear(&rep);
	if (ok)
		smtp_conn_close(conn, false);	/* scache holds it now */
	return ok;
}

/* smtp_cache_scache_take - a session parked in scache under key */
static bool
smtp_cache_scache_take(const char *key, struct smtp_conn *conn_r)
{
	struct scache_rec req, rep;
	int fd;

	if (smtp_cache_scache_path == NULL)
		return false;
	memset(&req, 0, sizeof(req));
	req.op = SCACHE_OP_GET;
	req.key = (char *)(uintptr_t)key;
	if (!smtp_cache_scache(&req, -1, &rep, &fd) || fd < 0) {
		scache_rec_clear(&rep);
		return false;
	}
	memset(conn_r, 0, sizeof(*conn_r));
	conn_r->s = stream_new(fd, smtp_settings.helo_timeout, 0);
	conn_r->ext = rep.ext;
	conn_r->size_max = rep.size_max;
	conn_r->token_ext = rep.token_ext;
	scache_rec_clear(&rep);
	return true;
}

/* smtp_cache_tls_enabled - see smtp.h */
bool
smtp_cache_tls_enabled(void)
{
	return smtp_cache_tls_on;
}

/* smtp_cache_tls_get - see smtp.h */
bool
smtp_cache_tls_get(const char *key, struct str *session_r)
{
	struct scache_rec req, rep;
	int fd;
	bool ok;

	str_clear(session_r);
	if (!smtp_cache_tls_on)
		return false;
	memset(&req, 0, sizeof(req));
	req.op = SCACHE_OP_TLS_GET;
	req.key = (char *)(uintptr_t)key;
	ok = smtp_cache_scache(&req, -1, &rep, &fd) && rep.status == 1 &&
	    rep.data_len > 0;
	if (ok)
		(void)str_append(session_r, rep.data, rep.data_len);
	scache_rec_clear(&rep);		/* wipes the session */
	return ok;
}

/* smtp_cache_tls_put - see smtp.h */
void
smtp_cache_tls_put(const char *key, const struct str *session)
{
	struct scache_rec req, rep;
	int fd;

	if (!smtp_cache_tls_on || str_len(session) == 0 ||
	    str_len(session) > SCACHE_DATA_MAX)
		return;
	memset(&req, 0, sizeof(req));
	req.op = SCACHE_OP_TLS_PUT;
	req.key = (char *)(uintptr_t)key;
	/* borrowed: req is not cleared */
	req.data = (unsigned char *)(uintptr_t)str_c(session);
	req.data_len = str_len(session);
	(void)smtp_cache_scache(&req, -1, &rep, &fd);
	scache_rec_clear(&rep);
}

/* smtp_cache_enabled - see smtp.h */
bool
smtp_cache_enabled(void)
{
	return smtp_cache_ttl_ms > 0;
}

/* smtp_cache_take - see smtp.h */
bool
smtp_cache_take(const char *key, struct smtp_conn *conn_r)
{
	int64_t now = smtp_cache_now();
	size_t i;

	for (i = 0; i < SMTP_CACHE_SLOTS; i++) {
		struct smtp_cache_slot *slot = &smtp_cache_slots[i];

		if (slot->key == NULL || strcmp(slot->key, key) != 0)
			continue;
		if (now >= slot->expires) {
			smtp_cache_slot_close(slot);
			return false;
		}
		*conn_r = slot->conn;
		memset(&slot->conn, 0, sizeof(slot->conn));
		XFREE(slot->key);
		return true;
	}
	return smtp_cache_scache_take(key, conn_r);
}

/* smtp_cache_put - see smtp.h */
void
smtp_cache_put(const char *key, const char *host, struct smtp_conn *conn)
{
	struct smtp_cache_slot *slot = NULL;
	size_t i;

	if (!smtp_cache_enabled()) {
		smtp_conn_close(conn, true);
		return;
	}
	if (smtp_cache_scache_put(key, host, conn))
		return;
	for (i = 0; i < SMTP_CACHE_SLOTS; i++) {
		struct smtp_cache_slot *s = &smtp_cache_slots[i];

		if (s->key != NULL && strcmp(s->key, key) == 0) {
			/* one session per key: the older one goes */
			smtp_cache_slot_close(s);
			slot = s;
			break;
		}
		if (s->key == NULL && slot == NULL)
			slot = s;
	}
	if (slot == NULL) {
		/* full: the session that expires first makes room */
		slot = &smtp_cache_slots[0];
		for (i = 1; i < SMTP_CACHE_SLOTS; i++)
			if (smtp_cache_slots[i].expires < slot->expires)
				slot = &smtp_cache_slots[i];
		smtp_cache_slot_close(slot);
	}
	slot->key = xstrdup(key);
	slot->conn = *conn;
	slot->expires = smtp_cache_now() + smtp_cache_ttl_ms;
	memset(conn, 0, sizeof(*conn));
}

/* smtp_cache_expire - see smtp.h */
unsigned
smtp_cache_expire(void)
{
	int64_t now = smtp_cache_now(), next = 0;
	size_t i;

	for (i = 0; i < SMTP_CACHE_SLOTS; i++) {
		struct smtp_cache_slot *slot = &smtp_cache_slots[i];

		if (slot->key == NULL)
			continue;
		if (now >= slot->expires) {
			smtp_cache_slot_close(slot);
			continue;
		}
		if (next == 0 || slot->expires - now < next)
			next = slot->expires - now;
	}
	/* a little late rather than a busy wait on a rounding error */
	return next > 0 ? (unsigned)next + 1 : 0;
}

/* smtp_cache_close_all - see smtp.h */
void
smtp_cache_close_all(void)
{
	size_t i;

	for (i = 0; i < SMTP_CACHE_SLOTS; i++)
		if (smtp_cache_slots[i].key != NULL)
			smtp_cache_slot_close(&smtp_cache_slots[i]);
}

/* smtp_conn_probe - see smtp.h */
bool
smtp_conn_probe(struct smtp_conn *conn, unsigned timeout)
{
	struct pollfd pfd;
	struct str *line;
	enum stream_result r;
	bool ok = false;
	int n;

	/*
	 * Anything readable now (EOF, a 421 before a timeout close) means
	 * the server is done with us; so does buffered input.
	 */
	if (stream_pending(conn->s) > 0)
		return false;
	pfd.fd = stream_fd(conn->s);
	pfd.events = POLLIN;
	pfd.revents = 0;
	do {
		n = poll(&pfd, 1, 0);
	} while (n < 0 && errno == EINTR);
	if (n != 0)
		return false;
	stream_set_timeout(conn->s, timeout);
	if (stream_puts(conn->s, "RSET\r\n") < 0 || stream_flush(conn->s) < 0)
		return false;
	line = str_new(128, 0);
	for (;;) {
		r = stream_read_line(conn->s, line, SMTP_PROTO_LINE_MAX + 2);
		if (r != STREAM_OK)
			break;
		str_chomp(line);
		if (str_len(line) < 3 || strncmp(str_c(line), "250", 3) != 0)
			break;
		if (str_len(line) == 3 || str_c(line)[3] == ' ') {
			ok = true;
			break;
		}
		if (str_c(line)[3] != '-')
			break;
	}
	str_free(&line);
	return ok;
}
