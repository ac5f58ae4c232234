/*
 * milter.h - the segel-milter daemon: shared state of the worker process.
 */
#ifndef MI_MILTER_H
#define MI_MILTER_H

#include <libmilter/mfapi.h>

#include "milter/config.h"

/* The current configuration snapshot (a new reference, cfg_unref it). */
struct segel_cfg *milter_cfg_get(void);
/* Installs c as the current snapshot (takes over the caller's reference). */
void milter_cfg_set(struct segel_cfg *c);

/* The libmilter callback table. */
extern struct smfiDesc milter_desc;

#endif
