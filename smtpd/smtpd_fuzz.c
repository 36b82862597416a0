/* SPDX-License-Identifier: MIT */
/*
 * smtpd_fuzz - libFuzzer target: a whole SMTP session from memory
 *
 * DESCRIPTION
 *	The input is what a client sends. The session runs on a stream
 *	whose I/O hook reads the input in pseudo-random pieces and throws
 *	the replies away (an in-memory stream_io, as stream_fuzz does), so
 *	no sockets or threads are involved. cleanup_client_* are a fake
 *	that checks the content it is given: it must never contain the
 *	end-of-data sequence CRLF.CRLF as a line of its own after
 *	dot-unstuffing... except that a message may legally contain
 *	"\r\n.\r\n" after unstuffing ("..") - so the fake checks weaker
 *	invariants: content only between envelope and finish, finish only
 *	with at least one recipient, nothing after an abort.
 *
 *	Byte 0 picks settings: bit 0 normalize bare LF, bit 1 AUTH enabled
 *	without TLS (to reach the SASL code), bit 2 a 200-byte size limit,
 *	bit 3 recipient limit 3, bits 4-5 the piece-size seed.
 *
 *	The fuzz build links only this object and libpostern, so the smtpd
 *	sources (all but smtpd.c, which holds main) are included here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd_check.c"
#include "smtpd_data.c"
#include "smtpd_sasl.c"
#include "smtpd_session.c"
#include "smtpd_settings.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------ fake cleanup */

struct cleanup_client {
	char id[16];
	bool envelope;
	unsigned rcpts;
};

static int fuzz_open_clients;

struct cleanup_client *
cleanup_client_open(const char *socket_path, unsigned flags, const char **error_r)
{
	struct cleanup_client *c = xcalloc(1, sizeof(*c));

	(void)socket_path;
	(void)flags;
	(void)error_r;
	pst_strlcpy(c->id, "FUZZID", sizeof(c->id));
	fuzz_open_clients++;
	return c;
}

const char *
cleanup_client_id(const struct cleanup_client *c)
{
	return c->id;
}

int
cleanup_client_envelope(struct cleanup_client *c,
    const struct queue_envelope *env, const char **error_r)
{
	(void)error_r;
	ASSERT(!c->envelope);
	ASSERT(env->sender != NULL);
	c->envelope = true;
	return 0;
}

int
cleanup_client_rcpt(struct cleanup_client *c, const struct queue_rcpt *rcpt,
    const char **error_r)
{
	(void)error_r;
	ASSERT(c->envelope);
	ASSERT(rcpt->address != NULL && *rcpt->address != '\0');
	c->rcpts++;
	return 0;
}

int
cleanup_client_content(struct cleanup_client *c, const void *p, size_t len,
    const char **error_r)
{
	(void)p;
	(void)error_r;
	ASSERT(c->envelope && c->rcpts > 0 && len > 0);
	return 0;
}

enum cleanup_status
cleanup_client_finish(struct cleanup_client **cp, struct str *reason)
{
	(void)reason;
	ASSERT((*cp)->rcpts > 0);
	XFREE(*cp);
	fuzz_open_clients--;
	return CLEANUP_OK;
}

void
cleanup_client_abort(struct cleanup_client **cp)
{
	if (*cp == NULL)
		return;
	XFREE(*cp);
	fuzz_open_clients--;
}

/* ------------------------------------------------------------ memory I/O */

struct fuzz_io {
	const uint8_t *p;
	size_t len, off;
	uint32_t rng;
};

static ssize_t
fuzz_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct fuzz_io *io = ctx;
	size_t n;

	(void)want_r;
	if (io->off >= io->len)
		return 0;
	io->rng = io->rng * 1103515245u + 12345u;
	n = 1 + (io->rng >> 16) % 512;
	if (n > len)
		n = len;
	if (n > io->len - io->off)
		n = io->len - io->off;
	memcpy(buf, io->p + io->off, n);
	io->off += n;
	return (ssize_t)n;
}

static ssize_t
fuzz_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	(void)ctx;
	(void)buf;
	(void)want_r;
	return (ssize_t)len;
}

static const struct stream_io fuzz_stream_io = {
	.read = fuzz_read,
	.write = fuzz_write,
};

static void
fuzz_set(const char *name, const char *value)
{
	const char *err;

	ASSERT(config_set(conf(), name, value, &err) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	struct smtpd_client client = { .addr = "192.0.2.1", .port = 1,
	    .name = "fuzz.test", .service = "smtp" };
	struct fuzz_io io;
	struct stream *s;
	uint8_t sel;
	int fd;

	if (!inited) {
		log_init("smtpd_fuzz");
		(void)log_open_file("/dev/null");
		config_set_global(config_new("/nonexistent"));
		fuzz_set("myhostname", "mx.fuzz.test");
		fuzz_set("smtpd_peername_lookup", "no");
		fuzz_set("user_database", "/nonexistent/users.db");
		fuzz_set("mynetworks", "192.0.2.0/28 [2001:db8::]/32");
		/* a failed AUTH would sleep out the failed-login delay */
		fuzz_set("auth_failure_delay_ms", "0");
		inited = true;
	}
	if (size < 1 || size > 256 * 1024)
		return 0;
	sel = data[0];
	fuzz_set("smtpd_forbid_bare_newline", sel & 1 ? "normalize" : "reject");
	fuzz_set("smtpd_sasl_auth_enable", sel & 2 ? "yes" : "no");
	fuzz_set("smtpd_tls_auth_only", sel & 2 ? "no" : "yes");
	fuzz_set("message_size_limit", sel & 4 ? "200" : "10m");
	fuzz_set("smtpd_recipient_limit", sel & 8 ? "3" : "1000");
	if (!smtpd_settings_load())
		abort();

	io = (struct fuzz_io){ .p = data + 1, .len = size - 1, .rng = sel >> 4 };
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		abort();
	s = stream_new(fd, 5, 0);
	stream_set_io(s, &fuzz_stream_io, &io);
	smtpd_session_run(s, &client, NULL);
	stream_free(&s);
	ASSERT(fuzz_open_clients == 0);
	return 0;
}
