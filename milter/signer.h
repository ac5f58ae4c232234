/*
 * signer.h - privilege separation between the worker (parses mail, holds
 * no keys) and the signer (holds the keystore and the decrypted keys).
 *
 * They talk over socketpairs created by the supervisor, one per channel;
 * the worker uses a pool of channels so several messages can be signed at
 * once.  The signer answers a fixed table of requests, each checked for
 * type and size before it is parsed:
 *
 *   IDENTITY addr          -> status, reason text, certificate, chain
 *                             (validated and revocation-checked now)
 *   SIGN addr alg pss dgst -> status, signature over dgst
 *
 * Frame: u32 length (of what follows, big-endian), u8 type, payload.
 * Requests are at most SG_SIGNER_MAX_REQUEST bytes; anything else ends the
 * channel.  The signer never sends key material.
 */
#ifndef MI_SIGNER_H
#define MI_SIGNER_H

#include <stddef.h>

#include "keystore/keystore.h"
#include "milter/config.h"
#include "smime/smime.h"

#define SG_SIGNER_MAX_REQUEST 1024
#define SG_SIGNER_MAX_REPLY (256 * 1024)

enum signer_req { SIGNER_IDENTITY = 1, SIGNER_SIGN = 2 };

/* Outcome classes of IDENTITY. */
enum signer_class {
	SIGNER_OK,
	SIGNER_NOT_FOUND,
	SIGNER_UNUSABLE,
	SIGNER_REVOKED,
	SIGNER_REVOCATION_UNKNOWN,
	SIGNER_ERROR,
};

/* --- signer side --- */

/*
 * Runs the signer process: opens the keystore with the master passphrase,
 * then serves the nfd channels until they all close.  Never returns.
 */
void signer_main(struct segel_cfg *cfg, const char *cfg_path, int *fds, int nfd)
    __attribute__((noreturn));

/* --- worker side --- */

/* Hands the worker's ends of the channels to the client pool. */
int signer_client_init(int *fds, int nfd) SG_WUR;

/* An identity as the signer reported it. */
struct signer_identity {
	enum signer_class cls;
	char address[320];
	char text[400];
	X509 *cert;
	STACK_OF(X509) * chain;
};

/* Asks the signer for addr's identity; 0 with *out (free it), or an error. */
int signer_get_identity(const char *addr, struct signer_identity **out) SG_WUR;
void signer_identity_free(struct signer_identity *id);
/* sm_sign_fn: arg is a struct signer_identity. */
int signer_sign_digest(void *arg, enum sm_digest d, int pss, const unsigned char *dgst,
    size_t dlen, unsigned char *sig, size_t *siglen);

#endif
