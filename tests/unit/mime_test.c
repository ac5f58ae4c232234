/*
 * mime_test.c - the smime/ core: Content-Type and CTE parsing, address
 * lists, and signing whole messages through the public API.
 *
 * Every signed result is rendered as the MTA would deliver it, checked to
 * be 7-bit clean with canonical CRLF lines of at most 998 octets, checked
 * for the right header edits, and VERIFIED in-process with OpenSSL's
 * CMS_verify against the test root CA (at a fixed time).  The leaves of
 * the signed entity are decoded again (quoted-printable, base64) and
 * compared with the original bytes.
 *
 * Robustness: the body of a multipart message is cut at every offset and
 * signed; one bit of the signed entity is flipped at every position and
 * the signature must no longer verify.
 *
 * Needs SEGEL_PKI (tests/pki/gen-pki.sh).
 */
#include <strings.h>

#include "testutil.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "smime/mimeint.h"
#include "smime/smime.h"
#include "util/buf.h"

static char spooldir[64];

/* --- the test PKI, loaded once on first use ----------------------------- */

struct pki {
	X509 *alice, *bob, *subca;
	EVP_PKEY *alice_key, *bob_key;
	STACK_OF(X509) * chain; /* sub-ca.pem */
	X509_STORE *store; /* ca.pem, time fixed at 2026-06-01 */
};

static struct pki *the_pki;

static const struct pki *
pki(void)
{
	struct pki *p;
	STACK_OF(X509) * roots;

	if (the_pki != NULL)
		return the_pki;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		fail_msg("out of memory");
	p->alice = tu_load_cert("alice.pem");
	p->alice_key = tu_load_key("alice.key");
	p->bob = tu_load_cert("bob.pem");
	p->bob_key = tu_load_key("bob.key");
	p->chain = tu_load_certs("sub-ca.pem");
	p->subca = sk_X509_value(p->chain, 0);
	roots = tu_load_certs("ca.pem");
	p->store = X509_STORE_new();
	assert_non_null(p->store);
	assert_int_equal(X509_STORE_add_cert(p->store, sk_X509_value(roots, 0)), 1);
	sk_X509_pop_free(roots, X509_free);
	X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(p->store), TU_NOW_2026_06_01);
	the_pki = p;
	return p;
}

static void
pki_free(void)
{
	struct pki *p = the_pki;

	if (p == NULL)
		return;
	X509_free(p->alice);
	X509_free(p->bob);
	EVP_PKEY_free(p->alice_key);
	EVP_PKEY_free(p->bob_key);
	sk_X509_pop_free(p->chain, X509_free);
	X509_STORE_free(p->store);
	free(p);
	the_pki = NULL;
}

/* A signer whose key is in this process. */
static struct sm_signer
make_signer(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * chain)
{
	struct sm_signer s;

	memset(&s, 0, sizeof(s));
	s.cert = cert;
	s.key = key;
	s.chain = chain;
	return s;
}

static struct sm_signer
alice_signer(void)
{
	const struct pki *p = pki();

	return make_signer(p->alice, p->alice_key, p->chain);
}

static struct sm_signer
bob_signer(void)
{
	const struct pki *p = pki();

	return make_signer(p->bob, p->bob_key, p->chain);
}

static struct sm_sign_opts
default_opts(void)
{
	struct sm_sign_opts o;

	memset(&o, 0, sizeof(o));
	o.digest = SM_DIGEST_SHA256;
	o.include_chain = 1;
	o.spool_dir = spooldir;
	o.mem_threshold = 256; /* big outputs go through a spool file */
	return o;
}

/* --- small decoders ----------------------------------------------------- */

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes quoted-printable; fails the test on bad syntax or lines > 76. */
static unsigned char *
qp_decode(const unsigned char *p, size_t n, size_t *outlen)
{
	unsigned char *out = malloc(n + 1);
	size_t i = 0, o = 0, col = 0;

	assert_non_null(out);
	while (i < n) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			i += 2;
			col = 0;
			continue;
		}
		if (++col > 76)
			fail_msg("quoted-printable line longer than 76 characters");
		if (p[i] != '=') {
			assert_true(p[i] == ' ' || p[i] == '\t' || (p[i] > 32 && p[i] < 127));
			out[o++] = p[i++];
			continue;
		}
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 3; /* soft line break */
			col = 0;
			continue;
		}
		if (i + 2 >= n || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
			fail_msg("bad quoted-printable escape at %zu", i);
		out[o++] = (unsigned char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
		i += 3;
		col += 2;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Decodes base64 with line breaks; fails the test on lines > 76. */
static unsigned char *
b64_decode(const unsigned char *p, size_t n, size_t *outlen)
{
	unsigned char *clean = malloc(n + 1), *out = malloc(n + 1);
	size_t i, c = 0, col = 0, pad = 0;
	int got;

	assert_non_null(clean);
	assert_non_null(out);
	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			col = 0;
			continue;
		}
		if (++col > 76)
			fail_msg("base64 line longer than 76 characters");
		clean[c++] = p[i];
	}
	assert_int_equal(c % 4, 0);
	while (pad < 2 && c > pad && clean[c - 1 - pad] == '=')
		pad++;
	got = c ? EVP_DecodeBlock(out, clean, (int)c) : 0;
	assert_true(got >= 0);
	free(clean);
	*outlen = (size_t)got - pad;
	out[*outlen] = '\0';
	return out;
}

/* --- a minimal MIME reader for checking the signed entity --------------- */

/* Finds the nth field called name in a CRLF header block; value unfolded. */
static int
hdr_find(
    const unsigned char *h, size_t hlen, const char *name, size_t nth, char *out, size_t outlen)
{
	size_t nl = strlen(name), pos = 0;

	while (pos < hlen) {
		const unsigned char *eol = memmem(h + pos, hlen - pos, "\r\n", 2);
		size_t end = eol ? (size_t)(eol - h) : hlen;

		if (end - pos > nl && strncasecmp((const char *)h + pos, name, nl) == 0 &&
		    h[pos + nl] == ':' && nth-- == 0) {
			size_t o = 0, v = pos + nl + 1;

			while (v < end && (h[v] == ' ' || h[v] == '\t'))
				v++;
			for (;;) {
				while (v < end && o + 1 < outlen)
					out[o++] = (char)h[v++];
				pos = end + 2;
				if (pos >= hlen || (h[pos] != ' ' && h[pos] != '\t'))
					break;
				eol = memmem(h + pos, hlen - pos, "\r\n", 2);
				end = eol ? (size_t)(eol - h) : hlen;
				v = pos;
			}
			out[o] = '\0';
			return 1;
		}
		pos = end + 2;
	}
	return 0;
}

static void
get_boundary(const char *ct, char *b, size_t blen)
{
	const char *p = strcasestr(ct, "boundary=");
	size_t o = 0;

	assert_non_null(p);
	p += 9;
	if (*p == '"') {
		for (p++; *p && *p != '"' && o + 1 < blen; p++)
			b[o++] = *p;
	} else {
		for (; *p && *p != ';' && *p != ' ' && *p != '\t' && o + 1 < blen; p++)
			b[o++] = *p;
	}
	b[o] = '\0';
	assert_true(o > 0);
}

struct leaf {
	char ctype[256];
	char cte[64];
	unsigned char *data; /* decoded */
	size_t len;
};

struct leaves {
	struct leaf v[600];
	size_t n;
};

static void leaves_free(struct leaves *l);

/* Walks an entity (CRLF canonical) and decodes every leaf in order. */
static void
collect_leaves(const unsigned char *p, size_t n, struct leaves *out, int depth)
{
	const unsigned char *body;
	size_t hlen, blen;
	char ct[256] = "", cte[64] = "";

	assert_true(depth < 80);
	if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		hlen = 0;
		body = p + 2;
	} else {
		const unsigned char *e = memmem(p, n, "\r\n\r\n", 4);

		if (e == NULL)
			fail_msg("entity without a header/body separator");
		hlen = (size_t)(e - p) + 2;
		body = e + 4;
	}
	blen = n - (size_t)(body - p);
	if (!hdr_find(p, hlen, "Content-Type", 0, ct, sizeof(ct)))
		snprintf(ct, sizeof(ct), "text/plain");
	(void)hdr_find(p, hlen, "Content-Transfer-Encoding", 0, cte, sizeof(cte));
	if (strncasecmp(ct, "multipart/", 10) == 0) {
		char b[128];
		size_t pos = 0, bl;
		const unsigned char *child = NULL;
		int closed = 0;

		get_boundary(ct, b, sizeof(b));
		bl = strlen(b);
		while (pos < blen && !closed) {
			const unsigned char *eol = memmem(body + pos, blen - pos, "\r\n", 2);
			size_t end = eol ? (size_t)(eol - body) : blen, ll = end - pos;
			const unsigned char *l = body + pos;

			if (ll >= bl + 2 && l[0] == '-' && l[1] == '-' &&
			    memcmp(l + 2, b, bl) == 0 &&
			    (ll == bl + 2 ||
			        (ll == bl + 4 && l[bl + 2] == '-' && l[bl + 3] == '-'))) {
				if (child != NULL) {
					size_t clen =
					    l >= child + 2 ? (size_t)(l - 2 - child) : 0;

					collect_leaves(child, clen, out, depth + 1);
				}
				closed = ll == bl + 4;
				child = body + end + 2;
			}
			pos = end + 2;
		}
		assert_true(closed); /* every multipart is closed in the output */
		return;
	}
	if (out->n >= TU_ARRAY_LEN(out->v))
		fail_msg("too many leaves");
	{
		struct leaf *lf = &out->v[out->n++];

		snprintf(lf->ctype, sizeof(lf->ctype), "%s", ct);
		snprintf(lf->cte, sizeof(lf->cte), "%s", cte);
		if (strcasecmp(cte, "quoted-printable") == 0) {
			lf->data = qp_decode(body, blen, &lf->len);
		} else if (strcasecmp(cte, "base64") == 0) {
			lf->data = b64_decode(body, blen, &lf->len);
		} else {
			lf->data = malloc(blen + 1);
			assert_non_null(lf->data);
			memcpy(lf->data, body, blen);
			lf->data[blen] = '\0';
			lf->len = blen;
		}
	}
}

static void
leaves_free(struct leaves *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].data);
	l->n = 0;
}

/* --- building, signing, rendering, verifying ---------------------------- */

struct hdr {
	const char *name;
	const char *value;
};

static const struct hdr base_hdrs[] = {
    {"From", "Alice Lestari <alice@kota.go.id>"},
    {"To", "bob@dinas.kota.go.id"},
    {"Subject", "Laporan bulanan"},
    {"Date", "Mon, 1 Jun 2026 09:00:00 +0700"},
};

/*
 * Creates a message: the base headers, then hdrs (NULL-terminated), then
 * the body fed in chunks of the given size.  Returns sm_msg_eom's result.
 */
static int
build_msg(const struct sm_limits *lim, const struct hdr *hdrs, const void *body, size_t blen,
    size_t chunk, struct sm_msg **out)
{
	struct sm_limits def;
	struct sm_msg *m;
	size_t i;

	if (lim == NULL) {
		sm_limits_default(&def);
		lim = &def;
	}
	assert_int_equal(sm_msg_new(lim, spooldir, 128, &m), 0);
	*out = m;
	for (i = 0; i < TU_ARRAY_LEN(base_hdrs); i++)
		assert_int_equal(sm_msg_header(m, base_hdrs[i].name, base_hdrs[i].value), 0);
	for (i = 0; hdrs != NULL && hdrs[i].name != NULL; i++)
		assert_int_equal(sm_msg_header(m, hdrs[i].name, hdrs[i].value), 0);
	assert_int_equal(sm_msg_eoh(m), 0);
	if (chunk == 0)
		chunk = blen ? blen : 1;
	for (i = 0; i < blen; i += chunk)
		assert_int_equal(sm_msg_body(m, (const unsigned char *)body + i,
		                     blen - i < chunk ? blen - i : chunk),
		    0);
	return sm_msg_eom(m);
}

/* A rendered, signed message split into its pieces. */
struct signed_msg {
	unsigned char *raw;
	size_t len;
	size_t hlen; /* header block including its last CRLF */
	char ctype[512];
	char boundary[128];
	const unsigned char *entity;
	size_t elen;
	unsigned char *der;
	size_t dlen;
};

static void
signed_msg_free(struct signed_msg *s)
{
	free(s->raw);
	free(s->der);
	memset(s, 0, sizeof(*s));
}

/* 7-bit clean: no NUL or 8-bit byte, CRLF only, lines of at most 998 octets. */
static void
assert_7bit_clean(const unsigned char *p, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (p[i] >= 0x80 || p[i] == 0)
			fail_msg("byte 0x%02x at offset %zu is not 7-bit clean", p[i], i);
		if (p[i] == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				fail_msg("bare CR at offset %zu", i);
			continue;
		}
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				fail_msg("bare LF at offset %zu", i);
			col = 0;
			continue;
		}
		if (++col > 998)
			fail_msg("line longer than 998 octets at offset %zu", i);
	}
	assert_true(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n');
}

/* Splits a rendered multipart/signed message; fails the test if malformed. */
static void
split_signed(struct signed_msg *s)
{
	const unsigned char *sep = memmem(s->raw, s->len, "\r\n\r\n", 4), *body, *p, *sig,
	                    *sigend;
	char delim[160], close[160];
	size_t blen;

	assert_non_null(sep);
	s->hlen = (size_t)(sep - s->raw) + 2;
	assert_true(hdr_find(s->raw, s->hlen, "Content-Type", 0, s->ctype, sizeof(s->ctype)));
	get_boundary(s->ctype, s->boundary, sizeof(s->boundary));
	body = sep + 4;
	blen = s->len - (size_t)(body - s->raw);
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", s->boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", s->boundary);
	/* the first delimiter may start the body or follow a preamble */
	p = memmem(body - 2, blen + 2, delim, strlen(delim));
	assert_non_null(p);
	s->entity = p + strlen(delim);
	p = memmem(s->entity, s->len - (size_t)(s->entity - s->raw), delim, strlen(delim));
	assert_non_null(p);
	s->elen = (size_t)(p - s->entity);
	sig = memmem(
	    p + strlen(delim), s->len - (size_t)(p + strlen(delim) - s->raw), "\r\n\r\n", 4);
	assert_non_null(sig);
	sig += 4;
	sigend = memmem(sig, s->len - (size_t)(sig - s->raw), close, strlen(close));
	assert_non_null(sigend);
	assert_ptr_equal(sigend + strlen(close), s->raw + s->len); /* nothing after */
	s->der = b64_decode(sig, (size_t)(sigend - sig), &s->dlen);
}

/* CMS_verify of a detached signature over entity: 1 when valid. */
static int
cms_verify_in(X509_STORE *store, const unsigned char *der, size_t dlen,
    const unsigned char *entity, size_t elen)
{
	const unsigned char *q = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)dlen);
	BIO *in;
	int ok = 0;

	if (cms != NULL && (in = BIO_new_mem_buf(entity, (int)elen)) != NULL) {
		ok = CMS_verify(cms, NULL, store, in, NULL, CMS_BINARY) == 1;
		BIO_free(in);
	}
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return ok;
}

/* Verifies against the test root CA only (at 2026-06-01). */
static int
cms_verify(const unsigned char *der, size_t dlen, const unsigned char *entity, size_t elen)
{
	return cms_verify_in(pki()->store, der, dlen, entity, elen);
}

/* Rendered header fields other than Content-* keep their order; exactly one
 * Content-* field (the new Content-Type) and one MIME-Version remain. */
static void
check_header_edits(const struct sm_msg *m, const struct signed_msg *s, const char *micalg)
{
	size_t i, k = 0, pos = 0, n_content = 0, n_mv = 0;
	char want[64], v[64];

	while (pos < s->hlen) {
		const unsigned char *eol = memmem(s->raw + pos, s->hlen - pos, "\r\n", 2);
		size_t end = (size_t)(eol - s->raw);
		const unsigned char *colon = memchr(s->raw + pos, ':', end - pos);

		assert_non_null(eol);
		if (s->raw[pos] != ' ' && s->raw[pos] != '\t') {
			size_t nl;

			assert_non_null(colon);
			nl = (size_t)(colon - (s->raw + pos));
			if (nl >= 8 &&
			    strncasecmp((const char *)s->raw + pos, "Content-", 8) == 0) {
				n_content++;
				assert_true(nl == 12 &&
				    strncasecmp(
				        (const char *)s->raw + pos, "Content-Type", 12) == 0);
			} else if (nl == 12 &&
			    strncasecmp((const char *)s->raw + pos, "MIME-Version", 12) == 0) {
				n_mv++;
			} else {
				/* the next original non-Content field */
				while (k < sm_msg_header_count(m) &&
				    (sm_is_content_field(sm_msg_header_name(m, k)) ||
				        strcasecmp(sm_msg_header_name(m, k), "MIME-Version") ==
				            0))
					k++;
				assert_true(k < sm_msg_header_count(m));
				assert_int_equal(nl, strlen(sm_msg_header_name(m, k)));
				assert_memory_equal(s->raw + pos, sm_msg_header_name(m, k), nl);
				k++;
			}
		}
		pos = end + 2;
	}
	assert_int_equal(n_content, 1);
	assert_int_equal(n_mv, 1);
	assert_true(hdr_find(s->raw, s->hlen, "MIME-Version", 0, v, sizeof(v)));
	assert_string_equal(v, "1.0");
	for (i = k; i < sm_msg_header_count(m); i++) {
		const char *name = sm_msg_header_name(m, i);

		assert_true(sm_is_content_field(name) || strcasecmp(name, "MIME-Version") == 0);
	}
	assert_non_null(strcasestr(s->ctype, "multipart/signed"));
	assert_non_null(strstr(s->ctype, "protocol=\"application/pkcs7-signature\""));
	snprintf(want, sizeof(want), "micalg=%s", micalg);
	assert_non_null(strstr(s->ctype, want));
}

/*
 * Signs m, renders it and checks everything that must hold for any signed
 * message.  Fills *s; the caller frees it with signed_msg_free.
 */
static void
sign_and_check(struct sm_msg *m, const struct sm_signer *signer, const struct sm_sign_opts *o,
    struct signed_msg *s)
{
	struct sm_output *out = NULL;
	struct sg_spool *dst;
	int r;

	memset(s, 0, sizeof(*s));
	r = sm_sign(m, signer, o, &out);
	if (r != 0)
		fail_msg(
		    "sm_sign: %d (%s) problem \"%s\"", r, sg_strerror(r), sm_msg_problem(m));
	assert_non_null(out);
	assert_int_equal(sg_spool_new(spooldir, 1024, SIZE_MAX / 2, &dst), 0);
	assert_int_equal(sm_output_render(m, out, dst), 0);
	s->raw = tu_spool_contents(dst, &s->len);
	sg_spool_free(dst);
	sm_output_free(out);
	assert_7bit_clean(s->raw, s->len);
	split_signed(s);
	check_header_edits(m, s, sm_digest_micalg(o->digest));
	if (!cms_verify(s->der, s->dlen, s->entity, s->elen))
		fail_msg("the signature does not verify");
}

/* --- body templates ----------------------------------------------------- */

/*
 * Expands a template: "@BIN128@" is bytes 0x80..0xff, "@BIN256@" bytes
 * 0x00..0xff, "@NUL@" one NUL byte, "@LONG2000@" 2000 printable bytes.
 */
static unsigned char *
expand(const char *t, size_t *len)
{
	struct sg_buf b;
	int i;

	sg_buf_init(&b, 1 << 20);
	while (*t) {
		if (strncmp(t, "@BIN128@", 8) == 0) {
			for (i = 0x80; i <= 0xff; i++)
				assert_int_equal(sg_buf_putc(&b, i), 0);
			t += 8;
		} else if (strncmp(t, "@BIN256@", 8) == 0) {
			for (i = 0; i <= 0xff; i++)
				assert_int_equal(sg_buf_putc(&b, i), 0);
			t += 8;
		} else if (strncmp(t, "@NUL@", 5) == 0) {
			assert_int_equal(sg_buf_putc(&b, 0), 0);
			t += 5;
		} else if (strncmp(t, "@LONG2000@", 10) == 0) {
			for (i = 0; i < 2000; i++)
				assert_int_equal(
				    sg_buf_putc(&b, "0123456789 abcdefghi="[i % 21]), 0);
			t += 10;
		} else {
			assert_int_equal(sg_buf_putc(&b, *t++), 0);
		}
	}
	*len = b.len;
	return (unsigned char *)sg_buf_steal(&b);
}

/* --- sm_ctype_parse / sm_cte_parse -------------------------------------- */

#define B70 "0123456789012345678901234567890123456789012345678901234567890123456789"

static const struct {
	const char *in;
	int want_r;
	const char *want_type, *want_subtype, *want_boundary, *want_smime, *want_protocol;
} ctype_cases[] = {
    {NULL, 0, "text", "plain", "", "", ""},
    {"text/plain", 0, "text", "plain", "", "", ""},
    {"TEXT/HTML; charset=utf-8", 0, "text", "html", "", "", ""},
    {" text/plain; charset=\"us-ascii\"", 0, "text", "plain", "", "", ""},
    {"text/plain (a comment)", 0, "text", "plain", "", "", ""},
    {"image/png; name=x.png", 0, "image", "png", "", "", ""},
    {"x-custom/y-thing", 0, "x-custom", "y-thing", "", "", ""},
    {"message/rfc822", 0, "message", "rfc822", "", "", ""},
    {"multipart/mixed; boundary=abc", 0, "multipart", "mixed", "abc", "", ""},
    {"multipart/mixed; BOUNDARY=abc", 0, "multipart", "mixed", "abc", "", ""},
    {"Multipart/Alternative; boundary=\"a b:c\"", 0, "multipart", "alternative", "a b:c", "",
        ""},
    {"multipart/mixed;\r\n\tboundary=\"----=_Part_1\"", 0, "multipart", "mixed", "----=_Part_1",
        "", ""},
    {"multipart/mixed;\n boundary=\"x\"", 0, "multipart", "mixed", "x", "", ""},
    {"multipart/mixed; boundary=\"" B70 "\"", 0, "multipart", "mixed", B70, "", ""},
    {"multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=s",
        0, "multipart", "signed", "s", "", "application/pkcs7-signature"},
    {"application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", 0, "application",
        "pkcs7-mime", "", "enveloped-data", ""},
    /* malformed */
    {"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"text/", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"/plain", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; charset=utf-8", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=\"\"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=\"" B70 "1\"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=\"abc \"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=\"a@b\"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=\"a\\\"b\"", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=a; boundary=a", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"multipart/mixed; boundary=a; boundary=b", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"application/"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxx",
        SG_ERR_MALFORMED, "", "", "", "", ""},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/plain", SG_ERR_MALFORMED, "", "", "", "", ""},
    {"application/pkcs7-mime; smime-type="
     "\"enveloped-data-enveloped-data-enveloped-data\"",
        SG_ERR_MALFORMED, "", "", "", "", ""},
};

static void
test_ctype_parse_table(void **state)
{
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(ctype_cases); i++) {
		struct sm_ctype got;
		int got_r = sm_ctype_parse(ctype_cases[i].in, &got);
		const char *in = ctype_cases[i].in ? ctype_cases[i].in : "(null)";

		CHECK_ROW(got_r == ctype_cases[i].want_r, "[%s]: got %d want %d", in, got_r,
		    ctype_cases[i].want_r);
		if (got_r != 0 || ctype_cases[i].want_r != 0)
			continue;
		CHECK_ROW(strcmp(got.type, ctype_cases[i].want_type) == 0 &&
		        strcmp(got.subtype, ctype_cases[i].want_subtype) == 0,
		    "[%s]: got %s/%s", in, got.type, got.subtype);
		CHECK_ROW(strcmp(got.boundary, ctype_cases[i].want_boundary) == 0,
		    "[%s]: boundary got [%s] want [%s]", in, got.boundary,
		    ctype_cases[i].want_boundary);
		CHECK_ROW(strcmp(got.smime_type, ctype_cases[i].want_smime) == 0,
		    "[%s]: smime-type got [%s]", in, got.smime_type);
		CHECK_ROW(strcmp(got.protocol, ctype_cases[i].want_protocol) == 0,
		    "[%s]: protocol got [%s]", in, got.protocol);
	}
	assert_int_equal(table_failures, 0);
}

/*
 * Text after the parameters is not part of any valid Content-Type; ignoring
 * it lets a second boundary parameter through unseen, so a MUA may use a
 * different boundary than the signer did.
 */
static void
test_ctype_parse_trailing_garbage(void **state)
{
	static const char *const bad[] = {
	    "text/plain garbage",
	    "multipart/mixed; boundary=abc def; boundary=xyz",
	    "text/plain; charset=\"utf-8",
	    "multipart/mixed; boundary=abc, boundary=xyz",
	};
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(bad); i++) {
		struct sm_ctype got;
		int got_r = sm_ctype_parse(bad[i], &got);

		CHECK_ROW(got_r == SG_ERR_MALFORMED,
		    "[%s]: got %d (%s/%s boundary [%s]) want %d", bad[i], got_r, got.type,
		    got.subtype, got.boundary, SG_ERR_MALFORMED);
	}
	assert_int_equal(table_failures, 0);
}

/* A Content-Type cut at every offset parses or is MALFORMED, never more. */
static void
test_ctype_parse_truncated(void **state)
{
	static const char full[] =
	    "multipart/alternative; charset=\"utf-8\";\r\n\t"
	    "boundary=\"----=_Part_0_1234.5678\"; smime-type=signed-data; "
	    "protocol=\"application/pkcs7-signature\" (comment)";
	char cut[sizeof(full)];
	size_t n;

	for (n = 0; n < sizeof(full); n++) {
		struct sm_ctype got;
		int got_r;

		memcpy(cut, full, n);
		cut[n] = '\0';
		got_r = sm_ctype_parse(cut, &got);
		assert_true(got_r == 0 || got_r == SG_ERR_MALFORMED);
		if (got_r == 0 && strcmp(got.type, "multipart") == 0)
			assert_true(got.boundary[0] != '\0');
		assert_true(strlen(got.boundary) <= 70);
	}
}

static void
test_cte_parse_table(void **state)
{
	static const struct {
		const char *in;
		enum sm_cte want;
	} cases[] = {
	    {NULL, SM_CTE_NONE},
	    {"7bit", SM_CTE_7BIT},
	    {"7BIT", SM_CTE_7BIT},
	    {" 8bit", SM_CTE_8BIT},
	    {"\r\n\t8bit\r\n", SM_CTE_8BIT},
	    {"binary", SM_CTE_BINARY},
	    {"Quoted-Printable", SM_CTE_QP},
	    {"base64", SM_CTE_BASE64},
	    {"base64 (comment)", SM_CTE_BASE64},
	    {"base64(comment)", SM_CTE_BASE64},
	    {"base64;", SM_CTE_BASE64},
	    {"base64x", SM_CTE_OTHER},
	    {"x-uuencode", SM_CTE_OTHER},
	    {"", SM_CTE_OTHER},
	    {"quoted-printable-but-far-too-long-to-be-a-token", SM_CTE_OTHER},
	};
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		enum sm_cte got = sm_cte_parse(cases[i].in);

		CHECK_ROW(got == cases[i].want, "[%s]: got %d want %d",
		    cases[i].in ? cases[i].in : "(null)", got, cases[i].want);
	}
	assert_int_equal(table_failures, 0);
}

static void
test_is_content_field(void **state)
{
	assert_int_equal(sm_is_content_field("Content-Type"), 1);
	assert_int_equal(sm_is_content_field("content-transfer-encoding"), 1);
	assert_int_equal(sm_is_content_field("CONTENT-X"), 1);
	assert_int_equal(sm_is_content_field("Content"), 0);
	assert_int_equal(sm_is_content_field("X-Content-Type"), 0);
	assert_int_equal(sm_is_content_field("MIME-Version"), 0);
}

static void
test_digest_names(void **state)
{
	assert_string_equal(sm_digest_micalg(SM_DIGEST_SHA256), "sha-256");
	assert_string_equal(sm_digest_micalg(SM_DIGEST_SHA384), "sha-384");
	assert_string_equal(sm_digest_micalg(SM_DIGEST_SHA512), "sha-512");
	assert_int_equal(sm_digest_parse("sha256"), SM_DIGEST_SHA256);
	assert_int_equal(sm_digest_parse("SHA384"), SM_DIGEST_SHA384);
	assert_int_equal(sm_digest_parse("sha512"), SM_DIGEST_SHA512);
	assert_int_equal(sm_digest_parse("sha1"), -1);
	assert_int_equal(sm_digest_parse("sha-256"), -1);
	assert_int_equal(sm_digest_parse(""), -1);
}

/* --- addresses ---------------------------------------------------------- */

struct addr_case {
	const char *in;
	int want_r;
	size_t want_n;
	const char *want[3];
};

static void
run_addr_cases(const struct addr_case *cases, size_t n)
{
	size_t i, j;

	table_failures = 0;
	for (i = 0; i < n; i++) {
		char **got = (char **)1;
		size_t got_n = 99;
		int got_r = sm_addr_parse_list(cases[i].in, &got, &got_n);

		CHECK_ROW(got_r == cases[i].want_r, "[%s]: got %d want %d", cases[i].in, got_r,
		    cases[i].want_r);
		if (got_r != 0) {
			CHECK_ROW(got == NULL && got_n == 0, "[%s]: outputs not cleared",
			    cases[i].in);
			continue;
		}
		CHECK_ROW(got_n == cases[i].want_n, "[%s]: got %zu addresses want %zu",
		    cases[i].in, got_n, cases[i].want_n);
		for (j = 0; j < got_n && j < cases[i].want_n; j++)
			CHECK_ROW(strcmp(got[j], cases[i].want[j]) == 0,
			    "[%s]: #%zu got [%s] want [%s]", cases[i].in, j, got[j],
			    cases[i].want[j]);
		sm_addr_list_free(got, got_n);
	}
	assert_int_equal(table_failures, 0);
}

static void
test_addr_parse_list(void **state)
{
	static const struct addr_case cases[] = {
	    {"alice@kota.go.id", 0, 1, {"alice@kota.go.id"}},
	    {"<alice@kota.go.id>", 0, 1, {"alice@kota.go.id"}},
	    {"Alice Lestari <alice@kota.go.id>", 0, 1, {"alice@kota.go.id"}},
	    {"\"Lestari, Alice\" <alice@kota.go.id>", 0, 1, {"alice@kota.go.id"}},
	    {"Alice\r\n <alice@kota.go.id>", 0, 1, {"alice@kota.go.id"}},
	    {"Alice <alice@KOTA.Go.ID>", 0, 1, {"alice@kota.go.id"}},
	    {"Alice@Kota.Go.Id", 0, 1, {"Alice@kota.go.id"}}, /* local part kept as written */
	    {"a@x.example, B <b@Y.example>", 0, 2, {"a@x.example", "b@y.example"}},
	    {"a@x.example,b@y.example,c@z.example", 0, 3,
	        {"a@x.example", "b@y.example", "c@z.example"}},
	    {"Team: a@x.example, b@y.example;", SG_ERR_MALFORMED, 0, {NULL}},
	    {"Undisclosed recipients:;", SG_ERR_MALFORMED, 0, {NULL}},
	    {"a@x.example, Team: b@y.example;", SG_ERR_MALFORMED, 0, {NULL}},
	    {"not an address", SG_ERR_MALFORMED, 0, {NULL}},
	    {"", SG_ERR_MALFORMED, 0, {NULL}},
	    {"@kota.go.id", SG_ERR_MALFORMED, 0, {NULL}},
	    {"alice@", SG_ERR_MALFORMED, 0, {NULL}},
	    {"a@x.example,", SG_ERR_MALFORMED, 0, {NULL}},
	    {",a@x.example", SG_ERR_MALFORMED, 0, {NULL}},
	    {"alice@kota.go.id>", SG_ERR_MALFORMED, 0, {NULL}},
	    {"(comment) alice@kota.go.id", 0, 1, {"alice@kota.go.id"}},
	};

	run_addr_cases(cases, TU_ARRAY_LEN(cases));
}

/*
 * RFC 5322 corner cases: a trailing comment is valid; junk after the
 * domain or an unclosed angle bracket is not, and must not be glued into
 * the address; a quoted local part keeps its space.
 */
static void
test_addr_parse_list_rfc5322(void **state)
{
	static const struct addr_case cases[] = {
	    {"alice@kota.go.id (Alice Lestari)", 0, 1, {"alice@kota.go.id"}},
	    {"Alice <alice@kota.go.id> (Dinas Kominfo)", 0, 1, {"alice@kota.go.id"}},
	    {"Alice <alice@kota.go.id", SG_ERR_MALFORMED, 0, {NULL}},
	    {"a@b.example garbage", SG_ERR_MALFORMED, 0, {NULL}},
	    {"alice@kota.go.id evil", SG_ERR_MALFORMED, 0, {NULL}},
	    /* libetpan drops the blank inside the quotes ("ab"), a different
	     * mailbox: such an address is refused rather than mangled */
	    {"\"a b\"@x.example", SG_ERR_MALFORMED, 0, {NULL}},
	};

	run_addr_cases(cases, TU_ARRAY_LEN(cases));
}

static void
test_addr_normalize(void **state)
{
	static const struct {
		const char *in;
		const char *want; /* NULL: refused */
	} cases[] = {
	    {"<Alice@KOTA.GO.ID>", "Alice@kota.go.id"},
	    {"alice@kota.go.id", "alice@kota.go.id"}, {"  <a@b.example>", "a@b.example"},
	    {"<>", NULL}, {"", NULL}, {"noatsign", NULL}, {"<@kota.go.id>", NULL},
	    {"user@", NULL}, {"a@b@C.example", NULL}, /* an unquoted '@' in the local part */
	};
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		char *got = sm_addr_normalize(cases[i].in);

		if (cases[i].want == NULL)
			CHECK_ROW(got == NULL, "[%s]: got [%s] want NULL", cases[i].in, got);
		else
			CHECK_ROW(got != NULL && strcmp(got, cases[i].want) == 0,
			    "[%s]: got [%s] want [%s]", cases[i].in, got ? got : "NULL",
			    cases[i].want);
		free(got);
	}
	assert_int_equal(table_failures, 0);
	assert_string_equal(sm_addr_domain("alice@kota.go.id"), "kota.go.id");
	assert_string_equal(sm_addr_domain("a@b@c"), "c");
	assert_string_equal(sm_addr_domain("none"), "");
}

/* An unbalanced angle bracket is bad input, not part of the address. */
static void
test_addr_normalize_unbalanced(void **state)
{
	static const char *const bad[] = {"<a@b.example", "a@b.example>"};
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(bad); i++) {
		char *got = sm_addr_normalize(bad[i]);

		CHECK_ROW(got == NULL, "[%s]: got [%s] want NULL", bad[i], got);
		free(got);
	}
	assert_int_equal(table_failures, 0);
}

static void
test_cert_addresses(void **state)
{
	const struct pki *p = pki();
	char **list;
	size_t n;

	assert_int_equal(sm_cert_addresses(p->alice, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0], "alice@kota.go.id");
	sm_addr_list_free(list, n);
	assert_int_equal(sm_cert_has_address(p->alice, "alice@kota.go.id"), 1);
	assert_int_equal(sm_cert_has_address(p->alice, "<alice@KOTA.GO.ID>"), 1);
	assert_int_equal(sm_cert_has_address(p->alice, "Alice@kota.go.id"), 0);
	assert_int_equal(sm_cert_has_address(p->alice, "bob@dinas.kota.go.id"), 0);
	assert_int_equal(sm_cert_has_address(p->alice, "alice@kota.go.id.evil.example"), 0);
	assert_int_equal(sm_cert_has_address(p->bob, "bob@dinas.kota.go.id"), 1);
	/* no subjectAltName: no addresses, even with an emailAddress in the DN */
	{
		X509 *nosan = tu_load_cert("nosan.pem");

		assert_int_equal(sm_cert_addresses(nosan, &list, &n), 0);
		assert_int_equal(n, 0);
		sm_addr_list_free(list, n);
		assert_int_equal(sm_cert_has_address(nosan, "nosan@kota.go.id"), 0);
		X509_free(nosan);
	}
}

/* --- sm_msg basics ------------------------------------------------------ */

static void
test_msg_headers(void **state)
{
	struct sm_limits lim;
	struct sm_msg *m;

	sm_limits_default(&lim);
	assert_int_equal(sm_msg_new(&lim, spooldir, 128, &m), 0);
	assert_int_equal(sm_msg_header(m, "Subject", "  leading blanks dropped"), 0);
	assert_int_equal(sm_msg_header(m, "X-Multi", "one"), 0);
	assert_int_equal(sm_msg_header(m, "x-multi", "two"), 0);
	assert_int_equal(sm_msg_header(m, "Bad Name", "v"), SG_ERR_MALFORMED);
	assert_int_equal(sm_msg_header(m, "Bad:Name", "v"), SG_ERR_MALFORMED);
	assert_int_equal(sm_msg_header(m, "", "v"), SG_ERR_MALFORMED);
	assert_true(sm_msg_problem(m)[0] != '\0');
	assert_int_equal(sm_msg_header_count(m), 3);
	assert_string_equal(sm_msg_header_value(m, 0), "leading blanks dropped");
	assert_string_equal(sm_msg_get(m, "X-MULTI", 1), "two");
	assert_null(sm_msg_get(m, "X-Multi", 2));
	assert_int_equal(sm_msg_count(m, "x-multi"), 2);
	assert_null(sm_msg_header_name(m, 3));
	assert_int_equal(sm_msg_eoh(m), 0);
	assert_int_equal(sm_msg_body(m, "hello\r\n", 7), 0);
	assert_int_equal(sm_msg_eom(m), 0);
	assert_int_equal(sm_msg_kind(m), SM_KIND_PLAIN);
	assert_int_equal(sg_spool_size(sm_msg_body_spool(m)), 7);
	sm_msg_free(m);
	sm_msg_free(NULL);
}

/* --- signing: successful cases ------------------------------------------ */

struct leaf_want {
	const char *ctype; /* exact Content-Type value in the entity */
	const char *cte; /* "7bit" also matches no field */
	const char *data; /* template of the decoded content */
};

static const struct sign_case {
	const char *name;
	struct hdr hdrs[5];
	const char *body;
	struct leaf_want leaves[4];
} sign_cases[] = {
    {"plain text",
        {{"MIME-Version", "1.0"}, {"Content-Type", "text/plain; charset=us-ascii"},
            {NULL, NULL}},
        "Hello Bob,\r\n\r\nthe meeting is at 10.\r\n",
        {{"text/plain; charset=us-ascii", "7bit",
            "Hello Bob,\r\n\r\nthe meeting is at 10.\r\n"}}},
    {"8bit UTF-8 text",
        {{"MIME-Version", "1.0"}, {"Content-Type", "text/plain; charset=utf-8"},
            {"Content-Transfer-Encoding", "8bit"}, {NULL, NULL}},
        "Selamat pagi, caf\xc3\xa9 \xe2\x98\x95\r\nTrailing blank \r\nFrom here on\r\n.\r\n"
        "tab\t\r\n",
        {{"text/plain; charset=utf-8", "quoted-printable",
            "Selamat pagi, caf\xc3\xa9 \xe2\x98\x95\r\nTrailing blank \r\nFrom here on\r\n.\r\n"
            "tab\t\r\n"}}},
    {"multipart/mixed with 8bit text and binary",
        {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary=\"b1\""},
            {NULL, NULL}},
        "This is a preamble.\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Terima kasih \xe2\x80\x94 sampai jumpa.\r\n"
        "--b1\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
        "\r\n"
        "@BIN128@\r\n"
        "--b1--\r\n"
        "epilogue\r\n",
        {{"text/plain; charset=utf-8", "quoted-printable",
             "Terima kasih \xe2\x80\x94 sampai jumpa."},
            {"application/octet-stream", "base64", "@BIN128@"}}},
    {"nested multipart/alternative in mixed",
        {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary=\"outer\""},
            {NULL, NULL}},
        "--outer\r\n"
        "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
        "\r\n"
        "--inner\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Plain version.\r\n"
        "--inner\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "<p>Versi HTML \xe2\x9c\x93</p>\r\n"
        "--inner--\r\n"
        "--outer\r\n"
        "Content-Type: application/pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "JVBERi0xLjQKJcfsj6IK\r\n"
        "--outer--\r\n",
        {{"text/plain; charset=us-ascii", "7bit", "Plain version."},
            {"text/html; charset=utf-8", "quoted-printable", "<p>Versi HTML \xe2\x9c\x93</p>"},
            {"application/pdf", "base64", "%PDF-1.4\n%\xc7\xec\x8f\xa2\n"}}},
    {"no Content-* fields at all", {{NULL, NULL}}, "Just text.\r\n",
        {{"text/plain; charset=us-ascii", "7bit", "Just text.\r\n"}}},
    {"no Content-* fields, 8-bit body", {{NULL, NULL}}, "Harga: 5\xe2\x82\xac\r\n",
        {{"text/plain; charset=utf-8", "quoted-printable", "Harga: 5\xe2\x82\xac\r\n"}}},
    {"Content-Type without MIME-Version",
        {{"Content-Type", "text/plain; charset=us-ascii"}, {NULL, NULL}},
        "No MIME-Version here.\r\n",
        {{"text/plain; charset=us-ascii", "7bit", "No MIME-Version here.\r\n"}}},
    {"LF line ends become CRLF",
        {{"MIME-Version", "1.0"}, {"Content-Type", "text/plain"}, {NULL, NULL}},
        "line one\nline two\n\nend\n",
        {{"text/plain", "7bit", "line one\r\nline two\r\n\r\nend\r\n"}}},
    {"line over 998 octets",
        {{"MIME-Version", "1.0"}, {"Content-Type", "text/plain"}, {NULL, NULL}},
        "short\r\n@LONG2000@\r\nshort\r\n",
        {{"text/plain", "quoted-printable", "short\r\n@LONG2000@\r\nshort\r\n"}}},
    {"NUL and bare CR in text",
        {{"MIME-Version", "1.0"}, {"Content-Type", "text/plain"}, {NULL, NULL}},
        "a@NUL@b\r\nc\rd\r\n", {{"text/plain", "quoted-printable", "a@NUL@b\r\nc\rd\r\n"}}},
    {"binary part with every byte value",
        {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary=zz"},
            {NULL, NULL}},
        "--zz\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "\r\n"
        "@BIN256@@BIN256@\r\n"
        "--zz--\r\n",
        {{"application/octet-stream", "base64", "@BIN256@@BIN256@"}}},
    {"8-bit preamble and epilogue are left out",
        {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary=\"pp\""},
            {"Content-Transfer-Encoding", "8bit"}, {NULL, NULL}},
        "Pr\xc3\xa9"
        "ambule\r\n"
        "--pp\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "ascii only\r\n"
        "--pp--\r\n"
        "\xc3\xa9pilogue\r\n",
        {{"text/plain", "7bit", "ascii only"}}},
    {"top-level base64 is kept",
        {{"MIME-Version", "1.0"}, {"Content-Type", "application/octet-stream"},
            {"Content-Transfer-Encoding", "base64"}, {NULL, NULL}},
        "aGVsbG//\r\n", {{"application/octet-stream", "base64", "hello\xff"}}},
    {"part without header fields",
        {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary=q"},
            {NULL, NULL}},
        "--q\r\n"
        "\r\n"
        "default type\r\n"
        "--q--\r\n",
        {{"text/plain", "7bit", "default type"}}},
};

static void
check_leaves(const char *name, const struct signed_msg *s, const struct leaf_want *want)
{
	struct leaves *got = calloc(1, sizeof(*got));
	size_t i, nwant = 0;

	assert_non_null(got);
	collect_leaves(s->entity, s->elen, got, 0);
	while (nwant < 4 && want[nwant].ctype != NULL)
		nwant++;
	if (got->n != nwant)
		fail_msg("%s: got %zu leaves want %zu", name, got->n, nwant);
	for (i = 0; i < nwant; i++) {
		size_t wlen;
		unsigned char *wdata = expand(want[i].data, &wlen);
		int cte_ok = strcasecmp(got->v[i].cte, want[i].cte) == 0 ||
		    (strcmp(want[i].cte, "7bit") == 0 && got->v[i].cte[0] == '\0');

		if (strcasecmp(got->v[i].ctype, want[i].ctype) != 0)
			fail_msg("%s: leaf %zu Content-Type [%s] want [%s]", name, i,
			    got->v[i].ctype, want[i].ctype);
		if (!cte_ok)
			fail_msg("%s: leaf %zu CTE [%s] want [%s]", name, i, got->v[i].cte,
			    want[i].cte);
		if (got->v[i].len != wlen || memcmp(got->v[i].data, wdata, wlen) != 0)
			fail_msg("%s: leaf %zu decoded content differs (%zu vs %zu bytes)",
			    name, i, got->v[i].len, wlen);
		free(wdata);
	}
	leaves_free(got);
	free(got);
}

static void
test_sign_cases(void **state)
{
	static const size_t chunks[] = {0, 1, 7};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	size_t i, c;

	for (i = 0; i < TU_ARRAY_LEN(sign_cases); i++) {
		size_t blen;
		unsigned char *body = expand(sign_cases[i].body, &blen);

		for (c = 0; c < TU_ARRAY_LEN(chunks); c++) {
			struct signed_msg s;
			struct sm_msg *m;
			int r = build_msg(NULL, sign_cases[i].hdrs, body, blen, chunks[c], &m);

			if (r != 0)
				fail_msg("%s: sm_msg_eom %d (%s)", sign_cases[i].name, r,
				    sm_msg_problem(m));
			print_message("    %s (chunk %zu)\n", sign_cases[i].name, chunks[c]);
			sign_and_check(m, &signer, &o, &s);
			check_leaves(sign_cases[i].name, &s, sign_cases[i].leaves);
			signed_msg_free(&s);
			sm_msg_free(m);
		}
		free(body);
	}
}

/* sm_sign leaves the message alone: signing twice gives two valid results. */
static void
test_sign_twice(void **state)
{
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct signed_msg s1, s2;
	struct sm_msg *m;
	static const struct hdr h[] = {
	    {"Content-Type", "text/plain; charset=utf-8"}, {NULL, NULL}};

	assert_int_equal(build_msg(NULL, h, "caf\xc3\xa9\r\n", 7, 0, &m), 0);
	sign_and_check(m, &signer, &o, &s1);
	sign_and_check(m, &signer, &o, &s2);
	assert_int_equal(s1.elen, s2.elen);
	assert_memory_equal(s1.entity, s2.entity, s1.elen);
	assert_string_not_equal(s1.boundary, s2.boundary); /* random boundaries */
	signed_msg_free(&s1);
	signed_msg_free(&s2);
	sm_msg_free(m);
}

/* A whole message read from a spool (LF line ends, folded fields). */
static void
test_parse_spool_and_sign(void **state)
{
	static const char raw[] = "From: Alice <alice@kota.go.id>\n"
	                          "To: bob@dinas.kota.go.id\n"
	                          "Subject: a folded\n\tsubject\n"
	                          "MIME-Version: 1.0\n"
	                          "Content-Type: multipart/mixed;\n boundary=\"fold\"\n"
	                          "\n"
	                          "--fold\n"
	                          "Content-Type: text/plain; charset=utf-8\n"
	                          "\n"
	                          "Halo d\xc3\xbcnia\n"
	                          "--fold--\n";
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_limits lim;
	struct sg_spool *in;
	struct signed_msg s;
	struct sm_msg *m;
	static const struct leaf_want want[] = {
	    {"text/plain; charset=utf-8", "quoted-printable", "Halo d\xc3\xbcnia"},
	    {NULL, NULL, NULL}};

	sm_limits_default(&lim);
	assert_int_equal(sg_spool_new(spooldir, 64, 1 << 20, &in), 0);
	assert_int_equal(sg_spool_write(in, raw, sizeof(raw) - 1), 0);
	assert_int_equal(sm_msg_new(&lim, spooldir, 64, &m), 0);
	assert_int_equal(sm_msg_parse_spool(m, in), 0);
	assert_int_equal(sm_msg_header_count(m), 5);
	assert_string_equal(sm_msg_get(m, "Subject", 0), "a folded\n\tsubject");
	assert_int_equal(sm_msg_eom(m), 0);
	sign_and_check(m, &signer, &o, &s);
	check_leaves("parsed", &s, want);
	signed_msg_free(&s);
	sm_msg_free(m);
	sg_spool_free(in);
}

/* A whole message cut at every offset: parse, eom, sign never crash. */
static void
test_parse_spool_truncated(void **state)
{
	static const char raw[] = "From: Alice <alice@kota.go.id>\r\n"
	                          "Subject: x\r\n"
	                          "Content-Type: multipart/mixed;\r\n boundary=\"t\"\r\n"
	                          "\r\n"
	                          "--t\r\n"
	                          "Content-Type: text/plain\r\n"
	                          "\r\n"
	                          "caf\xc3\xa9\r\n"
	                          "--t--\r\n";
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_limits lim;
	size_t n;

	sm_limits_default(&lim);
	for (n = 0; n <= sizeof(raw) - 1; n++) {
		struct sm_output *out = NULL;
		struct sg_spool *in;
		struct sm_msg *m;
		int r;

		assert_int_equal(sg_spool_new(spooldir, 1 << 16, 1 << 20, &in), 0);
		assert_int_equal(sg_spool_write(in, raw, n), 0);
		assert_int_equal(sm_msg_new(&lim, spooldir, 64, &m), 0);
		r = sm_msg_parse_spool(m, in);
		if (r == 0)
			r = sm_msg_eom(m);
		if (r == 0)
			r = sm_sign(m, &signer, &o, &out);
		if (r != 0 && r != SG_ERR_MALFORMED && r != SG_ERR_LIMIT)
			fail_msg("cut at %zu: unexpected %d (%s)", n, r, sg_strerror(r));
		if (r != 0)
			assert_true(sm_msg_problem(m)[0] != '\0');
		sm_output_free(out);
		sm_msg_free(m);
		sg_spool_free(in);
	}
}

/* --- signing: algorithms ------------------------------------------------ */

static CMS_SignerInfo *
only_signer_info(CMS_ContentInfo *cms)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);

	assert_non_null(sis);
	assert_int_equal(sk_CMS_SignerInfo_num(sis), 1);
	return sk_CMS_SignerInfo_value(sis, 0);
}

static void
check_algorithms(const struct signed_msg *s, int want_digest_nid, int want_sig_nid)
{
	const unsigned char *q = s->der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)s->dlen);
	X509_ALGOR *dig, *sig;
	const ASN1_OBJECT *obj;
	CMS_SignerInfo *si;

	assert_non_null(cms);
	si = only_signer_info(cms);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	X509_ALGOR_get0(&obj, NULL, NULL, dig);
	assert_int_equal(OBJ_obj2nid(obj), want_digest_nid);
	if (want_sig_nid != NID_undef) {
		X509_ALGOR_get0(&obj, NULL, NULL, sig);
		assert_int_equal(OBJ_obj2nid(obj), want_sig_nid);
	}
	/* the signed attributes RFC 8551 asks for */
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_encrypKeyPref, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1) >= 0);
	CMS_ContentInfo_free(cms);
}

static void
sign_simple(const struct sm_signer *signer, const struct sm_sign_opts *o, struct signed_msg *s,
    struct sm_msg **mp)
{
	static const struct hdr h[] = {{"MIME-Version", "1.0"},
	    {"Content-Type", "text/plain; charset=utf-8"},
	    {"Content-Transfer-Encoding", "8bit"}, {NULL, NULL}};
	static const char body[] = "Surat resmi \xe2\x80\x94 ditandatangani.\r\n";

	assert_int_equal(build_msg(NULL, h, body, sizeof(body) - 1, 0, mp), 0);
	sign_and_check(*mp, signer, o, s);
}

static void
test_sign_algorithms(void **state)
{
	static const struct {
		const char *name;
		int bob, pss;
		enum sm_digest digest;
		int want_digest, want_sig;
	} cases[] = {
	    {"RSA PKCS#1 v1.5 SHA-256", 0, 0, SM_DIGEST_SHA256, NID_sha256, NID_undef},
	    {"RSA PKCS#1 v1.5 SHA-384", 0, 0, SM_DIGEST_SHA384, NID_sha384, NID_undef},
	    {"RSA PKCS#1 v1.5 SHA-512", 0, 0, SM_DIGEST_SHA512, NID_sha512, NID_undef},
	    {"RSA-PSS SHA-256", 0, 1, SM_DIGEST_SHA256, NID_sha256, NID_rsassaPss},
	    {"RSA-PSS SHA-512", 0, 1, SM_DIGEST_SHA512, NID_sha512, NID_rsassaPss},
	    {"ECDSA P-256 SHA-256", 1, 0, SM_DIGEST_SHA256, NID_sha256, NID_undef},
	    {"ECDSA P-256 SHA-384", 1, 0, SM_DIGEST_SHA384, NID_sha384, NID_undef},
	    {"ECDSA ignores rsa_pss", 1, 1, SM_DIGEST_SHA256, NID_sha256, NID_undef},
	};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct sm_signer signer = cases[i].bob ? bob_signer() : alice_signer();
		struct sm_sign_opts o = default_opts();
		struct signed_msg s;
		struct sm_msg *m;

		print_message("    %s\n", cases[i].name);
		o.digest = cases[i].digest;
		o.rsa_pss = cases[i].pss;
		sign_simple(&signer, &o, &s, &m);
		check_algorithms(&s, cases[i].want_digest, cases[i].want_sig);
		signed_msg_free(&s);
		sm_msg_free(m);
	}
}

/* Without include_chain the verifier must know the intermediate itself. */
static void
test_sign_without_chain(void **state)
{
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct signed_msg s;
	struct sm_output *out = NULL;
	struct sg_spool *dst;
	struct sm_msg *m;
	const unsigned char *q;
	CMS_ContentInfo *cms;
	STACK_OF(X509) * certs;

	/* with the chain: signer and intermediate are in the signature */
	sign_simple(&signer, &o, &s, &m);
	q = s.der;
	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &q, (long)s.dlen));
	certs = CMS_get1_certs(cms);
	assert_int_equal(sk_X509_num(certs), 2);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	signed_msg_free(&s);

	/* without: only the signer; verifies only when the caller knows sub-ca */
	o.include_chain = 0;
	assert_int_equal(sm_sign(m, &signer, &o, &out), 0);
	assert_int_equal(sg_spool_new(spooldir, 1024, SIZE_MAX / 2, &dst), 0);
	assert_int_equal(sm_output_render(m, out, dst), 0);
	memset(&s, 0, sizeof(s));
	s.raw = tu_spool_contents(dst, &s.len);
	split_signed(&s);
	q = s.der;
	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &q, (long)s.dlen));
	certs = CMS_get1_certs(cms);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), pki()->alice), 0);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	assert_int_equal(cms_verify(s.der, s.dlen, s.entity, s.elen), 0);
	{
		/* a verifier that has the intermediate already */
		X509_STORE *st = X509_STORE_new();
		STACK_OF(X509) *roots = tu_load_certs("ca.pem");

		assert_non_null(st);
		assert_int_equal(X509_STORE_add_cert(st, sk_X509_value(roots, 0)), 1);
		assert_int_equal(X509_STORE_add_cert(st, pki()->subca), 1);
		X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), TU_NOW_2026_06_01);
		assert_int_equal(cms_verify_in(st, s.der, s.dlen, s.entity, s.elen), 1);
		X509_STORE_free(st);
		sk_X509_pop_free(roots, X509_free);
	}
	signed_msg_free(&s);
	sg_spool_free(dst);
	sm_output_free(out);
	sm_msg_free(m);
}

/* The header edits themselves: deletes (last occurrence first), adds. */
static void
test_sign_edits(void **state)
{
	static const struct hdr h[] = {{"Content-Type", "text/plain"},
	    {"Content-Description", "first"}, {"X-Other", "keep"},
	    {"Content-Description", "second"}, {"Content-Transfer-Encoding", "7bit"},
	    {NULL, NULL}};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_output *out = NULL;
	struct sm_msg *m;
	size_t i, ndel = 0, nadd = 0;

	assert_int_equal(build_msg(NULL, h, "x\r\n", 3, 0, &m), 0);
	assert_int_equal(sm_sign(m, &signer, &o, &out), 0);
	for (i = 0; i < out->nedits; i++) {
		const struct sm_edit *e = &out->edits[i];

		if (e->op == SM_EDIT_DELETE) {
			ndel++;
			assert_true(sm_is_content_field(e->name));
			assert_non_null(sm_msg_get(m, e->name, e->index - 1));
			/* a later occurrence of a name is deleted before an earlier one */
			if (strcasecmp(e->name, "Content-Description") == 0)
				assert_int_equal(e->index, ndel == 2 ? 2 : 1);
		} else {
			nadd++;
			assert_non_null(e->value);
		}
	}
	assert_int_equal(ndel, 4);
	assert_int_equal(nadd, 2); /* MIME-Version and Content-Type */
	assert_string_equal(out->edits[out->nedits - 1].name, "Content-Type");
	assert_non_null(strstr(out->edits[out->nedits - 1].value, "multipart/signed"));
	sm_output_free(out);
	sm_msg_free(m);
}

/* --- signing: refusals and limits --------------------------------------- */

static const struct {
	const char *name;
	struct hdr hdrs[4];
	const char *body;
	int want;
	enum sm_kind want_kind;
} refuse_cases[] = {
    {"already multipart/signed",
        {{"Content-Type",
             "multipart/signed; protocol=\"application/pkcs7-signature\"; "
             "micalg=sha-256; boundary=\"s\""},
            {NULL, NULL}},
        "--s\r\nContent-Type: text/plain\r\n\r\nx\r\n--s\r\n"
        "Content-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--s--\r\n",
        SG_ERR_ALREADY_SMIME, SM_KIND_SIGNED},
    {"pkcs7-mime enveloped",
        {{"Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m"},
            {"Content-Transfer-Encoding", "base64"}, {NULL, NULL}},
        "MIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n", SG_ERR_ALREADY_SMIME, SM_KIND_ENCRYPTED},
    {"x-pkcs7-mime without smime-type",
        {{"Content-Type", "application/x-pkcs7-mime"}, {NULL, NULL}}, "AAAA\r\n",
        SG_ERR_ALREADY_SMIME, SM_KIND_ENCRYPTED},
    {"pkcs7-mime signed-data",
        {{"Content-Type", "application/pkcs7-mime; smime-type=signed-data"}, {NULL, NULL}},
        "AAAA\r\n", SG_ERR_ALREADY_SMIME, SM_KIND_SIGNED},
    {"multipart without boundary", {{"Content-Type", "multipart/mixed"}, {NULL, NULL}},
        "--x\r\n\r\nhi\r\n--x--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"boundary never appears",
        {{"Content-Type", "multipart/mixed; boundary=\"zz\""}, {NULL, NULL}},
        "no delimiter at all\r\n--z\r\n--zzz\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"only the close delimiter",
        {{"Content-Type", "multipart/mixed; boundary=\"zz\""}, {NULL, NULL}},
        "preamble\r\n--zz--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"part headers cut by a boundary",
        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Type: text/plain\r\n--zz--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"message ends in part headers",
        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Type: text/plain\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"unparsable part Content-Type",
        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Type: /\r\n\r\nx\r\n--zz--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"inner multipart without boundary",
        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Type: multipart/alternative\r\n\r\nx\r\n--zz--\r\n", SG_ERR_MALFORMED,
        SM_KIND_PLAIN},
    {"two part Content-Type fields",
        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Type: text/plain\r\nX-Between: 1\r\n"
        "Content-Type: application/octet-stream\r\n\r\nx\r\n--zz--\r\n",
        SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"two part CTE fields", {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
        "--zz\r\nContent-Transfer-Encoding: 7bit\r\nX-Between: 1\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nx\r\n--zz--\r\n",
        SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"two top-level Content-Type fields",
        {{"Content-Type", "text/plain"}, {"Content-Type", "text/html"}, {NULL, NULL}}, "x\r\n",
        SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"8-bit data in a base64 part",
        {{"Content-Type", "text/plain"}, {"Content-Transfer-Encoding", "base64"}, {NULL, NULL}},
        "caf\xc3\xa9\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"8-bit data in an unknown encoding",
        {{"Content-Type", "text/plain"}, {"Content-Transfer-Encoding", "x-uuencode"},
            {NULL, NULL}},
        "caf\xc3\xa9\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"multipart with a base64 body",
        {{"Content-Type", "multipart/mixed; boundary=zz"},
            {"Content-Transfer-Encoding", "base64"}, {NULL, NULL}},
        "--zz\r\n\r\nx\r\n--zz--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
    {"boundary of 71 characters",
        {{"Content-Type", "multipart/mixed; boundary=\"" B70 "1\""}, {NULL, NULL}},
        "--" B70 "1\r\n\r\nx\r\n--" B70 "1--\r\n", SG_ERR_MALFORMED, SM_KIND_PLAIN},
};

static void
test_sign_refusals(void **state)
{
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(refuse_cases); i++) {
		struct sm_output *out = (struct sm_output *)1;
		struct sm_msg *m;
		int got = build_msg(NULL, refuse_cases[i].hdrs, refuse_cases[i].body,
		    strlen(refuse_cases[i].body), 0, &m);

		if (got == 0) {
			assert_int_equal(sm_msg_kind(m), refuse_cases[i].want_kind);
			got = sm_sign(m, &signer, &o, &out);
			if (got != 0)
				assert_null(out);
		}
		if (got != refuse_cases[i].want)
			fail_msg("%s: got %d (%s) want %d", refuse_cases[i].name, got,
			    sm_msg_problem(m), refuse_cases[i].want);
		if (got == SG_ERR_MALFORMED && sm_msg_problem(m)[0] == '\0')
			fail_msg("%s: no problem text", refuse_cases[i].name);
		sm_msg_free(m);
	}
}

/* Appends k nested multiparts with one text leaf at depth k. */
static void
put_nested(struct sg_buf *b, int level, int k)
{
	if (level == k) {
		assert_int_equal(sg_buf_puts(b, "Content-Type: text/plain\r\n\r\nleaf\r\n"), 0);
		return;
	}
	if (level > 0)
		assert_int_equal(
		    sg_buf_putf(
		        b, "Content-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n", level),
		    0);
	assert_int_equal(sg_buf_putf(b, "--n%d\r\n", level), 0);
	put_nested(b, level + 1, k);
	assert_int_equal(sg_buf_putf(b, "--n%d--\r\n", level), 0);
}

static int
sign_nested(size_t max_depth, int k, struct signed_msg *s)
{
	static const struct hdr h[] = {
	    {"Content-Type", "multipart/mixed; boundary=\"n0\""}, {NULL, NULL}};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_limits lim;
	struct sm_output *out = NULL;
	struct sg_buf b;
	struct sm_msg *m;
	int r;

	sm_limits_default(&lim);
	lim.max_mime_depth = max_depth;
	sg_buf_init(&b, 1 << 20);
	put_nested(&b, 0, k);
	assert_int_equal(build_msg(&lim, h, b.data, b.len, 0, &m), 0);
	if (s != NULL) {
		sign_and_check(m, &signer, &o, s);
		r = 0;
	} else {
		r = sm_sign(m, &signer, &o, &out);
		assert_null(out);
		assert_true(sm_msg_problem(m)[0] != '\0');
	}
	sm_msg_free(m);
	sg_buf_free(&b);
	return r;
}

static void
test_limit_depth(void **state)
{
	static const size_t limits[] = {1, 3, 16};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(limits); i++) {
		struct signed_msg s;
		struct leaves *lv = calloc(1, sizeof(*lv));

		/* exactly at the limit: signed, and the leaf survives */
		sign_nested(limits[i], (int)limits[i], &s);
		collect_leaves(s.entity, s.elen, lv, 0);
		assert_int_equal(lv->n, 1);
		assert_memory_equal(lv->v[0].data, "leaf", 4);
		leaves_free(lv);
		free(lv);
		signed_msg_free(&s);
		/* one deeper */
		assert_int_equal(
		    sign_nested(limits[i], (int)limits[i] + 1, NULL), SG_ERR_LIMIT);
	}
	/* a configured limit above the built-in stack still ends in LIMIT */
	assert_int_equal(sign_nested(1000, 70, NULL), SG_ERR_LIMIT);
}

static int
sign_parts(size_t max_parts, size_t nchildren)
{
	static const struct hdr h[] = {
	    {"Content-Type", "multipart/mixed; boundary=\"p\""}, {NULL, NULL}};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_limits lim;
	struct sg_buf b;
	struct sm_msg *m;
	size_t i;
	int r;

	sm_limits_default(&lim);
	lim.max_mime_parts = max_parts;
	sg_buf_init(&b, 1 << 22);
	for (i = 0; i < nchildren; i++)
		assert_int_equal(
		    sg_buf_putf(&b, "--p\r\nContent-Type: text/plain\r\n\r\n#%zu\r\n", i), 0);
	assert_int_equal(sg_buf_puts(&b, "--p--\r\n"), 0);
	assert_int_equal(build_msg(&lim, h, b.data, b.len, 0, &m), 0);
	if (nchildren + 1 <= max_parts) {
		struct signed_msg s;
		struct leaves *lv = calloc(1, sizeof(*lv));

		sign_and_check(m, &signer, &o, &s);
		collect_leaves(s.entity, s.elen, lv, 0);
		assert_int_equal(lv->n, nchildren);
		leaves_free(lv);
		free(lv);
		signed_msg_free(&s);
		r = 0;
	} else {
		struct sm_output *out = NULL;

		r = sm_sign(m, &signer, &o, &out);
		assert_null(out);
		assert_true(sm_msg_problem(m)[0] != '\0');
	}
	sm_msg_free(m);
	sg_buf_free(&b);
	return r;
}

static void
test_limit_parts(void **state)
{
	/* the top-level multipart counts as a part */
	assert_int_equal(sign_parts(10, 9), 0);
	assert_int_equal(sign_parts(10, 10), SG_ERR_LIMIT);
	assert_int_equal(sign_parts(500, 499), 0);
	assert_int_equal(sign_parts(500, 500), SG_ERR_LIMIT);
}

static void
test_limit_header(void **state)
{
	struct sm_limits lim;
	struct sm_msg *m;
	char *v;
	size_t i, vl;

	sm_limits_default(&lim);
	/* "X-Long: value": name + ": " + value is the field's size */
	vl = lim.max_header_size - strlen("X-Long") - 2;
	v = malloc(vl + 2);
	assert_non_null(v);
	memset(v, 'v', vl + 1);
	v[vl] = '\0';
	assert_int_equal(sm_msg_new(&lim, spooldir, 128, &m), 0);
	assert_int_equal(sm_msg_header(m, "X-Long", v), 0);
	v[vl] = 'v';
	v[vl + 1] = '\0';
	assert_int_equal(sm_msg_header(m, "X-Long", v), SG_ERR_LIMIT);
	assert_true(sm_msg_problem(m)[0] != '\0');
	assert_int_equal(sm_msg_header_count(m), 1);
	sm_msg_free(m);
	free(v);

	/* number of fields */
	lim.max_headers = 10;
	assert_int_equal(sm_msg_new(&lim, spooldir, 128, &m), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(sm_msg_header(m, "X-N", "1"), 0);
	assert_int_equal(sm_msg_header(m, "X-N", "1"), SG_ERR_LIMIT);
	assert_int_equal(sm_msg_header_count(m), 10);
	sm_msg_free(m);
}

/* A part's header block larger than max_header_size. */
static void
test_limit_part_header(void **state)
{
	static const struct hdr h[] = {
	    {"Content-Type", "multipart/mixed; boundary=\"ph\""}, {NULL, NULL}};
	static const size_t pads[] = {400, 2000};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_limits lim;
	size_t i;

	sm_limits_default(&lim);
	lim.max_header_size = 1024;
	for (i = 0; i < TU_ARRAY_LEN(pads); i++) {
		struct sm_output *out = NULL;
		struct sg_buf b;
		struct sm_msg *m;
		size_t j;
		int r;

		sg_buf_init(&b, 1 << 20);
		assert_int_equal(sg_buf_puts(&b, "--ph\r\nContent-Type: text/plain\r\n"), 0);
		for (j = 0; j < pads[i]; j += 50)
			assert_int_equal(
			    sg_buf_puts(&b, "X-Pad: 0123456789012345678901234567890123456\r\n"),
			    0);
		assert_int_equal(sg_buf_puts(&b, "\r\nbody\r\n--ph--\r\n"), 0);
		assert_int_equal(build_msg(&lim, h, b.data, b.len, 0, &m), 0);
		r = sm_sign(m, &signer, &o, &out);
		assert_int_equal(r, pads[i] < 1024 ? 0 : SG_ERR_LIMIT);
		sm_output_free(out);
		sm_msg_free(m);
		sg_buf_free(&b);
	}
}

static void
test_limit_message_size(void **state)
{
	struct sm_limits lim;
	struct sm_msg *m;
	char body[4096];
	size_t hdrs;

	sm_limits_default(&lim);
	lim.max_message_size = 4096;
	memset(body, 'b', sizeof(body));
	assert_int_equal(sm_msg_new(&lim, spooldir, 128, &m), 0);
	assert_int_equal(sm_msg_header(m, "Subject", "size"), 0);
	hdrs = strlen("Subject") + strlen("size") + 4; /* "Subject: size\r\n" */
	assert_int_equal(sm_msg_eoh(m), 0);
	assert_int_equal(sm_msg_body(m, body, 4096 - hdrs - 10), 0);
	assert_int_equal(sm_msg_body(m, body, 11), SG_ERR_LIMIT);
	assert_true(sm_msg_problem(m)[0] != '\0');
	assert_int_equal(sm_msg_body(m, body, 10), 0); /* exactly the maximum */
	assert_int_equal(sm_msg_body(m, body, 1), SG_ERR_LIMIT);
	assert_int_equal(sm_msg_eom(m), 0);
	sm_msg_free(m);
}

/* --- robustness: truncation and bit flips -------------------------------- */

static void
test_truncated_bodies(void **state)
{
	static const char tmpl[] = "preamble\r\n"
	                           "--outer\r\n"
	                           "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
	                           "\r\n"
	                           "--inner\r\n"
	                           "Content-Type: text/plain; charset=utf-8\r\n"
	                           "Content-Transfer-Encoding: 8bit\r\n"
	                           "\r\n"
	                           "Teks caf\xc3\xa9 \r\n"
	                           "--inner\r\n"
	                           "Content-Type: text/html\r\n"
	                           "\r\n"
	                           "<p>x</p>\r\n"
	                           "--inner--\r\n"
	                           "--outer\r\n"
	                           "Content-Type: application/octet-stream\r\n"
	                           "Content-Transfer-Encoding: binary\r\n"
	                           "\r\n"
	                           "@BIN128@\r\n"
	                           "--outer\r\n"
	                           "Content-Type: image/png\r\n"
	                           "Content-Transfer-Encoding: base64\r\n"
	                           "\r\n"
	                           "iVBORw0KGgo=\r\n"
	                           "--outer--\r\n"
	                           "epilogue\r\n";
	static const struct hdr h[] = {{"MIME-Version", "1.0"},
	    {"Content-Type", "multipart/mixed; boundary=\"outer\""}, {NULL, NULL}};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	size_t blen, n, nsigned = 0;
	unsigned char *body = expand(tmpl, &blen);

	for (n = 0; n <= blen; n++) {
		struct sm_output *out = NULL;
		struct sm_msg *m;
		int r = build_msg(NULL, h, body, n, 0, &m);

		if (r == 0)
			r = sm_sign(m, &signer, &o, &out);
		if (r != 0 && r != SG_ERR_MALFORMED && r != SG_ERR_LIMIT)
			fail_msg("cut at %zu: unexpected %d (%s)", n, r, sg_strerror(r));
		if (r == 0) {
			struct signed_msg s;

			/* whatever was signed must be well-formed and verify */
			sm_output_free(out);
			sign_and_check(m, &signer, &o, &s);
			signed_msg_free(&s);
			nsigned++;
		} else {
			assert_null(out);
			assert_true(sm_msg_problem(m)[0] != '\0');
		}
		sm_msg_free(m);
	}
	assert_true(nsigned > 0);
	free(body);
}

static void
test_bit_flips(void **state)
{
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct signed_msg s;
	struct sm_msg *m;
	unsigned char *copy;
	size_t i, siglen;
	int bit;

	sign_simple(&signer, &o, &s, &m);
	/* every bit of the signed entity */
	copy = malloc(s.elen);
	assert_non_null(copy);
	memcpy(copy, s.entity, s.elen);
	for (i = 0; i < s.elen; i++) {
		for (bit = 0; bit < 8; bit++) {
			copy[i] ^= (unsigned char)(1 << bit);
			if (cms_verify(s.der, s.dlen, copy, s.elen))
				fail_msg(
				    "entity byte %zu bit %d flipped: still verifies", i, bit);
			copy[i] ^= (unsigned char)(1 << bit);
		}
	}
	assert_int_equal(cms_verify(s.der, s.dlen, copy, s.elen), 1);
	/* one bit in every byte of the signature value (the DER's last bytes) */
	siglen = (size_t)EVP_PKEY_get_size(pki()->alice_key);
	assert_true(s.dlen > siglen);
	for (i = s.dlen - siglen; i < s.dlen; i++) {
		s.der[i] ^= (unsigned char)(1 << (i % 8));
		if (cms_verify(s.der, s.dlen, s.entity, s.elen))
			fail_msg("signature byte %zu flipped: still verifies", i);
		s.der[i] ^= (unsigned char)(1 << (i % 8));
	}
	assert_int_equal(cms_verify(s.der, s.dlen, s.entity, s.elen), 1);
	/* a truncated entity */
	for (i = 0; i < s.elen; i += 7)
		assert_int_equal(cms_verify(s.der, s.dlen, s.entity, i), 0);
	free(copy);
	signed_msg_free(&s);
	sm_msg_free(m);
}

/* --- things a relay could alter, or a MUA read differently -------------- */

/*
 * Quoted-printable protects a line that starts with "From " (mbox relays
 * turn it into ">From ").  That must hold for every line of the encoded
 * output, including one that starts after a soft line break.
 */
static void
test_qp_from_after_soft_break(void **state)
{
	static const struct hdr h[] = {{"Content-Type", "text/plain; charset=utf-8"},
	    {"Content-Transfer-Encoding", "8bit"}, {NULL, NULL}};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct leaves *lv = calloc(1, sizeof(*lv));
	struct signed_msg s;
	struct sm_msg *m;
	struct sg_buf body;
	size_t i, col;
	int found;

	/* the soft break falls after 75 columns: "From " would start a line */
	assert_non_null(lv);
	for (col = 70; col <= 76; col++) {
		sg_buf_init(&body, 4096);
		assert_int_equal(sg_buf_puts(&body, "caf\xc3\xa9\r\n"), 0);
		for (i = 0; i < col; i++)
			assert_int_equal(sg_buf_putc(&body, 'a'), 0);
		assert_int_equal(sg_buf_puts(&body, "From me\r\n"), 0);
		assert_int_equal(build_msg(NULL, h, body.data, body.len, 0, &m), 0);
		sign_and_check(m, &signer, &o, &s);
		collect_leaves(s.entity, s.elen, lv, 0);
		assert_int_equal(lv->n, 1);
		assert_int_equal(lv->v[0].len, body.len);
		assert_memory_equal(lv->v[0].data, body.data, body.len);
		leaves_free(lv);
		for (i = 0, found = 0; i + 5 <= s.elen && !found; i++)
			found = (i == 0 || s.entity[i - 1] == '\n') &&
			    memcmp(s.entity + i, "From ", 5) == 0;
		signed_msg_free(&s);
		sm_msg_free(m);
		sg_buf_free(&body);
		if (found) {
			free(lv);
			fail_msg(
			    "%zu columns: an encoded line starts with \"From \" (entity offset "
			    "%zu)",
			    col, i - 1);
		}
	}
	free(lv);
}

/*
 * 8-bit bytes in header fields that go into the signed entity (a part's
 * Content-Disposition, a top-level Content-Description): the signature
 * must not cover bytes a 7-bit relay may change.  Either refuse the
 * message (MALFORMED) or produce a 7-bit clean result.
 */
static void
test_8bit_header_in_entity(void **state)
{
	static const struct {
		const char *name;
		struct hdr hdrs[3];
		const char *body;
	} cases[] = {
	    {"part header",
	        {{"Content-Type", "multipart/mixed; boundary=\"h8\""}, {NULL, NULL}},
	        "--h8\r\n"
	        "Content-Type: text/plain\r\n"
	        "Content-Disposition: attachment; filename=\"caf\xc3\xa9.txt\"\r\n"
	        "\r\n"
	        "ascii\r\n"
	        "--h8--\r\n"},
	    {"top-level Content-Description",
	        {{"Content-Type", "text/plain"}, {"Content-Description", "Laporan caf\xc3\xa9"},
	            {NULL, NULL}},
	        "ascii\r\n"},
	};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct sm_output *out = NULL;
		struct sg_spool *dst;
		struct sm_msg *m;
		unsigned char *raw;
		size_t len, j;
		int r;

		assert_int_equal(
		    build_msg(NULL, cases[i].hdrs, cases[i].body, strlen(cases[i].body), 0, &m),
		    0);
		r = sm_sign(m, &signer, &o, &out);
		CHECK_ROW(r == 0 || r == SG_ERR_MALFORMED, "%s: got %d", cases[i].name, r);
		if (r == 0) {
			assert_int_equal(sg_spool_new(spooldir, 1024, SIZE_MAX / 2, &dst), 0);
			assert_int_equal(sm_output_render(m, out, dst), 0);
			raw = tu_spool_contents(dst, &len);
			for (j = 0; j < len && raw[j] < 0x80; j++)
				;
			CHECK_ROW(j == len, "%s: signed output has 8-bit byte 0x%02x at %zu",
			    cases[i].name, j < len ? raw[j] : 0, j);
			free(raw);
			sg_spool_free(dst);
		}
		sm_output_free(out);
		sm_msg_free(m);
	}
	assert_int_equal(table_failures, 0);
}

/*
 * RFC 2046 5.2.1: a message/rfc822 body may only be 7bit, 8bit or binary;
 * base64 or quoted-printable on it is invalid.  A forwarded message with
 * 8-bit content must be refused or re-encoded inside, never wrapped in
 * base64.
 */
static void
test_message_rfc822_8bit(void **state)
{
	static const struct hdr h[] = {{"MIME-Version", "1.0"},
	    {"Content-Type", "multipart/mixed; boundary=\"fw\""}, {NULL, NULL}};
	static const char body[] = "--fw\r\n"
	                           "Content-Type: text/plain\r\n"
	                           "\r\n"
	                           "See the forwarded message.\r\n"
	                           "--fw\r\n"
	                           "Content-Type: message/rfc822\r\n"
	                           "Content-Transfer-Encoding: 8bit\r\n"
	                           "\r\n"
	                           "From: x@y.example\r\n"
	                           "Subject: fwd\r\n"
	                           "Content-Type: text/plain; charset=utf-8\r\n"
	                           "Content-Transfer-Encoding: 8bit\r\n"
	                           "\r\n"
	                           "Isi pesan caf\xc3\xa9.\r\n"
	                           "--fw--\r\n";
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	struct sm_output *out = NULL;
	struct sm_msg *m;
	int r;

	assert_int_equal(build_msg(NULL, h, body, sizeof(body) - 1, 0, &m), 0);
	r = sm_sign(m, &signer, &o, &out);
	sm_output_free(out);
	if (r == 0) {
		struct signed_msg s;
		struct leaves *lv = calloc(1, sizeof(*lv));
		size_t i;

		char bad[64] = "";

		sign_and_check(m, &signer, &o, &s);
		collect_leaves(s.entity, s.elen, lv, 0);
		for (i = 0; i < lv->n; i++)
			if (strncasecmp(lv->v[i].ctype, "message/", 8) == 0 &&
			    lv->v[i].cte[0] != '\0' && strcasecmp(lv->v[i].cte, "7bit") != 0)
				snprintf(bad, sizeof(bad), "%s", lv->v[i].cte);
		leaves_free(lv);
		free(lv);
		signed_msg_free(&s);
		if (bad[0] != '\0') {
			sm_msg_free(m);
			fail_msg(
			    "message/rfc822 part sent with Content-Transfer-Encoding: %s", bad);
		}
	} else {
		assert_true(r == SG_ERR_MALFORMED || r == SG_ERR_UNSUPPORTED);
	}
	sm_msg_free(m);
}

/*
 * Duplicate Content-Type or Content-Transfer-Encoding fields make a part
 * ambiguous (the signer and a MUA may pick different ones).  The scan
 * refuses them when another field stands between; it must also when they
 * are next to each other, and at the top level for the CTE.
 */
static void
test_duplicate_fields_adjacent(void **state)
{
	static const struct {
		const char *name;
		struct hdr hdrs[3];
		const char *body;
	} cases[] = {
	    {"adjacent part Content-Type",
	        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
	        "--zz\r\nContent-Type: text/plain\r\nContent-Type: application/octet-stream\r\n"
	        "\r\nx\r\n--zz--\r\n"},
	    {"adjacent part CTE",
	        {{"Content-Type", "multipart/mixed; boundary=zz"}, {NULL, NULL}},
	        "--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n"
	        "Content-Transfer-Encoding: base64\r\n\r\nx\r\n--zz--\r\n"},
	    {"two top-level CTE fields",
	        {{"Content-Transfer-Encoding", "7bit"}, {"Content-Transfer-Encoding", "base64"},
	            {NULL, NULL}},
	        "x\r\n"},
	};
	struct sm_signer signer = alice_signer();
	struct sm_sign_opts o = default_opts();
	size_t i;

	table_failures = 0;
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct sm_output *out = NULL;
		struct sm_msg *m;
		int got =
		    build_msg(NULL, cases[i].hdrs, cases[i].body, strlen(cases[i].body), 0, &m);

		if (got == 0)
			got = sm_sign(m, &signer, &o, &out);
		CHECK_ROW(got == SG_ERR_MALFORMED, "%s: got %d want %d", cases[i].name, got,
		    SG_ERR_MALFORMED);
		sm_output_free(out);
		sm_msg_free(m);
	}
	assert_int_equal(table_failures, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ctype_parse_table),
	    cmocka_unit_test(test_ctype_parse_trailing_garbage),
	    cmocka_unit_test(test_ctype_parse_truncated),
	    cmocka_unit_test(test_cte_parse_table),
	    cmocka_unit_test(test_is_content_field),
	    cmocka_unit_test(test_digest_names),
	    cmocka_unit_test(test_addr_parse_list),
	    cmocka_unit_test(test_addr_parse_list_rfc5322),
	    cmocka_unit_test(test_addr_normalize),
	    cmocka_unit_test(test_addr_normalize_unbalanced),
	    cmocka_unit_test(test_cert_addresses),
	    cmocka_unit_test(test_msg_headers),
	    cmocka_unit_test(test_sign_cases),
	    cmocka_unit_test(test_sign_twice),
	    cmocka_unit_test(test_parse_spool_and_sign),
	    cmocka_unit_test(test_parse_spool_truncated),
	    cmocka_unit_test(test_sign_algorithms),
	    cmocka_unit_test(test_sign_without_chain),
	    cmocka_unit_test(test_sign_edits),
	    cmocka_unit_test(test_sign_refusals),
	    cmocka_unit_test(test_limit_depth),
	    cmocka_unit_test(test_limit_parts),
	    cmocka_unit_test(test_limit_header),
	    cmocka_unit_test(test_limit_part_header),
	    cmocka_unit_test(test_limit_message_size),
	    cmocka_unit_test(test_truncated_bodies),
	    cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_qp_from_after_soft_break),
	    cmocka_unit_test(test_8bit_header_in_entity),
	    cmocka_unit_test(test_message_rfc822_8bit),
	    cmocka_unit_test(test_duplicate_fields_adjacent),
	};
	int r;

	snprintf(spooldir, sizeof(spooldir), "/tmp/segel-mime.XXXXXX");
	if (mkdtemp(spooldir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	pki_free();
	tu_rmtree(spooldir);
	return r;
}
