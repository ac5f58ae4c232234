/*
 * session.c - the libmilter callbacks: thin adapters from milter events
 * to the smime/ core, the policy and the keystore.
 *
 * Each SMTP connection has a struct conn; each message a struct msgctx
 * that holds its own configuration snapshot, so a reload never changes a
 * message in flight.  Every message ends in exactly one summary line:
 *   QUEUEID: result=signed|unsigned|skipped|rejected|tempfail reason=...
 * All outcomes go through finish(), the one place that maps a decision
 * to a milter verdict; an internal error is a tempfail unless
 * milter.on_internal_error says otherwise.  One bad message never
 * affects the others: nothing here exits or aborts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "milter/milter.h"
#include "milter/signer.h"
#include "policy/policy.h"
#include "smime/smime.h"
#include "util/log.h"

struct msgctx {
	struct segel_cfg *cfg;
	struct sm_msg *msg;
	char *env_from;
	char *auth;
	size_t nrcpt;
	int err; /* first error while collecting the message */
	struct timeval start;
};

struct conn {
	struct sockaddr_storage client;
	int have_client;
	struct msgctx *m;
};

enum outcome { OUT_SIGNED, OUT_UNSIGNED, OUT_SKIPPED, OUT_REJECTED, OUT_TEMPFAIL };

static const char *const outcome_name[] = {
    "signed", "unsigned", "skipped", "rejected", "tempfail"};

static void
msg_free(struct msgctx *m)
{
	if (m == NULL)
		return;
	sm_msg_free(m->msg);
	free(m->env_from);
	free(m->auth);
	cfg_unref(m->cfg);
	free(m);
}

static const char *
qid(SMFICTX *ctx)
{
	const char *q = smfi_getsymval(ctx, "i");

	return q && *q ? q : "NOQUEUE";
}

static struct conn *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static sfsistat
on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	if (sa != NULL) {
		size_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                       : sizeof(struct sockaddr_in);

		if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
			memcpy(&c->client, sa, len);
			c->have_client = 1;
		}
	}
	smfi_setpriv(ctx, c);
	return SMFIS_CONTINUE;
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	struct msgctx *m;
	const char *auth;
	int r;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	msg_free(c->m);
	if ((c->m = m = calloc(1, sizeof(*m))) == NULL)
		return SMFIS_TEMPFAIL;
	gettimeofday(&m->start, NULL);
	m->cfg = milter_cfg_get();
	if ((r = sm_msg_new(&m->cfg->limits, m->cfg->spool_dir,
	         (size_t)m->cfg->memory_threshold, &m->msg)) != 0) {
		sg_log(SG_LOG_ERROR, "NOQUEUE: cannot start a message: %s", sg_strerror(r));
		return SMFIS_TEMPFAIL;
	}
	m->env_from = argv[0] ? sm_addr_normalize(argv[0]) : NULL;
	if ((auth = smfi_getsymval(ctx, "{auth_authen}")) != NULL && *auth != '\0')
		m->auth = strdup(auth);
	return SMFIS_CONTINUE;
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL || c->m == NULL)
		return SMFIS_TEMPFAIL;
	if (++c->m->nrcpt > (size_t)c->m->cfg->max_recipients) {
		smfi_setreply(ctx, "452", "4.5.3", "Too many recipients");
		return SMFIS_TEMPFAIL;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = conn_of(ctx);
	int r;

	if (c == NULL || c->m == NULL)
		return SMFIS_TEMPFAIL;
	if (c->m->err == 0 && (r = sm_msg_header(c->m->msg, name, value)) != 0)
		c->m->err = r;
	return SMFIS_CONTINUE;
}

static sfsistat
on_eoh(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	int r;

	if (c == NULL || c->m == NULL)
		return SMFIS_TEMPFAIL;
	if (c->m->err == 0 && (r = sm_msg_eoh(c->m->msg)) != 0)
		c->m->err = r;
	return SMFIS_CONTINUE;
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
	struct conn *c = conn_of(ctx);
	int r;

	if (c == NULL || c->m == NULL)
		return SMFIS_TEMPFAIL;
	if (c->m->err == 0 && (r = sm_msg_body(c->m->msg, p, n)) != 0)
		c->m->err = r;
	return SMFIS_CONTINUE;
}

static long
elapsed_ms(const struct timeval *start)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_usec - start->tv_usec) / 1000L;
}

/*
 * The one place where a decision becomes a milter verdict.  action is a
 * CFG_ACT_* value; text is the human reason for the log and, on reject,
 * for the SMTP reply.
 */
static sfsistat
finish(SMFICTX *ctx, struct msgctx *m, int action, enum outcome out, const char *reason,
    const char *text, const char *xcode)
{
	char from[128], why[900];
	const char *addr = m->env_from ? m->env_from : "<>";
	sfsistat st = SMFIS_CONTINUE;

	if (action == CFG_ACT_REJECT) {
		out = OUT_REJECTED;
		snprintf(why, sizeof(why), "Segel: message not accepted: %s", text);
		smfi_setreply(ctx, "550", (char *)xcode, why);
		st = SMFIS_REJECT;
	} else if (action == CFG_ACT_TEMPFAIL) {
		out = OUT_TEMPFAIL;
		smfi_setreply(ctx, "451", "4.7.0", "Segel: temporary failure, try again later");
		st = SMFIS_TEMPFAIL;
	}
	sg_log(out == OUT_SIGNED || out == OUT_SKIPPED || out == OUT_UNSIGNED ? SG_LOG_INFO
	                                                                      : SG_LOG_WARNING,
	    "%s: result=%s reason=%s from=%s auth=%s size=%zu ms=%ld detail=\"%s\"", qid(ctx),
	    outcome_name[out], reason, sg_log_escape(addr, strlen(addr), from, sizeof(from)),
	    m->auth ? "yes" : "no", sg_spool_size(sm_msg_body_spool(m->msg)),
	    elapsed_ms(&m->start), text);
	return st;
}

static sfsistat
internal_error(SMFICTX *ctx, struct msgctx *m, const char *what, int r)
{
	char text[256];
	int act = m->cfg->on_internal_error;

	snprintf(text, sizeof(text), "%s: %s", what, sg_strerror(r));
	sg_log(SG_LOG_ERROR, "%s: %s", qid(ctx), text);
	return finish(ctx, m, act == CFG_ACT_ACCEPT ? CFG_ACT_DELIVER : act,
	    act == CFG_ACT_ACCEPT ? OUT_UNSIGNED : OUT_TEMPFAIL, "internal-error", text,
	    "5.3.0");
}

static sfsistat
malformed(SMFICTX *ctx, struct msgctx *m, int r)
{
	char text[300];

	snprintf(text, sizeof(text), "%s: %s",
	    r == SG_ERR_LIMIT ? "limit exceeded" : "malformed MIME", sm_msg_problem(m->msg));
	sg_log(SG_LOG_ERROR, "%s: cannot sign: %s", qid(ctx), text);
	return finish(ctx, m, m->cfg->on_malformed, OUT_UNSIGNED,
	    r == SG_ERR_LIMIT ? "limit" : "malformed", text, "5.6.0");
}

static int
apply_output(SMFICTX *ctx, const struct sm_output *o)
{
	unsigned char buf[65536];
	size_t i, off = 0, got;
	int r;

	for (i = 0; i < o->nedits; i++) {
		const struct sm_edit *e = &o->edits[i];

		if (e->op == SM_EDIT_DELETE)
			r = smfi_chgheader(ctx, e->name, (int)e->index, NULL);
		else
			r = smfi_addheader(ctx, e->name, e->value);
		if (r != MI_SUCCESS)
			return SG_ERR_INTERNAL;
	}
	for (;;) {
		if ((r = sg_spool_read(o->body, off, buf, sizeof(buf), &got)) != 0)
			return r;
		if (got == 0)
			return 0;
		if (smfi_replacebody(ctx, buf, (int)got) != MI_SUCCESS)
			return SG_ERR_INTERNAL;
		off += got;
	}
}

/*
 * Signs as addr.  The signer process checks the identity now (validity,
 * chain, usage, and regulation R5's revocation status) and makes the
 * signature; this process never holds the key.  Revoked: the certificate
 * is not used and the message follows signing.on_no_certificate.
 * Unknown status (responder down, CRL stale): revocation.on_unknown_sign,
 * by default tempfail (fail-closed).  Both are incidents.
 */
static sfsistat
sign_message(SMFICTX *ctx, struct msgctx *m, const char *addr)
{
	struct segel_cfg *cfg = m->cfg;
	struct signer_identity *id = NULL;
	struct sm_output *out = NULL;
	struct sm_signer signer;
	struct sm_sign_opts opts;
	char text[800];
	sfsistat st;
	int r;

	if ((r = signer_get_identity(addr, &id)) != 0)
		return internal_error(ctx, m, "the signer process did not answer", r);
	switch (id->cls) {
	case SIGNER_OK:
		break;
	case SIGNER_NOT_FOUND:
	case SIGNER_UNUSABLE:
		snprintf(
		    text, sizeof(text), "no usable certificate for %s: %s", addr, id->text);
		st = finish(ctx, m, cfg->on_no_certificate, OUT_UNSIGNED,
		    id->cls == SIGNER_NOT_FOUND ? "no-certificate" : "certificate-unusable",
		    text, "5.7.1");
		goto done;
	case SIGNER_REVOKED:
		sg_log(SG_LOG_WARNING, "%s: incident=signing-certificate-revoked address=%s %s",
		    qid(ctx), addr, id->text);
		snprintf(text, sizeof(text), "certificate of %s not used: %s", addr, id->text);
		st = finish(ctx, m, cfg->on_no_certificate, OUT_UNSIGNED, "certificate-revoked",
		    text, "5.7.1");
		goto done;
	case SIGNER_REVOCATION_UNKNOWN:
		sg_log(SG_LOG_WARNING, "%s: incident=revocation-unknown address=%s %s",
		    qid(ctx), addr, id->text);
		if (cfg->on_revocation_unknown_sign == CFG_ACT_SIGN)
			break;
		snprintf(text, sizeof(text), "certificate of %s: %s", addr, id->text);
		st = finish(ctx, m, cfg->on_revocation_unknown_sign, OUT_UNSIGNED,
		    "revocation-unknown", text, "5.7.1");
		goto done;
	default:
		st = internal_error(ctx, m, id->text, SG_ERR_STORE);
		goto done;
	}
	memset(&signer, 0, sizeof(signer));
	signer.cert = id->cert;
	signer.chain = id->chain;
	signer.sign = signer_sign_digest;
	signer.sign_arg = id;
	memset(&opts, 0, sizeof(opts));
	opts.digest = (enum sm_digest)cfg->digest;
	opts.rsa_pss = cfg->rsa_padding == 1;
	opts.include_chain = cfg->include_chain;
	opts.spool_dir = cfg->spool_dir;
	opts.mem_threshold = (size_t)cfg->memory_threshold;
	r = sm_sign(m->msg, &signer, &opts, &out);
	if (r == SG_ERR_MALFORMED || r == SG_ERR_LIMIT)
		st = malformed(ctx, m, r);
	else if (r == SG_ERR_ALREADY_SMIME)
		st = finish(ctx, m, CFG_ACT_DELIVER, OUT_SKIPPED, "already-smime",
		    "message is already signed or encrypted", "");
	else if (r != 0)
		st = internal_error(ctx, m, "signing failed", r);
	else if ((r = apply_output(ctx, out)) != 0)
		st = internal_error(ctx, m, "cannot hand the signed message to the MTA", r);
	else {
		snprintf(text, sizeof(text), "signed as %s with %s", addr,
		    sm_digest_micalg(opts.digest));
		st = finish(ctx, m, CFG_ACT_DELIVER, OUT_SIGNED, "ok", text, "");
	}
done:
	sm_output_free(out);
	signer_identity_free(id);
	return st;
}

/* Reasons for which on_unauthorized = reject applies: someone tried to
 * send as an internal address without proving to be it. */
static int
is_impersonation(enum policy_sign_reason r)
{
	return r == POLICY_NOSIGN_UNAUTHENTICATED || r == POLICY_NOSIGN_NOT_OWNER ||
	    r == POLICY_NOSIGN_ENVELOPE;
}

static sfsistat
on_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct msgctx *m;
	struct policy_sign_facts f;
	struct policy_sign_decision d;
	char **from = NULL;
	size_t nfrom = 0, nfrom_fields = 0;
	const char *fv;
	sfsistat st;
	int r;

	if (c == NULL || (m = c->m) == NULL)
		return SMFIS_TEMPFAIL;
	memset(&f, 0, sizeof(f));
	f.auth_login = m->auth;
	f.client = c->have_client ? (const struct sockaddr *)&c->client : NULL;
	f.env_from = m->env_from;
	if (m->err == SG_ERR_NOMEM || m->err == SG_ERR_SYSTEM) {
		st = internal_error(ctx, m, "cannot store the message", m->err);
		goto out;
	}
	fv = sm_msg_get(m->msg, "From", 0);
	if (sm_msg_count(m->msg, "From") > 1)
		nfrom_fields = 2;
	else if (fv != NULL && sm_addr_parse_list(fv, &from, &nfrom) != 0)
		f.from_malformed = 1;
	f.from = from;
	f.nfrom = nfrom_fields > 1 ? nfrom_fields : nfrom;
	policy_sign_decide(&m->cfg->policy, &f, &d);
	if (!d.sign) {
		int act =
		    is_impersonation(d.reason) && m->cfg->on_unauthorized == CFG_ACT_REJECT
		    ? CFG_ACT_REJECT
		    : CFG_ACT_DELIVER;

		st = finish(ctx, m, act, OUT_UNSIGNED, policy_sign_reason_token(d.reason),
		    policy_sign_reason_text(d.reason), "5.7.1");
		goto out;
	}
	if (m->err != 0) {
		st = malformed(ctx, m, m->err);
		goto out;
	}
	if ((r = sm_msg_eom(m->msg)) != 0) {
		st = malformed(ctx, m, r);
		goto out;
	}
	st = sign_message(ctx, m, d.address);
out:
	sm_addr_list_free(from, nfrom);
	msg_free(m);
	c->m = NULL;
	return st;
}

static sfsistat
on_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL) {
		msg_free(c->m);
		c->m = NULL;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL) {
		msg_free(c->m);
		free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

struct smfiDesc milter_desc = {
    .xxfi_name = "segel",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
    .xxfi_connect = on_connect,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_eoh = on_eoh,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
};
