/*
 * msg.c - one message, fed by milter-shaped events.
 *
 * Headers are kept as name/value pairs in arrival order; the body goes to
 * a spool.  sm_msg_eom() records what the top-level Content-Type says the
 * message is.  Every size is checked against struct sm_limits before it
 * is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mimeint.h"
#include "smime.h"
#include "util/buf.h"

struct sm_header {
	char *name;
	char *value;
};

struct sm_msg {
	struct sm_limits lim;
	struct sm_header *hdrs;
	size_t nhdrs, hcap;
	size_t total;
	struct sg_spool *body;
	enum sm_kind kind;
	int eoh;
	char problem[256];
};

void
sm_limits_default(struct sm_limits *l)
{
	l->max_message_size = 50UL * 1024 * 1024;
	l->max_header_size = 64 * 1024;
	l->max_headers = 1000;
	l->max_mime_depth = 16;
	l->max_mime_parts = 500;
}

int
sm_msg_new(const struct sm_limits *lim, const char *spool_dir, size_t mem_threshold,
    struct sm_msg **out)
{
	struct sm_msg *m;
	int r;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return SG_ERR_NOMEM;
	m->lim = *lim;
	if ((r = sg_spool_new(spool_dir, mem_threshold, lim->max_message_size, &m->body)) !=
	    0) {
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

void
sm_msg_free(struct sm_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	sg_spool_free(m->body);
	free(m);
}

static int
set_problem(struct sm_msg *m, int code, const char *why)
{
	snprintf(m->problem, sizeof(m->problem), "%s", why);
	return code;
}

int
sm_msg_header(struct sm_msg *m, const char *name, const char *value)
{
	size_t nl = strlen(name), vl;
	struct sm_header *h;

	while (*value == ' ' || *value == '\t')
		value++;
	vl = strlen(value);
	if (nl == 0 || strpbrk(name, ": \t\r\n") != NULL)
		return set_problem(m, SG_ERR_MALFORMED, "header field with an invalid name");
	if (m->nhdrs >= m->lim.max_headers)
		return set_problem(m, SG_ERR_LIMIT, "too many header fields");
	if (nl + vl + 2 > m->lim.max_header_size)
		return set_problem(m, SG_ERR_LIMIT, "header field too long");
	if (m->total + nl + vl + 4 > m->lim.max_message_size)
		return set_problem(m, SG_ERR_LIMIT, "message too large");
	if (m->nhdrs == m->hcap) {
		size_t nc = m->hcap ? m->hcap * 2 : 32;

		if ((h = realloc(m->hdrs, nc * sizeof(*h))) == NULL)
			return SG_ERR_NOMEM;
		m->hdrs = h;
		m->hcap = nc;
	}
	h = &m->hdrs[m->nhdrs];
	if ((h->name = strdup(name)) == NULL)
		return SG_ERR_NOMEM;
	if ((h->value = strdup(value)) == NULL) {
		free(h->name);
		return SG_ERR_NOMEM;
	}
	m->nhdrs++;
	m->total += nl + vl + 4;
	return 0;
}

int
sm_msg_eoh(struct sm_msg *m)
{
	m->eoh = 1;
	return 0;
}

int
sm_msg_body(struct sm_msg *m, const void *p, size_t n)
{
	int r;

	if (n > m->lim.max_message_size || m->total > m->lim.max_message_size - n)
		return set_problem(m, SG_ERR_LIMIT, "message too large");
	if ((r = sg_spool_write(m->body, p, n)) != 0)
		return r == SG_ERR_LIMIT ? set_problem(m, r, "message too large") : r;
	m->total += n;
	return 0;
}

static enum sm_kind
classify(const struct sm_ctype *ct)
{
	if (strcmp(ct->type, "multipart") == 0 && strcmp(ct->subtype, "signed") == 0)
		return SM_KIND_SIGNED;
	if (strcmp(ct->type, "application") == 0 &&
	    (strcmp(ct->subtype, "pkcs7-mime") == 0 ||
	        strcmp(ct->subtype, "x-pkcs7-mime") == 0)) {
		if (strcasecmp(ct->smime_type, "signed-data") == 0 ||
		    strcasecmp(ct->smime_type, "certs-only") == 0)
			return SM_KIND_SIGNED;
		return SM_KIND_ENCRYPTED;
	}
	return SM_KIND_PLAIN;
}

int
sm_msg_eom(struct sm_msg *m)
{
	struct sm_ctype ct;
	const char *v = sm_msg_get(m, "Content-Type", 0);

	m->eoh = 1;
	if (sm_msg_count(m, "Content-Type") > 1)
		return set_problem(m, SG_ERR_MALFORMED, "more than one Content-Type field");
	if (sm_msg_count(m, "Content-Transfer-Encoding") > 1)
		return set_problem(
		    m, SG_ERR_MALFORMED, "more than one Content-Transfer-Encoding field");
	if (sm_ctype_parse(v, &ct) != 0)
		return set_problem(m, SG_ERR_MALFORMED, "unparsable Content-Type field");
	m->kind = classify(&ct);
	return 0;
}

int
sm_msg_parse_spool(struct sm_msg *m, const struct sg_spool *in)
{
	struct sg_spool_reader *rd;
	struct sg_buf field;
	const unsigned char *line;
	size_t len, body_off = 0;
	int complete, r, in_body = 0;

	if ((rd = malloc(sizeof(*rd))) == NULL)
		return SG_ERR_NOMEM;
	sg_spool_reader_init(rd, in, 0);
	sg_buf_init(&field, m->lim.max_header_size);
	while (!in_body && (r = sg_spool_getline(rd, &line, &len, &complete)) == 1) {
		size_t n = len;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (!complete) {
			r = set_problem(m, SG_ERR_LIMIT, "header line too long");
			goto out;
		}
		if (field.len > 0 && (n == 0 || (line[0] != ' ' && line[0] != '\t'))) {
			char *colon = memchr(field.data, ':', field.len);

			if (colon == NULL) {
				r = set_problem(
				    m, SG_ERR_MALFORMED, "header line without a colon");
				goto out;
			}
			*colon = '\0';
			if ((r = sm_msg_header(m, (char *)field.data, colon + 1)) != 0)
				goto out;
			sg_buf_reset(&field);
		}
		if (n == 0) {
			in_body = 1;
			body_off = rd->line_off + len;
			break;
		}
		if (field.len > 0 && (r = sg_buf_put(&field, "\n", 1)) != 0)
			goto out;
		if ((r = sg_buf_put(&field, line, n)) != 0) {
			r = set_problem(m, r, "header field too long");
			goto out;
		}
	}
	if (r < 0)
		goto out;
	if (!in_body) {
		r = set_problem(m, SG_ERR_MALFORMED, "message has no body separator");
		goto out;
	}
	if ((r = sm_msg_eoh(m)) != 0)
		goto out;
	for (;;) {
		unsigned char chunk[65536];
		size_t got;

		if ((r = sg_spool_read(in, body_off, chunk, sizeof(chunk), &got)) != 0)
			goto out;
		if (got == 0)
			break;
		if ((r = sm_msg_body(m, chunk, got)) != 0)
			goto out;
		body_off += got;
	}
	r = 0;
out:
	sg_buf_free(&field);
	free(rd);
	return r;
}

const struct sm_limits *
sm_msg_limits(const struct sm_msg *m)
{
	return &m->lim;
}

void
sm_msg_set_problem(struct sm_msg *m, const char *why)
{
	(void)set_problem(m, 0, why);
}

const char *
sm_msg_problem(const struct sm_msg *m)
{
	return m->problem;
}

enum sm_kind
sm_msg_kind(const struct sm_msg *m)
{
	return m->kind;
}

size_t
sm_msg_header_count(const struct sm_msg *m)
{
	return m->nhdrs;
}

const char *
sm_msg_header_name(const struct sm_msg *m, size_t i)
{
	return i < m->nhdrs ? m->hdrs[i].name : NULL;
}

const char *
sm_msg_header_value(const struct sm_msg *m, size_t i)
{
	return i < m->nhdrs ? m->hdrs[i].value : NULL;
}

const char *
sm_msg_get(const struct sm_msg *m, const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->hdrs[i].name, name) == 0 && nth-- == 0)
			return m->hdrs[i].value;
	return NULL;
}

size_t
sm_msg_occurrence(const struct sm_msg *m, size_t i)
{
	size_t j, n = 0;

	for (j = 0; j <= i && j < m->nhdrs; j++)
		n += strcasecmp(m->hdrs[j].name, m->hdrs[i].name) == 0;
	return n;
}

size_t
sm_msg_count(const struct sm_msg *m, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < m->nhdrs; i++)
		n += strcasecmp(m->hdrs[i].name, name) == 0;
	return n;
}

const struct sg_spool *
sm_msg_body_spool(const struct sm_msg *m)
{
	return m->body;
}
