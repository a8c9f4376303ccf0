/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The host-routing maps the uplink programs (tc_nodeport.bpf.c) share with the pod programs
 * (lib/sl_hostroute.h), by pin name: the cluster's podCIDRs, and the per-node mark that a
 * NodePort reply to a pod client may exist (abi/hostroute.h, struct sl_hr_npc).
 *
 * Why the mark: a packet from a pod to a pod of another node leaves by redirect_peer to the
 * uplink veth's peer, which skips the uplink's egress program. That program reverse-NATs
 * replies of NodePort connections to local backends (a REPLY entry of sl_ct4_*), so before
 * the redirect the fast path must ask whether such an entry exists. Without the mark that is
 * one lookup per packet into a 262144-entry LRU that is empty on most nodes; with it, one
 * array read, and the lookup only on nodes that have tracked a pod client.
 *
 * Ordering (the race the mark must not lose): the uplink ingress raises the mark *before* it
 * inserts the REPLY entry (the hash insert publishes the entry with release semantics, so a
 * CPU that finds the entry also sees the mark), and a reply can only exist after the backend
 * received the forwarded packet, which happens after the insert. A reader that sees the mark
 * clear therefore cannot be holding a reply that needs the reverse NAT. The mark is never
 * cleared by the programs; the agent raises it at start when the pinned conntrack already
 * holds REPLY entries (entries made by an older program that did not raise it).
 */
#ifndef SLUICE_BPF_SL_HR_MAPS_H
#define SLUICE_BPF_SL_HR_MAPS_H

#include "lib/sl_defs.h"
#include "abi/hostroute.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_HR_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_hr_cidr_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_cidr_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_hr_npc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_hr_npc_v1 SEC(".maps");

static __always_inline bool sl_hr_in_cluster(__be32 addr)
{
	struct sl_hr_cidr_key k = {.prefixlen = 32, .addr = addr};

	return bpf_map_lookup_elem(&sl_hr_cidr_v1, &k) != NULL;
}

/* Can a NodePort reply to a pod client exist on this node? (see the top) */
static __always_inline bool sl_hr_npc_possible(void)
{
	__u32 zero = 0;
	const struct sl_hr_npc *m = bpf_map_lookup_elem(&sl_hr_npc_v1, &zero);

	/* Without the map (never with a loaded object) assume the worst. */
	return !m || m->pod_client_flows;
}

/* Called by the uplink ingress before it inserts a REPLY entry whose client is client. */
static __always_inline void sl_hr_npc_mark(__be32 client)
{
	__u32 zero = 0;
	struct sl_hr_npc *m;

	if (!sl_hr_in_cluster(client))
		return;
	m = bpf_map_lookup_elem(&sl_hr_npc_v1, &zero);
	if (m)
		__sync_fetch_and_add(&m->pod_client_flows, 1);
}

#endif
