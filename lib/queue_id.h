/* SPDX-License-Identifier: MIT */
/*
 * queue_id - unique, time-sortable queue and session IDs
 *
 * An ID is QUEUE_ID_LEN characters from [0-9A-Z] (safe as a file name,
 * easy to grep): fixed-width microseconds since the epoch, then the pid,
 * then a per-process counter, all in the same base so that byte-wise order
 * is creation order (for IDs made on one host). Unique without inode
 * tricks: two processes differ in pid, one process by time and counter.
 * The base is 32 (digits [0-9A-V]): 11 time digits (microseconds, until
 * the year 3111), 5 pid digits, 2 counter digits; see queue_id.c.
 * queue_id_new() keeps per-process state and is not thread-safe.
 */
#ifndef POSTERN_QUEUE_ID_H
#define POSTERN_QUEUE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#define QUEUE_ID_LEN 18
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1)

/* queue_id_new - write a new NUL-terminated ID into buf */
void queue_id_new(char buf[QUEUE_ID_SIZE]);
/* queue_id_ok - true if p[0..len) is a well-formed ID (allow-list before a path) */
bool queue_id_ok(const char *p, size_t len);
/* queue_id_time - the creation time encoded in a well-formed ID */
bool queue_id_time(const char *id, struct timeval *tv_r);

#endif
