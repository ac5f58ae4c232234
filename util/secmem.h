/*
 * secmem.h - handling of secrets in memory.
 *
 * sg_freezero() zeroes before freeing; sg_secmem_harden_process() makes the
 * process non-dumpable and disables core files, so keys never reach disk.
 */
#ifndef SG_SECMEM_H
#define SG_SECMEM_H

#include <stddef.h>

#include "sg_err.h"

/* Zeroes n bytes at p, then frees p.  Accepts NULL. */
void sg_freezero(void *p, size_t n);
/* Zeroes a NUL-terminated string and frees it.  Accepts NULL. */
void sg_strfreezero(char *s);
/* Disables core dumps and ptrace attach for this process; 0 or SG_ERR_SYSTEM. */
int sg_secmem_harden_process(void) SG_WUR;
/* Locks [p, p+n) into RAM and excludes it from core dumps (best effort). */
void sg_secmem_lock(void *p, size_t n);

#endif
