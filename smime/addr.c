/*
 * addr.c - e-mail addresses: RFC 5322 address lists (libetpan), envelope
 * addresses, and the rfc822Name entries of certificates.
 *
 * Addresses are compared with the local part as written and the domain in
 * lower case.  A From field with a group, or that does not parse, is
 * MALFORMED: the callers treat that as "cannot be signed".
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <openssl/x509v3.h>

#include "smime.h"

/* RFC 5322 atext */
static int
atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Whether s is a plain addr-spec: a dot-atom or quoted-string local part,
 * '@', and a domain of letters, digits, hyphens and dots (or a domain
 * literal).  Anything a lenient parser may have glued together is refused.
 */
static int
valid_spec(const char *s)
{
	const char *at = strrchr(s, '@'), *p;

	if (at == NULL || at == s || at[1] == '\0')
		return 0;
	if (s[0] == '"') {
		if (at - s < 2 || at[-1] != '"')
			return 0;
		for (p = s + 1; p < at - 1; p++)
			if (*p == '"' && p[-1] != '\\')
				return 0;
	} else {
		for (p = s; p < at; p++)
			if (!atext((unsigned char)*p) && *p != '.')
				return 0;
		if (s[0] == '.' || at[-1] == '.' || strstr(s, "..") != NULL)
			return 0;
	}
	if (at[1] == '[')
		return s[strlen(s) - 1] == ']' && strpbrk(at + 2, "[ \t") == NULL;
	for (p = at + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		        (unsigned char)*p >= 0x80))
			return 0;
	return at[1] != '.' && p[-1] != '.' && strstr(at, "..") == NULL;
}

static char *
normalize_spec(const char *spec, size_t n)
{
	const char *at;
	char *s;
	size_t i;

	if (n == 0 || n > 320 || memchr(spec, '\0', n) != NULL)
		return NULL;
	if ((s = strndup(spec, n)) == NULL)
		return NULL;
	if (!valid_spec(s)) {
		free(s);
		return NULL;
	}
	at = strrchr(s, '@');
	for (i = (size_t)(at - s); s[i] != '\0'; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	return s;
}

/* Skips blanks and (nested) comments; returns the index after them. */
static size_t
skip_cfws(const char *s, size_t i, size_t n)
{
	int depth = 0;

	while (i < n) {
		if (depth == 0 && (s[i] == ' ' || s[i] == '\t')) {
			i++;
		} else if (s[i] == '(') {
			depth++;
			i++;
		} else if (depth > 0 && s[i] == '\\' && i + 1 < n) {
			i += 2;
		} else if (depth > 0 && s[i] == ')') {
			depth--;
			i++;
		} else if (depth > 0) {
			i++;
		} else {
			break;
		}
	}
	return depth == 0 ? i : n + 1;
}

/* Whether the addr-spec a (domain lower-cased) is written in v as is. */
static int
appears_in(const char *v, const char *a)
{
	size_t al = strlen(a);

	for (; *v; v++)
		if (strncasecmp(v, a, al) == 0)
			return 1;
	return 0;
}

void
sm_addr_list_free(char **addrs, size_t n)
{
	size_t i;

	if (addrs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

static int
push(char ***list, size_t *n, char *a)
{
	char **nl;

	if ((nl = realloc(*list, (*n + 1) * sizeof(*nl))) == NULL) {
		free(a);
		return SG_ERR_NOMEM;
	}
	nl[(*n)++] = a;
	*list = nl;
	return 0;
}

int
sm_addr_parse_list(const char *value, char ***addrs, size_t *naddrs)
{
	struct mailimf_address_list *al = NULL;
	clistiter *it;
	char **list = NULL, *unfolded = NULL, *a;
	size_t n = 0, idx = 0, i, o = 0;
	int r = SG_ERR_MALFORMED;

	*addrs = NULL;
	*naddrs = 0;
	if ((unfolded = malloc(strlen(value) + 1)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; value[i] != '\0'; i++)
		if (value[i] != '\r' && value[i] != '\n')
			unfolded[o++] = value[i];
	unfolded[o] = '\0';
	if (mailimf_address_list_parse(unfolded, o, &idx, &al) != MAILIMF_NO_ERROR)
		goto out;
	if (skip_cfws(unfolded, idx, o) != o)
		goto out; /* trailing garbage (a trailing comment is fine) */
	for (it = clist_begin(al->ad_list); it != NULL; it = clist_next(it)) {
		struct mailimf_address *ad = clist_content(it);

		if (ad->ad_type != MAILIMF_ADDRESS_MAILBOX)
			goto out;
		a = normalize_spec(ad->ad_data.ad_mailbox->mb_addr_spec,
		    strlen(ad->ad_data.ad_mailbox->mb_addr_spec));
		if (a == NULL || !appears_in(unfolded, a)) {
			free(a);
			goto out; /* the parser glued or dropped characters */
		}
		if ((r = push(&list, &n, a)) != 0)
			goto out;
		r = SG_ERR_MALFORMED;
	}
	if (n == 0)
		goto out;
	*addrs = list;
	*naddrs = n;
	list = NULL;
	n = 0;
	r = 0;
out:
	sm_addr_list_free(list, n);
	if (al != NULL)
		mailimf_address_list_free(al);
	free(unfolded);
	return r;
}

char *
sm_addr_normalize(const char *addr)
{
	size_t n;

	while (*addr == ' ')
		addr++;
	n = strlen(addr);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		addr++;
		n -= 2;
	}
	return normalize_spec(addr, n); /* a stray bracket fails valid_spec() */
}

const char *
sm_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static ASN1_OBJECT *smtputf8_oid; /* id-on-SmtpUTF8Mailbox, made once */
static pthread_once_t smtputf8_once = PTHREAD_ONCE_INIT;

static void
make_smtputf8_oid(void)
{
	smtputf8_oid = OBJ_txt2obj("1.3.6.1.5.5.7.8.9", 1);
}

int
sm_cert_addresses(X509 *cert, char ***addrs, size_t *n)
{
	GENERAL_NAMES *gens;
	char **list = NULL;
	size_t cnt = 0;
	int i, r = 0;

	*addrs = NULL;
	*n = 0;
	pthread_once(&smtputf8_once, make_smtputf8_oid); /* worker threads share it */
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		char *a;

		if (g->type == GEN_EMAIL) {
			d = ASN1_STRING_get0_data(g->d.rfc822Name);
			a = normalize_spec(
			    (const char *)d, (size_t)ASN1_STRING_length(g->d.rfc822Name));
		} else if (g->type == GEN_OTHERNAME && smtputf8_oid != NULL &&
		    OBJ_cmp(g->d.otherName->type_id, smtputf8_oid) == 0 &&
		    g->d.otherName->value->type == V_ASN1_UTF8STRING) {
			/* SmtpUTF8Mailbox (RFC 9598), for internationalised addresses */
			const ASN1_STRING *u = g->d.otherName->value->value.utf8string;

			a = normalize_spec((const char *)ASN1_STRING_get0_data(u),
			    (size_t)ASN1_STRING_length(u));
		} else {
			continue;
		}
		if (a == NULL)
			continue;
		if ((r = push(&list, &cnt, a)) != 0)
			break;
	}
	GENERAL_NAMES_free(gens);
	if (r != 0) {
		sm_addr_list_free(list, cnt);
		return r;
	}
	*addrs = list;
	*n = cnt;
	return 0;
}

int
sm_cert_has_address(X509 *cert, const char *addr)
{
	char **list, *want;
	size_t n, i;
	int found = 0;

	if ((want = sm_addr_normalize(addr)) == NULL)
		return 0;
	if (sm_cert_addresses(cert, &list, &n) == 0) {
		for (i = 0; i < n && !found; i++)
			found = strcmp(list[i], want) == 0;
		sm_addr_list_free(list, n);
	}
	free(want);
	return found;
}
