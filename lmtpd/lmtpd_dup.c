/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_dup - duplicate suppression by Message-ID (lmtp_duplicate_window)
 *
 * DESCRIPTION
 *	One small file per user, $lmtp_duplicate_directory/USER (the name
 *	is allow-listed by the user database), holding fixed 16-byte
 *	records: u64 FNV-1a hash of the Message-ID, i64 delivery time (host
 *	order). A message whose Message-ID hash was delivered to the same
 *	user less than lmtp_duplicate_window ago is not stored again (the
 *	LMTP client still gets 250), as Dovecot's lmtp duplicate check does
 *	for mailing-list copies that arrive by several paths.
 *
 *	Readers take no lock; writers append under an fcntl lock on the
 *	file and, once it holds more than LMTPD_DUP_COMPACT records,
 *	rewrite it in place keeping only records inside the window.
 *	XXX: the rewrite is not atomic; a crash in it, or a reader racing
 *	it, can forget records. That costs at most a duplicate delivery,
 *	which is what this feature avoids in the common case only. The file
 *	is not fsync'd for the same reason. A hash collision (2^-64) would
 *	drop a message; the window keeps the set small.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"

#include "lmtpd.h"

#define LMTPD_DUP_REC		16
#define LMTPD_DUP_COMPACT	4096
#define LMTPD_DUP_READ_MAX	(1024 * 1024 * LMTPD_DUP_REC)

/* lmtpd_dup_hash - 64-bit FNV-1a */
static uint64_t
lmtpd_dup_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* lmtpd_dup_path - $lmtp_duplicate_directory/user */
static char *
lmtpd_dup_path(const char *user)
{
	return xasprintf("%s/%s", lmtpd_settings.dup_dir, user);
}

/* lmtpd_dup_read - the whole file into *buf_r (*n_r records); 0, or -1 */
static int
lmtpd_dup_read(int fd, unsigned char **buf_r, size_t *n_r)
{
	struct stat st;
	size_t len, done = 0;
	ssize_t r;

	*buf_r = NULL;
	*n_r = 0;
	if (fstat(fd, &st) < 0)
		return -1;
	len = (size_t)st.st_size - (size_t)st.st_size % LMTPD_DUP_REC;
	if (len > LMTPD_DUP_READ_MAX)
		len = LMTPD_DUP_READ_MAX;
	*buf_r = xmalloc(len + 1);
	while (done < len) {
		r = pread(fd, *buf_r + done, len - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			XFREE(*buf_r);
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*n_r = done / LMTPD_DUP_REC;
	return 0;
}

/* lmtpd_dup_find - is hash in buf[0..n) at or after since? */
static bool
lmtpd_dup_find(const unsigned char *buf, size_t n, uint64_t hash, int64_t since)
{
	uint64_t h;
	int64_t t;

	while (n-- > 0) {
		memcpy(&h, buf + n * LMTPD_DUP_REC, 8);
		memcpy(&t, buf + n * LMTPD_DUP_REC + 8, 8);
		if (h == hash && t >= since)
			return true;
	}
	return false;
}

/* lmtpd_dup_check - see lmtpd.h */
int
lmtpd_dup_check(const char *user, const char *message_id, const char **error_r)
{
	char *path = lmtpd_dup_path(user);
	unsigned char *buf;
	size_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = strerror(errno);
		return -1;
	}
	if (lmtpd_dup_read(fd, &buf, &n) < 0) {
		*error_r = strerror(errno);
		(void)close(fd);
		return -1;
	}
	(void)close(fd);
	ret = lmtpd_dup_find(buf, n, lmtpd_dup_hash(message_id),
	    (int64_t)time(NULL) - (int64_t)lmtpd_settings.dup_window) ? 1 : 0;
	free(buf);
	return ret;
}

/* lmtpd_dup_mark - see lmtpd.h */
int
lmtpd_dup_mark(const char *user, const char *message_id, const char **error_r)
{
	char *path = lmtpd_dup_path(user);
	unsigned char rec[LMTPD_DUP_REC], *buf = NULL;
	uint64_t h = lmtpd_dup_hash(message_id);
	int64_t now = (int64_t)time(NULL), t;
	size_t n, i, keep = 0;
	struct stat st;
	int fd;

	if ((fd = lock_file(path, true)) < 0 && errno == ENOENT &&
	    mkdir_p(lmtpd_settings.dup_dir, 0700) == 0)
		fd = lock_file(path, true);
	free(path);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	if ((size_t)st.st_size / LMTPD_DUP_REC > LMTPD_DUP_COMPACT) {
		if (lmtpd_dup_read(fd, &buf, &n) < 0)
			goto fail;
		for (i = 0; i < n; i++) {
			memcpy(&t, buf + i * LMTPD_DUP_REC + 8, 8);
			if (t >= now - (int64_t)lmtpd_settings.dup_window)
				memmove(buf + keep++ * LMTPD_DUP_REC,
				    buf + i * LMTPD_DUP_REC, LMTPD_DUP_REC);
		}
		if (pwrite(fd, buf, keep * LMTPD_DUP_REC, 0) !=
		    (ssize_t)(keep * LMTPD_DUP_REC) ||
		    ftruncate(fd, (off_t)(keep * LMTPD_DUP_REC)) < 0)
			goto fail;
		st.st_size = (off_t)(keep * LMTPD_DUP_REC);
	}
	memcpy(rec, &h, 8);
	memcpy(rec + 8, &now, 8);
	/* a torn earlier record would misalign us: write on a boundary */
	if (pwrite(fd, rec, sizeof(rec), st.st_size - st.st_size % LMTPD_DUP_REC) !=
	    (ssize_t)sizeof(rec))
		goto fail;
	free(buf);
	(void)close(fd);
	return 0;
fail:
	*error_r = strerror(errno);
	free(buf);
	(void)close(fd);
	return -1;
}
