/*
 * policy_test.c - policy/sign.c: who may have mail signed.
 *
 * One table of message facts and the decision each must give, against a
 * configuration with internal domains "kota.go.id" and "*.kota.go.id", a
 * trusted relay network 192.0.2.0/24 and 2001:db8:25::/48, one sender
 * alias and a login map.  Then the domain matcher, the client matcher
 * and policy_net_parse on their own.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "testutil.h"

#include "policy/policy.h"

static char *internal[] = {"kota.go.id", "*.kota.go.id"};

static struct policy_pair aliases[] = {
    {"info@kota.go.id", "alice@kota.go.id"}, /* From info@ may be sent by alice@ */
};

static struct policy_pair login_map[] = {
    {"alice", "alice@kota.go.id"},
    {"alice", "info@kota.go.id"},
    {"bob", "bob@dinas.kota.go.id"},
};

static struct policy_net trusted[2];

static struct policy_cfg
make_cfg(enum policy_login_rule rule)
{
	struct policy_cfg c;

	memset(&c, 0, sizeof(c));
	c.internal_domains = internal;
	c.ninternal = TU_ARRAY_LEN(internal);
	c.login_rule = rule;
	c.login_map = login_map;
	c.nlogin_map = TU_ARRAY_LEN(login_map);
	c.aliases = aliases;
	c.naliases = TU_ARRAY_LEN(aliases);
	c.trusted = trusted;
	c.ntrusted = TU_ARRAY_LEN(trusted);
	c.sign_enabled = 1;
	return c;
}

static int
setup(void **state)
{
	if (policy_net_parse("192.0.2.0/24", &trusted[0]) != 0 ||
	    policy_net_parse("2001:db8:25::/48", &trusted[1]) != 0)
		return -1;
	return 0;
}

/* Fills a sockaddr_storage from a textual address; NULL gives NULL. */
static const struct sockaddr *
client(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip == NULL)
		return NULL;
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

#define SIGN 1
#define NOSIGN 0

static const struct {
	const char *name;
	enum policy_login_rule rule;
	int disabled;
	const char *login;
	const char *ip;
	const char *env_from;
	const char *from[3];
	size_t nfrom;
	int from_malformed;
	int want_sign;
	enum policy_sign_reason want_reason;
} cases[] = {
    /* authenticated senders */
    {"login equals From", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", "198.51.100.7",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"login equals From, other case", POLICY_LOGIN_ADDRESS, 0, "Alice@KOTA.go.id", NULL,
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"login differs", POLICY_LOGIN_ADDRESS, 0, "dave@kota.go.id", "198.51.100.7",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    {"login differs, even from a trusted relay", POLICY_LOGIN_ADDRESS, 0, "dave@kota.go.id",
        "192.0.2.10", "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_NOT_OWNER},
    {"login is a prefix of From", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go", NULL,
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    /* unauthenticated */
    {"no auth, untrusted client", POLICY_LOGIN_ADDRESS, 0, NULL, "198.51.100.7",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"empty login is no login", POLICY_LOGIN_ADDRESS, 0, "", "198.51.100.7", "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"no auth, no client address", POLICY_LOGIN_ADDRESS, 0, NULL, NULL, "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"no auth, trusted relay", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.10", "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"trusted relay, first address", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.0",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"trusted relay, last address", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.255",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"just outside the relay net", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.3.0",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"IPv6 trusted relay", POLICY_LOGIN_ADDRESS, 0, NULL, "2001:db8:25:ff::1",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"IPv6 outside the relay net", POLICY_LOGIN_ADDRESS, 0, NULL, "2001:db8:26::1",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"v4-mapped trusted relay", POLICY_LOGIN_ADDRESS, 0, NULL, "::ffff:192.0.2.10",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"v4-mapped untrusted", POLICY_LOGIN_ADDRESS, 0, NULL, "::ffff:198.51.100.7",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    {"v4 bytes in a plain IPv6 address are not v4", POLICY_LOGIN_ADDRESS, 0, NULL, "::c000:20a",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_UNAUTHENTICATED},
    /* the From field */
    {"two From addresses", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL,
        "alice@kota.go.id", {"alice@kota.go.id", "dave@kota.go.id"}, 2, 0, NOSIGN,
        POLICY_NOSIGN_FROM_MULTIPLE},
    {"no From", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL, "alice@kota.go.id", {NULL},
        0, 0, NOSIGN, POLICY_NOSIGN_FROM_MISSING},
    {"From did not parse", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL,
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 1, NOSIGN, POLICY_NOSIGN_FROM_MISSING},
    /* domains */
    {"external domain with matching login", POLICY_LOGIN_ADDRESS, 0, "carol@partner.example",
        NULL, "carol@partner.example", {"carol@partner.example"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_EXTERNAL},
    {"external domain from a trusted relay", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.10",
        "carol@partner.example", {"carol@partner.example"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_EXTERNAL},
    {"subdomain is internal", POLICY_LOGIN_ADDRESS, 0, "bob@dinas.kota.go.id", NULL,
        "bob@dinas.kota.go.id", {"bob@dinas.kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"deeper subdomain is internal", POLICY_LOGIN_ADDRESS, 0, "x@a.b.kota.go.id", NULL,
        "x@a.b.kota.go.id", {"x@a.b.kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"suffix without a dot is not", POLICY_LOGIN_ADDRESS, 0, "eve@evilkota.go.id", NULL,
        "eve@evilkota.go.id", {"eve@evilkota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_EXTERNAL},
    {"internal name as a prefix is not", POLICY_LOGIN_ADDRESS, 0, "eve@kota.go.id.evil.example",
        NULL, "eve@kota.go.id.evil.example", {"eve@kota.go.id.evil.example"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_EXTERNAL},
    {"parent domain is not", POLICY_LOGIN_ADDRESS, 0, "eve@go.id", NULL, "eve@go.id",
        {"eve@go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_EXTERNAL},
    /* envelope sender */
    {"envelope differs from From", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL,
        "dave@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_ENVELOPE},
    {"null envelope sender", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL, NULL,
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_ENVELOPE},
    {"envelope in other case", POLICY_LOGIN_ADDRESS, 0, "alice@kota.go.id", NULL,
        "ALICE@kota.go.id", {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"alias pair allows the envelope", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.10",
        "alice@kota.go.id", {"info@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_TRUSTED},
    {"alias pair is one-way", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.10", "info@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_ENVELOPE},
    {"alias pair names one sender", POLICY_LOGIN_ADDRESS, 0, NULL, "192.0.2.10",
        "dave@kota.go.id", {"info@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_ENVELOPE},
    /* login rules */
    {"localpart rule", POLICY_LOGIN_LOCALPART, 0, "alice", NULL, "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"localpart rule, any internal domain", POLICY_LOGIN_LOCALPART, 0, "bob", NULL,
        "bob@dinas.kota.go.id", {"bob@dinas.kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"localpart rule, other local part", POLICY_LOGIN_LOCALPART, 0, "alic", NULL,
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    {"localpart rule, longer login", POLICY_LOGIN_LOCALPART, 0, "alicex", NULL,
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    {"localpart rule, full address is not a local part", POLICY_LOGIN_LOCALPART, 0,
        "alice@kota.go.id", NULL, "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_NOT_OWNER},
    {"localpart rule, external domain", POLICY_LOGIN_LOCALPART, 0, "alice", NULL,
        "alice@partner.example", {"alice@partner.example"}, 1, 0, NOSIGN,
        POLICY_NOSIGN_EXTERNAL},
    {"map rule, listed", POLICY_LOGIN_MAP, 0, "alice", NULL, "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"map rule, second address of a login", POLICY_LOGIN_MAP, 0, "alice", NULL,
        "info@kota.go.id", {"info@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"map rule, alias with its own login", POLICY_LOGIN_MAP, 0, "alice", NULL,
        "alice@kota.go.id", {"info@kota.go.id"}, 1, 0, SIGN, POLICY_SIGN_OK_AUTH},
    {"map rule, not listed", POLICY_LOGIN_MAP, 0, "bob", NULL, "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    {"map rule, unknown login", POLICY_LOGIN_MAP, 0, "mallory", NULL, "alice@kota.go.id",
        {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_NOT_OWNER},
    /* disabled wins over everything */
    {"signing disabled", POLICY_LOGIN_ADDRESS, 1, "alice@kota.go.id", "192.0.2.10",
        "alice@kota.go.id", {"alice@kota.go.id"}, 1, 0, NOSIGN, POLICY_NOSIGN_DISABLED},
    {"signing disabled, no From", POLICY_LOGIN_ADDRESS, 1, NULL, NULL, NULL, {NULL}, 0, 1,
        NOSIGN, POLICY_NOSIGN_DISABLED},
};

static void
test_sign_decide_table(void **state)
{
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_cfg cfg = make_cfg(cases[i].rule);
		struct policy_sign_facts f;
		struct policy_sign_decision got;
		struct sockaddr_storage ss;

		cfg.sign_enabled = !cases[i].disabled;
		memset(&f, 0, sizeof(f));
		f.auth_login = cases[i].login;
		f.client = client(cases[i].ip, &ss);
		f.env_from = cases[i].env_from;
		f.from = (char *const *)cases[i].from;
		f.nfrom = cases[i].nfrom;
		f.from_malformed = cases[i].from_malformed;
		memset(&got, 0xa5, sizeof(got));
		policy_sign_decide(&cfg, &f, &got);
		if (got.sign != cases[i].want_sign || got.reason != cases[i].want_reason) {
			print_message("%s: got sign=%d %s, want sign=%d %s\n", cases[i].name,
			    got.sign, policy_sign_reason_token(got.reason), cases[i].want_sign,
			    policy_sign_reason_token(cases[i].want_reason));
			failures++;
		}
		/* a positive decision names the From address it signs as */
		if (got.sign &&
		    (got.address == NULL || strcmp(got.address, cases[i].from[0]) != 0)) {
			print_message("%s: signs as %s\n", cases[i].name,
			    got.address ? got.address : "NULL");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void
test_domain_internal(void **state)
{
	static const struct {
		const char *domain;
		int want;
	} dcases[] = {
	    {"kota.go.id", 1},
	    {"KOTA.GO.ID", 1},
	    {"dinas.kota.go.id", 1},
	    {"a.b.c.kota.go.id", 1},
	    {"Dinas.Kota.Go.Id", 1},
	    {"evilkota.go.id", 0},
	    {"kota.go.id.evil.example", 0},
	    {"go.id", 0},
	    {".kota.go.id", 0},
	    {"kota.go.i", 0},
	    {"", 0},
	};
	struct policy_cfg cfg = make_cfg(POLICY_LOGIN_ADDRESS);
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(dcases); i++) {
		int got = policy_domain_internal(&cfg, dcases[i].domain);

		if (got != dcases[i].want) {
			print_message(
			    "[%s]: got %d want %d\n", dcases[i].domain, got, dcases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);

	/* without the bare entry only subdomains are internal */
	cfg.ninternal = 1;
	cfg.internal_domains = &internal[1];
	assert_int_equal(policy_domain_internal(&cfg, "kota.go.id"), 0);
	assert_int_equal(policy_domain_internal(&cfg, "dinas.kota.go.id"), 1);
	cfg.ninternal = 0;
	assert_int_equal(policy_domain_internal(&cfg, "kota.go.id"), 0);
}

static void
test_client_trusted(void **state)
{
	struct policy_cfg cfg = make_cfg(POLICY_LOGIN_ADDRESS);
	struct policy_net any4, host;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;

	assert_int_equal(policy_client_trusted(&cfg, NULL), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(policy_client_trusted(&cfg, (const struct sockaddr *)&sun), 0);
	assert_int_equal(policy_client_trusted(&cfg, client("192.0.2.77", &ss)), 1);
	assert_int_equal(policy_client_trusted(&cfg, client("192.0.1.255", &ss)), 0);

	/* 0.0.0.0/0 trusts every IPv4 client and no IPv6 one */
	assert_int_equal(policy_net_parse("0.0.0.0/0", &any4), 0);
	cfg.trusted = &any4;
	cfg.ntrusted = 1;
	assert_int_equal(policy_client_trusted(&cfg, client("203.0.113.9", &ss)), 1);
	assert_int_equal(policy_client_trusted(&cfg, client("::ffff:203.0.113.9", &ss)), 1);
	assert_int_equal(policy_client_trusted(&cfg, client("2001:db8::1", &ss)), 0);

	/* a bare address is a /32 */
	assert_int_equal(policy_net_parse("198.51.100.7", &host), 0);
	cfg.trusted = &host;
	assert_int_equal(policy_client_trusted(&cfg, client("198.51.100.7", &ss)), 1);
	assert_int_equal(policy_client_trusted(&cfg, client("198.51.100.6", &ss)), 0);

	cfg.ntrusted = 0;
	assert_int_equal(policy_client_trusted(&cfg, client("198.51.100.7", &ss)), 0);
}

static void
test_net_parse(void **state)
{
	static const struct {
		const char *in;
		int want_r;
		int want_family;
		unsigned want_prefix;
		const char *want_addr; /* canonical form of the address bytes */
	} ncases[] = {
	    {"192.0.2.0/24", 0, AF_INET, 24, "192.0.2.0"},
	    {"10.1.2.3", 0, AF_INET, 32, "10.1.2.3"},
	    {"0.0.0.0/0", 0, AF_INET, 0, "0.0.0.0"},
	    {"192.0.2.1/32", 0, AF_INET, 32, "192.0.2.1"},
	    {"2001:db8::/32", 0, AF_INET6, 32, "2001:db8::"},
	    {"::1", 0, AF_INET6, 128, "::1"},
	    {"2001:db8::/128", 0, AF_INET6, 128, "2001:db8::"},
	    {"::ffff:192.0.2.0/120", 0, AF_INET6, 120, "::ffff:192.0.2.0"},
	    {"192.0.2.0/33", SG_ERR_CONFIG, 0, 0, NULL},
	    {"2001:db8::/129", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2.0/-1", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2.0/", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2.0/24x", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2.0/99999999999999999999", SG_ERR_CONFIG, 0, 0, NULL},
	    {"/24", SG_ERR_CONFIG, 0, 0, NULL},
	    {"", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2", SG_ERR_CONFIG, 0, 0, NULL},
	    {"256.0.0.1", SG_ERR_CONFIG, 0, 0, NULL},
	    {"mail.kota.go.id", SG_ERR_CONFIG, 0, 0, NULL},
	    {"192.0.2.0 /24", SG_ERR_CONFIG, 0, 0, NULL},
	    {"2001:db8:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0/32",
	        SG_ERR_CONFIG, 0, 0, NULL},
	};
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(ncases); i++) {
		struct policy_net got;
		int got_r = policy_net_parse(ncases[i].in, &got);
		char text[INET6_ADDRSTRLEN];

		if (got_r != ncases[i].want_r) {
			print_message(
			    "[%s]: got %d want %d\n", ncases[i].in, got_r, ncases[i].want_r);
			failures++;
			continue;
		}
		if (got_r != 0)
			continue;
		assert_non_null(inet_ntop(got.family, got.addr, text, sizeof(text)));
		if (got.family != ncases[i].want_family ||
		    got.prefix != ncases[i].want_prefix ||
		    strcmp(text, ncases[i].want_addr) != 0) {
			print_message("[%s]: got family %d %s/%u\n", ncases[i].in, got.family,
			    text, got.prefix);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void
test_reason_texts(void **state)
{
	int r;

	for (r = POLICY_SIGN_OK_AUTH; r <= POLICY_NOSIGN_NOT_OWNER; r++) {
		assert_non_null(policy_sign_reason_text((enum policy_sign_reason)r));
		assert_true(policy_sign_reason_text((enum policy_sign_reason)r)[0] != '\0');
		assert_non_null(policy_sign_reason_token((enum policy_sign_reason)r));
		assert_null(strchr(policy_sign_reason_token((enum policy_sign_reason)r), ' '));
	}
	assert_string_equal(policy_sign_reason_token(POLICY_NOSIGN_NOT_OWNER), "not-owner");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sign_decide_table),
	    cmocka_unit_test(test_domain_internal),
	    cmocka_unit_test(test_client_trusted),
	    cmocka_unit_test(test_net_parse),
	    cmocka_unit_test(test_reason_texts),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
