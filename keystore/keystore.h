/*
 * keystore.h - certificates, trust anchors and encrypted private keys in
 * one SQLite database (WAL mode), shared by the milter and segelctl.
 *
 * Private keys are stored as encrypted PKCS#8 (PBES2: scrypt and
 * AES-256-CBC) under the master passphrase, which is read from its own
 * file and never from the configuration.  Signing identities are loaded
 * once and cached; every lookup asks SQLite whether another process has
 * changed the database (PRAGMA data_version) and drops the cache if so,
 * so changes made by segelctl are picked up without a restart.  A signer
 * is handed out only after it passes the checks of keystore_get_signer().
 *
 * All functions are safe to call from several threads on one handle.
 * Every change is appended to a hash-chained audit table.
 */
#ifndef KS_KEYSTORE_H
#define KS_KEYSTORE_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "smime/smime.h"
#include "util/sg_err.h"

struct keystore;

#define KS_OPEN_CREATE 0x1 /* create the database if it does not exist */
#define KS_OPEN_NOKEYS 0x2 /* no master passphrase: keys cannot be used */

/*
 * Opens the store at path (mode 0600 required, checked with its
 * directories).  master is the master passphrase (copied; may be NULL
 * with KS_OPEN_NOKEYS).  On failure *why says what to do.  The caller
 * owns *out (keystore_close).
 */
int keystore_open(const char *path, const char *master, int flags, struct keystore **out,
    char *why, size_t whylen) SG_WUR;
void keystore_close(struct keystore *ks);

/* Who makes changes, recorded in the audit log ("segelctl:root"). */
void keystore_set_actor(struct keystore *ks, const char *actor);

enum ks_role { KS_ROLE_ANCHOR, KS_ROLE_INTERMEDIATE, KS_ROLE_OWN, KS_ROLE_CORRESPONDENT };

/* Adds a trust anchor (a self-signed CA).  SG_ERR_EXISTS if present. */
int keystore_add_anchor(struct keystore *ks, X509 *ca) SG_WUR;
/* Adds a correspondent's certificate (no key). */
int keystore_add_cert(struct keystore *ks, X509 *cert, const char *source) SG_WUR;
/*
 * Imports a PKCS#12 file's key, certificate and chain; the key is stored
 * encrypted under the master passphrase.  SG_ERR_BAD_PASSPHRASE when the
 * passphrase does not open it.  *subject (optional, caller frees) names
 * the imported certificate.
 */
int keystore_import_p12(struct keystore *ks, const unsigned char *der, size_t len,
    const char *passphrase, char **subject) SG_WUR;

/* One row of keystore_list(). */
struct ks_entry {
	long long id;
	enum ks_role role;
	int has_key;
	char subject[256];
	char issuer[256];
	char serial[80];
	char fingerprint[65];
	char addresses[512]; /* comma-separated */
	time_t not_before, not_after;
	char source[32];
};

typedef int (*ks_list_cb)(const struct ks_entry *e, void *arg);
/* Calls cb for each certificate, anchors first; stops at a non-zero return. */
int keystore_list(struct keystore *ks, ks_list_cb cb, void *arg) SG_WUR;

/* A usable signing identity; all references are owned by the struct. */
struct ks_signer {
	struct sm_signer s;
	char address[320];
};

/*
 * Finds the certificate with a private key for addr and checks it at
 * time now: addr in subjectAltName, within validity, chains to a trust
 * anchor for S/MIME signing, key matches.  SG_ERR_NOT_FOUND when there is
 * none, SG_ERR_CERT_UNUSABLE with the reason in why.  The caller owns
 * *out (keystore_signer_free).
 */
int keystore_get_signer(struct keystore *ks, const char *addr, time_t now,
    struct ks_signer **out, char *why, size_t whylen) SG_WUR;
void keystore_signer_free(struct ks_signer *s);

/* What a certificate is checked for. */
enum ks_use { KS_USE_SIGN, KS_USE_ENCRYPT, KS_USE_VERIFY };

/* Why a certificate was refused; each has its own token and text. */
enum ks_refusal {
	KS_OK,
	KS_REFUSE_NOT_YET_VALID,
	KS_REFUSE_EXPIRED,
	KS_REFUSE_ADDRESS, /* address not in subjectAltName */
	KS_REFUSE_KEY_USAGE, /* keyUsage does not allow the use */
	KS_REFUSE_EKU, /* EKU present without emailProtection */
	KS_REFUSE_WEAK_KEY, /* RSA < 2048 bits, EC < 256 bits */
	KS_REFUSE_WEAK_HASH, /* SHA-1 (or weaker) certificate signature */
	KS_REFUSE_UNTRUSTED, /* chains to a root that is not a trust anchor */
	KS_REFUSE_NO_ISSUER, /* issuer not found: missing intermediate */
	KS_REFUSE_CHAIN, /* another path validation failure */
	KS_REFUSE_REVOKED,
	KS_REFUSE_REVOCATION_UNKNOWN,
	KS_REFUSE_KEY_MISMATCH,
};

/* The outcome of keystore_validate(). */
struct ks_verdict {
	enum ks_refusal refusal;
	char text[320]; /* human-readable reason, or "valid" */
	STACK_OF(X509) * chain; /* on success: intermediates, owned */
};

/*
 * Validates cert for use by addr at time now (RFC 5280 path validation
 * to the trust anchors only, using stored CA certificates and extra,
 * e.g. those carried in a signature; RFC 8550 usage checks).  Returns 0
 * with v->refusal set (KS_OK or a reason), or a negative code when the
 * check itself failed.  Free v with keystore_verdict_clear().
 */
int keystore_validate(struct keystore *ks, X509 *cert, const char *addr, enum ks_use use,
    time_t now, STACK_OF(X509) * extra, struct ks_verdict *v) SG_WUR;
void keystore_verdict_clear(struct ks_verdict *v);
/* A short token for logs ("expired", "no-issuer" ...). */
const char *keystore_refusal_token(enum ks_refusal r);
/* Whether certificates signed with SHA-1 are accepted (default no). */
void keystore_allow_sha1(struct keystore *ks, int allow);

/* Revocation status of one certificate. */
enum ks_rev_status { KS_REV_GOOD, KS_REV_REVOKED, KS_REV_UNKNOWN };

struct ks_rev {
	enum ks_rev_status status;
	char source[8]; /* "ocsp", "crl" or "" */
	time_t revoked_at; /* when revoked */
	char text[320]; /* human-readable: "revoked on 2026-05-01 (CRL)" */
};

/*
 * Revocation status of cert at time now.  chain holds its issuer (the
 * intermediates from keystore_validate(); the anchors are searched too).
 * Fresh cached answers are used first: an OCSP response or CRL is fresh
 * until its nextUpdate.  With fetch, a stale or missing answer is fetched
 * (OCSP from the AIA URL with a nonce, then the CRL distribution points),
 * each within timeout seconds.  Returns 0 with out->status set, or a
 * negative code when the check itself failed.
 */
int keystore_check_revocation(struct keystore *ks, X509 *cert, STACK_OF(X509) * chain,
    time_t now, int fetch, long timeout, struct ks_rev *out) SG_WUR;
/* Stores a CRL after checking its signature against a known CA. */
int keystore_import_crl(
    struct keystore *ks, X509_CRL *crl, const char *url, char *why, size_t whylen) SG_WUR;
/* Re-fetches every known distribution point whose CRL expires within
 * margin seconds of now; *updated counts the CRLs stored. */
int keystore_update_crls(struct keystore *ks, time_t now, long margin, long timeout,
    int *updated, int *failed) SG_WUR;

/* The result of keystore_audit_verify(). */
struct ks_audit_result {
	long long entries; /* entries read */
	long long bad_id; /* first bad entry, 0 when the chain is intact */
	char problem[160]; /* what is wrong with it */
	char head[65]; /* hash of the last good entry */
};

/*
 * PKCS#11: the module (e.g. /usr/lib/softhsm/libsofthsm2.so) and user PIN
 * with which keys stored as URIs are opened; call before first use.
 */
int keystore_set_pkcs11(struct keystore *ks, const char *module, const char *pin) SG_WUR;
/*
 * Records cert as an own certificate whose private key is the token object
 * named by uri (RFC 7512 "pkcs11:..."), after checking that the token key
 * matches the certificate.  The key never leaves the token.
 */
int keystore_import_pkcs11(
    struct keystore *ks, X509 *cert, const char *uri, char *why, size_t whylen) SG_WUR;

/*
 * Harvesting: stores the certificate of a signer whose signature verified,
 * as a correspondent's, with the SMIMECapabilities it advertised (caps,
 * DER, may be NULL).  The certificate is validated first (for
 * verification, at now, with extra as untrusted helpers); anything that
 * does not validate is refused with the reason in v and never stored.
 * Returns 0 (stored or refreshed), or a negative code.
 */
int keystore_harvest(struct keystore *ks, X509 *cert, STACK_OF(X509) * extra,
    const unsigned char *caps, size_t capslen, time_t now, struct ks_verdict *v) SG_WUR;

/* The trust anchors (caller frees with sk_X509_pop_free). */
int keystore_anchors(struct keystore *ks, STACK_OF(X509) * *out) SG_WUR;

/* Removes certificate id (and its key, if any); audited. */
int keystore_remove(struct keystore *ks, long long id) SG_WUR;

/* Recomputes the audit chain; 0 with res filled, or a negative code. */
int keystore_audit_verify(struct keystore *ks, struct ks_audit_result *res) SG_WUR;

/* Role names for output ("anchor" ...). */
const char *keystore_role_name(enum ks_role r);

#endif
