/*
 * policy.h - decisions as pure functions of message facts.
 *
 * Nothing here does I/O, reads configuration files or logs: the caller
 * loads the settings into struct policy_cfg once (per configuration
 * snapshot) and asks for a decision per message.  That keeps every rule
 * exhaustively testable.  The first decision is who may have mail signed
 * (no signing oracle, regulation R6); encryption and inbound rules will
 * join it here.
 */
#ifndef POL_POLICY_H
#define POL_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/sg_err.h"

enum policy_login_rule {
	POLICY_LOGIN_ADDRESS, /* login equals the full From address */
	POLICY_LOGIN_LOCALPART, /* login equals the local part */
	POLICY_LOGIN_MAP, /* the login map lists the addresses a login owns */
};

/* One "login  address" pair of the login map, or "alias  sender". */
struct policy_pair {
	char *left;
	char *right;
};

/* A network in CIDR form; family AF_INET or AF_INET6. */
struct policy_net {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct policy_cfg {
	char **internal_domains; /* "kota.go.id", "*.kota.go.id" */
	size_t ninternal;
	enum policy_login_rule login_rule;
	struct policy_pair *login_map;
	size_t nlogin_map;
	struct policy_pair *aliases; /* From alias -> envelope sender */
	size_t naliases;
	struct policy_net *trusted;
	size_t ntrusted;
	int sign_enabled;
};

/* What is known about a message when deciding whether to sign it. */
struct policy_sign_facts {
	const char *auth_login; /* SASL login, NULL when none */
	const struct sockaddr *client; /* SMTP client address, may be NULL */
	const char *env_from; /* normalised envelope sender, may be NULL */
	char *const *from; /* normalised From addresses */
	size_t nfrom; /* 0 when the From field is missing */
	int from_malformed; /* From did not parse */
};

enum policy_sign_reason {
	POLICY_SIGN_OK_AUTH, /* SASL login owns the From address */
	POLICY_SIGN_OK_TRUSTED, /* trusted relay, internal sender */
	POLICY_NOSIGN_DISABLED, /* signing.mode = never */
	POLICY_NOSIGN_FROM_MISSING, /* no or unparsable From field */
	POLICY_NOSIGN_FROM_MULTIPLE, /* more than one From address */
	POLICY_NOSIGN_EXTERNAL, /* From is not in an internal domain */
	POLICY_NOSIGN_ENVELOPE, /* From is not the envelope sender or its alias */
	POLICY_NOSIGN_UNAUTHENTICATED, /* no SASL login and not a trusted relay */
	POLICY_NOSIGN_NOT_OWNER, /* the login does not own the From address */
};

struct policy_sign_decision {
	int sign; /* 1: sign as `address` */
	enum policy_sign_reason reason;
	const char *address; /* the From address (borrowed from facts) */
};

/* Decides whether the message may be signed, and why. Never fails. */
void policy_sign_decide(const struct policy_cfg *cfg, const struct policy_sign_facts *f,
    struct policy_sign_decision *d);
/* A short English explanation of a reason, for logs and SMTP replies. */
const char *policy_sign_reason_text(enum policy_sign_reason r);
/* A log token for a reason ("not-owner"). */
const char *policy_sign_reason_token(enum policy_sign_reason r);

/* Whether domain is internal ("a.kota.go.id" matches "*.kota.go.id"). */
int policy_domain_internal(const struct policy_cfg *cfg, const char *domain);
/* Whether sa lies in one of the trusted networks. */
int policy_client_trusted(const struct policy_cfg *cfg, const struct sockaddr *sa);
/* Parses "192.0.2.0/24" or "2001:db8::/32" (or a bare address). */
int policy_net_parse(const char *s, struct policy_net *n) SG_WUR;

#endif
