/*
 * keystore_test.c - keystore/: opening and permissions, trust anchors,
 * PKCS#12 import, signer lookup with its checks, listing, the audit
 * chain, and cache invalidation between handles.
 *
 * Every case works on a fresh database in a private temporary directory.
 * Validity checks use fixed times (2026-06-01, 2036-01-01, 2024-06-01)
 * against the fixed certificate dates of tests/pki/gen-pki.sh.
 * Needs SEGEL_PKI.
 */
#include <sqlite3.h>

#include "testutil.h"

#include <openssl/err.h>
#include <openssl/pkcs12.h>

#include "keystore/keystore.h"

#define MASTER "unit-test master passphrase"
#define TU_NOW_2024_06_01 ((time_t)1717200000)

static char tmpdir[64];
static char dbpath[128];

static int
setup(void **state)
{
	tu_mkdtemp(tmpdir, sizeof(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/ks.db", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	tu_rmtree(tmpdir);
	return 0;
}

static struct keystore *
open_ks(const char *path, const char *master, int flags)
{
	struct keystore *ks = NULL;
	char why[512] = "";
	int r = keystore_open(path, master, flags, &ks, why, sizeof(why));

	if (r != 0)
		fail_msg("keystore_open %s: %d (%s): %s", path, r, sg_strerror(r), why);
	assert_non_null(ks);
	return ks;
}

static struct keystore *
create_ks(void)
{
	return open_ks(dbpath, MASTER, KS_OPEN_CREATE);
}

static int
add_anchor_file(struct keystore *ks, const char *name)
{
	X509 *x = tu_load_cert(name);
	int r = keystore_add_anchor(ks, x);

	X509_free(x);
	return r;
}

/* Imports NAME.p12 with NAME.pass, or with pass when given. */
static int
import_p12(struct keystore *ks, const char *name, const char *pass)
{
	char file[64];
	unsigned char *der;
	char *right = NULL, *subject = NULL;
	size_t len;
	int r;

	snprintf(file, sizeof(file), "%s.p12", name);
	der = tu_read_pki(file, &len);
	if (pass == NULL) {
		snprintf(file, sizeof(file), "%s.pass", name);
		pass = right = tu_read_pki_line(file);
	}
	r = keystore_import_p12(ks, der, len, pass, &subject);
	if (r == 0) {
		assert_non_null(subject);
		assert_true(subject[0] != '\0');
	} else {
		assert_null(subject);
	}
	free(subject);
	free(right);
	free(der);
	return r;
}

/* A keystore with the demo root as anchor and alice's identity. */
static struct keystore *
alice_ks(void)
{
	struct keystore *ks = create_ks();

	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	assert_int_equal(import_p12(ks, "alice", NULL), 0);
	return ks;
}

static int
get_signer(struct keystore *ks, const char *addr, time_t now, char *why, size_t whylen)
{
	struct ks_signer *s = (struct ks_signer *)1;
	int r = keystore_get_signer(ks, addr, now, &s, why, whylen);

	if (r == 0) {
		assert_non_null(s);
		keystore_signer_free(s);
	} else {
		assert_null(s);
		assert_true(why[0] != '\0'); /* every refusal says why */
	}
	return r;
}

/* Runs one SQL statement on the database with a separate connection. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static long long
raw_count(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* --- opening ------------------------------------------------------------ */

static void
test_create_and_reopen(void **state)
{
	struct keystore *ks;
	struct stat st;
	long long version;
	int i;

	ks = create_ks();
	keystore_close(ks);
	assert_int_equal(stat(dbpath, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	version = raw_count("SELECT value FROM meta WHERE key='schema_version'");
	assert_true(version >= 1);
	/* reopening (with or without CREATE) runs no migration twice */
	for (i = 0; i < 3; i++) {
		ks = open_ks(dbpath, MASTER, i == 0 ? KS_OPEN_CREATE : 0);
		keystore_close(ks);
	}
	assert_int_equal(
	    raw_count("SELECT value FROM meta WHERE key='schema_version'"), version);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM sqlite_master WHERE name='certs'"), 1);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM audit"), 0);
	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	keystore_close(NULL);
}

static void
test_open_errors(void **state)
{
	struct keystore *ks = (struct keystore *)1;
	char why[512] = "", path[160];
	int r;

	/* missing, without CREATE */
	r = keystore_open(dbpath, MASTER, 0, &ks, why, sizeof(why));
	assert_true(r < 0);
	assert_null(ks);
	assert_non_null(strstr(why, dbpath));

	/* not a database */
	snprintf(path, sizeof(path), "%s/garbage.db", tmpdir);
	tu_write_file(
	    path, "this is not an SQLite database, not even close.........\n", 56, 0600);
	why[0] = '\0';
	r = keystore_open(path, MASTER, 0, &ks, why, sizeof(why));
	assert_int_equal(r, SG_ERR_STORE);
	assert_null(ks);
	assert_non_null(strstr(why, path));

	/* a schema from a newer program */
	keystore_close(create_ks());
	raw_exec("UPDATE meta SET value='999' WHERE key='schema_version'");
	why[0] = '\0';
	r = keystore_open(dbpath, MASTER, 0, &ks, why, sizeof(why));
	assert_int_equal(r, SG_ERR_STORE);
	assert_null(ks);
	assert_non_null(strstr(why, "newer"));
}

static void
test_unsafe_file_mode(void **state)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0660, 0700};
	size_t i;

	keystore_close(create_ks());
	for (i = 0; i < TU_ARRAY_LEN(modes); i++) {
		struct keystore *ks = (struct keystore *)1;
		char why[512] = "";
		int r;

		assert_int_equal(chmod(dbpath, modes[i]), 0);
		r = keystore_open(dbpath, MASTER, 0, &ks, why, sizeof(why));
		if (modes[i] == 0700) {
			/* no group/other bits: accepted */
			assert_int_equal(r, 0);
			keystore_close(ks);
			continue;
		}
		if (r != SG_ERR_UNSAFE_PERM)
			fail_msg("mode %04o: got %d want %d", (unsigned)modes[i], r,
			    SG_ERR_UNSAFE_PERM);
		assert_null(ks);
		assert_non_null(strstr(why, dbpath));
	}
}

static void
test_unsafe_directory(void **state)
{
	static const struct {
		mode_t mode;
		int want;
	} cases[] = {
	    {0777, SG_ERR_UNSAFE_PERM}, /* world-writable, not sticky */
	    {0770, SG_ERR_UNSAFE_PERM}, /* group-writable */
	    {01777, 0}, /* sticky, like /tmp */
	    {0755, 0},
	};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		char dir[160], path[200], why[512] = "";
		struct keystore *ks = (struct keystore *)1;
		int r, flags;

		snprintf(dir, sizeof(dir), "%s/d%zu", tmpdir, i);
		snprintf(path, sizeof(path), "%s/ks.db", dir);
		assert_int_equal(mkdir(dir, 0700), 0);
		/* an existing database, then a new one created in place */
		for (flags = 0; flags <= 1; flags++) {
			if (flags == 0) {
				keystore_close(open_ks(path, MASTER, KS_OPEN_CREATE));
			} else {
				(void)remove(path);
			}
			assert_int_equal(chmod(dir, cases[i].mode), 0);
			r = keystore_open(
			    path, MASTER, flags ? KS_OPEN_CREATE : 0, &ks, why, sizeof(why));
			assert_int_equal(chmod(dir, 0700), 0);
			if (r != cases[i].want)
				fail_msg("dir mode %04o, %s: got %d (%s) want %d",
				    (unsigned)cases[i].mode, flags ? "create" : "existing", r,
				    why, cases[i].want);
			if (r == 0) {
				keystore_close(ks);
			} else {
				assert_null(ks);
				assert_non_null(strstr(why, dir));
			}
		}
	}
}

/* --- anchors and imports ------------------------------------------------ */

static void
test_add_anchor(void **state)
{
	struct keystore *ks = create_ks();

	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	assert_int_equal(add_anchor_file(ks, "ca.pem"), SG_ERR_EXISTS);
	assert_int_equal(add_anchor_file(ks, "other-ca.pem"), 0);
	/* not self-signed CAs */
	assert_int_equal(add_anchor_file(ks, "alice.pem"), SG_ERR_CERT_UNUSABLE);
	assert_int_equal(add_anchor_file(ks, "bob.pem"), SG_ERR_CERT_UNUSABLE);
	assert_int_equal(add_anchor_file(ks, "sub-ca.pem"), SG_ERR_CERT_UNUSABLE);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs WHERE role='anchor'"), 2);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs"), 2);
	keystore_close(ks);
}

static void
test_import_p12(void **state)
{
	struct keystore *ks = create_ks();
	unsigned char garbage[64];

	assert_int_equal(import_p12(ks, "alice", "not the passphrase"), SG_ERR_BAD_PASSPHRASE);
	assert_int_equal(import_p12(ks, "alice", ""), SG_ERR_BAD_PASSPHRASE);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs"), 0);
	assert_int_equal(import_p12(ks, "alice", NULL), 0);
	/* the key is stored encrypted, once */
	assert_int_equal(raw_count("SELECT COUNT(*) FROM keys"), 1);
	assert_int_equal(
	    raw_count("SELECT COUNT(*) FROM keys WHERE format='pkcs8-scrypt-aes256'"), 1);
	/* importing again replaces the key, adds no certificate */
	assert_int_equal(import_p12(ks, "alice", NULL), 0);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM keys"), 1);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs WHERE role='own'"), 1);
	/* the intermediate came along; the root in the file did not become trusted */
	assert_true(raw_count("SELECT COUNT(*) FROM certs WHERE role='intermediate'") >= 1);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs WHERE role='anchor'"), 0);
	memset(garbage, 0x30, sizeof(garbage));
	assert_int_equal(
	    keystore_import_p12(ks, garbage, sizeof(garbage), "x", NULL), SG_ERR_MALFORMED);
	keystore_close(ks);
}

/* A PKCS#12 cut at every offset is refused, never half-imported. */
static void
test_import_p12_truncated(void **state)
{
	struct keystore *ks = create_ks();
	char *pass = tu_read_pki_line("bob.pass");
	size_t len, n;
	unsigned char *der = tu_read_pki("bob.p12", &len);

	for (n = 0; n < len; n++) {
		int r = keystore_import_p12(ks, der, n, pass, NULL);

		if (r != SG_ERR_MALFORMED && r != SG_ERR_BAD_PASSPHRASE)
			fail_msg("cut at %zu of %zu: got %d", n, len, r);
	}
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs"), 0);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM audit"), 0);
	free(der);
	free(pass);
	keystore_close(ks);
}

/*
 * The usual order is `trust add` first, but an administrator may import
 * an identity first: the root that came inside the PKCS#12 must still
 * become an anchor when it is added as one.
 */
static void
test_anchor_after_import(void **state)
{
	struct keystore *ks = create_ks();
	char why[512] = "";
	int r;

	assert_int_equal(import_p12(ks, "alice", NULL), 0);
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_CERT_UNUSABLE);
	r = add_anchor_file(ks, "ca.pem");
	if (r == 0)
		r = get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why));
	keystore_close(ks);
	if (r != 0)
		fail_msg("trust add after import, then get_signer: got %d (%s) %s, want 0", r,
		    sg_strerror(r), why);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs WHERE role='anchor'"), 1);
}

/* --- signers ------------------------------------------------------------ */

static void
test_get_signer(void **state)
{
	struct keystore *ks = alice_ks();
	struct ks_signer *s = NULL;
	X509 *alice = tu_load_cert("alice.pem");
	X509 *subca = tu_load_cert("sub-ca.pem");
	char why[512] = "";
	int i, r;

	for (i = 0; i < 2; i++) { /* the second lookup comes from the cache */
		r = keystore_get_signer(
		    ks, "alice@kota.go.id", TU_NOW_2026_06_01, &s, why, sizeof(why));
		if (r != 0)
			fail_msg("get_signer: %d: %s", r, why);
		assert_string_equal(s->address, "alice@kota.go.id");
		assert_int_equal(X509_cmp(s->s.cert, alice), 0);
		assert_int_equal(X509_check_private_key(s->s.cert, s->s.key), 1);
		assert_non_null(s->s.chain);
		assert_int_equal(sk_X509_num(s->s.chain), 1); /* the intermediate, no root */
		assert_int_equal(X509_cmp(sk_X509_value(s->s.chain, 0), subca), 0);
		keystore_signer_free(s);
		s = NULL;
	}
	keystore_signer_free(NULL);

	/* time is what the caller says it is */
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2036_01_01, why, sizeof(why)),
	    SG_ERR_CERT_UNUSABLE);
	assert_non_null(strstr(why, "expired"));
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2024_06_01, why, sizeof(why)),
	    SG_ERR_CERT_UNUSABLE);
	assert_non_null(strstr(why, "not yet valid"));
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)), 0);

	/* unknown addresses */
	assert_int_equal(
	    get_signer(ks, "nobody@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_NOT_FOUND);
	assert_non_null(strstr(why, "nobody@kota.go.id"));
	assert_int_equal(
	    get_signer(ks, "", TU_NOW_2026_06_01, why, sizeof(why)), SG_ERR_NOT_FOUND);
	X509_free(alice);
	X509_free(subca);
	keystore_close(ks);
}

static void
test_get_signer_ecdsa(void **state)
{
	struct keystore *ks = create_ks();
	char why[512] = "";

	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	assert_int_equal(import_p12(ks, "bob", NULL), 0);
	if (get_signer(ks, "bob@dinas.kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)) != 0)
		fail_msg("bob: %s", why);
	keystore_close(ks);
}

static int
contains_any(const char *s, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strstr(s, *words) != NULL)
			return 1;
	return 0;
}

/* Identities that import fine but must never sign. */
static void
test_get_signer_refusals(void **state)
{
	static const char *const expired_w[] = {"expired", NULL};
	static const char *const notyet_w[] = {"not yet valid", NULL};
	static const char *const chain_w[] = {"chain", "issuer", "anchor", NULL};
	static const char *const eku_w[] = {"emailProtection", "key usage", "purpose", NULL};
	static const char *const weak_w[] = {"2048", "bits", "key", NULL};
	static const struct {
		const char *name, *addr;
		int want;
		const char *const *words;
	} cases[] = {
	    {"expired", "expired@kota.go.id", SG_ERR_CERT_UNUSABLE, expired_w},
	    {"notyet", "notyet@kota.go.id", SG_ERR_CERT_UNUSABLE, notyet_w},
	    {"nosan", "nosan@kota.go.id", SG_ERR_NOT_FOUND, NULL},
	    {"untrusted", "untrusted@kota.go.id", SG_ERR_CERT_UNUSABLE, chain_w},
	    {"serveronly", "serveronly@kota.go.id", SG_ERR_CERT_UNUSABLE, eku_w},
	    {"rsa1024", "rsa1024@kota.go.id", SG_ERR_CERT_UNUSABLE, weak_w},
	};
	struct keystore *ks = create_ks();
	size_t i;

	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		char why[512] = "";
		int r;

		assert_int_equal(import_p12(ks, cases[i].name, NULL), 0);
		r = get_signer(ks, cases[i].addr, TU_NOW_2026_06_01, why, sizeof(why));
		if (r != cases[i].want)
			fail_msg(
			    "%s: got %d (%s) want %d", cases[i].name, r, why, cases[i].want);
		if (cases[i].words != NULL && !contains_any(why, cases[i].words))
			fail_msg("%s: reason \"%s\" does not say why", cases[i].name, why);
	}
	keystore_close(ks);
}

/* Without the right master passphrase the stored key cannot be used. */
static void
test_master_passphrase(void **state)
{
	struct keystore *ks = alice_ks();
	char why[512] = "";

	keystore_close(ks);
	ks = open_ks(dbpath, "a different master passphrase", 0);
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_BAD_PASSPHRASE);
	assert_non_null(strstr(why, "master passphrase"));
	keystore_close(ks);

	ks = open_ks(dbpath, NULL, KS_OPEN_NOKEYS);
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_BAD_PASSPHRASE);
	/* nothing can be imported without the master passphrase either */
	assert_int_equal(import_p12(ks, "bob", NULL), SG_ERR_BAD_PASSPHRASE);
	keystore_close(ks);

	ks = open_ks(dbpath, MASTER, 0);
	assert_int_equal(
	    get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)), 0);
	keystore_close(ks);
}

/* --- two handles: changes are seen without reopening -------------------- */

static void
test_two_handles(void **state)
{
	struct keystore *a = create_ks(), *b = open_ks(dbpath, MASTER, 0);
	char why[512] = "";

	assert_int_equal(get_signer(b, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_NOT_FOUND);
	assert_int_equal(add_anchor_file(a, "ca.pem"), 0);
	assert_int_equal(import_p12(a, "alice", NULL), 0);
	if (get_signer(b, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)) != 0)
		fail_msg("handle B does not see the import of handle A: %s", why);

	/* B has alice and the anchors cached now; another connection removes the
	 * trust anchor: B must notice (data_version) and refuse */
	raw_exec("DELETE FROM certs WHERE role='anchor'");
	assert_int_equal(get_signer(b, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_CERT_UNUSABLE);
	assert_int_equal(get_signer(a, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_CERT_UNUSABLE);

	/* and the key itself */
	assert_int_equal(add_anchor_file(a, "ca.pem"), 0);
	assert_int_equal(
	    get_signer(b, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)), 0);
	raw_exec("DELETE FROM keys");
	assert_int_equal(get_signer(b, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why)),
	    SG_ERR_NOT_FOUND);
	keystore_close(a);
	keystore_close(b);
}

/* A PKCS#12 holding only alice's key and certificate (no chain). */
static unsigned char *
alice_p12_without_chain(size_t *len)
{
	EVP_PKEY *key = tu_load_key("alice.key");
	X509 *cert = tu_load_cert("alice.pem");
	PKCS12 *p12 = PKCS12_create("pw", "Alice", key, cert, NULL, 0, 0, 0, 0, 0);
	unsigned char *der = NULL, *copy;
	int n;

	assert_non_null(p12);
	n = i2d_PKCS12(p12, &der);
	assert_true(n > 0);
	copy = malloc((size_t)n);
	assert_non_null(copy);
	memcpy(copy, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	PKCS12_free(p12);
	X509_free(cert);
	EVP_PKEY_free(key);
	return copy;
}

/*
 * On one handle: a missing intermediate is added with keystore_add_cert;
 * the next lookup must use it (the handle's own change does not move
 * data_version, so the handle must drop its cached CA lists itself).
 */
static void
test_same_handle_sees_new_intermediate(void **state)
{
	struct keystore *ks = create_ks();
	X509 *subca = tu_load_cert("sub-ca.pem");
	unsigned char *der;
	size_t len;
	char why[512] = "";
	int r;

	der = alice_p12_without_chain(&len);
	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	assert_int_equal(keystore_import_p12(ks, der, len, "pw", NULL), 0);
	r = get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why));
	assert_int_equal(r, SG_ERR_CERT_UNUSABLE); /* no issuer yet */
	assert_int_equal(keystore_add_cert(ks, subca, "unit-test"), 0);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM certs WHERE role='intermediate'"), 1);
	r = get_signer(ks, "alice@kota.go.id", TU_NOW_2026_06_01, why, sizeof(why));
	if (r != 0)
		fail_msg("intermediate added on this handle is not used: %d: %s", r, why);
	free(der);
	X509_free(subca);
	keystore_close(ks);
}

/* --- listing ------------------------------------------------------------ */

struct seen {
	struct ks_entry e[16];
	size_t n;
	int stop_after; /* return 1 after this many; 0: never */
	int ret; /* value to return when stopping */
};

static int
list_cb(const struct ks_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < TU_ARRAY_LEN(s->e))
		s->e[s->n] = *e;
	s->n++;
	return s->stop_after != 0 && s->n >= (size_t)s->stop_after ? s->ret : 0;
}

static void
test_list(void **state)
{
	struct keystore *ks = alice_ks();
	X509 *carol = tu_load_cert("carol.pem");
	struct seen *s = calloc(1, sizeof(*s));
	char fp[65];
	size_t i;

	assert_non_null(s);
	assert_int_equal(keystore_add_cert(ks, carol, "unit"), 0);
	assert_int_equal(keystore_add_cert(ks, carol, "unit"), SG_ERR_EXISTS);
	assert_int_equal(keystore_list(ks, list_cb, s), 0);
	assert_int_equal(s->n, 4);
	/* anchors first, then intermediates, own, correspondents */
	assert_int_equal(s->e[0].role, KS_ROLE_ANCHOR);
	assert_int_equal(s->e[1].role, KS_ROLE_INTERMEDIATE);
	assert_int_equal(s->e[2].role, KS_ROLE_OWN);
	assert_int_equal(s->e[3].role, KS_ROLE_CORRESPONDENT);
	assert_non_null(strstr(s->e[0].subject, "Demo Root CA"));
	assert_non_null(strstr(s->e[1].subject, "Demo Email CA"));
	assert_non_null(strstr(s->e[2].subject, "Alice"));
	assert_string_equal(s->e[2].addresses, "alice@kota.go.id");
	assert_string_equal(s->e[3].addresses, "carol@partner.example");
	assert_string_equal(s->e[3].source, "unit");
	assert_string_equal(s->e[0].addresses, "");
	for (i = 0; i < 4; i++) {
		assert_int_equal(s->e[i].has_key, i == 2);
		assert_int_equal(strlen(s->e[i].fingerprint), 64);
		assert_true(s->e[i].not_before < s->e[i].not_after);
		assert_true(s->e[i].serial[0] != '\0');
	}
	/* the fingerprint is the SHA-256 of the DER */
	{
		unsigned char md[32];
		unsigned int mdlen;

		assert_int_equal(X509_digest(carol, EVP_sha256(), md, &mdlen), 1);
		for (i = 0; i < 32; i++)
			snprintf(fp + 2 * i, 3, "%02x", md[i]);
		assert_string_equal(s->e[3].fingerprint, fp);
	}
	assert_int_equal(s->e[2].not_after, (time_t)2082758399); /* 2035-12-31T23:59:59Z */
	assert_string_equal(keystore_role_name(KS_ROLE_OWN), "own");
	assert_string_equal(keystore_role_name(KS_ROLE_CORRESPONDENT), "correspondent");

	/* the callback stops the walk */
	memset(s, 0, sizeof(*s));
	s->stop_after = 1;
	s->ret = 1;
	assert_int_equal(keystore_list(ks, list_cb, s), 0);
	assert_int_equal(s->n, 1);
	memset(s, 0, sizeof(*s));
	s->stop_after = 2;
	s->ret = SG_ERR_INTERNAL;
	assert_int_equal(keystore_list(ks, list_cb, s), SG_ERR_INTERNAL);
	assert_int_equal(s->n, 2);
	free(s);
	X509_free(carol);
	keystore_close(ks);
}

/* --- audit -------------------------------------------------------------- */

/* Checks the whole audit chain; returns the number of rows. */
static long long
check_audit_chain(const char *want_actor)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char prev[65] = "";
	long long rows = 0;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	        "SELECT time, actor, action, detail, prev, hash FROM audit ORDER BY id", -1,
	        &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *f[6];
		unsigned char md[32];
		unsigned int mdlen;
		char want_hash[65];
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		int i;

		for (i = 0; i < 6; i++)
			f[i] = (const char *)sqlite3_column_text(st, i);
		/* each row's prev is the previous row's hash */
		if (strcmp(f[4], prev) != 0)
			fail_msg(
			    "audit row %lld: prev %s, previous hash %s", rows + 1, f[4], prev);
		/* hash = SHA-256(prev NUL time NUL actor NUL action NUL detail NUL) */
		assert_non_null(ctx);
		assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(ctx, f[4], strlen(f[4]) + 1), 1);
		for (i = 0; i < 4; i++)
			assert_int_equal(EVP_DigestUpdate(ctx, f[i], strlen(f[i]) + 1), 1);
		assert_int_equal(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
		EVP_MD_CTX_free(ctx);
		for (i = 0; i < 32; i++)
			snprintf(want_hash + 2 * i, 3, "%02x", md[i]);
		if (strcmp(f[5], want_hash) != 0)
			fail_msg("audit row %lld: hash %s, recomputed %s", rows + 1, f[5],
			    want_hash);
		assert_string_equal(f[1], want_actor);
		snprintf(prev, sizeof(prev), "%s", f[5]);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rows;
}

static void
test_audit_chain(void **state)
{
	struct keystore *ks = create_ks();
	X509 *carol = tu_load_cert("carol.pem");

	keystore_set_actor(ks, "unit-test");
	assert_int_equal(check_audit_chain("unit-test"), 0);
	assert_int_equal(add_anchor_file(ks, "ca.pem"), 0);
	assert_int_equal(check_audit_chain("unit-test"), 1);
	/* refused changes leave no record */
	assert_int_equal(add_anchor_file(ks, "ca.pem"), SG_ERR_EXISTS);
	assert_int_equal(add_anchor_file(ks, "alice.pem"), SG_ERR_CERT_UNUSABLE);
	assert_int_equal(import_p12(ks, "alice", "wrong"), SG_ERR_BAD_PASSPHRASE);
	assert_int_equal(check_audit_chain("unit-test"), 1);
	/* an import: its certificate, its key, its intermediate */
	assert_int_equal(import_p12(ks, "alice", NULL), 0);
	assert_int_equal(check_audit_chain("unit-test"), 4);
	assert_int_equal(raw_count("SELECT COUNT(*) FROM audit WHERE action='key-add'"), 1);
	assert_int_equal(keystore_add_cert(ks, carol, "unit"), 0);
	assert_int_equal(check_audit_chain("unit-test"), 5);
	assert_int_equal(keystore_add_cert(ks, carol, "unit"), SG_ERR_EXISTS);
	assert_int_equal(check_audit_chain("unit-test"), 5);
	X509_free(carol);
	keystore_close(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unsafe_file_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unsafe_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_anchor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_p12, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_p12_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anchor_after_import, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_signer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_signer_ecdsa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_signer_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_master_passphrase, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_same_handle_sees_new_intermediate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
