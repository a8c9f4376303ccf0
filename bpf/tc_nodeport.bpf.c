// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * North-south service load balancing on the node uplink (tc/TCX ingress and
 * egress): NodePort (node address or any local address), LoadBalancer
 * ingress IPs and externalIPs, for TCP, UDP and SCTP.
 *
 *   ingress  client C:c -> frontend F:f
 *            svc4 lookup (exact, then addr 0 if F is a local address)
 *            CT hit  -> same backend (unless GONE) ; miss -> Maglev / slot pick
 *            local backend  B:b : DNAT to B:b, keep C (eTP=Local keeps the client
 *                              IP), TC_ACT_OK into the stack, REPLY CT entry
 *            remote backend B:b : DNAT to B:b + SNAT to N:n (nat4), FIB redirect
 *            no endpoints       : TCP RST / ICMP port unreachable back out
 *   ingress  reply B:b -> N:n (SNATed flow, nat4 hit): src -> F:f, dst -> C:c, FIB redirect
 *   egress   reply B:b -> C:c (local backend, REPLY CT hit): src -> F:f
 *
 * Everything else passes untouched. Each outcome is counted by reason in
 * sl_npctr_v1 (abi/lb.h enum sl_reason and SL_R_* defines).
 */
#include "lib/sl_defs.h"
#include "lib/sl_hash.h"
#include "lib/sl_parse.h"
#include "lib/sl_csum.h"
#include "lib/sl_crc32c.h"
#include "lib/sl_svc_maps.h"
#include "lib/sl_ct.h"
#include "lib/sl_nat.h"
#include "lib/sl_maglev.h"
#include "lib/sl_reject.h"
#include "lib/sl_hr_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_node4_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_node4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_R_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_npctr_v1 SEC(".maps");

#define NP_NS_FLAGS (SL_SVC_F_NODEPORT | SL_SVC_F_EXTERNALIP | SL_SVC_F_LOADBALANCER)

static __always_inline void np_count(struct __sk_buff *skb, __u32 reason)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_npctr_v1, &reason);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
}

/* Counts reason and returns verdict: keeps the call sites one line. */
static __always_inline int np_verdict(struct __sk_buff *skb, __u32 reason, int verdict)
{
	np_count(skb, reason);
	return verdict;
}

static __always_inline const struct sl_node4_cfg *np_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sl_node4_v1, &zero);
}

/* Frontend for pkt if it is a NodePort/LB/externalIP one, else NULL. */
static __always_inline const struct sl_svc_val *np_svc_lookup(const struct sl_pkt4 *pkt)
{
	struct sl_svc_key k = {
		.addr = pkt->daddr,
		.port = pkt->dport,
		.proto = pkt->proto,
		.scope = SL_SCOPE_EXT,
	};
	const struct sl_svc_val *svc;

	svc = bpf_map_lookup_elem(&sl_svc4_v1, &k);
	if (svc && (svc->flags & NP_NS_FLAGS))
		return svc;
	/* NodePort on "any local address": only for addresses this node owns. */
	if (!bpf_map_lookup_elem(&sl_local4_v1, &pkt->daddr))
		return NULL;
	k.addr = 0;
	svc = bpf_map_lookup_elem(&sl_svc4_v1, &k);
	if (svc && (svc->flags & SL_SVC_F_NODEPORT))
		return svc;
	return NULL;
}

/* Recomputes the SCTP CRC after rewrites (no-op for TCP/UDP). */
static __always_inline int np_l4_fixup(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	if (pkt->proto != IPPROTO_SCTP)
		return 0;
	return sl_sctp_csum_update(skb, pkt->l4_off, pkt->l4_len);
}

/*
 * Sends a translated packet whose source is a node address (SNAT) toward its
 * new destination. The stack would drop it as a martian (local source on
 * input), so route it here: FIB lookup, MAC rewrite, redirect.
 */
static __always_inline int np_redirect_fib(struct __sk_buff *skb, const struct sl_pkt4 *pkt)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	fib.family = 2; /* AF_INET */
	fib.l4_protocol = pkt->proto;
	fib.sport = pkt->sport;
	fib.dport = pkt->dport;
	/* tot_len stays 0: the helper then checks the skb itself against the MTU
	 * (is_skb_forwardable, GSO-aware); given a length, it compares a GRO'd
	 * super-packet's IP length to the MTU and refuses it. */
	fib.ipv4_src = pkt->saddr;
	fib.ipv4_dst = pkt->daddr;
	fib.ifindex = skb->ifindex;

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, SL_ETH_ALEN, 0) ||
		    bpf_skb_store_bytes(skb, SL_ETH_ALEN, fib.smac, SL_ETH_ALEN, 0))
			return np_verdict(skb, SL_R_CSUM_FAIL, TC_ACT_SHOT);
		np_count(skb, SL_R_OK);
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		np_count(skb, SL_R_OK);
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	}
	return np_verdict(skb, SL_R_FIB_FAIL, TC_ACT_SHOT);
}

/* Applies ct's forward translation to pkt and returns the verdict. */
static __always_inline int np_forward(struct __sk_buff *skb, struct sl_pkt4 *pkt,
				      const struct sl_ct4_val *ct)
{
	int err;

	err = sl_csum_nat(skb, pkt, false, ct->backend_addr, ct->backend_port);
	if (!err && (ct->flags & SL_CT_F_SNAT))
		err = sl_csum_nat(skb, pkt, true, ct->nat_addr, ct->nat_port);
	if (!err)
		err = np_l4_fixup(skb, pkt);
	if (err)
		return np_verdict(skb, -err, TC_ACT_SHOT);
	if (ct->flags & SL_CT_F_SNAT)
		return np_redirect_fib(skb, pkt);
	return np_verdict(skb, SL_R_OK, TC_ACT_OK);
}

/*
 * An SNATed flow must still own its nat4 entry (LRU may have evicted it):
 * refresh it, or take the same port again. 0 or -SL_R_NAT_FAIL.
 */
static __always_inline int np_nat_keep(const struct sl_ct4_val *ct, __u8 proto, __u64 now)
{
	struct sl_nat4_key k = {
		.nat_addr = ct->nat_addr,
		.peer_addr = ct->backend_addr,
		.nat_port = ct->nat_port,
		.peer_port = ct->backend_port,
		.proto = proto,
	};
	struct sl_nat4_val *nv, v = {};

	nv = bpf_map_lookup_elem(&sl_nat4_v1, &k);
	if (nv) {
		if (nv->orig_addr != ct->client_addr || nv->orig_port != ct->client_port)
			return -SL_R_NAT_FAIL; /* port reused by another flow */
		if (now - nv->last_seen_ns > SL_NSEC_PER_SEC)
			nv->last_seen_ns = now;
		return 0;
	}
	v.last_seen_ns = now;
	v.orig_addr = ct->client_addr;
	v.orig_port = ct->client_port;
	v.fe_addr = ct->fe_addr;
	v.fe_port = ct->fe_port;
	if (bpf_map_update_elem(&sl_nat4_v1, &k, &v, BPF_NOEXIST))
		return -SL_R_NAT_FAIL;
	return 0;
}

/* Removes the reverse state of a CT entry that is being replaced. */
static __always_inline void np_ct_release(const struct sl_ct4_val *ct, __u8 proto)
{
	if (ct->flags & SL_CT_F_SNAT) {
		struct sl_nat4_key nk = {
			.nat_addr = ct->nat_addr,
			.peer_addr = ct->backend_addr,
			.nat_port = ct->nat_port,
			.peer_port = ct->backend_port,
			.proto = proto,
		};

		bpf_map_delete_elem(&sl_nat4_v1, &nk);
	} else {
		struct sl_ct4_key rk = {
			.saddr = ct->backend_addr,
			.daddr = ct->client_addr,
			.sport = ct->backend_port,
			.dport = ct->client_port,
			.proto = proto,
			.dir = SL_CT_DIR_REPLY,
		};

		bpf_map_delete_elem(sl_ct_map(proto), &rk);
	}
}

/* A packet to a N-S frontend: existing flow, new flow, or refusal. */
static __always_inline int np_service(struct __sk_buff *skb, struct sl_pkt4 *pkt,
				      const struct sl_svc_val *svc, const struct sl_node4_cfg *cfg)
{
	struct sl_ct4_key fk, rk = {};
	struct sl_ct4_val *ct, nct = {};
	struct sl_affinity_key ak = {};
	const struct sl_backend *be;
	__u64 now = bpf_ktime_get_ns();
	__u32 hash, be_id;
	int id, err;

	sl_ct_key_from_pkt(&fk, pkt, SL_CT_DIR_FWD);
	ct = bpf_map_lookup_elem(sl_ct_map(pkt->proto), &fk);
	if (ct) {
		be_id = ct->backend_id;
		be = bpf_map_lookup_elem(&sl_be4_v1, &be_id);
		/* A new SYN on a closed connection's tuple starts a new flow. */
		bool reopen = (pkt->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN &&
			      (ct->flags & (SL_CT_F_SEEN_FIN | SL_CT_F_SEEN_RST));

		if (sl_ct_alive(ct, pkt->proto, now) && !reopen && be && be->state != SL_BE_GONE &&
		    be->addr == ct->backend_addr && be->port == ct->backend_port) {
			if ((ct->flags & SL_CT_F_SNAT) && np_nat_keep(ct, pkt->proto, now))
				return np_verdict(skb, SL_R_NAT_FAIL, TC_ACT_SHOT);
			sl_ct_touch(ct, pkt, now);
			return np_forward(skb, pkt, ct);
		}
		np_ct_release(ct, pkt->proto);
	}

	if (svc->count == 0) {
		if (svc->flags & SL_SVC_F_DROP)
			return np_verdict(skb, SL_R_NO_BACKEND, TC_ACT_SHOT);
		err = sl_reject(skb, pkt);
		if (err)
			return np_verdict(skb, -err, TC_ACT_SHOT);
		np_count(skb, SL_R_NO_BACKEND);
		return np_verdict(skb, SL_R_REJECTED, bpf_redirect(skb->ifindex, 0));
	}

	hash = sl_hash_flow4(pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto,
			     cfg ? cfg->hash_seed : 0);
	be_id = 0;
	if (svc->flags & SL_SVC_F_AFFINITY) {
		ak.client = pkt->saddr;
		ak.svc_id = svc->svc_id;
		be_id = sl_affinity_get(svc, &ak, now);
	}
	if (!be_id) {
		id = sl_lb_select(svc, hash);
		if (id < 0)
			return np_verdict(skb, -id, TC_ACT_SHOT);
		be_id = id;
		if (svc->flags & SL_SVC_F_AFFINITY) {
			struct sl_affinity_val av = {.last_used_ns = now, .backend_id = be_id};

			bpf_map_update_elem(&sl_aff4_v1, &ak, &av, BPF_ANY);
		}
	}
	be = bpf_map_lookup_elem(&sl_be4_v1, &be_id);
	if (!be || be->state == SL_BE_GONE || be->addr == 0)
		return np_verdict(skb, SL_R_BACKEND_GONE, TC_ACT_SHOT);

	nct.last_seen_ns = now;
	nct.fe_addr = pkt->daddr;
	nct.fe_port = pkt->dport;
	nct.client_addr = pkt->saddr;
	nct.client_port = pkt->sport;
	nct.backend_addr = be->addr;
	nct.backend_port = be->port;
	nct.backend_id = be_id;
	nct.svc_id = svc->svc_id;

	if (be->node_id != 0) {
		struct sl_nat4_val nv = {
			.last_seen_ns = now,
			.orig_addr = pkt->saddr,
			.orig_port = pkt->sport,
			.fe_addr = pkt->daddr,
			.fe_port = pkt->dport,
		};

		if (!cfg || !cfg->snat_addr)
			return np_verdict(skb, SL_R_NAT_FAIL, TC_ACT_SHOT);
		nct.nat_addr = cfg->snat_addr;
		nct.flags = SL_CT_F_SNAT;
		err = sl_nat_alloc(cfg, cfg->snat_addr, be->addr, be->port, pkt->proto, hash, &nv,
				   &nct.nat_port);
		if (err)
			return np_verdict(skb, -err, TC_ACT_SHOT);
	} else {
		rk.saddr = be->addr;
		rk.daddr = pkt->saddr;
		rk.sport = be->port;
		rk.dport = pkt->sport;
		rk.proto = pkt->proto;
		rk.dir = SL_CT_DIR_REPLY;
		/* Before the insert: the pod path may skip its check of this map only while no
		 * entry for a pod client can be there (lib/sl_hr_maps.h). */
		sl_hr_npc_mark(pkt->saddr);
		if (bpf_map_update_elem(sl_ct_map(pkt->proto), &rk, &nct, BPF_ANY))
			return np_verdict(skb, SL_R_CT_FULL, TC_ACT_SHOT);
	}
	sl_ct_touch(&nct, pkt, now);
	if (bpf_map_update_elem(sl_ct_map(pkt->proto), &fk, &nct, BPF_ANY)) {
		np_ct_release(&nct, pkt->proto);
		return np_verdict(skb, SL_R_CT_FULL, TC_ACT_SHOT);
	}
	return np_forward(skb, pkt, &nct);
}

/* Reply of an SNATed flow (backend -> node:nat port)? 1 = not ours. */
static __always_inline int np_snat_reply(struct __sk_buff *skb, struct sl_pkt4 *pkt,
					 const struct sl_node4_cfg *cfg)
{
	struct sl_nat4_key k = {
		.nat_addr = pkt->daddr,
		.peer_addr = pkt->saddr,
		.nat_port = pkt->dport,
		.peer_port = pkt->sport,
		.proto = pkt->proto,
	};
	struct sl_nat4_val *nv;
	__u32 min, max, port;
	__u64 now;
	int err;

	if (!cfg || !cfg->snat_addr || pkt->daddr != cfg->snat_addr)
		return 1;
	sl_nat_range(cfg, &min, &max);
	port = bpf_ntohs(pkt->dport);
	if (port < min || port > max)
		return 1;
	nv = bpf_map_lookup_elem(&sl_nat4_v1, &k);
	if (!nv)
		return 1;
	now = bpf_ktime_get_ns();
	if (now - nv->last_seen_ns > SL_NSEC_PER_SEC)
		nv->last_seen_ns = now;

	err = sl_csum_nat(skb, pkt, true, nv->fe_addr, nv->fe_port);
	if (!err)
		err = sl_csum_nat(skb, pkt, false, nv->orig_addr, nv->orig_port);
	if (!err)
		err = np_l4_fixup(skb, pkt);
	if (err)
		return np_verdict(skb, -err, TC_ACT_SHOT);
	return np_redirect_fib(skb, pkt);
}

SEC("tc")
int tc_nodeport_ingress(struct __sk_buff *skb)
{
	const struct sl_node4_cfg *cfg;
	const struct sl_svc_val *svc;
	struct sl_pkt4 pkt = {};
	int ret;

	ret = sl_parse4(skb, &pkt);
	if (ret == SL_PARSE_PASS)
		return TC_ACT_OK;
	if (ret < 0)
		return np_verdict(skb, -ret, TC_ACT_OK);

	cfg = np_cfg();
	ret = np_snat_reply(skb, &pkt, cfg);
	if (ret != 1)
		return ret;

	svc = np_svc_lookup(&pkt);
	if (!svc)
		return TC_ACT_OK;
	return np_service(skb, &pkt, svc, cfg);
}

SEC("tc")
int tc_nodeport_egress(struct __sk_buff *skb)
{
	struct sl_ct4_key rk;
	struct sl_pkt4 pkt = {};
	struct sl_ct4_val *ct;
	__u64 now;
	int ret;

	ret = sl_parse4(skb, &pkt);
	if (ret)
		return TC_ACT_OK; /* egress: malformed is the stack's own output; not ours */

	sl_ct_key_from_pkt(&rk, &pkt, SL_CT_DIR_REPLY);
	ct = bpf_map_lookup_elem(sl_ct_map(pkt.proto), &rk);
	if (!ct)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	if (!sl_ct_alive(ct, pkt.proto, now))
		return TC_ACT_OK;
	sl_ct_touch(ct, &pkt, now);

	ret = sl_csum_nat(skb, &pkt, true, ct->fe_addr, ct->fe_port);
	if (!ret)
		ret = np_l4_fixup(skb, &pkt);
	if (ret)
		return np_verdict(skb, -ret, TC_ACT_SHOT);
	return np_verdict(skb, SL_R_OK, TC_ACT_OK);
}
