/*
 * outbound_explain.c - an outbound decision as text or JSON.
 *
 * `segelctl policy explain` prints what policy_out_decide() decided and
 * the trace of settings and triggers that led there.  Both forms are
 * built from the same facts and decision the milter uses.
 *
 * SECURITY: addresses, the Subject and header values are untrusted.  The
 * text form writes control bytes, invalid UTF-8 and backslashes as \xNN
 * escapes so nothing reaches a terminal raw; the JSON form escapes per
 * RFC 8259 and writes invalid UTF-8 as U+FFFD, so it always parses.
 */
#include <stdint.h>
#include <string.h>

#include "outbound.h"

static const char *const verdict_names[] = {"accept", "reject", "defer"};
static const char *const action_names[] = {
    "encrypt", "unencrypted", "quarantine", "reject", "defer"};
static const char *const cipher_names[] = {"aes-256-cbc", "aes-256-gcm"};

/* Length of the valid UTF-8 sequence at s (its code point in *cp), or 0. */
static size_t
utf8_seq(const unsigned char *s, unsigned long *cp)
{
	size_t n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		*cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		*cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		*cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) { /* stops at the NUL, which is no continuation */
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && *cp < 0x800) || (n == 4 && (*cp < 0x10000 || *cp > 0x10ffff)) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

/* Untrusted text for a terminal; NULL prints as "-". */
static int
put_text(struct sg_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "-");
	unsigned long cp;
	size_t n;
	int r = 0;

	while (*s != '\0' && r == 0) {
		n = utf8_seq(s, &cp);
		if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
		    cp == '\\') {
			r = sg_buf_putf(b, "\\x%02x", *s);
			s++;
		} else {
			r = sg_buf_put(b, s, n);
			s += n;
		}
	}
	return r;
}

/* A JSON string, or null for NULL. */
static int
put_json(struct sg_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned long cp;
	size_t n;
	int r;

	if (s == NULL)
		return sg_buf_puts(b, "null");
	r = sg_buf_putc(b, '"');
	while (*s != '\0' && r == 0) {
		n = utf8_seq(s, &cp);
		if (n == 0) {
			r = sg_buf_puts(b, "\\ufffd");
			n = 1;
		} else if (cp == '"' || cp == '\\') {
			r = sg_buf_putf(b, "\\%c", (int)cp);
		} else if (cp < 0x20 || cp == 0x7f) {
			r = sg_buf_putf(b, "\\u%04lx", cp);
		} else {
			r = sg_buf_put(b, s, n);
		}
		s += n;
	}
	return r ? r : sg_buf_putc(b, '"');
}

static int
check(const struct policy_out_facts *f, const struct policy_out_decision *d)
{
	if (f == NULL || d == NULL || f->nrcpts != d->nrcpts ||
	    (d->nrcpts > 0 && d->rcpt == NULL))
		return SG_ERR_INVALID_ARG;
	return 0;
}

/* "a, b, c" of the recipients of one copy. */
static int
put_copy_text(struct sg_buf *b, const struct policy_out_facts *f, const struct policy_copy *cp)
{
	size_t i;
	int r = 0;

	for (i = 0; i < cp->n && r == 0; i++)
		if ((r = sg_buf_puts(b, i ? ", " : "")) == 0)
			r = put_text(b, f->rcpts[cp->rcpts[i]].address);
	return r;
}

static int
text_head(
    const struct policy_out_facts *f, const struct policy_out_decision *d, struct sg_buf *b)
{
	size_t i;
	int r;

	if ((r = sg_buf_puts(b, "sender: ")) != 0 || (r = put_text(b, f->sender)) != 0 ||
	    (r = sg_buf_putf(b, " (may sign: %s)\nsubject: ", f->may_sign ? "yes" : "no")) !=
	        0 ||
	    (r = put_text(b, f->subject)) != 0)
		return r;
	if (d->subject != NULL &&
	    ((r = sg_buf_puts(b, " -> ")) != 0 || (r = put_text(b, d->subject)) != 0))
		return r;
	if ((r = sg_buf_putf(b, "\nsize: %zu\ntrace:\n", f->size)) != 0)
		return r;
	for (i = 0; i < d->ntrace && r == 0; i++) {
		if ((r = sg_buf_putf(b, "  %-18s ", d->trace[i].what)) != 0 ||
		    (r = put_text(b, d->trace[i].value)) != 0 ||
		    (r = sg_buf_puts(b, "  <- ")) != 0 ||
		    (r = put_text(b, d->trace[i].source)) != 0)
			return r;
		r = sg_buf_putc(b, '\n');
	}
	return r;
}

static int
text_rcpts(
    const struct policy_out_facts *f, const struct policy_out_decision *d, struct sg_buf *b)
{
	size_t i;
	int r = sg_buf_puts(b, "recipients:\n");

	for (i = 0; i < f->nrcpts && r == 0; i++) {
		const struct policy_rcpt *rc = &f->rcpts[i];

		if ((r = sg_buf_puts(b, "  ")) != 0 || (r = put_text(b, rc->address)) != 0)
			return r;
		r = sg_buf_putf(b, ": %s%s -> %s\n",
		    rc->has_cert ? "certificate" : "no certificate",
		    rc->caps & POLICY_CAP_AES_GCM ? ", aes-gcm" : "", action_names[d->rcpt[i]]);
	}
	return r;
}

static int
text_copies(
    const struct policy_out_facts *f, const struct policy_out_decision *d, struct sg_buf *b)
{
	int r = 0;

	if (d->encrypted.n > 0 &&
	    ((r = sg_buf_puts(b, "encrypted copy: ")) != 0 ||
	        (r = put_copy_text(b, f, &d->encrypted)) != 0 ||
	        (r = sg_buf_putf(b, "; %s, rsa-oaep %s, header protection %s, escrow ",
	             cipher_names[d->cipher], d->rsa_oaep ? "on" : "off",
	             d->header_protection ? "on" : "off")) != 0 ||
	        (r = put_text(b, d->escrow ? d->escrow : "none")) != 0 ||
	        (r = sg_buf_putc(b, '\n')) != 0))
		return r;
	if (d->other.n > 0 &&
	    ((r = sg_buf_putf(b, "other copy (%s): ",
	          d->other_action == POLICY_RCPT_QUARANTINE ? "quarantined"
	              : d->sign                             ? "signed only"
	                                                    : "plain")) != 0 ||
	        (r = put_copy_text(b, f, &d->other)) != 0 || (r = sg_buf_putc(b, '\n')) != 0))
		return r;
	return 0;
}

int
policy_out_explain_text(
    const struct policy_out_facts *f, const struct policy_out_decision *d, struct sg_buf *b)
{
	int r;

	if ((r = check(f, d)) != 0 || (r = text_head(f, d, b)) != 0 ||
	    (r = sg_buf_putf(b, "verdict: %s", verdict_names[d->verdict])) != 0)
		return r;
	if (d->verdict != POLICY_VERDICT_ACCEPT &&
	    ((r = sg_buf_putf(b, ": %s %s ", d->reply_rcode, d->reply_xcode)) != 0 ||
	        (r = put_text(b, d->reply_text)) != 0))
		return r;
	if ((r = sg_buf_putf(b, "\nsign: %s", d->sign ? "yes, as " : "no")) != 0 ||
	    (d->sign && (r = put_text(b, d->sign_as)) != 0) ||
	    (r = sg_buf_puts(b, d->sign && d->sign_required ? " (required)\n" : "\n")) != 0 ||
	    (r = text_rcpts(f, d, b)) != 0 || (r = text_copies(f, d, b)) != 0)
		return r;
	if (d->classification != NULL &&
	    ((r = sg_buf_puts(b, "classification: ")) != 0 ||
	        (r = put_text(b, d->classification)) != 0 || (r = sg_buf_putc(b, '\n')) != 0))
		return r;
	if (d->notice != NULL &&
	    ((r = sg_buf_puts(b, "notice: ")) != 0 || (r = put_text(b, d->notice)) != 0 ||
	        (r = sg_buf_putc(b, '\n')) != 0))
		return r;
	if (d->monitor)
		return sg_buf_puts(b, "monitor: on (only logged, the mail is not changed)\n");
	return 0;
}

static int
json_copy(struct sg_buf *b, const struct policy_out_facts *f, const struct policy_copy *cp)
{
	size_t i;
	int r = sg_buf_putc(b, '[');

	for (i = 0; i < cp->n && r == 0; i++)
		if ((r = sg_buf_puts(b, i ? "," : "")) == 0)
			r = put_json(b, f->rcpts[cp->rcpts[i]].address);
	return r ? r : sg_buf_putc(b, ']');
}

static int
json_rcpts(
    struct sg_buf *b, const struct policy_out_facts *f, const struct policy_out_decision *d)
{
	size_t i;
	int r = sg_buf_puts(b, ",\"recipients\":[");

	for (i = 0; i < f->nrcpts && r == 0; i++) {
		if ((r = sg_buf_puts(b, i ? ",{\"address\":" : "{\"address\":")) != 0 ||
		    (r = put_json(b, f->rcpts[i].address)) != 0)
			return r;
		r = sg_buf_putf(b, ",\"certificate\":%s,\"aes_gcm\":%s,\"action\":\"%s\"}",
		    f->rcpts[i].has_cert ? "true" : "false",
		    f->rcpts[i].caps & POLICY_CAP_AES_GCM ? "true" : "false",
		    action_names[d->rcpt[i]]);
	}
	return r ? r : sg_buf_putc(b, ']');
}

static int
json_trace(struct sg_buf *b, const struct policy_out_decision *d)
{
	size_t i;
	int r = sg_buf_puts(b, ",\"trace\":[");

	for (i = 0; i < d->ntrace && r == 0; i++) {
		if ((r = sg_buf_puts(b, i ? ",{\"what\":" : "{\"what\":")) != 0 ||
		    (r = put_json(b, d->trace[i].what)) != 0 ||
		    (r = sg_buf_puts(b, ",\"value\":")) != 0 ||
		    (r = put_json(b, d->trace[i].value)) != 0 ||
		    (r = sg_buf_puts(b, ",\"source\":")) != 0 ||
		    (r = put_json(b, d->trace[i].source)) != 0)
			return r;
		r = sg_buf_putc(b, '}');
	}
	return r ? r : sg_buf_putc(b, ']');
}

/* ,"name":"string-or-null" */
static int
json_field(struct sg_buf *b, const char *name, const char *value)
{
	int r = sg_buf_putf(b, ",\"%s\":", name);

	return r ? r : put_json(b, value);
}

int
policy_out_explain_json(
    const struct policy_out_facts *f, const struct policy_out_decision *d, struct sg_buf *b)
{
	int r;

	if ((r = check(f, d)) != 0 || (r = sg_buf_puts(b, "{\"sender\":")) != 0 ||
	    (r = put_json(b, f->sender)) != 0 ||
	    (r = sg_buf_putf(b, ",\"may_sign\":%s", f->may_sign ? "true" : "false")) != 0 ||
	    (r = json_field(b, "subject", f->subject)) != 0 ||
	    (r = json_field(b, "new_subject", d->subject)) != 0 ||
	    (r = sg_buf_putf(b, ",\"size\":%zu,\"verdict\":\"%s\"", f->size,
	         verdict_names[d->verdict])) != 0 ||
	    (r = json_field(b, "reply_code", d->reply_rcode)) != 0 ||
	    (r = json_field(b, "reply_xcode", d->reply_xcode)) != 0 ||
	    (r = json_field(b, "reply_text", d->reply_text)) != 0 ||
	    (r = sg_buf_putf(b, ",\"sign\":%s,\"sign_required\":%s", d->sign ? "true" : "false",
	         d->sign_required ? "true" : "false")) != 0 ||
	    (r = json_field(b, "sign_as", d->sign_as)) != 0 || (r = json_rcpts(b, f, d)) != 0 ||
	    (r = sg_buf_puts(b, ",\"encrypted\":{\"recipients\":")) != 0 ||
	    (r = json_copy(b, f, &d->encrypted)) != 0 ||
	    (r = sg_buf_putf(b, ",\"cipher\":\"%s\",\"rsa_oaep\":%s,\"header_protection\":%s",
	         cipher_names[d->cipher], d->rsa_oaep ? "true" : "false",
	         d->header_protection ? "true" : "false")) != 0 ||
	    (r = json_field(b, "escrow", d->escrow)) != 0 ||
	    (r = sg_buf_puts(b, "},\"other\":{\"recipients\":")) != 0 ||
	    (r = json_copy(b, f, &d->other)) != 0 ||
	    (r = sg_buf_putf(b, ",\"action\":\"%s\"}", action_names[d->other_action])) != 0 ||
	    (r = json_field(b, "notice", d->notice)) != 0 ||
	    (r = json_field(b, "classification", d->classification)) != 0 ||
	    (r = sg_buf_putf(b, ",\"classification_unknown\":%s,\"monitor\":%s",
	         d->classification_unknown ? "true" : "false",
	         d->monitor ? "true" : "false")) != 0 ||
	    (r = json_trace(b, d)) != 0)
		return r;
	return sg_buf_putc(b, '}');
}
