/* SPDX-License-Identifier: MIT */
/*
 * postern_config - show and edit postern.conf (what postconf(1) does)
 *
 * DESCRIPTION
 *	postern config              settings that differ from the defaults,
 *	                            as written (postconf -n)
 *	postern config -d [KEY...]  defaults (all, or the KEYs)
 *	postern config KEY...       the expanded value of each KEY
 *	postern config -e K=V...    edit postern.conf in place
 *	-x expands $names in the listings, -h prints values only.
 *
 *	-e checks every name and value with config_set() before touching
 *	the file, then rewrites it: the first definition of each KEY (with
 *	its continuation lines) is replaced by "KEY = VALUE", later ones are
 *	removed, a KEY not yet there is appended; comments, blank lines and
 *	all other lines stay as they were. The result must load (a file
 *	that loaded before is never made unloadable, e.g. by a $name loop),
 *	and it replaces the old file atomically (safe_file) with the same
 *	mode and owner.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "safe_file.h"
#include "str.h"

#include "postern.h"

#define CONFIG_FILE_MAX (16 * 1024 * 1024)

struct config_opts {
	bool defaults;		/* -d */
	bool expand;		/* -x */
	bool values_only;	/* -h */
	bool edit;		/* -e */
	bool non_default;	/* -n (the default listing) */
};

static void
config_print(const struct config_opts *o, const char *name, const char *value)
{
	if (o->values_only)
		printf("%s\n", value);
	else if (*value == '\0')
		printf("%s =\n", name);
	else
		printf("%s = %s\n", name, value);
}

/*
 * config_show_defaults - -d: defaults, raw or (-x) expanded; a computed
 * default (myhostname) shows its value on this host.
 */
static int
config_show_defaults(const struct config_opts *o, int argc, char **argv)
{
	struct config *cfg = config_new(postern.config_dir);
	const struct config_param *p;
	int i, rc = POSTERN_EXIT_OK;

	if (argc == 0) {
		for (p = config_params; p->name != NULL; p++)
			config_print(o, p->name, o->expand ?
			    config_str(cfg, p->name) : config_raw(cfg, p->name));
	}
	for (i = 0; i < argc; i++) {
		p = config_param_find(argv[i]);
		if (p == NULL) {
			postern_error("unknown parameter \"%s\" (postern "
			    "config -d lists them all)", argv[i]);
			rc = POSTERN_EXIT_FAIL;
			continue;
		}
		config_print(o, p->name, o->expand ?
		    config_str(cfg, p->name) : config_raw(cfg, p->name));
	}
	config_free(&cfg);
	return rc;
}

/* config_show - settings in force: non-default ones, or the KEYs asked for */
static int
config_show(const struct config_opts *o, int argc, char **argv)
{
	const struct config_param *p;
	struct config *cfg;
	int i, rc = POSTERN_EXIT_OK;

	cfg = postern_load_config(false);
	if (cfg == NULL)
		return POSTERN_EXIT_FAIL;
	if (argc == 0) {
		for (p = config_params; p->name != NULL; p++) {
			if (config_is_default(cfg, p->name))
				continue;
			config_print(o, p->name, o->expand ?
			    config_str(cfg, p->name) : config_raw(cfg, p->name));
		}
		return rc;
	}
	for (i = 0; i < argc; i++) {
		p = config_param_find(argv[i]);
		if (p == NULL) {
			postern_error("unknown parameter \"%s\" (postern "
			    "config -d lists them all)", argv[i]);
			rc = POSTERN_EXIT_FAIL;
			continue;
		}
		config_print(o, p->name, config_str(cfg, p->name));
	}
	return rc;
}

/* One "KEY=VALUE" from the command line, trimmed. */
struct config_edit {
	char *name;
	char *value;
	bool done;
};

static char *
config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/* config_edit_parse - split and check the arguments; false after a message */
static bool
config_edit_parse(int argc, char **argv, struct config_edit *edits)
{
	struct config *cfg = config_new(postern.config_dir);
	const char *error;
	const char *p;
	bool ok = true;
	char *eq;
	int i;

	for (i = 0; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (eq == NULL) {
			postern_error("\"%s\" is not KEY=VALUE (e.g. postern "
			    "config -e myhostname=mail.example.org)", argv[i]);
			ok = false;
			continue;
		}
		*eq = '\0';
		edits[i].name = config_trim(argv[i]);
		edits[i].value = config_trim(eq + 1);
		if (config_param_find(edits[i].name) == NULL) {
			postern_error("unknown parameter \"%s\" (postern "
			    "config -d lists them all)", edits[i].name);
			ok = false;
			continue;
		}
		for (p = edits[i].value; *p != '\0'; p++) {
			if (iscntrl((unsigned char)*p) && *p != '\t')
				break;
		}
		if (*p != '\0') {
			postern_error("the value of %s contains a control "
			    "character", edits[i].name);
			ok = false;
			continue;
		}
		error = NULL;
		if (config_set(cfg, edits[i].name, edits[i].value, &error) < 0) {
			postern_error("bad value for %s: \"%s\": %s",
			    edits[i].name, edits[i].value,
			    error != NULL ? error : "rejected");
			ok = false;
		}
	}
	config_free(&cfg);
	return ok;
}

/* config_line_name - the parameter a definition line sets, into name */
static void
config_line_name(const char *line, size_t len, struct str *name)
{
	size_t n = 0;

	while (n < len && line[n] != '=' && line[n] != ' ' && line[n] != '\t')
		n++;
	str_set(name, line, n);
}

static bool
config_line_blank_or_comment(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	return i == len || line[i] == '#';
}

/*
 * config_edit_find - the edit for name; of the same KEY given twice on
 * the command line, the last one wins. -1 if none.
 */
static int
config_edit_find(const struct config_edit *edits, int nedits, const char *name)
{
	int i;

	for (i = nedits - 1; i >= 0; i--)
		if (strcmp(edits[i].name, name) == 0)
			return i;
	return -1;
}

/* config_edit_mark - every edit of name has been written */
static void
config_edit_mark(struct config_edit *edits, int nedits, const char *name)
{
	int i;

	for (i = 0; i < nedits; i++)
		if (strcmp(edits[i].name, name) == 0)
			edits[i].done = true;
}

/*
 * config_edit_text - apply the edits to the text of postern.conf (see
 * DESCRIPTION), appending the result to out.
 */
static void
config_edit_text(const struct str *old, struct config_edit *edits, int nedits,
    struct str *out)
{
	struct str *name = str_new(64, 0);
	const char *p = str_c(old), *end = p + str_len(old), *nl;
	bool skipping = false;
	int i;

	while (p < end) {
		size_t len;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (config_line_blank_or_comment(p, len)) {
			/* Comments between continuation lines stay. */
		} else if (*p == ' ' || *p == '\t') {
			/* A continuation line: goes with its definition. */
			if (skipping)
				goto next;
		} else {
			skipping = false;
			config_line_name(p, len, name);
			i = config_edit_find(edits, nedits, str_c(name));
			if (i >= 0) {
				skipping = true;
				if (!edits[i].done) {
					str_printf(out, "%s = %s\n",
					    edits[i].name, edits[i].value);
					config_edit_mark(edits, nedits,
					    edits[i].name);
				}
				goto next;
			}
		}
		str_append(out, p, len);
		str_append_c(out, '\n');
next:
		p += len + (nl != NULL);
	}
	for (i = 0; i < nedits; i++) {
		int last;

		if (edits[i].done)
			continue;
		last = config_edit_find(edits, nedits, edits[i].name);
		str_printf(out, "%s = %s\n", edits[last].name,
		    edits[last].value);
		config_edit_mark(edits, nedits, edits[i].name);
	}
	str_free(&name);
}

/* config_write - replace path with data, keeping the old mode and owner */
static int
config_write(const char *path, const struct str *data, const struct stat *st)
{
	struct safe_file *sf;

	sf = safe_file_create(path, st->st_mode & 07777);
	if (sf == NULL)
		return -1;
	if (geteuid() == 0 &&
	    fchown(safe_file_fd(sf), st->st_uid, st->st_gid) < 0) {
		safe_file_abort(&sf);
		return -1;
	}
	if (fchmod(safe_file_fd(sf), st->st_mode & 07777) < 0 ||
	    safe_file_write(sf, str_c(data), str_len(data)) < 0) {
		safe_file_abort(&sf);
		return -1;
	}
	return safe_file_commit(&sf);
}

/* config_edit - -e KEY=VALUE... */
static int
config_edit(int argc, char **argv)
{
	struct config_edit *edits;
	struct str *path = str_new(PATH_MAX, 0);
	struct str *old = str_new(4096, 0);
	struct str *new = str_new(4096, 0);
	char *real = NULL;
	struct stat st;
	bool old_ok;
	int rc = POSTERN_EXIT_FAIL;

	edits = xcalloc((size_t)argc, sizeof(*edits));
	if (!config_edit_parse(argc, argv, edits)) {
		postern_error("%s/postern.conf not changed", postern.config_dir);
		goto out;
	}
	postern_config_path(path, "postern.conf");
	/* Edit the file a symbolic link points to, not the link. */
	real = realpath(str_c(path), NULL);
	if (real == NULL || stat(real, &st) < 0 ||
	    read_file(real, old, CONFIG_FILE_MAX) < 0) {
		postern_error("cannot read %s: %m (use -c DIR or set "
		    "POSTERN_CONFIG_DIR)", str_c(path));
		goto out;
	}
	if (str_len(old) > 0 && str_c(old)[str_len(old) - 1] != '\n')
		str_append_c(old, '\n');
	config_edit_text(old, edits, argc, new);

	old_ok = postern_config_parses(str_c(old), str_len(old), str_c(path),
	    false);
	if (!postern_config_parses(str_c(new), str_len(new), str_c(path),
	    !old_ok)) {
		if (old_ok) {
			(void)postern_config_parses(str_c(new), str_len(new),
			    str_c(path), true);
			postern_error("%s not changed: with this change it "
			    "would not load (see above)", str_c(path));
			goto out;
		}
		postern_warn("%s had problems before this change and still "
		    "has (see above); fix them", str_c(path));
	}
	if (config_write(real, new, &st) < 0) {
		postern_error("cannot write %s: %m (not changed)", real);
		goto out;
	}
	if (postern.verbose) {
		int i;

		for (i = 0; i < argc; i++)
			printf("%s: %s = %s\n", str_c(path), edits[i].name,
			    edits[i].value);
	}
	rc = POSTERN_EXIT_OK;
out:
	free(real);
	free(edits);
	str_free(&path);
	str_free(&old);
	str_free(&new);
	return rc;
}

/* postern_cmd_config - postconf */
int
postern_cmd_config(int argc, char **argv)
{
	struct config_opts o;
	int c;

	memset(&o, 0, sizeof(o));
	optind = 0;
	opterr = 0;	/* our own message, below */
	while ((c = getopt(argc, argv, "+dehnx")) != -1) {
		switch (c) {
		case 'd':
			o.defaults = true;
			break;
		case 'e':
			o.edit = true;
			break;
		case 'h':
			o.values_only = true;
			break;
		case 'n':
			o.non_default = true;
			break;
		case 'x':
			o.expand = true;
			break;
		default:
			return postern_usage_error("config", "config: unknown "
			    "option -%c", optopt);
		}
	}
	argc -= optind;
	argv += optind;
	if (o.edit) {
		if (o.defaults || o.values_only || o.non_default || o.expand)
			return postern_usage_error("config",
			    "-e takes no other options");
		if (argc == 0)
			return postern_usage_error("config",
			    "-e needs KEY=VALUE arguments");
		return config_edit(argc, argv);
	}
	if (o.non_default && (o.defaults || argc > 0))
		return postern_usage_error("config",
		    "-n lists the settings that differ from the defaults; it "
		    "takes no KEY and no -d");
	if (o.defaults)
		return config_show_defaults(&o, argc, argv);
	return config_show(&o, argc, argv);
}
