/* SPDX-License-Identifier: MIT */
/*
 * imapd_list - LIST (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE,
 * CHILDREN), LSUB and STATUS
 *
 * DESCRIPTION
 *	The mailbox list comes from the store in one read
 *	(store_mailbox_list); patterns are matched here. Names are UTF-8
 *	with '/' inside, shown with the configured separator, in modified
 *	UTF-7 unless the client enabled UTF8=ACCEPT. STATUS reads only the
 *	mailbox's index header.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "imap_utf7.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"

#include "imapd.h"

#define LIST_SEL_SUBSCRIBED	0x01
#define LIST_SEL_SPECIAL_USE	0x02
#define LIST_SEL_RECURSIVE	0x04
#define LIST_RET_SUBSCRIBED	0x01
#define LIST_RET_CHILDREN	0x02
#define LIST_RET_SPECIAL_USE	0x04
#define LIST_RET_STATUS		0x08

/* list_match - name against pattern ('*' anything, '%' no separator) */
static bool
list_match(const char *name, const char *pat)
{
	for (; *pat != '\0'; pat++) {
		if (*pat == '*' || *pat == '%') {
			bool star = *pat == '*';

			pat++;
			for (;;) {
				if (list_match(name, pat))
					return true;
				if (*name == '\0' || (!star && *name == '/'))
					return false;
				name++;
			}
		}
		if (*name != *pat)
			return false;
		name++;
	}
	return *name == '\0';
}

/* list_pattern_name - reference + pattern in store form; INBOX folded */
static void
list_pattern(struct imapd_session *sess, const struct str *ref,
    const struct str *pat, struct str *out)
{
	struct str *t = str_new(0, 0), *u = str_new(0, 0);
	size_t i;

	str_append_str(t, ref);
	str_append_str(t, pat);
	if (sess->utf8 || imap_utf7_to_utf8(str_c(t), str_len(t), u) < 0)
		str_set(u, str_c(t), str_len(t));
	str_clear(out);
	for (i = 0; i < str_len(u); i++) {
		char ch = str_c(u)[i];

		if (imapd_settings.sep != '/' && ch == imapd_settings.sep)
			ch = '/';
		str_append_c(out, ch);
	}
	if (strncasecmp(str_c(out), "INBOX", 5) == 0 &&
	    (str_len(out) == 5 || str_c(out)[5] == '/'))
		memcpy(str_data(out), "INBOX", 5);
	str_free(&t);
	str_free(&u);
}

static void
write_attrs(struct str *out, unsigned attrs, unsigned ret, bool lsub)
{
	static const struct {
		unsigned bit;
		const char *name;
	} su[] = {
		{ STORE_MBOX_DRAFTS, "\\Drafts" }, { STORE_MBOX_SENT, "\\Sent" },
		{ STORE_MBOX_TRASH, "\\Trash" }, { STORE_MBOX_JUNK, "\\Junk" },
		{ STORE_MBOX_ARCHIVE, "\\Archive" },
		{ STORE_MBOX_ALL_MAIL, "\\All" },
		{ STORE_MBOX_FLAGGED, "\\Flagged" },
	};
	size_t i, n = 0;

	str_append_c(out, '(');
	if ((attrs & STORE_MBOX_NONEXISTENT) != 0) {
		str_append_cstr(out, lsub ? "\\Noselect" : "\\NonExistent");
		n++;
	}
	if ((ret & LIST_RET_SUBSCRIBED) != 0 && (attrs & STORE_MBOX_SUBSCRIBED)) {
		str_append_cstr(out, n++ ? " \\Subscribed" : "\\Subscribed");
	}
	if (!lsub && (attrs & STORE_MBOX_NONEXISTENT) == 0) {
		str_append_cstr(out, n++ ? " " : "");
		str_append_cstr(out, (attrs & STORE_MBOX_HASCHILDREN) ?
		    "\\HasChildren" : "\\HasNoChildren");
	}
	if (!lsub)
		for (i = 0; i < N_ELEMENTS(su); i++)
			if ((attrs & su[i].bit) != 0) {
				str_append_cstr(out, n++ ? " " : "");
				str_append_cstr(out, su[i].name);
			}
	str_append_c(out, ')');
}

/*
 * list_shared - the LIST replies for the shared namespace: "Shared" and
 * the list archives the user may read (never subscribed, no special use)
 */
static void
list_shared(struct imapd_session *sess, const struct str *ref,
    struct str *const *pats, size_t npats, unsigned ret,
    const char *status_items, size_t status_n, struct str *full)
{
	char **names;
	size_t n, i, j;
	bool match = false;

	/* LIST "" "INBOX" and the like need no look at the lists */
	for (j = 0; j < npats && !match; j++) {
		const char *p, *s = "Shared/";

		list_pattern(sess, ref, pats[j], full);
		for (p = str_c(full); *p != '\0' && *p != '*' && *p != '%' &&
		    *s != '\0' && *p == *s; p++, s++)
			;
		match = *p == '\0' || *p == '*' || *p == '%' || *s == '\0';
	}
	if (!match)
		return;
	names = imapd_shared_names(sess, &n);
	for (i = 0; i <= n && n > 0; i++) {
		const char *name = i == 0 ? "Shared" : names[i - 1];

		match = false;
		for (j = 0; j < npats && !match; j++) {
			list_pattern(sess, ref, pats[j], full);
			match = list_match(name, str_c(full));
		}
		if (!match)
			continue;
		str_printf(sess->out, "* LIST (%s) \"%c\" ", i == 0 ?
		    "\\Noselect \\HasChildren" : "\\HasNoChildren",
		    imapd_settings.sep);
		imap_write_mailbox(sess->out, name, imapd_settings.sep,
		    sess->utf8);
		str_append_cstr(sess->out, "\r\n");
		if (i > 0 && (ret & LIST_RET_STATUS)) {
			struct str *line = str_new(0, 0);

			str_append_cstr(line, "* STATUS ");
			imap_write_mailbox(line, name, imapd_settings.sep,
			    sess->utf8);
			str_append_c(line, ' ');
			if (imapd_status_write(sess, name, status_items,
			    status_n, line)) {
				str_append_cstr(line, "\r\n");
				str_append_str(sess->out, line);
			}
			str_free(&line);
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* imapd_status_write - see imapd.h */
bool
imapd_status_write(struct imapd_session *sess, const char *name,
    const char *items, size_t n, struct str *out)
{
	struct imap_parser ip;
	struct store_status st;
	struct str *a = str_new(0, 0);
	struct store *shared = NULL;
	const char *err;
	size_t k = 0;
	bool ok = false;

	if (imapd_shared_name(name)) {
		/* a list archive the user may read, else NONEXISTENT */
		if ((shared = imapd_shared_open(sess, name)) == NULL) {
			sess->ip.error = "Mailbox doesn't exist";
			goto out;
		}
		if (store_mailbox_status(shared, "INBOX", &st, &err) < 0) {
			sess->ip.error = err;
			goto out;
		}
		st.unseen = st.messages;	/* no flags are kept */
	} else if (store_mailbox_status(sess->store, name, &st, &err) < 0) {
		sess->ip.error = err;
		goto out;
	}
	imap_parser_init(&ip, items, n);
	str_append_c(out, '(');
	while (ip.pos < ip.n) {
		if (!imap_parse_atom(&ip, a, false))
			goto out;
		if (k++ > 0)
			str_append_c(out, ' ');
		if (strcasecmp(str_c(a), "MESSAGES") == 0)
			str_printf(out, "MESSAGES %u", st.messages);
		else if (strcasecmp(str_c(a), "RECENT") == 0)
			str_printf(out, "RECENT %u", st.recent);
		else if (strcasecmp(str_c(a), "UIDNEXT") == 0)
			str_printf(out, "UIDNEXT %u", st.uidnext);
		else if (strcasecmp(str_c(a), "UIDVALIDITY") == 0)
			str_printf(out, "UIDVALIDITY %u", st.uidvalidity);
		else if (strcasecmp(str_c(a), "UNSEEN") == 0)
			str_printf(out, "UNSEEN %u", st.unseen);
		else if (strcasecmp(str_c(a), "DELETED") == 0)
			str_printf(out, "DELETED %u", st.deleted);
		else if (strcasecmp(str_c(a), "SIZE") == 0)
			str_printf(out, "SIZE %llu", (unsigned long long)st.size);
		else if (strcasecmp(str_c(a), "HIGHESTMODSEQ") == 0) {
			str_printf(out, "HIGHESTMODSEQ %llu",
			    (unsigned long long)st.highestmodseq);
			sess->condstore = true;
		} else if (strcasecmp(str_c(a), "APPENDLIMIT") == 0)
			str_printf(out, "APPENDLIMIT %llu",
			    (unsigned long long)imapd_settings.append_max);
		else {
			sess->ip.error = "Unknown STATUS item";
			goto out;
		}
		if (ip.pos < ip.n && !imap_parse_sp(&ip))
			goto out;
	}
	str_append_c(out, ')');
	ok = true;
out:
	store_free(&shared);
	str_free(&a);
	return ok;
}

/* parse_status_items - "(MESSAGES UNSEEN)": the bytes between the parens */
static bool
parse_paren_span(struct imap_parser *ip, const char **p_r, size_t *n_r)
{
	size_t start;

	if (!imap_parse_char(ip, '('))
		return false;
	start = ip->pos;
	while (ip->pos < ip->n && ip->p[ip->pos] != ')' && ip->p[ip->pos] != '(')
		ip->pos++;
	if (!imap_parse_char(ip, ')'))
		return false;
	*p_r = ip->p + start;
	*n_r = ip->pos - 1 - start;
	return true;
}

void
imapd_cmd_status(struct imapd_session *sess)
{
	struct str *name = str_new(0, 0), *line = str_new(0, 0);
	const char *items;
	size_t n;

	if (!imap_parse_sp(&sess->ip) || !imapd_parse_mailbox(sess, name) ||
	    !imap_parse_sp(&sess->ip) ||
	    !parse_paren_span(&sess->ip, &items, &n) || n == 0 ||
	    !imap_parse_end(&sess->ip)) {
		sess->errors++;
		imapd_reply(sess, "BAD %s", sess->ip.error != NULL ?
		    sess->ip.error : "Invalid arguments");
		goto out;
	}
	str_append_cstr(line, "* STATUS ");
	imap_write_mailbox(line, str_c(name), imapd_settings.sep, sess->utf8);
	str_append_c(line, ' ');
	if (!imapd_status_write(sess, str_c(name), items, n, line)) {
		if (store_error(sess->store) == STORE_ERR_NOTFOUND ||
		    imapd_shared_name(str_c(name)))
			imapd_reply(sess, "NO [NONEXISTENT] Mailbox doesn't exist");
		else
			imapd_reply(sess, "BAD %s", sess->ip.error);
		goto out;
	}
	str_append_cstr(line, "\r\n");
	str_append_str(sess->out, line);
	imapd_reply(sess, "OK Status completed.");
out:
	str_free(&name);
	str_free(&line);
}

/* parse_list_mailbox - list-mailbox: 1*list-char / string */
static bool
parse_list_mailbox(struct imap_parser *ip, struct str *out)
{
	size_t start = ip->pos;

	if (imap_parse_peek(ip, '"') || imap_parse_peek(ip, '{'))
		return imap_parse_string(ip, out);
	while (ip->pos < ip->n) {
		unsigned char c = (unsigned char)ip->p[ip->pos];

		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' ||
		    c == '"' || c == '\\')
			break;
		ip->pos++;
	}
	if (ip->pos == start) {
		ip->error = "Missing mailbox pattern";
		return false;
	}
	str_set(out, ip->p + start, ip->pos - start);
	return true;
}

void
imapd_cmd_list(struct imapd_session *sess, bool lsub)
{
	struct imap_parser *ip = &sess->ip;
	struct str *ref = str_new(0, 0), *pat = str_new(0, 0),
	    *a = str_new(0, 0), *full = str_new(0, 0);
	struct str **pats = NULL;
	struct store_mailbox_info *list = NULL;
	size_t npats = 0, count = 0, i, j;
	unsigned sel = 0, ret = 0;
	const char *status_items = NULL, *err;
	size_t status_n = 0;

	if (!imap_parse_sp(ip))
		goto bad;
	if (!lsub && imap_parse_peek(ip, '(')) {
		ip->pos++;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, a, false))
				goto bad;
			if (strcasecmp(str_c(a), "SUBSCRIBED") == 0)
				sel |= LIST_SEL_SUBSCRIBED;
			else if (strcasecmp(str_c(a), "SPECIAL-USE") == 0)
				sel |= LIST_SEL_SPECIAL_USE;
			else if (strcasecmp(str_c(a), "RECURSIVEMATCH") == 0)
				sel |= LIST_SEL_RECURSIVE;
			else if (strcasecmp(str_c(a), "REMOTE") != 0)
				goto bad;
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
		if (!imap_parse_sp(ip))
			goto bad;
		if ((sel & LIST_SEL_RECURSIVE) && sel == LIST_SEL_RECURSIVE)
			goto bad;
	}
	if (!imap_parse_astring(ip, ref) || !imap_parse_sp(ip))
		goto bad;
	if (!lsub && imap_parse_peek(ip, '(')) {
		ip->pos++;
		for (;;) {
			if (!parse_list_mailbox(ip, pat))
				goto bad;
			pats = xreallocarray(pats, npats + 1, sizeof(*pats));
			pats[npats++] = str_new_cstr("");
			str_set(pats[npats - 1], str_c(pat), str_len(pat));
			if (imap_parse_peek(ip, ')'))
				break;
			if (!imap_parse_sp(ip))
				goto bad;
		}
		ip->pos++;
	} else {
		if (!parse_list_mailbox(ip, pat))
			goto bad;
		pats = xreallocarray(pats, 1, sizeof(*pats));
		pats[npats++] = str_new(0, 0);
		str_set(pats[0], str_c(pat), str_len(pat));
	}
	if (!lsub && imap_parse_peek(ip, ' ')) {
		ip->pos++;
		if (!imap_parse_atom(ip, a, false) ||
		    strcasecmp(str_c(a), "RETURN") != 0 || !imap_parse_sp(ip) ||
		    !imap_parse_char(ip, '('))
			goto bad;
		while (!imap_parse_peek(ip, ')')) {
			if (!imap_parse_atom(ip, a, false))
				goto bad;
			if (strcasecmp(str_c(a), "SUBSCRIBED") == 0)
				ret |= LIST_RET_SUBSCRIBED;
			else if (strcasecmp(str_c(a), "CHILDREN") == 0)
				ret |= LIST_RET_CHILDREN;
			else if (strcasecmp(str_c(a), "SPECIAL-USE") == 0)
				ret |= LIST_RET_SPECIAL_USE;
			else if (strcasecmp(str_c(a), "STATUS") == 0) {
				if (!imap_parse_sp(ip) ||
				    !parse_paren_span(ip, &status_items, &status_n))
					goto bad;
				ret |= LIST_RET_STATUS;
			} else
				goto bad;
			if (imap_parse_peek(ip, ' '))
				ip->pos++;
		}
		ip->pos++;
	}
	if (!imap_parse_end(ip))
		goto bad;
	if (sel & LIST_SEL_SUBSCRIBED)
		ret |= LIST_RET_SUBSCRIBED;

	/* LIST "" "": the hierarchy delimiter */
	if (npats == 1 && str_len(pats[0]) == 0) {
		if (lsub)
			imapd_reply(sess, "OK Lsub completed.");
		else {
			str_printf(sess->out, "* LIST (\\Noselect) \"%c\" \"\"\r\n",
			    imapd_settings.sep);
			imapd_reply(sess, "OK List completed.");
		}
		goto out;
	}
	if (store_mailbox_list(sess->store, &list, &count, &err) < 0) {
		imapd_reply(sess, "NO [SERVERBUG] %s", err);
		goto out;
	}
	for (i = 0; i < count; i++) {
		unsigned attrs = list[i].attrs;
		bool match = false;

		/* the shared namespace hides personal names under it */
		if (imapd_shared_name(list[i].name))
			continue;
		if (lsub || (sel & LIST_SEL_SUBSCRIBED)) {
			if ((attrs & STORE_MBOX_SUBSCRIBED) == 0)
				continue;
		} else if ((attrs & STORE_MBOX_NONEXISTENT) != 0)
			continue;
		if ((sel & LIST_SEL_SPECIAL_USE) &&
		    (attrs & STORE_MBOX_SPECIAL_USE) == 0)
			continue;
		for (j = 0; j < npats && !match; j++) {
			list_pattern(sess, ref, pats[j], full);
			match = list_match(list[i].name, str_c(full));
		}
		if (!match)
			continue;
		str_printf(sess->out, "* %s ", lsub ? "LSUB" : "LIST");
		write_attrs(sess->out, attrs, ret, lsub);
		str_printf(sess->out, " \"%c\" ", imapd_settings.sep);
		imap_write_mailbox(sess->out, list[i].name, imapd_settings.sep,
		    sess->utf8);
		str_append_cstr(sess->out, "\r\n");
		if ((ret & LIST_RET_STATUS) && !(attrs & STORE_MBOX_NONEXISTENT)) {
			struct str *line = str_new(0, 0);

			str_append_cstr(line, "* STATUS ");
			imap_write_mailbox(line, list[i].name, imapd_settings.sep,
			    sess->utf8);
			str_append_c(line, ' ');
			if (imapd_status_write(sess, list[i].name, status_items,
			    status_n, line)) {
				str_append_cstr(line, "\r\n");
				str_append_str(sess->out, line);
			}
			str_free(&line);
		}
	}
	if (!lsub && (sel & (LIST_SEL_SUBSCRIBED | LIST_SEL_SPECIAL_USE)) == 0)
		list_shared(sess, ref, pats, npats, ret, status_items, status_n,
		    full);
	imapd_reply(sess, "OK %s completed.", lsub ? "Lsub" : "List");
	goto out;
bad:
	sess->errors++;
	imapd_reply(sess, "BAD %s", ip->error != NULL ? ip->error :
	    "Invalid arguments");
out:
	if (list != NULL)
		store_mailbox_list_free(&list, count);
	for (i = 0; i < npats; i++)
		str_free(&pats[i]);
	free(pats);
	str_free(&ref);
	str_free(&pat);
	str_free(&a);
	str_free(&full);
}
