/*
 * buf_test.c - util/buf.c (bounded buffers) and sg_log_escape() of
 * util/log.c, the two places untrusted bytes first land.
 *
 * Limits are tested exactly at the maximum and one byte past it; a failed
 * put must leave the buffer as it was.
 */
#include "testutil.h"

#include "util/buf.h"
#include "util/log.h"

/* --- sg_buf ------------------------------------------------------------ */

static void
test_buf_empty(void **state)
{
	struct sg_buf b;

	sg_buf_init(&b, 16);
	assert_int_equal(b.len, 0);
	assert_string_equal(sg_buf_str(&b), "");
	sg_buf_reset(&b); /* on a never-used buffer */
	assert_string_equal(sg_buf_str(&b), "");
	sg_buf_free(&b);
	sg_buf_free(&b); /* twice is harmless */
}

/* A sequence of puts against one maximum: each step's result and contents. */
struct put_step {
	const char *data;
	size_t n;
	int want_r;
	const char *want_contents;
};

static const struct {
	const char *name;
	size_t max;
	struct put_step steps[4];
	size_t nsteps;
} put_cases[] = {
    {"fill to exactly max", 8, {{"abcd", 4, 0, "abcd"}, {"efgh", 4, 0, "abcdefgh"}}, 2},
    {"max+1 in one put", 8, {{"abcdefghi", 9, SG_ERR_LIMIT, ""}}, 1},
    {"max+1 after fill", 8,
        {{"abcdefgh", 8, 0, "abcdefgh"}, {"i", 1, SG_ERR_LIMIT, "abcdefgh"}}, 2},
    {"overshoot leaves prefix", 8,
        {{"abcde", 5, 0, "abcde"}, {"fghi", 4, SG_ERR_LIMIT, "abcde"},
            {"fgh", 3, 0, "abcdefgh"}},
        3},
    {"zero max", 0, {{"", 0, 0, ""}, {"a", 1, SG_ERR_LIMIT, ""}}, 2},
    {"empty put", 4, {{"", 0, 0, ""}, {"abcd", 4, 0, "abcd"}, {"", 0, 0, "abcd"}}, 3},
};

static void
test_buf_put_limits(void **state)
{
	size_t i, j;

	for (i = 0; i < TU_ARRAY_LEN(put_cases); i++) {
		struct sg_buf b;

		sg_buf_init(&b, put_cases[i].max);
		for (j = 0; j < put_cases[i].nsteps; j++) {
			const struct put_step *s = &put_cases[i].steps[j];
			int got_r = sg_buf_put(&b, s->data, s->n);

			if (got_r != s->want_r)
				fail_msg("%s, step %zu: got %d want %d", put_cases[i].name, j,
				    got_r, s->want_r);
			assert_int_equal(b.len, strlen(s->want_contents));
			assert_string_equal(sg_buf_str(&b), s->want_contents);
			assert_true(b.len <= b.max);
		}
		sg_buf_free(&b);
	}
}

static void
test_buf_put_huge_n(void **state)
{
	struct sg_buf b;

	sg_buf_init(&b, 64);
	assert_int_equal(sg_buf_put(&b, "abc", 3), 0);
	/* n near SIZE_MAX must fail on the limit, never overflow */
	assert_int_equal(sg_buf_put(&b, "x", SIZE_MAX), SG_ERR_LIMIT);
	assert_int_equal(sg_buf_put(&b, "x", SIZE_MAX - 2), SG_ERR_LIMIT);
	assert_int_equal(b.len, 3);
	assert_string_equal(sg_buf_str(&b), "abc");
	sg_buf_free(&b);

	sg_buf_init(&b, SIZE_MAX);
	assert_int_equal(sg_buf_put(&b, "abc", 3), 0);
	assert_int_equal(sg_buf_put(&b, "x", SIZE_MAX - 1), SG_ERR_LIMIT);
	assert_int_equal(b.len, 3);
	sg_buf_free(&b);
}

static void
test_buf_binary_and_growth(void **state)
{
	static const unsigned char bin[] = {'a', 0, 'b', 0xff, 0};
	unsigned char big[5000];
	struct sg_buf b;
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	sg_buf_init(&b, sizeof(bin) + sizeof(big));
	assert_int_equal(sg_buf_put(&b, bin, sizeof(bin)), 0);
	assert_int_equal(b.len, sizeof(bin));
	assert_memory_equal(b.data, bin, sizeof(bin));
	assert_int_equal(b.data[b.len], 0); /* always terminated after len */
	/* byte by byte, across several reallocations */
	for (i = 0; i < sizeof(big); i++)
		assert_int_equal(sg_buf_putc(&b, big[i]), 0);
	assert_int_equal(b.len, sizeof(bin) + sizeof(big));
	assert_memory_equal(b.data + sizeof(bin), big, sizeof(big));
	assert_int_equal(b.data[b.len], 0);
	assert_int_equal(sg_buf_putc(&b, 'x'), SG_ERR_LIMIT);
	sg_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_buf_puts_putc(void **state)
{
	struct sg_buf b;

	sg_buf_init(&b, 6);
	assert_int_equal(sg_buf_puts(&b, "abc"), 0);
	assert_int_equal(sg_buf_putc(&b, 'd'), 0);
	assert_int_equal(sg_buf_putc(&b, 0x100 + 'e'), 0); /* converted to unsigned char */
	assert_int_equal(sg_buf_puts(&b, "fg"), SG_ERR_LIMIT);
	assert_string_equal(sg_buf_str(&b), "abcde");
	assert_int_equal(sg_buf_puts(&b, "f"), 0);
	assert_int_equal(sg_buf_putc(&b, 'g'), SG_ERR_LIMIT);
	assert_string_equal(sg_buf_str(&b), "abcdef");
	sg_buf_free(&b);
}

static void
test_buf_putf(void **state)
{
	static const struct {
		size_t max;
		const char *prefix;
		int value;
		int want_r;
		const char *want;
	} cases[] = {
	    {32, "", 42, 0, "n=42;"},
	    {5, "", 42, 0, "n=42;"}, /* exactly max */
	    {4, "", 42, SG_ERR_LIMIT, ""}, /* max+1 */
	    {8, "abc", 42, 0, "abcn=42;"}, /* exactly max after a prefix */
	    {8, "abcd", 42, SG_ERR_LIMIT, "abcd"}, /* max+1 after a prefix */
	    {16, "x", -12345, 0, "xn=-12345;"},
	};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct sg_buf b;
		int got_r;

		sg_buf_init(&b, cases[i].max);
		assert_int_equal(sg_buf_puts(&b, cases[i].prefix), 0);
		got_r = sg_buf_putf(&b, "n=%d;", cases[i].value);
		if (got_r != cases[i].want_r)
			fail_msg("case %zu: got %d want %d", i, got_r, cases[i].want_r);
		assert_string_equal(sg_buf_str(&b), cases[i].want);
		assert_int_equal(b.len, strlen(cases[i].want));
		sg_buf_free(&b);
	}
}

static void
test_buf_putf_large(void **state)
{
	struct sg_buf b;
	char want[1200];
	size_t o = 0;
	int i;

	/* crosses the initial allocation several times */
	sg_buf_init(&b, 1000);
	for (i = 0; i < 100; i++) {
		o += (size_t)snprintf(want + o, sizeof(want) - o, "[%08d]", i);
		assert_int_equal(sg_buf_putf(&b, "[%08d]", i), 0);
	}
	assert_int_equal(sg_buf_putf(&b, "%c", 'x'), SG_ERR_LIMIT);
	assert_int_equal(b.len, 1000);
	assert_string_equal(sg_buf_str(&b), want);
	sg_buf_free(&b);
}

static void
test_buf_reset(void **state)
{
	struct sg_buf b;
	unsigned char *before;
	size_t alloc;

	sg_buf_init(&b, 100);
	assert_int_equal(sg_buf_puts(&b, "hello"), 0);
	before = b.data;
	alloc = b.alloc;
	sg_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(sg_buf_str(&b), "");
	assert_ptr_equal(b.data, before); /* allocation kept */
	assert_int_equal(b.alloc, alloc);
	assert_int_equal(b.max, 100);
	assert_int_equal(sg_buf_puts(&b, "world"), 0);
	assert_string_equal(sg_buf_str(&b), "world");
	sg_buf_free(&b);
}

static void
test_buf_steal(void **state)
{
	struct sg_buf b;
	char *got;

	sg_buf_init(&b, 100);
	assert_int_equal(sg_buf_puts(&b, "stolen"), 0);
	got = sg_buf_steal(&b);
	assert_non_null(got);
	assert_string_equal(got, "stolen");
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	assert_string_equal(sg_buf_str(&b), "");
	/* the buffer is usable again and independent of the stolen string */
	assert_int_equal(sg_buf_puts(&b, "again"), 0);
	assert_string_equal(sg_buf_str(&b), "again");
	assert_string_equal(got, "stolen");
	free(got);
	sg_buf_free(&b);

	/* stealing a never-used buffer gives an empty, freeable string */
	sg_buf_init(&b, 10);
	got = sg_buf_steal(&b);
	assert_non_null(got);
	assert_string_equal(got, "");
	free(got);
	sg_buf_free(&b);
}

/* --- sg_log_escape ------------------------------------------------------ */

static const struct {
	const char *name;
	const char *in;
	size_t n;
	size_t outlen;
	const char *want;
} escape_cases[] = {
    {"printable", "Hello, world!", 13, 64, "Hello, world!"},
    {"empty", "", 0, 64, ""},
    {"backslash", "a\\b", 3, 64, "a\\\\b"},
    {"control bytes", "\n\r\t\x1b\x7f", 5, 64, "\\x0a\\x0d\\x09\\x1b\\x7f"},
    {"embedded NUL", "a\0b", 3, 64, "a\\x00b"},
    {"8-bit", "\x80\xff\xc3\xa9", 4, 64, "\\x80\\xff\\xc3\\xa9"},
    {"n shorter than string", "abcdef", 3, 64, "abc"},
    {"cut plain", "abcdefghij", 10, 8, "abcd..."},
    {"cut before escape", "ab\x01\x02", 4, 10, "ab\\x01..."},
    {"escape never split", "\x01\x01\x01", 3, 10, "\\x01..."},
    {"cut at once", "abcdefghij", 10, 4, "..."},
    {"outlen 3", "abcdefghij", 10, 3, ""},
    {"outlen 2", "abcdefghij", 10, 2, ""},
    {"outlen 1", "abcdefghij", 10, 1, ""},
    {"outlen 1, empty input", "", 0, 1, ""},
};

static void
test_log_escape_table(void **state)
{
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(escape_cases); i++) {
		char out[80];
		char *got;

		memset(out, '#', sizeof(out));
		got = sg_log_escape(
		    escape_cases[i].in, escape_cases[i].n, out, escape_cases[i].outlen);
		assert_ptr_equal(got, out);
		if (strcmp(out, escape_cases[i].want) != 0)
			fail_msg("%s: got \"%s\" want \"%s\"", escape_cases[i].name, out,
			    escape_cases[i].want);
		/* nothing written past outlen */
		assert_int_equal(out[escape_cases[i].outlen], '#');
	}
}

static void
test_log_escape_outlen_zero(void **state)
{
	char out[4] = "###";

	assert_ptr_equal(sg_log_escape("abc", 3, out, 0), out);
	assert_string_equal(out, "###");
}

/* Escapes one byte the way the documentation says. */
static size_t
escape_ref(const unsigned char *s, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\')
			o += (size_t)sprintf(out + o, "\\\\");
		else if (s[i] >= 0x20 && s[i] < 0x7f)
			out[o++] = (char)s[i];
		else
			o += (size_t)sprintf(out + o, "\\x%02x", s[i]);
	}
	out[o] = '\0';
	return o;
}

/*
 * Every output size for a mixed input: always terminated inside outlen,
 * never writes past it, and a cut output is a prefix of the full escape
 * ending on an escape boundary, followed by "...".
 */
static void
test_log_escape_every_outlen(void **state)
{
	static const unsigned char in[] = "ab\\\x01"
	                                  "cd\xe2\x82\xac\n";
	size_t n = sizeof(in) - 1, outlen, fulllen;
	char full[128], out[128];

	fulllen = escape_ref(in, n, full);
	for (outlen = 1; outlen < fulllen + 8; outlen++) {
		size_t got_len;

		memset(out, '#', sizeof(out));
		sg_log_escape(in, n, out, outlen);
		assert_int_equal(out[outlen], '#');
		got_len = strnlen(out, outlen);
		assert_true(got_len < outlen);
		if (strcmp(out, full) == 0)
			continue;
		if (got_len == 0)
			continue; /* no room even for "..." */
		assert_true(got_len >= 3);
		assert_memory_equal(out + got_len - 3, "...", 3);
		assert_memory_equal(out, full, got_len - 3);
		/* the kept prefix ends on an escape boundary */
		{
			size_t k = got_len - 3, i, o = 0;
			char tmp[16];

			for (i = 0; o < k; i++)
				o += escape_ref(in + i, 1, tmp);
			assert_int_equal(o, k);
		}
	}
}

/*
 * Input whose escaped form fits the buffer must come out whole: "..." is
 * only for a cut.  (The cut check reserves room for "..." even for the
 * last byte, so a string that just fits is cut needlessly.)
 */
static void
test_log_escape_exact_fit(void **state)
{
	static const struct {
		const char *in;
		size_t outlen;
		const char *want;
	} cases[] = {
	    {"abc", 4, "abc"},
	    {"hello", 6, "hello"},
	    {"a\\", 4, "a\\\\"},
	    {"\x01", 5, "\\x01"},
	    {"ab\x01", 7, "ab\\x01"},
	};
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		char out[16];

		sg_log_escape(cases[i].in, strlen(cases[i].in), out, cases[i].outlen);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("\"%s\" into %zu bytes: got \"%s\" want \"%s\"", cases[i].in,
			    cases[i].outlen, out, cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_empty),
	    cmocka_unit_test(test_buf_put_limits),
	    cmocka_unit_test(test_buf_put_huge_n),
	    cmocka_unit_test(test_buf_binary_and_growth),
	    cmocka_unit_test(test_buf_puts_putc),
	    cmocka_unit_test(test_buf_putf),
	    cmocka_unit_test(test_buf_putf_large),
	    cmocka_unit_test(test_buf_reset),
	    cmocka_unit_test(test_buf_steal),
	    cmocka_unit_test(test_log_escape_table),
	    cmocka_unit_test(test_log_escape_outlen_zero),
	    cmocka_unit_test(test_log_escape_every_outlen),
	    cmocka_unit_test(test_log_escape_exact_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
