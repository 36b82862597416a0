/* SPDX-License-Identifier: MIT */
/*
 * lmtp_server_test - lmtp_server driven over a socketpair
 *
 * The client's whole input is written up front (pipelined) and its side
 * shut for writing, then lmtp_server_run() reads it in this process until
 * EOF or QUIT; the replies are read back and compared line by line. The
 * timeout case leaves the client side open.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "lmtp_server.h"
#include "log.h"
#include "str.h"
#include "test.h"

/* the LHLO reply with t_settings() */
#define T_LHLO_REPLY "250-mx.example\r\n250-PIPELINING\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n" \
	"250-XPOSTERN-TEST\r\n250 SIZE 200\r\n"

struct fixture {
	struct str *msg;	/* the content on_data saw */
	struct str *params;	/* "local=param," for each accepted rcpt */
	unsigned ndata, nreset;
	bool header_over;	/* on_data's tx->header_over */
};

static struct fixture fx;

/* on_rcpt: local parts starting "ok" exist; "temp" is a 451 */
static bool
t_rcpt(void *context, const struct lmtp_server_tx *tx,
    const struct address *addr, const char *param, struct str *reply)
{
	struct fixture *f = context;

	TEST_ASSERT(tx->log != NULL && tx->id[0] != '\0');
	if (strncmp(str_c(addr->local), "ok", 2) == 0) {
		str_printf(f->params, "%s=%s,", str_c(addr->local),
		    param != NULL ? param : "-");
		if (strcmp(str_c(addr->local), "okay") == 0)
			str_set_cstr(reply, "250 2.1.5 Okay then");
		return true;
	}
	if (strcmp(str_c(addr->local), "temp") == 0)
		str_set_cstr(reply, "451 4.3.0 try later");
	else
		str_set_cstr(reply, "550 5.1.1 No such user");
	return false;
}

/* on_data: each recipient's reply names it and the size; "ok-none" none */
static void
t_data(void *context, const struct lmtp_server_tx *tx, const char *msg,
    size_t len, struct str *const *replies)
{
	struct fixture *f = context;
	size_t i;

	f->ndata++;
	TEST_ASSERT(msg[len] == '\0');
	str_set(f->msg, msg, len);
	f->header_over = tx->header_over;
	for (i = 0; i < tx->nrcpt; i++)
		if (strcmp(tx->rcpt[i].local, "ok-none") != 0)
			str_printf(replies[i], "250 2.0.0 %s: %zu octets from "
			    "<%s>", tx->rcpt[i].local, len, tx->sender);
}

static void
t_reset(void *context)
{
	((struct fixture *)context)->nreset++;
}

static void
t_settings(struct lmtp_server_settings *set)
{
	static const char *const ext[] = { "XPOSTERN-TEST", NULL };

	memset(set, 0, sizeof(*set));
	set->hostname = "mx.example";
	set->banner = "LMTP test";
	set->timeout = 5;
	set->size_limit = 200;
	set->lhlo_ext = ext;
	set->rcpt_param = "XTOKEN";
	set->rcpt_param_max = 8;
	set->rcpt_max = 3;
	set->on_rcpt = t_rcpt;
	set->on_data = t_data;
	set->on_reset = t_reset;
	set->context = &fx;
}

/*
 * run - feed input to a session with set; the whole output into out.
 * close_input: shut the client's write side (EOF after the input).
 */
static void
run(const struct lmtp_server_settings *set, const char *input, size_t len,
    bool close_input, struct str *out)
{
	int sv[2];
	char buf[4096];
	ssize_t n;

	str_clear(fx.msg);
	str_clear(fx.params);
	fx.ndata = fx.nreset = 0;
	fx.header_over = false;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		log_fatal(NULL, "socketpair: %m");
	/* the input is small: it fits in the socket buffer */
	if (write(sv[0], input, len) != (ssize_t)len)
		log_fatal(NULL, "write: %m");
	if (close_input)
		(void)shutdown(sv[0], SHUT_WR);
	lmtp_server_run(sv[1], "test[127.0.0.1]", set);
	(void)close(sv[1]);
	str_clear(out);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0)
		str_append(out, buf, (size_t)n);
	(void)close(sv[0]);
}

static void
run_cs(const struct lmtp_server_settings *set, const char *input,
    struct str *out)
{
	run(set, input, strlen(input), true, out);
}

static void
test_pipelined(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0);

	test_begin("lmtp_server pipelined transaction, per-recipient replies");
	t_settings(&set);
	run_cs(&set,
	    "LHLO client.example\r\n"
	    "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME\r\n"
	    "RCPT TO:<ok1@x.example> XTOKEN=t+2Bk\r\n"
	    "RCPT TO:<nobody@x.example>\r\n"
	    "RCPT TO:<temp@x.example>\r\n"
	    "RCPT TO:<okay@x.example>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "..dot\r\n"
	    ".\r\n"
	    "NOOP\r\n"
	    "QUIT\r\n"
	    "NOOP never read\r\n", out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    T_LHLO_REPLY
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "550 5.1.1 No such user\r\n"
	    "451 4.3.0 try later\r\n"
	    "250 2.1.5 Okay then\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 ok1: 21 octets from <a@b.example>\r\n"
	    "250 2.0.0 okay: 21 octets from <a@b.example>\r\n"
	    "250 2.0.0 Ok\r\n"
	    "221 2.0.0 Bye\r\n");
	TEST_ASSERT_STR(str_c(fx.msg), "Subject: hi\r\n\r\n.dot\r\n");
	TEST_ASSERT_STR(str_c(fx.params), "ok1=t+k,okay=-,");
	TEST_ASSERT(fx.ndata == 1);
	str_free(&out);
	test_end();
}

static void
test_sequence(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0);

	test_begin("lmtp_server out-of-order commands: 503, 554, 500");
	t_settings(&set);
	run_cs(&set,
	    "MAIL FROM:<a@b.example>\r\n"
	    "EHLO client.example\r\n"
	    "RCPT TO:<ok@x.example>\r\n"
	    "DATA\r\n"
	    "LHLO client.example\r\n"
	    "MAIL FROM:<>\r\n"
	    "MAIL FROM:<>\r\n"
	    "DATA\r\n"
	    "RSET\r\n"
	    "RCPT TO:<ok@x.example>\r\n"
	    "VRFY someone\r\n"
	    "HELP\r\n"
	    "STARTTLS\r\n", out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    "503 5.5.1 Error: send LHLO first\r\n"
	    "500 5.5.1 Error: this is LMTP: use LHLO\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    T_LHLO_REPLY
	    "250 2.1.0 Ok\r\n"
	    "503 5.5.1 Error: nested MAIL command\r\n"
	    "554 5.5.1 Error: no valid recipients\r\n"
	    "250 2.0.0 Ok\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "252 2.0.0 Will attempt delivery\r\n"
	    "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT\r\n"
	    "502 5.5.1 Error: command not implemented\r\n");
	TEST_ASSERT(fx.ndata == 0);
	TEST_ASSERT(fx.nreset >= 3);	/* LHLO, RSET, the end */
	str_free(&out);
	test_end();
}

static void
test_syntax(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0), *in = str_new(0, 0);

	test_begin("lmtp_server bad syntax (501, 555, 500) and long lines");
	t_settings(&set);
	str_set_cstr(in,
	    "LHLO client.example\r\n"
	    "MAIL FROM:<a@@b>\r\n"
	    "MAIL FROM:<a@b.example> SIZE=1000\r\n"
	    "MAIL FROM:<a@b.example> FOO=bar\r\n"
	    "MAIL FROM:<a@b.example>\r\n"
	    "RCPT TO:<ok@x.example> XTOKEN=\r\n"
	    "RCPT TO:<ok@x.example> XTOKEN=a XTOKEN=b\r\n"
	    "RCPT TO:<ok@x.example> XTOKEN=123456789\r\n"
	    "RCPT TO:<ok@x.example> XTOKEN=a+20b\r\n"
	    "RCPT TO:<\"XTOKEN=x\"@x.example>\r\n"
	    "RCPT TO:<ok@x.example> NOTIFY=NEVER\r\n"
	    "FROB\r\n"
	    "RSET extra\r\n");
	str_append_c(in, 'N');
	while (str_len(in) < 6000)
		str_append_c(in, 'x');
	str_append_cstr(in, "\r\nNOOP\r\n");
	run(&set, str_c(in), str_len(in), true, out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    T_LHLO_REPLY
	    "501 5.1.7 Error: bad sender address syntax\r\n"
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "555 5.5.4 Error: parameter unrecognized or not enabled\r\n"
	    "250 2.1.0 Ok\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "550 5.1.1 No such user\r\n"
	    "555 5.5.4 Error: parameter unrecognized or not enabled\r\n"
	    "500 5.5.2 Error: command unrecognized\r\n"
	    "501 5.5.4 Error: command takes no argument\r\n"
	    "500 5.5.2 Error: line too long\r\n"
	    "250 2.0.0 Ok\r\n");
	str_free(&in);
	str_free(&out);
	test_end();
}

static void
test_limits(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0), *in = str_new(0, 0);
	int i;

	test_begin("lmtp_server too big (552), long content line, rcpt limit");
	t_settings(&set);
	str_set_cstr(in,
	    "LHLO c\r\n"
	    "MAIL FROM:<>\r\n"
	    "RCPT TO:<ok1@x>\r\n"
	    "RCPT TO:<ok2@x>\r\n"
	    "RCPT TO:<ok3@x>\r\n"
	    "RCPT TO:<ok4@x>\r\n"
	    "DATA\r\n");
	for (i = 0; i < 10; i++)
		str_append_cstr(in, "0123456789012345678901234567890\r\n");
	str_append_cstr(in, ".\r\n"
	    "MAIL FROM:<>\r\n"
	    "RCPT TO:<ok1@x>\r\n"
	    "DATA\r\n"
	    "short\r\n");
	for (i = 0; i < 70; i++)
		str_append_cstr(in, "y");
	str_append_cstr(in, "\r\n.\r\n"
	    "MAIL FROM:<>\r\n"
	    "RCPT TO:<ok-none@x>\r\n"
	    "DATA\r\n"
	    ".\r\n");
	set.data_line_max = 64;
	run(&set, str_c(in), str_len(in), true, out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    T_LHLO_REPLY
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "452 4.5.3 Error: too many recipients\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "552 5.3.4 Line too long\r\n"
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "451 4.3.0 Error: no delivery status\r\n");
	TEST_ASSERT(fx.ndata == 1);
	TEST_ASSERT_STR(str_c(fx.msg), "");
	str_free(&in);
	str_free(&out);
	test_end();
}

static void
test_errors_and_eof(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0), *in = str_new(0, 0), *want;
	int i;

	test_begin("lmtp_server error limit 421, EOF in DATA, no SIZE");
	t_settings(&set);
	set.error_limit = 3;
	run_cs(&set, "FROB\r\nFROB\r\nFROB\r\nNOOP\r\n", out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    "500 5.5.2 Error: command unrecognized\r\n"
	    "500 5.5.2 Error: command unrecognized\r\n"
	    "500 5.5.2 Error: command unrecognized\r\n"
	    "421 4.7.0 Error: too many errors\r\n");

	/* the connection lost in DATA: no reply, no delivery */
	t_settings(&set);
	run_cs(&set, "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<ok@x>\r\nDATA\r\n"
	    "partial\r\n", out);
	TEST_ASSERT(strstr(str_c(out), "354 ") != NULL);
	TEST_ASSERT(strstr(str_c(out), "\r\n250 2.0.0 ok") == NULL);
	TEST_ASSERT(fx.ndata == 0);

	/* no size limit, no extra keywords: SMTPUTF8 ends the LHLO reply */
	t_settings(&set);
	set.size_limit = 0;
	set.lhlo_ext = NULL;
	str_clear(in);
	str_append_cstr(in, "LHLO c\r\nMAIL FROM:<> SIZE=999999\r\n"
	    "RCPT TO:<ok@x>\r\nDATA\r\n");
	for (i = 0; i < 100; i++)
		str_append_cstr(in, "line of text\r\n");
	str_append_cstr(in, ".\r\n");
	run(&set, str_c(in), str_len(in), true, out);
	want = str_new(0, 0);
	str_set_cstr(want, "220 mx.example LMTP test\r\n"
	    "250-mx.example\r\n"
	    "250-PIPELINING\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n"
	    "250 SMTPUTF8\r\n"
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 ok: 1400 octets from <>\r\n");
	TEST_ASSERT_STR(str_c(out), str_c(want));
	str_free(&want);
	str_free(&in);
	str_free(&out);
	test_end();
}

static void
test_options(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0), *in = str_new(0, 0);
	int i;

	test_begin("lmtp_server options: UTF-8 paths, xtext parameter, "
	    "header only");
	t_settings(&set);
	set.utf8_paths = true;
	set.rcpt_param_xtext = true;
	set.rcpt_param_max = 4;
	set.header_max = 40;
	set.data_line_max = 64;
	str_set_cstr(in,
	    "LHLO c\r\n"
	    "MAIL FROM:<j\xc3\xb6rg@x>\r\n"
	    "RCPT TO:<ok\xc3\xbc@x> XTOKEN=a+00+FFb\r\n"
	    "RCPT TO:<ok2@x> XTOKEN=+2b\r\n"
	    "RCPT TO:<ok3@x> XTOKEN=12345\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n"
	    "X: y\r\n"
	    "\r\n"
	    "Not: a header\r\n");
	for (i = 0; i < 70; i++)
		str_append_c(in, 'b');
	str_append_cstr(in, "\r\n"
	    "..\r\n"
	    ".\r\n");
	run(&set, str_c(in), str_len(in), true, out);
	TEST_ASSERT_STR(str_c(out),
	    "220 mx.example LMTP test\r\n"
	    T_LHLO_REPLY
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "501 5.5.4 Error: bad XTOKEN parameter\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 ok\xc3\xbc: 21 octets from <j\xc3\xb6rg@x>\r\n");
	TEST_ASSERT_STR(str_c(fx.params), "ok\xc3\xbc=a+00+FFb,");
	TEST_ASSERT_STR(str_c(fx.msg), "Subject: hi\r\nX: y\r\n\r\n");
	TEST_ASSERT(!fx.header_over);

	/*
	 * a header block over header_max; one with a line over
	 * data_line_max (both: on_data with none of it); one over
	 * size_limit (no on_data)
	 */
	for (i = 0; i < 3; i++) {
		str_set_cstr(in, "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<ok@x>\r\n"
		    "DATA\r\n");
		str_append_cstr(in, i == 0 ? "Subject: " : "X: ");
		str_append_cstr(in, "0123456789012345678901234567890123456789");
		if (i == 1)
			str_append_cstr(in, "0123456789012345678901234567890");
		str_append_cstr(in, "\r\n\r\n");
		while (i == 2 && str_len(in) < 400)
			str_append_cstr(in, "body\r\n");
		str_append_cstr(in, ".\r\n");
		run(&set, str_c(in), str_len(in), true, out);
		if (i < 2) {
			TEST_ASSERT(strstr(str_c(out), "354 End data with "
			    "<CR><LF>.<CR><LF>\r\n250 2.0.0 ok: 0 octets "
			    "from <>\r\n") != NULL);
			TEST_ASSERT(fx.ndata == 1 && fx.header_over);
		}
	}
	TEST_ASSERT(strstr(str_c(out), "\r\n552 5.3.4 Message size exceeds "
	    "fixed limit\r\n") != NULL);
	TEST_ASSERT(fx.ndata == 0);

	/* without utf8_paths, UTF-8 needs SMTPUTF8 */
	set.utf8_paths = false;
	run_cs(&set, "LHLO c\r\nMAIL FROM:<j\xc3\xb6rg@x>\r\n", out);
	TEST_ASSERT(strstr(str_c(out), "\r\n553 5.6.7 ") != NULL);
	str_free(&in);
	str_free(&out);
	test_end();
}

static void
test_timeout(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0);
	time_t start;

	test_begin("lmtp_server read timeout ends the session");
	t_settings(&set);
	set.timeout = 1;
	start = time(NULL);
	run(&set, "LHLO c\r\n", 8, false, out);
	TEST_ASSERT(time(NULL) - start >= 1);
	TEST_ASSERT(str_len(out) > 14 && strcmp(str_c(out) + str_len(out) -
	    14, "250 SIZE 200\r\n") == 0);
	str_free(&out);
	test_end();
}

static void
test_logs(void)
{
	struct lmtp_server_settings set;
	struct str *out = str_new(0, 0), *logs = str_new(0, 0);
	char path[512], buf[4096];
	ssize_t n;
	int fd;

	test_begin("lmtp_server logs");
	(void)snprintf(path, sizeof(path), "%s/log", test_tmpdir());
	TEST_ASSERT(log_open_file(path) == 0);
	t_settings(&set);
	run_cs(&set, "LHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<ok@x>\r\nDATA\r\n"
	    "hi\r\n.\r\nQUIT\r\n", out);
	(void)log_open_file("-");
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		str_append(logs, buf, (size_t)n);
	if (fd >= 0)
		(void)close(fd);
	TEST_ASSERT(strstr(str_c(logs), "connect from test[127.0.0.1]") !=
	    NULL);
	TEST_ASSERT(strstr(str_c(logs), ": client=test[127.0.0.1], "
	    "from=<s@x>") != NULL);
	TEST_ASSERT(strstr(str_c(logs), ": from=<s@x>, size=4, nrcpt=1 "
	    "(done)") != NULL);
	TEST_ASSERT(strstr(str_c(logs), "disconnect from test[127.0.0.1]") !=
	    NULL);
	str_free(&logs);
	str_free(&out);
	test_end();
}

static void
split_case(const char *line, int want, const char *want_out,
    const char *want_value)
{
	struct str *out = str_new(0, 0), *v = str_new(0, 0);

	TEST_ASSERT(lmtp_server_split_param("XTOKEN", line, strlen(line), out,
	    v) == want);
	if (want >= 0) {
		TEST_ASSERT_STR(str_c(out), want_out);
		TEST_ASSERT_STR(str_c(v), want_value);
	}
	str_free(&out);
	str_free(&v);
}

static void
test_split_param(void)
{
	test_begin("lmtp_server_split_param");
	split_case("RCPT TO:<a@b> XTOKEN=Q+2F1 NOTIFY=NEVER", 1,
	    "RCPT TO:<a@b> NOTIFY=NEVER", "Q/1");
	split_case("RCPT TO:<\"x > XTOKEN=y\"@b>", 0,
	    "RCPT TO:<\"x > XTOKEN=y\"@b>", "");
	split_case("RCPT TO: a@b xtoken=t", 1, "RCPT TO: a@b", "t");
	split_case("MAIL FROM:<a@b> XTOKEN=t", 0, "MAIL FROM:<a@b> XTOKEN=t",
	    "");
	split_case("RCPT TO:<a@b> XTOKEN", 0, "RCPT TO:<a@b> XTOKEN", "");
	split_case("RCPT TO:<a@b> XTOKEN=", -1, "", "");
	split_case("RCPT TO:<a@b> XTOKEN=a xtoken=a", -1, "", "");
	split_case("RCPT TO:<a@b> XTOKEN=a+2", -1, "", "");
	test_end();
}

int
main(void)
{
	log_init("lmtp_server_test");
	fx.msg = str_new(0, 0);
	fx.params = str_new(0, 0);
	test_split_param();
	test_pipelined();
	test_sequence();
	test_syntax();
	test_limits();
	test_errors_and_eof();
	test_options();
	test_timeout();
	test_logs();
	str_free(&fx.msg);
	str_free(&fx.params);
	return test_done();
}
