/* SPDX-License-Identifier: MIT */
/*
 * list_store - a mailing list's data on disk: settings, members, paths
 *
 * Shared by list-mgr(8) and `postern list`. Every list lives in
 *
 *	$list_directory/NAME/	(default $data_directory/lists/NAME)
 *	    config		"key = value" settings (list_store_save)
 *	    members.db		Berkeley DB btree: address -> member record
 *	    lock		flock(2) target serialising members.db users
 *	    held/ID		messages held for moderation (ID: 24 hex digits)
 *	    pending/TOKEN	confirmation tokens for subscribe/unsubscribe
 *	    archive/YYYY-MM.mbox and archive/html/
 *	    digest.mbox		posts waiting for the next digest
 *	    secret		HMAC key of one-click unsubscribe tokens (0600)
 *
 * List names are allow-listed (list_name_ok) before they become paths:
 * lower-case letters, digits, '.', '_' and '-', not starting with '.' or
 * '-', at most 64 octets, and not ending in one of the reserved suffixes
 * (-request, -owner, -bounces, -join, -leave, -confirm).
 *
 * Settings: a fixed set of keys (list_setting_ok) with defaults; values
 * are checked by type when set, so readers can use them as given.
 *
 * Members: one record per address (canonical, domain lower-cased; the
 * key is the address folded to lower case). The members handle holds
 * the list's lock (shared for reading, exclusive for writing) from
 * list_members_open() to list_members_close(), so list-mgr processes and
 * the CLI never write the database at the same time.
 *
 * Errors: -1 / NULL / false with a *error_r text (valid until the next
 * call on the same object, or static); nothing here exits except on
 * memory exhaustion.
 */
#ifndef POSTERN_LIST_STORE_H
#define POSTERN_LIST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "str.h"

#define LIST_NAME_MAX		64

/* Member option bits */
#define LIST_MEMBER_DIGEST	0x01	/* MIME digests instead of posts */
#define LIST_MEMBER_NOMAIL	0x02	/* receives nothing (may still post) */
#define LIST_MEMBER_NOCOPY	0x04	/* no copy of own posts */
#define LIST_MEMBER_PLAIN	0x08	/* digests as RFC 1153 plain text */
#define LIST_MEMBER_BOUNCING	0x10	/* disabled by bounce processing */
#define LIST_MEMBER_MODERATOR	0x20	/* (informational) */

struct list_member {
	char *address;		/* owned */
	unsigned flags;
	double score;		/* bounce score */
	time_t last_bounce;	/* 0 = never */
	time_t disabled;	/* when LIST_MEMBER_BOUNCING was set, 0 = not */
	time_t since;		/* subscribed */
};

struct list {
	char *name;		/* owned */
	char *dir;		/* $list_directory/NAME, owned */
	char **keys;		/* settings, owned */
	char **values;
	size_t nsettings;
};

/* list_name_ok - an allowed list name (see above) */
bool list_name_ok(const char *name);

/*
 * list_split_address - split the local part of a list address into the
 * list name and the role suffix ("" for a post, "request", "owner",
 * "bounces", "join", "leave", "confirm"), and the text after '+' (VERP
 * or token), which may be empty. Writes into name and extra (replaced);
 * returns the role (static) or NULL when the local part is no list
 * address form.
 */
const char *list_split_address(const char *local, struct str *name,
    struct str *extra);

/* list_directory - $list_directory from conf() */
const char *list_directory(void);

/*
 * list_store_open - read the list NAME (its config file); NULL with
 * *error_r if the name is bad, the list does not exist or its config is
 * unreadable (errno ENOENT for "no such list").
 */
struct list *list_store_open(const char *name, const char **error_r);
/* list_store_create - make the directory tree and config; -1 if it exists */
struct list *list_store_create(const char *name, const char *domain,
    const char **error_r);
void list_store_free(struct list **lp);
/* list_store_save - write the settings atomically (safe_file) */
int list_store_save(const struct list *l, const char **error_r);
/* list_store_delete - remove the whole list directory */
int list_store_delete(const char *name, const char **error_r);

/* list_setting_ok - a known key; list_setting_check - and a good value */
bool list_setting_ok(const char *key);
bool list_setting_check(const char *key, const char *value,
    const char **error_r);
/* list_get - the value of key, or its default (borrowed, lives with l) */
const char *list_get(const struct list *l, const char *key);
long list_get_int(const struct list *l, const char *key);
bool list_get_bool(const struct list *l, const char *key);
/* list_set - set key (checked); -1 with *error_r on a bad key or value */
int list_set(struct list *l, const char *key, const char *value,
    const char **error_r);
/* list_keys - every known key, NULL-terminated, for `postern list show` */
const char *const *list_keys(void);

/* list_address - "NAME[-role]@domain" into out (replaced); role may be "" */
void list_address(const struct list *l, const char *role, struct str *out);
/* list_path - "DIR/rel" into out (replaced) */
const char *list_path(const struct list *l, const char *rel, struct str *out);
/* list_addr_in - whether addr is in the comma/space list of setting key */
bool list_addr_in(const struct list *l, const char *key, const char *addr);

/*
 * list_user_addresses - the addresses a login name stands for, as list
 * membership sees them: the name itself when it holds an '@', else
 * USER@D for each D in $mydestination, then USER@$mydomain. Owned by
 * the caller (free each and the array); *n_r may be 0.
 */
char **list_user_addresses(const char *user, size_t *n_r);
/*
 * list_archive_imap_shown - l shows its archive over IMAP (archive_imap
 * = yes and archive not off): imapd's Shared/NAME, see imapd(8)
 */
bool list_archive_imap_shown(const struct list *l);

/* ---------------------------------------------------------- members */
struct list_members;

/*
 * list_members_open - lock and open members.db (created when writable);
 * a reader without write access to the list directory gets a read-only
 * handle (imapd's shared mailboxes, see imapd(8))
 */
struct list_members *list_members_open(const struct list *l, bool writable,
    const char **error_r);
void list_members_close(struct list_members **mp);
/* list_member_get - 1 and *m filled (m->address owned by m), 0 if absent, -1 error */
int list_member_get(struct list_members *mp, const char *address,
    struct list_member *m, const char **error_r);
int list_member_put(struct list_members *mp, const struct list_member *m,
    const char **error_r);
/* list_member_del - 1 removed, 0 absent, -1 error */
int list_member_del(struct list_members *mp, const char *address,
    const char **error_r);
/*
 * list_members_each - cb for each member in address order; a non-zero
 * return from cb stops and is returned; -1 on a database error. The
 * member passed to cb lives for that call only.
 */
int list_members_each(struct list_members *mp,
    int (*cb)(const struct list_member *m, void *ctx), void *ctx,
    const char **error_r);
void list_member_clear(struct list_member *m);
/* list_member_flags_str / _parse - "digest,nomail,nocopy,plain,bouncing" */
void list_member_flags_str(unsigned flags, struct str *out);
bool list_member_flags_parse(const char *s, unsigned *flags_r);
/* list_address_key - the database key for an address (lower case) into out */
void list_address_key(const char *address, struct str *out);

/* list_random_token - 24 lower-case hex digits from getrandom(2) into out */
void list_random_token(struct str *out);
/* list_token_ok - exactly 24 lower-case hex digits */
bool list_token_ok(const char *token);

/* ---------------------------------------------- one-click unsubscribe */
#define LIST_UNSUB_TOKEN_LEN	32	/* hex digits */

/*
 * list_unsubscribe_token - the RFC 8058 token for address on l (32
 * lower-case hex digits of an HMAC under the list's secret, which is
 * created on first use) into out (replaced); 0, or -1 with *error_r.
 */
int list_unsubscribe_token(const struct list *l, const char *address,
    struct str *out, const char **error_r);
/*
 * list_unsubscribe_token_check - 1 token is address's on l (compared in
 * constant time), 0 it is not, -1 (with *error_r) the secret is unusable
 */
int list_unsubscribe_token_check(const struct list *l, const char *address,
    const char *token, const char **error_r);

#endif
