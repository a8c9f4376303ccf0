/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service conntrack for the north-south path: two LRU maps, one for TCP and
 * one for everything else, so a UDP flood evicts UDP entries and never the
 * TCP connections (Cilium's split). Entries carry the whole translation, so
 * an established flow needs no service lookup result beyond "still a
 * frontend", and it keeps its backend when the slot block changes.
 *
 * Idle lifetimes (abi/lb.h SL_CT_LIFETIME_*) are enforced on lookup: an
 * expired entry is treated as absent and overwritten; the agent's GC deletes
 * them in the background. Ages are read through sl_since: tc_pod stamps with
 * the coarse clock, the uplink path with the fine one. last_seen_ns is written
 * through the looked-up pointer at most once a second (LRU updates cost
 * ~150 ns; in-place stores are free).
 */
#ifndef SLUICE_BPF_SL_CT_H
#define SLUICE_BPF_SL_CT_H

#include "lib/sl_defs.h"
#include "lib/sl_parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_CT);
	__type(key, struct sl_ct4_key);
	__type(value, struct sl_ct4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct4_tcp_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_CT);
	__type(key, struct sl_ct4_key);
	__type(value, struct sl_ct4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct4_any_v1 SEC(".maps");

static __always_inline void *sl_ct_map(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&sl_ct4_tcp_v1 : (void *)&sl_ct4_any_v1;
}

/* The key of pkt as it is on the wire, tagged with dir. */
static __always_inline void sl_ct_key_from_pkt(struct sl_ct4_key *k, const struct sl_pkt4 *pkt,
					       __u8 dir)
{
	k->saddr = pkt->saddr;
	k->daddr = pkt->daddr;
	k->sport = pkt->sport;
	k->dport = pkt->dport;
	k->proto = pkt->proto;
	k->dir = dir;
	k->pad = 0;
}

static __always_inline __u64 sl_ct_lifetime_ns(__u8 proto, __u16 flags)
{
	if (proto != IPPROTO_TCP)
		return SL_CT_LIFETIME_ANY_S * SL_NSEC_PER_SEC;
	if (flags & (SL_CT_F_SEEN_FIN | SL_CT_F_SEEN_RST))
		return SL_CT_LIFETIME_CLOSE_S * SL_NSEC_PER_SEC;
	return SL_CT_LIFETIME_TCP_S * SL_NSEC_PER_SEC;
}

static __always_inline bool sl_ct_alive(const struct sl_ct4_val *v, __u8 proto, __u64 now)
{
	return sl_since(now, v->last_seen_ns) <= sl_ct_lifetime_ns(proto, v->flags);
}

/* Records FIN/RST and refreshes last_seen, writing only when something changed. */
static __always_inline void sl_ct_touch(struct sl_ct4_val *v, const struct sl_pkt4 *pkt, __u64 now)
{
	__u16 fl = 0;

	if (pkt->tcp_flags & SL_TCP_FIN)
		fl |= SL_CT_F_SEEN_FIN;
	if (pkt->tcp_flags & SL_TCP_RST)
		fl |= SL_CT_F_SEEN_RST;
	if ((v->flags | fl) != v->flags)
		v->flags |= fl;
	if (sl_since(now, v->last_seen_ns) > SL_NSEC_PER_SEC)
		v->last_seen_ns = now;
}

/*
 * NetworkPolicy's verdict on a service-translated flow (tc_pod) is kept in its CT entries,
 * not in the policy cache (lib/sl_policy.h sl_np_ct_v1): the flow's first packet is decided
 * after the DNAT, and only an ALLOW creates the two entries, both with np_ok set (replies of
 * an allowed flow are allowed, as the cache's one entry for both directions would say). A
 * later packet of the flow that is not a TCP SYN passes by it without a policy lookup; a SYN
 * is always decided (a new connection, maybe on a reused tuple). The verdict lives as long as
 * the entry: established connections survive policy changes, as documented for the cache.
 * One LRU insert and one lookup fewer per connection than keeping it in the cache. An entry
 * with np_ok 0 (written by another program, or before this field meant this) is decided by
 * the cache as before and then marked.
 */
static __always_inline bool sl_ct_np_passed(const struct sl_ct4_val *v)
{
	return v->np_ok != 0;
}

static __always_inline void sl_ct_np_pass(struct sl_ct4_val *v)
{
	if (!v->np_ok)
		v->np_ok = 1;
}

#endif
