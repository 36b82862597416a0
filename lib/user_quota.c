/* SPDX-License-Identifier: MIT */
/*
 * user_quota - see user_quota.h
 */
#include <stdlib.h>

#include "alloc.h"
#include "config.h"
#include "map.h"
#include "str.h"
#include "user_quota.h"

struct quota_map {
	struct map *map;	/* NULL until opened */
	char *source;		/* "quota_maps SPEC" */
};

static struct quota_map *quota_maps;
static size_t n_quota_maps;
static struct str *quota_error;

/* quota_maps_init - remember $quota_maps (once per process) */
static void
quota_maps_init(const struct config *cfg)
{
	const char *const *specs;
	size_t i;

	if (quota_error != NULL)
		return;
	quota_error = str_new(0, 0);
	specs = config_list(cfg, "quota_maps", &n_quota_maps);
	quota_maps = xcalloc(n_quota_maps + 1, sizeof(*quota_maps));
	for (i = 0; i < n_quota_maps; i++)
		quota_maps[i].source = xasprintf("quota_maps %s", specs[i]);
}

/* user_quota_get - see user_quota.h */
int
user_quota_get(const struct config *cfg, const char *user,
    uint64_t own_quota, uint64_t *quota_r, const char **source_r,
    const char **error_r)
{
	struct str *value;
	const char *err;
	uint64_t q;
	size_t i;
	int r = 0;

	*quota_r = config_size(cfg, "quota_storage_limit");
	*source_r = "quota_storage_limit";
	if (own_quota != 0) {
		*quota_r = own_quota;
		*source_r = "user database";
		return 0;
	}
	quota_maps_init(cfg);
	value = str_new(0, 0);
	for (i = 0; i < n_quota_maps && r == 0; i++) {
		struct quota_map *m = &quota_maps[i];
		const char *spec = m->source + sizeof("quota_maps ") - 1;

		if (m->map == NULL &&
		    (m->map = map_open(spec, 0, &err)) == NULL) {
			str_printf(quota_error, "%s: %s", spec, err);
			r = -1;
			break;
		}
		r = map_lookup(m->map, user, value, &err);
		if (r < 0) {
			str_printf(quota_error, "%s: %s", spec, err);
			break;
		}
		if (r == 0)
			continue;
		if (!config_parse_size(str_c(value), &q)) {
			str_printf(quota_error, "%s: value \"%s\" of %s is "
			    "not a size", spec, str_c(value), user);
			r = -1;
			break;
		}
		*quota_r = q;
		*source_r = m->source;
		r = 0;
		break;
	}
	str_free(&value);
	if (r < 0) {
		*quota_r = config_size(cfg, "quota_storage_limit");
		*source_r = "quota_storage_limit";
		*error_r = str_c(quota_error);
		return -1;
	}
	return 0;
}
