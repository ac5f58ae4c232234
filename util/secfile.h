/*
 * secfile.h - files that hold secrets or trust decisions.
 *
 * A secret file must be a regular file owned by root or the effective
 * user, with no group or other permissions, and every directory up to the
 * root must be owned by root or the effective user and not writable by
 * others (unless sticky).  Otherwise someone else could read or replace
 * it, and Segel refuses it with a message that says which path is wrong.
 */
#ifndef SG_SECFILE_H
#define SG_SECFILE_H

#include <stddef.h>

#include "sg_err.h"

/* 0, or SG_ERR_UNSAFE_PERM / SG_ERR_SYSTEM with the reason in why. */
int sg_secfile_check(const char *path, char *why, size_t whylen) SG_WUR;
/*
 * Checks path as above, then reads its first line (without the line end)
 * into a malloc'd string that the caller frees with sg_strfreezero().
 */
int sg_secfile_read_line(const char *path, char **out, char *why, size_t whylen) SG_WUR;

#endif
