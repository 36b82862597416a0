/* SPDX-License-Identifier: MIT */
/*
 * imapd-mail - the IMAP mail role as a program of its own
 *
 * DESCRIPTION
 *	The post-login half of imapd (imapd.c DESCRIPTION): one process
 *	per authenticated session, started by master on the private unix
 *	service the login processes hand connections to:
 *
 *	    imap-mail     unix y postern-mail n - 0 imapd-mail
 *
 *	It does what "imapd -o imap_role=mail" does (that line keeps
 *	working), but is linked only with what the mail role runs: the
 *	session, the store, zlib for COMPRESS, libdb and libcrypt where
 *	libpostern's user database needs them. It leaves out OpenSSL,
 *	Cyrus SASL, Kerberos and LDAP, whose relocated data every process
 *	linking them dirties at start-up (about 0.8 MB private per
 *	process). That is Dovecot's imap-login / imap split, and the
 *	reason this process is small while it idles. imap_role is
 *	ignored here: this program has one role.
 *
 * SECURITY
 *	As imapd's mail role (imapd.c SECURITY): runs as $store_owner,
 *	accepts only hand-offs on a mode 0600 socket owned by
 *	$mail_owner, reads and writes the named user's store.
 *
 * DIAGNOSTICS
 *	As imapd's mail role, through lib/log with the session ID.
 *
 * SEE ALSO
 *	imapd(8), imapd.c, imapd_conn.c, login_proxy.h.
 */
#include "server.h"

#include "imapd.h"

/* imapd_mail_pre_jail - settings only; this program has no TLS context */
static void
imapd_mail_pre_jail(void)
{
	imapd_settings_load();
	imapd_settings.role = IMAPD_ROLE_MAIL;
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = imapd_mail_pre_jail,
		.serve = imapd_serve_mail,
	};

	return server_main(argc, argv, &ops);
}
