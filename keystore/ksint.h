/*
 * ksint.h - internals shared by the keystore's files.
 */
#ifndef KS_KSINT_H
#define KS_KSINT_H

#include <pthread.h>
#include <sqlite3.h>

#include "keystore.h"

struct ks_cache_entry {
	char address[320];
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* from the last successful validation */
	time_t validated_at; /* when it was last validated */
	time_t valid_until; /* that validation holds until then */
	struct ks_cache_entry *next;
};

/* A revocation answer kept in memory until it must be looked up again. */
struct ks_rev_cache {
	char fingerprint[65];
	struct ks_rev rev;
	time_t since, until;
	struct ks_rev_cache *next;
};

struct keystore {
	sqlite3 *db;
	pthread_mutex_t lock;
	char *master; /* master passphrase, locked in memory */
	size_t master_len;
	char actor[64];
	long long data_version;
	struct ks_cache_entry *cache;
	struct ks_rev_cache *revcache;
	STACK_OF(X509) * anchors; /* cached with the keys; NULL until needed */
	STACK_OF(X509) * inter;
	int allow_sha1;
	char *pkcs11_module; /* engine MODULE_PATH, or NULL */
	char *pkcs11_pin;
};

/* Starts a write transaction; ks_finish() commits when r is 0 and rolls
 * back otherwise, returning r (or SG_ERR_STORE if the commit failed). */
int ks_begin(struct keystore *ks) SG_WUR;
int ks_finish(struct keystore *ks, int r) SG_WUR;
/* ks_insert_cert() as an own certificate; an existing row becomes own. */
int ks_insert_own(struct keystore *ks, X509 *cert, const char *source, long long *id) SG_WUR;
/* Runs sql (no rows expected); SG_ERR_STORE on failure. Lock held. */
int ks_exec(struct keystore *ks, const char *sql);
/* Inserts cert with role/source; *id gets its row id (existing or new). */
int ks_insert_cert(struct keystore *ks, X509 *cert, enum ks_role role, const char *source,
    long long *id) SG_WUR;
/* Appends an audit record for a change. Lock held, inside a transaction. */
int ks_audit(struct keystore *ks, const char *action, const char *detail) SG_WUR;
/* Drops the signer cache. Lock held. */
void ks_cache_flush(struct keystore *ks);
/* Lowercase hex SHA-256 of the certificate's DER. */
void ks_fingerprint(X509 *cert, char out[65]);
/* Loads the anchors and CA certificates into the handle's cache if
 * needed (ks->anchors, ks->inter). Lock held. */
int ks_load_trust(struct keystore *ks) SG_WUR;
/* Loads all anchors (roles) as X509s. Lock held. */
int ks_load_certs(struct keystore *ks, enum ks_role role, STACK_OF(X509) * *out) SG_WUR;

/* keystore_validate() with the lock already held. */
int ks_validate_locked(struct keystore *ks, X509 *cert, const char *addr, enum ks_use use,
    time_t now, STACK_OF(X509) * extra, struct ks_verdict *v) SG_WUR;

/* HTTP GET (post == NULL) or POST; *out (caller frees) at most max bytes. */
int ks_http_fetch(const char *url, const void *post, size_t postlen, const char *ctype,
    long timeout, size_t max, unsigned char **out, size_t *outlen) SG_WUR;
/* Seconds since the epoch of an ASN1_TIME, 0 when unusable. */
time_t ks_asn1_time(const ASN1_TIME *t);

/* Loads the token key named by uri (the keystore's PKCS#11 settings). */
int ks_pkcs11_load(
    struct keystore *ks, const char *uri, EVP_PKEY **out, char *why, size_t whylen) SG_WUR;

#endif
