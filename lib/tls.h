/* SPDX-License-Identifier: MIT */
/*
 * tls - TLS for every Postern service and the outbound client (OpenSSL 3)
 *
 * One module for smtpd (STARTTLS and implicit TLS), submission, imapd,
 * pop3d, sieved and the smtp client. A struct tls_context wraps an
 * SSL_CTX made once per process from postern.conf values (certificate
 * chain and key, protocol range, TLS 1.2 cipher list); a struct
 * tls_session runs the handshake on an existing struct stream and then
 * installs a struct stream_io on it, so the protocol code keeps reading
 * and writing the stream as before.
 *
 *	ctx = tls_context_new_server(&params, err);      // once, pre_jail
 *	...
 *	stream_puts(s, "220 2.0.0 Ready to start TLS\r\n");
 *	sess = tls_session_start(ctx, s, NULL, timeout, err);
 *	//   flushes s, DISCARDS buffered (pipelined plaintext) input,
 *	//   handshakes, installs the TLS stream_io
 *	tls_session_describe(sess, str);   // "TLSv1.3 with cipher ... (256/256 bits)"
 *	...
 *	tls_session_free(&sess);           // before stream_free()
 *
 * Pipelined plaintext: whatever the peer sent after the STARTTLS command
 * and before the handshake is in the stream's read buffer when
 * tls_session_start() is called; it is dropped (stream_discard_input())
 * and never executed. This is the RFC 3207 5.2 / CVE-2011-0411 rule; it
 * is done here, not in each caller, so no protocol can forget it.
 *
 * Protocols: "protocols" is a Postfix-style list: ">=TLSv1.2" (the
 * default), "<=TLSv1.3", or exclusions "!SSLv3, !TLSv1, !TLSv1.1"; the
 * lowest version not excluded becomes the minimum. Nothing below TLS 1.0
 * is ever enabled. "ciphers" is an OpenSSL cipher list for TLS <= 1.2
 * (TLS 1.3 suites are OpenSSL's defaults).
 *
 * Session resumption: the server context keeps OpenSSL's session cache
 * and issues RFC 5077 tickets; the ticket keys are per process (each
 * worker process has its own context), so a ticket resumes only with
 * the same worker. XXX: a shared ticket key file would make resumption
 * work across workers.
 *
 * Certificate reload: a context is immutable; to pick up new
 * certificates, make a new context. Daemons do not do that themselves:
 * `postern reload` (master SIGHUP) restarts the workers, which build a
 * fresh context in pre_jail. An SNI hook and client certificates are left
 * for later (the session already has room for a peer name).
 *
 * Errors: every call that can fail returns NULL or -1 and puts a
 * human-readable reason, including the OpenSSL error queue, into the
 * caller's error str (replaced). Nothing here exits except on memory
 * exhaustion. The process must ignore SIGPIPE (the server skeleton
 * does): OpenSSL writes to the socket with write(2).
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stdbool.h>

#include "str.h"

struct stream;
struct tls_context;
struct tls_session;

struct tls_params {
	const char *cert_file;	/* PEM: certificate then chain (server: required) */
	const char *key_file;	/* PEM private key ("" or NULL = in cert_file) */
	const char *ca_file;	/* trusted CAs for verifying the peer, or NULL/"" */
	const char *protocols;	/* see above; NULL/"" = ">=TLSv1.2" */
	const char *ciphers;	/* OpenSSL list for TLS <= 1.2; NULL/"" = default */
};

/* tls_init - load OpenSSL error strings etc.; idempotent, called by the constructors */
void tls_init(void);

/*
 * tls_context_new_server / _client - make a context from params. Server:
 * cert_file and key_file must load and match. Client: cert_file is
 * optional (client certificates later), ca_file is used for
 * tls_session_verified(). NULL with *error set on failure. The result is
 * owned by the caller: tls_context_free() (NULL allowed).
 */
struct tls_context *tls_context_new_server(const struct tls_params *params,
    struct str *error);
struct tls_context *tls_context_new_client(const struct tls_params *params,
    struct str *error);
void tls_context_free(struct tls_context **ctxp);

/*
 * tls_protocols_parse - the minimum and maximum protocol versions
 * (TLS1_2_VERSION etc., 0 = no maximum) of a protocols string; false with
 * *error set if it is malformed or excludes everything. For tests and
 * config checks.
 */
bool tls_protocols_parse(const char *protocols, int *min_r, int *max_r,
    struct str *error);

/*
 * tls_session_start - flush s, discard its buffered input, run the
 * handshake on its fd (server side if ctx is a server context, client
 * side otherwise, with SNI peer_name when not NULL) within timeout
 * seconds (0 = none), and on success install the TLS I/O on s. The
 * session borrows ctx and s: free the session before either. NULL with
 * *error set on failure; s is then unusable for the protocol (the
 * caller drops the connection).
 */
struct tls_session *tls_session_start(struct tls_context *ctx,
    struct stream *s, const char *peer_name, unsigned timeout,
    struct str *error);

/*
 * tls_session_start_with - tls_session_start, with prepare(ssl, arg,
 * error) called on the new SSL object before the handshake (lib/tls_dane
 * sets up DANE there); prepare returns -1 with *error set to give up.
 * tls_context_ssl_ctx / tls_session_ssl - the OpenSSL objects (SSL_CTX,
 * SSL), borrowed, for modules that extend this one (lib/tls_dane).
 */
struct ssl_st;
struct ssl_ctx_st;
struct tls_session *tls_session_start_with(struct tls_context *ctx,
    struct stream *s, const char *peer_name, int (*prepare)(struct ssl_st *,
    void *, struct str *), void *arg, unsigned timeout, struct str *error);
struct ssl_ctx_st *tls_context_ssl_ctx(const struct tls_context *ctx);
struct ssl_st *tls_session_ssl(const struct tls_session *sess);

/*
 * tls_session_free - send close_notify (best effort, no waiting), remove
 * the TLS I/O from the stream and free (NULL allowed).
 */
void tls_session_free(struct tls_session **sessp);

/*
 * tls_session_describe - append "TLSv1.3 with cipher
 * TLS_AES_256_GCM_SHA384 (256/256 bits)" to out (the text Postfix puts
 * in Received: headers and logs).
 */
void tls_session_describe(const struct tls_session *sess, struct str *out);
/* tls_session_protocol - "TLSv1.3"; tls_session_cipher - the cipher name (borrowed, live as sess) */
const char *tls_session_protocol(const struct tls_session *sess);
const char *tls_session_cipher(const struct tls_session *sess);
/* tls_session_reused - the handshake resumed an earlier session */
bool tls_session_reused(const struct tls_session *sess);
/*
 * tls_session_pending - decrypted input OpenSSL holds that the stream has
 * not read yet (a record larger than the stream's buffer). A relay that
 * waits for the fd to become readable must read first while this is true:
 * poll(2) cannot see these bytes.
 */
bool tls_session_pending(const struct tls_session *sess);
/* tls_session_verified - the peer presented a certificate that verified against ca_file */
bool tls_session_verified(const struct tls_session *sess);
/*
 * tls_session_name_matches - the peer's certificate is for name (RFC
 * 6125: subjectAltName DNS entries, one leading "*." label wildcard, the
 * CN only when there are none; an IP address literal is matched against
 * IP entries). Says nothing about trust: use with tls_session_verified.
 */
bool tls_session_name_matches(const struct tls_session *sess,
    const char *name);

#endif
