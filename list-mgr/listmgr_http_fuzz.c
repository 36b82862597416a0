/* SPDX-License-Identifier: MIT */
/*
 * listmgr_http_fuzz - libFuzzer target: list-mgr's HTTP request parser
 *
 * DESCRIPTION
 *	The input is a request head (any bytes): parsed as it is; when it
 *	parses, the query string's parameters are looked up, and the
 *	request's results must be consistent (a path starting with '/', a
 *	length within the body limit). The input is also parsed as a form
 *	body. The fuzz build links only this object and libpostern, so
 *	the parser (which uses nothing else of list-mgr) is included here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "listmgr_httpreq.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "list", "member", "token",
	    "List-Unsubscribe" };
	struct listmgr_http_req req;
	struct str *v = str_new(0, 0);
	const char *p = (const char *)data;
	size_t i;
	int rc;

	listmgr_http_req_init(&req);
	rc = listmgr_http_parse_head(p, size, &req);
	if (rc == 0) {
		if (str_len(req.path) == 0 || str_c(req.path)[0] != '/')
			abort();
		if (req.have_length &&
		    req.content_length > LISTMGR_HTTP_BODY_MAX)
			abort();
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (listmgr_http_param(str_c(req.query),
			    str_len(req.query), names[i], v) < 0 &&
			    str_len(v) != 0)
				abort();
	} else if (rc != 400 && rc != 413 && rc != 431 && rc != 501 &&
	    rc != 505)
		abort();
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (listmgr_http_param(p, size, names[i], v) == 1 &&
		    memchr(str_c(v), '\0', str_len(v)) != NULL)
			abort();
	}
	listmgr_http_req_free(&req);
	str_free(&v);
	return 0;
}
