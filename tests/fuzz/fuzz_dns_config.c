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
#include <stdbool.h>
#include <stdio.h>
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

/* Member-wise equality (padding bytes are not part of a config's value). */
static bool cfg_equal(const struct dns_config *a, const struct dns_config *b)
{
	char x[80], y[80];

	if (strcmp(a->zone, b->zone) != 0 || a->ttl != b->ttl || a->pods != b->pods ||
	    a->n_upstream != b->n_upstream || strcmp(a->metrics, b->metrics) != 0 ||
	    a->workers != b->workers || a->cache_size != b->cache_size ||
	    a->cache_max_ttl != b->cache_max_ttl || a->cache_min_ttl != b->cache_min_ttl ||
	    a->upstream_timeout_ms != b->upstream_timeout_ms || a->max_fails != b->max_fails ||
	    a->tcp_max_conns != b->tcp_max_conns || a->tcp_idle_ms != b->tcp_idle_ms ||
	    a->bufsize != b->bufsize)
		return false;
	if (strcmp(dns_config_addr_str(&a->listen, x, sizeof(x)),
		   dns_config_addr_str(&b->listen, y, sizeof(y))) != 0)
		return false;
	for (unsigned int i = 0; i < a->n_upstream; i++)
		if (strcmp(dns_config_addr_str(&a->upstream[i], x, sizeof(x)),
			   dns_config_addr_str(&b->upstream[i], y, sizeof(y))) != 0)
			return false;
	return true;
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
		must(cfg_equal(&a, &before));
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
	must(cfg_equal(&a, &b));
	must(!strcmp(err, err2));

	if (size < sizeof(addr)) {
		memcpy(addr, data, size);
		addr[size] = '\0';
		if (!dns_config_addr_parse(addr, 53, &ss)) {
			char s[80], s2[80];
			struct sockaddr_storage back;
			/* The formatted address parses back to the same address. */
			dns_config_addr_str(&ss, s, sizeof(s));
			must(!dns_config_addr_parse(s, 1, &back));
			must(!strcmp(s, dns_config_addr_str(&back, s2, sizeof(s2))));
		}
	}
	return 0;
}
