/* SPDX-License-Identifier: MIT */
/*
 * tls_dane - DANE authentication of a TLS server (RFC 6698, RFC 7671,
 * RFC 7672) with OpenSSL's built-in DANE, on top of lib/tls
 *
 * A struct tls_dane is the usable TLSA records of one server (the RRset
 * at _port._tcp.host, which the caller found with a DNSSEC-validated
 * lookup: lib/dns) and the TLSA base domain, the name the certificate
 * must carry for DANE-TA(2). For SMTP (RFC 7672 3.1.3) only DANE-TA(2)
 * and DANE-EE(3) are usable; PKIX-TA(0) and PKIX-EE(1) records, unknown
 * selectors or matching types, and digests of the wrong length are
 * skipped when added. DANE-EE(3) ignores names and validity dates (RFC
 * 7671 5.1): only the key or certificate counts.
 *
 *	dane = tls_dane_new("mx.example.org");
 *	for each TLSA record: tls_dane_add(dane, u, s, m, data, len);
 *	if (tls_dane_count(dane) == 0) -> no usable records
 *	sess = tls_dane_session_start(ctx, s, dane, timeout, err);
 *	if (!tls_dane_session_verified(sess, how)) -> refuse the server
 *	tls_dane_free(&dane);   // any time after the handshake
 *
 * The handshake itself never fails for DANE reasons (the client
 * context verifies with SSL_VERIFY_NONE): the caller decides with
 * tls_dane_session_verified(), as for tls_session_verified().
 *
 * Errors are return values with a reason in the caller's str; nothing
 * exits except on memory exhaustion.
 */
#ifndef POSTERN_TLS_DANE_H
#define POSTERN_TLS_DANE_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

struct stream;
struct tls_context;
struct tls_session;
struct tls_dane;

/* TLSA certificate usages (RFC 6698 2.1.1, RFC 7218) */
enum { TLS_DANE_PKIX_TA, TLS_DANE_PKIX_EE, TLS_DANE_DANE_TA,
    TLS_DANE_DANE_EE };

/*
 * tls_dane_context_enable - make ctx (a client context) able to do DANE
 * (SSL_CTX_dane_enable); once per context, before any session. -1 with
 * *error set on failure.
 */
int tls_dane_context_enable(struct tls_context *ctx, struct str *error);

/*
 * tls_dane_new - an empty record set for the TLSA base domain base_name
 * (copied; the MX host name for SMTP). Owned by the caller.
 */
struct tls_dane *tls_dane_new(const char *base_name);
/* tls_dane_free - free (NULL allowed) and NULL *danep */
void tls_dane_free(struct tls_dane **danep);

/*
 * tls_dane_add - add one TLSA record (data copied) if it is usable for
 * SMTP; false when it is skipped (see above).
 */
bool tls_dane_add(struct tls_dane *dane, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len);
/* tls_dane_count - the number of usable records added */
size_t tls_dane_count(const struct tls_dane *dane);
/* tls_dane_base - the TLSA base domain (borrowed, lives as dane) */
const char *tls_dane_base(const struct tls_dane *dane);

/*
 * tls_dane_session_start - tls_session_start() (SNI: the base domain)
 * with DANE verification against dane's records (which must not be
 * empty) set up before the handshake. Same ownership and errors.
 */
struct tls_session *tls_dane_session_start(struct tls_context *ctx,
    struct stream *s, const struct tls_dane *dane, unsigned timeout,
    struct str *error);

/*
 * tls_dane_ssl_prepare - set up DANE with dane's records (not empty) on
 * ssl, a new client SSL before its handshake: for a caller's own
 * prepare hook of tls_session_start_with() (with SNI
 * tls_dane_base(dane)), e.g. one that also offers a session for
 * resumption. -1 with *error set.
 */
struct ssl_st;
int tls_dane_ssl_prepare(struct ssl_st *ssl, const struct tls_dane *dane,
    struct str *error);

/*
 * tls_dane_digest - append to out the hex SHA-256 of the base domain and
 * the records (in a canonical order, so the DNS answer's order does not
 * matter): the part of a session cache key that says which DANE
 * requirements a session was verified under.
 */
void tls_dane_digest(const struct tls_dane *dane, struct str *out);

/*
 * tls_dane_session_verified - did the server's chain match one of the
 * records (and, for DANE-TA, carry the base domain)? On true, appends
 * to how which record matched, e.g. "TLSA 3 1 1 (DANE-EE) matched the
 * end entity public key". On false, appends the verification error.
 * A resumed session (tls_ssl_offer_session) is not verified again: it
 * counts as verified when the handshake that made it was, so offer a
 * session only under the same base domain and records (a cache key
 * with tls_dane_digest()).
 */
bool tls_dane_session_verified(const struct tls_session *sess,
    struct str *how);

#endif
