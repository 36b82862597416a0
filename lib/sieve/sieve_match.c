/* SPDX-License-Identifier: MIT */
/*
 * sieve_match - comparators and match types, and the script arena
 *
 * DESCRIPTION
 *	Comparators (RFC 4790): i;octet (bytes), i;ascii-casemap (ASCII
 *	letters folded, everything else as bytes), i;ascii-numeric (the
 *	leading decimal digits as an unbounded number; a value without
 *	leading digits is positive infinity, RFC 4790 9.1.1).
 *
 *	:matches (RFC 5228 2.7.1): '*' any sequence, '?' one UTF-8
 *	character, "\" quotes the next character. The matcher is the
 *	classic one-star backtracking algorithm, so the time is bounded by
 *	pattern length times value length, and it is charged to a step
 *	budget besides. It also records what each wildcard matched for the
 *	variables extension (RFC 5229 3.2): earlier wildcards match as
 *	little as possible.
 *
 *	:regex (draft-ietf-sieve-regex): POSIX extended expressions via
 *	regcomp(3), refused above max_regex_size octets, with back
 *	references (exponential in glibc) or too many bounded repetitions.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#include "sieve/sieve_private.h"

/* ------------------------------------------------------------ arena */

struct sv_arena_block {
	struct sv_arena_block *next;
	size_t size;
	max_align_t data[];
};

/* sv_alloc - zeroed memory from the arena */
void *
sv_alloc(struct sv_arena *a, size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (a->head == NULL || a->size - a->used < n) {
		size_t size = n > 16384 ? n : 16384;
		struct sv_arena_block *b = xmalloc(sizeof(*b) + size);

		b->size = size;
		b->next = a->head;
		a->head = b;
		a->used = 0;
		a->size = size;
	}
	p = (char *)a->head->data + a->used;
	a->used += n;
	memset(p, 0, n);
	return p;
}

/* sv_memdup - copy n bytes plus a NUL into the arena */
void *
sv_memdup(struct sv_arena *a, const void *p, size_t n)
{
	char *d = sv_alloc(a, n + 1);

	if (n > 0)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* sv_arena_free - free every block */
void
sv_arena_free(struct sv_arena *a)
{
	while (a->head != NULL) {
		struct sv_arena_block *b = a->head;

		a->head = b->next;
		free(b);
	}
	a->used = a->size = 0;
}

/* ------------------------------------------------------------ comparators */

static inline unsigned char
lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* sv_lower_ascii - see sieve_private.h */
void
sv_lower_ascii(char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (char)lc((unsigned char)p[i]);
}

/* sv_numeric_cmp - i;ascii-numeric ordering */
int
sv_numeric_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t ad = 0, bd = 0, i;

	while (ad < alen && isdigit((unsigned char)a[ad]))
		ad++;
	while (bd < blen && isdigit((unsigned char)b[bd]))
		bd++;
	if (ad == 0 || bd == 0) {
		if (ad == 0 && bd == 0)
			return 0;
		return ad == 0 ? 1 : -1;
	}
	/* skip leading zeros */
	while (ad > 1 && *a == '0') {
		a++;
		ad--;
	}
	while (bd > 1 && *b == '0') {
		b++;
		bd--;
	}
	if (ad != bd)
		return ad < bd ? -1 : 1;
	for (i = 0; i < ad; i++)
		if (a[i] != b[i])
			return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
	return 0;
}

/* sv_cmp_values - ordering under a comparator */
int
sv_cmp_values(int cmp, const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i, n = MIN(alen, blen);

	if (cmp == SV_CMP_NUMERIC)
		return sv_numeric_cmp(a, alen, b, blen);
	for (i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (cmp == SV_CMP_CASEMAP) {
			x = lc(x);
			y = lc(y);
		}
		if (x != y)
			return x < y ? -1 : 1;
	}
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

/* sv_rel_ok - does the comparison result c satisfy the relation */
bool
sv_rel_ok(int rel, int c)
{
	switch (rel) {
	case SV_REL_GT: return c > 0;
	case SV_REL_GE: return c >= 0;
	case SV_REL_LT: return c < 0;
	case SV_REL_LE: return c <= 0;
	case SV_REL_EQ: return c == 0;
	case SV_REL_NE: return c != 0;
	}
	return false;
}

/* sv_equal - :is */
bool
sv_equal(int cmp, const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (cmp == SV_CMP_NUMERIC)
		return sv_numeric_cmp(a, an, b, bn) == 0;
	if (an != bn)
		return false;
	if (cmp == SV_CMP_OCTET)
		return memcmp(a, b, an) == 0;
	for (i = 0; i < an; i++)
		if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
			return false;
	return true;
}

/* sv_contains - :contains (the empty needle is in every value) */
bool
sv_contains(int cmp, const char *hay, size_t hn, const char *needle,
    size_t nn, uint64_t *steps)
{
	size_t i, j;

	if (nn == 0)
		return true;
	if (nn > hn)
		return false;
	if (cmp == SV_CMP_OCTET) {
		*steps += hn;
		return memmem(hay, hn, needle, nn) != NULL;
	}
	for (i = 0; i + nn <= hn; i++) {
		if (lc((unsigned char)hay[i]) != lc((unsigned char)needle[0]))
			continue;
		for (j = 1; j < nn; j++)
			if (lc((unsigned char)hay[i + j]) !=
			    lc((unsigned char)needle[j]))
				break;
		*steps += j;
		if (j == nn)
			return true;
	}
	*steps += hn;
	return false;
}

/* utf8_step - length of the character at p (1 for a bad byte) */
static size_t
utf8_step(const unsigned char *p, size_t n)
{
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4;
	else
		return 1;
	if (len > n)
		return 1;
	for (i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 1;
	return len;
}

/*
 * Pattern elements after parsing the escapes: a literal byte, '*' or
 * '?'. Patterns are short; parse them into a small array once.
 */
enum { PE_LIT, PE_STAR, PE_ONE };

/* sv_glob - see sieve_private.h */
bool
sv_glob(const char *pat, size_t plen, const char *val, size_t vlen,
    bool casemap, uint64_t *steps, uint64_t max_steps,
    size_t caps_off[10], size_t caps_len[10], unsigned *ncaps)
{
	unsigned char *kind;
	char *lit;
	size_t *wild_at;	/* per element: index of its wildcard (or -1) */
	size_t n = 0, i, pi, vi, nwild = 0;
	size_t star_p = (size_t)-1, star_v = 0;
	size_t *wpos, *wlen;	/* per wildcard: start and length in val */
	size_t wcap;
	bool ok = false;

	kind = xmalloc(plen + 1);
	lit = xmalloc(plen + 1);
	wild_at = xmalloc((plen + 1) * sizeof(*wild_at));
	for (i = 0; i < plen; i++) {
		if (pat[i] == '\\' && i + 1 < plen) {
			i++;
			kind[n] = PE_LIT;
			lit[n] = pat[i];
		} else if (pat[i] == '*') {
			/* "**" is one star, but both are wildcards for ${N} */
			kind[n] = PE_STAR;
		} else if (pat[i] == '?') {
			kind[n] = PE_ONE;
		} else {
			kind[n] = PE_LIT;
			lit[n] = pat[i];
		}
		wild_at[n] = kind[n] == PE_LIT ? (size_t)-1 : nwild++;
		n++;
	}
	wcap = nwild + 1;
	wpos = xcalloc(wcap, sizeof(*wpos));
	wlen = xcalloc(wcap, sizeof(*wlen));

	pi = vi = 0;
	for (;;) {
		if (++*steps > max_steps)
			break;
		if (pi < n && kind[pi] == PE_STAR) {
			star_p = pi;
			star_v = vi;
			wpos[wild_at[pi]] = vi;
			wlen[wild_at[pi]] = 0;
			pi++;
			continue;
		}
		if (vi < vlen && pi < n) {
			if (kind[pi] == PE_ONE) {
				size_t st = utf8_step((const unsigned char *)val + vi,
				    vlen - vi);

				wpos[wild_at[pi]] = vi;
				wlen[wild_at[pi]] = st;
				vi += st;
				pi++;
				continue;
			}
			if (casemap ? lc((unsigned char)lit[pi]) ==
			    lc((unsigned char)val[vi]) : lit[pi] == val[vi]) {
				pi++;
				vi++;
				continue;
			}
		}
		if (pi == n && vi == vlen) {
			ok = true;
			break;
		}
		/* mismatch: let the last star take one more character */
		if (star_p == (size_t)-1 || star_v >= vlen)
			break;
		star_v += utf8_step((const unsigned char *)val + star_v,
		    vlen - star_v);
		pi = star_p + 1;
		vi = star_v;
		wlen[wild_at[star_p]] = star_v - wpos[wild_at[star_p]];
	}
	if (ok && ncaps != NULL) {
		unsigned k;

		caps_off[0] = 0;
		caps_len[0] = vlen;
		for (k = 0; k < 9 && k < nwild; k++) {
			caps_off[k + 1] = wpos[k];
			caps_len[k + 1] = wlen[k];
		}
		*ncaps = (unsigned)MIN(nwild + 1, 10);
	}
	free(kind);
	free(lit);
	free(wild_at);
	free(wpos);
	free(wlen);
	return ok;
}

/* ------------------------------------------------------------ regex */

/* sv_regex_compile - see sieve_private.h */
regex_t *
sv_regex_compile(const char *p, size_t n, bool icase, size_t max_size,
    const char **error_r)
{
	regex_t *re;
	char *pat;
	size_t i;
	int rc;

	if (n > max_size) {
		*error_r = "too long (see sieve_max_regex_size)";
		return NULL;
	}
	if (memchr(p, '\0', n) != NULL) {
		*error_r = "NUL in pattern";
		return NULL;
	}
	/*
	 * Estimate the size of the automaton glibc builds: each element
	 * costs 1, a group the sum of its elements, and a repetition
	 * multiplies the cost of what it repeats by its upper bound ("*",
	 * "+" and "?" by 2). Nested bounds multiply, which is what makes
	 * "((a{1,100}){1,100}){1,100}" explode; refuse above 10,000.
	 */
	{
		uint64_t sum[64], last = 0;
		unsigned d = 0;

		sum[0] = 0;
		for (i = 0; i < n; i++) {
			uint64_t f = 0;

			if (p[i] == '\\' && i + 1 < n) {
				if (p[i + 1] >= '1' && p[i + 1] <= '9') {
					*error_r = "back references are not allowed";
					return NULL;
				}
				i++;
				last = 1;
				sum[d] += 1;
				continue;
			}
			switch (p[i]) {
			case '(':
				if (d + 1 >= N_ELEMENTS(sum)) {
					*error_r = "too deeply nested";
					return NULL;
				}
				sum[++d] = 0;
				last = 0;
				continue;
			case ')':
				if (d > 0) {
					last = sum[d--];
					sum[d] += last;
				}
				continue;
			case '[': {
				size_t k = i + 1;

				if (k < n && p[k] == '^')
					k++;
				if (k < n && p[k] == ']')
					k++;
				while (k < n && p[k] != ']')
					k++;
				i = k;
				last = 1;
				sum[d] += 1;
				continue;
			}
			case '*': case '+': case '?':
				f = 2;
				break;
			case '{': {
				uint64_t m = 0, cur = 0;
				size_t k = i + 1;

				while (k < n && (isdigit((unsigned char)p[k]) ||
				    p[k] == ',')) {
					if (p[k] == ',') {
						m = MAX(m, cur + 1);
						cur = 0;
					} else if (cur < 100000)
						cur = cur * 10 + (uint64_t)(p[k] - '0');
					k++;
				}
				f = MAX(m, cur);
				if (f == 0)
					f = 1;
				i = k;
				break;
			}
			default:
				last = 1;
				sum[d] += 1;
				continue;
			}
			/* a repetition of the last element */
			if (f > 1 && last > 0) {
				uint64_t add = last * (f - 1);

				sum[d] = MIN(sum[d] + add, UINT64_C(1) << 40);
				last = MIN(last * f, UINT64_C(1) << 40);
			}
			if (sum[d] > 10000) {
				*error_r = "too complex (repetition bounds)";
				return NULL;
			}
		}
		while (d > 0) {
			last = sum[d--];
			sum[d] += last;
		}
		if (sum[0] > 10000) {
			*error_r = "too complex (repetition bounds)";
			return NULL;
		}
	}
	pat = xstrndup(p, n);
	re = xmalloc(sizeof(*re));
	rc = regcomp(re, pat, REG_EXTENDED | (icase ? REG_ICASE : 0));
	free(pat);
	if (rc != 0) {
		free(re);
		*error_r = "syntax error";
		return NULL;
	}
	*error_r = NULL;
	return re;
}

/* sv_hash - FNV-1a 64 over the octets, then mixed with the length */
uint64_t
sv_hash(const char *p, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= UINT64_C(1099511628211);
	}
	h ^= (uint64_t)n;
	h *= UINT64_C(1099511628211);
	return h;
}

/* sieve_script_hash - see sieve.h */
uint64_t
sieve_script_hash(const char *p, size_t n)
{
	return sv_hash(p, n);
}
