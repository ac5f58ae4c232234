/*
 * main.c - segel-milter: start-up, the supervisor, and its two children.
 *
 * Process layout (privilege separation in the manner of OpenSSH's
 * monitor):
 *   supervisor  started as root; checks the configuration, starts the
 *               signer and the worker joined by socketpairs, restarts
 *               both when either dies, relays SIGHUP to the worker as a
 *               reload (libmilter owns SIGHUP inside the worker).
 *   signer      stays root; reads the master passphrase, opens the
 *               keystore (root's, mode 0600), holds the decrypted keys and
 *               answers only IDENTITY and SIGN (milter/signer.c).
 *   worker      opens the milter socket, drops to milter.user, parses
 *               mail with libmilter; it cannot open the keystore and never
 *               sees a key: signatures come from the signer.
 *
 * SECURITY: all processes are non-dumpable with no core limit.
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "milter/milter.h"
#include "milter/signer.h"
#include "util/log.h"
#include "util/secfile.h"
#include "util/secmem.h"

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct segel_cfg *current;
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

/*
 * libmilter writes each modification (header edits, body chunks) as its
 * own small packet; with Nagle's algorithm against the MTA's delayed ACK
 * every signed message waited about 40 ms.  libmilter does not expose its
 * listening socket, so find it (the only listening TCP socket of this
 * process) and set TCP_NODELAY there: Linux copies it to every accepted
 * connection.
 */
static void
set_nodelay(void)
{
	int fd, one = 1, listening;
	socklen_t len;
	struct stat st;

	for (fd = 0; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		len = sizeof(listening);
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
		    !listening || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			sg_log(SG_LOG_WARNING,
			    "cannot set TCP_NODELAY on the milter socket: %s", strerror(errno));
	}
}

static int
worker(struct segel_cfg *cfg, const char *sock, int *chan, int nchan)
{
	pthread_t tid;
	sigset_t set;
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (signer_client_init(chan, nchan) != 0)
		return 1;
	if (smfi_setconn((char *)sock) == MI_FAILURE ||
	    smfi_register(milter_desc) == MI_FAILURE || smfi_opensocket(1) == MI_FAILURE) {
		sg_log(SG_LOG_FATAL, "cannot open milter socket %s", sock);
		return 1;
	}
	set_nodelay();
	if (drop_privileges(cfg->user) != 0)
		return 1;
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

#define NCHAN 8 /* signer channels: concurrent signatures */

struct procs {
	pid_t signer, worker;
};

/*
 * Starts a signer and a worker joined by NCHAN socketpairs.  Each child
 * keeps only its own ends.
 */
static int
spawn(struct segel_cfg *cfg, const char *sock, struct procs *p)
{
	int sv[NCHAN][2], mine[NCHAN], i;

	for (i = 0; i < NCHAN; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) != 0)
			return -1;
	if ((p->signer = fork()) == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		for (i = 0; i < NCHAN; i++) {
			close(sv[i][1]);
			mine[i] = sv[i][0];
		}
		signer_main(cfg, cfg_path, mine, NCHAN);
	}
	if (p->signer > 0 && (p->worker = fork()) == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		for (i = 0; i < NCHAN; i++) {
			close(sv[i][0]);
			mine[i] = sv[i][1];
		}
		_exit(worker(cfg, sock, mine, NCHAN));
	}
	for (i = 0; i < NCHAN; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return p->signer > 0 && p->worker > 0 ? 0 : -1;
}

/* SIGTERM, then SIGKILL if pid has not ended within five seconds. */
static void
end_child(pid_t pid)
{
	int status, i;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			return;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void
stop(struct procs *p)
{
	end_child(p->worker);
	end_child(p->signer);
	p->worker = p->signer = 0;
}

/*
 * Supervises the signer and the worker until SIGTERM; relays SIGHUP as a
 * reload to the worker.  When either dies, both are restarted, so a new
 * worker always has live channels.  Takes over the reference to cfg.
 */
static int
supervise(struct segel_cfg *cfg, const char *sock)
{
	struct sigaction sa;
	struct procs p = {0, 0};
	time_t last_start;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (spawn(cfg, sock, &p) != 0)
		return 1;
	last_start = time(NULL);
	for (;;) {
		pid_t dead = waitpid(-1, &status, 0);

		if (dead < 0 && errno == EINTR) {
			if (got_term) {
				stop(&p);
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
					kill(p.worker, SIGUSR1);
				}
			}
			continue;
		}
		if (dead < 0)
			return 1;
		if (dead != p.worker && dead != p.signer)
			continue;
		if (dead == p.worker)
			p.worker = 0;
		else
			p.signer = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		    time(NULL) - last_start < 5) {
			sg_log(SG_LOG_FATAL, "%s failed at start-up (exit %d)",
			    p.worker == 0 ? "worker" : "signer", WEXITSTATUS(status));
			stop(&p);
			return 1;
		}
		if (got_term) {
			stop(&p);
			return 0;
		}
		sg_log(SG_LOG_ERROR, "%s %ld ended (%s %d); restarting signer and worker",
		    p.worker == 0 ? "worker" : "signer", (long)dead,
		    WIFSIGNALED(status) ? "signal" : "exit",
		    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		stop(&p);
		if (time(NULL) - last_start < 1)
			sleep(1);
		if (spawn(cfg, sock, &p) != 0)
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
		cfg_unref(cfg);
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
