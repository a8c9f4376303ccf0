/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Refusals for services without endpoints, built in place and sent back out
 * of the interface the packet came in on (kube-proxy's REJECT, so clients
 * fail fast instead of timing out):
 *
 *   TCP        -> TCP RST (RFC 9293 3.10.7.1: seq = SEG.ACK if the segment had
 *                 ACK, else seq 0 with ACK = SEG.SEQ + SEG.LEN (+1 SYN, +1 FIN));
 *                 never in answer to a RST.
 *   UDP, SCTP  -> ICMP destination unreachable, port unreachable (code 3),
 *                 quoting the IP header and the first 8 L4 bytes (RFC 792).
 *                 SCTP gets ICMP rather than an ABORT chunk: the same code path,
 *                 and RFC 9260 8.4 lets an endpoint answer OOTB packets either way.
 *
 * The reply's source is the frontend address the client used. Packets with IP
 * options are refused without a reply (shifting the header is not worth it
 * for an error path); the caller drops and counts them.
 */
#ifndef SLUICE_BPF_SL_REJECT_H
#define SLUICE_BPF_SL_REJECT_H

#include "lib/sl_defs.h"
#include "lib/sl_csum.h"
#include "lib/sl_parse.h"

/* Minimal headers without bitfields, so fields are set byte by byte. */
struct sl_iph {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 proto;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct sl_tcph {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res; /* data offset << 4 */
	__u8 flags;
	__be16 window;
	__be16 check;
	__be16 urg_ptr;
};

struct sl_pseudo4 {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

struct sl_icmp_unreach {
	__u8 type;
	__u8 code;
	__be16 check;
	__be32 unused;
	__u8 quote[28]; /* original IPv4 header (no options) + 8 bytes of L4 */
};

static __always_inline void sl_reject_iph(struct sl_iph *ip, const struct sl_pkt4 *pkt, __u8 proto,
					  __u16 len)
{
	ip->ver_ihl = 0x45;
	ip->tos = 0;
	ip->tot_len = bpf_htons(len);
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->proto = proto;
	ip->check = 0;
	ip->saddr = pkt->daddr;
	ip->daddr = pkt->saddr;
	ip->check = sl_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
}

/* Swaps the Ethernet addresses in place so the frame goes back to its sender. */
static __always_inline int sl_reject_eth(struct __sk_buff *skb)
{
	__u8 mac[2 * SL_ETH_ALEN], sw[2 * SL_ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)))
		return -SL_R_MALFORMED;
	__builtin_memcpy(sw, mac + SL_ETH_ALEN, SL_ETH_ALEN);
	__builtin_memcpy(sw + SL_ETH_ALEN, mac, SL_ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, sw, sizeof(sw), 0))
		return -SL_R_CSUM_FAIL;
	return 0;
}

/* Turns pkt (TCP) into a RST toward its sender. 0 or -reason (then drop). */
static __always_inline int sl_reject_tcp(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	struct sl_pseudo4 ph = {};
	struct sl_tcph th = {};
	struct sl_iph ip = {};
	__u32 seqack[2], seg_len;
	__u8 doff;
	__s64 sum;

	if (pkt->tcp_flags & SL_TCP_RST)
		return -SL_R_NO_BACKEND;
	if (bpf_skb_load_bytes(skb, pkt->l4_off + 4, seqack, sizeof(seqack)) ||
	    bpf_skb_load_bytes(skb, pkt->l4_off + 12, &doff, 1))
		return -SL_R_MALFORMED;
	seg_len = pkt->l4_len - (doff >> 4) * 4;

	th.source = pkt->dport;
	th.dest = pkt->sport;
	th.doff_res = 5 << 4;
	if (pkt->tcp_flags & SL_TCP_ACK) {
		th.seq = seqack[1];
		th.flags = SL_TCP_RST;
	} else {
		if (pkt->tcp_flags & SL_TCP_SYN)
			seg_len++;
		if (pkt->tcp_flags & SL_TCP_FIN)
			seg_len++;
		th.ack_seq = bpf_htonl(bpf_ntohl(seqack[0]) + seg_len);
		th.flags = SL_TCP_RST | SL_TCP_ACK;
	}
	ph.saddr = pkt->daddr;
	ph.daddr = pkt->saddr;
	ph.proto = IPPROTO_TCP;
	ph.len = bpf_htons(sizeof(th));
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&th, sizeof(th), sum);
	th.check = sl_csum_fold(sum);
	sl_reject_iph(&ip, pkt, IPPROTO_TCP, sizeof(ip) + sizeof(th));

	if (bpf_skb_change_tail(skb, SL_ETH_HLEN + sizeof(ip) + sizeof(th), 0))
		return -SL_R_CSUM_FAIL;
	if (sl_reject_eth(skb))
		return -SL_R_CSUM_FAIL;
	if (bpf_skb_store_bytes(skb, SL_ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, SL_ETH_HLEN + sizeof(ip), &th, sizeof(th), 0))
		return -SL_R_CSUM_FAIL;
	return 0;
}

/* Turns pkt (UDP/SCTP) into an ICMP port unreachable toward its sender. */
static __always_inline int sl_reject_icmp(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	struct sl_icmp_unreach ic = {};
	struct sl_iph ip = {};

	if (bpf_skb_load_bytes(skb, pkt->l3_off, ic.quote, sizeof(ic.quote)))
		return -SL_R_MALFORMED;
	ic.type = 3; /* ICMP_DEST_UNREACH */
	ic.code = 3; /* ICMP_PORT_UNREACH */
	ic.check = sl_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&ic, sizeof(ic), 0));
	sl_reject_iph(&ip, pkt, IPPROTO_ICMP, sizeof(ip) + sizeof(ic));

	if (bpf_skb_change_tail(skb, SL_ETH_HLEN + sizeof(ip) + sizeof(ic), 0))
		return -SL_R_CSUM_FAIL;
	if (sl_reject_eth(skb))
		return -SL_R_CSUM_FAIL;
	if (bpf_skb_store_bytes(skb, SL_ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, SL_ETH_HLEN + sizeof(ip), &ic, sizeof(ic), 0))
		return -SL_R_CSUM_FAIL;
	return 0;
}

/* Refuses pkt: returns the tc verdict (redirect back out, or drop). */
static __always_inline int sl_reject(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	int err;

	if (pkt->ihl != 20)
		return -SL_R_NO_BACKEND;
	err = pkt->proto == IPPROTO_TCP ? sl_reject_tcp(skb, pkt) : sl_reject_icmp(skb, pkt);
	return err;
}

#endif
