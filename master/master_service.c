/* SPDX-License-Identifier: MIT */
/*
 * master_service - the table of running services
 *
 * DESCRIPTION
 *	Each master.conf line becomes a struct master_svc: its listeners, a
 *	status pipe shared by its workers, counts of processes and of
 *	available (idle) ones, and the timers for throttling and wakeups.
 *
 *	Spawning follows Postfix: master watches a service's listeners only
 *	while the service has no available worker (and may start one more:
 *	maxproc, not throttled). When a listener becomes readable it starts
 *	one worker, which counts as available and so stops the watching;
 *	the worker reports BUSY once it has taken a connection, and if more
 *	connections wait, the listener is readable again and the next worker
 *	starts. So there are never more workers than work plus one, and a
 *	connection beyond maxproc waits in the kernel's backlog until a
 *	worker becomes available and takes it.
 *
 *	Spawning ahead: a worker needs a fork, an exec and its start-up
 *	(dynamic linking, configuration) before it reports; on a loaded
 *	host (a burst of logins hashing passwords) that takes far longer
 *	than usual, and one-at-a-time spawning then admits connections
 *	only at 1/start-up latency (200 IMAP hand-offs to imap-mail took
 *	tens of seconds, past the login side's deadline). So once the last
 *	spawn is MASTER_SPAWN_AHEAD_MS old and every available worker is
 *	still starting (has sent no status record), the listeners are
 *	watched again: if connections still wait, another worker starts.
 *	Start-ups overlap, at most one new one per MASTER_SPAWN_AHEAD_MS;
 *	a worker that starts within that time changes nothing.
 *
 *	Reload (master_services_apply): a service whose new definition is
 *	master_service_same() as the old one and listens on the same
 *	endpoints is kept with its listeners and workers. Others are retired:
 *	their listeners go into a pool, their status pipes are closed (idle
 *	workers notice and exit; busy ones finish their connection first),
 *	and they stay in the retired list until their last worker is reaped.
 *	New services (added, or the new definition of a changed one) first
 *	take a pooled listener with exactly the same endpoint, so an address
 *	that is still open in old workers is never bound twice and
 *	connections waiting in its backlog are not lost; what is left in the
 *	pool is then closed (sockets and fifos no new service uses are
 *	removed), and the remaining endpoints are bound. A bind that fails on
 *	reload (say, an old worker still holds a wildcard address) is
 *	retried every second.
 *
 *	Throttling: a service whose worker failed before finishing any work
 *	gets no new workers for $service_throttle_time; its listeners are
 *	not watched meanwhile, so clients wait in the backlog instead of
 *	feeding a fork storm.
 *
 * SECURITY
 *	Runs as root; reads only master's own configuration. Nothing read
 *	from workers goes beyond the fixed-size status records.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "privsep.h"
#include "server.h"

#include "master.h"

#define MASTER_BIND_RETRY_MS 1000
#define MASTER_BIND_LOG_EVERY 30

/* Listeners of retired services, during one apply. */
static struct master_listener *master_pool;
static size_t master_npool;

static void master_svc_wakeup_arm(struct master_svc *svc, bool first);

/* master_gen_unref - drop one reference to a master.conf generation */
static void
master_gen_unref(struct master_gen **genp)
{
	struct master_gen *gen = *genp;

	if (gen == NULL)
		return;
	*genp = NULL;
	ASSERT(gen->refs > 0);
	if (--gen->refs == 0) {
		master_conf_free(&gen->conf);
		free(gen);
	}
}

/* master_svc_user - the account a service runs as (NULL: privsep off) */
static const char *
master_svc_user(const struct master_service *def, const struct config *cfg)
{
	if (!privsep_enabled())
		return NULL;
	return def->user != NULL ? def->user : config_str(cfg, "mail_owner");
}

/* master_svc_path - the program of a service */
static char *
master_svc_path(const struct master_service *def, const struct config *cfg)
{
	if (def->argv[0][0] == '/')
		return xstrdup(def->argv[0]);
	return xasprintf("%s/%s", config_str(cfg, "daemon_directory"),
	    def->argv[0]);
}

/* master_args_free - free a NULL-terminated argv of copies */
static void
master_args_free(char ***argsp)
{
	char **a = *argsp;
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; a[i] != NULL; i++)
		free(a[i]);
	free(a);
	*argsp = NULL;
}

/* master_svc_resolve - everything derived from def and the current conf() */
static void
master_svc_resolve(struct master_svc *svc, const struct master_service *def)
{
	const struct config *cfg = conf();
	const char *user = master_svc_user(def, cfg);
	size_t n = 0, i;
	char **a;

	free(svc->path);
	free(svc->user);
	master_args_free(&svc->args);
	svc->path = master_svc_path(def, cfg);
	svc->user = user != NULL ? xstrdup(user) : NULL;
	svc->maxproc = def->maxproc < 0 ?
	    (int)MIN(config_int(cfg, "default_process_limit"), (uint64_t)INT32_MAX) :
	    def->maxproc;
	a = xcalloc(def->argc + 12, sizeof(*a));
	a[n++] = xstrdup(def->argv[0]);
	a[n++] = xstrdup("-c");
	a[n++] = xstrdup(master.config_dir);
	a[n++] = xstrdup("-n");
	a[n++] = xstrdup(def->name);
	a[n++] = xstrdup("-t");
	a[n++] = xstrdup(master_service_type_name(def->type));
	if (svc->user != NULL) {
		a[n++] = xstrdup("-u");
		a[n++] = xstrdup(svc->user);
	}
	if (def->chroot)
		a[n++] = xstrdup("-r");
	if (master.verbose)
		a[n++] = xstrdup("-v");
	for (i = 1; i < def->argc && def->argv[i] != NULL; i++)
		a[n++] = xstrdup(def->argv[i]);
	a[n] = NULL;
	svc->args = a;
}

/* master_svc_set_def - point svc at a (new) definition */
static void
master_svc_set_def(struct master_svc *svc, struct master_gen *gen,
    const struct master_service *def)
{
	gen->refs++;
	master_gen_unref(&svc->gen);
	svc->gen = gen;
	svc->def = def;
	master_svc_resolve(svc, def);
}

/* master_svc_bound - are all listeners bound? */
static bool
master_svc_bound(const struct master_svc *svc)
{
	size_t i;

	if (svc->nlisteners == 0)
		return false;
	for (i = 0; i < svc->nlisteners; i++) {
		if (svc->listeners[i].fd < 0)
			return false;
	}
	return true;
}

/* master_spawn_ahead - the last spawn is old enough to start another */
static void
master_spawn_ahead(void *ctx)
{
	struct master_svc *svc = ctx;

	svc->spawn_timer = NULL;
	svc->spawn_ahead = true;
	master_svc_update(svc);
}

/* master_listen_event - a watched listener is readable: start a worker */
static void
master_listen_event(void *ctx, int fd UNUSED, unsigned events UNUSED)
{
	struct master_svc *svc = ctx;

	if (!svc->watching)
		return;
	svc->used = true;
	if (master_spawn(svc) < 0)
		master_svc_throttle(svc);
	else {
		svc->spawn_ahead = false;
		event_timer_remove(master.loop, &svc->spawn_timer);
		svc->spawn_timer = event_timer_add(master.loop,
		    MASTER_SPAWN_AHEAD_MS, master_spawn_ahead, svc);
	}
	master_svc_update(svc);
}

/* master_svc_update - watch the listeners exactly when a worker may start */
void
master_svc_update(struct master_svc *svc)
{
	bool want;
	size_t i;

	want = svc->active && !master.stopping && !svc->throttled &&
	    (svc->avail == 0 ||
	    (svc->spawn_ahead && svc->avail <= svc->starting)) &&
	    (svc->maxproc == 0 || svc->procs < (unsigned)svc->maxproc) &&
	    master_svc_bound(svc);
	if (want == svc->watching)
		return;
	for (i = 0; i < svc->nlisteners; i++) {
		if (want) {
			if (event_fd_add(master.loop, svc->listeners[i].fd,
			    EVENT_READ, master_listen_event, svc) < 0)
				log_panic(NULL, "event_fd_add listener: %m");
		} else {
			(void)event_fd_remove(master.loop,
			    svc->listeners[i].fd);
		}
	}
	svc->watching = want;
}

/* master_unthrottle - the throttle time is over */
static void
master_unthrottle(void *ctx)
{
	struct master_svc *svc = ctx;

	svc->throttle_timer = NULL;
	svc->throttled = false;
	log_info(NULL, "service %s: throttle ended", svc->name);
	master_svc_update(svc);
}

/* master_svc_throttle - no new workers for $service_throttle_time */
void
master_svc_throttle(struct master_svc *svc)
{
	unsigned secs = config_time(conf(), "service_throttle_time");

	if (svc->throttled || !svc->active || secs == 0)
		return;
	svc->throttled = true;
	svc->throttle_timer = event_timer_add(master.loop, secs * 1000U,
	    master_unthrottle, svc);
	log_warn(NULL, "service %s throttled for %us after worker failure",
	    svc->name, secs);
	master_svc_update(svc);
}

/* master_svc_free - release a service with no workers left */
static void
master_svc_free(struct master_svc *svc)
{
	size_t i;

	ASSERT(svc->procs == 0 && !svc->watching);
	for (i = 0; i < svc->nlisteners; i++) {
		master_listen_close(&svc->listeners[i], false);
		master_listen_free(&svc->listeners[i]);
	}
	free(svc->listeners);
	event_timer_remove(master.loop, &svc->throttle_timer);
	event_timer_remove(master.loop, &svc->wakeup_timer);
	event_timer_remove(master.loop, &svc->bind_timer);
	event_timer_remove(master.loop, &svc->spawn_timer);
	master_gen_unref(&svc->gen);
	free(svc->name);
	free(svc->path);
	free(svc->user);
	master_args_free(&svc->args);
	free(svc->listen_desc);
	free(svc);
}

/* master_svc_proc_gone - a worker of svc was reaped */
void
master_svc_proc_gone(struct master_svc *svc)
{
	struct master_svc **pp;

	if (svc->active) {
		master_svc_update(svc);
		return;
	}
	if (svc->procs > 0)
		return;
	for (pp = &master.retired; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == svc) {
			*pp = svc->next;
			break;
		}
	}
	master_svc_free(svc);
}

/* master_svc_close_pipe - close the status pipe: idle workers exit */
static void
master_svc_close_pipe(struct master_svc *svc)
{
	if (svc->status_rd >= 0) {
		(void)event_fd_remove(master.loop, svc->status_rd);
		(void)close(svc->status_rd);
		svc->status_rd = -1;
	}
	if (svc->status_wr >= 0) {
		(void)close(svc->status_wr);
		svc->status_wr = -1;
	}
}

/*
 * master_svc_retire - take svc out of service. With to_pool its bound
 * listeners move to the pool (reload); otherwise they are closed and
 * their sockets removed (stop).
 */
static void
master_svc_retire(struct master_svc *svc, bool to_pool)
{
	size_t i;

	svc->active = false;
	master_svc_update(svc);
	for (i = 0; i < svc->nlisteners; i++) {
		struct master_listener *l = &svc->listeners[i];

		if (to_pool && l->fd >= 0) {
			master_pool = xreallocarray(master_pool,
			    master_npool + 1, sizeof(*master_pool));
			master_pool[master_npool++] = *l;
		} else {
			master_listen_close(l, true);
			master_listen_free(l);
		}
	}
	XFREE(svc->listeners);
	svc->nlisteners = 0;
	event_timer_remove(master.loop, &svc->throttle_timer);
	event_timer_remove(master.loop, &svc->wakeup_timer);
	event_timer_remove(master.loop, &svc->bind_timer);
	event_timer_remove(master.loop, &svc->spawn_timer);
	svc->throttled = false;
	master_svc_close_pipe(svc);
	master_gen_unref(&svc->gen);
	svc->def = NULL;
	if (svc->procs == 0) {
		master_svc_free(svc);
		return;
	}
	svc->next = master.retired;
	master.retired = svc;
}

/* master_svc_set_desc - "a,b,c" of the listeners, for status */
static void
master_svc_set_desc(struct master_svc *svc)
{
	struct str *s = str_new(64, 0);
	size_t i;

	for (i = 0; i < svc->nlisteners; i++) {
		if (i > 0)
			str_append_c(s, ',');
		str_append_cstr(s, svc->listeners[i].desc);
	}
	if (svc->nlisteners == 0)
		str_append_c(s, '-');
	free(svc->listen_desc);
	svc->listen_desc = str_steal(&s);
}

/* master_svc_new - a service for def, not yet bound */
static struct master_svc *
master_svc_new(struct master_gen *gen, const struct master_service *def)
{
	struct master_svc *svc = xcalloc(1, sizeof(*svc));
	int fds[2];

	svc->name = xstrdup(def->name);
	svc->type = def->type;
	svc->status_rd = svc->status_wr = -1;
	svc->active = true;
	master_svc_set_def(svc, gen, def);
	if (pipe2(fds, O_CLOEXEC) < 0)
		log_fatal(NULL, "service %s: pipe: %m", svc->name);
	svc->status_rd = fds[0];
	svc->status_wr = fds[1];
	if (fcntl(svc->status_rd, F_SETFL, O_NONBLOCK) < 0 ||
	    event_fd_add(master.loop, svc->status_rd, EVENT_READ,
	    master_status_event, svc) < 0)
		log_fatal(NULL, "service %s: status pipe: %m", svc->name);
	return svc;
}

/* master_pool_take - give l the pooled fd of the same endpoint, if any */
static void
master_pool_take(struct master_listener *l)
{
	size_t i;

	for (i = 0; i < master_npool; i++) {
		if (master_pool[i].fd >= 0 && master_listen_same(&master_pool[i], l)) {
			l->fd = master_pool[i].fd;
			master_pool[i].fd = -1;
			return;
		}
	}
}

/* master_path_in_use - is path the socket of an active service? */
static bool
master_path_in_use(const char *path)
{
	struct master_svc *svc;
	size_t i;

	for (svc = master.services; svc != NULL; svc = svc->next) {
		for (i = 0; i < svc->nlisteners; i++) {
			if (svc->listeners[i].path != NULL &&
			    strcmp(svc->listeners[i].path, path) == 0)
				return true;
		}
	}
	return false;
}

/* master_pool_close - close what no new service took */
static void
master_pool_close(void)
{
	size_t i;

	for (i = 0; i < master_npool; i++) {
		struct master_listener *l = &master_pool[i];

		master_listen_close(l, l->path != NULL && l->fd >= 0 &&
		    !master_path_in_use(l->path));
		master_listen_free(l);
	}
	XFREE(master_pool);
	master_npool = 0;
}

/*
 * master_svc_bind - bind what is not bound yet. Returns 0 when every
 * listener is bound, else -1 with *error_r (allocated).
 */
static int
master_svc_bind(struct master_svc *svc, char **error_r)
{
	const char *error;
	bool skipped;
	size_t i;

	for (i = 0; i < svc->nlisteners; i++) {
		struct master_listener *l = &svc->listeners[i];

		if (l->fd >= 0)
			continue;
		if (master_listen_bind(l, conf(), &skipped, &error) == 0)
			continue;
		if (skipped) {
			log_warn(NULL, "service %s: skipping %s: %s: %m "
			    "(no IPv6 on this host?)", svc->name, l->desc,
			    error);
			master_listen_free(l);
			memmove(l, l + 1,
			    (svc->nlisteners - i - 1) * sizeof(*l));
			svc->nlisteners--;
			i--;
			continue;
		}
		*error_r = xasprintf("service %s: %s: %s: %s", svc->name,
		    l->desc, error, strerror(errno));
		return -1;
	}
	master_svc_set_desc(svc);
	if (svc->nlisteners == 0) {
		*error_r = xasprintf("service %s: no address to listen on",
		    svc->name);
		return -1;
	}
	return 0;
}

/* master_svc_started - all bound: start watching and the wakeup clock */
static void
master_svc_started(struct master_svc *svc)
{
	log_debug(NULL, "service %s: listening on %s", svc->name,
	    svc->listen_desc);
	master_svc_wakeup_arm(svc, true);
	master_svc_update(svc);
}

/* master_bind_retry - try the binds of a service again (after a reload) */
static void
master_bind_retry(void *ctx)
{
	struct master_svc *svc = ctx;
	char *error = NULL;

	svc->bind_timer = NULL;
	svc->bind_tries++;
	if (master_svc_bind(svc, &error) == 0) {
		log_info(NULL, "service %s: listening on %s", svc->name,
		    svc->listen_desc);
		master_svc_started(svc);
		return;
	}
	if (svc->bind_tries % MASTER_BIND_LOG_EVERY == 0)
		log_error(NULL, "%s (still retrying)", error);
	free(error);
	if (svc->nlisteners > 0)
		svc->bind_timer = event_timer_add(master.loop,
		    MASTER_BIND_RETRY_MS, master_bind_retry, svc);
}

/* master_wakeup_send - one wakeup byte to the service */
static void
master_wakeup_send(struct master_svc *svc)
{
	const struct master_listener *l = &svc->listeners[0];
	static const char wakeup = SERVER_WAKEUP_BYTE;
	struct sockaddr_un sun;
	int fd;

	if (svc->nlisteners == 0 || l->fd < 0)
		return;
	if (l->kind == MASTER_SERVICE_FIFO) {
		if (write(l->fd, &wakeup, 1) < 0 && errno != EAGAIN)
			log_warn(NULL, "service %s: wakeup: %m", svc->name);
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	pst_strlcpy(sun.sun_path, l->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn(NULL, "service %s: wakeup: socket: %m", svc->name);
		return;
	}
	/* A full backlog (EAGAIN) means the service is busy anyway. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno != EAGAIN)
			log_warn(NULL, "service %s: wakeup: connect %s: %m",
			    svc->name, l->path);
	} else if (write(fd, &wakeup, 1) != 1) {
		log_warn(NULL, "service %s: wakeup: write: %m", svc->name);
	}
	(void)close(fd);
}

/* master_wakeup_event - the wakeup clock of a service ticked */
static void
master_wakeup_event(void *ctx)
{
	struct master_svc *svc = ctx;

	svc->wakeup_timer = NULL;
	if (!svc->active || svc->def == NULL)
		return;
	if (!svc->def->wakeup_if_used || svc->used) {
		log_debug(NULL, "service %s: wakeup", svc->name);
		master_wakeup_send(svc);
	}
	master_svc_wakeup_arm(svc, false);
}

/*
 * master_svc_wakeup_arm - start the wakeup clock if the service has one.
 * As in Postfix, a service that is not '?' gets its first wakeup at once:
 * that is what starts a daemon such as qmgr when master starts.
 */
static void
master_svc_wakeup_arm(struct master_svc *svc, bool first)
{
	unsigned ms;

	if (svc->def == NULL || svc->def->wakeup == 0 ||
	    svc->type == MASTER_SERVICE_INET || svc->wakeup_timer != NULL)
		return;
	ms = first && !svc->def->wakeup_if_used ? 0 : svc->def->wakeup * 1000U;
	svc->wakeup_timer = event_timer_add(master.loop, ms,
	    master_wakeup_event, svc);
}

/* master_services_check - see master.h */
int
master_services_check(const struct master_conf *mc, const struct config *cfg,
    struct str *errors)
{
	struct master_listener **plans;
	size_t *counts, i, j, a, b;
	const char *user, *error;
	size_t start = str_len(errors);
	uid_t uid;
	gid_t gid;
	char *path;

	plans = xcalloc(mc->count + 1, sizeof(*plans));
	counts = xcalloc(mc->count + 1, sizeof(*counts));
	for (i = 0; i < mc->count; i++) {
		const struct master_service *def = &mc->services[i];

		if (def->wakeup != 0 && def->type == MASTER_SERVICE_INET)
			str_printf(errors, "%s:%u: service %s: wakeup is not "
			    "supported for inet services\n", def->file,
			    def->line, def->name);
		if (def->argc == 0 || def->argv == NULL || def->argv[0] == NULL) {
			str_printf(errors, "%s:%u: service %s: no command\n",
			    def->file, def->line, def->name);
			continue;
		}
		if ((user = master_svc_user(def, cfg)) != NULL) {
			if (privsep_user(user, &uid, &gid, &error) < 0)
				str_printf(errors, "%s:%u: service %s: user %s: "
				    "%s\n", def->file, def->line, def->name,
				    user, error);
			else if (uid == 0)
				str_printf(errors, "%s:%u: service %s: user %s "
				    "is root; only master runs as root\n",
				    def->file, def->line, def->name, user);
		}
		path = master_svc_path(def, cfg);
		if (access(path, X_OK) < 0)
			str_printf(errors, "%s:%u: service %s: %s: %s\n",
			    def->file, def->line, def->name, path,
			    strerror(errno));
		free(path);
		(void)master_listen_plan(def, cfg, &plans[i], &counts[i],
		    errors);
	}
	/* Two services on one endpoint would fail at bind time: say so now. */
	for (i = 0; i < mc->count; i++) {
		for (j = i + 1; j < mc->count; j++) {
			for (a = 0; a < counts[i]; a++) {
				for (b = 0; b < counts[j]; b++) {
					if (!master_listen_same(&plans[i][a],
					    &plans[j][b]))
						continue;
					str_printf(errors, "%s:%u: service %s: "
					    "%s is also used by service %s "
					    "(line %u)\n", mc->services[j].file,
					    mc->services[j].line,
					    mc->services[j].name,
					    plans[j][b].desc,
					    mc->services[i].name,
					    mc->services[i].line);
					goto next_pair;
				}
			}
next_pair:		;
		}
	}
	for (i = 0; i < mc->count; i++) {
		for (a = 0; a < counts[i]; a++)
			master_listen_free(&plans[i][a]);
		free(plans[i]);
	}
	free(plans);
	free(counts);
	return str_len(errors) > start ? -1 : 0;
}

/* master_svc_listeners_same - does svc listen exactly on plan? */
static bool
master_svc_listeners_same(const struct master_svc *svc,
    const struct master_listener *plan, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < svc->nlisteners; j++) {
			if (master_listen_same(&plan[i], &svc->listeners[j]))
				break;
		}
		if (j == svc->nlisteners)
			return false;
	}
	/* Implicit IPv6 addresses may have been skipped when bound. */
	for (j = 0; j < svc->nlisteners; j++) {
		for (i = 0; i < n; i++) {
			if (master_listen_same(&plan[i], &svc->listeners[j]))
				break;
		}
		if (i == n)
			return false;
	}
	return true;
}

/* master_plan_free - free a plan array */
static void
master_plan_free(struct master_listener *plan, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		master_listen_free(&plan[i]);
	free(plan);
}

/* master_services_apply - see master.h */
int
master_services_apply(struct master_conf *mc, bool initial, char **error_r)
{
	struct master_gen *gen = xcalloc(1, sizeof(*gen));
	struct master_svc **slot, *svc, *next, **tail;
	struct master_listener *plan;
	bool *changed;
	unsigned added = 0, removed = 0, nchanged = 0;
	size_t i, j, n;
	struct str *errors = str_new(0, 0);
	char *error = NULL;
	int ret = 0;

	gen->conf = mc;
	gen->refs = 1;		/* ours, while we work */
	slot = xcalloc(mc->count + 1, sizeof(*slot));
	changed = xcalloc(mc->count + 1, sizeof(*changed));

	/* Old services: keep the unchanged ones, retire the rest. */
	for (svc = master.services, master.services = NULL; svc != NULL;
	    svc = next) {
		next = svc->next;
		svc->next = NULL;
		for (i = 0; i < mc->count; i++) {
			if (slot[i] == NULL && !changed[i] &&
			    mc->services[i].type == svc->type &&
			    strcmp(mc->services[i].name, svc->name) == 0)
				break;
		}
		if (i == mc->count) {
			removed++;
			master_svc_retire(svc, true);
			continue;
		}
		if (master_service_same(svc->def, &mc->services[i]) &&
		    master_listen_plan(&mc->services[i], conf(), &plan, &n,
		    errors) == 0) {
			bool same = master_svc_listeners_same(svc, plan, n);

			master_plan_free(plan, n);
			if (same) {
				master_svc_set_def(svc, gen, &mc->services[i]);
				slot[i] = svc;
				continue;
			}
		}
		nchanged++;
		changed[i] = true;
		master_svc_retire(svc, true);
	}

	/* New services: plan, and take over pooled endpoints. */
	for (i = 0; i < mc->count; i++) {
		if (slot[i] != NULL)
			continue;
		if (!changed[i])
			added++;
		svc = slot[i] = master_svc_new(gen, &mc->services[i]);
		if (master_listen_plan(&mc->services[i], conf(),
		    &svc->listeners, &svc->nlisteners, errors) < 0)
			continue;	/* checked before: cannot happen */
		for (j = 0; j < svc->nlisteners; j++)
			master_pool_take(&svc->listeners[j]);
	}

	/* The new table, in master.conf order. */
	tail = &master.services;
	for (i = 0; i < mc->count; i++) {
		*tail = slot[i];
		tail = &slot[i]->next;
	}
	*tail = NULL;
	master_pool_close();

	/* Bind what is new, and start. */
	for (i = 0; i < mc->count; i++) {
		svc = slot[i];
		if (svc->watching || master_svc_bound(svc)) {
			master_svc_set_desc(svc);
			master_svc_started(svc);
			continue;
		}
		if (svc->bind_timer != NULL)
			continue;	/* still retrying from an earlier reload */
		if (master_svc_bind(svc, &error) == 0) {
			master_svc_started(svc);
			continue;
		}
		if (initial) {
			if (ret == 0)
				*error_r = error;
			else
				free(error);
			error = NULL;
			ret = -1;
			continue;
		}
		log_error(NULL, "%s (retrying every %us)", error,
		    MASTER_BIND_RETRY_MS / 1000);
		XFREE(error);
		svc->bind_timer = event_timer_add(master.loop,
		    MASTER_BIND_RETRY_MS, master_bind_retry, svc);
	}
	if (str_len(errors) > 0)
		log_error(NULL, "%s", str_c(errors));
	str_free(&errors);
	free(slot);
	free(changed);
	n = mc->count;
	/* With no service left holding it, this frees mc. */
	master_gen_unref(&gen);
	if (!initial)
		log_info(NULL, "reload: %zu services (added %u, removed %u, "
		    "changed %u)", n, added, removed, nchanged);
	return ret;
}

/* master_services_stop - close every listener; workers get the signal */
void
master_services_stop(void)
{
	struct master_svc *svc, *next;

	for (svc = master.services, master.services = NULL; svc != NULL;
	    svc = next) {
		next = svc->next;
		svc->next = NULL;
		master_svc_retire(svc, false);
	}
}

/* master_services_count - how many services run */
size_t
master_services_count(void)
{
	struct master_svc *svc;
	size_t n = 0;

	for (svc = master.services; svc != NULL; svc = svc->next)
		n++;
	return n;
}

/* master_services_status - one "service ..." line per service */
void
master_services_status(struct str *out)
{
	const struct master_proc *p;
	struct master_svc *svc;
	bool first;

	for (svc = master.services; svc != NULL; svc = svc->next) {
		str_printf(out, "service name=%s type=%s listen=%s user=%s "
		    "maxproc=%d procs=%u available=%u pids=", svc->name,
		    master_service_type_name(svc->type), svc->listen_desc != NULL ?
		    svc->listen_desc : "-", svc->user != NULL ? svc->user :
		    master.invoker, svc->maxproc, svc->procs, svc->avail);
		first = true;
		for (p = master.procs; p != NULL; p = p->next) {
			if (p->svc != svc)
				continue;
			str_printf(out, "%s%ld", first ? "" : ",", (long)p->pid);
			first = false;
		}
		str_printf(out, "%s throttled=%s\n", first ? "-" : "",
		    svc->throttled ? "yes" : "no");
	}
}
