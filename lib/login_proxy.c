/* SPDX-License-Identifier: MIT */
/*
 * login_proxy - the pre-authentication / post-authentication split
 *
 * DESCRIPTION
 *	See login_proxy.h for the picture. The record on the wire, all
 *	integers u32 in host order (both ends are on one host):
 *
 *	    magic 'PLH1'  total_len  flags  peer_port  local_port
 *	    quota_hi  quota_lo
 *	    then 8 strings, each u32 len + bytes: user, peer_addr,
 *	    local_addr, tls, session_id, proto, lists, input
 *
 *	total_len covers the whole record and is checked against the
 *	limits before the rest is read. The fds arrive with the first
 *	bytes (SCM_RIGHTS on the first sendmsg).
 *
 *	The relay (TLS connections) keeps a bounded buffer for each
 *	direction. Writes to the client go through the TLS stream and are
 *	flushed at once; a slow client therefore holds up only its own
 *	session, whose mail process then blocks writing to us (natural
 *	back pressure). Writes to the inner socket are non-blocking, so the
 *	two directions cannot deadlock each other.
 *
 * SEE ALSO
 *	imapd(8), pop3d(8), unix(7) SCM_RIGHTS, fcntl(2) F_OFD_SETLK.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "login_proxy.h"
#include "server.h"
#include "str.h"
#include "stream.h"

#define LOGIN_HANDOFF_MAGIC	0x31484c50u	/* "PLH1" */
#define LOGIN_HANDOFF_FIXED	28	/* the 7 u32 before the strings */
#define LOGIN_HANDOFF_NSTR	8
#define LOGIN_HANDOFF_MAX	(LOGIN_HANDOFF_FIXED + LOGIN_HANDOFF_NSTR * 4 + \
    6 * LOGIN_HANDOFF_MAX_STRING + LOGIN_HANDOFF_MAX_LISTS + \
    LOGIN_HANDOFF_MAX_INPUT)
#define LOGIN_RELAY_BUF		(64 * 1024)

/* login_handoff_clear - see login_proxy.h */
void
login_handoff_clear(struct login_handoff *h)
{
	XFREE(h->user);
	XFREE(h->peer_addr);
	XFREE(h->local_addr);
	XFREE(h->tls);
	XFREE(h->session_id);
	XFREE(h->proto);
	XFREE(h->lists);
	str_free(&h->input);
	memset(h, 0, sizeof(*h));
}

static void
handoff_u32(struct str *out, uint32_t v)
{
	str_append(out, &v, sizeof(v));
}

/* handoff_string - one length-prefixed field; false if unfit */
static bool
handoff_string(struct str *out, const char *p, size_t n, size_t max,
    bool binary)
{
	if (p == NULL)
		n = 0;
	if (n > max || (!binary && n > 0 && memchr(p, '\0', n) != NULL))
		return false;
	handoff_u32(out, (uint32_t)n);
	if (n > 0)
		str_append(out, p, n);
	return true;
}

/* login_handoff_encode - see login_proxy.h */
int
login_handoff_encode(const struct login_handoff *h, struct str *out)
{
	const char *s[6] = { h->user, h->peer_addr, h->local_addr, h->tls,
	    h->session_id, h->proto };
	size_t i;
	uint32_t len;

	str_clear(out);
	handoff_u32(out, LOGIN_HANDOFF_MAGIC);
	handoff_u32(out, 0);
	handoff_u32(out, h->flags);
	handoff_u32(out, h->peer_port);
	handoff_u32(out, h->local_port);
	handoff_u32(out, (uint32_t)(h->quota >> 32));
	handoff_u32(out, (uint32_t)h->quota);
	for (i = 0; i < N_ELEMENTS(s); i++)
		if (!handoff_string(out, s[i], s[i] != NULL ? strlen(s[i]) : 0,
		    LOGIN_HANDOFF_MAX_STRING, false))
			return -1;
	if (!handoff_string(out, h->lists, h->lists != NULL ?
	    strlen(h->lists) : 0, LOGIN_HANDOFF_MAX_LISTS, false))
		return -1;
	if (!handoff_string(out, h->input != NULL ? str_c(h->input) : NULL,
	    h->input != NULL ? str_len(h->input) : 0, LOGIN_HANDOFF_MAX_INPUT,
	    true))
		return -1;
	len = (uint32_t)str_len(out);
	memcpy(str_data(out) + 4, &len, sizeof(len));
	return 0;
}

struct handoff_reader {
	const unsigned char *p;
	size_t n, pos;
};

static bool
reader_u32(struct handoff_reader *r, uint32_t *v)
{
	if (r->n - r->pos < 4)
		return false;
	memcpy(v, r->p + r->pos, 4);
	r->pos += 4;
	return true;
}

/* reader_string - a field into a fresh NUL-terminated copy */
static bool
reader_string(struct handoff_reader *r, size_t max, bool binary,
    char **out_r, size_t *len_r)
{
	uint32_t len;

	if (!reader_u32(r, &len) || len > max || r->n - r->pos < len)
		return false;
	if (!binary && memchr(r->p + r->pos, '\0', len) != NULL)
		return false;
	*out_r = xmemdup(r->p + r->pos, len);
	if (len_r != NULL)
		*len_r = len;
	r->pos += len;
	return true;
}

/* login_handoff_decode - see login_proxy.h */
int
login_handoff_decode(const void *p, size_t n, struct login_handoff *h,
    const char **error_r)
{
	struct handoff_reader r = { p, n, 0 };
	uint32_t magic, len, qhi, qlo;
	char **s[6];
	char *input = NULL;
	size_t i, ilen = 0;

	memset(h, 0, sizeof(*h));
	s[0] = &h->user;
	s[1] = &h->peer_addr;
	s[2] = &h->local_addr;
	s[3] = &h->tls;
	s[4] = &h->session_id;
	s[5] = &h->proto;
	if (!reader_u32(&r, &magic) || magic != LOGIN_HANDOFF_MAGIC ||
	    !reader_u32(&r, &len) || len != n) {
		*error_r = "bad hand-off record header";
		goto fail;
	}
	if (!reader_u32(&r, &h->flags) || !reader_u32(&r, &h->peer_port) ||
	    !reader_u32(&r, &h->local_port) || !reader_u32(&r, &qhi) ||
	    !reader_u32(&r, &qlo) || h->peer_port > 65535 ||
	    h->local_port > 65535 || (h->flags & ~(LOGIN_HANDOFF_TLS |
	    LOGIN_HANDOFF_SECURED | LOGIN_HANDOFF_QUOTA)) != 0) {
		*error_r = "bad hand-off record fields";
		goto fail;
	}
	h->quota = (uint64_t)qhi << 32 | qlo;
	for (i = 0; i < N_ELEMENTS(s); i++)
		if (!reader_string(&r, LOGIN_HANDOFF_MAX_STRING, false, s[i],
		    NULL)) {
			*error_r = "bad hand-off record string";
			goto fail;
		}
	if (!reader_string(&r, LOGIN_HANDOFF_MAX_LISTS, false, &h->lists,
	    NULL)) {
		*error_r = "bad hand-off record string";
		goto fail;
	}
	if (!reader_string(&r, LOGIN_HANDOFF_MAX_INPUT, true, &input, &ilen) ||
	    r.pos != r.n) {
		free(input);
		*error_r = "bad hand-off record input";
		goto fail;
	}
	h->input = str_new(ilen, 0);
	str_append(h->input, input, ilen);
	free(input);
	if (*h->user == '\0') {
		*error_r = "hand-off record without a user";
		goto fail;
	}
	return 0;
fail:
	login_handoff_clear(h);
	return -1;
}

/* proxy_wait - poll fd for events until deadline (ms, monotonic) */
static int
proxy_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	struct timespec ts;
	int64_t now;
	int ret;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		ret = poll(&pfd, 1, (int)MIN(deadline - now, 1000 * 3600));
		if (ret > 0)
			return 0;
		if (ret < 0 && errno != EINTR)
			return -1;
	}
}

static int64_t
proxy_deadline(unsigned timeout)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	    (int64_t)(timeout ? timeout : 3600) * 1000;
}

/* proxy_sndtimeo - SO_SNDTIMEO for what is left until deadline (ms) */
static int
proxy_sndtimeo(int sock, int64_t deadline)
{
	struct timeval tv;
	struct timespec ts;
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	left = deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (left <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	return setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* proxy_connect - a socket connected to path (SO_SNDTIMEO to deadline) */
static int
proxy_connect(const char *path, int64_t deadline, const char **error_r)
{
	struct sockaddr_un sun;
	int sock, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (pst_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		*error_r = "socket path too long";
		return -1;
	}
	if ((sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		*error_r = "socket";
		return -1;
	}
	/*
	 * A blocking AF_UNIX connect on a full backlog sleeps until the
	 * mail side accepts one (or SO_SNDTIMEO). Non-blocking, it fails
	 * with EAGAIN and poll(2) reports an unconnected socket writable at
	 * once, so waiting for room that way spins, a hundred login
	 * processes at a time in a burst.
	 */
	if (proxy_sndtimeo(sock, deadline) < 0 ||
	    connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		saved = errno == EAGAIN ? ETIMEDOUT : errno;
		(void)close(sock);
		errno = saved;
		*error_r = "connect";
		return -1;
	}
	return sock;
}

/* proxy_send_rec - send rec with fds on its first octet, by deadline */
static int
proxy_send_rec(int sock, const void *rec, size_t len, const int *fds,
    size_t nfds, int64_t deadline, bool *sent_r, const char **error_r)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * LOGIN_PROXY_MAX_FDS)];
	} cbuf;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	size_t off = 0;
	ssize_t n;
	int fl;

	ASSERT(nfds <= LOGIN_PROXY_MAX_FDS);
	*sent_r = false;
	if ((fl = fcntl(sock, F_GETFL)) < 0 ||
	    fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0) {
		*error_r = "fcntl";
		return -1;
	}
	while (off < len) {
		memset(&msg, 0, sizeof(msg));
		memcpy(&iov.iov_base, &rec, sizeof(rec));
		iov.iov_base = (char *)iov.iov_base + off;
		iov.iov_len = len - off;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (off == 0 && nfds > 0) {
			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n > 0) {
			*sent_r = true;
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN &&
		    proxy_wait(sock, POLLOUT, deadline) == 0)
			continue;
		*error_r = "sendmsg";
		return -1;
	}
	return 0;
}

/* login_proxy_send - see login_proxy.h */
int
login_proxy_send(const char *path, int client_fd, int slot_fd,
    const struct login_handoff *h, unsigned timeout, const char **error_r)
{
	struct str *rec = str_new(512, 0);
	int64_t deadline = proxy_deadline(timeout);
	int fds[2], nfds = 0, sock = -1, rc = -1;
	bool sent = false;
	ssize_t n;

	if (login_handoff_encode(h, rec) < 0) {
		*error_r = "hand-off record field too long";
		goto out;
	}
	if ((sock = proxy_connect(path, deadline, error_r)) < 0)
		goto out;
	fds[nfds++] = client_fd;
	if (slot_fd >= 0)
		fds[nfds++] = slot_fd;
	if (proxy_send_rec(sock, str_data(rec), str_len(rec), fds,
	    (size_t)nfds, deadline, &sent, error_r) < 0)
		goto out;
	/* the mail side closes after taking the record: wait for that */
	for (;;) {
		char c;

		n = read(sock, &c, 1);
		if (n == 0)
			break;
		if (n > 0) {
			*error_r = "unexpected data from the mail service";
			goto out;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && proxy_wait(sock, POLLIN, deadline) == 0)
			continue;
		*error_r = errno == ETIMEDOUT ? "timeout waiting for the mail service" :
		    "read from the mail service";
		goto out;
	}
	rc = 0;
out:
	/*
	 * The fds sit in the mail socket's queue once a byte is sent: a
	 * worker that accepts after our deadline would still get them and
	 * serve a session we report as failed, reading the same client
	 * socket as our caller. Shutting the socket down (not just our fd)
	 * makes such a late take see a dead client.
	 */
	if (rc < 0 && sent)
		(void)shutdown(client_fd, SHUT_RDWR);
	if (sock >= 0)
		(void)close(sock);
	str_free(&rec);
	return rc;
}

/* recv_close_fds - close fds that came with a rejected record */
static void
recv_close_fds(int *fds, size_t *nfds)
{
	size_t i;

	for (i = 0; i < *nfds; i++)
		(void)close(fds[i]);
	*nfds = 0;
}

/*
 * proxy_recv_rec - one record (u32 total length at octet 4, in
 * [min, max]) into rec (replaced) and up to maxfds fds; on failure
 * every received fd is closed
 */
static int
proxy_recv_rec(int sock, struct str *rec, size_t min, size_t max,
    int *fds_r, size_t maxfds, size_t *nfds_r, int64_t deadline,
    const char **error_r)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * (LOGIN_PROXY_MAX_FDS + 2))];
	} cbuf;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	uint32_t total = 0;
	size_t want = 8, i, cnt;
	ssize_t n;
	char *w;
	int fl;

	ASSERT(min >= 8 && maxfds <= LOGIN_PROXY_MAX_FDS);
	*nfds_r = 0;
	str_clear(rec);
	if ((fl = fcntl(sock, F_GETFL)) >= 0)
		(void)fcntl(sock, F_SETFL, fl | O_NONBLOCK);
	while (str_len(rec) < want) {
		w = str_reserve(rec, want - str_len(rec));
		ASSERT(w != NULL);
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = w;
		iov.iov_len = want - str_len(rec);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (proxy_wait(sock, POLLIN, deadline) == 0)
				continue;
			*error_r = "timeout reading the record";
			goto fail;
		}
		if (n <= 0) {
			*error_r = n == 0 ? "connection closed early" :
			    "recvmsg";
			goto fail;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL;
		    cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < cnt; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				    sizeof(int));
				if (*nfds_r < maxfds)
					fds_r[(*nfds_r)++] = fd;
				else
					(void)close(fd);
			}
		}
		if ((msg.msg_flags & MSG_CTRUNC) != 0) {
			*error_r = "record carried too many fds";
			goto fail;
		}
		str_commit(rec, (size_t)n);
		if (want == 8 && str_len(rec) >= 8) {
			memcpy(&total, str_c(rec) + 4, 4);
			if (total < min || total > max) {
				*error_r = "record size out of range";
				goto fail;
			}
			want = total;
		}
	}
	return 0;
fail:
	recv_close_fds(fds_r, nfds_r);
	return -1;
}

/* login_proxy_recv - see login_proxy.h */
int
login_proxy_recv(int sock, struct login_handoff *h, int *fds_r,
    size_t *nfds_r, unsigned timeout, const char **error_r)
{
	struct str *rec = str_new(512, LOGIN_HANDOFF_MAX);

	memset(h, 0, sizeof(*h));
	if (proxy_recv_rec(sock, rec, LOGIN_HANDOFF_FIXED, LOGIN_HANDOFF_MAX,
	    fds_r, LOGIN_HANDOFF_MAX_FDS, nfds_r, proxy_deadline(timeout),
	    error_r) < 0)
		goto fail;
	if (*nfds_r == 0) {
		*error_r = "hand-off without a client fd";
		goto fail;
	}
	if (login_handoff_decode(str_c(rec), str_len(rec), h, error_r) < 0)
		goto fail;
	str_free(&rec);
	/* the acknowledgement: the login side waits for this close */
	(void)shutdown(sock, SHUT_RDWR);
	return 0;
fail:
	recv_close_fds(fds_r, nfds_r);
	str_free(&rec);
	return -1;
}

/* login_proxy_connect - see login_proxy.h */
int
login_proxy_connect(const char *path, unsigned timeout, const char **error_r)
{
	return proxy_connect(path, proxy_deadline(timeout), error_r);
}

/* login_proxy_send_rec - see login_proxy.h */
int
login_proxy_send_rec(int sock, const void *rec, size_t len, const int *fds,
    size_t nfds, unsigned timeout, const char **error_r)
{
	bool sent;

	return proxy_send_rec(sock, rec, len, fds, nfds,
	    proxy_deadline(timeout), &sent, error_r);
}

/* login_proxy_recv_rec - see login_proxy.h */
int
login_proxy_recv_rec(int sock, struct str *rec, size_t min, size_t max,
    int *fds_r, size_t maxfds, size_t *nfds_r, unsigned timeout,
    const char **error_r)
{
	return proxy_recv_rec(sock, rec, min, max, fds_r, maxfds, nfds_r,
	    proxy_deadline(timeout), error_r);
}

/* login_proxy_relay - see login_proxy.h */
int
login_proxy_relay(struct stream *client, int inner_fd,
    bool (*pending)(const void *ctx), const void *pending_ctx,
    const char **error_r)
{
	struct str *in = str_new(LOGIN_RELAY_BUF, 0);
	char *buf = xmalloc(LOGIN_RELAY_BUF);
	struct pollfd pfd[2];
	bool client_eof = false;
	enum stream_result r;
	int fl, rc = -1;
	ssize_t n;

	if ((fl = fcntl(inner_fd, F_GETFL)) >= 0)
		(void)fcntl(inner_fd, F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		bool want_client = !client_eof && str_len(in) < LOGIN_RELAY_BUF;

		/* input poll(2) cannot see: the stream's and TLS's buffers */
		if (want_client && (stream_pending(client) > 0 ||
		    (pending != NULL && pending(pending_ctx)))) {
			r = stream_read_some(client, in, LOGIN_RELAY_BUF -
			    str_len(in));
			if (r != STREAM_OK)
				goto client_gone;
			continue;
		}
		pfd[0].fd = want_client ? stream_fd(client) : -1;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = inner_fd;
		pfd[1].events = POLLIN | (str_len(in) > 0 ? POLLOUT : 0);
		pfd[1].revents = 0;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			*error_r = "poll";
			goto out;
		}
		if ((pfd[1].revents & POLLOUT) != 0 && str_len(in) > 0) {
			n = send(inner_fd, str_c(in), str_len(in), MSG_NOSIGNAL);
			if (n > 0)
				str_delete_head(in, (size_t)n);
			else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				rc = 0;	/* the mail side is gone */
				goto out;
			}
			if (client_eof && str_len(in) == 0)
				(void)shutdown(inner_fd, SHUT_WR);
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			n = read(inner_fd, buf, LOGIN_RELAY_BUF);
			if (n == 0 || (n < 0 && errno != EAGAIN &&
			    errno != EINTR)) {
				rc = 0;
				goto out;
			}
			if (n > 0 && !client_eof &&
			    (stream_write(client, buf, (size_t)n) < 0 ||
			    stream_flush(client) < 0)) {
				/* client gone: keep draining the mail side */
				client_eof = true;
				str_clear(in);
				(void)shutdown(inner_fd, SHUT_WR);
			}
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			r = stream_read_some(client, in, LOGIN_RELAY_BUF -
			    str_len(in));
			if (r != STREAM_OK)
				goto client_gone;
		}
		continue;
client_gone:
		client_eof = true;
		if (str_len(in) == 0)
			(void)shutdown(inner_fd, SHUT_WR);
	}
out:
	free(buf);
	str_free(&in);
	return rc;
}

struct login_proxy_input {
	int fd;
	struct str *data;
	size_t pos;
};

static ssize_t
input_read(void *ctx, void *buf, size_t len, enum stream_want *want_r)
{
	struct login_proxy_input *in = ctx;
	ssize_t n;

	if (in->pos < str_len(in->data)) {
		size_t c = MIN(len, str_len(in->data) - in->pos);

		memcpy(buf, str_c(in->data) + in->pos, c);
		in->pos += c;
		return (ssize_t)c;
	}
	n = read(in->fd, buf, len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		*want_r = STREAM_WANT_READ;
	return n;
}

static ssize_t
input_write(void *ctx, const void *buf, size_t len, enum stream_want *want_r)
{
	struct login_proxy_input *in = ctx;
	ssize_t n;

	n = send(in->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0 && errno == ENOTSOCK)
		n = write(in->fd, buf, len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		*want_r = STREAM_WANT_WRITE;
	return n;
}

static const struct stream_io input_io = { input_read, input_write };

/* login_proxy_input_new - see login_proxy.h */
struct login_proxy_input *
login_proxy_input_new(struct stream *s, int fd, struct str **inputp)
{
	struct login_proxy_input *in;

	if (*inputp == NULL || str_len(*inputp) == 0)
		return NULL;
	in = xmalloc(sizeof(*in));
	in->fd = fd;
	in->data = *inputp;
	*inputp = NULL;
	stream_set_io(s, &input_io, in);
	return in;
}

void
login_proxy_input_free(struct login_proxy_input **inp)
{
	if (*inp == NULL)
		return;
	str_free(&(*inp)->data);
	XFREE(*inp);
}

/* login_conn_id - see login_proxy.h */
void
login_conn_id(struct login_conn *c)
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(c->id, sizeof(c->id), "%lX%05lX%X%X", (unsigned long)tv.tv_sec,
	    (unsigned long)tv.tv_usec, (unsigned)getpid(), counter++ & 0xff);
	c->log.id = c->id;
}

/* login_addr_is_loopback - see login_proxy.h */
bool
login_addr_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	    strncmp(addr, "::ffff:127.", 11) == 0 || strcmp(addr, "local") == 0;
}

/* login_conn_accept - see login_proxy.h */
bool
login_conn_accept(struct login_conn *c, const struct server_conn *conn,
    unsigned timeout, const char *data_dir, const char *slot_name,
    unsigned limit)
{
	struct str *dir = str_new(0, 0);
	const char *why = NULL;
	int ret;

	memset(c, 0, sizeof(*c));
	c->slot_fd = -1;
	login_conn_id(c);
	c->peer_addr = xstrdup(conn->peer_addr);
	c->peer_port = conn->peer_port;
	c->local_addr = xstrdup(conn->local_addr != NULL ? conn->local_addr :
	    "");
	c->local_port = conn->local_port;
	c->s = stream_new(conn->fd, timeout, STREAM_NO_CLOSE);
	log_info(&c->log, "connect from %s port %u", c->peer_addr,
	    c->peer_port);
	str_printf(dir, "%s/%s", data_dir, slot_name);
	ret = login_conn_slot(str_c(dir), c->peer_addr, limit, &c->slot_fd,
	    &why);
	str_free(&dir);
	if (ret < 0)
		log_warn(&c->log, "connection slot for %s: %s: %m (not "
		    "counted)", c->peer_addr, why);
	if (ret == 0) {
		log_warn(&c->log, "too many connections from %s",
		    c->peer_addr);
		return false;
	}
	return true;
}

/* login_conn_handoff_record - see login_proxy.h */
int
login_conn_handoff_record(struct login_conn *c, const char *user,
    const char *proto, struct login_handoff *h)
{
	if (stream_pending(c->s) > LOGIN_HANDOFF_MAX_INPUT)
		return -1;
	memset(h, 0, sizeof(*h));
	h->flags = (c->tls ? LOGIN_HANDOFF_TLS : 0) |
	    (c->secured ? LOGIN_HANDOFF_SECURED : 0) |
	    (c->have_quota ? LOGIN_HANDOFF_QUOTA : 0);
	h->quota = c->have_quota ? c->quota_bytes : 0;
	h->user = xstrdup(user);
	h->peer_addr = xstrdup(c->peer_addr);
	h->peer_port = c->peer_port;
	h->local_addr = xstrdup(c->local_addr);
	h->local_port = c->local_port;
	h->tls = xstrdup(c->tls_desc != NULL ? c->tls_desc : "");
	h->session_id = xstrdup(c->id);
	h->proto = xstrdup(proto != NULL ? proto : "");
	h->lists = xstrdup(c->dir_lists != NULL ? c->dir_lists : "");
	h->input = str_new(0, 0);
	if (stream_pending(c->s) > 0)
		(void)stream_read_some(c->s, h->input, stream_pending(c->s));
	return 0;
}

/* login_conn_handoff - see login_proxy.h */
int
login_conn_handoff(struct login_conn *c, int sock, unsigned timeout,
    struct login_handoff *h, const char **error_r)
{
	int fds[LOGIN_HANDOFF_MAX_FDS];
	size_t nfds = 0;

	memset(c, 0, sizeof(*c));
	c->slot_fd = -1;
	if (login_proxy_recv(sock, h, fds, &nfds, LOGIN_HANDOFF_TIMEOUT,
	    error_r) < 0)
		return -1;
	(void)snprintf(c->id, sizeof(c->id), "%s", h->session_id);
	c->log.id = c->id;
	c->peer_addr = xstrdup(h->peer_addr);
	c->peer_port = h->peer_port;
	c->local_addr = xstrdup(h->local_addr);
	c->local_port = h->local_port;
	c->tls = (h->flags & LOGIN_HANDOFF_TLS) != 0;
	c->secured = (h->flags & LOGIN_HANDOFF_SECURED) != 0;
	c->tls_desc = xstrdup(h->tls);
	c->have_quota = (h->flags & LOGIN_HANDOFF_QUOTA) != 0;
	c->quota_bytes = h->quota;
	c->dir_lists = xstrdup(h->lists != NULL ? h->lists : "");
	c->slot_fd = nfds > 1 ? fds[1] : -1;
	c->s = stream_new(fds[0], timeout, 0);
	c->input = login_proxy_input_new(c->s, fds[0], &h->input);
	return 0;
}

/* login_conn_clear - see login_proxy.h */
void
login_conn_clear(struct login_conn *c)
{
	ASSERT(c->tls_sess == NULL);
	/* the stream first: its I/O layer is c->input */
	stream_free(&c->s);
	login_proxy_input_free(&c->input);
	XFREE(c->peer_addr);
	XFREE(c->local_addr);
	XFREE(c->tls_desc);
	XFREE(c->dir_lists);
	if (c->slot_fd >= 0)
		(void)close(c->slot_fd);
	c->slot_fd = -1;
}

/* login_conn_slot - see login_proxy.h */
int
login_conn_slot(const char *dir, const char *key, unsigned limit,
    int *fd_r, const char **error_r)
{
	char path[1024];
	struct flock fl;
	const char *p;
	unsigned i;
	int fd;

	*fd_r = -1;
	if (limit == 0 || *key == '\0')
		return 1;
	for (p = key; *p != '\0'; p++)
		if (strchr("0123456789abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.:_@+-", *p) == NULL)
			return 1;
	if (key[0] == '.')
		return 1;
	if (snprintf(path, sizeof(path), "%s/%s", dir, key) >= (int)sizeof(path)) {
		*error_r = "path too long";
		return -1;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "mkdir";
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0) {
		*error_r = "open";
		return -1;
	}
	for (i = 0; i < limit; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)i;
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
			*fd_r = fd;
			return 1;
		}
	}
	(void)close(fd);
	return 0;
}
