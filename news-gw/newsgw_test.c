/* SPDX-License-Identifier: MIT */
/*
 * newsgw_test - unit tests for news-gw: peer networks, history expiry
 */
#include <string.h>
#include <time.h>

#include "str.h"
#include "test.h"

#include "newsgw.h"

/* news-gw.c (with main) is not linked into unit tests */
struct newsgw_settings newsgw_settings;

int
newsgw_maps_lookup(struct map **maps, size_t n, const char *key,
    struct str *value, struct log_ctx *log)
{
	(void)maps;
	(void)n;
	(void)key;
	(void)value;
	(void)log;
	return 0;
}

static bool
match(const char *spec, const char *addr)
{
	const char *specs[1] = { spec };

	return newsgw_peer_match(specs, 1, addr);
}

static void
test_peer_specs(void)
{
	test_begin("peer specs");
	TEST_ASSERT(newsgw_peer_spec_ok("127.0.0.1"));
	TEST_ASSERT(newsgw_peer_spec_ok("127.0.0.0/8"));
	TEST_ASSERT(newsgw_peer_spec_ok("0.0.0.0/0"));
	TEST_ASSERT(newsgw_peer_spec_ok("::1/128"));
	TEST_ASSERT(newsgw_peer_spec_ok("2001:db8::/32"));
	TEST_ASSERT(newsgw_peer_spec_ok("::ffff:192.0.2.0/120"));
	TEST_ASSERT(!newsgw_peer_spec_ok(""));
	TEST_ASSERT(!newsgw_peer_spec_ok("localhost"));
	TEST_ASSERT(!newsgw_peer_spec_ok("127.0.0.0/"));
	TEST_ASSERT(!newsgw_peer_spec_ok("127.0.0.0/33"));
	TEST_ASSERT(!newsgw_peer_spec_ok("127.0.0.0/-1"));
	TEST_ASSERT(!newsgw_peer_spec_ok("127.0.0.0/8x"));
	TEST_ASSERT(!newsgw_peer_spec_ok("127.0.0.0/+8"));
	TEST_ASSERT(!newsgw_peer_spec_ok("::1/129"));
	TEST_ASSERT(!newsgw_peer_spec_ok("/8"));
	TEST_ASSERT(!newsgw_peer_spec_ok("1.2.3.4.5/8"));
	TEST_ASSERT(!newsgw_peer_spec_ok(
	    "1111:2222:3333:4444:5555:6666:7777:8888:9999/64"));
	test_end();
}

static void
test_peer_match(void)
{
	const char *list[] = { "192.0.2.10", "10.1.0.0/16", "::1/128",
	    "2001:db8:8000::/33", "bogus" };

	test_begin("peer match");
	TEST_ASSERT(match("127.0.0.1", "127.0.0.1"));
	TEST_ASSERT(!match("127.0.0.1", "127.0.0.2"));
	TEST_ASSERT(match("127.0.0.0/8", "127.0.0.2"));
	TEST_ASSERT(match("127.0.0.0/8", "127.255.255.255"));
	TEST_ASSERT(!match("127.0.0.0/8", "128.0.0.1"));
	TEST_ASSERT(match("0.0.0.0/0", "198.51.100.7"));
	TEST_ASSERT(!match("0.0.0.0/0", "::1"));
	TEST_ASSERT(match("192.0.2.128/25", "192.0.2.200"));
	TEST_ASSERT(!match("192.0.2.128/25", "192.0.2.127"));
	TEST_ASSERT(match("192.0.2.7/32", "192.0.2.7"));
	/* host bits set in the network: compared under the mask only */
	TEST_ASSERT(match("10.1.2.3/16", "10.1.200.1"));
	TEST_ASSERT(match("::1/128", "::1"));
	TEST_ASSERT(match("::1", "0:0::1"));
	TEST_ASSERT(!match("::1/128", "::2"));
	TEST_ASSERT(!match("::1/128", "127.0.0.1"));
	TEST_ASSERT(match("2001:db8::/32", "2001:DB8:ffff::1"));
	TEST_ASSERT(!match("2001:db8::/32", "2001:db9::1"));
	TEST_ASSERT(match("::/0", "fe80::1"));
	/* IPv4-mapped addresses are their IPv4 address, either side */
	TEST_ASSERT(match("127.0.0.0/8", "::ffff:127.0.0.5"));
	TEST_ASSERT(match("::ffff:192.0.2.0/120", "192.0.2.99"));
	TEST_ASSERT(!match("::ffff:192.0.2.0/120", "192.0.3.1"));
	/* the connecting address is never a network, never a name */
	TEST_ASSERT(!match("127.0.0.0/8", "127.0.0.0/8"));
	TEST_ASSERT(!match("127.0.0.0/8", "localhost"));
	TEST_ASSERT(!match("127.0.0.0/8", ""));
	TEST_ASSERT(newsgw_peer_match(list, 5, "192.0.2.10"));
	TEST_ASSERT(!newsgw_peer_match(list, 5, "192.0.2.11"));
	TEST_ASSERT(newsgw_peer_match(list, 5, "10.1.99.1"));
	TEST_ASSERT(!newsgw_peer_match(list, 5, "10.2.0.1"));
	TEST_ASSERT(newsgw_peer_match(list, 5, "::1"));
	TEST_ASSERT(newsgw_peer_match(list, 5, "2001:db8:8000::1"));
	TEST_ASSERT(newsgw_peer_match(list, 5, "2001:db8:ffff::1"));
	TEST_ASSERT(!newsgw_peer_match(list, 5, "2001:db8:7fff::1"));
	TEST_ASSERT(!newsgw_peer_match(list, 5, "bogus"));
	TEST_ASSERT(!newsgw_peer_match(list, 0, "192.0.2.10"));
	test_end();
}

static void
test_history_expiry(void)
{
	struct str *path = str_new(0, 0);
	time_t now = time(NULL);
	unsigned long hwm;
	bool found;
	char dir = 0;

	test_begin("history expiry");
	str_printf(path, "%s/sub/history.db", test_tmpdir());
	newsgw_settings.history = str_c(path);
	newsgw_settings.history_lifetime = 3600;
	/* old ones of both directions, young ones, one at the edge */
	TEST_ASSERT(newsgw_history_add_at("<old-m@x>", 'm', now - 7200,
	    NULL) == 0);
	TEST_ASSERT(newsgw_history_add_at("<old-n@x>", 'n', now - 3700,
	    NULL) == 0);
	TEST_ASSERT(newsgw_history_add_at("<young@x>", 'n', now - 600,
	    NULL) == 0);
	TEST_ASSERT(newsgw_history_add_at("<edge@x>", 'm', now - 3500,
	    NULL) == 0);
	TEST_ASSERT(newsgw_history_add("<now@x>", 'm', NULL) == 0);
	TEST_ASSERT(newsgw_history_set_hwm("test.one", 42, NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<old-m@x>", &dir, NULL) == 1 &&
	    dir == 'm');
	TEST_ASSERT(newsgw_history_expire(NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<old-m@x>", NULL, NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<old-n@x>", NULL, NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<young@x>", &dir, NULL) == 1 &&
	    dir == 'n');
	TEST_ASSERT(newsgw_history_seen("<edge@x>", NULL, NULL) == 1);
	TEST_ASSERT(newsgw_history_seen("<now@x>", NULL, NULL) == 1);
	/* high-water marks never expire */
	TEST_ASSERT(newsgw_history_hwm("test.one", &hwm, &found, NULL) == 0 &&
	    found && hwm == 42);
	/* a second walk removes nothing more; a shorter lifetime does */
	TEST_ASSERT(newsgw_history_expire(NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<young@x>", NULL, NULL) == 1);
	newsgw_settings.history_lifetime = 60;
	TEST_ASSERT(newsgw_history_expire(NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<young@x>", NULL, NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<edge@x>", NULL, NULL) == 0);
	TEST_ASSERT(newsgw_history_seen("<now@x>", NULL, NULL) == 1);
	TEST_ASSERT(newsgw_history_hwm("test.one", &hwm, &found, NULL) == 0 &&
	    found && hwm == 42);
	newsgw_settings.history = NULL;
	str_free(&path);
	test_end();
}

int
main(void)
{
	test_peer_specs();
	test_peer_match();
	test_history_expiry();
	return test_done();
}
