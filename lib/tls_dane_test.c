/* SPDX-License-Identifier: MIT */
/*
 * tls_dane_test - unit tests for tls_dane: which TLSA records are usable
 * for SMTP, and real handshakes (a lib/tls server in a child process,
 * over a socketpair) verified against DANE-EE records that match, that
 * do not, and that match a certificate issued for another name; the
 * digest of a record set (a session cache key); and resumption of an
 * exported session (tls_session_export, tls_ssl_offer_session) by a
 * second DANE handshake, which carries the first one's verdict.
 *
 * The certificate is made with `openssl req` into test_tmpdir().
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "log.h"
#include "stream.h"
#include "str.h"
#include "test.h"
#include "tls.h"
#include "tls_dane.h"

static char *cert_path, *key_path;

/* make_cert - a self-signed EC certificate for mx.example */
static bool
make_cert(void)
{
	char *cmd;
	int rc;

	cert_path = xasprintf("%s/cert.pem", test_tmpdir());
	key_path = xasprintf("%s/key.pem", test_tmpdir());
	cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=mx.example "
	    "-addext subjectAltName=DNS:mx.example "
	    "-keyout '%s' -out '%s' >/dev/null 2>&1", key_path, cert_path);
	rc = system(cmd);
	free(cmd);
	return rc == 0;
}

/* cert_digests - SHA-256 of the certificate's SPKI and of its DER */
static bool
cert_digests(unsigned char spki[32], unsigned char full[32])
{
	FILE *f = fopen(cert_path, "r");
	X509 *x;
	unsigned char *der = NULL;
	int len;

	if (f == NULL)
		return false;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return false;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	SHA256(der, (size_t)len, spki);
	OPENSSL_free(der);
	der = NULL;
	len = i2d_X509(x, &der);
	SHA256(der, (size_t)len, full);
	OPENSSL_free(der);
	X509_free(x);
	return true;
}

static void
test_usable(void)
{
	static const unsigned char d32[32], d64[64], full[100];
	struct tls_dane *dane = tls_dane_new("mx.example");

	test_begin("tls_dane_add: only DANE-TA/DANE-EE with known parameters");
	TEST_ASSERT(!tls_dane_add(dane, 0, 0, 1, d32, 32));	/* PKIX-TA */
	TEST_ASSERT(!tls_dane_add(dane, 1, 1, 1, d32, 32));	/* PKIX-EE */
	TEST_ASSERT(!tls_dane_add(dane, 4, 1, 1, d32, 32));
	TEST_ASSERT(!tls_dane_add(dane, 3, 2, 1, d32, 32));	/* selector */
	TEST_ASSERT(!tls_dane_add(dane, 3, 1, 3, d32, 32));	/* mtype */
	TEST_ASSERT(!tls_dane_add(dane, 3, 1, 1, d64, 31));	/* length */
	TEST_ASSERT(!tls_dane_add(dane, 3, 1, 2, d64, 32));
	TEST_ASSERT(!tls_dane_add(dane, 2, 0, 0, full, 0));
	TEST_ASSERT(tls_dane_count(dane) == 0);
	TEST_ASSERT(tls_dane_add(dane, 3, 1, 1, d32, 32));
	TEST_ASSERT(tls_dane_add(dane, 3, 0, 2, d64, 64));
	TEST_ASSERT(tls_dane_add(dane, 2, 0, 0, full, sizeof(full)));
	TEST_ASSERT(tls_dane_add(dane, 2, 1, 1, d32, 32));
	TEST_ASSERT(tls_dane_count(dane) == 4);
	TEST_ASSERT(strcmp(tls_dane_base(dane), "mx.example") == 0);
	tls_dane_free(&dane);
	TEST_ASSERT(dane == NULL);
	tls_dane_free(&dane);
	test_end();
}

/* server_child - a TLS server on fd until the client closes */
static int
server_child(int fd)
{
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_context *ctx = tls_context_new_server(&p, err);
	struct tls_session *sess;
	struct stream *s = stream_new(fd, 10, 0);

	if (ctx == NULL || (sess = tls_session_start(ctx, s, NULL, 10,
	    err)) == NULL)
		return 1;
	(void)stream_read_line(s, line, 1000);
	tls_session_free(&sess);
	stream_free(&s);
	tls_context_free(&ctx);
	return 0;
}

/*
 * handshake - a DANE client session to a fresh server with one record;
 * whether it verified, and how (or why not) in how
 */
static bool
handshake(const char *base, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len, struct str *how)
{
	struct tls_params p = { .protocols = NULL };
	struct str *err = str_new(0, 0);
	struct tls_context *ctx = tls_context_new_client(&p, err);
	struct tls_dane *dane = tls_dane_new(base);
	struct tls_session *sess = NULL;
	struct stream *s;
	bool ok = false;
	int sv[2], status = -1;
	pid_t pid;

	str_clear(how);
	TEST_ASSERT(ctx != NULL);
	TEST_ASSERT(tls_dane_context_enable(ctx, err) == 0);
	TEST_ASSERT(tls_dane_add(dane, usage, selector, mtype, data, len));
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		_exit(server_child(sv[1]));
	}
	close(sv[1]);
	s = stream_new(sv[0], 10, 0);
	sess = tls_dane_session_start(ctx, s, dane, 10, err);
	TEST_ASSERT(sess != NULL);
	if (sess == NULL)
		fprintf(stderr, "# client: %s\n", str_c(err));
	else {
		ok = tls_dane_session_verified(sess, how);
		stream_puts(s, "bye\r\n");
		(void)stream_flush(s);
		tls_session_free(&sess);
	}
	stream_free(&s);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tls_dane_free(&dane);
	tls_context_free(&ctx);
	str_free(&err);
	return ok;
}

static void
test_handshakes(void)
{
	unsigned char spki[32], full[32], wrong[32];
	struct str *how = str_new(0, 0);

	test_begin("DANE-EE handshakes");
	TEST_ASSERT(cert_digests(spki, full));
	memcpy(wrong, spki, sizeof(wrong));
	wrong[0] ^= 0xff;
	TEST_ASSERT(handshake("mx.example", 3, 1, 1, spki, 32, how));
	TEST_ASSERT(strcmp(str_c(how), "TLSA 3 1 1 (DANE-EE) matched the "
	    "end entity public key at depth 0") == 0);
	TEST_ASSERT(handshake("mx.example", 3, 0, 1, full, 32, how));
	TEST_ASSERT(strstr(str_c(how), "TLSA 3 0 1 (DANE-EE) matched the "
	    "end entity certificate") != NULL);
	/* DANE-EE ignores names (RFC 7672 3.1.1) */
	TEST_ASSERT(handshake("other.example", 3, 1, 1, spki, 32, how));
	TEST_ASSERT(!handshake("mx.example", 3, 1, 1, wrong, 32, how));
	TEST_ASSERT(str_len(how) > 0);
	str_free(&how);
	test_end();
}

static void
test_digest(void)
{
	static const unsigned char a[32] = { 1 }, b[32] = { 2 };
	struct tls_dane *x = tls_dane_new("mx.example");
	struct tls_dane *y = tls_dane_new("mx.example");
	struct tls_dane *z = tls_dane_new("other.example");
	struct str *dx = str_new(0, 0), *dy = str_new(0, 0),
	    *dz = str_new(0, 0);

	test_begin("tls_dane_digest: the record set, in any order");
	TEST_ASSERT(tls_dane_add(x, 3, 1, 1, a, 32));
	TEST_ASSERT(tls_dane_add(x, 3, 1, 1, b, 32));
	TEST_ASSERT(tls_dane_add(y, 3, 1, 1, b, 32));
	TEST_ASSERT(tls_dane_add(y, 3, 1, 1, a, 32));
	TEST_ASSERT(tls_dane_add(z, 3, 1, 1, a, 32));
	TEST_ASSERT(tls_dane_add(z, 3, 1, 1, b, 32));
	tls_dane_digest(x, dx);
	tls_dane_digest(y, dy);
	tls_dane_digest(z, dz);
	TEST_ASSERT(str_len(dx) == 64);
	TEST_ASSERT(strcmp(str_c(dx), str_c(dy)) == 0);
	/* another base domain, and one record fewer, differ */
	TEST_ASSERT(strcmp(str_c(dx), str_c(dz)) != 0);
	tls_dane_free(&y);
	y = tls_dane_new("mx.example");
	TEST_ASSERT(tls_dane_add(y, 3, 1, 1, a, 32));
	str_clear(dy);
	tls_dane_digest(y, dy);
	TEST_ASSERT(strcmp(str_c(dx), str_c(dy)) != 0);
	tls_dane_free(&x);
	tls_dane_free(&y);
	tls_dane_free(&z);
	str_free(&dx);
	str_free(&dy);
	str_free(&dz);
	test_end();
}

/* server_two - one server context, a session on each of fds in turn */
static int
server_two(const int *fds, size_t n)
{
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_context *ctx = tls_context_new_server(&p, err);
	size_t i;

	if (ctx == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		struct stream *s = stream_new(fds[i], 10, 0);
		struct tls_session *sess = tls_session_start(ctx, s, NULL, 10,
		    err);

		if (sess == NULL)
			return 2;
		/* a reply, as an SMTP server's: TLS 1.3 tickets precede it */
		stream_puts(s, "250 hello\r\n");
		if (stream_flush(s) < 0)
			return 3;
		(void)stream_read_line(s, line, 1000);
		tls_session_free(&sess);
		stream_free(&s);
	}
	tls_context_free(&ctx);
	return 0;
}

/* What resume_prepare sets up: DANE and a session to offer. */
struct resume_prep {
	const struct tls_dane *dane;
	const struct str *session;
	bool offered;
};

/* resume_prepare - a client's own prepare hook, as smtp's */
static int
resume_prepare(struct ssl_st *ssl, void *arg, struct str *err)
{
	struct resume_prep *rp = arg;

	if (tls_dane_ssl_prepare(ssl, rp->dane, err) < 0)
		return -1;
	if (str_len(rp->session) > 0)
		rp->offered = tls_ssl_offer_session(ssl, str_c(rp->session),
		    str_len(rp->session));
	return 0;
}

/*
 * resume_pair - two DANE handshakes with one server, the second offering
 * the first's session; the verdicts (and how) of both, and whether the
 * second resumed
 */
static void
resume_pair(const unsigned char *digest, bool *first_r, bool *second_r,
    bool *reused_r, struct str *how, struct str *keep)
{
	struct tls_params p = { .protocols = NULL };
	struct str *err = str_new(0, 0), *line = str_new(0, 0),
	    *session = str_new(0, 0);
	struct tls_context *ctx = tls_context_new_client(&p, err);
	struct tls_dane *dane = tls_dane_new("mx.example");
	struct resume_prep rp;
	int a[2], b[2], fds[2], status = -1, round;
	pid_t pid;

	*first_r = *second_r = *reused_r = false;
	TEST_ASSERT(ctx != NULL && tls_dane_context_enable(ctx, err) == 0);
	TEST_ASSERT(tls_dane_add(dane, 3, 1, 1, digest, 32));
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(a[0]);
		close(b[0]);
		fds[0] = a[1];
		fds[1] = b[1];
		_exit(server_two(fds, 2));
	}
	close(a[1]);
	close(b[1]);
	rp.dane = dane;
	rp.session = session;
	for (round = 0; round < 2; round++) {
		struct stream *s = stream_new(round == 0 ? a[0] : b[0], 10, 0);
		struct tls_session *sess;

		rp.offered = false;
		sess = tls_session_start_with(ctx, s, "mx.example",
		    resume_prepare, &rp, 10, err);
		TEST_ASSERT(sess != NULL);
		if (sess == NULL) {
			fprintf(stderr, "# client: %s\n", str_c(err));
			stream_free(&s);
			break;
		}
		TEST_ASSERT(stream_read_line(s, line, 1000) == STREAM_OK);
		str_clear(how);
		if (round == 0) {
			*first_r = tls_dane_session_verified(sess, how);
			TEST_ASSERT(!tls_session_reused(sess));
			TEST_ASSERT(tls_session_export(sess, session));
			TEST_ASSERT(str_len(session) > 0);
		} else {
			TEST_ASSERT(rp.offered);
			*reused_r = tls_session_reused(sess);
			*second_r = tls_dane_session_verified(sess, how);
		}
		stream_puts(s, "bye\r\n");
		(void)stream_flush(s);
		tls_session_free(&sess);
		stream_free(&s);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tls_dane_free(&dane);
	tls_context_free(&ctx);
	if (keep != NULL)
		str_set(keep, str_c(session), str_len(session));
	explicit_bzero(str_data(session), str_len(session));
	str_free(&session);
	str_free(&line);
	str_free(&err);
}

static void
test_resume(void)
{
	unsigned char spki[32], full[32];
	struct str *how = str_new(0, 0), *keep = str_new(0, 0);
	bool first, second, reused;
	static const unsigned char junk[] = "not a session";

	test_begin("resumed DANE sessions carry the first verdict");
	TEST_ASSERT(cert_digests(spki, full));
	resume_pair(spki, &first, &second, &reused, how, keep);
	TEST_ASSERT(first && reused && second);
	TEST_ASSERT(strcmp(str_c(how), "resumed a session whose server "
	    "chain matched these TLSA records") == 0);
	/* the session is offered while live, and not past its lifetime */
	{
		struct tls_params p = { .protocols = NULL };
		struct str *err = str_new(0, 0);
		struct tls_context *ctx = tls_context_new_client(&p, err);
		SSL *ssl = ctx != NULL ? SSL_new(tls_context_ssl_ctx(ctx)) :
		    NULL;
		const unsigned char *in = (const unsigned char *)str_c(keep);
		SSL_SESSION *ss = d2i_SSL_SESSION(NULL, &in,
		    (long)str_len(keep));
		unsigned char *der = NULL;
		int len;

		TEST_ASSERT(ssl != NULL && ss != NULL);
		TEST_ASSERT(tls_ssl_offer_session(ssl, str_c(keep),
		    str_len(keep)));
		(void)SSL_SESSION_set_time(ss, (long)time(NULL) -
		    SSL_SESSION_get_timeout(ss) - 1);
		TEST_ASSERT((len = i2d_SSL_SESSION(ss, &der)) > 0);
		TEST_ASSERT(!tls_ssl_offer_session(ssl, der, (size_t)len));
		OPENSSL_free(der);
		SSL_SESSION_free(ss);
		SSL_free(ssl);
		tls_context_free(&ctx);
		str_free(&err);
	}
	/* a session whose chain matched nothing resumes unverified */
	spki[0] ^= 0xff;
	resume_pair(spki, &first, &second, &reused, how, NULL);
	TEST_ASSERT(!first && reused && !second);
	TEST_ASSERT(str_len(how) > 0);
	/* what does not decode is not offered */
	TEST_ASSERT(!tls_ssl_offer_session(NULL, junk, sizeof(junk)));
	TEST_ASSERT(!tls_ssl_offer_session(NULL, junk, 0));
	explicit_bzero(str_data(keep), str_len(keep));
	str_free(&keep);
	str_free(&how);
	test_end();
}

int
main(void)
{
	log_init("tls_dane_test");
	(void)signal(SIGPIPE, SIG_IGN);
	test_usable();
	test_begin("openssl req");
	TEST_ASSERT(make_cert());
	test_end();
	test_handshakes();
	test_digest();
	test_resume();
	return test_done();
}
