/*
 * sign.c - `segelctl sign --as ADDRESS [IN [OUT]]`: signs a message file
 * with the same core and keystore code the milter uses, without an MTA.
 * Authorisation is the caller's: this command is for administrators,
 * tests and benchmarks, and needs the master passphrase.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smime/smime.h"
#include "tools/cmd.h"

static void
slurp(FILE *in, struct sg_spool *sp)
{
	unsigned char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (sg_spool_write(sp, buf, n) != 0)
			die("input too large");
}

static void
spool_out(const struct sg_spool *sp, FILE *out)
{
	unsigned char buf[65536];
	size_t off = 0, got;

	for (;;) {
		if (sg_spool_read(sp, off, buf, sizeof(buf), &got) != 0)
			die("cannot read the output spool");
		if (got == 0)
			break;
		if (fwrite(buf, 1, got, out) != got)
			die("write: %s", strerror(errno));
		off += got;
	}
}

int
cmd_sign(struct segel_cfg *cfg, int argc, char **argv)
{
	const char *as = NULL, *inpath = NULL, *outpath = NULL;
	struct sg_spool *in = NULL, *rendered = NULL;
	struct sm_msg *m = NULL;
	struct sm_output *o = NULL;
	struct ks_signer *signer = NULL;
	struct sm_sign_opts opts;
	struct keystore *ks;
	char why[512];
	FILE *fin = stdin, *fout = stdout;
	int i, r;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--as") == 0 && i + 1 < argc)
			as = argv[++i];
		else if (inpath == NULL)
			inpath = argv[i];
		else if (outpath == NULL)
			outpath = argv[i];
		else
			die("usage: segelctl -c CONF sign --as ADDRESS [IN [OUT]]");
	}
	if (as == NULL)
		die("usage: segelctl -c CONF sign --as ADDRESS [IN [OUT]]");
	if (inpath && strcmp(inpath, "-") != 0 && (fin = fopen(inpath, "rb")) == NULL)
		die("%s: %s", inpath, strerror(errno));
	ks = open_keystore(cfg, 1);
	if ((r = keystore_get_signer(ks, as, time(NULL), &signer, why, sizeof(why))) != 0)
		die("cannot sign as %s: %s", as, why[0] ? why : sg_strerror(r));
	if (sg_spool_new(cfg->spool_dir, (size_t)cfg->memory_threshold,
	        (size_t)cfg->max_message_size + 1024 * 1024, &in) != 0 ||
	    sm_msg_new(&cfg->limits, "/tmp", (size_t)cfg->memory_threshold, &m) != 0)
		die("out of memory");
	slurp(fin, in);
	if ((r = sm_msg_parse_spool(m, in)) != 0 || (r = sm_msg_eom(m)) != 0)
		die("%s: %s: %s", inpath ? inpath : "stdin", sg_strerror(r), sm_msg_problem(m));
	memset(&opts, 0, sizeof(opts));
	opts.digest = (enum sm_digest)cfg->digest;
	opts.rsa_pss = cfg->rsa_padding == 1;
	opts.include_chain = cfg->include_chain;
	opts.spool_dir = "/tmp";
	opts.mem_threshold = (size_t)cfg->memory_threshold;
	if ((r = sm_sign(m, &signer->s, &opts, &o)) != 0)
		die("cannot sign: %s%s%s", sg_strerror(r), sm_msg_problem(m)[0] ? ": " : "",
		    sm_msg_problem(m));
	if (sg_spool_new("/tmp", 1 << 20, (size_t)-1 / 2, &rendered) != 0 ||
	    sm_output_render(m, o, rendered) != 0)
		die("cannot render the signed message");
	if (outpath && (fout = fopen(outpath, "wb")) == NULL)
		die("%s: %s", outpath, strerror(errno));
	spool_out(rendered, fout);
	if (fout != stdout && fclose(fout) != 0)
		die("%s: %s", outpath, strerror(errno));
	if (fin != stdin)
		fclose(fin);
	sg_spool_free(rendered);
	sg_spool_free(in);
	sm_output_free(o);
	sm_msg_free(m);
	keystore_signer_free(signer);
	keystore_close(ks);
	return 0;
}
