/* SPDX-License-Identifier: MIT */
/*
 * tls_test - unit tests for tls: protocol strings, contexts, a real
 * handshake over a socketpair (server here, client in a child process),
 * the discard of pipelined plaintext, and session descriptions.
 *
 * The certificate is made with `openssl req` into test_tmpdir().
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "alloc.h"
#include "log.h"
#include "stream.h"
#include "str.h"
#include "test.h"
#include "tls.h"

static char *cert_path, *key_path;

/* make_cert - a self-signed EC certificate in test_tmpdir() */
static bool
make_cert(void)
{
	char *cmd;
	int rc;

	cert_path = xasprintf("%s/cert.pem", test_tmpdir());
	key_path = xasprintf("%s/key.pem", test_tmpdir());
	cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost "
	    "-keyout '%s' -out '%s' >/dev/null 2>&1", key_path, cert_path);
	rc = system(cmd);
	free(cmd);
	return rc == 0;
}

static void
test_protocols(void)
{
	struct str *err = str_new(0, 0);
	int min, max;

	test_begin("tls_protocols_parse");
	TEST_ASSERT(tls_protocols_parse(NULL, &min, &max, err));
	TEST_ASSERT(min == TLS1_2_VERSION && max == 0);
	TEST_ASSERT(tls_protocols_parse(">=TLSv1.3", &min, &max, err));
	TEST_ASSERT(min == TLS1_3_VERSION && max == 0);
	TEST_ASSERT(tls_protocols_parse("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
	    &min, &max, err));
	TEST_ASSERT(min == TLS1_2_VERSION && max == 0);
	TEST_ASSERT(tls_protocols_parse(">=TLSv1.2 <=TLSv1.2", &min, &max, err));
	TEST_ASSERT(min == TLS1_2_VERSION && max == TLS1_2_VERSION);
	TEST_ASSERT(!tls_protocols_parse(">=TLSv9", &min, &max, err));
	TEST_ASSERT(strstr(str_c(err), "TLSv9") != NULL);
	TEST_ASSERT(!tls_protocols_parse("!TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3",
	    &min, &max, err));
	TEST_ASSERT(!tls_protocols_parse(">=TLSv1.3 <=TLSv1.2", &min, &max, err));
	test_end();
	str_free(&err);
}

static void
test_contexts(void)
{
	struct str *err = str_new(0, 0);
	struct tls_params p = { 0 };
	struct tls_context *ctx;

	test_begin("tls contexts");
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "no certificate") != NULL);
	p.cert_file = "/nonexistent/cert.pem";
	p.key_file = "/nonexistent/key.pem";
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "certificate file") != NULL);
	p.cert_file = cert_path;
	p.key_file = cert_path;		/* no key in there */
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	p.key_file = key_path;
	p.ciphers = "NO-SUCH-CIPHER";
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "tls_ciphers") != NULL);
	p.ciphers = NULL;
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx != NULL);
	tls_context_free(&ctx);
	TEST_ASSERT(ctx == NULL);
	tls_context_free(&ctx);
	ctx = tls_context_new_client(&p, err);
	TEST_ASSERT(ctx != NULL);
	tls_context_free(&ctx);
	test_end();
	str_free(&err);
}

/*
 * client_child - the client side: send "STARTTLS" and a pipelined
 * "INJECTED" line in one write, wait for "220", handshake, send
 * "after", expect "echo after", close. Exit status 0 on success.
 */
static int
client_child(int fd, const char *protocols)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_params p = { .protocols = protocols, .ca_file = cert_path };
	struct tls_context *ctx;
	struct tls_session *sess;
	struct stream *s = stream_new(fd, 10, 0);

	if ((ctx = tls_context_new_client(&p, err)) == NULL)
		return 10;
	stream_puts(s, "STARTTLS\r\nINJECTED\r\n");
	if (stream_flush(s) < 0)
		return 11;
	if (stream_read_line(s, line, 1000) != STREAM_OK ||
	    strncmp(str_c(line), "220", 3) != 0)
		return 12;
	if ((sess = tls_session_start(ctx, s, "localhost", 10, err)) == NULL) {
		fprintf(stderr, "# client: %s\n", str_c(err));
		return 13;
	}
	if (!tls_session_verified(sess))
		return 14;
	if (!tls_session_name_matches(sess, "localhost") ||
	    !tls_session_name_matches(sess, "LocalHost") ||
	    tls_session_name_matches(sess, "other.example") ||
	    tls_session_name_matches(sess, "127.0.0.1"))
		return 19;
	stream_puts(s, "after\r\n");
	if (stream_flush(s) < 0)
		return 15;
	if (stream_read_line(s, line, 1000) != STREAM_OK ||
	    !str_equals_cstr(line, "echo after\r\n"))
		return 16;
	/* A large write and read back, to cross record boundaries. */
	str_clear(line);
	for (int i = 0; i < 5000; i++)
		str_append_cstr(line, "0123456789");
	str_append_cstr(line, "\r\n");
	stream_write(s, str_c(line), str_len(line));
	if (stream_flush(s) < 0)
		return 17;
	if (stream_read_line(s, line, 100000) != STREAM_OK || str_len(line) != 50002)
		return 18;
	tls_session_free(&sess);
	stream_free(&s);
	tls_context_free(&ctx);
	str_free(&err);
	str_free(&line);
	return 0;
}

static void
test_handshake(const char *protocols, const char *want_version)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0),
	    *desc = str_new(0, 0);
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct tls_context *ctx;
	struct tls_session *sess = NULL;
	struct stream *s;
	int sv[2], status = -1;
	pid_t pid;

	test_begin(want_version);
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx != NULL);
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		_exit(client_child(sv[1], protocols));
	}
	close(sv[1]);
	s = stream_new(sv[0], 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 1000) == STREAM_OK);
	TEST_ASSERT(str_equals_cstr(line, "STARTTLS\r\n"));
	/* Wait until the injected line is surely buffered too. */
	for (int i = 0; i < 100 && stream_pending(s) == 0; i++)
		usleep(10000);
	TEST_ASSERT(stream_pending(s) > 0);
	stream_puts(s, "220 2.0.0 Ready to start TLS\r\n");
	if (ctx != NULL)
		sess = tls_session_start(ctx, s, NULL, 10, err);
	TEST_ASSERT(sess != NULL);
	if (sess == NULL)
		fprintf(stderr, "# server: %s\n", str_c(err));
	if (sess != NULL) {
		TEST_ASSERT(strcmp(tls_session_protocol(sess), want_version) == 0);
		tls_session_describe(sess, desc);
		TEST_ASSERT(strncmp(str_c(desc), want_version, strlen(want_version)) == 0);
		TEST_ASSERT(strstr(str_c(desc), " with cipher ") != NULL);
		TEST_ASSERT(strstr(str_c(desc), " bits)") != NULL);
		TEST_ASSERT(!tls_session_reused(sess));
		/* The pipelined plaintext is gone: the next line is "after". */
		TEST_ASSERT(stream_read_line(s, line, 1000) == STREAM_OK);
		TEST_ASSERT(str_equals_cstr(line, "after\r\n"));
		stream_puts(s, "echo ");
		stream_write(s, str_c(line), str_len(line));
		TEST_ASSERT(stream_flush(s) == 0);
		TEST_ASSERT(stream_read_line(s, line, 100000) == STREAM_OK);
		TEST_ASSERT(str_len(line) == 50002);
		stream_write(s, str_c(line), str_len(line));
		TEST_ASSERT(stream_flush(s) == 0);
		/* The client closes: EOF, not an error. */
		TEST_ASSERT(stream_read_line(s, line, 1000) == STREAM_EOF);
		tls_session_free(&sess);
		TEST_ASSERT(sess == NULL);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "# client status %d\n", status);
	stream_free(&s);
	tls_context_free(&ctx);
	str_free(&err);
	str_free(&line);
	str_free(&desc);
	test_end();
}

/* test_handshake_garbage - a peer that speaks plaintext fails the handshake cleanly */
static void
test_handshake_garbage(void)
{
	struct str *err = str_new(0, 0);
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct tls_context *ctx = tls_context_new_server(&p, err);
	struct tls_session *sess;
	struct stream *s;
	int sv[2];
	static const char junk[] = "EHLO not-tls.example\r\n";

	test_begin("handshake with a plaintext peer fails");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 5, 0);
	TEST_ASSERT(write(sv[1], junk, sizeof(junk) - 1) == (ssize_t)(sizeof(junk) - 1));
	shutdown(sv[1], SHUT_WR);
	sess = tls_session_start(ctx, s, NULL, 5, err);
	TEST_ASSERT(sess == NULL);
	TEST_ASSERT(str_len(err) > 0);
	stream_free(&s);
	close(sv[1]);
	tls_context_free(&ctx);
	str_free(&err);
	test_end();
}

/* test_handshake_timeout - a silent peer times out */
static void
test_handshake_timeout(void)
{
	struct str *err = str_new(0, 0);
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct tls_context *ctx = tls_context_new_server(&p, err);
	struct tls_session *sess;
	struct stream *s;
	int sv[2];

	test_begin("handshake timeout");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 1, 0);
	sess = tls_session_start(ctx, s, NULL, 1, err);
	TEST_ASSERT(sess == NULL);
	TEST_ASSERT(strstr(str_c(err), "timed out") != NULL);
	stream_free(&s);
	close(sv[1]);
	tls_context_free(&ctx);
	str_free(&err);
	test_end();
}

int
main(void)
{
	log_init("tls_test");
	(void)signal(SIGPIPE, SIG_IGN);
	test_protocols();
	test_begin("make a certificate");
	TEST_ASSERT(make_cert());
	test_end();
	test_contexts();
	test_handshake(NULL, "TLSv1.3");
	test_handshake("<=TLSv1.2", "TLSv1.2");
	test_handshake_garbage();
	test_handshake_timeout();
	free(cert_path);
	free(key_path);
	return test_done();
}
