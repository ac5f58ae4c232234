/*
 * buf.h - bounded byte buffers for untrusted data.
 *
 * A struct sg_buf grows on demand up to a hard maximum set at init time;
 * a put beyond it fails with SG_ERR_LIMIT and leaves the buffer unchanged.
 * The contents are always followed by a NUL byte (not counted in len) so
 * text can be handed to C APIs, but callers must use len, because the data
 * itself may contain NULs.  sg_buf_free() zeroes the memory.
 */
#ifndef SG_BUF_H
#define SG_BUF_H

#include <stddef.h>

#include "sg_err.h"

struct sg_buf {
	unsigned char *data;
	size_t len;
	size_t alloc;
	size_t max;
};

/* Initialises an empty buffer that may hold at most max bytes. */
void sg_buf_init(struct sg_buf *b, size_t max);
/* Appends n bytes; 0, SG_ERR_LIMIT or SG_ERR_NOMEM. */
int sg_buf_put(struct sg_buf *b, const void *p, size_t n) SG_WUR;
int sg_buf_putc(struct sg_buf *b, int c) SG_WUR;
int sg_buf_puts(struct sg_buf *b, const char *s) SG_WUR;
int sg_buf_putf(struct sg_buf *b, const char *fmt, ...) SG_PRINTF(2, 3) SG_WUR;
/* NUL-terminated view of the contents; never NULL. Valid until next put. */
const char *sg_buf_str(const struct sg_buf *b);
/* Drops the contents, keeps the allocation. */
void sg_buf_reset(struct sg_buf *b);
/* Zeroes and releases the memory; the buffer may be reused after init. */
void sg_buf_free(struct sg_buf *b);
/* Returns the contents as a malloc'd NUL-terminated string owned by the
 * caller and leaves the buffer empty; NULL when out of memory. */
char *sg_buf_steal(struct sg_buf *b);

#endif
