/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF host routing (abi/hostroute.h): pod-to-pod packets skip the node's IP stack.
 *
 *   from a pod (tc ingress of its host veth, after translation and its egress policy):
 *     destination a pod of this node  → its ingress policy here, then redirect_peer into it
 *     destination in a podCIDR        → FIB lookup, TTL - 1, MACs, redirect to the device
 *                                       (redirect_neigh when the neighbour is unresolved;
 *                                       redirect_peer to its peer when the device is a veth
 *                                       into another netns, sl_hr_dev_v1)
 *   from the fabric (TCX ingress of the node's devices):
 *     from a podCIDR to a pod of this node → its ingress policy here, then redirect_peer
 *
 * Anything else, and whatever the fast path cannot do as the stack would (TTL about to
 * expire, fragments — the stack's conntrack would reassemble them before policy —, a
 * packet over the pod's MTU, a FIB result other than a usable route), keeps the kernel
 * path, where the programs on the pod veths enforce policy as before. The local delivery
 * composes with lib/sl_policy.h in tc_pod.bpf.c (the reverse NAT of opted-out pods lives
 * there).
 *
 * sl_hr_enabled is set by the agent before load (--host-routing bpf); with 0 every hook
 * here is a no-op the verifier removes.
 */
#ifndef SLUICE_BPF_SL_HOSTROUTE_H
#define SLUICE_BPF_SL_HOSTROUTE_H

#include "lib/sl_defs.h"
#include "lib/sl_parse.h"
#include "lib/sl_ct.h"
#include "abi/hostroute.h"
#include "lib/sl_hr_maps.h"

#define SL_HR_AF_INET	2
#define SL_HR_IP_MF_OFF 0x3fff /* MF flag and fragment offset */
#define SL_HR_TCX_NEXT	TC_ACT_UNSPEC

const volatile __u32 sl_hr_enabled = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_HR_MAX_EPS);
	__type(key, __u32);
	__type(value, struct sl_hr_ep);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_ep_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_HR_C_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_ctr_v1 SEC(".maps");

/* abi/hostroute.h "next-hop cache"; unused entries age out of the LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, SL_HR_MAX_NH);
	__type(key, struct sl_hr_nh_key);
	__type(value, struct sl_hr_nh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_nh_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SL_HR_MAX_DEVS);
	__type(key, __u32);
	__type(value, struct sl_hr_dev);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_dev_v1 SEC(".maps");

static __always_inline int sl_hr_count(struct __sk_buff *skb, __u32 idx, int verdict)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_hr_ctr_v1, &idx);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	return verdict;
}

/* The IPv4 header after an Ethernet header: 0, or 1 when not IPv4 / unreadable. */
static __always_inline int sl_hr_ip(struct __sk_buff *skb, struct iphdr *ip)
{
	struct ethhdr eth;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) || eth.h_proto != bpf_htons(SL_ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, SL_ETH_HLEN, ip, sizeof(*ip)) || ip->version != 4 ||
	    ip->ihl < 5)
		return 1;
	return 0;
}

/* Can the fast path carry it as the forwarding stack would? */
static __always_inline bool sl_hr_forwardable(const struct iphdr *ip)
{
	return ip->ttl > 1 && !(ip->frag_off & bpf_htons(SL_HR_IP_MF_OFF));
}

/* What ip_forward does to the header: TTL - 1, checksum adjusted. */
static __always_inline int sl_hr_ttl_dec(struct __sk_buff *skb, __u8 ttl)
{
	__u8 nttl = ttl - 1;
	int err;

	err = bpf_l3_csum_replace(skb, SL_ETH_HLEN + offsetof(struct iphdr, check),
				  bpf_htons((__u16)ttl << 8), bpf_htons((__u16)nttl << 8), 2);
	if (!err)
		err = bpf_skb_store_bytes(skb, SL_ETH_HLEN + offsetof(struct iphdr, ttl), &nttl, 1,
					  0);
	return err;
}

static __always_inline int sl_hr_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	if (bpf_skb_store_bytes(skb, 0, dst, SL_ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, SL_ETH_ALEN, src, SL_ETH_ALEN, 0))
		return -1;
	return 0;
}

/*
 * Would the egress program of a --devices uplink (tc_nodeport_egress) change this packet?
 * It does the reverse NAT of replies from local backends (a REPLY conntrack entry; e.g. a
 * pod of another node that reached this node's NodePort without the socket LB). Such a
 * packet must go through the device's transmit, where that program runs.
 */
static __always_inline bool sl_hr_uplink_egress_nat(struct __sk_buff *skb)
{
	struct sl_ct4_key rk;
	struct sl_pkt4 pkt = {};

	if (sl_parse4(skb, &pkt))
		return false; /* the egress program passes what it cannot parse */
	sl_ct_key_from_pkt(&rk, &pkt, SL_CT_DIR_REPLY);
	return bpf_map_lookup_elem(sl_ct_map(pkt.proto), &rk) != NULL;
}

/*
 * To the device of a usable FIB result: a veth into another netns (sl_hr_dev_v1) gets the
 * packet by redirect_peer, received by its peer as its transmit would deliver it, minus
 * the transmit path and one pass through a backlog queue; anything else by redirect to the
 * device's egress, whose tc programs then run.
 */
static __always_inline int sl_hr_xmit(struct __sk_buff *skb, __u32 ifindex)
{
	struct sl_hr_dev *dev = bpf_map_lookup_elem(&sl_hr_dev_v1, &ifindex);

	/* sl_hr_npc_possible first: on a node that never tracked a NodePort flow of a pod client
	 * (lib/sl_hr_maps.h) the conntrack lookup is a certain miss into a big, cold map. */
	if (dev && (dev->flags & SL_HR_DEV_F_PEER) &&
	    !(sl_hr_npc_possible() && sl_hr_uplink_egress_nat(skb))) {
		dev->peer_packets++;
		dev->peer_bytes += skb->len;
		return bpf_redirect_peer(ifindex, 0);
	}
	return bpf_redirect(ifindex, 0);
}

/* TTL - 1, the next hop's MACs, out of ifindex: the forwarding of a routed packet. */
static __always_inline int sl_hr_fwd(struct __sk_buff *skb, const struct iphdr *ip, __u32 ifindex,
				     const __u8 *dmac, const __u8 *smac)
{
	if (sl_hr_ttl_dec(skb, ip->ttl))
		return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK);
	if (sl_hr_macs(skb, dmac, smac))
		return TC_ACT_SHOT; /* TTL already written: cannot hand back */
	return sl_hr_count(skb, SL_HR_C_FIB, sl_hr_xmit(skb, ifindex));
}

/*
 * A packet from a pod to a pod of another node: routed here as the node's stack would
 * route it (FIB lookup from the pod's veth), straight to the egress device (sl_hr_xmit).
 * TC_ACT_OK (the kernel path) when the FIB says anything but "forward": unreachable, MTU,
 * forwarding off, ... A usable answer is kept in sl_hr_nh_v1 for SL_HR_NH_TTL_NS (the bound
 * on how long a route or neighbour change can go unseen, abi/hostroute.h): the FIB and
 * neighbour lookups were the largest single cost of this path (~0.4 µs per packet in the
 * lab's perf profile), the cache is one lookup in a small per-CPU map.
 */
static __always_inline int sl_hr_fib_out(struct __sk_buff *skb, const struct iphdr *ip)
{
	struct sl_hr_nh_key nk = {
		.daddr = ip->daddr, .saddr = ip->saddr, .ifindex = skb->ifindex, .tos = ip->tos};
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct sl_hr_nh *c, nv = {};
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 mtu = 0;
	long rc;

	c = bpf_map_lookup_elem(&sl_hr_nh_v1, &nk);
	if (c && sl_since(now, c->filled_ns) < SL_HR_NH_TTL_NS) {
		nv = *c;
		/* What the lookup checked per packet and the cache cannot hold: the skb against the
		 * egress device's MTU (GSO-aware, as bpf_fib_lookup with tot_len 0). Too big: the
		 * stack, which answers with ICMP as it would have after the lookup. */
		if (bpf_check_mtu(skb, nv.ifindex, &mtu, 0, 0))
			return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK);
		return sl_hr_fwd(skb, ip, nv.ifindex, nv.dmac, nv.smac);
	}

	fib.family = SL_HR_AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	/* tot_len stays 0: with it the helper compares the IP length, which for a GSO packet
	 * from the pod's TCP is the whole super-packet; without it it checks the skb against
	 * the egress device as the stack would (segments for GSO). */
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ifindex;

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK);
	if (fib.ifindex == skb->ifindex)
		return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK); /* back out: the stack's case */
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		/* A failed insert only costs the next packet a lookup. */
		nv.filled_ns = now;
		nv.ifindex = fib.ifindex;
		__builtin_memcpy(nv.dmac, fib.dmac, SL_ETH_ALEN);
		__builtin_memcpy(nv.smac, fib.smac, SL_ETH_ALEN);
		bpf_map_update_elem(&sl_hr_nh_v1, &nk, &nv, BPF_ANY);
		return sl_hr_fwd(skb, ip, fib.ifindex, fib.dmac, fib.smac);
	}
	if (sl_hr_ttl_dec(skb, ip->ttl))
		return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK);
	/* No neighbour entry yet: the kernel resolves it for the next hop the FIB chose. */
	nh.nh_family = SL_HR_AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	return sl_hr_count(skb, SL_HR_C_FIB, bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0));
}

#endif
