/* SPDX-License-Identifier: MIT */
/*
 * privsep - dropping privileges, the one way
 *
 * privsep_drop(user, chroot_dir): as root, in this order: resolve the user
 * and its groups; setgroups (initgroups) and setresgid; chroot(chroot_dir)
 * and chdir("/") when chroot_dir is not NULL; setresuid; then check that
 * uid, euid, gid, egid are the target ones and that setuid(0) fails. Not
 * as root: privilege separation is off (tests, `make run`): nothing
 * changes, and the first call in a process logs that once.
 * Returns 0, or -1 with *error_r (static text); the caller logs it and
 * treats it as fatal.
 *
 * privsep_clean_env() keeps only TZ, LANG/LC_*, and the names given,
 * and sets a safe PATH. privsep_set_limits() sets umask 077 and a core
 * size limit (unchanged if dumping is configured).
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

bool privsep_enabled(void);		/* true if we run as root */
int privsep_user(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r);
int privsep_drop(const char *user, const char *chroot_dir, const char **error_r);
void privsep_clean_env(const char *const *keep);

#endif
