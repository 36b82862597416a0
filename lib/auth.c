/* SPDX-License-Identifier: MIT */
/*
 * auth - password verification and user existence over the configured backends
 *
 * DESCRIPTION
 *	See auth.h. $auth_backends lists the backends in the order they
 *	are asked:
 *
 *	userdb    the embedded user database ($user_database): one
 *	          process-wide handle, opened lazily (so a daemon that never
 *	          authenticates never opens it). If the database does not
 *	          exist yet (ENOENT) every user is unknown; the open is
 *	          retried on the next call, so the first `postern user add`
 *	          is seen without a restart.
 *	kerberos  Heimdal: an initial ticket verified against the service
 *	          keytab (auth_krb5.c). It cannot tell whether a user
 *	          exists, so auth_user_exists() skips it.
 *	ldap      the directory: the user's entry is found with
 *	          $ldap_user_filter under $ldap_base (bound as $ldap_bind_dn
 *	          with the password in $ldap_bind_pw_file), exactly one entry
 *	          or none; the password is checked by a simple bind as that
 *	          entry's DN (ldapdir.c). $ldap_start_tls, ldaps:// URIs,
 *	          $ldap_tls_ca_file and $ldap_tls_require_cert protect
 *	          both; a TLS failure is AUTH_TEMPFAIL, never plaintext.
 *
 *	A password is right if any backend says so; the first AUTH_OK
 *	wins. A wrong password in one backend goes on to the next (as
 *	Dovecot's passdb chain does by default), so one user may live in
 *	any of them. If none says OK and one failed temporarily, the
 *	answer is AUTH_TEMPFAIL (we cannot know the password was wrong).
 *
 *	Names are lower-cased into a bounded local copy before the lookup
 *	and must pass userdb_name_ok() for every backend: that allow-list
 *	keeps principal syntax ('@', '/') out of Kerberos and is escaped
 *	again for LDAP filters.
 *
 *	The failed-login delay wraps the backends (auth_verify_password):
 *	wait what is pending for the client address and the user, ask the
 *	backends, then on AUTH_FAIL record the failure in the shared
 *	table (auth_delay.c) and wait what it says; on AUTH_OK forget the
 *	user. The first wait is there so that a right password is not
 *	answered sooner than a wrong one from a client that keeps many
 *	connections open. The address comes from the server skeleton
 *	(server_peer_addr): every caller is a single-mode login process
 *	serving one client, so no protocol code passes it. A user key is
 *	made of the name as given (folded to lower case), valid or not,
 *	so a name that cannot exist is delayed like one that does.
 *
 *	XXX a ticket that does not verify against the keytab is a security
 *	event the caller cannot tell from a wrong password (both AUTH_FAIL,
 *	on purpose); it is logged here, with a NULL context.
 *
 * SEE ALSO
 *	auth_delay.h, auth_krb5.h, ldapdir.h, userdb.h, postern.conf(5)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "auth_delay.h"
#include "auth_krb5.h"
#include "config.h"
#include "ldapdir.h"
#include "log.h"
#include "macros.h"
#include "safe_file.h"
#include "server.h"
#include "str.h"
#include "userdb.h"

#define AUTH_NAME_MAX	64
#define AUTH_BACKENDS_MAX 8
#define AUTH_PW_FILE_MAX 4096

enum auth_backend {
	AUTH_BACKEND_USERDB,
	AUTH_BACKEND_KRB5,
	AUTH_BACKEND_LDAP,
};

/* the failed-login delay's bounds on settings */
#define AUTH_DELAY_LIMIT_MS	(10 * 60 * 1000)
#define AUTH_DELAY_DECAY_LIMIT_MS (24 * 3600 * 1000)

static struct userdb *auth_db;
static struct ldapdir *auth_ldap;
static struct auth_delay *auth_delay_tab;
static bool auth_delay_failed;	/* could not open it; warned */

/* auth_open - the database handle; 1 open, 0 no database, -1 error */
static int
auth_open(const char **error_r)
{
	if (auth_db != NULL)
		return 1;
	auth_db = userdb_open(config_str(conf(), "user_database"), error_r);
	if (auth_db != NULL)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* auth_ldap_open - the directory configuration; 0 or -1 with *error_r */
static int
auth_ldap_open(const char **error_r)
{
	const struct config *c = conf();
	struct ldapdir_settings s;
	const char *pw_file = config_str(c, "ldap_bind_pw_file");
	struct str *pw;

	if (auth_ldap != NULL)
		return 0;
	pw = str_new(0, 0);
	if (*pw_file != '\0' && read_file(pw_file, pw, AUTH_PW_FILE_MAX) < 0) {
		*error_r = "ldap: cannot read ldap_bind_pw_file";
		str_free(&pw);
		return -1;
	}
	while (str_len(pw) > 0 && (str_c(pw)[str_len(pw) - 1] == '\n' ||
	    str_c(pw)[str_len(pw) - 1] == '\r'))
		str_truncate(pw, str_len(pw) - 1);
	memset(&s, 0, sizeof(s));
	s.uris = config_str(c, "ldap_uri");
	s.base = config_str(c, "ldap_base");
	s.scope = LDAPDIR_SCOPE_SUB;
	s.filter = config_str(c, "ldap_user_filter");
	s.result_attrs = "";
	s.bind_dn = config_str(c, "ldap_bind_dn");
	s.bind_pw = str_c(pw);
	s.timeout = config_time(c, "ldap_timeout");
	s.start_tls = config_bool(c, "ldap_start_tls");
	s.tls_ca_file = config_str(c, "ldap_tls_ca_file");
	s.tls_insecure = !config_bool(c, "ldap_tls_require_cert");
	auth_ldap = ldapdir_new(&s);
	explicit_bzero(str_data(pw), str_len(pw));
	str_free(&pw);
	return 0;
}

/* auth_backends - parse $auth_backends; the count, or -1 with *error_r */
static int
auth_backends(enum auth_backend out[AUTH_BACKENDS_MAX], const char **error_r)
{
	const char *const *names;
	size_t i, n;

	names = config_list(conf(), "auth_backends", &n);
	if (n > AUTH_BACKENDS_MAX) {
		*error_r = "auth_backends: too many backends";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(names[i], "userdb") == 0)
			out[i] = AUTH_BACKEND_USERDB;
		else if (strcmp(names[i], "kerberos") == 0 ||
		    strcmp(names[i], "krb5") == 0)
			out[i] = AUTH_BACKEND_KRB5;
		else if (strcmp(names[i], "ldap") == 0)
			out[i] = AUTH_BACKEND_LDAP;
		else {
			*error_r = "auth_backends: unknown backend "
			    "(userdb, kerberos, ldap)";
			return -1;
		}
	}
	return (int)n;
}

/* auth_fold - lower-case name into buf; false if it cannot be a user name */
static bool
auth_fold(const char *name, char buf[AUTH_NAME_MAX + 1])
{
	size_t i, n = strlen(name);

	if (n == 0 || n > AUTH_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		buf[i] = name[i] >= 'A' && name[i] <= 'Z' ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	buf[n] = '\0';
	return userdb_name_ok(buf);
}

/* auth_userdb_verify - the userdb backend */
static enum auth_result
auth_userdb_verify(const char *name, const char *password,
    const char **error_r)
{
	int ret;

	if ((ret = auth_open(error_r)) <= 0)
		return ret == 0 ? AUTH_FAIL : AUTH_TEMPFAIL;
	ret = userdb_verify(auth_db, name, password, error_r);
	if (ret < 0)
		return AUTH_TEMPFAIL;
	return ret == 1 ? AUTH_OK : AUTH_FAIL;
}

/* auth_ldap_verify - the ldap backend: find the entry, bind as it */
static enum auth_result
auth_ldap_verify(const char *name, const char *password,
    const char **error_r)
{
	struct str *dn;
	int ret;

	if (auth_ldap_open(error_r) < 0)
		return AUTH_TEMPFAIL;
	dn = str_new(0, 0);
	ret = ldapdir_search_unique(auth_ldap, name, NULL, dn, error_r);
	if (ret == 1)
		ret = ldapdir_check_password(auth_ldap, str_c(dn), password,
		    error_r);
	str_free(&dn);
	if (ret < 0)
		return AUTH_TEMPFAIL;
	return ret == 1 ? AUTH_OK : AUTH_FAIL;
}

/* auth_verify_backends - ask the backends in order */
static enum auth_result
auth_verify_backends(const char *user, const char *password,
    const char **error_r)
{
	enum auth_backend be[AUTH_BACKENDS_MAX];
	enum auth_result r, res = AUTH_FAIL;
	char name[AUTH_NAME_MAX + 1];
	const char *err = NULL;
	int i, n;

	if (!auth_fold(user, name))
		return AUTH_FAIL;
	if ((n = auth_backends(be, error_r)) < 0)
		return AUTH_TEMPFAIL;
	for (i = 0; i < n; i++) {
		err = NULL;
		switch (be[i]) {
		case AUTH_BACKEND_USERDB:
			r = auth_userdb_verify(name, password, &err);
			break;
		case AUTH_BACKEND_KRB5:
			r = auth_krb5_verify(name, password, &err);
			if (r == AUTH_FAIL && err != NULL)
				log_warn(NULL, "user %s: %s", name, err);
			break;
		case AUTH_BACKEND_LDAP:
			r = auth_ldap_verify(name, password, &err);
			break;
		default:
			log_panic(NULL, "auth backend %d", (int)be[i]);
		}
		if (r == AUTH_OK) {
			res = AUTH_OK;
			break;
		}
		if (r == AUTH_TEMPFAIL) {
			res = AUTH_TEMPFAIL;
			*error_r = err != NULL ? err : "backend failure";
		}
	}
	explicit_bzero(name, sizeof(name));
	return res;
}

/*
 * auth_delay_table - the shared table, opened on first use; NULL if the
 * delay is off (*on_r false) or the table cannot be had (*on_r true,
 * warned about once per process)
 */
static struct auth_delay *
auth_delay_table(struct auth_delay_settings *s, bool *on_r)
{
	const struct config *c = conf();
	uint64_t base = config_int(c, "auth_failure_delay_ms");
	uint64_t max = config_int(c, "auth_failure_delay_max_ms");
	uint64_t decay = config_time(c, "auth_failure_delay_decay");
	const char *err = "";

	memset(s, 0, sizeof(*s));
	s->base_ms = (unsigned)MIN(base, AUTH_DELAY_LIMIT_MS);
	s->max_ms = (unsigned)MAX(MIN(max, AUTH_DELAY_LIMIT_MS), s->base_ms);
	s->decay_ms = (unsigned)MIN(decay * 1000, AUTH_DELAY_DECAY_LIMIT_MS);
	*on_r = s->base_ms > 0;
	if (!*on_r || auth_delay_tab != NULL || auth_delay_failed)
		return auth_delay_tab;
	auth_delay_tab = auth_delay_open(config_str(c,
	    "auth_failure_delay_table"), s, &err);
	if (auth_delay_tab == NULL) {
		/* Not fatal: every failure still waits the base delay. */
		log_warn(NULL, "%s: %s: %m; failed logins wait a fixed %u ms",
		    config_str(c, "auth_failure_delay_table"), err, s->base_ms);
		auth_delay_failed = true;
	}
	return auth_delay_tab;
}

/* auth_delay_user_key - "user:" and the name in lower case, into out */
static void
auth_delay_user_key(const char *user, struct str *out)
{
	size_t i, n = strnlen(user, AUTH_DELAY_KEY_MAX);

	str_clear(out);
	(void)str_append_cstr(out, "user:");
	for (i = 0; i < n; i++)
		(void)str_append_c(out, user[i] >= 'A' && user[i] <= 'Z' ?
		    (char)(user[i] - 'A' + 'a') : user[i]);
}

/* auth_verify_password - see auth.h */
enum auth_result
auth_verify_password(const char *user, const char *password,
    const char **error_r)
{
	struct auth_delay_settings s;
	struct auth_delay *ad;
	struct str *ip_key, *user_key;
	const char *keys[2], *err = "";
	enum auth_result res;
	unsigned wait = 0;
	size_t n = 0;
	bool on;

	ad = auth_delay_table(&s, &on);
	if (!on)
		return auth_verify_backends(user, password, error_r);
	ip_key = str_new(0, 0);
	user_key = str_new(0, 0);
	if (auth_delay_ip_key(server_peer_addr(), ip_key))
		keys[n++] = str_c(ip_key);
	auth_delay_user_key(user, user_key);
	keys[n++] = str_c(user_key);
	/*
	 * Wait out what earlier failures set before asking anyone, and
	 * whatever the answer: if a right password were answered at once,
	 * a client with many connections would not need to wait for the
	 * wrong ones.
	 */
	if (ad != NULL && auth_delay_pending(ad, keys, n,
	    auth_delay_now_ms(), &wait, &err) < 0)
		log_warn(NULL, "%s: %m", err);
	if (wait > 0)
		auth_delay_sleep(wait);
	res = auth_verify_backends(user, password, error_r);
	wait = 0;
	if (res == AUTH_FAIL) {
		/* No such user and a wrong password count (and wait) alike. */
		if (ad == NULL)
			wait = s.base_ms;
		else if (auth_delay_fail(ad, keys, n, auth_delay_now_ms(),
		    &wait, &err) < 0) {
			log_warn(NULL, "%s: %m", err);
			wait = s.base_ms;
		}
	} else if (res == AUTH_OK && ad != NULL &&
	    auth_delay_reset(ad, str_c(user_key), &err) < 0)
		log_warn(NULL, "%s: %m", err);
	explicit_bzero(str_data(user_key), str_len(user_key));
	str_free(&ip_key);
	str_free(&user_key);
	if (wait > 0)
		auth_delay_sleep(wait);
	return res;
}

/* auth_user_exists - see auth.h */
int
auth_user_exists(const char *user, const char **error_r)
{
	enum auth_backend be[AUTH_BACKENDS_MAX];
	char name[AUTH_NAME_MAX + 1];
	struct userdb_user u;
	const char *err;
	int i, n, r, res = 0;

	if (!auth_fold(user, name))
		return 0;
	if ((n = auth_backends(be, error_r)) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		err = NULL;
		switch (be[i]) {
		case AUTH_BACKEND_USERDB:
			if ((r = auth_open(&err)) > 0) {
				r = userdb_lookup(auth_db, name, &u, &err);
				if (r == 1)
					userdb_user_clear(&u);
			}
			break;
		case AUTH_BACKEND_LDAP:
			r = auth_ldap_open(&err) < 0 ? -1 :
			    ldapdir_search_unique(auth_ldap, name, NULL, NULL,
			    &err);
			break;
		default:	/* kerberos cannot tell */
			r = 0;
			break;
		}
		if (r == 1)
			return 1;
		if (r < 0) {
			res = -1;
			*error_r = err != NULL ? err : "backend failure";
		}
	}
	return res;
}

/* auth_deinit - close the backends */
void
auth_deinit(void)
{
	userdb_close(&auth_db);
	ldapdir_free(&auth_ldap);
	auth_delay_close(&auth_delay_tab);
	auth_delay_failed = false;
	auth_krb5_deinit();
}
