/*
 * segelctl - the administrator's command line for Segel.
 *
 *   segelctl init --dir DIR --domain DOMAIN [--domain DOMAIN ...] [--user USER]
 *   segelctl -c CONF trust add CA.pem
 *   segelctl -c CONF keystore import FILE.p12 [--passphrase-file F]
 *   segelctl -c CONF keystore list [--json]
 *   segelctl -c CONF cert import CERT.pem
 *   segelctl -c CONF config check
 *   segelctl -c CONF config reference
 *   segelctl -c CONF sign --as ADDRESS [IN [OUT]]
 *
 * Run as root on a keystore owned by another user (the milter's), it
 * switches to that user first, so the files SQLite creates beside the
 * database stay usable by the milter.  Every error says what to do next.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "keystore/keystore.h"
#include "milter/config.h"
#include "smime/smime.h"
#include "tools/cmd.h"
#include "util/secfile.h"
#include "util/secmem.h"

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr,
	    "usage: segelctl init --dir DIR --domain DOMAIN [--domain DOMAIN ...] [--user "
	    "USER]\n"
	    "       segelctl -c CONF trust add CA.pem\n"
	    "       segelctl -c CONF keystore import FILE.p12 [--passphrase-file F]\n"
	    "       segelctl -c CONF keystore import-pkcs11 --cert CERT.pem --uri "
	    "'pkcs11:...'\n"
	    "       segelctl -c CONF keystore|cert|trust list [--json]\n"
	    "       segelctl -c CONF keystore|cert|trust show|remove ID|FINGERPRINT [--json]\n"
	    "       segelctl -c CONF cert expiring --days N [--json]\n"
	    "       segelctl -c CONF cert harvest SIGNED.eml\n"
	    "       segelctl -c CONF cert notify-expiring [--days N]\n"
	    "       segelctl -c CONF cert import CERT.pem\n"
	    "       segelctl -c CONF cert check CERT.pem [--use sign|encrypt] [--address A] "
	    "[--at YYYY-MM-DD]\n"
	    "       segelctl -c CONF crl import FILE [--url URL] | crl update\n"
	    "       segelctl -c CONF revocation check ADDRESS|CERT.pem [--no-fetch]\n"
	    "       segelctl -c CONF audit verify\n"
	    "       segelctl -c CONF config check | reference\n"
	    "       segelctl -c CONF sign --as ADDRESS [IN [OUT]]\n");
	exit(2);
}

int
die(const char *fmt, ...)
{
	va_list ap;

	fputs("segelctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int switched_to_owner;

/* If root and the keystore belongs to someone else, become that user. */
static void
become_keystore_owner(const char *path)
{
	struct stat st;

	if (geteuid() != 0 || stat(path, &st) != 0 || st.st_uid == 0)
		return;
	if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0)
		die("cannot switch to the keystore owner (uid %ld): %s", (long)st.st_uid,
		    strerror(errno));
	switched_to_owner = 1;
}

/* Gives ks the PKCS#11 module and PIN of the configuration, if any. */
static void
setup_pkcs11(struct segel_cfg *cfg, struct keystore *ks)
{
	char why[512], *pin = NULL;
	int r;

	if (cfg->pkcs11_module[0] == '\0')
		return;
	if (cfg->pkcs11_pin_file[0] != '\0' &&
	    sg_secfile_read_line(cfg->pkcs11_pin_file, &pin, why, sizeof(why)) != 0)
		die("keystore.pkcs11_pin_file: %s", why);
	r = keystore_set_pkcs11(ks, cfg->pkcs11_module, pin);
	sg_strfreezero(pin);
	if (r != 0)
		die("out of memory");
}

struct keystore *
open_keystore(struct segel_cfg *cfg, int need_keys)
{
	struct keystore *ks = NULL;
	char why[512], *master = NULL, actor[64];
	struct passwd *pw = getpwuid(getuid());
	int r;

	if (need_keys &&
	    sg_secfile_read_line(cfg->master_passphrase_file, &master, why, sizeof(why)) != 0)
		die("master passphrase: %s", why);
	become_keystore_owner(cfg->keystore_path);
	r = keystore_open(
	    cfg->keystore_path, master, need_keys ? 0 : KS_OPEN_NOKEYS, &ks, why, sizeof(why));
	sg_strfreezero(master);
	if (r != 0 && switched_to_owner)
		die("keystore: %s (as uid %ld, the keystore's owner: every directory above it "
		    "must be searchable by that user)",
		    why, (long)geteuid());
	if (r != 0)
		die("keystore: %s", why);
	snprintf(actor, sizeof(actor), "segelctl:%s", pw ? pw->pw_name : "?");
	keystore_set_actor(ks, actor);
	keystore_allow_sha1(ks, cfg->allow_sha1);
	setup_pkcs11(cfg, ks);
	return ks;
}

static struct segel_cfg *
load_config(const char *path)
{
	struct segel_cfg *cfg;
	char err[512];

	if (path == NULL)
		die("no configuration: use -c CONF (segelctl init writes one)");
	if (cfg_load(path, &cfg, err, sizeof(err)) != 0)
		die("%s", err);
	return cfg;
}

X509 *
read_cert_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	if (fp == NULL)
		die("%s: %s", path, strerror(errno));
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	if (x == NULL) {
		rewind(fp);
		x = d2i_X509_fp(fp, NULL);
	}
	fclose(fp);
	if (x == NULL)
		die("%s: not a PEM or DER certificate", path);
	return x;
}

static int
cmd_trust(struct segel_cfg *cfg, int argc, char **argv)
{
	struct keystore *ks;
	X509 *x;
	int r;

	if (argc >= 1 &&
	    (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "show") == 0 ||
	        strcmp(argv[0], "remove") == 0))
		return cmd_list(cfg, "trust", argc, argv);
	if (argc != 2 || strcmp(argv[0], "add") != 0)
		usage();
	x = read_cert_file(argv[1]);
	ks = open_keystore(cfg, 0);
	r = keystore_add_anchor(ks, x);
	X509_free(x);
	keystore_close(ks);
	if (r == SG_ERR_EXISTS)
		printf("trust anchor already present: %s\n", argv[1]);
	else if (r == SG_ERR_CERT_UNUSABLE)
		die("%s is not a self-signed CA certificate; add intermediates with `cert "
		    "import`",
		    argv[1]);
	else if (r != 0)
		die("cannot add %s: %s", argv[1], sg_strerror(r));
	else
		printf("trust anchor added: %s\n", argv[1]);
	return 0;
}

static char *
read_passphrase(const char *file)
{
	char buf[1024], *p;

	if (file != NULL) {
		FILE *fp = fopen(file, "r");

		if (fp == NULL)
			die("%s: %s", file, strerror(errno));
		p = fgets(buf, sizeof(buf), fp);
		fclose(fp);
		if (p == NULL)
			die("%s: empty passphrase file", file);
	} else {
		if (isatty(0))
			fputs("PKCS#12 passphrase: ", stderr);
		if (fgets(buf, sizeof(buf), stdin) == NULL)
			die("no passphrase on standard input");
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	p = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return p;
}

static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (fp == NULL)
		die("%s: %s", path, strerror(errno));
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > 16 * 1024 * 1024 || (buf = realloc(buf, cap)) == NULL)
				die("%s: too large", path);
		}
		if ((n = fread(buf + *len, 1, cap - *len, fp)) == 0)
			break;
		*len += n;
	}
	fclose(fp);
	return buf;
}

static int
cmd_keystore_import(struct segel_cfg *cfg, int argc, char **argv)
{
	const char *passfile = NULL, *file = NULL;
	struct keystore *ks;
	unsigned char *der;
	char *pass, *subject = NULL;
	size_t len;
	int i, r;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--passphrase-file") == 0 && i + 1 < argc)
			passfile = argv[++i];
		else if (file == NULL && argv[i][0] != '-')
			file = argv[i];
		else
			usage();
	}
	if (file == NULL)
		usage();
	der = read_file(file, &len);
	pass = read_passphrase(passfile);
	ks = open_keystore(cfg, 1);
	r = keystore_import_p12(ks, der, len, pass, &subject);
	sg_strfreezero(pass);
	free(der);
	keystore_close(ks);
	if (r == SG_ERR_BAD_PASSPHRASE)
		die("%s: wrong passphrase (check --passphrase-file)", file);
	if (r == SG_ERR_MALFORMED)
		die("%s: not a PKCS#12 file with one key and its certificate", file);
	if (r != 0)
		die("%s: import failed: %s", file, sg_strerror(r));
	printf("imported %s: %s\n", file, subject ? subject : "");
	free(subject);
	return 0;
}

/* keystore import-pkcs11 --cert CERT.pem --uri 'pkcs11:...' */
static int
cmd_keystore_import_pkcs11(struct segel_cfg *cfg, int argc, char **argv)
{
	const char *certfile = NULL, *uri = NULL;
	struct keystore *ks;
	char why[512] = "";
	X509 *x;
	int i, r;

	for (i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--cert") == 0)
			certfile = argv[i + 1];
		else if (strcmp(argv[i], "--uri") == 0)
			uri = argv[i + 1];
		else
			break;
	}
	if (i != argc || certfile == NULL || uri == NULL)
		die("usage: segelctl -c CONF keystore import-pkcs11 --cert CERT.pem --uri "
		    "'pkcs11:...'");
	if (cfg->pkcs11_module[0] == '\0')
		die("set keystore.pkcs11_module (and keystore.pkcs11_pin_file) in %s first",
		    cfg->path);
	x = read_cert_file(certfile);
	ks = open_keystore(cfg, 0);
	r = keystore_import_pkcs11(ks, x, uri, why, sizeof(why));
	keystore_close(ks);
	X509_free(x);
	if (r != 0)
		die("%s: %s", certfile, why[0] ? why : sg_strerror(r));
	printf("imported %s with its key in the PKCS#11 token\n", certfile);
	return 0;
}

static int
cmd_keystore(struct segel_cfg *cfg, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "import-pkcs11") == 0)
		return cmd_keystore_import_pkcs11(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "import") == 0)
		return cmd_keystore_import(cfg, argc - 1, argv + 1);
	if (argc >= 1 &&
	    (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "show") == 0 ||
	        strcmp(argv[0], "remove") == 0))
		return cmd_list(cfg, "keystore", argc, argv);
	usage();
	return 2;
}

static int
cmd_cert(struct segel_cfg *cfg, int argc, char **argv)
{
	struct keystore *ks;
	X509 *x;
	int r;

	if (argc >= 1 && strcmp(argv[0], "check") == 0)
		return cmd_cert_check(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "notify-expiring") == 0)
		return cmd_notify_expiring(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "harvest") == 0)
		return cmd_harvest(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "expiring") == 0)
		return cmd_expiring(cfg, argc - 1, argv + 1);
	if (argc >= 1 &&
	    (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "show") == 0 ||
	        strcmp(argv[0], "remove") == 0))
		return cmd_list(cfg, "cert", argc, argv);
	if (argc != 2 || strcmp(argv[0], "import") != 0)
		usage();
	x = read_cert_file(argv[1]);
	ks = open_keystore(cfg, 0);
	r = keystore_add_cert(ks, x, "imported");
	X509_free(x);
	keystore_close(ks);
	if (r == SG_ERR_EXISTS)
		printf("certificate already present: %s\n", argv[1]);
	else if (r != 0)
		die("cannot import %s: %s", argv[1], sg_strerror(r));
	else
		printf("certificate imported: %s\n", argv[1]);
	return 0;
}

static int
cmd_config(struct segel_cfg *cfg, const char *path, int argc, char **argv)
{
	char why[512];

	if (argc == 1 && strcmp(argv[0], "reference") == 0) {
		cfg_print_reference(stdout);
		return 0;
	}
	if (argc != 1 || strcmp(argv[0], "check") != 0)
		usage();
	if (sg_secfile_check(cfg->master_passphrase_file, why, sizeof(why)) != 0)
		die("%s: keystore.master_passphrase_file: %s", path, why);
	if (sg_secfile_check(cfg->keystore_path, why, sizeof(why)) != 0)
		die("%s: keystore.path: %s", path, why);
	printf("%s: configuration OK\n", path);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *conf = NULL;
	struct segel_cfg *cfg;
	int i = 1, r;

	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return cmd_init(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
		conf = argv[2];
		i = 3;
	}
	if (i >= argc)
		usage();
	if (sg_secmem_harden_process() != 0)
		die("cannot disable core dumps");
	cfg = load_config(conf);
	if (strcmp(argv[i], "trust") == 0)
		r = cmd_trust(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "keystore") == 0)
		r = cmd_keystore(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "cert") == 0)
		r = cmd_cert(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "config") == 0)
		r = cmd_config(cfg, conf, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "audit") == 0)
		r = cmd_audit(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "crl") == 0)
		r = cmd_crl(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "revocation") == 0)
		r = cmd_revocation(cfg, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "sign") == 0)
		r = cmd_sign(cfg, argc - i - 1, argv + i + 1);
	else
		usage();
	cfg_unref(cfg);
	return r;
}
