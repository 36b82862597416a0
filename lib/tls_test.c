/* SPDX-License-Identifier: MIT */
/*
 * tls_test - unit tests for tls: protocol strings, contexts, a real
 * handshake over a socketpair (server here, client in a child process),
 * the discard of pipelined plaintext, and session descriptions.
 *
 * SNI certificate selection and client certificates (asked for,
 * required; trusted and not) over the same kind of socketpair.
 *
 * Shared ticket keys: a session made with one server context resumes
 * with another that has the same keys (as two worker processes do), and
 * not with one that has other keys, for TLS 1.3 and 1.2.
 *
 * The certificates are made with `openssl req` into test_tmpdir().
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
#include "tls_ticket.h"

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


/* sh - run cmd (owned, freed) quietly in test_tmpdir(); true if it exits 0 */
static bool
sh(char *cmd)
{
	char *full = xasprintf("cd '%s' && (%s) >/dev/null 2>&1",
	    test_tmpdir(), cmd);
	int rc = system(full);

	free(cmd);
	free(full);
	return rc == 0;
}

/* self_signed - N.pem and N.key for CN cn with DNS name san */
static bool
self_signed(const char *n, const char *cn, const char *san)
{
	return sh(xasprintf("openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=%s' "
	    "-addext 'subjectAltName=DNS:%s' -keyout %s.key -out %s.pem",
	    cn, san, n, n));
}

/*
 * make_pki - in test_tmpdir(): ca.pem/ca.key (a CA), sni.pem/sni.key
 * (mail.example.org), wild.pem/wild.key (*.example.net), alice.pem/
 * alice.key (a client signed by the CA), self.pem/self.key (a client
 * signed by nobody)
 */
static bool
make_pki(void)
{
	return self_signed("ca", "Test CA", "ca.invalid") &&
	    self_signed("sni", "mail.example.org", "mail.example.org") &&
	    self_signed("wild", "any.example.net", "*.example.net") &&
	    self_signed("self", "mallory", "mallory.invalid") &&
	    sh(xasprintf("openssl req -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes "
	    "-subj '/CN=alice/O=Example (\"quoted\")' "
	    "-keyout alice.key -out alice.csr && openssl x509 -req -in "
	    "alice.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	    "-out alice.pem"));
}

/* tmp - a path in test_tmpdir() (owned) */
static char *
tmp(const char *name)
{
	return xasprintf("%s/%s", test_tmpdir(), name);
}

/*
 * pair_client - the client of run_pair: handshake with SNI name (may be
 * NULL) and the certificate in cp, then "hi" and its echo. Exit status:
 * 0 failed, 1 the server showed the default certificate (localhost), 2
 * mail.example.org, 3 *.example.net, 4 something else.
 */
static int
pair_client(int fd, const struct tls_params *cp, const char *name)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_context *ctx;
	struct tls_session *sess;
	struct stream *s = stream_new(fd, 10, 0);
	int which = 4;

	if ((ctx = tls_context_new_client(cp, err)) == NULL ||
	    (sess = tls_session_start(ctx, s, name, 10, err)) == NULL)
		return 0;
	if (tls_session_name_matches(sess, "localhost"))
		which = 1;
	else if (tls_session_name_matches(sess, "mail.example.org"))
		which = 2;
	else if (tls_session_name_matches(sess, "x.example.net"))
		which = 3;
	stream_puts(s, "hi\r\n");
	if (stream_flush(s) < 0 ||
	    stream_read_line(s, line, 100) != STREAM_OK ||
	    !str_equals_cstr(line, "hi\r\n"))
		return 0;
	tls_session_free(&sess);
	stream_free(&s);
	tls_context_free(&ctx);
	str_free(&err);
	str_free(&line);
	return which;
}

/*
 * run_pair - a handshake between ctx (server, here) and a client child
 * (cp, SNI name); returns the child's pair_client() status, with the
 * server's view in *info_r ("SNI|trust|subject|fingerprint|describe")
 * or "fail: reason"
 */
static int
run_pair(struct tls_context *ctx, const struct tls_params *cp,
    const char *name, struct str *info_r)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_session *sess;
	struct stream *s;
	int sv[2], status = 0;
	pid_t pid;

	str_clear(info_r);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		_exit(pair_client(sv[1], cp, name));
	}
	close(sv[1]);
	s = stream_new(sv[0], 10, 0);
	if ((sess = tls_session_start(ctx, s, NULL, 10, err)) == NULL) {
		str_printf(info_r, "fail: %s", str_c(err));
	} else {
		const char *sni = tls_session_sni(sess);

		str_printf(info_r, "%s|%s|", sni != NULL ? sni : "-",
		    tls_session_trust(sess));
		(void)tls_session_peer_subject(sess, info_r);
		str_append_cstr(info_r, "|");
		(void)tls_session_peer_fingerprint(sess, info_r);
		str_append_cstr(info_r, "|");
		tls_session_peer_describe(sess, info_r);
		if (stream_read_line(s, line, 100) == STREAM_OK) {
			stream_write(s, str_c(line), str_len(line));
			(void)stream_flush(s);
		}
		(void)stream_read_line(s, line, 100);	/* the client's close */
		tls_session_free(&sess);
	}
	stream_free(&s);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		status = -1;
	else
		status = WEXITSTATUS(status);
	str_free(&err);
	str_free(&line);
	return status;
}

/* resume_prepare - tls_session_start_with hook: offer the saved session */
static int
resume_prepare(SSL *ssl, void *arg, struct str *error)
{
	if (arg != NULL && SSL_set_session(ssl, arg) != 1) {
		str_set_cstr(error, "SSL_set_session");
		return -1;
	}
	return 0;
}

/*
 * resume_client - n connections on fds, the first full, the others
 * offering its session; each sends "hi" and reads the echo (so TLS 1.3
 * tickets have arrived). Exit status: bit i set when connection i
 * (i >= 1) resumed; 0x80 on any failure.
 */
static int
resume_client(const int *fds, int n, const char *protocols)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct tls_params p = { .protocols = protocols };
	struct tls_context *ctx = tls_context_new_client(&p, err);
	SSL_SESSION *saved = NULL;
	int i, bits = 0;

	if (ctx == NULL)
		return 0x80;
	for (i = 0; i < n; i++) {
		struct stream *s = stream_new(fds[i], 10, 0);
		struct tls_session *sess;

		sess = tls_session_start_with(ctx, s, "localhost",
		    resume_prepare, saved, 10, err);
		if (sess == NULL)
			return 0x80;
		stream_puts(s, "hi\r\n");
		if (stream_flush(s) < 0 ||
		    stream_read_line(s, line, 100) != STREAM_OK)
			return 0x80;
		if (i == 0)
			saved = SSL_get1_session(tls_session_ssl(sess));
		else if (tls_session_reused(sess))
			bits |= 1 << i;
		tls_session_free(&sess);
		stream_free(&s);
	}
	SSL_SESSION_free(saved);
	tls_context_free(&ctx);
	str_free(&err);
	str_free(&line);
	return bits;
}

/* resume_serve - serve one resume_client connection; -1 failed, else reused */
static int
resume_serve(struct tls_context *ctx, int fd)
{
	struct str *err = str_new(0, 0), *line = str_new(0, 0);
	struct stream *s = stream_new(fd, 10, 0);
	struct tls_session *sess;
	int ret = -1;

	if ((sess = tls_session_start(ctx, s, NULL, 10, err)) == NULL)
		fprintf(stderr, "# server: %s\n", str_c(err));
	else if (stream_read_line(s, line, 100) == STREAM_OK) {
		stream_write(s, str_c(line), str_len(line));
		if (stream_flush(s) == 0)
			ret = tls_session_reused(sess) ? 1 : 0;
		(void)stream_read_line(s, line, 100);	/* the client's close */
	}
	tls_session_free(&sess);
	stream_free(&s);
	str_free(&err);
	str_free(&line);
	return ret;
}

/* test_shared_tickets - contexts with the same ticket keys resume each other's sessions */
static void
test_shared_tickets(const char *protocols, const char *name)
{
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct str *err = str_new(0, 0);
	struct tls_ticket_keys keys, other;
	struct tls_context *ctx[4] = { NULL, NULL, NULL, NULL };
	int sv[4][2], fds[4], i, status = -1;
	time_t due;
	pid_t pid;

	test_begin(name);
	memset(&keys, 0, sizeof(keys));
	memset(&other, 0, sizeof(other));
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, time(NULL), 3600, &due) == 1);
	TEST_ASSERT(tls_ticket_keys_rotate(&other, time(NULL), 3600, &due) == 1);
	for (i = 0; i < 4; i++) {
		ctx[i] = tls_context_new_server(&p, err);
		TEST_ASSERT(ctx[i] != NULL);
		TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) == 0);
		fds[i] = sv[i][1];
	}
	if (ctx[0] == NULL || ctx[1] == NULL || ctx[2] == NULL ||
	    ctx[3] == NULL)
		goto out;
	/* 0 issues; 1 has the same keys; 2 other keys; 3 OpenSSL's own. */
	tls_context_set_ticket_keys(ctx[0], &keys, 3600);
	tls_context_set_ticket_keys(ctx[1], &keys, 3600);
	tls_context_set_ticket_keys(ctx[2], &other, 3600);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		for (i = 0; i < 4; i++)
			close(sv[i][0]);
		_exit(resume_client(fds, 4, protocols));
	}
	for (i = 0; i < 4; i++)
		close(sv[i][1]);
	TEST_ASSERT(resume_serve(ctx[0], sv[0][0]) == 0);
	TEST_ASSERT(resume_serve(ctx[1], sv[1][0]) == 1);
	TEST_ASSERT(resume_serve(ctx[2], sv[2][0]) == 0);
	TEST_ASSERT(resume_serve(ctx[3], sv[3][0]) == 0);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0x2);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0x2)
		fprintf(stderr, "# client status %#x\n", status);
out:
	for (i = 0; i < 4; i++)
		tls_context_free(&ctx[i]);
	tls_ticket_keys_wipe(&keys);
	tls_ticket_keys_wipe(&other);
	str_free(&err);
	test_end();
}

/* test_sni_value - the "CERTFILE [KEYFILE]" values of SNI tables */
static void
test_sni_value(void)
{
	struct str *err = str_new(0, 0);
	char *cert, *key;

	test_begin("tls_sni_value_parse");
	TEST_ASSERT(tls_sni_value_parse("/a/cert.pem /a/key.pem", &cert, &key, err));
	TEST_ASSERT(strcmp(cert, "/a/cert.pem") == 0 && strcmp(key, "/a/key.pem") == 0);
	free(cert);
	free(key);
	TEST_ASSERT(tls_sni_value_parse(" /a/both.pem ", &cert, &key, err));
	TEST_ASSERT(strcmp(cert, "/a/both.pem") == 0 && key == NULL);
	free(cert);
	TEST_ASSERT(tls_sni_value_parse("/c.pem,/k.pem", &cert, &key, err));
	TEST_ASSERT(strcmp(cert, "/c.pem") == 0 && strcmp(key, "/k.pem") == 0);
	free(cert);
	free(key);
	TEST_ASSERT(!tls_sni_value_parse("  , ", &cert, &key, err));
	TEST_ASSERT(strstr(str_c(err), "no certificate") != NULL);
	TEST_ASSERT(!tls_sni_value_parse("/a /b /c", &cert, &key, err));
	TEST_ASSERT(strstr(str_c(err), "more than two") != NULL);
	test_end();
	str_free(&err);
}

/* test_sni - the certificate follows the client's server name */
static void
test_sni(void)
{
	char *sni_pem = tmp("sni.pem"), *sni_key = tmp("sni.key");
	char *wild_pem = tmp("wild.pem"), *wild_key = tmp("wild.key");
	char *ca = tmp("ca.pem");
	struct tls_sni_entry sni[] = {
		{ "mail.example.org", sni_pem, sni_key },
		{ ".Example.NET", wild_pem, wild_key },
		{ "other.example.org", sni_pem, sni_key },	/* shares */
	};
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path,
	    .sni = sni, .nsni = N_ELEMENTS(sni) };
	struct tls_params cp = { 0 };
	struct str *err = str_new(0, 0), *info = str_new(0, 0);
	struct tls_context *ctx;
	static const struct {
		const char *name;
		int want;
		const char *sni;
	} cases[] = {
		{ NULL, 1, "-" },
		{ "mail.example.org", 2, "mail.example.org" },
		{ "MAIL.Example.ORG", 2, "MAIL.Example.ORG" },
		{ "mail.example.org.", 2, "mail.example.org." },
		{ "other.example.org", 2, "other.example.org" },
		{ "x.example.net", 3, "x.example.net" },
		{ "a.b.example.net", 3, "a.b.example.net" },
		{ "example.net", 1, "example.net" },	/* .x matches below x only */
		{ "example.org", 1, "example.org" },
		{ "unknown.example", 1, "unknown.example" },
	};
	size_t i;

	test_begin("SNI certificate selection");
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx != NULL);
	for (i = 0; ctx != NULL && i < N_ELEMENTS(cases); i++) {
		int got = run_pair(ctx, &cp, cases[i].name, info);

		TEST_ASSERT(got == cases[i].want);
		TEST_ASSERT(strncmp(str_c(info), cases[i].sni,
		    strlen(cases[i].sni)) == 0);
		if (got != cases[i].want)
			fprintf(stderr, "# %s: got %d (%s)\n", cases[i].name != NULL ?
			    cases[i].name : "(none)", got, str_c(info));
	}
	tls_context_free(&ctx);
	/* A pair that does not load fails the whole context. */
	sni[1].key_file = sni_key;
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "private key") != NULL);
	TEST_ASSERT(strstr(str_c(err), ".Example.NET") != NULL);
	sni[1].key_file = wild_key;
	sni[0].cert_file = "/nonexistent.pem";
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "/nonexistent.pem") != NULL);
	(void)ca;
	test_end();
	free(sni_pem);
	free(sni_key);
	free(wild_pem);
	free(wild_key);
	free(ca);
	str_free(&err);
	str_free(&info);
}

/* test_client_certs - asked for, required, trusted or not */
static void
test_client_certs(void)
{
	char *ca = tmp("ca.pem");
	char *alice_pem = tmp("alice.pem"), *alice_key = tmp("alice.key");
	char *self_pem = tmp("self.pem"), *self_key = tmp("self.key");
	struct tls_params p = { .cert_file = cert_path, .key_file = key_path };
	struct tls_params none = { 0 };
	struct tls_params alice = { .cert_file = alice_pem, .key_file = alice_key };
	struct tls_params self = { .cert_file = self_pem, .key_file = self_key };
	struct str *err = str_new(0, 0), *info = str_new(0, 0);
	struct tls_context *ctx;

	test_begin("client certificates");
	/* Not asked: nothing about the client. */
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(run_pair(ctx, &alice, NULL, info) == 1);
	TEST_ASSERT(strcmp(str_c(info),
	    "-|Anonymous|||No client certificate requested") == 0);
	tls_context_free(&ctx);

	/* Asked for: optional, verified when the CA signed it. */
	p.ask_client_cert = true;
	p.ca_file = ca;
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx != NULL);
	TEST_ASSERT(run_pair(ctx, &none, NULL, info) == 1);
	TEST_ASSERT(strcmp(str_c(info),
	    "-|Anonymous|||Client did not present a certificate") == 0);
	TEST_ASSERT(run_pair(ctx, &alice, NULL, info) == 1);
	TEST_ASSERT(strncmp(str_c(info), "-|Trusted|", 10) == 0);
	/* Peer text: the quotes and parentheses in O= are made harmless. */
	TEST_ASSERT(strstr(str_c(info), "|CN=alice,O=Example (\\\"quoted\\\")|") != NULL);
	TEST_ASSERT(strstr(str_c(info), "|SHA256:") != NULL);
	TEST_ASSERT(strstr(str_c(info),
	    "|Client CN \"alice\", Issuer \"Test CA\" (verified OK)") != NULL);
	TEST_ASSERT(run_pair(ctx, &self, NULL, info) == 1);
	TEST_ASSERT(strncmp(str_c(info), "-|Untrusted|CN=mallory|SHA256:", 30) == 0);
	TEST_ASSERT(strstr(str_c(info),
	    "|Client CN \"mallory\", Issuer \"mallory\" (not verified)") != NULL);
	tls_context_free(&ctx);

	/* Required: no certificate, or an untrusted one, fails. */
	p.ask_client_cert = false;
	p.require_client_cert = true;
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx != NULL);
	TEST_ASSERT(run_pair(ctx, &none, NULL, info) == 0);
	TEST_ASSERT(strstr(str_c(info), "fail: ") == str_c(info));
	TEST_ASSERT(run_pair(ctx, &self, NULL, info) == 0);
	TEST_ASSERT(strstr(str_c(info), "fail: ") == str_c(info));
	TEST_ASSERT(run_pair(ctx, &alice, NULL, info) == 1);
	TEST_ASSERT(strncmp(str_c(info), "-|Trusted|CN=alice", 18) == 0);
	tls_context_free(&ctx);

	/* Required without a CA file is a configuration error. */
	p.ca_file = NULL;
	ctx = tls_context_new_server(&p, err);
	TEST_ASSERT(ctx == NULL);
	TEST_ASSERT(strstr(str_c(err), "tls_ca_file") != NULL);
	test_end();
	free(ca);
	free(alice_pem);
	free(alice_key);
	free(self_pem);
	free(self_key);
	str_free(&err);
	str_free(&info);
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
	test_shared_tickets(NULL, "shared ticket keys: TLSv1.3");
	test_shared_tickets("<=TLSv1.2", "shared ticket keys: TLSv1.2");
	test_sni_value();
	test_begin("make a CA and more certificates");
	TEST_ASSERT(make_pki());
	test_end();
	test_sni();
	test_client_certs();
	free(cert_path);
	free(key_path);
	return test_done();
}
