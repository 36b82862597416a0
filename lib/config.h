/* SPDX-License-Identifier: MIT */
/*
 * config - postern.conf: typed parameters with defaults and $name expansion
 *
 * Every parameter Postern knows is in one table (config_params.c) with its
 * type, default and a one-line description; `postern config -d` prints it.
 * A daemon adds its parameters to that table, never reads unknown names.
 *
 * File syntax (like Postfix main.cf): "name = value" lines; '#' comment
 * lines and blank lines are ignored; a line starting with white space
 * continues the previous one (joined with one space). Values may refer to
 * other parameters as $name, ${name} or $(name); expansion happens at
 * lookup time, recursively, with a depth limit (a loop is a config error
 * found at load time). "$$" is a literal dollar.
 *
 * Errors: config_load() reports each problem as "FILE:LINE: what is wrong"
 * through log_error (and unknown parameter names as warnings), then
 * returns -1 if any line was an error; *error_r then says how many.
 * Values are checked against their type at load time (a bad number, time
 * or boolean is an error with its file:line), so the typed getters below
 * cannot fail on a loaded config; asking for a name that is not in the
 * table is a caller bug and panics.
 *
 * Pointers returned by getters stay valid until the config is changed or
 * freed.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_type {
	CONFIG_STR,		/* any text */
	CONFIG_INT,		/* decimal integer >= 0 */
	CONFIG_BOOL,		/* yes/no (also true/false, on/off, 1/0) */
	CONFIG_TIME,		/* number with optional unit s m h d w (default s) */
	CONFIG_SIZE,		/* bytes, optional k m g suffix (powers of 1024) */
	CONFIG_LIST,		/* items separated by commas and/or white space */
};

struct config_param {
	const char *name;
	enum config_type type;
	const char *def;	/* default value (text, may contain $name) */
	const char *desc;	/* one line for `postern config -d -v` and the man page */
};

/* The table of every parameter, sorted by name; NULL-name terminated. */
extern const struct config_param config_params[];

/* config_param_find - the table entry for name, or NULL */
const struct config_param *config_param_find(const char *name);

struct config;

/* config_new - a config holding only the defaults; config_directory = dir */
struct config *config_new(const char *config_directory);
void config_free(struct config **cfgp);

/* config_load - read a postern.conf file over the current values (see above) */
int config_load(struct config *cfg, const char *path, const char **error_r);
/* config_parse - the same from memory (for tests and fuzzing); filename names errors */
int config_parse(struct config *cfg, const char *data, size_t len,
    const char *filename, const char **error_r);

/*
 * config_set - set one value (master.conf "-o name=value", tests). Returns
 * -1 with *error_r (static text) if the name is unknown or the value does
 * not parse as the parameter's type.
 */
int config_set(struct config *cfg, const char *name, const char *value,
    const char **error_r);

/* config_raw - the value as written (unexpanded) */
const char *config_raw(const struct config *cfg, const char *name);
/* config_is_default - true if the value was not set by a file or config_set */
bool config_is_default(const struct config *cfg, const char *name);
/* config_source - "FILE:LINE" where the value was set, or NULL for defaults */
const char *config_source(const struct config *cfg, const char *name);

/* Typed getters: the expanded value. See above for failure (there is none). */
const char *config_str(const struct config *cfg, const char *name);
uint64_t config_int(const struct config *cfg, const char *name);
bool config_bool(const struct config *cfg, const char *name);
unsigned config_time(const struct config *cfg, const char *name); /* seconds */
uint64_t config_size(const struct config *cfg, const char *name); /* bytes */
/*
 * config_list - the expanded value split into items; *count_r items; the
 * array and strings are owned by cfg and live as long as the value.
 */
const char *const *config_list(const struct config *cfg, const char *name,
    size_t *count_r);

/*
 * config_parse_size - parse s as a CONFIG_SIZE value (bytes, optional
 * k/m/g suffix, powers of 1024); false if it is not one. For tools that
 * take sizes on their command line.
 */
bool config_parse_size(const char *s, uint64_t *value_r);

/*
 * The process-wide configuration of a daemon or the CLI, set once by the
 * server skeleton or main(). conf() panics if none was set.
 */
void config_set_global(struct config *cfg);	/* takes ownership */
struct config *conf(void);

#endif
