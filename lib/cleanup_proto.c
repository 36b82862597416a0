/* SPDX-License-Identifier: MIT */
/*
 * cleanup_proto - encode and decode the cleanup wire records
 *
 * DESCRIPTION
 *	See cleanup_proto.h for the format. Encoders build a record in a
 *	scratch str and append it to the output only when every field fit,
 *	so a failed encode leaves the output unchanged. Decoders walk the
 *	payload with a cursor that checks each length against what is left
 *	before looking at the bytes (OpenSMTPD m_get_*), require the NUL
 *	after every string and no NUL inside it, range-check enums, and fail
 *	unless the payload is used exactly (m_end).
 *
 * SEE ALSO
 *	cleanup_client.c, cleanup/cleanup.c
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cleanup_proto.h"

/* ------------------------------------------------------------ headers */

/* cleanup_proto_max - per-type payload maximum */
bool
cleanup_proto_max(int type, size_t *max_r)
{
	switch (type) {
	case CLEANUP_REC_ID:
		*max_r = QUEUE_ID_LEN;
		return true;
	case CLEANUP_REC_FLAGS:
		*max_r = 4;
		return true;
	case CLEANUP_REC_ENVELOPE:
		*max_r = CLEANUP_PROTO_ENVELOPE_MAX;
		return true;
	case CLEANUP_REC_RCPT:
		*max_r = CLEANUP_PROTO_RCPT_MAX;
		return true;
	case CLEANUP_REC_DATA:
		*max_r = CLEANUP_PROTO_DATA_MAX;
		return true;
	case CLEANUP_REC_END:
		*max_r = 0;
		return true;
	case CLEANUP_REC_STATUS:
		*max_r = 4 + 4 + CLEANUP_PROTO_REASON_MAX + 1;
		return true;
	default:
		return false;
	}
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* cleanup_proto_header - decode and check a record header */
int
cleanup_proto_header(const void *p, int *type_r, size_t *len_r,
    const char **error_r)
{
	const unsigned char *u = p;
	size_t max;
	uint32_t len;

	if (!cleanup_proto_max(u[0], &max)) {
		*error_r = "unknown record type";
		return -1;
	}
	len = get32(u + 1);
	if (len > max) {
		*error_r = "record too long for its type";
		return -1;
	}
	*type_r = u[0];
	*len_r = len;
	return 0;
}

/* cleanup_proto_split - one whole record from a buffer, if there is one */
int
cleanup_proto_split(const void *p, size_t n, int *type_r,
    const void **payload_r, size_t *len_r, size_t *used_r,
    const char **error_r)
{
	size_t len;
	int type;

	if (n < CLEANUP_PROTO_HDR_SIZE)
		return 0;
	if (cleanup_proto_header(p, &type, &len, error_r) < 0)
		return -1;
	if (n - CLEANUP_PROTO_HDR_SIZE < len)
		return 0;
	*type_r = type;
	*payload_r = (const char *)p + CLEANUP_PROTO_HDR_SIZE;
	*len_r = len;
	*used_r = CLEANUP_PROTO_HDR_SIZE + len;
	return 1;
}

/* ------------------------------------------------------------ encoders */

static void
put_raw32(struct str *s, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	(void)str_append(s, b, 4);
}

static void
put_raw64(struct str *s, uint64_t v)
{
	put_raw32(s, (uint32_t)(v >> 32));
	put_raw32(s, (uint32_t)v);
}

/* put_string - a string field; false if too long or it holds a NUL */
static bool
put_string(struct str *s, const char *cs, size_t max)
{
	size_t n = strlen(cs);

	if (n > max)
		return false;
	put_raw32(s, (uint32_t)n);
	(void)str_append(s, cs, n);
	(void)str_append_c(s, '\0');
	return true;
}

static bool
put_opt(struct str *s, const char *cs, size_t max)
{
	if (cs == NULL) {
		(void)str_append_c(s, 0);
		return true;
	}
	(void)str_append_c(s, 1);
	return put_string(s, cs, max);
}

/* cleanup_proto_put - a record with a raw payload */
int
cleanup_proto_put(struct str *out, int type, const void *p, size_t n)
{
	size_t max, old = str_len(out);
	unsigned char hdr[CLEANUP_PROTO_HDR_SIZE];

	if (!cleanup_proto_max(type, &max) || n > max) {
		errno = E2BIG;
		return -1;
	}
	hdr[0] = (unsigned char)type;
	hdr[1] = (unsigned char)(n >> 24);
	hdr[2] = (unsigned char)(n >> 16);
	hdr[3] = (unsigned char)(n >> 8);
	hdr[4] = (unsigned char)n;
	if (str_append(out, hdr, sizeof(hdr)) < 0)
		return -1;
	if (n > 0 && str_append(out, p, n) < 0) {
		str_truncate(out, old);
		return -1;
	}
	return 0;
}

/* put_record - wrap payload in a record and append it to out */
static int
put_record(struct str *out, int type, const struct str *payload)
{
	return cleanup_proto_put(out, type, str_c(payload), str_len(payload));
}

/* cleanup_proto_put_u32 - a record whose payload is one u32 */
int
cleanup_proto_put_u32(struct str *out, int type, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	return cleanup_proto_put(out, type, b, sizeof(b));
}

/* cleanup_proto_put_envelope - the 'E' record */
int
cleanup_proto_put_envelope(struct str *out, const struct queue_envelope *env,
    const char **error_r)
{
	struct str *p = str_new(256, 0);
	uint64_t usec;
	size_t i;
	bool ok = true;
	int ret;

	if (env->sender == NULL || env->arrival.tv_sec < 0 ||
	    env->arrival.tv_usec < 0 || env->arrival.tv_usec >= 1000000 ||
	    env->nattrs > QUEUE_FILE_ATTR_MAX ||
	    (env->nattrs > 0 && env->attrs == NULL) ||
	    (unsigned)env->ret > SMTP_RET_HDRS ||
	    (unsigned)env->body > SMTP_BODY_BINARYMIME) {
		str_free(&p);
		*error_r = "invalid envelope";
		errno = EINVAL;
		return -1;
	}
	usec = (uint64_t)env->arrival.tv_sec * 1000000u +
	    (uint64_t)env->arrival.tv_usec;
	put_raw64(p, usec);
	ok &= put_string(p, env->sender, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, env->envid, QUEUE_FILE_TEXT_MAX);
	(void)str_append_c(p, (char)env->ret);
	(void)str_append_c(p, (char)env->body);
	(void)str_append_c(p, env->smtputf8 ? 1 : 0);
	ok &= put_opt(p, env->client_name, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, env->client_addr, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, env->helo, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, env->protocol, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, env->auth_user, QUEUE_FILE_TEXT_MAX);
	put_raw32(p, (uint32_t)env->nattrs);
	for (i = 0; ok && i < env->nattrs; i++) {
		if (env->attrs[i].name == NULL || env->attrs[i].value == NULL) {
			ok = false;
			break;
		}
		ok &= put_string(p, env->attrs[i].name, QUEUE_FILE_TEXT_MAX);
		ok &= put_string(p, env->attrs[i].value, QUEUE_FILE_TEXT_MAX);
	}
	if (!ok) {
		str_free(&p);
		*error_r = "envelope field too long";
		errno = E2BIG;
		return -1;
	}
	/* put_record refuses a payload over CLEANUP_PROTO_ENVELOPE_MAX. */
	ret = put_record(out, CLEANUP_REC_ENVELOPE, p);
	if (ret < 0)
		*error_r = "envelope too long";
	str_free(&p);
	return ret;
}

/* cleanup_proto_put_rcpt - the 'r' record */
int
cleanup_proto_put_rcpt(struct str *out, const struct queue_rcpt *rcpt,
    const char **error_r)
{
	struct str *p;
	bool ok = true;
	int ret;

	if (rcpt->address == NULL || rcpt->notify > 0x0f) {
		*error_r = "invalid recipient";
		errno = EINVAL;
		return -1;
	}
	p = str_new(128, 0);
	ok &= put_string(p, rcpt->address, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, rcpt->orcpt_type, QUEUE_FILE_TEXT_MAX);
	ok &= put_opt(p, rcpt->orcpt, QUEUE_FILE_TEXT_MAX);
	put_raw32(p, rcpt->notify);
	ok &= put_opt(p, rcpt->original, QUEUE_FILE_TEXT_MAX);
	if (!ok) {
		str_free(&p);
		*error_r = "recipient field too long";
		errno = E2BIG;
		return -1;
	}
	ret = put_record(out, CLEANUP_REC_RCPT, p);
	if (ret < 0)
		*error_r = "recipient too long";
	str_free(&p);
	return ret;
}

/* cleanup_proto_put_status - the 'Z' record; the reason is cut to fit */
int
cleanup_proto_put_status(struct str *out, unsigned status, const char *reason)
{
	struct str *p = str_new(64, 0);
	size_t n = strnlen(reason, CLEANUP_PROTO_REASON_MAX);
	int ret;

	put_raw32(p, status);
	put_raw32(p, (uint32_t)n);
	(void)str_append(p, reason, n);
	(void)str_append_c(p, '\0');
	ret = put_record(out, CLEANUP_REC_STATUS, p);
	str_free(&p);
	return ret;
}

/* ------------------------------------------------------------ decoders */

struct cursor {
	const unsigned char *p;
	size_t n;
	bool bad;
};

static bool
get_u8(struct cursor *c, unsigned *v_r)
{
	if (c->bad || c->n < 1)
		return !(c->bad = true);
	*v_r = c->p[0];
	c->p++;
	c->n--;
	return true;
}

static bool
get_u32(struct cursor *c, uint32_t *v_r)
{
	if (c->bad || c->n < 4)
		return !(c->bad = true);
	*v_r = get32(c->p);
	c->p += 4;
	c->n -= 4;
	return true;
}

static bool
get_u64(struct cursor *c, uint64_t *v_r)
{
	uint32_t hi, lo;

	if (!get_u32(c, &hi) || !get_u32(c, &lo))
		return false;
	*v_r = (uint64_t)hi << 32 | lo;
	return true;
}

/*
 * get_string - a string field; *s_r points into the cursor's buffer,
 * which the caller owns and which holds the NUL we checked.
 */
static bool
get_string(struct cursor *c, size_t max, const char **s_r)
{
	uint32_t len;

	if (!get_u32(c, &len))
		return false;
	/* len + 1 cannot overflow size_t: len is at most 2^32 - 1. */
	if (len > max || c->n < (size_t)len + 1 ||
	    memchr(c->p, '\0', len) != NULL || c->p[len] != '\0')
		return !(c->bad = true);
	*s_r = (const char *)c->p;
	c->p += (size_t)len + 1;
	c->n -= (size_t)len + 1;
	return true;
}

static bool
get_opt(struct cursor *c, size_t max, const char **s_r)
{
	unsigned present;

	if (!get_u8(c, &present))
		return false;
	if (present == 0) {
		*s_r = NULL;
		return true;
	}
	if (present != 1)
		return !(c->bad = true);
	return get_string(c, max, s_r);
}

/* cleanup_proto_get_u32 - exactly one u32 */
int
cleanup_proto_get_u32(const void *p, size_t n, uint32_t *v_r,
    const char **error_r)
{
	if (n != 4) {
		*error_r = "malformed number record";
		return -1;
	}
	*v_r = get32(p);
	return 0;
}

/* cleanup_proto_get_envelope - decode 'E' */
int
cleanup_proto_get_envelope(const void *p, size_t n,
    struct cleanup_proto_envelope **env_r, const char **error_r)
{
	struct cleanup_proto_envelope *e;
	struct queue_envelope *env;
	struct cursor c;
	uint64_t usec = 0;
	uint32_t nattrs = 0, i;
	unsigned ret = 0, body = 0, utf8 = 0;

	*env_r = NULL;
	if (n > CLEANUP_PROTO_ENVELOPE_MAX) {
		*error_r = "envelope too long";
		return -1;
	}
	e = xcalloc(1, sizeof(*e));
	e->storage = xmemdup(p, n);
	env = &e->env;
	c.p = (const unsigned char *)e->storage;
	c.n = n;
	c.bad = false;
	if (get_u64(&c, &usec) &&
	    get_string(&c, QUEUE_FILE_TEXT_MAX, &env->sender) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->envid) &&
	    get_u8(&c, &ret) && get_u8(&c, &body) && get_u8(&c, &utf8) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->client_name) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->client_addr) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->helo) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->protocol) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &env->auth_user) &&
	    get_u32(&c, &nattrs)) {
		if (ret > SMTP_RET_HDRS || body > SMTP_BODY_BINARYMIME ||
		    utf8 > 1 || nattrs > QUEUE_FILE_ATTR_MAX ||
		    usec / 1000000u > (uint64_t)INT64_MAX / 2)
			c.bad = true;
	}
	if (!c.bad && nattrs > 0) {
		/* Each attribute takes at least 10 octets: bound before allocating. */
		if (nattrs > c.n / 10)
			c.bad = true;
		else
			e->attrs = xcalloc(nattrs, sizeof(*e->attrs));
	}
	for (i = 0; !c.bad && i < nattrs; i++) {
		(void)(get_string(&c, QUEUE_FILE_TEXT_MAX, &e->attrs[i].name) &&
		    get_string(&c, QUEUE_FILE_TEXT_MAX, &e->attrs[i].value));
	}
	if (c.bad || c.n != 0) {
		*error_r = c.bad ? "malformed envelope record" :
		    "trailing octets in envelope record";
		cleanup_proto_envelope_free(&e);
		return -1;
	}
	env->arrival.tv_sec = (time_t)(usec / 1000000u);
	env->arrival.tv_usec = (suseconds_t)(usec % 1000000u);
	env->ret = (enum smtp_ret)ret;
	env->body = (enum smtp_body)body;
	env->smtputf8 = utf8 != 0;
	env->attrs = e->attrs;
	env->nattrs = nattrs;
	*env_r = e;
	return 0;
}

/* cleanup_proto_envelope_free - release a decoded envelope */
void
cleanup_proto_envelope_free(struct cleanup_proto_envelope **envp)
{
	struct cleanup_proto_envelope *e = *envp;

	if (e == NULL)
		return;
	free(e->attrs);
	free(e->storage);
	free(e);
	*envp = NULL;
}

/* cleanup_proto_get_rcpt - decode 'r' */
int
cleanup_proto_get_rcpt(const void *p, size_t n, struct str *storage,
    struct queue_rcpt *rcpt_r, const char **error_r)
{
	struct cursor c;
	uint32_t notify = 0;

	memset(rcpt_r, 0, sizeof(*rcpt_r));
	str_clear(storage);
	if (n > CLEANUP_PROTO_RCPT_MAX || str_append(storage, p, n) < 0) {
		*error_r = "recipient record too long";
		return -1;
	}
	c.p = (const unsigned char *)str_c(storage);
	c.n = n;
	c.bad = false;
	if (get_string(&c, QUEUE_FILE_TEXT_MAX, &rcpt_r->address) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &rcpt_r->orcpt_type) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &rcpt_r->orcpt) &&
	    get_u32(&c, &notify) &&
	    get_opt(&c, QUEUE_FILE_TEXT_MAX, &rcpt_r->original)) {
		if (notify > 0x0f)
			c.bad = true;
		rcpt_r->notify = notify;
	}
	if (c.bad || c.n != 0) {
		memset(rcpt_r, 0, sizeof(*rcpt_r));
		*error_r = "malformed recipient record";
		return -1;
	}
	return 0;
}

/* cleanup_proto_get_status - decode 'Z' */
int
cleanup_proto_get_status(const void *p, size_t n, unsigned *status_r,
    struct str *reason, const char **error_r)
{
	struct cursor c;
	uint32_t status, len;

	str_clear(reason);
	c.p = p;
	c.n = n;
	c.bad = false;
	if (!get_u32(&c, &status) || !get_u32(&c, &len) || status > 2 ||
	    len > CLEANUP_PROTO_REASON_MAX || c.n != (size_t)len + 1 ||
	    memchr(c.p, '\0', len) != NULL || c.p[len] != '\0') {
		*error_r = "malformed status record";
		return -1;
	}
	(void)str_append(reason, c.p, len);
	*status_r = status;
	return 0;
}
