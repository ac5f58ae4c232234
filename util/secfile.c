/*
 * secfile.c - ownership and permission checks for secret files, in the
 * manner of OpenDKIM's dkimf_securefile(): the file and every directory
 * above it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secfile.h"
#include "secmem.h"

static int
owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

int
sg_secfile_check(const char *path, char *why, size_t whylen)
{
	char real[PATH_MAX], *slash;
	struct stat st;

	if (realpath(path, real) == NULL || stat(real, &st) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return SG_ERR_SYSTEM;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		return SG_ERR_UNSAFE_PERM;
	}
	if (!owner_ok(&st) || (st.st_mode & 077) != 0) {
		snprintf(why, whylen,
		    "%s: mode %04o owner %ld: must be owned by this user or root with mode "
		    "0600 "
		    "(chmod 600 %s)",
		    path, (unsigned)(st.st_mode & 07777), (long)st.st_uid, path);
		return SG_ERR_UNSAFE_PERM;
	}
	while ((slash = strrchr(real, '/')) != NULL) {
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(real, &st) != 0) {
			snprintf(why, whylen, "%s: %s", real, strerror(errno));
			return SG_ERR_SYSTEM;
		}
		if (!owner_ok(&st) ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)) {
			snprintf(why, whylen,
			    "%s: directory above %s may be changed by others (mode %04o owner "
			    "%ld)",
			    real, path, (unsigned)(st.st_mode & 07777), (long)st.st_uid);
			return SG_ERR_UNSAFE_PERM;
		}
		if (strcmp(real, "/") == 0)
			break;
	}
	return 0;
}

int
sg_secfile_read_line(const char *path, char **out, char *why, size_t whylen)
{
	char buf[1024];
	ssize_t n;
	size_t len;
	int fd, r;

	*out = NULL;
	if ((r = sg_secfile_check(path, why, whylen)) != 0)
		return r;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return SG_ERR_SYSTEM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return SG_ERR_SYSTEM;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0) {
		snprintf(why, whylen, "%s: empty passphrase", path);
		explicit_bzero(buf, sizeof(buf));
		return SG_ERR_CONFIG;
	}
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *out ? 0 : SG_ERR_NOMEM;
}
