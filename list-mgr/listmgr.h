/* SPDX-License-Identifier: MIT */
/*
 * listmgr - private interfaces of list-mgr (list-mgr sources only)
 *
 * listmgr_session.c speaks LMTP and hands each complete message, once
 * per accepted recipient, to listmgr_deliver() (listmgr_post.c), which
 * answers with the per-recipient reply. Posts are checked and sent out
 * by listmgr_post.c, -request/-join/-leave/-confirm mail and moderation
 * replies by listmgr_request.c, -bounces mail by listmgr_bounce.c,
 * digests and the archive by listmgr_digest.c. Every outgoing message
 * goes through listmgr_inject() (lib/cleanup_client).
 */
#ifndef POSTERN_LISTMGR_H
#define POSTERN_LISTMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <resolv.h>
#include <time.h>

#include "list_store.h"
#include "log.h"
#include "str.h"

struct listmgr_settings {
	const char *myhostname;
	uint64_t size_limit;
	unsigned timeout;
	const char *cleanup_socket;
	unsigned expansion_processes;
	bool dmarc_lookup;
	bool dns_ok;		/* listmgr_res is set up */
	bool http;		/* list_role = http */
	unsigned http_timeout;
	const char *news_domain;	/* $list_news_gateway_domain */
};
extern struct listmgr_settings listmgr_settings;
/* the resolver for DMARC lookups (lib/dns), set up before the jail */
extern struct __res_state listmgr_res;

/* One message as it came by LMTP, for one recipient. */
struct listmgr_msg {
	const char *data;	/* CRLF, not dot-stuffed */
	size_t len;
	size_t hdr_len;		/* header block incl. the empty line */
	const char *sender;	/* envelope sender, canonical ("" = null) */
	const char *token;	/* the recipient's XTOKEN, NULL if none */
	struct log_ctx *log;
};

/* listmgr_session.c */
void listmgr_session_run(int fd, const char *peer);

/*
 * listmgr_deliver - handle msg for the list address local@domain; the
 * reply ("250 2.0.0 ...", "550 5.1.1 ...", "451 4.3.0 ...") into reply.
 * Returns the reply code.
 */
int listmgr_deliver(const struct listmgr_msg *msg, const char *local,
    const char *domain, struct str *reply);
/* listmgr_rcpt_ok - whether local@domain names an existing list role */
bool listmgr_rcpt_ok(const char *local, const char *domain);

/* listmgr_post.c */
/* listmgr_post - a post to l: policy, then distribute/hold; reply as above */
int listmgr_post(struct list *l, const struct listmgr_msg *msg,
    bool approved, struct str *reply);
/* listmgr_distribute - send an accepted post to the members; 0 or -1 */
int listmgr_distribute(struct list *l, const struct listmgr_msg *msg,
    const char *author);
/* listmgr_is_member - 1 member (any flags), 0 not, -1 error */
int listmgr_is_member(const struct list *l, const char *addr);
/* listmgr_author - the From: address (lower-cased domain) into out; false if none */
bool listmgr_author(const char *data, size_t hdr_len, struct str *out);
/* listmgr_header_value - unfolded value of the first field name, false if none */
bool listmgr_header_value(const char *data, size_t hdr_len, const char *name,
    struct str *out);

/* listmgr_inject.c */
/*
 * listmgr_inject - queue data (CRLF message) from sender to rcpts through
 * cleanup; 0 when durably queued, -1 (logged) if not.
 */
int listmgr_inject(const char *sender, const char *const *rcpts, size_t n,
    const char *data, size_t len, struct log_ctx *log);
/*
 * listmgr_notice - compose and queue a short text message from "from"
 * (header and envelope: envelope sender is the list's -bounces address)
 * to "to"; extra_hdr (CRLF-terminated lines) may be NULL.
 */
int listmgr_notice(const struct list *l, const char *from, const char *to,
    const char *subject, const char *extra_hdr, const char *body,
    struct log_ctx *log);

/* listmgr_request.c */
int listmgr_request(struct list *l, const struct listmgr_msg *msg,
    const char *role, const char *extra, struct str *reply);
/* listmgr_hold - keep msg in held/ and tell the moderators; 0 or -1 */
int listmgr_hold(struct list *l, const struct listmgr_msg *msg,
    const char *reason);

/* listmgr_bounce.c */
int listmgr_bounce(struct list *l, const struct listmgr_msg *msg,
    const char *verp, struct str *reply);

/* listmgr_digest.c */
/* listmgr_archive_add - append the post to archive/YYYY-MM.mbox */
int listmgr_archive_add(const struct list *l, const char *sender,
    const char *data, size_t len);
/* listmgr_digest_add - append to digest.mbox, send when due */
int listmgr_digest_add(struct list *l, const char *data, size_t len);
/* listmgr_digest_check - send the digest if due (force: now); 0 or -1 */
int listmgr_digest_check(struct list *l, bool force);
/* listmgr_periodic - wakeup: digests due, bouncing members to remove */
void listmgr_periodic(void);

/* listmgr_request.c */
/*
 * listmgr_member_change - op "subscribe" or "unsubscribe" addr now
 * (no confirmation), tell addr by mail; a line of result text into
 * out. Subscribing a member disabled by bounces re-enables it with a
 * clean bounce score. 0, or -1 (database trouble) with out saying so.
 */
int listmgr_member_change(struct list *l, const char *op, const char *addr,
    struct str *out, struct log_ctx *log);

/* listmgr_http.c: the RFC 8058 one-click unsubscribe endpoint */
/*
 * listmgr_http_setup - in pre_jail (root: key files), the http role:
 * with $list_http_tls_security_level = encrypt, the https context from
 * cfg (lib/tls); none: plain HTTP. Ends the process (log_fatal) on an
 * unknown level, no tls_cert_file or a context that cannot be made:
 * an https port is never served in plaintext.
 * listmgr_http_deinit - free the context (pre_exit).
 */
struct config;
void listmgr_http_setup(const struct config *cfg);
void listmgr_http_deinit(void);
/* listmgr_http_run - one connection (handshake first under TLS), then close */
void listmgr_http_run(int fd, const char *peer);
/*
 * listmgr_unsubscribe_url - the one-click URL for member on l into out
 * (replaced): http_unsubscribe_url plus "?list=&member=&token=";
 * false (logged) if the list has no such URL or no usable secret.
 */
bool listmgr_unsubscribe_url(const struct list *l, const char *member,
    struct str *out, struct log_ctx *log);

/* listmgr_httpreq.c: request parsing (pure; fuzzed) */
#define LISTMGR_HTTP_LINE_MAX	4096	/* request line, each field line */
#define LISTMGR_HTTP_HEAD_MAX	16384	/* the whole head */
#define LISTMGR_HTTP_FIELDS_MAX	64
#define LISTMGR_HTTP_BODY_MAX	1024

struct listmgr_http_req {
	struct str *method;	/* owned: listmgr_http_req_free */
	struct str *path;	/* the target before '?' (not decoded) */
	struct str *query;	/* after '?' (not decoded), "" if none */
	struct str *content_type;
	unsigned long content_length;
	bool http11, have_host, have_length, have_te;
};
void listmgr_http_req_init(struct listmgr_http_req *req);
void listmgr_http_req_free(struct listmgr_http_req *req);
/*
 * listmgr_http_parse_head - parse a complete request head (request line
 * through the empty line, CRLF) into req (initialised); 0, or the HTTP
 * status to answer (400, 413, 431, 501, 505).
 */
int listmgr_http_parse_head(const char *head, size_t len,
    struct listmgr_http_req *req);
/*
 * listmgr_http_param - the decoded value of name in a query string or
 * form body s[0..len) into out (replaced): 1 found once, 0 absent, -1
 * malformed or given twice (out empty).
 */
int listmgr_http_param(const char *s, size_t len, const char *name,
    struct str *out);

/* listmgr_progress.c: per-post progress records (exactly-once) */
struct listmgr_progress;
/*
 * listmgr_progress_open - open and lock the post's record (keyed by
 * msg->token, else its Message-ID). NULL with *busy_r false: the post
 * has no key, distribute without a record; NULL with *busy_r true:
 * another process holds it or it cannot be opened (logged): answer 451.
 */
struct listmgr_progress *listmgr_progress_open(const struct list *l,
    const struct listmgr_msg *msg, bool *busy_r);
/* listmgr_progress_close - unlock and free; NULL allowed */
void listmgr_progress_close(struct listmgr_progress **pp);
/* listmgr_progress_finished - the record says the whole post is done */
bool listmgr_progress_finished(const struct listmgr_progress *p);
/*
 * listmgr_progress_pending - 1 member still needs its copy, 0 it has one
 * (queued earlier), -1 not known now (answer 451). p may be NULL (1).
 */
int listmgr_progress_pending(struct listmgr_progress *p, const char *member,
    struct log_ctx *log);
/* listmgr_progress_intent - durably note "member's copy is qid" before the commit */
int listmgr_progress_intent(struct listmgr_progress *p, const char *member,
    const char *qid);
/* listmgr_progress_failed - note that cleanup refused member's copy after the intent */
int listmgr_progress_failed(struct listmgr_progress *p, const char *member);
/* listmgr_progress_done - note that member's copy is queued */
int listmgr_progress_done(struct listmgr_progress *p, const char *member);
/* listmgr_progress_finish - durably note the whole post done */
int listmgr_progress_finish(struct listmgr_progress *p);
/* listmgr_progress_sync - fdatasync the record */
int listmgr_progress_sync(struct listmgr_progress *p);
/* listmgr_progress_expire - remove l's records older than the lifetime */
void listmgr_progress_expire(const struct list *l, time_t now);

/*
 * listmgr_inject_copy - as listmgr_inject for one recipient, with the
 * intent recorded in p (may be NULL) before the end of the message goes
 * to cleanup and "done" after cleanup's OK.
 */
int listmgr_inject_copy(const char *sender, const char *rcpt,
    const char *data, size_t len, struct listmgr_progress *p,
    struct log_ctx *log);

#endif
