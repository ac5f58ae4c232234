/*
 * db.c - the keystore database: opening, schema versions, the audit
 * chain, and certificate rows.
 *
 * The schema is versioned in meta.schema_version and upgraded by the
 * ordered migrations below, each in one transaction; a database newer
 * than this program is refused.  SQLite runs in WAL mode with a busy
 * timeout so the milter and segelctl can use it at once.
 *
 * SECURITY: the database file must be mode 0600 (checked, with its
 * directories, by sg_secfile_check); it holds only encrypted keys.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ksint.h"
#include "util/secfile.h"
#include "util/secmem.h"

static const char *const migrations[] = {
    /* 1: certificates, keys, audit */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE certs("
    " id INTEGER PRIMARY KEY,"
    " fingerprint TEXT NOT NULL UNIQUE,"
    " der BLOB NOT NULL,"
    " subject TEXT NOT NULL, issuer TEXT NOT NULL, serial TEXT NOT NULL,"
    " not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('anchor','intermediate','own','correspondent')),"
    " source TEXT NOT NULL,"
    " added INTEGER NOT NULL);"
    "CREATE TABLE cert_addresses("
    " cert_id INTEGER NOT NULL REFERENCES certs(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL, PRIMARY KEY (cert_id, address));"
    "CREATE INDEX cert_addresses_address ON cert_addresses(address);"
    "CREATE TABLE keys("
    " id INTEGER PRIMARY KEY,"
    " cert_id INTEGER NOT NULL UNIQUE REFERENCES certs(id) ON DELETE CASCADE,"
    " format TEXT NOT NULL CHECK (format IN ('pkcs8-scrypt-aes256')),"
    " data BLOB NOT NULL,"
    " added INTEGER NOT NULL);"
    "CREATE TABLE audit("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    " detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);",
    /* 2: revocation status with its freshness */
    "CREATE TABLE crls("
    " id INTEGER PRIMARY KEY,"
    " issuer TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " der BLOB NOT NULL,"
    " this_update INTEGER NOT NULL, next_update INTEGER NOT NULL,"
    " fetched INTEGER NOT NULL,"
    " UNIQUE (issuer, url));"
    "CREATE TABLE ocsp_responses("
    " cert_fingerprint TEXT PRIMARY KEY,"
    " status TEXT NOT NULL CHECK (status IN ('good','revoked','unknown')),"
    " revoked_at INTEGER,"
    " this_update INTEGER NOT NULL, next_update INTEGER NOT NULL,"
    " der BLOB NOT NULL,"
    " fetched INTEGER NOT NULL);",
    /* 3: keys may live in a PKCS#11 token; usage fields for reports */
    "CREATE TABLE keys_new("
    " id INTEGER PRIMARY KEY,"
    " cert_id INTEGER NOT NULL UNIQUE REFERENCES certs(id) ON DELETE CASCADE,"
    " format TEXT NOT NULL CHECK (format IN ('pkcs8-scrypt-aes256','pkcs11-uri')),"
    " data BLOB NOT NULL,"
    " added INTEGER NOT NULL);"
    "INSERT INTO keys_new SELECT id, cert_id, format, data, added FROM keys;"
    "DROP TABLE keys;"
    "ALTER TABLE keys_new RENAME TO keys;"
    "ALTER TABLE certs ADD COLUMN key_usage TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE certs ADD COLUMN eku TEXT NOT NULL DEFAULT '';",
    /* 4: what a harvested correspondent advertised (SMIMECapabilities DER) */
    ("ALTER TABLE certs ADD COLUMN smime_caps BLOB;"
     "ALTER TABLE certs ADD COLUMN caps_seen INTEGER;"),
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int
ks_exec(struct keystore *ks, const char *sql)
{
	return sqlite3_exec(ks->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : SG_ERR_STORE;
}

static int
schema_version(struct keystore *ks)
{
	sqlite3_stmt *st;
	int v = 0;

	if (sqlite3_prepare_v2(ks->db, "SELECT value FROM meta WHERE key='schema_version'", -1,
	        &st, NULL) != SQLITE_OK)
		return 0; /* no meta table yet */
	if (sqlite3_step(st) == SQLITE_ROW)
		v = atoi((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int
migrate(struct keystore *ks, char *why, size_t whylen)
{
	char sql[128];
	int v, r;

	if (ks_exec(ks, "BEGIN IMMEDIATE") != 0)
		goto fail;
	v = schema_version(ks);
	if (v > SCHEMA_VERSION) {
		(void)ks_exec(ks, "ROLLBACK");
		snprintf(why, whylen, "keystore schema %d is newer than this program (%d)", v,
		    SCHEMA_VERSION);
		return SG_ERR_STORE;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (ks_exec(ks, migrations[v]) != 0)
			goto rollback;
		snprintf(sql, sizeof(sql),
		    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '%d')",
		    v + 1);
		if (ks_exec(ks, sql) != 0)
			goto rollback;
	}
	if ((r = ks_exec(ks, "COMMIT")) == 0)
		return 0;
rollback:
	(void)ks_exec(ks, "ROLLBACK");
fail:
	snprintf(why, whylen, "keystore schema upgrade failed: %s", sqlite3_errmsg(ks->db));
	return SG_ERR_STORE;
}

int
keystore_open(const char *path, const char *master, int flags, struct keystore **out, char *why,
    size_t whylen)
{
	struct keystore *ks;
	int r, fd, oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;

	*out = NULL;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&ks->lock, NULL);
	snprintf(ks->actor, sizeof(ks->actor), "uid:%ld", (long)geteuid());
	if ((flags & KS_OPEN_CREATE) && access(path, F_OK) != 0) {
		if ((fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600)) < 0) {
			snprintf(why, whylen, "cannot create %s: %m", path);
			r = SG_ERR_SYSTEM;
			goto fail;
		}
		close(fd);
	}
	if ((r = sg_secfile_check(path, why, whylen)) != 0)
		goto fail;
	if (sqlite3_open_v2(path, &ks->db, oflags, NULL) != SQLITE_OK) {
		snprintf(why, whylen, "%s: %s", path,
		    ks->db ? sqlite3_errmsg(ks->db) : "open failed");
		r = SG_ERR_STORE;
		goto fail;
	}
	sqlite3_busy_timeout(ks->db, 10000);
	if (ks_exec(ks, "PRAGMA journal_mode=WAL") != 0 ||
	    ks_exec(ks, "PRAGMA foreign_keys=ON") != 0 ||
	    ks_exec(ks, "PRAGMA synchronous=FULL") != 0) {
		snprintf(why, whylen, "%s: %s (is it a Segel keystore?)", path,
		    sqlite3_errmsg(ks->db));
		r = SG_ERR_STORE;
		goto fail;
	}
	if ((r = migrate(ks, why, whylen)) != 0)
		goto fail;
	if (master != NULL && !(flags & KS_OPEN_NOKEYS)) {
		ks->master_len = strlen(master);
		if ((ks->master = strdup(master)) == NULL) {
			r = SG_ERR_NOMEM;
			goto fail;
		}
		sg_secmem_lock(ks->master, ks->master_len);
	}
	*out = ks;
	return 0;
fail:
	keystore_close(ks);
	return r;
}

void
keystore_close(struct keystore *ks)
{
	if (ks == NULL)
		return;
	ks_cache_flush(ks);
	if (ks->db)
		sqlite3_close(ks->db);
	if (ks->master)
		sg_freezero(ks->master, ks->master_len);
	free(ks->pkcs11_module);
	if (ks->pkcs11_pin)
		sg_freezero(ks->pkcs11_pin, strlen(ks->pkcs11_pin));
	pthread_mutex_destroy(&ks->lock);
	free(ks);
}

void
keystore_set_actor(struct keystore *ks, const char *actor)
{
	snprintf(ks->actor, sizeof(ks->actor), "%s", actor);
}

const char *
keystore_role_name(enum ks_role r)
{
	static const char *const names[] = {"anchor", "intermediate", "own", "correspondent"};

	return names[r];
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = h[p[i] >> 4];
		out[2 * i + 1] = h[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
ks_fingerprint(X509 *cert, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32)
		memset(md, 0, sizeof(md));
	hex(md, 32, out);
}

time_t
ks_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static void
name_text(const X509_NAME *n, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int k;

	out[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
	k = BIO_read(b, out, (int)len - 1);
	out[k > 0 ? k : 0] = '\0';
	BIO_free(b);
}

/* keyUsage and extendedKeyUsage as text, for reports and lookups. */
static int
store_usage(struct keystore *ks, long long id, X509 *cert)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} kus[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"},
	    {KU_NON_REPUDIATION, "nonRepudiation"}, {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	    {KU_KEY_AGREEMENT, "keyAgreement"}, {KU_KEY_CERT_SIGN, "keyCertSign"},
	    {KU_CRL_SIGN, "cRLSign"}};
	static const struct {
		uint32_t bit;
		const char *name;
	} ekus[] = {{XKU_SMIME, "emailProtection"}, {XKU_SSL_SERVER, "serverAuth"},
	    {XKU_SSL_CLIENT, "clientAuth"}, {XKU_CODE_SIGN, "codeSigning"},
	    {XKU_OCSP_SIGN, "OCSPSigning"}, {XKU_ANYEKU, "anyExtendedKeyUsage"}};
	char ku[160] = "", eku[160] = "";
	uint32_t k = X509_get_key_usage(cert), e = X509_get_extended_key_usage(cert);
	sqlite3_stmt *st;
	size_t i;
	int r;

	for (i = 0; k != UINT32_MAX && i < sizeof(kus) / sizeof(kus[0]); i++)
		if (k & kus[i].bit)
			snprintf(ku + strlen(ku), sizeof(ku) - strlen(ku), "%s%s",
			    ku[0] ? "," : "", kus[i].name);
	for (i = 0; (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) &&
	     i < sizeof(ekus) / sizeof(ekus[0]);
	     i++)
		if (e & ekus[i].bit)
			snprintf(eku + strlen(eku), sizeof(eku) - strlen(eku), "%s%s",
			    eku[0] ? "," : "", ekus[i].name);
	if (sqlite3_prepare_v2(ks->db, "UPDATE certs SET key_usage=?, eku=? WHERE id=?", -1,
	        &st, NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	sqlite3_bind_text(st, 1, ku, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, eku, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : SG_ERR_STORE;
	sqlite3_finalize(st);
	return r;
}

int
ks_insert_cert(
    struct keystore *ks, X509 *cert, enum ks_role role, const char *source, long long *id)
{
	sqlite3_stmt *st = NULL;
	unsigned char *der = NULL;
	char fp[65], subject[256], issuer[256], serial[80] = "", **addrs = NULL;
	size_t naddrs = 0, i;
	BIGNUM *bn;
	char *sh;
	int derlen, r = SG_ERR_STORE;

	*id = 0;
	ks_fingerprint(cert, fp);
	if (sqlite3_prepare_v2(
	        ks->db, "SELECT id FROM certs WHERE fingerprint=?", -1, &st, NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return SG_ERR_EXISTS;
	}
	sqlite3_finalize(st);
	st = NULL;
	name_text(X509_get_subject_name(cert), subject, sizeof(subject));
	name_text(X509_get_issuer_name(cert), issuer, sizeof(issuer));
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) != NULL &&
	    (sh = BN_bn2hex(bn)) != NULL) {
		snprintf(serial, sizeof(serial), "%s", sh);
		OPENSSL_free(sh);
	}
	BN_free(bn);
	if ((derlen = i2d_X509(cert, &der)) <= 0)
		return SG_ERR_CRYPTO;
	if (sqlite3_prepare_v2(ks->db,
	        "INSERT INTO certs(fingerprint, der, subject, issuer, serial, not_before,"
	        " not_after, role, source, added) VALUES (?,?,?,?,?,?,?,?,?,?)",
	        -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, der, derlen, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, issuer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (long long)ks_asn1_time(X509_get0_notBefore(cert)));
	sqlite3_bind_int64(st, 7, (long long)ks_asn1_time(X509_get0_notAfter(cert)));
	sqlite3_bind_text(st, 8, keystore_role_name(role), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (long long)time(NULL));
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	*id = sqlite3_last_insert_rowid(ks->db);
	sqlite3_finalize(st);
	st = NULL;
	if ((r = store_usage(ks, *id, cert)) != 0)
		goto out;
	r = SG_ERR_STORE;
	sqlite3_finalize(st);
	st = NULL;
	if ((r = sm_cert_addresses(cert, &addrs, &naddrs)) != 0)
		goto out;
	r = SG_ERR_STORE;
	for (i = 0; i < naddrs; i++) {
		if (sqlite3_prepare_v2(ks->db,
		        "INSERT OR IGNORE INTO cert_addresses(cert_id, address) VALUES (?,?)",
		        -1, &st, NULL) != SQLITE_OK)
			goto out;
		sqlite3_bind_int64(st, 1, *id);
		sqlite3_bind_text(st, 2, addrs[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_finalize(st);
		st = NULL;
	}
	{
		char detail[700];

		snprintf(detail, sizeof(detail), "role=%s fingerprint=%s subject=%s",
		    keystore_role_name(role), fp, subject);
		r = ks_audit(ks, "cert-add", detail);
	}
out:
	sqlite3_finalize(st);
	sm_addr_list_free(addrs, naddrs);
	OPENSSL_free(der);
	return r;
}

int
ks_load_certs(struct keystore *ks, enum ks_role role, STACK_OF(X509) * *out)
{
	sqlite3_stmt *st;
	STACK_OF(X509) * sk;
	int r = 0;

	*out = NULL;
	if ((sk = sk_X509_new_null()) == NULL)
		return SG_ERR_NOMEM;
	if (sqlite3_prepare_v2(ks->db, "SELECT der FROM certs WHERE role=?", -1, &st, NULL) !=
	    SQLITE_OK) {
		sk_X509_free(sk);
		return SG_ERR_STORE;
	}
	sqlite3_bind_text(st, 1, keystore_role_name(role), -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_blob(st, 0);
		X509 *x = d2i_X509(NULL, &p, sqlite3_column_bytes(st, 0));

		if (x == NULL || !sk_X509_push(sk, x)) {
			X509_free(x);
			r = SG_ERR_STORE;
			break;
		}
	}
	sqlite3_finalize(st);
	if (r != 0) {
		sk_X509_pop_free(sk, X509_free);
		return r;
	}
	*out = sk;
	return 0;
}

int
ks_load_trust(struct keystore *ks)
{
	int r;

	if (ks->anchors == NULL && (r = ks_load_certs(ks, KS_ROLE_ANCHOR, &ks->anchors)) != 0)
		return r;
	if (ks->inter == NULL && (r = ks_load_certs(ks, KS_ROLE_INTERMEDIATE, &ks->inter)) != 0)
		return r;
	return 0;
}

int
ks_begin(struct keystore *ks)
{
	return ks_exec(ks, "BEGIN IMMEDIATE");
}

int
ks_finish(struct keystore *ks, int r)
{
	if (r == 0 && ks_exec(ks, "COMMIT") == 0)
		return 0;
	(void)ks_exec(ks, "ROLLBACK");
	return r ? r : SG_ERR_STORE;
}

int
ks_insert_own(struct keystore *ks, X509 *cert, const char *source, long long *id)
{
	char sql[96];
	int r = ks_insert_cert(ks, cert, KS_ROLE_OWN, source, id);

	if (r != SG_ERR_EXISTS)
		return r;
	/* re-import: make sure the row is "own"; the caller replaces the key */
	snprintf(sql, sizeof(sql), "UPDATE certs SET role='own' WHERE id=%lld", *id);
	return ks_exec(ks, sql);
}
