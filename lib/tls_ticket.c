/* SPDX-License-Identifier: MIT */
/*
 * tls_ticket - the shared session ticket key file: format, rotation, checks
 *
 * DESCRIPTION
 *	See tls_ticket.h for the contract and the rotation rule. This file
 *	has no OpenSSL in it (master links it without libssl); lib/tls.c
 *	turns a loaded key set into OpenSSL's ticket key callback.
 *
 *	The key material only ever lives in struct tls_ticket_keys and in
 *	fixed buffers on the stack, which are wiped after use; it never
 *	goes into a growable struct str (whose old copies would stay
 *	behind in freed memory).
 *
 * SECURITY
 *	Anyone who holds these keys can decrypt every ticket issued with
 *	them and with it the resumed sessions' traffic keys, so the file is
 *	mode 0600 in master's own directory ($queue_directory/pid, root's
 *	when privilege separation is on) and is read by servers in
 *	pre_jail, before they drop privileges, like their private keys.
 *	A file with group or other permission bits, or another owner, is
 *	refused rather than used.
 *
 * SEE ALSO
 *	Postfix src/tls/tls_mgr.c (tlsmgr's ticket keys); RFC 5077 section 4.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "macros.h"
#include "safe_file.h"
#include "tls_ticket.h"

static const unsigned char tls_ticket_magic[4] = { 'P', 'T', 'K', '1' };

/* tls_ticket_put64 - big-endian */
static void
tls_ticket_put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* tls_ticket_get64 - big-endian */
static uint64_t
tls_ticket_get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* tls_ticket_keys_parse - see tls_ticket.h */
bool
tls_ticket_keys_parse(const void *data, size_t len,
    struct tls_ticket_keys *keys, struct str *error)
{
	const unsigned char *p = data;
	struct tls_ticket_key *k;
	uint32_t count;
	size_t i, j;

	memset(keys, 0, sizeof(*keys));
	if (len < TLS_TICKET_HEADER_SIZE ||
	    memcmp(p, tls_ticket_magic, sizeof(tls_ticket_magic)) != 0) {
		str_set_cstr(error, "not a ticket key file (bad magic)");
		return false;
	}
	count = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	if (count == 0 || count > TLS_TICKET_KEYS_MAX) {
		str_set_cstr(error, "ticket key file: bad key count");
		return false;
	}
	if (len != TLS_TICKET_HEADER_SIZE + count * TLS_TICKET_KEY_SIZE) {
		str_set_cstr(error, "ticket key file: wrong size for its key "
		    "count");
		return false;
	}
	p += TLS_TICKET_HEADER_SIZE;
	for (i = 0; i < count; i++, p += TLS_TICKET_KEY_SIZE) {
		k = &keys->key[i];
		k->not_before = (int64_t)tls_ticket_get64(p);
		memcpy(k->name, p + 8, TLS_TICKET_NAME_LEN);
		memcpy(k->aes, p + 8 + TLS_TICKET_NAME_LEN, TLS_TICKET_AES_LEN);
		memcpy(k->hmac, p + 8 + TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN,
		    TLS_TICKET_HMAC_LEN);
		if (k->not_before < 0 ||
		    (i > 0 && k->not_before <= keys->key[i - 1].not_before)) {
			str_set_cstr(error, "ticket key file: start times out "
			    "of order");
			tls_ticket_keys_wipe(keys);
			return false;
		}
		for (j = 0; j < i; j++)
			if (memcmp(keys->key[j].name, k->name,
			    TLS_TICKET_NAME_LEN) == 0) {
				str_set_cstr(error, "ticket key file: two keys "
				    "with one name");
				tls_ticket_keys_wipe(keys);
				return false;
			}
	}
	keys->n = count;
	return true;
}

/* tls_ticket_keys_format - see tls_ticket.h */
size_t
tls_ticket_keys_format(const struct tls_ticket_keys *keys, unsigned char *buf)
{
	const struct tls_ticket_key *k;
	unsigned char *p = buf;
	size_t i;

	ASSERT(keys->n <= TLS_TICKET_KEYS_MAX);
	memcpy(p, tls_ticket_magic, sizeof(tls_ticket_magic));
	p[4] = 0;
	p[5] = 0;
	p[6] = 0;
	p[7] = (unsigned char)keys->n;
	p += TLS_TICKET_HEADER_SIZE;
	for (i = 0; i < keys->n; i++, p += TLS_TICKET_KEY_SIZE) {
		k = &keys->key[i];
		tls_ticket_put64(p, (uint64_t)k->not_before);
		memcpy(p + 8, k->name, TLS_TICKET_NAME_LEN);
		memcpy(p + 8 + TLS_TICKET_NAME_LEN, k->aes, TLS_TICKET_AES_LEN);
		memcpy(p + 8 + TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN,
		    k->hmac, TLS_TICKET_HMAC_LEN);
	}
	return (size_t)(p - buf);
}

/* tls_ticket_random - fill buf with len bytes from the kernel; 0 or -1 */
static int
tls_ticket_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* tls_ticket_keys_drop - remove key i, keeping the order */
static void
tls_ticket_keys_drop(struct tls_ticket_keys *keys, size_t i)
{
	memmove(&keys->key[i], &keys->key[i + 1],
	    (keys->n - i - 1) * sizeof(keys->key[0]));
	keys->n--;
	explicit_bzero(&keys->key[keys->n], sizeof(keys->key[0]));
}

/*
 * tls_ticket_keys_add - append a fresh key starting at not_before (later
 * than every key there: the order stays); -1 with errno
 */
static int
tls_ticket_keys_add(struct tls_ticket_keys *keys, int64_t not_before)
{
	struct tls_ticket_key k;
	size_t i;

	if (keys->n == TLS_TICKET_KEYS_MAX)
		tls_ticket_keys_drop(keys, 0);
	memset(&k, 0, sizeof(k));
	k.not_before = not_before;
	do {
		if (tls_ticket_random(k.name, sizeof(k.name)) < 0 ||
		    tls_ticket_random(k.aes, sizeof(k.aes)) < 0 ||
		    tls_ticket_random(k.hmac, sizeof(k.hmac)) < 0) {
			explicit_bzero(&k, sizeof(k));
			return -1;
		}
		/* 2^-128, but a duplicate name would make a key unreachable. */
		for (i = 0; i < keys->n; i++)
			if (memcmp(keys->key[i].name, k.name,
			    sizeof(k.name)) == 0)
				break;
	} while (i < keys->n);
	keys->key[keys->n++] = k;
	explicit_bzero(&k, sizeof(k));
	return 0;
}

/* tls_ticket_keys_rotate - see tls_ticket.h */
int
tls_ticket_keys_rotate(struct tls_ticket_keys *keys, time_t now,
    unsigned lifetime, time_t *due_r)
{
	const struct tls_ticket_key *cur;
	struct tls_ticket_keys work = *keys;
	int64_t t = now, life = lifetime, due;
	bool changed = false;
	size_t i;

	ASSERT(lifetime > 0);
	/* Expired for decryption, or from a future the clock left. */
	for (i = 0; i < work.n;) {
		if (work.key[i].not_before + 2 * life <= t ||
		    work.key[i].not_before > t + life) {
			tls_ticket_keys_drop(&work, i);
			changed = true;
		} else
			i++;
	}
	if ((cur = tls_ticket_keys_encrypting(&work, now, lifetime)) == NULL) {
		/*
		 * The keys left are older (decrypting only) or, after the
		 * clock went back, start later: those go, and a new key
		 * starts now.
		 */
		while (work.n > 0 && work.key[work.n - 1].not_before > t)
			tls_ticket_keys_drop(&work, work.n - 1);
		if (tls_ticket_keys_add(&work, t) < 0)
			goto fail;
		changed = true;
		cur = tls_ticket_keys_encrypting(&work, now, lifetime);
		ASSERT(cur != NULL);
	}
	if (cur == &work.key[work.n - 1]) {
		if (tls_ticket_keys_add(&work, cur->not_before + life) < 0)
			goto fail;
		changed = true;
	}
	/* The next change: the next key takes over, or a key expires. */
	due = work.key[work.n - 1].not_before;
	for (i = 0; i < work.n; i++)
		if (work.key[i].not_before + 2 * life < due)
			due = work.key[i].not_before + 2 * life;
	*due_r = (time_t)due;
	*keys = work;
	explicit_bzero(&work, sizeof(work));
	return changed ? 1 : 0;
fail:
	explicit_bzero(&work, sizeof(work));
	return -1;
}

/*
 * tls_ticket_keys_read - the checked content of path into buf (size
 * TLS_TICKET_FILE_MAX + 1); its length, or -1 with errno and *error
 */
static ssize_t
tls_ticket_keys_read(const char *path, unsigned char *buf, struct str *error)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		saved = errno;
		str_printf(error, "%s: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		saved = errno;
		str_printf(error, "%s: fstat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		str_printf(error, "%s: not a regular file owned by uid %ld "
		    "with mode 0600 (refusing to use its keys)", path,
		    (long)geteuid());
		saved = EPERM;
		goto fail;
	}
	for (;;) {
		n = read(fd, buf + got, TLS_TICKET_FILE_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			str_printf(error, "%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > TLS_TICKET_FILE_MAX) {
			str_printf(error, "%s: too long for a ticket key file",
			    path);
			saved = EINVAL;
			goto fail;
		}
	}
	(void)close(fd);
	return (ssize_t)got;
fail:
	(void)close(fd);
	errno = saved;
	return -1;
}

/* tls_ticket_keys_load - see tls_ticket.h */
int
tls_ticket_keys_load(const char *path, struct tls_ticket_keys *keys,
    struct str *error)
{
	unsigned char buf[TLS_TICKET_FILE_MAX + 1];
	struct str *why;
	ssize_t len;
	bool ok;

	str_clear(error);
	memset(keys, 0, sizeof(*keys));
	if ((len = tls_ticket_keys_read(path, buf, error)) < 0)
		return -1;
	why = str_new(0, 0);
	ok = tls_ticket_keys_parse(buf, (size_t)len, keys, why);
	explicit_bzero(buf, sizeof(buf));
	if (!ok) {
		str_printf(error, "%s: %s", path, str_c(why));
		str_free(&why);
		errno = EINVAL;
		return -1;
	}
	str_free(&why);
	return 0;
}

/* tls_ticket_keys_update - see tls_ticket.h */
int
tls_ticket_keys_update(const char *path, unsigned lifetime, time_t now,
    time_t *due_r, struct str *error)
{
	unsigned char buf[TLS_TICKET_FILE_MAX];
	struct tls_ticket_keys keys;
	struct str *why = str_new(0, 0);
	size_t len;
	int ret, saved;

	str_clear(error);
	/* Missing or unusable: start afresh (tickets then in flight fail). */
	if (tls_ticket_keys_load(path, &keys, why) < 0)
		memset(&keys, 0, sizeof(keys));
	str_free(&why);
	if ((ret = tls_ticket_keys_rotate(&keys, now, lifetime, due_r)) < 0) {
		str_printf(error, "ticket keys: getrandom: %s", strerror(errno));
		return -1;
	}
	if (ret == 0) {
		tls_ticket_keys_wipe(&keys);
		return 0;
	}
	len = tls_ticket_keys_format(&keys, buf);
	tls_ticket_keys_wipe(&keys);
	ret = safe_file_replace(path, buf, len, 0600);
	saved = errno;
	explicit_bzero(buf, sizeof(buf));
	if (ret < 0) {
		str_printf(error, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

/* tls_ticket_keys_encrypting - see tls_ticket.h */
const struct tls_ticket_key *
tls_ticket_keys_encrypting(const struct tls_ticket_keys *keys, time_t now,
    unsigned lifetime)
{
	size_t i;

	for (i = keys->n; i > 0; i--) {
		const struct tls_ticket_key *k = &keys->key[i - 1];

		if (k->not_before > (int64_t)now)
			continue;
		return (int64_t)now < k->not_before + (int64_t)lifetime ? k :
		    NULL;
	}
	return NULL;
}

/* tls_ticket_keys_decrypting - see tls_ticket.h */
const struct tls_ticket_key *
tls_ticket_keys_decrypting(const struct tls_ticket_keys *keys,
    const unsigned char *name, time_t now, unsigned lifetime)
{
	size_t i;

	for (i = 0; i < keys->n; i++) {
		const struct tls_ticket_key *k = &keys->key[i];

		if (memcmp(k->name, name, TLS_TICKET_NAME_LEN) != 0)
			continue;
		if (k->not_before <= (int64_t)now &&
		    (int64_t)now < k->not_before + 2 * (int64_t)lifetime)
			return k;
		return NULL;
	}
	return NULL;
}

/* tls_ticket_keys_wipe - see tls_ticket.h */
void
tls_ticket_keys_wipe(struct tls_ticket_keys *keys)
{
	explicit_bzero(keys, sizeof(*keys));
}
