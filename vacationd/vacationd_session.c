/* SPDX-License-Identifier: MIT */
/*
 * vacationd_session - the LMTP conversation of vacationd
 *
 * DESCRIPTION
 *	LMTP (RFC 2033) with one private extension, offered in the LHLO
 *	reply as XPOSTERN-VACATION: each RCPT TO carries the parameter
 *	XPOSTERN-VACATION=<xtext>, the xtext (RFC 3461 4) of the typed
 *	parameter record of lib/vacation.h. A RCPT without it is refused
 *	(555 5.5.4). Commands: LHLO, MAIL FROM:<path> (parameters
 *	ignored), RCPT, DATA, RSET, NOOP, QUIT. After the content every
 *	accepted recipient gets its own reply: 250 (a reply was sent, or
 *	the rules said none is due: the text says which) or 451 (try
 *	again). Only the header block of the message is kept (at most
 *	VACATIOND_HEADER_MAX octets); the body is read and dropped.
 *
 *	Limits: a line of VACATIOND_LINE_MAX octets (the parameter record
 *	is at most 64 KiB decoded), VACATIOND_RCPT_MAX recipients per
 *	transaction, VACATIOND_ERROR_LIMIT errors per session.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "alloc.h"
#include "log.h"
#include "queue_id.h"
#include "str.h"
#include "stream.h"
#include "vacation.h"

#include "vacationd.h"

struct vrcpt {
	char *address;
	struct vacation_params params;
};

struct vsession {
	struct stream *s;
	struct log_ctx log;
	char tx_id[QUEUE_ID_SIZE];
	bool lhlo;
	bool in_mail;
	char *sender;
	struct vrcpt rcpts[VACATIOND_RCPT_MAX];
	size_t nrcpt;
	unsigned errors;
};

static void
reply(struct vsession *vs, const char *text)
{
	(void)stream_puts(vs->s, text);
	(void)stream_puts(vs->s, "\r\n");
}

static void
tx_reset(struct vsession *vs)
{
	size_t i;

	for (i = 0; i < vs->nrcpt; i++) {
		free(vs->rcpts[i].address);
		vacation_params_clear(&vs->rcpts[i].params);
	}
	vs->nrcpt = 0;
	XFREE(vs->sender);
	vs->in_mail = false;
	vs->log.id = NULL;
}

/*
 * parse_path - the path starting at p (at '<') into canonical form;
 * *end_r after the '>'. false on a syntax error.
 */
static bool
parse_path(const char *p, size_t n, unsigned flags, struct str *out,
    size_t *end_r)
{
	struct address *a;
	bool q = false, ok;
	size_t i;

	if (n == 0 || p[0] != '<')
		return false;
	for (i = 1; i < n; i++) {
		if (p[i] == '\\' && q && i + 1 < n)
			i++;
		else if (p[i] == '"')
			q = !q;
		else if (p[i] == '>' && !q)
			break;
	}
	if (i == n)
		return false;
	a = address_new();
	ok = address_parse_path(p, i + 1, flags, a) == ADDRESS_OK;
	if (ok) {
		str_clear(out);
		ok = address_canonical(a, out) == 0;
	}
	address_free(&a);
	*end_r = i + 1;
	return ok;
}

/* prefix - does line start with word (case-insensitive)? */
static bool
prefix(const char *line, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && strncasecmp(line, word, w) == 0;
}

static void
cmd_rcpt(struct vsession *vs, const char *p, size_t n)
{
	static const char kw[] = VACATION_EXT "=";
	struct str *addr = str_new(0, 0), *rec = str_new(0, VACATION_PARAMS_MAX);
	struct vrcpt *r;
	const char *err, *arg = NULL;
	size_t end, i, alen = 0;

	if (!vs->in_mail) {
		reply(vs, "503 5.5.1 Error: need MAIL command");
		goto out;
	}
	if (vs->nrcpt == VACATIOND_RCPT_MAX) {
		reply(vs, "452 4.5.3 Error: too many recipients");
		goto out;
	}
	if (!parse_path(p, n, ADDRESS_SMTPUTF8, addr, &end)) {
		reply(vs, "501 5.1.3 Error: bad recipient address syntax");
		vs->errors++;
		goto out;
	}
	/* parameters: exactly one XPOSTERN-VACATION= */
	for (i = end; i < n; ) {
		size_t j;

		while (i < n && p[i] == ' ')
			i++;
		for (j = i; j < n && p[j] != ' '; j++)
			;
		if (j > i) {
			if (j - i >= sizeof(kw) - 1 &&
			    strncasecmp(p + i, kw, sizeof(kw) - 1) == 0 &&
			    arg == NULL) {
				arg = p + i + sizeof(kw) - 1;
				alen = j - i - (sizeof(kw) - 1);
			} else {
				reply(vs, "555 5.5.4 Error: unknown or repeated "
				    "RCPT parameter");
				vs->errors++;
				goto out;
			}
		}
		i = j;
	}
	if (arg == NULL) {
		reply(vs, "555 5.5.4 Error: " VACATION_EXT " parameter "
		    "required");
		vs->errors++;
		goto out;
	}
	r = &vs->rcpts[vs->nrcpt];
	if (vacation_xtext_decode(arg, alen, rec) < 0 ||
	    vacation_params_decode(str_c(rec), str_len(rec), &r->params,
	    &err) < 0) {
		log_warn(&vs->log, "bad " VACATION_EXT " parameter");
		reply(vs, "501 5.5.4 Error: bad " VACATION_EXT " parameter");
		vs->errors++;
		goto out;
	}
	r->address = str_steal(&addr);
	vs->nrcpt++;
	reply(vs, "250 2.1.5 Ok");
out:
	str_free(&addr);
	str_free(&rec);
}

/* cmd_data - the content; header kept, body dropped; replies per rcpt */
static void
cmd_data(struct vsession *vs)
{
	struct str *line = str_new(0, 0), *head = str_new(0, 0);
	struct str *text = str_new(0, 0);
	enum stream_result r;
	bool in_head = true, too_big = false;
	const char *p;
	size_t n, i;
	int code;

	if (vs->nrcpt == 0) {
		reply(vs, "503 5.5.1 Error: need RCPT command");
		goto out;
	}
	reply(vs, "354 End data with <CR><LF>.<CR><LF>");
	if (stream_flush(vs->s) < 0)
		goto out;
	for (;;) {
		r = stream_read_line(vs->s, line, VACATIOND_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			if (in_head)
				too_big = true;
			continue;
		}
		if (r != STREAM_OK) {
			log_warn(&vs->log, "lost connection in DATA");
			stream_discard_input(vs->s);
			vs->errors = VACATIOND_ERROR_LIMIT;
			goto out;
		}
		p = str_c(line);
		n = str_len(line);
		if ((n == 3 && memcmp(p, ".\r\n", 3) == 0) ||
		    (n == 2 && memcmp(p, ".\n", 2) == 0))
			break;
		if (!in_head)
			continue;
		if (p[0] == '.') {
			p++;
			n--;
		}
		if (str_len(head) + n > VACATIOND_HEADER_MAX)
			too_big = true;
		else
			str_append(head, p, n);
		if ((n == 2 && memcmp(p, "\r\n", 2) == 0) ||
		    (n == 1 && p[0] == '\n'))
			in_head = false;
	}
	for (i = 0; i < vs->nrcpt; i++) {
		if (too_big) {
			log_info(&vs->log, "user=%s: no vacation reply: header "
			    "too long", vs->rcpts[i].params.user);
			reply(vs, "250 2.0.0 no vacation reply: header too long");
			continue;
		}
		code = vacationd_reply(&vs->log, vs->sender,
		    vs->rcpts[i].address, &vs->rcpts[i].params, str_c(head),
		    str_len(head), text);
		(void)stream_printf(vs->s, "%d %s\r\n", code, str_c(text));
	}
	tx_reset(vs);
out:
	str_free(&line);
	str_free(&head);
	str_free(&text);
}

/* vacationd_session_run - see vacationd.h */
void
vacationd_session_run(struct stream *s, const char *peer)
{
	struct vsession vs;
	struct str *line = str_new(0, 0), *path = str_new(0, 0);
	enum stream_result r;
	const char *p;
	size_t n, end;

	memset(&vs, 0, sizeof(vs));
	vs.s = s;
	log_info(NULL, "connect from %s", peer);
	(void)stream_printf(s, "220 %s LMTP vacationd\r\n",
	    vacationd_settings.myhostname);
	while (vs.errors < VACATIOND_ERROR_LIMIT) {
		if (stream_flush(s) < 0)
			break;
		r = stream_read_line(s, line, VACATIOND_LINE_MAX);
		if (r == STREAM_TOO_LONG) {
			reply(&vs, "500 5.5.2 Error: line too long");
			vs.errors++;
			continue;
		}
		if (r != STREAM_OK)
			break;
		str_chomp(line);
		p = str_c(line);
		n = str_len(line);
		if (prefix(p, n, "LHLO ")) {
			tx_reset(&vs);
			vs.lhlo = true;
			(void)stream_printf(s, "250-%s\r\n250-PIPELINING\r\n"
			    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
			    "250-SMTPUTF8\r\n250 " VACATION_EXT "\r\n",
			    vacationd_settings.myhostname);
		} else if (prefix(p, n, "MAIL FROM:")) {
			if (!vs.lhlo || vs.in_mail) {
				reply(&vs, "503 5.5.1 Error: bad sequence of "
				    "commands");
				vs.errors++;
				continue;
			}
			if (!parse_path(p + 10, n - 10, ADDRESS_SMTPUTF8 |
			    ADDRESS_ALLOW_NULL, path, &end)) {
				reply(&vs, "501 5.1.7 Error: bad sender "
				    "address syntax");
				vs.errors++;
				continue;
			}
			vs.sender = xstrdup(str_c(path));
			vs.in_mail = true;
			queue_id_new(vs.tx_id);
			vs.log.id = vs.tx_id;
			reply(&vs, "250 2.1.0 Ok");
		} else if (prefix(p, n, "RCPT TO:")) {
			cmd_rcpt(&vs, p + 8, n - 8);
		} else if (n == 4 && strcasecmp(p, "DATA") == 0) {
			cmd_data(&vs);
		} else if (n == 4 && strcasecmp(p, "RSET") == 0) {
			tx_reset(&vs);
			reply(&vs, "250 2.0.0 Ok");
		} else if (prefix(p, n, "NOOP")) {
			reply(&vs, "250 2.0.0 Ok");
		} else if (n == 4 && strcasecmp(p, "QUIT") == 0) {
			reply(&vs, "221 2.0.0 Bye");
			(void)stream_flush(s);
			break;
		} else {
			reply(&vs, "502 5.5.2 Error: command not recognized");
			vs.errors++;
		}
	}
	if (vs.errors >= VACATIOND_ERROR_LIMIT) {
		reply(&vs, "421 4.7.0 Error: too many errors");
		(void)stream_flush(s);
	}
	tx_reset(&vs);
	log_info(NULL, "disconnect from %s", peer);
	str_free(&line);
	str_free(&path);
}
