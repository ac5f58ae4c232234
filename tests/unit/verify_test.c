/*
 * verify_test.c - smime/verify.c: cryptographic verification of incoming
 * S/MIME against a corpus made by other implementations.
 *
 * The corpus is generated once per run by tests/corpus/gen-corpus.sh
 * (openssl cms, gpgsm, NSS cmsutil) into a temporary directory; every
 * line of its manifest.txt is a table row: the core status and
 * from_match must be as written, and for a PASS the reported signer, its
 * certificates, signing time and SMIMECapabilities are checked too.
 *
 * Robustness: every bit of a detached message's signed entity is flipped
 * (each flip must FAIL), messages are cut at every offset of their body
 * (never a crash, never a PASS before the last significant byte), and
 * every limit is probed at its edge.  Round trip: messages signed by
 * Segel's own sm_sign (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA; spooled to
 * disk when large) must PASS.
 *
 * Needs SEGEL_PKI (tests/pki/gen-pki.sh) and is run from the top of the
 * source tree; without the variable the tests FAIL.
 */
#include <strings.h>

#include "testutil.h"

#include <openssl/err.h>

#include "smime/smime.h"
#include "smime/verify.h"
#include "util/buf.h"

static char spooldir[64];
static char corpus[64];

/* --- messages ------------------------------------------------------------ */

/* Ends a message whatever its MIME: a broken one is still verified. */
static void
eom_any(struct sm_msg *m)
{
	if (sm_msg_eom(m) != 0)
		return;
}

static struct sm_msg *
parse_msg(const unsigned char *data, size_t len)
{
	struct sm_limits lim;
	struct sg_spool *in;
	struct sm_msg *m;

	sm_limits_default(&lim);
	assert_int_equal(sg_spool_new(spooldir, 4096, len + 1, &in), 0);
	assert_int_equal(sg_spool_write(in, data, len), 0);
	assert_int_equal(sm_msg_new(&lim, spooldir, 4096, &m), 0);
	if (sm_msg_parse_spool(m, in) != 0 || sm_msg_eom(m) != 0)
		fail_msg("cannot parse message (%s)", sm_msg_problem(m));
	sg_spool_free(in);
	return m;
}

static struct sm_msg *
load_corpus(const char *name)
{
	char path[256];
	size_t len;
	unsigned char *data;
	struct sm_msg *m;

	snprintf(path, sizeof(path), "%s/%s", corpus, name);
	data = tu_read_file(path, &len);
	m = parse_msg(data, len);
	free(data);
	return m;
}

/* A copy of m's header fields with another body. */
static struct sm_msg *
with_body(const struct sm_msg *m, const unsigned char *body, size_t len)
{
	struct sm_limits lim;
	struct sm_msg *n;
	size_t i;

	sm_limits_default(&lim);
	assert_int_equal(sm_msg_new(&lim, spooldir, 4096, &n), 0);
	for (i = 0; i < sm_msg_header_count(m); i++)
		assert_int_equal(
		    sm_msg_header(n, sm_msg_header_name(m, i), sm_msg_header_value(m, i)), 0);
	assert_int_equal(sm_msg_eoh(n), 0);
	assert_int_equal(sm_msg_body(n, body, len), 0);
	eom_any(n);
	return n;
}

static struct sm_verify_opts
test_opts(void)
{
	struct sm_verify_opts o;

	sm_verify_opts_default(&o);
	o.spool_dir = spooldir;
	o.mem_threshold = 256; /* opaque contents go through a spool file */
	return o;
}

static struct sm_verify_result *
verify(struct sm_msg *m, const struct sm_verify_opts *o)
{
	struct sm_verify_result *r = NULL;
	int rc = sm_verify(m, o, &r);

	if (rc != 0)
		fail_msg("sm_verify returned %d (%s)", rc, sg_strerror(rc));
	assert_non_null(r);
	return r;
}

/* Status of a corpus message verified with o (NULL: the test defaults). */
static enum sm_verify_status
status_of(const char *name, const struct sm_verify_opts *o)
{
	struct sm_verify_opts d = test_opts();
	struct sm_msg *m = load_corpus(name);
	struct sm_verify_result *r = verify(m, o ? o : &d);
	enum sm_verify_status st = r->status;

	sm_verify_result_free(r);
	sm_msg_free(m);
	return st;
}

/* --- the corpus, row by row ---------------------------------------------- */

struct row {
	char file[96];
	char status[16];
	int from_match;
	char signer[96]; /* "-" when none */
	char caps[8]; /* "yes", "no", "-" */
	char note[256];
};

static enum sm_verify_status
status_from_name(const char *s)
{
	static const enum sm_verify_status all[] = {SM_VERIFY_NONE, SM_VERIFY_PASS,
	    SM_VERIFY_FAIL, SM_VERIFY_MALFORMED, SM_VERIFY_ENCRYPTED};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(all); i++)
		if (strcasecmp(s, sm_verify_status_name(all[i])) == 0)
			return all[i];
	fail_msg("unknown status %s in the manifest", s);
	return SM_VERIFY_NONE;
}

/* The value of token key= in a note, copied into out. */
static void
note_token(const char *note, const char *key, char *out, size_t len)
{
	const char *p = strstr(note, key);
	size_t n;

	if (p == NULL)
		fail_msg("manifest note without %s: %s", key, note);
	p += strlen(key);
	n = strcspn(p, " \n");
	if (n >= len)
		fail_msg("manifest token too long: %s", note);
	memcpy(out, p, n);
	out[n] = '\0';
}

static int
parse_row(const char *line, struct row *r)
{
	const char *p = line;
	size_t n;

	memset(r, 0, sizeof(*r));
	if ((n = strcspn(p, " ")) == 0 || n >= sizeof(r->file))
		return -1;
	memcpy(r->file, p, n);
	p += n + 1;
	if ((n = strcspn(p, " ")) == 0 || n >= sizeof(r->status))
		return -1;
	memcpy(r->status, p, n);
	p += n + 1;
	if ((*p != '0' && *p != '1') || p[1] != ' ')
		return -1;
	r->from_match = *p - '0';
	snprintf(r->note, sizeof(r->note), "%s", p + 2);
	r->note[strcspn(r->note, "\n")] = '\0';
	note_token(r->note, "signer=", r->signer, sizeof(r->signer));
	note_token(r->note, "caps=", r->caps, sizeof(r->caps));
	return 0;
}

static int
has_addr(const struct sm_verify_layer *l, const char *a)
{
	size_t i;

	for (i = 0; i < l->naddrs; i++)
		if (strcmp(l->addrs[i], a) == 0)
			return 1;
	return 0;
}

/* What a PASS row promises about the primary layer. */
static void
check_pass_row(const struct row *w, const struct sm_verify_result *got)
{
	const struct sm_verify_layer *l = sm_verify_primary(got);
	time_t now = time(NULL);

	CHECK_ROW(l != NULL && l->signer != NULL, "%s: no signer reported", w->file);
	if (l == NULL || l->signer == NULL)
		return;
	if (strcmp(w->signer, "-") == 0)
		CHECK_ROW(l->naddrs == 0, "%s: signer has %zu addresses, want none", w->file,
		    l->naddrs);
	else
		CHECK_ROW(has_addr(l, w->signer), "%s: signer is not %s (%s)", w->file,
		    w->signer, l->naddrs ? l->addrs[0] : "no address");
	CHECK_ROW((l->caps != NULL) == (strcmp(w->caps, "yes") == 0),
	    "%s: SMIMECapabilities %s, want %s", w->file, l->caps ? "present" : "absent",
	    w->caps);
	CHECK_ROW(l->caps == NULL || (l->capslen > 2 && l->caps[0] == 0x30),
	    "%s: SMIMECapabilities is not a DER SEQUENCE", w->file);
	CHECK_ROW(l->certs != NULL && sk_X509_num(l->certs) >= 1, "%s: no certificates carried",
	    w->file);
	CHECK_ROW(l->signing_time > now - 3600 && l->signing_time < now + 3600,
	    "%s: signing time %lld is not now", w->file, (long long)l->signing_time);
	CHECK_ROW(l->digest[0] != '\0' && l->sig_alg[0] != '\0', "%s: algorithms not reported",
	    w->file);
	CHECK_ROW(l->status == SM_VERIFY_PASS && l->from_match == w->from_match,
	    "%s: primary layer status %d from_match %d", w->file, l->status, l->from_match);
}

/* A detached layer's offsets name the signed entity: it starts with a field. */
static void
check_entity_offsets(const struct row *w, const struct sm_verify_result *got)
{
	const struct sm_verify_layer *l = &got->layers[0];
	char head[16] = {0};
	size_t n = 0;

	if (l->form != SM_FORM_DETACHED || l->status != SM_VERIFY_PASS)
		return;
	CHECK_ROW(l->where != NULL && l->entity_len > 13, "%s: no entity range", w->file);
	if (l->where == NULL || sg_spool_read(l->where, l->entity_start, head, 13, &n) != 0 ||
	    n != 13)
		return;
	CHECK_ROW(strncasecmp(head, "Content-Type:", 13) == 0 ||
	        strncasecmp(head, "MIME-Version:", 13) == 0,
	    "%s: entity starts with [%.13s]", w->file, head);
}

static void
check_row(const struct row *w)
{
	struct sm_verify_opts o = test_opts();
	struct sm_msg *m = load_corpus(w->file);
	struct sm_verify_result *got = verify(m, &o);
	enum sm_verify_status want = status_from_name(w->status);

	print_message("    %-32s %-9s %d  %s\n", w->file, sm_verify_status_name(got->status),
	    got->from_match, got->detail);
	CHECK_ROW(got->status == want, "%s: status %s want %s (%s)", w->file,
	    sm_verify_status_name(got->status), w->status, got->detail);
	CHECK_ROW(got->from_match == w->from_match, "%s: from_match %d want %d (%s)", w->file,
	    got->from_match, w->from_match, got->detail);
	CHECK_ROW(got->detail[0] != '\0', "%s: empty detail", w->file);
	if (want == SM_VERIFY_PASS && got->status == SM_VERIFY_PASS)
		check_pass_row(w, got);
	check_entity_offsets(w, got);
	sm_verify_result_free(got);
	sm_msg_free(m);
}

static void
test_corpus_manifest(void **state)
{
	char path[256], line[512];
	FILE *fp;
	struct row w;
	int rows = 0, tools[3] = {0};

	snprintf(path, sizeof(path), "%s/manifest.txt", corpus);
	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("no %s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (parse_row(line, &w) != 0)
			fail_msg("bad manifest line: %s", line);
		check_row(&w);
		tools[0] += strstr(w.note, "tool=openssl") != NULL;
		tools[1] += strstr(w.note, "tool=gpgsm") != NULL;
		tools[2] += strstr(w.note, "tool=nss") != NULL;
		rows++;
	}
	fclose(fp);
	print_message(
	    "    %d rows: %d openssl, %d gpgsm, %d nss\n", rows, tools[0], tools[1], tools[2]);
	assert_true(rows >= 40);
	assert_true(tools[0] > 0 && tools[1] > 0 && tools[2] > 0);
	assert_int_equal(table_failures, 0);
}

/* --- layers, options ----------------------------------------------------- */

static void
test_nested_layers(void **state)
{
	struct sm_verify_opts o = test_opts();
	struct sm_msg *m = load_corpus("nested-opaque-detached.eml");
	struct sm_verify_result *r = verify(m, &o);

	assert_int_equal(r->status, SM_VERIFY_PASS);
	assert_int_equal(r->nlayers, 2);
	assert_int_equal(r->layers[0].form, SM_FORM_OPAQUE);
	assert_true(has_addr(&r->layers[0], "dave@kota.go.id"));
	assert_int_equal(r->layers[0].from_match, 0);
	assert_non_null(r->layers[0].content);
	assert_int_equal(r->layers[1].form, SM_FORM_DETACHED);
	assert_ptr_equal(r->layers[1].where, r->layers[0].content);
	assert_true(has_addr(&r->layers[1], "alice@kota.go.id"));
	assert_int_equal(r->primary, 1);
	assert_string_equal(r->from, "alice@kota.go.id");
	sm_verify_result_free(r);
	/* one layer allowed: the inner one is too deep */
	o.max_depth = 1;
	r = verify(m, &o);
	assert_int_equal(r->status, SM_VERIFY_MALFORMED);
	assert_int_equal(r->nlayers, 2);
	assert_int_equal(r->layers[0].status, SM_VERIFY_PASS);
	sm_verify_result_free(r);
	sm_msg_free(m);

	m = load_corpus("signed-encrypted.eml");
	o = test_opts();
	r = verify(m, &o);
	assert_int_equal(r->status, SM_VERIFY_ENCRYPTED);
	assert_int_equal(r->nlayers, 2);
	assert_int_equal(r->layers[0].status, SM_VERIFY_PASS);
	assert_int_equal(r->layers[1].form, SM_FORM_ENCRYPTED);
	assert_int_equal(r->from_match, 1);
	sm_verify_result_free(r);
	sm_msg_free(m);
}

static void
test_signer_not_carried(void **state)
{
	struct sm_verify_opts o = test_opts();
	STACK_OF(X509) *extra = sk_X509_new_null();
	X509 *alice = tu_load_cert("alice.pem");

	assert_int_equal(status_of("nocerts.eml", &o), SM_VERIFY_MALFORMED);
	assert_true(sk_X509_push(extra, alice) > 0);
	o.extra_certs = extra; /* e.g. harvested: used to find the key only */
	assert_int_equal(status_of("nocerts.eml", &o), SM_VERIFY_PASS);
	sk_X509_pop_free(extra, X509_free);
}

static void
test_from_override(void **state)
{
	struct sm_verify_opts o = test_opts();
	struct sm_msg *m = load_corpus("mismatch.eml");
	struct sm_verify_result *r = verify(m, &o);

	assert_int_equal(r->from_match, 0);
	assert_non_null(strstr(r->detail, "does not match From alice@kota.go.id"));
	sm_verify_result_free(r);
	o.from = "<bob@DINAS.kota.go.id>";
	r = verify(m, &o);
	assert_int_equal(r->from_match, 1);
	assert_string_equal(r->from, "bob@dinas.kota.go.id");
	sm_verify_result_free(r);
	sm_msg_free(m);
}

static void
test_bad_options(void **state)
{
	struct sm_verify_opts o;
	struct sm_verify_result *r = (void *)1;
	struct sm_msg *m = load_corpus("plain.eml");
	size_t *fields[] = {
	    &o.max_sig_size, &o.max_opaque_size, &o.max_depth, &o.max_certs, &o.max_signers};
	const size_t hard[] = {SM_VERIFY_MAX_SIG_HARD, SM_VERIFY_MAX_OPAQUE_HARD,
	    SM_VERIFY_MAX_DEPTH_HARD, SM_VERIFY_MAX_CERTS_HARD, SM_VERIFY_MAX_SIGNERS_HARD};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(fields); i++) {
		o = test_opts();
		*fields[i] = 0;
		assert_int_equal(sm_verify(m, &o, &r), SG_ERR_INVALID_ARG);
		assert_null(r);
		*fields[i] = hard[i] + 1;
		assert_int_equal(sm_verify(m, &o, &r), SG_ERR_INVALID_ARG);
		*fields[i] = hard[i];
		assert_int_equal(sm_verify(m, &o, &r), 0);
		sm_verify_result_free(r);
	}
	assert_int_equal(sm_verify(m, NULL, &r), 0); /* NULL: the defaults */
	assert_int_equal(r->status, SM_VERIFY_NONE);
	assert_int_equal(r->nlayers, 0);
	assert_null(sm_verify_primary(r));
	sm_verify_result_free(r);
	sm_verify_result_free(NULL);
	sm_msg_free(m);
}

/* The smallest value of a limit with which name still passes; one less
 * must be MALFORMED. */
static size_t
limit_edge(const char *name, size_t *field, struct sm_verify_opts *o, size_t hi)
{
	size_t lo = 1;

	*field = hi;
	assert_int_equal(status_of(name, o), SM_VERIFY_PASS);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		*field = mid;
		if (status_of(name, o) == SM_VERIFY_PASS)
			hi = mid;
		else
			lo = mid + 1;
	}
	*field = lo;
	assert_int_equal(status_of(name, o), SM_VERIFY_PASS);
	if (lo > 1) {
		*field = lo - 1;
		assert_int_equal(status_of(name, o), SM_VERIFY_MALFORMED);
	}
	return lo;
}

static void
test_limits_at_the_edge(void **state)
{
	struct sm_verify_opts o = test_opts();
	size_t sig, opaque;

	sig = limit_edge("ossl-rsa-detached.eml", &o.max_sig_size, &o, 1 << 20);
	assert_true(sig > 1000 && sig < 10000); /* the DER size of the signature */
	o = test_opts();
	opaque = limit_edge("ossl-rsa-opaque.eml", &o.max_opaque_size, &o, 1 << 20);
	assert_true(opaque > sig - 100);
	o = test_opts();
	assert_int_equal(limit_edge("ossl-rsa-detached.eml", &o.max_certs, &o, 64), 2);
	o = test_opts();
	assert_int_equal(limit_edge("ossl-two-signers.eml", &o.max_signers, &o, 8), 2);
	o = test_opts();
	assert_int_equal(limit_edge("nested-detached-detached.eml", &o.max_depth, &o, 8), 2);
	o = test_opts();
	o.max_depth = 5; /* the five layers of too-deep.eml */
	assert_int_equal(status_of("too-deep.eml", &o), SM_VERIFY_PASS);
}

/* --- robustness ---------------------------------------------------------- */

static unsigned char *
body_of(const struct sm_msg *m, size_t *len)
{
	return tu_spool_contents(sm_msg_body_spool(m), len);
}

/* Every bit of the signed entity flipped, one at a time: always FAIL. */
static void
flip_entity(const char *name)
{
	struct sm_verify_opts o = test_opts();
	struct sm_msg *m = load_corpus(name);
	struct sm_verify_result *r = verify(m, &o);
	size_t len, start, end, i, flips = 0;
	unsigned char *body = body_of(m, &len);
	int bit;

	assert_int_equal(r->status, SM_VERIFY_PASS);
	assert_int_equal(r->layers[0].form, SM_FORM_DETACHED);
	start = r->layers[0].entity_start;
	end = start + r->layers[0].entity_len;
	assert_true(end <= len && end - start > 100);
	sm_verify_result_free(r);
	for (i = start; i < end; i++) {
		for (bit = 0; bit < 8; bit++) {
			struct sm_msg *n;

			body[i] ^= (unsigned char)(1u << bit);
			n = with_body(m, body, len);
			r = verify(n, &o);
			if (r->status != SM_VERIFY_FAIL)
				fail_msg("%s: bit %d of byte %zu flipped: %s (%s)", name, bit,
				    i, sm_verify_status_name(r->status), r->detail);
			sm_verify_result_free(r);
			sm_msg_free(n);
			body[i] ^= (unsigned char)(1u << bit);
			flips++;
		}
	}
	print_message("    %s: %zu flips, all FAIL\n", name, flips);
	free(body);
	sm_msg_free(m);
}

static void
test_bit_flips(void **state)
{
	flip_entity("ossl-rsa-detached.eml");
	flip_entity("gpgsm-ec-detached.eml");
	flip_entity("nss-rsa-detached.eml");
}

/* The body cut at every offset: never a crash, and never a PASS before the
 * last byte that is not white space or base64 padding (which may be left off). */
static void
truncate_body(const char *name)
{
	struct sm_verify_opts o = test_opts();
	struct sm_msg *m = load_corpus(name);
	size_t len, cut, last, counts[5] = {0};
	unsigned char *body = body_of(m, &len);

	for (last = len; last > 0 && strchr(" \t\r\n=", body[last - 1]) != NULL; last--)
		;
	for (cut = 0; cut <= len; cut++) {
		struct sm_msg *n = with_body(m, body, cut);
		struct sm_verify_result *r = verify(n, &o);
		enum sm_verify_status want = cut >= last ? SM_VERIFY_PASS : SM_VERIFY_MALFORMED;

		if (r->status != want &&
		    !(want == SM_VERIFY_MALFORMED && r->status == SM_VERIFY_FAIL))
			fail_msg("%s cut at %zu of %zu: %s (%s)", name, cut, len,
			    sm_verify_status_name(r->status), r->detail);
		counts[r->status]++;
		sm_verify_result_free(r);
		sm_msg_free(n);
	}
	print_message("    %s: %zu cuts: %zu pass, %zu fail, %zu malformed\n", name, len + 1,
	    counts[SM_VERIFY_PASS], counts[SM_VERIFY_FAIL], counts[SM_VERIFY_MALFORMED]);
	free(body);
	sm_msg_free(m);
}

static void
test_truncated_bodies(void **state)
{
	truncate_body("ossl-rsa-detached.eml");
	truncate_body("gpgsm-rsa-opaque.eml");
	truncate_body("nss-ec-detached.eml");
}

/* body[0, cut) followed by body[keep, len). */
static enum sm_verify_status
status_spliced(const struct sm_msg *m, const unsigned char *body, size_t len, size_t cut,
    size_t keep, char *detail, size_t dlen)
{
	unsigned char *b = malloc(len + 1);
	struct sm_msg *n;
	struct sm_verify_result *r;
	enum sm_verify_status st;

	assert_non_null(b);
	memcpy(b, body, cut);
	memcpy(b + cut, body + keep, len - keep);
	n = with_body(m, b, cut + len - keep);
	r = verify(n, NULL);
	st = r->status;
	snprintf(detail, dlen, "%s", r->detail);
	sm_verify_result_free(r);
	sm_msg_free(n);
	free(b);
	return st;
}

/*
 * Inside an intact multipart/signed: the signed entity cut short at every
 * offset must FAIL; the base64 signature cut short at every offset must
 * not PASS (MALFORMED, or FAIL when the DER still parses).
 */
static void
truncate_parts(const char *name)
{
	struct sm_msg *m = load_corpus(name);
	struct sm_verify_result *r = verify(m, NULL);
	size_t len, ent_start, ent_end, close, sig, last, cut, n = 0;
	unsigned char *body = body_of(m, &len);
	char detail[320];

	assert_int_equal(r->status, SM_VERIFY_PASS);
	ent_start = r->layers[0].entity_start;
	ent_end = ent_start + r->layers[0].entity_len;
	sm_verify_result_free(r);
	for (cut = ent_start; cut < ent_end; cut++, n++)
		if (status_spliced(m, body, len, cut, ent_end, detail, sizeof(detail)) !=
		    SM_VERIFY_FAIL)
			fail_msg("%s: entity cut at %zu: %s", name, cut, detail);
	for (close = len - 4; close > ent_end && memcmp(body + close, "\r\n--", 4) != 0;
	     close--)
		;
	for (last = close; last > ent_end && strchr(" \t\r\n=", body[last - 1]) != NULL; last--)
		;
	for (sig = last - 4; sig > ent_end && memcmp(body + sig, "\r\n\r\n", 4) != 0; sig--)
		;
	assert_true(sig > ent_end && last > sig + 100);
	for (cut = sig + 4; cut < last; cut++, n++) {
		enum sm_verify_status st =
		    status_spliced(m, body, len, cut, close, detail, sizeof(detail));

		if (st != SM_VERIFY_MALFORMED && st != SM_VERIFY_FAIL)
			fail_msg("%s: signature cut at %zu: %s", name, cut, detail);
	}
	print_message("    %s: %zu cuts inside the parts, none passed\n", name, n);
	free(body);
	sm_msg_free(m);
}

static void
test_truncated_parts(void **state)
{
	truncate_parts("ossl-rsa-detached.eml");
	truncate_parts("gpgsm-ec-detached.eml");
	truncate_parts("nss-rsa-detached.eml");
}

/* Garbage where S/MIME is claimed: a result, never a crash. */
static void
test_garbage_bodies(void **state)
{
	static const char *const ctypes[] = {
	    "multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b",
	    "application/pkcs7-mime; smime-type=signed-data",
	    "application/pkcs7-mime",
	    "multipart/signed; boundary=\"this boundary is much longer than seventy characters "
	    "which RFC 2046 forbids\"",
	};
	static const char *const bodies[] = {
	    "",
	    "--b\r\n",
	    "--b\r\n\r\n--b\r\n\r\n--b--\r\n",
	    "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: "
	    "application/pkcs7-signature\r\nContent-Transfer-Encoding: "
	    "base64\r\n\r\nMA==\r\n--b--",
	    "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: "
	    "application/pkcs7-signature\r\nContent-Transfer-Encoding: "
	    "base64\r\n\r\n====\r\n--b--",
	    "MIIB\r\n",
	    "MA==\r\n",
	    "!!!!\r\n",
	};
	size_t i, j;

	for (i = 0; i < TU_ARRAY_LEN(ctypes); i++) {
		for (j = 0; j < TU_ARRAY_LEN(bodies); j++) {
			struct sm_limits lim;
			struct sm_msg *m;
			struct sm_verify_result *r;

			sm_limits_default(&lim);
			assert_int_equal(sm_msg_new(&lim, spooldir, 4096, &m), 0);
			assert_int_equal(sm_msg_header(m, "From", "alice@kota.go.id"), 0);
			assert_int_equal(sm_msg_header(m, "Content-Type", ctypes[i]), 0);
			assert_int_equal(sm_msg_header(m, "Content-Transfer-Encoding",
			                     i == 0 || i == 3 ? "7bit" : "base64"),
			    0);
			assert_int_equal(sm_msg_eoh(m), 0);
			assert_int_equal(sm_msg_body(m, bodies[j], strlen(bodies[j])), 0);
			eom_any(m);
			r = verify(m, NULL);
			CHECK_ROW(r->status == SM_VERIFY_MALFORMED,
			    "ctype %zu body %zu: %s (%s)", i, j,
			    sm_verify_status_name(r->status), r->detail);
			sm_verify_result_free(r);
			sm_msg_free(m);
		}
	}
	assert_int_equal(table_failures, 0);
}

/* --- round trip through sm_sign ------------------------------------------ */

struct roundtrip {
	const char *name;
	const char *who; /* PKI file prefix */
	const char *from;
	enum sm_digest digest;
	int pss;
	size_t body_size; /* 0: a short text */
	const char *want_digest, *want_sigalg;
};

static const struct roundtrip roundtrips[] = {
    {"rsa", "alice", "Alice <alice@kota.go.id>", SM_DIGEST_SHA256, 0, 0, "SHA256",
        "rsaEncryption"},
    {"rsa-pss", "alice", "alice@kota.go.id", SM_DIGEST_SHA384, 1, 0, "SHA384", "RSASSA-PSS"},
    {"ecdsa", "bob", "bob@dinas.kota.go.id", SM_DIGEST_SHA512, 0, 0, "SHA512",
        "ecdsa-with-SHA512"},
    {"ecdsa-large", "bob", "bob@dinas.kota.go.id", SM_DIGEST_SHA256, 0, 3u << 20, "SHA256",
        "ecdsa-with-SHA256"},
};

/* A signed message from sm_sign, rendered and parsed back. */
static struct sm_msg *
segel_signed(const struct roundtrip *t)
{
	char cert[64], key[64];
	struct sm_signer s;
	struct sm_sign_opts so;
	struct sm_limits lim;
	struct sm_msg *m;
	struct sm_output *out = NULL;
	struct sg_spool *rendered;
	size_t len, i;
	unsigned char *body, *all;

	snprintf(cert, sizeof(cert), "%s.pem", t->who);
	snprintf(key, sizeof(key), "%s.key", t->who);
	memset(&s, 0, sizeof(s));
	s.cert = tu_load_cert(cert);
	s.key = tu_load_key(key);
	s.chain = tu_load_certs("sub-ca.pem");
	memset(&so, 0, sizeof(so));
	so.digest = t->digest;
	so.rsa_pss = t->pss;
	so.include_chain = 1;
	so.spool_dir = spooldir;
	so.mem_threshold = 4096;
	sm_limits_default(&lim);
	assert_int_equal(sm_msg_new(&lim, spooldir, 4096, &m), 0);
	assert_int_equal(sm_msg_header(m, "From", t->from), 0);
	assert_int_equal(sm_msg_header(m, "Subject", t->name), 0);
	assert_int_equal(sm_msg_header(m, "Content-Type", "text/plain; charset=utf-8"), 0);
	assert_int_equal(sm_msg_eoh(m), 0);
	len = t->body_size ? t->body_size : 40;
	body = malloc(len);
	assert_non_null(body);
	for (i = 0; i < len; i++)
		body[i] = i % 64 == 63 ? '\n' : (unsigned char)("Surat caf\xc3\xa9 "[i % 12]);
	assert_int_equal(sm_msg_body(m, body, len), 0);
	free(body);
	assert_int_equal(sm_msg_eom(m), 0);
	assert_int_equal(sm_sign(m, &s, &so, &out), 0);
	assert_int_equal(sg_spool_new(spooldir, 4096, SIZE_MAX / 2, &rendered), 0);
	assert_int_equal(sm_output_render(m, out, rendered), 0);
	all = tu_spool_contents(rendered, &len);
	sm_output_free(out);
	sg_spool_free(rendered);
	sm_msg_free(m);
	X509_free(s.cert);
	EVP_PKEY_free(s.key);
	sk_X509_pop_free(s.chain, X509_free);
	m = parse_msg(all, len);
	free(all);
	return m;
}

static void
test_segel_round_trip(void **state)
{
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(roundtrips); i++) {
		const struct roundtrip *t = &roundtrips[i];
		struct sm_verify_opts o = test_opts();
		struct sm_msg *m = segel_signed(t);
		struct sm_verify_result *r = verify(m, &o);
		const struct sm_verify_layer *l = sm_verify_primary(r);

		print_message(
		    "    %-12s %s: %s\n", t->name, sm_verify_status_name(r->status), r->detail);
		CHECK_ROW(r->status == SM_VERIFY_PASS && r->from_match == 1, "%s: %s (%s)",
		    t->name, sm_verify_status_name(r->status), r->detail);
		if (l != NULL) {
			CHECK_ROW(l->form == SM_FORM_DETACHED && l->caps != NULL &&
			        l->signing_time != 0 && !l->canonicalized,
			    "%s: layer facts", t->name);
			CHECK_ROW(strcmp(l->digest, t->want_digest) == 0 &&
			        strcmp(l->sig_alg, t->want_sigalg) == 0,
			    "%s: algorithms %s/%s want %s/%s", t->name, l->digest, l->sig_alg,
			    t->want_digest, t->want_sigalg);
			CHECK_ROW(t->body_size == 0 || sg_spool_on_disk(l->where),
			    "%s: the large body should be on disk", t->name);
			CHECK_ROW(l->entity_len > t->body_size, "%s: entity %zu bytes", t->name,
			    l->entity_len);
		}
		sm_verify_result_free(r);
		sm_msg_free(m);
	}
	assert_int_equal(table_failures, 0);
}

/* --- setup --------------------------------------------------------------- */

static int
make_corpus(void **state)
{
	const char *pki = getenv("SEGEL_PKI");
	char cmd[512];

	if (pki == NULL || pki[0] == '\0') {
		print_error("SEGEL_PKI is not set: run tests/pki/gen-pki.sh DIR and export "
		            "SEGEL_PKI=DIR\n");
		return -1;
	}
	if (access("tests/corpus/gen-corpus.sh", X_OK) != 0) {
		print_error(
		    "run from the top of the source tree (tests/corpus/gen-corpus.sh)\n");
		return -1;
	}
	snprintf(
	    cmd, sizeof(cmd), "tests/corpus/gen-corpus.sh '%s' '%s' >/dev/null", corpus, pki);
	if (strchr(pki, '\'') != NULL || system(cmd) != 0) {
		print_error("tests/corpus/gen-corpus.sh failed\n");
		return -1;
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus_manifest),
	    cmocka_unit_test(test_nested_layers),
	    cmocka_unit_test(test_signer_not_carried),
	    cmocka_unit_test(test_from_override),
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_limits_at_the_edge),
	    cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_truncated_bodies),
	    cmocka_unit_test(test_truncated_parts),
	    cmocka_unit_test(test_garbage_bodies),
	    cmocka_unit_test(test_segel_round_trip),
	};
	int r;

	snprintf(spooldir, sizeof(spooldir), "/tmp/segel-verify.XXXXXX");
	snprintf(corpus, sizeof(corpus), "/tmp/segel-corpus-test.XXXXXX");
	if (mkdtemp(spooldir) == NULL || mkdtemp(corpus) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	r = cmocka_run_group_tests(tests, make_corpus, NULL);
	tu_rmtree(spooldir);
	tu_rmtree(corpus);
	return r;
}
