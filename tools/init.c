/*
 * init.c - `segelctl init`: a working configuration in one command.
 *
 * Writes DIR/segel.conf, an empty keystore (DIR/data/keystore.db, 0600) and a
 * random master passphrase (DIR/master.key, 0600), so that
 * `segel-milter -c DIR/segel.conf` starts with no further edits.  With
 * --user (or, as root, when a "segel" user exists) the milter's worker
 * process drops to that user, who owns only DIR/spool.  Existing files are
 * never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "tools/cmd.h"

static void
write_new(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(content);

	if (fd < 0)
		die("%s: %s (init never overwrites a file)", path, strerror(errno));
	if (write(fd, content, n) != (ssize_t)n || fsync(fd) != 0 || close(fd) != 0)
		die("%s: %s", path, strerror(errno));
}

static void
master_key(const char *path)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char rnd[32];
	char text[34];
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		die("no randomness for the master passphrase");
	for (i = 0; i < sizeof(rnd); i++) /* 6 random bits a character: 192 bits */
		text[i] = b64[rnd[i] & 63];
	text[32] = '\n';
	text[33] = '\0';
	write_new(path, text, 0600);
	explicit_bzero(text, sizeof(text));
	explicit_bzero(rnd, sizeof(rnd));
}

int
cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *user = NULL, *domains[64];
	char path[PATH_MAX + 32], absdir[PATH_MAX], conf[3 * PATH_MAX + 8192], list[4096] = "";
	struct passwd *pw = NULL;
	size_t nd = 0, i, off = 0;
	struct keystore *ks;
	int k;

	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--dir") == 0 && k + 1 < argc)
			dir = argv[++k];
		else if (strcmp(argv[k], "--domain") == 0 && k + 1 < argc && nd < 64)
			domains[nd++] = argv[++k];
		else if (strcmp(argv[k], "--user") == 0 && k + 1 < argc)
			user = argv[++k];
		else
			die("init: usage: segelctl init --dir DIR --domain DOMAIN [--domain "
			    "...] "
			    "[--user USER]");
	}
	if (dir == NULL || nd == 0)
		die("init: --dir and at least one --domain are required");
	if (user == NULL && geteuid() == 0 && getpwnam("segel") != NULL)
		user = "segel";
	if (user != NULL && (pw = getpwnam(user)) == NULL)
		die("init: no such user %s (create it: useradd --system segel)", user);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		die("%s: %s", dir, strerror(errno));
	if (realpath(dir, absdir) == NULL)
		die("%s: %s", dir, strerror(errno));
	for (i = 0; i < nd; i++) {
		if (strchr(domains[i], '"') || strchr(domains[i], '\\') ||
		    strchr(domains[i], '@'))
			die("init: \"%s\" is not a domain", domains[i]);
		off += (size_t)snprintf(
		    list + off, sizeof(list) - off, "%s\"%s\"", i ? ", " : "", domains[i]);
		if (off >= sizeof(list))
			die("init: too many domains");
	}
	snprintf(conf, sizeof(conf),
	    "# Segel configuration written by `segelctl init`.\n"
	    "# Every setting and its default: segelctl -c %s/segel.conf config reference\n"
	    "\n"
	    "milter: {\n"
	    "  socket = \"inet:10901@127.0.0.1\";\n"
	    "  user = \"%s\";\n"
	    "  spool_dir = \"spool\";\n"
	    "  log_facility = \"mail\";\n"
	    "};\n"
	    "\n"
	    "keystore: {\n"
	    "  path = \"data/keystore.db\";\n"
	    "  master_passphrase_file = \"master.key\";\n"
	    "};\n"
	    "\n"
	    "domains: {\n"
	    "  internal = [ %s ];\n"
	    "};\n"
	    "\n"
	    "signing: {\n"
	    "  mode = \"always\";\n"
	    "  digest = \"sha256\";\n"
	    "  on_unauthorized = \"deliver\";\n"
	    "  on_no_certificate = \"deliver\";\n"
	    "  on_malformed = \"reject\";\n"
	    "};\n"
	    "\n"
	    "auth: {\n"
	    "  login_rule = \"address\";\n"
	    "  trusted_networks = [ ];\n"
	    "};\n",
	    absdir, user ? user : "", list);
	snprintf(path, sizeof(path), "%s/segel.conf", absdir);
	write_new(path, conf, 0644);
	printf("wrote %s\n", path);
	snprintf(path, sizeof(path), "%s/master.key", absdir);
	master_key(path);
	printf("wrote %s (master passphrase, mode 0600)\n", path);
	/* DIR/data holds the keystore and stays the invoking user's (root's):
	 * only the signer process opens it.  DIR/spool belongs to the milter
	 * user, whose worker process writes message bodies there. */
	snprintf(path, sizeof(path), "%s/data", absdir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/spool", absdir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) != 0)
		die("chown %s to %s: %s", path, user, strerror(errno));
	snprintf(path, sizeof(path), "%s/data/keystore.db", absdir);
	{
		char why[512];

		if (access(path, F_OK) == 0)
			die("%s exists (init never overwrites a file)", path);
		if (keystore_open(path, NULL, KS_OPEN_CREATE | KS_OPEN_NOKEYS, &ks, why,
		        sizeof(why)) != 0)
			die("keystore: %s", why);
		keystore_close(ks);
	}
	printf(
	    "wrote %s (empty keystore, mode 0600; only the signer process opens it)\n", path);
	printf("next: segelctl -c %s/segel.conf trust add CA.pem\n"
	       "      segelctl -c %s/segel.conf keystore import USER.p12\n"
	       "      segel-milter -c %s/segel.conf\n",
	    absdir, absdir, absdir);
	return 0;
}
