/*
 * spool.c - memory-then-file byte store.
 *
 * SECURITY: spool files are created with O_TMPFILE (or mkstemp and an
 * immediate unlink) and mode 0600, so they are never visible under a name
 * and vanish with the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "spool.h"

struct sg_spool {
	char *dir;
	size_t threshold;
	size_t max;
	size_t size;
	unsigned char *mem; /* first min(size, threshold) bytes */
	size_t memcap; /* grows on demand up to threshold */
	int fd; /* -1 until the threshold is crossed */
	size_t ondisk; /* bytes written to the file */
	unsigned char *wbuf; /* the last bytes, not yet written to the file */
	size_t wlen;
};

#define WBUF_SIZE (64 * 1024)

int
sg_spool_new(const char *dir, size_t mem_threshold, size_t max, struct sg_spool **out)
{
	struct sg_spool *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SG_ERR_NOMEM;
	s->fd = -1;
	s->threshold = mem_threshold;
	s->max = max;
	if ((s->dir = strdup(dir ? dir : "/tmp")) == NULL) {
		free(s);
		return SG_ERR_NOMEM;
	}
	*out = s;
	return 0;
}

void
sg_spool_free(struct sg_spool *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->wbuf);
	free(s->mem);
	free(s->dir);
	free(s);
}

static int
open_file(struct sg_spool *s)
{
	char path[4096];
	int fd, n;

#ifdef O_TMPFILE
	fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		s->fd = fd;
		return 0;
	}
#endif
	n = snprintf(path, sizeof(path), "%s/segel.XXXXXX", s->dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SG_ERR_LIMIT;
	if ((fd = mkstemp(path)) < 0)
		return SG_ERR_SYSTEM;
	(void)unlink(path);
	s->fd = fd;
	return 0;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return SG_ERR_SYSTEM;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sg_spool_write(struct sg_spool *s, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t inmem;
	int r;

	if (n > s->max || s->size > s->max - n)
		return SG_ERR_LIMIT;
	if (n == 0)
		return 0;
	if (s->size < s->threshold) {
		inmem = s->threshold - s->size;
		if (inmem > n)
			inmem = n;
		if (s->size + inmem > s->memcap) {
			/* grow geometrically: a small message never costs the whole
			 * threshold (a large malloc is an mmap/munmap pair) */
			size_t cap = s->memcap ? s->memcap : 16384;
			unsigned char *nm;

			while (cap < s->size + inmem)
				cap *= 2;
			if (cap > s->threshold)
				cap = s->threshold;
			if ((nm = realloc(s->mem, cap)) == NULL)
				return SG_ERR_NOMEM;
			s->mem = nm;
			s->memcap = cap;
		}
		inmem = s->threshold - s->size;
		if (inmem > n)
			inmem = n;
		memcpy(s->mem + s->size, p, inmem);
		s->size += inmem;
		p += inmem;
		n -= inmem;
	}
	if (n == 0)
		return 0;
	if (s->fd < 0 && (r = open_file(s)) != 0)
		return r;
	if (s->wbuf == NULL && (s->wbuf = malloc(WBUF_SIZE)) == NULL)
		return SG_ERR_NOMEM;
	/* small writes are gathered: one write(2) per 64 KiB, not per line */
	if (s->wlen + n > WBUF_SIZE) {
		if ((r = write_all(s->fd, s->wbuf, s->wlen)) != 0)
			return r;
		s->ondisk += s->wlen;
		s->wlen = 0;
	}
	if (n >= WBUF_SIZE) {
		if ((r = write_all(s->fd, p, n)) != 0)
			return r;
		s->ondisk += n;
	} else {
		memcpy(s->wbuf + s->wlen, p, n);
		s->wlen += n;
	}
	s->size += n;
	return 0;
}

size_t
sg_spool_size(const struct sg_spool *s)
{
	return s->size;
}

int
sg_spool_on_disk(const struct sg_spool *s)
{
	return s->fd >= 0;
}

int
sg_spool_read(const struct sg_spool *s, size_t off, void *data, size_t n, size_t *got)
{
	unsigned char *p = data;
	size_t done = 0, k;
	ssize_t rd;

	*got = 0;
	if (off >= s->size)
		return 0;
	if (n > s->size - off)
		n = s->size - off;
	if (off < s->threshold) {
		k = s->threshold - off;
		if (k > n)
			k = n;
		memcpy(p, s->mem + off, k);
		done = k;
	}
	while (done < n) {
		size_t want = n - done, fileoff = off + done - s->threshold;

		if (fileoff >= s->ondisk) { /* the tail, still in the write buffer */
			size_t from = fileoff - s->ondisk;

			k = s->wlen - from < want ? s->wlen - from : want;
			memcpy(p + done, s->wbuf + from, k);
			done += k;
			continue;
		}
		if (want > s->ondisk - fileoff)
			want = s->ondisk - fileoff;
		rd = pread(s->fd, p + done, want, (off_t)fileoff);
		if (rd < 0) {
			if (errno == EINTR)
				continue;
			return SG_ERR_SYSTEM;
		}
		if (rd == 0)
			return SG_ERR_TRUNCATED;
		done += (size_t)rd;
	}
	*got = done;
	return 0;
}

void
sg_spool_reader_init(struct sg_spool_reader *r, const struct sg_spool *s, size_t start)
{
	r->spool = s;
	r->off = start;
	r->pos = 0;
	r->fill = 0;
	r->line_off = start;
}

static int
refill(struct sg_spool_reader *r)
{
	size_t got;
	int ret;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->fill - r->pos);
		r->off += r->pos;
		r->fill -= r->pos;
		r->pos = 0;
	}
	ret = sg_spool_read(
	    r->spool, r->off + r->fill, r->buf + r->fill, sizeof(r->buf) - r->fill, &got);
	if (ret != 0)
		return ret;
	r->fill += got;
	return (int)(got > 0);
}

int
sg_spool_getline(
    struct sg_spool_reader *r, const unsigned char **line, size_t *len, int *complete)
{
	unsigned char *nl;
	size_t avail;
	int ret;

	for (;;) {
		avail = r->fill - r->pos;
		nl = memchr(r->buf + r->pos, '\n', avail);
		if (nl != NULL && (size_t)(nl - (r->buf + r->pos)) + 1 <= SG_SPOOL_LINE_MAX) {
			size_t n = (size_t)(nl - (r->buf + r->pos)) + 1;

			*line = r->buf + r->pos;
			*len = n;
			*complete = 1;
			r->line_off = r->off + r->pos;
			r->pos += n;
			return 1;
		}
		if (avail > SG_SPOOL_LINE_MAX) {
			/* a piece of a long line (more follows); never split CRLF */
			size_t n = SG_SPOOL_LINE_MAX;

			if (r->buf[r->pos + n - 1] == '\r')
				n--;
			*line = r->buf + r->pos;
			*len = n;
			*complete = 0;
			r->line_off = r->off + r->pos;
			r->pos += n;
			return 1;
		}
		if ((ret = refill(r)) < 0)
			return ret;
		if (ret == 0) {
			if (r->fill == r->pos)
				return 0;
			*line = r->buf + r->pos;
			*len = r->fill - r->pos;
			*complete = 1;
			r->line_off = r->off + r->pos;
			r->pos = r->fill;
			return 1;
		}
	}
}
