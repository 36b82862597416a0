/* SPDX-License-Identifier: MIT */
/*
 * store_test - unit tests for the mail store
 *
 * Names and path safety, mailbox list operations, append/read byte for
 * byte, flags/keywords/modseq/UNCHANGEDSINCE, two sessions seeing each
 * other's changes through sync, expunge and compaction, copy/move,
 * rename/delete, delivery tokens, quota, and concurrent appends from
 * several processes. Crash tests are in store_crash_test.c, the 100,000
 * message measurements in store_perf_test.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "str.h"
#include "test.h"
#include "store/store.h"

static const char *root;

static struct store *
open_user(const char *user)
{
	const char *err = NULL;
	struct store *s = store_open(root, user, &err);

	if (s == NULL)
		printf("# store_open: %s\n", err);
	else
		store_set_fsync(s, false);
	return s;
}

static uint32_t
append_msg(struct store *s, const char *mbox, const char *data,
    uint32_t flags, const char *token)
{
	struct store_append_req req;
	struct store_append_result res;
	const char *err;

	memset(&req, 0, sizeof(req));
	req.mailbox = mbox;
	req.data = data;
	req.size = strlen(data);
	req.fd = -1;
	req.flags = flags;
	req.token = token;
	req.envelope = "(NIL \"subj\")";
	req.envelope_len = 12;
	if (store_append(s, &req, &res, &err) < 0) {
		printf("# append: %s\n", err);
		return 0;
	}
	return res.uid;
}

static void
test_names(void)
{
	const char *why;
	const char *err;
	struct store *s;
	static const char *bad[] = {
		"", "/", "/etc", "a/", "a//b", "..", "../x", "a/../b", "a/./b", ".",
		"a\nb", "a\rb", "tab\t", "x*", "%", "\xff", "\xc0\xaf", "\xed\xa0\x80",
		NULL
	};
	static const char *good[] = {
		"INBOX", "inbox", "Sent", "a/b/c", "Ärger", "日本語", "x.y", "..a",
		"a..", "with space", NULL
	};

	test_begin("user and mailbox names are allow-listed");
	TEST_ASSERT(store_user_ok("alice"));
	TEST_ASSERT(store_user_ok("a.b+c@example.org"));
	TEST_ASSERT(!store_user_ok(".."));
	TEST_ASSERT(!store_user_ok(".hidden"));
	TEST_ASSERT(!store_user_ok("a/b"));
	TEST_ASSERT(!store_user_ok(""));
	TEST_ASSERT(store_open(root, "../evil", &err) == NULL);
	for (size_t i = 0; bad[i] != NULL; i++)
		if (!TEST_ASSERT(!store_mailbox_name_ok(bad[i], &why)))
			printf("# accepted bad name %zu\n", i);
	for (size_t i = 0; good[i] != NULL; i++)
		if (!TEST_ASSERT(store_mailbox_name_ok(good[i], &why)))
			printf("# rejected good name %s: %s\n", good[i], why);
	{
		char *longname = xmalloc(600);

		memset(longname, 'a', 599);
		longname[599] = '\0';
		TEST_ASSERT(!store_mailbox_name_ok(longname, &why));
		free(longname);
	}
	s = open_user("names");
	TEST_ASSERT(s != NULL);
	for (size_t i = 0; bad[i] != NULL; i++) {
		TEST_ASSERT(store_mailbox_create(s, bad[i], 0, &err) < 0);
		TEST_ASSERT(store_error(s) == STORE_ERR_INVALID);
	}
	/* a traversal name that were a path would land here */
	{
		struct stat st;
		char *p = xasprintf("%s/x", root);

		TEST_ASSERT(stat(p, &st) < 0);
		free(p);
	}
	/* names never become paths: the mbox dir holds only numbers */
	TEST_ASSERT(store_mailbox_create(s, "..a/b", 0, &err) == 0);
	{
		char *p = xasprintf("%s/names/mbox", root);
		DIR *d = opendir(p);
		struct dirent *de;
		bool only_numbers = true;

		while (d != NULL && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
				only_numbers = false;
		}
		if (d != NULL)
			closedir(d);
		TEST_ASSERT(only_numbers);
		free(p);
	}
	store_free(&s);
	TEST_ASSERT(s == NULL);
	store_free(&s);
	test_end();
}

static bool
has_mailbox(struct store *s, const char *name, unsigned *attrs_r)
{
	struct store_mailbox_info *list;
	size_t n;
	const char *err;
	bool found = false;

	if (store_mailbox_list(s, &list, &n, &err) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0) {
			found = true;
			if (attrs_r != NULL)
				*attrs_r = list[i].attrs;
		}
	store_mailbox_list_free(&list, n);
	return found;
}

static void
test_mailbox_list(void)
{
	struct store *s = open_user("list");
	const char *err;
	struct store_mailbox_info *list;
	size_t n;
	unsigned attrs = 0;
	struct store_status st, st2;

	test_begin("create, defaults, special use, subscriptions, list");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	TEST_ASSERT(store_mailbox_list(s, &list, &n, &err) == 0);
	TEST_ASSERT(n == 6);
	TEST_ASSERT_STR(list[0].name, "INBOX");
	for (size_t i = 0; i < n; i++) {
		TEST_ASSERT(list[i].attrs & STORE_MBOX_SUBSCRIBED);
		TEST_ASSERT(list[i].uidvalidity != 0);
		if (strcmp(list[i].name, "Trash") == 0)
			TEST_ASSERT((list[i].attrs & STORE_MBOX_SPECIAL_USE) ==
			    STORE_MBOX_TRASH);
		if (strcmp(list[i].name, "Sent") == 0)
			TEST_ASSERT(list[i].attrs & STORE_MBOX_SENT);
	}
	store_mailbox_list_free(&list, n);
	TEST_ASSERT(list == NULL);

	TEST_ASSERT(store_mailbox_create(s, "Work/Projects/X", 0, &err) == 0);
	TEST_ASSERT(has_mailbox(s, "Work", &attrs));
	TEST_ASSERT(attrs & STORE_MBOX_HASCHILDREN);
	TEST_ASSERT(has_mailbox(s, "Work/Projects", NULL));
	TEST_ASSERT(store_mailbox_create(s, "Work", 0, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_EXISTS);
	TEST_ASSERT(store_mailbox_create(s, "inbox", 0, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_EXISTS);

	TEST_ASSERT(store_subscribe(s, "Nowhere", true, &err) == 0);
	TEST_ASSERT(has_mailbox(s, "Nowhere", &attrs));
	TEST_ASSERT(attrs & STORE_MBOX_NONEXISTENT);
	TEST_ASSERT(store_subscribe(s, "Nowhere", false, &err) == 0);
	TEST_ASSERT(!has_mailbox(s, "Nowhere", NULL));
	TEST_ASSERT(store_subscribe(s, "Work", true, &err) == 0);
	TEST_ASSERT(has_mailbox(s, "Work", &attrs) && (attrs & STORE_MBOX_SUBSCRIBED));
	TEST_ASSERT(store_mailbox_set_attrs(s, "Work", STORE_MBOX_ARCHIVE, &err) == 0);
	TEST_ASSERT(has_mailbox(s, "Work", &attrs) && (attrs & STORE_MBOX_ARCHIVE));

	/* UIDVALIDITY of a recreated mailbox is new */
	TEST_ASSERT(store_mailbox_status(s, "Work/Projects/X", &st, &err) == 0);
	TEST_ASSERT(store_mailbox_delete(s, "Work/Projects/X", &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "Work/Projects/X", &st2, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	TEST_ASSERT(store_mailbox_create(s, "Work/Projects/X", 0, &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "Work/Projects/X", &st2, &err) == 0);
	TEST_ASSERT(st2.uidvalidity > st.uidvalidity);
	TEST_ASSERT(st2.uidnext == 1 && st2.messages == 0);
	TEST_ASSERT(store_mailbox_delete(s, "INBOX", &err) < 0);
	TEST_ASSERT(store_mailbox_delete(s, "NoSuch", &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	store_free(&s);
	test_end();
}

static void
test_append_read(void)
{
	struct store *s = open_user("append");
	const char *err;
	struct store_mailbox *box;
	struct store_msg m;
	struct str *out = str_new(0, 0);
	struct store_append_req req;
	struct store_append_result res;
	char bin[1000];
	const char *kws[] = { "$Forwarded", "Work", NULL };
	uint32_t u1, u2, u3;
	struct store_status st;
	int fd, pfd;
	char *path;

	test_begin("append and read back byte for byte");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	u1 = append_msg(s, NULL, "Subject: one\r\n\r\nbody\r\n", 0, NULL);
	u2 = append_msg(s, "INBOX", "Subject: two\r\n\r\n", STORE_FLAG_SEEN, NULL);
	TEST_ASSERT(u1 == 1 && u2 == 2);
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 7);
	memset(&req, 0, sizeof(req));
	req.mailbox = "inbox";
	req.data = bin;
	req.size = sizeof(bin);
	req.fd = -1;
	req.flags = STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT;
	req.keywords = kws;
	req.internaldate = 1700000000;
	req.tz_minutes = -300;
	req.envelope = "ENV\0x";
	req.envelope_len = 5;
	req.bodystructure = "(\"text\" \"plain\")";
	req.bodystructure_len = 16;
	req.body = "B";
	req.body_len = 1;
	TEST_ASSERT(store_append(s, &req, &res, &err) == 0);
	u3 = res.uid;
	TEST_ASSERT(u3 == 3 && !res.duplicate);
	TEST_ASSERT_STR(res.mailbox, "INBOX");

	/* from an fd */
	path = xasprintf("%s/fdmsg", root);
	pfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	TEST_ASSERT(write(pfd, "From fd\r\n", 9) == 9);
	memset(&req, 0, sizeof(req));
	req.fd = pfd;
	TEST_ASSERT(store_append(s, &req, &res, &err) == 0 && res.uid == 4);
	close(pfd);
	free(path);

	box = store_mailbox_open(s, "INBOX", 0, &err);
	TEST_ASSERT(box != NULL);
	TEST_ASSERT(store_mailbox_count(box) == 4);
	store_msg_get(box, 3, &m);
	TEST_ASSERT(m.uid == 3 && m.size == sizeof(bin));
	TEST_ASSERT(m.flags == (STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT));
	TEST_ASSERT(m.internaldate == 1700000000 && m.tz_minutes == -300);
	TEST_ASSERT(store_keyword_count(box) == 2);
	TEST_ASSERT_STR(store_keyword_name(box, 0), "$Forwarded");
	TEST_ASSERT(m.keywords == 3);
	TEST_ASSERT(store_msg_read(box, 3, out, &err) == 0);
	TEST_ASSERT(str_len(out) == sizeof(bin) &&
	    memcmp(str_c(out), bin, sizeof(bin)) == 0);
	str_clear(out);
	TEST_ASSERT(store_msg_cached(box, 3, STORE_CACHE_ENVELOPE, out, &err) == 0);
	TEST_ASSERT(str_len(out) == 5 && memcmp(str_c(out), "ENV\0x", 5) == 0);
	str_clear(out);
	TEST_ASSERT(store_msg_cached(box, 3, STORE_CACHE_BODYSTRUCTURE, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "(\"text\" \"plain\")");
	str_clear(out);
	TEST_ASSERT(store_msg_cached(box, 3, STORE_CACHE_BODY, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "B");
	str_clear(out);
	TEST_ASSERT(store_msg_cached(box, 1, STORE_CACHE_BODY, out, &err) == 0);
	TEST_ASSERT(str_len(out) == 0);
	str_clear(out);
	fd = store_msg_open(box, 1, &err);
	TEST_ASSERT(fd >= 0);
	{
		char buf[64];
		ssize_t n = read(fd, buf, sizeof(buf));

		TEST_ASSERT(n == 22 && memcmp(buf, "Subject: one\r\n\r\nbody\r\n", 22) == 0);
		close(fd);
	}
	TEST_ASSERT(store_msg_read(box, 4, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "From fd\r\n");
	TEST_ASSERT(store_seq_by_uid(box, 2) == 2);
	TEST_ASSERT(store_seq_by_uid(box, 99) == 0);
	{
		uint32_t a, b;

		TEST_ASSERT(store_seq_range_by_uid(box, 2, UINT32_MAX, &a, &b) && a == 2 && b == 4);
		TEST_ASSERT(!store_seq_range_by_uid(box, 5, 10, &a, &b));
	}
	store_mailbox_status_get(box, &st);
	TEST_ASSERT(st.messages == 4 && st.uidnext == 5 && st.unseen == 3);
	store_mailbox_close(&box);
	TEST_ASSERT(box == NULL);
	TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0);
	TEST_ASSERT(st.messages == 4 && st.uidnext == 5 && st.unseen == 3);
	TEST_ASSERT(st.size == 22 + 16 + sizeof(bin) + 9);
	TEST_ASSERT(st.highestmodseq >= 5);

	/* bad requests */
	memset(&req, 0, sizeof(req));
	req.fd = -1;
	req.mailbox = "NoSuchBox";
	TEST_ASSERT(store_append(s, &req, &res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	req.mailbox = NULL;
	req.flags = 0x100;
	TEST_ASSERT(store_append(s, &req, &res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_INVALID);
	req.flags = 0;
	req.token = "has space";
	TEST_ASSERT(store_append(s, &req, &res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_INVALID);
	str_free(&out);
	store_free(&s);
	test_end();
}

static void
test_flags(void)
{
	struct store *s = open_user("flags");
	const char *err;
	struct store_mailbox *box, *ro;
	struct store_msg m1, m2;
	struct store_uids failed = { NULL, 0, 0 };
	uint32_t uids[3] = { 1, 2, 3 };
	unsigned kw;
	uint64_t ms;

	test_begin("flags, keywords, modseq, UNCHANGEDSINCE");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	for (int i = 0; i < 3; i++)
		append_msg(s, NULL, "x\r\n", 0, NULL);
	box = store_mailbox_open(s, "INBOX", 0, &err);
	store_msg_get(box, 1, &m1);
	ms = m1.modseq;
	TEST_ASSERT(store_update_flags(box, uids, 2, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, 0, 0, NULL, &err) == 0);
	store_msg_get(box, 1, &m1);
	store_msg_get(box, 2, &m2);
	TEST_ASSERT(m1.flags == STORE_FLAG_SEEN && m2.flags == STORE_FLAG_SEEN);
	TEST_ASSERT(m1.modseq > ms && m2.modseq > m1.modseq);
	/* no change, no new modseq */
	ms = m2.modseq;
	TEST_ASSERT(store_update_flags(box, uids, 2, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, 0, 0, NULL, &err) == 0);
	store_msg_get(box, 2, &m2);
	TEST_ASSERT(m2.modseq == ms);
	/* keywords */
	TEST_ASSERT(store_keyword_lookup(box, "Junk", false, &kw, &err) < 0);
	TEST_ASSERT(store_keyword_lookup(box, "Junk", true, &kw, &err) == 0 && kw == 0);
	TEST_ASSERT(store_keyword_lookup(box, "junk", false, &kw, &err) == 0 && kw == 0);
	TEST_ASSERT(store_keyword_lookup(box, "\\Seen", true, &kw, &err) < 0);
	TEST_ASSERT(store_update_flags(box, uids + 2, 1, STORE_FLAGS_REPLACE,
	    STORE_FLAG_ANSWERED, 1, 0, NULL, &err) == 0);
	store_msg_get(box, 3, &m1);
	TEST_ASSERT(m1.flags == STORE_FLAG_ANSWERED && m1.keywords == 1);
	TEST_ASSERT(store_update_flags(box, uids + 2, 1, STORE_FLAGS_REPLACE,
	    0, 2, 0, NULL, &err) < 0);	/* unknown keyword bit */
	/* UNCHANGEDSINCE: msg 1 changed after ms0, msg 3 not */
	store_msg_get(box, 1, &m1);
	TEST_ASSERT(store_update_flags(box, uids, 3, STORE_FLAGS_REMOVE,
	    STORE_FLAG_SEEN | STORE_FLAG_ANSWERED, 0, m1.modseq - 1, &failed, &err) == 0);
	TEST_ASSERT(failed.count >= 1 && failed.uids[0] == 1);
	store_msg_get(box, 1, &m1);
	TEST_ASSERT(m1.flags == STORE_FLAG_SEEN);
	store_uids_clear(&failed);
	/* 64 keywords and no more */
	for (int i = 1; i < 64; i++) {
		char name[16];

		snprintf(name, sizeof(name), "kw%d", i);
		TEST_ASSERT(store_keyword_lookup(box, name, true, &kw, &err) == 0 &&
		    kw == (unsigned)i);
	}
	TEST_ASSERT(store_keyword_lookup(box, "one-too-many", true, &kw, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_LIMIT);
	TEST_ASSERT(store_update_flags(box, uids, 1, STORE_FLAGS_ADD, 0,
	    1ull << 63, 0, NULL, &err) == 0);
	store_msg_get(box, 1, &m1);
	TEST_ASSERT(m1.keywords == 1ull << 63);
	/* read-only handles cannot write */
	ro = store_mailbox_open(s, "INBOX", STORE_OPEN_READONLY, &err);
	TEST_ASSERT(ro != NULL);
	TEST_ASSERT(store_keyword_count(ro) == 64);
	TEST_ASSERT(store_update_flags(ro, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, 0, 0, NULL, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_READONLY);
	TEST_ASSERT(store_expunge(ro, NULL, 0, NULL, &err) < 0);
	store_mailbox_close(&ro);
	store_mailbox_close(&box);
	store_free(&s);
	test_end();
}

static void
test_sync(void)
{
	struct store *s1 = open_user("sync"), *s2 = open_user("sync");
	const char *err;
	struct store_mailbox *a, *b;
	struct store_sync_result res;
	struct store_uids exp = { NULL, 0, 0 };
	uint32_t uids[5];
	struct store_msg m;
	uint64_t hms;

	test_begin("two sessions see appends, flags and expunges via sync");
	TEST_ASSERT(store_ensure_defaults(s1, &err) == 0);
	for (int i = 0; i < 5; i++)
		uids[i] = append_msg(s1, NULL, "m\r\n", 0, NULL);
	a = store_mailbox_open(s1, "INBOX", 0, &err);
	b = store_mailbox_open(s2, "INBOX", 0, &err);
	TEST_ASSERT(a != NULL && b != NULL);
	TEST_ASSERT(store_mailbox_count(a) == 5 && store_mailbox_count(b) == 5);

	/* nothing changed */
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.exists == 5 && res.expunged.count == 0 &&
	    res.changed.count == 0 && res.new_first_seq == 0);
	store_sync_result_free(&res);

	/* an append by "lmtpd", a flag change by a */
	append_msg(s2, NULL, "new\r\n", 0, NULL);
	TEST_ASSERT(store_update_flags(a, &uids[1], 1, STORE_FLAGS_ADD,
	    STORE_FLAG_FLAGGED, 0, 0, NULL, &err) == 0);
	TEST_ASSERT(store_mailbox_count(b) == 5);	/* views move only at sync */
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.exists == 6 && res.new_first_seq == 6);
	TEST_ASSERT(res.changed.count == 1 && res.changed.uids[0] == uids[1]);
	hms = res.highestmodseq;
	store_msg_get(b, 2, &m);
	TEST_ASSERT(m.flags == STORE_FLAG_FLAGGED && m.modseq == hms);
	store_sync_result_free(&res);

	/* expunge 2 and 4 from a; b learns seqs 2 then 3 (renumbered) */
	uint32_t ex[2] = { uids[1], uids[3] };
	TEST_ASSERT(store_expunge(a, ex, 2, &exp, &err) == 0);
	TEST_ASSERT(exp.count == 2);
	store_uids_clear(&exp);
	/* b keeps reading an expunged message from its view */
	store_msg_get(b, 2, &m);
	TEST_ASSERT(m.uid == uids[1] && m.expunged);
	TEST_ASSERT(store_mailbox_sync(b, STORE_SYNC_NO_EXPUNGE, &res, &err) == 0);
	TEST_ASSERT(res.expunged.count == 0 && res.exists == 6);
	store_sync_result_free(&res);
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.expunged.count == 2);
	TEST_ASSERT(res.expunged.uids[0] == uids[1] && res.expunge_seqs[0] == 2);
	TEST_ASSERT(res.expunged.uids[1] == uids[3] && res.expunge_seqs[1] == 3);
	TEST_ASSERT(res.exists == 4);
	TEST_ASSERT(res.highestmodseq > hms);
	store_sync_result_free(&res);
	TEST_ASSERT(store_msg_uid(b, 2) == uids[2]);
	TEST_ASSERT(store_seq_by_uid(b, uids[3]) == 0);

	/* QRESYNC helpers */
	TEST_ASSERT(store_expunged_since(b, hms, &exp, &err) == 0);
	TEST_ASSERT(exp.count == 2 && exp.uids[0] == uids[1]);
	store_uids_clear(&exp);
	store_changed_since(b, hms - 1, &exp);
	TEST_ASSERT(exp.count == 0);
	store_uids_clear(&exp);

	/* a's own expunge reaches a by sync too */
	TEST_ASSERT(store_mailbox_sync(a, 0, &res, &err) == 0);
	TEST_ASSERT(res.expunged.count == 2 && res.exists == 4);
	TEST_ASSERT(res.changed.count == 0);	/* its flag change was on an expunged one */
	store_sync_result_free(&res);

	/* pop3d-style: delete at QUIT = \Deleted then expunge all deleted */
	TEST_ASSERT(store_update_flags(a, &uids[0], 1, STORE_FLAGS_ADD,
	    STORE_FLAG_DELETED, 0, 0, NULL, &err) == 0);
	TEST_ASSERT(store_expunge(a, NULL, 0, &exp, &err) == 0);
	TEST_ASSERT(exp.count == 1 && exp.uids[0] == uids[0]);
	store_uids_clear(&exp);
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.expunged.count == 1 && res.expunge_seqs[0] == 1 &&
	    res.exists == 3);
	store_sync_result_free(&res);
	{
		int fd;

		/* a stale view's message: the file is gone */
		TEST_ASSERT(store_mailbox_sync(a, STORE_SYNC_NO_EXPUNGE, &res, &err) == 0);
		store_sync_result_free(&res);
		fd = store_msg_open(a, 1, &err);
		TEST_ASSERT(fd < 0 && store_error(s1) == STORE_ERR_EXPUNGED);
	}
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_free(&s1);
	store_free(&s2);
	test_end();
}

static void
test_compaction(void)
{
	struct store *s = open_user("compact");
	const char *err;
	struct store_mailbox *a, *b;
	struct store_sync_result res;
	struct store_uids del = { NULL, 0, 0 }, exp = { NULL, 0, 0 };
	struct store_status st;
	struct str *out = str_new(0, 0);
	unsigned kw;
	uint32_t last = 0;
	int n = 1200;

	test_begin("expunge with compaction; open views follow by UID");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	for (int i = 0; i < n; i++) {
		char msg[64];

		snprintf(msg, sizeof(msg), "Message %d\r\n", i + 1);
		last = append_msg(s, NULL, msg, 0, NULL);
	}
	TEST_ASSERT(last == (uint32_t)n);
	a = store_mailbox_open(s, "INBOX", 0, &err);
	b = store_mailbox_open(s, "INBOX", STORE_OPEN_READONLY, &err);
	TEST_ASSERT(store_keyword_lookup(a, "Keep", true, &kw, &err) == 0);
	{
		uint32_t u = 7;

		TEST_ASSERT(store_update_flags(a, &u, 1, STORE_FLAGS_ADD,
		    STORE_FLAG_SEEN, 1ull << kw, 0, NULL, &err) == 0);
	}
	/* expunge 1..1001 except 7: triggers compaction (>= 1000 and > 1/4) */
	for (uint32_t u = 1; u <= 1001; u++)
		if (u != 7)
			store_uids_add(&del, u);
	TEST_ASSERT(store_expunge(a, del.uids, del.count, NULL, &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0);
	TEST_ASSERT(st.messages == (uint32_t)n - 1000);
	TEST_ASSERT(st.uidnext == (uint32_t)n + 1);
	{
		char *p = xasprintf("%s/compact/mbox", root);
		struct stat sb;
		int files = 0;
		DIR *d;
		struct dirent *de;
		char *md;

		/* INBOX is the first mailbox created: id 1 */
		md = xasprintf("%s/1/msg", p);
		d = opendir(md);
		while (d != NULL && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				files++;
		if (d != NULL)
			closedir(d);
		TEST_ASSERT(files == n - 1000);
		free(md);
		md = xasprintf("%s/1/index", p);
		TEST_ASSERT(stat(md, &sb) == 0 &&
		    sb.st_size == 8192 + 64 * (n - 1000));
		free(md);
		free(p);
	}
	/* b (read-only, old files) syncs across the compaction */
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.expunged.count == 1000);
	TEST_ASSERT(res.expunge_seqs[0] == 1 && res.expunge_seqs[5] == 1 &&
	    res.expunge_seqs[6] == 2 && res.expunge_seqs[999] == 2);
	TEST_ASSERT(res.exists == (uint32_t)n - 1000);
	TEST_ASSERT(res.changed.count == 1 && res.changed.uids[0] == 7);
	store_sync_result_free(&res);
	TEST_ASSERT(store_msg_uid(b, 1) == 7);
	TEST_ASSERT(store_msg_read(b, 2, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "Message 1002\r\n");
	{
		struct store_msg m;

		store_msg_get(b, 1, &m);
		TEST_ASSERT(m.flags == STORE_FLAG_SEEN && m.keywords == (1ull << kw));
		TEST_ASSERT(store_keyword_count(b) == 1);
		TEST_ASSERT_STR(store_keyword_name(b, 0), "Keep");
	}
	/* tombstones survive compaction */
	TEST_ASSERT(store_expunged_since(b, 0, &exp, &err) == 0);
	TEST_ASSERT(exp.count == 1000);
	store_uids_clear(&exp);
	/* appends after compaction keep counting */
	TEST_ASSERT(append_msg(s, NULL, "after\r\n", 0, NULL) == (uint32_t)n + 1);
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.exists == (uint32_t)n - 999 && res.new_first_seq == (uint32_t)n - 999);
	store_sync_result_free(&res);
	/* a (the compacting session) syncs too */
	TEST_ASSERT(store_mailbox_sync(a, 0, &res, &err) == 0);
	TEST_ASSERT(res.exists == (uint32_t)n - 999 && res.expunged.count == 1000);
	store_sync_result_free(&res);
	/* explicit compaction with nothing to do */
	TEST_ASSERT(store_mailbox_compact(a, &err) == 0);
	TEST_ASSERT(store_mailbox_sync(b, 0, &res, &err) == 0);
	TEST_ASSERT(res.exists == (uint32_t)n - 999 && res.expunged.count == 0 &&
	    res.changed.count == 0);
	store_sync_result_free(&res);
	store_uids_clear(&del);
	str_free(&out);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_free(&s);
	test_end();
}

static void
test_copy_move(void)
{
	struct store *s = open_user("copy");
	const char *err;
	struct store_mailbox *in, *arch;
	struct store_uids su = { NULL, 0, 0 }, du = { NULL, 0, 0 };
	uint32_t uids[3], uv = 0;
	struct str *out = str_new(0, 0);
	struct store_msg m;
	unsigned kw;
	struct stat a, b;
	char *pa, *pb;

	test_begin("copy with hard links, move");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	uids[0] = append_msg(s, NULL, "one\r\n", STORE_FLAG_SEEN, NULL);
	uids[1] = append_msg(s, NULL, "two\r\n", 0, NULL);
	uids[2] = append_msg(s, NULL, "three\r\n", 0, NULL);
	in = store_mailbox_open(s, "INBOX", 0, &err);
	TEST_ASSERT(store_keyword_lookup(in, "Important", true, &kw, &err) == 0);
	TEST_ASSERT(store_update_flags(in, &uids[0], 1, STORE_FLAGS_ADD, 0,
	    1ull << kw, 0, NULL, &err) == 0);
	TEST_ASSERT(store_copy(in, uids, 2, "Archive", false, &su, &du, &uv, &err) == 0);
	TEST_ASSERT(su.count == 2 && du.count == 2 && du.uids[0] == 1 && uv != 0);
	arch = store_mailbox_open(s, "Archive", 0, &err);
	TEST_ASSERT(store_mailbox_count(arch) == 2);
	store_msg_get(arch, 1, &m);
	TEST_ASSERT(m.flags == STORE_FLAG_SEEN);
	TEST_ASSERT(m.keywords != 0 &&
	    strcmp(store_keyword_name(arch, (unsigned)__builtin_ctzll(m.keywords)),
		"Important") == 0);
	TEST_ASSERT(store_msg_read(arch, 2, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "two\r\n");
	str_clear(out);
	TEST_ASSERT(store_msg_cached(arch, 1, STORE_CACHE_ENVELOPE, out, &err) == 0);
	TEST_ASSERT_STR(str_c(out), "(NIL \"subj\")");
	pa = xasprintf("%s/copy/mbox/1/msg/1", root);
	pb = xasprintf("%s/copy/mbox/6/msg/1", root);	/* Archive is the 6th */
	TEST_ASSERT(stat(pa, &a) == 0 && stat(pb, &b) == 0 && a.st_ino == b.st_ino);
	free(pa);
	free(pb);
	store_uids_clear(&su);
	store_uids_clear(&du);
	/* move: gone from the source */
	TEST_ASSERT(store_copy(in, &uids[2], 1, "Trash", true, &su, &du, NULL, &err) == 0);
	TEST_ASSERT(su.count == 1 && du.count == 1);
	{
		struct store_sync_result res;

		TEST_ASSERT(store_mailbox_sync(in, 0, &res, &err) == 0);
		TEST_ASSERT(res.expunged.count == 1 && res.exists == 2);
		store_sync_result_free(&res);
	}
	TEST_ASSERT(store_copy(in, uids, 1, "NoSuch", false, NULL, NULL, NULL, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	TEST_ASSERT(store_copy(in, uids, 1, "INBOX", false, NULL, NULL, NULL, &err) < 0);
	store_uids_clear(&su);
	store_uids_clear(&du);
	str_free(&out);
	store_mailbox_close(&in);
	store_mailbox_close(&arch);
	store_free(&s);
	test_end();
}

static void
test_rename_delete(void)
{
	struct store *s = open_user("rename");
	const char *err;
	struct store_mailbox *box;
	struct store_sync_result res;
	struct store_status st;

	test_begin("rename (with children, INBOX) and delete");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	TEST_ASSERT(store_mailbox_create(s, "A/B", 0, &err) == 0);
	append_msg(s, "A/B", "in b\r\n", 0, NULL);
	box = store_mailbox_open(s, "A/B", 0, &err);
	TEST_ASSERT(store_mailbox_rename(s, "A", "C/D", &err) == 0);
	TEST_ASSERT(!has_mailbox(s, "A", NULL) && !has_mailbox(s, "A/B", NULL));
	TEST_ASSERT(has_mailbox(s, "C", NULL) && has_mailbox(s, "C/D", NULL) &&
	    has_mailbox(s, "C/D/B", NULL));
	TEST_ASSERT(store_mailbox_status(s, "C/D/B", &st, &err) == 0 && st.messages == 1);
	/* an open session is unaffected by a rename */
	append_msg(s, "C/D/B", "second\r\n", 0, NULL);
	TEST_ASSERT(store_mailbox_sync(box, 0, &res, &err) == 0 && res.exists == 2);
	store_sync_result_free(&res);
	TEST_ASSERT(store_mailbox_rename(s, "C", "Sent", &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_EXISTS);
	TEST_ASSERT(store_mailbox_rename(s, "C", "C/inside", &err) < 0);
	TEST_ASSERT(store_mailbox_rename(s, "Nope", "X", &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	TEST_ASSERT(store_mailbox_rename(s, "C", "../../etc", &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_INVALID);
	/* delete while open: the session learns at sync */
	TEST_ASSERT(store_mailbox_delete(s, "C/D/B", &err) == 0);
	TEST_ASSERT(store_mailbox_sync(box, 0, &res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	store_mailbox_close(&box);
	TEST_ASSERT(!has_mailbox(s, "C/D/B", NULL));
	TEST_ASSERT(store_mailbox_open(s, "C/D/B", 0, &err) == NULL);
	/* INBOX rename moves the messages, leaves an empty INBOX */
	append_msg(s, NULL, "inbox msg\r\n", 0, NULL);
	TEST_ASSERT(store_mailbox_rename(s, "inbox", "Old", &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "Old", &st, &err) == 0 && st.messages == 1);
	TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0 && st.messages == 0);
	TEST_ASSERT(append_msg(s, NULL, "new inbox\r\n", 0, NULL) == 1);
	store_free(&s);
	test_end();
}

static void
test_tokens(void)
{
	struct store *s = open_user("tokens");
	const char *err;
	struct store_append_result res;
	struct store_mailbox *box;
	struct store_status st;
	uint32_t u1, u2;

	test_begin("delivery token: a retried delivery is not stored twice");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	u1 = append_msg(s, NULL, "tok\r\n", 0, "Q1234567890ABCDEFG/0");
	u2 = append_msg(s, NULL, "tok\r\n", 0, "Q1234567890ABCDEFG/0");
	TEST_ASSERT(u1 == 1 && u2 == 1);
	TEST_ASSERT(append_msg(s, NULL, "tok\r\n", 0, "Q1234567890ABCDEFG/1") == 2);
	TEST_ASSERT(store_token_lookup(s, "Q1234567890ABCDEFG/0", &res, &err) == 1);
	TEST_ASSERT(res.duplicate && res.uid == 1);
	TEST_ASSERT_STR(res.mailbox, "INBOX");
	TEST_ASSERT(store_token_lookup(s, "nope/0", &res, &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0 && st.messages == 2);
	/* into another mailbox, then expunged: still a duplicate */
	TEST_ASSERT(append_msg(s, "Junk", "spam\r\n", 0, "Q2/0") == 1);
	box = store_mailbox_open(s, "Junk", 0, &err);
	{
		uint32_t u = 1;

		TEST_ASSERT(store_expunge(box, &u, 1, NULL, &err) == 0);
	}
	TEST_ASSERT(append_msg(s, NULL, "spam\r\n", 0, "Q2/0") == 1);
	TEST_ASSERT(store_token_lookup(s, "Q2/0", &res, &err) == 1);
	TEST_ASSERT_STR(res.mailbox, "Junk");
	/* and after compaction (the tombstone carries the token hash) */
	TEST_ASSERT(store_mailbox_compact(box, &err) == 0);
	TEST_ASSERT(store_token_lookup(s, "Q2/0", &res, &err) == 1);
	store_mailbox_close(&box);
	TEST_ASSERT(store_mailbox_status(s, "INBOX", &st, &err) == 0 && st.messages == 2);
	store_free(&s);
	test_end();
}

static void
test_quota(void)
{
	struct store *s = open_user("quota");
	const char *err;
	struct store_quota q;
	struct store_append_req req;
	struct store_append_result res;

	test_begin("quota from index headers; append checks limits");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	append_msg(s, NULL, "12345\r\n", 0, NULL);
	append_msg(s, "Sent", "123\r\n", 0, NULL);
	TEST_ASSERT(store_quota_get(s, &q, &err) == 0);
	TEST_ASSERT(q.bytes == 12 && q.messages == 2);
	TEST_ASSERT(store_quota_check(s, 100, 0, 88, 1, &err) == 0);
	TEST_ASSERT(store_quota_check(s, 100, 0, 89, 1, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_QUOTA);
	TEST_ASSERT(store_quota_check(s, 0, 2, 1, 1, &err) < 0);
	memset(&req, 0, sizeof(req));
	req.fd = -1;
	req.data = "0123456789";
	req.size = 10;
	req.quota_bytes = 20;
	TEST_ASSERT(store_append(s, &req, &res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_QUOTA);
	req.quota_bytes = 22;
	TEST_ASSERT(store_append(s, &req, &res, &err) == 0);
	TEST_ASSERT(store_quota_get(s, &q, &err) == 0 && q.bytes == 22 && q.messages == 3);
	store_free(&s);
	test_end();
}

/* sscanf_free_parse - "proc P msg I\r\n" */
static bool
sscanf_free_parse(const char *s, int *p_r, int *i_r)
{
	char *end;

	if (strncmp(s, "proc ", 5) != 0)
		return false;
	*p_r = (int)strtol(s + 5, &end, 10);
	if (strncmp(end, " msg ", 5) != 0)
		return false;
	*i_r = (int)strtol(end + 5, &end, 10);
	return strcmp(end, "\r\n") == 0;
}

static void
test_concurrent(void)
{
	struct store *s = open_user("concurrent");
	const char *err;
	struct store_mailbox *box;
	struct str *out = str_new(0, 0);
	enum { PROCS = 6, EACH = 40 };
	pid_t pids[PROCS];
	int ok = 1;
	bool seen[PROCS][EACH];

	test_begin("concurrent appends from several processes");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			struct store *cs = open_user("concurrent");
			struct store_mailbox *cb = store_mailbox_open(cs, "INBOX", 0, &err);
			int bad = 0;

			for (int i = 0; i < EACH; i++) {
				char msg[64];
				char tok[32];

				snprintf(msg, sizeof(msg), "proc %d msg %d\r\n", p, i);
				snprintf(tok, sizeof(tok), "T%d/%d", p, i);
				if (append_msg(cs, NULL, msg, 0, i % 2 ? tok : NULL) == 0)
					bad = 1;
				/* and some flag traffic from a session */
				if (cb != NULL && i % 5 == 0) {
					struct store_sync_result res;
					uint32_t u = (uint32_t)(i + 1);

					(void)store_update_flags(cb, &u, 1,
					    STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0,
					    NULL, &err);
					if (store_mailbox_sync(cb, 0, &res, &err) < 0)
						bad = 1;
					store_sync_result_free(&res);
				}
			}
			store_mailbox_close(&cb);
			store_free(&cs);
			_exit(bad);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		waitpid(pids[p], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ok = 0;
	}
	TEST_ASSERT(ok);
	box = store_mailbox_open(s, "INBOX", 0, &err);
	TEST_ASSERT(box != NULL && store_mailbox_count(box) == PROCS * EACH);
	memset(seen, 0, sizeof(seen));
	for (uint32_t seq = 1; box != NULL && seq <= store_mailbox_count(box); seq++) {
		int p, i;

		TEST_ASSERT(store_msg_uid(box, seq) == seq);
		str_clear(out);
		if (store_msg_read(box, seq, out, &err) == 0 &&
		    sscanf_free_parse(str_c(out), &p, &i) &&
		    p >= 0 && p < PROCS && i >= 0 && i < EACH) {
			TEST_ASSERT(!seen[p][i]);
			seen[p][i] = true;
		} else
			(void)TEST_ASSERT(!"unreadable message");
	}
	for (int p = 0; p < PROCS; p++)
		for (int i = 0; i < EACH; i++)
			TEST_ASSERT(seen[p][i]);
	str_free(&out);
	store_mailbox_close(&box);
	store_free(&s);
	test_end();
}

static void
test_append_multi(void)
{
	struct store *s = open_user("multi");
	struct store_append_req reqs[3];
	struct store_append_result res[3];
	struct store_mailbox *box;
	struct store_msg m;
	struct str *out = str_new(0, 0);
	const char *kw[] = { "Multi", NULL }, *badkw[] = { "bad kw", NULL };
	const char *kw2[] = { "Other", "Multi", NULL };
	const char *err, *texts[3] = { "Subject: a\r\n\r\n1\r\n",
	    "Subject: b\r\n\r\n22\r\n", "Subject: c\r\n\r\n333\r\n" };
	size_t i;

	test_begin("append_multi: all or none, consecutive UIDs");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	TEST_ASSERT(append_msg(s, NULL, "Subject: first\r\n\r\n", 0, NULL) == 1);
	memset(reqs, 0, sizeof(reqs));
	for (i = 0; i < 3; i++) {
		reqs[i].data = texts[i];
		reqs[i].size = strlen(texts[i]);
		reqs[i].fd = -1;
	}
	reqs[0].mailbox = "INBOX";
	reqs[1].flags = STORE_FLAG_SEEN;
	reqs[2].keywords = kw;
	/* an invalid third request: nothing is stored */
	reqs[2].keywords = badkw;
	TEST_ASSERT(store_append_multi(s, reqs, 3, res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_INVALID);
	/* over quota only as a whole: nothing is stored */
	reqs[2].keywords = kw;
	reqs[0].quota_messages = 3;
	TEST_ASSERT(store_append_multi(s, reqs, 3, res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_QUOTA);
	/* tokens belong to single deliveries */
	reqs[0].quota_messages = 0;
	reqs[1].token = "Q1/0";
	TEST_ASSERT(store_append_multi(s, reqs, 3, res, &err) < 0);
	reqs[1].token = NULL;
	/* a missing mailbox */
	reqs[0].mailbox = "Nope";
	TEST_ASSERT(store_append_multi(s, reqs, 3, res, &err) < 0);
	TEST_ASSERT(store_error(s) == STORE_ERR_NOTFOUND);
	reqs[0].mailbox = "INBOX";
	reqs[1].keywords = kw2;	/* new keywords in two messages of one commit */
	box = store_mailbox_open(s, "INBOX", 0, &err);
	TEST_ASSERT(box != NULL && store_mailbox_count(box) == 1);
	store_mailbox_close(&box);

	TEST_ASSERT(store_append_multi(s, reqs, 3, res, &err) == 0);
	TEST_ASSERT(res[0].uid == 2 && res[1].uid == 3 && res[2].uid == 4);
	TEST_ASSERT(res[0].modseq < res[1].modseq && res[1].modseq < res[2].modseq);
	TEST_ASSERT(res[2].uidvalidity == res[0].uidvalidity);
	TEST_ASSERT_STR(res[1].mailbox, "INBOX");
	box = store_mailbox_open(s, "INBOX", 0, &err);
	TEST_ASSERT(box != NULL && store_mailbox_count(box) == 4);
	for (i = 0; box != NULL && i < 3; i++) {
		store_msg_get(box, (uint32_t)i + 2, &m);
		str_clear(out);
		TEST_ASSERT(store_msg_read(box, (uint32_t)i + 2, out, &err) == 0);
		TEST_ASSERT_STR(str_c(out), texts[i]);
		TEST_ASSERT(m.modseq == res[i].modseq);
		if (i == 1)
			TEST_ASSERT(m.flags == STORE_FLAG_SEEN && m.keywords == 3);
		if (i == 2)
			TEST_ASSERT(m.keywords == 2);
	}
	TEST_ASSERT(box != NULL && store_keyword_count(box) == 2);
	if (box != NULL && store_keyword_count(box) == 2) {
		TEST_ASSERT_STR(store_keyword_name(box, 0), "Other");
		TEST_ASSERT_STR(store_keyword_name(box, 1), "Multi");
	}
	store_mailbox_close(&box);
	/* the failed attempts left no orphans to fill these UIDs later */
	TEST_ASSERT(append_msg(s, NULL, "Subject: last\r\n\r\n", 0, NULL) == 5);
	test_end();
	str_free(&out);
	store_free(&s);
}

/* count_entries - entries of a directory (not . and ..), -1 if missing */
static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm_tree - rm -rf path (a crash that lost a directory) */
static int
rm_tree(const char *path)
{
	return nftw(path, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* write_file - replace path with len bytes of data */
static bool
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * test_lazy_mailboxes - a created mailbox has files only once opened; a
 * mailbox whose files a crash lost before its first commit is made
 * again with the same UIDVALIDITY; a committed log is never remade.
 * Ids: ensure_defaults on an empty list makes INBOX 1, Drafts 2, Sent 3,
 * Trash 4, Junk 5, Archive 6.
 */
static void
test_lazy_mailboxes(void)
{
	struct store *s = open_user("lazy");
	char *mdir = xasprintf("%s/lazy/mbox", root), *path;
	struct store_mailbox_info *list;
	struct store_status st, st2;
	struct store_mailbox *box;
	uint32_t uv_sent = 0;
	size_t n;
	const char *err;

	test_begin("mailboxes materialised on first open; unborn ones remade");
	TEST_ASSERT(store_ensure_defaults(s, &err) == 0);
	TEST_ASSERT(count_entries(mdir) == 0);
	TEST_ASSERT(store_mailbox_list(s, &list, &n, &err) == 0);
	TEST_ASSERT(n == 6);
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, "Sent") == 0)
			uv_sent = list[i].uidvalidity;
	store_mailbox_list_free(&list, n);
	TEST_ASSERT(uv_sent != 0);

	/* STATUS materialises, with the list's UIDVALIDITY */
	TEST_ASSERT(store_mailbox_status(s, "Sent", &st, &err) == 0);
	TEST_ASSERT(st.messages == 0 && st.uidnext == 1);
	TEST_ASSERT(st.uidvalidity == uv_sent);
	TEST_ASSERT(count_entries(mdir) == 1);
	path = xasprintf("%s/3/index", mdir);
	TEST_ASSERT(access(path, F_OK) == 0);
	free(path);

	/* the first delivery makes INBOX only */
	TEST_ASSERT(append_msg(s, "INBOX", "Subject: a\r\n\r\nA\r\n", 0, NULL) == 1);
	TEST_ASSERT(count_entries(mdir) == 2);

	/* lost log, short log, lost directory of an unborn mailbox */
	path = xasprintf("%s/3/log", mdir);
	TEST_ASSERT(unlink(path) == 0);
	TEST_ASSERT(store_mailbox_status(s, "Sent", &st2, &err) == 0);
	TEST_ASSERT(st2.uidvalidity == uv_sent && st2.messages == 0);
	TEST_ASSERT(write_file(path, "PLOG", 4));
	box = store_mailbox_open(s, "Sent", 0, &err);
	TEST_ASSERT(box != NULL);
	if (box != NULL) {
		store_mailbox_status_get(box, &st2);
		TEST_ASSERT(st2.uidvalidity == uv_sent);
		store_mailbox_close(&box);
	}
	free(path);
	path = xasprintf("%s/3", mdir);
	TEST_ASSERT(rm_tree(path) == 0);
	free(path);
	TEST_ASSERT(append_msg(s, "Sent", "Subject: s\r\n\r\nS\r\n", 0, NULL) == 1);
	TEST_ASSERT(store_mailbox_status(s, "Sent", &st2, &err) == 0);
	TEST_ASSERT(st2.uidvalidity == uv_sent && st2.messages == 1);

	/* msg/ and tmp/ lost while the log survived */
	path = xasprintf("%s/2/msg", mdir);
	TEST_ASSERT(store_mailbox_status(s, "Drafts", &st2, &err) == 0);
	TEST_ASSERT(rmdir(path) == 0);
	free(path);
	path = xasprintf("%s/2/tmp", mdir);
	TEST_ASSERT(rmdir(path) == 0);
	free(path);
	TEST_ASSERT(append_msg(s, "Drafts", "Subject: d\r\n\r\nD\r\n", 0, NULL) == 1);

	/* a log with commits and a bad HEADER is corruption, not remade */
	path = xasprintf("%s/1/log", mdir);
	{
		int fd = open(path, O_WRONLY);

		TEST_ASSERT(fd >= 0 && pwrite(fd, "XXXX", 4, 0) == 4);
		if (fd >= 0)
			close(fd);
	}
	free(path);
	path = xasprintf("%s/1/index", mdir);
	TEST_ASSERT(unlink(path) == 0);
	free(path);
	TEST_ASSERT(store_mailbox_open(s, "INBOX", 0, &err) == NULL);
	TEST_ASSERT(store_error(s) == STORE_ERR_CORRUPT);

	/* a deleted mailbox is gone, files and all */
	TEST_ASSERT(store_mailbox_delete(s, "Archive", &err) == 0);
	TEST_ASSERT(store_mailbox_status(s, "Archive", &st2, &err) < 0);
	path = xasprintf("%s/6", mdir);
	TEST_ASSERT(access(path, F_OK) < 0);
	free(path);
	free(mdir);
	store_free(&s);
	test_end();
}

/*
 * test_concurrent_first_open - processes opening the same new user's
 * mailboxes at once, each materialising them or finding another doing
 * it: every open and append succeeds (a failed open is final only after
 * the re-check under the user lock).
 */
static void
test_concurrent_first_open(void)
{
	static const char *const names[] = { "INBOX", "Drafts", "Sent",
	    "Trash", "Junk", "Archive" };
	int status, bad = 0;

	test_begin("concurrent first opens of a new user's mailboxes");
	for (int p = 0; p < 6; p++) {
		if (fork() != 0)
			continue;
		for (int u = 0; u < 30; u++) {
			char user[32];
			struct store *s;
			struct store_status st;
			const char *err;

			snprintf(user, sizeof(user), "fo%d", u);
			if ((s = open_user(user)) == NULL ||
			    store_ensure_defaults(s, &err) < 0)
				_exit(1);
			for (size_t i = 0; i < N_ELEMENTS(names); i++) {
				const char *nm = names[(i + (size_t)p) %
				    N_ELEMENTS(names)];

				if (store_mailbox_status(s, nm, &st, &err) < 0) {
					printf("# %s %s: %s\n", user, nm, err);
					_exit(2);
				}
			}
			if (append_msg(s, names[p], "Subject: c\r\n\r\nc\r\n",
			    0, NULL) == 0)
				_exit(3);
			store_free(&s);
		}
		_exit(0);
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	TEST_ASSERT(bad == 0);
	test_end();
}

int
main(void)
{
	root = test_tmpdir();
	test_names();
	test_mailbox_list();
	test_lazy_mailboxes();
	test_append_read();
	test_append_multi();
	test_flags();
	test_sync();
	test_compaction();
	test_copy_move();
	test_rename_delete();
	test_tokens();
	test_quota();
	test_concurrent();
	test_concurrent_first_open();
	return test_done();
}
