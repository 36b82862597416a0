/* SPDX-License-Identifier: MIT */
/*
 * login_proxy_fuzz - libFuzzer target for the login hand-off record
 *
 * The first octet picks the way in. Even: login_handoff_decode() on the
 * rest. Odd: the rest is sent as the record over a socketpair, with an
 * fd on its first octet and EOF after it (login_proxy_send_rec), and
 * login_proxy_recv() takes it: the mail role's whole receiving side
 * (framing, the size check before reading, the fds, the decode). Checks
 * beyond "no crash, no leak": a record that decodes has a user, names
 * without NUL within their limits and ports that fit, and encodes again
 * to the same octets (the format has one encoding; over the socket,
 * what follows the record's total length is left unread); what
 * login_proxy_recv accepts came with the client fd, close-on-exec, and a
 * refusal leaves no fd behind.
 */
#include <sys/socket.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "login_proxy.h"
#include "log.h"
#include "macros.h"
#include "str.h"

/* more than the largest record; what a socketpair buffers at once */
#define FUZZ_INPUT_MAX	(128 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_check - h decoded from rec[0..n): its invariants and round trip.
 * stream: rec came over a socket, where the record is the first
 * total_len octets and anything after it is never read.
 */
static void
fuzz_check(const struct login_handoff *h, const uint8_t *rec, size_t n,
    bool stream)
{
	const char *s[] = { h->user, h->peer_addr, h->local_addr, h->tls,
	    h->session_id, h->proto };
	struct str *again = str_new(0, 0);
	size_t i;

	ASSERT(h->user != NULL && h->user[0] != '\0');
	for (i = 0; i < N_ELEMENTS(s); i++)
		ASSERT(s[i] != NULL &&
		    strlen(s[i]) <= LOGIN_HANDOFF_MAX_STRING);
	ASSERT(h->lists != NULL && strlen(h->lists) <= LOGIN_HANDOFF_MAX_LISTS);
	ASSERT(h->peer_port <= 65535 && h->local_port <= 65535);
	ASSERT(h->input != NULL &&
	    str_len(h->input) <= LOGIN_HANDOFF_MAX_INPUT);
	ASSERT(login_handoff_encode(h, again) == 0);
	ASSERT(stream ? str_len(again) <= n : str_len(again) == n);
	ASSERT(memcmp(str_c(again), rec, str_len(again)) == 0);
	str_free(&again);
}

/* fuzz_recv - rec[0..n) through a socketpair into login_proxy_recv */
static void
fuzz_recv(const uint8_t *rec, size_t n)
{
	struct login_handoff h;
	const char *error = NULL;
	int sv[2], fds[LOGIN_HANDOFF_MAX_FDS], payload;
	size_t nfds = 0, i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	payload = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT(payload >= 0);
	/* fits in the socket buffer: the send never waits for the recv */
	if (login_proxy_send_rec(sv[0], rec, n, &payload, 1, 5, &error) < 0) {
		(void)close(payload);
		(void)close(sv[0]);
		(void)close(sv[1]);
		return;
	}
	(void)close(payload);
	(void)shutdown(sv[0], SHUT_WR);
	if (login_proxy_recv(sv[1], &h, fds, &nfds, 5, &error) == 0) {
		ASSERT(nfds >= 1 && nfds <= LOGIN_HANDOFF_MAX_FDS);
		for (i = 0; i < nfds; i++) {
			ASSERT((fcntl(fds[i], F_GETFD) & FD_CLOEXEC) != 0);
			(void)close(fds[i]);
		}
		fuzz_check(&h, rec, n, true);
		login_handoff_clear(&h);
	} else {
		ASSERT(nfds == 0 && error != NULL);
		ASSERT(h.user == NULL && h.input == NULL);
	}
	(void)close(sv[0]);
	(void)close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	struct login_handoff h;
	const char *error = NULL;

	if (!inited) {
		log_init("login_proxy_fuzz");
		(void)log_open_file("/dev/null");
		inited = true;
	}
	if (size < 1 || size > FUZZ_INPUT_MAX + 1)
		return 0;
	if ((data[0] & 1) != 0) {
		fuzz_recv(data + 1, size - 1);
		return 0;
	}
	if (login_handoff_decode(data + 1, size - 1, &h, &error) == 0) {
		fuzz_check(&h, data + 1, size - 1, false);
		login_handoff_clear(&h);
	} else {
		ASSERT(error != NULL && h.user == NULL && h.input == NULL);
	}
	return 0;
}
