// SPDX-License-Identifier: Apache-2.0
/*
 * Dataplane names and the registry of legacy backends (agent/proxier.h).
 */
#include <errno.h>
#include <string.h>

#include "proxier.h"

static const char *const dp_names[AGENT_DP_N] = {
	[AGENT_DP_BPF] = "bpf",
	[AGENT_DP_IPTABLES] = "iptables",
	[AGENT_DP_NFTABLES] = "nftables",
	[AGENT_DP_IPVS] = "ipvs",
};

const char *agent_dataplane_name(enum agent_dataplane d)
{
	return (unsigned)d < AGENT_DP_N ? dp_names[d] : NULL;
}

int agent_dataplane_parse(const char *s, enum agent_dataplane *out)
{
	for (int i = 0; s && i < AGENT_DP_N; i++) {
		if (!strcmp(s, dp_names[i])) {
			*out = (enum agent_dataplane)i;
			return 0;
		}
	}
	return -EINVAL;
}

const struct pxy_ops *pxy_ops_for(enum agent_dataplane d)
{
	switch (d) {
	case AGENT_DP_IPTABLES:
		return &pxy_iptables_ops;
	case AGENT_DP_NFTABLES:
		return &pxy_nftables_ops;
	case AGENT_DP_IPVS:
		return &pxy_ipvs_ops;
	default:
		return NULL;
	}
}
