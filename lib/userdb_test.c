/* SPDX-License-Identifier: MIT */
/* userdb_test - unit tests for userdb.c */
#include <sys/stat.h>
#include <sys/wait.h>

#include <db.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "test.h"
#include "userdb.h"

static char db_path[PATH_MAX];

/* list_cb - append "name," */
static void
list_cb(void *ctx, const char *name)
{
	struct str *out = ctx;

	(void)str_printf(out, "%s,", name);
}

static void
test_names(void)
{
	static const char *const good[] = {
		"a", "alice", "bob.smith", "x_y-z", "0day", "a.", "a-",
		"1234567890123456789012345678901234567890123456789012345678901234",
	};
	static const char *const bad[] = {
		"", ".hidden", "-opt", "Alice", "a/b", "..", "a b", "a@b",
		"a\nb", "\xc3\xa9t\xc3\xa9",
		"12345678901234567890123456789012345678901234567890123456789012345",
	};
	size_t i;

	test_begin("userdb_name_ok allow-list");
	for (i = 0; i < N_ELEMENTS(good); i++)
		TEST_ASSERT(userdb_name_ok(good[i]));
	for (i = 0; i < N_ELEMENTS(bad); i++)
		TEST_ASSERT(!userdb_name_ok(bad[i]));
	TEST_ASSERT(!userdb_name_ok(NULL));
	test_end();
}

/* rec - build a record from bytes */
static int
decode(const char *p, size_t len, struct userdb_user *u)
{
	return userdb_record_decode(p, len, u);
}

static void
test_record(void)
{
	struct userdb_user u, v;
	struct str *out = str_new(0, 0);

	test_begin("userdb record encode/decode, strict");
	memset(&u, 0, sizeof(u));
	u.password_hash = (char *)"$y$j9T$salt$hash";
	u.quota_bytes = 0x0102030405060708ull;
	TEST_ASSERT(userdb_record_encode(&u, out) == 0);
	TEST_ASSERT(str_len(out) == 1 + 5 + 16 + 5 + 8);
	TEST_ASSERT(decode(str_c(out), str_len(out), &v) == 0);
	TEST_ASSERT(v.name == NULL);
	TEST_ASSERT_STR(v.password_hash, "$y$j9T$salt$hash");
	TEST_ASSERT(v.quota_bytes == 0x0102030405060708ull);
	userdb_user_clear(&v);
	TEST_ASSERT(v.password_hash == NULL);

	/* Minimal: version + empty password field; quota absent = 0. */
	TEST_ASSERT(decode("\1\1\0\0\0\0", 6, &v) == 0);
	TEST_ASSERT_STR(v.password_hash, "");
	TEST_ASSERT(v.quota_bytes == 0);
	userdb_user_clear(&v);

	TEST_ASSERT(decode("", 0, &v) == -1);
	TEST_ASSERT(decode("\1", 1, &v) == -1);			/* no password */
	TEST_ASSERT(decode("\2\1\0\0\0\0", 6, &v) == -1);	/* version */
	TEST_ASSERT(decode("\1\1\0\0\0\0\0", 7, &v) == -1);	/* trailing */
	TEST_ASSERT(decode("\1\1\0\0\0", 5, &v) == -1);		/* short head */
	TEST_ASSERT(decode("\1\1\0\0\0\2x", 7, &v) == -1);	/* len > rest */
	TEST_ASSERT(decode("\1\1\xff\xff\xff\xffx", 7, &v) == -1);
	TEST_ASSERT(decode("\1\1\0\0\0\0\1\0\0\0\0", 11, &v) == -1); /* dup */
	TEST_ASSERT(decode("\1\2\0\0\0\10\0\0\0\0\0\0\0\1\1\0\0\0\0", 19,
	    &v) == -1);						/* order */
	TEST_ASSERT(decode("\1\1\0\0\0\0\3\0\0\0\0", 11, &v) == -1); /* tag */
	TEST_ASSERT(decode("\1\1\0\0\0\0\2\0\0\0\4\0\0\0\1", 15, &v) == -1);
	TEST_ASSERT(decode("\1\1\0\0\0\3a b", 9, &v) == -1);	/* space */
	TEST_ASSERT(decode("\1\1\0\0\0\3a\0b", 9, &v) == -1);	/* NUL */
	TEST_ASSERT(v.password_hash == NULL && v.quota_bytes == 0);

	u.password_hash = (char *)"has space";
	TEST_ASSERT(userdb_record_encode(&u, out) == -1);
	str_free(&out);
	test_end();
}

static void
test_crud(void)
{
	struct userdb_user user;
	struct userdb *db;
	struct str *names = str_new(0, 0);
	const char *error = NULL;
	char lock[PATH_MAX];
	struct stat st;

	test_begin("userdb add, lookup, verify");
	errno = 0;
	TEST_ASSERT(userdb_open(db_path, &error) == NULL && errno == ENOENT);
	TEST_ASSERT(error != NULL);
	TEST_ASSERT(userdb_add(db_path, "alice", "secret", &error) == 0);
	snprintf(lock, sizeof(lock), "%s/users.lock", test_tmpdir());
	TEST_ASSERT(access(lock, F_OK) == 0);
	TEST_ASSERT(stat(db_path, &st) == 0 && (st.st_mode & 0777) == 0640);
	db = userdb_open(db_path, &error);
	TEST_ASSERT(db != NULL);
	if (db == NULL) {
		test_end();
		return;
	}
	TEST_ASSERT(userdb_lookup(db, "alice", &user, &error) == 1);
	TEST_ASSERT_STR(user.name, "alice");
	TEST_ASSERT(user.password_hash[0] == '$');
	TEST_ASSERT(strstr(user.password_hash, "secret") == NULL);
	TEST_ASSERT(user.quota_bytes == 0);
	userdb_user_clear(&user);
	TEST_ASSERT(userdb_verify(db, "alice", "secret", &error) == 1);
	TEST_ASSERT(userdb_verify(db, "alice", "Secret", &error) == 0);
	TEST_ASSERT(userdb_verify(db, "alice", "", &error) == 0);
	TEST_ASSERT(userdb_verify(db, "alice", NULL, &error) == 0);
	TEST_ASSERT(userdb_verify(db, "nobody", "secret", &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "nobody", &user, &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "ALICE", &user, &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "../etc", &user, &error) == 0);
	test_end();

	test_begin("userdb duplicate add and bad names fail");
	error = NULL;
	TEST_ASSERT(userdb_add(db_path, "alice", "other", &error) == -1);
	TEST_ASSERT_STR(error, "user already exists");
	TEST_ASSERT(userdb_verify(db, "alice", "secret", &error) == 1);
	TEST_ASSERT(userdb_add(db_path, "Alice", "x", &error) == -1);
	TEST_ASSERT_STR(error, "invalid user name");
	TEST_ASSERT(userdb_add(db_path, "../x", "x", &error) == -1);
	TEST_ASSERT(userdb_add(db_path, "", "x", &error) == -1);
	TEST_ASSERT(userdb_set_password(db_path, ".x", "x", &error) == -1);
	TEST_ASSERT(userdb_delete(db_path, "-x", &error) == -1);
	test_end();

	test_begin("userdb set_password, delete, list (open reader sees changes)");
	TEST_ASSERT(userdb_add(db_path, "bob", "b0b", &error) == 0);
	TEST_ASSERT(userdb_add(db_path, "carol", NULL, &error) == 0);
	TEST_ASSERT(userdb_verify(db, "bob", "b0b", &error) == 1);
	TEST_ASSERT(userdb_verify(db, "carol", "", &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "carol", &user, &error) == 1);
	TEST_ASSERT_STR(user.password_hash, "");
	userdb_user_clear(&user);
	TEST_ASSERT(userdb_set_password(db_path, "alice", "new pass", &error) == 0);
	TEST_ASSERT(userdb_verify(db, "alice", "secret", &error) == 0);
	TEST_ASSERT(userdb_verify(db, "alice", "new pass", &error) == 1);
	error = NULL;
	TEST_ASSERT(userdb_set_password(db_path, "dave", "x", &error) == -1);
	TEST_ASSERT_STR(error, "no such user");
	TEST_ASSERT(userdb_list(db, list_cb, names, &error) == 0);
	TEST_ASSERT_STR(str_c(names), "alice,bob,carol,");
	TEST_ASSERT(userdb_delete(db_path, "bob", &error) == 0);
	TEST_ASSERT(userdb_delete(db_path, "bob", &error) == -1);
	TEST_ASSERT_STR(error, "no such user");
	TEST_ASSERT(userdb_lookup(db, "bob", &user, &error) == 0);
	TEST_ASSERT(userdb_verify(db, "bob", "b0b", &error) == 0);
	str_clear(names);
	TEST_ASSERT(userdb_list(db, list_cb, names, &error) == 0);
	TEST_ASSERT_STR(str_c(names), "alice,carol,");
	/* The mode of an existing file is kept. */
	TEST_ASSERT(chmod(db_path, 0600) == 0);
	TEST_ASSERT(userdb_add(db_path, "erin", "e", &error) == 0);
	TEST_ASSERT(stat(db_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	userdb_close(&db);
	TEST_ASSERT(db == NULL);
	userdb_close(&db);
	str_free(&names);
	test_end();
}

/* put_raw - store a raw value under key, in place (the test is the only user) */
static int
put_raw(const char *key, const void *val, size_t len)
{
	DB *db;
	DBT k, v;
	int ret;

	if (db_create(&db, NULL, 0) != 0)
		return -1;
	if ((ret = db->open(db, NULL, db_path, NULL, DB_BTREE, 0, 0)) == 0) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = (void *)(uintptr_t)key;
		k.size = (u_int32_t)strlen(key);
		v.data = (void *)(uintptr_t)val;
		v.size = (u_int32_t)len;
		ret = db->put(db, NULL, &k, &v, 0);
	}
	db->close(db, 0);
	return ret == 0 ? 0 : -1;
}

static void
test_corrupt(void)
{
	struct userdb_user user;
	struct userdb *db;
	struct str *names = str_new(0, 0);
	const char *error;

	test_begin("userdb corrupt record is an error, not a crash");
	TEST_ASSERT(put_raw("mallory", "\1\1\0\0\1\0xx", 8) == 0);
	TEST_ASSERT(put_raw("trudy", "", 0) == 0);
	db = userdb_open(db_path, &error);
	TEST_ASSERT(db != NULL);
	if (db == NULL) {
		test_end();
		return;
	}
	error = NULL;
	TEST_ASSERT(userdb_lookup(db, "mallory", &user, &error) == -1);
	TEST_ASSERT(error != NULL && strstr(error, "corrupt record") != NULL);
	TEST_ASSERT(user.name == NULL && user.password_hash == NULL);
	TEST_ASSERT(userdb_lookup(db, "trudy", &user, &error) == -1);
	TEST_ASSERT(userdb_verify(db, "mallory", "xx", &error) == -1);
	TEST_ASSERT(userdb_verify(db, "alice", "new pass", &error) == 1);
	TEST_ASSERT(userdb_set_password(db_path, "mallory", "x", &error) == -1);
	/* Deleting the broken record repairs the database. */
	TEST_ASSERT(userdb_delete(db_path, "mallory", &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "mallory", &user, &error) == 0);
	/* A name that is not allowed shows up as an error in list. */
	TEST_ASSERT(put_raw("Bad/Name", "\1\1\0\0\0\0", 6) == 0);
	TEST_ASSERT(userdb_list(db, list_cb, names, &error) == -1);
	TEST_ASSERT(userdb_delete(db_path, "trudy", &error) == 0);
	userdb_close(&db);
	str_free(&names);
	test_end();
}

static void
test_concurrent(void)
{
	enum { CHILDREN = 4, EACH = 3 };
	struct userdb *db;
	struct str *names = str_new(0, 0);
	const char *error;
	char name[32];
	pid_t pids[CHILDREN];
	int i, j, status, ok = 0;

	test_begin("userdb concurrent writers lose nothing");
	for (i = 0; i < CHILDREN; i++) {
		if ((pids[i] = fork()) == 0) {
			for (j = 0; j < EACH; j++) {
				snprintf(name, sizeof(name), "u%d-%d", i, j);
				if (userdb_add(db_path, name, NULL, &error) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (i = 0; i < CHILDREN; i++)
		if (waitpid(pids[i], &status, 0) == pids[i] &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
	TEST_ASSERT(ok == CHILDREN);
	db = userdb_open(db_path, &error);
	TEST_ASSERT(db != NULL);
	TEST_ASSERT(userdb_list(db, list_cb, names, &error) == -1); /* Bad/Name */
	for (i = 0; i < CHILDREN; i++)
		for (j = 0; j < EACH; j++) {
			struct userdb_user user;

			snprintf(name, sizeof(name), "u%d-%d", i, j);
			TEST_ASSERT(userdb_lookup(db, name, &user, &error) == 1);
			userdb_user_clear(&user);
		}
	userdb_close(&db);
	str_free(&names);
	test_end();
}

static void
test_alias_forward(void)
{
	struct userdb_user u;
	struct userdb *db;
	struct str *who = str_new(0, 0), *rec = str_new(0, 0);
	struct str *names = str_new(0, 0);
	const char *error;

	test_begin("userdb departmental alias, reverse index, forwarding");
	/* a database of its own: the earlier tests leave bad names behind */
	snprintf(db_path, sizeof(db_path), "%s/alias-users.db", test_tmpdir());
	TEST_ASSERT(userdb_add(db_path, "carol", "pw", &error) == 0);
	TEST_ASSERT(userdb_add(db_path, "dave", "pw", &error) == 0);
	TEST_ASSERT(userdb_set_alias(db_path, "carol", "C.Smith@Physics.Test",
	    &error) == 0);
	TEST_ASSERT(userdb_set_alias(db_path, "dave", "c.smith@physics.test",
	    &error) == -1 && errno == EEXIST);
	TEST_ASSERT(userdb_set_alias(db_path, "dave", "no-at-sign",
	    &error) == -1 && errno == EINVAL);
	TEST_ASSERT(userdb_set_alias(db_path, "nobody", "x@physics.test",
	    &error) == -1 && errno == ENOENT);
	TEST_ASSERT(userdb_set_forward(db_path, "carol", "carol@elsewhere.test",
	    true, &error) == 0);
	/* a password change keeps alias and forwarding */
	TEST_ASSERT(userdb_set_password(db_path, "carol", "pw2", &error) == 0);
	db = userdb_open(db_path, &error);
	TEST_ASSERT(db != NULL);
	TEST_ASSERT(userdb_lookup_alias(db, "C.SMITH@physics.test", who,
	    &error) == 1 && strcmp(str_c(who), "carol") == 0);
	TEST_ASSERT(userdb_lookup_alias(db, "other@physics.test", who,
	    &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "carol", &u, &error) == 1);
	TEST_ASSERT_STR(u.dept_alias, "c.smith@physics.test");
	TEST_ASSERT_STR(u.forward, "carol@elsewhere.test");
	TEST_ASSERT(u.forward_keep);
	TEST_ASSERT(userdb_verify(db, "carol", "pw2", &error) == 1);
	/* the record round-trips; index keys are not listed as users */
	TEST_ASSERT(userdb_record_encode(&u, rec) == 0);
	userdb_user_clear(&u);
	TEST_ASSERT(userdb_record_decode(str_data(rec), str_len(rec), &u) == 0);
	TEST_ASSERT(u.forward_keep && u.dept_alias != NULL);
	userdb_user_clear(&u);
	TEST_ASSERT(userdb_list(db, list_cb, names, &error) == 0);
	TEST_ASSERT(strstr(str_c(names), "@") == NULL);
	TEST_ASSERT(strstr(str_c(names), "carol,dave,") != NULL);
	/* move the alias; the old address is free again */
	TEST_ASSERT(userdb_set_alias(db_path, "carol", "cs@physics.test",
	    &error) == 0);
	TEST_ASSERT(userdb_lookup_alias(db, "c.smith@physics.test", who,
	    &error) == 0);
	TEST_ASSERT(userdb_set_alias(db_path, "dave", "c.smith@physics.test",
	    &error) == 0);
	TEST_ASSERT(userdb_lookup_alias(db, "c.smith@physics.test", who,
	    &error) == 1 && strcmp(str_c(who), "dave") == 0);
	/* forwarding off; deleting a user drops its index entry */
	TEST_ASSERT(userdb_set_forward(db_path, "carol", NULL, false,
	    &error) == 0);
	TEST_ASSERT(userdb_lookup(db, "carol", &u, &error) == 1);
	TEST_ASSERT(u.forward == NULL && !u.forward_keep);
	userdb_user_clear(&u);
	TEST_ASSERT(userdb_delete(db_path, "carol", &error) == 0);
	TEST_ASSERT(userdb_lookup_alias(db, "cs@physics.test", who,
	    &error) == 0);
	TEST_ASSERT(userdb_set_alias(db_path, "dave", NULL, &error) == 0);
	TEST_ASSERT(userdb_lookup_alias(db, "c.smith@physics.test", who,
	    &error) == 0);
	TEST_ASSERT(userdb_delete(db_path, "dave", &error) == 0);
	userdb_close(&db);
	/* decode: keep without forward, bad alias, tags out of order */
	TEST_ASSERT(decode("\1\1\0\0\0\0\5\0\0\0\1\1", 12, &u) == -1);
	TEST_ASSERT(decode("\1\1\0\0\0\0\3\0\0\0\3a b", 14, &u) == -1);
	TEST_ASSERT(decode("\1\1\0\0\0\0\4\0\0\0\3a@b\3\0\0\0\3a@b",
	    22, &u) == -1);
	TEST_ASSERT(decode("\1\1\0\0\0\0\4\0\0\0\3a@b\5\0\0\0\1\1",
	    20, &u) == 0 && u.forward_keep);
	userdb_user_clear(&u);
	str_free(&who);
	str_free(&rec);
	str_free(&names);
	snprintf(db_path, sizeof(db_path), "%s/users.db", test_tmpdir());
	test_end();
}

static void
test_quota(void)
{
	struct userdb_user u;
	struct userdb *db;
	struct str *who = str_new(0, 0);
	const char *error;
	char qpath[sizeof(db_path)];

	test_begin("userdb set_quota keeps the other fields and the alias index");
	snprintf(qpath, sizeof(qpath), "%s/quota-users.db", test_tmpdir());
	TEST_ASSERT(userdb_add(qpath, "erin", "pw-erin", &error) == 0);
	TEST_ASSERT(userdb_set_alias(qpath, "erin", "e@dept.test", &error) == 0);
	TEST_ASSERT(userdb_set_quota(qpath, "erin", 5 * 1024 * 1024,
	    &error) == 0);
	TEST_ASSERT(userdb_set_quota(qpath, "nobody", 1, &error) == -1 &&
	    errno == ENOENT);
	db = userdb_open(qpath, &error);
	TEST_ASSERT(db != NULL);
	if (db != NULL) {
		TEST_ASSERT(userdb_lookup(db, "erin", &u, &error) == 1);
		TEST_ASSERT(u.quota_bytes == 5 * 1024 * 1024);
		userdb_user_clear(&u);
		TEST_ASSERT(userdb_verify(db, "erin", "pw-erin", &error) == 1);
		TEST_ASSERT(userdb_lookup_alias(db, "e@dept.test", who,
		    &error) == 1 && str_equals_cstr(who, "erin"));
		userdb_close(&db);
	}
	TEST_ASSERT(userdb_set_quota(qpath, "erin", 0, &error) == 0);
	db = userdb_open(qpath, &error);
	if (db != NULL) {
		TEST_ASSERT(userdb_lookup(db, "erin", &u, &error) == 1 &&
		    u.quota_bytes == 0);
		userdb_user_clear(&u);
		userdb_close(&db);
	}
	str_free(&who);
	test_end();
}

int
main(void)
{
	snprintf(db_path, sizeof(db_path), "%s/users.db", test_tmpdir());
	test_names();
	test_record();
	test_crud();
	test_corrupt();
	test_alias_forward();
	test_quota();
	test_concurrent();
	return test_done();
}
