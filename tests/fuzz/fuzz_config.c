/*
 * fuzz_config.c - libFuzzer harness: segel.conf parsing and checking.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "milter/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/segel-fuzz-conf.XXXXXX", err[512];
	struct segel_cfg *c = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size && cfg_load(path, &c, err, sizeof(err)) == 0)
		cfg_unref(c);
	close(fd);
	unlink(path);
	return 0;
}
