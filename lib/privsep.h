/* SPDX-License-Identifier: MIT */
/*
 * privsep - dropping privileges, the one way
 *
 * privsep_drop(user, chroot_dir): as root, in this order: resolve the user
 * and its groups; setgroups (initgroups) and setresgid; chroot(chroot_dir)
 * and chdir("/") when chroot_dir is not NULL; setresuid; then check that
 * uid, euid, gid, egid are the target ones and that setuid(0) fails. The
 * target must not be root (uid 0): only master runs as root. Not as root:
 * privilege separation is off (tests, `make run`): nothing changes (no
 * chroot either), and the first call in a process says so once at debug
 * level (master logs it once for the whole instance at info level).
 * Returns 0, or -1 with *error_r (static text); the caller logs it and
 * treats it as fatal.
 *
 * privsep_user() resolves an account name to its uid and primary gid;
 * -1 with *error_r if there is no such account.
 *
 * privsep_clean_env() keeps only TZ, LANG, LC_*, and the names given
 * (keep may be NULL; the list ends with NULL), and sets a safe PATH.
 * privsep_set_limits() sets umask 077 and leaves the core size limit as
 * it is: after a uid change the kernel marks the process non-dumpable
 * anyway, so a crashed worker never leaves a core with secrets in it
 * unless the administrator turned that on (fs.suid_dumpable).
 * None of these exits.
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

bool privsep_enabled(void);		/* true if we run as root */
int privsep_user(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r);
int privsep_drop(const char *user, const char *chroot_dir, const char **error_r);
void privsep_clean_env(const char *const *keep);
void privsep_set_limits(void);

#endif
