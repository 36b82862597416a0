/* SPDX-License-Identifier: MIT */
/*
 * listmgr_http - the RFC 8058 one-click unsubscribe endpoint
 *
 * DESCRIPTION
 *	list-mgr with $list_role = http is a small HTTP/1.1 server, one
 *	request per connection (Connection: close), for an inet service
 *	the operator adds to master.conf. A list whose
 *	http_unsubscribe_url is set carries, in each member's copy,
 *
 *	    List-Unsubscribe: <mailto:NAME-leave@DOMAIN>, <URL?list=NAME
 *	        &member=ADDR&token=HMAC>
 *	    List-Unsubscribe-Post: List-Unsubscribe=One-Click
 *
 *	(listmgr_unsubscribe_url). Here, for a path whose last segment is
 *	"unsubscribe" (so a front end may mount it anywhere):
 *
 *	    POST, body List-Unsubscribe=One-Click  unsubscribe the member
 *	        (no confirmation, as RFC 8058 wants), tell them by mail,
 *	        200; an address already gone is 200 too (the POST may
 *	        be repeated);
 *	    GET, HEAD  a confirmation page with a form that POSTs the same
 *	        body; nothing changes (link scanners follow GET);
 *	    anything else  405 with Allow.
 *
 *	The token must be the member's (list_unsubscribe_token_check,
 *	constant time): a wrong one is 403 and nothing changes; an unknown
 *	list, one without http_unsubscribe_url or one whose members come
 *	from LDAP (membership ldap or both: the directory decides) is 404;
 *	a missing or malformed parameter 400.
 *
 *	Reading is bounded: each line LISTMGR_HTTP_LINE_MAX (an over-long
 *	request line is 414, a field line 431), the head
 *	LISTMGR_HTTP_HEAD_MAX (431) and LISTMGR_HTTP_FIELDS_MAX fields, a
 *	body LISTMGR_HTTP_BODY_MAX (413; a POST without Content-Length is
 *	411); the whole request must arrive within $list_http_timeout
 *	(else 408). Parsing itself is listmgr_httpreq.c.
 *
 *	TLS: RFC 8058 wants an https URL. With
 *	$list_http_tls_security_level = none the service speaks plain
 *	HTTP, for a loopback listener behind the site's TLS front end (a
 *	reverse proxy forwarding /unsubscribe). With encrypt it is an
 *	https server itself: every connection starts with the TLS
 *	handshake (lib/tls, the context smtpd, imapd and pop3d use:
 *	tls_cert_file, tls_server_sni_maps, shared session tickets, a
 *	fresh context per worker after `postern reload`), and the
 *	handshake counts against the same $list_http_timeout deadline as
 *	the request. Nothing goes out in plaintext on such a port: a
 *	client that does not handshake (plain HTTP, garbage, silence) is
 *	logged and dropped without an answer, and a request timeout
 *	whose stream is already dead (the sticky timeout) closes the
 *	connection instead of sending the plaintext 408 the plain mode
 *	sends. Reading goes through the stream on top of TLS, so a
 *	request split over many records or TCP segments reads as one.
 *	The setting is per process (one service): run two services for
 *	both kinds.
 */
#include <sys/socket.h>

#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "list_store.h"
#include "log.h"
#include "queue_id.h"
#include "stream.h"
#include "str.h"
#include "tls.h"

#include "listmgr.h"

/* the https context (list_http_tls_security_level = encrypt), else NULL */
static struct tls_context *listmgr_http_tls_ctx;

struct listmgr_http {
	struct stream *s;
	struct tls_session *tls;	/* NULL: plain HTTP */
	int fd;
	struct log_ctx log;
	const char *peer;
	time_t deadline;
	bool head_only;
};

/* listmgr_http_status_text - the reason phrase */
static const char *
listmgr_http_status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* listmgr_html_escape - text with <>&"' escaped, appended to out */
static void
listmgr_html_escape(struct str *out, const char *p)
{
	for (; *p != '\0'; p++) {
		switch (*p) {
		case '<': str_append_cstr(out, "&lt;"); break;
		case '>': str_append_cstr(out, "&gt;"); break;
		case '&': str_append_cstr(out, "&amp;"); break;
		case '"': str_append_cstr(out, "&quot;"); break;
		case '\'': str_append_cstr(out, "&#39;"); break;
		default: str_append_c(out, *p); break;
		}
	}
}

/* listmgr_http_reply - the whole response; body is HTML (may be NULL) */
static void
listmgr_http_reply(struct listmgr_http *h, int code, const char *extra_hdr,
    const char *body)
{
	struct str *page = str_new(0, 0);
	const char *reason = listmgr_http_status_text(code);

	if (code == 408 && stream_error(h->s) != STREAM_OK) {
		/*
		 * The stream's timeout is sticky (no more I/O through it):
		 * one best-effort non-blocking send of a fixed answer. Not
		 * under TLS: that would be plaintext on an https port, so
		 * the connection just closes.
		 */
		static const char r408[] = "HTTP/1.1 408 Request Timeout\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n";

		if (h->tls == NULL)
			(void)send(h->fd, r408, sizeof(r408) - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		str_free(&page);
		return;
	}
	if (body == NULL)
		str_printf(page, "<!DOCTYPE html>\n<html><head><title>%d %s"
		    "</title></head><body><p>%d %s</p></body></html>\n", code,
		    reason, code, reason);
	else
		str_append_cstr(page, body);
	stream_set_timeout(h->s, 10);
	(void)stream_printf(h->s, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Connection: close\r\n%s\r\n", code, reason, str_len(page),
	    extra_hdr != NULL ? extra_hdr : "");
	if (!h->head_only)
		(void)stream_write(h->s, str_c(page), str_len(page));
	(void)stream_flush(h->s);
	str_free(&page);
}

/* listmgr_http_timeout - arm the stream with what is left of the deadline */
static bool
listmgr_http_timeout(struct listmgr_http *h)
{
	time_t now = time(NULL);

	if (now >= h->deadline)
		return false;
	stream_set_timeout(h->s, (unsigned)(h->deadline - now));
	return true;
}

/*
 * listmgr_http_read_head - the request head into head; 0, an HTTP
 * status to answer, or -1 (connection gone: answer nothing)
 */
static int
listmgr_http_read_head(struct listmgr_http *h, struct str *head)
{
	struct str *line = str_new(0, 0);
	unsigned blank = 0;
	int rc = -1;

	for (;;) {
		enum stream_result r;

		if (!listmgr_http_timeout(h)) {
			rc = 408;
			break;
		}
		r = stream_read_line(h->s, line, LISTMGR_HTTP_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			rc = str_len(head) == 0 ? 414 : 431;
			break;
		}
		if (r == STREAM_TIMEOUT) {
			rc = 408;
			break;
		}
		if (r != STREAM_OK)
			break;
		/* RFC 9112 2.2: empty lines before the request line */
		if (str_len(head) == 0 && (str_equals_cstr(line, "\r\n") ||
		    str_equals_cstr(line, "\n"))) {
			if (++blank > 4) {
				rc = 400;
				break;
			}
			continue;
		}
		if (str_len(head) + str_len(line) > LISTMGR_HTTP_HEAD_MAX) {
			rc = 431;
			break;
		}
		str_append_str(head, line);
		if (str_equals_cstr(line, "\r\n") || str_equals_cstr(line, "\n")) {
			rc = 0;
			break;
		}
	}
	str_free(&line);
	return rc;
}

/* listmgr_http_page - the GET confirmation page */
static void
listmgr_http_page(struct listmgr_http *h, const struct list *l,
    const char *member)
{
	struct str *page = str_new(0, 0);

	str_append_cstr(page, "<!DOCTYPE html>\n<html><head><meta charset="
	    "\"utf-8\"><title>Unsubscribe</title></head><body>\n"
	    "<h1>Leave the list ");
	listmgr_html_escape(page, l->name);
	str_append_cstr(page, "?</h1>\n<p>This removes <b>");
	listmgr_html_escape(page, member);
	str_append_cstr(page, "</b> from the list ");
	listmgr_html_escape(page, l->name);
	str_append_c(page, '@');
	listmgr_html_escape(page, list_get(l, "domain"));
	/* no action: the form posts to this very URL, whatever front end */
	str_append_cstr(page, ".</p>\n<form method=\"post\">\n"
	    "<input type=\"hidden\" name=\""
	    "List-Unsubscribe\" value=\"One-Click\">\n<button type=\"submit\">"
	    "Unsubscribe</button>\n</form>\n</body></html>\n");
	listmgr_http_reply(h, 200, NULL, str_c(page));
	str_free(&page);
}

/* listmgr_http_unsubscribe - the POST: do it, answer */
static void
listmgr_http_unsubscribe(struct listmgr_http *h, struct list *l,
    const char *member, const struct str *body)
{
	struct str *v = str_new(0, 0), *result = str_new(0, 0),
	    *page = str_new(0, 0);

	if (listmgr_http_param(str_c(body), str_len(body), "List-Unsubscribe",
	    v) != 1 || !str_equals_cstr(v, "One-Click")) {
		listmgr_http_reply(h, 400, NULL, NULL);
		goto out;
	}
	if (listmgr_member_change(l, "unsubscribe", member, result,
	    &h->log) < 0) {
		log_error(&h->log, "list=%s: one-click unsubscribe <%s>: %s",
		    l->name, member, str_c(result));
		listmgr_http_reply(h, 503, "Retry-After: 60\r\n", NULL);
		goto out;
	}
	log_info(&h->log, "list=%s: one-click unsubscribe <%s> from %s: %s",
	    l->name, member, h->peer, str_c(result));
	str_append_cstr(page, "<!DOCTYPE html>\n<html><head><meta charset="
	    "\"utf-8\"><title>Unsubscribed</title></head><body>\n<p><b>");
	listmgr_html_escape(page, member);
	str_append_cstr(page, "</b> is no longer a member of ");
	listmgr_html_escape(page, l->name);
	str_append_c(page, '@');
	listmgr_html_escape(page, list_get(l, "domain"));
	str_append_cstr(page, ".</p>\n</body></html>\n");
	listmgr_http_reply(h, 200, NULL, str_c(page));
out:
	str_free(&v);
	str_free(&result);
	str_free(&page);
}

/* listmgr_http_path_ok - the last path segment is "unsubscribe" */
static bool
listmgr_http_path_ok(const struct str *path)
{
	const char *p = str_c(path), *slash = strrchr(p, '/');

	return slash != NULL && strcmp(slash + 1, "unsubscribe") == 0;
}

/* listmgr_http_request - one parsed request */
static void
listmgr_http_request(struct listmgr_http *h, struct listmgr_http_req *req)
{
	struct str *name = str_new(0, 0), *member = str_new(0, 0),
	    *token = str_new(0, 0), *body = str_new(0, LISTMGR_HTTP_BODY_MAX);
	struct list *l = NULL;
	const char *m = str_c(req->method), *error = NULL;
	bool post = strcmp(m, "POST") == 0;
	int r;

	h->head_only = strcmp(m, "HEAD") == 0;
	if (!post && !h->head_only && strcmp(m, "GET") != 0) {
		listmgr_http_reply(h, 405, "Allow: GET, HEAD, POST\r\n", NULL);
		goto out;
	}
	if (!listmgr_http_path_ok(req->path)) {
		listmgr_http_reply(h, 404, NULL, NULL);
		goto out;
	}
	if (post && !req->have_length) {
		listmgr_http_reply(h, 411, NULL, NULL);
		goto out;
	}
	if (req->have_length && req->content_length > 0) {
		if (!listmgr_http_timeout(h) || stream_read_n(h->s, body,
		    req->content_length) != STREAM_OK) {
			listmgr_http_reply(h, 408, NULL, NULL);
			goto out;
		}
	}
	if (listmgr_http_param(str_c(req->query), str_len(req->query), "list",
	    name) != 1 || listmgr_http_param(str_c(req->query),
	    str_len(req->query), "member", member) != 1 ||
	    listmgr_http_param(str_c(req->query), str_len(req->query), "token",
	    token) != 1 || str_len(member) == 0 || str_len(member) > 320 ||
	    strchr(str_c(member), '@') == NULL) {
		listmgr_http_reply(h, 400, NULL, NULL);
		goto out;
	}
	if ((l = list_store_open(str_c(name), &error)) == NULL ||
	    list_get(l, "http_unsubscribe_url")[0] == '\0' ||
	    strcmp(list_get(l, "membership"), "db") != 0) {
		listmgr_http_reply(h, 404, NULL, NULL);
		goto out;
	}
	r = list_unsubscribe_token_check(l, str_c(member), str_c(token),
	    &error);
	if (r < 0) {
		log_error(&h->log, "list=%s: %s", l->name, error);
		listmgr_http_reply(h, 503, "Retry-After: 60\r\n", NULL);
		goto out;
	}
	if (r == 0) {
		struct str *pr = str_new(0, 0);

		mem_printable(pr, str_c(member), str_len(member), 100);
		log_warn(&h->log, "list=%s: one-click unsubscribe from %s: "
		    "bad token for <%s>", l->name, h->peer, str_c(pr));
		str_free(&pr);
		listmgr_http_reply(h, 403, NULL, NULL);
		goto out;
	}
	if (post)
		listmgr_http_unsubscribe(h, l, str_c(member), body);
	else
		listmgr_http_page(h, l, str_c(member));
out:
	list_store_free(&l);
	str_free(&name);
	str_free(&member);
	str_free(&token);
	str_free(&body);
}

/* listmgr_http_setup - see listmgr.h */
void
listmgr_http_setup(const struct config *cfg)
{
	const char *level = config_str(cfg, "list_http_tls_security_level");
	struct str *err;

	if (level[0] == '\0' || strcmp(level, "none") == 0)
		return;
	/* no "may": HTTP has no STARTTLS, a port is plain or TLS */
	if (strcmp(level, "encrypt") != 0)
		log_fatal(NULL, "list_http_tls_security_level = %s: not none "
		    "or encrypt", level);
	if (config_str(cfg, "tls_cert_file")[0] == '\0')
		log_fatal(NULL, "list_http_tls_security_level = encrypt needs "
		    "tls_cert_file");
	err = str_new(0, 0);
	listmgr_http_tls_ctx = tls_context_new_server_config(cfg, err);
	if (listmgr_http_tls_ctx == NULL)
		log_fatal(NULL, "list_http_tls_security_level = encrypt: %s",
		    str_c(err));
	str_free(&err);
}

/* listmgr_http_deinit - see listmgr.h */
void
listmgr_http_deinit(void)
{
	tls_context_free(&listmgr_http_tls_ctx);
}

/* listmgr_http_tls_start - the handshake, within the deadline; false: drop */
static bool
listmgr_http_tls_start(struct listmgr_http *h)
{
	struct str *err = str_new(0, 0);
	time_t now = time(NULL);
	bool ok = false;

	if (now >= h->deadline) {
		log_info(&h->log, "TLS handshake from %s: timed out", h->peer);
		goto out;
	}
	h->tls = tls_session_start(listmgr_http_tls_ctx, h->s, NULL,
	    (unsigned)(h->deadline - now), err);
	if (h->tls == NULL) {
		log_info(&h->log, "TLS handshake from %s failed: %s", h->peer,
		    str_c(err));
		goto out;
	}
	str_clear(err);
	tls_session_describe(h->tls, err);
	log_info(&h->log, "%s TLS connection established from %s: %s",
	    tls_session_trust(h->tls), h->peer, str_c(err));
	ok = true;
out:
	str_free(&err);
	return ok;
}

/* listmgr_http_run - see listmgr.h */
void
listmgr_http_run(int fd, const char *peer)
{
	struct listmgr_http h;
	struct listmgr_http_req req;
	struct str *head = str_new(0, LISTMGR_HTTP_HEAD_MAX);
	char id[QUEUE_ID_SIZE];
	unsigned timeout = listmgr_settings.http_timeout;
	int rc;

	memset(&h, 0, sizeof(h));
	queue_id_new(id);
	h.log.id = id;
	h.peer = peer;
	h.fd = fd;
	h.deadline = time(NULL) + (timeout > 0 ? timeout : 30);
	h.s = stream_new(fd, timeout > 0 ? timeout : 30, STREAM_NO_CLOSE);
	listmgr_http_req_init(&req);
	if (listmgr_http_tls_ctx != NULL && !listmgr_http_tls_start(&h))
		goto out;
	rc = listmgr_http_read_head(&h, head);
	if (rc == 0)
		rc = listmgr_http_parse_head(str_c(head), str_len(head), &req);
	if (rc > 0) {
		log_info(&h.log, "http request from %s: %d", peer, rc);
		listmgr_http_reply(&h, rc, NULL, NULL);
	} else if (rc == 0)
		listmgr_http_request(&h, &req);
out:
	listmgr_http_req_free(&req);
	str_free(&head);
	tls_session_free(&h.tls);
	stream_free(&h.s);
}

/* listmgr_url_escape - percent-encode all but unreserved characters */
static void
listmgr_url_escape(struct str *out, const char *p)
{
	for (; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~@", c) != NULL)
			str_append_c(out, (char)c);
		else
			str_printf(out, "%%%02X", c);
	}
}

/* listmgr_unsubscribe_url - see listmgr.h */
bool
listmgr_unsubscribe_url(const struct list *l, const char *member,
    struct str *out, struct log_ctx *log)
{
	struct str *token = str_new(0, 0);
	const char *base = list_get(l, "http_unsubscribe_url"), *error;
	bool ok = false;

	str_clear(out);
	/* RFC 8058 3.1: HTTPS only; nothing that could end the <...> */
	if (strncmp(base, "https://", 8) != 0 ||
	    strpbrk(base, " \t<>\",") != NULL)
		goto out;
	if (list_unsubscribe_token(l, member, token, &error) < 0) {
		log_warn(log, "list=%s: no one-click unsubscribe URL: %s",
		    l->name, error);
		goto out;
	}
	str_printf(out, "%s%clist=", base, strchr(base, '?') != NULL ? '&' :
	    '?');
	listmgr_url_escape(out, l->name);
	str_append_cstr(out, "&member=");
	listmgr_url_escape(out, member);
	str_printf(out, "&token=%s", str_c(token));
	ok = true;
out:
	str_free(&token);
	return ok;
}
