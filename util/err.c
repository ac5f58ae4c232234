/*
 * err.c - text for SG_ERR_* status codes.
 */
#include "sg_err.h"

static const char *const messages[] = {
    "success",
    "internal error",
    "out of memory",
    "system error",
    "cryptographic library error",
    "invalid argument",
    "limit exceeded",
    "malformed input",
    "not found",
    "already exists",
    "configuration error",
    "keystore error",
    "unsafe file ownership or permissions",
    "wrong passphrase",
    "certificate not usable",
    "message is already S/MIME",
    "unsupported",
    "input truncated",
};

const char *
sg_strerror(int code)
{
	if (code > 0 || code < SG_ERR_MIN)
		return "unknown error";
	return messages[-code];
}
