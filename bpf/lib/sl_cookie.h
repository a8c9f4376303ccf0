/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hashing helpers for the datapath. Header-only, no maps, no helpers calls:
 * usable from any program type.
 *
 * sl_cookie_hash() spreads a 64-bit value (a socket cookie) over 32 bits so that
 * "cookie % count" picks backend slots uniformly even though cookies are
 * allocated sequentially (consecutive cookies would otherwise walk the slots
 * round-robin, and a per-CPU cookie batch would bias the low bits).
 */
#ifndef SLUICE_BPF_SL_COOKIE_H
#define SLUICE_BPF_SL_COOKIE_H

/* MurmurHash3 fmix64 finaliser, folded to 32 bits. */
static __always_inline __u32 sl_cookie_hash(__u64 v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ULL;
	v ^= v >> 33;
	return (__u32)v ^ (__u32)(v >> 32);
}

#endif
