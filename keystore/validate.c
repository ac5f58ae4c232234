/*
 * validate.c - is this certificate usable for this address and use, now?
 *
 * Checks in order, each refusal with its own reason: validity period,
 * address in subjectAltName (rfc822Name or SmtpUTF8Mailbox), keyUsage for
 * the use, extendedKeyUsage (emailProtection or anyExtendedKeyUsage when
 * the extension is present), key size (RSA >= 2048, EC >= 256 bits),
 * SHA-1 certificate signatures, then RFC 5280 path validation to the
 * configured trust anchors only.  Revocation is checked by the caller
 * (revocation.c) on the chain this returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ksint.h"

static const char *const tokens[] = {
    "ok",
    "not-yet-valid",
    "expired",
    "address-not-in-certificate",
    "key-usage",
    "eku",
    "weak-key",
    "weak-hash",
    "untrusted-root",
    "no-issuer",
    "chain",
    "revoked",
    "revocation-unknown",
    "key-mismatch",
};

const char *
keystore_refusal_token(enum ks_refusal r)
{
	return tokens[r];
}

void
keystore_allow_sha1(struct keystore *ks, int allow)
{
	ks->allow_sha1 = allow;
}

void
keystore_verdict_clear(struct ks_verdict *v)
{
	sk_X509_pop_free(v->chain, X509_free);
	v->chain = NULL;
}

static int refuse(struct ks_verdict *v, enum ks_refusal r, const char *fmt, ...)
    SG_PRINTF(3, 4);

static int
refuse(struct ks_verdict *v, enum ks_refusal r, const char *fmt, ...)
{
	va_list ap;

	v->refusal = r;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
	return 0;
}

static int
weak_hash(X509 *x)
{
	int md = NID_undef, pk = NID_undef;

	if (!OBJ_find_sigid_algs(X509_get_signature_nid(x), &md, &pk))
		return 0;
	return md == NID_sha1 || md == NID_md5 || md == NID_md2 || md == NID_md4;
}

static int
check_key(X509 *x, struct ks_verdict *v)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int bits = pk ? EVP_PKEY_get_bits(pk) : 0;
	char b[32];

	snprintf(b, sizeof(b), "%d", bits);
	if (pk == NULL)
		return refuse(
		    v, KS_REFUSE_WEAK_KEY, "certificate has no usable public key%s", "");
	if (EVP_PKEY_is_a(pk, "RSA") && bits < 2048)
		return refuse(
		    v, KS_REFUSE_WEAK_KEY, "RSA key of %s bits (at least 2048 required)", b);
	if (EVP_PKEY_is_a(pk, "EC") && bits < 256)
		return refuse(
		    v, KS_REFUSE_WEAK_KEY, "EC key of %s bits (at least P-256 required)", b);
	return 1;
}

static int
check_usage(X509 *x, enum ks_use use, struct ks_verdict *v)
{
	uint32_t ku = X509_get_key_usage(x), want;
	EVP_PKEY *pk = X509_get0_pubkey(x);

	if (use == KS_USE_ENCRYPT)
		want = pk && EVP_PKEY_is_a(pk, "EC") ? KU_KEY_AGREEMENT : KU_KEY_ENCIPHERMENT;
	else
		want = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
	if ((ku & want) == 0)
		return refuse(v, KS_REFUSE_KEY_USAGE, "%s",
		    use == KS_USE_ENCRYPT ? "key usage does not allow encryption "
		                            "(keyEncipherment for RSA, keyAgreement for EC)"
		                          : "key usage allows neither digitalSignature nor "
		                            "nonRepudiation");
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
	    (X509_get_extended_key_usage(x) & (XKU_SMIME | XKU_ANYEKU)) == 0)
		return refuse(v, KS_REFUSE_EKU,
		    "extended key usage lacks emailProtection%s (e.g. serverAuth only)", "");
	return 1;
}

static int
chain_refusal(X509_STORE_CTX *ctx, struct ks_verdict *v)
{
	int err = X509_STORE_CTX_get_error(ctx);
	const char *es = X509_verify_cert_error_string(err);

	switch (err) {
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return refuse(v, KS_REFUSE_UNTRUSTED,
		    "certificate chains to a root that is not a trust anchor (%s)", es);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		return refuse(v, KS_REFUSE_NO_ISSUER,
		    "issuer certificate not found: missing intermediate or unknown CA (%s)",
		    es);
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return refuse(
		    v, KS_REFUSE_EXPIRED, "a CA certificate in the chain has expired (%s)", es);
	default:
		return refuse(v, KS_REFUSE_CHAIN, "certificate chain: %s", es);
	}
}

static int
verify_path(
    struct keystore *ks, X509 *cert, time_t now, STACK_OF(X509) * extra, struct ks_verdict *v)
{
	STACK_OF(X509) *untrusted = NULL, *full = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int r, i;

	if ((r = ks_load_trust(ks)) != 0)
		return r;
	r = SG_ERR_CRYPTO;
	if ((store = X509_STORE_new()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL ||
	    (untrusted = sk_X509_dup(ks->inter)) == NULL)
		goto out;
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(extra, i)))
			goto out;
	for (i = 0; i < sk_X509_num(ks->anchors); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(ks->anchors, i)))
			goto out;
	if (!X509_STORE_CTX_init(ctx, store, cert, untrusted))
		goto out;
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_depth(ctx, 8);
	r = 0;
	if (X509_verify_cert(ctx) != 1) {
		chain_refusal(ctx, v);
		goto out;
	}
	full = X509_STORE_CTX_get1_chain(ctx);
	for (i = 0; full != NULL && i < sk_X509_num(full) - 1; i++) {
		if (!ks->allow_sha1 && weak_hash(sk_X509_value(full, i))) {
			refuse(v, KS_REFUSE_WEAK_HASH,
			    "a certificate in the chain is signed with SHA-1 or weaker%s", "");
			goto out;
		}
	}
	if (full == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	X509_free(sk_X509_shift(full)); /* keep the intermediates only */
	if (sk_X509_num(full) > 0)
		X509_free(sk_X509_pop(full));
	v->chain = full;
	full = NULL;
out:
	ERR_clear_error();
	sk_X509_pop_free(full, X509_free);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

/* Lock held. */
int
ks_validate_locked(struct keystore *ks, X509 *cert, const char *addr, enum ks_use use,
    time_t now, STACK_OF(X509) * extra, struct ks_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->refusal = KS_OK;
	if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0)
		return refuse(v, KS_REFUSE_NOT_YET_VALID, "certificate is not yet valid%s", "");
	if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0)
		return refuse(v, KS_REFUSE_EXPIRED, "certificate has expired%s", "");
	if (addr != NULL && !sm_cert_has_address(cert, addr))
		return refuse(v, KS_REFUSE_ADDRESS,
		    "address %s is not in the certificate's subjectAltName", addr);
	if (!check_usage(cert, use, v) || !check_key(cert, v))
		return 0;
	if (!ks->allow_sha1 && weak_hash(cert))
		return refuse(
		    v, KS_REFUSE_WEAK_HASH, "certificate is signed with SHA-1 or weaker%s", "");
	if (verify_path(ks, cert, now, extra, v) != 0)
		return SG_ERR_CRYPTO;
	if (v->refusal == KS_OK)
		snprintf(v->text, sizeof(v->text), "valid");
	return 0;
}

int
keystore_validate(struct keystore *ks, X509 *cert, const char *addr, enum ks_use use,
    time_t now, STACK_OF(X509) * extra, struct ks_verdict *v)
{
	int r;

	pthread_mutex_lock(&ks->lock);
	r = ks_validate_locked(ks, cert, addr, use, now, extra, v);
	pthread_mutex_unlock(&ks->lock);
	return r;
}
