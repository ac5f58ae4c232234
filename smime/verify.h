/*
 * verify.h - cryptographic verification of incoming S/MIME (RFC 8551).
 *
 * sm_verify() looks at a complete message (the same struct sm_msg that
 * sm_sign gets) and checks its signatures: detached multipart/signed,
 * opaque application/pkcs7-mime signed-data, and signatures nested inside
 * either, up to a bounded depth.  Encrypted layers are reported, not
 * opened: decryption needs a key and happens in the signer process.
 *
 * The core decides only whether the CMS signature is cryptographically
 * valid over the content.  It does NOT decide whether the signer is to be
 * trusted: chaining to the anchors, the RFC 8550 checks and revocation are
 * the keystore's (keystore_validate, keystore_check_revocation on the
 * reported signer, with the certificates carried as helpers).  A PASS for
 * an expired, revoked or self-made certificate is therefore correct here.
 *
 * Like the rest of smime/, this never logs and never reads configuration.
 * Untrusted input ends in a status in the result, never in an error code:
 * a negative return means the check itself could not be made (memory,
 * spool I/O, an invalid argument).
 */
#ifndef SM_VERIFY_H
#define SM_VERIFY_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "smime.h"
#include "util/sg_err.h"
#include "util/spool.h"

/* The verdict on one layer, and on the whole message. */
enum sm_verify_status {
	SM_VERIFY_NONE, /* not S/MIME (or certificates only): nothing to verify */
	SM_VERIFY_PASS, /* the signature is cryptographically valid */
	SM_VERIFY_FAIL, /* the signature does not verify: content or signature altered */
	SM_VERIFY_MALFORMED, /* MIME or CMS structure broken, or a limit exceeded */
	SM_VERIFY_ENCRYPTED, /* enveloped or authEnveloped data: not verified here */
};

/* How a layer is wrapped. */
enum sm_verify_form {
	SM_FORM_DETACHED, /* multipart/signed */
	SM_FORM_OPAQUE, /* application/pkcs7-mime signed-data (or certs-only) */
	SM_FORM_ENCRYPTED, /* application/pkcs7-mime enveloped/authEnveloped data */
};

/* Built-in bounds; sm_verify refuses options outside [1, *_HARD]. */
#define SM_VERIFY_MAX_SIG_DEFAULT (256UL * 1024) /* DER bytes of a detached signature */
#define SM_VERIFY_MAX_SIG_HARD (16UL * 1024 * 1024)
#define SM_VERIFY_MAX_OPAQUE_DEFAULT (32UL * 1024 * 1024) /* DER bytes of an opaque CMS */
#define SM_VERIFY_MAX_OPAQUE_HARD (1024UL * 1024 * 1024)
#define SM_VERIFY_MAX_DEPTH_DEFAULT 4 /* S/MIME layers, outermost counted */
#define SM_VERIFY_MAX_DEPTH_HARD 8
#define SM_VERIFY_MAX_CERTS_DEFAULT 32 /* certificates carried by one signature */
#define SM_VERIFY_MAX_CERTS_HARD 1024
#define SM_VERIFY_MAX_SIGNERS_DEFAULT 4 /* SignerInfos in one signature */
#define SM_VERIFY_MAX_SIGNERS_HARD 64

struct sm_verify_opts {
	size_t max_sig_size; /* decoded size of a detached signature */
	size_t max_opaque_size; /* decoded size of opaque signed-data (held in memory) */
	size_t max_depth; /* S/MIME layers; one more is MALFORMED */
	size_t max_certs; /* certificates carried in one SignedData */
	size_t max_signers; /* SignerInfos in one SignedData */
	const char *spool_dir; /* for the content of opaque layers (NULL: /tmp) */
	size_t mem_threshold; /* ... kept in memory up to this many bytes */
	/*
	 * The address to match the signers against; NULL takes the message's
	 * single From address.  Set it when verifying a decrypted inner
	 * message whose From is in the outer header.
	 */
	const char *from;
	/*
	 * Certificates in which to look for a signer that the signature does
	 * not carry (e.g. harvested ones from the keystore); borrowed, may be
	 * NULL.  They are used to find the key, never as trust.
	 */
	STACK_OF(X509) * extra_certs;
};

/* Fills *o with the built-in defaults (no spool_dir, from or extra_certs). */
void sm_verify_opts_default(struct sm_verify_opts *o);

/*
 * One S/MIME layer, outermost first.  Everything a signature reports
 * (signer, certs, signing_time, digest, caps) is what the CMS claims:
 * only a PASS layer has proven it, and only the keystore can say whether
 * the signer is trusted.
 */
struct sm_verify_layer {
	enum sm_verify_form form;
	enum sm_verify_status status;
	char detail[256]; /* human-readable, printable ASCII, e.g. why it failed */
	X509 *signer; /* owned; NULL when not identified */
	STACK_OF(X509) * certs; /* owned; the certificates carried (maybe empty), or NULL */
	int nsigners; /* SignerInfos; all must verify for a PASS */
	time_t signing_time; /* signingTime attribute of the signer, 0 if absent */
	char digest[32]; /* digest algorithm short name ("SHA256"), or "" */
	char sig_alg[32]; /* signature algorithm ("rsaEncryption", "RSASSA-PSS" ...) */
	unsigned char *caps; /* owned SMIMECapabilities DER (the SEQUENCE), or NULL */
	size_t capslen;
	char **addrs; /* owned: the signer's rfc822Name/SmtpUTF8Mailbox addresses */
	size_t naddrs;
	int from_match; /* 1: PASS and the From address is among addrs */
	/* detached only: verified after bare LFs in the stored message were
	 * restored to CRLF, as RFC 8551 3.1.1 canonical form requires */
	int canonicalized;
	/*
	 * Where the signed data is: for DETACHED the signed entity (the first
	 * body part, from after the first boundary line's line end to before
	 * the line end of the next boundary line); for OPAQUE the whole
	 * encapsulated content, which is then in the layer's own content
	 * spool.  where is the spool the offsets refer to: the message body
	 * (layer 0), an outer layer's content spool, or content.  Borrowed;
	 * valid as long as the message and the result.
	 */
	const struct sg_spool *where;
	size_t entity_start, entity_len;
	struct sg_spool *content; /* OPAQUE + PASS: the encapsulated content, owned */
};

struct sm_verify_result {
	/*
	 * The first layer that is not PASS (its status and detail), or PASS
	 * when every layer passed; NONE with no layers for a message that is
	 * not S/MIME, MALFORMED with no layers for one whose Content-Type or
	 * Content-Transfer-Encoding field is repeated.  A signed layer around an encrypted one is ENCRYPTED:
	 * the content is not known to be verified until it is decrypted and
	 * verified again.
	 */
	enum sm_verify_status status;
	char detail[320];
	char *from; /* owned: the address the signers were matched against, or NULL */
	/* 1: the status is PASS or ENCRYPTED and a PASS layer's signer
	 * carries from (a FAIL or MALFORMED message never matches) */
	int from_match;
	/*
	 * The layer whose signer speaks for the message, for the caller to
	 * validate with the keystore: the outermost PASS layer whose signer
	 * matches from, else the outermost layer.  Meaningless when nlayers
	 * is 0.
	 */
	size_t primary;
	struct sm_verify_layer *layers;
	size_t nlayers;
};

/*
 * Verifies the S/MIME signatures of m, which must be complete (after
 * sm_msg_eom).  o may be NULL for the defaults.  Returns 0 with *out set
 * (the caller owns it; sm_verify_result_free) whatever the message holds,
 * or a negative SG_ERR_* when the check could not be made (SG_ERR_NOMEM,
 * SG_ERR_SYSTEM for spool I/O, SG_ERR_INVALID_ARG for options out of
 * bounds).  The message is not modified.
 */
int sm_verify(
    struct sm_msg *m, const struct sm_verify_opts *o, struct sm_verify_result **out) SG_WUR;
void sm_verify_result_free(struct sm_verify_result *r);

/* The primary layer, or NULL when there is none. */
const struct sm_verify_layer *sm_verify_primary(const struct sm_verify_result *r);
/* "none", "pass", "fail", "malformed", "encrypted". */
const char *sm_verify_status_name(enum sm_verify_status s);

#endif
