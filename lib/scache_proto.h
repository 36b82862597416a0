/* SPDX-License-Identifier: MIT */
/*
 * scache_proto - the record between smtp(8) agents and scache(8)
 *
 * One request and one reply per connection to private/scache, each one
 * record sent with login_proxy_send_rec() (a session's fd rides on it
 * with SCM_RIGHTS) and read with login_proxy_recv_rec(). Both ends are
 * on one host, so integers are native:
 *
 *	u32 magic, u32 total length, u32 op, u32 status, u32 ext,
 *	u32 token_ext, u64 size_max, u32 key length, u32 host length,
 *	u32 data length, key octets, host octets (no NULs, each at most
 *	SCACHE_STRING_MAX), data octets (binary, at most SCACHE_DATA_MAX)
 *
 *	PUT  key, host and the session's state; one fd (the session).
 *	     Reply status 1 when scache keeps it.
 *	GET  key. Reply status 1 with the fd, host and state of a session
 *	     parked under key (the most recent one), else 0 and no fd.
 *	TLS_PUT  key and data: a TLS client session (i2d_SSL_SESSION) made
 *	     with the destination and TLS policy the key names. Reply
 *	     status 1 when scache keeps it.
 *	TLS_GET  key. Reply status 1 with the session kept under key in
 *	     data, else 0 and no data.
 *
 * Data travels only in TLS_PUT and in a REPLY; it is a secret (the
 * session's master secret), so scache_rec_clear() wipes it and the
 * users of this module wipe the buffers that carried a record
 * (scache_rec_wipe()). Decoding is strict (exact length, op in range,
 * no NUL in strings, no data where the op carries none); nothing here
 * ends the process except memory exhaustion.
 */
#ifndef POSTERN_SCACHE_PROTO_H
#define POSTERN_SCACHE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str;

#define SCACHE_STRING_MAX	1024
#define SCACHE_DATA_MAX		16384	/* a serialized TLS session */
#define SCACHE_REC_FIXED	44
#define SCACHE_REC_MAX		(SCACHE_REC_FIXED + 2 * SCACHE_STRING_MAX + \
				    SCACHE_DATA_MAX)

enum scache_op {
	SCACHE_OP_PUT = 1,
	SCACHE_OP_GET,
	SCACHE_OP_REPLY,
	SCACHE_OP_TLS_PUT,
	SCACHE_OP_TLS_GET,
};

/* A record; key and host are owned by it after a decode. */
struct scache_rec {
	enum scache_op op;
	unsigned status;		/* REPLY: 1 = done / found */
	unsigned ext;			/* the server's EHLO features (SMTP_EXT_*) */
	bool token_ext;
	uint64_t size_max;		/* SIZE limit, 0 = none */
	char *key;			/* destination + TLS level */
	char *host;			/* the server's name */
	unsigned char *data;		/* TLS session (secret), or NULL */
	size_t data_len;
};

/*
 * scache_rec_encode - r into out (replaced); -1 when key, host or data
 * is too long, or r has data with an op that carries none (nothing to
 * send then)
 */
int scache_rec_encode(const struct scache_rec *r, struct str *out);
/*
 * scache_rec_decode - p[0..n) into r (key, host and data owned by r:
 * scache_rec_clear); -1 with *error_r (static) on any deviation, r
 * cleared
 */
int scache_rec_decode(const void *p, size_t n, struct scache_rec *r,
    const char **error_r);
/* scache_rec_clear - free key and host, wipe and free data, zero r */
void scache_rec_clear(struct scache_rec *r);
/* scache_rec_wipe - wipe the octets of an encoded record in buf */
void scache_rec_wipe(struct str *buf);

#endif
