/*
 * fuzz_verify.c - libFuzzer harness: inbound verification (sm_verify) of a
 * message fed from one byte stream: multipart/signed, opaque signed-data,
 * nested layers, arbitrary CMS.  Any return other than 0 with a result is
 * a bug, as is any crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include "smime/smime.h"
#include "smime/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_limits lim;
	struct sm_verify_opts o;
	struct sm_verify_result *res = NULL;
	struct sm_msg *m = NULL;
	struct sg_spool *in = NULL;
	int r;

	sm_limits_default(&lim);
	lim.max_mime_depth = 8;
	lim.max_mime_parts = 64;
	lim.max_header_size = 8192;
	sm_verify_opts_default(&o);
	o.max_opaque_size = 1 << 20;
	o.spool_dir = "/tmp";
	if (sg_spool_new("/tmp", 1 << 20, 1 << 20, &in) != 0)
		abort();
	if (sg_spool_write(in, data, size) != 0 || sm_msg_new(&lim, "/tmp", 1 << 20, &m) != 0)
		goto out;
	if (sm_msg_parse_spool(m, in) != 0)
		goto out;
	if (sm_msg_eom(m) != 0) {
		/* sm_verify judges the structure itself */
	}
	r = sm_verify(m, &o, &res);
	if (r != 0 && r != SG_ERR_NOMEM)
		abort();
out:
	sm_verify_result_free(res);
	sm_msg_free(m);
	sg_spool_free(in);
	return 0;
}
