/* SPDX-License-Identifier: MIT */
/*
 * master_conf_fuzz - libFuzzer target for master_conf_parse()
 *
 * DESCRIPTION
 *	The input is a master.conf file. A success must yield services
 *	whose fields keep the documented invariants (ports in range, names
 *	allow-listed, argv NULL-terminated, no two with the same name and
 *	type) and that master_service_same() finds equal to themselves; a
 *	failure must yield no config and at least one "FILE:LINE: text"
 *	error line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macros.h"
#include "master_conf.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *errors = str_new(0, 0);
	struct master_conf *mc = NULL;
	const struct master_service *s;
	size_t i, k;

	if (master_conf_parse((const char *)data, size, "f", &mc,
	    errors) < 0) {
		ASSERT(mc == NULL);
		ASSERT(str_len(errors) > 3);
		ASSERT(strncmp(str_c(errors), "f:", 2) == 0);
		ASSERT(str_c(errors)[str_len(errors) - 1] == '\n');
		str_free(&errors);
		return 0;
	}
	ASSERT(str_len(errors) == 0);
	ASSERT(mc != NULL);
	for (i = 0; i < mc->count; i++) {
		s = &mc->services[i];
		ASSERT(s->name != NULL && s->name[0] != '\0');
		ASSERT(s->argc >= 1 && s->argv[s->argc] == NULL);
		for (k = 0; k < s->argc; k++)
			ASSERT(s->argv[k] != NULL && s->argv[k][0] != '\0');
		ASSERT(strchr(s->argv[0], '/') == NULL || s->argv[0][0] == '/');
		ASSERT(strstr(s->argv[0], "/../") == NULL);
		ASSERT(s->maxproc >= -1);
		ASSERT(s->wakeup > 0 || !s->wakeup_if_used);
		if (s->type == MASTER_SERVICE_INET) {
			ASSERT(s->port >= 1 && s->port <= 65535);
		} else {
			ASSERT(s->host == NULL && s->port == 0);
			ASSERT(strchr(s->name, '/') == NULL);
			ASSERT(strcmp(s->name, "..") != 0);
		}
		ASSERT(master_service_same(s, s));
		for (k = 0; k < i; k++)
			ASSERT(mc->services[k].type != s->type ||
			    strcmp(mc->services[k].name, s->name) != 0);
	}
	master_conf_free(&mc);
	str_free(&errors);
	return 0;
}
