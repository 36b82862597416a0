/* SPDX-License-Identifier: MIT */
/*
 * postern.h - private interface between the parts of the postern(8) CLI
 *
 * postern.c parses the global options and dispatches a verb to one of the
 * postern_*.c files. A verb function gets the arguments after the verb
 * (argv[0] is the verb itself, as getopt expects) and returns the process
 * exit status (POSTERN_EXIT_*). Messages for the operator go to stderr
 * through postern_error()/postern_warn(), which prefix "postern: " only:
 * they are the tool's user interface, not log lines, so they carry none of
 * log.h's time stamp and host prefix. Only main() calls exit().
 */
#ifndef POSTERN_POSTERN_H
#define POSTERN_POSTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "macros.h"
#include "str.h"

/* Exit statuses: a stable interface (see postern(8) EXIT STATUS). */
#define POSTERN_EXIT_OK		0	/* done; running; found; password ok */
#define POSTERN_EXIT_FAIL	1	/* failed; not running; not found; wrong */
#define POSTERN_EXIT_USAGE	2	/* bad command line */

#define POSTERN_DEFAULT_CONFIG_DIR "/etc/postern"

/* The global state main() sets up before a verb runs. */
struct postern_ctx {
	const char *config_dir;	/* absolute when it exists; never NULL */
	bool verbose;		/* -v */
	char *self_dir;		/* directory holding this binary, or NULL */
};

extern struct postern_ctx postern;

void postern_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
void postern_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* postern_usage_error - "postern: what" plus the verb's usage; returns EXIT_USAGE */
int postern_usage_error(const char *verb, const char *fmt, ...) PRINTF_LIKE(2, 3);

/*
 * postern_config_path - "$config_dir/postern.conf" (or master.conf) into
 * out, replacing its contents.
 */
void postern_config_path(struct str *out, const char *file);

/*
 * postern_load_config - read $config_dir/postern.conf into a new config
 * and make it the global one (conf()). On failure prints every problem
 * (FILE:LINE: what) and what to do, and returns NULL. With missing_ok, a
 * missing file gives a defaults-only config instead of an error.
 */
struct config *postern_load_config(bool missing_ok);

/*
 * postern_config_parses - true if data would load as postern.conf; with
 * report, the problems found (FILE:LINE: what) are printed.
 */
bool postern_config_parses(const char *data, size_t len, const char *filename,
    bool report);

/*
 * postern_param - the expanded value of a parameter, or NULL when this
 * build's parameter table lacks it (then an error naming it is printed).
 */
const char *postern_param(const struct config *cfg, const char *name);
/* postern_param_time - seconds, or fallback if the table lacks the name */
unsigned postern_param_time(const struct config *cfg, const char *name,
    unsigned fallback);

/* postern_read_secret - read one line (no echo on a tty) into out; wipes temporaries */
int postern_read_secret(const char *prompt, struct str *out);

/* Verbs. */
int postern_cmd_start(int argc, char **argv);
int postern_cmd_stop(int argc, char **argv);
int postern_cmd_reload(int argc, char **argv);
int postern_cmd_status(int argc, char **argv);
int postern_cmd_config(int argc, char **argv);
int postern_cmd_map(int argc, char **argv);
int postern_cmd_user(int argc, char **argv);
int postern_cmd_instance(int argc, char **argv);
int postern_cmd_queue(int argc, char **argv);
int postern_cmd_mailq(int argc, char **argv);

#endif
