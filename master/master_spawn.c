/* SPDX-License-Identifier: MIT */
/*
 * master_spawn - starting workers, hearing from them, reaping them
 *
 * DESCRIPTION
 *	master_spawn() fork+execs one worker of a service: in the child the
 *	signal mask that the event loop set up is cleared, the status pipe's
 *	write end becomes fd 3 and the listeners fds 4.., every other fd is
 *	closed, POSTERN_LISTEN_FDS says how many listeners there are, and the
 *	program is exec'd with the standard options (see master(8)). The new
 *	process counts as available until it says otherwise.
 *
 *	Workers write fixed-size struct server_status records to their
 *	service's status pipe; a record for a pid that is not a worker of
 *	that service, or with an unknown state, is ignored (workers are
 *	unprivileged and not trusted).
 *
 *	master_recycle_all() (reload) sends SIGHUP to every worker that has
 *	reported; the skeleton finishes the connection in hand and exits.
 *
 *	master_reap() collects every exited child. It logs why a worker
 *	died unless it exited 0 or master is stopping (then master sent the
 *	signal). A worker that failed (non-zero exit or a signal) before it
 *	finished any work, or that exited within a second without doing
 *	anything, means the service is broken: it is throttled.
 *
 * SECURITY
 *	Runs as root. The child gets exactly the fds it needs; the privilege
 *	drop happens in the worker (lib/server.c, privsep_drop) after exec,
 *	so the worker's address space is fresh and master's memory (config,
 *	other services' state) never reaches it.
 */
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "server.h"

#include "master.h"

/* master_proc_find - the worker with this pid, or NULL */
struct master_proc *
master_proc_find(pid_t pid)
{
	struct master_proc *p;

	for (p = master.procs; p != NULL; p = p->next) {
		if (p->pid == pid)
			return p;
	}
	return NULL;
}

/* master_close_from - close every fd >= lowfd */
static void
master_close_from(int lowfd)
{
	long max;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > INT_MAX)
		max = 65536;
	for (fd = lowfd; fd < max; fd++)
		(void)close(fd);
}

/* master_child - in the new process: arrange the fds and exec */
static void NORETURN
master_child(struct master_svc *svc)
{
	int base = SERVER_LISTEN_FD + (int)svc->nlisteners, high_status;
	int *high = xcalloc(svc->nlisteners + 1, sizeof(*high));
	char count[16];
	sigset_t none;
	size_t i;

	/* master's fatal hook signals every worker: not from here. */
	log_set_fatal_hook(NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	if (access(svc->path, X_OK) < 0) {
		log_error(NULL, "cannot execute %s: %m", svc->path);
		_exit(127);
	}
	/*
	 * First move everything above the target range, then into place:
	 * a source fd may sit on a target number. dup2 leaves the new fd
	 * without close-on-exec, which is what the worker needs.
	 */
	if ((high_status = fcntl(svc->status_wr, F_DUPFD, base)) < 0)
		_exit(126);
	for (i = 0; i < svc->nlisteners; i++) {
		if ((high[i] = fcntl(svc->listeners[i].fd, F_DUPFD, base)) < 0)
			_exit(126);
	}
	if (dup2(high_status, SERVER_STATUS_FD) < 0)
		_exit(126);
	for (i = 0; i < svc->nlisteners; i++) {
		if (dup2(high[i], SERVER_LISTEN_FD + (int)i) < 0)
			_exit(126);
	}
	master_close_from(base);
	snprintf(count, sizeof(count), "%zu", svc->nlisteners);
	if (setenv(SERVER_LISTEN_FDS_ENV, count, 1) < 0)
		_exit(126);
	execv(svc->path, svc->args);
	_exit(127);
}

/* master_spawn - start one worker of svc */
int
master_spawn(struct master_svc *svc)
{
	struct master_proc *proc;
	pid_t pid;

	ASSERT(svc->active && svc->nlisteners > 0);
	master_tls_keys(false);
	if ((pid = fork()) < 0) {
		log_error(NULL, "service %s: fork: %m", svc->name);
		return -1;
	}
	if (pid == 0)
		master_child(svc);
	proc = xcalloc(1, sizeof(*proc));
	proc->pid = pid;
	proc->svc = svc;
	proc->available = true;
	clock_gettime(CLOCK_MONOTONIC, &proc->started);
	proc->next = master.procs;
	master.procs = proc;
	svc->procs++;
	svc->avail++;
	svc->starting++;
	log_debug(NULL, "service %s: spawned %s pid %ld", svc->name,
	    svc->path, (long)pid);
	return 0;
}

/* master_proc_recycle - SIGHUP to one worker that has its handler */
static void
master_proc_recycle(struct master_proc *p)
{
	p->recycle_pending = false;
	p->recycled = true;
	if (kill(p->pid, SIGHUP) < 0 && errno != ESRCH)
		log_warn(NULL, "kill %ld: %m", (long)p->pid);
}

/* master_status_record - one record from a worker */
static void
master_status_record(struct master_svc *svc, const struct server_status *st)
{
	struct master_proc *proc = master_proc_find(st->pid);

	if (proc == NULL || proc->svc != svc) {
		log_debug(NULL, "service %s: status from unknown pid %ld",
		    svc->name, (long)st->pid);
		return;
	}
	if (!proc->reported) {
		proc->reported = true;
		ASSERT(svc->starting > 0);
		svc->starting--;
	}
	if (proc->recycle_pending)
		master_proc_recycle(proc);
	switch (st->state) {
	case SERVER_STATUS_BUSY:
		if (proc->available) {
			proc->available = false;
			svc->avail--;
		}
		proc->busy_seen = true;
		svc->used = true;
		break;
	case SERVER_STATUS_AVAILABLE:
		if (!proc->available) {
			proc->available = true;
			svc->avail++;
			if (proc->busy_seen)
				proc->done++;
		}
		break;
	default:
		log_warn(NULL, "service %s: pid %ld sent unknown status %d",
		    svc->name, (long)st->pid, st->state);
		break;
	}
}

/* master_status_event - the status pipe of a service is readable */
void
master_status_event(void *ctx, int fd, unsigned events UNUSED)
{
	struct master_svc *svc = ctx;
	struct server_status st;
	size_t off;
	ssize_t n;

	for (;;) {
		n = read(fd, svc->status_buf + svc->status_len,
		    sizeof(svc->status_buf) - svc->status_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EAGAIN; EOF cannot happen: we hold the write end */
		svc->status_len += (size_t)n;
		for (off = 0; svc->status_len - off >= sizeof(st);
		    off += sizeof(st)) {
			memcpy(&st, svc->status_buf + off, sizeof(st));
			master_status_record(svc, &st);
		}
		memmove(svc->status_buf, svc->status_buf + off,
		    svc->status_len - off);
		svc->status_len -= off;
	}
	master_svc_update(svc);
}

/* master_reaped - one child is gone */
static void
master_reaped(pid_t pid, int status)
{
	struct master_proc **pp, *proc;
	struct master_svc *svc;
	struct timespec now;
	bool failed, pointless;
	long lived;		/* ms */

	for (pp = &master.procs; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->pid == pid)
			break;
	}
	if ((proc = *pp) == NULL)
		return;		/* not a worker (cannot happen) */
	*pp = proc->next;
	svc = proc->svc;
	clock_gettime(CLOCK_MONOTONIC, &now);
	lived = (long)(now.tv_sec - proc->started.tv_sec) * 1000 +
	    (now.tv_nsec - proc->started.tv_nsec) / 1000000;
	failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	pointless = !failed && proc->done == 0 && !proc->busy_seen &&
	    lived < 1000 && !proc->recycled;
	if (!master.stopping) {
		if (WIFSIGNALED(status))
			log_warn(NULL, "process %s pid %ld killed by signal %d",
			    svc->path, (long)pid, WTERMSIG(status));
		else if (failed)
			log_warn(NULL, "process %s pid %ld exit status %d",
			    svc->path, (long)pid, WEXITSTATUS(status));
		else if (pointless && svc->active)
			log_warn(NULL, "process %s pid %ld exited at once "
			    "without doing any work", svc->path, (long)pid);
		else
			log_debug(NULL, "process %s pid %ld exited",
			    svc->path, (long)pid);
	}
	ASSERT(svc->procs > 0);
	svc->procs--;
	if (proc->available) {
		ASSERT(svc->avail > 0);
		svc->avail--;
	}
	if (!proc->reported) {
		ASSERT(svc->starting > 0);
		svc->starting--;
	}
	if (svc->active && !master.stopping &&
	    ((failed && proc->done == 0) || pointless))
		master_svc_throttle(svc);
	free(proc);
	master_svc_proc_gone(svc);
}

/* master_reap - collect every child that exited (SIGCHLD) */
void
master_reap(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_reaped(pid, status);
	if (pid < 0 && errno != ECHILD)
		log_warn(NULL, "waitpid: %m");
}

/*
 * master_recycle_all - reload: every worker finishes what it is doing and
 * exits (lib/server.c), so new connections meet workers that read the
 * configuration and key files as they are now. A worker that has not
 * reported yet may not have its SIGHUP handler: it gets the signal with
 * its first status record.
 */
void
master_recycle_all(void)
{
	struct master_proc *p;

	for (p = master.procs; p != NULL; p = p->next) {
		if (p->recycled)
			continue;
		if (p->reported)
			master_proc_recycle(p);
		else
			p->recycle_pending = true;
	}
}

/* master_signal_all - send signo to every worker */
void
master_signal_all(int signo)
{
	struct master_proc *p;

	for (p = master.procs; p != NULL; p = p->next) {
		if (kill(p->pid, signo) < 0 && errno != ESRCH)
			log_warn(NULL, "kill %ld: %m", (long)p->pid);
	}
}
