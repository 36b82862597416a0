/* SPDX-License-Identifier: MIT */
/*
 * sieve - the Sieve mail filtering engine (RFC 5228 and extensions)
 *
 * One engine for lmtpd (runs the user's active script at delivery),
 * sieved (ManageSieve PUTSCRIPT/CHECKSCRIPT) and the postern CLI
 * (postern sieve test|check|compile).
 *
 * LIFE CYCLE
 *	sieve_compile() turns script text into a struct sieve_script: the
 *	lexer and parser build a syntax tree, the validator checks every
 *	command, test, tag and argument against the extensions the script
 *	requires and lowers it into a tree of pre-resolved nodes
 *	(comparator, match type, address part, relational operator and
 *	every constant key decided at compile time; keys for :is/:contains
 *	under i;ascii-casemap pre-lowered; regexes compiled once). Included
 *	scripts (RFC 6609) are loaded through the loader callback and
 *	compiled into the same object, so running never reads a file.
 *
 *	sieve_script_save() serialises the compiled form (a versioned,
 *	length-prefixed binary with a hash of the source of every script
 *	it contains); sieve_script_load() reads it back and refuses it
 *	(returns 1: "stale") when the format version or any source hash
 *	differs, so the caller compiles afresh. See sieve_cache_open() for
 *	the ready-made "SCRIPT.svbin next to the script" cache.
 *
 *	sieve_run() executes a compiled script against one message and
 *	fills a struct sieve_result: the actions, whether the implicit keep
 *	is still in force (and its flags), the header edits, the
 *	duplicate-tracking marks to commit after a successful delivery,
 *	and any runtime error. A runtime error (a limit, a conflict between
 *	actions) discards the script's actions and leaves only the
 *	implicit keep, as RFC 5228 2.10.6 asks; the reason is in
 *	result->error.
 *
 * PURITY
 *	The engine does no I/O: the message comes in as bytes, the envelope
 *	as strings, and everything else (does a mailbox exist, was this
 *	message seen before, the text of an included script, the current
 *	time) through struct sieve_env callbacks. It never ends the
 *	process on any script or message; only allocation failure does
 *	(alloc.h). It is not thread-safe across one sieve_script only in
 *	that sieve_run() may be called on the same compiled script from one
 *	thread at a time (the script is read-only while running, but the
 *	regex state is shared).
 *
 * LIMITS
 *	Every dimension an attacker controls is bounded by struct
 *	sieve_limits: script size, string size, nesting, actions,
 *	redirects, include depth and count, regex length, variables and
 *	their size, and a budget of match steps per run (so a :matches or
 *	:regex bomb ends as a runtime error, not a hang).
 */
#ifndef POSTERN_SIEVE_H
#define POSTERN_SIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct str;

/* ------------------------------------------------------------ limits */

struct sieve_limits {
	size_t max_script_size;		/* octets of one script (1 MiB) */
	size_t max_string_size;		/* one string literal (256 KiB) */
	unsigned max_nesting;		/* blocks and tests inside each other (32) */
	unsigned max_actions;		/* actions in one result (32) */
	unsigned max_redirects;		/* redirects per message (4) */
	unsigned max_notifications;	/* enotify notify actions per message (4) */
	unsigned max_include_depth;	/* include inside include (10) */
	unsigned max_includes;		/* included scripts in total (64) */
	size_t max_regex_size;		/* one :regex pattern (1024 octets) */
	unsigned max_variables;		/* distinct variables per script (255) */
	size_t max_variable_size;	/* value of one variable (4096) */
	uint64_t max_match_steps;	/* comparison work per run (10,000,000) */
	size_t max_body_size;		/* octets of a body the body test reads (1 MiB) */
	unsigned vacation_min_period;	/* seconds (1 day) */
	unsigned vacation_max_period;	/* seconds (0 = no maximum) */
	unsigned vacation_default_period; /* seconds (7 days) */
	unsigned duplicate_default_period; /* seconds (12 hours) */
	unsigned duplicate_max_period;	/* seconds (2 days) */
};

/* sieve_limits_default - the defaults named above */
void sieve_limits_default(struct sieve_limits *limits);

/* ------------------------------------------------------------ errors */

struct sieve_error {
	char *script;		/* script name ("personal"/"global" name for includes) */
	unsigned line;		/* 1-based; 0 = not tied to a place */
	unsigned column;	/* 1-based; 0 = unknown */
	bool warning;		/* a warning, not an error */
	char *text;		/* English, printable ASCII (untrusted text escaped) */
};

struct sieve_errors {
	struct sieve_error *items;
	size_t count;
	size_t cap;		/* private */
	size_t errors;		/* items that are errors, not warnings */
};

/* sieve_errors_clear - free the items; the struct may be reused */
void sieve_errors_clear(struct sieve_errors *errs);
/*
 * sieve_errors_format - append "NAME:LINE:COL: error: TEXT\n" per item to
 * out (warnings say "warning").
 */
void sieve_errors_format(const struct sieve_errors *errs, struct str *out);

/* ------------------------------------------------------------ compiling */

enum sieve_location {
	SIEVE_PERSONAL,		/* include :personal (the default) */
	SIEVE_GLOBAL,		/* include :global */
};

/*
 * Loads the source of an included script (RFC 6609). name is the
 * include argument (already checked: no '/', not empty, printable
 * UTF-8). Return 0 with the text appended to out, 1 if it does not
 * exist, -1 with *error_r (static or owned by the loader until the
 * next call) on another failure. The engine bounds the size by
 * max_script_size.
 */
struct sieve_loader {
	int (*load)(void *ctx, enum sieve_location loc, const char *name,
	    struct str *out, const char **error_r);
	void *ctx;
};

struct sieve_script;

/*
 * sieve_compile - compile the script p/n, called name (for messages).
 * limits NULL = defaults; loader NULL = include always fails "not
 * found". Errors and warnings are appended to errs (may be NULL).
 * Returns the script, or NULL when it has errors. The returned script
 * owns all its memory (nothing points into p).
 */
struct sieve_script *sieve_compile(const char *name, const char *p, size_t n,
    const struct sieve_limits *limits, const struct sieve_loader *loader,
    struct sieve_errors *errs);

/* sieve_script_free - free *sp (NULL allowed) and NULL it */
void sieve_script_free(struct sieve_script **sp);

/* sieve_script_name - the name given to sieve_compile */
const char *sieve_script_name(const struct sieve_script *script);

/* sieve_script_dump - append a readable listing of the compiled tree */
void sieve_script_dump(const struct sieve_script *script, struct str *out);

/*
 * sieve_script_save - append the compiled form to out (the binary cache
 * format, SIEVE_BINARY_VERSION). Cannot fail.
 */
#define SIEVE_BINARY_MAGIC	"PSVBIN\r\n"
#define SIEVE_BINARY_VERSION	3
void sieve_script_save(const struct sieve_script *script, struct str *out);

/*
 * sieve_script_load - rebuild a script from the binary p/n. source/
 * source_len is the current text of the main script (its hash must
 * match the one stored); included scripts are checked through loader
 * the same way. Returns 0 with *script_r set; 1 when the binary is
 * stale (other version, other source, an include changed: compile
 * again); -1 with *error_r (static) when it is damaged. Never trusts
 * the binary: every length, count and id is checked.
 */
int sieve_script_load(const char *p, size_t n, const char *source,
    size_t source_len, const struct sieve_limits *limits,
    const struct sieve_loader *loader, struct sieve_script **script_r,
    const char **error_r);

/*
 * sieve_script_hash - the 64-bit hash of a script source that the
 * binary stores (FNV-1a over the octets, then the length).
 */
uint64_t sieve_script_hash(const char *p, size_t n);

/* ------------------------------------------------------------ running */

/*
 * What a script runs against. Strings are borrowed for the duration of
 * sieve_run() only. Any callback may be NULL (the answers then: no
 * mailbox exists except INBOX; nothing is a duplicate; no metadata).
 */
struct sieve_env {
	/* The message exactly as stored (CRLF or LF line ends). */
	const char *msg;
	size_t msg_size;

	/* Envelope (RFC 5228 5.4): NULL = unknown. "" = null sender. */
	const char *env_from;
	const char *env_to;		/* the final recipient */
	const char *env_orig_to;	/* ORCPT, if known (else env_to is used) */
	const char *env_auth;		/* authenticated user, if any */

	/* The local user the script belongs to (for variables/vacation). */
	const char *user;
	/* The recipient_delimiter for :user/:detail (NULL or "" = "+") */
	const char *delimiters;

	/* environment extension (RFC 5183) */
	const char *domain;		/* "domain" */
	const char *host;		/* "host" */
	const char *location;		/* "location": "MDA", "MTA", "MS", "MUA" */
	const char *phase;		/* "phase": "during" */
	const char *remote_host;	/* "remote-host", if known */
	const char *remote_ip;		/* "remote-ip", if known */

	/* currentdate and vacation: the current time; 0 = time(NULL) */
	time_t now;
	/* minutes east of UTC for currentdate/date without :zone; INT32_MIN = local */
	int zone_minutes;

	/* spamtest/virustest (RFC 5235): header fields and how to read them */
	const char *spam_header;	/* e.g. "X-Spam-Score" (a number) */
	double spam_max;		/* the score that maps to 10 */
	const char *virus_header;	/* e.g. "X-Virus-Status" (0..5 already) */

	void *ctx;
	/* mailboxexists/fileinto :create checks: 1 exists, 0 not, -1 error */
	int (*mailbox_exists)(void *ctx, const char *mailbox);
	/*
	 * duplicate (RFC 7352): whether id (a binary hash, idlen octets)
	 * was marked within the last period seconds: 1 yes, 0 no, -1 error.
	 * Marks to make are returned in the result, for the caller to
	 * commit once the delivery succeeded.
	 */
	int (*duplicate_check)(void *ctx, const void *id, size_t idlen,
	    unsigned period);
};

enum sieve_action_type {
	SIEVE_ACT_KEEP,		/* store into mailbox (INBOX for keep) */
	SIEVE_ACT_FILEINTO,	/* store into mailbox */
	SIEVE_ACT_REDIRECT,	/* forward to address */
	SIEVE_ACT_REJECT,	/* refuse with a DSN/MDN (RFC 5429) */
	SIEVE_ACT_EREJECT,	/* refuse at the protocol level if possible */
	SIEVE_ACT_DISCARD,	/* cancels the implicit keep */
	SIEVE_ACT_VACATION,	/* RFC 5230 auto-reply */
	SIEVE_ACT_NOTIFY,	/* RFC 5435 notification (method: mailto) */
};

struct sieve_action {
	enum sieve_action_type type;
	unsigned line;		/* where in the script (0 = implicit keep) */
	char *mailbox;		/* KEEP, FILEINTO: UTF-8 mailbox name */
	char *address;		/* REDIRECT: the canonical address */
	char *text;		/* REJECT/EREJECT reason; VACATION reason */
	bool copy;		/* :copy (RFC 3894): the implicit keep stays */
	bool create;		/* :create (RFC 5490) */
	char *special_use;	/* :specialuse, if given */
	char **flags;		/* KEEP/FILEINTO: NULL-terminated (or NULL) */
	size_t flag_count;
	/* The header of the message to store or send, when editheader
	 * changed it (NULL = unchanged): a complete header block. */
	struct str *edited_header;

	/* VACATION */
	unsigned period;	/* seconds between replies to one sender */
	char *subject;		/* NULL = default ("Auto: " + Subject) */
	char *from;		/* NULL = default (the recipient) */
	char **addresses;	/* :addresses, NULL-terminated, or NULL */
	bool mime;		/* text is a MIME entity */
	char *handle;		/* :handle, or the computed default */

	/* NOTIFY (from: :from or NULL; text: :message or NULL) */
	char *method;		/* the URI, checked by sieve_notify_method_ok */
	unsigned importance;	/* 1 high, 2 normal (default), 3 low */
	char **options;		/* :options, NULL-terminated, or NULL */
};

/* A duplicate mark to remember once the delivery succeeded. */
struct sieve_dup_mark {
	unsigned char id[32];
	size_t idlen;
	unsigned period;
};

struct sieve_result {
	struct sieve_action *actions;
	size_t count;
	size_t cap;			/* private */
	bool implicit_keep;		/* store into INBOX as well */
	char **keep_flags;		/* imap4flags for the implicit keep, or NULL */
	size_t keep_flag_count;
	struct str *edited_header;	/* final header after editheader, or NULL */
	struct sieve_dup_mark *dups;
	size_t dup_count;
	bool failed;			/* a runtime error: only the implicit keep */
	char *error;			/* why (with line), or NULL */
	struct sieve_errors warnings;	/* runtime warnings */
};

/* sieve_result_clear - free the contents; the struct may be reused */
void sieve_result_clear(struct sieve_result *res);

/*
 * sieve_run - run script on env's message. res must be zeroed or
 * cleared. Always returns with a usable result: 0 when the script ran
 * to its end, -1 when a runtime error stopped it (res->failed, the
 * actions dropped, the implicit keep in force, res->error saying why).
 */
int sieve_run(const struct sieve_script *script, const struct sieve_env *env,
    const struct sieve_limits *limits, struct sieve_result *res);

/*
 * sieve_result_format - append the result as lines of text, the
 * stable format of `postern sieve test` (see postern-sieve(8)):
 *	fileinto "MAILBOX" [:copy] [:create] [:flags "F1 F2"]
 *	keep [:flags "..."]
 *	redirect "ADDR" [:copy]
 *	reject "TEXT" | ereject "TEXT" | discard
 *	vacation :seconds N [:subject "S"] [:from "F"] [:addresses "A B"]
 *	    [:mime] :handle "H" "REASON"
 *	notify "URI" :importance N [:from "F"] [:message "M"]
 *	    [:options "O1 O2"] :to "R1 R2" [:subject "S"] [:body "B"]
 *	    (:to, :subject, :body: what the mailto URI and :message give)
 *	implicit-keep [:flags "..."]
 *	error "WHY" (after a runtime error)
 * Strings are quoted with \" \\ \r \n \t and \xHH for other controls.
 */
void sieve_result_format(const struct sieve_result *res, struct str *out);

/* ------------------------------------------------------------ enotify */

/*
 * The notification methods (sieve_notify.c). Only mailto (RFC 5436)
 * is supported; its URI (RFC 6068) parses into recipients (to and cc
 * together, canonical, de-duplicated, at most SIEVE_MAILTO_MAX_RCPTS)
 * and the "subject" and "body" fields (UTF-8); other fields (bcc too)
 * are ignored.
 */
#define SIEVE_NOTIFY_METHODS	"mailto"	/* ManageSieve NOTIFY */
#define SIEVE_MAILTO_MAX_RCPTS	8

struct sieve_mailto {
	char **rcpts;		/* NULL-terminated */
	bool *cc;		/* cc[i]: rcpts[i] came only from "cc" */
	size_t nrcpts;
	struct str *subject;	/* NULL = none in the URI */
	struct str *body;	/* NULL = none in the URI */
};

/*
 * sieve_mailto_parse - parse the mailto URI uri/n into *m (cleared
 * first). 0, or -1 with *error_r (static) and *m empty.
 */
int sieve_mailto_parse(const char *uri, size_t n, struct sieve_mailto *m,
    const char **error_r);
/* sieve_mailto_clear - free what *m holds; it may be reused */
void sieve_mailto_clear(struct sieve_mailto *m);
/*
 * sieve_notify_method_ok - is uri/n a valid URI of a supported method?
 * false with *error_r (static) saying why.
 */
bool sieve_notify_method_ok(const char *uri, size_t n, const char **error_r);
/*
 * sieve_notify_option_ok - is p/n a notify :options item of the form
 * NAME=VALUE (NAME: ASCII letters, digits, "-" "." "_"; VALUE: no
 * control characters), as RFC 5435 section 3.6 and Pigeonhole want?
 */
bool sieve_notify_option_ok(const char *p, size_t n);

/* sieve_extensions - the space-separated capability list (SIEVE capability) */
const char *sieve_extensions(void);

/* ------------------------------------------------------------ files */

/*
 * The file side, in sieve_file.c (the only part of lib/sieve that does
 * I/O). A directory loader for include: PERSONAL_DIR/NAME.sieve and
 * GLOBAL_DIR/NAME.sieve (either dir may be NULL: "not found").
 */
struct sieve_dir_loader {
	const char *personal_dir;
	const char *global_dir;
	char *error;		/* private */
};
/* sieve_dir_loader_init - fill loader to read through dl (which must outlive it) */
void sieve_dir_loader_init(struct sieve_dir_loader *dl,
    struct sieve_loader *loader);
void sieve_dir_loader_deinit(struct sieve_dir_loader *dl);

/*
 * sieve_cache_open - the compiled script for the file at path, from
 * PATH.svbin when that is current (same format version, same hash of
 * the script and of every included script), else compiled afresh and
 * written to PATH.svbin atomically (best effort: a read-only directory
 * only costs the compile). *from_cache_r (may be NULL) says which.
 * Returns NULL with the errors in errs when the script does not
 * compile or cannot be read.
 */
struct sieve_script *sieve_cache_open(const char *path,
    const struct sieve_limits *limits, const struct sieve_loader *loader,
    struct sieve_errors *errs, bool *from_cache_r);

#endif
