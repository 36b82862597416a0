/* SPDX-License-Identifier: MIT */
/* queue_file_test - unit tests for queue_file.c */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "queue_file.h"
#include "safe_file.h"
#include "str.h"
#include "test.h"

static char qdir[512];

/* rnd - a small deterministic PRNG (xorshift) so failures reproduce */
static uint64_t rnd_state = 88172645463325252ull;

static uint64_t
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* make_content - 8-bit data, NULs, a very long line, CRLFs */
static struct str *
make_content(size_t size)
{
	struct str *c = str_new(size, 0);
	size_t i;

	str_append_cstr(c, "From: a@b\r\nSubject: test\r\n\r\n");
	str_append(c, "nul\0here\r\n", 10);
	for (i = 0; i < 100000; i++)		/* one 100 KB line */
		str_append_c(c, (char)('a' + i % 26));
	str_append_cstr(c, "\r\n");
	while (str_len(c) < size) {
		unsigned char b = (unsigned char)rnd();

		str_append_c(c, (char)b);
	}
	str_append_cstr(c, "\r\n.\r\n");
	return c;
}

static const struct queue_attr attrs[] = {
	{ "log_ident", "ABC" }, { "rewrite.context", "remote" },
	{ "empty", "" }, { "x-eq", "a=b=c" },
};

static void
fill_env(struct queue_envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->arrival.tv_sec = 1700000000;
	env->arrival.tv_usec = 123456;
	env->sender = "\"john doe\"@example.com";
	env->envid = "QQ314159";
	env->ret = SMTP_RET_HDRS;
	env->body = SMTP_BODY_BINARYMIME;
	env->smtputf8 = true;
	env->client_name = "mail.example.net";
	env->client_addr = "192.0.2.7";
	env->helo = "mail.example.net";
	env->protocol = "ESMTPSA";
	env->auth_user = "john";
	env->attrs = attrs;
	env->nattrs = N_ELEMENTS(attrs);
}

static const struct queue_rcpt rcpts[] = {
	{ "alice@example.org", "rfc822", "Alice@Example.org", SMTP_NOTIFY_SUCCESS |
	    SMTP_NOTIFY_FAILURE, "alias@example.org", 0, 0, 0, 0, 0, NULL },
	{ "bob@[192.0.2.1]", NULL, NULL, SMTP_NOTIFY_NEVER, NULL, 0, 0, 0, 0, 0, NULL },
	{ "j\xc3\xb6rg@b\xc3\xbc\x63her.de", NULL, NULL, 0, NULL, 0, 0, 0, 0, 0, NULL },
	{ "Postmaster", NULL, NULL, 0, NULL, 0, 0, 0, 0, 0, NULL },
};

/*
 * write_message - a full message: envelope, rcpts 0..2 before the content,
 * rcpt 3 after it, content in random-sized chunks. Returns 0/-1.
 */
static int
write_message(const struct str *content, enum queue_name target,
    char id[QUEUE_ID_SIZE])
{
	struct queue_file_writer *w;
	struct queue_envelope env;
	const char *error;
	size_t off = 0, i;

	fill_env(&env);
	if ((w = queue_file_create(qdir, id, &error)) == NULL)
		return -1;
	if (queue_file_write_envelope(w, &env, &error) < 0)
		goto fail;
	for (i = 0; i < 3; i++)
		if (queue_file_add_rcpt(w, &rcpts[i], &error) < 0)
			goto fail;
	while (off < str_len(content)) {
		size_t n = 1 + rnd() % 70000;

		if (n > str_len(content) - off)
			n = str_len(content) - off;
		if (queue_file_write_content(w, str_c(content) + off, n,
		    &error) < 0)
			goto fail;
		off += n;
	}
	if (queue_file_content_size(w) != str_len(content))
		goto fail;
	if (queue_file_add_rcpt(w, &rcpts[3], &error) < 0)
		goto fail;
	return queue_file_commit(&w, target, &error);
fail:
	queue_file_abort(&w);
	return -1;
}

static bool
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* check_content - read it back in odd-sized pieces and compare */
static bool
check_content(const struct queue_file *qf, const struct str *content)
{
	unsigned char buf[7777];
	uint64_t off = 0;

	if (queue_file_content_length(qf) != str_len(content))
		return false;
	for (;;) {
		ssize_t n = queue_file_read_content(qf, buf, sizeof(buf), off);

		if (n < 0)
			return false;
		if (n == 0)
			break;
		if (memcmp(buf, str_c(content) + off, (size_t)n) != 0)
			return false;
		off += (uint64_t)n;
	}
	return off == str_len(content);
}

static void
test_round_trip(void)
{
	struct str *content = make_content(300000);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const struct queue_envelope *env;
	const char *error;
	enum queue_name q;
	size_t i;

	test_begin("write + read round trip, byte-exact content");
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	TEST_ASSERT(queue_id_ok(id, strlen(id)));
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 && q == QUEUE_ACTIVE);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_VERIFY, &error);
	TEST_ASSERT(qf != NULL);
	if (qf == NULL) {
		printf("# open: %s: %m\n", error);
		test_end();
		return;
	}
	TEST_ASSERT_STR(queue_file_id(qf), id);
	TEST_ASSERT(queue_file_queue(qf) == QUEUE_ACTIVE);
	env = queue_file_envelope(qf);
	TEST_ASSERT(env->arrival.tv_sec == 1700000000 &&
	    env->arrival.tv_usec == 123456);
	TEST_ASSERT_STR(env->sender, "\"john doe\"@example.com");
	TEST_ASSERT_STR(env->envid, "QQ314159");
	TEST_ASSERT(env->ret == SMTP_RET_HDRS && env->body == SMTP_BODY_BINARYMIME);
	TEST_ASSERT(env->smtputf8);
	TEST_ASSERT_STR(env->client_name, "mail.example.net");
	TEST_ASSERT_STR(env->client_addr, "192.0.2.7");
	TEST_ASSERT_STR(env->helo, "mail.example.net");
	TEST_ASSERT_STR(env->protocol, "ESMTPSA");
	TEST_ASSERT_STR(env->auth_user, "john");
	TEST_ASSERT(env->nattrs == N_ELEMENTS(attrs));
	for (i = 0; i < env->nattrs && i < N_ELEMENTS(attrs); i++) {
		TEST_ASSERT_STR(env->attrs[i].name, attrs[i].name);
		TEST_ASSERT_STR(env->attrs[i].value, attrs[i].value);
	}
	TEST_ASSERT(queue_file_rcpt_count(qf) == 4);
	for (i = 0; i < 4 && i < queue_file_rcpt_count(qf); i++) {
		const struct queue_rcpt *r = queue_file_rcpt(qf, i);

		TEST_ASSERT_STR(r->address, rcpts[i].address);
		TEST_ASSERT(streq(r->orcpt_type, rcpts[i].orcpt_type));
		TEST_ASSERT(streq(r->orcpt, rcpts[i].orcpt));
		TEST_ASSERT(r->notify == rcpts[i].notify);
		TEST_ASSERT(streq(r->original, rcpts[i].original));
		TEST_ASSERT(r->state == QUEUE_RCPT_PENDING && r->attempts == 0 &&
		    r->flags == 0 && r->next_attempt == 0 && r->updated == 0);
		TEST_ASSERT_STR(r->reason, "");
	}
	TEST_ASSERT(check_content(qf, content));
	TEST_ASSERT(queue_file_verify(qf, &error) == 0);
	/* the fd gives the same octets at content_offset */
	{
		char b[64];

		TEST_ASSERT(pread(queue_file_fd(qf), b, 27,
		    (off_t)queue_file_content_offset(qf)) == 27 &&
		    memcmp(b, "From: a@b\r\nSubject: test\r\n", 26) == 0);
	}
	queue_file_close(&qf);
	queue_file_close(&qf);
	TEST_ASSERT(qf == NULL);
	str_free(&content);
	test_end();
}

static void
test_minimal_and_pieces(void)
{
	struct queue_file_writer *w;
	struct queue_envelope env;
	struct queue_rcpt r = { .address = "a@b" };
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error, *msg = "Subject: x\r\n\r\nbody\r\n";
	size_t i;

	test_begin("minimal envelope, empty content, content byte by byte, hold");
	memset(&env, 0, sizeof(env));
	env.sender = "";
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(w != NULL && strcmp(queue_file_writer_id(w), id) == 0);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == 0);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == 0 && w == NULL);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_VERIFY, &error);
	TEST_ASSERT(qf != NULL);
	if (qf != NULL) {
		const struct queue_envelope *e = queue_file_envelope(qf);

		TEST_ASSERT_STR(e->sender, "");
		TEST_ASSERT(e->envid == NULL && e->client_name == NULL &&
		    e->helo == NULL && e->nattrs == 0 && !e->smtputf8 &&
		    e->ret == SMTP_RET_NONE && e->body == SMTP_BODY_NONE);
		TEST_ASSERT(queue_file_content_length(qf) == 0);
		TEST_ASSERT(queue_file_rcpt(qf, 0)->orcpt == NULL);
		queue_file_close(&qf);
	}

	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	for (i = 0; msg[i] != '\0'; i++)
		TEST_ASSERT(queue_file_write_content(w, msg + i, 1, &error) == 0);
	/* recipients only after the content */
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == 0);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_HOLD, &error) == 0);
	qf = queue_file_open(qdir, QUEUE_HOLD, id, QUEUE_FILE_VERIFY, &error);
	TEST_ASSERT(qf != NULL);
	if (qf != NULL) {
		struct str *c = str_new_cstr(msg);

		TEST_ASSERT(check_content(qf, c));
		TEST_ASSERT(queue_file_rcpt_count(qf) == 1);
		str_free(&c);
		queue_file_close(&qf);
	}
	test_end();
}

static void
test_writer_errors(void)
{
	struct queue_file_writer *w;
	struct queue_envelope env;
	struct queue_rcpt r = { .address = "a@b" };
	struct queue_attr bad_attr = { "bad name", "x" };
	char id[QUEUE_ID_SIZE];
	struct str *path = str_new(0, 0), *big = str_new(0, 0);
	const char *error;
	struct stat st;
	int i;

	test_begin("writer error paths");
	memset(&env, 0, sizeof(env));
	env.sender = "a@b";

	/* abort removes the file */
	w = queue_file_create(qdir, id, &error);
	queue_file_path(qdir, QUEUE_INCOMING, id, path);
	TEST_ASSERT(stat(str_c(path), &st) == 0 && (st.st_mode & 0777) == 0600);
	queue_file_abort(&w);
	TEST_ASSERT(w == NULL && stat(str_c(path), &st) < 0 && errno == ENOENT);
	queue_file_abort(&w);

	/* commit without recipients fails and removes the file */
	w = queue_file_create(qdir, id, &error);
	queue_file_path(qdir, QUEUE_INCOMING, id, path);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == -1 &&
	    errno == EINVAL && w == NULL);
	TEST_ASSERT(stat(str_c(path), &st) < 0);

	/* commit without envelope; bad target */
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == -1);
	w = queue_file_create(qdir, id, &error);
	queue_file_write_envelope(w, &env, &error);
	queue_file_add_rcpt(w, &r, &error);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_DEFERRED, &error) == -1);

	/* out of order: rcpt/content before envelope, envelope twice,
	 * content after tail recipients; each failure is sticky */
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == -1);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_content(w, "x", 1, &error) == -1);
	queue_file_abort(&w);
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == -1);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == -1);
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	TEST_ASSERT(queue_file_write_content(w, "x", 1, &error) == 0);
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == 0);
	TEST_ASSERT(queue_file_write_content(w, "y", 1, &error) == -1);
	queue_file_abort(&w);

	/* bad envelope fields */
	w = queue_file_create(qdir, id, &error);
	env.sender = NULL;
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1 &&
	    errno == EINVAL);
	queue_file_abort(&w);
	w = queue_file_create(qdir, id, &error);
	env.sender = "not an address";
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	env.sender = "a@b";
	w = queue_file_create(qdir, id, &error);
	env.attrs = &bad_attr;
	env.nattrs = 1;
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	env.nattrs = 0;
	w = queue_file_create(qdir, id, &error);
	for (i = 0; i <= QUEUE_FILE_TEXT_MAX; i++)
		str_append_c(big, 'h');
	env.helo = str_c(big);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	env.helo = NULL;
	w = queue_file_create(qdir, id, &error);
	env.ret = (enum smtp_ret)7;
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	env.ret = SMTP_RET_NONE;
	w = queue_file_create(qdir, id, &error);
	env.arrival.tv_usec = 1000000;
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == -1);
	queue_file_abort(&w);
	env.arrival.tv_usec = 0;

	/* bad recipients are refused without spoiling the file */
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	{
		struct queue_rcpt bad = { .address = "<a@b>" };
		struct queue_rcpt bad2 = { .address = "" };
		struct queue_rcpt bad3 = { .address = "a@b", .orcpt = "x" };
		struct queue_rcpt bad4 = { .address = "a@b", .orcpt = "x",
		    .orcpt_type = "rfc;822" };
		struct queue_rcpt bad5 = { .address = "a@b", .notify = 0x10 };
		struct queue_rcpt bad6 = { .address = NULL };

		TEST_ASSERT(queue_file_add_rcpt(w, &bad, &error) == -1);
		TEST_ASSERT(queue_file_add_rcpt(w, &bad2, &error) == -1);
		TEST_ASSERT(queue_file_add_rcpt(w, &bad3, &error) == -1);
		TEST_ASSERT(queue_file_add_rcpt(w, &bad4, &error) == -1);
		TEST_ASSERT(queue_file_add_rcpt(w, &bad5, &error) == -1);
		TEST_ASSERT(queue_file_add_rcpt(w, &bad6, &error) == -1);
	}
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == 0);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == 0);
	{
		struct queue_file *qf = queue_file_open(qdir, QUEUE_ACTIVE, id,
		    0, &error);

		TEST_ASSERT(qf != NULL && queue_file_rcpt_count(qf) == 1);
		queue_file_close(&qf);
	}

	/* the recipient limit */
	w = queue_file_create(qdir, id, &error);
	TEST_ASSERT(queue_file_write_envelope(w, &env, &error) == 0);
	for (i = 0; i < QUEUE_FILE_RCPT_MAX; i++)
		if (queue_file_add_rcpt(w, &r, &error) < 0)
			break;
	TEST_ASSERT(i == QUEUE_FILE_RCPT_MAX);
	TEST_ASSERT(queue_file_add_rcpt(w, &r, &error) == -1 && errno == E2BIG);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == 0);
	{
		struct queue_file *qf = queue_file_open(qdir, QUEUE_ACTIVE, id,
		    0, &error);

		TEST_ASSERT(qf != NULL &&
		    queue_file_rcpt_count(qf) == QUEUE_FILE_RCPT_MAX);
		queue_file_close(&qf);
	}
	str_free(&path);
	str_free(&big);
	test_end();
}

/* put_file - write data to path without fsync (test copies need no durability) */
static void
put_file(const char *path, const char *data, size_t len)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ASSERT(fd >= 0);
	ASSERT(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* copy_truncated - copy at most len octets of a queue file to another queue */
static void
copy_truncated(enum queue_name from, enum queue_name to, const char *id,
    off_t len)
{
	struct str *a = str_new(0, 0), *b = str_new(0, 0), *data = str_new(0, 0);

	queue_file_path(qdir, from, id, a);
	queue_file_path(qdir, to, id, b);
	ASSERT(read_file(str_c(a), data, 0) == 0);
	if ((size_t)len < str_len(data))
		str_truncate(data, (size_t)len);
	put_file(str_c(b), str_c(data), str_len(data));
	str_free(&a);
	str_free(&b);
	str_free(&data);
}

static off_t
file_size(enum queue_name q, const char *id)
{
	struct str *p = str_new(0, 0);
	struct stat st;

	queue_file_path(qdir, q, id, p);
	ASSERT(stat(str_c(p), &st) == 0);
	str_free(&p);
	return st.st_size;
}

static void
test_updates(void)
{
	struct str *content = make_content(1000);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf, *qf2;
	const char *error;
	struct queue_rcpt_update u[3];
	off_t before;
	int fd;

	test_begin("recipient state updates are durable and sticky");
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	memset(u, 0, sizeof(u));
	u[0].index = 0;
	u[0].state = QUEUE_RCPT_DELIVERED;
	TEST_ASSERT(queue_file_update(qf, u, 1, &error) == -1 && errno == EBADF);
	TEST_ASSERT(queue_file_move(qf, QUEUE_DEFERRED, &error) == -1);
	TEST_ASSERT(queue_file_remove(qf, &error) == -1);
	queue_file_close(&qf);

	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf != NULL);
	/* the lock */
	qf2 = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf2 == NULL && errno == EWOULDBLOCK);
	qf2 = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	TEST_ASSERT(qf2 != NULL);
	queue_file_close(&qf2);

	u[0].attempted = true;
	u[0].reason = "250 2.0.0 Ok: queued as 12345";
	u[1].index = 1;
	u[1].state = QUEUE_RCPT_DEFERRED;
	u[1].attempted = true;
	u[1].next_attempt = 1700003600;
	u[1].reason = "451 4.3.0 try later";
	u[2].index = 1;
	u[2].state = QUEUE_RCPT_DEFERRED;
	u[2].attempted = true;
	u[2].next_attempt = 1700007200;
	u[2].reason = "451 4.3.0 still later";
	TEST_ASSERT(queue_file_update(qf, u, 3, &error) == 0);
	TEST_ASSERT(queue_file_update(qf, u, 0, &error) == 0);
	TEST_ASSERT(queue_file_rcpt(qf, 0)->state == QUEUE_RCPT_DELIVERED);
	TEST_ASSERT(queue_file_rcpt(qf, 1)->attempts == 2);
	TEST_ASSERT_STR(queue_file_rcpt(qf, 1)->reason, "451 4.3.0 still later");
	TEST_ASSERT(queue_file_rcpt(qf, 0)->updated != 0);

	/* final states are sticky; flags may still be added */
	u[0].state = QUEUE_RCPT_PENDING;
	TEST_ASSERT(queue_file_update(qf, u, 1, &error) == -1 && errno == EINVAL);
	u[0].state = QUEUE_RCPT_BOUNCED;
	TEST_ASSERT(queue_file_update(qf, u, 1, &error) == -1);
	/* a batch that ends badly applies nothing */
	u[0].state = QUEUE_RCPT_DELIVERED;
	u[0].flags = QUEUE_RCPT_F_DSN_SENT;
	u[0].attempted = false;
	u[0].reason = NULL;
	u[1].index = 99;
	TEST_ASSERT(queue_file_update(qf, u, 2, &error) == -1);
	TEST_ASSERT(queue_file_rcpt(qf, 0)->flags == 0);
	u[1].index = 1;
	u[1].state = (enum queue_rcpt_state)9;
	TEST_ASSERT(queue_file_update(qf, u, 2, &error) == -1);
	u[1].state = QUEUE_RCPT_DEFERRED;
	u[1].flags = 0x80;
	TEST_ASSERT(queue_file_update(qf, u, 2, &error) == -1);
	u[1].flags = 0;
	u[1].next_attempt = -1;
	TEST_ASSERT(queue_file_update(qf, u, 2, &error) == -1);
	/* the flag alone */
	TEST_ASSERT(queue_file_update(qf, u, 1, &error) == 0);
	TEST_ASSERT(queue_file_rcpt(qf, 0)->flags == QUEUE_RCPT_F_DSN_SENT);
	TEST_ASSERT_STR(queue_file_rcpt(qf, 0)->reason, "");
	queue_file_close(&qf);

	/* all of it survives a reopen */
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_VERIFY, &error);
	TEST_ASSERT(qf != NULL);
	if (qf != NULL) {
		const struct queue_rcpt *r0 = queue_file_rcpt(qf, 0);
		const struct queue_rcpt *r1 = queue_file_rcpt(qf, 1);

		TEST_ASSERT(r0->state == QUEUE_RCPT_DELIVERED &&
		    r0->flags == QUEUE_RCPT_F_DSN_SENT && r0->attempts == 1);
		TEST_ASSERT(r1->state == QUEUE_RCPT_DEFERRED && r1->attempts == 2 &&
		    r1->next_attempt == 1700007200);
		TEST_ASSERT_STR(r1->reason, "451 4.3.0 still later");
		TEST_ASSERT(queue_file_rcpt(qf, 2)->state == QUEUE_RCPT_PENDING);
		TEST_ASSERT(check_content(qf, content));
		queue_file_close(&qf);
	}

	/* a torn append (crash mid-write) is ignored, then cut off */
	before = file_size(QUEUE_ACTIVE, id);
	{
		struct str *p = str_new(0, 0);

		queue_file_path(qdir, QUEUE_ACTIVE, id, p);
		fd = open(str_c(p), O_WRONLY | O_APPEND);
		TEST_ASSERT(write(fd, "L\0\0\0\x40\0\0\0\x02\x02", 10) == 10);
		close(fd);
		str_free(&p);
	}
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf != NULL);
	TEST_ASSERT(queue_file_rcpt(qf, 2)->state == QUEUE_RCPT_PENDING);
	memset(u, 0, sizeof(u));
	u[0].index = 2;
	u[0].state = QUEUE_RCPT_BOUNCED;
	u[0].reason = "550 5.1.1 no such user";
	TEST_ASSERT(queue_file_update(qf, u, 1, &error) == 0);
	queue_file_close(&qf);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	TEST_ASSERT(qf != NULL && queue_file_rcpt(qf, 2)->state ==
	    QUEUE_RCPT_BOUNCED);
	TEST_ASSERT(file_size(QUEUE_ACTIVE, id) == before + 5 + 30 + 22);
	queue_file_close(&qf);

	/* a record with a bad CRC ends the log: the state before it stands */
	{
		struct str *p = str_new(0, 0), *data = str_new(0, 0);

		queue_file_path(qdir, QUEUE_ACTIVE, id, p);
		read_file(str_c(p), data, 0);
		str_data(data)[str_len(data) - 1] ^= 1;
		put_file(str_c(p), str_c(data), str_len(data));
		qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
		TEST_ASSERT(qf != NULL && queue_file_rcpt(qf, 2)->state ==
		    QUEUE_RCPT_PENDING);
		queue_file_close(&qf);
		str_free(&p);
		str_free(&data);
	}

	/* reasons are cut at QUEUE_FILE_REASON_MAX */
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	{
		struct str *big = str_new(0, 0);

		while (str_len(big) < QUEUE_FILE_REASON_MAX + 100)
			str_append_c(big, 'r');
		u[0].reason = str_c(big);
		TEST_ASSERT(queue_file_update(qf, u, 1, &error) == 0);
		TEST_ASSERT(strlen(queue_file_rcpt(qf, 2)->reason) ==
		    QUEUE_FILE_REASON_MAX);
		queue_file_close(&qf);
		qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
		TEST_ASSERT(qf != NULL && strlen(queue_file_rcpt(qf, 2)->reason) ==
		    QUEUE_FILE_REASON_MAX);
		queue_file_close(&qf);
		str_free(&big);
	}
	str_free(&content);
	test_end();
}

static void
test_truncation(void)
{
	struct str *content = make_content(200);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	struct queue_rcpt_update u;
	off_t committed, total, len;
	int bad = 0, bad_log = 0;

	test_begin("truncation at every length is detected");
	/* shorter content for an exhaustive sweep */
	str_truncate(content, 60);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	committed = file_size(QUEUE_ACTIVE, id);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	memset(&u, 0, sizeof(u));
	u.index = 0;
	u.state = QUEUE_RCPT_DEFERRED;
	u.reason = "first";
	queue_file_update(qf, &u, 1, &error);
	u.state = QUEUE_RCPT_DELIVERED;
	u.reason = "second";
	queue_file_update(qf, &u, 1, &error);
	queue_file_close(&qf);
	total = file_size(QUEUE_ACTIVE, id);
	for (len = 0; len < committed; len++) {
		copy_truncated(QUEUE_ACTIVE, QUEUE_DEFERRED, id, len);
		errno = 0;
		qf = queue_file_open(qdir, QUEUE_DEFERRED, id, 0, &error);
		if (qf != NULL || errno != EBADMSG ||
		    queue_file_complete(qdir, QUEUE_DEFERRED, id, &error) != 0) {
			if (bad++ < 5)
				printf("# truncated at %lld of %lld not detected\n",
				    (long long)len, (long long)committed);
			queue_file_close(&qf);
		}
	}
	TEST_ASSERT(bad == 0);
	/* inside the status log: the file is fine, the state is a durable one */
	for (len = committed; len <= total; len++) {
		enum queue_rcpt_state s;

		copy_truncated(QUEUE_ACTIVE, QUEUE_DEFERRED, id, len);
		qf = queue_file_open(qdir, QUEUE_DEFERRED, id, QUEUE_FILE_VERIFY,
		    &error);
		if (qf == NULL) {
			bad_log++;
			continue;
		}
		s = queue_file_rcpt(qf, 0)->state;
		if (len == total ? s != QUEUE_RCPT_DELIVERED :
		    len == committed ? s != QUEUE_RCPT_PENDING :
		    (s != QUEUE_RCPT_PENDING && s != QUEUE_RCPT_DEFERRED))
			bad_log++;
		queue_file_close(&qf);
	}
	TEST_ASSERT(bad_log == 0);
	str_free(&content);
	test_end();
}

static void
test_corruption(void)
{
	struct str *content = make_content(200), *p = str_new(0, 0),
	    *orig = str_new(0, 0), *data = str_new(0, 0);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	size_t i, envelope_bad = 0, content_bad = 0;
	uint64_t coff, clen;

	test_begin("a flipped bit anywhere before the log is detected");
	str_truncate(content, 50);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	coff = queue_file_content_offset(qf);
	clen = queue_file_content_length(qf);
	queue_file_close(&qf);
	queue_file_path(qdir, QUEUE_ACTIVE, id, p);
	read_file(str_c(p), orig, 0);
	queue_file_path(qdir, QUEUE_CORRUPT, id, p);
	for (i = 0; i < str_len(orig); i++) {
		/* the content and its CRC (the last 4 octets) need VERIFY */
		bool in_content = (i >= coff && i < coff + clen) ||
		    i >= str_len(orig) - 4;

		str_clear(data);
		str_append_str(data, orig);
		str_data(data)[i] ^= 0x20;
		put_file(str_c(p), str_c(data), str_len(data));
		/* without VERIFY only the envelope is checked */
		qf = queue_file_open(qdir, QUEUE_CORRUPT, id, 0, &error);
		if (in_content ? qf == NULL : (qf != NULL || errno != EBADMSG))
			envelope_bad++;
		queue_file_close(&qf);
		qf = queue_file_open(qdir, QUEUE_CORRUPT, id, QUEUE_FILE_VERIFY,
		    &error);
		if (qf != NULL || errno != EBADMSG) {
			if (content_bad++ < 5)
				printf("# flip at %zu not detected\n", i);
		}
		queue_file_close(&qf);
	}
	TEST_ASSERT(envelope_bad == 0);
	TEST_ASSERT(content_bad == 0);
	unlink(str_c(p));
	str_free(&content);
	str_free(&p);
	str_free(&orig);
	str_free(&data);
	test_end();
}

static void
test_reader_errors(void)
{
	struct queue_file *qf;
	const char *error;
	struct str *p = str_new(0, 0);
	static const char *const ids[] = { "", "../etc/passwd", "abc",
	    "0123456789ABCDEFG", "0123456789ABCDEFGHI", "0123456789abcdefgh",
	    "0123456789ABCDEFW/" };
	size_t i;

	test_begin("reader refuses bad IDs, missing and non-queue files");
	for (i = 0; i < N_ELEMENTS(ids); i++) {
		qf = queue_file_open(qdir, QUEUE_ACTIVE, ids[i], 0, &error);
		TEST_ASSERT(qf == NULL && errno == EINVAL);
		TEST_ASSERT(queue_file_path(qdir, QUEUE_ACTIVE, ids[i], p) == -1 &&
		    errno == EINVAL && str_len(p) == 0);
	}
	TEST_ASSERT(queue_file_open(qdir, QUEUE_ACTIVE, NULL, 0, &error) == NULL);
	TEST_ASSERT(queue_file_open(qdir, (enum queue_name)42,
	    "0123456789ABCDEFGH", 0, &error) == NULL && errno == EINVAL);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGH", 0, &error);
	TEST_ASSERT(qf == NULL && errno == ENOENT);
	TEST_ASSERT(queue_file_complete(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGH",
	    &error) == -1 && errno == ENOENT);
	/* not a queue file */
	queue_file_path(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGH", p);
	safe_file_replace(str_c(p), "hello world\n", 12, 0600);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGH", 0, &error);
	TEST_ASSERT(qf == NULL && errno == EBADMSG);
	TEST_ASSERT(queue_file_rename(qdir, QUEUE_ACTIVE, QUEUE_CORRUPT,
	    "0123456789ABCDEFGH", &error) == 0);
	TEST_ASSERT(queue_file_rename(qdir, QUEUE_ACTIVE, QUEUE_CORRUPT,
	    "0123456789ABCDEFGH", &error) == -1);
	TEST_ASSERT(queue_file_rename(qdir, QUEUE_ACTIVE, QUEUE_CORRUPT,
	    "bad", &error) == -1 && errno == EINVAL);
	/* a directory is not a queue file */
	queue_file_path(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGJ", p);
	mkdir(str_c(p), 0700);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, "0123456789ABCDEFGJ", 0, &error);
	TEST_ASSERT(qf == NULL);
	rmdir(str_c(p));
	str_free(&p);
	test_end();
}

/* crash_hook - the child dies at the chosen step */
static int crash_at;

static void
crash_hook(int step)
{
	if (step == crash_at)
		_exit(0);
}

/* check_queue_invariant - every file in active/ and hold/ is complete */
static int
count_cb(const char *id, void *ctx)
{
	size_t *n = ctx;
	const char *error;

	if (queue_file_complete(qdir, QUEUE_ACTIVE, id, &error) != 1) {
		printf("# partial file in active: %s (%s)\n", id, error);
		n[1]++;
	}
	n[0]++;
	return 0;
}

/* clear_queue - remove every file of a queue */
static int
unlink_cb(const char *id, void *ctx)
{
	struct str *p = str_new(0, 0);

	queue_file_path(qdir, *(enum queue_name *)ctx, id, p);
	unlink(str_c(p));
	str_free(&p);
	return 0;
}

static void
clear_queue(enum queue_name q)
{
	queue_scan(qdir, q, unlink_cb, &q);
}

static int
first_cb(const char *id, void *ctx)
{
	memcpy(ctx, id, QUEUE_ID_SIZE);
	return 1;
}

static void
test_crash_steps(void)
{
	struct str *content = make_content(150000);
	int step;

	test_begin("crash at each commit step: absent/incomplete or complete in active");
	for (step = 1; step <= 7; step++) {
		char id[QUEUE_ID_SIZE] = "";
		size_t n_active[2] = { 0, 0 };
		pid_t pid;
		int status, r;
		const char *error;

		clear_queue(QUEUE_ACTIVE);
		clear_queue(QUEUE_INCOMING);
		pid = fork();
		if (pid == 0) {
			crash_at = step;
			queue_file_commit_hook = crash_hook;
			(void)write_message(content, QUEUE_ACTIVE, id);
			_exit(1);
		}
		TEST_ASSERT(waitpid(pid, &status, 0) == pid &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0);
		queue_scan(qdir, QUEUE_ACTIVE, count_cb, n_active);
		TEST_ASSERT(n_active[1] == 0);
		if (queue_scan(qdir, QUEUE_INCOMING, first_cb, id) == 1) {
			/*
			 * Left in incoming: complete once the end record is
			 * written (a process crash keeps the page cache; after
			 * a power loss only the fsync'd step 4 file would be).
			 */
			TEST_ASSERT(step <= 4);
			TEST_ASSERT(n_active[0] == 0);
			r = queue_file_complete(qdir, QUEUE_INCOMING, id, &error);
			TEST_ASSERT(r == (step >= 3 ? 1 : 0));
			/* recovery finishes the commit of a complete file */
			r = queue_file_recover(qdir, id, QUEUE_ACTIVE, &error);
			TEST_ASSERT(r == (step >= 3 ? 1 : 0));
			n_active[0] = 0;
			queue_scan(qdir, QUEUE_ACTIVE, count_cb, n_active);
			TEST_ASSERT(n_active[0] == (step >= 3 ? 1u : 0u) &&
			    n_active[1] == 0);
		} else {
			TEST_ASSERT(step >= 5);
			TEST_ASSERT(n_active[0] == 1);
		}
	}
	clear_queue(QUEUE_ACTIVE);
	clear_queue(QUEUE_INCOMING);
	str_free(&content);
	test_end();
}

static void
test_crash_random(void)
{
	struct str *content = make_content(400000);
	int round, bad = 0;
	size_t total_active = 0;

	test_begin("SIGKILL at seeded random moments never leaves a partial file in active");
	srand(12345);
	for (round = 0; round < 40; round++) {
		size_t n_active[2] = { 0, 0 };
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			char id[QUEUE_ID_SIZE];

			for (;;)
				(void)write_message(content, QUEUE_ACTIVE, id);
		}
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		queue_scan(qdir, QUEUE_ACTIVE, count_cb, n_active);
		bad += (int)n_active[1];
		total_active += n_active[0];
		clear_queue(QUEUE_ACTIVE);
		clear_queue(QUEUE_INCOMING);
	}
	printf("# %zu complete files committed across 40 killed writers\n",
	    total_active);
	TEST_ASSERT(bad == 0);
	str_free(&content);
	test_end();
}

static void
test_recover_live_writer(void)
{
	struct queue_file_writer *w;
	struct queue_envelope env;
	struct queue_rcpt r = { .address = "a@b" };
	char id[QUEUE_ID_SIZE];
	const char *error;

	test_begin("recovery leaves a live writer alone");
	memset(&env, 0, sizeof(env));
	env.sender = "a@b";
	w = queue_file_create(qdir, id, &error);
	queue_file_write_envelope(w, &env, &error);
	queue_file_add_rcpt(w, &r, &error);
	TEST_ASSERT(queue_file_recover(qdir, id, QUEUE_ACTIVE, &error) == -1 &&
	    errno == EWOULDBLOCK);
	TEST_ASSERT(queue_file_recover(qdir, id, QUEUE_DEFERRED, &error) == -1 &&
	    errno == EINVAL);
	TEST_ASSERT(queue_file_recover(qdir, "0123456789ABCDEFGH", QUEUE_ACTIVE,
	    &error) == -1 && errno == ENOENT);
	TEST_ASSERT(queue_file_commit(&w, QUEUE_ACTIVE, &error) == 0);
	clear_queue(QUEUE_ACTIVE);
	test_end();
}

/*
 * A crash on a file system without atomic renames may bring incoming/ID
 * back beside active/ID (same inode): recovery removes the stale name,
 * also while qmgr holds the update lock, and never commits it again.
 */
static void
test_recover_stale_incoming(void)
{
	struct str *content = make_content(100);
	struct str *a = str_new(0, 0), *in = str_new(0, 0);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	enum queue_name q;
	size_t n[2] = { 0, 0 };
	int fd;

	test_begin("recovery removes a stale incoming/ name of a committed file");
	clear_queue(QUEUE_ACTIVE);
	clear_queue(QUEUE_INCOMING);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	(void)queue_file_path(qdir, QUEUE_ACTIVE, id, a);
	(void)queue_file_path(qdir, QUEUE_INCOMING, id, in);
	TEST_ASSERT(link(str_c(a), str_c(in)) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf != NULL);
	TEST_ASSERT(queue_file_recover(qdir, id, QUEUE_ACTIVE, &error) == 1);
	TEST_ASSERT(access(str_c(in), F_OK) < 0 && errno == ENOENT);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 && q == QUEUE_ACTIVE);
	queue_file_close(&qf);
	/* another file under the same ID: both are left alone */
	fd = open(str_c(in), O_WRONLY | O_CREAT | O_EXCL, 0600);
	TEST_ASSERT(fd >= 0);
	(void)close(fd);
	TEST_ASSERT(queue_file_recover(qdir, id, QUEUE_ACTIVE, &error) == -1 &&
	    errno == EEXIST);
	TEST_ASSERT(access(str_c(in), F_OK) == 0 && access(str_c(a), F_OK) == 0);
	(void)unlink(str_c(in));
	/* removal syncs incoming/ too and leaves nothing behind */
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf != NULL && queue_file_remove(qf, &error) == 0);
	queue_file_close(&qf);
	TEST_ASSERT(queue_scan(qdir, QUEUE_ACTIVE, count_cb, n) == 0 &&
	    n[0] == 0);
	TEST_ASSERT(queue_removals_sync(qdir, QUEUE_ACTIVE, &error) == 0);
	TEST_ASSERT(queue_removals_sync("/nonexistent", QUEUE_ACTIVE, &error) == -1);
	str_free(&a);
	str_free(&in);
	str_free(&content);
	test_end();
}

/*
 * A commit into active/ does not wait for its rename (queue_file.h,
 * COMMIT AND REMOVAL): a crash may undo it, leaving the complete file
 * under its durable incoming/ name, possibly after qmgr already appended
 * status records to it. Recovery finishes the commit and the recipient
 * state is kept: a delivered recipient stays delivered.
 */
static void
test_recover_lost_rename(void)
{
	struct str *content = make_content(5000);
	struct str *a = str_new(0, 0), *in = str_new(0, 0);
	struct queue_rcpt_update u;
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	enum queue_name q;

	test_begin("a commit whose rename a crash undid is finished by recovery");
	clear_queue(QUEUE_ACTIVE);
	clear_queue(QUEUE_INCOMING);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(qf != NULL);
	memset(&u, 0, sizeof(u));
	u.index = 2;
	u.state = QUEUE_RCPT_DELIVERED;
	u.attempted = true;
	TEST_ASSERT(queue_file_update(qf, &u, 1, &error) == 0);
	queue_file_close(&qf);
	/* the crash: the name is back in incoming/ only */
	(void)queue_file_path(qdir, QUEUE_ACTIVE, id, a);
	(void)queue_file_path(qdir, QUEUE_INCOMING, id, in);
	TEST_ASSERT(rename(str_c(a), str_c(in)) == 0);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 &&
	    q == QUEUE_INCOMING);
	TEST_ASSERT(queue_file_complete(qdir, QUEUE_INCOMING, id, &error) == 1);
	TEST_ASSERT(queue_file_recover(qdir, id, QUEUE_ACTIVE, &error) == 1);
	TEST_ASSERT(access(str_c(in), F_OK) < 0 && errno == ENOENT);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_VERIFY, &error);
	TEST_ASSERT(qf != NULL && queue_file_rcpt_count(qf) == 4);
	TEST_ASSERT(qf != NULL &&
	    queue_file_rcpt(qf, 2)->state == QUEUE_RCPT_DELIVERED &&
	    queue_file_rcpt(qf, 2)->attempts == 1 &&
	    queue_file_rcpt(qf, 0)->state == QUEUE_RCPT_PENDING);
	TEST_ASSERT(qf != NULL && check_content(qf, content));
	queue_file_close(&qf);
	/* hold/ keeps the synced rename: the file is there, not in incoming/ */
	TEST_ASSERT(write_message(content, QUEUE_HOLD, id) == 0);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 && q == QUEUE_HOLD);
	clear_queue(QUEUE_HOLD);
	clear_queue(QUEUE_ACTIVE);
	str_free(&a);
	str_free(&in);
	str_free(&content);
	test_end();
}

/* status without fdatasync: visible at once, synced by a move, moot on unlink */
static void
test_update_nosync(void)
{
	struct str *content = make_content(100);
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf, *qf2;
	const char *error;
	struct queue_rcpt_update u;
	enum queue_name q;

	test_begin("updates without fdatasync, move syncs, unlink + removals sync");
	clear_queue(QUEUE_ACTIVE);
	clear_queue(QUEUE_DEFERRED);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	memset(&u, 0, sizeof(u));
	u.state = QUEUE_RCPT_DELIVERED;
	TEST_ASSERT(queue_file_update_nosync(qf, &u, 1, &error) == -1 &&
	    errno == EBADF);
	TEST_ASSERT(queue_file_sync(qf, &error) == -1 && errno == EBADF);
	TEST_ASSERT(queue_file_unlink(qf, &error) == -1 && errno == EBADF);
	queue_file_close(&qf);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(queue_file_sync(qf, &error) == 0);	/* nothing to do */
	TEST_ASSERT(queue_file_update_nosync(qf, &u, 0, &error) == 0);
	TEST_ASSERT(queue_file_update_nosync(qf, &u, 1, &error) == 0);
	TEST_ASSERT(queue_file_rcpt(qf, 0)->state == QUEUE_RCPT_DELIVERED);
	/* still sticky */
	u.state = QUEUE_RCPT_DEFERRED;
	TEST_ASSERT(queue_file_update_nosync(qf, &u, 1, &error) == -1 &&
	    errno == EINVAL);
	/* another reader sees it (page cache) */
	qf2 = queue_file_open(qdir, QUEUE_ACTIVE, id, 0, &error);
	TEST_ASSERT(qf2 != NULL &&
	    queue_file_rcpt(qf2, 0)->state == QUEUE_RCPT_DELIVERED);
	queue_file_close(&qf2);
	TEST_ASSERT(queue_file_move(qf, QUEUE_DEFERRED, &error) == 0);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 && q == QUEUE_DEFERRED);
	u.index = 1;
	u.state = QUEUE_RCPT_BOUNCED;
	TEST_ASSERT(queue_file_update_nosync(qf, &u, 1, &error) == 0);
	TEST_ASSERT(queue_file_sync(qf, &error) == 0);
	TEST_ASSERT(queue_file_unlink(qf, &error) == 0);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == -1 && errno == ENOENT);
	TEST_ASSERT(queue_file_unlink(qf, &error) == -1 && errno == ENOENT);
	TEST_ASSERT(queue_removals_sync(qdir, QUEUE_DEFERRED, &error) == 0);
	TEST_ASSERT(check_content(qf, content));
	queue_file_close(&qf);
	str_free(&content);
	test_end();
}

static void
test_move_remove_scan(void)
{
	struct str *content = make_content(100);
	char id[QUEUE_ID_SIZE], got[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	enum queue_name q;
	size_t n[2] = { 0, 0 };

	test_begin("move, remove, scan, locate, names, tokens");
	clear_queue(QUEUE_DEFERRED);
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(queue_file_move(qf, QUEUE_ACTIVE, &error) == 0);
	TEST_ASSERT(queue_file_move(qf, QUEUE_DEFERRED, &error) == 0);
	TEST_ASSERT(queue_file_queue(qf) == QUEUE_DEFERRED);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == 0 && q == QUEUE_DEFERRED);
	/* the handle still works after the move, for updates too */
	{
		struct queue_rcpt_update u = { .index = 3,
		    .state = QUEUE_RCPT_DELIVERED };

		TEST_ASSERT(queue_file_update(qf, &u, 1, &error) == 0);
	}
	TEST_ASSERT(queue_scan(qdir, QUEUE_DEFERRED, first_cb, got) == 1 &&
	    strcmp(got, id) == 0);
	TEST_ASSERT(queue_file_remove(qf, &error) == 0);
	TEST_ASSERT(queue_file_locate(qdir, id, &q) == -1 && errno == ENOENT);
	TEST_ASSERT(queue_file_locate(qdir, "x", &q) == -1 && errno == EINVAL);
	TEST_ASSERT(check_content(qf, content));
	queue_file_close(&qf);
	TEST_ASSERT(queue_scan(qdir, QUEUE_DEFERRED, count_cb, n) == 0 &&
	    n[0] == 0);
	TEST_ASSERT(queue_scan("/nonexistent", QUEUE_ACTIVE, count_cb, n) == -1);

	TEST_ASSERT_STR(queue_name_str(QUEUE_HOLD), "hold");
	TEST_ASSERT_STR(queue_name_str((enum queue_name)99), "?");
	TEST_ASSERT(queue_name_parse("corrupt", &q) && q == QUEUE_CORRUPT);
	TEST_ASSERT(!queue_name_parse("Active", &q));
	TEST_ASSERT_STR(queue_rcpt_state_str(QUEUE_RCPT_BOUNCED), "bounced");
	TEST_ASSERT_STR(queue_rcpt_state_str((enum queue_rcpt_state)9), "?");
	{
		struct str *t = str_new(0, 0);
		char tid[QUEUE_ID_SIZE];
		size_t idx;

		TEST_ASSERT(queue_file_token(id, 17, t) == 0);
		TEST_ASSERT(queue_file_token_parse(str_c(t), str_len(t), tid,
		    &idx) && idx == 17 && strcmp(tid, id) == 0);
		TEST_ASSERT(queue_file_token("bad", 1, t) == -1);
		str_clear(t);
		str_printf(t, "%s/0", id);
		TEST_ASSERT(queue_file_token_parse(str_c(t), str_len(t), tid,
		    &idx) && idx == 0);
		str_clear(t);
		str_printf(t, "%s/01", id);
		TEST_ASSERT(!queue_file_token_parse(str_c(t), str_len(t), tid, &idx));
		str_clear(t);
		str_printf(t, "%s/", id);
		TEST_ASSERT(!queue_file_token_parse(str_c(t), str_len(t), tid, &idx));
		str_clear(t);
		str_printf(t, "%s/100000", id);
		TEST_ASSERT(!queue_file_token_parse(str_c(t), str_len(t), tid, &idx));
		str_clear(t);
		str_printf(t, "%s-1", id);
		TEST_ASSERT(!queue_file_token_parse(str_c(t), str_len(t), tid, &idx));
		TEST_ASSERT(!queue_file_token_parse("abc/1", 5, tid, &idx));
		str_free(&t);
	}
	str_free(&content);
	test_end();
}

static void
test_dump(void)
{
	struct str *content = str_new_cstr("Subject: hi\r\n\r\nb\xc3\xb6\x01\r\n");
	char id[QUEUE_ID_SIZE];
	struct queue_file *qf;
	const char *error;
	char *buf = NULL;
	size_t size = 0;
	FILE *fp;
	struct queue_rcpt_update u = { .index = 1, .state = QUEUE_RCPT_DEFERRED,
	    .attempted = true, .next_attempt = 1700000000,
	    .reason = "451 4.4.1 timeout\nwith newline" };

	test_begin("dump for humans");
	TEST_ASSERT(write_message(content, QUEUE_ACTIVE, id) == 0);
	qf = queue_file_open(qdir, QUEUE_ACTIVE, id, QUEUE_FILE_UPDATE, &error);
	TEST_ASSERT(queue_file_update(qf, &u, 1, &error) == 0);
	fp = open_memstream(&buf, &size);
	TEST_ASSERT(queue_file_dump(qf, fp, QUEUE_FILE_DUMP_CONTENT |
	    QUEUE_FILE_DUMP_LOG) == 0);
	fclose(fp);
	TEST_ASSERT(strstr(buf, id) != NULL);
	TEST_ASSERT(strstr(buf, "sender         \"john doe\"@example.com") != NULL);
	TEST_ASSERT(strstr(buf, "recipient 2   j\\303\\266rg@") != NULL);
	TEST_ASSERT(strstr(buf, "deferred, attempts 1") != NULL);
	TEST_ASSERT(strstr(buf, "timeout\\012with newline") != NULL);
	TEST_ASSERT(strstr(buf, "NEVER") != NULL);
	TEST_ASSERT(strstr(buf, "Subject: hi\n\nb\\303\\266\\001\n") != NULL);
	TEST_ASSERT(strstr(buf, "status log     1 records") != NULL);
	TEST_ASSERT(strstr(buf, "attr rewrite.context remote") != NULL);
	if (getenv("TEST_VERBOSE") != NULL)
		fputs(buf, stdout);
	free(buf);
	queue_file_close(&qf);
	clear_queue(QUEUE_ACTIVE);
	str_free(&content);
	test_end();
}

int
main(void)
{
	snprintf(qdir, sizeof(qdir), "%s/spool", test_tmpdir());
	if (queue_dirs_create(qdir, 0700) < 0) {
		perror("queue_dirs_create");
		return 1;
	}
	test_round_trip();
	test_minimal_and_pieces();
	test_writer_errors();
	test_updates();
	test_truncation();
	test_corruption();
	test_reader_errors();
	test_crash_steps();
	test_crash_random();
	test_recover_live_writer();
	test_recover_stale_incoming();
	test_recover_lost_rename();
	test_update_nosync();
	test_move_remove_scan();
	test_dump();
	return test_done();
}
