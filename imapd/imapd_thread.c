/* SPDX-License-Identifier: MIT */
/*
 * imapd_thread - base subjects and the THREAD algorithms of RFC 5256
 *
 * DESCRIPTION
 *	imapd_base_subject() follows RFC 5256 section 2.1 step by step:
 *	RFC 2047 decoding, white space collapsed, "(fwd)" trailers,
 *	"Re:"/"Fw:"/"Fwd:" leaders with their [blob]s, leading [blob]s
 *	and the "[fwd: ...]" wrapper removed, repeated until nothing
 *	matches. The result is case-folded (lib/utf8: Unicode simple
 *	folding), so base subjects compare with strcmp(), and it records
 *	whether anything marked the message as a reply or forward.
 *
 *	ORDEREDSUBJECT groups by base subject; the earliest message of a
 *	group is its parent, the others its children, by sent date.
 *
 *	REFERENCES is section 3's algorithm in full: (1) containers
 *	linked by References (In-Reply-To as a fallback) without loops,
 *	the message's own parent being the last reference; (2) the
 *	parentless under the root; (3) dummies pruned and their children
 *	promoted at every level (at the root only a single child);
 *	(4) the root's children sorted by date; (5) threads merged by
 *	base subject, so "Re: x" whose parent is missing goes under "x"
 *	and two threads of one subject under a new dummy; (6) every set of
 *	siblings sorted by sent date, a dummy by its first child. Dates
 *	tie-break by sequence number. Message-IDs are found through a
 *	hash table, so the cost is linear in the references read.
 *
 * SEE ALSO
 *	RFC 5256, imapd_search.c (which loads the messages).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rfc2047.h"
#include "str.h"
#include "utf8.h"

#include "imapd.h"

/* ---------------------------------------------------------------- base subject */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* skip_blob - subj-blob = "[" *BLOBCHAR "]" *WSP at p; its end or NULL */
static const char *
skip_blob(const char *p, const char *e)
{
	if (p >= e || *p != '[')
		return NULL;
	for (p++; p < e && *p != ']'; p++)
		if (*p == '[')
			return NULL;
	if (p >= e)
		return NULL;
	for (p++; p < e && is_wsp(*p); p++)
		;
	return p;
}

/* skip_refwd - subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static const char *
skip_refwd(const char *p, const char *e)
{
	const char *q;

	if (e - p >= 3 && memcmp(p, "fwd", 3) == 0)
		p += 3;
	else if (e - p >= 2 && (memcmp(p, "re", 2) == 0 ||
	    memcmp(p, "fw", 2) == 0))
		p += 2;
	else
		return NULL;
	while (p < e && is_wsp(*p))
		p++;
	if ((q = skip_blob(p, e)) != NULL)
		p = q;
	if (p >= e || *p != ':')
		return NULL;
	return p + 1;
}

/* imapd_base_subject - see imapd.h */
char *
imapd_base_subject(const char *p, size_t n, bool *reply_r)
{
	struct str *d = str_new(n + 1, 0), *f = str_new(n + 1, 0),
	    *t = str_new(n + 1, 0);
	const char *b, *e, *q;
	bool changed;
	char *r;
	size_t i;

	*reply_r = false;
	/* 1. decoded, folded, one space for every run of white space */
	rfc2047_decode(p, n, d);
	(void)utf8_casefold(str_c(d), str_len(d), f);
	for (i = 0; i < str_len(f); i++) {
		char c = str_c(f)[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && str_len(t) > 0 && str_c(t)[str_len(t) - 1] == ' ')
			continue;
		str_append_c(t, c);
	}
	b = str_c(t);
	e = b + str_len(t);
	for (;;) {
		/* 2. trailers: white space and "(fwd)" */
		for (changed = true; changed; ) {
			changed = false;
			while (e > b && is_wsp(e[-1])) {
				e--;
				changed = true;
			}
			if (e - b >= 5 && memcmp(e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				*reply_r = true;
				changed = true;
			}
		}
		/* 3.-5. leaders: WSP, *subj-blob subj-refwd; then a subj-blob */
		for (changed = true; changed; ) {
			changed = false;
			if (b < e && is_wsp(*b)) {
				b++;
				changed = true;
				continue;
			}
			for (q = b; q != NULL && q < e && *q == '['; )
				if ((q = skip_blob(q, e)) == NULL)
					break;
			if (q != NULL && (q = skip_refwd(q, e)) != NULL) {
				b = q;
				*reply_r = true;
				changed = true;
				continue;
			}
			if ((q = skip_blob(b, e)) != NULL) {
				const char *s = q;

				while (s < e && is_wsp(*s))
					s++;
				if (s < e) {
					b = q;
					changed = true;
				}
			}
		}
		/* 6. "[fwd:" ... "]" */
		if (e - b >= 6 && memcmp(b, "[fwd:", 5) == 0 && e[-1] == ']') {
			b += 5;
			e--;
			*reply_r = true;
			continue;
		}
		break;
	}
	r = xstrndup(b, (size_t)(e - b));
	str_free(&d);
	str_free(&f);
	str_free(&t);
	return r;
}

/* ---------------------------------------------------------------- output */

static int
msg_date_cmp(const struct imapd_thread_msg *a, const struct imapd_thread_msg *b)
{
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void
write_id(struct str *out, const struct imapd_thread_msg *m, bool uid)
{
	str_printf(out, "%u", uid ? m->uid : m->seq);
}

/* ---------------------------------------------------------------- ORDEREDSUBJECT */

static int
subject_date_cmp(const void *va, const void *vb)
{
	const struct imapd_thread_msg *a = *(struct imapd_thread_msg *const *)va,
	    *b = *(struct imapd_thread_msg *const *)vb;
	int c = strcmp(a->subject, b->subject);

	return c != 0 ? c : msg_date_cmp(a, b);
}

/* One ORDEREDSUBJECT thread: order[start .. start + n) */
struct os_group {
	struct imapd_thread_msg **m;
	size_t n;
};

static int
group_cmp(const void *va, const void *vb)
{
	const struct os_group *a = va, *b = vb;

	return msg_date_cmp(a->m[0], b->m[0]);
}

/* imapd_thread_orderedsubject - see imapd.h */
void
imapd_thread_orderedsubject(struct str *out, struct imapd_thread_msg *v,
    size_t n, bool uid)
{
	struct imapd_thread_msg **order = xcalloc(n + 1, sizeof(*order));
	struct os_group *groups = xcalloc(n + 1, sizeof(*groups));
	size_t i, j, k, ng = 0;

	/* by base subject, then sent date: a group's first is its parent */
	for (i = 0; i < n; i++)
		order[i] = &v[i];
	qsort(order, n, sizeof(*order), subject_date_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n &&
		    strcmp(order[j]->subject, order[i]->subject) == 0; j++)
			;
		groups[ng].m = &order[i];
		groups[ng++].n = j - i;
	}
	/* threads by the sent date of their first message */
	qsort(groups, ng, sizeof(*groups), group_cmp);
	for (i = 0; i < ng; i++) {
		str_append_c(out, '(');
		write_id(out, groups[i].m[0], uid);
		if (groups[i].n == 2) {
			str_append_c(out, ' ');
			write_id(out, groups[i].m[1], uid);
		} else if (groups[i].n > 2) {
			str_append_c(out, ' ');
			for (k = 1; k < groups[i].n; k++) {
				str_append_c(out, '(');
				write_id(out, groups[i].m[k], uid);
				str_append_c(out, ')');
			}
		}
		str_append_c(out, ')');
	}
	free(order);
	free(groups);
}

/* ---------------------------------------------------------------- REFERENCES */

struct tnode {
	const char *id;			/* NULL: unique (no or duplicate ID) */
	struct imapd_thread_msg *msg;	/* NULL: a dummy */
	struct tnode *parent, *child, *next;
	size_t root_idx;
};

/* A string-keyed hash table of nodes (Message-IDs, base subjects). */
struct tmap {
	const char **key;
	struct tnode **val;
	size_t cap;			/* a power of 2 */
};

static void
tmap_init(struct tmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < n * 2)
		m->cap *= 2;
	m->key = xcalloc(m->cap, sizeof(*m->key));
	m->val = xcalloc(m->cap, sizeof(*m->val));
}

static void
tmap_free(struct tmap *m)
{
	free(m->key);
	free(m->val);
}

/* tmap_slot - the slot of key: where it is, or the empty one to take */
static size_t
tmap_slot(const struct tmap *m, const char *key)
{
	uint64_t h = 14695981039346656037ull;
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	for (i = (size_t)h & (m->cap - 1); m->key[i] != NULL &&
	    strcmp(m->key[i], key) != 0; i = (i + 1) & (m->cap - 1))
		;
	return i;
}

struct tctx {
	struct tnode *nodes;
	size_t nn, cap;
	struct tmap ids;
};

static struct tnode *
tnode_new(struct tctx *x, const char *id)
{
	struct tnode *t;

	ASSERT(x->nn < x->cap);
	t = &x->nodes[x->nn++];
	t->id = id;
	return t;
}

/* tnode_for_id - the container of a Message-ID, made on first sight */
static struct tnode *
tnode_for_id(struct tctx *x, const char *id)
{
	size_t i = tmap_slot(&x->ids, id);

	if (x->ids.key[i] == NULL) {
		x->ids.key[i] = id;
		x->ids.val[i] = tnode_new(x, id);
	}
	return x->ids.val[i];
}

/*
 * Threads deeper than this are cut into pieces (each piece a thread of
 * its own): the tree walks below recurse once per level, and a crafted
 * mailbox could chain every message under the previous one.
 */
#define THREAD_DEPTH_MAX	1000

/*
 * may_be_ancestor - a is b or one of b's ancestors, or b is too deep to
 * tell cheaply (then no link is made, as for a loop)
 */
static bool
may_be_ancestor(const struct tnode *a, const struct tnode *b)
{
	unsigned depth = 0;

	for (; b != NULL; b = b->parent)
		if (a == b || ++depth > THREAD_DEPTH_MAX)
			return true;
	return false;
}

/*
 * cut_deep - give every node at a depth that is a multiple of
 * THREAD_DEPTH_MAX no parent. Depths are found by walking up to the
 * nearest node whose depth is known (an explicit stack, no recursion).
 */
static void
cut_deep(struct tctx *x)
{
	size_t *depth = xcalloc(x->nn + 1, sizeof(*depth));
	struct tnode **path = xcalloc(x->nn + 1, sizeof(*path));
	bool *known = xcalloc(x->nn + 1, sizeof(*known));
	size_t i, np, d;
	struct tnode *t;

	for (i = 0; i < x->nn; i++) {
		np = 0;
		for (t = &x->nodes[i]; t != NULL && !known[t - x->nodes];
		    t = t->parent)
			path[np++] = t;
		d = t != NULL ? depth[t - x->nodes] + 1 : 0;
		while (np-- > 0) {
			t = path[np];
			if (d == THREAD_DEPTH_MAX) {
				t->parent = NULL;
				d = 0;
			}
			depth[t - x->nodes] = d++;
			known[t - x->nodes] = true;
		}
	}
	free(depth);
	free(path);
	free(known);
}

/* first_msg - the message that stands for t (a dummy: its first child's) */
static const struct imapd_thread_msg *
first_msg(const struct tnode *t)
{
	while (t->msg == NULL && t->child != NULL)
		t = t->child;
	return t->msg;
}

static int
tnode_cmp(const void *va, const void *vb)
{
	const struct imapd_thread_msg *a = first_msg(*(struct tnode *const *)va),
	    *b = first_msg(*(struct tnode *const *)vb);

	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	return msg_date_cmp(a, b);
}

/* sort_siblings - sort *head and, first, all levels below it, by date */
static void
sort_siblings(struct tnode **head, struct tnode ***buf, size_t *bufcap)
{
	struct tnode *t, **v;
	size_t n = 0, i;

	for (t = *head; t != NULL; t = t->next)
		sort_siblings(&t->child, buf, bufcap);
	for (t = *head; t != NULL; t = t->next)
		n++;
	if (n < 2)
		return;
	/* the shared buffer is free again: the recursion above is done */
	if (*bufcap < n) {
		*bufcap = n;
		*buf = xreallocarray(*buf, n, sizeof(**buf));
	}
	v = *buf;
	for (t = *head, i = 0; t != NULL; t = t->next)
		v[i++] = t;
	qsort(v, n, sizeof(*v), tnode_cmp);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	*head = v[0];
}

/* prune - RFC 5256 3 step 3, at every level below parent */
static void
prune(struct tnode **head, struct tnode *parent, bool root)
{
	struct tnode **pp = head, *t, *c, *last;

	while ((t = *pp) != NULL) {
		prune(&t->child, t, false);
		if (t->msg == NULL && t->child == NULL) {
			*pp = t->next;
			continue;
		}
		if (t->msg == NULL && (!root || t->child->next == NULL)) {
			/* promote the children into t's place */
			for (c = t->child; c != NULL; c = c->next) {
				c->parent = parent;
				last = c;
			}
			last->next = t->next;
			*pp = t->child;
			pp = &last->next;
			continue;
		}
		pp = &t->next;
	}
}

static void
add_child(struct tnode *parent, struct tnode *c)
{
	c->parent = parent;
	c->next = parent->child;
	parent->child = c;
}

/* merge_subjects - RFC 5256 3 step 5 over the root's children v[0..n) */
static void
merge_subjects(struct tctx *x, struct tnode **v, size_t n)
{
	struct tmap subj;
	struct tnode *t, *m, *d, *c, *nextc;
	const char *s;
	size_t i, k;

	tmap_init(&subj, n);
	for (i = 0; i < n; i++)
		v[i]->root_idx = i;
	/* B. one thread per base subject, preferring dummies and originals */
	for (i = 0; i < n; i++) {
		t = v[i];
		s = first_msg(t)->subject;
		if (*s == '\0')
			continue;
		k = tmap_slot(&subj, s);
		if (subj.key[k] == NULL) {
			subj.key[k] = s;
			subj.val[k] = t;
		} else if ((m = subj.val[k])->msg != NULL && (t->msg == NULL ||
		    (m->msg->reply && !t->msg->reply)))
			subj.val[k] = t;
	}
	/* C. merge the others into it */
	for (i = 0; i < n; i++) {
		if ((t = v[i]) == NULL)
			continue;
		s = first_msg(t)->subject;
		if (*s == '\0')
			continue;
		k = tmap_slot(&subj, s);
		if ((m = subj.val[k]) == t)
			continue;
		v[i] = NULL;
		if (m->msg == NULL && t->msg == NULL) {
			for (c = t->child; c != NULL; c = nextc) {
				nextc = c->next;
				add_child(m, c);
			}
		} else if (m->msg == NULL ||
		    (t->msg != NULL && t->msg->reply && !m->msg->reply)) {
			add_child(m, t);
		} else {
			d = tnode_new(x, NULL);
			v[m->root_idx] = d;
			d->root_idx = m->root_idx;
			m->next = NULL;
			add_child(d, m);
			add_child(d, t);
			subj.val[k] = d;
		}
	}
	tmap_free(&subj);
}

/* write_thread - one thread-list member; nested members in parens */
static void
write_thread(struct str *out, const struct tnode *t, bool uid)
{
	const struct tnode *c;

	for (;;) {
		if (t->msg != NULL)
			write_id(out, t->msg, uid);
		if ((c = t->child) == NULL)
			return;
		if (t->msg != NULL)
			str_append_c(out, ' ');
		if (c->next == NULL) {
			t = c;
			continue;
		}
		for (; c != NULL; c = c->next) {
			str_append_c(out, '(');
			write_thread(out, c, uid);
			str_append_c(out, ')');
		}
		return;
	}
}

/* imapd_thread_references - see imapd.h */
void
imapd_thread_references(struct str *out, struct imapd_thread_msg *v,
    size_t n, bool uid)
{
	struct tctx x;
	struct tnode *me, *t, *prev, *root = NULL, **top, **buf = NULL;
	size_t i, r, nrefs = 0, ntop = 0, bufcap = 0;

	for (i = 0; i < n; i++)
		nrefs += v[i].nrefs;
	memset(&x, 0, sizeof(x));
	/* messages, references, and the dummies of step 5 */
	x.cap = 2 * n + nrefs + 1;
	x.nodes = xcalloc(x.cap, sizeof(*x.nodes));
	tmap_init(&x.ids, n + nrefs);

	/* 1. link the containers */
	for (i = 0; i < n; i++) {
		me = NULL;
		if (v[i].msgid != NULL) {
			me = tnode_for_id(&x, v[i].msgid);
			if (me->msg != NULL)
				me = NULL;	/* a duplicate ID: unique */
		}
		if (me == NULL)
			me = tnode_new(&x, NULL);
		me->msg = &v[i];
		for (r = 0, prev = NULL; r < v[i].nrefs; r++, prev = t) {
			t = tnode_for_id(&x, v[i].refs[r]);
			if (prev != NULL && t->parent == NULL &&
			    !may_be_ancestor(t, prev))
				t->parent = prev;
		}
		if (prev == NULL)
			me->parent = NULL;
		else if (!may_be_ancestor(me, prev))
			me->parent = prev;
	}
	cut_deep(&x);
	/* 2. the parentless under the root; children lists */
	for (i = x.nn; i-- > 0; ) {
		t = &x.nodes[i];
		if (t->parent != NULL) {
			t->next = t->parent->child;
			t->parent->child = t;
		} else {
			t->next = root;
			root = t;
		}
	}
	/* 3. prune dummies; 4. sort the root's children by date */
	prune(&root, NULL, true);
	sort_siblings(&root, &buf, &bufcap);
	/* 5. merge threads by base subject */
	for (t = root; t != NULL; t = t->next)
		ntop++;
	top = xcalloc(ntop + 1, sizeof(*top));
	for (t = root, i = 0; t != NULL; t = t->next)
		top[i++] = t;
	merge_subjects(&x, top, ntop);
	root = NULL;
	for (i = ntop; i-- > 0; )
		if (top[i] != NULL) {
			top[i]->parent = NULL;
			top[i]->next = root;
			root = top[i];
		}
	/* 6. every set of siblings by date */
	sort_siblings(&root, &buf, &bufcap);
	for (t = root; t != NULL; t = t->next) {
		str_append_c(out, '(');
		write_thread(out, t, uid);
		str_append_c(out, ')');
	}
	free(top);
	free(buf);
	free(x.nodes);
	tmap_free(&x.ids);
}
