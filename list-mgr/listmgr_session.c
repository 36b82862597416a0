/* SPDX-License-Identifier: MIT */
/*
 * listmgr_session - list-mgr's LMTP server session
 *
 * DESCRIPTION
 *	The conversation is lib/lmtp_server (RFC 2033: LHLO, MAIL, RCPT,
 *	DATA, RSET, NOOP, QUIT; PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME,
 *	SMTPUTF8, SIZE), plus XPOSTERN-TOKEN: qmgr's delivery token (RCPT
 *	TO ... XTOKEN=) keys the post's progress record
 *	(listmgr_progress.c), so a retried post resumes instead of sending
 *	members a second copy. A recipient is accepted at RCPT only when it
 *	names an existing list and role (listmgr_rcpt_ok), so qmgr bounces
 *	mail to unknown lists at once.
 *
 *	The content, dot-unstuffed in memory up to $list_message_size_limit
 *	(over it: 552 for every recipient), is handed to listmgr_deliver()
 *	once per recipient, each reply in order.
 *
 *	Nothing here exits; a broken connection ends the session.
 */
#include <string.h>

#include "header.h"
#include "lmtp_server.h"
#include "str.h"

#include "listmgr.h"

/* qmgr's delivery tokens (as lmtpd's): RCPT TO ... XTOKEN=<xtext> */
#define LISTMGR_TOKEN_EXT	"XPOSTERN-TOKEN"
#define LISTMGR_TOKEN_MAX	91

/* listmgr_session_rcpt - an existing list role, else 550 */
static bool
listmgr_session_rcpt(void *context, const struct lmtp_server_tx *tx,
    const struct address *addr, const char *param, struct str *reply)
{
	(void)context;
	(void)tx;
	(void)param;
	if (listmgr_rcpt_ok(str_c(addr->local), str_c(addr->domain)))
		return true;
	str_set_cstr(reply, "550 5.1.1 No such list");
	return false;
}

/* listmgr_session_data - listmgr_deliver() for each recipient */
static void
listmgr_session_data(void *context, const struct lmtp_server_tx *tx,
    const char *msg, size_t len, struct str *const *replies)
{
	struct listmgr_msg m;
	size_t i;

	(void)context;
	memset(&m, 0, sizeof(m));
	m.data = msg;
	m.len = len;
	m.hdr_len = header_block_size(m.data, m.len);
	m.sender = tx->sender;
	m.log = tx->log;
	for (i = 0; i < tx->nrcpt; i++) {
		m.token = tx->rcpt[i].param;
		(void)listmgr_deliver(&m, tx->rcpt[i].local, tx->rcpt[i].domain,
		    replies[i]);
	}
}

/* listmgr_session_run - see listmgr.h */
void
listmgr_session_run(int fd, const char *peer)
{
	static const char *const ext[] = { LISTMGR_TOKEN_EXT, NULL };
	struct lmtp_server_settings set;

	memset(&set, 0, sizeof(set));
	set.hostname = listmgr_settings.myhostname;
	set.banner = "LMTP Postern list-mgr";
	set.timeout = listmgr_settings.timeout;
	set.size_limit = listmgr_settings.size_limit;
	set.lhlo_ext = ext;
	set.rcpt_param = "XTOKEN";
	set.rcpt_param_max = LISTMGR_TOKEN_MAX;
	set.on_rcpt = listmgr_session_rcpt;
	set.on_data = listmgr_session_data;
	lmtp_server_run(fd, peer, &set);
}
