/* SPDX-License-Identifier: MIT */
/*
 * auth_krb5 - password verification by Kerberos initial tickets
 *
 * DESCRIPTION
 *	See auth_krb5.h. Heimdal's krb5 API. Results:
 *
 *	- the KDC says the password or the principal is wrong (preauth
 *	  failed, bad integrity, unknown client, revoked, expired key):
 *	  AUTH_FAIL, the same answer for both, so user names do not leak;
 *	- the KDC cannot be reached or the configuration is broken:
 *	  AUTH_TEMPFAIL;
 *	- a ticket arrived but does not verify against the keytab (a
 *	  forged KDC, or a stale keytab): AUTH_FAIL, with the reason in
 *	  *error_r for the log.
 *
 *	The credentials are freed at once; no credential cache is written.
 *
 * SEE ALSO
 *	krb5_get_init_creds_password(3), krb5_verify_init_creds(3)
 */
#include <krb5.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_krb5.h"
#include "config.h"
#include "str.h"

static krb5_context auth_krb5_ctx;
static struct str *auth_krb5_err;

/* auth_krb5_error - keep the reason for code; returns the reason */
static const char *
auth_krb5_error(const char *what, krb5_error_code code)
{
	const char *msg;

	if (auth_krb5_err == NULL)
		auth_krb5_err = str_new(0, 4096);
	str_clear(auth_krb5_err);
	if (auth_krb5_ctx != NULL) {
		msg = krb5_get_error_message(auth_krb5_ctx, code);
		(void)str_printf(auth_krb5_err, "kerberos: %s: %s", what, msg);
		krb5_free_error_message(auth_krb5_ctx, msg);
	} else
		(void)str_printf(auth_krb5_err, "kerberos: %s: error %d", what,
		    (int)code);
	return str_c(auth_krb5_err);
}

/* auth_krb5_context - the process's context; 0 or -1 with *error_r */
static int
auth_krb5_context(const char **error_r)
{
	const char *path = config_str(conf(), "auth_krb5_config");
	char *files[2];
	krb5_error_code code;

	if (auth_krb5_ctx != NULL)
		return 0;
	if ((code = krb5_init_context(&auth_krb5_ctx)) != 0) {
		auth_krb5_ctx = NULL;
		*error_r = auth_krb5_error("init", code);
		return -1;
	}
	if (*path != '\0') {
		files[0] = xstrdup(path);
		files[1] = NULL;
		code = krb5_set_config_files(auth_krb5_ctx, files);
		free(files[0]);
		if (code != 0) {
			*error_r = auth_krb5_error(path, code);
			krb5_free_context(auth_krb5_ctx);
			auth_krb5_ctx = NULL;
			return -1;
		}
	}
	return 0;
}

/* auth_krb5_is_wrong - does code mean "wrong password or no such user" */
static bool
auth_krb5_is_wrong(krb5_error_code code)
{
	switch (code) {
	case KRB5KDC_ERR_PREAUTH_FAILED:
	case KRB5KRB_AP_ERR_BAD_INTEGRITY:
	case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
	case KRB5KDC_ERR_CLIENT_REVOKED:
	case KRB5KDC_ERR_KEY_EXPIRED:
	case KRB5KDC_ERR_NAME_EXP:
	case KRB5KDC_ERR_POLICY:
	case KRB5_LIBOS_PWDINTR:
		return true;
	default:
		return false;
	}
}

/* auth_krb5_verify_ticket - check creds against the service keytab */
static enum auth_result
auth_krb5_verify_ticket(krb5_creds *creds, const char **error_r)
{
	const char *kt_name = config_str(conf(), "auth_krb5_keytab");
	const char *service = config_str(conf(), "auth_krb5_service");
	krb5_verify_init_creds_opt vopt;
	krb5_principal server = NULL;
	krb5_keytab kt = NULL;
	krb5_error_code code;
	enum auth_result res = AUTH_TEMPFAIL;

	if ((code = krb5_kt_resolve(auth_krb5_ctx, kt_name, &kt)) != 0) {
		*error_r = auth_krb5_error(kt_name, code);
		return AUTH_TEMPFAIL;
	}
	if (*service != '\0' && (code = krb5_parse_name(auth_krb5_ctx,
	    service, &server)) != 0) {
		*error_r = auth_krb5_error(service, code);
		goto out;
	}
	krb5_verify_init_creds_opt_init(&vopt);
	/* A missing key is a failure, never "could not check: accept". */
	krb5_verify_init_creds_opt_set_ap_req_nofail(&vopt, 1);
	code = krb5_verify_init_creds(auth_krb5_ctx, creds, server, kt, NULL,
	    &vopt);
	if (code == 0)
		res = AUTH_OK;
	else {
		*error_r = auth_krb5_error("ticket not verified with the "
		    "keytab (forged KDC or stale keytab?)", code);
		res = AUTH_FAIL;
	}
out:
	if (server != NULL)
		krb5_free_principal(auth_krb5_ctx, server);
	(void)krb5_kt_close(auth_krb5_ctx, kt);
	return res;
}

/* auth_krb5_verify - see auth_krb5.h */
enum auth_result
auth_krb5_verify(const char *user, const char *password,
    const char **error_r)
{
	const char *realm = config_str(conf(), "auth_krb5_realm");
	krb5_get_init_creds_opt *opt = NULL;
	krb5_principal client = NULL;
	krb5_creds creds;
	krb5_error_code code;
	enum auth_result res = AUTH_TEMPFAIL;
	char *name;

	*error_r = NULL;
	if (*password == '\0')
		return AUTH_FAIL;
	if (auth_krb5_context(error_r) < 0)
		return AUTH_TEMPFAIL;
	name = *realm != '\0' ? xasprintf("%s@%s", user, realm) :
	    xstrdup(user);
	/* NO_REALM parsing is not wanted: the name has no realm or ours. */
	code = krb5_parse_name(auth_krb5_ctx, name, &client);
	free(name);
	if (code != 0)
		return AUTH_FAIL;
	memset(&creds, 0, sizeof(creds));
	if ((code = krb5_get_init_creds_opt_alloc(auth_krb5_ctx, &opt)) != 0) {
		*error_r = auth_krb5_error("options", code);
		goto out;
	}
	krb5_get_init_creds_opt_set_forwardable(opt, 0);
	krb5_get_init_creds_opt_set_proxiable(opt, 0);
	code = krb5_get_init_creds_password(auth_krb5_ctx, &creds, client,
	    password, NULL, NULL, 0, NULL, opt);
	if (code != 0) {
		if (auth_krb5_is_wrong(code))
			res = AUTH_FAIL;	/* *error_r stays NULL */
		else
			*error_r = auth_krb5_error("initial ticket", code);
		goto out;
	}
	res = auth_krb5_verify_ticket(&creds, error_r);
	krb5_free_cred_contents(auth_krb5_ctx, &creds);
out:
	if (opt != NULL)
		krb5_get_init_creds_opt_free(auth_krb5_ctx, opt);
	krb5_free_principal(auth_krb5_ctx, client);
	return res;
}

/* auth_krb5_deinit - free the context */
void
auth_krb5_deinit(void)
{
	if (auth_krb5_ctx != NULL)
		krb5_free_context(auth_krb5_ctx);
	auth_krb5_ctx = NULL;
	str_free(&auth_krb5_err);
}
