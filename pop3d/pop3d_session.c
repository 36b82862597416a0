/* SPDX-License-Identifier: MIT */
/*
 * pop3d_session - the TRANSACTION and UPDATE states (mail role)
 *
 * DESCRIPTION
 *	pop3d_session_run() takes the user's POP3 session slot
 *	(pop3_user_connection_limit) and, with pop3_lock_session, the
 *	exclusive maildrop lock (RFC 1939 4: a second POP3 session gets
 *	-ERR [IN-USE]). Both are fcntl OFD locks on files under
 *	$store_directory (lib/login_proxy.h login_conn_slot), separate
 *	from the store's own locks: IMAP sessions and deliveries go on
 *	while a POP3 session holds the maildrop. Then it opens INBOX and
 *	answers the login with +OK.
 *
 *	The POP3 view is a snapshot of INBOX at login: message numbers
 *	1..N are the store view's sequence numbers, and the view is never
 *	synced, so mail delivered during the session appears in the next
 *	one and numbers never shift. Sizes are the stored sizes (the
 *	message as CRLF text, before dot-stuffing), read from the index at
 *	login. A message expunged by IMAP during the session is still
 *	listed; RETR and TOP of it answer -ERR (its file is gone).
 *
 *	UIDL is the UID and UIDVALIDITY of the message in 8+8 upper-case
 *	hex digits (Dovecot's default %08Xu%08Xv), so a message keeps its
 *	UIDL as long as it keeps its IMAP UID: forever, since UIDs are
 *	never reused and UIDVALIDITY changes only if INBOX is recreated.
 *
 *	DELE only marks; QUIT in the TRANSACTION state enters UPDATE and
 *	expunges exactly the marked UIDs through store_expunge() (not
 *	every \Deleted message: IMAP's \Deleted flags are IMAP's), then
 *	sets \Seen on the messages retrieved with RETR. A connection that
 *	ends any other way (drop, timeout, too many errors) changes
 *	nothing.
 *
 *	RETR and TOP stream the message file through a 64 KB buffer,
 *	dot-stuffing lines that start with '.', and end it with CRLF if
 *	the message does not. After "+OK" a read error can no longer be
 *	reported: the connection is closed (without UPDATE).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "login_proxy.h"
#include "store/store.h"
#include "stream.h"
#include "str.h"

#include "pop3d.h"

#define POP3D_READ_BUF	65536

#define MSG_DELETED	0x01u
#define MSG_RETRIEVED	0x02u

struct pop3_session {
	struct login_conn *c;
	struct stream *s;
	char *user;
	struct store *store;
	struct store_mailbox *box;
	uint32_t uidvalidity;
	uint32_t count;		/* messages in the snapshot */
	uint32_t *uids;		/* [count] */
	uint64_t *sizes;	/* [count] */
	uint8_t *state;		/* [count] MSG_* */
	uint32_t n_deleted;
	uint64_t total_bytes;
	uint64_t deleted_bytes;
	char *buf;		/* POP3D_READ_BUF */
	struct str *out;
	unsigned errors;
	bool done;
	bool quit;		/* QUIT in TRANSACTION: UPDATE done */
	/* statistics for the disconnect line */
	unsigned n_top, n_retr, n_expunged;
	uint64_t retr_bytes;
};

static void
reply(struct pop3_session *sess, const char *text)
{
	stream_puts(sess->s, text);
	stream_puts(sess->s, "\r\n");
}

static void
reply_err(struct pop3_session *sess, const char *text)
{
	sess->errors++;
	reply(sess, text);
}

/*
 * msg_lookup - message number n of the snapshot, not deleted. 0-based
 * index into the arrays, or -1 after an -ERR reply.
 */
static int64_t
msg_lookup(struct pop3_session *sess, uint32_t n)
{
	if (n == 0 || n > sess->count) {
		stream_printf(sess->s, "-ERR There's no message %lu.\r\n",
		    (unsigned long)n);
		sess->errors++;
		return -1;
	}
	if ((sess->state[n - 1] & MSG_DELETED) != 0) {
		reply_err(sess, "-ERR Message is deleted.");
		return -1;
	}
	return (int64_t)n - 1;
}

/* write_uidl - the unique-id of message i (0-based) */
static void
write_uidl(struct pop3_session *sess, struct str *out, uint32_t i)
{
	str_printf(out, "%08X%08X", (unsigned)sess->uids[i],
	    (unsigned)sess->uidvalidity);
}

static void
cmd_stat(struct pop3_session *sess)
{
	stream_printf(sess->s, "+OK %lu %llu\r\n",
	    (unsigned long)(sess->count - sess->n_deleted),
	    (unsigned long long)(sess->total_bytes - sess->deleted_bytes));
}

/* cmd_list - LIST and UIDL, with or without a message number */
static void
cmd_list(struct pop3_session *sess, const struct pop3_cmd *cmd, bool uidl)
{
	int64_t m;
	uint32_t i;

	str_clear(sess->out);
	if (cmd->nargs == 1) {
		if ((m = msg_lookup(sess, cmd->num[0])) < 0)
			return;
		str_printf(sess->out, "+OK %lu ", (unsigned long)cmd->num[0]);
		if (uidl)
			write_uidl(sess, sess->out, (uint32_t)m);
		else
			str_printf(sess->out, "%llu",
			    (unsigned long long)sess->sizes[m]);
		str_append(sess->out, "\r\n", 2);
	} else {
		if (uidl)
			str_append_cstr(sess->out, "+OK\r\n");
		else
			str_printf(sess->out, "+OK %lu messages (%llu octets)\r\n",
			    (unsigned long)(sess->count - sess->n_deleted),
			    (unsigned long long)(sess->total_bytes -
			    sess->deleted_bytes));
		for (i = 0; i < sess->count; i++) {
			if ((sess->state[i] & MSG_DELETED) != 0)
				continue;
			str_printf(sess->out, "%lu ", (unsigned long)i + 1);
			if (uidl)
				write_uidl(sess, sess->out, i);
			else
				str_printf(sess->out, "%llu",
				    (unsigned long long)sess->sizes[i]);
			str_append(sess->out, "\r\n", 2);
			if (str_len(sess->out) >= 65536) {
				stream_write(sess->s, str_c(sess->out),
				    str_len(sess->out));
				str_clear(sess->out);
			}
		}
		str_append(sess->out, ".\r\n", 3);
	}
	stream_write(sess->s, str_c(sess->out), str_len(sess->out));
}

/*
 * send_all - copy fd to the client, dot-stuffed, ending in CRLF. Whole
 * runs without "\n." go out in one write. false on a read error
 * (logged; the caller closes the connection).
 */
static bool
send_all(struct pop3_session *sess, int fd, uint64_t *bytes_r)
{
	bool bol = true, any = false;
	ssize_t n;
	size_t i, p, end;
	const char *nl;

	while ((n = read(fd, sess->buf, POP3D_READ_BUF)) > 0) {
		const char *b = sess->buf;

		any = true;
		*bytes_r += (uint64_t)n;
		i = 0;
		while (i < (size_t)n) {
			if (bol && b[i] == '.')
				stream_write(sess->s, ".", 1);
			/* the run up to the next line starting with '.' */
			p = i;
			for (;;) {
				nl = memchr(b + p, '\n', (size_t)n - p);
				if (nl == NULL) {
					end = (size_t)n;
					bol = false;
					break;
				}
				p = (size_t)(nl - b) + 1;
				if (p == (size_t)n || b[p] == '.') {
					end = p;
					bol = true;
					break;
				}
			}
			stream_write(sess->s, b + i, end - i);
			i = end;
		}
	}
	if (n < 0) {
		log_error(&sess->c->log, "read message: %m");
		return false;
	}
	if (any && !bol)
		stream_write(sess->s, "\r\n", 2);
	return true;
}

/*
 * send_top - the header, the empty line, and the first lines lines of
 * the body, dot-stuffed (TOP). A message without an empty line is all
 * header and goes out whole.
 */
static bool
send_top(struct pop3_session *sess, int fd, uint32_t lines)
{
	bool bol = true, any = false, in_body = false, first_cr = false;
	uint64_t body_lines = 0, cur_len = 0;
	ssize_t n;
	size_t i, end, content;
	const char *nl;

	while ((n = read(fd, sess->buf, POP3D_READ_BUF)) > 0) {
		const char *b = sess->buf;

		i = 0;
		while (i < (size_t)n) {
			if (bol) {
				if (in_body && body_lines >= lines)
					goto done;
				if (b[i] == '.')
					stream_write(sess->s, ".", 1);
			}
			nl = memchr(b + i, '\n', (size_t)n - i);
			end = nl != NULL ? (size_t)(nl - b) + 1 : (size_t)n;
			content = nl != NULL ? end - i - 1 : end - i;
			if (cur_len == 0 && content > 0)
				first_cr = b[i] == '\r';
			cur_len += content;
			stream_write(sess->s, b + i, end - i);
			any = true;
			i = end;
			bol = nl != NULL;
			if (!bol)
				continue;
			if (in_body)
				body_lines++;
			else if (cur_len == 0 || (cur_len == 1 && first_cr))
				in_body = true;
			cur_len = 0;
		}
	}
	if (n < 0) {
		log_error(&sess->c->log, "read message: %m");
		return false;
	}
done:
	if (any && !bol)
		stream_write(sess->s, "\r\n", 2);
	return true;
}

/* cmd_retr - RETR (top false) and TOP */
static void
cmd_retr(struct pop3_session *sess, const struct pop3_cmd *cmd, bool top)
{
	const char *err;
	uint64_t bytes = 0;
	int64_t m;
	int fd;
	bool ok;

	if ((m = msg_lookup(sess, cmd->num[0])) < 0)
		return;
	fd = store_msg_open(sess->box, (uint32_t)m + 1, &err);
	if (fd < 0) {
		if (store_error(sess->store) == STORE_ERR_EXPUNGED ||
		    store_error(sess->store) == STORE_ERR_NOTFOUND) {
			reply(sess, "-ERR Message was expunged by another "
			    "session.");
			return;
		}
		log_error(&sess->c->log, "open message uid %lu: %s",
		    (unsigned long)sess->uids[m], err);
		reply(sess, "-ERR Cannot read the message, try again later.");
		return;
	}
	if (top) {
		stream_puts(sess->s, "+OK\r\n");
		ok = send_top(sess, fd, cmd->num[1]);
		sess->n_top++;
	} else {
		stream_printf(sess->s, "+OK %llu octets\r\n",
		    (unsigned long long)sess->sizes[m]);
		ok = send_all(sess, fd, &bytes);
		sess->n_retr++;
		sess->retr_bytes += bytes;
		sess->state[m] |= MSG_RETRIEVED;
	}
	(void)close(fd);
	if (!ok) {
		sess->done = true;	/* no way to say -ERR after +OK */
		return;
	}
	stream_puts(sess->s, ".\r\n");
}

static void
cmd_dele(struct pop3_session *sess, const struct pop3_cmd *cmd)
{
	int64_t m;

	if ((m = msg_lookup(sess, cmd->num[0])) < 0)
		return;
	sess->state[m] |= MSG_DELETED;
	sess->n_deleted++;
	sess->deleted_bytes += sess->sizes[m];
	stream_printf(sess->s, "+OK Marked to be deleted.\r\n");
}

static void
cmd_rset(struct pop3_session *sess)
{
	uint32_t i;

	for (i = 0; i < sess->count; i++)
		sess->state[i] &= (uint8_t)~MSG_DELETED;
	sess->n_deleted = 0;
	sess->deleted_bytes = 0;
	stream_printf(sess->s, "+OK %lu messages (%llu octets)\r\n",
	    (unsigned long)sess->count, (unsigned long long)sess->total_bytes);
}

/* session_update - the UPDATE state: expunge the marked, flag the retrieved */
static void
session_update(struct pop3_session *sess)
{
	struct store_uids expunged;
	uint32_t *uids;
	const char *err;
	size_t n = 0, i;
	bool ok = true;

	memset(&expunged, 0, sizeof(expunged));
	uids = xcalloc(sess->count > 0 ? sess->count : 1, sizeof(*uids));
	for (i = 0; i < sess->count; i++)
		if ((sess->state[i] & MSG_DELETED) != 0)
			uids[n++] = sess->uids[i];
	if (n > 0) {
		if (store_expunge(sess->box, uids, n, &expunged, &err) < 0) {
			log_error(&sess->c->log, "expunge: %s", err);
			ok = false;
		} else
			sess->n_expunged = (unsigned)expunged.count;
	}
	n = 0;
	for (i = 0; i < sess->count; i++)
		if ((sess->state[i] & (MSG_RETRIEVED | MSG_DELETED)) ==
		    MSG_RETRIEVED)
			uids[n++] = sess->uids[i];
	if (n > 0 && store_update_flags(sess->box, uids, n, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, 0, 0, NULL, &err) < 0)
		log_warn(&sess->c->log, "setting \\Seen: %s", err);
	free(uids);
	store_uids_clear(&expunged);
	sess->quit = true;
	if (ok)
		reply(sess, "+OK Logging out.");
	else
		reply(sess, "-ERR [SYS/TEMP] Some deleted messages were not "
		    "removed.");
}

static void
dispatch(struct pop3_session *sess, const struct pop3_cmd *cmd)
{
	switch (cmd->id) {
	case POP3_CMD_STAT:
		cmd_stat(sess);
		break;
	case POP3_CMD_LIST:
		cmd_list(sess, cmd, false);
		break;
	case POP3_CMD_UIDL:
		cmd_list(sess, cmd, true);
		break;
	case POP3_CMD_RETR:
		cmd_retr(sess, cmd, false);
		break;
	case POP3_CMD_TOP:
		cmd_retr(sess, cmd, true);
		break;
	case POP3_CMD_DELE:
		cmd_dele(sess, cmd);
		break;
	case POP3_CMD_NOOP:
		reply(sess, "+OK");
		break;
	case POP3_CMD_RSET:
		cmd_rset(sess);
		break;
	case POP3_CMD_CAPA:
		str_clear(sess->out);
		pop3d_capa(sess->out, sess->c, false, true);
		stream_puts(sess->s, "+OK Capability list follows\r\n");
		stream_write(sess->s, str_c(sess->out), str_len(sess->out));
		reply(sess, ".");
		break;
	case POP3_CMD_QUIT:
		session_update(sess);
		sess->done = true;
		break;
	default:
		reply_err(sess, "-ERR Unknown command or not valid in the "
		    "TRANSACTION state.");
		break;
	}
}

/* session_open - slots, lock, store, snapshot; false after an -ERR */
static bool
session_open(struct pop3_session *sess, int *slot_r, int *lock_r)
{
	struct login_conn *c = sess->c;
	struct store_status st;
	struct store_msg msg;
	struct str *dir = str_new(0, 0);
	const char *err = NULL;
	uint32_t i;
	int ret;
	bool ok = false;

	str_printf(dir, "%s/.pop3-conn", pop3d_settings.store_dir);
	ret = login_conn_slot(str_c(dir), sess->user,
	    pop3d_settings.user_conn_limit, slot_r, &err);
	if (ret == 0) {
		log_warn(&c->log, "too many sessions for user %s", sess->user);
		reply(sess, "-ERR [SYS/TEMP] Too many simultaneous sessions "
		    "for this user.");
		goto out;
	}
	if (ret < 0)
		log_warn(&c->log, "session slot for %s: %s: %m (not counted)",
		    sess->user, err);
	if (pop3d_settings.lock_session) {
		str_clear(dir);
		str_printf(dir, "%s/.pop3-lock", pop3d_settings.store_dir);
		ret = login_conn_slot(str_c(dir), sess->user, 1, lock_r, &err);
		if (ret == 0) {
			log_info(&c->log, "maildrop of %s is locked by another "
			    "POP3 session", sess->user);
			reply(sess, "-ERR [IN-USE] Mailbox is locked by another "
			    "POP3 session.");
			goto out;
		}
		if (ret < 0) {
			log_error(&c->log, "maildrop lock of %s: %s: %m",
			    sess->user, err);
			reply(sess, "-ERR [SYS/TEMP] Cannot lock the mailbox, try "
			    "again later.");
			goto out;
		}
	}
	sess->store = store_open(pop3d_settings.store_dir, sess->user, &err);
	if (sess->store == NULL) {
		log_error(&c->log, "store of %s: %s", sess->user, err);
		reply(sess, "-ERR [SYS/TEMP] Cannot open the mailbox.");
		goto out;
	}
	if (store_ensure_defaults(sess->store, &err) < 0)
		log_warn(&c->log, "default mailboxes of %s: %s", sess->user, err);
	sess->box = store_mailbox_open(sess->store, "INBOX", 0, &err);
	if (sess->box == NULL) {
		log_error(&c->log, "INBOX of %s: %s", sess->user, err);
		reply(sess, "-ERR [SYS/TEMP] Cannot open the mailbox.");
		goto out;
	}
	store_mailbox_status_get(sess->box, &st);
	sess->uidvalidity = st.uidvalidity;
	sess->count = store_mailbox_count(sess->box);
	sess->uids = xcalloc(sess->count + 1, sizeof(*sess->uids));
	sess->sizes = xcalloc(sess->count + 1, sizeof(*sess->sizes));
	sess->state = xcalloc(sess->count + 1, sizeof(*sess->state));
	for (i = 0; i < sess->count; i++) {
		store_msg_get(sess->box, i + 1, &msg);
		sess->uids[i] = msg.uid;
		sess->sizes[i] = msg.size;
		sess->total_bytes += msg.size;
	}
	ok = true;
out:
	str_free(&dir);
	return ok;
}

/* pop3d_session_run - see pop3d.h */
void
pop3d_session_run(struct login_conn *c, const char *user)
{
	struct pop3_session sess;
	struct str *line = str_new(0, 0);
	struct pop3_cmd cmd;
	enum stream_result r;
	int slot = -1, lock = -1;

	memset(&sess, 0, sizeof(sess));
	sess.c = c;
	sess.s = c->s;
	sess.user = xstrdup(user);
	sess.out = str_new(4096, 0);
	if (!session_open(&sess, &slot, &lock)) {
		stream_flush(sess.s);
		goto out;
	}
	stream_printf(sess.s, "+OK Logged in, %lu messages (%llu octets).\r\n",
	    (unsigned long)sess.count, (unsigned long long)sess.total_bytes);
	stream_flush(sess.s);
	sess.buf = xmalloc(POP3D_READ_BUF);
	while (!sess.done) {
		if (sess.errors >= POP3D_SESSION_ERRORS) {
			reply(&sess, "-ERR Too many errors, closing.");
			break;
		}
		/* flush only when the client has nothing more pipelined */
		if (stream_pending(sess.s) == 0 && stream_flush(sess.s) < 0)
			break;
		r = stream_read_line(sess.s, line, POP3D_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			reply_err(&sess, "-ERR Line too long");
			continue;
		}
		if (r != STREAM_OK) {
			if (stream_error(sess.s) == STREAM_TIMEOUT) {
				log_info(&c->log, "timeout: user=%s", sess.user);
				pop3d_timeout_reply(c);
			}
			break;
		}
		str_chomp(line);
		if (!pop3_parse_command(str_c(line), str_len(line), &cmd)) {
			sess.errors++;
			stream_printf(sess.s, "-ERR %s\r\n", cmd.error);
			continue;
		}
		dispatch(&sess, &cmd);
	}
	stream_flush(sess.s);
	log_info(&c->log, "disconnect: user=%s top=%u retr=%u/%llu del=%u/%u "
	    "size=%llu%s", sess.user, sess.n_top, sess.n_retr,
	    (unsigned long long)sess.retr_bytes, sess.n_expunged,
	    (unsigned)sess.count, (unsigned long long)sess.total_bytes,
	    sess.quit ? "" : " (no QUIT: nothing deleted)");
out:
	store_mailbox_close(&sess.box);
	store_free(&sess.store);
	if (lock >= 0)
		(void)close(lock);
	if (slot >= 0)
		(void)close(slot);
	free(sess.uids);
	free(sess.sizes);
	free(sess.state);
	free(sess.buf);
	free(sess.user);
	str_free(&sess.out);
	str_free(&line);
}
