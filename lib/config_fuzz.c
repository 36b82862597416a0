/* SPDX-License-Identifier: MIT */
/*
 * config_fuzz - libFuzzer target for config_parse() and expansion
 *
 * DESCRIPTION
 *	The input is a postern.conf file. It is parsed over the defaults;
 *	when that succeeds, the contract says no getter can fail, so every
 *	parameter of the table is fetched with its typed getter (which
 *	expands it) and as text and raw text. Then the value of the first
 *	line that starts with "!" (if any) is given to config_set() for
 *	every parameter: a success must leave a config whose getters all
 *	work, a failure must leave the old values. Log lines go to
 *	/dev/null.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_get_all - fetch every parameter through the getters */
static void
fuzz_get_all(const struct config *cfg)
{
	size_t i, n, k;
	const char *const *list;

	for (i = 0; config_params[i].name != NULL; i++) {
		const char *name = config_params[i].name;

		ASSERT(config_raw(cfg, name) != NULL);
		ASSERT(config_str(cfg, name) != NULL);
		(void)config_is_default(cfg, name);
		(void)config_source(cfg, name);
		switch (config_params[i].type) {
		case CONFIG_INT:
			(void)config_int(cfg, name);
			break;
		case CONFIG_BOOL:
			(void)config_bool(cfg, name);
			break;
		case CONFIG_TIME:
			(void)config_time(cfg, name);
			break;
		case CONFIG_SIZE:
			(void)config_size(cfg, name);
			break;
		case CONFIG_STR:
		case CONFIG_LIST:
			break;
		}
		list = config_list(cfg, name, &n);
		for (k = 0; k < n; k++)
			ASSERT(list[k] != NULL && list[k][0] != '\0');
		ASSERT(list[n] == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct config *cfg;
	const char *error, *bang, *nl;
	char *value, *before;
	size_t i;

	if (!init) {
		log_init("config_fuzz");
		(void)log_open_file("/dev/null");
		init = true;
	}
	cfg = config_new("/etc/postern");
	if (config_parse(cfg, (const char *)data, size, "fuzz.conf",
	    &error) < 0) {
		ASSERT(error != NULL);
		config_free(&cfg);
		return 0;
	}
	fuzz_get_all(cfg);

	bang = memchr(data, '!', size);
	if (bang != NULL) {
		size_t rest = size - (size_t)(bang - (const char *)data) - 1;

		nl = memchr(bang + 1, '\n', rest);
		value = xstrndup(bang + 1, nl != NULL ?
		    (size_t)(nl - bang - 1) : rest);
		for (i = 0; config_params[i].name != NULL; i++) {
			const char *name = config_params[i].name;

			before = xstrdup(config_str(cfg, name));
			if (config_set(cfg, name, value, &error) < 0) {
				ASSERT(error != NULL);
				ASSERT(strcmp(before, config_str(cfg, name)) == 0);
			}
			free(before);
		}
		fuzz_get_all(cfg);
		free(value);
	}
	config_free(&cfg);
	return 0;
}
