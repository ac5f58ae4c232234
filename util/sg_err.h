/*
 * sg_err.h - the one status convention of Segel.
 *
 * Every function that can fail returns 0 or a negative SG_ERR_* code.
 * sg_strerror() turns a code into text.  A system error keeps its errno
 * (the caller reads errno right after the call); a crypto error leaves its
 * details on the OpenSSL error queue.  errno is never the return channel.
 */
#ifndef SG_ERR_H
#define SG_ERR_H

#define SG_OK 0
#define SG_ERR_INTERNAL -1 /* our own bug or an impossible state */
#define SG_ERR_NOMEM -2 /* allocation failed */
#define SG_ERR_SYSTEM -3 /* system call failed; see errno */
#define SG_ERR_CRYPTO -4 /* OpenSSL failed; see its error queue */
#define SG_ERR_INVALID_ARG -5 /* caller passed something impossible */
#define SG_ERR_LIMIT -6 /* a configured limit was exceeded */
#define SG_ERR_MALFORMED -7 /* input is not well-formed (MIME, CMS ...) */
#define SG_ERR_NOT_FOUND -8 /* no such object */
#define SG_ERR_EXISTS -9 /* object already present */
#define SG_ERR_CONFIG -10 /* configuration invalid */
#define SG_ERR_STORE -11 /* keystore database failed */
#define SG_ERR_UNSAFE_PERM -12 /* file or directory others may read or replace */
#define SG_ERR_BAD_PASSPHRASE -13
#define SG_ERR_CERT_UNUSABLE -14 /* certificate not valid for this use */
#define SG_ERR_ALREADY_SMIME -15 /* message is already signed or encrypted */
#define SG_ERR_UNSUPPORTED -16 /* feature or algorithm not supported */
#define SG_ERR_TRUNCATED -17 /* input ended early */
#define SG_ERR_MIN -17

/* Returns a static, human-readable description of code. */
const char *sg_strerror(int code);

#if defined(__GNUC__)
#define SG_WUR __attribute__((warn_unused_result))
#define SG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SG_WUR
#define SG_PRINTF(a, b)
#endif

#endif
