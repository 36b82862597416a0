/* SPDX-License-Identifier: MIT */
/*
 * event - an epoll event loop for daemons that multiplex connections
 *
 * Callbacks run from event_loop_run(); a callback may add or remove any
 * fd or timer, including its own. Signals are delivered through signalfd,
 * so a signal callback runs in normal context (it may allocate and log).
 * Timers have millisecond resolution on CLOCK_MONOTONIC.
 * Registration failures return -1 with errno; nothing here exits.
 *
 * Remove an fd before closing it. EPOLLERR/EPOLLHUP reach the callback as
 * EVENT_ERROR plus the registered READ/WRITE bits, even for an fd
 * registered with no events, which must then be removed or the loop
 * spins. A timer's callback may cancel its own timer (that only NULLs the
 * pointer). Signals given to event_signal_add() stay blocked until
 * event_loop_free(), and a blocked mask is inherited across fork and exec:
 * reset it in children. event_loop_free() must not be called from a
 * callback.
 */
#ifndef POSTERN_EVENT_H
#define POSTERN_EVENT_H

#include <stdbool.h>

#define EVENT_READ 1
#define EVENT_WRITE 2
#define EVENT_ERROR 4		/* reported, never requested */

struct event_loop;
struct event_timer;

typedef void event_fd_cb(void *ctx, int fd, unsigned events);
typedef void event_timer_cb(void *ctx);
typedef void event_signal_cb(void *ctx, int signo);

struct event_loop *event_loop_new(void);
void event_loop_free(struct event_loop **loopp);

/* event_fd_add - watch fd for events (EVENT_READ|EVENT_WRITE); one registration per fd */
int event_fd_add(struct event_loop *loop, int fd, unsigned events,
    event_fd_cb *cb, void *ctx);
int event_fd_modify(struct event_loop *loop, int fd, unsigned events);
int event_fd_remove(struct event_loop *loop, int fd);

/* event_timer_add - call cb once after msecs; the handle is freed after it fires */
struct event_timer *event_timer_add(struct event_loop *loop, unsigned msecs,
    event_timer_cb *cb, void *ctx);
/* event_timer_remove - cancel a pending timer (NULL allowed); NULLs *timerp */
void event_timer_remove(struct event_loop *loop, struct event_timer **timerp);

/* event_signal_add - block signo and deliver it to cb through the loop */
int event_signal_add(struct event_loop *loop, int signo, event_signal_cb *cb,
    void *ctx);

/* event_loop_run - dispatch until event_loop_stop(); -1 on epoll failure */
int event_loop_run(struct event_loop *loop);
/* event_loop_run_once - dispatch what is ready, waiting at most msecs (-1 = forever) */
int event_loop_run_once(struct event_loop *loop, int msecs);
void event_loop_stop(struct event_loop *loop);

#endif
