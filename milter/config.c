/*
 * config.c - the settings table and the libconfig reader.
 *
 * DIAGNOSTICS: every problem names the file and line: unknown group,
 * unknown key, wrong type, value out of bounds, bad choice, unreadable
 * map file line.  Nothing is silently ignored.
 */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util/log.h"

enum cfg_type { T_STR, T_PATH, T_INT, T_BOOL, T_ENUM, T_LIST };

static const char *const actions_all[] = {"deliver", "tempfail", "reject", "accept", NULL};
static const char *const act3[] = {"deliver", "tempfail", "reject", NULL};
static const char *const act_unauth[] = {"deliver", "-", "reject", NULL};
static const char *const act_internal[] = {"-", "tempfail", "reject", "accept", NULL};
static const char *const sign_modes[] = {"always", "never", NULL};
static const char *const digests[] = {"sha256", "sha384", "sha512", NULL};
static const char *const paddings[] = {"pkcs1", "pss", NULL};
static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
static const char *const unknown_sign[] = {"deliver", "tempfail", "-", "-", "sign", NULL};
static const char *const login_rules[] = {"address", "localpart", "map", NULL};

struct setting {
	const char *name;
	enum cfg_type type;
	const char *def;
	long long min, max;
	const char *const *choices;
	size_t off;
	const char *doc;
};

#define O(f) offsetof(struct segel_cfg, f)
#define MB (1024LL * 1024)

static const struct setting table[] = {
    {"milter.socket", T_STR, "inet:10901@127.0.0.1", 0, 0, NULL, O(socket),
        "where Postfix connects: unix:/path or inet:PORT@HOST"},
    {"milter.user", T_STR, "", 0, 0, NULL, O(user), "user to run as after start-up"},
    {"milter.pid_file", T_PATH, "", 0, 0, NULL, O(pid_file), "PID file of the supervisor"},
    {"milter.spool_dir", T_PATH, "spool", 0, 0, NULL, O(spool_dir),
        "directory for message bodies above memory_threshold"},
    {"milter.memory_threshold", T_INT, "262144", 4096, 64 * MB, NULL, O(memory_threshold),
        "body bytes kept in memory before spooling to a file"},
    {"milter.on_internal_error", T_ENUM, "tempfail", 0, 0, act_internal, O(on_internal_error),
        "what an internal error does: tempfail | accept | reject"},
    {"milter.log_level", T_ENUM, "info", 0, 0, levels, O(log_level),
        "debug | info | warning | error"},
    {"milter.log_facility", T_STR, "mail", 0, 0, NULL, O(log_facility),
        "syslog facility, or stderr"},
    {"keystore.path", T_PATH, "data/keystore.db", 0, 0, NULL, O(keystore_path),
        "the SQLite keystore"},
    {"keystore.master_passphrase_file", T_PATH, "master.key", 0, 0, NULL,
        O(master_passphrase_file), "file holding the master passphrase (mode 0600)"},
    {"keystore.allow_sha1", T_BOOL, "false", 0, 0, NULL, O(allow_sha1),
        "accept certificates signed with SHA-1 (not recommended)"},
    {"keystore.pkcs11_module", T_STR, "", 0, 0, NULL, O(pkcs11_module),
        "PKCS#11 module for keys in a token (e.g. /usr/lib/softhsm/libsofthsm2.so)"},
    {"keystore.pkcs11_pin_file", T_PATH, "", 0, 0, NULL, O(pkcs11_pin_file),
        "file holding the token's user PIN (mode 0600)"},
    {"domains.internal", T_LIST, "", 0, 0, NULL, O(internal),
        "official domains; *.domain matches subdomains"},
    {"signing.mode", T_ENUM, "always", 0, 0, sign_modes, O(sign_mode), "always | never"},
    {"signing.digest", T_ENUM, "sha256", 0, 0, digests, O(digest), "sha256 | sha384 | sha512"},
    {"signing.rsa_padding", T_ENUM, "pkcs1", 0, 0, paddings, O(rsa_padding),
        "RSA signature padding: pkcs1 | pss"},
    {"signing.include_chain", T_BOOL, "true", 0, 0, NULL, O(include_chain),
        "include intermediate certificates"},
    {"signing.on_unauthorized", T_ENUM, "deliver", 0, 0, act_unauth, O(on_unauthorized),
        "sender not entitled to a signature: deliver | reject"},
    {"signing.on_no_certificate", T_ENUM, "deliver", 0, 0, act3, O(on_no_certificate),
        "entitled sender without usable certificate: deliver | tempfail | reject"},
    {"signing.on_malformed", T_ENUM, "reject", 0, 0, act3, O(on_malformed),
        "message that cannot be signed safely: deliver | tempfail | reject"},
    {"auth.login_rule", T_ENUM, "address", 0, 0, login_rules, O(login_rule),
        "address | localpart | map"},
    {"auth.login_map", T_PATH, "", 0, 0, NULL, O(login_map),
        "file of 'login address[, address...]' lines"},
    {"auth.trusted_networks", T_LIST, "", 0, 0, NULL, O(trusted_networks),
        "relays whose internal senders are signed without SASL (CIDR)"},
    {"auth.sender_aliases", T_PATH, "", 0, 0, NULL, O(sender_aliases),
        "file of 'from-alias envelope-sender' lines"},
    {"revocation.check", T_BOOL, "true", 0, 0, NULL, O(revocation_check),
        "check CRL/OCSP status before signing"},
    {"revocation.timeout", T_INT, "5", 1, 60, NULL, O(revocation_timeout),
        "seconds for one CRL or OCSP fetch"},
    {"revocation.on_unknown_sign", T_ENUM, "tempfail", 0, 0, unknown_sign,
        O(on_revocation_unknown_sign),
        "signing certificate with unknown status: tempfail | deliver (unsigned) | sign"},
    {"expiry.notice_days", T_INT, "30", 1, 365, NULL, O(expiry_notice_days),
        "days before expiry when owners and the admin get a daily notice"},
    {"expiry.admin", T_STR, "", 0, 0, NULL, O(expiry_admin),
        "address that gets a copy of every expiry notice (\"\" = none)"},
    {"expiry.from", T_STR, "postmaster", 0, 0, NULL, O(expiry_from),
        "sender of expiry notices"},
    {"expiry.sendmail", T_STR, "/usr/sbin/sendmail", 0, 0, NULL, O(sendmail),
        "the local sendmail(1) used for notices"},
    {"limits.max_message_size", T_INT, "52428800", 1024, 2048 * MB, NULL, O(max_message_size),
        "bytes"},
    {"limits.max_header_size", T_INT, "65536", 1024, 16 * MB, NULL, O(max_header_size),
        "bytes of one header field or part header block"},
    {"limits.max_headers", T_INT, "1000", 10, 100000, NULL, O(max_headers),
        "header fields per message"},
    {"limits.max_mime_depth", T_INT, "16", 1, 60, NULL, O(max_mime_depth), "MIME nesting"},
    {"limits.max_mime_parts", T_INT, "500", 1, 100000, NULL, O(max_mime_parts),
        "MIME parts per message"},
    {"limits.max_recipients", T_INT, "1000", 1, 100000, NULL, O(max_recipients),
        "envelope recipients per message"},
    {"limits.max_chain_length", T_INT, "8", 1, 32, NULL, O(max_chain_length),
        "certificates in a chain"},
};

#define NSETTINGS (sizeof(table) / sizeof(table[0]))

const char *
cfg_action_name(int a)
{
	return a >= 0 && a < 4 ? actions_all[a] : "?";
}

void
cfg_print_reference(FILE *fp)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		fprintf(fp, "%-34s default %-22s %s\n", table[i].name,
		    table[i].def[0] ? table[i].def : "\"\"", table[i].doc);
}

static int
choice_index(const char *const *choices, const char *v)
{
	int i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcasecmp(choices[i], v) == 0 && strcmp(choices[i], "-") != 0)
			return i;
	return -1;
}

static void
strlist_free(struct cfg_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
strlist_push(struct cfg_strlist *l, const char *s)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));

	if (nv == NULL)
		return SG_ERR_NOMEM;
	l->v = nv;
	if ((l->v[l->n] = strdup(s)) == NULL)
		return SG_ERR_NOMEM;
	l->n++;
	return 0;
}

static char *
resolve(const struct segel_cfg *c, const char *v)
{
	char *p;

	if (v[0] == '\0' || v[0] == '/')
		return strdup(v);
	if (asprintf(&p, "%s/%s", c->dir, v) < 0)
		return NULL;
	return p;
}

/* Sets one setting from its default (s == NULL) or a config value. */
static int
apply(struct segel_cfg *c, const struct setting *t, const config_setting_t *s, char *err,
    size_t errlen)
{
	void *field = (char *)c + t->off;
	const char *file = s ? config_setting_source_file(s) : "";
	int line = s ? (int)config_setting_source_line(s) : 0;
	const char *sv = t->def;
	long long iv;
	int i;

	switch (t->type) {
	case T_STR:
	case T_PATH:
		if (s && (sv = config_setting_get_string(s)) == NULL)
			goto type;
		if ((*(char **)field = t->type == T_PATH ? resolve(c, sv) : strdup(sv)) == NULL)
			return SG_ERR_NOMEM;
		return 0;
	case T_INT:
		if (s == NULL)
			iv = strtoll(t->def, NULL, 10);
		else if (config_setting_type(s) == CONFIG_TYPE_INT ||
		    config_setting_type(s) == CONFIG_TYPE_INT64)
			iv = config_setting_get_int64(s);
		else
			goto type;
		if (iv < t->min || iv > t->max) {
			snprintf(err, errlen, "%s:%d: %s = %lld is out of bounds [%lld, %lld]",
			    file, line, t->name, iv, t->min, t->max);
			return SG_ERR_CONFIG;
		}
		*(long long *)field = iv;
		return 0;
	case T_BOOL:
		if (s == NULL)
			*(int *)field = strcmp(t->def, "true") == 0;
		else if (config_setting_type(s) == CONFIG_TYPE_BOOL)
			*(int *)field = config_setting_get_bool(s);
		else
			goto type;
		return 0;
	case T_ENUM:
		if (s && (sv = config_setting_get_string(s)) == NULL)
			goto type;
		if ((i = choice_index(t->choices, sv)) < 0) {
			snprintf(err, errlen, "%s:%d: %s = \"%s\": expected %s", file, line,
			    t->name, sv, t->doc);
			return SG_ERR_CONFIG;
		}
		*(int *)field = i;
		return 0;
	case T_LIST:
		if (s == NULL)
			return 0;
		if (!config_setting_is_array(s) && !config_setting_is_list(s))
			goto type;
		for (i = 0; i < config_setting_length(s); i++) {
			const char *e = config_setting_get_string_elem(s, i);

			if (e == NULL) {
				snprintf(err, errlen,
				    "%s:%d: %s: every element must be a string", file, line,
				    t->name);
				return SG_ERR_CONFIG;
			}
			if (strlist_push(field, e) != 0)
				return SG_ERR_NOMEM;
		}
		return 0;
	}
type:
	snprintf(err, errlen, "%s:%d: %s has the wrong type (%s)", file, line, t->name, t->doc);
	return SG_ERR_CONFIG;
}

static const struct setting *
find(const char *group, const char *key)
{
	size_t i, gl = strlen(group);

	for (i = 0; i < NSETTINGS; i++)
		if (strncmp(table[i].name, group, gl) == 0 && table[i].name[gl] == '.' &&
		    strcmp(table[i].name + gl + 1, key) == 0)
			return &table[i];
	return NULL;
}

static int
group_known(const char *group)
{
	size_t i, gl = strlen(group);

	for (i = 0; i < NSETTINGS; i++)
		if (strncmp(table[i].name, group, gl) == 0 && table[i].name[gl] == '.')
			return 1;
	return 0;
}

static int
check_unknown(config_t *cf, char *err, size_t errlen)
{
	config_setting_t *root = config_root_setting(cf), *g, *s;
	int i, j;

	for (i = 0; (g = config_setting_get_elem(root, (unsigned)i)) != NULL; i++) {
		const char *gn = config_setting_name(g);

		if (!config_setting_is_group(g) || !group_known(gn)) {
			snprintf(err, errlen, "%s:%d: unknown setting group \"%s\"",
			    config_setting_source_file(g), config_setting_source_line(g), gn);
			return SG_ERR_CONFIG;
		}
		for (j = 0; (s = config_setting_get_elem(g, (unsigned)j)) != NULL; j++) {
			if (find(gn, config_setting_name(s)) == NULL) {
				snprintf(err, errlen, "%s:%d: unknown setting \"%s.%s\"",
				    config_setting_source_file(s),
				    config_setting_source_line(s), gn, config_setting_name(s));
				return SG_ERR_CONFIG;
			}
		}
	}
	return 0;
}

/* Reads "left  right[, right...]" lines into pairs. */
static int
load_pairs(const char *path, struct policy_pair **out, size_t *n, char *err, size_t errlen)
{
	FILE *fp;
	char line[1024];
	int lineno = 0, r = 0;

	*out = NULL;
	*n = 0;
	if (path[0] == '\0')
		return 0;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return SG_ERR_CONFIG;
	}
	while (r == 0 && fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *left, *rest, *tok, *save = NULL;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			r = SG_ERR_CONFIG;
			break;
		}
		p[strcspn(p, "#\r\n")] = '\0';
		left = strtok_r(p, " \t", &save);
		if (left == NULL)
			continue;
		rest = save;
		if (rest == NULL || strspn(rest, " \t,") == strlen(rest)) {
			snprintf(
			    err, errlen, "%s:%d: expected \"%s ADDRESS\"", path, lineno, left);
			r = SG_ERR_CONFIG;
			break;
		}
		while ((tok = strtok_r(NULL, " \t,", &save)) != NULL) {
			struct policy_pair *np = realloc(*out, (*n + 1) * sizeof(*np));

			if (np == NULL) {
				r = SG_ERR_NOMEM;
				break;
			}
			*out = np;
			np[*n].left = strdup(left);
			np[*n].right = strdup(tok);
			(*n)++;
			if (np[*n - 1].left == NULL || np[*n - 1].right == NULL)
				r = SG_ERR_NOMEM;
		}
	}
	fclose(fp);
	return r;
}

static int
build_policy(struct segel_cfg *c, char *err, size_t errlen)
{
	struct policy_cfg *p = &c->policy;
	size_t i;
	int r;

	p->internal_domains = c->internal.v;
	p->ninternal = c->internal.n;
	p->login_rule = (enum policy_login_rule)c->login_rule;
	p->sign_enabled = c->sign_mode == 0;
	if (c->internal.n == 0) {
		snprintf(
		    err, errlen, "%s: domains.internal must list at least one domain", c->path);
		return SG_ERR_CONFIG;
	}
	if ((p->trusted = calloc(c->trusted_networks.n + 1, sizeof(*p->trusted))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < c->trusted_networks.n; i++) {
		if (policy_net_parse(c->trusted_networks.v[i], &p->trusted[i]) != 0) {
			snprintf(err, errlen,
			    "%s: auth.trusted_networks: \"%s\" is not an address/prefix",
			    c->path, c->trusted_networks.v[i]);
			return SG_ERR_CONFIG;
		}
	}
	p->ntrusted = c->trusted_networks.n;
	if (c->login_rule == POLICY_LOGIN_MAP && c->login_map[0] == '\0') {
		snprintf(
		    err, errlen, "%s: auth.login_rule = \"map\" needs auth.login_map", c->path);
		return SG_ERR_CONFIG;
	}
	if ((r = load_pairs(c->login_map, &p->login_map, &p->nlogin_map, err, errlen)) != 0)
		return r;
	return load_pairs(c->sender_aliases, &p->aliases, &p->naliases, err, errlen);
}

int
cfg_load(const char *path, struct segel_cfg **out, char *err, size_t errlen)
{
	struct segel_cfg *c;
	config_t cf;
	char *tmp, group[64];
	size_t i;
	int r = SG_ERR_CONFIG;

	*out = NULL;
	err[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	c->refs = 1;
	config_init(&cf);
	if ((c->path = strdup(path)) == NULL || (tmp = strdup(path)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	c->dir = strdup(dirname(tmp));
	free(tmp);
	if (!config_read_file(&cf, path)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cf) ? config_error_file(&cf) : path,
			    config_error_line(&cf), config_error_text(&cf));
		goto out;
	}
	if ((r = check_unknown(&cf, err, errlen)) != 0)
		goto out;
	for (i = 0; i < NSETTINGS; i++) {
		const char *dot = strchr(table[i].name, '.');
		config_setting_t *g, *s = NULL;

		snprintf(
		    group, sizeof(group), "%.*s", (int)(dot - table[i].name), table[i].name);
		if ((g = config_lookup(&cf, group)) != NULL)
			s = config_setting_get_member(g, dot + 1);
		if ((r = apply(c, &table[i], s, err, errlen)) != 0)
			goto out;
	}
	c->limits.max_message_size = (size_t)c->max_message_size;
	c->limits.max_header_size = (size_t)c->max_header_size;
	c->limits.max_headers = (size_t)c->max_headers;
	c->limits.max_mime_depth = (size_t)c->max_mime_depth;
	c->limits.max_mime_parts = (size_t)c->max_mime_parts;
	if (c->on_internal_error == 0)
		c->on_internal_error = CFG_ACT_TEMPFAIL;
	if ((r = build_policy(c, err, errlen)) != 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	config_destroy(&cf);
	cfg_free(c);
	return r;
}

static void
pairs_free(struct policy_pair *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(p[i].left);
		free(p[i].right);
	}
	free(p);
}

void
cfg_free(struct segel_cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < NSETTINGS; i++) {
		void *field = (char *)c + table[i].off;

		if (table[i].type == T_STR || table[i].type == T_PATH)
			free(*(char **)field);
		else if (table[i].type == T_LIST)
			strlist_free(field);
	}
	pairs_free(c->policy.login_map, c->policy.nlogin_map);
	pairs_free(c->policy.aliases, c->policy.naliases);
	free(c->policy.trusted);
	free(c->path);
	free(c->dir);
	free(c);
}

struct segel_cfg *
cfg_ref(struct segel_cfg *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
	return c;
}

void
cfg_unref(struct segel_cfg *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_SEQ_CST) == 0)
		cfg_free(c);
}
