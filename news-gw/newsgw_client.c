/* SPDX-License-Identifier: MIT */
/*
 * newsgw_client - news-gw's NNTP client: POST, IHAVE, reading commands
 *
 * DESCRIPTION
 *	newsgw_nntp_open() connects to "host:port" (a name or an address;
 *	"[v6]:port" for IPv6) and reads the greeting (200/201; 400/502 are
 *	temporary/permanent refusals). Then, in this order (RFC 4642 and
 *	RFC 4643 want a mode-switching server such as INN in its final
 *	mode before STARTTLS and AUTHINFO):
 *
 *	    MODE READER  for POST and for the puller (INN hands a feeding
 *	                 peer's connection to its reader, nnrpd, only then);
 *	    STARTTLS     when $news_gw_starttls (RFC 4642): 382, then the
 *	                 TLS handshake (lib/tls) with SNI (not for an
 *	                 address literal); with
 *	                 $news_gw_tls_ca_file the certificate must verify
 *	                 and be for the host (RFC 6125), without it the
 *	                 session is encrypted but unauthenticated. TLS is
 *	                 then required: no 382, a failed handshake or an
 *	                 untrusted certificate ends the connection before
 *	                 anything else is sent (fail closed; the caller
 *	                 treats it as temporary). CAPABILITIES seen before
 *	                 are forgotten (we keep none).
 *	    AUTHINFO     USER/PASS (RFC 4643) when $news_gw_username is
 *	                 set, and only to $news_gw_server (never to a
 *	                 different $news_gw_pull_server): 381 then 281.
 *
 *	Posting (RFC 3977 6.3.1 POST, 6.3.2 IHAVE):
 *	    POST:  340 -> article -> 240 ok; 440/441 refused, but a 441
 *	           whose text says the article is a duplicate ("435",
 *	           "Duplicate", "already have") is delivered; other 4xx
 *	           codes that RFC 3977 names temporary (400, 403, 436)
 *	           are temporary.
 *	    IHAVE: 335 -> article -> 235 ok; 435 (not wanted: already
 *	           there) delivered; 436 temporary; 437 refused.
 *	A broken connection or timeout is temporary. Every reply line is
 *	bounded (NNTP_LINE_MAX .. 4 KB) and every block is bounded by
 *	$news_gw_message_size_limit.
 *
 *	XXX: SASL (AUTHINFO SASL, RFC 4643 2.4) is not implemented; a
 *	server that offers only SASL cannot be used.
 *
 * SEE ALSO
 *	RFC 3977, RFC 4643, RFC 4642.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "nntp_proto.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "newsgw.h"

#define NEWSGW_REPLY_MAX	4096
#define NEWSGW_BLOCK_LINE_MAX	(64 * 1024)

struct newsgw_nntp {
	struct stream *s;
	struct tls_session *tls;
	bool broken;		/* no QUIT at close (a failed handshake) */
	struct str *line;
	struct log_ctx *log;
};

/* newsgw_connect - a connected TCP socket to server, or -1 with why; its host part into host */
static int
newsgw_connect(const char *server, struct str *host, struct str *why)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd pfd;
	const char *colon, *port;
	socklen_t len;
	int fd = -1, err, flags;

	if (server[0] == '[' && (colon = strstr(server, "]:")) != NULL) {
		str_set(host, server + 1, (size_t)(colon - server - 1));
		port = colon + 2;
	} else if ((colon = strrchr(server, ':')) != NULL) {
		str_set(host, server, (size_t)(colon - server));
		port = colon + 1;
	} else {
		str_set_cstr(host, server);
		port = "119";
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((err = getaddrinfo(str_c(host), port, &hints, &res)) != 0) {
		str_printf(why, "%s: %s", server, gai_strerror(err));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		flags = fcntl(fd, F_GETFL);
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
		if (err == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, (int)newsgw_settings.timeout * 1000) == 1) {
				len = sizeof(err);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
				    &len) < 0)
					err = errno;
			} else
				err = ETIMEDOUT;
		}
		if (err == 0) {
			(void)fcntl(fd, F_SETFL, flags);
			goto out;
		}
		errno = err;
		str_clear(why);
		str_printf(why, "connect to %s: %s", server, strerror(errno));
		close(fd);
		fd = -1;
	}
	if (str_len(why) == 0)
		str_printf(why, "connect to %s: no address", server);
out:
	if (res != NULL)
		freeaddrinfo(res);
	return fd;
}

/* newsgw_nntp_reply - read one reply line; its code, -1 if broken */
static int
newsgw_nntp_reply(struct newsgw_nntp *n, struct str *reply)
{
	enum stream_result r;
	int code;

	if (stream_flush(n->s) < 0)
		return -1;
	r = stream_read_line(n->s, n->line, NEWSGW_REPLY_MAX);
	if (r != STREAM_OK) {
		str_clear(reply);
		str_printf(reply, "reading reply: %s", stream_result_name(r));
		return -1;
	}
	str_chomp(n->line);
	str_clear(reply);
	mem_printable(reply, str_c(n->line), str_len(n->line), 500);
	code = nntp_reply_parse(str_c(n->line), str_len(n->line), NULL, NULL);
	return code;
}

/* newsgw_nntp_cmd - see newsgw.h */
int
newsgw_nntp_cmd(struct newsgw_nntp *n, const char *cmd, struct str *reply)
{
	if (stream_printf(n->s, "%s\r\n", cmd) < 0)
		return -1;
	return newsgw_nntp_reply(n, reply);
}

/* newsgw_nntp_starttls - STARTTLS and the handshake; false with why (fail closed) */
static bool
newsgw_nntp_starttls(struct newsgw_nntp *n, const char *server,
    const char *host, struct str *why)
{
	struct str *reply = str_new(0, 0), *desc = str_new(0, 0);
	unsigned char addr[16];
	bool ok = false, literal;
	int code;

	if (newsgw_settings.tls_ctx == NULL) {
		str_printf(why, "%s: STARTTLS: no TLS context", server);
		goto out;
	}
	code = newsgw_nntp_cmd(n, "STARTTLS", reply);
	if (code != 382) {
		str_printf(why, "%s: TLS is required, but the server refused "
		    "STARTTLS: %s", server, str_c(reply));
		goto out;
	}
	/* no SNI for an address literal (RFC 6066 3) */
	literal = inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
	n->tls = tls_session_start(newsgw_settings.tls_ctx, n->s,
	    literal ? NULL : host, newsgw_settings.timeout, desc);
	if (n->tls == NULL) {
		str_printf(why, "%s: TLS handshake failed: %s", server,
		    str_c(desc));
		goto out;
	}
	str_clear(desc);
	tls_session_describe(n->tls, desc);
	log_info(n->log, "%s TLS connection established to %s: %s",
	    tls_session_verified(n->tls) ? "Trusted" : "Untrusted", server,
	    str_c(desc));
	if (newsgw_settings.tls_ca_file[0] != '\0') {
		if (!tls_session_verified(n->tls)) {
			str_printf(why, "%s: server certificate not trusted by "
			    "news_gw_tls_ca_file", server);
			goto out;
		}
		if (!tls_session_name_matches(n->tls, host)) {
			str_printf(why, "%s: server certificate is not for %s",
			    server, host);
			goto out;
		}
	}
	ok = true;
out:
	str_free(&reply);
	str_free(&desc);
	return ok;
}

/* newsgw_nntp_open - see newsgw.h */
struct newsgw_nntp *
newsgw_nntp_open(const char *server, bool reader, struct str *why,
    struct log_ctx *log)
{
	struct newsgw_nntp *n;
	struct str *cmd = str_new(0, 0), *reply = str_new(0, 0),
	    *host = str_new(0, 0);
	int fd, code;

	str_clear(why);
	if (server == NULL || server[0] == '\0') {
		str_set_cstr(why, "no NNTP server configured");
		n = NULL;
		goto out;
	}
	if ((fd = newsgw_connect(server, host, why)) < 0) {
		n = NULL;
		goto out;
	}
	n = xcalloc(1, sizeof(*n));
	n->s = stream_new(fd, newsgw_settings.timeout, 0);
	n->line = str_new(0, 0);
	n->log = log;
	code = newsgw_nntp_reply(n, reply);
	if (code != 200 && code != 201) {
		str_printf(why, "%s greeted: %s", server, str_c(reply));
		goto fail;
	}
	if (reader) {
		code = newsgw_nntp_cmd(n, "MODE READER", reply);
		if (code != 200 && code != 201) {
			str_printf(why, "%s: MODE READER: %s", server,
			    str_c(reply));
			goto fail;
		}
	}
	if (newsgw_settings.starttls &&
	    !newsgw_nntp_starttls(n, server, str_c(host), why)) {
		n->broken = n->tls == NULL;
		goto fail;
	}
	if (newsgw_settings.username[0] != '\0' &&
	    strcmp(server, newsgw_settings.server) == 0) {
		str_printf(cmd, "AUTHINFO USER %s", newsgw_settings.username);
		code = newsgw_nntp_cmd(n, str_c(cmd), reply);
		if (code == 381) {
			str_clear(cmd);
			str_printf(cmd, "AUTHINFO PASS %s",
			    newsgw_settings.password);
			code = newsgw_nntp_cmd(n, str_c(cmd), reply);
			explicit_bzero(str_data(cmd), str_len(cmd));
		}
		if (code != 281) {
			str_printf(why, "%s: authentication failed: %s", server,
			    str_c(reply));
			goto fail;
		}
	}
	goto out;
fail:
	newsgw_nntp_close(&n);
out:
	str_free(&cmd);
	str_free(&reply);
	str_free(&host);
	return n;
}

/* newsgw_nntp_close - see newsgw.h */
void
newsgw_nntp_close(struct newsgw_nntp **np)
{
	struct newsgw_nntp *n = *np;
	struct str *reply;

	if (n == NULL)
		return;
	if (!n->broken && stream_error(n->s) == STREAM_OK) {
		reply = str_new(0, 0);
		stream_set_timeout(n->s, 5);
		(void)newsgw_nntp_cmd(n, "QUIT", reply);
		str_free(&reply);
	}
	tls_session_free(&n->tls);
	stream_free(&n->s);
	str_free(&n->line);
	free(n);
	*np = NULL;
}

/* newsgw_dup_text - whether a 441 reply says "duplicate" (INN: "441 435 Duplicate") */
static bool
newsgw_dup_text(const char *reply)
{
	return strncmp(reply, "441 435", 7) == 0 ||
	    strcasestr(reply, "duplicate") != NULL ||
	    strcasestr(reply, "already have") != NULL;
}

/* newsgw_nntp_post - see newsgw.h */
enum newsgw_post
newsgw_nntp_post(struct newsgw_nntp *n, const char *article, size_t len,
    const char *msgid, bool ihave, struct str *reply)
{
	struct str *cmd = str_new(0, 0), *enc = str_new(len + len / 16 + 8, 0);
	enum newsgw_post rc;
	int code;

	if (ihave)
		str_printf(cmd, "IHAVE %s", msgid);
	else
		str_set_cstr(cmd, "POST");
	code = newsgw_nntp_cmd(n, str_c(cmd), reply);
	if (ihave && code == 435) {
		rc = NEWSGW_POST_DUP;
		goto out;
	}
	if (code != (ihave ? 335 : 340)) {
		rc = code < 0 || code == 400 || code == 403 || code == 436 ||
		    code == 480 || code == 483 ? NEWSGW_POST_TEMP :
		    code >= 400 && code < 600 ? NEWSGW_POST_REJECT :
		    NEWSGW_POST_TEMP;
		goto out;
	}
	(void)nntp_dot_encode(article, len, enc);
	if (stream_write(n->s, str_c(enc), str_len(enc)) < 0) {
		str_set_cstr(reply, "connection lost while sending the article");
		rc = NEWSGW_POST_TEMP;
		goto out;
	}
	code = newsgw_nntp_reply(n, reply);
	if (code == (ihave ? 235 : 240))
		rc = NEWSGW_POST_OK;
	else if (ihave && code == 435)
		rc = NEWSGW_POST_DUP;
	else if (!ihave && code == 441 && newsgw_dup_text(str_c(reply)))
		rc = NEWSGW_POST_DUP;
	else if (code == 437 || code == 441 || code == 440 ||
	    (code >= 500 && code < 600))
		rc = NEWSGW_POST_REJECT;
	else
		rc = NEWSGW_POST_TEMP;
out:
	str_free(&cmd);
	str_free(&enc);
	return rc;
}

/* newsgw_nntp_block - see newsgw.h */
int
newsgw_nntp_block(struct newsgw_nntp *n, struct str *data, bool *too_big_r)
{
	struct nntp_block b;
	enum stream_result r;

	nntp_block_init(&b, data, newsgw_settings.size_limit);
	*too_big_r = false;
	for (;;) {
		r = stream_read_line(n->s, n->line, NEWSGW_BLOCK_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			b.too_big = true;
			continue;
		}
		if (r != STREAM_OK)
			return -1;
		if (nntp_block_line(&b, str_c(n->line), str_len(n->line)))
			break;
	}
	*too_big_r = b.too_big || b.bad;
	return 0;
}
