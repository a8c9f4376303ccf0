/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket termination ABI (bpf/iter_sock_term.bpf.c <-> agent/sockterm.c):
 * the set of removed backends one iterator run destroys sockets for. The map
 * lives only as long as the agent's handle (never pinned), so its name
 * carries no version.
 */
#ifndef SLUICE_ABI_SOCKTERM_H
#define SLUICE_ABI_SOCKTERM_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Targets per run; a longer list is walked in several runs. */
#define SL_TERM_MAX_TARGETS 4096

/* term_targets {addr, port, proto} -> __u32 (reserved, 0). proto keeps a
 * removed TCP backend from matching UDP sockets to the same address:port. */
struct sl_term_key {
	__be32 addr; /* backend address */
	__be16 port; /* backend port, network order */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
};

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct sl_term_key) == 8, "sl_term_key layout");
#endif

#endif
