/* SPDX-License-Identifier: MIT */
/*
 * scache_test - the table of parked sessions (scache_table.c), the
 * table of TLS sessions (scache_tls.c) and the record format
 * (lib/scache_proto.c)
 *
 * Sessions are socketpairs: the test holds the "server" end and sees
 * the QUIT and EOF when the table closes a session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scache.h"
#include "scache_proto.h"
#include "str.h"
#include "test.h"

/* pair - a session: *peer_r is the server end; returns the agent end */
static int
pair(int *peer_r)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	*peer_r = sv[1];
	return sv[0];
}

/* closed_with_quit - did the table send QUIT and close the session? */
static bool
closed_with_quit(int peer)
{
	char buf[16];
	ssize_t n = read(peer, buf, sizeof(buf));

	return n == 6 && memcmp(buf, "QUIT\r\n", 6) == 0 &&
	    read(peer, buf, sizeof(buf)) == 0;
}

/* still_open - no QUIT, no EOF yet */
static bool
still_open(int peer)
{
	char c;
	int fl = fcntl(peer, F_GETFL);
	ssize_t n;

	(void)fcntl(peer, F_SETFL, fl | O_NONBLOCK);
	n = read(peer, &c, 1);
	(void)fcntl(peer, F_SETFL, fl);
	return n < 0 && errno == EAGAIN;
}

static void
test_table(void)
{
	struct scache_rec r, got;
	int peer[4], fd;

	test_begin("table: get newest, expiry, size limit");
	scache_table_init(3, 1000);
	memset(&r, 0, sizeof(r));
	r.ext = 0x15;
	r.size_max = 10240000;
	r.token_ext = true;
	r.key = (char *)(uintptr_t)"[mx]:25 mx[192.0.2.1]:25 0";
	r.host = (char *)(uintptr_t)"mx.example.net";
	scache_table_put(&r, pair(&peer[0]), 0);
	scache_table_put(&r, pair(&peer[1]), 100);
	TEST_ASSERT(scache_table_count() == 2);
	/* an unknown key misses */
	TEST_ASSERT(scache_table_get("other", 200, &got) == -1);
	/* the newest of the key comes back, with its state */
	fd = scache_table_get(r.key, 200, &got);
	TEST_ASSERT(fd >= 0);
	TEST_ASSERT(got.ext == 0x15 && got.size_max == 10240000 &&
	    got.token_ext);
	TEST_ASSERT_STR(got.host, "mx.example.net");
	scache_rec_clear(&got);
	TEST_ASSERT(write(fd, "x", 1) == 1);
	{
		char c = 0;

		TEST_ASSERT(read(peer[1], &c, 1) == 1 && c == 'x');
	}
	(void)close(fd);
	TEST_ASSERT(still_open(peer[0]));
	/* the expiry of the older one is 1000 ms after its park */
	TEST_ASSERT(scache_table_expire(500) == 500);
	TEST_ASSERT(scache_table_expire(1000) == 0);
	TEST_ASSERT(closed_with_quit(peer[0]));
	TEST_ASSERT(scache_table_count() == 0);
	/* full: the oldest goes for a new one */
	r.key = (char *)(uintptr_t)"a";
	scache_table_put(&r, pair(&peer[0]), 2000);
	r.key = (char *)(uintptr_t)"b";
	scache_table_put(&r, pair(&peer[1]), 2001);
	scache_table_put(&r, pair(&peer[2]), 2002);
	scache_table_put(&r, pair(&peer[3]), 2003);
	TEST_ASSERT(scache_table_count() == 3);
	TEST_ASSERT(closed_with_quit(peer[0]));
	TEST_ASSERT(scache_table_get("a", 2004, &got) == -1);
	/* expired sessions are closed, not handed out: only the newest */
	fd = scache_table_get("b", 3002, &got);
	TEST_ASSERT(fd >= 0);
	scache_rec_clear(&got);
	TEST_ASSERT(closed_with_quit(peer[1]) && closed_with_quit(peer[2]));
	TEST_ASSERT(scache_table_count() == 0);
	if (fd >= 0)
		(void)close(fd);
	{
		char c;

		TEST_ASSERT(read(peer[3], &c, 1) == 0);	/* ours, no QUIT */
	}
	scache_table_put(&r, pair(&peer[0]), 4000);
	scache_table_close_all();
	TEST_ASSERT(scache_table_count() == 0);
	TEST_ASSERT(closed_with_quit(peer[0]));
	close(peer[0]);
	close(peer[1]);
	close(peer[2]);
	close(peer[3]);
	test_end();
}

static void
test_record(void)
{
	struct scache_rec r, got;
	struct str *buf = str_new(0, 0);
	const char *error = NULL;

	test_begin("record: round trip and strict decoding");
	memset(&r, 0, sizeof(r));
	r.op = SCACHE_OP_REPLY;
	r.status = 1;
	r.ext = 7;
	r.size_max = (uint64_t)1 << 40;
	r.key = (char *)(uintptr_t)"k";
	r.host = (char *)(uintptr_t)"h.example";
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) == 0);
	TEST_ASSERT(got.op == SCACHE_OP_REPLY && got.status == 1 &&
	    got.ext == 7 && got.size_max == ((uint64_t)1 << 40) &&
	    !got.token_ext);
	TEST_ASSERT_STR(got.key, "k");
	TEST_ASSERT_STR(got.host, "h.example");
	scache_rec_clear(&got);
	/* one octet short, and a NUL in a string */
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf) - 1, &got,
	    &error) < 0);
	str_data(buf)[str_len(buf) - 1] = '\0';
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) < 0);
	/* an unknown op */
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	str_data(buf)[8] = 9;
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) < 0);
	str_free(&buf);
	test_end();
}

static void
test_tls_record(void)
{
	static const unsigned char der[] = { 0x30, 0x82, 0x00, 0x00, 0x01 };
	struct scache_rec r, got;
	struct str *buf = str_new(0, 0), *big = str_new(0, 0);
	const char *error = NULL;
	size_t i;

	test_begin("record: TLS sessions (data) and where data may go");
	memset(&r, 0, sizeof(r));
	r.op = SCACHE_OP_TLS_PUT;
	r.key = (char *)(uintptr_t)"[mx]:25 mx[192.0.2.1]:25 3 sni=mx";
	r.data = (unsigned char *)(uintptr_t)der;
	r.data_len = sizeof(der);
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	TEST_ASSERT(str_len(buf) == SCACHE_REC_FIXED + strlen(r.key) +
	    sizeof(der));
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) == 0);
	TEST_ASSERT(got.op == SCACHE_OP_TLS_PUT &&
	    got.data_len == sizeof(der) &&
	    memcmp(got.data, der, sizeof(der)) == 0);
	TEST_ASSERT_STR(got.key, r.key);
	scache_rec_clear(&got);
	TEST_ASSERT(got.data == NULL && got.data_len == 0);
	/* the encoded record is wiped after use */
	scache_rec_wipe(buf);
	TEST_ASSERT(str_len(buf) == 0);
	/* fed in growing prefixes: only the whole record decodes */
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	for (i = 0; i < str_len(buf); i++)
		TEST_ASSERT(scache_rec_decode(str_c(buf), i, &got,
		    &error) < 0);
	/* a reply carries data; a GET or TLS_GET does not */
	r.op = SCACHE_OP_REPLY;
	r.status = 1;
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) == 0);
	TEST_ASSERT(got.status == 1 && got.data_len == sizeof(der));
	scache_rec_clear(&got);
	r.op = SCACHE_OP_TLS_GET;
	TEST_ASSERT(scache_rec_encode(&r, buf) < 0);
	str_data(buf)[8] = SCACHE_OP_TLS_GET;	/* the reply, relabelled */
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) < 0);
	TEST_ASSERT(strcmp(error, "data in a record that carries none") == 0);
	str_data(buf)[8] = SCACHE_OP_PUT;
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) < 0);
	/* a TLS_GET without data is fine */
	r.data = NULL;
	r.data_len = 0;
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) == 0);
	TEST_ASSERT(got.op == SCACHE_OP_TLS_GET && got.data == NULL);
	scache_rec_clear(&got);
	/* data above SCACHE_DATA_MAX: not encoded, not decoded */
	for (i = 0; i <= SCACHE_DATA_MAX; i++)
		(void)str_append_c(big, 'x');
	r.op = SCACHE_OP_TLS_PUT;
	r.data = (unsigned char *)str_data(big);
	r.data_len = SCACHE_DATA_MAX + 1;
	TEST_ASSERT(scache_rec_encode(&r, buf) < 0);
	r.data_len = SCACHE_DATA_MAX;
	TEST_ASSERT(scache_rec_encode(&r, buf) == 0);
	TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
	    &error) == 0);
	scache_rec_clear(&got);
	{
		uint32_t dlen = SCACHE_DATA_MAX + 1;

		memcpy(str_data(buf) + 40, &dlen, sizeof(dlen));
		TEST_ASSERT(scache_rec_decode(str_c(buf), str_len(buf), &got,
		    &error) < 0);
	}
	str_free(&big);
	str_free(&buf);
	test_end();
}

static void
test_tls_table(void)
{
	static const unsigned char one[] = "session one", two[] = "two";
	struct scache_rec got;
	char key[32];
	size_t i;

	test_begin("TLS table: one session per key, expiry, size limit");
	scache_tls_init(3, 1000);
	memset(&got, 0, sizeof(got));
	TEST_ASSERT(!scache_tls_get("k", 0, &got));
	TEST_ASSERT(!scache_tls_put("k", one, 0, 0));	/* nothing to keep */
	TEST_ASSERT(scache_tls_put("k", one, sizeof(one), 0));
	/* a get leaves it there: another agent may resume it too */
	TEST_ASSERT(scache_tls_get("k", 10, &got));
	TEST_ASSERT(got.data_len == sizeof(one) &&
	    memcmp(got.data, one, sizeof(one)) == 0);
	scache_rec_clear(&got);
	TEST_ASSERT(scache_tls_get("k", 20, &got));
	scache_rec_clear(&got);
	/* a put replaces the key's session and restarts its clock */
	TEST_ASSERT(scache_tls_put("k", two, sizeof(two), 500));
	TEST_ASSERT(scache_tls_count() == 1);
	TEST_ASSERT(scache_tls_get("k", 1200, &got));
	TEST_ASSERT(got.data_len == sizeof(two) &&
	    memcmp(got.data, two, sizeof(two)) == 0);
	scache_rec_clear(&got);
	TEST_ASSERT(scache_tls_expire(1300) == 200);
	TEST_ASSERT(!scache_tls_get("k", 1500, &got));
	TEST_ASSERT(scache_tls_count() == 0);
	/* full: the oldest goes */
	for (i = 0; i < 4; i++) {
		(void)snprintf(key, sizeof(key), "k%zu", i);
		TEST_ASSERT(scache_tls_put(key, one, sizeof(one),
		    2000 + (int64_t)i));
	}
	TEST_ASSERT(scache_tls_count() == 3);
	TEST_ASSERT(!scache_tls_get("k0", 2010, &got));
	TEST_ASSERT(scache_tls_get("k3", 2010, &got));
	scache_rec_clear(&got);
	TEST_ASSERT(!scache_tls_put("k", one, SCACHE_DATA_MAX + 1, 2010));
	scache_tls_clear();
	TEST_ASSERT(scache_tls_count() == 0);
	TEST_ASSERT(scache_tls_expire(5000) == 0);
	test_end();
}

int
main(void)
{
	test_table();
	test_record();
	test_tls_record();
	test_tls_table();
	return test_done();
}
