/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service maps shared by every load-balancing program (socket LB and the
 * uplink path), pinned by name. libbpf refuses to reuse a pinned map whose
 * definition differs, so they are defined here once and every program
 * includes this header instead of keeping its own copy.
 * Layouts and names come from abi/lb.h.
 */
#ifndef SLUICE_BPF_SL_SVC_MAPS_H
#define SLUICE_BPF_SL_SVC_MAPS_H

#include "lib/sl_defs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, struct sl_svc_key);
	__type(value, struct sl_svc_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32); /* backend_id */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_slots_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_be4_v1 SEC(".maps");

/* ClientIP affinity: the uplink path keys it by client address, the socket
 * LB by netns cookie; both validate hits against svcbe4 membership. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_AFFINITY);
	__type(key, struct sl_affinity_key);
	__type(value, struct sl_affinity_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_aff4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SVC_BE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_svc_be_key);
	__type(value, __u32); /* reserved, 0 */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svcbe4_v1 SEC(".maps");

/* This node's IPv4 addresses (NodePort wildcard matches and post_bind). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_LOCAL_ADDRS);
	__type(key, __be32);
	__type(value, struct sl_local4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_local4_v1 SEC(".maps");

/*
 * ClientIP affinity (sessionAffinity): the backend this client (address, or socket owner for
 * the socket hooks) used within affinity_s seconds, if it is still ACTIVE and still a member
 * of the service (svcbe4); else 0. Refreshes the entry on a hit. Shared by the socket hooks
 * and both per-packet paths so they agree on what "sticky" means.
 */
static __always_inline __u32 sl_affinity_get(const struct sl_svc_val *svc,
					     const struct sl_affinity_key *akey, __u64 now)
{
	struct sl_svc_be_key mkey = {};
	struct sl_affinity_val *a;
	struct sl_backend *be;
	__u32 id;

	a = bpf_map_lookup_elem(&sl_aff4_v1, akey);
	if (!a)
		return 0;
	if (sl_since(now, a->last_used_ns) > (__u64)svc->affinity_s * SL_NSEC_PER_SEC)
		return 0;
	id = a->backend_id;
	be = bpf_map_lookup_elem(&sl_be4_v1, &id);
	/* Only ready backends keep affinity: a terminating one must not get new
	 * connections through stickiness (cilium#27096). */
	if (!id || !be || be->state != SL_BE_ACTIVE)
		return 0;
	mkey.svc_id = svc->svc_id;
	mkey.backend_id = id;
	if (!bpf_map_lookup_elem(&sl_svcbe4_v1, &mkey))
		return 0;
	a->last_used_ns = now;
	return id;
}

#endif
