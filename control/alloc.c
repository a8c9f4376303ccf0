// SPDX-License-Identifier: Apache-2.0
/*
 * ClusterIP and NodePort allocators (see alloc.h). Both are a bitmap over a
 * contiguous range plus a rotating cursor: allocation scans forward from the
 * cursor and leaves it just past the value handed out, so a value released by
 * a deleted Service is not handed to the very next create (clients that still
 * cache the old IP would otherwise reach the wrong Service). Explicit take()
 * does not move the cursor: it is used for user-requested values and for the
 * startup rebuild from stored Services.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h> /* alloc.h uses size_t without including it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sluice/err.h"

struct bitmap {
	uint64_t *words; /* bit i set = value i in use */
	uint32_t nbits;	 /* values in the range */
	uint32_t used;	 /* bits set */
	uint32_t cursor; /* next index to try in next() */
};

static int bitmap_init(struct bitmap *b, uint32_t nbits)
{
	b->words = calloc((nbits + 63) / 64, sizeof(uint64_t));
	if (!b->words)
		return -ENOMEM;
	b->nbits = nbits;
	b->used = 0;
	b->cursor = 0;
	return 0;
}

static bool bitmap_test(const struct bitmap *b, uint32_t i)
{
	return b->words[i / 64] & (1ULL << (i % 64));
}

static void bitmap_set(struct bitmap *b, uint32_t i)
{
	if (!bitmap_test(b, i)) {
		b->words[i / 64] |= 1ULL << (i % 64);
		b->used++;
	}
}

static void bitmap_clear(struct bitmap *b, uint32_t i)
{
	if (bitmap_test(b, i)) {
		b->words[i / 64] &= ~(1ULL << (i % 64));
		b->used--;
	}
}

/* Finds a clear bit at or after the cursor, wrapping once; whole words are
 * skipped when full so a nearly full /12 costs a few thousand loads, not a
 * million. */
static int bitmap_next(struct bitmap *b, uint32_t *out)
{
	uint32_t i = b->cursor, scanned = 0;

	if (b->used >= b->nbits)
		return -SL_ERR_EXHAUSTED;
	while (scanned < b->nbits) {
		if (i >= b->nbits)
			i = 0;
		if (i % 64 == 0 && b->words[i / 64] == ~0ULL && b->nbits - i >= 64) {
			i += 64;
			scanned += 64;
			continue;
		}
		if (!bitmap_test(b, i)) {
			bitmap_set(b, i);
			b->cursor = i + 1 >= b->nbits ? 0 : i + 1;
			*out = i;
			return 0;
		}
		i++;
		scanned++;
	}
	return -SL_ERR_EXHAUSTED;
}

/* --- ClusterIPs ---------------------------------------------------------- */

struct ipalloc {
	char cidr[32];	  /* as given, e.g. "198.18.128.0/20" */
	uint32_t network; /* host byte order */
	uint32_t prefix;  /* 8..30 */
	struct bitmap bm; /* index i = network + 1 + i */
};

/* Parses a decimal number made of digits only, without sign or spaces. */
static bool parse_uint(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint32_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

struct ipalloc *ipalloc_new(const char *cidr, char *err, size_t errlen)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash;
	struct ipalloc *a;
	uint32_t addr, prefix, mask;
	size_t iplen;

	if (!cidr)
		cidr = "";
	slash = strchr(cidr, '/');
	iplen = slash ? (size_t)(slash - cidr) : 0;
	if (slash && iplen < sizeof(ip)) {
		memcpy(ip, cidr, iplen);
		ip[iplen] = '\0';
		if (memchr(ip, ':', iplen)) {
			snprintf(err, errlen,
				 "service CIDR '%s': IPv6 service CIDRs are not supported yet",
				 cidr);
			errno = EINVAL;
			return NULL;
		}
	}
	if (!slash || iplen >= sizeof(ip) || !parse_ipv4(ip, &addr) ||
	    !parse_uint(slash + 1, strlen(slash + 1), 128, &prefix) || prefix > 32) {
		snprintf(err, errlen,
			 "service CIDR '%s': not a valid IPv4 CIDR (want e.g. 10.96.0.0/12)", cidr);
		errno = EINVAL;
		return NULL;
	}
	if (prefix < 8 || prefix > 30) {
		snprintf(err, errlen,
			 "service CIDR '%s': prefix /%u is outside /8../30 (too large to track or "
			 "too small to hold any address)",
			 cidr, prefix);
		errno = EINVAL;
		return NULL;
	}
	mask = ~0U << (32 - prefix);
	if (addr & ~mask) {
		struct in_addr n = {.s_addr = htonl(addr & mask)};
		char nbuf[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &n, nbuf, sizeof(nbuf));
		snprintf(err, errlen, "service CIDR '%s': host bits are set; did you mean %s/%u?",
			 cidr, nbuf, prefix);
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a || strlen(cidr) >= sizeof(a->cidr) ||
	    bitmap_init(&a->bm, (1U << (32 - prefix)) - 2) < 0) {
		free(a);
		snprintf(err, errlen, "service CIDR '%s': out of memory", cidr);
		errno = ENOMEM;
		return NULL;
	}
	strcpy(a->cidr, cidr);
	a->network = addr;
	a->prefix = prefix;
	return a;
}

void ipalloc_free(struct ipalloc *a)
{
	if (!a)
		return;
	free(a->bm.words);
	free(a);
}

static int ip_format(uint32_t addr, char *out, size_t outlen)
{
	struct in_addr n = {.s_addr = htonl(addr)};

	if (!inet_ntop(AF_INET, &n, out, (socklen_t)outlen))
		return -ENOSPC;
	return 0;
}

int ipalloc_nth(const struct ipalloc *a, uint32_t n, char *out, size_t outlen)
{
	if (n < 1 || n > a->bm.nbits)
		return -ERANGE;
	return ip_format(a->network + n, out, outlen);
}

int ipalloc_next(struct ipalloc *a, char *out, size_t outlen)
{
	uint32_t i;
	int err;

	/* A caller with a too-small buffer must not leak an allocation. */
	if (outlen < INET_ADDRSTRLEN)
		return -ENOSPC;
	err = bitmap_next(&a->bm, &i);
	if (err)
		return err;
	return ip_format(a->network + 1 + i, out, outlen);
}

/* Maps an address to its bitmap index: 0, -EINVAL or -ERANGE. */
static int ip_index(const struct ipalloc *a, const char *ip, uint32_t *idx)
{
	uint32_t addr;

	if (!ip || !parse_ipv4(ip, &addr))
		return -EINVAL;
	if (addr <= a->network || addr - a->network - 1 >= a->bm.nbits)
		return -ERANGE;
	*idx = addr - a->network - 1;
	return 0;
}

int ipalloc_take(struct ipalloc *a, const char *ip)
{
	uint32_t i;
	int err = ip_index(a, ip, &i);

	if (err)
		return err;
	if (bitmap_test(&a->bm, i))
		return -EEXIST;
	bitmap_set(&a->bm, i);
	return 0;
}

void ipalloc_release(struct ipalloc *a, const char *ip)
{
	uint32_t i;

	if (a && ip_index(a, ip, &i) == 0)
		bitmap_clear(&a->bm, i);
}

bool ipalloc_in_use(const struct ipalloc *a, const char *ip)
{
	uint32_t i;

	return a && ip_index(a, ip, &i) == 0 && bitmap_test(&a->bm, i);
}

const char *ipalloc_cidr(const struct ipalloc *a)
{
	return a->cidr;
}

uint32_t ipalloc_used(const struct ipalloc *a)
{
	return a->bm.used;
}

uint32_t ipalloc_size(const struct ipalloc *a)
{
	return a->bm.nbits;
}

/* --- NodePorts ----------------------------------------------------------- */

struct portalloc {
	int lo, hi;	  /* inclusive range */
	struct bitmap bm; /* index i = lo + i */
};

/*
 * Accepts kube-apiserver's --service-node-port-range forms: "lo-hi", "base+size"
 * (the range base..base+size) and a single port.
 */
struct portalloc *portalloc_new(const char *range, char *err, size_t errlen)
{
	const char *sep;
	uint32_t lo, hi;
	struct portalloc *a;

	if (!range)
		range = "";
	sep = strpbrk(range, "-+");
	if (!sep) {
		if (!parse_uint(range, strlen(range), 1U << 20, &lo))
			goto syntax;
		hi = lo;
	} else {
		if (!parse_uint(range, (size_t)(sep - range), 1U << 20, &lo) ||
		    !parse_uint(sep + 1, strlen(sep + 1), 1U << 20, &hi))
			goto syntax;
		if (*sep == '+')
			hi += lo;
	}
	if (lo < 1 || hi > 65535) {
		snprintf(err, errlen, "node port range '%s': ports must be within 1-65535", range);
		errno = EINVAL;
		return NULL;
	}
	if (lo > hi) {
		snprintf(err, errlen, "node port range '%s': start %u is after end %u", range, lo,
			 hi);
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a || bitmap_init(&a->bm, hi - lo + 1) < 0) {
		free(a);
		snprintf(err, errlen, "node port range '%s': out of memory", range);
		errno = ENOMEM;
		return NULL;
	}
	a->lo = (int)lo;
	a->hi = (int)hi;
	return a;
syntax:
	snprintf(err, errlen, "node port range '%s': want LOW-HIGH, e.g. 30000-32767", range);
	errno = EINVAL;
	return NULL;
}

void portalloc_free(struct portalloc *a)
{
	if (!a)
		return;
	free(a->bm.words);
	free(a);
}

int portalloc_next(struct portalloc *a, int *port)
{
	uint32_t i;
	int err = bitmap_next(&a->bm, &i);

	if (err)
		return err;
	*port = a->lo + (int)i;
	return 0;
}

int portalloc_take(struct portalloc *a, int port)
{
	if (port < a->lo || port > a->hi)
		return -ERANGE;
	if (bitmap_test(&a->bm, (uint32_t)(port - a->lo)))
		return -EEXIST;
	bitmap_set(&a->bm, (uint32_t)(port - a->lo));
	return 0;
}

void portalloc_release(struct portalloc *a, int port)
{
	if (a && port >= a->lo && port <= a->hi)
		bitmap_clear(&a->bm, (uint32_t)(port - a->lo));
}

bool portalloc_in_use(const struct portalloc *a, int port)
{
	return a && port >= a->lo && port <= a->hi && bitmap_test(&a->bm, (uint32_t)(port - a->lo));
}

void portalloc_range(const struct portalloc *a, int *lo, int *hi)
{
	*lo = a->lo;
	*hi = a->hi;
}
