/* SPDX-License-Identifier: MIT */
/*
 * sieve_file - scripts on disk: the include loader and the binary cache
 *
 * DESCRIPTION
 *	The engine proper (sieve.c, sieve_parse.c, sieve_validate.c,
 *	sieve_run.c) does no I/O. This file gives lmtpd, sieved and the CLI
 *	the two file operations they share: reading included scripts from
 *	a personal and a global directory, and keeping the compiled form
 *	of a script next to it as SCRIPT.svbin. The cache is checked by
 *	content (hash of each source), not by time stamps, so a script
 *	edited within the same second is never run stale. The binary is
 *	written with safe_file_replace (temporary, fsync, rename), so a
 *	reader never sees half a file; a damaged or foreign file is
 *	ignored and rewritten.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"

#include "sieve/sieve.h"

static int
dir_load(void *ctx, enum sieve_location loc, const char *name,
    struct str *out, const char **error_r)
{
	struct sieve_dir_loader *dl = ctx;
	const char *dir = loc == SIEVE_GLOBAL ? dl->global_dir :
	    dl->personal_dir;
	char path[PATH_MAX];
	int n;

	if (dir == NULL)
		return 1;
	n = snprintf(path, sizeof(path), "%s/%s.sieve", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		*error_r = "path too long";
		return -1;
	}
	if (read_file(path, out, str_max(out)) < 0) {
		if (errno == ENOENT)
			return 1;
		free(dl->error);
		dl->error = xasprintf("%s: %s", path, errno == E2BIG ?
		    "too large" : strerror(errno));
		*error_r = dl->error;
		return -1;
	}
	return 0;
}

/* sieve_dir_loader_init - see sieve.h */
void
sieve_dir_loader_init(struct sieve_dir_loader *dl, struct sieve_loader *loader)
{
	dl->error = NULL;
	loader->load = dir_load;
	loader->ctx = dl;
}

/* sieve_dir_loader_deinit - see sieve.h */
void
sieve_dir_loader_deinit(struct sieve_dir_loader *dl)
{
	free(dl->error);
	dl->error = NULL;
}

/* sieve_cache_open - see sieve.h */
struct sieve_script *
sieve_cache_open(const char *path, const struct sieve_limits *limits,
    const struct sieve_loader *loader, struct sieve_errors *errs,
    bool *from_cache_r)
{
	struct sieve_limits deflim;
	struct sieve_script *s = NULL;
	struct str *src, *bin, *binpath;
	const char *error;

	if (from_cache_r != NULL)
		*from_cache_r = false;
	if (limits == NULL) {
		sieve_limits_default(&deflim);
		limits = &deflim;
	}
	src = str_new(4096, limits->max_script_size);
	if (read_file(path, src, limits->max_script_size) < 0) {
		struct sieve_error *e;

		if (errs != NULL) {
			errs->items = xreallocarray(errs->items, errs->count + 1,
			    sizeof(*errs->items));
			e = &errs->items[errs->count++];
			memset(e, 0, sizeof(*e));
			e->script = xstrdup(path);
			e->text = xasprintf("cannot read the script: %s",
			    errno == E2BIG ? "too large" : strerror(errno));
			errs->cap = errs->count;
			errs->errors++;
		}
		str_free(&src);
		return NULL;
	}
	binpath = str_new(256, 0);
	str_printf(binpath, "%s.svbin", path);
	bin = str_new(4096, 0);
	if (read_file(str_c(binpath), bin, 64 * 1024 * 1024) == 0 &&
	    sieve_script_load(str_c(bin), str_len(bin), str_c(src),
	    str_len(src), limits, loader, &s, &error) == 0) {
		if (from_cache_r != NULL)
			*from_cache_r = true;
	} else {
		const char *base = strrchr(path, '/');

		base = base != NULL ? base + 1 : path;
		s = sieve_compile(base, str_c(src), str_len(src), limits,
		    loader, errs);
		if (s != NULL) {
			str_clear(bin);
			sieve_script_save(s, bin);
			/* best effort: a read-only directory is fine */
			(void)safe_file_replace(str_c(binpath), str_c(bin),
			    str_len(bin), 0600);
		}
	}
	str_free(&bin);
	str_free(&binpath);
	str_free(&src);
	return s;
}
