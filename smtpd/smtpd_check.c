/* SPDX-License-Identifier: MIT */
/*
 * smtpd_check - policy: client restrictions, relay control, recipient
 * validation, per-client connection limit, peer name lookup
 *
 * DESCRIPTION
 *	smtpd_client_restrictions is evaluated at MAIL FROM (Postfix's
 *	smtpd_delay_reject spirit: the client learns why at a command that
 *	can carry the reason). Items: permit_mynetworks,
 *	permit_sasl_authenticated, permit, reject; the first that matches
 *	decides; an empty list permits. "reject" answers 530 5.7.0
 *	(authentication required) when AUTH is offered to the client, else
 *	554 5.7.1. An unknown item is a configuration error: 451 4.3.5 and
 *	a logged error, never a silent permit.
 *
 *	RCPT: a recipient in a local domain ($mydestination, or the
 *	special <Postmaster>) must be a local user: the local part minus
 *	any extension (recipient_delimiter) is looked up in the user
 *	database and in $alias_maps (keys "local" and "local@domain");
 *	"postmaster" is always accepted (RFC 5321 4.5.1). Unknown: 550
 *	5.1.1. A lookup failure: 451 4.3.0. Any other domain is relayed
 *	only for clients in $mynetworks and authenticated clients; others
 *	get 554 5.7.1 Relay access denied.
 *
 *	Two kinds of address are local destinations although their
 *	domains need not be in $mydestination, so they are checked first
 *	and accepted from any client: a departmental address in one of
 *	$department_domains must be some user's alias (the user
 *	database's reverse index, userdb_lookup_alias, with and then
 *	without the address extension, as qmgr resolves it); and with
 *	$srs_enable, an SRS0 address at $srs_domain must carry a valid
 *	hash and an unexpired timestamp (lib/srs.h; the secret is read in
 *	smtpd_check_pre_jail()). Unknown or invalid: 550 5.1.1; a failed
 *	lookup: 451 4.3.0.
 *
 *	The per-client connection limit uses no daemon and no shared
 *	memory: every connection takes one of N byte-range locks (fcntl
 *	F_SETLK, write lock on byte i) in the file smtpd-conn/ADDR under
 *	$data_directory (owned by $mail_owner; the queue directory itself
 *	may be root's). Under a chroot that directory is out of reach: the
 *	limit is then off, with a warning. The kernel drops a process's locks when it exits
 *	or crashes, so a count can never leak; N busy bytes mean the limit
 *	is reached. The address is allow-listed ([0-9A-Fa-f.:]) before it
 *	becomes a file name. One smtpd process serves one connection at a
 *	time, so a process holds at most one slot, released when the
 *	session's process closes the lock file (smtpd.c does after each
 *	session). XXX: the files are never removed (one small file per
 *	client address ever seen); a cleanup task can remove unlocked ones.
 *
 * SEE ALSO
 *	Postfix smtpd_check.c, anvil(8).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "safe_file.h"
#include "srs.h"
#include "str.h"
#include "userdb.h"

#include "smtpd.h"

#define SMTPD_CONN_DIR	"smtpd-conn"
#define SMTPD_CONN_PATH_MAX	1024

static int smtpd_conn_fd = -1;

/* smtpd_addr_parse - text address into family and bytes; v4-mapped v6 -> v4 */
static bool
smtpd_addr_parse(const char *text, int *family_r, unsigned char addr_r[16])
{
	struct in6_addr a6;

	memset(addr_r, 0, 16);
	if (inet_pton(AF_INET, text, addr_r) == 1) {
		*family_r = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(addr_r, &a6.s6_addr[12], 4);
			*family_r = AF_INET;
		} else {
			memcpy(addr_r, &a6, 16);
			*family_r = AF_INET6;
		}
		return true;
	}
	return false;
}

/* smtpd_net_parse - "192.0.2.0/24", "[2001:db8::]/32", "[::1]", "192.0.2.1" */
bool
smtpd_net_parse(const char *item, struct smtpd_net *net)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(item, '/');
	size_t alen = slash != NULL ? (size_t)(slash - item) : strlen(item);
	unsigned long prefix;
	unsigned max;

	if (alen >= 2 && item[0] == '[' && item[alen - 1] == ']') {
		item++;
		alen -= 2;
	}
	if (alen == 0 || alen >= sizeof(buf))
		return false;
	memcpy(buf, item, alen);
	buf[alen] = '\0';
	if (!smtpd_addr_parse(buf, &net->family, net->addr))
		return false;
	max = net->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		prefix = max;
	else if (!str_to_ulong(slash + 1, strlen(slash + 1), max, &prefix))
		return false;
	net->prefix = (unsigned)prefix;
	return true;
}

/* smtpd_net_match - addr (parsed) inside net? */
static bool
smtpd_net_match(const struct smtpd_net *net, int family, const unsigned char *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;
	unsigned char mask;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

/* smtpd_in_mynetworks - the client address is in $mynetworks */
bool
smtpd_in_mynetworks(const char *addr)
{
	unsigned char a[16];
	int family;
	size_t i;

	if (strcmp(addr, "local") == 0)
		return true;	/* stand-alone on stdin: the local operator */
	if (!smtpd_addr_parse(addr, &family, a))
		return false;
	for (i = 0; i < smtpd_settings.n_mynetworks; i++)
		if (smtpd_net_match(&smtpd_settings.mynetworks[i], family, a))
			return true;
	return false;
}

/* smtpd_local_domain - domain is one of $mydestination (case-insensitive) */
bool
smtpd_local_domain(const char *domain)
{
	size_t i;

	for (i = 0; i < smtpd_settings.n_mydestination; i++)
		if (strcasecmp(smtpd_settings.mydestination[i], domain) == 0)
			return true;
	return false;
}

/* smtpd_check_client - see smtpd.h and DESCRIPTION */
bool
smtpd_check_client(struct smtpd_session *sess)
{
	const char *item;
	size_t i;

	for (i = 0; i < smtpd_settings.n_client_restrictions; i++) {
		item = smtpd_settings.client_restrictions[i];
		if (strcmp(item, "permit") == 0)
			return true;
		if (strcmp(item, "permit_mynetworks") == 0) {
			if (smtpd_in_mynetworks(sess->client.addr))
				return true;
		} else if (strcmp(item, "permit_sasl_authenticated") == 0) {
			if (sess->auth_user != NULL)
				return true;
		} else if (strcmp(item, "reject") == 0) {
			if (smtpd_settings.sasl_enable && sess->auth_user == NULL)
				smtpd_reply(sess, 530, "5.7.0",
				    "Authentication required");
			else
				smtpd_reply(sess, 554, "5.7.1",
				    "<%s>: Client host rejected: Access denied",
				    str_c(sess->client_text));
			return false;
		} else {
			log_error(NULL, "smtpd_client_restrictions: unknown "
			    "item \"%s\"", item);
			smtpd_reply(sess, 451, "4.3.5",
			    "Server configuration error");
			return false;
		}
	}
	return true;
}

/* smtpd_local_user - see smtpd.h */
int
smtpd_local_user(const struct address *addr)
{
	const char *local = str_c(addr->local);
	const char *detail, *err;
	size_t user_len, detail_len, i;
	struct str *key, *val;
	char *user;
	int ret = 0, r;

	(void)address_split_detail(local, str_len(addr->local),
	    smtpd_settings.recipient_delimiter, &user_len, &detail, &detail_len);
	user = xstrndup(local, user_len);
	for (char *p = user; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (strcmp(user, "postmaster") == 0) {
		free(user);
		return 1;
	}
	if ((r = auth_user_exists(user, &err)) != 0) {
		if (r < 0)
			log_error(NULL, "user database lookup of %s: %s", user, err);
		free(user);
		return r;
	}
	key = str_new(0, 0);
	val = str_new(0, 0);
	for (i = 0; i < smtpd_settings.n_alias_maps && ret == 0; i++) {
		str_set_cstr(key, user);
		r = map_lookup(smtpd_settings.alias_maps[i], str_c(key), val, &err);
		if (r == 0 && str_len(addr->domain) > 0) {
			str_printf(key, "@%s", str_c(addr->domain));
			r = map_lookup(smtpd_settings.alias_maps[i], str_c(key), val, &err);
		}
		if (r < 0) {
			log_error(NULL, "%s: lookup of %s: %s",
			    map_spec(smtpd_settings.alias_maps[i]), user, err);
			ret = -1;
		} else if (r > 0)
			ret = 1;
	}
	str_free(&key);
	str_free(&val);
	free(user);
	return ret;
}

#define SMTPD_SRS_SECRET_MAX	4096

static struct srs *smtpd_srs;		/* NULL: SRS off */
static struct userdb *smtpd_userdb;	/* for departmental addresses */

/* smtpd_check_pre_jail - see smtpd.h */
void
smtpd_check_pre_jail(void)
{
	const char *path = config_str(conf(), "srs_secret_file");
	const char *domain = config_str(conf(), "srs_domain");
	long age = config_int(conf(), "srs_max_age");
	struct str *secret;
	char *nl;

	if (!config_bool(conf(), "srs_enable") || *domain == '\0')
		return;
	secret = str_new(64, 0);
	if (read_file(path, secret, SMTPD_SRS_SECRET_MAX) < 0)
		log_fatal(NULL, "srs_enable: cannot read srs_secret_file %s: %m",
		    path);
	if ((nl = memchr(str_data(secret), '\n', str_len(secret))) != NULL)
		str_truncate(secret, (size_t)(nl - str_data(secret)));
	if (str_len(secret) == 0)
		log_fatal(NULL, "srs_enable: %s holds no secret", path);
	smtpd_srs = srs_new(str_data(secret), str_len(secret), domain,
	    age > 0 && age < 1024 ? (unsigned)age : 21);
	explicit_bzero(str_data(secret), str_len(secret));
	str_free(&secret);
	if (smtpd_srs == NULL)
		log_fatal(NULL, "srs_enable: srs_domain \"%s\" is not a plain "
		    "domain name", domain);
}

/* smtpd_department_domain - domain is one of $department_domains */
static bool
smtpd_department_domain(const char *domain)
{
	const char *const *list;
	size_t i, n;

	list = config_list(conf(), "department_domains", &n);
	for (i = 0; i < n; i++)
		if (strcasecmp(list[i], domain) == 0)
			return true;
	return false;
}

/* smtpd_department_user - 1 some user's alias, 0 nobody's, -1 lookup failure */
static int
smtpd_department_user(const struct address *addr)
{
	const char *local = str_c(addr->local), *detail, *error = NULL;
	struct str *key = str_new(128, 0), *user = str_new(64, 0);
	size_t base_len, detail_len;
	int r;

	if (smtpd_userdb == NULL && (smtpd_userdb = userdb_open(config_str(
	    conf(), "user_database"), &error)) == NULL) {
		r = errno == ENOENT ? 0 : -1;	/* no database: no aliases */
		if (r < 0)
			log_error(NULL, "user database: %s", error);
		goto out;
	}
	str_printf(key, "%s@%s", local, str_c(addr->domain));
	r = userdb_lookup_alias(smtpd_userdb, str_c(key), user, &error);
	if (r == 0 && address_split_detail(local, str_len(addr->local),
	    smtpd_settings.recipient_delimiter, &base_len, &detail,
	    &detail_len)) {
		str_clear(key);
		str_append(key, local, base_len);
		str_printf(key, "@%s", str_c(addr->domain));
		r = userdb_lookup_alias(smtpd_userdb, str_c(key), user, &error);
	}
	if (r < 0) {
		log_error(NULL, "departmental address lookup of %s: %s",
		    str_c(key), error != NULL ? error : "error");
		/* reopen next time: the file may have been replaced */
		userdb_close(&smtpd_userdb);
	}
out:
	str_free(&key);
	str_free(&user);
	return r;
}

/*
 * smtpd_check_local_special - departmental and SRS0 addresses (see
 * DESCRIPTION): true when addr is one, with *ok_r the verdict (the
 * reply sent when false)
 */
static bool
smtpd_check_local_special(struct smtpd_session *sess,
    const struct address *addr, const struct str *canon, bool *ok_r)
{
	const char *error = NULL;
	struct str *orig;
	int r;

	if (str_len(addr->domain) == 0)
		return false;
	if (smtpd_srs != NULL && srs_is_ours(smtpd_srs, str_c(canon))) {
		orig = str_new(64, 0);
		r = srs_reverse(smtpd_srs, str_c(canon), time(NULL), orig,
		    &error);
		str_free(&orig);
		*ok_r = r > 0;
		if (r <= 0)
			smtpd_reply(sess, 550, "5.1.1", "<%s>: Recipient address "
			    "rejected: invalid SRS address (%s)", str_c(canon),
			    r < 0 && error != NULL ? error : "not SRS0");
		return true;
	}
	if (!smtpd_department_domain(str_c(addr->domain)))
		return false;
	r = smtpd_department_user(addr);
	*ok_r = r > 0;
	if (r == 0)
		smtpd_reply(sess, 550, "5.1.1", "<%s>: Recipient address "
		    "rejected: unknown departmental address", str_c(canon));
	else if (r < 0)
		smtpd_reply(sess, 451, "4.3.0", "<%s>: Temporary lookup "
		    "failure", str_c(canon));
	return true;
}

/* smtpd_check_rcpt - see smtpd.h and DESCRIPTION */
bool
smtpd_check_rcpt(struct smtpd_session *sess, const struct address *addr)
{
	struct str *canon = str_new(0, 0);
	bool ok = false;
	int r;

	(void)address_canonical(addr, canon);
	if (smtpd_check_local_special(sess, addr, canon, &ok)) {
		/* decided: a departmental or SRS0 address */
	} else if (str_len(addr->domain) == 0 ||
	    smtpd_local_domain(str_c(addr->domain))) {
		if ((r = smtpd_local_user(addr)) > 0)
			ok = true;
		else if (r == 0)
			smtpd_reply(sess, 550, "5.1.1", "<%s>: Recipient address "
			    "rejected: User unknown in local recipient table",
			    str_c(canon));
		else
			smtpd_reply(sess, 451, "4.3.0", "<%s>: Temporary lookup "
			    "failure", str_c(canon));
	} else if (sess->auth_user != NULL ||
	    smtpd_in_mynetworks(sess->client.addr)) {
		ok = true;
	} else {
		smtpd_reply(sess, 554, "5.7.1", "<%s>: Relay access denied",
		    str_c(canon));
	}
	str_free(&canon);
	return ok;
}

/* smtpd_conn_limit - see DESCRIPTION; true = a slot is ours (or no limit) */
bool
smtpd_conn_limit(const char *addr)
{
	static bool warned;
	char dir[SMTPD_CONN_PATH_MAX], path[SMTPD_CONN_PATH_MAX];
	struct flock fl;
	unsigned i;
	const char *p;

	smtpd_conn_release();
	for (p = addr; *p != '\0'; p++)
		if (strchr("0123456789abcdefABCDEF.:", *p) == NULL)
			return true;	/* "local" etc.: not counted */
	if (snprintf(dir, sizeof(dir), "%s/%s", config_str(conf(),
	    "data_directory"), SMTPD_CONN_DIR) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, addr) >= (int)sizeof(path))
		return true;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		if (!warned)
			log_warn(NULL, "mkdir %s: %m (no connection limit)", dir);
		warned = true;
		return true;
	}
	if ((smtpd_conn_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0) {
		if (!warned)
			log_warn(NULL, "open %s: %m (no connection limit)", path);
		warned = true;
		return true;
	}
	for (i = 0; i < smtpd_settings.conn_limit; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)i;
		fl.l_len = 1;
		if (fcntl(smtpd_conn_fd, F_SETLK, &fl) == 0)
			return true;
	}
	smtpd_conn_release();
	return false;
}

/* smtpd_conn_release - give the slot back (after each session) */
void
smtpd_conn_release(void)
{
	if (smtpd_conn_fd >= 0) {
		close(smtpd_conn_fd);
		smtpd_conn_fd = -1;
	}
}

/* smtpd_peer_name - see smtpd.h: reverse lookup, forward-confirmed */
void
smtpd_peer_name(const char *addr, struct str *out)
{
	struct addrinfo hints, *res = NULL, *ai;
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} u;
	socklen_t len;
	char host[NI_MAXHOST], num[INET6_ADDRSTRLEN];
	bool confirmed = false;

	str_set_cstr(out, "unknown");
	if (!smtpd_settings.peername_lookup)
		return;
	memset(&u, 0, sizeof(u));
	if (inet_pton(AF_INET, addr, &u.sin.sin_addr) == 1) {
		u.sin.sin_family = AF_INET;
		len = sizeof(u.sin);
	} else if (inet_pton(AF_INET6, addr, &u.sin6.sin6_addr) == 1) {
		u.sin6.sin6_family = AF_INET6;
		len = sizeof(u.sin6);
	} else
		return;
	if (getnameinfo(&u.sa, len, host, sizeof(host), NULL, 0, NI_NAMEREQD) != 0)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = u.sa.sa_family;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai != NULL && !confirmed; ai = ai->ai_next)
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num),
		    NULL, 0, NI_NUMERICHOST) == 0 && strcmp(num, addr) == 0)
			confirmed = true;
	freeaddrinfo(res);
	/* A name with odd characters is not worth printing. */
	for (const char *p = host; confirmed && *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			confirmed = false;
	if (confirmed)
		str_set_cstr(out, host);
}
