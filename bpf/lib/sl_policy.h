/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NetworkPolicy enforcement on a pod's host-side veth (the maps and the
 * decision procedure are in abi/policy.h):
 *
 *   SL_NP_HOOK_FROM_POD  tc ingress of the host veth = the pod's egress:
 *                        the subject is the source, checked with its egress
 *                        rule set against the destination
 *   SL_NP_HOOK_TO_POD    tc egress of the host veth = the pod's ingress:
 *                        the subject is the destination, checked with its
 *                        ingress rule set against the source
 *
 * Per packet: a cached ALLOW for the tuple (this direction) or for the
 * reversed tuple (the other direction: a reply) passes, unless the packet is
 * a TCP SYN (a new connection, maybe on a reused tuple); the two are one
 * entry, found in one lookup (the key is normalised: sl_np_ct_key_norm in
 * abi/policy.h); an ICMP error whose
 * quoted packet belongs to an allowed flow passes (related); otherwise the
 * first packet of the flow is decided, cached, counted and reported on the
 * ring buffer. Runs after service translation (tc_pod DNATs first on the
 * way out of the pod, and reverse-NATs only after this check on the way
 * in), so peers are backends, never frontends.
 *
 * Always allowed: a pod talking to its own address; traffic from the node
 * the pod runs on (a packet leaving the host stack with a socket attached,
 * or from one of the node's addresses in sl_local4_v1): kubelet probes and
 * hostNetwork pods, as the API documents. An address with no endpoint entry
 * is not a pod: as a subject it is not isolated (the agent writes a new
 * pod's entry at CNI ADD, before the pod runs), as a peer it is matched by
 * ipBlocks and rules without peers only.
 */
#ifndef SLUICE_BPF_SL_POLICY_H
#define SLUICE_BPF_SL_POLICY_H

#include "lib/sl_defs.h"
#include "lib/sl_parse.h"
#include "lib/sl_svc_maps.h"
#include "abi/policy.h"

#define SL_NP_HOOK_TO_POD   SL_NP_INGRESS
#define SL_NP_HOOK_FROM_POD SL_NP_EGRESS

/* Idle lifetimes of cached verdicts: TCP long (established connections
 * survive policy changes, documented), others short so a new "connection"
 * of a connectionless protocol is decided against current policy soon. */
#define SL_NP_CT_TCP_NS	  (3600ULL * SL_NSEC_PER_SEC)
#define SL_NP_CT_OTHER_NS (60ULL * SL_NSEC_PER_SEC)
/* A denied flow is reported again after this long. */
#define SL_NP_DENY_REPORT_NS (10ULL * SL_NSEC_PER_SEC)
/* last_seen is refreshed at most this often (one write per flow per second). */
#define SL_NP_TOUCH_NS (1ULL * SL_NSEC_PER_SEC)

#define SL_IPPROTO_ICMP 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_NP_MAX_ENDPOINTS);
	__type(key, struct sl_np_ep_key);
	__type(value, struct sl_np_ep_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_ep_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_NP_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_np_rule_key);
	__type(value, struct sl_np_rule_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_rules_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_NP_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_np_cidr_key);
	__type(value, struct sl_np_cidr_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_cidrs_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_NP_MAX_CT);
	__type(key, struct sl_np_ct_key);
	__type(value, struct sl_np_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_ct_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SL_NP_FLOW_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_flow_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_NP_R_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_np_ctr_v1 SEC(".maps");

/* A flow as policy sees it. ICMP echo uses the identifier as both ports
 * (so request and reply are each other's reverse); other ICMP and
 * fragments have ports 0 (only rules without ports can admit them). */
struct sl_np_pkt {
	struct sl_np_ct_key k;
	bool syn;		   /* TCP SYN without ACK: a new connection, never cached */
	bool icmp_err;		   /* an ICMP error: inner is the quoted flow */
	struct sl_np_ct_key inner; /* the quoted packet's tuple, as it was sent */
};

static __always_inline int sl_np_count(struct __sk_buff *skb, __u32 idx, int verdict)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_np_ctr_v1, &idx);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	return verdict;
}

/* Ports of the L4 header at off (TCP/UDP/SCTP share the layout). */
static __always_inline int sl_np_ports(struct __sk_buff *skb, __u32 off, __be16 *sport,
				       __be16 *dport)
{
	__be16 p[2];

	if (bpf_skb_load_bytes(skb, off, p, sizeof(p)))
		return -1;
	*sport = p[0];
	*dport = p[1];
	return 0;
}

/*
 * 0 = parsed, 1 = not IPv4 (pass), -1 = malformed. *ipp is the IPv4 header after the Ethernet
 * header: read here (left untouched when the frame is not IPv4) unless ip_known says the caller
 * read it already (an IPv4 header with version 4 and ihl >= 5), so BPF host routing and policy
 * share one parse of the packet.
 */
static __always_inline int sl_np_parse(struct __sk_buff *skb, struct sl_np_pkt *p,
				       struct iphdr *ipp, bool ip_known)
{
	struct ethhdr eth;
	struct iphdr ip, in;
	__u32 off;
	__u8 icmp[8];

	if (ip_known) {
		ip = *ipp;
	} else {
		if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
			return -1;
		if (eth.h_proto != bpf_htons(SL_ETH_P_IP))
			return 1;
		if (bpf_skb_load_bytes(skb, SL_ETH_HLEN, &ip, sizeof(ip)) || ip.version != 4 ||
		    ip.ihl < 5)
			return -1;
		*ipp = ip;
	}
	p->k.saddr = ip.saddr;
	p->k.daddr = ip.daddr;
	p->k.proto = ip.protocol;
	/* Later fragments carry no L4 header: ports 0. */
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;
	off = SL_ETH_HLEN + ip.ihl * 4;
	switch (ip.protocol) {
	case IPPROTO_TCP: {
		/* ports, seq, ack, data offset, flags */
		__u8 th[14];

		if (bpf_skb_load_bytes(skb, off, th, sizeof(th)))
			return -1;
		__builtin_memcpy(&p->k.sport, &th[0], 2);
		__builtin_memcpy(&p->k.dport, &th[2], 2);
		p->syn = (th[13] & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN;
		return 0;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (sl_np_ports(skb, off, &p->k.sport, &p->k.dport))
			return -1;
		return 0;
	case SL_IPPROTO_ICMP:
		if (bpf_skb_load_bytes(skb, off, icmp, sizeof(icmp)))
			return -1;
		if (icmp[0] == 0 || icmp[0] == 8) { /* echo reply / request */
			__builtin_memcpy(&p->k.sport, &icmp[4], 2);
			p->k.dport = p->k.sport;
			return 0;
		}
		if (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12)
			return 0;
		/* Destination unreachable, time exceeded, parameter problem: the
		 * quoted header names the flow it is about. */
		off += 8;
		if (bpf_skb_load_bytes(skb, off, &in, sizeof(in)) || in.version != 4 || in.ihl < 5)
			return 0;
		p->inner.saddr = in.saddr;
		p->inner.daddr = in.daddr;
		p->inner.proto = in.protocol;
		if (in.protocol == IPPROTO_TCP || in.protocol == IPPROTO_UDP ||
		    in.protocol == IPPROTO_SCTP) {
			if (sl_np_ports(skb, off + in.ihl * 4, &p->inner.sport, &p->inner.dport))
				return 0;
		} else if (in.protocol == SL_IPPROTO_ICMP) {
			if (bpf_skb_load_bytes(skb, off + in.ihl * 4, icmp, sizeof(icmp)))
				return 0;
			__builtin_memcpy(&p->inner.sport, &icmp[4], 2);
			p->inner.dport = p->inner.sport;
		}
		p->icmp_err = true;
		return 0;
	default:
		return 0;
	}
}

static __always_inline const struct sl_np_ep_val *sl_np_ep(__be32 addr)
{
	struct sl_np_ep_key k = {.family = SL_NP_AF_INET};

	__builtin_memcpy(k.addr, &addr, 4);
	return bpf_map_lookup_elem(&sl_np_ep_v1, &k);
}

static __always_inline bool sl_np_rule(__u32 rs, __u32 peer, __u8 dir, __u8 proto, __be16 port,
				       __u32 *policy)
{
	struct sl_np_rule_key k = {
		.prefixlen = SL_NP_RULE_PLEN_FULL,
		.ruleset = rs,
		.peer = peer,
		.dir = dir,
		.proto = proto,
		.port = port,
	};
	struct sl_np_rule_val *v = bpf_map_lookup_elem(&sl_np_rules_v1, &k);

	if (!v || v->verdict != SL_NP_ALLOW)
		return false;
	*policy = v->policy;
	return true;
}

/* One side of the check (abi/policy.h): 0 = allowed, else SL_R_POLICY_*. */
static __always_inline __u8 sl_np_side(const struct sl_np_ep_val *subj, __u8 dir, __be32 peer_addr,
				       const struct sl_np_ep_val *peer, __u8 proto, __be16 port,
				       __u32 *policy)
{
	struct sl_np_cidr_key ck = {
		.prefixlen = SL_NP_CIDR_PLEN_BASE + 32,
		.dir = dir,
		.family = SL_NP_AF_INET,
	};
	struct sl_np_cidr_val *cv;
	__u8 deny = dir == SL_NP_INGRESS ? SL_R_POLICY_INGRESS : SL_R_POLICY_EGRESS;
	__u32 rs;

	if (!subj)
		return 0;
	rs = dir == SL_NP_INGRESS ? subj->ruleset[SL_NP_INGRESS] : subj->ruleset[SL_NP_EGRESS];
	if (rs == SL_NP_RS_NONE)
		return 0;
	if (rs == SL_NP_RS_FAILED)
		return SL_R_POLICY_FAILED;
	if (rs == SL_NP_RS_DENY)
		return deny;
	if (peer && (sl_np_rule(rs, peer->identity, dir, proto, port, policy) ||
		     sl_np_rule(rs, peer->ns, dir, proto, port, policy) ||
		     sl_np_rule(rs, SL_NP_PEER_ANY_POD, dir, proto, port, policy)))
		return 0;
	if (sl_np_rule(rs, SL_NP_PEER_ANY, dir, proto, port, policy))
		return 0;
	ck.ruleset = rs;
	__builtin_memcpy(ck.addr, &peer_addr, 4);
	cv = bpf_map_lookup_elem(&sl_np_cidrs_v1, &ck);
	if (cv && cv->peer != SL_NP_PEER_NONE && sl_np_rule(rs, cv->peer, dir, proto, port, policy))
		return 0;
	return deny;
}

static __always_inline void sl_np_report(__u32 ifindex, const struct sl_np_ct_key *k, __u8 verdict,
					 __u8 reason, __u32 policy, __u32 src_id, __u32 dst_id,
					 __u64 now)
{
	struct sl_np_flow f = {
		.ts_ns = now,
		.saddr = k->saddr,
		.daddr = k->daddr,
		.sport = k->sport,
		.dport = k->dport,
		.proto = k->proto,
		.dir = k->dir,
		.verdict = verdict,
		.reason = reason,
		.policy = policy,
		.ifindex = ifindex,
		.src_id = src_id,
		.dst_id = dst_id,
	};

	/* A full ring drops the record, never the packet. Nobody reading it (no `sluicectl
	 * flows`) is the usual case: the unread bytes are read without the ring's lock, whose
	 * irqsave/restore a failed reserve would pay per decided flow (8: the record header). */
	if (bpf_ringbuf_query(&sl_np_flow_v1, BPF_RB_AVAIL_DATA) + sizeof(f) + 8 > SL_NP_FLOW_BYTES)
		return;
	bpf_ringbuf_output(&sl_np_flow_v1, &f, sizeof(f), 0);
}

static __always_inline bool sl_np_ct_alive(const struct sl_np_ct_val *v, __u8 proto, __u64 now)
{
	__u64 life = proto == IPPROTO_TCP ? SL_NP_CT_TCP_NS : SL_NP_CT_OTHER_NS;

	return v->verdict == SL_NP_CT_ALLOW && now - v->last_seen_ns < life;
}

/* A cached ALLOW under exactly key k (refreshed); false when none. */
static __always_inline bool sl_np_ct_hit_key(const struct sl_np_ct_key *k, __u64 now)
{
	struct sl_np_ct_val *v = bpf_map_lookup_elem(&sl_np_ct_v1, k);

	if (!v || !sl_np_ct_alive(v, k->proto, now))
		return false;
	if (now - v->last_seen_ns > SL_NP_TOUCH_NS)
		v->last_seen_ns = now;
	return true;
}

static __always_inline void sl_np_reverse(struct sl_np_ct_key *r, const struct sl_np_ct_key *k,
					  __u8 dir)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->dir = dir;
}

/*
 * A cached ALLOW for the flow (k, k->dir) or its reply: the normalised key, then, when that
 * misses and k is not its own normalised form, k itself: entries written before the key was
 * normalised (pinned map kept across an agent upgrade) are under the tuple as it was checked,
 * and established connections must survive the upgrade. That extra lookup is paid only on a
 * miss, i.e. by packets that are decided anyway, until the old entries idle out.
 */
static __always_inline bool sl_np_ct_hit(const struct sl_np_ct_key *k, __u64 now)
{
	struct sl_np_ct_key n = {};

	if (sl_np_ct_key_ordered(k))
		return sl_np_ct_hit_key(k, now);
	/* sl_np_ct_key_norm(), written field by field: cheaper than copy and swap. */
	sl_np_reverse(&n, k, k->dir == SL_NP_INGRESS ? SL_NP_EGRESS : SL_NP_INGRESS);
	return sl_np_ct_hit_key(&n, now) || sl_np_ct_hit_key(k, now);
}

/*
 * Did the packet come from this node? Either it leaves a socket of the host
 * stack (forwarded packets have none: crossing a netns orphans them; the
 * host veth's own gateway address is what such probes carry as source), or
 * its source is one of the node's addresses. BPF_PROG_TEST_RUN attaches a
 * dummy socket with no protocol, which does not count.
 */
static __always_inline bool sl_np_from_node(struct __sk_buff *skb, __be32 saddr, bool node_sk)
{
	struct bpf_sock *sk = node_sk ? skb->sk : NULL;

	if (sk) {
		sk = bpf_sk_fullsock(sk);
		if (sk && sk->protocol)
			return true;
	}
	return bpf_map_lookup_elem(&sl_local4_v1, &saddr) != NULL;
}

/*
 * The verdict for one packet at hook (SL_NP_HOOK_*) of the pod whose host veth is ifindex
 * (reported in flow records). node_sk: a socket on the skb means the node's stack sent it,
 * true on the veth itself; BPF host routing (lib/sl_hostroute.h) decides TO_POD before the
 * packet ever reached the node's stack, where the skb may still carry the sending pod's
 * socket (veth and bridge keep skb->sk across netns, only ip_rcv orphans), so it passes
 * false and only the node's addresses count as the node. cache_allow: an ALLOW is cached in
 * sl_np_ct_v1; false when the caller keeps it itself (tc_pod: a service-translated flow
 * keeps it in its conntrack entries, lib/sl_ct.h sl_ct_np_*). A DENY is always cached (it
 * only rate-limits the flow records).
 */
static __always_inline int sl_np_enforce_at(struct __sk_buff *skb, __u8 hook, __u32 ifindex,
					    bool node_sk, struct iphdr *ip, bool ip_known,
					    bool cache_allow)
{
	__u8 other = hook == SL_NP_HOOK_TO_POD ? SL_NP_HOOK_FROM_POD : SL_NP_HOOK_TO_POD;
	const struct sl_np_ep_val *src, *dst, *subj;
	struct sl_np_ct_val nv = {}, *dv;
	struct sl_np_pkt p = {};
	struct sl_np_ct_key r = {}, nk;
	__u32 policy = 0, cidx;
	__u8 reason;
	__u64 now;
	int ret;

	ret = sl_np_parse(skb, &p, ip, ip_known);
	if (ret > 0)
		return TC_ACT_OK;
	if (ret < 0)
		return sl_np_count(skb, SL_R_MALFORMED, TC_ACT_SHOT);
	now = bpf_ktime_get_ns();
	p.k.dir = hook;

	/*
	 * A SYN opens a new connection, even on a tuple a closed one used (the client reuses
	 * its ephemeral ports, connection after connection): the cache would admit it by the
	 * old connection's verdict for as long as the entry lives (SL_NP_CT_TCP_NS), after a
	 * policy that denies it now. So it is decided, and its verdict replaces the entry.
	 * A retransmitted SYN is decided again: current policy, one more lookup.
	 */
	if (!p.syn) {
		/* Both directions of the flow: one lookup. */
		if (sl_np_ct_hit(&p.k, now))
			return sl_np_count(skb, SL_NP_C_CACHED, TC_ACT_OK);
		/* An old entry (sl_np_ct_hit) of the reply direction: under the reversed
		 * tuple, unless that is the normalised key just looked up (one of the two
		 * orientations is, except for a tuple that is its own reverse). */
		sl_np_reverse(&r, &p.k, other);
		if (sl_np_ct_key_ordered(&p.k) && sl_np_ct_hit_key(&r, now))
			return sl_np_count(skb, SL_NP_C_CACHED, TC_ACT_OK);
	}
	if (p.icmp_err) {
		/* Related: the quoted packet was sent in the other direction of
		 * a flow this hook's pod is part of. */
		p.inner.dir = other;
		if (sl_np_ct_hit(&p.inner, now))
			return sl_np_count(skb, SL_NP_C_CACHED, TC_ACT_OK);
	}

	src = sl_np_ep(p.k.saddr);
	dst = sl_np_ep(p.k.daddr);
	if (p.k.saddr == p.k.daddr) {
		cidx = SL_NP_C_SELF;
		reason = 0;
	} else if (hook == SL_NP_HOOK_TO_POD && sl_np_from_node(skb, p.k.saddr, node_sk)) {
		cidx = SL_NP_C_ALLOW_NODE;
		reason = 0;
	} else {
		subj = hook == SL_NP_HOOK_TO_POD ? dst : src;
		reason = sl_np_side(subj, hook, hook == SL_NP_HOOK_TO_POD ? p.k.saddr : p.k.daddr,
				    hook == SL_NP_HOOK_TO_POD ? src : dst, p.k.proto, p.k.dport,
				    &policy);
		cidx = reason ? reason : SL_NP_C_ALLOW;
	}

	nk = p.k;
	sl_np_ct_key_norm(&nk);
	if (!reason) {
		nv.last_seen_ns = now;
		nv.policy = policy;
		nv.verdict = SL_NP_CT_ALLOW;
		/* A full LRU evicts; a failed insert only costs a re-decision. */
		if (cache_allow)
			bpf_map_update_elem(&sl_np_ct_v1, &nk, &nv, BPF_ANY);
		sl_np_report(ifindex, &p.k, SL_NP_CT_ALLOW, cidx, policy, src ? src->identity : 0,
			     dst ? dst->identity : 0, now);
		return sl_np_count(skb, cidx, TC_ACT_OK);
	}
	/* Denied: report once per flow (per SL_NP_DENY_REPORT_NS). */
	dv = bpf_map_lookup_elem(&sl_np_ct_v1, &nk);
	if (!dv || dv->verdict != SL_NP_CT_DENY || now - dv->last_seen_ns > SL_NP_DENY_REPORT_NS) {
		nv.last_seen_ns = now;
		nv.verdict = SL_NP_CT_DENY;
		nv.reason = reason;
		bpf_map_update_elem(&sl_np_ct_v1, &nk, &nv, BPF_ANY);
		sl_np_report(ifindex, &p.k, SL_NP_CT_DENY, reason, 0, src ? src->identity : 0,
			     dst ? dst->identity : 0, now);
	}
	return sl_np_count(skb, reason, TC_ACT_SHOT);
}

/* The verdict for one packet on a pod's host veth at hook (SL_NP_HOOK_*); cache_allow as
 * sl_np_enforce_at's. */
static __always_inline int sl_np_enforce(struct __sk_buff *skb, __u8 hook, bool cache_allow)
{
	struct iphdr ip;

	return sl_np_enforce_at(skb, hook, skb->ifindex, true, &ip, false, cache_allow);
}

/* sl_np_enforce, and the IPv4 header it read in *ip for what runs next on the packet
 * (ip->version is 0 when the frame is not IPv4; with TC_ACT_OK it is otherwise the header as
 * parsed: version 4, ihl >= 5). */
static __always_inline int sl_np_enforce_ip(struct __sk_buff *skb, __u8 hook, struct iphdr *ip,
					    bool cache_allow)
{
	ip->version = 0;
	return sl_np_enforce_at(skb, hook, skb->ifindex, true, ip, false, cache_allow);
}

#endif
