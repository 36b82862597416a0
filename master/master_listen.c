/* SPDX-License-Identifier: MIT */
/*
 * master_listen - planning and binding the listeners of a service
 *
 * DESCRIPTION
 *	A listener is planned first (addresses resolved, paths built, no
 *	fd), so that a reload can be checked completely before anything
 *	changes, and so that a new listener can take over the bound fd of
 *	an old one with the same endpoint instead of binding again.
 *
 *	inet: a service with a host listens on every address the host
 *	resolves to; without one, on every address of $inet_interfaces
 *	("all" = 0.0.0.0 and ::, "loopback-only" = 127.0.0.1 and ::1, other
 *	items resolved with getaddrinfo), limited to $inet_protocols. IPv6
 *	sockets are IPV6_V6ONLY so that :: and 0.0.0.0 coexist. An implicit
 *	IPv6 address that this host cannot bind (no IPv6: EAFNOSUPPORT or
 *	EADDRNOTAVAIL) is skipped with a warning by the caller.
 *	unix: $queue_directory/private/NAME (mode 0600, directory 0700) or
 *	public/NAME (0666, directory 0711). fifo: the same paths, modes 0600
 *	and 0622, opened read-write and non-blocking so that master never
 *	sees end-of-file. A stale socket or fifo is replaced; anything else
 *	at the path is an error.
 *
 *	All fds are non-blocking and close-on-exec; the spawner moves them
 *	to fixed numbers in the child.
 *
 * SECURITY
 *	Runs as root. private/ and public/ belong to $mail_owner, so paths in
 *	them are never chmod'ed or followed: socket modes come from the
 *	umask at bind time, fifos are created with their mode and opened
 *	O_NOFOLLOW, and owners are set with lchown/fchown.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "privsep.h"
#include "safe_file.h"

#include "master.h"

#define MASTER_LISTEN_BACKLOG 128

/* master_listen_desc - "1.2.3.4:25" or "[::1]:25" */
static char *
master_listen_desc(const struct sockaddr_storage *ss, socklen_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return xstrdup("?");
	if (ss->ss_family == AF_INET6)
		return xasprintf("[%s]:%s", host, serv);
	return xasprintf("%s:%s", host, serv);
}

/* master_listen_add_inet - append one address unless it is there already */
static void
master_listen_add_inet(struct master_listener **list, size_t *count,
    const struct sockaddr *sa, socklen_t len, bool implicit)
{
	struct master_listener *l;
	size_t i;

	for (i = 0; i < *count; i++) {
		if ((*list)[i].addrlen == len &&
		    memcmp(&(*list)[i].addr, sa, len) == 0)
			return;
	}
	*list = xreallocarray(*list, *count + 1, sizeof(**list));
	l = &(*list)[(*count)++];
	memset(l, 0, sizeof(*l));
	l->kind = MASTER_SERVICE_INET;
	memcpy(&l->addr, sa, len);
	l->addrlen = len;
	l->implicit = implicit;
	l->desc = master_listen_desc(&l->addr, len);
	l->fd = -1;
}

/* master_listen_literal - a numeric address of one family */
static void
master_listen_literal(struct master_listener **list, size_t *count,
    int family, const char *addr, unsigned port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
			log_panic(NULL, "bad literal %s", addr);
		master_listen_add_inet(list, count, (struct sockaddr *)&sin,
		    sizeof(sin), true);
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) != 1)
			log_panic(NULL, "bad literal %s", addr);
		master_listen_add_inet(list, count, (struct sockaddr *)&sin6,
		    sizeof(sin6), true);
	}
}

/* master_listen_resolve - every address of host, in the allowed families */
static int
master_listen_resolve(struct master_listener **list, size_t *count,
    const char *host, unsigned port, bool v4, bool v6, bool implicit,
    const char **error_r)
{
	struct addrinfo hints, *res, *ai;
	char hbuf[NI_MAXHOST], serv[16];
	size_t n = strlen(host);
	int err, found = 0;

	/* "[::1]" as an inet_interfaces item */
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(hbuf)) {
			*error_r = "address too long";
			return -1;
		}
		memcpy(hbuf, host + 1, n - 2);
		hbuf[n - 2] = '\0';
		host = hbuf;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v4 && v6 ? AF_UNSPEC : v4 ? AF_INET : AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	snprintf(serv, sizeof(serv), "%u", port);
	if ((err = getaddrinfo(host, serv, &hints, &res)) != 0) {
		*error_r = gai_strerror(err);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET && v4) ||
		    (ai->ai_family == AF_INET6 && v6)) {
			master_listen_add_inet(list, count, ai->ai_addr,
			    ai->ai_addrlen, implicit);
			found++;
		}
	}
	freeaddrinfo(res);
	if (found == 0) {
		*error_r = "no address of an enabled protocol (inet_protocols)";
		return -1;
	}
	return 0;
}

/* master_listen_protocols - which IP versions $inet_protocols allows */
static int
master_listen_protocols(const struct config *cfg, bool *v4, bool *v6,
    const char **bad_r)
{
	const char *const *items;
	size_t n, i;

	*v4 = *v6 = false;
	items = config_list(cfg, "inet_protocols", &n);
	for (i = 0; i < n; i++) {
		if (strcasecmp(items[i], "all") == 0)
			*v4 = *v6 = true;
		else if (strcasecmp(items[i], "ipv4") == 0)
			*v4 = true;
		else if (strcasecmp(items[i], "ipv6") == 0)
			*v6 = true;
		else {
			*bad_r = items[i];
			return -1;
		}
	}
	if (!*v4 && !*v6) {
		*bad_r = "(empty)";
		return -1;
	}
	return 0;
}

/* master_listen_plan_inet - the addresses of an inet service */
static int
master_listen_plan_inet(const struct master_service *def,
    const struct config *cfg, struct master_listener **list, size_t *count,
    struct str *errors)
{
	const char *const *items;
	const char *error, *bad;
	size_t n, i;
	bool v4, v6;
	int ret = 0;

	if (master_listen_protocols(cfg, &v4, &v6, &bad) < 0) {
		str_printf(errors, "%s:%u: service %s: bad inet_protocols "
		    "value: %s\n", def->file, def->line, def->name, bad);
		return -1;
	}
	if (def->host != NULL) {
		if (master_listen_resolve(list, count, def->host, def->port,
		    v4, v6, false, &error) < 0) {
			str_printf(errors, "%s:%u: service %s: cannot resolve "
			    "%s: %s\n", def->file, def->line, def->name,
			    def->host, error);
			return -1;
		}
		return 0;
	}
	items = config_list(cfg, "inet_interfaces", &n);
	if (n == 0) {
		str_printf(errors, "%s:%u: service %s: inet_interfaces is "
		    "empty\n", def->file, def->line, def->name);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (strcasecmp(items[i], "all") == 0) {
			if (v4)
				master_listen_literal(list, count, AF_INET,
				    "0.0.0.0", def->port);
			if (v6)
				master_listen_literal(list, count, AF_INET6,
				    "::", def->port);
		} else if (strcasecmp(items[i], "loopback-only") == 0) {
			if (v4)
				master_listen_literal(list, count, AF_INET,
				    "127.0.0.1", def->port);
			if (v6)
				master_listen_literal(list, count, AF_INET6,
				    "::1", def->port);
		} else if (master_listen_resolve(list, count, items[i],
		    def->port, v4, v6, true, &error) < 0) {
			str_printf(errors, "%s:%u: service %s: inet_interfaces "
			    "address %s: %s\n", def->file, def->line,
			    def->name, items[i], error);
			ret = -1;
		}
	}
	return ret;
}

/* master_listen_plan - see master.h */
int
master_listen_plan(const struct master_service *def, const struct config *cfg,
    struct master_listener **list_r, size_t *count_r, struct str *errors)
{
	struct master_listener *list = NULL, *l;
	struct sockaddr_un sun;
	size_t count = 0, i;
	const char *qdir;
	char *path;

	if (def->type == MASTER_SERVICE_INET) {
		if (master_listen_plan_inet(def, cfg, &list, &count,
		    errors) < 0) {
			for (i = 0; i < count; i++)
				master_listen_free(&list[i]);
			free(list);
			return -1;
		}
		*list_r = list;
		*count_r = count;
		return 0;
	}
	if (def->name[0] == '\0' || def->name[0] == '.' ||
	    strchr(def->name, '/') != NULL) {
		str_printf(errors, "%s:%u: service %s: a %s service name must "
		    "be a plain file name\n", def->file, def->line, def->name,
		    master_service_type_name(def->type));
		return -1;
	}
	qdir = config_str(cfg, "queue_directory");
	path = xasprintf("%s/%s/%s", qdir, def->private_ ? "private" : "public",
	    def->name);
	if (strlen(path) >= sizeof(sun.sun_path)) {
		str_printf(errors, "%s:%u: service %s: socket path too long "
		    "(%zu bytes, at most %zu): %s\n", def->file, def->line,
		    def->name, strlen(path), sizeof(sun.sun_path) - 1, path);
		free(path);
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	l->kind = def->type;
	l->path = path;
	l->private_ = def->private_;
	l->desc = xstrdup(path);
	l->fd = -1;
	*list_r = l;
	*count_r = 1;
	return 0;
}

/* master_listen_same - see master.h */
bool
master_listen_same(const struct master_listener *a,
    const struct master_listener *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == MASTER_SERVICE_INET)
		return a->addrlen == b->addrlen &&
		    memcmp(&a->addr, &b->addr, a->addrlen) == 0;
	return strcmp(a->path, b->path) == 0 && a->private_ == b->private_;
}

/* master_listen_owner - $mail_owner's ids, when we are root */
static bool
master_listen_owner(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	const char *error;

	if (!privsep_enabled())
		return false;
	return privsep_user(config_str(cfg, "mail_owner"), uid, gid,
	    &error) == 0;
}

/* master_listen_chown - see master.h */
void
master_listen_chown(const char *path, const struct config *cfg)
{
	uid_t uid;
	gid_t gid;

	if (master_listen_owner(cfg, &uid, &gid) && lchown(path, uid, gid) < 0)
		log_warn(NULL, "chown %s: %m", path);
}

/* master_listen_dir - make sure private/ or public/ exists */
static int
master_listen_dir(const char *path, bool private_, const struct config *cfg)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	mode_t mode = private_ ? 0700 : 0711;
	struct stat st;
	int ret = 0;

	ASSERT(slash != NULL);
	*slash = '\0';
	if (stat(dir, &st) == 0) {
		free(dir);
		return 0;
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		ret = mkdir_p(dir, 0755);
		*slash = '/';
	}
	if (ret == 0 && mkdir(dir, mode) < 0 && errno != EEXIST)
		ret = -1;
	if (ret == 0 && chmod(dir, mode) < 0)
		ret = -1;
	if (ret == 0)
		master_listen_chown(dir, cfg);
	free(dir);
	return ret;
}

/* master_listen_stale - remove an old socket or fifo at path */
static int
master_listen_stale(const char *path, const char **error_r)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		*error_r = "exists and is not a socket or fifo";
		errno = EEXIST;
		return -1;
	}
	if (unlink(path) < 0) {
		*error_r = "cannot remove the old socket";
		return -1;
	}
	return 0;
}

/* master_listen_bind_inet - socket, options, bind, listen */
static int
master_listen_bind_inet(struct master_listener *l, bool *skipped_r,
    const char **error_r)
{
	int fd, on = 1, family = l->addr.ss_family, saved;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (family == AF_INET6 && l->implicit &&
		    (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT))
			*skipped_r = true;
		*error_r = "socket";
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &on, sizeof(on)) < 0)) {
		*error_r = "setsockopt";
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&l->addr, l->addrlen) < 0) {
		if (family == AF_INET6 && l->implicit &&
		    (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT))
			*skipped_r = true;
		*error_r = "bind";
		goto fail;
	}
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		*error_r = "listen";
		goto fail;
	}
	l->fd = fd;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

/* master_listen_bind_unix - a UNIX stream socket with the right mode */
static int
master_listen_bind_unix(struct master_listener *l, const struct config *cfg,
    const char **error_r)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, ret, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (pst_strlcpy(sun.sun_path, l->path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		*error_r = "socket path too long";
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		*error_r = "socket";
		return -1;
	}
	/* The mode comes from the umask: no chmod on a path we do not own. */
	old = umask(l->private_ ? 0177 : 0111);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	(void)umask(old);
	errno = saved;
	if (ret < 0) {
		*error_r = "bind";
		goto fail;
	}
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		*error_r = "listen";
		(void)unlink(l->path);
		goto fail;
	}
	master_listen_chown(l->path, cfg);
	l->fd = fd;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

/* master_listen_bind_fifo - mkfifo, then open it read-write */
static int
master_listen_bind_fifo(struct master_listener *l, const struct config *cfg,
    const char **error_r)
{
	mode_t mode = l->private_ ? 0600 : 0622, old;
	struct stat st;
	uid_t uid;
	gid_t gid;
	int fd, ret, saved;

	old = umask(0);
	ret = mkfifo(l->path, mode);
	saved = errno;
	(void)umask(old);
	errno = saved;
	if (ret < 0) {
		*error_r = "mkfifo";
		return -1;
	}
	fd = open(l->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = "open";
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		*error_r = "not a fifo after mkfifo";
		(void)close(fd);
		errno = EEXIST;
		return -1;
	}
	if (master_listen_owner(cfg, &uid, &gid) && fchown(fd, uid, gid) < 0)
		log_warn(NULL, "chown %s: %m", l->path);
	l->fd = fd;
	return 0;
}

/* master_listen_bind - see master.h */
int
master_listen_bind(struct master_listener *l, const struct config *cfg,
    bool *skipped_r, const char **error_r)
{
	*skipped_r = false;
	ASSERT(l->fd < 0);
	if (l->kind == MASTER_SERVICE_INET)
		return master_listen_bind_inet(l, skipped_r, error_r);
	if (master_listen_dir(l->path, l->private_, cfg) < 0) {
		*error_r = "cannot create the socket directory";
		return -1;
	}
	if (master_listen_stale(l->path, error_r) < 0)
		return -1;
	if (l->kind == MASTER_SERVICE_UNIX)
		return master_listen_bind_unix(l, cfg, error_r);
	return master_listen_bind_fifo(l, cfg, error_r);
}

/* master_listen_close - see master.h */
void
master_listen_close(struct master_listener *l, bool unlink_path)
{
	if (l->fd >= 0) {
		/*
		 * Workers hold the same listening socket; shutdown() stops it
		 * for all of them at once, so no new client is queued for a
		 * service that is gone while a busy worker finishes its
		 * connection (that worker's accept then fails with EINVAL).
		 */
		if (l->kind != MASTER_SERVICE_FIFO)
			(void)shutdown(l->fd, SHUT_RDWR);
		(void)close(l->fd);
		l->fd = -1;
	}
	if (unlink_path && l->path != NULL && unlink(l->path) < 0 &&
	    errno != ENOENT)
		log_warn(NULL, "remove %s: %m", l->path);
}

/* master_listen_free - free the strings of l (not l itself) */
void
master_listen_free(struct master_listener *l)
{
	XFREE(l->path);
	XFREE(l->desc);
}
