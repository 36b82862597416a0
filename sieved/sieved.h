/* SPDX-License-Identifier: MIT */
/*
 * sieved.h - private interfaces of sieved (one binary, two roles)
 */
#ifndef POSTERN_SIEVED_H
#define POSTERN_SIEVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "login_proxy.h"
#include "sieve/sieve.h"
#include "sieve/sieve_user.h"
#include "str.h"

struct stream;
struct tls_context;
struct tls_session;

/* ---------------------------------------------------------------- settings */

enum sieved_role {
	SIEVED_ROLE_LOGIN,
	SIEVED_ROLE_MAIL,
	SIEVED_ROLE_STANDALONE,
};

struct sieved_settings {
	enum sieved_role role;
	const char *implementation;
	unsigned login_timeout;
	unsigned timeout;
	bool disable_plaintext_auth;
	bool loopback_secure;
	const char *mail_service;
	unsigned ip_conn_limit;
	const char *store_dir;
	const char *data_dir;
	const char *global_dir;
	struct sieve_limits limits;
	struct sieve_user_quota quota;
};
extern struct sieved_settings sieved_settings;

/*
 * Limits. A command line (outside literals) is at most SIEVED_LINE_MAX
 * octets; a quoted string at most 1024 (RFC 5804 4). Literals are
 * bounded before anything is read: SIEVED_PRELOGIN_LITERAL_MAX before
 * authentication (SASL responses), sieve_max_script_size +
 * SIEVED_LINE_MAX after. Over a limit the server says BYE: a client
 * that announced a non-synchronizing literal is already sending it.
 */
#define SIEVED_LINE_MAX		8192
#define SIEVED_QUOTED_MAX	1024
#define SIEVED_ARGS_MAX		4
#define SIEVED_PRELOGIN_LITERAL_MAX	8192
#define SIEVED_LOGIN_ERRORS	10
#define SIEVED_SESSION_ERRORS	50

/* ---------------------------------------------------------------- parser */

enum sieved_cmd_id {
	SIEVED_CMD_NONE = 0,	/* parse error: see cmd.error */
	SIEVED_CMD_AUTHENTICATE,
	SIEVED_CMD_STARTTLS,
	SIEVED_CMD_LOGOUT,
	SIEVED_CMD_CAPABILITY,
	SIEVED_CMD_HAVESPACE,
	SIEVED_CMD_PUTSCRIPT,
	SIEVED_CMD_CHECKSCRIPT,
	SIEVED_CMD_LISTSCRIPTS,
	SIEVED_CMD_SETACTIVE,
	SIEVED_CMD_GETSCRIPT,
	SIEVED_CMD_DELETESCRIPT,
	SIEVED_CMD_RENAMESCRIPT,
	SIEVED_CMD_NOOP,
	SIEVED_CMD_UNAUTHENTICATE,
};

struct sieved_arg {
	bool number;		/* a number (num), else a string (p/n) */
	bool literal;		/* the string came as a literal (no escapes) */
	const char *p;		/* points into the command buffer */
	size_t n;
	uint32_t num;
};

struct sieved_cmd {
	enum sieved_cmd_id id;
	unsigned nargs;
	struct sieved_arg args[SIEVED_ARGS_MAX];
	const char *error;	/* static text for the NO reply (id NONE) */
};

/*
 * sieved_literal_announce - does the line p/n (its CRLF removed) end with
 * a literal announcement "{N}" or "{N+}" (RFC 5804 4)? 1 with *size_r,
 * 0 if not, -1 if it announces one whose size is not a number below
 * 2^32. Quoted strings are skipped, so "{5}" inside quotes is text.
 */
int sieved_literal_announce(const char *p, size_t n, uint64_t *size_r);

/*
 * sieved_parse_args - parse p/n, a sequence of space-separated strings
 * (quoted or literal: "{N+}\r\n" then N octets, as they came on the
 * wire) and numbers up to the end (the final CRLF removed), into at
 * most max args. Returns the count, or -1 with *error_r (static). The
 * strings point into p (quoted ones with their backslash escapes still
 * in them: sieved_unquote()).
 */
int sieved_parse_args(const char *p, size_t n, struct sieved_arg *args,
    unsigned max, const char **error_r);
/* sieved_unquote - an argument's value into out (replaced), escapes removed */
void sieved_unquote(const struct sieved_arg *arg, struct str *out);

/*
 * sieved_parse_command - parse one whole command (as for
 * sieved_parse_args, starting with the command name) into cmd and check
 * its arguments' count and types. false with cmd->id NONE and
 * cmd->error on a parse error or unknown command. Never reads outside
 * p[0..n).
 */
bool sieved_parse_command(const char *p, size_t n, struct sieved_cmd *cmd);
/* sieved_cmd_name - "PUTSCRIPT", ... ("?" for NONE) */
const char *sieved_cmd_name(enum sieved_cmd_id id);

/*
 * sieved_append_string - s/n as a ManageSieve string: quoted (with \"
 * and \\ escapes) when it is short and has no CR, LF or NUL, else a
 * literal {N}CRLF followed by the octets.
 */
void sieved_append_string(struct str *out, const char *s, size_t n);

/* sieved_sasl_plain - split authz\0authc\0pass (false if malformed) */
bool sieved_sasl_plain(const char *p, size_t n, const char **authz_r,
    size_t *authz_len_r, const char **authc_r, size_t *authc_len_r,
    const char **pass_r, size_t *pass_len_r);
/* sieved_base64_strict - decode padded base64 into out (false on anything else) */
bool sieved_base64_strict(const char *p, size_t n, struct str *out);

/* ---------------------------------------------------------------- sessions */

/* The connection as both roles see it: struct login_conn (lib/login_proxy.h). */

/*
 * sieved_session_run - the whole conversation. user NULL: start in the
 * non-authenticated state with a greeting (login and standalone roles);
 * else (mail role, after a hand-off) answer the AUTHENTICATE with OK and
 * serve user. tls_ctx may be NULL (no STARTTLS).
 */
void sieved_session_run(struct login_conn *c, struct tls_context *tls_ctx,
    const char *user);

#endif
