/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address/port rewrites with incremental checksum fix-ups (RFC 1624 through
 * bpf_l3_csum_replace / bpf_l4_csum_replace), and full Internet checksums for
 * packets built from scratch (TCP RST, ICMP unreachable).
 *
 * TCP and UDP checksums cover a pseudo header holding both addresses, hence
 * BPF_F_PSEUDO_HDR on address changes. A UDP checksum of 0 means "none" and
 * must stay 0: BPF_F_MARK_MANGLED_0 makes the helper skip a zero field and
 * write 0xffff instead of a computed 0. SCTP has no Internet checksum; its
 * CRC32c is recomputed afterwards (sl_crc32c.h).
 */
#ifndef SLUICE_BPF_SL_CSUM_H
#define SLUICE_BPF_SL_CSUM_H

#include "lib/sl_defs.h"
#include "lib/sl_parse.h"

#define SL_IP_CSUM_OFF	10
#define SL_IP_SADDR_OFF 12
#define SL_IP_DADDR_OFF 16

/* Offset of the L4 checksum inside the L4 header, or -1 when none. */
static __always_inline int sl_l4_csum_off(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return 16;
	if (proto == IPPROTO_UDP)
		return 6;
	return -1;
}

static __always_inline __u64 sl_l4_csum_flags(__u8 proto)
{
	return proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/*
 * Rewrites the source (src = true) or destination address and port of the
 * packet, fixing the IPv4 header checksum and the TCP/UDP checksum. Updates
 * *pkt to the new values. Returns 0 or -SL_R_CSUM_FAIL.
 */
static __always_inline int sl_csum_nat(struct __sk_buff *skb, struct sl_pkt4 *pkt, bool src,
				       __be32 new_addr, __be16 new_port)
{
	__u32 addr_off = pkt->l3_off + (src ? SL_IP_SADDR_OFF : SL_IP_DADDR_OFF);
	__u32 port_off = pkt->l4_off + (src ? 0 : 2);
	__be32 old_addr = src ? pkt->saddr : pkt->daddr;
	__be16 old_port = src ? pkt->sport : pkt->dport;
	int csum_off = sl_l4_csum_off(pkt->proto);
	__u64 fl = sl_l4_csum_flags(pkt->proto);

	if (old_addr != new_addr) {
		if (csum_off >= 0 &&
		    bpf_l4_csum_replace(skb, pkt->l4_off + csum_off, old_addr, new_addr,
					fl | BPF_F_PSEUDO_HDR | sizeof(new_addr)))
			return -SL_R_CSUM_FAIL;
		if (bpf_l3_csum_replace(skb, pkt->l3_off + SL_IP_CSUM_OFF, old_addr, new_addr,
					sizeof(new_addr)))
			return -SL_R_CSUM_FAIL;
		if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0))
			return -SL_R_CSUM_FAIL;
	}
	if (old_port != new_port) {
		if (csum_off >= 0 && bpf_l4_csum_replace(skb, pkt->l4_off + csum_off, old_port,
							 new_port, fl | sizeof(new_port)))
			return -SL_R_CSUM_FAIL;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
			return -SL_R_CSUM_FAIL;
	}
	if (src) {
		pkt->saddr = new_addr;
		pkt->sport = new_port;
	} else {
		pkt->daddr = new_addr;
		pkt->dport = new_port;
	}
	return 0;
}

/* Folds a 32-bit one's-complement sum (bpf_csum_diff's result) to 16 bits. */
static __always_inline __u16 sl_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

#endif
