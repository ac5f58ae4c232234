/*
 * outbound_int.h - the inside of the outbound policy, shared by
 * outbound.c (building it) and outbound_resolve.c, outbound_trigger.c and
 * outbound_decide.c (deciding with it).  Nothing outside policy/outbound*.c
 * includes this.
 */
#ifndef POL_OUTBOUND_INT_H
#define POL_OUTBOUND_INT_H

#include "outbound.h"

/* One level: global, a domain, a department or a user. */
struct policy_rule {
	char *key; /* domain pattern, department name or address */
	char **members; /* departments only */
	size_t nmembers;
	struct policy_settings set; /* its strings point into own[] */
	char *own[3];
};

/* A subject tag, a header trigger or a classification level. */
struct policy_trigger {
	char *name; /* tag, header field name or level */
	char *value; /* header triggers only */
	struct policy_require req;
};

struct policy_out {
	struct policy_rule global;
	struct policy_rule *domains;
	size_t ndomains;
	struct policy_rule *depts;
	size_t ndepts;
	struct policy_rule *users;
	size_t nusers;
	struct policy_trigger *tags;
	size_t ntags;
	struct policy_trigger *headers;
	size_t nheaders;
	char **class_headers;
	size_t nclass_headers;
	struct policy_trigger *levels; /* least to most restrictive */
	size_t nlevels;
	size_t max_rcpts;
};

enum policy_setting {
	SET_SIGN,
	SET_ENCRYPT,
	SET_ON_FAILURE,
	SET_SIGNER,
	SET_NOTICE,
	SET_NOTICE_TEXT,
	SET_HEADER_PROTECTION,
	SET_AES_GCM,
	SET_RSA_OAEP,
	SET_ESCROW,
	SET_MONITOR,
	SET_COUNT
};

/* The state of one policy_out_decide() call. */
struct policy_ctx {
	const struct policy_out *p;
	const struct policy_out_facts *f;
	struct policy_out_decision *d;
	const struct policy_settings **level; /* most specific first */
	char **label; /* "user a@b", "department x", ... (owned) */
	size_t nlevels;
	struct policy_settings eff; /* the effective settings */
	const char *src[SET_COUNT]; /* label of the level that set each */
	char *enc_reason; /* the trigger that made encryption mandatory */
	size_t class_rank; /* 1 + index of the most restrictive level seen */
	size_t trace_alloc;
};

/* A malloc'd formatted string; NULL when out of memory. */
char *policy_dupf(const char *fmt, ...) SG_PRINTF(1, 2);
/* Appends a trace line to c->d; takes value and source, where NULL means
 * an allocation failed.  0 or SG_ERR_NOMEM. */
int policy_trace_add(struct policy_ctx *c, const char *what, char *value, char *source) SG_WUR;
/* "encrypt"; and the name of value v of a setting ("mandatory"). */
const char *policy_setting_name(enum policy_setting id);
const char *policy_value_name(enum policy_setting id, int v);
/* Fills c->level, c->label, c->eff and c->src.  0 or SG_ERR_NOMEM. */
int policy_resolve(struct policy_ctx *c) SG_WUR;
/* Applies the header triggers, the classification and the subject tags
 * to c->eff; sets d->subject.  0 or SG_ERR_NOMEM. */
int policy_triggers(struct policy_ctx *c) SG_WUR;

#endif
