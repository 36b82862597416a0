/* SPDX-License-Identifier: MIT */
/*
 * postern_vacation - `postern vacation`: a user's out-of-office setting
 *
 * DESCRIPTION
 *	postern vacation set USER --from DATE --until DATE --subject S
 *	    --message-file FILE [--addresses A,B...] [--days N]
 *	postern vacation show USER
 *	postern vacation off USER
 *
 *	The setting goes into $vacation_directory/settings.db
 *	(lib/vacation.h); a setting in the user's directory entry
 *	($vacation_setting_maps) takes precedence, and set and off warn
 *	when there is one. show prints the setting that applies, as lmtpd
 *	looks it up, and where it comes from (source: directory ... or
 *	source: settings ...). While it is active (from <= now < until) lmtpd
 *	hands every delivery to USER to vacationd, which answers each
 *	sender at most once per --days (default $vacation_default_period)
 *	under the RFC 3834 rules; see vacationd(8).
 *
 *	DATE is YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (or with a space), in
 *	local time, "@EPOCH" seconds, or "now". An --until without a time
 *	means the end of that day. --message-file - reads standard input.
 *	The subject defaults to "Auto: " and the original subject. The
 *	message is plain UTF-8 text.
 */
#include <sys/stat.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "safe_file.h"
#include "str.h"
#include "userdb.h"
#include "vacation.h"

#include "postern.h"

int postern_cmd_vacation(int argc, char **argv);

/* parse_date - see above; false if not a date */
static bool
parse_date(const char *s, bool end_of_day, int64_t *t_r)
{
	struct tm tm;
	const char *rest;
	unsigned long n;

	if (strcmp(s, "now") == 0) {
		*t_r = (int64_t)time(NULL);
		return true;
	}
	if (s[0] == '@') {
		if (!str_to_ulong(s + 1, strlen(s + 1), (unsigned long)INT64_MAX,
		    &n))
			return false;
		*t_r = (int64_t)n;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%d", &tm);
	if (rest == NULL)
		return false;
	if (*rest == '\0') {
		if (end_of_day)
			tm.tm_mday++;	/* mktime normalises */
	} else {
		if (*rest != 'T' && *rest != ' ')
			return false;
		rest = strptime(rest + 1, "%H:%M", &tm);
		if (rest != NULL && *rest == ':')
			rest = strptime(rest + 1, "%S", &tm);
		if (rest == NULL || *rest != '\0')
			return false;
	}
	tm.tm_isdst = -1;
	*t_r = (int64_t)mktime(&tm);
	return *t_r != -1;
}

static void
print_time(const char *label, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64];

	localtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
	printf("%s: %s (@%lld)\n", label, buf, (long long)t);
}

/* user_exists - 1 yes, 0 no (message printed), -1 error (message printed) */
static int
user_exists(struct config *cfg, const char *user)
{
	const char *path = postern_param(cfg, "user_database"), *err = NULL;
	struct userdb_user u;
	struct userdb *db;
	int found;

	if (path == NULL)
		return -1;
	if ((db = userdb_open(path, &err)) == NULL) {
		postern_error("cannot open the user database %s: %s", path,
		    err != NULL ? err : "failed");
		return -1;
	}
	found = userdb_lookup(db, user, &u, &err);
	if (found > 0)
		userdb_user_clear(&u);
	else if (found == 0)
		postern_error("no such user: %s", user);
	else
		postern_error("user database: %s", err);
	userdb_close(&db);
	return found;
}

/*
 * mail_owner_ids - as root, $mail_owner's uid and gid: vacationd runs as
 * that user and creates replied/ in $vacation_directory, lmtpd reads
 * settings.db as a member of that group. false when not root or unknown.
 */
static bool
mail_owner_ids(struct config *cfg, uid_t *uid_r, gid_t *gid_r)
{
	const char *owner = postern_param(cfg, "mail_owner");
	struct passwd *pw;

	if (geteuid() != 0 || owner == NULL || (pw = getpwnam(owner)) == NULL)
		return false;
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return true;
}

/* give_to_mail_owner - the directory to $mail_owner (as root) */
static void
give_to_mail_owner(struct config *cfg, const char *dir)
{
	struct stat st;
	uid_t uid;
	gid_t gid;

	if (!mail_owner_ids(cfg, &uid, &gid))
		return;
	if (stat(dir, &st) == 0 && st.st_uid == 0 &&
	    chown(dir, uid, gid) < 0)
		postern_warn("cannot give %s to uid %lu: %s", dir,
		    (unsigned long)uid, strerror(errno));
}

/* vacation_sources - where lmtpd looks; false (message printed) if unknown */
static bool
vacation_sources(struct config *cfg, const char *dir,
    struct vacation_sources *src)
{
	memset(src, 0, sizeof(*src));
	if (postern_param(cfg, "vacation_setting_maps") == NULL)
		return false;
	src->maps = config_list(cfg, "vacation_setting_maps", &src->nmaps);
	src->dir = dir;
	src->default_period = postern_param_time(cfg,
	    "vacation_default_period", 7 * 86400);
	return true;
}

/*
 * shadowed_warning - after a change to settings.db: say so when a
 * directory setting takes precedence over it for user
 */
static void
shadowed_warning(struct config *cfg, const char *dir, const char *user)
{
	struct vacation_sources src;
	struct vacation_setting s;
	const char *err = NULL;
	int r;

	if (!vacation_sources(cfg, dir, &src) || src.nmaps == 0)
		return;
	r = vacation_setting_lookup(&src, user, &s, &err);
	if (r < 0)
		postern_warn("cannot tell whether the directory holds a "
		    "vacation setting of %s that takes precedence: %s", user,
		    err);
	else if (r > 0 && s.params.source == VACATION_SOURCE_LDAP)
		postern_warn("the directory's vacation setting of %s (%s) "
		    "takes precedence over settings.db", user, s.origin);
	if (r > 0)
		vacation_setting_clear(&s);
	vacation_setting_lookup_deinit();	/* err is gone */
}

static int
vacation_set(struct config *cfg, const char *dir, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "until", required_argument, NULL, 'u' },
		{ "subject", required_argument, NULL, 's' },
		{ "message-file", required_argument, NULL, 'm' },
		{ "addresses", required_argument, NULL, 'a' },
		{ "days", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct vacation_setting s;
	struct str *text = str_new(0, 0);
	const char *user, *file = NULL, *err = NULL;
	bool have_from = false, have_until = false;
	unsigned long days;
	char *list, *tok, *save;
	int c, ret = POSTERN_EXIT_FAIL;

	memset(&s, 0, sizeof(s));
	s.params.source = VACATION_SOURCE_SETTING;
	s.params.period = postern_param_time(cfg, "vacation_default_period",
	    7 * 86400);
	optind = 0;	/* a full GNU getopt reset; argv[0] is USER */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!parse_date(optarg, false, &s.start)) {
				ret = postern_usage_error("vacation", "bad "
				    "--from date: %s", optarg);
				goto out;
			}
			have_from = true;
			break;
		case 'u':
			if (!parse_date(optarg, true, &s.end)) {
				ret = postern_usage_error("vacation", "bad "
				    "--until date: %s", optarg);
				goto out;
			}
			have_until = true;
			break;
		case 's':
			free(s.params.subject);
			s.params.subject = xstrdup(optarg);
			break;
		case 'm':
			file = optarg;
			break;
		case 'a':
			list = xstrdup(optarg);
			for (tok = strtok_r(list, ", ", &save); tok != NULL;
			    tok = strtok_r(NULL, ", ", &save)) {
				if (!userdb_address_ok(tok) ||
				    s.params.naddresses ==
				    VACATION_ADDRESSES_MAX) {
					free(list);
					ret = postern_usage_error("vacation",
					    "bad or too many --addresses: %s",
					    tok);
					goto out;
				}
				vacation_params_add_address(&s.params, tok);
			}
			free(list);
			break;
		case 'd':
			if (!str_to_ulong(optarg, strlen(optarg), 3650, &days) ||
			    days == 0) {
				ret = postern_usage_error("vacation", "bad "
				    "--days: %s", optarg);
				goto out;
			}
			s.params.period = (unsigned)days * 86400;
			break;
		default:
			ret = postern_usage_error("vacation", "unknown option "
			    "%s", argv[optind - 1]);
			goto out;
		}
	}
	if (optind != argc) {
		ret = postern_usage_error("vacation", "unexpected argument %s",
		    argv[optind]);
		goto out;
	}
	user = argv[0];
	if (!have_from || !have_until || file == NULL) {
		ret = postern_usage_error("vacation", "set needs --from, "
		    "--until and --message-file");
		goto out;
	}
	if (s.end <= s.start) {
		ret = postern_usage_error("vacation", "--until is not after "
		    "--from");
		goto out;
	}
	if (strcmp(file, "-") == 0) {
		char buf[4096];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 &&
		    str_len(text) <= VACATION_STRING_MAX)
			str_append(text, buf, n);
	} else if (read_file(file, text, VACATION_STRING_MAX + 1) < 0) {
		postern_error("cannot read %s: %s", file, strerror(errno));
		goto out;
	}
	if (str_len(text) > VACATION_STRING_MAX ||
	    memchr(str_c(text), '\0', str_len(text)) != NULL) {
		postern_error("%s: the message must be text of at most %d "
		    "octets", file, VACATION_STRING_MAX);
		goto out;
	}
	if (s.params.subject != NULL &&
	    (strpbrk(s.params.subject, "\r\n") != NULL ||
	    strlen(s.params.subject) > 900)) {
		ret = postern_usage_error("vacation", "bad --subject");
		goto out;
	}
	s.params.reason = str_steal(&text);
	if (user_exists(cfg, user) <= 0)
		goto out;
	{
		uid_t uid;

		if (mail_owner_ids(cfg, &uid, &vacation_setting_gid))
			(void)uid;
	}
	if (vacation_setting_put(dir, user, &s, &err) < 0) {
		postern_error("cannot store the vacation setting in %s: %s",
		    dir, err);
		goto out;
	}
	give_to_mail_owner(cfg, dir);
	shadowed_warning(cfg, dir, user);
	ret = POSTERN_EXIT_OK;
out:
	vacation_setting_clear(&s);
	str_free(&text);
	return ret;
}

static int
vacation_show(struct config *cfg, const char *dir, const char *user)
{
	struct vacation_sources src;
	struct vacation_setting s;
	const char *err = NULL;
	size_t i;
	int r;

	if (!vacation_sources(cfg, dir, &src))
		return POSTERN_EXIT_FAIL;
	/* the lookup lmtpd makes at delivery, so this shows what applies */
	r = vacation_setting_lookup(&src, user, &s, &err);
	if (r < 0)
		postern_error("vacation setting of %s: %s", user, err);
	vacation_setting_lookup_deinit();	/* err is gone */
	if (r < 0)
		return POSTERN_EXIT_FAIL;
	if (r == 0) {
		printf("user: %s\nvacation: off\n", user);
		return POSTERN_EXIT_OK;
	}
	printf("user: %s\n", user);
	printf("source: %s %s\n", s.params.source == VACATION_SOURCE_LDAP ?
	    "directory" : "settings", s.origin);
	printf("vacation: %s\n", s.off ? "off (posternVacationActive FALSE)" :
	    vacation_setting_active(&s, time(NULL)) ? "active" :
	    "set, not active now");
	if (s.start != INT64_MIN)
		print_time("from", s.start);
	if (s.end != INT64_MAX)
		print_time("until", s.end);
	printf("days: %u\n", s.params.period / 86400);
	printf("subject: %s\n", s.params.subject != NULL ? s.params.subject :
	    "(Auto: original subject)");
	if (s.params.from != NULL)
		printf("reply from: %s\n", s.params.from);
	printf("addresses:");
	for (i = 0; i < s.params.naddresses; i++)
		printf("%s%s", i > 0 ? "," : " ", s.params.addresses[i]);
	printf("\nmessage:\n%s", s.params.reason != NULL ? s.params.reason :
	    "");
	if (s.params.reason != NULL && *s.params.reason != '\0' &&
	    s.params.reason[strlen(s.params.reason) - 1] != '\n')
		printf("\n");
	vacation_setting_clear(&s);
	return POSTERN_EXIT_OK;
}

/* postern_cmd_vacation - the verb */
int
postern_cmd_vacation(int argc, char **argv)
{
	struct config *cfg;
	const char *dir, *err = NULL;

	if (argc < 3)
		return postern_usage_error("vacation", "missing arguments");
	if (!userdb_name_ok(argv[2]))
		return postern_usage_error("vacation", "bad user name: %s",
		    argv[2]);
	if ((cfg = postern_load_config(false)) == NULL ||
	    (dir = postern_param(cfg, "vacation_directory")) == NULL)
		return POSTERN_EXIT_FAIL;
	if (strcmp(argv[1], "set") == 0) {
		/* vacation_set sees USER as argv[0], options after it */
		return vacation_set(cfg, dir, argc - 2, argv + 2);
	}
	if (argc != 3)
		return postern_usage_error("vacation", "unexpected argument %s",
		    argv[3]);
	if (strcmp(argv[1], "show") == 0)
		return vacation_show(cfg, dir, argv[2]);
	if (strcmp(argv[1], "off") == 0) {
		uid_t uid;

		if (mail_owner_ids(cfg, &uid, &vacation_setting_gid))
			(void)uid;
		if (vacation_setting_put(dir, argv[2], NULL, &err) < 0) {
			postern_error("cannot change the vacation settings in "
			    "%s: %s", dir, err);
			return POSTERN_EXIT_FAIL;
		}
		give_to_mail_owner(cfg, dir);
		shadowed_warning(cfg, dir, argv[2]);
		return POSTERN_EXIT_OK;
	}
	return postern_usage_error("vacation", "unknown subcommand %s",
	    argv[1]);
}
