/* SPDX-License-Identifier: MIT */
/*
 * newsgw - private interfaces of news-gw (news-gw sources only)
 *
 * news-gw.c loads the settings and picks the role of each connection;
 * newsgw_lmtp.c is the LMTP server (mail to news), newsgw_feed.c the
 * NNTP feed server (news to mail), newsgw_pull.c the puller, all three
 * on newsgw_article.c (the conversions, pure functions), newsgw_client.c
 * (NNTP client: POST, IHAVE, and the puller's reading commands) and
 * newsgw_history.c (the Message-ID history and high-water marks).
 */
#ifndef POSTERN_NEWSGW_H
#define POSTERN_NEWSGW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "log.h"
#include "str.h"

struct map;
struct nntp_cmd;
struct stream;
struct tls_context;

#define NEWSGW_MARKER "X-Postern-Gateway"

struct newsgw_settings {
	const char *role;
	const char *myhostname;
	const char *path_identity;
	const char *server;
	const char *post_method;
	const char *username;
	const char *password;
	bool starttls;
	const char *tls_ca_file;
	struct tls_context *tls_ctx;	/* client context when starttls */
	struct tls_context *feed_tls_ctx;	/* feed server context, or NULL */
	enum newsgw_feed_tls {
		NEWSGW_FEED_TLS_NONE,	/* no STARTTLS */
		NEWSGW_FEED_TLS_MAY,	/* STARTTLS offered (with a certificate) */
		NEWSGW_FEED_TLS_ENCRYPT,	/* feeding only inside TLS */
	} feed_tls_level;
	bool feed_wrappermode;	/* implicit TLS from the first byte */
	const char *const *peers;
	size_t npeers;
	struct map **peer_maps;	/* account -> addresses it may feed from */
	size_t npeer_maps;
	bool feed_tls_auth_only;	/* AUTHINFO USER/PLAIN only inside TLS */
	const char *history;
	unsigned history_lifetime;
	uint64_t size_limit;
	unsigned timeout;
	const char *cleanup_socket;
	const char *envelope_sender;
	const char *const *pull_groups;
	size_t npull_groups;
	const char *pull_server;
	unsigned pull_backlog;
	struct map **newsgroups_maps;
	size_t nnewsgroups_maps;
	struct map **news_to_mail_maps;
	size_t nnews_to_mail_maps;
};
extern struct newsgw_settings newsgw_settings;

/* news-gw.c */
/*
 * newsgw_maps_lookup - the first value for key in maps into value; 1
 * found, 0 not, -1 error (logged).
 */
int newsgw_maps_lookup(struct map **maps, size_t n, const char *key,
    struct str *value, struct log_ctx *log);

/* newsgw_article.c: the conversions (pure: no I/O, no settings) */
enum newsgw_conv {
	NEWSGW_CONV_OK,
	NEWSGW_CONV_LOOP,	/* our own gateway marker: drop silently */
	NEWSGW_CONV_REJECT,	/* malformed: a permanent refusal, *why */
};

struct newsgw_m2n {
	const char *groups;	/* "a.b,c.d" */
	const char *identity;	/* Path entry and marker */
	const char *envelope_sender;	/* From: when the mail has none */
	const char *qid;	/* for a made Message-ID */
	time_t now;
	bool for_ihave;		/* Path: identity!not-for-mail */
};
/*
 * newsgw_mail_to_article - the article for mail msg/len (CRLF) into
 * article (cleared), its Message-ID into msgid; *why gets a static
 * reason on REJECT.
 */
enum newsgw_conv newsgw_mail_to_article(const char *msg, size_t len,
    const struct newsgw_m2n *opt, struct str *article, struct str *msgid,
    const char **why);

struct newsgw_n2m {
	const char *identity;
	const char *list_group;	/* the gatewayed group for List-Id */
	const char *peer;	/* for Received: */
	time_t now;
};
/*
 * newsgw_article_check - whether an article (CRLF, unstuffed) may be
 * gatewayed at all: required headers (Message-ID valid, Newsgroups,
 * From, Path), header line limits, our own marker or Path entry
 * (LOOP). msgid gets the Message-ID and groups the Newsgroups value
 * (unfolded); either may be NULL.
 */
enum newsgw_conv newsgw_article_check(const char *art, size_t len,
    const char *identity, struct str *msgid, struct str *groups,
    const char **why);
/* newsgw_article_to_mail - the mail for a checked article into mail (cleared) */
void newsgw_article_to_mail(const char *art, size_t len,
    const struct newsgw_n2m *opt, struct str *mail);

/* newsgw_history.c: 0 / 1 results, -1 on error (logged) */
/* newsgw_history_seen - 1 if msgid is remembered (its direction 'm' or 'n' into *dir_r) */
int newsgw_history_seen(const char *msgid, char *dir_r, struct log_ctx *log);
/* newsgw_history_add - remember msgid as gatewayed in direction dir */
int newsgw_history_add(const char *msgid, char dir, struct log_ctx *log);
/* newsgw_history_add_at - the same, as gatewayed at when (for tests) */
int newsgw_history_add_at(const char *msgid, char dir, time_t when,
    struct log_ctx *log);
/* newsgw_history_hwm - the high-water mark of group (0 if none) */
int newsgw_history_hwm(const char *group, unsigned long *hwm_r,
    bool *found_r, struct log_ctx *log);
int newsgw_history_set_hwm(const char *group, unsigned long hwm,
    struct log_ctx *log);
/* newsgw_history_expire - forget entries older than the lifetime */
int newsgw_history_expire(struct log_ctx *log);

/* newsgw_client.c */
struct newsgw_nntp;
enum newsgw_post {
	NEWSGW_POST_OK,
	NEWSGW_POST_DUP,	/* the server has it already: delivered */
	NEWSGW_POST_TEMP,	/* try again later */
	NEWSGW_POST_REJECT,	/* refused for good */
};
/*
 * newsgw_nntp_open - connect to host:port, read the greeting,
 * STARTTLS and AUTHINFO as configured, MODE READER when reader; NULL
 * with the reason in why (a connection failure is temporary).
 */
struct newsgw_nntp *newsgw_nntp_open(const char *server, bool reader,
    struct str *why, struct log_ctx *log);
void newsgw_nntp_close(struct newsgw_nntp **np);
/*
 * newsgw_nntp_post - POST or IHAVE (settings) the article; the server's
 * reply line into reply.
 */
enum newsgw_post newsgw_nntp_post(struct newsgw_nntp *n, const char *article,
    size_t len, const char *msgid, bool ihave, struct str *reply);
/* newsgw_nntp_cmd - send a command line, return the reply code (-1 broken); reply line into reply */
int newsgw_nntp_cmd(struct newsgw_nntp *n, const char *cmd, struct str *reply);
/* newsgw_nntp_block - read a multi-line block into data (bounded); 0 or -1 */
int newsgw_nntp_block(struct newsgw_nntp *n, struct str *data, bool *too_big_r);

/* newsgw_feed.c */
/*
 * newsgw_peer_spec_ok - whether spec is an address or a network
 * ("192.0.2.0/24", "2001:db8::/32", "::1/128") that newsgw_peer_match
 * understands.
 */
bool newsgw_peer_spec_ok(const char *spec);
/*
 * newsgw_peer_match - whether the connecting address addr (numeric; an
 * IPv4-mapped IPv6 address counts as its IPv4 address) is one of the n
 * specs (addresses or networks; malformed ones match nothing).
 */
bool newsgw_peer_match(const char *const *specs, size_t n, const char *addr);
void newsgw_feed_run(int fd, const char *peer_addr, const char *peer);
/*
 * newsgw_receive - gateway one received article to mail: history,
 * loops, the map, injection. Returns 0 accepted (or nothing to do),
 * 1 duplicate/loop (refuse as "not wanted"), 2 rejected (*why), -1
 * temporary failure.
 */
int newsgw_receive(const char *art, size_t len, const char *peer,
    const char **why, struct log_ctx *log);

/*
 * newsgw_feed_auth.c: AUTHINFO USER/PASS and SASL on the feed server
 * (RFC 4643), for peers in $news_gw_peer_maps. One object per feed
 * connection; replies are buffered on the caller's stream, which the
 * caller flushes.
 */
struct newsgw_auth;
/* newsgw_auth_enabled - AUTHINFO is offered at all ($news_gw_peer_maps set) */
bool newsgw_auth_enabled(void);
/*
 * newsgw_auth_new - the state of one connection; peer_addr (numeric),
 * peer ("[addr]:port", for logs) and log are borrowed and must outlive
 * it. Never NULL.
 */
struct newsgw_auth *newsgw_auth_new(const char *peer_addr, const char *peer,
    struct log_ctx *log);
/* newsgw_auth_free - accepts NULL; NULLs *ap */
void newsgw_auth_free(struct newsgw_auth **ap);
/* newsgw_auth_tls_started - TLS is up: passwords may now be allowed */
void newsgw_auth_tls_started(struct newsgw_auth *a);
/*
 * newsgw_auth_capabilities - append the AUTHINFO and SASL capability
 * lines for the current state (none once authenticated) to out
 */
void newsgw_auth_capabilities(const struct newsgw_auth *a, struct str *out);
/*
 * newsgw_auth_command - run an AUTHINFO command (cmd->verb AUTHINFO,
 * parsed by nntp_cmd_parse), with a SASL exchange read from s; false
 * when the connection broke.
 */
bool newsgw_auth_command(struct newsgw_auth *a, struct stream *s,
    const struct nntp_cmd *cmd);
/*
 * newsgw_auth_user - the authenticated and authorised peer account
 * (valid until newsgw_auth_free), or NULL
 */
const char *newsgw_auth_user(const struct newsgw_auth *a);
/* newsgw_auth_failures - failed AUTHINFO attempts so far */
unsigned newsgw_auth_failures(const struct newsgw_auth *a);

/* newsgw_lmtp.c */
void newsgw_lmtp_run(int fd, const char *peer);

/* newsgw_pull.c */
void newsgw_pull(void);

#endif
