/* SPDX-License-Identifier: MIT */
/*
 * pop3d_parse_test - unit tests for the POP3 command parser
 *
 * Every command with good and bad arguments, case, spacing, numbers at
 * and past their limits, NUL/CR in the line, and the SASL helpers.
 */
#include <string.h>

#include "macros.h"
#include "str.h"
#include "test.h"

#include "pop3d.h"

/* pop3d.c holds main and these; the test links the other objects */
struct pop3d_settings pop3d_settings;
void
pop3d_timeout_reply(struct login_conn *c)
{
	(void)c;
}

static const struct {
	const char *line;
	enum pop3_cmd_id id;	/* NONE = must fail */
	unsigned nargs;
	uint32_t n0, n1;
	const char *arg;
} cases[] = {
	{ "USER alice", POP3_CMD_USER, 1, 0, 0, "alice" },
	{ "user Alice@Example.ORG", POP3_CMD_USER, 1, 0, 0, "Alice@Example.ORG" },
	{ "USER alice ", POP3_CMD_USER, 1, 0, 0, "alice" },
	{ "USER", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "USER a b", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "USER  a", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "PASS secret with  spaces ", POP3_CMD_PASS, 1, 0, 0,
	    "secret with  spaces " },
	{ "PASS ", POP3_CMD_PASS, 1, 0, 0, "" },
	{ "PASS", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "APOP a 0123", POP3_CMD_APOP, 2, 0, 0, "a" },
	{ "APOP a", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "AUTH", POP3_CMD_AUTH, 0, 0, 0, NULL },
	{ "AUTH PLAIN", POP3_CMD_AUTH, 1, 0, 0, "PLAIN" },
	{ "AUTH PLAIN AGEAYg==", POP3_CMD_AUTH, 2, 0, 0, "PLAIN" },
	{ "AUTH PLAIN a b", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "STLS", POP3_CMD_STLS, 0, 0, 0, NULL },
	{ "STLS x", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "CAPA", POP3_CMD_CAPA, 0, 0, 0, NULL },
	{ "QUIT", POP3_CMD_QUIT, 0, 0, 0, NULL },
	{ "quit", POP3_CMD_QUIT, 0, 0, 0, NULL },
	{ "STAT", POP3_CMD_STAT, 0, 0, 0, NULL },
	{ "NOOP", POP3_CMD_NOOP, 0, 0, 0, NULL },
	{ "RSET", POP3_CMD_RSET, 0, 0, 0, NULL },
	{ "LIST", POP3_CMD_LIST, 0, 0, 0, NULL },
	{ "LIST 7", POP3_CMD_LIST, 1, 7, 0, NULL },
	{ "LIST 0", POP3_CMD_LIST, 1, 0, 0, NULL },
	{ "LIST 1 2", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "LIST x", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "UIDL 4294967295", POP3_CMD_UIDL, 1, 4294967295u, 0, NULL },
	{ "UIDL 4294967296", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR 1", POP3_CMD_RETR, 1, 1, 0, NULL },
	{ "RETR", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR +1", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR -1", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR 00000000001", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR 0000000001", POP3_CMD_RETR, 1, 1, 0, NULL },
	{ "RETR 1x", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "DELE 3", POP3_CMD_DELE, 1, 3, 0, NULL },
	{ "TOP 2 0", POP3_CMD_TOP, 2, 2, 0, NULL },
	{ "TOP 2 10", POP3_CMD_TOP, 2, 2, 10, NULL },
	{ "TOP 2", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "TOP 2 x", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "TOP 1 2 3", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ " STAT", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "ST", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "STATS", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "XTND XMIT", POP3_CMD_NONE, 0, 0, 0, NULL },
	{ "RETR 1\r", POP3_CMD_NONE, 0, 0, 0, NULL },
};

int
main(void)
{
	struct pop3_cmd cmd;
	struct str *s = str_new(0, 0), *big = str_new(0, 0);
	const char *a, *b, *c;
	size_t al, bl, cl, i;
	bool ok;

	test_begin("pop3_parse_command table");
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		ok = pop3_parse_command(cases[i].line, strlen(cases[i].line),
		    &cmd);
		if (!TEST_ASSERT(ok == (cases[i].id != POP3_CMD_NONE)))
			continue;
		TEST_ASSERT(cmd.id == cases[i].id);
		if (!ok) {
			TEST_ASSERT(cmd.error != NULL);
			continue;
		}
		TEST_ASSERT(cmd.nargs == cases[i].nargs);
		TEST_ASSERT(cmd.num[0] == cases[i].n0);
		TEST_ASSERT(cmd.num[1] == cases[i].n1);
		if (cases[i].arg != NULL) {
			str_set(s, cmd.arg, cmd.arg_len);
			TEST_ASSERT_STR(str_c(s), cases[i].arg);
		}
	}
	test_end();

	test_begin("pop3_parse_command NUL and limits");
	TEST_ASSERT(!pop3_parse_command("US\0ER a", 7, &cmd));
	TEST_ASSERT(!pop3_parse_command("USER a\0", 7, &cmd));
	str_set_cstr(big, "USER ");
	for (i = 0; i < POP3D_ARG_MAX; i++)
		str_append_c(big, 'u');
	TEST_ASSERT(pop3_parse_command(str_c(big), str_len(big), &cmd));
	str_append_c(big, 'u');
	TEST_ASSERT(!pop3_parse_command(str_c(big), str_len(big), &cmd));
	str_set_cstr(big, "AUTH PLAIN ");
	for (i = 0; i < 2000; i++)
		str_append_c(big, 'A');
	TEST_ASSERT(pop3_parse_command(str_c(big), str_len(big), &cmd) &&
	    cmd.arg2_len == 2000);
	TEST_ASSERT(strcmp(pop3_cmd_name(POP3_CMD_TOP), "TOP") == 0);
	TEST_ASSERT(strcmp(pop3_cmd_name(POP3_CMD_NONE), "?") == 0);
	test_end();

	test_begin("SASL PLAIN and base64");
	TEST_ASSERT(pop3_sasl_plain("z\0c\0p", 5, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(al == 1 && a[0] == 'z' && bl == 1 && b[0] == 'c' &&
	    cl == 1 && c[0] == 'p');
	TEST_ASSERT(pop3_sasl_plain("\0c\0", 3, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(al == 0 && bl == 1 && cl == 0);
	TEST_ASSERT(!pop3_sasl_plain("\0\0p", 3, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(!pop3_sasl_plain("c\0p", 3, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(!pop3_sasl_plain("a\0b\0c\0", 6, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(!pop3_sasl_plain("", 0, &a, &al, &b, &bl, &c, &cl));
	TEST_ASSERT(pop3_base64_strict("AGFsaWNlAHB3", 12, s) &&
	    str_len(s) == 9 && memcmp(str_c(s), "\0alice\0pw", 9) == 0);
	TEST_ASSERT(pop3_base64_strict("YQ==", 4, s) && str_equals_cstr(s, "a"));
	TEST_ASSERT(pop3_base64_strict("", 0, s) && str_len(s) == 0);
	TEST_ASSERT(!pop3_base64_strict("YQ=", 3, s));
	TEST_ASSERT(!pop3_base64_strict("Y=Q=", 4, s));
	TEST_ASSERT(!pop3_base64_strict("=YQ=", 4, s));
	TEST_ASSERT(!pop3_base64_strict("YQ =", 4, s));
	TEST_ASSERT(!pop3_base64_strict("Y!Q=", 4, s));
	test_end();

	str_free(&s);
	str_free(&big);
	return test_done();
}
