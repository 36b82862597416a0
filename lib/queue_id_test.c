/* SPDX-License-Identifier: MIT */
/* queue_id_test - unit tests for queue_id.c */
#include <sys/time.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "queue_id.h"
#include "test.h"

#define QUEUE_ID_TEST_COUNT 100000

/* id_cmp - qsort comparison of fixed-size ID slots */
static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QUEUE_ID_LEN);
}

static void
test_unique_sorted(void)
{
	char *ids = xcalloc(QUEUE_ID_TEST_COUNT, QUEUE_ID_SIZE);
	char *p;
	size_t i;
	bool ok = true, sorted = true;

	test_begin("queue_id 100k unique, well-formed, in creation order");
	for (i = 0; i < QUEUE_ID_TEST_COUNT; i++) {
		p = ids + i * QUEUE_ID_SIZE;
		queue_id_new(p);
		if (strlen(p) != QUEUE_ID_LEN || !queue_id_ok(p, QUEUE_ID_LEN))
			ok = false;
		if (i > 0 && memcmp(p - QUEUE_ID_SIZE, p, QUEUE_ID_LEN) >= 0)
			sorted = false;
	}
	TEST_ASSERT(ok);
	/* Strictly increasing implies unique; check that too, by sorting. */
	TEST_ASSERT(sorted);
	qsort(ids, QUEUE_ID_TEST_COUNT, QUEUE_ID_SIZE, id_cmp);
	for (i = 1; i < QUEUE_ID_TEST_COUNT; i++)
		if (memcmp(ids + (i - 1) * QUEUE_ID_SIZE, ids + i * QUEUE_ID_SIZE,
		    QUEUE_ID_LEN) == 0)
			ok = false;
	TEST_ASSERT(ok);
	free(ids);
	test_end();
}

/* gen_to_fd - write n IDs to fd (used by parent and child alike) */
static void
gen_to_fd(int fd, size_t n)
{
	char id[QUEUE_ID_SIZE];
	FILE *fp = fdopen(fd, "w");
	size_t i;

	for (i = 0; i < n; i++) {
		queue_id_new(id);
		fprintf(fp, "%s\n", id);
	}
	fclose(fp);
}

static void
test_fork(void)
{
	const size_t per = QUEUE_ID_TEST_COUNT / 4;
	char path[4096], id[QUEUE_ID_SIZE], line[64];
	char *ids = xcalloc(per * 4, QUEUE_ID_SIZE);
	pid_t pids[3];
	size_t i, n = 0;
	int k, fd, status;
	FILE *fp;
	bool ok = true;

	test_begin("queue_id no collisions across fork");
	/* Prime the per-process state so children inherit a busy counter. */
	queue_id_new(id);
	for (k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "%s/ids.%d", test_tmpdir(), k);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		TEST_ASSERT(fd >= 0);
		if (k == 3) {
			gen_to_fd(fd, per);
			break;
		}
		if ((pids[k] = fork()) == 0) {
			gen_to_fd(fd, per);
			_exit(0);
		}
		close(fd);
	}
	for (k = 0; k < 3; k++) {
		TEST_ASSERT(waitpid(pids[k], &status, 0) == pids[k]);
		TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "%s/ids.%d", test_tmpdir(), k);
		fp = fopen(path, "r");
		TEST_ASSERT(fp != NULL);
		if (fp == NULL)
			break;
		while (n < per * 4 && fgets(line, sizeof(line), fp) != NULL) {
			if (strlen(line) != QUEUE_ID_LEN + 1 ||
			    !queue_id_ok(line, QUEUE_ID_LEN))
				ok = false;
			memcpy(ids + n * QUEUE_ID_SIZE, line, QUEUE_ID_LEN);
			n++;
		}
		fclose(fp);
	}
	TEST_ASSERT(n == per * 4);
	qsort(ids, n, QUEUE_ID_SIZE, id_cmp);
	for (i = 1; i < n; i++)
		if (memcmp(ids + (i - 1) * QUEUE_ID_SIZE, ids + i * QUEUE_ID_SIZE,
		    QUEUE_ID_LEN) == 0)
			ok = false;
	TEST_ASSERT(ok);
	free(ids);
	test_end();
}

static void
test_ok(void)
{
	static const char *const good[] = {
		"000000000000000000", "VVVVVVVVVVVVVVVVVV", "0123456789ABCDEFGH",
	};
	static const char *const bad[] = {
		"", "00000000000000000", "0000000000000000000",
		"00000000000000000a", "00000000000000000W", "00000000000000000Z",
		"0000000000000000/.", "00000000000000000 ", "../../etc/passwd00",
	};
	size_t i;

	test_begin("queue_id_ok allow-list");
	for (i = 0; i < N_ELEMENTS(good); i++)
		TEST_ASSERT(queue_id_ok(good[i], strlen(good[i])));
	for (i = 0; i < N_ELEMENTS(bad); i++)
		TEST_ASSERT(!queue_id_ok(bad[i], strlen(bad[i])));
	TEST_ASSERT(!queue_id_ok(NULL, 0));
	TEST_ASSERT(!queue_id_ok("00000000\0" "000000000", QUEUE_ID_LEN));
	/* Length is what is passed, not strlen. */
	TEST_ASSERT(queue_id_ok("000000000000000000XYZ", QUEUE_ID_LEN));
	test_end();
}

static void
test_time(void)
{
	struct timeval before, after, tv;
	char id[QUEUE_ID_SIZE];
	long long b, a, t;

	test_begin("queue_id_time round trip");
	gettimeofday(&before, NULL);
	queue_id_new(id);
	gettimeofday(&after, NULL);
	TEST_ASSERT(queue_id_time(id, &tv));
	b = before.tv_sec * 1000000LL + before.tv_usec;
	a = after.tv_sec * 1000000LL + after.tv_usec;
	t = tv.tv_sec * 1000000LL + tv.tv_usec;
	/* The counter may have pushed the time a little ahead. */
	TEST_ASSERT(t >= b && t <= a + 1000);
	TEST_ASSERT(queue_id_time("000000000000000000", &tv));
	TEST_ASSERT(tv.tv_sec == 0 && tv.tv_usec == 0);
	TEST_ASSERT(queue_id_time("00000000V000000000", &tv));
	TEST_ASSERT(tv.tv_sec == 0 && tv.tv_usec == 31 * 32 * 32);
	TEST_ASSERT(!queue_id_time("00000000000000000", &tv));
	TEST_ASSERT(!queue_id_time("0000000000000000000", &tv));
	TEST_ASSERT(!queue_id_time("00000000000000000w", &tv));
	test_end();
}

int
main(void)
{
	test_ok();
	test_time();
	test_unique_sorted();
	test_fork();
	return test_done();
}
