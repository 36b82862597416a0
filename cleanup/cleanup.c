/* SPDX-License-Identifier: MIT */
/*
 * cleanup - the one way into the queue
 *
 * DESCRIPTION
 *	cleanup receives one message per connection from cleanup_client
 *	(smtpd, the sendmail command, bounces, list-mgr, news-gw,
 *	vacationd), checks and rewrites it, and writes it as a queue file
 *	(queue_file.h): queue_file_create() in incoming/ as soon as the
 *	client connects (the client learns the queue ID at once), the
 *	envelope, the recipients, the content streamed through, and
 *	queue_file_commit() into active/ (hold/ with CLEANUP_FLAG_HOLD).
 *	Only after the commit returned 0 does it answer CLEANUP_OK. Then
 *	it wakes qmgr by writing "A" to the fifo public/qmgr without
 *	blocking (qmgr also scans on its own, so a full or absent fifo is
 *	not an error).
 *
 *	The wire format is cleanup_proto.h; records arrive in the order F
 *	E (r|D)* "."; anything else is a protocol error: the file is
 *	removed and the connection closed without a verdict (the client
 *	then answers from disk: TEMPFAIL). A message that breaks a rule
 *	(header too big, bad address) gets its verdict only after the
 *	client sent ".": cleanup discards the rest until then.
 *
 *	What cleanup does to a message: cleanup_addr.c (qualification,
 *	canonical maps, duplicate recipients) and cleanup_message.c
 *	(header limits, Bcc removal, recipient extraction, missing
 *	Message-ID/Date/From).
 *
 *	Test hook: when the environment has POSTERN_TEST_HOOKS=1,
 *	POSTERN_CLEANUP_KILLPOINT makes the process _exit(1) at one point
 *	of the commit: "before-commit" (the end record is not written),
 *	"before-rename" (the file is complete in incoming/, not yet
 *	renamed) or "after-commit" (queue_file_commit() returned 0, the
 *	verdict is not sent), so tests can check that the client answers
 *	from disk. Both variables are ignored otherwise; master passes its
 *	environment on and the server skeleton keeps these two names.
 *
 * SECURITY
 *	Runs as $mail_owner (never root), one connection per process at a
 *	time, and may be chrooted into $queue_directory. It reads: its
 *	socket, postern.conf, the canonical map files (opened before any
 *	chroot), the password database (getpwuid, for local users' login
 *	names). It writes: incoming/, active/, hold/ (through
 *	queue_file.h only), and one byte into public/qmgr.
 *
 *	The socket is public/cleanup (mode 0666 in a 0711 directory:
 *	master.conf "cleanup unix n ..."), shared by daemons and local
 *	users. The peer's uid comes from SO_PEERCRED, never from the
 *	client. Peers with uid 0, the uid of $mail_owner, or cleanup's own
 *	uid are trusted: their envelope (sender, client, protocol,
 *	attributes, flags) is taken as given. Any other peer is a local
 *	user: the envelope sender becomes login@$myorigin unless the user
 *	is in $trusted_users or asked for exactly that address; the
 *	protocol is "local", the client, HELO, SASL and arrival fields are
 *	replaced, attributes other than "fullname" are dropped and "uid"
 *	and "login" are recorded; CLEANUP_FLAG_SUBMISSION is forced and
 *	CLEANUP_FLAG_HOLD and CLEANUP_FLAG_BOUNCE are ignored. A peer
 *	whose uid has no password entry is refused (XXX in a chroot that
 *	means every local user unless the chroot holds a passwd copy, as
 *	with Postfix; the default master.conf line does not chroot).
 *
 *	All input is bounded before it is read: record lengths by type
 *	(cleanup_proto.h), the header block by header_size_limit, the
 *	message by message_size_limit, recipients by QUEUE_FILE_RCPT_MAX.
 *
 * DIAGNOSTICS
 *	"ID: uid=N from=<sender>" for local users; "ID: message-id=<...>";
 *	"ID: from=<s>, size=N, nrcpt=M (queue active)" after the commit;
 *	"ID: reject: CODE text" or "ID: temporary failure: ..." otherwise.
 *
 * SEE ALSO
 *	cleanup(8), cleanup_client.h, cleanup_proto.h, queue_file.h
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "config.h"
#include "privsep.h"
#include "server.h"
#include "stream.h"

#include "cleanup.h"

/*
 * How long cleanup waits for the next record from a client. Long, as
 * Postfix's ipc_timeout: smtpd keeps the connection while its own client
 * takes up to $smtpd_timeout per command.
 */
#define CLEANUP_TIMEOUT		3600
#define CLEANUP_QMGR_FIFO	"public/qmgr"

struct cleanup_settings cleanup_settings;

static uid_t cleanup_owner_uid = (uid_t)-1;
static enum {
	KILL_NONE, KILL_BEFORE_COMMIT, KILL_BEFORE_RENAME, KILL_AFTER_COMMIT
} cleanup_killpoint;

static const char *const cleanup_keep_env[] = {
	"POSTERN_TEST_HOOKS", "POSTERN_CLEANUP_KILLPOINT", NULL
};

/* cleanup_fail - record the first failure */
void
cleanup_fail(struct cleanup_state *st, enum cleanup_status status,
    const char *fmt, ...)
{
	va_list ap;

	if (st->status != CLEANUP_OK)
		return;
	st->status = status;
	str_clear(st->reason);
	va_start(ap, fmt);
	(void)str_vprintf(st->reason, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ setup */

/* open_maps - open every map of the named list parameters, in order */
static struct map **
open_maps(const char *const *names, size_t nnames, size_t *count_r)
{
	struct map **maps = NULL;
	const char *const *items, *error;
	size_t i, j, n, count = 0;

	for (i = 0; i < nnames; i++) {
		items = config_list(conf(), names[i], &n);
		for (j = 0; j < n; j++) {
			maps = xreallocarray(maps, count + 1, sizeof(*maps));
			maps[count] = map_open(items[j], 0, &error);
			if (maps[count] == NULL)
				log_fatal(NULL, "%s: cannot open %s: %s",
				    names[i], items[j], error);
			count++;
		}
	}
	*count_r = count;
	return maps;
}

/* cleanup_pre_jail - settings and maps, before any chroot */
static void
cleanup_pre_jail(void)
{
	static const char *const smaps[] = {
		"sender_canonical_maps", "canonical_maps" };
	static const char *const rmaps[] = {
		"recipient_canonical_maps", "canonical_maps" };
	struct cleanup_settings *s = &cleanup_settings;
	const char *error;
	gid_t gid;

	s->myhostname = config_str(conf(), "myhostname");
	s->myorigin = config_str(conf(), "myorigin");
	s->mydestination = config_list(conf(), "mydestination",
	    &s->nmydestination);
	s->header_size_limit = config_size(conf(), "header_size_limit");
	s->header_count_limit = config_int(conf(), "header_count_limit");
	s->hopcount_limit = config_int(conf(), "hopcount_limit");
	s->message_size_limit = config_size(conf(), "message_size_limit");
	s->sender_maps = open_maps(smaps, 2, &s->nsender_maps);
	s->rcpt_maps = open_maps(rmaps, 2, &s->nrcpt_maps);
	if (privsep_user(config_str(conf(), "mail_owner"), &cleanup_owner_uid,
	    &gid, &error) < 0)
		cleanup_owner_uid = (uid_t)-1;
}

/* cleanup_commit_hook - the before-rename kill point */
static void
cleanup_commit_hook(int step)
{
	/* Step 4 is the rename: the file is complete and fsync'd. */
	if (step == 4)
		_exit(1);
}

/* cleanup_post_jail - the test hook (see DESCRIPTION) */
static void
cleanup_post_jail(void)
{
	const char *hooks = getenv("POSTERN_TEST_HOOKS");
	const char *kp = getenv("POSTERN_CLEANUP_KILLPOINT");

	if (hooks == NULL || strcmp(hooks, "1") != 0 || kp == NULL)
		return;
	if (strcmp(kp, "before-commit") == 0)
		cleanup_killpoint = KILL_BEFORE_COMMIT;
	else if (strcmp(kp, "before-rename") == 0)
		cleanup_killpoint = KILL_BEFORE_RENAME;
	else if (strcmp(kp, "after-commit") == 0)
		cleanup_killpoint = KILL_AFTER_COMMIT;
	if (cleanup_killpoint == KILL_BEFORE_RENAME)
		queue_file_commit_hook = cleanup_commit_hook;
	if (cleanup_killpoint != KILL_NONE)
		log_warn(NULL, "test hook active: exit %s", kp);
}

/* ------------------------------------------------------------ peers */

/* cleanup_list_has - is name one of the items of a list parameter? */
static bool
cleanup_list_has(const char *param, const char *name)
{
	const char *const *items;
	size_t i, n;

	items = config_list(conf(), param, &n);
	for (i = 0; i < n; i++)
		if (strcmp(items[i], name) == 0)
			return true;
	return false;
}

/* cleanup_peer - who is on the other end? false to refuse */
static bool
cleanup_peer(struct cleanup_state *st, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd *pw;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    len != sizeof(cred)) {
		log_warn(NULL, "cannot get peer credentials: %m; refused");
		return false;
	}
	st->uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid() ||
	    cred.uid == cleanup_owner_uid) {
		st->trusted = true;
		return true;
	}
	errno = 0;
	if ((pw = getpwuid(cred.uid)) == NULL) {
		log_warn(NULL, "uid %lu has no password entry%s%m; refused",
		    (unsigned long)cred.uid, errno != 0 ? ": " : "");
		return false;
	}
	st->login = xstrdup(pw->pw_name);
	return true;
}

/* ------------------------------------------------------------ envelope */

/* cleanup_own_address - the address of a local user: login@$myorigin */
static void
cleanup_own_address(const char *login, struct str *out)
{
	str_clear(out);
	(void)address_quote_local(login, strlen(login), out);
	(void)str_printf(out, "@%s", cleanup_settings.myorigin);
}

/* cleanup_envelope - apply the policy and write the envelope */
static void
cleanup_envelope(struct cleanup_state *st, struct cleanup_proto_envelope *pe)
{
	struct queue_envelope env = pe->env;
	struct queue_attr *attrs = NULL;
	struct str *own = NULL, *printable;
	char uidbuf[32];
	const char *error;
	size_t i, n = 0;
	int r;

	(void)str_set_cstr(st->sender, env.sender);
	for (i = 0; i < env.nattrs; i++)
		if (strcmp(env.attrs[i].name, "fullname") == 0)
			st->fullname = env.attrs[i].value;

	if (!st->trusted) {
		/* A local user: we trust nothing they claim. */
		own = str_new(128, 0);
		cleanup_own_address(st->login, own);
		r = cleanup_addr_rewrite(st->sender, NULL, 0, false, &error);
		if (r < 0 || (!cleanup_list_has("trusted_users", st->login) &&
		    strcmp(str_c(st->sender), str_c(own)) != 0)) {
			if (r >= 0 && str_len(st->sender) > 0 &&
			    strcmp(str_c(st->sender), st->login) != 0) {
				printable = str_new(128, 0);
				mem_printable(printable, str_c(st->sender),
				    str_len(st->sender), 200);
				log_warn(&st->ctx, "uid=%lu (%s) may not send as "
				    "<%s>; sender is <%s>",
				    (unsigned long)st->uid, st->login,
				    str_c(printable), str_c(own));
				str_free(&printable);
			}
			(void)str_set(st->sender, str_c(own), str_len(own));
		}
		gettimeofday(&env.arrival, NULL);
		env.client_name = NULL;
		env.client_addr = NULL;
		env.helo = NULL;
		env.auth_user = NULL;
		env.protocol = "local";
		attrs = xcalloc(3, sizeof(*attrs));
		(void)snprintf(uidbuf, sizeof(uidbuf), "%lu",
		    (unsigned long)st->uid);
		attrs[n].name = "uid";
		attrs[n++].value = uidbuf;
		attrs[n].name = "login";
		attrs[n++].value = st->login;
		if (st->fullname != NULL) {
			attrs[n].name = "fullname";
			attrs[n++].value = st->fullname;
		}
		env.attrs = attrs;
		env.nattrs = n;
		log_info(&st->ctx, "uid=%lu from=<%s>", (unsigned long)st->uid,
		    str_c(st->sender));
	}
	/* The canonical maps apply to local users' senders too (Postfix). */
	if (!(st->flags & CLEANUP_FLAG_BOUNCE)) {
		r = cleanup_addr_rewrite(st->sender,
		    cleanup_settings.sender_maps,
		    cleanup_settings.nsender_maps, false, &error);
		if (r < 0) {
			printable = str_new(128, 0);
			mem_printable(printable, env.sender, strlen(env.sender),
			    200);
			if (errno == EINVAL)
				cleanup_fail(st, CLEANUP_REJECT,
				    "5.1.7 bad sender address syntax: <%s>",
				    str_c(printable));
			else
				cleanup_fail(st, CLEANUP_TEMPFAIL,
				    "4.3.0 sender address lookup failed: %s",
				    error);
			str_free(&printable);
		}
	}
	if (st->status == CLEANUP_OK) {
		env.sender = str_c(st->sender);
		if (queue_file_write_envelope(st->w, &env, &error) < 0) {
			if (errno == EINVAL)
				cleanup_fail(st, CLEANUP_REJECT,
				    "5.5.4 bad envelope: %s", error);
			else
				cleanup_fail(st, CLEANUP_TEMPFAIL,
				    "4.3.0 queue file write error: %s", error);
		}
	}
	/* st->fullname points into pe, which lives as long as st. */
	free(attrs);
	str_free(&own);
}

/* ------------------------------------------------------------ commit */

/* cleanup_wake_qmgr - one byte into qmgr's fifo, never blocking */
static void
cleanup_wake_qmgr(void)
{
	int fd;

	fd = open(CLEANUP_QMGR_FIFO, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENXIO)
			log_warn(NULL, "cannot open %s: %m", CLEANUP_QMGR_FIFO);
		return;
	}
	if (write(fd, "A", 1) < 0 && errno != EAGAIN)
		log_warn(NULL, "cannot write to %s: %m", CLEANUP_QMGR_FIFO);
	(void)close(fd);
}

/* cleanup_commit - the end of the message: commit and say so */
static void
cleanup_commit(struct cleanup_state *st)
{
	enum queue_name target;
	const char *error;

	cleanup_content_end(st);
	if (st->status == CLEANUP_OK)
		log_info(&st->ctx, "message-id=%s",
		    str_len(st->message_id) > 0 ? str_c(st->message_id) : "<>");
	if (st->status == CLEANUP_OK && st->nrcpt == 0)
		cleanup_fail(st, CLEANUP_REJECT,
		    "5.1.0 no recipients specified");
	if (st->status != CLEANUP_OK) {
		queue_file_abort(&st->w);
		return;
	}
	target = (st->flags & CLEANUP_FLAG_HOLD) ? QUEUE_HOLD : QUEUE_ACTIVE;
	if (cleanup_killpoint == KILL_BEFORE_COMMIT)
		_exit(1);
	if (queue_file_commit(&st->w, target, &error) < 0) {
		cleanup_fail(st, CLEANUP_TEMPFAIL,
		    "4.3.0 cannot commit the queue file: %s", error);
		log_error(&st->ctx, "cannot commit the queue file: %s: %m",
		    error);
		return;
	}
	if (cleanup_killpoint == KILL_AFTER_COMMIT)
		_exit(1);
	log_info(&st->ctx, "from=<%s>, size=%llu, nrcpt=%zu (queue %s)",
	    str_c(st->sender), (unsigned long long)st->written, st->nrcpt,
	    queue_name_str(target));
}

/* ------------------------------------------------------------ serve */

/* cleanup_read - read one record into buf; its type, or -1 */
static int
cleanup_read(struct cleanup_state *st, struct stream *s, struct str *buf,
    bool *eof_r)
{
	enum stream_result r;
	const char *error;
	size_t len;
	int type;

	*eof_r = false;
	str_clear(buf);
	r = stream_read_n(s, buf, CLEANUP_PROTO_HDR_SIZE);
	if (r != STREAM_OK) {
		*eof_r = r == STREAM_EOF && str_len(buf) == 0;
		if (!*eof_r)
			log_warn(&st->ctx, "client went away: %s",
			    stream_result_name(r));
		return -1;
	}
	if (cleanup_proto_header(str_c(buf), &type, &len, &error) < 0) {
		log_warn(&st->ctx, "protocol error: %s", error);
		return -1;
	}
	str_clear(buf);
	if (len > 0 && (r = stream_read_n(s, buf, len)) != STREAM_OK) {
		log_warn(&st->ctx, "client went away: %s",
		    stream_result_name(r));
		return -1;
	}
	return type;
}

/* cleanup_session - read records until the end of the message */
static bool
cleanup_session(struct cleanup_state *st, struct stream *s)
{
	struct str *buf = str_new(CLEANUP_PROTO_DATA_MAX, 0);
	struct str *rbuf = str_new(256, 0);
	struct queue_rcpt rcpt;
	const char *error = NULL;
	enum { WANT_FLAGS, WANT_ENVELOPE, WANT_REST } state = WANT_FLAGS;
	uint32_t flags;
	bool eof, done = false;
	int type;

	while (!done) {
		type = cleanup_read(st, s, buf, &eof);
		if (type < 0) {
			if (eof)
				log_info(&st->ctx, "client went away before "
				    "the end of the message");
			break;
		}
		error = NULL;
		switch (type) {
		case CLEANUP_REC_FLAGS:
			if (state != WANT_FLAGS) {
				error = "unexpected flags record";
			} else if (cleanup_proto_get_u32(str_c(buf),
			    str_len(buf), &flags, &error) == 0) {
				st->flags = flags;
				if (!st->trusted)
					st->flags = (flags &
					    CLEANUP_FLAG_EXTRACT_RCPTS) |
					    CLEANUP_FLAG_SUBMISSION;
				state = WANT_ENVELOPE;
			}
			break;
		case CLEANUP_REC_ENVELOPE:
			if (state != WANT_ENVELOPE) {
				error = "unexpected envelope record";
			} else if (cleanup_proto_get_envelope(str_c(buf),
			    str_len(buf), &st->penv, &error) == 0) {
				cleanup_envelope(st, st->penv);
				state = WANT_REST;
			}
			break;
		case CLEANUP_REC_RCPT:
			if (state != WANT_REST) {
				error = "unexpected recipient record";
			} else if (cleanup_proto_get_rcpt(str_c(buf),
			    str_len(buf), rbuf, &rcpt, &error) == 0) {
				cleanup_rcpt_add(st, &rcpt);
			}
			break;
		case CLEANUP_REC_DATA:
			if (state != WANT_REST)
				error = "unexpected content record";
			else
				cleanup_content(st, str_c(buf), str_len(buf));
			break;
		case CLEANUP_REC_END:
			if (state != WANT_REST)
				error = "unexpected end record";
			else
				done = true;
			break;
		default:
			error = "unexpected record type";
			break;
		}
		if (error != NULL) {
			log_warn(&st->ctx, "protocol error: %s", error);
			break;
		}
	}
	str_free(&buf);
	str_free(&rbuf);
	return done;
}

/* cleanup_serve - one connection, one message */
static void
cleanup_serve(const struct server_conn *conn)
{
	struct cleanup_state st;
	struct stream *s;
	struct str *out;
	const char *error;

	memset(&st, 0, sizeof(st));
	st.sender = str_new(128, 0);
	st.reason = str_new(128, 0);
	st.message_id = str_new(64, 0);
	st.in_header = true;
	s = stream_new(conn->fd, CLEANUP_TIMEOUT, STREAM_NO_CLOSE);
	out = str_new(256, 0);

	if (!cleanup_peer(&st, conn->fd)) {
		(void)cleanup_proto_put_status(out, CLEANUP_REJECT,
		    "5.7.1 local user unknown");
		goto reply;
	}
	if ((st.w = queue_file_create(".", st.id, &error)) == NULL) {
		log_error(NULL, "cannot create a queue file: %s: %m", error);
		(void)cleanup_proto_put_status(out, CLEANUP_TEMPFAIL,
		    "4.3.0 cannot create a queue file");
		goto reply;
	}
	st.ctx.id = st.id;
	(void)cleanup_proto_put(out, CLEANUP_REC_ID, st.id, QUEUE_ID_LEN);
	if (stream_write(s, str_c(out), str_len(out)) < 0 ||
	    stream_flush(s) < 0) {
		log_warn(&st.ctx, "client went away: %m");
		goto done;
	}
	str_clear(out);
	if (!cleanup_session(&st, s))
		goto done;
	cleanup_commit(&st);
	if (st.status != CLEANUP_OK)
		log_info(&st.ctx, "%s: %s", st.status == CLEANUP_REJECT ?
		    "reject" : "temporary failure", str_c(st.reason));
	(void)cleanup_proto_put_status(out, st.status,
	    st.status == CLEANUP_OK ? "" : str_c(st.reason));
reply:
	if (stream_write(s, str_c(out), str_len(out)) < 0 ||
	    stream_flush(s) < 0)
		log_warn(&st.ctx, "cannot send the verdict: %m");
	if (st.status == CLEANUP_OK && st.w == NULL && st.ctx.id != NULL)
		cleanup_wake_qmgr();
done:
	queue_file_abort(&st.w);
	stream_free(&s);
	str_free(&out);
	str_free(&st.sender);
	str_free(&st.reason);
	str_free(&st.message_id);
	str_free(&st.header);
	cleanup_proto_envelope_free(&st.penv);
	cleanup_rcpt_set_free(&st.rcpts);
	free(st.login);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_jail = cleanup_pre_jail,
		.post_jail = cleanup_post_jail,
		.serve = cleanup_serve,
		.keep_env = cleanup_keep_env,
	};

	return server_main(argc, argv, &ops);
}
