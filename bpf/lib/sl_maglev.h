/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection. Maglev services (SL_SVC_F_MAGLEV) index one flat ARRAY
 * (Katran's layout: maglev_base + hash % SL_MAGLEV_M, tables built by
 * agent/maglev.c), so every node that hashes a flow with the same seed picks
 * the same backend without shared state. Other services index their slot
 * block with the same flow hash.
 */
#ifndef SLUICE_BPF_SL_MAGLEV_H
#define SLUICE_BPF_SL_MAGLEV_H

#include "lib/sl_defs.h"
#include "lib/sl_svc_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAGLEV_M *SL_MAX_MAGLEV_TABLES);
	__type(key, __u32);
	__type(value, __u32); /* backend_id */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_maglev_v1 SEC(".maps");

/* Returns a backend id (> 0) or -SL_R_SLOT_OOB when the index is outside the map
 * or the entry is empty. The caller checks count != 0 first. */
static __always_inline int sl_lb_select(const struct sl_svc_val *svc, __u32 hash)
{
	__u32 idx, *id;

	if (svc->flags & SL_SVC_F_MAGLEV) {
		idx = svc->maglev_base + hash % SL_MAGLEV_M;
		id = bpf_map_lookup_elem(&sl_maglev_v1, &idx);
	} else {
		idx = svc->slot_base + hash % svc->count;
		id = bpf_map_lookup_elem(&sl_slots_v1, &idx);
	}
	if (!id || *id == 0)
		return -SL_R_SLOT_OOB;
	return (int)*id;
}

#endif
