/* SPDX-License-Identifier: MIT */
/*
 * tls_dane - DANE authentication of a TLS server (see tls_dane.h)
 *
 * DESCRIPTION
 *	A thin layer over OpenSSL's DANE support (SSL_dane_enable(3)), as
 *	Postfix's tls_dane.c uses it: the context gets the digest table
 *	once (SSL_CTX_dane_enable); each session gets the base domain
 *	(reference identifier and SNI) and the records
 *	(SSL_dane_tlsa_add) from the prepare hook of
 *	tls_session_start_with(), before the ClientHello. DANE-EE name
 *	checks are off (DANE_FLAG_NO_DANE_EE_NAMECHECKS, RFC 7672 3.1.1);
 *	OpenSSL then skips the chain and the dates for an end-entity match.
 *	DANE-TA(2) needs the trust anchor in the chain the server sends
 *	(RFC 7672 3.1.2) and the base domain in the certificate; partial
 *	wildcards ("a*.example") are not accepted.
 *
 *	Records are filtered when added (tls_dane_add()), so that "no
 *	usable records" (RFC 7672 2.2: TLS, but no authentication) is
 *	known before connecting: usages 0 and 1 (RFC 7672 3.1.3),
 *	selectors other than 0/1, matching types other than 0/1/2, SHA2
 *	digests of the wrong length and empty full-data records.
 *
 * SEE ALSO
 *	RFC 6698, RFC 7671, RFC 7672, SSL_dane_enable(3), lib/tls.h
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <openssl/evp.h>

#include "alloc.h"
#include "log.h"
#include "macros.h"
#include "tls.h"
#include "tls_dane.h"

struct tls_dane_rec {
	uint8_t usage, selector, mtype;
	unsigned char *data;
	size_t len;
};

struct tls_dane {
	char *base;
	struct tls_dane_rec *recs;
	size_t n, cap;
};

/* tls_dane_ssl_error - "what: OpenSSL's reason" into error */
static void
tls_dane_ssl_error(struct str *error, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	str_clear(error);
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		str_printf(error, "%s: %s", what, buf);
	} else
		str_printf(error, "%s failed", what);
	ERR_clear_error();
}

/* tls_dane_context_enable - see tls_dane.h */
int
tls_dane_context_enable(struct tls_context *ctx, struct str *error)
{
	if (SSL_CTX_dane_enable(tls_context_ssl_ctx(ctx)) <= 0) {
		tls_dane_ssl_error(error, "SSL_CTX_dane_enable");
		return -1;
	}
	return 0;
}

/* tls_dane_new - see tls_dane.h */
struct tls_dane *
tls_dane_new(const char *base_name)
{
	struct tls_dane *dane = xcalloc(1, sizeof(*dane));

	dane->base = xstrdup(base_name);
	return dane;
}

/* tls_dane_free - see tls_dane.h */
void
tls_dane_free(struct tls_dane **danep)
{
	struct tls_dane *dane = *danep;
	size_t i;

	if (dane == NULL)
		return;
	for (i = 0; i < dane->n; i++)
		free(dane->recs[i].data);
	free(dane->recs);
	free(dane->base);
	free(dane);
	*danep = NULL;
}

/* tls_dane_add - see tls_dane.h */
bool
tls_dane_add(struct tls_dane *dane, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len)
{
	struct tls_dane_rec *r;

	if (usage != TLS_DANE_DANE_TA && usage != TLS_DANE_DANE_EE)
		return false;
	if (selector > 1 || mtype > 2)
		return false;
	if ((mtype == 1 && len != 32) || (mtype == 2 && len != 64) ||
	    (mtype == 0 && len == 0))
		return false;
	if (dane->n == dane->cap) {
		dane->cap = dane->cap == 0 ? 4 : 2 * dane->cap;
		dane->recs = xreallocarray(dane->recs, dane->cap,
		    sizeof(*dane->recs));
	}
	r = &dane->recs[dane->n++];
	r->usage = (uint8_t)usage;
	r->selector = (uint8_t)selector;
	r->mtype = (uint8_t)mtype;
	r->data = xmalloc(len);
	memcpy(r->data, data, len);
	r->len = len;
	return true;
}

/* tls_dane_count - see tls_dane.h */
size_t
tls_dane_count(const struct tls_dane *dane)
{
	return dane->n;
}

/* tls_dane_base - see tls_dane.h */
const char *
tls_dane_base(const struct tls_dane *dane)
{
	return dane->base;
}

/* tls_dane_rec_cmp - qsort order of records: fields, then data */
static int
tls_dane_rec_cmp(const void *a, const void *b)
{
	const struct tls_dane_rec *x = *(const struct tls_dane_rec *const *)a;
	const struct tls_dane_rec *y = *(const struct tls_dane_rec *const *)b;
	int c;

	if (x->usage != y->usage)
		return x->usage < y->usage ? -1 : 1;
	if (x->selector != y->selector)
		return x->selector < y->selector ? -1 : 1;
	if (x->mtype != y->mtype)
		return x->mtype < y->mtype ? -1 : 1;
	if ((c = memcmp(x->data, y->data, MIN(x->len, y->len))) != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* tls_dane_digest - see tls_dane.h */
void
tls_dane_digest(const struct tls_dane *dane, struct str *out)
{
	static const char hex[] = "0123456789abcdef";
	const struct tls_dane_rec **sorted;
	unsigned char md[EVP_MAX_MD_SIZE], head[7];
	unsigned int mdlen = 0, k;
	EVP_MD_CTX *ctx;
	size_t i;

	sorted = xcalloc(dane->n + 1, sizeof(*sorted));
	for (i = 0; i < dane->n; i++)
		sorted[i] = &dane->recs[i];
	qsort(sorted, dane->n, sizeof(*sorted), tls_dane_rec_cmp);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, dane->base, strlen(dane->base) + 1) != 1)
		goto fail;
	for (i = 0; i < dane->n; i++) {
		const struct tls_dane_rec *r = sorted[i];

		/* each record length-prefixed: no two sets hash alike */
		head[0] = r->usage;
		head[1] = r->selector;
		head[2] = r->mtype;
		head[3] = (unsigned char)(r->len >> 24);
		head[4] = (unsigned char)(r->len >> 16);
		head[5] = (unsigned char)(r->len >> 8);
		head[6] = (unsigned char)r->len;
		if (EVP_DigestUpdate(ctx, head, sizeof(head)) != 1 ||
		    EVP_DigestUpdate(ctx, r->data, r->len) != 1)
			goto fail;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto fail;
	for (k = 0; k < mdlen; k++) {
		(void)str_append_c(out, hex[md[k] >> 4]);
		(void)str_append_c(out, hex[md[k] & 15]);
	}
	EVP_MD_CTX_free(ctx);
	free(sorted);
	return;
fail:
	/* SHA-256 is always there; a failure here is a broken library */
	log_panic(NULL, "tls_dane_digest: SHA-256 failed");
}

/* tls_dane_ssl_prepare - see tls_dane.h */
int
tls_dane_ssl_prepare(struct ssl_st *ssl, const struct tls_dane *dane,
    struct str *error)
{
	size_t i, added = 0;

	if (SSL_dane_enable(ssl, dane->base) <= 0) {
		tls_dane_ssl_error(error, "SSL_dane_enable");
		return -1;
	}
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* no "a*.example.org" partial wildcards for DANE-TA (RFC 7672 3.2.3) */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (i = 0; i < dane->n; i++) {
		const struct tls_dane_rec *r = &dane->recs[i];
		int ret = SSL_dane_tlsa_add(ssl, r->usage, r->selector,
		    r->mtype, r->data, r->len);

		if (ret < 0) {
			tls_dane_ssl_error(error, "SSL_dane_tlsa_add");
			return -1;
		}
		if (ret > 0)
			added++;
	}
	if (added == 0) {
		str_set_cstr(error, "no usable TLSA records");
		return -1;
	}
	return 0;
}

/* tls_dane_prepare - tls_session_start_with()'s hook */
static int
tls_dane_prepare(SSL *ssl, void *arg, struct str *error)
{
	return tls_dane_ssl_prepare(ssl, arg, error);
}

/* tls_dane_session_start - see tls_dane.h */
struct tls_session *
tls_dane_session_start(struct tls_context *ctx, struct stream *s,
    const struct tls_dane *dane, unsigned timeout, struct str *error)
{
	return tls_session_start_with(ctx, s, dane->base, tls_dane_prepare,
	    (void *)(uintptr_t)dane, timeout, error);
}

/* tls_dane_session_verified - see tls_dane.h */
bool
tls_dane_session_verified(const struct tls_session *sess, struct str *how)
{
	static const char *const usages[] = { "PKIX-TA", "PKIX-EE",
	    "DANE-TA", "DANE-EE" };
	SSL *ssl = tls_session_ssl(sess);
	uint8_t usage = 0, selector = 0, mtype = 0;
	long v = SSL_get_verify_result(ssl);
	int depth;

	if (SSL_get0_peer_certificate(ssl) == NULL) {
		str_append_cstr(how, "no server certificate");
		return false;
	}
	/*
	 * A resumed session was not verified now: it carries the result of
	 * the handshake that made it (SSL_set_session copies it), and
	 * OpenSSL's record of which TLSA record matched is not part of a
	 * session. The caller offered it only under the same base domain
	 * and records (see tls_dane.h), so that result stands.
	 */
	if (SSL_session_reused(ssl) == 1) {
		if (v != X509_V_OK) {
			str_append_cstr(how, X509_verify_cert_error_string(v));
			return false;
		}
		str_append_cstr(how, "resumed a session whose server chain "
		    "matched these TLSA records");
		return true;
	}
	depth = SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, NULL,
	    NULL);
	if (v != X509_V_OK || depth < 0) {
		str_printf(how, "%s", v != X509_V_OK ?
		    X509_verify_cert_error_string(v) :
		    "no TLSA record matched");
		return false;
	}
	str_printf(how, "TLSA %u %u %u (%s) matched the %s %s at depth %d",
	    usage, selector, mtype, usage < 4 ? usages[usage] : "?",
	    depth == 0 ? "end entity" : "trust anchor",
	    selector == 1 ? "public key" : "certificate", depth);
	return true;
}
