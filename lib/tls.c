/* SPDX-License-Identifier: MIT */
/*
 * tls - TLS contexts and sessions on streams (OpenSSL 3)
 *
 * DESCRIPTION
 *	See tls.h for the contract. The SSL object reads and writes the
 *	stream's fd directly (a socket BIO); the fd is non-blocking (the
 *	stream made it so), so OpenSSL reports WANT_READ / WANT_WRITE,
 *	which the handshake loop turns into a poll(2) with the deadline,
 *	and which the installed stream_io hands back to the stream as
 *	EAGAIN with the matching want, so the stream's own deadline logic
 *	does the waiting during the session.
 *
 *	SSL_read after the peer closed without close_notify is treated as
 *	end of file (SSL_OP_IGNORE_UNEXPECTED_EOF, as Postfix does): every
 *	protocol we speak delimits its own messages, so a truncation cannot
 *	pass for a complete message.
 *
 *	Error text: the OpenSSL error queue is drained into the caller's
 *	str, so the queue never leaks into a later, unrelated call.
 *
 * SEE ALSO
 *	Postfix src/tls/tls_server.c, tls_misc.c; OpenSMTPD ssl.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "stream.h"
#include "tls.h"

struct tls_context {
	SSL_CTX *ssl_ctx;
	bool server;
	bool have_ca;
};

struct tls_session {
	SSL *ssl;
	struct stream *stream;
	struct tls_context *ctx;
};

/* The session ID context: any constant; sessions are ours alone. */
static const unsigned char tls_sid_ctx[] = "postern";

/* tls_init - one-time library setup */
void
tls_init(void)
{
	static bool done;

	if (done)
		return;
	(void)OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
	    OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
	done = true;
}

/* tls_error - set error to "what: <openssl errors>" and clear the queue */
static void
tls_error(struct str *error, const char *what)
{
	unsigned long e;
	char buf[256];
	bool first = true;

	str_set_cstr(error, what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		str_append_cstr(error, first ? ": " : "; ");
		str_append_cstr(error, buf);
		first = false;
	}
}

/* tls_version_parse - "TLSv1.2" -> TLS1_2_VERSION; 0 if unknown */
static int
tls_version_parse(const char *p, size_t n)
{
	static const struct {
		const char *name;
		int version;
	} versions[] = {
		{ "SSLv2", 1 }, { "SSLv3", SSL3_VERSION },
		{ "TLSv1", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
		{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	};
	size_t i;

	for (i = 0; i < N_ELEMENTS(versions); i++)
		if (strlen(versions[i].name) == n &&
		    strncasecmp(versions[i].name, p, n) == 0)
			return versions[i].version;
	return 0;
}

/* tls_protocols_parse - see tls.h */
bool
tls_protocols_parse(const char *protocols, int *min_r, int *max_r,
    struct str *error)
{
	/* Ordered: what "the lowest not excluded" walks through. */
	static const int order[] = { TLS1_VERSION, TLS1_1_VERSION,
	    TLS1_2_VERSION, TLS1_3_VERSION };
	bool excluded[N_ELEMENTS(order)] = { false };
	bool any_exclusion = false;
	int min = 0, max = 0, v;
	const char *p, *end;
	size_t i, n;

	if (protocols == NULL || *protocols == '\0')
		protocols = ">=TLSv1.2";
	for (p = protocols; *p != '\0'; p = end) {
		while (*p == ' ' || *p == '\t' || *p == ',' || *p == ':')
			p++;
		if (*p == '\0')
			break;
		end = p;
		while (*end != '\0' && *end != ' ' && *end != '\t' &&
		    *end != ',' && *end != ':')
			end++;
		n = (size_t)(end - p);
		if (n > 2 && (strncmp(p, ">=", 2) == 0 || strncmp(p, "<=", 2) == 0)) {
			if ((v = tls_version_parse(p + 2, n - 2)) == 0)
				goto bad;
			if (p[0] == '>')
				min = v;
			else
				max = v;
		} else if (n > 1 && p[0] == '!') {
			if ((v = tls_version_parse(p + 1, n - 1)) == 0)
				goto bad;
			for (i = 0; i < N_ELEMENTS(order); i++)
				if (order[i] == v)
					excluded[i] = true;
			any_exclusion = true;
		} else {
			/* A bare version means "this one and up". */
			if ((v = tls_version_parse(p, n)) == 0)
				goto bad;
			min = v;
		}
	}
	if (any_exclusion) {
		for (i = 0; i < N_ELEMENTS(order); i++)
			if (!excluded[i] && order[i] >= min)
				break;
		if (i == N_ELEMENTS(order)) {
			str_set_cstr(error, "tls_protocols excludes every protocol");
			return false;
		}
		min = order[i];
	}
	if (min < TLS1_VERSION)
		min = TLS1_VERSION;
	if (max != 0 && max < min) {
		str_set_cstr(error, "tls_protocols: maximum below minimum");
		return false;
	}
	*min_r = min;
	*max_r = max;
	return true;
bad:
	str_set_cstr(error, "tls_protocols: unknown protocol \"");
	str_append(error, p, (size_t)(end - p));
	str_append_cstr(error, "\"");
	return false;
}

/* tls_context_new - the common part of server and client contexts */
static struct tls_context *
tls_context_new(const struct tls_params *params, bool server, struct str *error)
{
	struct tls_context *ctx;
	int min, max;

	tls_init();
	ERR_clear_error();
	if (!tls_protocols_parse(params->protocols, &min, &max, error))
		return NULL;
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->server = server;
	ctx->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx->ssl_ctx == NULL) {
		tls_error(error, "SSL_CTX_new");
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, min) ||
	    !SSL_CTX_set_max_proto_version(ctx->ssl_ctx, max)) {
		tls_error(error, "cannot set the protocol range");
		goto fail;
	}
	SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (params->ciphers != NULL && *params->ciphers != '\0' &&
	    !SSL_CTX_set_cipher_list(ctx->ssl_ctx, params->ciphers)) {
		tls_error(error, "bad tls_ciphers");
		goto fail;
	}
	if (params->ca_file != NULL && *params->ca_file != '\0') {
		if (!SSL_CTX_load_verify_locations(ctx->ssl_ctx, params->ca_file, NULL)) {
			tls_error(error, "cannot load the CA file");
			goto fail;
		}
		ctx->have_ca = true;
	}
	if (params->cert_file != NULL && *params->cert_file != '\0') {
		const char *key = params->key_file != NULL &&
		    *params->key_file != '\0' ? params->key_file : params->cert_file;

		if (!SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, params->cert_file)) {
			tls_error(error, "cannot load the certificate file");
			goto fail;
		}
		if (!SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key, SSL_FILETYPE_PEM)) {
			tls_error(error, "cannot load the private key file");
			goto fail;
		}
		if (!SSL_CTX_check_private_key(ctx->ssl_ctx)) {
			tls_error(error, "the private key does not match the certificate");
			goto fail;
		}
	} else if (server) {
		str_set_cstr(error, "no certificate file configured");
		goto fail;
	}
	if (server) {
		(void)SSL_CTX_set_session_id_context(ctx->ssl_ctx, tls_sid_ctx,
		    sizeof(tls_sid_ctx) - 1);
		SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_set_timeout(ctx->ssl_ctx, 3600);
		/* Client certificates later: do not ask for one now. */
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	} else {
		/*
		 * Opportunistic by default: the handshake completes and the
		 * result of verification is reported, not enforced (the
		 * policy lives with the caller).
		 */
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
fail:
	tls_context_free(&ctx);
	return NULL;
}

struct tls_context *
tls_context_new_server(const struct tls_params *params, struct str *error)
{
	return tls_context_new(params, true, error);
}

struct tls_context *
tls_context_new_client(const struct tls_params *params, struct str *error)
{
	return tls_context_new(params, false, error);
}

/* tls_context_free - free the context (NULL allowed) */
void
tls_context_free(struct tls_context **ctxp)
{
	struct tls_context *ctx = *ctxp;

	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
	*ctxp = NULL;
}

/* tls_now_ms - a monotonic clock in milliseconds */
static int64_t
tls_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tls_wait - poll fd for events until deadline_ms (0 = none); 0, or -1 with errno */
static int
tls_wait(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = -1;
		if (deadline_ms != 0) {
			left = deadline_ms - tls_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* tls_io_read - the stream_io read hook */
static ssize_t
tls_io_read(void *vctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct tls_session *sess = vctx;
	size_t done = 0;
	int ret, err;

	ERR_clear_error();
	ret = SSL_read_ex(sess->ssl, buf, len, &done);
	if (ret == 1)
		return (ssize_t)done;
	err = SSL_get_error(sess->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		*want_r = STREAM_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want_r = STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = ECONNRESET;
		ERR_clear_error();
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

/* tls_io_write - the stream_io write hook */
static ssize_t
tls_io_write(void *vctx, const void *buf, size_t len, enum stream_want *want_r)
{
	struct tls_session *sess = vctx;
	size_t done = 0;
	int ret, err;

	ERR_clear_error();
	ret = SSL_write_ex(sess->ssl, buf, len, &done);
	if (ret == 1)
		return (ssize_t)done;
	err = SSL_get_error(sess->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		*want_r = STREAM_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want_r = STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		ERR_clear_error();
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

static const struct stream_io tls_stream_io = {
	.read = tls_io_read,
	.write = tls_io_write,
};

/* tls_session_start - see tls.h */
struct tls_session *
tls_session_start(struct tls_context *ctx, struct stream *s,
    const char *peer_name, unsigned timeout, struct str *error)
{
	return tls_session_start_with(ctx, s, peer_name, NULL, NULL, timeout,
	    error);
}

/* tls_session_start_with - see tls.h */
struct tls_session *
tls_session_start_with(struct tls_context *ctx, struct stream *s,
    const char *peer_name, int (*prepare)(struct ssl_st *, void *,
    struct str *), void *arg, unsigned timeout, struct str *error)
{
	struct tls_session *sess;
	int64_t deadline = timeout != 0 ? tls_now_ms() + (int64_t)timeout * 1000 : 0;
	int fd = stream_fd(s);
	int ret, err;

	if (stream_flush(s) < 0) {
		str_set_cstr(error, "cannot flush before the handshake");
		return NULL;
	}
	/* Whatever came before the handshake is plaintext injection. */
	stream_discard_input(s);

	ERR_clear_error();
	sess = xcalloc(1, sizeof(*sess));
	sess->ctx = ctx;
	sess->stream = s;
	if ((sess->ssl = SSL_new(ctx->ssl_ctx)) == NULL ||
	    !SSL_set_fd(sess->ssl, fd)) {
		tls_error(error, "SSL_new");
		goto fail;
	}
	if (ctx->server)
		SSL_set_accept_state(sess->ssl);
	else {
		SSL_set_connect_state(sess->ssl);
		if (peer_name != NULL && *peer_name != '\0') {
			/* The macro casts to void *: hand it a copy it may not
			 * change anyway (OpenSSL copies the name). */
			char *name = xstrdup(peer_name);
			long ok = SSL_set_tlsext_host_name(sess->ssl, name);

			free(name);
			if (!ok) {
				tls_error(error, "cannot set SNI");
				goto fail;
			}
		}
	}
	if (prepare != NULL && prepare(sess->ssl, arg, error) < 0)
		goto fail;
	for (;;) {
		ERR_clear_error();
		ret = SSL_do_handshake(sess->ssl);
		if (ret == 1)
			break;
		err = SSL_get_error(sess->ssl, ret);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			if (tls_wait(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    deadline) < 0) {
				str_set_cstr(error, errno == ETIMEDOUT ?
				    "handshake timed out" : "handshake: poll failed");
				goto fail;
			}
			continue;
		}
		if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			str_set_cstr(error, errno != 0 ?
			    "handshake: connection lost" :
			    "handshake: connection closed by peer");
			goto fail;
		}
		tls_error(error, "handshake failed");
		goto fail;
	}
	stream_set_io(s, &tls_stream_io, sess);
	return sess;
fail:
	ERR_clear_error();
	SSL_free(sess->ssl);
	free(sess);
	return NULL;
}

/* tls_context_ssl_ctx - see tls.h */
struct ssl_ctx_st *
tls_context_ssl_ctx(const struct tls_context *ctx)
{
	return ctx->ssl_ctx;
}

/* tls_session_ssl - see tls.h */
struct ssl_st *
tls_session_ssl(const struct tls_session *sess)
{
	return sess->ssl;
}

/* tls_session_free - see tls.h */
void
tls_session_free(struct tls_session **sessp)
{
	struct tls_session *sess = *sessp;

	if (sess == NULL)
		return;
	/* One close_notify attempt; never wait for the peer's. */
	ERR_clear_error();
	(void)SSL_shutdown(sess->ssl);
	ERR_clear_error();
	stream_set_io(sess->stream, NULL, NULL);
	SSL_free(sess->ssl);
	free(sess);
	*sessp = NULL;
}

/* tls_session_describe - "TLSv1.3 with cipher X (256/256 bits)" */
void
tls_session_describe(const struct tls_session *sess, struct str *out)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(sess->ssl);
	int alg_bits = 0, bits = 0;

	if (c != NULL)
		bits = SSL_CIPHER_get_bits(c, &alg_bits);
	str_printf(out, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(sess->ssl), c != NULL ? SSL_CIPHER_get_name(c) : "unknown",
	    bits, alg_bits);
}

const char *
tls_session_protocol(const struct tls_session *sess)
{
	return SSL_get_version(sess->ssl);
}

const char *
tls_session_cipher(const struct tls_session *sess)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(sess->ssl);

	return c != NULL ? SSL_CIPHER_get_name(c) : "unknown";
}

bool
tls_session_reused(const struct tls_session *sess)
{
	return SSL_session_reused(sess->ssl) == 1;
}

bool
tls_session_pending(const struct tls_session *sess)
{
	return SSL_pending(sess->ssl) > 0;
}

bool
tls_session_verified(const struct tls_session *sess)
{
	X509 *peer;
	bool ok;

	if (!sess->ctx->have_ca)
		return false;
	if ((peer = SSL_get1_peer_certificate(sess->ssl)) == NULL)
		return false;
	ok = SSL_get_verify_result(sess->ssl) == X509_V_OK;
	X509_free(peer);
	return ok;
}

/* tls_session_name_matches - see tls.h */
bool
tls_session_name_matches(const struct tls_session *sess, const char *name)
{
	unsigned char addr[16];
	X509 *peer;
	int r;

	if (name == NULL || *name == '\0' ||
	    (peer = SSL_get1_peer_certificate(sess->ssl)) == NULL)
		return false;
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1)
		r = X509_check_ip_asc(peer, name, 0);
	else
		r = X509_check_host(peer, name, strlen(name),
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
	X509_free(peer);
	return r == 1;
}
