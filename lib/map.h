/* SPDX-License-Identifier: MIT */
/*
 * map - one lookup interface for tables: "type:name"
 *
 *	db:/etc/postern/aliases    Berkeley DB btree /etc/postern/aliases.db,
 *	                           made by `postern map build /etc/postern/aliases`
 *	file:/etc/postern/access   the plain text file itself, loaded in memory
 *	ldap:/etc/postern/ldap-aliases.cf
 *	                           an LDAP search per lookup, configured by that
 *	                           file as Postfix's ldap_table(5): server_host,
 *	                           search_base, scope, query_filter (%s %u %d,
 *	                           escaped), result_attribute, bind_dn, bind_pw
 *	                           or bind_pw_file, timeout, start_tls,
 *	                           tls_ca_cert_file, tls_require_cert (a TLS
 *	                           failure is a lookup error; lib/ldapdir.h). All
 *	                           values of the result attributes of all
 *	                           entries found, joined with ", ". The
 *	                           connection is reused and reconnects; a
 *	                           changed .cf file is re-read. map_build only
 *	                           checks the file.
 *
 * A spec without a type is db:. Source text format (db: and file:): one
 * "key value" per line, key and value separated by white space (or a ':'
 * right after the key, as in aliases files); '#' comment lines and blank
 * lines ignored; a line starting with white space continues the value.
 * Keys are folded to lower case at build and lookup time (mail addresses
 * and domains are case-insensitive) unless MAP_CASE_SENSITIVE is given.
 *
 * A map notices when its file was replaced (by map_build's atomic rename)
 * and reopens it, so long-running daemons see new data without restart;
 * a lookup never sees a half-written table.
 *
 * Errors return -1 with *error_r: a reason the caller logs (it may point
 * into the map and is valid until the next call on it). Bad lines in a
 * source file are errors naming FILE:LINE.
 */
#ifndef POSTERN_MAP_H
#define POSTERN_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define MAP_CASE_SENSITIVE 1

struct map;

/* map_open - open spec; NULL with *error_r on failure (unknown type, missing file) */
struct map *map_open(const char *spec, int flags, const char **error_r);
void map_close(struct map **mapp);
const char *map_spec(const struct map *map);

/* map_lookup - 1 and the value in value_r (replaced), 0 if absent, -1 on error */
int map_lookup(struct map *map, const char *key, struct str *value_r,
    const char **error_r);

/*
 * map_build - compile the text source of spec into its database (db:
 * PATH.db from PATH) atomically; a file: map needs no build and is only
 * checked. Problems go into errors as "FILE:LINE: what" lines; -1 if any.
 */
int map_build(const char *spec, int flags, struct str *errors);

/*
 * map_parse_text - parse source text, calling cb per entry (shared by build, file: and fuzzing)
 * cb gets the (folded) key and the value as C strings valid during the
 * call, once per distinct key (a duplicate is a "FILE:LINE: warning: ..."
 * line in errors, the first value kept, and not an error); cb returns 0
 * to go on or -1 to stop, which fails the parse. Returns -1 if any error
 * line was written, else 0. errors may be NULL.
 */
typedef int map_entry_cb(void *ctx, const char *key, const char *value);
int map_parse_text(const char *data, size_t len, const char *filename,
    int flags, map_entry_cb *cb, void *ctx, struct str *errors);

#endif
