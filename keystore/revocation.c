/*
 * revocation.c - is a certificate revoked?  OCSP (RFC 6960) first, then
 * CRLs (RFC 5280), both cached in the store until their nextUpdate.
 *
 * An OCSP response counts only when its signature chains to a trust
 * anchor through the issuer (the CA itself or a responder it delegated
 * to), its nonce matches ours, and it is current.  A CRL counts only when
 * the issuer's key verifies it and it is current.  Anything else leaves
 * the status unknown, and the caller's policy for that use decides.
 *
 * The keystore lock is not held during network fetches, so one slow
 * responder never blocks signing for other senders whose status is
 * cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ksint.h"

#define MAX_CRL_SIZE (20 * 1024 * 1024)
#define MAX_OCSP_SIZE (256 * 1024)
#define OCSP_DEFAULT_LIFETIME 3600 /* when a response has no nextUpdate */

static void
day(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void
set(struct ks_rev *out, enum ks_rev_status st, const char *src, time_t when)
{
	char d[32];

	out->status = st;
	snprintf(out->source, sizeof(out->source), "%s", src);
	out->revoked_at = when;
	if (st == KS_REV_REVOKED) {
		day(when, d, sizeof(d));
		snprintf(out->text, sizeof(out->text), "certificate revoked on %s (%s)", d,
		    strcmp(src, "ocsp") == 0 ? "OCSP" : "CRL");
	} else if (st == KS_REV_GOOD) {
		snprintf(out->text, sizeof(out->text), "not revoked (%s)",
		    strcmp(src, "ocsp") == 0 ? "OCSP" : "CRL");
	}
}

static X509 *
find_issuer(struct keystore *ks, X509 *cert, STACK_OF(X509) * chain)
{
	STACK_OF(X509) * lists[3] = {chain, ks->inter, ks->anchors};
	int i, j;

	for (j = 0; j < 3; j++)
		for (i = 0; lists[j] != NULL && i < sk_X509_num(lists[j]); i++)
			if (X509_check_issued(sk_X509_value(lists[j], i), cert) == X509_V_OK)
				return sk_X509_value(lists[j], i);
	return NULL;
}

static void
issuer_key(X509_NAME *name, char out[24])
{
	snprintf(out, 24, "%08lx", X509_NAME_hash_ex(name, NULL, NULL, NULL));
}

/* --- OCSP ------------------------------------------------------------- */

static int
ocsp_cached(struct keystore *ks, const char *fp, time_t now, struct ks_rev *out)
{
	sqlite3_stmt *st;
	int found = 0;

	if (sqlite3_prepare_v2(ks->db,
	        "SELECT status, revoked_at FROM ocsp_responses"
	        " WHERE cert_fingerprint=? AND next_update>? AND this_update<=?",
	        -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (long long)now);
	sqlite3_bind_int64(st, 3, (long long)now + 300);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (strcmp(s, "good") == 0)
			set(out, KS_REV_GOOD, "ocsp", 0);
		else if (strcmp(s, "revoked") == 0)
			set(out, KS_REV_REVOKED, "ocsp", (time_t)sqlite3_column_int64(st, 1));
		found = strcmp(s, "unknown") != 0;
	}
	sqlite3_finalize(st);
	return found;
}

static void
ocsp_store(struct keystore *ks, const char *fp, const char *status, time_t revoked,
    time_t thisupd, time_t nextupd, const unsigned char *der, size_t len)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(ks->db,
	        "INSERT OR REPLACE INTO ocsp_responses(cert_fingerprint, status, revoked_at,"
	        " this_update, next_update, der, fetched) VALUES (?,?,?,?,?,?,?)",
	        -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (long long)revoked);
	sqlite3_bind_int64(st, 4, (long long)thisupd);
	sqlite3_bind_int64(st, 5, (long long)nextupd);
	sqlite3_bind_blob(st, 6, der, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (long long)time(NULL));
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
}

static X509_STORE *
anchor_store(struct keystore *ks)
{
	X509_STORE *store = X509_STORE_new();
	int i;

	for (i = 0; store != NULL && i < sk_X509_num(ks->anchors); i++)
		X509_STORE_add_cert(store, sk_X509_value(ks->anchors, i));
	return store;
}

/* Asks the responder; 1 with *out set when it gave a usable answer. */
static int
ocsp_query(struct keystore *ks, X509 *cert, X509 *issuer, STACK_OF(X509) * chain,
    const char *url, long timeout, time_t now, const char *fp, struct ks_rev *out)
{
	OCSP_REQUEST *req = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE *store = NULL;
	unsigned char *qder = NULL, *rder = NULL;
	const unsigned char *p;
	size_t rlen = 0;
	int qlen, status = -1, reason, ok = 0, r;
	time_t nu;

	if ((id = OCSP_cert_to_id(NULL, cert, issuer)) == NULL ||
	    (req = OCSP_REQUEST_new()) == NULL || OCSP_request_add0_id(req, id) == NULL)
		goto out;
	id = NULL; /* transferred */
	if (!OCSP_request_add1_nonce(req, NULL, -1) ||
	    (qlen = i2d_OCSP_REQUEST(req, &qder)) <= 0)
		goto out;
	pthread_mutex_unlock(&ks->lock);
	r = ks_http_fetch(url, qder, (size_t)qlen, "application/ocsp-request", timeout,
	    MAX_OCSP_SIZE, &rder, &rlen);
	pthread_mutex_lock(&ks->lock);
	if (r != 0)
		goto out;
	p = rder;
	if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)rlen)) == NULL ||
	    OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    (bs = OCSP_response_get1_basic(resp)) == NULL || OCSP_check_nonce(req, bs) <= 0)
		goto out;
	if ((untrusted = sk_X509_dup(chain ? chain : ks->inter)) == NULL ||
	    !sk_X509_push(untrusted, issuer) || (store = anchor_store(ks)) == NULL ||
	    OCSP_basic_verify(bs, untrusted, store, 0) <= 0)
		goto out;
	if ((id = OCSP_cert_to_id(NULL, cert, issuer)) == NULL ||
	    !OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) ||
	    !OCSP_check_validity(thisupd, nextupd, 300, -1))
		goto out;
	nu = nextupd ? ks_asn1_time(nextupd) : now + OCSP_DEFAULT_LIFETIME;
	if (status == V_OCSP_CERTSTATUS_GOOD) {
		set(out, KS_REV_GOOD, "ocsp", 0);
		ocsp_store(ks, fp, "good", 0, ks_asn1_time(thisupd), nu, rder, rlen);
		ok = 1;
	} else if (status == V_OCSP_CERTSTATUS_REVOKED) {
		set(out, KS_REV_REVOKED, "ocsp", rev ? ks_asn1_time(rev) : now);
		ocsp_store(
		    ks, fp, "revoked", out->revoked_at, ks_asn1_time(thisupd), nu, rder, rlen);
		ok = 1;
	}
out:
	ERR_clear_error();
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	sk_X509_free(untrusted);
	X509_STORE_free(store);
	OPENSSL_free(qder);
	free(rder);
	return ok;
}

static int
ocsp_url(X509 *cert, char *url, size_t len)
{
	STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cert);
	int ok = 0;

	if (urls != NULL && sk_OPENSSL_STRING_num(urls) > 0) {
		snprintf(url, len, "%s", sk_OPENSSL_STRING_value(urls, 0));
		ok = 1;
	}
	X509_email_free(urls);
	return ok;
}

/* --- CRLs ------------------------------------------------------------- */

static int
crl_store(struct keystore *ks, X509_CRL *crl, const char *url)
{
	unsigned char *der = NULL;
	sqlite3_stmt *st;
	char key[24], detail[160];
	int len, r = SG_ERR_STORE;
	time_t nu;

	if ((len = i2d_X509_CRL(crl, &der)) <= 0)
		return SG_ERR_CRYPTO;
	issuer_key(X509_CRL_get_issuer(crl), key);
	nu = X509_CRL_get0_nextUpdate(crl)
	    ? ks_asn1_time(X509_CRL_get0_nextUpdate(crl))
	    : ks_asn1_time(X509_CRL_get0_lastUpdate(crl)) + 86400;
	if (ks_begin(ks) != 0)
		goto out;
	if (sqlite3_prepare_v2(ks->db,
	        "INSERT OR REPLACE INTO crls(issuer, url, der, this_update, next_update, "
	        "fetched)"
	        " VALUES (?,?,?,?,?,?)",
	        -1, &st, NULL) != SQLITE_OK) {
		r = ks_finish(ks, SG_ERR_STORE);
		goto out;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, url ? url : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, der, len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (long long)ks_asn1_time(X509_CRL_get0_lastUpdate(crl)));
	sqlite3_bind_int64(st, 5, (long long)nu);
	sqlite3_bind_int64(st, 6, (long long)time(NULL));
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : SG_ERR_STORE;
	sqlite3_finalize(st);
	snprintf(detail, sizeof(detail), "issuer=%s url=%s revoked=%d", key, url ? url : "",
	    sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)));
	if (r == 0)
		r = ks_audit(ks, "crl-update", detail);
	r = ks_finish(ks, r);
out:
	OPENSSL_free(der);
	return r;
}

/* Checks cert against fresh cached CRLs of its issuer; 1 with an answer. */
static int
crl_cached(struct keystore *ks, X509 *cert, X509 *issuer, time_t now, struct ks_rev *out)
{
	EVP_PKEY *pk = X509_get0_pubkey(issuer);
	sqlite3_stmt *st;
	char key[24];
	int found = 0;

	issuer_key(X509_get_issuer_name(cert), key);
	if (sqlite3_prepare_v2(ks->db,
	        "SELECT der FROM crls WHERE issuer=? AND next_update>? AND this_update<=?"
	        " ORDER BY this_update DESC",
	        -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (long long)now);
	sqlite3_bind_int64(st, 3, (long long)now + 300);
	while (!found && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_blob(st, 0);
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, sqlite3_column_bytes(st, 0));
		X509_REVOKED *rv = NULL;

		if (crl != NULL && pk != NULL && X509_CRL_verify(crl, pk) == 1 &&
		    X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) ==
		        0) {
			if (X509_CRL_get0_by_cert(crl, &rv, cert) == 1)
				set(out, KS_REV_REVOKED, "crl",
				    ks_asn1_time(X509_REVOKED_get0_revocationDate(rv)));
			else
				set(out, KS_REV_GOOD, "crl", 0);
			found = 1;
		}
		X509_CRL_free(crl);
	}
	sqlite3_finalize(st);
	ERR_clear_error();
	return found;
}

static X509_CRL *
parse_crl(const unsigned char *p, size_t len)
{
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	BIO *b;

	if (crl != NULL)
		return crl;
	if ((b = BIO_new_mem_buf(p, (int)len)) == NULL)
		return NULL;
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	BIO_free(b);
	return crl;
}

/* Fetches the CRLs at cert's distribution points into the store. */
static int
crl_fetch(struct keystore *ks, X509 *cert, X509 *issuer, long timeout)
{
	STACK_OF(DIST_POINT) *dps =
	    X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
	int i, j, stored = 0;

	for (i = 0; dps != NULL && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		GENERAL_NAMES *names;

		if (dp->distpoint == NULL || dp->distpoint->type != 0)
			continue;
		names = dp->distpoint->name.fullname;
		for (j = 0; j < sk_GENERAL_NAME_num(names); j++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(names, j);
			unsigned char *body = NULL;
			size_t len = 0;
			X509_CRL *crl;
			char url[512];
			int r;

			if (g->type != GEN_URI)
				continue;
			snprintf(url, sizeof(url), "%.*s",
			    ASN1_STRING_length(g->d.uniformResourceIdentifier),
			    (const char *)ASN1_STRING_get0_data(
			        g->d.uniformResourceIdentifier));
			pthread_mutex_unlock(&ks->lock);
			r = ks_http_fetch(
			    url, NULL, 0, NULL, timeout, MAX_CRL_SIZE, &body, &len);
			pthread_mutex_lock(&ks->lock);
			if (r != 0)
				continue;
			crl = parse_crl(body, len);
			free(body);
			if (crl != NULL &&
			    X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1 &&
			    crl_store(ks, crl, url) == 0)
				stored++;
			X509_CRL_free(crl);
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return stored;
}

/*
 * In memory, a known status is reused for REV_MEM_TTL seconds (and never
 * past the nextUpdate of what it came from, which the store enforces when
 * it is asked again); any change to the store flushes it.
 */
#define REV_MEM_TTL 300

static int
mem_cached(struct keystore *ks, const char *fp, time_t now, struct ks_rev *out)
{
	struct ks_rev_cache *c;

	for (c = ks->revcache; c != NULL; c = c->next)
		if (strcmp(c->fingerprint, fp) == 0 && c->since <= now && now < c->until) {
			*out = c->rev;
			return 1;
		}
	return 0;
}

static void
mem_store(struct keystore *ks, const char *fp, time_t now, const struct ks_rev *rev)
{
	struct ks_rev_cache *c;

	for (c = ks->revcache; c != NULL; c = c->next)
		if (strcmp(c->fingerprint, fp) == 0)
			break;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return;
		snprintf(c->fingerprint, sizeof(c->fingerprint), "%s", fp);
		c->next = ks->revcache;
		ks->revcache = c;
	}
	c->rev = *rev;
	c->since = now;
	c->until = now + REV_MEM_TTL;
}

int
keystore_check_revocation(struct keystore *ks, X509 *cert, STACK_OF(X509) * chain, time_t now,
    int fetch, long timeout, struct ks_rev *out)
{
	X509 *issuer;
	char fp[65], url[512];
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->status = KS_REV_UNKNOWN;
	ks_fingerprint(cert, fp);
	pthread_mutex_lock(&ks->lock);
	if (mem_cached(ks, fp, now, out))
		goto out;
	if ((r = ks_load_trust(ks)) != 0)
		goto out;
	if ((issuer = find_issuer(ks, cert, chain)) == NULL) {
		snprintf(out->text, sizeof(out->text), "revocation unknown: issuer not found");
		goto out;
	}
	X509_up_ref(issuer); /* the cache may be flushed while unlocked */
	if (ocsp_cached(ks, fp, now, out) || crl_cached(ks, cert, issuer, now, out))
		goto done;
	if (fetch && ocsp_url(cert, url, sizeof(url)) &&
	    ocsp_query(ks, cert, issuer, chain, url, timeout, now, fp, out))
		goto done;
	if (fetch && crl_fetch(ks, cert, issuer, timeout) > 0 &&
	    crl_cached(ks, cert, issuer, now, out))
		goto done;
	snprintf(out->text, sizeof(out->text),
	    "revocation unknown: no current OCSP response or CRL (responder or CRL server "
	    "unreachable?)");
done:
	X509_free(issuer);
	if (out->status != KS_REV_UNKNOWN)
		mem_store(ks, fp, now, out);
out:
	pthread_mutex_unlock(&ks->lock);
	return r;
}

int
keystore_import_crl(
    struct keystore *ks, X509_CRL *crl, const char *url, char *why, size_t whylen)
{
	X509 *issuer = NULL;
	int r = 0, i, j;

	pthread_mutex_lock(&ks->lock);
	if ((r = ks_load_trust(ks)) != 0)
		goto out;
	for (j = 0; j < 2 && issuer == NULL; j++) {
		STACK_OF(X509) *l = j ? ks->anchors : ks->inter;

		for (i = 0; i < sk_X509_num(l) && issuer == NULL; i++)
			if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(l, i)),
			        X509_CRL_get_issuer(crl)) == 0 &&
			    X509_CRL_verify(crl, X509_get0_pubkey(sk_X509_value(l, i))) == 1)
				issuer = sk_X509_value(l, i);
	}
	ERR_clear_error();
	if (issuer == NULL) {
		snprintf(why, whylen,
		    "no known CA certificate issued and signed this CRL "
		    "(add the CA with `trust add` or `cert import` first)");
		r = SG_ERR_CERT_UNUSABLE;
		goto out;
	}
	r = crl_store(ks, crl, url);
out:
	pthread_mutex_unlock(&ks->lock);
	return r;
}

int
keystore_update_crls(
    struct keystore *ks, time_t now, long margin, long timeout, int *updated, int *failed)
{
	STACK_OF(X509) *certs = NULL;
	int i, r;

	*updated = *failed = 0;
	pthread_mutex_lock(&ks->lock);
	if ((r = ks_load_certs(ks, KS_ROLE_OWN, &certs)) != 0)
		goto out;
	if ((r = ks_load_trust(ks)) != 0)
		goto out;
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i), *issuer = find_issuer(ks, c, NULL);
		struct ks_rev rv;
		int n;

		if (issuer == NULL || crl_cached(ks, c, issuer, now + margin, &rv))
			continue;
		X509_up_ref(issuer);
		n = crl_fetch(ks, c, issuer, timeout);
		X509_free(issuer);
		if (n > 0)
			*updated += n;
		else
			(*failed)++;
	}
out:
	pthread_mutex_unlock(&ks->lock);
	sk_X509_pop_free(certs, X509_free);
	return r;
}
