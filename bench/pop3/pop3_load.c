/* SPDX-License-Identifier: MIT */
/*
 * pop3_load - POP3 retrieval load: USERS concurrent clients, each logs
 * in (USER/PASS), pipelines RETR 1..N and QUIT, and reads every
 * message to its terminating "." line.
 *
 *	pop3_load HOST PORT USER-FORMAT USERS PASSWORD MESSAGES
 *
 * One process per client, all released together once connected and
 * logged in (a pipe), so the timing covers retrieval only. Prints
 * "messages=M bytes=B seconds=S rate=R" (R in messages per second);
 * exit 1 if any reply is not +OK or a count is wrong. Built by run.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
expect_ok(FILE *f, const char *what)
{
	char line[8192];

	if (fgets(line, sizeof(line), f) == NULL || strncmp(line, "+OK", 3) != 0) {
		fprintf(stderr, "pop3_load: %s: %s\n", what, line);
		return -1;
	}
	return 0;
}

static void
put(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, s, n)) <= 0) {
			perror("write");
			exit(1);
		}
		s += w;
		n -= (size_t)w;
	}
}

/* client - one user's session; bytes of message data read */
static int
client(const char *host, int port, const char *user, const char *pass,
    long msgs, int go_fd, int ready_fd, unsigned long long *bytes_r)
{
	struct sockaddr_in sin;
	char buf[256], *line = NULL, *cmds;
	size_t cap = 0, len = 0;
	ssize_t n;
	FILE *f;
	int fd, one = 1;
	long i;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, host, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("connect");
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	f = fdopen(fd, "r");
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	if (expect_ok(f, "greeting") < 0)
		return -1;
	snprintf(buf, sizeof(buf), "USER %s\r\n", user);
	put(fd, buf, strlen(buf));
	if (expect_ok(f, "USER") < 0)
		return -1;
	snprintf(buf, sizeof(buf), "PASS %s\r\n", pass);
	put(fd, buf, strlen(buf));
	if (expect_ok(f, "PASS") < 0)
		return -1;
	/* ready; wait for the start signal */
	put(ready_fd, "r", 1);
	if (read(go_fd, buf, 1) != 1)
		return -1;
	cmds = malloc((size_t)msgs * 16 + 16);
	for (i = 1; i <= msgs; i++)
		len += (size_t)sprintf(cmds + len, "RETR %ld\r\n", i);
	len += (size_t)sprintf(cmds + len, "QUIT\r\n");
	put(fd, cmds, len);
	free(cmds);
	for (i = 1; i <= msgs; i++) {
		if (expect_ok(f, "RETR") < 0)
			return -1;
		for (;;) {
			if ((n = getline(&line, &cap, f)) <= 0) {
				fprintf(stderr, "pop3_load: EOF in message\n");
				return -1;
			}
			if (n == 3 && memcmp(line, ".\r\n", 3) == 0)
				break;
			*bytes_r += (unsigned long long)n;
		}
	}
	if (expect_ok(f, "QUIT") < 0)
		return -1;
	free(line);
	fclose(f);
	return 0;
}

int
main(int argc, char **argv)
{
	int go[2], ready[2], res[2], i, users, port, status, failed = 0;
	unsigned long long bytes = 0, b;
	char name[128], c;
	long msgs;
	double t0, t1;
	pid_t pid, *pids;

	if (argc != 7) {
		fprintf(stderr, "usage: pop3_load HOST PORT USER-FORMAT USERS "
		    "PASSWORD MESSAGES\n");
		return 2;
	}
	port = atoi(argv[2]);
	users = atoi(argv[4]);
	msgs = atol(argv[6]);
	if (pipe(go) < 0 || pipe(ready) < 0 || pipe(res) < 0)
		return 1;
	pids = calloc((size_t)users + 1, sizeof(*pids));
	for (i = 0; i < users; i++) {
		if ((pid = fork()) < 0)
			return 1;
		pids[i] = pid;
		if (pid == 0) {
			close(go[1]);
			close(ready[0]);
			close(res[0]);
			/* the format is the operator's own argument */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(name, sizeof(name), argv[3], i);
#pragma GCC diagnostic pop
			b = 0;
			if (client(argv[1], port, name, argv[5], msgs, go[0],
			    ready[1], &b) < 0) {
				/* before "ready": unblock the parent */
				if (b == 0)
					put(ready[1], "f", 1);
				_exit(1);
			}
			put(res[1], (const char *)&b, sizeof(b));
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	close(res[1]);
	for (i = 0; i < users; i++)
		if (read(ready[0], &c, 1) != 1 || c != 'r') {
			fprintf(stderr, "pop3_load: a client failed to log in\n");
			for (i = 0; i < users; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
			return 1;
		}
	t0 = now();
	for (i = 0; i < users; i++)
		put(go[1], "g", 1);
	for (i = 0; i < users; i++)
		if (read(res[0], &b, sizeof(b)) == (ssize_t)sizeof(b))
			bytes += b;
	t1 = now();
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	if (failed)
		return 1;
	printf("messages=%ld bytes=%llu seconds=%.3f rate=%.0f\n",
	    msgs * users, bytes, t1 - t0, (double)(msgs * users) / (t1 - t0));
	return 0;
}
