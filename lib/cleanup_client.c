/* SPDX-License-Identifier: MIT */
/*
 * cleanup_client - hand a new message to cleanup over its UNIX socket
 *
 * DESCRIPTION
 *	Implements cleanup_client.h with the records of cleanup_proto.h.
 *	cleanup_client_open() connects, reads the queue ID cleanup sends
 *	at once, and queues the flags record; the envelope, recipients and
 *	content are buffered by a stream and go out as the buffer fills;
 *	cleanup_client_finish() sends the end record and waits for the
 *	verdict.
 *
 *	Sockets. cleanup listens on $queue_directory/public/cleanup
 *	(master.conf "cleanup unix n ..."), one socket for daemons and
 *	local users alike: cleanup tells them apart by SO_PEERCRED, not by
 *	the path. A caller that names .../private/cleanup (as the header
 *	once suggested) is connected to .../public/cleanup when the
 *	private socket does not exist.
 *
 *	Answering from disk. When the connection breaks or times out
 *	after the message was handed over, whether cleanup lived is the
 *	wrong question: what matters is what is on disk. finish() then
 *	looks the queue ID up (the queue directory is the parent of the
 *	socket's directory, "." for a relative "public/cleanup" in a
 *	chroot):
 *	  - in active/, deferred/ or hold/: committed, CLEANUP_OK;
 *	  - in incoming/ and complete (end record, checksums): cleanup
 *	    died between writing the end record and the rename; finish
 *	    the commit with queue_file_recover() and say CLEANUP_OK;
 *	  - in incoming/ and incomplete: unlink it, which also makes a
 *	    still-running writer's rename fail, so the message can never
 *	    appear after we said TEMPFAIL; then CLEANUP_TEMPFAIL;
 *	  - nowhere (or unreadable, e.g. a local user without access to
 *	    the queue): CLEANUP_TEMPFAIL.
 *	So a durably queued message is never answered 4xx and an
 *	incomplete one never 2xx.
 *
 *	XXX If the connection broke because WE timed out while cleanup was
 *	still alive between our locate() and unlink(), the answer can still
 *	be 4xx for a message that then gets committed (a duplicate on
 *	retry, never a loss); the window is one rename.
 *
 *	Logging: the caller logs the result; this module only logs (with
 *	the queue ID) the unusual recovery path, so operators can see it.
 *
 * SEE ALSO
 *	cleanup_client.h, cleanup_proto.h, cleanup(8)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "cleanup_client.h"
#include "cleanup_proto.h"
#include "log.h"
#include "stream.h"

/* How long we wait for cleanup at any step (it fsyncs before it answers). */
#define CLEANUP_CLIENT_TIMEOUT	300

struct cleanup_client {
	struct stream *stream;
	char *queue_dir;
	char id[QUEUE_ID_SIZE];
	unsigned flags;
	struct str *buf;		/* encoding scratch */
	struct str *in;			/* reply input */
	const char *local_error;	/* a bad argument from our caller */
	bool io_failed;			/* the connection broke */
	bool envelope_sent;
};

/* client_connect - connect to one socket path; fd or -1 */
static int
client_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* client_queue_dir - the parent of the socket's directory */
static char *
client_queue_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return xstrdup(".");
	n = (size_t)(slash - path);
	while (n > 0 && path[n - 1] != '/')
		n--;
	if (n == 0)
		return xstrdup(path[0] == '/' ? "/" : ".");
	/* path[0..n) ends with '/': drop it unless it is the root. */
	return xstrndup(path, n > 1 ? n - 1 : n);
}

/* client_read_record - read one whole record into c->in */
static int
client_read_record(struct cleanup_client *c, int *type_r, const char **error_r)
{
	enum stream_result r;
	size_t len;

	str_clear(c->in);
	r = stream_read_n(c->stream, c->in, CLEANUP_PROTO_HDR_SIZE);
	if (r != STREAM_OK) {
		*error_r = r == STREAM_TIMEOUT ? "timeout talking to cleanup" :
		    "connection to cleanup lost";
		return -1;
	}
	if (cleanup_proto_header(str_c(c->in), type_r, &len, error_r) < 0)
		return -1;
	str_clear(c->in);
	if (len > 0 && stream_read_n(c->stream, c->in, len) != STREAM_OK) {
		*error_r = "connection to cleanup lost";
		return -1;
	}
	return 0;
}

/* cleanup_client_open - connect, learn the queue ID, send the flags */
struct cleanup_client *
cleanup_client_open(const char *socket_path, unsigned flags,
    const char **error_r)
{
	struct cleanup_client *c;
	const char *path = socket_path, *priv;
	char *alt = NULL;
	int fd, type;

	fd = client_connect(path);
	priv = strstr(socket_path, "private/cleanup");
	if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED) &&
	    priv != NULL && strcmp(priv, "private/cleanup") == 0) {
		alt = xasprintf("%.*spublic/cleanup",
		    (int)(priv - socket_path), socket_path);
		path = alt;
		fd = client_connect(path);
	}
	if (fd < 0) {
		*error_r = errno == ENOENT ? "cleanup socket does not exist" :
		    errno == ECONNREFUSED ? "cleanup is not running" :
		    errno == EACCES ? "no permission to connect to cleanup" :
		    "cannot connect to cleanup";
		free(alt);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->stream = stream_new(fd, CLEANUP_CLIENT_TIMEOUT, 0);
	c->queue_dir = client_queue_dir(path);
	free(alt);
	c->flags = flags;
	c->buf = str_new(1024, 0);
	c->in = str_new(64, 0);
	if (client_read_record(c, &type, error_r) < 0)
		goto fail;
	if (type == CLEANUP_REC_STATUS) {
		*error_r = "cleanup refused the connection";
		goto fail;
	}
	if (type != CLEANUP_REC_ID || str_len(c->in) != QUEUE_ID_LEN ||
	    !queue_id_ok(str_c(c->in), str_len(c->in))) {
		*error_r = "cleanup sent no valid queue ID";
		goto fail;
	}
	memcpy(c->id, str_c(c->in), QUEUE_ID_LEN);
	c->id[QUEUE_ID_LEN] = '\0';
	str_clear(c->buf);
	(void)cleanup_proto_put_u32(c->buf, CLEANUP_REC_FLAGS, flags);
	if (stream_write(c->stream, str_c(c->buf), str_len(c->buf)) < 0) {
		*error_r = "connection to cleanup lost";
		goto fail;
	}
	return c;
fail:
	cleanup_client_abort(&c);
	return NULL;
}

/* cleanup_client_id - the queue ID */
const char *
cleanup_client_id(const struct cleanup_client *c)
{
	return c->id;
}

/* client_send - write c->buf; remember a broken connection */
static int
client_send(struct cleanup_client *c, const char **error_r)
{
	if (c->io_failed ||
	    stream_write(c->stream, str_c(c->buf), str_len(c->buf)) < 0) {
		c->io_failed = true;
		*error_r = "connection to cleanup lost";
		return -1;
	}
	return 0;
}

/* client_usable - refuse further calls after a failure */
static int
client_usable(const struct cleanup_client *c, const char **error_r)
{
	if (c->local_error != NULL) {
		*error_r = c->local_error;
		return -1;
	}
	if (c->io_failed) {
		*error_r = "connection to cleanup lost";
		return -1;
	}
	return 0;
}

/* cleanup_client_envelope - send the envelope (once, first) */
int
cleanup_client_envelope(struct cleanup_client *c,
    const struct queue_envelope *env, const char **error_r)
{
	if (client_usable(c, error_r) < 0)
		return -1;
	if (c->envelope_sent) {
		*error_r = c->local_error = "envelope sent twice";
		return -1;
	}
	str_clear(c->buf);
	if (cleanup_proto_put_envelope(c->buf, env, error_r) < 0) {
		c->local_error = *error_r;
		return -1;
	}
	c->envelope_sent = true;
	return client_send(c, error_r);
}

/* cleanup_client_rcpt - send one recipient */
int
cleanup_client_rcpt(struct cleanup_client *c, const struct queue_rcpt *rcpt,
    const char **error_r)
{
	if (client_usable(c, error_r) < 0)
		return -1;
	if (!c->envelope_sent) {
		*error_r = c->local_error = "recipient before envelope";
		return -1;
	}
	str_clear(c->buf);
	if (cleanup_proto_put_rcpt(c->buf, rcpt, error_r) < 0) {
		c->local_error = *error_r;
		return -1;
	}
	return client_send(c, error_r);
}

/* cleanup_client_content - send content in records of at most 64 KiB */
int
cleanup_client_content(struct cleanup_client *c, const void *data,
    size_t len, const char **error_r)
{
	const char *p = data;
	size_t n;

	if (client_usable(c, error_r) < 0)
		return -1;
	if (!c->envelope_sent) {
		*error_r = c->local_error = "content before envelope";
		return -1;
	}
	while (len > 0) {
		n = MIN(len, (size_t)CLEANUP_PROTO_DATA_MAX);
		str_clear(c->buf);
		(void)cleanup_proto_put(c->buf, CLEANUP_REC_DATA, NULL, 0);
		/* Patch the length in: the payload goes out without a copy. */
		str_data(c->buf)[1] = (char)(n >> 24);
		str_data(c->buf)[2] = (char)(n >> 16);
		str_data(c->buf)[3] = (char)(n >> 8);
		str_data(c->buf)[4] = (char)n;
		if (client_send(c, error_r) < 0 ||
		    stream_write(c->stream, p, n) < 0) {
			c->io_failed = true;
			*error_r = "connection to cleanup lost";
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* client_reason - set reason to "CODE text" */
static void
client_reason(struct str *reason, const char *text)
{
	if (reason != NULL)
		(void)str_set_cstr(reason, text);
}

/*
 * client_from_disk - the verdict when the connection broke after the
 * message may have been handed over (see DESCRIPTION).
 */
static enum cleanup_status
client_from_disk(struct cleanup_client *c, struct str *reason)
{
	struct log_ctx ctx = { .id = c->id };
	enum queue_name q, target;
	struct str *path;
	const char *error = "";
	int tries, r;

	target = (c->flags & CLEANUP_FLAG_HOLD) ? QUEUE_HOLD : QUEUE_ACTIVE;
	for (tries = 0; tries < 3; tries++) {
		if (queue_file_locate(c->queue_dir, c->id, &q) < 0) {
			if (errno != ENOENT)
				log_warn(&ctx, "connection to cleanup lost; "
				    "cannot look in the queue %s: %m",
				    c->queue_dir);
			client_reason(reason, "4.3.0 queue file writer failed");
			return CLEANUP_TEMPFAIL;
		}
		switch (q) {
		case QUEUE_ACTIVE:
		case QUEUE_DEFERRED:
		case QUEUE_HOLD:
			log_warn(&ctx, "connection to cleanup lost after the "
			    "commit; the message is queued in %s",
			    queue_name_str(q));
			return CLEANUP_OK;
		case QUEUE_INCOMING:
			r = queue_file_recover(c->queue_dir, c->id, target,
			    &error);
			if (r == 1) {
				log_warn(&ctx, "connection to cleanup lost; "
				    "completed its commit into %s",
				    queue_name_str(target));
				return CLEANUP_OK;
			}
			if (r < 0 && errno == ENOENT)
				continue;	/* moved meanwhile: look again */
			if (r < 0) {
				log_warn(&ctx, "connection to cleanup lost; "
				    "cannot recover the queue file: %s: %m",
				    error);
				client_reason(reason,
				    "4.3.0 queue file writer failed");
				return CLEANUP_TEMPFAIL;
			}
			/* Incomplete: remove it so it can never be committed. */
			path = str_new(256, 0);
			if (queue_file_path(c->queue_dir, QUEUE_INCOMING, c->id,
			    path) == 0 && unlink(str_c(path)) < 0 &&
			    errno == ENOENT) {
				str_free(&path);
				continue;	/* renamed meanwhile */
			}
			str_free(&path);
			log_warn(&ctx, "connection to cleanup lost before the "
			    "commit; removed the incomplete queue file");
			client_reason(reason, "4.3.0 queue file writer failed");
			return CLEANUP_TEMPFAIL;
		default:
			client_reason(reason, "4.3.0 queue file writer failed");
			return CLEANUP_TEMPFAIL;
		}
	}
	client_reason(reason, "4.3.0 queue file writer failed");
	return CLEANUP_TEMPFAIL;
}

/* cleanup_client_finish - end the message; cleanup's verdict */
enum cleanup_status
cleanup_client_finish(struct cleanup_client **cp, struct str *reason)
{
	struct cleanup_client *c = *cp;
	enum cleanup_status status;
	const char *error;
	unsigned st;
	int type;

	if (c == NULL) {
		client_reason(reason, "4.3.0 no connection to cleanup");
		return CLEANUP_TEMPFAIL;
	}
	if (c->local_error != NULL || !c->envelope_sent) {
		/* Cleanup discards the message when we close early. */
		if (reason != NULL) {
			str_clear(reason);
			(void)str_printf(reason, "5.3.0 bad message envelope: %s",
			    c->local_error != NULL ? c->local_error :
			    "no envelope");
		}
		cleanup_client_abort(cp);
		return CLEANUP_REJECT;
	}
	str_clear(c->buf);
	(void)cleanup_proto_put(c->buf, CLEANUP_REC_END, NULL, 0);
	if (client_send(c, &error) < 0 || stream_flush(c->stream) < 0)
		c->io_failed = true;
	/* Read the verdict even after a write error: it may be there. */
	if (client_read_record(c, &type, &error) < 0 ||
	    type != CLEANUP_REC_STATUS ||
	    cleanup_proto_get_status(str_c(c->in), str_len(c->in), &st,
	    c->buf, &error) < 0) {
		status = client_from_disk(c, reason);
	} else {
		status = (enum cleanup_status)st;
		if (reason != NULL) {
			str_clear(reason);
			if (status != CLEANUP_OK)
				mem_printable(reason, str_c(c->buf),
				    str_len(c->buf), CLEANUP_PROTO_REASON_MAX);
		}
	}
	cleanup_client_abort(cp);
	return status;
}

/* cleanup_client_abort - close without ending the message; NULL allowed */
void
cleanup_client_abort(struct cleanup_client **cp)
{
	struct cleanup_client *c = *cp;

	if (c == NULL)
		return;
	stream_free(&c->stream);
	str_free(&c->buf);
	str_free(&c->in);
	free(c->queue_dir);
	free(c);
	*cp = NULL;
}
