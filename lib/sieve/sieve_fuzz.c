/* SPDX-License-Identifier: MIT */
/*
 * sieve_fuzz - libFuzzer target: the Sieve parser, validator, binary
 * loader and interpreter on arbitrary scripts
 *
 * The input is a script; if it compiles, it is saved and loaded back as
 * a binary and run on a fixed message. A second pass treats the input as
 * a compiled binary, and a third as a notify method (the mailto URI
 * parser of enotify). Seeds: lib/sieve/fuzz-corpus/sieve_fuzz/ (scripts
 * taken from the differential corpus in tests/sieve).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "str.h"

#include "sieve/sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_msg[] =
    "From: a+b@example.org\r\nTo: c@example.net, d@example.com\r\n"
    "Subject: =?UTF-8?Q?h=C3=A9llo?= world\r\nX-Spam-Score: 5\r\n"
    "Date: Tue, 10 Dec 2019 12:34:56 +0100\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--b--\r\n";

static void
fuzz_run(const struct sieve_script *s)
{
	struct sieve_env env;
	struct sieve_result res;
	struct sieve_limits lim;

	sieve_limits_default(&lim);
	lim.max_match_steps = 200000;
	memset(&env, 0, sizeof(env));
	env.msg = fuzz_msg;
	env.msg_size = sizeof(fuzz_msg) - 1;
	env.env_from = "a@example.org";
	env.env_to = "c@example.net";
	env.now = 1600000000;
	env.spam_header = "X-Spam-Score";
	memset(&res, 0, sizeof(res));
	(void)sieve_run(s, &env, &lim, &res);
	sieve_result_clear(&res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sieve_errors errs = { 0 };
	struct sieve_limits lim;
	struct sieve_script *s, *s2 = NULL;
	const char *p = (const char *)data;
	const char *error;

	sieve_limits_default(&lim);
	lim.max_match_steps = 200000;
	s = sieve_compile("fuzz", p, size, &lim, NULL, &errs);
	sieve_errors_clear(&errs);
	if (s != NULL) {
		struct str *bin = str_new(1024, 0);

		fuzz_run(s);
		sieve_script_save(s, bin);
		if (sieve_script_load(str_c(bin), str_len(bin), p, size, &lim,
		    NULL, &s2, &error) == 0) {
			fuzz_run(s2);
			sieve_script_free(&s2);
		}
		str_free(&bin);
		sieve_script_free(&s);
	}
	if (sieve_script_load(p, size, "", 0, &lim, NULL, &s2, &error) == 0) {
		fuzz_run(s2);
		sieve_script_free(&s2);
	}
	{
		struct sieve_mailto m;

		if (sieve_mailto_parse(p, size, &m, &error) == 0)
			sieve_mailto_clear(&m);
	}
	return 0;
}
