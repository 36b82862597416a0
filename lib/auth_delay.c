/* SPDX-License-Identifier: MIT */
/*
 * auth_delay - failed-login delays in a shared, fixed-size table
 *
 * DESCRIPTION
 *	See auth_delay.h. The file is a 64-byte header (magic, slot count,
 *	set size, the 32-byte hash secret) and then the slots, 32 bytes
 *	each, in native byte order: it is local soft state, never copied
 *	between hosts. A slot's hash is the first 8 bytes of
 *	HMAC-SHA256(secret, key), 0 meaning free (a real 0 becomes 1); the
 *	set is hash modulo the number of sets. Two keys with one 64-bit
 *	hash share a slot: the cost is a shared delay, never a wrong
 *	password accepted.
 *
 *	The lock is fcntl(F_SETLKW) on the whole file, held only while
 *	slots are read or written, and taken per process (a forked child
 *	opens its own table). Under the lock each operation checks the
 *	file's size and header first and remakes the table if either is
 *	wrong, so a truncated or foreign file is repaired instead of
 *	faulting the mapping (SIGBUS) or being trusted.
 *
 * SECURITY
 *	The file is opened with O_NOFOLLOW and must be a regular file.
 *	Whoever can write it can change delays (nothing more): keep it in
 *	a directory only the mail system's users can write, as
 *	$auth_failure_delay_table in $data_directory is.
 *
 * SEE ALSO
 *	auth.c (the caller), postern.conf(5) auth_failure_delay_*
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "alloc.h"
#include "auth_delay.h"
#include "macros.h"

#define AUTH_DELAY_MAGIC	"PSTDLY01"
#define AUTH_DELAY_SECRET	32

struct auth_delay_header {
	char magic[8];
	uint32_t slots;
	uint32_t ways;
	unsigned char secret[AUTH_DELAY_SECRET];
	unsigned char spare[16];
};

struct auth_delay_slot {
	uint64_t hash;		/* 0: free */
	uint32_t count;		/* failures in a row, before decay */
	uint32_t spare;
	int64_t last_ms;	/* the last failure */
	int64_t until_ms;	/* no answer before this */
};

struct auth_delay {
	int fd;
	void *map;
	size_t size;
	struct auth_delay_settings s;
	unsigned count_max;	/* the count whose delay is max */
	struct auth_delay_header *hdr;
	struct auth_delay_slot *slot;
};

/* auth_delay_for - see auth_delay.h */
unsigned
auth_delay_for(const struct auth_delay_settings *s, unsigned count)
{
	uint64_t d;

	if (count == 0)
		return 0;
	if (count - 1 >= 32)
		return s->max_ms;
	d = (uint64_t)s->base_ms << (count - 1);
	return d >= s->max_ms ? s->max_ms : (unsigned)d;
}

/* auth_delay_now_ms - see auth_delay.h */
int64_t
auth_delay_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* auth_delay_sleep - see auth_delay.h */
void
auth_delay_sleep(unsigned ms)
{
	struct timespec ts, rem;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
}

/* auth_delay_ip_key - see auth_delay.h */
bool
auth_delay_ip_key(const char *addr, struct str *out)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	if (addr == NULL)
		return false;
	str_clear(out);
	if (inet_pton(AF_INET, addr, a) == 1) {
		(void)str_printf(out, "ip:%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		return true;
	}
	if (inet_pton(AF_INET6, addr, a) != 1)
		return false;
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		(void)str_printf(out, "ip:%u.%u.%u.%u", a[12], a[13], a[14],
		    a[15]);
		return true;
	}
	memset(a + 8, 0, 8);
	if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
		return false;
	(void)str_printf(out, "ip:%s/64", text);
	return true;
}

/* auth_delay_lock - take (F_WRLCK) or drop (F_UNLCK) the table lock */
static int
auth_delay_lock(struct auth_delay *ad, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	while (fcntl(ad->fd, F_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* auth_delay_init - (re)make the table: zeroed slots, a new secret */
static int
auth_delay_init(struct auth_delay *ad)
{
	if (ftruncate(ad->fd, 0) < 0 || ftruncate(ad->fd, (off_t)ad->size) < 0)
		return -1;
	if (RAND_bytes(ad->hdr->secret, AUTH_DELAY_SECRET) != 1) {
		errno = EIO;
		return -1;
	}
	ad->hdr->slots = ad->s.slots;
	ad->hdr->ways = AUTH_DELAY_WAYS;
	/* The magic last: a half-made table is not taken for one. */
	memcpy(ad->hdr->magic, AUTH_DELAY_MAGIC, sizeof(ad->hdr->magic));
	return 0;
}

/*
 * auth_delay_begin - lock and make sure the table is whole; 0 locked,
 * -1 (not locked) with *error_r
 */
static int
auth_delay_begin(struct auth_delay *ad, const char **error_r)
{
	struct stat st;
	int saved;

	if (auth_delay_lock(ad, F_WRLCK) < 0) {
		*error_r = "auth delay table: lock";
		return -1;
	}
	if (fstat(ad->fd, &st) < 0)
		goto fail;
	if ((size_t)st.st_size == ad->size &&
	    memcmp(ad->hdr->magic, AUTH_DELAY_MAGIC,
	    sizeof(ad->hdr->magic)) == 0 && ad->hdr->slots == ad->s.slots &&
	    ad->hdr->ways == AUTH_DELAY_WAYS)
		return 0;
	if (auth_delay_init(ad) == 0)
		return 0;
fail:
	saved = errno;
	(void)auth_delay_lock(ad, F_UNLCK);
	errno = saved;
	*error_r = "auth delay table: cannot check or make it";
	return -1;
}

/* auth_delay_end - let go of the lock */
static void
auth_delay_end(struct auth_delay *ad)
{
	(void)auth_delay_lock(ad, F_UNLCK);
}

/* auth_delay_open - see auth_delay.h */
struct auth_delay *
auth_delay_open(const char *path, const struct auth_delay_settings *s,
    const char **error_r)
{
	struct auth_delay *ad;
	struct stat st;
	unsigned slots = s->slots != 0 ? s->slots : AUTH_DELAY_SLOTS;
	int fd, saved;

	if (s->base_ms == 0 || s->max_ms < s->base_ms) {
		*error_r = "auth delay: want 0 < base <= max";
		errno = EINVAL;
		return NULL;
	}
	if (slots < AUTH_DELAY_WAYS || (slots & (slots - 1)) != 0 ||
	    slots > (1U << 24)) {
		*error_r = "auth delay: slots must be a power of two";
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd >= 0)
		(void)fchmod(fd, 0660);		/* past the daemons' umask 077 */
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*error_r = "auth delay table: open";
		return NULL;
	}
	errno = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		saved = errno;
		(void)close(fd);
		errno = saved != 0 ? saved : EINVAL;
		*error_r = "auth delay table: not a regular file";
		return NULL;
	}
	ad = xcalloc(1, sizeof(*ad));
	ad->fd = fd;
	ad->s = *s;
	ad->s.slots = slots;
	ad->size = sizeof(struct auth_delay_header) +
	    (size_t)slots * sizeof(struct auth_delay_slot);
	for (ad->count_max = 1; auth_delay_for(&ad->s, ad->count_max) <
	    ad->s.max_ms; ad->count_max++)
		;
	/*
	 * Size the file before mapping it: a mapping past the end would
	 * fault. auth_delay_begin() then finds a zero header and makes the
	 * table; a file already whole is left alone.
	 */
	if (auth_delay_lock(ad, F_WRLCK) < 0 || fstat(fd, &st) < 0 ||
	    ((size_t)st.st_size != ad->size &&
	    ftruncate(fd, (off_t)ad->size) < 0)) {
		*error_r = "auth delay table: cannot size it";
		goto fail;
	}
	auth_delay_end(ad);
	ad->map = mmap(NULL, ad->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0);
	if (ad->map == MAP_FAILED) {
		ad->map = NULL;
		*error_r = "auth delay table: mmap";
		goto fail;
	}
	ad->hdr = ad->map;
	ad->slot = (struct auth_delay_slot *)(void *)(ad->hdr + 1);
	if (auth_delay_begin(ad, error_r) < 0)
		goto fail;
	auth_delay_end(ad);
	return ad;
fail:
	saved = errno;
	auth_delay_close(&ad);
	errno = saved;
	return NULL;
}

/* auth_delay_close - see auth_delay.h */
void
auth_delay_close(struct auth_delay **adp)
{
	struct auth_delay *ad = *adp;

	if (ad == NULL)
		return;
	if (ad->map != NULL)
		(void)munmap(ad->map, ad->size);
	(void)close(ad->fd);
	free(ad);
	*adp = NULL;
}

/* auth_delay_hash - the key's keyed hash (never 0); false if HMAC failed */
static bool
auth_delay_hash(const struct auth_delay *ad, const char *key, uint64_t *h_r)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	size_t n = strnlen(key, AUTH_DELAY_KEY_MAX);

	if (HMAC(EVP_sha256(), ad->hdr->secret, AUTH_DELAY_SECRET,
	    (const unsigned char *)key, n, mac, &mac_len) == NULL ||
	    mac_len < sizeof(*h_r))
		return false;
	memcpy(h_r, mac, sizeof(*h_r));
	if (*h_r == 0)
		*h_r = 1;
	return true;
}

/* auth_delay_set - the first slot of the set for hash */
static struct auth_delay_slot *
auth_delay_set(struct auth_delay *ad, uint64_t h)
{
	uint64_t sets = ad->s.slots / AUTH_DELAY_WAYS;

	return ad->slot + (size_t)(h % sets) * AUTH_DELAY_WAYS;
}

/* auth_delay_decayed - a slot's count at now, after decay */
static unsigned
auth_delay_decayed(const struct auth_delay *ad,
    const struct auth_delay_slot *sl, int64_t now)
{
	int64_t quiet = now - sl->last_ms;
	uint64_t drop;

	if (ad->s.decay_ms == 0 || quiet <= 0)
		return sl->count;
	drop = (uint64_t)quiet / ad->s.decay_ms;
	return drop >= sl->count ? 0 : sl->count - (unsigned)drop;
}

/* auth_delay_wait - a slot's remaining wait at now, at most max */
static unsigned
auth_delay_wait(const struct auth_delay *ad, const struct auth_delay_slot *sl,
    int64_t now)
{
	int64_t w = sl->until_ms - now;

	if (w <= 0)
		return 0;
	return w >= (int64_t)ad->s.max_ms ? ad->s.max_ms : (unsigned)w;
}

/* auth_delay_find - key's slot, or NULL */
static struct auth_delay_slot *
auth_delay_find(struct auth_delay *ad, uint64_t h)
{
	struct auth_delay_slot *set = auth_delay_set(ad, h);
	size_t i;

	for (i = 0; i < AUTH_DELAY_WAYS; i++)
		if (set[i].hash == h)
			return &set[i];
	return NULL;
}

/*
 * auth_delay_take - key's slot, or a new one in its set: free first,
 * then one whose wait ran out and whose count decayed to nothing, then
 * the lowest count, then the oldest failure
 */
static struct auth_delay_slot *
auth_delay_take(struct auth_delay *ad, uint64_t h, int64_t now)
{
	struct auth_delay_slot *set, *sl, *best = NULL;
	unsigned c, best_c = 0;
	bool idle, best_idle = false;
	size_t i;

	if ((sl = auth_delay_find(ad, h)) != NULL)
		return sl;
	set = auth_delay_set(ad, h);
	for (i = 0; i < AUTH_DELAY_WAYS; i++) {
		sl = &set[i];
		if (sl->hash == 0) {
			best = sl;
			break;
		}
		c = auth_delay_decayed(ad, sl, now);
		idle = c == 0 && auth_delay_wait(ad, sl, now) == 0;
		if (best == NULL || (idle && !best_idle) ||
		    (idle == best_idle && (c < best_c || (c == best_c &&
		    sl->last_ms < best->last_ms)))) {
			best = sl;
			best_c = c;
			best_idle = idle;
		}
	}
	memset(best, 0, sizeof(*best));
	best->hash = h;
	return best;
}

/* auth_delay_pending - see auth_delay.h */
int
auth_delay_pending(struct auth_delay *ad, const char *const *keys, size_t n,
    int64_t now_ms, unsigned *wait_r, const char **error_r)
{
	struct auth_delay_slot *sl;
	unsigned w;
	uint64_t h;
	size_t i;

	*wait_r = 0;
	if (auth_delay_begin(ad, error_r) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!auth_delay_hash(ad, keys[i], &h)) {
			auth_delay_end(ad);
			*error_r = "auth delay table: HMAC failed";
			return -1;
		}
		if ((sl = auth_delay_find(ad, h)) != NULL &&
		    (w = auth_delay_wait(ad, sl, now_ms)) > *wait_r)
			*wait_r = w;
	}
	auth_delay_end(ad);
	return 0;
}

/* auth_delay_fail - see auth_delay.h */
int
auth_delay_fail(struct auth_delay *ad, const char *const *keys, size_t n,
    int64_t now_ms, unsigned *wait_r, const char **error_r)
{
	struct auth_delay_slot *sl;
	unsigned c, w;
	int64_t until;
	uint64_t h;
	size_t i;

	*wait_r = 0;
	if (auth_delay_begin(ad, error_r) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!auth_delay_hash(ad, keys[i], &h)) {
			auth_delay_end(ad);
			*error_r = "auth delay table: HMAC failed";
			return -1;
		}
		sl = auth_delay_take(ad, h, now_ms);
		c = auth_delay_decayed(ad, sl, now_ms);
		if (c < ad->count_max)
			c++;
		sl->count = c;
		sl->last_ms = now_ms;
		/*
		 * Parallel failures never shorten a wait another one set,
		 * but nothing waits longer than max from now (a clock
		 * stepped back, a garbled slot).
		 */
		until = now_ms + auth_delay_for(&ad->s, c);
		if (sl->until_ms < until ||
		    sl->until_ms > now_ms + (int64_t)ad->s.max_ms)
			sl->until_ms = until;
		if ((w = auth_delay_wait(ad, sl, now_ms)) > *wait_r)
			*wait_r = w;
	}
	auth_delay_end(ad);
	return 0;
}

/* auth_delay_reset - see auth_delay.h */
int
auth_delay_reset(struct auth_delay *ad, const char *key,
    const char **error_r)
{
	struct auth_delay_slot *sl;
	uint64_t h;
	int ret = 0;

	if (auth_delay_begin(ad, error_r) < 0)
		return -1;
	if (!auth_delay_hash(ad, key, &h)) {
		*error_r = "auth delay table: HMAC failed";
		ret = -1;
	} else if ((sl = auth_delay_find(ad, h)) != NULL)
		memset(sl, 0, sizeof(*sl));
	auth_delay_end(ad);
	return ret;
}

/* auth_delay_count - see auth_delay.h */
int
auth_delay_count(struct auth_delay *ad, const char *key, int64_t now_ms,
    unsigned *count_r, const char **error_r)
{
	struct auth_delay_slot *sl;
	uint64_t h;
	int ret = 0;

	*count_r = 0;
	if (auth_delay_begin(ad, error_r) < 0)
		return -1;
	if (!auth_delay_hash(ad, key, &h)) {
		*error_r = "auth delay table: HMAC failed";
		ret = -1;
	} else if ((sl = auth_delay_find(ad, h)) != NULL)
		*count_r = auth_delay_decayed(ad, sl, now_ms);
	auth_delay_end(ad);
	return ret;
}
