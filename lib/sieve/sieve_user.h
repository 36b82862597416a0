/* SPDX-License-Identifier: MIT */
/*
 * sieve_user - where a user's Sieve scripts live (shared by lmtpd and sieved)
 *
 * LAYOUT
 *	DIR = $store_directory/USER/sieve (mode 0700, owned by $store_owner,
 *	beside the user's mailboxes):
 *
 *	    DIR/NAME.sieve        one script per name, written atomically
 *	    DIR/NAME.sieve.svbin  its compiled form (sieve_cache_open)
 *	    DIR/active            a symlink to "NAME.sieve": the active script
 *	                          (absent: no active script)
 *	    DIR/lock              fcntl lock held while the set is changed
 *	    DIR/duplicates        ids remembered by the duplicate test and by
 *	                          redirect's loop protection, with expiry
 *
 *	Script names (RFC 5804 1.6) are 1..SIEVE_USER_NAME_MAX octets of
 *	UTF-8 without controls (C0, DEL, C1, U+2028, U+2029), without '/'
 *	and not starting with '.', so a name is always exactly one file
 *	in DIR: no path tricks. The active link's target is re-validated
 *	by every reader (a link pointing anywhere else means "no active
 *	script" and an error).
 *
 * QUOTA
 *	sieve_user_put() and sieve_user_havespace() count the scripts and
 *	their octets (a script being replaced does not count twice)
 *	against struct sieve_user_quota (0 = unlimited).
 *
 * ERRORS
 *	Functions return 0 (or a count/flag) and -1 with *error_r (static
 *	text) and, where given, *code_r saying which ManageSieve response
 *	code fits. Nothing here exits except on memory exhaustion.
 */
#ifndef POSTERN_SIEVE_USER_H
#define POSTERN_SIEVE_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct str;
struct config;
struct sieve_limits;

#define SIEVE_USER_NAME_MAX	128
#define SIEVE_USER_SUFFIX	".sieve"
#define SIEVE_USER_ACTIVE	"active"

enum sieve_user_code {
	SIEVE_USER_OK,
	SIEVE_USER_NONEXISTENT,		/* no such script */
	SIEVE_USER_ALREADYEXISTS,	/* rename target exists */
	SIEVE_USER_ACTIVE_SCRIPT,	/* delete of the active script */
	SIEVE_USER_QUOTA_MAXSCRIPTS,	/* too many scripts */
	SIEVE_USER_QUOTA_MAXSIZE,	/* too many octets */
	SIEVE_USER_BADNAME,		/* name not allowed */
	SIEVE_USER_TRYLATER,		/* a system error */
};

struct sieve_user_quota {
	uint64_t max_scripts;		/* 0 = unlimited */
	uint64_t max_storage;		/* octets, 0 = unlimited */
	uint64_t max_script_size;	/* one script, 0 = unlimited */
};

struct sieve_user_script {
	char *name;
	uint64_t size;
	bool active;
};

/*
 * sieve_user_name_ok - is p/n an allowed script name (see LAYOUT)?
 * *why_r (may be NULL) gets a static reason on false.
 */
bool sieve_user_name_ok(const char *p, size_t n, const char **why_r);

/* sieve_user_dir - set out to STORE_DIR/USER/sieve (user must pass store_user_ok) */
void sieve_user_dir(const char *store_dir, const char *user, struct str *out);

/*
 * sieve_user_active - the active script's name into name (replaced, may
 * be NULL) and its path into path (replaced, may be NULL). 1 when there
 * is one, 0 when not (no link, no directory), -1 on error (a damaged
 * link: *error_r).
 */
int sieve_user_active(const char *dir, struct str *name, struct str *path,
    const char **error_r);

/*
 * sieve_user_list - the scripts in dir, sorted by name: an owned array
 * of *count_r items (free with sieve_user_list_free). An absent dir is
 * an empty list. -1 on error.
 */
int sieve_user_list(const char *dir, struct sieve_user_script **list_r,
    size_t *count_r, const char **error_r);
void sieve_user_list_free(struct sieve_user_script **listp, size_t count);

/*
 * sieve_user_get - append script name to out (at most max octets, 0 =
 * no limit). 1 found, 0 no such script, -1 error.
 */
int sieve_user_get(const char *dir, const char *name, struct str *out,
    size_t max, const char **error_r);

/*
 * sieve_user_havespace - would a script name of size octets fit? 0 yes;
 * -1 with *code_r QUOTA_MAXSCRIPTS / QUOTA_MAXSIZE / BADNAME /
 * TRYLATER. (The caller compiles the script itself.)
 */
int sieve_user_havespace(const char *dir, const char *name, uint64_t size,
    const struct sieve_user_quota *quota, enum sieve_user_code *code_r,
    const char **error_r);

/*
 * sieve_user_put - store p/n as script name (created or replaced
 * atomically: readers see the old or the new text, never a mix),
 * after the quota check under the directory lock. Creates dir. The
 * old compiled form becomes stale by its hash; it is removed anyway.
 */
int sieve_user_put(const char *dir, const char *name, const char *p, size_t n,
    const struct sieve_user_quota *quota, enum sieve_user_code *code_r,
    const char **error_r);

/*
 * sieve_user_activate - make name the active script ("" = none), by an
 * atomic replacement of the link. NONEXISTENT if there is no such script.
 */
int sieve_user_activate(const char *dir, const char *name,
    enum sieve_user_code *code_r, const char **error_r);

/* sieve_user_delete - remove name (ACTIVE_SCRIPT if it is the active one) */
int sieve_user_delete(const char *dir, const char *name,
    enum sieve_user_code *code_r, const char **error_r);

/*
 * sieve_user_rename - rename oldname to newname (ALREADYEXISTS if taken,
 * NONEXISTENT if oldname is missing); the active link follows. Done as
 * link, relink, unlink: a crash leaves both names, never none.
 */
int sieve_user_rename(const char *dir, const char *oldname,
    const char *newname, enum sieve_user_code *code_r, const char **error_r);

/*
 * The duplicate database (DIR/duplicates): ids of up to 32 octets with
 * an expiry time. sieve_user_dup_check - 1 if id was marked and has not
 * expired at now, 0 if not, -1 on error. sieve_user_dup_mark - remember
 * id until now + period (replacing an older mark); drops expired ones.
 */
#define SIEVE_USER_DUP_ID_MAX	32
int sieve_user_dup_check(const char *dir, const void *id, size_t idlen,
    time_t now, const char **error_r);
int sieve_user_dup_mark(const char *dir, const void *id, size_t idlen,
    unsigned period, time_t now, const char **error_r);

/*
 * sieve_user_limits - the engine's limits from the configuration
 * (sieve_max_script_size, sieve_max_actions, sieve_max_redirects,
 * sieve_include_max_*, sieve_regex_max_size), other fields default.
 * sieve_user_quota_config - the quota from sieve_quota_max_* and
 * sieve_max_script_size.
 */
void sieve_user_limits(const struct config *cf, struct sieve_limits *limits);
void sieve_user_quota_config(const struct config *cf,
    struct sieve_user_quota *quota);

/* sieve_user_code_name - "NONEXISTENT", "QUOTA/MAXSIZE"..., "" for OK */
const char *sieve_user_code_name(enum sieve_user_code code);

#endif
