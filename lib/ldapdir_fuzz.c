/* SPDX-License-Identifier: MIT */
/*
 * ldapdir_fuzz - libFuzzer target for ldapdir_from_text() and filter
 * expansion
 *
 * DESCRIPTION
 *	The input is an ldap: map file (Postfix ldap_table style). It is
 *	parsed; a success must give a configuration and no error text, a
 *	failure none and some error text. No connection is made (nothing
 *	searches). The first line of the input, up to 256 bytes, is also
 *	used as a filter template and as a key for ldapdir_filter_expand:
 *	the result must never contain an unescaped '(' or ')' from the key,
 *	which the test checks by expanding "%s" alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ldapdir.h"
#include "macros.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str *errors = str_new(0, 0), *out = str_new(0, 0);
	struct ldapdir *ld;
	const char *nl;
	char *line;
	size_t n, i;

	/* bind_pw_file would read any file named: keep the fuzzer off it */
	if (memmem(data, size, "bind_pw_file", 12) == NULL) {
		ld = ldapdir_from_text((const char *)data, size, "fuzz.cf",
		    errors);
		ASSERT((ld != NULL) == (str_len(errors) == 0));
		ldapdir_free(&ld);
	}
	nl = memchr(data, '\n', size);
	n = MIN(nl != NULL ? (size_t)(nl - (const char *)data) : size, 256);
	line = xstrndup((const char *)data, n);
	(void)ldapdir_filter_expand(line, line, out);
	if (ldapdir_filter_expand("%s", line, out))
		for (i = 0; i < str_len(out); i++)
			ASSERT(str_c(out)[i] != '(' && str_c(out)[i] != ')' &&
			    str_c(out)[i] != '*');
	free(line);
	str_free(&errors);
	str_free(&out);
	return 0;
}
