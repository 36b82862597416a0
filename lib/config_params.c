/* SPDX-License-Identifier: MIT */
/*
 * config_params - the table of every postern.conf parameter
 *
 * DESCRIPTION
 *	One row per parameter: name, type, default and a one-line
 *	description (printed by `postern config -d -v` and copied into
 *	postern.conf(5) by scripts/gen-conf-man). The table is sorted by
 *	name (strcmp order) and ends with a NULL name; config_param_find()
 *	relies on the order and config_test checks it.
 *
 *	A default may refer to other parameters ($name). A default of NULL
 *	means "computed at run time": config.c has the function for each
 *	such name (myhostname, mydomain) and panics on a NULL default it
 *	does not know. Keep the description of a computed default in step
 *	with that function.
 *
 *	To add a parameter: insert its row in sorted order, describe it in
 *	one line, and regenerate man/postern.conf.5 (scripts/gen-conf-man).
 *
 * SEE ALSO
 *	config.h, postern.conf(5)
 */
#include <string.h>

#include "config.h"

const struct config_param config_params[] = {
	{ "2bounce_notice_recipient", CONFIG_STR, "postmaster",
	    "where qmgr sends a bounce that could not be delivered (a double bounce)" },
	{ "alias_maps", CONFIG_LIST, "",
	    "alias tables (type:name) whose keys are local recipients besides the user database" },
	{ "allow_mail_to_commands", CONFIG_BOOL, "no",
	    "allow alias targets that are commands (\"|command\"); refused (bounced) when no" },
	{ "allow_mail_to_files", CONFIG_BOOL, "no",
	    "allow alias targets that are files (\"/path\"); refused (bounced) when no" },
	{ "bounce_queue_lifetime", CONFIG_TIME, "5d",
	    "how long qmgr retries a bounce (null sender) before giving up on it" },
	{ "bounce_size_limit", CONFIG_SIZE, "50000",
	    "the most octets of the original message a DSN returns (RET=FULL); longer: headers only" },
	{ "canonical_maps", CONFIG_LIST, "",
	    "address mapping tables (type:name) cleanup applies to envelope and header senders and recipients" },
	{ "command_directory", CONFIG_STR, "/usr/sbin",
	    "where the postern and sendmail commands are installed" },
	{ "config_directory", CONFIG_STR, "/etc/postern",
	    "where postern.conf and master.conf are (set by the program that reads them)" },
	{ "daemon_directory", CONFIG_STR, "/usr/libexec/postern",
	    "where the daemon programs that master starts are installed" },
	{ "data_directory", CONFIG_STR, "/var/lib/postern",
	    "writable data that is not mail: caches, databases, state" },
	{ "debug", CONFIG_BOOL, "no",
	    "log debug-level lines" },
	{ "default_destination_concurrency_limit", CONFIG_INT, "20",
	    "the most parallel deliveries qmgr runs to one destination of a transport" },
	{ "default_destination_recipient_limit", CONFIG_INT, "50",
	    "the most recipients qmgr puts into one delivery request" },
	{ "default_process_limit", CONFIG_INT, "100",
	    "the most processes of one service, when master.conf maxproc is \"-\"" },
	{ "default_transport", CONFIG_STR, "smtp",
	    "transport[:nexthop] for recipients that are not local and not in transport_maps" },
	{ "delay_warning_time", CONFIG_TIME, "0",
	    "send the sender a delay DSN once mail is this old and still queued (0 = never)" },
	{ "disable_plaintext_auth", CONFIG_BOOL, "yes",
	    "imapd and pop3d refuse password logins over connections without TLS (LOGINDISABLED) except from loopback addresses" },
	{ "disable_vrfy_command", CONFIG_BOOL, "yes",
	    "smtpd answers VRFY with 252 without looking the address up" },
	{ "header_count_limit", CONFIG_INT, "1000",
	    "the most header fields a message may have; more is rejected (cleanup)" },
	{ "header_size_limit", CONFIG_SIZE, "102400",
	    "the largest message header block in bytes; a bigger one is rejected (cleanup)" },
	{ "hopcount_limit", CONFIG_INT, "50",
	    "the most Received: header fields a message may have before it is rejected as a mail loop" },
	{ "imap_banner", CONFIG_STR, "Postern ready.",
	    "the text after the capabilities in imapd's greeting" },
	{ "imap_client_connection_limit", CONFIG_INT, "50",
	    "the most simultaneous IMAP connections from one client address (0 = no limit)" },
	{ "imap_hierarchy_separator", CONFIG_STR, "/",
	    "the mailbox hierarchy separator imapd shows to clients: \"/\" or \".\"" },
	{ "imap_line_length_limit", CONFIG_SIZE, "64k",
	    "the largest IMAP command imapd accepts, literals included (APPEND messages excepted)" },
	{ "imap_login_timeout", CONFIG_TIME, "60s",
	    "imapd's autologout timer before authentication" },
	{ "imap_loopback_secure", CONFIG_BOOL, "yes",
	    "imapd counts connections from loopback addresses as secure for disable_plaintext_auth; no makes them use STARTTLS too" },
	{ "imap_mail_service", CONFIG_STR, "$queue_directory/private/imap-mail",
	    "the unix socket of the post-login imapd service (imap_role = mail) that login processes hand connections to" },
	{ "imap_max_append_size", CONFIG_SIZE, "50m",
	    "the largest message APPEND accepts (APPENDLIMIT)" },
	{ "imap_role", CONFIG_STR, "login",
	    "imapd's role: login (pre-authentication, network side), mail (post-login, store side) or standalone (both in one process: tests and -S)" },
	{ "imap_timeout", CONFIG_TIME, "30m",
	    "imapd's autologout timer for an authenticated client (at least 30 minutes by RFC 9051)" },
	{ "imap_tls_wrappermode", CONFIG_BOOL, "no",
	    "imapd starts TLS at connect (IMAPS, port 993) instead of offering STARTTLS" },
	{ "imap_user_connection_limit", CONFIG_INT, "20",
	    "the most simultaneous IMAP sessions of one user (0 = no limit)" },
	{ "inet_interfaces", CONFIG_LIST, "all",
	    "addresses inet services listen on when master.conf gives only a port (\"all\" or a list of addresses)" },
	{ "inet_protocols", CONFIG_LIST, "all",
	    "IP versions to use: \"all\", \"ipv4\", \"ipv6\" or \"ipv4, ipv6\"" },
	{ "lmtp_destination_concurrency_limit", CONFIG_INT, "$default_destination_concurrency_limit",
	    "the most parallel LMTP deliveries to one destination" },
	{ "lmtp_duplicate_directory", CONFIG_STR, "$store_directory/.lmtp-duplicates",
	    "where lmtpd keeps the Message-IDs it delivered per user (for lmtp_duplicate_window)" },
	{ "lmtp_duplicate_window", CONFIG_TIME, "0",
	    "lmtpd discards a message whose Message-ID it already delivered to the same user within this time (0 = off)" },
	{ "lmtp_save_to_detail_mailbox", CONFIG_BOOL, "no",
	    "lmtpd delivers user+detail into the mailbox named detail when it exists (else INBOX)" },
	{ "lmtpd_line_length_limit", CONFIG_SIZE, "1m",
	    "the longest DATA line lmtpd accepts; a longer one fails the message with 552 5.3.4" },
	{ "lmtpd_message_size_limit", CONFIG_SIZE, "50m",
	    "the largest message lmtpd accepts, in bytes (0 = no limit)" },
	{ "lmtpd_recipient_limit", CONFIG_INT, "1000",
	    "the most recipients of one LMTP transaction (0 = no limit)" },
	{ "lmtpd_timeout", CONFIG_TIME, "300s",
	    "how long lmtpd waits for a client command, a piece of the message, or for a reply to be sent" },
	{ "local_transport", CONFIG_STR, "lmtp:unix:$queue_directory/private/lmtpd",
	    "transport:nexthop for local users (lmtp:unix:/path or lmtp:inet:host:port)" },
	{ "mail_owner", CONFIG_STR, "postern",
	    "the unprivileged account that owns the queue and runs the daemons" },
	{ "maillog_file", CONFIG_STR, "",
	    "append log lines to this file (\"-\" = standard error); empty = log to syslog" },
	{ "master_stop_timeout", CONFIG_TIME, "10s",
	    "how long master waits for its children to exit on stop before it kills them" },
	{ "max_connections", CONFIG_INT, "1000",
	    "the most client connections one process of a multi-connection daemon serves at once" },
	{ "max_idle", CONFIG_TIME, "100s",
	    "a daemon process exits after waiting this long for a new client" },
	{ "max_use", CONFIG_INT, "100",
	    "a daemon process exits after serving this many clients (0 = no limit)" },
	{ "maximal_backoff_time", CONFIG_TIME, "4000s",
	    "the longest time between two delivery attempts of deferred mail" },
	{ "maximal_queue_lifetime", CONFIG_TIME, "5d",
	    "how long mail may stay queued and deferred before qmgr bounces it" },
	{ "message_size_limit", CONFIG_SIZE, "10m",
	    "the largest message accepted, in bytes (suffixes k, m, g: powers of 1024)" },
	{ "minimal_backoff_time", CONFIG_TIME, "300s",
	    "the shortest time between two delivery attempts of deferred mail (doubled per attempt)" },
	{ "mydestination", CONFIG_LIST, "$myhostname, localhost.$mydomain, localhost",
	    "the domains this system delivers locally" },
	{ "mydomain", CONFIG_STR, NULL,
	    "this system's domain; default: $myhostname minus its first label, or \"localdomain\"" },
	{ "myhostname", CONFIG_STR, NULL,
	    "this system's fully qualified host name; default: from gethostname(2), qualified through the resolver if it has no dot" },
	{ "mynetworks", CONFIG_LIST, "127.0.0.0/8 [::1]/128",
	    "trusted client networks (address/prefix), which may relay" },
	{ "myorigin", CONFIG_STR, "$myhostname",
	    "the domain that locally posted mail appears to come from" },
	{ "pop3_banner", CONFIG_STR, "Postern ready.",
	    "the text after +OK in pop3d's greeting" },
	{ "pop3_client_connection_limit", CONFIG_INT, "50",
	    "the most simultaneous POP3 connections from one client address (0 = no limit)" },
	{ "pop3_lock_session", CONFIG_BOOL, "yes",
	    "a POP3 session locks the user's maildrop (RFC 1939): a second POP3 login gets -ERR [IN-USE]; IMAP and deliveries are not affected" },
	{ "pop3_login_timeout", CONFIG_TIME, "60s",
	    "pop3d's inactivity timer before authentication" },
	{ "pop3_loopback_secure", CONFIG_BOOL, "yes",
	    "pop3d counts connections from loopback addresses as secure for disable_plaintext_auth (as imapd does); no makes them use STLS too" },
	{ "pop3_mail_service", CONFIG_STR, "$queue_directory/private/pop3-mail",
	    "the unix socket of the post-login pop3d service (pop3_role = mail) that login processes hand connections to" },
	{ "pop3_role", CONFIG_STR, "login",
	    "pop3d's role: login (pre-authentication, network side), mail (post-login, store side) or standalone (both in one process: tests and -S)" },
	{ "pop3_timeout", CONFIG_TIME, "10m",
	    "pop3d's inactivity timer for an authenticated client (at least 10 minutes by RFC 1939)" },
	{ "pop3_tls_wrappermode", CONFIG_BOOL, "no",
	    "pop3d starts TLS at connect (POP3S, port 995) instead of offering STLS" },
	{ "pop3_user_connection_limit", CONFIG_INT, "10",
	    "the most simultaneous POP3 sessions of one user (0 = no limit)" },
	{ "qmgr_message_active_limit", CONFIG_INT, "20000",
	    "the most messages qmgr keeps in memory (the active queue); the rest wait on disk" },
	{ "qmgr_message_recipient_limit", CONFIG_INT, "20000",
	    "the most recipients qmgr keeps in memory over all active messages" },
	{ "queue_directory", CONFIG_STR, "/var/spool/postern",
	    "the mail queue; also the chroot directory and the home of private/ and public/ sockets" },
	{ "queue_run_delay", CONFIG_TIME, "300s",
	    "how often qmgr scans the deferred queue for mail due for another attempt" },
	{ "quota_full_tempfail", CONFIG_BOOL, "yes",
	    "a recipient over its storage quota gets 452 4.2.2 (try later) instead of 552 5.2.2" },
	{ "quota_storage_limit", CONFIG_SIZE, "1g",
	    "per-user storage quota (sum of message sizes in all mailboxes) when the user database sets none (0 = unlimited)" },
	{ "recipient_canonical_maps", CONFIG_LIST, "",
	    "address mapping tables (type:name) for envelope and header recipients, applied before canonical_maps" },
	{ "recipient_delimiter", CONFIG_STR, "+",
	    "characters that separate a local user name from an address extension (user+box)" },
	{ "relayhost", CONFIG_STR, "",
	    "send all non-local mail to this host (\"host\", \"[host]:port\"; no MX lookup yet); empty = none" },
	{ "sender_canonical_maps", CONFIG_LIST, "",
	    "address mapping tables (type:name) for envelope and header senders, applied before canonical_maps" },
	{ "service_throttle_time", CONFIG_TIME, "60s",
	    "how long master waits before it restarts a service whose processes keep failing" },
	{ "smtp_connect_timeout", CONFIG_TIME, "30s",
	    "how long the smtp/lmtp delivery agent waits for a TCP or UNIX connection" },
	{ "smtp_data_done_timeout", CONFIG_TIME, "600s",
	    "how long the delivery agent waits for the reply(s) after the end of the message" },
	{ "smtp_data_init_timeout", CONFIG_TIME, "120s",
	    "how long the delivery agent waits for the reply to DATA" },
	{ "smtp_data_xfer_timeout", CONFIG_TIME, "180s",
	    "how long the delivery agent waits for each write of message content" },
	{ "smtp_destination_concurrency_limit", CONFIG_INT, "$default_destination_concurrency_limit",
	    "the most parallel SMTP deliveries to one destination" },
	{ "smtp_helo_name", CONFIG_STR, "$myhostname",
	    "the name the delivery agent sends with EHLO/LHLO" },
	{ "smtp_helo_timeout", CONFIG_TIME, "300s",
	    "how long the delivery agent waits for the greeting and the EHLO/LHLO reply" },
	{ "smtp_mail_timeout", CONFIG_TIME, "300s",
	    "how long the delivery agent waits for the reply to MAIL FROM (and RSET, QUIT)" },
	{ "smtp_rcpt_timeout", CONFIG_TIME, "300s",
	    "how long the delivery agent waits for the reply to RCPT TO" },
	{ "smtpd_banner", CONFIG_STR, "$myhostname ESMTP Postern",
	    "the text after \"220 \" in smtpd's greeting" },
	{ "smtpd_client_connection_count_limit", CONFIG_INT, "50",
	    "the most simultaneous smtpd connections from one client address (0 = no limit)" },
	{ "smtpd_client_restrictions", CONFIG_LIST, "",
	    "checks at MAIL FROM: permit_mynetworks, permit_sasl_authenticated, permit, reject (first match wins; empty = permit)" },
	{ "smtpd_data_timeout", CONFIG_TIME, "180s",
	    "how long smtpd waits for each read of message content (DATA, BDAT)" },
	{ "smtpd_forbid_bare_newline", CONFIG_STR, "reject",
	    "message lines ending in a bare LF: reject (550 5.5.2) or normalize (to CRLF); DATA ends only at CRLF.CRLF either way" },
	{ "smtpd_greet_pause", CONFIG_TIME, "0s",
	    "smtpd waits this long before its greeting and drops clients that talk first (554 5.5.1); 0 = off" },
	{ "smtpd_hard_error_limit", CONFIG_INT, "20",
	    "smtpd disconnects a client after this many errors" },
	{ "smtpd_helo_required", CONFIG_BOOL, "no",
	    "smtpd requires HELO or EHLO before MAIL" },
	{ "smtpd_line_length_limit", CONFIG_SIZE, "64k",
	    "the longest line of message content smtpd accepts, in bytes (longer: the message is rejected)" },
	{ "smtpd_peername_lookup", CONFIG_BOOL, "yes",
	    "smtpd looks up the client's host name (reverse DNS, forward-confirmed)" },
	{ "smtpd_recipient_limit", CONFIG_INT, "1000",
	    "the most recipients smtpd accepts in one transaction" },
	{ "smtpd_sasl_auth_enable", CONFIG_BOOL, "no",
	    "smtpd offers SMTP AUTH (PLAIN, LOGIN) against the user database" },
	{ "smtpd_sasl_authenticated_header", CONFIG_BOOL, "no",
	    "smtpd names the authenticated user in the Received: header" },
	{ "smtpd_timeout", CONFIG_TIME, "300s",
	    "how long smtpd waits for a client command or for a reply to be sent" },
	{ "smtpd_tls_auth_only", CONFIG_BOOL, "yes",
	    "smtpd offers and accepts AUTH only over TLS" },
	{ "smtpd_tls_security_level", CONFIG_STR, "may",
	    "smtpd TLS: none (no STARTTLS), may (offer STARTTLS when a certificate is set), encrypt (require TLS before MAIL and AUTH)" },
	{ "smtpd_tls_wrappermode", CONFIG_BOOL, "no",
	    "smtpd starts TLS at connect (SMTPS, port 465, RFC 8314) instead of offering STARTTLS" },
	{ "store_directory", CONFIG_STR, "/var/mail/postern",
	    "the mailbox store" },
	{ "store_owner", CONFIG_STR, "postern-mail",
	    "the account that owns the mailbox store" },
	{ "syslog_facility", CONFIG_STR, "mail",
	    "the syslog facility to log with (mail, daemon, user, local0 to local7)" },
	{ "syslog_name", CONFIG_STR, "postern",
	    "the prefix of every log line's program name (\"postern/smtpd\")" },
	{ "tls_ca_file", CONFIG_STR, "",
	    "PEM file of trusted certificate authorities; empty = none" },
	{ "tls_cert_file", CONFIG_STR, "",
	    "PEM file with this server's certificate chain; empty = no TLS" },
	{ "tls_ciphers", CONFIG_STR, "HIGH:!aNULL:!MD5:!RC4:!3DES",
	    "OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are OpenSSL's defaults)" },
	{ "tls_key_file", CONFIG_STR, "",
	    "PEM file with the private key of tls_cert_file" },
	{ "tls_protocols", CONFIG_STR, ">=TLSv1.2",
	    "TLS protocol versions: \">=TLSv1.2\", \"<=TLSv1.3\" or exclusions \"!TLSv1, !TLSv1.1\"" },
	{ "transport_maps", CONFIG_LIST, "",
	    "tables of recipient domain (or address) -> transport:nexthop, tried before the built-in routing" },
	{ "trusted_users", CONFIG_LIST, "root",
	    "local users who may set any envelope sender with sendmail -f (others send as login@$myorigin)" },
	{ "user_database", CONFIG_STR, "$data_directory/users.db",
	    "the database of mail users and their passwords" },
	{ "virtual_alias_domains", CONFIG_LIST, "",
	    "domains whose every address is an alias in virtual_alias_maps (unknown ones bounce)" },
	{ "virtual_alias_maps", CONFIG_LIST, "",
	    "tables of address (or @domain) -> addresses, applied to every recipient before routing" },
	{ NULL, CONFIG_STR, NULL, NULL },
};

/* config_params_count - the number of rows before the NULL name */
static size_t
config_params_count(void)
{
	static size_t count;

	if (count == 0)
		while (config_params[count].name != NULL)
			count++;
	return count;
}

/* config_param_find - binary search of the sorted table */
const struct config_param *
config_param_find(const char *name)
{
	size_t lo = 0, hi = config_params_count(), mid;
	int cmp;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcmp(name, config_params[mid].name);
		if (cmp == 0)
			return &config_params[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
