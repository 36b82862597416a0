/* SPDX-License-Identifier: MIT */
/*
 * user_quota - a user's effective storage quota (lmtpd, imapd, postern)
 *
 *	1. the user's own quota in the user database, if set (non-zero);
 *	2. else the value of the first of $quota_maps (map.h specs: db:,
 *	   file:, ldap: with result_attribute posternQuota) that has the
 *	   user name: a size, bytes with an optional k, m or g suffix,
 *	   0 = unlimited;
 *	3. else $quota_storage_limit (0 = unlimited).
 *
 * The maps are opened on the first call and kept for the process (a map
 * notices a replaced file or an edited ldap .cf itself).
 *
 * user_quota_get returns 0 with *quota_r and *source_r (static text or
 * the map's spec: "user database", "quota_maps db:/...",
 * "quota_storage_limit"); -1 with *error_r when a map cannot be opened
 * or looked up (LDAP down) or its value is not a size, and then *quota_r
 * and *source_r still hold the default ($quota_storage_limit), for
 * callers that carry on with it (imapd) rather than fail (lmtpd).
 */
#ifndef POSTERN_USER_QUOTA_H
#define POSTERN_USER_QUOTA_H

#include <stdint.h>

struct config;

int user_quota_get(const struct config *cfg, const char *user,
    uint64_t own_quota, uint64_t *quota_r, const char **source_r,
    const char **error_r);

#endif
