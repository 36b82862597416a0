/* SPDX-License-Identifier: MIT */
/*
 * postern_queue - the operator's view of the mail queue (postqueue and
 * postsuper in one)
 *
 * DESCRIPTION
 *	postern queue list [--json]   mailq: each queued message with its
 *	                              size, arrival, sender and the
 *	                              recipients still to do with their last
 *	                              deferral reason ("*" active, "!" held);
 *	                              --json: one JSON object per line
 *	postern queue show ID [--body] [--log]
 *	                              envelope, recipients with their state,
 *	                              and the message header (--body: the
 *	                              whole message; --log: every status
 *	                              record)
 *	postern queue flush           retry deferred mail now
 *	postern queue hold ID|ALL     keep mail from delivery (hold/)
 *	postern queue release ID|ALL  give held mail back to qmgr
 *	postern queue delete ID|ALL   remove mail for good
 *	postern queue requeue ID|ALL  hand mail to cleanup again (new queue ID;
 *	                              the recipients still to do), so that
 *	                              changed rewriting rules apply
 *	postern mailq                 the same as queue list (also when run as
 *	                              "mailq")
 *
 *	Every change goes through queue_file.h under the queue file's update
 *	lock, the same lock qmgr holds while a message is in its memory: the
 *	CLI never moves, deletes or re-injects a message during a delivery.
 *	A locked message is waited for (POSTERN_QUEUE_LOCK_WAIT seconds),
 *	then reported busy. flush and release move the files into active/ and
 *	wake qmgr through its fifo (public/qmgr), which scans active/ at once.
 *
 * DIAGNOSTICS
 *	"postern: queue ID X not found" (exit 1) for an ID that is in no
 *	queue; "postern: queue ID X is busy ..." when qmgr holds it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "config.h"
#include "queue_file.h"
#include "str.h"

#include "postern.h"

#define POSTERN_QUEUE_LOCK_WAIT	10	/* seconds */

static const char *queue_dir;

struct id_list {
	char **ids;
	size_t n, cap;
};

static int
id_list_add(const char *id, void *ctx)
{
	struct id_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : 2 * l->cap;
		l->ids = xreallocarray(l->ids, l->cap, sizeof(*l->ids));
	}
	l->ids[l->n++] = xstrdup(id);
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* queue_ids - the sorted IDs in queue q */
static void
queue_ids(enum queue_name q, struct id_list *l)
{
	memset(l, 0, sizeof(*l));
	(void)queue_scan(queue_dir, q, id_list_add, l);
	if (l->n > 0)
		qsort(l->ids, l->n, sizeof(*l->ids), id_cmp);
}

static void
id_list_free(struct id_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	memset(l, 0, sizeof(*l));
}

/* json_string - a JSON string literal */
static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

/* printable - untrusted text for the terminal */
static const char *
printable(struct str *buf, const char *s)
{
	str_clear(buf);
	mem_printable(buf, s, strlen(s), 1000);
	return str_c(buf);
}

/* ------------------------------------------------------------ list */

static int
queue_list(bool json)
{
	static const enum queue_name qs[] = {
		QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
	};
	static const char marks[] = { '*', ' ', '!' };
	struct str *buf = str_new(256, 0);
	uint64_t total = 0;
	size_t count = 0, qi, i, r;

	for (qi = 0; qi < N_ELEMENTS(qs); qi++) {
		struct id_list l;

		queue_ids(qs[qi], &l);
		for (i = 0; i < l.n; i++) {
			const char *error = NULL;
			struct queue_file *qf;
			const struct queue_envelope *env;
			char tbuf[64];
			struct tm tm;

			qf = queue_file_open(queue_dir, qs[qi], l.ids[i], 0,
			    &error);
			if (qf == NULL) {
				if (errno != ENOENT && !json)
					printf("%-18s%c (unreadable: %s)\n",
					    l.ids[i], marks[qi], error);
				continue;
			}
			env = queue_file_envelope(qf);
			count++;
			total += queue_file_content_length(qf);
			if (json) {
				bool first = true;

				printf("{\"queue_name\": ");
				json_string(stdout, queue_name_str(qs[qi]));
				printf(", \"queue_id\": ");
				json_string(stdout, l.ids[i]);
				printf(", \"arrival_time\": %lld, "
				    "\"message_size\": %" PRIu64 ", "
				    "\"sender\": ", (long long)env->arrival.tv_sec,
				    queue_file_content_length(qf));
				json_string(stdout, env->sender);
				printf(", \"recipients\": [");
				for (r = 0; r < queue_file_rcpt_count(qf); r++) {
					const struct queue_rcpt *rc =
					    queue_file_rcpt(qf, r);

					if (rc->state != QUEUE_RCPT_PENDING &&
					    rc->state != QUEUE_RCPT_DEFERRED)
						continue;
					printf("%s{\"address\": ", first ? "" :
					    ", ");
					json_string(stdout, rc->address);
					printf(", \"state\": ");
					json_string(stdout,
					    queue_rcpt_state_str(rc->state));
					if (rc->reason[0] != '\0') {
						printf(", \"delay_reason\": ");
						json_string(stdout, rc->reason);
					}
					printf("}");
					first = false;
				}
				printf("]}\n");
			} else {
				const char *last = NULL;

				if (count == 1)
					printf("%-19s %8s %-20s %s\n", "-Queue ID-",
					    "--Size--", "----Arrival Time----",
					    "-Sender/Recipient-------");
				localtime_r(&env->arrival.tv_sec, &tm);
				strftime(tbuf, sizeof(tbuf), "%a %b %e %H:%M:%S",
				    &tm);
				printf("%s%c %8" PRIu64 " %-20s %s\n", l.ids[i],
				    marks[qi], queue_file_content_length(qf),
				    tbuf, env->sender[0] != '\0' ?
				    printable(buf, env->sender) :
				    "MAILER-DAEMON");
				for (r = 0; r < queue_file_rcpt_count(qf); r++) {
					const struct queue_rcpt *rc =
					    queue_file_rcpt(qf, r);

					if (rc->state != QUEUE_RCPT_PENDING &&
					    rc->state != QUEUE_RCPT_DEFERRED)
						continue;
					if (rc->reason[0] != '\0' && (last == NULL ||
					    strcmp(last, rc->reason) != 0)) {
						printf("%49s(%s)\n", "",
						    printable(buf, rc->reason));
						last = rc->reason;
					}
					printf("%49s%s\n", "",
					    printable(buf, rc->address));
				}
				printf("\n");
			}
			queue_file_close(&qf);
		}
		id_list_free(&l);
	}
	if (!json) {
		if (count == 0)
			printf("Mail queue is empty\n");
		else
			printf("-- %" PRIu64 " Kbytes in %zu Request%s.\n",
			    (total + 1023) / 1024, count, count == 1 ? "" : "s");
	}
	str_free(&buf);
	return POSTERN_EXIT_OK;
}

/* ------------------------------------------------------------ show */

static int
queue_show(const char *id, bool body, bool log)
{
	struct queue_file *qf;
	enum queue_name q;
	const char *error = NULL;
	int rc = POSTERN_EXIT_OK;

	if (!queue_id_ok(id, strlen(id)) ||
	    queue_file_locate(queue_dir, id, &q) < 0) {
		postern_error("queue ID %s not found", id);
		return POSTERN_EXIT_FAIL;
	}
	qf = queue_file_open(queue_dir, q, id, 0, &error);
	if (qf == NULL) {
		postern_error("cannot read queue file %s/%s: %s", queue_name_str(q),
		    id, error);
		return POSTERN_EXIT_FAIL;
	}
	if (queue_file_dump(qf, stdout, (body ? QUEUE_FILE_DUMP_CONTENT : 0) |
	    (log ? QUEUE_FILE_DUMP_LOG : 0)) < 0)
		rc = POSTERN_EXIT_FAIL;
	if (!body) {
		/* the header section, escaped like the dump */
		struct str *head = str_new(4096, 0), *out = str_new(4096, 0);
		char buf[8192];
		uint64_t off = 0;
		ssize_t n;
		const char *end = NULL;

		while (end == NULL && str_len(head) < 1024 * 1024 &&
		    (n = queue_file_read_content(qf, buf, sizeof(buf), off)) > 0) {
			str_append(head, buf, (size_t)n);
			off += (uint64_t)n;
			end = memmem(str_c(head), str_len(head), "\r\n\r\n", 4);
		}
		if (end != NULL)
			str_truncate(head, (size_t)(end - str_c(head)) + 2);
		printf("header:\n");
		{
			const char *p = str_c(head), *e = p + str_len(head);

			while (p < e) {
				const char *nl = memchr(p, '\n', (size_t)(e - p));
				size_t len = nl != NULL ? (size_t)(nl - p) :
				    (size_t)(e - p);

				if (len > 0 && p[len - 1] == '\r')
					len--;
				str_clear(out);
				mem_printable(out, p, len, 10000);
				printf("  %s\n", str_c(out));
				p = nl != NULL ? nl + 1 : e;
			}
		}
		str_free(&out);
		str_free(&head);
	}
	queue_file_close(&qf);
	return rc;
}

/* ------------------------------------------------------------ changes */

/* queue_wake - one byte into qmgr's fifo (never blocking) */
static void
queue_wake(void)
{
	struct str *path = str_new(64, 0);
	int fd;

	str_printf(path, "%s/public/qmgr", queue_dir);
	fd = open(str_c(path), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		postern_warn("cannot wake qmgr (%s: %m); it will find the mail "
		    "on its next queue run", str_c(path));
	} else {
		if (write(fd, "F", 1) < 0 && errno != EAGAIN)
			postern_warn("cannot wake qmgr: %m");
		(void)close(fd);
	}
	str_free(&path);
}

/*
 * queue_lock - open q/id with the update lock, waiting while qmgr holds
 * it. NULL with errno ENOENT (gone) or EWOULDBLOCK (still busy); other
 * errors are reported here.
 */
static struct queue_file *
queue_lock(enum queue_name q, const char *id)
{
	struct queue_file *qf;
	const char *error = NULL;
	int tries;

	for (tries = 0; tries < POSTERN_QUEUE_LOCK_WAIT * 10; tries++) {
		qf = queue_file_open(queue_dir, q, id, QUEUE_FILE_UPDATE, &error);
		if (qf != NULL)
			return qf;
		if (errno != EWOULDBLOCK)
			break;
		usleep(100 * 1000);
	}
	if (errno == EWOULDBLOCK)
		postern_error("queue ID %s is busy (qmgr is delivering it); "
		    "try again", id);
	else if (errno != ENOENT)
		postern_error("cannot open queue file %s/%s: %s: %m",
		    queue_name_str(q), id, error);
	return NULL;
}

enum queue_op { OP_HOLD, OP_RELEASE, OP_DELETE, OP_REQUEUE, OP_FLUSH };

/* queue_requeue - hand the open recipients to cleanup again, then remove */
static int
queue_requeue(struct queue_file *qf)
{
	const struct queue_envelope *env = queue_file_envelope(qf);
	struct cleanup_client *c;
	struct str *sock = str_new(64, 0), *reason = str_new(64, 0);
	const char *error = NULL;
	char buf[65536], newid[QUEUE_ID_SIZE];
	uint64_t off = 0, len = queue_file_content_length(qf);
	size_t i, n = 0;
	int rc = -1;

	str_printf(sock, "%s/public/cleanup", queue_dir);
	c = cleanup_client_open(str_c(sock), 0, &error);
	if (c == NULL)
		goto fail;
	pst_strlcpy(newid, cleanup_client_id(c), sizeof(newid));
	if (cleanup_client_envelope(c, env, &error) < 0)
		goto fail;
	for (i = 0; i < queue_file_rcpt_count(qf); i++) {
		const struct queue_rcpt *r = queue_file_rcpt(qf, i);
		struct queue_rcpt copy;

		if (r->state != QUEUE_RCPT_PENDING &&
		    r->state != QUEUE_RCPT_DEFERRED)
			continue;
		memset(&copy, 0, sizeof(copy));
		copy.address = r->address;
		copy.orcpt_type = r->orcpt_type;
		copy.orcpt = r->orcpt;
		copy.notify = r->notify;
		copy.original = r->original;
		if (cleanup_client_rcpt(c, &copy, &error) < 0)
			goto fail;
		n++;
	}
	if (n == 0) {
		cleanup_client_abort(&c);
		rc = 0;		/* nothing left to do: just remove it */
		goto remove;
	}
	while (off < len) {
		ssize_t got = queue_file_read_content(qf, buf, sizeof(buf), off);

		if (got <= 0) {
			error = "cannot read the queue file";
			goto fail;
		}
		if (cleanup_client_content(c, buf, (size_t)got, &error) < 0)
			goto fail;
		off += (uint64_t)got;
	}
	if (cleanup_client_finish(&c, reason) != CLEANUP_OK) {
		postern_error("%s: cleanup did not take it: %s", queue_file_id(qf),
		    str_c(reason));
		goto out;
	}
	printf("%s: requeued as %s\n", queue_file_id(qf), newid);
	rc = 0;
remove:
	if (queue_file_remove(qf, &error) < 0) {
		postern_error("%s: cannot remove the old file: %s: %m",
		    queue_file_id(qf), error);
		rc = -1;
	}
	goto out;
fail:
	postern_error("%s: cannot requeue: %s", queue_file_id(qf),
	    error != NULL ? error : "cleanup is not reachable");
	cleanup_client_abort(&c);
out:
	str_free(&reason);
	str_free(&sock);
	return rc;
}

/* queue_apply - one operation on q/id; 0 done, 1 gone, -1 failed */
static int
queue_apply(enum queue_op op, enum queue_name q, const char *id)
{
	struct queue_file *qf = queue_lock(q, id);
	const char *error = NULL;
	int rc = 0;

	if (qf == NULL)
		return errno == ENOENT ? 1 : -1;
	switch (op) {
	case OP_HOLD:
		rc = queue_file_move(qf, QUEUE_HOLD, &error);
		break;
	case OP_RELEASE:
	case OP_FLUSH:
		rc = queue_file_move(qf, QUEUE_ACTIVE, &error);
		break;
	case OP_DELETE:
		rc = queue_file_remove(qf, &error);
		break;
	case OP_REQUEUE:
		rc = queue_requeue(qf);
		error = NULL;
		break;
	}
	if (rc < 0 && error != NULL)
		postern_error("%s: %s: %m", id, error);
	queue_file_close(&qf);
	return rc < 0 ? -1 : 0;
}

/* the queues an operation takes mail from */
static size_t
queue_sources(enum queue_op op, enum queue_name out[4])
{
	switch (op) {
	case OP_HOLD:
		out[0] = QUEUE_ACTIVE;
		out[1] = QUEUE_DEFERRED;
		return 2;
	case OP_RELEASE:
		out[0] = QUEUE_HOLD;
		return 1;
	case OP_FLUSH:
		out[0] = QUEUE_DEFERRED;
		return 1;
	case OP_DELETE:
		out[0] = QUEUE_ACTIVE;
		out[1] = QUEUE_DEFERRED;
		out[2] = QUEUE_HOLD;
		out[3] = QUEUE_CORRUPT;
		return 4;
	case OP_REQUEUE:
		out[0] = QUEUE_ACTIVE;
		out[1] = QUEUE_DEFERRED;
		out[2] = QUEUE_HOLD;
		return 3;
	}
	return 0;
}

static const char *const op_names[] = {
	"held", "released", "deleted", "requeued", "scheduled",
};

/* queue_change - hold/release/delete/requeue/flush of ID or ALL */
static int
queue_change(enum queue_op op, const char *target)
{
	enum queue_name src[4], q;
	size_t nsrc = queue_sources(op, src), s, i, done = 0;
	int status = POSTERN_EXIT_OK;

	if (strcmp(target, "ALL") == 0) {
		for (s = 0; s < nsrc; s++) {
			struct id_list l;

			queue_ids(src[s], &l);
			for (i = 0; i < l.n; i++) {
				int r = queue_apply(op, src[s], l.ids[i]);

				if (r == 0)
					done++;
				else if (r < 0)
					status = POSTERN_EXIT_FAIL;
			}
			id_list_free(&l);
		}
	} else {
		if (!queue_id_ok(target, strlen(target)) ||
		    queue_file_locate(queue_dir, target, &q) < 0) {
			postern_error("queue ID %s not found", target);
			return POSTERN_EXIT_FAIL;
		}
		for (s = 0; s < nsrc; s++)
			if (src[s] == q)
				break;
		if (s == nsrc) {
			if ((op == OP_HOLD && q == QUEUE_HOLD) ||
			    (op == OP_RELEASE && q != QUEUE_HOLD &&
			    q != QUEUE_INCOMING && q != QUEUE_CORRUPT)) {
				postern_warn("queue ID %s is already %s "
				    "(in %s/)", target, op_names[op],
				    queue_name_str(q));
				return POSTERN_EXIT_OK;
			}
			postern_error("queue ID %s is in %s/: it cannot be %s",
			    target, queue_name_str(q), op_names[op]);
			return POSTERN_EXIT_FAIL;
		}
		switch (queue_apply(op, q, target)) {
		case 0:
			done++;
			break;
		case 1:
			postern_error("queue ID %s not found", target);
			return POSTERN_EXIT_FAIL;
		default:
			return POSTERN_EXIT_FAIL;
		}
	}
	if (postern.verbose || strcmp(target, "ALL") == 0)
		fprintf(stderr, "postern: %zu message%s %s\n", done,
		    done == 1 ? "" : "s", op_names[op]);
	if ((op == OP_RELEASE || op == OP_FLUSH) && done > 0)
		queue_wake();
	return status;
}

/* ------------------------------------------------------------ dispatch */

static int
queue_usage(const char *what)
{
	return postern_usage_error("queue", "%s", what);
}

/* postern_cmd_queue - postern queue VERB ... */
int
postern_cmd_queue(int argc, char **argv)
{
	const char *verb;

	if (argc < 2)
		return queue_usage("queue needs a command (list, show, flush, "
		    "hold, release, delete, requeue)");
	verb = argv[1];
	if (postern_load_config(false) == NULL)
		return POSTERN_EXIT_FAIL;
	queue_dir = config_str(conf(), "queue_directory");
	if (strcmp(verb, "list") == 0) {
		if (argc == 2)
			return queue_list(false);
		if (argc == 3 && strcmp(argv[2], "--json") == 0)
			return queue_list(true);
		return queue_usage("queue list takes only --json");
	}
	if (strcmp(verb, "show") == 0) {
		bool body = false, log = false;
		const char *id = NULL;
		int i;

		for (i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--body") == 0)
				body = true;
			else if (strcmp(argv[i], "--log") == 0)
				log = true;
			else if (id == NULL && argv[i][0] != '-')
				id = argv[i];
			else
				return queue_usage("queue show ID [--body] "
				    "[--log]");
		}
		if (id == NULL)
			return queue_usage("queue show needs a queue ID");
		return queue_show(id, body, log);
	}
	if (strcmp(verb, "flush") == 0) {
		if (argc != 2)
			return queue_usage("queue flush takes no arguments");
		return queue_change(OP_FLUSH, "ALL");
	}
	{
		static const struct {
			const char *name;
			enum queue_op op;
		} ops[] = {
			{ "hold", OP_HOLD }, { "release", OP_RELEASE },
			{ "delete", OP_DELETE }, { "requeue", OP_REQUEUE },
		};
		size_t i;

		for (i = 0; i < N_ELEMENTS(ops); i++) {
			int a, status = POSTERN_EXIT_OK;

			if (strcmp(verb, ops[i].name) != 0)
				continue;
			if (argc < 3)
				return queue_usage("this queue command needs "
				    "queue IDs or ALL");
			for (a = 2; a < argc; a++)
				if (queue_change(ops[i].op, argv[a]) !=
				    POSTERN_EXIT_OK)
					status = POSTERN_EXIT_FAIL;
			return status;
		}
	}
	return queue_usage("unknown queue command");
}

/* postern_cmd_mailq - postern mailq [--json] (and "mailq" itself) */
int
postern_cmd_mailq(int argc, char **argv)
{
	char *args[4];

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0))
		return postern_usage_error("mailq", "mailq takes only --json");
	args[0] = "queue";
	args[1] = "list";
	args[2] = argc == 2 ? argv[1] : NULL;
	args[3] = NULL;
	return postern_cmd_queue(argc == 2 ? 3 : 2, args);
}
