/* SPDX-License-Identifier: MIT */
/*
 * queue_id - unique, time-sortable queue and session IDs
 *
 * DESCRIPTION
 *	An ID is 18 base-32 digits from "0123456789ABCDEFGHIJKLMNOPQRSTUV"
 *	(a subset of [0-9A-Z] whose ASCII order is numeric order), most
 *	significant digit first:
 *
 *	    TTTTTTTTTTT  11 digits, 55 bits: microseconds since the epoch
 *	                 (good until the year 3111)
 *	    PPPPP         5 digits, 25 bits: the pid (Linux pid_max is at
 *	                 most 2^22)
 *	    CC            2 digits, 10 bits: a per-process counter
 *
 *	Fixed width makes byte-wise order equal to numeric order, so IDs
 *	sort by creation time; IDs of one process sort in creation order.
 *	Two processes alive at once differ in pid; getpid() is called for
 *	each ID, so a fork()ed child never reuses its parent's pid field.
 *
 *	Within a process the pair (time, counter) strictly increases: a new
 *	microsecond resets the counter, the same (or an earlier, after a
 *	clock step back) microsecond bumps it, and when it would overflow
 *	the time field is advanced by one microsecond instead. So the time
 *	in an ID may run a little ahead of the clock under extreme load or
 *	after a step back, never behind an earlier ID of the same process.
 *
 *	XXX a pid reused within the same microsecond (or within a clock step
 *	back) could repeat an ID; the kernel cycles through pid_max first.
 *
 *	queue_id_ok() allows exactly 18 digits of the alphabet above and
 *	nothing else, so an ID that passes is safe as a file name.
 */
#include <sys/time.h>
#include <sys/types.h>

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "macros.h"
#include "queue_id.h"

#define QUEUE_ID_TIME_DIGITS	11
#define QUEUE_ID_PID_DIGITS	5
#define QUEUE_ID_COUNT_DIGITS	2
#define QUEUE_ID_BITS		5	/* per digit */
#define QUEUE_ID_COUNT_MAX	(1u << (QUEUE_ID_COUNT_DIGITS * QUEUE_ID_BITS))
#define QUEUE_ID_PID_MAX	(1ul << (QUEUE_ID_PID_DIGITS * QUEUE_ID_BITS))
#define QUEUE_ID_TIME_MAX	(1ull << (QUEUE_ID_TIME_DIGITS * QUEUE_ID_BITS))

static const char queue_id_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

static uint64_t queue_id_last_us;
static unsigned int queue_id_counter;

/* queue_id_put - write value as n base-32 digits, most significant first */
static void
queue_id_put(char *p, uint64_t value, unsigned int n)
{
	while (n-- > 0) {
		p[n] = queue_id_digits[value & 31];
		value >>= QUEUE_ID_BITS;
	}
}

/* queue_id_digit - the value of one digit, or -1 */
static int
queue_id_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'V')
		return c - 'A' + 10;
	return -1;
}

/* queue_id_new - make a new ID */
void
queue_id_new(char buf[QUEUE_ID_SIZE])
{
	struct timeval tv;
	uint64_t now;
	pid_t pid = getpid();

	ASSERT(pid > 0 && (unsigned long)pid < QUEUE_ID_PID_MAX);
	(void)gettimeofday(&tv, NULL);
	now = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	if (now > queue_id_last_us) {
		queue_id_last_us = now;
		queue_id_counter = 0;
	} else if (++queue_id_counter >= QUEUE_ID_COUNT_MAX) {
		queue_id_last_us++;
		queue_id_counter = 0;
	}
	ASSERT(queue_id_last_us < QUEUE_ID_TIME_MAX);
	queue_id_put(buf, queue_id_last_us, QUEUE_ID_TIME_DIGITS);
	queue_id_put(buf + QUEUE_ID_TIME_DIGITS, (uint64_t)pid,
	    QUEUE_ID_PID_DIGITS);
	queue_id_put(buf + QUEUE_ID_TIME_DIGITS + QUEUE_ID_PID_DIGITS,
	    queue_id_counter, QUEUE_ID_COUNT_DIGITS);
	buf[QUEUE_ID_LEN] = '\0';
}

/* queue_id_ok - strict allow-list check of p[0..len) */
bool
queue_id_ok(const char *p, size_t len)
{
	size_t i;

	if (p == NULL || len != QUEUE_ID_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (queue_id_digit(p[i]) < 0)
			return false;
	return true;
}

/* queue_id_time - decode the creation time of a well-formed ID */
bool
queue_id_time(const char *id, struct timeval *tv_r)
{
	uint64_t us = 0;
	size_t i;

	if (id == NULL || strnlen(id, QUEUE_ID_SIZE) != QUEUE_ID_LEN ||
	    !queue_id_ok(id, QUEUE_ID_LEN))
		return false;
	for (i = 0; i < QUEUE_ID_TIME_DIGITS; i++)
		us = us << QUEUE_ID_BITS | (uint64_t)queue_id_digit(id[i]);
	tv_r->tv_sec = (time_t)(us / 1000000u);
	tv_r->tv_usec = (suseconds_t)(us % 1000000u);
	return true;
}
