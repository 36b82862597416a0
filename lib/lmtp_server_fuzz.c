/* SPDX-License-Identifier: MIT */
/*
 * lmtp_server_fuzz - libFuzzer target for lmtp_server.c
 *
 * The first octet chooses the settings (size limit, content line limit,
 * recipient limit, whether the private RCPT parameter is on, whether
 * it is handed on as xtext, UTF-8 paths with header-only content); the rest
 * is the client's byte stream, written into a socketpair at once and
 * followed by EOF, and lmtp_server_run() speaks to it. Input is capped
 * so that every reply fits in the socket buffer (the server never blocks
 * writing). Checks beyond "no crash, no leak": every octet the server
 * wrote is a reply line "DDD-text" or "DDD text" ending in CRLF, and
 * on_data only ever sees content within the size limit (the header
 * limit) with its NUL, and an xtext parameter is printable.
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lmtp_server.h"
#include "log.h"
#include "macros.h"
#include "str.h"

#define FUZZ_INPUT_MAX	4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_size_limit;
static size_t fuzz_header_max;

static bool
fuzz_rcpt(void *context, const struct lmtp_server_tx *tx,
    const struct address *addr, const char *param, struct str *reply)
{
	size_t i;

	(void)context;
	for (i = 0; param != NULL && param[i] != '\0'; i++)
		ASSERT(param[i] > 0x20 && param[i] < 0x7f);
	ASSERT(tx->nrcpt < 1000);
	if (str_len(addr->local) > 0 && str_c(addr->local)[0] == 'n') {
		str_set_cstr(reply, "550 5.1.1 No such user");
		return false;
	}
	return true;
}

static void
fuzz_data(void *context, const struct lmtp_server_tx *tx, const char *msg,
    size_t len, struct str *const *replies)
{
	size_t i;

	(void)context;
	ASSERT(msg[len] == '\0');
	ASSERT(fuzz_size_limit == 0 || len <= fuzz_size_limit);
	ASSERT(fuzz_header_max == 0 || len <= fuzz_header_max);
	ASSERT(!tx->header_over || len == 0);
	for (i = 0; i < tx->nrcpt; i++)
		if (i % 2 == 0)
			str_printf(replies[i], "250 2.0.0 %zu", len);
}

/* fuzz_check_replies - out is nothing but well-formed reply lines */
static void
fuzz_check_replies(const char *p, size_t n)
{
	const char *eol;

	while (n > 0) {
		eol = memchr(p, '\n', n);
		ASSERT(eol != NULL && eol - p >= 5 && eol[-1] == '\r');
		ASSERT(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
		    p[1] <= '9' && p[2] >= '0' && p[2] <= '9');
		ASSERT(p[3] == ' ' || p[3] == '-');
		n -= (size_t)(eol + 1 - p);
		p = eol + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	struct lmtp_server_settings set;
	struct str *out;
	char buf[4096];
	ssize_t n;
	int sv[2];

	if (!inited) {
		log_init("lmtp_server_fuzz");
		(void)log_open_file("/dev/null");
		inited = true;
	}
	if (size < 1 || size > FUZZ_INPUT_MAX + 1)
		return 0;
	memset(&set, 0, sizeof(set));
	set.hostname = "fuzz.example";
	set.banner = "LMTP fuzz";
	set.timeout = 5;
	fuzz_size_limit = (data[0] & 0x03) == 0 ? 0 : 64u << (data[0] & 0x03);
	set.size_limit = fuzz_size_limit;
	set.data_line_max = data[0] & 0x04 ? 80 : 0;
	set.rcpt_max = data[0] & 0x08 ? 2 : 0;
	set.error_limit = data[0] & 0x10 ? 3 : 0;
	if (data[0] & 0x20) {
		set.rcpt_param = "XTOKEN";
		set.rcpt_param_max = 16;
		set.rcpt_param_xtext = (data[0] & 0x80) != 0;
	}
	fuzz_header_max = data[0] & 0x40 ? 100 : 0;
	set.header_max = fuzz_header_max;
	set.utf8_paths = (data[0] & 0x40) != 0;
	set.on_rcpt = fuzz_rcpt;
	set.on_data = fuzz_data;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	if (write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1)) {
		(void)close(sv[0]);
		(void)close(sv[1]);
		return 0;
	}
	(void)shutdown(sv[0], SHUT_WR);
	lmtp_server_run(sv[1], "fuzz", &set);
	(void)close(sv[1]);
	out = str_new(0, 0);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0)
		str_append(out, buf, (size_t)n);
	(void)close(sv[0]);
	fuzz_check_replies(str_c(out), str_len(out));
	str_free(&out);
	return 0;
}
