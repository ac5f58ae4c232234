/*
 * mime.c - bounded, streaming scan of a message body's MIME structure.
 *
 * The scan reads the body once, line by line, and records every entity
 * (struct sm_part) with its header and body offsets and what its body
 * contains (8-bit bytes, NULs, over-long lines, bare CRs).  It then
 * decides how each leaf must be written so the result is 7-bit clean.
 *
 * Limits: nesting depth, number of parts and the size of each part's
 * header block come from struct sm_limits; exceeding one is SG_ERR_LIMIT.
 * A structure that cannot be written back safely (multipart without a
 * boundary or without parts, headers cut by a boundary, 8-bit data in a
 * base64 part ...) is SG_ERR_MALFORMED.  Neither is ever a crash: the
 * reason goes to the caller's problem buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mimeint.h"

#define HARD_MAX_DEPTH 64

enum scan_state { ST_HEADERS, ST_BODY, ST_PREAMBLE, ST_EPILOGUE };

struct scan {
	const struct sm_limits *lim;
	struct sm_tree *t;
	char *problem;
	size_t plen;
	int stack[HARD_MAX_DEPTH]; /* open multiparts, outermost first */
	int nstack;
	int cur;
	enum scan_state st;
	struct sg_buf hdr;
	size_t prev_eol;
	size_t run; /* length so far of a line returned in pieces */
};

static int
fail(struct scan *sc, int code, const char *why)
{
	snprintf(sc->problem, sc->plen, "%s", why);
	return code;
}

static int
add_part(struct scan *sc, int parent, int *idx)
{
	struct sm_tree *t = sc->t;
	struct sm_part *p;
	size_t maxdepth = sc->lim->max_mime_depth;

	if (maxdepth > HARD_MAX_DEPTH - 1)
		maxdepth = HARD_MAX_DEPTH - 1;
	if (t->nparts >= sc->lim->max_mime_parts)
		return fail(sc, SG_ERR_LIMIT, "too many MIME parts");
	if (parent >= 0 && (size_t)t->parts[parent].depth + 1 > maxdepth)
		return fail(sc, SG_ERR_LIMIT, "MIME nesting too deep");
	if (t->nparts == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 8;

		if ((p = realloc(t->parts, nc * sizeof(*p))) == NULL)
			return SG_ERR_NOMEM;
		t->parts = p;
		t->cap = nc;
	}
	p = &t->parts[t->nparts];
	memset(p, 0, sizeof(*p));
	p->parent = parent;
	p->depth = parent >= 0 ? t->parts[parent].depth + 1 : 0;
	*idx = (int)t->nparts++;
	return 0;
}

/* message/rfc822 (or global) in an identity encoding: scanned inside. */
static int
is_embedded_message(const struct sm_part *p)
{
	return strcmp(p->ct.type, "message") == 0 &&
	    (strcmp(p->ct.subtype, "rfc822") == 0 || strcmp(p->ct.subtype, "global") == 0) &&
	    (p->cte == SM_CTE_NONE || p->cte == SM_CTE_7BIT || p->cte == SM_CTE_8BIT ||
	        p->cte == SM_CTE_BINARY);
}

static int
begin_body(struct scan *sc, int idx, size_t off)
{
	struct sm_part *p = &sc->t->parts[idx];

	p->body_start = p->body_end = off;
	if (is_embedded_message(p)) {
		int c, r;

		/* the embedded message is one child entity: its own header
		 * block, then its body (RFC 2046 5.2.1) */
		p->container = 1;
		if ((r = add_part(sc, idx, &c)) != 0)
			return r;
		p = &sc->t->parts[idx]; /* add_part may move the array */
		p->nchildren = 1;
		sc->t->parts[c].hdr_start = off;
		sc->cur = c;
		sc->st = ST_HEADERS;
		sg_buf_reset(&sc->hdr);
		return 0;
	}
	if (strcmp(p->ct.type, "multipart") == 0) {
		if (sc->nstack >= HARD_MAX_DEPTH)
			return fail(sc, SG_ERR_LIMIT, "MIME nesting too deep");
		p->container = 1;
		sc->stack[sc->nstack++] = idx;
		sc->st = ST_PREAMBLE;
	} else {
		sc->st = ST_BODY;
	}
	sc->cur = idx;
	return 0;
}

/* Finds the value of field name in a part's header block; copies it. */
static int
header_value(const struct sg_buf *h, const char *name, struct sg_buf *val)
{
	const char *s = sg_buf_str(h), *end = s + h->len, *line = s;
	size_t nl = strlen(name);
	int found = 0, r;

	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		const char *next = eol ? eol + 1 : end;

		int is_name = (size_t)(next - line) > nl && strncasecmp(line, name, nl) == 0 &&
		    line[nl] == ':';

		if (found && is_name)
			return SG_ERR_MALFORMED; /* the field appears twice */
		if (!found && is_name) {
			found = 1;
			if ((r = sg_buf_put(val, line + nl + 1,
			         (size_t)((eol ? eol : end) - line) - nl - 1)) != 0)
				return r; /* SG_ERR_LIMIT or SG_ERR_NOMEM */
		} else if (found == 1 && (*line == ' ' || *line == '\t')) {
			if ((r = sg_buf_put(val, line, (size_t)((eol ? eol : end) - line))) !=
			    0)
				return r;
		} else if (found == 1) {
			found = 2;
		}
		line = next;
	}
	return found ? 1 : 0;
}

static int
end_headers(struct scan *sc, size_t hdr_end, size_t body_off)
{
	struct sm_part *p = &sc->t->parts[sc->cur];
	struct sg_buf v;
	int r;

	p->hdr_end = hdr_end;
	sg_buf_init(&v, sc->lim->max_header_size);
	r = header_value(&sc->hdr, "Content-Type", &v);
	if (r == SG_ERR_NOMEM) {
		sg_buf_free(&v);
		return r; /* a resource problem, not a verdict on the message */
	}
	if (r < 0 || sm_ctype_parse(r == 1 ? sg_buf_str(&v) : NULL, &p->ct) != 0) {
		sg_buf_free(&v);
		return fail(sc, SG_ERR_MALFORMED,
		    r < 0 ? "part with two Content-Type fields"
		          : "part with an unparsable Content-Type");
	}
	if (r == 0 && sc->t->parts[p->parent].ct.subtype[0] != '\0' &&
	    strcmp(sc->t->parts[p->parent].ct.subtype, "digest") == 0) {
		strcpy(p->ct.type, "message");
		strcpy(p->ct.subtype, "rfc822");
	}
	sg_buf_reset(&v);
	r = header_value(&sc->hdr, "Content-Transfer-Encoding", &v);
	p->cte = r == 1 ? sm_cte_parse(sg_buf_str(&v)) : SM_CTE_NONE;
	sg_buf_free(&v);
	if (r == SG_ERR_NOMEM)
		return r;
	if (r < 0)
		return fail(
		    sc, SG_ERR_MALFORMED, "part with two Content-Transfer-Encoding fields");
	return begin_body(sc, sc->cur, body_off);
}

/* Is line a delimiter of an open multipart?  Returns its stack level. */
static int
match_boundary(const struct scan *sc, const unsigned char *l, size_t n, int *close)
{
	int lvl;

	if (n < 3 || l[0] != '-' || l[1] != '-')
		return -1;
	for (lvl = sc->nstack - 1; lvl >= 0; lvl--) {
		const char *b = sc->t->parts[sc->stack[lvl]].ct.boundary;
		size_t bl = strlen(b), i;

		if (n < 2 + bl || memcmp(l + 2, b, bl) != 0)
			continue;
		i = 2 + bl;
		*close = n >= i + 2 && l[i] == '-' && l[i + 1] == '-';
		if (*close)
			i += 2;
		while (i < n && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i == n)
			return lvl;
	}
	return -1;
}

static void
end_leaf(struct scan *sc, size_t off)
{
	struct sm_part *p;

	if (sc->st != ST_BODY)
		return;
	p = &sc->t->parts[sc->cur];
	p->body_end = off >= p->body_start + sc->prev_eol ? off - sc->prev_eol : p->body_start;
}

static int
on_boundary(struct scan *sc, int lvl, int close, size_t next_off)
{
	int mp = sc->stack[lvl], c, r;

	if (sc->st == ST_HEADERS)
		return fail(sc, SG_ERR_MALFORMED, "MIME part headers cut by a boundary");
	sc->nstack = lvl + 1;
	if (close) {
		sc->nstack = lvl;
		sc->st = ST_EPILOGUE;
		if (sc->t->parts[mp].nchildren == 0)
			return fail(sc, SG_ERR_MALFORMED, "multipart without parts");
		return 0;
	}
	if ((r = add_part(sc, mp, &c)) != 0)
		return r;
	sc->t->parts[mp].nchildren++;
	sc->t->parts[c].hdr_start = next_off;
	sc->cur = c;
	sc->st = ST_HEADERS;
	sg_buf_reset(&sc->hdr);
	return 0;
}

static int
has_high_bit(const unsigned char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i] >= 0x80)
			return 1;
	return 0;
}

static void
body_stats(struct sm_part *p, const unsigned char *l, size_t n, size_t run)
{
	size_t i;

	if (run + n > 998)
		p->has_long = 1;
	for (i = 0; i < n; i++) {
		if (l[i] >= 0x80)
			p->has_8bit = 1;
		else if (l[i] == 0)
			p->has_nul = 1;
		else if (l[i] == '\r')
			p->has_bare_cr = 1;
	}
}

static int
on_line(struct scan *sc, const unsigned char *l, size_t len, int complete, size_t off)
{
	size_t n = len, eol = 0;
	int lvl = -1, close = 0, r;

	if (complete && n > 0 && l[n - 1] == '\n') {
		eol = n >= 2 && l[n - 2] == '\r' ? 2 : 1;
		n -= eol;
	}
	if (sc->run == 0)
		lvl = match_boundary(sc, l, n, &close);
	if (lvl >= 0) {
		end_leaf(sc, off);
		r = on_boundary(sc, lvl, close, off + len);
	} else if (sc->st == ST_HEADERS) {
		if (sc->run == 0 && n == 0)
			return end_headers(sc, off, off + len);
		r = sg_buf_put(&sc->hdr, l, n);
		if (r == 0 && complete)
			r = sg_buf_put(&sc->hdr, "\n", 1);
		if (r == SG_ERR_LIMIT)
			return fail(sc, r, "MIME part header block too large");
		if (r != 0)
			return r;
		if (memchr(l, 0, n) != NULL || has_high_bit(l, n))
			sc->t->parts[sc->cur].hdr_8bit = 1;
	} else {
		if (sc->st == ST_BODY)
			body_stats(&sc->t->parts[sc->cur], l, n, sc->run);
		r = 0;
	}
	sc->run = complete ? 0 : sc->run + len;
	if (complete)
		sc->prev_eol = eol;
	return r;
}

static int
decide_encoding(struct scan *sc, struct sm_part *p)
{
	int dirty = p->has_8bit || p->has_nul || p->has_long || p->has_bare_cr;

	p->enc = SM_ENC_KEEP;
	if (p->hdr_8bit)
		return fail(sc, SG_ERR_MALFORMED,
		    "8-bit characters in a MIME part header (RFC 2047/2231 encoding needed)");
	if (p->container) {
		if (p->cte == SM_CTE_QP || p->cte == SM_CTE_BASE64 || p->cte == SM_CTE_OTHER)
			return fail(sc, SG_ERR_MALFORMED, "multipart with an encoded body");
		if (p->cte == SM_CTE_8BIT || p->cte == SM_CTE_BINARY)
			p->enc = SM_ENC_7BIT;
		return 0;
	}
	switch (p->cte) {
	case SM_CTE_QP:
	case SM_CTE_BASE64:
	case SM_CTE_OTHER:
		if (dirty)
			return fail(
			    sc, SG_ERR_MALFORMED, "8-bit or over-long data in an encoded part");
		return 0;
	default:
		break;
	}
	if (!dirty) {
		if (p->cte == SM_CTE_8BIT || p->cte == SM_CTE_BINARY)
			p->enc = SM_ENC_7BIT;
		return 0;
	}
	p->enc = strcmp(p->ct.type, "text") == 0 ? SM_ENC_QP : SM_ENC_BASE64;
	return 0;
}

int
sm_tree_scan(const struct sg_spool *body, const char *ctype, const char *cte,
    const struct sm_limits *lim, struct sm_tree *t, char *problem, size_t plen)
{
	struct sg_spool_reader *rd = NULL;
	struct scan sc;
	const unsigned char *l;
	size_t len, i;
	int complete, r, top;

	memset(&sc, 0, sizeof(sc));
	memset(t, 0, sizeof(*t));
	sc.lim = lim;
	sc.t = t;
	sc.problem = problem;
	sc.plen = plen;
	sg_buf_init(&sc.hdr, lim->max_header_size);
	if ((r = add_part(&sc, -1, &top)) != 0)
		goto out;
	if (sm_ctype_parse(ctype, &t->parts[0].ct) != 0) {
		r = fail(&sc, SG_ERR_MALFORMED, "unparsable Content-Type");
		goto out;
	}
	t->parts[0].cte = sm_cte_parse(cte);
	if ((r = begin_body(&sc, 0, 0)) != 0)
		goto out;
	if ((rd = malloc(sizeof(*rd))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	sg_spool_reader_init(rd, body, 0);
	while ((r = sg_spool_getline(rd, &l, &len, &complete)) == 1)
		if ((r = on_line(&sc, l, len, complete, rd->line_off)) != 0)
			goto out;
	if (r < 0)
		goto out;
	if (sc.st == ST_HEADERS) {
		r = fail(&sc, SG_ERR_MALFORMED, "message ends inside MIME part headers");
		goto out;
	}
	if (sc.st == ST_BODY)
		t->parts[sc.cur].body_end = sg_spool_size(body);
	for (i = 0; i < t->nparts; i++) {
		if (t->parts[i].container && t->parts[i].nchildren == 0) {
			r = fail(
			    &sc, SG_ERR_MALFORMED, "multipart whose boundary never appears");
			goto out;
		}
		if ((r = decide_encoding(&sc, &t->parts[i])) != 0)
			goto out;
	}
	r = 0;
out:
	free(rd);
	sg_buf_free(&sc.hdr);
	return r;
}

void
sm_tree_free(struct sm_tree *t)
{
	free(t->parts);
	memset(t, 0, sizeof(*t));
}
