/* SPDX-License-Identifier: MIT */
/*
 * vacationd_reply - the RFC 3834 / RFC 5230 rules, the reply, its injection
 *
 * DESCRIPTION
 *	vacationd_reply() answers one (message, recipient, parameters). In
 *	order, no reply is sent:
 *	  - to the null sender;
 *	  - to a sender whose local part is MAILER-DAEMON, LISTSERV,
 *	    majordomo, owner-* or *-request (RFC 5230 4.6), or who is one
 *	    of the user's own addresses;
 *	  - for a message with Auto-Submitted other than "no" (RFC 3834
 *	    5), with Precedence bulk, list or junk, with a List-Id or any
 *	    other List-* field (RFC 2369, 2919), or marked as spam
 *	    (X-Spam-Flag: YES, X-Spam-Status: Yes..., X-Spam: yes);
 *	  - when no To, Cc, Bcc, Resent-To, Resent-Cc or Resent-Bcc field
 *	    names one of the user's addresses: the recipient, the user at
 *	    each $mydestination domain, the departmental alias of the user
 *	    database and the request's :addresses (an address extension,
 *	    user+detail, is ignored in the comparison; RFC 5230 4.5);
 *	  - when this sender was answered for the same handle less than
 *	    the period ago (vacationd_db.c).
 *	Otherwise the reply goes through cleanup ($vacationd_cleanup_
 *	service) with the null envelope sender to the envelope sender:
 *
 *	    From: <recipient>                 (or :from when it parses
 *	                                       as one mailbox)
 *	    To: <sender>
 *	    Subject: Auto: ORIGINAL           (or :subject, RFC 2047
 *	                                       encoded when not ASCII)
 *	    Date: ...
 *	    Message-ID: <...@$myhostname>
 *	    In-Reply-To: ORIGINAL MESSAGE-ID  (when it had one)
 *	    References: ORIGINAL REFERENCES MESSAGE-ID
 *	    Auto-Submitted: auto-replied
 *	    MIME-Version: 1.0
 *	    Content-Type: text/plain; charset=utf-8  (with :mime: the
 *	    Content-Transfer-Encoding: 7bit|8bit      reason's own entity)
 *
 *	and the sender is marked only after cleanup committed the reply.
 *	A failure to inject, or to read or write the database, is a
 *	temporary failure (451) so lmtpd logs it; lmtpd never retries a
 *	vacation request (the delivery itself succeeded), so a lost reply
 *	is preferred to a duplicate one.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "cleanup_client.h"
#include "header.h"
#include "queue_file.h"
#include "str.h"
#include "userdb.h"
#include "vacation.h"

#include "vacationd.h"

#define SUBJECT_MAX	900

static struct userdb *userdb;
static unsigned msgid_counter;

/* vacationd_reply_deinit - close the user database */
void
vacationd_reply_deinit(void)
{
	userdb_close(&userdb);
}

/* norm - "local@domain" lower-cased, without the address extension */
static void
norm(const char *local, size_t llen, const char *domain, struct str *out)
{
	const char *detail;
	size_t ulen, dlen, i;

	str_clear(out);
	(void)address_split_detail(local, llen, vacationd_settings.delimiter,
	    &ulen, &detail, &dlen);
	for (i = 0; i < ulen; i++)
		str_append_c(out, (char)tolower((unsigned char)local[i]));
	str_append_c(out, '@');
	for (i = 0; domain[i] != '\0'; i++)
		str_append_c(out, (char)tolower((unsigned char)domain[i]));
}

/* mine_add - add the normalised form of a mailbox string to the set */
static void
mine_add(struct str ***set, size_t *n, const char *mailbox)
{
	struct address *a = address_new();
	struct address_list *l;
	struct str *s;
	const char *err;

	if (address_parse_mailbox(mailbox, strlen(mailbox), ADDRESS_SMTPUTF8,
	    a) != ADDRESS_OK) {
		/* maybe "Name <addr>" */
		l = address_list_new();
		if (address_list_parse(mailbox, strlen(mailbox),
		    ADDRESS_LIST_UTF8, 1, l, &err) < 0 || l->count != 1) {
			address_list_free(&l);
			address_free(&a);
			return;
		}
		address_copy(a, l->items[0].addr);
		address_list_free(&l);
	}
	s = str_new(0, 0);
	norm(str_c(a->local), str_len(a->local), str_c(a->domain), s);
	*set = xreallocarray(*set, *n + 1, sizeof(**set));
	(*set)[(*n)++] = s;
	address_free(&a);
}

static bool
in_set(struct str *const *set, size_t n, const struct str *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (str_len(set[i]) == str_len(s) &&
		    memcmp(str_c(set[i]), str_c(s), str_len(s)) == 0)
			return true;
	return false;
}

/* addressed_to_me - does an address field of the header name one of set? */
static bool
addressed_to_me(const char *head, size_t hlen, struct str *const *set,
    size_t n)
{
	static const char *const fields[] = { "To", "Cc", "Bcc", "Resent-To",
	    "Resent-Cc", "Resent-Bcc", NULL };
	struct header_iter it;
	struct header_field f;
	struct address_list *l = address_list_new();
	struct str *s = str_new(0, 0);
	const char *err;
	bool found = false;
	size_t i, k;

	header_iter_init(&it, head, hlen);
	while (!found && header_iter_next(&it, &f)) {
		for (k = 0; fields[k] != NULL; k++)
			if (header_name_is(&f, fields[k]))
				break;
		if (fields[k] == NULL)
			continue;
		address_list_clear(l);
		(void)address_list_parse(f.value, f.value_len,
		    ADDRESS_LIST_SKIP_BAD | ADDRESS_LIST_UTF8, 0, l, &err);
		for (i = 0; i < l->count && !found; i++) {
			const struct address *a = l->items[i].addr;

			norm(str_c(a->local), str_len(a->local),
			    str_c(a->domain), s);
			found = in_set(set, n, s);
		}
	}
	address_list_free(&l);
	str_free(&s);
	return found;
}

/* field_value - the first field's unfolded value into out; false if none */
static bool
field_value(const char *head, size_t hlen, const char *name, struct str *out)
{
	struct header_field f;

	str_clear(out);
	if (!header_find(head, hlen, name, &f))
		return false;
	(void)header_unfold(f.value, f.value_len, out);
	return true;
}

/* first_word - the value's first token (up to WSP, ';' or '('), lower-cased */
static void
first_word(const struct str *v, struct str *out)
{
	const char *p = str_c(v);
	size_t i;

	str_clear(out);
	for (i = 0; p[i] != '\0' && p[i] != ' ' && p[i] != '\t' &&
	    p[i] != ';' && p[i] != '('; i++)
		str_append_c(out, (char)tolower((unsigned char)p[i]));
}

/* why_not - the rule that forbids a reply (static text), or NULL */
static const char *
why_not(const char *sender, const char *head, size_t hlen)
{
	struct address *a = address_new();
	struct str *v = str_new(0, 0), *w = str_new(0, 0);
	struct header_iter it;
	struct header_field f;
	const char *why = NULL, *local;
	size_t llen;

	if (*sender == '\0') {
		why = "null sender";
		goto out;
	}
	if (address_parse_mailbox(sender, strlen(sender),
	    ADDRESS_SMTPUTF8 | ADDRESS_ALLOW_NO_DOMAIN, a) != ADDRESS_OK) {
		why = "unusable sender address";
		goto out;
	}
	local = str_c(a->local);
	llen = str_len(a->local);
	if (strcasecmp(local, "MAILER-DAEMON") == 0 ||
	    strcasecmp(local, "LISTSERV") == 0 ||
	    strcasecmp(local, "majordomo") == 0 ||
	    strncasecmp(local, "owner-", 6) == 0 ||
	    (llen >= 8 && strcasecmp(local + llen - 8, "-request") == 0)) {
		why = "sender is a mailer or list address";
		goto out;
	}
	if (field_value(head, hlen, "Auto-Submitted", v)) {
		first_word(v, w);
		if (!str_equals_cstr(w, "no")) {
			why = "Auto-Submitted message";
			goto out;
		}
	}
	if (field_value(head, hlen, "Precedence", v)) {
		first_word(v, w);
		if (str_equals_cstr(w, "bulk") || str_equals_cstr(w, "list") ||
		    str_equals_cstr(w, "junk")) {
			why = "Precedence bulk, list or junk";
			goto out;
		}
	}
	header_iter_init(&it, head, hlen);
	while (header_iter_next(&it, &f))
		if (f.name_len > 5 && strncasecmp(f.name, "List-", 5) == 0) {
			why = "mailing list message";
			goto out;
		}
	if (field_value(head, hlen, "X-Spam-Flag", v) ||
	    field_value(head, hlen, "X-Spam", v)) {
		first_word(v, w);
		if (str_equals_cstr(w, "yes") || str_equals_cstr(w, "true")) {
			why = "marked as spam";
			goto out;
		}
	}
	if (field_value(head, hlen, "X-Spam-Status", v)) {
		first_word(v, w);
		if (strncmp(str_c(w), "yes", 3) == 0) {
			why = "marked as spam";
			goto out;
		}
	}
out:
	address_free(&a);
	str_free(&v);
	str_free(&w);
	return why;
}

/* is_ascii - no octet >= 0x80 */
static bool
is_ascii(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return false;
	return true;
}

/* b64 - RFC 2045 base64 of p[0..n) appended to out */
static void
b64(const unsigned char *p, size_t n, struct str *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		str_append_c(out, t[v >> 18]);
		str_append_c(out, t[(v >> 12) & 63]);
		str_append_c(out, t[(v >> 6) & 63]);
		str_append_c(out, t[v & 63]);
	}
	if (n - i == 1) {
		v = (unsigned)p[i] << 16;
		str_append_c(out, t[v >> 18]);
		str_append_c(out, t[(v >> 12) & 63]);
		str_append_cstr(out, "==");
	} else if (n - i == 2) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		str_append_c(out, t[v >> 18]);
		str_append_c(out, t[(v >> 12) & 63]);
		str_append_c(out, t[(v >> 6) & 63]);
		str_append_c(out, '=');
	}
}

/*
 * encode_subject - a UTF-8 text as a header value: as is when ASCII,
 * else RFC 2047 B encoded words of at most 45 octets of text each (cut
 * at character boundaries), folded between words.
 */
static void
encode_subject(const char *s, struct str *out)
{
	size_t n = strlen(s), i = 0, k;
	const unsigned char *u = (const unsigned char *)s;

	if (is_ascii(s, n)) {
		str_append_cstr(out, s);
		return;
	}
	while (i < n) {
		k = n - i > 45 ? 45 : n - i;
		while (i + k < n && k > 0 && (u[i + k] & 0xc0) == 0x80)
			k--;	/* do not split a character */
		if (k == 0)
			k = n - i > 45 ? 45 : n - i;
		if (i > 0)
			str_append_cstr(out, "\r\n ");
		str_append_cstr(out, "=?utf-8?B?");
		b64(u + i, k, out);
		str_append_cstr(out, "?=");
		i += k;
	}
}

/* crlf - text with every line end made CRLF, ending in one */
static void
crlf(const char *p, size_t n, struct str *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			str_append_cstr(out, "\r\n");
			if (i + 1 < n && p[i + 1] == '\n')
				i++;
		} else if (p[i] == '\n') {
			str_append_cstr(out, "\r\n");
		} else {
			str_append_c(out, p[i]);
		}
	}
	if (str_len(out) < 2 || memcmp(str_c(out) + str_len(out) - 2,
	    "\r\n", 2) != 0)
		str_append_cstr(out, "\r\n");
}

/* compose - the reply message into m */
static void
compose(const char *sender, const char *rcpt,
    const struct vacation_params *p, const char *head, size_t hlen,
    time_t now, const struct log_ctx *log, struct str *m)
{
	struct str *v = str_new(0, 0), *msgid = str_new(0, 0);
	struct str *body = str_new(0, 0);
	struct address_list *l;
	const char *err;
	char date[64];
	struct tm tm;
	size_t cut;

	/* From: :from when it is one mailbox, else the recipient */
	if (p->from != NULL) {
		l = address_list_new();
		if (address_list_parse(p->from, strlen(p->from),
		    ADDRESS_LIST_UTF8, 1, l, &err) == 0 && l->count == 1 &&
		    strpbrk(p->from, "\r\n") == NULL)
			str_printf(m, "From: %s\r\n", p->from);
		else
			log_warn(log, "vacation :from is not one address: "
			    "using <%s>", rcpt);
		address_list_free(&l);
	}
	if (str_len(m) == 0)
		str_printf(m, "From: <%s>\r\n", rcpt);
	str_printf(m, "To: <%s>\r\n", sender);

	str_append_cstr(m, "Subject: ");
	if (p->subject != NULL && strpbrk(p->subject, "\r\n") == NULL)
		encode_subject(p->subject, m);
	else {
		(void)field_value(head, hlen, "Subject", v);
		if (str_len(v) > SUBJECT_MAX) {
			cut = SUBJECT_MAX;
			while (cut > 0 &&
			    ((unsigned char)str_c(v)[cut] & 0xc0) == 0x80)
				cut--;
			str_truncate(v, cut);
		}
		str_append_cstr(m, "Auto: ");
		str_append_str(m, v);
	}
	str_append_cstr(m, "\r\n");

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	str_printf(m, "Date: %s\r\n", date);
	str_printf(m, "Message-ID: <%lld.%ld.%u.vacation@%s>\r\n",
	    (long long)now, (long)getpid(), ++msgid_counter,
	    vacationd_settings.myhostname);
	if (field_value(head, hlen, "Message-ID", msgid) &&
	    str_len(msgid) > 0) {
		str_printf(m, "In-Reply-To: %s\r\n", str_c(msgid));
		str_append_cstr(m, "References: ");
		if (field_value(head, hlen, "References", v) &&
		    str_len(v) > 0 && str_len(v) < 8000) {
			str_append_str(m, v);
			str_append_cstr(m, "\r\n ");
		}
		str_append_str(m, msgid);
		str_append_cstr(m, "\r\n");
	}
	str_append_cstr(m, "Auto-Submitted: auto-replied\r\n");
	str_append_cstr(m, "MIME-Version: 1.0\r\n");
	crlf(p->reason, strlen(p->reason), body);
	if (p->mime) {
		/* the reason is an entity: its header continues ours */
		if (str_len(body) >= 2 && memcmp(str_c(body), "\r\n", 2) == 0)
			str_append_cstr(m, "Content-Type: text/plain; "
			    "charset=utf-8\r\n");
		str_append_str(m, body);
	} else {
		str_printf(m, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: %s\r\n\r\n",
		    is_ascii(str_c(body), str_len(body)) ? "7bit" : "8bit");
		str_append_str(m, body);
	}
	str_free(&v);
	str_free(&msgid);
	str_free(&body);
}

/* inject - the reply through cleanup; 0 with the queue ID, or -1 */
static int
inject(const char *to, const struct str *m, char id_r[QUEUE_ID_SIZE],
    struct str *why)
{
	struct cleanup_client *c;
	struct queue_envelope env;
	struct queue_rcpt r;
	const char *err = NULL;

	c = cleanup_client_open(vacationd_settings.cleanup,
	    CLEANUP_FLAG_BOUNCE, &err);
	if (c == NULL) {
		str_printf(why, "cannot connect to cleanup: %s", err);
		return -1;
	}
	pst_strlcpy(id_r, cleanup_client_id(c), QUEUE_ID_SIZE);
	memset(&env, 0, sizeof(env));
	gettimeofday(&env.arrival, NULL);
	env.sender = "";
	env.protocol = "local";
	memset(&r, 0, sizeof(r));
	r.address = to;
	if (cleanup_client_envelope(c, &env, &err) < 0 ||
	    cleanup_client_rcpt(c, &r, &err) < 0 ||
	    cleanup_client_content(c, str_c(m), str_len(m), &err) < 0) {
		cleanup_client_abort(&c);
		str_printf(why, "%s", err != NULL ? err : "cleanup failed");
		return -1;
	}
	if (cleanup_client_finish(&c, why) != CLEANUP_OK) {
		if (str_len(why) == 0)
			str_append_cstr(why, "cleanup refused the reply");
		return -1;
	}
	return 0;
}

/* vacationd_reply - see vacationd.h */
int
vacationd_reply(const struct log_ctx *log, const char *sender,
    const char *rcpt, const struct vacation_params *p, const char *head,
    size_t hlen, struct str *text)
{
	struct userdb_user u;
	struct str **mine = NULL, *key = str_new(0, 0), *m = str_new(0, 0);
	struct str *why = str_new(0, 0), *snorm = str_new(0, 0);
	struct vacationd_db *db = NULL;
	struct address *a = address_new();
	const char *no, *err = NULL;
	char qid[QUEUE_ID_SIZE];
	time_t now = vacation_now();
	size_t nmine = 0, i;
	int code = 250, seen;

	str_clear(text);
	if (!userdb_name_ok(p->user)) {
		str_append_cstr(text, "5.1.1 bad user name");
		code = 550;
		goto out;
	}
	if ((no = why_not(sender, head, hlen)) != NULL) {
		log_info(log, "user=%s, from=<%s>: no vacation reply: %s",
		    p->user, sender, no);
		str_printf(text, "2.0.0 no vacation reply: %s", no);
		goto out;
	}
	/* the user's addresses */
	mine_add(&mine, &nmine, rcpt);
	for (i = 0; i < vacationd_settings.n_mydestination; i++) {
		str_printf(why, "%s@%s", p->user,
		    vacationd_settings.mydestination[i]);
		mine_add(&mine, &nmine, str_c(why));
	}
	str_clear(why);
	for (i = 0; i < p->naddresses; i++)
		mine_add(&mine, &nmine, p->addresses[i]);
	if (userdb == NULL)
		userdb = userdb_open(vacationd_settings.user_database, &err);
	if (userdb != NULL && userdb_lookup(userdb, p->user, &u, &err) > 0) {
		if (u.dept_alias != NULL)
			mine_add(&mine, &nmine, u.dept_alias);
		userdb_user_clear(&u);
	}
	if (address_parse_mailbox(sender, strlen(sender), ADDRESS_SMTPUTF8 |
	    ADDRESS_ALLOW_NO_DOMAIN, a) == ADDRESS_OK) {
		norm(str_c(a->local), str_len(a->local), str_c(a->domain),
		    snorm);
		if (in_set(mine, nmine, snorm)) {
			log_info(log, "user=%s, from=<%s>: no vacation reply: "
			    "sender is the user", p->user, sender);
			str_append_cstr(text, "2.0.0 no vacation reply: "
			    "sender is the user");
			goto out;
		}
	}
	if (!addressed_to_me(head, hlen, mine, nmine)) {
		log_info(log, "user=%s, from=<%s>: no vacation reply: not "
		    "addressed to the user in To/Cc", p->user, sender);
		str_append_cstr(text, "2.0.0 no vacation reply: not addressed "
		    "to the user");
		goto out;
	}
	/* once per sender per handle per period */
	str_append_cstr(key, p->handle != NULL ? p->handle : "");
	str_append_c(key, '\0');
	for (i = 0; sender[i] != '\0'; i++)
		str_append_c(key, (char)tolower((unsigned char)sender[i]));
	if ((db = vacationd_db_open(p->user, &err)) == NULL ||
	    (seen = vacationd_db_seen(db, str_c(key), str_len(key), now,
	    &err)) < 0) {
		log_error(log, "user=%s: replied database: %s", p->user, err);
		str_append_cstr(text, "4.3.0 replied database unavailable");
		code = 451;
		goto out;
	}
	if (seen) {
		log_info(log, "user=%s, from=<%s>: no vacation reply: already "
		    "answered", p->user, sender);
		str_append_cstr(text, "2.0.0 no vacation reply: already "
		    "answered");
		goto out;
	}
	compose(sender, rcpt, p, head, hlen, now, log, m);
	if (inject(sender, m, qid, why) < 0) {
		log_error(log, "user=%s, from=<%s>: vacation reply failed: %s",
		    p->user, sender, str_c(why));
		str_append_cstr(text, "4.3.0 cannot inject the reply");
		code = 451;
		goto out;
	}
	if (vacationd_db_mark(db, str_c(key), str_len(key), now, p->period,
	    &err) < 0)
		log_error(log, "user=%s: replied database: %s (the sender may "
		    "get another reply)", p->user, err);
	log_info(log, "user=%s, from=<%s>: vacation reply sent as %s",
	    p->user, sender, qid);
	str_printf(text, "2.0.0 vacation reply sent as %s", qid);
out:
	vacationd_db_close(&db);
	for (i = 0; i < nmine; i++)
		str_free(&mine[i]);
	free(mine);
	str_free(&key);
	str_free(&m);
	str_free(&why);
	str_free(&snorm);
	address_free(&a);
	return code;
}
