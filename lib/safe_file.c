/* SPDX-License-Identifier: MIT */
/*
 * safe_file - durable files: atomic replace, directory fsync, locks
 *
 * DESCRIPTION
 *	See safe_file.h. A temporary is named "PATH.tmpXXXXXXXX" (eight
 *	random hex digits), so that it lies in the target's directory and
 *	rename(2) is atomic; it is opened O_CREAT|O_EXCL|O_NOFOLLOW, so a
 *	planted file or symlink of that name is never written through, and
 *	a name clash is retried with new random digits. A crash leaves at
 *	most a stale temporary, never a partial target.
 *
 *	safe_file_install() is the second half of the cycle on its own, for
 *	writers that must let a library create the temporary (Berkeley DB):
 *	fsync the file by name, rename it over the target, fsync the
 *	directory.
 *
 *	Locks are POSIX fcntl(2) record locks on the whole file. They die
 *	with the process and are not inherited across fork(2). CAVEAT: a
 *	process loses all its fcntl locks on a file when it closes any fd
 *	of that file, so a process must not pid_file_read() or lock_file()
 *	a file it already holds locked.
 *
 *	Every call returns 0/-1 (or NULL, or a pid) with errno set; nothing
 *	here logs or exits except on memory exhaustion (alloc.h).
 *
 * SEE ALSO
 *	rename(2), fsync(2), fcntl(2); PF mail_queue_enter(), OS
 *	fsqueue_envelope_dump().
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"

#define SAFE_FILE_TMP_TRIES	100
#define SAFE_FILE_READ_CHUNK	65536

struct safe_file {
	char *path;		/* the target */
	char *tmp;		/* the temporary we write */
	int fd;
};

/* safe_file_random - 32 random bits for a temporary name */
static uint32_t
safe_file_random(void)
{
	static uint32_t fallback;
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	/* Early boot or no getrandom: uniqueness comes from O_EXCL anyway. */
	fallback += (uint32_t)getpid() * 2654435761u + (uint32_t)time(NULL);
	return ++fallback;
}

/* safe_file_tmpname - set out to a fresh temporary name next to path */
int
safe_file_tmpname(const char *path, struct str *out)
{
	str_clear(out);
	if (str_printf(out, "%s.tmp%08x", path, safe_file_random()) < 0)
		return -1;
	if (str_len(out) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* safe_file_create - open a new temporary for path, O_EXCL */
struct safe_file *
safe_file_create(const char *path, mode_t mode)
{
	struct str *tmp = str_new(strlen(path) + 16, 0);
	struct safe_file *sf;
	int fd = -1, tries;

	for (tries = 0; tries < SAFE_FILE_TMP_TRIES; tries++) {
		if (safe_file_tmpname(path, tmp) < 0) {
			str_free(&tmp);
			return NULL;
		}
		fd = open(str_c(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		str_free(&tmp);
		return NULL;
	}
	sf = xmalloc(sizeof(*sf));
	sf->path = xstrdup(path);
	sf->tmp = str_steal(&tmp);
	sf->fd = fd;
	return sf;
}

/* safe_file_fd - the temporary's fd, for callers that write themselves */
int
safe_file_fd(const struct safe_file *sf)
{
	return sf->fd;
}

/* write_full - write all of data to fd, retrying short writes and EINTR */
static int
write_full(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* safe_file_write - write all of data to the temporary */
int
safe_file_write(struct safe_file *sf, const void *data, size_t len)
{
	return write_full(sf->fd, data, len);
}

/* safe_file_free - release sf, removing the temporary if unlink_tmp */
static void
safe_file_free(struct safe_file **sfp, bool unlink_tmp)
{
	struct safe_file *sf = *sfp;
	int saved = errno;

	if (sf == NULL)
		return;
	if (sf->fd >= 0)
		(void)close(sf->fd);
	if (unlink_tmp)
		(void)unlink(sf->tmp);
	free(sf->path);
	free(sf->tmp);
	free(sf);
	*sfp = NULL;
	errno = saved;
}

/* safe_file_commit - fsync, rename into place, fsync the directory */
int
safe_file_commit(struct safe_file **sfp)
{
	struct safe_file *sf = *sfp;
	int fd;

	if (fsync(sf->fd) < 0) {
		safe_file_free(sfp, true);
		return -1;
	}
	fd = sf->fd;
	sf->fd = -1;
	/* close() can report a deferred write error (NFS): take it seriously. */
	if (close(fd) < 0 || rename(sf->tmp, sf->path) < 0) {
		safe_file_free(sfp, true);
		return -1;
	}
	if (fsync_parent(sf->path) < 0) {
		/* The new file is in place but maybe not durable yet. */
		safe_file_free(sfp, false);
		return -1;
	}
	safe_file_free(sfp, false);
	return 0;
}

/* safe_file_abort - remove the temporary and free sf */
void
safe_file_abort(struct safe_file **sfp)
{
	safe_file_free(sfp, true);
}

/* safe_file_replace - create, write, commit */
int
safe_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	struct safe_file *sf;

	if ((sf = safe_file_create(path, mode)) == NULL)
		return -1;
	if (safe_file_write(sf, data, len) < 0) {
		safe_file_abort(&sf);
		return -1;
	}
	return safe_file_commit(&sf);
}

/* safe_file_install - fsync tmp, rename it over path, fsync the directory */
int
safe_file_install(const char *tmp, const char *path)
{
	int fd, saved;

	if ((fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	(void)close(fd);
	if (rename(tmp, path) < 0)
		return -1;
	return fsync_parent(path);
}

/* fsync_dir - make a directory's entries durable */
int
fsync_dir(const char *dir)
{
	int fd, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0 && errno != EINVAL) {
		/* EINVAL: a file system that cannot sync directories. */
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	(void)close(fd);
	return 0;
}

/* fsync_parent - fsync the directory that holds path */
int
fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return fsync_dir(".");
	n = (size_t)(slash - path);
	if (n == 0)
		return fsync_dir("/");
	if (n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return fsync_dir(dir);
}

/* mkdir_p - create dir and its missing parents */
int
mkdir_p(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir), i;

	if (len == 0) {
		errno = ENOENT;
		return -1;
	}
	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, dir, len + 1);
	/* Create each prefix ending before a '/', then the whole path. */
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;	/* "a//b" */
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		if (i < len)
			buf[i] = '/';
	}
	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* read_file - append the whole file to out; E2BIG past max (0 = no limit) */
int
read_file(const char *path, struct str *out, size_t max)
{
	size_t start = str_len(out), total = 0, want;
	ssize_t n;
	char *p;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	for (;;) {
		want = SAFE_FILE_READ_CHUNK;
		/* Read one byte past max so that a file of exactly max passes. */
		if (max != 0 && want > max - total + 1)
			want = max - total + 1;
		if ((p = str_reserve(out, want)) == NULL)
			goto fail;
		n = read(fd, p, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (max != 0 && total > max) {
			errno = E2BIG;
			goto fail;
		}
		str_commit(out, (size_t)n);
	}
	(void)close(fd);
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	str_truncate(out, start);
	/* A read past the committed length may have overwritten the NUL. */
	str_data(out)[str_len(out)] = '\0';
	errno = saved;
	return -1;
}

/* lock_file - open path and take an exclusive fcntl lock */
int
lock_file(const char *path, bool wait)
{
	struct flock fl;
	int fd, saved;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;		/* the whole file, however long */
	while (fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		saved = errno;
		(void)close(fd);
		/* POSIX allows EACCES or EAGAIN for "held by another". */
		errno = saved == EACCES || saved == EAGAIN ? EWOULDBLOCK : saved;
		return -1;
	}
	return fd;
}

/* pid_file_write - lock path and write our pid; keeps the fd open */
int
pid_file_write(const char *path)
{
	char buf[32];
	int fd, len, saved;

	if ((fd = lock_file(path, false)) < 0)
		return -1;
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    write_full(fd, buf, (size_t)len) < 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	/* The fd (and the lock) lives as long as the process: no close. */
	return 0;
}

/* pid_file_read - the pid of the live process holding path's lock, else 0 */
pid_t
pid_file_read(const char *path)
{
	struct flock fl;
	char buf[32];
	unsigned long pid;
	ssize_t n;
	size_t len;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) < 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	if (fl.l_type == F_UNLCK) {
		/* Stale: the writer died (or never existed). */
		(void)close(fd);
		return 0;
	}
	/* Trust the kernel's idea of the holder; the text is a fallback
	 * for a holder in another pid namespace (l_pid 0). */
	if (fl.l_pid > 0) {
		(void)close(fd);
		return fl.l_pid;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	(void)close(fd);
	if (n < 0)
		return -1;
	len = (size_t)n;
	while (len > 0 && buf[len - 1] == '\n')
		len--;
	if (!str_to_ulong(buf, len, INT_MAX, &pid) || pid == 0) {
		errno = EINVAL;
		return -1;
	}
	return (pid_t)pid;
}
