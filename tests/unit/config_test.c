/*
 * config_test.c - milter/config.c: loading and checking segel.conf.
 *
 * Each case writes a configuration (and map files) into a private
 * temporary directory and loads it.  Errors must name the file and the
 * line of the offending setting ("FILE:LINE: ..."); limits are tested at
 * their bounds and one past them.
 */
#include "testutil.h"

#include "milter/config.h"

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

/* The smallest valid configuration; every case starts from it. */
#define MIN_DOMAINS "domains: { internal = [ \"kota.go.id\", \"*.kota.go.id\" ]; };\n"

static void
write_in_dir(const char *name, const char *text, char *path, size_t plen)
{
	snprintf(path, plen, "%s/%s", tmpdir, name);
	tu_write_file(path, text, strlen(text), 0644);
}

/* Loads text as segel.conf; returns cfg_load's result, err filled. */
static int
load_text(
    const char *text, struct segel_cfg **out, char *path, size_t plen, char *err, size_t errlen)
{
	write_in_dir("segel.conf", text, path, plen);
	memset(err, 'X', errlen);
	return cfg_load(path, out, err, errlen);
}

/* Whether path is dir + "/" + something relative that ends in tail. */
static int
is_under(const char *path, const char *dir, const char *tail)
{
	size_t dl = strlen(dir), pl = strlen(path), tl = strlen(tail);

	return pl > dl + 1 + tl - 1 && strncmp(path, dir, dl) == 0 && path[dl] == '/' &&
	    path[dl + 1] != '/' && strcmp(path + pl - tl, tail) == 0;
}

static void
test_sample_config(void **state)
{
	struct segel_cfg *c = NULL;
	char err[512];
	int r;

	r = cfg_load("conf/segel.conf", &c, err, sizeof(err));
	if (r != 0)
		fail_msg("conf/segel.conf: %d: %s", r, err);
	assert_non_null(c);
	assert_string_equal(c->socket, "inet:10901@127.0.0.1");
	/* relative paths of the sample are resolved against conf/ */
	assert_true(is_under(c->spool_dir, "conf", "spool"));
	assert_true(is_under(c->keystore_path, "conf", "keystore.db"));
	assert_true(is_under(c->master_passphrase_file, "conf", "master.key"));
	assert_string_equal(c->pid_file, "");
	assert_string_equal(c->login_map, "");
	assert_int_equal(c->internal.n, 2);
	assert_string_equal(c->internal.v[0], "kota.go.id");
	assert_string_equal(c->internal.v[1], "*.kota.go.id");
	assert_int_equal(c->memory_threshold, 262144);
	assert_int_equal(c->on_internal_error, CFG_ACT_TEMPFAIL);
	assert_int_equal(c->on_unauthorized, CFG_ACT_DELIVER);
	assert_int_equal(c->on_no_certificate, CFG_ACT_DELIVER);
	assert_int_equal(c->on_malformed, CFG_ACT_REJECT);
	assert_int_equal(c->digest, SM_DIGEST_SHA256);
	assert_int_equal(c->rsa_padding, 0);
	assert_int_equal(c->include_chain, 1);
	assert_int_equal(c->sign_mode, 0);
	assert_int_equal(c->login_rule, POLICY_LOGIN_ADDRESS);
	assert_int_equal(c->trusted_networks.n, 0);
	/* derived settings */
	assert_int_equal(c->limits.max_message_size, 52428800);
	assert_int_equal(c->limits.max_header_size, 65536);
	assert_int_equal(c->limits.max_headers, 1000);
	assert_int_equal(c->limits.max_mime_depth, 16);
	assert_int_equal(c->limits.max_mime_parts, 500);
	assert_int_equal(c->policy.sign_enabled, 1);
	assert_int_equal(c->policy.ninternal, 2);
	assert_int_equal(c->policy.login_rule, POLICY_LOGIN_ADDRESS);
	assert_int_equal(c->refs, 1);
	cfg_unref(c);
}

/* Only domains given: every other setting takes its documented default. */
static void
test_defaults(void **state)
{
	struct segel_cfg *c = NULL;
	struct sm_limits def;
	char path[256], err[512];

	assert_int_equal(load_text(MIN_DOMAINS, &c, path, sizeof(path), err, sizeof(err)), 0);
	sm_limits_default(&def);
	assert_int_equal(c->limits.max_message_size, def.max_message_size);
	assert_int_equal(c->limits.max_header_size, def.max_header_size);
	assert_int_equal(c->limits.max_headers, def.max_headers);
	assert_int_equal(c->limits.max_mime_depth, def.max_mime_depth);
	assert_int_equal(c->limits.max_mime_parts, def.max_mime_parts);
	assert_int_equal(c->on_internal_error, CFG_ACT_TEMPFAIL);
	assert_int_equal(c->on_malformed, CFG_ACT_REJECT);
	assert_int_equal(c->include_chain, 1);
	assert_string_equal(c->log_facility, "mail");
	assert_true(is_under(c->keystore_path, tmpdir, "keystore.db"));
	assert_true(is_under(c->spool_dir, tmpdir, "spool"));
	cfg_unref(c);
}

/* Errors that must point at FILE:LINE of the offending setting. */
static const struct {
	const char *name;
	const char *text;
	int want_line; /* 0: only the file name is required */
	const char *want_words;
} error_cases[] = {
    {"unknown key",
        MIN_DOMAINS
        "milter: {\n  socket = \"unix:/run/segel.sock\";\n  sokcet = \"typo\";\n};\n",
        4, "milter.sokcet"},
    {"unknown group", MIN_DOMAINS "\n\nmilterr: {\n  socket = \"x\";\n};\n", 4, "milterr"},
    {"top-level scalar", MIN_DOMAINS "socket = \"x\";\n", 2, "socket"},
    {"wrong type: string for int", MIN_DOMAINS "limits: {\n  max_headers = \"ten\";\n};\n", 3,
        "limits.max_headers"},
    {"wrong type: float for int", MIN_DOMAINS "limits: {\n  max_headers = 10.5;\n};\n", 3,
        "limits.max_headers"},
    {"wrong type: int for string", MIN_DOMAINS "milter: {\n  socket = 10901;\n};\n", 3,
        "milter.socket"},
    {"wrong type: string for bool", MIN_DOMAINS "signing: {\n  include_chain = \"yes\";\n};\n",
        3, "signing.include_chain"},
    {"wrong type: string for list", "domains: {\n  internal = \"kota.go.id\";\n};\n", 2,
        "domains.internal"},
    {"list element not a string", "domains: {\n  internal = ( \"kota.go.id\", 7 );\n};\n", 2,
        "domains.internal"},
    {"array of mixed types", "domains: {\n  internal = [ \"kota.go.id\", 7 ];\n};\n", 2, ""},
    {"wrong type: group for string", MIN_DOMAINS "milter: {\n  socket: { a = 1; };\n};\n", 3,
        "milter.socket"},
    {"int one over the maximum", MIN_DOMAINS "limits: {\n  max_headers = 100001;\n};\n", 3,
        "limits.max_headers"},
    {"int one under the minimum", MIN_DOMAINS "limits: {\n  max_headers = 9;\n};\n", 3,
        "limits.max_headers"},
    {"memory threshold under the minimum",
        MIN_DOMAINS "milter: {\n  memory_threshold = 4095;\n};\n", 3,
        "milter.memory_threshold"},
    {"depth zero", MIN_DOMAINS "limits: {\n  max_mime_depth = 0;\n};\n", 3,
        "limits.max_mime_depth"},
    {"depth one over", MIN_DOMAINS "limits: {\n  max_mime_depth = 61;\n};\n", 3,
        "limits.max_mime_depth"},
    {"negative", MIN_DOMAINS "limits: {\n  max_mime_parts = -1;\n};\n", 3,
        "limits.max_mime_parts"},
    {"64-bit value over the maximum",
        MIN_DOMAINS "limits: {\n  max_message_size = 2147483649L;\n};\n", 3,
        "limits.max_message_size"},
    {"large int over the maximum",
        MIN_DOMAINS "limits: {\n  max_message_size = 4294967296;\n};\n", 3,
        "limits.max_message_size"},
    {"bad enum choice", MIN_DOMAINS "signing: {\n  digest = \"md5\";\n};\n", 3,
        "signing.digest"},
    {"placeholder choice is not a choice",
        MIN_DOMAINS "milter: {\n  on_internal_error = \"-\";\n};\n", 3,
        "milter.on_internal_error"},
    {"choice not allowed for this setting",
        MIN_DOMAINS "signing: {\n  on_unauthorized = \"tempfail\";\n};\n", 3,
        "signing.on_unauthorized"},
    {"deliver is not an internal-error action",
        MIN_DOMAINS "milter: {\n  on_internal_error = \"deliver\";\n};\n", 3,
        "milter.on_internal_error"},
    {"enum as int", MIN_DOMAINS "signing: {\n  mode = 1;\n};\n", 3, "signing.mode"},
    {"syntax error", MIN_DOMAINS "milter: {\n  socket = \"x\";\n  user = ;\n};\n", 4, ""},
    {"unterminated group", MIN_DOMAINS "milter: {\n  socket = \"x\";\n", 0, ""},
    {"duplicate setting", MIN_DOMAINS "milter: {\n  socket = \"x\";\n  socket = \"y\";\n};\n",
        4, ""},
    {"domains.internal empty", "domains: { internal = [ ]; };\n", 0, "domains.internal"},
    {"domains.internal missing", "milter: { socket = \"x\"; };\n", 0, "domains.internal"},
    {"map rule without login_map", MIN_DOMAINS "auth: {\n  login_rule = \"map\";\n};\n", 0,
        "auth.login_map"},
    {"bad trusted network",
        MIN_DOMAINS "auth: {\n  trusted_networks = [ \"192.0.2.0/33\" ];\n};\n", 0,
        "192.0.2.0/33"},
};

static void
test_errors(void **state)
{
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(error_cases); i++) {
		struct segel_cfg *c = (struct segel_cfg *)1;
		char path[256], err[512], at[300];
		int r =
		    load_text(error_cases[i].text, &c, path, sizeof(path), err, sizeof(err));

		if (error_cases[i].want_line > 0)
			snprintf(at, sizeof(at), "%s:%d:", path, error_cases[i].want_line);
		else
			snprintf(at, sizeof(at), "%s", path);
		if (r != SG_ERR_CONFIG || c != NULL || strstr(err, at) == NULL ||
		    strstr(err, error_cases[i].want_words) == NULL) {
			print_message("%s: got %d \"%.*s\", want %d with \"%s\" and \"%s\"\n",
			    error_cases[i].name, r, (int)sizeof(err) - 1, err, SG_ERR_CONFIG,
			    at, error_cases[i].want_words);
			failures++;
		}
		if (r == 0 && c != NULL)
			cfg_unref(c);
	}
	assert_int_equal(failures, 0);
}

/* Values exactly at their bounds load. */
static void
test_bounds_inclusive(void **state)
{
	static const char text[] = MIN_DOMAINS "milter: { memory_threshold = 4096; };\n"
	                                       "limits: {\n"
	                                       "  max_message_size = 2147483648L;\n"
	                                       "  max_header_size = 1024;\n"
	                                       "  max_headers = 100000;\n"
	                                       "  max_mime_depth = 60;\n"
	                                       "  max_mime_parts = 1;\n"
	                                       "  max_recipients = 100000;\n"
	                                       "  max_chain_length = 32;\n"
	                                       "};\n";
	struct segel_cfg *c = NULL;
	char path[256], err[512];
	int r = load_text(text, &c, path, sizeof(path), err, sizeof(err));

	if (r != 0)
		fail_msg("%d: %s", r, err);
	assert_int_equal(c->memory_threshold, 4096);
	assert_int_equal(c->limits.max_message_size, 2147483648ULL);
	assert_int_equal(c->limits.max_header_size, 1024);
	assert_int_equal(c->limits.max_headers, 100000);
	assert_int_equal(c->limits.max_mime_depth, 60);
	assert_int_equal(c->limits.max_mime_parts, 1);
	assert_int_equal(c->max_chain_length, 32);
	cfg_unref(c);
}

static void
test_enums(void **state)
{
	static const char text[] =
	    MIN_DOMAINS "milter: { on_internal_error = \"Accept\";"
	                " log_level = \"debug\"; };\n"
	                "signing: { mode = \"never\"; digest = \"SHA384\";"
	                " rsa_padding = \"pss\"; include_chain = false;"
	                " on_unauthorized = \"reject\";"
	                " on_no_certificate = \"tempfail\";"
	                " on_malformed = \"deliver\"; };\n"
	                "auth: { login_rule = \"localpart\"; };\n";
	struct segel_cfg *c = NULL;
	char path[256], err[512];
	int r = load_text(text, &c, path, sizeof(path), err, sizeof(err));

	if (r != 0)
		fail_msg("%d: %s", r, err);
	assert_int_equal(c->on_internal_error, CFG_ACT_ACCEPT);
	assert_string_equal(cfg_action_name(c->on_internal_error), "accept");
	assert_int_equal(c->log_level, 0);
	assert_int_equal(c->sign_mode, 1);
	assert_int_equal(c->policy.sign_enabled, 0);
	assert_int_equal(c->digest, SM_DIGEST_SHA384);
	assert_int_equal(c->rsa_padding, 1);
	assert_int_equal(c->include_chain, 0);
	assert_int_equal(c->on_unauthorized, CFG_ACT_REJECT);
	assert_int_equal(c->on_no_certificate, CFG_ACT_TEMPFAIL);
	assert_int_equal(c->on_malformed, CFG_ACT_DELIVER);
	assert_int_equal(c->login_rule, POLICY_LOGIN_LOCALPART);
	assert_int_equal(c->policy.login_rule, POLICY_LOGIN_LOCALPART);
	cfg_unref(c);
	assert_string_equal(cfg_action_name(CFG_ACT_DELIVER), "deliver");
	assert_string_equal(cfg_action_name(99), "?");
	assert_string_equal(cfg_action_name(-1), "?");
}

static void
test_relative_paths(void **state)
{
	static const char text[] = MIN_DOMAINS "milter: { spool_dir = \"var/spool\";"
	                                       " pid_file = \"/run/segel.pid\"; };\n"
	                                       "keystore: { path = \"ks.db\"; };\n";
	struct segel_cfg *c = NULL;
	char path[256], err[512], want[300];

	assert_int_equal(load_text(text, &c, path, sizeof(path), err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/var/spool", tmpdir);
	assert_string_equal(c->spool_dir, want);
	snprintf(want, sizeof(want), "%s/ks.db", tmpdir);
	assert_string_equal(c->keystore_path, want);
	snprintf(want, sizeof(want), "%s/master.key", tmpdir); /* a default is resolved too */
	assert_string_equal(c->master_passphrase_file, want);
	assert_string_equal(c->pid_file, "/run/segel.pid"); /* absolute stays */
	assert_string_equal(c->sender_aliases, ""); /* empty stays empty */
	assert_string_equal(c->path, path);
	assert_string_equal(c->dir, tmpdir);
	cfg_unref(c);
}

static void
test_trusted_networks(void **state)
{
	static const char text[] = MIN_DOMAINS
	    "auth: { trusted_networks = [ \"192.0.2.0/24\", \"2001:db8::/32\" ]; };\n";
	struct segel_cfg *c = NULL;
	char path[256], err[512];

	assert_int_equal(load_text(text, &c, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(c->policy.ntrusted, 2);
	assert_int_equal(c->policy.trusted[0].prefix, 24);
	assert_int_equal(c->policy.trusted[1].prefix, 32);
	cfg_unref(c);
}

static void
test_login_map(void **state)
{
	static const char map[] = "# login  addresses\n"
	                          "alice   alice@kota.go.id, info@kota.go.id\n"
	                          "\n"
	                          "bob\tbob@dinas.kota.go.id   # trailing comment\n"
	                          "carol carol@kota.go.id,dave@kota.go.id\r\n";
	static const char aliases[] = "info@kota.go.id alice@kota.go.id\n";
	static const char text[] = MIN_DOMAINS "auth: {\n  login_rule = \"map\";\n"
	                                       "  login_map = \"login.map\";\n"
	                                       "  sender_aliases = \"aliases\";\n};\n";
	static const struct {
		const char *left, *right;
	} want[] = {
	    {"alice", "alice@kota.go.id"},
	    {"alice", "info@kota.go.id"},
	    {"bob", "bob@dinas.kota.go.id"},
	    {"carol", "carol@kota.go.id"},
	    {"carol", "dave@kota.go.id"},
	};
	struct segel_cfg *c = NULL;
	char path[256], err[512], mpath[256];
	size_t i;
	int r;

	write_in_dir("login.map", map, mpath, sizeof(mpath));
	write_in_dir("aliases", aliases, mpath, sizeof(mpath));
	r = load_text(text, &c, path, sizeof(path), err, sizeof(err));
	if (r != 0)
		fail_msg("%d: %s", r, err);
	assert_int_equal(c->policy.login_rule, POLICY_LOGIN_MAP);
	assert_int_equal(c->policy.nlogin_map, TU_ARRAY_LEN(want));
	for (i = 0; i < TU_ARRAY_LEN(want); i++) {
		assert_string_equal(c->policy.login_map[i].left, want[i].left);
		assert_string_equal(c->policy.login_map[i].right, want[i].right);
	}
	assert_int_equal(c->policy.naliases, 1);
	assert_string_equal(c->policy.aliases[0].left, "info@kota.go.id");
	assert_string_equal(c->policy.aliases[0].right, "alice@kota.go.id");
	cfg_unref(c);
}

/* A bad line in a map file: the error names the map file and its line. */
static void
test_login_map_errors(void **state)
{
	static const struct {
		const char *name;
		const char *map;
		int want_line;
	} cases[] = {
	    {"login without address", "alice alice@kota.go.id\n# ok\nbob\n", 3},
	    {"only separators after login", "alice ,  ,\n", 1},
	    {"line too long", NULL, 2},
	};
	static const char text[] =
	    MIN_DOMAINS "auth: { login_rule = \"map\"; login_map = \"login.map\"; };\n";
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct segel_cfg *c = NULL;
		char path[256], err[512], mpath[256], at[300];
		char longmap[4096];
		const char *map = cases[i].map;
		int r;

		if (map == NULL) {
			size_t o = (size_t)snprintf(
			    longmap, sizeof(longmap), "alice a@kota.go.id\nbob ");

			memset(longmap + o, 'b', 2000);
			memcpy(longmap + o + 2000, "@kota.go.id\n", 13);
			map = longmap;
		}
		write_in_dir("login.map", map, mpath, sizeof(mpath));
		r = load_text(text, &c, path, sizeof(path), err, sizeof(err));
		snprintf(at, sizeof(at), "%s:%d:", mpath, cases[i].want_line);
		if (r != SG_ERR_CONFIG || c != NULL || strstr(err, at) == NULL) {
			print_message(
			    "%s: got %d \"%s\" want \"%s\"\n", cases[i].name, r, err, at);
			failures++;
		}
		if (c != NULL)
			cfg_unref(c);
	}
	assert_int_equal(failures, 0);
}

static void
test_missing_files(void **state)
{
	struct segel_cfg *c = (struct segel_cfg *)1;
	char path[256], err[512];
	int r;

	/* the configuration itself */
	snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
	r = cfg_load(path, &c, err, sizeof(err));
	assert_int_equal(r, SG_ERR_CONFIG);
	assert_null(c);
	assert_non_null(strstr(err, path));

	/* a map file it names */
	r = load_text(MIN_DOMAINS "auth: { sender_aliases = \"no-such-file\"; };\n", &c, path,
	    sizeof(path), err, sizeof(err));
	assert_int_equal(r, SG_ERR_CONFIG);
	assert_null(c);
	assert_non_null(strstr(err, "no-such-file"));
}

/* A small error buffer is filled, terminated, never overrun. */
static void
test_small_error_buffer(void **state)
{
	struct segel_cfg *c = NULL;
	char path[256], err[16 + 1];

	err[16] = '#';
	assert_int_equal(
	    load_text(MIN_DOMAINS "bogus: { a = 1; };\n", &c, path, sizeof(path), err, 16),
	    SG_ERR_CONFIG);
	assert_int_equal(strlen(err), 15);
	assert_int_equal(err[16], '#');
}

static void
test_refcount(void **state)
{
	struct segel_cfg *c = NULL, *c2;
	char path[256], err[512];

	assert_int_equal(load_text(MIN_DOMAINS, &c, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(c->refs, 1);
	c2 = cfg_ref(c);
	assert_ptr_equal(c2, c);
	assert_int_equal(c->refs, 2);
	cfg_ref(c);
	assert_int_equal(c->refs, 3);
	cfg_unref(c);
	cfg_unref(c2);
	assert_int_equal(c->refs, 1); /* still alive for the last holder */
	assert_string_equal(c->internal.v[0], "kota.go.id");
	cfg_unref(c); /* frees; ASan reports a leak or a double free otherwise */
	cfg_unref(NULL);
}

static void
test_print_reference(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	cfg_print_reference(fp);
	fclose(fp);
	assert_non_null(strstr(buf, "limits.max_mime_depth"));
	assert_non_null(strstr(buf, "domains.internal"));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sample_config),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds_inclusive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trusted_networks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_map_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_error_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refcount, setup, teardown),
	    cmocka_unit_test(test_print_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
