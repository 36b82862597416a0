/* SPDX-License-Identifier: MIT */
/*
 * privsep - dropping privileges, the one way
 *
 * DESCRIPTION
 *	See privsep.h for the contract. The order is the one in STYLE §8
 *	and Postfix chroot_uid(): everything that needs the real root file
 *	system (the passwd and group files) happens before chroot; groups
 *	are set before the uid, because after setresuid we could no longer
 *	change them; the uid goes last. Afterwards we verify the result
 *	instead of trusting the return codes: all six ids must be the
 *	target ones and setuid(0) and seteuid(0) must fail.
 *
 *	Errors are static text for the caller to log with its context; the
 *	errno of the failing call is left in errno (so "%m" after the reason
 *	says why). Nothing here exits.
 *
 * SECURITY
 *	Called by every master-spawned daemon (lib/server.c) while still
 *	root, after its pre-jail setup. A target uid of 0 is refused: a
 *	daemon that would run as root is a configuration error.
 *
 * SEE ALSO
 *	Postfix src/util/chroot_uid.c, clean_env.c; OpenSMTPD queue.c queue().
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "privsep.h"

#define PRIVSEP_PATH "/usr/bin:/bin"

/* privsep_enabled - can we (and so must we) change uid? */
bool
privsep_enabled(void)
{
	return geteuid() == 0;
}

/* privsep_user - resolve an account name */
int
privsep_user(const char *user, uid_t *uid_r, gid_t *gid_r,
    const char **error_r)
{
	struct passwd *pw;

	if (user == NULL || *user == '\0') {
		*error_r = "empty user name";
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		*error_r = "unknown user";
		if (errno == 0)
			errno = ENOENT;
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 0;
}

/* privsep_verify - are we exactly uid/gid now, for good? */
static int
privsep_verify(uid_t uid, gid_t gid, const char **error_r)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) < 0 ||
	    getresgid(&rgid, &egid, &sgid) < 0) {
		*error_r = "cannot read back user and group ids";
		return -1;
	}
	if (ruid != uid || euid != uid || suid != uid) {
		*error_r = "user id did not change";
		errno = EPERM;
		return -1;
	}
	if (rgid != gid || egid != gid || sgid != gid) {
		*error_r = "group id did not change";
		errno = EPERM;
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		*error_r = "root privileges could be regained";
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* privsep_drop - become user for good, optionally inside chroot_dir */
int
privsep_drop(const char *user, const char *chroot_dir, const char **error_r)
{
	static bool said_off;
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	char *name;

	if (!privsep_enabled()) {
		if (!said_off) {
			said_off = true;
			log_debug(NULL, "privilege separation is off: "
			    "not running as root, keeping uid %ld",
			    (long)getuid());
		}
		return 0;
	}
	if (user == NULL || *user == '\0') {
		*error_r = "no user to run as";
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		*error_r = "unknown user";
		if (errno == 0)
			errno = ENOENT;
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0) {
		*error_r = "refusing to run a daemon as root";
		errno = EPERM;
		return -1;
	}
	/* getpwnam's buffer may be reused by initgroups: keep the name. */
	name = xstrdup(pw->pw_name);
	if (initgroups(name, gid) < 0) {
		free(name);
		*error_r = "cannot set supplementary groups";
		return -1;
	}
	free(name);
	if (setresgid(gid, gid, gid) < 0) {
		*error_r = "cannot set group id";
		return -1;
	}
	if (chroot_dir != NULL) {
		if (chroot(chroot_dir) < 0) {
			*error_r = "cannot change root directory";
			return -1;
		}
		if (chdir("/") < 0) {
			*error_r = "cannot change to the new root directory";
			return -1;
		}
	}
	if (setresuid(uid, uid, uid) < 0) {
		*error_r = "cannot set user id";
		return -1;
	}
	return privsep_verify(uid, gid, error_r);
}

/* privsep_keep - should the environment entry e (NAME=value) survive? */
static bool
privsep_keep(const char *e, const char *const *keep)
{
	size_t n = strcspn(e, "=");
	size_t i;

	if ((n == 2 && strncmp(e, "TZ", 2) == 0) ||
	    (n == 4 && strncmp(e, "LANG", 4) == 0) ||
	    (n > 3 && strncmp(e, "LC_", 3) == 0))
		return true;
	for (i = 0; keep != NULL && keep[i] != NULL; i++) {
		if (strlen(keep[i]) == n && strncmp(e, keep[i], n) == 0)
			return true;
	}
	return false;
}

/* privsep_clean_env - drop every variable we did not ask for */
void
privsep_clean_env(const char *const *keep)
{
	char **saved;
	size_t n = 0, i, j = 0;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		n++;
	saved = xcalloc(n + 1, sizeof(*saved));
	for (i = 0; i < n; i++) {
		if (privsep_keep(environ[i], keep))
			saved[j++] = xstrdup(environ[i]);
	}
	(void)clearenv();
	for (i = 0; i < j; i++) {
		char *eq = strchr(saved[i], '=');

		/* setenv copies (putenv would keep our pointer for ever). */
		if (eq != NULL) {
			*eq = '\0';
			(void)setenv(saved[i], eq + 1, 1);
		}
		free(saved[i]);
	}
	free(saved);
	(void)setenv("PATH", PRIVSEP_PATH, 1);
}

/* privsep_set_limits - the process defaults for a daemon */
void
privsep_set_limits(void)
{
	(void)umask(077);
}
