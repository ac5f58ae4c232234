/*
 * outbound_test.c - policy/outbound*.c: the outbound policy decision.
 *
 * One policy built with the builders on top of the `segelctl init`
 * defaults (global: sign always, encrypt opportunistically, reject; tag
 * [RAHASIA]; classification header X-Klasifikasi), with:
 *
 *   domain kota.go.id            notice on, escrow arsip@kota.go.id
 *   domain *.kota.go.id          encrypt mandatory, on_failure quarantine,
 *                                aes_gcm never
 *   domain dinkes.kota.go.id     on_failure defer, header_protection on
 *   domain *.sekolah.kota.go.id  on_failure signed_only
 *   domain dinsos.kota.go.id     notice on with its own text
 *   department sekretariat       kota.go.id: aes_gcm always
 *   department pimpinan          walikota@, sekda@kota.go.id: role signer
 *                                pimpinan@kota.go.id, rsa_oaep on
 *   department dishub            dishub.kota.go.id, *.dishub.kota.go.id:
 *                                system signer noreply@dishub.kota.go.id,
 *                                encrypt opportunistic, monitor on
 *   user bob@kota.go.id          encrypt never, notice off
 *   user walikota@kota.go.id     signer personal
 *   user audit@dishub.kota.go.id monitor off
 *   user robot@kota.go.id        sign never
 *   user intern@kota.go.id       sign if_possible
 *   classification header Sifat (besides X-Klasifikasi)
 *   header X-Segel-Encrypt: yes  encrypt mandatory, on_failure reject,
 *                                header protection on
 *   subject tag [ENCRYPT]        encrypt mandatory, on_failure signed_only
 *
 * Tables of facts and the decision each must give; then the explanation
 * (text and JSON, the latter parsed), the builders' refusals and limits.
 */
#include "testutil.h"

#include "policy/outbound.h"
#include "util/buf.h"

#define CAROL                                                                                  \
	{                                                                                      \
		"carol@partner.example", 1, POLICY_CAP_AES_GCM                                 \
	}
#define CAROL_CBC                                                                              \
	{                                                                                      \
		"carol@partner.example", 1, 0                                                  \
	}
#define FRED                                                                                   \
	{                                                                                      \
		"fred@partner.example", 1, POLICY_CAP_AES_GCM                                  \
	}
#define FRED_CBC                                                                               \
	{                                                                                      \
		"fred@partner.example", 1, 0                                                   \
	}
#define DAVE                                                                                   \
	{                                                                                      \
		"dave@kota.go.id", 0, 0                                                        \
	}
#define ERIN                                                                                   \
	{                                                                                      \
		"erin@kota.go.id", 0, POLICY_CAP_AES_GCM                                       \
	}

#define NOHDR                                                                                  \
	{                                                                                      \
		{                                                                              \
			NULL, NULL                                                             \
		}                                                                              \
	}

#define MAX_RCPTS 4
#define MAX_HEADERS 3

static struct policy_out *
make_policy(void)
{
	static const char *const sekretariat[] = {"kota.go.id"};
	static const char *const pimpinan[] = {"walikota@kota.go.id", "sekda@kota.go.id"};
	static const char *const dishub[] = {"dishub.kota.go.id", "*.dishub.kota.go.id"};
	static const struct policy_require secret_hdr = {.encrypt = POLICY_ENCRYPT_MANDATORY,
	    .on_failure = POLICY_FAIL_REJECT,
	    .header_protection = POLICY_FLAG_ON};
	static const struct policy_require encrypt_tag = {
	    .encrypt = POLICY_ENCRYPT_MANDATORY, .on_failure = POLICY_FAIL_SIGNED_ONLY};
	struct policy_settings s;
	struct policy_out *p;

	assert_int_equal(policy_out_new(&p), 0);
	assert_int_equal(policy_out_defaults(p), 0);

	s = (struct policy_settings){.notice = POLICY_FLAG_ON, .escrow = "arsip@kota.go.id"};
	assert_int_equal(policy_out_add_domain(p, "kota.go.id", &s), 0);
	s = (struct policy_settings){.encrypt = POLICY_ENCRYPT_MANDATORY,
	    .on_failure = POLICY_FAIL_QUARANTINE,
	    .aes_gcm = POLICY_GCM_NEVER};
	assert_int_equal(policy_out_add_domain(p, "*.kota.go.id", &s), 0);
	s = (struct policy_settings){
	    .on_failure = POLICY_FAIL_DEFER, .header_protection = POLICY_FLAG_ON};
	assert_int_equal(policy_out_add_domain(p, "dinkes.kota.go.id", &s), 0);
	s = (struct policy_settings){.on_failure = POLICY_FAIL_SIGNED_ONLY};
	assert_int_equal(policy_out_add_domain(p, "*.sekolah.kota.go.id", &s), 0);
	s = (struct policy_settings){
	    .notice = POLICY_FLAG_ON, .notice_text = "Ditandatangani."};
	assert_int_equal(policy_out_add_domain(p, "dinsos.kota.go.id", &s), 0);

	s = (struct policy_settings){.aes_gcm = POLICY_GCM_ALWAYS};
	assert_int_equal(policy_out_add_department(p, "sekretariat", sekretariat, 1, &s), 0);
	s = (struct policy_settings){.signer = POLICY_SIGNER_ROLE,
	    .signer_address = "pimpinan@kota.go.id",
	    .rsa_oaep = POLICY_FLAG_ON};
	assert_int_equal(policy_out_add_department(p, "pimpinan", pimpinan, 2, &s), 0);
	s = (struct policy_settings){.signer = POLICY_SIGNER_SYSTEM,
	    .signer_address = "noreply@dishub.kota.go.id",
	    .encrypt = POLICY_ENCRYPT_OPPORTUNISTIC,
	    .monitor = POLICY_FLAG_ON};
	assert_int_equal(policy_out_add_department(p, "dishub", dishub, 2, &s), 0);

	s = (struct policy_settings){
	    .encrypt = POLICY_ENCRYPT_NEVER, .notice = POLICY_FLAG_OFF};
	assert_int_equal(policy_out_add_user(p, "bob@kota.go.id", &s), 0);
	s = (struct policy_settings){.signer = POLICY_SIGNER_PERSONAL};
	assert_int_equal(policy_out_add_user(p, "walikota@kota.go.id", &s), 0);
	s = (struct policy_settings){.monitor = POLICY_FLAG_OFF};
	assert_int_equal(policy_out_add_user(p, "audit@dishub.kota.go.id", &s), 0);
	s = (struct policy_settings){.sign = POLICY_SIGN_NEVER};
	assert_int_equal(policy_out_add_user(p, "robot@kota.go.id", &s), 0);
	s = (struct policy_settings){.sign = POLICY_SIGN_IF_POSSIBLE};
	assert_int_equal(policy_out_add_user(p, "intern@kota.go.id", &s), 0);

	assert_int_equal(policy_out_add_class_header(p, "Sifat"), 0);
	assert_int_equal(
	    policy_out_add_header_trigger(p, "X-Segel-Encrypt", "yes", &secret_hdr), 0);
	assert_int_equal(policy_out_add_subject_tag(p, "[ENCRYPT]", &encrypt_tag), 0);
	return p;
}

static int
setup(void **state)
{
	*state = make_policy();
	return 0;
}

static int
teardown(void **state)
{
	policy_out_free(*state);
	return 0;
}

/* The facts of one table row. */
struct row_facts {
	const char *sender;
	int may_sign;
	const char *subject;
	struct policy_header hdr[MAX_HEADERS]; /* up to the first NULL name */
	struct policy_rcpt rc[MAX_RCPTS]; /* up to the first NULL address */
};

static struct policy_out_facts
facts_of(const struct row_facts *rf)
{
	struct policy_out_facts f;

	memset(&f, 0, sizeof(f));
	f.sender = rf->sender;
	f.may_sign = rf->may_sign;
	f.subject = rf->subject;
	f.headers = rf->hdr;
	while (f.nheaders < MAX_HEADERS && rf->hdr[f.nheaders].name != NULL)
		f.nheaders++;
	f.rcpts = rf->rc;
	while (f.nrcpts < MAX_RCPTS && rf->rc[f.nrcpts].address != NULL)
		f.nrcpts++;
	f.size = 4096;
	return f;
}

static void
decide_row(
    const struct policy_out *p, const struct row_facts *rf, struct policy_out_decision *d)
{
	struct policy_out_facts f = facts_of(rf);

	assert_int_equal(policy_out_decide(p, &f, d), 0);
}

/* The first trace line about what (the level that set it); NULL if none. */
static const struct policy_trace *
trace_first(const struct policy_out_decision *d, const char *what)
{
	size_t i;

	for (i = 0; i < d->ntrace; i++)
		if (strcmp(d->trace[i].what, what) == 0)
			return &d->trace[i];
	return NULL;
}

/* The last trace line about what (after the triggers). */
static const struct policy_trace *
trace_last(const struct policy_out_decision *d, const char *what)
{
	size_t i;

	for (i = d->ntrace; i > 0; i--)
		if (strcmp(d->trace[i - 1].what, what) == 0)
			return &d->trace[i - 1];
	return NULL;
}

/* "ERU": one letter per recipient action. */
static void
actions_of(const struct policy_out_decision *d, char *out)
{
	static const char letter[] = "EUQRD";
	size_t i;

	for (i = 0; i < d->nrcpts; i++)
		out[i] = letter[d->rcpt[i]];
	out[i] = '\0';
}

/* "02": the recipient indexes of a copy. */
static void
copy_of(const struct policy_copy *c, char *out)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		out[i] = (char)('0' + c->rcpts[i]);
	out[i] = '\0';
}

static const char *
str_or(const char *s, const char *none)
{
	return s ? s : none;
}

/* Which level sets each setting: every level, wildcards, departments. */
static void
test_inheritance_table(void **state)
{
	static const struct {
		const char *name;
		const char *sender;
		const char *what;
		const char *want_value;
		const char *want_source;
	} cases[] = {
	    {"global", "alice@kota.go.id", "encrypt", "opportunistic", "global"},
	    {"built-in", "alice@kota.go.id", "header_protection", "off", "built-in"},
	    {"exact domain", "alice@kota.go.id", "notice", "on", "domain kota.go.id"},
	    {"exact domain escrow", "alice@kota.go.id", "escrow", "arsip@kota.go.id",
	        "domain kota.go.id"},
	    {"department by domain", "alice@kota.go.id", "aes_gcm", "always",
	        "department sekretariat"},
	    {"wildcard", "x@dinas.kota.go.id", "encrypt", "mandatory", "domain *.kota.go.id"},
	    {"deep wildcard", "x@a.b.kota.go.id", "on_failure", "quarantine",
	        "domain *.kota.go.id"},
	    {"wildcard is not the domain", "x@kota.go.id", "encrypt", "opportunistic",
	        "global"},
	    {"evilkota is not kota", "eve@evilkota.go.id", "encrypt", "opportunistic",
	        "global"},
	    {"evilkota gets no notice", "eve@evilkota.go.id", "notice", "off", "built-in"},
	    {"suffix as prefix is not", "eve@kota.go.id.evil.example", "notice", "off",
	        "built-in"},
	    {"exact beats wildcard", "x@dinkes.kota.go.id", "on_failure", "defer",
	        "domain dinkes.kota.go.id"},
	    {"exact inherits from wildcard", "x@dinkes.kota.go.id", "encrypt", "mandatory",
	        "domain *.kota.go.id"},
	    {"longer wildcard first", "x@sd1.sekolah.kota.go.id", "on_failure", "signed_only",
	        "domain *.sekolah.kota.go.id"},
	    {"longer wildcard inherits", "x@sd1.sekolah.kota.go.id", "aes_gcm", "never",
	        "domain *.kota.go.id"},
	    {"wildcard escrow does not reach subdomains", "x@dinas.kota.go.id", "escrow",
	        "none", "built-in"},
	    {"department by address", "sekda@kota.go.id", "signer", "role pimpinan@kota.go.id",
	        "department pimpinan"},
	    {"address beats domain member", "sekda@kota.go.id", "aes_gcm", "if_capable",
	        "built-in"},
	    {"department oaep", "sekda@kota.go.id", "rsa_oaep", "on", "department pimpinan"},
	    {"user beats department", "walikota@kota.go.id", "signer", "personal",
	        "user walikota@kota.go.id"},
	    {"department by subdomain", "x@dishub.kota.go.id", "signer",
	        "system noreply@dishub.kota.go.id", "department dishub"},
	    {"department by wildcard member", "x@terminal.dishub.kota.go.id", "monitor", "on",
	        "department dishub"},
	    {"department beats domain", "x@dishub.kota.go.id", "encrypt", "opportunistic",
	        "department dishub"},
	    {"user beats department monitor", "audit@dishub.kota.go.id", "monitor", "off",
	        "user audit@dishub.kota.go.id"},
	    {"user", "bob@kota.go.id", "encrypt", "never", "user bob@kota.go.id"},
	    {"user, other case", "BOB@Kota.Go.Id", "encrypt", "never", "user bob@kota.go.id"},
	    {"user inherits", "bob@kota.go.id", "escrow", "arsip@kota.go.id",
	        "domain kota.go.id"},
	    {"notice text from domain", "x@dinsos.kota.go.id", "notice_text", "Ditandatangani.",
	        "domain dinsos.kota.go.id"},
	    {"notice text built-in", "alice@kota.go.id", "notice_text", POLICY_NOTICE_DEFAULT,
	        "built-in"},
	    {"external sender", "carol@partner.example", "sign", "always", "global"},
	    {"no sender", NULL, "sign", "always", "global"},
	    {"no domain", "postmaster", "encrypt", "opportunistic", "global"},
	};
	const struct policy_out *p = *state;
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct row_facts rf = {cases[i].sender, 0, NULL, NOHDR, {CAROL}};
		struct policy_out_decision d;
		const struct policy_trace *got;

		decide_row(p, &rf, &d);
		got = trace_first(&d, cases[i].what);
		assert_non_null(got);
		if (strcmp(got->value, cases[i].want_value) != 0 ||
		    strcmp(got->source, cases[i].want_source) != 0) {
			print_message("%s: got %s=%s from %s, want %s from %s\n", cases[i].name,
			    cases[i].what, got->value, got->source, cases[i].want_value,
			    cases[i].want_source);
			failures++;
		}
		policy_out_decision_free(&d);
	}
	assert_int_equal(failures, 0);
}

/* The trace names the matching rules: every domain rule, most specific first. */
static void
test_trace_matches(void **state)
{
	struct row_facts rf = {"x@dinkes.kota.go.id", 1, NULL, NOHDR, {CAROL}};
	struct policy_out_decision d;

	decide_row(*state, &rf, &d);
	assert_string_equal(d.trace[0].what, "domain");
	assert_string_equal(d.trace[0].value, "dinkes.kota.go.id");
	assert_string_equal(d.trace[1].what, "domain");
	assert_string_equal(d.trace[1].value, "*.kota.go.id");
	assert_string_equal(trace_first(&d, "department")->value, "-");
	assert_string_equal(trace_first(&d, "user")->value, "-");
	policy_out_decision_free(&d);

	rf.sender = "eve@evilkota.go.id";
	decide_row(*state, &rf, &d);
	assert_string_equal(trace_first(&d, "domain")->value, "-");
	assert_string_equal(trace_first(&d, "department")->value, "-");
	policy_out_decision_free(&d);

	rf.sender = "x@terminal.dishub.kota.go.id";
	decide_row(*state, &rf, &d);
	assert_string_equal(trace_first(&d, "department")->value, "dishub");
	assert_string_equal(
	    trace_first(&d, "department")->source, "member *.dishub.kota.go.id");
	policy_out_decision_free(&d);
}

/* Triggers: tags, headers, classification; they raise and never lower. */
static void
test_triggers_table(void **state)
{
	static const struct {
		const char *name;
		struct row_facts rf;
		const char *want_encrypt; /* effective encrypt after the triggers */
		const char *want_source;
		const char *want_subject; /* NULL: unchanged */
		const char *want_class;
		int want_unknown;
		const char *want_actions;
	} cases[] = {
	    /* subject tags */
	    {"tag", {"alice@kota.go.id", 1, "[RAHASIA] Rapat anggaran", NOHDR, {CAROL, DAVE}},
	        "mandatory", "trigger subject tag [RAHASIA] (raised from opportunistic)",
	        "Rapat anggaran", NULL, 0, "ER"},
	    {"tag, lower case, after Re:",
	        {"alice@kota.go.id", 1, "Re: [rahasia] Rapat", NOHDR, {CAROL, DAVE}},
	        "mandatory", "trigger subject tag [RAHASIA] (raised from opportunistic)",
	        "Re: Rapat", NULL, 0, "ER"},
	    {"tag at the end", {"alice@kota.go.id", 1, "Rapat [Rahasia]  ", NOHDR, {CAROL}},
	        "mandatory", "trigger subject tag [RAHASIA] (raised from opportunistic)",
	        "Rapat", NULL, 0, "E"},
	    {"two tags, twice",
	        {"alice@kota.go.id", 1, "[RAHASIA][encrypt] A [RAHASIA] B", NOHDR, {CAROL}},
	        "mandatory", "trigger subject tag [RAHASIA] (raised from opportunistic)", "A B",
	        NULL, 0, "E"},
	    {"tag only", {"alice@kota.go.id", 1, "[RAHASIA]", NOHDR, {CAROL}}, "mandatory",
	        "trigger subject tag [RAHASIA] (raised from opportunistic)", "", NULL, 0, "E"},
	    {"word without brackets", {"alice@kota.go.id", 1, "RAHASIA: rapat", NOHDR, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 0, "U"},
	    {"no subject", {"alice@kota.go.id", 1, NULL, NOHDR, {DAVE}}, "opportunistic",
	        "global", NULL, NULL, 0, "U"},
	    {"tag raises even never", {"bob@kota.go.id", 1, "[RAHASIA] x", NOHDR, {DAVE}},
	        "mandatory", "trigger subject tag [RAHASIA] (raised from never)", "x", NULL, 0,
	        "R"},
	    /* classification */
	    {"Rahasia",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Rahasia"}}, {DAVE}},
	        "mandatory", "trigger classification Rahasia (raised from opportunistic)", NULL,
	        "Rahasia", 0, "R"},
	    {"Sangat Rahasia, blanks and case",
	        {"alice@kota.go.id", 1, "Rapat", {{"x-klasifikasi", "  sangat\t RAHASIA \r\n"}},
	            {CAROL, DAVE}},
	        "mandatory",
	        "trigger classification Sangat Rahasia (raised from opportunistic)", NULL,
	        "Sangat Rahasia", 0, "ER"},
	    {"Sifat header", {"alice@kota.go.id", 1, "Rapat", {{"Sifat", "Rahasia"}}, {DAVE}},
	        "mandatory", "trigger classification Rahasia (raised from opportunistic)", NULL,
	        "Rahasia", 0, "R"},
	    {"Terbatas",
	        {"bob@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Terbatas"}}, {CAROL, DAVE}},
	        "opportunistic", "trigger classification Terbatas (raised from never)", NULL,
	        "Terbatas", 0, "EU"},
	    {"Biasa does not lower mandatory",
	        {"x@dinas.kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Biasa"}}, {CAROL, DAVE}},
	        "mandatory", "domain *.kota.go.id", NULL, "Biasa", 0, "EQ"},
	    {"Terbatas does not lower mandatory",
	        {"x@dinas.kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Terbatas"}}, {DAVE}},
	        "mandatory", "domain *.kota.go.id", NULL, "Terbatas", 0, "Q"},
	    {"Biasa does not lower never",
	        {"bob@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Biasa"}}, {CAROL}}, "never",
	        "user bob@kota.go.id", NULL, "Biasa", 0, "U"},
	    {"unknown value",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Konfidensial"}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 1, "U"},
	    {"empty value", {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", ""}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 1, "U"},
	    {"NULL value", {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", NULL}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 1, "U"},
	    {"prefix of a level is unknown",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Rahasia Sekali"}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 1, "U"},
	    {"most restrictive level is reported",
	        {"alice@kota.go.id", 1, "Rapat",
	            {{"X-Klasifikasi", "Sangat Rahasia"}, {"Sifat", "Terbatas"}}, {CAROL}},
	        "mandatory",
	        "trigger classification Sangat Rahasia (raised from opportunistic)", NULL,
	        "Sangat Rahasia", 0, "E"},
	    {"other header ignored",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Classification", "Rahasia"}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 0, "U"},
	    /* header trigger */
	    {"header trigger",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Segel-Encrypt", " YES "}}, {CAROL, DAVE}},
	        "mandatory", "trigger header X-Segel-Encrypt: yes (raised from opportunistic)",
	        NULL, NULL, 0, "ER"},
	    {"header trigger, other value",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Segel-Encrypt", "no"}}, {DAVE}},
	        "opportunistic", "global", NULL, NULL, 0, "U"},
	    {"header trigger raises on_failure",
	        {"x@dinas.kota.go.id", 1, "Rapat", {{"x-segel-encrypt", "yes"}}, {DAVE}},
	        "mandatory", "domain *.kota.go.id", NULL, NULL, 0, "R"},
	    {"signed_only tag does not lower reject",
	        {"alice@kota.go.id", 1, "[ENCRYPT] Rapat", NOHDR, {CAROL, DAVE}}, "mandatory",
	        "trigger subject tag [ENCRYPT] (raised from opportunistic)", "Rapat", NULL, 0,
	        "ER"},
	    {"signed_only tag keeps quarantine",
	        {"x@dinas.kota.go.id", 1, "[ENCRYPT] Rapat", NOHDR, {CAROL, DAVE}}, "mandatory",
	        "domain *.kota.go.id", "Rapat", NULL, 0, "EQ"},
	    {"signed_only tag applies where the policy has it",
	        {"x@sd1.sekolah.kota.go.id", 1, "[ENCRYPT] Rapat", NOHDR, {CAROL, DAVE}},
	        "mandatory", "domain *.kota.go.id", "Rapat", NULL, 0, "EU"},
	};
	const struct policy_out *p = *state;
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_out_decision d;
		const struct policy_trace *got;
		char got_actions[MAX_RCPTS + 1];

		decide_row(p, &cases[i].rf, &d);
		got = trace_last(&d, "encrypt");
		actions_of(&d, got_actions);
		if (strcmp(got->value, cases[i].want_encrypt) != 0 ||
		    strcmp(got->source, cases[i].want_source) != 0 ||
		    strcmp(str_or(d.subject, "(unchanged)"),
		        str_or(cases[i].want_subject, "(unchanged)")) != 0 ||
		    strcmp(str_or(d.classification, "-"), str_or(cases[i].want_class, "-")) !=
		        0 ||
		    d.classification_unknown != cases[i].want_unknown ||
		    strcmp(got_actions, cases[i].want_actions) != 0) {
			print_message(
			    "%s: got encrypt=%s from %s, subject %s, class %s unknown %d, "
			    "actions %s\n",
			    cases[i].name, got->value, got->source,
			    str_or(d.subject, "(unchanged)"), str_or(d.classification, "-"),
			    d.classification_unknown, got_actions);
			failures++;
		}
		policy_out_decision_free(&d);
	}
	assert_int_equal(failures, 0);
}

/* The trigger lines of the trace: on_failure raised, Biasa raising nothing. */
static void
test_trigger_trace(void **state)
{
	struct row_facts rf = {
	    "x@dinas.kota.go.id", 1, "[RAHASIA] x", {{"X-Segel-Encrypt", "yes"}}, {DAVE}};
	struct policy_out_decision d;

	decide_row(*state, &rf, &d);
	assert_string_equal(trace_last(&d, "on_failure")->value, "reject");
	assert_string_equal(trace_last(&d, "on_failure")->source,
	    "trigger header X-Segel-Encrypt: yes (raised from quarantine)");
	assert_string_equal(trace_last(&d, "header_protection")->value, "on");
	/* the tag came after the header and found nothing to raise */
	assert_string_equal(trace_last(&d, "trigger")->value, "subject tag [RAHASIA]");
	assert_string_equal(trace_last(&d, "trigger")->source, "matched; nothing to raise");
	assert_string_equal(trace_last(&d, "subject")->value, "x");
	assert_int_equal(d.verdict, POLICY_VERDICT_REJECT);
	policy_out_decision_free(&d);

	rf = (struct row_facts){"alice@kota.go.id", 1, "Rapat",
	    {{"X-Klasifikasi", "Konfidensial\x1b[31m"}}, {DAVE}};
	decide_row(*state, &rf, &d);
	assert_string_equal(
	    trace_last(&d, "trigger")->value, "classification Konfidensial\x1b[31m");
	assert_string_equal(trace_last(&d, "trigger")->source, "unknown value, ignored");
	policy_out_decision_free(&d);
}

/* Every failure action, and the split of mixed recipients. */
static void
test_failure_actions_table(void **state)
{
	static const struct {
		const char *name;
		struct row_facts rf;
		const char *want_actions;
		enum policy_verdict want_verdict;
		const char *want_rcode;
		const char *want_xcode;
		const char *want_text;
		const char *want_encrypted; /* recipient indexes */
		const char *want_other;
		enum policy_rcpt_action want_other_action;
	} cases[] = {
	    {"reject names the missing recipient",
	        {"alice@kota.go.id", 1, "[RAHASIA] Rapat", NOHDR, {CAROL, DAVE}}, "ER",
	        POLICY_VERDICT_REJECT, "550", "5.7.1",
	        "Encryption is mandatory (subject tag [RAHASIA]) but no usable certificate for "
	        "dave@kota.go.id",
	        "", "", POLICY_RCPT_UNENCRYPTED},
	    {"reject names each missing recipient",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Rahasia"}},
	            {DAVE, CAROL, ERIN}},
	        "RER", POLICY_VERDICT_REJECT, "550", "5.7.1",
	        "Encryption is mandatory (classification Rahasia) but no usable certificate "
	        "for "
	        "dave@kota.go.id, erin@kota.go.id",
	        "", "", POLICY_RCPT_UNENCRYPTED},
	    {"reject from a header trigger",
	        {"x@dinas.kota.go.id", 1, "Rapat", {{"X-Segel-Encrypt", "yes"}}, {DAVE}}, "R",
	        POLICY_VERDICT_REJECT, "550", "5.7.1",
	        "Encryption is mandatory (policy: domain *.kota.go.id) but no usable "
	        "certificate "
	        "for dave@kota.go.id",
	        "", "", POLICY_RCPT_UNENCRYPTED},
	    {"defer", {"x@dinkes.kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE}}, "ED",
	        POLICY_VERDICT_DEFER, "451", "4.7.1",
	        "Encryption is mandatory (policy: domain *.kota.go.id) but no usable "
	        "certificate "
	        "for dave@kota.go.id",
	        "", "", POLICY_RCPT_UNENCRYPTED},
	    {"quarantine splits", {"x@dinas.kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE}},
	        "EQ", POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "0", "1",
	        POLICY_RCPT_QUARANTINE},
	    {"quarantine all", {"x@dinas.kota.go.id", 1, "Rapat", NOHDR, {DAVE, ERIN}}, "QQ",
	        POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "", "01", POLICY_RCPT_QUARANTINE},
	    {"signed_only splits",
	        {"x@sd1.sekolah.kota.go.id", 1, "Rapat", NOHDR, {DAVE, CAROL, FRED, ERIN}},
	        "UEEU", POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "12", "03",
	        POLICY_RCPT_UNENCRYPTED},
	    {"mandatory, every recipient has a certificate",
	        {"x@dinas.kota.go.id", 1, "Rapat", NOHDR, {CAROL, FRED}}, "EE",
	        POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "01", "", POLICY_RCPT_UNENCRYPTED},
	    {"opportunistic mixed: no downgrade",
	        {"alice@kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE, FRED}}, "EUE",
	        POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "02", "1", POLICY_RCPT_UNENCRYPTED},
	    {"opportunistic, nobody has a certificate",
	        {"alice@kota.go.id", 1, "Rapat", NOHDR, {DAVE, ERIN}}, "UU",
	        POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "", "01", POLICY_RCPT_UNENCRYPTED},
	    {"never encrypts, even with a certificate",
	        {"bob@kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE}}, "UU",
	        POLICY_VERDICT_ACCEPT, NULL, NULL, NULL, "", "01", POLICY_RCPT_UNENCRYPTED},
	};
	const struct policy_out *p = *state;
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_out_decision d;
		char got_actions[MAX_RCPTS + 1], got_enc[MAX_RCPTS + 1],
		    got_other[MAX_RCPTS + 1];

		decide_row(p, &cases[i].rf, &d);
		actions_of(&d, got_actions);
		copy_of(&d.encrypted, got_enc);
		copy_of(&d.other, got_other);
		if (strcmp(got_actions, cases[i].want_actions) != 0 ||
		    d.verdict != cases[i].want_verdict ||
		    strcmp(str_or(d.reply_rcode, "-"), str_or(cases[i].want_rcode, "-")) != 0 ||
		    strcmp(str_or(d.reply_xcode, "-"), str_or(cases[i].want_xcode, "-")) != 0 ||
		    strcmp(str_or(d.reply_text, "-"), str_or(cases[i].want_text, "-")) != 0 ||
		    strcmp(got_enc, cases[i].want_encrypted) != 0 ||
		    strcmp(got_other, cases[i].want_other) != 0 ||
		    d.other_action != cases[i].want_other_action) {
			print_message(
			    "%s: got actions %s verdict %d %s %s [%s] copies [%s] [%s] "
			    "other action %d\n",
			    cases[i].name, got_actions, d.verdict, str_or(d.reply_rcode, "-"),
			    str_or(d.reply_xcode, "-"), str_or(d.reply_text, "-"), got_enc,
			    got_other, d.other_action);
			failures++;
		}
		policy_out_decision_free(&d);
	}
	assert_int_equal(failures, 0);
}

/* AES-GCM only when policy allows and every recipient of the copy can. */
static void
test_cipher_table(void **state)
{
	static const struct {
		const char *name;
		struct row_facts rf;
		enum policy_cipher want_cipher;
		int want_oaep;
		const char *want_escrow;
	} cases[] = {
	    {"if_capable, all capable", {"walikota@kota.go.id", 1, "x", NOHDR, {CAROL, FRED}},
	        POLICY_CIPHER_AES256_GCM, 1, "arsip@kota.go.id"},
	    {"if_capable, one not", {"walikota@kota.go.id", 1, "x", NOHDR, {CAROL, FRED_CBC}},
	        POLICY_CIPHER_AES256_CBC, 1, "arsip@kota.go.id"},
	    {"if_capable, one not, order",
	        {"sekda@kota.go.id", 1, "x", NOHDR, {CAROL_CBC, FRED}},
	        POLICY_CIPHER_AES256_CBC, 1, "arsip@kota.go.id"},
	    {"recipients of the other copy do not count",
	        {"walikota@kota.go.id", 1, "x", NOHDR, {CAROL, DAVE}}, POLICY_CIPHER_AES256_GCM,
	        1, "arsip@kota.go.id"},
	    {"always", {"alice@kota.go.id", 1, "x", NOHDR, {CAROL_CBC}},
	        POLICY_CIPHER_AES256_GCM, 0, "arsip@kota.go.id"},
	    {"never", {"x@dinas.kota.go.id", 1, "x", NOHDR, {CAROL, FRED}},
	        POLICY_CIPHER_AES256_CBC, 0, NULL},
	    {"no encrypted copy, no escrow", {"alice@kota.go.id", 1, "x", NOHDR, {DAVE}},
	        POLICY_CIPHER_AES256_CBC, 0, NULL},
	};
	const struct policy_out *p = *state;
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_out_decision d;

		decide_row(p, &cases[i].rf, &d);
		if (d.cipher != cases[i].want_cipher || d.rsa_oaep != cases[i].want_oaep ||
		    strcmp(str_or(d.escrow, "-"), str_or(cases[i].want_escrow, "-")) != 0) {
			print_message("%s: got cipher %d oaep %d escrow %s\n", cases[i].name,
			    d.cipher, d.rsa_oaep, str_or(d.escrow, "-"));
			failures++;
		}
		policy_out_decision_free(&d);
	}
	assert_int_equal(failures, 0);
}

/* Who signs, as whom; the notice, header protection and monitor flags. */
static void
test_sign_and_flags_table(void **state)
{
	static const struct {
		const char *name;
		struct row_facts rf;
		int want_sign;
		const char *want_sign_as;
		int want_required;
		const char *want_notice;
		int want_hp;
		int want_monitor;
	} cases[] = {
	    {"personal", {"alice@kota.go.id", 1, "x", NOHDR, {CAROL}}, 1, "alice@kota.go.id", 1,
	        POLICY_NOTICE_DEFAULT, 0, 0},
	    {"may not sign: no signature, no notice",
	        {"alice@kota.go.id", 0, "x", NOHDR, {CAROL}}, 0, NULL, 1, NULL, 0, 0},
	    {"role", {"sekda@kota.go.id", 1, "x", NOHDR, {CAROL}}, 1, "pimpinan@kota.go.id", 1,
	        POLICY_NOTICE_DEFAULT, 0, 0},
	    {"user keeps personal", {"walikota@kota.go.id", 1, "x", NOHDR, {CAROL}}, 1,
	        "walikota@kota.go.id", 1, POLICY_NOTICE_DEFAULT, 0, 0},
	    {"system, monitor", {"x@dishub.kota.go.id", 1, "x", NOHDR, {CAROL}}, 1,
	        "noreply@dishub.kota.go.id", 1, NULL, 0, 1},
	    {"monitor off by user", {"audit@dishub.kota.go.id", 1, "x", NOHDR, {CAROL}}, 1,
	        "noreply@dishub.kota.go.id", 1, NULL, 0, 0},
	    {"sign never", {"robot@kota.go.id", 1, "x", NOHDR, {CAROL}}, 0, NULL, 0, NULL, 0,
	        0},
	    {"sign if_possible", {"intern@kota.go.id", 1, "x", NOHDR, {CAROL}}, 1,
	        "intern@kota.go.id", 0, POLICY_NOTICE_DEFAULT, 0, 0},
	    {"Terbatas raises if_possible to always",
	        {"intern@kota.go.id", 1, "x", {{"X-Klasifikasi", "Terbatas"}}, {CAROL}}, 1,
	        "intern@kota.go.id", 1, POLICY_NOTICE_DEFAULT, 0, 0},
	    {"Terbatas raises never",
	        {"robot@kota.go.id", 1, "x", {{"Sifat", "Terbatas"}}, {CAROL}}, 1,
	        "robot@kota.go.id", 1, POLICY_NOTICE_DEFAULT, 0, 0},
	    {"user notice off", {"bob@kota.go.id", 1, "x", NOHDR, {CAROL}}, 1, "bob@kota.go.id",
	        1, NULL, 0, 0},
	    {"domain notice text", {"x@dinsos.kota.go.id", 1, "x", NOHDR, {CAROL}}, 1,
	        "x@dinsos.kota.go.id", 1, "Ditandatangani.", 0, 0},
	    {"header protection with an encrypted copy",
	        {"x@dinkes.kota.go.id", 1, "x", NOHDR, {CAROL}}, 1, "x@dinkes.kota.go.id", 1,
	        NULL, 1, 0},
	    {"header protection by trigger",
	        {"alice@kota.go.id", 1, "x", {{"X-Segel-Encrypt", "yes"}}, {CAROL}}, 1,
	        "alice@kota.go.id", 1, POLICY_NOTICE_DEFAULT, 1, 0},
	    {"no header protection without encryption",
	        {"alice@kota.go.id", 1, "x", {{"X-Segel-Encrypt", "yes"}}, {DAVE}}, 1,
	        "alice@kota.go.id", 1, POLICY_NOTICE_DEFAULT, 0, 0},
	};
	const struct policy_out *p = *state;
	size_t i;
	int failures = 0;

	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_out_decision d;

		decide_row(p, &cases[i].rf, &d);
		if (d.sign != cases[i].want_sign ||
		    strcmp(str_or(d.sign_as, "-"), str_or(cases[i].want_sign_as, "-")) != 0 ||
		    d.sign_required != cases[i].want_required ||
		    strcmp(str_or(d.notice, "-"), str_or(cases[i].want_notice, "-")) != 0 ||
		    d.header_protection != cases[i].want_hp ||
		    d.monitor != cases[i].want_monitor) {
			print_message(
			    "%s: got sign %d as %s required %d notice %.20s hp %d monitor "
			    "%d\n",
			    cases[i].name, d.sign, str_or(d.sign_as, "-"), d.sign_required,
			    str_or(d.notice, "-"), d.header_protection, d.monitor);
			failures++;
		}
		policy_out_decision_free(&d);
	}
	assert_int_equal(failures, 0);
}

/* The defaults `segelctl init` writes, on an otherwise empty policy. */
static void
test_defaults(void **state)
{
	static const struct {
		const char *name;
		struct row_facts rf;
		const char *want_actions;
		enum policy_verdict want_verdict;
		const char *want_text;
		int want_sign;
		int want_required;
	} cases[] = {
	    {"opportunistic split", {"alice@kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE}},
	        "EU", POLICY_VERDICT_ACCEPT, NULL, 1, 1},
	    {"[RAHASIA] rejects",
	        {"alice@kota.go.id", 1, "[RAHASIA] Rapat", NOHDR, {CAROL, DAVE}}, "ER",
	        POLICY_VERDICT_REJECT,
	        "Encryption is mandatory (subject tag [RAHASIA]) but no usable certificate for "
	        "dave@kota.go.id",
	        1, 1},
	    {"Rahasia rejects",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Rahasia"}}, {DAVE}}, "R",
	        POLICY_VERDICT_REJECT,
	        "Encryption is mandatory (classification Rahasia) but no usable certificate "
	        "for "
	        "dave@kota.go.id",
	        1, 1},
	    {"Sangat Rahasia rejects",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Sangat Rahasia"}}, {DAVE}},
	        "R", POLICY_VERDICT_REJECT,
	        "Encryption is mandatory (classification Sangat Rahasia) but no usable "
	        "certificate "
	        "for dave@kota.go.id",
	        1, 1},
	    {"Rahasia with certificates",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Rahasia"}}, {CAROL, FRED}},
	        "EE", POLICY_VERDICT_ACCEPT, NULL, 1, 1},
	    {"Terbatas",
	        {"alice@kota.go.id", 1, "Rapat", {{"X-Klasifikasi", "Terbatas"}}, {DAVE}}, "U",
	        POLICY_VERDICT_ACCEPT, NULL, 1, 1},
	    {"Sifat is not a default header",
	        {"alice@kota.go.id", 1, "Rapat", {{"Sifat", "Rahasia"}}, {DAVE}}, "U",
	        POLICY_VERDICT_ACCEPT, NULL, 1, 1},
	    {"[ENCRYPT] is not a default tag",
	        {"alice@kota.go.id", 1, "[ENCRYPT] Rapat", NOHDR, {DAVE}}, "U",
	        POLICY_VERDICT_ACCEPT, NULL, 1, 1},
	    {"external sender is not signed",
	        {"carol@partner.example", 0, "Rapat", NOHDR, {DAVE}}, "U",
	        POLICY_VERDICT_ACCEPT, NULL, 0, 1},
	};
	struct policy_out *p;
	size_t i;
	int failures = 0;

	(void)state;
	assert_int_equal(policy_out_new(&p), 0);
	assert_int_equal(policy_out_defaults(p), 0);
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		struct policy_out_decision d;
		char got_actions[MAX_RCPTS + 1];

		decide_row(p, &cases[i].rf, &d);
		actions_of(&d, got_actions);
		if (strcmp(got_actions, cases[i].want_actions) != 0 ||
		    d.verdict != cases[i].want_verdict ||
		    strcmp(str_or(d.reply_text, "-"), str_or(cases[i].want_text, "-")) != 0 ||
		    d.sign != cases[i].want_sign || d.sign_required != cases[i].want_required ||
		    d.notice != NULL || d.monitor != 0 || d.escrow != NULL) {
			print_message(
			    "%s: got actions %s verdict %d [%s] sign %d required %d\n",
			    cases[i].name, got_actions, d.verdict, str_or(d.reply_text, "-"),
			    d.sign, d.sign_required);
			failures++;
		}
		policy_out_decision_free(&d);
	}
	/* twice is an error; an empty policy has the built-in values */
	assert_int_equal(policy_out_defaults(p), SG_ERR_EXISTS);
	policy_out_free(p);

	assert_int_equal(policy_out_new(&p), 0);
	{
		struct row_facts rf = {
		    "alice@kota.go.id", 1, "[RAHASIA] x", NOHDR, {CAROL, DAVE}};
		struct policy_out_decision d;

		decide_row(p, &rf, &d);
		assert_int_equal(d.sign, 1);
		assert_int_equal(d.sign_required, 0);
		assert_null(d.subject);
		assert_string_equal(trace_last(&d, "encrypt")->source, "built-in");
		assert_int_equal(d.encrypted.n, 1);
		assert_int_equal(d.other.n, 1);
		policy_out_decision_free(&d);
	}
	policy_out_free(p);
}

/* A tiny JSON parser: returns the end of one value, or NULL. */
static const char *json_value(const char *s, int depth);

static const char *
json_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

static const char *
json_string(const char *s)
{
	int i;

	if (*s++ != '"')
		return NULL;
	while (*s != '"') {
		if ((unsigned char)*s < 0x20)
			return NULL; /* also the NUL at the end */
		if (*s++ != '\\')
			continue;
		if (*s == 'u') {
			for (i = 1; i <= 4; i++)
				if (strchr("0123456789abcdefABCDEF", s[i]) == NULL ||
				    s[i] == '\0')
					return NULL;
			s += 5;
		} else if (*s != '\0' && strchr("\"\\/bfnrt", *s) != NULL) {
			s++;
		} else {
			return NULL;
		}
	}
	return s + 1;
}

static const char *
json_list(const char *s, int depth, char close, int object)
{
	s = json_ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		if (object) {
			if ((s = json_string(json_ws(s))) == NULL || *(s = json_ws(s)) != ':')
				return NULL;
			s++;
		}
		if ((s = json_value(s, depth + 1)) == NULL)
			return NULL;
		s = json_ws(s);
		if (*s == close)
			return s + 1;
		if (*s++ != ',')
			return NULL;
	}
}

static const char *
json_value(const char *s, int depth)
{
	if (depth > 16)
		return NULL;
	s = json_ws(s);
	if (*s == '{')
		return json_list(s, depth, '}', 1);
	if (*s == '[')
		return json_list(s, depth, ']', 0);
	if (*s == '"')
		return json_string(s);
	if (strncmp(s, "true", 4) == 0 || strncmp(s, "null", 4) == 0)
		return s + 4;
	if (strncmp(s, "false", 5) == 0)
		return s + 5;
	if (*s >= '0' && *s <= '9') {
		while (*s >= '0' && *s <= '9')
			s++;
		return s;
	}
	return NULL;
}

/* Whether s is well-formed UTF-8 (RFC 3629), as JSON must be. */
static int
utf8_valid(const unsigned char *s)
{
	while (*s != '\0') {
		size_t n = *s < 0x80           ? 1
		    : *s >= 0xc2 && *s <= 0xdf ? 2
		    : *s >= 0xe0 && *s <= 0xef ? 3
		    : *s >= 0xf0 && *s <= 0xf4 ? 4
		                               : 0;
		size_t i;

		if (n == 0)
			return 0;
		for (i = 1; i < n; i++)
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		s += n;
	}
	return 1;
}

static int
json_valid(const char *s)
{
	const char *end = json_value(s, 0);

	return end != NULL && *json_ws(end) == '\0' && utf8_valid((const unsigned char *)s);
}

static void
test_json_parser_itself(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
	    {"{}", 1},
	    {"{\"a\":[1,true,null,\"x\\\"y\\u0001\"]}", 1},
	    {"{\"a\":1,}", 0},
	    {"{\"a\" 1}", 0},
	    {"[\"unterminated]", 0},
	    {"\"raw\x01"
	     "control\"",
	        0},
	    {"\"bad \\x escape\"", 0},
	    {"{} {}", 0},
	    {"\"\xff\"", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < TU_ARRAY_LEN(cases); i++) {
		int got = json_valid(cases[i].in);

		if (got != cases[i].want)
			print_message("[%s]: got %d\n", cases[i].in, got);
		assert_int_equal(got, cases[i].want);
	}
}

/* The explanation, as text and as JSON, for decisions of every kind. */
static void
test_explain(void **state)
{
	static const struct row_facts rows[] = {
	    {"alice@kota.go.id", 1, "[RAHASIA] Rapat", {{"X-Klasifikasi", "Rahasia"}},
	        {CAROL, DAVE}},
	    {"alice@kota.go.id", 1, "Rapat \"anggaran\" \\ \x01\x1b[2J \xff\xfe caf\xc3\xa9",
	        {{"X-Klasifikasi", "Rahasia\x7f\"\\"}}, {CAROL, DAVE, FRED_CBC}},
	    {"x@dinas.kota.go.id", 1, "Rapat", NOHDR, {CAROL, DAVE}},
	    {"x@dishub.kota.go.id", 0, NULL, NOHDR, {CAROL}},
	    {NULL, 0, "x", NOHDR, {DAVE}},
	};
	const struct policy_out *p = *state;
	size_t i;

	for (i = 0; i < TU_ARRAY_LEN(rows); i++) {
		struct policy_out_facts f = facts_of(&rows[i]);
		struct policy_out_decision d;
		struct sg_buf text, json;

		assert_int_equal(policy_out_decide(p, &f, &d), 0);
		sg_buf_init(&text, 1 << 16);
		sg_buf_init(&json, 1 << 16);
		assert_int_equal(policy_out_explain_text(&f, &d, &text), 0);
		assert_int_equal(policy_out_explain_json(&f, &d, &json), 0);
		if (!json_valid(sg_buf_str(&json)))
			print_message("invalid JSON: %s\n", sg_buf_str(&json));
		assert_int_equal(json_valid(sg_buf_str(&json)), 1);
		/* no raw control byte reaches a terminal */
		assert_null(memchr(text.data, 0x1b, text.len));
		assert_null(memchr(text.data, 0x01, text.len));
		assert_null(memchr(text.data, 0x7f, text.len));
		assert_int_equal(utf8_valid(text.data), 1);
		if (i == 0) {
			assert_non_null(strstr(sg_buf_str(&text),
			    "\n  encrypt            mandatory  <- trigger classification "
			    "Rahasia "
			    "(raised from opportunistic)\n"));
			assert_non_null(strstr(sg_buf_str(&text),
			    "\n  trigger            subject tag [RAHASIA]  <- matched; nothing "
			    "to "
			    "raise\n"));
			assert_non_null(strstr(sg_buf_str(&text),
			    "\n  domain             kota.go.id  <- sender domain "
			    "kota.go.id\n"));
			assert_non_null(strstr(sg_buf_str(&text),
			    "\nverdict: reject: 550 5.7.1 Encryption is mandatory "
			    "(classification "
			    "Rahasia) but no usable certificate for dave@kota.go.id\n"));
			assert_non_null(
			    strstr(sg_buf_str(&text), "\nsubject: [RAHASIA] Rapat -> Rapat\n"));
			assert_non_null(strstr(sg_buf_str(&text),
			    "\n  dave@kota.go.id: no certificate -> reject\n"));
			assert_non_null(strstr(sg_buf_str(&json), "\"verdict\":\"reject\""));
			assert_non_null(strstr(sg_buf_str(&json), "\"reply_xcode\":\"5.7.1\""));
			assert_non_null(
			    strstr(sg_buf_str(&json), "\"classification\":\"Rahasia\""));
			assert_non_null(strstr(sg_buf_str(&json),
			    "{\"what\":\"encrypt\",\"value\":\"mandatory\",\"source\":"
			    "\"trigger "
			    "classification Rahasia (raised from opportunistic)\"}"));
		}
		if (i == 1) {
			assert_non_null(
			    strstr(sg_buf_str(&text), "\\x01\\x1b[2J \\xff\\xfe caf\xc3\xa9"));
			assert_non_null(strstr(sg_buf_str(&json),
			    "\"subject\":\"Rapat \\\"anggaran\\\" \\\\ \\u0001\\u001b[2J "
			    "\\ufffd\\ufffd caf\xc3\xa9\""));
			assert_int_equal(d.classification_unknown, 1);
		}
		if (i == 2) {
			assert_non_null(strstr(sg_buf_str(&text),
			    "\nencrypted copy: carol@partner.example; aes-256-cbc, rsa-oaep "
			    "off, "
			    "header protection off, escrow none\n"));
			assert_non_null(strstr(sg_buf_str(&text),
			    "\nother copy (quarantined): dave@kota.go.id\n"));
			assert_non_null(strstr(sg_buf_str(&json),
			    "\"other\":{\"recipients\":[\"dave@kota.go.id\"],\"action\":"
			    "\"quarantine\"}"));
		}
		if (i == 3) {
			assert_non_null(strstr(sg_buf_str(&text), "\nsign: no\n"));
			assert_non_null(strstr(sg_buf_str(&text), "\nmonitor: on"));
			assert_non_null(strstr(sg_buf_str(&json), "\"monitor\":true"));
		}
		if (i == 4)
			assert_non_null(strstr(sg_buf_str(&json), "\"sender\":null"));
		sg_buf_free(&text);
		sg_buf_free(&json);
		policy_out_decision_free(&d);
	}
}

/* A full buffer and facts that are not the decision's are errors. */
static void
test_explain_errors(void **state)
{
	struct row_facts rf = {"alice@kota.go.id", 1, "x", NOHDR, {CAROL, DAVE}};
	struct policy_out_facts f = facts_of(&rf);
	struct policy_out_decision d;
	struct sg_buf b;

	assert_int_equal(policy_out_decide(*state, &f, &d), 0);
	sg_buf_init(&b, 64);
	assert_int_equal(policy_out_explain_text(&f, &d, &b), SG_ERR_LIMIT);
	sg_buf_free(&b);
	sg_buf_init(&b, 64);
	assert_int_equal(policy_out_explain_json(&f, &d, &b), SG_ERR_LIMIT);
	sg_buf_free(&b);
	sg_buf_init(&b, 1 << 16);
	f.nrcpts = 1;
	assert_int_equal(policy_out_explain_text(&f, &d, &b), SG_ERR_INVALID_ARG);
	assert_int_equal(policy_out_explain_json(&f, &d, &b), SG_ERR_INVALID_ARG);
	sg_buf_free(&b);
	policy_out_decision_free(&d);
	policy_out_decision_free(&d); /* twice is harmless */
	policy_out_decision_free(NULL);
}

/* The builders refuse bad values and duplicates and leave the policy as it was. */
static void
test_builder_errors(void **state)
{
	static const char *const good[] = {"dinas.kota.go.id"};
	static const char *const bad_member[] = {"dinas..kota.go.id"};
	static const char *const bad_address[] = {"@kota.go.id"};
	static const struct policy_require ok_req = {.encrypt = POLICY_ENCRYPT_MANDATORY};
	static const struct policy_require bad_req = {.encrypt = (enum policy_encrypt_mode)7};
	static const struct {
		const char *name;
		struct policy_settings s;
	} bad_settings[] = {
	    {"sign out of range", {.sign = (enum policy_sign_mode)4}},
	    {"encrypt out of range", {.encrypt = (enum policy_encrypt_mode) - 1}},
	    {"on_failure out of range", {.on_failure = (enum policy_on_failure)5}},
	    {"signer out of range", {.signer = (enum policy_signer_kind)4}},
	    {"flag out of range", {.monitor = (enum policy_flag)3}},
	    {"gcm out of range", {.aes_gcm = (enum policy_gcm)4}},
	    {"role without address", {.signer = POLICY_SIGNER_ROLE}},
	    {"system with a bad address",
	        {.signer = POLICY_SIGNER_SYSTEM, .signer_address = "noreply"}},
	    {"address without role", {.signer_address = "a@kota.go.id"}},
	    {"personal with address",
	        {.signer = POLICY_SIGNER_PERSONAL, .signer_address = "a@kota.go.id"}},
	    {"notice with a control byte", {.notice_text = "a\x1b[2Jb"}},
	    {"empty notice", {.notice_text = ""}},
	    {"escrow with a blank in front", {.escrow = " arsip@kota.go.id"}},
	};
	static const char *const bad_domains[] = {"", "*.", "*", "kota..go.id", "*kota.go.id",
	    "kota.go.id.", ".kota.go.id", "kota go.id", "a.*.kota.go.id", "kota.go.id\n"};
	static const char *const bad_addresses[] = {"", "bob", "@kota.go.id", "bob@",
	    "bob@kota..go.id", "b ob@kota.go.id", "bob@*.kota"};
	struct policy_out *p;
	struct policy_settings ok = {.sign = POLICY_SIGN_ALWAYS};
	size_t i;

	(void)state;
	p = make_policy();
	for (i = 0; i < TU_ARRAY_LEN(bad_settings); i++) {
		int got = policy_out_add_domain(p, "neu.example", &bad_settings[i].s);

		if (got != SG_ERR_CONFIG)
			print_message("%s: got %d\n", bad_settings[i].name, got);
		assert_int_equal(got, SG_ERR_CONFIG);
		assert_int_equal(policy_out_set_global(p, &bad_settings[i].s), SG_ERR_CONFIG);
	}
	for (i = 0; i < TU_ARRAY_LEN(bad_domains); i++) {
		if (policy_out_add_domain(p, bad_domains[i], &ok) != SG_ERR_CONFIG)
			print_message("domain [%s] accepted\n", bad_domains[i]);
		assert_int_equal(policy_out_add_domain(p, bad_domains[i], &ok), SG_ERR_CONFIG);
	}
	for (i = 0; i < TU_ARRAY_LEN(bad_addresses); i++) {
		if (policy_out_add_user(p, bad_addresses[i], &ok) != SG_ERR_CONFIG)
			print_message("address [%s] accepted\n", bad_addresses[i]);
		assert_int_equal(policy_out_add_user(p, bad_addresses[i], &ok), SG_ERR_CONFIG);
	}
	assert_int_equal(policy_out_add_domain(p, NULL, &ok), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_domain(p, "neu.example", NULL), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_domain(p, "KOTA.go.id", &ok), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_user(p, "Bob@kota.go.id", &ok), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_department(p, "dishub", good, 1, &ok), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_department(p, "neu", good, 0, &ok), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_department(p, "neu", NULL, 1, &ok), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_add_department(p, "neu", bad_member, 1, &ok), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_add_department(p, "neu", bad_address, 1, &ok), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_department(p, "", good, 1, &ok), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_subject_tag(p, "[rahasia]", &ok_req), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_subject_tag(p, "", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_subject_tag(p, " [X]", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_subject_tag(p, "[X]", &bad_req), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_subject_tag(p, "[X]", NULL), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_add_header_trigger(p, "X Bad", "yes", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_add_header_trigger(p, "X-A:", "yes", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_header_trigger(p, "X-A", "", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_add_header_trigger(p, "x-segel-encrypt", "YES", &ok_req), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_header_trigger(p, "x-segel-encrypt", "ja", &ok_req), 0);
	assert_int_equal(policy_out_add_class_header(p, "x-klasifikasi"), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_class_header(p, "Bad Header"), SG_ERR_CONFIG);
	assert_int_equal(policy_out_add_class_level(p, "rahasia", &ok_req), SG_ERR_EXISTS);
	assert_int_equal(policy_out_add_class_level(p, "Rahasia\n", &ok_req), SG_ERR_CONFIG);
	assert_int_equal(policy_out_set_max_rcpts(p, 0), SG_ERR_CONFIG);
	assert_int_equal(
	    policy_out_set_max_rcpts(p, POLICY_MAX_RCPTS_LIMIT + 1), SG_ERR_CONFIG);

	/* nothing of the refused changed the decisions */
	{
		struct row_facts rf = {"x@neu.example", 1, "x", NOHDR, {DAVE}};
		struct policy_out_decision d;

		decide_row(p, &rf, &d);
		assert_string_equal(trace_first(&d, "domain")->value, "-");
		assert_string_equal(trace_first(&d, "sign")->source, "global");
		policy_out_decision_free(&d);
	}
	policy_out_free(p);
	policy_out_free(NULL);
}

/* Recipient limits and facts the caller must not pass. */
static void
test_limits(void **state)
{
	const struct policy_out *p = *state;
	struct policy_rcpt *rc = calloc(POLICY_MAX_RCPTS_LIMIT + 1, sizeof(*rc));
	char(*addr)[32] = calloc(POLICY_MAX_RCPTS_LIMIT + 1, sizeof(*addr));
	struct policy_header hdr = {NULL, "x"};
	struct policy_out_facts f;
	struct policy_out_decision d;
	struct policy_out *small;
	size_t i;

	assert_non_null(rc);
	assert_non_null(addr);
	for (i = 0; i <= POLICY_MAX_RCPTS_LIMIT; i++) {
		snprintf(addr[i], sizeof(addr[i]), "r%zu@kota.go.id", i);
		rc[i].address = addr[i];
		rc[i].has_cert = i % 2;
	}
	memset(&f, 0, sizeof(f));
	f.sender = "alice@kota.go.id";
	f.may_sign = 1;
	f.subject = "Rapat";
	f.rcpts = rc;

	/* the default maximum, and one more */
	f.nrcpts = POLICY_MAX_RCPTS_DEFAULT;
	assert_int_equal(policy_out_decide(p, &f, &d), 0);
	assert_int_equal(d.nrcpts, POLICY_MAX_RCPTS_DEFAULT);
	assert_int_equal(d.encrypted.n, POLICY_MAX_RCPTS_DEFAULT / 2);
	assert_int_equal(d.other.n, POLICY_MAX_RCPTS_DEFAULT / 2);
	assert_int_equal(d.encrypted.rcpts[0], 1);
	assert_int_equal(d.other.rcpts[0], 0);
	policy_out_decision_free(&d);
	f.nrcpts = POLICY_MAX_RCPTS_DEFAULT + 1;
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_LIMIT);
	assert_null(d.trace);
	assert_null(d.rcpt);

	/* a reject naming 1000 recipients stays a short SMTP reply */
	f.nrcpts = POLICY_MAX_RCPTS_DEFAULT;
	f.subject = "[RAHASIA] Rapat";
	assert_int_equal(policy_out_decide(p, &f, &d), 0);
	assert_int_equal(d.verdict, POLICY_VERDICT_REJECT);
	assert_true(strlen(d.reply_text) < 450);
	assert_non_null(strstr(d.reply_text, "certificate for r0@kota.go.id, r2@kota.go.id, "));
	assert_non_null(strstr(d.reply_text, " more"));
	policy_out_decision_free(&d);

	/* the configured maximum, up to its bound */
	assert_int_equal(policy_out_new(&small), 0);
	assert_int_equal(policy_out_set_max_rcpts(small, 2), 0);
	f.nrcpts = 3;
	assert_int_equal(policy_out_decide(small, &f, &d), SG_ERR_LIMIT);
	f.nrcpts = 2;
	assert_int_equal(policy_out_decide(small, &f, &d), 0);
	policy_out_decision_free(&d);
	assert_int_equal(policy_out_set_max_rcpts(small, POLICY_MAX_RCPTS_LIMIT), 0);
	f.nrcpts = POLICY_MAX_RCPTS_LIMIT;
	f.subject = "Rapat";
	assert_int_equal(policy_out_decide(small, &f, &d), 0);
	assert_int_equal(d.encrypted.n, POLICY_MAX_RCPTS_LIMIT / 2);
	assert_int_equal(d.other.n, POLICY_MAX_RCPTS_LIMIT / 2);
	policy_out_decision_free(&d);
	f.nrcpts = POLICY_MAX_RCPTS_LIMIT + 1;
	assert_int_equal(policy_out_decide(small, &f, &d), SG_ERR_LIMIT);
	policy_out_free(small);

	/* facts that cannot be */
	f.nrcpts = 0;
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_INVALID_ARG);
	f.nrcpts = 2;
	rc[1].address = NULL;
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_INVALID_ARG);
	rc[1].address = addr[1];
	f.headers = &hdr;
	f.nheaders = 1;
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_INVALID_ARG);
	f.headers = NULL;
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_INVALID_ARG);
	f.nheaders = 0;
	f.sender = NULL;
	assert_int_equal(policy_out_decide(p, &f, &d), SG_ERR_INVALID_ARG);
	assert_int_equal(policy_out_decide(NULL, &f, &d), SG_ERR_INVALID_ARG);
	assert_int_equal(policy_out_decide(p, NULL, &d), SG_ERR_INVALID_ARG);
	free(addr);
	free(rc);
}

/* The reply holds printable ASCII without '%' whatever the addresses. */
static void
test_reply_text_is_safe(void **state)
{
	struct row_facts rf = {"alice@kota.go.id", 1, "[RAHASIA] x", NOHDR,
	    {{"100%\r\n250 ok@kota.go.id", 0, 0}, {"d\xc3\xa9@kota.go.id", 0, 0}}};
	struct policy_out_decision d;
	const char *s;

	decide_row(*state, &rf, &d);
	assert_int_equal(d.verdict, POLICY_VERDICT_REJECT);
	assert_string_equal(d.reply_text,
	    "Encryption is mandatory (subject tag [RAHASIA]) but no usable certificate for "
	    "100???250 ok@kota.go.id, d??@kota.go.id");
	for (s = d.reply_text; *s != '\0'; s++)
		assert_true(*s >= 0x20 && *s <= 0x7e && *s != '%');
	policy_out_decision_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inheritance_table),
	    cmocka_unit_test(test_trace_matches),
	    cmocka_unit_test(test_triggers_table),
	    cmocka_unit_test(test_trigger_trace),
	    cmocka_unit_test(test_failure_actions_table),
	    cmocka_unit_test(test_cipher_table),
	    cmocka_unit_test(test_sign_and_flags_table),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_json_parser_itself),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_explain_errors),
	    cmocka_unit_test(test_builder_errors),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_reply_text_is_safe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
