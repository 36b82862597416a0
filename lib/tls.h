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
 * (per process, by session ID, TLS 1.2) and issues RFC 5077 / RFC 8446
 * tickets. With the instance's shared ticket keys (lib/tls_ticket.h;
 * tls_context_ticket_keys_config, which tls_context_new_server_config
 * calls) a ticket from any worker process of any service resumes with
 * any other, also across reloads, until its key expires; without them
 * (tls_session_ticket_key_lifetime = 0, or no key file) OpenSSL's
 * per-process keys are used and a session resumes only with the worker
 * that made it.
 *
 * SNI (server): besides the default certificate (cert_file/key_file) a
 * server context may hold more certificate/key pairs, each chosen by the
 * client's server name indication: "mail.example.org" matches that name
 * only, ".example.org" any name below example.org (the longest suffix
 * wins; an exact name beats any suffix), as Postfix's
 * tls_server_sni_maps. No SNI, or a name not listed, gets the default
 * certificate (no alert). Every file is loaded when the context is made,
 * as root in pre_jail, so keys may be readable by root only.
 *
 * Client certificates (server): with ask_client_cert the server asks for
 * one (listing the CAs of ca_file as acceptable issuers); a certificate
 * that does not verify against ca_file is still accepted, and the
 * session reports it as untrusted. With require_client_cert (needs
 * ca_file) a client without a certificate that verifies fails the
 * handshake. The caller logs what tls_session_trust() and
 * tls_session_peer_*() report.
 *
 * Certificate reload: a context is immutable; it reads its files once.
 * On `postern reload` master sends SIGHUP to its workers; the server
 * skeleton (single mode) finishes the connection in progress (an
 * established TLS session goes on with the old certificate) and exits,
 * and the next worker builds a fresh context in pre_jail from the files
 * as they are then. So renewed certificates are in use for every new
 * connection after a reload, whatever max_use and max_idle say.
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

struct config;
struct ssl_st;
struct stream;
struct tls_context;
struct tls_session;

/* One SNI certificate: name is "host.example.org" or ".example.org". */
struct tls_sni_entry {
	const char *name;
	const char *cert_file;	/* PEM: certificate then chain */
	const char *key_file;	/* NULL/"" = in cert_file */
};

struct tls_params {
	const char *cert_file;	/* PEM: certificate then chain (server: required) */
	const char *key_file;	/* PEM private key ("" or NULL = in cert_file) */
	const char *ca_file;	/* trusted CAs for verifying the peer, or NULL/"" */
	const char *protocols;	/* see above; NULL/"" = ">=TLSv1.2" */
	const char *ciphers;	/* OpenSSL list for TLS <= 1.2; NULL/"" = default */
	/* Server only: */
	const struct tls_sni_entry *sni;	/* nsni extra certificates by SNI name */
	size_t nsni;
	bool ask_client_cert;		/* request a client certificate */
	bool require_client_cert;	/* ... and fail without a verified one */
};

/* tls_init - load OpenSSL error strings etc.; idempotent, called by the constructors */
void tls_init(void);

/*
 * tls_context_new_server / _client - make a context from params. Server:
 * cert_file and key_file must load and match, and so must every SNI
 * pair; require_client_cert needs ca_file. Client: cert_file is
 * optional (sent when the server asks), ca_file is used for
 * tls_session_verified(). NULL with *error set on failure. The result is
 * owned by the caller: tls_context_free() (NULL allowed).
 */
struct tls_context *tls_context_new_server(const struct tls_params *params,
    struct str *error);
struct tls_context *tls_context_new_client(const struct tls_params *params,
    struct str *error);
void tls_context_free(struct tls_context **ctxp);

/*
 * tls_context_new_server_config - the server context postern.conf (cfg)
 * describes: tls_cert_file, tls_key_file, tls_protocols, tls_ciphers,
 * tls_ca_file, tls_ask_client_cert, tls_require_client_cert, and the
 * tables of tls_server_sni_maps (file: or db: specs; their source text
 * is read now: "NAME CERTFILE [KEYFILE]" per line), with the shared
 * ticket keys (tls_context_ticket_keys_config; a failure there is
 * logged, as a warning unless the file is just missing, and TLS works
 * on). NULL with *error
 * empty when tls_cert_file is empty (no TLS); NULL with *error set on
 * failure. Call it in pre_jail (root: key files may be private).
 */
struct tls_context *tls_context_new_server_config(const struct config *cfg,
    struct str *error);

/*
 * tls_context_ticket_keys_config - a server context: when
 * tls_session_ticket_key_lifetime (cfg) is not 0, load the shared key
 * file $queue_directory/TLS_TICKET_KEYS_FILE (in pre_jail: it is
 * root's) and encrypt and decrypt tickets with it. 0 (keys in use, or
 * sharing is off), or -1 with *error set (no file, or refused): the
 * context then keeps OpenSSL's per-process keys, which work; errno
 * is ENOENT when the file does not exist.
 * tls_context_set_ticket_keys - use keys (copied) with lifetime
 * seconds (> 0) as lib/tls_ticket.h describes; for tests and the
 * above.
 */
struct tls_ticket_keys;
int tls_context_ticket_keys_config(struct tls_context *ctx,
    const struct config *cfg, struct str *error);
void tls_context_set_ticket_keys(struct tls_context *ctx,
    const struct tls_ticket_keys *keys, unsigned lifetime);

/*
 * tls_sni_value_parse - split an SNI table value "CERTFILE [KEYFILE]"
 * (white space or commas between) into copies in *cert_r and *key_r
 * (NULL when absent; free both). false with *error set if there are no
 * files or more than two. For tests and config checks.
 */
bool tls_sni_value_parse(const char *value, char **cert_r, char **key_r,
    struct str *error);

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
 * Client session resumption across processes (the smtp agents share
 * sessions through scache(8)): after a handshake, and after the first
 * reply read over TLS (a TLS 1.3 server sends its tickets after the
 * handshake), tls_session_export() serializes the session; before a
 * later handshake with the same server under the same policy, a
 * prepare callback (tls_session_start_with) offers it with
 * tls_ssl_offer_session(). A resumed session carries the verification
 * result of the handshake that made it (tls_session_verified() and the
 * peer certificate functions report that one), so the caller must
 * offer a session only where the same verification requirements hold.
 * The serialized form holds the session's secret: wipe it after use.
 *
 * tls_session_export - client: the session i2d_SSL_SESSION() form into
 * out (replaced) when SSL_SESSION_is_resumable() says it can be resumed
 * and it is within its own lifetime; false, out empty, when not (no
 * ticket yet, a server that resumes nothing, a session too old).
 * tls_ssl_offer_session - client, before the handshake: offer
 * der[0..len) (SSL_set_session); false when it does not decode, cannot
 * be resumed or is past its lifetime (the handshake is then a full
 * one). Never fails the handshake: a server that refuses the session
 * makes a full one.
 */
bool tls_session_export(const struct tls_session *sess, struct str *out);
bool tls_ssl_offer_session(struct ssl_st *ssl, const void *der, size_t len);
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
 * tls_session_sni - the server name the client sent (server side), or
 * NULL; borrowed, valid as long as sess.
 */
const char *tls_session_sni(const struct tls_session *sess);
/* tls_session_peer_cert - the peer presented a certificate (verified or not) */
bool tls_session_peer_cert(const struct tls_session *sess);
/*
 * tls_session_trust - "Trusted" (a peer certificate that verified),
 * "Untrusted" (one that did not) or "Anonymous" (none): the first word
 * of Postfix's "... TLS connection established" log line.
 */
const char *tls_session_trust(const struct tls_session *sess);
/*
 * tls_session_peer_subject / _issuer - append the peer certificate's
 * subject or issuer ("CN=x,O=y": RFC 2253 escaping in the certificate's
 * order, made printable and capped: peer data);
 * false and nothing appended without a peer certificate.
 * tls_session_peer_fingerprint - append "SHA256:AB:CD:..." of the
 * peer certificate; false without one.
 */
bool tls_session_peer_subject(const struct tls_session *sess, struct str *out);
bool tls_session_peer_issuer(const struct tls_session *sess, struct str *out);
bool tls_session_peer_fingerprint(const struct tls_session *sess,
    struct str *out);
/*
 * tls_session_peer_describe - append the Postfix Received: comment text
 * (server side): "No client certificate requested", "Client did not
 * present a certificate", or 'Client CN "x", Issuer "y" (verified
 * OK)' / "(not verified)". Quotes, parentheses and backslashes in the
 * names become '?'.
 */
void tls_session_peer_describe(const struct tls_session *sess,
    struct str *out);
/*
 * tls_session_name_matches - the peer's certificate is for name (RFC
 * 6125: subjectAltName DNS entries, one leading "*." label wildcard, the
 * CN only when there are none; an IP address literal is matched against
 * IP entries). Says nothing about trust: use with tls_session_verified.
 */
bool tls_session_name_matches(const struct tls_session *sess,
    const char *name);

#endif
