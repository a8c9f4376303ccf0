/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 address and port helpers shared by the socket and packet programs.
 * Header-only; needs bpf_endian.h. Addresses are __be32 as in the kernel's
 * contexts; ports are __be16 (struct bpf_sock_addr carries the port in the
 * low 16 bits of a __u32 in network order, struct bpf_sock in host order).
 */
#ifndef SLUICE_BPF_SL_IP4_H
#define SLUICE_BPF_SL_IP4_H

#include <bpf/bpf_endian.h>

/* 127.0.0.0/8. */
static __always_inline bool sl_ip4_is_loopback(__be32 addr)
{
	return (bpf_ntohl(addr) >> 24) == 127;
}

/* The port of a bpf_sock_addr context field (user_port), network order. */
static __always_inline __be16 sl_sock_addr_port(__u32 user_port)
{
	return (__be16)user_port;
}

#endif
