/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_fuzz - libFuzzer target: a whole LMTP session from memory
 *
 * DESCRIPTION
 *	The input is what a client sends. The session runs on a stream
 *	whose I/O hook reads the input in pseudo-random pieces and throws
 *	the replies away (as smtpd_fuzz does), so no sockets are involved.
 *	Deliveries go to a real store in a temporary directory made once
 *	per process (fsync off), with a user database holding "alice" and
 *	"bob", so the whole path - token splitting, RCPT resolution, quota,
 *	spool, MIME parse, store append, duplicates - is exercised.
 *
 *	Byte 0 picks settings: bit 0 a 300-byte size limit, bit 1 a
 *	2000-byte storage quota, bit 2 lmtp_save_to_detail_mailbox, bit 3
 *	Message-ID duplicate suppression, bits 4-7 the piece-size seed.
 *
 *	The fuzz build links only this object and libpostern, so the lmtpd
 *	sources (all but lmtpd.c, which holds main) are included here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "userdb.h"

#include "lmtpd_data.c"
#include "lmtpd_deliver.c"
#include "lmtpd_dup.c"
#include "lmtpd_plan.c"
#include "lmtpd_session.c"
#include "lmtpd_sieve.c"
#include "lmtpd_settings.c"
#include "lmtpd_vacation.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

/* fuzz_init - config, a temporary store and user database */
static void
fuzz_init(void)
{
	char dir[] = "/tmp/lmtpd_fuzz.XXXXXX";
	char *p;
	const char *err;

	log_init("lmtpd_fuzz");
	(void)log_open_file("/dev/null");
	config_set_global(config_new("/nonexistent"));
	if (mkdtemp(dir) == NULL)
		abort();
	fuzz_set("myhostname", "lmtp.fuzz.test");
	fuzz_set("mydestination", "localhost, fuzz.test");
	p = xasprintf("%s/store", dir);
	fuzz_set("store_directory", p);
	if (mkdir(p, 0700) < 0)
		abort();
	free(p);
	p = xasprintf("%s/dup", dir);
	fuzz_set("lmtp_duplicate_directory", p);
	free(p);
	p = xasprintf("%s/users.db", dir);
	fuzz_set("user_database", p);
	if (userdb_add(p, "alice", "pw", &err) < 0 ||
	    userdb_add(p, "bob", "pw", &err) < 0)
		abort();
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	struct fuzz_io io;
	struct stream *s;
	uint8_t sel;
	int fd;

	if (!inited) {
		fuzz_init();
		inited = true;
	}
	if (size < 1 || size > 256 * 1024)
		return 0;
	sel = data[0];
	fuzz_set("lmtpd_message_size_limit", sel & 1 ? "300" : "10m");
	fuzz_set("quota_storage_limit", sel & 2 ? "2000" : "0");
	fuzz_set("lmtp_save_to_detail_mailbox", sel & 4 ? "yes" : "no");
	fuzz_set("lmtp_duplicate_window", sel & 8 ? "1h" : "0");
	if (!lmtpd_settings_load())
		abort();
	lmtpd_settings.fsync = false;

	io = (struct fuzz_io){ .p = data + 1, .len = size - 1, .rng = sel >> 4 };
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		abort();
	s = stream_new(fd, 5, 0);
	stream_set_io(s, &fuzz_stream_io, &io);
	lmtpd_session_run(s, "fuzz");
	stream_free(&s);
	/* BDB's private regions are not seen by LeakSanitizer as reachable */
	lmtpd_deliver_deinit();
	return 0;
}
