/* SPDX-License-Identifier: MIT */
/*
 * lmtpd_deliver - recipients and deliveries into the mail store
 *
 * DESCRIPTION
 *	RCPT TO (lmtpd_rcpt_check): the address must be "user", "Postmaster"
 *	or "user@domain" with domain in $mydestination (else 550 5.1.2).
 *	The local part is split at $recipient_delimiter into user and
 *	detail; the user part, lower-cased, must be in the user database
 *	(else 550 5.1.1; a lookup failure is 451 4.3.0). The user's storage
 *	quota (the database's quota field, else $quota_storage_limit; 0 =
 *	unlimited) is checked against the usage summed from the mailbox
 *	index headers plus the SIZE= of MAIL FROM: over it, 452 4.2.2 (or
 *	552 5.2.2 with quota_full_tempfail = no). A recipient whose delivery
 *	token is already in its store skips the quota check: it will be
 *	acknowledged as a duplicate, not stored.
 *
 *	End of content (lmtpd_deliver_all): for each accepted recipient, in
 *	order, exactly one reply:
 *	  1. token already committed for this user (a hand-off retried after
 *	     a crash or a lost reply): 250, the same success, nothing stored;
 *	  2. with lmtp_duplicate_window, a Message-ID already delivered to
 *	     this user inside the window: 250, nothing stored;
 *	  3. the special-use mailboxes are created if missing
 *	     (store_ensure_defaults: the user's first delivery; one list
 *	     commit, their files are made when first opened);
 *	  4. lmtpd_delivery_plan() says where; each action is one
 *	     store_append() with the message, the quota limit and the
 *	     ENVELOPE/BODY/BODYSTRUCTURE strings. Those are computed once per
 *	     message (imap_envelope_message), at the first append, and
 *	     shared by all recipients. An action whose header a Sieve
 *	     script edited (editheader) stores that header over the same
 *	     body, with the IMAP strings computed from the edited message.
 *	  5. 250 only after every append returned 0, i.e. the message file,
 *	     its directory entry and the log entry are fsync'd (store.h).
 *	Tokens: the LAST action of a plan carries the client's token, and
 *	earlier ones TOKEN/1, TOKEN/2 ..., so that "the client's token is
 *	committed" means the whole plan was done, and a retry after a crash
 *	in the middle of a plan repeats only the actions that are missing.
 *	Errors: over quota at the append as at RCPT; any other store error
 *	is 451 4.3.0 and logged with the store's reason.
 *
 * SECURITY
 *	User names are allow-listed (userdb_name_ok, store_user_ok) before
 *	they name a directory. Mailbox names from address details are
 *	checked by store_mailbox_name_ok and never become paths (the store
 *	names mailbox directories by number).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "config.h"
#include "header.h"
#include "imap_envelope.h"
#include "log.h"
#include "queue_id.h"
#include "store/store.h"
#include "str.h"
#include "user_quota.h"
#include "userdb.h"

#include "lmtpd.h"

#define LMTPD_CACHE_MAX		(16u * 1024 * 1024)
#define LMTPD_MSGID_MAX		998

static struct userdb *lmtpd_userdb;

/* lmtpd_deliver_deinit - see lmtpd.h */
void
lmtpd_deliver_deinit(void)
{
	userdb_close(&lmtpd_userdb);
}

/* lmtpd_rcpt_free - see lmtpd.h */
void
lmtpd_rcpt_free(struct lmtpd_rcpt *rcpt)
{
	free(rcpt->address);
	free(rcpt->user);
	free(rcpt->detail);
	free(rcpt->token);
	store_free(&rcpt->store);
	memset(rcpt, 0, sizeof(*rcpt));
}

/* lmtpd_local_domain - is domain in $mydestination? */
static bool
lmtpd_local_domain(const char *domain)
{
	size_t i;

	for (i = 0; i < lmtpd_settings.n_mydestination; i++)
		if (strcasecmp(lmtpd_settings.mydestination[i], domain) == 0)
			return true;
	return false;
}

/*
 * lmtpd_user_lookup - 1 and the quota if name is a user, 0 if not, -1 on
 * a user database failure, -2 on a quota_maps failure (with *error_r).
 * No database file means no users.
 */
static int
lmtpd_user_lookup(const char *name, uint64_t *quota_r, const char **error_r)
{
	struct userdb_user u;
	const char *source;
	int r;

	if (lmtpd_userdb == NULL) {
		lmtpd_userdb = userdb_open(lmtpd_settings.user_database, error_r);
		if (lmtpd_userdb == NULL)
			return errno == ENOENT ? 0 : -1;
	}
	memset(&u, 0, sizeof(u));
	r = userdb_lookup(lmtpd_userdb, name, &u, error_r);
	if (r > 0 && user_quota_get(conf(), name, u.quota_bytes, quota_r,
	    &source, error_r) < 0) {
		errno = 0;
		r = -2;
	}
	userdb_user_clear(&u);
	return r;
}

/* lmtpd_quota_reply - the over-quota reply for addr */
static void
lmtpd_quota_reply(struct lmtpd_session *sess, const char *addr)
{
	if (lmtpd_settings.quota_tempfail)
		lmtpd_reply(sess, 452, "4.2.2", "<%s> Mailbox full: quota exceeded",
		    addr);
	else
		lmtpd_reply(sess, 552, "5.2.2", "<%s> Mailbox full: quota exceeded",
		    addr);
}

/* lmtpd_note_queue_id - use the queue ID of the first token as the log ID */
static void
lmtpd_note_queue_id(struct lmtpd_session *sess, const char *token)
{
	const char *slash = strchr(token, '/');

	if (sess->queue_id[0] != '\0' || slash == NULL ||
	    !queue_id_ok(token, (size_t)(slash - token)))
		return;
	memcpy(sess->queue_id, token, (size_t)(slash - token));
	sess->queue_id[slash - token] = '\0';
	log_info(&sess->log, "queue_id=%s", sess->queue_id);
	sess->log.id = sess->queue_id;
}

/* lmtpd_rcpt_check - see lmtpd.h */
void
lmtpd_rcpt_check(struct lmtpd_session *sess, const struct address *addr,
    const char *token)
{
	struct lmtpd_rcpt r;
	struct store_append_result dup;
	struct store_quota usage;
	struct str *canon = str_new(0, 0), *shown = str_new(0, 0);
	const char *local = str_c(addr->local), *detail, *err = NULL;
	size_t ulen, dlen, i;
	int found;

	memset(&r, 0, sizeof(r));
	(void)address_canonical(addr, canon);
	mem_printable(shown, str_c(canon), str_len(canon), 300);
	if (token != NULL)
		lmtpd_note_queue_id(sess, token);
	if (str_len(addr->domain) > 0 && !lmtpd_local_domain(str_c(addr->domain))) {
		lmtpd_reply(sess, 550, "5.1.2", "<%s> Recipient address rejected: "
		    "domain is not local", str_c(shown));
		goto out;
	}
	(void)address_split_detail(local, str_len(addr->local),
	    lmtpd_settings.recipient_delimiter, &ulen, &detail, &dlen);
	r.user = xstrndup(local, ulen);
	for (i = 0; i < ulen; i++)
		if (r.user[i] >= 'A' && r.user[i] <= 'Z')
			r.user[i] = (char)(r.user[i] - 'A' + 'a');
	if (!userdb_name_ok(r.user) || !store_user_ok(r.user)) {
		lmtpd_reply(sess, 550, "5.1.1", "<%s> User unknown", str_c(shown));
		goto out;
	}
	found = lmtpd_user_lookup(r.user, &r.quota, &err);
	if (found == -2) {
		log_error(&sess->log, "quota of %s: %s", r.user, err);
		lmtpd_reply(sess, 451, "4.3.0", "<%s> Temporary quota lookup "
		    "failure", str_c(shown));
		goto out;
	}
	if (found < 0) {
		log_error(&sess->log, "user database %s: %s: %m",
		    lmtpd_settings.user_database, err != NULL ? err : "error");
		lmtpd_reply(sess, 451, "4.3.0", "<%s> Temporary user lookup "
		    "failure", str_c(shown));
		goto out;
	}
	if (found == 0) {
		lmtpd_reply(sess, 550, "5.1.1", "<%s> User unknown", str_c(shown));
		goto out;
	}
	r.store = store_open(lmtpd_settings.store_dir, r.user, &err);
	if (r.store == NULL) {
		log_error(&sess->log, "store of %s: %s", r.user, err);
		lmtpd_reply(sess, 451, "4.3.0", "<%s> Cannot open the mail store",
		    str_c(shown));
		goto out;
	}
	if (!lmtpd_settings.fsync)
		store_set_fsync(r.store, false);
	if (token != NULL &&
	    (found = store_token_lookup(r.store, token, &dup, &err)) != 0) {
		if (found < 0) {
			log_error(&sess->log, "token lookup for %s: %s", r.user, err);
			lmtpd_reply(sess, 451, "4.3.0", "<%s> Mail store error",
			    str_c(shown));
			goto out;
		}
		/* Delivered before: no quota check, it will not be stored. */
	} else if (r.quota != 0) {
		if (store_quota_get(r.store, &usage, &err) < 0) {
			log_error(&sess->log, "quota of %s: %s", r.user, err);
			lmtpd_reply(sess, 451, "4.3.0", "<%s> Mail store error",
			    str_c(shown));
			goto out;
		}
		if (usage.bytes >= r.quota || sess->size_hint > r.quota - usage.bytes) {
			lmtpd_quota_reply(sess, str_c(shown));
			goto out;
		}
	}
	/* printable: it appears in replies and logs */
	r.address = xstrdup(str_c(shown));
	if (dlen > 0)
		r.detail = xstrndup(detail, dlen);
	if (token != NULL)
		r.token = xstrdup(token);
	if (sess->nrcpt == sess->rcpt_cap) {
		sess->rcpt_cap = sess->rcpt_cap == 0 ? 8 : sess->rcpt_cap * 2;
		sess->rcpts = xreallocarray(sess->rcpts, sess->rcpt_cap,
		    sizeof(*sess->rcpts));
	}
	sess->rcpts[sess->nrcpt++] = r;
	memset(&r, 0, sizeof(r));
	lmtpd_reply(sess, 250, "2.1.5", "<%s> Ok", str_c(shown));
out:
	lmtpd_rcpt_free(&r);
	str_free(&canon);
	str_free(&shown);
}

/* lmtpd_fail_all - see lmtpd.h */
void
lmtpd_fail_all(struct lmtpd_session *sess, int code, const char *text)
{
	size_t i;

	for (i = 0; i < sess->nrcpt; i++)
		lmtpd_reply_raw(sess, code, text);
}

/*
 * lmtpd_imap_strings - ENVELOPE, BODY and BODYSTRUCTURE of data/size
 * into three new strings (the caller frees them); empty when they
 * cannot be computed (imapd then computes them itself).
 */
static void
lmtpd_imap_strings(struct lmtpd_session *sess, const char *data, size_t size,
    struct str **envelope_r, struct str **body_r, struct str **bs_r)
{
	*envelope_r = str_new(1024, LMTPD_CACHE_MAX);
	*body_r = str_new(256, LMTPD_CACHE_MAX);
	*bs_r = str_new(512, LMTPD_CACHE_MAX);
	if (imap_envelope_message(data, size, NULL, *envelope_r, *body_r,
	    *bs_r) < 0) {
		log_warn(&sess->log, "cannot compute ENVELOPE/BODYSTRUCTURE: %m");
		str_clear(*envelope_r);
		str_clear(*body_r);
		str_clear(*bs_r);
	}
}

/* lmtpd_msg_parse - the cached IMAP strings, once per message */
static void
lmtpd_msg_parse(struct lmtpd_session *sess)
{
	struct lmtpd_msg *msg = &sess->msg;

	if (msg->parsed)
		return;
	msg->parsed = true;
	lmtpd_imap_strings(sess, msg->data, (size_t)msg->size, &msg->envelope,
	    &msg->body, &msg->bodystructure);
}

/* lmtpd_msg_id - the unfolded Message-ID, "" if none */
static const char *
lmtpd_msg_id(struct lmtpd_session *sess)
{
	struct lmtpd_msg *msg = &sess->msg;
	struct header_field f;
	size_t hlen;

	if (msg->msgid_done)
		return str_c(msg->message_id);
	msg->msgid_done = true;
	msg->message_id = str_new(64, LMTPD_MSGID_MAX);
	hlen = header_block_size(msg->data, (size_t)msg->size);
	if (header_find(msg->data, hlen, "Message-ID", &f) &&
	    header_unfold(f.value, f.value_len, msg->message_id) < 0)
		str_clear(msg->message_id);
	return str_c(msg->message_id);
}

/* lmtpd_store_failed - log and answer a failed append */
static void
lmtpd_store_failed(struct lmtpd_session *sess, const struct lmtpd_rcpt *r,
    const char *mailbox, const char *err)
{
	if (store_error(r->store) == STORE_ERR_QUOTA) {
		log_info(&sess->log, "to=<%s>, status=%s (quota exceeded)",
		    r->address, lmtpd_settings.quota_tempfail ? "deferred" :
		    "bounced");
		lmtpd_quota_reply(sess, r->address);
		return;
	}
	log_error(&sess->log, "to=<%s>, status=deferred (cannot store in %s: %s)",
	    r->address, mailbox, err);
	lmtpd_reply(sess, 451, "4.3.0", "<%s> Error: cannot store the message",
	    r->address);
}

/* lmtpd_deliver_one - one recipient, one reply (see DESCRIPTION) */
static void
lmtpd_deliver_one(struct lmtpd_session *sess, struct lmtpd_rcpt *r)
{
	struct lmtpd_msg *msg = &sess->msg;
	struct store_append_req req;
	struct store_append_result res;
	struct lmtpd_plan plan;
	struct str *tok = str_new(0, 0), *mbox = str_new(0, 0);
	const char *err = NULL, *msgid = NULL;
	size_t i;
	int found;

	/* 1. a hand-off that was done before */
	if (r->token != NULL) {
		found = store_token_lookup(r->store, r->token, &res, &err);
		if (found < 0) {
			lmtpd_store_failed(sess, r, "the token log", err);
			goto out;
		}
		if (found > 0) {
			mem_printable(mbox, res.mailbox, strlen(res.mailbox), 200);
			log_info(&sess->log, "to=<%s>, mailbox=%s, uid=%u, "
			    "status=sent (already delivered, token %s)",
			    r->address, str_c(mbox), res.uid, r->token);
			lmtpd_reply(sess, 250, "2.0.0", "<%s> Ok: delivered as "
			    "UID %u (already)", r->address, res.uid);
			goto out;
		}
	}
	/* 2. Message-ID duplicates */
	if (lmtpd_settings.dup_window != 0 && *(msgid = lmtpd_msg_id(sess)) != '\0') {
		found = lmtpd_dup_check(r->user, msgid, &err);
		if (found < 0)
			log_warn(&sess->log, "duplicate check for %s: %s", r->user, err);
		if (found > 0) {
			log_info(&sess->log, "to=<%s>, status=sent (duplicate "
			    "Message-ID, discarded)", r->address);
			lmtpd_reply(sess, 250, "2.0.0", "<%s> Ok: duplicate "
			    "discarded", r->address);
			goto out;
		}
	}
	/* 3. the user's standard mailboxes */
	if (store_ensure_defaults(r->store, &err) < 0) {
		lmtpd_store_failed(sess, r, "the mailbox list", err);
		goto out;
	}
	/* 4. the plan */
	memset(&plan, 0, sizeof(plan));
	if (lmtpd_delivery_plan(sess, r, &plan, &err) < 0) {
		log_error(&sess->log, "to=<%s>, status=deferred (%s)", r->address,
		    err);
		lmtpd_reply(sess, 451, "4.3.0", "<%s> Error: %s", r->address, err);
		goto out;
	}
	if (plan.reject_text != NULL) {
		str_clear(mbox);
		mem_printable(mbox, plan.reject_text, strlen(plan.reject_text), 200);
		log_info(&sess->log, "to=<%s>, status=bounced (sieve ereject: %s)",
		    r->address, str_c(mbox));
		lmtpd_reply(sess, 550, "5.7.1", "<%s> %s", r->address, str_c(mbox));
		lmtpd_plan_clear(&plan);
		goto out;
	}
	if (plan.count > 0)
		lmtpd_msg_parse(sess);
	memset(&res, 0, sizeof(res));
	for (i = 0; i < plan.count; i++) {
		struct lmtpd_action *a = &plan.actions[i];
		struct str *edited = NULL, *e_env = NULL, *e_body = NULL;
		struct str *e_bs = NULL;

		memset(&req, 0, sizeof(req));
		req.mailbox = a->mailbox;
		req.data = msg->data;
		req.size = (size_t)msg->size;
		req.envelope = str_c(msg->envelope);
		req.envelope_len = str_len(msg->envelope);
		req.body = str_c(msg->body);
		req.body_len = str_len(msg->body);
		req.bodystructure = str_c(msg->bodystructure);
		req.bodystructure_len = str_len(msg->bodystructure);
		if (a->header != NULL) {
			/*
			 * Sieve editheader: this copy is stored with the
			 * edited header over the same body, and its IMAP
			 * strings are computed from what is stored.
			 * XXX one copy of the message per edited action.
			 */
			size_t hlen = header_block_size(msg->data,
			    (size_t)msg->size);

			edited = str_new(str_len(a->header) +
			    (size_t)msg->size - hlen + 1, 0);
			str_append_str(edited, a->header);
			str_append(edited, msg->data + hlen,
			    (size_t)msg->size - hlen);
			req.data = str_c(edited);
			req.size = str_len(edited);
			lmtpd_imap_strings(sess, req.data, req.size, &e_env,
			    &e_body, &e_bs);
			req.envelope = str_c(e_env);
			req.envelope_len = str_len(e_env);
			req.body = str_c(e_body);
			req.body_len = str_len(e_body);
			req.bodystructure = str_c(e_bs);
			req.bodystructure_len = str_len(e_bs);
		}
		req.fd = -1;
		req.flags = a->flags;
		req.keywords = (const char *const *)a->keywords;
		if (r->token != NULL) {
			str_clear(tok);
			if (i + 1 < plan.count)
				str_printf(tok, "%s/%zu", r->token, i + 1);
			else
				str_append_cstr(tok, r->token);
			req.token = str_c(tok);
		}
		req.quota_bytes = r->quota;
		found = store_append(r->store, &req, &res, &err);
		if (found < 0 && a->fallback_inbox &&
		    store_error(r->store) == STORE_ERR_NOTFOUND) {
			req.mailbox = "INBOX";
			found = store_append(r->store, &req, &res, &err);
		}
		str_free(&edited);
		str_free(&e_env);
		str_free(&e_body);
		str_free(&e_bs);
		if (found < 0) {
			lmtpd_store_failed(sess, r, req.mailbox, err);
			lmtpd_plan_clear(&plan);
			goto out;
		}
		str_clear(mbox);
		mem_printable(mbox, res.mailbox, strlen(res.mailbox), 200);
		log_info(&sess->log, "to=<%s>, mailbox=%s, uid=%u, size=%llu, "
		    "status=sent (%s)", r->address, str_c(mbox), res.uid,
		    (unsigned long long)req.size, res.duplicate ?
		    "already delivered" : "delivered");
	}
	if (plan.count == 0)
		log_info(&sess->log, "to=<%s>, status=sent (discarded)", r->address);
	lmtpd_plan_clear(&plan);
	if (msgid != NULL && *msgid != '\0' &&
	    lmtpd_dup_mark(r->user, msgid, &err) < 0)
		log_warn(&sess->log, "duplicate record for %s: %s", r->user, err);
	lmtpd_reply(sess, 250, "2.0.0", "<%s> Ok: delivered as UID %u",
	    r->address, res.uid);
out:
	str_free(&tok);
	str_free(&mbox);
}

/* lmtpd_deliver_all - see lmtpd.h */
void
lmtpd_deliver_all(struct lmtpd_session *sess)
{
	struct str *t = str_new(0, 0);
	size_t i;

	mem_printable(t, str_c(sess->sender), str_len(sess->sender), 300);
	for (i = 0; i < sess->nrcpt; i++) {
		lmtpd_deliver_one(sess, &sess->rcpts[i]);
		/*
		 * A store keeps its user lock file open once locked: free it
		 * now, so a transaction with many recipients does not hold
		 * one descriptor per recipient.
		 */
		store_free(&sess->rcpts[i].store);
	}
	log_info(&sess->log, "from=<%s>, size=%llu, nrcpt=%zu (done)",
	    str_c(t), (unsigned long long)sess->msg.size, sess->nrcpt);
	str_free(&t);
}
