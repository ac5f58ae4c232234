/*
 * secmem.c - secret memory helpers.
 *
 * SECURITY: explicit_bzero cannot be optimised away.  mlock failures are
 * tolerated (RLIMIT_MEMLOCK may be small) because core dumps are disabled
 * for the whole process anyway.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "secmem.h"

void
sg_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

void
sg_strfreezero(char *s)
{
	if (s != NULL)
		sg_freezero(s, strlen(s));
}

int
sg_secmem_harden_process(void)
{
	struct rlimit rl = {0, 0};

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return SG_ERR_SYSTEM;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return SG_ERR_SYSTEM;
	return 0;
}

void
sg_secmem_lock(void *p, size_t n)
{
	if (p == NULL || n == 0)
		return;
	(void)mlock(p, n);
#ifdef MADV_DONTDUMP
	(void)madvise((void *)((unsigned long)p & ~4095UL), n + ((unsigned long)p & 4095UL),
	    MADV_DONTDUMP);
#endif
}
