/*
 * outbound_trigger.c - subject tags, header triggers and classification.
 *
 * A trigger found in the message raises sign, encrypt, on_failure and
 * header_protection to what it requires and never lowers them; each
 * raise, and each trigger that raised nothing, gets a trace line.  The
 * classification (Biasa, Terbatas, Rahasia, Sangat Rahasia) is read from
 * the configured headers; an unknown value raises nothing and is flagged.
 * Subject tags are matched case-insensitively and removed.
 *
 * SECURITY: the Subject and header values are untrusted: they are only
 * compared, and at most 64 bytes of one enter the trace.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outbound_int.h"

/* Raises the effective settings to what req asks, never lowers them. */
static int
apply_trigger(struct policy_ctx *c, const struct policy_require *req, const char *label)
{
	struct policy_settings *e = &c->eff;
	const enum policy_setting id[4] = {
	    SET_SIGN, SET_ENCRYPT, SET_ON_FAILURE, SET_HEADER_PROTECTION};
	const int want[4] = {req->sign, req->encrypt, req->on_failure, req->header_protection};
	int have[4] = {e->sign, e->encrypt, e->on_failure, e->header_protection};
	int i, r, raised = 0;

	if (label == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < 4; i++) {
		if (want[i] <= have[i])
			continue;
		if ((r = policy_trace_add(c, policy_setting_name(id[i]),
		         policy_dupf("%s", policy_value_name(id[i], want[i])),
		         policy_dupf("trigger %s (raised from %s)", label,
		             policy_value_name(id[i], have[i])))) != 0)
			return r;
		have[i] = want[i];
		raised++;
		if (id[i] == SET_ENCRYPT && want[i] == POLICY_ENCRYPT_MANDATORY) {
			free(c->enc_reason);
			if ((c->enc_reason = policy_dupf("%s", label)) == NULL)
				return SG_ERR_NOMEM;
		}
	}
	e->sign = (enum policy_sign_mode)have[0];
	e->encrypt = (enum policy_encrypt_mode)have[1];
	e->on_failure = (enum policy_on_failure)have[2];
	e->header_protection = (enum policy_flag)have[3];
	if (raised == 0)
		return policy_trace_add(c, "trigger", policy_dupf("%s", label),
		    policy_dupf("matched; nothing to raise"));
	return 0;
}

static int
apply_labelled(struct policy_ctx *c, const struct policy_require *req, char *label)
{
	int r = apply_trigger(c, req, label);

	free(label);
	return r;
}

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static const char *
skip_blanks(const char *s)
{
	while (is_blank(*s))
		s++;
	return s;
}

/* Case-insensitive; blanks around and runs of blanks inside do not count. */
static int
words_equal(const char *a, const char *b)
{
	a = skip_blanks(a);
	b = skip_blanks(b);
	while (*a != '\0' && *b != '\0') {
		if (is_blank(*a) || is_blank(*b)) {
			if (!is_blank(*a) || !is_blank(*b))
				return 0;
			a = skip_blanks(a);
			b = skip_blanks(b);
			continue;
		}
		if (strncasecmp(a, b, 1) != 0)
			return 0;
		a++;
		b++;
	}
	return *skip_blanks(a) == '\0' && *skip_blanks(b) == '\0';
}

static int
classify(struct policy_ctx *c, const char *value)
{
	const struct policy_out *p = c->p;
	size_t i;

	for (i = 0; i < p->nlevels; i++)
		if (words_equal(p->levels[i].name, value)) {
			if (i + 1 > c->class_rank)
				c->class_rank = i + 1;
			return apply_labelled(c, &p->levels[i].req,
			    policy_dupf("classification %s", p->levels[i].name));
		}
	c->d->classification_unknown = 1;
	return policy_trace_add(c, "trigger", policy_dupf("classification %.64s", value),
	    policy_dupf("unknown value, ignored"));
}

static int
header_triggers(struct policy_ctx *c)
{
	const struct policy_out *p = c->p;
	size_t i, j;
	int r;

	for (i = 0; i < c->f->nheaders; i++) {
		const char *name = c->f->headers[i].name;
		const char *value = c->f->headers[i].value ? c->f->headers[i].value : "";

		for (j = 0; j < p->nclass_headers; j++)
			if (strcasecmp(name, p->class_headers[j]) == 0 &&
			    (r = classify(c, value)) != 0)
				return r;
		for (j = 0; j < p->nheaders; j++) {
			const struct policy_trigger *t = &p->headers[j];

			if (strcasecmp(name, t->name) == 0 && words_equal(t->value, value) &&
			    (r = apply_labelled(c, &t->req,
			         policy_dupf("header %s: %s", t->name, t->value))) != 0)
				return r;
		}
	}
	return 0;
}

/* Index of the tag that starts at s, or ntags. */
static size_t
tag_at(const struct policy_out *p, const char *s)
{
	size_t i;

	for (i = 0; i < p->ntags; i++)
		if (strncasecmp(s, p->tags[i].name, strlen(p->tags[i].name)) == 0)
			break;
	return i;
}

/*
 * Removes every trigger tag from the Subject, with the blanks after it
 * (and before it at the end), and applies each tag found once.
 */
static int
subject_tags(struct policy_ctx *c)
{
	const struct policy_out *p = c->p;
	const char *s = c->f->subject;
	unsigned char *hit = NULL;
	char *out = NULL;
	size_t o = 0, i, nhit = 0;
	int r = SG_ERR_NOMEM;

	if (s == NULL || p->ntags == 0)
		return 0;
	if ((out = malloc(strlen(s) + 1)) == NULL || (hit = calloc(p->ntags, 1)) == NULL)
		goto out;
	while (*s != '\0') {
		if ((i = tag_at(p, s)) == p->ntags) {
			out[o++] = *s++;
			continue;
		}
		nhit += !hit[i];
		hit[i] = 1;
		s = skip_blanks(s + strlen(p->tags[i].name));
		if (*s == '\0')
			while (o > 0 && is_blank(out[o - 1]))
				o--;
	}
	out[o] = '\0';
	for (i = 0, r = 0; i < p->ntags && r == 0; i++)
		if (hit[i])
			r = apply_labelled(
			    c, &p->tags[i].req, policy_dupf("subject tag %s", p->tags[i].name));
	if (r == 0 && nhit > 0) {
		r = policy_trace_add(c, "subject", policy_dupf("%.64s", out),
		    policy_dupf("trigger tags removed"));
		c->d->subject = out;
		out = NULL; /* transferred */
	}
out:
	free(out);
	free(hit);
	return r;
}

int
policy_triggers(struct policy_ctx *c)
{
	int r;

	if ((r = header_triggers(c)) != 0)
		return r;
	return subject_tags(c);
}
