/*
 * list.c - `segelctl keystore list [--json]`.
 */
#include <stdio.h>
#include <string.h>
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

struct list_state {
	int json;
	int n;
};

static void
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
print_entry(const struct ks_entry *e, void *arg)
{
	struct list_state *st = arg;
	char nb[32], na[32];

	fmt_time(e->not_before, nb, sizeof(nb));
	fmt_time(e->not_after, na, sizeof(na));
	if (!st->json) {
		printf(
		    "%-13s %-3s %-40s %s\n    subject %s\n    issuer  %s\n    valid   %s .. %s"
		    "  serial %s\n    sha256  %s\n",
		    keystore_role_name(e->role), e->has_key ? "key" : "-",
		    e->addresses[0] ? e->addresses : "-", e->source, e->subject, e->issuer, nb,
		    na, e->serial, e->fingerprint);
		st->n++;
		return 0;
	}
	printf("%s\n  {\"id\": %lld, \"role\": ", st->n++ ? "," : "", e->id);
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
	printf(", \"not_before\": \"%s\", \"not_after\": \"%s\", \"source\": ", nb, na);
	json_string(stdout, e->source);
	printf("}");
	return 0;
}

int
cmd_list(struct segel_cfg *cfg, int argc, char **argv)
{
	struct list_state st = {0, 0};
	struct keystore *ks;
	int r;

	if (argc == 1 && strcmp(argv[0], "--json") == 0)
		st.json = 1;
	else if (argc != 0)
		die("usage: segelctl -c CONF keystore list [--json]");
	ks = open_keystore(cfg, 0);
	if (st.json)
		printf("[");
	r = keystore_list(ks, print_entry, &st);
	if (st.json)
		printf("%s]\n", st.n ? "\n" : "");
	else if (st.n == 0)
		printf("the keystore is empty (segelctl -c CONF trust add CA.pem; keystore "
		       "import)\n");
	keystore_close(ks);
	if (r != 0)
		die("keystore list failed: %s", sg_strerror(r));
	return 0;
}
