/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load-balancing ABI: the single definition of every map key, value
 * and constant that the eBPF programs (bpf/<hook>_<role>.bpf.c) and user space (agent,
 * sluicectl, tests) share. Layouts have explicit padding so the bytes are
 * deterministic (hashing, verifier, bpftool dumps) and a _Static_assert on
 * each size. IPv4 maps now; IPv6 gets parallel *6 maps with the same values.
 *
 * Hot path (Katran-style): one HASH lookup on the frontend, then ARRAYs:
 *
 *   svc4 {addr, port, proto, scope} ──▶ svc_val {svc_id, slot_base, counts, flags}
 *        slots[slot_base + i]       ──▶ backend_id
 *        backends4[backend_id]      ──▶ {addr, port, proto, state}
 *        revnat4[svc_id]            ──▶ {vip, port}   (reverse translation)
 *
 * Atomic updates: the agent writes a fresh slot block, then flips the service
 * entry's slot_base/count in one map update, then frees the old block.
 *
 * Map names carry a layout version (sl_svc4_v1); a layout change bumps it
 * and the agent migrates.
 */
#ifndef SLUICE_ABI_LB_H
#define SLUICE_ABI_LB_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Capacities (entries). Sized for 10,000 services x 10 endpoints with room. */
#define SL_MAX_SERVICES	     65536   /* svc4 frontends and revnat4 ids */
#define SL_MAX_BACKENDS	     262144  /* backends4 */
#define SL_MAX_SLOTS	     1048576 /* slots: blocks of backend ids */
#define SL_MAX_SLOTS_PER_SVC 4096
#define SL_MAX_AFFINITY	     65536
#define SL_MAX_SOCK_REV	     262144

/* Frontend scope: eTP/iTP=Local (Cilium's two-scope idea). The EXT entry
 * lists backends used for traffic from outside the node's pods (or all
 * backends for Cluster policy); when SL_SVC_F_LOCAL_INT is set, in-node
 * clients look up the INT entry, which lists only node-local backends. */
enum sl_scope {
	SL_SCOPE_EXT = 0,
	SL_SCOPE_INT = 1,
};

/* svc_val.flags */
enum sl_svc_flags {
	SL_SVC_F_CLUSTERIP = 1 << 0,	/* frontend is a ClusterIP */
	SL_SVC_F_NODEPORT = 1 << 1,	/* frontend is node address:nodePort (addr 0 = any local) */
	SL_SVC_F_EXTERNALIP = 1 << 2,	/* spec.externalIPs (only if local to the node) */
	SL_SVC_F_LOADBALANCER = 1 << 3, /* status.loadBalancer.ingress IP */
	SL_SVC_F_LOCAL_EXT = 1 << 4,	/* externalTrafficPolicy: Local */
	SL_SVC_F_LOCAL_INT = 1 << 5,	/* internalTrafficPolicy: Local (see SL_SCOPE_INT) */
	SL_SVC_F_AFFINITY = 1 << 6,	/* sessionAffinity: ClientIP, timeout in affinity_s */
	SL_SVC_F_TERMINATING = 1 << 7,	/* slots hold serving-terminating fallback backends */
	SL_SVC_F_MAGLEV = 1 << 8,	/* pick via the maglev table (north-south) */
	SL_SVC_F_DROP = 1 << 9,		/* count 0 because a Local policy has no local endpoint
					 * while others exist elsewhere: the per-packet path drops
					 * silently (kube-proxy's behaviour) instead of rejecting;
					 * in-node clients (socket path) are still refused */
};

struct sl_svc_key {
	__be32 addr; /* frontend address; 0 with SL_SVC_F_NODEPORT = any local address */
	__be16 port; /* frontend port, network order */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	__u8 scope;  /* enum sl_scope */
};

struct sl_svc_val {
	__u32 svc_id;	   /* index into revnat4 and per-service counters */
	__u32 slot_base;   /* first index of this service's block in slots */
	__u16 count;	   /* backends in the block; 0 = refuse (no endpoints) */
	__u16 flags;	   /* enum sl_svc_flags */
	__u32 affinity_s;  /* ClientIP affinity timeout, seconds */
	__u32 maglev_base; /* first index of this service's maglev table (if MAGLEV) */
	__u32 pad;
};

/* backends4[backend_id]. Id 0 is never used (0 = "none"). */
enum sl_backend_state {
	SL_BE_ACTIVE = 0,      /* ready */
	SL_BE_TERMINATING = 1, /* serving but terminating: kept for existing flows */
	SL_BE_GONE = 2,	       /* removed; entry kept until no flow references it */
};

struct sl_backend {
	__be32 addr;
	__be16 port; /* network order */
	__u8 proto;
	__u8 state;    /* enum sl_backend_state */
	__u32 node_id; /* 0 = this node (local backend) */
};

/* revnat4[svc_id]: what a reply's source must be rewritten back to. */
struct sl_revnat {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* sock_rev: per-socket record written at connect/sendmsg so that
 * recvmsg/getpeername show the service address, and so backend removal can
 * find (and destroy) the sockets pointed at it. */
struct sl_sock_rev_key {
	__u64 cookie; /* bpf_get_socket_cookie */
	__be32 backend_addr;
	__be16 backend_port;
	__u16 pad;
};

struct sl_sock_rev_val {
	__be32 vip;
	__be16 vport;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
};

/* ClientIP session affinity. client is the source IP (per-packet path) or the
 * netns cookie's low bits folded in (socket path has no source address). */
struct sl_affinity_key {
	__u64 client;
	__u32 svc_id;
	__u32 pad;
};

struct sl_affinity_val {
	__u64 last_used_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 backend_id;
	__u32 pad;
};

/* Drop / refusal reasons, shared with metrics and sluicectl. Negative in
 * programs, positive as counter indices. */
enum sl_reason {
	SL_R_OK = 0,
	SL_R_NO_BACKEND = 1,   /* service with no endpoints: refused */
	SL_R_BACKEND_GONE = 2, /* slot points at a removed backend */
	SL_R_SLOT_OOB = 3,     /* slot index outside the slots map */
	SL_R_CT_FULL = 4,
	SL_R_NAT_FAIL = 5,
	SL_R_MALFORMED = 6,   /* packet too short / bad header */
	SL_R_UNSUPPORTED = 7, /* e.g. fragments, IP options where not handled */
	SL_R_MAX = 16,
};

/* Counters: PERCPU_ARRAY indexed by reason. */
struct sl_counter {
	__u64 packets;
	__u64 bytes;
};

#define SL_MAP_SVC4	 "sl_svc4_v1"
#define SL_MAP_SLOTS	 "sl_slots_v1"
#define SL_MAP_BACKENDS4 "sl_be4_v1"
#define SL_MAP_REVNAT4	 "sl_revnat4_v1"
#define SL_MAP_SOCK_REV4 "sl_sockrev4_v1"
#define SL_MAP_AFFINITY4 "sl_aff4_v1"
#define SL_MAP_COUNTERS	 "sl_counters_v1"

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct sl_svc_key) == 8, "sl_svc_key layout");
_Static_assert(sizeof(struct sl_svc_val) == 24, "sl_svc_val layout");
_Static_assert(sizeof(struct sl_backend) == 12, "sl_backend layout");
_Static_assert(sizeof(struct sl_revnat) == 8, "sl_revnat layout");
_Static_assert(sizeof(struct sl_sock_rev_key) == 16, "sl_sock_rev_key layout");
_Static_assert(sizeof(struct sl_sock_rev_val) == 16, "sl_sock_rev_val layout");
_Static_assert(sizeof(struct sl_affinity_key) == 16, "sl_affinity_key layout");
_Static_assert(sizeof(struct sl_affinity_val) == 16, "sl_affinity_val layout");
#endif

/* ---- North-south per-packet path (bpf/tc_nodeport.bpf.c) -----------------
 *
 * Maps owned by the uplink programs (the socket-LB programs never open them):
 *
 *   ct4_tcp / ct4_any {tuple, dir} ──▶ ct4_val   LRU; TCP apart so UDP floods
 *                                                 cannot evict TCP flows
 *   nat4 {nat addr/port, peer}     ──▶ nat4_val  LRU; SNAT reverse mapping,
 *                                                 insert-if-absent = port allocator
 *   maglev[maglev_base + h % M]    ──▶ backend_id ARRAY, M = SL_MAGLEV_M
 *   local4 {addr}                  ──▶ flags     node addresses (NodePort wildcard)
 *   node4[0]                       ──▶ node4_cfg SNAT address, port range, hash seed
 *   npctr[reason]                  ──▶ sl_counter PERCPU, N-S path only
 */
#define SL_MAX_CT	     262144 /* per CT map; LRU evicts the coldest when full */
#define SL_MAX_NAT	     131072 /* ~1/2 of CT: only SNATed (remote-backend) flows use it */
#define SL_MAX_LOCAL_ADDRS   256
#define SL_MAGLEV_M	     16381 /* Maglev table size (prime, >= 100 x backends for <=1% churn) */
#define SL_MAX_MAGLEV_TABLES 64	   /* default; the agent may raise max_entries before load */
#define SL_NAT_PORT_MIN	     61000 /* defaults when node4_cfg leaves the range 0: above */
#define SL_NAT_PORT_MAX	     65535 /*   Linux's default ephemeral range 32768-60999 */
#define SL_NAT_RETRIES	     16	   /* bounded port-allocation attempts per new flow */
#define SL_SCTP_CRC_MAX	     1480  /* largest SCTP packet (bytes from the SCTP header) rewritten */

/* Conntrack tuple as seen on the wire in one direction. FWD entries are keyed
 * by the client's packet (client -> frontend, seen at uplink ingress); REPLY
 * entries by the local backend's answer (backend -> client, seen at uplink
 * egress). SNATed flows have no REPLY entry: their replies are found in nat4. */
enum sl_ct_dir {
	SL_CT_DIR_FWD = 0,
	SL_CT_DIR_REPLY = 1,
};

struct sl_ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum sl_ct_dir */
	__u16 pad;
};

enum sl_ct_flags {
	SL_CT_F_SNAT = 1 << 0,	   /* source rewritten to nat_addr:nat_port (remote backend) */
	SL_CT_F_SEEN_FIN = 1 << 1, /* TCP FIN seen in either direction */
	SL_CT_F_SEEN_RST = 1 << 2, /* TCP RST seen in either direction */
};

/* Lifetimes (idle) after which an entry is treated as absent by the
 * datapath and may be deleted by the agent's GC. */
#define SL_CT_LIFETIME_TCP_S   21600 /* established TCP: 6 h */
#define SL_CT_LIFETIME_CLOSE_S 10    /* TCP after FIN/RST */
#define SL_CT_LIFETIME_ANY_S   60    /* UDP, SCTP */

/* One layout for both directions: everything needed to translate either way. */
struct sl_ct4_val {
	__u64 last_seen_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC), refreshed at most 1/s */
	__be32 fe_addr;	     /* frontend the client addressed (the node IP for NodePort) */
	__be32 client_addr;  /* client source address */
	__be32 backend_addr; /* chosen backend */
	__be32 nat_addr;     /* SNAT source toward the backend; 0 without SNAT */
	__be16 fe_port;
	__be16 client_port;
	__be16 backend_port;
	__be16 nat_port;  /* SNAT source port; 0 without SNAT */
	__u32 backend_id; /* backends4 index; re-selected if the backend is GONE */
	__u32 svc_id;
	__u16 flags; /* enum sl_ct_flags */
	__u16 pad;
	/* tc_pod only: non-zero once NetworkPolicy allowed the flow (bpf/lib/sl_ct.h
	 * sl_ct_np_*); 0 = not decided here. Other writers leave it 0. */
	__u32 np_ok;
};

/* nat4: reverse SNAT mapping, keyed as the backend's reply arrives
 * (peer = backend -> nat addr:port). Inserting with BPF_NOEXIST reserves the
 * port, so the map is also the allocator. */
struct sl_nat4_key {
	__be32 nat_addr;
	__be32 peer_addr;
	__be16 nat_port;
	__be16 peer_port;
	__u8 proto;
	__u8 pad[3];
};

struct sl_nat4_val {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__be32 orig_addr;   /* client address the reply goes back to */
	__be32 fe_addr;	    /* reply source is rewritten back to the frontend */
	__be16 orig_port;
	__be16 fe_port;
	__u32 pad;
};

/* local4[addr]: addresses owned by this node; a packet to one of them may
 * hit a NodePort wildcard (addr 0) frontend. */
struct sl_local4_val {
	__u32 flags; /* reserved, 0 */
};

/* node4[0]: per-node settings of the N-S path. */
struct sl_node4_cfg {
	__be32 snat_addr;   /* node address used as source toward remote backends; 0 = no SNAT */
	__u32 hash_seed;    /* flow-hash seed; must be equal on every node (Maglev consistency) */
	__u16 nat_port_min; /* host order, inclusive; 0 = SL_NAT_PORT_MIN */
	__u16 nat_port_max; /* host order, inclusive; 0 = SL_NAT_PORT_MAX */
	__u32 flags;	    /* reserved, 0 */
};

/* Reasons of the N-S path beyond the shared ones (counter indices). */
#define SL_R_FIB_FAIL  12 /* no route/neighbour for a packet that must be redirected */
#define SL_R_CSUM_FAIL 13 /* a checksum or store helper failed */
#define SL_R_REJECTED  14 /* no endpoints: a TCP RST / ICMP unreachable was sent */
#define SL_R_TOO_BIG   15 /* SCTP packet longer than SL_SCTP_CRC_MAX */

#define SL_MAP_CT4_TCP	   "sl_ct4_tcp_v1"
#define SL_MAP_CT4_ANY	   "sl_ct4_any_v1"
#define SL_MAP_NAT4	   "sl_nat4_v1"
#define SL_MAP_MAGLEV	   "sl_maglev_v1"
#define SL_MAP_LOCAL4	   "sl_local4_v1"
#define SL_MAP_NODE4	   "sl_node4_v1"
#define SL_MAP_NP_COUNTERS "sl_npctr_v1"

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct sl_ct4_key) == 16, "sl_ct4_key layout");
_Static_assert(sizeof(struct sl_ct4_val) == 48, "sl_ct4_val layout");
_Static_assert(sizeof(struct sl_nat4_key) == 16, "sl_nat4_key layout");
_Static_assert(sizeof(struct sl_nat4_val) == 24, "sl_nat4_val layout");
_Static_assert(sizeof(struct sl_local4_val) == 4, "sl_local4_val layout");
_Static_assert(sizeof(struct sl_node4_cfg) == 16, "sl_node4_cfg layout");
#endif

/*
 * Additions for the socket load balancer (cgroup_sock_lb.bpf.c).
 *
 * svcbe4 {svc_id, backend_id} -> u32: membership of a backend in a service
 * (either scope). The agent writes it for every service with ClientIP
 * affinity (SL_SVC_F_AFFINITY), before the slot block that uses the backend,
 * and deletes it after the last block using it is gone. The programs read it
 * only to validate an affinity hit (so only under SL_SVC_F_AFFINITY): a
 * client never sticks to a backend that left the service (Cilium's
 * "affinity match"). Services without affinity have no pairs.
 */
struct sl_svc_be_key {
	__u32 svc_id;
	__u32 backend_id;
};

/* The socket LB shares local4 (SL_MAP_LOCAL4, struct sl_local4_val) with the
 * uplink path for the NodePort wildcard match. Both objects define it as
 * BPF_MAP_TYPE_HASH, max_entries SL_MAX_LOCAL_ADDRS, no map_flags: pinned maps
 * are reused by name only when type, sizes and flags agree. */

/* cfg[0]: node-wide settings read by the programs. */
struct sl_lb_cfg {
	__u64 host_netns_cookie; /* SO_NETNS_COOKIE of the host netns; 0 = post_bind check off */
	__u32 flags;		 /* reserved, 0 */
	__u32 pad;
};

#define SL_MAX_SVC_BE SL_MAX_SLOTS

/* Reasons added for the socket LB (below SL_R_MAX). */
#define SL_R_BIND_NODEPORT 8 /* post_bind4: host bind on a NodePort refused */
#define SL_R_AFFINITY_HIT  9 /* connect/sendmsg used a valid affinity entry */

#define SL_MAP_SVC_BE4 "sl_svcbe4_v1"
#define SL_MAP_CFG     "sl_cfg_v1"

#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct sl_svc_be_key) == 8, "sl_svc_be_key layout");
_Static_assert(sizeof(struct sl_lb_cfg) == 16, "sl_lb_cfg layout");
#endif

/*
 * Per-pod socket-LB opt-out (pods annotated sluice.io/socket-lb: "off").
 *
 * sockoff {netns cookie} -> u32 (reserved, 0): the cgroup hooks leave sockets of these
 * network namespaces alone; tc_pod on the pod's host-side veth translates their service
 * traffic per packet instead, with the uplink path's conntrack maps (ct4_tcp/ct4_any,
 * REPLY entries for the reverse NAT; never SNAT: pod addresses route between nodes).
 * podctr: per-CPU counters of tc_pod by enum sl_reason.
 */
#define SL_MAX_SOCK_OFF 4096
#define SL_MAP_SOCK_OFF "sl_sockoff_v1"
#define SL_MAP_POD_CTR	"sl_podctr_v1"

#endif
