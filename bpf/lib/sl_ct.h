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
 * them in the background. last_seen_ns is written through the looked-up
 * pointer at most once a second (LRU updates cost ~150 ns; in-place stores
 * are free).
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
	return now - v->last_seen_ns <= sl_ct_lifetime_ns(proto, v->flags);
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
	if (now - v->last_seen_ns > SL_NSEC_PER_SEC)
		v->last_seen_ns = now;
}

/*
 * The policy step of a translated flow (tc_pod), remembered in its CT entry: np_ok holds
 * the time (now >> SL_CT_NP_SHIFT, ~1 ms units, low bit set so it is never 0) at which the
 * policy cache (lib/sl_policy.h) last passed a packet of this direction of the flow. Within
 * SL_CT_NP_FRESH of that, a packet that is not a TCP SYN would be passed by that same
 * cached ALLOW (an established flow is never re-decided; a SYN always is), so tc_pod skips
 * the policy cache lookup, a second LRU lookup per packet. Past it, the next packet looks
 * the cache up again, which refreshes the policy entry's own idle time as before (at most
 * once a second there too). The cost: a policy entry deleted or evicted meanwhile is missed
 * for at most that long; nothing else in the verdict changes (SYNs are always decided).
 */
#define SL_CT_NP_SHIFT 20
#define SL_CT_NP_FRESH ((__u32)(SL_NSEC_PER_SEC >> SL_CT_NP_SHIFT))

static __always_inline __u32 sl_ct_np_stamp(__u64 now)
{
	return (__u32)(now >> SL_CT_NP_SHIFT) | 1;
}

/* Did policy pass this direction of the flow within SL_CT_NP_FRESH? (u32 arithmetic: an
 * entry idles out, SL_CT_LIFETIME_*, long before the ~52 days the stamp takes to wrap.) */
static __always_inline bool sl_ct_np_fresh(const struct sl_ct4_val *v, __u64 now)
{
	return v->np_ok && sl_ct_np_stamp(now) - v->np_ok < SL_CT_NP_FRESH;
}

/* Policy passed a packet of this direction now. Called only when the stamp was not fresh
 * (one write per flow direction per SL_CT_NP_FRESH at most, as sl_ct_touch's). */
static __always_inline void sl_ct_np_mark(struct sl_ct4_val *v, __u64 now)
{
	v->np_ok = sl_ct_np_stamp(now);
}

#endif
