/*
 * audit.c - the hash-chained audit log of every change to the store.
 *
 * Entry n stores prev = hash(n-1) and hash = SHA-256(prev, time, actor,
 * action, detail), each field followed by a NUL so none can run into the
 * next.  keystore_audit_verify() recomputes the chain: an edited entry
 * fails its own hash, a deleted or reordered one breaks the link to its
 * neighbour, and ids must run 1, 2, 3 ... without gaps.
 *
 * Limit: removing the newest entries leaves a shorter, consistent chain;
 * only a copy of the head hash kept elsewhere (`segelctl audit verify`
 * prints it) shows that.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ksint.h"

static int
entry_hash(const char *prev, long long t, const char *actor, const char *action,
    const char *detail, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0, i;
	char tbuf[32];
	EVP_MD_CTX *ctx;
	int ok;

	snprintf(tbuf, sizeof(tbuf), "%lld", t);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return SG_ERR_NOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, prev, strlen(prev) + 1) &&
	    EVP_DigestUpdate(ctx, tbuf, strlen(tbuf) + 1) &&
	    EVP_DigestUpdate(ctx, actor, strlen(actor) + 1) &&
	    EVP_DigestUpdate(ctx, action, strlen(action) + 1) &&
	    EVP_DigestUpdate(ctx, detail, strlen(detail) + 1) &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen != 32)
		return SG_ERR_CRYPTO;
	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

int
ks_audit(struct keystore *ks, const char *action, const char *detail)
{
	sqlite3_stmt *st = NULL;
	char prev[65] = "", hash[65];
	long long now = (long long)time(NULL);
	int r;

	if (sqlite3_prepare_v2(ks->db, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1", -1,
	        &st, NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if ((r = entry_hash(prev, now, ks->actor, action, detail, hash)) != 0)
		return r;
	if (sqlite3_prepare_v2(ks->db,
	        "INSERT INTO audit(time, actor, action, detail, prev, hash) VALUES "
	        "(?,?,?,?,?,?)",
	        -1, &st, NULL) != SQLITE_OK)
		return SG_ERR_STORE;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, ks->actor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, detail, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, prev, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, hash, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : SG_ERR_STORE;
	sqlite3_finalize(st);
	return r;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? s : "";
}

int
keystore_audit_verify(struct keystore *ks, struct ks_audit_result *res)
{
	sqlite3_stmt *st;
	char prev[65] = "", want[65];
	long long expect_id = 1;
	int r = 0;

	memset(res, 0, sizeof(res[0]));
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db,
	        "SELECT id, time, actor, action, detail, prev, hash FROM audit ORDER BY id", -1,
	        &st, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&ks->lock);
		return SG_ERR_STORE;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long id = sqlite3_column_int64(st, 0);

		res->entries++;
		if ((r = entry_hash(col(st, 5), sqlite3_column_int64(st, 1), col(st, 2),
		         col(st, 3), col(st, 4), want)) != 0)
			break;
		if (id != expect_id)
			snprintf(res->problem, sizeof(res->problem),
			    "entry %lld follows entry %lld: an entry was deleted", id,
			    expect_id - 1);
		else if (strcmp(col(st, 5), prev) != 0)
			snprintf(res->problem, sizeof(res->problem),
			    "entry %lld does not link to entry %lld: entries were deleted or "
			    "reordered",
			    id, id - 1);
		else if (strcmp(col(st, 6), want) != 0)
			snprintf(res->problem, sizeof(res->problem),
			    "entry %lld was altered: its hash does not match its contents", id);
		if (res->problem[0] != '\0') {
			res->bad_id = id;
			break;
		}
		snprintf(prev, sizeof(prev), "%s", col(st, 6));
		expect_id = id + 1;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ks->lock);
	snprintf(res->head, sizeof(res->head), "%s", prev);
	return r;
}
