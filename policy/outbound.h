/*
 * outbound.h - what Segel does with one outbound message, per recipient.
 *
 * A pure decision, like policy.h: no I/O, no logging, no configuration
 * files.  The caller builds a struct policy_out once per configuration
 * snapshot with the builders below and asks policy_out_decide() for each
 * message.  segelctl's `policy explain` and the milter use the same call,
 * so the explanation is what the milter does.
 *
 * Settings inherit: global <- domain <- department <- user.  A rule leaves
 * a setting unset (0) to inherit it.  Triggers (subject tag, header,
 * classification) may only raise sign, encrypt, on_failure and
 * header_protection; they never lower what the rules require.
 *
 * Ownership: the builders copy every string they are given.  A decision
 * owns everything it points to except the reply codes (static) and is
 * released with policy_out_decision_free().
 */
#ifndef POL_OUTBOUND_H
#define POL_OUTBOUND_H

#include <stddef.h>

#include "util/buf.h"
#include "util/sg_err.h"

/* Each enum rises in strength; 0 is "unset: inherit". */
enum policy_sign_mode {
	POLICY_SIGN_UNSET,
	POLICY_SIGN_NEVER,
	POLICY_SIGN_IF_POSSIBLE, /* sign when the sender may; else send unsigned */
	POLICY_SIGN_ALWAYS, /* as above, but a later signing failure is a failure */
};

enum policy_encrypt_mode {
	POLICY_ENCRYPT_UNSET,
	POLICY_ENCRYPT_NEVER,
	POLICY_ENCRYPT_OPPORTUNISTIC, /* recipients with a usable certificate */
	POLICY_ENCRYPT_MANDATORY, /* every recipient, else on_failure */
};

/* What happens to recipients that mandatory encryption cannot reach.
 * Listed from the least to the most strict, which is how triggers raise. */
enum policy_on_failure {
	POLICY_FAIL_UNSET,
	POLICY_FAIL_SIGNED_ONLY, /* they get the unencrypted (signed) copy */
	POLICY_FAIL_QUARANTINE, /* their copy is quarantined */
	POLICY_FAIL_DEFER, /* the whole message is deferred (4.7.1) */
	POLICY_FAIL_REJECT, /* the whole message is rejected (5.7.1) */
};

/* Which certificate signs (R3). */
enum policy_signer_kind {
	POLICY_SIGNER_UNSET,
	POLICY_SIGNER_PERSONAL, /* the sender's own */
	POLICY_SIGNER_ROLE, /* a position, e.g. kepala.dinas@kota.go.id */
	POLICY_SIGNER_SYSTEM, /* an electronic system, e.g. noreply@kota.go.id */
};

enum policy_flag {
	POLICY_FLAG_UNSET,
	POLICY_FLAG_OFF,
	POLICY_FLAG_ON,
};

enum policy_gcm {
	POLICY_GCM_UNSET,
	POLICY_GCM_NEVER, /* AES-256-CBC */
	POLICY_GCM_IF_CAPABLE, /* AES-256-GCM when every recipient of the copy can */
	POLICY_GCM_ALWAYS,
};

/*
 * The settings of one level.  Strings are copied by the builders.
 * signer_address goes with signer ROLE or SYSTEM and only with them.
 * notice_text NULL inherits (the built-in text at the end); escrow ""
 * means "no escrow" and stops inheritance, NULL inherits.
 */
struct policy_settings {
	enum policy_sign_mode sign;
	enum policy_encrypt_mode encrypt;
	enum policy_on_failure on_failure;
	enum policy_signer_kind signer;
	const char *signer_address;
	enum policy_flag notice;
	const char *notice_text;
	enum policy_flag header_protection;
	enum policy_gcm aes_gcm;
	enum policy_flag rsa_oaep;
	const char *escrow; /* certificate id or address of the archive */
	enum policy_flag monitor; /* log what would happen, change nothing */
};

/* What a trigger requires; each field only ever raises the setting. */
struct policy_require {
	enum policy_sign_mode sign;
	enum policy_encrypt_mode encrypt;
	enum policy_on_failure on_failure;
	enum policy_flag header_protection;
};

/* The footer used when notice is on and no level gives a text (R11). */
#define POLICY_NOTICE_DEFAULT                                                                  \
	"Surat elektronik ini ditandatangani secara elektronik menggunakan sertifikat "        \
	"elektronik yang diterbitkan oleh Balai Sertifikasi Elektronik (BSrE), BSSN."

#define POLICY_MAX_RCPTS_DEFAULT 1000
#define POLICY_MAX_RCPTS_LIMIT 100000 /* upper bound of policy_out_set_max_rcpts */

struct policy_out; /* opaque; built with the functions below */

/* A new empty policy (built-in values only) in *out; 0 or SG_ERR_NOMEM.
 * The caller frees it with policy_out_free(). */
int policy_out_new(struct policy_out **out) SG_WUR;
/* Releases p and everything it holds; NULL is fine. */
void policy_out_free(struct policy_out *p);

/*
 * Builders.  Each returns 0, SG_ERR_CONFIG (a value out of range, a
 * malformed name, role/system signer without an address), SG_ERR_EXISTS
 * (a second rule for the same domain, department, user, tag or level) or
 * SG_ERR_NOMEM; on error p is unchanged.
 */
/* Replaces the global settings. */
int policy_out_set_global(struct policy_out *p, const struct policy_settings *s) SG_WUR;
/* pattern: "kota.go.id" (exactly that domain) or "*.kota.go.id" (its
 * subdomains).  The exact rule wins over wildcards, a longer wildcard over
 * a shorter one. */
int policy_out_add_domain(
    struct policy_out *p, const char *pattern, const struct policy_settings *s) SG_WUR;
/* A named group; members are addresses ("a@kota.go.id"), domains
 * ("dinas.kota.go.id") or wildcards ("*.dinas.kota.go.id").  A sender in
 * several departments gets the one that names it most precisely (address,
 * then domain, then wildcard), the first added on a tie. */
int policy_out_add_department(struct policy_out *p, const char *name,
    const char *const *members, size_t nmembers, const struct policy_settings *s) SG_WUR;
/* Settings of one sender address (case-insensitive). */
int policy_out_add_user(
    struct policy_out *p, const char *address, const struct policy_settings *s) SG_WUR;
/* A subject tag such as "[RAHASIA]", matched case-insensitively anywhere
 * in the Subject and removed from it. */
int policy_out_add_subject_tag(
    struct policy_out *p, const char *tag, const struct policy_require *req) SG_WUR;
/* A header trigger: field name (case-insensitive) and value (compared
 * case-insensitively, surrounding and repeated blanks ignored). */
int policy_out_add_header_trigger(struct policy_out *p, const char *name, const char *value,
    const struct policy_require *req) SG_WUR;
/* A header that carries the classification ("X-Klasifikasi"). */
int policy_out_add_class_header(struct policy_out *p, const char *name) SG_WUR;
/* A classification level ("Rahasia") and what it requires.  Add levels
 * from the least to the most restrictive: with several classification
 * headers the decision reports the most restrictive level found. */
int policy_out_add_class_level(
    struct policy_out *p, const char *level, const struct policy_require *req) SG_WUR;
/* Most recipients one decision accepts: 1 .. POLICY_MAX_RCPTS_LIMIT. */
int policy_out_set_max_rcpts(struct policy_out *p, size_t max) SG_WUR;

/*
 * Fills a new policy with the defaults `segelctl init` writes: sign
 * always (for senders entitled to sign), encrypt opportunistically,
 * reject (5.7.1) when mandatory encryption cannot be done; the subject tag
 * [RAHASIA] and the classifications Rahasia and Sangat Rahasia (header
 * X-Klasifikasi) make encryption mandatory; Terbatas asks for opportunistic
 * encryption and signing always; Biasa requires nothing.  Returns as the
 * builders do (SG_ERR_EXISTS when p already holds one of these).
 */
int policy_out_defaults(struct policy_out *p) SG_WUR;

/* Facts about the message, all borrowed from the caller. */
struct policy_header {
	const char *name;
	const char *value;
};

#define POLICY_CAP_AES_GCM 0x1u /* SMIMECapabilities list AES-GCM */

struct policy_rcpt {
	const char *address; /* normalised envelope recipient */
	int has_cert; /* a usable (valid, unrevoked) encryption certificate */
	unsigned caps; /* POLICY_CAP_* */
};

struct policy_out_facts {
	const char *sender; /* normalised From address; NULL when none */
	int may_sign; /* policy_sign_decide() said sign */
	const char *subject; /* NULL when the message has none */
	const struct policy_header *headers; /* the fields the caller passes */
	size_t nheaders;
	const struct policy_rcpt *rcpts;
	size_t nrcpts; /* 1 .. max_rcpts */
	size_t size; /* message size in bytes, for the explanation */
};

enum policy_verdict {
	POLICY_VERDICT_ACCEPT,
	POLICY_VERDICT_REJECT, /* reply_* hold the 5.7.1 reply */
	POLICY_VERDICT_DEFER, /* reply_* hold the 4.7.1 reply */
};

enum policy_rcpt_action {
	POLICY_RCPT_ENCRYPT, /* in the encrypted copy */
	POLICY_RCPT_UNENCRYPTED, /* in the other copy: signed when sign, else plain */
	POLICY_RCPT_QUARANTINE, /* in the other copy, which is quarantined */
	POLICY_RCPT_REJECT, /* cannot be encrypted: the message is rejected */
	POLICY_RCPT_DEFER, /* cannot be encrypted: the message is deferred */
};

enum policy_cipher {
	POLICY_CIPHER_AES256_CBC,
	POLICY_CIPHER_AES256_GCM,
};

/* A set of recipients: indexes into facts->rcpts, ascending. */
struct policy_copy {
	size_t *rcpts;
	size_t n;
};

/* One line of the explanation: which level or trigger set what. */
struct policy_trace {
	const char *what; /* static: a setting name, "domain", "trigger", ... */
	char *value;
	char *source; /* "global", "domain *.kota.go.id", "trigger ..." */
};

struct policy_out_decision {
	enum policy_verdict verdict;
	const char *reply_rcode; /* "550" / "451"; NULL on accept */
	const char *reply_xcode; /* "5.7.1" / "4.7.1"; NULL on accept */
	char *reply_text; /* names the recipients; printable ASCII without '%' */

	int sign; /* sign every copy, as sign_as */
	int sign_required; /* sign = always: failing to sign later is a failure */
	char *sign_as; /* the sender, or the role/system address */

	enum policy_rcpt_action *rcpt; /* per facts->rcpts[i] */
	size_t nrcpts;

	/* On accept: the copies.  Both non-empty means the split of item 5. */
	struct policy_copy encrypted;
	enum policy_cipher cipher;
	int rsa_oaep;
	char *escrow; /* extra recipient of the encrypted copy, or NULL */
	int header_protection; /* only with a non-empty encrypted copy */
	struct policy_copy other;
	enum policy_rcpt_action other_action; /* UNENCRYPTED or QUARANTINE */

	char *notice; /* footer to add before signing, or NULL (only when sign) */
	int monitor; /* log this decision, deliver the mail unchanged */
	char *subject; /* the Subject without trigger tags; NULL if unchanged */
	char *classification; /* the level found, or NULL */
	int classification_unknown; /* a classification header held another value */

	struct policy_trace *trace;
	size_t ntrace;
};

/*
 * Decides what to do with the message.  d (not NULL) is cleared on entry.
 * Returns 0 (the caller then owns d and frees it with
 * policy_out_decision_free()), SG_ERR_INVALID_ARG (no recipients, a NULL
 * address or header name, may_sign without a sender),
 * SG_ERR_LIMIT (more recipients than max_rcpts) or SG_ERR_NOMEM; on error
 * d holds nothing.
 */
int policy_out_decide(const struct policy_out *p, const struct policy_out_facts *f,
    struct policy_out_decision *d) SG_WUR;
/* Releases what d holds and clears it; NULL is fine. */
void policy_out_decision_free(struct policy_out_decision *d);

/*
 * The decision and its trace, for `segelctl policy explain`: appended to
 * out as text lines or as one JSON object.  f must be the facts d was
 * decided from.  Untrusted strings are escaped.  0, SG_ERR_INVALID_ARG
 * (f and d disagree), SG_ERR_LIMIT (out is full) or SG_ERR_NOMEM.
 */
int policy_out_explain_text(const struct policy_out_facts *f,
    const struct policy_out_decision *d, struct sg_buf *out) SG_WUR;
int policy_out_explain_json(const struct policy_out_facts *f,
    const struct policy_out_decision *d, struct sg_buf *out) SG_WUR;

#endif
