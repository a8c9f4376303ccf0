/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Common includes and the few kernel constants vmlinux.h lacks (they are
 * macros in uapi headers, so BTF does not carry them). Every bpf/lib header
 * includes this first.
 */
#ifndef SLUICE_BPF_SL_DEFS_H
#define SLUICE_BPF_SL_DEFS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/lb.h"

#define SL_ETH_HLEN 14
#define SL_ETH_ALEN 6
#define SL_ETH_P_IP 0x0800

#ifndef TC_ACT_OK
#define TC_ACT_UNSPEC	(-1)
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7
#endif

#define SL_NSEC_PER_SEC 1000000000ULL

/* now - then, or 0 when then is ahead: stamps written with bpf_ktime_get_ns() and read
 * against the coarse clock (bpf_ktime_get_coarse_ns(), the same CLOCK_MONOTONIC up to a
 * tick behind) must read as "just now", never as a huge unsigned age. */
static __always_inline __u64 sl_since(__u64 now, __u64 then)
{
	return now > then ? now - then : 0;
}

#endif
