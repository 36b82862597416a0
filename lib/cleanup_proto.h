/* SPDX-License-Identifier: MIT */
/*
 * cleanup_proto - the private wire format between cleanup_client and cleanup
 *
 * Only lib/cleanup_client.c and cleanup/ use this; every other program
 * goes through cleanup_client.h. The format is typed and length-prefixed,
 * never re-parsed text (Postfix rec_put/rec_get, OpenSMTPD m_get_*): each
 * record is one type octet, a big-endian u32 payload length, and the
 * payload. A receiver checks the length against the type's maximum
 * BEFORE it allocates or reads the payload, and a payload decoder
 * requires exact consumption.
 *
 * Conversation (one message per connection):
 *
 *	cleanup -> client  'I' queue ID (QUEUE_ID_LEN octets), at once
 *	                   (or 'Z' when the connection is refused)
 *	client -> cleanup  'F' u32 CLEANUP_FLAG_*
 *	                   'E' envelope (exactly once)
 *	                   'r' recipient (any number)
 *	                   'D' content chunk (any number, each <= 64 KiB)
 *	                   '.' end of message (empty)
 *	cleanup -> client  'Z' u32 enum cleanup_status, string reason
 *	                   ("4.3.0 text"; empty for CLEANUP_OK)
 *
 * 'r' and 'D' may interleave. A client that goes away before '.' aborts
 * the message; cleanup removes its file. Cleanup answers 'Z' only after
 * '.', even when it rejects the message earlier (it then discards the
 * rest), so a client never writes into a closed socket in normal
 * operation.
 *
 * Payload encodings (all integers big-endian):
 *	string   u32 length, that many octets (no NUL among them), then one
 *	         NUL octet (so a decoder can hand out C strings pointing
 *	         into its copy of the payload, and checks the NUL)
 *	opt      u8 0 (absent) or u8 1 followed by a string
 *	'E'      u64 arrival (microseconds), string sender, opt envid,
 *	         u8 ret, u8 body, u8 smtputf8, opt client_name, opt
 *	         client_addr, opt helo, opt protocol, opt auth_user,
 *	         u32 nattrs, nattrs x (string name, string value)
 *	'r'      string address, opt orcpt_type, opt orcpt, u32 notify,
 *	         opt original
 *	'Z'      u32 status, string reason
 * Text fields are at most QUEUE_FILE_TEXT_MAX octets, attributes at most
 * QUEUE_FILE_ATTR_MAX; the whole 'E' at most CLEANUP_PROTO_ENVELOPE_MAX.
 *
 * Nothing here ends the process except on memory exhaustion; bad input
 * is a -1 return with a static *error_r.
 */
#ifndef POSTERN_CLEANUP_PROTO_H
#define POSTERN_CLEANUP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_file.h"
#include "str.h"

#define CLEANUP_PROTO_HDR_SIZE		5	/* type + u32 length */
#define CLEANUP_PROTO_DATA_MAX		(64 * 1024)
#define CLEANUP_PROTO_ENVELOPE_MAX	(1024 * 1024)
#define CLEANUP_PROTO_RCPT_MAX		(4 * (QUEUE_FILE_TEXT_MAX + 6) + 4 + 3)
#define CLEANUP_PROTO_REASON_MAX	1000

enum cleanup_rec {
	CLEANUP_REC_ID = 'I',
	CLEANUP_REC_FLAGS = 'F',
	CLEANUP_REC_ENVELOPE = 'E',
	CLEANUP_REC_RCPT = 'r',
	CLEANUP_REC_DATA = 'D',
	CLEANUP_REC_END = '.',
	CLEANUP_REC_STATUS = 'Z',
};

/*
 * cleanup_proto_max - the largest payload a record of this type may
 * have; false for an unknown type.
 */
bool cleanup_proto_max(int type, size_t *max_r);

/*
 * cleanup_proto_header - decode the 5-octet record header at p (n >= 5
 * octets available): type and payload length, checked against the
 * type's maximum. -1 with *error_r for an unknown type or a too long
 * payload.
 */
int cleanup_proto_header(const void *p, int *type_r, size_t *len_r,
    const char **error_r);

/*
 * cleanup_proto_split - find one whole record at the start of p[0..n):
 * 1 and its type, payload (pointing into p), payload length and the
 * octets it takes (header included); 0 if more input is needed; -1 on a
 * bad header. For decoders that get their input in pieces (and fuzzing).
 */
int cleanup_proto_split(const void *p, size_t n, int *type_r,
    const void **payload_r, size_t *len_r, size_t *used_r,
    const char **error_r);

/* Encoders append one whole record to out. -1 (E2BIG/EINVAL) if a field
 * is too long or holds a NUL, or out hit its maximum; out is then
 * unchanged. */
int cleanup_proto_put(struct str *out, int type, const void *p, size_t n);
int cleanup_proto_put_u32(struct str *out, int type, uint32_t v);
int cleanup_proto_put_envelope(struct str *out,
    const struct queue_envelope *env, const char **error_r);
int cleanup_proto_put_rcpt(struct str *out, const struct queue_rcpt *rcpt,
    const char **error_r);
int cleanup_proto_put_status(struct str *out, unsigned status,
    const char *reason);

/*
 * A decoded envelope: env's strings and attrs point into storage owned
 * by this struct. cleanup_proto_envelope_free releases it (NULL allowed).
 */
struct cleanup_proto_envelope {
	struct queue_envelope env;
	struct queue_attr *attrs;	/* private */
	char *storage;			/* private */
};

/* cleanup_proto_get_u32 - a payload that is exactly one u32 */
int cleanup_proto_get_u32(const void *p, size_t n, uint32_t *v_r,
    const char **error_r);
/*
 * cleanup_proto_get_envelope - decode an 'E' payload into a new *env_r
 * (caller frees with cleanup_proto_envelope_free). Checks every length,
 * enum range, NUL terminator and that the payload is used exactly.
 */
int cleanup_proto_get_envelope(const void *p, size_t n,
    struct cleanup_proto_envelope **env_r, const char **error_r);
void cleanup_proto_envelope_free(struct cleanup_proto_envelope **envp);

/*
 * cleanup_proto_get_rcpt - decode an 'r' payload. The strings of *rcpt_r
 * point into storage, which is replaced (cleared first); they are valid
 * until storage changes.
 */
int cleanup_proto_get_rcpt(const void *p, size_t n, struct str *storage,
    struct queue_rcpt *rcpt_r, const char **error_r);

/*
 * cleanup_proto_get_status - decode a 'Z' payload: the status (< 3) and
 * the reason appended to reason (cleared first).
 */
int cleanup_proto_get_status(const void *p, size_t n, unsigned *status_r,
    struct str *reason, const char **error_r);

#endif
