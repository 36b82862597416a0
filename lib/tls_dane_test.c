/* SPDX-License-Identifier: MIT */
/*
 * tls_dane_test - unit tests for tls_dane: which TLSA records are usable
 * for SMTP, and real handshakes (a lib/tls server in a child process,
 * over a socketpair) verified against DANE-EE records that match, that
 * do not, and that match a certificate issued for another name.
 *
 * The certificate is made with `openssl req` into test_tmpdir().
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
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
	return test_done();
}
