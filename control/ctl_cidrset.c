// SPDX-License-Identifier: Apache-2.0
/*
 * The node IPAM block allocator (kube's pkg/controller/nodeipam/ipam/cidrset):
 * the cluster CIDR cut into equal /mask blocks, a bitmap of the blocks in
 * use, and a rotating cursor so a block freed by a deleted node is not handed
 * to the next node at once (its routes may still be around on other nodes).
 * Pure and single-threaded: owned by the IPAM controller thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sluice/err.h"

struct ctl_cidrset {
	uint32_t base;	/* network address of the cluster CIDR, host order */
	int prefix;	/* cluster prefix length */
	int mask;	/* block prefix length */
	uint32_t n;	/* number of blocks: 2^(mask - prefix) */
	uint32_t used;	/* blocks in use */
	uint32_t next;	/* where the next scan starts */
	uint64_t *bits; /* n bits, 1 = in use */
};

/* "a.b.c.d/p" -> address and prefix; false for anything else (IPv6 included). */
static bool parse_cidr4(const char *s, uint32_t *addr, int *prefix)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	char *end;
	long p;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	if (!slash[1] || slash[1] == '+' || slash[1] == '-' || slash[1] == ' ')
		return false;
	errno = 0;
	p = strtol(slash + 1, &end, 10);
	if (errno || *end || p < 0 || p > 32)
		return false;
	*addr = ntohl(a.s_addr);
	*prefix = (int)p;
	return true;
}

static uint32_t prefix_mask(int p)
{
	return p == 0 ? 0 : ~0u << (32 - p);
}

struct ctl_cidrset *ctl_cidrset_new(const char *cidr, int mask, char *err, size_t errlen)
{
	struct ctl_cidrset *s;
	uint32_t addr;
	int prefix;

	if (!cidr || !parse_cidr4(cidr, &addr, &prefix)) {
		if (cidr && strchr(cidr, ':'))
			snprintf(err, errlen, "IPv6 cluster CIDRs are not supported yet");
		else
			snprintf(err, errlen, "expected an IPv4 CIDR such as 10.244.0.0/16");
		errno = EINVAL;
		return NULL;
	}
	if (addr & ~prefix_mask(prefix)) {
		struct in_addr a = {htonl(addr & prefix_mask(prefix))};
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(err, errlen, "host bits are set; did you mean %s/%d?", ip, prefix);
		errno = EINVAL;
		return NULL;
	}
	if (mask < prefix || mask > 30) {
		snprintf(err, errlen,
			 "node CIDR mask size %d must be between the cluster prefix /%d and /30",
			 mask, prefix);
		errno = EINVAL;
		return NULL;
	}
	if (mask - prefix > 16) {
		snprintf(err, errlen,
			 "node CIDR mask size %d is more than 16 bits longer than the cluster "
			 "prefix /%d (at most 65536 node CIDRs)",
			 mask, prefix);
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->base = addr;
	s->prefix = prefix;
	s->mask = mask;
	s->n = 1u << (mask - prefix);
	s->bits = calloc((s->n + 63) / 64, sizeof(uint64_t));
	if (!s->bits) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

void ctl_cidrset_free(struct ctl_cidrset *s)
{
	if (!s)
		return;
	free(s->bits);
	free(s);
}

static bool bit_get(const struct ctl_cidrset *s, uint32_t i)
{
	return s->bits[i / 64] >> (i % 64) & 1;
}

static void bit_set(struct ctl_cidrset *s, uint32_t i, bool v)
{
	if (v)
		s->bits[i / 64] |= 1ull << (i % 64);
	else
		s->bits[i / 64] &= ~(1ull << (i % 64));
}

static void block_format(const struct ctl_cidrset *s, uint32_t i, char *out, size_t outlen)
{
	struct in_addr a = {htonl(s->base + (i << (32 - s->mask)))};
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(out, outlen, "%s/%d", ip, s->mask);
}

int ctl_cidrset_next(struct ctl_cidrset *s, char *out, size_t outlen)
{
	for (uint32_t k = 0; k < s->n; k++) {
		uint32_t i = (s->next + k) % s->n;
		if (bit_get(s, i))
			continue;
		bit_set(s, i, true);
		s->used++;
		s->next = (i + 1) % s->n;
		block_format(s, i, out, outlen);
		return 0;
	}
	return -SL_ERR_EXHAUSTED;
}

/* Index of the block cidr names, or a negative error. */
static int64_t block_index(const struct ctl_cidrset *s, const char *cidr)
{
	uint32_t addr;
	int prefix;

	if (!cidr || !parse_cidr4(cidr, &addr, &prefix))
		return -EINVAL;
	if (prefix != s->mask || (addr & ~prefix_mask(prefix)) ||
	    (addr & prefix_mask(s->prefix)) != s->base)
		return -ERANGE;
	return (addr - s->base) >> (32 - s->mask);
}

int ctl_cidrset_occupy(struct ctl_cidrset *s, const char *cidr)
{
	int64_t i = block_index(s, cidr);

	if (i < 0)
		return (int)i;
	if (bit_get(s, (uint32_t)i))
		return -EEXIST;
	bit_set(s, (uint32_t)i, true);
	s->used++;
	return 0;
}

void ctl_cidrset_release(struct ctl_cidrset *s, const char *cidr)
{
	int64_t i = block_index(s, cidr);

	if (i < 0 || !bit_get(s, (uint32_t)i))
		return;
	bit_set(s, (uint32_t)i, false);
	s->used--;
}

uint32_t ctl_cidrset_used(const struct ctl_cidrset *s)
{
	return s->used;
}

uint32_t ctl_cidrset_size(const struct ctl_cidrset *s)
{
	return s->n;
}
