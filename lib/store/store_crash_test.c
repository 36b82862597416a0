/* SPDX-License-Identifier: MIT */
/*
 * store_crash_test - kill a writer at every durable step and at random
 * moments; check that the mailbox opens cleanly, holds every
 * acknowledged message byte for byte, never reuses a UID, and that
 * retrying the unacknowledged deliveries with their tokens stores each
 * message exactly once.
 *
 * A child appends (with delivery tokens), sets flags and expunges, and
 * reports on a pipe: "A i" before an append, "K i uid" after it was
 * acknowledged, "F uid" after an acknowledged flag change, "E i" after
 * an acknowledged expunge. It dies either at the N-th kill point
 * (store_killpoint_set, the in-process form of POSTERN_STORE_KILLPOINT)
 * or by SIGKILL from the parent after a seeded random delay. The parent
 * then plays qmgr: it retries every unacknowledged delivery with the
 * same token, and checks the whole mailbox.
 *
 * POSTERN_STORE_CRASH_SEED=n repeats a random run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "test.h"
#include "store/store.h"
#include "store/store_private.h"

#define MAX_I 200000

static const char *root;

struct state {
	unsigned char attempted[MAX_I];
	unsigned char acked[MAX_I];
	unsigned char expunged[MAX_I];	/* acked expunge */
	unsigned char exp_tried[MAX_I];	/* expunge attempted */
	uint32_t uid_of[MAX_I];
	uint32_t max_uid_seen;
	uint32_t flagged_uids[4096];
	size_t nflagged;
};

static struct state st;

static void
msg_text(struct str *s, int i)
{
	str_clear(s);
	(void)str_printf(s, "Message-Id: <%d@crash>\r\nSubject: msg %d\r\n\r\n", i, i);
	for (int k = 0; k < (i * 37) % 3000; k++)
		(void)str_append_c(s, (char)('a' + (i + k) % 26));
	(void)str_append(s, "\r\n", 2);
}

static int
deliver(struct store *s, int i, struct store_append_result *res)
{
	struct str *m = str_new(0, 0);
	struct store_append_req req;
	char tok[32];
	const char *err;
	int ret;

	msg_text(m, i);
	snprintf(tok, sizeof(tok), "CRASHQ/%d", i);
	memset(&req, 0, sizeof(req));
	req.fd = -1;
	req.data = str_c(m);
	req.size = str_len(m);
	req.token = tok;
	req.envelope = "(env)";
	req.envelope_len = 5;
	ret = store_append(s, &req, res, &err);
	if (ret < 0)
		printf("# deliver %d: %s\n", i, err);
	str_free(&m);
	return ret;
}

static void
report(int fd, char kind, int a, uint32_t b)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%c %d %u\n", kind, a, b);

	if (write(fd, line, (size_t)n) != n)
		_exit(3);
}

/* child - deliveries, flag changes and expunges until killed or done */
static void
child(int wfd, int first, int count, long killpoint)
{
	const char *err;
	struct store *s = store_open(root, "crash", &err);
	struct store_mailbox *box;

	if (s == NULL)
		_exit(2);
	store_set_fsync(s, false);
	box = store_mailbox_open(s, "INBOX", 0, &err);
	if (box == NULL)
		_exit(2);
	store_killpoint_set(killpoint);
	for (int i = first; i < first + count; i++) {
		struct store_append_result res;

		report(wfd, 'A', i, 0);
		if (deliver(s, i, &res) < 0)
			_exit(4);
		report(wfd, 'K', i, res.uid);
		if (i % 3 == 0) {
			if (store_update_flags(box, &res.uid, 1, STORE_FLAGS_ADD,
			    STORE_FLAG_SEEN, 0, 0, NULL, &err) < 0)
				_exit(5);
			report(wfd, 'F', i, res.uid);
		}
		if (i % 7 == 0 && i - 4 >= first) {
			/* expunge an earlier message of ours */
			int j = i - 4;
			struct store_uids x = { NULL, 0, 0 };
			uint32_t u = st.uid_of[j];

			report(wfd, 'X', j, u);
			if (u != 0 && store_expunge(box, &u, 1, &x, &err) < 0)
				_exit(6);
			store_uids_clear(&x);
			report(wfd, 'E', j, u);
		}
		st.uid_of[i] = res.uid;	/* child's own copy */
	}
	store_mailbox_close(&box);
	store_free(&s);
	_exit(0);
}

static void
parse_reports(int rfd)
{
	char buf[65536];
	struct str *acc = str_new(0, 0);
	ssize_t n;
	const char *p, *end;

	while ((n = read(rfd, buf, sizeof(buf))) > 0)
		(void)str_append(acc, buf, (size_t)n);
	p = str_c(acc);
	end = p + str_len(acc);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char kind;
		long i;
		unsigned long u;
		char *e;

		if (nl == NULL)
			break;	/* a torn last line: the child died in write() */
		kind = p[0];
		i = strtol(p + 2, &e, 10);
		u = strtoul(e + 1, &e, 10);
		if (i >= 0 && i < MAX_I) {
			switch (kind) {
			case 'A':
				st.attempted[i] = 1;
				break;
			case 'K':
				st.acked[i] = 1;
				st.uid_of[i] = (uint32_t)u;
				if (u > st.max_uid_seen)
					st.max_uid_seen = (uint32_t)u;
				break;
			case 'F':
				if (st.nflagged < N_ELEMENTS(st.flagged_uids))
					st.flagged_uids[st.nflagged++] = (uint32_t)u;
				break;
			case 'X':
				st.exp_tried[i] = 1;
				break;
			case 'E':
				st.expunged[i] = 1;
				break;
			}
		}
		p = nl + 1;
	}
	str_free(&acc);
}

/* run_child - one child run; returns how it ended */
static int
run_child(int first, int count, long killpoint, unsigned kill_after_us)
{
	int pfd[2];
	pid_t pid;
	int status;

	if (pipe(pfd) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		child(pfd[1], first, count, killpoint);
	}
	close(pfd[1]);
	if (kill_after_us > 0) {
		usleep(kill_after_us);
		kill(pid, SIGKILL);
	}
	parse_reports(pfd[0]);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/*
 * check - open (recovering), retry unacknowledged deliveries, verify the
 * whole mailbox. Returns false on any inconsistency.
 */
static bool
check(int upto)
{
	const char *err;
	struct store *s = store_open(root, "crash", &err);
	struct store_mailbox *box;
	struct store_status status;
	struct str *want = str_new(0, 0), *got = str_new(0, 0);
	unsigned char *count = xcalloc(MAX_I, 1);
	bool ok = true;
	uint32_t prev = 0;

	store_set_fsync(s, false);
	/* qmgr retries what was not acknowledged, with the same token */
	for (int i = 0; i < upto; i++) {
		struct store_append_result res;

		if (!st.attempted[i] || st.acked[i])
			continue;
		if (deliver(s, i, &res) < 0) {
			ok = false;
			continue;
		}
		st.acked[i] = 1;
		st.uid_of[i] = res.uid;
		if (!res.duplicate && res.uid <= st.max_uid_seen) {
			printf("# UID %u reused (max acknowledged %u)\n", res.uid,
			    st.max_uid_seen);
			ok = false;
		}
		if (res.uid > st.max_uid_seen)
			st.max_uid_seen = res.uid;
	}
	box = store_mailbox_open(s, "INBOX", 0, &err);
	if (box == NULL) {
		printf("# open after crash: %s\n", err);
		ok = false;
		goto out;
	}
	store_mailbox_status_get(box, &status);
	if (status.messages != store_mailbox_count(box) ||
	    status.uidnext <= st.max_uid_seen) {
		printf("# header: messages %u view %u uidnext %u max uid %u\n",
		    status.messages, store_mailbox_count(box), status.uidnext,
		    st.max_uid_seen);
		ok = false;
	}
	for (uint32_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		uint32_t uid = store_msg_uid(box, seq);
		const char *p;
		long i;
		struct store_msg m;

		if (uid <= prev) {
			printf("# UIDs not ascending at seq %u\n", seq);
			ok = false;
		}
		prev = uid;
		str_clear(got);
		if (store_msg_read(box, seq, got, &err) < 0) {
			printf("# read uid %u: %s\n", uid, err);
			ok = false;
			continue;
		}
		p = strstr(str_c(got), "Subject: msg ");
		i = p == NULL ? -1 : strtol(p + 13, NULL, 10);
		if (i < 0 || i >= upto) {
			printf("# uid %u: unknown content\n", uid);
			ok = false;
			continue;
		}
		msg_text(want, (int)i);
		store_msg_get(box, seq, &m);
		if (str_len(want) != str_len(got) || m.size != str_len(got) ||
		    memcmp(str_c(want), str_c(got), str_len(got)) != 0) {
			printf("# uid %u: content of %ld differs\n", uid, i);
			ok = false;
		}
		if (st.expunged[i]) {
			printf("# uid %u (%ld): acknowledged expunge undone\n", uid, i);
			ok = false;
		}
		if (st.uid_of[i] != uid) {
			printf("# %ld: uid %u, acknowledged as %u\n", i, uid,
			    st.uid_of[i]);
			ok = false;
		}
		if (++count[i] > 1) {
			printf("# %ld stored twice\n", i);
			ok = false;
		}
	}
	for (int i = 0; i < upto; i++) {
		if (st.attempted[i] && !st.expunged[i] && !st.exp_tried[i] &&
		    count[i] != 1) {
			printf("# %d: %u copies (acked %d)\n", i, count[i], st.acked[i]);
			ok = false;
		}
	}
	for (size_t k = 0; k < st.nflagged; k++) {
		uint32_t seq = store_seq_by_uid(box, st.flagged_uids[k]);
		struct store_msg m;

		if (seq == 0)
			continue;
		store_msg_get(box, seq, &m);
		if ((m.flags & STORE_FLAG_SEEN) == 0) {
			printf("# uid %u lost its acknowledged \\Seen\n", m.uid);
			ok = false;
		}
	}
	/* the expunges that were tried but not acknowledged: now or never */
	for (int i = 0; i < upto; i++)
		if (st.exp_tried[i] && !st.expunged[i] && count[i] == 0)
			st.expunged[i] = 1;
	/* no leftover orphans make a later append fail */
	{
		struct store_append_result res;

		if (deliver(s, upto, &res) < 0 || res.uid <= st.max_uid_seen) {
			printf("# next append: uid %u\n", res.uid);
			ok = false;
		}
		st.attempted[upto] = st.acked[upto] = 1;
		st.uid_of[upto] = res.uid;
		st.max_uid_seen = res.uid;
	}
out:
	store_mailbox_close(&box);
	store_free(&s);
	str_free(&want);
	str_free(&got);
	free(count);
	return ok;
}

/* compaction_crash - expunge 1005 of 1010 (compacts) and die at step kp */
static bool
compaction_crash(long kp, bool *died_r)
{
	char user[32];
	const char *err;
	struct store *s;
	struct store_mailbox *box;
	struct str *m = str_new(0, 0), *got = str_new(0, 0);
	pid_t pid;
	int status;
	bool ok = true;
	uint32_t n;

	snprintf(user, sizeof(user), "cc%ld", kp);
	s = store_open(root, user, &err);
	store_set_fsync(s, false);
	(void)store_ensure_defaults(s, &err);
	for (int i = 0; i < 1010; i++) {
		struct store_append_req req;
		struct store_append_result res;

		msg_text(m, i);
		memset(&req, 0, sizeof(req));
		req.fd = -1;
		req.data = str_c(m);
		req.size = str_len(m);
		(void)store_append(s, &req, &res, &err);
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct store_uids u = { NULL, 0, 0 };

		box = store_mailbox_open(s, "INBOX", 0, &err);
		for (uint32_t uid = 1; uid <= 1005; uid++)
			store_uids_add(&u, uid);
		store_killpoint_set(kp);
		_exit(box != NULL && store_expunge(box, u.uids, u.count, NULL,
		    &err) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	*died_r = WIFEXITED(status) && WEXITSTATUS(status) == 77;
	box = store_mailbox_open(s, "INBOX", 0, &err);
	if (box == NULL) {
		printf("# kp %ld: open: %s\n", kp, err);
		ok = false;
		goto out;
	}
	n = store_mailbox_count(box);
	if (n != 1010 && n != 5) {
		printf("# kp %ld: %u messages\n", kp, n);
		ok = false;
	}
	for (uint32_t seq = 1; seq <= n; seq++) {
		uint32_t uid = store_msg_uid(box, seq);

		msg_text(m, (int)uid - 1);
		str_clear(got);
		if (store_msg_read(box, seq, got, &err) < 0 ||
		    str_len(got) != str_len(m) ||
		    memcmp(str_c(got), str_c(m), str_len(m)) != 0) {
			printf("# kp %ld: uid %u bad\n", kp, uid);
			ok = false;
		}
	}
	{
		struct store_append_req req;
		struct store_append_result res;

		memset(&req, 0, sizeof(req));
		req.fd = -1;
		req.data = "x";
		req.size = 1;
		if (store_append(s, &req, &res, &err) < 0 || res.uid != 1011) {
			printf("# kp %ld: next uid %u\n", kp, res.uid);
			ok = false;
		}
	}
out:
	store_mailbox_close(&box);
	store_free(&s);
	str_free(&m);
	str_free(&got);
	return ok;
}

/* fresh_deliver - message i into mailbox mbox of s with token FD/i */
static int
fresh_deliver(struct store *s, const char *mbox, int i,
    struct store_append_result *res)
{
	struct str *m = str_new(0, 0);
	struct store_append_req req;
	char tok[32];
	const char *err;
	int ret;

	msg_text(m, i);
	snprintf(tok, sizeof(tok), "FD/%d", i);
	memset(&req, 0, sizeof(req));
	req.fd = -1;
	req.mailbox = mbox;
	req.data = str_c(m);
	req.size = str_len(m);
	req.token = tok;
	ret = store_append(s, &req, res, &err);
	if (ret < 0)
		printf("# fresh deliver %d: %s\n", i, err);
	str_free(&m);
	return ret;
}

/*
 * first_delivery_crash - a new user's first deliveries (INBOX, then
 * Junk: the mailbox list commit, the lazy materialisation of both
 * mailboxes, their first commits) killed at step kp. Then, as qmgr
 * would, retry with the same tokens: every mailbox must open, each
 * message must be there exactly once, byte for byte.
 */
static bool
first_delivery_crash(long kp, bool *died_r)
{
	static const char *const boxes[] = { "INBOX", "Junk" };
	char user[32], c;
	int nack = 0;
	const char *err;
	struct store *s;
	struct str *m = str_new(0, 0), *got = str_new(0, 0);
	struct store_mailbox_info *list;
	size_t n;
	pid_t pid;
	int status, pfd[2];
	bool ok = true;

	snprintf(user, sizeof(user), "fd%ld", kp);
	ASSERT(pipe(pfd) == 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct store_append_result res;

		close(pfd[0]);
		store_killpoint_set(kp);
		s = store_open(root, user, &err);
		if (s == NULL)
			_exit(2);
		store_set_fsync(s, false);
		if (store_ensure_defaults(s, &err) < 0)
			_exit(3);
		for (int i = 0; i < 2; i++) {
			if (fresh_deliver(s, boxes[i], i, &res) < 0)
				_exit(4);
			if (write(pfd[1], "K", 1) != 1)
				_exit(5);
		}
		_exit(0);
	}
	close(pfd[1]);
	while (read(pfd[0], &c, 1) == 1)
		nack += c == 'K';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	*died_r = WIFEXITED(status) && WEXITSTATUS(status) == 77;
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 &&
	    WEXITSTATUS(status) != 77)) {
		printf("# kp %ld: child status %d\n", kp, status);
		ok = false;
	}

	s = store_open(root, user, &err);
	if (s == NULL || store_ensure_defaults(s, &err) < 0) {
		printf("# kp %ld: reopen: %s\n", kp, err);
		ok = false;
		goto out;
	}
	store_set_fsync(s, false);
	if (store_mailbox_list(s, &list, &n, &err) < 0 || n != 6) {
		printf("# kp %ld: list\n", kp);
		ok = false;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_status sts;

		if (store_mailbox_status(s, list[i].name, &sts, &err) < 0 ||
		    sts.uidvalidity != list[i].uidvalidity) {
			printf("# kp %ld: status %s: %s\n", kp, list[i].name,
			    err);
			ok = false;
		}
	}
	store_mailbox_list_free(&list, n);
	for (int i = 0; i < 2; i++) {
		struct store_append_result res;
		struct store_mailbox *box;

		/* an acknowledged message is there before any retry */
		if (i < nack) {
			box = store_mailbox_open(s, boxes[i], 0, &err);
			if (box == NULL || store_mailbox_count(box) != 1) {
				printf("# kp %ld: acked message %d lost\n", kp,
				    i);
				ok = false;
			}
			store_mailbox_close(&box);
		}
		/* the retry: a duplicate if it had been committed */
		if (fresh_deliver(s, boxes[i], i, &res) < 0) {
			ok = false;
			continue;
		}
		box = store_mailbox_open(s, boxes[i], 0, &err);
		if (box == NULL || store_mailbox_count(box) != 1 ||
		    store_msg_uid(box, 1) != res.uid) {
			printf("# kp %ld: %s: %s\n", kp, boxes[i],
			    box == NULL ? err : "not exactly one message");
			ok = false;
		} else {
			msg_text(m, i);
			str_clear(got);
			if (store_msg_read(box, 1, got, &err) < 0 ||
			    str_len(got) != str_len(m) ||
			    memcmp(str_c(got), str_c(m), str_len(m)) != 0) {
				printf("# kp %ld: %s: bytes differ\n", kp,
				    boxes[i]);
				ok = false;
			}
		}
		store_mailbox_close(&box);
	}
out:
	store_free(&s);
	str_free(&m);
	str_free(&got);
	return ok;
}

int
main(void)
{
	const char *err;
	struct store *s;
	int next = 0, died = 0, runs = 0;
	unsigned seed;
	const char *e = getenv("POSTERN_STORE_CRASH_SEED");

	root = test_tmpdir();
	s = store_open(root, "crash", &err);
	ASSERT(s != NULL);
	ASSERT(store_ensure_defaults(s, &err) == 0);
	store_free(&s);

	test_begin("kill point after every durable step of append/flags/expunge");
	{
		bool all_ok = true;

		/* 14 operations per child cover every step of each kind */
		for (long kp = 1; kp <= 150; kp++) {
			int r = run_child(next, 14, kp, 0);

			runs++;
			if (r == 77)
				died++;
			else if (r != 0) {
				printf("# killpoint %ld: child exit %d\n", kp, r);
				all_ok = false;
			}
			next += 15;
			if (!check(next - 1)) {
				printf("# inconsistent after kill point %ld\n", kp);
				all_ok = false;
			}
		}
		printf("# %d runs, %d stopped at a kill point\n", runs, died);
		TEST_ASSERT(all_ok);
		TEST_ASSERT(died > 100);
	}
	test_end();

	seed = e != NULL ? (unsigned)strtoul(e, NULL, 10) : (unsigned)time(NULL);
	printf("# random SIGKILL seed %u (POSTERN_STORE_CRASH_SEED to repeat)\n", seed);
	srandom(seed);
	test_begin("SIGKILL at seeded random moments");
	{
		bool all_ok = true;
		int killed = 0;

		for (int round = 0; round < 40; round++) {
			unsigned delay = 200 + (unsigned)(random() % 20000);
			int r = run_child(next, 400, 0, delay);

			if (r == 128 + SIGKILL)
				killed++;
			else if (r != 0) {
				printf("# round %d: child exit %d\n", round, r);
				all_ok = false;
			}
			next += 401;
			if (!check(next - 1)) {
				printf("# inconsistent after round %d (delay %u us)\n",
				    round, delay);
				all_ok = false;
			}
		}
		printf("# 40 rounds, %d killed mid-run\n", killed);
		TEST_ASSERT(all_ok);
		TEST_ASSERT(killed > 10);
	}
	test_end();

	test_begin("kill point inside expunge + compaction");
	{
		bool all_ok = true, cdied;
		int ndied = 0;

		for (long kp = 1; kp <= 24; kp++) {
			if (!compaction_crash(kp, &cdied))
				all_ok = false;
			ndied += cdied;
		}
		printf("# 24 runs, %d stopped at a kill point\n", ndied);
		TEST_ASSERT(all_ok);
	}
	test_end();

	test_begin("kill point inside a new user's first deliveries");
	{
		bool all_ok = true, fdied;
		int ndied = 0;

		for (long kp = 1; kp <= 30; kp++) {
			if (!first_delivery_crash(kp, &fdied))
				all_ok = false;
			ndied += fdied;
		}
		printf("# 30 runs, %d stopped at a kill point\n", ndied);
		TEST_ASSERT(all_ok);
		TEST_ASSERT(ndied >= 15);
	}
	test_end();
	return test_done();
}
