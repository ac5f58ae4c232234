/*
 * verify.c - cryptographic verification of incoming S/MIME signatures.
 *
 * A message is walked from the outside in.  Each S/MIME layer becomes one
 * struct sm_verify_layer:
 *
 *   multipart/signed      the first body part is the signed entity, byte
 *                         for byte; the second is the base64 signature.
 *                         The entity is streamed from the spool into
 *                         CMS_verify through a read-only BIO over its byte
 *                         range, so it is never copied into memory.
 *   application/pkcs7-mime signed-data: the base64 body is decoded (bounded)
 *                         and the content comes out of the CMS into a spool.
 *                         enveloped/authEnveloped data: reported as
 *                         ENCRYPTED, not opened.
 *
 * When a layer passes, its content is looked at again: if that is S/MIME
 * too (a signed message signed again, a signature around encrypted data),
 * it becomes the next layer, up to opts.max_depth layers.
 *
 * GUARANTEES: CMS_verify runs with CMS_NO_SIGNER_CERT_VERIFY and no store:
 * this file proves only that the signer's key signed the content.  Trust
 * in the signer is the keystore's decision.  The legacy PKCS7 API is not
 * used.  Every size read from the message is bounded (signature, opaque
 * CMS, header block, certificates and signers per signature, depth).
 *
 * SECURITY: everything in a layer but its status comes from the sender
 * and is proven only for a PASS layer.  The detail texts quote untrusted
 * addresses; they are cut to length and reduced to printable ASCII here.
 *
 * DIAGNOSTICS: none; the result carries a status and a detail per layer.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "mimeint.h"
#include "verify.h"

/* What one walk over a message shares. */
struct walk {
	const struct sm_verify_opts *o;
	const struct sm_limits *lim;
	struct sm_verify_result *res;
	size_t cap; /* room in res->layers: pointers into it never move */
};

/* Where an S/MIME entity's body is, and what its fields said. */
struct entity {
	const struct sg_spool *sp;
	size_t start, end; /* the body */
	struct sm_ctype ct;
	enum sm_cte cte;
};

/* --- results ------------------------------------------------------------ */

void
sm_verify_opts_default(struct sm_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_sig_size = SM_VERIFY_MAX_SIG_DEFAULT;
	o->max_opaque_size = SM_VERIFY_MAX_OPAQUE_DEFAULT;
	o->max_depth = SM_VERIFY_MAX_DEPTH_DEFAULT;
	o->max_certs = SM_VERIFY_MAX_CERTS_DEFAULT;
	o->max_signers = SM_VERIFY_MAX_SIGNERS_DEFAULT;
	o->mem_threshold = 1024 * 1024;
}

static int
opts_valid(const struct sm_verify_opts *o)
{
	return o->max_sig_size >= 1 && o->max_sig_size <= SM_VERIFY_MAX_SIG_HARD &&
	    o->max_opaque_size >= 1 && o->max_opaque_size <= SM_VERIFY_MAX_OPAQUE_HARD &&
	    o->max_depth >= 1 && o->max_depth <= SM_VERIFY_MAX_DEPTH_HARD &&
	    o->max_certs >= 1 && o->max_certs <= SM_VERIFY_MAX_CERTS_HARD &&
	    o->max_signers >= 1 && o->max_signers <= SM_VERIFY_MAX_SIGNERS_HARD;
}

const char *
sm_verify_status_name(enum sm_verify_status s)
{
	switch (s) {
	case SM_VERIFY_PASS:
		return "pass";
	case SM_VERIFY_FAIL:
		return "fail";
	case SM_VERIFY_MALFORMED:
		return "malformed";
	case SM_VERIFY_ENCRYPTED:
		return "encrypted";
	default:
		return "none";
	}
}

static void
layer_clear(struct sm_verify_layer *l)
{
	X509_free(l->signer);
	sk_X509_pop_free(l->certs, X509_free);
	free(l->caps);
	sm_addr_list_free(l->addrs, l->naddrs);
	sg_spool_free(l->content);
	memset(l, 0, sizeof(*l));
}

void
sm_verify_result_free(struct sm_verify_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nlayers; i++)
		layer_clear(&r->layers[i]);
	free(r->layers);
	free(r->from);
	free(r);
}

const struct sm_verify_layer *
sm_verify_primary(const struct sm_verify_result *r)
{
	return r != NULL && r->primary < r->nlayers ? &r->layers[r->primary] : NULL;
}

/* Formats into dst and keeps only printable ASCII: details quote senders. */
static void vformat(char *dst, size_t len, const char *fmt, va_list ap) SG_PRINTF(3, 0);

static void
vformat(char *dst, size_t len, const char *fmt, va_list ap)
{
	char *p;

	vsnprintf(dst, len, fmt, ap);
	for (p = dst; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static int layer_set(struct sm_verify_layer *l, enum sm_verify_status st, const char *fmt, ...)
    SG_PRINTF(3, 4);

/* Sets a layer's status and detail; returns 0 so callers can return it. */
static int
layer_set(struct sm_verify_layer *l, enum sm_verify_status st, const char *fmt, ...)
{
	va_list ap;

	l->status = st;
	va_start(ap, fmt);
	vformat(l->detail, sizeof(l->detail), fmt, ap);
	va_end(ap);
	return 0;
}

static int layer_malformed(struct sm_verify_layer *l, const char *fmt, ...) SG_PRINTF(2, 3);

/* Marks a layer MALFORMED; returns SG_ERR_MALFORMED, which ends its walk. */
static int
layer_malformed(struct sm_verify_layer *l, const char *fmt, ...)
{
	va_list ap;

	l->status = SM_VERIFY_MALFORMED;
	va_start(ap, fmt);
	vformat(l->detail, sizeof(l->detail), fmt, ap);
	va_end(ap);
	return SG_ERR_MALFORMED;
}

static int
add_layer(struct walk *w, enum sm_verify_form form, const struct sg_spool *where,
    struct sm_verify_layer **out)
{
	struct sm_verify_layer *l;

	*out = NULL;
	if (w->res->nlayers >= w->cap)
		return SG_ERR_INTERNAL; /* the depth check comes first */
	l = &w->res->layers[w->res->nlayers++];
	memset(l, 0, sizeof(*l));
	l->form = form;
	l->where = where;
	l->status = SM_VERIFY_MALFORMED;
	*out = l;
	return 0;
}

/* --- a read-only BIO over a byte range of a spool ------------------------ */

struct range {
	const struct sg_spool *sp;
	size_t off, end; /* next byte to read from the spool, end of range */
	int canon; /* write each bare LF as CRLF (RFC 8551 canonical form) */
	int pending_lf; /* the CR of a bare LF went out, its LF has not */
	unsigned char prev; /* the previous byte read */
	size_t bare_lf; /* bare LFs seen */
	int err; /* SG_ERR_* of a failed spool read */
	size_t pos, fill;
	unsigned char buf[8192];
};

static int
range_refill(struct range *rg)
{
	size_t want = rg->end - rg->off, got = 0;
	int r;

	if (want == 0 || rg->err != 0)
		return 0;
	if (want > sizeof(rg->buf))
		want = sizeof(rg->buf);
	if ((r = sg_spool_read(rg->sp, rg->off, rg->buf, want, &got)) != 0 || got == 0) {
		rg->err = r != 0 ? r : SG_ERR_TRUNCATED;
		return 0;
	}
	rg->off += got;
	rg->pos = 0;
	rg->fill = got;
	return 1;
}

static int
range_read(BIO *b, char *out, int outl)
{
	struct range *rg = BIO_get_data(b);
	int n = 0;

	BIO_clear_retry_flags(b);
	if (rg == NULL || out == NULL || outl <= 0)
		return 0;
	while (n < outl) {
		unsigned char c;

		if (rg->pending_lf) {
			out[n++] = '\n';
			rg->pending_lf = 0;
			continue;
		}
		if (rg->pos == rg->fill && !range_refill(rg))
			break;
		c = rg->buf[rg->pos++];
		if (c == '\n' && rg->prev != '\r') {
			rg->bare_lf++;
			if (rg->canon) {
				c = '\r';
				rg->pending_lf = 1;
			}
		}
		rg->prev = rg->pending_lf ? '\n' : c;
		out[n++] = (char)c;
	}
	return n > 0 ? n : (rg->err != 0 ? -1 : 0);
}

static long
range_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct range *rg = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF:
		return rg == NULL ||
		    (!rg->pending_lf && rg->pos == rg->fill && rg->off >= rg->end);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
range_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static CRYPTO_ONCE range_once = CRYPTO_ONCE_STATIC_INIT;
static BIO_METHOD *range_method; /* made once, lives as long as the process */

static void
range_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "spool range");

	if (m != NULL &&
	    (!BIO_meth_set_read(m, range_read) || !BIO_meth_set_ctrl(m, range_ctrl) ||
	        !BIO_meth_set_create(m, range_create))) {
		BIO_meth_free(m);
		m = NULL;
	}
	range_method = m;
}

/* A BIO reading [start, end) of sp through rg (which the caller owns). */
static BIO *
range_bio(struct range *rg, const struct sg_spool *sp, size_t start, size_t end, int canon)
{
	BIO *b;

	memset(rg, 0, offsetof(struct range, buf));
	rg->sp = sp;
	rg->off = start;
	rg->end = end;
	rg->canon = canon;
	if (!CRYPTO_THREAD_run_once(&range_once, range_method_init) || range_method == NULL ||
	    (b = BIO_new(range_method)) == NULL)
		return NULL;
	BIO_set_data(b, rg);
	return b;
}

/* --- lines, header blocks and the two parts of multipart/signed --------- */

/* The next line that starts before end, cut at end.  1, 0 at the end, or <0. */
static int
range_getline(
    struct sg_spool_reader *rd, size_t end, const unsigned char **l, size_t *len, int *complete)
{
	int r = sg_spool_getline(rd, l, len, complete);

	if (r != 1)
		return r;
	if (rd->line_off >= end)
		return 0;
	if (*len > end - rd->line_off) {
		*len = end - rd->line_off;
		*complete = 1;
	}
	return 1;
}

/* Length of the line end (CRLF, LF or none) of a complete line. */
static size_t
eol_len(const unsigned char *l, size_t len, int complete)
{
	if (!complete || len == 0 || l[len - 1] != '\n')
		return 0;
	return len >= 2 && l[len - 2] == '\r' ? 2 : 1;
}

/* The Content-Type and Content-Transfer-Encoding of an entity's header. */
struct fields {
	struct sg_buf ctype, cte;
	int have_ctype, have_cte;
	size_t body_start;
};

static void
fields_free(struct fields *f)
{
	sg_buf_free(&f->ctype);
	sg_buf_free(&f->cte);
}

/* Which field a header line starts: 1 Content-Type, 2 CTE, 0 another, -1 none. */
static int
field_kind(const unsigned char *l, size_t n, size_t *vstart)
{
	const unsigned char *colon = memchr(l, ':', n);
	size_t nl;

	if (colon == NULL)
		return -1;
	nl = (size_t)(colon - l);
	while (nl > 0 && (l[nl - 1] == ' ' || l[nl - 1] == '\t'))
		nl--;
	*vstart = (size_t)(colon - l) + 1;
	if (nl == 12 && strncasecmp((const char *)l, "Content-Type", 12) == 0)
		return 1;
	if (nl == 25 && strncasecmp((const char *)l, "Content-Transfer-Encoding", 25) == 0)
		return 2;
	return 0;
}

/* Adds one header line (without its line end) to f; cur is the open field. */
static int
fields_line(struct fields *f, const unsigned char *l, size_t n, int *cur, const char **why)
{
	size_t v = 0;
	int k;

	if (memchr(l, '\0', n) != NULL) {
		*why = "NUL byte in a MIME header";
		return SG_ERR_MALFORMED;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		if (*cur == 1 && sg_buf_put(&f->ctype, l, n) != 0)
			return SG_ERR_LIMIT;
		if (*cur == 2 && sg_buf_put(&f->cte, l, n) != 0)
			return SG_ERR_LIMIT;
		return 0;
	}
	if ((k = field_kind(l, n, &v)) < 0) {
		*why = "MIME header line without a colon";
		return SG_ERR_MALFORMED;
	}
	*cur = k;
	if ((k == 1 && f->have_ctype++) || (k == 2 && f->have_cte++)) {
		*why = "MIME part with a repeated Content-Type or Content-Transfer-Encoding";
		return SG_ERR_MALFORMED;
	}
	if (k == 1 && sg_buf_put(&f->ctype, l + v, n - v) != 0)
		return SG_ERR_LIMIT;
	if (k == 2 && sg_buf_put(&f->cte, l + v, n - v) != 0)
		return SG_ERR_LIMIT;
	return 0;
}

/*
 * Reads the header block of the entity at [start, end) of sp into f (the
 * caller frees it with fields_free).  An entity that ends inside its
 * header has an empty body.  SG_ERR_MALFORMED with *why, or another code.
 */
static int
read_fields(const struct sg_spool *sp, size_t start, size_t end, size_t maxhdr,
    struct fields *f, const char **why)
{
	struct sg_spool_reader *rd;
	const unsigned char *l;
	size_t len, total = 0;
	int complete, r, cur = -1;

	memset(f, 0, sizeof(*f));
	sg_buf_init(&f->ctype, maxhdr);
	sg_buf_init(&f->cte, maxhdr);
	f->body_start = end;
	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, sp, start);
	while ((r = range_getline(rd, end, &l, &len, &complete)) == 1) {
		size_t n = len - eol_len(l, len, complete);

		total += len;
		if (!complete || total > maxhdr) {
			*why = "MIME part header block too large";
			r = SG_ERR_MALFORMED;
			break;
		}
		if (n == 0) {
			f->body_start = rd->line_off + len;
			break;
		}
		if ((r = fields_line(f, l, n, &cur, why)) != 0) {
			if (r == SG_ERR_LIMIT) {
				*why = "MIME part header field too long";
				r = SG_ERR_MALFORMED;
			}
			break;
		}
	}
	free(rd);
	return r < 0 ? r : 0;
}

/* Whether l (n bytes, no line end) is a delimiter of boundary b. */
static int
is_delimiter(const unsigned char *l, size_t n, const char *b, int *close)
{
	size_t bl = strlen(b), i;

	if (n < 2 + bl || l[0] != '-' || l[1] != '-' || memcmp(l + 2, b, bl) != 0)
		return 0;
	i = 2 + bl;
	*close = n >= i + 2 && l[i] == '-' && l[i + 1] == '-';
	if (*close)
		i += 2;
	/* transport padding; a CR here is a line end cut at the end of the data */
	while (i < n && (l[i] == ' ' || l[i] == '\t' || (l[i] == '\r' && i + 1 == n)))
		i++;
	return i == n;
}

/* The two parts of multipart/signed: each from after its delimiter line to
 * before the line end that precedes the next delimiter (RFC 2046 5.1.1). */
struct split {
	size_t ent_start, ent_end;
	size_t sig_start, sig_end;
};

static const char *const split_missing[] = {
    "multipart/signed whose boundary never appears",
    "multipart/signed without a signature part",
    "multipart/signed without a closing boundary",
};

static int
split_signed(const struct sg_spool *sp, size_t start, size_t end, const char *boundary,
    struct split *s, const char **why)
{
	struct sg_spool_reader *rd;
	const unsigned char *l;
	size_t len, prev_eol = 0, run = 0;
	int complete, r, state = 0, close = 0;

	memset(s, 0, sizeof(*s));
	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, sp, start);
	while (state < 3 && (r = range_getline(rd, end, &l, &len, &complete)) == 1) {
		size_t eol = eol_len(l, len, complete), off = rd->line_off;
		size_t before = off >= prev_eol ? off - prev_eol : off;

		if (run == 0 && complete && is_delimiter(l, len - eol, boundary, &close)) {
			if (state == 0 && !close) {
				s->ent_start = off + len;
			} else if (state == 1 && !close) {
				s->ent_end = before > s->ent_start ? before : s->ent_start;
				s->sig_start = off + len;
			} else if (state == 2 && close) {
				s->sig_end = before > s->sig_start ? before : s->sig_start;
			} else {
				*why = state == 0 ? "multipart/signed without parts"
				    : state == 1  ? "multipart/signed with only one part"
				                  : "multipart/signed with more than two parts";
				r = SG_ERR_MALFORMED;
				break;
			}
			state++;
		}
		run = complete ? 0 : run + len;
		if (complete)
			prev_eol = eol;
	}
	free(rd);
	if (r < 0)
		return r;
	if (state < 3) {
		*why = split_missing[state];
		return SG_ERR_MALFORMED;
	}
	return 0;
}

/* --- base64 -------------------------------------------------------------- */

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

struct b64 {
	unsigned long acc;
	int count, pad;
	struct sg_buf *out;
	const char *why;
};

static int
b64_byte(struct b64 *d, unsigned char c)
{
	unsigned char o[3];
	int v;

	if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		return 0;
	if (c == '=') {
		if (d->count < 2 || d->count + ++d->pad > 4) {
			d->why = "misplaced base64 padding";
			return SG_ERR_MALFORMED;
		}
		return 0;
	}
	if ((v = b64_value(c)) < 0 || d->pad > 0) {
		d->why = v < 0 ? "invalid character in base64" : "base64 data after padding";
		return SG_ERR_MALFORMED;
	}
	d->acc = (d->acc << 6) | (unsigned long)v;
	if (++d->count < 4)
		return 0;
	o[0] = (unsigned char)(d->acc >> 16);
	o[1] = (unsigned char)(d->acc >> 8);
	o[2] = (unsigned char)d->acc;
	d->acc = 0;
	d->count = 0;
	return sg_buf_put(d->out, o, 3);
}

/* The last, short quantum: "xx==", "xxx=", or with its padding (partly)
 * left off, which decodes to the same bytes. */
static int
b64_end(struct b64 *d)
{
	unsigned char o[2];

	if (d->count == 0 && d->pad == 0)
		return 0;
	if (d->count < 2) {
		d->why = "truncated base64";
		return SG_ERR_MALFORMED;
	}
	d->acc <<= 6 * (4 - d->count);
	o[0] = (unsigned char)(d->acc >> 16);
	o[1] = (unsigned char)(d->acc >> 8);
	return sg_buf_put(d->out, o, (size_t)d->count - 1);
}

/* Decodes base64 at [start, end) of sp into out (whose max is the limit). */
static int
b64_decode(
    const struct sg_spool *sp, size_t start, size_t end, struct sg_buf *out, const char **why)
{
	unsigned char chunk[4096];
	struct b64 d;
	size_t off = start, got, i;
	int r = 0;

	memset(&d, 0, sizeof(d));
	d.out = out;
	while (r == 0 && off < end) {
		size_t want = end - off < sizeof(chunk) ? end - off : sizeof(chunk);

		if ((r = sg_spool_read(sp, off, chunk, want, &got)) != 0)
			return r;
		if (got == 0)
			return SG_ERR_TRUNCATED;
		for (i = 0; i < got && r == 0; i++)
			r = b64_byte(&d, chunk[i]);
		off += got;
	}
	if (r == 0)
		r = b64_end(&d);
	if (r == SG_ERR_LIMIT)
		d.why = "S/MIME data larger than the limit";
	if (r == SG_ERR_LIMIT || r == SG_ERR_MALFORMED) {
		*why = d.why;
		return SG_ERR_MALFORMED;
	}
	return r;
}

/* --- the CMS structure --------------------------------------------------- */

/* Decodes a ContentInfo that must fill der exactly. */
static CMS_ContentInfo *
cms_parse(const struct sg_buf *der)
{
	const unsigned char *p = der->data;
	CMS_ContentInfo *cms;

	if (der->len == 0 || der->len > (size_t)LONG_MAX)
		return NULL;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)der->len)) == NULL)
		return NULL;
	if (p != der->data + der->len) {
		CMS_ContentInfo_free(cms);
		return NULL;
	}
	return cms;
}

/* Records the certificates carried, within the limits.  0 or MALFORMED. */
static int
take_certs(CMS_ContentInfo *cms, const struct sm_verify_opts *o, struct sm_verify_layer *l)
{
	int n = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms));

	if ((l->certs = CMS_get1_certs(cms)) == NULL)
		l->certs = sk_X509_new_null();
	if (l->certs == NULL)
		return SG_ERR_NOMEM;
	l->nsigners = n > 0 ? n : 0;
	if ((size_t)sk_X509_num(l->certs) > o->max_certs)
		return layer_malformed(l, "signature carries %d certificates (limit %zu)",
		    sk_X509_num(l->certs), o->max_certs);
	if ((size_t)l->nsigners > o->max_signers)
		return layer_malformed(
		    l, "signature has %d signers (limit %zu)", l->nsigners, o->max_signers);
	return 0;
}

static void
alg_name(const X509_ALGOR *a, char *buf, size_t len)
{
	const ASN1_OBJECT *obj = NULL;
	int nid;

	buf[0] = '\0';
	if (a == NULL)
		return;
	X509_ALGOR_get0(&obj, NULL, NULL, a);
	if (obj == NULL)
		return;
	if ((nid = OBJ_obj2nid(obj)) != NID_undef)
		snprintf(buf, len, "%s", OBJ_nid2sn(nid));
	else if (OBJ_obj2txt(buf, (int)len, obj, 1) <= 0)
		buf[0] = '\0';
}

/* The signingTime attribute (one value, UTCTime or GeneralizedTime), or 0. */
static time_t
signing_time(CMS_SignerInfo *si)
{
	int i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;

	if (i < 0 || (a = CMS_signed_get_attr(si, i)) == NULL || X509_ATTRIBUTE_count(a) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL)
		return 0;
	if (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)
		return 0;
	memset(&tm, 0, sizeof(tm));
	if (!ASN1_TIME_to_tm(t->value.asn1_string, &tm))
		return 0;
	return timegm(&tm);
}

/* The SMIMECapabilities attribute as DER (the SEQUENCE), if exactly one. */
static int
take_caps(CMS_SignerInfo *si, struct sm_verify_layer *l)
{
	ASN1_STRING *s = CMS_signed_get0_data_by_OBJ(
	    si, OBJ_nid2obj(NID_SMIMECapabilities), -3, V_ASN1_SEQUENCE);
	int n = s ? ASN1_STRING_length(s) : 0;

	if (n <= 0)
		return 0;
	if ((l->caps = malloc((size_t)n)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(l->caps, ASN1_STRING_get0_data(s), (size_t)n);
	l->capslen = (size_t)n;
	return 0;
}

static int
addrs_have(char **addrs, size_t n, const char *a)
{
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		if (strcmp(addrs[i], a) == 0)
			return 1;
	return 0;
}

/* The index of the SignerInfo to report: one whose certificate names from,
 * else the first. */
static int
pick_signer(STACK_OF(CMS_SignerInfo) * sis, const char *from)
{
	int i;

	for (i = 0; from != NULL && i < sk_CMS_SignerInfo_num(sis); i++) {
		X509 *x = NULL;

		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, i), NULL, &x, NULL, NULL);
		if (x != NULL && sm_cert_has_address(x, from))
			return i;
	}
	return 0;
}

/*
 * Fills in what the signature says about its signer (after CMS_verify,
 * which attached the signer certificates it found), and for a PASS the
 * detail about the From address.
 */
static int
describe_signer(CMS_ContentInfo *cms, const char *from, struct sm_verify_layer *l)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, pick_signer(sis, from));
	X509_ALGOR *dig = NULL, *sig = NULL;
	X509 *x = NULL;
	int r;

	if (si == NULL)
		return 0;
	CMS_SignerInfo_get0_algs(si, NULL, &x, &dig, &sig);
	alg_name(dig, l->digest, sizeof(l->digest));
	alg_name(sig, l->sig_alg, sizeof(l->sig_alg));
	l->signing_time = signing_time(si);
	if ((r = take_caps(si, l)) != 0)
		return r;
	if (x != NULL) {
		if (!X509_up_ref(x))
			return SG_ERR_NOMEM;
		l->signer = x;
		if ((r = sm_cert_addresses(x, &l->addrs, &l->naddrs)) != 0)
			return r;
	}
	if (l->status != SM_VERIFY_PASS)
		return 0;
	l->from_match = addrs_have(l->addrs, l->naddrs, from);
	if (from == NULL)
		return layer_set(l, SM_VERIFY_PASS,
		    "signature by %.100s verifies; no single From address",
		    l->naddrs ? l->addrs[0] : "a signer without an e-mail address");
	if (l->from_match)
		return layer_set(l, SM_VERIFY_PASS, "signed by %.100s", from);
	if (l->naddrs == 0)
		return layer_set(l, SM_VERIFY_PASS,
		    "signer certificate names no e-mail address; From %.100s", from);
	return layer_set(
	    l, SM_VERIFY_PASS, "signer %.100s does not match From %.100s", l->addrs[0], from);
}

/*
 * Runs CMS_verify (signatures only, no chain) over content (NULL for
 * opaque data) and sets the layer's status from the outcome.  Returns 0,
 * or SG_ERR_NOMEM when OpenSSL ran out of memory.
 */
static int
cms_check(CMS_ContentInfo *cms, const struct sm_verify_opts *o, BIO *content,
    struct sm_verify_layer *l)
{
	unsigned long e;
	int altered = 0, badsig = 0, nocert = 0, nomem = 0;
	const char *first = NULL;

	ERR_clear_error();
	if (CMS_verify(cms, o->extra_certs, NULL, content, NULL,
	        CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1)
		return layer_set(l, SM_VERIFY_PASS, "signature verifies");
	while ((e = ERR_get_error()) != 0) {
		int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);

		if (first == NULL)
			first = ERR_reason_error_string(e);
		nomem |= reason == ERR_R_MALLOC_FAILURE;
		if (lib != ERR_LIB_CMS)
			continue;
		altered |= reason == CMS_R_CONTENT_VERIFY_ERROR;
		badsig |= reason == CMS_R_VERIFICATION_FAILURE;
		nocert |= reason == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND;
	}
	if (nomem)
		return SG_ERR_NOMEM;
	if (altered && badsig)
		return layer_set(
		    l, SM_VERIFY_FAIL, "signature does not verify: content altered");
	if (badsig)
		return layer_set(
		    l, SM_VERIFY_FAIL, "signature does not verify: signature invalid");
	if (nocert)
		return layer_set(l, SM_VERIFY_MALFORMED,
		    "signer certificate not found (not carried in the signature)");
	return layer_set(l, SM_VERIFY_MALFORMED, "CMS signature cannot be verified: %.80s",
	    first ? first : "unknown error");
}

/* Checks the entity at [start, end) of sp against a detached signature;
 * when the exact bytes fail and hold bare LFs, again in canonical form. */
static int
check_detached(CMS_ContentInfo *cms, const struct sm_verify_opts *o, const struct sg_spool *sp,
    size_t start, size_t end, struct sm_verify_layer *l)
{
	struct range *rg;
	BIO *b = NULL;
	int r = SG_ERR_NOMEM, canon;

	if ((rg = malloc(sizeof(*rg))) == NULL)
		return SG_ERR_NOMEM;
	for (canon = 0; canon < 2; canon++) {
		if ((b = range_bio(rg, sp, start, end, canon)) == NULL) {
			r = SG_ERR_NOMEM;
			break;
		}
		r = cms_check(cms, o, b, l);
		BIO_free(b);
		if (r == 0 && rg->err != 0)
			r = rg->err;
		if (r != 0 || l->status != SM_VERIFY_FAIL || rg->bare_lf == 0 || canon)
			break;
	}
	l->canonicalized = r == 0 && canon == 1 && l->status == SM_VERIFY_PASS;
	free(rg);
	return r;
}

/* --- the walk ------------------------------------------------------------ */

static int verify_entity(struct walk *w, const struct sg_spool *sp, size_t start, size_t end,
    const char *ctype, const char *cte, size_t depth);

/* Looks inside a verified entity [start, end) of sp for another layer. */
static int
descend(struct walk *w, const struct sg_spool *sp, size_t start, size_t end, size_t depth)
{
	struct fields f;
	const char *why = NULL;
	int r;

	/* content that is not well-formed MIME is just content: the layer
	 * around it has passed, and there is nothing inside to verify */
	if ((r = read_fields(sp, start, end, w->lim->max_header_size, &f, &why)) == 0 &&
	    f.have_ctype)
		r = verify_entity(w, sp, f.body_start, end, sg_buf_str(&f.ctype),
		    f.have_cte ? sg_buf_str(&f.cte) : NULL, depth);
	fields_free(&f);
	return r == SG_ERR_MALFORMED ? 0 : r;
}

static int
smime_signature_type(const struct sm_ctype *ct)
{
	return strcmp(ct->type, "application") == 0 &&
	    (strcmp(ct->subtype, "pkcs7-signature") == 0 ||
	        strcmp(ct->subtype, "x-pkcs7-signature") == 0);
}

/* Decodes the signature part at [s->sig_start, s->sig_end) into der;
 * SG_ERR_MALFORMED when the layer is settled as malformed. */
static int
read_signature_part(const struct walk *w, const struct entity *e, const struct split *s,
    struct sg_buf *der, struct sm_verify_layer *l)
{
	struct fields f;
	struct sm_ctype ct;
	const char *why = NULL;
	int r;

	if ((r = read_fields(
	         e->sp, s->sig_start, s->sig_end, w->lim->max_header_size, &f, &why)) != 0) {
		fields_free(&f);
		return r == SG_ERR_MALFORMED ? layer_malformed(l, "signature part: %s", why)
		                             : r;
	}
	if (!f.have_ctype || sm_ctype_parse(sg_buf_str(&f.ctype), &ct) != 0 ||
	    !smime_signature_type(&ct))
		r = layer_malformed(
		    l, "second part of multipart/signed is not application/pkcs7-signature");
	else if (!f.have_cte || sm_cte_parse(sg_buf_str(&f.cte)) != SM_CTE_BASE64)
		r = layer_malformed(l, "signature part is not base64");
	else if ((r = b64_decode(e->sp, f.body_start, s->sig_end, der, &why)) ==
	    SG_ERR_MALFORMED)
		r = layer_malformed(l, "signature part: %s", why);
	fields_free(&f);
	return r;
}

static int
smime_protocol(const char *p)
{
	return strcasecmp(p, "application/pkcs7-signature") == 0 ||
	    strcasecmp(p, "application/x-pkcs7-signature") == 0;
}

/* Checks the Content-Type parameters and encoding of multipart/signed. */
static int
detached_shape(const struct entity *e, struct sm_verify_layer *l)
{
	if (e->ct.protocol[0] == '\0')
		return layer_malformed(l, "multipart/signed without a protocol parameter");
	if (!smime_protocol(e->ct.protocol))
		return layer_malformed(
		    l, "multipart/signed with protocol %.60s, not S/MIME", e->ct.protocol);
	if (e->cte == SM_CTE_QP || e->cte == SM_CTE_BASE64 || e->cte == SM_CTE_OTHER)
		return layer_malformed(l, "multipart/signed with an encoded body");
	return 0;
}

/* multipart/signed: the signature part against the exact first part. */
static int
verify_detached(struct walk *w, const struct entity *e, size_t depth)
{
	struct sm_verify_layer *l;
	struct split s;
	struct sg_buf der;
	CMS_ContentInfo *cms = NULL;
	const char *why = NULL;
	int r;

	if ((r = add_layer(w, SM_FORM_DETACHED, e->sp, &l)) != 0)
		return r;
	if (detached_shape(e, l) != 0)
		return 0;
	if ((r = split_signed(e->sp, e->start, e->end, e->ct.boundary, &s, &why)) != 0)
		return r == SG_ERR_MALFORMED ? layer_set(l, SM_VERIFY_MALFORMED, "%s", why) : r;
	l->entity_start = s.ent_start;
	l->entity_len = s.ent_end - s.ent_start;
	sg_buf_init(&der, w->o->max_sig_size);
	if ((r = read_signature_part(w, e, &s, &der, l)) != 0)
		goto out;
	if ((cms = cms_parse(&der)) == NULL) {
		r = layer_malformed(l, "signature part is not a CMS structure");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || CMS_is_detached(cms) != 1) {
		r = layer_malformed(l,
		    "signature part is not detached signed-data (it carries "
		    "content or is another type)");
		goto out;
	}
	if ((r = take_certs(cms, w->o, l)) != 0 ||
	    (r = check_detached(cms, w->o, e->sp, s.ent_start, s.ent_end, l)) != 0 ||
	    (r = describe_signer(cms, w->res->from, l)) != 0)
		goto out;
	if (l->canonicalized) {
		char was[sizeof(l->detail)];

		memcpy(was, l->detail, sizeof(was));
		layer_set(l, l->status, "%.180s (after restoring CRLF line ends)", was);
	}
	if (l->status == SM_VERIFY_PASS)
		r = descend(w, e->sp, s.ent_start, s.ent_end, depth + 1);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	sg_buf_free(&der);
	return r == SG_ERR_MALFORMED ? 0 : r;
}

/* What smime-type says, before the CMS is looked at. */
static int
declared_encrypted(const struct sm_ctype *ct)
{
	return strcasecmp(ct->smime_type, "enveloped-data") == 0 ||
	    strcasecmp(ct->smime_type, "authEnveloped-data") == 0;
}

/* The encapsulated content of a verified opaque layer, into its own spool. */
static int
take_content(const struct walk *w, CMS_ContentInfo *cms, struct sm_verify_layer *l)
{
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	size_t n = pos && *pos ? (size_t)ASN1_STRING_length(*pos) : 0;
	int r;

	if ((r = sg_spool_new(w->o->spool_dir, w->o->mem_threshold, n ? n : 1, &l->content)) !=
	    0)
		return r;
	if (n > 0 && (r = sg_spool_write(l->content, ASN1_STRING_get0_data(*pos), n)) != 0)
		return r;
	l->where = l->content;
	l->entity_start = 0;
	l->entity_len = n;
	return 0;
}

/*
 * An application/pkcs7-mime CMS that is not signed-data: encrypted
 * (reported), or unsupported.  Returns 1 when that settles the layer.
 */
static int
opaque_not_signed(CMS_ContentInfo *cms, const struct sm_ctype *ct, struct sm_verify_layer *l)
{
	int nid = OBJ_obj2nid(CMS_get0_type(cms));

	if (nid == NID_pkcs7_signed)
		return 0;
	if (nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData) {
		l->form = SM_FORM_ENCRYPTED;
		if (strcasecmp(ct->smime_type, "signed-data") == 0)
			layer_malformed(l, "smime-type says signed-data but the CMS is %s",
			    OBJ_nid2sn(nid));
		else
			layer_set(l, SM_VERIFY_ENCRYPTED, "encrypted (%s): not verified here",
			    OBJ_nid2sn(nid));
		return 1;
	}
	layer_malformed(l, "unsupported CMS content type %s",
	    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
	return 1;
}

/* Verifies decoded signed-data with its content; then looks inside. */
static int
verify_opaque_cms(struct walk *w, CMS_ContentInfo *cms, size_t depth, struct sm_verify_layer *l)
{
	int r;

	if ((r = take_certs(cms, w->o, l)) != 0)
		return r;
	if (l->nsigners == 0)
		return layer_set(l, SM_VERIFY_NONE, "certificates only, no signature");
	if (CMS_is_detached(cms) != 0)
		return layer_malformed(l, "signed-data without content");
	if ((r = cms_check(cms, w->o, NULL, l)) != 0 ||
	    (r = describe_signer(cms, w->res->from, l)) != 0 || l->status != SM_VERIFY_PASS)
		return r;
	if ((r = take_content(w, cms, l)) != 0)
		return r;
	ERR_clear_error();
	return descend(w, l->content, 0, l->entity_len, depth + 1);
}

/* application/pkcs7-mime: signed-data verified, enveloped data reported. */
static int
verify_opaque(struct walk *w, const struct entity *e, size_t depth)
{
	struct sm_verify_layer *l;
	struct sg_buf der;
	CMS_ContentInfo *cms = NULL;
	const char *why = NULL;
	int r;

	if ((r = add_layer(w, SM_FORM_OPAQUE, e->sp, &l)) != 0)
		return r;
	if (declared_encrypted(&e->ct)) {
		l->form = SM_FORM_ENCRYPTED;
		return layer_set(l, SM_VERIFY_ENCRYPTED, "encrypted (%.40s): not verified here",
		    e->ct.smime_type);
	}
	if (strcasecmp(e->ct.smime_type, "compressed-data") == 0)
		return layer_set(l, SM_VERIFY_MALFORMED, "compressed-data is not supported");
	if (e->cte != SM_CTE_BASE64)
		return layer_set(
		    l, SM_VERIFY_MALFORMED, "application/pkcs7-mime body is not base64");
	sg_buf_init(&der, w->o->max_opaque_size);
	if ((r = b64_decode(e->sp, e->start, e->end, &der, &why)) != 0) {
		if (r == SG_ERR_MALFORMED)
			layer_malformed(l, "application/pkcs7-mime: %s", why);
		goto out;
	}
	cms = cms_parse(&der);
	sg_buf_free(&der); /* the CMS holds what it needs */
	if (cms == NULL)
		r = layer_malformed(l, "application/pkcs7-mime is not a CMS structure");
	else if (!opaque_not_signed(cms, &e->ct, l))
		r = verify_opaque_cms(w, cms, depth, l);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	sg_buf_free(&der);
	return r == SG_ERR_MALFORMED ? 0 : r;
}

enum smime_kind { K_NONE, K_DETACHED, K_OPAQUE };

static enum smime_kind
smime_kind(const struct sm_ctype *ct)
{
	if (strcmp(ct->type, "multipart") == 0 && strcmp(ct->subtype, "signed") == 0)
		return K_DETACHED;
	if (strcmp(ct->type, "application") == 0 &&
	    (strcmp(ct->subtype, "pkcs7-mime") == 0 ||
	        strcmp(ct->subtype, "x-pkcs7-mime") == 0))
		return K_OPAQUE;
	return K_NONE;
}

/* What an unparsable Content-Type claims to be, by its leading type. */
static enum smime_kind
claimed_kind(const char *v)
{
	static const struct {
		const char *type;
		enum smime_kind kind;
	} types[] = {
	    {"multipart/signed", K_DETACHED},
	    {"application/pkcs7-mime", K_OPAQUE},
	    {"application/x-pkcs7-mime", K_OPAQUE},
	};
	size_t i;

	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strncasecmp(v, types[i].type, strlen(types[i].type)) == 0)
			return types[i].kind;
	return K_NONE;
}

/*
 * The entity with Content-Type ctype whose body is [start, end) of sp,
 * found depth layers deep.  Anything that is not S/MIME adds no layer.
 */
static int
verify_entity(struct walk *w, const struct sg_spool *sp, size_t start, size_t end,
    const char *ctype, const char *cte, size_t depth)
{
	struct sm_verify_layer *l;
	struct entity e;
	enum smime_kind k;
	int r, parsed;

	if (ctype == NULL)
		return 0;
	memset(&e, 0, sizeof(e));
	parsed = sm_ctype_parse(ctype, &e.ct) == 0;
	if ((k = parsed ? smime_kind(&e.ct) : claimed_kind(ctype)) == K_NONE)
		return 0;
	if (!parsed || depth >= w->o->max_depth) {
		if ((r = add_layer(
		         w, k == K_OPAQUE ? SM_FORM_OPAQUE : SM_FORM_DETACHED, sp, &l)) != 0)
			return r;
		if (!parsed)
			return layer_set(
			    l, SM_VERIFY_MALFORMED, "unparsable S/MIME Content-Type");
		return layer_set(l, SM_VERIFY_MALFORMED, "S/MIME layers nested deeper than %zu",
		    w->o->max_depth);
	}
	e.sp = sp;
	e.start = start;
	e.end = end;
	e.cte = sm_cte_parse(cte);
	return k == K_DETACHED ? verify_detached(w, &e, depth) : verify_opaque(w, &e, depth);
}

/* --- the message --------------------------------------------------------- */

/* The address signers are matched against; *why says why there is none. */
static int
find_from(struct sm_msg *m, const struct sm_verify_opts *o, char **from, const char **why)
{
	char **addrs = NULL;
	size_t n = 0;
	int r;

	*from = NULL;
	*why = NULL;
	if (o->from != NULL) {
		if ((*from = sm_addr_normalize(o->from)) == NULL)
			*why = "the given From address is not valid";
		return 0;
	}
	if (sm_msg_count(m, "From") != 1) {
		*why = sm_msg_count(m, "From") ? "more than one From field" : "no From field";
		return 0;
	}
	if ((r = sm_addr_parse_list(sm_msg_get(m, "From", 0), &addrs, &n)) == SG_ERR_NOMEM)
		return r;
	if (r != 0 || n != 1)
		*why = r != 0 ? "unparsable From field" : "more than one address in From";
	else {
		*from = addrs[0];
		addrs[0] = NULL; /* transferred */
	}
	sm_addr_list_free(addrs, n);
	return 0;
}

/* Status, detail, primary layer and from_match of the whole message. */
static void
summarize(struct sm_verify_result *res, const char *from_why)
{
	size_t i, bad = res->nlayers;
	int match = 0;

	res->primary = 0;
	for (i = res->nlayers; i-- > 0;) {
		const struct sm_verify_layer *l = &res->layers[i];

		if (l->status != SM_VERIFY_PASS)
			bad = i;
		if (l->status == SM_VERIFY_PASS && l->from_match) {
			res->primary = i;
			match = 1;
		}
	}
	if (res->nlayers == 0)
		return;
	if (bad < res->nlayers) {
		res->status = res->layers[bad].status;
		snprintf(res->detail, sizeof(res->detail), "%s%s", bad ? "inner layer: " : "",
		    res->layers[bad].detail);
	} else {
		res->status = SM_VERIFY_PASS;
		snprintf(
		    res->detail, sizeof(res->detail), "%s", res->layers[res->primary].detail);
		if (res->from == NULL && from_why != NULL)
			snprintf(res->detail, sizeof(res->detail), "%s (%s)",
			    res->layers[res->primary].detail, from_why);
	}
	res->from_match =
	    match && (res->status == SM_VERIFY_PASS || res->status == SM_VERIFY_ENCRYPTED);
}

int
sm_verify(struct sm_msg *m, const struct sm_verify_opts *opts, struct sm_verify_result **out)
{
	struct sm_verify_opts defaults;
	struct sm_verify_result *res;
	struct walk w;
	const char *from_why = NULL;
	int r;

	*out = NULL;
	if (opts == NULL) {
		sm_verify_opts_default(&defaults);
		opts = &defaults;
	}
	if (m == NULL || !opts_valid(opts))
		return SG_ERR_INVALID_ARG;
	if ((res = calloc(1, sizeof(*res))) == NULL)
		return SG_ERR_NOMEM;
	memset(&w, 0, sizeof(w));
	w.o = opts;
	w.lim = sm_msg_limits(m);
	w.res = res;
	w.cap = opts->max_depth + 1; /* +1: the layer that says "too deep" */
	snprintf(res->detail, sizeof(res->detail), "not S/MIME");
	if ((res->layers = calloc(w.cap, sizeof(*res->layers))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = find_from(m, opts, &res->from, &from_why)) != 0)
		goto out;
	if (sm_msg_count(m, "Content-Type") > 1 ||
	    sm_msg_count(m, "Content-Transfer-Encoding") > 1) {
		res->status = SM_VERIFY_MALFORMED;
		snprintf(res->detail, sizeof(res->detail),
		    "repeated Content-Type or Content-Transfer-Encoding field");
		goto done;
	}
	if ((r = verify_entity(&w, sm_msg_body_spool(m), 0, sg_spool_size(sm_msg_body_spool(m)),
	         sm_msg_get(m, "Content-Type", 0),
	         sm_msg_get(m, "Content-Transfer-Encoding", 0), 0)) != 0)
		goto out;
done:
	summarize(res, from_why);
	*out = res;
	res = NULL; /* transferred */
	r = 0;
out:
	ERR_clear_error();
	sm_verify_result_free(res);
	return r;
}
