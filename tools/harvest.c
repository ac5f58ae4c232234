/*
 * harvest.c - `segelctl cert harvest MESSAGE.eml`: verifies an S/MIME
 * signed message (multipart/signed or opaque signed-data, nested layers
 * too) with the same core the milter uses (sm_verify), then lets the
 * keystore validate the signer against the trust anchors; only if both
 * pass is the certificate stored, with the SMIMECapabilities the signer
 * advertised.  Exit 0 stored, 3 refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smime/verify.h"
#include "tools/cmd.h"

static struct sm_msg *
read_message(struct segel_cfg *cfg, const char *path)
{
	unsigned char buf[65536];
	struct sg_spool *in = NULL;
	struct sm_msg *m = NULL;
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL)
		die("%s: %s", path, strerror(errno));
	if (sg_spool_new("/tmp", 1 << 20, (size_t)cfg->max_message_size, &in) != 0 ||
	    sm_msg_new(&cfg->limits, "/tmp", 1 << 20, &m) != 0)
		die("out of memory");
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (sg_spool_write(in, buf, n) != 0)
			die("%s: larger than limits.max_message_size", path);
	fclose(fp);
	if (sm_msg_parse_spool(m, in) != 0)
		die("%s: not a message: %s", path, sm_msg_problem(m));
	if (sm_msg_eom(m) != 0) {
		/* sm_verify judges the structure itself */
	}
	sg_spool_free(in);
	return m;
}

int
cmd_harvest(struct segel_cfg *cfg, int argc, char **argv)
{
	struct sm_verify_result *res = NULL;
	struct sm_verify_opts opts;
	struct sm_verify_layer *l;
	struct ks_verdict v = {0};
	struct keystore *ks;
	struct sm_msg *m;
	int r;

	if (argc != 1)
		die("usage: segelctl -c CONF cert harvest MESSAGE.eml");
	m = read_message(cfg, argv[0]);
	sm_verify_opts_default(&opts);
	if ((r = sm_verify(m, &opts, &res)) != 0)
		die("%s: %s", argv[0], sg_strerror(r));
	if (res->status != SM_VERIFY_PASS || res->nlayers == 0) {
		printf("%s: refused: signature %s (%s); nothing stored\n", argv[0],
		    sm_verify_status_name(res->status), res->detail);
		sm_verify_result_free(res);
		sm_msg_free(m);
		return 3;
	}
	l = &res->layers[res->primary];
	ks = open_keystore(cfg, 0);
	r = keystore_harvest(ks, l->signer, l->certs, l->caps, l->capslen, time(NULL), &v);
	if (r == SG_ERR_CERT_UNUSABLE) {
		printf("%s: refused: %s (%s); nothing stored\n", argv[0],
		    keystore_refusal_token(v.refusal), v.text);
		r = 3;
	} else if (r != 0) {
		die("harvest: %s", sg_strerror(r));
	} else {
		printf("%s: stored the certificate of %s%s\n", argv[0],
		    l->naddrs ? l->addrs[0] : "the signer",
		    l->caps ? " with its S/MIME capabilities" : "");
	}
	keystore_verdict_clear(&v);
	keystore_close(ks);
	sm_verify_result_free(res);
	sm_msg_free(m);
	return r;
}
