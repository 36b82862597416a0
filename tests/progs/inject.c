/* SPDX-License-Identifier: MIT */
/*
 * inject - hand one message to cleanup (tests of qmgr and the queue)
 *
 *	inject [-s SOCKET] [-f SENDER] [-R FULL|HDRS] [-E ENVID]
 *	    [-N NEVER|SUCCESS,FAILURE,DELAY] [-O TYPE;ORCPT] [-b 8BITMIME|BINARYMIME]
 *	    [-H] RCPT... < message
 *
 * The message on standard input goes to cleanup as it is (the test gives
 * CRLF line ends); -N and -O apply to every recipient; -H commits into
 * hold/. Prints the queue ID; exits 0 only if cleanup said it is queued.
 * The socket defaults to $POSTERN_QUEUE/private/cleanup.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "cleanup_client.h"
#include "log.h"
#include "smtp_proto.h"
#include "str.h"

static unsigned
parse_notify(const char *s)
{
	unsigned bits = 0;
	char *copy = strdup(s), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "NEVER") == 0)
			bits |= SMTP_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			bits |= SMTP_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			bits |= SMTP_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			bits |= SMTP_NOTIFY_DELAY;
	}
	free(copy);
	return bits;
}

int
main(int argc, char **argv)
{
	struct queue_envelope env;
	struct queue_rcpt rcpt;
	struct cleanup_client *c;
	struct str *reason = str_new(64, 0), *sock = str_new(64, 0);
	const char *error = NULL, *orcpt = NULL;
	char *orcpt_type = NULL;
	unsigned flags = 0, notify = 0;
	char buf[65536];
	size_t n;
	int ch, i, rc = 1;

	log_init("inject");
	memset(&env, 0, sizeof(env));
	env.sender = "";
	env.protocol = "test";
	gettimeofday(&env.arrival, NULL);
	if (getenv("POSTERN_QUEUE") != NULL)
		str_printf(sock, "%s/private/cleanup", getenv("POSTERN_QUEUE"));
	while ((ch = getopt(argc, argv, "s:f:R:E:N:O:b:H")) != -1) {
		switch (ch) {
		case 's':
			str_set_cstr(sock, optarg);
			break;
		case 'f':
			env.sender = optarg;
			break;
		case 'R':
			env.ret = strcasecmp(optarg, "HDRS") == 0 ?
			    SMTP_RET_HDRS : SMTP_RET_FULL;
			break;
		case 'E':
			env.envid = optarg;
			break;
		case 'N':
			notify = parse_notify(optarg);
			break;
		case 'O': {
			char *semi = strchr(optarg, ';');

			if (semi == NULL)
				return 2;
			orcpt_type = strndup(optarg, (size_t)(semi - optarg));
			orcpt = semi + 1;
			break;
		}
		case 'b':
			env.body = strcasecmp(optarg, "BINARYMIME") == 0 ?
			    SMTP_BODY_BINARYMIME : SMTP_BODY_8BITMIME;
			break;
		case 'H':
			flags |= CLEANUP_FLAG_HOLD;
			break;
		default:
			fprintf(stderr, "usage: inject [-s SOCKET] [-f SENDER] "
			    "... RCPT... < message\n");
			return 2;
		}
	}
	if (optind >= argc || str_len(sock) == 0) {
		fprintf(stderr, "inject: no recipients or no socket\n");
		return 2;
	}
	c = cleanup_client_open(str_c(sock), flags, &error);
	if (c == NULL) {
		fprintf(stderr, "inject: %s\n", error);
		goto out;
	}
	if (cleanup_client_envelope(c, &env, &error) < 0)
		goto fail;
	for (i = optind; i < argc; i++) {
		memset(&rcpt, 0, sizeof(rcpt));
		rcpt.address = argv[i];
		rcpt.notify = notify;
		rcpt.orcpt_type = orcpt_type;
		rcpt.orcpt = orcpt;
		if (cleanup_client_rcpt(c, &rcpt, &error) < 0)
			goto fail;
	}
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		if (cleanup_client_content(c, buf, n, &error) < 0)
			goto fail;
	printf("%s\n", cleanup_client_id(c));
	if (cleanup_client_finish(&c, reason) != CLEANUP_OK) {
		fprintf(stderr, "inject: not queued: %s\n", str_c(reason));
		goto out;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "inject: %s\n", error);
	cleanup_client_abort(&c);
out:
	free(orcpt_type);
	str_free(&reason);
	str_free(&sock);
	return rc;
}
