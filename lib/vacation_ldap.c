/* SPDX-License-Identifier: MIT */
/*
 * vacation_ldap - vacation settings from the directory, and the lookup
 * that combines them with settings.db
 *
 * DESCRIPTION
 *	See vacation.h (vacation_setting_lookup). A source is "ldap:FILE",
 *	FILE in the format of the ldap: map type (ldapdir_from_text:
 *	server_host, search_base, query_filter, bind_dn, bind_pw_file,
 *	timeout, ...). The query_filter finds the user's entry with the
 *	user name as the key (%s, %u; escaped by ldapdir_filter_expand);
 *	exactly one entry must match (two are ambiguous: no setting). From
 *	that entry (conf/postern.schema):
 *
 *	    posternVacationActive   TRUE or FALSE (FALSE: off whatever the
 *	                            dates say)
 *	    posternVacationStart    GeneralizedTime: not before
 *	    posternVacationEnd      GeneralizedTime: not from then on
 *	    posternVacationSubject  the reply's subject (one line)
 *	    posternVacationText     the reply text (required unless off)
 *	    posternVacationDays     days between replies to one sender
 *	                            (1-3650; default the caller's)
 *	    posternVacationFrom     the reply's From:
 *	    posternVacationAddress  the user's other addresses (repeatable)
 *	    mail                    more of the user's addresses (values
 *	                            that are not plain local@domain are
 *	                            left out)
 *
 *	The entry holds a setting when it has one of the first three;
 *	otherwise the lookup goes on with the next source. A malformed
 *	value is an error (the setting is not used), never a guess.
 *
 *	Each source's configuration is read once per process and read
 *	again when the file changes (as the ldap: map type does); its
 *	connection is kept open between lookups (ldapdir reconnects once
 *	when the server went away).
 *
 * SEE ALSO
 *	vacation.h, ldapdir.h, vacationd(8), postern.conf(5)
 */
#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ldapdir.h"
#include "macros.h"
#include "safe_file.h"
#include "str.h"
#include "userdb.h"

#include "vacation.h"

#define VACATION_LDAP_CF_MAX	(64 * 1024)
#define VACATION_LDAP_SUBJECT_MAX 900

/* The attributes read, in the order of enum vacation_ldap_attr. */
static const char *const vacation_ldap_attrs[] = {
	"posternVacationActive", "posternVacationStart",
	"posternVacationEnd", "posternVacationSubject",
	"posternVacationText", "posternVacationDays", "posternVacationFrom",
	"posternVacationAddress", "mail", NULL,
};
enum vacation_ldap_attr {
	VL_ACTIVE, VL_START, VL_END, VL_SUBJECT, VL_TEXT, VL_DAYS, VL_FROM,
	VL_ADDRESS, VL_MAIL,
};

/* One ldap: source, loaded. */
struct vacation_ldap_source {
	char *spec;
	struct ldapdir *ld;
	struct stat st;		/* of the file when it was read */
};

static struct vacation_ldap_source *vacation_ldap_sources;
static size_t vacation_ldap_nsources;
static struct str *vacation_ldap_error;

/* What one entry said, while its values arrive. */
struct vacation_ldap_entry {
	struct vacation_setting *s;
	unsigned seen;			/* 1 << enum vacation_ldap_attr */
};

/* vacation_ldap_fail - set the module's error text; returns -1 */
static int PRINTF_LIKE(2, 3)
vacation_ldap_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	if (vacation_ldap_error == NULL)
		vacation_ldap_error = str_new(0, 4096);
	str_clear(vacation_ldap_error);
	va_start(ap, fmt);
	(void)str_vprintf(vacation_ldap_error, fmt, ap);
	va_end(ap);
	*error_r = str_c(vacation_ldap_error);
	return -1;
}

/* digits - n decimal digits at p; false if not */
static bool
digits(const char *p, size_t n, unsigned *v_r)
{
	size_t i;

	*v_r = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v_r = *v_r * 10 + (unsigned)(p[i] - '0');
	}
	return true;
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* vacation_ldap_time - see vacation.h */
bool
vacation_ldap_time(const char *p, size_t n, int64_t *t_r)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	unsigned y, mo, d, h, mi = 0, sec = 0, oh = 0, om = 0, unit = 3600;
	uint64_t frac = 0, scale = 1;
	size_t i = 10;
	int64_t t, off = 0;
	bool leap;

	if (n < 11 || !digits(p, 4, &y) || !digits(p + 4, 2, &mo) ||
	    !digits(p + 6, 2, &d) || !digits(p + 8, 2, &h))
		return false;
	if (i + 2 <= n && digits(p + i, 2, &mi)) {
		i += 2;
		unit = 60;
		if (i + 2 <= n && digits(p + i, 2, &sec)) {
			i += 2;
			unit = 1;
		}
	}
	if (i < n && (p[i] == '.' || p[i] == ',')) {
		size_t k = ++i;

		/* at most 9 digits count; more are read and dropped */
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			if (i - k < 9) {
				frac = frac * 10 + (unsigned)(p[i] - '0');
				scale *= 10;
			}
			i++;
		}
		if (i == k)
			return false;
	}
	if (i >= n)
		return false;
	if (p[i] == 'Z') {
		i++;
	} else if (p[i] == '+' || p[i] == '-') {
		if ((n - i != 3 && n - i != 5) || !digits(p + i + 1, 2, &oh) ||
		    (n - i == 5 && !digits(p + i + 3, 2, &om)) || oh > 23 ||
		    om > 59)
			return false;
		/* local time = UTC + offset */
		off = (int64_t)oh * 3600 + (int64_t)om * 60;
		if (p[i] == '+')
			off = -off;
		i = n;
	} else
		return false;
	if (i != n)
		return false;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
		return false;
	t = days_from_civil((int64_t)y, mo, d) * 86400 + (int64_t)h * 3600 +
	    (int64_t)mi * 60 + (int64_t)sec;
	t += (int64_t)(frac * unit / scale) + off;
	*t_r = t;
	return true;
}

/* one_line - a string value without NUL, CR or LF, at most max octets */
static bool
one_line(const char *v, size_t n, size_t max)
{
	return n <= max && memchr(v, '\0', n) == NULL &&
	    memchr(v, '\r', n) == NULL && memchr(v, '\n', n) == NULL;
}

/* vacation_ldap_value - one value of the user's entry (ldapdir_value_cb) */
static int
vacation_ldap_value(void *ctx, size_t attr, const char *v, size_t n,
    const char **error_r)
{
	struct vacation_ldap_entry *e = ctx;
	struct vacation_params *p = &e->s->params;
	const char *name = vacation_ldap_attrs[attr];
	unsigned long days;
	char *copy;
	bool ok;

	if (attr != VL_ADDRESS && attr != VL_MAIL &&
	    (e->seen & (1u << attr)) != 0)
		return vacation_ldap_fail(error_r, "%s has several values",
		    name);
	e->seen |= 1u << attr;
	switch (attr) {
	case VL_ACTIVE:
		if (n == 4 && memcmp(v, "TRUE", 4) == 0)
			e->s->off = false;
		else if (n == 5 && memcmp(v, "FALSE", 5) == 0)
			e->s->off = true;
		else
			return vacation_ldap_fail(error_r, "%s is not TRUE or "
			    "FALSE", name);
		return 0;
	case VL_START:
	case VL_END:
		if (!vacation_ldap_time(v, n, attr == VL_START ? &e->s->start :
		    &e->s->end))
			return vacation_ldap_fail(error_r, "%s is not a "
			    "GeneralizedTime", name);
		return 0;
	case VL_DAYS:
		if (!str_to_ulong(v, n, 3650, &days) || days == 0)
			return vacation_ldap_fail(error_r, "%s is not a number "
			    "of days (1-3650)", name);
		p->period = (unsigned)days * 86400;
		return 0;
	case VL_SUBJECT:
	case VL_FROM:
		if (!one_line(v, n, VACATION_LDAP_SUBJECT_MAX))
			return vacation_ldap_fail(error_r, "%s is not one line "
			    "of at most %d octets", name,
			    VACATION_LDAP_SUBJECT_MAX);
		break;
	case VL_TEXT:
		if (n > VACATION_STRING_MAX || memchr(v, '\0', n) != NULL)
			return vacation_ldap_fail(error_r, "%s is not text of "
			    "at most %d octets", name, VACATION_STRING_MAX);
		break;
	default:
		break;
	}
	copy = xstrndup(v, n);
	switch (attr) {
	case VL_SUBJECT:
		p->subject = copy;
		break;
	case VL_FROM:
		p->from = copy;
		break;
	case VL_TEXT:
		p->reason = copy;
		break;
	default:	/* VL_ADDRESS, VL_MAIL */
		ok = n == strlen(copy) && userdb_address_ok(copy);
		if (attr == VL_ADDRESS && !ok) {
			free(copy);
			return vacation_ldap_fail(error_r, "%s is not an "
			    "address", name);
		}
		if (ok && p->naddresses < VACATION_ADDRESSES_MAX)
			vacation_params_add_address(p, copy);
		free(copy);
		break;
	}
	return 0;
}

/* vacation_ldap_source - the loaded source for spec (reloaded when the file changed) */
static struct vacation_ldap_source *
vacation_ldap_source(const char *spec, const char **error_r)
{
	struct vacation_ldap_source *src = NULL;
	struct str *text, *errors;
	struct ldapdir *ld;
	const char *path;
	struct stat st;
	size_t i;
	char *nl;

	if (strncmp(spec, "ldap:", 5) != 0 || spec[5] == '\0') {
		(void)vacation_ldap_fail(error_r, "%s: vacation_setting_maps "
		    "takes ldap:FILE sources only", spec);
		return NULL;
	}
	path = spec + 5;
	for (i = 0; i < vacation_ldap_nsources; i++)
		if (strcmp(vacation_ldap_sources[i].spec, spec) == 0)
			src = &vacation_ldap_sources[i];
	if (stat(path, &st) < 0) {
		(void)vacation_ldap_fail(error_r, "%s: %s", spec,
		    strerror(errno));
		return NULL;
	}
	if (src != NULL && src->st.st_dev == st.st_dev &&
	    src->st.st_ino == st.st_ino && src->st.st_size == st.st_size &&
	    src->st.st_mtim.tv_sec == st.st_mtim.tv_sec &&
	    src->st.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
		return src;
	text = str_new(0, 0);
	if (read_file(path, text, VACATION_LDAP_CF_MAX) < 0) {
		(void)vacation_ldap_fail(error_r, "%s: %s", spec,
		    strerror(errno));
		str_free(&text);
		return NULL;
	}
	errors = str_new(0, 4096);
	ld = ldapdir_from_text(str_c(text), str_len(text), path, errors);
	explicit_bzero(str_data(text), str_len(text));
	str_free(&text);
	if (ld == NULL) {
		/* the first error line is enough (postern map build lists all) */
		if ((nl = strchr(str_c(errors), '\n')) != NULL)
			*nl = '\0';
		(void)vacation_ldap_fail(error_r, "%s", str_c(errors));
		str_free(&errors);
		return NULL;
	}
	str_free(&errors);
	if (src == NULL) {
		vacation_ldap_sources = xreallocarray(vacation_ldap_sources,
		    vacation_ldap_nsources + 1, sizeof(*vacation_ldap_sources));
		src = &vacation_ldap_sources[vacation_ldap_nsources++];
		src->spec = xstrdup(spec);
		src->ld = NULL;
	}
	ldapdir_free(&src->ld);
	src->ld = ld;
	src->st = st;
	return src;
}

/* vacation_ldap_get - the setting in user's entry: 1, 0 none, -1 error */
static int
vacation_ldap_get(const char *spec, const char *user, unsigned period,
    struct vacation_setting *s_r, const char **error_r)
{
	struct vacation_ldap_source *src;
	struct vacation_ldap_entry e;
	struct str *dn;
	const char *err = NULL;
	int r;

	memset(s_r, 0, sizeof(*s_r));
	if ((src = vacation_ldap_source(spec, error_r)) == NULL)
		return -1;
	memset(&e, 0, sizeof(e));
	e.s = s_r;
	s_r->start = INT64_MIN;
	s_r->end = INT64_MAX;
	s_r->params.period = period;
	dn = str_new(0, 0);
	r = ldapdir_search_entry(src->ld, user, vacation_ldap_attrs,
	    vacation_ldap_value, &e, dn, &err);
	if (r < 0) {
		/* err may be this module's own error text: copy it first */
		char *why = xstrdup(err);

		(void)vacation_ldap_fail(error_r, "%s: %s%s%s", spec,
		    str_len(dn) > 0 ? str_c(dn) : "", str_len(dn) > 0 ?
		    ": " : "", why);
		free(why);
		goto none;
	}
	if (r == 0 || (e.seen & (1u << VL_ACTIVE | 1u << VL_START |
	    1u << VL_END)) == 0) {
		r = 0;
		goto none;
	}
	if (!s_r->off && s_r->params.reason == NULL) {
		(void)vacation_ldap_fail(error_r, "%s: %s: a vacation setting "
		    "without posternVacationText", spec, str_c(dn));
		r = -1;
		goto none;
	}
	s_r->origin = xasprintf("%s (%s)", spec, str_c(dn));
	s_r->params.source = VACATION_SOURCE_LDAP;
	s_r->params.handle = xasprintf("ldap/%" PRId64,
	    s_r->start == INT64_MIN ? (int64_t)0 : s_r->start);
	str_free(&dn);
	return 1;
none:
	vacation_setting_clear(s_r);
	str_free(&dn);
	return r;
}

/* vacation_setting_lookup - see vacation.h */
int
vacation_setting_lookup(const struct vacation_sources *src,
    const char *user, struct vacation_setting *s_r, const char **error_r)
{
	size_t i;
	int r;

	for (i = 0; i < src->nmaps; i++) {
		r = vacation_ldap_get(src->maps[i], user, src->default_period,
		    s_r, error_r);
		if (r != 0)
			break;
	}
	if (i == src->nmaps) {
		r = vacation_setting_get(src->dir, user, s_r, error_r);
		if (r <= 0)
			return r;
		s_r->origin = xasprintf("%s/settings.db", src->dir);
		s_r->params.source = VACATION_SOURCE_SETTING;
		free(s_r->params.handle);
		s_r->params.handle = xasprintf("setting/%" PRId64, s_r->start);
	}
	if (r < 0)
		return -1;
	free(s_r->params.user);
	s_r->params.user = xstrdup(user);
	return 1;
}

/* vacation_setting_lookup_deinit - see vacation.h */
void
vacation_setting_lookup_deinit(void)
{
	size_t i;

	for (i = 0; i < vacation_ldap_nsources; i++) {
		ldapdir_free(&vacation_ldap_sources[i].ld);
		free(vacation_ldap_sources[i].spec);
	}
	free(vacation_ldap_sources);
	vacation_ldap_sources = NULL;
	vacation_ldap_nsources = 0;
	str_free(&vacation_ldap_error);
}
