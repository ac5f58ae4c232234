/*
 * fuzz_sign.c - libFuzzer harness: the whole per-message signing pipeline
 * (header/body events, MIME scan, canonical entity, CMS signature) fed
 * from one byte stream taken as an RFC 5322 message.  Any outcome other
 * than 0, SG_ERR_MALFORMED, SG_ERR_LIMIT or SG_ERR_ALREADY_SMIME is a bug,
 * as is any crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "smime/smime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sm_signer signer;

static void
setup(void)
{
	X509 *x = X509_new();
	EVP_PKEY *k = EVP_EC_gen("P-256");

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	signer.cert = x;
	signer.key = k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_limits lim;
	struct sm_msg *m = NULL;
	struct sm_output *o = NULL;
	struct sg_spool *in = NULL;
	struct sm_sign_opts opts = {SM_DIGEST_SHA256, 0, 1, "/tmp", 4096};
	int r;

	if (signer.key == NULL)
		setup();
	sm_limits_default(&lim);
	lim.max_mime_depth = 8;
	lim.max_mime_parts = 64;
	lim.max_header_size = 4096;
	if (sg_spool_new("/tmp", 1 << 20, 1 << 20, &in) != 0)
		abort();
	if (sg_spool_write(in, data, size) != 0 || sm_msg_new(&lim, "/tmp", 1 << 20, &m) != 0)
		goto out;
	if (sm_msg_parse_spool(m, in) != 0 || sm_msg_eom(m) != 0)
		goto out;
	r = sm_sign(m, &signer, &opts, &o);
	if (r != 0 && r != SG_ERR_MALFORMED && r != SG_ERR_LIMIT && r != SG_ERR_ALREADY_SMIME)
		abort();
out:
	sm_output_free(o);
	sm_msg_free(m);
	sg_spool_free(in);
	return 0;
}
