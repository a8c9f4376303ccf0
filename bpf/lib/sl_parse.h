/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ethernet/IPv4 + TCP/UDP/SCTP header parsing for tc programs. Reads through
 * bpf_skb_load_bytes so non-linear skbs and short packets are handled the same
 * way: every field is copied only after its bytes are known to exist. IP
 * options are skipped using IHL; fragments are reported as unsupported (a
 * non-first fragment has no ports, so it cannot be translated on its own).
 */
#ifndef SLUICE_BPF_SL_PARSE_H
#define SLUICE_BPF_SL_PARSE_H

#include "lib/sl_defs.h"

/* A parsed packet. Offsets are from the start of the Ethernet header. */
struct sl_pkt4 {
	__u32 l3_off;  /* IPv4 header (ETH_HLEN) */
	__u32 l4_off;  /* L4 header: l3_off + IHL * 4 */
	__u32 l4_len;  /* L4 header + payload, from the IP total length */
	__u32 pkt_end; /* l3_off + IP total length (ignores Ethernet padding) */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;	/* IPPROTO_TCP / _UDP / _SCTP */
	__u8 tcp_flags; /* TCP flag byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10) */
	__u8 ihl;	/* IPv4 header length in bytes */
	__u8 pad;
};

#define SL_TCP_FIN 0x01
#define SL_TCP_SYN 0x02
#define SL_TCP_RST 0x04
#define SL_TCP_ACK 0x10

/* Packet is not ours to look at (not IPv4, not TCP/UDP/SCTP). */
#define SL_PARSE_PASS 1

/*
 * Returns 0 with *pkt filled, SL_PARSE_PASS for traffic this path ignores, or
 * -SL_R_MALFORMED / -SL_R_UNSUPPORTED (the caller counts and passes it).
 */
static __always_inline int sl_parse4(struct __sk_buff *skb, struct sl_pkt4 *pkt)
{
	struct ethhdr eth;
	struct iphdr ip;
	__u32 tot_len, ihl;
	__u8 l4[14];

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return -SL_R_MALFORMED;
	if (eth.h_proto != bpf_htons(SL_ETH_P_IP))
		return SL_PARSE_PASS;
	if (bpf_skb_load_bytes(skb, SL_ETH_HLEN, &ip, sizeof(ip)))
		return -SL_R_MALFORMED;
	if (ip.version != 4 || ip.ihl < 5)
		return -SL_R_MALFORMED;
	ihl = ip.ihl * 4;
	tot_len = bpf_ntohs(ip.tot_len);
	if (tot_len < ihl || SL_ETH_HLEN + tot_len > skb->len)
		return -SL_R_MALFORMED;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_SCTP)
		return SL_PARSE_PASS;
	/* MF set or a non-zero offset: a fragment. */
	if (ip.frag_off & bpf_htons(0x3fff))
		return -SL_R_UNSUPPORTED;

	pkt->l3_off = SL_ETH_HLEN;
	pkt->l4_off = SL_ETH_HLEN + ihl;
	pkt->l4_len = tot_len - ihl;
	pkt->pkt_end = SL_ETH_HLEN + tot_len;
	pkt->saddr = ip.saddr;
	pkt->daddr = ip.daddr;
	pkt->proto = ip.protocol;
	pkt->ihl = ihl;
	pkt->tcp_flags = 0;

	switch (ip.protocol) {
	case IPPROTO_TCP:
		if (pkt->l4_len < 20)
			return -SL_R_MALFORMED;
		if (bpf_skb_load_bytes(skb, pkt->l4_off, l4, 14))
			return -SL_R_MALFORMED;
		/* Data offset below 5 words or past the end: bogus header. */
		if ((l4[12] >> 4) < 5 || (__u32)(l4[12] >> 4) * 4 > pkt->l4_len)
			return -SL_R_MALFORMED;
		pkt->tcp_flags = l4[13];
		break;
	case IPPROTO_UDP:
		if (pkt->l4_len < 8)
			return -SL_R_MALFORMED;
		if (bpf_skb_load_bytes(skb, pkt->l4_off, l4, 4))
			return -SL_R_MALFORMED;
		break;
	default: /* SCTP: common header is 12 bytes */
		if (pkt->l4_len < 12)
			return -SL_R_MALFORMED;
		if (bpf_skb_load_bytes(skb, pkt->l4_off, l4, 4))
			return -SL_R_MALFORMED;
		break;
	}
	__builtin_memcpy(&pkt->sport, &l4[0], 2);
	__builtin_memcpy(&pkt->dport, &l4[2], 2);
	return 0;
}

#endif
