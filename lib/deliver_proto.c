/* SPDX-License-Identifier: MIT */
/*
 * deliver_proto - encoder and strict decoder of qmgr <-> agent messages
 *
 * DESCRIPTION
 *	See deliver_proto.h for the format. Decoding works on a whole
 *	message in memory: deliver_proto_split() walks the records, each
 *	payload is decoded with a cursor that refuses to read past the
 *	payload and must end exactly at its end. Decoded strings are copied
 *	into one storage block owned by the result, so a decoded object
 *	does not depend on the input buffer.
 *
 *	Errors are -1 / NULL with a static-text *error_r; nothing exits
 *	except on memory exhaustion.
 *
 * SEE ALSO
 *	qmgr(8), smtp(8), cleanup_proto.c (the same record framing)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "deliver_proto.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "stream.h"

static const char *const deliver_status_names[] = {
	"delivered", "deferred", "bounced",
};

/* deliver_status_str - the name of a status */
const char *
deliver_status_str(enum deliver_status s)
{
	if ((unsigned)s >= DELIVER_STATUS_COUNT)
		return "unknown";
	return deliver_status_names[s];
}

/* deliver_rec_max - the largest payload of a record type; false if unknown */
static bool
deliver_rec_max(int type, size_t *max_r)
{
	switch (type) {
	case DELIVER_REC_REQUEST:
	case DELIVER_REC_RCPT:
	case DELIVER_REC_RELAY:
	case DELIVER_REC_STATUS:
		*max_r = DELIVER_PROTO_REC_MAX;
		return true;
	case DELIVER_REC_END:
		*max_r = 0;
		return true;
	default:
		return false;
	}
}

/* deliver_dsn_ok - "C.SSS.DDD" */
bool
deliver_dsn_ok(const char *dsn)
{
	const char *p = dsn;
	int part, digits;

	if (dsn == NULL || (*p != '2' && *p != '4' && *p != '5') || p[1] != '.')
		return false;
	p += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *p >= '0' && *p <= '9'; p++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0 && *p++ != '.')
			return false;
	}
	return *p == '\0';
}

/* ------------------------------------------------------------ encoding */

static void
put32(struct str *s, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	(void)str_append(s, b, sizeof(b));
}

static void
put8(struct str *s, unsigned v)
{
	(void)str_append_c(s, (char)(unsigned char)v);
}

/* put_string - a checked string field; -1 if too long or holding NUL */
static int
put_string(struct str *s, const char *cs, const char **error_r)
{
	size_t n;

	if (cs == NULL) {
		*error_r = "missing string field";
		return -1;
	}
	n = strlen(cs);
	if (n > DELIVER_PROTO_TEXT_MAX) {
		*error_r = "string field too long";
		return -1;
	}
	put32(s, (uint32_t)n);
	(void)str_append(s, cs, n);
	put8(s, 0);
	return 0;
}

static int
put_opt(struct str *s, const char *cs, const char **error_r)
{
	if (cs == NULL) {
		put8(s, 0);
		return 0;
	}
	put8(s, 1);
	return put_string(s, cs, error_r);
}

/* put_record - frame payload as one record of type */
static int
put_record(struct str *out, int type, const struct str *payload,
    const char **error_r)
{
	size_t max;

	if (!deliver_rec_max(type, &max) || str_len(payload) > max) {
		*error_r = "record too long";
		return -1;
	}
	put8(out, (unsigned)type);
	put32(out, (uint32_t)str_len(payload));
	if (str_append_str(out, payload) < 0) {
		*error_r = "output too long";
		return -1;
	}
	return 0;
}

/* deliver_request_encode - the whole request */
int
deliver_request_encode(const struct deliver_request *req, struct str *out,
    const char **error_r)
{
	struct str *msg = str_new(1024, DELIVER_PROTO_MSG_MAX);
	struct str *pl = str_new(256, 0);
	size_t i, start = str_len(out);
	int rc = -1;

	if (req->queue_id == NULL ||
	    !queue_id_ok(req->queue_id, strlen(req->queue_id))) {
		*error_r = "bad queue ID";
		goto out;
	}
	if ((unsigned)req->queue >= QUEUE_COUNT) {
		*error_r = "bad queue name";
		goto out;
	}
	if (req->nrcpts == 0 || req->nrcpts > DELIVER_PROTO_RCPT_MAX) {
		*error_r = "bad recipient count";
		goto out;
	}
	if ((req->flags & ~(unsigned)DELIVER_REQ_F_ALL) != 0) {
		*error_r = "bad request flags";
		goto out;
	}
	if (put_string(pl, req->queue_id, error_r) < 0)
		goto out;
	put8(pl, (unsigned)req->queue);
	if (put_string(pl, req->nexthop, error_r) < 0 ||
	    put_string(pl, req->sender, error_r) < 0)
		goto out;
	put32(pl, req->flags);
	if (put_record(msg, DELIVER_REC_REQUEST, pl, error_r) < 0)
		goto out;
	for (i = 0; i < req->nrcpts; i++) {
		const struct deliver_rcpt *r = &req->rcpts[i];

		if ((r->orcpt == NULL) != (r->orcpt_type == NULL)) {
			*error_r = "ORCPT type without address or address without type";
			goto out;
		}
		str_clear(pl);
		put32(pl, r->index);
		if (put_string(pl, r->address, error_r) < 0 ||
		    put_opt(pl, r->orcpt_type, error_r) < 0 ||
		    put_opt(pl, r->orcpt, error_r) < 0)
			goto out;
		put32(pl, r->notify);
		if (put_string(pl, r->token != NULL ? r->token : "", error_r) < 0 ||
		    put_record(msg, DELIVER_REC_RCPT, pl, error_r) < 0)
			goto out;
	}
	str_clear(pl);
	if (put_record(msg, DELIVER_REC_END, pl, error_r) < 0)
		goto out;
	if (str_append_str(out, msg) < 0) {
		*error_r = "output too long";
		str_truncate(out, start);
		goto out;
	}
	rc = 0;
out:
	str_free(&pl);
	str_free(&msg);
	return rc;
}

/* deliver_response_encode - the whole response */
int
deliver_response_encode(const struct deliver_response *res, struct str *out,
    const char **error_r)
{
	struct str *msg = str_new(1024, DELIVER_PROTO_MSG_MAX);
	struct str *pl = str_new(256, 0);
	size_t i, start = str_len(out);
	int rc = -1;

	if (res->nresults > DELIVER_PROTO_RCPT_MAX) {
		*error_r = "bad result count";
		goto out;
	}
	if (res->relay != NULL && *res->relay != '\0') {
		if (put_string(pl, res->relay, error_r) < 0 ||
		    put_record(msg, DELIVER_REC_RELAY, pl, error_r) < 0)
			goto out;
	}
	for (i = 0; i < res->nresults; i++) {
		const struct deliver_result *r = &res->results[i];

		if ((unsigned)r->status >= DELIVER_STATUS_COUNT ||
		    (r->flags & ~(unsigned)DELIVER_RES_F_ALL) != 0) {
			*error_r = "bad status or flags";
			goto out;
		}
		if (!deliver_dsn_ok(r->dsn)) {
			*error_r = "malformed DSN status code";
			goto out;
		}
		str_clear(pl);
		put32(pl, r->index);
		put8(pl, (unsigned)r->status);
		put32(pl, r->flags);
		if (put_string(pl, r->dsn, error_r) < 0 ||
		    put_string(pl, r->text != NULL ? r->text : "", error_r) < 0)
			goto out;
		if (r->remote_mta != NULL && *r->remote_mta != '\0' &&
		    put_opt(pl, r->remote_mta, error_r) < 0)
			goto out;
		if (put_record(msg, DELIVER_REC_STATUS, pl, error_r) < 0)
			goto out;
	}
	str_clear(pl);
	if (put_record(msg, DELIVER_REC_END, pl, error_r) < 0)
		goto out;
	if (str_append_str(out, msg) < 0) {
		*error_r = "output too long";
		str_truncate(out, start);
		goto out;
	}
	rc = 0;
out:
	str_free(&pl);
	str_free(&msg);
	return rc;
}

/* ------------------------------------------------------------ decoding */

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* deliver_proto_split - one whole record at the start of p[0..n) */
int
deliver_proto_split(const void *p, size_t n, int *type_r,
    const void **payload_r, size_t *len_r, size_t *used_r,
    const char **error_r)
{
	const unsigned char *b = p;
	size_t max, len;

	if (n < DELIVER_PROTO_HDR_SIZE)
		return 0;
	if (!deliver_rec_max(b[0], &max)) {
		*error_r = "unknown record type";
		return -1;
	}
	len = get32(b + 1);
	if (len > max) {
		*error_r = "record too long for its type";
		return -1;
	}
	if (n - DELIVER_PROTO_HDR_SIZE < len)
		return 0;
	*type_r = b[0];
	*payload_r = b + DELIVER_PROTO_HDR_SIZE;
	*len_r = len;
	*used_r = DELIVER_PROTO_HDR_SIZE + len;
	return 1;
}

/* deliver_proto_complete - is there a whole message at p? */
int
deliver_proto_complete(const void *p, size_t n, size_t *used_r,
    const char **error_r)
{
	const unsigned char *b = p;
	size_t off = 0;

	for (;;) {
		const void *pl;
		size_t len, used;
		int type, r;

		r = deliver_proto_split(b + off, n - off, &type, &pl, &len,
		    &used, error_r);
		if (r <= 0)
			return r;
		off += used;
		if (off > DELIVER_PROTO_MSG_MAX) {
			*error_r = "message too long";
			return -1;
		}
		if (type == DELIVER_REC_END) {
			*used_r = off;
			return 1;
		}
	}
}

/*
 * A cursor over one payload. Strings are copied into the storage block
 * at *fill (sized by the caller to hold every payload octet, which bounds
 * every string we copy out).
 */
struct cursor {
	const unsigned char *p;
	size_t n;
	char *fill;
	const char *error;
};

static bool
get_u8(struct cursor *c, unsigned *v_r)
{
	if (c->n < 1) {
		c->error = "truncated payload";
		return false;
	}
	*v_r = c->p[0];
	c->p++;
	c->n--;
	return true;
}

static bool
get_u32(struct cursor *c, uint32_t *v_r)
{
	if (c->n < 4) {
		c->error = "truncated payload";
		return false;
	}
	*v_r = get32(c->p);
	c->p += 4;
	c->n -= 4;
	return true;
}

static bool
get_string(struct cursor *c, const char **s_r)
{
	uint32_t len;

	if (!get_u32(c, &len))
		return false;
	if (len > DELIVER_PROTO_TEXT_MAX) {
		c->error = "string field too long";
		return false;
	}
	if (c->n < (size_t)len + 1) {
		c->error = "truncated string";
		return false;
	}
	if (memchr(c->p, '\0', len) != NULL || c->p[len] != '\0') {
		c->error = "NUL inside a string or terminator missing";
		return false;
	}
	memcpy(c->fill, c->p, (size_t)len + 1);
	*s_r = c->fill;
	c->fill += len + 1;
	c->p += len + 1;
	c->n -= (size_t)len + 1;
	return true;
}

static bool
get_opt(struct cursor *c, const char **s_r)
{
	unsigned present;

	if (!get_u8(c, &present))
		return false;
	if (present == 0) {
		*s_r = NULL;
		return true;
	}
	if (present != 1) {
		c->error = "bad optional-field marker";
		return false;
	}
	return get_string(c, s_r);
}

static bool
get_end(struct cursor *c)
{
	if (c->n != 0) {
		c->error = "trailing octets in payload";
		return false;
	}
	return true;
}

/* deliver_count - count records of type want; -1 on framing errors */
static int
deliver_count(const unsigned char *b, size_t n, int want, size_t *count_r,
    const char **error_r)
{
	size_t off = 0, count = 0;
	bool ended = false;

	while (off < n) {
		const void *pl;
		size_t len, used;
		int type, r;

		if (ended) {
			*error_r = "data after the end record";
			return -1;
		}
		r = deliver_proto_split(b + off, n - off, &type, &pl, &len,
		    &used, error_r);
		if (r < 0)
			return -1;
		if (r == 0) {
			*error_r = "truncated record";
			return -1;
		}
		if (type == want)
			count++;
		if (type == DELIVER_REC_END)
			ended = true;
		off += used;
	}
	if (!ended) {
		*error_r = "end record missing";
		return -1;
	}
	*count_r = count;
	return 0;
}

/* deliver_request_decode - a whole request */
struct deliver_request *
deliver_request_decode(const void *p, size_t n, const char **error_r)
{
	const unsigned char *b = p;
	struct deliver_request *req;
	struct cursor c;
	size_t off = 0, count;
	bool have_q = false;

	if (n > DELIVER_PROTO_MSG_MAX) {
		*error_r = "message too long";
		return NULL;
	}
	if (deliver_count(b, n, DELIVER_REC_RCPT, &count, error_r) < 0)
		return NULL;
	if (count == 0 || count > DELIVER_PROTO_RCPT_MAX) {
		*error_r = "bad recipient count";
		return NULL;
	}
	req = xcalloc(1, sizeof(*req));
	req->rcpts = xcalloc(count, sizeof(*req->rcpts));
	req->storage = xmalloc(n + 1);
	memset(&c, 0, sizeof(c));
	c.fill = req->storage;
	for (;;) {
		const void *pl;
		size_t len, used;
		int type;

		(void)deliver_proto_split(b + off, n - off, &type, &pl, &len,
		    &used, error_r);
		off += used;
		c.p = pl;
		c.n = len;
		if (type == DELIVER_REC_END)
			break;
		if (type == DELIVER_REC_REQUEST) {
			unsigned q;
			uint32_t flags;

			if (have_q) {
				*error_r = "request header twice";
				goto bad;
			}
			have_q = true;
			if (!get_string(&c, &req->queue_id) || !get_u8(&c, &q) ||
			    !get_string(&c, &req->nexthop) ||
			    !get_string(&c, &req->sender) ||
			    !get_u32(&c, &flags) || !get_end(&c))
				goto bad_c;
			if (!queue_id_ok(req->queue_id, strlen(req->queue_id))) {
				*error_r = "bad queue ID";
				goto bad;
			}
			if (q >= QUEUE_COUNT) {
				*error_r = "bad queue name";
				goto bad;
			}
			if ((flags & ~(uint32_t)DELIVER_REQ_F_ALL) != 0) {
				*error_r = "bad request flags";
				goto bad;
			}
			req->queue = (enum queue_name)q;
			req->flags = flags;
		} else if (type == DELIVER_REC_RCPT) {
			struct deliver_rcpt *r = &req->rcpts[req->nrcpts];
			uint32_t notify;

			if (!have_q) {
				*error_r = "recipient before the request header";
				goto bad;
			}
			if (!get_u32(&c, &r->index) ||
			    !get_string(&c, &r->address) ||
			    !get_opt(&c, &r->orcpt_type) ||
			    !get_opt(&c, &r->orcpt) ||
			    !get_u32(&c, &notify) ||
			    !get_string(&c, &r->token) || !get_end(&c))
				goto bad_c;
			if ((r->orcpt == NULL) != (r->orcpt_type == NULL)) {
				*error_r = "ORCPT type and address must come together";
				goto bad;
			}
			if ((notify & ~(uint32_t)(SMTP_NOTIFY_NEVER |
			    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
			    SMTP_NOTIFY_DELAY)) != 0) {
				*error_r = "bad NOTIFY bits";
				goto bad;
			}
			r->notify = notify;
			req->nrcpts++;
		} else {
			*error_r = "unexpected record in a request";
			goto bad;
		}
	}
	if (!have_q) {
		*error_r = "request header missing";
		goto bad;
	}
	return req;
bad_c:
	*error_r = c.error;
bad:
	deliver_request_free(&req);
	return NULL;
}

/* deliver_response_decode - a whole response */
struct deliver_response *
deliver_response_decode(const void *p, size_t n, const char **error_r)
{
	const unsigned char *b = p;
	struct deliver_response *res;
	struct cursor c;
	size_t off = 0, count;
	bool any = false;

	if (n > DELIVER_PROTO_MSG_MAX) {
		*error_r = "message too long";
		return NULL;
	}
	if (deliver_count(b, n, DELIVER_REC_STATUS, &count, error_r) < 0)
		return NULL;
	if (count > DELIVER_PROTO_RCPT_MAX) {
		*error_r = "too many results";
		return NULL;
	}
	res = xcalloc(1, sizeof(*res));
	res->results = xcalloc(count + 1, sizeof(*res->results));
	res->storage = xmalloc(n + 1);
	res->relay = "";
	memset(&c, 0, sizeof(c));
	c.fill = res->storage;
	for (;;) {
		const void *pl;
		size_t len, used;
		int type;

		(void)deliver_proto_split(b + off, n - off, &type, &pl, &len,
		    &used, error_r);
		off += used;
		c.p = pl;
		c.n = len;
		if (type == DELIVER_REC_END)
			break;
		if (type == DELIVER_REC_RELAY) {
			if (any) {
				*error_r = "relay record not first";
				goto bad;
			}
			if (!get_string(&c, &res->relay) || !get_end(&c))
				goto bad_c;
		} else if (type == DELIVER_REC_STATUS) {
			struct deliver_result *r = &res->results[res->nresults];
			unsigned st;
			uint32_t flags;

			if (!get_u32(&c, &r->index) || !get_u8(&c, &st) ||
			    !get_u32(&c, &flags) || !get_string(&c, &r->dsn) ||
			    !get_string(&c, &r->text))
				goto bad_c;
			/* remote_mta: absent from older agents */
			r->remote_mta = NULL;
			if (c.n > 0 && !get_opt(&c, &r->remote_mta))
				goto bad_c;
			if (!get_end(&c))
				goto bad_c;
			if (st >= DELIVER_STATUS_COUNT ||
			    (flags & ~(uint32_t)DELIVER_RES_F_ALL) != 0) {
				*error_r = "bad status or flags";
				goto bad;
			}
			if (!deliver_dsn_ok(r->dsn)) {
				*error_r = "malformed DSN status code";
				goto bad;
			}
			r->status = (enum deliver_status)st;
			r->flags = flags;
			res->nresults++;
		} else {
			*error_r = "unexpected record in a response";
			goto bad;
		}
		any = true;
	}
	return res;
bad_c:
	*error_r = c.error;
bad:
	deliver_response_free(&res);
	return NULL;
}

void
deliver_request_free(struct deliver_request **reqp)
{
	struct deliver_request *req = *reqp;

	if (req == NULL)
		return;
	free(req->rcpts);
	free(req->storage);
	free(req);
	*reqp = NULL;
}

void
deliver_response_free(struct deliver_response **resp)
{
	struct deliver_response *res = *resp;

	if (res == NULL)
		return;
	free(res->results);
	free(res->storage);
	free(res);
	*resp = NULL;
}

/* deliver_proto_read - one whole message from a blocking stream */
int
deliver_proto_read(struct stream *s, struct str *buf, const char **error_r)
{
	size_t total = 0;

	str_clear(buf);
	for (;;) {
		const unsigned char *h;
		size_t max, len;
		enum stream_result r;
		int type;

		r = stream_read_n(s, buf, DELIVER_PROTO_HDR_SIZE);
		if (r != STREAM_OK) {
			*error_r = r == STREAM_EOF ? "unexpected end of input" :
			    r == STREAM_TIMEOUT ? "timeout" : "read error";
			return -1;
		}
		h = (const unsigned char *)str_c(buf) + total;
		type = h[0];
		if (!deliver_rec_max(type, &max)) {
			*error_r = "unknown record type";
			return -1;
		}
		len = get32(h + 1);
		if (len > max) {
			*error_r = "record too long for its type";
			return -1;
		}
		total += DELIVER_PROTO_HDR_SIZE + len;
		if (total > DELIVER_PROTO_MSG_MAX) {
			*error_r = "message too long";
			return -1;
		}
		if (len > 0) {
			r = stream_read_n(s, buf, len);
			if (r != STREAM_OK) {
				*error_r = r == STREAM_EOF ?
				    "unexpected end of input" :
				    r == STREAM_TIMEOUT ? "timeout" :
				    "read error";
				return -1;
			}
		}
		if (type == DELIVER_REC_END)
			return 0;
	}
}
