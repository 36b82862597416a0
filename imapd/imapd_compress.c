/* SPDX-License-Identifier: MIT */
/*
 * imapd_compress - COMPRESS=DEFLATE (RFC 4978) as a stream I/O layer
 *
 * DESCRIPTION
 *	After "tag COMPRESS DEFLATE" has been answered OK, both directions
 *	are raw deflate (no zlib header: windowBits -15). The layer sits
 *	under the session's struct stream through stream_set_io(): reads
 *	inflate what the socket gives, writes deflate with Z_SYNC_FLUSH, so
 *	every stream_flush() (one per response batch) puts a complete,
 *	decodable block on the wire.
 *
 *	The mail role sees the client's bytes without TLS: over TLS the
 *	login process relays what it decrypted, which the client had
 *	compressed inside TLS, so inflating here is right for both plain
 *	and TLS connections. Only the standalone role with TLS in this
 *	process cannot stack the layer (stream.h gives no way to call the
 *	TLS hooks below it); it neither advertises nor accepts COMPRESS.
 *
 *	A write that cannot go out at once keeps the deflated bytes and
 *	answers EAGAIN until they are gone, then reports the caller's
 *	bytes as written (the stream retries with the same buffer), so a
 *	flush that returns 0 means the bytes are on the wire.
 *
 *	Inflated input is bounded by the stream's buffer; input that the
 *	stream has not taken yet stays in zlib (imapd_compress_pending()
 *	tells IDLE not to sleep in poll(2) while any does). A corrupt
 *	stream is an I/O error (EIO), so the session ends.
 *
 * SEE ALSO
 *	RFC 4978, RFC 1951.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "stream.h"

#include "imapd.h"

#define ZIO_IBUF_SIZE	16384

struct imapd_zlib {
	int fd;
	z_stream in, out;
	bool in_ok, out_ok;
	bool in_end;		/* the client ended its deflate stream */
	bool in_more;		/* inflate filled the caller's buffer */
	unsigned char ibuf[ZIO_IBUF_SIZE];
	unsigned char *obuf;	/* deflated, not yet sent */
	size_t ocap, opos, oend;
	size_t owritten;	/* caller's bytes behind obuf */
};

/* zio_read - inflate into buf, reading the socket when zlib runs dry */
static ssize_t
zio_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct imapd_zlib *z = ctx;
	ssize_t n;
	int ret;

	*want_r = STREAM_WANT_READ;
	if (z->in_end)
		return 0;
	for (;;) {
		if (z->in.avail_in > 0 || z->in_more) {
			z->in.next_out = buf;
			z->in.avail_out = (uInt)MIN(len, (size_t)UINT32_MAX);
			ret = inflate(&z->in, Z_SYNC_FLUSH);
			if (ret == Z_STREAM_END)
				z->in_end = true;
			else if (ret != Z_OK && ret != Z_BUF_ERROR) {
				errno = EIO;
				return -1;
			}
			n = (ssize_t)(len - z->in.avail_out);
			z->in_more = z->in.avail_out == 0;
			if (n > 0)
				return n;
			if (z->in_end)
				return 0;
			if (z->in.avail_in > 0 && ret == Z_BUF_ERROR) {
				errno = EIO;
				return -1;
			}
		}
		n = read(z->fd, z->ibuf, sizeof(z->ibuf));
		if (n <= 0)
			return n;	/* EOF, or -1 with errno (EAGAIN) */
		z->in.next_in = z->ibuf;
		z->in.avail_in = (uInt)n;
	}
}

/* zio_send - send what is deflated; 0 when all gone, -1 EAGAIN or error */
static int
zio_send(struct imapd_zlib *z)
{
	ssize_t n;

	while (z->opos < z->oend) {
		n = send(z->fd, z->obuf + z->opos, z->oend - z->opos,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(z->fd, z->obuf + z->opos, z->oend - z->opos);
		if (n < 0)
			return -1;
		z->opos += (size_t)n;
	}
	z->opos = z->oend = 0;
	return 0;
}

/* zio_write - deflate buf with a sync flush, then send it */
static ssize_t
zio_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	struct imapd_zlib *z = ctx;
	size_t done;
	int ret;

	*want_r = STREAM_WANT_WRITE;
	if (z->oend > 0) {
		/* the stream retries the write we took before */
		if (zio_send(z) < 0)
			return -1;
		done = z->owritten;
		z->owritten = 0;
		return (ssize_t)done;
	}
	if (len > UINT32_MAX / 2)
		len = UINT32_MAX / 2;
	z->out.next_in = (Bytef *)(uintptr_t)buf;
	z->out.avail_in = (uInt)len;
	do {
		if (z->ocap - z->oend < 512 + len / 8) {
			z->ocap = z->ocap * 2 + 1024 + len / 4;
			z->obuf = xrealloc(z->obuf, z->ocap);
		}
		z->out.next_out = z->obuf + z->oend;
		z->out.avail_out = (uInt)(z->ocap - z->oend);
		ret = deflate(&z->out, Z_SYNC_FLUSH);
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			errno = EIO;
			return -1;
		}
		z->oend = z->ocap - z->out.avail_out;
	} while (z->out.avail_in > 0 || z->out.avail_out == 0);
	if (zio_send(z) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		z->owritten = len;
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)len;
}

static const struct stream_io zio = { zio_read, zio_write };

/* imapd_compress_start - see imapd.h */
struct imapd_zlib *
imapd_compress_start(struct stream *s, const char **error_r)
{
	struct imapd_zlib *z = xcalloc(1, sizeof(*z));

	z->fd = stream_fd(s);
	if (inflateInit2(&z->in, -15) != Z_OK) {
		*error_r = "inflateInit2 failed";
		imapd_compress_free(&z);
		return NULL;
	}
	z->in_ok = true;
	/* level 6 costs too much CPU per byte for IMAP; 1 keeps most of the gain */
	if (deflateInit2(&z->out, 1, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		*error_r = "deflateInit2 failed";
		imapd_compress_free(&z);
		return NULL;
	}
	z->out_ok = true;
	stream_set_io(s, &zio, z);
	return z;
}

/* imapd_compress_pending - see imapd.h */
bool
imapd_compress_pending(const struct imapd_zlib *z)
{
	return z != NULL && (z->in.avail_in > 0 || z->in_more);
}

/* imapd_compress_free - see imapd.h */
void
imapd_compress_free(struct imapd_zlib **zp)
{
	struct imapd_zlib *z = *zp;

	if (z == NULL)
		return;
	if (z->in_ok)
		inflateEnd(&z->in);
	if (z->out_ok)
		deflateEnd(&z->out);
	free(z->obuf);
	free(z);
	*zp = NULL;
}
