/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load-balancing ABI: the single definition of every map key, value
 * and constant that the eBPF programs (bpf/*.bpf.c) and user space (agent,
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
#define SL_MAX_SERVICES 65536   /* svc4 frontends and revnat4 ids */
#define SL_MAX_BACKENDS 262144  /* backends4 */
#define SL_MAX_SLOTS    1048576 /* slots: blocks of backend ids */
#define SL_MAX_SLOTS_PER_SVC 4096
#define SL_MAX_AFFINITY 65536
#define SL_MAX_SOCK_REV 262144

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
	SL_SVC_F_CLUSTERIP = 1 << 0,   /* frontend is a ClusterIP */
	SL_SVC_F_NODEPORT = 1 << 1,    /* frontend is node address:nodePort (addr 0 = any local) */
	SL_SVC_F_EXTERNALIP = 1 << 2,  /* spec.externalIPs (only if local to the node) */
	SL_SVC_F_LOADBALANCER = 1 << 3, /* status.loadBalancer.ingress IP */
	SL_SVC_F_LOCAL_EXT = 1 << 4,   /* externalTrafficPolicy: Local */
	SL_SVC_F_LOCAL_INT = 1 << 5,   /* internalTrafficPolicy: Local (see SL_SCOPE_INT) */
	SL_SVC_F_AFFINITY = 1 << 6,    /* sessionAffinity: ClientIP, timeout in affinity_s */
	SL_SVC_F_TERMINATING = 1 << 7, /* slots hold serving-terminating fallback backends */
	SL_SVC_F_MAGLEV = 1 << 8,      /* pick via the maglev table (north-south) */
};

struct sl_svc_key {
	__be32 addr;  /* frontend address; 0 with SL_SVC_F_NODEPORT = any local address */
	__be16 port;  /* frontend port, network order */
	__u8 proto;   /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	__u8 scope;   /* enum sl_scope */
};

struct sl_svc_val {
	__u32 svc_id;     /* index into revnat4 and per-service counters */
	__u32 slot_base;  /* first index of this service's block in slots */
	__u16 count;      /* backends in the block; 0 = refuse (no endpoints) */
	__u16 flags;      /* enum sl_svc_flags */
	__u32 affinity_s; /* ClientIP affinity timeout, seconds */
	__u32 maglev_base; /* first index of this service's maglev table (if MAGLEV) */
	__u32 pad;
};

/* backends4[backend_id]. Id 0 is never used (0 = "none"). */
enum sl_backend_state {
	SL_BE_ACTIVE = 0,      /* ready */
	SL_BE_TERMINATING = 1, /* serving but terminating: kept for existing flows */
	SL_BE_GONE = 2,        /* removed; entry kept until no flow references it */
};

struct sl_backend {
	__be32 addr;
	__be16 port;    /* network order */
	__u8 proto;
	__u8 state;     /* enum sl_backend_state */
	__u32 node_id;  /* 0 = this node (local backend) */
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
	__u64 cookie;     /* bpf_get_socket_cookie */
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
	SL_R_NO_BACKEND = 1,     /* service with no endpoints: refused */
	SL_R_BACKEND_GONE = 2,   /* slot points at a removed backend */
	SL_R_SLOT_OOB = 3,       /* slot index outside the slots map */
	SL_R_CT_FULL = 4,
	SL_R_NAT_FAIL = 5,
	SL_R_MALFORMED = 6,      /* packet too short / bad header */
	SL_R_UNSUPPORTED = 7,    /* e.g. fragments, IP options where not handled */
	SL_R_MAX = 16,
};

/* Counters: PERCPU_ARRAY indexed by reason. */
struct sl_counter {
	__u64 packets;
	__u64 bytes;
};

#define SL_MAP_SVC4 "sl_svc4_v1"
#define SL_MAP_SLOTS "sl_slots_v1"
#define SL_MAP_BACKENDS4 "sl_be4_v1"
#define SL_MAP_REVNAT4 "sl_revnat4_v1"
#define SL_MAP_SOCK_REV4 "sl_sockrev4_v1"
#define SL_MAP_AFFINITY4 "sl_aff4_v1"
#define SL_MAP_COUNTERS "sl_counters_v1"

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

#endif
