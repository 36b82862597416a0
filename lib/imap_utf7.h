/* SPDX-License-Identifier: MIT */
/*
 * imap_utf7 - IMAP modified UTF-7 mailbox names (RFC 3501 5.1.3)
 *
 * Mailbox names travel as modified UTF-7 on the IMAP wire (unless the
 * client enabled UTF8=ACCEPT or IMAP4rev2) and are UTF-8 in the store.
 * Used by imapd and, for mailbox names in commands, by the CLI and sieved.
 *
 * The calls append to out and return 0, or -1 when the input is not
 * valid (out is then left as it was): imap_utf7_to_utf8 rejects a '&'
 * sequence that is not properly closed, uses bits past the base64
 * alphabet, encodes printable US-ASCII that should have been sent as
 * itself, holds an unpaired surrogate or is empty but for "&-";
 * imap_utf8_to_utf7 rejects invalid UTF-8. E2BIG from a str with a
 * maximum is -1 too. Nothing here ends the process.
 */
#ifndef POSTERN_IMAP_UTF7_H
#define POSTERN_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

struct str;

/* imap_utf7_to_utf8 - decode modified UTF-7 p/n, append UTF-8 to out */
int imap_utf7_to_utf8(const char *p, size_t n, struct str *out);
/* imap_utf8_to_utf7 - encode UTF-8 p/n, append modified UTF-7 to out */
int imap_utf8_to_utf7(const char *p, size_t n, struct str *out);
/* imap_utf7_is_ascii - p/n needs no conversion (printable ASCII, no '&') */
bool imap_utf7_is_ascii(const char *p, size_t n);

#endif
