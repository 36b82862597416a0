/* SPDX-License-Identifier: MIT */
/*
 * list_unsub - one-click unsubscribe tokens of a list (see list_store.h)
 *
 * DESCRIPTION
 *	One-click unsubscribe tokens (RFC 8058) are the first 128 bits of
 *	HMAC-SHA256 under the list's own secret (NAME/secret, 256 random
 *	bits, made on first use) over "unsubscribe", the list name and
 *	the member's key, as Mailman does: nothing is stored per member,
 *	a token works until the secret file is replaced, and one list's
 *	tokens mean nothing to another.
 *
 *	Apart from list_store.c so that programs which only read lists
 *	(imapd's mail role) do not link libcrypto.
 *
 * SEE ALSO
 *	list-mgr(8), RFC 8058
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "list_store.h"
#include "safe_file.h"
#include "str.h"

/*
 * list_secret - the list's HMAC secret (the "secret" file: 64 hex
 * digits) into out; made on first use under the list's exclusive lock
 * (list_members_open), so two processes never make two secrets. 0 or -1.
 */
static int
list_secret(const struct list *l, struct str *out, const char **error_r)
{
	struct list_members *mp;
	struct str *path = str_new(0, 0), *tok = str_new(0, 0);
	int rc = -1, i;

	list_path(l, "secret", path);
	str_clear(out);
	if (read_file(str_c(path), out, 1024) == 0)
		goto check;
	if (errno != ENOENT) {
		*error_r = "cannot read the list's secret";
		goto done;
	}
	if ((mp = list_members_open(l, true, error_r)) == NULL)
		goto done;
	if (read_file(str_c(path), out, 1024) < 0) {
		str_clear(out);
		for (i = 0; i < 3; i++) {	/* 3 x 96 bits of getrandom */
			list_random_token(tok);
			str_append_str(out, tok);
		}
		str_truncate(out, 64);
		str_append_c(out, '\n');
		if (safe_file_replace(str_c(path), str_c(out), str_len(out),
		    0600) < 0) {
			*error_r = "cannot write the list's secret";
			list_members_close(&mp);
			goto done;
		}
	}
	list_members_close(&mp);
check:
	str_chomp(out);
	if (str_len(out) < 32) {
		*error_r = "the list's secret file is too short";
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(str_data(tok), str_len(tok));
	str_free(&tok);
	str_free(&path);
	return rc;
}

/* list_unsubscribe_token - see list_store.h */
int
list_unsubscribe_token(const struct list *l, const char *address,
    struct str *out, const char **error_r)
{
	struct str *secret = str_new(0, 0), *msg = str_new(0, 0);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t i;
	int rc = -1;

	str_clear(out);
	if (list_secret(l, secret, error_r) < 0)
		goto out;
	/* "unsubscribe" NUL list NUL key: no two inputs share a message */
	str_append_cstr(msg, "unsubscribe");
	str_append_c(msg, '\0');
	str_append_cstr(msg, l->name);
	str_append_c(msg, '\0');
	list_address_key(address, out);
	str_append_str(msg, out);
	str_clear(out);
	if (HMAC(EVP_sha256(), str_c(secret), (int)str_len(secret),
	    (const unsigned char *)str_c(msg), str_len(msg), mac,
	    &mac_len) == NULL || mac_len < LIST_UNSUB_TOKEN_LEN / 2) {
		*error_r = "HMAC failed";
		goto out;
	}
	for (i = 0; i < LIST_UNSUB_TOKEN_LEN / 2; i++)
		str_printf(out, "%02x", mac[i]);
	rc = 0;
out:
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(str_data(secret), str_len(secret));
	str_free(&secret);
	str_free(&msg);
	return rc;
}

/* list_unsubscribe_token_check - see list_store.h */
int
list_unsubscribe_token_check(const struct list *l, const char *address,
    const char *token, const char **error_r)
{
	struct str *want = str_new(0, 0);
	int r;

	if (list_unsubscribe_token(l, address, want, error_r) < 0)
		r = -1;
	else
		r = strlen(token) == str_len(want) &&
		    CRYPTO_memcmp(token, str_c(want), str_len(want)) == 0;
	str_free(&want);
	return r;
}
