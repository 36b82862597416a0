/* SPDX-License-Identifier: MIT */
/*
 * postern_instance - self-contained instances for tests and demos
 *
 * DESCRIPTION
 *	postern instance init DIR [--port-base N] [--force] makes DIR a
 *	complete installation that an ordinary user can run: postern.conf
 *	with every path inside DIR, the daemons taken from the directory
 *	that holds this postern binary (so a build-tree instance runs the
 *	build tree's daemons), master.conf (the services of
 *	instance_services[]: each daemon adds its line, at its fixed port
 *	offset for inet services, when it arrives), the queue,
 *	data, store, log and tls directories, a self-signed certificate for
 *	localhost and an empty user database. Services listen on 127.0.0.1,
 *	port N + the protocol's usual port number modulo 1000 (SMTP N+25,
 *	IMAP N+143, ...).
 *
 *	It then prints the endpoints as KEY=value lines, in a fixed order,
 *	and writes the same lines to DIR/instance.env, written last: its
 *	presence marks a finished instance. `postern -c DIR instance info`
 *	prints it again. The keys, their order and their meaning are a
 *	public interface (postern(8)); scripts and the test suite read them.
 *	Only add keys at the end.
 *
 *	DIR must be new or empty. An existing instance (it has instance.env
 *	or postern.conf) is refused unless --force, which rewrites the
 *	configuration files and instance.env and creates what is missing,
 *	but keeps the queue, the store, the user database and an existing
 *	certificate, and refuses while the instance runs.
 *
 * SECURITY
 *	Runs as the invoking user, who becomes mail_owner and store_owner.
 *	As root (master never runs a daemon as root) the owners are the
 *	system accounts postern and postern-mail when they exist, else
 *	nobody, and the directories those daemons write are given to them.
 *	The private key is written mode 0600 through a clearing memory BIO;
 *	queue, data, store and tls directories are mode 0700.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "alloc.h"
#include "config.h"
#include "safe_file.h"
#include "str.h"
#include "userdb.h"

#include "postern.h"

#define INSTANCE_PORT_BASE_DEFAULT 10000
#define INSTANCE_PORT_OFFSET_MAX 995	/* POP3S, the highest offset */
#define INSTANCE_HOST "127.0.0.1"
#define INSTANCE_ENV "instance.env"
#define INSTANCE_CERT_DAYS 3650
#define INSTANCE_RSA_BITS 2048
#define INSTANCE_ENV_MAX (64 * 1024)

/*
 * The port plan: KEY_PORT = base + offset, printed in this order after
 * INSTANCE_DIR, CONFIG_DIR, HOST and PORT_BASE, and before LOG_FILE.
 */
static const struct {
	const char *key;
	unsigned offset;
	const char *daemon;
	const char *what;
} instance_ports[] = {
	{ "SMTP_PORT", 25, "smtpd", "SMTP (MX)" },
	{ "SUBMISSION_PORT", 587, "smtpd", "submission, STARTTLS" },
	{ "SMTPS_PORT", 465, "smtpd", "submission, implicit TLS" },
	{ "IMAP_PORT", 143, "imapd", "IMAP, STARTTLS" },
	{ "IMAPS_PORT", 993, "imapd", "IMAP, implicit TLS" },
	{ "POP3_PORT", 110, "pop3d", "POP3, STLS" },
	{ "POP3S_PORT", 995, "pop3d", "POP3, implicit TLS" },
	{ "SIEVE_PORT", 190, "sieved", "ManageSieve (usually 4190)" },
	{ "LMTP_PORT", 24, "lmtpd", "LMTP into the mail store" },
	{ "NNTP_PORT", 119, "news-gw", "NNTP feed of the news gateway" },
};

/*
 * The services of a new instance's master.conf. A daemon adds its rows
 * here when it is built: an inet service names its port key (the line
 * then starts "127.0.0.1:PORT"), a unix service its name; rest is the
 * remaining columns.
 */
static const struct {
	const char *port_key;	/* inet: key in instance_ports[], else NULL */
	const char *name;	/* unix: service name, else NULL */
	const char *rest;	/* "inet n - n - - smtpd" */
} instance_services[] = {
	/* smtpd (smtpd(8)): the MTA port, submission (AUTH over TLS
	 * required) and SMTPS (implicit TLS), from the same binary. */
	{ "SMTP_PORT", NULL, "inet n - n - - smtpd" },
	{ "SUBMISSION_PORT", NULL, "inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes -o smtpd_tls_security_level=encrypt -o smtpd_client_restrictions=permit_sasl_authenticated,reject" },
	{ "SMTPS_PORT", NULL, "inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject" },
	/* The one way into the queue: public/cleanup (cleanup(8)). */
	{ NULL, "cleanup", "unix n - n - 0 cleanup" },
	/* qmgr (qmgr(8)) wakes on public/qmgr; the smtp(8) agent delivers
	 * by LMTP to lmtpd (local_transport) and by SMTP to the world. */
	{ NULL, "qmgr", "fifo n - n 300 1 qmgr" },
	{ NULL, "lmtp", "unix - - n - - smtp" },
	{ NULL, "smtp", "unix - - n - - smtp" },
	/* scache (scache(8)): idle plaintext SMTP sessions and TLS client
	 * sessions shared by the smtp agents; one process holds them all,
	 * and for good (max_use=0, max_idle an hour: an exit closes every
	 * parked session and forgets the TLS sessions). */
	{ NULL, "scache", "unix - - n - 1 scache -o max_use=0 -o max_idle=3600s" },
	/* imapd (imapd(8)): the login role on IMAP and IMAPS hands each
	 * authenticated session to the mail role on private/imap-mail,
	 * imapd-mail: the same role as "imapd -o imap_role=mail" without
	 * TLS, SASL, LDAP or Kerberos linked in, hence smaller per session. */
	{ "IMAP_PORT", NULL, "inet n - n - - imapd" },
	{ "IMAPS_PORT", NULL, "inet n - n - - imapd -o imap_tls_wrappermode=yes" },
	{ NULL, "imap-mail", "unix y $store_owner n - 0 imapd-mail" },
	/* pop3d (pop3d(8)): the same split, on private/pop3-mail. */
	{ "POP3_PORT", NULL, "inet n - n - - pop3d" },
	{ "POP3S_PORT", NULL, "inet n - n - - pop3d -o pop3_tls_wrappermode=yes" },
	{ NULL, "pop3-mail", "unix y - n - 0 pop3d -o pop3_role=mail" },
	/* lmtpd (lmtpd(8)): local delivery into the store, as its owner, on
	 * private/lmtpd (local_transport) and on LMTP_PORT for tests. */
	{ NULL, "lmtpd", "unix y $store_owner n - - lmtpd" },
	{ "LMTP_PORT", NULL, "inet n $store_owner n - - lmtpd" },
	/* list-mgr (list-mgr(8)): mailing lists by LMTP on private/list-mgr
	 * (route a lists domain there with transport_maps); the wakeup
	 * sends due digests and expires bouncing members and tokens. */
	{ NULL, "list-mgr", "unix y - n 300 - list-mgr" },
	/* sieved (sieved(8)): ManageSieve, the same split as imapd, the
	 * mail role on private/sieve-mail as the store owner. */
	{ "SIEVE_PORT", NULL, "inet n - n - - sieved" },
	{ NULL, "sieve-mail", "unix y $store_owner n - 0 sieved -o managesieve_role=mail" },
	/* news-gw (news-gw(8)): mail to news by LMTP on private/news-gw
	 * (route a gateway domain there with transport_maps), the NNTP
	 * feed of the peers in news_gw_peers on NNTP_PORT, and the puller
	 * (news_gw_pull_groups) on master's wakeup. */
	{ NULL, "news-gw", "unix y - n - - news-gw" },
	{ "NNTP_PORT", NULL, "inet n - n - - news-gw -o news_gw_role=feed" },
	{ NULL, "news-pull", "unix y - n 60 1 news-gw -o news_gw_role=pull" },
	/* vacationd (vacationd(8)): vacation replies by LMTP on
	 * public/vacationd (lmtpd, as the store owner, is its client;
	 * vacationd admits only the store owner's and its own uid). */
	{ NULL, "vacationd", "unix n - n - - vacationd" },
	{ NULL, NULL, NULL },
};

/*
 * The directories of an instance, relative to DIR, their modes and, when
 * root makes the instance, their owners (as install-users.sh does for a
 * system install): the queue, data and log belong to mail_owner, the
 * store to store_owner; spool itself, pid/ and tls/ stay root's (master
 * and the daemons' pre-jail code use them as root).
 */
enum instance_owner {
	INSTANCE_OWNER_ME,
	INSTANCE_OWNER_MAIL,
	INSTANCE_OWNER_STORE,
};

static const struct {
	const char *path;
	mode_t mode;
	enum instance_owner owner;
} instance_dirs[] = {
	{ "spool", 0755, INSTANCE_OWNER_ME },
	{ "spool/maildrop", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/incoming", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/active", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/deferred", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/hold", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/corrupt", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/public", 0711, INSTANCE_OWNER_MAIL },
	{ "spool/private", 0700, INSTANCE_OWNER_MAIL },
	{ "spool/pid", 0755, INSTANCE_OWNER_ME },
	{ "data", 0750, INSTANCE_OWNER_MAIL },
	{ "store", 0700, INSTANCE_OWNER_STORE },
	{ "log", 0755, INSTANCE_OWNER_MAIL },
	{ "tls", 0700, INSTANCE_OWNER_ME },
};

struct instance {
	char *dir;		/* absolute */
	char *bindir;		/* where this postern binary is */
	char *user;		/* mail_owner */
	char *store_user;	/* store_owner */
	uid_t uid, store_uid;
	gid_t gid, store_gid;
	unsigned long port_base;
	bool force;
};

/* instance_path - DIR/rel into out (replaced) */
static const char *
instance_path(const struct instance *inst, const char *rel, struct str *out)
{
	str_clear(out);
	str_printf(out, "%s/%s", inst->dir, rel);
	return str_c(out);
}

/* instance_env - the KEY=value lines */
static void
instance_env(const struct instance *inst, struct str *out)
{
	size_t i;

	str_printf(out, "INSTANCE_DIR=%s\n", inst->dir);
	str_printf(out, "CONFIG_DIR=%s\n", inst->dir);
	str_printf(out, "HOST=%s\n", INSTANCE_HOST);
	str_printf(out, "PORT_BASE=%lu\n", inst->port_base);
	for (i = 0; i < N_ELEMENTS(instance_ports); i++)
		str_printf(out, "%s=%lu\n", instance_ports[i].key,
		    inst->port_base + instance_ports[i].offset);
	str_printf(out, "LOG_FILE=%s/log/postern.log\n", inst->dir);
}

static void
instance_conf_line(struct str *out, const char *name, const char *dir,
    const char *rel)
{
	/* instance_path_ok() keeps '$' and white space out of dir. */
	str_printf(out, "%s = %s", name, dir);
	if (rel != NULL) {
		str_append_c(out, '/');
		str_append_cstr(out, rel);
	}
	str_append_c(out, '\n');
}

/* instance_postern_conf - the text of postern.conf */
static void
instance_postern_conf(const struct instance *inst, struct str *out)
{
	str_printf(out,
	    "# postern.conf - a self-contained instance, made by\n"
	    "#   postern instance init %s --port-base %lu\n"
	    "#\n"
	    "# Every path is inside the instance; the daemons are the ones\n"
	    "# next to the postern binary that made it. Show the settings\n"
	    "# with `postern -c %s config`, change one with\n"
	    "# `postern -c %s config -e name=value`. See postern.conf(5).\n"
	    "\n", inst->dir, inst->port_base, inst->dir, inst->dir);
	instance_conf_line(out, "queue_directory", inst->dir, "spool");
	instance_conf_line(out, "data_directory", inst->dir, "data");
	instance_conf_line(out, "store_directory", inst->dir, "store");
	instance_conf_line(out, "daemon_directory", inst->bindir, NULL);
	instance_conf_line(out, "command_directory", inst->bindir, NULL);
	instance_conf_line(out, "maillog_file", inst->dir, "log/postern.log");
	if (geteuid() != 0)
		str_printf(out, "\n# Everything runs as the user who made "
		    "the instance.\n");
	else
		str_printf(out, "\n# Made by root: master runs as root, the "
		    "daemons as these accounts.\n");
	instance_conf_line(out, "mail_owner", inst->user, NULL);
	instance_conf_line(out, "store_owner", inst->store_user, NULL);
	str_printf(out, "\nmyhostname = localhost\n"
	    "inet_interfaces = " INSTANCE_HOST "\n\n");
	instance_conf_line(out, "tls_cert_file", inst->dir, "tls/cert.pem");
	instance_conf_line(out, "tls_key_file", inst->dir, "tls/key.pem");
}

/* instance_master_conf - the text of master.conf: the columns, the plan */
static void
instance_master_conf(const struct instance *inst, struct str *out)
{
	struct str *row = str_new(0, 0);
	size_t i;

	str_printf(out,
	    "# master.conf - the services master runs (see master.conf(5))\n"
	    "#\n"
	    "# Port plan of this instance (port base %lu); every inet service\n"
	    "# listens on " INSTANCE_HOST " at base + offset:\n"
	    "#\n", inst->port_base);
	for (i = 0; i < N_ELEMENTS(instance_ports); i++)
		str_printf(out, "#   %-16s %-8s +%-4u %5lu  %s\n",
		    instance_ports[i].key, instance_ports[i].daemon,
		    instance_ports[i].offset,
		    inst->port_base + instance_ports[i].offset,
		    instance_ports[i].what);
	str_printf(out,
	    "#\n"
	    "# A service line appears here once its daemon is built, at its\n"
	    "# port above; for example:\n"
	    "#   " INSTANCE_HOST ":%lu inet n - n - - smtpd\n"
	    "#\n"
	    "# service        type  private user chroot wakeup maxproc command + args\n"
	    "# (inet: [host:]port; unix: a name in private/ or public/)\n",
	    inst->port_base + 25);
	for (i = 0; instance_services[i].rest != NULL; i++) {
		const char *key = instance_services[i].port_key;
		const char *rest = instance_services[i].rest, *var;
		size_t p;

		/* "$store_owner" in a row is the store's account (master.conf
		 * has no $name expansion). */
		str_clear(row);
		if ((var = strstr(rest, "$store_owner")) != NULL) {
			str_append(row, rest, (size_t)(var - rest));
			str_append_cstr(row, inst->store_user);
			str_append_cstr(row, var + strlen("$store_owner"));
		} else {
			str_append_cstr(row, rest);
		}
		if (key == NULL) {
			str_printf(out, "%-16s %s\n", instance_services[i].name,
			    str_c(row));
			continue;
		}
		for (p = 0; p < N_ELEMENTS(instance_ports); p++)
			if (strcmp(instance_ports[p].key, key) == 0)
				break;
		ASSERT(p < N_ELEMENTS(instance_ports));
		str_printf(out, INSTANCE_HOST ":%-6lu %s\n",
		    inst->port_base + instance_ports[p].offset, str_c(row));
	}
	str_free(&row);
}

/* instance_openssl_error - the last OpenSSL error as text */
static const char *
instance_openssl_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* instance_cert_ext - add one v3 extension; false on failure */
static bool
instance_cert_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	bool ok;

	if (ext == NULL)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* instance_bio_write - a memory BIO's bytes into path */
static int
instance_bio_write(BIO *bio, const char *path, mode_t mode)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0) {
		errno = EIO;
		return -1;
	}
	return safe_file_replace(path, data, (size_t)len, mode);
}

/*
 * instance_make_cert - a self-signed certificate for localhost (RSA,
 * SHA-256, ten years; CN and subjectAltName localhost, 127.0.0.1, ::1;
 * CA:TRUE so that clients can trust it directly as their CA file).
 * -1 after a message.
 */
static int
instance_make_cert(const char *cert_path, const char *key_path)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	X509V3_CTX ctx;
	BIGNUM *serial = NULL;
	BIO *cert_bio = NULL, *key_bio = NULL;
	char errbuf[256];
	int rc = -1;

	if ((pkey = EVP_RSA_gen(INSTANCE_RSA_BITS)) == NULL ||
	    (x = X509_new()) == NULL || (serial = BN_new()) == NULL)
		goto ssl_error;
	if (X509_set_version(x, 2) != 1 ||
	    BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)INSTANCE_CERT_DAYS * 86400) == NULL ||
	    X509_set_pubkey(x, pkey) != 1)
		goto ssl_error;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"Postern instance", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto ssl_error;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (!instance_cert_ext(x, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE") ||
	    !instance_cert_ext(x, &ctx, NID_key_usage,
	    "critical,digitalSignature,keyEncipherment,keyCertSign") ||
	    !instance_cert_ext(x, &ctx, NID_ext_key_usage, "serverAuth") ||
	    !instance_cert_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !instance_cert_ext(x, &ctx, NID_authority_key_identifier,
	    "keyid:always") ||
	    !instance_cert_ext(x, &ctx, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1,IP:::1"))
		goto ssl_error;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto ssl_error;
	/* A secure-memory BIO clears the key text when it is freed. */
	if ((cert_bio = BIO_new(BIO_s_mem())) == NULL ||
	    (key_bio = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_X509(cert_bio, x) != 1 ||
	    PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1)
		goto ssl_error;
	if (instance_bio_write(key_bio, key_path, 0600) < 0) {
		postern_error("cannot write %s: %m", key_path);
		goto out;
	}
	if (instance_bio_write(cert_bio, cert_path, 0644) < 0) {
		postern_error("cannot write %s: %m", cert_path);
		goto out;
	}
	rc = 0;
	goto out;
ssl_error:
	postern_error("cannot make a certificate: %s",
	    instance_openssl_error(errbuf, sizeof(errbuf)));
out:
	BIO_free(cert_bio);
	BIO_free(key_bio);
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/* instance_dir_state - 0 new or empty, 1 an instance, 2 other; -1 error */
static int
instance_dir_state(const char *dir)
{
	struct dirent *de;
	struct str *path = str_new(PATH_MAX, 0);
	bool empty = true;
	DIR *d;
	int state;

	if ((d = opendir(dir)) == NULL) {
		str_free(&path);
		if (errno == ENOENT)
			return 0;
		postern_error("cannot open %s: %m", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	(void)closedir(d);
	if (empty) {
		state = 0;
	} else {
		str_printf(path, "%s/" INSTANCE_ENV, dir);
		state = access(str_c(path), F_OK) == 0 ? 1 : 2;
		if (state == 2) {
			str_clear(path);
			str_printf(path, "%s/postern.conf", dir);
			if (access(str_c(path), F_OK) == 0)
				state = 1;
		}
	}
	str_free(&path);
	return state;
}

/* instance_absolute - an absolute, clean form of the DIR argument */
static char *
instance_absolute(const char *arg)
{
	struct str *p;
	char cwd[PATH_MAX], *real;

	if ((real = realpath(arg, NULL)) != NULL)
		return real;
	p = str_new(PATH_MAX, 0);
	if (arg[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			postern_error("cannot find the current directory: %m");
			str_free(&p);
			return NULL;
		}
		str_printf(p, "%s/", strcmp(cwd, "/") == 0 ? "" : cwd);
	}
	str_append_cstr(p, arg);
	while (str_len(p) > 1 && str_c(p)[str_len(p) - 1] == '/')
		str_truncate(p, str_len(p) - 1);
	return str_steal(&p);
}

/* instance_path_ok - no characters that postern.conf or scripts would mangle */
static bool
instance_path_ok(const char *what, const char *path)
{
	const char *p;

	for (p = path; *p != '\0'; p++) {
		/*
		 * '$' would be expanded in postern.conf (and
		 * config_directory, which is set from -c DIR, is expanded
		 * too), white space would split list values and env lines.
		 */
		if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\'' ||
		    *p == '\\' || *p == '$') {
			postern_error("%s %s contains white space, a control "
			    "character, a quote or '$'; choose a plain path",
			    what, path);
			return false;
		}
	}
	return true;
}

/* instance_running - true if master runs in this instance (lock held) */
static bool
instance_running(const struct instance *inst)
{
	struct str *path = str_new(PATH_MAX, 0);
	pid_t pid = pid_file_read(instance_path(inst, "spool/pid/master.pid",
	    path));

	str_free(&path);
	return pid > 0;
}

/* instance_make_dirs - the directory tree with its modes */
static int
instance_make_dirs(const struct instance *inst)
{
	struct str *path = str_new(PATH_MAX, 0);
	size_t i;
	int rc = -1;

	if (mkdir_p(inst->dir, 0755) < 0) {
		postern_error("cannot create %s: %m", inst->dir);
		goto out;
	}
	/*
	 * As root the services run as other accounts, which must be able
	 * to reach their folders inside the instance: a directory made
	 * 0700 beforehand (mkdtemp) would lock them out. Grant search
	 * permission only; the folders inside keep their own modes.
	 */
	if (geteuid() == 0) {
		struct stat st;

		if (stat(inst->dir, &st) < 0 ||
		    ((st.st_mode & 0011) != 0011 &&
		    chmod(inst->dir, (st.st_mode & 07777) | 0011) < 0)) {
			postern_error("cannot open %s to the service accounts: %m",
			    inst->dir);
			goto out;
		}
	}
	for (i = 0; i < N_ELEMENTS(instance_dirs); i++) {
		instance_path(inst, instance_dirs[i].path, path);
		if (mkdir_p(str_c(path), instance_dirs[i].mode) < 0 ||
		    chmod(str_c(path), instance_dirs[i].mode) < 0) {
			postern_error("cannot create %s: %m", str_c(path));
			goto out;
		}
		if (geteuid() != 0 ||
		    instance_dirs[i].owner == INSTANCE_OWNER_ME)
			continue;
		if (instance_dirs[i].owner == INSTANCE_OWNER_MAIL ?
		    chown(str_c(path), inst->uid, inst->gid) < 0 :
		    chown(str_c(path), inst->store_uid, inst->store_gid) < 0) {
			postern_error("cannot give %s to its owner: %m",
			    str_c(path));
			goto out;
		}
	}
	rc = 0;
out:
	str_free(&path);
	return rc;
}

/*
 * instance_make_userdb - an empty user database, unless one exists. The
 * userdb API makes the file with its first user, so add a placeholder
 * and delete it again: what remains is an empty database in userdb's own
 * format, written by userdb's own (locked, atomic) writer.
 */
static int
instance_make_userdb(const struct instance *inst)
{
	static const char placeholder[] = "postern-instance-init";
	struct str *path = str_new(PATH_MAX, 0);
	struct userdb *db;
	const char *error = NULL;
	int rc = -1;

	instance_path(inst, "data/users.db", path);
	if (access(str_c(path), F_OK) == 0) {
		rc = 0;
		goto out;
	}
	if (userdb_add(str_c(path), placeholder, placeholder, &error) < 0 ||
	    userdb_delete(str_c(path), placeholder, &error) < 0) {
		postern_error("cannot create the user database %s: %s",
		    str_c(path), error != NULL ? error : "failed");
		goto out;
	}
	if ((db = userdb_open(str_c(path), &error)) == NULL) {
		postern_error("cannot open the new user database %s: %s",
		    str_c(path), error != NULL ? error : "failed");
		goto out;
	}
	userdb_close(&db);
	rc = 0;
out:
	str_free(&path);
	return rc;
}

/* instance_write - safe_file_replace with a message; -1 on failure */
static int
instance_write(const char *path, const struct str *data, mode_t mode)
{
	if (safe_file_replace(path, str_c(data), str_len(data), mode) < 0) {
		postern_error("cannot write %s: %m", path);
		return -1;
	}
	return 0;
}

/* instance_create - everything but the printing */
static int
instance_create(struct instance *inst)
{
	struct str *text = str_new(4096, 0);
	struct str *path = str_new(PATH_MAX, 0);
	struct str *key = str_new(PATH_MAX, 0);
	int rc = -1;

	/* Check what we will write before anything exists. */
	instance_postern_conf(inst, text);
	if (!postern_config_parses(str_c(text), str_len(text),
	    instance_path(inst, "postern.conf", path), true)) {
		postern_error("internal error: the postern.conf made for %s "
		    "does not load (see above)", inst->dir);
		goto out;
	}
	if (instance_make_dirs(inst) < 0)
		goto out;
	if (instance_write(instance_path(inst, "postern.conf", path), text,
	    0644) < 0)
		goto out;
	str_clear(text);
	instance_master_conf(inst, text);
	if (instance_write(instance_path(inst, "master.conf", path), text,
	    0644) < 0)
		goto out;

	instance_path(inst, "tls/cert.pem", path);
	instance_path(inst, "tls/key.pem", key);
	if ((access(str_c(path), F_OK) < 0 || access(str_c(key), F_OK) < 0) &&
	    instance_make_cert(str_c(path), str_c(key)) < 0)
		goto out;
	if (instance_make_userdb(inst) < 0)
		goto out;

	/* Last: instance.env marks a finished instance. */
	str_clear(text);
	instance_env(inst, text);
	if (instance_write(instance_path(inst, INSTANCE_ENV, path), text,
	    0644) < 0)
		goto out;
	fwrite(str_c(text), 1, str_len(text), stdout);
	rc = 0;
out:
	str_free(&key);
	str_free(&path);
	str_free(&text);
	return rc;
}

/*
 * instance_owners - mail_owner and store_owner. An ordinary user runs
 * everything as itself. master refuses to run daemons as root, so an
 * instance made by root uses the system accounts when they exist
 * (scripts/install-users.sh: postern, postern-mail), else nobody.
 */
static bool
instance_owners(struct instance *inst)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		if ((pw = getpwuid(geteuid())) == NULL) {
			postern_error("cannot find the name of user id %ld (it "
			    "becomes the instance's mail_owner)",
			    (long)geteuid());
			return false;
		}
		inst->user = xstrdup(pw->pw_name);
		inst->uid = inst->store_uid = pw->pw_uid;
		inst->gid = inst->store_gid = pw->pw_gid;
		inst->store_user = xstrdup(pw->pw_name);
		return true;
	}
	if ((pw = getpwnam("postern")) == NULL || pw->pw_uid == 0)
		pw = getpwnam("nobody");
	if (pw == NULL || pw->pw_uid == 0) {
		postern_error("as root, an instance needs an unprivileged "
		    "account for its daemons: create the accounts with "
		    "scripts/install-users.sh (or a user named nobody)");
		return false;
	}
	inst->user = xstrdup(pw->pw_name);
	inst->uid = inst->store_uid = pw->pw_uid;
	inst->gid = inst->store_gid = pw->pw_gid;
	if (strcmp(inst->user, "postern") == 0 &&
	    (pw = getpwnam("postern-mail")) != NULL && pw->pw_uid != 0) {
		inst->store_uid = pw->pw_uid;
		inst->store_gid = pw->pw_gid;
	}
	inst->store_user = xstrdup(inst->store_uid == inst->uid ? inst->user :
	    pw->pw_name);
	return true;
}

/* instance_port_base - parse --port-base; false after a message */
static bool
instance_port_base(const char *arg, unsigned long *base_r)
{
	unsigned long max = 65535 - INSTANCE_PORT_OFFSET_MAX;

	if (!str_to_ulong(arg, strlen(arg), ULONG_MAX, base_r) ||
	    *base_r < 1 || *base_r > max) {
		postern_error("bad --port-base \"%s\": use a number from 1 to "
		    "%lu (services use ports N+24 to N+%d)", arg, max,
		    INSTANCE_PORT_OFFSET_MAX);
		return false;
	}
	return true;
}

/* instance_cmd_init - instance init DIR [--port-base N] [--force] */
static int
instance_cmd_init(int argc, char **argv)
{
	struct instance inst;
	const char *dir_arg = NULL;
	int i, state, rc = POSTERN_EXIT_FAIL;

	memset(&inst, 0, sizeof(inst));
	inst.port_base = INSTANCE_PORT_BASE_DEFAULT;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;

		if (strcmp(arg, "--force") == 0) {
			inst.force = true;
			continue;
		}
		if (strcmp(arg, "--port-base") == 0) {
			if (++i >= argc)
				return postern_usage_error("instance",
				    "--port-base needs a number");
			value = argv[i];
		} else if (strncmp(arg, "--port-base=", 12) == 0) {
			value = arg + 12;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return postern_usage_error("instance", "instance init: "
			    "unknown option \"%s\"", arg);
		} else if (dir_arg == NULL) {
			dir_arg = arg;
			continue;
		} else {
			return postern_usage_error("instance", "instance init: "
			    "unexpected argument \"%s\"", arg);
		}
		if (!instance_port_base(value, &inst.port_base))
			return POSTERN_EXIT_USAGE;
	}
	if (dir_arg == NULL || *dir_arg == '\0')
		return postern_usage_error("instance", "instance init needs a "
		    "DIR");

	if ((inst.dir = instance_absolute(dir_arg)) == NULL)
		goto out;
	if (postern.self_dir == NULL) {
		postern_error("cannot find the directory of this program "
		    "(/proc/self/exe): the instance needs it as its "
		    "daemon_directory");
		goto out;
	}
	inst.bindir = postern.self_dir;
	if (!instance_path_ok("instance directory", inst.dir) ||
	    !instance_path_ok("program directory", inst.bindir))
		goto out;
	if (!instance_owners(&inst))
		goto out;

	state = instance_dir_state(inst.dir);
	if (state < 0)
		goto out;
	if (state == 2) {
		postern_error("%s is not empty and is not a postern instance; "
		    "choose a new or empty directory", inst.dir);
		goto out;
	}
	if (state == 1 && !inst.force) {
		postern_error("%s is already a postern instance (postern -c %s "
		    "instance info shows it; --force re-creates its "
		    "configuration and keeps its mail and users)", inst.dir,
		    inst.dir);
		goto out;
	}
	if (state == 1 && instance_running(&inst)) {
		postern_error("the instance in %s is running; stop it first "
		    "(postern -c %s stop)", inst.dir, inst.dir);
		goto out;
	}
	/* The new files' modes are given explicitly; nothing more open. */
	umask(022);
	if (instance_create(&inst) < 0) {
		postern_error("instance %s not finished (no %s written); fix "
		    "the problem and run instance init again with --force",
		    inst.dir, INSTANCE_ENV);
		goto out;
	}
	rc = POSTERN_EXIT_OK;
out:
	free(inst.dir);
	free(inst.user);
	free(inst.store_user);
	return rc;
}

/* instance_cmd_info - reprint instance.env of the instance -c DIR */
static int
instance_cmd_info(int argc, char **argv UNUSED)
{
	struct str *path, *text;
	int rc = POSTERN_EXIT_OK;

	if (argc > 1)
		return postern_usage_error("instance", "instance info takes no "
		    "arguments (give the instance with -c DIR)");
	path = str_new(PATH_MAX, 0);
	text = str_new(1024, 0);
	postern_config_path(path, INSTANCE_ENV);
	if (read_file(str_c(path), text, INSTANCE_ENV_MAX) < 0) {
		if (errno == ENOENT)
			postern_error("%s is not an instance (no %s; make one "
			    "with postern instance init DIR, or give it with "
			    "-c DIR)", postern.config_dir, INSTANCE_ENV);
		else
			postern_error("cannot read %s: %m", str_c(path));
		rc = POSTERN_EXIT_FAIL;
	} else {
		fwrite(str_c(text), 1, str_len(text), stdout);
	}
	str_free(&text);
	str_free(&path);
	return rc;
}

/* postern_cmd_instance - instance init | info */
int
postern_cmd_instance(int argc, char **argv)
{
	if (argc < 2)
		return postern_usage_error("instance", "instance needs init or "
		    "info");
	if (strcmp(argv[1], "init") == 0)
		return instance_cmd_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "info") == 0)
		return instance_cmd_info(argc - 1, argv + 1);
	return postern_usage_error("instance", "unknown instance command "
	    "\"%s\"", argv[1]);
}
