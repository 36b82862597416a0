/* SPDX-License-Identifier: MIT */
/*
 * deliver_proto - the protocol between qmgr and its delivery agents
 *
 * qmgr connects to a delivery agent's UNIX socket
 * ($queue_directory/private/<transport>, e.g. private/lmtp, private/smtp),
 * sends ONE delivery request, reads one response and closes. The agent
 * opens the queue file read-only itself (the request names it) and streams
 * the content to the next hop; qmgr alone records the outcome in the queue
 * file (queue_file_update) before it acknowledges anything.
 *
 * The format is typed and length-prefixed, never re-parsed text (Postfix
 * attr_print/attr_scan in strict mode, OpenSMTPD m_get_*): each record is
 * one type octet, a big-endian u32 payload length, and the payload. A
 * receiver checks the length against the type's maximum BEFORE it
 * allocates or reads the payload, and every payload decoder requires
 * exact consumption.
 *
 *	qmgr -> agent	'Q' request header (exactly once, first)
 *			'R' recipient (1 .. DELIVER_PROTO_RCPT_MAX)
 *			'.' end (empty)
 *	agent -> qmgr	'H' relay (optional, at most once, first):
 *			    the next hop as it is logged ("host[addr]:port")
 *			'S' status of one recipient (any number; a
 *			    recipient of the request without one is deferred
 *			    by qmgr as "no status from the delivery agent")
 *			'.' end (empty)
 *
 * Payloads (integers big-endian; a string is u32 length, that many
 * octets without NUL, then one NUL octet; opt is u8 0, or u8 1 and a
 * string):
 *	'Q'  string queue_id (queue_id_ok), u8 queue (enum queue_name),
 *	     string nexthop ("unix:/path", "inet:host:port"), string sender
 *	     (canonical; "" = null sender), u32 flags (DELIVER_REQ_F_*)
 *	'R'  u32 index (in the queue file), string address (where to
 *	     deliver: the recipient after alias rewriting), opt orcpt_type,
 *	     opt orcpt, u32 notify (SMTP_NOTIFY_*), string token
 *	     (queue_file_token: "QUEUEID/index"; "" = none)
 *	'H'  string relay
 *	'S'  u32 index, u8 status (enum deliver_status), u32 flags
 *	     (DELIVER_RES_F_*), string dsn ("2.0.0", "4.4.1", "5.1.1"),
 *	     string text (the reply or reason, for logs and DSNs), and
 *	     optionally (an agent may leave it off entirely; a decoder
 *	     takes both forms) opt remote_mta: the DNS name of the server
 *	     whose reply text is, for the DSN's Remote-MTA field
 *
 * Strings are at most DELIVER_PROTO_TEXT_MAX octets; a whole message at
 * most DELIVER_PROTO_MSG_MAX. Nothing here ends the process except on
 * memory exhaustion; bad input is -1 with a static-text *error_r.
 */
#ifndef POSTERN_DELIVER_PROTO_H
#define POSTERN_DELIVER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_file.h"
#include "str.h"

struct stream;

#define DELIVER_PROTO_HDR_SIZE	5		/* type + u32 length */
#define DELIVER_PROTO_TEXT_MAX	4096		/* any string */
#define DELIVER_PROTO_RCPT_MAX	1000		/* recipients per request */
#define DELIVER_PROTO_REC_MAX	(5 * (DELIVER_PROTO_TEXT_MAX + 6) + 16)
#define DELIVER_PROTO_MSG_MAX	(DELIVER_PROTO_RCPT_MAX * 2 * DELIVER_PROTO_REC_MAX)

enum deliver_rec {
	DELIVER_REC_REQUEST = 'Q',
	DELIVER_REC_RCPT = 'R',
	DELIVER_REC_RELAY = 'H',
	DELIVER_REC_STATUS = 'S',
	DELIVER_REC_END = '.',
};

/* Request flags (none defined yet; reserved for TLS policy etc., issue 9). */
#define DELIVER_REQ_F_ALL	0x0

enum deliver_status {
	DELIVER_STATUS_DELIVERED = 0,	/* accepted by the next hop (2xx) */
	DELIVER_STATUS_DEFERRED,	/* temporary failure (4xx, network) */
	DELIVER_STATUS_BOUNCED,		/* permanent failure (5xx) */
	DELIVER_STATUS_COUNT
};

/* Result flags. */
#define DELIVER_RES_F_DSN_PASSED 0x01	/* next hop took NOTIFY (DSN extension):
					 * it sends any success DSN itself */
#define DELIVER_RES_F_REMOTE	0x02	/* text is the next hop's reply */
#define DELIVER_RES_F_ALL	0x03

/* deliver_status_str - "delivered", "deferred", "bounced" */
const char *deliver_status_str(enum deliver_status s);

struct deliver_rcpt {
	uint32_t index;
	const char *address;
	const char *orcpt_type;		/* or NULL */
	const char *orcpt;		/* or NULL (both or neither) */
	unsigned notify;
	const char *token;		/* "" = none */
};

/*
 * A request. For the encoder the strings are borrowed for the call; from
 * the decoder they point into storage owned by the request and live
 * until deliver_request_free().
 */
struct deliver_request {
	const char *queue_id;
	enum queue_name queue;
	const char *nexthop;
	const char *sender;
	unsigned flags;
	struct deliver_rcpt *rcpts;
	size_t nrcpts;
	char *storage;			/* private (decoder) */
};

struct deliver_result {
	uint32_t index;
	enum deliver_status status;
	unsigned flags;			/* DELIVER_RES_F_* */
	const char *dsn;
	const char *text;
	const char *remote_mta;		/* server host name, or NULL */
};

/* A response; same ownership rules as the request. */
struct deliver_response {
	const char *relay;		/* "" when absent */
	struct deliver_result *results;
	size_t nresults;
	char *storage;			/* private (decoder) */
};

/*
 * deliver_request_encode / deliver_response_encode - append the whole
 * message (all records, ending with '.') to out. -1 with *error_r (and
 * out unchanged) if a field is too long, holds a NUL or is out of range
 * (bad queue ID, no recipients, too many, malformed dsn).
 */
int deliver_request_encode(const struct deliver_request *req, struct str *out,
    const char **error_r);
int deliver_response_encode(const struct deliver_response *res,
    struct str *out, const char **error_r);

/*
 * deliver_proto_split - find one whole record at the start of p[0..n): 1
 * with its type, payload (pointing into p), payload length and the octets
 * it takes; 0 if more input is needed; -1 on an unknown type or a length
 * over the type's maximum. For readers that get their input in pieces.
 */
int deliver_proto_split(const void *p, size_t n, int *type_r,
    const void **payload_r, size_t *len_r, size_t *used_r,
    const char **error_r);

/*
 * deliver_proto_complete - is p[0..n) a whole message (its last record is
 * '.')? 1 yes (*used_r = its length), 0 need more, -1 malformed.
 */
int deliver_proto_complete(const void *p, size_t n, size_t *used_r,
    const char **error_r);

/*
 * deliver_request_decode / deliver_response_decode - decode a whole
 * message p[0..n) (exactly: nothing may follow the '.') into a new object
 * the caller frees. Checks record order, every length, enum ranges, NUL
 * terminators, the queue ID, recipient count and dsn syntax. NULL with
 * *error_r on bad input.
 */
struct deliver_request *deliver_request_decode(const void *p, size_t n,
    const char **error_r);
struct deliver_response *deliver_response_decode(const void *p, size_t n,
    const char **error_r);
void deliver_request_free(struct deliver_request **reqp);
void deliver_response_free(struct deliver_response **resp);

/*
 * deliver_proto_read - read one whole message from s into buf (cleared
 * first), record by record, never more than DELIVER_PROTO_MSG_MAX. 0 on
 * success; -1 with *error_r on EOF, timeout, I/O error or a malformed
 * record header. For the agent (blocking, with the stream's deadline).
 */
int deliver_proto_read(struct stream *s, struct str *buf,
    const char **error_r);

/* deliver_dsn_ok - "C.SSS.DDD" with C in 2,4,5 (RFC 3463) */
bool deliver_dsn_ok(const char *dsn);

#endif
