/* SPDX-License-Identifier: MIT */
/*
 * qmgr_resolve - where a recipient goes
 *
 * DESCRIPTION
 *	Expansion first, recursively (at most QMGR_EXPAND_DEPTH levels,
 *	at most QMGR_EXPAND_MAX addresses, duplicates dropped):
 *	  - virtual aliases ($virtual_alias_maps: "user@domain", then
 *	    "@domain"); in a $virtual_alias_domains domain an address
 *	    without an entry bounces (5.1.1);
 *	  - local aliases, for domains in $mydestination ($alias_maps, keyed
 *	    by the local part, then by the part before the
 *	    $recipient_delimiter): a list of addresses; a name without "@"
 *	    is a local user in the same domain; ":include:/file" reads more
 *	    addresses from a file; "|command" and "/file" targets are
 *	    refused unless $allow_mail_to_commands / $allow_mail_to_files
 *	    (and even then: no delivery agent for them exists yet), which
 *	    bounces the alias with the reason; an alias that names itself
 *	    is delivered to the user of that name (no loop);
 *	  - anything else is a final address: a local user must exist in
 *	    the user database (auth_user_exists, without the address
 *	    extension), or the recipient bounces (5.1.1 unknown user).
 *
 *	Departmental addresses: in a $department_domains domain,
 *	"alias@dept" is looked up in the user database's reverse index
 *	(userdb_lookup_alias: one btree get), then without the address
 *	extension; a hit is the owner's own address (user@ the first
 *	$mydestination) and is expanded further; a miss bounces 5.1.1.
 *
 *	Forwarding: a local user whose record has a forwarding address
 *	(postern forward set) expands to that address (expanded further,
 *	so chains work and loops end at the depth limit), plus the user's
 *	own address when keep-a-copy is set.
 *
 *	SRS: with $srs_enable, an SRS0 address at $srs_domain is reversed
 *	first (a bounce to forwarded mail finds the original sender); a
 *	bad hash or an expired address bounces (5.1.1 / 5.7.1). When an
 *	expansion (alias, virtual alias, forwarding) yields addresses
 *	outside our domains and the sender is neither null nor in our
 *	domains, the remote addresses are re-injected as a message of
 *	their own whose envelope sender is the SRS0 form of the original
 *	(so SPF at the destination checks our domain); local ones keep
 *	the original sender.
 *
 *	Then routing of the final addresses: local ones go to
 *	$local_transport ("lmtp:unix:/path", "lmtp:inet:host:port");
 *	others to $transport_maps (by address, then domain), else to
 *	$relayhost over smtp, else to $default_transport. A transport
 *	without a next hop for remote mail means "no outbound SMTP yet":
 *	the recipient is deferred with a clear reason. The transport
 *	"error" bounces with its next hop as the reason (Postfix error(8)).
 *
 *	One final address is delivered in place, under the original
 *	recipient's index and delivery token. Several are re-injected
 *	through cleanup as one new message (marked postern_expanded=yes so
 *	that its recipients are only routed, not expanded again), and the
 *	original recipient is then done ("expanded"). XXX a crash between
 *	that injection and the status update expands the alias again
 *	(Postfix local(8) has the same window).
 *
 * SEE ALSO
 *	aliases(5) in Postfix, qmgr(8)
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "auth.h"
#include "log.h"
#include "map.h"
#include "config.h"
#include "safe_file.h"
#include "srs.h"
#include "userdb.h"

#include "qmgr.h"

#define QMGR_EXPAND_DEPTH	10
#define QMGR_EXPAND_MAX		1000
#define QMGR_INCLUDE_MAX	(1024 * 1024)

enum qmgr_xstatus { QX_OK, QX_DEFER, QX_BOUNCE };

struct qmgr_expansion {
	char **addrs;			/* final addresses */
	size_t n, cap;
	enum qmgr_xstatus status;	/* worst problem seen */
	struct str *reason;		/* of the first problem of that kind */
	bool changed;			/* anything was rewritten */
};

#define QMGR_SRS_SECRET_MAX	4096

static struct str *qmgr_srs_secret;	/* read before the jail */
static struct userdb *qmgr_userdb;

/* qmgr_resolve_pre_jail - see qmgr.h */
void
qmgr_resolve_pre_jail(void)
{
	const char *path = config_str(conf(), "srs_secret_file");
	char *nl;

	if (!config_bool(conf(), "srs_enable"))
		return;
	qmgr_srs_secret = str_new(64, 0);
	if (read_file(path, qmgr_srs_secret, QMGR_SRS_SECRET_MAX) < 0)
		log_fatal(NULL, "srs_enable: cannot read srs_secret_file %s: %m",
		    path);
	if ((nl = memchr(str_data(qmgr_srs_secret), '\n',
	    str_len(qmgr_srs_secret))) != NULL)
		str_truncate(qmgr_srs_secret,
		    (size_t)(nl - str_data(qmgr_srs_secret)));
	if (str_len(qmgr_srs_secret) == 0)
		log_fatal(NULL, "srs_enable: %s holds no secret", path);
}

/* qmgr_resolve_init - see qmgr.h */
void
qmgr_resolve_init(void)
{
	const char *domain = config_str(conf(), "srs_domain");
	long age = config_int(conf(), "srs_max_age");

	if (qmgr_srs_secret == NULL)
		return;
	qmgr_settings.srs = srs_new(str_data(qmgr_srs_secret),
	    str_len(qmgr_srs_secret), domain, age > 0 && age < 1024 ?
	    (unsigned)age : 21);
	explicit_bzero(str_data(qmgr_srs_secret), str_len(qmgr_srs_secret));
	str_free(&qmgr_srs_secret);
	if (qmgr_settings.srs == NULL)
		log_fatal(NULL, "srs_enable: srs_domain \"%s\" is not a plain "
		    "domain name", domain);
	log_info(NULL, "SRS on: forwarded mail gets SRS0 senders at %s",
	    domain);
}

/* qmgr_userdb_get - the user database, opened on first use */
static struct userdb *
qmgr_userdb_get(const char **error_r)
{
	if (qmgr_userdb == NULL)
		qmgr_userdb = userdb_open(qmgr_settings.user_database, error_r);
	return qmgr_userdb;
}

void
qmgr_route_clear(struct qmgr_route *route)
{
	free(route->transport);
	free(route->nexthop);
	free(route->address);
	str_free(&route->reason);
	memset(route, 0, sizeof(*route));
}

/* qmgr_x_problem - note a problem; defer beats bounce (retry may fix it) */
static void
qmgr_x_problem(struct qmgr_expansion *x, enum qmgr_xstatus st,
    const char *dsn, const char *fmt, ...) PRINTF_LIKE(4, 5);

static void
qmgr_x_problem(struct qmgr_expansion *x, enum qmgr_xstatus st,
    const char *dsn, const char *fmt, ...)
{
	va_list ap;

	if (x->status == QX_DEFER || (x->status == QX_BOUNCE &&
	    st == QX_BOUNCE))
		return;
	x->status = st;
	str_clear(x->reason);
	str_printf(x->reason, "%s ", dsn);
	va_start(ap, fmt);
	str_vprintf(x->reason, fmt, ap);
	va_end(ap);
}

/* qmgr_x_add - a final address (duplicates dropped) */
static void
qmgr_x_add(struct qmgr_expansion *x, const char *addr)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (strcasecmp(x->addrs[i], addr) == 0)
			return;
	if (x->n >= QMGR_EXPAND_MAX) {
		qmgr_x_problem(x, QX_BOUNCE, "5.3.0", "alias expansion gives "
		    "more than %d addresses", QMGR_EXPAND_MAX);
		return;
	}
	if (x->n == x->cap) {
		x->cap = x->cap == 0 ? 4 : 2 * x->cap;
		x->addrs = xreallocarray(x->addrs, x->cap, sizeof(*x->addrs));
	}
	x->addrs[x->n++] = xstrdup(addr);
}

/* qmgr_split_addr - local part and lower-case domain of a canonical address */
static void
qmgr_split_addr(const char *addr, struct str *local, struct str *domain)
{
	const char *at = strrchr(addr, '@');

	str_clear(local);
	str_clear(domain);
	if (at == NULL) {
		str_set_cstr(local, addr);
		return;
	}
	str_set(local, addr, (size_t)(at - addr));
	str_set_cstr(domain, at + 1);
	address_domain_lower(str_data(domain), str_len(domain));
}

/* qmgr_is_local_domain - in $mydestination? ("" = no domain: local) */
static bool
qmgr_is_local_domain(const char *domain)
{
	size_t i;

	if (*domain == '\0')
		return true;
	for (i = 0; i < qmgr_settings.nmydestination; i++)
		if (strcasecmp(qmgr_settings.mydestination[i], domain) == 0)
			return true;
	return false;
}

static bool
qmgr_is_virtual_domain(const char *domain)
{
	size_t i;

	for (i = 0; i < qmgr_settings.nvirtual_domains; i++)
		if (strcasecmp(qmgr_settings.virtual_domains[i], domain) == 0)
			return true;
	return false;
}

/* qmgr_maps_lookup - first hit in a list of maps: 1, 0 none, -1 error */
static int
qmgr_maps_lookup(struct map **maps, const char *const *specs, size_t n,
    const char *key, struct str *value, struct qmgr_expansion *x)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *error = NULL;
		int r;

		if (maps[i] == NULL &&
		    (maps[i] = map_open(specs[i], 0, &error)) == NULL) {
			if (x != NULL)
				qmgr_x_problem(x, QX_DEFER, "4.3.0", "table %s "
				    "is not available: %s", specs[i], error);
			return -1;
		}
		r = map_lookup(maps[i], key, value, &error);
		if (r != 0) {
			if (r < 0 && x != NULL)
				qmgr_x_problem(x, QX_DEFER, "4.3.0", "lookup "
				    "in %s failed: %s", map_spec(maps[i]),
				    error);
			return r;
		}
	}
	return 0;
}

static void qmgr_expand(struct qmgr_expansion *x, const char *addr,
    int depth);

static bool
qmgr_is_department_domain(const char *domain)
{
	size_t i;

	for (i = 0; i < qmgr_settings.ndepartment_domains; i++)
		if (strcasecmp(qmgr_settings.department_domains[i],
		    domain) == 0)
			return true;
	return false;
}

/*
 * qmgr_expand_department - alias@dept through the reverse index (with,
 * then without the address extension) to the owner's own address
 */
static void
qmgr_expand_department(struct qmgr_expansion *x, const char *addr,
    const char *local, const char *domain, int depth)
{
	struct str *user = str_new(64, 0), *key = str_new(128, 0);
	struct userdb *db;
	const char *error = NULL, *detail;
	size_t base_len, detail_len;
	int r = -1;

	if ((db = qmgr_userdb_get(&error)) == NULL) {
		if (errno == ENOENT)
			r = 0;	/* no user database: nobody has an alias */
	} else {
		str_printf(key, "%s@%s", local, domain);
		r = userdb_lookup_alias(db, str_c(key), user, &error);
		if (r == 0 && address_split_detail(local, strlen(local),
		    qmgr_settings.recipient_delimiter, &base_len, &detail,
		    &detail_len)) {
			str_clear(key);
			str_append(key, local, base_len);
			str_printf(key, "@%s", domain);
			r = userdb_lookup_alias(db, str_c(key), user, &error);
		}
	}
	if (r < 0) {
		qmgr_x_problem(x, QX_DEFER, "4.3.0", "departmental address "
		    "lookup failed: %s", error != NULL ? error : "error");
	} else if (r == 0) {
		qmgr_x_problem(x, QX_BOUNCE, "5.1.1", "<%s>: unknown "
		    "departmental address", addr);
	} else {
		x->changed = true;
		str_clear(key);
		str_printf(key, "%s@%s", str_c(user),
		    qmgr_settings.nmydestination > 0 ?
		    qmgr_settings.mydestination[0] : "localhost");
		qmgr_expand(x, str_c(key), depth + 1);
	}
	str_free(&key);
	str_free(&user);
}

/*
 * qmgr_expand_user - a local user that exists: its own address, or
 * its forwarding address (plus its own with keep-a-copy)
 */
static void
qmgr_expand_user(struct qmgr_expansion *x, const char *addr,
    const char *user, int depth)
{
	struct userdb_user u;
	struct userdb *db;
	const char *error = NULL;
	int r;

	if ((db = qmgr_userdb_get(&error)) == NULL) {
		/* auth found the user, so the database exists: transient */
		qmgr_x_problem(x, QX_DEFER, "4.3.0", "user database: %s",
		    error != NULL ? error : "cannot open");
		return;
	}
	r = userdb_lookup(db, user, &u, &error);
	if (r < 0) {
		qmgr_x_problem(x, QX_DEFER, "4.3.0", "user database lookup "
		    "failed: %s", error != NULL ? error : "error");
		return;
	}
	if (r == 0 || u.forward == NULL) {
		qmgr_x_add(x, addr);
	} else {
		x->changed = true;
		if (u.forward_keep || strcasecmp(u.forward, addr) == 0)
			qmgr_x_add(x, addr);
		if (strcasecmp(u.forward, addr) != 0)
			qmgr_expand(x, u.forward, depth + 1);
	}
	userdb_user_clear(&u);
}

/*
 * qmgr_expand_items - the items of an alias value (or :include: file):
 * separated by commas and/or white space and newlines; "#" lines are
 * comments (in files)
 */
static void
qmgr_expand_items(struct qmgr_expansion *x, const char *value, size_t len,
    const char *self_local, const char *self_domain, int depth)
{
	const char *p = value, *end = value + len;
	struct str *item = str_new(64, 0), *addr = str_new(64, 0);

	while (p < end) {
		const char *start;

		while (p < end && (*p == ',' || isspace((unsigned char)*p)))
			p++;
		if (p < end && *p == '#') {
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		start = p;
		if (p < end && *p == '"') {
			/* a quoted item: "|command with spaces" */
			p++;
			while (p < end && *p != '"')
				p++;
			str_set(item, start + 1, (size_t)(p - start - 1));
			if (p < end)
				p++;
		} else {
			while (p < end && *p != ',' && *p != '\n' &&
			    !(isspace((unsigned char)*p) && *start != '|'))
				p++;
			str_set(item, start, (size_t)(p - start));
		}
		if (str_len(item) == 0)
			continue;
		if (str_c(item)[0] == '|') {
			qmgr_x_problem(x, QX_BOUNCE, "5.7.1", "mail to command "
			    "\"%s\" is not allowed (allow_mail_to_commands = "
			    "%s%s)", str_c(item), qmgr_settings.allow_commands ?
			    "yes, but there is no pipe delivery agent" : "no",
			    "");
			continue;
		}
		if (str_c(item)[0] == '/') {
			qmgr_x_problem(x, QX_BOUNCE, "5.7.1", "mail to file "
			    "\"%s\" is not allowed (allow_mail_to_files = "
			    "%s)", str_c(item), qmgr_settings.allow_files ?
			    "yes, but there is no file delivery agent" : "no");
			continue;
		}
		if (strncasecmp(str_c(item), ":include:", 9) == 0) {
			struct str *data = str_new(1024, 0);
			const char *path = str_c(item) + 9;

			if (*path != '/' || read_file(path, data,
			    QMGR_INCLUDE_MAX) < 0) {
				if (errno == ENOENT || errno == EACCES ||
				    *path != '/')
					qmgr_x_problem(x, QX_BOUNCE, "5.3.0",
					    "cannot read include file %s: %s",
					    path, *path != '/' ?
					    "not an absolute path" :
					    strerror(errno));
				else
					qmgr_x_problem(x, QX_DEFER, "4.3.0",
					    "cannot read include file %s: %s",
					    path, strerror(errno));
			} else {
				x->changed = true;
				qmgr_expand_items(x, str_c(data), str_len(data),
				    self_local, self_domain, depth + 1);
			}
			str_free(&data);
			continue;
		}
		str_clear(addr);
		if (strchr(str_c(item), '@') == NULL)
			str_printf(addr, "%s@%s", str_c(item), self_domain);
		else
			str_append_str(addr, item);
		/* an alias naming itself: the user of that name, no loop */
		{
			struct str *l = str_new(64, 0), *d = str_new(64, 0);

			qmgr_split_addr(str_c(addr), l, d);
			if (strcasecmp(str_c(l), self_local) == 0 &&
			    strcasecmp(str_c(d), self_domain) == 0) {
				int r = 0;
				const char *error = NULL;

				r = auth_user_exists(str_c(l), &error);
				if (r > 0)
					qmgr_x_add(x, str_c(addr));
				else if (r == 0)
					qmgr_x_problem(x, QX_BOUNCE, "5.1.1",
					    "<%s>: unknown user", str_c(addr));
				else
					qmgr_x_problem(x, QX_DEFER, "4.3.0",
					    "user database lookup failed: %s",
					    error);
				str_free(&l);
				str_free(&d);
				continue;
			}
			str_free(&l);
			str_free(&d);
		}
		qmgr_expand(x, str_c(addr), depth + 1);
	}
	str_free(&addr);
	str_free(&item);
}

/* qmgr_expand - expand addr recursively into x */
static void
qmgr_expand(struct qmgr_expansion *x, const char *addr, int depth)
{
	struct str *local = str_new(64, 0), *domain = str_new(64, 0);
	struct str *value = str_new(256, 0), *key = str_new(64, 0);
	const char *error = NULL;
	size_t base_len;
	const char *detail;
	size_t detail_len;
	int r;

	if (depth > QMGR_EXPAND_DEPTH) {
		qmgr_x_problem(x, QX_BOUNCE, "5.4.6", "alias expansion loop "
		    "or nesting deeper than %d levels at <%s>",
		    QMGR_EXPAND_DEPTH, addr);
		goto out;
	}
	qmgr_split_addr(addr, local, domain);

	/* a bounce to an SRS0 address of ours: back to the original sender */
	if (qmgr_settings.srs != NULL && srs_is_ours(qmgr_settings.srs, addr)) {
		r = srs_reverse(qmgr_settings.srs, addr, qmgr_now(), value,
		    &error);
		if (r < 0) {
			qmgr_x_problem(x, QX_BOUNCE, "5.1.1", "<%s>: %s", addr,
			    error);
			goto out;
		}
		x->changed = true;
		qmgr_expand(x, str_c(value), depth + 1);
		goto out;
	}
	if (qmgr_settings.nvirtual_maps > 0 && str_len(domain) > 0) {
		str_clear(key);
		str_printf(key, "%s@%s", str_c(local), str_c(domain));
		r = qmgr_maps_lookup(qmgr_settings.virtual_maps,
			    qmgr_settings.virtual_specs,
		    qmgr_settings.nvirtual_maps, str_c(key), value, x);
		if (r == 0) {
			str_clear(key);
			str_printf(key, "@%s", str_c(domain));
			r = qmgr_maps_lookup(qmgr_settings.virtual_maps,
			    qmgr_settings.virtual_specs,
			    qmgr_settings.nvirtual_maps, str_c(key), value, x);
		}
		if (r < 0)
			goto out;
		if (r > 0) {
			x->changed = true;
			qmgr_expand_items(x, str_c(value), str_len(value),
			    str_c(local), str_c(domain), depth);
			goto out;
		}
	}
	if (str_len(domain) > 0 && qmgr_is_department_domain(str_c(domain))) {
		qmgr_expand_department(x, addr, str_c(local), str_c(domain),
		    depth);
		goto out;
	}
	if (str_len(domain) > 0 && qmgr_is_virtual_domain(str_c(domain))) {
		qmgr_x_problem(x, QX_BOUNCE, "5.1.1", "<%s>: unknown user in "
		    "virtual alias table", addr);
		goto out;
	}
	if (!qmgr_is_local_domain(str_c(domain))) {
		qmgr_x_add(x, addr);
		goto out;
	}

	/* local: aliases by local part, then without the extension */
	if (!address_split_detail(str_c(local), str_len(local),
	    qmgr_settings.recipient_delimiter, &base_len, &detail,
	    &detail_len))
		base_len = str_len(local);
	if (str_len(domain) == 0)
		str_set_cstr(domain, qmgr_settings.nmydestination > 0 ?
		    qmgr_settings.mydestination[0] : "localhost");
	if (qmgr_settings.nalias_maps > 0) {
		str_set(key, str_c(local), str_len(local));
		r = qmgr_maps_lookup(qmgr_settings.alias_maps,
			    qmgr_settings.alias_specs,
		    qmgr_settings.nalias_maps, str_c(key), value, x);
		if (r == 0 && base_len < str_len(local)) {
			str_set(key, str_c(local), base_len);
			r = qmgr_maps_lookup(qmgr_settings.alias_maps,
			    qmgr_settings.alias_specs,
			    qmgr_settings.nalias_maps, str_c(key), value, x);
		}
		if (r < 0)
			goto out;
		if (r > 0) {
			x->changed = true;
			qmgr_expand_items(x, str_c(value), str_len(value),
			    str_c(key), str_c(domain), depth);
			goto out;
		}
	}
	str_set(key, str_c(local), base_len);
	r = auth_user_exists(str_c(key), &error);
	if (r > 0)
		qmgr_expand_user(x, addr, str_c(key), depth);
	else if (r == 0)
		qmgr_x_problem(x, QX_BOUNCE, "5.1.1", "<%s>: unknown user",
		    addr);
	else
		qmgr_x_problem(x, QX_DEFER, "4.3.0", "user database lookup "
		    "failed: %s", error != NULL ? error : "error");
out:
	str_free(&key);
	str_free(&value);
	str_free(&domain);
	str_free(&local);
}

/* qmgr_split_transport - "transport:nexthop" (either may be "") */
static void
qmgr_split_transport(const char *spec, char **transport_r, char **nexthop_r)
{
	const char *colon = strchr(spec, ':');

	if (colon == NULL) {
		*transport_r = xstrdup(spec);
		*nexthop_r = xstrdup("");
	} else {
		*transport_r = xstrndup(spec, (size_t)(colon - spec));
		*nexthop_r = xstrdup(colon + 1);
	}
}

/*
 * qmgr_transport_lookup - transport(5) search order: the full address
 * (with, then without the address extension), the domain, each parent
 * domain as ".parent", then "*". 1 with the value, 0 none, -1 error.
 */
static int
qmgr_transport_lookup(const char *local, const char *domain,
    struct str *value)
{
	struct str *key = str_new(128, 0);
	const char *detail, *p;
	size_t base_len, detail_len;
	int r;

#define QMGR_TLOOKUP(k) qmgr_maps_lookup(qmgr_settings.transport_maps, \
	    qmgr_settings.transport_specs, qmgr_settings.ntransport_maps, \
	    (k), value, NULL)
	str_printf(key, "%s@%s", local, domain);
	if ((r = QMGR_TLOOKUP(str_c(key))) != 0)
		goto out;
	if (address_split_detail(local, strlen(local),
	    qmgr_settings.recipient_delimiter, &base_len, &detail,
	    &detail_len)) {
		str_clear(key);
		str_append(key, local, base_len);
		str_printf(key, "@%s", domain);
		if ((r = QMGR_TLOOKUP(str_c(key))) != 0)
			goto out;
	}
	if (*domain != '\0') {
		if ((r = QMGR_TLOOKUP(domain)) != 0)
			goto out;
		for (p = strchr(domain, '.'); p != NULL;
		    p = strchr(p + 1, '.'))
			if (p[1] != '\0' && (r = QMGR_TLOOKUP(p)) != 0)
				goto out;
	}
	r = QMGR_TLOOKUP("*");
#undef QMGR_TLOOKUP
out:
	str_free(&key);
	return r;
}

/* qmgr_transport_name_ok - a transport names a socket private/NAME */
static bool
qmgr_transport_name_ok(const char *name)
{
	const char *p;

	if (*name == '\0' || strlen(name) > 64)
		return false;
	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			return false;
	return name[0] != '.';
}

/*
 * qmgr_route_final - route one final address
 *
 * The class default first: local domains go to $local_transport;
 * others to $default_transport, whose next hop is its own, else
 * $relayhost, else the recipient domain (MX lookup by the smtp agent).
 * Then $transport_maps overrides it as transport(5) says: "t:nexthop"
 * both; "t:" (or "t") transport t to the recipient domain; ":nexthop"
 * the class's transport to nexthop; ":" no change.
 */
static void
qmgr_route_final(const char *addr, struct qmgr_route *route)
{
	struct str *local = str_new(64, 0), *domain = str_new(64, 0);
	struct str *value = str_new(128, 0);
	char *t = NULL, *nh = NULL;
	bool is_local;
	int r = 0;

	route->kind = QMGR_ROUTE_DELIVER;
	route->address = xstrdup(addr);
	route->reason = str_new(64, 0);
	qmgr_split_addr(addr, local, domain);
	is_local = qmgr_is_local_domain(str_c(domain));
	if (is_local) {
		qmgr_split_transport(qmgr_settings.local_transport,
		    &route->transport, &route->nexthop);
	} else {
		qmgr_split_transport(qmgr_settings.default_transport,
		    &route->transport, &route->nexthop);
		if (route->nexthop[0] == '\0' &&
		    qmgr_settings.relayhost[0] != '\0') {
			free(route->nexthop);
			route->nexthop = xstrdup(qmgr_settings.relayhost);
		}
		if (route->nexthop[0] == '\0') {
			free(route->nexthop);
			route->nexthop = xstrdup(str_c(domain));
		}
	}
	if (qmgr_settings.ntransport_maps > 0)
		r = qmgr_transport_lookup(str_c(local), str_c(domain), value);
	if (r < 0) {
		route->kind = QMGR_ROUTE_DEFER;
		str_printf(route->reason, "4.3.0 transport table lookup "
		    "failed for <%s>", addr);
		goto out;
	}
	if (r > 0) {
		qmgr_split_transport(str_c(value), &t, &nh);
		if (t[0] != '\0') {
			free(route->transport);
			route->transport = t;
			t = NULL;
			if (nh[0] == '\0') {
				free(route->nexthop);
				route->nexthop = xstrdup(str_c(domain));
			}
		}
		if (nh[0] != '\0') {
			free(route->nexthop);
			route->nexthop = nh;
			nh = NULL;
		}
	}
	if (strcmp(route->transport, "error") == 0) {
		route->kind = QMGR_ROUTE_BOUNCE;
		str_printf(route->reason, "5.0.0 %s", route->nexthop[0] != '\0' ?
		    route->nexthop : "mail for this destination is refused");
	} else if (!qmgr_transport_name_ok(route->transport)) {
		route->kind = QMGR_ROUTE_DEFER;
		str_printf(route->reason, "4.3.5 bad transport name \"%s\" "
		    "for <%s>", route->transport, addr);
	} else if (route->nexthop[0] == '\0') {
		route->kind = QMGR_ROUTE_DEFER;
		if (is_local)
			str_printf(route->reason, "4.3.5 local_transport \"%s\" "
			    "has no next hop", qmgr_settings.local_transport);
		else
			str_printf(route->reason, "4.3.5 no next hop for <%s>",
			    addr);
	}
out:
	free(t);
	free(nh);
	str_free(&value);
	str_free(&domain);
	str_free(&local);
}

/* qmgr_attr - an envelope attribute's value, or NULL */
static const char *
qmgr_attr(const struct queue_envelope *env, const char *name)
{
	size_t i;

	for (i = 0; i < env->nattrs; i++)
		if (strcmp(env->attrs[i].name, name) == 0)
			return env->attrs[i].value;
	return NULL;
}

/*
 * qmgr_reinject - addrs as a new message (marked expanded), with the
 * original envelope, or with sender instead of its sender when not NULL
 */
static int
qmgr_reinject(struct qmgr_message *msg, const struct queue_rcpt *qr,
    char *const *addrs, size_t naddrs, const char *sender,
    char id_r[QUEUE_ID_SIZE], struct str *why)
{
	const struct queue_envelope *orig = queue_file_envelope(msg->qf);
	struct queue_envelope env = *orig;
	struct queue_attr *attrs;
	struct queue_rcpt *rcpts;
	size_t i, n = 0;
	int rc;

	attrs = xcalloc(orig->nattrs + 1, sizeof(*attrs));
	for (i = 0; i < orig->nattrs; i++)
		if (strcmp(orig->attrs[i].name, QMGR_ATTR_EXPANDED) != 0)
			attrs[n++] = orig->attrs[i];
	attrs[n].name = QMGR_ATTR_EXPANDED;
	attrs[n].value = "yes";
	env.attrs = attrs;
	env.nattrs = n + 1;
	if (sender != NULL)
		env.sender = sender;
	rcpts = xcalloc(naddrs, sizeof(*rcpts));
	for (i = 0; i < naddrs; i++) {
		rcpts[i].address = addrs[i];
		rcpts[i].orcpt_type = qr->orcpt_type;
		rcpts[i].orcpt = qr->orcpt;
		rcpts[i].notify = qr->notify;
		rcpts[i].original = qr->original != NULL ? qr->original :
		    qr->address;
	}
	rc = qmgr_inject(0, &env, rcpts, naddrs, msg->qf, NULL, id_r, why);
	free(rcpts);
	free(attrs);
	return rc;
}

/* qmgr_addr_is_ours - is the domain of addr one that this system serves */
static bool
qmgr_addr_is_ours(const char *addr)
{
	const char *at = strrchr(addr, '@');
	const char *domain = at != NULL ? at + 1 : "";

	return qmgr_is_local_domain(domain) ||
	    qmgr_is_virtual_domain(domain) ||
	    qmgr_is_department_domain(domain) ||
	    (qmgr_settings.srs != NULL &&
	    strcasecmp(domain, srs_domain(qmgr_settings.srs)) == 0);
}

/*
 * qmgr_srs_split - when x needs SRS (see DESCRIPTION): the SRS sender
 * in srs_sender, and x's addresses sorted local first, remote from
 * *nlocal_r on. false when no SRS is needed.
 */
static bool
qmgr_srs_split(const struct queue_envelope *env, struct qmgr_expansion *x,
    struct str *srs_sender, size_t *nlocal_r)
{
	const char *error = NULL;
	size_t i, nlocal = 0;

	if (qmgr_settings.srs == NULL || !x->changed || x->n == 0 ||
	    env->sender[0] == '\0' || qmgr_addr_is_ours(env->sender))
		return false;
	for (i = 0; i < x->n; i++)
		if (qmgr_addr_is_ours(x->addrs[i])) {
			char *t = x->addrs[nlocal];

			x->addrs[nlocal++] = x->addrs[i];
			x->addrs[i] = t;
		}
	if (nlocal == x->n)
		return false;
	if (srs_forward(qmgr_settings.srs, env->sender, qmgr_now(),
	    srs_sender, &error) < 0)
		return false;	/* a sender SRS cannot encode: keep it */
	*nlocal_r = nlocal;
	return true;
}

/* qmgr_resolve - see qmgr.h */
void
qmgr_resolve(struct qmgr_message *msg, const struct queue_rcpt *qr,
    struct qmgr_route *route)
{
	const struct queue_envelope *env = queue_file_envelope(msg->qf);
	struct qmgr_expansion x;
	const char *expanded = qmgr_attr(env, QMGR_ATTR_EXPANDED);
	struct str *srs_sender = NULL;
	size_t i, nlocal = 0;

	memset(&x, 0, sizeof(x));
	x.reason = str_new(128, 0);
	memset(route, 0, sizeof(*route));
	if (expanded != NULL && strcmp(expanded, "yes") == 0) {
		/* made by an expansion: route only (users must exist) */
		struct str *l = str_new(64, 0), *d = str_new(64, 0);

		qmgr_split_addr(qr->address, l, d);
		if (qmgr_is_local_domain(str_c(d))) {
			size_t base_len;
			const char *detail, *error = NULL;
			size_t detail_len;
			int r;

			if (!address_split_detail(str_c(l), str_len(l),
			    qmgr_settings.recipient_delimiter, &base_len,
			    &detail, &detail_len))
				base_len = str_len(l);
			str_truncate(l, base_len);
			r = auth_user_exists(str_c(l), &error);
			if (r == 0)
				qmgr_x_problem(&x, QX_BOUNCE, "5.1.1",
				    "<%s>: unknown user", qr->address);
			else if (r < 0)
				qmgr_x_problem(&x, QX_DEFER, "4.3.0",
				    "user database lookup failed: %s", error);
		}
		str_free(&l);
		str_free(&d);
		if (x.status == QX_OK)
			qmgr_x_add(&x, qr->address);
	} else {
		qmgr_expand(&x, qr->address, 0);
	}

	if (x.status == QX_DEFER || (x.status == QX_BOUNCE && x.n == 0)) {
		route->kind = x.status == QX_DEFER ? QMGR_ROUTE_DEFER :
		    QMGR_ROUTE_BOUNCE;
		route->reason = x.reason;
		x.reason = NULL;
	} else if (x.n == 0) {
		route->kind = QMGR_ROUTE_BOUNCE;
		route->reason = str_new(64, 0);
		str_printf(route->reason, "5.1.1 <%s>: alias expands to no "
		    "address", qr->address);
	} else if (x.status == QX_OK && (srs_sender = str_new(128, 0)) != NULL &&
	    qmgr_srs_split(env, &x, srs_sender, &nlocal)) {
		char id[QUEUE_ID_SIZE], id2[QUEUE_ID_SIZE];
		struct str *why = str_new(64, 0);

		route->reason = str_new(128, 0);
		id[0] = '\0';
		if ((nlocal > 0 && qmgr_reinject(msg, qr, x.addrs, nlocal, NULL,
		    id, why) < 0) || qmgr_reinject(msg, qr, x.addrs + nlocal,
		    x.n - nlocal, str_c(srs_sender), id2, why) < 0) {
			route->kind = QMGR_ROUTE_DEFER;
			str_printf(route->reason, "4.3.0 cannot queue the "
			    "forwarded copy: %s", str_c(why));
		} else {
			route->kind = QMGR_ROUTE_DONE;
			log_info(&msg->log, "<%s>: forwarded to %zu remote "
			    "recipients with SRS sender <%s>, queued as %s%s%s",
			    qr->address, x.n - nlocal, str_c(srs_sender), id2,
			    nlocal > 0 ? "; local copies queued as " : "", id);
			str_printf(route->reason, "2.0.0 forwarded (queued as "
			    "%s%s%s)", id2, nlocal > 0 ? ", " : "", id);
		}
		str_free(&why);
	} else if (x.n == 1 && x.status == QX_OK) {
		qmgr_route_final(x.addrs[0], route);
	} else {
		char id[QUEUE_ID_SIZE];
		struct str *why = str_new(64, 0);

		route->reason = str_new(128, 0);
		if (qmgr_reinject(msg, qr, x.addrs, x.n, NULL, id, why) < 0) {
			route->kind = QMGR_ROUTE_DEFER;
			str_printf(route->reason, "4.3.0 cannot queue the alias "
			    "expansion: %s", str_c(why));
		} else if (x.status == QX_BOUNCE) {
			route->kind = QMGR_ROUTE_BOUNCE;
			log_info(&msg->log, "<%s>: expanded to %zu recipients, "
			    "queued as %s", qr->address, x.n, id);
			str_append_str(route->reason, x.reason);
			str_printf(route->reason, " (the other %zu addresses "
			    "of the alias were queued as %s)", x.n, id);
		} else {
			route->kind = QMGR_ROUTE_DONE;
			str_printf(route->reason, "2.0.0 alias expanded to %zu "
			    "recipients (queued as %s)", x.n, id);
		}
		str_free(&why);
	}
	for (i = 0; i < x.n; i++)
		free(x.addrs[i]);
	free(x.addrs);
	str_free(&x.reason);
	str_free(&srs_sender);
}
