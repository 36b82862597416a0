/* SPDX-License-Identifier: MIT */
/*
 * imapd_conn - settings, connections and the mail-role hand-off
 *
 * DESCRIPTION
 *	What both programs of imapd need: imapd (login, standalone and,
 *	for old master.conf files, mail role) and imapd-mail (the mail
 *	role alone). It must not reach TLS, SASL or lib/auth, so that
 *	imapd-mail links none of them (imapd_mail.c DESCRIPTION): the
 *	login side frees the TLS session itself before imapd_conn_clear().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "login_proxy.h"
#include "macros.h"
#include "server.h"
#include "stream.h"
#include "str.h"

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

/* imapd_conn_id - a session ID unique on this host: time and pid */
void
imapd_conn_id(struct imapd_conn *c)
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(c->id, sizeof(c->id), "%lX%05lX%X%X", (unsigned long)tv.tv_sec,
	    (unsigned long)tv.tv_usec, (unsigned)getpid(), counter++ & 0xff);
	c->log.id = c->id;
}

/* imapd_addr_is_loopback - 127/8 or ::1 (counts as secure) */
bool
imapd_addr_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	    strncmp(addr, "::ffff:127.", 11) == 0 || strcmp(addr, "local") == 0;
}

/* imapd_conn_clear - see imapd.h */
void
imapd_conn_clear(struct imapd_conn *c)
{
	ASSERT(c->tls_sess == NULL);
	stream_free(&c->s);
	XFREE(c->peer_addr);
	XFREE(c->local_addr);
	XFREE(c->tls_desc);
	XFREE(c->dir_lists);
	if (c->slot_fd >= 0)
		(void)close(c->slot_fd);
	c->slot_fd = -1;
}

/* imapd_serve_mail - see imapd.h */
void
imapd_serve_mail(const struct server_conn *conn)
{
	struct login_handoff h;
	struct login_proxy_input *in;
	struct imapd_conn c;
	int fds[LOGIN_HANDOFF_MAX_FDS];
	size_t nfds = 0;
	const char *err;

	if (login_proxy_recv(conn->fd, &h, fds, &nfds, 10, &err) < 0) {
		log_error(NULL, "hand-off from a login process failed: %s: %m",
		    err);
		return;
	}
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "%s", h.session_id);
	c.log.id = c.id;
	c.peer_addr = xstrdup(h.peer_addr);
	c.peer_port = h.peer_port;
	c.local_addr = xstrdup(h.local_addr);
	c.local_port = h.local_port;
	c.tls = (h.flags & LOGIN_HANDOFF_TLS) != 0;
	c.secured = (h.flags & LOGIN_HANDOFF_SECURED) != 0;
	c.tls_desc = xstrdup(h.tls);
	c.have_quota = (h.flags & LOGIN_HANDOFF_QUOTA) != 0;
	c.quota_bytes = h.quota;
	c.dir_lists = xstrdup(h.lists != NULL ? h.lists : "");
	c.slot_fd = nfds > 1 ? fds[1] : -1;
	c.s = stream_new(fds[0], imapd_settings.timeout, 0);
	in = login_proxy_input_new(c.s, fds[0], &h.input);
	imapd_session_run(&c, h.user, h.proto, NULL);
	login_handoff_clear(&h);
	imapd_conn_clear(&c);
	login_proxy_input_free(&in);
}
