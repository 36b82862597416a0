/* SPDX-License-Identifier: MIT */
/*
 * listmgr_request - mail commands, confirmations and moderation
 *
 * DESCRIPTION
 *	NAME-request takes commands, one per line, from the Subject (with
 *	"Re:"/"Fwd:" prefixes dropped) and then from the first text part of
 *	the body: subscribe [ADDR], unsubscribe [ADDR], help, who,
 *	confirm TOKEN, and for moderators approve|reject|discard [ID]. Quoted
 *	lines ('>') are skipped; "end" or a signature line ("--") stops;
 *	at most LISTMGR_CMD_LINES lines are read and more than
 *	LISTMGR_CMD_JUNK lines that are no command stop the reading (prose).
 *	The results go back to the sender in one reply, unless the request
 *	looks automatic (null sender, Auto-Submitted, Precedence bulk/list/
 *	junk) or comes from one of our own addresses: no mail loops.
 *
 *	Double opt-in: a subscribe or unsubscribe (unless subscribe_policy
 *	is open for subscribing) makes a random token (24 hex digits from
 *	getrandom) kept in pending/TOKEN with the operation, address and
 *	time, and mails it to the address concerned (never to the
 *	requester), from NAME-confirm+TOKEN@domain. Replying to that mail,
 *	or sending "confirm TOKEN", completes it once; tokens expire after
 *	confirm_lifetime. A forged or expired token gets an error text and
 *	changes nothing; a token is checked against the allow-list before
 *	it becomes a path.
 *
 *	Directory lists (list-mgr(8)): with membership=ldap no subscribe or
 *	unsubscribe is carried out, and with both no unsubscribe of a group
 *	member (list_ldap_is_member, the lookup distribution uses); the
 *	reply explains that the members are a directory group's and whom
 *	to ask (ldap_contact, else NAME-owner; or ldap_leave_text).
 *
 *	Moderation: a held post is kept as held/ID.msg with held/ID.info
 *	(sender, author, reason, time); every moderator (moderators, else
 *	owners) gets a notice from NAME-request with Subject "... approve
 *	ID". Replying approves; a reply whose body says "reject [reason]"
 *	or "discard" does that instead. The ID is a secret random token: who
 *	knows it may moderate (as with Mailman's confirmation cookies), and
 *	`postern list approve` sends the same command.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "header.h"
#include "list_ldap.h"
#include "list_store.h"
#include "log.h"
#include "mime.h"
#include "safe_file.h"
#include "str.h"

#include "listmgr.h"

#define LISTMGR_CMD_LINES	50
#define LISTMGR_CMD_JUNK	5
#define LISTMGR_CMD_MAX		10

struct listmgr_req {
	struct list *l;
	const struct listmgr_msg *msg;
	struct str *requester;	/* From: or envelope sender, lower case */
	struct str *result;	/* reply body */
	struct str *subject_id;	/* a 24-hex token from the Subject, or "" */
	bool did_moderate;
};

/* listmgr_own_address - one of this list's addresses (no replies to it) */
static bool
listmgr_own_address(const struct list *l, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t nl = strlen(l->name);

	return at != NULL && strcasecmp(at + 1, list_get(l, "domain")) == 0 &&
	    strncasecmp(addr, l->name, nl) == 0 &&
	    (addr[nl] == '@' || addr[nl] == '-');
}

/* listmgr_automatic - a message we must not answer */
static bool
listmgr_automatic(const struct listmgr_msg *msg)
{
	struct str *v = str_new(0, 0);
	bool autom = msg->sender[0] == '\0';

	if (listmgr_header_value(msg->data, msg->hdr_len, "Auto-Submitted", v) &&
	    strncasecmp(str_c(v), "no", 2) != 0)
		autom = true;
	if (listmgr_header_value(msg->data, msg->hdr_len, "Precedence", v) &&
	    (strcasecmp(str_c(v), "bulk") == 0 || strcasecmp(str_c(v), "list") == 0 ||
	    strcasecmp(str_c(v), "junk") == 0))
		autom = true;
	str_free(&v);
	return autom;
}

/* listmgr_pending_new - make a token for op on addr; mail it to addr */
static int
listmgr_pending_new(struct list *l, const char *op, const char *addr,
    struct log_ctx *log)
{
	struct str *tok = str_new(0, 0), *path = str_new(0, 0);
	struct str *rel = str_new(0, 0), *data = str_new(0, 0);
	struct str *from = str_new(0, 0), *hdr = str_new(0, 0);
	struct str *body = str_new(0, 0), *subj = str_new(0, 0);
	struct str *req = str_new(0, 0);
	int rc;

	list_random_token(tok);
	str_printf(rel, "pending/%s", str_c(tok));
	str_printf(data, "%s %s %lld\n", op, addr, (long long)time(NULL));
	rc = safe_file_replace(list_path(l, str_c(rel), path), str_c(data),
	    str_len(data), 0640);
	if (rc < 0) {
		log_error(log, "list=%s: cannot write %s: %m", l->name,
		    str_c(path));
		goto out;
	}
	str_printf(from, "%s-confirm+%s@%s", l->name, str_c(tok),
	    list_get(l, "domain"));
	list_address(l, "request", req);
	str_printf(hdr, "Reply-To: %s\r\n", str_c(from));
	str_printf(subj, "confirm %s", str_c(tok));
	str_printf(body, "Someone (perhaps you) asked to %s %s %s the list\n"
	    "%s@%s.\n\nTo confirm, reply to this message, or send a message "
	    "to\n%s with the line\n\n    confirm %s\n\nIf you did not ask for "
	    "this, ignore this message: nothing\nwill change.\n", op, addr,
	    strcmp(op, "subscribe") == 0 ? "to" : "from", l->name,
	    list_get(l, "domain"), str_c(req), str_c(tok));
	rc = listmgr_notice(l, str_c(from), addr, str_c(subj), str_c(hdr),
	    str_c(body), log);
	if (rc == 0)
		log_info(log, "list=%s: %s <%s> waits for confirmation",
		    l->name, op, addr);
out:
	str_free(&tok);
	str_free(&path);
	str_free(&rel);
	str_free(&data);
	str_free(&from);
	str_free(&hdr);
	str_free(&body);
	str_free(&subj);
	str_free(&req);
	return rc;
}

/* listmgr_welcome - tell addr it joined or left */
static void
listmgr_welcome(struct list *l, const char *addr, bool joined,
    struct log_ctx *log)
{
	struct str *req = str_new(0, 0), *body = str_new(0, 0),
	    *subj = str_new(0, 0), *post = str_new(0, 0);

	list_address(l, "request", req);
	list_address(l, "", post);
	if (joined) {
		str_printf(subj, "Welcome to the %s list", l->name);
		str_printf(body, "You (%s) are now a member of %s.\n%s\n\n"
		    "To post, write to %s.\nTo leave, write to %s-leave@%s.\n",
		    addr, str_c(post), list_get(l, "description"), str_c(post),
		    l->name, list_get(l, "domain"));
	} else {
		str_printf(subj, "You have left the %s list", l->name);
		str_printf(body, "%s is no longer a member of %s.\n", addr,
		    str_c(post));
	}
	(void)listmgr_notice(l, str_c(req), addr, str_c(subj), NULL,
	    str_c(body), log);
	str_free(&req);
	str_free(&body);
	str_free(&subj);
	str_free(&post);
}

/* listmgr_member_change - see listmgr.h */
int
listmgr_member_change(struct list *l, const char *op, const char *addr,
    struct str *out, struct log_ctx *log)
{
	struct list_members *mp;
	struct list_member m;
	const char *error;
	int r;

	if ((mp = list_members_open(l, true, &error)) == NULL) {
		str_printf(out, "%s %s: failed, try again later\n", op, addr);
		return -1;
	}
	if (strcmp(op, "subscribe") == 0) {
		r = list_member_get(mp, addr, &m, &error);
		if (r > 0 && (m.flags & LIST_MEMBER_BOUNCING ||
		    m.score > 0 || m.last_bounce != 0)) {
			/* subscribing again: a fresh start for bounces */
			m.flags &= ~(unsigned)LIST_MEMBER_BOUNCING;
			m.score = 0;
			m.last_bounce = 0;
			m.disabled = 0;
			r = list_member_put(mp, &m, &error) == 0 ? 3 : -1;
		}
		list_member_clear(&m);
		if (r == 0) {
			memset(&m, 0, sizeof(m));
			m.address = xstrdup(addr);
			m.since = time(NULL);
			r = list_member_put(mp, &m, &error) == 0 ? 1 : -1;
			list_member_clear(&m);
			if (r > 0)
				r = 2;
		}
	} else
		r = list_member_del(mp, addr, &error);
	list_members_close(&mp);
	if (r < 0) {
		str_printf(out, "%s %s: failed (%s)\n", op, addr, error);
		return -1;
	}
	if (strcmp(op, "subscribe") == 0 && r == 1)
		str_printf(out, "subscribe %s: already a member\n", addr);
	else if (strcmp(op, "subscribe") == 0 && r == 3) {
		str_printf(out, "subscribe %s: already a member; bounce "
		    "state cleared, delivery enabled again\n", addr);
		log_info(log, "list=%s: member <%s> re-enabled (bounce state "
		    "cleared)", l->name, addr);
	}
	else if (r == 0)
		str_printf(out, "unsubscribe %s: not a member\n", addr);
	else {
		str_printf(out, "%s %s: done\n", op, addr);
		log_info(log, "list=%s: %s <%s>", l->name, op, addr);
		listmgr_welcome(l, addr, strcmp(op, "subscribe") == 0, log);
	}
	return 0;
}

/* listmgr_confirm - complete pending/TOKEN; result text into out */
static void
listmgr_confirm(struct list *l, const char *token, struct str *out,
    struct log_ctx *log)
{
	struct str *path = str_new(0, 0), *rel = str_new(0, 0),
	    *data = str_new(0, 0);
	char op[16], addr[400];
	long long when;

	if (!list_token_ok(token)) {
		str_append_cstr(out, "confirm: that is not a confirmation "
		    "token\n");
		log_info(log, "list=%s: bad confirmation token", l->name);
		goto out;
	}
	str_printf(rel, "pending/%s", token);
	list_path(l, str_c(rel), path);
	if (read_file(str_c(path), data, 1024) < 0 ||
	    sscanf(str_c(data), "%15s %399s %lld", op, addr, &when) != 3 ||
	    (strcmp(op, "subscribe") != 0 && strcmp(op, "unsubscribe") != 0)) {
		str_append_cstr(out, "confirm: unknown or already used "
		    "confirmation token\n");
		log_info(log, "list=%s: unknown confirmation token", l->name);
		goto out;
	}
	(void)unlink(str_c(path));
	if (when + list_get_int(l, "confirm_lifetime") < (long long)time(NULL)) {
		str_append_cstr(out, "confirm: the confirmation token has "
		    "expired\n");
		log_info(log, "list=%s: expired confirmation token", l->name);
		goto out;
	}
	(void)listmgr_member_change(l, op, addr, out, log);
out:
	str_free(&path);
	str_free(&rel);
	str_free(&data);
}

/* listmgr_hold - see listmgr.h */
int
listmgr_hold(struct list *l, const struct listmgr_msg *msg, const char *reason)
{
	struct str *id = str_new(0, 0), *rel = str_new(0, 0),
	    *path = str_new(0, 0), *info = str_new(0, 0),
	    *author = str_new(0, 0), *req = str_new(0, 0),
	    *subj = str_new(0, 0), *body = str_new(0, 0),
	    *v = str_new(0, 0);
	const char *mods, *p, *e;
	int rc = -1;

	list_random_token(id);
	if (!listmgr_author(msg->data, msg->hdr_len, author))
		str_set_cstr(author, msg->sender);
	str_printf(rel, "held/%s.msg", str_c(id));
	if (safe_file_replace(list_path(l, str_c(rel), path), msg->data,
	    msg->len, 0640) < 0)
		goto out;
	str_printf(info, "sender=%s\nauthor=%s\nreason=%s\ntime=%lld\n",
	    msg->sender, str_c(author), reason, (long long)time(NULL));
	str_clear(rel);
	str_printf(rel, "held/%s.info", str_c(id));
	if (safe_file_replace(list_path(l, str_c(rel), path), str_c(info),
	    str_len(info), 0640) < 0)
		goto out;
	rc = 0;
	log_info(msg->log, "list=%s post from=<%s> status=held (%s) id=%s",
	    l->name, str_c(author), reason, str_c(id));

	list_address(l, "request", req);
	(void)listmgr_header_value(msg->data, msg->hdr_len, "Subject", v);
	str_printf(subj, "%s: held post from %s: approve %s", l->name,
	    str_c(author), str_c(id));
	str_printf(body, "A post to %s@%s is held for moderation.\n\n"
	    "  From:    %s\n  Subject: %s\n  Reason:  %s\n\n"
	    "To approve it, reply to this message (the Subject has the "
	    "command).\nTo reject it, reply with the line \"reject [reason]\"; "
	    "to drop it\nsilently, with \"discard\". Or use postern list "
	    "approve|reject|discard\n%s %s.\n", l->name, list_get(l, "domain"),
	    str_c(author), str_c(v), reason, l->name, str_c(id));
	mods = list_get(l, "moderators");
	if (mods[0] == '\0')
		mods = list_get(l, "owners");
	for (p = mods; *p != '\0'; p = e) {
		struct str *to;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		e = p;
		while (*e != '\0' && *e != ' ' && *e != ',' && *e != '\t')
			e++;
		if (e == p)
			break;
		to = str_new(0, 0);
		str_append(to, p, (size_t)(e - p));
		(void)listmgr_notice(l, str_c(req), str_c(to), str_c(subj),
		    NULL, str_c(body), msg->log);
		str_free(&to);
	}
out:
	if (rc < 0)
		log_error(msg->log, "list=%s: cannot hold a post: %m", l->name);
	str_free(&id);
	str_free(&rel);
	str_free(&path);
	str_free(&info);
	str_free(&author);
	str_free(&req);
	str_free(&subj);
	str_free(&body);
	str_free(&v);
	return rc;
}

/* listmgr_info_get - "key=value" line of a held .info into out */
static bool
listmgr_info_get(const struct str *info, const char *key, struct str *out)
{
	const char *p = str_c(info), *e;
	size_t kl = strlen(key);

	str_clear(out);
	while (*p != '\0') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) > kl && strncmp(p, key, kl) == 0 &&
		    p[kl] == '=') {
			str_append(out, p + kl + 1, (size_t)(e - p - kl - 1));
			return true;
		}
		p = *e != '\0' ? e + 1 : e;
	}
	return false;
}

/* listmgr_moderate - approve, reject or discard held ID */
static void
listmgr_moderate(struct listmgr_req *rq, const char *cmd, const char *id,
    const char *why)
{
	struct list *l = rq->l;
	struct str *mpath = str_new(0, 0), *ipath = str_new(0, 0),
	    *rel = str_new(0, 0), *data = str_new(0, 0),
	    *info = str_new(0, 0), *sender = str_new(0, 0),
	    *author = str_new(0, 0), *reply = str_new(0, 0),
	    *t = str_new(0, 0);
	struct listmgr_msg m;

	rq->did_moderate = true;
	if (!list_token_ok(id)) {
		str_printf(rq->result, "%s: no such held message\n", cmd);
		goto out;
	}
	str_printf(rel, "held/%s.msg", id);
	list_path(l, str_c(rel), mpath);
	str_clear(rel);
	str_printf(rel, "held/%s.info", id);
	list_path(l, str_c(rel), ipath);
	if (read_file(str_c(ipath), info, 64 * 1024) < 0 ||
	    read_file(str_c(mpath), data, 1024UL * 1024 * 1024) < 0) {
		str_printf(rq->result, "%s %s: no such held message (already "
		    "handled?)\n", cmd, id);
		goto out;
	}
	(void)listmgr_info_get(info, "sender", sender);
	(void)listmgr_info_get(info, "author", author);
	if (strcmp(cmd, "approve") == 0) {
		memset(&m, 0, sizeof(m));
		m.data = str_c(data);
		m.len = str_len(data);
		m.hdr_len = header_block_size(m.data, m.len);
		m.sender = str_c(sender);
		m.log = rq->msg->log;
		if (listmgr_post(l, &m, true, reply) != 250) {
			str_printf(rq->result, "approve %s: failed (%s)\n", id,
			    str_c(reply));
			goto out;
		}
	} else if (strcmp(cmd, "reject") == 0 && str_len(author) > 0) {
		str_printf(t, "Your post to %s@%s was rejected by the "
		    "moderator.\n%s%s\n", l->name, list_get(l, "domain"),
		    why[0] != '\0' ? "Reason: " : "", why);
		str_clear(reply);
		list_address(l, "request", reply);
		(void)listmgr_notice(l, str_c(reply), str_c(author),
		    "Your post was rejected", NULL, str_c(t), rq->msg->log);
	}
	(void)unlink(str_c(mpath));
	(void)unlink(str_c(ipath));
	log_info(rq->msg->log, "list=%s: held %s: %sd", l->name, id,
	    strcmp(cmd, "approve") == 0 ? "approve" :
	    strcmp(cmd, "reject") == 0 ? "reject" : "discarde");
	str_printf(rq->result, "%s %s: done\n", cmd, id);
out:
	str_free(&mpath);
	str_free(&ipath);
	str_free(&rel);
	str_free(&data);
	str_free(&info);
	str_free(&sender);
	str_free(&author);
	str_free(&reply);
	str_free(&t);
}

/* listmgr_who - the member list, if the requester may see it */
static void
listmgr_who_cb_append(struct str *out, const struct list_member *m)
{
	str_printf(out, "  %s\n", m->address);
}

static int
listmgr_who_cb(const struct list_member *m, void *ctx)
{
	listmgr_who_cb_append(ctx, m);
	return 0;
}

static void
listmgr_who(struct listmgr_req *rq)
{
	struct list *l = rq->l;
	const char *who = list_get(l, "advertise_who"), *error;
	const char *r = str_c(rq->requester);
	struct list_members *mp;
	bool ok = list_addr_in(l, "owners", r) || list_addr_in(l, "moderators", r);

	if (!ok && strcmp(who, "members") == 0)
		ok = listmgr_is_member(l, r) > 0;
	if (!ok || strcmp(who, "nobody") == 0) {
		str_append_cstr(rq->result, "who: the member list is not "
		    "available to you\n");
		return;
	}
	str_append_cstr(rq->result, "who: members:\n");
	if ((mp = list_members_open(l, false, &error)) == NULL ||
	    list_members_each(mp, listmgr_who_cb, rq->result, &error) < 0)
		str_append_cstr(rq->result, "who: failed\n");
	list_members_close(&mp);
}

/* listmgr_directory_contact - who manages the list's group, into out */
static void
listmgr_directory_contact(const struct list *l, struct str *out)
{
	if (list_get(l, "ldap_contact")[0] != '\0')
		str_set_cstr(out, list_get(l, "ldap_contact"));
	else
		list_address(l, "owner", out);
}

/*
 * listmgr_directory_refuses - for a list whose members come from the
 * directory, answer a request that mail cannot carry out: with
 * membership=ldap every subscribe and unsubscribe, with both the
 * unsubscribe of a group member (a database record could be removed,
 * but the group would still send the list). The reply says so and
 * whom to ask (ldap_contact, else the -owner address), or the
 * ldap_leave_text. True when the request was answered here.
 */
static bool
listmgr_directory_refuses(struct listmgr_req *rq, const char *op,
    const char *addr)
{
	struct list *l = rq->l;
	const char *mode = list_get(l, "membership");
	struct str *err, *who;
	int r;

	if (strcmp(mode, "db") == 0)
		return false;
	if (strcmp(mode, "both") == 0) {
		if (strcmp(op, "unsubscribe") != 0)
			return false;
		err = str_new(0, 0);
		r = list_ldap_is_member(l, &addr, 1, err);
		if (r < 0) {
			log_error(rq->msg->log, "list=%s: LDAP group: %s",
			    l->name, str_c(err));
			str_printf(rq->result, "%s %s: cannot check the "
			    "directory now, try again later\n", op, addr);
		}
		str_free(&err);
		if (r == 0)
			return false;
		if (r < 0)
			return true;
	}
	who = str_new(0, 0);
	listmgr_directory_contact(l, who);
	str_printf(rq->result, "%s %s: the members of %s@%s are the members "
	    "of a group in the organisation's directory; this list cannot "
	    "%s anyone by mail.\n", op, addr, l->name, list_get(l, "domain"),
	    strcmp(op, "subscribe") == 0 ? "add" : "remove");
	if (list_get(l, "ldap_leave_text")[0] != '\0')
		str_printf(rq->result, "%s\n", list_get(l, "ldap_leave_text"));
	else
		str_printf(rq->result, "To %s, ask %s to %s the group.\n",
		    strcmp(op, "subscribe") == 0 ? "join" : "leave",
		    str_c(who), strcmp(op, "subscribe") == 0 ?
		    "add you to" : "remove you from");
	log_info(rq->msg->log, "list=%s: %s <%s> refused: membership comes "
	    "from the directory", l->name, op, addr);
	str_free(&who);
	return true;
}

/* listmgr_help - the command summary */
static void
listmgr_help(struct listmgr_req *rq)
{
	str_printf(rq->result, "Commands for %s-request@%s (one per line, in "
	    "the Subject or the body):\n"
	    "  subscribe [address]     join the list (you will be asked to "
	    "confirm)\n"
	    "  unsubscribe [address]   leave the list (you will be asked to "
	    "confirm)\n"
	    "  confirm TOKEN           confirm a request\n"
	    "  who                     the members (if allowed)\n"
	    "  help                    this text\n"
	    "Or write to %s-join@%s to join and %s-leave@%s to leave.\n",
	    rq->l->name, list_get(rq->l, "domain"), rq->l->name,
	    list_get(rq->l, "domain"), rq->l->name, list_get(rq->l, "domain"));
	if (strcmp(list_get(rq->l, "membership"), "db") != 0) {
		struct str *who = str_new(0, 0);

		listmgr_directory_contact(rq->l, who);
		str_printf(rq->result, "\nThe members of this list are (%s) "
		    "the members of a group in the organisation's directory: "
		    "to join or leave the group, ask %s.\n",
		    strcmp(list_get(rq->l, "membership"), "ldap") == 0 ?
		    "all" : "also", str_c(who));
		str_free(&who);
	}
}

/* listmgr_sub_request - subscribe or unsubscribe addr (checked) */
static void
listmgr_sub_request(struct listmgr_req *rq, const char *op, const char *addr)
{
	struct list *l = rq->l;
	const char *at = strchr(addr, '@');
	struct str *key = str_new(0, 0);

	list_address_key(addr, key);
	if (at == NULL || at == addr || at[1] == '\0' || strlen(addr) > 254 ||
	    strpbrk(addr, " \t\"<>,;:()[]\\") != NULL ||
	    strchr(at + 1, '@') != NULL) {
		str_printf(rq->result, "%s: not a valid address\n", op);
		goto out;
	}
	if (listmgr_own_address(l, str_c(key))) {
		str_printf(rq->result, "%s: a list cannot be its own member\n",
		    op);
		log_info(rq->msg->log, "list=%s: refused to subscribe itself",
		    l->name);
		goto out;
	}
	if (listmgr_directory_refuses(rq, op, str_c(key)))
		goto out;
	if (strcmp(op, "subscribe") == 0 &&
	    strcmp(list_get(l, "subscribe_policy"), "closed") == 0) {
		str_append_cstr(rq->result, "subscribe: this list is closed; "
		    "ask its owner\n");
		goto out;
	}
	if (strcmp(op, "subscribe") == 0 &&
	    strcmp(list_get(l, "subscribe_policy"), "open") == 0 &&
	    strcmp(str_c(key), str_c(rq->requester)) == 0) {
		(void)listmgr_member_change(l, op, str_c(key), rq->result,
		    rq->msg->log);
		goto out;
	}
	if (listmgr_pending_new(l, op, str_c(key), rq->msg->log) < 0)
		str_printf(rq->result, "%s %s: failed, try again later\n", op,
		    str_c(key));
	else
		str_printf(rq->result, "%s %s: a confirmation request was sent "
		    "to that address\n", op, str_c(key));
out:
	str_free(&key);
}

/* listmgr_command - one line; true if it was a command */
static bool
listmgr_command(struct listmgr_req *rq, const char *p, size_t n)
{
	char w[3][400];
	char line[1024];
	int nw;

	if (n >= sizeof(line))
		return false;
	memcpy(line, p, n);
	line[n] = '\0';
	w[0][0] = w[1][0] = w[2][0] = '\0';
	nw = sscanf(line, "%399s %399s %399[^\n]", w[0], w[1], w[2]);
	if (nw < 1)
		return false;
	for (char *c = w[0]; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (strcmp(w[0], "subscribe") == 0 || strcmp(w[0], "join") == 0)
		listmgr_sub_request(rq, "subscribe", nw >= 2 ? w[1] :
		    str_c(rq->requester));
	else if (strcmp(w[0], "unsubscribe") == 0 || strcmp(w[0], "leave") == 0 ||
	    strcmp(w[0], "signoff") == 0)
		listmgr_sub_request(rq, "unsubscribe", nw >= 2 ? w[1] :
		    str_c(rq->requester));
	else if (strcmp(w[0], "help") == 0)
		listmgr_help(rq);
	else if (strcmp(w[0], "who") == 0)
		listmgr_who(rq);
	else if (strcmp(w[0], "confirm") == 0 && nw >= 2)
		listmgr_confirm(rq->l, w[1], rq->result, rq->msg->log);
	else if (strcmp(w[0], "approve") == 0 || strcmp(w[0], "reject") == 0 ||
	    strcmp(w[0], "discard") == 0) {
		const char *id = nw >= 2 && list_token_ok(w[1]) ? w[1] :
		    str_c(rq->subject_id);
		const char *why = nw >= 2 && !list_token_ok(w[1]) ? line +
		    strlen(w[0]) : (nw >= 3 ? w[2] : "");

		while (*why == ' ')
			why++;
		if (rq->did_moderate)
			return true;
		listmgr_moderate(rq, w[0], id, why);
	} else
		return false;
	return true;
}

/* listmgr_text_body - the first text/plain body (or the whole body) */
static void
listmgr_text_body(const struct listmgr_msg *msg, const char **p_r,
    size_t *n_r)
{
	struct mime_message *mm = mime_parse(msg->data, msg->len, NULL);
	const struct mime_part *part = mime_message_root(mm);

	*p_r = msg->data + msg->hdr_len;
	*n_r = msg->len - msg->hdr_len;
	while (part != NULL && (part->flags & MIME_PART_MULTIPART))
		part = part->children;
	if (part != NULL && (part->type == NULL ||
	    mime_part_is(part, "text", "plain")) &&
	    part->body_offset + part->body_size <= msg->len) {
		*p_r = msg->data + part->body_offset;
		*n_r = part->body_size;
	}
	mime_message_free(&mm);
}

/* listmgr_strip_re - the subject without Re:/Fwd:/Aw: prefixes */
static const char *
listmgr_strip_re(const char *s)
{
	for (;;) {
		while (*s == ' ')
			s++;
		if (strncasecmp(s, "re:", 3) == 0 || strncasecmp(s, "aw:", 3) == 0)
			s += 3;
		else if (strncasecmp(s, "fwd:", 4) == 0)
			s += 4;
		else if (strncasecmp(s, "fw:", 3) == 0)
			s += 3;
		else
			return s;
	}
}

/* listmgr_subject_token - the last 24-hex word of the subject into out */
static void
listmgr_subject_token(const char *s, struct str *out)
{
	const char *p = s;
	char w[32];
	size_t n;

	str_clear(out);
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, " \t");
		if (n == 24) {
			memcpy(w, p, 24);
			w[24] = '\0';
			if (list_token_ok(w))
				str_set_cstr(out, w);
		}
		p += n;
	}
}

/* listmgr_request - see listmgr.h */
int
listmgr_request(struct list *l, const struct listmgr_msg *msg,
    const char *role, const char *extra, struct str *reply)
{
	struct listmgr_req rq;
	struct str *subj = str_new(0, 0), *req = str_new(0, 0);
	const char *body, *p, *e, *s;
	size_t blen, lines = 0, junk = 0, cmds = 0;
	bool automatic = listmgr_automatic(msg);

	memset(&rq, 0, sizeof(rq));
	rq.l = l;
	rq.msg = msg;
	rq.requester = str_new(0, 0);
	rq.result = str_new(0, 0);
	rq.subject_id = str_new(0, 0);
	if (!listmgr_author(msg->data, msg->hdr_len, rq.requester))
		list_address_key(msg->sender, rq.requester);
	str_set_cstr(reply, "250 2.0.0 Ok");

	if (strcmp(role, "owner") == 0) {
		/* forward to the owners, with our bounce address */
		const char *o = list_get(l, "owners");
		char *copy = xstrdup(o), *tok, *save = NULL;
		const char *to[32];
		size_t n = 0;

		for (tok = strtok_r(copy, " ,\t", &save); tok != NULL && n < 32;
		    tok = strtok_r(NULL, " ,\t", &save))
			to[n++] = tok;
		list_address(l, "bounces", req);
		if (n > 0 && !listmgr_own_address(l, msg->sender) &&
		    listmgr_inject(str_c(req), to, n, msg->data, msg->len,
		    msg->log) < 0)
			str_set_cstr(reply, "451 4.3.0 Cannot forward, try again");
		free(copy);
		goto out;
	}
	if (listmgr_own_address(l, str_c(rq.requester)) ||
	    listmgr_own_address(l, msg->sender)) {
		log_info(msg->log, "list=%s: request from our own address "
		    "ignored (loop)", l->name);
		goto out;
	}
	if (strcmp(role, "join") == 0) {
		listmgr_sub_request(&rq, "subscribe", str_c(rq.requester));
		cmds++;
	} else if (strcmp(role, "leave") == 0) {
		listmgr_sub_request(&rq, "unsubscribe", str_c(rq.requester));
		cmds++;
	} else if (strcmp(role, "confirm") == 0) {
		listmgr_confirm(l, extra, rq.result, msg->log);
		cmds++;
	} else {
		(void)listmgr_header_value(msg->data, msg->hdr_len, "Subject",
		    subj);
		s = listmgr_strip_re(str_c(subj));
		listmgr_subject_token(s, rq.subject_id);
		listmgr_text_body(msg, &body, &blen);
		for (p = body; p < body + blen && lines < LISTMGR_CMD_LINES &&
		    junk <= LISTMGR_CMD_JUNK && cmds < LISTMGR_CMD_MAX; p = e + 1) {
			const char *q;
			size_t n;

			e = memchr(p, '\n', (size_t)(body + blen - p));
			if (e == NULL)
				e = body + blen;
			lines++;
			q = p;
			n = (size_t)(e - p);
			if (n > 0 && q[n - 1] == '\r')
				n--;
			while (n > 0 && (*q == ' ' || *q == '\t')) {
				q++;
				n--;
			}
			if (n == 0 || *q == '>')
				continue;
			if ((n == 3 && strncasecmp(q, "end", 3) == 0) ||
			    (n >= 2 && q[0] == '-' && q[1] == '-'))
				break;
			if (listmgr_command(&rq, q, n))
				cmds++;
			else
				junk++;
		}
		/* No command in the body: the Subject's (a reply to a notice). */
		if (cmds == 0 && *s != '\0') {
			const char *a = strcasestr(s, "approve ");
			const char *c = strcasestr(s, "confirm ");

			if (a != NULL && str_len(rq.subject_id) > 0)
				cmds += listmgr_command(&rq, a, strlen(a));
			else if (c != NULL)
				cmds += listmgr_command(&rq, c, strlen(c));
			else
				cmds += listmgr_command(&rq, s, strlen(s));
		}
		if (cmds == 0) {
			str_append_cstr(rq.result, "No command was found in your "
			    "message.\n\n");
			listmgr_help(&rq);
		}
	}
	if (!automatic && str_len(rq.result) > 0 && msg->sender[0] != '\0') {
		str_clear(subj);
		str_printf(subj, "Results of your request to %s-request", l->name);
		list_address(l, "request", req);
		(void)listmgr_notice(l, str_c(req), str_c(rq.requester),
		    str_c(subj), NULL, str_c(rq.result), msg->log);
	}
out:
	str_free(&rq.requester);
	str_free(&rq.result);
	str_free(&rq.subject_id);
	str_free(&subj);
	str_free(&req);
	return atoi(str_c(reply));
}
