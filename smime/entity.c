/*
 * entity.c - writes the canonical MIME entity that gets signed.
 *
 * Output is CRLF throughout.  Each leaf is copied, relabelled 7bit, or
 * re-encoded (quoted-printable for text, base64 otherwise) as the scan
 * decided; preambles and epilogues are left out; every multipart is
 * closed properly.  Quoted-printable also protects trailing blanks and a
 * leading "From " so that relays cannot alter the signed bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mimeint.h"

#define CHUNK (57 * 1024) /* a multiple of 57 keeps base64 lines full */

static const char *
enc_name(int enc)
{
	switch (enc) {
	case SM_ENC_QP:
		return "quoted-printable";
	case SM_ENC_BASE64:
		return "base64";
	default:
		return "7bit";
	}
}

static int
top_headers(const struct sm_msg *m, const struct sm_part *p, struct sm_sink *out)
{
	size_t i, n = sm_msg_header_count(m);
	int r, any_ct = 0;

	for (i = 0; i < n; i++) {
		const char *name = sm_msg_header_name(m, i);

		if (!sm_is_content_field(name))
			continue;
		if (p->enc != SM_ENC_KEEP && strcasecmp(name, "Content-Transfer-Encoding") == 0)
			continue;
		any_ct |= strcasecmp(name, "Content-Type") == 0;
		if ((r = sm_put_field(out, name, sm_msg_header_value(m, i))) != 0)
			return r;
	}
	if (!any_ct) {
		r = sm_sink_puts(out,
		    p->has_8bit ? "Content-Type: text/plain; charset=utf-8\r\n"
		                : "Content-Type: text/plain; charset=us-ascii\r\n");
		if (r != 0)
			return r;
	}
	if (p->enc != SM_ENC_KEEP)
		return sm_put_field(out, "Content-Transfer-Encoding", enc_name(p->enc));
	return 0;
}

/* Copies a part's header block line by line, dropping its CTE field when
 * the encoding changes. */
static int
part_headers(const struct sg_spool *in, const struct sm_part *p, struct sm_sink *out)
{
	struct sg_spool_reader *rd;
	const unsigned char *l;
	size_t len;
	int complete, r = 0, skipping = 0;

	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, in, p->hdr_start);
	while (rd->off + rd->pos < p->hdr_end &&
	    (r = sg_spool_getline(rd, &l, &len, &complete)) == 1) {
		size_t n = len;

		while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == '\r'))
			n--;
		if (l[0] != ' ' && l[0] != '\t')
			skipping = p->enc != SM_ENC_KEEP && n >= 26 &&
			    strncasecmp((const char *)l, "Content-Transfer-Encoding:", 26) == 0;
		if (skipping)
			continue;
		if ((r = sm_sink_put(out, l, n)) != 0 || (r = sm_sink_put(out, "\r\n", 2)) != 0)
			goto out;
	}
	if (r < 0)
		goto out;
	r = 0;
	if (p->enc != SM_ENC_KEEP)
		r = sm_put_field(out, "Content-Transfer-Encoding", enc_name(p->enc));
out:
	free(rd);
	return r;
}

/* Copies [start, end) with every line end made CRLF. */
static int
copy_canonical(const struct sg_spool *in, size_t start, size_t end, struct sm_sink *out)
{
	struct sg_spool_reader *rd;
	const unsigned char *l;
	size_t len;
	int complete, r = 0;

	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, in, start);
	while (
	    rd->off + rd->pos < end && (r = sg_spool_getline(rd, &l, &len, &complete)) == 1) {
		size_t n = len, lim = end - rd->line_off;
		int nl = 0;

		if (n > lim)
			n = lim;
		if (n > 0 && l[n - 1] == '\n') {
			nl = 1;
			n -= (n >= 2 && l[n - 2] == '\r') ? 2 : 1;
		}
		if ((r = sm_sink_put(out, l, n)) != 0 ||
		    (nl && (r = sm_sink_put(out, "\r\n", 2))))
			break;
	}
	free(rd);
	return r < 0 ? r : 0;
}

static int
copy_base64(const struct sg_spool *in, size_t start, size_t end, struct sm_sink *out)
{
	unsigned char *buf;
	size_t got;
	int r = 0;

	if ((buf = malloc(CHUNK)) == NULL)
		return SG_ERR_NOMEM;
	while (start < end) {
		size_t want = end - start < CHUNK ? end - start : CHUNK;

		if ((r = sg_spool_read(in, start, buf, want, &got)) != 0)
			break;
		if (got == 0) {
			r = SG_ERR_TRUNCATED;
			break;
		}
		if ((r = sm_base64_write(out, buf, got)) != 0)
			break;
		start += got;
	}
	free(buf);
	return r;
}

/* Quoted-printable encoder state (RFC 2045 6.7). */
struct qp {
	struct sm_sink *out;
	char line[96];
	size_t col;
	int pending; /* a blank held back until we know it is not trailing */
};

static int
qp_emit(struct qp *q, const char *s, size_t n)
{
	int r;

	if (q->col + n > 75) {
		memcpy(q->line + q->col, "=\r\n", 3);
		if ((r = sm_sink_put(q->out, q->line, q->col + 3)) != 0)
			return r;
		q->col = 0;
	}
	if (q->col == 0 && n == 1 && (s[0] == 'F' || s[0] == '.')) {
		/* a line that starts "From " or "." may be changed by relays */
		memcpy(q->line, s[0] == 'F' ? "=46" : "=2E", 3);
		q->col = 3;
		return 0;
	}
	memcpy(q->line + q->col, s, n);
	q->col += n;
	return 0;
}

static int
qp_byte(struct qp *q, unsigned char c, int literal)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	if (literal) {
		e[0] = (char)c;
		return qp_emit(q, e, 1);
	}
	e[0] = '=';
	e[1] = hex[c >> 4];
	e[2] = hex[c & 15];
	return qp_emit(q, e, 3);
}

static int
qp_flush_pending(struct qp *q, int trailing)
{
	int c = q->pending, r;

	if (c == 0)
		return 0;
	q->pending = 0;
	r = qp_byte(q, (unsigned char)c, !trailing);
	return r;
}

static int
qp_end_line(struct qp *q)
{
	int r;

	if ((r = qp_flush_pending(q, 1)) != 0)
		return r;
	memcpy(q->line + q->col, "\r\n", 2);
	r = sm_sink_put(q->out, q->line, q->col + 2);
	q->col = 0;
	return r;
}

static int
qp_data(struct qp *q, const unsigned char *l, size_t n, int line_start)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		unsigned char c = l[i];

		if ((r = qp_flush_pending(q, 0)) != 0)
			return r;
		if (c == ' ' || c == '\t') {
			q->pending = c;
			continue;
		}
		r = qp_byte(q, c, c > 32 && c < 127 && c != '=');
		if (r != 0)
			return r;
	}
	return 0;
}

static int
copy_qp(const struct sg_spool *in, size_t start, size_t end, struct sm_sink *out)
{
	struct sg_spool_reader *rd;
	struct qp q = {out, {0}, 0, 0};
	const unsigned char *l;
	size_t len;
	int complete, r = 0, line_start = 1;

	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, in, start);
	while (
	    rd->off + rd->pos < end && (r = sg_spool_getline(rd, &l, &len, &complete)) == 1) {
		size_t n = len, lim = end - rd->line_off;
		int nl = 0;

		if (n > lim)
			n = lim;
		if (complete && n > 0 && l[n - 1] == '\n') {
			nl = 1;
			n -= (n >= 2 && l[n - 2] == '\r') ? 2 : 1;
		}
		if ((r = qp_data(&q, l, n, line_start)) != 0)
			break;
		line_start = nl;
		if (nl && (r = qp_end_line(&q)) != 0)
			break;
	}
	if (r >= 0 && !line_start) {
		/* no final line end: a soft break keeps the content exact */
		if ((r = qp_flush_pending(&q, 1)) == 0 && q.col > 0) {
			memcpy(q.line + q.col, "=\r\n", 3);
			r = sm_sink_put(out, q.line, q.col + 3);
		}
	}
	free(rd);
	return r < 0 ? r : 0;
}

static int write_part(
    const struct sm_msg *m, const struct sm_tree *t, int idx, struct sm_sink *out);

static int
write_children(const struct sm_msg *m, const struct sm_tree *t, int idx, struct sm_sink *out)
{
	const char *b = t->parts[idx].ct.boundary;
	size_t j;
	int r;

	for (j = (size_t)idx + 1; j < t->nparts; j++) {
		if (t->parts[j].parent != idx)
			continue;
		if ((r = sm_sink_puts(out, "--")) != 0 || (r = sm_sink_puts(out, b)) != 0 ||
		    (r = sm_sink_put(out, "\r\n", 2)) != 0 ||
		    (r = write_part(m, t, (int)j, out)) != 0 ||
		    (r = sm_sink_put(out, "\r\n", 2)) != 0)
			return r;
	}
	if ((r = sm_sink_puts(out, "--")) != 0 || (r = sm_sink_puts(out, b)) != 0)
		return r;
	return sm_sink_puts(out, "--");
}

static int
write_part(const struct sm_msg *m, const struct sm_tree *t, int idx, struct sm_sink *out)
{
	const struct sm_part *p = &t->parts[idx];
	const struct sg_spool *in = sm_msg_body_spool(m);
	int r;

	r = idx == 0 ? top_headers(m, p, out) : part_headers(in, p, out);
	if (r != 0 || (r = sm_sink_put(out, "\r\n", 2)) != 0)
		return r;
	if (p->container && strcmp(p->ct.type, "message") == 0)
		return write_part(m, t, idx + 1, out); /* the embedded message */
	if (p->container)
		return write_children(m, t, idx, out);
	switch (p->enc) {
	case SM_ENC_QP:
		return copy_qp(in, p->body_start, p->body_end, out);
	case SM_ENC_BASE64:
		return copy_base64(in, p->body_start, p->body_end, out);
	default:
		return copy_canonical(in, p->body_start, p->body_end, out);
	}
}

int
sm_entity_write(const struct sm_msg *m, const struct sm_tree *t, struct sm_sink *out)
{
	return write_part(m, t, 0, out);
}
