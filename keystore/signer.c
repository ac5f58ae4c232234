/*
 * signer.c - finding and checking the identity that signs for an address.
 *
 * Decrypted keys are cached per address for the life of the handle; the
 * cache is dropped whenever SQLite's data_version shows that another
 * connection changed the database.  The checks run on every lookup, even
 * from the cache, because time passes: a certificate that expired a
 * second ago is never used (regulation R5).
 *
 * SECURITY: keys are decrypted only here and only with the master
 * passphrase; EVP_PKEY_free() zeroes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "ksint.h"

/* How long a successful validation of a signing identity is reused. */
#define VALIDATION_TTL 60

void
ks_cache_flush(struct keystore *ks)
{
	struct ks_cache_entry *e, *next;

	struct ks_rev_cache *rc, *rnext;

	for (e = ks->cache; e != NULL; e = next) {
		next = e->next;
		X509_free(e->cert);
		EVP_PKEY_free(e->key);
		sk_X509_pop_free(e->chain, X509_free);
		free(e);
	}
	ks->cache = NULL;
	for (rc = ks->revcache; rc != NULL; rc = rnext) {
		rnext = rc->next;
		free(rc);
	}
	ks->revcache = NULL;
	sk_X509_pop_free(ks->anchors, X509_free);
	sk_X509_pop_free(ks->inter, X509_free);
	ks->anchors = ks->inter = NULL;
}

static void
check_data_version(struct keystore *ks)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(ks->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v != ks->data_version) {
		ks_cache_flush(ks);
		ks->data_version = v;
	}
}

static int
decrypt_key(struct keystore *ks, const unsigned char *blob, int len, EVP_PKEY **out)
{
	const unsigned char *p = blob;
	X509_SIG *sig;
	PKCS8_PRIV_KEY_INFO *p8;

	*out = NULL;
	if (ks->master == NULL)
		return SG_ERR_BAD_PASSPHRASE;
	if ((sig = d2i_X509_SIG(NULL, &p, len)) == NULL)
		return SG_ERR_STORE;
	p8 = PKCS8_decrypt(sig, ks->master, (int)ks->master_len);
	X509_SIG_free(sig);
	if (p8 == NULL)
		return SG_ERR_BAD_PASSPHRASE;
	*out = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return *out ? 0 : SG_ERR_CRYPTO;
}

/* Loads the newest own certificate with a key for addr into the cache. */
static int
load_entry(struct keystore *ks, const char *addr, struct ks_cache_entry **out)
{
	static const char sql[] =
	    "SELECT c.der, k.data, k.format FROM certs c JOIN keys k ON k.cert_id=c.id"
	    " JOIN cert_addresses a ON a.cert_id=c.id"
	    " WHERE a.address=? AND c.role='own' ORDER BY c.not_after DESC LIMIT 1";
	struct ks_cache_entry *e;
	sqlite3_stmt *st;
	const unsigned char *p;
	int r;

	*out = NULL;
	if (sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return r == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_STORE;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		sqlite3_finalize(st);
		return SG_ERR_NOMEM;
	}
	snprintf(e->address, sizeof(e->address), "%s", addr);
	p = sqlite3_column_blob(st, 0);
	e->cert = d2i_X509(NULL, &p, sqlite3_column_bytes(st, 0));
	if (e->cert == NULL) {
		r = SG_ERR_STORE;
	} else if (strcmp((const char *)sqlite3_column_text(st, 2), "pkcs11-uri") == 0) {
		char why[256];

		r = ks_pkcs11_load(
		    ks, (const char *)sqlite3_column_text(st, 1), &e->key, why, sizeof(why));
	} else {
		r = decrypt_key(
		    ks, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), &e->key);
	}
	sqlite3_finalize(st);
	if (r != 0) {
		X509_free(e->cert);
		free(e);
		return r;
	}
	e->next = ks->cache;
	ks->cache = e;
	*out = e;
	return 0;
}

static int
check_usable(struct keystore *ks, struct ks_cache_entry *e, time_t now, STACK_OF(X509) * *chain,
    char *why, size_t whylen)
{
	struct ks_verdict v;
	int r;

	*chain = NULL;
	if (!X509_check_private_key(e->cert, e->key)) {
		ERR_clear_error();
		snprintf(why, whylen, "private key does not match the certificate");
		return SG_ERR_CERT_UNUSABLE;
	}
	if ((r = ks_validate_locked(ks, e->cert, e->address, KS_USE_SIGN, now, NULL, &v)) != 0)
		return r;
	if (v.refusal != KS_OK) {
		snprintf(why, whylen, "%s", v.text);
		keystore_verdict_clear(&v);
		return SG_ERR_CERT_UNUSABLE;
	}
	*chain = v.chain;
	return 0;
}

int
keystore_get_signer(struct keystore *ks, const char *addr, time_t now, struct ks_signer **out,
    char *why, size_t whylen)
{
	struct ks_cache_entry *e;
	struct ks_signer *s = NULL;
	STACK_OF(X509) *chain = NULL;
	int r;

	*out = NULL;
	why[0] = '\0';
	pthread_mutex_lock(&ks->lock);
	check_data_version(ks);
	for (e = ks->cache; e != NULL; e = e->next)
		if (strcmp(e->address, addr) == 0)
			break;
	if (e == NULL && (r = load_entry(ks, addr, &e)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			snprintf(why, whylen, "no certificate with a private key for %s", addr);
		else if (r == SG_ERR_BAD_PASSPHRASE)
			snprintf(why, whylen,
			    "the master passphrase does not open the key of %s", addr);
		else if (r == SG_ERR_STORE)
			snprintf(why, whylen, "the keystore database cannot be read (%s)",
			    sqlite3_errmsg(ks->db));
		goto out;
	}
	if (e->validated_at <= now && now < e->valid_until && e->chain != NULL) {
		/* validated within the last minute, nothing changed in the store
		 * since (that would have flushed the cache) */
		if ((chain = X509_chain_up_ref(e->chain)) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
	} else {
		if ((r = check_usable(ks, e, now, &chain, why, whylen)) != 0)
			goto out;
		sk_X509_pop_free(e->chain, X509_free);
		e->chain = X509_chain_up_ref(chain);
		e->validated_at = now;
		e->valid_until = now + VALIDATION_TTL;
		if (e->valid_until > ks_asn1_time(X509_get0_notAfter(e->cert)))
			e->valid_until = ks_asn1_time(X509_get0_notAfter(e->cert));
	}
	r = SG_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	snprintf(s->address, sizeof(s->address), "%s", addr);
	X509_up_ref(e->cert);
	EVP_PKEY_up_ref(e->key);
	s->s.cert = e->cert;
	s->s.key = e->key;
	s->s.chain = chain;
	chain = NULL; /* transferred */
	*out = s;
	r = 0;
out:
	pthread_mutex_unlock(&ks->lock);
	sk_X509_pop_free(chain, X509_free);
	return r;
}

void
keystore_signer_free(struct ks_signer *s)
{
	if (s == NULL)
		return;
	X509_free(s->s.cert);
	EVP_PKEY_free(s->s.key);
	sk_X509_pop_free(s->s.chain, X509_free);
	free(s);
}
