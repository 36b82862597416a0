/* SPDX-License-Identifier: MIT */
/*
 * master_conf - master.conf: the services master runs
 *
 * One service per line, eight or more white-space separated columns:
 *
 *	# service     type  private user chroot wakeup maxproc command + args
 *	127.0.0.1:10025 inet n      -    n      -      -       smtpd
 *	cleanup       unix  n       -    n      -      0       cleanup
 *	qmgr          unix  n       -    n      300    1       qmgr
 *
 * service: for inet, "port", "host:port" or "[v6addr]:port" (a bare port
 * listens on every address of inet_interfaces); for unix and fifo, a name
 * (the socket is $queue_directory/private/NAME or public/NAME).
 * type: inet, unix or fifo. private: y or n ("-" = y, except inet = n).
 * user: the account the worker runs as ("-" = $mail_owner).
 * chroot: y or n ("-" = n); y chroots into $queue_directory.
 * wakeup: seconds between wakeup events master sends the service ("-" or
 * 0 = none; a trailing '?' means only while the service is in use).
 * maxproc: the most processes ("-" = $default_process_limit; 0 = no limit).
 * command: the program (in $daemon_directory) and its arguments, including
 * "-o name=value" overrides of postern.conf for this service only.
 * Lines starting with white space continue the previous line; '#' lines
 * and blank lines are ignored.
 *
 * Errors name the file and line: master_conf_load() collects every problem
 * into *errors_r (one "FILE:LINE: what" per line) and returns -1; a broken
 * file yields no services at all (master must not run half a config).
 */
#ifndef POSTERN_MASTER_CONF_H
#define POSTERN_MASTER_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

enum master_service_type {
	MASTER_SERVICE_INET,
	MASTER_SERVICE_UNIX,
	MASTER_SERVICE_FIFO,
};

struct master_service {
	char *name;		/* as written in column 1 */
	enum master_service_type type;
	char *host;		/* inet: address to bind, NULL = inet_interfaces */
	unsigned port;		/* inet: port */
	bool private_;		/* unix/fifo: in private/ (else public/) */
	char *user;		/* NULL = $mail_owner */
	bool chroot;
	unsigned wakeup;	/* seconds, 0 = none */
	bool wakeup_if_used;	/* the '?' suffix */
	int maxproc;		/* -1 = $default_process_limit, 0 = unlimited */
	char **argv;		/* command + args, NULL-terminated; argv[0] = program */
	size_t argc;
	char *file;		/* where it was defined */
	unsigned line;
};

struct master_conf {
	struct master_service *services;
	size_t count;
};

/* master_conf_load - parse a file; 0, or -1 with every problem in errors */
int master_conf_load(const char *path, struct master_conf **conf_r,
    struct str *errors);
/* master_conf_parse - the same from memory (tests, fuzzing) */
int master_conf_parse(const char *data, size_t len, const char *filename,
    struct master_conf **conf_r, struct str *errors);
void master_conf_free(struct master_conf **confp);

/* master_service_same - true if two definitions need no restart between them */
bool master_service_same(const struct master_service *a,
    const struct master_service *b);
/* master_service_type_name - "inet", "unix" or "fifo" */
const char *master_service_type_name(enum master_service_type type);

#endif
