/* SPDX-License-Identifier: MIT */
/*
 * imapd_session - the authenticated and selected states (mail role)
 *
 * DESCRIPTION
 *	imapd_session_run() opens the user's store, answers the login
 *	command's tag, then reads and runs commands until LOGOUT, the
 *	autologout timer (imap_timeout) or the connection ends.
 *
 *	Untagged updates: the session's view of the selected mailbox
 *	(store.h) changes only in imapd_sync(), which runs after every
 *	command and while IDLE. EXPUNGE (or VANISHED under QRESYNC) is
 *	held back after FETCH, STORE and SEARCH by sequence number, as
 *	RFC 3501 7.4.1 requires; EXISTS and FETCH FLAGS go out after any
 *	command.
 *
 *	IDLE waits in poll(2) on the client and on an inotify descriptor
 *	watching the user's mailbox directories (the change log is
 *	written on every append, flag change and expunge: store
 *	DESIGN.md 2.2), so a delivery wakes the idling client at once and
 *	nothing polls the disk. With NOTIFY set (imapd_notify.c) that is
 *	NOTIFY's descriptor, and the wait for the next command polls it
 *	too, so notifications also go out between commands.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "imap_envelope.h"
#include "imap_utf7.h"
#include "login_proxy.h"
#include "rfc2047.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"
#include "userdb.h"

#include "imapd.h"

#define IMAPD_ERRORS_MAX 50

static const char *const imapd_flag_names[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};

/* imapd_capability_auth - see imapd.h */
void
imapd_capability_auth(struct str *out, const struct imapd_session *sess)
{
	str_printf(out, "IMAP4rev1 IMAP4rev2 SASL-IR LOGIN-REFERRALS ID ENABLE "
	    "IDLE LITERAL+ NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN "
	    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS "
	    "ESEARCH SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
	    "CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE "
	    "BINARY UTF8=ACCEPT STATUS=SIZE MULTIAPPEND NOTIFY APPENDLIMIT=%llu",
	    (unsigned long long)imapd_settings.append_max);
	if (sess != NULL && sess->c->tls_sess == NULL)
		str_append_cstr(out, " COMPRESS=DEFLATE");
}

void
imapd_flush_out(struct imapd_session *sess)
{
	if (str_len(sess->out) > 0) {
		stream_write(sess->s, str_c(sess->out), str_len(sess->out));
		str_clear(sess->out);
	}
}

/* imapd_reply - the tagged completion (flushes everything) */
void
imapd_reply(struct imapd_session *sess, const char *fmt, ...)
{
	va_list ap;

	imapd_flush_out(sess);
	stream_printf(sess->s, "%s ", str_c(sess->tag));
	va_start(ap, fmt);
	str_vprintf(sess->out, fmt, ap);
	va_end(ap);
	str_append(sess->out, "\r\n", 2);
	imapd_flush_out(sess);
	stream_flush(sess->s);
}

static void
reply_bad(struct imapd_session *sess, const char *why)
{
	sess->errors++;
	imapd_reply(sess, "BAD %s", why != NULL ? why : "Invalid arguments");
}

/* reply_store_error - NO with the response code that fits the store error */
static void
reply_store_error(struct imapd_session *sess, const char *err)
{
	const char *code;

	switch (store_error(sess->store)) {
	case STORE_ERR_NOTFOUND:
		code = "[NONEXISTENT] ";
		break;
	case STORE_ERR_EXISTS:
		code = "[ALREADYEXISTS] ";
		break;
	case STORE_ERR_QUOTA:
		code = "[OVERQUOTA] ";
		break;
	case STORE_ERR_LIMIT:
		code = "[LIMIT] ";
		break;
	case STORE_ERR_EXPUNGED:
		code = "[EXPUNGEISSUED] ";
		break;
	case STORE_ERR_READONLY:
		code = "";
		break;
	case STORE_ERR_INVALID:
		code = "[CANNOT] ";
		break;
	case STORE_ERR_TEMP:
	case STORE_ERR_CORRUPT:
	default:
		code = "[SERVERBUG] ";
		log_error(&sess->c->log, "store: %s", err);
		break;
	}
	imapd_reply(sess, "NO %s%s", code, err);
}

/* imapd_write_flags - see imapd.h */
void
imapd_write_flags(struct imapd_session *sess, struct str *out, uint32_t flags,
    uint64_t keywords)
{
	unsigned i, n = 0;

	str_append_c(out, '(');
	for (i = 0; i < N_ELEMENTS(imapd_flag_names); i++)
		if ((flags & (1u << i)) != 0) {
			if (n++ > 0)
				str_append_c(out, ' ');
			str_append_cstr(out, imapd_flag_names[i]);
		}
	for (i = 0; i < 64 && keywords != 0; i++)
		if ((keywords & ((uint64_t)1 << i)) != 0 &&
		    i < store_keyword_count(sess->box)) {
			if (n++ > 0)
				str_append_c(out, ' ');
			str_append_cstr(out, store_keyword_name(sess->box, i));
		}
	str_append_c(out, ')');
}

/* write_fetch_flags - an untagged FETCH with the flags of seq */
static void
write_fetch_flags(struct imapd_session *sess, uint32_t seq)
{
	struct store_msg m;

	store_msg_get(sess->box, seq, &m);
	str_printf(sess->out, "* %u FETCH (", seq);
	if (sess->uid || sess->qresync)
		str_printf(sess->out, "UID %u ", m.uid);
	str_append_cstr(sess->out, "FLAGS ");
	imapd_write_flags(sess, sess->out, m.flags, m.keywords);
	if (sess->condstore)
		str_printf(sess->out, " MODSEQ (%llu)",
		    (unsigned long long)m.modseq);
	str_append_cstr(sess->out, ")\r\n");
}

static bool
uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* imapd_sync - see imapd.h */
void
imapd_sync(struct imapd_session *sess, bool allow_expunge,
    const uint32_t *skip, size_t nskip)
{
	struct store_sync_result res;
	const char *err;
	uint32_t before, seq;
	size_t i;

	if (sess->box == NULL)
		return;
	before = store_mailbox_count(sess->box);
	memset(&res, 0, sizeof(res));
	if (store_mailbox_sync(sess->box, allow_expunge ? 0 :
	    STORE_SYNC_NO_EXPUNGE, &res, &err) < 0) {
		if (store_error(sess->store) == STORE_ERR_NOTFOUND) {
			str_append_cstr(sess->out, "* BYE Selected mailbox was "
			    "deleted, have to disconnect.\r\n");
			sess->done = true;
		} else
			log_error(&sess->c->log, "sync: %s", err);
		store_sync_result_free(&res);
		return;
	}
	if (res.expunged.count > 0) {
		if (sess->qresync) {
			str_append_cstr(sess->out, "* VANISHED ");
			/* res.expunged is in announce order; VANISHED wants a set */
			{
				uint32_t *v = xmemdup(res.expunged.uids,
				    res.expunged.count * sizeof(uint32_t));
				size_t a, b;

				for (a = 1; a < res.expunged.count; a++)
					for (b = a; b > 0 && v[b - 1] > v[b]; b--) {
						uint32_t t = v[b];

						v[b] = v[b - 1];
						v[b - 1] = t;
					}
				imap_seqset_write(sess->out, v, res.expunged.count);
				free(v);
			}
			str_append_cstr(sess->out, "\r\n");
		} else
			for (i = 0; i < res.expunged.count; i++)
				str_printf(sess->out, "* %u EXPUNGE\r\n",
				    res.expunge_seqs[i]);
	}
	if (res.exists != before || res.new_first_seq != 0)
		str_printf(sess->out, "* %u EXISTS\r\n", res.exists);
	/* NOTIFY SET (SELECTED ...) without FlagChange: not wanted */
	for (i = 0; i < res.changed.count && imapd_notify_flag_changes(sess);
	    i++) {
		if (skip != NULL && uid_in(skip, nskip, res.changed.uids[i]))
			continue;
		seq = store_seq_by_uid(sess->box, res.changed.uids[i]);
		if (seq == 0 || (res.new_first_seq != 0 && seq >= res.new_first_seq))
			continue;
		write_fetch_flags(sess, seq);
	}
	store_sync_result_free(&res);
}

/* imapd_mailbox_from_wire - client name (mUTF-7 or UTF-8) into a store name */
void
imapd_mailbox_from_wire(struct imapd_session *sess, const char *p, size_t n,
    struct str *out, bool *ok_r)
{
	struct str *t = str_new(n + 8, 0);
	size_t i;

	*ok_r = true;
	str_clear(out);
	for (i = 0; i < n && (unsigned char)p[i] < 0x80; i++)
		;
	if (sess->utf8 || i < n) {
		/* UTF-8 (UTF8=ACCEPT, or 8-bit from a client that did not say) */
		if (!rfc2047_utf8_valid(p, n))
			*ok_r = false;
		str_append(t, p, n);
	} else if (imap_utf7_to_utf8(p, n, t) < 0)
		*ok_r = false;
	for (i = 0; i < str_len(t); i++) {
		char ch = str_c(t)[i];

		if (imapd_settings.sep != '/') {
			if (ch == '/')
				*ok_r = false;
			if (ch == imapd_settings.sep)
				ch = '/';
		}
		str_append_c(out, ch);
	}
	/* a trailing separator names the same mailbox (CREATE foo/) */
	while (str_len(out) > 1 && str_c(out)[str_len(out) - 1] == '/')
		str_truncate(out, str_len(out) - 1);
	if (str_len(out) == 5 && strncasecmp(str_c(out), "INBOX", 5) == 0)
		str_set_cstr(out, "INBOX");
	else if (str_len(out) > 6 && strncasecmp(str_c(out), "INBOX/", 6) == 0)
		memcpy(str_data(out), "INBOX", 5);
	str_free(&t);
}

/* imapd_parse_mailbox - see imapd.h */
bool
imapd_parse_mailbox(struct imapd_session *sess, struct str *out)
{
	struct str *raw = str_new(0, 0);
	bool ok;

	if (!imap_parse_astring(&sess->ip, raw)) {
		str_free(&raw);
		return false;
	}
	imapd_mailbox_from_wire(sess, str_c(raw), str_len(raw), out, &ok);
	str_free(&raw);
	if (!ok)
		sess->ip.error = "Invalid mailbox name";
	return ok;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* imapd_resolve_set - see imapd.h */
bool
imapd_resolve_set(struct imapd_session *sess, const struct imap_seqset *set,
    bool uid, uint32_t **seqs_r, size_t *n_r)
{
	uint32_t count = store_mailbox_count(sess->box), *v = NULL, s, first,
	    last, maxuid;
	size_t n = 0, cap = 0, i, j;
	const struct imap_seqset *use = set;

	*seqs_r = NULL;
	*n_r = 0;
	if (set->saved) {
		use = &sess->searchres;
		uid = true;
	}
	maxuid = count > 0 ? store_msg_uid(sess->box, count) : 0;
	for (i = 0; i < use->n; i++) {
		uint32_t lo = use->r[i].lo, hi = use->r[i].hi;

		if (uid) {
			if (lo == UINT32_MAX)
				lo = maxuid;
			if (hi == UINT32_MAX)
				hi = maxuid;
			if (lo > hi) {
				uint32_t t = lo;

				lo = hi;
				hi = t;
			}
			if (count == 0 || !store_seq_range_by_uid(sess->box, lo,
			    hi, &first, &last))
				continue;
		} else {
			if (lo == UINT32_MAX)
				lo = count;
			if (hi == UINT32_MAX)
				hi = count;
			if (lo > hi) {
				uint32_t t = lo;

				lo = hi;
				hi = t;
			}
			if (hi > count || lo == 0) {
				free(v);
				return false;
			}
			first = lo;
			last = hi;
		}
		for (s = first; s <= last && s != 0; s++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			v[n++] = s;
			if (s == UINT32_MAX)
				break;
		}
	}
	if (n > 1) {
		qsort(v, n, sizeof(*v), cmp_u32);
		for (i = 1, j = 1; i < n; i++)
			if (v[i] != v[j - 1])
				v[j++] = v[i];
		n = j;
	}
	*seqs_r = v;
	*n_r = n;
	return true;
}

/* ---------------------------------------------------------------- commands */

static void
cmd_capability(struct imapd_session *sess)
{
	if (!imap_parse_end(&sess->ip))
		return reply_bad(sess, NULL);
	str_append_cstr(sess->out, "* CAPABILITY ");
	imapd_capability_auth(sess->out, sess);
	str_append_cstr(sess->out, "\r\n");
	imapd_reply(sess, "OK Capability completed.");
}

static void
close_mailbox(struct imapd_session *sess)
{
	store_mailbox_close(&sess->box);
	store_free(&sess->box_store);
	imap_seqset_free(&sess->searchres);
}

/* shared_readonly - NO for a change in the read-only shared namespace */
static bool
shared_readonly(struct imapd_session *sess, const char *name)
{
	if (!imapd_shared_name(name))
		return false;
	imapd_reply(sess, "NO [NOPERM] Shared mailboxes are read-only");
	return true;
}

/* select_qresync - the QRESYNC parameters of SELECT: VANISHED and FETCH */
static bool
select_qresync(struct imapd_session *sess, uint32_t uidvalidity,
    uint64_t modseq, const struct imap_seqset *known)
{
	struct store_uids gone, changed;
	struct store_status st;
	const char *err;
	size_t i;

	store_mailbox_status_get(sess->box, &st);
	if (uidvalidity != st.uidvalidity)
		return true;
	memset(&gone, 0, sizeof(gone));
	memset(&changed, 0, sizeof(changed));
	if (store_expunged_since(sess->box, modseq, &gone, &err) < 0)
		return false;
	if (gone.count > 0) {
		uint32_t *v = xcalloc(gone.count, sizeof(*v));
		size_t n = 0;

		for (i = 0; i < gone.count; i++)
			if (known == NULL || known->n == 0 ||
			    imap_seqset_contains(known, gone.uids[i], UINT32_MAX))
				v[n++] = gone.uids[i];
		if (n > 0) {
			str_append_cstr(sess->out, "* VANISHED (EARLIER) ");
			imap_seqset_write(sess->out, v, n);
			str_append_cstr(sess->out, "\r\n");
		}
		free(v);
	}
	store_changed_since(sess->box, modseq, &changed);
	for (i = 0; i < changed.count; i++) {
		uint32_t seq = store_seq_by_uid(sess->box, changed.uids[i]);
		struct store_msg m;

		if (seq == 0)
			continue;
		store_msg_get(sess->box, seq, &m);
		str_printf(sess->out, "* %u FETCH (UID %u FLAGS ", seq, m.uid);
		imapd_write_flags(sess, sess->out, m.flags, m.keywords);
		str_printf(sess->out, " MODSEQ (%llu))\r\n",
		    (unsigned long long)m.modseq);
	}
	store_uids_clear(&gone);
	store_uids_clear(&changed);
	return true;
}

static void
cmd_select(struct imapd_session *sess, bool readonly)
{
	struct str *name = str_new(0, 0), *opt = str_new(0, 0);
	struct imap_parser *ip = &sess->ip;
	struct imap_seqset known = { 0 };
	struct store_status st;
	struct store_msg m;
	const char *err;
	uint32_t qr_uidvalidity = 0, i, count, unseen = 0;
	uint64_t qr_modseq = 0;
	bool qresync = false;
	unsigned k;

	if (sess->box != NULL) {
		close_mailbox(sess);
		/* RFC 7162 3.2.11 */
		if (sess->qresync || sess->condstore)
			str_append_cstr(sess->out, "* OK [CLOSED] Previous "
			    "mailbox closed.\r\n");
	}
	if (!imap_parse_sp(ip) || !imapd_parse_mailbox(sess, name))
		goto bad;
	if (imap_parse_peek(ip, ' ')) {
		ip->pos++;
		if (!imap_parse_char(ip, '('))
			goto bad;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, opt, false))
				goto bad;
			if (strcasecmp(str_c(opt), "CONDSTORE") == 0) {
				sess->condstore = true;
			} else if (strcasecmp(str_c(opt), "QRESYNC") == 0) {
				if (!sess->qresync) {
					reply_bad(sess, "QRESYNC is not enabled");
					goto out;
				}
				if (!imap_parse_sp(ip) || !imap_parse_char(ip, '(') ||
				    !imap_parse_number(ip, &qr_uidvalidity, true) ||
				    !imap_parse_sp(ip) ||
				    !imap_parse_number64(ip, &qr_modseq))
					goto bad;
				if (imap_parse_peek(ip, ' ')) {
					ip->pos++;
					if (!imap_parse_peek(ip, '(') &&
					    !imap_parse_seqset(ip, &known))
						goto bad;
					if (imap_parse_peek(ip, ' '))
						ip->pos++;
					if (imap_parse_peek(ip, '(')) {
						/* seq-match-data: accepted, not needed */
						int depth = 0;

						do {
							if (ip->p[ip->pos] == '(')
								depth++;
							else if (ip->p[ip->pos] == ')')
								depth--;
							ip->pos++;
						} while (depth > 0 && ip->pos < ip->n);
					}
				}
				if (!imap_parse_char(ip, ')'))
					goto bad;
				qresync = true;
			} else
				goto bad;
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
	}
	if (!imap_parse_end(ip))
		goto bad;
	if (imapd_shared_name(str_c(name))) {
		/* a list archive: read-only whatever the command */
		sess->box_store = imapd_shared_open(sess, str_c(name));
		if (sess->box_store == NULL) {
			imapd_reply(sess, "NO [NONEXISTENT] Mailbox doesn't exist");
			goto out;
		}
		readonly = true;
		sess->box = store_mailbox_open(sess->box_store, "INBOX",
		    STORE_OPEN_READONLY, &err);
		if (sess->box == NULL) {
			log_error(&sess->c->log, "shared mailbox: %s", err);
			store_free(&sess->box_store);
			imapd_reply(sess, "NO [UNAVAILABLE] Mailbox unavailable");
			goto out;
		}
	} else
		sess->box = store_mailbox_open(sess->store, str_c(name),
		    readonly ? STORE_OPEN_READONLY : 0, &err);
	if (sess->box == NULL) {
		reply_store_error(sess, err);
		goto out;
	}
	sess->readonly = readonly;
	imapd_notify_selected(sess);
	store_mailbox_status_get(sess->box, &st);
	count = store_mailbox_count(sess->box);
	str_append_cstr(sess->out, "* FLAGS (\\Answered \\Flagged \\Deleted "
	    "\\Seen \\Draft");
	for (k = 0; k < store_keyword_count(sess->box); k++)
		str_printf(sess->out, " %s", store_keyword_name(sess->box, k));
	str_append_cstr(sess->out, ")\r\n* OK [PERMANENTFLAGS (");
	if (!readonly) {
		str_append_cstr(sess->out, "\\Answered \\Flagged \\Deleted "
		    "\\Seen \\Draft");
		for (k = 0; k < store_keyword_count(sess->box); k++)
			str_printf(sess->out, " %s",
			    store_keyword_name(sess->box, k));
		str_append_cstr(sess->out, " \\*");
	}
	str_append_cstr(sess->out, ")] Flags permitted.\r\n");
	str_printf(sess->out, "* %u EXISTS\r\n", count);
	if (!sess->rev2) {
		str_append_cstr(sess->out, "* 0 RECENT\r\n");
		for (i = 1; i <= count; i++) {
			store_msg_get(sess->box, i, &m);
			if ((m.flags & STORE_FLAG_SEEN) == 0) {
				unseen = i;
				break;
			}
		}
		if (unseen != 0)
			str_printf(sess->out, "* OK [UNSEEN %u] First unseen.\r\n",
			    unseen);
	}
	str_printf(sess->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] Predicted next UID\r\n", st.uidvalidity,
	    st.uidnext);
	if (sess->condstore)
		str_printf(sess->out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		    (unsigned long long)st.highestmodseq);
	if (sess->rev2) {
		str_append_cstr(sess->out, "* LIST () \"");
		str_append_c(sess->out, imapd_settings.sep);
		str_append_cstr(sess->out, "\" ");
		imap_write_mailbox(sess->out, sess->box_store != NULL ?
		    str_c(name) : store_mailbox_name(sess->box),
		    imapd_settings.sep, sess->utf8);
		str_append_cstr(sess->out, "\r\n");
	}
	if (qresync && !select_qresync(sess, qr_uidvalidity, qr_modseq, &known)) {
		close_mailbox(sess);
		reply_store_error(sess, "cannot read the change history");
		goto out;
	}
	imapd_reply(sess, "OK [%s] %s completed.", readonly ? "READ-ONLY" :
	    "READ-WRITE", readonly ? "Examine" : "Select");
	goto out;
bad:
	reply_bad(sess, ip->error);
out:
	imap_seqset_free(&known);
	str_free(&name);
	str_free(&opt);
}

static bool parse_mailbox_raw(struct imapd_session *sess, struct str *raw,
    struct str *out);
static bool wire_is_canonical(struct imapd_session *sess,
    const struct str *raw, const char *name);
static void write_list_oldname(struct imapd_session *sess, const char *name,
    const struct str *supplied);

static void
cmd_create(struct imapd_session *sess)
{
	struct str *name = str_new(0, 0), *a = str_new(0, 0),
	    *raw = str_new(0, 0);
	struct imap_parser *ip = &sess->ip;
	unsigned attrs = 0;
	const char *err, *why;

	if (!imap_parse_sp(ip) || !parse_mailbox_raw(sess, raw, name))
		goto bad;
	if (imap_parse_peek(ip, ' ')) {
		/* RFC 6154 CREATE-SPECIAL-USE: (USE (\Sent ...)) */
		ip->pos++;
		if (!imap_parse_char(ip, '(') || !imap_parse_atom(ip, a, false) ||
		    strcasecmp(str_c(a), "USE") != 0 || !imap_parse_sp(ip) ||
		    !imap_parse_char(ip, '('))
			goto bad;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_flag(ip, a))
				goto bad;
			if (strcasecmp(str_c(a), "\\Drafts") == 0)
				attrs |= STORE_MBOX_DRAFTS;
			else if (strcasecmp(str_c(a), "\\Sent") == 0)
				attrs |= STORE_MBOX_SENT;
			else if (strcasecmp(str_c(a), "\\Trash") == 0)
				attrs |= STORE_MBOX_TRASH;
			else if (strcasecmp(str_c(a), "\\Junk") == 0)
				attrs |= STORE_MBOX_JUNK;
			else if (strcasecmp(str_c(a), "\\Archive") == 0)
				attrs |= STORE_MBOX_ARCHIVE;
			else if (strcasecmp(str_c(a), "\\All") == 0)
				attrs |= STORE_MBOX_ALL_MAIL;
			else if (strcasecmp(str_c(a), "\\Flagged") == 0)
				attrs |= STORE_MBOX_FLAGGED;
			else {
				imapd_reply(sess, "NO [USEATTR] Unsupported "
				    "special-use attribute");
				goto out;
			}
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
		if (!imap_parse_char(ip, ')'))
			goto bad;
	}
	if (!imap_parse_end(ip))
		goto bad;
	if (!store_mailbox_name_ok(str_c(name), &why)) {
		imapd_reply(sess, "NO [CANNOT] Invalid mailbox name: %s", why);
		goto out;
	}
	if (strcmp(str_c(name), "INBOX") == 0) {
		imapd_reply(sess, "NO [ALREADYEXISTS] Mailbox already exists");
		goto out;
	}
	if (shared_readonly(sess, str_c(name)))
		goto out;
	if (store_mailbox_create(sess->store, str_c(name), attrs, &err) < 0)
		reply_store_error(sess, err);
	else {
		/* RFC 9051 6.3.4: a normalized name is announced */
		if (sess->rev2 && !wire_is_canonical(sess, raw, str_c(name)))
			write_list_oldname(sess, str_c(name), raw);
		imapd_reply(sess, "OK Create completed.");
	}
	goto out;
bad:
	reply_bad(sess, ip->error);
out:
	str_free(&name);
	str_free(&a);
	str_free(&raw);
}

/* cmd_mailbox_op - DELETE, SUBSCRIBE, UNSUBSCRIBE */
static void
cmd_mailbox_op(struct imapd_session *sess, const char *what)
{
	struct str *name = str_new(0, 0);
	const char *err;
	int ret;

	if (!imap_parse_sp(&sess->ip) || !imapd_parse_mailbox(sess, name) ||
	    !imap_parse_end(&sess->ip)) {
		reply_bad(sess, sess->ip.error);
		goto out;
	}
	if (shared_readonly(sess, str_c(name)))
		goto out;
	if (strcmp(what, "Delete") == 0) {
		if (strcmp(str_c(name), "INBOX") == 0) {
			imapd_reply(sess, "NO [CANNOT] INBOX can't be deleted.");
			goto out;
		}
		if (sess->box != NULL &&
		    strcmp(store_mailbox_name(sess->box), str_c(name)) == 0)
			close_mailbox(sess);
		ret = store_mailbox_delete(sess->store, str_c(name), &err);
	} else
		ret = store_subscribe(sess->store, str_c(name),
		    strcmp(what, "Subscribe") == 0, &err);
	if (ret < 0)
		reply_store_error(sess, err);
	else
		imapd_reply(sess, "OK %s completed.", what);
out:
	str_free(&name);
}

/*
 * write_list_oldname - the untagged LIST of CREATE and RENAME (RFC 9051
 * 6.3.4, 6.3.6, 7.3.1): the mailbox under its canonical name, with the
 * name the client supplied as OLDNAME.
 */
static void
write_list_oldname(struct imapd_session *sess, const char *name,
    const struct str *supplied)
{
	str_append_cstr(sess->out, "* LIST () \"");
	str_append_c(sess->out, imapd_settings.sep);
	str_append_cstr(sess->out, "\" ");
	imap_write_mailbox(sess->out, name, imapd_settings.sep, sess->utf8);
	str_append_cstr(sess->out, " (\"OLDNAME\" (");
	imap_write_string(sess->out, str_c(supplied), str_len(supplied));
	str_append_cstr(sess->out, "))\r\n");
}

/* parse_mailbox_raw - a mailbox argument, as sent and as a store name */
static bool
parse_mailbox_raw(struct imapd_session *sess, struct str *raw, struct str *out)
{
	bool ok;

	if (!imap_parse_astring(&sess->ip, raw))
		return false;
	imapd_mailbox_from_wire(sess, str_c(raw), str_len(raw), out, &ok);
	if (!ok)
		sess->ip.error = "Invalid mailbox name";
	return ok;
}

/* wire_is_canonical - raw is exactly how imapd writes the store name name */
static bool
wire_is_canonical(struct imapd_session *sess, const struct str *raw,
    const char *name)
{
	struct str *w = str_new(0, 0), *q = str_new(0, 0);
	bool same;

	imap_write_mailbox(w, name, imapd_settings.sep, sess->utf8);
	imap_write_string(q, str_c(raw), str_len(raw));
	same = str_len(w) == str_len(q) &&
	    memcmp(str_c(w), str_c(q), str_len(q)) == 0;
	str_free(&w);
	str_free(&q);
	return same;
}

/*
 * cmd_rename - RENAME. An IMAP4rev2 session gets the untagged LIST of
 * the new name with OLDNAME, the existing name as it supplied it (RFC
 * 9051 6.3.6 makes it a SHOULD when a name was normalized; it is sent
 * after every rename so a client learns the canonical new name).
 */
static void
cmd_rename(struct imapd_session *sess)
{
	struct str *a = str_new(0, 0), *b = str_new(0, 0),
	    *rawa = str_new(0, 0), *rawb = str_new(0, 0);
	const char *err, *why;

	if (!imap_parse_sp(&sess->ip) || !parse_mailbox_raw(sess, rawa, a) ||
	    !imap_parse_sp(&sess->ip) || !parse_mailbox_raw(sess, rawb, b) ||
	    !imap_parse_end(&sess->ip))
		reply_bad(sess, sess->ip.error);
	else if (shared_readonly(sess, str_c(a)) ||
	    shared_readonly(sess, str_c(b)))
		;
	else if (!store_mailbox_name_ok(str_c(b), &why))
		imapd_reply(sess, "NO [CANNOT] Invalid mailbox name: %s", why);
	else if (store_mailbox_rename(sess->store, str_c(a), str_c(b), &err) < 0)
		reply_store_error(sess, err);
	else {
		if (sess->rev2)
			write_list_oldname(sess, str_c(b), rawa);
		imapd_reply(sess, "OK Rename completed.");
	}
	str_free(&a);
	str_free(&b);
	str_free(&rawa);
	str_free(&rawb);
}

/* parse_flag_list - "(\Seen kw)" or a single flag into flags/keyword names */
static bool
parse_flag_list(struct imapd_session *sess, uint32_t *flags_r,
    char ***kw_r, size_t *nkw_r)
{
	struct imap_parser *ip = &sess->ip;
	struct str *f = str_new(0, 0);
	bool paren = imap_parse_peek(ip, '('), ok = true;
	size_t i;

	*flags_r = 0;
	*kw_r = NULL;
	*nkw_r = 0;
	if (paren)
		ip->pos++;
	while (!(paren && imap_parse_peek(ip, ')'))) {
		if (!imap_parse_flag(ip, f)) {
			ok = false;
			break;
		}
		if (str_c(f)[0] == '\\') {
			for (i = 0; i < N_ELEMENTS(imapd_flag_names); i++)
				if (strcasecmp(str_c(f), imapd_flag_names[i]) == 0)
					break;
			if (i < N_ELEMENTS(imapd_flag_names))
				*flags_r |= 1u << i;
			else if (strcasecmp(str_c(f), "\\Recent") != 0) {
				ok = false;
				ip->error = "Invalid system flag";
				break;
			}
		} else {
			if (str_len(f) > STORE_KEYWORD_MAX) {
				ok = false;
				ip->error = "Keyword too long";
				break;
			}
			*kw_r = xreallocarray(*kw_r, *nkw_r + 2, sizeof(char *));
			(*kw_r)[(*nkw_r)++] = xstrdup(str_c(f));
			(*kw_r)[*nkw_r] = NULL;
		}
		if (!paren)
			break;
		if (imap_parse_peek(ip, ' '))
			ip->pos++;
		else if (!imap_parse_peek(ip, ')')) {
			ok = false;
			break;
		}
	}
	if (ok && paren)
		ip->pos++;
	str_free(&f);
	return ok;
}

static void
free_keywords(char **kw, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(kw[i]);
	free(kw);
}

/* One message of an APPEND command, with its cached strings. */
struct append_msg {
	struct str *data, *env, *body, *bs;
	char **kw;
	size_t nkw;
	uint32_t flags;
	time_t t;
	int tz;
	bool binary;
};

static void
append_msg_free(struct append_msg *am)
{
	str_free(&am->data);
	str_free(&am->env);
	str_free(&am->body);
	str_free(&am->bs);
	free_keywords(am->kw, am->nkw);
}

/*
 * parse_append_msg - append-opts SP append-data (RFC 3502 append-message):
 * [flag-list SP] [date-time SP] (literal / literal8 / "UTF8 (" literal8 ")")
 */
static bool
parse_append_msg(struct imapd_session *sess, struct append_msg *am,
    struct str *d)
{
	struct imap_parser *ip = &sess->ip;

	memset(am, 0, sizeof(*am));
	am->data = str_new(0, 0);
	if (imap_parse_peek(ip, '(')) {
		if (!parse_flag_list(sess, &am->flags, &am->kw, &am->nkw) ||
		    !imap_parse_sp(ip))
			return false;
	}
	if (imap_parse_peek(ip, '"')) {
		if (!imap_parse_string(ip, d) || !imap_parse_sp(ip))
			return false;
		if (!imapd_parse_datetime(str_c(d), str_len(d), &am->t, &am->tz)) {
			ip->error = "Invalid date-time";
			return false;
		}
	}
	if (ip->n - ip->pos > 8 && strncasecmp(ip->p + ip->pos, "UTF8 (", 6) == 0) {
		/* RFC 6855 APPEND UTF8 (literal8) */
		ip->pos += 6;
		return imap_parse_literal_any(ip, am->data, &am->binary) &&
		    imap_parse_char(ip, ')');
	}
	return imap_parse_literal_any(ip, am->data, &am->binary);
}

/*
 * cmd_append - APPEND with one message or several (MULTIAPPEND, RFC
 * 3502). Every message is parsed and checked before anything is stored,
 * then all go into the mailbox in one store_append_multi(): either all
 * of them are there, with consecutive UIDs (APPENDUID names them as a
 * set), or, on any NO, none.
 */
#define APPEND_MESSAGES_MAX	1000

static void
cmd_append(struct imapd_session *sess)
{
	struct imap_parser *ip = &sess->ip;
	struct str *name = str_new(0, 0), *d = str_new(0, 0),
	    *code = str_new(0, 0);
	struct append_msg *msgs = NULL;
	struct store_append_req *reqs = NULL;
	struct store_append_result *res = NULL;
	uint32_t *uids = NULL;
	size_t n = 0, i;
	const char *err;

	if (!imap_parse_sp(ip) || !imapd_parse_mailbox(sess, name))
		goto bad;
	for (;;) {
		if (n == APPEND_MESSAGES_MAX) {
			imapd_reply(sess, "NO [LIMIT] Too many messages in one "
			    "APPEND (at most %u)", APPEND_MESSAGES_MAX);
			goto out;
		}
		if (!imap_parse_sp(ip))
			goto bad;
		msgs = xreallocarray(msgs, n + 1, sizeof(*msgs));
		if (!parse_append_msg(sess, &msgs[n++], d))
			goto bad;
		if (imap_parse_end(ip))
			break;
		ip->error = NULL;
	}
	for (i = 0; i < n; i++) {
		struct append_msg *am = &msgs[i];

		if (str_len(am->data) == 0) {
			imapd_reply(sess, "NO Empty message");
			goto out;
		}
		if (str_len(am->data) > imapd_settings.append_max) {
			imapd_reply(sess, "NO [TOOBIG] Message too big");
			goto out;
		}
		if (!am->binary &&
		    memchr(str_c(am->data), '\0', str_len(am->data)) != NULL) {
			imapd_reply(sess, "NO Message contains NUL (use literal8)");
			goto out;
		}
	}
	if (shared_readonly(sess, str_c(name)))
		goto out;
	reqs = xcalloc(n, sizeof(*reqs));
	res = xcalloc(n, sizeof(*res));
	uids = xcalloc(n, sizeof(*uids));
	for (i = 0; i < n; i++) {
		struct append_msg *am = &msgs[i];

		am->env = str_new(0, 0);
		am->body = str_new(0, 0);
		am->bs = str_new(0, 0);
		(void)imap_envelope_message(str_c(am->data), str_len(am->data),
		    NULL, am->env, am->body, am->bs);
		reqs[i].mailbox = str_c(name);
		reqs[i].data = str_c(am->data);
		reqs[i].size = str_len(am->data);
		reqs[i].fd = -1;
		reqs[i].flags = am->flags;
		reqs[i].keywords = (const char *const *)am->kw;
		reqs[i].internaldate = am->t;
		reqs[i].tz_minutes = am->tz;
		reqs[i].envelope = str_c(am->env);
		reqs[i].envelope_len = str_len(am->env);
		reqs[i].body = str_c(am->body);
		reqs[i].body_len = str_len(am->body);
		reqs[i].bodystructure = str_c(am->bs);
		reqs[i].bodystructure_len = str_len(am->bs);
		reqs[i].quota_bytes = sess->quota_bytes;
	}
	if (store_append_multi(sess->store, reqs, n, res, &err) < 0) {
		if (store_error(sess->store) == STORE_ERR_NOTFOUND)
			imapd_reply(sess, "NO [TRYCREATE] Mailbox doesn't exist");
		else
			reply_store_error(sess, err);
		goto out;
	}
	for (i = 0; i < n; i++)
		uids[i] = res[i].uid;
	str_printf(code, "APPENDUID %u ", res[0].uidvalidity);
	imap_seqset_write(code, uids, n);
	imapd_sync(sess, true, NULL, 0);
	imapd_reply(sess, "OK [%s] Append completed.", str_c(code));
	goto out;
bad:
	reply_bad(sess, ip->error);
out:
	for (i = 0; i < n; i++)
		append_msg_free(&msgs[i]);
	free(msgs);
	free(reqs);
	free(res);
	free(uids);
	str_free(&name);
	str_free(&d);
	str_free(&code);
}

static bool
need_selected(struct imapd_session *sess)
{
	if (sess->box == NULL) {
		reply_bad(sess, "No mailbox selected");
		return false;
	}
	return true;
}

static bool
need_writable(struct imapd_session *sess)
{
	if (sess->box_store != NULL) {
		imapd_reply(sess, "NO [NOPERM] Shared mailboxes are read-only");
		return false;
	}
	if (sess->readonly) {
		imapd_reply(sess, "NO [READ-ONLY] Mailbox is read-only");
		return false;
	}
	return true;
}

static void
cmd_expunge(struct imapd_session *sess)
{
	struct imap_seqset set = { 0 };
	struct store_uids uids = { 0 };
	uint32_t *seqs = NULL;
	size_t n = 0, i;
	const char *err;
	int ret;

	if (sess->uid && (!imap_parse_sp(&sess->ip) ||
	    !imap_parse_seqset(&sess->ip, &set))) {
		reply_bad(sess, sess->ip.error);
		goto out;
	}
	if (!imap_parse_end(&sess->ip)) {
		reply_bad(sess, sess->ip.error);
		goto out;
	}
	if (!need_writable(sess))
		goto out;
	if (sess->uid) {
		if (!imapd_resolve_set(sess, &set, true, &seqs, &n)) {
			reply_bad(sess, "Invalid UID set");
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct store_msg m;

			store_msg_get(sess->box, seqs[i], &m);
			if ((m.flags & STORE_FLAG_DELETED) != 0)
				store_uids_add(&uids, m.uid);
		}
		ret = uids.count == 0 ? 0 : store_expunge(sess->box, uids.uids,
		    uids.count, NULL, &err);
	} else
		ret = store_expunge(sess->box, NULL, 0, NULL, &err);
	if (ret < 0) {
		reply_store_error(sess, err);
		goto out;
	}
	imapd_sync(sess, true, NULL, 0);
	if (sess->condstore) {
		struct store_status st;

		store_mailbox_status_get(sess->box, &st);
		imapd_reply(sess, "OK [HIGHESTMODSEQ %llu] Expunge completed.",
		    (unsigned long long)st.highestmodseq);
	} else
		imapd_reply(sess, "OK Expunge completed.");
out:
	free(seqs);
	imap_seqset_free(&set);
	store_uids_clear(&uids);
}

static void
cmd_close(struct imapd_session *sess, bool expunge)
{
	const char *err;

	if (!imap_parse_end(&sess->ip))
		return reply_bad(sess, NULL);
	if (expunge && !sess->readonly &&
	    store_expunge(sess->box, NULL, 0, NULL, &err) < 0)
		log_warn(&sess->c->log, "CLOSE expunge: %s", err);
	close_mailbox(sess);
	imapd_reply(sess, "OK %s completed.", expunge ? "Close" : "Unselect");
}

static void
cmd_copy(struct imapd_session *sess, bool move)
{
	struct imap_seqset set = { 0 };
	struct store_uids src = { 0 }, dst = { 0 };
	struct str *name = str_new(0, 0), *code = str_new(0, 0);
	uint32_t *seqs = NULL, *uids = NULL, uv = 0;
	size_t n = 0, i;
	const char *err;
	int r;

	if (!imap_parse_sp(&sess->ip) || !imap_parse_seqset(&sess->ip, &set) ||
	    !imap_parse_sp(&sess->ip) || !imapd_parse_mailbox(sess, name) ||
	    !imap_parse_end(&sess->ip)) {
		reply_bad(sess, sess->ip.error);
		goto out;
	}
	if (move && !need_writable(sess))
		goto out;
	if (shared_readonly(sess, str_c(name)))
		goto out;
	if (!imapd_resolve_set(sess, &set, sess->uid, &seqs, &n)) {
		reply_bad(sess, "Invalid message set");
		goto out;
	}
	if (n == 0) {
		if (sess->uid)
			imapd_reply(sess, "OK No messages found.");
		else
			reply_bad(sess, "Invalid message set");
		goto out;
	}
	uids = xcalloc(n, sizeof(*uids));
	for (i = 0; i < n; i++)
		uids[i] = store_msg_uid(sess->box, seqs[i]);
	/* a shared mailbox is in another store: copied, not linked */
	if (sess->box_store != NULL)
		r = imapd_shared_copy(sess, seqs, n, str_c(name), &src, &dst,
		    &uv, &err);
	else
		r = store_copy(sess->box, uids, n, str_c(name), move, &src,
		    &dst, &uv, &err) < 0 ? -1 : 0;
	if (r == -2 || r == -3) {
		if (r == -3)
			log_error(&sess->c->log, "shared mailbox: %s", err);
		imapd_reply(sess, "NO [%s] %s", r == -2 ? "LIMIT" : "SERVERBUG",
		    err);
		goto out;
	}
	if (r < 0) {
		if (store_error(sess->store) == STORE_ERR_NOTFOUND)
			imapd_reply(sess, "NO [TRYCREATE] Mailbox doesn't exist");
		else
			reply_store_error(sess, err);
		goto out;
	}
	str_printf(code, "COPYUID %u ", uv);
	imap_seqset_write(code, src.uids, src.count);
	str_append_c(code, ' ');
	imap_seqset_write(code, dst.uids, dst.count);
	if (move) {
		str_printf(sess->out, "* OK [%s] Moved UIDs.\r\n", str_c(code));
		imapd_sync(sess, true, NULL, 0);
		imapd_reply(sess, "OK Move completed.");
	} else {
		imapd_sync(sess, false, NULL, 0);
		imapd_reply(sess, "OK [%s] Copy completed.", str_c(code));
	}
out:
	free(seqs);
	free(uids);
	imap_seqset_free(&set);
	store_uids_clear(&src);
	store_uids_clear(&dst);
	str_free(&name);
	str_free(&code);
}

static void
cmd_enable(struct imapd_session *sess)
{
	struct str *cap = str_new(0, 0), *on = str_new(0, 0);
	struct imap_parser *ip = &sess->ip;

	if (!imap_parse_sp(ip)) {
		reply_bad(sess, ip->error);
		goto out;
	}
	for (;;) {
		if (!imap_parse_atom(ip, cap, false)) {
			reply_bad(sess, ip->error);
			goto out;
		}
		if (strcasecmp(str_c(cap), "CONDSTORE") == 0) {
			if (!sess->condstore)
				str_append_cstr(on, " CONDSTORE");
			sess->condstore = true;
		} else if (strcasecmp(str_c(cap), "QRESYNC") == 0) {
			if (!sess->qresync)
				str_append_cstr(on, " QRESYNC");
			sess->qresync = sess->condstore = true;
		} else if (strcasecmp(str_c(cap), "IMAP4rev2") == 0) {
			if (!sess->rev2)
				str_append_cstr(on, " IMAP4rev2");
			sess->rev2 = true;
		} else if (strcasecmp(str_c(cap), "UTF8=ACCEPT") == 0) {
			if (!sess->utf8)
				str_append_cstr(on, " UTF8=ACCEPT");
			sess->utf8 = true;
		}
		if (imap_parse_end(ip))
			break;
		ip->error = NULL;
		if (!imap_parse_sp(ip)) {
			reply_bad(sess, ip->error);
			goto out;
		}
	}
	str_printf(sess->out, "* ENABLED%s\r\n", str_c(on));
	imapd_reply(sess, "OK Enabled.");
out:
	str_free(&cap);
	str_free(&on);
}

static void
cmd_namespace(struct imapd_session *sess)
{
	if (!imap_parse_end(&sess->ip))
		return reply_bad(sess, NULL);
	str_printf(sess->out, "* NAMESPACE ((\"\" \"%c\")) NIL "
	    "((\"Shared%c\" \"%c\"))\r\n", imapd_settings.sep,
	    imapd_settings.sep, imapd_settings.sep);
	imapd_reply(sess, "OK Namespace completed.");
}

static void
cmd_id(struct imapd_session *sess)
{
	/* the arguments were checked by the login role; accept any list */
	str_append_cstr(sess->out, "* ID (\"name\" \"Postern\")\r\n");
	imapd_reply(sess, "OK ID completed.");
}

static void
write_quota(struct imapd_session *sess)
{
	struct store_quota q;
	const char *err;

	if (store_quota_get(sess->store, &q, &err) < 0) {
		reply_store_error(sess, err);
		return;
	}
	str_append_cstr(sess->out, "* QUOTA \"\" (");
	if (sess->quota_bytes > 0)
		str_printf(sess->out, "STORAGE %llu %llu",
		    (unsigned long long)((q.bytes + 1023) / 1024),
		    (unsigned long long)(sess->quota_bytes / 1024));
	str_append_cstr(sess->out, ")\r\n");
}

static void
cmd_getquota(struct imapd_session *sess, bool root)
{
	struct str *a = str_new(0, 0);
	struct imap_parser *ip = &sess->ip;

	if (!imap_parse_sp(ip) || (root ? !imapd_parse_mailbox(sess, a) :
	    !imap_parse_astring(ip, a)) || !imap_parse_end(ip)) {
		reply_bad(sess, ip->error);
		goto out;
	}
	if (root) {
		str_append_cstr(sess->out, "* QUOTAROOT ");
		imap_write_mailbox(sess->out, str_c(a), imapd_settings.sep,
		    sess->utf8);
		str_append_cstr(sess->out, " \"\"\r\n");
	} else if (str_len(a) != 0) {
		imapd_reply(sess, "NO [NONEXISTENT] No such quota root");
		goto out;
	}
	write_quota(sess);
	imapd_reply(sess, "OK Getquota completed.");
out:
	str_free(&a);
}

/* ---------------------------------------------------------------- IDLE */

static void
cmd_idle(struct imapd_session *sess)
{
	struct str *line = str_new(0, 0);
	struct pollfd pfd[2];
	char buf[4096];
	int ifd, ret;
	bool own_fd;
	time_t deadline = time(NULL) + imapd_settings.timeout;

	if (!imap_parse_end(&sess->ip)) {
		reply_bad(sess, NULL);
		goto out;
	}
	imapd_sync(sess, true, NULL, 0);
	imapd_notify_check(sess, true);
	/* NOTIFY's descriptor watches the mailboxes already */
	if ((ifd = imapd_notify_fd(sess)) < 0 &&
	    (ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0)
		(void)imapd_notify_watch(sess, ifd, IN_MODIFY | IN_MOVED_TO |
		    IN_CREATE | IN_DELETE_SELF, NULL);
	own_fd = ifd >= 0 && imapd_notify_fd(sess) < 0;
	str_append_cstr(sess->out, "+ idling\r\n");
	imapd_flush_out(sess);
	stream_flush(sess->s);
	for (;;) {
		if (stream_pending(sess->s) == 0 &&
		    !imapd_compress_pending(sess->zlib)) {
			pfd[0].fd = stream_fd(sess->s);
			pfd[0].events = POLLIN;
			pfd[0].revents = 0;
			pfd[1].fd = ifd;
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			ret = poll(pfd, 2, 1000 * (int)MIN(600, deadline -
			    time(NULL) > 0 ? deadline - time(NULL) : 1));
			if (ret < 0 && errno != EINTR)
				break;
			if (time(NULL) >= deadline) {
				stream_puts(sess->s, "* BYE Autologout; idle "
				    "for too long\r\n");
				stream_flush(sess->s);
				sess->done = true;
				break;
			}
			if (ifd >= 0 && (pfd[1].revents & POLLIN) != 0) {
				if (own_fd)
					while (read(ifd, buf, sizeof(buf)) > 0)
						;
				else
					imapd_notify_check(sess, true);
				/* an overflow ended NOTIFY: IDLE goes on alone */
				if (!own_fd && imapd_notify_fd(sess) < 0) {
					ifd = inotify_init1(IN_NONBLOCK |
					    IN_CLOEXEC);
					own_fd = ifd >= 0;
					if (own_fd)
						(void)imapd_notify_watch(sess,
						    ifd, IN_MODIFY |
						    IN_MOVED_TO | IN_CREATE |
						    IN_DELETE_SELF, NULL);
				}
				imapd_sync(sess, true, NULL, 0);
				imapd_flush_out(sess);
				if (stream_flush(sess->s) < 0 || sess->done) {
					sess->done = true;
					break;
				}
			}
			if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
				continue;
		}
		if (stream_read_line(sess->s, line, 1024) != STREAM_OK) {
			sess->done = true;
			break;
		}
		str_chomp(line);
		if (str_len(line) == 4 && strncasecmp(str_c(line), "DONE", 4) == 0) {
			imapd_sync(sess, true, NULL, 0);
			imapd_reply(sess, "OK Idle completed.");
		} else
			reply_bad(sess, "Expected DONE");
		break;
	}
	if (own_fd)
		close(ifd);
out:
	str_free(&line);
}

/* cmd_compress - COMPRESS DEFLATE (RFC 4978) */
static void
cmd_compress(struct imapd_session *sess)
{
	struct str *a = str_new(0, 0);
	const char *err;

	if (!imap_parse_sp(&sess->ip) || !imap_parse_atom(&sess->ip, a, false) ||
	    !imap_parse_end(&sess->ip))
		reply_bad(sess, NULL);
	else if (strcasecmp(str_c(a), "DEFLATE") != 0)
		reply_bad(sess, "Unknown compression mechanism");
	else if (sess->zlib != NULL)
		imapd_reply(sess, "NO [COMPRESSIONACTIVE] DEFLATE active already");
	else if (sess->c->tls_sess != NULL)
		imapd_reply(sess, "NO Compression is not available on this "
		    "connection");
	else if (stream_pending(sess->s) > 0)
		/* the client must wait for our OK before it compresses */
		reply_bad(sess, "Pipelined input after COMPRESS");
	else {
		imapd_reply(sess, "OK DEFLATE active");
		if (stream_error(sess->s) == STREAM_OK &&
		    (sess->zlib = imapd_compress_start(sess->s, &err)) == NULL) {
			log_error(&sess->c->log, "compress: %s", err);
			sess->done = true;
		}
	}
	str_free(&a);
}

/* ---------------------------------------------------------------- dispatch */

enum cmd_state {
	CMD_AUTH,	/* authenticated or selected */
	CMD_SELECTED,	/* selected only */
};

static void
dispatch(struct imapd_session *sess, const char *name)
{
	struct imap_parser *ip = &sess->ip;
	bool expunge_ok = true;

	sess->uid = false;
	if (strcasecmp(name, "UID") == 0) {
		struct str *sub = str_new(0, 0);

		if (!imap_parse_sp(ip) || !imap_parse_atom(ip, sub, false)) {
			str_free(&sub);
			return reply_bad(sess, "UID needs a command");
		}
		sess->uid = true;
		if (!need_selected(sess)) {
			str_free(&sub);
			return;
		}
		if (strcasecmp(str_c(sub), "FETCH") == 0)
			imapd_cmd_fetch(sess);
		else if (strcasecmp(str_c(sub), "STORE") == 0)
			imapd_cmd_store(sess);
		else if (strcasecmp(str_c(sub), "SEARCH") == 0)
			imapd_cmd_search(sess);
		else if (strcasecmp(str_c(sub), "SORT") == 0)
			imapd_cmd_sort(sess, false);
		else if (strcasecmp(str_c(sub), "THREAD") == 0)
			imapd_cmd_sort(sess, true);
		else if (strcasecmp(str_c(sub), "COPY") == 0)
			cmd_copy(sess, false);
		else if (strcasecmp(str_c(sub), "MOVE") == 0)
			cmd_copy(sess, true);
		else if (strcasecmp(str_c(sub), "EXPUNGE") == 0)
			cmd_expunge(sess);
		else
			reply_bad(sess, "Unknown UID command");
		str_free(&sub);
		return;
	}
	if (strcasecmp(name, "CAPABILITY") == 0)
		cmd_capability(sess);
	else if (strcasecmp(name, "NOOP") == 0 || strcasecmp(name, "CHECK") == 0) {
		if (!imap_parse_end(ip))
			return reply_bad(sess, NULL);
		if (strcasecmp(name, "CHECK") == 0 && !need_selected(sess))
			return;
		imapd_sync(sess, true, NULL, 0);
		imapd_reply(sess, "OK %s completed.", strcasecmp(name, "NOOP") ==
		    0 ? "NOOP" : "Check");
	} else if (strcasecmp(name, "LOGOUT") == 0) {
		str_append_cstr(sess->out, "* BYE Logging out\r\n");
		imapd_reply(sess, "OK Logout completed.");
		sess->done = true;
	} else if (strcasecmp(name, "SELECT") == 0)
		cmd_select(sess, false);
	else if (strcasecmp(name, "EXAMINE") == 0)
		cmd_select(sess, true);
	else if (strcasecmp(name, "CREATE") == 0)
		cmd_create(sess);
	else if (strcasecmp(name, "DELETE") == 0)
		cmd_mailbox_op(sess, "Delete");
	else if (strcasecmp(name, "RENAME") == 0)
		cmd_rename(sess);
	else if (strcasecmp(name, "SUBSCRIBE") == 0)
		cmd_mailbox_op(sess, "Subscribe");
	else if (strcasecmp(name, "UNSUBSCRIBE") == 0)
		cmd_mailbox_op(sess, "Unsubscribe");
	else if (strcasecmp(name, "LIST") == 0)
		imapd_cmd_list(sess, false);
	else if (strcasecmp(name, "LSUB") == 0)
		imapd_cmd_list(sess, true);
	else if (strcasecmp(name, "STATUS") == 0)
		imapd_cmd_status(sess);
	else if (strcasecmp(name, "APPEND") == 0)
		cmd_append(sess);
	else if (strcasecmp(name, "IDLE") == 0)
		cmd_idle(sess);
	else if (strcasecmp(name, "NOTIFY") == 0)
		imapd_cmd_notify(sess);
	else if (strcasecmp(name, "ENABLE") == 0)
		cmd_enable(sess);
	else if (strcasecmp(name, "COMPRESS") == 0)
		cmd_compress(sess);
	else if (strcasecmp(name, "NAMESPACE") == 0)
		cmd_namespace(sess);
	else if (strcasecmp(name, "ID") == 0)
		cmd_id(sess);
	else if (strcasecmp(name, "GETQUOTA") == 0)
		cmd_getquota(sess, false);
	else if (strcasecmp(name, "GETQUOTAROOT") == 0)
		cmd_getquota(sess, true);
	else if (strcasecmp(name, "SETQUOTA") == 0)
		imapd_reply(sess, "NO [NOPERM] Quota is set by the administrator");
	else if (strcasecmp(name, "LOGIN") == 0 ||
	    strcasecmp(name, "AUTHENTICATE") == 0 ||
	    strcasecmp(name, "STARTTLS") == 0)
		reply_bad(sess, "Already authenticated");
	else if (strcasecmp(name, "FETCH") == 0 || strcasecmp(name, "STORE") == 0 ||
	    strcasecmp(name, "SEARCH") == 0 || strcasecmp(name, "COPY") == 0 ||
	    strcasecmp(name, "MOVE") == 0 || strcasecmp(name, "EXPUNGE") == 0 ||
	    strcasecmp(name, "CLOSE") == 0 || strcasecmp(name, "UNSELECT") == 0 ||
	    strcasecmp(name, "SORT") == 0 || strcasecmp(name, "THREAD") == 0) {
		if (!need_selected(sess))
			return;
		if (strcasecmp(name, "FETCH") == 0)
			imapd_cmd_fetch(sess);
		else if (strcasecmp(name, "STORE") == 0)
			imapd_cmd_store(sess);
		else if (strcasecmp(name, "SEARCH") == 0)
			imapd_cmd_search(sess);
		else if (strcasecmp(name, "SORT") == 0)
			imapd_cmd_sort(sess, false);
		else if (strcasecmp(name, "THREAD") == 0)
			imapd_cmd_sort(sess, true);
		else if (strcasecmp(name, "COPY") == 0)
			cmd_copy(sess, false);
		else if (strcasecmp(name, "MOVE") == 0)
			cmd_copy(sess, true);
		else if (strcasecmp(name, "EXPUNGE") == 0)
			cmd_expunge(sess);
		else if (strcasecmp(name, "CLOSE") == 0)
			cmd_close(sess, true);
		else
			cmd_close(sess, false);
		expunge_ok = false;
		(void)expunge_ok;
	} else
		reply_bad(sess, "Unknown command");
}

/* imapd_session_run - see imapd.h */
void
imapd_session_run(struct login_conn *c, const char *user, const char *tag,
    struct str *input)
{
	struct imapd_session sess;
	struct str *name = str_new(0, 0), *dir = str_new(0, 0);
	const char *err = NULL;
	enum imapd_read r;
	int slot = -1, ret;

	(void)input;	/* XXX: pipelined input after LOGIN is re-read below */
	memset(&sess, 0, sizeof(sess));
	sess.c = c;
	sess.s = c->s;
	sess.user = xstrdup(user);
	sess.tag = str_new_cstr(tag != NULL ? tag : "*");
	sess.cmd = str_new(0, 0);
	sess.out = str_new(4096, 0);
	/* the login side looked it up (imapd_login.c login_quota) */
	sess.quota_bytes = c->have_quota ? c->quota_bytes : 0;
	str_printf(dir, "%s/.imap-conn", imapd_settings.store_dir);
	ret = login_conn_slot(str_c(dir), user, imapd_settings.user_conn_limit,
	    &slot, &err);
	if (ret == 0) {
		log_warn(&c->log, "too many sessions for user %s", user);
		imapd_reply(&sess, "NO [LIMIT] Too many simultaneous sessions "
		    "for this user");
		goto out;
	}
	if (ret < 0)
		log_warn(&c->log, "session slot for %s: %s: %m (not counted)",
		    user, err);
	sess.store = store_open(imapd_settings.store_dir, user, &err);
	if (sess.store == NULL) {
		log_error(&c->log, "store of %s: %s", user, err);
		imapd_reply(&sess, "NO [UNAVAILABLE] Cannot open the mail store");
		goto out;
	}
	if (store_ensure_defaults(sess.store, &err) < 0)
		log_warn(&c->log, "default mailboxes of %s: %s", user, err);
	str_append_cstr(sess.out, "");
	stream_printf(sess.s, "%s OK [CAPABILITY ", str_c(sess.tag));
	imapd_capability_auth(sess.out, &sess);
	imapd_flush_out(&sess);
	stream_puts(sess.s, "] Logged in\r\n");
	stream_flush(sess.s);
	while (!sess.done) {
		if (sess.errors >= IMAPD_ERRORS_MAX) {
			stream_puts(sess.s, "* BYE Too many errors\r\n");
			break;
		}
		/* NOTIFY: notifications go out while no command runs */
		if (!imapd_notify_wait(&sess))
			break;
		r = imapd_read_command(sess.s, sess.cmd, imapd_settings.line_max,
		    imapd_settings.append_max, sess.tag);
		if (r == IMAPD_READ_EOF) {
			if (stream_error(sess.s) == STREAM_TIMEOUT)
				stream_puts(sess.s, "* BYE Autologout; idle for "
				    "too long\r\n");
			break;
		}
		if (r == IMAPD_READ_FATAL)
			break;
		if (r == IMAPD_READ_TOO_LONG) {
			sess.errors++;
			continue;
		}
		imap_parser_init(&sess.ip, str_c(sess.cmd), str_len(sess.cmd));
		if (!imap_parse_tag(&sess.ip, sess.tag)) {
			str_set_cstr(sess.tag, "*");
			reply_bad(&sess, "Error in IMAP command: invalid tag");
			continue;
		}
		if (!imap_parse_sp(&sess.ip) ||
		    !imap_parse_atom(&sess.ip, name, false)) {
			reply_bad(&sess, "Error in IMAP command: invalid tag or "
			    "command");
			continue;
		}
		dispatch(&sess, str_c(name));
		imapd_flush_out(&sess);
		stream_flush(sess.s);
		/* cap what a huge APPEND or FETCH left allocated */
		if (str_len(sess.cmd) > 1024 * 1024) {
			str_free(&sess.cmd);
			sess.cmd = str_new(0, 0);
		}
		if (str_len(sess.out) == 0 && sess.out->cap > 1024 * 1024) {
			str_free(&sess.out);
			sess.out = str_new(4096, 0);
		}
	}
	stream_flush(sess.s);
	log_info(&c->log, "disconnect: user=%s", user);
out:
	if (sess.zlib != NULL) {
		stream_set_io(sess.s, NULL, NULL);
		imapd_compress_free(&sess.zlib);
	}
	imapd_notify_free(&sess.notify);
	close_mailbox(&sess);
	store_free(&sess.store);
	if (slot >= 0)
		close(slot);
	free(sess.user);
	str_free(&sess.tag);
	str_free(&sess.cmd);
	str_free(&sess.out);
	str_free(&name);
	str_free(&dir);
}
