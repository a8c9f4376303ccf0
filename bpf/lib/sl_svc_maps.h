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

#endif
