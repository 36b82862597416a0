/* SPDX-License-Identifier: MIT */
/*
 * qfcat - print a queue file for the integration tests
 *
 * DESCRIPTION
 *	qfcat QUEUE_DIR QUEUE ID prints the envelope as "key=value" lines
 *	(sender, protocol, client_name, client_addr, helo, auth_user,
 *	smtputf8, body, ret, envid, "attr NAME=VALUE"), each recipient as
 *	"rcpt=ADDR" with " original=..." " orcpt=TYPE;ADDR" " notify=N"
 *	" state=STATE" appended when present, then the line "content=N"
 *	and the N content octets exactly as stored. Exit 0, or 1 with a
 *	message on standard error (2 if the file does not exist).
 *	tests/test_cleanup.py and tests/test_sendmail.py parse this.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue_file.h"

static void
opt(const char *key, const char *value)
{
	if (value != NULL)
		printf("%s=%s\n", key, value);
}

int
main(int argc, char **argv)
{
	const struct queue_envelope *env;
	const struct queue_rcpt *r;
	struct queue_file *qf;
	enum queue_name q;
	const char *error;
	char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	size_t i;

	log_init("qfcat");
	if (argc != 4 || !queue_name_parse(argv[2], &q)) {
		fprintf(stderr, "usage: qfcat QUEUE_DIR QUEUE ID\n");
		return 1;
	}
	qf = queue_file_open(argv[1], q, argv[3], QUEUE_FILE_VERIFY, &error);
	if (qf == NULL) {
		fprintf(stderr, "qfcat: %s/%s/%s: %s: %s\n", argv[1], argv[2],
		    argv[3], error, strerror(errno));
		return errno == ENOENT ? 2 : 1;
	}
	env = queue_file_envelope(qf);
	printf("sender=%s\n", env->sender);
	printf("arrival=%lld\n", (long long)env->arrival.tv_sec);
	opt("protocol", env->protocol);
	opt("client_name", env->client_name);
	opt("client_addr", env->client_addr);
	opt("helo", env->helo);
	opt("auth_user", env->auth_user);
	opt("envid", env->envid);
	printf("smtputf8=%d\nbody=%d\nret=%d\n", env->smtputf8 ? 1 : 0,
	    (int)env->body, (int)env->ret);
	for (i = 0; i < env->nattrs; i++)
		printf("attr %s=%s\n", env->attrs[i].name, env->attrs[i].value);
	for (i = 0; i < queue_file_rcpt_count(qf); i++) {
		r = queue_file_rcpt(qf, i);
		printf("rcpt=%s", r->address);
		if (r->original != NULL)
			printf(" original=%s", r->original);
		if (r->orcpt != NULL)
			printf(" orcpt=%s;%s", r->orcpt_type != NULL ?
			    r->orcpt_type : "", r->orcpt);
		if (r->notify != 0)
			printf(" notify=%u", r->notify);
		printf(" state=%s\n", queue_rcpt_state_str(r->state));
	}
	printf("content=%llu\n",
	    (unsigned long long)queue_file_content_length(qf));
	fflush(stdout);
	while ((n = queue_file_read_content(qf, buf, sizeof(buf), off)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
		off += (uint64_t)n;
	}
	if (n < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "qfcat: read error: %s\n", strerror(errno));
		return 1;
	}
	queue_file_close(&qf);
	return 0;
}
