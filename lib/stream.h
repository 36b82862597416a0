/* SPDX-License-Identifier: MIT */
/*
 * stream - buffered I/O on sockets, pipes and files, with deadlines
 *
 * A stream wraps one file descriptor (set non-blocking) with a read buffer
 * and a write buffer. Every blocking operation waits at most the stream's
 * timeout (poll(2)); expiry is STREAM_TIMEOUT. Errors are sticky: after an
 * I/O error or timeout every later operation fails the same way at once.
 *
 * Reading: stream_read_line() returns one line INCLUDING its terminating
 * LF (and any CR before it), so callers see exactly what came on the wire.
 * A line longer than max bytes is STREAM_TOO_LONG, never truncated: the
 * rest of that line is skipped silently up to and including its LF by the
 * next read, so a protocol can answer "line too long" and carry on. At end
 * of file a partial last line is returned with STREAM_EOF and the line
 * holds those bytes (callers usually treat it as a dropped connection).
 * NUL bytes are data; the caller decides whether they are allowed.
 * max counts every byte returned, CR and LF included; on TOO_LONG the line
 * is empty. A line str with a smaller maximum of its own also gives
 * TOO_LONG. End of file is sticky but not an error (stream_error() stays
 * STREAM_OK and writing still works). A read that cannot fit into the
 * caller's str (its maximum) fails with STREAM_ERROR and errno E2BIG,
 * consumes nothing and does not set the sticky error. The rest of a
 * too-long line is skipped by whichever read comes next.
 *
 * Writing: writes are buffered and go out on stream_flush() (or when the
 * buffer is full); stream_flush() returns -1 on error or timeout.
 * stream_free() does not flush: unflushed output is dropped. Sockets are
 * written with MSG_NOSIGNAL; a process writing to pipes must ignore
 * SIGPIPE itself. Failed calls leave errno set (ETIMEDOUT for a timeout),
 * also when they fail at once because of the sticky error.
 *
 * TLS slots in with stream_set_io(): the I/O functions then replace
 * read(2)/write(2). They return bytes done, 0 at EOF (read), or -1 with
 * errno EAGAIN and *want_r set to STREAM_WANT_READ or STREAM_WANT_WRITE
 * when they must wait for the fd, or -1 with another errno on failure.
 *
 * Nothing here ends the process; bad input is a return value.
 */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "macros.h"
#include "str.h"

enum stream_result {
	STREAM_OK,
	STREAM_EOF,
	STREAM_TOO_LONG,
	STREAM_TIMEOUT,
	STREAM_ERROR,
};

enum stream_want {
	STREAM_WANT_READ = 1,
	STREAM_WANT_WRITE = 2,
};

struct stream_io {
	ssize_t (*read)(void *ctx, void *buf, size_t len, enum stream_want *want_r);
	ssize_t (*write)(void *ctx, const void *buf, size_t len, enum stream_want *want_r);
};

struct stream;

/*
 * stream_new - wrap fd; the stream owns fd and closes it in stream_free()
 * unless STREAM_NO_CLOSE is given. timeout is in seconds (0 = wait forever).
 */
#define STREAM_NO_CLOSE 1
struct stream *stream_new(int fd, unsigned timeout, int flags);
void stream_free(struct stream **sp);
int stream_fd(const struct stream *s);
void stream_set_timeout(struct stream *s, unsigned timeout);

/* stream_set_io - read/write through io (TLS); ctx is borrowed */
void stream_set_io(struct stream *s, const struct stream_io *io, void *ctx);

/* stream_read_line - see above; line is cleared first */
enum stream_result stream_read_line(struct stream *s, struct str *line, size_t max);
/* stream_read_n - exactly n bytes appended to out (EOF if fewer came) */
enum stream_result stream_read_n(struct stream *s, struct str *out, size_t n);
/* stream_read_some - whatever is available (at least 1 byte), at most max, appended */
enum stream_result stream_read_some(struct stream *s, struct str *out, size_t max);
/* stream_pending - bytes already buffered for reading (pipelined input) */
size_t stream_pending(const struct stream *s);
/* stream_discard_input - drop buffered input (after STARTTLS) */
void stream_discard_input(struct stream *s);

int stream_write(struct stream *s, const void *data, size_t len);
int stream_puts(struct stream *s, const char *cs);
int stream_printf(struct stream *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
int stream_flush(struct stream *s);

/* stream_error - the sticky state: STREAM_OK, STREAM_TIMEOUT or STREAM_ERROR */
enum stream_result stream_error(const struct stream *s);
/* stream_result_name - "ok", "eof", "line too long", "timeout", "error" */
const char *stream_result_name(enum stream_result r);

#endif
