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
	{ "default_process_limit", CONFIG_INT, "100",
	    "the most processes of one service, when master.conf maxproc is \"-\"" },
	{ "inet_interfaces", CONFIG_LIST, "all",
	    "addresses inet services listen on when master.conf gives only a port (\"all\" or a list of addresses)" },
	{ "inet_protocols", CONFIG_LIST, "all",
	    "IP versions to use: \"all\", \"ipv4\", \"ipv6\" or \"ipv4, ipv6\"" },
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
	{ "message_size_limit", CONFIG_SIZE, "10m",
	    "the largest message accepted, in bytes (suffixes k, m, g: powers of 1024)" },
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
	{ "queue_directory", CONFIG_STR, "/var/spool/postern",
	    "the mail queue; also the chroot directory and the home of private/ and public/ sockets" },
	{ "service_throttle_time", CONFIG_TIME, "60s",
	    "how long master waits before it restarts a service whose processes keep failing" },
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
	{ "tls_key_file", CONFIG_STR, "",
	    "PEM file with the private key of tls_cert_file" },
	{ "user_database", CONFIG_STR, "$data_directory/users.db",
	    "the database of mail users and their passwords" },
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
