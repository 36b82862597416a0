/* SPDX-License-Identifier: MIT */
/*
 * storecat - read a user's mail store for integration tests
 *
 * DESCRIPTION
 *	storecat STORE_DIR USER mailboxes
 *	    one line per mailbox: NAME<TAB>ATTRS(hex)<TAB>UIDVALIDITY<TAB>MESSAGES
 *	storecat STORE_DIR USER ls MAILBOX
 *	    one line per message: UID<TAB>FLAGS(hex)<TAB>SIZE<TAB>KEYWORDS(,)
 *	storecat STORE_DIR USER cat MAILBOX UID
 *	    the message bytes exactly as stored (BODY[])
 *	storecat STORE_DIR USER cached MAILBOX UID envelope|body|bodystructure
 *	    the cached IMAP string
 *	storecat STORE_DIR USER quota
 *	    BYTES<TAB>MESSAGES
 *	storecat STORE_DIR USER create MAILBOX
 *	    create a mailbox (the one write, for test set-up)
 *
 *	Read-only but for create (mailboxes are opened with
 *	STORE_OPEN_READONLY). Run as
 *	root, it first becomes the owner of STORE_DIR, so that nothing it
 *	creates (a user's directory, lock files) is root's. Exit 0, 1 on a
 *	store error (message on stderr), 2 on usage.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "str.h"

#define EXIT_STORE	1
#define EXIT_USAGE	2

static int
usage(void)
{
	fprintf(stderr, "usage: storecat STORE_DIR USER mailboxes | ls MAILBOX | "
	    "cat MAILBOX UID | cached MAILBOX UID FIELD | quota | create MAILBOX\n");
	return EXIT_USAGE;
}

static int
fail(const char *what, const char *err)
{
	fprintf(stderr, "storecat: %s: %s\n", what, err);
	return EXIT_STORE;
}

static int
cmd_mailboxes(struct store *st)
{
	struct store_mailbox_info *list;
	struct store_status status;
	const char *err;
	size_t n, i;

	if (store_mailbox_list(st, &list, &n, &err) < 0)
		return fail("list", err);
	for (i = 0; i < n; i++) {
		memset(&status, 0, sizeof(status));
		if ((list[i].attrs & STORE_MBOX_NONEXISTENT) == 0 &&
		    store_mailbox_status(st, list[i].name, &status, &err) < 0)
			return fail(list[i].name, err);
		printf("%s\t%x\t%u\t%u\n", list[i].name, list[i].attrs,
		    list[i].uidvalidity, status.messages);
	}
	store_mailbox_list_free(&list, n);
	return 0;
}

static int
cmd_ls(struct store *st, const char *name)
{
	struct store_mailbox *box;
	struct store_msg m;
	const char *err;
	uint32_t seq, n;
	unsigned k;

	if ((box = store_mailbox_open(st, name, STORE_OPEN_READONLY, &err)) == NULL)
		return fail(name, err);
	n = store_mailbox_count(box);
	for (seq = 1; seq <= n; seq++) {
		const char *sep = "";

		store_msg_get(box, seq, &m);
		printf("%u\t%x\t%llu\t", m.uid, m.flags, (unsigned long long)m.size);
		for (k = 0; k < 64; k++)
			if ((m.keywords & (1ULL << k)) != 0) {
				printf("%s%s", sep, store_keyword_name(box, k));
				sep = ",";
			}
		printf("\n");
	}
	store_mailbox_close(&box);
	return 0;
}

static int
cmd_cat(struct store *st, const char *name, const char *uidarg,
    const char *field)
{
	struct store_mailbox *box;
	struct str *out = str_new(0, 0);
	const char *err;
	uint32_t seq;
	unsigned long uid;
	int r;

	if (!str_to_ulong(uidarg, strlen(uidarg), 0xffffffffUL, &uid))
		return usage();
	if ((box = store_mailbox_open(st, name, STORE_OPEN_READONLY, &err)) == NULL)
		return fail(name, err);
	if ((seq = store_seq_by_uid(box, (uint32_t)uid)) == 0) {
		store_mailbox_close(&box);
		return fail(uidarg, "no such UID");
	}
	if (field == NULL)
		r = store_msg_read(box, seq, out, &err);
	else if (strcmp(field, "envelope") == 0)
		r = store_msg_cached(box, seq, STORE_CACHE_ENVELOPE, out, &err);
	else if (strcmp(field, "body") == 0)
		r = store_msg_cached(box, seq, STORE_CACHE_BODY, out, &err);
	else if (strcmp(field, "bodystructure") == 0)
		r = store_msg_cached(box, seq, STORE_CACHE_BODYSTRUCTURE, out, &err);
	else {
		store_mailbox_close(&box);
		return usage();
	}
	if (r < 0) {
		store_mailbox_close(&box);
		return fail(uidarg, err);
	}
	if (fwrite(str_c(out), 1, str_len(out), stdout) != str_len(out))
		return fail("stdout", "write error");
	str_free(&out);
	store_mailbox_close(&box);
	return 0;
}

int
main(int argc, char **argv)
{
	struct store *st;
	struct store_quota q;
	const char *err;
	int rc;

	if (argc < 4)
		return usage();
	if (geteuid() == 0) {
		struct stat sb;

		if (stat(argv[1], &sb) < 0)
			return fail(argv[1], "cannot stat");
		if (setgroups(0, NULL) < 0 || setgid(sb.st_gid) < 0 ||
		    setuid(sb.st_uid) < 0)
			return fail(argv[1], "cannot become its owner");
	}
	if ((st = store_open(argv[1], argv[2], &err)) == NULL)
		return fail(argv[2], err);
	if (strcmp(argv[3], "mailboxes") == 0 && argc == 4)
		rc = cmd_mailboxes(st);
	else if (strcmp(argv[3], "ls") == 0 && argc == 5)
		rc = cmd_ls(st, argv[4]);
	else if (strcmp(argv[3], "cat") == 0 && argc == 6)
		rc = cmd_cat(st, argv[4], argv[5], NULL);
	else if (strcmp(argv[3], "cached") == 0 && argc == 7)
		rc = cmd_cat(st, argv[4], argv[5], argv[6]);
	else if (strcmp(argv[3], "quota") == 0 && argc == 4) {
		rc = store_quota_get(st, &q, &err) < 0 ? fail("quota", err) : 0;
		if (rc == 0)
			printf("%llu\t%llu\n", (unsigned long long)q.bytes,
			    (unsigned long long)q.messages);
	} else if (strcmp(argv[3], "create") == 0 && argc == 5) {
		rc = store_mailbox_create(st, argv[4], 0, &err) < 0 ?
		    fail(argv[4], err) : 0;
	} else
		rc = usage();
	store_free(&st);
	if (fflush(stdout) != 0)
		rc = EXIT_STORE;
	return rc;
}
