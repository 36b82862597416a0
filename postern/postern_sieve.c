/* SPDX-License-Identifier: MIT */
/*
 * postern_sieve - try Sieve scripts from the command line
 *
 * DESCRIPTION
 *	postern sieve test SCRIPT MESSAGE [options]
 *		run SCRIPT on the message file and print the actions it
 *		would take, one a line, in the stable format of
 *		sieve_result_format() (postern-sieve(8)); nothing is
 *		delivered or sent. Like Pigeonhole's sieve-test.
 *		--save DIR writes each message a keep, fileinto or the
 *		implicit keep would store, with the header as editheader
 *		left it, to DIR/MAILBOX.eml ('/' in the name becomes '_').
 *	postern sieve check SCRIPT...
 *		compile each script and print its errors and warnings as
 *		"SCRIPT:LINE:COLUMN: error: text"; exit 1 if any has errors.
 *	postern sieve compile SCRIPT... [--dump]
 *		compile each script into SCRIPT.svbin (the cache lmtpd
 *		uses); --dump prints the compiled tree.
 *
 *	Included scripts are read from --personal-dir (default: the
 *	directory of SCRIPT) and --global-dir. The engine itself does no
 *	I/O (lib/sieve); this file reads the files and formats output.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "header.h"
#include "safe_file.h"
#include "sieve/sieve.h"
#include "str.h"

#include "postern.h"

int postern_cmd_sieve(int argc, char **argv);

#define SIEVE_CLI_MAX_MESSAGE (256 * 1024 * 1024)

enum {
	OPT_FROM = 1000, OPT_TO, OPT_ORIG_TO, OPT_USER, OPT_AUTH,
	OPT_PERSONAL, OPT_GLOBAL, OPT_NOW, OPT_DUMP, OPT_CACHE, OPT_ZONE,
	OPT_SPAM_HEADER, OPT_SPAM_MAX, OPT_VIRUS_HEADER, OPT_DELIM,
	OPT_REPEAT, OPT_SAVE,
};

static const struct option sieve_opts[] = {
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "orig-to", required_argument, NULL, OPT_ORIG_TO },
	{ "user", required_argument, NULL, OPT_USER },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "personal-dir", required_argument, NULL, OPT_PERSONAL },
	{ "global-dir", required_argument, NULL, OPT_GLOBAL },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "zone", required_argument, NULL, OPT_ZONE },
	{ "spam-header", required_argument, NULL, OPT_SPAM_HEADER },
	{ "spam-max", required_argument, NULL, OPT_SPAM_MAX },
	{ "virus-header", required_argument, NULL, OPT_VIRUS_HEADER },
	{ "delimiter", required_argument, NULL, OPT_DELIM },
	{ "repeat", required_argument, NULL, OPT_REPEAT },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "cache", no_argument, NULL, OPT_CACHE },
	{ "dump", no_argument, NULL, OPT_DUMP },
	{ NULL, 0, NULL, 0 },
};

struct sieve_cli {
	struct sieve_env env;
	struct sieve_dir_loader dl;
	struct sieve_loader loader;
	char *personal_alloc;
	bool dump, cache;
	unsigned long repeat;
	const char *save_dir;
};

static void
print_errors(const struct sieve_errors *errs)
{
	struct str *out = str_new(256, 0);

	sieve_errors_format(errs, out);
	fflush(stdout);
	fputs(str_c(out), stderr);
	str_free(&out);
}

static int
parse_opts(int argc, char **argv, struct sieve_cli *cli, const char *verb)
{
	int c;

	memset(cli, 0, sizeof(*cli));
	cli->env.zone_minutes = INT32_MIN;
	cli->env.location = "MDA";
	cli->env.phase = "during";
	cli->repeat = 1;
	optind = 0;	/* 0: a full GNU getopt reset (permuting) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", sieve_opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case OPT_FROM: cli->env.env_from = optarg; break;
		case OPT_TO: cli->env.env_to = optarg; break;
		case OPT_ORIG_TO: cli->env.env_orig_to = optarg; break;
		case OPT_USER: cli->env.user = optarg; break;
		case OPT_AUTH: cli->env.env_auth = optarg; break;
		case OPT_PERSONAL: cli->dl.personal_dir = optarg; break;
		case OPT_GLOBAL: cli->dl.global_dir = optarg; break;
		case OPT_SPAM_HEADER: cli->env.spam_header = optarg; break;
		case OPT_VIRUS_HEADER: cli->env.virus_header = optarg; break;
		case OPT_DELIM: cli->env.delimiters = optarg; break;
		case OPT_DUMP: cli->dump = true; break;
		case OPT_CACHE: cli->cache = true; break;
		case OPT_SAVE: cli->save_dir = optarg; break;
		case OPT_SPAM_MAX:
			errno = 0;
			cli->env.spam_max = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || cli->env.spam_max <= 0)
				return postern_usage_error("sieve",
				    "bad --spam-max %s", optarg);
			break;
		case OPT_NOW: {
			unsigned long v;

			if (!str_to_ulong(optarg, strlen(optarg), LONG_MAX, &v))
				return postern_usage_error("sieve",
				    "bad --now %s (seconds since 1970)", optarg);
			cli->env.now = (time_t)v;
			break;
		}
		case OPT_REPEAT:
			if (!str_to_ulong(optarg, strlen(optarg), 100000000,
			    &cli->repeat) || cli->repeat == 0)
				return postern_usage_error("sieve",
				    "bad --repeat %s", optarg);
			break;
		case OPT_ZONE: {
			const char *z = optarg;

			if (strlen(z) != 5 || (z[0] != '+' && z[0] != '-') ||
			    strspn(z + 1, "0123456789") != 4)
				return postern_usage_error("sieve",
				    "bad --zone %s (+HHMM)", z);
			cli->env.zone_minutes = (z[0] == '-' ? -1 : 1) *
			    (((z[1] - '0') * 10 + (z[2] - '0')) * 60 +
			    (z[3] - '0') * 10 + (z[4] - '0'));
			break;
		}
		default:
			return postern_usage_error("sieve", "sieve %s: unknown "
			    "option %s", verb, argv[optind - 1]);
		}
	}
	return -1;
}

static void
cli_loader(struct sieve_cli *cli, const char *script)
{
	if (cli->dl.personal_dir == NULL) {
		char *copy = xstrdup(script);

		cli->personal_alloc = xstrdup(dirname(copy));
		free(copy);
		cli->dl.personal_dir = cli->personal_alloc;
	}
	sieve_dir_loader_init(&cli->dl, &cli->loader);
}

static void
cli_free(struct sieve_cli *cli)
{
	sieve_dir_loader_deinit(&cli->dl);
	free(cli->personal_alloc);
}

static struct sieve_script *
cli_compile(struct sieve_cli *cli, const char *path, bool report)
{
	struct sieve_errors errs = { 0 };
	struct sieve_script *s;
	struct str *src;

	if (cli->cache) {
		s = sieve_cache_open(path, NULL, &cli->loader, &errs, NULL);
	} else {
		struct sieve_limits lim;

		sieve_limits_default(&lim);
		src = str_new(4096, 0);
		if (read_file(path, src, lim.max_script_size) < 0) {
			postern_error("cannot read %s: %s", path,
			    errno == E2BIG ? "too large" : strerror(errno));
			str_free(&src);
			return NULL;
		}
		s = sieve_compile(path, str_c(src), str_len(src), &lim,
		    &cli->loader, &errs);
		str_free(&src);
	}
	if (report || s == NULL)
		print_errors(&errs);
	sieve_errors_clear(&errs);
	return s;
}

/* save_one - DIR/MAILBOX.eml: header (or the message's own) + body */
static int
save_one(const char *dir, const char *mailbox, const struct str *header,
    const struct str *msg)
{
	struct str *path = str_new(256, 0), *data = str_new(0, 0);
	size_t hlen = header_block_size(str_c(msg), str_len(msg)), i;
	int rc = 0;

	str_printf(path, "%s/", dir);
	for (i = 0; mailbox[i] != '\0'; i++)
		str_append_c(path, mailbox[i] == '/' ? '_' : mailbox[i]);
	str_append_cstr(path, ".eml");
	if (header != NULL) {
		str_append_str(data, header);
		str_append(data, str_c(msg) + hlen, str_len(msg) - hlen);
	} else
		str_append_str(data, msg);
	if (safe_file_replace(str_c(path), str_c(data), str_len(data),
	    0644) < 0) {
		postern_error("cannot write %s: %s", str_c(path),
		    strerror(errno));
		rc = -1;
	}
	str_free(&path);
	str_free(&data);
	return rc;
}

static int
sieve_cmd_test(int argc, char **argv)
{
	struct sieve_cli cli;
	struct sieve_script *s;
	struct sieve_result res;
	struct str *msg, *out;
	char host[256];
	unsigned long i;
	int rc = parse_opts(argc, argv, &cli, "test");

	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return postern_usage_error("sieve", "sieve test needs a SCRIPT "
		    "and a MESSAGE");
	cli_loader(&cli, argv[optind]);
	msg = str_new(64 * 1024, 0);
	if (read_file(argv[optind + 1], msg, SIEVE_CLI_MAX_MESSAGE) < 0) {
		postern_error("cannot read %s: %s", argv[optind + 1],
		    errno == E2BIG ? "too large" : strerror(errno));
		str_free(&msg);
		cli_free(&cli);
		return POSTERN_EXIT_FAIL;
	}
	s = cli_compile(&cli, argv[optind], false);
	if (s == NULL) {
		postern_error("%s: not compiled (see the errors above)",
		    argv[optind]);
		str_free(&msg);
		cli_free(&cli);
		return POSTERN_EXIT_FAIL;
	}
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	cli.env.msg = str_c(msg);
	cli.env.msg_size = str_len(msg);
	cli.env.host = host;
	cli.env.domain = strchr(host, '.') != NULL ? strchr(host, '.') + 1 :
	    host;
	memset(&res, 0, sizeof(res));
	/* --repeat N: run N times (for timing), print the last result */
	for (i = 0; i < cli.repeat; i++) {
		sieve_result_clear(&res);
		(void)sieve_run(s, &cli.env, NULL, &res);
	}
	out = str_new(1024, 0);
	sieve_result_format(&res, out);
	fputs(str_c(out), stdout);
	str_free(&out);
	rc = res.failed ? POSTERN_EXIT_FAIL : POSTERN_EXIT_OK;
	if (cli.save_dir != NULL) {
		for (i = 0; i < res.count; i++) {
			const struct sieve_action *a = &res.actions[i];

			if ((a->type == SIEVE_ACT_KEEP ||
			    a->type == SIEVE_ACT_FILEINTO) &&
			    save_one(cli.save_dir, a->mailbox, a->edited_header,
			    msg) < 0)
				rc = POSTERN_EXIT_FAIL;
		}
		if (res.implicit_keep && save_one(cli.save_dir, "INBOX",
		    res.edited_header, msg) < 0)
			rc = POSTERN_EXIT_FAIL;
	}
	sieve_result_clear(&res);
	sieve_script_free(&s);
	str_free(&msg);
	cli_free(&cli);
	return rc;
}

static int
sieve_cmd_check(int argc, char **argv, bool compile)
{
	struct sieve_cli cli;
	int rc = parse_opts(argc, argv, &cli, compile ? "compile" : "check");
	int i;

	if (rc >= 0)
		return rc;
	if (argc - optind < 1)
		return postern_usage_error("sieve", "sieve %s needs a SCRIPT",
		    compile ? "compile" : "check");
	rc = POSTERN_EXIT_OK;
	if (compile)
		cli.cache = true;
	for (i = optind; i < argc; i++) {
		struct sieve_script *s;

		if (cli.personal_alloc != NULL) {
			/* the default personal dir is per script */
			XFREE(cli.personal_alloc);
			cli.dl.personal_dir = NULL;
		}
		sieve_dir_loader_deinit(&cli.dl);
		cli_loader(&cli, argv[i]);
		s = cli_compile(&cli, argv[i], true);
		if (s == NULL) {
			rc = POSTERN_EXIT_FAIL;
			continue;
		}
		if (cli.dump) {
			struct str *out = str_new(1024, 0);

			sieve_script_dump(s, out);
			fputs(str_c(out), stdout);
			str_free(&out);
		}
		if (postern.verbose)
			printf("%s: ok\n", argv[i]);
		sieve_script_free(&s);
	}
	cli_free(&cli);
	return rc;
}

/* postern_cmd_sieve - postern sieve test|check|compile */
int
postern_cmd_sieve(int argc, char **argv)
{
	if (argc < 2)
		return postern_usage_error("sieve", "sieve needs test, check "
		    "or compile");
	if (strcmp(argv[1], "test") == 0)
		return sieve_cmd_test(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return sieve_cmd_check(argc - 1, argv + 1, false);
	if (strcmp(argv[1], "compile") == 0)
		return sieve_cmd_check(argc - 1, argv + 1, true);
	return postern_usage_error("sieve", "unknown sieve command %s",
	    argv[1]);
}
