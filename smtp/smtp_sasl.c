/* SPDX-License-Identifier: MIT */
/*
 * smtp_sasl - SASL client authentication of the smtp agent (RFC 4954)
 *
 * DESCRIPTION
 *	With $smtp_sasl_auth_enable, a server that advertises AUTH gets
 *	the credentials found in $smtp_sasl_password_maps for its next hop
 *	(smtp_sasl_passwd_lookup). The mechanisms are those of Cyrus
 *	libsasl2's client plugins, as in Postfix (xsasl_cyrus_client.c):
 *	PLAIN and LOGIN, and SCRAM-*, CRAM-MD5, DIGEST-MD5 and GSSAPI where
 *	their plugins are installed, so that one library does all SASL in
 *	Postern (lib/sasl_server.c is the server side) and the mechanism
 *	choice and the security properties are libsasl2's well-worn code,
 *	not ours. Writing PLAIN and LOGIN by hand would be shorter, but
 *	every other mechanism would then be a second implementation.
 *
 *	The server's list is first cut down to $smtp_sasl_mechanism_filter
 *	(when not empty); libsasl2 then picks the strongest mechanism left
 *	that meets the security options: $smtp_sasl_security_options on a
 *	plaintext connection, $smtp_sasl_tls_security_options inside TLS.
 *	With the default "noplaintext" outside TLS, PLAIN and LOGIN are
 *	never sent over an unencrypted connection. No SASL security layer
 *	is negotiated (max_ssf 0): TLS does that job.
 *
 *	The password lives in a libsasl2 secret that is wiped and freed
 *	with the session; it is never logged, and neither are the AUTH
 *	exchanges (they carry it, base64-encoded). The libsasl2 client
 *	itself (callbacks, session, base64) is lib/sasl_client, shared
 *	with news-gw's AUTHINFO SASL; this file adds what is SMTP's:
 *	the password tables, the mechanism filter, the security options.
 *
 *	XXX libsasl2 keeps process-global state; the agent runs one
 *	session at a time.
 *
 * SEE ALSO
 *	smtp(8), RFC 4954, RFC 4616 (PLAIN), RFC 4422, Cyrus SASL
 *	sasl_client_new(3), Postfix SASL_README
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "sasl_client.h"
#include "smtp.h"
#include "str.h"

#define SMTP_SASL_CRED_MAX	1024	/* user:password from the table */

struct smtp_sasl {
	struct sasl_client *sc;
};

static bool smtp_sasl_inited;
static unsigned smtp_sasl_flags;	/* plaintext connection */
static unsigned smtp_sasl_tls_flags;	/* inside TLS */
static const char *const *smtp_sasl_filter;
static size_t smtp_sasl_nfilter;
static const char *const *smtp_sasl_map_specs;
static struct map **smtp_sasl_maps;
static size_t smtp_sasl_nmaps;

/* smtp_sasl_parse_options - "noplaintext, noanonymous, ..." to SASL_SEC_* */
static int
smtp_sasl_parse_options(const char *name, unsigned *flags_r)
{
	static const struct {
		const char *name;
		unsigned flag;
	} opts[] = {
		{ "noplaintext", SASL_SEC_NOPLAINTEXT },
		{ "noactive", SASL_SEC_NOACTIVE },
		{ "nodictionary", SASL_SEC_NODICTIONARY },
		{ "noanonymous", SASL_SEC_NOANONYMOUS },
		{ "mutual_auth", SASL_SEC_MUTUAL_AUTH },
	};
	const char *const *items;
	size_t n, i, k;

	*flags_r = 0;
	items = config_list(conf(), name, &n);
	for (i = 0; i < n; i++) {
		for (k = 0; k < N_ELEMENTS(opts); k++)
			if (strcasecmp(items[i], opts[k].name) == 0)
				break;
		if (k == N_ELEMENTS(opts)) {
			log_error(NULL, "%s: unknown option \"%s\" (noplaintext, "
			    "noactive, nodictionary, noanonymous, mutual_auth)",
			    name, items[i]);
			return -1;
		}
		*flags_r |= opts[k].flag;
	}
	return 0;
}

/* smtp_sasl_init - see smtp.h */
int
smtp_sasl_init(struct str *why)
{
	const struct config *cfg = conf();
	const char *error = NULL;
	size_t i;

	if (!config_bool(cfg, "smtp_sasl_auth_enable"))
		return 0;
	if (smtp_sasl_parse_options("smtp_sasl_security_options",
	    &smtp_sasl_flags) < 0 ||
	    smtp_sasl_parse_options("smtp_sasl_tls_security_options",
	    &smtp_sasl_tls_flags) < 0) {
		str_set_cstr(why, "bad SASL security options");
		return -1;
	}
	smtp_sasl_filter = config_list(cfg, "smtp_sasl_mechanism_filter",
	    &smtp_sasl_nfilter);
	smtp_sasl_map_specs = config_list(cfg, "smtp_sasl_password_maps",
	    &smtp_sasl_nmaps);
	smtp_sasl_maps = xcalloc(smtp_sasl_nmaps + 1, sizeof(*smtp_sasl_maps));
	/*
	 * Open the tables now, before the privilege drop, so that a
	 * password file may be readable by root alone (as in Postfix). A
	 * table that fails here is retried at lookup time.
	 */
	for (i = 0; i < smtp_sasl_nmaps; i++) {
		smtp_sasl_maps[i] = map_open(smtp_sasl_map_specs[i], 0, &error);
		if (smtp_sasl_maps[i] == NULL)
			log_warn(NULL, "SASL password table %s: %s",
			    smtp_sasl_map_specs[i], error);
	}
	/* loads the plugins, so before any chroot; once per process */
	if (sasl_client_setup(why) < 0) {
		for (i = 0; i < smtp_sasl_nmaps; i++)
			map_close(&smtp_sasl_maps[i]);
		free(smtp_sasl_maps);
		smtp_sasl_maps = NULL;
		return -1;
	}
	smtp_sasl_inited = true;
	return 0;
}

/* smtp_sasl_enabled - see smtp.h */
bool
smtp_sasl_enabled(void)
{
	return smtp_sasl_inited;
}

/* smtp_sasl_deinit - see smtp.h */
void
smtp_sasl_deinit(void)
{
	size_t i;

	if (!smtp_sasl_inited)
		return;
	for (i = 0; i < smtp_sasl_nmaps; i++)
		map_close(&smtp_sasl_maps[i]);
	free(smtp_sasl_maps);
	smtp_sasl_maps = NULL;
	smtp_sasl_inited = false;	/* libsasl2 stays loaded: sasl_client.c */
}

/* smtp_sasl_passwd_lookup - see smtp.h */
int
smtp_sasl_passwd_lookup(const struct log_ctx *log, const char *const *keys,
    size_t nkeys, struct str *value_r, struct str *why)
{
	const char *error = NULL;
	size_t i, k;
	int r;

	for (k = 0; k < nkeys; k++) {
		if (keys[k] == NULL || *keys[k] == '\0')
			continue;
		for (i = 0; i < smtp_sasl_nmaps; i++) {
			if (smtp_sasl_maps[i] == NULL &&
			    (smtp_sasl_maps[i] = map_open(
			    smtp_sasl_map_specs[i], 0, &error)) == NULL) {
				str_printf(why, "SASL password table %s: %s",
				    smtp_sasl_map_specs[i], error);
				return -1;
			}
			r = map_lookup(smtp_sasl_maps[i], keys[k], value_r,
			    &error);
			if (r < 0) {
				str_printf(why, "SASL password table %s: "
				    "lookup of %s: %s", smtp_sasl_map_specs[i],
				    keys[k], error);
				return -1;
			}
			if (r > 0) {
				log_debug(log, "SASL credentials for %s from %s",
				    keys[k], smtp_sasl_map_specs[i]);
				if (str_len(value_r) > SMTP_SASL_CRED_MAX ||
				    memchr(str_c(value_r), ':',
				    str_len(value_r)) == NULL ||
				    str_c(value_r)[0] == ':') {
					str_printf(why, "SASL password table "
					    "%s: the value for %s is not "
					    "user:password",
					    smtp_sasl_map_specs[i], keys[k]);
					explicit_bzero(str_data(value_r),
					    str_len(value_r));
					str_clear(value_r);
					return -1;
				}
				return 1;
			}
		}
	}
	return 0;
}

/* smtp_sasl_filter_mechs - see smtp.h */
void
smtp_sasl_filter_mechs(const char *offered, const char *const *filter,
    size_t nfilter, struct str *out)
{
	const char *p = offered, *e;
	size_t i, n;

	str_clear(out);
	for (;;) {
		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		if ((n = (size_t)(e - p)) == 0)
			break;
		for (i = 0; i < nfilter; i++)
			if (strlen(filter[i]) == n &&
			    strncasecmp(filter[i], p, n) == 0)
				break;
		if (nfilter == 0 || i < nfilter) {
			if (str_len(out) > 0)
				str_append_c(out, ' ');
			str_append(out, p, n);
		}
		p = e;
	}
}

/* smtp_sasl_free - see smtp.h */
void
smtp_sasl_free(struct smtp_sasl **sap)
{
	struct smtp_sasl *sa = *sap;

	if (sa == NULL)
		return;
	sasl_client_free(&sa->sc);
	free(sa);
	*sap = NULL;
}

/* smtp_sasl_start - see smtp.h */
struct smtp_sasl *
smtp_sasl_start(const struct log_ctx *log, const char *host,
    const char *offered, bool tls, const char *cred, size_t credlen,
    struct str *out, bool *has_ir_r, const char **mech_r, struct str *why)
{
	struct smtp_sasl *sa = xcalloc(1, sizeof(*sa));
	struct str *mechs = str_new(128, 0);
	const char *colon = memchr(cred, ':', credlen);
	size_t ulen;

	ASSERT(smtp_sasl_inited && colon != NULL);
	ulen = (size_t)(colon - cred);
	smtp_sasl_filter_mechs(offered, smtp_sasl_filter, smtp_sasl_nfilter,
	    mechs);
	if (str_len(mechs) == 0) {
		str_printf(why, "none of the server's mechanisms (%s) passes "
		    "smtp_sasl_mechanism_filter", offered);
		goto fail;
	}
	sa->sc = sasl_client_create("smtp", host, log, cred, ulen, colon + 1,
	    credlen - ulen - 1, tls ? smtp_sasl_tls_flags : smtp_sasl_flags,
	    why);
	if (sa->sc == NULL)
		goto fail;
	switch (sasl_client_begin(sa->sc, str_c(mechs), out, has_ir_r, mech_r,
	    why)) {
	case 0:
		break;
	case 1:
		str_clear(why);
		str_printf(why, "no mechanism available (the server offers "
		    "%s; smtp_sasl_%ssecurity_options rule out the rest)",
		    str_c(mechs), tls ? "tls_" : "");
		goto fail;
	default:
		goto fail;
	}
	str_free(&mechs);
	return sa;
fail:
	str_free(&mechs);
	smtp_sasl_free(&sa);
	return NULL;
}

/* smtp_sasl_step - see smtp.h */
int
smtp_sasl_step(struct smtp_sasl *sa, const char *challenge, size_t len,
    struct str *out, struct str *why)
{
	if (len > SMTP_SASL_CHALLENGE_MAX) {
		str_set_cstr(why, "the server's SASL challenge is too long");
		return -1;
	}
	return sasl_client_next(sa->sc, challenge, len, out, why);
}
