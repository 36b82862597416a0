/* SPDX-License-Identifier: MIT */
/*
 * mkusers - add COUNT users named by FORMAT (e.g. "user%04d") to a user
 * database, without passwords (they only receive mail): the benchmark's
 * 1,000 mailboxes without 1,000 password hashings. Built and run by
 * run.sh against build/libpostern.a.
 */
#include <stdio.h>
#include <stdlib.h>

#include "userdb.h"

int
main(int argc, char **argv)
{
	const char *err = NULL;
	char name[64];
	long i, n;

	if (argc != 4) {
		fprintf(stderr, "usage: mkusers DBPATH FORMAT COUNT\n");
		return 2;
	}
	n = strtol(argv[3], NULL, 10);
	for (i = 0; i < n; i++) {
		/* the format is the operator's own argument */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(name, sizeof(name), argv[2], (int)i);
#pragma GCC diagnostic pop
		if (userdb_add(argv[1], name, "", &err) < 0) {
			fprintf(stderr, "mkusers: %s: %s\n", name, err);
			return 1;
		}
	}
	return 0;
}
