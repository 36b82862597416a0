/* SPDX-License-Identifier: MIT */
/*
 * postern_map - build and query lookup tables (what postmap(1) does)
 *
 * DESCRIPTION
 *	postern map build FILE...   compile each source file into its
 *	                            database (db:FILE -> FILE.db, atomically,
 *	                            so readers see the old or the new table);
 *	                            a file:FILE spec is only checked
 *	postern map query SPEC KEY  print the value of KEY; exit 1 when the
 *	                            table has no such key (postmap -q)
 *	A FILE without a TYPE: prefix is db:. Bad source lines are reported
 *	as "postern: FILE:LINE: what" and make the command fail.
 */
#include <stdio.h>
#include <string.h>

#include "map.h"
#include "str.h"

#include "postern.h"

/* map_print_lines - each line of a map error list, prefixed */
static void
map_print_lines(const struct str *lines)
{
	const char *p, *end;

	for (p = str_c(lines); *p != '\0'; p = end + (*end != '\0')) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		if (end > p)
			postern_error("%.*s", (int)(end - p), p);
	}
}

static int
map_cmd_build(int argc, char **argv)
{
	struct str *errors;
	int i, rc = POSTERN_EXIT_OK;

	if (argc < 2)
		return postern_usage_error("map", "map build needs a FILE");
	errors = str_new(256, 0);
	for (i = 1; i < argc; i++) {
		str_clear(errors);
		if (map_build(argv[i], 0, errors) < 0) {
			map_print_lines(errors);
			if (str_len(errors) == 0)
				postern_error("%s: cannot build", argv[i]);
			postern_error("%s: not built (the old table, if any, is "
			    "still in use); fix the lines above and run "
			    "postern map build again", argv[i]);
			rc = POSTERN_EXIT_FAIL;
		} else {
			/* Warnings (a duplicate key) do not stop the build. */
			map_print_lines(errors);
			if (postern.verbose)
				printf("postern: %s: built\n", argv[i]);
		}
	}
	str_free(&errors);
	return rc;
}

static int
map_cmd_query(int argc, char **argv)
{
	struct map *map;
	struct str *value;
	const char *error = NULL;
	int found, rc;

	if (argc != 3)
		return postern_usage_error("map", "map query needs a SPEC and "
		    "a KEY");
	map = map_open(argv[1], 0, &error);
	if (map == NULL) {
		/* The reason names the table already. */
		postern_error("%s (a db: table is made with postern map "
		    "build FILE)", error != NULL ? error : argv[1]);
		return POSTERN_EXIT_FAIL;
	}
	value = str_new(256, 0);
	found = map_lookup(map, argv[2], value, &error);
	if (found < 0) {
		postern_error("%s: lookup of \"%s\" failed: %s", argv[1],
		    argv[2], error != NULL ? error : "error");
		rc = POSTERN_EXIT_FAIL;
	} else if (found == 0) {
		rc = POSTERN_EXIT_FAIL;
	} else {
		fwrite(str_c(value), 1, str_len(value), stdout);
		putchar('\n');
		rc = POSTERN_EXIT_OK;
	}
	str_free(&value);
	map_close(&map);
	return rc;
}

/* postern_cmd_map - map build | map query */
int
postern_cmd_map(int argc, char **argv)
{
	if (argc < 2)
		return postern_usage_error("map", "map needs build or query");
	if (postern_load_config(true) == NULL)
		return POSTERN_EXIT_FAIL;
	if (strcmp(argv[1], "build") == 0)
		return map_cmd_build(argc - 1, argv + 1);
	if (strcmp(argv[1], "query") == 0)
		return map_cmd_query(argc - 1, argv + 1);
	return postern_usage_error("map", "unknown map command \"%s\"",
	    argv[1]);
}
