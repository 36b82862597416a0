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
 *	    AUTHINFO     when $news_gw_username is set, and only to
 *	                 $news_gw_server (never to a different
 *	                 $news_gw_pull_server). CAPABILITIES first: if
 *	                 the server lists AUTHINFO SASL and a SASL line,
 *	                 AUTHINFO SASL (RFC 4643 2.4) with the strongest
 *	                 of those mechanisms libsasl2's client plugins
 *	                 have (lib/sasl_client), password mechanisms only
 *	                 (not GSSAPI, GSS-SPNEGO, GS2-*, EXTERNAL,
 *	                 ANONYMOUS: we have no such credentials): initial
 *	                 response on the command line ("=" if empty),
 *	                 383 challenges answered, 281 (or 283 with final
 *	                 data) is success. When the server offers no
 *	                 mechanism we have (or no SASL), AUTHINFO
 *	                 USER/PASS: 381 then 281; also after a failed
 *	                 SASL exchange (libsasl2 error, 481, 482, 502):
 *	                 INN offers SASL whenever it is built with it,
 *	                 whether or not it has SASL accounts. The same
 *	                 password goes to the same server on the same
 *	                 connection either way.
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

#include <sasl/sasl.h>

#include "alloc.h"
#include "nntp_proto.h"
#include "sasl_client.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "newsgw.h"

#define NEWSGW_REPLY_MAX	4096
#define NEWSGW_BLOCK_LINE_MAX	(64 * 1024)
#define NEWSGW_SASL_ROUNDS	16	/* challenges in one AUTHINFO SASL */

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

/*
 * newsgw_sasl_password_mechs - the mechanisms of the list (p, len)
 * that work with a user name and password into out: not the Kerberos
 * and certificate ones, which news-gw has no credentials for (libsasl2
 * would pick GSSAPI, the strongest INN offers, and fail)
 */
static void
newsgw_sasl_password_mechs(const char *p, struct str *out)
{
	static const char *const skip[] = {
		"GSSAPI", "GSS-SPNEGO", "EXTERNAL", "ANONYMOUS",
	};
	const char *end = p + strlen(p), *e;
	size_t i, n;

	str_clear(out);
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		for (e = p; e < end && *e != ' '; e++)
			;
		if ((n = (size_t)(e - p)) == 0)
			break;
		for (i = 0; i < N_ELEMENTS(skip); i++)
			if (strlen(skip[i]) == n &&
			    strncasecmp(skip[i], p, n) == 0)
				break;
		if (i == N_ELEMENTS(skip) && !(n > 4 &&
		    strncasecmp(p, "GS2-", 4) == 0)) {
			if (str_len(out) > 0)
				str_append_c(out, ' ');
			str_append(out, p, n);
		}
		p = e;
	}
}

/*
 * newsgw_nntp_sasl_mechs - the SASL mechanisms (space separated) into
 * mechs when CAPABILITIES lists AUTHINFO SASL; empty when not. -1 if
 * the connection broke (why set).
 */
static int
newsgw_nntp_sasl_mechs(struct newsgw_nntp *n, const char *server,
    struct str *mechs, struct str *why)
{
	struct str *reply = str_new(0, 0), *caps = str_new(0, 0);
	const char *p, *e;
	bool too_big, authinfo_sasl = false;
	size_t len;
	int code, rc = 0;

	str_clear(mechs);
	code = newsgw_nntp_cmd(n, "CAPABILITIES", reply);
	if (code < 0 || (code == 101 && newsgw_nntp_block(n, caps,
	    &too_big) < 0)) {
		str_printf(why, "%s: CAPABILITIES: %s", server, str_c(reply));
		rc = -1;
		goto out;
	}
	if (code != 101)
		goto out;
	for (p = str_c(caps); *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		if ((e = strchr(p, '\n')) == NULL)
			e = p + strlen(p);
		len = (size_t)(e - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 5 && strncasecmp(p, "SASL ", 5) == 0)
			str_set(mechs, p + 5, len - 5);
		else if (len > 9 && strncasecmp(p, "AUTHINFO ", 9) == 0 &&
		    (memmem(p, len, " SASL", 5) != NULL ||
		    memmem(p, len, " sasl", 5) != NULL))
			authinfo_sasl = true;
	}
	if (!authinfo_sasl)
		str_clear(mechs);
out:
	str_free(&reply);
	str_free(&caps);
	return rc;
}

/*
 * newsgw_nntp_sasl - AUTHINFO SASL among mechs: 1 authenticated, 0 not
 * (no mechanism we have, libsasl2 failed, or the server refused: the
 * caller falls back, logged), -1 the connection broke (why set)
 */
static int
newsgw_nntp_sasl(struct newsgw_nntp *n, const char *server, const char *host,
    const char *mechs, struct str *why)
{
	struct sasl_client *sc;
	struct str *out = str_new(0, 0), *cmd = str_new(0, 0),
	    *reply = str_new(0, 0), *err = str_new(0, 0);
	const char *mech, *arg;
	unsigned rounds;
	bool has_ir;
	int code, rc = 0;

	sc = sasl_client_create("nntp", host, n->log, newsgw_settings.username,
	    strlen(newsgw_settings.username), newsgw_settings.password,
	    strlen(newsgw_settings.password), SASL_SEC_NOANONYMOUS, err);
	if (sc == NULL || sasl_client_begin(sc, mechs, out, &has_ir, &mech,
	    err) != 0) {
		log_info(n->log, "%s: AUTHINFO SASL: %s; trying AUTHINFO USER",
		    server, str_c(err));
		goto out;
	}
	str_printf(cmd, "AUTHINFO SASL %s", mech);
	if (has_ir)
		str_printf(cmd, " %s", str_len(out) > 0 ? str_c(out) : "=");
	code = newsgw_nntp_cmd(n, str_c(cmd), reply);
	for (rounds = 0; code == 383 && rounds < NEWSGW_SASL_ROUNDS;
	    rounds++) {
		arg = str_c(n->line) + 3;
		arg += strspn(arg, " ");
		if (strcmp(arg, "=") == 0)
			arg = "";
		if (sasl_client_next(sc, arg, strlen(arg), out, err) < 0) {
			code = newsgw_nntp_cmd(n, "*", reply);
			break;
		}
		explicit_bzero(str_data(cmd), str_len(cmd));
		str_set_cstr(cmd, str_len(out) > 0 ? str_c(out) : "=");
		code = newsgw_nntp_cmd(n, str_c(cmd), reply);
	}
	if (code == 383)	/* too many rounds: cancel (RFC 4643 2.4.2) */
		code = newsgw_nntp_cmd(n, "*", reply);
	if (code == 283) {
		/* success with final data (RFC 4643 2.4.3): check it */
		arg = str_c(n->line) + 3;
		arg += strspn(arg, " ");
		if (sasl_client_next(sc, arg, strlen(arg), out, err) == 0)
			code = 281;
		else
			str_printf(reply, " (the server's final SASL data: "
			    "%s)", str_c(err));
	}
	if (code < 0) {
		str_printf(why, "%s: AUTHINFO SASL: %s", server, str_c(reply));
		rc = -1;
		goto out;
	}
	if (code != 281) {
		if (str_len(err) > 0 && code != 283)
			str_printf(reply, " (%s)", str_c(err));
		log_info(n->log, "%s: AUTHINFO SASL %s failed: %s; trying "
		    "AUTHINFO USER", server, mech, str_c(reply));
		goto out;
	}
	log_info(n->log, "authenticated to %s as %s with AUTHINFO SASL %s",
	    server, newsgw_settings.username, mech);
	rc = 1;
out:
	explicit_bzero(str_data(cmd), str_len(cmd));
	explicit_bzero(str_data(out), str_len(out));
	sasl_client_free(&sc);
	str_free(&out);
	str_free(&cmd);
	str_free(&reply);
	str_free(&err);
	return rc;
}

/* newsgw_nntp_authinfo - AUTHINFO SASL if possible, else USER/PASS; false with why */
static bool
newsgw_nntp_authinfo(struct newsgw_nntp *n, const char *server,
    const char *host, struct str *why)
{
	struct str *cmd = str_new(0, 0), *reply = str_new(0, 0),
	    *offered = str_new(0, 0), *mechs = str_new(0, 0);
	bool ok = false;
	int code, rc = 0;

	if (sasl_client_ready()) {
		if (newsgw_nntp_sasl_mechs(n, server, offered, why) < 0)
			goto out;
		newsgw_sasl_password_mechs(str_c(offered), mechs);
		if (str_len(mechs) > 0)
			rc = newsgw_nntp_sasl(n, server, host, str_c(mechs),
			    why);
		else if (str_len(offered) > 0)
			log_info(n->log, "%s: AUTHINFO SASL: no password "
			    "mechanism among %s; trying AUTHINFO USER", server,
			    str_c(offered));
		if (rc != 0) {
			ok = rc == 1;
			goto out;
		}
	}
	str_printf(cmd, "AUTHINFO USER %s", newsgw_settings.username);
	code = newsgw_nntp_cmd(n, str_c(cmd), reply);
	if (code == 381) {
		str_clear(cmd);
		str_printf(cmd, "AUTHINFO PASS %s", newsgw_settings.password);
		code = newsgw_nntp_cmd(n, str_c(cmd), reply);
		explicit_bzero(str_data(cmd), str_len(cmd));
	}
	if (code != 281) {
		str_printf(why, "%s: authentication failed: %s", server,
		    str_c(reply));
		goto out;
	}
	ok = true;
out:
	str_free(&cmd);
	str_free(&reply);
	str_free(&offered);
	str_free(&mechs);
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
	    strcmp(server, newsgw_settings.server) == 0 &&
	    !newsgw_nntp_authinfo(n, server, str_c(host), why))
		goto fail;
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
