/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube-proxy's IPVS mode as a Sluice dataplane (agent/proxier.h,
 * `sluice-agent --dataplane ipvs`), mirroring
 * kubernetes/kubernetes:pkg/proxy/ipvs/proxier.go:
 *
 *  - the dummy interface kube-ipvs0 holds every ClusterIP, LoadBalancer and
 *    (node-local) externalIP, so service traffic is local and takes the INPUT
 *    path where IPVS hooks;
 *  - one IPVS virtual server per EXT frontend (NodePort: one per node
 *    address), scheduler rr, ClientIP affinity as IPVS persistence with the
 *    affinity timeout; one masq (NAT) real server of weight 1 per slot
 *    backend; a real server leaving the set is first set to weight 0 while it
 *    still has connections or its endpoint is terminating (kube-proxy's
 *    graceful termination), then deleted;
 *  - kube-proxy's ipsets (KUBE-CLUSTER-IP, KUBE-LOOP-BACK, KUBE-NODE-PORT-*,
 *    ...) written with `ipset -exist restore`, and its small fixed set of
 *    iptables rules (KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ, ...)
 *    with `iptables-restore --noflush`.
 *
 * IPVS cannot tell a client on the node from one outside for the same
 * virtual server, so the INT entries of the model (eTP Local's short
 * circuit) are not rendered; kube-proxy's IPVS mode has the same limit.
 *
 * On a kernel without IP_VS open() fails with EOPNOTSUPP and one log line
 * saying what is missing; pxy_ipvs_probe() gives the same reason to callers
 * (the benchmark's "unavailable" row). Nothing is ever loaded (no modprobe).
 *
 * The message builders and renderers below are exported for the unit tests
 * (tests/unit/test_px_ipvs.c); the agent only uses pxy_ipvs_ops.
 */
#ifndef SLUICE_AGENT_PX_IPVS_H
#define SLUICE_AGENT_PX_IPVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "proxier.h"
#include "sluice/buf.h"

struct nl_msg;
struct nl_sock;
struct lbm_state;

#define IPVS_DUMMY_DEV	   "kube-ipvs0"
#define IPVS_SCHED_DEFAULT "rr"

/*
 * 0 when this kernel has IP_VS (the generic netlink family "IPVS" resolves),
 * else a negative errno (-EOPNOTSUPP when IPVS is missing) with a one-line
 * reason in why that names what was missing and what to use instead.
 */
int pxy_ipvs_probe(char *why, size_t len);

/* A virtual server as IPVS_CMD_*_SERVICE carries it (IPv4 only). */
struct ipvs_vs {
	__be32 addr;	    /* network order */
	__be16 port;	    /* network order */
	uint8_t proto;	    /* IPPROTO_TCP / UDP / SCTP */
	char sched[16];	    /* "rr" */
	uint32_t flags;	    /* IP_VS_SVC_F_PERSISTENT for ClientIP affinity */
	uint32_t timeout_s; /* persistence timeout, with the flag */
};

/* A real server of a virtual server. */
struct ipvs_dest {
	__be32 addr;
	__be16 port;
	uint32_t weight;   /* 1, or 0 while draining */
	uint32_t active;   /* from a dump: IPVS_DEST_ATTR_ACTIVE_CONNS */
	uint32_t inactive; /* IPVS_DEST_ATTR_INACT_CONNS */
};

/*
 * The virtual server of frontend fe of a fragment, at address addr (the
 * frontend's own address, or a node address for a NodePort wildcard).
 */
void ipvs_vs_of(const struct lbm_state *frag, size_t fe, __be32 addr, struct ipvs_vs *out);

/*
 * The weight a real server for backend addr:port/proto should have in a
 * virtual server of frontend fe: 1 when the backend is one of the frontend's
 * slots (including serving-terminating fallback slots, which must take new
 * connections), 0 when it is not but the fragment still has it TERMINATING
 * or it still has connections (graceful termination), -1 = delete it.
 */
int ipvs_dest_weight(const struct lbm_state *frag, size_t fe, const struct ipvs_dest *d);

/*
 * Fill m (from nlmsg_alloc()) with a generic netlink IPVS message for family
 * family (genl_ctrl_resolve "IPVS"): cmd IPVS_CMD_NEW/SET/DEL_SERVICE with
 * the service attributes, or IPVS_CMD_NEW/SET/DEL_DEST with the service and
 * the destination (masq forwarding). 0 or -ENOMEM / -EINVAL.
 */
int ipvs_msg_service(struct nl_msg *m, int family, uint8_t cmd, const struct ipvs_vs *vs);
int ipvs_msg_dest(struct nl_msg *m, int family, uint8_t cmd, const struct ipvs_vs *vs,
		  const struct ipvs_dest *d);

/* --- kube-ipvs0 ---------------------------------------------------------- */

/*
 * The addresses kube-proxy binds to kube-ipvs0 for the fragment's owned EXT
 * frontends (ClusterIP, LoadBalancer, externalIP; not NodePort), appended to
 * *addrs (realloc'd array of *n). 0 or -ENOMEM.
 */
int ipvs_bind_addrs(const struct lbm_state *frag, const bool *owned, __be32 **addrs, size_t *n);

/*
 * Creates kube-ipvs0 (type dummy, down like kube-proxy's) if missing; its
 * ifindex in *ifindex. -EOPNOTSUPP when the kernel has no dummy devices.
 */
int ipvs_dummy_ensure(struct nl_sock *rt, int *ifindex);
/* Makes the /32 addresses of ifindex exactly want[n] (bind the missing,
 * unbind the rest); *changed counts both. 0 or a negative errno. */
int ipvs_dummy_sync(struct nl_sock *rt, int ifindex, const __be32 *want, size_t n, size_t *changed);
/* Deletes kube-ipvs0; 0 when done, 1 when there was none, else -errno. */
int ipvs_dummy_delete(struct nl_sock *rt);

/* --- ipset and iptables ---------------------------------------------------- */

/* kube-proxy's ipsets, by index into ipvs_set_names. */
enum ipvs_set {
	IPVS_SET_LOOP_BACK,
	IPVS_SET_CLUSTER_IP,
	IPVS_SET_EXTERNAL_IP,
	IPVS_SET_EXTERNAL_IP_LOCAL,
	IPVS_SET_LOAD_BALANCER,
	IPVS_SET_LOAD_BALANCER_LOCAL,
	IPVS_SET_NODE_PORT_TCP,
	IPVS_SET_NODE_PORT_LOCAL_TCP,
	IPVS_SET_NODE_PORT_UDP,
	IPVS_SET_NODE_PORT_LOCAL_UDP,
	IPVS_SET_NODE_PORT_SCTP,
	IPVS_SET_NODE_PORT_LOCAL_SCTP,
	IPVS_SET_HEALTH_CHECK_NODE_PORT,
	IPVS_SET_IPVS_IPS,
	IPVS_SET_N,
};

/* Entries of every set, as ipset prints them ("198.18.128.10,tcp:80"). */
struct ipvs_sets {
	char **e[IPVS_SET_N];
	size_t n[IPVS_SET_N];
	size_t cap[IPVS_SET_N];
	bool oom;
};

const char *ipvs_set_name(enum ipvs_set s);
/* Adds the entries of a fragment's owned frontends; node addrs are used for
 * the SCTP NodePort sets (hash:ip,port). */
void ipvs_sets_add(struct ipvs_sets *s, const struct lbm_state *frag, const bool *owned,
		   const __be32 *node_addrs, size_t n_node_addrs);
/* Sorts and removes duplicates; -ENOMEM if any add failed. */
int ipvs_sets_finish(struct ipvs_sets *s);
void ipvs_sets_fini(struct ipvs_sets *s);

/*
 * `ipset -exist restore` text taking the sets from prev (NULL: unknown, so
 * create and flush every set) to next: create lines, then del and add lines
 * for the difference only.
 */
int ipvs_render_ipset(const struct ipvs_sets *prev, const struct ipvs_sets *next,
		      struct sl_buf *out);

/*
 * `iptables-restore --noflush` text of kube-proxy's nat and filter chains
 * for these sets (rules matching an empty set are left out, as kube-proxy
 * does). The jumps from the built-in chains are not in it (kube-proxy
 * ensures them one by one; so does sync).
 */
int ipvs_render_iptables(const struct pxy_cfg *cfg, const struct ipvs_sets *s, struct sl_buf *out);

/*
 * Writes next into the kernel: `ipset -exist restore` (the difference from
 * prev, everything when prev is NULL), then `iptables-restore -w --noflush`
 * of the KUBE-* chains, then (ensure_jumps) the jumps from the built-in
 * chains, each checked with -C and prepended when missing. In the calling
 * netns. 0, or a negative errno with the failing step logged.
 */
int ipvs_apply_netfilter(const struct pxy_cfg *cfg, const struct ipvs_sets *prev,
			 const struct ipvs_sets *next, bool ensure_jumps);

#endif
