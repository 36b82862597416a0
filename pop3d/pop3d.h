/* SPDX-License-Identifier: MIT */
/*
 * pop3d.h - private interfaces of pop3d (one binary, two roles)
 */
#ifndef POSTERN_POP3D_H
#define POSTERN_POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "login_proxy.h"
#include "str.h"

struct stream;
struct tls_context;
struct tls_session;

/* ---------------------------------------------------------------- settings */

enum pop3d_role {
	POP3D_ROLE_LOGIN,
	POP3D_ROLE_MAIL,
	POP3D_ROLE_STANDALONE,
};

struct pop3d_settings {
	enum pop3d_role role;
	const char *banner;
	unsigned login_timeout;
	unsigned timeout;
	bool disable_plaintext_auth;
	bool loopback_secure;
	bool wrappermode;
	bool lock_session;
	const char *mail_service;
	unsigned ip_conn_limit;
	unsigned user_conn_limit;
	const char *store_dir;
	const char *data_dir;
};
extern struct pop3d_settings pop3d_settings;

/*
 * Limits. RFC 2449 allows 255 octets per command and 40 per argument;
 * we take a little more (user names that are long addresses), and a
 * larger line for SASL responses (RFC 5034 has no limit there).
 */
#define POP3D_LINE_MAX		1024	/* a command line, CRLF included */
#define POP3D_SASL_LINE_MAX	8192	/* an AUTH response line */
#define POP3D_ARG_MAX		255	/* one argument (USER name ...) */
#define POP3D_LOGIN_ERRORS	10	/* bad commands + failed logins before auth */
#define POP3D_SESSION_ERRORS	50	/* bad commands after */

/* ---------------------------------------------------------------- parser */

enum pop3_cmd_id {
	POP3_CMD_NONE = 0,	/* parse error: see cmd.error */
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_STLS,
	POP3_CMD_CAPA,
	POP3_CMD_QUIT,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
};

/*
 * One parsed command. The pointers point into the line given to
 * pop3_parse_command() and live as long as it.
 *	USER: arg = the name (1..POP3D_ARG_MAX bytes, no space)
 *	PASS: arg = the rest of the line (may hold spaces, may be empty)
 *	APOP: arg = name, arg2 = digest
 *	AUTH: arg = mechanism or absent (nargs 0); arg2 = initial response
 *	LIST, UIDL: nargs 0 or 1 (num[0] = message number)
 *	RETR, DELE: num[0]; TOP: num[0] message, num[1] lines
 * Message numbers are parsed as 0..UINT32_MAX; the session decides
 * whether one names a message.
 */
struct pop3_cmd {
	enum pop3_cmd_id id;
	unsigned nargs;
	const char *arg;
	size_t arg_len;
	const char *arg2;
	size_t arg2_len;
	uint32_t num[2];
	const char *error;	/* static text for the -ERR reply (id NONE) */
};

/*
 * pop3_parse_command - parse one command line p/n (its CRLF or LF
 * already removed). true with *cmd filled; false with cmd->id NONE and
 * cmd->error set (unknown command, wrong arguments, NUL or CR in the
 * line). Never reads outside p[0..n).
 */
bool pop3_parse_command(const char *p, size_t n, struct pop3_cmd *cmd);
/* pop3_cmd_name - "USER", ... ("?" for NONE) */
const char *pop3_cmd_name(enum pop3_cmd_id id);

/*
 * pop3_sasl_plain - split a decoded SASL PLAIN message authz\0authc\0pass.
 * false if it is malformed (not exactly two NULs, empty authc). The
 * results point into p.
 */
bool pop3_sasl_plain(const char *p, size_t n, const char **authz_r,
    size_t *authz_len_r, const char **authc_r, size_t *authc_len_r,
    const char **pass_r, size_t *pass_len_r);
/* pop3_base64_strict - base64 with padding and nothing else into out */
bool pop3_base64_strict(const char *p, size_t n, struct str *out);

/* ---------------------------------------------------------------- sessions */

/* The connection as both roles see it: struct login_conn (lib/login_proxy.h). */

/* pop3d_login.c: the AUTHORIZATION state (login and standalone roles) */
void pop3d_login_run(struct login_conn *c, struct tls_context *tls_ctx);
/* pop3d_capa - the CAPA list (without the +OK and the final ".") */
void pop3d_capa(struct str *out, const struct login_conn *c,
    bool tls_available, bool authenticated);

/*
 * pop3d_session.c: TRANSACTION and UPDATE (mail and standalone roles).
 * Locks and opens user's maildrop, answers the login with +OK (or -ERR
 * [IN-USE] / [SYS/TEMP] and returns), then serves the session.
 */
void pop3d_session_run(struct login_conn *c, const char *user);

/* pop3d.c */
/*
 * pop3d_timeout_reply - tell the client it timed out. The stream's
 * error is sticky after a timeout, so this writes to the socket itself
 * (plaintext only: under TLS in this process the client just sees the
 * connection close).
 */
void pop3d_timeout_reply(struct login_conn *c);

#endif
