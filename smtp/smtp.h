/* SPDX-License-Identifier: MIT */
/*
 * smtp.h - private interface between the parts of the smtp(8) agent
 *
 * smtp.c takes one delivery request from qmgr (lib/deliver_proto.h),
 * opens the queue file read-only and answers with one status per
 * recipient; smtp_connect.c reaches the next hop; smtp_session.c speaks
 * SMTP or LMTP to it. Nothing here exits on a delivery problem: every
 * failure becomes a per-recipient status.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver_proto.h"
#include "log.h"
#include "queue_file.h"
#include "str.h"

struct map;
struct stream;
struct tls_context;
struct tls_dane;
struct tls_session;

/* Timeouts and names, read from postern.conf once per process. */
struct smtp_settings {
	bool lmtp;			/* speak LMTP (service name "lmtp...") */
	unsigned connect_timeout;
	unsigned helo_timeout;
	unsigned mail_timeout;
	unsigned rcpt_timeout;
	unsigned data_init_timeout;
	unsigned data_xfer_timeout;
	unsigned data_done_timeout;
	const char *helo_name;
	unsigned mx_port;		/* $smtp_mx_port */
	unsigned mx_address_limit;
	bool downgrade_8bit;
	int tls_level;			/* SMTP_TLS_*: $smtp_tls_security_level */
	struct tls_context *tls_ctx;	/* NULL when TLS cannot work */
	struct map **tls_policy;	/* $smtp_tls_policy_maps */
	const char *const *tls_policy_specs;
	size_t ntls_policy;
};

/*
 * TLS levels. DANE and DANE_ONLY are policies: for each MX host they
 * become MAY, ENCRYPT or DANE (verified against its TLSA records) by
 * smtp_dns_dane(); DANE is also the level of a session with TLSA.
 */
enum { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY,
    SMTP_TLS_DANE, SMTP_TLS_DANE_ONLY };

extern struct smtp_settings smtp_settings;

/* The outcome of one recipient, filled in as the session goes. */
struct smtp_rcpt_state {
	const struct deliver_rcpt *rcpt;
	bool done;			/* status below is final for this request */
	enum deliver_status status;
	unsigned flags;			/* DELIVER_RES_F_* */
	struct str *dsn;
	struct str *text;
	char *remote_mta;		/* the server's name when text is its reply */
};

/* One delivery: the request, the queue file and the results. */
struct smtp_delivery {
	struct log_ctx log;
	const struct deliver_request *req;
	struct queue_file *qf;
	struct smtp_rcpt_state *rcpts;
	size_t nrcpts;
	struct str *relay;		/* "host[addr]:port" or the socket path */
	const char *host;		/* the server's name (SNI, logs) */
	const char *nexthop;		/* TCP next hop as given ("[h]:p", domain) */
	int tls_level;			/* SMTP_TLS_* for this next hop */
	const char *cache_key;		/* the server's key (smtp_cache.c), or NULL */
	struct tls_dane *dane;		/* TLSA records of host (level DANE) */
};

/*
 * smtp_set_status - record the status of recipient i unless it already
 * has one. dsn is "X.Y.Z"; text is copied.
 */
void smtp_set_status(struct smtp_delivery *d, size_t i,
    enum deliver_status status, unsigned flags, const char *dsn,
    const char *text);
/* smtp_set_all - the same for every recipient without a status yet */
void smtp_set_all(struct smtp_delivery *d, enum deliver_status status,
    const char *dsn, const char *text);

/*
 * smtp_connect - connect to nexthop ("unix:/path", "inet:host:port",
 * "inet:[host]:port", "/path", "host[:port]"). Returns a connected
 * blocking fd and sets relay_r (replaced) to its name for logs, or -1
 * with a human reason in why_r (replaced) and *perm_r true when retrying
 * cannot help (malformed nexthop).
 */
int smtp_connect(const char *nexthop, unsigned default_port, struct str *relay_r,
    struct str *why_r, bool *perm_r);

/*
 * smtp_split_hostport - "host:port", "[host]:port", "host", "[host]":
 * the host (owned by the caller) and the port (default_port when none).
 * -1 when malformed.
 */
int smtp_split_hostport(const char *s, unsigned default_port, char **host_r,
    unsigned *port_r);

/* smtp_connect_addr - connect to one resolved address (-1 with errno) */
struct smtp_addr;
int smtp_connect_addr(const struct smtp_addr *a);

/*
 * smtp_tls_start - the STARTTLS handshake on s for d's server: with
 * DANE when d->dane is set, else plain (SNI d->host), offering the
 * session the shared TLS session cache holds for d's server and TLS
 * policy (see smtp_connect.c). As tls_session_start().
 */
struct tls_session *smtp_tls_start(struct smtp_delivery *d, struct stream *s,
    struct str *err);
/*
 * smtp_tls_remember - after a handshake whose session passed the TLS
 * policy, and a reply read over it: store the session in the shared
 * TLS session cache (scache(8)) for the next handshake with d's server
 * under the same policy, from any agent process (best effort)
 */
void smtp_tls_remember(struct smtp_delivery *d, struct tls_session *tls);
/*
 * smtp_tls_dane_check - after the handshake of a DANE session: log the
 * "Verified"/"Untrusted TLS connection established" line; false with
 * the reason to defer in why (replaced) when no TLSA record matched.
 */
bool smtp_tls_dane_check(struct smtp_delivery *d, struct tls_session *tls,
    struct str *why);

/* ---------------------------------------------------------- smtp_dns.c */
struct smtp_addr {
	char *host;			/* MX host (or the name looked up) */
	unsigned pref;
	struct sockaddr_storage ss;
	socklen_t len;
	bool secure;			/* MX and address answers had AD set */
};

struct smtp_addrs {
	struct smtp_addr *a;
	size_t n, cap;
};

enum smtp_dns_result {
	SMTP_DNS_OK,
	SMTP_DNS_NOTFOUND,		/* NXDOMAIN: permanent */
	SMTP_DNS_NODATA,		/* no record of that type */
	SMTP_DNS_NULLMX,		/* RFC 7505: permanent */
	SMTP_DNS_TEMP,			/* try again later */
};

/*
 * smtp_dns_init - the resolver, before the jail: res_ninit, then
 * server ("IPv4[:port]", or "" for /etc/resolv.conf). With dnssec
 * ($smtp_dns_support_level = dnssec), queries ask for the AD bit, if
 * the resolver is trusted (server set, or only loopback servers in
 * resolv.conf): else a warning and no DNSSEC. -1 with why.
 */
int smtp_dns_init(const char *server, bool dnssec, struct str *why);
/* smtp_dns_dnssec - DNSSEC status is asked for and trusted */
bool smtp_dns_dnssec(void);
/*
 * smtp_dns_dane - the TLS level for server a (RFC 7672 2.2) under
 * policy DANE or DANE_ONLY: DANE with *dane_r set (owned by the caller)
 * when a was found securely and has secure, usable TLSA records at
 * _port._tcp.host; ENCRYPT when they are all unusable; MAY when there
 * are none or the lookups were insecure. -1, with a reason in why
 * (replaced), when a must not be used now: the TLSA lookup failed, or
 * DANE_ONLY without DANE.
 */
int smtp_dns_dane(const struct smtp_addr *a, unsigned port, int policy,
    struct tls_dane **dane_r, struct str *why);
/*
 * smtp_dns_resolve - the addresses to try for name: with mx, its MX
 * hosts in preference order (or the name itself when it has no MX);
 * without, the name's own AAAA and A records (an address literal is
 * itself). Appends to list; why (replaced) says what failed.
 */
enum smtp_dns_result smtp_dns_resolve(const char *name, bool mx,
    unsigned port, struct smtp_addrs *list, struct str *why);
/* smtp_addrs_free - free the list's contents */
void smtp_addrs_free(struct smtp_addrs *list);

/*
 * smtp_session - run the conversation on fd (owned: closed before
 * return, or parked in the connection cache under cache_key when that
 * is not NULL and the session ended cleanly) and set a status for
 * every recipient of d. true when nothing was committed and another
 * server of the same next hop may be tried (RFC 5321 5.1): no
 * connection-level success before the content (a failed greeting,
 * EHLO, STARTTLS or TLS policy, a lost connection).
 */
bool smtp_session(struct smtp_delivery *d, int fd, const char *cache_key);

/*
 * smtp_session_cached - deliver d over the session cached under
 * cache_key, after an RSET probe. false, with nothing recorded for any
 * recipient, when there is no such session or the probe failed (the
 * session is then closed; the caller connects afresh). true when the
 * session ran: every recipient has a status, *next_ok_r as the result
 * of smtp_session(), and the session is cached again if it ended
 * cleanly.
 */
bool smtp_session_cached(struct smtp_delivery *d, const char *cache_key,
    bool *next_ok_r);

/* ---------------------------------------------------------- smtp_cache.c */
/* An open, greeted session at a command boundary (owns s and tls). */
struct smtp_conn {
	struct stream *s;
	struct tls_session *tls;
	unsigned ext;			/* SMTP_EXT_* from EHLO/LHLO */
	uint64_t size_max;
	bool token_ext;			/* XPOSTERN-TOKEN advertised */
};

/*
 * smtp_cache_init - the idle time ($smtp_connection_cache_time; 0 =
 * off) and the TLS session cache time ($smtp_tls_session_cache_timeout;
 * 0 = no TLS sessions stored or asked for)
 */
void smtp_cache_init(unsigned ttl_seconds, unsigned tls_ttl_seconds);
/* smtp_cache_tls_enabled - are TLS sessions shared through scache(8)? */
bool smtp_cache_tls_enabled(void);
/*
 * smtp_cache_tls_get - the serialized TLS session scache(8) holds under
 * key, into session_r (replaced; the caller wipes it); false, session_r
 * empty, when there is none or scache cannot be asked
 */
bool smtp_cache_tls_get(const char *key, struct str *session_r);
/*
 * smtp_cache_tls_put - store a serialized TLS session (borrowed) under
 * key in scache(8), best effort (nothing when off, too long, or scache
 * cannot be reached)
 */
void smtp_cache_tls_put(const char *key, const struct str *session);
/* smtp_cache_enabled - is caching on? */
bool smtp_cache_enabled(void);
/*
 * smtp_cache_take - move the session cached under key into *conn_r
 * (the caller owns it then): one of this process's, else one that
 * scache(8) holds. false when there is none, or it expired (then
 * closed).
 */
bool smtp_cache_take(const char *key, struct smtp_conn *conn_r);
/*
 * smtp_cache_put - park conn under key (key is copied; conn's stream
 * and TLS session are taken over and conn is zeroed): a plaintext
 * session in scache(8) when it takes it (host, the server's name, goes
 * with it), else in this process. Replaces an older
 * session of the same key; with every slot in use the one that would
 * expire first is closed. With caching off, conn is closed.
 */
void smtp_cache_put(const char *key, const char *host,
    struct smtp_conn *conn);
/*
 * smtp_cache_expire - close the sessions idle longer than the cache
 * time (QUIT, unanswered); the ms until the next one expires, or 0 when
 * none is left. The server skeleton's idle hook.
 */
unsigned smtp_cache_expire(void);
/*
 * smtp_cache_close_all - close every cached session (before exit, and
 * before a new connection: see smtp_cache.c)
 */
void smtp_cache_close_all(void);
/*
 * smtp_conn_probe - is conn usable? Not when the server has sent
 * anything or closed it while idle; else RSET, and a 250 within timeout
 * seconds. Sets no status; the caller closes a conn that fails.
 */
bool smtp_conn_probe(struct smtp_conn *conn, unsigned timeout);
/* smtp_conn_close - QUIT (when quit, not waited for), free, zero conn */
void smtp_conn_close(struct smtp_conn *conn, bool quit);

/* ---------------------------------------------------------- smtp_sasl.c */
#define SMTP_SASL_CHALLENGE_MAX	12288	/* base64 octets, RFC 4954 4 */

struct smtp_sasl;

/*
 * smtp_sasl_init - pre_jail, as root: with $smtp_sasl_auth_enable, read
 * the security options and mechanism filter, open
 * $smtp_sasl_password_maps and load libsasl2's client plugins. 0 (also
 * when SASL is off), or -1 with why (the caller ends the process).
 */
int smtp_sasl_init(struct str *why);
/* smtp_sasl_enabled - smtp_sasl_init turned SASL on */
bool smtp_sasl_enabled(void);
/*
 * smtp_sasl_deinit - close the tables and turn SASL off (before exit);
 * libsasl2 stays loaded, so smtp_sasl_init may run again
 */
void smtp_sasl_deinit(void);

/*
 * smtp_sasl_passwd_lookup - the first of keys[0..nkeys) (NULL or empty
 * ones skipped) that $smtp_sasl_password_maps know: 1 with
 * "user:password" in value_r (the caller wipes it), 0 when none, -1
 * with why (appended) on a table error or a value without "user:".
 */
int smtp_sasl_passwd_lookup(const struct log_ctx *log,
    const char *const *keys, size_t nkeys, struct str *value_r,
    struct str *why);

/*
 * smtp_sasl_filter_mechs - the names in offered (separated by spaces)
 * that are in filter[0..nfilter) (any case), or all when nfilter is 0,
 * into out (replaced), separated by spaces, in the server's order
 */
void smtp_sasl_filter_mechs(const char *offered, const char *const *filter,
    size_t nfilter, struct str *out);

/*
 * smtp_sasl_start - a client session for host, among the mechanisms the
 * server offered, with cred "user:password" (credlen octets, copied;
 * the copy is wiped at free). tls selects the security options. out
 * (replaced) gets the base64 initial response; *has_ir_r says whether
 * there is one (out may be empty: send "="); *mech_r the mechanism
 * (valid while the session lives). NULL with why (appended) when no
 * mechanism is acceptable or libsasl2 fails. log is borrowed.
 */
struct smtp_sasl *smtp_sasl_start(const struct log_ctx *log,
    const char *host, const char *offered, bool tls, const char *cred,
    size_t credlen, struct str *out, bool *has_ir_r, const char **mech_r,
    struct str *why);
/*
 * smtp_sasl_step - the answer (base64, into out, replaced) to the
 * server's base64 challenge (len octets); -1 with why (appended)
 */
int smtp_sasl_step(struct smtp_sasl *sa, const char *challenge, size_t len,
    struct str *out, struct str *why);
/* smtp_sasl_free - end the session, wipe the secret; accepts NULL */
void smtp_sasl_free(struct smtp_sasl **sap);

/*
 * smtp_8bit_downgrade - append msg (CRLF, BODY=8BITMIME) converted to
 * 7-bit: quoted-printable for each leaf part with 8-bit octets
 * (smtp_8bit.c). Never fails.
 */
void smtp_8bit_downgrade(const char *msg, size_t len, struct str *out);

#endif
