/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF host routing ABI (bpf/lib/sl_hostroute.h, agent/endpoint.c): the maps the pod
 * programs and the fabric program read to move pod-to-pod packets without the node's
 * IP stack (docs/datapath.md, "BPF host routing").
 *
 *   sl_hr_ep_v1    HASH  pod IPv4 (be32)          ──▶ struct sl_hr_ep (a pod of this node)
 *   sl_hr_cidr_v1  LPM   {prefixlen, be32 addr}   ──▶ __u8 1 (the cluster's podCIDRs)
 *   sl_hr_ctr_v1   PERCPU_ARRAY[SL_HR_C_MAX] of struct sl_counter (lb.h)
 *   sl_hr_dev_v1   PERCPU_HASH ifindex (u32)  ──▶ struct sl_hr_dev (the node's devices, e.g.
 *                                               a veth uplink whose peer is in another netns)
 *   sl_hr_npc_v1   ARRAY[1] of struct sl_hr_npc: NodePort flows of pod clients tracked here
 *   sl_hr_nh_v1    LRU_PERCPU_HASH struct sl_hr_nh_key ──▶ struct sl_hr_nh: the FIB's next hop
 *                                               for a pod's packets to a destination, kept for
 *                                               SL_HR_NH_TTL_NS (filled by the programs only)
 *
 * Written by the agent: sl_hr_ep_v1 at CNI ADD/DEL (after the pod's policy entries),
 * sl_hr_cidr_v1 from the Node objects (the same podCIDRs the routes and the masquerade
 * exemption use), sl_hr_dev_v1 when the fabric program is attached to --devices (the same
 * value on every CPU; the counters are per CPU); sl_hr_npc_v1 by tc_nodeport_ingress (and by
 * the agent at start, lib/sl_hr_maps.h). Traffic to anything else keeps the
 * kernel path.
 */
#ifndef SLUICE_ABI_HOSTROUTE_H
#define SLUICE_ABI_HOSTROUTE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SL_MAP_HR_EP   "sl_hr_ep_v1"
#define SL_MAP_HR_CIDR "sl_hr_cidr_v1"
#define SL_MAP_HR_CTR  "sl_hr_ctr_v1"
#define SL_MAP_HR_DEV  "sl_hr_dev_v1"
#define SL_MAP_HR_NPC  "sl_hr_npc_v1"
#define SL_MAP_HR_NH   "sl_hr_nh_v1"
/* Pin name prefix of the fabric program's TCX links: <pin_root>/sl_hr_link_<ifname>. */
#define SL_HR_LINK_PREFIX "sl_hr_link_"

#define SL_HR_MAX_EPS	4096
#define SL_HR_MAX_CIDRS 1024
#define SL_HR_MAX_DEVS	64
#define SL_HR_MAX_NH	8192

#define SL_HR_F_SVC 0x01 /* per-packet service path (socket LB off): reverse NAT on the way in */

struct sl_hr_ep {
	__u32 ifindex; /* the pod's host-side veth */
	__u8 flags;    /* SL_HR_F_* */
	__u8 pad;
	__u8 mac[6];	  /* the pod's interface (the peer of ifindex) */
	__u8 host_mac[6]; /* the host-side veth: the pod's gateway as it sees it */
	__u8 pad2[2];
};
_Static_assert(sizeof(struct sl_hr_ep) == 20, "sl_hr_ep layout");

struct sl_hr_cidr_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};
_Static_assert(sizeof(struct sl_hr_cidr_key) == 8, "sl_hr_cidr_key layout");

/*
 * A veth (kind "veth") whose peer lives in another netns: the node's uplink in kind-style
 * clusters and in the lab. A packet routed out of it is handed by bpf_redirect_peer to the
 * peer's receive path (what the veth's transmit would do after its backlog queue), from tc
 * ingress only. The device's own tc egress and qdisc are skipped with it: this flag also
 * says the agent knows what runs there (the uplink path's egress program, whose reverse
 * NAT case the fast path leaves to it).
 */
#define SL_HR_DEV_F_PEER 0x01

struct sl_hr_dev {
	__u32 flags; /* SL_HR_DEV_F_* */
	__u32 pad;
	__u64 peer_packets; /* sent by redirect_peer (this CPU's count) */
	__u64 peer_bytes;
};
_Static_assert(sizeof(struct sl_hr_dev) == 24, "sl_hr_dev layout");

/*
 * Raised (never lowered by the programs) before the uplink path inserts a REPLY conntrack
 * entry whose client is in a podCIDR, i.e. a NodePort connection from a pod to a local
 * backend. While it is 0 the pod path knows no reply of such a connection can exist and skips
 * the conntrack lookup before redirect_peer (lib/sl_hr_maps.h).
 */
struct sl_hr_npc {
	__u64 pod_client_flows; /* REPLY entries made for pod clients since the map was pinned;
				 * the agent writes 1 at start when it finds older ones */
};
_Static_assert(sizeof(struct sl_hr_npc) == 8, "sl_hr_npc layout");

/*
 * The next-hop cache: what bpf_fib_lookup answered for a pod's packets to a destination
 * (sl_hr_fib_out), reused for SL_HR_NH_TTL_NS instead of a FIB and neighbour lookup per packet.
 * The key is everything the lookup was given that can differ between packets of the pod path:
 * destination, source, the pod's veth (the input interface of policy routing) and TOS. Filled
 * only from a successful lookup with a resolved neighbour; per CPU, so a value is written and
 * read by one CPU and never seen half-written. The bound this puts on staleness: a route,
 * neighbour (MAC) or device change reaches a cached destination within SL_HR_NH_TTL_NS plus
 * one tick of the coarse clock (bpf_ktime_get_coarse_ns, at most 10 ms at HZ=100); the MTU is
 * still checked per packet (bpf_check_mtu), and a destination leaving the podCIDRs stops using
 * it at once (sl_hr_cidr_v1 is looked up first).
 */
#define SL_HR_NH_TTL_NS 50000000ULL /* 50 ms */

struct sl_hr_nh_key {
	__u32 daddr;   /* network byte order */
	__u32 saddr;   /* network byte order */
	__u32 ifindex; /* the pod's host veth the packet came in on */
	__u8 tos;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sl_hr_nh_key) == 16, "sl_hr_nh_key layout");

struct sl_hr_nh {
	__u64 filled_ns; /* bpf_ktime_get_coarse_ns() of the lookup; 0: never (this CPU) */
	__u8 dmac[6];	 /* the next hop's MAC */
	__u8 smac[6];	 /* the egress device's MAC */
	__u32 ifindex;	 /* the egress device */
};
_Static_assert(sizeof(struct sl_hr_nh) == 24, "sl_hr_nh layout");

/* Counter indices of sl_hr_ctr_v1 (SL_HR_C_FIB includes the packets sl_hr_dev_v1 counts
 * as sent by redirect_peer). */
#define SL_HR_C_FIB	 0 /* from a pod, sent to the next hop's device (bpf_redirect/_neigh) */
#define SL_HR_C_PEER_POD 1 /* from a pod, delivered into a pod of this node (redirect_peer) */
#define SL_HR_C_PEER_NET 2 /* from the fabric, delivered into a pod (redirect_peer) */
#define SL_HR_C_STACK	 3 /* eligible, left to the kernel (TTL, fragment, MTU, FIB result) */
#define SL_HR_C_MAX	 4

#endif
