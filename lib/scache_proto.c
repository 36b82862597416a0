/* SPDX-License-Identifier: MIT */
/*
 * scache_proto - encode and decode scache(8) records (see scache_proto.h)
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "scache_proto.h"
#include "str.h"

#define SCACHE_MAGIC	0x32435350u	/* "PSC2" */

/* scache_put32 - append a native u32 */
static void
scache_put32(struct str *out, uint32_t v)
{
	(void)str_append(out, &v, sizeof(v));
}

/* scache_op_has_data - may a record of op carry data? */
static bool
scache_op_has_data(uint32_t op)
{
	return op == SCACHE_OP_TLS_PUT || op == SCACHE_OP_REPLY;
}

/* scache_rec_encode - see scache_proto.h */
int
scache_rec_encode(const struct scache_rec *r, struct str *out)
{
	const char *key = r->key != NULL ? r->key : "";
	const char *host = r->host != NULL ? r->host : "";
	size_t klen = strlen(key), hlen = strlen(host);
	size_t dlen = r->data != NULL ? r->data_len : 0;
	uint32_t total;

	if (klen > SCACHE_STRING_MAX || hlen > SCACHE_STRING_MAX ||
	    dlen > SCACHE_DATA_MAX ||
	    (dlen > 0 && !scache_op_has_data((uint32_t)r->op)))
		return -1;
	str_clear(out);
	scache_put32(out, SCACHE_MAGIC);
	scache_put32(out, 0);
	scache_put32(out, (uint32_t)r->op);
	scache_put32(out, r->status);
	scache_put32(out, r->ext);
	scache_put32(out, r->token_ext ? 1 : 0);
	(void)str_append(out, &r->size_max, sizeof(r->size_max));
	scache_put32(out, (uint32_t)klen);
	scache_put32(out, (uint32_t)hlen);
	scache_put32(out, (uint32_t)dlen);
	(void)str_append(out, key, klen);
	(void)str_append(out, host, hlen);
	if (dlen > 0)
		(void)str_append(out, r->data, dlen);
	total = (uint32_t)str_len(out);
	memcpy(str_data(out) + 4, &total, sizeof(total));
	return 0;
}

/* scache_get32 - the native u32 at p + off */
static uint32_t
scache_get32(const unsigned char *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

/* scache_rec_decode - see scache_proto.h */
int
scache_rec_decode(const void *p, size_t n, struct scache_rec *r,
    const char **error_r)
{
	const unsigned char *b = p;
	uint32_t op, klen, hlen, dlen, tok;

	memset(r, 0, sizeof(*r));
	if (n < SCACHE_REC_FIXED || n > SCACHE_REC_MAX) {
		*error_r = "record size out of range";
		return -1;
	}
	if (scache_get32(b, 0) != SCACHE_MAGIC || scache_get32(b, 4) != n) {
		*error_r = "bad record header";
		return -1;
	}
	op = scache_get32(b, 8);
	tok = scache_get32(b, 20);
	klen = scache_get32(b, 32);
	hlen = scache_get32(b, 36);
	dlen = scache_get32(b, 40);
	if (op < SCACHE_OP_PUT || op > SCACHE_OP_TLS_GET || tok > 1) {
		*error_r = "bad op or flag";
		return -1;
	}
	if (klen > SCACHE_STRING_MAX || hlen > SCACHE_STRING_MAX ||
	    dlen > SCACHE_DATA_MAX ||
	    (size_t)SCACHE_REC_FIXED + klen + hlen + dlen != n) {
		*error_r = "bad string length";
		return -1;
	}
	if (dlen > 0 && !scache_op_has_data(op)) {
		*error_r = "data in a record that carries none";
		return -1;
	}
	if (memchr(b + SCACHE_REC_FIXED, '\0', (size_t)klen + hlen) != NULL) {
		*error_r = "NUL in a string";
		return -1;
	}
	r->op = (enum scache_op)op;
	r->status = scache_get32(b, 12);
	r->ext = scache_get32(b, 16);
	r->token_ext = tok != 0;
	memcpy(&r->size_max, b + 24, sizeof(r->size_max));
	r->key = xstrndup((const char *)b + SCACHE_REC_FIXED, klen);
	r->host = xstrndup((const char *)b + SCACHE_REC_FIXED + klen, hlen);
	if (dlen > 0) {
		r->data = xmalloc(dlen);
		memcpy(r->data, b + SCACHE_REC_FIXED + klen + hlen, dlen);
		r->data_len = dlen;
	}
	return 0;
}

/* scache_rec_clear - see scache_proto.h */
void
scache_rec_clear(struct scache_rec *r)
{
	free(r->key);
	free(r->host);
	if (r->data != NULL) {
		explicit_bzero(r->data, r->data_len);
		free(r->data);
	}
	memset(r, 0, sizeof(*r));
}

/* scache_rec_wipe - see scache_proto.h */
void
scache_rec_wipe(struct str *buf)
{
	explicit_bzero(str_data(buf), str_len(buf));
	str_clear(buf);
}
