/*
 * main.c - segel-milter: start-up, the supervisor and the worker.
 *
 * Process layout.  The process started by the administrator is the
 * supervisor: it checks the configuration, then forks the worker and
 * restarts it if it dies.  SIGHUP to the supervisor re-reads and checks
 * the configuration and, if it is valid, tells the worker (SIGUSR1) to
 * load it; libmilter owns SIGHUP inside the worker, hence the relay.
 * SIGTERM and SIGINT stop both.  The worker reads the master passphrase
 * while still privileged, opens the milter socket, drops to milter.user,
 * then opens the keystore and serves Postfix through libmilter.
 *
 * SECURITY: both processes are non-dumpable and have no core limit.  The
 * key-holding signer process of the keystore issue will sit beside the
 * worker under this supervisor.
 *
 * DIAGNOSTICS: `segel-milter -n` checks the configuration and exits 1
 * with "file:line: problem"; start-up failures are logged and exit 1.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "milter/milter.h"
#include "util/log.h"
#include "util/secfile.h"
#include "util/secmem.h"

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct segel_cfg *current;
static struct keystore *keystore;
static const char *cfg_path;

struct segel_cfg *
milter_cfg_get(void)
{
	struct segel_cfg *c;

	pthread_mutex_lock(&cfg_lock);
	c = cfg_ref(current);
	pthread_mutex_unlock(&cfg_lock);
	return c;
}

void
milter_cfg_set(struct segel_cfg *c)
{
	struct segel_cfg *old;

	pthread_mutex_lock(&cfg_lock);
	old = current;
	current = c;
	pthread_mutex_unlock(&cfg_lock);
	cfg_unref(old);
}

struct keystore *
milter_keystore(void)
{
	return keystore;
}

void
milter_set_keystore(struct keystore *ks)
{
	keystore = ks;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: segel-milter -c CONF [-p SOCKET] [-f] [-n]\n"
	    "  -c CONF    configuration file\n"
	    "  -p SOCKET  override milter.socket (unix:/path or inet:PORT@HOST)\n"
	    "  -f         stay in the foreground and log to stderr\n"
	    "  -n         check the configuration and exit\n");
	exit(2);
}

static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user[0] == '\0' || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		sg_log(SG_LOG_FATAL, "milter.user: no such user \"%s\"", user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
	    setuid(0) == 0) {
		sg_log(SG_LOG_FATAL, "cannot drop privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	if (sg_secmem_harden_process() != 0) /* setuid resets dumpable */
		return -1;
	return 0;
}

static void *
reload_thread(void *arg)
{
	sigset_t set;
	int sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		struct segel_cfg *c;
		char err[512];

		if (sigwait(&set, &sig) != 0)
			continue;
		if (cfg_load(cfg_path, &c, err, sizeof(err)) != 0) {
			sg_log(
			    SG_LOG_ERROR, "reload: %s; keeping the running configuration", err);
			continue;
		}
		milter_cfg_set(c);
		sg_log(SG_LOG_INFO, "reload: configuration %s loaded", cfg_path);
	}
	return NULL;
}

static int
worker(struct segel_cfg *cfg, const char *sock)
{
	char why[512], *master = NULL;
	struct keystore *ks = NULL;
	pthread_t tid;
	sigset_t set;
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (sg_secfile_read_line(cfg->master_passphrase_file, &master, why, sizeof(why)) != 0) {
		sg_log(SG_LOG_FATAL, "master passphrase: %s", why);
		return 1;
	}
	sg_secmem_lock(master, strlen(master));
	if (smfi_setconn((char *)sock) == MI_FAILURE ||
	    smfi_register(milter_desc) == MI_FAILURE || smfi_opensocket(1) == MI_FAILURE) {
		sg_log(SG_LOG_FATAL, "cannot open milter socket %s", sock);
		sg_strfreezero(master);
		return 1;
	}
	if (drop_privileges(cfg->user) != 0) {
		sg_strfreezero(master);
		return 1;
	}
	r = keystore_open(cfg->keystore_path, master, 0, &ks, why, sizeof(why));
	sg_strfreezero(master);
	if (r != 0) {
		sg_log(SG_LOG_FATAL, "keystore: %s", why);
		return 1;
	}
	keystore_set_actor(ks, "segel-milter");
	milter_set_keystore(ks);
	if (mkdir(cfg->spool_dir, 0700) != 0 && errno != EEXIST) {
		sg_log(SG_LOG_FATAL, "spool directory %s: %s", cfg->spool_dir, strerror(errno));
		return 1;
	}
	if (pthread_create(&tid, NULL, reload_thread, NULL) != 0)
		return 1;
	milter_cfg_set(cfg_ref(cfg));
	smfi_settimeout(300);
	sg_log(SG_LOG_INFO, "worker ready on %s", sock);
	r = smfi_main();
	sg_log(SG_LOG_INFO, "worker stopping");
	return r == MI_SUCCESS ? 0 : 1;
}

static volatile sig_atomic_t got_hup, got_term;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static pid_t
spawn(struct segel_cfg *cfg, const char *sock)
{
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		_exit(worker(cfg, sock));
	}
	return pid;
}

/* Supervises the worker until SIGTERM; relays SIGHUP as a reload.
 * Takes over the caller's reference to cfg. */
static int
supervise(struct segel_cfg *cfg, const char *sock)
{
	struct sigaction sa;
	time_t last_start = 0;
	pid_t child;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((child = spawn(cfg, sock)) < 0)
		return 1;
	last_start = time(NULL);
	for (;;) {
		pid_t p = waitpid(child, &status, 0);

		if (p < 0 && errno == EINTR) {
			if (got_term) {
				kill(child, SIGTERM);
				waitpid(child, &status, 0);
				return 0;
			}
			if (got_hup) {
				struct segel_cfg *c;
				char err[512];

				got_hup = 0;
				if (cfg_load(cfg_path, &c, err, sizeof(err)) != 0) {
					sg_log(SG_LOG_ERROR, "reload refused: %s", err);
				} else {
					/* a restarted worker must start from the new file too */
					cfg_unref(cfg);
					cfg = c;
					kill(child, SIGUSR1);
				}
			}
			continue;
		}
		if (p < 0)
			return 1;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		    time(NULL) - last_start < 5) {
			sg_log(SG_LOG_FATAL, "worker failed at start-up (exit %d)",
			    WEXITSTATUS(status));
			return 1;
		}
		if (got_term)
			return 0;
		sg_log(SG_LOG_ERROR, "worker %ld ended (%s %d); restarting", (long)child,
		    WIFSIGNALED(status) ? "signal" : "exit",
		    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		if (time(NULL) - last_start < 1)
			sleep(1);
		if ((child = spawn(cfg, sock)) < 0)
			return 1;
		last_start = time(NULL);
	}
}

static int
write_pid(const char *path)
{
	FILE *fp;

	if (path[0] == '\0')
		return 0;
	if ((fp = fopen(path, "w")) == NULL) {
		sg_log(SG_LOG_FATAL, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	return fclose(fp) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct segel_cfg *cfg;
	const char *sock = NULL;
	char err[512];
	int ch, foreground = 0, check = 0, r;

	while ((ch = getopt(argc, argv, "c:p:fnh")) != -1) {
		switch (ch) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'p':
			sock = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (cfg_path == NULL || optind != argc)
		usage();
	if (cfg_load(cfg_path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "segel-milter: %s\n", err);
		return 1;
	}
	if (check) {
		if (sg_secfile_check(cfg->master_passphrase_file, err, sizeof(err)) != 0) {
			fprintf(stderr,
			    "segel-milter: %s: keystore.master_passphrase_file: %s\n", cfg_path,
			    err);
			return 1;
		}
		printf("segel-milter: %s: configuration OK\n", cfg_path);
		return 0;
	}
	if (sg_secmem_harden_process() != 0) {
		fprintf(
		    stderr, "segel-milter: cannot disable core dumps: %s\n", strerror(errno));
		return 1;
	}
	if (sg_log_open("segel-milter", foreground ? "stderr" : cfg->log_facility,
	        (enum sg_log_level)cfg->log_level) != 0) {
		fprintf(stderr, "segel-milter: unknown log facility %s\n", cfg->log_facility);
		return 1;
	}
	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "segel-milter: cannot daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (write_pid(cfg->pid_file) != 0)
		return 1;
	if (sock == NULL)
		sock = cfg->socket;
	sg_log(SG_LOG_INFO, "starting: config %s, socket %s", cfg_path, sock);
	if ((sock = strdup(sock)) == NULL)
		return 1;
	r = supervise(cfg, sock);
	return r;
}
