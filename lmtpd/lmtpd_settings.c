/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_settings - lmtpd's view of postern.conf, read once per process
 *
 * DESCRIPTION
 *	lmtpd_settings_load() copies the parameters lmtpd uses into struct
 *	lmtpd_settings (pointers into conf(), which lives as long as the
 *	process). master.conf -o overrides give one service other values.
 */
#include <string.h>

#include "config.h"
#include "log.h"

#include "lmtpd.h"

struct lmtpd_settings lmtpd_settings;

/* lmtpd_settings_load - see lmtpd.h */
bool
lmtpd_settings_load(void)
{
	struct lmtpd_settings *st = &lmtpd_settings;
	struct config *c = conf();
	bool ok = true;

	st->myhostname = config_str(c, "myhostname");
	st->size_limit = config_size(c, "lmtpd_message_size_limit");
	st->line_limit = config_size(c, "lmtpd_line_length_limit");
	if (st->line_limit < 1000)
		st->line_limit = 1000;	/* RFC 5321 4.5.3.1.6 */
	st->rcpt_limit = (unsigned)config_int(c, "lmtpd_recipient_limit");
	st->timeout = config_time(c, "lmtpd_timeout");
	st->store_dir = config_str(c, "store_directory");
	st->user_database = config_str(c, "user_database");
	st->recipient_delimiter = config_str(c, "recipient_delimiter");
	st->mydestination = config_list(c, "mydestination", &st->n_mydestination);
	st->save_to_detail = config_bool(c, "lmtp_save_to_detail_mailbox");
	st->dup_window = config_time(c, "lmtp_duplicate_window");
	st->dup_dir = config_str(c, "lmtp_duplicate_directory");
	st->quota_tempfail = config_bool(c, "quota_full_tempfail");
	st->quota_default = config_size(c, "quota_storage_limit");
	st->fsync = true;
	if (*st->store_dir != '/') {
		log_error(NULL, "store_directory: \"%s\" is not an absolute path",
		    st->store_dir);
		ok = false;
	}
	if (st->dup_window != 0 && *st->dup_dir != '/') {
		log_error(NULL, "lmtp_duplicate_directory: \"%s\" is not an "
		    "absolute path", st->dup_dir);
		ok = false;
	}
	return ok;
}
