/* SPDX-License-Identifier: MIT */
/*
 * cleanup_message_test - where the header ends, and what cleanup does to it
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#include "cleanup.h"

/* cleanup.c is the program's main file, not linked here: stand-ins. */
struct cleanup_settings cleanup_settings;

void
cleanup_fail(struct cleanup_state *st, enum cleanup_status status,
    const char *fmt, ...)
{
	va_list ap;

	if (st->status != CLEANUP_OK)
		return;
	st->status = status;
	str_clear(st->reason);
	va_start(ap, fmt);
	(void)str_vprintf(st->reason, fmt, ap);
	va_end(ap);
}

static const char *const test_mydest[] = { "localhost", "example.com" };

static void
settings_init(void)
{
	memset(&cleanup_settings, 0, sizeof(cleanup_settings));
	cleanup_settings.myhostname = "mx.example.com";
	cleanup_settings.myorigin = "example.com";
	cleanup_settings.mydestination = test_mydest;
	cleanup_settings.nmydestination = N_ELEMENTS(test_mydest);
	cleanup_settings.header_size_limit = 102400;
	cleanup_settings.header_count_limit = 1000;
	cleanup_settings.hopcount_limit = 50;
}

/* end_of - header_end on the whole input, or fed in pieces of size step */
static int
end_of(const char *msg, size_t step, bool at_end, size_t *hdr_r, size_t *body_r)
{
	size_t n = strlen(msg), have, scan = 0;
	int r = 0;

	for (have = step; have < n; have += step) {
		r = cleanup_header_end(msg, have, false, &scan, hdr_r, body_r);
		if (r == 1)
			return r;
	}
	return cleanup_header_end(msg, n, at_end, &scan, hdr_r, body_r);
}

static void
test_header_end(void)
{
	static const struct {
		const char *msg;
		bool at_end;
		int want;
		size_t hdr, body;
	} cases[] = {
		{ "A: 1\r\nB: 2\r\n\r\nbody", false, 1, 12, 14 },
		{ "A: 1\nB: 2\n\nbody", false, 1, 10, 11 },
		{ "A: 1\r\n folded\r\n\r\n", false, 1, 15, 17 },
		{ "\r\nbody\r\n", false, 1, 0, 2 },
		{ "A: 1\r\nnot a field\r\n", false, 1, 6, 6 },
		{ "A: 1\r\n: empty name\r\n", false, 1, 6, 6 },
		{ " starts folded\r\n", false, 1, 0, 0 },
		{ "Name  : spaced\r\n\r\n", false, 1, 16, 18 },
		{ "A: 1\r\nB: 2", false, 0, 0, 0 },		/* needs more */
		{ "A: 1\r\nB: 2", true, 1, 10, 10 },		/* at the end */
		{ "A: 1\r\n\r", false, 0, 0, 0 },		/* CR of an empty line */
		{ "", true, 1, 0, 0 },
	};
	size_t i, step, hdr, body;
	int r;

	test_begin("header end: empty line, non-field line, pieces");
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		for (step = 1; step <= 7; step++) {
			hdr = body = 0;
			r = end_of(cases[i].msg, step, cases[i].at_end, &hdr, &body);
			if (!TEST_ASSERT(r == cases[i].want) || r != 1)
				continue;
			if (!TEST_ASSERT(hdr == cases[i].hdr && body == cases[i].body))
				test_assert_strfail(cases[i].msg, "(this case)",
				    __FILE__, __LINE__);
		}
	}
	test_end();
}

static struct cleanup_state *
state_new(unsigned flags)
{
	struct cleanup_state *st = calloc(1, sizeof(*st));

	st->flags = flags;
	memcpy(st->id, "1J17320M90J00BTM00", QUEUE_ID_SIZE);
	st->ctx.id = st->id;
	st->sender = str_new_cstr("alice@example.com");
	st->reason = str_new(64, 0);
	st->message_id = str_new(64, 0);
	return st;
}

static void
state_free(struct cleanup_state **stp)
{
	struct cleanup_state *st = *stp;

	queue_file_abort(&st->w);
	str_free(&st->sender);
	str_free(&st->reason);
	str_free(&st->message_id);
	cleanup_rcpt_set_free(&st->rcpts);
	free(st);
	*stp = NULL;
}

static void
test_header_submission(void)
{
	static const char hdr[] =
	    "Received: by test\r\nBcc: hidden@example.org\r\n"
	    "Content-Length: 12\r\nSubject: hi\r\nReturn-Path: <x@y>\r\n";
	struct cleanup_state *st = state_new(CLEANUP_FLAG_SUBMISSION);
	struct str *out = str_new(256, 0);

	test_begin("submission: Bcc etc. removed, Message-ID/Date/From added");
	st->fullname = "Alice \"Al\" Liddell";
	cleanup_header_process(st, hdr, strlen(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_OK);
	TEST_ASSERT(strncmp(str_c(out), "Received: by test\r\nSubject: hi\r\n"
	    "Message-ID: <1J17320M90J00BTM00@mx.example.com>\r\nDate: ", 87) == 0);
	TEST_ASSERT(strstr(str_c(out), "hidden") == NULL);
	TEST_ASSERT(strstr(str_c(out), "Content-Length") == NULL);
	TEST_ASSERT(strstr(str_c(out), "Return-Path") == NULL);
	TEST_ASSERT(strstr(str_c(out), "\r\nFrom: \"Alice \\\"Al\\\" Liddell\" "
	    "<alice@example.com>\r\n\r\n") != NULL);
	TEST_ASSERT_STR(str_c(st->message_id),
	    "<1J17320M90J00BTM00@mx.example.com>");
	state_free(&st);
	str_free(&out);
	test_end();
}

static void
test_header_relay_untouched(void)
{
	static const char hdr[] = "Subject: relayed\r\nTo: bob\r\nX-Partial: no eol";
	struct cleanup_state *st = state_new(0);
	struct str *out = str_new(256, 0);

	test_begin("no submission, no maps: fields kept, last line ended");
	cleanup_header_process(st, hdr, strlen(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_OK);
	TEST_ASSERT_STR(str_c(out), "Subject: relayed\r\nTo: bob\r\n"
	    "X-Partial: no eol\r\n\r\n");
	TEST_ASSERT(str_len(st->message_id) == 0);
	state_free(&st);
	str_free(&out);
	test_end();
}

static void
test_header_qualify(void)
{
	static const char hdr[] = "From: Alice <alice>\r\nTo: bob, Carol "
	    "<carol@example.org>\r\nCc: undisclosed-recipients:;\r\n";
	struct cleanup_state *st = state_new(CLEANUP_FLAG_SUBMISSION);
	struct str *out = str_new(256, 0);

	test_begin("submission: domainless header addresses get @$myorigin");
	cleanup_header_process(st, hdr, strlen(hdr), out);
	TEST_ASSERT(strncmp(str_c(out), "From: Alice <alice@example.com>\r\n"
	    "To: bob@example.com, Carol <carol@example.org>\r\n"
	    "Cc: undisclosed-recipients:;\r\n", 111) == 0);
	state_free(&st);
	str_free(&out);
	test_end();
}

static void
test_header_limits(void)
{
	struct cleanup_state *st = state_new(0);
	struct str *hdr = str_new(256, 0), *out = str_new(256, 0);
	int i;

	test_begin("header count and hop limits");
	cleanup_settings.header_count_limit = 3;
	(void)str_append_cstr(hdr, "A: 1\r\nB: 2\r\nC: 3\r\n");
	cleanup_header_process(st, str_c(hdr), str_len(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_OK);
	(void)str_append_cstr(hdr, "D: 4\r\n");
	str_clear(out);
	cleanup_header_process(st, str_c(hdr), str_len(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_REJECT);
	TEST_ASSERT(strncmp(str_c(st->reason), "5.3.4 ", 6) == 0);
	state_free(&st);
	settings_init();

	st = state_new(0);
	str_clear(hdr);
	for (i = 0; i < 51; i++)
		(void)str_append_cstr(hdr, "Received: from a by b\r\n");
	cleanup_header_process(st, str_c(hdr), str_len(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_REJECT);
	TEST_ASSERT(strncmp(str_c(st->reason), "5.4.6 ", 6) == 0);
	state_free(&st);
	str_free(&hdr);
	str_free(&out);
	test_end();
}

static void
test_content_bounded(void)
{
	struct cleanup_state *st = state_new(0);
	char chunk[4096];
	size_t i;

	test_begin("an endless header is refused at header_size_limit");
	memset(chunk, 'h', sizeof(chunk));
	memcpy(chunk, "X-Long: ", 8);
	st->in_header = true;
	for (i = 0; i < 100 && st->status == CLEANUP_OK; i++)
		cleanup_content(st, chunk, sizeof(chunk));
	TEST_ASSERT(st->status == CLEANUP_REJECT);
	TEST_ASSERT(i * sizeof(chunk) <= 102400 + 2 * sizeof(chunk));
	TEST_ASSERT(st->header == NULL);	/* freed at once */
	TEST_ASSERT_STR(str_c(st->reason),
	    "5.3.4 message header size exceeds limit");
	state_free(&st);
	test_end();
}

static void
test_extract(void)
{
	static const char hdr[] =
	    "To: Bob <bob@example.org>, carol\r\nCc: bob@example.org\r\n"
	    "Bcc: dave@example.net\r\nSubject: t\r\n";
	struct cleanup_state *st = state_new(CLEANUP_FLAG_EXTRACT_RCPTS);
	struct str *out = str_new(256, 0);
	struct queue_envelope env;
	const char *error;
	char id[QUEUE_ID_SIZE];

	test_begin("-t: recipients from To/Cc/Bcc, deduplicated, qualified");
	TEST_ASSERT(queue_dirs_create(test_tmpdir(), 0700) == 0);
	st->w = queue_file_create(test_tmpdir(), id, &error);
	TEST_ASSERT(st->w != NULL);
	memset(&env, 0, sizeof(env));
	env.sender = "alice@example.com";
	TEST_ASSERT(queue_file_write_envelope(st->w, &env, &error) == 0);
	cleanup_header_process(st, hdr, strlen(hdr), out);
	TEST_ASSERT(st->status == CLEANUP_OK);
	TEST_ASSERT(st->nrcpt == 3);	/* bob, carol@example.com, dave */
	TEST_ASSERT(strstr(str_c(out), "dave") == NULL);
	state_free(&st);
	str_free(&out);
	test_end();
}

int
main(void)
{
	settings_init();
	test_header_end();
	test_header_submission();
	test_header_relay_untouched();
	test_header_qualify();
	test_header_limits();
	test_content_bounded();
	test_extract();
	return test_done();
}
