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
 *	Session tickets: with the instance's shared keys
 *	(tls_context_set_ticket_keys) OpenSSL's ticket key callback
 *	(tls_ticket_key_cb) encrypts with AES-256-CBC and HMAC-SHA256 under
 *	the key lib/tls_ticket says is current and decrypts with any key it
 *	still accepts; the time is read at each handshake, so a worker
 *	rotates keys by itself.
 *
 *	Error text: the OpenSSL error queue is drained into the caller's
 *	str, so the queue never leaks into a later, unrelated call.
 *
 * SEE ALSO
 *	Postfix src/tls/tls_server.c, tls_misc.c; OpenSMTPD ssl.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "stream.h"
#include "tls.h"
#include "tls_ticket.h"

/* An SNI certificate: "host.example.org" or ".example.org" (lower case). */
struct tls_sni_ctx {
	char *name;
	SSL_CTX *ssl_ctx;	/* one reference (names may share one) */
};

struct tls_context {
	SSL_CTX *ssl_ctx;	/* the default certificate */
	bool server;
	bool have_ca;
	bool ask_ccert;		/* server: a client certificate is asked for */
	struct tls_sni_ctx *sni;
	size_t nsni;
	/* Server: the instance's shared ticket keys (NULL: OpenSSL's own). */
	struct tls_ticket_keys *tickets;
	unsigned ticket_lifetime;
};

/* The most text an SNI table may have (they are read whole). */
#define TLS_SNI_TABLE_MAX (16 * 1024 * 1024)
/* The most bytes of a peer certificate's name we repeat. */
#define TLS_NAME_MAX 256

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

/* tls_accept_any - verify callback when a client certificate is optional */
static int
tls_accept_any(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	/* The result stays in SSL_get_verify_result(); the handshake goes on. */
	return 1;
}

/*
 * tls_ssl_ctx_new - one SSL_CTX from params with the certificate cert and
 * key (either may be NULL/""); NULL with *error set
 */
static SSL_CTX *
tls_ssl_ctx_new(const struct tls_params *params, bool server, int min, int max,
    const char *cert, const char *key, struct str *error)
{
	SSL_CTX *c;
	bool have_ca = params->ca_file != NULL && *params->ca_file != '\0';

	c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (c == NULL) {
		tls_error(error, "SSL_CTX_new");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(c, min) ||
	    !SSL_CTX_set_max_proto_version(c, max)) {
		tls_error(error, "cannot set the protocol range");
		goto fail;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (params->ciphers != NULL && *params->ciphers != '\0' &&
	    !SSL_CTX_set_cipher_list(c, params->ciphers)) {
		tls_error(error, "bad tls_ciphers");
		goto fail;
	}
	if (have_ca &&
	    !SSL_CTX_load_verify_locations(c, params->ca_file, NULL)) {
		tls_error(error, "cannot load the CA file");
		goto fail;
	}
	if (cert != NULL && *cert != '\0') {
		if (key == NULL || *key == '\0')
			key = cert;
		if (!SSL_CTX_use_certificate_chain_file(c, cert)) {
			tls_error(error, "cannot load the certificate file");
			str_printf(error, " (%s)", cert);
			goto fail;
		}
		if (!SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM)) {
			tls_error(error, "cannot load the private key file");
			str_printf(error, " (%s)", key);
			goto fail;
		}
		if (!SSL_CTX_check_private_key(c)) {
			tls_error(error, "the private key does not match the "
			    "certificate");
			str_printf(error, " (%s, %s)", cert, key);
			goto fail;
		}
	} else if (server) {
		str_set_cstr(error, "no certificate file configured");
		goto fail;
	}
	if (server) {
		(void)SSL_CTX_set_session_id_context(c, tls_sid_ctx,
		    sizeof(tls_sid_ctx) - 1);
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
		SSL_CTX_set_timeout(c, 3600);
		if (params->ask_client_cert || params->require_client_cert) {
			STACK_OF(X509_NAME) *names = NULL;

			if (have_ca &&
			    (names = SSL_load_client_CA_file(params->ca_file)) == NULL) {
				tls_error(error, "cannot read CA names from the CA file");
				goto fail;
			}
			if (names != NULL)
				SSL_CTX_set_client_CA_list(c, names);
			if (params->require_client_cert)
				SSL_CTX_set_verify(c, SSL_VERIFY_PEER |
				    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
			else
				SSL_CTX_set_verify(c, SSL_VERIFY_PEER,
				    tls_accept_any);
		} else
			SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	} else {
		/*
		 * Opportunistic by default: the handshake completes and the
		 * result of verification is reported, not enforced (the
		 * policy lives with the caller).
		 */
		SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	}
	return c;
fail:
	SSL_CTX_free(c);
	return NULL;
}

/* tls_sni_find - the SNI certificate for name (lower case), or NULL */
static SSL_CTX *
tls_sni_find(const struct tls_context *ctx, const char *name)
{
	const char *p;
	size_t i;

	for (i = 0; i < ctx->nsni; i++)
		if (strcmp(ctx->sni[i].name, name) == 0)
			return ctx->sni[i].ssl_ctx;
	/* ".example.org" for a.b.example.org: the longest suffix first. */
	for (p = strchr(name, '.'); p != NULL; p = strchr(p + 1, '.'))
		for (i = 0; i < ctx->nsni; i++)
			if (strcmp(ctx->sni[i].name, p) == 0)
				return ctx->sni[i].ssl_ctx;
	return NULL;
}

/* tls_servername - the servername callback: switch to the SNI certificate */
static int
tls_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_context *ctx = arg;
	const char *sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char name[256];
	size_t i, n;
	SSL_CTX *c;

	(void)alert;
	if (sent == NULL || ctx->nsni == 0)
		return SSL_TLSEXT_ERR_OK;
	/* Peer data: fold case, drop one trailing dot, refuse odd bytes. */
	n = strlen(sent);
	if (n > 0 && sent[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(name))
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)sent[i];

		if (ch <= ' ' || ch >= 0x7f)
			return SSL_TLSEXT_ERR_OK;
		name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	name[n] = '\0';
	if ((c = tls_sni_find(ctx, name)) != NULL &&
	    SSL_set_SSL_CTX(ssl, c) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* tls_context_new - the common part of server and client contexts */
static struct tls_context *
tls_context_new(const struct tls_params *params, bool server, struct str *error)
{
	struct tls_context *ctx;
	int min, max;
	size_t i, j;

	tls_init();
	ERR_clear_error();
	if (!tls_protocols_parse(params->protocols, &min, &max, error))
		return NULL;
	if (server && params->require_client_cert &&
	    (params->ca_file == NULL || *params->ca_file == '\0')) {
		str_set_cstr(error, "tls_require_client_cert needs tls_ca_file "
		    "(the CAs client certificates must verify against)");
		return NULL;
	}
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->server = server;
	ctx->have_ca = params->ca_file != NULL && *params->ca_file != '\0';
	ctx->ask_ccert = server && (params->ask_client_cert ||
	    params->require_client_cert);
	if ((ctx->ssl_ctx = tls_ssl_ctx_new(params, server, min, max,
	    params->cert_file, params->key_file, error)) == NULL)
		goto fail;
	if (!server || params->nsni == 0)
		return ctx;
	ctx->sni = xcalloc(params->nsni, sizeof(*ctx->sni));
	for (i = 0; i < params->nsni; i++) {
		const struct tls_sni_entry *e = &params->sni[i];

		if (e->name == NULL || *e->name == '\0') {
			str_set_cstr(error, "an SNI entry without a name");
			goto fail;
		}
		ctx->sni[i].name = xstrdup(e->name);
		for (j = 0; ctx->sni[i].name[j] != '\0'; j++)
			if (ctx->sni[i].name[j] >= 'A' && ctx->sni[i].name[j] <= 'Z')
				ctx->sni[i].name[j] += 'a' - 'A';
		ctx->nsni = i + 1;
		/* Names that share their files share one SSL_CTX. */
		for (j = 0; j < i; j++) {
			const struct tls_sni_entry *o = &params->sni[j];

			if (strcmp(o->cert_file, e->cert_file) == 0 &&
			    strcmp(o->key_file != NULL ? o->key_file : "",
			    e->key_file != NULL ? e->key_file : "") == 0)
				break;
		}
		if (j < i) {
			if (!SSL_CTX_up_ref(ctx->sni[j].ssl_ctx)) {
				tls_error(error, "SSL_CTX_up_ref");
				goto fail;
			}
			ctx->sni[i].ssl_ctx = ctx->sni[j].ssl_ctx;
			continue;
		}
		if ((ctx->sni[i].ssl_ctx = tls_ssl_ctx_new(params, server, min,
		    max, e->cert_file, e->key_file, error)) == NULL) {
			str_printf(error, " (SNI name %s)", e->name);
			goto fail;
		}
	}
	SSL_CTX_set_tlsext_servername_callback(ctx->ssl_ctx, tls_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx->ssl_ctx, ctx);
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
	size_t i;

	if (ctx == NULL)
		return;
	if (ctx->tickets != NULL) {
		tls_ticket_keys_wipe(ctx->tickets);
		free(ctx->tickets);
	}
	for (i = 0; i < ctx->nsni; i++) {
		SSL_CTX_free(ctx->sni[i].ssl_ctx);
		free(ctx->sni[i].name);
	}
	free(ctx->sni);
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
	*ctxp = NULL;
}

/*
 * tls_ticket_key_cb - OpenSSL's ticket key callback (TLS 1.2 and 1.3):
 * encrypt new tickets with the current shared key, decrypt with any
 * key still valid; 0 = no ticket (enc) or an unknown or expired key
 * (a full handshake follows), 2 = resumed with an older key (a new
 * ticket goes out), -1 = a failure that ends the handshake
 */
static int
tls_ticket_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	static char digest[] = "SHA256";
	const struct tls_context *ctx;
	const struct tls_ticket_key *k, *cur;
	unsigned char hkey[TLS_TICKET_HMAC_LEN];
	OSSL_PARAM params[3];
	time_t now = time(NULL);
	int ok;

	ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (ctx == NULL || ctx->tickets == NULL)
		return 0;
	cur = tls_ticket_keys_encrypting(ctx->tickets, now,
	    ctx->ticket_lifetime);
	if (enc) {
		/* A worker that outlived its keys issues no tickets. */
		if ((k = cur) == NULL)
			return 0;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(
		    EVP_aes_256_cbc())) != 1)
			return -1;
		memcpy(name, k->name, TLS_TICKET_NAME_LEN);
		if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv))
			return -1;
	} else {
		if ((k = tls_ticket_keys_decrypting(ctx->tickets, name, now,
		    ctx->ticket_lifetime)) == NULL)
			return 0;
		if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv))
			return -1;
	}
	/* OSSL_PARAM wants a non-const pointer: a copy, wiped after. */
	memcpy(hkey, k->hmac, sizeof(hkey));
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    hkey, sizeof(hkey));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_CTX_set_params(hctx, params);
	explicit_bzero(hkey, sizeof(hkey));
	if (!ok)
		return -1;
	return !enc && k != cur ? 2 : 1;
}

/* tls_context_set_ticket_keys - see tls.h */
void
tls_context_set_ticket_keys(struct tls_context *ctx,
    const struct tls_ticket_keys *keys, unsigned lifetime)
{
	size_t i;

	ASSERT(ctx->server && lifetime > 0);
	if (ctx->tickets == NULL)
		ctx->tickets = xmalloc(sizeof(*ctx->tickets));
	*ctx->tickets = *keys;
	ctx->ticket_lifetime = lifetime;
	/*
	 * OpenSSL calls the callback of the context the handshake began
	 * with; the SNI contexts get it too, harmlessly, so that either
	 * way it finds this tls_context.
	 */
	SSL_CTX_set_app_data(ctx->ssl_ctx, ctx);
	(void)SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx->ssl_ctx,
	    tls_ticket_key_cb);
	for (i = 0; i < ctx->nsni; i++) {
		SSL_CTX_set_app_data(ctx->sni[i].ssl_ctx, ctx);
		(void)SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx->sni[i].ssl_ctx,
		    tls_ticket_key_cb);
	}
}

/* tls_context_ticket_keys_config - see tls.h */
int
tls_context_ticket_keys_config(struct tls_context *ctx,
    const struct config *cfg, struct str *error)
{
	struct tls_ticket_keys keys;
	unsigned lifetime;
	char *path;
	int ret, saved;

	str_clear(error);
	if ((lifetime = config_time(cfg, "tls_session_ticket_key_lifetime")) == 0)
		return 0;
	path = xasprintf("%s/%s", config_str(cfg, "queue_directory"),
	    TLS_TICKET_KEYS_FILE);
	if ((ret = tls_ticket_keys_load(path, &keys, error)) == 0)
		tls_context_set_ticket_keys(ctx, &keys, lifetime);
	saved = errno;
	tls_ticket_keys_wipe(&keys);
	free(path);
	errno = saved;
	return ret;
}

/* tls_sni_value_parse - see tls.h */
bool
tls_sni_value_parse(const char *value, char **cert_r, char **key_r,
    struct str *error)
{
	char *files[3] = { NULL, NULL, NULL };
	const char *p = value, *end;
	size_t n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		for (end = p; *end != '\0' && *end != ' ' && *end != '\t' &&
		    *end != ','; end++)
			;
		if (n == N_ELEMENTS(files) - 1) {
			str_set_cstr(error, "more than two files (want "
			    "\"CERTFILE [KEYFILE]\")");
			goto fail;
		}
		files[n++] = xstrndup(p, (size_t)(end - p));
		p = end;
	}
	if (n == 0) {
		str_set_cstr(error, "no certificate file (want "
		    "\"CERTFILE [KEYFILE]\")");
		return false;
	}
	*cert_r = files[0];
	*key_r = files[1];
	return true;
fail:
	free(files[0]);
	free(files[1]);
	return false;
}

/* The state of reading the SNI tables. */
struct tls_sni_load {
	struct tls_sni_item {
		char *name, *cert_file, *key_file;
	} *items;
	size_t n, alloc;
	const char *spec;
	struct str *error;
};

/* tls_sni_load_entry - map_parse_text callback: one "NAME CERT [KEY]" */
static int
tls_sni_load_entry(void *vctx, const char *key, const char *value)
{
	struct tls_sni_load *ld = vctx;
	struct str *why = str_new(0, 0);
	struct tls_sni_item *e;
	char *cert, *keyfile;
	size_t i;

	for (i = 0; key[i] != '\0'; i++)
		if ((unsigned char)key[i] <= ' ' || key[i] == '*')
			break;
	if (key[i] != '\0' || i == 0 || strcmp(key, ".") == 0) {
		str_printf(ld->error, "%s: bad SNI name \"%s\" (want "
		    "host.example.org or .example.org)", ld->spec, key);
		str_free(&why);
		return -1;
	}
	if (!tls_sni_value_parse(value, &cert, &keyfile, why)) {
		str_printf(ld->error, "%s: %s: %s", ld->spec, key, str_c(why));
		str_free(&why);
		return -1;
	}
	str_free(&why);
	if (ld->n == ld->alloc) {
		ld->alloc = ld->alloc == 0 ? 8 : ld->alloc * 2;
		ld->items = xreallocarray(ld->items, ld->alloc,
		    sizeof(*ld->items));
	}
	e = &ld->items[ld->n++];
	e->name = xstrdup(key);
	e->cert_file = cert;
	e->key_file = keyfile;
	return 0;
}

/* tls_read_file - the whole of path into out; -1 with errno */
static int
tls_read_file(const char *path, struct str *out)
{
	char buf[8192];
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			(void)close(fd);
			errno = saved;
			return -1;
		}
		if (str_append(out, buf, (size_t)n) < 0) {
			(void)close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	return close(fd);
}

/* tls_sni_load_spec - the entries of one tls_server_sni_maps table */
static int
tls_sni_load_spec(struct tls_sni_load *ld, const char *spec)
{
	struct str *text = str_new(0, TLS_SNI_TABLE_MAX);
	struct str *errors = str_new(0, 0);
	const char *path = spec;
	int rc = -1;

	ld->spec = spec;
	if (strncmp(spec, "file:", 5) == 0 || strncmp(spec, "db:", 3) == 0)
		path = strchr(spec, ':') + 1;
	else if (strchr(spec, ':') != NULL && spec[0] != '/') {
		str_printf(ld->error, "%s: tls_server_sni_maps takes file: or "
		    "db: tables (read once, at start-up)", spec);
		goto out;
	}
	if (tls_read_file(path, text) < 0) {
		str_printf(ld->error, "%s: cannot read %s: %s", spec, path,
		    strerror(errno));
		goto out;
	}
	if (map_parse_text(str_c(text), str_len(text), path, 0,
	    tls_sni_load_entry, ld, errors) < 0) {
		if (str_len(ld->error) == 0)
			str_set(ld->error, str_c(errors), str_len(errors));
		goto out;
	}
	rc = 0;
out:
	str_free(&errors);
	str_free(&text);
	return rc;
}

/* tls_context_new_server_config - see tls.h */
struct tls_context *
tls_context_new_server_config(const struct config *cfg, struct str *error)
{
	struct tls_sni_load ld;
	struct tls_sni_entry *entries = NULL;
	struct tls_params p;
	struct tls_context *ctx = NULL;
	const char *const *specs;
	size_t i, nspecs;

	memset(&p, 0, sizeof(p));
	memset(&ld, 0, sizeof(ld));
	str_clear(error);
	p.cert_file = config_str(cfg, "tls_cert_file");
	if (*p.cert_file == '\0')
		return NULL;
	p.key_file = config_str(cfg, "tls_key_file");
	p.ca_file = config_str(cfg, "tls_ca_file");
	p.protocols = config_str(cfg, "tls_protocols");
	p.ciphers = config_str(cfg, "tls_ciphers");
	p.ask_client_cert = config_bool(cfg, "tls_ask_client_cert");
	p.require_client_cert = config_bool(cfg, "tls_require_client_cert");
	ld.error = error;
	specs = config_list(cfg, "tls_server_sni_maps", &nspecs);
	for (i = 0; i < nspecs; i++)
		if (tls_sni_load_spec(&ld, specs[i]) < 0)
			goto out;
	if (ld.n > 0) {
		entries = xcalloc(ld.n, sizeof(*entries));
		for (i = 0; i < ld.n; i++) {
			entries[i].name = ld.items[i].name;
			entries[i].cert_file = ld.items[i].cert_file;
			entries[i].key_file = ld.items[i].key_file;
		}
	}
	p.sni = entries;
	p.nsni = ld.n;
	ctx = tls_context_new_server(&p, error);
	if (ctx != NULL && tls_context_ticket_keys_config(ctx, cfg, error) < 0) {
		/* TLS works on; tickets resume with this process only. */
		if (errno == ENOENT)
			log_info(NULL, "TLS session tickets not shared between "
			    "processes (not started by master?): %s",
			    str_c(error));
		else
			log_warn(NULL, "TLS session tickets not shared between "
			    "processes: %s", str_c(error));
		str_clear(error);
	}
out:
	for (i = 0; i < ld.n; i++) {
		free(ld.items[i].name);
		free(ld.items[i].cert_file);
		free(ld.items[i].key_file);
	}
	free(ld.items);
	free(entries);
	if (ctx == NULL && str_len(error) == 0)
		str_set_cstr(error, "cannot make the TLS context");
	return ctx;
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

/*
 * tls_ssl_session_live - resumable and within its own lifetime (the
 * server's ticket lifetime hint, or the context's timeout). A TLS 1.2
 * session resumed by its ID keeps its creation time, so storing it
 * again after each resumption does not make it live for ever.
 */
static bool
tls_ssl_session_live(const SSL_SESSION *ss)
{
	long t = SSL_SESSION_get_time(ss), life = SSL_SESSION_get_timeout(ss);

	return SSL_SESSION_is_resumable(ss) && life > 0 &&
	    (long)time(NULL) - t < life;
}

/* tls_session_export - see tls.h */
bool
tls_session_export(const struct tls_session *sess, struct str *out)
{
	SSL_SESSION *ss = SSL_get1_session(sess->ssl);
	unsigned char *buf, *p;
	int len;
	bool ok = false;

	str_clear(out);
	if (ss == NULL)
		return false;
	if (tls_ssl_session_live(ss) &&
	    (len = i2d_SSL_SESSION(ss, NULL)) > 0) {
		p = buf = xmalloc((size_t)len);
		if (i2d_SSL_SESSION(ss, &p) == len) {
			(void)str_append(out, buf, (size_t)len);
			ok = true;
		}
		explicit_bzero(buf, (size_t)len);
		free(buf);
	}
	SSL_SESSION_free(ss);
	ERR_clear_error();
	return ok;
}

/* tls_ssl_offer_session - see tls.h */
bool
tls_ssl_offer_session(struct ssl_st *ssl, const void *der, size_t len)
{
	const unsigned char *p = der;
	SSL_SESSION *ss;
	bool ok;

	if (len == 0 || len > LONG_MAX ||
	    (ss = d2i_SSL_SESSION(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return false;
	}
	ok = p == (const unsigned char *)der + len &&
	    tls_ssl_session_live(ss) && SSL_set_session(ssl, ss) == 1;
	SSL_SESSION_free(ss);
	ERR_clear_error();
	return ok;
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

/* tls_session_sni - see tls.h */
const char *
tls_session_sni(const struct tls_session *sess)
{
	if (!sess->ctx->server)
		return NULL;
	return SSL_get_servername(sess->ssl, TLSEXT_NAMETYPE_host_name);
}

/* tls_session_peer_cert - see tls.h */
bool
tls_session_peer_cert(const struct tls_session *sess)
{
	return SSL_get0_peer_certificate(sess->ssl) != NULL;
}

/* tls_session_trust - see tls.h */
const char *
tls_session_trust(const struct tls_session *sess)
{
	if (!tls_session_peer_cert(sess))
		return "Anonymous";
	return tls_session_verified(sess) ? "Trusted" : "Untrusted";
}

/*
 * tls_printable - append n bytes of peer text, capped at max, with
 * anything but printable ASCII, and the bytes in bad, as '?'
 */
static void
tls_printable(struct str *out, const char *p, size_t n, size_t max,
    const char *bad)
{
	size_t i;
	char ch;

	for (i = 0; i < n && i < max; i++) {
		ch = p[i];
		if ((unsigned char)ch < ' ' || (unsigned char)ch >= 0x7f ||
		    strchr(bad, ch) != NULL)
			ch = '?';
		str_append(out, &ch, 1);
	}
	if (n > max)
		str_append_cstr(out, "...");
}

/* tls_name_append - a certificate name, RFC 2253 escaped, made printable */
static void
tls_name_append(const X509_NAME *name, struct str *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (bio == NULL) {
		ERR_clear_error();
		str_append_cstr(out, "?");
		return;
	}
	/* RFC 2253 escaping, but not its reversed order (CN last): the
	 * certificate's own order reads better in a log line. */
	(void)X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV);
	n = BIO_get_mem_data(bio, &data);
	tls_printable(out, data, n > 0 ? (size_t)n : 0, TLS_NAME_MAX, "");
	BIO_free(bio);
	ERR_clear_error();
}

bool
tls_session_peer_subject(const struct tls_session *sess, struct str *out)
{
	X509 *peer = SSL_get0_peer_certificate(sess->ssl);

	if (peer == NULL)
		return false;
	tls_name_append(X509_get_subject_name(peer), out);
	return true;
}

bool
tls_session_peer_issuer(const struct tls_session *sess, struct str *out)
{
	X509 *peer = SSL_get0_peer_certificate(sess->ssl);

	if (peer == NULL)
		return false;
	tls_name_append(X509_get_issuer_name(peer), out);
	return true;
}

bool
tls_session_peer_fingerprint(const struct tls_session *sess, struct str *out)
{
	X509 *peer = SSL_get0_peer_certificate(sess->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int i, n = 0;

	if (peer == NULL || !X509_digest(peer, EVP_sha256(), md, &n)) {
		ERR_clear_error();
		return false;
	}
	str_append_cstr(out, "SHA256");
	for (i = 0; i < n; i++)
		str_printf(out, ":%02X", md[i]);
	return true;
}

/* tls_cn_append - the first CN of name, quoted and printable, or "" */
static void
tls_cn_append(const X509_NAME *name, struct str *out)
{
	const ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	int i, n = -1;

	str_append_cstr(out, "\"");
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) >= 0 &&
	    (data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) != NULL)
		n = ASN1_STRING_to_UTF8(&utf8, data);
	if (n > 0)
		tls_printable(out, (const char *)utf8, (size_t)n, TLS_NAME_MAX,
		    "\"()\\");
	OPENSSL_free(utf8);
	ERR_clear_error();
	str_append_cstr(out, "\"");
}

/* tls_session_peer_describe - see tls.h */
void
tls_session_peer_describe(const struct tls_session *sess, struct str *out)
{
	X509 *peer = SSL_get0_peer_certificate(sess->ssl);

	if (sess->ctx->server && !sess->ctx->ask_ccert) {
		str_append_cstr(out, "No client certificate requested");
		return;
	}
	if (peer == NULL) {
		str_append_cstr(out, "Client did not present a certificate");
		return;
	}
	str_append_cstr(out, "Client CN ");
	tls_cn_append(X509_get_subject_name(peer), out);
	str_append_cstr(out, ", Issuer ");
	tls_cn_append(X509_get_issuer_name(peer), out);
	str_append_cstr(out, tls_session_verified(sess) ? " (verified OK)" :
	    " (not verified)");
}
