/* SPDX-License-Identifier: MIT */
/*
 * store_perf_test - a 100,000-message mailbox: measurements, and the
 * comparison with Berkeley DB behind DESIGN.md section 6
 *
 * Prints timings as TAP diagnostics ('#'); asserts only correctness,
 * never time. POSTERN_STORE_PERF_N overrides the message count.
 *
 * Measured: building the mailbox (fsync off), opening it (view of every
 * message), FETCH FLAGS over all messages (index only), UID -> seq
 * lookups, one durable append (with every fsync) to an empty and to the
 * full mailbox, a flag change, and a sync after another session's
 * append. Then the same record set in a BDB btree keyed by UID:
 * durable put (DB->sync) and a cursor walk over all flags.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "test.h"
#include "store/store.h"

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static const char msg_body[] =
    "From: a@example.org\r\nTo: b@example.org\r\nSubject: perf\r\n"
    "Message-Id: <x@example.org>\r\n\r\nHello, this is a short message.\r\n";
static const char envelope[] =
    "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"perf\" ((NIL NIL \"a\" \"example.org\")) "
    "((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
    "((NIL NIL \"b\" \"example.org\")) NIL NIL NIL \"<x@example.org>\")";
static const char bodystructure[] =
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 33 1 NIL NIL NIL NIL)";

static int
append_one(struct store *s, const char *mbox, const char *token,
    struct store_append_result *res)
{
	struct store_append_req req;
	const char *err;

	memset(&req, 0, sizeof(req));
	req.mailbox = mbox;
	req.fd = -1;
	req.data = msg_body;
	req.size = sizeof(msg_body) - 1;
	req.token = token;
	req.envelope = envelope;
	req.envelope_len = sizeof(envelope) - 1;
	req.bodystructure = bodystructure;
	req.bodystructure_len = sizeof(bodystructure) - 1;
	if (store_append(s, &req, res, &err) < 0) {
		printf("# append: %s\n", err);
		return -1;
	}
	return 0;
}

/* durable_append_us - mean time of k durable appends (all fsyncs on) */
static double
durable_append_us(struct store *s, const char *mbox, int k, bool token)
{
	struct store_append_result res;
	double t0, t;
	char tok[64];

	store_set_fsync(s, true);
	t0 = now_us();
	for (int i = 0; i < k; i++) {
		snprintf(tok, sizeof(tok), "PERF%ld/%d", (long)getpid(), i);
		(void)append_one(s, mbox, token ? tok : NULL, &res);
	}
	t = (now_us() - t0) / k;
	store_set_fsync(s, false);
	return t;
}

struct bdb_rec {
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
	int64_t date;
	uint64_t size;
	char cache[320];
};

static void
bench_bdb(const char *dir, unsigned n)
{
	DB *db;
	char *path = xasprintf("%s/bdb-index.db", dir);
	struct bdb_rec r;
	DBT key, val;
	DBC *cur;
	double t0;
	uint64_t seen = 0;
	unsigned count = 0;
	int ret;

	if (db_create(&db, NULL, 0) != 0)
		return;
	if ((ret = db->open(db, NULL, path, NULL, DB_BTREE, DB_CREATE, 0600)) != 0) {
		printf("# bdb open: %s\n", db_strerror(ret));
		return;
	}
	memset(&r, 0, sizeof(r));
	t0 = now_us();
	for (unsigned uid = 1; uid <= n; uid++) {
		uint32_t k = __builtin_bswap32(uid);	/* big-endian: btree order = UID order */

		r.modseq = uid;
		r.flags = uid % 3 == 0;
		memset(&key, 0, sizeof(key));
		memset(&val, 0, sizeof(val));
		key.data = &k;
		key.size = sizeof(k);
		val.data = &r;
		val.size = sizeof(r);
		(void)db->put(db, NULL, &key, &val, 0);
	}
	(void)db->sync(db, 0);
	printf("# bdb: build %u records (one sync at end): %.0f ms\n", n,
	    (now_us() - t0) / 1000);
	t0 = now_us();
	for (int i = 0; i < 50; i++) {
		uint32_t k = __builtin_bswap32(n + 1 + (unsigned)i);

		memset(&key, 0, sizeof(key));
		memset(&val, 0, sizeof(val));
		key.data = &k;
		key.size = sizeof(k);
		val.data = &r;
		val.size = sizeof(r);
		(void)db->put(db, NULL, &key, &val, 0);
		(void)db->sync(db, 0);
	}
	printf("# bdb: durable put (put + DB->sync, no txn, no crash recovery): %.0f us\n",
	    (now_us() - t0) / 50);
	t0 = now_us();
	if (db->cursor(db, NULL, &cur, 0) == 0) {
		memset(&key, 0, sizeof(key));
		memset(&val, 0, sizeof(val));
		while (cur->get(cur, &key, &val, DB_NEXT) == 0) {
			const struct bdb_rec *p = val.data;

			seen += p->flags;
			count++;
		}
		cur->close(cur);
	}
	printf("# bdb: cursor walk over all flags (%u records): %.2f ms (%lu seen)\n",
	    count, (now_us() - t0) / 1000, (unsigned long)seen);
	db->close(db, 0);
	free(path);
}

int
main(void)
{
	const char *root = test_tmpdir(), *err;
	const char *e = getenv("POSTERN_STORE_PERF_N");
	/*
	 * 10,000 messages keep `make check` quick (twice: normal and SAN);
	 * the benchmark runs it with POSTERN_STORE_PERF_N=100000.
	 */
	unsigned n = e != NULL ? (unsigned)strtoul(e, NULL, 10) : 10000;
	struct store *s;
	struct store_mailbox *box, *box2;
	struct store_append_result res;
	double t0, t;
	uint64_t seen = 0;
	bool ok = true;

	if (n < 1000)
		n = 1000;
	s = store_open(root, "perf", &err);
	ASSERT(s != NULL);
	ASSERT(store_ensure_defaults(s, &err) == 0);

	test_begin("durable append into an empty mailbox");
	t = durable_append_us(s, "Drafts", 50, false);
	printf("# append one message, empty mailbox, all fsyncs: %.0f us\n", t);
	t = durable_append_us(s, "Drafts", 50, true);
	printf("# the same with a delivery token (one more fsync): %.0f us\n", t);
	test_end();

	test_begin("build a large mailbox");
	store_set_fsync(s, false);
	t0 = now_us();
	for (unsigned i = 0; i < n && ok; i++)
		ok = append_one(s, "INBOX", NULL, &res) == 0 && res.uid == i + 1;
	t = now_us() - t0;
	TEST_ASSERT(ok);
	printf("# build %u messages (fsync off): %.1f s, %.0f us each\n", n,
	    t / 1e6, t / n);
	test_end();

	test_begin("open and read the flags of every message (index only)");
	t0 = now_us();
	box = store_mailbox_open(s, "INBOX", 0, &err);
	t = now_us() - t0;
	TEST_ASSERT(box != NULL && store_mailbox_count(box) == n);
	printf("# open %u-message mailbox (builds the session view): %.2f ms\n", n,
	    t / 1000);
	{
		uint32_t *u = xcalloc(n / 3 + 1, sizeof(uint32_t));
		size_t k = 0;

		for (uint32_t uid = 3; uid <= n; uid += 3)
			u[k++] = uid;
		t0 = now_us();
		TEST_ASSERT(store_update_flags(box, u, k, STORE_FLAGS_ADD,
		    STORE_FLAG_SEEN, 0, 0, NULL, &err) == 0);
		printf("# STORE +FLAGS \\Seen on %zu messages (one commit): %.0f ms\n",
		    k, (now_us() - t0) / 1000);
		free(u);
	}
	{
		struct store_sync_result sr;

		t0 = now_us();
		TEST_ASSERT(store_mailbox_sync(box, 0, &sr, &err) == 0);
		printf("# sync after that (reads %zu change entries): %.1f ms\n",
		    sr.changed.count, (now_us() - t0) / 1000);
		store_sync_result_free(&sr);
	}
	t0 = now_us();
	for (uint32_t seq = 1; seq <= n; seq++) {
		struct store_msg m;

		store_msg_get(box, seq, &m);
		seen += (m.flags & STORE_FLAG_SEEN) != 0;
	}
	t = now_us() - t0;
	TEST_ASSERT(seen == n / 3);
	printf("# FETCH 1:* FLAGS over %u messages: %.2f ms (%.1f ns each)\n", n,
	    t / 1000, t * 1000 / n);
	test_end();

	test_begin("UID lookups");
	t0 = now_us();
	for (unsigned i = 0; i < 100000; i++) {
		uint32_t uid = 1 + (uint32_t)((i * 2654435761u) % n);

		if (store_seq_by_uid(box, uid) != uid)
			ok = false;
	}
	t = now_us() - t0;
	TEST_ASSERT(ok);
	printf("# UID -> seq (binary search): %.0f ns each\n", t * 1000 / 100000);
	{
		struct str *out = str_new(0, 0);

		t0 = now_us();
		for (uint32_t seq = 1; seq <= 10000; seq++) {
			str_clear(out);
			(void)store_msg_cached(box, seq * (n / 10000), STORE_CACHE_ENVELOPE,
			    out, &err);
		}
		printf("# cached ENVELOPE read: %.1f us each\n",
		    (now_us() - t0) / 10000);
		TEST_ASSERT_STR(str_c(out), envelope);
		str_free(&out);
	}
	test_end();

	test_begin("append cost does not grow with the mailbox");
	t = durable_append_us(s, "INBOX", 50, false);
	printf("# append one message to the %u-message mailbox, all fsyncs: %.0f us\n",
	    n, t);
	store_set_fsync(s, false);
	t0 = now_us();
	for (int i = 0; i < 1000; i++)
		(void)append_one(s, "INBOX", NULL, &res);
	printf("# append (fsync off) at %u messages: %.0f us each\n", n,
	    (now_us() - t0) / 1000);
	box2 = store_mailbox_open(s, "INBOX", STORE_OPEN_READONLY, &err);
	{
		struct store_sync_result sr;

		(void)append_one(s, "INBOX", NULL, &res);
		t0 = now_us();
		TEST_ASSERT(store_mailbox_sync(box2, 0, &sr, &err) == 0);
		t = now_us() - t0;
		TEST_ASSERT(sr.exists == store_mailbox_count(box2) &&
		    sr.new_first_seq == sr.exists);
		printf("# sync of another session after one append: %.0f us\n", t);
		store_sync_result_free(&sr);
	}
	{
		struct store_status st;

		t0 = now_us();
		TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0);
		printf("# STATUS (index header only): %.0f us\n", now_us() - t0);
	}
	store_mailbox_close(&box2);
	test_end();

	test_begin("Berkeley DB comparison");
	bench_bdb(root, n);
	test_end();

	store_mailbox_close(&box);
	store_free(&s);
	return test_done();
}
