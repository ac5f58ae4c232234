/*
 * list.c - listing, showing, removing and expiry reports of the store:
 *   keystore|cert|trust list [--json]
 *   keystore|cert|trust show ID|FINGERPRINT [--json]
 *   keystore|cert|trust remove ID|FINGERPRINT
 *   cert expiring --days N [--json]
 * "keystore" means own certificates with keys, "cert" correspondents' and
 * CA certificates, "trust" the trust anchors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tools/cmd.h"

void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

#define ROLE(r) (1u << (r))
#define ROLES_KEYSTORE ROLE(KS_ROLE_OWN)
#define ROLES_CERT (ROLE(KS_ROLE_CORRESPONDENT) | ROLE(KS_ROLE_INTERMEDIATE))
#define ROLES_TRUST ROLE(KS_ROLE_ANCHOR)

struct list_state {
	unsigned roles;
	int json;
	int n;
	const char *select; /* id or fingerprint prefix, or NULL */
	time_t horizon; /* expiring: not_after before this, or 0 */
	long long found_id;
};

static void
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
selected(const struct list_state *st, const struct ks_entry *e)
{
	char id[32];

	if ((st->roles & ROLE(e->role)) == 0)
		return 0;
	if (st->horizon != 0 && e->not_after > st->horizon)
		return 0;
	if (st->select == NULL)
		return 1;
	snprintf(id, sizeof(id), "%lld", e->id);
	return strcmp(st->select, id) == 0 ||
	    (strlen(st->select) >= 8 &&
	        strncasecmp(e->fingerprint, st->select, strlen(st->select)) == 0);
}

static void
print_text(const struct ks_entry *e)
{
	char nb[32], na[32];
	long days = (long)((e->not_after - time(NULL)) / 86400);

	fmt_time(e->not_before, nb, sizeof(nb));
	fmt_time(e->not_after, na, sizeof(na));
	printf("%-4lld %-13s %-3s %-36s %s\n    subject %s\n    issuer  %s\n"
	       "    valid   %s .. %s (%s %ld days)  serial %s\n    sha256  %s\n",
	    e->id, keystore_role_name(e->role), e->has_key ? "key" : "-",
	    e->addresses[0] ? e->addresses : "-", e->source, e->subject, e->issuer, nb, na,
	    days < 0 ? "expired" : "expires in", days < 0 ? -days : days, e->serial,
	    e->fingerprint);
}

static void
print_json(const struct ks_entry *e, int first)
{
	char nb[32], na[32];

	fmt_time(e->not_before, nb, sizeof(nb));
	fmt_time(e->not_after, na, sizeof(na));
	printf("%s\n  {\"id\": %lld, \"role\": ", first ? "" : ",", e->id);
	json_string(stdout, keystore_role_name(e->role));
	printf(", \"has_key\": %s, \"addresses\": ", e->has_key ? "true" : "false");
	json_string(stdout, e->addresses);
	printf(", \"subject\": ");
	json_string(stdout, e->subject);
	printf(", \"issuer\": ");
	json_string(stdout, e->issuer);
	printf(", \"serial\": ");
	json_string(stdout, e->serial);
	printf(", \"sha256\": ");
	json_string(stdout, e->fingerprint);
	printf(
	    ", \"not_before\": \"%s\", \"not_after\": \"%s\", \"days_left\": %ld, \"source\": ",
	    nb, na, (long)((e->not_after - time(NULL)) / 86400));
	json_string(stdout, e->source);
	printf("}");
}

static int
visit(const struct ks_entry *e, void *arg)
{
	struct list_state *st = arg;

	if (!selected(st, e))
		return 0;
	st->found_id = e->id;
	if (st->json)
		print_json(e, st->n == 0);
	else if (st->roles != 0)
		print_text(e);
	st->n++;
	return 0;
}

static int
run(struct segel_cfg *cfg, struct list_state *st)
{
	struct keystore *ks = open_keystore(cfg, 0);
	int r;

	if (st->json)
		printf("[");
	r = keystore_list(ks, visit, st);
	if (st->json)
		printf("%s]\n", st->n ? "\n" : "");
	keystore_close(ks);
	if (r != 0)
		die("cannot read the keystore: %s", sg_strerror(r));
	return 0;
}

static unsigned
roles_of(const char *what)
{
	if (strcmp(what, "keystore") == 0)
		return ROLES_KEYSTORE;
	if (strcmp(what, "trust") == 0)
		return ROLES_TRUST;
	return ROLES_CERT;
}

/* list | show SEL | remove SEL for "keystore", "cert" or "trust". */
int
cmd_list(struct segel_cfg *cfg, const char *what, int argc, char **argv)
{
	struct list_state st;
	const char *verb = argc > 0 ? argv[0] : "";
	int i;

	memset(&st, 0, sizeof(st));
	st.roles = roles_of(what);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			st.json = 1;
		else if (st.select == NULL && strcmp(verb, "list") != 0)
			st.select = argv[i];
		else
			die("usage: segelctl -c CONF %s list|show ID|remove ID [--json]", what);
	}
	if (strcmp(verb, "list") == 0) {
		run(cfg, &st);
		if (!st.json && st.n == 0)
			printf("no %s entries\n", what);
		return 0;
	}
	if (st.select == NULL || (strcmp(verb, "show") != 0 && strcmp(verb, "remove") != 0))
		die("usage: segelctl -c CONF %s list|show ID|remove ID [--json]", what);
	if (strcmp(verb, "show") == 0) {
		run(cfg, &st);
		if (st.n == 0)
			die("%s: no such %s entry (see `segelctl %s list`)", st.select, what,
			    what);
		return 0;
	}
	{
		struct list_state q = st;
		struct keystore *ks;
		int r;

		q.json = 0;
		q.roles = st.roles;
		ks = open_keystore(cfg, 0);
		if (keystore_list(ks, visit, &q) != 0 || q.n == 0)
			die("%s: no such %s entry (see `segelctl %s list`)", st.select, what,
			    what);
		if (q.n > 1)
			die("%s matches %d entries: give the id", st.select, q.n);
		r = keystore_remove(ks, q.found_id);
		keystore_close(ks);
		if (r != 0)
			die("cannot remove %s: %s", st.select, sg_strerror(r));
		printf("removed %s entry %lld\n", what, q.found_id);
	}
	return 0;
}

/* cert expiring --days N [--json]: own and correspondents' certificates. */
int
cmd_expiring(struct segel_cfg *cfg, int argc, char **argv)
{
	struct list_state st;
	long days = -1;
	char *end;
	int i;

	memset(&st, 0, sizeof(st));
	st.roles = ROLE(KS_ROLE_OWN) | ROLE(KS_ROLE_CORRESPONDENT);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			st.json = 1;
		else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			days = strtol(argv[++i], &end, 10);
			if (*end != '\0' || days < 0 || days > 36500)
				die("--days takes a number of days");
		} else
			die("usage: segelctl -c CONF cert expiring --days N [--json]");
	}
	if (days < 0)
		die("usage: segelctl -c CONF cert expiring --days N [--json]");
	st.horizon = time(NULL) + days * 86400;
	run(cfg, &st);
	if (!st.json && st.n == 0)
		printf("no certificate expires within %ld days\n", days);
	return 0;
}
