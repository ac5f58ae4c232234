/*
 * signer.c - the key-holding signer process and the worker's client.
 *
 * SECURITY: the worker parses untrusted mail and runs as milter.user; it
 * cannot open the keystore (root's, mode 0600) and never receives a key.
 * The signer reads the master passphrase, opens the keystore, and answers
 * only IDENTITY and SIGN, each checked for size and form before use; a
 * malformed request closes the channel.  A SIGN is answered only for an
 * identity that passes keystore_get_signer() at that moment (validity,
 * chain, usage).  Limit: the signer cannot see the SMTP session, so it
 * trusts the worker's decision about who may sign; a compromised worker
 * can obtain signatures, never keys.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "milter/signer.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/secfile.h"
#include "util/secmem.h"

#define REPLY_TIMEOUT_MS 120000

/* --- framing -------------------------------------------------------- */

static int
io_full(int fd, void *p, size_t n, int writing)
{
	unsigned char *c = p;
	ssize_t k;

	while (n > 0) {
		k = writing ? write(fd, c, n) : read(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return SG_ERR_SYSTEM;
		if (k == 0)
			return SG_ERR_TRUNCATED;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
send_frame(int fd, uint8_t type, const struct sg_buf *payload)
{
	unsigned char h[5];
	uint32_t len = (uint32_t)payload->len + 1;
	int r;

	h[0] = (unsigned char)(len >> 24);
	h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)len;
	h[4] = type;
	if ((r = io_full(fd, h, 5, 1)) != 0)
		return r;
	return payload->len ? io_full(fd, payload->data, payload->len, 1) : 0;
}

static int
recv_frame(int fd, size_t max, int timeout_ms, uint8_t *type, struct sg_buf *payload)
{
	unsigned char h[5];
	uint32_t len;
	struct pollfd pfd = {fd, POLLIN, 0};
	int r;

	sg_buf_reset(payload);
	if (timeout_ms > 0 && (r = poll(&pfd, 1, timeout_ms)) <= 0)
		return r == 0 ? SG_ERR_TRUNCATED : SG_ERR_SYSTEM;
	if ((r = io_full(fd, h, 5, 0)) != 0)
		return r;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len < 1 || len - 1 > max)
		return SG_ERR_LIMIT;
	*type = h[4];
	if (len == 1)
		return 0;
	if (payload->alloc < len && sg_buf_put(payload, "", 0) != 0)
		return SG_ERR_NOMEM;
	{
		unsigned char *tmp = malloc(len - 1);

		if (tmp == NULL)
			return SG_ERR_NOMEM;
		if ((r = io_full(fd, tmp, len - 1, 0)) == 0)
			r = sg_buf_put(payload, tmp, len - 1);
		free(tmp);
	}
	return r;
}

static int
put_u32(struct sg_buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	    (unsigned char)(v >> 8), (unsigned char)v};

	return sg_buf_put(b, c, 4);
}

static int
put_bytes(struct sg_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = put_u32(b, (uint32_t)n)) != 0)
		return r;
	return sg_buf_put(b, p, n);
}

/* A read cursor over a payload. */
struct rd {
	const unsigned char *p;
	size_t n;
};

static int
get_u8(struct rd *r, uint8_t *v)
{
	if (r->n < 1)
		return SG_ERR_TRUNCATED;
	*v = *r->p++;
	r->n--;
	return 0;
}

static int
get_u32(struct rd *r, uint32_t *v)
{
	if (r->n < 4)
		return SG_ERR_TRUNCATED;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
	    r->p[3];
	r->p += 4;
	r->n -= 4;
	return 0;
}

static int
get_bytes(struct rd *r, const unsigned char **p, size_t *n)
{
	uint32_t len;
	int e;

	if ((e = get_u32(r, &len)) != 0)
		return e;
	if (len > r->n)
		return SG_ERR_TRUNCATED;
	*p = r->p;
	*n = len;
	r->p += len;
	r->n -= len;
	return 0;
}

/* An address field: 1..319 bytes, no NUL, copied into out. */
static int
get_addr(struct rd *r, char out[320])
{
	const unsigned char *p;
	size_t n;
	int e;

	if ((e = get_bytes(r, &p, &n)) != 0)
		return e;
	if (n == 0 || n >= 320 || memchr(p, 0, n) != NULL)
		return SG_ERR_MALFORMED;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static int
put_cert(struct sg_buf *b, X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der), r;

	if (n <= 0)
		return SG_ERR_CRYPTO;
	r = put_bytes(b, der, (size_t)n);
	OPENSSL_free(der);
	return r;
}

/* --- the signer process ---------------------------------------------- */

struct signer_state {
	struct keystore *ks;
	struct segel_cfg *cfg;
};

static struct signer_state S;

static int
serve_identity(struct rd *in, struct sg_buf *out)
{
	struct ks_signer *s = NULL;
	struct ks_rev rv;
	char addr[320], why[400] = "";
	enum signer_class cls = SIGNER_OK;
	int r, i;

	if ((r = get_addr(in, addr)) != 0 || in->n != 0)
		return SG_ERR_MALFORMED;
	r = keystore_get_signer(S.ks, addr, time(NULL), &s, why, sizeof(why));
	if (r == SG_ERR_NOT_FOUND)
		cls = SIGNER_NOT_FOUND;
	else if (r == SG_ERR_CERT_UNUSABLE)
		cls = SIGNER_UNUSABLE;
	else if (r != 0) {
		cls = SIGNER_ERROR;
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s", sg_strerror(r));
	} else if (S.cfg->revocation_check) {
		r = keystore_check_revocation(S.ks, s->s.cert, s->s.chain, time(NULL), 1,
		    (long)S.cfg->revocation_timeout, &rv);
		if (r != 0) {
			cls = SIGNER_ERROR;
			snprintf(
			    why, sizeof(why), "revocation check failed: %s", sg_strerror(r));
		} else if (rv.status == KS_REV_REVOKED) {
			cls = SIGNER_REVOKED;
			snprintf(why, sizeof(why), "%s", rv.text);
		} else if (rv.status == KS_REV_UNKNOWN) {
			cls = SIGNER_REVOCATION_UNKNOWN;
			snprintf(why, sizeof(why), "%s", rv.text);
		}
	}
	r = sg_buf_putc(out, cls);
	if (r == 0)
		r = put_bytes(out, why, strlen(why));
	if (r == 0 && s != NULL) {
		r = put_cert(out, s->s.cert);
		if (r == 0)
			r = put_u32(out, (uint32_t)(s->s.chain ? sk_X509_num(s->s.chain) : 0));
		for (i = 0; r == 0 && s->s.chain && i < sk_X509_num(s->s.chain); i++)
			r = put_cert(out, sk_X509_value(s->s.chain, i));
	}
	keystore_signer_free(s);
	return r;
}

static int
serve_sign(struct rd *in, struct sg_buf *out)
{
	static const size_t dlens[] = {32, 48, 64};
	struct ks_signer *s = NULL;
	unsigned char sig[SM_MAX_SIGNATURE];
	size_t siglen = sizeof(sig), dlen;
	const unsigned char *dgst;
	char addr[320], why[400];
	uint8_t alg, pss;
	int r;

	if ((r = get_addr(in, addr)) != 0 || (r = get_u8(in, &alg)) != 0 ||
	    (r = get_u8(in, &pss)) != 0 || (r = get_bytes(in, &dgst, &dlen)) != 0 ||
	    in->n != 0 || alg > SM_DIGEST_SHA512 || pss > 1 || dlen != dlens[alg])
		return SG_ERR_MALFORMED;
	r = keystore_get_signer(S.ks, addr, time(NULL), &s, why, sizeof(why));
	if (r == 0)
		r = sm_sign_digest_with_key(
		    s->s.key, (enum sm_digest)alg, pss, dgst, dlen, sig, &siglen);
	keystore_signer_free(s);
	if (r != 0) {
		sg_log(SG_LOG_ERROR, "signer: refused to sign as %s: %s", addr,
		    r == SG_ERR_CERT_UNUSABLE || r == SG_ERR_NOT_FOUND ? why : sg_strerror(r));
		return put_u32(out, (uint32_t)-r);
	}
	if ((r = put_u32(out, 0)) != 0)
		return r;
	r = put_bytes(out, sig, siglen);
	explicit_bzero(sig, sizeof(sig));
	return r;
}

static void *
serve_channel(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sg_buf in, out;
	uint8_t type;
	int r;

	sg_buf_init(&in, SG_SIGNER_MAX_REQUEST);
	sg_buf_init(&out, SG_SIGNER_MAX_REPLY);
	for (;;) {
		struct rd rd;

		if ((r = recv_frame(fd, SG_SIGNER_MAX_REQUEST, 0, &type, &in)) != 0)
			break;
		rd.p = in.data;
		rd.n = in.len;
		sg_buf_reset(&out);
		if (type == SIGNER_IDENTITY)
			r = serve_identity(&rd, &out);
		else if (type == SIGNER_SIGN)
			r = serve_sign(&rd, &out);
		else
			r = SG_ERR_MALFORMED;
		if (r != 0) {
			sg_log(SG_LOG_ERROR,
			    "signer: bad request of type %u (%s); closing the channel", type,
			    sg_strerror(r));
			break;
		}
		if (send_frame(fd, type, &out) != 0)
			break;
	}
	sg_buf_free(&in);
	sg_buf_free(&out);
	close(fd);
	return NULL;
}

/*
 * Background refresh (issue: CRLs refreshed before they go stale): every
 * few minutes, re-fetch the CRLs of the own certificates that expire
 * within the hour, so signing rarely waits on the network.
 */
static void *
refresh_crls(void *arg)
{
	(void)arg;
	for (;;) {
		int updated = 0, failed = 0;

		if (keystore_update_crls(S.ks, time(NULL), 3600,
		        (long)S.cfg->revocation_timeout, &updated, &failed) == 0 &&
		    (updated > 0 || failed > 0))
			sg_log(failed ? SG_LOG_WARNING : SG_LOG_INFO,
			    "signer: CRL refresh: %d updated, %d distribution points failed",
			    updated, failed);
		sleep(300);
	}
	return NULL;
}

void
signer_main(struct segel_cfg *cfg, const char *cfg_path, int *fds, int nfd)
{
	pthread_t *tids, refresher;
	char why[512], *master = NULL;
	int i, r;

	(void)cfg_path;
	S.cfg = cfg;
	/* private key numbers go to OpenSSL's secure heap: locked in memory,
	 * guarded pages, zeroed on free (best effort if mlock is limited) */
	if (CRYPTO_secure_malloc_init(4 << 20, 64) == 0)
		sg_log(SG_LOG_WARNING, "signer: no secure heap for keys (RLIMIT_MEMLOCK?)");
	if (sg_secfile_read_line(cfg->master_passphrase_file, &master, why, sizeof(why)) != 0) {
		sg_log(SG_LOG_FATAL, "signer: master passphrase: %s", why);
		_exit(1);
	}
	r = keystore_open(cfg->keystore_path, master, 0, &S.ks, why, sizeof(why));
	sg_strfreezero(master);
	if (r != 0) {
		sg_log(SG_LOG_FATAL, "signer: keystore: %s", why);
		_exit(1);
	}
	keystore_set_actor(S.ks, "segel-signer");
	keystore_allow_sha1(S.ks, cfg->allow_sha1);
	if (cfg->pkcs11_module[0] != '\0') {
		char *pin = NULL;

		if (cfg->pkcs11_pin_file[0] != '\0' &&
		    sg_secfile_read_line(cfg->pkcs11_pin_file, &pin, why, sizeof(why)) != 0) {
			sg_log(SG_LOG_FATAL, "signer: PKCS#11 PIN: %s", why);
			_exit(1);
		}
		r = keystore_set_pkcs11(S.ks, cfg->pkcs11_module, pin);
		sg_strfreezero(pin);
		if (r != 0)
			_exit(1);
	}
	if ((tids = calloc((size_t)nfd, sizeof(*tids))) == NULL)
		_exit(1);
	for (i = 0; i < nfd; i++)
		if (pthread_create(&tids[i], NULL, serve_channel, (void *)(intptr_t)fds[i]) !=
		    0)
			_exit(1);
	if (cfg->revocation_check && pthread_create(&refresher, NULL, refresh_crls, NULL) != 0)
		_exit(1);
	sg_log(SG_LOG_INFO, "signer ready: %d channels, keystore %s", nfd, cfg->keystore_path);
	for (i = 0; i < nfd; i++)
		pthread_join(tids[i], NULL);
	_exit(0);
}

/* --- the worker's client --------------------------------------------- */

static struct {
	int *fds;
	char *busy;
	int n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} pool = {NULL, NULL, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

int
signer_client_init(int *fds, int nfd)
{
	if ((pool.fds = calloc((size_t)nfd, sizeof(int))) == NULL ||
	    (pool.busy = calloc((size_t)nfd, 1)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(pool.fds, fds, (size_t)nfd * sizeof(int));
	pool.n = nfd;
	return 0;
}

static int
acquire(void)
{
	int i;

	pthread_mutex_lock(&pool.mu);
	for (;;) {
		for (i = 0; i < pool.n; i++)
			if (!pool.busy[i] && pool.fds[i] >= 0) {
				pool.busy[i] = 1;
				pthread_mutex_unlock(&pool.mu);
				return i;
			}
		for (i = 0; i < pool.n && pool.fds[i] < 0; i++)
			;
		if (i == pool.n) { /* every channel is gone: the signer died */
			pthread_mutex_unlock(&pool.mu);
			return -1;
		}
		pthread_cond_wait(&pool.cv, &pool.mu);
	}
}

static void
release(int i, int broken)
{
	pthread_mutex_lock(&pool.mu);
	if (broken) {
		close(pool.fds[i]);
		pool.fds[i] = -1;
	}
	pool.busy[i] = 0;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/* One request/reply exchange on a free channel. */
static int
call(uint8_t type, const struct sg_buf *req, struct sg_buf *reply)
{
	uint8_t rtype;
	int i, r;

	if ((i = acquire()) < 0)
		return SG_ERR_SYSTEM;
	r = send_frame(pool.fds[i], type, req);
	if (r == 0)
		r = recv_frame(
		    pool.fds[i], SG_SIGNER_MAX_REPLY, REPLY_TIMEOUT_MS, &rtype, reply);
	if (r == 0 && rtype != type)
		r = SG_ERR_MALFORMED;
	release(i, r != 0);
	return r;
}

static X509 *
get_cert(struct rd *in)
{
	const unsigned char *p;
	size_t n;

	if (get_bytes(in, &p, &n) != 0)
		return NULL;
	return d2i_X509(NULL, &p, (long)n);
}

void
signer_identity_free(struct signer_identity *id)
{
	if (id == NULL)
		return;
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	free(id);
}

int
signer_get_identity(const char *addr, struct signer_identity **out)
{
	struct signer_identity *id = NULL;
	struct sg_buf req, rep;
	const unsigned char *t;
	size_t tl;
	uint32_t nchain, k;
	uint8_t cls;
	struct rd rd;
	int r;

	*out = NULL;
	sg_buf_init(&req, SG_SIGNER_MAX_REQUEST);
	sg_buf_init(&rep, SG_SIGNER_MAX_REPLY);
	if ((r = put_bytes(&req, addr, strlen(addr))) != 0 ||
	    (r = call(SIGNER_IDENTITY, &req, &rep)) != 0)
		goto out;
	r = SG_ERR_MALFORMED;
	rd.p = rep.data;
	rd.n = rep.len;
	if ((id = calloc(1, sizeof(*id))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	snprintf(id->address, sizeof(id->address), "%s", addr);
	if (get_u8(&rd, &cls) != 0 || cls > SIGNER_ERROR || get_bytes(&rd, &t, &tl) != 0)
		goto out;
	id->cls = (enum signer_class)cls;
	snprintf(
	    id->text, sizeof(id->text), "%.*s", (int)(tl < 399 ? tl : 399), (const char *)t);
	if (rd.n > 0) {
		if ((id->cert = get_cert(&rd)) == NULL || get_u32(&rd, &nchain) != 0 ||
		    nchain > 16 || (id->chain = sk_X509_new_null()) == NULL)
			goto out;
		for (k = 0; k < nchain; k++) {
			X509 *x = get_cert(&rd);

			if (x == NULL || !sk_X509_push(id->chain, x)) {
				X509_free(x);
				goto out;
			}
		}
	}
	if (id->cls == SIGNER_OK && id->cert == NULL)
		goto out;
	*out = id;
	id = NULL;
	r = 0;
out:
	signer_identity_free(id);
	sg_buf_free(&req);
	sg_buf_free(&rep);
	return r;
}

int
signer_sign_digest(void *arg, enum sm_digest d, int pss, const unsigned char *dgst, size_t dlen,
    unsigned char *sig, size_t *siglen)
{
	const struct signer_identity *id = arg;
	struct sg_buf req, rep;
	const unsigned char *p;
	size_t n;
	uint32_t status;
	struct rd rd;
	int r;

	sg_buf_init(&req, SG_SIGNER_MAX_REQUEST);
	sg_buf_init(&rep, SG_SIGNER_MAX_REPLY);
	if ((r = put_bytes(&req, id->address, strlen(id->address))) != 0 ||
	    (r = sg_buf_putc(&req, (int)d)) != 0 || (r = sg_buf_putc(&req, pss ? 1 : 0)) != 0 ||
	    (r = put_bytes(&req, dgst, dlen)) != 0 || (r = call(SIGNER_SIGN, &req, &rep)) != 0)
		goto out;
	rd.p = rep.data;
	rd.n = rep.len;
	r = SG_ERR_MALFORMED;
	if (get_u32(&rd, &status) != 0)
		goto out;
	if (status != 0) {
		r = -(int)status < SG_ERR_MIN ? SG_ERR_INTERNAL : -(int)status;
		goto out;
	}
	if (get_bytes(&rd, &p, &n) != 0 || n > *siglen)
		goto out;
	memcpy(sig, p, n);
	*siglen = n;
	r = 0;
out:
	sg_buf_free(&req);
	sg_buf_free(&rep);
	return r;
}
