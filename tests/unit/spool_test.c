/*
 * spool_test.c - util/spool.c: the memory-then-file byte store and its
 * line reader.
 *
 * Every read is compared with a reference copy of what was written, at
 * every offset and length around the memory threshold.  The line reader
 * is checked for LF, CRLF, a missing final line end, lines longer than
 * SG_SPOOL_LINE_MAX (returned in pieces, never splitting CRLF) and an
 * empty spool.
 */
#include <dirent.h>

#include "testutil.h"

#include "util/spool.h"

static char tmpdir[64];

static int
setup(void **state)
{
	tu_mkdtemp(tmpdir, sizeof(tmpdir));
	return 0;
}

static int
teardown(void **state)
{
	tu_rmtree(tmpdir);
	return 0;
}

static size_t
dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 31 + seed) ^ (i >> 3));
}

/* Writes data in chunks of the given sizes (cycled). */
static void
write_chunked(struct sg_spool *s, const unsigned char *data, size_t n, const size_t *chunks,
    size_t nchunks)
{
	size_t off = 0, k = 0;

	while (off < n) {
		size_t c = chunks[k++ % nchunks];

		if (c > n - off)
			c = n - off;
		assert_int_equal(sg_spool_write(s, data + off, c), 0);
		off += c;
	}
	assert_int_equal(sg_spool_size(s), n);
}

/* Every (offset, length) read gives the reference bytes. */
static void
check_all_reads(const struct sg_spool *s, const unsigned char *want, size_t n)
{
	unsigned char buf[512];
	size_t off, len, got;

	assert_true(n + 8 <= sizeof(buf));
	for (off = 0; off <= n + 2; off++) {
		for (len = 0; len <= n + 2 - (off > n ? n : off); len++) {
			size_t want_got = off >= n ? 0 : (len < n - off ? len : n - off);

			got = 12345;
			assert_int_equal(sg_spool_read(s, off, buf, len, &got), 0);
			if (got != want_got)
				fail_msg("read(off=%zu, len=%zu): got %zu bytes want %zu", off,
				    len, got, want_got);
			if (got > 0)
				assert_memory_equal(buf, want + off, got);
		}
	}
}

static void
test_memory_only(void **state)
{
	static const size_t chunks[] = {1, 3, 17};
	unsigned char data[100];
	struct sg_spool *s;

	fill_pattern(data, sizeof(data), 1);
	assert_int_equal(sg_spool_new(tmpdir, 1024, 4096, &s), 0);
	assert_int_equal(sg_spool_size(s), 0);
	assert_int_equal(sg_spool_on_disk(s), 0);
	write_chunked(s, data, sizeof(data), chunks, TU_ARRAY_LEN(chunks));
	assert_int_equal(sg_spool_on_disk(s), 0);
	assert_int_equal(dir_entries(tmpdir), 0);
	check_all_reads(s, data, sizeof(data));
	sg_spool_free(s);
	sg_spool_free(NULL);
}

/* File-backed with several thresholds; chunk sizes that land on, before and
 * after the threshold boundary. */
static void
test_file_backed(void **state)
{
	static const size_t thresholds[] = {0, 1, 16, 63, 64, 99, 100};
	static const size_t chunk_sets[][3] = {
	    {1, 1, 1}, {7, 9, 13}, {16, 16, 16}, {200, 1, 1}};
	unsigned char data[100];
	size_t t, c;

	fill_pattern(data, sizeof(data), 7);
	for (t = 0; t < TU_ARRAY_LEN(thresholds); t++) {
		for (c = 0; c < TU_ARRAY_LEN(chunk_sets); c++) {
			struct sg_spool *s;

			assert_int_equal(sg_spool_new(tmpdir, thresholds[t], 4096, &s), 0);
			write_chunked(s, data, sizeof(data), chunk_sets[c], 3);
			assert_int_equal(sg_spool_on_disk(s), thresholds[t] < sizeof(data));
			/* the spool file is never visible under a name */
			assert_int_equal(dir_entries(tmpdir), 0);
			check_all_reads(s, data, sizeof(data));
			sg_spool_free(s);
		}
	}
}

static void
test_large_file_backed(void **state)
{
	size_t n = 300000, off, got;
	unsigned char *data = malloc(n), *buf = malloc(n);
	struct sg_spool *s;

	assert_non_null(data);
	assert_non_null(buf);
	fill_pattern(data, n, 3);
	assert_int_equal(sg_spool_new(tmpdir, 4096, n, &s), 0);
	for (off = 0; off < n; off += 10007)
		assert_int_equal(
		    sg_spool_write(s, data + off, n - off < 10007 ? n - off : 10007), 0);
	assert_int_equal(sg_spool_on_disk(s), 1);
	assert_int_equal(sg_spool_read(s, 0, buf, n, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(buf, data, n);
	/* reads straddling the threshold */
	for (off = 4000; off < 4200; off += 13) {
		assert_int_equal(sg_spool_read(s, off, buf, 300, &got), 0);
		assert_int_equal(got, 300);
		assert_memory_equal(buf, data + off, 300);
	}
	/* exactly full: one more byte is over the limit */
	assert_int_equal(sg_spool_write(s, "x", 1), SG_ERR_LIMIT);
	assert_int_equal(sg_spool_size(s), n);
	sg_spool_free(s);
	free(data);
	free(buf);
}

static void
test_limit(void **state)
{
	static const struct {
		size_t threshold, max;
	} cases[] = {{1024, 10}, {4, 10}, {0, 10}, {10, 10}};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		unsigned char buf[16];
		struct sg_spool *s;
		size_t got;

		assert_int_equal(sg_spool_new(tmpdir, cases[i].threshold, cases[i].max, &s), 0);
		/* max+1 at once: refused, nothing stored */
		assert_int_equal(sg_spool_write(s, "0123456789A", 11), SG_ERR_LIMIT);
		assert_int_equal(sg_spool_size(s), 0);
		/* exactly max is fine */
		assert_int_equal(sg_spool_write(s, "01234", 5), 0);
		assert_int_equal(sg_spool_write(s, "56789", 5), 0);
		assert_int_equal(sg_spool_size(s), 10);
		/* one past the max is refused and changes nothing */
		assert_int_equal(sg_spool_write(s, "A", 1), SG_ERR_LIMIT);
		assert_int_equal(sg_spool_write(s, "A", SIZE_MAX), SG_ERR_LIMIT);
		assert_int_equal(sg_spool_size(s), 10);
		assert_int_equal(sg_spool_read(s, 0, buf, sizeof(buf), &got), 0);
		assert_int_equal(got, 10);
		assert_memory_equal(buf, "0123456789", 10);
		/* an empty write at the limit is fine */
		assert_int_equal(sg_spool_write(s, "", 0), 0);
		sg_spool_free(s);
	}
}

static void
test_missing_dir(void **state)
{
	char dir[128];
	struct sg_spool *s;

	snprintf(dir, sizeof(dir), "%s/does-not-exist", tmpdir);
	assert_int_equal(sg_spool_new(dir, 4, 100, &s), 0);
	assert_int_equal(sg_spool_write(s, "abc", 3), 0); /* still in memory */
	assert_int_equal(sg_spool_write(s, "defg", 4), SG_ERR_SYSTEM);
	sg_spool_free(s);
}

/* --- line reader -------------------------------------------------------- */

struct want_line {
	const char *text;
	int complete;
};

/* Reads every line of a spool filled with input and compares. */
static void
check_lines(const char *input, size_t threshold, size_t start, const struct want_line *want,
    size_t nwant)
{
	struct sg_spool_reader *rd = malloc(sizeof(*rd));
	struct sg_spool *s;
	const unsigned char *line;
	size_t len, i = 0, off = start;
	int complete, r;

	assert_non_null(rd);
	assert_int_equal(sg_spool_new(tmpdir, threshold, 1 << 20, &s), 0);
	assert_int_equal(sg_spool_write(s, input, strlen(input)), 0);
	sg_spool_reader_init(rd, s, start);
	while ((r = sg_spool_getline(rd, &line, &len, &complete)) == 1) {
		if (i >= nwant)
			fail_msg("extra line \"%.*s\"", (int)len, line);
		if (len != strlen(want[i].text) || memcmp(line, want[i].text, len) != 0)
			fail_msg("line %zu: got \"%.*s\" want \"%s\"", i, (int)len, line,
			    want[i].text);
		assert_int_equal(complete, want[i].complete);
		assert_int_equal(rd->line_off, off);
		off += len;
		i++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(i, nwant);
	/* at the end it stays at the end */
	assert_int_equal(sg_spool_getline(rd, &line, &len, &complete), 0);
	sg_spool_free(s);
	free(rd);
}

static void
test_getline_table(void **state)
{
	static const struct want_line lf[] = {
	    {"one\n", 1}, {"two\n", 1}, {"\n", 1}, {"x\n", 1}};
	static const struct want_line crlf[] = {{"one\r\n", 1}, {"\r\n", 1}, {"two\r\n", 1}};
	static const struct want_line nofinal[] = {{"one\r\n", 1}, {"last", 1}};
	static const struct want_line mixed[] = {
	    {"a\n", 1}, {"b\r\n", 1}, {"c\rd\n", 1}, {"\r", 1}};
	static const struct want_line single[] = {{"x", 1}};
	static const struct want_line from_off[] = {{"wo\n", 1}, {"three", 1}};
	static const size_t thresholds[] = {0, 3, 4096};
	size_t t;

	for (t = 0; t < TU_ARRAY_LEN(thresholds); t++) {
		size_t th = thresholds[t];

		check_lines("one\ntwo\n\nx\n", th, 0, lf, TU_ARRAY_LEN(lf));
		check_lines("one\r\n\r\ntwo\r\n", th, 0, crlf, TU_ARRAY_LEN(crlf));
		check_lines("one\r\nlast", th, 0, nofinal, TU_ARRAY_LEN(nofinal));
		check_lines("a\nb\r\nc\rd\n\r", th, 0, mixed, TU_ARRAY_LEN(mixed));
		check_lines("x", th, 0, single, TU_ARRAY_LEN(single));
		check_lines("", th, 0, NULL, 0);
		check_lines("one\ntwo\nthree", th, 5, from_off, TU_ARRAY_LEN(from_off));
		check_lines("abc", th, 3, NULL, 0); /* start at the end */
		check_lines("abc", th, 10, NULL, 0); /* start past the end */
	}
}

/*
 * Reads all pieces of a spool holding data; reports the longest piece
 * (the caller checks it against SG_SPOOL_LINE_MAX); checks that the pieces
 * put together give the data back, that no piece ends in CR when the next starts with LF, and that
 * complete is 1 exactly for the pieces that end a line.
 */
static void
check_pieces(
    const unsigned char *data, size_t n, size_t threshold, size_t *npieces, size_t *maxlen)
{
	struct sg_spool_reader *rd = malloc(sizeof(*rd));
	struct sg_spool *s;
	const unsigned char *line;
	size_t len, off = 0, count = 0;
	int complete, r, prev_cr = 0;

	*maxlen = 0;
	assert_non_null(rd);
	assert_int_equal(sg_spool_new(tmpdir, threshold, n + 1, &s), 0);
	assert_int_equal(sg_spool_write(s, data, n), 0);
	sg_spool_reader_init(rd, s, 0);
	while ((r = sg_spool_getline(rd, &line, &len, &complete)) == 1) {
		int ends_line = line[len - 1] == '\n' || off + len == n;

		if (len > *maxlen)
			*maxlen = len;
		assert_true(len > 0);
		assert_memory_equal(line, data + off, len);
		assert_int_equal(rd->line_off, off);
		if (prev_cr && line[0] == '\n')
			fail_msg("a CRLF pair was split at offset %zu", off);
		/* only the end of a line is complete; a piece may not hold a line end
		 * except as its last byte */
		assert_null(memchr(line, '\n', len - 1));
		assert_int_equal(complete, ends_line);
		prev_cr = line[len - 1] == '\r';
		off += len;
		count++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(off, n);
	sg_spool_free(s);
	free(rd);
	*npieces = count;
}

static unsigned char *
make_line(size_t body, const char *end, size_t *n)
{
	size_t el = strlen(end);
	unsigned char *p = malloc(body + el + 1);

	assert_non_null(p);
	memset(p, 'x', body);
	memcpy(p + body, end, el + 1);
	*n = body + el;
	return p;
}

/* Lines around and far above SG_SPOOL_LINE_MAX, with LF, CRLF or no end. */
static void
test_getline_long_lines(void **state)
{
	static const size_t bodies[] = {SG_SPOOL_LINE_MAX - 2, SG_SPOOL_LINE_MAX - 1,
	    SG_SPOOL_LINE_MAX, SG_SPOOL_LINE_MAX + 1, SG_SPOOL_LINE_MAX + 100,
	    2 * SG_SPOOL_LINE_MAX - 1, 2 * SG_SPOOL_LINE_MAX, 3 * SG_SPOOL_LINE_MAX + 5,
	    10 * SG_SPOOL_LINE_MAX + 3};
	static const char *const ends[] = {"\n", "\r\n", ""};
	size_t b, e;

	for (b = 0; b < TU_ARRAY_LEN(bodies); b++) {
		for (e = 0; e < TU_ARRAY_LEN(ends); e++) {
			size_t n, pieces, maxlen;
			unsigned char *p = make_line(bodies[b], ends[e], &n);

			check_pieces(p, n, 100, &pieces, &maxlen);
			free(p);
			if (maxlen > SG_SPOOL_LINE_MAX)
				fail_msg("line of %zu bytes + \"%s\": a piece of %zu bytes, "
				         "more than "
				         "SG_SPOOL_LINE_MAX",
				    bodies[b],
				    e == 0       ? "LF"
				        : e == 1 ? "CRLF"
				                 : "",
				    maxlen);
			if (n > SG_SPOOL_LINE_MAX)
				assert_true(pieces >= 2);
		}
	}
}

/*
 * A CR that falls on the last byte of a piece while its LF is the next
 * byte: the piece must stop before the CR.  The CR is placed at every
 * offset near the piece boundaries.  (Only the CRLF rule is checked here;
 * the length of the pieces is test_getline_long_lines' business.)
 */
static void
test_getline_never_splits_crlf(void **state)
{
	static const size_t positions[] = {SG_SPOOL_LINE_MAX - 1, SG_SPOOL_LINE_MAX,
	    2 * SG_SPOOL_LINE_MAX - 1, 2 * SG_SPOOL_LINE_MAX, 3 * SG_SPOOL_LINE_MAX - 1,
	    3 * SG_SPOOL_LINE_MAX - 2};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(positions); i++) {
		size_t n, pieces, maxlen;
		unsigned char *p = make_line(positions[i], "\r\nnext line\r\n", &n);

		check_pieces(p, n, 0, &pieces, &maxlen);
		free(p);
	}
}

/* Long lines followed by short ones: the reader resynchronises. */
static void
test_getline_long_then_short(void **state)
{
	static const char tail[] = "\r\nab\ncd\r\n\r\nlast!!";
	size_t body = 3 * SG_SPOOL_LINE_MAX + 17, n = body + strlen(tail), pieces, maxlen;
	unsigned char *p = malloc(n);

	assert_non_null(p);
	memset(p, 'y', body);
	memcpy(p + body, tail, strlen(tail));
	check_pieces(p, n, 4096, &pieces, &maxlen);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_memory_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_backed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_file_backed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_getline_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_getline_long_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_getline_never_splits_crlf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_getline_long_then_short, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
