/* SPDX-License-Identifier: MIT */
/*
 * testsvc - a worker for master's integration tests
 *
 * DESCRIPTION
 *	testsvc [server options] [-W] [-F] [-M]
 *
 *	Built on the server skeleton (lib/server.h). On each connection it
 *	greets with
 *
 *	    hello service=NAME pid=P uid=U gid=G euid=E egid=E2 cwd=CWD
 *
 *	and then answers one command per line:
 *
 *	    echo X      X
 *	    info        peer=ADDR peer_port=P local=ADDR local_port=P
 *	    sleep N     sleeps N seconds, then "slept"
 *	    crash       abort(): the worker dies by SIGABRT (no core)
 *	    exit N      _exit(N) at once
 *	    ignoreterm  ignore SIGTERM from now on, then "ignoring"
 *	    quit        "bye", and the connection ends
 *
 *	Lines end in CRLF. -W logs "wakeup" for each wakeup from master;
 *	-F fails at start-up (log_fatal after the privilege drop), for the
 *	fork-storm test; -M runs the skeleton in multi mode (one process
 *	serves many connections; only echo, info and quit).
 *
 * SECURITY
 *	A test program: it obeys "crash" and "exit" from any client. Never
 *	install it.
 */
#include <sys/resource.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "event.h"
#include "log.h"
#include "server.h"
#include "str.h"
#include "stream.h"

#define TESTSVC_LINE_MAX 1024
#define TESTSVC_TIMEOUT 300

static bool testsvc_log_wakeups;

/* testsvc_hello - the greeting that tells tests who served them */
static void
testsvc_hello(struct str *out, const struct server_conn *conn)
{
	char cwd[PATH_MAX];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		pst_strlcpy(cwd, "?", sizeof(cwd));
	str_printf(out, "hello service=%s pid=%ld uid=%ld gid=%ld euid=%ld "
	    "egid=%ld cwd=%s\r\n", conn->service, (long)getpid(),
	    (long)getuid(), (long)getgid(), (long)geteuid(), (long)getegid(),
	    cwd);
}

/* testsvc_info - the addresses the skeleton reported */
static void
testsvc_info(struct str *out, const struct server_conn *conn)
{
	str_printf(out, "peer=%s peer_port=%u local=%s local_port=%u\r\n",
	    conn->peer_addr, conn->peer_port, conn->local_addr,
	    conn->local_port);
}

/* testsvc_serve - single mode: one connection to its end */
static void
testsvc_serve(const struct server_conn *conn)
{
	struct stream *s = stream_new(conn->fd, TESTSVC_TIMEOUT, STREAM_NO_CLOSE);
	struct str *line = str_new(128, 0), *out = str_new(128, 0);
	struct rlimit rl = { 0, 0 };
	unsigned long n;

	testsvc_hello(out, conn);
	(void)stream_write(s, str_c(out), str_len(out));
	(void)stream_flush(s);
	while (stream_read_line(s, line, TESTSVC_LINE_MAX) == STREAM_OK) {
		str_chomp(line);
		str_clear(out);
		if (strncmp(str_c(line), "echo ", 5) == 0) {
			str_printf(out, "%s\r\n", str_c(line) + 5);
		} else if (str_equals_cstr(line, "info")) {
			testsvc_info(out, conn);
		} else if (strncmp(str_c(line), "sleep ", 6) == 0 &&
		    str_to_ulong(str_c(line) + 6, str_len(line) - 6, 3600, &n)) {
			sleep((unsigned)n);
			str_append_cstr(out, "slept\r\n");
		} else if (str_equals_cstr(line, "crash")) {
			(void)setrlimit(RLIMIT_CORE, &rl);
			abort();
		} else if (strncmp(str_c(line), "exit ", 5) == 0 &&
		    str_to_ulong(str_c(line) + 5, str_len(line) - 5, 255, &n)) {
			_exit((int)n);
		} else if (str_equals_cstr(line, "ignoreterm")) {
			(void)signal(SIGTERM, SIG_IGN);
			str_append_cstr(out, "ignoring\r\n");
		} else if (str_equals_cstr(line, "quit")) {
			(void)stream_puts(s, "bye\r\n");
			break;
		} else {
			str_append_cstr(out, "unknown command\r\n");
		}
		(void)stream_write(s, str_c(out), str_len(out));
		if (stream_flush(s) < 0)
			break;
	}
	(void)stream_flush(s);
	stream_free(&s);
	str_free(&line);
	str_free(&out);
}

/* One connection in multi mode. */
struct testsvc_conn {
	int fd;
	struct str *in;
	char *peer, *local;
	unsigned peer_port, local_port;
};

/* testsvc_multi_close - end a multi-mode connection */
static void
testsvc_multi_close(struct testsvc_conn *c)
{
	(void)event_fd_remove(server_loop(), c->fd);
	(void)close(c->fd);
	str_free(&c->in);
	free(c->peer);
	free(c->local);
	free(c);
	server_conn_done();
}

/* testsvc_multi_send - write all of out (small replies; blocking is fine) */
static bool
testsvc_multi_send(int fd, const struct str *out)
{
	const char *p = str_c(out);
	size_t left = str_len(out);
	ssize_t n;

	while (left > 0) {
		n = write(fd, p, left);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return false;
		p += n;
		left -= (size_t)n;
	}
	return true;
}

/* testsvc_multi_read - a multi-mode connection is readable */
static void
testsvc_multi_read(void *ctx, int fd, unsigned events UNUSED)
{
	struct testsvc_conn *c = ctx;
	struct str *out = str_new(128, 0);
	struct server_conn conn;
	char buf[512], *nl;
	ssize_t n;
	bool quit = false;

	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		str_free(&out);
		return;
	}
	if (n <= 0 || str_append(c->in, buf, (size_t)n) < 0) {
		str_free(&out);
		testsvc_multi_close(c);
		return;
	}
	memset(&conn, 0, sizeof(conn));
	conn.peer_addr = c->peer;
	conn.peer_port = c->peer_port;
	conn.local_addr = c->local;
	conn.local_port = c->local_port;
	while (!quit && (nl = memchr(str_c(c->in), '\n', str_len(c->in))) != NULL) {
		size_t len = (size_t)(nl - str_c(c->in));
		char *cmd = xstrndup(str_c(c->in), len);

		if (len > 0 && cmd[len - 1] == '\r')
			cmd[len - 1] = '\0';
		str_delete_head(c->in, len + 1);
		if (strncmp(cmd, "echo ", 5) == 0)
			str_printf(out, "%s\r\n", cmd + 5);
		else if (strcmp(cmd, "info") == 0)
			testsvc_info(out, &conn);
		else if (strcmp(cmd, "quit") == 0) {
			str_append_cstr(out, "bye\r\n");
			quit = true;
		} else
			str_append_cstr(out, "unknown command\r\n");
		free(cmd);
	}
	if (!testsvc_multi_send(fd, out))
		quit = true;
	str_free(&out);
	if (quit)
		testsvc_multi_close(c);
}

/* testsvc_multi_serve - multi mode: register the connection */
static void
testsvc_multi_serve(const struct server_conn *conn)
{
	struct testsvc_conn *c = xcalloc(1, sizeof(*c));
	struct str *out = str_new(128, 0);

	c->fd = conn->fd;
	c->in = str_new(128, TESTSVC_LINE_MAX);
	c->peer = xstrdup(conn->peer_addr);
	c->local = xstrdup(conn->local_addr);
	c->peer_port = conn->peer_port;
	c->local_port = conn->local_port;
	testsvc_hello(out, conn);
	if (!testsvc_multi_send(c->fd, out) ||
	    event_fd_add(server_loop(), c->fd, EVENT_READ, testsvc_multi_read,
	    c) < 0) {
		str_free(&out);
		testsvc_multi_close(c);
		return;
	}
	str_free(&out);
}

/* testsvc_post_jail - look at our own arguments */
static void
testsvc_post_jail(void)
{
	char **argv = server_argv();
	size_t i;

	for (i = 0; argv[i] != NULL; i++) {
		if (strcmp(argv[i], "-W") == 0)
			testsvc_log_wakeups = true;
		else if (strcmp(argv[i], "-F") == 0)
			log_fatal(NULL, "failing at start-up as asked (-F)");
		else if (strcmp(argv[i], "-M") == 0)
			;
		else
			log_fatal(NULL, "unknown argument: %s", argv[i]);
	}
}

/* testsvc_wakeup - master's wakeup */
static void
testsvc_wakeup(void)
{
	if (testsvc_log_wakeups)
		log_info(NULL, "wakeup");
}

int
main(int argc, char **argv)
{
	static struct server_ops ops = {
		.post_jail = testsvc_post_jail,
		.serve = testsvc_serve,
		.wakeup = testsvc_wakeup,
	};
	int i;

	/* The mode must be known before server_main(): peek at argv. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-M") == 0) {
			ops.multi = true;
			ops.serve = testsvc_multi_serve;
		}
	}
	return server_main(argc, argv, &ops);
}
