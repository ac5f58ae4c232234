/*
 * cmd.h - segelctl sub-commands and their shared helpers.
 */
#ifndef TOOLS_CMD_H
#define TOOLS_CMD_H

#include <openssl/x509.h>

#include "keystore/keystore.h"
#include "milter/config.h"

int die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
struct keystore *open_keystore(struct segel_cfg *cfg, int need_keys);
X509 *read_cert_file(const char *path);

int cmd_init(int argc, char **argv);
int cmd_list(struct segel_cfg *cfg, const char *what, int argc, char **argv);
int cmd_expiring(struct segel_cfg *cfg, int argc, char **argv);
int cmd_cert_check(struct segel_cfg *cfg, int argc, char **argv);
int cmd_crl(struct segel_cfg *cfg, int argc, char **argv);
int cmd_revocation(struct segel_cfg *cfg, int argc, char **argv);
int cmd_audit(struct segel_cfg *cfg, int argc, char **argv);
int cmd_harvest(struct segel_cfg *cfg, int argc, char **argv);
int cmd_notify_expiring(struct segel_cfg *cfg, int argc, char **argv);
int cmd_sign(struct segel_cfg *cfg, int argc, char **argv);
/* Prints s as a JSON string literal. */
void json_string(FILE *fp, const char *s);

#endif
