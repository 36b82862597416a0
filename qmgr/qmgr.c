/* SPDX-License-Identifier: MIT */
/*
 * qmgr - the queue manager
 *
 * DESCRIPTION
 *	qmgr moves every committed message to its recipients. It is a fifo
 *	service (master.conf "qmgr fifo n - n 300 1 qmgr"): cleanup writes
 *	one byte to $queue_directory/public/qmgr after each commit, master
 *	writes one every wakeup period, `postern queue flush/release` write
 *	one after they moved mail back into active/. Each wakeup scans
 *	active/ for messages not yet in memory, and deferred/ when a retry
 *	is due or $queue_run_delay has passed.
 *
 *	A message in memory holds its queue file open with the update lock
 *	(queue_file.h), so `postern queue` never moves or deletes a message
 *	while a delivery of it is under way. Memory is bounded: at most
 *	$qmgr_message_active_limit messages and about
 *	$qmgr_message_recipient_limit recipients (and never more open files
 *	than RLIMIT_NOFILE allows); the rest waits on disk until room frees.
 *
 *	For each message: every recipient that is not final is resolved
 *	(qmgr_resolve.c: local users, aliases, virtual aliases, transports)
 *	and queued to its destination (transport + next hop); jobs go to
 *	the delivery agents (private/lmtp, private/smtp: smtp(8)) within
 *	the per-destination concurrency limits; each agent's answer is
 *	recorded with ONE queue_file_update (durable before anything else
 *	happens, except when it makes every recipient final: then the file
 *	is unlinked and the removals are synced once per loop round — the
 *	group commit argued in qmgr_message.c and qmgr(8)), then logged
 *	Postfix-style. When no recipient is left in
 *	flight, DSNs are sent (qmgr_bounce.c), and the message is removed
 *	(all final) or moved to deferred/ with its file time set to the next
 *	attempt (exponential backoff per recipient between
 *	$minimal_backoff_time and $maximal_backoff_time). Mail older than
 *	$maximal_queue_lifetime ($bounce_queue_lifetime for bounces) that
 *	still fails is returned.
 *
 *	Exactly once: a delivered recipient is final in the queue file and
 *	never tried again; a hand-off whose DELIVERED update was lost to a
 *	crash is retried with the same delivery token ("QUEUEID/index"),
 *	which the LMTP server acknowledges without a second copy.
 *
 *	Start-up recovery: files left in incoming/ by a writer that is gone
 *	(no lock held, older than a minute) are committed into active/ when
 *	complete (queue_file_recover) and removed when incomplete and older
 *	than an hour; files in active/ from a previous life are simply
 *	picked up by the first scan.
 *
 * SECURITY
 *	Runs as $mail_owner, possibly chrooted into $queue_directory.
 *	Reads and updates queue files, reads alias, virtual and transport
 *	maps, :include: files and the user database; connects to the
 *	delivery agents' and cleanup's private sockets. It parses no
 *	network input: agent answers are decoded strictly (deliver_proto).
 *
 * DIAGNOSTICS
 *	"ID: from=<sender>, size=N, nrcpt=N (queue active)" when a message
 *	comes into memory; "ID: to=<rcpt>, relay=..., delay=N, dsn=X.Y.Z,
 *	status=sent|deferred|bounced (text)" per recipient; "ID: removed"
 *	when every recipient is final. Problems with queue files are
 *	logged with the queue ID; a file that fails validation is moved to
 *	corrupt/.
 *
 * SEE ALSO
 *	qmgr(8), smtp(8), postern(8) (queue), lib/queue_file.h,
 *	Postfix src/qmgr/
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "map.h"
#include "queue_file.h"
#include "server.h"

#include "qmgr.h"

#define QMGR_INCOMING_AGE	60	/* s: a writer this quiet may be gone */
#define QMGR_INCOMPLETE_AGE	3600	/* s: then an incomplete file is garbage */
#define QMGR_FD_RESERVE		64	/* fds kept for sockets, maps, logs */

struct qmgr_settings qmgr_settings;

static struct event_timer *qmgr_deferred_timer;
static time_t qmgr_deferred_next;	/* when the deferred scan is due */
static time_t qmgr_incoming_next;	/* when to look at incoming/ again */
static bool qmgr_active_more;		/* active/ had more than we took */
static bool qmgr_kicked;
static unsigned long qmgr_fd_limit;

struct event_loop *
qmgr_loop(void)
{
	return server_loop();
}

time_t
qmgr_now(void)
{
	return time(NULL);
}

/* qmgr_backoff - minimal_backoff_time * 2^(attempts-1), capped */
unsigned
qmgr_backoff(uint32_t attempts)
{
	unsigned long d = qmgr_settings.min_backoff;
	uint32_t i;

	for (i = 1; i < attempts && d < qmgr_settings.max_backoff; i++)
		d *= 2;
	if (d > qmgr_settings.max_backoff)
		d = qmgr_settings.max_backoff;
	if (d < qmgr_settings.min_backoff)
		d = qmgr_settings.min_backoff;
	return (unsigned)d;
}

/* qmgr_room - is there room for another message in memory? */
bool
qmgr_room(void)
{
	size_t n = qmgr_message_count();

	return n < qmgr_settings.active_limit && n < qmgr_fd_limit &&
	    qmgr_rcpt_count() < qmgr_settings.rcpt_limit;
}

/* ---------------------------------------------------------- scans */

/* qmgr_open_or_corrupt - open with the update lock; corrupt files move away */
static struct queue_file *
qmgr_open(enum queue_name q, const char *id)
{
	struct log_ctx log = { id };
	struct queue_file *qf;
	const char *error = NULL;

	qf = queue_file_open(".", q, id, QUEUE_FILE_UPDATE, &error);
	if (qf != NULL)
		return qf;
	if (errno == EBADMSG) {
		log_warn(&log, "invalid queue file in %s/: %s; moving it to "
		    "corrupt/", queue_name_str(q), error);
		if (queue_file_rename(".", q, QUEUE_CORRUPT, id, &error) < 0)
			log_error(&log, "cannot move to corrupt/: %s: %m", error);
	} else if (errno != ENOENT && errno != EWOULDBLOCK) {
		log_error(&log, "cannot open queue file %s/%s: %s: %m",
		    queue_name_str(q), id, error);
	}
	return NULL;
}

/* qmgr_scan_active_cb - one file in active/ */
static int
qmgr_scan_active_cb(const char *id, void *ctx UNUSED)
{
	struct queue_file *qf;

	if (qmgr_message_find(id) != NULL)
		return 0;
	if (!qmgr_room()) {
		qmgr_active_more = true;
		return 1;
	}
	if ((qf = qmgr_open(QUEUE_ACTIVE, id)) != NULL)
		qmgr_message_load(qf);
	return 0;
}

/* qmgr_scan_active - take new mail (and mail left by a previous life) */
static void
qmgr_scan_active(void)
{
	qmgr_active_more = false;
	if (queue_scan(".", QUEUE_ACTIVE, qmgr_scan_active_cb, NULL) < 0)
		log_error(NULL, "cannot scan active/: %m");
}

struct qmgr_dscan {
	time_t now;
	time_t next;		/* earliest future retry seen */
	bool full;
};

/* qmgr_scan_deferred_cb - one file in deferred/: due yet? */
static int
qmgr_scan_deferred_cb(const char *id, void *ctx)
{
	struct qmgr_dscan *ds = ctx;
	struct log_ctx log = { id };
	struct queue_file *qf;
	struct str *path = str_new(64, 0);
	const char *error = NULL;
	struct stat st;
	int rc;

	rc = queue_file_path(".", QUEUE_DEFERRED, id, path);
	rc = rc == 0 ? stat(str_c(path), &st) : -1;
	str_free(&path);
	if (rc < 0)
		return 0;
	if (st.st_mtime > ds->now) {
		if (ds->next == 0 || st.st_mtime < ds->next)
			ds->next = st.st_mtime;
		return 0;
	}
	if (!qmgr_room()) {
		ds->full = true;
		return 1;
	}
	if ((qf = qmgr_open(QUEUE_DEFERRED, id)) == NULL)
		return 0;
	if (queue_file_move(qf, QUEUE_ACTIVE, &error) < 0) {
		log_error(&log, "cannot move deferred/ to active/: %s: %m",
		    error);
		queue_file_close(&qf);
		return 0;
	}
	qmgr_message_load(qf);
	return 0;
}

/* qmgr_incoming_cb - a file in incoming/: a dead writer's? */
static int
qmgr_incoming_cb(const char *id, void *ctx)
{
	time_t now = *(const time_t *)ctx;
	struct log_ctx log = { id };
	struct str *path = str_new(64, 0);
	const char *error = NULL;
	struct stat st;
	int rc, fd;

	if (queue_file_path(".", QUEUE_INCOMING, id, path) < 0 ||
	    stat(str_c(path), &st) < 0 ||
	    now - st.st_mtime < QMGR_INCOMING_AGE)
		goto out;
	rc = queue_file_recover(".", id, QUEUE_ACTIVE, &error);
	if (rc == 1) {
		log_info(&log, "recovered from incoming/ (its writer is gone)");
		goto out;
	}
	if (rc < 0 || now - st.st_mtime < QMGR_INCOMPLETE_AGE)
		goto out;
	/* Incomplete and old: remove it unless a writer still holds it. */
	if ((fd = open(str_c(path), O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		log_warn(&log, "removing incomplete queue file from a dead "
		    "writer: %s", error != NULL ? error : "incomplete");
		if (unlink(str_c(path)) < 0)
			log_error(&log, "unlink %s: %m", str_c(path));
	}
	(void)close(fd);
out:
	str_free(&path);
	return 0;
}

/* qmgr_arm_deferred - (re)start the timer for the next deferred scan */
static void qmgr_deferred_fire(void *ctx);

static void
qmgr_arm_deferred(void)
{
	time_t now = qmgr_now();
	unsigned secs;

	event_timer_remove(qmgr_loop(), &qmgr_deferred_timer);
	secs = qmgr_deferred_next > now ? (unsigned)(qmgr_deferred_next - now) : 0;
	qmgr_deferred_timer = event_timer_add(qmgr_loop(), secs * 1000U + 50,
	    qmgr_deferred_fire, NULL);
	if (qmgr_deferred_timer == NULL)
		log_error(NULL, "cannot arm the deferred-queue timer: %m");
}

/* qmgr_deferred_due - a message will be due at t: scan no later */
void
qmgr_deferred_due(time_t t)
{
	if (qmgr_deferred_next == 0 || t < qmgr_deferred_next) {
		qmgr_deferred_next = t;
		qmgr_arm_deferred();
	}
}

/* qmgr_scan_deferred - bring in what is due; schedule the next scan */
static void
qmgr_scan_deferred(void)
{
	struct qmgr_dscan ds = { qmgr_now(), 0, false };
	time_t next;

	if (queue_scan(".", QUEUE_DEFERRED, qmgr_scan_deferred_cb, &ds) < 0)
		log_error(NULL, "cannot scan deferred/: %m");
	next = ds.now + (time_t)qmgr_settings.queue_run_delay;
	if (ds.full)
		next = ds.now + 1;
	else if (ds.next != 0 && ds.next < next)
		next = ds.next;
	qmgr_deferred_next = next;
	qmgr_arm_deferred();
	if (ds.now >= qmgr_incoming_next) {
		qmgr_incoming_next = ds.now + QMGR_INCOMING_AGE;
		(void)queue_scan(".", QUEUE_INCOMING, qmgr_incoming_cb, &ds.now);
	}
}

/* qmgr_work - scans (as due) and dispatch */
static void
qmgr_work(bool deferred_too)
{
	qmgr_scan_active();
	if (deferred_too || qmgr_now() >= qmgr_deferred_next)
		qmgr_scan_deferred();
	qmgr_deliver_dispatch();
}

static void
qmgr_deferred_fire(void *ctx UNUSED)
{
	qmgr_deferred_timer = NULL;
	qmgr_work(true);
}

/* qmgr_kick_fire - deferred work requested from inside a callback */
static void
qmgr_kick_fire(void *ctx UNUSED)
{
	bool more = qmgr_active_more;

	qmgr_kicked = false;
	if (more)
		qmgr_scan_active();
	qmgr_deliver_dispatch();
}

/* qmgr_kick - see qmgr.h */
void
qmgr_kick(void)
{
	if (qmgr_kicked)
		return;
	if (event_timer_add(qmgr_loop(), 0, qmgr_kick_fire, NULL) != NULL)
		qmgr_kicked = true;
}

/* qmgr_wakeup - a byte in the fifo: new mail, master's tick, the CLI */
static void
qmgr_wakeup(void)
{
	qmgr_work(false);
}

/* qmgr_serve - never called for a fifo service */
static void
qmgr_serve(const struct server_conn *conn UNUSED)
{
}

/*
 * qmgr_maps - open a list of map specs: one slot per spec, NULL for a
 * map that cannot be opened now (qmgr_resolve tries again, and defers
 * what needs it meanwhile: a missing alias table must not bounce mail)
 */
static struct map **
qmgr_maps(const char *param, const char *const **specs_r, size_t *n_r)
{
	const char *const *specs;
	struct map **maps;
	size_t n, i;

	specs = config_list(conf(), param, &n);
	maps = xcalloc(n + 1, sizeof(*maps));
	for (i = 0; i < n; i++) {
		const char *error = NULL;

		maps[i] = map_open(specs[i], 0, &error);
		if (maps[i] == NULL)
			log_warn(NULL, "%s: cannot open %s: %s (mail that needs "
			    "it is deferred until it can be opened)", param,
			    specs[i], error);
	}
	*specs_r = specs;
	*n_r = n;
	return maps;
}

/* qmgr_pre_jail - what must be read before the privilege drop (SRS secret) */
static void
qmgr_pre_jail(void)
{
	qmgr_resolve_pre_jail();
}

/* qmgr_post_jail - settings, limits, recovery, the first scan */
static void
qmgr_post_jail(void)
{
	const struct config *cfg = conf();
	struct qmgr_settings *s = &qmgr_settings;
	struct rlimit rl;
	time_t now = qmgr_now();

	s->mydestination = config_list(cfg, "mydestination",
	    &s->nmydestination);
	s->recipient_delimiter = config_str(cfg, "recipient_delimiter");
	s->local_transport = config_str(cfg, "local_transport");
	s->default_transport = config_str(cfg, "default_transport");
	s->relayhost = config_str(cfg, "relayhost");
	s->myhostname = config_str(cfg, "myhostname");
	s->double_bounce_rcpt = config_str(cfg, "2bounce_notice_recipient");
	s->allow_commands = config_bool(cfg, "allow_mail_to_commands");
	s->allow_files = config_bool(cfg, "allow_mail_to_files");
	s->min_backoff = config_time(cfg, "minimal_backoff_time");
	s->max_backoff = config_time(cfg, "maximal_backoff_time");
	if (s->max_backoff < s->min_backoff)
		s->max_backoff = s->min_backoff;
	if (s->min_backoff == 0)
		s->min_backoff = 1;
	s->queue_run_delay = config_time(cfg, "queue_run_delay");
	if (s->queue_run_delay == 0)
		s->queue_run_delay = 1;
	s->max_lifetime = config_time(cfg, "maximal_queue_lifetime");
	s->bounce_lifetime = config_time(cfg, "bounce_queue_lifetime");
	s->delay_warning = config_time(cfg, "delay_warning_time");
	s->bounce_size_limit = config_size(cfg, "bounce_size_limit");
	s->active_limit = config_int(cfg, "qmgr_message_active_limit");
	s->rcpt_limit = config_int(cfg, "qmgr_message_recipient_limit");
	s->dest_rcpt_limit = config_int(cfg,
	    "default_destination_recipient_limit");
	if (s->dest_rcpt_limit == 0 || s->dest_rcpt_limit >
	    DELIVER_PROTO_RCPT_MAX)
		s->dest_rcpt_limit = DELIVER_PROTO_RCPT_MAX;
	s->default_concurrency = config_int(cfg,
	    "default_destination_concurrency_limit");
	s->virtual_domains = config_list(cfg, "virtual_alias_domains",
	    &s->nvirtual_domains);
	s->alias_maps = qmgr_maps("alias_maps", &s->alias_specs,
	    &s->nalias_maps);
	s->virtual_maps = qmgr_maps("virtual_alias_maps", &s->virtual_specs,
	    &s->nvirtual_maps);
	s->transport_maps = qmgr_maps("transport_maps", &s->transport_specs,
	    &s->ntransport_maps);
	s->department_domains = config_list(cfg, "department_domains",
	    &s->ndepartment_domains);
	s->user_database = config_str(cfg, "user_database");
	qmgr_resolve_init();

	/* One open queue file per message in memory: use what we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
		qmgr_fd_limit = rl.rlim_cur > 2 * QMGR_FD_RESERVE ?
		    (unsigned long)rl.rlim_cur - QMGR_FD_RESERVE : 64;
	} else {
		qmgr_fd_limit = 900;
	}

	/* Recovery: a dead writer's files in incoming/. */
	(void)queue_scan(".", QUEUE_INCOMING, qmgr_incoming_cb, &now);
	qmgr_incoming_next = now + QMGR_INCOMING_AGE;
	qmgr_deferred_next = now;
	qmgr_kick();
	qmgr_arm_deferred();
	log_info(NULL, "started: active limit %lu messages, %lu recipients",
	    s->active_limit, s->rcpt_limit);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = qmgr_pre_jail,
		.post_jail = qmgr_post_jail,
		.serve = qmgr_serve,
		.wakeup = qmgr_wakeup,
		.multi = true,
	};
	char **args = xcalloc((size_t)argc + 3, sizeof(*args));
	int i;

	/*
	 * qmgr never exits for being idle (it holds the retry schedule);
	 * an operator's own "-o max_idle=..." later on the line still wins.
	 */
	args[0] = argv[0];
	args[1] = xstrdup("-o");
	args[2] = xstrdup("max_idle=0");
	for (i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	args[argc + 2] = NULL;
	return server_main(argc + 2, args, &ops);
}
