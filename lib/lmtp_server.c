/* SPDX-License-Identifier: MIT */
/*
 * lmtp_server - one LMTP server session driven by delivery callbacks
 *
 * DESCRIPTION
 *	The state machine list-mgr, news-gw and vacationd used to carry
 *	each (see lmtp_server.h for the replies and the options). States:
 *	before LHLO, after LHLO, in a transaction (after MAIL). A command
 *	line is read with a bounded line read; over the limit is 500
 *	5.5.2 and the rest of the line is dropped by the stream. Replies
 *	are buffered and the output flushed only when no pipelined input
 *	is waiting (RFC 2920 3.2), and always before reading the content
 *	after 354.
 *
 *	The content is kept in memory up to size_limit; past it (or past
 *	data_line_max on one line) the rest is read up to the final dot
 *	and dropped, and every recipient gets 552 5.3.4 without on_data
 *	being called. With header_max only the header block is kept, and
 *	past header_max (or data_line_max within it) none of it is: on_data
 *	is called all the same, with header_over set. A read error or EOF
 *	inside DATA ends the session with no reply (the client cannot be
 *	talking to us any more).
 *
 *	lmtpd keeps its own session (lmtpd/lmtpd_session.c): it adds
 *	CHUNKING/BDAT, delivery tokens with exactly-once bookkeeping and
 *	quota checks at RCPT, which this one does not need.
 *
 *	Nothing here exits; the caller's callbacks decide what delivery
 *	means and log its outcome.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "lmtp_server.h"
#include "log.h"
#include "queue_id.h"
#include "smtp_proto.h"
#include "str.h"
#include "stream.h"

#define LMTP_SERVER_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | \
	SMTP_EXT_PIPELINING | SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_SMTPUTF8)
#define LMTP_SERVER_RCPT_MAX		100
#define LMTP_SERVER_ERROR_LIMIT		50
#define LMTP_SERVER_DATA_LINE_MAX	(1024 * 1024)

struct lmtp_server {
	const struct lmtp_server_settings *set;
	size_t line_max, data_line_max, rcpt_max;
	unsigned error_limit;
	struct stream *s;
	struct smtp_cmd *cmd;
	struct str *line;
	struct str *sender;
	struct str *param;	/* of the RCPT TO being parsed */
	bool has_param;
	struct lmtp_server_rcpt *rcpt;
	size_t nrcpt;
	bool lhlo, in_mail, smtputf8;
	unsigned errors;
	char tx_id[QUEUE_ID_SIZE];
	struct log_ctx log;
	const char *peer;
};

static void lmtp_server_reply(struct lmtp_server *srv, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

/* lmtp_server_reply - one reply line (CRLF added, buffered) */
static void
lmtp_server_reply(struct lmtp_server *srv, const char *fmt, ...)
{
	va_list ap;
	struct str *t = str_new(0, 0);

	va_start(ap, fmt);
	str_vprintf(t, fmt, ap);
	va_end(ap);
	if (str_c(t)[0] == '4' || str_c(t)[0] == '5')
		srv->errors++;
	(void)stream_printf(srv->s, "%s\r\n", str_c(t));
	str_free(&t);
}

/* lmtp_server_tx - the callbacks' view of the transaction */
static void
lmtp_server_tx(struct lmtp_server *srv, struct lmtp_server_tx *tx)
{
	tx->id = srv->tx_id;
	tx->sender = str_c(srv->sender);
	tx->peer = srv->peer;
	tx->log = &srv->log;
	tx->nrcpt = srv->nrcpt;
	tx->rcpt = srv->rcpt;
	tx->header_over = false;
}

/* lmtp_server_tx_reset - forget the transaction */
static void
lmtp_server_tx_reset(struct lmtp_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nrcpt; i++) {
		free(srv->rcpt[i].local);
		free(srv->rcpt[i].domain);
		free(srv->rcpt[i].param);
	}
	srv->nrcpt = 0;
	srv->in_mail = false;
	srv->smtputf8 = false;
	str_clear(srv->sender);
	srv->log.id = NULL;
	if (srv->set->on_reset != NULL)
		srv->set->on_reset(srv->set->context);
}

/* lmtp_server_data - read the content, then one reply per recipient */
static bool
lmtp_server_data(struct lmtp_server *srv)
{
	const struct lmtp_server_settings *set = srv->set;
	struct str *msg = str_new(64 * 1024, 0), **replies;
	struct lmtp_server_tx tx;
	enum stream_result r;
	bool too_big = false, bad_line = false;
	bool head_only = set->header_max > 0, in_head = true;
	bool head_over = false;
	uint64_t size = 0;
	size_t i, n;

	if (!srv->in_mail || srv->nrcpt == 0) {
		lmtp_server_reply(srv, srv->in_mail ? "554 5.5.1 Error: no "
		    "valid recipients" : "503 5.5.1 Error: need MAIL command");
		str_free(&msg);
		return true;
	}
	lmtp_server_reply(srv, "354 End data with <CR><LF>.<CR><LF>");
	if (stream_flush(srv->s) < 0) {
		str_free(&msg);
		return false;
	}
	for (;;) {
		r = stream_read_line(srv->s, srv->line, srv->data_line_max);
		if (r == STREAM_TOO_LONG) {
			/* header_max: a long body line is dropped like
			 * the rest of the body */
			if (!head_only)
				bad_line = true;
			else if (in_head)
				head_over = true;
			continue;
		}
		if (r != STREAM_OK) {
			str_free(&msg);
			return false;
		}
		str_chomp(srv->line);
		if (str_len(srv->line) == 1 && str_c(srv->line)[0] == '.')
			break;
		if (too_big || bad_line)
			continue;
		i = str_len(srv->line) > 0 && str_c(srv->line)[0] == '.' ? 1 : 0;
		n = str_len(srv->line) - i;
		size += n + 2;
		if (set->size_limit > 0 && size > set->size_limit) {
			too_big = true;
			continue;
		}
		if (head_only) {
			if (!in_head)
				continue;
			/* the empty line ends the block (and is kept) */
			in_head = n > 0;
			if (head_over || str_len(msg) + n + 2 >
			    set->header_max) {
				head_over = true;
				continue;
			}
		}
		str_append(msg, str_c(srv->line) + i, n);
		str_append(msg, "\r\n", 2);
	}
	replies = xcalloc(srv->nrcpt, sizeof(*replies));
	for (i = 0; i < srv->nrcpt; i++) {
		replies[i] = str_new(0, 0);
		if (too_big)
			str_set_cstr(replies[i], "552 5.3.4 Message size "
			    "exceeds fixed limit");
		else if (bad_line)
			str_set_cstr(replies[i], "552 5.3.4 Line too long");
	}
	if (!too_big && !bad_line) {
		lmtp_server_tx(srv, &tx);
		tx.header_over = head_over;
		if (head_over)
			str_clear(msg);
		set->on_data(set->context, &tx, str_c(msg), str_len(msg),
		    replies);
	}
	for (i = 0; i < srv->nrcpt; i++) {
		if (str_len(replies[i]) == 0)
			lmtp_server_reply(srv, "451 4.3.0 Error: no delivery "
			    "status");
		else
			lmtp_server_reply(srv, "%s", str_c(replies[i]));
		str_free(&replies[i]);
	}
	free(replies);
	log_info(&srv->log, "from=<%s>, size=%llu, nrcpt=%zu (done)",
	    str_c(srv->sender), (unsigned long long)size, srv->nrcpt);
	lmtp_server_tx_reset(srv);
	str_free(&msg);
	return true;
}

/* lmtp_server_path_end - see lmtp_server.h */
size_t
lmtp_server_path_end(const char *p, size_t len, size_t i)
{
	bool quoted = false;

	if (i >= len || p[i] != '<') {
		while (i < len && p[i] != ' ')
			i++;
		return i;
	}
	for (i++; i < len; i++) {
		if (quoted && p[i] == '\\' && i + 1 < len)
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
		else if (!quoted && p[i] == '>')
			return i + 1;
	}
	return len;
}

/* lmtp_server_split_param - see lmtp_server.h */
int
lmtp_server_split_param(const char *name, const char *p, size_t len,
    struct str *out, struct str *value)
{
	size_t i, start, end, kwlen = strlen(name);
	int found = 0;

	str_clear(out);
	str_clear(value);
	if (len < 8 || strncasecmp(p, "RCPT TO:", 8) != 0) {
		str_append(out, p, len);
		return 0;
	}
	i = 8;
	while (i < len && p[i] == ' ')
		i++;
	i = lmtp_server_path_end(p, len, i);
	str_append(out, p, i);
	while (i < len) {
		/* one parameter: the spaces before it, then up to a space */
		start = i;
		while (i < len && p[i] == ' ')
			i++;
		end = i;
		while (end < len && p[end] != ' ')
			end++;
		if (end - i > kwlen && p[i + kwlen] == '=' &&
		    strncasecmp(p + i, name, kwlen) == 0) {
			if (found++ > 0 || end - i == kwlen + 1 ||
			    smtp_proto_xtext_decode(p + i + kwlen + 1,
			    end - i - kwlen - 1, value) < 0)
				return -1;
		} else
			str_append(out, p + start, end - start);
		i = end;
	}
	return found > 0 ? 1 : 0;
}

/*
 * lmtp_server_take_param - take the private RCPT parameter off srv->line
 * into srv->param: 1 taken, 0 none, -1 malformed, or its value too long
 * or (unless rcpt_param_xtext, which encodes it again) with octets
 * outside 0x21..0x7e.
 */
static int
lmtp_server_take_param(struct lmtp_server *srv)
{
	const struct lmtp_server_settings *set = srv->set;
	struct str *rest = str_new(0, 0), *enc;
	const unsigned char *v;
	size_t k;
	int found;

	found = lmtp_server_split_param(set->rcpt_param, str_c(srv->line),
	    str_len(srv->line), rest, srv->param);
	if (found > 0) {
		v = (const unsigned char *)str_c(srv->param);
		if (str_len(srv->param) > set->rcpt_param_max)
			found = -1;
		for (k = 0; found > 0 && !set->rcpt_param_xtext &&
		    k < str_len(srv->param); k++)
			if (v[k] <= 0x20 || v[k] >= 0x7f)
				found = -1;
		if (found > 0 && set->rcpt_param_xtext) {
			enc = str_new(0, 0);
			(void)smtp_proto_xtext_encode(str_c(srv->param),
			    str_len(srv->param), enc);
			str_set(srv->param, str_c(enc), str_len(enc));
			str_free(&enc);
		}
		if (found > 0)
			str_set(srv->line, str_c(rest), str_len(rest));
	}
	str_free(&rest);
	return found;
}

/* lmtp_server_lhlo - the LHLO reply: hostname, keywords, SIZE last */
static void
lmtp_server_lhlo(struct lmtp_server *srv)
{
	static const char *const fixed[] = {
		"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8",
	};
	const struct lmtp_server_settings *set = srv->set;
	size_t i, n = sizeof(fixed) / sizeof(fixed[0]), next = 0;
	size_t nlines = n + (set->size_limit > 0);
	const char *kw;

	for (i = 0; set->lhlo_ext != NULL && set->lhlo_ext[i] != NULL; i++)
		nlines++;
	(void)stream_printf(srv->s, "250%c%s\r\n", nlines > 0 ? '-' : ' ',
	    set->hostname);
	for (i = 0; i < n; i++)
		(void)stream_printf(srv->s, "250%c%s\r\n",
		    ++next < nlines ? '-' : ' ', fixed[i]);
	for (i = 0; set->lhlo_ext != NULL && (kw = set->lhlo_ext[i]) != NULL;
	    i++)
		(void)stream_printf(srv->s, "250%c%s\r\n",
		    ++next < nlines ? '-' : ' ', kw);
	if (set->size_limit > 0)
		(void)stream_printf(srv->s, "250 SIZE %llu\r\n",
		    (unsigned long long)set->size_limit);
}

/* lmtp_server_mail - MAIL FROM */
static void
lmtp_server_mail(struct lmtp_server *srv)
{
	struct smtp_cmd *cmd = srv->cmd;
	struct str *t;

	if (!srv->lhlo)
		lmtp_server_reply(srv, "503 5.5.1 Error: send LHLO first");
	else if (srv->in_mail)
		lmtp_server_reply(srv, "503 5.5.1 Error: nested MAIL command");
	else if (cmd->mail.size_set && srv->set->size_limit > 0 &&
	    cmd->mail.size > srv->set->size_limit)
		lmtp_server_reply(srv, "552 5.3.4 Message size exceeds fixed "
		    "limit");
	else if (address_canonical(cmd->addr, srv->sender) < 0)
		lmtp_server_reply(srv, "501 5.1.7 Bad sender address syntax");
	else {
		queue_id_new(srv->tx_id);
		srv->log.id = srv->tx_id;
		srv->in_mail = true;
		srv->smtputf8 = cmd->mail.smtputf8;
		t = str_new(0, 0);
		mem_printable(t, str_c(srv->sender), str_len(srv->sender),
		    300);
		log_info(&srv->log, "client=%s, from=<%s>", srv->peer,
		    str_c(t));
		str_free(&t);
		lmtp_server_reply(srv, "250 2.1.0 Ok");
	}
}

/* lmtp_server_rcpt - RCPT TO */
static void
lmtp_server_rcpt(struct lmtp_server *srv)
{
	struct smtp_cmd *cmd = srv->cmd;
	struct lmtp_server_tx tx;
	struct lmtp_server_rcpt *r;
	struct str *reply;
	const char *param = srv->has_param ? str_c(srv->param) : NULL;

	if (!srv->in_mail) {
		lmtp_server_reply(srv, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (srv->nrcpt >= srv->rcpt_max) {
		lmtp_server_reply(srv, "452 4.5.3 Error: too many recipients");
		return;
	}
	reply = str_new(0, 0);
	lmtp_server_tx(srv, &tx);
	if (!srv->set->on_rcpt(srv->set->context, &tx, cmd->addr, param,
	    reply)) {
		if (str_len(reply) == 0)
			str_set_cstr(reply, "550 5.1.1 Error: recipient "
			    "refused");
		lmtp_server_reply(srv, "%s", str_c(reply));
		str_free(&reply);
		return;
	}
	srv->rcpt = xreallocarray(srv->rcpt, srv->nrcpt + 1,
	    sizeof(*srv->rcpt));
	r = &srv->rcpt[srv->nrcpt++];
	r->local = xstrdup(str_c(cmd->addr->local));
	r->domain = xstrdup(str_c(cmd->addr->domain));
	r->param = param != NULL ? xstrdup(param) : NULL;
	lmtp_server_reply(srv, "%s", str_len(reply) > 0 ? str_c(reply) :
	    "250 2.1.5 Ok");
	str_free(&reply);
}

/* lmtp_server_dispatch - one parsed command; false to end */
static bool
lmtp_server_dispatch(struct lmtp_server *srv)
{
	switch (srv->cmd->verb) {
	case SMTP_VERB_LHLO:
		lmtp_server_tx_reset(srv);
		srv->lhlo = true;
		lmtp_server_lhlo(srv);
		return true;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		lmtp_server_reply(srv, "500 5.5.1 Error: this is LMTP: use LHLO");
		return true;
	case SMTP_VERB_MAIL:
		lmtp_server_mail(srv);
		return true;
	case SMTP_VERB_RCPT:
		lmtp_server_rcpt(srv);
		return true;
	case SMTP_VERB_DATA:
		return lmtp_server_data(srv);
	case SMTP_VERB_RSET:
		lmtp_server_tx_reset(srv);
		lmtp_server_reply(srv, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_NOOP:
		lmtp_server_reply(srv, "250 2.0.0 Ok");
		return true;
	case SMTP_VERB_QUIT:
		lmtp_server_reply(srv, "221 2.0.0 Bye");
		return false;
	case SMTP_VERB_VRFY:
		lmtp_server_reply(srv, "252 2.0.0 Will attempt delivery");
		return true;
	case SMTP_VERB_HELP:
		lmtp_server_reply(srv, "214 2.0.0 LHLO MAIL RCPT DATA RSET "
		    "NOOP QUIT");
		return true;
	default:
		lmtp_server_reply(srv, "502 5.5.1 Error: command not "
		    "implemented");
		return true;
	}
}

/* lmtp_server_run - see lmtp_server.h */
void
lmtp_server_run(int fd, const char *peer,
    const struct lmtp_server_settings *set)
{
	struct lmtp_server srv;
	enum smtp_proto_error perr;
	enum stream_result r;
	const char *enh;
	int code;

	ASSERT(set->on_rcpt != NULL && set->on_data != NULL);
	memset(&srv, 0, sizeof(srv));
	srv.set = set;
	srv.line_max = set->line_max > 0 ? set->line_max : SMTP_PROTO_LINE_MAX;
	srv.data_line_max = set->data_line_max > 0 ? set->data_line_max :
	    LMTP_SERVER_DATA_LINE_MAX;
	srv.rcpt_max = set->rcpt_max > 0 ? set->rcpt_max :
	    LMTP_SERVER_RCPT_MAX;
	srv.error_limit = set->error_limit > 0 ? set->error_limit :
	    LMTP_SERVER_ERROR_LIMIT;
	srv.s = stream_new(fd, set->timeout, STREAM_NO_CLOSE);
	srv.cmd = smtp_cmd_new();
	srv.line = str_new(0, 0);
	srv.sender = str_new(0, 0);
	srv.param = str_new(0, 0);
	srv.peer = peer;
	log_info(NULL, "connect from %s", peer);
	(void)stream_printf(srv.s, "220 %s %s\r\n", set->hostname,
	    set->banner);
	for (;;) {
		if (srv.errors >= srv.error_limit) {
			(void)stream_puts(srv.s, "421 4.7.0 Error: too many "
			    "errors\r\n");
			(void)stream_flush(srv.s);
			break;
		}
		if (stream_pending(srv.s) == 0 && stream_flush(srv.s) < 0)
			break;
		r = stream_read_line(srv.s, srv.line, srv.line_max);
		if (r == STREAM_TOO_LONG) {
			lmtp_server_reply(&srv, "500 5.5.2 Error: line too long");
			continue;
		}
		/* a timeout is the stream's sticky error: nothing more can
		 * be written, so the session ends without a 421 */
		if (r != STREAM_OK)
			break;
		str_chomp(srv.line);
		srv.has_param = false;
		if (set->rcpt_param != NULL) {
			switch (lmtp_server_take_param(&srv)) {
			case -1:
				lmtp_server_reply(&srv, "501 5.5.4 Error: bad "
				    "%s parameter", set->rcpt_param);
				continue;
			case 1:
				srv.has_param = true;
				break;
			default:
				break;
			}
		}
		perr = smtp_cmd_parse(srv.cmd, str_c(srv.line),
		    str_len(srv.line), LMTP_SERVER_EXT,
		    srv.in_mail && srv.smtputf8,
		    set->utf8_paths ? SMTP_PROTO_UTF8_PATHS : 0);
		if (perr != SMTP_PROTO_OK) {
			smtp_proto_error_reply(perr, &code, &enh);
			lmtp_server_reply(&srv, "%d %s Error: %s", code, enh,
			    smtp_proto_error_str(perr));
			continue;
		}
		if (!lmtp_server_dispatch(&srv)) {
			(void)stream_flush(srv.s);
			break;
		}
	}
	lmtp_server_tx_reset(&srv);
	log_info(NULL, "disconnect from %s", peer);
	free(srv.rcpt);
	str_free(&srv.param);
	str_free(&srv.line);
	str_free(&srv.sender);
	smtp_cmd_free(&srv.cmd);
	stream_free(&srv.s);
}
