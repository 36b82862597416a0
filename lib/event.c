/* SPDX-License-Identifier: MIT */
/*
 * event - an epoll event loop for daemons that multiplex connections
 *
 * DESCRIPTION
 *	See event.h for the contract.
 *
 *	File descriptors: registrations live in a table indexed by fd. Each
 *	registration gets a fresh generation number, and the epoll data of
 *	the fd carries (generation << 32 | fd). Before each ready event of a
 *	batch is dispatched, the table entry must still exist with the same
 *	generation, so an fd removed (or removed and re-added, perhaps as a
 *	new fd with the same number) by an earlier callback of the same batch
 *	never sees a stale event. The events passed are also masked with
 *	what is registered now, so event_fd_modify() takes effect at once.
 *	epoll is level-triggered. EPOLLERR and EPOLLHUP are reported as
 *	EVENT_ERROR plus the registered READ/WRITE bits, so a callback that
 *	only reads still finds EOF or the error; a registration with no
 *	events still gets EVENT_ERROR and must then remove the fd, or the
 *	loop spins.
 *
 *	Callers must remove an fd before closing it: epoll forgets a closed
 *	fd by itself only when no duplicate of it remains open, and the table
 *	entry would stay behind.
 *
 *	Timers: a binary min-heap ordered by (expiry, sequence number), so
 *	timers due at the same millisecond fire in the order they were added.
 *	Each dispatch round fires only timers that existed when it started,
 *	so a callback that re-arms a 0 ms timer cannot starve fds. The timer
 *	being fired is out of the heap while its callback runs; removing it
 *	from its own callback only clears the caller's pointer, and it is
 *	freed when the callback returns.
 *
 *	Signals: event_signal_add() blocks the signal and adds it to one
 *	signalfd, which is an ordinary registration in the table. The
 *	signals the loop blocked are unblocked again in event_loop_free(). A
 *	blocked signal mask survives fork and exec: a process that spawns
 *	children must reset the mask in the child.
 *
 *	Nothing here exits; registration failures are -1 with errno.
 *	event_loop_free() must not be called from a callback.
 *
 * SEE ALSO
 *	epoll(7), signalfd(2); Postfix src/util/events.c.
 */
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "event.h"

#define EVENT_BATCH	64
/* Highest signal number that signalfd can deliver through the table. */
#define EVENT_MAX_SIGNO	64

struct event_fd_reg {
	event_fd_cb *cb;	/* NULL = free slot */
	void *ctx;
	unsigned events;
	uint32_t gen;
};

struct event_timer {
	int64_t when;		/* CLOCK_MONOTONIC ms */
	uint64_t seq;
	size_t idx;		/* position in the heap */
	event_timer_cb *cb;
	void *ctx;
};

struct event_signal_reg {
	event_signal_cb *cb;
	void *ctx;
};

struct event_loop {
	int epfd;
	struct event_fd_reg *fds;
	size_t nfds;		/* table size: valid indexes are fds */
	uint32_t gen;

	struct event_timer **heap;
	size_t nheap;
	size_t heap_cap;
	uint64_t timer_seq;
	struct event_timer *firing;	/* the timer whose callback runs */

	int sigfd;
	sigset_t sigmask;	/* the signals in sigfd */
	sigset_t sig_we_blocked;	/* to unblock in event_loop_free */
	struct event_signal_reg sigs[EVENT_MAX_SIGNO + 1];

	bool stop;
};

/* event_now_ms - CLOCK_MONOTONIC in milliseconds */
static int64_t
event_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* event_loop_new - make a loop; NULL with errno if epoll fails */
struct event_loop *
event_loop_new(void)
{
	struct event_loop *loop;
	int epfd;

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return NULL;
	loop = xmalloc(sizeof(*loop));
	loop->epfd = epfd;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	sigemptyset(&loop->sig_we_blocked);
	return loop;
}

/* event_loop_free - close the loop, cancel timers, unblock our signals */
void
event_loop_free(struct event_loop **loopp)
{
	struct event_loop *loop = *loopp;
	size_t i;

	if (loop == NULL)
		return;
	for (i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->fds);
	if (loop->sigfd >= 0)
		(void)close(loop->sigfd);
	(void)sigprocmask(SIG_UNBLOCK, &loop->sig_we_blocked, NULL);
	(void)close(loop->epfd);
	free(loop);
	*loopp = NULL;
}

/* event_epoll_mask - EVENT_* to EPOLL* */
static uint32_t
event_epoll_mask(unsigned events)
{
	uint32_t ev = 0;

	if ((events & EVENT_READ) != 0)
		ev |= EPOLLIN;
	if ((events & EVENT_WRITE) != 0)
		ev |= EPOLLOUT;
	return ev;
}

/* event_fd_lookup - the live registration of fd, or NULL */
static struct event_fd_reg *
event_fd_lookup(struct event_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].cb == NULL)
		return NULL;
	return &loop->fds[fd];
}

/* event_fd_add - register fd */
int
event_fd_add(struct event_loop *loop, int fd, unsigned events,
    event_fd_cb *cb, void *ctx)
{
	struct epoll_event ev;
	struct event_fd_reg *reg;
	size_t n;

	ASSERT(cb != NULL);
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (event_fd_lookup(loop, fd) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if ((size_t)fd >= loop->nfds) {
		n = MAX((size_t)fd + 1, loop->nfds * 2);
		loop->fds = xreallocarray(loop->fds, n, sizeof(*loop->fds));
		memset(loop->fds + loop->nfds, 0,
		    (n - loop->nfds) * sizeof(*loop->fds));
		loop->nfds = n;
	}
	reg = &loop->fds[fd];
	memset(&ev, 0, sizeof(ev));
	ev.events = event_epoll_mask(events);
	ev.data.u64 = (uint64_t)(loop->gen + 1) << 32 | (uint32_t)fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	reg->gen = ++loop->gen;
	reg->cb = cb;
	reg->ctx = ctx;
	reg->events = events & (EVENT_READ | EVENT_WRITE);
	return 0;
}

/* event_fd_modify - change what fd is watched for */
int
event_fd_modify(struct event_loop *loop, int fd, unsigned events)
{
	struct event_fd_reg *reg;
	struct epoll_event ev;

	if ((reg = event_fd_lookup(loop, fd)) == NULL) {
		errno = ENOENT;
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = event_epoll_mask(events);
	ev.data.u64 = (uint64_t)reg->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -1;
	reg->events = events & (EVENT_READ | EVENT_WRITE);
	return 0;
}

/* event_fd_remove - forget fd (safe from any callback) */
int
event_fd_remove(struct event_loop *loop, int fd)
{
	struct event_fd_reg *reg;
	int ret = 0;

	if ((reg = event_fd_lookup(loop, fd)) == NULL) {
		errno = ENOENT;
		return -1;
	}
	/*
	 * The entry goes even if epoll_ctl fails (the fd was closed
	 * already): a stale registration would be worse.
	 */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		ret = -1;
	memset(reg, 0, sizeof(*reg));
	return ret;
}

/* event_heap_less - does a fire before b */
static bool
event_heap_less(const struct event_timer *a, const struct event_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* event_heap_set - put t at heap position i */
static void
event_heap_set(struct event_loop *loop, size_t i, struct event_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

/* event_heap_up - restore the heap order from i towards the root */
static void
event_heap_up(struct event_loop *loop, size_t i)
{
	struct event_timer *t = loop->heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!event_heap_less(t, loop->heap[parent]))
			break;
		event_heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	event_heap_set(loop, i, t);
}

/* event_heap_down - restore the heap order from i towards the leaves */
static void
event_heap_down(struct event_loop *loop, size_t i)
{
	struct event_timer *t = loop->heap[i];
	size_t child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= loop->nheap)
			break;
		if (child + 1 < loop->nheap &&
		    event_heap_less(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!event_heap_less(loop->heap[child], t))
			break;
		event_heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	event_heap_set(loop, i, t);
}

/* event_heap_delete - take the timer at position i out of the heap */
static void
event_heap_delete(struct event_loop *loop, size_t i)
{
	struct event_timer *last;

	ASSERT(i < loop->nheap);
	last = loop->heap[--loop->nheap];
	if (i == loop->nheap)
		return;
	event_heap_set(loop, i, last);
	if (i > 0 && event_heap_less(last, loop->heap[(i - 1) / 2]))
		event_heap_up(loop, i);
	else
		event_heap_down(loop, i);
}

/* event_timer_add - a one-shot timer */
struct event_timer *
event_timer_add(struct event_loop *loop, unsigned msecs, event_timer_cb *cb,
    void *ctx)
{
	struct event_timer *t;

	ASSERT(cb != NULL);
	if (loop->nheap == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap == 0 ? 16 : loop->heap_cap * 2;
		loop->heap = xreallocarray(loop->heap, loop->heap_cap,
		    sizeof(*loop->heap));
	}
	t = xmalloc(sizeof(*t));
	t->when = event_now_ms() + msecs;
	t->seq = loop->timer_seq++;
	t->cb = cb;
	t->ctx = ctx;
	loop->heap[loop->nheap] = t;
	event_heap_up(loop, loop->nheap++);
	return t;
}

/* event_timer_remove - cancel a timer */
void
event_timer_remove(struct event_loop *loop, struct event_timer **timerp)
{
	struct event_timer *t = *timerp;

	if (t == NULL)
		return;
	*timerp = NULL;
	/* Its own callback is running: it is freed when that returns. */
	if (t == loop->firing)
		return;
	ASSERT(t->idx < loop->nheap && loop->heap[t->idx] == t);
	event_heap_delete(loop, t->idx);
	free(t);
}

/* event_timers_run - fire the timers due now that existed at the start */
static void
event_timers_run(struct event_loop *loop)
{
	uint64_t seq_limit = loop->timer_seq;
	int64_t now = event_now_ms();
	struct event_timer *t;

	while (loop->nheap > 0 && !loop->stop) {
		t = loop->heap[0];
		if (t->when > now)
			break;
		/*
		 * Added by a callback of this round: leave it for the next.
		 * No older due timer can sort after it: a new timer expires
		 * no earlier than this round's now, and ties go by sequence.
		 */
		if (t->seq >= seq_limit)
			break;
		event_heap_delete(loop, t->idx);
		loop->firing = t;
		t->cb(t->ctx);
		loop->firing = NULL;
		free(t);
	}
}

/* event_signal_dispatch - read the signalfd and call the signal callbacks */
static void
event_signal_dispatch(void *ctx, int fd, unsigned events)
{
	struct event_loop *loop = ctx;
	struct signalfd_siginfo si;
	struct event_signal_reg *reg;
	ssize_t n;

	(void)events;
	for (;;) {
		n = read(fd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			break;
		if (si.ssi_signo > EVENT_MAX_SIGNO)
			continue;
		reg = &loop->sigs[si.ssi_signo];
		if (reg->cb != NULL)
			reg->cb(reg->ctx, (int)si.ssi_signo);
		/* A callback may have stopped the loop; keep the rest queued. */
		if (loop->stop || loop->sigfd != fd)
			break;
	}
}

/* event_signal_add - deliver signo to cb through the loop */
int
event_signal_add(struct event_loop *loop, int signo, event_signal_cb *cb,
    void *ctx)
{
	sigset_t one, old, mask;
	int fd;

	ASSERT(cb != NULL);
	if (signo <= 0 || signo > EVENT_MAX_SIGNO || signo == SIGKILL ||
	    signo == SIGSTOP) {
		errno = EINVAL;
		return -1;
	}
	mask = loop->sigmask;
	if (sigaddset(&mask, signo) < 0)
		return -1;
	sigemptyset(&one);
	sigaddset(&one, signo);
	if (sigprocmask(SIG_BLOCK, &one, &old) < 0)
		return -1;
	if (!sigismember(&old, signo))
		sigaddset(&loop->sig_we_blocked, signo);
	if ((fd = signalfd(loop->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return -1;
	if (loop->sigfd < 0) {
		if (event_fd_add(loop, fd, EVENT_READ, event_signal_dispatch,
		    loop) < 0) {
			int save = errno;

			(void)close(fd);
			errno = save;
			return -1;
		}
		loop->sigfd = fd;
	}
	loop->sigmask = mask;
	loop->sigs[signo].cb = cb;
	loop->sigs[signo].ctx = ctx;
	return 0;
}

/* event_wait_ms - how long epoll may sleep given msecs and the timers */
static int
event_wait_ms(struct event_loop *loop, int msecs)
{
	int64_t left;

	if (loop->nheap == 0)
		return msecs;
	left = loop->heap[0]->when - event_now_ms();
	if (left < 0)
		left = 0;
	if (left > INT_MAX)
		left = INT_MAX;
	if (msecs >= 0 && msecs < left)
		return msecs;
	return (int)left;
}

/* event_loop_run_once - one round: wait, fd callbacks, due timers */
int
event_loop_run_once(struct event_loop *loop, int msecs)
{
	struct epoll_event evs[EVENT_BATCH];
	struct event_fd_reg *reg;
	unsigned events;
	uint32_t gen;
	int fd, i, n;

	loop->stop = false;
	n = epoll_wait(loop->epfd, evs, EVENT_BATCH, event_wait_ms(loop, msecs));
	if (n < 0) {
		if (errno != EINTR)
			return -1;
		n = 0;
	}
	for (i = 0; i < n && !loop->stop; i++) {
		fd = (int)(uint32_t)evs[i].data.u64;
		gen = (uint32_t)(evs[i].data.u64 >> 32);
		/* Removed or replaced by an earlier callback of this batch? */
		if ((reg = event_fd_lookup(loop, fd)) == NULL || reg->gen != gen)
			continue;
		events = 0;
		if ((evs[i].events & EPOLLIN) != 0)
			events |= EVENT_READ;
		if ((evs[i].events & EPOLLOUT) != 0)
			events |= EVENT_WRITE;
		events &= reg->events;
		if ((evs[i].events & (EPOLLERR | EPOLLHUP)) != 0)
			events |= EVENT_ERROR | reg->events;
		if (events == 0)
			continue;
		reg->cb(reg->ctx, fd, events);
	}
	event_timers_run(loop);
	return 0;
}

/* event_loop_run - dispatch until event_loop_stop() */
int
event_loop_run(struct event_loop *loop)
{
	do {
		if (event_loop_run_once(loop, -1) < 0)
			return -1;
	} while (!loop->stop);
	return 0;
}

/*
 * event_loop_stop - end the current round after this callback, and make
 * event_loop_run() return. Events not yet dispatched stay pending (epoll
 * is level-triggered) for the next round.
 */
void
event_loop_stop(struct event_loop *loop)
{
	loop->stop = true;
}
