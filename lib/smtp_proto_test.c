/* SPDX-License-Identifier: MIT */
/* smtp_proto_test - unit tests for smtp_proto.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"
#include "str.h"
#include "test.h"

#define ALL SMTP_EXT_ALL
#define S SMTP_PROTO_STRICT

struct cmd_case {
	const char *line;
	unsigned ext;
	bool utf8;		/* mail_smtputf8 */
	unsigned flags;
	enum smtp_proto_error err;
	enum smtp_verb verb;
	const char *arg;	/* cmd->arg, or canonical address for MAIL/RCPT */
};

static const struct cmd_case cmd_cases[] = {
	/* HELO / EHLO / LHLO */
	{ "EHLO mail.example.com", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EHLO, "mail.example.com" },
	{ "ehlo Mail.Example.COM", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EHLO, "Mail.Example.COM" },
	{ "HELO x", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_HELO, "x" },
	{ "LHLO [192.0.2.1]", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_LHLO, "[192.0.2.1]" },
	{ "EHLO [IPv6:::1]", ALL, 0, S, SMTP_PROTO_OK, SMTP_VERB_EHLO, "[IPv6:::1]" },
	{ "EHLO", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_EHLO, NULL },
	{ "EHLO ", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_EHLO, NULL },
	{ "EHLO ", ALL, 0, S, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_EHLO, NULL },
	{ "EHLO a b", ALL, 0, 0, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLO [1.2.3.999]", ALL, 0, 0, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLO my_pc", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EHLO, "my_pc" },
	{ "EHLO my_pc", ALL, 0, S, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLO host.example.", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EHLO, "host.example." },
	{ "EHLO host.example.", ALL, 0, S, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLO  x.y  ", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EHLO, "x.y" },
	{ "EHLO x.y ", ALL, 0, S, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLO -x", ALL, 0, 0, SMTP_PROTO_ERR_HELO_DOMAIN, SMTP_VERB_EHLO, NULL },
	{ "EHLOx", ALL, 0, 0, SMTP_PROTO_ERR_UNKNOWN_VERB, SMTP_VERB_NONE, NULL },
	/* MAIL */
	{ "MAIL FROM:<a@b.c>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b.c" },
	{ "mail from:<A@B.C>", ALL, 0, S, SMTP_PROTO_OK, SMTP_VERB_MAIL, "A@b.c" },
	{ "MAIL FROM:<>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "" },
	{ "MAIL FROM: <a@b>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM: <a@b>", ALL, 0, S, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:a@b", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:a@b SIZE=10", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:a@b", ALL, 0, S, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b", ALL, 0, 0, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<\"a b>\"@c>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "\"a b>\"@c" },
	{ "MAIL FROM:<\"a\\\"> b\"@c> SIZE=1", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "\"a\\\"> b\"@c" },
	{ "MAIL FROM:<@r1,@r2:a@b>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM: ", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_MAIL, NULL },
	{ "MAIL", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_MAIL, NULL },
	{ "MAIL TO:<a@b>", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM<a@b>", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL  FROM:<a@b>", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b>x", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@-b>", ALL, 0, 0, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<postmaster>", ALL, 0, 0, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<j\xc3\xb6rg@b>", ALL, 0, 0, SMTP_PROTO_ERR_NEED_SMTPUTF8, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<j\xc3\xb6rg@b>", ALL, 0, SMTP_PROTO_UTF8_PATHS, SMTP_PROTO_OK, SMTP_VERB_MAIL, "j\xc3\xb6rg@b" },
	{ "MAIL FROM:<\xc3@b>", ALL, 0, SMTP_PROTO_UTF8_PATHS, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<j\xc3\xb6rg@b> SMTPUTF8", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "j\xc3\xb6rg@b" },
	{ "MAIL FROM:<j\xc3\xb6rg@b> SMTPUTF8", ALL & ~SMTP_EXT_SMTPUTF8, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<\xc3@b> SMTPUTF8", ALL, 0, 0, SMTP_PROTO_ERR_SENDER, SMTP_VERB_MAIL, NULL },
	/* MAIL parameters */
	{ "MAIL FROM:<a@b> SIZE=12345", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> size=0", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> SIZE=18446744073709551615", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> SIZE=18446744073709551616", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=-1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1k", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1=2", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1 SIZE=2", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_DUPLICATE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1 size=1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_DUPLICATE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1", 0, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> BODY=7BIT", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> BODY=8bitmime", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", SMTP_EXT_BINARYMIME, 0, 0, SMTP_PROTO_ERR_PARAM_CONFLICT, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> BODY=BINARYMIME", SMTP_EXT_8BITMIME, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> BODY=8BITMIME", SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> BODY=9BIT", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> BODY=8BITMIME", 0, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SMTPUTF8=yes", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> RET=FULL", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> RET=hdrs", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> RET=ALL", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> RET=FULL", ALL & ~SMTP_EXT_DSN, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> ENVID=QQ314159+2B", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> ENVID=a+2", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> ENVID=a+2b", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> ENVID=a+00", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> AUTH=<>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> AUTH=e+3Dmc2@example.com", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b> AUTH=<>", ALL & ~SMTP_EXT_AUTH, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> AUTH=+0D", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> X-FOO=bar", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> NOTIFY=NEVER", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> -X=1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> X_Y=1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> =1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b>  SIZE=1  BODY=8BITMIME  ", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_MAIL, "a@b" },
	{ "MAIL FROM:<a@b>  SIZE=1", ALL, 0, S, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1 ", ALL, 0, S, SMTP_PROTO_ERR_PARAM_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ "MAIL FROM:<a@b> SIZE=1\tBODY=7BIT", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_MAIL, NULL },
	/* RCPT */
	{ "RCPT TO:<a@b>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "a@b" },
	{ "RCPT TO:<Postmaster>", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "Postmaster" },
	{ "RCPT TO:<>", ALL, 0, 0, SMTP_PROTO_ERR_RECIPIENT, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<user>", ALL, 0, 0, SMTP_PROTO_ERR_RECIPIENT, SMTP_VERB_RCPT, NULL },
	{ "RCPT FROM:<a@b>", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<j\xc3\xb6rg@b>", ALL, 0, 0, SMTP_PROTO_ERR_NEED_SMTPUTF8, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<j\xc3\xb6rg@b>", ALL, 1, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "j\xc3\xb6rg@b" },
	{ "RCPT TO:<j\xc3\xb6rg@b>", ALL, 0, SMTP_PROTO_UTF8_PATHS, SMTP_PROTO_OK, SMTP_VERB_RCPT, "j\xc3\xb6rg@b" },
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "a@b" },
	{ "RCPT TO:<a@b> NOTIFY=never", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "a@b" },
	{ "RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> NOTIFY=SUCCESS,", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> NOTIFY=,SUCCESS", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> NOTIFY=SOMETIMES", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_DUPLICATE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a+2Bb@c", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RCPT, "a@b" },
	{ "RCPT TO:<a@b> ORCPT=rfc822", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=;a@b", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rf.c;a@b", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a+ZZ", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_VALUE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_DUPLICATE, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> ORCPT=rfc822;a@b", ALL & ~SMTP_EXT_DSN, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_RCPT, NULL },
	{ "RCPT TO:<a@b> SIZE=1", ALL, 0, 0, SMTP_PROTO_ERR_PARAM_UNKNOWN, SMTP_VERB_RCPT, NULL },
	/* no-argument verbs */
	{ "DATA", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_DATA, "" },
	{ "data", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_DATA, "" },
	{ "DATA ", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_DATA, "" },
	{ "DATA ", ALL, 0, S, SMTP_PROTO_ERR_ARG_UNEXPECTED, SMTP_VERB_DATA, NULL },
	{ "DATA x", ALL, 0, 0, SMTP_PROTO_ERR_ARG_UNEXPECTED, SMTP_VERB_DATA, NULL },
	{ "RSET", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_RSET, "" },
	{ "RSET x", ALL, 0, 0, SMTP_PROTO_ERR_ARG_UNEXPECTED, SMTP_VERB_RSET, NULL },
	{ "QUIT", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_QUIT, "" },
	{ "QUIT now", ALL, 0, 0, SMTP_PROTO_ERR_ARG_UNEXPECTED, SMTP_VERB_QUIT, NULL },
	{ "STARTTLS", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_STARTTLS, "" },
	{ "STARTTLS x", ALL, 0, 0, SMTP_PROTO_ERR_ARG_UNEXPECTED, SMTP_VERB_STARTTLS, NULL },
	/* free text verbs */
	{ "NOOP", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_NOOP, "" },
	{ "NOOP hello\tworld ", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_NOOP, "hello\tworld " },
	{ "HELP", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_HELP, "" },
	{ "HELP MAIL", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_HELP, "MAIL" },
	{ "VRFY user", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_VRFY, "user" },
	{ "VRFY Joe Smith", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_VRFY, "Joe Smith" },
	{ "VRFY", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_VRFY, NULL },
	{ "VRFY ", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_VRFY, NULL },
	{ "EXPN list", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_EXPN, "list" },
	{ "EXPN", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_EXPN, NULL },
	/* BDAT */
	{ "BDAT 1000", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_BDAT, "" },
	{ "BDAT 0 LAST", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_BDAT, "" },
	{ "bdat 12 last", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_BDAT, "" },
	{ "BDAT", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_BDAT, NULL },
	{ "BDAT x", ALL, 0, 0, SMTP_PROTO_ERR_BDAT_SIZE, SMTP_VERB_BDAT, NULL },
	{ "BDAT -1", ALL, 0, 0, SMTP_PROTO_ERR_BDAT_SIZE, SMTP_VERB_BDAT, NULL },
	{ "BDAT 99999999999999999999", ALL, 0, 0, SMTP_PROTO_ERR_BDAT_SIZE, SMTP_VERB_BDAT, NULL },
	{ "BDAT 10 FIRST", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_BDAT, NULL },
	{ "BDAT 10 LAST x", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_BDAT, NULL },
	/* AUTH */
	{ "AUTH PLAIN", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_AUTH, "PLAIN" },
	{ "AUTH plain AGZvbwBiYXI=", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_AUTH, "PLAIN" },
	{ "AUTH PLAIN =", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_AUTH, "PLAIN" },
	{ "AUTH DIGEST-MD5", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_AUTH, "DIGEST-MD5" },
	{ "AUTH GSS_API", ALL, 0, 0, SMTP_PROTO_OK, SMTP_VERB_AUTH, "GSS_API" },
	{ "AUTH", ALL, 0, 0, SMTP_PROTO_ERR_ARG_MISSING, SMTP_VERB_AUTH, NULL },
	{ "AUTH PL@IN", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH ABCDEFGHIJKLMNOPQRSTU", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH PLAIN AGZvbwBiYXI", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH PLAIN AG=vbwBiYXI=", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH PLAIN a===", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH PLAIN AGZv bwBi", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	{ "AUTH PLAIN ==", ALL, 0, 0, SMTP_PROTO_ERR_SYNTAX, SMTP_VERB_AUTH, NULL },
	/* bad lines */
	{ "", ALL, 0, 0, SMTP_PROTO_ERR_EMPTY, SMTP_VERB_NONE, NULL },
	{ "FOO", ALL, 0, 0, SMTP_PROTO_ERR_UNKNOWN_VERB, SMTP_VERB_NONE, NULL },
	{ " MAIL FROM:<a@b>", ALL, 0, 0, SMTP_PROTO_ERR_UNKNOWN_VERB, SMTP_VERB_NONE, NULL },
	{ "GET / HTTP/1.0", ALL, 0, 0, SMTP_PROTO_ERR_UNKNOWN_VERB, SMTP_VERB_NONE, NULL },
	{ "DATA\r", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_NONE, NULL },
	{ "NOOP \r", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_NOOP, NULL },
	{ "NOOP \x7f", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_NOOP, NULL },
	{ "EHLO a\tb", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_EHLO, NULL },
	{ "MAIL FROM:<a\nb@c>", ALL, 0, 0, SMTP_PROTO_ERR_BAD_CHAR, SMTP_VERB_MAIL, NULL },
};

static void
test_table(void)
{
	struct smtp_cmd *cmd = smtp_cmd_new();
	struct str *canon = str_new(0, 0);
	size_t i;

	test_begin("command table");
	for (i = 0; i < N_ELEMENTS(cmd_cases); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		enum smtp_proto_error err;

		err = smtp_cmd_parse(cmd, c->line, strlen(c->line), c->ext,
		    c->utf8, c->flags);
		if (err != c->err || cmd->verb != c->verb) {
			printf("# case %zu [%s]: got %d (%s) verb %d, want %d verb %d\n",
			    i, c->line, err, smtp_proto_error_str(err),
			    cmd->verb, c->err, c->verb);
			TEST_ASSERT(err == c->err && cmd->verb == c->verb);
			continue;
		}
		if (err != SMTP_PROTO_OK || c->arg == NULL)
			continue;
		if (c->verb == SMTP_VERB_MAIL || c->verb == SMTP_VERB_RCPT) {
			str_clear(canon);
			address_canonical(cmd->addr, canon);
			TEST_ASSERT_STR(str_c(canon), c->arg);
		} else
			TEST_ASSERT_STR(str_c(cmd->arg), c->arg);
	}
	str_free(&canon);
	smtp_cmd_free(&cmd);
	smtp_cmd_free(&cmd);
	test_end();
}

static void
test_values(void)
{
	struct smtp_cmd *cmd = smtp_cmd_new();
	const char *l;

	test_begin("parameter values are decoded and reset between commands");
	l = "MAIL FROM:<a@b> SIZE=12345 BODY=BINARYMIME SMTPUTF8 RET=HDRS "
	    "ENVID=QQ314159+2B AUTH=e+3Dmc2@example.com";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->mail.size_set && cmd->mail.size == 12345);
	TEST_ASSERT(cmd->mail.body == SMTP_BODY_BINARYMIME);
	TEST_ASSERT(cmd->mail.smtputf8);
	TEST_ASSERT(cmd->mail.ret == SMTP_RET_HDRS);
	TEST_ASSERT(cmd->mail.envid_set);
	TEST_ASSERT_STR(str_c(cmd->mail.envid), "QQ314159+");
	TEST_ASSERT(cmd->mail.auth_set);
	TEST_ASSERT_STR(str_c(cmd->mail.auth), "e=mc2@example.com");

	l = "MAIL FROM:<>";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->addr->null);
	TEST_ASSERT(!cmd->mail.size_set && cmd->mail.body == SMTP_BODY_NONE &&
	    !cmd->mail.smtputf8 && cmd->mail.ret == SMTP_RET_NONE &&
	    !cmd->mail.envid_set && str_len(cmd->mail.envid) == 0 &&
	    !cmd->mail.auth_set && str_len(cmd->mail.auth) == 0);

	l = "RCPT TO:<x@y> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Joe+20Smith+40x";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->rcpt.notify == (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY));
	TEST_ASSERT(cmd->rcpt.orcpt_set);
	TEST_ASSERT_STR(str_c(cmd->rcpt.orcpt_type), "rfc822");
	TEST_ASSERT_STR(str_c(cmd->rcpt.orcpt), "Joe Smith@x");
	l = "RCPT TO:<x@y> NOTIFY=NEVER";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->rcpt.notify == SMTP_NOTIFY_NEVER && !cmd->rcpt.orcpt_set);
	TEST_ASSERT(str_len(cmd->rcpt.orcpt) == 0);

	l = "BDAT 4096 LAST";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->bdat_size == 4096 && cmd->bdat_last);
	l = "BDAT 18446744073709551615";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(cmd->bdat_size == UINT64_MAX && !cmd->bdat_last);

	l = "AUTH plain AGZvbwBiYXI=";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT_STR(str_c(cmd->arg), "PLAIN");
	TEST_ASSERT(cmd->arg2_set);
	TEST_ASSERT_STR(str_c(cmd->arg2), "AGZvbwBiYXI=");
	l = "AUTH LOGIN";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	TEST_ASSERT(!cmd->arg2_set && str_len(cmd->arg2) == 0);

	/* ENVID limits: 100 encoded characters */
	{
		struct str *s = str_new(0, 0);
		int i;

		str_append_cstr(s, "MAIL FROM:<a@b> ENVID=");
		for (i = 0; i < 100; i++)
			str_append_c(s, 'e');
		TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL,
		    false, 0) == SMTP_PROTO_OK);
		TEST_ASSERT(str_len(cmd->mail.envid) == 100);
		str_append_c(s, 'e');
		TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL,
		    false, 0) == SMTP_PROTO_ERR_PARAM_VALUE);
		TEST_ASSERT(cmd->bad_param != NULL &&
		    strcmp(cmd->bad_param, "ENVID") == 0);
		str_free(&s);
	}
	/* error details for the daemon's log */
	l = "MAIL FROM:<a@b> SIZE=1 SIZE=2";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_ERR_PARAM_DUPLICATE);
	TEST_ASSERT_STR(cmd->bad_param, "SIZE");
	l = "MAIL FROM:<a@b> XYZ=2";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_ERR_PARAM_UNKNOWN);
	TEST_ASSERT(cmd->bad_param == NULL);
	l = "RCPT TO:<a@-b>";
	TEST_ASSERT(smtp_cmd_parse(cmd, l, strlen(l), ALL, false, 0) ==
	    SMTP_PROTO_ERR_RECIPIENT);
	TEST_ASSERT(cmd->addr_error == ADDRESS_ERR_DOMAIN);
	smtp_cmd_free(&cmd);
	test_end();
}

static void
test_limits(void)
{
	struct smtp_cmd *cmd = smtp_cmd_new();
	struct str *s = str_new(0, 0);
	int i;

	test_begin("line and path limits, NUL");
	str_append_cstr(s, "NOOP ");
	while (str_len(s) < SMTP_PROTO_LINE_MAX)
		str_append_c(s, 'x');
	TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL, false, 0) ==
	    SMTP_PROTO_OK);
	str_append_c(s, 'x');
	TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL, false, 0) ==
	    SMTP_PROTO_ERR_LINE_TOO_LONG);
	str_clear(s);
	str_append_cstr(s, "MAIL FROM:<");
	for (i = 0; i < 300; i++)
		str_append_c(s, 'a');
	str_append_cstr(s, "@b>");
	TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL, false, 0) ==
	    SMTP_PROTO_ERR_PATH_TOO_LONG);
	str_truncate(s, str_len(s) - 1);	/* no closing '>' */
	TEST_ASSERT(smtp_cmd_parse(cmd, str_c(s), str_len(s), ALL, false, 0) ==
	    SMTP_PROTO_ERR_PATH_TOO_LONG);
	TEST_ASSERT(smtp_cmd_parse(cmd, "NOOP \0x", 7, ALL, false, 0) ==
	    SMTP_PROTO_ERR_BAD_CHAR);
	TEST_ASSERT(smtp_cmd_parse(cmd, "RCPT TO:<a\0@b>", 14, ALL, false, 0) ==
	    SMTP_PROTO_ERR_BAD_CHAR);
	/* not NUL-terminated: only len octets count */
	TEST_ASSERT(smtp_cmd_parse(cmd, "QUITXXX", 4, ALL, false, 0) ==
	    SMTP_PROTO_OK && cmd->verb == SMTP_VERB_QUIT);
	str_free(&s);
	smtp_cmd_free(&cmd);
	test_end();
}

static void
test_error_reply(void)
{
	static const struct {
		enum smtp_proto_error err;
		int code;
		const char *enh;
	} map[] = {
		{ SMTP_PROTO_OK, 250, "2.0.0" },
		{ SMTP_PROTO_ERR_EMPTY, 500, "5.5.2" },
		{ SMTP_PROTO_ERR_BAD_CHAR, 500, "5.5.2" },
		{ SMTP_PROTO_ERR_LINE_TOO_LONG, 500, "5.5.6" },
		{ SMTP_PROTO_ERR_UNKNOWN_VERB, 500, "5.5.2" },
		{ SMTP_PROTO_ERR_SYNTAX, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_ARG_MISSING, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_ARG_UNEXPECTED, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_HELO_DOMAIN, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_SENDER, 501, "5.1.7" },
		{ SMTP_PROTO_ERR_RECIPIENT, 501, "5.1.3" },
		{ SMTP_PROTO_ERR_PATH_TOO_LONG, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_NEED_SMTPUTF8, 553, "5.6.7" },
		{ SMTP_PROTO_ERR_PARAM_SYNTAX, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_PARAM_UNKNOWN, 555, "5.5.4" },
		{ SMTP_PROTO_ERR_PARAM_DUPLICATE, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_PARAM_VALUE, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_PARAM_CONFLICT, 501, "5.5.4" },
		{ SMTP_PROTO_ERR_BDAT_SIZE, 501, "5.5.4" },
	};
	size_t i;

	test_begin("error to reply code mapping");
	for (i = 0; i < N_ELEMENTS(map); i++) {
		int code;
		const char *enh;

		smtp_proto_error_reply(map[i].err, &code, &enh);
		TEST_ASSERT(code == map[i].code);
		TEST_ASSERT_STR(enh, map[i].enh);
		TEST_ASSERT(strcmp(smtp_proto_error_str(map[i].err),
		    "unknown error") != 0);
	}
	TEST_ASSERT(strcmp(smtp_proto_error_str((enum smtp_proto_error)999),
	    "unknown error") == 0);
	TEST_ASSERT_STR(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	TEST_ASSERT_STR(smtp_verb_name((enum smtp_verb)999), "");
	test_end();
}

static void
test_xtext(void)
{
	struct str *out = str_new(0, 0), *small = str_new(0, 3);
	unsigned char all[256];
	int i;

	test_begin("xtext encode/decode");
	TEST_ASSERT(smtp_proto_xtext_decode("a+2Bb+3D", 8, out) == 0);
	TEST_ASSERT_STR(str_c(out), "a+b=");
	str_clear(out);
	TEST_ASSERT(smtp_proto_xtext_decode("", 0, out) == 0 && str_len(out) == 0);
	TEST_ASSERT(smtp_proto_xtext_decode("+", 1, out) == -1 && errno == EINVAL);
	TEST_ASSERT(smtp_proto_xtext_decode("+2", 2, out) == -1);
	TEST_ASSERT(smtp_proto_xtext_decode("+2b", 3, out) == -1);
	TEST_ASSERT(smtp_proto_xtext_decode("+G0", 3, out) == -1);
	TEST_ASSERT(smtp_proto_xtext_decode("a=b", 3, out) == -1);
	TEST_ASSERT(smtp_proto_xtext_decode("a b", 3, out) == -1);
	TEST_ASSERT(smtp_proto_xtext_decode("a\x80", 2, out) == -1);
	TEST_ASSERT(str_len(out) == 0);
	TEST_ASSERT(smtp_proto_xtext_decode("abcd", 4, small) == -1 &&
	    errno == E2BIG && str_len(small) == 0);
	TEST_ASSERT(smtp_proto_xtext_encode("a+b= \x01\xff", 7, out) == 0);
	TEST_ASSERT_STR(str_c(out), "a+2Bb+3D+20+01+FF");
	TEST_ASSERT(smtp_proto_xtext_encode("abcd", 4, small) == -1 &&
	    str_len(small) == 0);
	/* every octet round-trips */
	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	str_clear(out);
	TEST_ASSERT(smtp_proto_xtext_encode((const char *)all, 256, out) == 0);
	{
		struct str *back = str_new(0, 0);

		TEST_ASSERT(smtp_proto_xtext_decode(str_c(out), str_len(out),
		    back) == 0);
		TEST_ASSERT(str_len(back) == 256 &&
		    memcmp(str_c(back), all, 256) == 0);
		str_free(&back);
	}
	str_free(&out);
	str_free(&small);
	test_end();
}

static void
test_helo_ok(void)
{
	test_begin("smtp_proto_helo_ok");
	TEST_ASSERT(smtp_proto_helo_ok("a.b", 3, false));
	TEST_ASSERT(smtp_proto_helo_ok("[10.0.0.1]", 10, false));
	TEST_ASSERT(!smtp_proto_helo_ok("", 0, false));
	TEST_ASSERT(!smtp_proto_helo_ok("a b", 3, false));
	TEST_ASSERT(!smtp_proto_helo_ok("b\xc3\xbc.de", 5, false));
	TEST_ASSERT(smtp_proto_helo_ok("b\xc3\xbc.de", 5, true));
	test_end();
}

/* feed - add lines to a reply; returns the last result */
static enum smtp_reply_result
feed(struct smtp_reply *r, const char *const *lines, const char **error)
{
	enum smtp_reply_result res = SMTP_REPLY_ERROR;

	smtp_reply_clear(r);
	for (; *lines != NULL; lines++) {
		res = smtp_reply_add_line(r, *lines, strlen(*lines), error);
		if (res != SMTP_REPLY_MORE)
			break;
	}
	return res;
}

static void
test_reply(void)
{
	struct smtp_reply *r = smtp_reply_new();
	const char *error;
	uint64_t size;
	static const char *const ehlo[] = {
		"250-mx.example.com Hello", "250-PIPELINING", "250-SIZE 10240000",
		"250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-STARTTLS",
		"250-AUTH PLAIN LOGIN", "250-DSN", "250-SMTPUTF8",
		"250-chunking", "250-BINARYMIME", "250 X-UNKNOWN", NULL,
	};
	static const char *const one[] = { "250 2.1.0 Ok", NULL };
	static const char *const bare[] = { "354", NULL };
	static const char *const multi[] = {
		"550-5.1.1 The email account that you tried to reach does",
		"550-5.1.1 not exist.", "550 5.1.1 https://support", NULL,
	};
	static const char *const noenh[] = { "421 mx closing", NULL };
	static const char *const wrongcls[] = { "550 4.1.1 odd", NULL };
	static const char *const changed[] = { "250-a", "251 b", NULL };
	static const char *const badsep[] = { "250xa", NULL };
	static const char *const badcode[] = { "25", NULL };
	static const char *const badcode2[] = { "650 x", NULL };
	static const char *const badcode3[] = { "2a0 x", NULL };
	static const char *const badcode4[] = { "260 x", NULL };
	static const char *const notenh[] = { "250 2.1.0x", NULL };

	test_begin("reply parser");
	TEST_ASSERT(feed(r, ehlo, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->code == 250 && r->nlines == 12 && r->enhanced[0] == '\0');
	TEST_ASSERT_STR(str_c(r->lines[0]), "mx.example.com Hello");
	TEST_ASSERT(smtp_reply_ehlo(r, &size) == (SMTP_EXT_PIPELINING |
	    SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_ENHANCEDSTATUSCODES |
	    SMTP_EXT_STARTTLS | SMTP_EXT_AUTH | SMTP_EXT_DSN |
	    SMTP_EXT_SMTPUTF8 | SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME));
	TEST_ASSERT(size == 10240000);

	TEST_ASSERT(feed(r, one, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->code == 250 && r->nlines == 1);
	TEST_ASSERT_STR(r->enhanced, "2.1.0");
	TEST_ASSERT_STR(str_c(r->lines[0]), "Ok");
	TEST_ASSERT(smtp_reply_ehlo(r, &size) == 0 && size == 0);

	TEST_ASSERT(feed(r, bare, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->code == 354 && str_len(r->lines[0]) == 0);

	TEST_ASSERT(feed(r, multi, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->code == 550 && r->nlines == 3);
	TEST_ASSERT_STR(r->enhanced, "5.1.1");
	TEST_ASSERT_STR(str_c(r->lines[1]), "not exist.");

	TEST_ASSERT(feed(r, noenh, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->enhanced[0] == '\0');
	TEST_ASSERT_STR(str_c(r->lines[0]), "mx closing");
	TEST_ASSERT(feed(r, wrongcls, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->enhanced[0] == '\0');
	TEST_ASSERT(feed(r, notenh, &error) == SMTP_REPLY_DONE);
	TEST_ASSERT(r->enhanced[0] == '\0');

	TEST_ASSERT(feed(r, changed, &error) == SMTP_REPLY_ERROR);
	TEST_ASSERT(feed(r, badsep, &error) == SMTP_REPLY_ERROR);
	TEST_ASSERT(feed(r, badcode, &error) == SMTP_REPLY_ERROR);
	TEST_ASSERT(feed(r, badcode2, &error) == SMTP_REPLY_ERROR);
	TEST_ASSERT(feed(r, badcode3, &error) == SMTP_REPLY_ERROR);
	TEST_ASSERT(feed(r, badcode4, &error) == SMTP_REPLY_ERROR);
	smtp_reply_clear(r);
	TEST_ASSERT(smtp_reply_add_line(r, "250 a\0b", 7, &error) ==
	    SMTP_REPLY_ERROR);
	/* too many lines */
	smtp_reply_clear(r);
	{
		enum smtp_reply_result res = SMTP_REPLY_MORE;
		int i;

		for (i = 0; i < SMTP_REPLY_LINES_MAX + 5 &&
		    res == SMTP_REPLY_MORE; i++)
			res = smtp_reply_add_line(r, "250-x", 5, &error);
		TEST_ASSERT(res == SMTP_REPLY_ERROR &&
		    r->nlines == SMTP_REPLY_LINES_MAX);
	}
	smtp_reply_free(&r);
	smtp_reply_free(&r);
	test_end();
}

int
main(void)
{
	test_table();
	test_values();
	test_limits();
	test_error_reply();
	test_xtext();
	test_helo_ok();
	test_reply();
	return test_done();
}
