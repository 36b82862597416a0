/* SPDX-License-Identifier: MIT */
/*
 * userdb - the embedded user database (the default auth backend)
 *
 * A Berkeley DB btree at $user_database (default
 * $data_directory/users.db): key = user name (lower case, allow-listed:
 * [a-z0-9._-], 1-64 bytes, not starting with '.' or '-'), value = a
 * typed, length-prefixed record (never re-parsed text) holding the
 * crypt(3) password hash (yescrypt or SHA-512 via crypt_gensalt) and
 * attributes later features add (quota, ...). Writers hold
 * $data_directory/users.lock and replace the whole file atomically
 * (safe_file), so readers never need locks and never see a partial update.
 *
 * Calls return -1 with *error_r (static text or pointing into the db,
 * valid until the next call) on failure; none exits. Passwords are wiped
 * from memory after hashing.
 */
#ifndef POSTERN_USERDB_H
#define POSTERN_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str;
struct userdb;

struct userdb_user {
	char *name;
	char *password_hash;	/* crypt(3) string, "" = no password login */
	uint64_t quota_bytes;	/* 0 = default */
	char *dept_alias;	/* departmental address (lower case) or NULL */
	char *forward;		/* forwarding address or NULL */
	bool forward_keep;	/* forwarding keeps a copy in the mailbox */
};

bool userdb_name_ok(const char *name);

struct userdb *userdb_open(const char *path, const char **error_r);
void userdb_close(struct userdb **dbp);

/* userdb_lookup - 1 found (fields owned by the caller: userdb_user_clear), 0 absent, -1 error */
int userdb_lookup(struct userdb *db, const char *name, struct userdb_user *user_r,
    const char **error_r);
void userdb_user_clear(struct userdb_user *user);

/* userdb_verify - 1 if the password matches, 0 if not (or no such user), -1 on error */
int userdb_verify(struct userdb *db, const char *name, const char *password,
    const char **error_r);

/*
 * Writers (take the lock, rewrite, rename). add fails if the user exists;
 * set_password and delete if not. A NULL or "" password stores the ""
 * hash (no password login). The lock file is PATH with ".db" replaced by
 * ".lock" (else PATH.lock). userdb_open fails (ENOENT) if no file exists.
 */
int userdb_add(const char *path, const char *name, const char *password,
    const char **error_r);
int userdb_set_password(const char *path, const char *name, const char *password,
    const char **error_r);
int userdb_delete(const char *path, const char *name, const char **error_r);
/*
 * Departmental alias and forwarding (same locking and replacement).
 * userdb_set_alias - give name the departmental address alias (NULL:
 * remove it); the address is lower-cased and must be a plain
 * local@domain (userdb_address_ok). The reverse index entry (key = the
 * address, see userdb.c) changes in the same file replacement, so a
 * reader never sees a user and an index that disagree. Fails (EEXIST,
 * "address belongs to another user") if another user has it.
 * userdb_set_forward - forward name's mail to address (NULL: stop),
 * keeping a copy in the mailbox when keep_copy.
 */
int userdb_set_alias(const char *path, const char *name, const char *alias,
    const char **error_r);
int userdb_set_forward(const char *path, const char *name, const char *address,
    bool keep_copy, const char **error_r);
/*
 * userdb_set_quota - the user's storage quota in bytes (0: the default,
 * quota_storage_limit); same locking and replacement as the others.
 */
int userdb_set_quota(const char *path, const char *name, uint64_t quota_bytes,
    const char **error_r);
/* userdb_address_ok - local@domain, printable, no space or <>()[],;:\" */
bool userdb_address_ok(const char *address);
/*
 * userdb_lookup_alias - the user whose departmental address is address
 * (case-insensitive): 1 with the name in user_r (replaced), 0 none, -1
 * error. One btree get, no scan.
 */
int userdb_lookup_alias(struct userdb *db, const char *address,
    struct str *user_r, const char **error_r);

/* userdb_list - call cb for every user name in order (index entries skipped) */
int userdb_list(struct userdb *db, void (*cb)(void *ctx, const char *name),
    void *ctx, const char **error_r);

/*
 * The stored record (format in userdb.c), exposed for tests and fuzzing.
 * userdb_record_decode - strictly decode p[0..len) into user_r (name is
 * left NULL: it is the key); 0, or -1 (EINVAL) with user_r cleared.
 * userdb_record_encode - the record for user into out (replaced); -1
 * (EINVAL) if the hash is not printable ASCII without space or too long.
 */
struct str;
int userdb_record_decode(const void *p, size_t len, struct userdb_user *user_r);
int userdb_record_encode(const struct userdb_user *user, struct str *out);

#endif
