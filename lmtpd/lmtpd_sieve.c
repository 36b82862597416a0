/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_sieve - Sieve at delivery: scripts -> the delivery plan
 *
 * DESCRIPTION
 *	lmtpd_sieve_plan() runs, for one recipient, $sieve_before, the
 *	user's active script (lib/sieve/sieve_user.h: $store_directory/
 *	USER/sieve/active) and $sieve_after, as Pigeonhole does: each
 *	script runs only while the previous ones kept the message (their
 *	implicit keep is still in force). Compiled scripts come from the
 *	.svbin cache beside each script (sieve_cache_open), and the last
 *	few are kept in memory while their files are unchanged.
 *
 *	The results become the plan lmtpd_deliver.c carries out:
 *	  keep / implicit keep   INBOX with the imap4flags flags;
 *	  fileinto M             M (flags, keywords). A missing M is
 *	                         created with :create or
 *	                         lmtp_mailbox_autocreate, else the
 *	                         message goes to INBOX (logged);
 *	  discard                nothing stored (250);
 *	  redirect A             a copy injected through cleanup
 *	                         ($sieve_cleanup_service) to A with the
 *	                         original envelope sender, a Delivered-To:
 *	                         naming this recipient on top;
 *	  reject R               an RFC 5429 refusal (multipart/report,
 *	                         disposition-notification) to the envelope
 *	                         sender, null sender, Auto-Submitted;
 *	                         never to a null sender;
 *	  ereject R              the LMTP reply 550 5.7.1 R for this
 *	                         recipient (the MTA bounces);
 *	  vacation               handed to vacationd (lmtpd_vacation.c);
 *	  notify mailto:...      a notification injected through cleanup
 *	                         (RFC 5435, RFC 5436; see do_notify).
 *	Identical fileinto targets are stored once (RFC 5228 4.1).
 *
 *	editheader (RFC 5293): every store action carries the header as
 *	the script had edited it when the action ran (the engine's
 *	snapshot), the implicit keep the final one; lmtpd_deliver.c
 *	stores that header over the unchanged body. A redirect sends the
 *	edited header; a reject notice quotes the original (section 7).
 *	Edits of one script carry over to the next ($sieve_before, the
 *	user's, $sieve_after): the next script runs on the edited message.
 *
 *	Loops: a redirect is not sent when the message already carries a
 *	Delivered-To: or X-Loop: naming this recipient (the message came
 *	round); the message is then kept in INBOX instead. Each redirect is remembered in the user's duplicate
 *	database (Message-ID + target) for a day, so a delivery retried
 *	after a temporary failure does not send it twice. The number of
 *	redirects per message is bounded by sieve_max_redirects (engine).
 *
 *	Errors: a script that does not compile or fails at run time leaves
 *	the implicit keep (INBOX), with a log line naming the script and
 *	the reason (RFC 5228 2.10.6). A failed injection of a redirect or
 *	refusal is a temporary failure of the delivery (451); redirects
 *	already sent are not repeated on the retry (see above).
 *
 * SECURITY
 *	Runs in lmtpd as $store_owner. Scripts are user input: the engine
 *	bounds every dimension (sieve_max_*). Mailbox names from scripts
 *	are checked with store_mailbox_name_ok and never become paths;
 *	keywords are checked against the IMAP atom syntax.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "header.h"
#include "log.h"
#include "queue_file.h"
#include "rfc2047.h"
#include "sieve/sieve.h"
#include "sieve/sieve_user.h"
#include "store/store.h"
#include "str.h"

#include "lmtpd.h"

#define LMTPD_SIEVE_CACHE	64
#define LMTPD_REDIRECT_PERIOD	(24 * 3600)
#define LMTPD_NOTIFY_SUBJECT_MAX	256	/* octets of a notification subject */

struct cached_script {
	char *path;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	struct sieve_script *script;
	bool has_includes;
};

static struct {
	bool enabled;
	bool autocreate;
	struct sieve_limits limits;
	const char *before, *after, *global_dir, *cleanup, *hostname;
	struct cached_script cache[LMTPD_SIEVE_CACHE];
	unsigned next;
} ls;

struct run_ctx {
	struct lmtpd_session *sess;
	const struct lmtpd_rcpt *rcpt;
	struct store *store;
	const char *dir;
	/* the header block the running script started from (editheader
	 * of an earlier script), NULL = the message's own */
	const struct str *base_hdr;
	unsigned notified;	/* notifications sent for this recipient */
};

static void
ls_load(void)
{
	struct config *cf = conf();

	/* Read per delivery, not cached: the config may be replaced (tests,
	 * fuzzing) and the pointers then die with it; lookups are cheap. */
	ls.enabled = config_bool(cf, "lmtp_sieve");
	ls.autocreate = config_bool(cf, "lmtp_mailbox_autocreate");
	sieve_user_limits(cf, &ls.limits);
	ls.before = config_str(cf, "sieve_before");
	ls.after = config_str(cf, "sieve_after");
	ls.global_dir = config_str(cf, "sieve_global_dir");
	ls.cleanup = config_str(cf, "sieve_cleanup_service");
	ls.hostname = config_str(cf, "myhostname");
}

/* lmtpd_sieve_enabled - is lmtp_sieve on? */
bool
lmtpd_sieve_enabled(void)
{
	ls_load();
	return ls.enabled;
}

/*
 * script_open - the compiled script at path: from memory when the file
 * is unchanged (and it includes nothing that could change alone), else
 * through the .svbin cache. NULL: missing (*missing_r) or broken (logged).
 */
static struct sieve_script *
script_open(struct lmtpd_session *sess, const char *path,
    const char *personal_dir, bool *missing_r)
{
	struct sieve_dir_loader dl;
	struct sieve_loader loader;
	struct sieve_errors errs;
	struct sieve_script *script;
	struct cached_script *c;
	struct str *text;
	struct stat st;
	size_t i;

	*missing_r = false;
	if (stat(path, &st) < 0) {
		*missing_r = errno == ENOENT;
		if (!*missing_r)
			log_error(&sess->log, "sieve script %s: %m", path);
		return NULL;
	}
	for (i = 0; i < LMTPD_SIEVE_CACHE; i++) {
		c = &ls.cache[i];
		if (c->script != NULL && !c->has_includes &&
		    strcmp(c->path, path) == 0 && c->dev == st.st_dev &&
		    c->ino == st.st_ino && c->size == st.st_size &&
		    c->mtime.tv_sec == st.st_mtim.tv_sec &&
		    c->mtime.tv_nsec == st.st_mtim.tv_nsec)
			return c->script;
	}
	memset(&errs, 0, sizeof(errs));
	memset(&dl, 0, sizeof(dl));
	dl.personal_dir = personal_dir;
	dl.global_dir = ls.global_dir;
	sieve_dir_loader_init(&dl, &loader);
	script = sieve_cache_open(path, &ls.limits, &loader, &errs, NULL);
	sieve_dir_loader_deinit(&dl);
	if (script == NULL) {
		text = str_new(0, 0);
		sieve_errors_format(&errs, text);
		str_chomp(text);
		log_error(&sess->log, "sieve script %s does not compile "
		    "(implicit keep): %s", path, str_c(text));
		str_free(&text);
		sieve_errors_clear(&errs);
		return NULL;
	}
	sieve_errors_clear(&errs);
	c = &ls.cache[ls.next++ % LMTPD_SIEVE_CACHE];
	sieve_script_free(&c->script);
	free(c->path);
	c->path = xstrdup(path);
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
	c->script = script;
	text = str_new(0, 0);
	sieve_script_dump(script, text);
	c->has_includes = strstr(str_c(text), "include") != NULL;
	str_free(&text);
	return script;
}

/* cb_mailbox_exists - the store's answer */
static int
cb_mailbox_exists(void *ctx, const char *mailbox)
{
	struct run_ctx *rc = ctx;
	struct store_mailbox_info *list;
	const char *err;
	size_t count, i;
	int found = 0;

	if (strcasecmp(mailbox, "INBOX") == 0)
		return 1;
	if (store_mailbox_list(rc->store, &list, &count, &err) < 0)
		return -1;
	for (i = 0; i < count; i++)
		if ((list[i].attrs & STORE_MBOX_NONEXISTENT) == 0 &&
		    strcmp(list[i].name, mailbox) == 0)
			found = 1;
	store_mailbox_list_free(&list, count);
	return found;
}

/* cb_duplicate - the user's duplicate database */
static int
cb_duplicate(void *ctx, const void *id, size_t idlen, unsigned period)
{
	struct run_ctx *rc = ctx;
	const char *err;

	(void)period;	/* marks carry their own expiry */
	return sieve_user_dup_check(rc->dir, id, idlen, time(NULL), &err);
}

/* plan_add - one store action, merged with an identical target */
static void
plan_add(struct lmtpd_session *sess, struct lmtpd_plan *plan,
    const char *mailbox, bool fallback, char *const *flags, size_t nflags,
    const struct str *header)
{
	struct lmtpd_action *a;
	size_t i, k, nk = 0;

	for (i = 0; i < plan->count; i++)
		if (strcmp(plan->actions[i].mailbox, mailbox) == 0)
			return;
	if (plan->count == LMTPD_PLAN_MAX) {
		log_warn(&sess->log, "sieve: more than %d mailboxes, %s "
		    "skipped", LMTPD_PLAN_MAX, mailbox);
		return;
	}
	a = &plan->actions[plan->count++];
	a->mailbox = xstrdup(mailbox);
	a->fallback_inbox = fallback;
	if (header != NULL) {
		a->header = str_new(str_len(header) + 1, 0);
		str_append_str(a->header, header);
	}
	for (i = 0; i < nflags; i++) {
		const char *f = flags[i];

		if (strcasecmp(f, "\\Seen") == 0)
			a->flags |= STORE_FLAG_SEEN;
		else if (strcasecmp(f, "\\Answered") == 0)
			a->flags |= STORE_FLAG_ANSWERED;
		else if (strcasecmp(f, "\\Flagged") == 0)
			a->flags |= STORE_FLAG_FLAGGED;
		else if (strcasecmp(f, "\\Deleted") == 0)
			a->flags |= STORE_FLAG_DELETED;
		else if (strcasecmp(f, "\\Draft") == 0)
			a->flags |= STORE_FLAG_DRAFT;
		else if (*f != '\\' && *f != '\0' &&
		    strlen(f) <= STORE_KEYWORD_MAX &&
		    strcspn(f, "(){ %*\"\\]") == strlen(f)) {
			for (k = 0; k < strlen(f); k++)
				if ((unsigned char)f[k] <= 0x20 ||
				    (unsigned char)f[k] >= 0x7f)
					break;
			if (k < strlen(f))
				continue;
			a->keywords = xreallocarray(a->keywords, nk + 2,
			    sizeof(*a->keywords));
			a->keywords[nk++] = xstrdup(f);
			a->keywords[nk] = NULL;
		}
	}
}

/* addr_char - may c be part of an address (next to the one we look for)? */
static bool
addr_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.@", c) != NULL);
}

/* header_names_addr - does the header hold NAME: ... addr ...? */
static bool
header_names_addr(const char *msg, size_t size, const char *name,
    const char *addr)
{
	struct header_iter it;
	struct header_field f;
	size_t alen = strlen(addr), i;

	header_iter_init(&it, msg, header_block_size(msg, size));
	while (header_iter_next(&it, &f)) {
		if (!header_name_is(&f, name) || f.value_len < alen)
			continue;
		/* addr as a whole word: "xalice@h" does not name "alice@h" */
		for (i = 0; i + alen <= f.value_len; i++)
			if (strncasecmp(f.value + i, addr, alen) == 0 &&
			    (i == 0 || !addr_char(f.value[i - 1])) &&
			    (i + alen == f.value_len ||
			    !addr_char(f.value[i + alen])))
				return true;
	}
	return false;
}

/* inject - one message through cleanup; 0 or -1 with why */
static int
inject(const char *sender, const char *const *rcpts, size_t nrcpts,
    unsigned flags, const char *head, size_t head_len, const char *body,
    size_t body_len, char id_r[QUEUE_ID_SIZE], struct str *why)
{
	struct cleanup_client *c;
	struct queue_envelope env;
	struct queue_rcpt r;
	const char *err = NULL;
	size_t i;
	int rc = 0;

	c = cleanup_client_open(ls.cleanup, flags, &err);
	if (c == NULL) {
		str_printf(why, "cannot connect to cleanup: %s", err);
		return -1;
	}
	pst_strlcpy(id_r, cleanup_client_id(c), QUEUE_ID_SIZE);
	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = sender;
	env.protocol = "local";
	rc = cleanup_client_envelope(c, &env, &err);
	for (i = 0; i < nrcpts && rc == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.address = rcpts[i];
		rc = cleanup_client_rcpt(c, &r, &err);
	}
	if (rc < 0 ||
	    cleanup_client_content(c, head, head_len, &err) < 0 ||
	    cleanup_client_content(c, body, body_len, &err) < 0) {
		cleanup_client_abort(&c);
		str_printf(why, "%s", err != NULL ? err : "cleanup failed");
		return -1;
	}
	if (cleanup_client_finish(&c, why) != CLEANUP_OK) {
		if (str_len(why) == 0)
			str_append_cstr(why, "cleanup refused the message");
		return -1;
	}
	return 0;
}

/* redirect_id - the duplicate id of (Message-ID, target) */
static void
redirect_id(const char *msg, size_t size, const char *kind,
    const char *target, unsigned char id[SIEVE_USER_DUP_ID_MAX])
{
	struct header_field f;
	uint64_t h1, h2;
	struct str *k = str_new(0, 0);
	size_t hlen = header_block_size(msg, size);

	str_append_cstr(k, kind);
	str_append_c(k, '\n');
	str_append_cstr(k, target);
	str_append_c(k, '\n');
	if (header_find(msg, hlen, "Message-ID", &f))
		str_append(k, f.value, f.value_len);
	else	/* no Message-ID: the header block itself */
		str_append(k, msg, hlen);
	h1 = sieve_script_hash(str_c(k), str_len(k));
	str_append_c(k, '\001');
	h2 = sieve_script_hash(str_c(k), str_len(k));
	memset(id, 0, SIEVE_USER_DUP_ID_MAX);
	memcpy(id, &h1, sizeof(h1));
	memcpy(id + 8, &h2, sizeof(h2));
	str_free(&k);
}

/*
 * do_redirect - 0 done (or already done before), 1 skipped as a mail loop
 * (the caller keeps the message instead), -1 tempfail
 */
static int
do_redirect(struct run_ctx *rc, const struct sieve_action *a,
    const char **error_r)
{
	struct lmtpd_session *sess = rc->sess;
	const char *msg = sess->msg.data, *err;
	size_t size = (size_t)sess->msg.size, hlen;
	const struct str *edited = a->edited_header != NULL ?
	    a->edited_header : rc->base_hdr;
	unsigned char id[SIEVE_USER_DUP_ID_MAX];
	char qid[QUEUE_ID_SIZE];
	struct str *head = str_new(0, 0), *why = str_new(0, 0);
	int ret = 0;

	if (header_names_addr(msg, size, "Delivered-To", rc->rcpt->address) ||
	    header_names_addr(msg, size, "X-Loop", rc->rcpt->address)) {
		log_warn(&sess->log, "to=<%s>, sieve: redirect to <%s> "
		    "skipped: mail loop (Delivered-To), kept instead",
		    rc->rcpt->address, a->address);
		ret = 1;
		goto out;
	}
	redirect_id(msg, size, "redirect", a->address, id);
	if (sieve_user_dup_check(rc->dir, id, sizeof(id), time(NULL), &err) > 0) {
		log_info(&sess->log, "to=<%s>, sieve: redirect to <%s> "
		    "already sent", rc->rcpt->address, a->address);
		goto out;
	}
	str_printf(head, "Delivered-To: %s\r\n", rc->rcpt->address);
	/* RFC 5293 7: a redirect sends the header as edited so far */
	hlen = edited != NULL ? header_block_size(msg, size) : 0;
	if (edited != NULL)
		str_append_str(head, edited);
	if (inject(str_c(sess->sender), (const char *const *)&a->address, 1,
	    0, str_c(head), str_len(head), msg + hlen, size - hlen, qid,
	    why) < 0) {
		log_error(&sess->log, "to=<%s>, sieve: redirect to <%s> "
		    "failed: %s", rc->rcpt->address, a->address, str_c(why));
		*error_r = "Sieve redirect failed, try again later";
		ret = -1;
		goto out;
	}
	log_info(&sess->log, "to=<%s>, sieve: redirected to <%s> as %s",
	    rc->rcpt->address, a->address, qid);
	if (sieve_user_dup_mark(rc->dir, id, sizeof(id), LMTPD_REDIRECT_PERIOD,
	    time(NULL), &err) < 0)
		log_warn(&sess->log, "sieve: redirect record: %s", err);
out:
	str_free(&head);
	str_free(&why);
	return ret;
}

/* do_reject - the RFC 5429 refusal to the envelope sender */
static int
do_reject(struct run_ctx *rc, const struct sieve_action *a,
    const char **error_r)
{
	struct lmtpd_session *sess = rc->sess;
	const char *msg = sess->msg.data, *sender = str_c(sess->sender);
	size_t size = (size_t)sess->msg.size, hlen;
	struct header_field f;
	struct str *m = str_new(0, 0), *why = str_new(0, 0);
	struct str *subj = str_new(0, 0);
	char qid[QUEUE_ID_SIZE], date[64], boundary[64];
	time_t now = time(NULL);
	struct tm tm;
	int ret = 0;

	if (*sender == '\0') {
		log_info(&sess->log, "to=<%s>, sieve: reject of a message with "
		    "a null sender: discarded", rc->rcpt->address);
		goto out;
	}
	hlen = header_block_size(msg, size);
	if (header_find(msg, hlen, "Subject", &f))
		(void)header_unfold(f.value, f.value_len, subj);
	if (str_len(subj) > 200)
		str_truncate(subj, 200);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	snprintf(boundary, sizeof(boundary), "%lld.%ld.reject.%s",
	    (long long)now, (long)getpid(), sess->tx_id);
	str_printf(m, "From: Mail Delivery Subsystem <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: Rejected: %s\r\nDate: %s\r\n"
	    "Message-ID: <%s@%s>\r\n"
	    "Auto-Submitted: auto-replied (rejected)\r\n"
	    "Precedence: bulk\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type="
	    "disposition-notification;\r\n\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message\r\n\r\n--%s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Disposition: inline\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Your message to <%s> was automatically rejected:\r\n%s\r\n\r\n"
	    "--%s\r\nContent-Type: message/disposition-notification\r\n\r\n"
	    "Reporting-UA: %s; Postern Sieve\r\n"
	    "Final-Recipient: rfc822; %s\r\n",
	    ls.hostname, sender, str_c(subj), date, boundary, ls.hostname,
	    boundary, boundary, rc->rcpt->address, a->text != NULL ? a->text : "",
	    boundary, ls.hostname, rc->rcpt->address);
	if (header_find(msg, hlen, "Message-ID", &f)) {
		str_append_cstr(m, "Original-Message-ID: ");
		str_append(m, f.value, f.value_len);
		str_append_cstr(m, "\r\n");
	}
	str_printf(m, "Disposition: automatic-action/MDN-sent-automatically; "
	    "deleted\r\n\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
	    boundary);
	str_append(m, msg, hlen);
	str_printf(m, "\r\n--%s--\r\n", boundary);
	if (inject("", &sender, 1, CLEANUP_FLAG_BOUNCE, str_c(m), str_len(m),
	    "", 0, qid, why) < 0) {
		log_error(&sess->log, "to=<%s>, sieve: reject notice to <%s> "
		    "failed: %s", rc->rcpt->address, sender, str_c(why));
		*error_r = "Sieve reject failed, try again later";
		ret = -1;
		goto out;
	}
	log_info(&sess->log, "to=<%s>, sieve: rejected, notice to <%s> as %s",
	    rc->rcpt->address, sender, qid);
out:
	str_free(&m);
	str_free(&why);
	str_free(&subj);
	return ret;
}

/* auto_submitted - does the header say the message is automatic? */
static bool
auto_submitted(const char *msg, size_t size)
{
	struct header_field f;
	struct str *v;
	bool yes;

	if (!header_find(msg, header_block_size(msg, size), "Auto-Submitted",
	    &f))
		return false;
	v = str_new(f.value_len + 1, 0);
	(void)header_unfold(f.value, f.value_len, v);
	/* "no", possibly with parameters (RFC 3834 5) */
	yes = !(str_len(v) >= 2 && strncasecmp(str_c(v), "no", 2) == 0 &&
	    (str_len(v) == 2 || strchr(" \t;(", str_c(v)[2]) != NULL));
	str_free(&v);
	return yes;
}

/* text_crlf - append p/n to out with every line end made CRLF */
static void
text_crlf(struct str *out, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			str_append(out, "\r\n", 2);
			if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
				i++;
		} else
			str_append_c(out, p[i]);
	}
	if (n > 0 && p[n - 1] != '\n' && p[n - 1] != '\r')
		str_append(out, "\r\n", 2);
}

/* header_text - the unfolded, decoded value of name, capped (UTF-8) */
static void
header_text(const char *msg, size_t hlen, const char *name, struct str *out)
{
	struct header_field f;
	size_t n;

	if (!header_find(msg, hlen, name, &f))
		return;
	(void)rfc2047_decode(f.value, f.value_len, out);
	if (str_len(out) > LMTPD_NOTIFY_SUBJECT_MAX) {
		n = LMTPD_NOTIFY_SUBJECT_MAX;
		while (n > 0 && ((unsigned char)str_c(out)[n] & 0xc0) == 0x80)
			n--;	/* do not cut a character */
		str_truncate(out, n);
	}
}

/*
 * do_notify - the mailto notification (RFC 5435, RFC 5436) through
 * cleanup. Never for a message that is itself automatic (Auto-Submitted
 * other than "no", RFC 5436 2.7; this also stops notification loops);
 * a null envelope sender stays null, else the script owner receives
 * the bounces. Remembered in the duplicate database like a redirect so
 * a retried delivery does not notify twice. Best effort: a failure is
 * logged and the delivery goes on.
 */
static void
do_notify(struct run_ctx *rc, const struct sieve_action *a)
{
	struct lmtpd_session *sess = rc->sess;
	const char *msg = sess->msg.data, *err;
	size_t size = (size_t)sess->msg.size, hlen = header_block_size(msg, size);
	unsigned char id[SIEVE_USER_DUP_ID_MAX];
	struct sieve_mailto mt;
	struct str *m = NULL, *why = NULL, *t = NULL, *subj = NULL;
	struct str *shown = str_new(0, 0);
	char qid[QUEUE_ID_SIZE], date[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i, k, nvis;
	static const char *const prio[] = { "", "1 (Highest)", "3 (Normal)",
	    "5 (Lowest)" };

	mem_printable(shown, a->method, strlen(a->method), 200);
	if (sieve_mailto_parse(a->method, strlen(a->method), &mt, &err) < 0) {
		/* the engine checked it: only a changed engine gets here */
		log_warn(&sess->log, "to=<%s>, sieve: notify %s: %s",
		    rc->rcpt->address, str_c(shown), err);
		goto out;
	}
	if (auto_submitted(msg, size)) {
		log_info(&sess->log, "to=<%s>, sieve: notify %s skipped: the "
		    "message is Auto-Submitted", rc->rcpt->address,
		    str_c(shown));
		goto out;
	}
	redirect_id(msg, size, "notify", a->method, id);
	if (sieve_user_dup_check(rc->dir, id, sizeof(id), now, &err) > 0) {
		log_info(&sess->log, "to=<%s>, sieve: notify %s already sent",
		    rc->rcpt->address, str_c(shown));
		goto out;
	}
	m = str_new(1024, 0);
	why = str_new(0, 0);
	t = str_new(256, 0);
	subj = str_new(256, 0);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* Subject: :message, else the URI's, else from the message */
	if (a->text != NULL)
		str_append_cstr(subj, a->text);
	else if (mt.subject != NULL)
		str_append_str(subj, mt.subject);
	else {
		str_append_cstr(subj, "Notification: ");
		i = str_len(subj);
		header_text(msg, hlen, "Subject", subj);
		if (str_len(subj) == i)
			str_append_cstr(subj, "(no subject)");
	}
	for (i = 0; i < str_len(subj); i++)	/* one line */
		if ((unsigned char)str_c(subj)[i] < 0x20)
			str_data(subj)[i] = ' ';
	if (str_len(subj) > LMTPD_NOTIFY_SUBJECT_MAX) {
		i = LMTPD_NOTIFY_SUBJECT_MAX;
		while (i > 0 && ((unsigned char)str_c(subj)[i] & 0xc0) == 0x80)
			i--;	/* do not cut a character */
		str_truncate(subj, i);
	}
	str_append_cstr(m, "From: ");
	str_append_cstr(m, a->from != NULL ? a->from : rc->rcpt->address);
	for (k = 0; k < 2; k++) {
		nvis = 0;
		for (i = 0; i < mt.nrcpts; i++) {
			if (mt.cc[i] != (k == 1))
				continue;
			str_append_cstr(m, nvis++ == 0 ? (k == 0 ? "\r\nTo: " :
			    "\r\nCc: ") : ",\r\n ");
			str_printf(m, "<%s>", mt.rcpts[i]);
		}
		if (k == 0 && nvis == 0)
			str_append_cstr(m, "\r\nTo: undisclosed-recipients:;");
	}
	str_append_cstr(m, "\r\nSubject: ");
	rfc2047_encode(str_c(subj), str_len(subj), t);
	/* fold between encoded-words (they are separated by spaces) */
	for (i = 0; i < str_len(t); i++) {
		if (str_c(t)[i] == ' ' && strncmp(str_c(t) + i + 1, "=?utf-8?B?",
		    10) == 0)
			str_append_cstr(m, "\r\n");
		str_append_c(m, str_c(t)[i]);
	}
	str_printf(m, "\r\nDate: %s\r\nMessage-ID: <%lld.%s.notify%u@%s>\r\n"
	    "Auto-Submitted: auto-notified\r\nPrecedence: bulk\r\n"
	    "X-Priority: %s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", date, (long long)now,
	    sess->tx_id, rc->notified, ls.hostname, prio[a->importance >= 1 &&
	    a->importance <= 3 ? a->importance : 2]);
	if (mt.body != NULL)
		text_crlf(m, str_c(mt.body), str_len(mt.body));
	else {
		/* RFC 5436 2.7: say what arrived */
		str_clear(t);
		header_text(msg, hlen, "From", t);
		str_printf(m, "You have new mail for <%s>.\r\n\r\nFrom: %s\r\n",
		    rc->rcpt->address, str_c(t));
		str_clear(t);
		header_text(msg, hlen, "Subject", t);
		str_printf(m, "Subject: %s\r\n", str_c(t));
	}
	if (inject(*str_c(sess->sender) == '\0' ? "" : rc->rcpt->address,
	    (const char *const *)mt.rcpts, mt.nrcpts, 0, str_c(m), str_len(m),
	    "", 0, qid, why) < 0) {
		log_error(&sess->log, "to=<%s>, sieve: notify %s failed: %s",
		    rc->rcpt->address, str_c(shown), str_c(why));
		goto out;
	}
	rc->notified++;
	log_info(&sess->log, "to=<%s>, sieve: notification to %s sent as %s",
	    rc->rcpt->address, str_c(shown), qid);
	if (sieve_user_dup_mark(rc->dir, id, sizeof(id), LMTPD_REDIRECT_PERIOD,
	    now, &err) < 0)
		log_warn(&sess->log, "sieve: notify record: %s", err);
out:
	sieve_mailto_clear(&mt);
	str_free(&m);
	str_free(&why);
	str_free(&t);
	str_free(&subj);
	str_free(&shown);
}

/* fileinto - one store action for a fileinto/keep */
static void
fileinto(struct run_ctx *rc, struct lmtpd_plan *plan, const char *mailbox,
    bool create, char *const *flags, size_t nflags, const struct str *hdr)
{
	struct lmtpd_session *sess = rc->sess;
	const char *err, *why = NULL;
	int ex;

	if (strcasecmp(mailbox, "INBOX") == 0) {
		plan_add(sess, plan, "INBOX", false, flags, nflags, hdr);
		return;
	}
	if (!store_mailbox_name_ok(mailbox, &why)) {
		log_warn(&sess->log, "to=<%s>, sieve: fileinto: invalid "
		    "mailbox name (%s): INBOX instead", rc->rcpt->address, why);
		plan_add(sess, plan, "INBOX", false, flags, nflags, hdr);
		return;
	}
	ex = cb_mailbox_exists(rc, mailbox);
	if (ex == 0 && (create || ls.autocreate)) {
		if (store_mailbox_create(rc->store, mailbox, 0, &err) < 0 &&
		    store_error(rc->store) != STORE_ERR_EXISTS)
			log_warn(&sess->log, "to=<%s>, sieve: cannot create "
			    "mailbox: %s", rc->rcpt->address, err);
		else
			ex = 1;
	}
	if (ex <= 0) {
		struct str *shown = str_new(0, 0);

		mem_printable(shown, mailbox, strlen(mailbox), 200);
		log_info(&sess->log, "to=<%s>, sieve: mailbox %s does not "
		    "exist: INBOX instead", rc->rcpt->address, str_c(shown));
		str_free(&shown);
	}
	plan_add(sess, plan, mailbox, true, flags, nflags, hdr);
}

/* run_one - run one script; true if its implicit keep remains */
static int
run_one(struct run_ctx *rc, struct sieve_script *script,
    const struct sieve_env *env, struct lmtpd_plan *plan, bool *keep_r,
    char ***keep_flags_r, size_t *keep_nflags_r, struct sieve_result *res,
    const char **error_r)
{
	struct lmtpd_session *sess = rc->sess;
	const char *err;
	size_t i;

	memset(res, 0, sizeof(*res));
	if (sieve_run(script, env, &ls.limits, res) < 0)
		log_error(&sess->log, "to=<%s>, sieve: runtime error in %s "
		    "(implicit keep): %s", rc->rcpt->address,
		    sieve_script_name(script), res->error != NULL ?
		    res->error : "unknown");
	for (i = 0; i < res->count; i++) {
		const struct sieve_action *a = &res->actions[i];
		/* RFC 5293 7: each action takes the header as edited so far */
		const struct str *hdr = a->edited_header != NULL ?
		    a->edited_header : rc->base_hdr;

		switch (a->type) {
		case SIEVE_ACT_KEEP:
			fileinto(rc, plan, a->mailbox != NULL ? a->mailbox :
			    "INBOX", false, a->flags, a->flag_count, hdr);
			break;
		case SIEVE_ACT_FILEINTO:
			fileinto(rc, plan, a->mailbox, a->create, a->flags,
			    a->flag_count, hdr);
			break;
		case SIEVE_ACT_REDIRECT:
			switch (do_redirect(rc, a, error_r)) {
			case -1:
				return -1;
			case 1:
				fileinto(rc, plan, "INBOX", false, NULL, 0, hdr);
				break;
			}
			break;
		case SIEVE_ACT_NOTIFY:
			do_notify(rc, a);
			break;
		case SIEVE_ACT_REJECT:
			if (do_reject(rc, a, error_r) < 0)
				return -1;
			break;
		case SIEVE_ACT_EREJECT:
			free(plan->reject_text);
			plan->reject_text = xstrdup(a->text != NULL ? a->text :
			    "Rejected");
			break;
		case SIEVE_ACT_DISCARD:
			log_info(&sess->log, "to=<%s>, sieve: discard (line %u)",
			    rc->rcpt->address, a->line);
			break;
		case SIEVE_ACT_VACATION:
			lmtpd_vacation_sieve(sess, rc->rcpt, a);
			break;
		}
	}
	for (i = 0; i < res->dup_count; i++)
		if (sieve_user_dup_mark(rc->dir, res->dups[i].id,
		    res->dups[i].idlen, res->dups[i].period, time(NULL),
		    &err) < 0)
			log_warn(&sess->log, "sieve: duplicate record: %s", err);
	*keep_r = res->implicit_keep;
	if (res->implicit_keep) {
		*keep_flags_r = res->keep_flags;
		*keep_nflags_r = res->keep_flag_count;
	}
	return 0;
}

/*
 * lmtpd_sieve_plan - see lmtpd.h. A script that is missing or does not
 * compile is skipped (logged); when none ran, the default plan applies
 * (INBOX, or the detail mailbox), which is the implicit keep.
 */
int
lmtpd_sieve_plan(struct lmtpd_session *sess, const struct lmtpd_rcpt *rcpt,
    struct lmtpd_plan *plan, const char **error_r)
{
	struct sieve_result res[3];
	struct sieve_script *script;
	struct sieve_env env;
	struct run_ctx rc;
	struct str *dir = str_new(0, 0), *path = str_new(0, 0);
	struct str *edited_msg = NULL;
	const char *paths[3], *err;
	char **keep_flags = NULL;
	size_t keep_nflags = 0, i, nres = 0;
	bool keep = true, missing;
	int ret = 0, act;

	ls_load();
	memset(plan, 0, sizeof(*plan));
	memset(res, 0, sizeof(res));
	sieve_user_dir(lmtpd_settings.store_dir, rcpt->user, dir);
	act = sieve_user_active(str_c(dir), NULL, path, &err);
	if (act < 0)
		log_error(&sess->log, "to=<%s>, sieve: %s: %s (implicit keep)",
		    rcpt->address, str_c(dir), err);
	paths[0] = *ls.before != '\0' ? ls.before : NULL;
	paths[1] = act > 0 ? str_c(path) : NULL;
	paths[2] = *ls.after != '\0' ? ls.after : NULL;

	memset(&rc, 0, sizeof(rc));
	rc.sess = sess;
	rc.rcpt = rcpt;
	rc.store = rcpt->store;
	rc.dir = str_c(dir);
	memset(&env, 0, sizeof(env));
	env.msg = sess->msg.data;
	env.msg_size = (size_t)sess->msg.size;
	env.env_from = str_c(sess->sender);
	env.env_to = rcpt->address;
	env.user = rcpt->user;
	env.delimiters = lmtpd_settings.recipient_delimiter;
	env.domain = ls.hostname;
	env.host = ls.hostname;
	env.location = "MDA";
	env.phase = "during";
	env.zone_minutes = INT32_MIN;
	env.ctx = &rc;
	env.mailbox_exists = cb_mailbox_exists;
	env.duplicate_check = cb_duplicate;

	for (i = 0; i < 3 && keep; i++) {
		if (paths[i] == NULL)
			continue;
		script = script_open(sess, paths[i], i == 1 ? str_c(dir) : NULL,
		    &missing);
		if (script == NULL) {
			if (missing && i != 1)
				log_warn(&sess->log, "sieve script %s is missing",
				    paths[i]);
			continue;
		}
		if (run_one(&rc, script, &env, plan, &keep, &keep_flags,
		    &keep_nflags, &res[nres++], error_r) < 0) {
			ret = -1;
			break;
		}
		if (res[nres - 1].edited_header != NULL) {
			/*
			 * editheader: the next script runs on the edited
			 * message, as in Pigeonhole's script sequence, and
			 * its actions start from that header.
			 */
			size_t hlen = header_block_size(sess->msg.data,
			    (size_t)sess->msg.size);

			rc.base_hdr = res[nres - 1].edited_header;
			str_free(&edited_msg);
			edited_msg = str_new(str_len(rc.base_hdr) +
			    (size_t)sess->msg.size - hlen + 1, 0);
			str_append_str(edited_msg, rc.base_hdr);
			str_append(edited_msg, sess->msg.data + hlen,
			    (size_t)sess->msg.size - hlen);
			env.msg = str_c(edited_msg);
			env.msg_size = str_len(edited_msg);
		}
	}
	if (ret == 0 && nres == 0)
		ret = 1;	/* no script ran: the default plan */
	else if (ret == 0 && keep && plan->reject_text == NULL)
		plan_add(sess, plan, "INBOX", false, keep_flags, keep_nflags,
		    rc.base_hdr);
	if (ret < 0)
		lmtpd_plan_clear(plan);
	for (i = 0; i < nres; i++)
		sieve_result_clear(&res[i]);
	str_free(&edited_msg);
	str_free(&dir);
	str_free(&path);
	return ret;
}
