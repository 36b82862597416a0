/* SPDX-License-Identifier: MIT */
/*
 * scache - connection cache shared between smtp(8) agent processes
 *
 * DESCRIPTION
 *	A unix service (private/scache, one process) that holds idle,
 *	greeted SMTP sessions for the smtp agents, as Postfix's scache(8).
 *	After a delivery an agent passes the session's socket here with
 *	SCM_RIGHTS (PUT), together with what it needs to go on without a
 *	new EHLO: the server's EHLO features, its SIZE limit and its name.
 *	Before it connects, an agent of any process asks for a session
 *	under the same key (GET): the next hop, the server address and port
 *	and the TLS level. The agent proves a session alive with RSET
 *	before it uses it; scache never reads or writes a parked session
 *	except for the "QUIT" it sends when it closes one.
 *
 *	Only plaintext connections come here: a TLS connection's state
 *	lives in the agent's SSL object, so those stay in the agent's own
 *	cache (smtp_cache.c). What scache holds for TLS is the agents' TLS
 *	client sessions, for resumption (TLS_PUT, TLS_GET: scache_tls.c),
 *	as Postfix's tlsmgr(8) session cache: a serialized SSL_SESSION
 *	under a key that names the destination and the TLS policy, kept
 *	$smtp_tls_session_cache_timeout (0: none kept), at most
 *	SCACHE_TLS_LIMIT of them.
 *
 *	A session stays at most $smtp_connection_cache_time after its
 *	park, and at most $scache_size_limit sessions are held (the oldest
 *	goes for a new one). The process holds its sessions only while it
 *	runs: when it exits ($max_use, $max_idle, a reload, kill -9) they
 *	are closed (and the TLS sessions forgotten), and agents connect
 *	afresh, with full handshakes; no mail depends on scache.
 *
 *	One request per connection: a record (lib/scache_proto.h), then
 *	one reply record, then close; each waits at most
 *	SCACHE_IO_TIMEOUT seconds. Requests take microseconds, so the
 *	service runs in the skeleton's single mode; its idle hook closes
 *	expired sessions.
 *
 * SECURITY
 *	Runs as $mail_owner, unprivileged, without network access of its
 *	own. Its socket is in private/, reachable only by $mail_owner (the
 *	agents). It trusts its clients to pass sessions they own; it
 *	decodes each record strictly and never touches a session's data.
 *	The TLS sessions are secrets: they stay in memory (never on disk),
 *	go only to clients of that socket, and are wiped from the records
 *	and buffers that carried them and when they leave the table. As
 *	with Postfix's tlsmgr, every daemon that runs as $mail_owner can
 *	reach the socket, not only the agents.
 *
 * SEE ALSO
 *	scache(8), smtp(8), smtp/smtp_cache.c, Postfix scache(8) and
 *	tlsmgr(8)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "login_proxy.h"
#include "scache.h"
#include "scache_proto.h"
#include "server.h"
#include "str.h"

#define SCACHE_IO_TIMEOUT	5	/* seconds per request or reply */
#define SCACHE_IDLE_MAX_MS	3600000	/* the longest idle wait asked for */

/* scache_now - monotonic ms */
static int64_t
scache_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* scache_reply - send the reply record (and fd when >= 0) */
static void
scache_reply(int sock, const struct scache_rec *r, int fd)
{
	struct str *out = str_new(128, 0);
	const char *error = NULL;

	if (scache_rec_encode(r, out) < 0 ||
	    login_proxy_send_rec(sock, str_data(out), str_len(out), &fd,
	    fd >= 0 ? 1 : 0, SCACHE_IO_TIMEOUT, &error) < 0)
		log_warn(NULL, "cannot reply to an agent: %s: %m",
		    error != NULL ? error : "record too long");
	scache_rec_wipe(out);
	str_free(&out);
}

/* scache_serve - one request */
static void
scache_serve(const struct server_conn *conn)
{
	struct str *in = str_new(128, SCACHE_REC_MAX);
	struct scache_rec req, rep;
	const char *error = NULL;
	int fds[1], fd = -1;
	size_t nfds = 0;

	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	rep.op = SCACHE_OP_REPLY;
	if (login_proxy_recv_rec(conn->fd, in, SCACHE_REC_FIXED,
	    SCACHE_REC_MAX, fds, 1, &nfds, SCACHE_IO_TIMEOUT, &error) < 0 ||
	    scache_rec_decode(str_c(in), str_len(in), &req, &error) < 0) {
		log_warn(NULL, "bad request: %s", error);
		goto out;
	}
	if (req.op == SCACHE_OP_PUT && nfds == 1) {
		scache_table_put(&req, fds[0], scache_now());
		nfds = 0;
		log_debug(NULL, "parked a session with %s (%zu held)",
		    req.host, scache_table_count());
		rep.status = 1;
		scache_reply(conn->fd, &rep, -1);
	} else if (req.op == SCACHE_OP_TLS_PUT && nfds == 0) {
		rep.status = scache_tls_put(req.key, req.data, req.data_len,
		    scache_now());
		log_debug(NULL, "%s a TLS session for %s (%zu held)",
		    rep.status ? "stored" : "refused", req.key,
		    scache_tls_count());
		scache_reply(conn->fd, &rep, -1);
	} else if (req.op == SCACHE_OP_TLS_GET && nfds == 0) {
		rep.status = scache_tls_get(req.key, scache_now(), &rep);
		log_debug(NULL, "TLS session %s for %s", rep.status ? "hit" :
		    "miss", req.key);
		scache_reply(conn->fd, &rep, -1);
	} else if (req.op == SCACHE_OP_GET && nfds == 0) {
		fd = scache_table_get(req.key, scache_now(), &rep);
		rep.op = SCACHE_OP_REPLY;
		rep.status = fd >= 0;
		log_debug(NULL, "%s for %s", fd >= 0 ? "hit" : "miss",
		    req.key);
		scache_reply(conn->fd, &rep, fd);
		if (fd >= 0)
			(void)close(fd);
	} else {
		log_warn(NULL, "bad request: op %u with %zu fds",
		    (unsigned)req.op, nfds);
	}
out:
	while (nfds > 0)
		(void)close(fds[--nfds]);
	scache_rec_clear(&req);
	scache_rec_clear(&rep);
	scache_rec_wipe(in);
	str_free(&in);
}

/* scache_post_jail - the table's limits */
static void
scache_post_jail(void)
{
	const struct config *cfg = conf();
	uint64_t limit = config_int(cfg, "scache_size_limit");
	unsigned ttl = config_time(cfg, "smtp_connection_cache_time");
	unsigned tls_ttl = config_time(cfg, "smtp_tls_session_cache_timeout");

	if (limit == 0)
		limit = 1;
	if (limit > 10000)
		limit = 10000;
	if (ttl > 3600)
		ttl = 3600;
	scache_table_init((size_t)limit, (int64_t)ttl * 1000);
	scache_tls_init(SCACHE_TLS_LIMIT, (int64_t)tls_ttl * 1000);
}

/* scache_idle - close the sessions that expired */
static unsigned
scache_idle(void)
{
	int64_t now = scache_now();
	int64_t next = scache_table_expire(now);
	int64_t tls_next = scache_tls_expire(now);

	if (tls_next > 0 && (next == 0 || tls_next < next))
		next = tls_next;
	if (next > SCACHE_IDLE_MAX_MS)
		next = SCACHE_IDLE_MAX_MS;	/* an unsigned holds it */
	/* a little late rather than a busy wait on a rounding error */
	return next > 0 ? (unsigned)next + 1 : 0;
}

/* scache_pre_exit - close every session */
static void
scache_pre_exit(void)
{
	scache_table_close_all();
	scache_tls_clear();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.post_jail = scache_post_jail,
		.serve = scache_serve,
		.idle = scache_idle,
		.pre_exit = scache_pre_exit,
	};

	return server_main(argc, argv, &ops);
}
