/*
 * outbound_decide.c - the outbound decision for one message.
 *
 * policy_out_decide() resolves the settings of the sender
 * (outbound_resolve.c), lets the triggers raise them
 * (outbound_trigger.c), and then decides per recipient: who gets the
 * encrypted copy, who the other one, and whether the whole message must
 * be rejected or deferred.  Every step adds a trace line, so `policy
 * explain` shows why.
 *
 * Guarantees: with mandatory encryption a recipient without a usable
 * certificate never gets the unencrypted copy unless on_failure says
 * signed_only; recipients that have one are never downgraded because
 * others have none.  The notice (R11) is only added to mail that is
 * signed, since it says so.
 *
 * SECURITY: the SMTP reply text holds printable ASCII without '%' only
 * (libmilter would read '%' as a format character) and is length-capped.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound_int.h"

#define REPLY_MAX 512 /* bytes of the SMTP reply text */
#define REPLY_ADDRS_MAX 360 /* stop listing recipients beyond this */

/* A malloc'd formatted string; NULL when out of memory. */
char *
policy_dupf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Appends a trace line; takes value and source (NULL means out of memory). */
int
policy_trace_add(struct policy_ctx *c, const char *what, char *value, char *source)
{
	struct policy_out_decision *d = c->d;
	struct policy_trace *t;
	size_t na;

	if (value == NULL || source == NULL)
		goto nomem;
	if (d->ntrace == c->trace_alloc) {
		na = c->trace_alloc ? c->trace_alloc * 2 : 32;
		if (na > SIZE_MAX / sizeof(*t) ||
		    (t = realloc(d->trace, na * sizeof(*t))) == NULL)
			goto nomem;
		d->trace = t;
		c->trace_alloc = na;
	}
	t = &d->trace[d->ntrace++];
	t->what = what;
	t->value = value;
	t->source = source;
	return 0;
nomem:
	free(value);
	free(source);
	return SG_ERR_NOMEM;
}

static int
signing(struct policy_ctx *c)
{
	struct policy_out_decision *d = c->d;
	const char *as;

	d->sign_required = c->eff.sign == POLICY_SIGN_ALWAYS;
	if (c->eff.sign == POLICY_SIGN_NEVER)
		return 0;
	if (!c->f->may_sign)
		return policy_trace_add(c, "signing", policy_dupf("no"),
		    policy_dupf("the sender may not have mail signed"));
	as = c->eff.signer == POLICY_SIGNER_PERSONAL ? c->f->sender : c->eff.signer_address;
	d->sign = 1;
	if ((d->sign_as = strdup(as)) == NULL)
		return SG_ERR_NOMEM;
	if (c->eff.notice == POLICY_FLAG_ON && (d->notice = strdup(c->eff.notice_text)) == NULL)
		return SG_ERR_NOMEM;
	return 0;
}

static enum policy_rcpt_action
rcpt_action(const struct policy_settings *e, const struct policy_rcpt *rc)
{
	if (e->encrypt == POLICY_ENCRYPT_NEVER)
		return POLICY_RCPT_UNENCRYPTED;
	if (rc->has_cert)
		return POLICY_RCPT_ENCRYPT;
	if (e->encrypt != POLICY_ENCRYPT_MANDATORY)
		return POLICY_RCPT_UNENCRYPTED;
	switch (e->on_failure) {
	case POLICY_FAIL_SIGNED_ONLY:
		return POLICY_RCPT_UNENCRYPTED;
	case POLICY_FAIL_QUARANTINE:
		return POLICY_RCPT_QUARANTINE;
	case POLICY_FAIL_DEFER:
		return POLICY_RCPT_DEFER;
	default:
		return POLICY_RCPT_REJECT;
	}
}

/* The 5.7.1 / 4.7.1 reply naming the recipients encryption cannot reach. */
static int
reply(struct policy_ctx *c)
{
	struct policy_out_decision *d = c->d;
	struct sg_buf b;
	size_t i, shown = 0, more = 0;
	char *why;
	int r;

	sg_buf_init(&b, REPLY_MAX);
	why = c->enc_reason ? policy_dupf("%s", c->enc_reason)
	                    : policy_dupf("policy: %s", c->src[SET_ENCRYPT]);
	if (why == NULL)
		return SG_ERR_NOMEM;
	r = sg_buf_putf(
	    &b, "Encryption is mandatory (%.80s) but no usable certificate for ", why);
	free(why);
	for (i = 0; r == 0 && i < d->nrcpts; i++) {
		const char *addr = c->f->rcpts[i].address;

		if (d->rcpt[i] != POLICY_RCPT_REJECT && d->rcpt[i] != POLICY_RCPT_DEFER)
			continue;
		if (shown > 0 && b.len + strlen(addr) + 2 > REPLY_ADDRS_MAX)
			more++;
		else
			r = sg_buf_putf(&b, "%s%.200s", shown++ ? ", " : "", addr);
	}
	if (r == 0 && more > 0)
		r = sg_buf_putf(&b, " and %zu more", more);
	if (r != 0) {
		sg_buf_free(&b);
		return r;
	}
	for (i = 0; i < b.len; i++)
		if (b.data[i] < 0x20 || b.data[i] > 0x7e || b.data[i] == '%')
			b.data[i] = '?';
	if ((d->reply_text = sg_buf_steal(&b)) == NULL)
		return SG_ERR_NOMEM;
	d->reply_rcode = d->verdict == POLICY_VERDICT_REJECT ? "550" : "451";
	d->reply_xcode = d->verdict == POLICY_VERDICT_REJECT ? "5.7.1" : "4.7.1";
	return 0;
}

static int
choose_cipher(struct policy_ctx *c)
{
	struct policy_out_decision *d = c->d;
	const char *lacking = NULL;
	size_t i;

	for (i = 0; i < d->encrypted.n && lacking == NULL; i++)
		if (!(c->f->rcpts[d->encrypted.rcpts[i]].caps & POLICY_CAP_AES_GCM))
			lacking = c->f->rcpts[d->encrypted.rcpts[i]].address;
	if (c->eff.aes_gcm == POLICY_GCM_ALWAYS ||
	    (c->eff.aes_gcm == POLICY_GCM_IF_CAPABLE && lacking == NULL))
		d->cipher = POLICY_CIPHER_AES256_GCM;
	if (c->eff.aes_gcm != POLICY_GCM_IF_CAPABLE)
		return policy_trace_add(c, "cipher",
		    policy_dupf("%s", d->cipher ? "aes-256-gcm" : "aes-256-cbc"),
		    policy_dupf("aes_gcm %s", policy_value_name(SET_AES_GCM, c->eff.aes_gcm)));
	if (lacking == NULL)
		return policy_trace_add(c, "cipher", policy_dupf("aes-256-gcm"),
		    policy_dupf("every recipient of the encrypted copy reads AES-GCM"));
	return policy_trace_add(c, "cipher", policy_dupf("aes-256-cbc"),
	    policy_dupf("%.100s does not read AES-GCM", lacking));
}

/* Per recipient; then the verdict, or the two copies. */
static int
recipients(struct policy_ctx *c)
{
	struct policy_out_decision *d = c->d;
	size_t i, n = c->f->nrcpts;

	if ((d->rcpt = calloc(n, sizeof(*d->rcpt))) == NULL)
		return SG_ERR_NOMEM;
	d->nrcpts = n;
	d->other_action = POLICY_RCPT_UNENCRYPTED;
	for (i = 0; i < n; i++) {
		d->rcpt[i] = rcpt_action(&c->eff, &c->f->rcpts[i]);
		if (d->rcpt[i] == POLICY_RCPT_REJECT)
			d->verdict = POLICY_VERDICT_REJECT;
		else if (d->rcpt[i] == POLICY_RCPT_DEFER)
			d->verdict = POLICY_VERDICT_DEFER;
	}
	if (d->verdict != POLICY_VERDICT_ACCEPT)
		return reply(c);
	if ((d->encrypted.rcpts = calloc(n, sizeof(size_t))) == NULL ||
	    (d->other.rcpts = calloc(n, sizeof(size_t))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		if (d->rcpt[i] == POLICY_RCPT_ENCRYPT) {
			d->encrypted.rcpts[d->encrypted.n++] = i;
			continue;
		}
		d->other.rcpts[d->other.n++] = i;
		if (d->rcpt[i] == POLICY_RCPT_QUARANTINE)
			d->other_action = POLICY_RCPT_QUARANTINE;
	}
	if (d->encrypted.n == 0)
		return 0;
	d->rsa_oaep = c->eff.rsa_oaep == POLICY_FLAG_ON;
	d->header_protection = c->eff.header_protection == POLICY_FLAG_ON;
	if (c->eff.escrow[0] != '\0' && (d->escrow = strdup(c->eff.escrow)) == NULL)
		return SG_ERR_NOMEM;
	return choose_cipher(c);
}

static int
facts_check(const struct policy_out *p, const struct policy_out_facts *f)
{
	size_t i;

	if (p == NULL || f == NULL || f->nrcpts == 0 || f->rcpts == NULL ||
	    (f->nheaders > 0 && f->headers == NULL) || (f->may_sign && f->sender == NULL))
		return SG_ERR_INVALID_ARG;
	if (f->nrcpts > p->max_rcpts)
		return SG_ERR_LIMIT;
	for (i = 0; i < f->nrcpts; i++)
		if (f->rcpts[i].address == NULL)
			return SG_ERR_INVALID_ARG;
	for (i = 0; i < f->nheaders; i++)
		if (f->headers[i].name == NULL)
			return SG_ERR_INVALID_ARG;
	return 0;
}

int
policy_out_decide(
    const struct policy_out *p, const struct policy_out_facts *f, struct policy_out_decision *d)
{
	struct policy_ctx c;
	size_t k;
	int r;

	memset(d, 0, sizeof(*d));
	if ((r = facts_check(p, f)) != 0)
		return r;
	memset(&c, 0, sizeof(c));
	c.p = p;
	c.f = f;
	c.d = d;
	if ((r = policy_resolve(&c)) != 0 || (r = policy_triggers(&c)) != 0 ||
	    (r = signing(&c)) != 0 || (r = recipients(&c)) != 0)
		goto out;
	if (c.class_rank > 0 &&
	    (d->classification = strdup(p->levels[c.class_rank - 1].name)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	d->monitor = c.eff.monitor == POLICY_FLAG_ON;
out:
	for (k = 0; k < c.nlevels; k++)
		free(c.label[k]);
	free(c.label);
	free(c.level);
	free(c.enc_reason);
	if (r != 0)
		policy_out_decision_free(d);
	return r;
}

void
policy_out_decision_free(struct policy_out_decision *d)
{
	size_t i;

	if (d == NULL)
		return;
	free(d->reply_text);
	free(d->sign_as);
	free(d->rcpt);
	free(d->encrypted.rcpts);
	free(d->other.rcpts);
	free(d->escrow);
	free(d->notice);
	free(d->subject);
	free(d->classification);
	for (i = 0; i < d->ntrace; i++) {
		free(d->trace[i].value);
		free(d->trace[i].source);
	}
	free(d->trace);
	memset(d, 0, sizeof(*d));
}
