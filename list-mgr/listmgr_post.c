/* SPDX-License-Identifier: MIT */
/*
 * listmgr_post - a post to a list: policy, rewriting, distribution
 *
 * DESCRIPTION
 *	Policy, in order: a post that carries our own List-Id or X-Loop, or
 *	whose envelope sender is one of our own addresses, is a loop and is
 *	dropped (250, logged); an Approved: header with the list password
 *	approves (a wrong one holds); over max_size holds; "moderated"
 *	holds all; "members" applies nonmember_action (hold, reject: 550
 *	5.7.1 so qmgr bounces it to the sender, discard, accept) to posts
 *	whose From: and envelope sender are both not members; "open"
 *	accepts.
 *
 *	Rewriting (listmgr_rewrite): drops Return-Receipt-To,
 *	Disposition-Notification-To/-Options, Approved, any List-* fields
 *	and Precedence; adds the subject prefix once; rewrites From: to the
 *	list (author in Reply-To) when DMARC mitigation applies; appends
 *	List-Id (RFC 2919), List-Help/-Post/-Subscribe/-Unsubscribe/
 *	-Archive/-Owner (RFC 2369; List-Archive only with an archive and
 *	archive_url or archive_imap), Precedence: list and X-Loop. With an
 *	https http_unsubscribe_url each member's copy of a database list
 *	gets its own List-Unsubscribe with the one-click URL (an HMAC token
 *	for that member, listmgr_http.c) and List-Unsubscribe-Post (RFC
 *	8058); the archive and digests keep the mailto form only.
 *
 *	Directory members (membership=ldap; the group's members of a both
 *	list, per copy) cannot leave by mail or by one click: their
 *	List-Unsubscribe is a mailto: NAME-request?subject=unsubscribe,
 *	whose reply says whom to ask (listmgr_request.c), never with
 *	List-Unsubscribe-Post, and membership=ldap has no List-Subscribe.
 *
 *	The footer never touches existing MIME parts: a plain 7bit/8bit
 *	text/plain body gets it appended; a multipart/mixed gets a new last
 *	part; anything else (multipart/signed, alternative, base64 or
 *	quoted-printable text, HTML) is wrapped as the first part of a new
 *	multipart/mixed with the footer as the second part, so a signed
 *	part stays byte-for-byte what was signed.
 *
 *	DMARC: dmarc_mitigation=always rewrites every From:; auto looks up
 *	the author's domain in $list_dmarc_policy_maps, then (with
 *	$list_dmarc_lookup) the _dmarc.DOMAIN TXT record through lib/dns
 *	(the resolver smtp uses; $list_dns_server overrides the name
 *	servers), and rewrites for p=reject or p=quarantine. No
 *	organisational-domain fallback (XXX: needs the public suffix list).
 *
 *	Newsgroup: with newsgroup = G and $list_news_gateway_domain D, the
 *	post as archived (no per-member fields) is also queued once to
 *	G@D, which the site routes to news-gw (transport_maps) and maps to
 *	G ($newsgroups_maps). It keeps our List-Id and X-Loop, so when the
 *	article comes back as mail (a news-to-mail map naming the list)
 *	it is dropped here as a loop, even if news-gw's own history does
 *	not stop it first.
 *
 *	Distribution: one queue entry per receiving member, each with its
 *	VERP envelope sender NAME-bounces+local=domain@listdomain, queued
 *	by $list_expansion_processes child processes in parallel. The LMTP
 *	reply is 250 only when every copy is queued. A crash in the middle
 *	makes qmgr retry the post (same delivery token); the per-post
 *	progress record (listmgr_progress.c) lets the retry skip the
 *	members whose copy is already queued.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "dns.h"
#include "header.h"
#include "header_address.h"
#include "list_ldap.h"
#include "list_store.h"
#include "log.h"
#include "map.h"
#include "mime.h"
#include "str.h"

#include "listmgr.h"

/* listmgr_header_value - see listmgr.h */
bool
listmgr_header_value(const char *data, size_t hdr_len, const char *name,
    struct str *out)
{
	struct header_field f;

	str_clear(out);
	if (!header_find(data, hdr_len, name, &f))
		return false;
	(void)header_unfold(f.value, f.value_len, out);
	return true;
}

/* listmgr_author - see listmgr.h */
bool
listmgr_author(const char *data, size_t hdr_len, struct str *out)
{
	struct header_field f;
	struct header_address *a, *list;
	bool ok = false;

	str_clear(out);
	if (!header_find(data, hdr_len, "From", &f))
		return false;
	list = header_address_parse(f.value, f.value_len, 10);
	for (a = list; a != NULL; a = a->next) {
		if (a->domain == NULL || a->mailbox == NULL ||
		    strcmp(a->domain, HEADER_ADDRESS_MISSING_DOMAIN) == 0)
			continue;
		str_printf(out, "%s@%s", a->mailbox, a->domain);
		ok = true;
		break;
	}
	header_address_free(&list);
	if (ok) {
		/* lower-case in place (list_address_key would copy onto itself) */
		char *c;

		for (c = str_data(out); *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	return ok && str_len(out) > 0 && strpbrk(str_c(out), " \t\r\n\"<>,") == NULL;
}

/* listmgr_strcasecmp_p - qsort/bsearch over char * */
static int
listmgr_strcasecmp_p(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* listmgr_ldap_sorted - the LDAP group, sorted (list_ldap.h); 0 or -1 (logged) */
static int
listmgr_ldap_sorted(const struct list *l, char ***addrs_r, size_t *n_r,
    struct log_ctx *log)
{
	struct str *error = str_new(0, 0);
	int rc;

	rc = list_ldap_members(l, addrs_r, n_r, error);
	if (rc < 0)
		log_error(log, "list=%s: LDAP group: %s", l->name, str_c(error));
	str_free(&error);
	return rc;
}

/* listmgr_addrs_free - free an array of owned strings */
static void
listmgr_addrs_free(char **a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/* listmgr_is_member - see listmgr.h */
int
listmgr_is_member(const struct list *l, const char *addr)
{
	struct list_members *mp;
	struct list_member m;
	const char *error, *mode = list_get(l, "membership");
	char **la = NULL;
	size_t ln = 0;
	int r = 0;

	if (addr[0] == '\0')
		return 0;
	if (strcmp(mode, "ldap") != 0) {
		if ((mp = list_members_open(l, false, &error)) == NULL)
			return -1;
		r = list_member_get(mp, addr, &m, &error);
		list_member_clear(&m);
		list_members_close(&mp);
	}
	if (r == 0 && strcmp(mode, "db") != 0) {
		if (listmgr_ldap_sorted(l, &la, &ln, NULL) < 0)
			return -1;
		r = ln > 0 && bsearch(&addr, la, ln, sizeof(char *),
		    listmgr_strcasecmp_p) != NULL;
		listmgr_addrs_free(la, ln);
	}
	return r;
}

/* listmgr_dmarc_dns - the _dmarc.domain DMARC record into out; false if none */
static bool
listmgr_dmarc_dns(const char *domain, struct str *out, struct log_ctx *log)
{
	struct str *name;
	enum dns_txt_result r;

	if (!listmgr_settings.dns_ok)
		return false;
	name = str_new(0, 0);
	str_printf(name, "_dmarc.%s", domain);
	r = dns_txt_first(&listmgr_res, str_c(name), "v=DMARC1", out);
	if (r == DNS_TXT_TEMP)
		log_warn(log, "DMARC lookup %s: temporary DNS failure "
		    "(From: not rewritten)", str_c(name));
	str_free(&name);
	return r == DNS_TXT_FOUND;
}

/* listmgr_dmarc_strict - whether domain's DMARC policy is reject/quarantine */
static bool
listmgr_dmarc_strict(const char *domain, struct log_ctx *log)
{
	const char *const *specs;
	struct str *v = str_new(0, 0);
	const char *error, *p;
	size_t n, i;
	bool found = false, strict = false;

	specs = config_list(conf(), "list_dmarc_policy_maps", &n);
	for (i = 0; i < n && !found; i++) {
		struct map *m = map_open(specs[i], 0, &error);

		if (m == NULL) {
			log_warn(log, "list_dmarc_policy_maps %s: %s", specs[i],
			    error);
			continue;
		}
		if (map_lookup(m, domain, v, &error) > 0) {
			found = true;
			strict = strcasecmp(str_c(v), "reject") == 0 ||
			    strcasecmp(str_c(v), "quarantine") == 0;
		}
		map_close(&m);
	}
	if (!found && listmgr_settings.dmarc_lookup &&
	    listmgr_dmarc_dns(domain, v, log)) {
		for (p = str_c(v); (p = strstr(p, "p=")) != NULL; p += 2) {
			if (p != str_c(v) && p[-1] != ';' && p[-1] != ' ')
				continue;
			strict = strncasecmp(p + 2, "reject", 6) == 0 ||
			    strncasecmp(p + 2, "quarantine", 10) == 0;
			break;
		}
	}
	str_free(&v);
	return strict;
}

/* listmgr_drop_field - fields the list removes from posts */
static bool
listmgr_drop_field(const struct header_field *f)
{
	static const char *const drop[] = { "Return-Receipt-To",
	    "Disposition-Notification-To", "Disposition-Notification-Options",
	    "Approved", "Approve", "Precedence", "X-Loop" };
	size_t i;

	for (i = 0; i < N_ELEMENTS(drop); i++)
		if (header_name_is(f, drop[i]))
			return true;
	return f->name_len > 5 && strncasecmp(f->name, "List-", 5) == 0;
}

/* listmgr_is_content_field - Content-* fields (move into a wrapped part) */
static bool
listmgr_is_content_field(const struct header_field *f)
{
	return f->name_len > 8 && strncasecmp(f->name, "Content-", 8) == 0;
}

/*
 * listmgr_unsub_directory - the List-Unsubscribe line of a member whose
 * membership is the directory's: a mailto: the -request address, whose
 * "unsubscribe" reply says whom to ask (listmgr_request.c). There is no
 * List-Unsubscribe-Post: one click cannot remove anyone from a group.
 */
static void
listmgr_unsub_directory(const struct list *l, struct str *out)
{
	str_printf(out, "List-Unsubscribe: <mailto:%s-request@%s"
	    "?subject=unsubscribe>\r\n", l->name, list_get(l, "domain"));
}

/*
 * listmgr_archive_header - List-Archive (RFC 2369 3.6) when the list
 * keeps an archive: archive_url if set, else with archive_imap the
 * IMAP URL (RFC 5092) of the shared mailbox on $myhostname
 */
static void
listmgr_archive_header(const struct list *l, struct str *out)
{
	const char *url = list_get(l, "archive_url");

	if (strcmp(list_get(l, "archive"), "off") == 0)
		return;
	if (url[0] != '\0' && strpbrk(url, " \t<>\"") == NULL)
		str_printf(out, "List-Archive: <%s>\r\n", url);
	else if (url[0] == '\0' && list_get_bool(l, "archive_imap"))
		str_printf(out, "List-Archive: <imap://%s/Shared/%s>\r\n",
		    listmgr_settings.myhostname, l->name);
}

/*
 * listmgr_footer_mode - how the footer goes in: 0 append to the text,
 * 1 new last part of the multipart/mixed, 2 wrap in multipart/mixed
 */
static int
listmgr_footer_mode(const char *data, size_t len, struct str *boundary)
{
	struct mime_message *mm = mime_parse(data, len, NULL);
	const struct mime_part *root = mime_message_root(mm);
	const char *b;
	int mode = 2;

	if (root->type == NULL || mime_part_is(root, "text", "plain")) {
		const char *cs = mime_part_param(root, "charset", false);
		bool plain_enc = root->encoding == NULL ||
		    strcasecmp(root->encoding, "7bit") == 0 ||
		    strcasecmp(root->encoding, "8bit") == 0;

		if (plain_enc && (cs == NULL || strcasecmp(cs, "us-ascii") == 0 ||
		    strcasecmp(cs, "utf-8") == 0))
			mode = 0;
	} else if (mime_part_is(root, "multipart", "mixed") &&
	    (b = mime_part_param(root, "boundary", false)) != NULL &&
	    !(root->flags & MIME_PART_NO_END)) {
		str_set_cstr(boundary, b);
		mode = 1;
	}
	mime_message_free(&mm);
	return mode;
}

/* listmgr_footer_text - the footer with CRLF line ends into out */
static void
listmgr_footer_text(const struct list *l, struct str *out)
{
	const char *p;

	str_clear(out);
	/* "\n" in the setting is a line break */
	for (p = list_get(l, "footer"); *p != '\0'; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			str_append_cstr(out, "\r\n");
			p++;
		} else
			str_append_c(out, *p);
	}
	str_append_cstr(out, "\r\n");
}

/* listmgr_rewrite - the message members get, into out */
static void
listmgr_rewrite(const struct list *l, const struct listmgr_msg *msg,
    const char *author, struct str *out, size_t *unsub_at_r,
    size_t *unsub_len_r)
{
	struct header_iter it;
	struct header_field f;
	struct str *addr = str_new(0, 0), *t = str_new(0, 0);
	struct str *boundary = str_new(0, 0), *footer = str_new(0, 0);
	struct str *content_hdr = str_new(0, 0);
	const char *body = msg->data + msg->hdr_len, *prefix, *dm;
	size_t body_len = msg->len - msg->hdr_len;
	bool rewrite_from = false, have_reply_to = false, have_mime = false;
	bool directory = strcmp(list_get(l, "membership"), "ldap") == 0;
	int mode = -1;

	str_clear(out);
	list_address(l, "", addr);
	prefix = list_get(l, "subject_prefix");
	dm = list_get(l, "dmarc_mitigation");
	if (strcmp(dm, "always") == 0)
		rewrite_from = true;
	else if (strcmp(dm, "auto") == 0 && author[0] != '\0')
		rewrite_from = listmgr_dmarc_strict(strchr(author, '@') + 1,
		    msg->log);
	if (list_get(l, "footer")[0] != '\0' &&
	    msg->hdr_len <= msg->len) {
		mode = listmgr_footer_mode(msg->data, msg->len, boundary);
		listmgr_footer_text(l, footer);
	}
	header_iter_init(&it, msg->data, msg->hdr_len);
	while (header_iter_next(&it, &f)) {
		if (f.no_colon || listmgr_drop_field(&f))
			continue;
		if (header_name_is(&f, "Reply-To"))
			have_reply_to = true;
		if (header_name_is(&f, "MIME-Version"))
			have_mime = true;
		if (mode == 2 && listmgr_is_content_field(&f)) {
			str_append(content_hdr, msg->data + f.offset, f.size);
			continue;
		}
		if (header_name_is(&f, "Subject") && prefix[0] != '\0') {
			str_clear(t);
			(void)header_unfold(f.value, f.value_len, t);
			if (strstr(str_c(t), prefix) == NULL) {
				str_printf(out, "Subject: %s %s\r\n", prefix,
				    str_c(t));
				continue;
			}
		}
		if (header_name_is(&f, "From") && rewrite_from) {
			struct header_address *a = header_address_parse(f.value,
			    f.value_len, 1);
			const char *nm = a != NULL && a->name != NULL ?
			    a->name : author;

			str_printf(out, "From: \"%s via %s\" <%s>\r\n", nm,
			    l->name, str_c(addr));
			str_append_cstr(out, "X-Original-From:");
			str_append(out, f.value, f.value_len);
			str_append_cstr(out, "\r\n");
			header_address_free(&a);
			continue;
		}
		str_append(out, msg->data + f.offset, f.size);
		/* a last field without its line end (no body) */
		if (out->len > 0 && str_c(out)[str_len(out) - 1] != '\n')
			str_append_cstr(out, "\r\n");
	}
	if (rewrite_from && !have_reply_to)
		str_printf(out, "Reply-To: <%s>\r\n", author);
	if (list_get(l, "description")[0] != '\0')
		str_printf(out, "List-Id: %s <%s.%s>\r\n",
		    list_get(l, "description"), l->name, list_get(l, "domain"));
	else
		str_printf(out, "List-Id: <%s.%s>\r\n", l->name,
		    list_get(l, "domain"));
	str_printf(out, "List-Help: <mailto:%s-request@%s?subject=help>\r\n",
	    l->name, list_get(l, "domain"));
	str_printf(out, "List-Post: <mailto:%s>\r\n", str_c(addr));
	/* membership=ldap: nobody joins or leaves by mail (list-mgr(8)) */
	if (!directory)
		str_printf(out, "List-Subscribe: <mailto:%s-join@%s>\r\n",
		    l->name, list_get(l, "domain"));
	/*
	 * The per-member one-click or directory form replaces this line
	 * (listmgr_send_slice).
	 */
	*unsub_at_r = str_len(out);
	if (directory)
		listmgr_unsub_directory(l, out);
	else
		str_printf(out, "List-Unsubscribe: <mailto:%s-leave@%s>\r\n",
		    l->name, list_get(l, "domain"));
	*unsub_len_r = str_len(out) - *unsub_at_r;
	listmgr_archive_header(l, out);
	str_printf(out, "List-Owner: <mailto:%s-owner@%s>\r\n", l->name,
	    list_get(l, "domain"));
	str_append_cstr(out, "Precedence: list\r\n");
	str_printf(out, "X-Loop: %s\r\n", str_c(addr));
	if (mode == 2) {
		struct str *nb = str_new(0, 0);

		list_random_token(nb);
		if (!have_mime)
			str_append_cstr(out, "MIME-Version: 1.0\r\n");
		str_printf(out, "Content-Type: multipart/mixed; "
		    "boundary=\"=_list_%s\"\r\n\r\n", str_c(nb));
		str_printf(out, "This is a multi-part message in MIME format.\r\n"
		    "--=_list_%s\r\n", str_c(nb));
		str_append_str(out, content_hdr);
		str_append_cstr(out, "\r\n");
		str_append(out, body, body_len);
		if (body_len > 0 && body[body_len - 1] != '\n')
			str_append_cstr(out, "\r\n");
		str_printf(out, "--=_list_%s\r\nContent-Type: text/plain; "
		    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
		    "Content-Disposition: inline\r\n\r\n", str_c(nb));
		str_append_str(out, footer);
		str_printf(out, "--=_list_%s--\r\n", str_c(nb));
		str_free(&nb);
	} else if (mode == 1) {
		struct str *close = str_new(0, 0);
		const char *end = NULL, *p = body;

		str_printf(close, "--%s--", str_c(boundary));
		/* the last close-delimiter at a line start */
		while ((p = memmem(p, body_len - (size_t)(p - body),
		    str_c(close), str_len(close))) != NULL) {
			if (p == body || p[-1] == '\n')
				end = p;
			p += str_len(close);
		}
		if (end == NULL)
			end = body + body_len;
		str_append_cstr(out, "\r\n");
		str_append(out, body, (size_t)(end - body));
		str_printf(out, "--%s\r\nContent-Type: text/plain; charset=utf-8"
		    "\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition:"
		    " inline\r\n\r\n", str_c(boundary));
		str_append_str(out, footer);
		str_append(out, end, body_len - (size_t)(end - body));
		str_free(&close);
	} else {
		str_append_cstr(out, "\r\n");
		str_append(out, body, body_len);
		if (mode == 0) {
			if (body_len > 0 && body[body_len - 1] != '\n')
				str_append_cstr(out, "\r\n");
			str_append_cstr(out, "-- \r\n");
			str_append_str(out, footer);
		}
	}
	str_free(&addr);
	str_free(&t);
	str_free(&boundary);
	str_free(&footer);
	str_free(&content_hdr);
}

struct listmgr_rcpts {
	char **addr;
	size_t n, cap;
	const char *author;
	struct list *digest_list;
	size_t ndigest;
	char **ldap;		/* membership=ldap|both: the group, sorted */
	size_t nldap;
	bool *ldap_seen;	/* also in the database (its options count) */
	bool ldap_only;		/* membership=ldap: others are not members */
};

/* listmgr_collect - members who get this post now */
static int
listmgr_collect(const struct list_member *m, void *ctx)
{
	struct listmgr_rcpts *r = ctx;

	if (r->ldap != NULL || r->ldap_only) {
		char **hit = r->nldap == 0 ? NULL : bsearch(&m->address,
		    r->ldap, r->nldap, sizeof(char *), listmgr_strcasecmp_p);

		if (hit != NULL)
			r->ldap_seen[hit - r->ldap] = true;
		else if (r->ldap_only)
			return 0;
	}
	if (m->flags & (LIST_MEMBER_NOMAIL | LIST_MEMBER_BOUNCING))
		return 0;
	if (m->flags & LIST_MEMBER_DIGEST) {
		r->ndigest++;
		return 0;
	}
	if ((m->flags & LIST_MEMBER_NOCOPY) && r->author != NULL &&
	    strcmp(m->address, r->author) == 0)
		return 0;
	if (r->n == r->cap) {
		r->cap = r->cap == 0 ? 64 : r->cap * 2;
		r->addr = xreallocarray(r->addr, r->cap, sizeof(char *));
	}
	r->addr[r->n++] = xstrdup(m->address);
	return 0;
}

/* listmgr_verp - "NAME-bounces+local=domain@listdomain" into out */
static void
listmgr_verp(const struct list *l, const char *member, struct str *out)
{
	const char *at = strrchr(member, '@');

	str_clear(out);
	if (at == NULL)
		str_printf(out, "%s-bounces@%s", l->name, list_get(l, "domain"));
	else
		str_printf(out, "%s-bounces+%.*s=%s@%s", l->name,
		    (int)(at - member), member, at + 1, list_get(l, "domain"));
}

/*
 * listmgr_member_copy - the member's copy: m with its List-Unsubscribe
 * line (at unsub_at, unsub_len octets) replaced by the one-click form;
 * false (m as it is) when the list has no one-click URL
 */
static bool
listmgr_member_copy(const struct list *l, const char *member,
    const struct str *m, size_t unsub_at, size_t unsub_len, struct str *copy,
    struct log_ctx *log)
{
	struct str *url = str_new(0, 0);
	bool ok;

	ok = listmgr_unsubscribe_url(l, member, url, log);
	if (ok) {
		str_set(copy, str_c(m), unsub_at);
		str_printf(copy, "List-Unsubscribe: <mailto:%s-leave@%s>,\r\n"
		    " <%s>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
		    "\r\n", l->name, list_get(l, "domain"), str_c(url));
		str_append(copy, str_c(m) + unsub_at + unsub_len,
		    str_len(m) - unsub_at - unsub_len);
	}
	str_free(&url);
	return ok;
}

/* listmgr_send_slice - queue copies for members i = first, first+step, ... */
static int
listmgr_send_slice(const struct list *l, const struct listmgr_rcpts *r,
    size_t first, size_t step, const struct str *m, size_t unsub_at,
    size_t unsub_len, struct listmgr_progress *p, struct log_ctx *log)
{
	struct str *verp = str_new(0, 0), *copy = str_new(0, 0);
	/* LDAP members leave through the directory, not by one click */
	bool one_click = list_get(l, "http_unsubscribe_url")[0] != '\0' &&
	    strcmp(list_get(l, "membership"), "db") == 0;
	/* membership=both: group members get the directory's form */
	bool mixed = r->ldap != NULL && !r->ldap_only;
	size_t i;
	int rc = 0;

	for (i = first; i < r->n && rc == 0; i += step) {
		const char *to = r->addr[i];

		listmgr_verp(l, to, verp);
		if (one_click && listmgr_member_copy(l, to, m, unsub_at,
		    unsub_len, copy, log))
			rc = listmgr_inject_copy(str_c(verp), to, str_c(copy),
			    str_len(copy), p, log);
		else if (mixed && list_ldap_find(r->ldap, r->nldap, to)) {
			str_set(copy, str_c(m), unsub_at);
			listmgr_unsub_directory(l, copy);
			str_append(copy, str_c(m) + unsub_at + unsub_len,
			    str_len(m) - unsub_at - unsub_len);
			rc = listmgr_inject_copy(str_c(verp), to, str_c(copy),
			    str_len(copy), p, log);
		}
		else
			rc = listmgr_inject_copy(str_c(verp), to, str_c(m),
			    str_len(m), p, log);
	}
	str_free(&verp);
	str_free(&copy);
	return rc;
}

/*
 * listmgr_news - the copy for the list's newsgroup: to GROUP@
 * $list_news_gateway_domain (news-gw, by qmgr's transport_maps), once
 * per post (progress record); 0 or -1
 */
static int
listmgr_news(const struct list *l, const struct str *m,
    struct listmgr_progress *p, struct log_ctx *log)
{
	struct str *to = str_new(0, 0), *bounces = str_new(0, 0);
	const char *group = list_get(l, "newsgroup");
	int rc = 0, st;

	if (group[0] == '\0')
		goto out;
	if (listmgr_settings.news_domain[0] == '\0') {
		log_warn(log, "list=%s: newsgroup %s set but "
		    "list_news_gateway_domain is empty: not gatewayed",
		    l->name, group);
		goto out;
	}
	str_printf(to, "%s@%s", group, listmgr_settings.news_domain);
	if ((st = listmgr_progress_pending(p, str_c(to), log)) <= 0) {
		rc = st;	/* queued by an earlier attempt, or not known */
		goto out;
	}
	list_address(l, "bounces", bounces);
	rc = listmgr_inject_copy(str_c(bounces), str_c(to), str_c(m),
	    str_len(m), p, log);
	if (rc == 0)
		log_info(log, "list=%s: gatewayed to %s (<%s>)", l->name,
		    group, str_c(to));
out:
	str_free(&to);
	str_free(&bounces);
	return rc;
}

/*
 * listmgr_resume - drop from r the members whose copy a crashed earlier
 * attempt already queued (progress record); 0, or -1 if that is not
 * known now
 */
static int
listmgr_resume(struct listmgr_rcpts *r, struct listmgr_progress *p,
    struct log_ctx *log, size_t *skipped_r)
{
	size_t i, j;
	int st;

	*skipped_r = 0;
	for (i = 0, j = 0; i < r->n; i++) {
		st = listmgr_progress_pending(p, r->addr[i], log);
		if (st < 0) {
			for (; i < r->n; i++)
				r->addr[j++] = r->addr[i];
			r->n = j;
			return -1;
		}
		if (st == 0) {
			free(r->addr[i]);
			(*skipped_r)++;
			continue;
		}
		r->addr[j++] = r->addr[i];
	}
	r->n = j;
	return 0;
}

/* listmgr_distribute - see listmgr.h */
int
listmgr_distribute(struct list *l, const struct listmgr_msg *msg,
    const char *author)
{
	struct listmgr_rcpts r;
	struct list_members *mp;
	struct listmgr_progress *prog;
	struct str *out;
	const char *error;
	size_t k, nproc, skipped = 0, unsub_at = 0, unsub_len = 0;
	pid_t *pids, parent = getpid();
	bool busy;
	int rc = 0, status;

	/* a retried post resumes where the last attempt stopped */
	prog = listmgr_progress_open(l, msg, &busy);
	if (prog == NULL && busy) {
		log_warn(msg->log, "list=%s: the post is being distributed "
		    "by another process (or its record is unusable)", l->name);
		return -1;
	}
	if (listmgr_progress_finished(prog)) {
		log_info(msg->log, "list=%s post from=<%s> status=sent "
		    "(already distributed)", l->name, author);
		listmgr_progress_close(&prog);
		return 0;
	}
	out = str_new(msg->len + 2048, 0);

	memset(&r, 0, sizeof(r));
	r.author = author;
	if (strcmp(list_get(l, "membership"), "db") != 0) {
		r.ldap_only = strcmp(list_get(l, "membership"), "ldap") == 0;
		if (listmgr_ldap_sorted(l, &r.ldap, &r.nldap, msg->log) < 0) {
			str_free(&out);
			listmgr_progress_close(&prog);
			return -1;
		}
		r.ldap_seen = xcalloc(r.nldap + 1, sizeof(bool));
	}
	if ((mp = list_members_open(l, false, &error)) == NULL ||
	    list_members_each(mp, listmgr_collect, &r, &error) < 0) {
		log_error(msg->log, "list=%s: members: %s", l->name, error);
		list_members_close(&mp);
		rc = -1;
		goto out;
	}
	list_members_close(&mp);
	/* group members without a database record: plain receivers */
	for (k = 0; k < r.nldap; k++) {
		if (r.ldap_seen[k] ||
		    (k > 0 && strcasecmp(r.ldap[k], r.ldap[k - 1]) == 0))
			continue;
		if (r.n == r.cap) {
			r.cap = r.cap == 0 ? 64 : r.cap * 2;
			r.addr = xreallocarray(r.addr, r.cap, sizeof(char *));
		}
		r.addr[r.n++] = xstrdup(r.ldap[k]);
	}
	if (listmgr_resume(&r, prog, msg->log, &skipped) < 0) {
		log_warn(msg->log, "list=%s: cannot tell yet which copies an "
		    "earlier attempt queued", l->name);
		rc = -1;
		goto out;
	}
	if (skipped > 0)
		log_info(msg->log, "list=%s: resuming: %zu members already "
		    "have their copy", l->name, skipped);
	listmgr_rewrite(l, msg, author, out, &unsub_at, &unsub_len);

	nproc = listmgr_settings.expansion_processes;
	if (nproc > r.n / 50 + 1)
		nproc = r.n / 50 + 1;
	if (nproc <= 1) {
		rc = listmgr_send_slice(l, &r, 0, 1, out, unsub_at, unsub_len,
		    prog, msg->log);
	} else {
		pids = xcalloc(nproc, sizeof(pid_t));
		for (k = 0; k < nproc; k++) {
			pids[k] = fork();
			if (pids[k] == 0) {
				/*
				 * Die with the parent: the progress lock is
				 * shared with us, and a retry must not run
				 * beside a half-dead distribution.
				 */
				if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
				    getppid() != parent)
					_exit(1);
				_exit(listmgr_send_slice(l, &r, k, nproc, out,
				    unsub_at, unsub_len, prog, msg->log) == 0 ?
				    0 : 1);
			}
			if (pids[k] < 0) {
				log_error(msg->log, "fork: %m");
				rc = -1;
			}
		}
		for (k = 0; k < nproc; k++) {
			if (pids[k] <= 0)
				continue;
			while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				rc = -1;
		}
		free(pids);
	}
	if (rc == 0)
		rc = listmgr_news(l, out, prog, msg->log);
	if (rc == 0) {
		log_info(msg->log, "list=%s post from=<%s> status=sent "
		    "(%zu members, %zu digest)", l->name, author, r.n + skipped,
		    r.ndigest);
		if (strcmp(list_get(l, "archive"), "off") != 0 &&
		    listmgr_archive_add(l, msg->sender, str_c(out),
		    str_len(out)) < 0)
			log_warn(msg->log, "list=%s: archive append failed: %m",
			    l->name);
		if (r.ndigest > 0 &&
		    listmgr_digest_add(l, str_c(out), str_len(out)) < 0)
			log_warn(msg->log, "list=%s: digest append failed: %m",
			    l->name);
		/* XXX a crash before this line archives the post twice */
		if (listmgr_progress_finish(prog) < 0) {
			log_error(msg->log, "list=%s: progress record: %m",
			    l->name);
			rc = -1;
		}
	}
out:
	listmgr_progress_close(&prog);
	for (k = 0; k < r.n; k++)
		free(r.addr[k]);
	free(r.addr);
	listmgr_addrs_free(r.ldap, r.nldap);
	free(r.ldap_seen);
	str_free(&out);
	return rc;
}

/* listmgr_is_loop - a post we sent ourselves (or for a list we feed) */
static bool
listmgr_is_loop(const struct list *l, const struct listmgr_msg *msg)
{
	struct str *v = str_new(0, 0), *mine = str_new(0, 0);
	struct header_iter it;
	struct header_field f;
	bool loop = false;

	list_address(l, "", mine);
	header_iter_init(&it, msg->data, msg->hdr_len);
	while (header_iter_next(&it, &f) && !loop) {
		if (!header_name_is(&f, "X-Loop") && !header_name_is(&f, "List-Id"))
			continue;
		str_clear(v);
		(void)header_unfold(f.value, f.value_len, v);
		if (header_name_is(&f, "X-Loop"))
			loop = strcasecmp(str_c(v), str_c(mine)) == 0;
		else {
			str_clear(mine);
			str_printf(mine, "<%s.%s>", l->name, list_get(l, "domain"));
			loop = strcasestr(str_c(v), str_c(mine)) != NULL;
			list_address(l, "", mine);
		}
	}
	/* mail from our own bounce address (a list subscribed to itself) */
	str_clear(v);
	str_printf(v, "%s-bounces", l->name);
	if (strncasecmp(msg->sender, str_c(v), str_len(v)) == 0)
		loop = true;
	str_free(&v);
	str_free(&mine);
	return loop;
}

/* listmgr_post - see listmgr.h */
int
listmgr_post(struct list *l, const struct listmgr_msg *msg, bool approved,
    struct str *reply)
{
	struct str *author = str_new(0, 0), *v = str_new(0, 0);
	const char *posting, *action, *hold = NULL;
	int member = 0, code = 250;

	if (listmgr_is_loop(l, msg)) {
		log_info(msg->log, "list=%s: mail loop: post discarded", l->name);
		str_set_cstr(reply, "250 2.0.0 Ok: discarded (mail loop)");
		goto out;
	}
	if (!listmgr_author(msg->data, msg->hdr_len, author))
		str_set_cstr(author, msg->sender);
	if (!approved && (listmgr_header_value(msg->data, msg->hdr_len,
	    "Approved", v) || listmgr_header_value(msg->data, msg->hdr_len,
	    "Approve", v))) {
		if (list_get(l, "password")[0] != '\0' &&
		    strcmp(str_c(v), list_get(l, "password")) == 0)
			approved = true;
		else
			hold = "bad Approved: password";
	}
	posting = list_get(l, "posting");
	if (!approved && hold == NULL) {
		if ((long)msg->len > list_get_int(l, "max_size"))
			hold = "message too big";
		else if (strcmp(posting, "moderated") == 0)
			hold = "moderated list";
		else if (strcmp(posting, "members") == 0) {
			member = listmgr_is_member(l, str_c(author));
			if (member == 0 && msg->sender[0] != '\0')
				member = listmgr_is_member(l, msg->sender);
			if (member < 0) {
				str_set_cstr(reply, "451 4.3.0 List member "
				    "database unavailable");
				code = 451;
				goto out;
			}
			if (member == 0) {
				action = list_get(l, "nonmember_action");
				if (strcmp(action, "reject") == 0) {
					log_info(msg->log, "list=%s post from=<%s> "
					    "status=rejected (non-member)",
					    l->name, str_c(author));
					str_set_cstr(reply, "550 5.7.1 Only members "
					    "may post to this list");
					code = 550;
					goto out;
				}
				if (strcmp(action, "discard") == 0) {
					log_info(msg->log, "list=%s post from=<%s> "
					    "status=discarded (non-member)",
					    l->name, str_c(author));
					str_set_cstr(reply, "250 2.0.0 Ok");
					goto out;
				}
				if (strcmp(action, "hold") == 0)
					hold = "post by non-member";
			}
		}
	}
	if (hold != NULL) {
		if (listmgr_hold(l, msg, hold) < 0) {
			str_set_cstr(reply, "451 4.3.0 Cannot hold the message");
			code = 451;
		} else
			str_set_cstr(reply, "250 2.0.0 Ok: held for moderation");
		goto out;
	}
	if (listmgr_distribute(l, msg, str_c(author)) < 0) {
		str_set_cstr(reply, "451 4.3.0 Distribution failed, try again");
		code = 451;
	} else
		str_set_cstr(reply, "250 2.0.0 Ok: distributed");
out:
	str_free(&author);
	str_free(&v);
	return code;
}
