/*
 * check.c - `segelctl cert check CERT.pem [--use sign|encrypt]
 * [--address ADDR] [--at YYYY-MM-DD]`: runs the same validation the milter
 * runs before it signs or encrypts, and prints the verdict and its reason.
 * Revocation is checked too (fetching CRLs or OCSP when needed); unknown
 * status refuses signing and is reported for encryption.  Exit status 0
 * when usable, 3 when refused.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/cmd.h"

static time_t
parse_day(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y-%m-%d", &tm) == NULL)
		die("--at %s: expected YYYY-MM-DD", s);
	return timegm(&tm);
}

int
cmd_cert_check(struct segel_cfg *cfg, int argc, char **argv)
{
	const char *file = NULL, *addr = NULL;
	enum ks_use use = KS_USE_SIGN;
	time_t now = time(NULL);
	struct ks_verdict v;
	struct keystore *ks;
	X509 *x;
	int i, r;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--use") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "sign") == 0)
				use = KS_USE_SIGN;
			else if (strcmp(argv[i], "encrypt") == 0)
				use = KS_USE_ENCRYPT;
			else
				die("--use sign|encrypt");
		} else if (strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
			addr = argv[++i];
		} else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			now = parse_day(argv[++i]);
		} else if (file == NULL) {
			file = argv[i];
		} else {
			die("usage: segelctl -c CONF cert check CERT.pem [--use sign|encrypt] "
			    "[--address ADDR] [--at YYYY-MM-DD]");
		}
	}
	if (file == NULL)
		die("usage: segelctl -c CONF cert check CERT.pem [--use sign|encrypt] "
		    "[--address ADDR] [--at YYYY-MM-DD]");
	x = read_cert_file(file);
	ks = open_keystore(cfg, 0);
	if ((r = keystore_validate(ks, x, addr, use, now, NULL, &v)) != 0)
		die("cannot check %s: %s", file, sg_strerror(r));
	if (v.refusal == KS_OK && cfg->revocation_check) {
		struct ks_rev rv;

		if ((r = keystore_check_revocation(
		         ks, x, v.chain, now, 1, (long)cfg->revocation_timeout, &rv)) != 0)
			die("cannot check the revocation of %s: %s", file, sg_strerror(r));
		if (rv.status == KS_REV_REVOKED) {
			v.refusal = KS_REFUSE_REVOKED;
			snprintf(v.text, sizeof(v.text), "%s", rv.text);
		} else if (rv.status == KS_REV_UNKNOWN && use == KS_USE_SIGN) {
			/* signing is fail-closed (revocation.on_unknown_sign) */
			v.refusal = KS_REFUSE_REVOCATION_UNKNOWN;
			snprintf(v.text, sizeof(v.text), "%s", rv.text);
		} else if (rv.status == KS_REV_UNKNOWN) {
			snprintf(v.text, sizeof(v.text), "valid, %.300s", rv.text);
		}
	}
	printf("%s: %s for %s: %s (%s)\n", file, v.refusal == KS_OK ? "usable" : "refused",
	    use == KS_USE_SIGN ? "signing" : "encryption", keystore_refusal_token(v.refusal),
	    v.text);
	keystore_verdict_clear(&v);
	keystore_close(ks);
	X509_free(x);
	return v.refusal == KS_OK ? 0 : 3;
}
