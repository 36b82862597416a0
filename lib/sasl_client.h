/* SPDX-License-Identifier: MIT */
/*
 * sasl_client - SASL client exchanges through Cyrus libsasl2
 *
 * The client side of lib/sasl_server.h, for Postern's outbound
 * protocols: the smtp agent (AUTH, RFC 4954, smtp/smtp_sasl.c) and
 * news-gw (AUTHINFO SASL, RFC 4643 2.4, news-gw/newsgw_client.c). The
 * protocol code sends the mechanism name and base64 lines; this module
 * owns the libsasl2 connection, the callbacks that hand it the user
 * name and password, and the base64 coding.
 *
 *	if (sasl_client_setup(why) < 0) ...          // pre_jail, once
 *	sc = sasl_client_create("nntp", host, log, user, ulen, pass,
 *	    plen, SASL_SEC_NOANONYMOUS, why);
 *	switch (sasl_client_begin(sc, "PLAIN LOGIN", out, &has_ir, &mech,
 *	    why)) { ... }                            // out: base64, "" if none
 *	while (server continues)
 *		sasl_client_next(sc, challenge, len, out, why);
 *	sasl_client_free(&sc);                       // wipes the secret
 *
 * libsasl2 picks the strongest offered mechanism its client plugins
 * have that meets security_flags (SASL_SEC_* from <sasl/sasl.h>); no
 * security layer is negotiated (max_ssf 0): TLS does that. The password
 * lives in a libsasl2 secret that is wiped with the session; nothing
 * here logs it or the exchanges. libsasl2's own messages go to the
 * session's log (capped and made printable).
 *
 * Errors: -1 (or NULL) with a reason in why (replaced); nothing exits.
 * XXX libsasl2 keeps process-global state: one session at a time.
 */
#ifndef POSTERN_SASL_CLIENT_H
#define POSTERN_SASL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct log_ctx;
struct str;
struct sasl_client;

/* SASL_CLIENT_CHALLENGE_MAX - the longest base64 challenge sasl_client_next takes */
#define SASL_CLIENT_CHALLENGE_MAX	(64 * 1024)

/*
 * sasl_client_setup - load libsasl2's client plugins (before any chroot
 * or privilege drop); idempotent. 0, or -1 with why.
 */
int sasl_client_setup(struct str *why);

/* sasl_client_ready - sasl_client_setup succeeded in this process */
bool sasl_client_ready(void);

/*
 * sasl_client_create - a session for service ("smtp", "nntp") at host,
 * authenticating (and authorizing) as user with pass (both copied; the
 * copies are wiped by sasl_client_free). log is borrowed and must
 * outlive the session (NULL: process-level). NULL with why.
 * sasl_client_setup must have succeeded (panics otherwise).
 */
struct sasl_client *sasl_client_create(const char *service, const char *host,
    const struct log_ctx *log, const char *user, size_t ulen,
    const char *pass, size_t plen, unsigned security_flags, struct str *why);

/*
 * sasl_client_begin - choose among mechs (names separated by spaces)
 * and make the initial response: base64 into out (replaced; empty with
 * *has_ir_r false when the mechanism has none, empty with *has_ir_r
 * true for an empty one), the mechanism's name into *mech_r (valid
 * while sc lives). 0 ok, 1 no usable mechanism among mechs (why says
 * so; the caller may fall back), -1 error.
 */
int sasl_client_begin(struct sasl_client *sc, const char *mechs,
    struct str *out, bool *has_ir_r, const char **mech_r, struct str *why);

/*
 * sasl_client_next - the response (base64 into out, replaced) to the
 * server's base64 challenge (len octets, at most
 * SASL_CLIENT_CHALLENGE_MAX). 0, or -1 with why (bad base64, libsasl2
 * refused: the caller cancels the exchange).
 */
int sasl_client_next(struct sasl_client *sc, const char *challenge,
    size_t len, struct str *out, struct str *why);

/* sasl_client_free - dispose of the session and wipe the credentials; accepts NULL */
void sasl_client_free(struct sasl_client **scp);

#endif
