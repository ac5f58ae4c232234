/*
 * sign.c - RFC 8551 detached signatures (multipart/signed).
 *
 * The canonical entity is written once: to the output spool and, through
 * a CMS digest BIO, into the signature, so the message is never held in
 * memory whole.  The CMS SignedData carries signingTime,
 * SMIMECapabilities and SMIMEEncryptionKeyPreference as signed attributes
 * and, when asked, the signer's chain.  Only the OpenSSL 3 CMS and EVP
 * APIs are used.
 *
 * SECURITY: the key is borrowed; nothing here copies it.  The boundary is
 * 96 random bits, so a sender cannot plant it in the content.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "mimeint.h"

const char *
sm_digest_micalg(enum sm_digest d)
{
	switch (d) {
	case SM_DIGEST_SHA384:
		return "sha-384";
	case SM_DIGEST_SHA512:
		return "sha-512";
	default:
		return "sha-256";
	}
}

int
sm_digest_parse(const char *name)
{
	if (strcasecmp(name, "sha256") == 0)
		return SM_DIGEST_SHA256;
	if (strcasecmp(name, "sha384") == 0)
		return SM_DIGEST_SHA384;
	if (strcasecmp(name, "sha512") == 0)
		return SM_DIGEST_SHA512;
	return -1;
}

static const EVP_MD *
digest_md(enum sm_digest d)
{
	switch (d) {
	case SM_DIGEST_SHA384:
		return EVP_sha384();
	case SM_DIGEST_SHA512:
		return EVP_sha512();
	default:
		return EVP_sha256();
	}
}

void
sm_output_free(struct sm_output *o)
{
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->nedits; i++) {
		free(o->edits[i].name);
		free(o->edits[i].value);
	}
	free(o->edits);
	sg_spool_free(o->body);
	free(o);
}

static int
add_edit(
    struct sm_output *o, enum sm_edit_op op, const char *name, size_t index, const char *value)
{
	struct sm_edit *e;

	if ((e = realloc(o->edits, (o->nedits + 1) * sizeof(*e))) == NULL)
		return SG_ERR_NOMEM;
	o->edits = e;
	e = &o->edits[o->nedits];
	memset(e, 0, sizeof(*e));
	e->op = op;
	e->index = index;
	if ((e->name = strdup(name)) == NULL || (value && (e->value = strdup(value)) == NULL)) {
		free(e->name);
		return SG_ERR_NOMEM;
	}
	o->nedits++;
	return 0;
}

/* SMIMECapabilities we can decrypt: AES-256/128 GCM and CBC (RFC 8551 2.5.2). */
static int
add_capabilities(CMS_SignerInfo *si)
{
	static const int nids[] = {
	    NID_aes_256_gcm, NID_aes_128_gcm, NID_aes_256_cbc, NID_aes_128_cbc};
	STACK_OF(X509_ALGOR) * caps;
	size_t i;
	int ok = 0;

	if ((caps = sk_X509_ALGOR_new_null()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
		X509_ALGOR *a = X509_ALGOR_new();

		if (a == NULL ||
		    !X509_ALGOR_set0(a, OBJ_nid2obj(nids[i]), V_ASN1_UNDEF, NULL) ||
		    !sk_X509_ALGOR_push(caps, a)) {
			X509_ALGOR_free(a);
			goto out;
		}
	}
	ok = CMS_add_smimecap(si, caps);
out:
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	return ok ? 0 : SG_ERR_CRYPTO;
}

/*
 * SMIMEEncryptionKeyPreference ::= CHOICE { issuerAndSerialNumber [0]
 * IMPLICIT IssuerAndSerialNumber, ... } naming the signer's certificate.
 */
static int
add_key_preference(CMS_SignerInfo *si, X509 *cert)
{
	unsigned char *name = NULL, *serial = NULL, *der = NULL;
	int nl, sl, r = SG_ERR_CRYPTO;
	size_t inner, hl, i = 0;

	if ((nl = i2d_X509_NAME(X509_get_issuer_name(cert), &name)) <= 0 ||
	    (sl = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &serial)) <= 0)
		goto out;
	inner = (size_t)nl + (size_t)sl;
	hl = inner < 128 ? 2 : inner < 256 ? 3 : 4;
	if (inner > 65535) {
		r = SG_ERR_LIMIT;
		goto out;
	}
	if ((der = malloc(hl + inner)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	der[i++] = 0xa0;
	if (hl == 3)
		der[i++] = 0x81;
	else if (hl == 4) {
		der[i++] = 0x82;
		der[i++] = (unsigned char)(inner >> 8);
	}
	der[i++] = (unsigned char)(inner & 0xff);
	memcpy(der + i, name, (size_t)nl);
	memcpy(der + i + (size_t)nl, serial, (size_t)sl);
	if (CMS_signed_add1_attr_by_NID(
	        si, NID_id_smime_aa_encrypKeyPref, V_ASN1_SEQUENCE, der, (int)(hl + inner)))
		r = 0;
out:
	OPENSSL_free(name);
	OPENSSL_free(serial);
	free(der);
	return r;
}

static int
make_boundary(char *b, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[12];
	size_t i, o;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return SG_ERR_CRYPTO;
	o = (size_t)snprintf(b, len, "----=_segel_");
	for (i = 0; i < sizeof(rnd) && o + 2 < len; i++) {
		b[o++] = hex[rnd[i] >> 4];
		b[o++] = hex[rnd[i] & 15];
	}
	b[o] = '\0';
	return 0;
}

/*
 * RSASSA-PSS (RFC 4056): signatureAlgorithm with the digest, MGF1 with the
 * same digest, and a salt as long as the digest.  Set by hand because the
 * key that signs may not be in this process.
 */
static int
set_pss_algorithm(CMS_SignerInfo *si, const EVP_MD *md)
{
	X509_ALGOR *sigalg = NULL, *mgfmd = NULL;
	RSA_PSS_PARAMS *pp = NULL;
	ASN1_STRING *mgfparam = NULL, *params = NULL;
	int r = SG_ERR_CRYPTO;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sigalg);
	if (sigalg == NULL || (pp = RSA_PSS_PARAMS_new()) == NULL ||
	    (pp->hashAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pp->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pp->saltLength = ASN1_INTEGER_new()) == NULL || (mgfmd = X509_ALGOR_new()) == NULL)
		goto out;
	X509_ALGOR_set_md(pp->hashAlgorithm, md);
	X509_ALGOR_set_md(mgfmd, md);
	if ((mgfparam = ASN1_item_pack(mgfmd, ASN1_ITEM_rptr(X509_ALGOR), NULL)) == NULL ||
	    !X509_ALGOR_set0(
	        pp->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, mgfparam))
		goto out;
	mgfparam = NULL; /* transferred */
	if (!ASN1_INTEGER_set(pp->saltLength, EVP_MD_get_size(md)) ||
	    (params = ASN1_item_pack(pp, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL)) == NULL ||
	    !X509_ALGOR_set0(sigalg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, params))
		goto out;
	params = NULL; /* transferred */
	r = 0;
out:
	ASN1_STRING_free(mgfparam);
	ASN1_STRING_free(params);
	X509_ALGOR_free(mgfmd);
	RSA_PSS_PARAMS_free(pp);
	return r;
}

static int
start_cms(const struct sm_signer *s, const struct sm_sign_opts *o, CMS_ContentInfo **out)
{
	unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_STREAM | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	int r = SG_ERR_CRYPTO, i;

	*out = NULL;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
		return SG_ERR_CRYPTO;
	/* the certificate's public key: the signature itself is made later,
	 * by finish_signer(), with or without the private key in this process */
	if ((si = CMS_add1_signer(
	         cms, s->cert, X509_get0_pubkey(s->cert), digest_md(o->digest), flags)) == NULL)
		goto out;
	if (o->rsa_pss && EVP_PKEY_is_a(X509_get0_pubkey(s->cert), "RSA") &&
	    (r = set_pss_algorithm(si, digest_md(o->digest))) != 0)
		goto out;
	if ((r = add_capabilities(si)) != 0 || (r = add_key_preference(si, s->cert)) != 0)
		goto out;
	r = SG_ERR_CRYPTO;
	for (i = 0; o->include_chain && s->chain && i < sk_X509_num(s->chain); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(s->chain, i)))
			goto out;
	*out = cms;
	cms = NULL;
	r = 0;
out:
	CMS_ContentInfo_free(cms);
	return r;
}

int
sm_sign_digest_with_key(EVP_PKEY *key, enum sm_digest d, int pss, const unsigned char *dgst,
    size_t dlen, unsigned char *sig, size_t *siglen)
{
	const EVP_MD *md = digest_md(d);
	EVP_PKEY_CTX *ctx;
	size_t need = 0;
	int r = SG_ERR_CRYPTO, rsa = EVP_PKEY_is_a(key, "RSA");

	if (dlen != (size_t)EVP_MD_get_size(md))
		return SG_ERR_INVALID_ARG;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL)
		return SG_ERR_NOMEM;
	if (EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
		goto out;
	if (rsa &&
	    (EVP_PKEY_CTX_set_rsa_padding(
	         ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0 ||
	        (pss &&
	            (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
	                EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0))))
		goto out;
	if (EVP_PKEY_sign(ctx, NULL, &need, dgst, dlen) <= 0)
		goto out;
	if (need > *siglen) {
		r = SG_ERR_LIMIT;
		goto out;
	}
	if (EVP_PKEY_sign(ctx, sig, siglen, dgst, dlen) > 0)
		r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* The digest of the content so far, from the CMS digest BIO for md. */
static int
content_digest(BIO *cbio, const EVP_MD *md, unsigned char *out, unsigned int *len)
{
	BIO *b = cbio;
	EVP_MD_CTX *mctx = NULL, *copy;
	int ok;

	while ((b = BIO_find_type(b, BIO_TYPE_MD)) != NULL) {
		if (BIO_get_md_ctx(b, &mctx) > 0 && mctx != NULL &&
		    EVP_MD_is_a(EVP_MD_CTX_get0_md(mctx), EVP_MD_get0_name(md)))
			break;
		b = BIO_next(b);
	}
	if (b == NULL || (copy = EVP_MD_CTX_new()) == NULL)
		return SG_ERR_CRYPTO;
	ok = EVP_MD_CTX_copy_ex(copy, mctx) && EVP_DigestFinal_ex(copy, out, len);
	EVP_MD_CTX_free(copy);
	return ok ? 0 : SG_ERR_CRYPTO;
}

struct enc {
	unsigned char *p;
	size_t n;
};

/* DER order of SET OF: as octet strings, the shorter padded with zeros. */
static int
der_cmp(const void *a, const void *b)
{
	const struct enc *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->p, y->p, n);

	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The DER SET OF the signed attributes: what the signature covers (RFC 5652 5.4). */
static int
signed_attrs_der(CMS_SignerInfo *si, unsigned char **der, size_t *len)
{
	int n = CMS_signed_get_attr_count(si), i, r = SG_ERR_CRYPTO;
	struct enc *e;
	size_t total = 0, hl, o = 0;

	*der = NULL;
	if (n <= 0 || (e = calloc((size_t)n, sizeof(*e))) == NULL)
		return n <= 0 ? SG_ERR_CRYPTO : SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		int l = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &e[i].p);

		if (l <= 0)
			goto out;
		e[i].n = (size_t)l;
		total += e[i].n;
	}
	qsort(e, (size_t)n, sizeof(*e), der_cmp);
	hl = total < 128 ? 2 : total < 256 ? 3 : total < 65536 ? 4 : 0;
	if (hl == 0 || (*der = malloc(hl + total)) == NULL) {
		r = hl ? SG_ERR_NOMEM : SG_ERR_LIMIT;
		goto out;
	}
	(*der)[o++] = 0x31;
	if (hl == 3)
		(*der)[o++] = 0x81;
	else if (hl == 4) {
		(*der)[o++] = 0x82;
		(*der)[o++] = (unsigned char)(total >> 8);
	}
	(*der)[o++] = (unsigned char)(total & 0xff);
	for (i = 0; i < n; i++) {
		memcpy(*der + o, e[i].p, e[i].n);
		o += e[i].n;
	}
	*len = o;
	r = 0;
out:
	for (i = 0; i < n; i++)
		OPENSSL_free(e[i].p);
	free(e);
	return r;
}

/*
 * Completes the SignerInfo without CMS_dataFinal(): adds contentType,
 * signingTime and messageDigest, hashes the DER of the signed attributes
 * and has the signature made by the key holder (signer->sign) or with the
 * key in this process.
 */
static int
finish_signer(CMS_ContentInfo *cms, BIO *cbio, const struct sm_signer *signer,
    const struct sm_sign_opts *o)
{
	const EVP_MD *md = digest_md(o->digest);
	CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	unsigned char dgst[EVP_MAX_MD_SIZE], sig[SM_MAX_SIGNATURE], *attrs = NULL;
	unsigned int dlen = 0;
	size_t alen = 0, siglen = sizeof(sig);
	ASN1_TIME *now = NULL;
	int r;

	if (si == NULL)
		return SG_ERR_CRYPTO;
	if ((r = content_digest(cbio, md, dgst, &dlen)) != 0)
		return r;
	r = SG_ERR_CRYPTO;
	if ((now = X509_gmtime_adj(NULL, 0)) == NULL ||
	    !CMS_signed_add1_attr_by_NID(
	        si, NID_pkcs9_contentType, V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, now->type, now, -1) ||
	    !CMS_signed_add1_attr_by_NID(
	        si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, dgst, (int)dlen))
		goto out;
	if ((r = signed_attrs_der(si, &attrs, &alen)) != 0)
		goto out;
	r = SG_ERR_CRYPTO;
	if (!EVP_Digest(attrs, alen, dgst, &dlen, md, NULL))
		goto out;
	if (signer->sign != NULL)
		r = signer->sign(
		    signer->sign_arg, o->digest, o->rsa_pss, dgst, dlen, sig, &siglen);
	else if (signer->key != NULL)
		r = sm_sign_digest_with_key(
		    signer->key, o->digest, o->rsa_pss, dgst, dlen, sig, &siglen);
	else
		r = SG_ERR_INVALID_ARG;
	if (r != 0)
		goto out;
	r = ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)siglen) ? 0
	                                                                         : SG_ERR_NOMEM;
out:
	ASN1_TIME_free(now);
	free(attrs);
	return r;
}

static int
put_signature(CMS_ContentInfo *cms, struct sm_sink *out)
{
	unsigned char *der = NULL;
	int n, r;

	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		return SG_ERR_CRYPTO;
	r = sm_base64_write(out, der, (size_t)n);
	OPENSSL_free(der);
	return r;
}

static int
header_edits(const struct sm_msg *m, struct sm_output *o, const char *ctype)
{
	size_t i, n = sm_msg_header_count(m);
	int r;

	/* Delete Content-* fields, the last occurrence of each name first,
	 * so the indexes of the others stay right. */
	for (i = n; i-- > 0;) {
		const char *name = sm_msg_header_name(m, i);

		if (!sm_is_content_field(name))
			continue;
		if ((r = add_edit(o, SM_EDIT_DELETE, name, sm_msg_occurrence(m, i), NULL)) != 0)
			return r;
	}
	if (sm_msg_get(m, "MIME-Version", 0) == NULL &&
	    (r = add_edit(o, SM_EDIT_ADD, "MIME-Version", 0, "1.0")) != 0)
		return r;
	return add_edit(o, SM_EDIT_ADD, "Content-Type", 0, ctype);
}

/* The Content-* fields move into the signed entity, which must be 7-bit. */
static int
check_content_fields(struct sm_msg *m)
{
	size_t i;

	for (i = 0; i < sm_msg_header_count(m); i++) {
		const unsigned char *c = (const unsigned char *)sm_msg_header_value(m, i);

		if (!sm_is_content_field(sm_msg_header_name(m, i)))
			continue;
		for (; *c; c++) {
			if (*c >= 0x80) {
				sm_msg_set_problem(m,
				    "8-bit characters in a Content-* field "
				    "(RFC 2047/2231 encoding needed)");
				return SG_ERR_MALFORMED;
			}
		}
	}
	return 0;
}

int
sm_sign(struct sm_msg *m, const struct sm_signer *signer, const struct sm_sign_opts *opts,
    struct sm_output **out)
{
	struct sm_output *o = NULL;
	struct sm_tree tree = {0};
	CMS_ContentInfo *cms = NULL;
	BIO *cbio = NULL;
	struct sm_sink sink;
	char boundary[64], ctype[256], problem[256];
	int r;

	*out = NULL;
	if (sm_msg_kind(m) != SM_KIND_PLAIN)
		return SG_ERR_ALREADY_SMIME;
	if ((r = check_content_fields(m)) != 0)
		return r;
	if ((r = sm_tree_scan(sm_msg_body_spool(m), sm_msg_get(m, "Content-Type", 0),
	         sm_msg_get(m, "Content-Transfer-Encoding", 0), sm_msg_limits(m), &tree,
	         problem, sizeof(problem))) != 0) {
		sm_msg_set_problem(m, problem);
		goto out;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = sg_spool_new(opts->spool_dir, opts->mem_threshold, SIZE_MAX / 2, &o->body)) !=
	        0 ||
	    (r = make_boundary(boundary, sizeof(boundary))) != 0 ||
	    (r = start_cms(signer, opts, &cms)) != 0)
		goto out;
	r = SG_ERR_CRYPTO;
	if ((cbio = CMS_dataInit(cms, NULL)) == NULL)
		goto out;
	sink.spool = o->body;
	sink.bio = NULL;
	if ((r = sm_sink_puts(&sink, "This is an S/MIME signed message.\r\n\r\n--")) != 0 ||
	    (r = sm_sink_puts(&sink, boundary)) != 0 || (r = sm_sink_puts(&sink, "\r\n")) != 0)
		goto out;
	sink.bio = cbio;
	if ((r = sm_entity_write(m, &tree, &sink)) != 0)
		goto out;
	sink.bio = NULL;
	if (BIO_flush(cbio) <= 0) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	if ((r = finish_signer(cms, cbio, signer, opts)) != 0)
		goto out;
	if ((r = sm_sink_puts(&sink, "\r\n--")) != 0 ||
	    (r = sm_sink_puts(&sink, boundary)) != 0 ||
	    (r = sm_sink_puts(&sink,
	         "\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
	         "Content-Transfer-Encoding: base64\r\n"
	         "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
	         "Content-Description: S/MIME Cryptographic Signature\r\n\r\n")) != 0 ||
	    (r = put_signature(cms, &sink)) != 0 || (r = sm_sink_puts(&sink, "\r\n--")) != 0 ||
	    (r = sm_sink_puts(&sink, boundary)) != 0 ||
	    (r = sm_sink_puts(&sink, "--\r\n")) != 0)
		goto out;
	snprintf(ctype, sizeof(ctype),
	    "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=%s;\n\t"
	    "boundary=\"%s\"",
	    sm_digest_micalg(opts->digest), boundary);
	if ((r = header_edits(m, o, ctype)) != 0)
		goto out;
	*out = o;
	o = NULL;
	r = 0;
out:
	BIO_free_all(cbio);
	CMS_ContentInfo_free(cms);
	sm_tree_free(&tree);
	sm_output_free(o);
	return r;
}
