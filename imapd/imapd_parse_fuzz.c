/* SPDX-License-Identifier: MIT */
/*
 * imapd_parse_fuzz - libFuzzer target for the IMAP command reader and parser
 *
 * DESCRIPTION
 *	The input is what a client sends. Its first byte picks how many
 *	octets each read returns (1 to 64, so lines and literals arrive cut
 *	at every place); the rest goes through imapd_read_command() on a
 *	stream whose I/O hook reads from the input and throws the replies
 *	away, exactly as the session reads it: lines, "{n}" and "{n+}"
 *	literals, "+ OK" continuations, the line and literal limits. Each
 *	whole command is copied into a buffer of exactly its size (so ASan
 *	catches a read past it) and parsed like dispatch() does: tag,
 *	command name, UID prefix, then the argument parsers of FETCH,
 *	STORE, SEARCH, SORT, THREAD and NOTIFY (the very functions the
 *	session calls, stopping before the store), the date parsers, and for any
 *	other command a generic walk over astrings, nstrings, literals,
 *	literal8, flags, numbers, sequence sets and parenthesised lists.
 *
 *	Every command is also read as a mailbox to thread (imapd_thread.c):
 *	its lines are Subject values (through imapd_base_subject()), the
 *	"<...>" tokens of a line the message's Message-ID and references.
 *	Both algorithms must name every message exactly once, with
 *	balanced parentheses.
 *
 *	Checks: the parser never moves past the end; a FETCH that parses
 *	has items, a STORE a set, a SEARCH a program, a NOTIFY SET an
 *	event group whose events obey RFC 5465 5 (MessageNew with
 *	MessageExpunge, FlagChange with both, fetch-att for the selected
 *	mailbox only); every string read, written back with imap_write_string(),
 *	parses to the same octets; a mailbox name decoded from modified
 *	UTF-7 and encoded again decodes to the same name.
 *
 *	The fuzz build links only this object and libpostern, so the
 *	parser sources are included here and the session functions they
 *	call are stubbed: reaching one that touches the store is a bug.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapd_parse.c"
#include "imapd_fetch.c"
#include "imapd_search.c"
#include "imapd_thread.c"
#include "imapd_notify.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LINE_MAX	8192
#define FUZZ_APPEND_MAX	16384

struct imapd_settings imapd_settings;

/* ---------------------------------------------------------------- stubs */

void
imapd_reply(struct imapd_session *sess, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	str_vprintf(sess->out, fmt, ap);
	va_end(ap);
	str_clear(sess->out);
}

void
imapd_flush_out(struct imapd_session *sess)
{
	str_clear(sess->out);
}

void
imapd_sync(struct imapd_session *sess, bool allow_expunge,
    const uint32_t *skip, size_t nskip)
{
	(void)sess;
	(void)allow_expunge;
	(void)skip;
	(void)nskip;
	abort();
}

void
imapd_write_flags(struct imapd_session *sess, struct str *out,
    uint32_t flags, uint64_t keywords)
{
	(void)sess;
	(void)out;
	(void)flags;
	(void)keywords;
	abort();
}

bool
imapd_compress_pending(const struct imapd_zlib *z)
{
	(void)z;
	abort();
}

void
imapd_mailbox_from_wire(struct imapd_session *sess, const char *p, size_t n,
    struct str *out, bool *ok_r)
{
	(void)sess;
	(void)p;
	(void)n;
	(void)out;
	(void)ok_r;
	abort();
}

bool
imapd_resolve_set(struct imapd_session *sess, const struct imap_seqset *set,
    bool uid, uint32_t **seqs_r, size_t *n_r)
{
	(void)sess;
	(void)set;
	(void)uid;
	(void)seqs_r;
	(void)n_r;
	abort();
}

/* ---------------------------------------------------------------- input */

struct fuzz_input {
	const char *p;
	size_t n, pos, chunk;
};

static ssize_t
fuzz_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct fuzz_input *in = ctx;
	size_t k = MIN(len, MIN(in->chunk, in->n - in->pos));

	(void)want_r;
	memcpy(buf, in->p + in->pos, k);
	in->pos += k;
	return (ssize_t)k;
}

static ssize_t
fuzz_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	(void)ctx;
	(void)buf;
	(void)want_r;
	return (ssize_t)len;
}

static const struct stream_io fuzz_io = { fuzz_read, fuzz_write };

/* ---------------------------------------------------------------- checks */

/* check_string - what we would send back parses to the same octets */
static void
check_string(const struct str *v)
{
	struct str *w = str_new(0, 0), *back = str_new(0, 0);
	struct imap_parser ip;

	imap_write_string(w, str_c(v), str_len(v));
	imap_parser_init(&ip, str_c(w), str_len(w));
	if (!imap_parse_string(&ip, back) || !imap_parse_end(&ip) ||
	    str_len(back) != str_len(v) ||
	    memcmp(str_c(back), str_c(v), str_len(v)) != 0)
		abort();
	str_free(&w);
	str_free(&back);
}

/* check_mailbox - mUTF-7 decode, encode, decode is stable */
static void
check_mailbox(const struct str *v)
{
	struct str *u8 = str_new(0, 0), *u7 = str_new(0, 0),
	    *again = str_new(0, 0);

	if (imap_utf7_to_utf8(str_c(v), str_len(v), u8) == 0 &&
	    imap_utf8_to_utf7(str_c(u8), str_len(u8), u7) == 0) {
		if (imap_utf7_to_utf8(str_c(u7), str_len(u7), again) < 0 ||
		    str_len(again) != str_len(u8) ||
		    memcmp(str_c(again), str_c(u8), str_len(u8)) != 0)
			abort();
	}
	str_free(&u8);
	str_free(&u7);
	str_free(&again);
}

static void
check_parser(const struct imap_parser *ip, bool ok)
{
	/* a failure without a reason gets the caller's default text */
	(void)ok;
	if (ip->pos > ip->n)
		abort();
}

/* walk_args - any other command: a generic walk over its arguments */
static void
walk_args(struct imap_parser *ip, unsigned depth)
{
	struct str *v = str_new(0, 0);
	struct imap_seqset set = { 0 };
	bool nil, bin;
	uint64_t num;
	time_t t;
	int tz;

	while (ip->pos < ip->n && ip->error == NULL) {
		size_t save = ip->pos;
		char c = ip->p[ip->pos];

		if (c == ' ') {
			ip->pos++;
		} else if (c == '(' && depth < 32) {
			ip->pos++;
			walk_args(ip, depth + 1);
			if (!imap_parse_char(ip, ')'))
				break;
		} else if (c == ')') {
			break;
		} else if (c == '"' || c == '{' || c == '~') {
			if (!imap_parse_literal_any(ip, v, &bin))
				break;
			check_string(v);
			check_mailbox(v);
			(void)imapd_parse_date(str_c(v), str_len(v), &t);
			(void)imapd_parse_datetime(str_c(v), str_len(v), &t, &tz);
		} else if (c == '\\') {
			if (!imap_parse_flag(ip, v))
				break;
		} else if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
			if (!imap_parse_seqset(ip, &set)) {
				ip->pos = save;
				ip->error = NULL;
				if (!imap_parse_number64(ip, &num))
					break;
			}
		} else if (c == 'N' || c == 'n') {
			if (!imap_parse_nstring(ip, v, &nil)) {
				ip->pos = save;
				ip->error = NULL;
				if (!imap_parse_astring(ip, v))
					break;
			}
		} else {
			if (!imap_parse_astring(ip, v))
				break;
			check_mailbox(v);
		}
		if (ip->pos == save)
			break;
	}
	check_parser(ip, ip->error == NULL);
	imap_seqset_free(&set);
	str_free(&v);
}

/* check_thread_list - every message 1..n once; parentheses balanced */
static void
check_thread_list(const struct str *out, size_t n)
{
	unsigned char *seen = calloc(n + 1, 1);
	const char *p = str_c(out), *e = p + str_len(out);
	long depth = 0;

	if (seen == NULL)
		abort();
	while (p < e) {
		if (*p == '(') {
			depth++;
			p++;
		} else if (*p == ')') {
			if (--depth < 0)
				abort();
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			char *end;
			unsigned long v = strtoul(p, &end, 10);

			if (end == p || v == 0 || v > n || seen[v])
				abort();
			seen[v] = 1;
			p = end;
		}
	}
	for (size_t i = 1; i <= n; i++)
		if (!seen[i])
			abort();
	if (depth != 0)
		abort();
	free(seen);
}

/* fuzz_thread - the lines of data/n as messages to thread */
static void
fuzz_thread(const char *data, size_t n)
{
	struct imapd_thread_msg v[64];
	char *subj[64], *ids[64][9];
	size_t nmsg = 0, i, k, nids;
	const char *p = data, *e = data + n, *eol;
	struct str *out = str_new(0, 0);

	memset(ids, 0, sizeof(ids));
	while (p < e && nmsg < 64) {
		eol = memchr(p, '\n', (size_t)(e - p));
		if (eol == NULL)
			eol = e;
		memset(&v[nmsg], 0, sizeof(v[nmsg]));
		v[nmsg].seq = v[nmsg].uid = (uint32_t)nmsg + 1;
		v[nmsg].date = (time_t)((eol - p) % 7);
		subj[nmsg] = imapd_base_subject(p, (size_t)(eol - p),
		    &v[nmsg].reply);
		v[nmsg].subject = subj[nmsg];
		nids = 0;
		for (const char *q = p; q < eol && nids < 9; ) {
			char *id = msgid_token(&q, eol);

			if (id == NULL)
				break;
			ids[nmsg][nids++] = id;
		}
		if (nids > 0) {
			v[nmsg].msgid = ids[nmsg][0];
			v[nmsg].refs = &ids[nmsg][1];
			v[nmsg].nrefs = nids - 1;
		}
		nmsg++;
		p = eol + 1;
	}
	imapd_thread_references(out, v, nmsg, false);
	check_thread_list(out, nmsg);
	str_clear(out);
	imapd_thread_orderedsubject(out, v, nmsg, true);
	check_thread_list(out, nmsg);
	for (i = 0; i < nmsg; i++) {
		free(subj[i]);
		for (k = 0; k < 9; k++)
			free(ids[i][k]);
	}
	str_free(&out);
}

/* fuzz_command - parse one command as dispatch() would */
static void
fuzz_command(const char *data, size_t n)
{
	struct imapd_session sess;
	struct imap_seqset set = { 0 };
	struct str *name = str_new(0, 0);
	char *buf = malloc(n > 0 ? n : 1);
	bool ok = false;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	memset(&sess, 0, sizeof(sess));
	sess.tag = str_new(0, 0);
	sess.out = str_new(0, 0);
	sess.qresync = n > 0 && (buf[0] & 1) != 0;
	imap_parser_init(&sess.ip, buf, n);
	if (!imap_parse_tag(&sess.ip, sess.tag) || !imap_parse_sp(&sess.ip) ||
	    !imap_parse_atom(&sess.ip, name, false)) {
		check_parser(&sess.ip, false);
		goto out;
	}
	if (strcasecmp(str_c(name), "UID") == 0) {
		if (!imap_parse_sp(&sess.ip) ||
		    !imap_parse_atom(&sess.ip, name, false))
			goto out;
		sess.uid = true;
	}
	if (strcasecmp(str_c(name), "FETCH") == 0) {
		struct fetch f = { 0 };

		ok = imap_parse_sp(&sess.ip) &&
		    imap_parse_seqset(&sess.ip, &set) &&
		    imap_parse_sp(&sess.ip) && parse_fetch_atts(&sess, &f);
		if (ok && (f.n == 0 || (f.vanished && f.changedsince == 0)))
			abort();
		fetch_free(&f);
	} else if (strcasecmp(str_c(name), "STORE") == 0) {
		struct store_args sa = { 0 };

		ok = store_parse(&sess, &sa);
		if (ok && sa.set.n == 0 && !sa.set.saved)
			abort();
		store_args_free(&sa);
	} else if (strcasecmp(str_c(name), "SEARCH") == 0) {
		struct skey *prog = NULL;
		unsigned ret;
		bool esearch;

		ok = search_parse(&sess, &ret, &esearch, &prog) == 1;
		if (ok && prog == NULL)
			abort();
		skey_free(prog);
	} else if (strcasecmp(str_c(name), "SORT") == 0 ||
	    strcasecmp(str_c(name), "THREAD") == 0) {
		struct skey *prog = NULL;
		bool refs;

		ok = sort_parse(&sess, strcasecmp(str_c(name), "THREAD") == 0,
		    &refs, &prog) == 1;
		if (ok && prog == NULL)
			abort();
		skey_free(prog);
	} else if (strcasecmp(str_c(name), "NOTIFY") == 0) {
		struct notify_spec spec;
		size_t g, k, names = 0;

		ok = notify_parse(&sess, &spec);
		if (ok && !spec.none) {
			unsigned ev = spec.sel_events;

			if (spec.ngroups == 0 && !spec.have_selected)
				abort();
			if (spec.fetch != NULL && !spec.have_selected)
				abort();
			for (g = 0; g <= spec.ngroups; g++) {
				if (g > 0) {
					const struct notify_group *ng =
					    &spec.groups[g - 1];

					ev = ng->events;
					if ((ng->filter == NF_SUBTREE ||
					    ng->filter == NF_MAILBOXES) ==
					    (ng->nnames == 0))
						abort();
					for (k = 0; k < ng->nnames; k++)
						check_mailbox(ng->names[k]);
					names += ng->nnames;
				}
				if (((ev & NEV_NEW) != 0) != ((ev & NEV_EXPUNGE) != 0))
					abort();
				if ((ev & NEV_FLAG) != 0 && (ev & NEV_NEW) == 0)
					abort();
			}
			if (names != spec.nnames)
				abort();
		}
		notify_spec_free(&spec);
	} else {
		walk_args(&sess.ip, 0);
		ok = true;
	}
	check_parser(&sess.ip, ok);
out:
	fuzz_thread(buf, n);
	imap_seqset_free(&set);
	str_free(&name);
	str_free(&sess.tag);
	str_free(&sess.out);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	struct fuzz_input in;
	struct stream *s;
	struct str *cmd, *tag;
	enum imapd_read r;

	if (size < 1)
		return 0;
	if (devnull < 0 && (devnull = open("/dev/null", O_RDWR)) < 0)
		abort();
	in.p = (const char *)data + 1;
	in.n = size - 1;
	in.pos = 0;
	in.chunk = 1 + data[0] % 64;
	s = stream_new(devnull, 5, STREAM_NO_CLOSE);
	stream_set_io(s, &fuzz_io, &in);
	cmd = str_new(0, 0);
	tag = str_new(0, 0);
	for (;;) {
		r = imapd_read_command(s, cmd, FUZZ_LINE_MAX, FUZZ_APPEND_MAX, tag);
		if (r == IMAPD_READ_EOF || r == IMAPD_READ_FATAL)
			break;
		if (r == IMAPD_READ_TOO_LONG)
			continue;
		if (str_len(cmd) > FUZZ_LINE_MAX + FUZZ_APPEND_MAX + 64)
			abort();
		fuzz_command(str_c(cmd), str_len(cmd));
	}
	str_free(&cmd);
	str_free(&tag);
	stream_free(&s);
	return 0;
}
