/* SPDX-License-Identifier: MIT */
/*
 * qfdump - print a queue file for the integration tests, machine-readably
 *
 * SYNOPSIS
 *	qfdump QUEUE_DIR ID
 *
 * DESCRIPTION
 *	Finds ID in whichever queue holds it (queue_file_locate), opens it
 *	read-only with content verification and prints the envelope as
 *	"name=value" lines, one "rcpt=" line per recipient
 *	("rcpt=ADDRESS notify=N orcpt=TYPE;ADDR"), then "content=N", an
 *	empty line, and the N content octets exactly as stored. Tests
 *	compare the content byte for byte with what the client sent.
 *
 *	Exit 0 on success; 1 with a message on standard error otherwise
 *	(2 if the ID is in no queue).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue_file.h"

static void
field(const char *name, const char *value)
{
	if (value != NULL)
		printf("%s=%s\n", name, value);
}

int
main(int argc, char **argv)
{
	const struct queue_envelope *env;
	const struct queue_rcpt *r;
	struct queue_file *qf;
	enum queue_name q;
	const char *err = "";
	char buf[65536];
	uint64_t off = 0, len;
	ssize_t n;
	size_t i;

	log_init("qfdump");
	if (argc != 3) {
		fprintf(stderr, "usage: qfdump QUEUE_DIR ID\n");
		return 1;
	}
	if (queue_file_locate(argv[1], argv[2], &q) < 0) {
		fprintf(stderr, "qfdump: %s: not in any queue\n", argv[2]);
		return 2;
	}
	if ((qf = queue_file_open(argv[1], q, argv[2], QUEUE_FILE_VERIFY, &err)) == NULL) {
		fprintf(stderr, "qfdump: %s: %s: %s\n", argv[2], err, strerror(errno));
		return 1;
	}
	env = queue_file_envelope(qf);
	field("queue", queue_name_str(q));
	field("sender", env->sender);
	field("envid", env->envid);
	printf("ret=%d\nbody=%d\nsmtputf8=%d\n", (int)env->ret, (int)env->body,
	    env->smtputf8 ? 1 : 0);
	field("client_name", env->client_name);
	field("client_addr", env->client_addr);
	field("helo", env->helo);
	field("protocol", env->protocol);
	field("auth_user", env->auth_user);
	for (i = 0; i < env->nattrs; i++)
		printf("attr=%s=%s\n", env->attrs[i].name, env->attrs[i].value);
	for (i = 0; i < queue_file_rcpt_count(qf); i++) {
		r = queue_file_rcpt(qf, i);
		printf("rcpt=%s notify=%u orcpt=%s;%s\n", r->address, r->notify,
		    r->orcpt_type != NULL ? r->orcpt_type : "",
		    r->orcpt != NULL ? r->orcpt : "");
	}
	len = queue_file_content_length(qf);
	printf("content=%llu\n\n", (unsigned long long)len);
	while (off < len) {
		n = queue_file_read_content(qf, buf, sizeof(buf), off);
		if (n <= 0) {
			fprintf(stderr, "qfdump: %s: read error\n", argv[2]);
			queue_file_close(&qf);
			return 1;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		off += (uint64_t)n;
	}
	queue_file_close(&qf);
	return fflush(stdout) == 0 ? 0 : 1;
}
