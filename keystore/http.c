/*
 * http.c - bounded HTTP GET/POST for CRLs and OCSP, with libcurl.
 *
 * SECURITY: only http:// URLs (CRLs and OCSP responses are signed, and
 * RFC 5280/6960 distribution points are plain HTTP); no redirects to other
 * schemes; a hard size cap and a total timeout, so a slow or hostile
 * server can neither stall a message for long nor fill memory.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "ksint.h"
#include "util/buf.h"

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct sg_buf *b = arg;

	if (sg_buf_put(b, p, size * n) != 0)
		return 0; /* over the cap: libcurl aborts the transfer */
	return size * n;
}

int
ks_http_fetch(const char *url, const void *post, size_t postlen, const char *ctype,
    long timeout, size_t max, unsigned char **out, size_t *outlen)
{
	struct curl_slist *hdrs = NULL;
	struct sg_buf b;
	char h[128];
	long code = 0;
	CURL *c;
	CURLcode rc;

	*out = NULL;
	*outlen = 0;
	if (strncasecmp(url, "http://", 7) != 0)
		return SG_ERR_UNSUPPORTED;
	if ((c = curl_easy_init()) == NULL)
		return SG_ERR_NOMEM;
	sg_buf_init(&b, max);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "segel");
	if (post != NULL) {
		snprintf(h, sizeof(h), "Content-Type: %s", ctype);
		hdrs = curl_slist_append(hdrs, h);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)postlen);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || code != 200) {
		sg_buf_free(&b);
		return rc == CURLE_WRITE_ERROR ? SG_ERR_LIMIT : SG_ERR_SYSTEM;
	}
	*outlen = b.len;
	*out = (unsigned char *)sg_buf_steal(&b);
	return *out ? 0 : SG_ERR_NOMEM;
}
