/*
 * sign.c - who may have mail signed.
 *
 * Only a sender who proved to be the From address gets its signature:
 * either a SASL login that owns the address (by the configured rule) or a
 * trusted relay submitting for an internal domain.  The From field must
 * hold exactly one address, equal to the envelope sender or a configured
 * alias of it.  Mail from outside the internal domains is never signed.
 * Message headers never enter the decision, so X-Signer or X-Skip-Signing
 * cannot steer it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

static const char *const reason_text[] = {
    "authenticated sender owns the From address",
    "trusted relay submitting for an internal domain",
    "signing is disabled",
    "no valid From address",
    "From holds more than one address",
    "From is not in an internal domain",
    "From differs from the envelope sender",
    "not authenticated and not from a trusted relay",
    "the authenticated login does not own the From address",
};

static const char *const reason_token[] = {
    "auth",
    "trusted-relay",
    "disabled",
    "from-missing",
    "from-multiple",
    "external",
    "envelope-mismatch",
    "unauthenticated",
    "not-owner",
};

const char *
policy_sign_reason_text(enum policy_sign_reason r)
{
	return reason_text[r];
}

const char *
policy_sign_reason_token(enum policy_sign_reason r)
{
	return reason_token[r];
}

int
policy_domain_internal(const struct policy_cfg *cfg, const char *domain)
{
	size_t i, dl = strlen(domain);

	for (i = 0; i < cfg->ninternal; i++) {
		const char *pat = cfg->internal_domains[i];

		if (strncmp(pat, "*.", 2) == 0) {
			size_t pl = strlen(pat + 1); /* ".kota.go.id" */

			if (dl > pl && strcasecmp(domain + dl - pl, pat + 1) == 0)
				return 1;
		} else if (strcasecmp(domain, pat) == 0) {
			return 1;
		}
	}
	return 0;
}

int
policy_net_parse(const char *s, struct policy_net *n)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	char *end;
	long pfx;

	memset(n, 0, sizeof(*n));
	if (hl == 0 || hl >= sizeof(host))
		return SG_ERR_CONFIG;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else {
		return SG_ERR_CONFIG;
	}
	n->prefix = max;
	if (slash) {
		pfx = strtol(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || pfx < 0 || pfx > (long)max)
			return SG_ERR_CONFIG;
		n->prefix = (unsigned)pfx;
	}
	return 0;
}

static int
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

int
policy_client_trusted(const struct policy_cfg *cfg, const struct sockaddr *sa)
{
	unsigned char addr[16];
	int family;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return 0;
	}
	for (i = 0; i < cfg->ntrusted; i++)
		if (cfg->trusted[i].family == family &&
		    prefix_match(cfg->trusted[i].addr, addr, cfg->trusted[i].prefix))
			return 1;
	return 0;
}

static int
pair_match(const struct policy_pair *p, size_t n, const char *left, const char *right)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(p[i].left, left) == 0 && strcasecmp(p[i].right, right) == 0)
			return 1;
	return 0;
}

static int
login_owns(const struct policy_cfg *cfg, const char *login, const char *addr)
{
	const char *at = strrchr(addr, '@');

	switch (cfg->login_rule) {
	case POLICY_LOGIN_ADDRESS:
		return strcasecmp(login, addr) == 0;
	case POLICY_LOGIN_LOCALPART:
		return at != NULL && strlen(login) == (size_t)(at - addr) &&
		    strncmp(login, addr, (size_t)(at - addr)) == 0;
	case POLICY_LOGIN_MAP:
		return pair_match(cfg->login_map, cfg->nlogin_map, login, addr);
	}
	return 0;
}

static void
decide(struct policy_sign_decision *d, int sign, enum policy_sign_reason r)
{
	d->sign = sign;
	d->reason = r;
}

void
policy_sign_decide(const struct policy_cfg *cfg, const struct policy_sign_facts *f,
    struct policy_sign_decision *d)
{
	const char *from;

	d->address = NULL;
	if (!cfg->sign_enabled)
		return decide(d, 0, POLICY_NOSIGN_DISABLED);
	if (f->from_malformed || f->nfrom == 0)
		return decide(d, 0, POLICY_NOSIGN_FROM_MISSING);
	if (f->nfrom > 1)
		return decide(d, 0, POLICY_NOSIGN_FROM_MULTIPLE);
	from = f->from[0];
	d->address = from;
	if (!policy_domain_internal(cfg, strrchr(from, '@') + 1))
		return decide(d, 0, POLICY_NOSIGN_EXTERNAL);
	if (f->env_from == NULL ||
	    (strcasecmp(f->env_from, from) != 0 &&
	        !pair_match(cfg->aliases, cfg->naliases, from, f->env_from)))
		return decide(d, 0, POLICY_NOSIGN_ENVELOPE);
	if (f->auth_login != NULL && f->auth_login[0] != '\0') {
		if (login_owns(cfg, f->auth_login, from))
			return decide(d, 1, POLICY_SIGN_OK_AUTH);
		return decide(d, 0, POLICY_NOSIGN_NOT_OWNER);
	}
	if (policy_client_trusted(cfg, f->client))
		return decide(d, 1, POLICY_SIGN_OK_TRUSTED);
	return decide(d, 0, POLICY_NOSIGN_UNAUTHENTICATED);
}
