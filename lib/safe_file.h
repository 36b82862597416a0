/* SPDX-License-Identifier: MIT */
/*
 * safe_file - durable files: atomic replace, directory fsync, locks
 *
 * A safe_file is written to a temporary name in the target's directory
 * (opened O_EXCL), then safe_file_commit() does fsync, rename over the
 * target and fsync of the directory: after commit returns 0 the new
 * content is on disk under its name, and a crash at any point leaves
 * either the old or the new file, never a mix. safe_file_abort() (or
 * free without commit) removes the temporary.
 *
 * All calls return 0/-1 (or NULL) with errno set and, where there is an
 * error_r, a static-text reason; none exits.
 */
#ifndef POSTERN_SAFE_FILE_H
#define POSTERN_SAFE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct str;

struct safe_file;

struct safe_file *safe_file_create(const char *path, mode_t mode);
int safe_file_fd(const struct safe_file *sf);
/* safe_file_write - write all of data (retrying short writes) */
int safe_file_write(struct safe_file *sf, const void *data, size_t len);
/* safe_file_commit - fsync, rename into place, fsync the directory; frees sf */
int safe_file_commit(struct safe_file **sfp);
/* safe_file_abort - remove the temporary and free sf (NULL allowed) */
void safe_file_abort(struct safe_file **sfp);

/* safe_file_replace - the whole cycle for data in memory */
int safe_file_replace(const char *path, const void *data, size_t len, mode_t mode);

/*
 * For writers whose temporary must be created by a library (Berkeley DB):
 * safe_file_tmpname - set out (replaced) to a random "PATH.tmpXXXXXXXX"
 * next to path; the caller still creates it O_EXCL and retries on EEXIST.
 * safe_file_install - fsync tmp, rename it over path, fsync the directory;
 * on failure tmp is left for the caller to unlink.
 */
int safe_file_tmpname(const char *path, struct str *out);
int safe_file_install(const char *tmp, const char *path);

/* fsync_dir - fsync a directory; fsync_parent - the directory holding path */
int fsync_dir(const char *dir);
int fsync_parent(const char *path);

/* mkdir_p - create dir and missing parents with mode (existing is fine) */
int mkdir_p(const char *dir, mode_t mode);

/* read_file - read a whole file into out (appended), failing past max bytes (E2BIG) */
/* (max 0 = no limit; on failure out is left as it was) */
int read_file(const char *path, struct str *out, size_t max);

/*
 * lock_file - open (creating) path and take an exclusive fcntl lock on it;
 * with wait false, fail at once with errno EWOULDBLOCK if another process
 * holds it. Returns the fd holding the lock (close it to release) or -1.
 * The lock dies with the process, so a crashed holder never blocks anyone.
 */
int lock_file(const char *path, bool wait);

/*
 * pid_file_write - take lock_file(path) and write our pid into it; the fd
 * stays open for the life of the process. -1 with EWOULDBLOCK if another
 * live process holds it. pid_file_read - the pid in path if a process holds
 * its lock, else 0; -1 on error.
 * fcntl locks are per process and dropped when the process closes ANY fd
 * of the file: never lock_file()/pid_file_read() a file you hold locked.
 */
int pid_file_write(const char *path);
pid_t pid_file_read(const char *path);

#endif
