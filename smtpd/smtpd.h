/* SPDX-License-Identifier: MIT */
/*
 * smtpd - private interfaces of the SMTP server (the smtpd sources only)
 *
 * One struct smtpd_session per client connection. smtpd_session_run()
 * drives the whole conversation on a struct stream, so the same code
 * runs under master (smtpd.c), in the unit test and in the fuzz target
 * (both over a socketpair in-process).
 *
 * The settings are read from conf() once per process into struct
 * smtpd_settings (smtpd_settings_load); -o overrides in master.conf give
 * each service (smtp, submission, smtps) its own values.
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "smtp_proto.h"
#include "str.h"

struct stream;
struct tls_context;
struct tls_session;
struct cleanup_client;
struct map;

enum smtpd_bare_newline {
	SMTPD_BARE_NL_REJECT,	/* 550 5.5.2 at the end of DATA */
	SMTPD_BARE_NL_NORMALIZE,	/* store CRLF instead */
};

enum smtpd_tls_level {
	SMTPD_TLS_NONE,		/* no STARTTLS */
	SMTPD_TLS_MAY,		/* offer STARTTLS */
	SMTPD_TLS_ENCRYPT,	/* require TLS before MAIL and AUTH */
};

/* One CIDR network of mynetworks. */
struct smtpd_net {
	int family;		/* AF_INET, AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct smtpd_settings {
	const char *myhostname;
	const char *banner;
	const char *cleanup_socket;	/* relative to $queue_directory */
	uint64_t size_limit;		/* 0 = none */
	uint64_t line_limit;
	unsigned rcpt_limit;		/* 0 = none */
	unsigned hard_error_limit;	/* 0 = none */
	unsigned timeout;
	unsigned data_timeout;
	unsigned greet_pause;
	unsigned conn_limit;		/* per client address, 0 = none */
	bool helo_required;
	bool disable_vrfy;
	bool peername_lookup;
	bool sasl_enable;
	bool sasl_header;
	bool tls_auth_only;
	bool wrappermode;
	enum smtpd_tls_level tls_level;
	enum smtpd_bare_newline bare_newline;
	const char *const *mydestination;
	size_t n_mydestination;
	const char *const *client_restrictions;
	size_t n_client_restrictions;
	const char *recipient_delimiter;
	struct smtpd_net *mynetworks;
	size_t n_mynetworks;
	struct map **alias_maps;
	size_t n_alias_maps;
};

/* The process-wide settings (smtpd_settings_load fills them). */
extern struct smtpd_settings smtpd_settings;

/*
 * smtpd_settings_load - read conf() into smtpd_settings; false with a
 * logged error on a bad value (the caller makes that fatal).
 */
bool smtpd_settings_load(void);

/* Who the client is (strings borrowed for the session). */
struct smtpd_client {
	const char *addr;	/* "192.0.2.1", "2001:db8::1", "local" */
	unsigned port;
	const char *name;	/* verified host name or "unknown" */
	const char *service;	/* master.conf service name */
};

#define SMTPD_VERB_COUNT	(SMTP_VERB_AUTH + 1)

struct smtpd_session {
	struct stream *stream;
	struct smtpd_client client;
	struct str *client_text;	/* "name[addr]" for logs */
	struct log_ctx log;		/* id: queue ID or NULL */
	struct log_ctx noqueue;		/* id: "NOQUEUE" */
	struct tls_context *tls_ctx;	/* borrowed; NULL = no TLS */
	struct tls_session *tls;
	struct str *tls_desc;		/* "TLSv1.3 with cipher ..." */

	struct smtp_cmd *cmd;
	struct str *line;
	struct str *scratch;

	/* session state */
	char *helo;			/* NULL until HELO/EHLO */
	bool esmtp;
	char *auth_user;		/* NULL until AUTH succeeded */
	const char *auth_method;
	unsigned errors;
	bool quit;			/* stop after this command */
	bool lost;			/* the connection broke (with quit) */
	int last_code;			/* the last reply's code */
	enum smtp_verb cur_verb;
	unsigned count_ok[SMTPD_VERB_COUNT + 1];	/* +1: unknown */
	unsigned count_all[SMTPD_VERB_COUNT + 1];

	/* transaction state */
	bool in_mail;
	bool tx_broken;			/* cleanup failed: 451 at DATA */
	struct cleanup_client *cleanup;
	char *queue_id;
	struct str *sender;		/* canonical */
	enum smtp_body body;
	bool smtputf8;
	unsigned nrcpt;
	struct str *first_rcpt;		/* canonical */
	bool bdat_active;		/* a BDAT chunk was seen */
	bool bdat_failed;		/* reject the rest and answer at LAST */
	int bdat_fail_code;
	struct str *bdat_fail_text;
	uint64_t content_size;
};

/* smtpd_session.c */
void smtpd_session_run(struct stream *s, const struct smtpd_client *client,
    struct tls_context *tls_ctx);
/*
 * smtpd_reply - send "code[ enh] text" (buffered; flushed by the command
 * loop when no pipelined input is waiting). enh may be NULL. Counts
 * errors (4xx, 5xx) towards smtpd_hard_error_limit and logs rejects.
 */
void smtpd_reply(struct smtpd_session *sess, int code, const char *enh,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
/* smtpd_reply_raw - send "code text" where text starts with the enhanced code */
void smtpd_reply_raw(struct smtpd_session *sess, int code, const char *text);
void smtpd_tx_reset(struct smtpd_session *sess);
/* smtpd_timeout_reply - 421 4.4.2 after a read timeout (plaintext only) */
void smtpd_timeout_reply(struct smtpd_session *sess);
const char *smtpd_protocol(const struct smtpd_session *sess);

/* smtpd_data.c */
void smtpd_cmd_data(struct smtpd_session *sess);
void smtpd_cmd_bdat(struct smtpd_session *sess);
/* smtpd_received - the Received: header for the current transaction */
void smtpd_received(struct smtpd_session *sess, struct str *out);

/* smtpd_check.c */
bool smtpd_net_parse(const char *item, struct smtpd_net *net);
bool smtpd_in_mynetworks(const char *addr);
bool smtpd_local_domain(const char *domain);
/* smtpd_check_client - client restrictions at MAIL; true = go on (reply sent if false) */
bool smtpd_check_client(struct smtpd_session *sess);
/* smtpd_check_pre_jail - read the SRS secret (as root); log_fatal when it cannot */
void smtpd_check_pre_jail(void);
/* smtpd_check_rcpt - recipient policy; true = accept (reply sent if false) */
bool smtpd_check_rcpt(struct smtpd_session *sess, const struct address *addr);
/* smtpd_local_user - 1 known local recipient, 0 unknown, -1 lookup failure */
int smtpd_local_user(const struct address *addr);
/* smtpd_conn_limit - take a connection slot for addr; false = over the limit */
bool smtpd_conn_limit(const char *addr);
/* smtpd_conn_release - give the connection slot back (after a session) */
void smtpd_conn_release(void);
/* smtpd_peer_name - verified reverse name of addr into out, or "unknown" */
void smtpd_peer_name(const char *addr, struct str *out);

/* smtpd_sasl.c */
void smtpd_cmd_auth(struct smtpd_session *sess);
bool smtpd_auth_offered(const struct smtpd_session *sess);
/* smtpd_sasl_mechs - the mechanisms for the EHLO AUTH line, space-separated */
void smtpd_sasl_mechs(struct smtpd_session *sess, struct str *out);
/* smtpd_sasl_end - drop the connection's SASL session (after a session) */
void smtpd_sasl_end(void);
/* smtpd_base64_decode - strict RFC 4648 decode of p[0..n) appended to out; false if malformed */
bool smtpd_base64_decode(const char *p, size_t n, struct str *out);

#endif
