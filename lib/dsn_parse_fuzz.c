/* SPDX-License-Identifier: MIT */
/*
 * dsn_parse_fuzz - libFuzzer target for dsn_parse()
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dsn_parse_result res;
	char *p = malloc(size + 1);
	size_t i;

	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	dsn_parse(p, size, &res);
	if (res.count > DSN_PARSE_MAX)
		abort();
	for (i = 0; i < res.count; i++)
		if (strlen(res.rcpts[i].recipient) >= sizeof(res.rcpts[i].recipient))
			abort();
	free(p);
	return 0;
}
