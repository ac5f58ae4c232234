/*
 * mimeint.h - internal interfaces of the smime/ core (not for callers).
 */
#ifndef SM_MIMEINT_H
#define SM_MIMEINT_H

#include <stddef.h>

#include "smime.h"
#include "util/buf.h"

/* A parsed Content-Type; absent fields are "". */
struct sm_ctype {
	char type[32];
	char subtype[96];
	char boundary[80];
	char smime_type[32];
	char protocol[96];
	char name[8]; /* unused, keeps the struct simple to extend */
};

enum sm_cte {
	SM_CTE_NONE,
	SM_CTE_7BIT,
	SM_CTE_8BIT,
	SM_CTE_BINARY,
	SM_CTE_QP,
	SM_CTE_BASE64,
	SM_CTE_OTHER,
};

/* Parses a Content-Type value; SG_ERR_MALFORMED when unparsable. A value
 * of NULL gives the RFC 2045 default text/plain. */
int sm_ctype_parse(const char *value, struct sm_ctype *ct) SG_WUR;
enum sm_cte sm_cte_parse(const char *value);
/* Whether a header field name starts with "Content-". */
int sm_is_content_field(const char *name);

/* Where encoded output goes: a spool, optionally teed into a BIO. */
struct sm_sink {
	struct sg_spool *spool;
	void *bio; /* BIO * or NULL */
};

int sm_sink_put(struct sm_sink *s, const void *p, size_t n) SG_WUR;
int sm_sink_puts(struct sm_sink *s, const char *str) SG_WUR;
/* Writes "name: value" CRLF, with any LF or CRLF in value made CRLF. */
int sm_put_field(struct sm_sink *out, const char *name, const char *value) SG_WUR;

/* One MIME entity found by the scan, in document order. */
struct sm_part {
	int parent; /* index, -1 for the top */
	int depth;
	struct sm_ctype ct;
	enum sm_cte cte;
	size_t hdr_start, hdr_end; /* header block in the spool (not top) */
	size_t body_start, body_end; /* body without the CRLF before a boundary */
	unsigned has_8bit : 1, has_nul : 1, has_long : 1, has_bare_cr : 1, hdr_8bit : 1;
	unsigned container : 1; /* multipart: children follow */
	enum { SM_ENC_KEEP, SM_ENC_7BIT, SM_ENC_QP, SM_ENC_BASE64 } enc;
	int nchildren;
};

struct sm_tree {
	struct sm_part *parts;
	size_t nparts;
	size_t cap;
};

/*
 * Scans the body spool given the top-level Content-Type/CTE values
 * (may be NULL).  Decides each leaf's output encoding.  On error the
 * reason is written to problem (size plen).
 */
int sm_tree_scan(const struct sg_spool *body, const char *ctype, const char *cte,
    const struct sm_limits *lim, struct sm_tree *t, char *problem, size_t plen) SG_WUR;
void sm_tree_free(struct sm_tree *t);

/*
 * Writes the canonical signed entity: the top-level Content-* fields of m
 * (with the CTE fixed), a blank line, and the body with every part
 * re-encoded as the scan decided, all with CRLF line ends.
 */
int sm_entity_write(
    const struct sm_msg *m, const struct sm_tree *t, struct sm_sink *out) SG_WUR;

/* base64 of n bytes with CRLF every 76 columns, into out. */
int sm_base64_write(struct sm_sink *out, const unsigned char *p, size_t n) SG_WUR;

/* The limits the message was created with. */
const struct sm_limits *sm_msg_limits(const struct sm_msg *m);
/* 1-based occurrence of header i among the fields with its name, as
 * smfi_chgheader() counts them. */
size_t sm_msg_occurrence(const struct sm_msg *m, size_t i);
/* Records why an operation on m failed (copied, cut to fit). */
void sm_msg_set_problem(struct sm_msg *m, const char *why);

#endif
