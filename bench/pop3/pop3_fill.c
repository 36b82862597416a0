/* SPDX-License-Identifier: MIT */
/*
 * pop3_fill - append the files MSGDIR/0000 .. MSGDIR/(COUNT-1) to
 * USER's INBOX in the store under STORE_DIR, through lib/store with
 * fsync off (building a benchmark fixture, not delivering mail: see
 * store_set_fsync). Run as root, it first becomes the owner of
 * STORE_DIR, so that what it creates belongs to the store owner.
 * Built and run by run.sh against libpostern.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "store/store.h"

int
main(int argc, char **argv)
{
	struct store_append_req req;
	struct store_append_result res;
	struct store *store;
	struct stat st;
	const char *err;
	char path[4096];
	long i, n;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: pop3_fill STORE_DIR USER MSGDIR COUNT\n");
		return 2;
	}
	if (stat(argv[1], &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	if (geteuid() == 0 && (setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)) {
		perror("setuid");
		return 1;
	}
	n = strtol(argv[4], NULL, 10);
	if ((store = store_open(argv[1], argv[2], &err)) == NULL) {
		fprintf(stderr, "pop3_fill: %s\n", err);
		return 1;
	}
	store_set_fsync(store, false);
	if (store_ensure_defaults(store, &err) < 0) {
		fprintf(stderr, "pop3_fill: %s\n", err);
		return 1;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%04ld", argv[3], i);
		if ((fd = open(path, O_RDONLY)) < 0) {
			perror(path);
			return 1;
		}
		memset(&req, 0, sizeof(req));
		req.fd = fd;
		if (store_append(store, &req, &res, &err) < 0) {
			fprintf(stderr, "pop3_fill: %s: %s\n", path, err);
			return 1;
		}
		close(fd);
	}
	store_free(&store);
	return 0;
}
