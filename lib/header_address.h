/* SPDX-License-Identifier: MIT */
/*
 * header_address - RFC 5322 address lists, as IMAP ENVELOPE sees them
 *
 * header_address_parse() turns the value of From:, To:, Cc: and the like
 * into a list of addresses in the shape of RFC 3501 7.4.2: display name,
 * source route (adl), mailbox (local part) and host (domain). Groups
 * ("team: a@b, c@d;") become a start marker (host NULL, mailbox = the
 * group name), the members, and an end marker (host and mailbox NULL).
 *
 * The parser is lenient the way Dovecot's is: comments are dropped (the
 * last comment becomes the name of an address that has none, as in
 * "joe@example.com (Joe)"); quoted strings are unquoted; encoded-words
 * are kept as they are (the ENVELOPE carries them undecoded); an address
 * without '@' has host "MISSING_DOMAIN", an empty local part is
 * "MISSING_MAILBOX"; garbage between addresses is skipped up to the
 * next ','. At most max_addresses are returned (0 = no limit), so a
 * hostile header cannot make the list unbounded.
 *
 * Results are owned by the caller: free them with header_address_free().
 * Parsing never fails; allocation failure ends the process (alloc.h).
 */
#ifndef POSTERN_HEADER_ADDRESS_H
#define POSTERN_HEADER_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define HEADER_ADDRESS_MISSING_MAILBOX "MISSING_MAILBOX"
#define HEADER_ADDRESS_MISSING_DOMAIN "MISSING_DOMAIN"

struct header_address {
	struct header_address *next;
	/*
	 * Each is NUL-terminated, or NULL when absent. name keeps RFC 2047
	 * encoded-words; decode with rfc2047_decode() when showing it.
	 */
	char *name;
	char *route;		/* "@a,@b" without the final ':' */
	char *mailbox;		/* local part, or the group name */
	char *domain;		/* NULL for group markers */
	bool group_start;	/* mailbox = group name */
	bool group_end;
};

/*
 * header_address_parse - parse the (raw, possibly folded) header value
 * p/n. Returns the first address, or NULL when there is none. The list
 * holds at most max_addresses entries (0 = unlimited).
 */
struct header_address *header_address_parse(const char *p, size_t n,
    unsigned int max_addresses);

/* header_address_free - free the whole list at *ap (NULL allowed); NULLs it */
void header_address_free(struct header_address **ap);

#endif
