/*
 * outbound.c - the outbound policy model and its builders.
 *
 * A struct policy_out holds the global settings, the domain, department
 * and user rules, and the triggers.  The builders check every value and
 * copy every string, so a policy never points into the caller's memory
 * and a bad setting fails at load time with SG_ERR_CONFIG, not at
 * decision time.  The decision is in outbound_resolve.c (inheritance),
 * outbound_trigger.c (triggers) and outbound_decide.c (per recipient);
 * outbound_explain.c prints it.
 *
 * SECURITY: names are checked against small character sets and length
 * caps here, so the decision and the explanation can print them.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outbound_int.h"

#define NAME_MAX_LEN 64
#define DOMAIN_MAX_LEN 253
#define ADDRESS_MAX_LEN 254
#define NOTICE_MAX_LEN 2048
#define VALUE_MAX_LEN 128

/* Printable ASCII, no leading or trailing blank, 1..max bytes. */
static int
text_ok(const char *s, size_t max)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* "kota.go.id", or "*.kota.go.id" when wildcard is allowed. */
static int
domain_ok(const char *s, int wildcard)
{
	size_t i, n;

	if (s == NULL)
		return 0;
	if (wildcard && strncmp(s, "*.", 2) == 0)
		s += 2;
	if ((n = strlen(s)) == 0 || n > DOMAIN_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '-' || (c == '.' && s[i + 1] != '.')))
			return 0;
	}
	return 1;
}

static int
address_ok(const char *s)
{
	const char *at;

	if (!text_ok(s, ADDRESS_MAX_LEN) || strchr(s, ' ') != NULL ||
	    (at = strrchr(s, '@')) == NULL || at == s)
		return 0;
	return domain_ok(at + 1, 0);
}

/* An RFC 5322 field name: printable ASCII without ':' or space. */
static int
field_name_ok(const char *s)
{
	return text_ok(s, NAME_MAX_LEN) && strpbrk(s, ": ") == NULL;
}

/* The notice may hold line breaks and UTF-8; no other control bytes. */
static int
notice_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > NOTICE_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
			return 0;
	return 1;
}

static int
settings_check(const struct policy_settings *s)
{
	int role = s->signer == POLICY_SIGNER_ROLE || s->signer == POLICY_SIGNER_SYSTEM;

	if ((unsigned)s->sign > POLICY_SIGN_ALWAYS ||
	    (unsigned)s->encrypt > POLICY_ENCRYPT_MANDATORY ||
	    (unsigned)s->on_failure > POLICY_FAIL_REJECT ||
	    (unsigned)s->signer > POLICY_SIGNER_SYSTEM ||
	    (unsigned)s->notice > POLICY_FLAG_ON ||
	    (unsigned)s->header_protection > POLICY_FLAG_ON ||
	    (unsigned)s->aes_gcm > POLICY_GCM_ALWAYS ||
	    (unsigned)s->rsa_oaep > POLICY_FLAG_ON || (unsigned)s->monitor > POLICY_FLAG_ON)
		return SG_ERR_CONFIG;
	if (role ? !address_ok(s->signer_address) : s->signer_address != NULL)
		return SG_ERR_CONFIG;
	if (s->notice_text != NULL && !notice_ok(s->notice_text))
		return SG_ERR_CONFIG;
	if (s->escrow != NULL && s->escrow[0] != '\0' && !text_ok(s->escrow, ADDRESS_MAX_LEN))
		return SG_ERR_CONFIG;
	return 0;
}

static int
require_check(const struct policy_require *r)
{
	if (r == NULL || (unsigned)r->sign > POLICY_SIGN_ALWAYS ||
	    (unsigned)r->encrypt > POLICY_ENCRYPT_MANDATORY ||
	    (unsigned)r->on_failure > POLICY_FAIL_REJECT ||
	    (unsigned)r->header_protection > POLICY_FLAG_ON)
		return SG_ERR_CONFIG;
	return 0;
}

static void
rule_clear(struct policy_rule *r)
{
	size_t i;

	free(r->key);
	for (i = 0; i < r->nmembers; i++)
		free(r->members[i]);
	free(r->members);
	for (i = 0; i < sizeof(r->own) / sizeof(r->own[0]); i++)
		free(r->own[i]);
	memset(r, 0, sizeof(*r));
}

/* Copies one string setting into own[slot]; NULL stays NULL. */
static int
own_string(struct policy_rule *r, int slot, const char **field)
{
	if (*field == NULL)
		return 0;
	if ((r->own[slot] = strdup(*field)) == NULL)
		return SG_ERR_NOMEM;
	*field = r->own[slot];
	return 0;
}

/* Fills r (all zero) with key and a checked, owned copy of s. */
static int
rule_fill(struct policy_rule *r, const char *key, const struct policy_settings *s)
{
	if (s == NULL || settings_check(s) != 0)
		return SG_ERR_CONFIG;
	r->set = *s;
	if ((key != NULL && (r->key = strdup(key)) == NULL) ||
	    own_string(r, 0, &r->set.signer_address) != 0 ||
	    own_string(r, 1, &r->set.notice_text) != 0 ||
	    own_string(r, 2, &r->set.escrow) != 0) {
		rule_clear(r);
		return SG_ERR_NOMEM;
	}
	return 0;
}

/* Room for one more element of size bytes after n; NULL when out of memory. */
static void *
grow(void *base, size_t n, size_t size)
{
	if (n >= SIZE_MAX / size - 1)
		return NULL;
	return realloc(base, (n + 1) * size);
}

static int
rule_exists(const struct policy_rule *rules, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(rules[i].key, key) == 0)
			return 1;
	return 0;
}

/* Appends a rule for key to *rules; *slot is the new (filled) rule. */
static int
rule_append(struct policy_rule **rules, size_t *n, const char *key,
    const struct policy_settings *s, struct policy_rule **slot)
{
	struct policy_rule r, *nr;
	int rv;

	*slot = NULL;
	if (rule_exists(*rules, *n, key))
		return SG_ERR_EXISTS;
	memset(&r, 0, sizeof(r));
	if ((rv = rule_fill(&r, key, s)) != 0)
		return rv;
	if ((nr = grow(*rules, *n, sizeof(*nr))) == NULL) {
		rule_clear(&r);
		return SG_ERR_NOMEM;
	}
	*rules = nr;
	nr[*n] = r;
	*slot = &nr[(*n)++];
	return 0;
}

int
policy_out_new(struct policy_out **out)
{
	struct policy_out *p;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SG_ERR_NOMEM;
	p->max_rcpts = POLICY_MAX_RCPTS_DEFAULT;
	*out = p;
	return 0;
}

static void
triggers_free(struct policy_trigger *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].value);
	}
	free(t);
}

void
policy_out_free(struct policy_out *p)
{
	size_t i;

	if (p == NULL)
		return;
	rule_clear(&p->global);
	for (i = 0; i < p->ndomains; i++)
		rule_clear(&p->domains[i]);
	for (i = 0; i < p->ndepts; i++)
		rule_clear(&p->depts[i]);
	for (i = 0; i < p->nusers; i++)
		rule_clear(&p->users[i]);
	free(p->domains);
	free(p->depts);
	free(p->users);
	triggers_free(p->tags, p->ntags);
	triggers_free(p->headers, p->nheaders);
	triggers_free(p->levels, p->nlevels);
	for (i = 0; i < p->nclass_headers; i++)
		free(p->class_headers[i]);
	free(p->class_headers);
	free(p);
}

int
policy_out_set_global(struct policy_out *p, const struct policy_settings *s)
{
	struct policy_rule r;
	int rv;

	memset(&r, 0, sizeof(r));
	if ((rv = rule_fill(&r, NULL, s)) != 0)
		return rv;
	rule_clear(&p->global);
	p->global = r;
	return 0;
}

int
policy_out_add_domain(
    struct policy_out *p, const char *pattern, const struct policy_settings *s)
{
	struct policy_rule *r;

	if (!domain_ok(pattern, 1))
		return SG_ERR_CONFIG;
	return rule_append(&p->domains, &p->ndomains, pattern, s, &r);
}

int
policy_out_add_user(struct policy_out *p, const char *address, const struct policy_settings *s)
{
	struct policy_rule *r;

	if (!address_ok(address))
		return SG_ERR_CONFIG;
	return rule_append(&p->users, &p->nusers, address, s, &r);
}

int
policy_out_add_department(struct policy_out *p, const char *name, const char *const *members,
    size_t nmembers, const struct policy_settings *s)
{
	struct policy_rule *r = NULL;
	size_t i;
	int rv;

	if (!text_ok(name, NAME_MAX_LEN) || members == NULL || nmembers == 0)
		return SG_ERR_CONFIG;
	for (i = 0; i < nmembers; i++)
		if (members[i] == NULL ||
		    !(strchr(members[i], '@') ? address_ok(members[i])
		                              : domain_ok(members[i], 1)))
			return SG_ERR_CONFIG;
	if ((rv = rule_append(&p->depts, &p->ndepts, name, s, &r)) != 0)
		return rv;
	if ((r->members = calloc(nmembers, sizeof(*r->members))) == NULL)
		goto nomem;
	for (r->nmembers = 0; r->nmembers < nmembers; r->nmembers++)
		if ((r->members[r->nmembers] = strdup(members[r->nmembers])) == NULL)
			goto nomem;
	return 0;
nomem:
	rule_clear(r);
	p->ndepts--;
	return SG_ERR_NOMEM;
}

static int
trigger_exists(const struct policy_trigger *t, size_t n, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(t[i].name, name) == 0 &&
		    (value == NULL || strcasecmp(t[i].value, value) == 0))
			return 1;
	return 0;
}

static int
trigger_append(struct policy_trigger **t, size_t *n, const char *name, const char *value,
    const struct policy_require *req)
{
	struct policy_trigger nt, *arr;

	if (require_check(req) != 0)
		return SG_ERR_CONFIG;
	if (trigger_exists(*t, *n, name, value))
		return SG_ERR_EXISTS;
	memset(&nt, 0, sizeof(nt));
	nt.req = *req;
	if ((nt.name = strdup(name)) == NULL ||
	    (value != NULL && (nt.value = strdup(value)) == NULL) ||
	    (arr = grow(*t, *n, sizeof(*arr))) == NULL) {
		free(nt.name);
		free(nt.value);
		return SG_ERR_NOMEM;
	}
	*t = arr;
	arr[(*n)++] = nt;
	return 0;
}

int
policy_out_add_subject_tag(
    struct policy_out *p, const char *tag, const struct policy_require *req)
{
	if (!text_ok(tag, NAME_MAX_LEN))
		return SG_ERR_CONFIG;
	return trigger_append(&p->tags, &p->ntags, tag, NULL, req);
}

int
policy_out_add_header_trigger(
    struct policy_out *p, const char *name, const char *value, const struct policy_require *req)
{
	if (!field_name_ok(name) || !text_ok(value, VALUE_MAX_LEN))
		return SG_ERR_CONFIG;
	return trigger_append(&p->headers, &p->nheaders, name, value, req);
}

int
policy_out_add_class_level(
    struct policy_out *p, const char *level, const struct policy_require *req)
{
	if (!text_ok(level, NAME_MAX_LEN))
		return SG_ERR_CONFIG;
	return trigger_append(&p->levels, &p->nlevels, level, NULL, req);
}

int
policy_out_add_class_header(struct policy_out *p, const char *name)
{
	char **arr, *copy;
	size_t i;

	if (!field_name_ok(name))
		return SG_ERR_CONFIG;
	for (i = 0; i < p->nclass_headers; i++)
		if (strcasecmp(p->class_headers[i], name) == 0)
			return SG_ERR_EXISTS;
	if ((copy = strdup(name)) == NULL ||
	    (arr = grow(p->class_headers, p->nclass_headers, sizeof(*arr))) == NULL) {
		free(copy);
		return SG_ERR_NOMEM;
	}
	p->class_headers = arr;
	arr[p->nclass_headers++] = copy;
	return 0;
}

int
policy_out_set_max_rcpts(struct policy_out *p, size_t max)
{
	if (max == 0 || max > POLICY_MAX_RCPTS_LIMIT)
		return SG_ERR_CONFIG;
	p->max_rcpts = max;
	return 0;
}

int
policy_out_defaults(struct policy_out *p)
{
	static const struct policy_settings global = {
	    .sign = POLICY_SIGN_ALWAYS,
	    .encrypt = POLICY_ENCRYPT_OPPORTUNISTIC,
	    .on_failure = POLICY_FAIL_REJECT,
	    .signer = POLICY_SIGNER_PERSONAL,
	};
	static const struct policy_require none = {0};
	static const struct policy_require limited = {
	    .sign = POLICY_SIGN_ALWAYS,
	    .encrypt = POLICY_ENCRYPT_OPPORTUNISTIC,
	};
	static const struct policy_require secret = {.encrypt = POLICY_ENCRYPT_MANDATORY};
	int r;

	if ((r = policy_out_set_global(p, &global)) != 0 ||
	    (r = policy_out_add_subject_tag(p, "[RAHASIA]", &secret)) != 0 ||
	    (r = policy_out_add_class_header(p, "X-Klasifikasi")) != 0 ||
	    (r = policy_out_add_class_level(p, "Biasa", &none)) != 0 ||
	    (r = policy_out_add_class_level(p, "Terbatas", &limited)) != 0 ||
	    (r = policy_out_add_class_level(p, "Rahasia", &secret)) != 0 ||
	    (r = policy_out_add_class_level(p, "Sangat Rahasia", &secret)) != 0)
		return r;
	return 0;
}
