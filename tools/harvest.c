/*
 * harvest.c - `segelctl cert harvest MESSAGE.eml`: verifies an S/MIME
 * signed message (multipart/signed or opaque signed-data) against the
 * trust anchors and, only if the signature and the signer's certificate
 * are valid, stores the certificate with the SMIMECapabilities it
 * advertised.  The inbound milter path will call keystore_harvest() the
 * same way.  Exit 0 stored, 3 refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "tools/cmd.h"

static X509_STORE *
anchor_store(struct keystore *ks)
{
	STACK_OF(X509) *anchors = NULL;
	X509_STORE *st = X509_STORE_new();
	int i;

	if (st == NULL || keystore_anchors(ks, &anchors) != 0)
		die("cannot read the trust anchors");
	for (i = 0; i < sk_X509_num(anchors); i++)
		X509_STORE_add_cert(st, sk_X509_value(anchors, i));
	sk_X509_pop_free(anchors, X509_free);
	return st;
}

int
cmd_harvest(struct segel_cfg *cfg, int argc, char **argv)
{
	BIO *in, *content = NULL;
	CMS_ContentInfo *cms;
	STACK_OF(X509) *signers = NULL, *certs;
	CMS_SignerInfo *si;
	ASN1_STRING *caps;
	struct ks_verdict v = {0};
	struct keystore *ks;
	X509_STORE *store;
	int r;

	if (argc != 1)
		die("usage: segelctl -c CONF cert harvest MESSAGE.eml");
	if ((in = BIO_new_file(argv[0], "rb")) == NULL)
		die("%s: %s", argv[0], strerror(errno));
	cms = SMIME_read_CMS(in, &content);
	BIO_free(in);
	if (cms == NULL)
		die("%s: not an S/MIME signed message", argv[0]);
	ks = open_keystore(cfg, 0);
	store = anchor_store(ks);
	/* the signature must verify and chain to an anchor (the certificates
	 * it carries may serve as intermediates) */
	if (CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY) != 1) {
		unsigned long e = ERR_peek_last_error();

		printf("%s: refused: signature does not verify (%s); nothing stored\n", argv[0],
		    e ? ERR_reason_error_string(e) : "unknown");
		r = 3;
		goto out;
	}
	signers = CMS_get0_signers(cms);
	certs = CMS_get1_certs(cms);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	caps = si ? CMS_signed_get0_data_by_OBJ(
	                si, OBJ_nid2obj(NID_SMIMECapabilities), -3, V_ASN1_SEQUENCE)
	          : NULL;
	r = keystore_harvest(ks, sk_X509_value(signers, 0), certs,
	    caps ? ASN1_STRING_get0_data(caps) : NULL,
	    caps ? (size_t)ASN1_STRING_length(caps) : 0, time(NULL), &v);
	sk_X509_pop_free(certs, X509_free);
	if (r == SG_ERR_CERT_UNUSABLE) {
		printf("%s: refused: %s (%s); nothing stored\n", argv[0],
		    keystore_refusal_token(v.refusal), v.text);
		r = 3;
	} else if (r != 0) {
		die("harvest: %s", sg_strerror(r));
	} else {
		char **addrs = NULL;
		size_t n = 0;

		if (sm_cert_addresses(sk_X509_value(signers, 0), &addrs, &n) != 0)
			n = 0;
		printf("%s: stored the certificate of %s%s\n", argv[0],
		    n ? addrs[0] : "the signer", caps ? " with its S/MIME capabilities" : "");
		sm_addr_list_free(addrs, n);
	}
out:
	keystore_verdict_clear(&v);
	sk_X509_free(signers);
	X509_STORE_free(store);
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	keystore_close(ks);
	return r;
}
