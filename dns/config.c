// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-dns configuration: the Corefile-like file and the flags that share
 * its directive names (see config.h for the grammar). Every rejection names
 * the directive, the offending word and what would be accepted, so an
 * operator can fix the file from the message alone.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CFG_MAX_LINE  1024
#define CFG_MAX_WORDS 20

void dns_config_defaults(struct dns_config *c)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->listen;

	memset(c, 0, sizeof(*c));
	strcpy(c->zone, "cluster.local");
	c->ttl = 30;
	c->pods = DNS_CFG_PODS_INSECURE;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(53);
	sin->sin_addr.s_addr = htonl(INADDR_ANY);
	c->cache_size = 10000;
	c->cache_max_ttl = 3600;
	c->cache_min_ttl = 5;
	c->upstream_timeout_ms = 2000;
	c->max_fails = 2;
	c->tcp_max_conns = 1024;
	c->tcp_idle_ms = 10000;
	c->bufsize = 1232;
}

int dns_config_addr_parse(const char *s, unsigned int def_port, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s = NULL, *end;
	size_t hl;
	unsigned long port = def_port;

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			port_s = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		const char *colon = strchr(s, ':');
		/* More than one colon and no brackets: a bare IPv6 address. */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (colon)
			port_s = colon + 1;
	}
	if (port_s) {
		char *pe;
		if (!isdigit((unsigned char)*port_s))
			return -EINVAL;
		errno = 0;
		port = strtoul(port_s, &pe, 10);
		if (*pe || errno || port > 65535)
			return -EINVAL;
	}
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	}
	return 0;
}

const char *dns_config_addr_str(const struct sockaddr_storage *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
	return buf;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

/* A zone name: dot-separated labels of letters, digits, '-' and '_',
 * 1-63 bytes each, 253 bytes in all. Stored lower case, trailing dot cut. */
static int parse_zone(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s), label = 0;

	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
		out[i] = (char)tolower(ch);
	}
	if (label == 0)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

int dns_config_directive(struct dns_config *c, const char *name, char *const *args, int nargs,
			 char *err, size_t errlen)
{
	unsigned int v;

#define NEED_ARGS(lo, hi, what)                                               \
	do {                                                                  \
		if (nargs < (lo) || nargs > (hi)) {                           \
			snprintf(err, errlen, "%s: expected %s", name, what); \
			return -EINVAL;                                       \
		}                                                             \
	} while (0)

	if (!strcmp(name, "zone")) {
		NEED_ARGS(1, 1, "one domain name, e.g. 'zone cluster.local'");
		if (parse_zone(args[0], c->zone, sizeof(c->zone))) {
			snprintf(err, errlen,
				 "zone: '%.100s' is not a domain name (labels of letters, digits, "
				 "'-' or '_', 1-63 bytes each)",
				 args[0]);
			return -EINVAL;
		}
	} else if (!strcmp(name, "ttl")) {
		NEED_ARGS(1, 1, "one number of seconds 0-3600");
		if (parse_uint(args[0], 0, 3600, &c->ttl)) {
			snprintf(err, errlen, "ttl: '%.100s' is not a number of seconds 0-3600",
				 args[0]);
			return -EINVAL;
		}
	} else if (!strcmp(name, "pods")) {
		NEED_ARGS(1, 1, "one of insecure, verified, disabled");
		if (!strcmp(args[0], "insecure"))
			c->pods = DNS_CFG_PODS_INSECURE;
		else if (!strcmp(args[0], "verified"))
			c->pods = DNS_CFG_PODS_VERIFIED;
		else if (!strcmp(args[0], "disabled"))
			c->pods = DNS_CFG_PODS_DISABLED;
		else {
			snprintf(err, errlen,
				 "pods: '%.100s' is not a mode; accepted: insecure, verified, "
				 "disabled",
				 args[0]);
			return -EINVAL;
		}
	} else if (!strcmp(name, "forward")) {
		struct sockaddr_storage tmp[DNS_CFG_MAX_UPSTREAMS];
		NEED_ARGS(1, DNS_CFG_MAX_UPSTREAMS, "1-15 upstream addresses IP[:PORT]");
		for (int i = 0; i < nargs; i++) {
			if (dns_config_addr_parse(args[i], 53, &tmp[i])) {
				snprintf(err, errlen,
					 "forward: '%.100s' is not an address IP[:PORT] or "
					 "[IPv6]:PORT",
					 args[i]);
				return -EINVAL;
			}
		}
		memcpy(c->upstream, tmp, sizeof(tmp[0]) * (size_t)nargs);
		c->n_upstream = (unsigned int)nargs;
	} else if (!strcmp(name, "listen")) {
		struct sockaddr_storage a;
		NEED_ARGS(1, 1, "one address IP[:PORT]");
		if (dns_config_addr_parse(args[0], 53, &a)) {
			snprintf(err, errlen,
				 "listen: '%.100s' is not an address IP[:PORT] or [IPv6]:PORT",
				 args[0]);
			return -EINVAL;
		}
		c->listen = a;
	} else if (!strcmp(name, "metrics")) {
		struct sockaddr_storage a;
		NEED_ARGS(1, 1, "HOST:PORT or 'off'");
		if (!strcmp(args[0], "off") || !args[0][0]) {
			c->metrics[0] = '\0';
		} else if (dns_config_addr_parse(args[0], 9153, &a) || a.ss_family != AF_INET ||
			   strlen(args[0]) >= sizeof(c->metrics)) {
			snprintf(err, errlen,
				 "metrics: '%.100s' is not an IPv4 address IP[:PORT] or "
				 "'off'",
				 args[0]);
			return -EINVAL;
		} else {
			dns_config_addr_str(&a, c->metrics, sizeof(c->metrics));
		}
	} else if (!strcmp(name, "workers")) {
		NEED_ARGS(1, 1, "a number of threads 0-256 (0 = one per core)");
		if (parse_uint(args[0], 0, 256, &c->workers)) {
			snprintf(err, errlen, "workers: '%.100s' is not a number 0-256", args[0]);
			return -EINVAL;
		}
	} else if (!strcmp(name, "cache")) {
		struct dns_config t = *c;
		NEED_ARGS(1, 3, "SIZE [MAX_TTL [MIN_TTL]]");
		if (parse_uint(args[0], 0, 10000000, &t.cache_size)) {
			snprintf(err, errlen, "cache: size '%.100s' is not a number 0-10000000",
				 args[0]);
			return -EINVAL;
		}
		if (nargs > 1 && parse_uint(args[1], 1, 86400, &t.cache_max_ttl)) {
			snprintf(err, errlen, "cache: max TTL '%.100s' is not seconds 1-86400",
				 args[1]);
			return -EINVAL;
		}
		if (nargs > 2 && parse_uint(args[2], 0, 86400, &t.cache_min_ttl)) {
			snprintf(err, errlen, "cache: min TTL '%.100s' is not seconds 0-86400",
				 args[2]);
			return -EINVAL;
		}
		if (t.cache_min_ttl > t.cache_max_ttl) {
			snprintf(err, errlen, "cache: min TTL %u is above max TTL %u",
				 t.cache_min_ttl, t.cache_max_ttl);
			return -EINVAL;
		}
		*c = t;
	} else if (!strcmp(name, "upstream-timeout")) {
		NEED_ARGS(1, 1, "milliseconds 10-60000");
		if (parse_uint(args[0], 10, 60000, &v)) {
			snprintf(err, errlen,
				 "upstream-timeout: '%.100s' is not milliseconds "
				 "10-60000",
				 args[0]);
			return -EINVAL;
		}
		c->upstream_timeout_ms = v;
	} else if (!strcmp(name, "max-fails")) {
		NEED_ARGS(1, 1, "a count 1-100");
		if (parse_uint(args[0], 1, 100, &v)) {
			snprintf(err, errlen, "max-fails: '%.100s' is not a count 1-100", args[0]);
			return -EINVAL;
		}
		c->max_fails = v;
	} else if (!strcmp(name, "tcp-connections")) {
		NEED_ARGS(1, 1, "a count 1-100000");
		if (parse_uint(args[0], 1, 100000, &v)) {
			snprintf(err, errlen, "tcp-connections: '%.100s' is not a count 1-100000",
				 args[0]);
			return -EINVAL;
		}
		c->tcp_max_conns = v;
	} else if (!strcmp(name, "tcp-idle")) {
		NEED_ARGS(1, 1, "milliseconds 100-600000");
		if (parse_uint(args[0], 100, 600000, &v)) {
			snprintf(err, errlen, "tcp-idle: '%.100s' is not milliseconds 100-600000",
				 args[0]);
			return -EINVAL;
		}
		c->tcp_idle_ms = v;
	} else if (!strcmp(name, "bufsize")) {
		NEED_ARGS(1, 1, "bytes 512-4096");
		if (parse_uint(args[0], 512, 4096, &v)) {
			snprintf(err, errlen, "bufsize: '%.100s' is not bytes 512-4096", args[0]);
			return -EINVAL;
		}
		c->bufsize = v;
	} else {
		snprintf(err, errlen,
			 "unknown directive '%.60s'; accepted: zone, ttl, pods, forward, listen, "
			 "metrics, workers, cache, upstream-timeout, max-fails, tcp-connections, "
			 "tcp-idle, bufsize",
			 name);
		return -EINVAL;
	}
#undef NEED_ARGS
	return 0;
}

int dns_config_parse(struct dns_config *c, const char *path, const char *text, size_t len,
		     char *err, size_t errlen)
{
	struct dns_config t = *c;
	char line[CFG_MAX_LINE + 1], msg[256];
	unsigned int lineno = 0;
	size_t pos = 0;

	if (!path)
		path = "<config>";
	while (pos < len) {
		size_t start = pos, n;
		char *words[CFG_MAX_WORDS], *p, *save = NULL;
		int nw = 0;

		while (pos < len && text[pos] != '\n')
			pos++;
		n = pos - start;
		pos++; /* past '\n' (or past the end) */
		lineno++;
		if (n > CFG_MAX_LINE) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
				 CFG_MAX_LINE);
			return -EINVAL;
		}
		memcpy(line, text + start, n);
		line[n] = '\0';
		if (memchr(line, '\0', n)) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", path, lineno);
			return -EINVAL;
		}
		p = strchr(line, '#');
		if (p)
			*p = '\0';
		for (p = line; *p; p++) {
			if (*p == '{' || *p == '}') {
				snprintf(err, errlen,
					 "%s:%u: blocks ('{', '}') are not supported; write one "
					 "directive per line",
					 path, lineno);
				return -EINVAL;
			}
			if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r') {
				snprintf(err, errlen, "%s:%u: control character 0x%02x in line",
					 path, lineno, (unsigned char)*p);
				return -EINVAL;
			}
		}
		for (p = strtok_r(line, " \t\r", &save); p; p = strtok_r(NULL, " \t\r", &save)) {
			if (nw == CFG_MAX_WORDS) {
				snprintf(err, errlen, "%s:%u: more than %d words", path, lineno,
					 CFG_MAX_WORDS);
				return -EINVAL;
			}
			words[nw++] = p;
		}
		if (!nw)
			continue;
		if (dns_config_directive(&t, words[0], words + 1, nw - 1, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			return -EINVAL;
		}
	}
	*c = t;
	return 0;
}

static char *read_file(const char *path, size_t max, size_t *len, int *rc)
{
	FILE *f = fopen(path, "re");
	char *buf;

	*rc = 0;
	if (!f) {
		*rc = -errno;
		return NULL;
	}
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		*rc = -ENOMEM;
		return NULL;
	}
	*len = fread(buf, 1, max + 1, f);
	if (ferror(f))
		*rc = -EIO;
	else if (*len > max)
		*rc = -EFBIG;
	fclose(f);
	if (*rc) {
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

int dns_config_load(struct dns_config *c, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	int rc;
	char *text = read_file(path, 1 << 20, &len, &rc);

	if (!text) {
		snprintf(err, errlen, "config '%s': read failed: %s", path,
			 rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
		return rc;
	}
	rc = dns_config_parse(c, path, text, len, err, errlen);
	free(text);
	return rc;
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* Would forwarding to u reach this very server? Exactly our address, or a
 * loopback address on our port while we listen on the wildcard. */
static bool is_self(const struct dns_config *c, const struct sockaddr_storage *u)
{
	const struct sockaddr_in *l4 = (const void *)&c->listen, *u4 = (const void *)u;

	if (addr_equal(&c->listen, u))
		return true;
	if (c->listen.ss_family == AF_INET && u->ss_family == AF_INET &&
	    l4->sin_addr.s_addr == htonl(INADDR_ANY) && l4->sin_port == u4->sin_port &&
	    (ntohl(u4->sin_addr.s_addr) >> 24) == 127)
		return true;
	return false;
}

int dns_config_resolv_conf(struct dns_config *c, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	int rc, taken = 0;
	char *text, *line, *save = NULL;

	if (c->n_upstream)
		return (int)c->n_upstream;
	text = read_file(path, 1 << 16, &len, &rc);
	if (!text) {
		snprintf(err, errlen, "resolv.conf '%s': read failed: %s", path, strerror(-rc));
		return rc;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char kw[16], addr[128];
		struct sockaddr_storage a;

		if (sscanf(line, " %15s %127s", kw, addr) != 2 || strcmp(kw, "nameserver") != 0)
			continue;
		/* resolv.conf nameservers are always port 53; a scope id is not ours. */
		if (strchr(addr, '%') || dns_config_addr_parse(addr, 53, &a))
			continue;
		if (is_self(c, &a))
			continue;
		if (c->n_upstream < DNS_CFG_MAX_UPSTREAMS) {
			c->upstream[c->n_upstream++] = a;
			taken++;
		}
	}
	free(text);
	return taken;
}
