/* SPDX-License-Identifier: MIT */
/*
 * login_proxy - the pre-authentication / post-authentication split
 *
 * imapd, pop3d and sieved run in two roles (Dovecot's imap-login / imap
 * split): the LOGIN role talks to the network before authentication, as
 * $mail_owner without access to the store; after a successful login it
 * hands the connection to the MAIL role, a private unix service running
 * as $store_owner, and is done with it. This module is the shared part:
 *
 *   login side                              mail side
 *   login_conn_accept(&c, conn, ...)        login_conn_handoff(&c, sock, &h)
 *     (session ID, slot per address)          (login_proxy_recv: the same
 *   login_conn_handoff_record(&c, user, &h)    ID, addresses, TLS state,
 *   login_proxy_send(path, fd, &handoff) ->    slot; c.s on the client fd)
 *   [TLS: fd is one end of a socketpair;    serves plaintext on c.s
 *    login_proxy_relay(stream, other end)
 *    keeps decrypting/encrypting]
 *   login_conn_clear(&c)                    login_conn_clear(&c)
 *
 * The hand-off is one typed, length-prefixed record (struct
 * login_handoff) plus the client fd and optionally a connection-slot fd,
 * sent with SCM_RIGHTS over $queue_directory/private/NAME (mode 0600,
 * owned by $mail_owner): only a login process can connect, so the mail
 * side trusts the user name in the record. It still decodes strictly
 * (size first, every length checked, exact consumption, no NUL in names)
 * because a compromised login process must not become more than "can
 * log in as anyone": it cannot make the mail side read past its buffers.
 *
 * Connection slots (per client address, per user) are fcntl OFD locks on
 * byte i of DIR/KEY for i < limit (the smtpd technique, with open file
 * description locks so that the slot travels with the fd to the mail
 * process and is released when the last process holding it closes it).
 *
 * Nothing here exits except on memory exhaustion; every call returns -1
 * with *error_r (static text, or errno-style) on failure.
 */
#ifndef POSTERN_LOGIN_PROXY_H
#define POSTERN_LOGIN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct server_conn;
struct str;
struct stream;
struct tls_session;

#define LOGIN_HANDOFF_MAX_STRING	1024	/* each name field */
#define LOGIN_HANDOFF_MAX_INPUT		(64 * 1024) /* pipelined input */
#define LOGIN_HANDOFF_MAX_LISTS		8192	/* the lists field */
#define LOGIN_HANDOFF_MAX_FDS		2
#define LOGIN_HANDOFF_TIMEOUT		10	/* seconds to take a hand-off */

#define LOGIN_HANDOFF_TLS	0x01u	/* the client fd is a TLS relay's socketpair */
#define LOGIN_HANDOFF_SECURED	0x02u	/* connection is secure (TLS or local) */
#define LOGIN_HANDOFF_QUOTA	0x04u	/* quota holds the user's storage quota */

struct login_handoff {
	uint32_t flags;		/* LOGIN_HANDOFF_* */
	char *user;		/* authenticated, canonical */
	char *peer_addr;
	uint32_t peer_port;
	char *local_addr;
	uint32_t local_port;
	uint64_t quota;		/* with LOGIN_HANDOFF_QUOTA: bytes, 0 = none
				 * (imapd: the login side has the maps) */
	char *tls;		/* "TLSv1.3 with cipher ..." or "" */
	char *session_id;	/* the log ID the login side used */
	char *proto;		/* protocol data: imapd sends the LOGIN tag */
	char *lists;		/* imapd: the lists (names, space-separated)
				 * whose LDAP group holds the user, as the
				 * login side found it; NULL or "" none */
	struct str *input;	/* client input read after the login command */
};

/* login_handoff_clear - free every field (the struct itself is the caller's) */
void login_handoff_clear(struct login_handoff *h);

/*
 * login_handoff_encode - the record for h into out (replaced). -1 if a
 * field is too long or holds a NUL (never sent then).
 */
int login_handoff_encode(const struct login_handoff *h, struct str *out);
/*
 * login_handoff_decode - strictly decode p/n into h (fields owned by h:
 * login_handoff_clear). -1 with *error_r (static) on any deviation; h is
 * then cleared.
 */
int login_handoff_decode(const void *p, size_t n, struct login_handoff *h,
    const char **error_r);

/*
 * login_proxy_send - connect to the unix socket path, send the record
 * and the fds (client fd first, then slot_fd if >= 0) within timeout
 * seconds, and close the socket. 0 when the mail side has them. On -1
 * after the fds were sent (the mail side was too slow to take them),
 * client_fd's socket is shut down in both directions, since a mail
 * process may still take it later: the caller's reply on it is lost,
 * and the client sees the connection close.
 */
int login_proxy_send(const char *path, int client_fd, int slot_fd,
    const struct login_handoff *h, unsigned timeout, const char **error_r);

/*
 * login_proxy_recv - on an accepted connection from a login process,
 * receive one record and its fds within timeout seconds. fds_r gets up
 * to LOGIN_HANDOFF_MAX_FDS close-on-exec fds (owned by the caller),
 * *nfds_r how many; at least one (the client) on success. On success
 * it also shuts sock down, the acknowledgement login_proxy_send waits
 * for. On failure every received fd is closed.
 */
int login_proxy_recv(int sock, struct login_handoff *h, int *fds_r,
    size_t *nfds_r, unsigned timeout, const char **error_r);

/*
 * The record transport under the hand-off, also used by other private
 * services that pass fds (scache(8)): a record is at most a few KB whose
 * octets 4..7 hold its total length (native u32); the fds ride on its
 * first octet with SCM_RIGHTS.
 *
 * login_proxy_connect - a close-on-exec socket connected to the unix
 * socket path within timeout seconds (0 = an hour); -1 with errno and
 * *error_r.
 * login_proxy_send_rec - send rec[0..len) and fds (borrowed, at most
 * LOGIN_PROXY_MAX_FDS; nfds may be 0) within timeout seconds; makes
 * sock non-blocking. -1 with *error_r.
 * login_proxy_recv_rec - receive one record whose length is within
 * [min, max] (min >= 8) into rec (replaced) and up to maxfds fds
 * (close-on-exec, owned by the caller: *nfds_r of them); more are
 * closed. -1 with *error_r; every received fd is closed then.
 */
#define LOGIN_PROXY_MAX_FDS	4
int login_proxy_connect(const char *path, unsigned timeout,
    const char **error_r);
int login_proxy_send_rec(int sock, const void *rec, size_t len,
    const int *fds, size_t nfds, unsigned timeout, const char **error_r);
int login_proxy_recv_rec(int sock, struct str *rec, size_t min, size_t max,
    int *fds_r, size_t maxfds, size_t *nfds_r, unsigned timeout,
    const char **error_r);

/*
 * login_proxy_relay - after the hand-off of a TLS connection: copy
 * client (a stream with TLS installed) <-> inner_fd (our end of the
 * socketpair) until the inner side closes, or the client is gone and
 * the inner side has closed too. pending (may be NULL) tells whether
 * the client stream's TLS layer holds decrypted input poll(2) cannot see
 * (tls_session_pending). Returns 0 at a normal end, -1 on an I/O error.
 * Closes nothing.
 */
int login_proxy_relay(struct stream *client, int inner_fd,
    bool (*pending)(const void *ctx), const void *pending_ctx,
    const char **error_r);

/*
 * login_proxy_input_new - make stream s (on fd) return input first, then
 * what arrives on fd: the client's pipelined bytes the login side had
 * already read. Takes ownership of *inputp (NULLed). The result is owned
 * by the caller: free it with login_proxy_input_free() after the stream.
 * NULL (nothing installed) when there is no input.
 */
struct login_proxy_input;
struct login_proxy_input *login_proxy_input_new(struct stream *s, int fd,
    struct str **inputp);
void login_proxy_input_free(struct login_proxy_input **inp);

/*
 * One client connection of imapd, pop3d or sieved, in either role: the
 * login role sets it up with login_conn_accept(), the mail role with
 * login_conn_handoff(). The programs read and change the fields; the
 * strings and fds belong to the struct (login_conn_clear).
 */
struct login_conn {
	struct stream *s;
	struct log_ctx log;	/* its id is the id below */
	char id[32];		/* the session ID, the same in both roles */
	char *peer_addr;
	unsigned peer_port;
	char *local_addr;
	unsigned local_port;
	bool secured;		/* TLS, or loopback (*_loopback_secure) */
	bool tls;
	char *tls_desc;		/* what tls_session_describe says; NULL
				 * before TLS (login role), "" (mail) */
	struct tls_session *tls_sess;	/* the login side's; the program
					 * frees it (lib/tls is not linked
					 * into every mail role) */
	int slot_fd;		/* per-IP connection slot, -1: none */
	bool have_quota;	/* quota_bytes is set (the login side's) */
	uint64_t quota_bytes;	/* the user's storage quota, 0 = none */
	char *dir_lists;	/* imapd: " a b " lists whose LDAP group
				 * holds the user (the login side's
				 * lookup), or NULL */
	struct login_proxy_input *input;	/* under s (mail role) */
};

/* login_conn_id - a new session ID for c, unique on this host (time, pid) */
void login_conn_id(struct login_conn *c);

/* login_addr_is_loopback - 127/8, ::1, v4-mapped 127/8 or "local" */
bool login_addr_is_loopback(const char *addr);

/*
 * login_conn_accept - the login role's set-up of c for the accepted
 * conn: a new session ID, the addresses, c->s on conn->fd (which it
 * does not close) with timeout, "connect from" logged, and one of limit
 * slots for the client address in DATA_DIR/SLOT_NAME (login_conn_slot).
 * false when they are all taken (logged): the caller refuses the client
 * in its protocol on c->s. A slot error is logged and the client let in
 * uncounted. Either way c is the caller's to login_conn_clear().
 */
bool login_conn_accept(struct login_conn *c, const struct server_conn *conn,
    unsigned timeout, const char *data_dir, const char *slot_name,
    unsigned limit);

/*
 * login_conn_handoff_record - the login role's hand-off record for c,
 * logged in as user, into h (the caller's: login_handoff_clear): the
 * flags (TLS, secured, and the quota if c->have_quota), addresses, TLS
 * description, session ID and LDAP lists of c, proto (NULL: none), and
 * the client input c->s had read ahead, taken off the stream. -1 (h
 * untouched) when that input is over LOGIN_HANDOFF_MAX_INPUT: too much
 * pipelining.
 */
int login_conn_handoff_record(struct login_conn *c, const char *user,
    const char *proto, struct login_handoff *h);

/*
 * login_conn_handoff - the mail role's set-up of c from a hand-off on
 * sock (login_proxy_recv within LOGIN_HANDOFF_TIMEOUT): the login side's
 * session ID, addresses, TLS state, quota, LDAP lists and connection
 * slot, and c->s on the client fd (which c owns) with timeout, giving
 * the client input the login side had read before what arrives on the
 * fd. h gets the rest of the record (user, proto): login_handoff_clear()
 * it. -1 with
 * *error_r (errno set) when nothing came: c is then empty, still safe to
 * login_conn_clear().
 */
int login_conn_handoff(struct login_conn *c, int sock, unsigned timeout,
    struct login_handoff *h, const char **error_r);

/*
 * login_conn_clear - free what c holds: the stream (and with it, in the
 * mail role, the client fd), the strings, the slot. c->tls_sess must be
 * freed (NULL) already.
 */
void login_conn_clear(struct login_conn *c);

/*
 * login_conn_slot - take one of limit slots for key in directory dir
 * (created mode 0700 if missing). key must be [0-9A-Za-z.:_@+-], else no
 * slot is needed (1 with *fd_r = -1, as for limit 0). 1 with the slot's
 * fd in *fd_r (close it to give the slot back), 0 if all are taken, -1 on
 * error (the caller usually lets the client in and logs it).
 */
int login_conn_slot(const char *dir, const char *key, unsigned limit,
    int *fd_r, const char **error_r);

#endif
