/* SPDX-License-Identifier: MIT */
/*
 * stream - buffered I/O on sockets, pipes and files, with deadlines
 *
 * DESCRIPTION
 *	See stream.h for the contract. The fd is put in non-blocking mode;
 *	every operation first tries the I/O and only on EAGAIN waits with
 *	poll(2), for at most what is left of that operation's deadline
 *	(now + timeout, fixed when the public call starts). An I/O hook
 *	(TLS) is always called before polling, so data it has already
 *	decrypted is never left waiting for the fd.
 *
 *	The read buffer is a fixed-size array with a read offset (rpos) and
 *	an end offset (rend). Consuming a line only moves rpos; the unread
 *	tail is moved to the front only when the buffer is full at its end,
 *	so a run of pipelined lines costs one memchr and one copy each. A
 *	line longer than the buffer is copied out piece by piece, so the
 *	buffer never grows and memchr never rescans bytes already searched.
 *
 *	The write buffer collects small writes; a write that does not fit
 *	flushes it, and a write at least as large as the buffer goes out
 *	directly without a copy.
 *
 *	Errors: an I/O error or an expired deadline is recorded once and
 *	returned by every later call (the sticky error), with errno set to
 *	the original error (ETIMEDOUT for a timeout). End of file is sticky
 *	too, but it is not an error: writes still work after reading EOF.
 *	Calls that fail because of the caller's own limits (an out str with
 *	a maximum too small) return STREAM_ERROR with errno E2BIG without
 *	consuming input and without setting the sticky error.
 *
 *	SIGPIPE: sockets are written with send(MSG_NOSIGNAL). Other fds use
 *	write(2); a process that writes to pipes must ignore SIGPIPE itself
 *	(the server skeleton does).
 *
 *	Nothing here ends the process except a caller's bug (ASSERT).
 *
 * SEE ALSO
 *	Postfix src/util/vstream.c, src/global/smtp_stream.c; Dovecot
 *	src/lib/istream.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "stream.h"

#define STREAM_RBUF_SIZE	8192
#define STREAM_WBUF_SIZE	16384
/* Largest single read straight into a caller's str (stream_read_n). */
#define STREAM_DIRECT_CHUNK	(256 * 1024)

struct stream {
	int fd;
	bool close_fd;
	bool is_socket;
	bool eof;		/* read side saw end of file (sticky) */
	bool skip_line;		/* drop input up to the next LF first */
	unsigned timeout;	/* seconds, 0 = none */
	enum stream_result error;	/* STREAM_OK, _TIMEOUT or _ERROR */
	int error_errno;

	const struct stream_io *io;
	void *io_ctx;

	char *rbuf;
	size_t rsize;
	size_t rpos;		/* first unread byte */
	size_t rend;		/* end of buffered data */

	char *wbuf;
	size_t wsize;
	size_t wend;		/* bytes buffered for writing */
};

/* stream_new - wrap an fd */
struct stream *
stream_new(int fd, unsigned timeout, int flags)
{
	struct stream *s = xmalloc(sizeof(*s));
	struct stat st;
	int fl;

	s->fd = fd;
	s->close_fd = (flags & STREAM_NO_CLOSE) == 0;
	s->timeout = timeout;
	s->error = STREAM_OK;
	s->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	/*
	 * A failure here (bad fd) is not reported: the first I/O call
	 * fails with EBADF and makes it the sticky error.
	 */
	if ((fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_NONBLOCK) == 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	s->rsize = STREAM_RBUF_SIZE;
	s->rbuf = xmalloc(s->rsize);
	s->wsize = STREAM_WBUF_SIZE;
	s->wbuf = xmalloc(s->wsize);
	return s;
}

/* stream_free - release the stream, dropping unflushed output */
void
stream_free(struct stream **sp)
{
	struct stream *s = *sp;

	if (s == NULL)
		return;
	if (s->close_fd && s->fd >= 0)
		(void)close(s->fd);
	free(s->rbuf);
	free(s->wbuf);
	free(s);
	*sp = NULL;
}

/* stream_fd - the wrapped fd */
int
stream_fd(const struct stream *s)
{
	return s->fd;
}

/* stream_set_timeout - change the per-operation timeout */
void
stream_set_timeout(struct stream *s, unsigned timeout)
{
	s->timeout = timeout;
}

/* stream_set_io - route I/O through hooks (NULL io = the fd again) */
void
stream_set_io(struct stream *s, const struct stream_io *io, void *ctx)
{
	s->io = io;
	s->io_ctx = io != NULL ? ctx : NULL;
}

/* stream_now_ms - CLOCK_MONOTONIC in milliseconds */
static int64_t
stream_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* stream_deadline - the deadline of an operation starting now, -1 = none */
static int64_t
stream_deadline(const struct stream *s)
{
	if (s->timeout == 0)
		return -1;
	return stream_now_ms() + (int64_t)s->timeout * 1000;
}

/* stream_fail - record the sticky error and return it */
static enum stream_result
stream_fail(struct stream *s, enum stream_result r, int errnum)
{
	if (s->error == STREAM_OK) {
		s->error = r;
		s->error_errno = errnum;
	}
	errno = s->error_errno;
	return s->error;
}

/* stream_sticky - the sticky error, with errno restored */
static enum stream_result
stream_sticky(const struct stream *s)
{
	if (s->error != STREAM_OK)
		errno = s->error_errno;
	return s->error;
}

/* stream_wait - poll for want until the deadline; -1 and sticky on failure */
static int
stream_wait(struct stream *s, enum stream_want want, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int ms, n;

	for (;;) {
		if (deadline < 0)
			ms = -1;
		else {
			left = deadline - stream_now_ms();
			if (left <= 0) {
				(void)stream_fail(s, STREAM_TIMEOUT, ETIMEDOUT);
				return -1;
			}
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = s->fd;
		pfd.events = want == STREAM_WANT_WRITE ? POLLOUT : POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		/* POLLERR, POLLHUP, POLLNVAL: the next I/O call says why. */
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			(void)stream_fail(s, STREAM_ERROR, errno);
			return -1;
		}
	}
}

/* stream_raw_read - one read through the hook or the fd */
static ssize_t
stream_raw_read(struct stream *s, void *buf, size_t len,
    enum stream_want *want_r)
{
	ssize_t n;

	*want_r = STREAM_WANT_READ;
	if (s->io != NULL)
		n = s->io->read(s->io_ctx, buf, len, want_r);
	else
		n = read(s->fd, buf, len);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

/* stream_raw_write - one write through the hook, send(2) or write(2) */
static ssize_t
stream_raw_write(struct stream *s, const void *buf, size_t len,
    enum stream_want *want_r)
{
	ssize_t n;

	*want_r = STREAM_WANT_WRITE;
	if (s->io != NULL)
		n = s->io->write(s->io_ctx, buf, len, want_r);
	else if (s->is_socket)
		n = send(s->fd, buf, len, MSG_NOSIGNAL);
	else
		n = write(s->fd, buf, len);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

/*
 * stream_read_into - read at least one byte into buf, waiting until the
 * deadline; returns bytes read, 0 at EOF (sticky), -1 on a sticky error.
 */
static ssize_t
stream_read_into(struct stream *s, void *buf, size_t len, int64_t deadline)
{
	enum stream_want want;
	ssize_t n;

	if (s->eof)
		return 0;
	for (;;) {
		n = stream_raw_read(s, buf, len, &want);
		if (n > 0)
			return n;
		if (n == 0) {
			s->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			(void)stream_fail(s, STREAM_ERROR, errno);
			return -1;
		}
		if (stream_wait(s, want, deadline) < 0)
			return -1;
	}
}

/* stream_fill - read more into the buffer; STREAM_OK means some arrived */
static enum stream_result
stream_fill(struct stream *s, int64_t deadline)
{
	ssize_t n;

	if (s->rpos == s->rend)
		s->rpos = s->rend = 0;
	else if (s->rend == s->rsize) {
		/* Only the unread tail moves, once per buffer-full. */
		memmove(s->rbuf, s->rbuf + s->rpos, s->rend - s->rpos);
		s->rend -= s->rpos;
		s->rpos = 0;
	}
	ASSERT(s->rend < s->rsize);
	n = stream_read_into(s, s->rbuf + s->rend, s->rsize - s->rend,
	    deadline);
	if (n > 0) {
		s->rend += (size_t)n;
		return STREAM_OK;
	}
	return n == 0 ? STREAM_EOF : s->error;
}

/* stream_skip_line - finish skipping an over-long line */
static enum stream_result
stream_skip_line(struct stream *s, int64_t deadline)
{
	enum stream_result r;
	const char *lf;

	while (s->skip_line) {
		lf = memchr(s->rbuf + s->rpos, '\n', s->rend - s->rpos);
		if (lf != NULL) {
			s->rpos = (size_t)(lf - s->rbuf) + 1;
			s->skip_line = false;
			break;
		}
		s->rpos = s->rend;
		if ((r = stream_fill(s, deadline)) != STREAM_OK)
			return r;
	}
	return STREAM_OK;
}

/* stream_read_line - one line including its LF, at most max bytes */
enum stream_result
stream_read_line(struct stream *s, struct str *line, size_t max)
{
	enum stream_result r;
	int64_t deadline;
	const char *p, *lf;
	size_t avail, n;

	str_clear(line);
	if (s->error != STREAM_OK)
		return stream_sticky(s);
	deadline = stream_deadline(s);
	if (s->skip_line && (r = stream_skip_line(s, deadline)) != STREAM_OK)
		return r;
	for (;;) {
		p = s->rbuf + s->rpos;
		avail = s->rend - s->rpos;
		lf = avail > 0 ? memchr(p, '\n', avail) : NULL;
		n = lf != NULL ? (size_t)(lf - p) + 1 : avail;
		/*
		 * Without an LF in sight, len + avail == max may still be a
		 * whole line ending at EOF, so only "> max" is too long.
		 * A line str with a smaller maximum of its own counts as
		 * the limit too.
		 */
		if (n > max - str_len(line) ||
		    (n > 0 && str_append(line, p, n) < 0)) {
			s->rpos += n;
			s->skip_line = lf == NULL;
			str_clear(line);
			return STREAM_TOO_LONG;
		}
		s->rpos += n;
		if (lf != NULL)
			return STREAM_OK;
		if ((r = stream_fill(s, deadline)) != STREAM_OK)
			return r;
	}
}

/* stream_room - does out have room for n more bytes under its maximum */
static bool
stream_room(const struct str *out, size_t n)
{
	if (str_max(out) != 0 && n > str_max(out) - str_len(out)) {
		errno = E2BIG;
		return false;
	}
	return true;
}

/* stream_read_n - exactly n bytes */
enum stream_result
stream_read_n(struct stream *s, struct str *out, size_t n)
{
	enum stream_result r;
	int64_t deadline;
	size_t avail, c;
	ssize_t got;
	char *p;

	if (s->error != STREAM_OK)
		return stream_sticky(s);
	if (!stream_room(out, n))
		return STREAM_ERROR;
	deadline = stream_deadline(s);
	if (s->skip_line && (r = stream_skip_line(s, deadline)) != STREAM_OK)
		return r;
	while (n > 0) {
		avail = s->rend - s->rpos;
		if (avail > 0) {
			c = MIN(avail, n);
			ASSERT(str_append(out, s->rbuf + s->rpos, c) == 0);
			s->rpos += c;
			n -= c;
			continue;
		}
		if (n < s->rsize) {
			if ((r = stream_fill(s, deadline)) != STREAM_OK)
				return r;
			continue;
		}
		/* A large remainder goes straight into out: no extra copy. */
		c = MIN(n, STREAM_DIRECT_CHUNK);
		p = str_reserve(out, c);
		ASSERT(p != NULL);
		got = stream_read_into(s, p, c, deadline);
		if (got == 0)
			return STREAM_EOF;
		if (got < 0)
			return s->error;
		str_commit(out, (size_t)got);
		n -= (size_t)got;
	}
	return STREAM_OK;
}

/* stream_read_some - what is there (at least one byte), at most max */
enum stream_result
stream_read_some(struct stream *s, struct str *out, size_t max)
{
	enum stream_result r;
	int64_t deadline;
	size_t c;

	ASSERT(max > 0);
	if (s->error != STREAM_OK)
		return stream_sticky(s);
	if (!stream_room(out, 1))
		return STREAM_ERROR;
	deadline = stream_deadline(s);
	if (s->skip_line && (r = stream_skip_line(s, deadline)) != STREAM_OK)
		return r;
	if (s->rpos == s->rend && (r = stream_fill(s, deadline)) != STREAM_OK)
		return r;
	c = MIN(s->rend - s->rpos, max);
	if (str_max(out) != 0)
		c = MIN(c, str_max(out) - str_len(out));
	ASSERT(str_append(out, s->rbuf + s->rpos, c) == 0);
	s->rpos += c;
	return STREAM_OK;
}

/* stream_pending - buffered input that a read would return */
size_t
stream_pending(const struct stream *s)
{
	const char *lf;

	if (!s->skip_line)
		return s->rend - s->rpos;
	/* The rest of an over-long line is not input anyone will see. */
	lf = memchr(s->rbuf + s->rpos, '\n', s->rend - s->rpos);
	return lf == NULL ? 0 : (size_t)(s->rbuf + s->rend - lf - 1);
}

/* stream_discard_input - forget buffered input (and any line being skipped) */
void
stream_discard_input(struct stream *s)
{
	s->rpos = s->rend = 0;
	s->skip_line = false;
}

/* stream_write_all - write all of buf before the deadline; 0 or -1 */
static int
stream_write_all(struct stream *s, const char *buf, size_t len,
    int64_t deadline)
{
	enum stream_want want;
	ssize_t n;

	while (len > 0) {
		n = stream_raw_write(s, buf, len, &want);
		if (n > 0) {
			ASSERT((size_t)n <= len);
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			/* A writer that makes no progress would spin. */
			(void)stream_fail(s, STREAM_ERROR, EIO);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			(void)stream_fail(s, STREAM_ERROR, errno);
			return -1;
		}
		if (stream_wait(s, want, deadline) < 0)
			return -1;
	}
	return 0;
}

/* stream_flush - write out the buffer */
int
stream_flush(struct stream *s)
{
	int ret;

	if (s->error != STREAM_OK) {
		(void)stream_sticky(s);
		return -1;
	}
	if (s->wend == 0)
		return 0;
	ret = stream_write_all(s, s->wbuf, s->wend, stream_deadline(s));
	s->wend = 0;
	return ret;
}

/* stream_write - buffer data, flushing when the buffer is full */
int
stream_write(struct stream *s, const void *data, size_t len)
{
	if (s->error != STREAM_OK) {
		(void)stream_sticky(s);
		return -1;
	}
	if (len <= s->wsize - s->wend) {
		if (len > 0)
			memcpy(s->wbuf + s->wend, data, len);
		s->wend += len;
		return 0;
	}
	if (stream_flush(s) < 0)
		return -1;
	if (len < s->wsize) {
		memcpy(s->wbuf, data, len);
		s->wend = len;
		return 0;
	}
	return stream_write_all(s, data, len, stream_deadline(s));
}

/* stream_puts - write a C string (no newline added) */
int
stream_puts(struct stream *s, const char *cs)
{
	return stream_write(s, cs, strlen(cs));
}

/* stream_printf - formatted write, straight into the buffer when it fits */
int
stream_printf(struct stream *s, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	char *big;
	int n, ret;

	if (s->error != STREAM_OK) {
		(void)stream_sticky(s);
		return -1;
	}
	room = s->wsize - s->wend;
	va_start(ap, fmt);
	n = vsnprintf(s->wbuf + s->wend, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	/* vsnprintf needs room for a NUL that we do not keep. */
	if ((size_t)n < room) {
		s->wend += (size_t)n;
		return 0;
	}
	if ((size_t)n < s->wsize) {
		if (stream_flush(s) < 0)
			return -1;
		va_start(ap, fmt);
		(void)vsnprintf(s->wbuf, s->wsize, fmt, ap);
		va_end(ap);
		s->wend = (size_t)n;
		return 0;
	}
	big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ret = stream_write(s, big, (size_t)n);
	free(big);
	return ret;
}

/* stream_error - the sticky state */
enum stream_result
stream_error(const struct stream *s)
{
	return s->error;
}

/* stream_result_name - text for logging */
const char *
stream_result_name(enum stream_result r)
{
	switch (r) {
	case STREAM_OK:
		return "ok";
	case STREAM_EOF:
		return "eof";
	case STREAM_TOO_LONG:
		return "line too long";
	case STREAM_TIMEOUT:
		return "timeout";
	case STREAM_ERROR:
		return "error";
	}
	return "unknown";
}
