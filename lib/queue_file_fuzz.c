/* SPDX-License-Identifier: MIT */
/*
 * queue_file_fuzz - libFuzzer target for the queue file reader
 *
 * The input is written as a queue file into a private spool and opened
 * with QUEUE_FILE_UPDATE | QUEUE_FILE_VERIFY. A file that opens is
 * dumped, its content read through, one recipient update is appended and
 * the file is reopened: the update must be visible and the file still
 * valid (so the status log writer and the reader agree on any file the
 * reader accepts).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macros.h"
#include "queue_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ID "0000000000000000AA"

static char fuzz_dir[256];
static char fuzz_path[300];
static FILE *devnull;

static void
fuzz_init(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/queue_file_fuzz.XXXXXX",
	    t != NULL ? t : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL || queue_dirs_create(fuzz_dir, 0700) < 0)
		abort();
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/active/%s", fuzz_dir,
	    FUZZ_ID);
	devnull = fopen("/dev/null", "w");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_file *qf;
	const char *error;
	char buf[4096];
	uint64_t off = 0;
	int fd;

	if (fuzz_dir[0] == '\0')
		fuzz_init();
	(void)unlink(fuzz_path);
	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ASSERT(fd >= 0);
	ASSERT(write(fd, data, size) == (ssize_t)size);
	(void)close(fd);

	qf = queue_file_open(fuzz_dir, QUEUE_ACTIVE, FUZZ_ID,
	    QUEUE_FILE_UPDATE | QUEUE_FILE_VERIFY, &error);
	if (qf == NULL)
		return 0;
	ASSERT(queue_file_rcpt_count(qf) > 0);
	ASSERT(queue_file_dump(qf, devnull, QUEUE_FILE_DUMP_CONTENT |
	    QUEUE_FILE_DUMP_LOG) == 0);
	for (;;) {
		ssize_t n = queue_file_read_content(qf, buf, sizeof(buf), off);

		ASSERT(n >= 0);
		if (n == 0)
			break;
		off += (uint64_t)n;
	}
	ASSERT(off == queue_file_content_length(qf));
	{
		struct queue_rcpt_update u = { .index = 0,
		    .state = QUEUE_RCPT_DELIVERED, .reason = "fuzz" };
		enum queue_rcpt_state before = queue_file_rcpt(qf, 0)->state;
		int r = queue_file_update(qf, &u, 1, &error);

		ASSERT(r == 0 || before == QUEUE_RCPT_BOUNCED);
		queue_file_close(&qf);
		qf = queue_file_open(fuzz_dir, QUEUE_ACTIVE, FUZZ_ID,
		    QUEUE_FILE_VERIFY, &error);
		ASSERT(qf != NULL);
		ASSERT(queue_file_rcpt(qf, 0)->state ==
		    (r == 0 ? QUEUE_RCPT_DELIVERED : before));
	}
	queue_file_close(&qf);
	return 0;
}
