/*
 * mimehdr.c - Content-Type and Content-Transfer-Encoding fields, and the
 * output sink with its base64 encoder.
 *
 * Field values are parsed with libetpan's RFC 2045 parsers.  Results are
 * copied into fixed, bounded fields of struct sm_ctype; a value that does
 * not fit (a boundary over 70 characters, say) is MALFORMED, never cut.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <openssl/bio.h>

#include "mimeint.h"

static int
copy_lower(char *dst, size_t dlen, const char *src)
{
	size_t i, n = strlen(src);

	if (n >= dlen)
		return SG_ERR_MALFORMED;
	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
	return 0;
}

static const char *
type_name(const struct mailmime_type *t)
{
	if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		switch (t->tp_data.tp_discrete_type->dt_type) {
		case MAILMIME_DISCRETE_TYPE_TEXT:
			return "text";
		case MAILMIME_DISCRETE_TYPE_IMAGE:
			return "image";
		case MAILMIME_DISCRETE_TYPE_AUDIO:
			return "audio";
		case MAILMIME_DISCRETE_TYPE_VIDEO:
			return "video";
		case MAILMIME_DISCRETE_TYPE_APPLICATION:
			return "application";
		default:
			return t->tp_data.tp_discrete_type->dt_extension;
		}
	}
	switch (t->tp_data.tp_composite_type->ct_type) {
	case MAILMIME_COMPOSITE_TYPE_MESSAGE:
		return "message";
	case MAILMIME_COMPOSITE_TYPE_MULTIPART:
		return "multipart";
	default:
		return t->tp_data.tp_composite_type->ct_token;
	}
}

static int
valid_boundary(const char *b)
{
	static const char ok[] = "'()+_,-./:=? ";
	size_t n = strlen(b), i;

	if (n == 0 || n > 70 || b[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && strchr(ok, b[i]) == NULL)
			return 0;
	return 1;
}

/* Whether s holds only blanks, line breaks, ';' and (nested) comments. */
static int
only_cfws(const char *s)
{
	int depth = 0;

	for (; *s; s++) {
		if (*s == '(')
			depth++;
		else if (*s == ')' && depth > 0)
			depth--;
		else if (*s == '\\' && depth > 0 && s[1] != '\0')
			s++;
		else if (depth == 0 && !strchr(" \t\r\n;", *s))
			return 0;
	}
	return depth == 0;
}

int
sm_ctype_parse(const char *value, struct sm_ctype *ct)
{
	struct mailmime_content *c = NULL;
	clistiter *it;
	size_t idx = 0;
	int r = SG_ERR_MALFORMED;
	const char *tn;

	memset(ct, 0, sizeof(*ct));
	if (value == NULL) {
		strcpy(ct->type, "text");
		strcpy(ct->subtype, "plain");
		return 0;
	}
	if (mailmime_content_parse(value, strlen(value), &idx, &c) != MAILIMF_NO_ERROR)
		return SG_ERR_MALFORMED;
	/* the whole value must parse: trailing text could hide a second
	 * boundary that another reader would use */
	if (!only_cfws(value + idx))
		goto out;
	if ((tn = type_name(c->ct_type)) == NULL ||
	    copy_lower(ct->type, sizeof(ct->type), tn) || c->ct_subtype == NULL ||
	    copy_lower(ct->subtype, sizeof(ct->subtype), c->ct_subtype))
		goto out;
	for (it = clist_begin(c->ct_parameters); it != NULL; it = clist_next(it)) {
		struct mailmime_parameter *p = clist_content(it);
		char *dst = NULL;
		size_t dlen = 0;

		if (strcasecmp(p->pa_name, "boundary") == 0) {
			if (ct->boundary[0] != '\0' || !valid_boundary(p->pa_value))
				goto out;
			dst = ct->boundary;
			dlen = sizeof(ct->boundary);
		} else if (strcasecmp(p->pa_name, "smime-type") == 0) {
			dst = ct->smime_type;
			dlen = sizeof(ct->smime_type);
		} else if (strcasecmp(p->pa_name, "protocol") == 0) {
			dst = ct->protocol;
			dlen = sizeof(ct->protocol);
		}
		if (dst != NULL) {
			if (strlen(p->pa_value) >= dlen)
				goto out;
			strcpy(dst, p->pa_value);
		}
	}
	if (strcmp(ct->type, "multipart") == 0 && ct->boundary[0] == '\0')
		goto out;
	r = 0;
out:
	mailmime_content_free(c);
	return r;
}

enum sm_cte
sm_cte_parse(const char *value)
{
	static const struct {
		const char *name;
		enum sm_cte cte;
	} names[] = {
	    {"7bit", SM_CTE_7BIT},
	    {"8bit", SM_CTE_8BIT},
	    {"binary", SM_CTE_BINARY},
	    {"quoted-printable", SM_CTE_QP},
	    {"base64", SM_CTE_BASE64},
	};
	char tok[32];
	size_t i, n = 0;

	if (value == NULL)
		return SM_CTE_NONE;
	while (*value == ' ' || *value == '\t' || *value == '\r' || *value == '\n')
		value++;
	while (value[n] != '\0' && !isspace((unsigned char)value[n]) && value[n] != ';' &&
	    value[n] != '(') {
		if (n + 1 >= sizeof(tok))
			return SM_CTE_OTHER;
		tok[n] = value[n];
		n++;
	}
	tok[n] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(tok, names[i].name) == 0)
			return names[i].cte;
	return SM_CTE_OTHER;
}

int
sm_is_content_field(const char *name)
{
	return strncasecmp(name, "Content-", 8) == 0;
}

int
sm_sink_put(struct sm_sink *s, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if ((r = sg_spool_write(s->spool, p, n)) != 0)
		return r;
	if (s->bio != NULL && BIO_write((BIO *)s->bio, p, (int)n) != (int)n)
		return SG_ERR_CRYPTO;
	return 0;
}

int
sm_sink_puts(struct sm_sink *s, const char *str)
{
	return sm_sink_put(s, str, strlen(str));
}

int
sm_base64_write(struct sm_sink *out, const unsigned char *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t i = 0, o;
	int r;

	while (i < n) {
		o = 0;
		while (o < 76 && i < n) {
			unsigned v = (unsigned)p[i] << 16;
			size_t k = n - i >= 3 ? 3 : n - i;

			if (k > 1)
				v |= (unsigned)p[i + 1] << 8;
			if (k > 2)
				v |= p[i + 2];
			line[o++] = tab[(v >> 18) & 63];
			line[o++] = tab[(v >> 12) & 63];
			line[o++] = k > 1 ? tab[(v >> 6) & 63] : '=';
			line[o++] = k > 2 ? tab[v & 63] : '=';
			i += k;
		}
		line[o++] = '\r';
		line[o++] = '\n';
		if ((r = sm_sink_put(out, line, o)) != 0)
			return r;
	}
	return 0;
}

int
sm_put_field(struct sm_sink *out, const char *name, const char *value)
{
	const char *p;
	int r;

	if ((r = sm_sink_puts(out, name)) != 0 || (r = sm_sink_puts(out, ": ")) != 0)
		return r;
	for (p = value; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if ((r = *p == '\n' ? sm_sink_put(out, "\r\n", 2) : sm_sink_put(out, p, 1)) !=
		    0)
			return r;
	}
	return sm_sink_put(out, "\r\n", 2);
}
