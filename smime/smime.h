/*
 * smime.h - the Segel core: streaming MIME and CMS work on one message.
 *
 * The API follows the milter events.  A caller (the milter, segelctl, a
 * test) creates a struct sm_msg, feeds it the headers one by one
 * (sm_msg_header), marks the end of the headers (sm_msg_eoh), feeds the
 * body in chunks of any size (sm_msg_body) and closes it (sm_msg_eom).
 * The body is kept in a struct sg_spool: in memory up to a threshold,
 * then in an unlinked file, so memory does not grow with message size.
 *
 * Operations on a complete message (sm_sign ...) never modify it; they
 * return a struct sm_output: the header edits to apply, in order, and the
 * new body as a spool.  The core never logs and never reads configuration:
 * every function returns 0 or a negative SG_ERR_* code (util/sg_err.h), and
 * the details of a MIME problem are in sm_msg_problem().
 */
#ifndef SM_SMIME_H
#define SM_SMIME_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/sg_err.h"
#include "util/spool.h"

/* Bounds on untrusted input; every one is a configuration setting. */
struct sm_limits {
	size_t max_message_size; /* header block plus body, bytes */
	size_t max_header_size; /* one header field, or one part's header block */
	size_t max_headers; /* header fields of the message */
	size_t max_mime_depth; /* nesting of multipart and message parts */
	size_t max_mime_parts; /* MIME entities in the whole message */
};

/* Fills *l with the built-in defaults. */
void sm_limits_default(struct sm_limits *l);

/* What the top-level Content-Type says the message already is. */
enum sm_kind {
	SM_KIND_PLAIN, /* not S/MIME */
	SM_KIND_SIGNED, /* multipart/signed or pkcs7-mime signed-data */
	SM_KIND_ENCRYPTED, /* pkcs7-mime enveloped or authEnveloped data */
};

struct sm_msg;

/*
 * Creates an empty message.  spool_dir holds bodies beyond mem_threshold
 * bytes.  The caller owns *out (sm_msg_free).
 */
int sm_msg_new(const struct sm_limits *lim, const char *spool_dir, size_t mem_threshold,
    struct sm_msg **out) SG_WUR;
void sm_msg_free(struct sm_msg *m);

/*
 * Adds one header field.  value is what follows the colon, as the MTA
 * gives it (leading blanks optional; folded lines separated by LF or
 * CRLF).  SG_ERR_LIMIT past max_headers or max_header_size.
 */
int sm_msg_header(struct sm_msg *m, const char *name, const char *value) SG_WUR;
int sm_msg_eoh(struct sm_msg *m) SG_WUR;
/* Appends body bytes (CRLF or LF line ends).  SG_ERR_LIMIT past the size. */
int sm_msg_body(struct sm_msg *m, const void *p, size_t n) SG_WUR;
/*
 * Ends the message and scans its MIME structure.  Returns 0, or
 * SG_ERR_MALFORMED / SG_ERR_LIMIT with the reason in sm_msg_problem();
 * the message can still be inspected after either.
 */
int sm_msg_eom(struct sm_msg *m) SG_WUR;

/* Reads a whole RFC 5322 message from a spool (CLI and tests). */
int sm_msg_parse_spool(struct sm_msg *m, const struct sg_spool *in) SG_WUR;

/* Human-readable reason for the last MALFORMED/LIMIT result, or "". */
const char *sm_msg_problem(const struct sm_msg *m);
enum sm_kind sm_msg_kind(const struct sm_msg *m);
size_t sm_msg_header_count(const struct sm_msg *m);
const char *sm_msg_header_name(const struct sm_msg *m, size_t i);
const char *sm_msg_header_value(const struct sm_msg *m, size_t i);
/* Value of the nth (0-based) header called name, or NULL. */
const char *sm_msg_get(const struct sm_msg *m, const char *name, size_t nth);
/* Number of header fields called name (case-insensitive). */
size_t sm_msg_count(const struct sm_msg *m, const char *name);
const struct sg_spool *sm_msg_body_spool(const struct sm_msg *m);

/* One change to the header block, for smfi_chgheader/smfi_addheader. */
enum sm_edit_op {
	SM_EDIT_DELETE, /* delete the index-th (1-based) field called name */
	SM_EDIT_ADD, /* append a field at the end of the header block */
};

struct sm_edit {
	enum sm_edit_op op;
	char *name;
	size_t index;
	char *value; /* ADD only: folded with CRLF + TAB where long */
};

/* Result of an operation: apply edits in order, then replace the body. */
struct sm_output {
	struct sm_edit *edits;
	size_t nedits;
	struct sg_spool *body;
};

void sm_output_free(struct sm_output *o);
/*
 * Writes the whole resulting message (original headers with the edits
 * applied, then the new body) to a spool; used by segelctl and tests.
 */
int sm_output_render(
    const struct sm_msg *m, const struct sm_output *o, struct sg_spool *dst) SG_WUR;

/* The identity that signs: all borrowed from the caller. */
enum sm_digest { SM_DIGEST_SHA256, SM_DIGEST_SHA384, SM_DIGEST_SHA512 };

/*
 * Makes the raw signature over a digest (of the CMS signed attributes)
 * with the private key of the identity: the only step that needs the key.
 * sig has room for *siglen bytes; *siglen gets the length used.
 */
typedef int (*sm_sign_fn)(void *arg, enum sm_digest d, int pss, const unsigned char *dgst,
    size_t dlen, unsigned char *sig, size_t *siglen);

/*
 * The identity that signs: all borrowed from the caller.  Either key is
 * set (the signature is made in this process) or sign is (the key lives
 * elsewhere, e.g. in the signer process or an HSM, and key may be NULL).
 */
struct sm_signer {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* intermediates, may be NULL */
	sm_sign_fn sign;
	void *sign_arg;
};

/* The maximum signature size sm_sign_fn must be able to return. */
#define SM_MAX_SIGNATURE 1024

/*
 * sm_sign_fn for a key held in this process: RSA PKCS#1 v1.5 (or PSS with
 * salt length = digest length) or ECDSA over dgst, which must have the
 * length of digest d.
 */
int sm_sign_digest_with_key(EVP_PKEY *key, enum sm_digest d, int pss, const unsigned char *dgst,
    size_t dlen, unsigned char *sig, size_t *siglen) SG_WUR;

struct sm_sign_opts {
	enum sm_digest digest;
	int rsa_pss; /* RSASSA-PSS instead of PKCS#1 v1.5 */
	int include_chain; /* put the chain into the signature */
	const char *spool_dir;
	size_t mem_threshold;
};

/*
 * Signs the message as a detached multipart/signed (RFC 8551).  The
 * Content-* fields move into the signed entity, 8bit and binary parts are
 * re-encoded so the result is 7-bit clean, lines are canonical CRLF, and
 * preambles and epilogues are left out of the signed data.  Returns 0,
 * SG_ERR_ALREADY_SMIME (the message is signed or encrypted already),
 * SG_ERR_MALFORMED / SG_ERR_LIMIT (see sm_msg_problem), SG_ERR_CRYPTO, or
 * another code.  The caller owns *out (sm_output_free).
 */
int sm_sign(struct sm_msg *m, const struct sm_signer *signer, const struct sm_sign_opts *opts,
    struct sm_output **out) SG_WUR;

/* "sha-256" etc., the micalg name of a digest. */
const char *sm_digest_micalg(enum sm_digest d);
/* Parses "sha256", "sha384", "sha512"; -1 when unknown. */
int sm_digest_parse(const char *name);

/*
 * Addresses.  sm_addr_parse_list() parses an RFC 5322 address list (a From
 * or To field) into lower-cased-domain addr-specs.  Groups and unparsable
 * input give SG_ERR_MALFORMED.  The caller frees with sm_addr_list_free().
 */
int sm_addr_parse_list(const char *value, char ***addrs, size_t *naddrs) SG_WUR;
void sm_addr_list_free(char **addrs, size_t n);
/* Normalises an envelope address ("<a@B>" -> "a@b"); NULL on bad input. */
char *sm_addr_normalize(const char *addr);
/* The domain part of an addr-spec (after the last '@'), or "". */
const char *sm_addr_domain(const char *addr);

/* Whether cert names addr (case-insensitive domain) in subjectAltName. */
int sm_cert_has_address(X509 *cert, const char *addr);
/* Lists the rfc822Name addresses of cert; caller frees with sm_addr_list_free. */
int sm_cert_addresses(X509 *cert, char ***addrs, size_t *n) SG_WUR;

#endif
