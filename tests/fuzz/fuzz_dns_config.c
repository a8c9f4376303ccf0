// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for dns/config.c, the sluice-dns Corefile-like parser
 * (operator input, and the same directive code the flags go through).
 * Besides ASan/UBSan findings it checks, and abort()s when one breaks:
 *   - a rejected input comes with a message naming the file and line, and
 *     leaves the config untouched;
 *   - an accepted config is sane (ttl <= 3600, 1-15 upstreams or none, the
 *     cache min TTL not above the max, a NUL-terminated lower-case zone);
 *   - parsing the same text twice gives the same config (no hidden state).
 * Also feeds the text to dns_config_addr_parse as one address.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_config a, b, before;
	struct sockaddr_storage ss;
	char err[512] = "", err2[512] = "", addr[128];
	int ra, rb;

	dns_config_defaults(&a);
	before = a;
	ra = dns_config_parse(&a, "fuzz.conf", (const char *)data, size, err, sizeof(err));
	if (ra) {
		must(ra == -EINVAL);
		must(!strncmp(err, "fuzz.conf:", 10));
		must(!memcmp(&a, &before, sizeof(a)));
	} else {
		must(a.ttl <= 3600);
		must(a.n_upstream <= DNS_CFG_MAX_UPSTREAMS);
		must(a.cache_min_ttl <= a.cache_max_ttl);
		must(memchr(a.zone, '\0', sizeof(a.zone)) != NULL);
		for (const char *p = a.zone; *p; p++)
			must(!isupper((unsigned char)*p));
		must(a.bufsize >= 512 && a.bufsize <= 4096);
	}
	dns_config_defaults(&b);
	rb = dns_config_parse(&b, "fuzz.conf", (const char *)data, size, err2, sizeof(err2));
	must(ra == rb);
	must(!memcmp(&a, &b, sizeof(a)));
	must(!strcmp(err, err2));

	if (size < sizeof(addr)) {
		memcpy(addr, data, size);
		addr[size] = '\0';
		if (!dns_config_addr_parse(addr, 53, &ss)) {
			char s[80];
			struct sockaddr_storage back;
			/* The formatted address parses back to the same address. */
			dns_config_addr_str(&ss, s, sizeof(s));
			must(!dns_config_addr_parse(s, 1, &back));
			must(!memcmp(&ss, &back, sizeof(ss)));
		}
	}
	return 0;
}
