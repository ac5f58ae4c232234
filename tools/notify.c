/*
 * notify.c - `segelctl cert notify-expiring [--days N]`: regulation R7
 * (certificates are valid two years; owners must renew in time).  For
 * every own certificate that expires within N days (expiry.notice_days),
 * a notice in Indonesian and English goes to its owner and to
 * expiry.admin through the local sendmail(1).  Run it daily (cron or a
 * systemd timer); it prints what it sent.  Exit 0, or 1 when a notice
 * could not be handed to sendmail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/cmd.h"

struct notify {
	struct segel_cfg *cfg;
	time_t now, horizon;
	int sent, failed;
};

/* Runs sendmail -oi -f FROM -- RCPT... with the message on its stdin. */
static int
send_notice(struct notify *n, const char *to, const struct ks_entry *e, long days)
{
	const char *admin = n->cfg->expiry_admin;
	char date[64], until[32];
	struct tm tm;
	FILE *p;
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		if (admin[0] != '\0' && strcmp(admin, to) != 0)
			execl(n->cfg->sendmail, "sendmail", "-oi", "-f", n->cfg->expiry_from,
			    "--", to, admin, (char *)NULL);
		else
			execl(n->cfg->sendmail, "sendmail", "-oi", "-f", n->cfg->expiry_from,
			    "--", to, (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	if (pid < 0 || (p = fdopen(pfd[1], "w")) == NULL) {
		close(pfd[1]);
		return -1;
	}
	gmtime_r(&n->now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	gmtime_r(&e->not_after, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d", &tm);
	fprintf(p,
	    "From: %s\nTo: %s\n%s%s%sDate: %s\nSubject: Sertifikat elektronik Anda berakhir "
	    "dalam %ld hari"
	    " / Your certificate expires in %ld days\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
	    "Auto-Submitted: auto-generated\n\n"
	    "Sertifikat elektronik untuk %s berakhir pada %s (%ld hari lagi).\n"
	    "Segera ajukan pembaruan kepada Otoritas Pendaftaran (Diskominfo) sebelum\n"
	    "tanggal tersebut; setelah berakhir, surat dinas Anda tidak dapat\n"
	    "ditandatangani secara elektronik.\n\n"
	    "The electronic certificate for %s expires on %s (in %ld days). Ask the\n"
	    "registration authority to renew it before then; after that date your\n"
	    "official mail can no longer be signed.\n\n"
	    "Subject: %s\nIssuer: %s\nSerial: %s\nSHA-256: %s\n",
	    n->cfg->expiry_from, to, admin[0] ? "Cc: " : "", admin, admin[0] ? "\n" : "", date,
	    days, days, to, until, days, to, until, days, e->subject, e->issuer, e->serial,
	    e->fingerprint);
	if (fclose(p) != 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

static int
visit(const struct ks_entry *e, void *arg)
{
	struct notify *n = arg;
	char *addrs, *a, *save = NULL;
	long days;

	if (e->role != KS_ROLE_OWN || e->not_after > n->horizon || e->not_after < n->now ||
	    e->addresses[0] == '\0')
		return 0;
	days = (long)((e->not_after - n->now) / 86400);
	if ((addrs = strdup(e->addresses)) == NULL)
		return SG_ERR_NOMEM;
	for (a = strtok_r(addrs, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
		if (send_notice(n, a, e, days) == 0) {
			printf("notice sent to %s%s%s: certificate expires in %ld days\n", a,
			    n->cfg->expiry_admin[0] ? " and " : "", n->cfg->expiry_admin, days);
			n->sent++;
		} else {
			fprintf(stderr, "segelctl: cannot send the notice to %s through %s\n",
			    a, n->cfg->sendmail);
			n->failed++;
		}
	}
	free(addrs);
	return 0;
}

int
cmd_notify_expiring(struct segel_cfg *cfg, int argc, char **argv)
{
	struct notify n;
	struct keystore *ks;
	long days = (long)cfg->expiry_notice_days;
	char *end;
	int r;

	if (argc == 2 && strcmp(argv[0], "--days") == 0) {
		days = strtol(argv[1], &end, 10);
		if (*end != '\0' || days < 0 || days > 36500)
			die("--days takes a number of days");
	} else if (argc != 0) {
		die("usage: segelctl -c CONF cert notify-expiring [--days N]");
	}
	memset(&n, 0, sizeof(n));
	n.cfg = cfg;
	n.now = time(NULL);
	n.horizon = n.now + days * 86400;
	ks = open_keystore(cfg, 0);
	r = keystore_list(ks, visit, &n);
	keystore_close(ks);
	if (r != 0)
		die("cannot read the keystore: %s", sg_strerror(r));
	printf(
	    "expiry notices: %d sent, %d failed (horizon %ld days)\n", n.sent, n.failed, days);
	return n.failed ? 1 : 0;
}
