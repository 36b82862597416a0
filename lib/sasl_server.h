/* SPDX-License-Identifier: MIT */
/*
 * sasl_server - server-side SASL over Cyrus libsasl2, for the login daemons
 *
 * One wrapper for imapd, smtpd, pop3d and sieved, so that every
 * AUTHENTICATE / AUTH speaks the same mechanisms with the same rules:
 *
 *	pre_jail:  sasl_server_setup("postern", &err)       (once, as root)
 *	session:   sa = sasl_server_create("imap", &c->log, allow_plaintext, &err);
 *	           sasl_server_mechs(sa, caps, " AUTH=");  (what to advertise)
 *	           r = sasl_server_begin(sa, "GSSAPI", ir, irlen, out, &err);
 *	           while (r == SASL_SERVER_CONTINUE) {
 *	                   send out (base64) as the challenge, read a line;
 *	                   r = sasl_server_next(sa, line, len, out, &err);
 *	           }
 *	           SASL_SERVER_OK: sasl_server_user(sa) is the local user
 *	           sasl_server_free(&sa);
 *
 * Mechanisms: libsasl2 loads only those in $sasl_mechanisms (its
 * mech_list option); a session offers those of them libsasl2 can run
 * (GSSAPI only with a usable keytab) and, unless allow_plaintext, not
 * the plaintext ones (PLAIN, LOGIN): the daemon decides allow_plaintext
 * from its own TLS rule (disable_plaintext_auth, smtpd_tls_auth_only).
 * No SASL security layer is ever negotiated (max_ssf 0): the daemons
 * have TLS for that, and a layer would change the byte stream under
 * the protocol parser. Anonymous mechanisms are refused.
 *
 * Passwords (PLAIN, LOGIN) are checked by Postern's own lib/auth
 * backends through libsasl2's userdb checkpass callback; libsasl2's own
 * password stores (sasldb, saslauthd) are never asked. GSSAPI runs in
 * the Heimdal plugin against $auth_krb5_keytab (set for the plugin and
 * as KRB5_KTNAME in sasl_server_setup, with KRB5_CONFIG from
 * $auth_krb5_config; the daemon keeps both through the environment
 * clean-up with SASL_SERVER_KEEP_ENV). The acceptor principal is
 * SERVICE/$sasl_hostname.
 *
 * The authenticated identity is mapped to a local user with
 * sasl_server_map_user(): "name@REALM" loses "@REALM" when REALM is
 * $auth_krb5_realm; what is left must be a valid local user name
 * (userdb_name_ok). Kerberos principals of another realm, or with an
 * instance ("user/admin"), are refused. An authorization identity
 * other than the authenticated one is refused (no proxy logins).
 *
 * Base64 is handled here: the caller passes the client's text as
 * received (strict base64; "=" is an empty initial response, RFC 4959)
 * and gets the challenge as base64 text. The caller handles the
 * protocol's cancel ("*").
 *
 * libsasl2 itself owns sasl_server_init/new/start/step/done, hence
 * setup/create/begin/next here.
 *
 * Nothing here exits except on memory exhaustion. The session logs
 * libsasl2's own messages with its log context.
 */
#ifndef POSTERN_SASL_SERVER_H
#define POSTERN_SASL_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct log_ctx;
struct str;
struct sasl_server;

/* Environment names a daemon using this module must keep (server.h keep_env). */
#define SASL_SERVER_KEEP_ENV "KRB5_KTNAME", "KRB5_CONFIG"

enum sasl_server_result {
	SASL_SERVER_CONTINUE,	/* send the challenge in out, read the answer */
	SASL_SERVER_OK,		/* authenticated: sasl_server_user() */
	SASL_SERVER_FAIL,	/* wrong credentials, refused identity */
	SASL_SERVER_NOAUTHZ,	/* authorization identity not allowed (for
				 * PLAIN with the right password: any authzid
				 * other than the authcid as sent) */
	SASL_SERVER_TEMPFAIL,	/* a backend failed: try again later */
	SASL_SERVER_BADMECH,	/* mechanism not offered in this session */
	SASL_SERVER_BADB64,	/* the client's text is not valid base64 */
	SASL_SERVER_ERROR,	/* libsasl2 or protocol failure */
};

/*
 * sasl_server_setup - once per process, in pre_jail (root, before a
 * chroot: the plugins are loaded here). Reads $sasl_mechanisms,
 * $auth_krb5_keytab and $auth_krb5_config from conf(). 0, or -1 with
 * *error_r (static text): the caller should then offer no SASL at all.
 * A second call does nothing.
 */
int sasl_server_setup(const char *app_name, const char **error_r);

/* sasl_server_ready - sasl_server_setup succeeded in this process */
bool sasl_server_ready(void);

/* sasl_server_deinit - libsasl2's sasl_server_done (before exit) */
void sasl_server_deinit(void);

/*
 * sasl_server_create - a session for service ("imap", "smtp", "pop",
 * "sieve": the Kerberos service name). log is borrowed and must outlive
 * the session. NULL with *error_r (static text) if libsasl2 refused.
 */
struct sasl_server *sasl_server_create(const char *service,
    const struct log_ctx *log, bool allow_plaintext, const char **error_r);

/* sasl_server_free - end the session; accepts NULL; NULLs *sap */
void sasl_server_free(struct sasl_server **sap);

/*
 * sasl_server_mechs - append the mechanisms this session offers to out,
 * each preceded by prefix (" AUTH=" for IMAP, " " for SMTP); nothing if
 * there are none.
 */
void sasl_server_mechs(const struct sasl_server *sa, struct str *out,
    const char *prefix);

/* sasl_server_mech_offered - mech (any case) is offered in this session */
bool sasl_server_mech_offered(const struct sasl_server *sa, const char *mech);

/*
 * sasl_server_begin - begin mech with the initial response ir (base64
 * text, ilen bytes; "=" is empty) or none (ir NULL). out gets the
 * base64 challenge for SASL_SERVER_CONTINUE (possibly empty). *error_r
 * (valid until the next call on sa) says why for FAIL, NOAUTHZ,
 * TEMPFAIL and ERROR, for the caller's log.
 */
enum sasl_server_result sasl_server_begin(struct sasl_server *sa,
    const char *mech, const char *ir, size_t ilen, struct str *out,
    const char **error_r);

/* sasl_server_next - the client's answer (base64 text) to a challenge */
enum sasl_server_result sasl_server_next(struct sasl_server *sa,
    const char *in, size_t ilen, struct str *out, const char **error_r);

/*
 * sasl_server_user - after SASL_SERVER_OK, the local user (lower case,
 * valid until sasl_server_free); NULL before.
 */
const char *sasl_server_user(const struct sasl_server *sa);

/* sasl_server_mech - the mechanism of the last start (upper case), or NULL */
const char *sasl_server_mech(const struct sasl_server *sa);

/* ---------------------------------------------------------- pure helpers */

/* sasl_server_mech_plaintext - mech sends a reusable password (PLAIN, LOGIN) */
bool sasl_server_mech_plaintext(const char *mech);

/*
 * sasl_server_filter_mechs - from available (libsasl2's list, separated
 * by spaces), append to out, each after prefix, the mechanisms that are
 * in allowed[0..nallowed) (any case) and, when !allow_plaintext, not
 * plaintext ones; in the order of available. Names are upper-cased.
 */
void sasl_server_filter_mechs(const char *available,
    const char *const *allowed, size_t nallowed, bool allow_plaintext,
    const char *prefix, struct str *out);

/*
 * sasl_server_map_user - the local user for an authenticated identity:
 * "user@REALM" -> "user" when REALM equals realm (case-sensitive, as
 * Kerberos realms are); any other '@' or '/' is refused. With fold the
 * name is lower-cased first (password mechanisms: the user typed it);
 * without, an upper-case letter is refused (Kerberos principal names
 * are case-sensitive: "Alice@R" is not "alice@R"). The result must pass
 * userdb_name_ok(). true with the name in out, or false.
 */
bool sasl_server_map_user(const char *authid, const char *realm, bool fold,
    struct str *out);

#endif
