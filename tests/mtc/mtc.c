/*
 * mtc.c - milter test client.
 *
 * Speaks the MTA side of the Sendmail milter protocol, version 6, the way
 * Postfix's smtpd does: option negotiation, macros, connect, HELO, MAIL,
 * RCPT, DATA, headers, end of headers, body chunks and end of body.  It
 * prints the milter's verdict and modification requests, can apply those
 * requests to the message (-o), and doubles as a load generator (-n, -j).
 *
 * Standalone on purpose: C11, POSIX and pthreads only; the protocol
 * constants are copied from libmilter's mfdef.h so that no Segel or
 * libmilter header is needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Protocol constants, as in libmilter's mfdef.h / mfapi.h. */
#define SMFI_PROT_VERSION 6
#define SMFI_PROT_VERSION_MIN 2
#define MILTER_CHUNK_SIZE 65535

#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

#define SMFIF_ADDHDRS 0x00000001U
#define SMFIF_CHGBODY 0x00000002U
#define SMFIF_ADDRCPT 0x00000004U
#define SMFIF_DELRCPT 0x00000008U
#define SMFIF_CHGHDRS 0x00000010U
#define SMFIF_QUARANTINE 0x00000020U
#define SMFIF_CHGFROM 0x00000040U
#define SMFIF_ADDRCPT_PAR 0x00000080U
#define SMFIF_SETSYMLIST 0x00000100U
#define MTC_ACTIONS 0x000001FFU /* all of the above */

#define SMFIP_NOCONNECT 0x00000001U
#define SMFIP_NOHELO 0x00000002U
#define SMFIP_NOMAIL 0x00000004U
#define SMFIP_NORCPT 0x00000008U
#define SMFIP_NOBODY 0x00000010U
#define SMFIP_NOHDRS 0x00000020U
#define SMFIP_NOEOH 0x00000040U
#define SMFIP_NR_HDR 0x00000080U
#define SMFIP_NOUNKNOWN 0x00000100U
#define SMFIP_NODATA 0x00000200U
#define SMFIP_SKIP 0x00000400U
#define SMFIP_RCPT_REJ 0x00000800U
#define SMFIP_NR_CONN 0x00001000U
#define SMFIP_NR_HELO 0x00002000U
#define SMFIP_NR_MAIL 0x00004000U
#define SMFIP_NR_RCPT 0x00008000U
#define SMFIP_NR_DATA 0x00010000U
#define SMFIP_NR_UNKN 0x00020000U
#define SMFIP_NR_EOH 0x00040000U
#define SMFIP_NR_BODY 0x00080000U
#define SMFIP_HDR_LEADSPC 0x00100000U

/* Steps the milter may ask us to leave out: always offered. */
#define MTC_PROTO_NOSEND                                                                       \
	(SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY |         \
	    SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA)
#define MTC_PROTO_NOREPLY                                                                      \
	(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA |       \
	    SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)
/* What Postfix offers (-P): also no-reply steps, SKIP and leading spaces. */
#define MTC_PROTO_POSTFIX                                                                      \
	(MTC_PROTO_NOSEND | MTC_PROTO_NOREPLY | SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC)

/* Limits. */
#define MTC_MAX_PACKET (64U << 20) /* largest packet accepted from the milter */
#define MTC_MAX_BUF (1024U << 20) /* largest buffer of any kind */
#define MTC_MAX_MESSAGE (256U << 20) /* largest message file */
#define MTC_FLUSH_AT 65536 /* flush queued output beyond this */
#define MTC_MAX_ERRORS 10 /* error messages printed in load mode */

enum verdict {
	V_CONTINUE,
	V_ACCEPT,
	V_REJECT,
	V_TEMPFAIL,
	V_DISCARD,
	V_REPLYCODE,
	V_SHUTDOWN,
	V_CONNFAIL,
	V_COUNT,
	V_ERROR = V_COUNT /* protocol or I/O error, load mode only */
};

static const char *const verdict_name[V_COUNT] = {
    "continue", "accept", "reject", "tempfail", "discard", "replycode", "shutdown", "connfail"};

/* Growable byte buffer; always NUL-terminated, dies when out of memory. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

struct macro {
	const char *name;
	const char *value;
};

/* One header as read from the message or as created by the milter. */
struct hdr {
	const char *name; /* without the colon */
	const char *label; /* original text up to and including ':', or NULL */
	const char *lead; /* written between label and raw */
	const char *raw; /* value; folded lines joined with "\n" */
};

struct message {
	struct hdr *h;
	size_t nh;
	struct buf body; /* with CRLF line endings */
};

/* A header or body modification requested at end of body. */
struct edit {
	int cmd;
	uint32_t index;
	char *name;
	char *value;
};

/* Outcome of one message. */
struct result {
	enum verdict verdict;
	const char *stage;
	char code[4];
	char *text;
	int64_t ns;
	uint32_t pflags; /* negotiated protocol flags */
	struct buf lines; /* rcpt and action lines (detail mode) */
	struct edit *ed;
	size_t ned;
	struct buf newbody;
	int body_replaced;
};

struct endpoint {
	struct sockaddr_storage ss;
	socklen_t len;
	char desc[300];
};

struct opts {
	const char *socket;
	struct macro *extra;
	size_t nextra;
	const char *auth;
	const char *client;
	const char *queueid;
	const char *from;
	const char **rcpt;
	size_t nrcpt;
	const char *out;
	long count;
	long conns;
	long per_conn;
	int stats;
	int timeout;
	int postfix;
	int verbose;
	const char *file;
};

/* Everything shared by the sessions of one run. */
struct job {
	const struct opts *o;
	const struct message *msg;
	struct endpoint ep;
	int detail; /* single message: keep actions and edits */
	unsigned long qid_base;
	atomic_long next;
	atomic_int errors_shown;
	int64_t *lat;
	unsigned char *verdict;
};

/* One milter connection. */
struct conn {
	int fd;
	int64_t timeout_ms;
	int verbose;
	uint32_t version;
	uint32_t actions;
	uint32_t pflags;
	struct buf wb; /* queued packets */
	struct buf pkt; /* data of the last packet read */
	size_t rpos;
	size_t rlen;
	char rb[16384];
	char err[512];
};

/* The milter's answer to one event. */
struct reply {
	int cmd;
	const char *text; /* SMFIR_REPLYCODE only; valid until the next read */
};

/* --- utilities ---------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mtc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		die("out of memory");
	if ((p = realloc(p, n * size > 0 ? n * size : 1)) == NULL)
		die("out of memory");
	return p;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
now_ms(void)
{
	return now_ns() / 1000000;
}

/* Parses a decimal number in [min, max]; returns -1 when it is not one. */
static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
buf_reserve(struct buf *b, size_t n)
{
	size_t want, ncap;

	if (n > MTC_MAX_BUF - b->len)
		die("buffer limit of %u bytes exceeded", MTC_MAX_BUF);
	want = b->len + n + 1;
	if (want <= b->cap)
		return;
	ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap *= 2;
	if ((b->p = realloc(b->p, ncap)) == NULL)
		die("out of memory");
	b->cap = ncap;
}

static void
buf_put(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* Appends s including its terminating NUL, as protocol strings go. */
static void
buf_putz(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s) + 1);
}

static void
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	buf_put(b, &ch, 1);
}

static void
buf_put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	    (unsigned char)(v >> 8), (unsigned char)v};

	buf_put(b, x, 4);
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char tmp[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("formatting failed");
	buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Appends n bytes, escaping CR, LF, TAB, backslash and control characters. */
static void
buf_put_escaped(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\\')
			buf_puts(b, "\\\\");
		else if (ch == '\r')
			buf_puts(b, "\\r");
		else if (ch == '\n')
			buf_puts(b, "\\n");
		else if (ch == '\t')
			buf_puts(b, "\\t");
		else if (ch < 0x20 || ch == 0x7f) {
			char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};

			buf_put(b, e, sizeof e);
		} else
			buf_putc(b, ch);
	}
}

static void
buf_put_escaped_str(struct buf *b, const char *s)
{
	buf_put_escaped(b, s, strlen(s));
}

/* Appends n bytes, turning every LF not preceded by CR into CRLF. */
static void
buf_put_crlf(struct buf *b, const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\n' || (i > 0 && s[i - 1] == '\r'))
			continue;
		buf_put(b, s + start, i - start);
		buf_put(b, "\r\n", 2);
		start = i + 1;
	}
	buf_put(b, s + start, n - start);
}

static uint32_t
get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* --- the message file --------------------------------------------------- */

static int
is_name_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

/* Length of the "Name:" label (up to and including ':'), 0 if not a header line. */
static size_t
header_label(const char *s, size_t n, size_t *namelen)
{
	size_t i = 0;

	while (i < n && is_name_char((unsigned char)s[i]))
		i++;
	if (i == 0)
		return 0;
	*namelen = i;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n || s[i] != ':')
		return 0;
	return i + 1;
}

static void
add_header(struct message *m, const char *line, size_t n, size_t label, size_t namelen)
{
	struct hdr *h;

	m->h = xreallocarray(m->h, m->nh + 1, sizeof *m->h);
	h = &m->h[m->nh++];
	h->name = xstrndup(line, namelen);
	h->label = xstrndup(line, label);
	h->lead = "";
	h->raw = xstrndup(line + label, n - label);
}

/* Appends a continuation line to the last header, joined with "\n". */
static void
continue_header(struct message *m, const char *line, size_t n)
{
	struct hdr *h = &m->h[m->nh - 1];
	size_t old = strlen(h->raw);
	char *raw = xmalloc(old + 1 + n + 1);

	memcpy(raw, h->raw, old);
	raw[old] = '\n';
	memcpy(raw + old + 1, line, n);
	raw[old + 1 + n] = '\0';
	free((char *)h->raw);
	h->raw = raw;
}

/* Splits the message into headers and a CRLF body. */
static void
parse_message(struct message *m, const char *t, size_t len)
{
	size_t pos = 0, body = len;

	while (pos < len) {
		const char *nl = memchr(t + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - t) : len;
		size_t next = nl ? end + 1 : len;
		size_t n, label, namelen;

		if (end > pos && t[end - 1] == '\r')
			end--;
		n = end - pos;
		if (n == 0) {
			body = next;
			break;
		}
		if ((t[pos] == ' ' || t[pos] == '\t') && m->nh > 0) {
			continue_header(m, t + pos, n);
		} else if ((label = header_label(t + pos, n, &namelen)) != 0) {
			add_header(m, t + pos, n, label, namelen);
		} else {
			body = pos; /* not a header: the body starts here */
			break;
		}
		pos = next;
	}
	buf_put_crlf(&m->body, t + body, len - body);
	if (m->body.len > 0 && m->body.p[m->body.len - 1] != '\n')
		buf_put(&m->body, "\r\n", 2);
	buf_reserve(&m->body, 0);
}

static void
load_message(struct message *m, const char *path)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	char *text;
	int fd;

	memset(m, 0, sizeof *m);
	if ((fd = open(path, O_RDONLY)) < 0)
		die("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0)
		die("%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die("%s: not a regular file", path);
	if ((uintmax_t)st.st_size > MTC_MAX_MESSAGE)
		die("%s: larger than %u bytes", path, MTC_MAX_MESSAGE);
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: %s", path, strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	parse_message(m, text, got);
	free(text);
}

static void
free_message(struct message *m)
{
	size_t i;

	for (i = 0; i < m->nh; i++) {
		free((char *)m->h[i].name);
		free((char *)m->h[i].label);
		free((char *)m->h[i].raw);
	}
	free(m->h);
	buf_free(&m->body);
}

/* --- endpoints and connections ------------------------------------------ */

static int
parse_unix(const char *path, struct endpoint *ep)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ep->ss;

	if (*path == '\0' || strlen(path) >= sizeof sun->sun_path)
		return -1;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	ep->len = (socklen_t)sizeof *sun;
	snprintf(ep->desc, sizeof ep->desc, "unix:%s", path);
	return 0;
}

static int
resolve_inet(const char *host, const char *port, int family, struct endpoint *ep)
{
	struct addrinfo hints, *res;
	long p;
	int rc;

	if (parse_long(port, 1, 65535, &p) != 0)
		return -1;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(*host ? host : "localhost", port, &hints, &res)) != 0) {
		fprintf(stderr, "mtc: %s: %s\n", host, gai_strerror(rc));
		return -1;
	}
	if (res->ai_addrlen > sizeof ep->ss) {
		freeaddrinfo(res);
		return -1;
	}
	memcpy(&ep->ss, res->ai_addr, res->ai_addrlen);
	ep->len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(ep->desc, sizeof ep->desc, "inet:%s:%s", *host ? host : "localhost", port);
	return 0;
}

/*
 * unix:/path, local:/path, /path, inet:PORT@HOST (libmilter),
 * inet:HOST:PORT or inet:[V6]:PORT (Postfix), inet:PORT, inet6:...
 */
static int
parse_endpoint(const char *spec, struct endpoint *ep)
{
	char host[256], *at, *colon;
	const char *rest, *port;
	int family;

	memset(ep, 0, sizeof *ep);
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
		return parse_unix(strchr(spec, ':') + 1, ep);
	if (spec[0] == '/')
		return parse_unix(spec, ep);
	if (strncmp(spec, "inet:", 5) == 0)
		family = AF_UNSPEC, rest = spec + 5;
	else if (strncmp(spec, "inet6:", 6) == 0)
		family = AF_INET6, rest = spec + 6;
	else
		return -1;
	if (snprintf(host, sizeof host, "%s", rest) >= (int)sizeof host)
		return -1;
	if ((at = strchr(host, '@')) != NULL) {
		*at = '\0';
		return resolve_inet(at + 1, host, family, ep);
	}
	if (host[0] == '[') {
		if ((colon = strstr(host, "]:")) == NULL)
			return -1;
		*colon = '\0';
		return resolve_inet(host + 1, colon + 2, family, ep);
	}
	if ((colon = strrchr(host, ':')) == NULL) {
		port = host;
		return resolve_inet("127.0.0.1", port, family, ep);
	}
	*colon = '\0';
	return resolve_inet(host, colon + 1, family, ep);
}

/* A command byte fit for an error message. */
static int
printable(int ch)
{
	return ch > 0x20 && ch < 0x7f ? ch : '?';
}

static int conn_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records an error for the session to report; always returns -1. */
static int
conn_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return -1;
}

static void
conn_init(struct conn *c, const struct opts *o)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->timeout_ms = (int64_t)o->timeout * 1000;
	c->verbose = o->verbose;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->wb);
	buf_free(&c->pkt);
}

static int
conn_open(struct conn *c, const struct endpoint *ep)
{
	struct timeval tv = {.tv_sec = (time_t)(c->timeout_ms / 1000), .tv_usec = 0};
	int one = 1, fl;

	if ((c->fd = socket(ep->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return conn_err(c, "socket: %s", strerror(errno));
	/* Linux bounds a blocking connect() by the send timeout. */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	while (connect(c->fd, (const struct sockaddr *)&ep->ss, ep->len) != 0) {
		if (errno != EINTR)
			return conn_err(c, "connect: %s", strerror(errno));
	}
	if (ep->ss.ss_family != AF_UNIX)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if ((fl = fcntl(c->fd, F_GETFL)) < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return conn_err(c, "fcntl: %s", strerror(errno));
	return 0;
}

/* Waits until the socket is ready for ev or the deadline passes. */
static int
conn_wait(struct conn *c, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = {.fd = c->fd, .events = ev, .revents = 0};
		int n;

		if (left <= 0)
			return conn_err(c, "timeout: no answer from the milter within %lld s",
			    (long long)(c->timeout_ms / 1000));
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return conn_err(c, "poll: %s", strerror(errno));
	}
}

static int
conn_flush(struct conn *c)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t off = 0;

	while (off < c->wb.len) {
		ssize_t n = send(c->fd, c->wb.p + off, c->wb.len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn_wait(c, POLLOUT, deadline) != 0)
				return -1;
		} else {
			return conn_err(c, "write: %s", strerror(errno));
		}
	}
	c->wb.len = 0;
	return 0;
}

static void
trace(const struct conn *c, const char *dir, int cmd, size_t len)
{
	if (c->verbose)
		fprintf(stderr, "mtc: %s '%c' %zu bytes\n", dir, printable(cmd), len);
}

/* Queues one packet; output goes out when a reply is awaited or much is queued. */
static int
put_packet(struct conn *c, int cmd, const void *data, size_t len)
{
	unsigned char h[5];
	uint32_t n = (uint32_t)len + 1;

	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
	h[4] = (unsigned char)cmd;
	buf_put(&c->wb, h, sizeof h);
	buf_put(&c->wb, data, len);
	trace(c, ">", cmd, len);
	return c->wb.len >= MTC_FLUSH_AT ? conn_flush(c) : 0;
}

static int
conn_read(struct conn *c, void *dst, size_t n, int64_t deadline)
{
	char *d = dst;

	while (n > 0) {
		size_t k;

		if (c->rpos == c->rlen) {
			ssize_t got = recv(c->fd, c->rb, sizeof c->rb, 0);

			if (got > 0) {
				c->rpos = 0;
				c->rlen = (size_t)got;
			} else if (got == 0) {
				return conn_err(c, "the milter closed the connection");
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (conn_wait(c, POLLIN, deadline) != 0)
					return -1;
			} else if (errno != EINTR) {
				return conn_err(c, "read: %s", strerror(errno));
			}
			continue;
		}
		k = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
		memcpy(d, c->rb + c->rpos, k);
		c->rpos += k;
		d += k;
		n -= k;
	}
	return 0;
}

/* Reads one packet into c->pkt; the command goes to *cmd. */
static int
read_packet(struct conn *c, int *cmd, int64_t deadline)
{
	char hdr[5];
	uint32_t len;

	if (conn_read(c, hdr, sizeof hdr - 1, deadline) != 0)
		return -1;
	len = get_u32(hdr);
	if (len == 0)
		return conn_err(c, "protocol error: empty packet");
	if (len > MTC_MAX_PACKET)
		return conn_err(c, "protocol error: packet of %lu bytes exceeds the limit",
		    (unsigned long)len);
	if (conn_read(c, hdr + 4, 1, deadline) != 0)
		return -1;
	*cmd = (unsigned char)hdr[4];
	c->pkt.len = 0;
	buf_reserve(&c->pkt, len - 1);
	if (conn_read(c, c->pkt.p, len - 1, deadline) != 0)
		return -1;
	c->pkt.len = len - 1;
	c->pkt.p[c->pkt.len] = '\0';
	trace(c, "<", *cmd, c->pkt.len);
	return 0;
}

/* --- option negotiation ------------------------------------------------- */

/* Skips the optional macro lists (SMFIR_SETSYMLIST) after the option words. */
static int
check_symlists(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		const char *nul;

		if (n < 5 || (nul = memchr(p + 4, '\0', n - 4)) == NULL)
			return conn_err(
			    c, "protocol error: malformed macro list in negotiation");
		if (c->verbose)
			fprintf(stderr, "mtc: milter wants macros for stage %lu: %s\n",
			    (unsigned long)get_u32(p), p + 4);
		n -= (size_t)(nul + 1 - p);
		p = nul + 1;
	}
	return 0;
}

static int
negotiate(struct conn *c, int postfix)
{
	struct buf b = {0};
	int cmd, rc;

	buf_put_u32(&b, SMFI_PROT_VERSION);
	buf_put_u32(&b, MTC_ACTIONS);
	buf_put_u32(&b, postfix ? MTC_PROTO_POSTFIX : MTC_PROTO_NOSEND);
	rc = put_packet(c, SMFIC_OPTNEG, b.p, b.len);
	buf_free(&b);
	if (rc != 0 || conn_flush(c) != 0 ||
	    read_packet(c, &cmd, now_ms() + c->timeout_ms) != 0)
		return -1;
	if (cmd != SMFIC_OPTNEG || c->pkt.len < 12)
		return conn_err(c, "protocol error: bad negotiation reply '%c' (%zu bytes)",
		    printable(cmd), c->pkt.len);
	c->version = get_u32(c->pkt.p);
	c->actions = get_u32(c->pkt.p + 4);
	c->pflags = get_u32(c->pkt.p + 8);
	if (c->version < SMFI_PROT_VERSION_MIN || c->version > SMFI_PROT_VERSION)
		return conn_err(c, "protocol error: milter protocol version %lu",
		    (unsigned long)c->version);
	if ((c->actions & ~MTC_ACTIONS) != 0)
		return conn_err(c, "protocol error: milter wants actions 0x%lx, offered 0x%lx",
		    (unsigned long)c->actions, (unsigned long)MTC_ACTIONS);
	if (c->verbose)
		fprintf(stderr, "mtc: negotiated version=%lu actions=0x%lx protocol=0x%lx\n",
		    (unsigned long)c->version, (unsigned long)c->actions,
		    (unsigned long)c->pflags);
	return check_symlists(c, c->pkt.p + 12, c->pkt.len - 12);
}

/* --- results ------------------------------------------------------------ */

static void
result_reset(struct result *r)
{
	size_t i;

	free(r->text);
	for (i = 0; i < r->ned; i++) {
		free(r->ed[i].name);
		free(r->ed[i].value);
	}
	free(r->ed);
	buf_free(&r->lines);
	buf_free(&r->newbody);
	memset(r, 0, sizeof *r);
}

/* Stores a verdict; code and text only come with SMFIR_REPLYCODE. */
static void
set_verdict(struct result *r, const struct reply *rep, const char *stage)
{
	free(r->text);
	r->text = NULL;
	r->code[0] = '\0';
	r->stage = stage;
	switch (rep->cmd) {
	case SMFIR_ACCEPT:
		r->verdict = V_ACCEPT;
		break;
	case SMFIR_REJECT:
		r->verdict = V_REJECT;
		break;
	case SMFIR_TEMPFAIL:
		r->verdict = V_TEMPFAIL;
		break;
	case SMFIR_DISCARD:
		r->verdict = V_DISCARD;
		break;
	case SMFIR_SHUTDOWN:
		r->verdict = V_SHUTDOWN;
		break;
	case SMFIR_CONN_FAIL:
		r->verdict = V_CONNFAIL;
		break;
	case SMFIR_REPLYCODE:
		r->verdict = V_REPLYCODE;
		memcpy(r->code, rep->text, 3);
		r->code[3] = '\0';
		r->text = xstrdup(rep->text[3] ? rep->text + 4 : "");
		break;
	default:
		r->verdict = V_CONTINUE;
		break;
	}
}

/* "verdict=..." without newline, as printed for the message and for rejected recipients. */
static void
format_verdict(struct buf *b, enum verdict v, const char *code, const char *text)
{
	buf_puts(b, "verdict=");
	buf_puts(b, verdict_name[v]);
	if (v == V_REPLYCODE) {
		buf_puts(b, " code=");
		buf_puts(b, code);
		buf_puts(b, " text=");
		buf_put_escaped_str(b, text);
	}
}

/* --- modification requests ---------------------------------------------- */

static int
take_str(const char **p, size_t *left, const char **out)
{
	const char *nul = memchr(*p, '\0', *left);

	if (nul == NULL)
		return -1;
	*out = *p;
	*left -= (size_t)(nul + 1 - *p);
	*p = nul + 1;
	return 0;
}

static int
take_u32(const char **p, size_t *left, uint32_t *out)
{
	if (*left < 4)
		return -1;
	*out = get_u32(*p);
	*p += 4;
	*left -= 4;
	return 0;
}

static uint32_t
action_flag(int cmd)
{
	switch (cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		return SMFIF_ADDHDRS;
	case SMFIR_CHGHEADER:
		return SMFIF_CHGHDRS;
	case SMFIR_REPLBODY:
		return SMFIF_CHGBODY;
	case SMFIR_ADDRCPT:
		return SMFIF_ADDRCPT;
	case SMFIR_DELRCPT:
		return SMFIF_DELRCPT;
	case SMFIR_ADDRCPT_PAR:
		return SMFIF_ADDRCPT_PAR;
	case SMFIR_CHGFROM:
		return SMFIF_CHGFROM;
	case SMFIR_QUARANTINE:
		return SMFIF_QUARANTINE;
	default:
		return 0;
	}
}

static void
add_edit(struct result *r, int cmd, uint32_t index, const char *name, const char *value)
{
	struct edit *e;

	r->ed = xreallocarray(r->ed, r->ned + 1, sizeof *r->ed);
	e = &r->ed[r->ned++];
	e->cmd = cmd;
	e->index = index;
	e->name = xstrdup(name);
	e->value = xstrdup(value);
}

static void
put_field(struct buf *b, const char *key, const char *value)
{
	buf_putc(b, ' ');
	buf_puts(b, key);
	buf_putc(b, '=');
	buf_put_escaped_str(b, value);
}

/* Header edits: SMFIR_ADDHEADER, SMFIR_INSHEADER, SMFIR_CHGHEADER. */
static int
header_edit(struct conn *c, int cmd, const char *p, size_t n, struct result *r, int detail)
{
	const char *name, *value;
	uint32_t index = 0;

	if ((cmd != SMFIR_ADDHEADER && take_u32(&p, &n, &index) != 0) ||
	    take_str(&p, &n, &name) != 0 || take_str(&p, &n, &value) != 0 || n != 0 ||
	    *name == '\0')
		return conn_err(
		    c, "protocol error: malformed header request '%c'", printable(cmd));
	if (!detail)
		return 0;
	buf_puts(&r->lines,
	    cmd == SMFIR_ADDHEADER       ? "action=addheader"
	        : cmd == SMFIR_INSHEADER ? "action=insheader"
	                                 : "action=chgheader");
	if (cmd != SMFIR_ADDHEADER)
		buf_printf(&r->lines, " index=%lu", (unsigned long)index);
	put_field(&r->lines, "name", name);
	put_field(&r->lines, "value", value);
	buf_putc(&r->lines, '\n');
	add_edit(r, cmd, index, name, value);
	return 0;
}

/* Envelope edits and quarantine: one or two strings each. */
static int
envelope_edit(struct conn *c, int cmd, const char *p, size_t n, struct result *r, int detail)
{
	const char *a, *b = "";
	int two = cmd == SMFIR_ADDRCPT_PAR || cmd == SMFIR_CHGFROM;

	if (take_str(&p, &n, &a) != 0 || (two && n > 0 && take_str(&p, &n, &b) != 0) || n != 0)
		return conn_err(c, "protocol error: malformed request '%c'", printable(cmd));
	if (!detail)
		return 0;
	switch (cmd) {
	case SMFIR_ADDRCPT:
		buf_puts(&r->lines, "action=addrcpt");
		put_field(&r->lines, "rcpt", a);
		break;
	case SMFIR_DELRCPT:
		buf_puts(&r->lines, "action=delrcpt");
		put_field(&r->lines, "rcpt", a);
		break;
	case SMFIR_ADDRCPT_PAR:
		buf_puts(&r->lines, "action=addrcpt_par");
		put_field(&r->lines, "rcpt", a);
		put_field(&r->lines, "args", b);
		break;
	case SMFIR_CHGFROM:
		buf_puts(&r->lines, "action=chgfrom");
		put_field(&r->lines, "from", a);
		put_field(&r->lines, "args", b);
		break;
	default:
		buf_puts(&r->lines, "action=quarantine");
		put_field(&r->lines, "reason", a);
		break;
	}
	buf_putc(&r->lines, '\n');
	return 0;
}

/* Handles one modification request; only valid in reply to end of body. */
static int
modification(struct conn *c, int event, int cmd, struct result *r, int detail)
{
	uint32_t need = action_flag(cmd);
	const char *p = c->pkt.p;
	size_t n = c->pkt.len;

	if (need == 0 || (event != SMFIC_BODYEOB && cmd != SMFIR_QUARANTINE))
		return conn_err(
		    c, "protocol error: unexpected reply '%c' to '%c'", printable(cmd), event);
	if ((c->actions & need) == 0)
		return conn_err(c,
		    "protocol error: request '%c' without negotiated action 0x%lx",
		    printable(cmd), (unsigned long)need);
	switch (cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		return header_edit(c, cmd, p, n, r, detail);
	case SMFIR_REPLBODY:
		if (detail) {
			buf_printf(&r->lines, "action=replbody length=%zu\n", n);
			buf_put(&r->newbody, p, n);
			r->body_replaced = 1;
		}
		return 0;
	default:
		return envelope_edit(c, cmd, p, n, r, detail);
	}
}

/* --- events ------------------------------------------------------------- */

static int
valid_replycode(const char *s, size_t n)
{
	return n >= 3 && strlen(s) == n && (s[0] == '4' || s[0] == '5') && s[1] >= '0' &&
	    s[1] <= '9' && s[2] >= '0' && s[2] <= '9' && (n == 3 || s[3] == ' ' || s[3] == '-');
}

/* Reads replies to event until a decision arrives. */
static int
await_reply(struct conn *c, int event, struct result *r, int detail, struct reply *rep)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	int cmd;

	for (;;) {
		if (read_packet(c, &cmd, deadline) != 0)
			return -1;
		switch (cmd) {
		case SMFIR_PROGRESS:
			deadline = now_ms() + c->timeout_ms;
			continue;
		case SMFIR_CONTINUE:
		case SMFIR_ACCEPT:
		case SMFIR_REJECT:
		case SMFIR_TEMPFAIL:
		case SMFIR_DISCARD:
		case SMFIR_SKIP:
		case SMFIR_SHUTDOWN:
		case SMFIR_CONN_FAIL:
			if (c->pkt.len != 0)
				return conn_err(c,
				    "protocol error: reply '%c' with %zu data bytes", cmd,
				    c->pkt.len);
			rep->cmd = cmd;
			rep->text = NULL;
			return 0;
		case SMFIR_REPLYCODE:
			if (c->pkt.len == 0 || !valid_replycode(c->pkt.p, c->pkt.len - 1))
				return conn_err(c, "protocol error: malformed reply code");
			rep->cmd = cmd;
			rep->text = c->pkt.p;
			return 0;
		default:
			if (modification(c, event, cmd, r, detail) != 0)
				return -1;
			continue;
		}
	}
}

/* Sends "D" with the macros for event; names longer than a letter get braces. */
static int
put_macros(struct conn *c, int event, const struct macro *m, size_t n)
{
	struct buf b = {0};
	size_t i;
	int rc;

	buf_putc(&b, event);
	for (i = 0; i < n; i++) {
		size_t len = strlen(m[i].name);

		if (len > 1 && m[i].name[0] != '{') {
			buf_putc(&b, '{');
			buf_puts(&b, m[i].name);
			buf_putz(&b, "}");
		} else {
			buf_putz(&b, m[i].name);
		}
		buf_putz(&b, m[i].value);
	}
	rc = put_packet(c, SMFIC_MACRO, b.p, b.len);
	buf_free(&b);
	return rc;
}

/*
 * One protocol step: sends the event unless the milter opted out of it
 * (noflag) and waits for the reply unless the milter opted out of that
 * (nrflag).  A step without a reply counts as SMFIR_CONTINUE.
 */
static int
event(struct conn *c, int cmd, const void *data, size_t len, uint32_t noflag, uint32_t nrflag,
    struct result *r, int detail, struct reply *rep)
{
	rep->cmd = SMFIR_CONTINUE;
	rep->text = NULL;
	if ((c->pflags & noflag) != 0)
		return 0;
	if (put_packet(c, cmd, data, len) != 0)
		return -1;
	if ((c->pflags & nrflag) != 0)
		return 0;
	if (conn_flush(c) != 0)
		return -1;
	return await_reply(c, cmd, r, detail, rep);
}

static int
goes_on(const struct reply *rep)
{
	return rep->cmd == SMFIR_CONTINUE || rep->cmd == SMFIR_SKIP;
}

/* --- one message -------------------------------------------------------- */

static void
strip_angles(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '<' && in[n - 1] == '>')
		snprintf(out, outsz, "%.*s", (int)(n - 2), in + 1);
	else
		snprintf(out, outsz, "%s", in);
}

static int
mail_stage(
    struct conn *c, const struct job *j, const char *qid, struct result *r, struct reply *rep)
{
	const struct opts *o = j->o;
	struct macro *m = xcalloc(4 + o->nextra, sizeof *m);
	char addr[1024], arg[1030];
	size_t n = 0, i, k;
	int rc;

	strip_angles(o->from, addr, sizeof addr);
	m[n++] = (struct macro){"i", qid};
	if (o->auth != NULL) {
		m[n++] = (struct macro){"{auth_type}", "PLAIN"};
		m[n++] = (struct macro){"{auth_authen}", o->auth};
	}
	m[n++] = (struct macro){"{mail_addr}", addr};
	for (i = 0; i < o->nextra; i++) { /* -m overrides a default of the same name */
		for (k = 0; k < n && strcmp(m[k].name, o->extra[i].name) != 0; k++)
			;
		m[k == n ? n++ : k] = o->extra[i];
	}
	rc = put_macros(c, SMFIC_MAIL, m, n);
	free(m);
	snprintf(arg, sizeof arg, "<%s>", addr);
	if (rc != 0)
		return -1;
	return event(c, SMFIC_MAIL, arg, strlen(arg) + 1, SMFIP_NOMAIL, SMFIP_NR_MAIL, r,
	    j->detail, rep);
}

/* Sends the recipients; returns how many the milter did not reject, -1 on error. */
static int
rcpt_stage(
    struct conn *c, const struct job *j, const char *qid, struct result *r, struct reply *last)
{
	const struct opts *o = j->o;
	char addr[1024], arg[1030];
	struct reply rep;
	size_t i;
	int ok = 0, skip = 0;

	for (i = 0; i < o->nrcpt; i++) {
		struct macro m[2] = {{"i", qid}, {"{rcpt_addr}", addr}};

		if (skip) { /* after SMFIR_SKIP: further recipients go unreported */
			ok++;
			continue;
		}
		strip_angles(o->rcpt[i], addr, sizeof addr);
		snprintf(arg, sizeof arg, "<%s>", addr);
		if (put_macros(c, SMFIC_RCPT, m, 2) != 0 ||
		    event(c, SMFIC_RCPT, arg, strlen(arg) + 1, SMFIP_NORCPT, SMFIP_NR_RCPT, r,
		        j->detail, &rep) != 0)
			return -1;
		if (goes_on(&rep)) {
			skip = rep.cmd == SMFIR_SKIP;
			ok++;
			continue;
		}
		if (rep.cmd != SMFIR_REJECT && rep.cmd != SMFIR_TEMPFAIL &&
		    rep.cmd != SMFIR_REPLYCODE) {
			*last = rep; /* accept, discard...: decides the whole message */
			return -2;
		}
		set_verdict(r, &rep, "rcpt");
		if (j->detail) {
			buf_puts(&r->lines, "rcpt=");
			buf_put_escaped_str(&r->lines, addr);
			buf_putc(&r->lines, ' ');
			format_verdict(&r->lines, r->verdict, r->code, r->text ? r->text : "");
			buf_putc(&r->lines, '\n');
		}
	}
	return ok;
}

static int
header_stage(struct conn *c, const struct job *j, struct result *r, struct reply *rep)
{
	const struct message *msg = j->msg;
	struct buf b = {0};
	size_t i;
	int rc = 0;

	rep->cmd = SMFIR_CONTINUE;
	for (i = 0; i < msg->nh && rc == 0; i++) {
		const char *v = msg->h[i].raw;

		/* Like Postfix: drop one space after the colon unless asked not to. */
		if ((c->pflags & SMFIP_HDR_LEADSPC) == 0 && *v == ' ')
			v++;
		b.len = 0;
		buf_putz(&b, msg->h[i].name);
		buf_putz(&b, v);
		rc = event(
		    c, SMFIC_HEADER, b.p, b.len, SMFIP_NOHDRS, SMFIP_NR_HDR, r, j->detail, rep);
		if (rc == 0 && rep->cmd == SMFIR_SKIP) { /* no more headers, please */
			rep->cmd = SMFIR_CONTINUE;
			break;
		}
		if (rc == 0 && !goes_on(rep))
			break;
	}
	buf_free(&b);
	return rc;
}

static int
body_stage(struct conn *c, const struct job *j, struct result *r, struct reply *rep)
{
	const struct buf *body = &j->msg->body;
	size_t off;

	rep->cmd = SMFIR_CONTINUE;
	for (off = 0; off < body->len; off += MILTER_CHUNK_SIZE) {
		size_t n =
		    body->len - off < MILTER_CHUNK_SIZE ? body->len - off : MILTER_CHUNK_SIZE;

		if (event(c, SMFIC_BODY, body->p + off, n, SMFIP_NOBODY, SMFIP_NR_BODY, r,
		        j->detail, rep) != 0)
			return -1;
		if (rep->cmd == SMFIR_SKIP) {
			rep->cmd = SMFIR_CONTINUE;
			break;
		}
		if (!goes_on(rep))
			break;
	}
	return 0;
}

/*
 * Ends a transaction that stopped before end of body: ABORT as Postfix
 * does, except after shutdown or connection failure, which end the
 * session.  Returns 0, 2 when the session is over, -1 on errors.
 */
static int
stop_txn(struct conn *c, struct result *r, const struct reply *rep, const char *stage)
{
	set_verdict(r, rep, stage);
	if (r->verdict == V_SHUTDOWN || r->verdict == V_CONNFAIL)
		return 2;
	if (put_packet(c, SMFIC_ABORT, NULL, 0) != 0 || conn_flush(c) != 0)
		return -1;
	return 0;
}

/* DATA, headers, end of headers and body; returns 1 when end of body is due. */
static int
content_stage(struct conn *c, const struct job *j, const char *qid, struct result *r)
{
	struct macro m = {"i", qid};
	struct reply rep;

	if (put_macros(c, SMFIC_DATA, &m, 1) != 0 ||
	    event(c, SMFIC_DATA, NULL, 0, SMFIP_NODATA, SMFIP_NR_DATA, r, j->detail, &rep) != 0)
		return -1;
	if (!goes_on(&rep))
		return stop_txn(c, r, &rep, "data");
	if (header_stage(c, j, r, &rep) != 0)
		return -1;
	if (!goes_on(&rep))
		return stop_txn(c, r, &rep, "header");
	if (put_macros(c, SMFIC_EOH, &m, 1) != 0 ||
	    event(c, SMFIC_EOH, NULL, 0, SMFIP_NOEOH, SMFIP_NR_EOH, r, j->detail, &rep) != 0)
		return -1;
	if (!goes_on(&rep))
		return stop_txn(c, r, &rep, "eoh");
	if (body_stage(c, j, r, &rep) != 0)
		return -1;
	if (!goes_on(&rep))
		return stop_txn(c, r, &rep, "body");
	return 1;
}

/*
 * One message: MAIL through end of body.  Returns 0 when done, 2 when the
 * milter ended the session, -1 on errors.
 */
static int
transaction(struct conn *c, const struct job *j, long idx, struct result *r)
{
	char qid[32];
	struct macro m = {"i", qid};
	struct reply rep;
	int rc;

	if (j->o->queueid != NULL)
		snprintf(qid, sizeof qid, "%s", j->o->queueid);
	else
		snprintf(qid, sizeof qid, "%05lX%06lX", j->qid_base & 0xFFFFFUL,
		    (unsigned long)(idx + 1) & 0xFFFFFFUL);
	if (mail_stage(c, j, qid, r, &rep) != 0)
		return -1;
	if (!goes_on(&rep))
		return stop_txn(c, r, &rep, "mail");
	if ((rc = rcpt_stage(c, j, qid, r, &rep)) == -1)
		return -1;
	if (rc == -2) /* accept, discard... for the whole message */
		return stop_txn(c, r, &rep, "rcpt");
	if (rc == 0) { /* every recipient rejected: verdict of the last one */
		if (put_packet(c, SMFIC_ABORT, NULL, 0) != 0 || conn_flush(c) != 0)
			return -1;
		return 0;
	}
	if ((rc = content_stage(c, j, qid, r)) != 1)
		return rc;
	if (put_macros(c, SMFIC_BODYEOB, &m, 1) != 0 ||
	    event(c, SMFIC_BODYEOB, NULL, 0, 0, 0, r, j->detail, &rep) != 0)
		return -1;
	if (rep.cmd == SMFIR_SKIP)
		return conn_err(c, "protocol error: SMFIR_SKIP at end of body");
	set_verdict(r, &rep, "eob");
	return r->verdict == V_SHUTDOWN || r->verdict == V_CONNFAIL ? 2 : 0;
}

/* --- sessions ----------------------------------------------------------- */

static void
record(struct job *j, long idx, const struct result *r, int ok)
{
	j->lat[idx] = r->ns;
	j->verdict[idx] = (unsigned char)(ok ? r->verdict : V_ERROR);
}

static void
report_error(struct job *j, const struct conn *c)
{
	int n = atomic_fetch_add(&j->errors_shown, 1);

	if (j->detail || n < MTC_MAX_ERRORS)
		fprintf(stderr, "mtc: %s: %s\n", j->ep.desc, c->err);
	else if (n == MTC_MAX_ERRORS)
		fprintf(stderr, "mtc: further errors not shown\n");
}

/* Connect and HELO; returns 1 when messages may follow, 0 after a connection verdict. */
static int
open_session(struct conn *c, const struct job *j, long idx, struct result *r)
{
	const char *addr = j->o->client;
	int v6 = strchr(addr, ':') != NULL;
	const char *host =
	    strcmp(addr, "127.0.0.1") == 0 || strcmp(addr, "::1") == 0 ? "localhost" : NULL;
	char hname[128], under[200];
	struct macro m[3] = {
	    {"j", "localhost.localdomain"}, {"{daemon_name}", "mtc"}, {"_", under}};
	struct buf b = {0};
	struct reply rep;
	uint16_t port = (uint16_t)(10000 + idx % 50000);
	int rc;

	if (host == NULL)
		snprintf(hname, sizeof hname, "[%s]", addr);
	else
		snprintf(hname, sizeof hname, "%s", host);
	snprintf(under, sizeof under, "%s [%s]", hname, addr);
	if (conn_open(c, &j->ep) != 0 || negotiate(c, j->o->postfix) != 0)
		return -1;
	buf_putz(&b, hname);
	buf_putc(&b, v6 ? '6' : '4');
	buf_putc(&b, port >> 8);
	buf_putc(&b, port & 0xff);
	buf_putz(&b, addr);
	rc = put_macros(c, SMFIC_CONNECT, m, 3);
	if (rc == 0)
		rc = event(c, SMFIC_CONNECT, b.p, b.len, SMFIP_NOCONNECT, SMFIP_NR_CONN, r,
		    j->detail, &rep);
	buf_free(&b);
	if (rc == 0 && goes_on(&rep))
		rc = event(c, SMFIC_HELO, "mtc.localdomain", sizeof "mtc.localdomain",
		    SMFIP_NOHELO, SMFIP_NR_HELO, r, j->detail, &rep);
	if (rc != 0)
		return -1;
	if (goes_on(&rep))
		return 1;
	set_verdict(r, &rep, "connect");
	return 0;
}

/*
 * One milter connection carrying messages first .. first+n-1, one after
 * the other as in one SMTP session.  Latency runs from connect (first
 * message) or MAIL (later ones) to the final reply.
 */
static void
session(struct job *j, long first, long n, struct result *r)
{
	struct conn c;
	int64_t t0 = now_ns();
	long i = 0;
	int rc;

	conn_init(&c, j->o);
	result_reset(r);
	rc = open_session(&c, j, first, r);
	for (; rc == 1 && i < n; i++) {
		if (i > 0) {
			result_reset(r);
			t0 = now_ns();
		}
		r->pflags = c.pflags;
		if ((rc = transaction(&c, j, first + i, r)) < 0)
			break;
		r->ns = now_ns() - t0;
		record(j, first + i, r, 1);
		rc = rc == 2 ? 2 : 1;
	}
	if (rc < 0) {
		report_error(j, &c);
		r->ns = now_ns() - t0;
		for (; i < n; i++)
			record(j, first + i, r, 0);
	} else {
		/* A verdict for the connection holds for the messages left. */
		r->pflags = c.pflags;
		if (i == 0)
			r->ns = now_ns() - t0;
		for (; i < n; i++)
			record(j, first + i, r, 1);
		if (rc != 2 && put_packet(&c, SMFIC_QUIT, NULL, 0) == 0)
			(void)conn_flush(&c); /* best effort: the milter may be gone */
	}
	conn_close(&c);
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	struct result r;
	long k = j->o->per_conn;

	memset(&r, 0, sizeof r);
	for (;;) {
		long first = atomic_fetch_add(&j->next, k);

		if (first >= j->o->count)
			break;
		session(j, first, first + k > j->o->count ? j->o->count - first : k, &r);
	}
	result_reset(&r);
	return NULL;
}

/* --- output ------------------------------------------------------------- */

static size_t
find_header(const struct hdr *h, size_t nh, const char *name, uint32_t index)
{
	size_t i;

	for (i = 0; i < nh; i++)
		if (strcasecmp(h[i].name, name) == 0 && --index == 0)
			return i;
	return nh;
}

/* Applies one header edit the way libmilter documents it. */
static void
apply_edit(struct hdr **hp, size_t *nhp, const struct edit *e, const char *lead)
{
	struct hdr nh = {e->name, NULL, lead, e->value};
	size_t n = *nhp, at;

	if (e->cmd == SMFIR_ADDHEADER) {
		at = n;
	} else if (e->cmd == SMFIR_INSHEADER) {
		at = e->index < n ? e->index : n;
	} else {
		at = find_header(*hp, n, e->name, e->index ? e->index : 1);
		if (at < n && *e->value == '\0') { /* delete */
			memmove(*hp + at, *hp + at + 1, (n - at - 1) * sizeof **hp);
			(*nhp)--;
			return;
		}
		if (at < n) {
			(*hp)[at] = nh;
			return;
		}
		if (*e->value == '\0')
			return;
	}
	*hp = xreallocarray(*hp, n + 1, sizeof **hp);
	memmove(*hp + at + 1, *hp + at, (n - at) * sizeof **hp);
	(*hp)[at] = nh;
	(*nhp)++;
}

/* Writes the message with the milter's edits applied, CRLF throughout. */
static int
write_output(const struct job *j, const struct result *r, const char *path)
{
	const struct message *msg = j->msg;
	const char *lead = (r->pflags & SMFIP_HDR_LEADSPC) ? "" : " ";
	struct hdr *h = xreallocarray(NULL, msg->nh, sizeof *h);
	size_t nh = msg->nh, i;
	struct buf out = {0};
	FILE *fp;
	int rc = 0;

	if (nh > 0)
		memcpy(h, msg->h, nh * sizeof *h);
	for (i = 0; i < r->ned; i++)
		apply_edit(&h, &nh, &r->ed[i], lead);
	for (i = 0; i < nh; i++) {
		if (h[i].label != NULL) {
			buf_puts(&out, h[i].label);
		} else {
			buf_puts(&out, h[i].name);
			buf_putc(&out, ':');
		}
		buf_puts(&out, h[i].lead);
		buf_put_crlf(&out, h[i].raw, strlen(h[i].raw));
		buf_put(&out, "\r\n", 2);
	}
	buf_put(&out, "\r\n", 2);
	if (r->body_replaced)
		buf_put_crlf(&out, r->newbody.p ? r->newbody.p : "", r->newbody.len);
	else
		buf_put(&out, msg->body.p, msg->body.len);
	if ((fp = fopen(path, "wb")) == NULL || fwrite(out.p, 1, out.len, fp) != out.len ||
	    fclose(fp) != 0) {
		fprintf(stderr, "mtc: %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	free(h);
	buf_free(&out);
	return rc;
}

static void
print_result(const struct result *r)
{
	struct buf b = {0};

	format_verdict(&b, r->verdict, r->code, r->text ? r->text : "");
	buf_printf(&b, "\nstage=%s\n", r->stage ? r->stage : "eob");
	if (r->lines.len > 0)
		buf_put(&b, r->lines.p, r->lines.len);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in milliseconds. */
static double
percentile(const int64_t *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1e6;
}

static void
print_stats(const struct job *j, double seconds, long threads)
{
	long count = j->o->count, per[V_COUNT + 1] = {0}, i;
	int64_t *ok = xreallocarray(NULL, (size_t)count, sizeof *ok);
	size_t n = 0;
	int v;

	for (i = 0; i < count; i++) {
		per[j->verdict[i]]++;
		if (j->verdict[i] != V_ERROR)
			ok[n++] = j->lat[i];
	}
	qsort(ok, n, sizeof *ok, cmp_i64);
	printf("messages=%ld ok=%zu errors=%ld connections=%ld seconds=%.3f msgs_per_s=%.1f\n",
	    count, n, per[V_ERROR], threads, seconds, seconds > 0 ? (double)n / seconds : 0.0);
	printf("latency_ms p50=%.3f p90=%.3f p99=%.3f max=%.3f\n", percentile(ok, n, 0.50),
	    percentile(ok, n, 0.90), percentile(ok, n, 0.99), percentile(ok, n, 1.0));
	printf("verdicts");
	for (v = 0; v < V_COUNT; v++)
		printf(" %s=%ld", verdict_name[v], per[v]);
	printf("\n");
	free(ok);
}

/* --- command line ------------------------------------------------------- */

static void usage(const char *why) __attribute__((noreturn));

static void
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "mtc: %s\n", why);
	fprintf(stderr,
	    "usage: mtc -s SOCKET [-m name=value]... [-a AUTHLOGIN] [-c CLIENTADDR]\n"
	    "           [-q QUEUEID] [-f MAILFROM] -r RCPT [-r RCPT]... [-o OUT.eml]\n"
	    "           [-n COUNT] [-j CONNECTIONS] [-k MSGS_PER_CONNECTION] [-t SECONDS]\n"
	    "           [-S] [-P] [-v] MESSAGE.eml\n"
	    "SOCKET: unix:/path, inet:PORT@HOST or inet:HOST:PORT\n");
	exit(2);
}

static void
add_extra_macro(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg)
		usage("-m wants name=value");
	o->extra = xreallocarray(o->extra, o->nextra + 1, sizeof *o->extra);
	/* Normalise the name to the braced form used on the wire. */
	if (eq - arg > 1 && arg[0] != '{') {
		size_t n = (size_t)(eq - arg);
		char *name = xmalloc(n + 3);

		name[0] = '{';
		memcpy(name + 1, arg, n);
		memcpy(name + 1 + n, "}", 2);
		o->extra[o->nextra].name = name;
	} else {
		o->extra[o->nextra].name = xstrndup(arg, (size_t)(eq - arg));
	}
	o->extra[o->nextra++].value = eq + 1;
}

static long
number_arg(const char *s, long min, long max, const char *what)
{
	long v;

	if (parse_long(s, min, max, &v) != 0) {
		char msg[128];

		snprintf(
		    msg, sizeof msg, "%s must be a number from %ld to %ld", what, min, max);
		usage(msg);
	}
	return v;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	unsigned char a4[sizeof(struct in6_addr)];
	int ch;

	memset(o, 0, sizeof *o);
	o->client = "127.0.0.1";
	o->from = "";
	o->count = 1;
	o->conns = 1;
	o->per_conn = 1;
	o->timeout = 60;
	o->rcpt = xcalloc((size_t)argc, sizeof *o->rcpt);
	while ((ch = getopt(argc, argv, "s:m:a:c:q:f:r:o:n:j:k:t:SPvh")) != -1) {
		switch (ch) {
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			add_extra_macro(o, optarg);
			break;
		case 'a':
			o->auth = optarg;
			break;
		case 'c':
			o->client = optarg;
			break;
		case 'q':
			o->queueid = optarg;
			break;
		case 'f':
			o->from = optarg;
			break;
		case 'r':
			o->rcpt[o->nrcpt++] = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'n':
			o->count = number_arg(optarg, 1, 100000000, "-n");
			break;
		case 'j':
			o->conns = number_arg(optarg, 1, 1024, "-j");
			break;
		case 'k':
			o->per_conn = number_arg(optarg, 1, 1000000, "-k");
			break;
		case 't':
			o->timeout = (int)number_arg(optarg, 1, 86400, "-t");
			break;
		case 'S':
			o->stats = 1;
			break;
		case 'P':
			o->postfix = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		default:
			usage(NULL);
		}
	}
	if (optind != argc - 1)
		usage("exactly one message file expected");
	o->file = argv[optind];
	if (o->socket == NULL)
		usage("-s SOCKET is required");
	if (o->nrcpt == 0)
		usage("at least one -r RCPT is required");
	if (inet_pton(AF_INET, o->client, a4) != 1 && inet_pton(AF_INET6, o->client, a4) != 1)
		usage("-c wants an IPv4 or IPv6 address");
	if (strlen(o->from) > 1000 || (o->queueid && strlen(o->queueid) > 30))
		usage("-f or -q argument too long");
	for (ch = 0; (size_t)ch < o->nrcpt; ch++)
		if (strlen(o->rcpt[ch]) > 1000)
			usage("-r argument too long");
}

static void
free_opts(struct opts *o)
{
	size_t i;

	for (i = 0; i < o->nextra; i++)
		free((char *)o->extra[i].name);
	free(o->extra);
	free(o->rcpt);
}

/* --- main --------------------------------------------------------------- */

static int
run_single(struct job *j)
{
	struct result r;
	int rc = 0;

	memset(&r, 0, sizeof r);
	session(j, 0, 1, &r);
	if (j->verdict[0] == V_ERROR) {
		rc = 1;
	} else {
		print_result(&r);
		if (j->o->out != NULL && write_output(j, &r, j->o->out) != 0)
			rc = 1;
	}
	result_reset(&r);
	return rc;
}

static int
run_load(struct job *j, long threads)
{
	pthread_t *tid = xcalloc((size_t)threads, sizeof *tid);
	int64_t t0 = now_ns();
	long i;
	int rc = 0;

	for (i = 0; i < threads; i++)
		if ((errno = pthread_create(&tid[i], NULL, worker, j)) != 0)
			die("pthread_create: %s", strerror(errno));
	for (i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	if (j->o->stats)
		print_stats(j, (double)(now_ns() - t0) / 1e9, threads);
	for (i = 0; i < j->o->count; i++)
		if (j->verdict[i] == V_ERROR)
			rc = 1;
	free(tid);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct message msg;
	struct job *j;
	long threads;
	int rc;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	j = xcalloc(1, sizeof *j);
	if (parse_endpoint(o.socket, &j->ep) != 0)
		usage("bad -s SOCKET (unix:/path, inet:PORT@HOST or inet:HOST:PORT)");
	load_message(&msg, o.file);
	j->o = &o;
	j->msg = &msg;
	j->detail = o.count == 1;
	j->qid_base = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 8);
	atomic_init(&j->next, 0);
	atomic_init(&j->errors_shown, 0);
	j->lat = xcalloc((size_t)o.count, sizeof *j->lat);
	j->verdict = xcalloc((size_t)o.count, 1);
	threads = o.conns < o.count ? o.conns : o.count;
	if (j->detail) {
		int64_t t0 = now_ns();

		rc = run_single(j);
		if (rc == 0 && o.stats)
			print_stats(j, (double)(now_ns() - t0) / 1e9, 1);
	} else {
		rc = run_load(j, threads);
	}
	free(j->lat);
	free(j->verdict);
	free(j);
	free_message(&msg);
	free_opts(&o);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
