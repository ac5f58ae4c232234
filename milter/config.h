/*
 * config.h - segel.conf: every setting declared once, in one table.
 *
 * cfg_load() reads a libconfig file, rejects unknown groups and keys and
 * out-of-range values with "file:line: ...", fills in defaults, resolves
 * relative paths against the file's directory, loads the map files, and
 * builds the policy settings.  A struct segel_cfg is immutable once
 * loaded and reference-counted, so a reload can swap in a new one while
 * messages in flight keep the snapshot they started with.
 */
#ifndef MI_CONFIG_H
#define MI_CONFIG_H

#include <stdio.h>

#include "policy/policy.h"
#include "smime/smime.h"
#include "util/sg_err.h"

enum cfg_action {
	CFG_ACT_DELIVER,
	CFG_ACT_TEMPFAIL,
	CFG_ACT_REJECT,
	CFG_ACT_ACCEPT,
	CFG_ACT_SIGN
};

struct cfg_strlist {
	char **v;
	size_t n;
};

struct segel_cfg {
	char *path;
	char *dir;
	/* milter */
	char *socket;
	char *user;
	char *pid_file;
	char *spool_dir;
	long long memory_threshold;
	int on_internal_error; /* tempfail | accept | reject */
	int log_level;
	char *log_facility;
	/* keystore */
	char *keystore_path;
	char *master_passphrase_file;
	char *pkcs11_module;
	int allow_sha1;
	char *pkcs11_pin_file;
	/* domains */
	struct cfg_strlist internal;
	/* signing */
	int sign_mode; /* 0 always, 1 never */
	int digest; /* enum sm_digest */
	int rsa_padding; /* 0 pkcs1, 1 pss */
	int include_chain;
	int on_unauthorized; /* deliver | reject */
	int on_no_certificate; /* deliver | tempfail | reject */
	int on_malformed; /* deliver | tempfail | reject */
	/* auth */
	int login_rule;
	char *login_map;
	struct cfg_strlist trusted_networks;
	char *sender_aliases;
	/* revocation */
	int revocation_check;
	long long revocation_timeout;
	int on_revocation_unknown_sign; /* tempfail | deliver | sign */
	/* expiry notices */
	long long expiry_notice_days;
	char *expiry_admin;
	char *expiry_from;
	char *sendmail;
	/* limits */
	long long max_message_size, max_header_size, max_headers, max_mime_depth,
	    max_mime_parts, max_recipients, max_chain_length;

	/* derived */
	struct sm_limits limits;
	struct policy_cfg policy;
	int refs;
};

/* Loads and checks path; on error *err holds "file:line: what". */
int cfg_load(const char *path, struct segel_cfg **out, char *err, size_t errlen) SG_WUR;
void cfg_free(struct segel_cfg *c);
/* Prints every setting with its default and documentation. */
void cfg_print_reference(FILE *fp);
/* Reference counting for snapshots (thread-safe). */
struct segel_cfg *cfg_ref(struct segel_cfg *c);
void cfg_unref(struct segel_cfg *c);
/* Names for an action value ("deliver" ...). */
const char *cfg_action_name(int a);

#endif
