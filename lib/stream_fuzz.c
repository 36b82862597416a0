/* SPDX-License-Identifier: MIT */
/*
 * stream_fuzz - libFuzzer target for stream_read_line()
 *
 * DESCRIPTION
 *	Input: byte 0 picks the line limit (1..64), byte 1 seeds the chunking.
 *	The rest is fed to a stream through an in-memory stream_io that hands
 *	out pieces of pseudo-random size (and now and then EAGAIN, answered by
 *	polling /dev/null, which is always ready). Every line read is checked
 *	against a model computed from the whole input at once, so the result
 *	must not depend on where the pieces broke:
 *	a segment up to and including an LF is STREAM_OK with exactly those
 *	bytes if it is at most max long, else STREAM_TOO_LONG with an empty
 *	line; a tail without LF is STREAM_EOF with its bytes, or TOO_LONG and
 *	then an empty EOF. Lines read OK are echoed through the write side of
 *	the hook and must come out unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem_io {
	const uint8_t *p;
	size_t len;
	size_t off;
	uint32_t rng;
	struct str *out;
};

/* mem_io_next - the next pseudo-random number of the chunking */
static uint32_t
mem_io_next(struct mem_io *m)
{
	m->rng = m->rng * 1103515245u + 12345u;
	return m->rng >> 16;
}

static ssize_t
mem_io_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct mem_io *m = ctx;
	uint32_t r = mem_io_next(m);
	size_t c;

	if (r % 7 == 0) {
		*want_r = (r & 8) != 0 ? STREAM_WANT_READ : STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	}
	if (m->off == m->len)
		return 0;
	c = 1 + r % ((r & 1) != 0 ? 4 : 97);
	c = MIN(c, MIN(len, m->len - m->off));
	memcpy(buf, m->p + m->off, c);
	m->off += c;
	return (ssize_t)c;
}

static ssize_t
mem_io_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	struct mem_io *m = ctx;
	uint32_t r = mem_io_next(m);
	size_t c;

	if (r % 5 == 0) {
		*want_r = STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	}
	c = MIN(len, 1 + r % 300);
	if (str_append(m->out, buf, c) < 0)
		abort();
	return (ssize_t)c;
}

static const struct stream_io mem_io_funcs = {
	.read = mem_io_read,
	.write = mem_io_write,
};

static int null_fd = -1;

/* expect - check one stream_read_line result */
static void
expect(enum stream_result got, const struct str *line, enum stream_result want,
    const void *p, size_t n)
{
	if (got != want || str_len(line) != n ||
	    (n > 0 && memcmp(str_c(line), p, n) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *line, *echo, *out;
	struct mem_io m;
	struct stream *s;
	const uint8_t *in, *lf;
	size_t max, len, off, n;
	enum stream_result r;

	if (size < 2)
		return 0;
	if (null_fd < 0 && (null_fd = open("/dev/null", O_RDONLY)) < 0)
		abort();
	max = 1 + data[0] % 64;
	in = data + 2;
	len = size - 2;
	memset(&m, 0, sizeof(m));
	m.p = in;
	m.len = len;
	m.rng = data[1];
	m.out = out = str_new(0, 0);
	line = str_new(0, 0);
	echo = str_new(0, 0);
	s = stream_new(null_fd, 0, STREAM_NO_CLOSE);
	stream_set_io(s, &mem_io_funcs, &m);

	for (off = 0; off < len; off += n) {
		lf = memchr(in + off, '\n', len - off);
		n = lf != NULL ? (size_t)(lf - (in + off)) + 1 : len - off;
		r = stream_read_line(s, line, max);
		/* The general invariants first, then the exact model. */
		if (str_len(line) > max)
			abort();
		if (str_len(line) > 0 && memchr(str_c(line), '\n',
		    str_len(line) - 1) != NULL)
			abort();
		if (r == STREAM_OK &&
		    (str_len(line) == 0 || str_c(line)[str_len(line) - 1] != '\n'))
			abort();
		if (n > max) {
			expect(r, line, STREAM_TOO_LONG, NULL, 0);
		} else if (lf != NULL) {
			expect(r, line, STREAM_OK, in + off, n);
			if (stream_write(s, str_c(line), str_len(line)) < 0)
				abort();
			(void)str_append_str(echo, line);
		} else {
			expect(r, line, STREAM_EOF, in + off, n);
		}
	}
	r = stream_read_line(s, line, max);
	expect(r, line, STREAM_EOF, NULL, 0);
	if (stream_flush(s) < 0 || stream_error(s) != STREAM_OK)
		abort();
	if (str_len(out) != str_len(echo) ||
	    memcmp(str_c(out), str_c(echo), str_len(out)) != 0)
		abort();
	stream_free(&s);
	str_free(&line);
	str_free(&echo);
	str_free(&out);
	return 0;
}
