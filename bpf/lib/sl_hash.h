/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow hash of an IPv4 5-tuple (MurmurHash3 x86_32 rounds over three words).
 * Pure C on __u32 values so the eBPF programs, the agent and the tests compute
 * the same number: Maglev consistency across nodes depends on every node
 * hashing a flow identically, so the seed (node4_cfg.hash_seed) must be the
 * same cluster-wide. Addresses and ports are hashed as their raw network-order
 * bytes read as a little-endian word (both eBPF and x86 user space are LE).
 */
#ifndef SLUICE_BPF_SL_HASH_H
#define SLUICE_BPF_SL_HASH_H

static inline __u32 sl_hash_rotl(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline __u32 sl_hash_round(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = sl_hash_rotl(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = sl_hash_rotl(h, 13);
	return h * 5 + 0xe6546b64;
}

static inline __u32 sl_hash_flow4(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport, __u8 proto,
				  __u32 seed)
{
	__u32 h = seed;

	h = sl_hash_round(h, saddr);
	h = sl_hash_round(h, daddr);
	h = sl_hash_round(h, ((__u32)sport << 16) | dport);
	h = sl_hash_round(h, proto);
	h ^= 16;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

#endif
