/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_test - unit tests: XTOKEN splitting, and whole sessions in-process
 *
 * The session tests run lmtpd_session_run() in a child on one end of a
 * socketpair, against a real store and user database in a temporary
 * directory (fsync off); the parent sends a script (in one write, so
 * everything is pipelined) and checks the reply codes in order.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"
#include "test.h"
#include "userdb.h"

#include "lmtpd.h"

int lmtpd_rcpt_split_token(const char *p, size_t len, struct str *out,
    struct str *token);

static char *test_store_dir;

static void
split_case(const char *line, int want, const char *want_out,
    const char *want_token)
{
	struct str *out = str_new(0, 0), *tok = str_new(0, 100);
	int r = lmtpd_rcpt_split_token(line, strlen(line), out, tok);

	TEST_ASSERT(r == want);
	if (r >= 0) {
		TEST_ASSERT_STR(str_c(out), want_out);
		TEST_ASSERT_STR(str_c(tok), want_token);
	}
	str_free(&out);
	str_free(&tok);
}

static void
test_split_token(void)
{
	test_begin("XTOKEN split off RCPT TO");
	split_case("RCPT TO:<a@b>", 0, "RCPT TO:<a@b>", "");
	split_case("MAIL FROM:<a@b> XTOKEN=x", 0, "MAIL FROM:<a@b> XTOKEN=x", "");
	split_case("RCPT TO:<a@b> XTOKEN=Q/1", 1, "RCPT TO:<a@b>", "Q/1");
	split_case("rcpt to:<a@b> NOTIFY=NEVER xtoken=Q+2F1 ORCPT=rfc822;a@b", 1,
	    "rcpt to:<a@b> NOTIFY=NEVER ORCPT=rfc822;a@b", "Q/1");
	split_case("RCPT TO:<\"x XTOKEN=y\"@b>", 0, "RCPT TO:<\"x XTOKEN=y\"@b>", "");
	split_case("RCPT TO:<\"x\\\" XTOKEN=y\"@b> XTOKEN=t", 1,
	    "RCPT TO:<\"x\\\" XTOKEN=y\"@b>", "t");
	split_case("RCPT TO: a@b XTOKEN=t", 1, "RCPT TO: a@b", "t");
	split_case("RCPT TO:<a@b> XTOKEN=", -1, "", "");
	split_case("RCPT TO:<a@b> XTOKEN=a XTOKEN=b", -1, "", "");
	split_case("RCPT TO:<a@b> XTOKEN=a+zz", -1, "", "");
	split_case("RCPT TO:<a@b> XTOKENX=a", 0, "RCPT TO:<a@b> XTOKENX=a", "");
	test_end();
}

/* run_session - script in, all replies out (the child runs the session) */
static void
run_session(const char *script, size_t len, struct str *out)
{
	int sv[2];
	pid_t pid;
	char buf[4096];
	ssize_t n;
	int status;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((pid = fork()) < 0)
		abort();
	if (pid == 0) {
		struct stream *s;

		close(sv[0]);
		s = stream_new(sv[1], 10, 0);
		lmtpd_session_run(s, "test");
		stream_free(&s);
		lmtpd_deliver_deinit();
		_exit(0);
	}
	close(sv[1]);
	if (write(sv[0], script, len) != (ssize_t)len)
		abort();
	(void)shutdown(sv[0], SHUT_WR);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0)
		str_append(out, buf, (size_t)n);
	close(sv[0]);
	(void)waitpid(pid, &status, 0);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* codes - the reply codes of out, last lines of multi-line replies only */
static void
codes(const struct str *out, struct str *list)
{
	const char *p = str_c(out), *end = p + str_len(out), *nl;

	str_clear(list);
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if (nl - p >= 4 && p[3] == ' ')
			str_printf(list, "%s%.3s", str_len(list) > 0 ? " " : "", p);
	}
}

static uint32_t
count(const char *user, const char *mailbox)
{
	struct store *st;
	struct store_status status;
	const char *err;

	if ((st = store_open(test_store_dir, user, &err)) == NULL)
		return 0;
	memset(&status, 0, sizeof(status));
	if (store_mailbox_status(st, mailbox, &status, &err) < 0)
		status.messages = 0;
	store_free(&st);
	return status.messages;
}

#define SCRIPT(s) s, sizeof(s) - 1

static void
test_sessions(void)
{
	struct str *out = str_new(0, 0), *list = str_new(0, 0);

	test_begin("session: per-recipient replies after DATA");
	run_session(SCRIPT("LHLO t\r\nMAIL FROM:<s@x.org>\r\n"
	    "RCPT TO:<alice@localhost>\r\nRCPT TO:<nobody@localhost>\r\n"
	    "RCPT TO:<bob>\r\nRCPT TO:<alice@remote.org>\r\nDATA\r\n"
	    "Subject: t\r\n\r\n..x\r\n.\r\nQUIT\r\n"), out);
	codes(out, list);
	TEST_ASSERT_STR(str_c(list), "220 250 250 250 550 250 550 354 250 250 221");
	TEST_ASSERT(count("alice", "INBOX") == 1);
	TEST_ASSERT(count("bob", "INBOX") == 1);
	test_end();

	test_begin("session: tokens make a retry harmless");
	str_clear(out);
	run_session(SCRIPT("LHLO t\r\nMAIL FROM:<>\r\n"
	    "RCPT TO:<alice@localhost> XTOKEN=Q/0\r\nDATA\r\nSubject: a\r\n\r\nb\r\n.\r\n"
	    "MAIL FROM:<>\r\nRCPT TO:<alice@localhost> XTOKEN=Q/0\r\nDATA\r\n"
	    "Subject: a\r\n\r\nb\r\n.\r\n"), out);
	codes(out, list);
	TEST_ASSERT_STR(str_c(list), "220 250 250 250 354 250 250 250 354 250");
	TEST_ASSERT(strstr(str_c(out), "(already)") != NULL);
	TEST_ASSERT(count("alice", "INBOX") == 2);
	test_end();

	test_begin("session: smuggling and bare LF, then in step");
	str_clear(out);
	run_session(SCRIPT("LHLO t\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\n"
	    "DATA\r\nSubject: s\r\n\r\nx\n.\nMAIL FROM:<e@x>\r\n.\r\n"
	    "NOOP\r\n"), out);
	codes(out, list);
	TEST_ASSERT_STR(str_c(list), "220 250 250 250 354 550 250");
	TEST_ASSERT(count("bob", "INBOX") == 1);
	test_end();

	test_begin("session: BDAT chunks, and order errors");
	str_clear(out);
	run_session(SCRIPT("DATA\r\nLHLO t\r\nRCPT TO:<bob>\r\nMAIL FROM:<>\r\n"
	    "BDAT 3\r\nabcRCPT TO:<bob>\r\nBDAT 4\r\nab\r\nBDAT 2 LAST\r\n\r\n"
	    "HELO x\r\nBDAT\r\n"), out);
	codes(out, list);
	TEST_ASSERT_STR(str_c(list), "220 503 250 503 250 503 250 250 250 500 501");
	TEST_ASSERT(count("bob", "INBOX") == 2);
	test_end();

	str_free(&out);
	str_free(&list);
}

int
main(void)
{
	const char *err;
	char *p;

	signal(SIGPIPE, SIG_IGN);
	test_split_token();

	log_init("lmtpd_test");
	(void)log_open_file("/dev/null");
	config_set_global(config_new("/nonexistent"));
	test_store_dir = xasprintf("%s/store", test_tmpdir());
	if (mkdir(test_store_dir, 0700) < 0 && errno != EEXIST)
		abort();
	(void)config_set(conf(), "store_directory", test_store_dir, &err);
	(void)config_set(conf(), "myhostname", "lmtp.test", &err);
	(void)config_set(conf(), "mydestination", "localhost", &err);
	p = xasprintf("%s/users.db", test_tmpdir());
	(void)config_set(conf(), "user_database", p, &err);
	if (userdb_add(p, "alice", "pw", &err) < 0 ||
	    userdb_add(p, "bob", "pw", &err) < 0)
		abort();
	free(p);
	if (!lmtpd_settings_load())
		abort();
	lmtpd_settings.fsync = false;
	test_sessions();
	free(test_store_dir);
	return test_done();
}
