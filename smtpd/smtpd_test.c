/* SPDX-License-Identifier: MIT */
/*
 * smtpd_test - the SMTP session driven in-process over a socketpair
 *
 * The session (smtpd_session_run) runs in this thread; a writer thread
 * sends the client's script and a reader thread collects the replies.
 * cleanup_client_* are replaced by a fake defined here (the linker then
 * never pulls lib/cleanup_client.o), which records what smtpd hands to
 * the queue: envelope, recipients, content, and whether it was
 * finished or aborted. That lets these tests check the byte-exact
 * content (dot-unstuffing, BDAT), the end-of-DATA rules (no smuggling)
 * and the durability rule without a running cleanup.
 */
#include <sys/socket.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "log.h"
#include "stream.h"
#include "str.h"
#include "test.h"

#include "smtpd.h"

/* ------------------------------------------------------------ fake cleanup */

struct cleanup_client {
	char id[32];
};

static struct {
	int opened, finished, aborted;
	enum cleanup_status verdict;
	struct str *content;
	struct str *sender;
	struct str *envid;
	struct str *rcpts;	/* "addr notify orcpt_type;orcpt\n" per recipient */
	enum smtp_body body;
	bool smtputf8;
	bool fail_open;
} fake;

struct cleanup_client *
cleanup_client_open(const char *socket_path, unsigned flags, const char **error_r)
{
	struct cleanup_client *c;

	(void)socket_path;
	(void)flags;
	if (fake.fail_open) {
		*error_r = "fake: no cleanup";
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "TESTID%d", ++fake.opened);
	str_clear(fake.content);
	str_clear(fake.rcpts);
	return c;
}

const char *
cleanup_client_id(const struct cleanup_client *c)
{
	return c->id;
}

int
cleanup_client_envelope(struct cleanup_client *c,
    const struct queue_envelope *env, const char **error_r)
{
	(void)c;
	(void)error_r;
	str_set_cstr(fake.sender, env->sender);
	str_set_cstr(fake.envid, env->envid != NULL ? env->envid : "");
	fake.body = env->body;
	fake.smtputf8 = env->smtputf8;
	return 0;
}

int
cleanup_client_rcpt(struct cleanup_client *c, const struct queue_rcpt *rcpt,
    const char **error_r)
{
	(void)c;
	(void)error_r;
	str_printf(fake.rcpts, "%s %u %s;%s\n", rcpt->address, rcpt->notify,
	    rcpt->orcpt_type != NULL ? rcpt->orcpt_type : "",
	    rcpt->orcpt != NULL ? rcpt->orcpt : "");
	return 0;
}

int
cleanup_client_content(struct cleanup_client *c, const void *data, size_t len,
    const char **error_r)
{
	(void)c;
	(void)error_r;
	str_append(fake.content, data, len);
	return 0;
}

enum cleanup_status
cleanup_client_finish(struct cleanup_client **cp, struct str *reason)
{
	XFREE(*cp);
	fake.finished++;
	if (fake.verdict == CLEANUP_TEMPFAIL)
		str_set_cstr(reason, "4.3.0 fake temporary failure");
	return fake.verdict;
}

void
cleanup_client_abort(struct cleanup_client **cp)
{
	if (*cp == NULL)
		return;
	XFREE(*cp);
	fake.aborted++;
}

/* ------------------------------------------------------------ harness */

struct pump {
	int fd;
	const char *data;
	size_t len;
	struct str *out;
};

static void *
pump_write(void *arg)
{
	struct pump *p = arg;
	size_t off = 0;
	ssize_t n;

	while (off < p->len) {
		n = write(p->fd, p->data + off, p->len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void *
pump_read(void *arg)
{
	struct pump *p = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(p->fd, buf, sizeof(buf))) > 0)
		str_append(p->out, buf, (size_t)n);
	return NULL;
}

/* run - one session fed with script; the replies are returned in out */
static void
run_addr(const char *script, size_t len, struct str *out, const char *addr)
{
	struct smtpd_client client = { .addr = addr, .port = 12345,
	    .name = "client.test", .service = "smtp" };
	struct pump w, r;
	pthread_t tw, tr;
	struct stream *s;
	int sv[2];

	str_clear(out);
	ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	w = (struct pump){ .fd = sv[1], .data = script, .len = len };
	r = (struct pump){ .fd = sv[1], .out = out };
	pthread_create(&tw, NULL, pump_write, &w);
	pthread_create(&tr, NULL, pump_read, &r);
	s = stream_new(sv[0], 10, 0);
	smtpd_session_run(s, &client, NULL);
	stream_free(&s);	/* closes sv[0]: the reader sees EOF */
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	close(sv[1]);
}

static void
run(const char *script, struct str *out)
{
	run_addr(script, strlen(script), out, "127.0.0.1");
}

static void
set(const char *name, const char *value)
{
	const char *err;

	ASSERT(config_set(conf(), name, value, &err) == 0);
	ASSERT(smtpd_settings_load());
}

/* has - out contains needle */
static bool
has(const struct str *out, const char *needle)
{
	return strstr(str_c(out), needle) != NULL;
}

/* body - the fake's content after our Received: header */
static const char *
body(void)
{
	const char *p = strstr(str_c(fake.content), "\r\n\r\n");
	const char *q = str_c(fake.content);

	/* The Received: header ends at its first line not starting with TAB. */
	for (q = strstr(q, "\r\n"); q != NULL && q[2] == '\t'; q = strstr(q + 2, "\r\n"))
		;
	(void)p;
	return q != NULL ? q + 2 : "";
}

#define HELO "EHLO client.test\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<r@remote.test>\r\n"

static void
test_basic(struct str *out)
{
	int fin;

	test_begin("basic transaction, dot-unstuffing, Received");
	fin = fake.finished;
	run(HELO "DATA\r\nSubject: hi\r\n\r\n..leading dot\r\n.x\r\nbody\r\n.\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "220 mx.test ESMTP Postern\r\n"));
	TEST_ASSERT(has(out, "250-PIPELINING\r\n"));
	TEST_ASSERT(has(out, "250 CHUNKING\r\n"));
	TEST_ASSERT(has(out, "354 End data"));
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued as TESTID"));
	TEST_ASSERT(has(out, "221 2.0.0 Bye"));
	TEST_ASSERT(fake.finished == fin + 1);
	TEST_ASSERT_STR(body(), "Subject: hi\r\n\r\n.leading dot\r\nx\r\nbody\r\n");
	TEST_ASSERT(!has(out, "500"));
	TEST_ASSERT(strncmp(str_c(fake.content), "Received: from client.test "
	    "(client.test [127.0.0.1])\r\n\tby mx.test (Postern) with ESMTP id TESTID", 74) == 0);
	TEST_ASSERT(has(fake.content, "\r\n\tfor <r@remote.test>; "));
	TEST_ASSERT_STR(str_c(fake.sender), "s@example.org");
	test_end();
}

static void
test_smuggling(struct str *out)
{
	int fin, ab;

	test_begin("no SMTP smuggling: only CRLF.CRLF ends DATA");
	fin = fake.finished;
	ab = fake.aborted;
	run(HELO "DATA\r\nA\r\n.\nMAIL FROM:<evil@x.test>\r\n"
	    "B\n.\r\nC\r\n.\r\nQUIT\r\n", out);
	/* Bare LFs: rejected as a whole, and nothing was executed from inside. */
	TEST_ASSERT(has(out, "550 5.5.2 Error: bare <LF> received\r\n"));
	TEST_ASSERT(!has(out, "503"));
	TEST_ASSERT(fake.finished == fin);
	TEST_ASSERT(fake.aborted == ab + 1);
	TEST_ASSERT(has(out, "221 2.0.0 Bye"));

	set("smtpd_forbid_bare_newline", "normalize");
	run(HELO "DATA\r\nA\r\n.\nB\n.\r\nC\r\n.\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued"));
	TEST_ASSERT_STR(body(), "A\r\n\r\nB\r\n\r\nC\r\n");
	/* "\r.\r\n" and ".\r" lines are content too */
	run(HELO "DATA\r\nA\r.\r\n.\r\r\n.\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued"));
	TEST_ASSERT_STR(body(), "A\r.\r\n\r\r\n");
	set("smtpd_forbid_bare_newline", "reject");
	test_end();
}

static void
test_bdat(struct str *out)
{
	static const char script[] = HELO "BDAT 13\r\nX: y\r\n\r\n.\r\n\0\nBDAT 3 LAST\r\n\r\n.QUIT\r\n";

	test_begin("BDAT byte-exact, no dot handling");
	run_addr(script, sizeof(script) - 1, out, "127.0.0.1");
	TEST_ASSERT(has(out, "250 2.0.0 Ok: 13 bytes\r\n"));
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued as"));
	TEST_ASSERT(str_len(fake.content) > 16);
	TEST_ASSERT(memcmp(body(), "X: y\r\n\r\n.\r\n\0\n\r\n.", 17) == 0);
	TEST_ASSERT(!has(out, "500"));
	TEST_ASSERT(has(out, "221 2.0.0 Bye"));

	/* BDAT before MAIL: the chunk is still consumed */
	run("EHLO c.test\r\nBDAT 6\r\nQUIT\r\nNOOP\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n221"));
	/* DATA after BDAT and BINARYMIME with DATA */
	run(HELO "BDAT 1\r\nxDATA\r\nBDAT 0 LAST\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "503 5.5.1 Error: DATA after BDAT"));
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued"));
	run("EHLO c.test\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<r@x.test>\r\nDATA\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "503 5.5.1 Error: BINARYMIME requires BDAT"));
	TEST_ASSERT(fake.body == SMTP_BODY_BINARYMIME);
	test_end();
}

static void
test_limits(struct str *out)
{
	struct str *big = str_new(0, 0);
	int i;

	test_begin("size, line, recipient and error limits");
	set("message_size_limit", "100");
	run("EHLO c.test\r\nMAIL FROM:<a@b.test> SIZE=101\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "552 5.3.4 Message size exceeds fixed limit"));
	str_set_cstr(big, HELO "DATA\r\n");
	for (i = 0; i < 20; i++)
		str_append_cstr(big, "0123456789\r\n");
	str_append_cstr(big, ".\r\nQUIT\r\n");
	run(str_c(big), out);
	TEST_ASSERT(has(out, "552 5.3.4 Error: message file too big"));
	TEST_ASSERT(has(out, "221 2.0.0 Bye"));
	run(HELO "BDAT 200 LAST\r\n", out);
	set("message_size_limit", "10m");

	/* a command line far over the limit: 500, and the session goes on */
	str_set_cstr(big, "EHLO c.test\r\nNOOP ");
	for (i = 0; i < 100000; i++)
		str_append_cstr(big, "xxxxxxxxxx");
	str_append_cstr(big, "\r\nNOOP\r\nQUIT\r\n");
	run(str_c(big), out);
	TEST_ASSERT(has(out, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n221"));

	set("smtpd_recipient_limit", "2");
	run("MAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
	    "RCPT TO:<c@x.test>\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "452 4.5.3 Error: too many recipients"));
	set("smtpd_recipient_limit", "1000");

	str_clear(big);
	for (i = 0; i < 100; i++)
		str_append_cstr(big, "BOGUS\r\n");
	run(str_c(big), out);
	TEST_ASSERT(has(out, "421 4.7.0 mx.test Error: too many errors\r\n"));
	/* 20 errors, then the 421: no 21st reply */
	{
		const char *p = str_c(out);
		int n = 0;

		while ((p = strstr(p, "500 5.5.2")) != NULL) {
			n++;
			p++;
		}
		TEST_ASSERT(n == 20);
	}
	/* NUL in a command */
	run_addr("NOOP\0x\r\nQUIT\r\n", 14, out, "127.0.0.1");
	TEST_ASSERT(has(out, "500 5.5.2"));
	TEST_ASSERT(has(out, "221 2.0.0 Bye"));
	str_free(&big);
	test_end();
}

static void
test_policy(struct str *out)
{
	test_begin("relay control, DSN, VRFY, AUTH without TLS, MAIL states");
	{
		static const char sc[] = "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
		    "RCPT TO:<x@remote.test>\r\nRCPT TO:<nobody@mx.test>\r\nQUIT\r\n";

		run_addr(sc, sizeof(sc) - 1, out, "192.0.2.7");
	}
	TEST_ASSERT(has(out, "554 5.7.1 <x@remote.test>: Relay access denied"));
	TEST_ASSERT(has(out, "550 5.1.1 <nobody@mx.test>: Recipient address rejected"));
	run("EHLO c.test\r\nRCPT TO:<postmaster@mx.test>\r\nMAIL FROM:<a@b.test>\r\n"
	    "MAIL FROM:<a@b.test>\r\nRCPT TO:<postmaster@mx.test>\r\nRCPT TO:<Postmaster>\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "503 5.5.1 Error: need MAIL command"));
	TEST_ASSERT(has(out, "503 5.5.1 Error: nested MAIL command"));
	TEST_ASSERT(has(out, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"));

	run("EHLO c.test\r\nMAIL FROM:<a@b.test> RET=HDRS ENVID=abc+2Bdef\r\n"
	    "RCPT TO:<x@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40remote.test\r\n"
	    "DATA\r\nx\r\n.\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "250 2.0.0 Ok: queued"));
	TEST_ASSERT_STR(str_c(fake.envid), "abc+def");
	TEST_ASSERT_STR(str_c(fake.rcpts), "x@remote.test 6 rfc822;x@remote.test\n");

	run("EHLO c.test\r\nVRFY root\r\nEXPN list\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "252 2.0.0"));
	TEST_ASSERT(has(out, "502 5.5.1"));

	set("smtpd_sasl_auth_enable", "yes");
	run("EHLO c.test\r\nAUTH PLAIN AGEAYg==\r\nQUIT\r\n", out);
	TEST_ASSERT(!has(out, "250-AUTH"));
	TEST_ASSERT(has(out, "538 5.7.11"));
	set("smtpd_client_restrictions", "permit_sasl_authenticated, reject");
	run("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "530 5.7.0 Authentication required"));
	set("smtpd_client_restrictions", "");
	set("smtpd_sasl_auth_enable", "no");
	run("EHLO c.test\r\nAUTH PLAIN AGEAYg==\r\nSTARTTLS\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "503 5.5.1 Error: authentication not enabled"));
	TEST_ASSERT(has(out, "502 5.5.1"));

	/* invalid UTF-8 and non-ASCII without SMTPUTF8 */
	run("EHLO c.test\r\nMAIL FROM:<\xff@b.test>\r\nMAIL FROM:<\xc3\xa9@b.test>\r\n"
	    "MAIL FROM:<\xc3\xa9@b.test> SMTPUTF8\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "250 2.1.0 Ok"));
	TEST_ASSERT(fake.smtputf8);
	test_end();
}

static void
test_lost(struct str *out)
{
	int ab = fake.aborted, fin = fake.finished;

	test_begin("connection lost in DATA or BDAT: nothing queued");
	run(HELO "DATA\r\npartial message\r\n", out);
	TEST_ASSERT(fake.aborted == ab + 1);
	run(HELO "BDAT 100 LAST\r\nshort", out);
	TEST_ASSERT(fake.aborted == ab + 2);
	TEST_ASSERT(fake.finished == fin);

	fake.verdict = CLEANUP_TEMPFAIL;
	run(HELO "DATA\r\nx\r\n.\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "451 4.3.0 fake temporary failure"));
	TEST_ASSERT(!has(out, "250 2.0.0 Ok: queued"));
	fake.verdict = CLEANUP_OK;
	fake.fail_open = true;
	run(HELO "DATA\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "451 4.3.0"));
	TEST_ASSERT(has(out, "503 5.5.1 Error: need MAIL command"));
	fake.fail_open = false;
	test_end();
}

static void
test_pipelining(struct str *out)
{
	test_begin("pipelined replies in order");
	run("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r1@x.test>\r\n"
	    "RCPT TO:<r2@x.test>\r\nDATA\r\nhello\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n", out);
	TEST_ASSERT(has(out, "250 CHUNKING\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: queued as "));
	TEST_ASSERT(has(out, "\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"));
	/* two recipients: no "for" clause */
	TEST_ASSERT(!has(fake.content, "\tfor <"));
	test_end();
}

static void
test_base64(void)
{
	struct str *o = str_new(0, 0);

	test_begin("base64 decode");
	TEST_ASSERT(smtpd_base64_decode("AGEAYg==", 8, o) && str_len(o) == 4 &&
	    memcmp(str_c(o), "\0a\0b", 4) == 0);
	str_clear(o);
	TEST_ASSERT(smtpd_base64_decode("", 0, o) && str_len(o) == 0);
	TEST_ASSERT(!smtpd_base64_decode("AGE", 3, o));
	TEST_ASSERT(!smtpd_base64_decode("A=Eg", 4, o));
	TEST_ASSERT(!smtpd_base64_decode("AG=g", 4, o));
	TEST_ASSERT(!smtpd_base64_decode("AG\nA", 4, o));
	str_free(&o);
	test_end();
}

int
main(void)
{
	struct config *cfg;
	struct str *out;
	const char *err;

	log_init("smtpd_test");
	if (getenv("SMTPD_TEST_LOG") == NULL)
		(void)log_open_file("/dev/null");
	(void)signal(SIGPIPE, SIG_IGN);
	cfg = config_new(test_tmpdir());
	config_set_global(cfg);
	ASSERT(config_set(conf(), "myhostname", "mx.test", &err) == 0);
	ASSERT(config_set(conf(), "smtpd_peername_lookup", "no", &err) == 0);
	ASSERT(config_set(conf(), "user_database", "/nonexistent/users.db", &err) == 0);
	ASSERT(smtpd_settings_load());
	fake.content = str_new(0, 0);
	fake.sender = str_new(0, 0);
	fake.envid = str_new(0, 0);
	fake.rcpts = str_new(0, 0);
	out = str_new(0, 0);

	test_basic(out);
	test_smuggling(out);
	test_bdat(out);
	test_limits(out);
	test_policy(out);
	test_lost(out);
	test_pipelining(out);
	test_base64();

	str_free(&out);
	str_free(&fake.content);
	str_free(&fake.sender);
	str_free(&fake.envid);
	str_free(&fake.rcpts);
	free(smtpd_settings.mynetworks);
	free(smtpd_settings.alias_maps);
	return test_done();
}
