/*
 * certs.c - adding and listing certificates and PKCS#12 identities.
 *
 * A PKCS#12 is opened with its passphrase (falling back to OpenSSL's
 * legacy provider for the RC2/3DES files older CAs still issue); its key
 * is re-encrypted as PKCS#8 with scrypt and AES-256-CBC under the master
 * passphrase before it touches the database.  Each change runs in one
 * transaction with its audit record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "ksint.h"
#include "util/secmem.h"

/* scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB; OpenSSL's default memory cap is 32 MiB). */
#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1

/*
 * A CA already stored as an untrusted certificate (it came in a PKCS#12
 * bundle, say) becomes an anchor; one that already is gives SG_ERR_EXISTS.
 */
static int
promote_to_anchor(struct keystore *ks, long long id)
{
	sqlite3_stmt *st;
	char detail[64];
	int changed;

	if (sqlite3_prepare_v2(ks->db,
	        "UPDATE certs SET role='anchor' WHERE id=? AND role<>'anchor'", -1, &st,
	        NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return SG_ERR_STORE;
	}
	sqlite3_finalize(st);
	if ((changed = sqlite3_changes(ks->db)) == 0)
		return SG_ERR_EXISTS;
	snprintf(detail, sizeof(detail), "cert id=%lld is now a trust anchor", id);
	return ks_audit(ks, "trust-add", detail);
}

int
keystore_add_anchor(struct keystore *ks, X509 *ca)
{
	long long id;
	int r;

	if (X509_check_ca(ca) == 0 || X509_check_issued(ca, ca) != X509_V_OK)
		return SG_ERR_CERT_UNUSABLE;
	pthread_mutex_lock(&ks->lock);
	if ((r = ks_begin(ks)) == 0) {
		r = ks_insert_cert(ks, ca, KS_ROLE_ANCHOR, "trust-add", &id);
		if (r == SG_ERR_EXISTS)
			r = promote_to_anchor(ks, id);
		r = ks_finish(ks, r);
	}
	ks_cache_flush(ks);
	pthread_mutex_unlock(&ks->lock);
	return r;
}

int
keystore_add_cert(struct keystore *ks, X509 *cert, const char *source)
{
	long long id;
	int r;

	pthread_mutex_lock(&ks->lock);
	if ((r = ks_begin(ks)) == 0)
		r = ks_finish(ks,
		    ks_insert_cert(ks, cert,
		        X509_check_ca(cert) ? KS_ROLE_INTERMEDIATE : KS_ROLE_CORRESPONDENT,
		        source, &id));
	ks_cache_flush(ks);
	pthread_mutex_unlock(&ks->lock);
	return r;
}

static int
encrypt_key(struct keystore *ks, EVP_PKEY *key, unsigned char **out, int *outlen)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	int r = SG_ERR_CRYPTO;

	*out = NULL;
	if (ks->master == NULL)
		return SG_ERR_BAD_PASSPHRASE;
	if ((p8 = EVP_PKEY2PKCS8(key)) == NULL ||
	    (pbe = PKCS5_pbe2_set_scrypt(
	         EVP_aes_256_cbc(), NULL, 0, NULL, SCRYPT_N, SCRYPT_R, SCRYPT_P)) == NULL)
		goto out;
	if ((sig = PKCS8_set0_pbe(ks->master, (int)ks->master_len, p8, pbe)) == NULL)
		goto out;
	pbe = NULL; /* transferred */
	if ((*outlen = i2d_X509_SIG(sig, out)) <= 0)
		goto out;
	r = 0;
out:
	X509_ALGOR_free(pbe);
	X509_SIG_free(sig);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return r;
}

static int
store_key(struct keystore *ks, long long cert_id, EVP_PKEY *key)
{
	sqlite3_stmt *st = NULL;
	unsigned char *blob = NULL;
	int len = 0, r;

	if ((r = encrypt_key(ks, key, &blob, &len)) != 0)
		return r;
	r = SG_ERR_STORE;
	if (sqlite3_prepare_v2(ks->db,
	        "INSERT OR REPLACE INTO keys(cert_id, format, data, added)"
	        " VALUES (?, 'pkcs8-scrypt-aes256', ?, ?)",
	        -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, cert_id);
	sqlite3_bind_blob(st, 2, blob, len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (long long)time(NULL));
	if (sqlite3_step(st) == SQLITE_DONE)
		r = ks_audit(ks, "key-add", "private key stored encrypted");
out:
	sqlite3_finalize(st);
	OPENSSL_free(blob);
	return r;
}

static int
parse_p12(const unsigned char *der, size_t len, const char *pass, EVP_PKEY **key, X509 **cert,
    STACK_OF(X509) * *ca)
{
	const unsigned char *p = der;
	PKCS12 *p12;
	int ok, r = 0;

	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL)
		return SG_ERR_MALFORMED;
	if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, -1)) {
		r = SG_ERR_BAD_PASSPHRASE;
		goto out;
	}
	ok = PKCS12_parse(p12, pass, key, cert, ca);
	if (!ok && OSSL_PROVIDER_available(NULL, "legacy") == 0 &&
	    OSSL_PROVIDER_load(NULL, "legacy") != NULL) {
		(void)OSSL_PROVIDER_load(NULL, "default");
		ERR_clear_error();
		ok = PKCS12_parse(p12, pass, key, cert, ca);
	}
	if (!ok)
		r = SG_ERR_MALFORMED;
out:
	PKCS12_free(p12);
	return r;
}

int
keystore_import_p12(struct keystore *ks, const unsigned char *der, size_t len,
    const char *passphrase, char **subject)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	long long id, cid;
	int r, i;

	if (subject)
		*subject = NULL;
	if ((r = parse_p12(der, len, passphrase, &key, &cert, &ca)) != 0)
		return r;
	if (key == NULL || cert == NULL || !X509_check_private_key(cert, key)) {
		r = SG_ERR_MALFORMED;
		goto out;
	}
	pthread_mutex_lock(&ks->lock);
	if ((r = ks_begin(ks)) == 0) {
		r = ks_insert_own(ks, cert, "p12", &id);
		if (r == 0)
			r = store_key(ks, id, key);
		for (i = 0; r == 0 && ca && i < sk_X509_num(ca); i++) {
			X509 *c = sk_X509_value(ca, i);

			/* CA certificates, roots included, go to the untrusted pool:
			 * only `trust add` makes an anchor. */
			r = ks_insert_cert(ks, c, KS_ROLE_INTERMEDIATE, "p12", &cid);
			if (r == SG_ERR_EXISTS)
				r = 0;
		}
		r = ks_finish(ks, r);
	}
	ks_cache_flush(ks);
	pthread_mutex_unlock(&ks->lock);
	if (r == 0 && subject) {
		char buf[256];

		X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
		*subject = strdup(buf);
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	return r;
}

static enum ks_role
role_parse(const char *s)
{
	if (strcmp(s, "anchor") == 0)
		return KS_ROLE_ANCHOR;
	if (strcmp(s, "intermediate") == 0)
		return KS_ROLE_INTERMEDIATE;
	if (strcmp(s, "own") == 0)
		return KS_ROLE_OWN;
	return KS_ROLE_CORRESPONDENT;
}

int
keystore_list(struct keystore *ks, ks_list_cb cb, void *arg)
{
	static const char sql[] =
	    "SELECT c.id, c.role, (SELECT COUNT(*) FROM keys k WHERE k.cert_id=c.id),"
	    " c.subject, c.issuer, c.serial, c.fingerprint,"
	    " (SELECT group_concat(address, ',') FROM cert_addresses a WHERE a.cert_id=c.id),"
	    " c.not_before, c.not_after, c.source FROM certs c"
	    " ORDER BY CASE c.role WHEN 'anchor' THEN 0 WHEN 'intermediate' THEN 1"
	    " WHEN 'own' THEN 2 ELSE 3 END, c.id";
	sqlite3_stmt *st;
	struct ks_entry e;
	int r = 0;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &st, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&ks->lock);
		return SG_ERR_STORE;
	}
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *addrs = (const char *)sqlite3_column_text(st, 7);

		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(st, 0);
		e.role = role_parse((const char *)sqlite3_column_text(st, 1));
		e.has_key = sqlite3_column_int(st, 2) > 0;
		snprintf(e.subject, sizeof(e.subject), "%s", sqlite3_column_text(st, 3));
		snprintf(e.issuer, sizeof(e.issuer), "%s", sqlite3_column_text(st, 4));
		snprintf(e.serial, sizeof(e.serial), "%s", sqlite3_column_text(st, 5));
		snprintf(
		    e.fingerprint, sizeof(e.fingerprint), "%s", sqlite3_column_text(st, 6));
		snprintf(e.addresses, sizeof(e.addresses), "%s", addrs ? addrs : "");
		e.not_before = (time_t)sqlite3_column_int64(st, 8);
		e.not_after = (time_t)sqlite3_column_int64(st, 9);
		snprintf(e.source, sizeof(e.source), "%s", sqlite3_column_text(st, 10));
		r = cb(&e, arg);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ks->lock);
	return r > 0 ? 0 : r;
}

int
keystore_remove(struct keystore *ks, long long id)
{
	sqlite3_stmt *st = NULL;
	char detail[400] = "";
	int r;

	pthread_mutex_lock(&ks->lock);
	if ((r = ks_begin(ks)) != 0)
		goto out;
	r = SG_ERR_STORE;
	if (sqlite3_prepare_v2(ks->db,
	        "SELECT role, fingerprint, subject FROM certs WHERE id=?", -1, &st,
	        NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = SG_ERR_NOT_FOUND;
		goto done;
	}
	snprintf(detail, sizeof(detail), "id=%lld role=%s fingerprint=%s subject=%s", id,
	    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(ks->db, "DELETE FROM certs WHERE id=?", -1, &st, NULL) !=
	    SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto done;
	r = ks_audit(ks, "cert-remove", detail);
done:
	sqlite3_finalize(st);
	r = ks_finish(ks, r);
out:
	ks_cache_flush(ks);
	pthread_mutex_unlock(&ks->lock);
	return r;
}

int
keystore_harvest(struct keystore *ks, X509 *cert, STACK_OF(X509) * extra,
    const unsigned char *caps, size_t capslen, time_t now, struct ks_verdict *v)
{
	sqlite3_stmt *st = NULL;
	long long id;
	int r, i;

	pthread_mutex_lock(&ks->lock);
	if ((r = ks_validate_locked(ks, cert, NULL, KS_USE_VERIFY, now, extra, v)) != 0)
		goto out;
	if (v->refusal != KS_OK) {
		r = SG_ERR_CERT_UNUSABLE;
		goto out;
	}
	if ((r = ks_begin(ks)) != 0)
		goto out;
	r = ks_insert_cert(ks, cert, KS_ROLE_CORRESPONDENT, "harvested", &id);
	if (r == SG_ERR_EXISTS)
		r = 0; /* known already: refresh what it advertises */
	for (i = 0; r == 0 && v->chain != NULL && i < sk_X509_num(v->chain); i++) {
		long long cid;

		/* the intermediates of the validated path, for later use */
		r = ks_insert_cert(
		    ks, sk_X509_value(v->chain, i), KS_ROLE_INTERMEDIATE, "harvested", &cid);
		if (r == SG_ERR_EXISTS)
			r = 0;
	}
	if (r == 0 && caps != NULL) {
		r = SG_ERR_STORE;
		if (sqlite3_prepare_v2(ks->db,
		        "UPDATE certs SET smime_caps=?, caps_seen=? WHERE id=?", -1, &st,
		        NULL) == SQLITE_OK) {
			sqlite3_bind_blob(st, 1, caps, (int)capslen, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (long long)now);
			sqlite3_bind_int64(st, 3, id);
			if (sqlite3_step(st) == SQLITE_DONE)
				r = 0;
			sqlite3_finalize(st);
		}
	}
	r = ks_finish(ks, r);
	ks_cache_flush(ks);
out:
	pthread_mutex_unlock(&ks->lock);
	return r;
}

int
keystore_anchors(struct keystore *ks, STACK_OF(X509) * *out)
{
	int r;

	pthread_mutex_lock(&ks->lock);
	r = ks_load_certs(ks, KS_ROLE_ANCHOR, out);
	pthread_mutex_unlock(&ks->lock);
	return r;
}
