/*
 * testutil.h - small helpers shared by the cmocka unit tests.
 *
 * Everything here is static inline so that a test that does not use a
 * helper gets no unused-function warning.  Helpers fail the running test
 * (fail_msg) instead of returning errors, so test bodies stay short.
 *
 * The test PKI comes from tests/pki/gen-pki.sh; SEGEL_PKI names its
 * directory.  A test that needs it FAILS when the variable is unset.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util/spool.h"

/* 2026-06-01T00:00:00Z: "now" for every validity check in the tests. */
#define TU_NOW_2026_06_01 ((time_t)1780272000)
/* 2036-01-01T00:00:00Z: after every certificate of the test PKI expired. */
#define TU_NOW_2036_01_01 ((time_t)2082758400)

#define TU_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Counts mismatches in table tests so that every row is checked. */
static int table_failures __attribute__((unused));

#define CHECK_ROW(cond, ...)                                                                   \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			print_message(__VA_ARGS__);                                            \
			print_message("\n");                                                   \
			table_failures++;                                                      \
		}                                                                              \
	} while (0)

/* Full path of a file of the test PKI ($SEGEL_PKI/name) into out. */
static inline void
tu_pki_path(const char *name, char *out, size_t outlen)
{
	const char *dir = getenv("SEGEL_PKI");

	if (dir == NULL || dir[0] == '\0')
		fail_msg("SEGEL_PKI is not set: run tests/pki/gen-pki.sh DIR and export "
		         "SEGEL_PKI=DIR");
	if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) >= outlen)
		fail_msg("PKI path too long");
}

/* Reads a whole file; the caller frees.  *len may be NULL.  NUL-terminated. */
static inline unsigned char *
tu_read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (fp == NULL)
		fail_msg("cannot open %s", path);
	do {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				fail_msg("out of memory");
		}
		got = fread(buf + n, 1, cap - n - 1, fp);
		n += got;
	} while (got > 0);
	fclose(fp);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static inline unsigned char *
tu_read_pki(const char *name, size_t *len)
{
	char path[4096];

	tu_pki_path(name, path, sizeof(path));
	return tu_read_file(path, len);
}

/* Reads the first line of a PKI file (a .pass file) without its line end. */
static inline char *
tu_read_pki_line(const char *name)
{
	char *s = (char *)tu_read_pki(name, NULL);

	s[strcspn(s, "\r\n")] = '\0';
	return s;
}

static inline void
tu_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *fp = fopen(path, "wb");

	if (fp == NULL)
		fail_msg("cannot create %s", path);
	if (len > 0 && fwrite(data, 1, len, fp) != len)
		fail_msg("cannot write %s", path);
	fclose(fp);
	if (chmod(path, mode) != 0)
		fail_msg("cannot chmod %s", path);
}

/* Creates a private temporary directory; path must hold 64 bytes. */
static inline void
tu_mkdtemp(char *path, size_t len)
{
	snprintf(path, len, "/tmp/segel-unit.XXXXXX");
	if (mkdtemp(path) == NULL)
		fail_msg("mkdtemp failed");
}

static inline int
tu_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Removes a directory tree (best effort; fixes permissions first). */
static inline void
tu_rmtree(const char *path)
{
	(void)chmod(path, 0700);
	(void)nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline X509 *
tu_load_cert(const char *name)
{
	char path[4096];
	FILE *fp;
	X509 *x;

	tu_pki_path(name, path, sizeof(path));
	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s", path);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		fail_msg("cannot parse certificate %s", path);
	return x;
}

static inline EVP_PKEY *
tu_load_key(const char *name)
{
	char path[4096];
	FILE *fp;
	EVP_PKEY *k;

	tu_pki_path(name, path, sizeof(path));
	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s", path);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL)
		fail_msg("cannot parse key %s", path);
	return k;
}

/* All certificates of a PEM file, in file order. */
static inline STACK_OF(X509) * tu_load_certs(const char *name)
{
	char path[4096];
	STACK_OF(X509) *sk = sk_X509_new_null();
	FILE *fp;
	X509 *x;

	tu_pki_path(name, path, sizeof(path));
	if (sk == NULL || (fp = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s", path);
	while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	fclose(fp);
	if (sk_X509_num(sk) == 0)
		fail_msg("no certificates in %s", path);
	return sk;
}

/* The whole contents of a spool as a malloc'd, NUL-terminated copy. */
static inline unsigned char *
tu_spool_contents(const struct sg_spool *s, size_t *len)
{
	size_t n = sg_spool_size(s), got = 0;
	unsigned char *buf = malloc(n + 1);

	if (buf == NULL)
		fail_msg("out of memory");
	if (n > 0 && (sg_spool_read(s, 0, buf, n, &got) != 0 || got != n))
		fail_msg("cannot read spool back (%zu of %zu bytes)", got, n);
	buf[n] = '\0';
	*len = n;
	return buf;
}

#endif
