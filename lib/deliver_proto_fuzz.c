/* SPDX-License-Identifier: MIT */
/*
 * deliver_proto_fuzz - libFuzzer target for the deliver_proto decoders
 *
 * The first octet picks the decoder (request or response); the rest is
 * the message. Anything decoded must encode again and decode to the same
 * number of recipients or results (round trip).
 */
#include <stddef.h>
#include <stdint.h>

#include "deliver_proto.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error = NULL;
	struct str *buf;
	size_t used;

	if (size < 1)
		return 0;
	(void)deliver_proto_complete(data + 1, size - 1, &used, &error);
	buf = str_new(0, 0);
	if ((data[0] & 1) == 0) {
		struct deliver_request *req, *again;

		req = deliver_request_decode(data + 1, size - 1, &error);
		if (req != NULL) {
			ASSERT(deliver_request_encode(req, buf, &error) == 0);
			again = deliver_request_decode(str_c(buf), str_len(buf),
			    &error);
			ASSERT(again != NULL && again->nrcpts == req->nrcpts);
			deliver_request_free(&again);
		}
		deliver_request_free(&req);
	} else {
		struct deliver_response *res, *again;

		res = deliver_response_decode(data + 1, size - 1, &error);
		if (res != NULL) {
			ASSERT(deliver_response_encode(res, buf, &error) == 0);
			again = deliver_response_decode(str_c(buf),
			    str_len(buf), &error);
			ASSERT(again != NULL &&
			    again->nresults == res->nresults);
			deliver_response_free(&again);
		}
		deliver_response_free(&res);
	}
	str_free(&buf);
	return 0;
}
