/* SPDX-License-Identifier: MIT */
/*
 * stream_test - unit tests for stream.c
 *
 * Input reaches the stream through a socketpair from a forked writer that
 * sends it in small pieces with short pauses, so reads see partial lines
 * and buffer boundaries fall everywhere.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "stream.h"
#include "test.h"

/* now_ms - monotonic milliseconds */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* write_full - blocking write of everything (test helper) */
static int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * feeder_start - fork a child that writes data to a socket in chunk-byte
 * pieces with a pause between them, then closes it; *fd_r is our end.
 */
static pid_t
feeder_start(const void *data, size_t len, size_t chunk, unsigned pause_us,
    int *fd_r)
{
	int sv[2];
	pid_t pid;
	size_t off, c;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((pid = fork()) < 0)
		abort();
	if (pid == 0) {
		close(sv[0]);
		for (off = 0; off < len; off += c) {
			c = MIN(chunk, len - off);
			if (write_full(sv[1], (const char *)data + off, c) < 0)
				_exit(1);
			if (pause_us > 0)
				usleep(pause_us);
		}
		_exit(0);
	}
	close(sv[1]);
	*fd_r = sv[0];
	return pid;
}

/* feeder_end - reap the feeder */
static void
feeder_end(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* line_is - does line hold exactly the n bytes of want */
static bool
line_is(const struct str *line, const void *want, size_t n)
{
	return str_len(line) == n && memcmp(str_c(line), want, n) == 0;
}

#define LINE_IS(line, lit) line_is((line), (lit), sizeof(lit) - 1)

static void
test_lines(void)
{
	static const char in[] = "hello\r\nworld\n\nx y\n";
	struct str *line = str_new(0, 0);
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: CRLF, LF and empty lines, 1-byte pieces");
	pid = feeder_start(in, sizeof(in) - 1, 1, 200, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "hello\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "world\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "x y\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(str_len(line) == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(stream_error(s) == STREAM_OK);
	stream_free(&s);
	TEST_ASSERT(s == NULL);
	stream_free(&s);
	feeder_end(pid);
	str_free(&line);
	test_end();
}

static void
test_pipelined(void)
{
	struct str *in = str_new(0, 0), *line = str_new(0, 0);
	struct stream *s;
	unsigned i, bad = 0;
	char want[64];
	pid_t pid;
	int fd, n;

	test_begin("stream_read_line: 20000 pipelined lines in odd pieces");
	for (i = 0; i < 20000; i++)
		str_printf(in, "A%u TAG %*s\r\n", i, (int)(i % 37), "");
	pid = feeder_start(str_c(in), str_len(in), 7777, 0, &fd);
	s = stream_new(fd, 10, 0);
	for (i = 0; i < 20000; i++) {
		n = snprintf(want, sizeof(want), "A%u TAG %*s\r\n", i,
		    (int)(i % 37), "");
		if (stream_read_line(s, line, 64) != STREAM_OK ||
		    !line_is(line, want, (size_t)n))
			bad++;
	}
	TEST_ASSERT(bad == 0);
	TEST_ASSERT(stream_read_line(s, line, 64) == STREAM_EOF);
	stream_free(&s);
	feeder_end(pid);
	str_free(&in);
	str_free(&line);
	test_end();
}

static void
test_too_long(void)
{
	struct str *in = str_new(0, 0), *line = str_new(0, 0);
	struct stream *s;
	size_t i;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: over-long lines are skipped, not truncated");
	str_append_cstr(in, "short\n0123456789abcdef\nnext\n");
	/* Longer than the read buffer: the skip spans several fills. */
	for (i = 0; i < 100000; i++)
		str_append_c(in, (char)('a' + i % 26));
	str_append_cstr(in, "\r\nafter\n");
	/* Too long and the stream ends inside it. */
	str_append_cstr(in, "0123456789abcdefghij");
	pid = feeder_start(str_c(in), str_len(in), 3, 0, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "short\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_TOO_LONG);
	TEST_ASSERT(str_len(line) == 0);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "next\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "after\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_EOF);
	TEST_ASSERT(str_len(line) == 0);
	TEST_ASSERT(stream_error(s) == STREAM_OK);
	stream_free(&s);
	feeder_end(pid);
	str_free(&in);
	str_free(&line);
	test_end();
}

static void
test_exact_max(void)
{
	static const char in[] =
	    "123456789\n"		/* 10: fits */
	    "12345678\r\n"		/* 10 with CRLF: fits */
	    "1234567890\n"		/* 11: too long */
	    "123456789\r\n"		/* 11 with CRLF: too long */
	    "\n"
	    "1234567890";		/* 10 at EOF, no LF: EOF with data */
	struct str *line = str_new(0, 0);
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: max counts the CR and LF, exactly max fits");
	pid = feeder_start(in, sizeof(in) - 1, 4, 100, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "123456789\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "12345678\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_EOF);
	TEST_ASSERT(LINE_IS(line, "1234567890"));
	stream_free(&s);
	feeder_end(pid);
	str_free(&line);
	test_end();
}

static void
test_line_str_max(void)
{
	static const char in[] = "0123456789\nok\n";
	struct str *line = str_new(0, 5);
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: the line str's own maximum also limits");
	pid = feeder_start(in, sizeof(in) - 1, 64, 0, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "ok\n"));
	stream_free(&s);
	feeder_end(pid);
	str_free(&line);
	test_end();
}

static void
test_nul(void)
{
	static const char in[] = "a\0b\r\n\0\n\0\0\0";
	struct str *line = str_new(0, 0);
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: NUL bytes are data");
	pid = feeder_start(in, sizeof(in) - 1, 2, 100, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "a\0b\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "\0\n"));
	TEST_ASSERT(stream_read_line(s, line, 10) == STREAM_EOF);
	TEST_ASSERT(LINE_IS(line, "\0\0\0"));
	stream_free(&s);
	feeder_end(pid);
	str_free(&line);
	test_end();
}

static void
test_eof_partial(void)
{
	static const char in[] = "abc\npartial";
	struct str *line = str_new(0, 0);
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_line: a partial last line comes with EOF");
	pid = feeder_start(in, sizeof(in) - 1, 5, 1000, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "abc\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(LINE_IS(line, "partial"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(str_len(line) == 0);
	/* EOF is not an error: the stream can still write. */
	TEST_ASSERT(stream_error(s) == STREAM_OK);
	stream_free(&s);
	feeder_end(pid);
	str_free(&line);
	test_end();
}

/* pattern - a byte sequence that shows misplaced data */
static char
pattern(size_t i)
{
	return (char)((i * 7 + i / 251) & 0xff);
}

static void
test_read_n(void)
{
	struct str *in = str_new(0, 0), *line = str_new(0, 0);
	struct str *out = str_new(0, 0), *small = str_new(0, 100);
	size_t i, bad = 0;
	struct stream *s;
	pid_t pid;
	int fd;

	test_begin("stream_read_n: across buffer boundaries and at EOF");
	str_append_cstr(in, "A1 APPEND {300000}\r\n");
	for (i = 0; i < 300000; i++)
		str_append_c(in, pattern(i));
	str_append_cstr(in, "\r\nA2 NOOP\r\n");
	for (i = 0; i < 50; i++)
		str_append_c(in, 'z');
	pid = feeder_start(str_c(in), str_len(in), 10007, 0, &fd);
	s = stream_new(fd, 10, 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "A1 APPEND {300000}\r\n"));
	/* Pre-existing content is kept: read_n appends. */
	str_append_cstr(out, "pre");
	TEST_ASSERT(stream_read_n(s, out, 0) == STREAM_OK);
	TEST_ASSERT(stream_read_n(s, out, 5) == STREAM_OK);
	TEST_ASSERT(stream_read_n(s, out, 299995) == STREAM_OK);
	TEST_ASSERT(str_len(out) == 300003);
	for (i = 0; i < 300000 && str_len(out) == 300003; i++)
		if (str_c(out)[i + 3] != pattern(i))
			bad++;
	TEST_ASSERT(bad == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "A2 NOOP\r\n"));
	/* Too big for the caller's str: refused, nothing consumed. */
	errno = 0;
	TEST_ASSERT(stream_read_n(s, small, 101) == STREAM_ERROR);
	TEST_ASSERT(errno == E2BIG);
	TEST_ASSERT(stream_error(s) == STREAM_OK);
	str_clear(out);
	TEST_ASSERT(stream_read_n(s, out, 60) == STREAM_EOF);
	TEST_ASSERT(str_len(out) == 50);
	stream_free(&s);
	feeder_end(pid);
	str_free(&in);
	str_free(&line);
	str_free(&out);
	str_free(&small);
	test_end();
}

static void
test_read_some(void)
{
	static const char in[] = "line1\nline2\nline3\n";
	struct str *line = str_new(0, 0), *out = str_new(0, 0);
	struct stream *s;
	int sv[2];

	test_begin("stream_read_some and stream_pending");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 10, 0);
	TEST_ASSERT(write_full(sv[1], in, sizeof(in) - 1) == 0);
	TEST_ASSERT(stream_pending(s) == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(stream_pending(s) == 12);
	TEST_ASSERT(stream_read_some(s, out, 3) == STREAM_OK);
	TEST_ASSERT(LINE_IS(out, "lin"));
	TEST_ASSERT(stream_read_some(s, out, 1000) == STREAM_OK);
	TEST_ASSERT(LINE_IS(out, "line2\nline3\n"));
	TEST_ASSERT(stream_pending(s) == 0);
	TEST_ASSERT(write_full(sv[1], "xy", 2) == 0);
	TEST_ASSERT(stream_read_some(s, out, 1000) == STREAM_OK);
	TEST_ASSERT(LINE_IS(out, "line2\nline3\nxy"));
	close(sv[1]);
	TEST_ASSERT(stream_read_some(s, out, 1000) == STREAM_EOF);
	stream_free(&s);
	str_free(&line);
	str_free(&out);
	test_end();
}

static void
test_skip_other_reads(void)
{
	struct str *line = str_new(0, 0), *out = str_new(0, 0);
	struct stream *s;
	int sv[2];

	test_begin("the rest of an over-long line is skipped by any read");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 10, 0);
	TEST_ASSERT(write_full(sv[1], "0123456789", 10) == 0);
	TEST_ASSERT(stream_read_line(s, line, 5) == STREAM_TOO_LONG);
	TEST_ASSERT(stream_pending(s) == 0);
	TEST_ASSERT(write_full(sv[1], "abc\nQ\n", 6) == 0);
	TEST_ASSERT(stream_read_some(s, out, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(out, "Q\n"));
	TEST_ASSERT(write_full(sv[1], "0123456789", 10) == 0);
	TEST_ASSERT(stream_read_line(s, line, 5) == STREAM_TOO_LONG);
	TEST_ASSERT(write_full(sv[1], "abc\nXYZ", 7) == 0);
	str_clear(out);
	TEST_ASSERT(stream_read_n(s, out, 3) == STREAM_OK);
	TEST_ASSERT(LINE_IS(out, "XYZ"));
	stream_free(&s);
	close(sv[1]);
	str_free(&line);
	str_free(&out);
	test_end();
}

static void
test_discard(void)
{
	struct str *line = str_new(0, 0);
	struct stream *s;
	int sv[2];

	test_begin("stream_discard_input drops pipelined input");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 10, 0);
	TEST_ASSERT(write_full(sv[1], "STARTTLS\r\nMAIL FROM:<evil>\r\n", 28) == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "STARTTLS\r\n"));
	TEST_ASSERT(stream_pending(s) == 18);
	stream_discard_input(s);
	TEST_ASSERT(stream_pending(s) == 0);
	TEST_ASSERT(write_full(sv[1], "EHLO x\r\n", 8) == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "EHLO x\r\n"));
	stream_free(&s);
	close(sv[1]);
	str_free(&line);
	test_end();
}

static void
test_timeout(void)
{
	struct str *line = str_new(0, 0);
	struct stream *s;
	int64_t t0, el;
	int sv[2];

	test_begin("timeout: 1s on a silent peer, then sticky");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 1, 0);
	TEST_ASSERT(write_full(sv[1], "partial", 7) == 0);
	t0 = now_ms();
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_TIMEOUT);
	el = now_ms() - t0;
	/* upper bounds are loose: a loaded machine stalls the process */
	TEST_ASSERT(el >= 950 && el < 10000);
	TEST_ASSERT(stream_error(s) == STREAM_TIMEOUT);
	/* Sticky: everything fails at once now, even with data waiting. */
	TEST_ASSERT(write_full(sv[1], "\nmore\n", 6) == 0);
	t0 = now_ms();
	errno = 0;
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_TIMEOUT);
	TEST_ASSERT(errno == ETIMEDOUT);
	TEST_ASSERT(stream_read_n(s, line, 1) == STREAM_TIMEOUT);
	TEST_ASSERT(stream_read_some(s, line, 1) == STREAM_TIMEOUT);
	TEST_ASSERT(stream_write(s, "x", 1) == -1);
	TEST_ASSERT(stream_printf(s, "%d", 1) == -1);
	TEST_ASSERT(stream_flush(s) == -1 && errno == ETIMEDOUT);
	TEST_ASSERT(now_ms() - t0 < 900);	/* no second 1 s wait */
	TEST_ASSERT_STR(stream_result_name(stream_error(s)), "timeout");
	stream_free(&s);
	close(sv[1]);
	str_free(&line);
	test_end();
}

static void
test_write_timeout(void)
{
	struct stream *s;
	char *big;
	int64_t t0;
	int sv[2];

	test_begin("timeout: a peer that does not read stalls a flush 1s");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 1, 0);
	big = xmalloc(8 << 20);
	t0 = now_ms();
	TEST_ASSERT(stream_write(s, big, 8 << 20) == -1);
	TEST_ASSERT(now_ms() - t0 >= 950);
	TEST_ASSERT(stream_error(s) == STREAM_TIMEOUT);
	free(big);
	stream_free(&s);
	close(sv[1]);
	test_end();
}

static void
test_closed_peer(void)
{
	struct sigaction sa, old;
	struct stream *s;
	size_t i;
	int sv[2], ret = 0;

	test_begin("write to a closed peer: error, no SIGPIPE");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa, &old);
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 5, 0);
	close(sv[1]);
	for (i = 0; i < 100 && ret == 0; i++) {
		ret = stream_puts(s, "250 OK\r\n");
		if (ret == 0)
			ret = stream_flush(s);
	}
	TEST_ASSERT(ret == -1);
	TEST_ASSERT(errno == EPIPE || errno == ECONNRESET);
	TEST_ASSERT(stream_error(s) == STREAM_ERROR);
	TEST_ASSERT(stream_puts(s, "x") == -1);
	TEST_ASSERT_STR(stream_result_name(STREAM_ERROR), "error");
	stream_free(&s);
	sigaction(SIGPIPE, &old, NULL);
	test_end();
}

/* fnv - FNV-1a over buf, continuing from h */
static uint64_t
fnv(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
test_large_write(void)
{
	struct str *line = str_new(0, 0);
	uint64_t h = 0xcbf29ce484222325ULL, got_h = 0;
	unsigned long long got_n = 0;
	size_t total = 0, sizes[] = { 1, 100, 3000, 16383, 16384, 20000,
	    1 << 20, 7, 65536 };
	char *buf, *end, rbuf[65536], reply[128];
	struct stream *s;
	unsigned i, round;
	int sv[2], status;
	pid_t pid;
	ssize_t n;

	test_begin("large writes: 10+ MB through a socketpair to a reader");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	if ((pid = fork()) == 0) {
		/* Reader: hash everything until EOF, then report. */
		uint64_t ch = 0xcbf29ce484222325ULL;
		unsigned long long cn = 0;
		int len;

		close(sv[0]);
		while ((n = read(sv[1], rbuf, sizeof(rbuf))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				_exit(1);
			/* Read slowly at first so the writer must wait. */
			if (cn < (1 << 20))
				usleep(100);
			ch = fnv(ch, rbuf, (size_t)n);
			cn += (unsigned long long)n;
		}
		len = snprintf(reply, sizeof(reply), "%llu %llx\n", cn,
		    (unsigned long long)ch);
		_exit(write_full(sv[1], reply, (size_t)len) < 0);
	}
	close(sv[1]);
	s = stream_new(sv[0], 30, 0);
	buf = xmalloc(1 << 20);
	for (i = 0; i < (1 << 20); i++)
		buf[i] = pattern(i);
	for (round = 0; round < 10; round++) {
		for (i = 0; i < N_ELEMENTS(sizes); i++) {
			TEST_ASSERT(stream_write(s, buf, sizes[i]) == 0);
			h = fnv(h, buf, sizes[i]);
			total += sizes[i];
		}
		TEST_ASSERT(stream_printf(s, "round %u %s\r\n", round,
		    "done") == 0);
		n = snprintf(reply, sizeof(reply), "round %u %s\r\n", round,
		    "done");
		h = fnv(h, reply, (size_t)n);
		total += (size_t)n;
	}
	/* A printf longer than the write buffer. */
	memset(buf, 'x', 40000);
	TEST_ASSERT(stream_printf(s, "%.*s", 40000, buf) == 0);
	h = fnv(h, buf, 40000);
	total += 40000;
	TEST_ASSERT(stream_flush(s) == 0);
	TEST_ASSERT(stream_flush(s) == 0);
	shutdown(sv[0], SHUT_WR);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	got_n = strtoull(str_c(line), &end, 10);
	TEST_ASSERT(*end == ' ');
	got_h = strtoull(end + 1, &end, 16);
	TEST_ASSERT(*end == '\n');
	TEST_ASSERT(got_n == total);
	TEST_ASSERT(got_h == h);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	free(buf);
	stream_free(&s);
	str_free(&line);
	test_end();
}

/*
 * A fake TLS layer: XOR every byte with a key on the way in and out, move
 * at most a few bytes per call, and every third call claim it must wait,
 * asking for the other direction now and then (as TLS renegotiation does).
 */
struct xor_io {
	int fd;
	unsigned calls;
	unsigned reads;
	unsigned writes;
	unsigned eagains;
};

#define XOR_KEY 0x5a

/* xor_io_wait - maybe pretend to block */
static bool
xor_io_wait(struct xor_io *x, enum stream_want *want_r, enum stream_want dir)
{
	x->calls++;
	if (x->calls % 3 != 0)
		return false;
	x->eagains++;
	*want_r = x->calls % 2 == 0 ? STREAM_WANT_READ : STREAM_WANT_WRITE;
	/* Waiting to read on an idle socket would hang: only on data/writes. */
	if (dir == STREAM_WANT_WRITE)
		*want_r = STREAM_WANT_WRITE;
	errno = EAGAIN;
	return true;
}

static ssize_t
xor_io_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct xor_io *x = ctx;
	unsigned char *p = buf;
	ssize_t n, i;

	if (xor_io_wait(x, want_r, STREAM_WANT_READ))
		return -1;
	x->reads++;
	n = read(x->fd, buf, MIN(len, 5));
	if (n < 0) {
		if (errno == EAGAIN)
			*want_r = STREAM_WANT_READ;
		return -1;
	}
	for (i = 0; i < n; i++)
		p[i] ^= XOR_KEY;
	return n;
}

static ssize_t
xor_io_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	struct xor_io *x = ctx;
	unsigned char tmp[7];
	size_t i, c = MIN(len, sizeof(tmp));
	ssize_t n;

	if (xor_io_wait(x, want_r, STREAM_WANT_WRITE))
		return -1;
	x->writes++;
	for (i = 0; i < c; i++)
		tmp[i] = ((const unsigned char *)buf)[i] ^ XOR_KEY;
	n = send(x->fd, tmp, c, MSG_NOSIGNAL);
	if (n < 0 && errno == EAGAIN)
		*want_r = STREAM_WANT_WRITE;
	return n;
}

static const struct stream_io xor_io_funcs = {
	.read = xor_io_read,
	.write = xor_io_write,
};

/* xor_buf - XOR n bytes in place */
static void
xor_buf(char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] ^= XOR_KEY;
}

static void
test_io_hook(void)
{
	static const char plain[] = "A1 LOGIN user pass\r\nA2 SELECT INBOX\r\n"
	    "tail";
	char wire[sizeof(plain)], got[64];
	struct str *line = str_new(0, 0);
	struct xor_io x = { 0 };
	struct stream *s;
	size_t off = 0;
	int sv[2], fd;
	pid_t pid;
	ssize_t n;

	test_begin("stream_set_io: both directions go through the hook");
	memcpy(wire, plain, sizeof(plain));
	xor_buf(wire, sizeof(plain) - 1);
	pid = feeder_start(wire, sizeof(plain) - 1, 3, 500, &fd);
	s = stream_new(fd, 10, 0);
	x.fd = fd;
	stream_set_io(s, &xor_io_funcs, &x);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "A1 LOGIN user pass\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "A2 SELECT INBOX\r\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(LINE_IS(line, "tail"));
	TEST_ASSERT(x.reads > 10 && x.eagains > 3);
	stream_free(&s);
	feeder_end(pid);

	/* Writing: the peer must see XOR'd bytes. */
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	memset(&x, 0, sizeof(x));
	x.fd = sv[0];
	s = stream_new(sv[0], 10, 0);
	stream_set_io(s, &xor_io_funcs, &x);
	TEST_ASSERT(stream_printf(s, "* OK %s ready\r\n", "IMAP4rev1") == 0);
	TEST_ASSERT(stream_flush(s) == 0);
	TEST_ASSERT(x.writes >= 4 && x.eagains > 0);
	stream_free(&s);
	while (off < 22 && (n = read(sv[1], got + off, sizeof(got) - off)) > 0)
		off += (size_t)n;
	TEST_ASSERT(off == 22);
	xor_buf(got, off);
	TEST_ASSERT(off == 22 && memcmp(got, "* OK IMAP4rev1 ready\r\n", 22) == 0);
	close(sv[1]);

	/* NULL io returns to plain fd I/O. */
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 10, 0);
	stream_set_io(s, &xor_io_funcs, &x);
	stream_set_io(s, NULL, NULL);
	TEST_ASSERT(write_full(sv[1], "plain\n", 6) == 0);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "plain\n"));
	stream_free(&s);
	close(sv[1]);
	str_free(&line);
	test_end();
}

/* fail_io_read - a hook that fails hard */
static ssize_t
fail_io_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	(void)ctx;
	(void)buf;
	(void)len;
	(void)want_r;
	errno = EPROTO;
	return -1;
}

static void
test_io_error(void)
{
	static const struct stream_io fail_io = { fail_io_read, NULL };
	struct str *line = str_new(0, 0);
	struct stream *s;
	int sv[2];

	test_begin("stream_set_io: a hook error is the sticky error");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	s = stream_new(sv[0], 10, 0);
	stream_set_io(s, &fail_io, NULL);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_ERROR);
	TEST_ASSERT(errno == EPROTO);
	TEST_ASSERT(stream_error(s) == STREAM_ERROR);
	errno = 0;
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_ERROR);
	TEST_ASSERT(errno == EPROTO);
	stream_free(&s);
	close(sv[1]);
	str_free(&line);
	test_end();
}

static void
test_file(void)
{
	struct str *path = str_new(0, 0), *line = str_new(0, 0);
	struct stream *s;
	int fd;

	test_begin("regular files: write(2) path, read back, NO_CLOSE");
	str_printf(path, "%s/stream-file", test_tmpdir());
	fd = open(str_c(path), O_RDWR | O_CREAT | O_TRUNC, 0600);
	TEST_ASSERT(fd >= 0);
	s = stream_new(fd, 0, STREAM_NO_CLOSE);
	TEST_ASSERT(stream_fd(s) == fd);
	TEST_ASSERT(stream_printf(s, "From: %s\n", "a@b") == 0);
	TEST_ASSERT(stream_puts(s, "Subject: x\n\nbody") == 0);
	TEST_ASSERT(stream_flush(s) == 0);
	stream_free(&s);
	/* NO_CLOSE: the fd is still ours. */
	TEST_ASSERT(lseek(fd, 0, SEEK_SET) == 0);
	s = stream_new(fd, 0, 0);
	stream_set_timeout(s, 5);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "From: a@b\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_OK);
	TEST_ASSERT(LINE_IS(line, "\n"));
	TEST_ASSERT(stream_read_line(s, line, 100) == STREAM_EOF);
	TEST_ASSERT(LINE_IS(line, "body"));
	stream_free(&s);
	TEST_ASSERT(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
	str_free(&path);
	str_free(&line);
	test_end();
}

static void
test_names(void)
{
	test_begin("stream_result_name");
	TEST_ASSERT_STR(stream_result_name(STREAM_OK), "ok");
	TEST_ASSERT_STR(stream_result_name(STREAM_EOF), "eof");
	TEST_ASSERT_STR(stream_result_name(STREAM_TOO_LONG), "line too long");
	TEST_ASSERT_STR(stream_result_name(STREAM_TIMEOUT), "timeout");
	TEST_ASSERT_STR(stream_result_name(STREAM_ERROR), "error");
	test_end();
}

int
main(void)
{
	test_lines();
	test_pipelined();
	test_too_long();
	test_exact_max();
	test_line_str_max();
	test_nul();
	test_eof_partial();
	test_read_n();
	test_read_some();
	test_skip_other_reads();
	test_discard();
	test_timeout();
	test_write_timeout();
	test_closed_peer();
	test_large_write();
	test_io_hook();
	test_io_error();
	test_file();
	test_names();
	return test_done();
}
