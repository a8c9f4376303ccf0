/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Legacy service dataplanes: the same node agent, the same model
 * (agent/lbinc.h, kube-proxy's semantics), programmed into netfilter the way
 * kube-proxy programs it instead of into the eBPF maps, so users can compare
 * the modes on one control plane and one topology (docs/dataplanes.md,
 * `make bench-modes`).
 *
 *   --dataplane bpf       agent/datapath.c + agent/nodeport.c (the default)
 *   --dataplane iptables  agent/px_iptables.c: kube-proxy's iptables chains,
 *                         one `iptables-restore --noflush` per sync
 *                         (--iptables-variant legacy|nft picks the binary)
 *   --dataplane nftables  agent/px_nftables.c: kube-proxy's nftables table,
 *                         one libnftnl batch per sync
 *   --dataplane ipvs      agent/px_ipvs.c: kube-proxy's IPVS mode over
 *                         generic netlink; refuses to start, naming why, on a
 *                         kernel without IP_VS
 *
 * The agent drives a backend from its sync loop: after every lbi_plan() it
 * calls sync() with the lbi, and the backend walks lbi_foreach_fragment()
 * (one fragment per Service: its frontends with scopes and flags, their
 * backends, port names) and turns the result into its rules. What the
 * fragments mean is model.h's table: EXT entries carry the set the traffic
 * of clients outside the node uses, INT entries (only with a Local policy)
 * the set for clients on the node; count 0 with drop = kube-proxy's DROP,
 * count 0 without = REJECT; SL_SVC_F_AFFINITY with affinity_s = ClientIP
 * affinity; backend state TERMINATING = serving-terminating fallback.
 *
 * While a legacy backend is active the eBPF service maps stay empty and the
 * socket-LB programs are not attached, so exactly one datapath translates
 * service traffic. NetworkPolicy and the pod datapath are unchanged.
 *
 * Switching: the agent records the active dataplane in
 * /run/sluice/<node>/dataplane.<netns inode>; on start, a different recorded one is cleaned
 * up first (its cleanup()), and `sluice-agent --cleanup` runs every
 * backend's cleanup. Each backend removes only what it created (kube-proxy's
 * chain and table names), in the calling netns.
 *
 * Not thread-safe: the agent's event loop owns a struct pxy.
 */
#ifndef SLUICE_AGENT_PROXIER_H
#define SLUICE_AGENT_PROXIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

struct lbi;

enum agent_dataplane {
	AGENT_DP_BPF = 0,
	AGENT_DP_IPTABLES,
	AGENT_DP_NFTABLES,
	AGENT_DP_IPVS,
	AGENT_DP_N,
};

/* "bpf", "iptables", "nftables", "ipvs"; NULL for an unknown value. */
const char *agent_dataplane_name(enum agent_dataplane d);
/* Parses a name; -EINVAL for anything else. */
int agent_dataplane_parse(const char *s, enum agent_dataplane *out);

struct pxy_cfg {
	const char *node_name;
	/* kube-proxy's --cluster-cidr: traffic to a ClusterIP from outside it is
	 * masqueraded (KUBE-MARK-MASQ). NULL = masquerade only what kube-proxy
	 * always masquerades (hairpin, external traffic to Cluster policy). */
	const char *cluster_cidr;
	bool masquerade_all;	  /* kube-proxy's --masquerade-all */
	const char *iptables_cmd; /* "iptables-restore" (default) or
				   * "iptables-nft-restore" / "iptables-legacy-restore" */
	unsigned masq_bit;	  /* fwmark bit for KUBE-MARK-MASQ, default 14 (0x4000) */
};

struct pxy;

struct pxy_stats {
	uint64_t syncs;	       /* successful syncs */
	uint64_t sync_errors;  /* failed syncs (each logged) */
	uint64_t rules;	       /* rules (iptables) or elements+rules (nftables) last programmed */
	double last_sync_s;    /* wall time of the last sync, rendering included */
	double last_program_s; /* of it, the kernel programming call (restore / batch) */
	size_t services_rendered; /* Services re-rendered by the last sync */
};

struct pxy_ops {
	const char *name;
	/* Checks the kernel and tools (a missing iptables binary, nf_tables or
	 * IP_VS support) and prepares; NULL with errno and the reason logged. */
	struct pxy *(*open)(const struct pxy_cfg *cfg);
	/* This node's addresses changed (NodePort and externalIP locality). */
	int (*set_node_addrs)(struct pxy *p, const __be32 *addrs, size_t n);
	/* Programs the state after a plan. full: render and write everything
	 * (start, or after a failure); otherwise the backend may re-render only
	 * fragments whose gen changed. 0 or a negative errno (logged); after a
	 * failure the agent retries with full. */
	int (*sync)(struct pxy *p, const struct lbi *l, bool full);
	void (*stats)(const struct pxy *p, struct pxy_stats *out);
	/* Frees the handle; the rules stay (fail static, like the maps). */
	void (*close)(struct pxy *p);
	/* Removes everything this backend programs in the calling netns; 0 when
	 * there was nothing. Safe without a prior open. */
	int (*cleanup)(void);
};

extern const struct pxy_ops pxy_iptables_ops;
extern const struct pxy_ops pxy_nftables_ops;
extern const struct pxy_ops pxy_ipvs_ops;

/* The ops of a legacy dataplane; NULL for AGENT_DP_BPF. */
const struct pxy_ops *pxy_ops_for(enum agent_dataplane d);

#endif
