/*
 * fuzz_addr.c - libFuzzer harness: From/To address lists and
 * Content-Type values, the header parsers that see untrusted input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smime/mimeint.h"
#include "smime/smime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_ctype ct;
	char *s, **addrs = NULL, *n;
	size_t na = 0;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sm_addr_parse_list(s, &addrs, &na) == 0)
		sm_addr_list_free(addrs, na);
	(void)sm_ctype_parse(s, &ct);
	(void)sm_cte_parse(s);
	free(sm_addr_normalize(s));
	n = sm_addr_normalize(s);
	free(n);
	free(s);
	return 0;
}
