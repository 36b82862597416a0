/* SPDX-License-Identifier: MIT */
/*
 * store_util - small helpers for the mail store
 *
 * DESCRIPTION
 *	Checksums (CRC-32 for log entries and the mailbox list, 64-bit
 *	FNV-1a for delivery tokens), the kernel boot ID (to detect that
 *	an index was last written before a reboot), the crash-test kill
 *	points, whole-buffer I/O, fsync wrappers that honour
 *	store_set_fsync(), and the allow-lists for user names, mailbox
 *	names, keywords and tokens.
 *
 *	Kill points: with POSTERN_STORE_KILLPOINT=N in the environment, the
 *	N-th call of store_killpoint() in this process calls _exit(77).
 *	Every durable step of the store calls it, so a test can stop a
 *	writer between any two of them. Unset, it costs one branch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "store/store_private.h"

static uint32_t crc_table[256];
static bool crc_table_ready;

/* store_crc32 - CRC-32 (IEEE, reflected), continuing from crc (start 0) */
uint32_t
store_crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;

	if (!crc_table_ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
		crc_table_ready = true;
	}
	crc = ~crc;
	while (n-- > 0)
		crc = crc_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* store_hash64 - FNV-1a 64, never 0 (0 means "no token") */
uint64_t
store_hash64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n-- > 0) {
		h ^= *s++;
		h *= 0x100000001b3ull;
	}
	return h == 0 ? 1 : h;
}

static uint8_t boot_id[16];
static bool boot_id_ready;

/*
 * store_boot_id - 16 bytes identifying this boot of the kernel. Where
 * /proc is missing it is all zeros, which disables the rebuild after a
 * reboot (XXX: then power loss can leave a stale index).
 */
const uint8_t *
store_boot_id(void)
{
	if (!boot_id_ready) {
		char buf[64];
		int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		size_t j = 0;

		if (fd >= 0)
			close(fd);
		for (ssize_t i = 0; i < n && j < 32; i++) {
			int c = buf[i], v;

			if (c >= '0' && c <= '9')
				v = c - '0';
			else if (c >= 'a' && c <= 'f')
				v = c - 'a' + 10;
			else
				continue;
			boot_id[j / 2] |= (uint8_t)(v << ((j % 2) ? 0 : 4));
			j++;
		}
		boot_id_ready = true;
	}
	return boot_id;
}

static long killpoint_target = -2;
static long killpoint_count;

bool
store_killpoints_active(void)
{
	if (killpoint_target == -2) {
		const char *e = getenv("POSTERN_STORE_KILLPOINT");
		unsigned long v;

		killpoint_target = -1;
		if (e != NULL && str_to_ulong(e, strlen(e), 1000000000ul, &v) && v > 0)
			killpoint_target = (long)v;
	}
	return killpoint_target > 0;
}

/* store_killpoint - one durable step done; maybe die here (crash tests) */
void
store_killpoint(void)
{
	if (!store_killpoints_active())
		return;
	if (++killpoint_count == killpoint_target)
		_exit(77);
}

void
store_killpoint_set(long n)
{
	killpoint_target = n > 0 ? n : -1;
	killpoint_count = 0;
}

/* store_random64 - non-cryptographic unique-enough id (log ids) */
uint64_t
store_random64(void)
{
	static uint64_t counter;
	struct timeval tv;
	uint64_t x;

	gettimeofday(&tv, NULL);
	x = ((uint64_t)tv.tv_sec << 20) ^ (uint64_t)tv.tv_usec ^
	    ((uint64_t)getpid() << 40) ^ (++counter * 0x9e3779b97f4a7c15ull);
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x == 0 ? 1 : x;
}

/* store_set_err - record the failure class and reason; returns -1 */
int
store_set_err(struct store *store, enum store_error err, const char **error_r,
    const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	store->err = err;
	str_clear(store->errbuf);
	va_start(ap, fmt);
	(void)str_vprintf(store->errbuf, fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = str_c(store->errbuf);
	errno = saved;
	return -1;
}

/* store_set_syserr - STORE_ERR_TEMP from errno (ENOENT -> NOTFOUND, EDQUOT/ENOSPC -> QUOTA? no: TEMP) */
int
store_set_syserr(struct store *store, const char **error_r, const char *what,
    const char *path)
{
	int e = errno;

	return store_set_err(store, e == ENOENT ? STORE_ERR_NOTFOUND :
	    STORE_ERR_TEMP, error_r, "%s %s: %s", what, path, strerror(e));
}

int
store_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, s, n, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* store_pread_all - read exactly n bytes; short file is -1 with EIO */
int
store_pread_all(int fd, void *p, size_t n, off_t off)
{
	char *s = p;

	while (n > 0) {
		ssize_t r = pread(fd, s, n, off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		s += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

int
store_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* store_fsync - fdatasync unless disabled; then one kill point */
int
store_fsync(struct store *store, int fd)
{
	if (store->fsync_on && fdatasync(fd) < 0)
		return -1;
	store_killpoint();
	return 0;
}

/* store_fsync_path - fsync a directory by name */
int
store_fsync_path(struct store *store, const char *dir)
{
	int fd, ret = 0;

	if (!store->fsync_on) {
		store_killpoint();
		return 0;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0)
		ret = -1;
	close(fd);
	store_killpoint();
	return ret;
}

/* store_mkdir - mkdir 0700; existing is fine */
int
store_mkdir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* store_rm_rf - remove a directory tree (no symlinks followed) */
int
store_rm_rf(const char *path)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		char *sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		if (unlink(sub) < 0) {
			if (errno == EISDIR || errno == EPERM) {
				if (store_rm_rf(sub) < 0)
					ret = -1;
			} else if (errno != ENOENT)
				ret = -1;
		}
		free(sub);
	}
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)
		ret = -1;
	return ret;
}

/*
 * store_replace_file - write data to path.tmp, fsync, rename over path,
 * fsync the directory. Like safe_file_replace, but its syncs go through
 * store_fsync so that the store's no-fsync mode (benchmark fills) holds;
 * callers hold the user lock, so the fixed .tmp name cannot collide.
 */
int
store_replace_file(struct store *store, const char *path, const void *data,
    size_t len)
{
	char *tmp = xasprintf("%s.tmp", path);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd, ret = -1;

	if (slash != NULL)
		*slash = '\0';
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (store_write_all(fd, data, len) == 0 &&
		    store_fsync(store, fd) == 0 && close(fd) == 0) {
			fd = -1;
			if (rename(tmp, path) == 0 &&
			    store_fsync_path(store, slash != NULL ? dir : ".") == 0)
				ret = 0;
		}
		if (fd >= 0)
			close(fd);
		if (ret < 0)
			(void)unlink(tmp);
	}
	free(tmp);
	free(dir);
	return ret;
}

/* store_lock_fd - exclusive fcntl lock on the whole of fd */
int
store_lock_fd(int fd, bool wait)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (;;) {
		if (fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

bool
store_user_ok(const char *user)
{
	size_t n = 0;

	if (user == NULL || user[0] == '.' || user[0] == '\0')
		return false;
	for (const char *p = user; *p != '\0'; p++, n++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '@' || c == '+' || c == '-'))
			return false;
	}
	return n <= 128;
}

/* utf8_len - length of the valid UTF-8 sequence at p, or 0 */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool
store_mailbox_name_ok(const char *name, const char **why_r)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t comp_len = 0, total = 0;
	unsigned depth = 1;
	const unsigned char *comp = p;
	const char *why = NULL;

	if (name == NULL || *name == '\0')
		why = "empty mailbox name";
	while (why == NULL) {
		if (*p == '/' || *p == '\0') {
			if (comp_len == 0)
				why = "empty hierarchy level in mailbox name";
			else if ((comp_len == 1 && comp[0] == '.') ||
			    (comp_len == 2 && comp[0] == '.' && comp[1] == '.'))
				why = "'.' or '..' in mailbox name";
			if (why != NULL || *p == '\0')
				break;
			if (++depth > 32)
				why = "mailbox name too deep";
			p++;
			total++;
			comp = p;
			comp_len = 0;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			why = "control character in mailbox name";
		else if (*p == '*' || *p == '%')
			why = "wildcard in mailbox name";
		else {
			size_t n = utf8_len(p);

			if (n == 0)
				why = "mailbox name is not UTF-8";
			else {
				p += n;
				total += n;
				comp_len += n;
			}
		}
		if (total > STORE_MAILBOX_NAME_MAX)
			why = "mailbox name too long";
	}
	if (why != NULL && why_r != NULL)
		*why_r = why;
	return why == NULL;
}

/* store_keyword_ok - an IMAP atom usable as a keyword, not a \system flag */
bool
store_keyword_ok(const char *name)
{
	size_t n = 0;

	if (name == NULL || *name == '\0' || *name == '\\')
		return false;
	for (const char *p = name; *p != '\0'; p++, n++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return n <= STORE_KEYWORD_MAX;
}

bool
store_token_ok(const char *token)
{
	size_t n = 0;

	if (token == NULL || *token == '\0')
		return false;
	for (const char *p = token; *p != '\0'; p++, n++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return n <= STORE_TOKEN_MAX;
}

bool
store_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

void
store_uids_add(struct store_uids *set, uint32_t uid)
{
	if (set->count == set->cap) {
		set->cap = set->cap == 0 ? 16 : set->cap * 2;
		set->uids = xreallocarray(set->uids, set->cap, sizeof(uint32_t));
	}
	set->uids[set->count++] = uid;
}

void
store_uids_clear(struct store_uids *set)
{
	free(set->uids);
	set->uids = NULL;
	set->count = set->cap = 0;
}
