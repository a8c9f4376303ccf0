/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SNAT state and port allocation. nat4 is keyed the way a reply arrives
 * (peer -> nat addr:port), so finding the reverse mapping is one lookup, and
 * inserting with BPF_NOEXIST is the allocation: the port is ours if the
 * insert succeeds. Candidates are probed linearly from a flow-hash start in
 * the node's port range, at most SL_NAT_RETRIES times; failure is counted as
 * SL_R_NAT_FAIL (Cilium #35621: allocation failures must be visible).
 */
#ifndef SLUICE_BPF_SL_NAT_H
#define SLUICE_BPF_SL_NAT_H

#include "lib/sl_defs.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_NAT);
	__type(key, struct sl_nat4_key);
	__type(value, struct sl_nat4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_nat4_v1 SEC(".maps");

static __always_inline void sl_nat_range(const struct sl_node4_cfg *cfg, __u32 *min, __u32 *max)
{
	*min = cfg && cfg->nat_port_min ? cfg->nat_port_min : SL_NAT_PORT_MIN;
	*max = cfg && cfg->nat_port_max ? cfg->nat_port_max : SL_NAT_PORT_MAX;
	if (*max < *min)
		*max = *min;
}

/*
 * Reserves a port on nat_addr toward peer_addr:peer_port and stores val under
 * it. Returns 0 with *port (network order) set, or -SL_R_NAT_FAIL.
 */
static __always_inline int sl_nat_alloc(const struct sl_node4_cfg *cfg, __be32 nat_addr,
					__be32 peer_addr, __be16 peer_port, __u8 proto, __u32 hash,
					const struct sl_nat4_val *val, __be16 *port)
{
	struct sl_nat4_key k = {
		.nat_addr = nat_addr,
		.peer_addr = peer_addr,
		.peer_port = peer_port,
		.proto = proto,
	};
	__u32 min, max, range, i;

	sl_nat_range(cfg, &min, &max);
	range = max - min + 1;
	for (i = 0; i < SL_NAT_RETRIES; i++) {
		k.nat_port = bpf_htons((__u16)(min + (hash + i) % range));
		if (!bpf_map_update_elem(&sl_nat4_v1, &k, val, BPF_NOEXIST)) {
			*port = k.nat_port;
			return 0;
		}
	}
	return -SL_R_NAT_FAIL;
}

#endif
