/* SPDX-License-Identifier: MIT */
/* event_test - unit tests for event.c */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "macros.h"
#include "test.h"

static struct event_loop *loop;

/* now_ms - monotonic milliseconds */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A record of callbacks, to check their order. */
struct trace {
	int calls[32];
	unsigned events[32];
	size_t n;
};

static void
trace_add(struct trace *t, int what, unsigned events)
{
	if (t->n < N_ELEMENTS(t->calls)) {
		t->calls[t->n] = what;
		t->events[t->n] = events;
	}
	t->n++;
}

static struct trace trace;

static void
fd_cb(void *ctx, int fd, unsigned events)
{
	char c;

	(void)ctx;
	trace_add(&trace, fd, events);
	if ((events & EVENT_READ) != 0)
		TEST_ASSERT(read(fd, &c, 1) >= 0);
}

static void
test_fd_ready(void)
{
	int p[2], q[2];

	test_begin("fd readiness: read, write, modify, hangup");
	TEST_ASSERT(pipe(p) == 0 && pipe(q) == 0);
	memset(&trace, 0, sizeof(trace));
	TEST_ASSERT(event_fd_add(loop, p[0], EVENT_READ, fd_cb, NULL) == 0);
	TEST_ASSERT(event_loop_run_once(loop, 0) == 0);
	TEST_ASSERT(trace.n == 0);
	TEST_ASSERT(write(p[1], "x", 1) == 1);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(trace.n == 1 && trace.calls[0] == p[0] &&
	    trace.events[0] == EVENT_READ);

	/* Write readiness, then switched off with modify. */
	TEST_ASSERT(event_fd_add(loop, q[1], EVENT_WRITE, fd_cb, NULL) == 0);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(trace.n == 2 && trace.calls[1] == q[1] &&
	    trace.events[1] == EVENT_WRITE);
	TEST_ASSERT(event_fd_modify(loop, q[1], 0) == 0);
	TEST_ASSERT(event_loop_run_once(loop, 0) == 0);
	TEST_ASSERT(trace.n == 2);
	TEST_ASSERT(event_fd_remove(loop, q[1]) == 0);

	/* Registration errors. */
	errno = 0;
	TEST_ASSERT(event_fd_add(loop, p[0], EVENT_READ, fd_cb, NULL) == -1 &&
	    errno == EEXIST);
	TEST_ASSERT(event_fd_modify(loop, q[1], EVENT_READ) == -1 &&
	    errno == ENOENT);
	TEST_ASSERT(event_fd_remove(loop, q[1]) == -1 && errno == ENOENT);
	TEST_ASSERT(event_fd_remove(loop, 100000) == -1 && errno == ENOENT);
	TEST_ASSERT(event_fd_add(loop, -1, EVENT_READ, fd_cb, NULL) == -1);

	/* The writer goes away: READ plus ERROR (hangup). */
	close(p[1]);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(trace.n == 3 && trace.calls[2] == p[0] &&
	    trace.events[2] == (EVENT_READ | EVENT_ERROR));
	TEST_ASSERT(event_fd_remove(loop, p[0]) == 0);
	close(p[0]);
	close(q[0]);
	close(q[1]);
	test_end();
}

/* Two readable pipes; whichever callback runs first kills the other. */
struct victim {
	int rfd;
	int wfd;
	struct victim *other;
	int calls;
	bool dead;
};

static int late_calls;

static void
late_cb(void *ctx, int fd, unsigned events)
{
	(void)ctx;
	(void)fd;
	(void)events;
	late_calls++;
}

static int reuse_fds[2] = { -1, -1 };

static void
killer_cb(void *ctx, int fd, unsigned events)
{
	struct victim *v = ctx, *o = v->other;

	(void)fd;
	(void)events;
	v->calls++;
	if (o->dead)
		return;
	/* Remove and close the other, and reuse its fd number at once. */
	TEST_ASSERT(event_fd_remove(loop, o->rfd) == 0);
	close(o->rfd);
	close(o->wfd);
	o->dead = true;
	TEST_ASSERT(pipe(reuse_fds) == 0);
	if (reuse_fds[0] != o->rfd) {
		/* Force the same number so a stale event would hit it. */
		TEST_ASSERT(dup2(reuse_fds[0], o->rfd) == o->rfd);
		close(reuse_fds[0]);
		reuse_fds[0] = o->rfd;
	}
	/* Empty: only a stale event of the old fd could call late_cb now. */
	TEST_ASSERT(event_fd_add(loop, reuse_fds[0], EVENT_READ, late_cb,
	    NULL) == 0);
}

static void
test_remove_in_batch(void)
{
	struct victim a = { 0 }, b = { 0 };
	int pa[2], pb[2];

	test_begin("removing another fd from a callback in the same batch");
	TEST_ASSERT(pipe(pa) == 0 && pipe(pb) == 0);
	a.rfd = pa[0];
	a.wfd = pa[1];
	b.rfd = pb[0];
	b.wfd = pb[1];
	a.other = &b;
	b.other = &a;
	TEST_ASSERT(event_fd_add(loop, a.rfd, EVENT_READ, killer_cb, &a) == 0);
	TEST_ASSERT(event_fd_add(loop, b.rfd, EVENT_READ, killer_cb, &b) == 0);
	TEST_ASSERT(write(a.wfd, "x", 1) == 1 && write(b.wfd, "x", 1) == 1);
	late_calls = 0;
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	/* Exactly one ran; the other's stale event went nowhere. */
	TEST_ASSERT(a.calls + b.calls == 1);
	TEST_ASSERT(late_calls == 0);
	TEST_ASSERT(a.dead != b.dead);
	/* The new registration works on the next round (empty pipe: none). */
	TEST_ASSERT(write(reuse_fds[1], "y", 1) == 1);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(late_calls >= 1);
	TEST_ASSERT(event_fd_remove(loop, reuse_fds[0]) == 0);
	if (a.dead) {
		TEST_ASSERT(event_fd_remove(loop, b.rfd) == 0);
		close(b.rfd);
		close(b.wfd);
	} else {
		TEST_ASSERT(event_fd_remove(loop, a.rfd) == 0);
		close(a.rfd);
		close(a.wfd);
	}
	close(reuse_fds[0]);
	close(reuse_fds[1]);
	test_end();
}

static void
self_remove_cb(void *ctx, int fd, unsigned events)
{
	int *calls = ctx;

	(void)events;
	(*calls)++;
	TEST_ASSERT(event_fd_remove(loop, fd) == 0);
	close(fd);
}

static void
test_remove_self(void)
{
	int p[2], calls = 0;

	test_begin("a callback removes and closes its own fd");
	TEST_ASSERT(pipe(p) == 0);
	TEST_ASSERT(event_fd_add(loop, p[0], EVENT_READ, self_remove_cb,
	    &calls) == 0);
	TEST_ASSERT(write(p[1], "xy", 2) == 2);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(event_loop_run_once(loop, 10) == 0);
	TEST_ASSERT(calls == 1);
	close(p[1]);
	test_end();
}

/* Timers */
struct tmark {
	int id;
	struct event_timer **cancel;	/* a timer this one cancels */
	struct event_timer **self;	/* our own handle, removed when fired */
	bool stop;
};

static void
timer_cb(void *ctx)
{
	struct tmark *m = ctx;

	trace_add(&trace, m->id, 0);
	if (m->cancel != NULL)
		event_timer_remove(loop, m->cancel);
	if (m->self != NULL) {
		event_timer_remove(loop, m->self);
		TEST_ASSERT(*m->self == NULL);
	}
	if (m->stop)
		event_loop_stop(loop);
}

static void
test_timers(void)
{
	struct tmark m30 = { 30, NULL, NULL, true }, m10 = { 10, NULL, NULL,
	    false }, m11 = { 11, NULL, NULL, false }, m20 = { 20, NULL, NULL,
	    false }, m15 = { 15, NULL, NULL, false }, m12 = { 12, NULL, NULL,
	    false }, m13 = { 13, NULL, NULL, false };
	struct event_timer *t15, *t12, *t13, *tnull = NULL;
	int64_t t0, el;

	test_begin("timers: order, ties, cancel, cancel from a callback, stop");
	memset(&trace, 0, sizeof(trace));
	t0 = now_ms();
	TEST_ASSERT(event_timer_add(loop, 300, timer_cb, &m30) != NULL);
	TEST_ASSERT(event_timer_add(loop, 100, timer_cb, &m10) != NULL);
	TEST_ASSERT(event_timer_add(loop, 200, timer_cb, &m20) != NULL);
	t15 = event_timer_add(loop, 150, timer_cb, &m15);
	/* m11 fires at m10's time, after it (added later), and cancels m12. */
	m11.cancel = &t12;
	TEST_ASSERT(event_timer_add(loop, 100, timer_cb, &m11) != NULL);
	t12 = event_timer_add(loop, 100, timer_cb, &m12);
	/* m13 removes its own handle while firing. */
	t13 = event_timer_add(loop, 50, timer_cb, &m13);
	m13.self = &t13;
	event_timer_remove(loop, &t15);
	TEST_ASSERT(t15 == NULL);
	event_timer_remove(loop, &tnull);
	TEST_ASSERT(event_loop_run(loop) == 0);
	el = now_ms() - t0;
	TEST_ASSERT(trace.n == 5);
	TEST_ASSERT(trace.calls[0] == 13 && trace.calls[1] == 10 &&
	    trace.calls[2] == 11 && trace.calls[3] == 20 &&
	    trace.calls[4] == 30);
	TEST_ASSERT(t12 == NULL && t13 == NULL);
	TEST_ASSERT(el >= 300 && el < 10000);	/* upper bound loose: load */
	test_end();
}

/* rearm_cb - re-add a 0 ms timer: must not starve the round */
static int rearm_count;

static void
rearm_cb(void *ctx)
{
	(void)ctx;
	if (++rearm_count < 1000)
		(void)event_timer_add(loop, 0, rearm_cb, NULL);
}

static unsigned order_ms[200];
static unsigned order_last;
static int order_n, order_bad;

static void
order_cb(void *ctx)
{
	unsigned ms = *(unsigned *)ctx;

	if (order_n > 0 && ms < order_last)
		order_bad++;
	order_last = ms;
	order_n++;
}

static void
test_timer_rearm(void)
{
	struct event_timer *t;
	int i;

	test_begin("timers: a 0 ms timer re-armed from its callback waits a round");
	rearm_count = 0;
	TEST_ASSERT(event_timer_add(loop, 0, rearm_cb, NULL) != NULL);
	TEST_ASSERT(event_loop_run_once(loop, 0) == 0);
	TEST_ASSERT(rearm_count == 1);
	for (i = 0; i < 2000 && rearm_count < 1000; i++)
		TEST_ASSERT(event_loop_run_once(loop, 0) == 0);
	TEST_ASSERT(rearm_count == 1000);
	/* Many timers with cancels: the heap keeps them in order. */
	order_n = 0;
	order_bad = 0;
	for (i = 0; i < 200; i++) {
		order_ms[i] = (unsigned)(i * 7919 % 97) * 2;
		t = event_timer_add(loop, order_ms[i], order_cb, &order_ms[i]);
		if (i % 3 == 0)
			event_timer_remove(loop, &t);
	}
	for (i = 0; i < 1000 && order_n < 133; i++)
		TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(order_n == 133);
	TEST_ASSERT(order_bad == 0);
	test_end();
}

static void
signal_cb(void *ctx, int signo)
{
	int *got = ctx;

	*got = signo;
	event_loop_stop(loop);
}

static void
test_signal(void)
{
	sigset_t cur;
	int got = 0, got2 = 0;

	test_begin("signals through signalfd");
	TEST_ASSERT(event_signal_add(loop, SIGUSR1, signal_cb, &got) == 0);
	TEST_ASSERT(event_signal_add(loop, SIGUSR2, signal_cb, &got2) == 0);
	TEST_ASSERT(event_signal_add(loop, SIGKILL, signal_cb, &got) == -1);
	TEST_ASSERT(event_signal_add(loop, 0, signal_cb, &got) == -1);
	TEST_ASSERT(sigprocmask(SIG_BLOCK, NULL, &cur) == 0 &&
	    sigismember(&cur, SIGUSR1));
	TEST_ASSERT(raise(SIGUSR1) == 0);
	TEST_ASSERT(event_loop_run(loop) == 0);
	TEST_ASSERT(got == SIGUSR1 && got2 == 0);
	TEST_ASSERT(kill(getpid(), SIGUSR2) == 0);
	TEST_ASSERT(event_loop_run_once(loop, 1000) == 0);
	TEST_ASSERT(got2 == SIGUSR2);
	test_end();
}

static void
test_free(void)
{
	struct event_loop *l2;
	sigset_t cur;

	test_begin("event_loop_free cancels timers and unblocks signals");
	(void)event_timer_add(loop, 100000, timer_cb, NULL);
	event_loop_free(&loop);
	TEST_ASSERT(loop == NULL);
	event_loop_free(&loop);
	TEST_ASSERT(sigprocmask(SIG_BLOCK, NULL, &cur) == 0 &&
	    !sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2));
	/* A signal blocked before the loop stays blocked after it. */
	sigemptyset(&cur);
	sigaddset(&cur, SIGUSR2);
	sigprocmask(SIG_BLOCK, &cur, NULL);
	l2 = event_loop_new();
	TEST_ASSERT(l2 != NULL);
	TEST_ASSERT(event_signal_add(l2, SIGUSR2, signal_cb, NULL) == 0);
	event_loop_free(&l2);
	TEST_ASSERT(sigprocmask(SIG_BLOCK, NULL, &cur) == 0 &&
	    sigismember(&cur, SIGUSR2));
	test_end();
}

int
main(void)
{
	loop = event_loop_new();
	if (loop == NULL)
		return 99;
	test_fd_ready();
	test_remove_in_batch();
	test_remove_self();
	test_timers();
	test_timer_rearm();
	test_signal();
	test_free();
	return test_done();
}
