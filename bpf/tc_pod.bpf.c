// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-packet service translation for pods that opted out of the socket LB
 * (annotation sluice.io/socket-lb: "off"), on the pod's host-side veth:
 *
 *   ingress (from the pod)  P:p -> F:f  frontend (ClusterIP, NodePort on a
 *            node address, LB IP, externalIP; the in-node view, as the socket
 *            LB: LOCAL_INT/LOCAL_EXT entries use the INT scope)
 *            CT hit -> same backend (unless GONE); miss -> slot by flow hash
 *            DNAT to B:b, keep P (pod addresses route between nodes: no SNAT),
 *            REPLY CT entry {B:b -> P:p}, TC_ACT_OK into the host stack
 *            no endpoints: TCP RST / ICMP unreachable straight back to the pod
 *   egress (to the pod)     B:b -> P:p with a REPLY CT entry: src -> F:f
 *            ICMP errors quoting P:p -> B:b: the quote back to P:p -> F:f
 *            (and the error's source, when B sent it), as conntrack's NAT does
 *
 * The conntrack, service and backend maps are the uplink path's (shared by
 * pin name, lib/sl_svc_maps.h and lib/sl_ct.h), so the agent's conntrack GC
 * and `sluicectl conntrack list` see these flows too. Outcomes are counted in
 * sl_podctr_v1 by enum sl_reason.
 *
 * NetworkPolicy is enforced on the same veth by the same programs (after
 * DNAT out of the pod, before reverse NAT into it); pods that keep the
 * socket LB get tc_pol_ingress/tc_pol_egress, policy only. A translated
 * flow's first packet is decided after the DNAT and only an ALLOW creates its
 * CT entries, which then carry the verdict for both directions instead of the
 * policy cache (lib/sl_ct.h sl_ct_np_*); SYNs are always decided.
 *
 * The clock is bpf_ktime_get_coarse_ns() (CT ages are seconds; the fine clock
 * costs a paravirt clock read per packet), read through sl_since.
 *
 * BPF host routing (lib/sl_hostroute.h, --host-routing bpf): after the
 * ingress programs passed a packet, pod-to-pod traffic leaves by redirect
 * instead of the node's stack; tc_hr_fabric (TCX ingress of the node's
 * devices) delivers packets from other nodes straight into local pods. A
 * delivery into a pod skips that pod's tc egress, so hr_deliver runs what
 * it would have run, in the same order: the pod's ingress policy, then the
 * reverse NAT for opted-out pods.
 */
#include "lib/sl_defs.h"
#include "lib/sl_hash.h"
#include "lib/sl_parse.h"
#include "lib/sl_csum.h"
#include "lib/sl_crc32c.h"
#include "lib/sl_svc_maps.h"
#include "lib/sl_ct.h"
#include "lib/sl_reject.h"
#include "lib/sl_policy.h"
#include "lib/sl_hostroute.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define POD_PICK_TRIES 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_R_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_podctr_v1 SEC(".maps");

static __always_inline int pod_verdict(struct __sk_buff *skb, __u32 reason, int verdict)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_podctr_v1, &reason);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	return verdict;
}

/* The frontend a pod addressed, as the socket LB resolves it (cgroup_sock_lb
 * sl_svc4_lookup): exact, then the NodePort wildcard for local addresses; the
 * INT scope for LOCAL_INT/LOCAL_EXT entries. *refuse: a service without a
 * usable entry (iTP=Local with no local endpoint). */
static __always_inline const struct sl_svc_val *pod_svc_lookup(const struct sl_pkt4 *pkt,
							       bool *refuse)
{
	struct sl_svc_key k = {
		.addr = pkt->daddr,
		.port = pkt->dport,
		.proto = pkt->proto,
		.scope = SL_SCOPE_EXT,
	};
	const struct sl_svc_val *svc;

	svc = bpf_map_lookup_elem(&sl_svc4_v1, &k);
	if (!svc && bpf_map_lookup_elem(&sl_local4_v1, &pkt->daddr)) {
		k.addr = 0;
		svc = bpf_map_lookup_elem(&sl_svc4_v1, &k);
		if (svc && !(svc->flags & SL_SVC_F_NODEPORT))
			return NULL;
	}
	if (!svc)
		return NULL;
	if (svc->flags & (SL_SVC_F_LOCAL_INT | SL_SVC_F_LOCAL_EXT)) {
		k.scope = SL_SCOPE_INT;
		svc = bpf_map_lookup_elem(&sl_svc4_v1, &k);
		if (!svc)
			*refuse = true;
	}
	return svc;
}

static __always_inline int pod_l4_fixup(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	if (pkt->proto != IPPROTO_SCTP)
		return 0;
	return sl_sctp_csum_update(skb, pkt->l4_off, pkt->l4_len);
}

/* A slot by flow hash, skipping slots whose backend is GONE; 0 when none. */
static __always_inline __u32 pod_slot_pick(const struct sl_svc_val *svc, __u32 hash)
{
	__u32 count = svc->count, idx = hash % count, i;

	for (i = 0; i < POD_PICK_TRIES && i < count; i++) {
		__u32 slot = svc->slot_base + idx;
		const struct sl_backend *be;
		__u32 *id = bpf_map_lookup_elem(&sl_slots_v1, &slot);

		if (!id)
			return 0;
		be = bpf_map_lookup_elem(&sl_be4_v1, id);
		if (*id && be && be->state != SL_BE_GONE)
			return *id;
		idx = idx + 1 == count ? 0 : idx + 1;
	}
	return 0;
}

/* DNAT to the flow's backend: 0, or the verdict of a failed rewrite (counted). */
static __always_inline int pod_dnat(struct __sk_buff *skb, struct sl_pkt4 *pkt,
				    const struct sl_ct4_val *ct)
{
	int err = sl_csum_nat(skb, pkt, false, ct->backend_addr, ct->backend_port);

	if (!err)
		err = pod_l4_fixup(skb, pkt);
	return err ? pod_verdict(skb, -err, TC_ACT_SHOT) : 0;
}

/* A packet of a translated flow, as the translation leaves it for the policy step. */
struct pod_flow {
	struct sl_ct4_val *ct; /* established: its CT entry for this direction; NULL: none */
	__u64 now;
	bool np_passed; /* established, allowed by policy (sl_ct_np_passed), not a TCP SYN */
	bool decided;	/* a new flow: policy already decided it (FROM_POD), *ip is its header */
	/* An ICMP error to the pod quoting a packet of the flow ct belongs to (pod_reply_icmp):
	 * the quote's protocol, where the ICMP header (the quoted IPv4 header follows it)
	 * and the quoted ports are. Bytes (both are under 150): the struct keeps its size,
	 * tc_pod_ingress's stack is near the 512-byte limit. */
	bool icmp;
	__u8 in_proto, icmp_off, in_l4;
};

static __always_inline void pod_flow_set(struct pod_flow *pf, struct sl_ct4_val *ct,
					 const struct sl_pkt4 *pkt, __u64 now)
{
	pf->ct = ct;
	pf->now = now;
	/* A SYN is always decided by policy (a new connection, maybe on a reused tuple). */
	pf->np_passed =
		(pkt->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) != SL_TCP_SYN && sl_ct_np_passed(ct);
}

/* Service translation of a packet from the pod (see the top). An established flow's packet
 * is DNATed and *pf filled for the policy step; a new flow's is DNATed, decided by policy
 * (its header left in *ip, pf->decided) and, allowed, given its CT entries. */
static __always_inline int pod_translate(struct __sk_buff *skb, struct pod_flow *pf,
					 struct iphdr *ip)
{
	struct sl_ct4_key fk, rk = {};
	struct sl_ct4_val *ct, nct = {};
	struct sl_affinity_key ak = {};
	const struct sl_svc_val *svc;
	const struct sl_backend *be;
	struct sl_pkt4 pkt = {};
	bool refuse = false;
	__u32 be_id = 0;
	__u64 now;
	int ret;

	ret = sl_parse4(skb, &pkt);
	if (ret == SL_PARSE_PASS)
		return TC_ACT_OK;
	if (ret < 0)
		return pod_verdict(skb, -ret, TC_ACT_OK);
	svc = pod_svc_lookup(&pkt, &refuse);
	if (!svc && !refuse)
		return TC_ACT_OK;
	now = bpf_ktime_get_coarse_ns();

	sl_ct_key_from_pkt(&fk, &pkt, SL_CT_DIR_FWD);
	ct = bpf_map_lookup_elem(sl_ct_map(pkt.proto), &fk);
	if (ct && svc) {
		be_id = ct->backend_id;
		be = bpf_map_lookup_elem(&sl_be4_v1, &be_id);
		bool reopen = (pkt.tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN &&
			      (ct->flags & (SL_CT_F_SEEN_FIN | SL_CT_F_SEEN_RST));

		if (sl_ct_alive(ct, pkt.proto, now) && !reopen && be && be->state != SL_BE_GONE &&
		    be->addr == ct->backend_addr && be->port == ct->backend_port) {
			sl_ct_touch(ct, &pkt, now);
			pod_flow_set(pf, ct, &pkt, now);
			ret = pod_dnat(skb, &pkt, ct);
			return ret ? ret : pod_verdict(skb, SL_R_OK, TC_ACT_OK);
		}
		rk.saddr = ct->backend_addr;
		rk.daddr = ct->client_addr;
		rk.sport = ct->backend_port;
		rk.dport = ct->client_port;
		rk.proto = pkt.proto;
		rk.dir = SL_CT_DIR_REPLY;
		bpf_map_delete_elem(sl_ct_map(pkt.proto), &rk);
		be_id = 0;
	}

	if (!svc || !svc->count) {
		/* No endpoints: refuse at once, as the socket LB's ECONNREFUSED. */
		if (svc && (svc->flags & SL_SVC_F_DROP))
			return pod_verdict(skb, SL_R_NO_BACKEND, TC_ACT_SHOT);
		ret = sl_reject(skb, &pkt);
		if (ret)
			return pod_verdict(skb, -ret, TC_ACT_SHOT);
		pod_verdict(skb, SL_R_NO_BACKEND, 0);
		return pod_verdict(skb, SL_R_REJECTED, bpf_redirect(skb->ifindex, 0));
	}

	if (svc->flags & SL_SVC_F_AFFINITY) {
		ak.client = pkt.saddr;
		ak.svc_id = svc->svc_id;
		be_id = sl_affinity_get(svc, &ak, now);
	}
	if (!be_id)
		be_id = pod_slot_pick(svc, sl_hash_flow4(pkt.saddr, pkt.daddr, pkt.sport, pkt.dport,
							 pkt.proto, 0));
	be = be_id ? bpf_map_lookup_elem(&sl_be4_v1, &be_id) : NULL;
	if (!be || be->state == SL_BE_GONE || be->addr == 0)
		return pod_verdict(skb, SL_R_BACKEND_GONE, TC_ACT_SHOT);
	if (svc->flags & SL_SVC_F_AFFINITY) {
		struct sl_affinity_val av = {.last_used_ns = now, .backend_id = be_id};

		bpf_map_update_elem(&sl_aff4_v1, &ak, &av, BPF_ANY);
	}

	nct.last_seen_ns = now;
	nct.fe_addr = pkt.daddr;
	nct.fe_port = pkt.dport;
	nct.client_addr = pkt.saddr;
	nct.client_port = pkt.sport;
	nct.backend_addr = be->addr;
	nct.backend_port = be->port;
	nct.backend_id = be_id;
	nct.svc_id = svc->svc_id;
	sl_ct_touch(&nct, &pkt, now);
	rk.saddr = be->addr;
	rk.daddr = pkt.saddr;
	rk.sport = be->port;
	rk.dport = pkt.sport;
	rk.proto = pkt.proto;
	rk.dir = SL_CT_DIR_REPLY;

	/* Policy decides the translated packet first: a denied flow leaves no CT entries, an
	 * allowed one keeps its verdict in them (lib/sl_ct.h sl_ct_np_*), not in the cache. */
	ret = pod_dnat(skb, &pkt, &nct);
	if (ret)
		return ret;
	pf->decided = true;
	ret = sl_np_enforce_ip(skb, SL_NP_HOOK_FROM_POD, ip, false);
	if (ret != TC_ACT_OK)
		return ret;
	sl_ct_np_pass(&nct);
	if (bpf_map_update_elem(sl_ct_map(pkt.proto), &rk, &nct, BPF_ANY))
		return pod_verdict(skb, SL_R_CT_FULL, TC_ACT_SHOT);
	if (bpf_map_update_elem(sl_ct_map(pkt.proto), &fk, &nct, BPF_ANY)) {
		bpf_map_delete_elem(sl_ct_map(pkt.proto), &rk);
		return pod_verdict(skb, SL_R_CT_FULL, TC_ACT_SHOT);
	}
	return pod_verdict(skb, SL_R_OK, TC_ACT_OK);
}

/*
 * An ICMP error to the pod (destination unreachable, time exceeded, parameter problem)
 * about a packet of a translated flow: the pod sent P:p -> F:f, the network saw it as
 * P:p -> B:b and quotes that, so the pod's stack would find no socket for it (no PMTU
 * update, no ECONNREFUSED for UDP). Finds the flow by the quote's reverse, the flow's
 * REPLY CT entry, and fills *pf as pod_reply_ct does, with pf->icmp set; else leaves it.
 * Reads only, and does not refresh the entry: an error does not keep a flow alive.
 */
static __always_inline void pod_reply_icmp(struct __sk_buff *skb, struct pod_flow *pf)
{
	struct sl_ct4_key rk = {};
	struct sl_ct4_val *ct;
	struct iphdr h; /* the error's header, then the quoted one */
	__be16 ports[2];
	__u32 off, in_l4;
	__be32 to;
	__u8 type;
	__u64 now;

	if (bpf_skb_load_bytes(skb, SL_ETH_HLEN, &h, sizeof(h)) || h.version != 4 || h.ihl < 5 ||
	    h.protocol != IPPROTO_ICMP || (h.frag_off & bpf_htons(0x3fff)))
		return;
	off = SL_ETH_HLEN + h.ihl * 4;
	to = h.daddr;
	if (bpf_skb_load_bytes(skb, off, &type, 1) || (type != 3 && type != 11 && type != 12))
		return;
	/* The quote must be a packet the error's addressee sent. */
	if (bpf_skb_load_bytes(skb, off + 8, &h, sizeof(h)) || h.version != 4 || h.ihl < 5 ||
	    h.saddr != to ||
	    (h.protocol != IPPROTO_TCP && h.protocol != IPPROTO_UDP && h.protocol != IPPROTO_SCTP))
		return;
	in_l4 = off + 8 + h.ihl * 4;
	if (bpf_skb_load_bytes(skb, in_l4, ports, sizeof(ports)))
		return;
	rk.saddr = h.daddr;
	rk.daddr = h.saddr;
	rk.sport = ports[1];
	rk.dport = ports[0];
	rk.proto = h.protocol;
	rk.dir = SL_CT_DIR_REPLY;
	ct = bpf_map_lookup_elem(sl_ct_map(h.protocol), &rk);
	if (!ct)
		return;
	now = bpf_ktime_get_coarse_ns();
	if (!sl_ct_alive(ct, h.protocol, now))
		return;
	pf->ct = ct;
	pf->now = now;
	pf->np_passed = sl_ct_np_passed(ct); /* related to a flow policy allowed */
	pf->icmp = true;
	pf->in_proto = h.protocol;
	pf->icmp_off = (__u8)off;
	pf->in_l4 = (__u8)in_l4;
}

/* A 16-bit Internet checksum after a 32-bit word changed from f32 to t32 and a 16-bit one
 * from f16 to t16 (RFC 1624: HC' = ~(~HC + ~m + m')); values as they sit in the packet. */
static __always_inline __u16 pod_csum_update(__u16 check, __be32 f32, __be32 t32, __be16 f16,
					     __be16 t16)
{
	__u32 s = (__u16)~check;

	s += (__u16) ~(__u16)f32 + (__u16) ~(__u16)(f32 >> 16) + (__u16)t32 + (__u16)(t32 >> 16);
	s += (__u16)~f16 + t16;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Writes a 16-bit field of the quoted packet and carries the change into the ICMP
 * checksum (which covers the quote; it has no pseudo header). */
static __always_inline int pod_icmp_put16(struct __sk_buff *skb, const struct pod_flow *pf,
					  __u32 off, __u16 from, __u16 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, pf->icmp_off + 2, from, to, sizeof(to)) ||
	    bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0))
		return -SL_R_CSUM_FAIL;
	return 0;
}

/*
 * Reverse NAT of an ICMP error pod_reply_icmp matched: the quoted packet's destination
 * goes back from the backend to the frontend the pod addressed (address, its header
 * checksum, port and, when quoted, its TCP/UDP checksum; SCTP's CRC is left, the quote
 * is partial anyway), the ICMP checksum follows every change, and an error the backend
 * sent itself comes from the frontend, as the flow's other packets do.
 */
static __always_inline int pod_revnat_icmp(struct __sk_buff *skb, const struct pod_flow *pf)
{
	const struct sl_ct4_val *ct = pf->ct;
	__be32 baddr = ct->backend_addr, faddr = ct->fe_addr, saddr;
	__be16 bport = ct->backend_port, fport = ct->fe_port;
	__u16 ipc, l4c;
	__u32 in_off = pf->icmp_off + 8u; /* the quoted IPv4 header */
	int l4off = sl_l4_csum_off(pf->in_proto), err;

	if (bpf_skb_load_bytes(skb, in_off + SL_IP_CSUM_OFF, &ipc, sizeof(ipc)))
		goto bad;
	if (baddr != faddr) {
		if (bpf_l4_csum_replace(skb, pf->icmp_off + 2, baddr, faddr, sizeof(faddr)) ||
		    bpf_skb_store_bytes(skb, in_off + SL_IP_DADDR_OFF, &faddr, sizeof(faddr), 0))
			goto bad;
		err = pod_icmp_put16(skb, pf, in_off + SL_IP_CSUM_OFF, ipc,
				     pod_csum_update(ipc, baddr, faddr, 0, 0));
		if (err)
			goto bad;
	}
	/* The quoted L4 checksum covers the destination (pseudo header) and the port; a UDP
	 * checksum of 0 means none, and a quote cut short has none to fix. */
	if (l4off >= 0 && !bpf_skb_load_bytes(skb, pf->in_l4 + l4off, &l4c, sizeof(l4c)) &&
	    (l4c || pf->in_proto != IPPROTO_UDP)) {
		__u16 n = pod_csum_update(l4c, baddr, faddr, bport, fport);

		if (!n && pf->in_proto == IPPROTO_UDP)
			n = 0xffff;
		if (pod_icmp_put16(skb, pf, pf->in_l4 + l4off, l4c, n))
			goto bad;
	}
	if (pod_icmp_put16(skb, pf, pf->in_l4 + 2, bport, fport))
		goto bad;
	if (bpf_skb_load_bytes(skb, SL_ETH_HLEN + SL_IP_SADDR_OFF, &saddr, sizeof(saddr)))
		goto bad;
	if (saddr == baddr && baddr != faddr &&
	    (bpf_l3_csum_replace(skb, SL_ETH_HLEN + SL_IP_CSUM_OFF, baddr, faddr, sizeof(faddr)) ||
	     bpf_skb_store_bytes(skb, SL_ETH_HLEN + SL_IP_SADDR_OFF, &faddr, sizeof(faddr), 0)))
		goto bad;
	return pod_verdict(skb, SL_R_OK, TC_ACT_OK);
bad:
	return pod_verdict(skb, SL_R_CSUM_FAIL, TC_ACT_SHOT);
}

/* The live REPLY CT entry of a packet to the pod (pf->ct NULL: none; the packet is left
 * as it is), or of the flow an ICMP error to the pod is about (pf->icmp). Reads only: the
 * caller's policy step may still drop the packet. */
static __always_inline void pod_reply_ct(struct __sk_buff *skb, struct sl_pkt4 *pkt,
					 struct pod_flow *pf, bool icmp)
{
	struct sl_ct4_key rk;
	struct sl_ct4_val *ct;
	__u64 now;
	int ret;

	ret = sl_parse4(skb, pkt);
	if (icmp && ret == SL_PARSE_PASS)
		pod_reply_icmp(skb, pf);
	if (ret)
		return;
	sl_ct_key_from_pkt(&rk, pkt, SL_CT_DIR_REPLY);
	ct = bpf_map_lookup_elem(sl_ct_map(pkt->proto), &rk);
	if (!ct)
		return;
	now = bpf_ktime_get_coarse_ns();
	if (sl_ct_alive(ct, pkt->proto, now))
		pod_flow_set(pf, ct, pkt, now);
}

/* The policy step of a packet to the pod whose REPLY CT entry (if any) pod_reply_ct found:
 * a translated flow's packet passes by the verdict its entries keep, else policy decides
 * (keeping an ALLOW of a translated flow in its entry, not in the cache). */
static __always_inline int pod_reply_policy(struct __sk_buff *skb, const struct pod_flow *pf,
					    __u32 ifindex, bool node_sk, struct iphdr *ip,
					    bool ip_known)
{
	int ret;

	if (pf->np_passed)
		return sl_np_count(skb, SL_NP_C_CACHED, TC_ACT_OK);
	/* An ICMP error of a flow without a verdict in its entries is decided as itself
	 * (lib/sl_policy.h: related to a cached flow, or by the rules): not the flow's. */
	ret = sl_np_enforce_at(skb, SL_NP_HOOK_TO_POD, ifindex, node_sk, ip, ip_known,
			       !pf->ct || pf->icmp);
	if (ret == TC_ACT_OK && pf->ct && !pf->icmp)
		sl_ct_np_pass(pf->ct);
	return ret;
}

/* Reverse NAT of a reply to the pod whose REPLY CT entry pod_reply_ct found. */
static __always_inline int pod_revnat_ct(struct __sk_buff *skb, struct sl_pkt4 *pkt,
					 const struct pod_flow *pf)
{
	struct sl_ct4_val *ct = pf->ct;
	int ret;

	sl_ct_touch(ct, pkt, pf->now);
	ret = sl_csum_nat(skb, pkt, true, ct->fe_addr, ct->fe_port);
	if (!ret)
		ret = pod_l4_fixup(skb, pkt);
	if (ret)
		return pod_verdict(skb, -ret, TC_ACT_SHOT);
	return pod_verdict(skb, SL_R_OK, TC_ACT_OK);
}

/*
 * Into a pod of this node (ep) from the tc ingress of a pod veth or a node
 * device: what tc_pod_egress / tc_pol_egress on ep's veth would do, then the
 * forwarding stack's TTL and MAC rewrite, then redirect_peer into the pod's
 * netns (no second pass through a backlog queue). stack: the verdict that
 * leaves the packet to the kernel path.
 */
static __always_inline int hr_deliver(struct __sk_buff *skb, struct iphdr *ip,
				      const struct sl_hr_ep *ep, __u32 ctr, int stack)
{
	struct pod_flow pf = {};
	struct sl_pkt4 pkt = {};
	__u32 mtu = 0;
	int ret;

	if (!sl_hr_forwardable(ip) || bpf_check_mtu(skb, ep->ifindex, &mtu, 0, 0))
		return sl_hr_count(skb, SL_HR_C_STACK, stack);
	/* ICMP into an opted-out pod goes by the stack to its veth, whose tc_pod_egress
	 * translates errors about its flows (rare packets; their code inlined here would not
	 * fit tc_pod_ingress's 512-byte stack). */
	if ((ep->flags & SL_HR_F_SVC) && ip->protocol == IPPROTO_ICMP)
		return sl_hr_count(skb, SL_HR_C_STACK, stack);
	if (ep->flags & SL_HR_F_SVC)
		pod_reply_ct(skb, &pkt, &pf, false);
	/* The caller's header (the packet is unchanged since): policy does not read it again. */
	ret = pod_reply_policy(skb, &pf, ep->ifindex, false, ip, true);
	if (ret != TC_ACT_OK)
		return ret;
	if (pf.ct) {
		ret = pod_revnat_ct(skb, &pkt, &pf);
		if (ret != TC_ACT_OK)
			return ret;
	}
	/* Past this point the pod's policy has counted the packet: a failure drops it. */
	if (sl_hr_ttl_dec(skb, ip->ttl) || sl_hr_macs(skb, ep->mac, ep->host_mac))
		return TC_ACT_SHOT;
	return sl_hr_count(skb, ctr, bpf_redirect_peer(ep->ifindex, 0));
}

/* A packet the pod programs passed on the way out of a pod (see the top); *ipp is its IPv4
 * header as the policy step read it (version 0: not IPv4). */
static __always_inline int hr_from_pod(struct __sk_buff *skb, const struct iphdr *ipp)
{
	const struct sl_hr_ep *ep;
	struct iphdr ip = *ipp;

	if (!sl_hr_enabled || ip.version != 4)
		return TC_ACT_OK;
	ep = bpf_map_lookup_elem(&sl_hr_ep_v1, &ip.daddr);
	if (ep) {
		if (ep->ifindex == skb->ifindex)
			return TC_ACT_OK; /* its own address via the gateway: the stack's */
		return hr_deliver(skb, &ip, ep, SL_HR_C_PEER_POD, TC_ACT_OK);
	}
	if (!sl_hr_in_cluster(ip.daddr))
		return TC_ACT_OK;
	if (!sl_hr_forwardable(&ip))
		return sl_hr_count(skb, SL_HR_C_STACK, TC_ACT_OK);
	return sl_hr_fib_out(skb, &ip);
}

/*
 * The programs. Policy (lib/sl_policy.h) composes with translation so that
 * it always sees backends: on the way out of the pod it runs after DNAT, on
 * the way in before the reverse NAT (the cached tuple is the translated
 * one). Pods that keep the socket LB get the policy-only pair: their
 * connect() already chose the backend.
 */
SEC("tc")
int tc_pod_ingress(struct __sk_buff *skb)
{
	struct pod_flow pf = {};
	struct iphdr ip = {};
	int ret = pod_translate(skb, &pf, &ip);

	if (ret != TC_ACT_OK || pf.decided)
		return ret == TC_ACT_OK ? hr_from_pod(skb, &ip) : ret;
	if (pf.np_passed) {
		/* Policy allowed this flow (its CT entry says so): counted as a cached pass. */
		sl_np_count(skb, SL_NP_C_CACHED, TC_ACT_OK);
		if (sl_hr_enabled && bpf_skb_load_bytes(skb, SL_ETH_HLEN, &ip, sizeof(ip)))
			return TC_ACT_OK;
		return hr_from_pod(skb, &ip);
	}
	/* After the translation: the header policy reads is the one host routing sends. */
	ret = sl_np_enforce_ip(skb, SL_NP_HOOK_FROM_POD, &ip, !pf.ct);
	if (ret != TC_ACT_OK)
		return ret;
	if (pf.ct)
		sl_ct_np_pass(pf.ct);
	return hr_from_pod(skb, &ip);
}

SEC("tc")
int tc_pod_egress(struct __sk_buff *skb)
{
	struct pod_flow pf = {};
	struct sl_pkt4 pkt = {};
	struct iphdr ip;
	int ret;

	/* The CT entry first (read only): a translated flow's packet passes by its verdict. */
	pod_reply_ct(skb, &pkt, &pf, true);
	ret = pod_reply_policy(skb, &pf, skb->ifindex, true, &ip, false);
	if (ret != TC_ACT_OK || !pf.ct)
		return ret;
	return pf.icmp ? pod_revnat_icmp(skb, &pf) : pod_revnat_ct(skb, &pkt, &pf);
}

SEC("tc")
int tc_pol_ingress(struct __sk_buff *skb)
{
	struct iphdr ip = {};
	int ret = sl_np_enforce_ip(skb, SL_NP_HOOK_FROM_POD, &ip, true);

	if (ret != TC_ACT_OK)
		return ret;
	return hr_from_pod(skb, &ip);
}

SEC("tc")
int tc_pol_egress(struct __sk_buff *skb)
{
	return sl_np_enforce(skb, SL_NP_HOOK_TO_POD, true);
}

/* TCX ingress of the node's devices: packets from pods of other nodes to
 * local pods. Everything else goes on to the next program (the uplink path)
 * and the stack: a flow from outside the podCIDRs must pass the node's
 * conntrack both ways (its replies leave by the stack and the masquerade
 * would take them for new flows). */
SEC("tc")
int tc_hr_fabric(struct __sk_buff *skb)
{
	const struct sl_hr_ep *ep;
	struct iphdr ip;

	if (!sl_hr_enabled || sl_hr_ip(skb, &ip))
		return SL_HR_TCX_NEXT;
	ep = bpf_map_lookup_elem(&sl_hr_ep_v1, &ip.daddr);
	if (!ep || !sl_hr_in_cluster(ip.saddr))
		return SL_HR_TCX_NEXT;
	return hr_deliver(skb, &ip, ep, SL_HR_C_PEER_NET, SL_HR_TCX_NEXT);
}
