/* SPDX-License-Identifier: MIT */
/*
 * cleanup_proto_fuzz - libFuzzer target for the cleanup record decoder
 *
 * The input is a stream of records as cleanup reads it from a client.
 * Each whole record is split off and its payload decoded by the decoder
 * cleanup uses for its type. Beyond "no crash, no leak, no read past the
 * payload" it checks that whatever the envelope and recipient decoders
 * accept encodes back to exactly the same payload.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cleanup_proto.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_payload(int type, const void *payload, size_t len, struct str *buf,
    struct str *storage)
{
	struct cleanup_proto_envelope *env = NULL;
	struct queue_rcpt rcpt;
	const char *error;
	unsigned status;
	uint32_t v;

	str_clear(buf);
	switch (type) {
	case CLEANUP_REC_ENVELOPE:
		if (cleanup_proto_get_envelope(payload, len, &env, &error) < 0)
			break;
		ASSERT(cleanup_proto_put_envelope(buf, &env->env, &error) == 0);
		ASSERT(str_len(buf) == len + CLEANUP_PROTO_HDR_SIZE);
		ASSERT(memcmp(str_c(buf) + CLEANUP_PROTO_HDR_SIZE, payload,
		    len) == 0);
		cleanup_proto_envelope_free(&env);
		break;
	case CLEANUP_REC_RCPT:
		if (cleanup_proto_get_rcpt(payload, len, storage, &rcpt,
		    &error) < 0)
			break;
		ASSERT(cleanup_proto_put_rcpt(buf, &rcpt, &error) == 0);
		ASSERT(str_len(buf) == len + CLEANUP_PROTO_HDR_SIZE);
		ASSERT(memcmp(str_c(buf) + CLEANUP_PROTO_HDR_SIZE, payload,
		    len) == 0);
		break;
	case CLEANUP_REC_FLAGS:
		(void)cleanup_proto_get_u32(payload, len, &v, &error);
		break;
	case CLEANUP_REC_STATUS:
		(void)cleanup_proto_get_status(payload, len, &status, buf,
		    &error);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *buf = str_new(256, 0), *storage = str_new(256, 0);
	const void *payload;
	const char *error;
	size_t len, used;
	int type;

	while (cleanup_proto_split(data, size, &type, &payload, &len, &used,
	    &error) == 1) {
		check_payload(type, payload, len, buf, storage);
		data += used;
		size -= used;
	}
	str_free(&buf);
	str_free(&storage);
	return 0;
}
