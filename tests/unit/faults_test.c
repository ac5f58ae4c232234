/*
 * faults_test.c - failure injection for the signing core (issue 6).
 *
 * Linked with -Wl,--wrap for our own allocations (malloc, calloc,
 * realloc: only the calls made by Segel's code and this test are wrapped,
 * not OpenSSL's or libc's internal ones) and for the OpenSSL calls the
 * signing path depends on.  Each injection point is made to fail in turn:
 * sm_sign must return an error code (never 0 with a bad result, never a
 * crash), and under ASan nothing may leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/cms.h>

#include "smime/smime.h"
#include "tests/unit/testutil.h"

/* --- the wrapped functions ---------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count, alloc_fail_at = -1;

static int
alloc_fails(void)
{
	return alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at;
}

void *
__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t a, size_t b)
{
	return alloc_fails() ? NULL : __real_calloc(a, b);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : __real_realloc(p, n);
}

/* OpenSSL functions of the signing path; fail_fn names the one to fail. */
static const char *fail_fn;

#define WRAP(ret, name, params, args)                                                          \
	ret __real_##name params;                                                              \
	ret __wrap_##name params;                                                              \
	ret __wrap_##name params                                                               \
	{                                                                                      \
		if (fail_fn != NULL && strcmp(fail_fn, #name) == 0)                            \
			return 0;                                                              \
		return __real_##name args;                                                     \
	}

WRAP(CMS_ContentInfo *, CMS_sign,
    (X509 * c, EVP_PKEY *k, STACK_OF(X509) * s, BIO *d, unsigned int f), (c, k, s, d, f))
WRAP(CMS_SignerInfo *, CMS_add1_signer,
    (CMS_ContentInfo * cms, X509 *c, EVP_PKEY *k, const EVP_MD *md, unsigned int f),
    (cms, c, k, md, f))
WRAP(BIO *, CMS_dataInit, (CMS_ContentInfo * cms, BIO *icont), (cms, icont))
WRAP(int, CMS_add1_cert, (CMS_ContentInfo * cms, X509 *c), (cms, c))
WRAP(int, CMS_add_smimecap, (CMS_SignerInfo * si, STACK_OF(X509_ALGOR) * a), (si, a))
WRAP(int, EVP_PKEY_sign,
    (EVP_PKEY_CTX * ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
        size_t tbslen),
    (ctx, sig, siglen, tbs, tbslen))
WRAP(int, i2d_CMS_ContentInfo, (const CMS_ContentInfo *a, unsigned char **out), (a, out))
WRAP(int, RAND_bytes, (unsigned char *b, int n), (b, n))

/* --- the message and the signer ------------------------------------------ */

static const char body[] = "--b1\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: 8bit\r\n"
                           "\r\n"
                           "Rapat koordinasi \xe2\x80\x94 hari Senin.\r\n"
                           "--b1\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "Content-Transfer-Encoding: binary\r\n"
                           "\r\n"
                           "\x01\x02\x80\xff\r\n"
                           "--b1--\r\n";

static struct sm_msg *
make_msg(void)
{
	struct sm_limits lim;
	struct sm_msg *m = NULL;

	sm_limits_default(&lim);
	assert_int_equal(sm_msg_new(&lim, "/tmp", 4096, &m), 0);
	assert_int_equal(sm_msg_header(m, "From", "alice@kota.go.id"), 0);
	assert_int_equal(sm_msg_header(m, "MIME-Version", "1.0"), 0);
	assert_int_equal(sm_msg_header(m, "Content-Type", "multipart/mixed; boundary=b1"), 0);
	assert_int_equal(sm_msg_eoh(m), 0);
	assert_int_equal(sm_msg_body(m, body, sizeof(body) - 1), 0);
	assert_int_equal(sm_msg_eom(m), 0);
	return m;
}

struct fixture {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->cert = tu_load_cert("alice.pem");
	f->key = tu_load_key("alice.key");
	f->chain = tu_load_certs("sub-ca.pem");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	X509_free(f->cert);
	EVP_PKEY_free(f->key);
	sk_X509_pop_free(f->chain, X509_free);
	free(f);
	return 0;
}

static int
sign_with_faults(struct fixture *f, long fail_alloc_at)
{
	struct sm_signer s;
	struct sm_sign_opts o;
	struct sm_output *out = NULL;
	struct sm_msg *m;
	int r;

	alloc_fail_at = -1;
	m = make_msg();
	memset(&s, 0, sizeof(s));
	s.cert = f->cert;
	s.key = f->key;
	s.chain = f->chain;
	memset(&o, 0, sizeof(o));
	o.digest = SM_DIGEST_SHA256;
	o.include_chain = 1;
	o.spool_dir = "/tmp";
	o.mem_threshold = 64;
	alloc_count = 0;
	alloc_fail_at = fail_alloc_at;
	r = sm_sign(m, &s, &o, &out);
	alloc_fail_at = -1;
	if (r == 0)
		assert_non_null(out);
	else
		assert_null(out);
	sm_output_free(out);
	sm_msg_free(m);
	return r;
}

/* Every allocation of the signing path, failed in turn. */
static void
test_allocation_failures(void **state)
{
	struct fixture *f = *state;
	long total, i, failed = 0;

	assert_int_equal(sign_with_faults(f, -1), 0);
	/* count the allocations of a good run */
	alloc_count = 0;
	alloc_fail_at = 1L << 40;
	assert_int_equal(sign_with_faults(f, 1L << 40), 0);
	total = alloc_count;
	assert_true(total > 10);
	for (i = 0; i < total; i++) {
		int r = sign_with_faults(f, i);

		if (r != 0) {
			failed++;
			if (r != SG_ERR_NOMEM && r != SG_ERR_CRYPTO && r != SG_ERR_SYSTEM)
				fail_msg("allocation %ld: unexpected code %d (%s)", i, r,
				    sg_strerror(r));
		}
	}
	print_message(
	    "allocations in one signing: %ld, failures reported: %ld\n", total, failed);
	assert_true(failed > 0);
}

/* Each OpenSSL step of the signing path, failed in turn. */
static void
test_openssl_failures(void **state)
{
	static const char *const fns[] = {"CMS_sign", "CMS_add1_signer", "CMS_dataInit",
	    "CMS_add1_cert", "CMS_add_smimecap", "EVP_PKEY_sign", "i2d_CMS_ContentInfo",
	    "RAND_bytes"};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(fns); i++) {
		int got_r;

		fail_fn = fns[i];
		got_r = sign_with_faults(f, -1);
		fail_fn = NULL;
		if (got_r != SG_ERR_CRYPTO)
			fail_msg("%s failing: got %d (%s), want SG_ERR_CRYPTO", fns[i], got_r,
			    sg_strerror(got_r));
	}
	assert_int_equal(sign_with_faults(f, -1), 0); /* and it works again */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_openssl_failures, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
