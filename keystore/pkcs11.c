/*
 * pkcs11.c - private keys that live in a PKCS#11 token (an HSM, or
 * SoftHSM2 in the tests), through OpenSSL's "pkcs11" engine from libp11
 * (Debian: libengine-pkcs11-openssl).  The keystore then stores only the
 * key's RFC 7512 URI; the key never leaves the token, and the signer
 * process signs by asking the token.
 *
 * The ENGINE API is deprecated in OpenSSL 3, but Debian 12 has no PKCS#11
 * provider; this file alone uses it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>

#include "ksint.h"
#include "util/secmem.h"

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static ENGINE *engine;

static ENGINE *
load_engine(const char *module, const char *pin, char *why, size_t whylen)
{
	ENGINE *e;

	ENGINE_load_dynamic();
	if ((e = ENGINE_by_id("pkcs11")) == NULL) {
		snprintf(why, whylen,
		    "OpenSSL has no pkcs11 engine "
		    "(apt-get install libengine-pkcs11-openssl)");
		return NULL;
	}
	if ((module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) ||
	    (pin && *pin && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) || !ENGINE_init(e)) {
		snprintf(why, whylen, "cannot start the pkcs11 engine with module %s",
		    module ? module : "(default)");
		ENGINE_free(e);
		return NULL;
	}
	ENGINE_free(e); /* the functional reference from ENGINE_init remains */
	return e;
}

int
ks_pkcs11_load(struct keystore *ks, const char *uri, EVP_PKEY **out, char *why, size_t whylen)
{
	int r = 0;

	*out = NULL;
	pthread_mutex_lock(&engine_lock);
	if (engine == NULL &&
	    (engine = load_engine(ks->pkcs11_module, ks->pkcs11_pin, why, whylen)) == NULL)
		r = SG_ERR_UNSUPPORTED;
	else if ((*out = ENGINE_load_private_key(engine, uri, NULL, NULL)) == NULL) {
		snprintf(why, whylen, "the PKCS#11 token has no usable key at %.200s", uri);
		r = SG_ERR_NOT_FOUND;
	}
	pthread_mutex_unlock(&engine_lock);
	ERR_clear_error();
	return r;
}

int
keystore_set_pkcs11(struct keystore *ks, const char *module, const char *pin)
{
	free(ks->pkcs11_module);
	if (ks->pkcs11_pin)
		sg_freezero(ks->pkcs11_pin, strlen(ks->pkcs11_pin));
	ks->pkcs11_module = module ? strdup(module) : NULL;
	ks->pkcs11_pin = pin ? strdup(pin) : NULL;
	if ((module && ks->pkcs11_module == NULL) || (pin && ks->pkcs11_pin == NULL))
		return SG_ERR_NOMEM;
	return 0;
}

int
keystore_import_pkcs11(
    struct keystore *ks, X509 *cert, const char *uri, char *why, size_t whylen)
{
	EVP_PKEY *key = NULL;
	sqlite3_stmt *st = NULL;
	long long id;
	int r;

	if (strncmp(uri, "pkcs11:", 7) != 0) {
		snprintf(why, whylen, "not a PKCS#11 URI (RFC 7512): %.200s", uri);
		return SG_ERR_INVALID_ARG;
	}
	if ((r = ks_pkcs11_load(ks, uri, &key, why, whylen)) != 0)
		return r;
	if (!X509_check_private_key(cert, key)) {
		ERR_clear_error();
		EVP_PKEY_free(key);
		snprintf(why, whylen, "the key in the token does not match the certificate");
		return SG_ERR_CERT_UNUSABLE;
	}
	EVP_PKEY_free(key);
	pthread_mutex_lock(&ks->lock);
	if ((r = ks_begin(ks)) != 0)
		goto unlock;
	r = ks_insert_own(ks, cert, "pkcs11", &id);
	if (r == 0) {
		r = SG_ERR_STORE;
		if (sqlite3_prepare_v2(ks->db,
		        "INSERT OR REPLACE INTO keys(cert_id, format, data, added)"
		        " VALUES (?, 'pkcs11-uri', ?, strftime('%s','now'))",
		        -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_text(st, 2, uri, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_DONE)
				r = ks_audit(ks, "key-add", "private key in a PKCS#11 token");
			sqlite3_finalize(st);
		}
	}
	r = ks_finish(ks, r);
unlock:
	ks_cache_flush(ks);
	pthread_mutex_unlock(&ks->lock);
	return r;
}
