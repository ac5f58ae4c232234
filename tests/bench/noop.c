/*
 * noop.c - the protocol ceiling for `make bench`: a libmilter milter that
 * registers the same callbacks and flags as segel-milter, keeps nothing
 * and accepts every message unchanged.  Usage: noop-milter SOCKET
 */
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

static sfsistat
cont(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
on_connect(SMFICTX *ctx, char *h, _SOCK_ADDR *sa)
{
	(void)h;
	(void)sa;
	return cont(ctx);
}

static sfsistat
on_args(SMFICTX *ctx, char **argv)
{
	(void)argv;
	return cont(ctx);
}

static sfsistat
on_header(SMFICTX *ctx, char *n, char *v)
{
	(void)n;
	(void)v;
	return cont(ctx);
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
	(void)p;
	(void)n;
	return cont(ctx);
}

static void
nodelay(void)
{
	int fd, one = 1, l;
	socklen_t len = sizeof(l);
	struct stat st;

	for (fd = 0; fd < 64; fd++)
		if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &l, &len) == 0 && l)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
main(int argc, char **argv)
{
	struct smfiDesc d = {
	    .xxfi_name = "noop",
	    .xxfi_version = SMFI_VERSION,
	    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
	    .xxfi_connect = on_connect,
	    .xxfi_envfrom = on_args,
	    .xxfi_envrcpt = on_args,
	    .xxfi_header = on_header,
	    .xxfi_eoh = cont,
	    .xxfi_body = on_body,
	    .xxfi_eom = cont,
	    .xxfi_abort = cont,
	    .xxfi_close = cont,
	};

	if (argc != 2) {
		fprintf(stderr, "usage: noop-milter SOCKET\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(d) == MI_FAILURE ||
	    smfi_opensocket(1) == MI_FAILURE)
		return 1;
	nodelay();
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
