/* SPDX-License-Identifier: MIT */
/*
 * config - postern.conf parsing, typed lookups and $name expansion
 *
 * DESCRIPTION
 *	See config.h for the contract. A struct config has one entry per
 *	parameter of config_params[] (same order, so a table index is an
 *	entry index), followed by the user-defined names a file set: those
 *	are warned about as unknown, but kept so that other values may
 *	refer to them as $name (as Postfix main.cf allows). Getters never
 *	take a user-defined name: that is a caller bug and panics.
 *
 *	Syntax (Postfix main.cf): a logical line starts with a non-blank
 *	character; a line that starts with white space continues it, joined
 *	with one space (leading and trailing white space of every piece is
 *	dropped). Lines whose first non-blank character is '#' and blank
 *	lines are ignored anywhere, also between a line and its
 *	continuation. A '#' after the value is part of the value, as in
 *	Postfix. A logical line is "name = value"; the name is made of
 *	[A-Za-z0-9_]. Line ends may be LF or CRLF. NUL bytes and other
 *	control characters except tab are errors, as are lines longer than
 *	CONFIG_LINE_MAX bytes. The last setting of a name wins.
 *
 *	Expansion: $name, ${name} and $(name) insert the expanded value of
 *	another parameter; "$$" is one '$'. A '$' followed by anything else,
 *	a reference to a name that is neither in the table nor set in the
 *	file, a loop, a chain deeper than CONFIG_EXPAND_DEPTH or a result
 *	longer than CONFIG_VALUE_MAX are errors. Every value is expanded and
 *	type-checked when a file is loaded and after every config_set(), so
 *	the getters cannot fail on a config that loaded cleanly. Expanded
 *	values are cached per entry, and every change drops the whole cache
 *	(a value may depend on any other). Expansion memoises, so a value
 *	like "$a$a$a" with "a = $b$b$b" costs linear time, not exponential.
 *
 *	Computed defaults: a table entry whose default is NULL gets its
 *	default from a function here (config_computed[]): myhostname is the
 *	host name from gethostname(), made fully qualified through the
 *	resolver when it has no dot (computed once per process); mydomain
 *	is $myhostname minus its first label, or "localdomain" when that
 *	has no dot. config_raw() returns the computed text for these.
 *
 * ERRORS
 *	config_load()/config_parse() log every problem once, as "FILE:LINE:
 *	text" (log_error; unknown names with log_warn), keep going, and
 *	return -1 if there was any error; *error_r then points to
 *	"FILE: N errors", owned by cfg and valid until the next call that
 *	sets it or config_free(). A failed load leaves cfg holding part of
 *	the file: discard it. Getters on such a config panic if the value
 *	they need could not be expanded. Nothing here exits on bad input;
 *	out of memory is fatal (alloc.h), wrong use of the API panics.
 *
 *	The getters take a const config but fill its cache, so one config
 *	must not be read from two threads at once (Postern has none).
 *
 * SEE ALSO
 *	postern.conf(5), config_params.c
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "str.h"

#define CONFIG_FILE_MAX		(4 * 1024 * 1024)	/* bytes in one file */
#define CONFIG_LINE_MAX		65536	/* bytes in one logical line */
#define CONFIG_NAME_MAX		100	/* bytes in a parameter name */
#define CONFIG_VALUE_MAX	65536	/* bytes in an expanded value */
#define CONFIG_EXPAND_DEPTH	50	/* nested $name references */
#define CONFIG_SHOW_MAX		80	/* bytes of a bad value in a message */

enum config_state {
	CONFIG_STATE_NONE,		/* not expanded since the last change */
	CONFIG_STATE_BUSY,		/* being expanded (loop detection) */
	CONFIG_STATE_DONE,		/* expanded is valid */
	CONFIG_STATE_FAILED,		/* could not be expanded, reported */
};

struct config_entry {
	const struct config_param *param;	/* NULL: user-defined */
	char *name;		/* user-defined names only */
	char *value;		/* as written; NULL = table default */
	char *source;		/* "FILE:LINE"; NULL = not set by a file */
	unsigned line;		/* the LINE of source, 0 if none */
	bool set;		/* set by a file or config_set() */

	/* Cache, dropped by config_cache_clear() on every change. */
	enum config_state state;
	char *expanded;
	char *computed;		/* a computed default */
	char *list_buf;		/* expanded, with NULs between items */
	const char **list;
	size_t list_count;
};

struct config {
	struct config_entry *entries;	/* table entries, then user-defined */
	size_t nparams;		/* entries from config_params[] */
	size_t count;		/* all entries */
	size_t cap;		/* allocated entries */
	char *error;		/* text behind the last *error_r */
};

/* What went wrong during an expansion, and where. */
struct config_fail {
	size_t entry;		/* the entry whose value is at fault */
	const char *why;	/* static text */
	const char *ref;	/* the reference involved, or NULL */
	size_t ref_len;
	size_t path[CONFIG_EXPAND_DEPTH + 2];	/* entries being expanded */
	size_t depth;		/* entries in path now */
	size_t loop_start;	/* loops: path[loop_start..loop_end) */
	size_t loop_end;
	bool loop;
};

static struct config *config_global;

static int config_expand(const struct config *, size_t, struct config_fail *);

/* config_is_name_char - may c appear in a parameter name? */
static bool
config_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* config_entry_name - the name of entry i */
static const char *
config_entry_name(const struct config *cfg, size_t i)
{
	const struct config_entry *e = &cfg->entries[i];

	return e->param != NULL ? e->param->name : e->name;
}

/* config_index_n - the entry for name[0..len), or (size_t)-1 */
static size_t
config_index_n(const struct config *cfg, const char *name, size_t len)
{
	char buf[CONFIG_NAME_MAX + 1];
	const struct config_param *p;
	size_t i;

	if (len == 0 || len > CONFIG_NAME_MAX)
		return (size_t)-1;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if ((p = config_param_find(buf)) != NULL)
		return (size_t)(p - config_params);
	for (i = cfg->nparams; i < cfg->count; i++)
		if (strcmp(cfg->entries[i].name, buf) == 0)
			return i;
	return (size_t)-1;
}

/* config_index - the table entry for name; panics if it is not there */
static size_t
config_index(const struct config *cfg, const char *name)
{
	const struct config_param *p = config_param_find(name);

	if (p == NULL)
		log_panic(NULL, "config: no such parameter: %s", name);
	ASSERT((size_t)(p - config_params) < cfg->nparams);
	return (size_t)(p - config_params);
}

/* config_entry_clear_cache - drop what was derived from one value */
static void
config_entry_clear_cache(struct config_entry *e)
{
	XFREE(e->expanded);
	XFREE(e->computed);
	XFREE(e->list_buf);
	free(e->list);
	e->list = NULL;
	e->list_count = 0;
	e->state = CONFIG_STATE_NONE;
}

/* config_cache_clear - drop every cached expansion */
static void
config_cache_clear(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->count; i++)
		config_entry_clear_cache(&cfg->entries[i]);
}

/*
 * Computed defaults.
 */

/* config_hostname_ok - is s a plausible host name (letters, digits, - .)? */
static bool
config_hostname_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!config_is_name_char(c) && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* config_default_hostname - this host's name, fully qualified if known */
static const char *
config_default_hostname(void)
{
	static char name[256];
	struct addrinfo hints, *res = NULL;

	if (name[0] != '\0')
		return name;
	if (gethostname(name, sizeof(name) - 1) < 0 || !config_hostname_ok(name))
		pst_strlcpy(name, "localhost", sizeof(name));
	if (strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
		    res->ai_canonname != NULL &&
		    strchr(res->ai_canonname, '.') != NULL &&
		    config_hostname_ok(res->ai_canonname) &&
		    strlen(res->ai_canonname) < sizeof(name))
			pst_strlcpy(name, res->ai_canonname, sizeof(name));
		if (res != NULL)
			freeaddrinfo(res);
	}
	return name;
}

/* config_compute_myhostname - the default of myhostname */
static int
config_compute_myhostname(const struct config *cfg, size_t i,
    struct config_fail *fail)
{
	(void)fail;
	cfg->entries[i].computed = xstrdup(config_default_hostname());
	return 0;
}

/* config_expand_ref - expand entry j, referenced by entry cur */
static int
config_expand_ref(const struct config *cfg, size_t cur, size_t j,
    struct config_fail *fail)
{
	size_t k;

	if (cfg->entries[j].state == CONFIG_STATE_BUSY) {
		fail->entry = cur;
		fail->why = "expansion loop";
		fail->ref = NULL;
		fail->loop = true;
		fail->loop_start = 0;
		fail->loop_end = fail->depth;
		for (k = 0; k < fail->depth; k++)
			if (fail->path[k] == j)
				fail->loop_start = k;
		return -1;
	}
	return config_expand(cfg, j, fail);
}

/* config_compute_mydomain - the default of mydomain: $myhostname minus a label */
static int
config_compute_mydomain(const struct config *cfg, size_t i,
    struct config_fail *fail)
{
	size_t h = config_index(cfg, "myhostname");
	const char *dot;

	if (config_expand_ref(cfg, i, h, fail) < 0)
		return -1;
	dot = strchr(cfg->entries[h].expanded, '.');
	cfg->entries[i].computed = xstrdup(dot != NULL && dot[1] != '\0' ?
	    dot + 1 : "localdomain");
	return 0;
}

static const struct {
	const char *name;
	int (*compute)(const struct config *, size_t, struct config_fail *);
} config_computed[] = {
	{ "mydomain", config_compute_mydomain },
	{ "myhostname", config_compute_myhostname },
};

/* config_compute - fill in the computed default of entry i */
static int
config_compute(const struct config *cfg, size_t i, struct config_fail *fail)
{
	const char *name = config_entry_name(cfg, i);
	size_t k;

	for (k = 0; k < N_ELEMENTS(config_computed); k++)
		if (strcmp(config_computed[k].name, name) == 0)
			return config_computed[k].compute(cfg, i, fail);
	log_panic(NULL, "config: %s has no default and no function to compute one",
	    name);
}

/*
 * Expansion.
 */

/* config_expand_text - expand raw text into out (the value of the current entry) */
static int
config_expand_text(const struct config *cfg, size_t cur, const char *raw,
    struct str *out, struct config_fail *fail)
{
	const char *p = raw, *dollar, *name;
	size_t len;
	char close;

	while ((dollar = strchr(p, '$')) != NULL) {
		if (str_append(out, p, (size_t)(dollar - p)) < 0)
			goto too_long;
		p = dollar + 1;
		if (*p == '$') {
			if (str_append_c(out, '$') < 0)
				goto too_long;
			p++;
			continue;
		}
		if (*p == '{' || *p == '(') {
			close = *p == '{' ? '}' : ')';
			name = ++p;
			while (config_is_name_char(*p))
				p++;
			len = (size_t)(p - name);
			if (len == 0 || *p != close) {
				fail->entry = cur;
				fail->why = *p == '\0' ?
				    "unterminated parameter reference" :
				    "bad parameter name in reference";
				fail->ref = name - 2;
				fail->ref_len = (size_t)(p - fail->ref) +
				    (*p != '\0');
				return -1;
			}
			p++;
		} else {
			name = p;
			while (config_is_name_char(*p))
				p++;
			len = (size_t)(p - name);
			if (len == 0) {
				fail->entry = cur;
				fail->why = "'$' not followed by a parameter "
				    "name (write $$ for a '$')";
				fail->ref = NULL;
				return -1;
			}
		}
		{
			size_t j = config_index_n(cfg, name, len);

			if (j == (size_t)-1) {
				fail->entry = cur;
				fail->why = "reference to an undefined parameter";
				fail->ref = name;
				fail->ref_len = len;
				return -1;
			}
			if (config_expand_ref(cfg, cur, j, fail) < 0)
				return -1;
			if (str_append_cstr(out, cfg->entries[j].expanded) < 0)
				goto too_long;
		}
	}
	if (str_append_cstr(out, p) < 0)
		goto too_long;
	return 0;

too_long:
	fail->entry = cur;
	fail->why = "expanded value too long";
	fail->ref = NULL;
	return -1;
}

/*
 * config_expand - make cfg->entries[i].expanded valid. On failure fill in
 * fail (for the first failure only) and return -1; entries that fail are
 * marked, so they are reported once.
 */
static int
config_expand(const struct config *cfg, size_t i, struct config_fail *fail)
{
	struct config_entry *e = &cfg->entries[i];
	struct str *out;
	const char *raw;

	if (e->state == CONFIG_STATE_DONE)
		return 0;
	if (e->state == CONFIG_STATE_FAILED) {
		fail->why = NULL;	/* already reported */
		return -1;
	}
	ASSERT(e->state == CONFIG_STATE_NONE);
	if (fail->depth > CONFIG_EXPAND_DEPTH) {
		fail->entry = i;
		fail->why = "parameter references nested too deeply";
		fail->ref = NULL;
		return -1;
	}
	fail->path[fail->depth++] = i;
	e->state = CONFIG_STATE_BUSY;

	raw = e->value;
	if (raw == NULL && e->param->def != NULL)
		raw = e->param->def;
	if (raw == NULL) {
		/* A computed default is final text: no second expansion. */
		if (e->computed == NULL && config_compute(cfg, i, fail) < 0)
			goto fail;
		e->expanded = xstrdup(e->computed);
	} else {
		out = str_new(strlen(raw), CONFIG_VALUE_MAX);
		if (config_expand_text(cfg, i, raw, out, fail) < 0) {
			str_free(&out);
			goto fail;
		}
		e->expanded = str_steal(&out);
	}
	e->state = CONFIG_STATE_DONE;
	fail->depth--;
	return 0;

fail:
	/* The innermost failure set fail->entry; keep it. */
	e->state = CONFIG_STATE_FAILED;
	fail->depth--;
	return -1;
}

/* config_expanded - the expanded value of entry i; panics if it has none */
static const char *
config_expanded(const struct config *cfg, size_t i)
{
	struct config_fail fail;

	memset(&fail, 0, sizeof(fail));
	if (config_expand(cfg, i, &fail) < 0)
		log_panic(NULL, "config: parameter %s cannot be expanded%s%s",
		    config_entry_name(cfg, i), fail.why != NULL ? ": " : "",
		    fail.why != NULL ? fail.why : "");
	return cfg->entries[i].expanded;
}

/*
 * Type checks on expanded text.
 */

/* config_parse_bool - yes/no, true/false, on/off, 1/0, any case */
static bool
config_parse_bool(const char *s, bool *value_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < N_ELEMENTS(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*value_r = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*value_r = false;
			return true;
		}
	}
	return false;
}

/* config_parse_scaled - digits then at most one unit letter from units */
static bool
config_parse_scaled(const char *s, const char *units,
    const uint64_t *mults, uint64_t max, uint64_t *value_r)
{
	size_t n = strlen(s), digits = n;
	uint64_t mult = 1;
	unsigned long v;
	const char *u;

	if (n > 0 && (s[n - 1] < '0' || s[n - 1] > '9')) {
		if ((u = strchr(units, s[n - 1])) == NULL)
			return false;
		mult = mults[u - units];
		digits = n - 1;
	}
	if (!str_to_ulong(s, digits, ULONG_MAX, &v))
		return false;
	if ((uint64_t)v > max / mult)
		return false;
	*value_r = (uint64_t)v * mult;
	return true;
}

/* config_parse_time - seconds, with optional unit s m h d w */
static bool
config_parse_time(const char *s, unsigned *value_r)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400, 604800 };
	uint64_t v;

	if (!config_parse_scaled(s, "smhdw", mults, UINT_MAX, &v))
		return false;
	*value_r = (unsigned)v;
	return true;
}

/* config_parse_size - bytes, with optional k m g (either case, powers of 1024) */
bool
config_parse_size(const char *s, uint64_t *value_r)
{
	static const uint64_t mults[] = {
		1024, 1024 * 1024, 1024 * 1024 * 1024,
		1024, 1024 * 1024, 1024 * 1024 * 1024,
	};

	return config_parse_scaled(s, "kmgKMG", mults, UINT64_MAX, value_r);
}

/* config_type_check - NULL if s is a valid value of type, else static text */
static const char *
config_type_check(enum config_type type, const char *s)
{
	unsigned long ul;
	unsigned t;
	uint64_t u;
	bool b;

	switch (type) {
	case CONFIG_STR:
	case CONFIG_LIST:
		return NULL;
	case CONFIG_INT:
		return str_to_ulong(s, strlen(s), ULONG_MAX, &ul) ? NULL :
		    "bad integer value (want a decimal number)";
	case CONFIG_BOOL:
		return config_parse_bool(s, &b) ? NULL :
		    "bad boolean value (want yes or no)";
	case CONFIG_TIME:
		return config_parse_time(s, &t) ? NULL :
		    "bad time value (want a number with an optional unit "
		    "s, m, h, d or w)";
	case CONFIG_SIZE:
		return config_parse_size(s, &u) ? NULL :
		    "bad size value (want a number with an optional unit "
		    "k, m or g)";
	}
	log_panic(NULL, "config: bad type %d", (int)type);
}

/* A problem found by config_check(), logged in file order. */
struct config_report {
	unsigned line;
	size_t seq;
	char *text;
};

/* config_report_cmp - qsort: by line, then in the order found */
static int
config_report_cmp(const void *a, const void *b)
{
	const struct config_report *ra = a, *rb = b;

	if (ra->line != rb->line)
		return ra->line < rb->line ? -1 : 1;
	return ra->seq < rb->seq ? -1 : ra->seq > rb->seq;
}

/*
 * config_check - expand and type-check every entry. With report set, log
 * each problem and return how many there were; else stop at the first and
 * return 1 with *why_r.
 */
static unsigned
config_check(const struct config *cfg, bool report, const char **why_r)
{
	struct config_fail fail;
	struct str *msg = str_new(128, 0);
	struct config_report *reports = NULL;
	unsigned errors = 0;
	const char *where, *why;
	size_t i, k, at;

	config_cache_clear(cfg);
	for (i = 0; i < cfg->count && (report || errors == 0); i++) {
		memset(&fail, 0, sizeof(fail));
		if (config_expand(cfg, i, &fail) < 0) {
			if (fail.why == NULL)
				continue;	/* reported with another entry */
			errors++;
			if (!report) {
				*why_r = fail.why;
				break;
			}
			/* Blame the loop on an entry that a file set. */
			at = fail.entry;
			if (fail.loop) {
				for (k = fail.loop_start; k < fail.loop_end; k++) {
					if (cfg->entries[fail.path[k]].source != NULL) {
						at = fail.path[k];
						break;
					}
				}
			}
			where = cfg->entries[at].source;
			str_clear(msg);
			if (fail.loop) {
				str_append_cstr(msg, ": ");
				for (k = fail.loop_start; k < fail.loop_end; k++)
					str_printf(msg, "$%s -> ",
					    config_entry_name(cfg, fail.path[k]));
				str_printf(msg, "$%s", config_entry_name(cfg,
				    fail.path[fail.loop_start]));
			} else if (fail.ref != NULL) {
				str_append_cstr(msg, ": ");
				mem_printable(msg, fail.ref, fail.ref_len,
				    CONFIG_SHOW_MAX);
			}
			reports = xreallocarray(reports, errors,
			    sizeof(*reports));
			reports[errors - 1].line = cfg->entries[at].line;
			reports[errors - 1].seq = errors;
			reports[errors - 1].text = xasprintf("%s: parameter %s: "
			    "%s%s", where != NULL ? where : "(default value)",
			    config_entry_name(cfg, at), fail.why, str_c(msg));
			continue;
		}
		if (cfg->entries[i].param == NULL)
			continue;
		why = config_type_check(cfg->entries[i].param->type,
		    cfg->entries[i].expanded);
		if (why == NULL)
			continue;
		errors++;
		if (!report) {
			*why_r = why;
			break;
		}
		str_clear(msg);
		mem_printable(msg, cfg->entries[i].expanded,
		    strlen(cfg->entries[i].expanded), CONFIG_SHOW_MAX);
		where = cfg->entries[i].source;
		reports = xreallocarray(reports, errors, sizeof(*reports));
		reports[errors - 1].line = cfg->entries[i].line;
		reports[errors - 1].seq = errors;
		reports[errors - 1].text = xasprintf("%s: parameter %s: %s: "
		    "\"%s\"", where != NULL ? where : "(default value)",
		    config_entry_name(cfg, i), why, str_c(msg));
	}
	str_free(&msg);
	if (reports != NULL) {
		qsort(reports, errors, sizeof(*reports), config_report_cmp);
		for (k = 0; k < errors; k++) {
			log_error(NULL, "%s", reports[k].text);
			free(reports[k].text);
		}
		free(reports);
	}
	return errors;
}

/*
 * Life cycle.
 */

/* config_new - a config holding only the defaults */
struct config *
config_new(const char *config_directory)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	size_t i, n = 0;

	while (config_params[n].name != NULL)
		n++;
	cfg->entries = xcalloc(n, sizeof(*cfg->entries));
	cfg->nparams = cfg->count = cfg->cap = n;
	for (i = 0; i < n; i++)
		cfg->entries[i].param = &config_params[i];
	if (config_directory != NULL) {
		i = config_index(cfg, "config_directory");
		cfg->entries[i].value = xstrdup(config_directory);
	}
	return cfg;
}

/* config_free - free *cfgp (NULL allowed) and set it to NULL */
void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	size_t i;

	if (cfg == NULL)
		return;
	*cfgp = NULL;
	if (cfg == config_global)
		config_global = NULL;
	for (i = 0; i < cfg->count; i++) {
		struct config_entry *e = &cfg->entries[i];

		config_entry_clear_cache(e);
		free(e->name);
		free(e->value);
		free(e->source);
	}
	free(cfg->entries);
	free(cfg->error);
	free(cfg);
}

/* config_store - record name = value from file:line */
static void
config_store(struct config *cfg, const char *name, size_t name_len,
    const char *value, size_t value_len, const char *filename,
    unsigned lineno)
{
	struct config_entry *e;
	size_t i = config_index_n(cfg, name, name_len);

	if (i == (size_t)-1) {
		log_warn(NULL, "%s:%u: unknown parameter name \"%.*s\"",
		    filename, lineno, (int)name_len, name);
		if (cfg->count == cfg->cap) {
			cfg->cap = cfg->cap * 2 + 16;
			cfg->entries = xreallocarray(cfg->entries, cfg->cap,
			    sizeof(*cfg->entries));
		}
		i = cfg->count++;
		memset(&cfg->entries[i], 0, sizeof(cfg->entries[i]));
		cfg->entries[i].name = xstrndup(name, name_len);
	}
	e = &cfg->entries[i];
	free(e->value);
	free(e->source);
	e->value = xstrndup(value, value_len);
	e->source = xasprintf("%s:%u", filename, lineno);
	e->line = lineno;
	e->set = true;
}

/* config_is_blank - space or tab */
static bool
config_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* config_trim - drop leading and trailing blanks of p[0..*len) */
static const char *
config_trim(const char *p, size_t *len)
{
	size_t n = *len;

	while (n > 0 && config_is_blank(*p)) {
		p++;
		n--;
	}
	while (n > 0 && config_is_blank(p[n - 1]))
		n--;
	*len = n;
	return p;
}

/* config_parse_line - one logical line "name = value"; false on error */
static bool
config_parse_line(struct config *cfg, const char *p, size_t n,
    const char *filename, unsigned lineno)
{
	const char *name = p, *value;
	size_t name_len, i, eq;
	struct str *show;

	for (i = 0; i < n && p[i] != '=' && !config_is_blank(p[i]); i++)
		;
	name_len = i;
	while (i < n && config_is_blank(p[i]))
		i++;
	if (name_len == 0) {
		log_error(NULL, "%s:%u: missing parameter name before '='",
		    filename, lineno);
		return false;
	}
	show = str_new(64, 0);
	mem_printable(show, name, name_len, CONFIG_SHOW_MAX);
	if (i == n || p[i] != '=') {
		log_error(NULL, "%s:%u: missing '=' after parameter name "
		    "\"%s\"", filename, lineno, str_c(show));
		str_free(&show);
		return false;
	}
	eq = i;
	for (i = 0; i < name_len; i++) {
		if (!config_is_name_char(name[i])) {
			log_error(NULL, "%s:%u: bad parameter name \"%s\" "
			    "(use letters, digits and '_')", filename, lineno,
			    str_c(show));
			str_free(&show);
			return false;
		}
	}
	if (name_len > CONFIG_NAME_MAX) {
		log_error(NULL, "%s:%u: parameter name \"%s\" too long",
		    filename, lineno, str_c(show));
		str_free(&show);
		return false;
	}
	str_free(&show);
	value = p + eq + 1;
	n -= eq + 1;
	value = config_trim(value, &n);
	config_store(cfg, name, name_len, value, n, filename, lineno);
	return true;
}

/* config_parse - parse postern.conf text from memory */
int
config_parse(struct config *cfg, const char *data, size_t len,
    const char *filename, const char **error_r)
{
	struct str *logical = str_new(256, CONFIG_LINE_MAX);
	unsigned lineno = 0, start_line = 0, errors = 0;
	bool have = false, broken = false;
	size_t pos = 0, n, i;
	const char *line, *nl, *text;

	while (pos < len) {
		bool bad = false;

		line = data + pos;
		nl = memchr(line, '\n', len - pos);
		n = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += n + (nl != NULL);
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > CONFIG_LINE_MAX) {
			log_error(NULL, "%s:%u: line too long (more than %d "
			    "bytes)", filename, lineno, CONFIG_LINE_MAX);
			bad = true;
		} else {
			for (i = 0; i < n; i++) {
				unsigned char c = (unsigned char)line[i];

				if (c == '\0' || (c < 0x20 && c != '\t') ||
				    c == 0x7f) {
					log_error(NULL, "%s:%u: %s in line",
					    filename, lineno, c == '\0' ?
					    "NUL byte" : "control character");
					bad = true;
					break;
				}
			}
		}
		if (bad)
			errors++;

		/* Blank lines and comments are skipped wherever they are. */
		for (i = 0; i < n && config_is_blank(line[i]); i++)
			;
		if (i == n || line[i] == '#')
			continue;

		if (i > 0) {
			/* A continuation line. */
			if (!have) {
				if (!bad) {
					log_error(NULL, "%s:%u: continuation line "
					    "(starts with white space) without "
					    "a parameter line before it",
					    filename, lineno);
					errors++;
				}
				continue;
			}
			if (bad)
				broken = true;
			if (broken)
				continue;
			text = config_trim(line, &n);
			if (str_append_c(logical, ' ') < 0 ||
			    str_append(logical, text, n) < 0) {
				log_error(NULL, "%s:%u: line too long (more than "
				    "%d bytes with its continuation lines)",
				    filename, start_line, CONFIG_LINE_MAX);
				errors++;
				broken = true;
			}
			continue;
		}

		/* A new logical line: finish the previous one. */
		if (have && !broken &&
		    !config_parse_line(cfg, str_c(logical), str_len(logical),
		    filename, start_line))
			errors++;
		have = true;
		broken = bad;
		start_line = lineno;
		str_clear(logical);
		if (!bad) {
			text = config_trim(line, &n);
			(void)str_append(logical, text, n);
		}
	}
	if (have && !broken &&
	    !config_parse_line(cfg, str_c(logical), str_len(logical),
	    filename, start_line))
		errors++;
	str_free(&logical);

	errors += config_check(cfg, true, NULL);
	if (errors == 0)
		return 0;
	free(cfg->error);
	cfg->error = xasprintf("%s: %u error%s", filename, errors,
	    errors == 1 ? "" : "s");
	*error_r = cfg->error;
	return -1;
}

/* config_load - read a postern.conf file over the current values */
int
config_load(struct config *cfg, const char *path, const char **error_r)
{
	struct str *buf = str_new(8192, CONFIG_FILE_MAX);
	int fd, ret;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		free(cfg->error);
		cfg->error = xasprintf("open %s: %s", path, strerror(errno));
		*error_r = cfg->error;
		str_free(&buf);
		return -1;
	}
	for (;;) {
		char *w = str_reserve(buf, 8192);

		if (w == NULL) {
			free(cfg->error);
			cfg->error = xasprintf("%s: file too large (more than "
			    "%d bytes)", path, CONFIG_FILE_MAX);
			goto fail;
		}
		n = read(fd, w, 8192);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(cfg->error);
			cfg->error = xasprintf("read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		str_commit(buf, (size_t)n);
	}
	(void)close(fd);
	ret = config_parse(cfg, str_c(buf), str_len(buf), path, error_r);
	str_free(&buf);
	return ret;

fail:
	*error_r = cfg->error;
	(void)close(fd);
	str_free(&buf);
	return -1;
}

/* config_set - set one value, checking the whole config afterwards */
int
config_set(struct config *cfg, const char *name, const char *value,
    const char **error_r)
{
	const struct config_param *p = config_param_find(name);
	struct config_entry *e, saved;
	const char *cp;

	if (p == NULL) {
		*error_r = "unknown parameter name";
		return -1;
	}
	for (cp = value; *cp != '\0'; cp++) {
		if (((unsigned char)*cp < 0x20 && *cp != '\t') || *cp == 0x7f) {
			*error_r = "control character in value";
			return -1;
		}
	}
	if (strlen(value) > CONFIG_LINE_MAX) {
		*error_r = "value too long";
		return -1;
	}
	e = &cfg->entries[p - config_params];
	saved = *e;
	e->value = xstrdup(value);
	e->source = NULL;
	e->line = 0;
	e->set = true;
	if (config_check(cfg, false, error_r) != 0) {
		free(e->value);
		e->value = saved.value;
		e->source = saved.source;
		e->line = saved.line;
		e->set = saved.set;
		config_cache_clear(cfg);
		return -1;
	}
	free(saved.value);
	free(saved.source);
	return 0;
}

/*
 * Lookups.
 */

/* config_raw - the value as written (computed defaults: the computed text) */
const char *
config_raw(const struct config *cfg, const char *name)
{
	size_t i = config_index(cfg, name);
	struct config_entry *e = &cfg->entries[i];

	if (e->value != NULL)
		return e->value;
	if (e->param->def != NULL)
		return e->param->def;
	if (e->computed == NULL)
		(void)config_expanded(cfg, i);
	return e->computed;
}

/* config_is_default - true if neither a file nor config_set set the value */
bool
config_is_default(const struct config *cfg, const char *name)
{
	return !cfg->entries[config_index(cfg, name)].set;
}

/* config_source - "FILE:LINE" of the setting, or NULL */
const char *
config_source(const struct config *cfg, const char *name)
{
	return cfg->entries[config_index(cfg, name)].source;
}

/* config_str - the expanded value */
const char *
config_str(const struct config *cfg, const char *name)
{
	return config_expanded(cfg, config_index(cfg, name));
}

/* config_typed - the expanded value of a parameter that must have type */
static const char *
config_typed(const struct config *cfg, const char *name, enum config_type type)
{
	size_t i = config_index(cfg, name);

	if (cfg->entries[i].param->type != type)
		log_panic(NULL, "config: parameter %s has type %d, not %d",
		    name, (int)cfg->entries[i].param->type, (int)type);
	return config_expanded(cfg, i);
}

/* config_bad_value - a value that was checked at load no longer parses */
static void NORETURN
config_bad_value(const char *name)
{
	log_panic(NULL, "config: parameter %s has a bad value after checking",
	    name);
}

/* config_int - the value as a number */
uint64_t
config_int(const struct config *cfg, const char *name)
{
	const char *s = config_typed(cfg, name, CONFIG_INT);
	unsigned long v;

	if (!str_to_ulong(s, strlen(s), ULONG_MAX, &v))
		config_bad_value(name);
	return (uint64_t)v;
}

/* config_bool - the value as a boolean */
bool
config_bool(const struct config *cfg, const char *name)
{
	bool v;

	if (!config_parse_bool(config_typed(cfg, name, CONFIG_BOOL), &v))
		config_bad_value(name);
	return v;
}

/* config_time - the value in seconds */
unsigned
config_time(const struct config *cfg, const char *name)
{
	unsigned v;

	if (!config_parse_time(config_typed(cfg, name, CONFIG_TIME), &v))
		config_bad_value(name);
	return v;
}

/* config_size - the value in bytes */
uint64_t
config_size(const struct config *cfg, const char *name)
{
	uint64_t v;

	if (!config_parse_size(config_typed(cfg, name, CONFIG_SIZE), &v))
		config_bad_value(name);
	return v;
}

/* config_is_list_sep - does c separate list items? */
static bool
config_is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* config_list - the expanded value split at commas and white space */
const char *const *
config_list(const struct config *cfg, const char *name, size_t *count_r)
{
	size_t i = config_index(cfg, name), n = 0;
	struct config_entry *e = &cfg->entries[i];
	const char *s = config_expanded(cfg, i);
	char *p;

	if (e->list == NULL) {
		e->list_buf = xstrdup(s);
		/* At most one item per two bytes, plus the NULL. */
		e->list = xcalloc(strlen(s) / 2 + 2, sizeof(*e->list));
		p = e->list_buf;
		for (;;) {
			while (*p != '\0' && config_is_list_sep(*p))
				*p++ = '\0';
			if (*p == '\0')
				break;
			e->list[n++] = p;
			while (*p != '\0' && !config_is_list_sep(*p))
				p++;
		}
		e->list[n] = NULL;
		e->list_count = n;
	}
	*count_r = e->list_count;
	return e->list;
}

/* config_set_global - install the process-wide config (takes ownership) */
void
config_set_global(struct config *cfg)
{
	struct config *old = config_global;

	config_global = cfg;
	if (old != NULL && old != cfg)
		config_free(&old);
}

/* conf - the process-wide config; panics if none was set */
struct config *
conf(void)
{
	if (config_global == NULL)
		log_panic(NULL, "config: no global configuration was set");
	return config_global;
}
