/* SPDX-License-Identifier: MIT */
/*
 * sieve_private - the engine's internal data: arena, syntax tree, nodes
 *
 * The parser builds a generic syntax tree (struct sv_cmd: identifier,
 * arguments, tests, block). The validator turns it into struct sv_node:
 * a command or test id with its tags resolved into fixed fields and its
 * strings in numbered slots (SV_S_*). The node tree is what runs and
 * what the binary cache stores. Everything of one script lives in its
 * arena and is freed at once.
 */
#ifndef POSTERN_SIEVE_PRIVATE_H
#define POSTERN_SIEVE_PRIVATE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sieve/sieve.h"

/* ------------------------------------------------------------ arena */

struct sv_arena_block;
struct sv_arena {
	struct sv_arena_block *head;
	size_t used, size;
};
void *sv_alloc(struct sv_arena *a, size_t n);	/* zeroed */
void *sv_memdup(struct sv_arena *a, const void *p, size_t n);	/* + NUL */
void sv_arena_free(struct sv_arena *a);

/* ------------------------------------------------------------ strings */

struct sv_str {
	char *p;		/* NUL after len, not counted */
	uint32_t len;
	bool var;		/* may hold a ${...} to expand at run time */
};

struct sv_slist {
	uint32_t n;
	struct sv_str *v;
	void *pre;		/* run-time helpers (lowered keys, regexes) */
};

/* ------------------------------------------------------------ syntax tree */

enum sv_arg_type { SV_ARG_STR, SV_ARG_LIST, SV_ARG_NUM, SV_ARG_TAG };

struct sv_arg {
	enum sv_arg_type type;
	unsigned line, col;
	uint64_t num;
	const char *tag;	/* without ':' */
	struct sv_slist list;	/* STR: one item; LIST */
	bool used;		/* consumed by the validator */
};

struct sv_cmd {
	const char *name;
	unsigned line, col;
	struct sv_arg *args;
	uint32_t nargs;
	struct sv_cmd *tests;
	uint32_t ntests;
	bool test_list;		/* tests were in parentheses */
	struct sv_cmd *block;
	uint32_t nblock;
	bool has_block;
};

/* ------------------------------------------------------------ nodes */

enum sv_id {
	/* control */
	SV_C_NONE = 0, SV_C_IF, SV_C_ELSIF, SV_C_ELSE, SV_C_STOP, SV_C_REQUIRE,
	/* actions */
	SV_C_KEEP, SV_C_DISCARD, SV_C_REDIRECT, SV_C_FILEINTO, SV_C_REJECT,
	SV_C_EREJECT, SV_C_VACATION, SV_C_SET, SV_C_SETFLAG, SV_C_ADDFLAG,
	SV_C_REMOVEFLAG, SV_C_ADDHEADER, SV_C_DELETEHEADER, SV_C_INCLUDE,
	SV_C_RETURN, SV_C_GLOBAL, SV_C_NOTIFY,
	SV_C_FOREVERYPART, SV_C_BREAK, SV_C_EXTRACTTEXT,	/* RFC 5703 */
	/* tests */
	SV_T_ADDRESS, SV_T_ALLOF, SV_T_ANYOF, SV_T_ENVELOPE, SV_T_EXISTS,
	SV_T_FALSE, SV_T_HEADER, SV_T_NOT, SV_T_SIZE, SV_T_TRUE, SV_T_BODY,
	SV_T_STRING, SV_T_HASFLAG, SV_T_DATE, SV_T_CURRENTDATE,
	SV_T_MAILBOXEXISTS, SV_T_SPAMTEST, SV_T_VIRUSTEST, SV_T_ENVIRONMENT,
	SV_T_DUPLICATE, SV_T_IHAVE, SV_T_VALID_NOTIFY_METHOD,
	SV_T_NOTIFY_METHOD_CAPABILITY,
	SV_ID_COUNT
};

enum sv_cmp { SV_CMP_OCTET, SV_CMP_CASEMAP, SV_CMP_NUMERIC };
enum sv_mt { SV_MT_IS, SV_MT_CONTAINS, SV_MT_MATCHES, SV_MT_REGEX,
	SV_MT_COUNT, SV_MT_VALUE };
enum sv_rel { SV_REL_GT, SV_REL_GE, SV_REL_LT, SV_REL_LE, SV_REL_EQ,
	SV_REL_NE };
enum sv_part { SV_PART_ALL, SV_PART_LOCAL, SV_PART_DOMAIN, SV_PART_USER,
	SV_PART_DETAIL };
enum sv_body { SV_BODY_TEXT, SV_BODY_RAW, SV_BODY_CONTENT };
/* RFC 5703 4.2: what header :mime takes from a Content-Type or
   Content-Disposition value */
enum sv_mimeopt { SV_MIMEOPT_NONE, SV_MIMEOPT_TYPE, SV_MIMEOPT_SUBTYPE,
	SV_MIMEOPT_CONTENTTYPE, SV_MIMEOPT_PARAM };

/*
 * foreverypart loops inside each other (RFC 5703 3 asks for at least
 * one level; Pigeonhole allows 4, and so do we: each level walks a
 * subtree of the one outside it, so work grows with depth).
 */
#define SV_MAX_LOOP_DEPTH	4

/* node flags */
#define SV_F_COPY	0x0001
#define SV_F_CREATE	0x0002
#define SV_F_MIME	0x0004
#define SV_F_OVER	0x0008	/* size :over (else :under) */
#define SV_F_LAST	0x0010	/* :last (index) */
#define SV_F_ORIGZONE	0x0020	/* date :originalzone */
#define SV_F_PERCENT	0x0040	/* spamtest :percent */
#define SV_F_OPTIONAL	0x0080	/* include :optional */
#define SV_F_ONCE	0x0100	/* include :once */
#define SV_F_GLOBAL	0x0200	/* include :global */
#define SV_F_HAS_INDEX	0x0400
#define SV_F_SECONDS	0x0800	/* vacation :seconds (else :days) */
#define SV_F_HAS_PERIOD	0x1000
#define SV_F_HAS_FLAGS	0x2000	/* :flags given */
#define SV_F_HAS_ZONE	0x4000	/* date :zone */
#define SV_F_UNIQUE_HDR	0x8000	/* duplicate :header (else :uniqueid) */
/* The 16 bits are all taken: these share bits with flags of commands
   and tests that never have them (header/address/exists; extracttext). */
#define SV_F_ANYCHILD	SV_F_CREATE	/* :mime :anychild (tests) */
#define SV_F_HAS_FIRST	SV_F_HAS_PERIOD	/* extracttext :first (num) */

/* string slots */
enum {
	SV_S_A = 0,	/* first positional: header names, mailbox, address... */
	SV_S_B,		/* second positional: keys, value... */
	SV_S_C,		/* third positional (date: keys) */
	SV_S_FLAGS,	/* :flags, hasflag variables */
	SV_S_SUBJECT,	/* vacation :subject; duplicate :handle; body :content;
			   notify :message */
	SV_S_FROM,	/* vacation/notify :from; date :zone; duplicate
			   :header/:uniqueid */
	SV_S_ADDRS,	/* vacation :addresses; notify :options */
	SV_S_HANDLE,	/* vacation :handle; notify :importance */
	SV_S_SPECIAL,	/* :specialuse */
	SV_NSLOTS
};

/* set modifiers */
#define SV_MOD_LOWER		0x01
#define SV_MOD_UPPER		0x02
#define SV_MOD_LOWERFIRST	0x04
#define SV_MOD_UPPERFIRST	0x08
#define SV_MOD_QUOTEWILDCARD	0x10
#define SV_MOD_LENGTH		0x20
#define SV_MOD_QUOTEREGEX	0x40
#define SV_MOD_ENCODEURL	0x80	/* enotify (RFC 5435 section 7) */

struct sv_node {
	uint16_t id;		/* enum sv_id */
	uint16_t flags;		/* SV_F_* */
	uint8_t cmp, mt, rel, part, body, mods;
	uint8_t mimeopt;	/* header :mime option, enum sv_mimeopt */
	uint32_t line, col;
	int64_t num;		/* size, period, :index, value */
	uint32_t var;		/* set: variable slot; */
	struct sv_slist *s[SV_NSLOTS];
	struct sv_node *kids;	/* tests of if/allof/anyof/not */
	uint32_t nkids;
	struct sv_node *block;	/* commands of if/elsif/else */
	uint32_t nblock;
	int32_t include;	/* include: index into script->subs */
};

/* One compiled script (the main one or an included one). */
struct sv_unit {
	char *name;
	uint8_t loc;		/* enum sieve_location */
	uint64_t hash;
	uint32_t size;
	struct sv_node *cmds;
	uint32_t ncmds;
	uint64_t ext;		/* SV_EXT_* bits required */
	/* variable names: index = slot (global ones shared by name) */
	char **vars;
	uint32_t nvars;
};

struct sieve_script {
	struct sv_arena arena;
	char *name;
	struct sv_unit *units;	/* units[0] is the main script */
	uint32_t nunits;
	uint32_t nglobals;	/* names of variables declared global */
	char **globals;
	struct sieve_limits limits;
};

/* extension bits */
enum sv_ext {
	SV_EXT_FILEINTO = 0, SV_EXT_REJECT, SV_EXT_EREJECT, SV_EXT_ENVELOPE,
	SV_EXT_ENCODED, SV_EXT_VARIABLES, SV_EXT_RELATIONAL, SV_EXT_NUMERIC,
	SV_EXT_SUBADDRESS, SV_EXT_COPY, SV_EXT_BODY, SV_EXT_IMAP4FLAGS,
	SV_EXT_VACATION, SV_EXT_VACATION_SECONDS, SV_EXT_DATE, SV_EXT_INDEX,
	SV_EXT_INCLUDE, SV_EXT_MAILBOX, SV_EXT_SPAMTEST, SV_EXT_SPAMTESTPLUS,
	SV_EXT_VIRUSTEST, SV_EXT_ENVIRONMENT, SV_EXT_DUPLICATE,
	SV_EXT_EDITHEADER, SV_EXT_REGEX, SV_EXT_IHAVE, SV_EXT_ENOTIFY,
	SV_EXT_FOREVERYPART, SV_EXT_MIME, SV_EXT_EXTRACTTEXT,
	SV_EXT_COUNT
};
extern const char *const sv_ext_names[SV_EXT_COUNT];
int sv_ext_lookup(const char *name, size_t len);

/* ------------------------------------------------------------ parser */

struct sv_diag {
	struct sieve_errors *errs;
	const char *script;
	unsigned nerrors;
};
void sv_diag(struct sv_diag *d, bool warning, unsigned line, unsigned col,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * sv_parse - parse p/n into a command list in arena. Returns 0, or -1
 * after reporting errors to d.
 */
int sv_parse(struct sv_arena *a, const char *p, size_t n,
    const struct sieve_limits *lim, struct sv_diag *d,
    struct sv_cmd **cmds_r, uint32_t *ncmds_r);

/* ------------------------------------------------------------ matching */

struct sv_matchctx;
/* sv_lower_ascii - lower-case ASCII letters in place */
void sv_lower_ascii(char *p, size_t n);
/*
 * sv_glob - :matches: pattern against value with the comparator. With
 * caps (room for 10), fills ${0}..${9} as (offset,len) into value.
 * *steps is charged and the match fails when it exceeds max_steps.
 */
bool sv_glob(const char *pat, size_t plen, const char *val, size_t vlen,
    bool casemap, uint64_t *steps, uint64_t max_steps,
    size_t caps_off[10], size_t caps_len[10], unsigned *ncaps);
/* sv_numeric_cmp - i;ascii-numeric: -1, 0, 1 (non-digits = infinity) */
int sv_numeric_cmp(const char *a, size_t alen, const char *b, size_t blen);
int sv_cmp_values(int cmp, const char *a, size_t alen, const char *b,
    size_t blen);
bool sv_rel_ok(int rel, int c);
bool sv_contains(int cmp, const char *hay, size_t hn, const char *needle,
    size_t nn, uint64_t *steps);
bool sv_equal(int cmp, const char *a, size_t an, const char *b, size_t bn);
/* sv_regex_compile - compile a POSIX ERE with limits; NULL + *error_r */
regex_t *sv_regex_compile(const char *p, size_t n, bool icase,
    size_t max_size, const char **error_r);

/* ------------------------------------------------------------ binary */
uint64_t sv_hash(const char *p, size_t n);
/* sv_prepare - build run-time helpers (pre-lowered keys, regexes) */
int sv_prepare(struct sieve_script *s, const char **error_r);
void sv_unprepare(struct sieve_script *s);

/* validator: compile one unit from its source */
int sv_compile_unit(struct sieve_script *s, uint32_t unit, const char *p,
    size_t n, const struct sieve_loader *loader, unsigned depth,
    struct sieve_errors *errs);

#endif
