/*
 * spool.h - append-only byte store that moves from memory to a file.
 *
 * A message body is appended in chunks.  The first mem_threshold bytes
 * stay in memory; beyond that everything goes to an anonymous, already
 * unlinked file in the spool directory, so memory stays flat whatever the
 * message size and nothing is left behind if the process dies.  Appends
 * past max fail with SG_ERR_LIMIT.  Reading is random access (pread), and
 * struct sg_spool_reader walks the contents line by line.
 */
#ifndef SG_SPOOL_H
#define SG_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "sg_err.h"

struct sg_spool;

/* Creates a spool; dir is used only once the threshold is crossed.
 * The caller owns *out and frees it with sg_spool_free(). */
int sg_spool_new(
    const char *dir, size_t mem_threshold, size_t max, struct sg_spool **out) SG_WUR;
void sg_spool_free(struct sg_spool *s);
/* Appends n bytes: 0, SG_ERR_LIMIT, SG_ERR_NOMEM or SG_ERR_SYSTEM. */
int sg_spool_write(struct sg_spool *s, const void *p, size_t n) SG_WUR;
size_t sg_spool_size(const struct sg_spool *s);
/* Whether the contents went to a file. */
int sg_spool_on_disk(const struct sg_spool *s);
/* Reads up to n bytes at off into p; *got is 0 at the end. */
int sg_spool_read(const struct sg_spool *s, size_t off, void *p, size_t n, size_t *got) SG_WUR;

#define SG_SPOOL_LINE_MAX 8192

/*
 * Line reader.  sg_spool_getline() returns each line including its
 * terminator (LF, CRLF, or none at the very end).  A line longer than
 * SG_SPOOL_LINE_MAX is returned in pieces; *complete is 0 for every piece
 * but the last.  Returns 1 with a line, 0 at the end, or a negative code.
 */
struct sg_spool_reader {
	const struct sg_spool *spool;
	size_t off; /* spool offset of buf[0] */
	size_t pos; /* next unread byte in buf */
	size_t fill; /* valid bytes in buf */
	size_t line_off; /* spool offset of the last returned line */
	unsigned char buf[2 * SG_SPOOL_LINE_MAX];
};

void sg_spool_reader_init(struct sg_spool_reader *r, const struct sg_spool *s, size_t start);
int sg_spool_getline(
    struct sg_spool_reader *r, const unsigned char **line, size_t *len, int *complete) SG_WUR;

#endif
