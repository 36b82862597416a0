/* SPDX-License-Identifier: MIT */
/*
 * cleanup.h - private interfaces of the cleanup daemon
 *
 * One struct cleanup_state per connection (= per message). Every step
 * that fails sets the state's verdict once (cleanup_fail); later steps
 * see st->status != CLEANUP_OK and only drain input, so the client gets
 * the first reason after it sent the end of the message.
 */
#ifndef POSTERN_CLEANUP_H
#define POSTERN_CLEANUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup_client.h"
#include "cleanup_proto.h"
#include "log.h"
#include "map.h"
#include "queue_file.h"
#include "str.h"

/* Settings read once per process (cleanup.c). */
struct cleanup_settings {
	const char *myhostname;
	const char *myorigin;
	const char *const *mydestination;
	size_t nmydestination;
	uint64_t header_size_limit;
	uint64_t header_count_limit;
	uint64_t hopcount_limit;
	uint64_t message_size_limit;	/* 0 = none */
	struct map **sender_maps;	/* sender_canonical_maps, then canonical_maps */
	size_t nsender_maps;
	struct map **rcpt_maps;		/* recipient_canonical_maps, then canonical_maps */
	size_t nrcpt_maps;
};
extern struct cleanup_settings cleanup_settings;

struct cleanup_rcpt_set;

struct cleanup_state {
	struct log_ctx ctx;
	char id[QUEUE_ID_SIZE];
	struct queue_file_writer *w;
	unsigned flags;			/* CLEANUP_FLAG_*, after policy */
	bool trusted;			/* peer is root, $mail_owner or us */
	uid_t uid;
	char *login;			/* untrusted peers: their login name */

	struct cleanup_proto_envelope *penv;
	struct str *sender;		/* the final envelope sender */
	const char *fullname;		/* "fullname" attribute, or NULL */
	size_t nrcpt;
	struct cleanup_rcpt_set *rcpts;	/* duplicate filter */

	/* content */
	bool in_header;
	struct str *header;		/* the header block while it arrives */
	size_t header_scan;		/* header: lines before this are checked */
	uint64_t size;			/* content octets received */
	uint64_t written;		/* content octets written */
	struct str *message_id;		/* for the log line */

	enum cleanup_status status;	/* verdict so far */
	struct str *reason;		/* "5.3.4 text" when status != OK */
};

/* cleanup_fail - record the first failure; "4.3.0 ..." / "5.x.y ..." */
void cleanup_fail(struct cleanup_state *st, enum cleanup_status status,
    const char *fmt, ...) PRINTF_LIKE(3, 4);

/* cleanup_addr.c */

/*
 * cleanup_addr_rewrite - canonicalize the address in addr (canonical
 * form in, canonical form out): qualify a domainless address with
 * @$myorigin, then apply the maps. Returns 1 if it changed, 0 if not,
 * -1 on a map error (*error_r). rcpt_syntax: the address is a recipient
 * (Postmaster allowed), else a sender (null allowed, never rewritten).
 */
int cleanup_addr_rewrite(struct str *addr, struct map **maps, size_t nmaps,
    bool recipient, const char **error_r);

/* cleanup_addr_local - is domain one of $mydestination? */
bool cleanup_addr_local(const char *domain);

/* cleanup_rcpt_add - add an envelope recipient (rewritten, deduplicated) */
void cleanup_rcpt_add(struct cleanup_state *st, const struct queue_rcpt *rcpt);

void cleanup_rcpt_set_free(struct cleanup_rcpt_set **setp);

/* cleanup_message.c */

/* cleanup_content - take the next content octets */
void cleanup_content(struct cleanup_state *st, const char *p, size_t n);
/* cleanup_content_end - the end of the message: flush what is pending */
void cleanup_content_end(struct cleanup_state *st);

/*
 * cleanup_header_process - the processed header block for hdr[0..n) (the
 * fields without the empty line that ended them) appended to out,
 * including the empty line after it. Recipients found with
 * CLEANUP_FLAG_EXTRACT_RCPTS are added to st. On a limit the verdict is
 * set and out is left unspecified. Exposed for the unit test.
 */
void cleanup_header_process(struct cleanup_state *st, const char *hdr,
    size_t n, struct str *out);

/*
 * cleanup_header_end - scan the header block at p[0..n) from *scan_r
 * (where the previous call stopped): 1 when its end is known, with
 * *hdr_len_r the octets of header fields and *body_r where the body
 * starts (after the empty line, or at the first line that is not a
 * header field, in which case no empty line was there); 0 if more input
 * is needed (at_end: treat the input as complete).
 */
int cleanup_header_end(const char *p, size_t n, bool at_end, size_t *scan_r,
    size_t *hdr_len_r, size_t *body_r);

#endif
