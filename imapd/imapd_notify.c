/* SPDX-License-Identifier: MIT */
/*
 * imapd_notify - NOTIFY (RFC 5465) and the inotify watches of IDLE
 *
 * DESCRIPTION
 *	NOTIFY SET [STATUS] event-group... names, per group of mailboxes
 *	(SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED,
 *	SUBTREE names, MAILBOXES names), the events the client wants to
 *	hear about without asking: MessageNew (with a fetch-att list for
 *	the selected mailbox), MessageExpunge, FlagChange, MailboxName and
 *	SubscriptionChange. AnnotationChange and the METADATA events are
 *	refused with NO [BADEVENT (the supported events)], as is any
 *	unknown event. NOTIFY NONE ends notifications.
 *
 *	How changes are seen: one inotify descriptor per session, kept
 *	while NOTIFY is set, watches every mailbox directory (the change
 *	log is written on every append, flag change and expunge: store
 *	DESIGN.md 2.2), the mbox/ directory (a mailbox created) and the
 *	user directory (the mailbox list, replaced by rename on every
 *	create, delete, rename and (un)subscribe). The store makes a
 *	mailbox's directory at its first open, not at its creation, so a
 *	new directory under mbox/ is both watched and checked for changes. On an event imapd
 *	compares what it remembers with the store: the mailbox list (by
 *	UIDVALIDITY, which the store never reuses for a user, so a rename
 *	is told from a delete and a create) for MailboxName and
 *	SubscriptionChange, announced as LIST responses (\NonExistent for a
 *	deleted mailbox, OLDNAME for a rename); and each tracked mailbox's
 *	index header (store_mailbox_status: no message is read) for the
 *	message events, announced as one STATUS (MESSAGES UIDNEXT
 *	UIDVALIDITY UNSEEN, and HIGHESTMODSEQ once CONDSTORE is on). The
 *	selected mailbox gets no STATUS: with SELECTED or SELECTED-DELAYED
 *	its changes go out as EXISTS, EXPUNGE (VANISHED) and FETCH through
 *	imapd_sync(), with the MessageNew fetch-att FETCH for each new
 *	message, and without FlagChange in that group no FETCH for flags
 *	changed by others at all (as Dovecot); without either group it is
 *	updated after commands and in IDLE only, as in RFC 3501 (Dovecot's
 *	default too).
 *
 *	When: notifications are untagged responses, so they go out only
 *	where the server may send those unasked: in IDLE, and between
 *	commands, while imapd waits for the next command (imapd_notify_wait
 *	polls the client and the inotify descriptor). Never while a
 *	command runs: a command's own responses are built and flushed
 *	first. Pipelined input already read means no wait. SELECTED sends
 *	expunges between commands at once; SELECTED-DELAYED keeps them for
 *	the next command that may report them (NOOP, IDLE, ...), as RFC
 *	5465 5.1 asks.
 *
 *	Choices RFC 5465 leaves open, taken as Dovecot does: INBOXES is
 *	every personal mailbox (Sieve can file into any of them); a
 *	mailbox in several groups gets the union of their events; changes
 *	made by this very session are announced too; the shared list
 *	archives ("Shared/...") are never tracked.
 *
 *	Bounds: at most imap_notify_mailbox_limit mailboxes are tracked.
 *	NOTIFY SET naming more, for a user with more, answers NO
 *	[NOTIFICATIONOVERFLOW]; when the user's mailboxes grow past the
 *	limit later, or the kernel refuses an inotify watch, imapd sends
 *	"* OK [NOTIFICATIONOVERFLOW]" and acts as after NOTIFY NONE, so
 *	the state per session stays bounded.
 *
 * SEE ALSO
 *	RFC 5465, imapd(8), lib/store/DESIGN.md
 */
#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"

#include "imapd.h"

#define NEV_NEW		0x01u	/* MessageNew */
#define NEV_EXPUNGE	0x02u	/* MessageExpunge */
#define NEV_FLAG	0x04u	/* FlagChange */
#define NEV_NAME	0x08u	/* MailboxName */
#define NEV_SUBS	0x10u	/* SubscriptionChange */
#define NEV_MESSAGE	(NEV_NEW | NEV_EXPUNGE | NEV_FLAG)

#define NOTIFY_SUPPORTED \
	"MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"

/* what every watched mailbox directory reports */
#define NOTIFY_MBOX_MASK \
	(IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF)

enum notify_filter {
	NF_SELECTED,
	NF_SELECTED_DELAYED,
	NF_INBOXES,
	NF_PERSONAL,
	NF_SUBSCRIBED,
	NF_SUBTREE,
	NF_MAILBOXES,
};

/* One event group; names as the client sent them until notify_set(). */
struct notify_group {
	enum notify_filter filter;
	unsigned events;
	struct str **names;
	size_t nnames;
};

/* A parsed NOTIFY command. */
struct notify_spec {
	bool none;		/* NOTIFY NONE */
	bool status;		/* SET STATUS */
	bool badevent;		/* an unsupported event was named */
	bool have_selected;
	bool selected_delayed;
	unsigned sel_events;
	struct imapd_fetch_atts *fetch;	/* MessageNew fetch-att, or NULL */
	struct notify_group *groups;	/* the other groups */
	size_t ngroups;
	size_t nnames;		/* in all groups */
};

/* One mailbox of the list as last seen. */
struct notify_mbox {
	char *name;
	unsigned attrs;		/* STORE_MBOX_* */
	uint32_t uidvalidity;	/* 0: a subscribed name only */
	bool have_status;
	struct store_status st;
};

struct imapd_notify {
	struct notify_spec spec;
	int fd;			/* inotify */
	int wd_user, wd_mbox;
	struct notify_mbox *list;
	size_t nlist;
	uint32_t sel_last_uid;	/* the selected mailbox: announced up to */
};

/* ---------------------------------------------------------------- parsing */

static void
notify_spec_free(struct notify_spec *spec)
{
	size_t i, j;

	for (i = 0; i < spec->ngroups; i++) {
		for (j = 0; j < spec->groups[i].nnames; j++)
			str_free(&spec->groups[i].names[j]);
		free(spec->groups[i].names);
	}
	free(spec->groups);
	imapd_fetch_atts_free(&spec->fetch);
	memset(spec, 0, sizeof(*spec));
}

/* parse_event - one event name into its bit; 0 for one not supported */
static unsigned
parse_event(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} ev[] = {
		{ "MessageNew", NEV_NEW }, { "MessageExpunge", NEV_EXPUNGE },
		{ "FlagChange", NEV_FLAG }, { "MailboxName", NEV_NAME },
		{ "SubscriptionChange", NEV_SUBS },
	};
	size_t i;

	for (i = 0; i < N_ELEMENTS(ev); i++)
		if (strcasecmp(name, ev[i].name) == 0)
			return ev[i].bit;
	return 0;
}

/*
 * parse_events - "NONE" or "(" event *(SP event) ")" into *events_r;
 * fetch-att after MessageNew only when selected (into spec->fetch)
 */
static bool
parse_events(struct imapd_session *sess, struct notify_spec *spec,
    bool selected, unsigned *events_r)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	unsigned bit;
	bool ok = false;

	*events_r = 0;
	if (!imap_parse_peek(ip, '(')) {
		if (imap_parse_atom(ip, a, false) &&
		    strcasecmp(str_c(a), "NONE") == 0)
			ok = true;
		else
			ip->error = "Expected NONE or an event list";
		goto out;
	}
	ip->pos++;
	for (;;) {
		if (!imap_parse_atom(ip, a, false))
			goto out;
		bit = parse_event(str_c(a));
		if (bit == 0)
			spec->badevent = true;
		*events_r |= bit;
		if (bit == NEV_NEW && ip->pos + 1 < ip->n &&
		    ip->p[ip->pos] == ' ' && ip->p[ip->pos + 1] == '(') {
			if (!selected) {
				ip->error = "MessageNew fetch attributes are "
				    "for the selected mailbox only";
				goto out;
			}
			if (spec->fetch != NULL) {
				ip->error = "Duplicate MessageNew";
				goto out;
			}
			ip->pos++;
			if ((spec->fetch = imapd_fetch_atts_parse(sess)) == NULL)
				goto out;
		}
		if (imap_parse_peek(ip, ')'))
			break;
		if (!imap_parse_sp(ip))
			goto out;
	}
	ip->pos++;
	/* RFC 5465 5.2-5.4 */
	if ((*events_r & (NEV_NEW | NEV_EXPUNGE)) != 0 &&
	    (*events_r & (NEV_NEW | NEV_EXPUNGE)) != (NEV_NEW | NEV_EXPUNGE)) {
		ip->error = "MessageNew and MessageExpunge must be together";
		goto out;
	}
	if ((*events_r & NEV_FLAG) != 0 && (*events_r & NEV_NEW) == 0) {
		ip->error = "FlagChange requires MessageNew and MessageExpunge";
		goto out;
	}
	ok = true;
out:
	str_free(&a);
	return ok;
}

/* parse_names - one-or-more-mailbox: a mailbox, or a list of them */
static bool
parse_names(struct imap_parser *ip, struct notify_spec *spec,
    struct notify_group *g)
{
	bool list = imap_parse_peek(ip, '(');

	if (list)
		ip->pos++;
	for (;;) {
		struct str *name = str_new(0, 0);

		if (!imap_parse_astring(ip, name)) {
			str_free(&name);
			return false;
		}
		g->names = xreallocarray(g->names, g->nnames + 1,
		    sizeof(*g->names));
		g->names[g->nnames++] = name;
		spec->nnames++;
		if (!list || imap_parse_peek(ip, ')'))
			break;
		if (!imap_parse_sp(ip))
			return false;
	}
	if (list)
		ip->pos++;
	return true;
}

/*
 * notify_parse - the arguments of NOTIFY at sess->ip into spec (freed
 * by the caller either way); false with ip->error for a BAD
 */
static bool
notify_parse(struct imapd_session *sess, struct notify_spec *spec)
{
	struct imap_parser *ip = &sess->ip;
	struct str *a = str_new(0, 0);
	bool ok = false;

	memset(spec, 0, sizeof(*spec));
	if (!imap_parse_sp(ip) || !imap_parse_atom(ip, a, false))
		goto out;
	if (strcasecmp(str_c(a), "NONE") == 0) {
		spec->none = true;
		ok = imap_parse_end(ip);
		goto out;
	}
	if (strcasecmp(str_c(a), "SET") != 0) {
		ip->error = "Expected SET or NONE";
		goto out;
	}
	if (!imap_parse_sp(ip))
		goto out;
	if (!imap_parse_peek(ip, '(')) {
		if (!imap_parse_atom(ip, a, false) ||
		    strcasecmp(str_c(a), "STATUS") != 0 || !imap_parse_sp(ip)) {
			ip->error = "Expected STATUS or an event group";
			goto out;
		}
		spec->status = true;
	}
	for (;;) {
		enum notify_filter f;
		unsigned events;

		if (!imap_parse_char(ip, '(') || !imap_parse_atom(ip, a, false))
			goto out;
		if (strcasecmp(str_c(a), "SELECTED") == 0)
			f = NF_SELECTED;
		else if (strcasecmp(str_c(a), "SELECTED-DELAYED") == 0)
			f = NF_SELECTED_DELAYED;
		else if (strcasecmp(str_c(a), "INBOXES") == 0)
			f = NF_INBOXES;
		else if (strcasecmp(str_c(a), "PERSONAL") == 0)
			f = NF_PERSONAL;
		else if (strcasecmp(str_c(a), "SUBSCRIBED") == 0)
			f = NF_SUBSCRIBED;
		else if (strcasecmp(str_c(a), "SUBTREE") == 0)
			f = NF_SUBTREE;
		else if (strcasecmp(str_c(a), "MAILBOXES") == 0)
			f = NF_MAILBOXES;
		else {
			ip->error = "Unknown mailbox filter";
			goto out;
		}
		if (!imap_parse_sp(ip))
			goto out;
		if (f == NF_SELECTED || f == NF_SELECTED_DELAYED) {
			if (spec->have_selected) {
				ip->error = "Duplicate selected filter";
				goto out;
			}
			spec->have_selected = true;
			spec->selected_delayed = f == NF_SELECTED_DELAYED;
			if (!parse_events(sess, spec, true, &spec->sel_events))
				goto out;
		} else {
			struct notify_group *g;

			spec->groups = xreallocarray(spec->groups,
			    spec->ngroups + 1, sizeof(*spec->groups));
			g = &spec->groups[spec->ngroups++];
			memset(g, 0, sizeof(*g));
			g->filter = f;
			if ((f == NF_SUBTREE || f == NF_MAILBOXES) &&
			    (!parse_names(ip, spec, g) || !imap_parse_sp(ip)))
				goto out;
			if (!parse_events(sess, spec, false, &events))
				goto out;
			g->events = events;
		}
		if (!imap_parse_char(ip, ')'))
			goto out;
		if (imap_parse_end(ip))
			break;
		ip->error = NULL;
		if (!imap_parse_sp(ip))
			goto out;
	}
	ok = true;
out:
	str_free(&a);
	return ok;
}

/* ---------------------------------------------------------------- watches */

/* imapd_notify_watch - see imapd.h */
int
imapd_notify_watch(struct imapd_session *sess, int fd, unsigned mask,
    size_t *n_r)
{
	struct str *path = str_new(0, 0);
	struct dirent *de;
	size_t n = 0;
	int ret = 0, saved = 0;
	DIR *d;

	/* XXX: knows the store layout (DESIGN.md 2): <user>/mbox/<id>/log */
	str_printf(path, "%s/%s/mbox", imapd_settings.store_dir, sess->user);
	if ((d = opendir(str_c(path))) != NULL) {
		size_t base = str_len(path);

		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			str_truncate(path, base);
			str_printf(path, "/%s", de->d_name);
			n++;
			if (inotify_add_watch(fd, str_c(path), mask) < 0 &&
			    errno != ENOENT) {
				ret = -1;
				saved = errno;
			}
		}
		closedir(d);
	}
	str_free(&path);
	if (n_r != NULL)
		*n_r = n;
	errno = saved;
	return ret;
}

/* ---------------------------------------------------------------- state */

static void
notify_list_free(struct notify_mbox **listp, size_t n)
{
	size_t i;

	for (i = 0; i < n && *listp != NULL; i++)
		free((*listp)[i].name);
	free(*listp);
	*listp = NULL;
}

/* imapd_notify_free - see imapd.h */
void
imapd_notify_free(struct imapd_notify **np)
{
	struct imapd_notify *n = *np;

	if (n == NULL)
		return;
	if (n->fd >= 0)
		close(n->fd);
	notify_list_free(&n->list, n->nlist);
	notify_spec_free(&n->spec);
	free(n);
	*np = NULL;
}

/* imapd_notify_fd - see imapd.h */
int
imapd_notify_fd(const struct imapd_session *sess)
{
	return sess->notify != NULL ? sess->notify->fd : -1;
}

/* group_matches - mailbox name (with its list attrs) is in group g */
static bool
group_matches(const struct notify_group *g, const char *name, unsigned attrs)
{
	size_t i, len;

	switch (g->filter) {
	case NF_INBOXES:
	case NF_PERSONAL:
		return true;
	case NF_SUBSCRIBED:
		return (attrs & STORE_MBOX_SUBSCRIBED) != 0;
	case NF_SUBTREE:
	case NF_MAILBOXES:
		for (i = 0; i < g->nnames; i++) {
			len = str_len(g->names[i]);
			if (strcmp(name, str_c(g->names[i])) == 0)
				return true;
			if (g->filter == NF_SUBTREE &&
			    strncmp(name, str_c(g->names[i]), len) == 0 &&
			    name[len] == '/')
				return true;
		}
		return false;
	case NF_SELECTED:
	case NF_SELECTED_DELAYED:
		break;
	}
	return false;
}

/* events_for - the events wanted for name: the union of its groups */
static unsigned
events_for(const struct imapd_notify *n, const char *name, unsigned attrs)
{
	unsigned ev = 0;
	size_t i;

	for (i = 0; i < n->spec.ngroups; i++)
		if (group_matches(&n->spec.groups[i], name, attrs))
			ev |= n->spec.groups[i].events;
	return ev;
}

/* imapd_notify_flag_changes - see imapd.h */
bool
imapd_notify_flag_changes(const struct imapd_session *sess)
{
	return sess->notify == NULL || !sess->notify->spec.have_selected ||
	    (sess->notify->spec.sel_events & NEV_FLAG) != 0;
}

/* is_selected - name is the mailbox selected from the user's own store */
static bool
is_selected(const struct imapd_session *sess, const char *name)
{
	return sess->box != NULL && sess->box_store == NULL &&
	    strcmp(store_mailbox_name(sess->box), name) == 0;
}

/* write_list - the untagged LIST of MailboxName and SubscriptionChange */
static void
write_list(struct imapd_session *sess, const char *name, unsigned attrs,
    const char *oldname)
{
	bool sp = false;

	str_append_cstr(sess->out, "* LIST (");
	if ((attrs & STORE_MBOX_NONEXISTENT) != 0) {
		str_append_cstr(sess->out, "\\NonExistent");
		sp = true;
	}
	if ((attrs & STORE_MBOX_SUBSCRIBED) != 0)
		str_append_cstr(sess->out, sp ? " \\Subscribed" : "\\Subscribed");
	str_append_cstr(sess->out, ") \"");
	str_append_c(sess->out, imapd_settings.sep);
	str_append_cstr(sess->out, "\" ");
	imap_write_mailbox(sess->out, name, imapd_settings.sep, sess->utf8);
	if (oldname != NULL) {
		struct str *w = str_new(0, 0);

		/* OLDNAME's value is an astring: the name as LIST writes it */
		imap_write_mailbox(w, oldname, imapd_settings.sep, sess->utf8);
		str_append_cstr(sess->out, " (\"OLDNAME\" (");
		str_append_str(sess->out, w);
		str_append_cstr(sess->out, "))");
		str_free(&w);
	}
	str_append_cstr(sess->out, "\r\n");
}

/* write_status - "* STATUS name (...)" from st */
static void
write_status(struct imapd_session *sess, const char *name,
    const struct store_status *st)
{
	str_append_cstr(sess->out, "* STATUS ");
	imap_write_mailbox(sess->out, name, imapd_settings.sep, sess->utf8);
	str_printf(sess->out, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u "
	    "UNSEEN %u", st->messages, st->uidnext, st->uidvalidity,
	    st->unseen);
	if (sess->condstore)
		str_printf(sess->out, " HIGHESTMODSEQ %llu",
		    (unsigned long long)st->highestmodseq);
	str_append_cstr(sess->out, ")\r\n");
}

/* overflow - NOTIFICATIONOVERFLOW: from now on as after NOTIFY NONE */
static void
overflow(struct imapd_session *sess, const char *why)
{
	log_warn(&sess->c->log, "NOTIFY: %s; notifications stopped", why);
	str_append_cstr(sess->out, "* OK [NOTIFICATIONOVERFLOW] Too many "
	    "changes to track; NOTIFY is off\r\n");
	imapd_notify_free(&sess->notify);
}

static int
cmp_mbox_uidvalidity(const void *a, const void *b)
{
	const struct notify_mbox *x = *(const struct notify_mbox *const *)a,
	    *y = *(const struct notify_mbox *const *)b;

	return x->uidvalidity < y->uidvalidity ? -1 :
	    x->uidvalidity > y->uidvalidity;
}

static int
cmp_mbox_name(const void *a, const void *b)
{
	const struct notify_mbox *x = *(const struct notify_mbox *const *)a,
	    *y = *(const struct notify_mbox *const *)b;

	return strcmp(x->name, y->name);
}

/* index_by - pointers to list[0..n) sorted by cmp */
static struct notify_mbox **
index_by(struct notify_mbox *list, size_t n,
    int (*cmp)(const void *, const void *))
{
	struct notify_mbox **v = xcalloc(n + 1, sizeof(*v));
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = &list[i];
	qsort(v, n, sizeof(*v), cmp);
	return v;
}

static struct notify_mbox *
find_in(struct notify_mbox **v, size_t n, const struct notify_mbox *key,
    int (*cmp)(const void *, const void *))
{
	struct notify_mbox **r = bsearch(&key, v, n, sizeof(*v), cmp);

	return r != NULL ? *r : NULL;
}

/*
 * diff_lists - MailboxName and SubscriptionChange notifications for the
 * change from old[0..nold) to new[0..nnew)
 */
static void
diff_lists(struct imapd_session *sess, struct notify_mbox *old, size_t nold,
    struct notify_mbox *new, size_t nnew)
{
	struct imapd_notify *n = sess->notify;
	struct notify_mbox **old_uv = index_by(old, nold, cmp_mbox_uidvalidity),
	    **new_uv = index_by(new, nnew, cmp_mbox_uidvalidity),
	    **old_nm = index_by(old, nold, cmp_mbox_name),
	    **new_nm = index_by(new, nnew, cmp_mbox_name), *m;
	size_t i;

	for (i = 0; i < nold; i++) {
		struct notify_mbox *o = &old[i];

		if (o->uidvalidity == 0)
			continue;
		m = find_in(new_uv, nnew, o, cmp_mbox_uidvalidity);
		if (m == NULL) {
			if ((events_for(n, o->name, o->attrs) & NEV_NAME) != 0)
				write_list(sess, o->name, STORE_MBOX_NONEXISTENT |
				    (o->attrs & STORE_MBOX_SUBSCRIBED), NULL);
		} else if (strcmp(m->name, o->name) != 0 &&
		    ((events_for(n, o->name, o->attrs) |
		    events_for(n, m->name, m->attrs)) & NEV_NAME) != 0)
			write_list(sess, m->name, m->attrs, o->name);
	}
	for (i = 0; i < nnew; i++) {
		struct notify_mbox *w = &new[i];

		if (w->uidvalidity != 0 &&
		    find_in(old_uv, nold, w, cmp_mbox_uidvalidity) == NULL &&
		    (events_for(n, w->name, w->attrs) & NEV_NAME) != 0) {
			/* created: its LIST shows the subscription too */
			write_list(sess, w->name, w->attrs, NULL);
			continue;
		}
		/* SUBSCRIBED matches a name on either side of the change */
		m = find_in(old_nm, nold, w, cmp_mbox_name);
		if ((m != NULL ? m->attrs & STORE_MBOX_SUBSCRIBED : 0) !=
		    (w->attrs & STORE_MBOX_SUBSCRIBED) &&
		    ((events_for(n, w->name, w->attrs | STORE_MBOX_SUBSCRIBED) &
		    NEV_SUBS) != 0))
			write_list(sess, w->name, w->attrs, NULL);
	}
	/*
	 * A subscribed name without a mailbox, unsubscribed (a mailbox
	 * that went away was deleted or renamed: MailboxName tells).
	 */
	for (i = 0; i < nold; i++) {
		struct notify_mbox *o = &old[i];

		if (o->uidvalidity == 0 &&
		    (o->attrs & STORE_MBOX_SUBSCRIBED) != 0 &&
		    find_in(new_nm, nnew, o, cmp_mbox_name) == NULL &&
		    (events_for(n, o->name, o->attrs) & NEV_SUBS) != 0)
			write_list(sess, o->name, STORE_MBOX_NONEXISTENT, NULL);
	}
	free(old_uv);
	free(new_uv);
	free(old_nm);
	free(new_nm);
}

/*
 * load_list - read the mailbox list into n->list, carrying the status
 * of mailboxes seen before; announce name and subscription changes
 * when announce. -1 after an overflow (sess->notify is gone) or a store
 * error (logged; the old list stays).
 */
static int
load_list(struct imapd_session *sess, bool announce)
{
	struct imapd_notify *n = sess->notify;
	struct store_mailbox_info *info = NULL;
	struct notify_mbox *list, **old_uv;
	size_t count = 0, i;
	const char *err;

	if (store_mailbox_list(sess->store, &info, &count, &err) < 0) {
		log_error(&sess->c->log, "NOTIFY: mailbox list: %s", err);
		return -1;
	}
	if (count > imapd_settings.notify_mailbox_limit) {
		store_mailbox_list_free(&info, count);
		overflow(sess, "more mailboxes than imap_notify_mailbox_limit");
		return -1;
	}
	list = xcalloc(count + 1, sizeof(*list));
	for (i = 0; i < count; i++) {
		list[i].name = xstrdup(info[i].name);
		list[i].attrs = info[i].attrs;
		list[i].uidvalidity = (info[i].attrs &
		    STORE_MBOX_NONEXISTENT) != 0 ? 0 : info[i].uidvalidity;
	}
	store_mailbox_list_free(&info, count);
	old_uv = index_by(n->list, n->nlist, cmp_mbox_uidvalidity);
	for (i = 0; i < count; i++) {
		struct notify_mbox *o;

		if (list[i].uidvalidity == 0)
			continue;
		o = find_in(old_uv, n->nlist, &list[i], cmp_mbox_uidvalidity);
		if (o != NULL && o->have_status) {
			list[i].have_status = true;
			list[i].st = o->st;
		} else if (o == NULL && announce) {
			/*
			 * Created since: compared with an empty mailbox, so
			 * mail that arrived before this look is still new.
			 */
			list[i].have_status = true;
			list[i].st.uidvalidity = list[i].uidvalidity;
			list[i].st.uidnext = 1;
		}
	}
	free(old_uv);
	if (announce)
		diff_lists(sess, n->list, n->nlist, list, count);
	notify_list_free(&n->list, n->nlist);
	n->list = list;
	n->nlist = count;
	return 0;
}

/*
 * check_status - the STATUS of every tracked mailbox whose counts moved
 * (all of them with force: SET STATUS); the selected one is left out
 */
static void
check_status(struct imapd_session *sess, bool force)
{
	struct imapd_notify *n = sess->notify;
	struct store_status st;
	const char *err;
	unsigned ev;
	size_t i;

	for (i = 0; i < n->nlist; i++) {
		struct notify_mbox *m = &n->list[i];
		bool send;

		if (m->uidvalidity == 0)
			continue;
		ev = events_for(n, m->name, m->attrs);
		if ((ev & NEV_MESSAGE) == 0) {
			m->have_status = false;
			continue;
		}
		if (store_mailbox_status(sess->store, m->name, &st, &err) < 0) {
			/* deleted meanwhile: MailboxName tells */
			if (store_error(sess->store) != STORE_ERR_NOTFOUND)
				log_warn(&sess->c->log, "NOTIFY: status of "
				    "mailbox: %s", err);
			continue;
		}
		send = force;
		if (m->have_status) {
			if (st.uidvalidity != m->st.uidvalidity ||
			    st.messages != m->st.messages ||
			    st.uidnext != m->st.uidnext)
				send = true;
			if ((ev & NEV_FLAG) != 0 &&
			    (st.unseen != m->st.unseen ||
			    st.highestmodseq != m->st.highestmodseq))
				send = true;
		}
		m->have_status = true;
		m->st = st;
		if (send && !is_selected(sess, m->name))
			write_status(sess, m->name, &st);
	}
}

/* last_uid - the highest UID in the selected mailbox's view */
static uint32_t
last_uid(const struct imapd_session *sess)
{
	uint32_t count = store_mailbox_count(sess->box);

	return count > 0 ? store_msg_uid(sess->box, count) : 0;
}

/* imapd_notify_selected - see imapd.h */
void
imapd_notify_selected(struct imapd_session *sess)
{
	if (sess->notify != NULL && sess->box != NULL)
		sess->notify->sel_last_uid = last_uid(sess);
}

/*
 * check_selected - the selected mailbox's changes (SELECTED or
 * SELECTED-DELAYED with events), then the MessageNew FETCH of each
 * message new in the view since the last one announced
 */
static void
check_selected(struct imapd_session *sess, bool idle)
{
	struct imapd_notify *n = sess->notify;
	uint32_t count, seq;

	if (sess->box == NULL || !n->spec.have_selected ||
	    (n->spec.sel_events & NEV_MESSAGE) == 0)
		return;
	imapd_sync(sess, idle || !n->spec.selected_delayed, NULL, 0);
	if (sess->box == NULL || sess->done)
		return;
	count = store_mailbox_count(sess->box);
	if (n->spec.fetch != NULL) {
		/* new messages are at the end of the view */
		for (seq = count; seq > 0 &&
		    store_msg_uid(sess->box, seq) > n->sel_last_uid; seq--)
			;
		for (seq++; seq <= count; seq++)
			imapd_fetch_atts_write(sess, n->spec.fetch, seq);
	}
	n->sel_last_uid = last_uid(sess);
}

/* imapd_notify_check - see imapd.h */
void
imapd_notify_check(struct imapd_session *sess, bool idle)
{
	struct imapd_notify *n = sess->notify;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool list = false, rescan = false, other = false;
	ssize_t got;

	if (n == NULL)
		return;
	while ((got = read(n->fd, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		while (off + sizeof(struct inotify_event) <= (size_t)got) {
			const struct inotify_event *ev =
			    (const struct inotify_event *)(buf + off);

			if ((ev->mask & IN_Q_OVERFLOW) != 0)
				list = rescan = other = true;
			else if (ev->wd == n->wd_user)
				list = true;
			else if (ev->wd == n->wd_mbox)
				/*
				 * a mailbox directory appeared: the store makes
				 * one at the mailbox's first open, which may be
				 * a delivery that changed it before we watched
				 */
				rescan = other = true;
			else
				other = true;
			off += sizeof(*ev) + ev->len;
		}
	}
	if (rescan && imapd_notify_watch(sess, n->fd, NOTIFY_MBOX_MASK,
	    NULL) < 0 && errno == ENOSPC) {
		overflow(sess, "no more inotify watches");
		return;
	}
	if (list && load_list(sess, true) < 0 && sess->notify == NULL)
		return;
	if (list || other)
		check_status(sess, false);
	check_selected(sess, idle);
}

/* imapd_notify_wait - see imapd.h */
bool
imapd_notify_wait(struct imapd_session *sess)
{
	time_t deadline = time(NULL) + imapd_settings.timeout;
	struct pollfd pfd[2];
	int ret;

	for (;;) {
		if (sess->notify == NULL)
			return true;
		imapd_notify_check(sess, false);
		imapd_flush_out(sess);
		if (stream_flush(sess->s) < 0 || sess->done)
			return false;
		if (sess->notify == NULL || stream_pending(sess->s) > 0 ||
		    imapd_compress_pending(sess->zlib))
			return true;
		pfd[0].fd = stream_fd(sess->s);
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = sess->notify->fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		ret = poll(pfd, 2, 1000 * (int)MIN(600, deadline - time(NULL) > 0 ?
		    deadline - time(NULL) : 1));
		if (ret < 0 && errno != EINTR)
			return false;
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
			return true;
		if (time(NULL) >= deadline) {
			stream_puts(sess->s, "* BYE Autologout; idle for too "
			    "long\r\n");
			stream_flush(sess->s);
			sess->done = true;
			return false;
		}
	}
}

/* ---------------------------------------------------------------- command */

/* notify_set - turn spec (names still raw) into the session's NOTIFY */
static void
notify_set(struct imapd_session *sess, struct notify_spec *spec)
{
	struct imapd_notify *n;
	struct str *name = str_new(0, 0);
	size_t i, j;
	bool ok;

	for (i = 0; i < spec->ngroups; i++)
		for (j = 0; j < spec->groups[i].nnames; j++) {
			struct str *raw = spec->groups[i].names[j];

			imapd_mailbox_from_wire(sess, str_c(raw), str_len(raw),
			    name, &ok);
			if (!ok) {
				sess->errors++;
				imapd_reply(sess, "BAD Invalid mailbox name");
				str_free(&name);
				return;
			}
			str_set(raw, str_c(name), str_len(name));
		}
	str_free(&name);
	if (spec->nnames > imapd_settings.notify_mailbox_limit) {
		imapd_reply(sess, "NO [NOTIFICATIONOVERFLOW] Too many mailbox "
		    "names");
		return;
	}
	imapd_notify_free(&sess->notify);
	n = xcalloc(1, sizeof(*n));
	n->spec = *spec;
	memset(spec, 0, sizeof(*spec));
	n->wd_user = n->wd_mbox = -1;
	sess->notify = n;
	if ((n->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		log_warn(&sess->c->log, "NOTIFY: inotify_init1: %m");
		imapd_notify_free(&sess->notify);
		imapd_reply(sess, "NO [NOTIFICATIONOVERFLOW] Cannot watch "
		    "the mail store");
		return;
	}
	{
		struct str *path = str_new(0, 0);

		/* XXX: knows the store layout (DESIGN.md 2) */
		str_printf(path, "%s/%s", imapd_settings.store_dir, sess->user);
		n->wd_user = inotify_add_watch(n->fd, str_c(path), IN_MOVED_TO);
		str_append_cstr(path, "/mbox");
		n->wd_mbox = inotify_add_watch(n->fd, str_c(path), IN_CREATE |
		    IN_MOVED_TO);
		str_free(&path);
	}
	if (n->wd_user < 0 || n->wd_mbox < 0 ||
	    imapd_notify_watch(sess, n->fd, NOTIFY_MBOX_MASK, NULL) < 0) {
		log_warn(&sess->c->log, "NOTIFY: inotify_add_watch: %m");
		imapd_notify_free(&sess->notify);
		imapd_reply(sess, "NO [NOTIFICATIONOVERFLOW] Cannot watch "
		    "the mail store");
		return;
	}
	if (load_list(sess, false) < 0) {
		if (sess->notify == NULL) {
			/* overflow() wrote the untagged OK: make it tagged */
			str_clear(sess->out);
			imapd_reply(sess, "NO [NOTIFICATIONOVERFLOW] Too many "
			    "mailboxes");
		} else {
			imapd_notify_free(&sess->notify);
			imapd_reply(sess, "NO [SERVERBUG] Cannot read the "
			    "mailbox list");
		}
		return;
	}
	/* remember every count now; SET STATUS also sends them */
	check_status(sess, n->spec.status);
	imapd_notify_selected(sess);
	imapd_reply(sess, "OK NOTIFY completed.");
}

/* imapd_cmd_notify - see imapd.h */
void
imapd_cmd_notify(struct imapd_session *sess)
{
	struct notify_spec spec;

	if (!notify_parse(sess, &spec)) {
		sess->errors++;
		imapd_reply(sess, "BAD %s", sess->ip.error != NULL ?
		    sess->ip.error : "Invalid arguments");
	} else if (spec.badevent)
		imapd_reply(sess, "NO [BADEVENT (" NOTIFY_SUPPORTED ")] "
		    "Unsupported NOTIFY event");
	else if (spec.none) {
		imapd_notify_free(&sess->notify);
		imapd_reply(sess, "OK NOTIFY completed.");
	} else
		notify_set(sess, &spec);
	notify_spec_free(&spec);
}
