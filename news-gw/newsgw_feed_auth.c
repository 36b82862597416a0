/* SPDX-License-Identifier: MIT */
/*
 * newsgw_feed_auth - AUTHINFO on news-gw's feed server (RFC 4643)
 *
 * DESCRIPTION
 *	A feeding peer is admitted by address ($news_gw_peers, checked by
 *	newsgw_feed_run before the greeting) or by credentials: AUTHINFO
 *	USER/PASS (RFC 4643 2.3) or AUTHINFO SASL (2.4). Both are offered
 *	only when $news_gw_peer_maps is set.
 *
 *	Credentials are checked by lib/auth (auth_verify_password, or
 *	libsasl2 through lib/sasl_server, whose password check is lib/auth
 *	too): a peer is an account of the instance's user database, LDAP
 *	or Kerberos, managed with `postern user` like any other, and every
 *	failure waits out lib/auth_delay's growing failed-login delay,
 *	shared with every other login service. Knowing the password is
 *	not enough: $news_gw_peer_maps says which accounts are feeding
 *	peers, and from where. Its key is the account name (lower case),
 *	its value the addresses or networks the account may feed from
 *	(newsgw_peer_match syntax, "0.0.0.0/0, ::/0" for anywhere). So a
 *	peer listed there and not in $news_gw_peers needs both its
 *	password and one of its addresses; an account that authenticates
 *	but is not in the maps, or comes from elsewhere, gets 481 like a
 *	wrong password (logged with the reason).
 *
 *	Replies: AUTHINFO USER 381 (password required); AUTHINFO PASS
 *	281, 481 (failed or not a feeding peer), 482 (no USER before);
 *	AUTHINFO SASL 383 challenge (base64, "=" when empty), 281, 481
 *	(failed, or "*" from the client), 503 (mechanism not offered), 504
 *	(bad base64); any AUTHINFO after success 502, and without
 *	$news_gw_peer_maps 502. AUTHINFO USER, PASS and the plaintext SASL
 *	mechanisms (PLAIN, LOGIN) get 483 outside TLS while
 *	$news_gw_feed_tls_auth_only is set (as smtpd_tls_auth_only), and
 *	every AUTHINFO does at $news_gw_feed_tls_security_level = encrypt.
 *	A backend or map failure is 403 (RFC 3977 3.2.1: try later).
 *
 *	The SASL service name is "nntp" (RFC 4643 5: the Kerberos
 *	principal nntp/$sasl_hostname). One SASL session per connection,
 *	renewed after STARTTLS and after each failed exchange. An initial
 *	response must fit the 512-octet command line; a longer one (a
 *	Kerberos ticket) goes after an empty 383 instead, as RFC 4643
 *	2.4.1 allows.
 *
 *	Passwords are wiped from memory (explicit_bzero) once checked.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "auth.h"
#include "log.h"
#include "map.h"
#include "nntp_proto.h"
#include "sasl_server.h"
#include "stream.h"
#include "str.h"

#include "newsgw.h"

#define NEWSGW_AUTH_USER_MAX	255	/* AUTHINFO USER argument */
#define NEWSGW_SASL_LINE_MAX	16384	/* one SASL response line */
#define NEWSGW_SASL_ROUNDS_MAX	16	/* challenges in one exchange */

struct newsgw_auth {
	const char *peer_addr;	/* borrowed: numeric address */
	const char *peer;	/* borrowed: "[addr]:port" */
	struct log_ctx *log;	/* borrowed */
	struct sasl_server *sasl;	/* NULL without libsasl2 */
	char *pending_user;	/* from AUTHINFO USER, waiting for PASS */
	char *user;		/* the authorised peer, NULL until then */
	unsigned failures;
	bool tls;
};

/* newsgw_auth_enabled - see newsgw.h */
bool
newsgw_auth_enabled(void)
{
	return newsgw_settings.npeer_maps > 0;
}

/* newsgw_auth_plaintext_ok - may passwords be sent now? */
static bool
newsgw_auth_plaintext_ok(const struct newsgw_auth *a)
{
	return a->tls || !newsgw_settings.feed_tls_auth_only;
}

/* newsgw_auth_sasl_reset - a fresh SASL session for the current state */
static void
newsgw_auth_sasl_reset(struct newsgw_auth *a)
{
	const char *err = NULL;

	sasl_server_free(&a->sasl);
	if (!newsgw_auth_enabled() || !sasl_server_ready())
		return;
	a->sasl = sasl_server_create("nntp", a->log,
	    newsgw_auth_plaintext_ok(a), &err);
	if (a->sasl == NULL)
		log_error(a->log, "SASL session: %s", err);
}

/* newsgw_auth_new - see newsgw.h */
struct newsgw_auth *
newsgw_auth_new(const char *peer_addr, const char *peer,
    struct log_ctx *log)
{
	struct newsgw_auth *a = xcalloc(1, sizeof(*a));

	a->peer_addr = peer_addr;
	a->peer = peer;
	a->log = log;
	newsgw_auth_sasl_reset(a);
	return a;
}

/* newsgw_auth_free - see newsgw.h */
void
newsgw_auth_free(struct newsgw_auth **ap)
{
	struct newsgw_auth *a = *ap;

	if (a == NULL)
		return;
	sasl_server_free(&a->sasl);
	free(a->pending_user);
	free(a->user);
	free(a);
	*ap = NULL;
}

/* newsgw_auth_tls_started - see newsgw.h */
void
newsgw_auth_tls_started(struct newsgw_auth *a)
{
	a->tls = true;
	XFREE(a->pending_user);
	newsgw_auth_sasl_reset(a);
}

/* newsgw_auth_user - see newsgw.h */
const char *
newsgw_auth_user(const struct newsgw_auth *a)
{
	return a->user;
}

/* newsgw_auth_failures - see newsgw.h */
unsigned
newsgw_auth_failures(const struct newsgw_auth *a)
{
	return a->failures;
}

/* newsgw_auth_capabilities - see newsgw.h */
void
newsgw_auth_capabilities(const struct newsgw_auth *a, struct str *out)
{
	struct str *mechs;

	if (!newsgw_auth_enabled() || a->user != NULL || (!a->tls &&
	    newsgw_settings.feed_tls_level == NEWSGW_FEED_TLS_ENCRYPT))
		return;
	mechs = str_new(0, 0);
	if (a->sasl != NULL)
		sasl_server_mechs(a->sasl, mechs, " ");
	if (newsgw_auth_plaintext_ok(a) || str_len(mechs) > 0) {
		str_append_cstr(out, "AUTHINFO");
		if (newsgw_auth_plaintext_ok(a))
			str_append_cstr(out, " USER");
		if (str_len(mechs) > 0)
			str_append_cstr(out, " SASL");
		str_append_cstr(out, "\r\n");
	}
	if (str_len(mechs) > 0)
		str_printf(out, "SASL%s\r\n", str_c(mechs));
	str_free(&mechs);
}

/* newsgw_auth_reply - one reply line (buffered) */
static void
newsgw_auth_reply(struct stream *s, const char *text)
{
	(void)stream_printf(s, "%s\r\n", text);
}

/*
 * newsgw_auth_peer_allowed - whether the authenticated account user may
 * feed from this connection's address: 1 yes, 0 no (*why_r static
 * text), -1 a map failed (logged)
 */
static int
newsgw_auth_peer_allowed(struct newsgw_auth *a, const char *user,
    const char **why_r)
{
	struct str *value = str_new(0, 0), *spec = str_new(0, 0);
	const char *p, *q;
	const char *one[1];
	bool any_bad = false;
	int rc;

	rc = newsgw_maps_lookup(newsgw_settings.peer_maps,
	    newsgw_settings.npeer_maps, user, value, a->log);
	if (rc <= 0) {
		*why_r = "not a feeding peer in news_gw_peer_maps";
		goto out;
	}
	rc = 0;
	*why_r = "not allowed from this address by news_gw_peer_maps";
	for (p = str_c(value); *p != '\0'; p = q) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		q = p + strcspn(p, ", \t");
		str_set(spec, p, (size_t)(q - p));
		if (!newsgw_peer_spec_ok(str_c(spec))) {
			any_bad = true;
			continue;
		}
		one[0] = str_c(spec);
		if (newsgw_peer_match(one, 1, a->peer_addr)) {
			rc = 1;
			break;
		}
	}
	if (any_bad)
		log_warn(a->log, "news_gw_peer_maps: the entry for %s holds "
		    "something that is not an address or a network: %s", user,
		    str_c(value));
out:
	str_free(&value);
	str_free(&spec);
	return rc;
}

/*
 * newsgw_auth_verdict - after the credentials of user (folded, valid)
 * checked out: authorise and reply 281, or 481/403
 */
static void
newsgw_auth_verdict(struct newsgw_auth *a, struct stream *s,
    const char *user, const char *method)
{
	const char *why = NULL;
	int rc;

	rc = newsgw_auth_peer_allowed(a, user, &why);
	if (rc < 0) {
		newsgw_auth_reply(s, "403 Authorization service unavailable; "
		    "try again later");
		return;
	}
	if (rc == 0) {
		log_warn(a->log, "AUTHINFO from %s refused: user=%s, method=%s: "
		    "%s", a->peer, user, method, why);
		a->failures++;
		newsgw_auth_reply(s, "481 Authentication failed");
		return;
	}
	log_info(a->log, "AUTHINFO from %s: peer=%s, method=%s%s", a->peer,
	    user, method, a->tls ? ", tls" : "");
	a->user = xstrdup(user);
	newsgw_auth_reply(s, "281 Authentication accepted");
}

/* newsgw_auth_fold - user in lower case into out (as lib/auth folds) */
static void
newsgw_auth_fold(const char *user, struct str *out)
{
	char *p;

	str_set_cstr(out, user);
	for (p = str_data(out); *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* newsgw_auth_pass - AUTHINFO PASS: check the pending user's password */
static void
newsgw_auth_pass(struct newsgw_auth *a, struct stream *s,
    const struct nntp_arg *arg)
{
	struct str *shown, *user;
	const char *err = NULL;
	char *pass;

	pass = xstrndup(arg->p, arg->len);
	switch (auth_verify_password(a->pending_user, pass, &err)) {
	case AUTH_OK:
		user = str_new(0, 0);
		newsgw_auth_fold(a->pending_user, user);
		newsgw_auth_verdict(a, s, str_c(user), "USER");
		str_free(&user);
		break;
	case AUTH_TEMPFAIL:
		log_error(a->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		newsgw_auth_reply(s, "403 Authentication service unavailable; "
		    "try again later");
		break;
	case AUTH_FAIL:
	default:
		shown = str_new(0, 0);
		mem_printable(shown, a->pending_user, strlen(a->pending_user),
		    64);
		log_info(a->log, "AUTHINFO from %s failed: user=%s, "
		    "method=USER", a->peer, str_c(shown));
		str_free(&shown);
		a->failures++;
		/* no sleep here: lib/auth has waited out the failed-login
		 * delay (auth_delay.h) */
		newsgw_auth_reply(s, "481 Authentication failed");
		break;
	}
	explicit_bzero(pass, arg->len);
	free(pass);
	XFREE(a->pending_user);
}

/*
 * newsgw_auth_sasl_read - send "383 challenge" and read the answer
 * into line: 1 with an answer, 0 when the exchange ended with a reply
 * sent (cancelled, too long), -1 the connection broke
 */
static int
newsgw_auth_sasl_read(struct newsgw_auth *a, struct stream *s,
    const struct str *challenge, struct str *line)
{
	enum stream_result r;

	(void)stream_printf(s, "383 %s\r\n", str_len(challenge) > 0 ?
	    str_c(challenge) : "=");
	if (stream_flush(s) < 0)
		return -1;
	r = stream_read_line(s, line, NEWSGW_SASL_LINE_MAX);
	if (r == STREAM_TOO_LONG) {
		a->failures++;
		newsgw_auth_reply(s, "481 SASL response too long");
		return 0;
	}
	if (r != STREAM_OK)
		return -1;
	str_chomp(line);
	if (str_equals_cstr(line, "*")) {
		a->failures++;
		newsgw_auth_reply(s, "481 Authentication cancelled");
		return 0;
	}
	if (str_equals_cstr(line, "="))	/* an empty response */
		str_clear(line);
	return 1;
}

/* newsgw_auth_sasl - AUTHINFO SASL mech [ir]; false if the connection broke */
static bool
newsgw_auth_sasl(struct newsgw_auth *a, struct stream *s,
    const struct nntp_cmd *cmd)
{
	struct str *mech = str_new(0, 0), *out = str_new(0, 0),
	    *line = str_new(0, 0), *shown;
	enum sasl_server_result r;
	const char *err = NULL;
	bool go_on = true;
	unsigned rounds = 0;
	int rc;

	str_set(mech, cmd->args[1].p, cmd->args[1].len);
	if (a->sasl == NULL || !sasl_server_mech_offered(a->sasl,
	    str_c(mech))) {
		if (sasl_server_mech_plaintext(str_c(mech)) &&
		    !newsgw_auth_plaintext_ok(a))
			newsgw_auth_reply(s, "483 Encryption required for "
			    "this mechanism; use STARTTLS");
		else
			newsgw_auth_reply(s, "503 Mechanism not recognized");
		goto out;
	}
	r = sasl_server_begin(a->sasl, str_c(mech), cmd->nargs == 3 ?
	    cmd->args[2].p : NULL, cmd->nargs == 3 ? cmd->args[2].len : 0,
	    out, &err);
	while (r == SASL_SERVER_CONTINUE) {
		if (++rounds > NEWSGW_SASL_ROUNDS_MAX) {
			a->failures++;
			newsgw_auth_reply(s, "481 Too many SASL rounds");
			goto reset;
		}
		rc = newsgw_auth_sasl_read(a, s, out, line);
		if (rc < 0) {
			go_on = false;
			goto out;
		}
		if (rc == 0)
			goto reset;
		r = sasl_server_next(a->sasl, str_c(line), str_len(line), out,
		    &err);
		explicit_bzero(str_data(line), str_len(line));
	}
	switch (r) {
	case SASL_SERVER_OK:
		newsgw_auth_verdict(a, s, sasl_server_user(a->sasl),
		    sasl_server_mech(a->sasl));
		if (a->user != NULL)
			goto out;	/* authenticated: no more AUTHINFO */
		break;
	case SASL_SERVER_TEMPFAIL:
		log_error(a->log, "authentication backend: %s",
		    err != NULL ? err : "failed");
		newsgw_auth_reply(s, "403 Authentication service unavailable; "
		    "try again later");
		break;
	case SASL_SERVER_BADB64:
		a->failures++;
		newsgw_auth_reply(s, "504 Invalid base64 data");
		break;
	case SASL_SERVER_BADMECH:
		newsgw_auth_reply(s, "503 Mechanism not recognized");
		break;
	case SASL_SERVER_ERROR:
		log_error(a->log, "SASL %s: %s", str_c(mech),
		    err != NULL ? err : "failed");
		newsgw_auth_reply(s, "403 Internal SASL error");
		break;
	case SASL_SERVER_NOAUTHZ:
	case SASL_SERVER_FAIL:
	default:
		shown = str_new(0, 0);
		if (err != NULL)
			mem_printable(shown, err, strlen(err), 200);
		log_info(a->log, "AUTHINFO from %s failed: method=%s%s%s",
		    a->peer, str_c(mech), err != NULL ? ": " : "",
		    str_c(shown));
		str_free(&shown);
		a->failures++;
		newsgw_auth_reply(s, "481 Authentication failed");
		break;
	}
reset:
	/* a session that ran an exchange is not reused for another */
	newsgw_auth_sasl_reset(a);
out:
	if (str_len(line) > 0)
		explicit_bzero(str_data(line), str_len(line));
	str_free(&mech);
	str_free(&out);
	str_free(&line);
	return go_on;
}

/* newsgw_auth_command - see newsgw.h */
bool
newsgw_auth_command(struct newsgw_auth *a, struct stream *s,
    const struct nntp_cmd *cmd)
{
	const struct nntp_arg *sub = &cmd->args[0];
	bool user = sub->len == 4 && strncasecmp(sub->p, "USER", 4) == 0,
	    pass = sub->len == 4 && strncasecmp(sub->p, "PASS", 4) == 0,
	    sasl = sub->len == 4 && strncasecmp(sub->p, "SASL", 4) == 0;

	if (!user && !pass && !sasl) {
		newsgw_auth_reply(s, "501 Unknown AUTHINFO subcommand");
		return true;
	}
	if (!newsgw_auth_enabled()) {
		newsgw_auth_reply(s, "502 Authentication not available "
		    "(peers are admitted by address)");
		return true;
	}
	if (a->user != NULL) {
		newsgw_auth_reply(s, "502 Already authenticated");
		return true;
	}
	if (!a->tls && newsgw_settings.feed_tls_level ==
	    NEWSGW_FEED_TLS_ENCRYPT) {
		newsgw_auth_reply(s, "483 Encryption required; use STARTTLS");
		return true;
	}
	if ((user || pass) && !newsgw_auth_plaintext_ok(a)) {
		XFREE(a->pending_user);
		newsgw_auth_reply(s, "483 Encryption required for "
		    "AUTHINFO USER/PASS; use STARTTLS");
		return true;
	}
	if ((user || pass) && cmd->nargs != 2) {
		newsgw_auth_reply(s, "501 Syntax: AUTHINFO USER name, "
		    "AUTHINFO PASS password");
		return true;
	}
	if (user) {
		XFREE(a->pending_user);
		if (cmd->args[1].len > NEWSGW_AUTH_USER_MAX) {
			a->failures++;
			newsgw_auth_reply(s, "481 User name too long");
			return true;
		}
		a->pending_user = xstrndup(cmd->args[1].p, cmd->args[1].len);
		newsgw_auth_reply(s, "381 Password required");
		return true;
	}
	if (pass) {
		if (a->pending_user == NULL) {
			newsgw_auth_reply(s, "482 Authentication commands "
			    "issued out of sequence (AUTHINFO USER first)");
			return true;
		}
		newsgw_auth_pass(a, s, &cmd->args[1]);
		return true;
	}
	XFREE(a->pending_user);
	if (cmd->nargs < 2) {
		newsgw_auth_reply(s, "501 Syntax: AUTHINFO SASL mechanism "
		    "[initial-response]");
		return true;
	}
	return newsgw_auth_sasl(a, s, cmd);
}
