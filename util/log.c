/*
 * log.c - syslog or stderr logging with fixed levels.
 *
 * SECURITY: callers escape untrusted text with sg_log_escape(); lines are
 * formatted into a bounded buffer, so a huge argument is cut, not written.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int use_stderr = 1;
static enum sg_log_level min_level = SG_LOG_INFO;
static const char *log_ident = "segel";

static const struct {
	const char *name;
	int value;
} facilities[] = {
    {"mail", LOG_MAIL},
    {"daemon", LOG_DAEMON},
    {"user", LOG_USER},
    {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
};

static const char *const level_names[] = {
    "debug", "info", "warning", "error", "fatal", "panic"};
static const int level_prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT};

int
sg_log_open(const char *ident, const char *facility, enum sg_log_level min)
{
	size_t i;

	log_ident = ident;
	min_level = min;
	if (facility == NULL || strcmp(facility, "stderr") == 0) {
		use_stderr = 1;
		return 0;
	}
	for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
		if (strcasecmp(facility, facilities[i].name) == 0) {
			openlog(ident, LOG_PID | LOG_NDELAY, facilities[i].value);
			use_stderr = 0;
			return 0;
		}
	}
	return SG_ERR_CONFIG;
}

void
sg_log_set_level(enum sg_log_level min)
{
	min_level = min;
}

int
sg_log_level_parse(const char *name)
{
	int i;

	for (i = SG_LOG_DEBUG; i <= SG_LOG_ERROR; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void
sg_log(enum sg_log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_stderr) {
		fprintf(stderr, "%s[%ld]: %s: %s\n", log_ident, (long)getpid(),
		    level_names[level], line);
		return;
	}
	if (level == SG_LOG_INFO || level == SG_LOG_DEBUG)
		syslog(level_prio[level], "%s", line);
	else
		syslog(level_prio[level], "%s: %s", level_names[level], line);
}

static size_t
escaped_len(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);
}

char *
sg_log_escape(const void *src, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0, i, total = 0, room;

	if (outlen == 0)
		return out;
	for (i = 0; i < n && total < outlen; i++)
		total += escaped_len(s[i]);
	/* everything fits: no marker; otherwise keep room for "..." */
	room = total + 1 <= outlen ? outlen - 1 : (outlen >= 4 ? outlen - 4 : 0);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		size_t need = escaped_len(c);

		if (o + need > room)
			break;
		if (need == 1) {
			out[o++] = (char)c;
		} else if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (i < n && outlen >= 4) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
