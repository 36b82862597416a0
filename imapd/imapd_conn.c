/* SPDX-License-Identifier: MIT */
/*
 * imapd_conn - settings, connections and the mail-role hand-off
 *
 * DESCRIPTION
 *	What both programs of imapd need: imapd (login, standalone and,
 *	for old master.conf files, mail role) and imapd-mail (the mail
 *	role alone). It must not reach TLS, SASL or lib/auth, so that
 *	imapd-mail links none of them (imapd_mail.c DESCRIPTION): the
 *	login side frees the TLS session itself before login_conn_clear().
 */
#include <string.h>

#include "config.h"
#include "log.h"
#include "login_proxy.h"
#include "server.h"

#include "imapd.h"

struct imapd_settings imapd_settings;

/* imapd_settings_load - see imapd.h */
void
imapd_settings_load(void)
{
	struct config *cf = conf();
	const char *role = config_str(cf, "imap_role");
	const char *sep = config_str(cf, "imap_hierarchy_separator");

	if (strcmp(role, "login") == 0)
		imapd_settings.role = IMAPD_ROLE_LOGIN;
	else if (strcmp(role, "mail") == 0)
		imapd_settings.role = IMAPD_ROLE_MAIL;
	else if (strcmp(role, "standalone") == 0)
		imapd_settings.role = IMAPD_ROLE_STANDALONE;
	else
		log_fatal(NULL, "imap_role: unknown role \"%s\" (login, mail "
		    "or standalone)", role);
	if (strcmp(sep, "/") != 0 && strcmp(sep, ".") != 0)
		log_fatal(NULL, "imap_hierarchy_separator must be \"/\" or \".\"");
	imapd_settings.sep = sep[0];
	imapd_settings.banner = config_str(cf, "imap_banner");
	imapd_settings.login_timeout = config_time(cf, "imap_login_timeout");
	imapd_settings.timeout = config_time(cf, "imap_timeout");
	imapd_settings.line_max = (size_t)config_size(cf, "imap_line_length_limit");
	if (imapd_settings.line_max < 1024)
		imapd_settings.line_max = 1024;
	imapd_settings.append_max = config_size(cf, "imap_max_append_size");
	if (imapd_settings.append_max == 0 ||
	    imapd_settings.append_max > (uint64_t)1 << 32)
		imapd_settings.append_max = (uint64_t)1 << 32;
	imapd_settings.disable_plaintext_auth =
	    config_bool(cf, "disable_plaintext_auth");
	imapd_settings.wrappermode = config_bool(cf, "imap_tls_wrappermode");
	imapd_settings.loopback_secure = config_bool(cf, "imap_loopback_secure");
	imapd_settings.mail_service = config_str(cf, "imap_mail_service");
	imapd_settings.ip_conn_limit =
	    (unsigned)config_int(cf, "imap_client_connection_limit");
	imapd_settings.user_conn_limit =
	    (unsigned)config_int(cf, "imap_user_connection_limit");
	imapd_settings.store_dir = config_str(cf, "store_directory");
	imapd_settings.data_dir = config_str(cf, "data_directory");
	imapd_settings.notify_mailbox_limit =
	    (unsigned)config_int(cf, "imap_notify_mailbox_limit");
}

/* imapd_serve_mail - see imapd.h */
void
imapd_serve_mail(const struct server_conn *conn)
{
	struct login_handoff h;
	struct login_conn c;
	const char *err;

	if (login_conn_handoff(&c, conn->fd, imapd_settings.timeout, &h,
	    &err) < 0) {
		log_error(NULL, "hand-off from a login process failed: %s: %m",
		    err);
		return;
	}
	imapd_session_run(&c, h.user, h.proto, NULL);
	login_handoff_clear(&h);
	login_conn_clear(&c);
}
