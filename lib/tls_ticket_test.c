/* SPDX-License-Identifier: MIT */
/*
 * tls_ticket_test - unit tests for the shared ticket key file: rotation
 * by the clock, which key encrypts and which decrypt when, the file
 * format and every way parsing refuses it (also every truncation), and
 * update/load on disk with the owner and mode checks.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "safe_file.h"
#include "str.h"
#include "test.h"
#include "tls_ticket.h"

#define L 3600u			/* the lifetime the tests use */
#define T0 ((time_t)1700000000)

/* same_key - two keys are the same key */
static bool
same_key(const struct tls_ticket_key *a, const struct tls_ticket_key *b)
{
	return a != NULL && b != NULL && memcmp(a, b, sizeof(*a)) == 0;
}

static void
test_rotate(void)
{
	struct tls_ticket_keys keys, before;
	const struct tls_ticket_key *enc;
	time_t due;

	test_begin("tls_ticket_keys_rotate: first keys, current and next");
	memset(&keys, 0, sizeof(keys));
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0, L, &due) == 1);
	TEST_ASSERT(keys.n == 2);
	TEST_ASSERT(keys.key[0].not_before == T0);
	TEST_ASSERT(keys.key[1].not_before == T0 + L);
	TEST_ASSERT(due == T0 + L);
	TEST_ASSERT(memcmp(keys.key[0].name, keys.key[1].name,
	    TLS_TICKET_NAME_LEN) != 0);
	TEST_ASSERT(memcmp(keys.key[0].aes, keys.key[1].aes,
	    TLS_TICKET_AES_LEN) != 0);
	/* Nothing due: unchanged, however often it is asked. */
	before = keys;
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + L - 1, L, &due) == 0);
	TEST_ASSERT(memcmp(&keys, &before, sizeof(keys)) == 0);
	TEST_ASSERT(due == T0 + L);
	test_end();

	test_begin("tls_ticket_keys_rotate: the next key takes over");
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + L, L, &due) == 1);
	TEST_ASSERT(keys.n == 3);
	TEST_ASSERT(same_key(&keys.key[0], &before.key[0]));
	TEST_ASSERT(same_key(&keys.key[1], &before.key[1]));
	TEST_ASSERT(keys.key[2].not_before == T0 + 2 * L);
	TEST_ASSERT(due == T0 + 2 * L);
	/* A period later the first key expires and a new next comes. */
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + 2 * L, L, &due) == 1);
	TEST_ASSERT(keys.n == 3);
	TEST_ASSERT(same_key(&keys.key[0], &before.key[1]));
	TEST_ASSERT(keys.key[1].not_before == T0 + 2 * L);
	TEST_ASSERT(keys.key[2].not_before == T0 + 3 * L);
	TEST_ASSERT(due == T0 + 3 * L);
	test_end();

	test_begin("tls_ticket_keys_rotate: after a long pause, fresh keys");
	before = keys;
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + 10 * L, L, &due) == 1);
	TEST_ASSERT(keys.n == 2);
	TEST_ASSERT(keys.key[0].not_before == T0 + 10 * L);
	TEST_ASSERT(keys.key[1].not_before == T0 + 11 * L);
	TEST_ASSERT(memcmp(keys.key[0].name, before.key[0].name,
	    TLS_TICKET_NAME_LEN) != 0);
	test_end();

	test_begin("tls_ticket_keys_rotate: the last key alone decrypting");
	/* Between 1L and 2L after the only key began: it decrypts, a new one issues. */
	keys.n = 1;
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + 11 * L + 5, L, &due) == 1);
	TEST_ASSERT(keys.n == 3);
	TEST_ASSERT(keys.key[0].not_before == T0 + 10 * L);
	TEST_ASSERT(keys.key[1].not_before == T0 + 11 * L + 5);
	TEST_ASSERT(keys.key[2].not_before == T0 + 12 * L + 5);
	enc = tls_ticket_keys_encrypting(&keys, T0 + 11 * L + 5, L);
	TEST_ASSERT(enc == &keys.key[1]);
	/* Due when the old key expires, before the next takes over. */
	TEST_ASSERT(due == T0 + 12 * L);
	test_end();

	test_begin("tls_ticket_keys_rotate: the clock went back");
	memset(&keys, 0, sizeof(keys));
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0 + 5 * L, L, &due) == 1);
	before = keys;
	TEST_ASSERT(tls_ticket_keys_rotate(&keys, T0, L, &due) == 1);
	TEST_ASSERT(keys.n == 2);
	TEST_ASSERT(keys.key[0].not_before == T0);
	TEST_ASSERT(memcmp(keys.key[0].name, before.key[0].name,
	    TLS_TICKET_NAME_LEN) != 0);
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0, L) == &keys.key[0]);
	test_end();
	tls_ticket_keys_wipe(&keys);
	tls_ticket_keys_wipe(&before);
}

static void
test_windows(void)
{
	struct tls_ticket_keys keys;
	const struct tls_ticket_key *k0, *k1;
	time_t due;

	memset(&keys, 0, sizeof(keys));
	(void)tls_ticket_keys_rotate(&keys, T0, L, &due);
	k0 = &keys.key[0];
	k1 = &keys.key[1];

	test_begin("tls_ticket_keys_encrypting: by the clock");
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0 - 1, L) == NULL);
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0, L) == k0);
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0 + L - 1, L) == k0);
	/* A worker that never reread the file rotates by itself... */
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0 + L, L) == k1);
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0 + 2 * L - 1, L) == k1);
	/* ... until its keys run out: then no tickets. */
	TEST_ASSERT(tls_ticket_keys_encrypting(&keys, T0 + 2 * L, L) == NULL);
	test_end();

	test_begin("tls_ticket_keys_decrypting: one more period");
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k0->name, T0, L) == k0);
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k0->name, T0 + L, L) == k0);
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k0->name,
	    T0 + 2 * L - 1, L) == k0);
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k0->name,
	    T0 + 2 * L, L) == NULL);
	/* Not before it started (a ticket cannot be older than its key). */
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k1->name, T0, L) == NULL);
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys, k1->name, T0 + L, L) == k1);
	/* An unknown name: a full handshake. */
	TEST_ASSERT(tls_ticket_keys_decrypting(&keys,
	    (const unsigned char *)"0123456789abcdef", T0, L) == NULL);
	test_end();
	tls_ticket_keys_wipe(&keys);
}

static void
test_format(void)
{
	unsigned char buf[TLS_TICKET_FILE_MAX], bad[TLS_TICKET_FILE_MAX];
	struct tls_ticket_keys keys, back;
	struct str *err = str_new(0, 0);
	size_t len, i;
	time_t due;
	bool all_fail = true;

	memset(&keys, 0, sizeof(keys));
	(void)tls_ticket_keys_rotate(&keys, T0, L, &due);
	(void)tls_ticket_keys_rotate(&keys, T0 + L, L, &due);

	test_begin("tls_ticket_keys_format/parse: round trip");
	len = tls_ticket_keys_format(&keys, buf);
	TEST_ASSERT(len == TLS_TICKET_HEADER_SIZE + 3 * TLS_TICKET_KEY_SIZE);
	TEST_ASSERT(memcmp(buf, "PTK1\0\0\0\3", 8) == 0);
	TEST_ASSERT(tls_ticket_keys_parse(buf, len, &back, err));
	TEST_ASSERT(back.n == 3);
	TEST_ASSERT(memcmp(&back, &keys, sizeof(keys)) == 0);
	test_end();

	test_begin("tls_ticket_keys_parse: every truncation and extension fails");
	for (i = 0; i < len; i++)
		if (tls_ticket_keys_parse(buf, i, &back, err))
			all_fail = false;
	TEST_ASSERT(all_fail);
	memcpy(bad, buf, len);
	bad[len] = 0;
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len + 1, &back, err));
	TEST_ASSERT(strstr(str_c(err), "wrong size") != NULL);
	test_end();

	test_begin("tls_ticket_keys_parse: malformed files");
	memcpy(bad, buf, len);
	bad[0] = 'X';
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	TEST_ASSERT(strstr(str_c(err), "magic") != NULL);
	memcpy(bad, buf, len);
	bad[7] = 0;
	TEST_ASSERT(!tls_ticket_keys_parse(bad, TLS_TICKET_HEADER_SIZE, &back, err));
	TEST_ASSERT(strstr(str_c(err), "count") != NULL);
	bad[7] = TLS_TICKET_KEYS_MAX + 1;
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	TEST_ASSERT(strstr(str_c(err), "count") != NULL);
	bad[7] = 3;
	bad[4] = 1;	/* a count of 2^24 + 3 */
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	/* Second key's start time equal to the first's. */
	memcpy(bad, buf, len);
	memcpy(bad + TLS_TICKET_HEADER_SIZE + TLS_TICKET_KEY_SIZE,
	    bad + TLS_TICKET_HEADER_SIZE, 8);
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	TEST_ASSERT(strstr(str_c(err), "order") != NULL);
	/* A negative start time. */
	memcpy(bad, buf, len);
	bad[TLS_TICKET_HEADER_SIZE] = 0x80;
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	/* Two keys with one name. */
	memcpy(bad, buf, len);
	memcpy(bad + TLS_TICKET_HEADER_SIZE + TLS_TICKET_KEY_SIZE + 8,
	    bad + TLS_TICKET_HEADER_SIZE + 8, TLS_TICKET_NAME_LEN);
	TEST_ASSERT(!tls_ticket_keys_parse(bad, len, &back, err));
	TEST_ASSERT(strstr(str_c(err), "name") != NULL);
	test_end();
	tls_ticket_keys_wipe(&keys);
	tls_ticket_keys_wipe(&back);
	str_free(&err);
}

static void
test_files(void)
{
	struct tls_ticket_keys keys, again;
	struct str *err = str_new(0, 0);
	struct stat st;
	char *path, *link;
	time_t now = time(NULL), due;

	path = xasprintf("%s/tls_ticket_keys", test_tmpdir());
	link = xasprintf("%s/link", test_tmpdir());

	test_begin("tls_ticket_keys_update: creates the file 0600");
	TEST_ASSERT(tls_ticket_keys_load(path, &keys, err) < 0 &&
	    errno == ENOENT);
	TEST_ASSERT(tls_ticket_keys_update(path, L, now, &due, err) == 0);
	TEST_ASSERT(due == now + L);
	TEST_ASSERT(stat(path, &st) == 0);
	TEST_ASSERT((st.st_mode & 07777) == 0600);
	TEST_ASSERT(st.st_uid == geteuid());
	TEST_ASSERT(st.st_size == TLS_TICKET_HEADER_SIZE + 2 * TLS_TICKET_KEY_SIZE);
	TEST_ASSERT(tls_ticket_keys_load(path, &keys, err) == 0);
	TEST_ASSERT(keys.n == 2 && keys.key[0].not_before == now);
	test_end();

	test_begin("tls_ticket_keys_update: leaves current keys alone, rotates due ones");
	TEST_ASSERT(tls_ticket_keys_update(path, L, now + 10, &due, err) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) == 0);
	TEST_ASSERT(memcmp(&keys, &again, sizeof(keys)) == 0);
	TEST_ASSERT(tls_ticket_keys_update(path, L, now + L, &due, err) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) == 0);
	TEST_ASSERT(again.n == 3);
	TEST_ASSERT(same_key(&again.key[0], &keys.key[0]));
	TEST_ASSERT(same_key(&again.key[1], &keys.key[1]));
	TEST_ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	test_end();

	test_begin("tls_ticket_keys_load: refuses group or other access");
	TEST_ASSERT(chmod(path, 0640) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) < 0 &&
	    errno == EPERM);
	TEST_ASSERT(strstr(str_c(err), "0600") != NULL);
	TEST_ASSERT(chmod(path, 0604) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) < 0);
	/* master replaces such a file with one of its own. */
	TEST_ASSERT(tls_ticket_keys_update(path, L, now + L, &due, err) == 0);
	TEST_ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) == 0);
	test_end();

	test_begin("tls_ticket_keys_load: refuses symlinks and junk");
	TEST_ASSERT(symlink(path, link) == 0);
	TEST_ASSERT(tls_ticket_keys_load(link, &again, err) < 0);
	TEST_ASSERT(safe_file_replace(path, "PTK1junk", 8, 0600) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) < 0 &&
	    errno == EINVAL);
	/* Over the largest size: refused before parsing. */
	{
		char big[TLS_TICKET_FILE_MAX + 10];

		memset(big, 'x', sizeof(big));
		TEST_ASSERT(safe_file_replace(path, big, sizeof(big), 0600) == 0);
		TEST_ASSERT(tls_ticket_keys_load(path, &again, err) < 0 &&
		    errno == EINVAL);
	}
	/* A corrupt file is replaced by fresh keys. */
	TEST_ASSERT(tls_ticket_keys_update(path, L, now, &due, err) == 0);
	TEST_ASSERT(tls_ticket_keys_load(path, &again, err) == 0);
	TEST_ASSERT(again.n == 2);
	test_end();

	test_begin("tls_ticket_keys_update: an unwritable place is an error");
	free(path);
	path = xasprintf("%s/no/such/dir/keys", test_tmpdir());
	TEST_ASSERT(tls_ticket_keys_update(path, L, now, &due, err) < 0);
	TEST_ASSERT(strstr(str_c(err), "no/such/dir") != NULL);
	test_end();

	tls_ticket_keys_wipe(&keys);
	tls_ticket_keys_wipe(&again);
	free(path);
	free(link);
	str_free(&err);
}

int
main(void)
{
	test_rotate();
	test_windows();
	test_format();
	test_files();
	return test_done();
}
