/* SPDX-License-Identifier: MIT */
/*
 * sasl_client - SASL client exchanges through Cyrus libsasl2
 *
 * DESCRIPTION
 *	See sasl_client.h. The mechanisms are libsasl2's client plugins,
 *	as in Postfix (xsasl_cyrus_client.c): PLAIN and LOGIN, and
 *	SCRAM-*, CRAM-MD5, DIGEST-MD5 and GSSAPI where their plugins are
 *	installed, so that one library does all SASL in Postern
 *	(sasl_server.c is the server side). Moved here from
 *	smtp/smtp_sasl.c so that smtp and news-gw share it.
 *
 * SEE ALSO
 *	sasl_server.c, RFC 4422, Cyrus SASL sasl_client_new(3)
 */
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "alloc.h"
#include "log.h"
#include "macros.h"
#include "sasl_client.h"
#include "str.h"

struct sasl_client {
	sasl_conn_t *conn;
	const struct log_ctx *log;
	sasl_callback_t callbacks[5];
	char *user;
	sasl_secret_t *secret;
	size_t secret_size;
	struct str *raw;	/* decoded challenge */
	const char *mech;	/* libsasl2's, valid while conn lives */
};

static bool sasl_client_inited;	/* sasl_client_init done (once) */

/* SASL_CLIENT_CB - a callback in libsasl2's generic type: see sasl_server.c */
#define SASL_CLIENT_CB(fn) ((int (*)(void))(void (*)(void))(fn))

/* sasl_client_cb_log - libsasl2's messages into our log */
static int
sasl_client_cb_log(void *context, int level, const char *message)
{
	const struct sasl_client *sc = context;
	const struct log_ctx *log = sc != NULL ? sc->log : NULL;
	struct str *m = str_new(0, 0);

	mem_printable(m, message, strlen(message), 400);
	if (level <= SASL_LOG_ERR)
		log_error(log, "sasl: %s", str_c(m));
	else if (level == SASL_LOG_WARN)
		log_warn(log, "sasl: %s", str_c(m));
	else
		log_debug(log, "sasl: %s", str_c(m));
	str_free(&m);
	return SASL_OK;
}

/* sasl_client_cb_getopt - no options from files: the defaults */
static int
sasl_client_cb_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	(void)context;
	(void)plugin;
	(void)option;
	(void)result;
	(void)len;
	return SASL_FAIL;
}

/* sasl_client_cb_user - the login name, as authentication and authorization id */
static int
sasl_client_cb_user(void *context, int id, const char **result, unsigned *len)
{
	const struct sasl_client *sc = context;

	if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
		return SASL_FAIL;
	*result = sc->user;
	if (len != NULL)
		*len = (unsigned)strlen(sc->user);
	return SASL_OK;
}

/* sasl_client_cb_pass - the password */
static int
sasl_client_cb_pass(sasl_conn_t *conn, void *context, int id,
    sasl_secret_t **psecret)
{
	struct sasl_client *sc = context;

	(void)conn;
	if (id != SASL_CB_PASS || psecret == NULL)
		return SASL_BADPARAM;
	*psecret = sc->secret;
	return SASL_OK;
}

/* sasl_client_setup - see sasl_client.h */
int
sasl_client_setup(struct str *why)
{
	static sasl_callback_t global[] = {
		{ SASL_CB_LOG, SASL_CLIENT_CB(sasl_client_cb_log), NULL },
		{ SASL_CB_GETOPT, SASL_CLIENT_CB(sasl_client_cb_getopt), NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	int r;

	if (sasl_client_inited)
		return 0;
	/*
	 * XXX never sasl_client_done(): in libsasl2 2.1.28 it unloads the
	 * plugins but leaks what they allocated (LeakSanitizer reports it
	 * at exit), and it would run only when the process ends anyway.
	 */
	if ((r = sasl_client_init(global)) != SASL_OK) {
		str_clear(why);
		str_printf(why, "SASL client library: %s",
		    sasl_errstring(r, NULL, NULL));
		return -1;
	}
	sasl_client_inited = true;
	return 0;
}

/* sasl_client_ready - see sasl_client.h */
bool
sasl_client_ready(void)
{
	return sasl_client_inited;
}

/* sasl_client_b64 - base64 of (p, n) into out (replaced) */
static int
sasl_client_b64(const char *p, unsigned n, struct str *out)
{
	size_t room = ((size_t)n + 2) / 3 * 4 + 1;
	unsigned len = 0;
	char *w;

	str_clear(out);
	if (n == 0)
		return 0;
	w = str_reserve(out, room);
	if (sasl_encode64(p, n, w, (unsigned)room, &len) != SASL_OK)
		return -1;
	str_commit(out, len);
	return 0;
}

/* sasl_client_free - see sasl_client.h */
void
sasl_client_free(struct sasl_client **scp)
{
	struct sasl_client *sc = *scp;

	if (sc == NULL)
		return;
	if (sc->conn != NULL)
		sasl_dispose(&sc->conn);
	if (sc->secret != NULL) {
		explicit_bzero(sc->secret, sc->secret_size);
		free(sc->secret);
	}
	if (sc->user != NULL) {
		explicit_bzero(sc->user, strlen(sc->user));
		free(sc->user);
	}
	str_free(&sc->raw);
	free(sc);
	*scp = NULL;
}

/* sasl_client_create - see sasl_client.h */
struct sasl_client *
sasl_client_create(const char *service, const char *host,
    const struct log_ctx *log, const char *user, size_t ulen,
    const char *pass, size_t plen, unsigned security_flags, struct str *why)
{
	struct sasl_client *sc = xcalloc(1, sizeof(*sc));
	sasl_security_properties_t props;
	int r;

	ASSERT(sasl_client_inited);
	sc->log = log;
	sc->raw = str_new(256, 0);
	sc->user = xstrndup(user, ulen);
	sc->secret_size = sizeof(sasl_secret_t) + plen + 1;
	sc->secret = xcalloc(1, sc->secret_size);
	sc->secret->len = (unsigned long)plen;
	memcpy(sc->secret->data, pass, plen);
	sc->callbacks[0] = (sasl_callback_t){ SASL_CB_LOG,
	    SASL_CLIENT_CB(sasl_client_cb_log), sc };
	sc->callbacks[1] = (sasl_callback_t){ SASL_CB_USER,
	    SASL_CLIENT_CB(sasl_client_cb_user), sc };
	sc->callbacks[2] = (sasl_callback_t){ SASL_CB_AUTHNAME,
	    SASL_CLIENT_CB(sasl_client_cb_user), sc };
	sc->callbacks[3] = (sasl_callback_t){ SASL_CB_PASS,
	    SASL_CLIENT_CB(sasl_client_cb_pass), sc };
	sc->callbacks[4] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };

	str_clear(why);
	r = sasl_client_new(service, host, NULL, NULL, sc->callbacks, 0,
	    &sc->conn);
	if (r != SASL_OK) {
		str_printf(why, "SASL client: %s", sasl_errstring(r, NULL,
		    NULL));
		goto fail;
	}
	memset(&props, 0, sizeof(props));
	props.min_ssf = 0;
	props.max_ssf = 0;		/* no security layer: TLS does that */
	props.maxbufsize = 0;
	props.security_flags = security_flags;
	if ((r = sasl_setprop(sc->conn, SASL_SEC_PROPS, &props)) != SASL_OK) {
		str_printf(why, "SASL client: %s", sasl_errdetail(sc->conn));
		goto fail;
	}
	return sc;
fail:
	sasl_client_free(&sc);
	return NULL;
}

/* sasl_client_begin - see sasl_client.h */
int
sasl_client_begin(struct sasl_client *sc, const char *mechs, struct str *out,
    bool *has_ir_r, const char **mech_r, struct str *why)
{
	sasl_interact_t *interact = NULL;
	const char *clientout = NULL;
	unsigned clientlen = 0;
	int r;

	str_clear(why);
	r = sasl_client_start(sc->conn, mechs, &interact, &clientout,
	    &clientlen, &sc->mech);
	if (r == SASL_NOMECH) {
		str_printf(why, "no mechanism available among %s", mechs);
		return 1;
	}
	if (r != SASL_OK && r != SASL_CONTINUE) {
		str_printf(why, "SASL client: %s", sasl_errdetail(sc->conn));
		return -1;
	}
	*has_ir_r = clientout != NULL;
	if (sasl_client_b64(clientout, clientlen, out) < 0) {
		str_set_cstr(why, "SASL client: cannot encode the response");
		return -1;
	}
	*mech_r = sc->mech;
	return 0;
}

/* sasl_client_next - see sasl_client.h */
int
sasl_client_next(struct sasl_client *sc, const char *challenge, size_t len,
    struct str *out, struct str *why)
{
	sasl_interact_t *interact = NULL;
	const char *clientout = NULL;
	unsigned clientlen = 0, rawlen = 0;
	char *w;
	int r;

	str_clear(why);
	if (len > SASL_CLIENT_CHALLENGE_MAX) {
		str_set_cstr(why, "the server's SASL challenge is too long");
		return -1;
	}
	str_clear(sc->raw);
	w = str_reserve(sc->raw, len + 1);
	if (sasl_decode64(challenge, (unsigned)len, w, (unsigned)len + 1,
	    &rawlen) != SASL_OK) {
		str_set_cstr(why, "the server's SASL challenge is not base64");
		return -1;
	}
	str_commit(sc->raw, rawlen);
	r = sasl_client_step(sc->conn, str_c(sc->raw), rawlen, &interact,
	    &clientout, &clientlen);
	if (r != SASL_OK && r != SASL_CONTINUE) {
		str_printf(why, "SASL client: %s", sasl_errdetail(sc->conn));
		return -1;
	}
	if (sasl_client_b64(clientout, clientlen, out) < 0) {
		str_set_cstr(why, "SASL client: cannot encode the response");
		return -1;
	}
	return 0;
}
