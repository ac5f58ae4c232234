/*
 * buf.c - bounded byte buffers.
 *
 * SECURITY: every growth is checked against the buffer's maximum before
 * any arithmetic that could overflow; freed memory is zeroed.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "secmem.h"

void
sg_buf_init(struct sg_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

static int
reserve(struct sg_buf *b, size_t n)
{
	size_t want, na;
	unsigned char *p;

	if (n > b->max || b->len > b->max - n)
		return SG_ERR_LIMIT;
	want = b->len + n + 1;
	if (want <= b->alloc)
		return 0;
	na = b->alloc ? b->alloc : 256;
	while (na < want)
		na = na > SIZE_MAX / 2 ? want : na * 2;
	if ((p = realloc(b->data, na)) == NULL)
		return SG_ERR_NOMEM;
	b->data = p;
	b->alloc = na;
	return 0;
}

int
sg_buf_put(struct sg_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = reserve(b, n)) != 0)
		return r;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
sg_buf_putc(struct sg_buf *b, int c)
{
	unsigned char ch = (unsigned char)c;

	return sg_buf_put(b, &ch, 1);
}

int
sg_buf_puts(struct sg_buf *b, const char *s)
{
	return sg_buf_put(b, s, strlen(s));
}

int
sg_buf_putf(struct sg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return SG_ERR_INTERNAL;
	if ((r = reserve(b, (size_t)n)) != 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *
sg_buf_str(const struct sg_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

void
sg_buf_reset(struct sg_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
sg_buf_free(struct sg_buf *b)
{
	if (b->data)
		sg_freezero(b->data, b->alloc);
	b->data = NULL;
	b->len = b->alloc = 0;
}

char *
sg_buf_steal(struct sg_buf *b)
{
	char *s;

	if (b->data == NULL)
		return strdup("");
	s = (char *)b->data;
	b->data = NULL;
	b->len = b->alloc = 0;
	return s;
}
