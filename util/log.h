/*
 * log.h - the logging layer of the programs (milter and tools).
 *
 * The core libraries (smime/, keystore/, policy/) never log; they return
 * status codes.  Levels have fixed meanings, as in Postfix's msg(3):
 *   debug   - tracing for developers;
 *   info    - normal operation, one summary line per message;
 *   warning - something went wrong and was recovered;
 *   error   - this message (or this command) failed;
 *   fatal   - start-up cannot go on (the caller exits);
 *   panic   - our own bug.
 * Untrusted text must go through sg_log_escape(), which caps its length
 * and makes control and non-ASCII bytes visible.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stddef.h>

#include "sg_err.h"

enum sg_log_level {
	SG_LOG_DEBUG,
	SG_LOG_INFO,
	SG_LOG_WARNING,
	SG_LOG_ERROR,
	SG_LOG_FATAL,
	SG_LOG_PANIC,
};

/* facility: a syslog facility name ("mail", "local0" ...) or "stderr". */
int sg_log_open(const char *ident, const char *facility, enum sg_log_level min) SG_WUR;
void sg_log_set_level(enum sg_log_level min);
/* Parses "debug", "info", "warning", "error"; -1 when unknown. */
int sg_log_level_parse(const char *name);
void sg_log(enum sg_log_level level, const char *fmt, ...) SG_PRINTF(2, 3);

/*
 * Writes an escaped copy of n bytes of untrusted s into out (size outlen,
 * always NUL-terminated): printable ASCII as is, backslash as "\\", other
 * bytes as "\xHH"; "..." marks a cut.  Returns out.
 */
char *sg_log_escape(const void *s, size_t n, char *out, size_t outlen);

#endif
