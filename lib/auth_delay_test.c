/* SPDX-License-Identifier: MIT */
/*
 * auth_delay_test - the shared failed-login table: growth, cap, decay,
 * reset, full sets, repair, address keys and concurrent processes
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_delay.h"
#include "str.h"
#include "test.h"

#define T0	1700000000000LL		/* a fixed "now" in ms */

static char *
path_for(const char *name)
{
	static char buf[4096];

	(void)snprintf(buf, sizeof(buf), "%s/%s", test_tmpdir(), name);
	return buf;
}

/* fail1 - one failure for one key; the wait */
static unsigned
fail1(struct auth_delay *ad, const char *key, int64_t now)
{
	const char *err = NULL;
	unsigned w = 12345;

	TEST_ASSERT(auth_delay_fail(ad, &key, 1, now, &w, &err) == 0);
	return w;
}

/* count1 - key's count at now */
static unsigned
count1(struct auth_delay *ad, const char *key, int64_t now)
{
	const char *err = NULL;
	unsigned c = 12345;

	TEST_ASSERT(auth_delay_count(ad, key, now, &c, &err) == 0);
	return c;
}

/* pending1 - key's remaining wait at now */
static unsigned
pending1(struct auth_delay *ad, const char *key, int64_t now)
{
	const char *err = NULL;
	unsigned w = 12345;

	TEST_ASSERT(auth_delay_pending(ad, &key, 1, now, &w, &err) == 0);
	return w;
}

static void
test_growth_and_cap(void)
{
	struct auth_delay_settings s = { 100, 1000, 0, 64 };
	struct auth_delay *ad;
	const char *err = NULL;
	int64_t t = T0;

	test_begin("auth_delay growth and cap");
	TEST_ASSERT(auth_delay_for(&s, 0) == 0);
	TEST_ASSERT(auth_delay_for(&s, 1) == 100);
	TEST_ASSERT(auth_delay_for(&s, 4) == 800);
	TEST_ASSERT(auth_delay_for(&s, 5) == 1000);
	TEST_ASSERT(auth_delay_for(&s, 40) == 1000);
	TEST_ASSERT(auth_delay_for(&s, 0xffffffffU) == 1000);
	ad = auth_delay_open(path_for("growth"), &s, &err);
	TEST_ASSERT(ad != NULL);
	if (ad == NULL) {
		test_end();
		return;
	}
	TEST_ASSERT(pending1(ad, "user:alice", t) == 0);
	TEST_ASSERT(count1(ad, "user:alice", t) == 0);
	TEST_ASSERT(fail1(ad, "user:alice", t) == 100);
	/* the next answer waits what is left of it */
	TEST_ASSERT(pending1(ad, "user:alice", t + 30) == 70);
	TEST_ASSERT(pending1(ad, "user:bob", t + 30) == 0);
	t += 100;
	TEST_ASSERT(fail1(ad, "user:alice", t) == 200);
	t += 200;
	TEST_ASSERT(fail1(ad, "user:alice", t) == 400);
	t += 400;
	TEST_ASSERT(fail1(ad, "user:alice", t) == 800);
	t += 800;
	TEST_ASSERT(fail1(ad, "user:alice", t) == 1000);
	t += 1000;
	TEST_ASSERT(fail1(ad, "user:alice", t) == 1000);
	/* the count stops where the delay reached the cap */
	TEST_ASSERT(count1(ad, "user:alice", t) == 5);
	/* two keys: the longer wait */
	{
		const char *keys[2] = { "ip:192.0.2.1", "user:alice" };
		unsigned w;

		TEST_ASSERT(auth_delay_fail(ad, keys, 2, t, &w, &err) == 0);
		TEST_ASSERT(w == 1000);
		TEST_ASSERT(count1(ad, "ip:192.0.2.1", t) == 1);
		TEST_ASSERT(auth_delay_pending(ad, keys, 2, t + 500, &w,
		    &err) == 0 && w == 500);
	}
	/* failures from parallel connections add up at once */
	TEST_ASSERT(fail1(ad, "user:eve", t) == 100);
	TEST_ASSERT(fail1(ad, "user:eve", t) == 200);
	TEST_ASSERT(fail1(ad, "user:eve", t) == 400);
	TEST_ASSERT(pending1(ad, "user:eve", t) == 400);
	/* a clock stepped back never waits more than max */
	TEST_ASSERT(pending1(ad, "user:alice", t - 100000) == 1000);
	auth_delay_close(&ad);
	TEST_ASSERT(ad == NULL);
	auth_delay_close(&ad);
	test_end();
}

static void
test_decay_and_reset(void)
{
	struct auth_delay_settings s = { 100, 100000, 1000, 64 };
	struct auth_delay *ad, *ad2;
	const char *err = NULL;
	int64_t t = T0;
	int i;

	test_begin("auth_delay decay and reset");
	ad = auth_delay_open(path_for("decay"), &s, &err);
	ad2 = auth_delay_open(path_for("decay"), &s, &err);
	TEST_ASSERT(ad != NULL && ad2 != NULL);
	if (ad == NULL || ad2 == NULL) {
		auth_delay_close(&ad);
		test_end();
		return;
	}
	for (i = 0; i < 4; i++)
		(void)fail1(ad, "user:carol", t);
	(void)fail1(ad, "ip:198.51.100.7", t);
	/* the other handle (another process) sees the same table */
	TEST_ASSERT(count1(ad2, "user:carol", t) == 4);
	TEST_ASSERT(count1(ad2, "user:carol", t + 999) == 4);
	TEST_ASSERT(count1(ad2, "user:carol", t + 1000) == 3);
	TEST_ASSERT(count1(ad2, "user:carol", t + 2500) == 2);
	TEST_ASSERT(count1(ad2, "user:carol", t + 60000) == 0);
	/* after 2.5 s of quiet the 5th failure counts as the 3rd */
	TEST_ASSERT(fail1(ad2, "user:carol", t + 2500) == 400);
	TEST_ASSERT(count1(ad, "user:carol", t + 2500) == 3);
	/* after a long quiet a failure starts over */
	TEST_ASSERT(fail1(ad, "user:carol", t + 100000) == 100);
	/* a good login forgets the user, not the address */
	TEST_ASSERT(auth_delay_reset(ad2, "user:carol", &err) == 0);
	TEST_ASSERT(count1(ad, "user:carol", t + 100000) == 0);
	TEST_ASSERT(pending1(ad, "user:carol", t + 100000) == 0);
	TEST_ASSERT(count1(ad, "ip:198.51.100.7", t) == 1);
	TEST_ASSERT(auth_delay_reset(ad2, "user:nobody", &err) == 0);
	auth_delay_close(&ad);
	auth_delay_close(&ad2);
	test_end();
}

static void
test_full_set(void)
{
	/* 8 slots = one set: every key competes for the same slots */
	struct auth_delay_settings s = { 100, 100000, 1000, AUTH_DELAY_WAYS };
	struct auth_delay *ad;
	const char *err = NULL;
	char key[32];
	int64_t t = T0;
	int i, present;

	test_begin("auth_delay full set: who gives way");
	ad = auth_delay_open(path_for("small"), &s, &err);
	TEST_ASSERT(ad != NULL);
	if (ad == NULL) {
		test_end();
		return;
	}
	for (i = 0; i < AUTH_DELAY_WAYS; i++) {
		(void)snprintf(key, sizeof(key), "user:u%d", i);
		(void)fail1(ad, key, t + i);
		if (i != 3)
			(void)fail1(ad, key, t + i);
	}
	for (i = 0; i < AUTH_DELAY_WAYS; i++) {
		(void)snprintf(key, sizeof(key), "user:u%d", i);
		TEST_ASSERT(count1(ad, key, t + 10) == (i == 3 ? 1U : 2U));
	}
	/* a newcomer takes the slot with the lowest count: u3 */
	(void)fail1(ad, "user:new", t + 10);
	TEST_ASSERT(count1(ad, "user:new", t + 10) == 1);
	TEST_ASSERT(count1(ad, "user:u3", t + 10) == 0);
	TEST_ASSERT(count1(ad, "user:u0", t + 10) == 2);
	/* among equals, the oldest failure: u0 */
	for (i = 0; i < 2; i++)
		(void)fail1(ad, "user:new", t + 20);
	(void)fail1(ad, "user:new2", t + 20);
	TEST_ASSERT(count1(ad, "user:u0", t + 20) == 0);
	TEST_ASSERT(count1(ad, "user:u1", t + 20) == 2);
	/* a heavy hitter outlives a flood of one-off keys */
	for (i = 0; i < 10; i++)
		(void)fail1(ad, "ip:203.0.113.9", t + 30);
	for (i = 0; i < 200; i++) {
		(void)snprintf(key, sizeof(key), "user:flood%d", i);
		(void)fail1(ad, key, t + 40 + i);
	}
	TEST_ASSERT(count1(ad, "ip:203.0.113.9", t + 300) == 10);
	/* the table never holds more than its slots */
	for (i = 0, present = 0; i < 200; i++) {
		(void)snprintf(key, sizeof(key), "user:flood%d", i);
		present += count1(ad, key, t + 300) > 0;
	}
	TEST_ASSERT(present <= AUTH_DELAY_WAYS - 1);
	TEST_ASSERT(present >= 1);
	auth_delay_close(&ad);
	test_end();
}

static void
test_repair_and_errors(void)
{
	struct auth_delay_settings s = { 100, 1000, 0, 64 };
	struct auth_delay_settings bad;
	struct auth_delay *ad;
	const char *err = NULL, *p = path_for("repair");
	int fd;

	test_begin("auth_delay repair, bad settings, not a file");
	ad = auth_delay_open(p, &s, &err);
	TEST_ASSERT(ad != NULL);
	if (ad != NULL) {
		(void)fail1(ad, "user:dave", T0);
		/* someone truncates the file under us: remade, no SIGBUS */
		TEST_ASSERT(truncate(p, 10) == 0);
		TEST_ASSERT(count1(ad, "user:dave", T0) == 0);
		TEST_ASSERT(fail1(ad, "user:dave", T0) == 100);
		/* a garbled header: remade, forgetting the counts */
		fd = open(p, O_WRONLY);
		TEST_ASSERT(fd >= 0 && pwrite(fd, "garbage!", 8, 0) == 8);
		(void)close(fd);
		TEST_ASSERT(count1(ad, "user:dave", T0) == 0);
		auth_delay_close(&ad);
	}
	/* a foreign file is taken over at open */
	TEST_ASSERT(truncate(p, 0) == 0);
	ad = auth_delay_open(p, &s, &err);
	TEST_ASSERT(ad != NULL);
	auth_delay_close(&ad);

	bad = s;
	bad.base_ms = 0;
	TEST_ASSERT(auth_delay_open(p, &bad, &err) == NULL);
	bad = s;
	bad.max_ms = 50;
	TEST_ASSERT(auth_delay_open(p, &bad, &err) == NULL);
	bad = s;
	bad.slots = 12;
	TEST_ASSERT(auth_delay_open(p, &bad, &err) == NULL);
	bad.slots = 4;
	TEST_ASSERT(auth_delay_open(p, &bad, &err) == NULL);
	/* a symlink is not followed; a directory is not a table */
	TEST_ASSERT(symlink(p, path_for("link")) == 0);
	TEST_ASSERT(auth_delay_open(path_for("link"), &s, &err) == NULL);
	TEST_ASSERT(auth_delay_open(test_tmpdir(), &s, &err) == NULL);
	TEST_ASSERT(auth_delay_open(path_for("no/such/dir"), &s, &err) ==
	    NULL);
	test_end();
}

static void
test_concurrent(void)
{
	struct auth_delay_settings s = { 1, 100000, 0, 0 };
	struct auth_delay *ad;
	const char *err = NULL, *p = path_for("shared");
	char key[32];
	pid_t pids[8];
	int i, j, status, missing = 0;
	const int kids = 8, per = 100;

	test_begin("auth_delay concurrent processes");
	for (i = 0; i < kids; i++) {
		pids[i] = fork();
		TEST_ASSERT(pids[i] >= 0);
		if (pids[i] != 0)
			continue;
		/* each process opens its own table, as each daemon does */
		ad = auth_delay_open(p, &s, &err);
		if (ad == NULL)
			_exit(2);
		for (j = 0; j < per; j++) {
			const char *k = key;
			unsigned w;

			(void)snprintf(key, sizeof(key), "user:k%d-%d", i, j);
			if (auth_delay_fail(ad, &k, 1, T0, &w, &err) < 0)
				_exit(3);
			k = "ip:192.0.2.200";
			if (j < 1 && auth_delay_fail(ad, &k, 1, T0, &w,
			    &err) < 0)
				_exit(3);
		}
		auth_delay_close(&ad);
		_exit(0);
	}
	for (i = 0; i < kids; i++) {
		TEST_ASSERT(waitpid(pids[i], &status, 0) == pids[i]);
		TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ad = auth_delay_open(p, &s, &err);
	TEST_ASSERT(ad != NULL);
	if (ad != NULL) {
		/* no lost update: every process's failure counted */
		TEST_ASSERT(count1(ad, "ip:192.0.2.200", T0) == (unsigned)kids);
		for (i = 0; i < kids; i++)
			for (j = 0; j < per; j++) {
				(void)snprintf(key, sizeof(key), "user:k%d-%d",
				    i, j);
				missing += count1(ad, key, T0) != 1;
			}
		TEST_ASSERT(missing == 0);
		auth_delay_close(&ad);
	}
	test_end();
}

static const char *
ipkey(struct str *out, const char *addr)
{
	return auth_delay_ip_key(addr, out) ? str_c(out) : "(none)";
}

static void
test_ip_key(void)
{
	struct str *out = str_new(0, 0);

	test_begin("auth_delay_ip_key");
	TEST_ASSERT_STR(ipkey(out, "192.0.2.1"), "ip:192.0.2.1");
	TEST_ASSERT_STR(ipkey(out, "::ffff:192.0.2.1"), "ip:192.0.2.1");
	TEST_ASSERT_STR(ipkey(out, "2001:db8:1:2:3:4:5:6"),
	    "ip:2001:db8:1:2::/64");
	TEST_ASSERT_STR(ipkey(out, "2001:db8:1:2::99"),
	    "ip:2001:db8:1:2::/64");
	TEST_ASSERT_STR(ipkey(out, "::1"), "ip:::/64");
	TEST_ASSERT_STR(ipkey(out, "local"), "(none)");
	TEST_ASSERT_STR(ipkey(out, ""), "(none)");
	TEST_ASSERT_STR(ipkey(out, NULL), "(none)");
	test_end();
	str_free(&out);
}

int
main(void)
{
	test_growth_and_cap();
	test_decay_and_reset();
	test_full_set();
	test_repair_and_errors();
	test_concurrent();
	test_ip_key();
	return test_done();
}
