/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NetworkPolicy ABI: the single definition of the maps that netpol/
 * (libnetpol, the compiler) fills through the agent and the tc programs on
 * the pod veths read. Why the maps look like this is in netpol/README.md;
 * in short:
 *
 *   endpoints  HASH  {family, addr}                 ──▶ {identity, ruleset[dir]}
 *   rules      LPM   {ruleset, peer, dir | proto | port prefix} ──▶ {verdict, policy}
 *   cidrs      LPM   {ruleset, dir, family | address prefix}    ──▶ {peer class}
 *
 * A connection from S to D (after service DNAT, first packet only; the
 * verdict is cached in conntrack) is checked twice: on the egress side with
 * S's egress rule set and D as the peer, on the ingress side with D's
 * ingress rule set and S as the peer. With R = endpoint(subject).ruleset[dir]:
 *   R == SL_NP_RS_NONE                              → allowed (not isolated)
 *   rules{R, identity(peer), dir, proto, port}      → allowed   (peer is a pod)
 *   rules{R, endpoint(peer).ns, dir, proto, port}   → allowed   (peer is a pod)
 *   rules{R, SL_NP_PEER_ANY_POD, dir, proto, port}  → allowed   (peer is a pod)
 *   rules{R, SL_NP_PEER_ANY, dir, proto, port}      → allowed   (rule without peers)
 *   rules{R, cidrs{R, dir, peer address}, dir, proto, port} → allowed (ipBlock;
 *                                                     pod addresses included)
 *   otherwise                                       → dropped, SL_R_POLICY_*
 * Every entry is an allow (NetworkPolicy has no deny); the rule value names
 * the policy that allowed for flow logs.
 *
 * Rule sets are interned by content: every identity whose computed rules
 * for a direction are equal shares one rule-set id, and a rule set's
 * entries never change while its id is in use. A change therefore adds a
 * new rule set, repoints endpoints, then removes the old one (make before
 * break; see netpol.h np_diff).
 *
 * Layouts have explicit padding and a _Static_assert on each size.
 * Addresses are 16 bytes with a family byte so IPv6 uses the same maps
 * (IPv4 in the first 4 bytes, the rest zero).
 */
#ifndef SLUICE_ABI_POLICY_H
#define SLUICE_ABI_POLICY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Capacities (entries). Sized for 1,000 policies x 1,000 pods with room;
 * the compiler fails closed (SL_NP_RS_FAILED) instead of exceeding them. */
#define SL_NP_MAX_ENDPOINTS 65536
#define SL_NP_MAX_RULES	    1048576
#define SL_NP_MAX_CIDRS	    262144

enum sl_np_dir {
	SL_NP_INGRESS = 0,
	SL_NP_EGRESS = 1,
	SL_NP_NDIRS = 2,
};

/* Address families in keys (the Linux values, spelled out so the BPF side
 * does not need the socket headers). */
#define SL_NP_AF_INET  2
#define SL_NP_AF_INET6 10

/*
 * Identity and peer numbers (one 32-bit space, the `peer` of a rule key):
 *   0                      SL_NP_PEER_ANY: a rule without peers (any address)
 *   1                      SL_NP_PEER_ANY_POD: every pod of every namespace
 *                          (`namespaceSelector: {}` alone), so that common
 *                          rule does not list, and churn with, every identity
 *   2 .. 255               reserved (world, host, ... for later use)
 *   256 .. 0x00ffffff      pod identities {namespace, labels, named ports}
 *   0x01000000 + n         CIDR class n of one rule set (value of the cidrs map)
 *   0x02000000 + n         every pod of namespace n (a namespace-only peer:
 *                          `namespaceSelector` without a podSelector, or
 *                          `podSelector: {}`), one entry per namespace instead
 *                          of one per identity; the endpoint entry names it
 *   0xffffffff             SL_NP_PEER_NONE: an address no ipBlock admits
 *                          (an `except` hole); never a rule key
 */
#define SL_NP_PEER_ANY	     0u
#define SL_NP_PEER_ANY_POD   1u
#define SL_NP_ID_MIN	     256u
#define SL_NP_ID_MAX	     0x00ffffffu
#define SL_NP_PEER_CIDR_BASE 0x01000000u
#define SL_NP_PEER_NS_BASE   0x02000000u
#define SL_NP_NS_MAX	     0x00ffffffu
#define SL_NP_PEER_NONE	     0xffffffffu

/* Rule-set ids: 0 = the direction is not isolated (everything allowed),
 * 1 = isolated with nothing allowed (`ingress: []`), 2 = isolated with
 * nothing allowed because a selecting policy or the rule set could not be
 * compiled (fail closed; a distinct id so drops say why), 3.. = interned
 * rule sets. 1 and 2 have no entries. */
#define SL_NP_RS_NONE	0u
#define SL_NP_RS_DENY	1u
#define SL_NP_RS_FAILED 2u
#define SL_NP_RS_MIN	3u

/* endpoints: one entry per pod address (every node's pods, so the ingress
 * side can resolve a remote source to its identity). HASH. */
struct sl_np_ep_key {
	__u8 family; /* SL_NP_AF_INET / SL_NP_AF_INET6 */
	__u8 pad[3];
	__u8 addr[16]; /* network order; IPv4 in addr[0..3] */
};

struct sl_np_ep_val {
	__u32 identity;		    /* SL_NP_ID_MIN .. SL_NP_ID_MAX */
	__u32 ruleset[SL_NP_NDIRS]; /* indexed by enum sl_np_dir */
	__u32 ns;		    /* SL_NP_PEER_NS_BASE + the pod's namespace number */
};

/*
 * rules: LPM_TRIE (BPF_F_NO_PREALLOC). The fields after prefixlen are
 * matched in memory order, so the exact part (ruleset, peer, dir) comes
 * first and the wildcardable part (proto, then port) last:
 *   prefixlen 72        any protocol, any port  (a rule without ports)
 *   prefixlen 80        one protocol, any port  (a port entry without port)
 *   prefixlen 80 + k    one protocol, ports whose top k bits equal `port`
 *                       (port..endPort ranges are split into such blocks)
 * A lookup uses prefixlen SL_NP_RULE_PLEN_FULL.
 */
struct sl_np_rule_key {
	__u32 prefixlen;
	__u32 ruleset; /* SL_NP_RS_MIN.. */
	__u32 peer;    /* identity, SL_NP_PEER_ANY or a CIDR class */
	__u8 dir;      /* enum sl_np_dir */
	__u8 proto;    /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	__be16 port;   /* destination port (after DNAT), network order */
};

#define SL_NP_RULE_PLEN_EXACT 72 /* ruleset + peer + dir */
#define SL_NP_RULE_PLEN_PROTO 80
#define SL_NP_RULE_PLEN_FULL  96

enum sl_np_verdict {
	SL_NP_ALLOW = 1,
};

struct sl_np_rule_val {
	__u32 policy; /* np id of the lowest-numbered policy that allows (flow logs) */
	__u8 verdict; /* enum sl_np_verdict */
	__u8 pad[3];
};

/* cidrs: LPM_TRIE (BPF_F_NO_PREALLOC) of the ipBlocks of one rule set.
 * Every cidr and every except of the rule set has an entry whose value is
 * the class of addresses whose longest match it is, so `except` holes are
 * entries too (peer SL_NP_PEER_NONE unless another ipBlock covers them). */
struct sl_np_cidr_key {
	__u32 prefixlen; /* SL_NP_CIDR_PLEN_BASE + address prefix length */
	__u32 ruleset;
	__u8 dir;
	__u8 family;
	__u8 pad[2];
	__u8 addr[16];
};

#define SL_NP_CIDR_PLEN_BASE 64 /* ruleset + dir + family + pad */

struct sl_np_cidr_val {
	__u32 peer; /* SL_NP_PEER_CIDR_BASE + class, or SL_NP_PEER_NONE */
};

/* Policy drop reasons, counter indices after enum sl_reason's block
 * (lb.h, below 16) so one array of SL_NP_R_MAX counts both. */
#define SL_R_POLICY_INGRESS 32 /* the destination's ingress rules admit nothing that matches */
#define SL_R_POLICY_EGRESS  33 /* the source's egress rules admit nothing that matches */
#define SL_R_POLICY_FAILED                                              \
	34 /* the subject's rule set is SL_NP_RS_FAILED: closed because \
	    * of a compile error, see the agent's log */
#define SL_NP_R_MAX 48

#define SL_MAP_NP_EP	"sl_np_ep_v1"
#define SL_MAP_NP_RULES "sl_np_rules_v1"
#define SL_MAP_NP_CIDRS "sl_np_cidrs_v1"

_Static_assert(sizeof(struct sl_np_ep_key) == 20, "sl_np_ep_key layout");
_Static_assert(sizeof(struct sl_np_ep_val) == 16, "sl_np_ep_val layout");
_Static_assert(sizeof(struct sl_np_rule_key) == 16, "sl_np_rule_key layout");
_Static_assert(sizeof(struct sl_np_rule_val) == 8, "sl_np_rule_val layout");
_Static_assert(sizeof(struct sl_np_cidr_key) == 28, "sl_np_cidr_key layout");
_Static_assert(sizeof(struct sl_np_cidr_val) == 4, "sl_np_cidr_val layout");

/*
 * Datapath-side maps of the enforcement program (bpf/lib/sl_policy.h), not
 * written by the compiler:
 *
 *   npct   LRU_HASH {saddr, daddr, sport, dport, proto, hook dir} -> verdict
 *          The policy conntrack: the first packet of a flow is decided and
 *          cached, keyed by the tuple as it crossed the veth (after service
 *          DNAT) and the direction it was checked in (SL_NP_EGRESS on the
 *          source pod's veth, SL_NP_INGRESS on the destination's), so both
 *          ends of a same-node flow keep separate verdicts. Replies and
 *          related ICMP errors match the reversed tuple of an ALLOW entry
 *          at the other direction: the key is normalised
 *          (sl_np_ct_key_norm) so that both are the same entry, one lookup
 *          for a packet in either direction.
 *          DENY entries only rate-limit flow events (a denied flow is
 *          re-evaluated on every packet, so a new allow takes effect on the
 *          next retransmission).
 *   npflow RINGBUF of struct sl_np_flow, one per decided flow (first packet),
 *          read by `sluicectl flows`.
 *   npctr  PERCPU_ARRAY[SL_NP_R_MAX] of struct sl_counter (lb.h): drops by
 *          SL_R_POLICY_* and allows by SL_NP_C_*.
 */
#define SL_NP_C_ALLOW	   40 /* a new flow allowed (not isolated, or a rule admits it) */
#define SL_NP_C_ALLOW_NODE 41 /* a new flow from this node (probes) allowed unchecked */
#define SL_NP_C_CACHED	   42 /* a packet passed by a cached ALLOW (or a reply / related ICMP) */
#define SL_NP_C_SELF	   43 /* a pod talking to its own address */

#define SL_NP_CT_ALLOW 1
#define SL_NP_CT_DENY  2

struct sl_np_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum sl_np_dir the flow was checked in */
	__u8 pad[2];
};

/*
 * A flow's tuple and direction (T, dir) and its reply's (reversed T, the other dir) are one
 * connection at one end: the key is written in the orientation with the lower (address,
 * port) as source, the direction flipped with the tuple, so both name the same entry.
 * Any fixed order works; raw network-order values are compared. Entries of programs before
 * this normalisation are stored in the tuple's orientation as it crossed the hook.
 */
static inline int sl_np_ct_key_ordered(const struct sl_np_ct_key *k)
{
	return k->saddr < k->daddr || (k->saddr == k->daddr && k->sport <= k->dport);
}

static inline void sl_np_ct_key_norm(struct sl_np_ct_key *k)
{
	__be32 a;
	__be16 p;

	if (sl_np_ct_key_ordered(k))
		return;
	a = k->saddr;
	k->saddr = k->daddr;
	k->daddr = a;
	p = k->sport;
	k->sport = k->dport;
	k->dport = p;
	k->dir = k->dir == SL_NP_INGRESS ? SL_NP_EGRESS : SL_NP_INGRESS;
}

struct sl_np_ct_val {
	__u64 last_seen_ns;
	__u32 policy; /* np id that allowed (0: not isolated / node / self) */
	__u8 verdict; /* SL_NP_CT_* */
	__u8 reason;  /* SL_R_POLICY_* of a DENY */
	__u8 pad[2];
};

/* One decision (ring buffer record). */
struct sl_np_flow {
	__u64 ts_ns; /* bpf_ktime_get_ns */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;     /* enum sl_np_dir: which side decided */
	__u8 verdict; /* SL_NP_CT_ALLOW / SL_NP_CT_DENY */
	__u8 reason;  /* counter index: SL_NP_C_* for allows, SL_R_POLICY_* for drops */
	__u32 policy; /* np id that allowed, 0 otherwise */
	__u32 ifindex;
	__u32 src_id; /* identities (0: not a known pod) */
	__u32 dst_id;
};

#define SL_NP_MAX_CT	 65536
#define SL_NP_FLOW_BYTES (256 * 1024)

#define SL_MAP_NP_CT   "sl_np_ct_v1"
#define SL_MAP_NP_FLOW "sl_np_flow_v1"
#define SL_MAP_NP_CTR  "sl_np_ctr_v1"

_Static_assert(sizeof(struct sl_np_ct_key) == 16, "sl_np_ct_key layout");
_Static_assert(sizeof(struct sl_np_ct_val) == 16, "sl_np_ct_val layout");
_Static_assert(sizeof(struct sl_np_flow) == 40, "sl_np_flow layout");

#endif
