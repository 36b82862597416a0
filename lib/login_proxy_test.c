/* SPDX-License-Identifier: MIT */
/*
 * login_proxy_test - the hand-off record: encode, decode, each refusal,
 * and the receiving side over a socketpair (the record sent with
 * login_proxy_send_rec, as login_proxy_send does, then taken by
 * login_proxy_recv, as the mail role does)
 */
#include <sys/socket.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "login_proxy.h"
#include "log.h"
#include "server.h"
#include "str.h"
#include "stream.h"
#include "test.h"

/* t_handoff - a typical record's fields */
static void
t_handoff(struct login_handoff *h)
{
	memset(h, 0, sizeof(*h));
	h->flags = LOGIN_HANDOFF_SECURED | LOGIN_HANDOFF_QUOTA;
	h->user = xstrdup("alice");
	h->peer_addr = xstrdup("192.0.2.7");
	h->peer_port = 40000;
	h->local_addr = xstrdup("192.0.2.1");
	h->local_port = 143;
	h->quota = ((uint64_t)1 << 33) + 5;
	h->tls = xstrdup("");
	h->session_id = xstrdup("1J17KKJOQOH00DPS00");
	h->proto = xstrdup("a1");
	h->lists = xstrdup("staff course");
	h->input = str_new(0, 0);
	str_append_cstr(h->input, "a2 SELECT INBOX\r\n");
}

/* put_u32 - overwrite the u32 at offset off of rec */
static void
put_u32(struct str *rec, size_t off, uint32_t v)
{
	memcpy(str_data(rec) + off, &v, sizeof(v));
}

/* decode_fails - rec does not decode, with the reason want */
static void
decode_fails(const struct str *rec, const char *want)
{
	struct login_handoff h;
	const char *error = NULL;

	TEST_ASSERT(login_handoff_decode(str_c(rec), str_len(rec), &h,
	    &error) < 0);
	TEST_ASSERT_STR(error != NULL ? error : "(none)", want);
	TEST_ASSERT(h.user == NULL && h.input == NULL);
}

static void
test_decode(void)
{
	struct login_handoff h, d;
	struct str *rec = str_new(0, 0), *bad = str_new(0, 0);
	const char *error = NULL;
	size_t user_len_at = 28;	/* after the 7 fixed u32 */

	test_begin("login_handoff encode/decode and each refusal");
	t_handoff(&h);
	TEST_ASSERT(login_handoff_encode(&h, rec) == 0);
	TEST_ASSERT(login_handoff_decode(str_c(rec), str_len(rec), &d,
	    &error) == 0);
	TEST_ASSERT_STR(d.user, "alice");
	TEST_ASSERT_STR(d.peer_addr, "192.0.2.7");
	TEST_ASSERT(d.peer_port == 40000 && d.local_port == 143);
	TEST_ASSERT(d.quota == h.quota && d.flags == h.flags);
	TEST_ASSERT_STR(d.session_id, "1J17KKJOQOH00DPS00");
	TEST_ASSERT_STR(d.proto, "a1");
	TEST_ASSERT_STR(d.lists, "staff course");
	TEST_ASSERT_STR(str_c(d.input), "a2 SELECT INBOX\r\n");
	login_handoff_clear(&d);

	str_set(bad, str_c(rec), str_len(rec));
	put_u32(bad, 0, 0x32484c50u);
	decode_fails(bad, "bad hand-off record header");
	str_set(bad, str_c(rec), str_len(rec) - 1);
	decode_fails(bad, "bad hand-off record header");
	str_set(bad, str_c(rec), 6);
	decode_fails(bad, "bad hand-off record header");
	str_set(bad, str_c(rec), str_len(rec));
	put_u32(bad, 8, 0x80);
	decode_fails(bad, "bad hand-off record fields");
	str_set(bad, str_c(rec), str_len(rec));
	put_u32(bad, 12, 65536);
	decode_fails(bad, "bad hand-off record fields");
	/* the user's length past the end; a NUL inside a name */
	str_set(bad, str_c(rec), str_len(rec));
	put_u32(bad, user_len_at, 100000);
	decode_fails(bad, "bad hand-off record string");
	str_set(bad, str_c(rec), str_len(rec));
	str_data(bad)[user_len_at + 4 + 1] = '\0';
	decode_fails(bad, "bad hand-off record string");
	/* one octet more than the fields use (total_len says so too) */
	str_set(bad, str_c(rec), str_len(rec));
	str_append_c(bad, 'x');
	put_u32(bad, 4, (uint32_t)str_len(bad));
	decode_fails(bad, "bad hand-off record input");

	XFREE(h.user);
	h.user = xstrdup("");
	TEST_ASSERT(login_handoff_encode(&h, rec) == 0);
	decode_fails(rec, "hand-off record without a user");

	/* what is too long is never sent */
	XFREE(h.proto);
	h.proto = xmalloc(LOGIN_HANDOFF_MAX_STRING + 2);
	memset(h.proto, 'p', LOGIN_HANDOFF_MAX_STRING + 1);
	TEST_ASSERT(login_handoff_encode(&h, rec) < 0);
	login_handoff_clear(&h);
	str_free(&rec);
	str_free(&bad);
	test_end();
}

/*
 * exchange - send rec (with a /dev/null fd unless !with_fd) and take it
 * with login_proxy_recv; its result, the fds closed
 */
static int
exchange(const struct str *rec, bool with_fd, struct login_handoff *h,
    const char **error_r)
{
	int sv[2], fds[LOGIN_HANDOFF_MAX_FDS], payload, rc;
	size_t nfds = 0, i;

	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	payload = open("/dev/null", O_RDONLY | O_CLOEXEC);
	TEST_ASSERT(payload >= 0);
	TEST_ASSERT(login_proxy_send_rec(sv[0], str_c(rec), str_len(rec),
	    &payload, with_fd ? 1 : 0, 5, error_r) == 0);
	(void)close(payload);
	(void)shutdown(sv[0], SHUT_WR);
	rc = login_proxy_recv(sv[1], h, fds, &nfds, 5, error_r);
	TEST_ASSERT(rc == 0 ? nfds == 1 : nfds == 0);
	for (i = 0; i < nfds; i++) {
		TEST_ASSERT((fcntl(fds[i], F_GETFD) & FD_CLOEXEC) != 0);
		(void)close(fds[i]);
	}
	(void)close(sv[0]);
	(void)close(sv[1]);
	return rc;
}

static void
test_recv(void)
{
	struct login_handoff h, d;
	struct str *rec = str_new(0, 0);
	const char *error = NULL;
	char **s[] = { &h.user, &h.peer_addr, &h.local_addr, &h.tls,
	    &h.session_id, &h.proto };
	size_t i;

	test_begin("login_proxy_recv: the largest record, refusals");
	/* every field at its limit: the size check must let it in */
	t_handoff(&h);
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		free(*s[i]);
		*s[i] = xmalloc(LOGIN_HANDOFF_MAX_STRING + 1);
		memset(*s[i], 'a', LOGIN_HANDOFF_MAX_STRING);
		(*s[i])[LOGIN_HANDOFF_MAX_STRING] = '\0';
	}
	free(h.lists);
	h.lists = xmalloc(LOGIN_HANDOFF_MAX_LISTS + 1);
	memset(h.lists, 'l', LOGIN_HANDOFF_MAX_LISTS);
	str_clear(h.input);
	while (str_len(h.input) < LOGIN_HANDOFF_MAX_INPUT)
		str_append_c(h.input, 'i');
	TEST_ASSERT(login_handoff_encode(&h, rec) == 0);
	TEST_ASSERT(exchange(rec, true, &d, &error) == 0);
	TEST_ASSERT(d.user != NULL && strlen(d.user) ==
	    LOGIN_HANDOFF_MAX_STRING);
	TEST_ASSERT(d.input != NULL && str_len(d.input) ==
	    LOGIN_HANDOFF_MAX_INPUT);
	TEST_ASSERT(d.lists != NULL && strlen(d.lists) ==
	    LOGIN_HANDOFF_MAX_LISTS);
	login_handoff_clear(&d);
	login_handoff_clear(&h);

	t_handoff(&h);
	TEST_ASSERT(login_handoff_encode(&h, rec) == 0);
	TEST_ASSERT(exchange(rec, false, &d, &error) < 0);
	TEST_ASSERT_STR(error, "hand-off without a client fd");
	str_truncate(rec, str_len(rec) - 3);
	TEST_ASSERT(exchange(rec, true, &d, &error) < 0);
	TEST_ASSERT_STR(error, "connection closed early");
	put_u32(rec, 4, 12);
	TEST_ASSERT(exchange(rec, true, &d, &error) < 0);
	TEST_ASSERT_STR(error, "record size out of range");
	TEST_ASSERT(d.user == NULL);
	login_handoff_clear(&h);
	str_free(&rec);
	test_end();
}

/*
 * test_conn - login_conn_accept (slots), login_conn_handoff_record and
 * login_conn_handoff: the mail side's connection is the login side's,
 * and reads the input the login side had read ahead first
 */
static void
test_conn(void)
{
	struct server_conn sc;
	struct login_conn lc, lc2, mc;
	struct login_handoff h, mh;
	struct str *rec = str_new(0, 0), *line = str_new(0, 0);
	const char *error = NULL;
	int client[2], hand[2], fds[1];

	test_begin("login_conn: accept, hand-off record, hand-off");
	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    client) == 0);
	memset(&sc, 0, sizeof(sc));
	sc.fd = client[1];
	sc.peer_addr = "192.0.2.7";
	sc.peer_port = 40000;
	sc.local_addr = NULL;
	sc.local_port = 143;
	TEST_ASSERT(login_conn_accept(&lc, &sc, 5, test_tmpdir(), "t-conn",
	    1));
	TEST_ASSERT(lc.slot_fd >= 0 && lc.id[0] != '\0' &&
	    lc.log.id == lc.id);
	TEST_ASSERT_STR(lc.local_addr, "");
	/* the one slot for 192.0.2.7 is taken */
	TEST_ASSERT(!login_conn_accept(&lc2, &sc, 5, test_tmpdir(), "t-conn",
	    1));
	TEST_ASSERT(lc2.slot_fd < 0 && strcmp(lc2.id, lc.id) != 0);
	login_conn_clear(&lc2);
	TEST_ASSERT(login_addr_is_loopback("127.0.0.1") &&
	    login_addr_is_loopback("::1") && login_addr_is_loopback("local") &&
	    login_addr_is_loopback("::ffff:127.1.2.3") &&
	    !login_addr_is_loopback("192.0.2.7"));

	/* the client pipelined two commands; the login side read both */
	TEST_ASSERT(write(client[0], "a1 LOGIN x y\r\na2 NOOP\r\n", 23) == 23);
	TEST_ASSERT(stream_read_line(lc.s, line, 100) == STREAM_OK);
	TEST_ASSERT_STR(str_c(line), "a1 LOGIN x y\r\n");
	lc.secured = true;
	lc.have_quota = true;
	lc.quota_bytes = 1000;
	lc.dir_lists = xstrdup(" staff ");
	TEST_ASSERT(login_conn_handoff_record(&lc, "alice", "a1", &h) == 0);
	TEST_ASSERT_STR(str_c(h.input), "a2 NOOP\r\n");
	TEST_ASSERT(h.flags == (LOGIN_HANDOFF_SECURED | LOGIN_HANDOFF_QUOTA) &&
	    h.quota == 1000);
	TEST_ASSERT(login_handoff_encode(&h, rec) == 0);

	TEST_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    hand) == 0);
	fds[0] = client[1];
	TEST_ASSERT(login_proxy_send_rec(hand[0], str_c(rec), str_len(rec),
	    fds, 1, 5, &error) == 0);
	TEST_ASSERT(login_conn_handoff(&mc, hand[1], 5, &mh, &error) == 0);
	TEST_ASSERT_STR(mc.id, lc.id);
	TEST_ASSERT(mc.log.id == mc.id);
	TEST_ASSERT_STR(mc.peer_addr, "192.0.2.7");
	TEST_ASSERT(mc.peer_port == 40000 && mc.local_port == 143);
	TEST_ASSERT(mc.secured && !mc.tls && mc.have_quota &&
	    mc.quota_bytes == 1000 && mc.slot_fd < 0);
	TEST_ASSERT_STR(mh.user, "alice");
	TEST_ASSERT_STR(mh.proto, "a1");
	TEST_ASSERT_STR(mc.dir_lists, " staff ");
	/* the input the login side had, then what comes on the socket */
	TEST_ASSERT(write(client[0], "a3 LOGOUT\r\n", 11) == 11);
	TEST_ASSERT(stream_read_line(mc.s, line, 100) == STREAM_OK);
	TEST_ASSERT_STR(str_c(line), "a2 NOOP\r\n");
	TEST_ASSERT(stream_read_line(mc.s, line, 100) == STREAM_OK);
	TEST_ASSERT_STR(str_c(line), "a3 LOGOUT\r\n");
	login_handoff_clear(&mh);
	login_conn_clear(&mc);
	login_handoff_clear(&h);
	login_conn_clear(&lc);

	/* nothing received: an error, and mc safe to clear */
	(void)close(hand[0]);
	TEST_ASSERT(login_conn_handoff(&mc, hand[1], 5, &mh, &error) < 0);
	TEST_ASSERT(mc.s == NULL && mc.slot_fd < 0);
	login_conn_clear(&mc);
	(void)close(hand[1]);
	(void)close(client[0]);
	str_free(&rec);
	str_free(&line);
	test_end();
}

int
main(void)
{
	log_init("login_proxy_test");
	test_decode();
	test_recv();
	test_conn();
	return test_done();
}
