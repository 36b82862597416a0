/* SPDX-License-Identifier: MIT */
/*
 * vacation - vacation requests, settings and the client side of vacationd
 *
 * Two ways make an out-of-office reply, and both end in vacationd(8),
 * which owns the RFC 3834 / RFC 5230 rules and the "already answered"
 * databases:
 *   - a Sieve vacation action (lmtpd runs the user's script), and
 *   - a vacation setting (start, end, subject, text, extra addresses),
 *     made with `postern vacation set` or kept in the user's LDAP entry
 *     ($vacation_setting_maps), which lmtpd looks up at each delivery
 *     (vacation_setting_lookup + vacation_setting_active).
 * lmtpd hands either to vacationd with vacation_client_send(): an LMTP
 * transaction whose RCPT carries the typed parameter record
 * (vacation_params_encode) xtext-encoded in the private ESMTP parameter
 * XPOSTERN-VACATION=, followed by the original message. See
 * vacationd(8) for the wire format.
 *
 * The parameter record is typed and length-prefixed (never re-parsed
 * text): repeated items of  tag (1 octet) | length (u32, big endian) |
 * value. vacation_params_decode is strict: known tags only, fixed sizes
 * for numbers, no NUL in strings, bounded counts and lengths, required
 * fields present, exact consumption.
 *
 * Settings live in one Berkeley DB btree, $vacation_directory/
 * settings.db (key = user name, value = a record as above with the
 * start and end times). Writers hold $vacation_directory/settings.lock
 * and replace the whole file atomically, so readers (lmtpd, vacationd)
 * need no lock and never see a partial update (as lib/userdb).
 *
 * Directory settings (lib/vacation_ldap.c) are the posternVacation*
 * attributes of conf/postern.schema, read from the user's entry through
 * an ldap: source: a file in the ldap_table format of the ldap: map type
 * (ldapdir_from_text; its result_attribute is not used). The sources
 * are asked in order, then settings.db; the first that holds a setting
 * for the user decides (vacation_setting_lookup).
 *
 * Calls return -1 with *error_r (static text, or text valid until the
 * next call into this module) on failure; none exits.
 */
#ifndef POSTERN_VACATION_H
#define POSTERN_VACATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct str;

/* The LHLO keyword and RCPT parameter (see vacationd(8)). */
#define VACATION_EXT		"XPOSTERN-VACATION"
/* Bounds of a decoded parameter record. */
#define VACATION_PARAMS_MAX	(64 * 1024)
#define VACATION_ADDRESSES_MAX	64
#define VACATION_STRING_MAX	(32 * 1024)

enum vacation_source {
	VACATION_SOURCE_SIEVE = 1,	/* a Sieve vacation action */
	VACATION_SOURCE_SETTING = 2,	/* postern vacation set */
	VACATION_SOURCE_LDAP = 3,	/* a setting in the user's LDAP entry */
};

struct vacation_params {
	char *user;		/* the local user (user database name) */
	unsigned period;	/* seconds between replies to one sender */
	char *subject;		/* NULL = "Auto: " + the original Subject */
	char *from;		/* NULL = the recipient address */
	char **addresses;	/* the user's other addresses, or NULL */
	size_t naddresses;
	bool mime;		/* reason is a MIME entity */
	char *handle;		/* which vacation this is (RFC 5230 :handle) */
	char *reason;		/* the reply text (required) */
	unsigned source;	/* enum vacation_source */
};

/* vacation_params_clear - free every field; the struct may be reused */
void vacation_params_clear(struct vacation_params *p);
/* vacation_params_add_address - append a copy of address */
void vacation_params_add_address(struct vacation_params *p, const char *address);
/* vacation_params_encode - the record of p appended to out */
void vacation_params_encode(const struct vacation_params *p, struct str *out);
/*
 * vacation_params_decode - strictly decode data[0..len) into p (cleared
 * first; owned by the caller); 0, or -1 with *error_r (static) and p
 * cleared.
 */
int vacation_params_decode(const void *data, size_t len,
    struct vacation_params *p, const char **error_r);

/* xtext (RFC 3461 4): append the encoding of p[0..n) to out */
void vacation_xtext_encode(const void *p, size_t n, struct str *out);
/* vacation_xtext_decode - append the decoding to out; -1 if malformed */
int vacation_xtext_decode(const char *p, size_t n, struct str *out);

/*
 * A vacation setting: params apply while start <= now < end and not off.
 * A directory setting without a start has start = INT64_MIN, without an
 * end end = INT64_MAX.
 */
struct vacation_setting {
	int64_t start;
	int64_t end;
	bool off;		/* switched off (posternVacationActive FALSE) */
	char *origin;		/* vacation_setting_lookup: where it was found */
	struct vacation_params params;	/* user = the key */
};

void vacation_setting_clear(struct vacation_setting *s);
/* vacation_setting_active - !off and start <= now < end */
bool vacation_setting_active(const struct vacation_setting *s, time_t now);
/*
 * vacation_setting_get - user's setting from $dir/settings.db: 1 found
 * (s_r owned by the caller: vacation_setting_clear), 0 none (also when
 * the database does not exist), -1 error.
 */
int vacation_setting_get(const char *dir, const char *user,
    struct vacation_setting *s_r, const char **error_r);
/*
 * The group a settings.db written by root gets (mode 0640), so that
 * lmtpd can read it: set it to $mail_owner's group before
 * vacation_setting_put; (gid_t)-1 (the default) leaves it alone.
 */
extern gid_t vacation_setting_gid;
/*
 * vacation_setting_put - store s for user (s NULL: remove it; removing
 * what is not there succeeds), creating dir when needed. Takes the lock,
 * rewrites, renames.
 */
int vacation_setting_put(const char *dir, const char *user,
    const struct vacation_setting *s, const char **error_r);

/* Where vacation_setting_lookup looks (borrowed). */
struct vacation_sources {
	const char *const *maps;	/* $vacation_setting_maps: "ldap:FILE" */
	size_t nmaps;
	const char *dir;		/* $vacation_directory (settings.db) */
	unsigned default_period;	/* $vacation_default_period, seconds */
};

/*
 * vacation_setting_lookup - the setting that applies to user: each
 * directory source in src->maps in order, then settings.db; the first
 * that holds a setting decides (a directory entry holds one when it has
 * posternVacationActive, posternVacationStart or posternVacationEnd; an
 * entry that says FALSE thus switches a settings.db setting off). 1
 * found: s_r owned by the caller (vacation_setting_clear), with
 * params.user = user, params.source and params.handle set ("setting/
 * START" or "ldap/START": one "already answered" record per vacation)
 * and origin naming the source; 0 none; -1 error: a source could not be
 * read or asked (the directory is down) or its entry is malformed. An
 * error does not fall through to the later sources, which the failed
 * one might override. Directory connections are kept for the next call.
 */
int vacation_setting_lookup(const struct vacation_sources *src,
    const char *user, struct vacation_setting *s_r, const char **error_r);
/* vacation_setting_lookup_deinit - close the directory connections */
void vacation_setting_lookup_deinit(void);
/*
 * vacation_ldap_time - parse an LDAP GeneralizedTime (RFC 4517 3.3.13:
 * YYYYMMDDHH[MM[SS]][(.|,)FRACTION](Z|(+|-)HH[MM])) from p[0..n) into
 * epoch seconds (a fraction of the last unit is truncated to seconds);
 * false if malformed.
 */
bool vacation_ldap_time(const char *p, size_t n, int64_t *t_r);

/*
 * vacation_now - the current time. Test hook: with POSTERN_TEST_HOOKS=1
 * in the environment, POSTERN_TEST_NOW gives it instead: decimal epoch
 * seconds, or an absolute path of a file holding them (read at each
 * call, so a test can move the clock of a running daemon).
 */
time_t vacation_now(void);

/*
 * vacation_client_send - one vacation request to vacationd at the UNIX
 * socket path: LHLO, MAIL FROM:<sender>, RCPT TO:<rcpt> with the
 * parameters, DATA with msg[0..size) (CRLF, not dot-stuffed). Returns 0
 * when vacationd answered 2xx for the recipient (a reply was sent or
 * the rules said none is due: its text is put into result), -1 with the
 * reason in result (cannot connect, protocol error, 4xx/5xx). Waits at
 * most timeout seconds for each read or write. Never exits.
 */
int vacation_client_send(const char *path, unsigned timeout,
    const char *helo, const char *sender, const char *rcpt,
    const struct vacation_params *p, const char *msg, size_t size,
    struct str *result);

#endif
