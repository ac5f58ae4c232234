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
	if (inner > 65535 || (der = malloc(hl + inner)) == NULL) {
		r = SG_ERR_LIMIT;
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
	if (o->rsa_pss && EVP_PKEY_is_a(s->key, "RSA"))
		flags |= CMS_KEY_PARAM;
	if ((si = CMS_add1_signer(cms, s->cert, s->key, digest_md(o->digest), flags)) == NULL)
		goto out;
	if (flags & CMS_KEY_PARAM) {
		EVP_PKEY_CTX *pctx = CMS_SignerInfo_get0_pkey_ctx(si);

		if (pctx == NULL ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
			goto out;
	}
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
	size_t i, j, n = sm_msg_header_count(m);
	int r;

	/* Delete Content-* fields, the last occurrence of each name first,
	 * so the indexes of the others stay right. */
	for (i = n; i-- > 0;) {
		const char *name = sm_msg_header_name(m, i);
		size_t occ = 0;

		if (!sm_is_content_field(name))
			continue;
		for (j = 0; j <= i; j++)
			occ += strcasecmp(sm_msg_header_name(m, j), name) == 0;
		if ((r = add_edit(o, SM_EDIT_DELETE, name, occ, NULL)) != 0)
			return r;
	}
	if (sm_msg_get(m, "MIME-Version", 0) == NULL &&
	    (r = add_edit(o, SM_EDIT_ADD, "MIME-Version", 0, "1.0")) != 0)
		return r;
	return add_edit(o, SM_EDIT_ADD, "Content-Type", 0, ctype);
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
	if (BIO_flush(cbio) <= 0 || !CMS_dataFinal(cms, cbio)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
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
