/*
 * outbound_resolve.c - which level sets each outbound setting.
 *
 * The levels of a sender, from the most specific: its user rule, its
 * department, every domain rule that matches its domain (the exact one,
 * then longer wildcards before shorter ones), global, and the built-in
 * values, which set everything.  Each setting comes from the first level
 * that sets it, and each gets a trace line naming that level.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outbound_int.h"

static const char *const setting_name[SET_COUNT] = {"sign", "encrypt", "on_failure", "signer",
    "notice", "notice_text", "header_protection", "aes_gcm", "rsa_oaep", "escrow", "monitor"};

static const char *const sign_names[] = {"unset", "never", "if_possible", "always"};
static const char *const encrypt_names[] = {"unset", "never", "opportunistic", "mandatory"};
static const char *const failure_names[] = {
    "unset", "signed_only", "quarantine", "defer", "reject"};
static const char *const signer_names[] = {"unset", "personal", "role", "system"};
static const char *const flag_names[] = {"unset", "off", "on"};
static const char *const gcm_names[] = {"unset", "never", "if_capable", "always"};

/* The last level: every setting has a value here. */
static const struct policy_settings builtin = {
    .sign = POLICY_SIGN_IF_POSSIBLE,
    .encrypt = POLICY_ENCRYPT_OPPORTUNISTIC,
    .on_failure = POLICY_FAIL_REJECT,
    .signer = POLICY_SIGNER_PERSONAL,
    .notice = POLICY_FLAG_OFF,
    .notice_text = POLICY_NOTICE_DEFAULT,
    .header_protection = POLICY_FLAG_OFF,
    .aes_gcm = POLICY_GCM_IF_CAPABLE,
    .rsa_oaep = POLICY_FLAG_OFF,
    .escrow = "",
    .monitor = POLICY_FLAG_OFF,
};

#define EXACT_SCORE 1000 /* above any wildcard's length */
#define ADDRESS_SCORE 2000 /* a department member naming the address */

const char *
policy_setting_name(enum policy_setting id)
{
	return setting_name[id];
}

const char *
policy_value_name(enum policy_setting id, int v)
{
	switch (id) {
	case SET_SIGN:
		return sign_names[v];
	case SET_ENCRYPT:
		return encrypt_names[v];
	case SET_ON_FAILURE:
		return failure_names[v];
	case SET_SIGNER:
		return signer_names[v];
	case SET_AES_GCM:
		return gcm_names[v];
	default:
		return flag_names[v];
	}
}

static int
is_set(const struct policy_settings *s, enum policy_setting id)
{
	switch (id) {
	case SET_SIGN:
		return s->sign != POLICY_SIGN_UNSET;
	case SET_ENCRYPT:
		return s->encrypt != POLICY_ENCRYPT_UNSET;
	case SET_ON_FAILURE:
		return s->on_failure != POLICY_FAIL_UNSET;
	case SET_SIGNER:
		return s->signer != POLICY_SIGNER_UNSET;
	case SET_NOTICE:
		return s->notice != POLICY_FLAG_UNSET;
	case SET_NOTICE_TEXT:
		return s->notice_text != NULL;
	case SET_HEADER_PROTECTION:
		return s->header_protection != POLICY_FLAG_UNSET;
	case SET_AES_GCM:
		return s->aes_gcm != POLICY_GCM_UNSET;
	case SET_RSA_OAEP:
		return s->rsa_oaep != POLICY_FLAG_UNSET;
	case SET_ESCROW:
		return s->escrow != NULL;
	case SET_MONITOR:
		return s->monitor != POLICY_FLAG_UNSET;
	case SET_COUNT:
		break;
	}
	return 0;
}

/* Copies setting id from src to dst (the signer with its address). */
static void
take(struct policy_settings *dst, const struct policy_settings *src, enum policy_setting id)
{
	switch (id) {
	case SET_SIGN:
		dst->sign = src->sign;
		break;
	case SET_ENCRYPT:
		dst->encrypt = src->encrypt;
		break;
	case SET_ON_FAILURE:
		dst->on_failure = src->on_failure;
		break;
	case SET_SIGNER:
		dst->signer = src->signer;
		dst->signer_address = src->signer_address;
		break;
	case SET_NOTICE:
		dst->notice = src->notice;
		break;
	case SET_NOTICE_TEXT:
		dst->notice_text = src->notice_text;
		break;
	case SET_HEADER_PROTECTION:
		dst->header_protection = src->header_protection;
		break;
	case SET_AES_GCM:
		dst->aes_gcm = src->aes_gcm;
		break;
	case SET_RSA_OAEP:
		dst->rsa_oaep = src->rsa_oaep;
		break;
	case SET_ESCROW:
		dst->escrow = src->escrow;
		break;
	case SET_MONITOR:
		dst->monitor = src->monitor;
		break;
	case SET_COUNT:
		break;
	}
}

/* The value of setting id as text for the trace. */
static char *
value_text(const struct policy_settings *s, enum policy_setting id)
{
	switch (id) {
	case SET_SIGN:
		return policy_dupf("%s", sign_names[s->sign]);
	case SET_ENCRYPT:
		return policy_dupf("%s", encrypt_names[s->encrypt]);
	case SET_ON_FAILURE:
		return policy_dupf("%s", failure_names[s->on_failure]);
	case SET_SIGNER:
		if (s->signer == POLICY_SIGNER_PERSONAL)
			return policy_dupf("%s", signer_names[s->signer]);
		return policy_dupf("%s %s", signer_names[s->signer], s->signer_address);
	case SET_NOTICE:
		return policy_dupf("%s", flag_names[s->notice]);
	case SET_NOTICE_TEXT:
		return policy_dupf("%s", s->notice_text);
	case SET_HEADER_PROTECTION:
		return policy_dupf("%s", flag_names[s->header_protection]);
	case SET_AES_GCM:
		return policy_dupf("%s", gcm_names[s->aes_gcm]);
	case SET_RSA_OAEP:
		return policy_dupf("%s", flag_names[s->rsa_oaep]);
	case SET_ESCROW:
		return policy_dupf("%s", s->escrow[0] != '\0' ? s->escrow : "none");
	case SET_MONITOR:
		return policy_dupf("%s", flag_names[s->monitor]);
	case SET_COUNT:
		break;
	}
	return NULL;
}

/*
 * How well a domain pattern matches domain: 0 not at all; an exact name
 * beats every wildcard, a longer wildcard beats a shorter one.
 * "*.kota.go.id" matches subdomains only, never evilkota.go.id.
 */
static size_t
domain_score(const char *pattern, const char *domain)
{
	size_t dl = strlen(domain), pl;

	if (strncmp(pattern, "*.", 2) == 0) {
		pl = strlen(pattern + 1); /* ".kota.go.id" */
		return dl > pl && strcasecmp(domain + dl - pl, pattern + 1) == 0 ? pl : 0;
	}
	return strcasecmp(pattern, domain) == 0 ? EXACT_SCORE : 0;
}

/* The domain rules matching domain, most specific first, in *out (n). */
static int
find_domains(
    const struct policy_out *p, const char *domain, const struct policy_rule ***out, size_t *n)
{
	const struct policy_rule **m;
	size_t i, j, score;

	*out = NULL;
	*n = 0;
	if ((m = calloc(p->ndomains + 1, sizeof(*m))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < p->ndomains; i++) {
		if ((score = domain_score(p->domains[i].key, domain)) == 0)
			continue;
		for (j = *n; j > 0 && domain_score(m[j - 1]->key, domain) < score; j--)
			m[j] = m[j - 1];
		m[j] = &p->domains[i];
		(*n)++;
	}
	*out = m;
	return 0;
}

/* The department naming addr most precisely; *why is the member. */
static const struct policy_rule *
find_dept(const struct policy_out *p, const char *addr, const char *domain, const char **why)
{
	const struct policy_rule *best = NULL;
	size_t i, j, score, best_score = 0;

	for (i = 0; i < p->ndepts; i++)
		for (j = 0; j < p->depts[i].nmembers; j++) {
			const char *m = p->depts[i].members[j];

			if (strchr(m, '@') != NULL)
				score = strcasecmp(m, addr) == 0 ? ADDRESS_SCORE : 0;
			else
				score = domain_score(m, domain);
			if (score > best_score) {
				best = &p->depts[i];
				best_score = score;
				*why = m;
			}
		}
	return best;
}

static const struct policy_rule *
find_user(const struct policy_out *p, const char *addr)
{
	size_t i;

	for (i = 0; i < p->nusers; i++)
		if (strcasecmp(p->users[i].key, addr) == 0)
			return &p->users[i];
	return NULL;
}

/* Appends a level; takes label (NULL means out of memory). */
static int
add_level(struct policy_ctx *c, const struct policy_settings *set, char *label)
{
	if (label == NULL)
		return SG_ERR_NOMEM;
	c->level[c->nlevels] = set;
	c->label[c->nlevels++] = label;
	return 0;
}

/* A trace line naming the rule of a level, "-" when none; takes how. */
static int
trace_rule(struct policy_ctx *c, const char *what, const struct policy_rule *r, char *how)
{
	return policy_trace_add(c, what, policy_dupf("%s", r ? r->key : "-"), how);
}

/* The trace lines naming the rules that matched the sender. */
static int
trace_matches(struct policy_ctx *c, const char *domain, const struct policy_rule *const *doms,
    size_t ndoms, const struct policy_rule *dept, const char *why,
    const struct policy_rule *user)
{
	size_t i;
	int r = 0;

	if (ndoms == 0)
		r = trace_rule(c, "domain", NULL, policy_dupf("no rule for %.100s", domain));
	for (i = 0; i < ndoms && r == 0; i++)
		r = trace_rule(
		    c, "domain", doms[i], policy_dupf("sender domain %.100s", domain));
	if (r == 0)
		r = trace_rule(c, "department", dept,
		    dept ? policy_dupf("member %s", why) : policy_dupf("no department"));
	if (r == 0)
		r = trace_rule(
		    c, "user", user, policy_dupf("%s", user ? "sender address" : "no rule"));
	return r;
}

/*
 * Finds the levels of the sender (user, department, every matching domain
 * rule from the most specific, global, built-in) and takes each setting
 * from the first level that sets it.
 */
int
policy_resolve(struct policy_ctx *c)
{
	const struct policy_out *p = c->p;
	const char *sender = c->f->sender, *at, *domain = "", *why = "";
	const struct policy_rule *user = NULL, *dept = NULL, **doms = NULL;
	size_t i, k, ndoms = 0;
	int id, r;

	if (sender != NULL && (at = strrchr(sender, '@')) != NULL) {
		domain = at + 1;
		if ((r = find_domains(p, domain, &doms, &ndoms)) != 0)
			return r;
		dept = find_dept(p, sender, domain, &why);
		user = find_user(p, sender);
	}
	r = SG_ERR_NOMEM;
	if ((c->level = calloc(ndoms + 4, sizeof(*c->level))) == NULL ||
	    (c->label = calloc(ndoms + 4, sizeof(*c->label))) == NULL)
		goto out;
	r = 0;
	if (user != NULL)
		r = add_level(c, &user->set, policy_dupf("user %s", user->key));
	if (r == 0 && dept != NULL)
		r = add_level(c, &dept->set, policy_dupf("department %s", dept->key));
	for (i = 0; r == 0 && i < ndoms; i++)
		r = add_level(c, &doms[i]->set, policy_dupf("domain %s", doms[i]->key));
	if (r != 0 || (r = add_level(c, &p->global.set, policy_dupf("global"))) != 0 ||
	    (r = add_level(c, &builtin, policy_dupf("built-in"))) != 0 ||
	    (r = trace_matches(c, domain, doms, ndoms, dept, why, user)) != 0)
		goto out;
	for (id = 0; id < SET_COUNT && r == 0; id++) {
		for (k = 0; !is_set(c->level[k], (enum policy_setting)id); k++)
			; /* the built-in level sets everything */
		take(&c->eff, c->level[k], (enum policy_setting)id);
		c->src[id] = c->label[k];
		r = policy_trace_add(c, setting_name[id],
		    value_text(&c->eff, (enum policy_setting)id),
		    policy_dupf("%s", c->src[id]));
	}
out:
	free(doms);
	return r;
}
