/*
 * revocation.c - `segelctl crl import FILE [--url URL]`, `crl update`,
 * `revocation check ADDRESS|CERT.pem [--no-fetch]`.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "tools/cmd.h"

static X509_CRL *
read_crl(const char *path)
{
	FILE *fp = fopen(path, "rb");
	X509_CRL *crl;

	if (fp == NULL)
		die("%s: %s", path, strerror(errno));
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	if (crl == NULL) {
		rewind(fp);
		crl = d2i_X509_CRL_fp(fp, NULL);
	}
	fclose(fp);
	if (crl == NULL)
		die("%s: not a PEM or DER CRL", path);
	return crl;
}

int
cmd_crl(struct segel_cfg *cfg, int argc, char **argv)
{
	struct keystore *ks;
	char why[512] = "";
	int r, updated, failed;

	if (argc >= 2 && strcmp(argv[0], "import") == 0) {
		const char *url = argc == 4 && strcmp(argv[2], "--url") == 0 ? argv[3] : NULL;
		X509_CRL *crl = read_crl(argv[1]);

		ks = open_keystore(cfg, 0);
		r = keystore_import_crl(ks, crl, url, why, sizeof(why));
		X509_CRL_free(crl);
		keystore_close(ks);
		if (r != 0)
			die("%s: %s", argv[1], why[0] ? why : sg_strerror(r));
		printf("CRL imported: %s\n", argv[1]);
		return 0;
	}
	if (argc == 1 && strcmp(argv[0], "update") == 0) {
		ks = open_keystore(cfg, 0);
		r = keystore_update_crls(
		    ks, time(NULL), 3600, (long)cfg->revocation_timeout, &updated, &failed);
		keystore_close(ks);
		if (r != 0)
			die("crl update: %s", sg_strerror(r));
		printf("CRLs updated: %d, distribution points failed: %d\n", updated, failed);
		return failed ? 3 : 0;
	}
	die("usage: segelctl -c CONF crl import FILE [--url URL] | crl update");
}

int
cmd_revocation(struct segel_cfg *cfg, int argc, char **argv)
{
	struct ks_signer *s = NULL;
	struct ks_verdict v = {0};
	struct keystore *ks;
	struct ks_rev rv;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	char why[512];
	int r, fetch = !(argc == 3 && strcmp(argv[2], "--no-fetch") == 0);

	if (argc < 2 || strcmp(argv[0], "check") != 0)
		die("usage: segelctl -c CONF revocation check ADDRESS|CERT.pem [--no-fetch]");
	if (strchr(argv[1], '@') != NULL && strchr(argv[1], '/') == NULL) {
		ks = open_keystore(cfg, 1);
		if ((r = keystore_get_signer(ks, argv[1], time(NULL), &s, why, sizeof(why))) !=
		    0)
			die("%s: %s", argv[1], why[0] ? why : sg_strerror(r));
		x = s->s.cert;
		chain = s->s.chain;
	} else {
		x = read_cert_file(argv[1]);
		ks = open_keystore(cfg, 0);
		if (keystore_validate(ks, x, NULL, KS_USE_VERIFY, time(NULL), NULL, &v) == 0)
			chain = v.chain;
	}
	r = keystore_check_revocation(
	    ks, x, chain, time(NULL), fetch, (long)cfg->revocation_timeout, &rv);
	if (r != 0)
		die("revocation check failed: %s", sg_strerror(r));
	printf("%s: %s: %s\n", argv[1],
	    rv.status == KS_REV_GOOD          ? "good"
	        : rv.status == KS_REV_REVOKED ? "revoked"
	                                      : "unknown",
	    rv.text);
	if (s != NULL)
		keystore_signer_free(s);
	else
		X509_free(x);
	keystore_verdict_clear(&v);
	keystore_close(ks);
	return rv.status == KS_REV_GOOD ? 0 : rv.status == KS_REV_REVOKED ? 3 : 4;
}

int
cmd_audit(struct segel_cfg *cfg, int argc, char **argv)
{
	struct ks_audit_result res;
	struct keystore *ks;
	int r;

	if (argc != 1 || strcmp(argv[0], "verify") != 0)
		die("usage: segelctl -c CONF audit verify");
	ks = open_keystore(cfg, 0);
	r = keystore_audit_verify(ks, &res);
	keystore_close(ks);
	if (r != 0)
		die("audit verify: %s", sg_strerror(r));
	if (res.bad_id != 0) {
		printf("audit log BROKEN at entry %lld: %s\n", res.bad_id, res.problem);
		return 3;
	}
	printf("audit log intact: %lld entries, head %s\n", res.entries, res.head);
	return 0;
}
